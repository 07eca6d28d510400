/*
 * selector_internal: what the selector's files share, defined in
 * selector.c: the parsed form (sel_t and its requirements), adding and
 * sorting requirements, and the fixed message buffers the parsers word
 * their errors in. The parsers are labels.c (label selector strings),
 * fields.c (field selector strings) and label_selector.c (the
 * metav1.LabelSelector object); nothing outside apimachinery/ uses this
 * header. The contract of the module is in selector.h.
 */
#ifndef EDGE_APIM_SELECTOR_INTERNAL_H
#define EDGE_APIM_SELECTOR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "selector.h"

/* ---- requirements ---------------------------------------------------------- */

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

/* A borrowed piece of the input. */
typedef struct sel_span {
    const char *p;
    size_t n;
} sel_span_t;

/* strconv.ParseInt(s, 10, 64): optional sign, at least one digit, no
 * overflow. Returns 0 and *out, or -1. */
int sel__parse_int64(const char *s, int64_t *out);

/* Go's string order of two sel_span_t: bytewise, a prefix first. A qsort
 * comparator. */
int sel__span_cmp(const void *a, const void *b);

/* A new empty selector of the given kind (caller-owned, sel_free), or NULL
 * on OOM. */
sel_t *sel__new(sel_kind_t kind);

/* Appends a requirement on key with copies of vals (in the order given).
 * 0, or ERR_NOMEM leaving s as it was. */
int sel__add(sel_t *s, sel_span_t key, sel_op_t op,
             const sel_span_t *vals, size_t nvals);

/* Sorts the requirements by key, stably (labels.Parse's order). */
void sel__sort(sel_t *s);

/* ---- message buffers --------------------------------------------------------
 * Fixed, so an error is reported as itself even when memory is short, and
 * cut silently when too long (an err_t holds less). What may grow
 * (sel_to_string) is an sbuf. The caller owns the memory p points to.
 */

typedef struct sel_buf {
    char *p;
    size_t len, cap;   /* cap > 0: p holds cap bytes, NUL-terminated */
} sel_buf_t;

#define SEL_MSG_MAX 1024

/* Appends the string s. */
void sel__buf_str(sel_buf_t *b, const char *s);

/* Appends printf output, cut at SEL_MSG_MAX - 1 bytes. */
void sel__buf_addf(sel_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Go's %q of the n bytes at s, cut as every message here is. */
void sel__buf_quoted(sel_buf_t *b, const char *s, size_t n);

/* field.Invalid(path, value, strings.Join(msgs, "; ")).Error() of the n
 * bytes at v. */
void sel__buf_invalid(sel_buf_t *b, const char *path, const char *v,
                      size_t n, const valid_msgs_t *ms);

#endif
