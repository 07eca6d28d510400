#include "mem.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Allocations this thread may still make; -1: unlimited. Per thread, so a
 * test's budget is spent by the code it calls, never by a background
 * thread (a store's writer or compactor) that happens to run meanwhile. */
static _Thread_local long mem_budget = -1;
static _Thread_local int mem_once;  /* the budget's end fails one, not all */
/* Allocations that failed on this thread (injected or not). */
static _Thread_local unsigned long mem_failed;
/* The budget shared by every thread (mem_fail_everywhere), and every
 * thread's failures. */
static atomic_long mem_all_budget = -1;
static atomic_ulong mem_all_failed;

static int mem_should_fail(void)
{
    if (mem_budget == 0) {
        if (mem_once)
            mem_budget = -1;
        return 1;
    }
    if (mem_budget > 0)
        mem_budget--;
    long b = atomic_load_explicit(&mem_all_budget, memory_order_relaxed);
    while (b > 0 && !atomic_compare_exchange_weak(&mem_all_budget, &b, b - 1))
        ;
    return b == 0;
}

static void *mem_counted(void *p)
{
    if (!p) {
        mem_failed++;
        atomic_fetch_add_explicit(&mem_all_failed, 1, memory_order_relaxed);
    }
    return p;
}

void *mem_alloc(size_t n)
{
    return mem_counted(mem_should_fail() ? NULL : malloc(n ? n : 1));
}

void *mem_calloc(size_t n, size_t size)
{
    return mem_counted(mem_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1));
}

void *mem_realloc(void *p, size_t n)
{
    return mem_counted(mem_should_fail() ? NULL : realloc(p, n ? n : 1));
}

void mem_free(void *p) { free(p); }

char *mem_strndup(const char *s, size_t n)
{
    char *d = mem_alloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mem_strdup(const char *s) { return mem_strndup(s, strlen(s)); }

unsigned long mem_failures(void) { return mem_failed; }

unsigned long mem_failures_everywhere(void) { return atomic_load(&mem_all_failed); }

void mem_fail_after(long n)
{
    mem_budget = n < 0 ? -1 : n;
    mem_once = 0;
}

void mem_fail_once(long n)
{
    mem_budget = n < 0 ? -1 : n;
    mem_once = 1;
}

void mem_fail_everywhere(long n) { atomic_store(&mem_all_budget, n < 0 ? -1 : n); }

void mem_init(void) { json_set_alloc_funcs(mem_alloc, mem_free); }
