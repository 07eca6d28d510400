/* Component (ext, cluster-scoped): a Helm chart the platform installs,
 * with dependencies on other Components (controllers/component.c installs
 * it; spec.namespace empty means edge-system). */
#include "reg_internal.h"

#define COMPONENT_FINALIZER "finalizer.ext.theriseunion.io"

/* The finalizer the Component controller removes once the release is
 * uninstalled. */
static int on_create(json_t *obj) { return reg__add_finalizer(obj, COMPONENT_FINALIZER); }

static const char *const short_names[] = {"comp", NULL};

static const patch_list_rule_t list_rules[] = {
    {"spec.dependsOn", NULL},
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_chart(const json_t *o) { return reg__cell_str(o, "spec.chart"); }
static json_t *cell_version(const json_t *o) { return reg__cell_str(o, "spec.version"); }
static json_t *cell_phase(const json_t *o) { return reg__cell_str(o, "status.phase"); }
static json_t *cell_deps(const json_t *o) { return reg__cell_join(o, "spec.dependsOn", NULL, 4); }

static const reg_column_t columns[] = {
    {"Chart", "string", 0, "Helm chart name.", cell_chart},
    {"Version", "string", 0, "Chart version.", cell_version},
    {"Phase", "string", 0, "Installation phase.", cell_phase},
    {"Depends-On", "string", 1, "Components installed first.", cell_deps},
    {NULL, NULL, 0, NULL, NULL},
};

const reg_kind_t reg_kind_component = {
    .group = "ext.theriseunion.io", .version = REG_VERSION,
    .resource = "components", .singular = "component", .kind = "Component",
    .short_names = short_names, .has_status = 1, .list_rules = list_rules,
    .columns = columns, .on_create = on_create,
    .description =
        "Component is a Helm chart the platform installs into a member cluster, as release "
        "<name>, after the Components it depends on are installed. The Component controller "
        "fetches the chart from a Helm chart repository, checks its digest, installs it and "
        "reports the phase in status. It carries finalizer finalizer.ext.theriseunion.io, "
        "removed once the release is uninstalled, and held while other Components depend on it. "
        "Targeting a Cluster needs 'use' on it.",
    .spec_schema = REG_S_DESC_OBJ_REQ("The chart, where it comes from and where it goes. A new "
        "spec (its sha256, status.observedHash) starts an install.", "\"chart\"",
        "\"chart\":" REG_S_DESC_STR("The chart's name in the repository. Required.") ","
        "\"version\":" REG_S_DESC_STR("The exact chart version to install; empty: the highest in "
            "the repository's index, pre-releases left out, looked up again every recheck "
            "period so a newer release installs.") ","
        "\"repository\":" REG_S_DESC_STR("URL of a Helm chart repository: its index.yaml and the "
            "chart archives it lists, as ChartMuseum serves them. Must be allowed by the "
            "server's --allowed-chart-repositories.") ","
        "\"values\":" REG_S_DESC_ANY("Helm values for the release.") ","
        "\"dependsOn\":" REG_S_DESC_STRS("Names of Components that must be Installed (at their "
            "current spec) first; a missing one or a cycle keeps this one Blocked.") ","
        "\"cluster\":" REG_S_DESC_STR("The member Cluster to install into; empty means the "
            "server's own cluster (its --cluster-name).") ","
        "\"namespace\":" REG_S_DESC_STR("The namespace of the release on that cluster; default "
            "edge-system.")),
    .status_schema = REG_S_DESC_OBJ("What the Component controller last did. Written by the "
        "Component controller; read-only for users.",
        "\"observedHash\":" REG_S_DESC_STR("Written by the Component controller: the sha256 of "
            "the spec's canonical JSON it is working on; only a new hash starts work.") ","
        "\"resolvedVersion\":" REG_S_DESC_STR("Written by the Component controller: the chart "
            "version fetched (spec.version, or the highest in the index).") ","
        "\"phase\":" REG_S_DESC_ENUM("Written by the Component controller: Pending (a new spec, "
            "or waiting for the Cluster), Blocked (a dependency missing, not Installed, or a "
            "cycle), Fetching, Fetched, Installing, Installed, or Failed (fetch or install "
            "failed; retried with backoff).", "\"Pending\",\"Blocked\",\"Fetching\","
            "\"Fetched\",\"Installing\",\"Installed\",\"Failed\"") ","
        "\"chartDigest\":" REG_S_DESC_STR("Written by the Component controller: the sha256 of the "
            "chart archive, as the repository's index gives it and as checked on download.") ","
        "\"conditions\":" REG_S_CONDITIONS("Written by the Component controller: "
            "DependenciesReady (False: DependencyNotFound, DependencyNotReady, DependencyCycle), "
            "ChartFetched (False: RepositoryNotAllowed, ChartNotFound, DigestMismatch, "
            "InvalidChart, FetchFailed), Installed (False: ClusterNotFound, ClusterNotReady, "
            "HelmNotFound, InstallFailed, InvalidConnection) and DeletionBlocked (True while "
            "other Components depend on a deleted one).") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("Component")),
};
