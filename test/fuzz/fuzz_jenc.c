/*
 * Fuzzes lib/json/jenc against jansson, differentially: for any value
 * json_loadb builds from the input, jenc_dumps must write exactly the bytes
 * of json_dumps(v, JSON_COMPACT) (or fail where it returns NULL), and
 * jenc_append_any those of JSON_COMPACT | JSON_ENCODE_ANY. The raw bytes
 * are also set, unchecked, as a key and a string value, for the paths
 * (invalid UTF-8, embedded NULs) json_loadb never produces. Any difference
 * aborts.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "../../lib/err.h"
#include "../../lib/json/jenc.h"
#include "../../lib/mem.h"
#include "../../lib/sbuf.h"
#include "fuzz.h"

/* got (len bytes, or NULL) is want (NUL-terminated, or NULL). */
static void check_same(const char *got, size_t len, const char *want)
{
    if (!got || !want) {
        FUZZ_CHECK(!got && !want);
        return;
    }
    FUZZ_CHECK(len == strlen(want) && !memcmp(got, want, len));
}

static void check_value(const json_t *v)
{
    size_t len = 0;
    char *got = jenc_dumps(v, &len);
    char *want = json_dumps(v, JSON_COMPACT);
    check_same(got, len, want);
    mem_free(got);
    mem_free(want);

    /* Appending after what a buffer holds, and cutting back on failure. */
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "[");
    int rc = jenc_append_any(&b, v);
    want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    FUZZ_CHECK(rc == 0 || rc == ERR_INVALID);
    FUZZ_CHECK(!b.oom && b.p && b.p[0] == '[' && b.p[b.len] == '\0');
    check_same(rc ? NULL : b.p + 1, b.len - 1, want);
    FUZZ_CHECK(!rc || b.len == 1);
    mem_free(want);
    sbuf_free(&b);
}

/* The bytes as an unchecked key and an unchecked string, alone and in
 * containers; jenc_append_key and jenc_append_str as json_dumps writes a
 * key and a string value. */
static void check_raw(const char *s, size_t n)
{
    json_t *str = json_stringn_nocheck(s, n);
    json_t *obj = json_object(), *arr = json_array();
    FUZZ_CHECK(str && obj && arr);
    FUZZ_CHECK(json_object_setn_nocheck(obj, s, n, str) == 0);
    FUZZ_CHECK(json_array_append(arr, str) == 0 && json_array_append(arr, obj) == 0);
    check_value(str);
    check_value(obj);
    check_value(arr);

    /* {key:null} is "{" key ":null}" when written. */
    json_t *kobj = json_object();
    FUZZ_CHECK(kobj && json_object_setn_new_nocheck(kobj, s, n, json_null()) == 0);
    char *want = json_dumps(kobj, JSON_COMPACT);
    sbuf_t b = SBUF_INIT;
    FUZZ_CHECK(want && jenc_append_key(&b, s, n) == 0 && b.p[b.len] == '\0');
    size_t wlen = strlen(want);
    FUZZ_CHECK(wlen == b.len + 6 && !memcmp(want + 1, b.p, b.len));
    mem_free(want);
    sbuf_free(&b);

    want = json_dumps(str, JSON_COMPACT | JSON_ENCODE_ANY);
    sbuf_t sb = SBUF_INIT;
    int rc = jenc_append_str(&sb, s, n);
    FUZZ_CHECK(rc == 0 || rc == ERR_INVALID);
    /* sbuf.h: the buffer is always NUL-terminated. */
    FUZZ_CHECK(!sb.p || sb.p[sb.len] == '\0');
    check_same(rc ? NULL : sb.p, sb.len, want);
    FUZZ_CHECK(!rc || sb.len == 0);
    mem_free(want);
    sbuf_free(&sb);

    json_decref(kobj);
    json_decref(arr);
    json_decref(obj);
    json_decref(str);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > FUZZ_MAX_LEN)
        return 0;
    const char *text = (const char *)data;
    json_t *v = json_loadb(text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v)
        check_value(v);
    json_decref(v);
    check_raw(text, size);
    return 0;
}
