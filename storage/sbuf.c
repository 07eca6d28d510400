#include "sbuf.h"

#include <string.h>

#include "mem.h"

void sbuf_put(sbuf_t *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = mem_realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
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
