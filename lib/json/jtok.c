/*
 * jtok: an in-place JSON tokenizer as strict as jansson's decoder. See
 * jtok.h. One pass, an explicit stack of open containers, no allocation.
 */
#include "jtok.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jenc.h"
#include "../mem.h"

typedef struct parser {
    const unsigned char *p, *end, *base;
    jtok_t *toks;
    int n, max;
    int overflow;                /* ran out of tokens or depth: not malformed */
} parser_t;

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int new_tok(parser_t *ps, jtok_type_t type, const unsigned char *start)
{
    if (ps->n >= ps->max) {
        ps->overflow = 1;
        return -1;
    }
    jtok_t *t = &ps->toks[ps->n];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->start = (uint32_t)(start - ps->base);
    return ps->n++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (end checked by the caller). -1 if not hex. */
static long hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A string at ps->p (the opening quote). */
static int parse_string(parser_t *ps)
{
    const unsigned char *start = ++ps->p;
    int escaped = 0;
    while (ps->p < ps->end) {
        unsigned char c = *ps->p;
        if (c == '"') {
            int t = new_tok(ps, JTOK_STRING, start);
            if (t < 0)
                return -1;
            ps->toks[t].len = (uint32_t)(ps->p - start);
            ps->toks[t].escaped = (uint8_t)escaped;
            ps->toks[t].next = (uint32_t)ps->n;
            ps->p++;
            return t;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            escaped = 1;
            if (ps->end - ps->p < 2)
                return -1;
            c = ps->p[1];
            if (c == 'u') {
                if (ps->end - ps->p < 6)
                    return -1;
                long v = hex4(ps->p + 2);
                if (v <= 0)  /* not hex, or \u0000 (jansson refuses NUL) */
                    return -1;
                ps->p += 6;
                if (v >= 0xdc00 && v <= 0xdfff)
                    return -1;  /* a low surrogate alone */
                if (v >= 0xd800 && v <= 0xdbff) {
                    if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
                        return -1;
                    long lo = hex4(ps->p + 2);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return -1;
                    ps->p += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || !c)
                return -1;
            ps->p += 2;
            continue;
        }
        if (c < 0x80) {
            ps->p++;  /* plain ASCII, the common case, without a call */
            continue;
        }
        size_t n = jenc_utf8_len((const char *)ps->p, (size_t)(ps->end - ps->p));
        if (!n)
            return -1;
        ps->p += n;
    }
    return -1;
}

/* A number, with jansson's grammar and range: integers must fit in 64
 * bits and reals must be finite. */
static int parse_number(parser_t *ps)
{
    const unsigned char *s = ps->p, *p = ps->p;
    int real = 0;
    if (p < ps->end && *p == '-')
        p++;
    if (p >= ps->end)
        return -1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -1;
    }
    if (p < ps->end && *p == '.') {
        real = 1;
        p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            return -1;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= ps->end || *p < '0' || *p > '9')
            return -1;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    char buf[64];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf) {
        ps->overflow = 1;  /* long numbers: let jansson judge them */
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    if (real) {
        double d = strtod(buf, NULL);
        if (errno == ERANGE && isinf(d))
            return -1;
    } else {
        (void)strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return -1;
    }
    int t = new_tok(ps, JTOK_NUMBER, s);
    if (t < 0)
        return -1;
    ps->toks[t].len = (uint32_t)n;
    ps->toks[t].next = (uint32_t)ps->n;
    ps->p = p;
    return t;
}

static int parse_literal(parser_t *ps, const char *word, jtok_type_t type)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
        return -1;
    int t = new_tok(ps, type, ps->p);
    if (t < 0)
        return -1;
    ps->toks[t].len = (uint32_t)n;
    ps->toks[t].next = (uint32_t)ps->n;
    ps->p += n;
    return t;
}

/* A scalar value at ps->p. */
static int parse_scalar(parser_t *ps)
{
    if (ps->p >= ps->end)
        return -1;
    switch (*ps->p) {
    case '"':
        return parse_string(ps);
    case 't':
        return parse_literal(ps, "true", JTOK_TRUE);
    case 'f':
        return parse_literal(ps, "false", JTOK_FALSE);
    case 'n':
        return parse_literal(ps, "null", JTOK_NULL);
    default:
        return parse_number(ps);
    }
}

/*
 * The containers are walked with an explicit stack of the open ones; a
 * container's token is finished (len, next) when it closes. In an object,
 * each member is a key token then a value token.
 */
int jtok_parse(const char *text, size_t len, jtok_t *toks, int max)
{
    if (!text || len > UINT32_MAX || max <= 0)
        return len > UINT32_MAX ? -1 : 0;
    parser_t ps = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len,
                   .base = (const unsigned char *)text, .toks = toks, .max = max};
    int stack[JTOK_MAX_DEPTH];
    int depth = 0;

    skip_ws(&ps);
    if (ps.p >= ps.end || (*ps.p != '{' && *ps.p != '['))
        return 0;
    for (;;) {
        skip_ws(&ps);
        if (ps.p >= ps.end)
            return 0;
        unsigned char c = *ps.p;
        jtok_t *top = depth ? &toks[stack[depth - 1]] : NULL;

        /* Inside an open container: a closer, a separator, or a member. */
        if (top && (c == '}' || c == ']')) {
            if (c != (top->type == JTOK_OBJECT ? '}' : ']'))
                return 0;
            /* "{"a":1,}" and "[1,]" are refused: a closer follows a value
             * or the opener, never a comma (checked below at the comma). */
            ps.p++;
            top->len = (uint32_t)((ps.p - ps.base) - top->start);
            top->next = (uint32_t)ps.n;
            depth--;
            if (!depth)
                break;
            goto after_value;
        }

        if (top && top->type == JTOK_OBJECT) {
            /* A member: key, colon, then the value below. */
            if (c != '"' || parse_string(&ps) < 0)
                return ps.overflow ? -1 : 0;
            skip_ws(&ps);
            if (ps.p >= ps.end || *ps.p != ':')
                return 0;
            ps.p++;
            skip_ws(&ps);
            if (ps.p >= ps.end)
                return 0;
            c = *ps.p;
        }

        if (c == '{' || c == '[') {
            if (depth == JTOK_MAX_DEPTH)
                return -1;
            int t = new_tok(&ps, c == '{' ? JTOK_OBJECT : JTOK_ARRAY, ps.p);
            if (t < 0)
                return -1;
            if (top)
                top->size++;
            stack[depth++] = t;
            ps.p++;
            /* An empty container closes at once; otherwise a value comes. */
            skip_ws(&ps);
            if (ps.p < ps.end && (*ps.p == '}' || *ps.p == ']'))
                continue;
            if (c == '{' && (ps.p >= ps.end || *ps.p != '"'))
                return 0;
            continue;
        }
        if (!top)
            return 0;
        if (parse_scalar(&ps) < 0)
            return ps.overflow ? -1 : 0;
        top->size++;

    after_value:
        /* After a value inside a container: ',' then another, or a closer. */
        skip_ws(&ps);
        if (ps.p >= ps.end)
            return 0;
        top = &toks[stack[depth - 1]];
        if (*ps.p == ',') {
            ps.p++;
            skip_ws(&ps);
            if (ps.p >= ps.end || *ps.p == '}' || *ps.p == ']')
                return 0;
            continue;
        }
        if (*ps.p != (top->type == JTOK_OBJECT ? '}' : ']'))
            return 0;
    }
    skip_ws(&ps);
    return ps.p == ps.end ? ps.n : 0;
}

/* Decodes the character at *p (a byte, or an escape jtok_parse checked)
 * into out as UTF-8 and moves *p past it. Returns the bytes written. */
static size_t decode_char(const unsigned char **p, char out[4]);

/* Compares key token k with key, decoding escapes as it goes. */
static int key_is(const char *text, const jtok_t *k, const char *key)
{
    size_t n = strlen(key);
    if (!k->escaped)
        return k->len == n && !memcmp(text + k->start, key, n);
    const unsigned char *p = (const unsigned char *)text + k->start, *end = p + k->len;
    size_t at = 0;
    while (p < end) {
        char c[4];
        size_t m = decode_char(&p, c);
        if (m > n - at || memcmp(key + at, c, m))
            return 0;
        at += m;
    }
    return at == n;
}

int jtok_get(const char *text, const jtok_t *toks, int obj, const char *key)
{
    if (obj < 0 || toks[obj].type != JTOK_OBJECT)
        return -1;
    int found = -1;
    uint32_t i = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < toks[obj].size; m++) {
        uint32_t v = toks[i].next;
        if (key_is(text, &toks[i], key))
            found = (int)v;
        i = toks[v].next;
    }
    return found;
}

int jtok_item(const jtok_t *toks, int arr, uint32_t i)
{
    if (arr < 0 || toks[arr].type != JTOK_ARRAY || i >= toks[arr].size)
        return -1;
    uint32_t t = (uint32_t)arr + 1;
    while (i--)
        t = toks[t].next;
    return (int)t;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static size_t decode_char(const unsigned char **pp, char out[4])
{
    const unsigned char *p = *pp;
    size_t n = 1;
    if (*p != '\\') {
        out[0] = (char)*p++;
        *pp = p;
        return 1;
    }
    unsigned char e = p[1];
    p += 2;
    switch (e) {
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u': {
        /* Checked by jtok_parse: hex, and surrogates in pairs. */
        unsigned long cp = (unsigned long)hex4(p);
        p += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned long lo = (unsigned long)hex4(p + 2);
            p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        n = put_utf8(out, cp);
        break;
    }
    default: out[0] = (char)e; break;  /* " \ / */
    }
    *pp = p;
    return n;
}

int jtok_str(const char *text, const jtok_t *t, char *buf, size_t cap)
{
    if (!t || t->type != JTOK_STRING || !cap)
        return -1;
    const unsigned char *p = (const unsigned char *)text + t->start, *end = p + t->len;
    if (!t->escaped) {
        if (cap < (size_t)t->len + 1)
            return -1;
        memcpy(buf, p, t->len);
        buf[t->len] = '\0';
        return (int)t->len;
    }
    size_t o = 0;
    while (p < end) {
        char c[4];
        size_t n = decode_char(&p, c);
        if (o + n + 1 > cap)
            return -1;
        memcpy(buf + o, c, n);
        o += n;
    }
    buf[o] = '\0';
    return (int)o;
}

/* ---- building a jansson value ------------------------------------------ */

#define JTOK_STACK_TOKENS 512    /* on the stack; larger texts get a heap array */
#define JTOK_HEAP_MAX (256u * 1024u)  /* larger texts are left to json_loadb */

/* The value of token i (NULL on allocation failure). scratch (cap bytes,
 * at least the longest string + 1) receives decoded strings. */
static json_t *build(const char *text, const jtok_t *t, uint32_t i, char *scratch, size_t cap,
                     int no_dups)
{
    const jtok_t *k = &t[i];
    switch (k->type) {
    case JTOK_OBJECT: {
        json_t *o = json_object();
        uint32_t at = i + 1;
        for (uint32_t m = 0; o && m < k->size; m++) {
            uint32_t v = t[at].next;
            json_t *val = build(text, t, v, scratch, cap, no_dups);
            /* The key is decoded after the value, which used scratch too. */
            const char *key = text + t[at].start;
            int n = (int)t[at].len;
            if (t[at].escaped) {
                n = jtok_str(text, &t[at], scratch, cap);
                key = scratch;
            }
            /* A repeated key, when refused, is json_loadb's to word. */
            if (val && (n < 0 || (no_dups && json_object_getn(o, key, (size_t)n)))) {
                json_decref(val);
                val = NULL;
            }
            /* setn_new takes val, even when it fails. */
            if (!val || json_object_setn_new_nocheck(o, key, (size_t)n, val)) {
                json_decref(o);
                return NULL;
            }
            at = t[v].next;
        }
        return o;
    }
    case JTOK_ARRAY: {
        json_t *a = json_array();
        uint32_t at = i + 1;
        for (uint32_t m = 0; a && m < k->size; m++) {
            if (json_array_append_new(a, build(text, t, at, scratch, cap, no_dups))) {
                json_decref(a);
                return NULL;
            }
            at = t[at].next;
        }
        return a;
    }
    case JTOK_STRING: {
        if (!k->escaped)
            return json_stringn_nocheck(text + k->start, k->len);
        int n = jtok_str(text, k, scratch, cap);
        return n < 0 ? NULL : json_stringn_nocheck(scratch, (size_t)n);
    }
    case JTOK_NUMBER: {
        char buf[64];  /* jtok_parse takes numbers of fewer than 64 bytes */
        memcpy(buf, text + k->start, k->len);
        buf[k->len] = '\0';
        if (strpbrk(buf, ".eE"))
            return json_real(strtod(buf, NULL));
        return json_integer((json_int_t)strtoll(buf, NULL, 10));
    }
    case JTOK_TRUE:
        return json_true();
    case JTOK_FALSE:
        return json_false();
    default:
        return json_null();
    }
}

json_t *jtok_value(const char *text, const jtok_t *toks, int i)
{
    if (i < 0)
        return NULL;
    /* Strings are decoded into scratch; none is longer than the value. */
    size_t len = toks[i].len;
    char small[512], *scratch = len + 1 > sizeof small ? mem_alloc(len + 1) : small;
    json_t *v = scratch ? build(text, toks, (uint32_t)i, scratch,
                                scratch == small ? sizeof small : len + 1, 0)
                        : NULL;
    if (scratch != small)
        mem_free(scratch);
    return v;
}

json_t *jtok_loadb(const char *text, size_t len, size_t flags, json_error_t *error)
{
    if (flags & ~(size_t)JSON_REJECT_DUPLICATES)
        return json_loadb(text, len, flags, error);
    jtok_t stack[JTOK_STACK_TOKENS], *toks = stack;
    char small[1024], *scratch = small;
    json_t *v = NULL;
    int n = jtok_parse(text, len, toks, JTOK_STACK_TOKENS);
    if (n < 0 && len <= JTOK_HEAP_MAX) {
        /* A token takes at least two bytes of text, but for the last. */
        int max = (int)(len / 2 + 2);
        toks = mem_alloc((size_t)max * sizeof *toks);
        n = toks ? jtok_parse(text, len, toks, max) : -1;
    }
    if (n > 0 && len + 1 > sizeof small)
        scratch = mem_alloc(len + 1);
    if (n > 0 && scratch)
        v = build(text, toks, 0, scratch, scratch == small ? sizeof small : len + 1,
                  (flags & JSON_REJECT_DUPLICATES) != 0);
    if (scratch != small)
        mem_free(scratch);
    if (toks != stack)
        mem_free(toks);
    return v ? v : json_loadb(text, len, flags, error);
}
