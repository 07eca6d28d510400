#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct err_row {
    int code;
    int http;
    const char *reason;
    const char *message;
    const char *name;
} err_row_t;

static const err_row_t err_rows[] = {
#define ERR_ROW_(name, http, reason, msg) {name, http, reason, msg, #name},
    ERR_TABLE(ERR_ROW_)
#undef ERR_ROW_
    {0, 0, NULL, NULL, NULL},
};

static const err_row_t *err_row(int code)
{
    if (code > ERR__FIRST && code < ERR__LAST)
        return &err_rows[code - ERR__FIRST - 1];
    return &err_rows[ERR_INTERNAL - ERR__FIRST - 1];
}

void err_clear(err_t *e)
{
    if (!e)
        return;
    e->code = 0;
    e->message[0] = '\0';
    e->ncauses = 0;
}

/* Cuts a multi-byte UTF-8 sequence that a full buffer left incomplete at
 * the end of s (n bytes), so a message quoting a long name ends on a
 * whole character. Bytes that were never UTF-8 are left alone. */
static void trim_cut_char(char *s, size_t n)
{
    size_t len = strnlen(s, n), i = len, cont = 0;
    if (len + 1 < n)
        return;  /* not cut */
    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
    if (want && cont + 1 < want)
        s[i - 1] = '\0';
}

int err_set(err_t *e, int code, const char *fmt, ...)
{
    if (!e || e->code)
        return code;
    e->code = code;
    if (!fmt) {
        snprintf(e->message, sizeof e->message, "%s", err_row(code)->message);
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    trim_cut_char(e->message, sizeof e->message);
    return code;
}

int err_forward(err_t *e, const err_t *from)
{
    if (!e || e->code || !from->code)
        return from->code;
    for (int i = 0; i < from->ncauses; i++)
        err_add_cause(e, from->causes[i].type, from->causes[i].field, "%s",
                      from->causes[i].message);
    return err_set(e, from->code, "%s", from->message);
}

void err_add_cause(err_t *e, const char *type, const char *field,
                   const char *fmt, ...)
{
    if (!e || e->ncauses >= ERR_MAX_CAUSES)
        return;
    err_cause_t *c = &e->causes[e->ncauses++];
    snprintf(c->type, sizeof c->type, "%s", type ? type : "");
    snprintf(c->field, sizeof c->field, "%s", field ? field : "");
    trim_cut_char(c->field, sizeof c->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
    trim_cut_char(c->message, sizeof c->message);
}

int err_http_status(int code) { return err_row(code)->http; }
const char *err_reason(int code) { return err_row(code)->reason; }
const char *err_name(int code) { return err_row(code)->name; }
const char *err_default_message(int code) { return err_row(code)->message; }
