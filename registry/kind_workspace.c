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
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{\"displayName\":" REG_S_STR ",\"manager\":" REG_S_STR ","
        "\"clusters\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\",\"items\":" REG_S_STR "},"
        "\"namespaces\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"cluster\",\"name\"],\"items\":{\"type\":\"object\","
        "\"required\":[\"name\"],\"properties\":{\"cluster\":" REG_S_STR ",\"name\":" REG_S_STR "}}}}}",
    .status_schema = "{\"type\":\"object\",\"properties\":{\"conditions\":" REG_S_CONDITIONS ","
                     "\"clusterCount\":" REG_S_INT ",\"namespaceCount\":" REG_S_INT ","
                     "\"observedGeneration\":" REG_S_INT "}}",
};
