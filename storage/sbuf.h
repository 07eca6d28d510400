/*
 * sbuf: a growable byte string (after git's strbuf). Owns its buffer,
 * which is always NUL-terminated when non-NULL. An allocation failure
 * sets oom and turns later appends into no-ops, so builders check once at
 * the end. Not thread-safe (one owner).
 */
#ifndef EDGE_SBUF_H
#define EDGE_SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf_t;

#define SBUF_INIT {NULL, 0, 0, 0}

void sbuf_put(sbuf_t *b, const void *s, size_t n);
void sbuf_puts(sbuf_t *b, const char *s);
void sbuf_putc(sbuf_t *b, char c);
/* Shortens to len bytes (no-op when longer than the content). */
void sbuf_cut(sbuf_t *b, size_t len);
/* Frees the buffer and empties b. */
void sbuf_free(sbuf_t *b);

#endif
