/*
 * selector: the core the three selector parsers share (see
 * selector_internal.h): a parsed selector's requirements (storage, adding,
 * sorting, freeing), the operator table that says what each operator
 * means and how it prints, matching and inspection (sel_matches_labels,
 * sel_matches_fields, sel_is_empty, sel_required_value, sel_to_string),
 * and the fixed message buffers errors are worded in. The parsers live in
 * labels.c, fields.c and label_selector.c; the contract is in selector.h.
 */
#include "selector_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "quote.h"

/* ------------------------------------------------------------------------
 * Requirements and their operators
 * ---------------------------------------------------------------------- */

typedef int (*sel_test_fn)(const sel_req_t *r, const char *v);

static int sel_has_value(const sel_req_t *r, const char *v)
{
    for (size_t i = 0; i < r->nvals; i++)
        if (strcmp(r->vals[i], v) == 0)
            return 1;
    return 0;
}

int sel__parse_int64(const char *s, int64_t *out)
{
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return -1;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (!neg)
        *out = (int64_t)v;
    else
        *out = v == lim ? INT64_MIN : -(int64_t)v;
    return 0;
}

static int sel_test_true(const sel_req_t *r, const char *v) { (void)r; (void)v; return 1; }
static int sel_test_false(const sel_req_t *r, const char *v) { (void)r; (void)v; return 0; }
static int sel_test_in(const sel_req_t *r, const char *v) { return sel_has_value(r, v); }
static int sel_test_notin(const sel_req_t *r, const char *v) { return !sel_has_value(r, v); }

static int sel_test_gt(const sel_req_t *r, const char *v)
{
    int64_t n;
    return sel__parse_int64(v, &n) == 0 && n > r->num;
}

static int sel_test_lt(const sel_req_t *r, const char *v)
{
    int64_t n;
    return sel__parse_int64(v, &n) == 0 && n < r->num;
}

/* What each operator means and how it prints (labels.Requirement). */
static const struct sel_op_row {
    const char *pre;     /* printed before the key */
    const char *infix;   /* printed between key and values; NULL: no values */
    int parens;          /* values in parentheses */
    int if_absent;       /* result when the label is absent */
    sel_test_fn test;    /* result when the label has value v */
    int exact;           /* one value pins the key (RequiresExactMatch) */
} sel_ops[] = {
    [SEL_EXISTS]     = {"",  NULL,      0, 0, sel_test_true,  0},
    [SEL_NOT_EXISTS] = {"!", NULL,      0, 1, sel_test_false, 0},
    [SEL_EQ]         = {"",  "=",       0, 0, sel_test_in,    1},
    [SEL_DEQ]        = {"",  "==",      0, 0, sel_test_in,    1},
    [SEL_NEQ]        = {"",  "!=",      0, 1, sel_test_notin, 0},
    [SEL_IN]         = {"",  " in ",    1, 0, sel_test_in,    1},
    [SEL_NOTIN]      = {"",  " notin ", 1, 1, sel_test_notin, 0},
    [SEL_GT]         = {"",  ">",       0, 0, sel_test_gt,    0},
    [SEL_LT]         = {"",  "<",       0, 0, sel_test_lt,    0},
};

int sel__span_cmp(const void *a, const void *b)
{
    const sel_span_t *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    return (x->n > y->n) - (x->n < y->n);
}

static int sel_req_cmp(const void *a, const void *b)
{
    const sel_req_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

static void sel_req_clear(sel_req_t *r)
{
    for (size_t i = 0; i < r->nvals; i++)
        mem_free(r->vals[i]);
    mem_free(r->vals);
    mem_free(r->key);
    memset(r, 0, sizeof *r);
}

void sel_free(sel_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        sel_req_clear(&s->reqs[i]);
    mem_free(s->reqs);
    mem_free(s);
}

sel_t *sel__new(sel_kind_t kind)
{
    sel_t *s = mem_calloc(1, sizeof *s);
    if (s)
        s->kind = kind;
    return s;
}

int sel__add(sel_t *s, sel_span_t key, sel_op_t op,
             const sel_span_t *vals, size_t nvals)
{
    int rc = ERR_NOMEM;
    sel_req_t r = {.op = op, .order = s->n};

    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        sel_req_t *reqs = mem_realloc(s->reqs, cap * sizeof *reqs);
        if (!reqs)
            goto out;
        s->reqs = reqs;
        s->cap = cap;
    }
    r.key = mem_strndup(key.p, key.n);
    if (!r.key)
        goto out;
    if (nvals) {
        r.vals = mem_calloc(nvals, sizeof *r.vals);
        if (!r.vals)
            goto out;
        for (; r.nvals < nvals; r.nvals++) {
            r.vals[r.nvals] = mem_strndup(vals[r.nvals].p, vals[r.nvals].n);
            if (!r.vals[r.nvals])
                goto out;
        }
        /* The parser has checked > and < values; 0 otherwise. */
        if (sel__parse_int64(r.vals[0], &r.num))
            r.num = 0;
    }
    s->reqs[s->n++] = r;
    return 0;
out:
    sel_req_clear(&r);
    return rc;
}

void sel__sort(sel_t *s)
{
    if (s->n > 1)
        qsort(s->reqs, s->n, sizeof *s->reqs, sel_req_cmp);
}

/* ------------------------------------------------------------------------
 * Message buffers (why they are fixed: selector_internal.h)
 * ---------------------------------------------------------------------- */

static void buf_add(sel_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sel__buf_str(sel_buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

void sel__buf_addf(sel_buf_t *b, const char *fmt, ...)
{
    char tmp[SEL_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

void sel__buf_quoted(sel_buf_t *b, const char *s, size_t n)
{
    quote_go(b->p + b->len, b->cap - b->len, s, n);
    b->len += strlen(b->p + b->len);
}

void sel__buf_invalid(sel_buf_t *b, const char *path, const char *v,
                      size_t n, const valid_msgs_t *ms)
{
    sel__buf_str(b, path);
    sel__buf_str(b, ": Invalid value: ");
    sel__buf_quoted(b, v, n);
    sel__buf_str(b, ": ");
    for (size_t i = 0; i < ms->n; i++) {
        if (i)
            sel__buf_str(b, "; ");
        sel__buf_str(b, ms->m[i]);
    }
}

/* ------------------------------------------------------------------------
 * Matching and inspection
 * ---------------------------------------------------------------------- */

/* v: the key's value, NULL when absent. */
static int sel_req_matches(const sel_t *s, const sel_req_t *r, const char *v)
{
    const struct sel_op_row *row = &sel_ops[r->op];
    if (!v) {
        if (s->kind == SEL_KIND_LABELS)
            return row->if_absent;
        v = "";
    }
    return row->test(r, v);
}

int sel_matches_labels(const sel_t *s, const json_t *labels)
{
    if (!json_is_object(labels))
        labels = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const json_t *j = labels ? json_object_get(labels, s->reqs[i].key) : NULL;
        if (!sel_req_matches(s, &s->reqs[i], json_string_value(j)))
            return 0;
    }
    return 1;
}

int sel_matches_fields(const sel_t *s,
                       const char *(*get)(void *arg, const char *name),
                       void *arg)
{
    for (size_t i = 0; i < s->n; i++)
        if (!sel_req_matches(s, &s->reqs[i], get(arg, s->reqs[i].key)))
            return 0;
    return 1;
}

int sel_is_empty(const sel_t *s) { return s->n == 0; }

const char *sel_required_value(const sel_t *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++) {
        const sel_req_t *r = &s->reqs[i];
        int exact = sel_ops[r->op].exact && r->nvals == 1;
        if (strcmp(r->key, key) != 0)
            continue;
        /* Labels: the first requirement on key decides. Fields: the first
         * equality term on key. */
        if (exact || s->kind == SEL_KIND_LABELS)
            return exact ? r->vals[0] : NULL;
    }
    return NULL;
}

char *sel_to_string(const sel_t *s)
{
    sbuf_t b = SBUF_INIT;

    for (size_t i = 0; i < s->n; i++) {
        const sel_req_t *r = &s->reqs[i];
        const struct sel_op_row *row = &sel_ops[r->op];
        if (i)
            sbuf_putc(&b, ',');
        if (s->kind == SEL_KIND_FIELDS) {
            sbuf_puts(&b, r->key);
            sbuf_puts(&b, r->op == SEL_NEQ ? "!=" : "=");
            /* fields.EscapeValue */
            for (const char *v = r->vals[0]; *v; v++) {
                if (strchr("\\,=", *v))
                    sbuf_putc(&b, '\\');
                sbuf_putc(&b, *v);
            }
            continue;
        }
        sbuf_puts(&b, row->pre);
        sbuf_puts(&b, r->key);
        if (!row->infix)
            continue;
        sbuf_puts(&b, row->infix);
        sbuf_puts(&b, row->parens ? "(" : "");
        for (size_t j = 0; j < r->nvals; j++) {
            if (j)
                sbuf_putc(&b, ',');
            sbuf_puts(&b, r->vals[j]);
        }
        sbuf_puts(&b, row->parens ? ")" : "");
    }
    if (b.oom) {
        sbuf_free(&b);
        return NULL;
    }
    return b.p ? b.p : mem_strdup("");
}
