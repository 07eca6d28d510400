/*
 * fieldset: the field sets of server-side apply (structured-merge-diff's
 * fieldpath.Set): path elements and their FieldsV1 and display spellings,
 * set operations, FieldsV1 encoding and decoding, the set a manager
 * setting an object would own (apply_fields_of), and the walking context
 * every walk of an object carries (see apply_internal.h).
 */
#include "apply_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"
#include "quote.h"

/* Merge keys per list rule. */
#define APPLY_MAX_KEYS 16

/* metadata fields no manager ever owns (kube's stripMeta set, plus the
 * deletion fields the server sets). */
static const char *const apply_untracked_meta[] = {
    "f:name", "f:namespace", "f:uid", "f:resourceVersion", "f:generation",
    "f:creationTimestamp", "f:deletionTimestamp", "f:deletionGracePeriodSeconds",
    "f:managedFields", "f:selfLink", "f:clusterName", NULL,
};

/* ---- string building (lib/sbuf.h) ---- */

/* The built string (caller owns), or NULL when an allocation failed. */
char *apply__sb_take(sbuf_t *b)
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
void apply__sb_json_str(sbuf_t *b, const char *s, size_t n)
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
        apply__sb_json_str(b, json_string_value(v), json_string_length(v));
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
int apply__sb_disp_pe(sbuf_t *b, const char *pe)
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

void apply__ctx_init(apply__ctx_t *c, const patch_list_rule_t *rules, err_t *err)
{
    memset(c, 0, sizeof *c);
    c->rules = rules;
    c->err = err;
    c->what = "";
}

static void ctx_seg(apply__ctx_t *c, const char *seg)
{
    if (c->nseg < APPLY_SEGS)
        c->seg[c->nseg] = seg;
    c->nseg++;
}

/* Enters map field name, whose set key is seg (borrowed until the matching
 * apply__ctx_leave). Returns what apply__ctx_leave needs. */
size_t apply__ctx_enter(apply__ctx_t *c, const char *name, const char *seg)
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

void apply__ctx_leave(apply__ctx_t *c, size_t at)
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
static const patch_list_rule_t *find_rule(const apply__ctx_t *c)
{
    return c->lost ? NULL : patch_find_rule(c->rules, c->path);
}

int apply__list_kind(const apply__ctx_t *c, const patch_list_rule_t **rule)
{
    *rule = find_rule(c);
    if (!*rule)
        return APPLY__LIST_ATOMIC;
    return (*rule)->keys ? APPLY__LIST_KEYED : APPLY__LIST_SET;
}

/* A malformed applied configuration: kube's typed conversion error, which
 * it answers with a 500. The path is the list's. */
static int bad_config(apply__ctx_t *c, const char *detail)
{
    sbuf_t b = {0};
    int n = c->nseg < APPLY_SEGS ? c->nseg : APPLY_SEGS;
    for (int i = 0; i < n; i++)
        if (c->seg[i] && apply__sb_disp_pe(&b, c->seg[i])) {
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
        apply__sb_json_str(&b, names[i].s, names[i].n);
        sbuf_putc(&b, ':');
        sb_json_scalar(&b, v);
    }
    sbuf_putc(&b, '}');
    *pe = apply__sb_take(&b);
    return *pe ? 0 : ERR_NOMEM;
}

/* The path element of item in the keyed or set list of rule. Returns 0 with
 * *pe (caller owns), ERR_NOMEM, or 1 when the item cannot be named (reason
 * in why). */
int apply__item_pe(const patch_list_rule_t *rule, const json_t *item, char **pe, char *why,
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
        *pe = apply__sb_take(&b);
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
        *pe = apply__sb_take(&b);
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
char *apply__field_key(const char *name)
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

int apply__set_mark(json_t *node)
{
    return json_object_set_new(node, ".", json_object()) ? ERR_NOMEM : 0;
}

int apply__set_is_member(const json_t *node)
{
    return node && json_object_get(node, ".") != NULL;
}

int apply__set_has_children(const json_t *node)
{
    return json_object_size(node) > (size_t)(apply__set_is_member(node) ? 1 : 0);
}

/* Attaches child (taken) under key, unless it is empty. */
int apply__set_attach(json_t *node, const char *key, json_t *child)
{
    if (!json_object_size(child)) {
        json_decref(child);
        return 0;
    }
    return json_object_set_new(node, key, child) ? ERR_NOMEM : 0;
}

/* Adds the members of b to dst. */
int apply__set_union_into(json_t *dst, const json_t *b)
{
    const char *k;
    json_t *bv;
    json_object_foreach((json_t *)b, k, bv) {
        if (!strcmp(k, ".")) {
            if (apply__set_mark(dst))
                return ERR_NOMEM;
            continue;
        }
        json_t *dv = json_object_get(dst, k);
        if (dv) {
            int rc = apply__set_union_into(dv, bv);
            if (rc)
                return rc;
        } else if (json_object_set_new(dst, k, json_deep_copy(bv))) {
            return ERR_NOMEM;
        }
    }
    return 0;
}

/* a ∪ b, a new set; NULL on allocation failure. */
json_t *apply__set_union(const json_t *a, const json_t *b)
{
    json_t *out = a ? json_deep_copy(a) : json_object();
    if (out && b && apply__set_union_into(out, b)) {
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
            if (apply__set_is_member(b) == inter && apply__set_mark(o))
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
        if (!c || apply__set_attach(o, k, c))
            goto nomem;
    }
    return o;
nomem:
    json_decref(o);
    return NULL;
}

json_t *apply__set_diff(const json_t *a, const json_t *b) { return set_diff_inter(a, b, 0); }
json_t *apply__set_inter(const json_t *a, const json_t *b) { return set_diff_inter(a, b, 1); }

/* Replaces *s by f(*s, b) (f: apply__set_diff or apply__set_union), keeping *s on failure. */
int apply__set_apply(json_t **s, json_t *(*f)(const json_t *, const json_t *), const json_t *b)
{
    json_t *n = f(*s, b);
    if (!n)
        return ERR_NOMEM;
    json_decref(*s);
    *s = n;
    return 0;
}

/* Takes the untracked fields out of a set. Allocates nothing. */
void apply__set_strip_untracked(json_t *set)
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
const char **apply__set_sorted_keys(const json_t *node, size_t *n)
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
json_t *apply__fv1_encode(const json_t *node)
{
    size_t n;
    const char **keys = apply__set_sorted_keys(node, &n);
    json_t *o = json_object();
    if ((!keys && n) || !o)
        goto nomem;
    if (apply__set_is_member(node) && n && json_object_set_new(o, ".", json_object()))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (json_object_set_new(o, keys[i], apply__fv1_encode(json_object_get(node, keys[i]))))
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
int apply__fv1_decode(const json_t *f, int depth, json_t **out, char *why, size_t whylen)
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
            rc = apply__set_mark(o);
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
        rc = apply__fv1_decode(cv, depth + 1, &sub, why, whylen);
        if (!rc && !json_object_size(cv))
            rc = apply__set_mark(sub);
        if (!rc) {
            json_t *have = json_object_get(o, pe);
            if (have) {
                rc = apply__set_union_into(have, sub);
                json_decref(sub);
            } else {
                rc = apply__set_attach(o, pe, sub);
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

static int fo_node(apply__ctx_t *c, const json_t *v, json_t *node, int strict);

static int fo_map(apply__ctx_t *c, const json_t *obj, json_t *node, int strict)
{
    const char *k;
    json_t *cv;
    json_object_foreach((json_t *)obj, k, cv) {
        char *key = apply__field_key(k);
        json_t *child = json_object();
        int rc = ERR_NOMEM;
        if (key && child) {
            size_t at = apply__ctx_enter(c, k, key);
            rc = fo_node(c, cv, child, strict);
            apply__ctx_leave(c, at);
            if (!rc)
                rc = apply__set_attach(node, key, child);
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
static int fo_list(apply__ctx_t *c, const json_t *arr, json_t *node, const patch_list_rule_t *rule,
                   int strict)
{
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        char *pe, why[200];
        int rc = apply__item_pe(rule, item, &pe, why, sizeof why);
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
                rc = apply__sb_disp_pe(&b, pe);
                char *detail = rc ? NULL : apply__sb_take(&b);
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
        rc = child ? apply__set_mark(child) : ERR_NOMEM;
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
static int fo_node(apply__ctx_t *c, const json_t *v, json_t *node, int strict)
{
    const patch_list_rule_t *rule;
    if (json_is_object(v) && json_object_size(v))
        return fo_map(c, v, node, strict);
    if (json_is_array(v) && json_array_size(v) && apply__list_kind(c, &rule) != APPLY__LIST_ATOMIC)
        return fo_list(c, v, node, rule, strict);
    return apply__set_mark(node) ? err_set(c->err, ERR_NOMEM, NULL) : 0;
}

/* The set of a whole object, untracked fields included (*out, new). */
int apply__fields_raw(apply__ctx_t *c, const json_t *obj, int strict, json_t **out)
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

/* ---- bounds ------------------------------------------------------------------------ */

int apply__too_deep(const json_t *v, int left)
{
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (left <= 0)
        return 1;
    if (json_is_object(v)) {
        const char *k;
        json_t *cv;
        json_object_foreach((json_t *)v, k, cv) {
            if (apply__too_deep(cv, left - 1))
                return 1;
        }
    } else {
        size_t i;
        json_t *cv;
        json_array_foreach(v, i, cv) {
            if (apply__too_deep(cv, left - 1))
                return 1;
        }
    }
    return 0;
}

/* ---- apply_fields_of ---------------------------------------------------------------- */

json_t *apply_fields_of(const json_t *obj, const patch_list_rule_t *rules)
{
    apply__ctx_t c;
    json_t *set = NULL, *out = NULL;
    if (!json_is_object(obj) || apply__too_deep(obj, PATCH_MAX_DEPTH))
        return NULL;
    apply__ctx_init(&c, rules, NULL);
    if (apply__fields_raw(&c, obj, 0, &set))
        return NULL;
    apply__set_strip_untracked(set);
    out = apply__fv1_encode(set);
    json_decref(set);
    return out;
}
