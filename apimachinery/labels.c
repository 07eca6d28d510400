/*
 * labels: the label selector string parser (sel_parse_labels), with
 * labels.Parse's grammar and messages. The contract is in selector.h; the
 * requirements it builds and the message buffers are selector.c's.
 *
 * A transcription of labels/selector.go: a lexer that never fails (every
 * special symbol alone is a token, so the longest-match scan always finds
 * one) and a recursive-descent parser with one token of lookahead. Kube
 * scans all tokens up front; lexing lazily gives the same tokens without
 * allocating. The parser reads `in` and `notin` as plain identifiers
 * wherever a value may stand (kube's "Values" context), which is why
 * `in in (in)` is a valid selector.
 *
 * Error messages are built in a fixed buffer, so a bad selector is
 * reported as ERR_BAD_REQUEST even when memory is short; overlong messages
 * are cut.
 */
#include "selector_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"

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
    sel__buf_addf(&p->msg, fmt, (int)t.len, t.lit);
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
            ok = sel__parse_int64(v, &num) == 0;
        }
        if (ok)
            continue;
        if (b) {
            sel__buf_str(b, count ? ", " : "");
            sel__buf_addf(b, "values[%zu]: Invalid value: ", i);
            sel__buf_quoted(b, s.p, s.n);
            sel__buf_str(b, ": for 'Gt', 'Lt' operators, the value must be an integer");
        }
        count++;
    }
    for (size_t i = 0; i < p->nvals; i++) {
        valid_label_value(p->vals[i].p, p->vals[i].n, &ms);
        if (!ms.n)
            continue;
        if (b) {
            sel_buf_t pb = {path, 0, sizeof path};
            sel__buf_addf(&pb, "values[%zu][%.*s]", i, (int)key.n, key.p);
            sel__buf_str(b, count ? ", " : "");
            sel__buf_invalid(b, path, p->vals[i].p, p->vals[i].n, &ms);
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
        qsort(p->vals, p->nvals, sizeof *p->vals, sel__span_cmp);
        for (size_t i = 0; i < p->nvals; i++)
            if (!n || sel__span_cmp(&p->vals[n - 1], &p->vals[i]))
                p->vals[n++] = p->vals[i];
        p->nvals = n;
    }
    size_t nerr = sel_value_errors(p, key, op, NULL);
    if (nerr) {
        sel__buf_str(&p->msg, nerr > 1 ? "[" : "");
        sel_value_errors(p, key, op, &p->msg);
        sel__buf_str(&p->msg, nerr > 1 ? "]" : "");
        return ERR_BAD_REQUEST;
    }
    return sel__add(p->sel, key, op, p->vals, p->nvals);
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
        sel__buf_invalid(&p->msg, "<nil>", t.lit, t.len, &ms);
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

int sel_parse_labels(const char *s, sel_t **out, err_t *err)
{
    int rc = ERR_NOMEM;
    int wrapped = 0;
    sel_parser_t p = {.lx = {.s = s ? s : ""}};

    *out = NULL;
    p.msg = (sel_buf_t){p.msg_mem, 0, sizeof p.msg_mem};
    p.msg_mem[0] = '\0';
    p.sel = sel__new(SEL_KIND_LABELS);
    if (!p.sel)
        goto out;
    rc = sel_parse_selector(&p, &wrapped);
    if (rc)
        goto out;
    sel__sort(p.sel);
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
