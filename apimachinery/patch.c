/*
 * What the three patch engines share: the metadata list rules, and the
 * helpers of patch_internal.h. The engines themselves are json_patch.c
 * (RFC 6902), merge_patch.c (RFC 7386) and strategic_merge_patch.c; the
 * contract is in patch.h.
 *
 * All three engines work the same way: deep-copy the document once, then
 * edit that private copy in place. The inputs are never touched, and a
 * failure halfway through leaves exactly one tree to drop. Every jansson call
 * that can allocate is checked; its failure is ERR_NOMEM. Values taken from a
 * patch are deep-copied too, so the result shares nothing with the inputs.
 */
#include "patch_internal.h"

#include <stdint.h>
#include <string.h>

#include "../lib/mem.h"

const patch_list_rule_t patch_metadata_rules[] = {
    {"metadata.finalizers", NULL},
    {"metadata.ownerReferences", "uid"},
    {NULL, NULL},
};

const patch_list_rule_t *patch_find_rule(const patch_list_rule_t *rules,
                                         const char *path)
{
    const patch_list_rule_t *tables[] = {rules, patch_metadata_rules};

    if (!path)
        return NULL;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const patch_list_rule_t *r = tables[t]; r && r->path; r++)
            if (strcmp(r->path, path) == 0)
                return r;
    return NULL;
}

/* ---- shared helpers ------------------------------------------------------ */

int patch__nomem(err_t *err) { return err_set(err, ERR_NOMEM, NULL); }

int patch__too_deep(err_t *err)
{
    return err_set(err, ERR_BAD_REQUEST, "patch nests too deeply");
}

/* Replaces the value *slot owns with a deep copy of v. */
int patch__replace_with_copy(json_t **slot, const json_t *v, err_t *err)
{
    json_t *copy = json_deep_copy(v);

    if (!copy)
        return patch__nomem(err);
    json_decref(*slot);
    *slot = copy;
    return 0;
}

/* Replaces the value *slot owns with a new empty object unless it already
 * is an object. */
int patch__ensure_object(json_t **slot, err_t *err)
{
    json_t *obj;

    if (json_is_object(*slot))
        return 0;
    obj = json_object();
    if (!obj)
        return patch__nomem(err);
    json_decref(*slot);
    *slot = obj;
    return 0;
}

/* JSON equality as RFC 6902 "test" defines it: json_equal, except that
 * numbers compare by value, so 1 equals 1.0. */
int patch__values_equal(const json_t *a, const json_t *b)
{
    const char *key;
    json_t *v;
    size_t i;

    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, v) {
            const json_t *w = json_object_get(b, key);
            if (!w || !patch__values_equal(v, w))
                return 0;
        }
        return 1;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        json_array_foreach(a, i, v) {
            if (!patch__values_equal(v, json_array_get(b, i)))
                return 0;
        }
        return 1;
    default:
        return json_equal(a, b);
    }
}

