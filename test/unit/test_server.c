/* Unit tests of aggregator/ without a socket: agg_handle driven by
 * requests made in memory (agg_req_fake) over a real store, registry and
 * authorizer, as the HTTP server would drive it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../aggregator/server.h"
#include "../../lib/mem.h"
#include "fixture.h"

/* One request through agg_handle; the caller frees it (agg_req_fake_free). */
static agg_req_t *call(fx_t *f, const char *method, const char *path, const char *query,
                       const char *token, const char *ctype, const char *accept,
                       const char *body)
{
    char auth[128], ct[128], acc[160];
    const char *headers[4] = {NULL};
    size_t n = 0;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers[n++] = auth;
    }
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        headers[n++] = ct;
    }
    if (accept) {
        snprintf(acc, sizeof acc, "Accept: %s", accept);
        headers[n++] = acc;
    }
    agg_req_t *r = agg_req_fake(method, path, query, headers, body, body ? strlen(body) : 0);
    assert_non_null(r);
    agg_handle(&f->api, r);
    return r;
}

static json_t *body_json(const agg_req_t *r)
{
    size_t len;
    const char *b = agg_req_fake_response(r, &len);
    json_error_t e;
    json_t *j = json_loadb(b, len, 0, &e);
    if (!j)
        fail_msg("response is not JSON: %.*s", (int)(len > 300 ? 300 : len), b);
    return j;
}

#define WS "/apis/scope.theriseunion.io/v1alpha1/workspaces"

static void test_server__health_and_version(void **state)
{
    fx_t *f = *state;
    agg_req_t *r = call(f, "GET", "/healthz", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 200);
    assert_string_equal(agg_req_fake_response(r, NULL), "ok");
    agg_req_fake_free(r);
    r = call(f, "GET", "/readyz", "verbose", NULL, NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 200);
    assert_non_null(strstr(agg_req_fake_response(r, NULL), "[+]authorizer-index ok"));
    agg_req_fake_free(r);
    r = call(f, "GET", "/version", NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 200);
    json_t *v = body_json(r);
    assert_non_null(fx_str(v, "gitVersion"));
    json_decref(v);
    agg_req_fake_free(r);
}

static void test_server__create_get_table_and_errors(void **state)
{
    fx_t *f = *state;
    const char ws[] = "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Workspace\","
                      "\"metadata\":{\"name\":\"w1\",\"labels\":{\"team\":\"red\"}},"
                      "\"spec\":{\"manager\":\"alice\"}}";
    agg_req_t *r = call(f, "POST", WS, NULL, "admin-token", "application/json", NULL, ws);
    assert_int_equal(agg_req_status(r), 201);
    json_t *o = body_json(r);
    assert_string_equal(fx_str(o, "metadata.name"), "w1");
    assert_non_null(fx_str(o, "metadata.uid"));
    assert_non_null(agg_req_fake_header(r, "Audit-Id"));
    assert_string_equal(agg_req_fake_header(r, "Content-Type"), "application/json");
    json_decref(o);
    agg_req_fake_free(r);

    r = call(f, "GET", WS "/w1", NULL, "admin-token", NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 200);
    o = body_json(r);
    assert_string_equal(fx_str(o, "spec.manager"), "alice");
    json_decref(o);
    agg_req_fake_free(r);

    /* A Table of the list, selected by label. */
    r = call(f, "GET", WS, "labelSelector=team%3Dred", "admin-token", NULL,
             "application/json;as=Table;v=v1;g=meta.k8s.io", NULL);
    assert_int_equal(agg_req_status(r), 200);
    o = body_json(r);
    assert_string_equal(fx_str(o, "kind"), "Table");
    assert_int_equal(json_array_size(json_object_get(o, "rows")), 1);
    json_decref(o);
    agg_req_fake_free(r);

    /* Errors are Status objects with kube's codes and reasons. */
    static const struct {
        const char *method, *path, *query, *ctype, *body, *reason;
        int code;
    } errs[] = {
        {"GET", WS "/nope", NULL, NULL, NULL, "NotFound", 404},
        {"POST", WS, NULL, "text/plain", "{}", "UnsupportedMediaType", 415},
        {"GET", WS, "limit=abc", NULL, NULL, "BadRequest", 400},
        {"POST", WS, "dryRun=Maybe", "application/json", "{}", "Invalid", 422},
        {"PATCH", WS "/w1", NULL, "application/merge-patch+json", "{\"metadata\":null}",
         "BadRequest", 400},
        {"GET", "/apis/scope.theriseunion.io/v1alpha1/nosuch", NULL, NULL, NULL, "NotFound", 404},
    };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        r = call(f, errs[i].method, errs[i].path, errs[i].query, "admin-token", errs[i].ctype,
                 NULL, errs[i].body);
        if (agg_req_status(r) != errs[i].code)
            fail_msg("%s %s?%s: %d, want %d: %s", errs[i].method, errs[i].path,
                     errs[i].query ? errs[i].query : "", agg_req_status(r), errs[i].code,
                     agg_req_fake_response(r, NULL));
        o = body_json(r);
        assert_string_equal(fx_str(o, "kind"), "Status");
        assert_string_equal(fx_str(o, "reason"), errs[i].reason);
        assert_int_equal(json_integer_value(json_object_get(o, "code")), errs[i].code);
        json_decref(o);
        agg_req_fake_free(r);
    }
    /* The refused patch changed nothing. */
    r = call(f, "GET", WS "/w1", NULL, "admin-token", NULL, NULL, NULL);
    o = body_json(r);
    assert_string_equal(fx_str(o, "metadata.labels.team"), "red");
    json_decref(o);
    agg_req_fake_free(r);
}

/* Bodies the handler decodes and releases itself: YAML, and a delete's
 * options whose strings the delete borrows. */
static void test_server__yaml_and_delete_options(void **state)
{
    fx_t *f = *state;
    const char yaml[] = "apiVersion: scope.theriseunion.io/v1alpha1\nkind: Workspace\n"
                        "metadata: {name: y1}\nspec: {manager: bob}\n";
    agg_req_t *r = call(f, "POST", WS, NULL, "admin-token", "application/yaml", NULL, yaml);
    assert_int_equal(agg_req_status(r), 201);
    json_t *o = body_json(r);
    char uid[64];
    snprintf(uid, sizeof uid, "%s", fx_str(o, "metadata.uid"));
    json_decref(o);
    agg_req_fake_free(r);
    /* A wrong uid precondition: 409, nothing deleted. */
    r = call(f, "DELETE", WS "/y1", NULL, "admin-token", "application/json", NULL,
             "{\"preconditions\":{\"uid\":\"not-it\"}}");
    assert_int_equal(agg_req_status(r), 409);
    agg_req_fake_free(r);
    char opts[160];
    snprintf(opts, sizeof opts, "{\"preconditions\":{\"uid\":\"%s\"}}", uid);
    r = call(f, "DELETE", WS "/y1", NULL, "admin-token", "application/json", NULL, opts);
    assert_int_equal(agg_req_status(r), 200);
    agg_req_fake_free(r);
    r = call(f, "GET", WS "/y1", NULL, "admin-token", NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 404);
    agg_req_fake_free(r);
}

static void test_server__authorization(void **state)
{
    fx_t *f = *state;
    /* No credentials: anonymous, and forbidden. */
    agg_req_t *r = call(f, "GET", WS, NULL, NULL, NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 403);
    json_t *o = body_json(r);
    assert_string_equal(fx_str(o, "reason"), "Forbidden");
    assert_non_null(strstr(fx_str(o, "message"), "system:anonymous"));
    json_decref(o);
    agg_req_fake_free(r);
    /* A bad token: 401. */
    r = call(f, "GET", WS, NULL, "forged", NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 401);
    agg_req_fake_free(r);
    /* alice holds no binding. */
    r = call(f, "GET", WS, NULL, "alice-token", NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 403);
    o = body_json(r);
    assert_non_null(strstr(fx_str(o, "message"), "\"alice\""));
    json_decref(o);
    agg_req_fake_free(r);
}

static void test_server__watch_and_discovery(void **state)
{
    fx_t *f = *state;
    const char ws[] = "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Workspace\","
                      "\"metadata\":{\"name\":\"w2\"},\"spec\":{}}";
    agg_req_t *r = call(f, "POST", WS, NULL, "admin-token", "application/json", NULL, ws);
    assert_int_equal(agg_req_status(r), 201);
    agg_req_fake_free(r);
    /* A watch from resourceVersion 0 begins with the objects as ADDED. */
    r = call(f, "GET", WS, "watch&resourceVersion=0", "admin-token", NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 200);
    const char *out = agg_req_fake_response(r, NULL);
    assert_non_null(strstr(out, "{\"type\":\"ADDED\""));
    assert_non_null(strstr(out, "\"name\":\"w2\""));
    agg_req_fake_free(r);
    r = call(f, "GET", "/apis", NULL, "admin-token", NULL, NULL, NULL);
    assert_int_equal(agg_req_status(r), 200);
    json_t *o = body_json(r);
    assert_string_equal(fx_str(o, "kind"), "APIGroupList");
    assert_int_equal(json_array_size(json_object_get(o, "groups")), 4);
    json_decref(o);
    agg_req_fake_free(r);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        FX_SERVER_TEST(test_server__health_and_version),
        FX_SERVER_TEST(test_server__create_get_table_and_errors),
        FX_SERVER_TEST(test_server__yaml_and_delete_options),
        FX_SERVER_TEST(test_server__authorization),
        FX_SERVER_TEST(test_server__watch_and_discovery),
    };
    return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
