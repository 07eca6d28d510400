/* Cluster (scope, cluster-scoped): a member cluster and how to reach it.
 * A new Cluster carries the cleanup finalizer from its creation on, so
 * the Cluster controller (controllers/cluster.c) always runs its cleanup
 * before the object goes, however soon it is deleted. */
#include "reg_internal.h"

#define CLUSTER_FINALIZER "finalizer.cluster.theriseunion.io"

static int on_create(json_t *obj) { return reg__add_finalizer(obj, CLUSTER_FINALIZER); }

static const patch_list_rule_t list_rules[] = {
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_type(const json_t *o) { return reg__cell_str(o, "spec.type"); }
static json_t *cell_dist(const json_t *o) { return reg__cell_str(o, "spec.distribution"); }
static json_t *cell_version(const json_t *o)
{
    json_t *v = reg__cell_str(o, "status.kubernetesVersion");
    return v ? v : reg__cell_str(o, "spec.version");
}
static json_t *cell_ready(const json_t *o) { return reg__cell_condition(o, "Ready"); }
static json_t *cell_conn(const json_t *o) { return reg__cell_str(o, "spec.connection.type"); }
static json_t *cell_edge(const json_t *o) { return reg__cell_str(o, "spec.edgeRuntime"); }

static const reg_column_t columns[] = {
    {"Type", "string", 0, "physical or virtual.", cell_type},
    {"Distribution", "string", 0, "k3s, k0s or k8s.", cell_dist},
    {"Version", "string", 0, "Kubernetes version.", cell_version},
    {"Ready", "string", 0, "The Ready condition.", cell_ready},
    {"Connection", "string", 1, "direct or proxy.", cell_conn},
    {"Edge-Runtime", "string", 1, "none, kubeedge or openyurt.", cell_edge},
    {NULL, NULL, 0, NULL, NULL},
};

const reg_kind_t reg_kind_cluster = {
    .group = "scope.theriseunion.io", .version = REG_VERSION,
    .resource = "clusters", .singular = "cluster", .kind = "Cluster",
    .has_status = 1, .list_rules = list_rules, .columns = columns, .on_create = on_create,
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"type\":{\"type\":\"string\",\"enum\":[\"physical\",\"virtual\"]},"
        "\"distribution\":{\"type\":\"string\",\"enum\":[\"k3s\",\"k0s\",\"k8s\"]},"
        "\"version\":" REG_S_STR ","
        "\"edgeRuntime\":{\"type\":\"string\",\"enum\":[\"none\",\"kubeedge\",\"openyurt\"]},"
        "\"connection\":{\"type\":\"object\",\"properties\":{"
        "\"type\":{\"type\":\"string\",\"enum\":[\"direct\",\"proxy\"]},"
        "\"kubernetesAPIEndpoint\":" REG_S_STR ","
        "\"kubeconfig\":{\"type\":\"string\",\"format\":\"byte\"},\"token\":" REG_S_STR ","
        "\"kubernetesAPIServerPort\":{\"type\":\"integer\",\"format\":\"int32\"},"
        "\"theriseunionAPIServerPort\":{\"type\":\"integer\",\"format\":\"int32\"}}}}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"conditions\":" REG_S_CONDITIONS ","
        "\"kubernetesVersion\":" REG_S_STR ",\"observedGeneration\":" REG_S_INT "}}",
};
