/* Unit tests of apimachinery/keys: kube-apiserver's storage key layout,
 * which the registry writes by and the authorizer follows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../apimachinery/keys.h"

static void test_keys__layout(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(keys_object(buf, sizeof buf, "iam.theriseunion.io", "iamroles", 0, "x",
                                 "viewer"), 0);
    assert_string_equal(buf, "/iam.theriseunion.io/iamroles/viewer");
    assert_int_equal(keys_object(buf, sizeof buf, "app.theriseunion.io", "applications", 1,
                                 "shop", "web"), 0);
    assert_string_equal(buf, "/app.theriseunion.io/applications/shop/web");
    assert_int_equal(keys_object(buf, sizeof buf, "app.theriseunion.io", "applications", 1, NULL,
                                 "web"), 0);
    assert_string_equal(buf, "/app.theriseunion.io/applications//web");
    /* A key that does not fit is refused, never cut into another key. */
    assert_int_equal(keys_object(buf, 20, "iam.theriseunion.io", "iamroles", 0, NULL, "viewer"),
                     -1);
    keys_prefix(buf, sizeof buf, "app.theriseunion.io", "applications", 1, "shop");
    assert_string_equal(buf, "/app.theriseunion.io/applications/shop/");
    keys_prefix(buf, sizeof buf, "app.theriseunion.io", "applications", 1, "");
    assert_string_equal(buf, "/app.theriseunion.io/applications/");
    keys_prefix(buf, sizeof buf, "iam.theriseunion.io", "iamroles", 0, "shop");
    assert_string_equal(buf, KEYS_PREFIX("iam.theriseunion.io", "iamroles"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys__layout),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
