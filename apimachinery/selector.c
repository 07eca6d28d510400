/*
 * selector: label and field selectors with k8s.io/apimachinery's grammar,
 * error messages and matching rules. See selector.h for the contract.
 *
 * The label parser is a transcription of labels/selector.go: a lexer that
 * never fails (every special symbol alone is a token, so the longest-match
 * scan always finds one) and a recursive-descent parser with one token of
 * lookahead. Kube scans all tokens up front; lexing lazily gives the same
 * tokens without allocating. The parser reads `in` and `notin` as plain
 * identifiers wherever a value may stand (kube's "Values" context), which
 * is why `in in (in)` is a valid selector.
 *
 * Error messages are built in fixed buffers, so a bad selector is reported
 * as ERR_BAD_REQUEST even when memory is short; overlong messages are cut.
 */
#include "selector.h"

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

typedef enum sel_op {
    SEL_EXISTS,
    SEL_NOT_EXISTS,
    SEL_EQ,
    SEL_DEQ,
    SEL_NEQ,
    SEL_IN,
    SEL_NOTIN,
    SEL_GT,
    SEL_LT,
} sel_op_t;

typedef enum sel_kind { SEL_KIND_LABELS, SEL_KIND_FIELDS } sel_kind_t;

typedef struct sel_req {
    char *key;
    sel_op_t op;
    size_t nvals;
    char **vals;       /* sorted; one value for =, ==, !=, >, < */
    int64_t num;       /* vals[0] as an integer, for > and < */
    size_t order;      /* input position, so sorting by key is stable */
} sel_req_t;

struct sel {
    sel_kind_t kind;
    size_t n, cap;
    sel_req_t *reqs;
};

typedef int (*sel_test_fn)(const sel_req_t *r, const char *v);

static int sel_has_value(const sel_req_t *r, const char *v)
{
    for (size_t i = 0; i < r->nvals; i++)
        if (strcmp(r->vals[i], v) == 0)
            return 1;
    return 0;
}

/* strconv.ParseInt(s, 10, 64): optional sign, at least one digit, no
 * overflow. Returns 0 and *out, or -1. */
static int sel_parse_int64(const char *s, int64_t *out)
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
    return sel_parse_int64(v, &n) == 0 && n > r->num;
}

static int sel_test_lt(const sel_req_t *r, const char *v)
{
    int64_t n;
    return sel_parse_int64(v, &n) == 0 && n < r->num;
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

/* A borrowed piece of the input. */
typedef struct sel_span {
    const char *p;
    size_t n;
} sel_span_t;

/* Go's string order: bytewise, a prefix first. */
static int sel_span_cmp(const void *a, const void *b)
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

static sel_t *sel_new(sel_kind_t kind)
{
    sel_t *s = mem_calloc(1, sizeof *s);
    if (s)
        s->kind = kind;
    return s;
}

/* Appends a requirement on key with copies of vals (in the order given).
 * ERR_NOMEM leaves s as it was. */
static int sel_add(sel_t *s, sel_span_t key, sel_op_t op,
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
        if (sel_parse_int64(r.vals[0], &r.num))
            r.num = 0;
    }
    s->reqs[s->n++] = r;
    return 0;
out:
    sel_req_clear(&r);
    return rc;
}

/* ------------------------------------------------------------------------
 * Message buffers: fixed, so an error is reported as itself even when
 * memory is short, and cut silently when too long (an err_t holds less).
 * What may grow (sel_to_string) is an sbuf.
 * ---------------------------------------------------------------------- */

typedef struct sel_buf {
    char *p;
    size_t len, cap;   /* cap > 0: p holds cap bytes, NUL-terminated */
} sel_buf_t;

#define SEL_MSG_MAX 1024

static void buf_add(sel_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(sel_buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_addf(sel_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_addf(sel_buf_t *b, const char *fmt, ...)
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

/* Go's %q of the n bytes at s, cut as every message here is. */
static void buf_quoted(sel_buf_t *b, const char *s, size_t n)
{
    quote_go(b->p + b->len, b->cap - b->len, s, n);
    b->len += strlen(b->p + b->len);
}

/* field.Invalid(path, value, strings.Join(msgs, "; ")).Error() */
static void buf_invalid(sel_buf_t *b, const char *path, const char *v,
                        size_t n, const valid_msgs_t *ms)
{
    buf_str(b, path);
    buf_str(b, ": Invalid value: ");
    buf_quoted(b, v, n);
    buf_str(b, ": ");
    for (size_t i = 0; i < ms->n; i++) {
        if (i)
            buf_str(b, "; ");
        buf_str(b, ms->m[i]);
    }
}

/* ------------------------------------------------------------------------
 * Label selector lexer
 * ---------------------------------------------------------------------- */

typedef enum sel_tok {
    TK_NONE,
    TK_EOS,
    TK_CLOSE,
    TK_COMMA,
    TK_NOT,
    TK_DEQ,
    TK_EQ,
    TK_GT,
    TK_IDENT,
    TK_IN,
    TK_LT,
    TK_NEQ,
    TK_NOTIN,
    TK_OPEN,
} sel_tok_t;

static const struct sel_literal {
    const char *text;
    sel_tok_t tok;
} sel_literals[] = {
    {")", TK_CLOSE}, {",", TK_COMMA}, {"!", TK_NOT},     {"==", TK_DEQ},
    {"=", TK_EQ},    {">", TK_GT},    {"in", TK_IN},     {"<", TK_LT},
    {"!=", TK_NEQ},  {"notin", TK_NOTIN}, {"(", TK_OPEN}, {NULL, TK_NONE},
};

static sel_tok_t sel_literal(const char *s, size_t n)
{
    for (const struct sel_literal *l = sel_literals; l->text; l++)
        if (strlen(l->text) == n && memcmp(l->text, s, n) == 0)
            return l->tok;
    return TK_NONE;
}

static int sel_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int sel_is_special(char c) { return c && strchr("=!(),><", c); }

typedef struct sel_token {
    sel_tok_t tok;
    const char *lit;
    size_t len;
} sel_token_t;

typedef struct sel_lexer {
    const char *s;
    size_t pos;
    sel_token_t ahead;
    int have;
} sel_lexer_t;

static sel_token_t sel_lex(sel_lexer_t *l)
{
    while (sel_is_space(l->s[l->pos]))
        l->pos++;
    const char *start = l->s + l->pos;
    sel_token_t t = {TK_EOS, start, 0};
    size_t n = 0;

    if (!*start)
        return t;
    if (sel_is_special(*start)) {
        /* Longest run of special symbols that is still an operator. */
        n = 1;
        while (sel_is_special(start[n]) && sel_literal(start, n + 1) != TK_NONE)
            n++;
        t.tok = sel_literal(start, n);
    } else {
        while (start[n] && !sel_is_special(start[n]) && !sel_is_space(start[n]))
            n++;
        t.tok = sel_literal(start, n);
        if (t.tok == TK_NONE)
            t.tok = TK_IDENT;
    }
    t.len = n;
    l->pos += n;
    return t;
}

/* Parser contexts: where a value may stand, keywords are identifiers. */
enum { CTX_KEY_AND_OPERATOR, CTX_VALUES };

static sel_token_t sel_peek(sel_lexer_t *l, int ctx)
{
    if (!l->have) {
        l->ahead = sel_lex(l);
        l->have = 1;
    }
    sel_token_t t = l->ahead;
    if (ctx == CTX_VALUES && (t.tok == TK_IN || t.tok == TK_NOTIN))
        t.tok = TK_IDENT;
    return t;
}

static sel_token_t sel_consume(sel_lexer_t *l, int ctx)
{
    sel_token_t t = sel_peek(l, ctx);
    l->have = 0;
    return t;
}

/* ------------------------------------------------------------------------
 * Label selector parser
 * ---------------------------------------------------------------------- */

typedef struct sel_parser {
    sel_lexer_t lx;
    sel_t *sel;
    sel_span_t *vals;   /* the current requirement's values */
    size_t nvals, cap;
    sel_buf_t msg;      /* a syntax error's message */
    char msg_mem[SEL_MSG_MAX];
} sel_parser_t;

static int sel_fail(sel_parser_t *p, const char *fmt, sel_token_t t)
{
    buf_addf(&p->msg, fmt, (int)t.len, t.lit);
    return ERR_BAD_REQUEST;
}

static int sel_value(sel_parser_t *p, const char *v, size_t n)
{
    if (p->nvals == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        sel_span_t *vals = mem_realloc(p->vals, cap * sizeof *vals);
        if (!vals)
            return ERR_NOMEM;
        p->vals = vals;
        p->cap = cap;
    }
    p->vals[p->nvals++] = (sel_span_t){v, n};
    return 0;
}

/* labels.NewRequirement's checks of the values, errors aggregated as
 * utilerrors.NewAggregate prints them. Values are sorted. Returns how many
 * errors there are; writes them to b unless b is NULL. */
static size_t sel_value_errors(const sel_parser_t *p, sel_span_t key,
                               sel_op_t op, sel_buf_t *b)
{
    size_t count = 0;
    char path[64];
    valid_msgs_t ms;
    int64_t num;

    for (size_t i = 0; (op == SEL_GT || op == SEL_LT) && i < p->nvals; i++) {
        char v[VALID_NAME_MAX + 2];
        sel_span_t s = p->vals[i];
        /* A value longer than a label value cannot be a valid integer. */
        int ok = s.n < sizeof v;
        if (ok) {
            memcpy(v, s.p, s.n);
            v[s.n] = '\0';
            ok = sel_parse_int64(v, &num) == 0;
        }
        if (ok)
            continue;
        if (b) {
            buf_str(b, count ? ", " : "");
            buf_addf(b, "values[%zu]: Invalid value: ", i);
            buf_quoted(b, s.p, s.n);
            buf_str(b, ": for 'Gt', 'Lt' operators, the value must be an integer");
        }
        count++;
    }
    for (size_t i = 0; i < p->nvals; i++) {
        valid_label_value(p->vals[i].p, p->vals[i].n, &ms);
        if (!ms.n)
            continue;
        if (b) {
            sel_buf_t pb = {path, 0, sizeof path};
            buf_addf(&pb, "values[%zu][%.*s]", i, (int)key.n, key.p);
            buf_str(b, count ? ", " : "");
            buf_invalid(b, path, p->vals[i].p, p->vals[i].n, &ms);
        }
        count++;
    }
    return count;
}

/* Sorts and de-duplicates the values (kube keeps them in a sets.String),
 * validates them, and adds the requirement. */
static int sel_new_requirement(sel_parser_t *p, sel_span_t key, sel_op_t op)
{
    size_t n = 0;

    if (p->nvals) {
        qsort(p->vals, p->nvals, sizeof *p->vals, sel_span_cmp);
        for (size_t i = 0; i < p->nvals; i++)
            if (!n || sel_span_cmp(&p->vals[n - 1], &p->vals[i]))
                p->vals[n++] = p->vals[i];
        p->nvals = n;
    }
    size_t nerr = sel_value_errors(p, key, op, NULL);
    if (nerr) {
        buf_str(&p->msg, nerr > 1 ? "[" : "");
        sel_value_errors(p, key, op, &p->msg);
        buf_str(&p->msg, nerr > 1 ? "]" : "");
        return ERR_BAD_REQUEST;
    }
    return sel_add(p->sel, key, op, p->vals, p->nvals);
}

/* [!] KEY, inferring Exists / DoesNotExist when no operator follows.
 * *op is set only when it was inferred. */
static int sel_parse_key(sel_parser_t *p, sel_span_t *key, int *op)
{
    sel_token_t t = sel_consume(&p->lx, CTX_VALUES);
    int negated = 0;
    valid_msgs_t ms;

    *op = -1;
    if (t.tok == TK_NOT) {
        negated = 1;
        t = sel_consume(&p->lx, CTX_VALUES);
    }
    if (t.tok != TK_IDENT)
        return sel_fail(p, "found '%.*s', expected: identifier", t);
    valid_qualified_name(t.lit, t.len, &ms);
    if (ms.n) {
        /* kube validates with a nil field path, printed "<nil>" */
        buf_invalid(&p->msg, "<nil>", t.lit, t.len, &ms);
        return ERR_BAD_REQUEST;
    }
    *key = (sel_span_t){t.lit, t.len};
    sel_token_t next = sel_peek(&p->lx, CTX_VALUES);
    if (next.tok == TK_EOS || next.tok == TK_COMMA)
        *op = negated ? SEL_NOT_EXISTS : SEL_EXISTS;
    else if (negated)
        *op = SEL_NOT_EXISTS;   /* what follows is reported by the caller */
    return 0;
}

static const struct sel_binop {
    sel_tok_t tok;
    sel_op_t op;
} sel_binops[] = {
    {TK_IN, SEL_IN}, {TK_EQ, SEL_EQ}, {TK_DEQ, SEL_DEQ}, {TK_GT, SEL_GT},
    {TK_LT, SEL_LT}, {TK_NOTIN, SEL_NOTIN}, {TK_NEQ, SEL_NEQ}, {TK_NONE, SEL_EXISTS},
};

static int sel_parse_operator(sel_parser_t *p, sel_op_t *op)
{
    sel_token_t t = sel_consume(&p->lx, CTX_KEY_AND_OPERATOR);
    for (const struct sel_binop *b = sel_binops; b->tok != TK_NONE; b++) {
        if (b->tok == t.tok) {
            *op = b->op;
            return 0;
        }
    }
    return sel_fail(p, "found '%.*s', expected: in, notin, =, ==, !=, gt, lt", t);
}

/* A (possibly empty) comma-separated list of (possibly empty) values, up
 * to but not including ')'. Empty entries, such as those of "(a,,b)" or
 * "(a,)", are the value "". */
static int sel_parse_list(sel_parser_t *p)
{
    int rc;
    for (;;) {
        sel_token_t t = sel_consume(&p->lx, CTX_VALUES);
        sel_token_t next;
        switch (t.tok) {
        case TK_IDENT:
            if ((rc = sel_value(p, t.lit, t.len)))
                return rc;
            next = sel_peek(&p->lx, CTX_VALUES);
            if (next.tok == TK_COMMA)
                continue;
            if (next.tok == TK_CLOSE)
                return 0;
            return sel_fail(p, "found '%.*s', expected: ',' or ')'", next);
        case TK_COMMA:
            if (!p->nvals && (rc = sel_value(p, "", 0)))
                return rc;
            next = sel_peek(&p->lx, CTX_VALUES);
            if (next.tok == TK_CLOSE || next.tok == TK_COMMA) {
                if ((rc = sel_value(p, "", 0)))
                    return rc;
                if (next.tok == TK_CLOSE)
                    return 0;
            }
            continue;
        default:
            return sel_fail(p, "found '%.*s', expected: ',', or identifier", t);
        }
    }
}

/* "(" values ")" */
static int sel_parse_set(sel_parser_t *p)
{
    sel_token_t t = sel_consume(&p->lx, CTX_VALUES);
    if (t.tok != TK_OPEN)
        return sel_fail(p, "found '%.*s' expected: '('", t);
    t = sel_peek(&p->lx, CTX_VALUES);
    switch (t.tok) {
    case TK_IDENT:
    case TK_COMMA: {
        int rc = sel_parse_list(p);
        if (rc)
            return rc;
        if (sel_consume(&p->lx, CTX_VALUES).tok != TK_CLOSE)
            return sel_fail(p, "found '%.*s', expected: ')'", t);
        return 0;
    }
    case TK_CLOSE:
        sel_consume(&p->lx, CTX_VALUES);
        return sel_value(p, "", 0);
    default:
        return sel_fail(p, "found '%.*s', expected: ',', ')' or identifier", t);
    }
}

/* The one value after =, ==, !=, > or <; nothing before ',' or the end is
 * the value "". */
static int sel_parse_exact(sel_parser_t *p)
{
    sel_token_t t = sel_peek(&p->lx, CTX_VALUES);
    if (t.tok == TK_EOS || t.tok == TK_COMMA)
        return sel_value(p, "", 0);
    t = sel_consume(&p->lx, CTX_VALUES);
    if (t.tok != TK_IDENT)
        return sel_fail(p, "found '%.*s', expected: identifier", t);
    return sel_value(p, t.lit, t.len);
}

static int sel_parse_requirement(sel_parser_t *p)
{
    sel_span_t key;
    int inferred;
    sel_op_t op;
    int rc;

    p->nvals = 0;
    if ((rc = sel_parse_key(p, &key, &inferred)))
        return rc;
    if (inferred >= 0)
        return sel_new_requirement(p, key, (sel_op_t)inferred);
    if ((rc = sel_parse_operator(p, &op)))
        return rc;
    rc = op == SEL_IN || op == SEL_NOTIN ? sel_parse_set(p) : sel_parse_exact(p);
    if (rc)
        return rc;
    return sel_new_requirement(p, key, op);
}

/* <requirement> ["," <requirement>]... Returns 0, ERR_NOMEM, or
 * ERR_BAD_REQUEST with the message in p->msg; *wrapped says a requirement
 * failed (kube prefixes those with "unable to parse requirement: "). */
static int sel_parse_selector(sel_parser_t *p, int *wrapped)
{
    *wrapped = 0;
    for (;;) {
        sel_token_t t = sel_peek(&p->lx, CTX_VALUES);
        switch (t.tok) {
        case TK_IDENT:
        case TK_NOT: {
            int rc = sel_parse_requirement(p);
            if (rc) {
                *wrapped = rc == ERR_BAD_REQUEST;
                return rc;
            }
            t = sel_consume(&p->lx, CTX_VALUES);
            if (t.tok == TK_EOS)
                return 0;
            if (t.tok != TK_COMMA)
                return sel_fail(p, "found '%.*s', expected: ',' or 'end of string'", t);
            t = sel_peek(&p->lx, CTX_VALUES);
            if (t.tok != TK_IDENT && t.tok != TK_NOT)
                return sel_fail(p, "found '%.*s', expected: identifier after ','", t);
            break;
        }
        case TK_EOS:
            return 0;
        default:
            return sel_fail(p, "found '%.*s', expected: !, identifier, or 'end of string'", t);
        }
    }
}

static void sel_sort(sel_t *s)
{
    if (s->n > 1)
        qsort(s->reqs, s->n, sizeof *s->reqs, sel_req_cmp);
}

int sel_parse_labels(const char *s, sel_t **out, err_t *err)
{
    int rc = ERR_NOMEM;
    int wrapped = 0;
    sel_parser_t p = {.lx = {.s = s ? s : ""}};

    *out = NULL;
    p.msg = (sel_buf_t){p.msg_mem, 0, sizeof p.msg_mem};
    p.msg_mem[0] = '\0';
    p.sel = sel_new(SEL_KIND_LABELS);
    if (!p.sel)
        goto out;
    rc = sel_parse_selector(&p, &wrapped);
    if (rc)
        goto out;
    sel_sort(p.sel);
    *out = p.sel;
    p.sel = NULL;
out:
    if (rc == ERR_NOMEM)
        err_set(err, rc, NULL);
    else if (rc)
        err_set(err, rc, "%s%s", wrapped ? "unable to parse requirement: " : "",
                p.msg_mem);
    mem_free(p.vals);
    sel_free(p.sel);
    return rc;
}

/* ------------------------------------------------------------------------
 * Field selectors
 * ---------------------------------------------------------------------- */

/* The operators a field term may use, tried at each position in turn. */
static const struct sel_field_op {
    const char *text;
    sel_op_t op;
} sel_field_ops[] = {
    {"!=", SEL_NEQ}, {"==", SEL_DEQ}, {"=", SEL_EQ}, {NULL, SEL_EXISTS},
};

/* The length in bytes of the UTF-8 sequence starting with c (1 for a
 * stray byte), so an escape error quotes a whole character. */
static size_t sel_utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c < 0xf8)
        return 4;
    if (c >= 0xe0)
        return c < 0xf0 ? 3 : 1;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/* fields.UnescapeValue into *out (caller-owned). ERR_BAD_REQUEST with the
 * message in msg, or ERR_NOMEM. */
static int sel_unescape(const char *s, size_t n, char **out, sel_buf_t *msg)
{
    char *v = mem_alloc(n + 1);
    size_t len = 0;

    *out = NULL;
    if (!v)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') {
            if (i + 1 == n) {
                buf_str(msg, "invalid field selector: invalid escape sequence: \\");
                goto bad;
            }
            c = s[++i];
            if (!strchr("\\,=", c)) {
                size_t cl = sel_utf8_len((unsigned char)c);
                if (cl > n - i)
                    cl = n - i;
                buf_addf(msg, "invalid field selector: invalid escape sequence: \\%.*s",
                         (int)cl, s + i);
                goto bad;
            }
        } else if (c == ',' || c == '=') {
            /* kube prints the rune with %v, i.e. its code point */
            buf_addf(msg, "invalid field selector: unescaped character in value: %d", c);
            goto bad;
        }
        v[len++] = c;
    }
    v[len] = '\0';
    *out = v;
    return 0;
bad:
    mem_free(v);
    return ERR_BAD_REQUEST;
}

/* Adds the term s[0, n): `field op value`, split at the first operator. */
static int sel_field_term(sel_t *sel, const char *whole, sel_span_t term,
                          sel_buf_t *msg)
{
    int rc;
    char *value = NULL;

    for (size_t i = 0; i < term.n; i++) {
        for (const struct sel_field_op *o = sel_field_ops; o->text; o++) {
            size_t on = strlen(o->text);
            if (term.n - i < on || memcmp(term.p + i, o->text, on) != 0)
                continue;
            rc = sel_unescape(term.p + i + on, term.n - i - on, &value, msg);
            if (rc)
                return rc;
            sel_span_t v = {value, strlen(value)};
            rc = sel_add(sel, (sel_span_t){term.p, i}, o->op, &v, 1);
            mem_free(value);
            return rc;
        }
    }
    buf_addf(msg, "invalid selector: '%s'; can't understand '%.*s'", whole,
             (int)term.n, term.p);
    return ERR_BAD_REQUEST;
}

static int sel_field_allowed(const char *const *allowed, const char *name)
{
    if (!allowed)
        return 1;
    for (; *allowed; allowed++)
        if (strcmp(*allowed, name) == 0)
            return 1;
    return 0;
}

int sel_parse_fields(const char *s, const char *const *allowed, sel_t **out,
                     err_t *err)
{
    int rc = ERR_NOMEM;
    sel_span_t *terms = NULL;
    size_t nterms = 0;
    char msg_mem[SEL_MSG_MAX] = "";
    sel_buf_t msg = {msg_mem, 0, sizeof msg_mem};
    sel_t *sel = NULL;

    *out = NULL;
    if (!s)
        s = "";
    size_t n = strlen(s);
    sel = sel_new(SEL_KIND_FIELDS);
    if (!sel)
        goto out;

    /* Split at commas not escaped by a backslash (splitTerms); escapes
     * stay in the terms for sel_unescape. */
    if (n) {
        size_t max = 1;
        for (size_t i = 0; i < n; i++)
            max += s[i] == ',';
        terms = mem_calloc(max, sizeof *terms);
        if (!terms)
            goto out;
        size_t start = 0;
        int slash = 0;
        for (size_t i = 0; i < n; i++) {
            if (slash)
                slash = 0;
            else if (s[i] == '\\')
                slash = 1;
            else if (s[i] == ',') {
                terms[nterms++] = (sel_span_t){s + start, i - start};
                start = i + 1;
            }
        }
        terms[nterms++] = (sel_span_t){s + start, n - start};
        qsort(terms, nterms, sizeof *terms, sel_span_cmp);
    }
    for (size_t i = 0; i < nterms; i++) {
        if (terms[i].n && (rc = sel_field_term(sel, s, terms[i], &msg)))
            goto out;
    }
    /* Field labels are converted after the whole selector parsed. */
    for (size_t i = 0; i < sel->n; i++) {
        if (!sel_field_allowed(allowed, sel->reqs[i].key)) {
            buf_addf(&msg, "field label not supported: %s", sel->reqs[i].key);
            rc = ERR_BAD_REQUEST;
            goto out;
        }
    }
    rc = 0;
    *out = sel;
    sel = NULL;
out:
    if (rc == ERR_NOMEM)
        err_set(err, rc, NULL);
    else if (rc)
        err_set(err, rc, "%s", msg_mem);
    mem_free(terms);
    sel_free(sel);
    return rc;
}

/* ------------------------------------------------------------------------
 * metav1.LabelSelector
 * ---------------------------------------------------------------------- */

/* field.ErrorType: the cause type and how Error() names it. */
typedef enum sel_verr_type { VE_REQUIRED, VE_FORBIDDEN, VE_INVALID } sel_verr_type_t;

static const struct sel_verr_row {
    const char *cause;
    const char *text;
} sel_verr_rows[] = {
    [VE_REQUIRED] = {"FieldValueRequired", "Required value"},
    [VE_FORBIDDEN] = {"FieldValueForbidden", "Forbidden"},
    [VE_INVALID] = {"FieldValueInvalid", "Invalid value"},
};

/* Collects field errors as err causes and as one aggregate message. */
typedef struct sel_verrs {
    err_t *err;          /* NULL or already failed: count only */
    size_t n;
    sel_buf_t msg;
    char msg_mem[SEL_MSG_MAX];
} sel_verrs_t;

/* Records `field: <Type>[: <bad>]: detail`. bad is quoted as a string;
 * raw is printed as is (a JSON type name); either may be NULL. */
static void sel_verr(sel_verrs_t *v, sel_verr_type_t type, const char *field,
                     const char *bad, const char *raw, const char *detail)
{
    char body_mem[SEL_MSG_MAX];
    sel_buf_t body = {body_mem, 0, sizeof body_mem};

    body_mem[0] = '\0';
    buf_str(&body, sel_verr_rows[type].text);
    if (bad) {
        buf_str(&body, ": ");
        buf_quoted(&body, bad, strlen(bad));
    } else if (raw) {
        buf_str(&body, ": ");
        buf_str(&body, raw);
    }
    buf_str(&body, ": ");
    buf_str(&body, detail);
    if (v->err && !v->err->code)
        err_add_cause(v->err, sel_verr_rows[type].cause, field, "%s", body_mem);
    buf_str(&v->msg, v->n ? ", " : "");
    buf_str(&v->msg, field);
    buf_str(&v->msg, ": ");
    buf_str(&v->msg, body_mem);
    v->n++;
}

static const char *sel_json_type(const json_t *j)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "object", [JSON_ARRAY] = "array",
        [JSON_STRING] = "string", [JSON_INTEGER] = "number",
        [JSON_REAL] = "number",   [JSON_TRUE] = "boolean",
        [JSON_FALSE] = "boolean", [JSON_NULL] = "null",
    };
    return names[json_typeof(j)];
}

/* ValidateLabelName / IsValidLabelValue, one field error per message. */
static void sel_verr_key(sel_verrs_t *v, const char *field, const char *k)
{
    valid_msgs_t ms;
    valid_qualified_name(k, strlen(k), &ms);
    for (size_t i = 0; i < ms.n; i++)
        sel_verr(v, VE_INVALID, field, k, NULL, ms.m[i]);
}

static void sel_verr_value(sel_verrs_t *v, const char *field, const char *val)
{
    valid_msgs_t ms;
    valid_label_value(val, strlen(val), &ms);
    for (size_t i = 0; i < ms.n; i++)
        sel_verr(v, VE_INVALID, field, val, NULL, ms.m[i]);
}

/* The LabelSelectorOperator values. */
static const struct sel_ls_op {
    const char *name;
    sel_op_t op;
    int needs_values;
} sel_ls_ops[] = {
    {"In", SEL_IN, 1},
    {"NotIn", SEL_NOTIN, 1},
    {"Exists", SEL_EXISTS, 0},
    {"DoesNotExist", SEL_NOT_EXISTS, 0},
    {NULL, SEL_EXISTS, 0},
};

static const struct sel_ls_op *sel_ls_op(const char *name)
{
    const struct sel_ls_op *o = sel_ls_ops;
    while (o->name && strcmp(o->name, name) != 0)
        o++;
    return o->name ? o : NULL;
}

static const json_t *sel_member(const json_t *obj, const char *name)
{
    const json_t *j = json_object_get(obj, name);
    return json_is_null(j) ? NULL : j;
}

/* ValidateLabelSelectorRequirement for matchExpressions[i], plus the shape
 * checks JSON decoding would make. */
static void sel_validate_expr(sel_verrs_t *v, size_t i, const json_t *e)
{
    char field[96];
    const json_t *key, *op, *vals;

    snprintf(field, sizeof field, "matchExpressions[%zu]", i);
    if (!json_is_object(e)) {
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(e), "must be an object");
        return;
    }
    key = sel_member(e, "key");
    op = sel_member(e, "operator");
    vals = sel_member(e, "values");
    if (vals && !json_is_array(vals)) {
        snprintf(field, sizeof field, "matchExpressions[%zu].values", i);
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(vals), "must be an array");
        return;
    }
    if (op && !json_is_string(op)) {
        snprintf(field, sizeof field, "matchExpressions[%zu].operator", i);
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(op), "must be a string");
        return;
    }
    if (key && !json_is_string(key)) {
        snprintf(field, sizeof field, "matchExpressions[%zu].key", i);
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(key), "must be a string");
        return;
    }
    size_t nvals = vals ? json_array_size(vals) : 0;
    const char *opname = op ? json_string_value(op) : "";
    const struct sel_ls_op *o = sel_ls_op(opname);

    snprintf(field, sizeof field, "matchExpressions[%zu].%s", i,
             o ? "values" : "operator");
    if (!o) {
        sel_verr(v, VE_INVALID, field, opname, NULL, "not a valid selector operator");
    } else if (o->needs_values && !nvals) {
        sel_verr(v, VE_REQUIRED, field, NULL, NULL,
                 "must be specified when `operator` is 'In' or 'NotIn'");
    } else if (!o->needs_values && nvals) {
        sel_verr(v, VE_FORBIDDEN, field, NULL, NULL,
                 "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    }
    snprintf(field, sizeof field, "matchExpressions[%zu].key", i);
    sel_verr_key(v, field, key ? json_string_value(key) : "");
    for (size_t j = 0; j < nvals; j++) {
        const json_t *val = json_array_get(vals, j);
        snprintf(field, sizeof field, "matchExpressions[%zu].values[%zu]", i, j);
        if (!json_is_string(val))
            sel_verr(v, VE_INVALID, field, NULL, sel_json_type(val), "must be a string");
        else
            sel_verr_value(v, field, json_string_value(val));
    }
}

/* ValidateLabelSelector; returns the number of field errors. */
static size_t sel_validate_ls(sel_verrs_t *v, const json_t *ls)
{
    const json_t *ml, *me;

    if (!json_is_object(ls)) {
        sel_verr(v, VE_INVALID, "", NULL, sel_json_type(ls), "must be an object");
        return v->n;
    }
    ml = sel_member(ls, "matchLabels");
    me = sel_member(ls, "matchExpressions");
    if (ml && !json_is_object(ml)) {
        sel_verr(v, VE_INVALID, "matchLabels", NULL, sel_json_type(ml), "must be an object");
    } else if (ml) {
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)ml, k, val) {
            sel_verr_key(v, "matchLabels", k);
            if (!json_is_string(val))
                sel_verr(v, VE_INVALID, "matchLabels", NULL, sel_json_type(val),
                         "must be a string");
            else
                sel_verr_value(v, "matchLabels", json_string_value(val));
        }
    }
    if (me && !json_is_array(me)) {
        sel_verr(v, VE_INVALID, "matchExpressions", NULL, sel_json_type(me),
                 "must be an array");
    } else if (me) {
        for (size_t i = 0; i < json_array_size(me); i++)
            sel_validate_expr(v, i, json_array_get(me, i));
    }
    return v->n;
}

static sel_span_t sel_str_span(const char *s) { return (sel_span_t){s, strlen(s)}; }

/* LabelSelectorAsSelector on a validated selector. */
static int sel_build_ls(sel_t *sel, const json_t *ls)
{
    int rc = 0;
    sel_span_t *vals = NULL;
    const json_t *ml = sel_member(ls, "matchLabels");
    const json_t *me = sel_member(ls, "matchExpressions");

    if (ml) {
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)ml, k, val) {
            sel_span_t v = sel_str_span(json_string_value(val));
            if ((rc = sel_add(sel, sel_str_span(k), SEL_EQ, &v, 1)))
                goto out;
        }
    }
    for (size_t i = 0; me && i < json_array_size(me); i++) {
        const json_t *e = json_array_get(me, i);
        const json_t *key = sel_member(e, "key");
        const json_t *jv = sel_member(e, "values");
        size_t nvals = jv ? json_array_size(jv) : 0;
        const json_t *op = sel_member(e, "operator");
        /* Validation has checked the operator, so o is not NULL. */
        const struct sel_ls_op *o = sel_ls_op(op ? json_string_value(op) : "");

        if (nvals) {
            vals = mem_calloc(nvals, sizeof *vals);
            if (!vals) {
                rc = ERR_NOMEM;
                goto out;
            }
            for (size_t j = 0; j < nvals; j++)
                vals[j] = sel_str_span(json_string_value(json_array_get(jv, j)));
            /* Sorted as String() prints them; duplicates stay, as in kube. */
            qsort(vals, nvals, sizeof *vals, sel_span_cmp);
        }
        rc = sel_add(sel, sel_str_span(key ? json_string_value(key) : ""), o->op,
                     vals, nvals);
        mem_free(vals);
        vals = NULL;
        if (rc)
            goto out;
    }
    sel_sort(sel);
out:
    mem_free(vals);
    return rc;
}

int sel_from_label_selector(const json_t *ls, sel_t **out, err_t *err)
{
    int rc = ERR_NOMEM;
    sel_t *sel = NULL;
    sel_verrs_t v = {.err = err};

    *out = NULL;
    v.msg = (sel_buf_t){v.msg_mem, 0, sizeof v.msg_mem};
    v.msg_mem[0] = '\0';
    if (ls && !json_is_null(ls) && sel_validate_ls(&v, ls)) {
        rc = err_set(err, ERR_INVALID, v.n > 1 ? "[%s]" : "%s", v.msg_mem);
        goto out;
    }
    sel = sel_new(SEL_KIND_LABELS);
    if (!sel)
        goto out;
    if (ls && !json_is_null(ls) && (rc = sel_build_ls(sel, ls)))
        goto out;
    rc = 0;
    *out = sel;
    sel = NULL;
out:
    if (rc == ERR_NOMEM)
        err_set(err, rc, NULL);
    sel_free(sel);
    return rc;
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
