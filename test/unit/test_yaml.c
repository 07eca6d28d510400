/* Unit tests of lib/yaml: YAML documents to JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../lib/mem.h"
#include "../../lib/yaml.h"

typedef struct row {
    const char *yaml;
    const char *json;            /* expected, compact; NULL: an error */
} row_t;

static const row_t rows[] = {
    {"a: 1\nb: [x, 'y', \"2\"]\nc: {d: true, e: null, f: 1.5}\n",
     "{\"a\":1,\"b\":[\"x\",\"y\",\"2\"],\"c\":{\"d\":true,\"e\":null,\"f\":1.5}}"},
    {"apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: abc\n",
     "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"users\":[{\"name\":\"u\",\"user\":{\"token\":\"abc\"}}]}"},
    {"v: v1.30\nn: -12\ns: '007'\nt: yes\nempty:\n", "{\"v\":\"v1.30\",\"n\":-12,\"s\":\"007\",\"t\":\"yes\",\"empty\":null}"},
    {"block: |\n  line1\n  line2\n", "{\"block\":\"line1\\nline2\\n\"}"},
    {"{\"already\": \"json\"}", "{\"already\":\"json\"}"},
    {"", "null"},
    {"a: &x 1\nb: *x\n", NULL},        /* aliases refused */
    {"a: [1, 2\n", NULL},              /* malformed */
    {"? [1]\n: v\n", NULL},             /* non-scalar key */
};

static void test_yaml__documents(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *j = NULL;
        err_t err = {0};
        int rc = yml_to_json(rows[i].yaml, strlen(rows[i].yaml), &j, &err);
        if (!rows[i].json) {
            if (rc != ERR_BAD_REQUEST)
                fail_msg("row %zu: want an error, got %d", i, rc);
            continue;
        }
        if (rc)
            fail_msg("row %zu: %s", i, err.message);
        char *got = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        if (strcmp(got, rows[i].json))
            fail_msg("row %zu: got %s want %s", i, got, rows[i].json);
        mem_free(got);
        json_decref(j);
    }
}

static void test_yaml__depth_bound(void **state)
{
    (void)state;
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    json_t *j = NULL;
    err_t err = {0};
    assert_int_equal(yml_to_json(deep, n, &j, &err), ERR_BAD_REQUEST);
}

static void test_yaml__allocation_failures(void **state)
{
    (void)state;
    const char *y = "a: {b: [1, 2, {c: d}]}\n";
    for (long k = 0; k < 30; k++) {
        json_t *j = NULL;
        err_t err = {0};
        mem_fail_after(k);
        int rc = yml_to_json(y, strlen(y), &j, &err);
        mem_fail_after(-1);
        assert_true(rc == 0 || rc == ERR_NOMEM);
        json_decref(j);
    }
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml__documents),
        cmocka_unit_test(test_yaml__depth_bound),
        cmocka_unit_test(test_yaml__allocation_failures),
    };
    return cmocka_run_group_tests_name("yaml", tests, NULL, NULL);
}
