/*
 * patch: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes
 * strategic merge patch. The contract is in patch.h.
 *
 * All three engines work the same way: deep-copy the document once, then
 * edit that private copy in place. The inputs are never touched, and a
 * failure halfway through leaves exactly one tree to drop. Every jansson call
 * that can allocate is checked; its failure is ERR_NOMEM. Values taken from a
 * patch are deep-copied too, so the result shares nothing with the inputs.
 */
#include "patch.h"

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

static int nomem(err_t *err) { return err_set(err, ERR_NOMEM, NULL); }

static int too_deep(err_t *err)
{
    return err_set(err, ERR_BAD_REQUEST, "patch nests too deeply");
}

/* Replaces the value *slot owns with a deep copy of v. */
static int replace_with_copy(json_t **slot, const json_t *v, err_t *err)
{
    json_t *copy = json_deep_copy(v);

    if (!copy)
        return nomem(err);
    json_decref(*slot);
    *slot = copy;
    return 0;
}

/* Replaces the value *slot owns with a new empty object unless it already
 * is an object. */
static int ensure_object(json_t **slot, err_t *err)
{
    json_t *obj;

    if (json_is_object(*slot))
        return 0;
    obj = json_object();
    if (!obj)
        return nomem(err);
    json_decref(*slot);
    *slot = obj;
    return 0;
}

/* JSON equality as RFC 6902 "test" defines it: json_equal, except that
 * numbers compare by value, so 1 equals 1.0. */
static int values_equal(const json_t *a, const json_t *b)
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
            if (!w || !values_equal(v, w))
                return 0;
        }
        return 1;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        json_array_foreach(a, i, v) {
            if (!values_equal(v, json_array_get(b, i)))
                return 0;
        }
        return 1;
    default:
        return json_equal(a, b);
    }
}

/* ---- JSON pointer (RFC 6901) ------------------------------------------------
 * A pointer is "" (the whole document) or a sequence of "/token"s in which
 * "~1" stands for '/' and "~0" for '~'. Array tokens are decimal indexes
 * without leading zeros; "-" names the slot one past the end. */

/* Checks ptr's syntax and depth: 0 or ERR_BAD_REQUEST. */
static int ptr_check(const char *ptr, err_t *err)
{
    int depth = 0;

    if (*ptr && *ptr != '/')
        return err_set(err, ERR_BAD_REQUEST,
                       "invalid JSON pointer \"%s\": must start with '/'", ptr);
    for (const char *s = ptr; *s; s++) {
        if (*s == '/' && ++depth > PATCH_MAX_DEPTH)
            return too_deep(err);
        if (*s == '~' && s[1] != '0' && s[1] != '1')
            return err_set(err, ERR_BAD_REQUEST,
                           "invalid JSON pointer \"%s\": '~' must be followed "
                           "by '0' or '1'", ptr);
    }
    return 0;
}

/* Unescapes the token starting at s (just after its '/') into tok; returns
 * where the token ends (the next '/' or the terminating NUL). ptr_check has
 * vetted the escapes. */
static const char *ptr_token(const char *s, char *tok)
{
    size_t n = 0;

    for (; *s && *s != '/'; s++) {
        if (*s == '~') {
            s++;
            tok[n++] = *s == '1' ? '/' : '~';
        } else {
            tok[n++] = *s;
        }
    }
    tok[n] = '\0';
    return s;
}

/* Parses tok as an index into arr: 0 and *idx when it names an element, or
 * with allow_end the slot one past the end ("-" or the size); -1 otherwise. */
static int ptr_index(const json_t *arr, const char *tok, int allow_end,
                     size_t *idx)
{
    size_t size = json_array_size(arr), n = 0;

    if (allow_end && strcmp(tok, "-") == 0) {
        *idx = size;
        return 0;
    }
    if (!*tok || (tok[0] == '0' && tok[1]))
        return -1;
    for (const char *s = tok; *s; s++) {
        if (*s < '0' || *s > '9' || n > (SIZE_MAX - 9) / 10)
            return -1;
        n = n * 10 + (size_t)(*s - '0');
    }
    if (n > size || (n == size && !allow_end))
        return -1;
    *idx = n;
    return 0;
}

/* The member or element tok names in cur (borrowed), or NULL. */
static json_t *ptr_child(json_t *cur, const char *tok)
{
    size_t i;

    if (json_is_object(cur))
        return json_object_get(cur, tok);
    if (json_is_array(cur) && ptr_index(cur, tok, 0, &i) == 0)
        return json_array_get(cur, i);
    return NULL;
}

/* Walks ptr from root to its last token: *parent becomes the container that
 * token indexes (NULL when ptr is "" and names root itself) and tok holds
 * the token unescaped. Returns 0, or -1 when a step on the way is missing or
 * the would-be parent is not a container. tok needs strlen(ptr) + 1 bytes. */
static int ptr_parent(json_t *root, const char *ptr, char *tok, json_t **parent)
{
    json_t *cur = root;
    const char *s = ptr;

    *parent = NULL;
    tok[0] = '\0';
    if (!*ptr)
        return 0;
    for (;;) {
        s = ptr_token(s + 1, tok);
        if (!*s)
            break;
        cur = ptr_child(cur, tok);
        if (!cur)
            return -1;
    }
    if (!json_is_object(cur) && !json_is_array(cur))
        return -1;
    *parent = cur;
    return 0;
}

/* ---- JSON patch (RFC 6902) ------------------------------------------------ */

typedef struct jp {
    json_t *root;   /* the copy being edited; owned */
    char *tok;      /* scratch for one unescaped token (longest pointer + 1) */
    err_t *err;
} jp_t;

/* evanphx/json-patch's wording, which kubectl users see from kube-apiserver. */
static int jp_missing(jp_t *jp, const char *op, const char *what,
                      const char *ptr)
{
    return err_set(jp->err, ERR_INVALID,
                   "%s operation does not apply: doc is missing %s: \"%s\": "
                   "missing value", op, what, ptr);
}

/* Resolves ptr for op. *parent is the container of its last token (NULL for
 * the root) and, in an array, *idx the position. With insert (add), an
 * object member may be new and an array position may be one past the end;
 * otherwise the value must exist. Failures are ERR_INVALID. */
static int jp_locate(jp_t *jp, const char *op, const char *what,
                     const char *ptr, int insert, json_t **parent, size_t *idx)
{
    *idx = 0;
    if (ptr_parent(jp->root, ptr, jp->tok, parent))
        return jp_missing(jp, op, what, ptr);
    if (!*parent)
        return 0;
    if (json_is_array(*parent)) {
        if (ptr_index(*parent, jp->tok, insert, idx))
            return err_set(jp->err, ERR_INVALID,
                           "error in %s for path: '%s': Unable to access "
                           "invalid index: %s: invalid index referenced",
                           op, ptr, jp->tok);
        return 0;
    }
    if (!insert && !json_object_get(*parent, jp->tok))
        return jp_missing(jp, op, what, ptr);
    return 0;
}

/* The value jp_locate found (borrowed). */
static json_t *jp_value(jp_t *jp, json_t *parent, size_t idx)
{
    if (!parent)
        return jp->root;
    if (json_is_array(parent))
        return json_array_get(parent, idx);
    return json_object_get(parent, jp->tok);
}

/* Stores value (consumed, even on failure) where jp_locate pointed: as the
 * root, as an object member, or at idx in an array, inserting or
 * overwriting. */
static int jp_put(jp_t *jp, json_t *parent, size_t idx, int insert,
                  json_t *value)
{
    int rc;

    if (!parent) {
        json_decref(jp->root);
        jp->root = value;
        return 0;
    }
    if (json_is_object(parent))
        rc = json_object_set_new_nocheck(parent, jp->tok, value);
    else if (insert)
        rc = json_array_insert_new(parent, idx, value);
    else
        rc = json_array_set_new(parent, idx, value);
    return rc ? nomem(jp->err) : 0;
}

/* Adds value (consumed) at ptr. */
static int jp_add(jp_t *jp, const char *op, const char *ptr, json_t *value)
{
    json_t *parent;
    size_t idx;
    int rc = jp_locate(jp, op, "path", ptr, 1, &parent, &idx);

    if (rc) {
        json_decref(value);
        return rc;
    }
    return jp_put(jp, parent, idx, 1, value);
}

/* Removes the value at ptr; hands it to *taken (a new reference) if asked. */
static int jp_remove(jp_t *jp, const char *op, const char *what,
                     const char *ptr, json_t **taken)
{
    json_t *parent;
    size_t idx;
    int rc = jp_locate(jp, op, what, ptr, 0, &parent, &idx);

    if (rc)
        return rc;
    if (!parent)
        return err_set(jp->err, ERR_INVALID,
                       "%s operation does not apply: cannot remove the "
                       "document root", op);
    if (taken)
        *taken = json_incref(jp_value(jp, parent, idx));
    if (json_is_array(parent))
        json_array_remove(parent, idx);
    else
        json_object_del(parent, jp->tok);
    return 0;
}

static int jp_op_add(jp_t *jp, const char *path, const char *from,
                     const json_t *value)
{
    json_t *copy = json_deep_copy(value);

    (void)from;
    if (!copy)
        return nomem(jp->err);
    return jp_add(jp, "add", path, copy);
}

static int jp_op_remove(jp_t *jp, const char *path, const char *from,
                        const json_t *value)
{
    (void)from;
    (void)value;
    return jp_remove(jp, "remove", "path", path, NULL);
}

static int jp_op_replace(jp_t *jp, const char *path, const char *from,
                         const json_t *value)
{
    json_t *parent, *copy;
    size_t idx;
    int rc = jp_locate(jp, "replace", "path", path, 0, &parent, &idx);

    (void)from;
    if (rc)
        return rc;
    copy = json_deep_copy(value);
    if (!copy)
        return nomem(jp->err);
    return jp_put(jp, parent, idx, 0, copy);
}

/* RFC 6902 4.4: a remove from "from" followed by an add at "path". */
static int jp_op_move(jp_t *jp, const char *path, const char *from,
                      const json_t *value)
{
    json_t *parent, *moved = NULL;
    size_t idx;
    int rc;

    (void)value;
    if (strcmp(path, from) == 0)   /* a no-op, provided "from" exists */
        return jp_locate(jp, "move", "from path", from, 0, &parent, &idx);
    rc = jp_remove(jp, "move", "from path", from, &moved);
    if (rc)
        return rc;
    return jp_add(jp, "move", path, moved);
}

static int jp_op_copy(jp_t *jp, const char *path, const char *from,
                      const json_t *value)
{
    json_t *parent, *copy;
    size_t idx;
    int rc = jp_locate(jp, "copy", "from path", from, 0, &parent, &idx);

    (void)value;
    if (rc)
        return rc;
    copy = json_deep_copy(jp_value(jp, parent, idx));
    if (!copy)
        return nomem(jp->err);
    return jp_add(jp, "copy", path, copy);
}

/* A missing path fails the test like a different value does. */
static int jp_op_test(jp_t *jp, const char *path, const char *from,
                      const json_t *value)
{
    json_t *parent;
    const json_t *have = NULL;

    (void)from;
    if (ptr_parent(jp->root, path, jp->tok, &parent) == 0)
        have = parent ? ptr_child(parent, jp->tok) : jp->root;
    if (!have || !values_equal(have, value))
        return err_set(jp->err, ERR_INVALID,
                       "testing value %s failed: test failed", path);
    return 0;
}

typedef struct jp_kind {
    const char *name;
    int needs_value;
    int needs_from;
    int from_not_ancestor;   /* "from" may not be a proper prefix of "path" */
    int (*apply)(jp_t *jp, const char *path, const char *from,
                 const json_t *value);
} jp_kind_t;

static const jp_kind_t jp_kinds[] = {
    {"add",     1, 0, 0, jp_op_add},
    {"remove",  0, 0, 0, jp_op_remove},
    {"replace", 1, 0, 0, jp_op_replace},
    {"move",    0, 1, 1, jp_op_move},
    {"copy",    0, 1, 0, jp_op_copy},
    {"test",    1, 0, 0, jp_op_test},
    {NULL,      0, 0, 0, NULL},
};

/* Checks one operation's shape (everything that does not depend on the
 * document) and returns its kind in *kind; 0 or ERR_BAD_REQUEST. Grows
 * *longest to the longest pointer seen so one token buffer fits them all. */
static int jp_check(const json_t *op, size_t i, const jp_kind_t **kind,
                    size_t *longest, err_t *err)
{
    const char *name, *path, *from;
    size_t plen;
    int rc;

    if (!json_is_object(op))
        return err_set(err, ERR_BAD_REQUEST,
                       "json patch operation %zu is not an object", i);
    name = json_string_value(json_object_get(op, "op"));
    if (!name)
        return err_set(err, ERR_BAD_REQUEST,
                       "json patch operation %zu has no \"op\"", i);
    for (*kind = jp_kinds; (*kind)->name; (*kind)++)
        if (strcmp((*kind)->name, name) == 0)
            break;
    if (!(*kind)->name)
        return err_set(err, ERR_INVALID, "Unexpected kind: %s", name);  /* kube: 422 */
    path = json_string_value(json_object_get(op, "path"));
    if (!path)
        return err_set(err, ERR_BAD_REQUEST,
                       "%s operation %zu is missing \"path\"", name, i);
    rc = ptr_check(path, err);
    if (rc)
        return rc;
    plen = strlen(path);
    if (plen > *longest)
        *longest = plen;
    if ((*kind)->needs_value && !json_object_get(op, "value"))
        return err_set(err, ERR_BAD_REQUEST,
                       "%s operation %zu is missing \"value\"", name, i);
    if (!(*kind)->needs_from)
        return 0;
    from = json_string_value(json_object_get(op, "from"));
    if (!from)
        return err_set(err, ERR_BAD_REQUEST,
                       "%s operation %zu is missing \"from\"", name, i);
    rc = ptr_check(from, err);
    if (rc)
        return rc;
    if (strlen(from) > *longest)
        *longest = strlen(from);
    if ((*kind)->from_not_ancestor && strncmp(path, from, strlen(from)) == 0
        && path[strlen(from)] == '/')
        return err_set(err, ERR_BAD_REQUEST,
                       "%s operation %zu: \"from\" %s is a prefix of "
                       "\"path\" %s", name, i, from, path);
    return 0;
}

/* Every operation is checked before any applies, so a malformed patch is
 * refused the same way whatever the document. */
int patch_json(const json_t *doc, const json_t *ops, json_t **out, err_t *err)
{
    jp_t jp = {NULL, NULL, err};
    const jp_kind_t *kind;
    const json_t *op;
    size_t i, longest = 0;
    int rc = 0;

    if (!doc || !ops || !out)
        return err_set(err, ERR_INTERNAL, "patch_json: NULL argument");
    *out = NULL;
    if (!json_is_array(ops)) {
        rc = err_set(err, ERR_BAD_REQUEST,
                     "json patch must be an array of operations");
        goto out;
    }
    json_array_foreach(ops, i, op) {
        rc = jp_check(op, i, &kind, &longest, err);
        if (rc)
            goto out;
    }
    jp.tok = mem_alloc(longest + 1);
    jp.root = json_deep_copy(doc);
    if (!jp.tok || !jp.root) {
        rc = nomem(err);
        goto out;
    }
    json_array_foreach(ops, i, op) {
        rc = jp_check(op, i, &kind, &longest, err);   /* cannot fail now */
        if (!rc)
            rc = kind->apply(&jp, json_string_value(json_object_get(op, "path")),
                             json_string_value(json_object_get(op, "from")),
                             json_object_get(op, "value"));
        if (rc)
            goto out;
    }
    *out = jp.root;
    jp.root = NULL;
out:
    json_decref(jp.root);
    mem_free(jp.tok);
    return rc;
}

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
        return replace_with_copy(target, patch, err);
    if (depth > PATCH_MAX_DEPTH)
        return too_deep(err);
    rc = ensure_object(target, err);
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
            return nomem(err);
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
        rc = nomem(err);
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
            if (!va || !vb || !values_equal(va, vb))
                return 0;
        }
        k += n + (k[n] == ',');
    }
    return 1;
}

/* Item identity in a list: by merge keys when it has them, else by value. */
static int same_item(const json_t *a, const json_t *b, const char *keys)
{
    return keys ? keys_match(a, b, keys) : values_equal(a, b);
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
    return replace_with_copy(target, patch, s->err);
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
        rc = replace_with_copy(&v, p, s->err);
    if (rc) {
        json_decref(v);
        return rc;
    }
    return json_array_append_new(result, v) ? nomem(s->err) : 0;
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
    return json_array_set_new(result, (size_t)at, child) ? nomem(s->err) : 0;
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
        return too_deep(s->err);
    rc = smp_list_check(s, patch, rule, &replace);
    if (rc)
        goto out;
    result = json_array();
    if (!result) {
        rc = nomem(s->err);
        goto out;
    }
    if (rule && !replace && json_is_array(*target)) {
        json_array_foreach(*target, i, v) {
            if (keys ? deleted_by(patch, v, keys) : index_of(result, v, NULL) >= 0)
                continue;
            if (json_array_append(result, (json_t *)v)) {
                rc = nomem(s->err);
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
        return nomem(s->err);
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
        rc = nomem(s->err);
        goto out;
    }
    while (l < nl || r < nr) {
        int take_left = r >= nr
            || (l < nl && left[l].server >= 0 && right[r].server >= 0
                && left[l].server < right[r].server);
        smp_slot_t *sl = take_left ? &left[l++] : &right[r++];
        if (json_array_append(*out, sl->item)) {
            rc = nomem(s->err);
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
    return json_object_set_new_nocheck(obj, field, sorted) ? nomem(s->err) : 0;
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
        rc = nomem(s->err);
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
        rc = ensure_object(target, s->err);
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
        return too_deep(s->err);
    if (!d)
        return smp_map_merge(s, target, patch, depth);
    if (!name) {
        rc = err_set(s->err, ERR_BAD_REQUEST,
                     "invalid value for special key: $patch in %s",
                     smp_where(s));
    } else if (strcmp(name, "replace") == 0) {
        rc = smp_map_merge(s, &fresh, patch, depth);
    } else if (strcmp(name, "delete") == 0) {
        rc = ensure_object(&fresh, s->err);
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
        rc = nomem(err);
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
