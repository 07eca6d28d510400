/* Unit tests of lib/json/jtok: the in-place tokenizer must accept exactly
 * what jansson's json_loadb accepts and read the same values out of it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../lib/json/jtok.h"
#include "../../lib/mem.h"

#define MAXTOK 512

/* The jansson value of token i (the test's reference reading of it). */
static json_t *to_json(const char *text, const jtok_t *t, int i)
{
    switch (t[i].type) {
    case JTOK_OBJECT: {
        json_t *o = json_object();
        uint32_t k = (uint32_t)i + 1;
        for (uint32_t m = 0; m < t[i].size; m++) {
            char key[1024];
            assert_true(jtok_str(text, &t[k], key, sizeof key) >= 0);
            uint32_t v = t[k].next;
            json_object_set_new(o, key, to_json(text, t, (int)v));
            k = t[v].next;
        }
        return o;
    }
    case JTOK_ARRAY: {
        json_t *a = json_array();
        for (uint32_t m = 0; m < t[i].size; m++)
            json_array_append_new(a, to_json(text, t, jtok_item(t, i, m)));
        return a;
    }
    case JTOK_STRING: {
        char *buf = malloc(t[i].len + 1);
        int n = jtok_str(text, &t[i], buf, t[i].len + 1);
        assert_true(n >= 0);
        json_t *s = json_stringn(buf, (size_t)n);
        free(buf);
        return s;
    }
    case JTOK_NUMBER:
        return json_loadb(text + t[i].start, t[i].len, JSON_DECODE_ANY, NULL);
    case JTOK_TRUE:
        return json_true();
    case JTOK_FALSE:
        return json_false();
    default:
        return json_null();
    }
}

/* jtok and jansson agree on text: both refuse it, or both read the same
 * value (jtok may also decline with -1, only for size or depth). */
static void agree(const char *text, size_t len)
{
    static jtok_t toks[MAXTOK];
    json_error_t e1, e2;
    json_t *want = json_loadb(text, len, 0, &e1);
    /* jtok_loadb is json_loadb: the same value, or the same refusal */
    json_t *fast = jtok_loadb(text, len, 0, &e2);
    if (!want != !fast || (want && !json_equal(want, fast)))
        fail_msg("jtok_loadb differs from json_loadb on: %.*s", (int)len, text);
    if (!want)
        assert_string_equal(e1.text, e2.text);
    json_decref(fast);
    /* and with repeated keys refused */
    json_t *w2 = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e1);
    json_t *f2 = jtok_loadb(text, len, JSON_REJECT_DUPLICATES, &e2);
    if (!w2 != !f2 || (w2 && !json_equal(w2, f2)))
        fail_msg("jtok_loadb differs from json_loadb without duplicates on: %.*s", (int)len, text);
    if (!w2)
        assert_string_equal(e1.text, e2.text);
    json_decref(w2);
    json_decref(f2);
    int n = jtok_parse(text, len, toks, MAXTOK);
    if (n < 0) {
        json_decref(want);
        return;
    }
    if (!want) {
        if (n != 0)
            fail_msg("jtok accepted what jansson refuses: %.*s", (int)len, text);
        return;
    }
    if (n == 0)
        fail_msg("jtok refused what jansson accepts: %.*s", (int)len, text);
    json_t *got = to_json(text, toks, 0);
    if (!json_equal(got, want))
        fail_msg("jtok read a different value from: %.*s", (int)len, text);
    assert_int_equal(toks[0].next, (uint32_t)n);
    json_decref(got);
    json_decref(want);
}

static const char *const corpus[] = {
    "{}", "[]", " { } ", "[1]", "[1,2,3]", "{\"a\":1}", "{\"a\":{\"b\":[true,false,null]}}",
    "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\u00e9\\u20ac\\ud83d\\ude00\"]", "[\"caf\xc3\xa9 \xe2\x82\xac "
    "\xf0\x9f\x98\x80\"]", "[0,-0,1.5,-1.5e10,1E-5,123456789012345678]",
    "[9223372036854775807,-9223372036854775808]", "{\"a\":1,\"a\":2}", "{\"a\\u0062\":1}",
    "[[[[[[[[]]]]]]]]", "\t\r\n[ 1 , 2 ]\n",
    /* refused */
    "", " ", "1", "\"s\"", "null", "{", "}", "[", "[1,]", "{\"a\":1,}", "{,}", "[,]", "{\"a\"}",
    "{\"a\":}", "{\"a\" 1}", "{1:2}", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "[+1]", "[1 2]",
    "{}x", "{}{}", "[\"\\x\"]", "[\"\\u12\"]", "[\"\\u0000\"]", "[\"\\ud800\"]", "[\"\\udc00\"]",
    "[\"\\ud800\\u0041\"]", "[\"a\x01\"]", "[\"\xc0\x80\"]", "[\"\xed\xa0\x80\"]", "[\"\xf5\x80\x80\x80\"]",
    "[\"\xe2\x82\"]", "[\"\x80\"]", "[tru]", "[nul]", "[True]", "[9223372036854775808]",
    "[-9223372036854775809]", "[1e400]", "[-1e400]", "[1e-400]", "['a']", "{\"a\":1]", "[1}",
};

static void test_jtok__corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof corpus / sizeof *corpus; i++)
        agree(corpus[i], strlen(corpus[i]));
}

/* Every prefix and every one-byte change of a realistic document. */
static void test_jtok__mutations(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/v1\","
        "\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"resourceAttributes\":"
        "{\"namespace\":\"ns-1\",\"verb\":\"get\",\"version\":\"v1\",\"resource\":\"pods\","
        "\"name\":\"p\\u00e9\"},\"user\":\"u\\\"1\",\"groups\":[\"system:authenticated\",\"t\"],"
        "\"extra\":{\"k\":[\"v\"]},\"uid\":\"x\",\"n\":[-1.5e3,0,12]},\"status\":{\"allowed\":false}}";
    size_t len = sizeof doc - 1;
    char buf[sizeof doc + 1];
    static const char subst[] = "{}[]\",:\\0 1-.eEtu\x01\xc3\x80";
    for (size_t cut = 0; cut <= len; cut++)
        agree(doc, cut);
    for (size_t at = 0; at < len; at++) {
        for (size_t s = 0; s < sizeof subst - 1; s++) {
            memcpy(buf, doc, len);
            buf[at] = subst[s];
            agree(buf, len);
        }
        /* and the byte deleted */
        memcpy(buf, doc, at);
        memcpy(buf + at, doc + at + 1, len - at - 1);
        agree(buf, len - 1);
    }
}

static void test_jtok__lookups(void **state)
{
    (void)state;
    static const char doc[] = "{\"a\":{\"x\":[1,{\"y\":2}],\"z\":\"q\"},\"b\":\"one\",\"b\":\"two\","
                              "\"c\\u0064\":[\"i0\",\"i1\",\"i2\"]}";
    jtok_t t[64];
    assert_true(jtok_parse(doc, strlen(doc), t, 64) > 0);
    char s[16];
    int a = jtok_get(doc, t, 0, "a");
    assert_int_equal(t[a].type, JTOK_OBJECT);
    /* nested keys are not top-level members */
    assert_int_equal(jtok_get(doc, t, 0, "x"), -1);
    assert_int_equal(jtok_get(doc, t, 0, "y"), -1);
    assert_int_equal(jtok_get(doc, t, a, "x") >= 0, 1);
    assert_int_equal(jtok_str(doc, &t[jtok_get(doc, t, a, "z")], s, sizeof s), 1);
    assert_string_equal(s, "q");
    /* the last of repeated keys, as jansson keeps */
    assert_int_equal(jtok_str(doc, &t[jtok_get(doc, t, 0, "b")], s, sizeof s), 3);
    assert_string_equal(s, "two");
    /* an escaped key matches its decoded text */
    int cd = jtok_get(doc, t, 0, "cd");
    assert_int_equal(t[cd].size, 3);
    assert_int_equal(jtok_str(doc, &t[jtok_item(t, cd, 2)], s, sizeof s), 2);
    assert_string_equal(s, "i2");
    assert_int_equal(jtok_item(t, cd, 3), -1);
    assert_int_equal(jtok_get(doc, t, cd, "a"), -1);
    /* a subtree as a jansson value */
    json_t *sub = jtok_value(doc, t, a), *want = json_loads("{\"x\":[1,{\"y\":2}],\"z\":\"q\"}", 0, NULL);
    assert_true(json_equal(sub, want));
    json_decref(sub);
    json_decref(want);
    sub = jtok_value(doc, t, jtok_get(doc, t, 0, "cd"));
    assert_int_equal(json_array_size(sub), 3);
    json_decref(sub);
    assert_null(jtok_value(doc, t, -1));
    /* an escaped key of any length is found (none is cut short) */
    char big[700];
    size_t bl = (size_t)snprintf(big, sizeof big, "{\"\\u0061%0600d\":1}", 0);
    char want_key[700];
    snprintf(want_key, sizeof want_key, "a%0600d", 0);
    jtok_t bt[8];
    assert_true(jtok_parse(big, bl, bt, 8) > 0);
    assert_int_equal(jtok_get(big, bt, 0, want_key), 2);
    want_key[600] = '\0';
    assert_int_equal(jtok_get(big, bt, 0, want_key), -1);
    /* a buffer too small is refused, not overrun */
    assert_int_equal(jtok_str(doc, &t[jtok_get(doc, t, 0, "b")], s, 3), -1);
}

static void test_jtok__limits(void **state)
{
    (void)state;
    jtok_t t[4];
    /* more tokens than room: declined, not refused */
    assert_int_equal(jtok_parse("[1,2,3,4,5]", 11, t, 4), -1);
    char deep[2 * (JTOK_MAX_DEPTH + 1) + 1];
    memset(deep, '[', JTOK_MAX_DEPTH + 1);
    memset(deep + JTOK_MAX_DEPTH + 1, ']', JTOK_MAX_DEPTH + 1);
    jtok_t many[JTOK_MAX_DEPTH + 2];
    assert_int_equal(jtok_parse(deep, 2 * (JTOK_MAX_DEPTH + 1), many, JTOK_MAX_DEPTH + 2), -1);
    assert_int_equal(jtok_parse(deep + 1, 2 * JTOK_MAX_DEPTH, many, JTOK_MAX_DEPTH + 2),
                     JTOK_MAX_DEPTH);
}

/* Texts past the stack's tokens, and past what is tokenized at all. */
static void test_jtok__loadb_sizes(void **state)
{
    (void)state;
    for (size_t items = 100; items <= 200000; items *= 20) {
        size_t cap = items * 16 + 16, len = 0;
        char *text = malloc(cap);
        len += (size_t)snprintf(text + len, cap - len, "{\"a\":[");
        for (size_t i = 0; i < items; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s{\"k\":%zu.5}", i ? "," : "", i);
        len += (size_t)snprintf(text + len, cap - len, "]}");
        json_t *want = json_loadb(text, len, 0, NULL), *got = jtok_loadb(text, len, 0, NULL);
        assert_non_null(want);
        assert_true(json_equal(want, got));
        json_decref(want);
        json_decref(got);
        free(text);
    }
}

/* Every allocation failing in turn: NULL or the right value, never a
 * leak (the suite runs under LeakSanitizer). */
static void test_jtok__loadb_allocation_failures(void **state)
{
    (void)state;
    mem_init();
    static const char doc[] = "{\"a\":[1,2.5,\"x\\n\",{\"b\\u0063\":null}],\"c\":{\"d\":true}}";
    json_t *want = json_loadb(doc, sizeof doc - 1, 0, NULL);
    int completed = 0;
    for (long n = 0; n < 200 && !completed; n++) {
        mem_fail_after(n);
        json_t *got = jtok_loadb(doc, sizeof doc - 1, n % 2 ? JSON_REJECT_DUPLICATES : 0, NULL);
        mem_fail_after(-1);
        if (got) {
            assert_true(json_equal(want, got));
            completed = n > 0;
        }
        json_decref(got);
    }
    assert_true(completed);
    json_decref(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jtok__corpus),
        cmocka_unit_test(test_jtok__mutations),
        cmocka_unit_test(test_jtok__lookups),
        cmocka_unit_test(test_jtok__limits),
        cmocka_unit_test(test_jtok__loadb_sizes),
        cmocka_unit_test(test_jtok__loadb_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
