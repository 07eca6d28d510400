#include "mem.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long mem_budget = -1;  /* allocations left; -1: unlimited */

static int mem_should_fail(void)
{
    long b = atomic_load_explicit(&mem_budget, memory_order_relaxed);
    if (b < 0)
        return 0;
    while (b > 0) {
        if (atomic_compare_exchange_weak(&mem_budget, &b, b - 1))
            return 0;
    }
    return b == 0;
}

void *mem_alloc(size_t n)
{
    if (mem_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *mem_calloc(size_t n, size_t size)
{
    if (mem_should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *mem_realloc(void *p, size_t n)
{
    if (mem_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
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

void mem_init(void) { json_set_alloc_funcs(mem_alloc, mem_free); }
