/* AccessReview and PermissionReview (iam, cluster-scoped): create-only
 * questions to the authorizer, answered in status and never stored. */
#include "reg_internal.h"

static const reg_column_t no_columns[] = {{NULL, NULL, 0, NULL, NULL}};

#define REG_S_RESOURCE_ATTRS                                                        \
    "{\"type\":\"object\",\"properties\":{\"namespace\":" REG_S_STR ",\"verb\":" REG_S_STR "," \
    "\"group\":" REG_S_STR ",\"version\":" REG_S_STR ",\"resource\":" REG_S_STR ","     \
    "\"subresource\":" REG_S_STR ",\"name\":" REG_S_STR ","                              \
    "\"fieldSelector\":" REG_S_ANY ",\"labelSelector\":" REG_S_ANY "}}"

static int review(reg_t *reg, json_t *obj, err_t *err);

const reg_kind_t reg_kind_accessreview = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "accessreviews", .singular = "accessreview", .kind = "AccessReview",
    .create_only = 1, .columns = no_columns, .review = review,
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
    .create_only = 1, .columns = no_columns, .review = review,
    .spec_schema =
        "{\"type\":\"object\",\"properties\":{\"user\":" REG_S_STR ",\"groups\":" REG_S_STRS ","
        "\"scope\":" REG_S_SCOPE_REF "}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"rules\":{\"type\":\"array\",\"items\":" REG_S_ANY "},"
        "\"uiPermissions\":{\"type\":\"array\",\"items\":" REG_S_ANY "}}}",
};

/* The answer comes from the authorizer, which installs itself as the
 * registry's review hook. */
static int review(reg_t *reg, json_t *obj, err_t *err)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const reg_kind_t *k = kind && kind[0] == 'A' ? &reg_kind_accessreview
                                                 : &reg_kind_permissionreview;
    if (!reg->review)
        return err_set(err, ERR_UNAVAILABLE, "the authorizer is not running");
    return reg->review(reg->review_arg, k, obj, err);
}
