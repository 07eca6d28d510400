/* Component (ext, cluster-scoped): a Helm chart the platform installs,
 * with dependencies on other Components (controllers/component.c installs
 * it; spec.namespace empty means edge-system). */
#include <string.h>

#include "reg_internal.h"

#define COMPONENT_FINALIZER "finalizer.ext.theriseunion.io"

/* Adds the finalizer the Component controller removes once the release
 * is uninstalled, unless the object names it already. A finalizers field
 * that is not an array is left for validation to refuse. */
static int on_create(json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *fins = json_object_get(meta, "finalizers");
    if (!json_is_object(meta) || (fins && !json_is_array(fins) && !json_is_null(fins)))
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(fins, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), COMPONENT_FINALIZER))
            return 0;
    }
    if (!json_is_array(fins)) {
        fins = json_array();
        if (!fins || json_object_set_new(meta, "finalizers", fins))
            return ERR_NOMEM;
    }
    return json_array_append_new(fins, json_string(COMPONENT_FINALIZER)) ? ERR_NOMEM : 0;
}

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
    .spec_schema =
        "{\"type\":\"object\",\"required\":[\"chart\"],\"properties\":{\"chart\":" REG_S_STR ","
        "\"version\":" REG_S_STR ",\"repository\":" REG_S_STR ",\"values\":" REG_S_ANY ","
        "\"dependsOn\":" REG_S_STRS ",\"cluster\":" REG_S_STR ",\"namespace\":" REG_S_STR "}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"observedHash\":" REG_S_STR ","
        "\"resolvedVersion\":" REG_S_STR ","
        "\"phase\":{\"type\":\"string\",\"enum\":[\"Pending\",\"Blocked\",\"Fetching\",\"Fetched\","
        "\"Installing\",\"Installed\",\"Failed\"]},\"chartDigest\":" REG_S_STR ","
        "\"conditions\":" REG_S_CONDITIONS ",\"observedGeneration\":" REG_S_INT "}}",
};
