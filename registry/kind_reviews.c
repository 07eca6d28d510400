/* AccessReview and PermissionReview (iam, cluster-scoped): create-only
 * questions to the authorizer, answered in status and never stored. */
#include "reg_internal.h"

static const reg_column_t no_columns[] = {{NULL, NULL, 0, NULL, NULL}};

#define REG_S_RESOURCE_ATTRS                                                        \
    "{\"type\":\"object\",\"properties\":{\"namespace\":" REG_S_STR ",\"verb\":" REG_S_STR "," \
    "\"group\":" REG_S_STR ",\"version\":" REG_S_STR ",\"resource\":" REG_S_STR ","     \
    "\"subresource\":" REG_S_STR ",\"name\":" REG_S_STR ","                              \
    "\"fieldSelector\":" REG_S_ANY ",\"labelSelector\":" REG_S_ANY "}}"

static int review_access(reg_t *reg, json_t *obj, err_t *err);
static int review_permission(reg_t *reg, json_t *obj, err_t *err);

const reg_kind_t reg_kind_accessreview = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "accessreviews", .singular = "accessreview", .kind = "AccessReview",
    .create_only = 1, .columns = no_columns, .review = review_access,
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{\"user\":" REG_S_STR ",\"groups\":" REG_S_STRS ","
        "\"uid\":" REG_S_STR ",\"extra\":{\"type\":\"object\",\"additionalProperties\":" REG_S_STRS "},"
        "\"resourceAttributes\":" REG_S_RESOURCE_ATTRS ","
        "\"nonResourceAttributes\":{\"type\":\"object\",\"properties\":{\"path\":" REG_S_STR
        ",\"verb\":" REG_S_STR "}},\"cluster\":" REG_S_STR "}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"allowed\":" REG_S_BOOL ",\"denied\":" REG_S_BOOL ","
        "\"reason\":" REG_S_STR ",\"evaluationError\":" REG_S_STR ",\"trace\":{\"type\":\"array\","
        "\"items\":" REG_S_ANY "}}}",
};

const reg_kind_t reg_kind_permissionreview = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "permissionreviews", .singular = "permissionreview", .kind = "PermissionReview",
    .create_only = 1, .columns = no_columns, .review = review_permission,
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{\"user\":" REG_S_STR ",\"groups\":" REG_S_STRS ","
        "\"scope\":" REG_S_SCOPE_REF "}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"rules\":{\"type\":\"array\",\"items\":" REG_S_ANY "},"
        "\"uiPermissions\":{\"type\":\"array\",\"items\":" REG_S_ANY "}}}",
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
