#include "b64.h"

#include "err.h"
#include "mem.h"

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *b64_encode(const void *src, size_t n, b64_alphabet_t a)
{
    const unsigned char *s = src;
    const char *tab = a == B64_STD ? b64_std : b64_url;
    char *out = mem_alloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = tab[v >> 6 & 63];
        else if (a == B64_STD)
            *o++ = '=';
        if (a == B64_STD)
            *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c, b64_alphabet_t a)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (a == B64_STD)
        return c == '+' ? 62 : c == '/' ? 63 : -1;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int b64_decode(const char *src, size_t len, b64_alphabet_t a,
               unsigned char **out, size_t *outn)
{
    while (len > 0 && src[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return ERR_BAD_REQUEST;
    unsigned char *buf = mem_alloc(len / 4 * 3 + 3);
    if (!buf)
        return ERR_NOMEM;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(src[i], a);
        if (v < 0) {
            mem_free(buf);
            return ERR_BAD_REQUEST;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    buf[n] = '\0';
    *out = buf;
    *outn = n;
    return 0;
}
