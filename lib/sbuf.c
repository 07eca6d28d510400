#include "sbuf.h"

#include <stdint.h>
#include <string.h>

#include "err.h"
#include "mem.h"

int sbuf_grow(sbuf_t *b, size_t n)
{
    if (b->oom)
        return ERR_NOMEM;
    if (b->cap - b->len > n)
        return 0;
    if (n > SIZE_MAX / 4 - b->len) {
        b->oom = 1;
        return ERR_NOMEM;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = mem_realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return ERR_NOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void sbuf_put(sbuf_t *b, const void *s, size_t n)
{
    if (sbuf_grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sbuf_puts(sbuf_t *b, const char *s) { sbuf_put(b, s, strlen(s)); }
void sbuf_putc(sbuf_t *b, char c) { sbuf_put(b, &c, 1); }

void sbuf_cut(sbuf_t *b, size_t len)
{
    if (b->p && len <= b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

void sbuf_free(sbuf_t *b)
{
    mem_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
