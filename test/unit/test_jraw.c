/* Unit tests of storage/jraw: member spans of JSON object texts, checked
 * against jansson as the oracle. Every text is copied into a heap buffer
 * of exactly its length, so AddressSanitizer reports any read past it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../storage/err.h"
#include "../../storage/jraw.h"
#include "../../storage/mem.h"

/* text[0..len) in a buffer of exactly len bytes (caller frees). */
static char *exact(const char *text, size_t len)
{
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    memcpy(b, text, len);
    return b;
}

/* Checks one lookup against jansson: malformed exactly when jansson
 * refuses the text; a span that decodes to what json_object_get finds;
 * absent exactly when json_object_get finds nothing. */
static int lookup_checked(const char *text, size_t len, const char *key, const char **val,
                          size_t *val_len)
{
    char *b = exact(text, len);
    int rc = jraw_member(b, len, key, val, val_len);
    json_t *doc = json_loadb(b, len, JSON_DECODE_ANY, NULL);
    if ((rc == ERR_BAD_REQUEST) != (doc == NULL))
        fail_msg("%.*s: jraw %s, jansson %s", (int)len, text, err_name(rc),
                 doc ? "decodes it" : "does not");
    if (rc == ERR_INVALID)
        assert_false(json_is_object(doc));
    if (rc == ERR_NOT_FOUND) {
        assert_true(json_is_object(doc));
        assert_null(json_object_get(doc, key));
    }
    if (rc == 0) {
        assert_true(*val >= b && *val + *val_len <= b + len);
        json_t *v = json_loadb(*val, *val_len, JSON_DECODE_ANY, NULL);
        if (!json_equal(v, json_object_get(doc, key)))
            fail_msg("%.*s: member %s is %.*s, not what jansson finds", (int)len, text, key,
                     (int)*val_len, *val);
        json_decref(v);
        /* point into the caller's text, not the copy */
        *val = text + (*val - b);
    } else {
        assert_null(*val);
        assert_int_equal(*val_len, 0);
    }
    json_decref(doc);
    free(b);
    return rc;
}

typedef struct row {
    const char *text;
    const char *key;
    int rc;
    const char *want;            /* the member's text when rc is 0 */
} row_t;

static const row_t rows[] = {
    /* found, in any position, whatever the value */
    {"{\"a\":1}", "a", 0, "1"},
    {"{\"a\":1,\"b\":\"x\",\"c\":null}", "b", 0, "\"x\""},
    {"{\"a\":1,\"b\":\"x\",\"c\":null}", "c", 0, "null"},
    {"{\"a\":true,\"b\":false}", "b", 0, "false"},
    {"{\"a\":-0.5e+3,\"b\":0}", "a", 0, "-0.5e+3"},
    {"{\"m\":{\"x\":{\"y\":[1,{\"z\":[]}]},\"e\":{}},\"s\":2}", "m", 0,
     "{\"x\":{\"y\":[1,{\"z\":[]}]},\"e\":{}}"},
    {"{\"m\":[[],[[]],{\"a\":[{}]}],\"s\":2}", "m", 0, "[[],[[]],{\"a\":[{}]}]"},
    {"{\"m\":[],\"s\":{}}", "s", 0, "{}"},
    /* strings that look like structure */
    {"{\"a\":\"}\\\"{,]\",\"b\":1}", "a", 0, "\"}\\\"{,]\""},
    {"{\"a\":\"\\\\\",\"b\":\"\\\\\\\"\"}", "b", 0, "\"\\\\\\\"\""},
    {"{\"a\":\"x\\\\\",\"b\":2}", "b", 0, "2"},
    {"{\"a\":\"\\/\\b\\f\\n\\r\\t\",\"b\":2}", "a", 0, "\"\\/\\b\\f\\n\\r\\t\""},
    {"{\"a\":\"\\u00e9\\u20AC\\ud83d\\ude00\",\"b\":2}", "a", 0, "\"\\u00e9\\u20AC\\ud83d\\ude00\""},
    {"{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "a", 0,
     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
    {"{\"a\":\"\x7f\"}", "a", 0, "\"\x7f\""},
    /* whitespace anywhere between tokens */
    {" \t\r\n{ \"a\" : [ 1 , { \"b\" : 2 } ] , \"c\"\n:\n3 }\n ", "a", 0, "[ 1 , { \"b\" : 2 } ]"},
    {" \t\r\n{ \"a\" : [ 1 , { \"b\" : 2 } ] , \"c\"\n:\n3 }\n ", "c", 0, "3"},
    /* absent; keys of nested objects are not members */
    {"{}", "a", ERR_NOT_FOUND, NULL},
    {"{\"ab\":1,\"b\":2}", "a", ERR_NOT_FOUND, NULL},
    {"{\"a\":1}", "ab", ERR_NOT_FOUND, NULL},
    {"{\"a\":1}", "", ERR_NOT_FOUND, NULL},
    {"{\"\":1}", "", 0, "1"},
    {"{\"x\":{\"name\":\"n\"},\"y\":[{\"name\":1}]}", "name", ERR_NOT_FOUND, NULL},
    {"{\"x\":\"\\\"name\\\":1\"}", "name", ERR_NOT_FOUND, NULL},
    {"{\"x\":{\"name\":\"n\"},\"name\":\"top\"}", "name", 0, "\"top\""},
    /* a repeated key: the last, as jansson keeps it */
    {"{\"a\":1,\"b\":2,\"a\":{\"c\":3}}", "a", 0, "{\"c\":3}"},
    /* keys compare decoded */
    {"{\"na\\u006de\":\"x\"}", "name", 0, "\"x\""},
    {"{\"n\\u0061me\":1,\"name\":2}", "name", 0, "2"},
    {"{\"name\":1,\"n\\u0061me\":2}", "name", 0, "2"},
    {"{\"caf\\u00e9\":1}", "caf\xc3\xa9", 0, "1"},
    {"{\"caf\xc3\xa9\":1}", "caf\xc3\xa9", 0, "1"},
    {"{\"\\ud83d\\ude00\":1}", "\xf0\x9f\x98\x80", 0, "1"},
    {"{\"a\\\"b\":1}", "a\"b", 0, "1"},
    {"{\"a\\/b\":1}", "a/b", 0, "1"},
    {"{\"a\\\\\":1}", "a\\", 0, "1"},
    {"{\"nam\\u0065x\":1}", "name", ERR_NOT_FOUND, NULL},
    {"{\"n\\u0061m\":1}", "name", ERR_NOT_FOUND, NULL},
    /* well-formed, but not an object */
    {"[]", "a", ERR_INVALID, NULL},
    {"[{\"a\":1}]", "a", ERR_INVALID, NULL},
    {"\"a\"", "a", ERR_INVALID, NULL},
    {" 12 ", "a", ERR_INVALID, NULL},
    {"null", "a", ERR_INVALID, NULL},
    /* numbers: jansson's grammar and range */
    {"{\"a\":9223372036854775807}", "a", 0, "9223372036854775807"},
    {"{\"a\":-9223372036854775808}", "a", 0, "-9223372036854775808"},
    {"{\"a\":9223372036854775808}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":-9223372036854775809}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":12345678901234567890123}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":12345678901234567890123.5}", "a", 0, "12345678901234567890123.5"},
    {"{\"a\":1.7976931348623157e308}", "a", 0, "1.7976931348623157e308"},
    {"{\"a\":1e308}", "a", 0, "1e308"},
    {"{\"a\":0.1e309}", "a", 0, "0.1e309"},
    {"{\"a\":1.8e308}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":-1e309}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1e99999999999999999999}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":0e99999999999999999999}", "a", 0, "0e99999999999999999999"},
    {"{\"a\":1e-99999999999999999999}", "a", 0, "1e-99999999999999999999"},
    {"{\"a\":1E5}", "a", 0, "1E5"},
    {"{\"a\":-0}", "a", 0, "-0"},
    {"{\"a\":01}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":-01}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1.}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":.5}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":+1}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":-}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1e}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1e+}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1.5.3}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":0x10}", "a", ERR_BAD_REQUEST, NULL},
    /* malformed anywhere, even after the member looked for */
    {"", "a", ERR_BAD_REQUEST, NULL},
    {"   ", "a", ERR_BAD_REQUEST, NULL},
    {"{", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"b\":[1,]}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"b\":[1 2]}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"b\":{\"c\"}}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"b\":{1:2}}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"b\":[}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"b\":{]}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\" 1}", "a", ERR_BAD_REQUEST, NULL},
    {"{a:1}", "a", ERR_BAD_REQUEST, NULL},
    {"{'a':1}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1}}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1} x", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1}{}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":tru}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":truex}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":True}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":nul}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"x}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"x\\\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\x\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\u12\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\u12g4\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\u0000\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\ud83d\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\ud83dx\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\ud83d\\u0041\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\\ude00\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"tab\there\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"line\nbreak\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\x80\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\xc0\xaf\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\xc3\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\xe0\x80\xaf\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\xed\xa0\x80\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\xf4\x90\x80\x80\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":\"\xff\"}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1,\"\xff\":2}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"a\":1}\xc2\xa0", "a", ERR_BAD_REQUEST, NULL},
    {"\xef\xbb\xbf{\"a\":1}", "a", ERR_BAD_REQUEST, NULL},
    {"{\"\\u0000\":1}", "a", ERR_BAD_REQUEST, NULL},
    {"[1,]", "a", ERR_BAD_REQUEST, NULL},
    {"\"a", "a", ERR_BAD_REQUEST, NULL},
    {"1 2", "a", ERR_BAD_REQUEST, NULL},
};

static void test_jraw__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row_t *r = &rows[i];
        const char *val = NULL;
        size_t len = 0;
        int rc = lookup_checked(r->text, strlen(r->text), r->key, &val, &len);
        if (rc != r->rc)
            fail_msg("row %zu (%s, key %s): %s, want %s", i, r->text, r->key, err_name(rc),
                     err_name(r->rc));
        if (r->want && (len != strlen(r->want) || memcmp(val, r->want, len)))
            fail_msg("row %zu (%s, key %s): got %.*s, want %s", i, r->text, r->key, (int)len,
                     val, r->want);
    }
}

/* A NUL byte is malformed wherever it is. (jansson lets one pass right
 * after a number or a literal, which its reader takes back and then skips;
 * jraw is stricter there, so the oracle is not asked.) */
static void test_jraw__nul_bytes(void **state)
{
    (void)state;
    static const struct { const char *text; size_t len; } bad[] = {
        {"{\"a\":\"x\0y\"}", 11}, {"{\"a\":1}\0", 8}, {"{\"a\":1\0}", 8},
        {"{\"a\":true\0}", 11}, {"\0{}", 3}, {"{\"a\0\":1}", 9},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *val;
        size_t len;
        char *b = exact(bad[i].text, bad[i].len);
        assert_int_equal(jraw_member(b, bad[i].len, "a", &val, &len), ERR_BAD_REQUEST);
        free(b);
    }
    /* Only len bytes are read: what follows is not part of the text. */
    const char *val;
    size_t len;
    assert_int_equal(jraw_member("{\"a\":1}garbage", 7, "a", &val, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(jraw_member(NULL, 0, "a", &val, &len), ERR_BAD_REQUEST);
}

/* A stored object as the server writes it. */
static const char stored[] =
    "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\",\"metadata\":"
    "{\"name\":\"alice-ws1\",\"uid\":\"6f1c2a9e-0000-4000-8000-000000000001\",\"generation\":1,"
    "\"labels\":{\"iam.theriseunion.io/role\":\"viewer\"},\"annotations\":{\"kubectl.kubernetes.io/"
    "last-applied-configuration\":\"{\\\"metadata\\\":{\\\"name\\\":\\\"x\\\"},\\\"spec\\\":{}}\\n\"},"
    "\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Apply\",\"fieldsType\":\"FieldsV1\","
    "\"fieldsV1\":{\"f:spec\":{\"f:subjects\":{},\"f:scope\":{\".\":{},\"f:level\":{}}}},"
    "\"time\":\"2026-01-15T10:00:00Z\"}],\"creationTimestamp\":\"2026-01-15T10:00:00Z\"},"
    "\"spec\":{\"roleRef\":{\"name\":\"viewer\"},\"subjects\":[{\"kind\":\"User\",\"name\":"
    "\"al\\u00efce \\\"a\\\"\"}],\"scope\":{\"level\":\"Workspace\",\"name\":\"ws1\",\"n\":-1.5e-3}},"
    "\"status\":{\"x\":[true,false,null]}}";

static void test_jraw__several_members(void **state)
{
    (void)state;
    const char *keys[] = {"spec", "metadata", "missing", "kind"};
    jraw_span_t v[4];
    size_t n = sizeof stored - 1;
    char *b = exact(stored, n);
    assert_int_equal(jraw_members(b, n, keys, v, 4), 0);
    json_t *doc = json_loadb(b, n, 0, NULL);
    assert_non_null(doc);
    for (size_t i = 0; i < 4; i++) {
        json_t *want = json_object_get(doc, keys[i]);
        if (!want) {
            assert_null(v[i].p);
            continue;
        }
        json_t *got = json_loadb(v[i].p, v[i].len, JSON_DECODE_ANY, NULL);
        assert_true(json_equal(got, want));
        json_decref(got);
    }
    /* Within metadata's span, as the authorizer looks. */
    const char *mkeys[] = {"name", "labels"};
    jraw_span_t m[2];
    assert_int_equal(jraw_members(v[1].p, v[1].len, mkeys, m, 2), 0);
    assert_int_equal(m[0].len, strlen("\"alice-ws1\""));
    assert_memory_equal(m[0].p, "\"alice-ws1\"", m[0].len);
    assert_memory_equal(m[1].p, "{\"iam.theriseunion.io/role\":\"viewer\"}", m[1].len);
    /* A value that is not an object has no members. */
    const char *name = "name";
    assert_int_equal(jraw_members(m[0].p, m[0].len, &name, m, 1), ERR_INVALID);
    assert_null(m[0].p);
    json_decref(doc);
    free(b);
}

/* Every proper prefix of an object text is malformed, and is read no
 * further than its end. */
static void test_jraw__truncated_everywhere(void **state)
{
    (void)state;
    size_t n = sizeof stored - 1;
    for (size_t cut = 0; cut < n; cut++) {
        const char *val;
        size_t len;
        int rc = lookup_checked(stored, cut, "spec", &val, &len);
        if (rc != ERR_BAD_REQUEST)
            fail_msg("prefix of %zu bytes: %s", cut, err_name(rc));
    }
    const char *val;
    size_t len;
    assert_int_equal(lookup_checked(stored, n, "spec", &val, &len), 0);
}

/* One byte changed at every offset, to every byte that means something
 * to the grammar: whatever the result, jansson agrees on whether the text
 * is well-formed (lookup_checked), and nothing is read out of bounds. */
static void test_jraw__mutations_agree_with_jansson(void **state)
{
    (void)state;
    static const char subst[] = "\"\\{}[],: \t0-1e.+Eutfnlx\x01\x1f\x7f\x80\xbf\xc3\xe2\xf0\xff";
    size_t n = sizeof stored - 1;
    char *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof subst - 1; k++) {
            memcpy(b, stored, n);
            b[i] = subst[k];
            const char *val;
            size_t len;
            lookup_checked(b, n, "spec", &val, &len);
            lookup_checked(b, n, "metadata", &val, &len);
        }
    }
    free(b);
}

/* Nesting: jansson's limit, counted as jansson counts it. */
static void test_jraw__depth_limit(void **state)
{
    (void)state;
    /* {"a":[[...[1]...]]}: the object is depth 1, the array depth 2, ... */
    for (size_t arrays = JRAW_MAX_DEPTH - 3; arrays <= JRAW_MAX_DEPTH + 1; arrays++) {
        for (int with_scalar = 0; with_scalar < 2; with_scalar++) {
            size_t n = 6 + 2 * arrays + (size_t)with_scalar + 1;
            char *t = malloc(n);
            assert_non_null(t);
            size_t k = 0;
            memcpy(t, "{\"a\":", 5);
            k = 5;
            for (size_t i = 0; i < arrays; i++)
                t[k++] = '[';
            if (with_scalar)
                t[k++] = '1';
            for (size_t i = 0; i < arrays; i++)
                t[k++] = ']';
            t[k++] = '}';
            assert_int_equal(k, n - 1);
            const char *val;
            size_t len;
            int rc = lookup_checked(t, k, "a", &val, &len);
            int deepest = 1 + (int)arrays + with_scalar;
            assert_int_equal(rc, deepest <= JRAW_MAX_DEPTH ? 0 : ERR_BAD_REQUEST);
            free(t);
        }
    }
    /* Far deeper than any stack would hold: refused, not crashed. */
    size_t n = 1000000;
    char *t = malloc(n);
    assert_non_null(t);
    memset(t, '[', n);
    const char *val;
    size_t len;
    assert_int_equal(jraw_member(t, n, "a", &val, &len), ERR_BAD_REQUEST);
    free(t);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jraw__table),
        cmocka_unit_test(test_jraw__nul_bytes),
        cmocka_unit_test(test_jraw__several_members),
        cmocka_unit_test(test_jraw__truncated_everywhere),
        cmocka_unit_test(test_jraw__mutations_agree_with_jansson),
        cmocka_unit_test(test_jraw__depth_limit),
    };
    return cmocka_run_group_tests_name("jraw", tests, NULL, NULL);
}
