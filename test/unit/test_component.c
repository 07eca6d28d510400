/* Unit tests of the Component controller's pure parts
 * (controllers/component.h): the canonical hash, dependency cycles and
 * order, the URL rules, the index lookup; and comp_run and kc_fetch's
 * refusals, which need no network. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../apiservice/kubeclient.h"
#include "../../controllers/component.h"
#include "../../lib/crypto.h"
#include "../../lib/mem.h"

#include "fixture.h"

static void test_component__hash(void **state)
{
    (void)state;
    json_t *a = fx_json("{\"metadata\":{\"labels\":{\"x\":\"1\"}},\"spec\":{\"chart\":\"c\","
                        "\"values\":{\"b\":[1,2],\"a\":{\"y\":true,\"x\":null}},\"dependsOn\":[\"d\"]}}");
    json_t *b = fx_json("{ \"spec\" : { \"dependsOn\" : [ \"d\" ],\n \"values\" : { \"a\" : "
                        "{ \"x\" : null , \"y\" : true } , \"b\" : [ 1 , 2 ] } , \"chart\" : \"c\" } ,"
                        " \"status\": {\"phase\": \"Installed\"}, \"metadata\": {\"annotations\": {}}}");
    char ha[65], hb[65], want[65];
    assert_int_equal(comp_spec_hash(json_object_get(a, "spec"), ha), 0);
    assert_int_equal(comp_spec_hash(json_object_get(b, "spec"), hb), 0);
    assert_string_equal(ha, hb);
    /* The encoding: sorted keys, no whitespace. */
    const char *canon = "{\"chart\":\"c\",\"dependsOn\":[\"d\"],\"values\":{\"a\":{\"x\":null,"
                        "\"y\":true},\"b\":[1,2]}}";
    crypto_sha256_hex(canon, strlen(canon), want);
    assert_string_equal(ha, want);
    /* A value, or the order of an array, changes it. */
    json_object_set_new(json_object_get(json_object_get(b, "spec"), "values"), "b",
                        fx_json("[2,1]"));
    assert_int_equal(comp_spec_hash(json_object_get(b, "spec"), hb), 0);
    assert_string_not_equal(ha, hb);
    assert_int_equal(comp_spec_hash(NULL, hb), 0);
    crypto_sha256_hex("null", 4, want);
    assert_string_equal(hb, want);
    json_decref(a);
    json_decref(b);
}

static void test_component__cycle(void **state)
{
    (void)state;
    json_t *g = fx_json("{\"c\":[\"a\"],\"a\":[\"z\",\"b\"],\"b\":[\"c\"],\"d\":[\"a\"],"
                        "\"s\":[\"s\"],\"e\":[\"missing\"],\"z\":[]}");
    char out[256];
    static const char *const on[] = {"a", "b", "c", NULL};
    for (int i = 0; on[i]; i++) {
        assert_int_equal(comp_cycle(g, on[i], out, sizeof out), 1);
        assert_string_equal(out, "a -> b -> c -> a");
    }
    assert_int_equal(comp_cycle(g, "d", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(comp_cycle(g, "e", out, sizeof out), 0);
    assert_int_equal(comp_cycle(g, "z", out, sizeof out), 0);
    assert_int_equal(comp_cycle(g, "nobody", out, sizeof out), 0);
    assert_int_equal(comp_cycle(g, "s", out, sizeof out), 1);
    assert_string_equal(out, "s -> s");
    json_decref(g);
    /* Two cycles through one node: the first by name is named. */
    g = fx_json("{\"m\":[\"y\",\"x\"],\"x\":[\"m\"],\"y\":[\"m\"]}");
    assert_int_equal(comp_cycle(g, "m", out, sizeof out), 1);
    assert_string_equal(out, "m -> x -> m");
    json_decref(g);
}

static void test_component__topo_order(void **state)
{
    (void)state;
    json_t *g = fx_json("{\"app\":[\"db\",\"net\"],\"db\":[\"net\"],\"net\":[],\"mon\":[],"
                        "\"x\":[\"y\"],\"y\":[\"x\"],\"z\":[\"x\"],\"m\":[\"missing\"],"
                        "\"top\":[\"app\",\"mon\"]}");
    json_t *order = NULL, *stuck = NULL;
    assert_int_equal(comp_topo_order(g, &order, &stuck), 0);
    char *o = json_dumps(order, JSON_COMPACT), *s = json_dumps(stuck, JSON_COMPACT);
    assert_string_equal(o, "[\"mon\",\"net\",\"db\",\"app\",\"top\"]");
    assert_string_equal(s, "[\"m\",\"x\",\"y\",\"z\"]");
    mem_free(o);
    mem_free(s);
    json_decref(order);
    json_decref(stuck);
    json_decref(g);
}

static void test_component__url_resolve(void **state)
{
    (void)state;
    static const struct { const char *base, *ref, *want; } cases[] = {
        {"http://h:8080/charts", "app-1.0.0.tgz", "http://h:8080/charts/app-1.0.0.tgz"},
        {"http://h:8080/charts/", "app-1.0.0.tgz", "http://h:8080/charts/app-1.0.0.tgz"},
        {"http://h:8080/charts", "index.yaml", "http://h:8080/charts/index.yaml"},
        {"http://h", "index.yaml", "http://h/index.yaml"},
        {"http://h:8080/charts", "../other/x.tgz", "http://h:8080/other/x.tgz"},
        {"http://h:8080/charts", "../../../x.tgz", "http://h:8080/x.tgz"},
        {"http://h:8080/charts", "a/./b/../c.tgz", "http://h:8080/charts/a/c.tgz"},
        {"http://h:8080/charts", "/abs/x.tgz", "http://h:8080/abs/x.tgz"},
        {"http://h:8080/charts", "https://o.example/x.tgz?sig=1#frag", "https://o.example/x.tgz?sig=1"},
        {"https://h/charts", "//cdn.example/x.tgz", "https://cdn.example/x.tgz"},
        {"http://h/charts", "HTTP://H/a/../b", "HTTP://H/b"},
        {"http://[::1]:9000/c", "x.tgz", "http://[::1]:9000/c/x.tgz"},
    };
    char out[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(comp_url_resolve(cases[i].base, cases[i].ref, out, sizeof out), 0);
        assert_string_equal(out, cases[i].want);
    }
    static const struct { const char *base, *ref; } bad[] = {
        {"http://h/charts", "file:///etc/passwd"},
        {"http://h/charts", "ftp://h/x.tgz"},
        {"http://h/charts", "http://user:pw@h/x.tgz"},
        {"http://h/charts", "http://h.example@evil/x.tgz"},
        {"http://h/charts", "%2e%2e/admin"},
        {"http://h/charts", "a%2Fb"},
        {"http://h/charts", "x y.tgz"},
        {"http://h/charts", "..\\x"},
        {"http://h:99999/charts", "x"},
        {"http://:80/charts", "x"},
        {"gopher://h/", "x"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(comp_url_resolve(bad[i].base, bad[i].ref, out, sizeof out), -1);
    assert_int_equal(comp_url_resolve("http://h/charts", "x.tgz", out, 10), -1);
}

static void test_component__url_rules(void **state)
{
    (void)state;
    assert_true(comp_url_same_origin("http://h/x", "http://H:80/y"));
    assert_true(comp_url_same_origin("https://h:443/x", "https://h/y"));
    assert_false(comp_url_same_origin("http://h/x", "https://h/x"));
    assert_false(comp_url_same_origin("http://h:8080/x", "http://h:8081/x"));
    assert_false(comp_url_same_origin("http://h/x", "http://h.evil/x"));

    const char *p = "http://h:8080/charts, https://cdn.example/helm/";
    assert_true(comp_url_allowed("http://h:8080/charts", p));
    assert_true(comp_url_allowed("http://h:8080/charts/", p));
    assert_true(comp_url_allowed("http://h:8080/charts/x-1.0.0.tgz", p));
    assert_true(comp_url_allowed("https://cdn.example/helm/a/b.tgz", p));
    assert_true(comp_url_allowed("https://CDN.example:443/helm/b.tgz", p));
    assert_false(comp_url_allowed("http://h:8080/charts-evil/x.tgz", p));
    assert_false(comp_url_allowed("http://h:8080/other/x.tgz", p));
    assert_false(comp_url_allowed("http://h:8081/charts/x.tgz", p));
    assert_false(comp_url_allowed("https://h:8080/charts/x.tgz", p));
    assert_false(comp_url_allowed("http://h.evil:8080/charts/x.tgz", p));
    assert_false(comp_url_allowed("http://cdn.example/helm/b.tgz", p));
    assert_false(comp_url_allowed("file:///charts/x.tgz", p));
    assert_true(comp_url_allowed("http://anything/x", NULL));
    assert_true(comp_url_allowed("https://anything/x", ""));
    assert_false(comp_url_allowed("file:///etc/passwd", ""));
    assert_false(comp_url_allowed("http://u@anything/x", ""));
    assert_true(comp_url_allowed("http://h/any/path", "http://h"));
    assert_true(comp_url_allowed("http://h/any/path", "http://h/"));
}

static void test_component__index_find(void **state)
{
    (void)state;
    json_t *index = fx_json(
        "{\"apiVersion\":\"v1\",\"entries\":{"
        "\"base\":[{\"version\":\"1.9.0\",\"digest\":\"a\"},{\"version\":\"1.10.0\",\"digest\":\"b\"},"
        "{\"version\":\"2.0.0-rc.1\",\"digest\":\"c\"},{\"version\":\"v3\",\"digest\":\"d\"},"
        "{\"version\":1.5},{\"version\":\"1.0.0\",\"digest\":\"e\"},"
        "{\"version\":\"1.10.0+build.7\",\"digest\":\"f\"}],"
        "\"pre\":[{\"version\":\"0.1.0-alpha\"}],\"empty\":[]}}");
    const json_t *e = NULL;
    char why[256];
    assert_int_equal(comp_index_find(index, "base", "", &e, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), "b");
    assert_int_equal(comp_index_find(index, "base", NULL, &e, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), "b");
    assert_int_equal(comp_index_find(index, "base", "2.0.0-rc.1", &e, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), "c");
    assert_int_equal(comp_index_find(index, "base", "1.0.0", &e, why, sizeof why), 0);
    assert_string_equal(json_string_value(json_object_get(e, "digest")), "e");
    assert_int_equal(comp_index_find(index, "base", "3.0.0", &e, why, sizeof why), ERR_NOT_FOUND);
    assert_non_null(strstr(why, "no version 3.0.0 of chart base"));
    assert_int_equal(comp_index_find(index, "nope", "", &e, why, sizeof why), ERR_NOT_FOUND);
    assert_non_null(strstr(why, "no chart nope"));
    assert_int_equal(comp_index_find(index, "empty", "", &e, why, sizeof why), ERR_NOT_FOUND);
    assert_int_equal(comp_index_find(index, "pre", "", &e, why, sizeof why), ERR_NOT_FOUND);
    assert_non_null(strstr(why, "pre-releases"));
    assert_int_equal(comp_index_find(index, "pre", "0.1.0-alpha", &e, why, sizeof why), 0);
    json_decref(index);
}

static void test_component__run(void **state)
{
    (void)state;
    char last[128];
    int st = -1;
    err_t err;
    memset(&err, 0, sizeof err);
    char *ok[] = {"/bin/sh", "-c", "echo first; echo 'last line' >&2; echo; exit 3", NULL};
    assert_int_equal(comp_run(ok, 10000, &st, last, sizeof last, &err), 0);
    assert_int_equal(st, 3);
    assert_string_equal(last, "last line");
    /* Much output: only the tail is kept. */
    char *lots[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done",
                    NULL};
    assert_int_equal(comp_run(lots, 20000, &st, last, sizeof last, &err), 0);
    assert_int_equal(st, 0);
    assert_string_equal(last, "line 2999");
    char *slow[] = {"/bin/sleep", "10", NULL};
    assert_int_equal(comp_run(slow, 300, &st, last, sizeof last, &err), ERR_TIMEOUT);
    memset(&err, 0, sizeof err);
    char *none[] = {"/nonexistent/helm", "version", NULL};
    assert_int_equal(comp_run(none, 1000, &st, last, sizeof last, &err), ERR_NOT_FOUND);
}

static void test_component__fetch_refuses(void **state)
{
    (void)state;
    kc_fetch_res_t res;
    err_t err;
    memset(&err, 0, sizeof err);
    assert_int_equal(kc_fetch("file:///etc/passwd", 1024, 1000, &res, &err), ERR_BAD_REQUEST);
    assert_null(res.body);
    memset(&err, 0, sizeof err);
    assert_int_equal(kc_fetch("gopher://h/", 1024, 1000, &res, &err), ERR_BAD_REQUEST);
    /* A chart request outside the allowed prefixes never leaves. */
    comp_chart_req_t req = {.data_dir = "/nonexistent", .allowed = "http://127.0.0.1:1/charts",
                            .repository = "http://127.0.0.1:1/other", .chart = "c",
                            .version = "1.0.0"};
    comp_chart_t out;
    assert_int_equal(comp_chart_fetch(&req, &out), -1);
    assert_string_equal(out.reason, "RepositoryNotAllowed");
    req.repository = "file:///charts";
    req.allowed = NULL;
    assert_int_equal(comp_chart_fetch(&req, &out), -1);
    assert_string_equal(out.reason, "RepositoryNotAllowed");
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_component__hash),
        cmocka_unit_test(test_component__cycle),
        cmocka_unit_test(test_component__topo_order),
        cmocka_unit_test(test_component__url_resolve),
        cmocka_unit_test(test_component__url_rules),
        cmocka_unit_test(test_component__index_find),
        cmocka_unit_test(test_component__run),
        cmocka_unit_test(test_component__fetch_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
