#include "mem.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long mem_budget = -1;  /* allocations left; -1: unlimited */
static atomic_long mem_nth = 0;      /* allocations until the one that fails; 0: none */
static atomic_ulong mem_failed = 0;  /* failures so far, injected or not */

static int mem_should_fail(void)
{
    long b = atomic_load_explicit(&mem_budget, memory_order_relaxed);
    while (b > 0) {
        if (atomic_compare_exchange_weak(&mem_budget, &b, b - 1))
            break;
    }
    if (b == 0) {
        atomic_fetch_add(&mem_failed, 1);
        return 1;
    }
    long k = atomic_load_explicit(&mem_nth, memory_order_relaxed);
    while (k > 0) {
        if (atomic_compare_exchange_weak(&mem_nth, &k, k - 1)) {
            if (k > 1)
                return 0;
            atomic_fetch_add(&mem_failed, 1);
            return 1;
        }
    }
    return 0;
}

/* p, counting a failure when it is NULL. */
static void *mem_counted(void *p)
{
    if (!p)
        atomic_fetch_add(&mem_failed, 1);
    return p;
}

void *mem_alloc(size_t n)
{
    if (mem_should_fail())
        return NULL;
    return mem_counted(malloc(n ? n : 1));
}

void *mem_calloc(size_t n, size_t size)
{
    if (mem_should_fail())
        return NULL;
    return mem_counted(calloc(n ? n : 1, size ? size : 1));
}

void *mem_realloc(void *p, size_t n)
{
    if (mem_should_fail())
        return NULL;
    return mem_counted(realloc(p, n ? n : 1));
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

void mem_fail_after(long n) { atomic_store(&mem_budget, n); }

void mem_fail_nth(long n) { atomic_store(&mem_nth, n > 0 ? n : 0); }

unsigned long mem_failures(void) { return atomic_load(&mem_failed); }

void mem_init(void) { json_set_alloc_funcs(mem_alloc, mem_free); }
