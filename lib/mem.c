#include "mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Allocations this thread may still make; -1: unlimited. Per thread, so a
 * test's budget is spent by the code it calls, never by a background
 * thread (a store's writer or compactor) that happens to run meanwhile. */
static _Thread_local long mem_budget = -1;

static int mem_should_fail(void)
{
    if (mem_budget < 0)
        return 0;
    if (mem_budget == 0)
        return 1;
    mem_budget--;
    return 0;
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

void mem_fail_after(long n) { mem_budget = n < 0 ? -1 : n; }

void mem_init(void) { json_set_alloc_funcs(mem_alloc, mem_free); }
