/* Unit tests of apimachinery/semver: Semantic Versioning 2.0.0, with the
 * examples semver.org gives. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../apimachinery/semver.h"

static void test_semver__valid_and_invalid(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "0.0.4", "1.2.3", "10.20.30", "1.1.2-prerelease+meta", "1.1.2+meta", "1.1.2+meta-valid",
        "1.0.0-alpha", "1.0.0-beta", "1.0.0-alpha.beta", "1.0.0-alpha.beta.1", "1.0.0-alpha.1",
        "1.0.0-alpha0.valid", "1.0.0-alpha.0valid", "1.0.0-rc.1+build.1", "2.0.0-rc.1+build.123",
        "1.2.3-beta", "10.2.3-DEV-SNAPSHOT", "1.2.3-SNAPSHOT-123", "2.0.0+build.1848",
        "2.0.1-alpha.1227", "1.0.0+0.build.1-rc.10000aaa-kk-0.1", "1.0.0-0A.is.legal",
        "99999999999999999.999999999999999999.99999999999999999", NULL};
    static const char *const bad[] = {
        "", "1", "1.2", "1.2.3-0123", "1.2.3-0123.0123", "1.1.2+.123", "+invalid", "-invalid",
        "-invalid+invalid", "-invalid.01", "alpha", "alpha.beta", "alpha.beta.1", "alpha.1",
        "1.0.0-alpha_beta", "-alpha.", "1.0.0-alpha..", "1.0.0-alpha..1", "01.1.1", "1.01.1",
        "1.1.01", "1.2.3.DEV", "1.2-SNAPSHOT", "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
        "+justmeta", "9.8.7+meta+meta", "9.8.7-whatever+meta+meta", "v1.2.3", "1.2.3 ",
        "99999999999999999999.0.0", NULL};
    semver_t v;
    const char *why = NULL;
    for (size_t i = 0; ok[i]; i++)
        if (semver_parse(ok[i], &v, &why))
            fail_msg("%s refused: %s", ok[i], why);
    for (size_t i = 0; bad[i]; i++)
        if (!semver_parse(bad[i], &v, &why))
            fail_msg("%s accepted", bad[i]);
    assert_int_equal(semver_parse("v1.2.3", &v, &why), -1);
    assert_non_null(strstr(why, "leading \"v\""));
    assert_int_equal(semver_parse("1.1.2-rc.1+meta", &v, NULL), 0);
    assert_int_equal(v.major, 1);
    assert_int_equal(v.patch, 2);
    assert_int_equal(v.pre_len, 4);
    assert_memory_equal(v.pre, "rc.1", 4);
    assert_memory_equal(v.build, "meta", 4);
    assert_true(semver_is_prerelease(&v));
}

static void test_semver__precedence(void **state)
{
    (void)state;
    /* semver.org rule 11, in ascending order. */
    static const char *const order[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.9.3", "1.10.0", "2.0.0", "2.1.0", "2.1.1",
        NULL};
    for (size_t i = 0; order[i]; i++)
        for (size_t j = 0; order[j]; j++) {
            semver_t a, b;
            assert_int_equal(semver_parse(order[i], &a, NULL), 0);
            assert_int_equal(semver_parse(order[j], &b, NULL), 0);
            int c = semver_cmp(&a, &b);
            int want = i < j ? -1 : i > j;
            if ((c > 0) - (c < 0) != want)
                fail_msg("%s vs %s: %d", order[i], order[j], c);
        }
    semver_t a, b;
    semver_parse("1.0.0+build.1", &a, NULL);
    semver_parse("1.0.0+build.2", &b, NULL);
    assert_int_equal(semver_cmp(&a, &b), 0);   /* build metadata is ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semver__valid_and_invalid),
        cmocka_unit_test(test_semver__precedence),
    };
    return cmocka_run_group_tests_name("semver", tests, NULL, NULL);
}
