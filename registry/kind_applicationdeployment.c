/* ApplicationDeployment (app, namespaced): an application version rolled
 * out to node groups. It carries finalizer.app.theriseunion.io from its
 * creation on, so the controller (controllers/appdeploy.c) removes what it
 * provisioned before the object goes. */
#include "reg_internal.h"

#include <string.h>

static const char *const short_names[] = {"appdeploy", NULL};

static const patch_list_rule_t list_rules[] = {
    {"spec.topologies", "nodeGroup"},
    {"status.topologies", "nodeGroup"},
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_app(const json_t *o) { return reg__cell_str(o, "spec.application"); }
static json_t *cell_version(const json_t *o) { return reg__cell_str(o, "spec.version"); }
static json_t *cell_resolved(const json_t *o) { return reg__cell_str(o, "status.resolvedVersion"); }
static json_t *cell_topologies(const json_t *o) { return reg__cell_count(o, "spec.topologies"); }

static const reg_column_t columns[] = {
    {"Application", "string", 0, "The application.", cell_app},
    {"Version", "string", 0, "Requested version or latest.", cell_version},
    {"Resolved", "string", 0, "The version in effect.", cell_resolved},
    {"Topologies", "integer", 0, "Number of node groups targeted.", cell_topologies},
    {NULL, NULL, 0, NULL, NULL},
};

/* Held on delete until the controller has removed what it provisioned. */
static int on_create(json_t *obj) { return reg__add_finalizer(obj, "finalizer.app.theriseunion.io"); }

static void validate(const json_t *obj, const json_t *old, err_t *err)
{
    (void)old;
    const json_t *tops = reg__at(obj, "spec.topologies");
    size_t i;
    const json_t *t;
    json_array_foreach(tops, i, t) {
        json_t *r = json_object_get(t, "replicas");
        if (json_is_integer(r) && json_integer_value(r) < 0) {
            char f[64];
            snprintf(f, sizeof f, "spec.topologies[%zu].replicas", i);
            REG_INVALID(err, "FieldValueInvalid", f,
                        "Invalid value: %lld: must be greater than or equal to 0",
                        (long long)json_integer_value(r));
        }
    }
}

const reg_kind_t reg_kind_applicationdeployment = {
    .group = "app.theriseunion.io", .version = REG_VERSION,
    .resource = "applicationdeployments", .singular = "applicationdeployment",
    .kind = "ApplicationDeployment", .namespaced = 1, .short_names = short_names,
    .has_status = 1, .list_rules = list_rules, .columns = columns, .validate = validate,
    .on_create = on_create,
    .description =
        "ApplicationDeployment rolls an approved version of an Application out to node groups, "
        "one topology per NodeGroup. The ApplicationDeployment controller resolves the version, "
        "provisions each topology on its NodeGroup's cluster (a workload's Deployment and "
        "Service, or a Helm release) and reports progress in status. It carries finalizer "
        "finalizer.app.theriseunion.io, removed once what it provisioned is gone. Targeting a "
        "NodeGroup needs 'use' on it.",
    .spec_schema = REG_S_DESC_OBJ_REQ("What to deploy and where.", "\"application\"",
        "\"application\":" REG_S_DESC_STR("Name of the Application to deploy. Required.") ","
        "\"version\":" REG_S_DESC_STR("The ApplicationVersion's spec.version to deploy (it must "
            "be Approved), or latest: the Application's highest approved version by semver "
            "precedence, pre-releases never. Empty means latest.") ","
        "\"topologies\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"nodeGroup\"],\"x-kubernetes-patch-merge-key\":\"nodeGroup\","
        "\"x-kubernetes-patch-strategy\":\"merge\","
        "\"description\":\"Where to run it: one entry per NodeGroup, provisioned on that "
            "NodeGroup's cluster and pinned to its nodes.\","
        "\"items\":" REG_S_DESC_OBJ_REQ("One node group to run on.", "\"nodeGroup\"",
            "\"nodeGroup\":" REG_S_DESC_STR("Name of the NodeGroup. Required.") ","
            "\"replicas\":" REG_S_DESC_INT32("Number of replicas on the node group; at least 0, "
                "default 1.") ","
            "\"values\":" REG_S_DESC_ANY("For a helm version: Helm values merged over the "
                "version's own for this node group.")) "}"),
    .status_schema = REG_S_DESC_OBJ("What the ApplicationDeployment controller last saw. "
        "Written by the ApplicationDeployment controller; read-only for users.",
        "\"resolvedVersion\":" REG_S_DESC_STR("Written by the ApplicationDeployment controller: "
            "the version in effect, spec.version or what latest resolved to; absent while none "
            "resolves (condition VersionResolved False).") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("ApplicationDeployment") ","
        "\"conditions\":" REG_S_CONDITIONS("Written by the ApplicationDeployment controller: "
            "VersionResolved (False, reason VersionNotFound or VersionNotApproved, when the "
            "version does not resolve) and Progressing (True, RollingOut or Available; False, "
            "reason VersionUnresolved, NodeGroupNotFound, ClusterNotReady or ProvisionFailed).") ","
        "\"topologies\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"nodeGroup\"],"
        "\"description\":\"Written by the ApplicationDeployment controller: one entry per "
            "spec.topologies item.\","
        "\"items\":" REG_S_DESC_OBJ("How one topology is doing.",
            "\"nodeGroup\":" REG_S_DESC_STR("The NodeGroup, as in spec.topologies.") ","
            "\"phase\":" REG_S_DESC_STR("Pending (not provisioned yet: the NodeGroup or its "
                "Cluster is missing or not Ready), Progressing (provisioned, replicas not all "
                "ready), Available (every replica ready) or Failed (provisioning failed).") ","
            "\"readyReplicas\":" REG_S_DESC_INT32("Replicas ready on the node group.") ","
            "\"message\":" REG_S_DESC_STR("What holds the topology back, or how many replicas "
                "are ready.")) "}"),
};
