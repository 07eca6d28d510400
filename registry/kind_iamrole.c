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
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"scope\":{\"type\":\"string\",\"enum\":[" REG_S_LEVELS "]},"
        "\"templateRefs\":" REG_S_STRS ",\"templateSelector\":" REG_S_LABEL_SELECTOR ","
        "\"rules\":" REG_S_RULES ",\"denyRules\":" REG_S_RULES ","
        "\"uiPermissions\":" REG_S_STRS "}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{"
        "\"aggregatedRules\":" REG_S_RULES ",\"aggregatedDenyRules\":" REG_S_RULES ","
        "\"aggregatedUIPermissions\":" REG_S_STRS ","
        "\"observedGeneration\":" REG_S_INT ",\"conditions\":" REG_S_CONDITIONS "}}",
};
