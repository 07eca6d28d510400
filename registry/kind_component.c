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
