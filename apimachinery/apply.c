/*
 * apply: server-side apply and managedFields tracking (see apply.h).
 *
 * How an apply runs, after structured-merge-diff's Updater.Apply and the
 * fieldmanager layers kube wraps around it:
 *   1. merged = live merged with applied;
 *   2. the manager's Apply set becomes the fields of applied;
 *   3. prune: fields the manager's previous Apply owned and this one does
 *      not leave merged, unless another manager owns them (Updater.prune,
 *      with its two add-back passes);
 *   4. compare live with the result: a field another manager owns that was
 *      added or modified is a conflict; with force (and for updates, always)
 *      other managers lose those fields and every removed one;
 *   5. untracked fields leave the manager's set (stripMeta), empty entries
 *      go, and the entries are encoded and sorted as kube does.
 * An ordinary write (Updater.Update behind managedFieldsUpdater) is step 4
 * with force between old and obj, the changed fields going to the writer's
 * Update entry.
 *
 * Sets are JSON objects, one per path node: the keys are path elements in
 * FieldsV1 spelling ("f:name", "k:{...}", "v:...") and the key "." marks the
 * node as owned. Every node but the root is owned or has children; empty
 * nodes are never attached. FieldsV1 writes an owned node without children
 * as {}, which decoding and encoding translate.
 *
 * Everything recursive is bounded: inputs are checked against
 * PATCH_MAX_DEPTH first, sets derive from them or are decoded with a depth
 * limit.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "quote.h"

/* Dotted rule paths longer than this match no rule (no rule is that long). */
#define APPLY_PATH_MAX 512
/* Path elements remembered for messages; deeper ones are left out. */
#define APPLY_SEGS (2 * PATCH_MAX_DEPTH + 8)
/* Merge keys per list rule. */
#define APPLY_MAX_KEYS 16
/* Update entries kept before the oldest are merged (kube's
 * DefaultMaxUpdateManagers) and the name of the entry they merge into. */
#define APPLY_MAX_UPDATE_MANAGERS 10
#define APPLY_ANCIENT "ancient-changes"

/* metadata fields no manager ever owns (kube's stripMeta set, plus the
 * deletion fields the server sets). */
static const char *const apply_untracked_meta[] = {
    "f:name", "f:namespace", "f:uid", "f:resourceVersion", "f:generation",
    "f:creationTimestamp", "f:deletionTimestamp", "f:deletionGracePeriodSeconds",
    "f:managedFields", "f:selfLink", "f:clusterName", NULL,
};

enum { LIST_ATOMIC, LIST_SET, LIST_KEYED };
enum { SHAPE_LEAF, SHAPE_MAP, SHAPE_LIST };

/* ---- string building (lib/sbuf.h) ---- */

/* The built string (caller owns), or NULL when an allocation failed. */
static char *sb_take(sbuf_t *b)
{
    if (b->oom) {
        sbuf_free(b);
        return NULL;
    }
    char *p = b->p ? b->p : mem_strdup("");
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

/* Shortest %g spelling that reads back as d, as Go prints a float64. */
static void fmt_real(char *buf, size_t n, double d)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A JSON string as Go's encoder writes it (HTML characters escaped). */
static void sb_json_str(sbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            sbuf_putc(b, '\\');
            sbuf_putc(b, (char)ch);
        } else if (ch == '\n') {
            sbuf_puts(b, "\\n");
        } else if (ch == '\r') {
            sbuf_puts(b, "\\r");
        } else if (ch == '\t') {
            sbuf_puts(b, "\\t");
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char u[7] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], '\0'};
            sbuf_puts(b, u);
        } else if (ch == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            sbuf_puts(b, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            sbuf_putc(b, (char)ch);
        }
    }
    sbuf_putc(b, '"');
}

static int is_scalar(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

/* A scalar as compact JSON (FieldsV1's spelling of keys and values). */
static void sb_json_scalar(sbuf_t *b, const json_t *v)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_STRING:
        sb_json_str(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        sbuf_puts(b, num);
        break;
    case JSON_REAL:
        fmt_real(num, sizeof num, json_real_value(v));
        sbuf_puts(b, num);
        break;
    case JSON_TRUE:
        sbuf_puts(b, "true");
        break;
    case JSON_FALSE:
        sbuf_puts(b, "false");
        break;
    default:
        sbuf_puts(b, "null");
        break;
    }
}

/* A value as structured-merge-diff's value.ToString shows it. */
static void sb_go_value(sbuf_t *b, const json_t *v)
{
    if (json_is_string(v))
        quote_go_sb(b, json_string_value(v), json_string_length(v));
    else
        sb_json_scalar(b, v);
}

/* Appends a path element of a set in fieldpath's notation: ".name",
 * "[kind=\"User\",name=\"a\"]", "[=\"value\"]". ERR_NOMEM. */
static int sb_disp_pe(sbuf_t *b, const char *pe)
{
    if (!strncmp(pe, "f:", 2)) {
        sbuf_putc(b, '.');
        sbuf_puts(b, pe + 2);
        return 0;
    }
    if (strncmp(pe, "k:", 2) && strncmp(pe, "v:", 2)) {
        sbuf_putc(b, '[');
        sbuf_puts(b, strncmp(pe, "i:", 2) ? pe : pe + 2);
        sbuf_putc(b, ']');
        return 0;
    }
    /* Our own canonical spelling: it parses unless memory runs out. */
    json_error_t jerr;
    json_t *v = json_loads(pe + 2, JSON_DECODE_ANY, &jerr);
    if (!v)
        return ERR_NOMEM;
    sbuf_putc(b, '[');
    if (pe[0] == 'v') {
        sbuf_putc(b, '=');
        sb_go_value(b, v);
    } else {
        const char *k;
        json_t *kv;
        int first = 1;
        json_object_foreach(v, k, kv) {
            if (!first)
                sbuf_putc(b, ',');
            first = 0;
            sbuf_puts(b, k);
            sbuf_putc(b, '=');
            sb_go_value(b, kv);
        }
    }
    sbuf_putc(b, ']');
    json_decref(v);
    return 0;
}

/* ---- walking context ------------------------------------------------------ */

/* Where a walk is: the dotted path list rules are looked up by (items add
 * no segment) and the path elements from the root, for messages. */
typedef struct ctx {
    const patch_list_rule_t *rules;
    err_t *err;
    const char *what;            /* "<ns>/<name>; <gvk>" of the applied object */
    char path[APPLY_PATH_MAX];
    size_t len;
    int lost;                    /* > 0 while the dotted path does not fit */
    const char *seg[APPLY_SEGS];
    int nseg;                    /* may exceed APPLY_SEGS; the excess is not kept */
} ctx_t;

static void ctx_init(ctx_t *c, const patch_list_rule_t *rules, err_t *err)
{
    memset(c, 0, sizeof *c);
    c->rules = rules;
    c->err = err;
    c->what = "";
}

static void ctx_seg(ctx_t *c, const char *seg)
{
    if (c->nseg < APPLY_SEGS)
        c->seg[c->nseg] = seg;
    c->nseg++;
}

/* Enters map field name, whose set key is seg (borrowed until the matching
 * ctx_leave). Returns what ctx_leave needs. */
static size_t ctx_enter(ctx_t *c, const char *name, const char *seg)
{
    size_t n = strlen(name), at = c->len;
    ctx_seg(c, seg);
    if (c->lost || at + n + 2 > sizeof c->path) {
        c->lost++;
        return (size_t)-1;
    }
    if (at)
        c->path[c->len++] = '.';
    memcpy(c->path + c->len, name, n);
    c->len += n;
    c->path[c->len] = '\0';
    return at;
}

static void ctx_leave(ctx_t *c, size_t at)
{
    c->nseg--;
    if (at == (size_t)-1) {
        c->lost--;
        return;
    }
    c->len = at;
    c->path[at] = '\0';
}

/* The kind's rule for the list at c->path, else the shared metadata rules
 * (patch_metadata_rules): one table for apply and strategic merge. */
static const patch_list_rule_t *find_rule(const ctx_t *c)
{
    return c->lost ? NULL : patch_find_rule(c->rules, c->path);
}

static int list_kind(const ctx_t *c, const patch_list_rule_t **rule)
{
    *rule = find_rule(c);
    if (!*rule)
        return LIST_ATOMIC;
    return (*rule)->keys ? LIST_KEYED : LIST_SET;
}

/* A malformed applied configuration: kube's typed conversion error, which
 * it answers with a 500. The path is the list's. */
static int bad_config(ctx_t *c, const char *detail)
{
    sbuf_t b = {0};
    int n = c->nseg < APPLY_SEGS ? c->nseg : APPLY_SEGS;
    for (int i = 0; i < n; i++)
        if (c->seg[i] && sb_disp_pe(&b, c->seg[i])) {
            sbuf_free(&b);
            return err_set(c->err, ERR_NOMEM, NULL);
        }
    if (b.oom) {
        sbuf_free(&b);
        return err_set(c->err, ERR_NOMEM, NULL);
    }
    err_set(c->err, ERR_INTERNAL, "failed to create typed patch object (%s): %s: %s", c->what,
            b.p ? b.p : "", detail);
    sbuf_free(&b);
    return ERR_INTERNAL;
}

/* ---- path elements of list items ------------------------------------------ */

typedef struct keyname {
    const char *s;
    size_t n;
} keyname_t;

static int keyname_cmp(const void *x, const void *y)
{
    const keyname_t *a = x, *b = y;
    int r = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    if (r)
        return r;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* "k:{...}" from the named fields of src, names sorted. Returns 0 with *pe
 * (caller owns), ERR_NOMEM, or 1 when a field is missing or not a scalar
 * (reason in why). */
static int build_kpe(const json_t *src, keyname_t *names, size_t nk, char **pe, char *why,
                     size_t whylen)
{
    sbuf_t b = {0};
    *pe = NULL;
    qsort(names, nk, sizeof *names, keyname_cmp);
    sbuf_puts(&b, "k:{");
    for (size_t i = 0; i < nk; i++) {
        const json_t *v = json_object_getn(src, names[i].s, names[i].n);
        if (!v || json_is_null(v) || !is_scalar(v)) {
            snprintf(why, whylen,
                     v && !json_is_null(v)
                         ? "associative list with keys has an element whose key field \"%.*s\" "
                           "is not a scalar"
                         : "associative list with keys has an element that omits key field "
                           "\"%.*s\" (and doesn't have default value)",
                     (int)names[i].n, names[i].s);
            sbuf_free(&b);
            return 1;
        }
        if (i)
            sbuf_putc(&b, ',');
        sb_json_str(&b, names[i].s, names[i].n);
        sbuf_putc(&b, ':');
        sb_json_scalar(&b, v);
    }
    sbuf_putc(&b, '}');
    *pe = sb_take(&b);
    return *pe ? 0 : ERR_NOMEM;
}

/* The path element of item in the keyed or set list of rule. Returns 0 with
 * *pe (caller owns), ERR_NOMEM, or 1 when the item cannot be named (reason
 * in why). */
static int item_pe(const patch_list_rule_t *rule, const json_t *item, char **pe, char *why,
                   size_t whylen)
{
    *pe = NULL;
    if (!rule->keys) {
        if (!is_scalar(item)) {
            snprintf(why, whylen, "associative list without keys has an element that's a %s type",
                     json_is_object(item) ? "map" : "list");
            return 1;
        }
        sbuf_t b = {0};
        sbuf_puts(&b, "v:");
        sb_json_scalar(&b, item);
        *pe = sb_take(&b);
        return *pe ? 0 : ERR_NOMEM;
    }
    if (!json_is_object(item)) {
        snprintf(why, whylen, "associative list with keys has an element that is not a map");
        return 1;
    }
    keyname_t names[APPLY_MAX_KEYS] = {{NULL, 0}};
    size_t nk = 0;
    for (const char *p = rule->keys; *p && nk < APPLY_MAX_KEYS;) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - p);
        while (n && p[n - 1] == ' ')
            n--;
        if (n)
            names[nk++] = (keyname_t){p, n};
        p = e;
    }
    return build_kpe(item, names, nk, pe, why, whylen);
}

/* Whether a failed json_loads ran out of memory. jansson reports a failed
 * allocation inside a string as a syntax error, so when its code does not
 * say, a small allocation decides. */
static int parse_failed_for_memory(const json_error_t *jerr)
{
    if (json_error_code(jerr) == json_error_out_of_memory)
        return 1;
    void *probe = mem_alloc(64);
    mem_free(probe);
    return probe == NULL;
}

/* A path element from FieldsV1 in our canonical spelling (keys sorted,
 * Go's escapes), so that sets written by anyone compare equal. Returns 0
 * with *pe, ERR_NOMEM, or 1 when the element is malformed. */
static int pe_canonical(const char *k, char **pe, char *why, size_t whylen)
{
    *pe = NULL;
    if (!strncmp(k, "f:", 2) || !strncmp(k, "i:", 2)) {
        *pe = mem_strdup(k);
        return *pe ? 0 : ERR_NOMEM;
    }
    if (strncmp(k, "k:", 2) && strncmp(k, "v:", 2)) {
        snprintf(why, whylen, "unknown path element %.64s", k);
        return 1;
    }
    json_error_t jerr;
    json_t *v = json_loads(k + 2, JSON_DECODE_ANY, &jerr);
    if (!v) {
        if (parse_failed_for_memory(&jerr))
            return ERR_NOMEM;
        snprintf(why, whylen, "malformed path element %.64s", k);
        return 1;
    }
    int rc = 1;
    if (k[0] == 'v' && is_scalar(v)) {
        sbuf_t b = {0};
        sbuf_puts(&b, "v:");
        sb_json_scalar(&b, v);
        *pe = sb_take(&b);
        rc = *pe ? 0 : ERR_NOMEM;
    } else if (k[0] == 'k' && json_is_object(v) && json_object_size(v) &&
               json_object_size(v) <= APPLY_MAX_KEYS) {
        keyname_t names[APPLY_MAX_KEYS] = {{NULL, 0}};
        size_t nk = 0;
        const char *name;
        json_t *kv;
        json_object_foreach(v, name, kv) {
            names[nk++] = (keyname_t){name, strlen(name)};
        }
        rc = build_kpe(v, names, nk, pe, why, whylen);
    }
    if (rc == 1)
        snprintf(why, whylen, "malformed path element %.64s", k);
    json_decref(v);
    return rc;
}

/* "f:<name>", caller owns; NULL on allocation failure. */
static char *field_key(const char *name)
{
    size_t n = strlen(name);
    char *k = mem_alloc(n + 3);
    if (k) {
        k[0] = 'f';
        k[1] = ':';
        memcpy(k + 2, name, n + 1);
    }
    return k;
}

/* ---- sets ------------------------------------------------------------------- */

static int set_mark(json_t *node)
{
    return json_object_set_new(node, ".", json_object()) ? ERR_NOMEM : 0;
}

static int set_is_member(const json_t *node)
{
    return node && json_object_get(node, ".") != NULL;
}

static int set_has_children(const json_t *node)
{
    return json_object_size(node) > (size_t)(set_is_member(node) ? 1 : 0);
}

/* Attaches child (taken) under key, unless it is empty. */
static int set_attach(json_t *node, const char *key, json_t *child)
{
    if (!json_object_size(child)) {
        json_decref(child);
        return 0;
    }
    return json_object_set_new(node, key, child) ? ERR_NOMEM : 0;
}

/* Adds the members of b to dst. */
static int set_union_into(json_t *dst, const json_t *b)
{
    const char *k;
    json_t *bv;
    json_object_foreach((json_t *)b, k, bv) {
        if (!strcmp(k, ".")) {
            if (set_mark(dst))
                return ERR_NOMEM;
            continue;
        }
        json_t *dv = json_object_get(dst, k);
        if (dv) {
            int rc = set_union_into(dv, bv);
            if (rc)
                return rc;
        } else if (json_object_set_new(dst, k, json_deep_copy(bv))) {
            return ERR_NOMEM;
        }
    }
    return 0;
}

/* a ∪ b, a new set; NULL on allocation failure. */
static json_t *set_union(const json_t *a, const json_t *b)
{
    json_t *out = a ? json_deep_copy(a) : json_object();
    if (out && b && set_union_into(out, b)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* a − b (inter == 0) or a ∩ b (inter == 1), a new set; NULL on allocation
 * failure. b may be NULL (the empty set). */
static json_t *set_diff_inter(const json_t *a, const json_t *b, int inter)
{
    json_t *o = json_object();
    const char *k;
    json_t *av;
    if (!o)
        return NULL;
    json_object_foreach((json_t *)a, k, av) {
        if (!strcmp(k, ".")) {
            if (set_is_member(b) == inter && set_mark(o))
                goto nomem;
            continue;
        }
        const json_t *bv = b ? json_object_get(b, k) : NULL;
        json_t *c;
        if (bv)
            c = set_diff_inter(av, bv, inter);
        else if (inter)
            continue;
        else
            c = json_deep_copy(av);
        if (!c || set_attach(o, k, c))
            goto nomem;
    }
    return o;
nomem:
    json_decref(o);
    return NULL;
}

static json_t *set_diff(const json_t *a, const json_t *b) { return set_diff_inter(a, b, 0); }
static json_t *set_inter(const json_t *a, const json_t *b) { return set_diff_inter(a, b, 1); }

/* Replaces *s by f(*s, b) (f: set_diff or set_union), keeping *s on failure. */
static int set_apply(json_t **s, json_t *(*f)(const json_t *, const json_t *), const json_t *b)
{
    json_t *n = f(*s, b);
    if (!n)
        return ERR_NOMEM;
    json_decref(*s);
    *s = n;
    return 0;
}

/* Takes the untracked fields out of a set. Allocates nothing. */
static void set_strip_untracked(json_t *set)
{
    json_object_del(set, "f:apiVersion");
    json_object_del(set, "f:kind");
    json_t *m = json_object_get(set, "f:metadata");
    if (!m)
        return;
    json_object_del(m, ".");
    for (size_t i = 0; apply_untracked_meta[i]; i++)
        json_object_del(m, apply_untracked_meta[i]);
    if (!json_object_size(m))
        json_object_del(set, "f:metadata");
}

/* fieldpath's order of path elements: fields, keys, values, indexes. */
static int pe_rank(const char *pe)
{
    static const char order[] = "fkvi";
    const char *p = pe[0] && pe[1] == ':' ? strchr(order, pe[0]) : NULL;
    return p ? (int)(p - order) : 4;
}

static int pe_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    int ra = pe_rank(a), rb = pe_rank(b);
    if (ra != rb)
        return ra - rb;
    return strcmp(a, b);
}

/* The child keys of a set node ("." left out), sorted; *n their count.
 * Caller frees the array; NULL with *n > 0 on allocation failure. */
static const char **set_sorted_keys(const json_t *node, size_t *n)
{
    size_t cap = json_object_size(node), k = 0;
    const char **keys = mem_alloc(sizeof *keys * (cap ? cap : 1));
    const char *key;
    json_t *v;
    *n = cap;
    if (!keys)
        return NULL;
    json_object_foreach((json_t *)node, key, v) {
        if (strcmp(key, "."))
            keys[k++] = key;
    }
    qsort(keys, k, sizeof *keys, pe_cmp);
    *n = k;
    return keys;
}

/* ---- FieldsV1 -------------------------------------------------------------- */

/* FieldsV1 of a set: "." first when the node has children too, then the
 * children in fieldpath's order. */
static json_t *fv1_encode(const json_t *node)
{
    size_t n;
    const char **keys = set_sorted_keys(node, &n);
    json_t *o = json_object();
    if ((!keys && n) || !o)
        goto nomem;
    if (set_is_member(node) && n && json_object_set_new(o, ".", json_object()))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (json_object_set_new(o, keys[i], fv1_encode(json_object_get(node, keys[i]))))
            goto nomem;
    mem_free(keys);
    return o;
nomem:
    mem_free(keys);
    json_decref(o);
    return NULL;
}

/* A set from FieldsV1 f. Returns 0 with *out, ERR_NOMEM, or 1 when f is
 * malformed (reason in why). */
static int fv1_decode(const json_t *f, int depth, json_t **out, char *why, size_t whylen)
{
    json_t *o = json_object();
    const char *k;
    json_t *cv;
    int rc = 0;
    *out = NULL;
    if (!o)
        return ERR_NOMEM;
    if (depth > PATCH_MAX_DEPTH + 2) {
        snprintf(why, whylen, "fieldsV1 nested more than %d levels", PATCH_MAX_DEPTH);
        json_decref(o);
        return 1;
    }
    json_object_foreach((json_t *)f, k, cv) {
        if (!strcmp(k, ".")) {
            rc = set_mark(o);
            if (rc)
                break;
            continue;
        }
        if (!json_is_object(cv)) {
            snprintf(why, whylen, "fieldsV1 value of %.64s is not an object", k);
            rc = 1;
            break;
        }
        char *pe;
        json_t *sub;
        rc = pe_canonical(k, &pe, why, whylen);
        if (rc)
            break;
        rc = fv1_decode(cv, depth + 1, &sub, why, whylen);
        if (!rc && !json_object_size(cv))
            rc = set_mark(sub);
        if (!rc) {
            json_t *have = json_object_get(o, pe);
            if (have) {
                rc = set_union_into(have, sub);
                json_decref(sub);
            } else {
                rc = set_attach(o, pe, sub);
            }
        } else {
            json_decref(sub);
        }
        mem_free(pe);
        if (rc)
            break;
    }
    if (rc) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* ---- fields of an object ----------------------------------------------------- */

static int fo_node(ctx_t *c, const json_t *v, json_t *node, int strict);

static int fo_map(ctx_t *c, const json_t *obj, json_t *node, int strict)
{
    const char *k;
    json_t *cv;
    json_object_foreach((json_t *)obj, k, cv) {
        char *key = field_key(k);
        json_t *child = json_object();
        int rc = ERR_NOMEM;
        if (key && child) {
            size_t at = ctx_enter(c, k, key);
            rc = fo_node(c, cv, child, strict);
            ctx_leave(c, at);
            if (!rc)
                rc = set_attach(node, key, child);
            else
                json_decref(child);
            child = NULL;
        }
        json_decref(child);
        mem_free(key);
        if (rc)
            return rc == ERR_NOMEM ? err_set(c->err, ERR_NOMEM, NULL) : rc;
    }
    return 0;
}

/* The items of a keyed or set list. strict (the applied configuration):
 * an item that cannot be named, or a repeated one, is an error; otherwise
 * such items are not tracked (the first of repeated ones is). */
static int fo_list(ctx_t *c, const json_t *arr, json_t *node, const patch_list_rule_t *rule,
                   int strict)
{
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        char *pe, why[200];
        int rc = item_pe(rule, item, &pe, why, sizeof why);
        if (rc == 1) {
            if (!strict)
                continue;
            char detail[256];
            snprintf(detail, sizeof detail, "element %zu: %s", i, why);
            return bad_config(c, detail);
        }
        if (rc)
            return err_set(c->err, ERR_NOMEM, NULL);
        if (json_object_get(node, pe)) {
            if (strict) {
                sbuf_t b = {0};
                sbuf_puts(&b, "duplicate entries for key ");
                rc = sb_disp_pe(&b, pe);
                char *detail = rc ? NULL : sb_take(&b);
                sbuf_free(&b);
                rc = detail ? bad_config(c, detail) : err_set(c->err, ERR_NOMEM, NULL);
                mem_free(detail);
            }
            mem_free(pe);
            if (rc)
                return rc;
            continue;
        }
        json_t *child = json_object();
        rc = child ? set_mark(child) : ERR_NOMEM;
        if (!rc && rule->keys) {
            ctx_seg(c, pe);
            rc = fo_map(c, item, child, strict);
            c->nseg--;
        }
        if (!rc && json_object_set_new(node, pe, child))
            rc = ERR_NOMEM;
        else if (rc)
            json_decref(child);
        mem_free(pe);
        if (rc)
            return rc == ERR_NOMEM ? err_set(c->err, ERR_NOMEM, NULL) : rc;
    }
    return 0;
}

/* Adds what a manager setting v (at c's path) owns to node: the leaves, the
 * items of keyed and set lists, and empty maps and lists as leaves. */
static int fo_node(ctx_t *c, const json_t *v, json_t *node, int strict)
{
    const patch_list_rule_t *rule;
    if (json_is_object(v) && json_object_size(v))
        return fo_map(c, v, node, strict);
    if (json_is_array(v) && json_array_size(v) && list_kind(c, &rule) != LIST_ATOMIC)
        return fo_list(c, v, node, rule, strict);
    return set_mark(node) ? err_set(c->err, ERR_NOMEM, NULL) : 0;
}

/* The set of a whole object, untracked fields included (*out, new). */
static int fields_raw(ctx_t *c, const json_t *obj, int strict, json_t **out)
{
    json_t *s = json_object();
    int rc = s ? fo_map(c, obj, s, strict) : err_set(c->err, ERR_NOMEM, NULL);
    if (rc) {
        json_decref(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

/* ---- compare ------------------------------------------------------------------ */

/* How a node is walked: a map or a keyed/set list with something in it on
 * either side is descended into; anything else (scalars, atomic lists, empty
 * on both sides, or a change of type) is one leaf. */
static int shape_of(const ctx_t *c, const json_t *a, const json_t *b,
                    const patch_list_rule_t **rule)
{
    *rule = NULL;
    if ((!a || json_is_object(a)) && (!b || json_is_object(b)))
        return json_object_size(a) || json_object_size(b) ? SHAPE_MAP : SHAPE_LEAF;
    if ((!a || json_is_array(a)) && (!b || json_is_array(b)) && list_kind(c, rule) != LIST_ATOMIC)
        return json_array_size(a) || json_array_size(b) ? SHAPE_LIST : SHAPE_LEAF;
    return SHAPE_LEAF;
}

/* The paths added, modified and removed between two objects, each a set
 * node for the current path. */
typedef struct delta {
    json_t *add, *mod, *rem;
} delta_t;

static int delta_new(delta_t *d)
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

static void delta_free(delta_t *d)
{
    json_decref(d->add);
    json_decref(d->mod);
    json_decref(d->rem);
    d->add = d->mod = d->rem = NULL;
}

/* add ∪ mod, the paths a write sets (new set; NULL on allocation failure).
 * Takes add or mod out of d when the other is empty, which is every
 * create: the delta's add set is the answer, and copying it is not free. */
static json_t *delta_take_changed(delta_t *d)
{
    json_t **whole = !json_object_size(d->mod) ? &d->add : !json_object_size(d->add) ? &d->mod : NULL;
    if (!whole)
        return set_union(d->add, d->mod);
    json_t *out = *whole;
    *whole = NULL;
    return out;
}

/* Attaches the child delta (taken) under key. */
static int delta_attach(delta_t *d, const char *key, delta_t *cd)
{
    int rc = set_attach(d->add, key, cd->add);
    rc |= set_attach(d->mod, key, cd->mod);
    rc |= set_attach(d->rem, key, cd->rem);
    cd->add = cd->mod = cd->rem = NULL;
    return rc ? ERR_NOMEM : 0;
}

/* An index of a keyed or set list: the path element of each item, NULL
 * for items that cannot be named and for repeats of an earlier one. */
typedef struct lindex {
    size_t n;
    char **pe;
    const json_t **item;
} lindex_t;

static void lindex_free(lindex_t *ix)
{
    for (size_t i = 0; ix->pe && i < ix->n; i++)
        mem_free(ix->pe[i]);
    mem_free(ix->pe);
    mem_free(ix->item);
    memset(ix, 0, sizeof *ix);
}

static long lindex_find(const lindex_t *ix, const char *pe)
{
    for (size_t i = 0; i < ix->n; i++)
        if (ix->pe[i] && !strcmp(ix->pe[i], pe))
            return (long)i;
    return -1;
}

static int lindex_build(const patch_list_rule_t *rule, const json_t *arr, lindex_t *ix)
{
    size_t n = json_array_size(arr);
    memset(ix, 0, sizeof *ix);
    ix->pe = mem_calloc(n ? n : 1, sizeof *ix->pe);
    ix->item = mem_calloc(n ? n : 1, sizeof *ix->item);
    if (!ix->pe || !ix->item) {
        lindex_free(ix);
        return ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char *pe, why[8];
        ix->item[i] = json_array_get(arr, i);
        int rc = item_pe(rule, ix->item[i], &pe, why, sizeof why);
        if (rc < 0) {
            ix->n = i;
            lindex_free(ix);
            return rc;
        }
        if (!rc && lindex_find(ix, pe) >= 0) {
            mem_free(pe);
            pe = NULL;
        }
        ix->pe[i] = pe;
        ix->n = i + 1;
    }
    return 0;
}

static int cmp_node(ctx_t *c, const json_t *a, const json_t *b, delta_t *d);

/* Compares a child (a map field when name is set, else a list item) into
 * d under key. */
static int cmp_child(ctx_t *c, const char *name, const char *key, const json_t *a,
                     const json_t *b, delta_t *d)
{
    delta_t cd;
    int rc = delta_new(&cd);
    if (rc)
        return rc;
    if (name) {
        size_t at = ctx_enter(c, name, key);
        rc = cmp_node(c, a, b, &cd);
        ctx_leave(c, at);
    } else {
        rc = cmp_node(c, a, b, &cd);
    }
    if (rc) {
        delta_free(&cd);
        return rc;
    }
    return delta_attach(d, key, &cd);
}

static int cmp_map(ctx_t *c, const json_t *a, const json_t *b, delta_t *d)
{
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)a, k, v) {
        char *key = field_key(k);
        rc = key ? cmp_child(c, k, key, v, json_object_get(b, k), d) : ERR_NOMEM;
        mem_free(key);
        if (rc)
            return rc;
    }
    json_object_foreach((json_t *)b, k, v) {
        if (json_object_get(a, k))
            continue;
        char *key = field_key(k);
        rc = key ? cmp_child(c, k, key, NULL, v, d) : ERR_NOMEM;
        mem_free(key);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_list(ctx_t *c, const json_t *a, const json_t *b, const patch_list_rule_t *rule,
                    delta_t *d)
{
    lindex_t ia, ib;
    int rc = lindex_build(rule, a, &ia);
    if (rc)
        return rc;
    rc = lindex_build(rule, b, &ib);
    if (rc) {
        lindex_free(&ia);
        return rc;
    }
    for (size_t i = 0; !rc && i < ia.n; i++) {
        if (!ia.pe[i])
            continue;
        long j = lindex_find(&ib, ia.pe[i]);
        rc = cmp_child(c, NULL, ia.pe[i], ia.item[i], j >= 0 ? ib.item[j] : NULL, d);
    }
    for (size_t j = 0; !rc && j < ib.n; j++)
        if (ib.pe[j] && lindex_find(&ia, ib.pe[j]) < 0)
            rc = cmp_child(c, NULL, ib.pe[j], NULL, ib.item[j], d);
    lindex_free(&ia);
    lindex_free(&ib);
    return rc;
}

/* The children of v, a map or keyed/set list that became something else
 * (b NULL) or that something else became (a NULL): removed or added. */
static int cmp_inside(ctx_t *c, const json_t *a, const json_t *b, delta_t *d)
{
    const json_t *v = a ? a : b;
    const patch_list_rule_t *rule;
    if (json_is_object(v))
        return cmp_map(c, a, b, d);
    if (json_is_array(v) && list_kind(c, &rule) != LIST_ATOMIC)
        return cmp_list(c, a, b, rule, d);
    return 0;
}

/* Compares a (before) with b (after), either absent. Leaves that appear,
 * change or go are added, modified or removed; a map or list node that
 * appears or goes is itself added or removed. */
static int cmp_node(ctx_t *c, const json_t *a, const json_t *b, delta_t *d)
{
    const patch_list_rule_t *rule;
    int rc;
    switch (shape_of(c, a, b, &rule)) {
    case SHAPE_LEAF:
        if (!a)
            return set_mark(d->add);
        if (!b)
            return set_mark(d->rem);
        if (json_equal(a, b))
            return 0;
        /* A change of type: the node is modified, and (as kube walks both
         * sides) what was inside a is removed, what is inside b added. */
        rc = set_mark(d->mod);
        if (!rc)
            rc = cmp_inside(c, a, NULL, d);
        if (!rc)
            rc = cmp_inside(c, NULL, b, d);
        return rc;
    case SHAPE_MAP:
        rc = cmp_map(c, a, b, d);
        break;
    default:
        rc = cmp_list(c, a, b, rule, d);
        break;
    }
    if (rc)
        return rc;
    if (!a)
        return set_mark(d->add);
    if (!b)
        return set_mark(d->rem);
    return 0;
}

/* What cmp_node(c, NULL, b) adds, built straight into node without the
 * delta's three sets per level: everything in b is added, and each map or
 * named list item is itself a member. A create's whole field set. */
static int add_node(ctx_t *c, const json_t *b, json_t *node);

static int add_child(ctx_t *c, const char *name, const char *key, const json_t *b, json_t *node)
{
    json_t *child = json_object();
    if (!child)
        return ERR_NOMEM;
    size_t at = name ? ctx_enter(c, name, key) : 0;
    int rc = add_node(c, b, child);
    if (name)
        ctx_leave(c, at);
    if (rc) {
        json_decref(child);
        return rc;
    }
    return set_attach(node, key, child);
}

static int add_map(ctx_t *c, const json_t *b, json_t *node)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)b, k, v) {
        char *key = field_key(k);
        int rc = key ? add_child(c, k, key, v, node) : ERR_NOMEM;
        mem_free(key);
        if (rc)
            return rc;
    }
    return 0;
}

static int add_node(ctx_t *c, const json_t *b, json_t *node)
{
    const patch_list_rule_t *rule;
    int rc = 0;
    switch (shape_of(c, NULL, b, &rule)) {
    case SHAPE_LEAF:
        break;
    case SHAPE_MAP:
        rc = add_map(c, b, node);
        break;
    default: {
        lindex_t ib;
        rc = lindex_build(rule, b, &ib);
        for (size_t j = 0; !rc && j < ib.n; j++)
            if (ib.pe[j])
                rc = add_child(c, NULL, ib.pe[j], ib.item[j], node);
        if (ib.pe)
            lindex_free(&ib);
        break;
    }
    }
    return rc ? rc : set_mark(node);
}

/* ---- merge -------------------------------------------------------------------- */

static int mg_node(ctx_t *c, const json_t *a, const json_t *b, json_t **out);

static int mg_map(ctx_t *c, const json_t *a, const json_t *b, json_t **out)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (!o)
        return ERR_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach((json_t *)(pass ? b : a), k, v) {
            if (pass && json_object_get(a, k))
                continue;
            json_t *m = NULL;
            size_t at = ctx_enter(c, k, NULL);
            int rc = pass ? mg_node(c, NULL, v, &m) : mg_node(c, v, json_object_get(b, k), &m);
            ctx_leave(c, at);
            if (!rc && json_object_set_new(o, k, m))
                rc = ERR_NOMEM;
            if (rc) {
                json_decref(o);
                return rc;
            }
        }
    }
    *out = o;
    return 0;
}

static int mg_item(ctx_t *c, const json_t *a, const json_t *b, json_t *arr)
{
    json_t *m = NULL;
    int rc = mg_node(c, a, b, &m);
    if (!rc && json_array_append_new(arr, m))
        rc = ERR_NOMEM;
    return rc;
}

/* Merges keyed or set lists in structured-merge-diff's order: live items
 * the configuration does not name stay where they are, the configuration's
 * items come in its order, and a live item it names moves to its place in
 * the configuration unless it is the next one expected there. Live items
 * that cannot be named pass through unchanged. */
static int mg_list(ctx_t *c, const json_t *a, const json_t *b, const patch_list_rule_t *rule,
                   json_t **out)
{
    lindex_t ia = {0}, ib = {0};
    char *done = NULL;
    size_t *shared = NULL, nsh = 0, si = 0;
    json_t *o = NULL;
    int rc = lindex_build(rule, a, &ia);
    if (!rc)
        rc = lindex_build(rule, b, &ib);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    done = mem_calloc(ia.n ? ia.n : 1, 1);
    shared = mem_alloc(sizeof *shared * (ib.n ? ib.n : 1));
    o = json_array();
    if (!done || !shared || !o)
        goto out;
    for (size_t j = 0; j < ib.n; j++)
        if (ib.pe[j] && lindex_find(&ia, ib.pe[j]) >= 0)
            shared[nsh++] = j;
    const char *next = nsh ? ib.pe[shared[si++]] : NULL;
    size_t l = 0, r = 0;
    rc = 0;
    while (!rc && (l < ia.n || r < ib.n)) {
        if (r < ib.n && !ib.pe[r]) {
            r++;                                 /* already refused by fields_of */
            continue;
        }
        if (l < ia.n && done[l]) {
            l++;
            continue;
        }
        const char *pe = l < ia.n ? ia.pe[l] : NULL;
        int in_b = pe && lindex_find(&ib, pe) >= 0;
        if (l < ia.n && r < ib.n) {
            if (pe && !strcmp(pe, ib.pe[r])) {
                rc = mg_item(c, ia.item[l], ib.item[r], o);
                done[l++] = 1;
                r++;
                next = si < nsh ? ib.pe[shared[si++]] : NULL;
                continue;
            }
            if (in_b && next && strcmp(next, pe)) {
                l++;                             /* shared, but not this round's */
                continue;
            }
        }
        if (l < ia.n && !in_b) {
            rc = mg_item(c, ia.item[l], NULL, o);
            done[l++] = 1;
            continue;
        }
        if (r < ib.n) {
            long li = lindex_find(&ia, ib.pe[r]);
            rc = mg_item(c, li >= 0 ? ia.item[li] : NULL, ib.item[r], o);
            if (li >= 0)
                done[li] = 1;
            if (next && !strcmp(next, ib.pe[r]))
                next = si < nsh ? ib.pe[shared[si++]] : NULL;
            r++;
            continue;
        }
        l++;
    }
out:
    if (rc) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    mem_free(done);
    mem_free(shared);
    lindex_free(&ia);
    lindex_free(&ib);
    return rc;
}

/* a (live) merged with b (configuration), either absent: maps merge field
 * by field, keyed and set lists item by item, anything else is b's. *out is
 * new and shares nothing with a or b. */
static int mg_node(ctx_t *c, const json_t *a, const json_t *b, json_t **out)
{
    const patch_list_rule_t *rule;
    *out = NULL;
    switch (shape_of(c, a, b, &rule)) {
    case SHAPE_LEAF:
        *out = json_deep_copy(b ? b : a);
        return *out ? 0 : ERR_NOMEM;
    case SHAPE_MAP:
        return mg_map(c, a, b, out);
    default:
        return mg_list(c, a, b, rule, out);
    }
}

/* ---- removal ------------------------------------------------------------------- */

/* v without the members of rm (structured-merge-diff's RemoveItems). A map
 * or list that the removal empties is dropped (*out NULL) unless it is a
 * member of keep, as kube's typed objects lose a field that becomes null.
 * Unchanged subtrees are shared with v. */
static int rm_node(ctx_t *c, const json_t *v, const json_t *rm, const json_t *keep,
                   json_t **out)
{
    const patch_list_rule_t *rule;
    int rc = 0;
    *out = NULL;
    if (json_is_object(v) && json_object_size(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *cv;
        if (!o)
            return ERR_NOMEM;
        json_object_foreach((json_t *)v, k, cv) {
            char *key = field_key(k);
            json_t *nv = NULL;
            if (!key) {
                rc = ERR_NOMEM;
                break;
            }
            const json_t *cr = json_object_get(rm, key);
            if (set_is_member(cr)) {
                /* removed */
            } else if (cr) {
                size_t at = ctx_enter(c, k, key);
                rc = rm_node(c, cv, cr, json_object_get(keep, key), &nv);
                ctx_leave(c, at);
            } else {
                nv = json_incref(cv);
            }
            mem_free(key);
            if (!rc && nv && json_object_set_new(o, k, nv))
                rc = ERR_NOMEM;
            if (rc)
                break;
        }
        if (rc || (!json_object_size(o) && !set_is_member(keep))) {
            json_decref(o);
            return rc;
        }
        *out = o;
        return 0;
    }
    if (json_is_array(v) && json_array_size(v) && list_kind(c, &rule) != LIST_ATOMIC) {
        json_t *o = json_array();
        size_t i;
        json_t *item;
        if (!o)
            return ERR_NOMEM;
        json_array_foreach(v, i, item) {
            char *pe = NULL, why[8];
            json_t *nv = NULL;
            rc = item_pe(rule, item, &pe, why, sizeof why);
            if (rc < 0)
                break;
            const json_t *cr = rc ? NULL : json_object_get(rm, pe);
            rc = 0;
            if (set_is_member(cr)) {
                /* removed */
            } else if (cr)
                rc = rm_node(c, item, cr, json_object_get(keep, pe), &nv);
            else
                nv = json_incref(item);
            mem_free(pe);
            if (!rc && nv && json_array_append_new(o, nv))
                rc = ERR_NOMEM;
            if (rc)
                break;
        }
        if (rc || (!json_array_size(o) && !set_is_member(keep))) {
            json_decref(o);
            return rc;
        }
        *out = o;
        return 0;
    }
    *out = json_incref((json_t *)v);
    return 0;
}

/* rm_node on a whole object: the root is never dropped. */
static int rm_root(ctx_t *c, const json_t *v, const json_t *rm, const json_t *keep, json_t **out)
{
    int rc = rm_node(c, v, rm, keep, out);
    if (!rc && !*out) {
        *out = json_object();
        if (!*out)
            rc = ERR_NOMEM;
    }
    return rc;
}

/* Updater.prune: removes from merged what the applier owned last time
 * (last) and no manager owns now (managed, the new Apply set included).
 * First everything in last goes; then what no one owns and was removed
 * comes back only if it was in last; so unowned fields set by others stay. */
static int prune(ctx_t *c, const json_t *merged, const json_t *last, const json_t *managed,
                 json_t **out)
{
    json_t *p1 = NULL, *p2 = NULL, *ms = NULL, *ps = NULL, *u = NULL, *r = NULL, *d = NULL;
    int rc = rm_root(c, merged, last, managed, &p1);
    if (!rc)
        rc = fields_raw(c, merged, 0, &ms);
    if (!rc)
        rc = fields_raw(c, p1, 0, &ps);
    if (!rc && (!(u = set_union(ps, managed)) || !(r = set_diff(ms, u))))
        rc = ERR_NOMEM;
    if (!rc)
        rc = rm_root(c, merged, r, managed, &p2);
    json_decref(ps);
    ps = NULL;
    if (!rc)
        rc = fields_raw(c, p2, 0, &ps);
    json_decref(r);
    r = NULL;
    if (!rc && (!(d = set_diff(ms, ps)) || !(r = set_inter(d, last))))
        rc = ERR_NOMEM;
    if (!rc)
        rc = rm_root(c, merged, r, managed, out);
    json_decref(p1);
    json_decref(p2);
    json_decref(ms);
    json_decref(ps);
    json_decref(u);
    json_decref(r);
    json_decref(d);
    return rc;
}

/* ---- managedFields entries ---------------------------------------------------- */

/*
 * Entries are kept as JSON objects {"manager","operation","apiVersion",
 * "time"?,"subresource"?,"set"}, "set" in the internal form, in an array.
 */

static const char *ent_str(const json_t *e, const char *k)
{
    const char *s = json_string_value(json_object_get(e, k));
    return s ? s : "";
}

static int ent_is_apply(const json_t *e) { return !strcmp(ent_str(e, "operation"), "Apply"); }

static json_t *ent_set(const json_t *e) { return json_object_get(e, "set"); }

/* The entry of (manager, Apply) or (manager, Update, api_version) for
 * subresource ("" for the main resource); -1 if none. */
static long ent_find_sub(const json_t *mgrs, const char *manager, int apply,
                         const char *api_version, const char *subresource)
{
    size_t i;
    json_t *e;
    json_array_foreach(mgrs, i, e) {
        if (!strcmp(ent_str(e, "manager"), manager) && ent_is_apply(e) == apply &&
            !strcmp(ent_str(e, "subresource"), subresource) &&
            (apply || !strcmp(ent_str(e, "apiVersion"), api_version)))
            return (long)i;
    }
    return -1;
}

static long ent_find(const json_t *mgrs, const char *manager, int apply, const char *api_version)
{
    return ent_find_sub(mgrs, manager, apply, api_version, "");
}

/* Whether two entries are the same manager (BuildManagerIdentifier). */
static int ent_same(const json_t *a, const json_t *b)
{
    return !strcmp(ent_str(a, "manager"), ent_str(b, "manager")) &&
           ent_is_apply(a) == ent_is_apply(b) &&
           !strcmp(ent_str(a, "subresource"), ent_str(b, "subresource")) &&
           (ent_is_apply(a) || !strcmp(ent_str(a, "apiVersion"), ent_str(b, "apiVersion")));
}

/* kube's manager identifier, {"manager":..,"operation":..,"apiVersion":..
 * (Update only),"subresource":..}, which orders managers in messages and
 * ties. Caller owns; NULL on allocation failure. */
static char *ent_identity(const json_t *e)
{
    static const char *const fields[] = {"manager", "operation", "apiVersion", "subresource"};
    sbuf_t b = {0};
    int first = 1;
    sbuf_putc(&b, '{');
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = ent_str(e, fields[i]);
        if (!*v || (i == 2 && ent_is_apply(e)))
            continue;
        if (!first)
            sbuf_putc(&b, ',');
        first = 0;
        sb_json_str(&b, fields[i], strlen(fields[i]));
        sbuf_putc(&b, ':');
        sb_json_str(&b, v, strlen(v));
    }
    sbuf_putc(&b, '}');
    return sb_take(&b);
}

/* Seconds since the epoch of an RFC 3339 time; 0 when absent or malformed,
 * as kube treats a missing time. */
static long long time_seconds(const char *t)
{
    int y, mo, d, h, mi, s, used = 0;
    if (!t || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6 ||
        mo < 1 || mo > 12)
        return 0;
    const char *p = t + used;
    long long off = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
            off = (oh * 3600LL + om * 60LL) * (*p == '-' ? -1 : 1);
    }
    /* Days from the civil date (proleptic Gregorian). */
    long long yy = y - (mo <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600LL + mi * 60LL + s - off;
}

/* Whether managedFields asks for a reset: [] or [{}] (isResetManagedFields). */
static int mf_is_reset(const json_t *mf)
{
    if (!json_is_array(mf))
        return 0;
    if (json_array_size(mf) == 0)
        return 1;
    if (json_array_size(mf) > 1 || !json_is_object(json_array_get(mf, 0)))
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_array_get(mf, 0), k, v) {
        if (!json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)))
            return 0;
    }
    return 1;
}

/* Decodes wire managedFields (NULL or null: none) into entries (*out, new),
 * as DecodeManagedFields: a later entry of the same manager replaces an
 * earlier one. Returns 0, ERR_NOMEM, or 1 when malformed (reason in why). */
static int mf_decode(const json_t *wire, json_t **out, char *why, size_t whylen)
{
    json_t *mgrs = json_array();
    size_t i;
    json_t *w;
    int rc = 0;
    *out = NULL;
    if (!mgrs)
        return ERR_NOMEM;
    if (wire && !json_is_null(wire) && !json_is_array(wire)) {
        snprintf(why, whylen, "managedFields is not a list");
        json_decref(mgrs);
        return 1;
    }
    json_array_foreach(wire, i, w) {
        const json_t *op = json_object_get(w, "operation"), *av = json_object_get(w, "apiVersion");
        const json_t *ft = json_object_get(w, "fieldsType"), *fv = json_object_get(w, "fieldsV1");
        const json_t *mgr = json_object_get(w, "manager"), *tm = json_object_get(w, "time");
        const json_t *sub = json_object_get(w, "subresource");
        rc = 1;
        if (!json_is_object(w))
            snprintf(why, whylen, "managed fields entry %zu is not an object", i);
        else if (!json_is_string(op) || (strcmp(json_string_value(op), "Apply") &&
                                         strcmp(json_string_value(op), "Update")))
            snprintf(why, whylen, "operation must be `Apply` or `Update`");
        else if (!json_is_string(av) || !*json_string_value(av))
            snprintf(why, whylen, "apiVersion must not be empty");
        else if (!json_is_string(ft) || !*json_string_value(ft))
            snprintf(why, whylen, "missing fieldsType in managed fields entry %zu", i);
        else if (strcmp(json_string_value(ft), "FieldsV1"))
            snprintf(why, whylen, "invalid fieldsType \"%.32s\" in managed fields entry %zu",
                     json_string_value(ft), i);
        else if ((mgr && !json_is_null(mgr) && !json_is_string(mgr)) ||
                 (tm && !json_is_null(tm) && !json_is_string(tm)) ||
                 (sub && !json_is_null(sub) && !json_is_string(sub)) ||
                 (fv && !json_is_null(fv) && !json_is_object(fv)))
            snprintf(why, whylen, "malformed managed fields entry %zu", i);
        else
            rc = 0;
        if (rc)
            break;
        json_t *set = NULL, *e = NULL;
        rc = json_is_object(fv) ? fv1_decode(fv, 0, &set, why, whylen)
                                : ((set = json_object()) ? 0 : ERR_NOMEM);
        if (!rc) {
            e = json_pack("{s:s, s:O, s:O, s:O}", "manager", mgr ? json_string_value(mgr) : "",
                          "operation", op, "apiVersion", av, "set", set);
            if (e && json_is_string(tm) && json_object_set(e, "time", (json_t *)tm))
                rc = ERR_NOMEM;
            if (e && json_is_string(sub) && *json_string_value(sub) &&
                json_object_set(e, "subresource", (json_t *)sub))
                rc = ERR_NOMEM;
            if (!e)
                rc = ERR_NOMEM;
        }
        json_decref(set);
        if (!rc) {
            size_t j;
            json_t *have;
            json_array_foreach(mgrs, j, have) {
                if (ent_same(have, e))
                    break;
            }
            if (j < json_array_size(mgrs))
                json_array_remove(mgrs, j);
            if (json_array_append_new(mgrs, e))
                rc = ERR_NOMEM;
            e = NULL;
        }
        json_decref(e);
        if (rc)
            break;
    }
    if (rc) {
        json_decref(mgrs);
        return rc;
    }
    *out = mgrs;
    return 0;
}

/* kube's order of encoded entries (sortEncodedManagedFields). */
static int wire_cmp(const void *x, const void *y)
{
    const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
    int r = strcmp(ent_str(a, "operation"), ent_str(b, "operation"));
    if (r)
        return r;
    long long ta = time_seconds(json_string_value(json_object_get(a, "time")));
    long long tb = time_seconds(json_string_value(json_object_get(b, "time")));
    if (ta != tb)
        return ta < tb ? -1 : 1;
    if ((r = strcmp(ent_str(a, "manager"), ent_str(b, "manager"))) ||
        (r = strcmp(ent_str(a, "apiVersion"), ent_str(b, "apiVersion"))))
        return r;
    return strcmp(ent_str(a, "subresource"), ent_str(b, "subresource"));
}

/* Wire managedFields of the entries with a non-empty set (*out, new). */
static int mf_encode(const json_t *mgrs, json_t **out)
{
    size_t n = json_array_size(mgrs), k = 0, i;
    json_t **v = mem_calloc(n ? n : 1, sizeof *v);
    json_t *arr = json_array(), *e;
    int rc = 0;
    *out = NULL;
    if (!v || !arr) {
        rc = ERR_NOMEM;
        goto out;
    }
    json_array_foreach(mgrs, i, e) {
        if (!json_object_size(ent_set(e)))
            continue;
        json_t *w = json_pack("{s:s, s:s, s:s}", "manager", ent_str(e, "manager"), "operation",
                              ent_str(e, "operation"), "apiVersion", ent_str(e, "apiVersion"));
        v[k++] = w;
        if (!w || (json_object_get(e, "time") &&
                   json_object_set(w, "time", json_object_get(e, "time"))) ||
            json_object_set_new(w, "fieldsType", json_string("FieldsV1")) ||
            json_object_set_new(w, "fieldsV1", fv1_encode(ent_set(e))) ||
            (*ent_str(e, "subresource") &&
             json_object_set(w, "subresource", json_object_get(e, "subresource")))) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    qsort(v, k, sizeof *v, wire_cmp);
    for (i = 0; i < k; i++) {
        int bad = json_array_append_new(arr, v[i]);
        v[i] = NULL;
        if (bad) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    *out = arr;
    arr = NULL;
out:
    for (i = 0; v && i < k; i++)
        json_decref(v[i]);
    mem_free(v);
    json_decref(arr);
    return rc;
}

/* Drops entries whose set is empty. */
static void mf_drop_empty(json_t *mgrs)
{
    for (size_t i = json_array_size(mgrs); i-- > 0;)
        if (!json_object_size(ent_set(json_array_get(mgrs, i))))
            json_array_remove(mgrs, i);
}

/* Replaces the entry's set; takes set. */
static int ent_put_set(json_t *e, json_t *set)
{
    return json_object_set_new(e, "set", set) ? ERR_NOMEM : 0;
}

static int ent_put_str(json_t *e, const char *k, const char *v)
{
    return json_object_set_new(e, k, json_string(v)) ? ERR_NOMEM : 0;
}

typedef struct upd_ref {
    json_t *e;
    long long t;
    char *id;
} upd_ref_t;

static int upd_ref_cmp(const void *x, const void *y)
{
    const upd_ref_t *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* capManagersManager: past APPLY_MAX_UPDATE_MANAGERS Update entries, the
 * oldest merge, per apiVersion, into an "ancient-changes" entry carrying
 * the time of the latest one merged. Merged entries are emptied, for
 * mf_drop_empty. */
static int mf_cap_updates(json_t *mgrs)
{
    size_t n = 0, i, length;
    json_t *e;
    upd_ref_t *u = mem_calloc(json_array_size(mgrs) + 1, sizeof *u);
    json_t **first = mem_calloc(json_array_size(mgrs) + 1, sizeof *first);
    size_t nfirst = 0;
    int rc = ERR_NOMEM;
    if (!u || !first)
        goto out;
    json_array_foreach(mgrs, i, e) {
        if (ent_is_apply(e))
            continue;
        u[n].e = e;
        u[n].t = time_seconds(json_string_value(json_object_get(e, "time")));
        if (!(u[n++].id = ent_identity(e)))
            goto out;
    }
    rc = 0;
    if (n <= APPLY_MAX_UPDATE_MANAGERS)
        goto out;
    qsort(u, n, sizeof *u, upd_ref_cmp);
    length = n;
    for (i = 0; i < n && length > APPLY_MAX_UPDATE_MANAGERS; i++) {
        const char *version = ent_str(u[i].e, "apiVersion");
        json_t *f = NULL;
        for (size_t j = 0; j < nfirst && !f; j++)
            if (!strcmp(ent_str(first[j], "apiVersion"), version))
                f = first[j];
        if (!f) {
            first[nfirst++] = u[i].e;
            continue;
        }
        long bi = ent_find(mgrs, APPLY_ANCIENT, 0, version);
        json_t *bucket = bi >= 0 ? json_array_get(mgrs, (size_t)bi) : NULL;
        if (bucket == u[i].e)
            continue;
        if (!bucket) {
            /* The first entry of this version becomes the bucket. */
            bucket = f;
            json_object_del(bucket, "subresource");
            if ((rc = ent_put_str(bucket, "manager", APPLY_ANCIENT)))
                goto out;
        }
        if (set_union_into(ent_set(bucket), ent_set(u[i].e))) {
            rc = ERR_NOMEM;
            goto out;
        }
        json_t *t = json_object_get(u[i].e, "time");
        if (!t)
            json_object_del(bucket, "time");
        else if (json_object_set(bucket, "time", t)) {
            rc = ERR_NOMEM;
            goto out;
        }
        json_object_clear(ent_set(u[i].e));
        length--;
    }
out:
    for (i = 0; u && i < n; i++)
        mem_free(u[i].id);
    mem_free(u);
    mem_free(first);
    return rc;
}

/* Replaces metadata.managedFields of obj by the encoded entries, or removes
 * it when none are left. */
static int mf_store(json_t *obj, const json_t *mgrs)
{
    json_t *wire = NULL;
    json_t *meta = json_object_get(obj, "metadata");
    int rc = mf_encode(mgrs, &wire);
    if (rc)
        return rc;
    if (!json_array_size(wire)) {
        json_decref(wire);
        if (json_is_object(meta))
            json_object_del(meta, "managedFields");
        return 0;
    }
    if (!json_is_object(meta)) {
        meta = json_object();
        if (!meta || json_object_set_new(obj, "metadata", meta)) {
            json_decref(wire);
            return ERR_NOMEM;
        }
    }
    return json_object_set_new(meta, "managedFields", wire) ? ERR_NOMEM : 0;
}

/* ---- conflicts ------------------------------------------------------------------ */

/* Appends "<path>" of every member of node, prefixed by prefix, to paths,
 * in fieldpath's Set.Iterate order (a level's members, then its children). */
static int set_paths(const json_t *node, sbuf_t *prefix, json_t *paths)
{
    size_t n, len = prefix->len;
    const char **keys = set_sorted_keys(node, &n);
    int rc = 0;
    if (!keys && n)
        return ERR_NOMEM;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (size_t i = 0; i < n && !rc; i++) {
            const json_t *child = json_object_get(node, keys[i]);
            if (pass ? !set_has_children(child) : !set_is_member(child))
                continue;
            rc = sb_disp_pe(prefix, keys[i]);
            if (!rc && prefix->oom)
                rc = ERR_NOMEM;
            if (!rc)
                rc = pass ? set_paths(child, prefix, paths)
                          : (json_array_append_new(paths, json_string(prefix->p)) ? ERR_NOMEM
                                                                                  : 0);
            sbuf_cut(prefix, len);
        }
    }
    mem_free(keys);
    return rc;
}

/* printManager: "name" [with subresource "s"] [using <apiVersion> for an
 * Update]. */
static void sb_manager(sbuf_t *b, const json_t *e)
{
    const char *m = ent_str(e, "manager"), *s = ent_str(e, "subresource");
    quote_go_sb(b, m, strlen(m));
    if (*s) {
        sbuf_puts(b, " with subresource ");
        quote_go_sb(b, s, strlen(s));
    }
    if (!ent_is_apply(e)) {
        sbuf_puts(b, " using ");
        sbuf_puts(b, ent_str(e, "apiVersion"));
    }
}

typedef struct conflict {
    const json_t *e;             /* the owner's entry */
    char *id;
    char *who;                   /* printManager */
    json_t *paths;               /* strings */
} conflict_t;

static int conflict_cmp(const void *x, const void *y)
{
    return strcmp(((const conflict_t *)x)->id, ((const conflict_t *)y)->id);
}

/* ERR_CONFLICT as NewConflictError builds it, from the conflicting sets
 * (conf[i] for entry i of mgrs, NULL where none). */
static int report_conflicts(ctx_t *c, const json_t *mgrs, json_t *const *conf)
{
    size_t n = json_array_size(mgrs), k = 0, total = 0;
    conflict_t *cs = mem_calloc(n ? n : 1, sizeof *cs);
    sbuf_t msg = {0}, prefix = {0};
    int rc = ERR_NOMEM;
    if (!cs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!conf[i])
            continue;
        conflict_t *x = &cs[k++];
        x->e = json_array_get(mgrs, i);
        sbuf_t who = {0};
        sb_manager(&who, x->e);
        x->who = sb_take(&who);
        x->id = ent_identity(x->e);
        x->paths = json_array();
        if (!x->who || !x->id || !x->paths)
            goto out;
        sbuf_cut(&prefix, 0);
        if (set_paths(conf[i], &prefix, x->paths))
            goto out;
        total += json_array_size(x->paths);
    }
    qsort(cs, k, sizeof *cs, conflict_cmp);
    if (total == 1) {
        sbuf_puts(&msg, "Apply failed with 1 conflict: conflict with ");
        sbuf_puts(&msg, cs[0].who);
        sbuf_puts(&msg, ": ");
        sbuf_puts(&msg, json_string_value(json_array_get(cs[0].paths, 0)));
    } else {
        char head[64];
        snprintf(head, sizeof head, "Apply failed with %zu conflicts: ", total);
        sbuf_puts(&msg, head);
        for (size_t i = 0; i < k; i++) {
            size_t j;
            json_t *p;
            if (i)
                sbuf_putc(&msg, '\n');
            sbuf_puts(&msg, "conflicts with ");
            sbuf_puts(&msg, cs[i].who);
            sbuf_putc(&msg, ':');
            json_array_foreach(cs[i].paths, j, p) {
                sbuf_puts(&msg, "\n- ");
                sbuf_puts(&msg, json_string_value(p));
            }
        }
    }
    if (msg.oom)
        goto out;
    /* Everything is built: from here nothing allocates. */
    rc = ERR_CONFLICT;
    if (c->err && c->err->code)
        goto out;
    err_set(c->err, ERR_CONFLICT, "%s", msg.p);
    for (size_t i = 0; i < k; i++) {
        size_t j;
        json_t *p;
        json_array_foreach(cs[i].paths, j, p) {
            err_add_cause(c->err, "FieldManagerConflict", json_string_value(p),
                          "conflict with %s", cs[i].who);
        }
    }
out:
    if (rc == ERR_NOMEM)
        err_set(c->err, ERR_NOMEM, NULL);
    for (size_t i = 0; cs && i < k; i++) {
        mem_free(cs[i].id);
        mem_free(cs[i].who);
        json_decref(cs[i].paths);
    }
    mem_free(cs);
    sbuf_free(&msg);
    sbuf_free(&prefix);
    return rc;
}

/* ---- shared steps --------------------------------------------------------------- */

static int too_deep(const json_t *v, int left)
{
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (left <= 0)
        return 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *cv;
        json_object_foreach((json_t *)v, k, cv) {
            if (too_deep(cv, left - 1))
                return 1;
        }
    } else {
        size_t i;
        json_t *cv;
        json_array_foreach(v, i, cv) {
            if (too_deep(cv, left - 1))
                return 1;
        }
    }
    return 0;
}

/* A shallow copy of obj without the key skip (NULL: none); NULL on
 * allocation failure. (json_copy would drop keys it fails to insert.) */
static json_t *shallow_copy(const json_t *obj, const char *skip)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (!o)
        return NULL;
    json_object_foreach((json_t *)obj, k, v) {
        if (skip && !strcmp(k, skip))
            continue;
        if (json_object_set(o, k, v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A shallow view of obj without metadata.managedFields (*out, new; the
 * rest shared with obj); an empty object for NULL. */
static int without_mf(const json_t *obj, json_t **out)
{
    json_t *meta = json_object_get(obj, "metadata");
    int strip = json_is_object(meta) && json_object_get(meta, "managedFields");
    *out = shallow_copy(obj, strip ? "metadata" : NULL);
    if (!*out)
        return ERR_NOMEM;
    if (strip && json_object_set_new(*out, "metadata", shallow_copy(meta, "managedFields"))) {
        json_decref(*out);
        *out = NULL;
        return ERR_NOMEM;
    }
    return 0;
}

/* Every entry loses the fields in changed and in removed (Updater.update
 * with force). */
static int mf_take(json_t *mgrs, const json_t *changed, const json_t *removed, const json_t *skip)
{
    size_t i;
    json_t *e;
    json_array_foreach(mgrs, i, e) {
        if (e == skip)
            continue;
        json_t *s = json_incref(ent_set(e));
        int rc = set_apply(&s, set_diff, changed);
        if (!rc)
            rc = set_apply(&s, set_diff, removed);
        if (rc) {
            json_decref(s);
            return rc;
        }
        if (ent_put_set(e, s))
            return ERR_NOMEM;
    }
    return 0;
}

static void gvk_string(char *buf, size_t n, const char *api_version, const char *kind)
{
    const char *slash = strchr(api_version, '/');
    if (slash)
        snprintf(buf, n, "%.*s/%s, Kind=%s", (int)(slash - api_version), api_version, slash + 1,
                 kind);
    else
        snprintf(buf, n, "/%s, Kind=%s", api_version, kind);
}

/* ---- apply ----------------------------------------------------------------------- */

int apply_patch(const json_t *live, const json_t *applied, const char *manager, int force,
                const char *api_version, const char *now, const patch_list_rule_t *rules,
                json_t **out, err_t *err)
{
    return apply_patch_sub(live, applied, manager, "", force, api_version, now, rules, out, err);
}

int apply_patch_sub(const json_t *live, const json_t *applied, const char *manager,
                    const char *subresource, int force, const char *api_version,
                    const char *now, const patch_list_rule_t *rules, json_t **out, err_t *err)
{
    return apply_patch_yielding(live, applied, manager, subresource, force, NULL, api_version,
                                now, rules, out, err);
}

int apply_patch_yielding(const json_t *live, const json_t *applied, const char *manager,
                         const char *subresource, int force, const char *yielding,
                         const char *api_version, const char *now,
                         const patch_list_rule_t *rules, json_t **out, err_t *err)
{
    if (!subresource)
        subresource = "";
    ctx_t c;
    json_t *base = NULL, *cfg = NULL, *mgrs = NULL, *newset = NULL, *merged = NULL;
    json_t *final = NULL, *last = NULL, *managed = NULL, *changed = NULL, **conf = NULL;
    size_t nconf_slots = 0;
    delta_t d = {0};
    char why[200], gvk[256], what[640];
    int rc = 0;

    ctx_init(&c, rules, err);
    if (!out)
        return err_set(err, ERR_INTERNAL, "apply_patch: no output");
    *out = NULL;
    if (!api_version || (live && !json_is_object(live)))
        return err_set(err, ERR_INTERNAL, "apply_patch: bad arguments");
    if (!json_is_object(applied))
        return err_set(err, ERR_BAD_REQUEST, "error decoding YAML: the applied configuration "
                                             "is not an object");
    if (!manager || !*manager) {
        if (err && !err->code) {
            err_set(err, ERR_INVALID, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                      "Required value: is required for apply patch");
            err_add_cause(err, "FieldValueRequired", "fieldManager",
                          "Required value: is required for apply patch");
        }
        return ERR_INVALID;
    }
    if (too_deep(applied, PATCH_MAX_DEPTH) || (live && too_deep(live, PATCH_MAX_DEPTH)))
        return err_set(err, ERR_BAD_REQUEST, "object nested more than %d levels",
                       PATCH_MAX_DEPTH);

    const char *av = json_string_value(json_object_get(applied, "apiVersion"));
    const char *kind = json_string_value(json_object_get(applied, "kind"));
    const char *want = live ? json_string_value(json_object_get(live, "kind")) : NULL;
    gvk_string(gvk, sizeof gvk, av ? av : "", kind ? kind : "");
    if (!av || strcmp(av, api_version) || !kind || !*kind || (want && strcmp(kind, want)))
        return err_set(err, ERR_BAD_REQUEST, "invalid object type: %s", gvk);
    const json_t *ameta = json_object_get(applied, "metadata");
    const json_t *amf = json_object_get(ameta, "managedFields");
    if (amf && !json_is_null(amf))
        return err_set(err, ERR_BAD_REQUEST, "metadata.managedFields must be nil");
    snprintf(what, sizeof what, "%s/%s; %s",
             json_string_value(json_object_get(ameta, "namespace"))
                 ? json_string_value(json_object_get(ameta, "namespace")) : "",
             json_string_value(json_object_get(ameta, "name"))
                 ? json_string_value(json_object_get(ameta, "name")) : "",
             gvk);
    c.what = what;

    rc = mf_decode(json_object_get(json_object_get(live, "metadata"), "managedFields"), &mgrs,
                   why, sizeof why);
    if (rc == 1) {
        rc = err_set(err, ERR_INTERNAL, "failed to decode managed fields: %s", why);
        goto out;
    }
    if (rc || (rc = without_mf(live, &base)) || (rc = without_mf(applied, &cfg)))
        goto nomem;

    /* What the manager now applies; a malformed list fails here. */
    rc = fields_raw(&c, cfg, 1, &newset);
    if (rc)
        goto out;
    set_strip_untracked(newset);
    rc = mg_node(&c, base, cfg, &merged);
    if (rc)
        goto nomem;

    long self_i = ent_find_sub(mgrs, manager, 1, NULL, subresource);
    json_t *self = self_i >= 0 ? json_array_get(mgrs, (size_t)self_i) : NULL;
    if (self) {
        last = json_incref(ent_set(self));
        if (ent_put_set(self, json_incref(newset)) || ent_put_str(self, "apiVersion", api_version))
            goto nomem;
    } else {
        self = json_pack("{s:s, s:s, s:s, s:O}", "manager", manager, "operation", "Apply",
                         "apiVersion", api_version, "set", newset);
        if (self && *subresource && json_object_set_new(self, "subresource", json_string(subresource)))
            goto nomem;
        if (!self || json_array_append_new(mgrs, self))
            goto nomem;
    }

    if (json_object_size(last)) {
        size_t i;
        json_t *e;
        managed = json_object();
        if (!managed)
            goto nomem;
        json_array_foreach(mgrs, i, e) {
            if (set_union_into(managed, ent_set(e)))
                goto nomem;
        }
        rc = prune(&c, merged, last, managed, &final);
        if (rc)
            goto nomem;
    } else {
        final = json_incref(merged);
    }

    /* Who loses what, and conflicts for those who would. */
    if (delta_new(&d) || cmp_map(&c, base, final, &d) || !(changed = delta_take_changed(&d)))
        goto nomem;
    size_t n = json_array_size(mgrs), nconf = 0;
    conf = mem_calloc(n ? n : 1, sizeof *conf);
    if (!conf)
        goto nomem;
    nconf_slots = n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(mgrs, i);
        if (e == self)
            continue;
        if (!(conf[i] = set_inter(ent_set(e), changed)))
            goto nomem;
        if (!json_object_size(conf[i])) {
            json_decref(conf[i]);
            conf[i] = NULL;
        } else {
            nconf++;
        }
    }
    /* Conflicts with the yielding manager alone are none: it loses the
     * fields as to a forced apply. */
    int yield = nconf && yielding;
    for (size_t i = 0; yield && i < n; i++)
        yield = !conf[i] || !strcmp(ent_str(json_array_get(mgrs, i), "manager"), yielding);
    if (nconf && !force && !yield) {
        rc = report_conflicts(&c, mgrs, conf);
        goto out;
    }
    if (mf_take(mgrs, changed, d.rem, self))
        goto nomem;

    /* A no-op keeps the entry's time, so nothing needs writing. */
    if (now && (!live || !json_equal(base, final) || !json_object_get(self, "time")))
        if (ent_put_str(self, "time", now))
            goto nomem;
    mf_drop_empty(mgrs);
    if (mf_store(final, mgrs))
        goto nomem;
    *out = final;
    final = NULL;
    goto out;
nomem:
    rc = err_set(err, ERR_NOMEM, NULL);
out:
    for (size_t i = 0; i < nconf_slots; i++)
        json_decref(conf[i]);
    mem_free(conf);
    delta_free(&d);
    json_decref(changed);
    json_decref(managed);
    json_decref(last);
    json_decref(final);
    json_decref(merged);
    json_decref(newset);
    json_decref(mgrs);
    json_decref(cfg);
    json_decref(base);
    return rc;
}

/* ---- ordinary writes -------------------------------------------------------------- */

int apply_track_update(const json_t *old, json_t *obj, const char *manager,
                       const char *api_version, const char *now,
                       const patch_list_rule_t *rules, err_t *err)
{
    return apply_track_update_sub(old, obj, manager, "", api_version, now, rules, err);
}

int apply_track_update_sub(const json_t *old, json_t *obj, const char *manager,
                           const char *subresource, const char *api_version, const char *now,
                           const patch_list_rule_t *rules, err_t *err)
{
    if (!subresource)
        subresource = "";
    ctx_t c;
    json_t *mgrs = NULL, *a = NULL, *b = NULL, *changed = NULL;
    delta_t d = {0};
    char why[200];
    int rc = 0;

    ctx_init(&c, rules, err);
    if (!json_is_object(obj) || !api_version || (old && !json_is_object(old)))
        return err_set(err, ERR_INTERNAL, "apply_track_update: bad arguments");
    if (!manager)
        manager = "";
    if (too_deep(obj, PATCH_MAX_DEPTH) || (old && too_deep(old, PATCH_MAX_DEPTH)))
        return err_set(err, ERR_BAD_REQUEST, "object nested more than %d levels",
                       PATCH_MAX_DEPTH);

    /* The starting entries: a reset, the client's own, or old's. */
    const json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
    if (mf_is_reset(mf)) {
        if (!(mgrs = json_array()))
            goto nomem;
    } else {
        rc = json_array_size(mf) ? mf_decode(mf, &mgrs, why, sizeof why) : 1;
        if (rc < 0)
            goto nomem;
        if (rc || !json_array_size(mgrs)) {
            json_decref(mgrs);
            mgrs = NULL;
            rc = mf_decode(json_object_get(json_object_get(old, "metadata"), "managedFields"),
                           &mgrs, why, sizeof why);
            if (rc < 0)
                goto nomem;
            if (rc && !(mgrs = json_array()))
                goto nomem;
        }
    }
    rc = 0;

    if (!old) {
        /* A create: every field is added, nothing modified or removed. */
        if (without_mf(obj, &b) || !(changed = json_object()) || add_map(&c, b, changed))
            goto nomem;
    } else if (without_mf(old, &a) || without_mf(obj, &b) || delta_new(&d) ||
               cmp_map(&c, a, b, &d) || !(changed = delta_take_changed(&d))) {
        goto nomem;
    }
    if (mf_take(mgrs, changed, d.rem, NULL))
        goto nomem;
    set_strip_untracked(changed);
    if (json_object_size(changed)) {
        long i = ent_find_sub(mgrs, manager, 0, api_version, subresource);
        json_t *e = i >= 0 ? json_array_get(mgrs, (size_t)i) : NULL;
        if (e) {
            if (set_union_into(ent_set(e), changed))
                goto nomem;
        } else {
            e = json_pack("{s:s, s:s, s:s, s:O}", "manager", manager, "operation", "Update",
                          "apiVersion", api_version, "set", changed);
            if (e && *subresource && json_object_set_new(e, "subresource", json_string(subresource)))
                goto nomem;
            if (!e || json_array_append_new(mgrs, e))
                goto nomem;
        }
        if (now && ent_put_str(e, "time", now))
            goto nomem;
    }
    mf_drop_empty(mgrs);
    if (mf_cap_updates(mgrs))
        goto nomem;
    mf_drop_empty(mgrs);
    if (mf_store(obj, mgrs))
        goto nomem;
    goto out;
nomem:
    rc = err_set(err, ERR_NOMEM, NULL);
out:
    delta_free(&d);
    json_decref(changed);
    json_decref(b);
    json_decref(a);
    json_decref(mgrs);
    return rc;
}

/* ---- fields of an object ------------------------------------------------------------ */

json_t *apply_fields_of(const json_t *obj, const patch_list_rule_t *rules)
{
    ctx_t c;
    json_t *set = NULL, *out = NULL;
    if (!json_is_object(obj) || too_deep(obj, PATCH_MAX_DEPTH))
        return NULL;
    ctx_init(&c, rules, NULL);
    if (fields_raw(&c, obj, 0, &set))
        return NULL;
    set_strip_untracked(set);
    out = fv1_encode(set);
    json_decref(set);
    return out;
}
