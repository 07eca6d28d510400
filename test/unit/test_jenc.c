/* Unit tests of lib/json/jenc: every output compared byte for byte with
 * json_dumps(v, JSON_COMPACT) of the jansson the server links. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../lib/err.h"
#include "../../lib/json/jenc.h"
#include "../../lib/mem.h"
#include "../../lib/sbuf.h"

/* jenc_dumps and jenc_append_any against json_dumps without and with
 * JSON_ENCODE_ANY: the same bytes, or a failure on both sides. */
static void same(const json_t *v, const char *what)
{
    char *want = json_dumps(v, JSON_COMPACT);
    size_t n = (size_t)-1;
    char *got = jenc_dumps(v, &n);
    if (!want) {
        if (got)
            fail_msg("%s: json_dumps failed, jenc wrote %s", what, got);
    } else {
        if (!got)
            fail_msg("%s: jenc failed, json_dumps wrote %s", what, want);
        if (n != strlen(want) || strcmp(got, want))
            fail_msg("%s:\n want %s\n  got %.*s", what, want, (int)n, got);
    }
    mem_free(want);
    mem_free(got);

    /* Appended after what the buffer holds, which a failure leaves alone. */
    want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "x=");
    int rc = jenc_append_any(&b, v);
    if (!want) {
        if (rc != ERR_INVALID)
            fail_msg("%s (any): json_dumps failed, jenc returned %d", what, rc);
        assert_int_equal(b.len, 2);
        assert_string_equal(b.p, "x=");
    } else {
        if (rc)
            fail_msg("%s (any): jenc returned %d, json_dumps wrote %s", what, rc, want);
        if (b.len != strlen(want) + 2 || strcmp(b.p + 2, want))
            fail_msg("%s (any):\n want %s\n  got %s", what, want, b.p + 2);
    }
    mem_free(want);
    sbuf_free(&b);
}

static void same_new(json_t *v, const char *what)
{
    assert_non_null(v);
    same(v, what);
    json_decref(v);
}

static void test_jenc__texts(void **state)
{
    (void)state;
    /* Parsed with JSON_DECODE_ANY | JSON_ALLOW_NUL. */
    static const char *texts[] = {
        "{}", "[]", "[{}]", "{\"a\":[]}", "[[],[[]],{}]",
        "{\"a\":{\"b\":{\"c\":[1,2,{\"d\":null}]}},\"e\":[true,false,null]}",
        "{\"z\":1,\"a\":2,\"m\":3,\"b\":4}",          /* insertion order, not sorted */
        "{\"q\":\"say \\\"hi\\\"\",\"bs\":\"a\\\\b\\\\\",\"sl\":\"a/b//c</script>\"}",
        "[\"\\\\\\\"\\/\",\"\\\"\",\"\\\\\",\"/\"]",
        "[\"\\b\\f\\n\\r\\t\",\"\\u0000\",\"a\\u0000b\",\"\\u001f\\u007f\"]",
        "[\"caf\\u00e9\",\"\\u20ac\",\"\\ud83d\\ude00\",\"\\u0800\\uffff\\ud800\\udc00\"]",
        "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 mixed \xe4\xb8\xad\xe6\x96\x87\",\"\xf4\x8f\xbf\xbf\"]",
        "[\"\xc3\xa9\\n\xc3\xa9\\\"\xe2\x82\xac\\u0001\"]",
        "{\"k\\n\\\"\":2,\"\xc3\xa9\":3,\"\":4,\"\\u001b[0m\":5}",
        "[0,-1,1,9223372036854775807,-9223372036854775808,1000000,-42]",
        "[0.1,1e300,-0.0,0.0,1.0,123456789.0,5e-324,2.5,-1.5e-7,1e16,1e17,1e-4,1e-5]",
        "[1.7976931348623157e308,2.2250738585072014e-308,0.30000000000000004,3.14159]",
        "[true,false,null]",
        "\"a scalar\"", "42", "-7.25", "true", "false", "null", "\"\"",
        "[\"aaaaaaaaaaaaaaa\\\"bbbbbbbbbbbbbbbbbbbbbbb\\\\ccccccccccccccccc\\n\"]",
        "[\"0123456789abcdef0123456789abcdef0123456789abcdef\"]",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_error_t e;
        json_t *v = json_loads(texts[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!v)
            fail_msg("case %zu does not parse: %s", i, e.text);
        same_new(v, texts[i]);
    }
}

/* A string literal alone: what json_dumps writes for a string value, and
 * invalid UTF-8 refused with the buffer as it was. */
static void test_jenc__string_literals(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "plain", "q\"b\\s/", "tab\tnl\n\x01\x1f\x7f",
                                        "caf\xc3\xa9 \xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        json_t *v = json_string(texts[i]);
        char *want = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        sbuf_t b = {0};
        sbuf_puts(&b, "x");
        assert_int_equal(jenc_append_str(&b, texts[i], strlen(texts[i])), 0);
        assert_int_equal(b.len, strlen(want) + 1);
        assert_memory_equal(b.p + 1, want, strlen(want));
        assert_int_equal(b.p[b.len], '\0');  /* an sbuf always ends in a NUL */
        sbuf_free(&b);
        free(want);
        json_decref(v);
    }
    sbuf_t b = {0};
    sbuf_puts(&b, "x");
    assert_int_equal(jenc_append_str(&b, "ok\xc3", 3), ERR_INVALID);
    assert_int_equal(b.len, 1);
    sbuf_free(&b);
}

/* Bytes that are not UTF-8 become U+FFFD, one each, as Go writes them;
 * valid text is kept as it is. */
static void test_jenc__string_lossy(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"plain", "plain"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"a\xff" "b", "a\xef\xbf\xbd" "b"},
        {"\xc3", "\xef\xbf\xbd"},
        {"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  /* a surrogate */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *v = jenc_string_lossy(cases[i].in);
        assert_non_null(v);
        assert_string_equal(json_string_value(v), cases[i].out);
        json_decref(v);
    }
}

static void test_jenc__control_characters(void **state)
{
    (void)state;
    char all[32];
    for (int c = 0; c < 32; c++) {
        char s[4] = {'a', (char)c, 'b', 0}, what[32];
        snprintf(what, sizeof what, "control 0x%02x", c);
        /* As a value, alone and inside text, and as a key. */
        same_new(json_pack("[s#]", s, (size_t)3), what);
        same_new(json_pack("[s#]", s + 1, (size_t)1), what);
        json_t *o = json_object();
        json_object_setn_new(o, s, 3, json_integer(c));
        same_new(o, what);
        all[c] = (char)c;
    }
    same_new(json_pack("[s#]", all, sizeof all), "all controls");
}

/* The escapes themselves, spelled out: upper-case hex, no \/, DEL as is. */
static void test_jenc__escapes_spelled_out(void **state)
{
    (void)state;
    json_t *v = json_pack("[s#]", "\x1f\x0b\x7f/\"\\\b\f\n\r\t\x01", (size_t)12);
    size_t n;
    char *t = jenc_dumps(v, &n);
    assert_string_equal(t, "[\"\\u001F\\u000B\x7f/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\"]");
    assert_int_equal(n, strlen(t));
    mem_free(t);
    json_decref(v);
}

static void test_jenc__embedded_nul(void **state)
{
    (void)state;
    json_t *a = json_array();
    json_array_append_new(a, json_stringn("\0", 1));
    json_array_append_new(a, json_stringn("a\0b\0", 4));
    json_array_append_new(a, json_stringn("0123456789\0abcdef", 17));
    json_t *o = json_object();
    json_object_setn_new(o, "k\0ey", 4, json_stringn("v\0", 2));
    json_object_setn_new(o, "k", 1, json_true());   /* a different key */
    json_array_append_new(a, o);
    same(a, "embedded NUL");
    size_t n;
    char *t = jenc_dumps(a, &n);
    assert_string_equal(t, "[\"\\u0000\",\"a\\u0000b\\u0000\",\"0123456789\\u0000abcdef\","
                           "{\"k\\u0000ey\":\"v\\u0000\",\"k\":true}]");
    mem_free(t);
    json_decref(a);
}

static void test_jenc__numbers(void **state)
{
    (void)state;
    static const json_int_t ints[] = {
        0, 1, -1, 9, 10, -10, 99, 100, 123456789, -987654321,
        INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1, (json_int_t)1 << 53,
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        same_new(json_pack("[I]", ints[i]), "integer");
    same_new(json_integer(INT64_MIN), "integer alone");
    static const double reals[] = {
        0.1, 1e300, -0.0, 0.0, 1.0, -1.0, 123456789.0, 5e-324, 1e16, 1e17, 1e-4, 1e-5,
        1e21, 1e22, 1e100, -1e-300, 2.5, 1.0 / 3.0, 100.0, 4503599627370496.0,
        9007199254740993.0, 1.7976931348623157e308, 2.2250738585072014e-308,
        2.225073858507201e-308, 12345678901234567890.0, 0.000123, 6.02214076e23,
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "real %.17g", reals[i]);
        same_new(json_pack("[f]", reals[i]), what);
        same_new(json_real(reals[i]), what);
    }
    size_t n;
    json_t *v = json_pack("[f,f,f,f]", 1e300, -0.0, 1.0, 5e-324);
    char *t = jenc_dumps(v, &n);
    assert_string_equal(t, "[1.0000000000000001e300,-0.0,1.0,4.9406564584124654e-324]");
    mem_free(t);
    json_decref(v);
}

/* Members come out in insertion order, through deletions and replacements. */
static void test_jenc__member_order(void **state)
{
    (void)state;
    json_t *o = json_object();
    const char *keys[] = {"metadata", "kind", "apiVersion", "spec", "status", "b", "a"};
    for (size_t i = 0; i < 7; i++)
        json_object_set_new(o, keys[i], json_integer((json_int_t)i));
    json_object_del(o, "spec");
    json_object_set_new(o, "spec", json_string("again"));
    json_object_set_new(o, "kind", json_string("replaced"));
    same(o, "order");
    char *t = jenc_dumps(o, NULL);
    assert_string_equal(t, "{\"metadata\":0,\"kind\":\"replaced\",\"apiVersion\":2,"
                           "\"status\":4,\"b\":5,\"a\":6,\"spec\":\"again\"}");
    mem_free(t);
    json_decref(o);
}

/* Strings that are not UTF-8 can be made with the _nocheck setters. As
 * values they fail the whole dump; as keys jansson writes them cut short
 * and goes on, and so must jenc. */
static void test_jenc__invalid_utf8(void **state)
{
    (void)state;
    static const struct { const char *s; size_t n; } bad[] = {
        {"\x80", 1}, {"\xbf", 1}, {"\xc0\x80", 2}, {"\xc1\xbf", 2}, {"\xc3", 1},
        {"\xe0\x80\x80", 3}, {"\xe0\x9f\xbf", 3}, {"\xed\xa0\x80", 3}, {"\xed\xbf\xbf", 3},
        {"\xf0\x80\x80\x80", 4}, {"\xf0\x8f\xbf\xbf", 4}, {"\xf4\x90\x80\x80", 4},
        {"\xf5\x80\x80\x80", 4}, {"\xff", 1}, {"\xe2\x82", 2}, {"\xe2\x28\xa1", 3},
        {"abc\xc3(", 5}, {"a\"b\xff", 4}, {"a\\n\nb\"c\xfe", 9},
        {"0123456789abcdef\x80 and more text after it", 41},
        {"\"\"\"\"\"\"\"\"\xe2\x82\xac\xe2\x82", 13},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "invalid utf-8 #%zu", i);
        json_t *a = json_array();
        json_array_append_new(a, json_stringn_nocheck(bad[i].s, bad[i].n));
        same_new(a, what);
        json_t *o = json_object();
        json_object_setn_new_nocheck(o, bad[i].s, bad[i].n, json_integer(1));
        json_object_set_new(o, "next", json_string("ok"));
        same_new(o, what);
    }
    /* Valid edges of the same rules. */
    static const char *good[] = {"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf",
                                 "\xee\x80\x80", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        same_new(json_pack("{s:s}", good[i], good[i]), "valid utf-8 edge");
}

/* A value shared by several parents is written each time; a container
 * inside itself fails, as json_dumps does. */
static void test_jenc__shared_and_cycles(void **state)
{
    (void)state;
    json_t *leaf = json_pack("{s:[i,i]}", "x", 1, 2);
    json_t *dag = json_pack("[O,O,{s:O,s:[O]}]", leaf, leaf, "a", leaf, "b", leaf);
    same(dag, "shared");
    json_decref(dag);
    json_decref(leaf);

    /* Loops of several lengths, starting at several depths. */
    for (int start = 0; start < 6; start++) {
        for (int len = 1; len < 40; len += 3) {
            json_t *root = json_array(), *c = root, *loop = NULL;
            for (int i = 0; i < start + len; i++) {
                json_t *n = i % 2 ? json_array() : json_object();
                if (i == start)
                    loop = n;
                if (json_is_array(c))
                    json_array_append_new(c, n);
                else
                    json_object_set_new(c, "k", n);
                c = n;
            }
            /* Close the loop: the last container holds the first of it
             * (jansson refuses to put a container straight into itself). */
            int closed = json_is_array(c) ? json_array_append(c, loop)
                                          : json_object_set(c, "k", loop);
            assert_int_equal(closed, c == loop ? -1 : 0);
            if (c != loop)
                assert_null(jenc_dumps(root, NULL));
            same(root, "cycle");
            /* Break it so everything is freed. */
            if (json_is_array(c))
                json_array_clear(c);
            else
                json_object_clear(c);
            json_decref(root);
        }
    }
}

static void test_jenc__deep(void **state)
{
    (void)state;
    json_t *root = json_array(), *c = root;
    for (int i = 0; i < 3000; i++) {
        json_t *n = i % 2 ? json_array() : json_object();
        if (json_is_array(c))
            json_array_append_new(c, n);
        else
            json_object_set_new(c, "k", n);
        c = n;
    }
    json_array_append_new(c, json_string("bottom"));
    same(root, "3000 deep");
    json_decref(root);
}

static void test_jenc__api(void **state)
{
    (void)state;
    /* jenc_append takes only arrays and objects, as json_dumps. */
    json_t *s = json_string("x");
    sbuf_t b = SBUF_INIT;
    assert_int_equal(jenc_append(&b, s), ERR_INVALID);
    assert_int_equal(jenc_append(&b, NULL), ERR_INVALID);
    assert_int_equal(jenc_append_any(&b, NULL), ERR_INVALID);
    assert_null(jenc_dumps(s, NULL));
    assert_int_equal(jenc_append_any(&b, s), 0);
    assert_string_equal(b.p, "\"x\"");
    /* Keys, for callers that write members themselves. */
    assert_int_equal(jenc_append_key(&b, "k\"\n\0", 4), 0);
    assert_string_equal(b.p, "\"x\"\"k\\\"\\n\\u0000\":");
    assert_int_equal(b.len, strlen(b.p));
    sbuf_cut(&b, 0);
    assert_int_equal(jenc_append_key(&b, "ab\xff", 3), 0);
    assert_string_equal(b.p, "\":");   /* cut short, as json_dumps writes it */
    /* A buffer already out of memory stays so. */
    b.oom = 1;
    json_t *o = json_object();
    assert_int_equal(jenc_append(&b, o), ERR_NOMEM);
    assert_int_equal(jenc_append_key(&b, "k", 1), ERR_NOMEM);
    sbuf_free(&b);
    json_decref(o);
    json_decref(s);
}

/* ---- random values -------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

/* Text from pieces that exercise every path of the escaper; now and then
 * one that is not UTF-8 (only ever set with the _nocheck setters). */
static size_t rnd_text(char *buf, size_t cap, int *bad)
{
    static const char *pieces[] = {
        "a", "Z", "0", " ", "/", "~", "\x7f", "\"", "\\", "\n", "\t", "\x01", "\x1f",
        "abcdefghijklmnopqrstuvwxyz", "kubernetes.io/last-applied-configuration",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xe4\xb8\xad", "\xf4\x8f\xbf\xbf",
    };
    size_t n = 0, parts = rnd_below(12);
    *bad = 0;
    for (size_t i = 0; i < parts; i++) {
        const char *p;
        size_t len;
        uint64_t r = rnd_below(100);
        char one[1];
        if (r < 4) {
            one[0] = 0;                       /* NUL */
            p = one;
            len = 1;
        } else if (r < 5) {
            one[0] = (char)(0x80 + rnd_below(0x80));   /* stray byte */
            p = one;
            len = 1;
            *bad = 1;
        } else {
            p = pieces[rnd_below(sizeof pieces / sizeof pieces[0])];
            len = strlen(p);
        }
        if (n + len > cap)
            break;
        memcpy(buf + n, p, len);
        n += len;
    }
    return n;
}

static json_t *rnd_value(int depth)
{
    char text[256];
    int bad;
    size_t kind = rnd_below(depth > 4 ? 7 : 10);
    switch (kind) {
    case 0: return json_null();
    case 1: return json_true();
    case 2: return json_false();
    case 3: {
        static const json_int_t edge[] = {0, -1, INT64_MIN, INT64_MAX, 10, -10};
        return json_integer(rnd_below(3) ? (json_int_t)rnd() >> rnd_below(64)
                                         : edge[rnd_below(6)]);
    }
    case 4: {
        double d;
        do {
            uint64_t bits = rnd();
            memcpy(&d, &bits, sizeof d);
            if (rnd_below(2))
                d = (double)(int64_t)rnd() / (double)(1 + rnd_below(1000000));
        } while (d != d || d - d != 0);   /* finite only: jansson makes no others */
        return json_real(d);
    }
    case 5:
    case 6: {
        size_t n = rnd_text(text, sizeof text, &bad);
        return bad && rnd_below(4) == 0 ? json_stringn_nocheck(text, n)
                                        : json_stringn(bad ? "fine" : text, bad ? 4 : n);
    }
    case 7:
    case 8: {
        json_t *o = json_object();
        size_t members = rnd_below(6);
        for (size_t i = 0; i < members; i++) {
            size_t n = rnd_text(text, sizeof text, &bad);
            json_t *v = rnd_value(depth + 1);
            if (bad && rnd_below(4))
                json_object_setn_new_nocheck(o, "fine", 4, v);
            else
                json_object_setn_new_nocheck(o, text, n, v);
        }
        return o;
    }
    default: {
        json_t *a = json_array();
        size_t n = rnd_below(6);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, rnd_value(depth + 1));
        return a;
    }
    }
}

static void test_jenc__random(void **state)
{
    (void)state;
    rng_state = 0x9E3779B97F4A7C15u;
    int failed = 0, wrote = 0;
    for (int i = 0; i < 600; i++) {
        json_t *v = rnd_value(0);
        char what[32];
        snprintf(what, sizeof what, "random #%d", i);
        same(v, what);
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t)
            wrote++;
        else
            failed++;
        mem_free(t);
        json_decref(v);
    }
    /* Both outcomes were tried. */
    assert_true(wrote > 300);
    assert_true(failed > 0);
}

/* ---- allocation failure --------------------------------------------------- */

static json_t *sample_object(void)
{
    char note[1025];
    memset(note, 'n', 1024);
    note[1024] = 0;
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s},s:{s:s},s:[{s:s,s:s,s:{s:{}}}]},"
                     "s:{s:i,s:[s,s],s:f}}",
                     "apiVersion", "iam.theriseunion.io/v1alpha1", "kind", "IAMRole",
                     "metadata", "name", "r1", "namespace", "default",
                     "labels", "app", "web", "tier", "front",
                     "annotations", "note", note,
                     "managedFields", "manager", "kubectl", "operation", "Update",
                     "fieldsV1", "f:spec",
                     "spec", "replicas", 3, "rules", "get", "list", "weight", 0.5);
}

static void test_jenc__allocation_failures(void **state)
{
    (void)state;
    json_t *deep = json_array(), *c = deep;
    for (int i = 0; i < 200; i++) {   /* past the frames kept on the C stack */
        json_t *n = json_array();
        json_array_append_new(c, n);
        c = n;
    }
    json_t *values[] = {sample_object(), deep};
    for (size_t v = 0; v < 2; v++) {
        char *want = json_dumps(values[v], JSON_COMPACT);
        assert_non_null(want);
        long n;
        for (n = 0; n < 1000; n++) {
            size_t len = 0;
            mem_fail_after(n);
            char *got = jenc_dumps(values[v], &len);
            mem_fail_after(-1);
            if (got) {
                assert_string_equal(got, want);
                assert_int_equal(len, strlen(want));
                mem_free(got);
                break;
            }
        }
        assert_true(n > 0);      /* it did need memory */
        assert_true(n < 1000);
        /* Appending to a buffer that already holds text: a failure leaves
         * the text and the oom flag. */
        for (n = 0; n < 1000; n++) {
            sbuf_t b = SBUF_INIT;
            sbuf_puts(&b, "[");
            mem_fail_after(n);
            int rc = jenc_append(&b, values[v]);
            mem_fail_after(-1);
            if (!rc) {
                assert_string_equal(b.p + 1, want);
                sbuf_free(&b);
                break;
            }
            assert_int_equal(rc, ERR_NOMEM);
            assert_true(b.oom);
            assert_int_equal(b.len, 1);
            assert_string_equal(b.p, "[");
            sbuf_free(&b);
        }
        assert_true(n > 0);
        assert_true(n < 1000);
        mem_free(want);
        json_decref(values[v]);
    }
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jenc__texts),
        cmocka_unit_test(test_jenc__string_literals),
        cmocka_unit_test(test_jenc__string_lossy),
        cmocka_unit_test(test_jenc__control_characters),
        cmocka_unit_test(test_jenc__escapes_spelled_out),
        cmocka_unit_test(test_jenc__embedded_nul),
        cmocka_unit_test(test_jenc__numbers),
        cmocka_unit_test(test_jenc__member_order),
        cmocka_unit_test(test_jenc__invalid_utf8),
        cmocka_unit_test(test_jenc__shared_and_cycles),
        cmocka_unit_test(test_jenc__deep),
        cmocka_unit_test(test_jenc__api),
        cmocka_unit_test(test_jenc__random),
        cmocka_unit_test(test_jenc__allocation_failures),
    };
    return cmocka_run_group_tests_name("jenc", tests, NULL, NULL);
}
