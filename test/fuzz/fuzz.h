/*
 * What the fuzz targets share: the input bound, one-time set-up, and the
 * check that turns a broken property into a crash libFuzzer (or replay.c)
 * reports, with the condition that failed.
 */
#ifndef EDGE_FUZZ_H
#define EDGE_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#include "../../lib/mem.h"

/* Inputs above this return at once: the server caps bodies and query
 * strings well below it, and big inputs only slow the search down. */
#define FUZZ_MAX_LEN (64 * 1024)

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

static inline void fuzz_fail(const char *file, int line, const char *cond)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, cond);
    abort();
}

/* Routes jansson through mem, as main() does in the server and the unit
 * tests; once per process (libFuzzer has no other hook we rely on). */
static inline void fuzz_init(void)
{
    static int ready;
    if (!ready) {
        mem_init();
        ready = 1;
    }
}

#endif
