/*
 * JSON merge patch (RFC 7386). The contract is in patch.h.
 */
#include "patch_internal.h"

#include <stdint.h>
#include <string.h>

#include "../lib/mem.h"

/* ---- JSON merge patch (RFC 7386) ------------------------------------------ */

/* Merges patch into *target (owned; may be NULL or replaced). depth counts
 * the patch objects entered so far. */
static int merge_into(json_t **target, const json_t *patch, int depth,
                      err_t *err)
{
    const char *key;
    json_t *v, *child;
    int rc;

    if (!json_is_object(patch))
        return patch__replace_with_copy(target, patch, err);
    if (depth > PATCH_MAX_DEPTH)
        return patch__too_deep(err);
    rc = patch__ensure_object(target, err);
    if (rc)
        return rc;
    json_object_foreach((json_t *)patch, key, v) {
        if (json_is_null(v)) {
            json_object_del(*target, key);
            continue;
        }
        /* Our own reference, so the child survives being replaced in place. */
        child = json_incref(json_object_get(*target, key));
        rc = merge_into(&child, v, depth + 1, err);
        if (rc) {
            json_decref(child);
            return rc;
        }
        if (json_object_set_new_nocheck(*target, key, child))
            return patch__nomem(err);
    }
    return 0;
}

int patch_merge(const json_t *doc, const json_t *patch, json_t **out,
                err_t *err)
{
    json_t *res = NULL;
    int rc;

    if (!doc || !patch || !out)
        return err_set(err, ERR_INTERNAL, "patch_merge: NULL argument");
    *out = NULL;
    res = json_deep_copy(doc);
    if (!res) {
        rc = patch__nomem(err);
        goto out;
    }
    rc = merge_into(&res, patch, 1, err);
    if (rc)
        goto out;
    *out = res;
    res = NULL;
out:
    json_decref(res);
    return rc;
}

