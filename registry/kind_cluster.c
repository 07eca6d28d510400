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
    .description =
        "Cluster is a member cluster and how to reach it. The Cluster controller probes it "
        "(every 30 s while it answers) and writes its conditions and Kubernetes version into "
        "status. A Cluster carries finalizer finalizer.cluster.theriseunion.io from its "
        "creation on, removed once its cleanup (releasing its Workspace and NodeGroup claims) "
        "has run.",
    .spec_schema = REG_S_DESC_OBJ("What the cluster is and how the server reaches it.",
        "\"type\":" REG_S_DESC_ENUM("physical (a cluster of its own) or virtual (a virtual "
            "cluster inside another).", "\"physical\",\"virtual\"") ","
        "\"distribution\":" REG_S_DESC_ENUM("The Kubernetes distribution: k3s, k0s or k8s.",
            "\"k3s\",\"k0s\",\"k8s\"") ","
        "\"version\":" REG_S_DESC_STR("The Kubernetes version the cluster is declared to run; "
            "kubectl get shows status.kubernetesVersion instead once the controller has read "
            "it.") ","
        "\"edgeRuntime\":" REG_S_DESC_ENUM("The edge runtime installed on the cluster: none, "
            "kubeedge or openyurt.", "\"none\",\"kubeedge\",\"openyurt\"") ","
        "\"connection\":" REG_S_DESC_OBJ("How the server reaches the cluster's API server.",
            "\"type\":" REG_S_DESC_ENUM("direct: the server calls the cluster's API server at "
                "kubernetesAPIEndpoint (or the kubeconfig's server); proxy: through an agent "
                "running in the cluster (condition AgentAvailable Unknown, AgentNotConnected, "
                "until one connects). Unset: the cluster is not probed.",
                "\"direct\",\"proxy\"") ","
            "\"kubernetesAPIEndpoint\":" REG_S_DESC_STR("URL of the cluster's API server "
                "(https://host:port or http://); overrides the kubeconfig's server.") ","
            "\"kubeconfig\":" REG_S_DESC_BYTES("A kubeconfig for the cluster, base64-encoded "
                "(standard encoding): its current context's server, CA and credentials are "
                "used.") ","
            "\"token\":" REG_S_DESC_STR("A bearer token for the cluster's API server, used over "
                "the kubeconfig's credentials; trailing line ends are ignored.") ","
            "\"kubernetesAPIServerPort\":" REG_S_DESC_INT32("Port of the cluster's Kubernetes "
                "API server, for agents and tooling; the controller's probe uses "
                "kubernetesAPIEndpoint.") ","
            "\"theriseunionAPIServerPort\":" REG_S_DESC_INT32("Port of the edge API server "
                "running in the cluster, for agents and tooling."))),
    .status_schema = REG_S_DESC_OBJ("What the Cluster controller last saw. Written by the "
        "Cluster controller; read-only for users.",
        "\"conditions\":" REG_S_CONDITIONS("Written by the Cluster controller: Initialized (True "
            "once seen), AgentAvailable (connection direct: True when GET /version and GET /apis "
            "answer 200; False with reason ProbeFailed, Unauthorized, Forbidden or "
            "InvalidConnection; connection proxy: Unknown, AgentNotConnected) and Ready (True "
            "when Initialized and AgentAvailable are). CoreReady, Schedulable, "
            "VirtualClusterReady, OpenyurtReady and KubeedgeReady are reserved for agents.") ","
        "\"kubernetesVersion\":" REG_S_DESC_STR("Written by the Cluster controller: the "
            "gitVersion the cluster's /version answered; kept as last seen while it does not "
            "answer.") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("Cluster")),
};
