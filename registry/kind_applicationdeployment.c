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
    .spec_schema =
        "{\"type\":\"object\",\"required\":[\"application\"],\"properties\":{"
        "\"application\":" REG_S_STR ",\"version\":" REG_S_STR ","
        "\"topologies\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"nodeGroup\"],\"x-kubernetes-patch-merge-key\":\"nodeGroup\","
        "\"x-kubernetes-patch-strategy\":\"merge\",\"items\":{\"type\":\"object\","
        "\"required\":[\"nodeGroup\"],\"properties\":{\"nodeGroup\":" REG_S_STR ","
        "\"replicas\":{\"type\":\"integer\",\"format\":\"int32\"},\"values\":" REG_S_ANY "}}}}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"resolvedVersion\":" REG_S_STR ","
        "\"observedGeneration\":" REG_S_INT ",\"conditions\":" REG_S_CONDITIONS ","
        "\"topologies\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"nodeGroup\"],\"items\":{\"type\":\"object\","
        "\"properties\":{\"nodeGroup\":" REG_S_STR ",\"phase\":" REG_S_STR ","
        "\"readyReplicas\":{\"type\":\"integer\",\"format\":\"int32\"},\"message\":" REG_S_STR "}}}}}",
};
