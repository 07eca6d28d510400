/*
 * Kubernetes strategic merge patch. The contract is in patch.h.
 */
#include "patch_internal.h"

#include <stdint.h>
#include <string.h>

#include "../lib/mem.h"

/* ---- strategic merge patch --------------------------------------------------
 * Like merge patch, with per-list strategies and "$" directives; see patch.h
 * for the rules. A map merge runs in this order: the map's own "$patch";
 * checks of every directive's shape; the fields, in patch order (a list with
 * a "$setElementOrder" is reordered right after its merge);
 * "$deleteFromPrimitiveList"s; "$setElementOrder"s of lists the patch does
 * not otherwise touch; "$retainKeys". The dotted path of the field being
 * merged is kept in smp_t to look up list rules. */

#define SMP_NO_PATH SIZE_MAX   /* smp_t.len once the path no longer fits */

typedef struct smp {
    const patch_list_rule_t *rules;
    err_t *err;
    size_t len;        /* strlen(path), or SMP_NO_PATH */
    char path[256];    /* "spec.subjects"; longer paths have no rule */
} smp_t;

enum { KEY_FIELD, KEY_PATCH, KEY_RETAIN, KEY_ORDER, KEY_DELETE, KEY_BAD };

typedef struct smp_directive {
    const char *name;
    int kind;
    int prefix;              /* "name/<field>" */
    const char *malformed;   /* message for a misshapen directive */
} smp_directive_t;

static const smp_directive_t smp_directives[] = {
    {"$patch", KEY_PATCH, 0, "invalid value for special key: $patch"},
    {"$retainKeys", KEY_RETAIN, 0, "invalid patch format of retainKeys"},
    {"$setElementOrder", KEY_ORDER, 1,
     "invalid patch format of setElementOrder list"},
    {"$deleteFromPrimitiveList", KEY_DELETE, 1,
     "invalid patch format of primitive list"},
    {NULL, KEY_FIELD, 0, NULL},
};

/* Classifies a patch key. For the prefixed directives *field is the list
 * field after the '/'; a key that starts like one but lacks "/<field>" is
 * KEY_BAD. Other keys, "$ref" included, are plain fields. */
static int smp_key(const char *key, const char **field,
                   const smp_directive_t **dir)
{
    *field = key;
    for (*dir = smp_directives; (*dir)->name; (*dir)++) {
        size_t n = strlen((*dir)->name);
        if (!(*dir)->prefix && strcmp(key, (*dir)->name) == 0)
            return (*dir)->kind;
        if ((*dir)->prefix && strncmp(key, (*dir)->name, n) == 0) {
            if (key[n] != '/' || !key[n + 1])
                return KEY_BAD;
            *field = key + n + 1;
            return (*dir)->kind;
        }
    }
    return KEY_FIELD;
}

/* Appends key to the path; returns what smp_pop needs to undo it. */
static size_t smp_push(smp_t *s, const char *key)
{
    size_t saved = s->len, at = saved, klen = strlen(key);

    if (saved == SMP_NO_PATH)
        return saved;
    if (saved + 1 + klen >= sizeof s->path) {
        s->len = SMP_NO_PATH;
        return saved;
    }
    if (at)
        s->path[at++] = '.';
    memcpy(s->path + at, key, klen);
    s->len = at + klen;
    s->path[s->len] = '\0';
    return saved;
}

static void smp_pop(smp_t *s, size_t saved)
{
    s->len = saved;
    if (saved != SMP_NO_PATH)
        s->path[saved] = '\0';
}

static const patch_list_rule_t *smp_rule(const smp_t *s)
{
    return s->len == SMP_NO_PATH ? NULL : patch_find_rule(s->rules, s->path);
}

/* The current path, for messages. */
static const char *smp_where(const smp_t *s)
{
    if (s->len == SMP_NO_PATH)
        return "(a long path)";
    return s->len ? s->path : "(root)";
}

/* Whether object o has every key of the comma-separated list keys. */
static int has_keys(const json_t *o, const char *keys)
{
    if (!json_is_object(o))
        return 0;
    for (const char *k = keys; *k;) {
        size_t n = strcspn(k, ",");
        if (n && !json_object_getn(o, k, n))
            return 0;
        k += n + (k[n] == ',');
    }
    return 1;
}

/* Whether objects a and b agree on every key of keys, all present. */
static int keys_match(const json_t *a, const json_t *b, const char *keys)
{
    if (!json_is_object(a) || !json_is_object(b))
        return 0;
    for (const char *k = keys; *k;) {
        size_t n = strcspn(k, ",");
        if (n) {
            const json_t *va = json_object_getn(a, k, n);
            const json_t *vb = json_object_getn(b, k, n);
            if (!va || !vb || !patch__values_equal(va, vb))
                return 0;
        }
        k += n + (k[n] == ',');
    }
    return 1;
}

/* Item identity in a list: by merge keys when it has them, else by value. */
static int same_item(const json_t *a, const json_t *b, const char *keys)
{
    return keys ? keys_match(a, b, keys) : patch__values_equal(a, b);
}

static long index_of(const json_t *list, const json_t *item, const char *keys)
{
    const json_t *v;
    size_t i;

    if (!json_is_array(list))
        return -1;
    json_array_foreach(list, i, v) {
        if (same_item(item, v, keys))
            return (long)i;
    }
    return -1;
}

/* A list item carrying "$patch" acts on the list rather than being an item. */
static const json_t *item_directive(const json_t *item)
{
    return json_is_object(item) ? json_object_get(item, "$patch") : NULL;
}

static int smp_map(smp_t *s, json_t **target, const json_t *patch, int depth);
static int smp_list(smp_t *s, json_t **target, const json_t *patch,
                    const patch_list_rule_t *rule, int depth);

/* Merges any patch value into *target (owned; may be NULL or replaced). */
static int smp_value(smp_t *s, json_t **target, const json_t *patch, int depth)
{
    if (json_is_object(patch))
        return smp_map(s, target, patch, depth);
    if (json_is_array(patch))
        return smp_list(s, target, patch, smp_rule(s), depth);
    return patch__replace_with_copy(target, patch, s->err);
}

/* ---- lists ---- */

/* Checks the items of a patch list against the list's rule, and finds a
 * {"$patch": "replace"} item. */
static int smp_list_check(smp_t *s, const json_t *patch,
                          const patch_list_rule_t *rule, int *replace)
{
    const char *keys = rule ? rule->keys : NULL;
    const json_t *item, *d;
    const char *name;
    size_t i;

    *replace = 0;
    json_array_foreach(patch, i, item) {
        d = item_directive(item);
        name = json_string_value(d);
        if (d && !name)
            return err_set(s->err, ERR_BAD_REQUEST,
                           "invalid value for special key: $patch in list %s",
                           smp_where(s));
        if (name && strcmp(name, "replace") == 0) {
            *replace = 1;
        } else if (name && strcmp(name, "delete") == 0) {
            if (!keys)
                return err_set(s->err, ERR_BAD_REQUEST,
                               "$patch: delete in list %s, which does not "
                               "merge by key", smp_where(s));
            if (!has_keys(item, keys))
                return err_set(s->err, ERR_BAD_REQUEST,
                               "map in list %s does not contain declared "
                               "merge key: %s", smp_where(s), keys);
        } else if (name && strcmp(name, "merge") == 0) {
            return err_set(s->err, ERR_BAD_REQUEST,
                           "merging lists cannot yet be specified in the "
                           "patch (list %s)", smp_where(s));
        } else if (name) {
            return err_set(s->err, ERR_BAD_REQUEST,
                           "unknown patch type: %s in list %s", name,
                           smp_where(s));
        } else if (keys && !json_is_object(item)) {
            return err_set(s->err, ERR_BAD_REQUEST,
                           "list %s merges by %s but holds an item that is "
                           "not a map", smp_where(s), keys);
        } else if (keys && !has_keys(item, keys)) {
            return err_set(s->err, ERR_BAD_REQUEST,
                           "map in list %s does not contain declared merge "
                           "key: %s", smp_where(s), keys);
        } else if (rule && !keys
                   && (json_is_object(item) || json_is_array(item))) {
            return err_set(s->err, ERR_BAD_REQUEST,
                           "list %s is a set of scalars but the patch holds "
                           "a map or list", smp_where(s));
        }
    }
    return 0;
}

/* Whether a "$patch": "delete" item of patch names live item v. */
static int deleted_by(const json_t *patch, const json_t *v, const char *keys)
{
    const json_t *item;
    size_t i;

    json_array_foreach(patch, i, item) {
        const char *name = json_string_value(item_directive(item));
        if (name && strcmp(name, "delete") == 0 && keys_match(item, v, keys))
            return 1;
    }
    return 0;
}

/* Appends a new item built from patch item p: directives resolved, nulls
 * dropped, nothing shared with the patch. */
static int smp_append_new(smp_t *s, json_t *result, const json_t *p, int depth)
{
    json_t *v = NULL;
    int rc;

    if (json_is_object(p))
        rc = smp_map(s, &v, p, depth);
    else if (json_is_array(p))
        rc = smp_list(s, &v, p, NULL, depth);   /* lists of lists: no rule */
    else
        rc = patch__replace_with_copy(&v, p, s->err);
    if (rc) {
        json_decref(v);
        return rc;
    }
    return json_array_append_new(result, v) ? patch__nomem(s->err) : 0;
}

/* Merges keyed item p into the first item of result with the same keys, or
 * appends it. */
static int smp_merge_item(smp_t *s, json_t *result, const json_t *p,
                          const char *keys, int depth)
{
    long at = index_of(result, p, keys);
    json_t *child;
    int rc;

    if (at < 0)
        return smp_append_new(s, result, p, depth);
    child = json_incref(json_array_get(result, (size_t)at));
    rc = smp_map(s, &child, p, depth);
    if (rc) {
        json_decref(child);
        return rc;
    }
    return json_array_set_new(result, (size_t)at, child) ? patch__nomem(s->err) : 0;
}

/* Merges list patch into *target (owned; may be NULL or replaced):
 *   no rule           the patch's items replace the list;
 *   rule with keys    live items minus "$patch": "delete"d ones, patch items
 *                     merged into the live item with the same keys, new ones
 *                     appended;
 *   rule without keys the union, live order first;
 * and a {"$patch": "replace"} item drops the live items first. */
static int smp_list(smp_t *s, json_t **target, const json_t *patch,
                    const patch_list_rule_t *rule, int depth)
{
    const char *keys = rule ? rule->keys : NULL;
    json_t *result = NULL;
    const json_t *v;
    size_t i;
    int replace, rc;

    if (depth > PATCH_MAX_DEPTH)
        return patch__too_deep(s->err);
    rc = smp_list_check(s, patch, rule, &replace);
    if (rc)
        goto out;
    result = json_array();
    if (!result) {
        rc = patch__nomem(s->err);
        goto out;
    }
    if (rule && !replace && json_is_array(*target)) {
        json_array_foreach(*target, i, v) {
            if (keys ? deleted_by(patch, v, keys) : index_of(result, v, NULL) >= 0)
                continue;
            if (json_array_append(result, (json_t *)v)) {
                rc = patch__nomem(s->err);
                goto out;
            }
        }
    }
    json_array_foreach(patch, i, v) {
        if (item_directive(v))
            continue;
        if (keys)
            rc = smp_merge_item(s, result, v, keys, depth + 1);
        else if (rule && index_of(result, v, NULL) >= 0)
            continue;   /* already in the set */
        else
            rc = smp_append_new(s, result, v, depth + 1);
        if (rc)
            goto out;
    }
    json_decref(*target);
    *target = result;
    result = NULL;
out:
    json_decref(result);
    return rc;
}

/* ---- $setElementOrder ---- */

/* Checks that the patch list's items (directive items aside) appear in the
 * order list, in the same relative order. */
static int smp_check_order(smp_t *s, const json_t *plist, const json_t *order,
                           const char *keys)
{
    size_t pi = 0, oi = 0, np = json_array_size(plist),
           no = json_array_size(order);

    if (!no)
        return 0;
    while (pi < np && oi < no) {
        const json_t *p = json_array_get(plist, pi);
        if (item_directive(p)) {
            pi++;
            continue;
        }
        if (same_item(p, json_array_get(order, oi), keys))
            pi++;
        oi++;
    }
    while (pi < np && item_directive(json_array_get(plist, pi)))
        pi++;
    if (pi < np)
        return err_set(s->err, ERR_BAD_REQUEST,
                       "the order in patch list %s doesn't match its "
                       "$setElementOrder list", smp_where(s));
    return 0;
}

typedef struct smp_slot {
    json_t *item;
    long order;    /* index in the $setElementOrder list, or -1 */
    long server;   /* index in the live list before the patch, or -1 */
} smp_slot_t;

/* Returns in *out (new) list reordered as upstream's normalizeElementOrder
 * does: the items named in order, sorted by it; the others ("server-only")
 * keep their relative order; the two runs are then interleaved, a
 * server-only item going first when the live list had it before the next
 * ordered item. */
static int smp_reorder(smp_t *s, const json_t *list, const json_t *order,
                       const json_t *server, const char *keys, json_t **out)
{
    size_t n = json_array_size(list), nl = 0, nr = 0, l = 0, r = 0, i;
    smp_slot_t *slots, *left, *right;
    json_t *v;
    int rc = 0;

    *out = NULL;
    slots = mem_calloc(2 * n + 1, sizeof *slots);
    if (!slots)
        return patch__nomem(s->err);
    left = slots;
    right = slots + n;
    json_array_foreach(list, i, v) {
        smp_slot_t sl = {v, index_of(order, v, keys), index_of(server, v, keys)};
        size_t j;
        if (sl.order < 0) {
            left[nl++] = sl;
            continue;
        }
        for (j = nr++; j > 0 && right[j - 1].order > sl.order; j--)
            right[j] = right[j - 1];   /* stable insertion sort */
        right[j] = sl;
    }
    *out = json_array();
    if (!*out) {
        rc = patch__nomem(s->err);
        goto out;
    }
    while (l < nl || r < nr) {
        int take_left = r >= nr
            || (l < nl && left[l].server >= 0 && right[r].server >= 0
                && left[l].server < right[r].server);
        smp_slot_t *sl = take_left ? &left[l++] : &right[r++];
        if (json_array_append(*out, sl->item)) {
            rc = patch__nomem(s->err);
            goto out;
        }
    }
out:
    if (rc) {
        json_decref(*out);
        *out = NULL;
    }
    mem_free(slots);
    return rc;
}

/* Applies "$setElementOrder/<field>": order to obj's list field. The path
 * already ends in field. plist is the patch's own list for field (or NULL),
 * server the live list before the patch. */
static int smp_order(smp_t *s, json_t *obj, const char *field,
                     const json_t *order, const json_t *plist,
                     const json_t *server)
{
    const patch_list_rule_t *rule = smp_rule(s);
    const char *keys = rule ? rule->keys : NULL;
    json_t *list = json_object_get(obj, field), *sorted = NULL;
    const json_t *v;
    size_t i;
    int rc;

    if (keys) {
        json_array_foreach(order, i, v) {
            if (!has_keys(v, keys))
                return err_set(s->err, ERR_BAD_REQUEST,
                               "$setElementOrder list of %s: map does not "
                               "contain declared merge key: %s",
                               smp_where(s), keys);
        }
    }
    if (json_is_array(plist)) {
        rc = smp_check_order(s, plist, order, keys);
        if (rc)
            return rc;
    }
    if (!json_is_array(list))
        return 0;
    rc = smp_reorder(s, list, order, server, keys, &sorted);
    if (rc)
        return rc;
    return json_object_set_new_nocheck(obj, field, sorted) ? patch__nomem(s->err) : 0;
}

/* The "$setElementOrder/<field>" list in patch, or NULL (always when patch
 * is NULL, which callers pass for maps without any such directive). */
static const json_t *smp_find_order(const json_t *patch, const char *field)
{
    const smp_directive_t *dir;
    const char *key, *f;
    json_t *v;

    if (!patch)
        return NULL;
    json_object_foreach((json_t *)patch, key, v) {
        if (smp_key(key, &f, &dir) == KEY_ORDER && strcmp(f, field) == 0)
            return v;
    }
    return NULL;
}

/* ---- maps ---- */

/* Whether key is named in a "$retainKeys" list (vetted to hold strings). */
static int retained(const json_t *retain, const char *key)
{
    const json_t *x;
    size_t i;

    json_array_foreach(retain, i, x) {
        if (strcmp(json_string_value(x), key) == 0)
            return 1;
    }
    return 0;
}

/* Checks the shape of every directive in map patch; *retain is its
 * "$retainKeys" list, if any, whose names must cover the patch's fields, and
 * *orders the number of "$setElementOrder"s. */
static int smp_check_map(smp_t *s, const json_t *patch, const json_t **retain,
                         size_t *orders)
{
    const smp_directive_t *dir;
    const char *key, *field;
    const json_t *x;
    json_t *v;
    size_t i;

    *retain = NULL;
    *orders = 0;
    json_object_foreach((json_t *)patch, key, v) {
        int kind = smp_key(key, &field, &dir), ok = json_is_array(v);
        if (kind == KEY_FIELD || kind == KEY_PATCH)
            continue;
        if (kind == KEY_RETAIN)
            *retain = v;
        if (kind == KEY_ORDER)
            (*orders)++;
        if (ok && kind != KEY_ORDER) {
            json_array_foreach(v, i, x) {
                if (kind == KEY_RETAIN ? !json_is_string(x)
                                       : json_is_object(x) || json_is_array(x))
                    ok = 0;
            }
        }
        if (kind == KEY_BAD || !ok)
            return err_set(s->err, ERR_BAD_REQUEST, "%s (key %s in %s)",
                           dir->malformed, key, smp_where(s));
    }
    if (!*retain)
        return 0;
    json_object_foreach((json_t *)patch, key, v) {
        if (smp_key(key, &field, &dir) != KEY_FIELD || json_is_null(v))
            continue;
        if (!retained(*retain, key))
            return err_set(s->err, ERR_BAD_REQUEST,
                           "invalid patch format of retainKeys: field %s of %s "
                           "is not in $retainKeys", key, smp_where(s));
    }
    return 0;
}

/* Merges patch field key (value v, not null) into obj. patch is the map
 * holding it, searched for a "$setElementOrder/<key>"; NULL if it has none. */
static int smp_field(smp_t *s, json_t *obj, const char *key, const json_t *v,
                     const json_t *patch, int depth)
{
    size_t saved = smp_push(s, key);
    const json_t *order = json_is_array(v) ? smp_find_order(patch, key) : NULL;
    json_t *child = json_incref(json_object_get(obj, key));
    json_t *server = order ? json_incref(child) : NULL;   /* pre-merge list */
    int rc = smp_value(s, &child, v, depth);

    if (rc) {
        json_decref(child);
        goto out;
    }
    if (json_object_set_new_nocheck(obj, key, child)) {
        rc = patch__nomem(s->err);
        goto out;
    }
    if (order)
        rc = smp_order(s, obj, key, order, v, server);
out:
    json_decref(server);
    smp_pop(s, saved);
    return rc;
}

/* Removes from list every value listed in dels. */
static void smp_delete_values(json_t *list, const json_t *dels)
{
    size_t i = json_array_size(list);

    while (i-- > 0)
        if (index_of(dels, json_array_get(list, i), NULL) >= 0)
            json_array_remove(list, i);
}

/* The map merge proper, on *target (made an object); "$patch" is ignored. */
static int smp_map_merge(smp_t *s, json_t **target, const json_t *patch,
                         int depth)
{
    const smp_directive_t *dir;
    const json_t *retain;
    const char *key, *field;
    json_t *v, *obj;
    size_t orders;
    void *tmp;
    int rc;

    rc = smp_check_map(s, patch, &retain, &orders);
    if (!rc)
        rc = patch__ensure_object(target, s->err);
    if (rc)
        return rc;
    obj = *target;
    json_object_foreach((json_t *)patch, key, v) {
        if (smp_key(key, &field, &dir) != KEY_FIELD)
            continue;
        if (json_is_null(v)) {
            json_object_del(obj, key);
            continue;
        }
        rc = smp_field(s, obj, key, v, orders ? patch : NULL, depth + 1);
        if (rc)
            return rc;
    }
    json_object_foreach((json_t *)patch, key, v) {
        if (smp_key(key, &field, &dir) == KEY_DELETE)
            smp_delete_values(json_object_get(obj, field), v);
    }
    json_object_foreach((json_t *)patch, key, v) {
        size_t saved;
        if (smp_key(key, &field, &dir) != KEY_ORDER
            || json_object_get(patch, field))
            continue;   /* lists in the patch were ordered in smp_field */
        saved = smp_push(s, field);
        rc = smp_order(s, obj, field, v, NULL, json_object_get(obj, field));
        smp_pop(s, saved);
        if (rc)
            return rc;
    }
    if (retain) {
        json_object_foreach_safe(obj, tmp, key, v) {
            if (!retained(retain, key))
                json_object_del(obj, key);
        }
    }
    return 0;
}

/* Merges map patch into *target (owned; may be NULL or replaced). A
 * "$patch" key acts on the whole map: "replace" makes it the patch's other
 * keys, "delete" empties it. */
static int smp_map(smp_t *s, json_t **target, const json_t *patch, int depth)
{
    const json_t *d = json_object_get(patch, "$patch");
    const char *name = json_string_value(d);
    json_t *fresh = NULL;
    int rc = 0;

    if (depth > PATCH_MAX_DEPTH)
        return patch__too_deep(s->err);
    if (!d)
        return smp_map_merge(s, target, patch, depth);
    if (!name) {
        rc = err_set(s->err, ERR_BAD_REQUEST,
                     "invalid value for special key: $patch in %s",
                     smp_where(s));
    } else if (strcmp(name, "replace") == 0) {
        rc = smp_map_merge(s, &fresh, patch, depth);
    } else if (strcmp(name, "delete") == 0) {
        rc = patch__ensure_object(&fresh, s->err);
    } else {
        rc = err_set(s->err, ERR_BAD_REQUEST,
                     "unknown patch type: %s in map %s", name, smp_where(s));
    }
    if (rc)
        goto out;
    json_decref(*target);
    *target = fresh;
    fresh = NULL;
out:
    json_decref(fresh);
    return rc;
}

int patch_strategic(const json_t *doc, const json_t *patch,
                    const patch_list_rule_t *rules, json_t **out, err_t *err)
{
    smp_t s = {.rules = rules, .err = err, .len = 0, .path = ""};
    json_t *res = NULL;
    int rc;

    if (!doc || !patch || !out)
        return err_set(err, ERR_INTERNAL, "patch_strategic: NULL argument");
    *out = NULL;
    if (!json_is_object(patch)) {
        rc = err_set(err, ERR_BAD_REQUEST,
                     "strategic merge patch must be a JSON object");
        goto out;
    }
    res = json_deep_copy(doc);
    if (!res) {
        rc = patch__nomem(err);
        goto out;
    }
    rc = smp_map(&s, &res, patch, 1);
    if (rc)
        goto out;
    *out = res;
    res = NULL;
out:
    json_decref(res);
    return rc;
}
