/* Workspace (scope, cluster-scoped): the application view, a set of
 * namespaces across clusters. */
#include "reg_internal.h"

static const char *const short_names[] = {"ws", NULL};

static const patch_list_rule_t list_rules[] = {
    {"spec.namespaces", "cluster,name"},
    {"spec.clusters", NULL},
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_manager(const json_t *o) { return reg__cell_str(o, "spec.manager"); }
static json_t *cell_clusters(const json_t *o) { return reg__cell_join(o, "spec.clusters", NULL, 3); }
static json_t *cell_namespaces(const json_t *o) { return reg__cell_count(o, "spec.namespaces"); }

static const reg_column_t columns[] = {
    {"Manager", "string", 0, "Who manages the workspace.", cell_manager},
    {"Clusters", "string", 0, "Member clusters.", cell_clusters},
    {"Namespaces", "integer", 0, "Number of namespaces.", cell_namespaces},
    {NULL, NULL, 0, NULL, NULL},
};

const reg_kind_t reg_kind_workspace = {
    .group = "scope.theriseunion.io", .version = REG_VERSION,
    .resource = "workspaces", .singular = "workspace", .kind = "Workspace",
    .short_names = short_names, .has_status = 1, .list_rules = list_rules,
    .columns = columns,
    .description =
        "Workspace is the application view of the scope chain: a set of namespaces across "
        "member clusters. A binding at a Workspace applies to every namespace it lists (and to "
        "the Workspace itself); a namespace may be claimed by several Workspaces (condition "
        "Conflict). A namespace or cluster joins only when the requester may update it.",
    .spec_schema = REG_S_DESC_OBJ("What the workspace holds.",
        "\"displayName\":" REG_S_DESC_STR("Human-readable name shown by the console.") ","
        "\"manager\":" REG_S_DESC_STR("Who manages the workspace (a user name), for people and "
            "the console; grants nothing by itself.") ","
        "\"clusters\":" REG_S_DESC_SET("Names of the member Clusters the workspace spans. "
            "Adding one needs update on that Cluster; the Cluster controller removes a deleted "
            "Cluster.") ","
        "\"namespaces\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"cluster\",\"name\"],"
        "\"description\":\"The namespaces the workspace claims, each of one cluster. Adding one "
            "needs update on that namespace; the Cluster controller removes those of a deleted "
            "Cluster.\","
        "\"items\":" REG_S_DESC_OBJ_REQ("A namespace of a cluster.", "\"name\"",
            "\"cluster\":" REG_S_DESC_STR("The member cluster; empty means the server's own "
                "cluster (its --cluster-name).") ","
            "\"name\":" REG_S_DESC_STR("The namespace name. Required.")) "}"),
    .status_schema = REG_S_DESC_OBJ("What the Workspace controller last saw. Written by the "
        "Workspace controller; read-only for users.",
        "\"conditions\":" REG_S_CONDITIONS("Written by the Workspace controller: Conflict (True, "
            "reason ClaimedTwice, naming the other Workspaces that claim one of this "
            "workspace's namespaces and what they share; False, reason NoConflict, otherwise).") ","
        "\"clusterCount\":" REG_S_DESC_INT("Written by the Workspace controller: the number of "
            "entries in spec.clusters.") ","
        "\"namespaceCount\":" REG_S_DESC_INT("Written by the Workspace controller: the number of "
            "entries in spec.namespaces.") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("Workspace")),
};
