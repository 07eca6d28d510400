/* IAMRole (iam, cluster-scoped): rules of its own plus those of the
 * RoleTemplates it names or selects, at one scope level. */
#include "reg_internal.h"

static const char *const short_names[] = {"iamr", NULL};

static json_t *cell_scope(const json_t *o) { return reg__cell_str(o, "spec.scope"); }
static json_t *cell_templates(const json_t *o) { return reg__cell_count(o, "spec.templateRefs"); }
static json_t *cell_rules(const json_t *o)
{
    /* Aggregated once the aggregation has run, else the role's own. */
    if (reg__at(o, "status.aggregatedRules"))
        return reg__cell_count(o, "status.aggregatedRules");
    return reg__cell_count(o, "spec.rules");
}

static const reg_column_t columns[] = {
    {"Scope", "string", 0, "The level this role applies at.", cell_scope},
    {"Templates", "integer", 0, "Number of referenced RoleTemplates.", cell_templates},
    {"Rules", "integer", 0, "Number of aggregated rules.", cell_rules},
    {NULL, NULL, 0, NULL, NULL},
};

static void validate(const json_t *obj, const json_t *old, err_t *err)
{
    (void)old;
    reg__validate_rules(obj, "spec.rules", err);
    reg__validate_rules(obj, "spec.denyRules", err);
}

const reg_kind_t reg_kind_iamrole = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "iamroles", .singular = "iamrole", .kind = "IAMRole",
    .short_names = short_names, .has_status = 1,
    .columns = columns, .validate = validate,
    .description =
        "IAMRole grants, at one scope level, its own rules plus those of the RoleTemplates it "
        "names (spec.templateRefs) or selects (spec.templateSelector). IAMRoleBindings grant it "
        "to users, groups and service accounts at a scope; the IAMRole controller writes what it "
        "grants, aggregated, into status. Creating, changing or relabelling one needs "
        "'escalate' on it, or holding every rule it grants at Platform scope.",
    .spec_schema = REG_S_DESC_OBJ("What the role grants and at which level.",
        "\"scope\":" REG_S_DESC_ENUM("The scope level the role is meant for: Platform, Cluster, "
            "Workspace, NodeGroup, Namespace, Node or Resource. RoleTemplates whose scopes "
            "exclude it contribute their denyRules only.", REG_S_LEVELS) ","
        "\"templateRefs\":" REG_S_DESC_STRS("Names of RoleTemplates whose rules, denyRules and "
            "uiPermissions the role takes (a name that matches no RoleTemplate sets condition "
            "TemplatesResolved False).") ","
        "\"templateSelector\":" REG_S_LABEL_SELECTOR("A label selector over RoleTemplates: every "
            "RoleTemplate it matches joins the role, as if named in templateRefs. Absent: none.") ","
        "\"rules\":" REG_S_RULES("Rules of the role's own, allowed besides its templates' "
            "(Kubernetes RBAC PolicyRules).") ","
        "\"denyRules\":" REG_S_RULES("Rules of the role's own that deny: a request matching a "
            "deny rule of any binding anywhere in its scope chain is denied, whatever allows it "
            "elsewhere.") ","
        "\"uiPermissions\":" REG_S_DESC_STRS("Console permissions of the role's own, granted "
            "besides its templates'.")),
    .status_schema = REG_S_DESC_OBJ("What the role grants in effect. Written by the IAMRole "
        "controller; read-only for users.",
        "\"aggregatedRules\":" REG_S_RULES("Written by the IAMRole controller: the role's rules "
            "plus those of every RoleTemplate it names or selects whose scopes include the "
            "role's scope, as the authorizer aggregates them.") ","
        "\"aggregatedDenyRules\":" REG_S_RULES("Written by the IAMRole controller: the role's "
            "denyRules plus those of every RoleTemplate it names or selects, whatever their "
            "scopes.") ","
        "\"aggregatedUIPermissions\":" REG_S_DESC_STRS("Written by the IAMRole controller: the "
            "role's uiPermissions plus those of the RoleTemplates it takes rules from.") ","
        "\"observedGeneration\":" REG_S_OBSERVED_GENERATION("IAMRole") ","
        "\"conditions\":" REG_S_CONDITIONS("Written by the IAMRole controller: TemplatesResolved "
            "(False, reason TemplatesNotFound, naming the templateRefs that name no "
            "RoleTemplate) and ScopeCompatible (False, reason ScopeExcluded, naming the templates "
            "whose scopes exclude the role's scope: their denyRules apply, their rules do not).")),
};
