/*
 * Fuzzes lib/json/jtok against jansson, differentially: jtok_loadb must give
 * what json_loadb gives (the same value, or NULL with the same error) for
 * flags 0 and JSON_REJECT_DUPLICATES, and jtok_parse must keep its
 * contract (0 exactly where jansson refuses, unless it declines with -1)
 * with a small and a large token array. Any difference aborts.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "../../lib/json/jtok.h"
#include "../../lib/mem.h"
#include "fuzz.h"

#define SMALL_TOKENS 16
#define LARGE_TOKENS (FUZZ_MAX_LEN + 2)   /* more than any input can need */
#define LOOKUPS 64

static jtok_t large[LARGE_TOKENS];

static void check_loadb(const char *text, size_t len, size_t flags)
{
    json_error_t we, ge;
    json_t *want = json_loadb(text, len, flags, &we);
    json_t *got = jtok_loadb(text, len, flags, &ge);
    if (!want || !got) {
        FUZZ_CHECK(!want && !got);
        FUZZ_CHECK(!strcmp(we.text, ge.text) && !strcmp(we.source, ge.source));
        FUZZ_CHECK(we.line == ge.line && we.column == ge.column && we.position == ge.position);
    } else {
        FUZZ_CHECK(json_equal(want, got));
    }
    json_decref(want);
    json_decref(got);
}

/* The tokens of a parse that succeeded: every subtree inside its parent,
 * sizes that count the children, keys that are strings, and the spans
 * inside the text. */
static void check_tokens(const jtok_t *t, int n, size_t len)
{
    FUZZ_CHECK(t[0].next == (uint32_t)n);
    FUZZ_CHECK(t[0].type == JTOK_OBJECT || t[0].type == JTOK_ARRAY);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(t[i].type >= JTOK_OBJECT && t[i].type <= JTOK_NULL);
        FUZZ_CHECK((size_t)t[i].start + t[i].len <= len);
        FUZZ_CHECK(t[i].next > (uint32_t)i && t[i].next <= (uint32_t)n);
        if (t[i].type != JTOK_OBJECT && t[i].type != JTOK_ARRAY) {
            FUZZ_CHECK(t[i].next == (uint32_t)i + 1);
            continue;
        }
        uint32_t children = 0, c = (uint32_t)i + 1;
        for (; c < t[i].next; c = t[c].next, children++) {
            if (t[i].type == JTOK_OBJECT && children % 2 == 0)
                FUZZ_CHECK(t[c].type == JTOK_STRING);
            FUZZ_CHECK(t[c].next <= t[i].next);
        }
        FUZZ_CHECK(c == t[i].next);
        FUZZ_CHECK(children == (t[i].type == JTOK_OBJECT ? 2 * t[i].size : t[i].size));
    }
}

/* jtok_get finds each member of the root object as jansson has it (the
 * last of repeated keys), and jtok_item each item of the root array; the
 * first LOOKUPS of each, as both walk the container (O(n) a call). */
static void check_lookups(const char *text, const json_t *want)
{
    const char *key;
    const json_t *v;
    size_t i = 0;
    json_object_foreach((json_t *)want, key, v) {
        if (i++ == LOOKUPS)
            break;
        json_t *got = jtok_value(text, large, jtok_get(text, large, 0, key));
        FUZZ_CHECK(got && json_equal(v, got));
        json_decref(got);
    }
    json_array_foreach(want, i, v) {
        if (i == LOOKUPS)
            break;
        json_t *got = jtok_value(text, large, jtok_item(large, 0, (uint32_t)i));
        FUZZ_CHECK(got && json_equal(v, got));
        json_decref(got);
    }
    if (json_is_array(want))
        FUZZ_CHECK(jtok_item(large, 0, (uint32_t)json_array_size(want)) < 0);
}

static void check_parse(const char *text, size_t len)
{
    json_t *want = json_loadb(text, len, 0, NULL);
    int n = jtok_parse(text, len, large, LARGE_TOKENS);
    jtok_t small[SMALL_TOKENS];
    int m = jtok_parse(text, len, small, SMALL_TOKENS);

    if (!want) {
        /* Refused by jansson: refused (0) or declined (-1), never tokens. */
        FUZZ_CHECK(n <= 0 && m <= 0);
        return;
    }
    /* Accepted by jansson: tokens, or declined for depth (-1). One known
     * exception: jansson skips a NUL byte that ends a number or a literal
     * (its reader puts the byte back, then takes the NUL for an empty
     * buffer), so it accepts "[1\0]", which jtok refuses; every caller
     * of jtok_parse then decodes with jansson, so only the speed differs. */
    FUZZ_CHECK((n != 0 && m != 0) || memchr(text, '\0', len));
    FUZZ_CHECK(m < 0 || m == n);
    if (n > 0) {
        check_tokens(large, n, len);
        json_t *got = jtok_value(text, large, 0);
        FUZZ_CHECK(got && json_equal(want, got));
        json_decref(got);
        check_lookups(text, want);
    }
    json_decref(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > FUZZ_MAX_LEN)
        return 0;
    const char *text = (const char *)data;
    check_loadb(text, size, 0);
    check_loadb(text, size, JSON_REJECT_DUPLICATES);
    check_parse(text, size);
    return 0;
}
