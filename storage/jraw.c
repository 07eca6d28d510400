/*
 * jraw (jraw.h): a validating scanner over JSON text. Each token is
 * checked as jansson's lexer checks it (load.c), containers are matched
 * with one bit per open container on the stack, and every read is
 * bounded by the end of the text.
 */
#include "jraw.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define BAD ERR_BAD_REQUEST

typedef struct scan {
    const unsigned char *p, *end;
} scan_t;

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int is_digit(const scan_t *s) { return s->p < s->end && *s->p >= '0' && *s->p <= '9'; }

static int hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
    if (end - p < 4)
        return BAD;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return BAD;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* The escape at s->p (a backslash): its code point in *cp, s->p moved
 * past it (both halves of a surrogate pair). */
static int escape(scan_t *s, uint32_t *cp)
{
    if (s->end - s->p < 2)
        return BAD;
    static const char plain[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
    const char *e = s->p[1] ? strchr(plain, s->p[1]) : NULL;
    if (e) {
        *cp = (unsigned char)value[e - plain];
        s->p += 2;
        return 0;
    }
    uint32_t hi, lo;
    if (s->p[1] != 'u' || hex4(s->p + 2, s->end, &hi))
        return BAD;
    s->p += 6;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return BAD;  /* a low surrogate first */
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
            hex4(s->p + 2, s->end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return BAD;
        s->p += 6;
        *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return 0;
    }
    if (hi == 0)
        return BAD;  /* jansson decodes \u0000 only with JSON_ALLOW_NUL */
    *cp = hi;
    return 0;
}

/* A multi-byte UTF-8 sequence at s->p (RFC 3629). */
static int utf8_seq(scan_t *s)
{
    const unsigned char *p = s->p;
    size_t n;
    uint32_t cp;
    if (*p >= 0xC2 && *p <= 0xDF) {
        n = 2;
        cp = *p & 0x1F;
    } else if (*p >= 0xE0 && *p <= 0xEF) {
        n = 3;
        cp = *p & 0x0F;
    } else if (*p >= 0xF0 && *p <= 0xF4) {
        n = 4;
        cp = *p & 0x07;
    } else {
        return BAD;
    }
    if ((size_t)(s->end - p) < n)
        return BAD;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return BAD;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) ||
        cp > 0x10FFFF)
        return BAD;
    s->p += n;
    return 0;
}

/* The string token at s->p (a quote); *escaped (may be NULL) is set when
 * it holds an escape. */
static int string(scan_t *s, int *escaped)
{
    s->p++;
    for (;;) {
        if (s->p >= s->end)
            return BAD;
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c == '\\') {
            uint32_t cp;
            if (escape(s, &cp))
                return BAD;
            if (escaped)
                *escaped = 1;
        } else if (c < 0x20) {
            return BAD;
        } else if (c < 0x80) {
            s->p++;
        } else if (utf8_seq(s)) {
            return BAD;
        }
    }
}

/* The number token at s->p, with jansson's range checks: an integer must
 * fit json_int_t, a real must not overflow. */
static int number(scan_t *s)
{
    const unsigned char *start = s->p;
    int neg = *s->p == '-';
    if (neg)
        s->p++;
    const unsigned char *int_start = s->p;
    if (!is_digit(s))
        return BAD;
    if (*s->p == '0') {
        s->p++;
        if (is_digit(s))
            return BAD;  /* no leading zeros */
    } else {
        while (is_digit(s))
            s->p++;
    }
    size_t int_digits = (size_t)(s->p - int_start);
    int real = 0;
    long exp = 0;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!is_digit(s))
            return BAD;
        while (is_digit(s))
            s->p++;
        real = 1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        int eneg = 0;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            eneg = *s->p++ == '-';
        if (!is_digit(s))
            return BAD;
        for (; is_digit(s); s->p++)
            if (exp < 1000000)
                exp = exp * 10 + (*s->p - '0');
        if (eneg)
            exp = -exp;
        real = 1;
    }
    if (!real) {
        /* strtoll's range, as digits (no leading zeros, so length orders) */
        if (int_digits != 19)
            return int_digits < 19 ? 0 : BAD;
        return memcmp(int_start, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0
                   ? BAD : 0;
    }
    /* Below 10^(integer digits + exponent) <= 10^308 < DBL_MAX: no overflow. */
    if ((long)int_digits + exp <= 308)
        return 0;
    char buf[1001];
    size_t n = (size_t)(s->p - start);
    if (n >= sizeof buf)
        return BAD;
    memcpy(buf, start, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    return (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE ? BAD : 0;
}

static int literal(scan_t *s)
{
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(s->end - s->p) >= n && !memcmp(s->p, words[i], n)) {
            s->p += n;
            return 0;
        }
    }
    return BAD;
}

/* A member's key and colon at s->p; leaves s->p at its value. */
static int key_colon(scan_t *s)
{
    if (s->p >= s->end || *s->p != '"' || string(s, NULL))
        return BAD;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return BAD;
    s->p++;
    skip_ws(s);
    return 0;
}

/*
 * Skips the value at s->p, which sits at the given depth (the top-level
 * value is 1). Iterative: an open container is one bit (object or array)
 * in a stack as deep as the limit, so no input can exhaust the C stack.
 */
static int value(scan_t *s, unsigned depth)
{
    unsigned char is_obj[JRAW_MAX_DEPTH / 8 + 1] = {0};
    unsigned top = 0;
    for (;;) {
        /* s->p is at a value */
        if (depth + top > JRAW_MAX_DEPTH || s->p >= s->end)
            return BAD;
        int rc = 0;
        unsigned char c = *s->p;
        if (c == '{' || c == '[') {
            int obj = c == '{';
            s->p++;
            if (obj)
                is_obj[top / 8] |= (unsigned char)(1u << (top % 8));
            else
                is_obj[top / 8] &= (unsigned char)~(1u << (top % 8));
            top++;
            skip_ws(s);
            if (s->p < s->end && *s->p == (obj ? '}' : ']')) {
                s->p++;
                top--;
            } else {
                if (obj && key_colon(s))
                    return BAD;
                continue;
            }
        } else if (c == '"') {
            rc = string(s, NULL);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            rc = number(s);
        } else {
            rc = literal(s);
        }
        if (rc)
            return rc;
        /* After a value: close the containers that end here, or move on
         * to the next element or member. */
        for (;;) {
            if (!top)
                return 0;
            int obj = is_obj[(top - 1) / 8] >> ((top - 1) % 8) & 1;
            skip_ws(s);
            if (s->p >= s->end)
                return BAD;
            if (*s->p == ',') {
                s->p++;
                skip_ws(s);
                if (obj && key_colon(s))
                    return BAD;
                break;
            }
            if (*s->p != (obj ? '}' : ']'))
                return BAD;
            s->p++;
            top--;
        }
    }
}

static size_t utf8_put(uint32_t cp, unsigned char *b)
{
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | cp >> 18);
    b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Whether the raw key text [p, end) (between its quotes, already
 * validated) decodes to want. */
static int key_is(const unsigned char *p, const unsigned char *end, int escaped, const char *want)
{
    size_t wl = strlen(want);
    if (!escaped)
        return (size_t)(end - p) == wl && !memcmp(p, want, wl);
    const unsigned char *w = (const unsigned char *)want, *wend = w + wl;
    scan_t s = {p, end};
    while (s.p < s.end) {
        unsigned char b[4];
        size_t n = 1;
        if (*s.p == '\\') {
            uint32_t cp;
            if (escape(&s, &cp))
                return 0;
            n = utf8_put(cp, b);
        } else {
            b[0] = *s.p++;
        }
        if ((size_t)(wend - w) < n || memcmp(w, b, n))
            return 0;
        w += n;
    }
    return w == wend;
}

int jraw_members(const char *text, size_t len, const char *const *keys, jraw_span_t *vals,
                 size_t n)
{
    int rc = BAD;
    for (size_t i = 0; i < n; i++)
        vals[i] = (jraw_span_t){NULL, 0};
    if (!text)
        goto out;
    scan_t s = {(const unsigned char *)text, (const unsigned char *)text + len};
    skip_ws(&s);
    if (s.p >= s.end)
        goto out;
    if (*s.p != '{') {
        /* Well-formed or not, there are no members to find. */
        rc = value(&s, 1);
        skip_ws(&s);
        rc = rc ? rc : s.p != s.end ? BAD : ERR_INVALID;
        goto out;
    }
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            const unsigned char *k = s.p;
            int escaped = 0;
            if (s.p >= s.end || *s.p != '"' || string(&s, &escaped))
                goto out;
            const unsigned char *kend = s.p - 1;
            skip_ws(&s);
            if (s.p >= s.end || *s.p != ':')
                goto out;
            s.p++;
            skip_ws(&s);
            const unsigned char *v = s.p;
            if (value(&s, 2))
                goto out;
            for (size_t i = 0; i < n; i++)
                if (key_is(k + 1, kend, escaped, keys[i]))
                    vals[i] = (jraw_span_t){(const char *)v, (size_t)(s.p - v)};
            skip_ws(&s);
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                skip_ws(&s);
                continue;
            }
            if (s.p >= s.end || *s.p != '}')
                goto out;
            s.p++;
            break;
        }
    }
    skip_ws(&s);
    rc = s.p == s.end ? 0 : BAD;
out:
    if (rc)
        for (size_t i = 0; i < n; i++)
            vals[i] = (jraw_span_t){NULL, 0};
    return rc;
}

int jraw_member(const char *text, size_t len, const char *key, const char **val,
                size_t *val_len)
{
    jraw_span_t v;
    int rc = jraw_members(text, len, &key, &v, 1);
    if (!rc && !v.p)
        rc = ERR_NOT_FOUND;
    *val = v.p;
    *val_len = v.len;
    return rc;
}
