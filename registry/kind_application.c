/* Application (app, cluster-scoped): an application in a workspace's store
 * or the global one. */
#include "reg_internal.h"

static const char *const short_names[] = {"app", NULL};

static json_t *cell_type(const json_t *o) { return reg__cell_str(o, "spec.type"); }
static json_t *cell_ws(const json_t *o) { return reg__cell_str(o, "spec.workspace"); }
static json_t *cell_latest(const json_t *o) { return reg__cell_str(o, "status.latestVersion"); }

static const reg_column_t columns[] = {
    {"Type", "string", 0, "workload, helm or a plugin.", cell_type},
    {"Workspace", "string", 0, "Owning workspace; empty: global.", cell_ws},
    {"Latest", "string", 0, "Latest approved version.", cell_latest},
    {NULL, NULL, 0, NULL, NULL},
};

const reg_kind_t reg_kind_application = {
    .group = "app.theriseunion.io", .version = REG_VERSION,
    .resource = "applications", .singular = "application", .kind = "Application",
    .short_names = short_names, .has_status = 1, .columns = columns,
    .description =
        "Application is an application in a Workspace's store, or in the global store. Its "
        "releases are ApplicationVersions (spec.application naming it), deployed to node groups "
        "by ApplicationDeployments; the Application controller writes the latest approved "
        "version and the number of versions into status.",
    .spec_schema = REG_S_DESC_OBJ("What the application is and whose store it is in.",
        "\"displayName\":" REG_S_DESC_STR("Human-readable name shown by the store.") ","
        "\"description\":" REG_S_DESC_STR("Free text: what the application does.") ","
        "\"owner\":" REG_S_DESC_STR("Who publishes the application (a user or team name), for "
            "people and the console.") ","
        "\"workspace\":" REG_S_DESC_STR("The Workspace whose store holds the application; empty "
            "means the global store.") ","
        "\"type\":" REG_S_DESC_STR("How its versions are deployed: workload (a pod template and "
            "service ports), helm (a Helm chart), or the name of a registered plugin. A "
            "version's own spec.type wins; neither set means workload.")),
    .status_schema = REG_S_DESC_OBJ("What the Application controller last saw. Written by the "
        "Application controller; read-only for users.",
        "\"latestVersion\":" REG_S_DESC_STR("Written by the Application controller: the highest "
            "spec.version, by semver precedence, among the application's ApplicationVersions in "
            "phase Approved, pre-releases left out; absent when none is approved. What an "
            "ApplicationDeployment's version latest resolves to.") ","
        "\"versionCount\":" REG_S_DESC_INT32("Written by the Application controller: how many "
            "ApplicationVersions the application has, in any phase.") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("Application")),
};
