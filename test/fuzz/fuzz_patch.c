/*
 * Fuzzes apimachinery/patch (PATCH bodies): the input, decoded as the server
 * decodes a body, is applied to a fixed IAMRoleBinding as a JSON patch, a
 * merge patch and a strategic merge patch. No crash, no leak; the inputs
 * are left as they were and share no value with a result; a result is a
 * JSON object unless the patch may replace the whole document (a merge
 * patch that is not an object, a JSON patch operation on the root "").
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "../../apimachinery/patch.h"
#include "../../lib/mem.h"
#include "fuzz.h"

/* As registry/kind_iamrolebinding.c and kind_nodegroup.c have them. */
static const patch_list_rule_t rules[] = {
    {"spec.subjects", "kind,name"},
    {"spec.nodes", NULL},
    {"status.conditions", "type"},
    {NULL, NULL},
};

static const char doc_text[] =
    "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
    "\"metadata\":{\"name\":\"ops\",\"namespace\":\"edge\",\"uid\":\"u1\","
    "\"labels\":{\"app\":\"a\"},\"finalizers\":[\"f1\",\"f2\"],"
    "\"ownerReferences\":[{\"uid\":\"o1\",\"kind\":\"Workspace\",\"name\":\"w\"}]},"
    "\"spec\":{\"roleRef\":{\"kind\":\"IAMRole\",\"name\":\"viewer\"},"
    "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"},{\"kind\":\"Group\",\"name\":\"ops\"}],"
    "\"nodes\":[\"n1\",\"n2\"],\"scope\":{\"level\":\"Workspace\",\"name\":\"ws1\"}},"
    "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}";

/* Whether some operation of a JSON patch names the root as its path. */
static int touches_root(const json_t *ops)
{
    size_t i;
    const json_t *op;
    json_array_foreach(ops, i, op) {
        const char *path = json_string_value(json_object_get(op, "path"));
        if (path && !*path)
            return 1;
    }
    return 0;
}

/* Changes every value of v in place, so that a value out shared with doc
 * or the patch shows as a change to them. */
static void scribble(json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_foreach(v, key, item) {
            scribble(item);
        }
        FUZZ_CHECK(json_object_set_new(v, "$scribbled", json_null()) == 0);
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, item) {
            scribble(item);
        }
        FUZZ_CHECK(json_array_append_new(v, json_null()) == 0);
        break;
    case JSON_STRING:
        FUZZ_CHECK(json_string_set(v, "$scribbled") == 0);
        break;
    case JSON_INTEGER:
        FUZZ_CHECK(json_integer_set(v, 0x5c5c) == 0);
        break;
    case JSON_REAL:
        FUZZ_CHECK(json_real_set(v, 0.125) == 0);
        break;
    default:
        break;
    }
}

/* rc and out agree, a failure carries its code, and a success gives an
 * object where one is due. */
static void check_result(int rc, json_t *out, const err_t *err, int object_due)
{
    if (rc) {
        FUZZ_CHECK(!out && err->code == rc);
        FUZZ_CHECK(rc == ERR_BAD_REQUEST || rc == ERR_INVALID);
        return;
    }
    FUZZ_CHECK(out != NULL);
    FUZZ_CHECK(!object_due || json_is_object(out));
    scribble(out);
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > FUZZ_MAX_LEN)
        return 0;
    json_t *patch = json_loadb((const char *)data, size, 0, NULL);
    if (!patch)
        return 0;
    json_t *doc = json_loads(doc_text, 0, NULL);
    json_t *doc0 = json_deep_copy(doc), *patch0 = json_deep_copy(patch);
    FUZZ_CHECK(doc && doc0 && patch0);

    json_t *out = NULL;
    err_t err = {0};
    int rc = patch_json(doc, patch, &out, &err);
    check_result(rc, out, &err, !touches_root(patch));

    out = NULL;
    err_t merr = {0};
    rc = patch_merge(doc, patch, &out, &merr);
    check_result(rc, out, &merr, json_is_object(patch));

    out = NULL;
    err_t serr = {0};
    rc = patch_strategic(doc, patch, rules, &out, &serr);
    check_result(rc, out, &serr, 1);

    /* Inputs are borrowed, never modified, and share nothing with a
     * result (scribbled over above). */
    FUZZ_CHECK(json_equal(doc, doc0) && json_equal(patch, patch0));
    json_decref(patch0);
    json_decref(doc0);
    json_decref(doc);
    json_decref(patch);
    return 0;
}
