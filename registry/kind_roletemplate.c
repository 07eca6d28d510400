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
    .description =
        "RoleTemplate is a reusable set of RBAC policy rules, deny rules and console (UI) "
        "permissions, usable by IAMRoles at the scope levels it lists. An IAMRole takes a "
        "template by name (spec.templateRefs) or by label (spec.templateSelector). Creating or "
        "changing one needs 'escalate' on it, or holding every rule it grants at Platform scope.",
    .spec_schema = REG_S_DESC_OBJ("What the template grants and where it may be used.",
        "\"displayName\":" REG_S_DESC_STR("Human-readable name shown by the console.") ","
        "\"description\":" REG_S_DESC_STR("Free text: what the template is for.") ","
        "\"scopes\":{\"type\":\"array\",\"description\":\"Levels where the template may be used: "
        "Platform, Cluster, Workspace, NodeGroup, Namespace, Node. An IAMRole whose scope is not "
        "listed gets the template's denyRules but not its rules (condition ScopeCompatible "
        "False). Empty: every level.\","
        "\"items\":{\"type\":\"string\",\"enum\":[\"Platform\",\"Cluster\",\"Workspace\","
        "\"NodeGroup\",\"Namespace\",\"Node\"]}},"
        "\"rules\":" REG_S_RULES("Rules the template allows, as Kubernetes RBAC PolicyRules: "
            "verbs required; a resource rule names API groups and resources, a non-resource rule "
            "names nonResourceURLs only.") ","
        "\"denyRules\":" REG_S_RULES("Rules the template denies: a request matching a deny rule "
            "of any binding anywhere in its scope chain is denied, whatever allows it elsewhere. "
            "Applied even where the template's scopes exclude the role's scope.") ","
        "\"uiPermissions\":" REG_S_DESC_STRS("Console permissions the template grants (free-form "
            "names the console checks).")),
};
