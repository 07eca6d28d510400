/*
 * mem: the one pair of allocation functions every module uses.
 *
 * Owns nothing but a few counters: routing malloc/free (and jansson's
 * allocator, see mem_init) through here lets a test make the N-th
 * allocation fail (and every later one, or that one alone) and check that
 * the code under test returns ERR_NOMEM cleanly and leaks nothing
 * (AddressSanitizer's leak check does the second half).
 *
 * Sizes a client controls must be capped by the caller before they get here.
 * All functions are thread-safe.
 */
#ifndef EDGE_MEM_H
#define EDGE_MEM_H

#include <stddef.h>

/* Routes jansson's allocations through mem_alloc/mem_free. Call once at
 * start, before any JSON value exists. */
void mem_init(void);

/* malloc/calloc/realloc/free work-alikes; NULL on failure (or injected
 * failure). mem_free(NULL) is a no-op. */
void *mem_alloc(size_t n);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);

/* Copies of a string / n bytes plus a NUL; caller owns, NULL on failure. */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);

/* Tests only: after `n` more successful allocations, every allocation fails
 * (until mem_fail_after(-1)). */
void mem_fail_after(long n);

/* Tests only: the n-th allocation from now (n >= 1) fails and every other
 * one succeeds, as a transient shortage would; 0 cancels. Independent of
 * mem_fail_after. Shows a caller that ignores a failure and carries on. */
void mem_fail_nth(long n);

/* How many allocations have failed so far, injected or not. A test can
 * tell whether its fault was reached; a caller whose library hides why it
 * failed (jansson's decoder reports running out of memory as a syntax
 * error) can compare it before and after the call. Other threads' failures
 * count too, so a change only says that memory may have run out. */
unsigned long mem_failures(void);

#endif
