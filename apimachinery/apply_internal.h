/*
 * apply_internal: what the files of server-side apply share; nothing
 * outside apimachinery/ uses it.
 *
 *   fieldset.c       sets, their path elements and FieldsV1, the set of an
 *                    object, and the walking context every walk carries;
 *   compare.c        what changed between two objects, as sets;
 *   managedfields.c  managedFields entries, their wire form, and the
 *                    tracking of ordinary writes (apply_track_update);
 *   conflicts.c      which owners an apply conflicts with, and the 409;
 *   apply.c          the apply driver: merge, prune, and the steps above.
 *
 * Sets are JSON objects, one per path node: the keys are path elements in
 * FieldsV1 spelling ("f:name", "k:{...}", "v:...") and the key "." marks the
 * node as owned. Every node but the root is owned or has children; empty
 * nodes are never attached. FieldsV1 writes an owned node without children
 * as {}, which decoding and encoding translate.
 *
 * Everything recursive is bounded: inputs are checked against
 * PATCH_MAX_DEPTH first (apply__too_deep), sets derive from them or are
 * decoded with a depth limit.
 *
 * Errors as in apply.h: 0 or a negative ERR_*. A function given a ctx sets
 * c->err itself only where it says so; the others leave ERR_NOMEM to their
 * caller. No shared state: everything is thread-safe.
 */
#ifndef EDGE_APIM_APPLY_INTERNAL_H
#define EDGE_APIM_APPLY_INTERNAL_H

#include <jansson.h>

#include "../lib/err.h"
#include "../lib/sbuf.h"
#include "apply.h"

/* Dotted rule paths longer than this match no rule (no rule is that long). */
#define APPLY_PATH_MAX 512
/* Path elements remembered for messages; deeper ones are left out. */
#define APPLY_SEGS (2 * PATCH_MAX_DEPTH + 8)

/* How a list merges: as a whole, as a set of scalars, or item by merge key. */
enum { APPLY__LIST_ATOMIC, APPLY__LIST_SET, APPLY__LIST_KEYED };
/* How a node is walked (apply__shape_of). */
enum { APPLY__SHAPE_LEAF, APPLY__SHAPE_MAP, APPLY__SHAPE_LIST };

/* ---- fieldset.c: strings ---------------------------------------------------- */

/* The built string (caller owns), or NULL when an allocation failed. */
char *apply__sb_take(sbuf_t *b);
/* Appends the n bytes at s as a JSON string, as Go's encoder writes it. */
void apply__sb_json_str(sbuf_t *b, const char *s, size_t n);
/* Appends a path element in fieldpath's notation (".name", "[k=\"v\"]",
 * "[=\"v\"]"). 0 or ERR_NOMEM. */
int apply__sb_disp_pe(sbuf_t *b, const char *pe);

/* ---- fieldset.c: walking context --------------------------------------------- */

/* Where a walk is: the dotted path list rules are looked up by (items add
 * no segment) and the path elements from the root, for messages. */
typedef struct apply__ctx {
    const patch_list_rule_t *rules;
    err_t *err;
    const char *what;            /* "<ns>/<name>; <gvk>" of the applied object */
    char path[APPLY_PATH_MAX];
    size_t len;
    int lost;                    /* > 0 while the dotted path does not fit */
    const char *seg[APPLY_SEGS];
    int nseg;                    /* may exceed APPLY_SEGS; the excess is not kept */
} apply__ctx_t;

/* A context at the root; rules and err are borrowed for its life. */
void apply__ctx_init(apply__ctx_t *c, const patch_list_rule_t *rules, err_t *err);
/* Enters map field name, whose set key is seg (borrowed until the matching
 * apply__ctx_leave). Returns what apply__ctx_leave needs. */
size_t apply__ctx_enter(apply__ctx_t *c, const char *name, const char *seg);
void apply__ctx_leave(apply__ctx_t *c, size_t at);
/* APPLY__LIST_* of the list at c's path, with its rule (NULL if atomic). */
int apply__list_kind(const apply__ctx_t *c, const patch_list_rule_t **rule);
/* 1 when v nests deeper than left levels. */
int apply__too_deep(const json_t *v, int left);

/* ---- fieldset.c: path elements ----------------------------------------------- */

/* The path element of item in the keyed or set list of rule: 0 with *pe
 * (caller owns), ERR_NOMEM, or 1 when the item cannot be named (reason in
 * why). */
int apply__item_pe(const patch_list_rule_t *rule, const json_t *item, char **pe, char *why,
                   size_t whylen);
/* "f:<name>", caller owns; NULL on allocation failure. */
char *apply__field_key(const char *name);

/* ---- fieldset.c: sets ---------------------------------------------------------- */

/* Marks node as owned. 0 or ERR_NOMEM. */
int apply__set_mark(json_t *node);
/* Whether node (may be NULL) is owned. */
int apply__set_is_member(const json_t *node);
/* Whether node has children. */
int apply__set_has_children(const json_t *node);
/* Attaches child (taken) under key, unless it is empty. 0 or ERR_NOMEM. */
int apply__set_attach(json_t *node, const char *key, json_t *child);
/* Adds the members of b to dst. 0 or ERR_NOMEM. */
int apply__set_union_into(json_t *dst, const json_t *b);
/* a ∪ b, a − b, a ∩ b: new sets (caller owns), NULL on allocation failure;
 * a and b may be NULL (the empty set). */
json_t *apply__set_union(const json_t *a, const json_t *b);
json_t *apply__set_diff(const json_t *a, const json_t *b);
json_t *apply__set_inter(const json_t *a, const json_t *b);
/* Replaces *s by f(*s, b), keeping *s on failure. 0 or ERR_NOMEM. */
int apply__set_apply(json_t **s, json_t *(*f)(const json_t *, const json_t *),
                     const json_t *b);
/* Takes the fields no manager owns out of a set. Allocates nothing. */
void apply__set_strip_untracked(json_t *set);
/* The child keys of node ("." left out) in fieldpath's order, borrowed
 * from node; *n their count. Caller frees the array with mem_free; NULL
 * with *n > 0 on allocation failure. */
const char **apply__set_sorted_keys(const json_t *node, size_t *n);

/* ---- fieldset.c: FieldsV1 and the set of an object -------------------------- */

/* FieldsV1 of a set (new; NULL on allocation failure). */
json_t *apply__fv1_encode(const json_t *node);
/* A set from FieldsV1 f (*out, new): 0, ERR_NOMEM, or 1 when f is
 * malformed (reason in why). */
int apply__fv1_decode(const json_t *f, int depth, json_t **out, char *why, size_t whylen);
/* The set of a whole object, untracked fields included (*out, new). strict
 * (the applied configuration): a keyed or set list item that cannot be
 * named, or a repeated one, is ERR_INTERNAL; otherwise it is not tracked.
 * Sets c->err. */
int apply__fields_raw(apply__ctx_t *c, const json_t *obj, int strict, json_t **out);

/* ---- compare.c ------------------------------------------------------------------ */

/* The paths added, modified and removed between two objects, each a set
 * node for the current path. */
typedef struct apply__delta {
    json_t *add, *mod, *rem;
} apply__delta_t;

/* An index of a keyed or set list: the path element of each item, NULL
 * for items that cannot be named and for repeats of an earlier one. */
typedef struct apply__lindex {
    size_t n;
    char **pe;
    const json_t **item;
} apply__lindex_t;

/* APPLY__SHAPE_* of the node at c's path whose sides are a and b (either
 * absent), with the list's rule for APPLY__SHAPE_LIST. */
int apply__shape_of(const apply__ctx_t *c, const json_t *a, const json_t *b,
                    const patch_list_rule_t **rule);
/* Three empty sets in d. 0 or ERR_NOMEM (d all NULL). */
int apply__delta_new(apply__delta_t *d);
void apply__delta_free(apply__delta_t *d);
/* add ∪ mod, the paths a write sets (new set; NULL on allocation failure);
 * may take one of them out of d. */
json_t *apply__delta_take_changed(apply__delta_t *d);
/* Indexes arr (items borrowed from it). 0 or ERR_NOMEM (ix left empty);
 * apply__lindex_free releases an index, built or empty. */
int apply__lindex_build(const patch_list_rule_t *rule, const json_t *arr, apply__lindex_t *ix);
void apply__lindex_free(apply__lindex_t *ix);
/* The index of the item named pe; -1 if none. */
long apply__lindex_find(const apply__lindex_t *ix, const char *pe);
/* Compares the maps a (before) and b (after) into d. 0 or ERR_NOMEM. */
int apply__cmp_map(apply__ctx_t *c, const json_t *a, const json_t *b, apply__delta_t *d);
/* What apply__cmp_map(c, NULL, b) adds, straight into node: a create's
 * whole field set. 0 or ERR_NOMEM. */
int apply__add_map(apply__ctx_t *c, const json_t *b, json_t *node);

/* ---- managedfields.c ------------------------------------------------------------ */

/*
 * Entries are kept as JSON objects {"manager","operation","apiVersion",
 * "time"?,"subresource"?,"set"}, "set" in the internal form, in an array.
 */

/* The string k of entry e, "" when absent (borrowed from e). */
const char *apply__ent_str(const json_t *e, const char *k);
int apply__ent_is_apply(const json_t *e);
/* e's set, borrowed. */
json_t *apply__ent_set(const json_t *e);
/* The entry of (manager, Apply) or (manager, Update, api_version) for
 * subresource ("" for the main resource); -1 if none. */
long apply__ent_find_sub(const json_t *mgrs, const char *manager, int apply,
                         const char *api_version, const char *subresource);
/* kube's manager identifier as JSON text, which orders managers in
 * messages. Caller owns; NULL on allocation failure. */
char *apply__ent_identity(const json_t *e);
/* Replaces the entry's set (taken) or string k. 0 or ERR_NOMEM. */
int apply__ent_put_set(json_t *e, json_t *set);
int apply__ent_put_str(json_t *e, const char *k, const char *v);
/* Appends a new entry {manager, operation ("Apply" or "Update"),
 * api_version, subresource ("": none), set (a reference added)} to mgrs
 * and returns it, borrowed from mgrs; NULL on allocation failure. */
json_t *apply__ent_append(json_t *mgrs, const char *manager, const char *operation,
                          const char *api_version, const char *subresource, json_t *set);
/* Decodes wire managedFields (NULL or null: none) into entries (*out, new):
 * 0, ERR_NOMEM, or 1 when malformed (reason in why). */
int apply__mf_decode(const json_t *wire, json_t **out, char *why, size_t whylen);
/* Drops entries whose set is empty. */
void apply__mf_drop_empty(json_t *mgrs);
/* Replaces metadata.managedFields of obj by the encoded entries, or
 * removes it when none are left. 0 or ERR_NOMEM. */
int apply__mf_store(json_t *obj, const json_t *mgrs);
/* Every entry but skip loses the fields in changed and in removed. 0 or
 * ERR_NOMEM. */
int apply__mf_take(json_t *mgrs, const json_t *changed, const json_t *removed,
                   const json_t *skip);
/* A shallow view of obj without metadata.managedFields (*out, new; the
 * rest shared with obj); an empty object for NULL. 0 or ERR_NOMEM. */
int apply__without_mf(const json_t *obj, json_t **out);

/* ---- conflicts.c ---------------------------------------------------------------- */

/* Whether an apply by entry self, changing the fields changed, may go on
 * against the other entries of mgrs: 0 when no other entry owns a changed
 * field, with force, or when every such entry is of manager yielding (may
 * be NULL); ERR_CONFLICT with kube's message and causes in c->err;
 * ERR_NOMEM, set in c->err. */
int apply__check_conflicts(apply__ctx_t *c, const json_t *mgrs, const json_t *self,
                           const json_t *changed, int force, const char *yielding);

#endif
