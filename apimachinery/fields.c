/*
 * fields: the field selector string parser (sel_parse_fields), with
 * fields.ParseSelector's grammar, unescaping and messages. The contract is
 * in selector.h; the requirements it builds and the message buffers are
 * selector.c's.
 */
#include "selector_internal.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"

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
                sel__buf_str(msg, "invalid field selector: invalid escape sequence: \\");
                goto bad;
            }
            c = s[++i];
            if (!strchr("\\,=", c)) {
                size_t cl = sel_utf8_len((unsigned char)c);
                if (cl > n - i)
                    cl = n - i;
                sel__buf_addf(msg, "invalid field selector: invalid escape sequence: \\%.*s",
                              (int)cl, s + i);
                goto bad;
            }
        } else if (c == ',' || c == '=') {
            /* kube prints the rune with %v, i.e. its code point */
            sel__buf_addf(msg, "invalid field selector: unescaped character in value: %d", c);
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
            rc = sel__add(sel, (sel_span_t){term.p, i}, o->op, &v, 1);
            mem_free(value);
            return rc;
        }
    }
    sel__buf_addf(msg, "invalid selector: '%s'; can't understand '%.*s'", whole,
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
    sel = sel__new(SEL_KIND_FIELDS);
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
        qsort(terms, nterms, sizeof *terms, sel__span_cmp);
    }
    for (size_t i = 0; i < nterms; i++) {
        if (terms[i].n && (rc = sel_field_term(sel, s, terms[i], &msg)))
            goto out;
    }
    /* Field labels are converted after the whole selector parsed. */
    for (size_t i = 0; i < sel->n; i++) {
        if (!sel_field_allowed(allowed, sel->reqs[i].key)) {
            sel__buf_addf(&msg, "field label not supported: %s", sel->reqs[i].key);
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
