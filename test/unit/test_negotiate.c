/* Unit tests of aggregator/negotiate: Accept headers real clients send. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../aggregator/negotiate.h"

typedef struct row {
    const char *header;
    int table;
    const char *table_version;
    int discovery;
    const char *discovery_version;
    int json_ok;
} row_t;

static const row_t rows[] = {
    /* kubectl get */
    {"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
     1, "meta.k8s.io/v1", 0, NULL, 1},
    /* older clients asking for v1beta1 Tables first */
    {"application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json", 1, "meta.k8s.io/v1beta1", 0, NULL, 1},
    /* kube-apiserver 1.30+ aggregator fetching /apis */
    {"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
     0, NULL, 1, "apidiscovery.k8s.io/v2", 0},
    /* 1.27-1.29 aggregator: v2beta1 only, no JSON fallback */
    {"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", 0, NULL, 1,
     "apidiscovery.k8s.io/v2beta1", 0},
    /* kubectl discovery: aggregated first, then plain JSON */
    {"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json;q=0.9",
     0, NULL, 1, "apidiscovery.k8s.io/v2", 1},
    /* an unknown discovery version is not served */
    {"application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", 0, NULL, 0, NULL, 0},
    /* protobuf only: nothing we produce */
    {"application/vnd.kubernetes.protobuf", 0, NULL, 0, NULL, 0},
    /* protobuf first, JSON second: JSON */
    {"application/vnd.kubernetes.protobuf, application/json", 0, NULL, 0, NULL, 1},
    {"*/*", 0, NULL, 0, NULL, 1},
    {"", 0, NULL, 0, NULL, 1},
    /* a Table of another group is not a Table we make */
    {"application/json;as=Table;v=v1;g=example.com", 0, NULL, 0, NULL, 0},
    /* application/jsonx is not JSON */
    {"application/jsonx", 0, NULL, 0, NULL, 0},
};

static void test_negotiate__table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        agg_accept_t a;
        agg_parse_accept(rows[i].header, &a);
        if (a.table != rows[i].table || a.discovery != rows[i].discovery ||
            a.json_ok != rows[i].json_ok)
            fail_msg("row %zu (%s): table %d discovery %d json %d", i, rows[i].header, a.table,
                     a.discovery, a.json_ok);
        if (rows[i].table_version)
            assert_string_equal(a.table_version, rows[i].table_version);
        if (rows[i].discovery_version)
            assert_string_equal(a.discovery_version, rows[i].discovery_version);
    }
}

static void test_negotiate__null_header(void **state)
{
    (void)state;
    agg_accept_t a;
    agg_parse_accept(NULL, &a);
    assert_true(a.json_ok);
    assert_false(a.table);
}

static void test_negotiate__body_format(void **state)
{
    (void)state;
    static const struct {
        const char *ctype;
        int want;
    } rows[] = {
        {NULL, AGG_BODY_JSON},
        {"", AGG_BODY_JSON},
        {"application/json", AGG_BODY_JSON},
        {"application/json; charset=utf-8", AGG_BODY_JSON},
        {"Application/JSON", AGG_BODY_JSON},
        {"application/yaml", AGG_BODY_YAML},
        {"application/yaml;charset=utf-8", AGG_BODY_YAML},
        {"text/plain", AGG_BODY_UNSUPPORTED},
        {"application/xml", AGG_BODY_UNSUPPORTED},
        {"application/jsonx", AGG_BODY_UNSUPPORTED},
        {"application/json-patch+json", AGG_BODY_UNSUPPORTED},
        {"application/x-www-form-urlencoded", AGG_BODY_UNSUPPORTED},
        {"*/*", AGG_BODY_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (agg_body_format(rows[i].ctype) != rows[i].want)
            fail_msg("Content-Type '%s': %d, want %d", rows[i].ctype ? rows[i].ctype : "(none)",
                     agg_body_format(rows[i].ctype), rows[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiate__table),
        cmocka_unit_test(test_negotiate__null_header),
        cmocka_unit_test(test_negotiate__body_format),
    };
    return cmocka_run_group_tests_name("negotiate", tests, NULL, NULL);
}
