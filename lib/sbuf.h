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
/* Makes room for n more bytes and the NUL after them: on success
 * b->cap - b->len > n, so a writer may fill p + len directly (and then
 * must advance len and write the NUL itself). Returns 0, or ERR_NOMEM with
 * oom set (also when oom was already set). */
int sbuf_grow(sbuf_t *b, size_t n);
/* Shortens to len bytes (no-op when longer than the content). */
void sbuf_cut(sbuf_t *b, size_t len);
/* Frees the buffer and empties b. */
void sbuf_free(sbuf_t *b);

#endif
