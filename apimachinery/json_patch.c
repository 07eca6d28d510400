/*
 * JSON patch (RFC 6902), on JSON pointers (RFC 6901). The contract is in patch.h.
 */
#include "patch_internal.h"

#include <stdint.h>
#include <string.h>

#include "../lib/mem.h"

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
            return patch__too_deep(err);
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
    return rc ? patch__nomem(jp->err) : 0;
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
        return patch__nomem(jp->err);
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
        return patch__nomem(jp->err);
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
        return patch__nomem(jp->err);
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
    if (!have || !patch__values_equal(have, value))
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
        rc = patch__nomem(err);
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

