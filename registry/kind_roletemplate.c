/* RoleTemplate (iam, cluster-scoped): a reusable set of rules and UI
 * permissions, usable at the scopes it lists. */
#include "reg_internal.h"

static const char *const short_names[] = {"rt", NULL};

static json_t *cell_scopes(const json_t *o) { return reg__cell_join(o, "spec.scopes", NULL, 6); }
static json_t *cell_rules(const json_t *o) { return reg__cell_count(o, "spec.rules"); }
static json_t *cell_ui(const json_t *o) { return reg__cell_join(o, "spec.uiPermissions", NULL, 4); }

static const reg_column_t columns[] = {
    {"Scopes", "string", 0, "Levels where the template may be used.", cell_scopes},
    {"Rules", "integer", 0, "Number of rules.", cell_rules},
    {"UI-Permissions", "string", 1, "Console permissions granted.", cell_ui},
    {NULL, NULL, 0, NULL, NULL},
};

static void validate(const json_t *obj, const json_t *old, err_t *err)
{
    (void)old;
    reg__validate_rules(obj, "spec.rules", err);
    reg__validate_rules(obj, "spec.denyRules", err);
}

const reg_kind_t reg_kind_roletemplate = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "roletemplates", .singular = "roletemplate", .kind = "RoleTemplate",
    .short_names = short_names,
    .columns = columns, .validate = validate,
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"displayName\":" REG_S_STR ",\"description\":" REG_S_STR ","
        "\"scopes\":{\"type\":\"array\",\"description\":\"Levels where it may be used.\","
        "\"items\":{\"type\":\"string\",\"enum\":[\"Platform\",\"Cluster\",\"Workspace\","
        "\"NodeGroup\",\"Namespace\",\"Node\"]}},"
        "\"rules\":" REG_S_RULES ",\"denyRules\":" REG_S_RULES ","
        "\"uiPermissions\":" REG_S_STRS "}}",
};
