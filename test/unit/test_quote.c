/* Unit tests of apimachinery/quote: Go's strconv.Quote, which kube's
 * messages quote names and values with. Expected forms are Go's own
 * output for the same bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../apimachinery/quote.h"

static void check(const char *in, size_t n, const char *want)
{
    char buf[128];
    size_t len = quote_go(buf, sizeof buf, in, n);
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
    sbuf_t b = SBUF_INIT;
    quote_go_sb(&b, in, n);
    assert_false(b.oom);
    assert_string_equal(b.p, want);
    sbuf_free(&b);
}

static void test_quote__as_go(void **state)
{
    (void)state;
    check("", 0, "\"\"");
    check("a,b=c", 5, "\"a,b=c\"");
    check("q\"b\\s", 5, "\"q\\\"b\\\\s\"");
    check("\a\b\f\n\r\t\v", 7, "\"\\a\\b\\f\\n\\r\\t\\v\"");
    check("\x01\x1f\x7f", 3, "\"\\x01\\x1f\\x7f\"");
    check("a\0b", 3, "\"a\\x00b\"");
    /* Valid UTF-8 prints; invalid bytes are escaped one by one. */
    check("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");
    check("\xe6\x97\xa5", 3, "\"\xe6\x97\xa5\"");
    check("\xff\xc3", 2, "\"\\xff\\xc3\"");
    check("\xc0\xaf", 2, "\"\\xc0\\xaf\"");          /* overlong '/' */
    check("\xed\xa0\x80", 3, "\"\\xed\\xa0\\x80\""); /* a surrogate */
    /* Runes Go does not print. */
    check("\xc2\x85", 2, "\"\\u0085\"");
    check("\xc2\xad", 2, "\"\\u00ad\"");
    check("\xe2\x80\xa8", 3, "\"\\u2028\"");
}

static void test_quote__cut_like_snprintf(void **state)
{
    (void)state;
    char buf[8];
    /* "\"ab\\ncd\"" is 8 bytes: the result is cut at a whole piece, never
     * inside an escape, and the whole length is returned. */
    assert_int_equal(quote_go(buf, sizeof buf, "ab\ncd", 5), 8);
    assert_string_equal(buf, "\"ab\\ncd");
    assert_int_equal(quote_go(buf, 5, "ab\ncd", 5), 8);
    assert_string_equal(buf, "\"ab");
    assert_int_equal(quote_go(NULL, 0, "ab", 2), 4);
    assert_int_equal(quote_go(buf, 1, "ab", 2), 4);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote__as_go),
        cmocka_unit_test(test_quote__cut_like_snprintf),
    };
    return cmocka_run_group_tests_name("quote", tests, NULL, NULL);
}
