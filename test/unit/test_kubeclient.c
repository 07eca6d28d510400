/* Unit tests of apiservice/kubeclient.c: the response buffer and the
 * request's own allocations, with no kube-apiserver: curl reads the
 * "server" from a file:// URL of the fixture's directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../apiservice/kubeclient.h"
#include "../../lib/mem.h"
#include "fixture.h"

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
        FX_TEST(test_kubeclient__response_allocation_failures),
    };
    return cmocka_run_group_tests_name("kubeclient", tests, NULL, NULL);
}
