/* Unit tests of apiservice/kubeclient: the constructors (a kubeconfig's
 * text, its base64, parts) and what they refuse, and the response buffer
 * and a request's own allocations with no kube-apiserver: curl reads the
 * "server" from a file:// URL of the fixture's directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../apiservice/kubeclient.h"
#include "../../lib/b64.h"
#include "../../lib/mem.h"
#include "fixture.h"


#define CA_PEM "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n"

/* A kubeconfig of two contexts whose current one is "b": cluster is the
 * text of its cluster (indented under "cluster:"), user of its user. */
static char *kubeconfig(const char *cluster, const char *user)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "apiVersion: v1\nkind: Config\n"
             "clusters:\n"
             "- name: other\n  cluster:\n    server: https://other.example:6443\n"
             "- name: mine\n  cluster:\n%s"
             "users:\n"
             "- name: nobody\n  user:\n    token: wrong\n"
             "- name: me\n  user:\n%s"
             "contexts:\n"
             "- name: a\n  context: {cluster: other, user: nobody}\n"
             "- name: b\n  context: {cluster: mine, user: me}\n"
             "current-context: b\n",
             cluster, user);
    return buf;
}

static char *b64(const char *s)
{
    return b64_encode(s, strlen(s), B64_STD);
}

static void test_kubeclient__text_token_and_ca(void **state)
{
    (void)state;
    char *ca = b64(CA_PEM);
    char cl[1024];
    snprintf(cl, sizeof cl, "    server: https://10.0.0.1:6443/\n"
                            "    certificate-authority-data: %s\n", ca);
    const char *text = kubeconfig(cl, "    token: s3cret\n");
    kc_t *c = NULL;
    err_t err = {0};
    assert_int_equal(kc_from_kubeconfig_text(text, strlen(text), &c, &err), 0);
    kc_config_t got;
    kc_config_of(c, &got);
    assert_string_equal(got.server, "https://10.0.0.1:6443");
    assert_int_equal(got.ca_len, strlen(CA_PEM));
    assert_memory_equal(got.ca, CA_PEM, got.ca_len);
    assert_string_equal(got.token, "s3cret");
    assert_null(got.cert);
    assert_null(got.key);
    assert_int_equal(got.insecure, 0);
    kc_free(c);

    /* The same through base64, as a Cluster carries it. */
    char *whole = b64(text);
    c = NULL;
    assert_int_equal(kc_from_kubeconfig_base64(whole, &c, &err), 0);
    kc_config_of(c, &got);
    assert_string_equal(got.server, "https://10.0.0.1:6443");
    assert_string_equal(got.token, "s3cret");
    kc_free(c);
    mem_free(whole);
    mem_free(ca);
}

static void test_kubeclient__text_client_cert_insecure(void **state)
{
    (void)state;
    char *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
    char us[2048];
    snprintf(us, sizeof us, "    client-certificate-data: %s\n    client-key-data: %s\n", cert,
             key);
    const char *text = kubeconfig("    server: https://edge.example:8443\n"
                                  "    insecure-skip-tls-verify: true\n", us);
    kc_t *c = NULL;
    err_t err = {0};
    assert_int_equal(kc_from_kubeconfig_text(text, strlen(text), &c, &err), 0);
    kc_config_t got;
    kc_config_of(c, &got);
    assert_string_equal(got.server, "https://edge.example:8443");
    assert_int_equal(got.insecure, 1);
    assert_null(got.ca);
    assert_null(got.token);
    assert_int_equal(got.cert_len, strlen(CERT_PEM));
    assert_memory_equal(got.cert, CERT_PEM, got.cert_len);
    assert_int_equal(got.key_len, strlen(KEY_PEM));
    assert_memory_equal(got.key, KEY_PEM, got.key_len);

    /* A client derived from it: another server, shorter timeouts. */
    got.server = "https://192.0.2.7:6443///";
    got.connect_timeout_ms = 3000;
    got.timeout_ms = 3000;
    kc_t *d = NULL;
    assert_int_equal(kc_new(&got, &d, &err), 0);
    kc_free(c);
    kc_config_t again;
    kc_config_of(d, &again);
    assert_string_equal(again.server, "https://192.0.2.7:6443");
    assert_int_equal(again.insecure, 1);
    assert_memory_equal(again.cert, CERT_PEM, strlen(CERT_PEM));
    assert_memory_equal(again.key, KEY_PEM, strlen(KEY_PEM));
    assert_int_equal(again.timeout_ms, 3000);
    assert_int_equal(again.connect_timeout_ms, 3000);
    kc_free(d);
    mem_free(cert);
    mem_free(key);
}

static void test_kubeclient__parts(void **state)
{
    (void)state;
    kc_config_t cfg = {.server = "https://h:1", .ca = CA_PEM, .ca_len = strlen(CA_PEM),
                       .token = "t"};
    kc_t *c = NULL;
    err_t err = {0};
    assert_int_equal(kc_new(&cfg, &c, &err), 0);
    kc_config_t got;
    kc_config_of(c, &got);
    assert_string_equal(got.server, "https://h:1");
    assert_string_equal(got.token, "t");
    assert_memory_equal(got.ca, CA_PEM, strlen(CA_PEM));
    assert_int_equal(got.timeout_ms, 0);
    kc_free(c);

    kc_config_t none = {.token = "t"};
    assert_int_equal(kc_new(&none, &c, &err), ERR_BAD_REQUEST);
    err_clear(&err);
    kc_config_t half = {.server = "https://h:1", .cert = CERT_PEM, .cert_len = 3};
    assert_int_equal(kc_new(&half, &c, &err), ERR_BAD_REQUEST);
    assert_non_null(strstr(err.message, "its key"));
}

/* What is refused, each with a message that says why. */
static void test_kubeclient__refused(void **state)
{
    (void)state;
    static const struct {
        const char *cluster, *user;
        const char *want;
    } rows[] = {
        {"    server: https://h:1\n    certificate-authority-data: '@@'\n", "    token: t\n",
         "certificate-authority-data is not base64"},
        {"    server: https://h:1\n", "    client-certificate-data: '!!'\n    client-key-data: a2V5\n",
         "client-certificate-data is not base64"},
        {"    server: https://h:1\n    certificate-authority: /etc/ssl/private/x.pem\n",
         "    token: t\n", "certificate-authority names a file"},
        {"    server: https://h:1\n", "    client-certificate: /etc/passwd\n    client-key: /etc/passwd\n",
         "client-certificate names a file"},
        {"    server: https://h:1\n", "    tokenFile: /etc/shadow\n", "tokenFile names a file"},
        {"    insecure-skip-tls-verify: true\n", "    token: t\n", "no cluster server"},
        {"    server: https://h:1\n", "    client-certificate-data: Y2VydA==\n",
         "needs both its certificate and its key"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *text = kubeconfig(rows[i].cluster, rows[i].user);
        kc_t *c = NULL;
        err_t err = {0};
        int rc = kc_from_kubeconfig_text(text, strlen(text), &c, &err);
        if (rc != ERR_BAD_REQUEST || !strstr(err.message, rows[i].want))
            fail_msg("row %zu: rc %d, message \"%s\", want \"%s\"", i, rc, err.message,
                     rows[i].want);
        assert_null(c);
    }

    /* Not a kubeconfig at all, and not base64. */
    static const struct {
        const char *b64;
        const char *want;
    } raw[] = {
        {"not base64 at all!", "kubeconfig: not base64"},
        {"W1sx", "kubeconfig: not YAML or JSON"},         /* "[[1" */
        {"aGVsbG8=", "kubeconfig: not a kubeconfig"},      /* "hello" */
        {"e30=", "no cluster server"},                      /* "{}" */
        {"", "not a kubeconfig"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        kc_t *c = NULL;
        err_t err = {0};
        int rc = kc_from_kubeconfig_base64(raw[i].b64, &c, &err);
        if (rc != ERR_BAD_REQUEST || !strstr(err.message, raw[i].want))
            fail_msg("base64 row %zu: rc %d, message \"%s\", want \"%s\"", i, rc, err.message,
                     raw[i].want);
        assert_null(c);
    }
}

/* Every allocation failing in turn: a clean error, nothing leaked. */
static void test_kubeclient__allocation_failures(void **state)
{
    (void)state;
    char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
    char cl[1024], us[2048];
    snprintf(cl, sizeof cl, "    server: https://h:1\n    certificate-authority-data: %s\n", ca);
    snprintf(us, sizeof us, "    token: t\n    client-certificate-data: %s\n"
                            "    client-key-data: %s\n", cert, key);
    char *text = mem_strdup(kubeconfig(cl, us));
    int ok = 0;
    for (long n = 0; n < 500 && !ok; n++) {
        kc_t *c = NULL;
        err_t err = {0};
        mem_fail_after(n);
        int rc = kc_from_kubeconfig_text(text, strlen(text), &c, &err);
        mem_fail_after(-1);
        if (!rc) {
            ok = 1;
            kc_free(c);
        } else if (rc != ERR_NOMEM) {
            fail_msg("failing allocation %ld: rc %d (%s), want ERR_NOMEM", n, rc, err.message);
        }
    }
    assert_true(ok);
    mem_free(text);
    mem_free(ca);
    mem_free(cert);
    mem_free(key);
}

/* Writes text to <dir>/<name>. */
static void write_file(const fx_t *f, const char *name, const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* A client of a kubeconfig whose server is the fixture's directory. */
static kc_t *client(const fx_t *f)
{
    char cfg[512], path[128];
    int n = snprintf(cfg, sizeof cfg,
                     "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
                     "clusters:\n- name: c\n  cluster: {server: \"file://%s/\"}\n"
                     "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                     "users:\n- name: u\n  user: {token: t}\n", f->dir);
    write_file(f, "kubeconfig", cfg, (size_t)n);
    snprintf(path, sizeof path, "%s/kubeconfig", f->dir);
    kc_t *c = NULL;
    err_t err = {0};
    if (kc_from_kubeconfig(path, &c, &err))
        fail_msg("kubeconfig: %s", err.message);
    return c;
}

/* A response of many chunks (the buffer grows again and again), with one
 * allocation failing in turn (alone, then with every later one): the
 * whole answer, or ERR_NOMEM; never an answer cut short nor JSON null
 * for a body that is JSON. The same with a request body to encode. */
static void test_kubeclient__response_allocation_failures(void **state)
{
    fx_t *f = *state;
    /* Large, in few values: the allocations to fail are the buffer's
     * and the request's, not one per item of the decode. */
    static char big[96 * 1024];
    memset(big, 'x', sizeof big - 1);
    json_t *doc = json_pack("{s:s, s:s, s:[i,i,i]}", "kind", "List", "data", big, "n", 1, 2, 3);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    assert_true(strlen(text) > 64 * 1024);
    write_file(f, "list.json", text, strlen(text));
    mem_free(text);
    kc_t *c = client(f);
    json_t *req = json_pack("{s:s}", "kind", "Request");
    assert_non_null(req);
    for (int with_body = 0; with_body < 2; with_body++) {
        for (int once = 1; once >= 0; once--) {
            for (long n = 0;; n++) {
                assert_true(n < 20000);
                long status = 0;
                json_t *resp = NULL;
                err_t err = {0};
                unsigned long before = mem_failures();
                if (once)
                    mem_fail_once(n);
                else
                    mem_fail_after(n);
                int rc = kc_request(c, "GET", "/list.json", with_body ? req : NULL, &status,
                                    &resp, &err);
                mem_fail_after(-1);
                int fired = mem_failures() != before;
                if (rc) {
                    if (rc != ERR_NOMEM || err.code != ERR_NOMEM)
                        fail_msg("allocation %ld%s failing: %s %s", n, once ? " alone" : "",
                                 err_name(rc), err.message);
                    assert_null(resp);
                    continue;
                }
                if (!json_equal(resp, doc))
                    fail_msg("allocation %ld%s failing: success with %s", n,
                             once ? " alone" : "",
                             json_is_null(resp) ? "JSON null" : "another document");
                json_decref(resp);
                if (!fired)
                    break;
            }
        }
    }
    json_decref(req);
    json_decref(doc);
    kc_free(c);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeclient__text_token_and_ca),
        cmocka_unit_test(test_kubeclient__text_client_cert_insecure),
        cmocka_unit_test(test_kubeclient__parts),
        cmocka_unit_test(test_kubeclient__refused),
        cmocka_unit_test(test_kubeclient__allocation_failures),
        FX_TEST(test_kubeclient__response_allocation_failures),
    };
    return cmocka_run_group_tests_name("kubeclient", tests, NULL, NULL);
}
