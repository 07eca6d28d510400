/*
 * quote: Go's strconv.Quote. See quote.h.
 */
#include "quote.h"

#include <string.h>

/* The length of the valid UTF-8 sequence at s (n bytes left) and its rune,
 * or 0 when the bytes there are not one (overlong forms, surrogates and
 * runes past U+10FFFF are invalid, as Go's utf8.DecodeRune says). */
static size_t utf8_rune(const unsigned char *s, size_t n, unsigned *rune)
{
    unsigned c = s[0];
    size_t len;
    unsigned r, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, r = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, r = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, r = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        r = r << 6 | (s[i] & 0x3f);
    }
    if (r < min || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
        return 0;
    *rune = r;
    return len;
}

/* The escape of one rune Go would not print, into e; 0 when it prints. */
static size_t rune_escape(unsigned r, char e[7])
{
    static const char hex[] = "0123456789abcdef";
    if (!((r >= 0x80 && r <= 0x9f) || r == 0xad || r == 0x2028 || r == 0x2029))
        return 0;
    e[0] = '\\', e[1] = 'u';
    for (int i = 0; i < 4; i++)
        e[2 + i] = hex[(r >> (12 - 4 * i)) & 15];
    return 6;
}

/* The next piece of the quoted form, for the bytes at s (n left): writes
 * it to piece (at most 7 bytes, or points *raw at the input for runes that
 * pass through) and returns how many input bytes it stands for. */
static size_t next_piece(const unsigned char *s, size_t n, char piece[7], size_t *plen,
                         const char **raw)
{
    static const char hex[] = "0123456789abcdef";
    static const char from[] = "\a\b\f\n\r\t\v\"\\";
    static const char to[] = "abfnrtv\"\\";
    unsigned c = s[0];
    *raw = NULL;
    if (c < 0x80) {
        const char *e = c ? strchr(from, (int)c) : NULL;
        if (e) {
            piece[0] = '\\', piece[1] = to[e - from], *plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            piece[0] = '\\', piece[1] = 'x', piece[2] = hex[c >> 4], piece[3] = hex[c & 15];
            *plen = 4;
        } else {
            piece[0] = (char)c, *plen = 1;
        }
        return 1;
    }
    unsigned r;
    size_t len = utf8_rune(s, n, &r);
    if (!len) {
        piece[0] = '\\', piece[1] = 'x', piece[2] = hex[c >> 4], piece[3] = hex[c & 15];
        *plen = 4;
        return 1;
    }
    *plen = rune_escape(r, piece);
    if (!*plen) {
        *raw = (const char *)s;
        *plen = len;
    }
    return len;
}

/* Appends len bytes to dst while they fit whole (a cut result ends at a
 * whole piece); counts them either way. */
static void put_piece(char *dst, size_t cap, size_t *w, size_t *out, int *cut, const char *p,
                      size_t len)
{
    if (!*cut && *w + len < cap) {
        memcpy(dst + *w, p, len);
        *w += len;
    } else {
        *cut = 1;
    }
    *out += len;
}

size_t quote_go(char *dst, size_t cap, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t out = 0, w = 0;
    int cut = 0;
    put_piece(dst, cap, &w, &out, &cut, "\"", 1);
    for (size_t i = 0; i < n;) {
        char piece[7];
        size_t plen;
        const char *raw;
        i += next_piece(u + i, n - i, piece, &plen, &raw);
        put_piece(dst, cap, &w, &out, &cut, raw ? raw : piece, plen);
    }
    put_piece(dst, cap, &w, &out, &cut, "\"", 1);
    if (cap)
        dst[w] = '\0';
    return out;
}

void quote_go_sb(sbuf_t *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    sbuf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        char piece[7];
        size_t plen;
        const char *raw;
        i += next_piece(u + i, n - i, piece, &plen, &raw);
        sbuf_put(b, raw ? raw : piece, plen);
    }
    sbuf_putc(b, '"');
}
