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
    .description =
        "NodeGroup is the infrastructure view of the scope chain: a set of nodes of one member "
        "cluster. A binding at a NodeGroup applies to every node it lists (and to the NodeGroup "
        "itself); ApplicationDeployments target NodeGroups. A node may be in several NodeGroups "
        "(condition Conflict); it joins only when the requester may update it.",
    .spec_schema = REG_S_DESC_OBJ("What the node group holds.",
        "\"displayName\":" REG_S_DESC_STR("Human-readable name shown by the console.") ","
        "\"cluster\":" REG_S_DESC_STR("The member cluster the nodes belong to; empty means the "
            "server's own cluster (its --cluster-name).") ","
        "\"nodes\":" REG_S_DESC_SET("Names of the nodes in the group. Adding one needs update on "
            "that node; the Cluster controller releases them when the Cluster is deleted.")),
    .status_schema = REG_S_DESC_OBJ("What the NodeGroup controller last saw. Written by the "
        "NodeGroup controller; read-only for users.",
        "\"conditions\":" REG_S_CONDITIONS("Written by the NodeGroup controller: Conflict (True, "
            "reason ClaimedTwice, naming the other NodeGroups that hold one of this group's "
            "nodes and what they share; False, reason NoConflict, otherwise).") ","
        "\"nodeCount\":" REG_S_DESC_INT("Written by the NodeGroup controller: the number of "
            "entries in spec.nodes.") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("NodeGroup")),
};
