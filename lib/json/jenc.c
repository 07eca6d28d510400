/*
 * The encoder. See jenc.h for what it writes; the comments here say how.
 */
#include "jenc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "../err.h"
#include "../mem.h"

/* ---- output ------------------------------------------------------------------- */

/*
 * Appends go straight into the sbuf's memory; the NUL that sbuf keeps after
 * its content is written once, when a public call returns. put() keeps
 * room for it: after any put, cap - len > 0.
 */
static inline int put(sbuf_t *b, const void *s, size_t n)
{
    if (b->cap - b->len <= n && sbuf_grow(b, n))
        return ERR_NOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static inline int put1(sbuf_t *b, char c)
{
    if (b->cap - b->len <= 1 && sbuf_grow(b, 1))
        return ERR_NOMEM;
    b->p[b->len++] = c;
    return 0;
}

/* ---- strings ------------------------------------------------------------------ */

/*
 * What ends a run of bytes copied as they are: for a byte below 0x20, '"'
 * or '\\', the letter of its escape ('u' for \u00XX); for a byte from 0x80
 * up, 1: the start (or not) of a UTF-8 sequence, checked and then copied.
 */
#define J8 1, 1, 1, 1, 1, 1, 1, 1
#define J64 J8, J8, J8, J8, J8, J8, J8, J8
static const char esc[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\',
    [0x80] = J64, J64,
};
#undef J64
#undef J8

/* The index of the first byte from i on that is not copied as it is, or n.
 * Sixteen bytes at a time with SSE2 (every x86-64 has it): compared as
 * signed, "below 0x20" takes in the bytes from 0x80 up as well. Then (or
 * without SSE2) eight at a time in a word: a byte's high bit in m is set
 * when it is below 0x20 (x - 0x20 borrows), '"' or '\\' (the xor leaves 0,
 * which borrows), or from 0x80 up (x itself); a borrow can only flag bytes
 * after the one that caused it, so the lowest flagged byte is the first
 * such byte. Then one at a time. */
static size_t plain_run(const char *s, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (n - i >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                _mm_cmpeq_epi8(x, bslash)),
                                   _mm_cmplt_epi8(x, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    while (n - i >= 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t m = ((x - 0x20 * ones) | ((x ^ ('"' * ones)) - ones) |
                      ((x ^ ('\\' * ones)) - ones) | x) & high;
        if (m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + ((size_t)__builtin_ctzll(m) >> 3);
#else
            break;
#endif
        }
        i += 8;
    }
    while (i < n && !esc[(unsigned char)s[i]])
        i++;
    return i;
}

static size_t utf8_len(const unsigned char *u, size_t r)
{
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t k;
    uint32_t v;
    if (!r)
        return 0;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        k = 2;
        v = u[0] & 0x1Fu;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        k = 3;
        v = u[0] & 0x0Fu;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        k = 4;
        v = u[0] & 0x07u;
    } else {
        return 0;
    }
    if (k > r)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((u[i] & 0xC0u) != 0x80u)
            return 0;
        v = (v << 6) | (u[i] & 0x3Fu);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || v < least[k])
        return 0;
    return k;
}

/*
 * Writes n bytes of s quoted and escaped. Returns 0, ERR_NOMEM, or
 * ERR_INVALID at a byte that is not valid UTF-8; b then holds what jansson's
 * dump_string has handed out by that point: the opening quote and the text
 * up to the last escape written (the run after it is not flushed).
 */
static int put_string(sbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Room for the common case, a string with nothing to escape. */
    if (b->cap - b->len <= n + 2 && sbuf_grow(b, n + 2))
        return ERR_NOMEM;
    b->p[b->len++] = '"';
    size_t run = 0, i = 0;
    for (;;) {
        i = plain_run(s, i, n);
        if (i == n)
            break;
        unsigned char c = (unsigned char)s[i];
        char e = esc[c];
        if (e == 1) {
            size_t k = utf8_len((const unsigned char *)s + i, n - i);
            if (!k)
                return ERR_INVALID;
            i += k;
            continue;
        }
        char seq[6] = {'\\', e, '0', '0', hex[c >> 4], hex[c & 15]};
        if (put(b, s + run, i - run) || put(b, seq, e == 'u' ? 6 : 2))
            return ERR_NOMEM;
        run = ++i;
    }
    if (put(b, s + run, n - run) || put1(b, '"'))
        return ERR_NOMEM;
    return 0;
}

/* A member's key and ':'. jansson does not check dump_string's result for
 * keys, so a key that is not valid UTF-8 is left cut short and the member
 * goes on; only ERR_NOMEM is returned. */
static int put_key(sbuf_t *b, const char *key, size_t len)
{
    int rc = put_string(b, key, len);
    if (rc == ERR_INVALID)
        rc = 0;
    return rc ? rc : put1(b, ':');
}

size_t jenc_utf8_len(const char *s, size_t n) { return utf8_len((const unsigned char *)s, n); }

json_t *jenc_string_lossy(const char *s)
{
    size_t n = strlen(s), bad = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        bad += !k;
        i += k ? k : 1;
    }
    if (!bad)
        return json_stringn(s, n);
    /* Each stray byte becomes U+FFFD (3 bytes), as Go's encoder writes it. */
    char *t = mem_alloc(n + 2 * bad + 1);
    if (!t)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(t + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(t + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *v = json_stringn(t, o);
    mem_free(t);
    return v;
}

/* ---- numbers ------------------------------------------------------------------ */

static int put_int(sbuf_t *b, json_int_t v)
{
    char buf[24], *p = buf + sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return put(b, p, (size_t)(buf + sizeof buf - p));
}

/* jansson's jsonp_dtostr with precision 0 (17) and no dtoa, step by step. */
static int put_real(sbuf_t *b, double d)
{
    char buf[100];   /* jansson's MAX_REAL_STR_LENGTH */
    if (!isfinite(d))
        return ERR_INVALID;
    int r = snprintf(buf, sizeof buf, "%.17g", d);
    if (r < 0 || (size_t)r >= sizeof buf)
        return ERR_INVALID;
    size_t len = (size_t)r;
    /* from_locale(): the locale's decimal point (its first byte, as jansson
     * finds it) back to '.'. Only looked up when the text has a byte that
     * "%.17g" writes in no locale whose point is '.'. */
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if ((c < '0' || c > '9') && c != '-' && c != '+' && c != 'e' && c != '.') {
            char one[8];
            snprintf(one, sizeof one, "%#.0f", 1.0);
            char *pt = strchr(buf, one[1]);
            if (pt)
                *pt = '.';
            break;
        }
    }
    /* A dot or an 'e', or the text reads back as an integer. */
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        buf[len++] = '.';
        buf[len++] = '0';
        buf[len] = '\0';
    }
    /* No '+' and no leading zeros in the exponent. */
    char *start = strchr(buf, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf));
            len -= (size_t)(end - start);
        }
    }
    return put(b, buf, len);
}

/* ---- the walk ----------------------------------------------------------------- */

/*
 * Depth first, with the path from the root in a stack of frames (on the C
 * stack up to JENC_FRAMES deep, then on the heap), so that no value is deep
 * enough to overflow the thread's stack.
 *
 * A container that contains itself makes json_dumps fail; jansson finds it
 * by keeping every container on the path in a hash table. Here it costs
 * one comparison per container (Brent's cycle finding along the path): a
 * container is compared with the one ancestor at the largest power-of-two
 * depth above it. A match is a container inside itself; and a cycle makes
 * the walk go round it forever, same path each time, so the saved ancestor
 * soon lies on the loop and is met again within one turn. Where the walk
 * fails does not matter: json_dumps returns nothing at all then.
 */
#define JENC_FRAMES 32

typedef struct frame {
    const json_t *v;      /* the array or object being written */
    const json_t *mark;   /* the saved ancestor its children are compared with */
    void *iter;           /* object: the next member, NULL at the end */
    size_t i, n;          /* members written; array: its size */
    int object;
} frame_t;

static int walk(sbuf_t *b, const json_t *v)
{
    frame_t local[JENC_FRAMES], *st = local;
    size_t cap = JENC_FRAMES, d = 0;   /* frames in use = depth of v */
    int rc = 0;
    for (;;) {
        /* Write v: a scalar whole; a container opened and pushed. */
        if (!v) {
            rc = ERR_INVALID;
            goto out;
        }
        switch (json_typeof(v)) {
        case JSON_OBJECT:
        case JSON_ARRAY: {
            const json_t *mark = d ? st[d - 1].mark : NULL;
            if (v == mark) {
                rc = ERR_INVALID;
                goto out;
            }
            if (d == cap) {
                frame_t *grown = cap <= SIZE_MAX / 2 / sizeof *st
                                     ? mem_alloc(2 * cap * sizeof *st) : NULL;
                if (!grown) {
                    b->oom = 1;   /* as if the buffer had failed: one signal */
                    rc = ERR_NOMEM;
                    goto out;
                }
                memcpy(grown, st, d * sizeof *st);
                if (st != local)
                    mem_free(st);
                st = grown;
                cap *= 2;
            }
            frame_t *f = &st[d];
            f->v = v;
            f->mark = (d & (d - 1)) == 0 ? v : mark;   /* depth 0 or a power of two */
            f->i = 0;
            f->object = json_is_object(v);
            if (f->object) {
                f->iter = json_object_iter((json_t *)v);
                f->n = 0;
            } else {
                f->iter = NULL;
                f->n = json_array_size(v);
            }
            d++;
            rc = put1(b, f->object ? '{' : '[');
            break;
        }
        case JSON_STRING:
            rc = put_string(b, json_string_value(v), json_string_length(v));
            break;
        case JSON_INTEGER:
            rc = put_int(b, json_integer_value(v));
            break;
        case JSON_REAL:
            rc = put_real(b, json_real_value(v));
            break;
        case JSON_TRUE:
            rc = put(b, "true", 4);
            break;
        case JSON_FALSE:
            rc = put(b, "false", 5);
            break;
        case JSON_NULL:
            rc = put(b, "null", 4);
            break;
        default:
            rc = ERR_INVALID;
        }
        if (rc)
            goto out;
        /* The next value: close what is finished, then step to the next
         * member (its key written) or element. */
        for (;;) {
            if (!d)
                goto out;
            frame_t *f = &st[d - 1];
            if (f->object ? !f->iter : f->i == f->n) {
                rc = put1(b, f->object ? '}' : ']');
                if (rc)
                    goto out;
                d--;
                continue;
            }
            if (f->i++) {
                rc = put1(b, ',');
                if (rc)
                    goto out;
            }
            if (f->object) {
                /* As dump.c: the next member is found before the value is written. */
                void *it = f->iter;
                rc = put_key(b, json_object_iter_key(it), json_object_iter_key_len(it));
                if (rc)
                    goto out;
                v = json_object_iter_value(it);
                f->iter = json_object_iter_next((json_t *)f->v, it);
            } else {
                v = json_array_get(f->v, f->i - 1);
            }
            break;
        }
    }
out:
    if (st != local)
        mem_free(st);
    return rc;
}

/* ---- public ------------------------------------------------------------------- */

/* Ends a public call: the NUL on success (put left room for it), the
 * buffer cut back to where it was on failure. */
static int finish(sbuf_t *b, size_t start, int rc)
{
    if (rc)
        sbuf_cut(b, start);
    else
        b->p[b->len] = '\0';
    return rc;
}

int jenc_append_any(sbuf_t *b, const json_t *v)
{
    if (b->oom)
        return ERR_NOMEM;
    size_t start = b->len;
    return finish(b, start, walk(b, v));
}

int jenc_append(sbuf_t *b, const json_t *v)
{
    /* json_dumps without JSON_ENCODE_ANY takes only these. */
    if (!json_is_object(v) && !json_is_array(v))
        return ERR_INVALID;
    return jenc_append_any(b, v);
}

int jenc_append_key(sbuf_t *b, const char *key, size_t len)
{
    if (b->oom)
        return ERR_NOMEM;
    size_t start = b->len;
    return finish(b, start, put_key(b, key, len));
}

int jenc_append_str(sbuf_t *b, const char *s, size_t len)
{
    if (b->oom)
        return ERR_NOMEM;
    size_t start = b->len;
    return finish(b, start, put_string(b, s, len));
}

char *jenc_dumps(const json_t *v, size_t *len)
{
    sbuf_t b = SBUF_INIT;
    if (jenc_append(&b, v)) {
        sbuf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
