/* NodeGroup (scope, cluster-scoped): the infrastructure view, a set of
 * nodes of one cluster. */
#include "reg_internal.h"

static const char *const short_names[] = {"ng", NULL};

static const patch_list_rule_t list_rules[] = {
    {"spec.nodes", NULL},
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_cluster(const json_t *o) { return reg__cell_str(o, "spec.cluster"); }
static json_t *cell_nodes(const json_t *o) { return reg__cell_count(o, "spec.nodes"); }

static const reg_column_t columns[] = {
    {"Cluster", "string", 0, "The cluster the nodes belong to.", cell_cluster},
    {"Nodes", "integer", 0, "Number of nodes.", cell_nodes},
    {NULL, NULL, 0, NULL, NULL},
};

const reg_kind_t reg_kind_nodegroup = {
    .group = "scope.theriseunion.io", .version = REG_VERSION,
    .resource = "nodegroups", .singular = "nodegroup", .kind = "NodeGroup",
    .short_names = short_names, .has_status = 1, .list_rules = list_rules,
    .columns = columns,
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{\"displayName\":" REG_S_STR ",\"cluster\":" REG_S_STR ","
        "\"nodes\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\",\"items\":" REG_S_STR "}}}",
    .status_schema = "{\"type\":\"object\",\"properties\":{\"conditions\":" REG_S_CONDITIONS ","
                     "\"nodeCount\":" REG_S_INT ",\"observedGeneration\":" REG_S_INT "}}",
};
