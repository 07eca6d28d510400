/*
 * patch_internal: what the patch engines (json_patch.c, merge_patch.c,
 * strategic_merge_patch.c) share, defined in patch.c; nothing outside
 * apimachinery/ uses it. Each returns 0 or the ERR_* it set in err.
 */
#ifndef EDGE_APIM_PATCH_INTERNAL_H
#define EDGE_APIM_PATCH_INTERNAL_H

#include "patch.h"

/* ERR_NOMEM, set in err. */
int patch__nomem(err_t *err);
/* ERR_BAD_REQUEST: the patch nests deeper than PATCH_MAX_DEPTH. */
int patch__too_deep(err_t *err);
/* Replaces the value *slot owns with a deep copy of v. */
int patch__replace_with_copy(json_t **slot, const json_t *v, err_t *err);
/* Replaces the value *slot owns with a new empty object unless it already
 * is an object. */
int patch__ensure_object(json_t **slot, err_t *err);
/* JSON equality as RFC 6902 "test" defines it: json_equal, except that
 * numbers compare by value, so 1 equals 1.0. 1 when equal. */
int patch__values_equal(const json_t *a, const json_t *b);

#endif
