/*
 * mem: the one pair of allocation functions every module uses.
 *
 * Owns nothing but two counters per thread (a failure budget and a count
 * of failures) and the same two for the process: routing malloc/free (and jansson's allocator, see
 * mem_init) through here lets a test make the N-th allocation fail and
 * check that the code under test returns ERR_NOMEM cleanly and leaks
 * nothing (AddressSanitizer's leak check does the second half).
 *
 * Sizes a client controls must be capped by the caller before they get here.
 * All functions are thread-safe; the failure budget (mem_fail_after) is
 * per thread.
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

/* How many allocations have failed on the calling thread so far, injected
 * or not. A caller compares it before and after a call whose error does
 * not say why it failed (jansson's decoder can report running out of
 * memory as bad input) to tell ERR_NOMEM from a refusal. */
unsigned long mem_failures(void);

/* Tests only: after `n` more successful allocations by the calling thread,
 * every allocation by that thread fails (until mem_fail_after(-1), which
 * any negative n means). Other threads keep their own budgets (unlimited
 * unless they set one), so background threads neither spend this one nor
 * fail because of it. */
void mem_fail_after(long n);

/* Tests only: as mem_fail_after, but only the one allocation after the n
 * successful ones fails; later ones succeed again. Finds a failure that is
 * ignored, which later failures would otherwise hide. mem_fail_after(-1)
 * cancels it; mem_failures() tells whether it has happened. */
void mem_fail_once(long n);

/* Tests only: every thread's allocations spend one shared budget: after n
 * more successful allocations anywhere in the process, every allocation
 * fails (until a negative n). For a test that must fault a background
 * thread it holds still (the authorizer's follower); the calling thread's
 * own budget applies first. */
void mem_fail_everywhere(long n);
/* Every thread's failures so far: whether a fault set with
 * mem_fail_everywhere was reached. */
unsigned long mem_failures_everywhere(void);

#endif
