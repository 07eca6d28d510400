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
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{\"displayName\":" REG_S_STR ",\"description\":" REG_S_STR ","
        "\"owner\":" REG_S_STR ",\"workspace\":" REG_S_STR ",\"type\":" REG_S_STR "}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"latestVersion\":" REG_S_STR ","
        "\"versionCount\":{\"type\":\"integer\",\"format\":\"int32\"},"
        "\"observedGeneration\":" REG_S_INT "}}",
};
