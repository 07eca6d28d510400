/* AccessReview and PermissionReview (iam, cluster-scoped): create-only
 * questions to the authorizer, answered in status and never stored. */
#include "reg_internal.h"

static const reg_column_t no_columns[] = {{NULL, NULL, 0, NULL, NULL}};

/* SubjectAccessReview's ResourceAttributes, in kube's words. */
#define REG_S_RESOURCE_ATTRS                                                        \
    REG_S_DESC_OBJ("ResourceAttributes describes information for a resource access request.", \
        "\"namespace\":" REG_S_DESC_STR("Namespace is the namespace of the action being "   \
            "requested. '' (empty) is defaulted for LocalSubjectAccessReviews, '' (empty) "  \
            "is empty for cluster-scoped resources, '' (empty) means 'all' for namespace "   \
            "scoped resources from a SubjectAccessReview or SelfSubjectAccessReview.") ","   \
        "\"verb\":" REG_S_DESC_STR("Verb is a kubernetes resource API verb, like: get, list, " \
            "watch, create, update, delete, proxy.  '*' means all.") ","                    \
        "\"group\":" REG_S_DESC_STR("Group is the API Group of the Resource.  '*' means "    \
            "all.") ","                                                                      \
        "\"version\":" REG_S_DESC_STR("Version is the API Version of the Resource.  '*' "    \
            "means all.") ","                                                                \
        "\"resource\":" REG_S_DESC_STR("Resource is one of the existing resource types.  "   \
            "'*' means all.") ","                                                            \
        "\"subresource\":" REG_S_DESC_STR("Subresource is one of the existing resource "     \
            "types.  '' means none.") ","                                                    \
        "\"name\":" REG_S_DESC_STR("Name is the name of the resource being requested for a " \
            "'get' or deleted for a 'delete'. '' (empty) means all.") ","                    \
        "\"fieldSelector\":" REG_S_DESC_ANY("fieldSelector describes the limitation on "     \
            "access based on field.  It can only limit access, not broaden it (as in "        \
            "SubjectAccessReview: rawSelector or requirements).") ","                        \
        "\"labelSelector\":" REG_S_DESC_ANY("labelSelector describes the limitation on "     \
            "access based on labels.  It can only limit access, not broaden it (as in "       \
            "SubjectAccessReview: rawSelector or requirements). A selector requiring "        \
            "scope.theriseunion.io/workspace=NAME on namespaces, or "                         \
            "scope.theriseunion.io/nodegroup=NAME on nodes, places the request at that "     \
            "Workspace or NodeGroup."))

/* How a PermissionReview's answer names where a rule comes from. */
#define REG_S_FROM_WHERE                                                            \
    "{rule, binding, role, scope}: the PolicyRule, the IAMRoleBinding that grants it, its " \
    "IAMRole and the ScopeRef of the binding's scope."

static int review_access(reg_t *reg, json_t *obj, err_t *err);
static int review_permission(reg_t *reg, json_t *obj, err_t *err);

const reg_kind_t reg_kind_accessreview = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "accessreviews", .singular = "accessreview", .kind = "AccessReview",
    .create_only = 1, .columns = no_columns, .review = review_access,
    .description =
        "AccessReview asks the authorizer whether a user may perform an action, as a "
        "SubjectAccessReview does, and answers in status with a trace of the scopes looked at, "
        "in order, and what each binding there did. Create-only: the answer is returned, "
        "nothing is stored.",
    .spec_schema = REG_S_DESC_OBJ("The request to judge, as in a SubjectAccessReview: who, and "
        "either resourceAttributes or nonResourceAttributes.",
        "\"user\":" REG_S_DESC_STR("User is the user you're testing for.") ","
        "\"groups\":" REG_S_DESC_STRS("Groups is the groups you're testing for.") ","
        "\"uid\":" REG_S_DESC_STR("UID information about the requesting user.") ","
        "\"extra\":" REG_S_DESC_MAP("Extra corresponds to the user.Info.GetExtra() method from "
            "the authenticator.  Since that is input to the authorizer it needs a reflection "
            "here.", REG_S_DESC_STRS("Values of one extra key.")) ","
        "\"resourceAttributes\":" REG_S_RESOURCE_ATTRS ","
        "\"nonResourceAttributes\":" REG_S_DESC_OBJ("NonResourceAttributes includes the "
            "authorization attributes available for non-resource requests to the Authorizer "
            "interface",
            "\"path\":" REG_S_DESC_STR("Path is the URL path of the request") ","
            "\"verb\":" REG_S_DESC_STR("Verb is the standard HTTP verb")) ","
        "\"cluster\":" REG_S_DESC_STR("The member cluster the request is made to; empty means "
            "the server's own cluster (its --cluster-name).")),
    .status_schema = REG_S_DESC_OBJ("The answer, filled in by the authorizer on create.",
        "\"allowed\":" REG_S_DESC_BOOL("Filled in by the authorizer: true when a binding in the "
            "request's scope chain allows it and no deny rule applies.") ","
        "\"denied\":" REG_S_DESC_BOOL("Filled in by the authorizer: true when a deny rule of a "
            "binding in the scope chain matches. Allowed and denied both false is 'no opinion': "
            "kube-apiserver's next authorizer (RBAC) decides.") ","
        "\"reason\":" REG_S_DESC_STR("Filled in by the authorizer: why, naming the binding, "
            "role and scope that decided.") ","
        "\"evaluationError\":" REG_S_DESC_STR("Filled in by the authorizer when the evaluation "
            "failed (the answer is then 'no opinion').") ","
        "\"trace\":" REG_S_DESC_ARRAY("Filled in by the authorizer: the scopes looked at, most "
            "specific first, each an object {scope, bindings}: scope is the ScopeRef looked at "
            "(level, and cluster, name, namespace, group, resource as the level needs them); "
            "bindings lists the subject's IAMRoleBindings there, each {binding, role, result, "
            "rule}: result is allowed, denied, no matching rule, IAMRole not found, or allowed "
            "(a lower scope already allowed); rule is the PolicyRule that matched, if any.",
            REG_S_ANY)),
};

const reg_kind_t reg_kind_permissionreview = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "permissionreviews", .singular = "permissionreview", .kind = "PermissionReview",
    .create_only = 1, .columns = no_columns, .review = review_permission,
    .description =
        "PermissionReview asks which rules, deny rules and UI permissions a user holds at a "
        "scope, cascaded down the scope chain exactly as the authorizer cascades them, each "
        "with the binding and scope it comes from. Create-only: the answer is returned in "
        "status, nothing is stored.",
    .spec_schema = REG_S_DESC_OBJ("Whose permissions, and where.",
        "\"user\":" REG_S_DESC_STR("The user whose permissions are listed.") ","
        "\"groups\":" REG_S_DESC_STRS("The user's groups: bindings to any of them count.") ","
        "\"scope\":" REG_S_SCOPE_REF("The scope asked about; the answer holds what applies there, "
            "from bindings at it and at every scope above it. level is required.")),
    .status_schema = REG_S_DESC_OBJ("The answer, filled in by the authorizer on create.",
        "\"rules\":" REG_S_DESC_ARRAY("Filled in by the authorizer: the rules in effect at the "
            "scope, each " REG_S_FROM_WHERE, REG_S_ANY) ","
        "\"denyRules\":" REG_S_DESC_ARRAY("Filled in by the authorizer: the deny rules in effect "
            "at the scope, each " REG_S_FROM_WHERE, REG_S_ANY) ","
        "\"uiPermissions\":" REG_S_DESC_ARRAY("Filled in by the authorizer: the console "
            "permissions in effect at the scope, each {permission, binding, role, scope}: the "
            "permission, the IAMRoleBinding that grants it, its IAMRole and the ScopeRef of the "
            "binding's scope.", REG_S_ANY)),
};

/* The answer comes from the authorizer, which installs itself as the
 * registry's review hook. Each row of the kind table names the review it
 * is, so the hook is told the kind being created, never one guessed from
 * the object's text. */
static int ask(reg_t *reg, const reg_kind_t *k, json_t *obj, err_t *err)
{
    if (!reg->review)
        return err_set(err, ERR_UNAVAILABLE, "the authorizer is not running");
    return reg->review(reg->review_arg, k, obj, err);
}

static int review_access(reg_t *reg, json_t *obj, err_t *err)
{
    return ask(reg, &reg_kind_accessreview, obj, err);
}

static int review_permission(reg_t *reg, json_t *obj, err_t *err)
{
    return ask(reg, &reg_kind_permissionreview, obj, err);
}
