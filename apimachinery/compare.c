/*
 * compare: what changed between two objects, as structured-merge-diff's
 * Compare reports it: the sets of paths added, modified and removed (maps
 * field by field, keyed and set lists item by item, anything else as one
 * leaf), and the index of a keyed or set list the merge shares.
 */
#include "apply_internal.h"

#include <string.h>

#include "../lib/mem.h"

/* How a node is walked: a map or a keyed/set list with something in it on
 * either side is descended into; anything else (scalars, atomic lists, empty
 * on both sides, or a change of type) is one leaf. */
int apply__shape_of(const apply__ctx_t *c, const json_t *a, const json_t *b,
                    const patch_list_rule_t **rule)
{
    *rule = NULL;
    if ((!a || json_is_object(a)) && (!b || json_is_object(b)))
        return json_object_size(a) || json_object_size(b) ? APPLY__SHAPE_MAP : APPLY__SHAPE_LEAF;
    if ((!a || json_is_array(a)) && (!b || json_is_array(b)) &&
        apply__list_kind(c, rule) != APPLY__LIST_ATOMIC)
        return json_array_size(a) || json_array_size(b) ? APPLY__SHAPE_LIST : APPLY__SHAPE_LEAF;
    return APPLY__SHAPE_LEAF;
}

int apply__delta_new(apply__delta_t *d)
{
    d->add = json_object();
    d->mod = json_object();
    d->rem = json_object();
    if (d->add && d->mod && d->rem)
        return 0;
    json_decref(d->add);
    json_decref(d->mod);
    json_decref(d->rem);
    d->add = d->mod = d->rem = NULL;
    return ERR_NOMEM;
}

void apply__delta_free(apply__delta_t *d)
{
    json_decref(d->add);
    json_decref(d->mod);
    json_decref(d->rem);
    d->add = d->mod = d->rem = NULL;
}

/* add ∪ mod, the paths a write sets (new set; NULL on allocation failure).
 * Takes add or mod out of d when the other is empty, which is every
 * create: the delta's add set is the answer, and copying it is not free. */
json_t *apply__delta_take_changed(apply__delta_t *d)
{
    json_t **whole = !json_object_size(d->mod) ? &d->add : !json_object_size(d->add) ? &d->mod : NULL;
    if (!whole)
        return apply__set_union(d->add, d->mod);
    json_t *out = *whole;
    *whole = NULL;
    return out;
}

/* Attaches the child delta (taken) under key. */
static int delta_attach(apply__delta_t *d, const char *key, apply__delta_t *cd)
{
    int rc = apply__set_attach(d->add, key, cd->add);
    rc |= apply__set_attach(d->mod, key, cd->mod);
    rc |= apply__set_attach(d->rem, key, cd->rem);
    cd->add = cd->mod = cd->rem = NULL;
    return rc ? ERR_NOMEM : 0;
}

void apply__lindex_free(apply__lindex_t *ix)
{
    for (size_t i = 0; ix->pe && i < ix->n; i++)
        mem_free(ix->pe[i]);
    mem_free(ix->pe);
    mem_free(ix->item);
    memset(ix, 0, sizeof *ix);
}

long apply__lindex_find(const apply__lindex_t *ix, const char *pe)
{
    for (size_t i = 0; i < ix->n; i++)
        if (ix->pe[i] && !strcmp(ix->pe[i], pe))
            return (long)i;
    return -1;
}

int apply__lindex_build(const patch_list_rule_t *rule, const json_t *arr, apply__lindex_t *ix)
{
    size_t n = json_array_size(arr);
    memset(ix, 0, sizeof *ix);
    ix->pe = mem_calloc(n ? n : 1, sizeof *ix->pe);
    ix->item = mem_calloc(n ? n : 1, sizeof *ix->item);
    if (!ix->pe || !ix->item) {
        apply__lindex_free(ix);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char *pe, why[8];
        ix->item[i] = json_array_get(arr, i);
        int rc = apply__item_pe(rule, ix->item[i], &pe, why, sizeof why);
        if (rc < 0) {
            ix->n = i;
            apply__lindex_free(ix);
            return rc;
        }
        if (!rc && apply__lindex_find(ix, pe) >= 0) {
            mem_free(pe);
            pe = NULL;
        }
        ix->pe[i] = pe;
        ix->n = i + 1;
    }
    return 0;
}

static int cmp_node(apply__ctx_t *c, const json_t *a, const json_t *b, apply__delta_t *d);

/* Compares a child (a map field when name is set, else a list item) into
 * d under key. */
static int cmp_child(apply__ctx_t *c, const char *name, const char *key, const json_t *a,
                     const json_t *b, apply__delta_t *d)
{
    apply__delta_t cd;
    int rc = apply__delta_new(&cd);
    if (rc)
        return rc;
    if (name) {
        size_t at = apply__ctx_enter(c, name, key);
        rc = cmp_node(c, a, b, &cd);
        apply__ctx_leave(c, at);
    } else {
        rc = cmp_node(c, a, b, &cd);
    }
    if (rc) {
        apply__delta_free(&cd);
        return rc;
    }
    return delta_attach(d, key, &cd);
}

int apply__cmp_map(apply__ctx_t *c, const json_t *a, const json_t *b, apply__delta_t *d)
{
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)a, k, v) {
        char *key = apply__field_key(k);
        rc = key ? cmp_child(c, k, key, v, json_object_get(b, k), d) : ERR_NOMEM;
        mem_free(key);
        if (rc)
            return rc;
    }
    json_object_foreach((json_t *)b, k, v) {
        if (json_object_get(a, k))
            continue;
        char *key = apply__field_key(k);
        rc = key ? cmp_child(c, k, key, NULL, v, d) : ERR_NOMEM;
        mem_free(key);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_list(apply__ctx_t *c, const json_t *a, const json_t *b,
                    const patch_list_rule_t *rule, apply__delta_t *d)
{
    apply__lindex_t ia, ib;
    int rc = apply__lindex_build(rule, a, &ia);
    if (rc)
        return rc;
    rc = apply__lindex_build(rule, b, &ib);
    if (rc) {
        apply__lindex_free(&ia);
        return rc;
    }
    for (size_t i = 0; !rc && i < ia.n; i++) {
        if (!ia.pe[i])
            continue;
        long j = apply__lindex_find(&ib, ia.pe[i]);
        rc = cmp_child(c, NULL, ia.pe[i], ia.item[i], j >= 0 ? ib.item[j] : NULL, d);
    }
    for (size_t j = 0; !rc && j < ib.n; j++)
        if (ib.pe[j] && apply__lindex_find(&ia, ib.pe[j]) < 0)
            rc = cmp_child(c, NULL, ib.pe[j], NULL, ib.item[j], d);
    apply__lindex_free(&ia);
    apply__lindex_free(&ib);
    return rc;
}

/* The children of v, a map or keyed/set list that became something else
 * (b NULL) or that something else became (a NULL): removed or added. */
static int cmp_inside(apply__ctx_t *c, const json_t *a, const json_t *b, apply__delta_t *d)
{
    const json_t *v = a ? a : b;
    const patch_list_rule_t *rule;
    if (json_is_object(v))
        return apply__cmp_map(c, a, b, d);
    if (json_is_array(v) && apply__list_kind(c, &rule) != APPLY__LIST_ATOMIC)
        return cmp_list(c, a, b, rule, d);
    return 0;
}

/* Compares a (before) with b (after), either absent. Leaves that appear,
 * change or go are added, modified or removed; a map or list node that
 * appears or goes is itself added or removed. */
static int cmp_node(apply__ctx_t *c, const json_t *a, const json_t *b, apply__delta_t *d)
{
    const patch_list_rule_t *rule;
    int rc;
    switch (apply__shape_of(c, a, b, &rule)) {
    case APPLY__SHAPE_LEAF:
        if (!a)
            return apply__set_mark(d->add);
        if (!b)
            return apply__set_mark(d->rem);
        if (json_equal(a, b))
            return 0;
        /* A change of type: the node is modified, and (as kube walks both
         * sides) what was inside a is removed, what is inside b added. */
        rc = apply__set_mark(d->mod);
        if (!rc)
            rc = cmp_inside(c, a, NULL, d);
        if (!rc)
            rc = cmp_inside(c, NULL, b, d);
        return rc;
    case APPLY__SHAPE_MAP:
        rc = apply__cmp_map(c, a, b, d);
        break;
    default:
        rc = cmp_list(c, a, b, rule, d);
        break;
    }
    if (rc)
        return rc;
    if (!a)
        return apply__set_mark(d->add);
    if (!b)
        return apply__set_mark(d->rem);
    return 0;
}

/* What cmp_node(c, NULL, b) adds, built straight into node without the
 * delta's three sets per level: everything in b is added, and each map or
 * named list item is itself a member. A create's whole field set. */
static int add_node(apply__ctx_t *c, const json_t *b, json_t *node);

static int add_child(apply__ctx_t *c, const char *name, const char *key, const json_t *b,
                     json_t *node)
{
    json_t *child = json_object();
    if (!child)
        return ERR_NOMEM;
    size_t at = name ? apply__ctx_enter(c, name, key) : 0;
    int rc = add_node(c, b, child);
    if (name)
        apply__ctx_leave(c, at);
    if (rc) {
        json_decref(child);
        return rc;
    }
    return apply__set_attach(node, key, child);
}

int apply__add_map(apply__ctx_t *c, const json_t *b, json_t *node)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)b, k, v) {
        char *key = apply__field_key(k);
        int rc = key ? add_child(c, k, key, v, node) : ERR_NOMEM;
        mem_free(key);
        if (rc)
            return rc;
    }
    return 0;
}

static int add_node(apply__ctx_t *c, const json_t *b, json_t *node)
{
    const patch_list_rule_t *rule;
    int rc = 0;
    switch (apply__shape_of(c, NULL, b, &rule)) {
    case APPLY__SHAPE_LEAF:
        break;
    case APPLY__SHAPE_MAP:
        rc = apply__add_map(c, b, node);
        break;
    default: {
        apply__lindex_t ib;
        rc = apply__lindex_build(rule, b, &ib);
        for (size_t j = 0; !rc && j < ib.n; j++)
            if (ib.pe[j])
                rc = add_child(c, NULL, ib.pe[j], ib.item[j], node);
        if (ib.pe)
            apply__lindex_free(&ib);
        break;
    }
    }
    return rc ? rc : apply__set_mark(node);
}
