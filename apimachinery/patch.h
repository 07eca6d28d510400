/*
 * patch: the three PATCH formats kube-apiserver accepts besides apply:
 * RFC 6902 JSON patch, RFC 7386 JSON merge patch, and Kubernetes strategic
 * merge patch (k8s.io/apimachinery/pkg/util/strategicpatch).
 *
 * Owns nothing beyond each call. Inputs are borrowed and never modified;
 * each function returns a new document (*out, a reference the caller owns)
 * or a negative ERR_* code with details in err:
 *   ERR_BAD_REQUEST  the patch itself is malformed (kube: 400 BadRequest)
 *   ERR_INVALID      a well-formed patch cannot apply to this document, e.g.
 *                    a JSON patch "test" fails or a path is missing
 *                    (kube: 422 Invalid)
 *   ERR_NOMEM
 * Nesting deeper than PATCH_MAX_DEPTH is ERR_BAD_REQUEST.
 *
 * Strategic merge needs to know, per list field, whether it merges by key:
 * a kind passes a table of patch_list_rule_t. Lists without a rule are
 * replaced wholesale, as for CRDs. Thread-safe: no shared state.
 */
#ifndef EDGE_PATCH_H
#define EDGE_PATCH_H

#include <jansson.h>

#include "../lib/err.h"

#define PATCH_MAX_DEPTH 64

/* A list field that strategic merge (and server-side apply) merge by key.
 * path: the dotted field path from the object root, list items adding no
 * segment ("spec.subjects", "status.conditions",
 * "spec.workload.template.spec.containers"). keys: comma-separated merge
 * keys ("type", "kind,name"); NULL for a list of scalars merged as a set
 * (like metadata.finalizers). Tables end with {NULL, NULL}. */
typedef struct patch_list_rule {
    const char *path;
    const char *keys;
} patch_list_rule_t;

/* The rules every kind shares (metadata.finalizers as a set,
 * metadata.ownerReferences by uid); kinds append their own. */
extern const patch_list_rule_t patch_metadata_rules[];

/* Finds the rule for path in rules (which may be NULL), then in
 * patch_metadata_rules; NULL if none. Returns a pointer into the table. */
const patch_list_rule_t *patch_find_rule(const patch_list_rule_t *rules,
                                         const char *path);

/* All three: on success *out is a new document the caller owns (sharing no
 * value with doc or the patch); on failure *out is NULL. A NULL argument is
 * ERR_INTERNAL. */

/* RFC 6902 JSON patch: ops is an array of {"op", "path", "from", "value"}
 * with op add, remove, replace, move, copy or test; paths are RFC 6901
 * pointers ("~0" '~', "~1" '/', "-" appends to an array). Every operation
 * is checked before any applies, so ERR_BAD_REQUEST (ops not an array, an
 * operation not an object, missing or non-string path/from,
 * missing value, malformed pointer, move into its own child, more than
 * PATCH_MAX_DEPTH tokens) does not depend on doc; an unknown op is
 * ERR_INVALID ("Unexpected kind: <op>", kube's 422) checked as early.
 * ERR_INVALID when an operation cannot apply (missing path, index out of
 * range, test failed, removing the root); messages follow evanphx/json-patch, e.g.
 * `add operation does not apply: doc is missing path: "/a/b": missing value`
 * and `testing value /a failed: test failed`. "test" compares numbers by
 * value (1 equals 1.0). */
int patch_json(const json_t *doc, const json_t *ops, json_t **out, err_t *err);

/* RFC 7386 merge patch: null deletes a key, objects merge recursively, any
 * other value (arrays included) replaces; a non-object patch replaces the
 * whole document. ERR_BAD_REQUEST only for nesting deeper than
 * PATCH_MAX_DEPTH objects. */
int patch_merge(const json_t *doc, const json_t *patch, json_t **out, err_t *err);

/* Kubernetes strategic merge patch (k8s.io/apimachinery/pkg/util/
 * strategicpatch). patch must be an object. Maps merge recursively and null
 * deletes a key. A list field is looked up by dotted path in rules, then
 * patch_metadata_rules:
 *   - no rule: the patch's list replaces the live one;
 *   - keys (all must match): a patch item merges into the first live item
 *     with equal keys, else is appended; {"$patch": "delete", <keys>}
 *     removes every matching live item; an item of the patch lacking a key
 *     is ERR_BAD_REQUEST;
 *   - NULL keys, a set of scalars: union, live order first, new values
 *     appended, duplicates dropped;
 *   - in any list, an item {"$patch": "replace"} drops the live items, so
 *     the list becomes the patch's other items.
 * Directives in a map:
 *   "$patch": "replace"            the map becomes the patch's other keys;
 *   "$patch": "delete"             the map becomes {} (as upstream does:
 *                                  the key stays, emptied);
 *   "$retainKeys": [names]         after the merge, keys not named are
 *                                  dropped; a non-null patch field missing
 *                                  from the list is ERR_BAD_REQUEST;
 *   "$deleteFromPrimitiveList/f": [values]  removes those values from list f;
 *   "$setElementOrder/f": [items]  orders list f after the merge: the items
 *                                  named (by merge keys, else by value)
 *                                  follow this order, others keep their
 *                                  place relative to the live list; the
 *                                  patch's own items for f must appear in
 *                                  it in the same order.
 * Other "$" keys ("$ref") are plain fields. Unknown "$patch" values
 * ("merge" included), malformed directives, items that do not fit the
 * list's rule, and nesting deeper than PATCH_MAX_DEPTH are ERR_BAD_REQUEST.
 * Directive keys never reach the output, nor do nulls inside new values.
 * Unlike upstream, patch items keep no say in the order of a merged list
 * unless "$setElementOrder" is given. */
int patch_strategic(const json_t *doc, const json_t *patch,
                    const patch_list_rule_t *rules, json_t **out, err_t *err);

#endif
