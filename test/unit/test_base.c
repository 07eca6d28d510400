/* Unit tests of the base modules in lib/: err, b64, mem, log. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../lib/b64.h"
#include "../../lib/err.h"
#include "../../lib/log.h"
#include "../../lib/mem.h"

static void test_err__table(void **state)
{
    (void)state;
    static const struct { int code; int http; const char *reason; } rows[] = {
        {ERR_NOT_FOUND, 404, "NotFound"},
        {ERR_ALREADY_EXISTS, 409, "AlreadyExists"},
        {ERR_CONFLICT, 409, "Conflict"},
        {ERR_EXPIRED, 410, "Expired"},
        {ERR_INVALID, 422, "Invalid"},
        {ERR_BAD_REQUEST, 400, "BadRequest"},
        {ERR_UNAUTHORIZED, 401, "Unauthorized"},
        {ERR_FORBIDDEN, 403, "Forbidden"},
        {ERR_TOO_LARGE_RV, 504, "Timeout"},
        {ERR_UNAVAILABLE, 503, "ServiceUnavailable"},
        {12345, 500, "InternalError"},  /* unknown codes are internal */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(err_http_status(rows[i].code), rows[i].http);
        assert_string_equal(err_reason(rows[i].code), rows[i].reason);
    }
    assert_string_equal(err_name(ERR_CONFLICT), "ERR_CONFLICT");
}

static void test_err__first_error_wins(void **state)
{
    (void)state;
    err_t e = {0};
    assert_int_equal(err_set(&e, ERR_NOT_FOUND, "widget %s not found", "w1"), ERR_NOT_FOUND);
    assert_int_equal(err_set(&e, ERR_INTERNAL, "later"), ERR_INTERNAL);
    assert_int_equal(e.code, ERR_NOT_FOUND);
    assert_string_equal(e.message, "widget w1 not found");
    err_add_cause(&e, "FieldValueRequired", "spec.scope", "Required value");
    assert_int_equal(e.ncauses, 1);
    assert_string_equal(e.causes[0].field, "spec.scope");
    err_clear(&e);
    assert_int_equal(e.code, 0);
    assert_int_equal(err_set(&e, ERR_GONE, NULL), ERR_GONE);
    assert_string_equal(e.message, "gone");
    assert_int_equal(err_set(NULL, ERR_GONE, "x"), ERR_GONE);
}

/* A callee's own err_t passed on: code, message and causes, unless the
 * caller's already holds an error. */
static void test_err__forward(void **state)
{
    (void)state;
    err_t inner = {0}, e = {0};
    assert_int_equal(err_forward(&e, &inner), 0);
    assert_int_equal(e.code, 0);
    err_add_cause(&inner, "FieldValueInvalid", "spec.x", "Invalid value");
    err_set(&inner, ERR_INVALID, "x is invalid");
    assert_int_equal(err_forward(&e, &inner), ERR_INVALID);
    assert_int_equal(e.code, ERR_INVALID);
    assert_string_equal(e.message, "x is invalid");
    assert_int_equal(e.ncauses, 1);
    assert_string_equal(e.causes[0].field, "spec.x");
    err_t later = {0};
    err_set(&later, ERR_NOMEM, NULL);
    assert_int_equal(err_forward(&e, &later), ERR_NOMEM);
    assert_int_equal(e.code, ERR_INVALID);
    assert_int_equal(err_forward(NULL, &later), ERR_NOMEM);
}

/* A message cut to fit ends on a whole character, whatever the offset of
 * the cut; text that fits, or bytes that were never UTF-8, stay as given. */
static void test_err__cut_ends_on_a_character(void **state)
{
    (void)state;
    char name[2000];
    for (int shift = 0; shift < 4; shift++) {
        size_t n = 0;
        for (int i = 0; i < shift; i++)
            name[n++] = 'x';
        while (n + 4 < sizeof name) {  /* U+1F600, four bytes */
            memcpy(name + n, "\xf0\x9f\x98\x80", 4);
            n += 4;
        }
        name[n] = '\0';
        err_t e = {0};
        err_set(&e, ERR_INVALID, "name %s", name);
        size_t len = strlen(e.message);
        assert_true(len > sizeof e.message - 5);
        assert_int_equal((len - 5 - (size_t)shift) % 4, 0);  /* "name " + shift + whole chars */
        err_add_cause(&e, "FieldValueInvalid", name, "Invalid value: %s", name);
        assert_int_equal((strlen(e.causes[0].message) - 15 - (size_t)shift) % 4, 0);
        assert_int_equal((strlen(e.causes[0].field) - (size_t)shift) % 4, 0);
    }
    err_t e = {0};
    err_set(&e, ERR_NOT_FOUND, "a\xff\xc3" "b");
    assert_string_equal(e.message, "a\xff\xc3" "b");
}

static void test_b64__round_trip(void **state)
{
    (void)state;
    /* RFC 4648 section 10 vectors. */
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *raw[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s = b64_encode(in[i], strlen(in[i]), B64_STD);
        assert_string_equal(s, std[i]);
        mem_free(s);
        s = b64_encode(in[i], strlen(in[i]), B64_URL_RAW);
        assert_string_equal(s, raw[i]);
        mem_free(s);
        unsigned char *d;
        size_t n;
        assert_int_equal(b64_decode(std[i], strlen(std[i]), B64_STD, &d, &n), 0);
        assert_int_equal(n, strlen(in[i]));
        assert_memory_equal(d, in[i], n);
        mem_free(d);
    }
    unsigned char bin[] = {0xfb, 0xff, 0x00};
    char *s = b64_encode(bin, 3, B64_URL_RAW);
    assert_string_equal(s, "-_8A");
    mem_free(s);
    unsigned char *d;
    size_t n;
    assert_int_equal(b64_decode("+/8A", 4, B64_URL_RAW, &d, &n), ERR_BAD_REQUEST);
    assert_int_equal(b64_decode("Z", 1, B64_STD, &d, &n), ERR_BAD_REQUEST);
}

static void test_mem__injected_failure(void **state)
{
    (void)state;
    mem_fail_after(2);
    void *a = mem_alloc(8), *b = mem_alloc(8), *c = mem_alloc(8);
    mem_fail_after(-1);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    mem_free(a);
    mem_free(b);
    /* jansson allocates through mem too. */
    mem_fail_after(0);
    json_t *j = json_object();
    mem_fail_after(-1);
    assert_null(j);
}

/* mem_fail_once fails one allocation, not the rest; mem_failures counts
 * what failed on this thread. */
static void test_mem__fail_once(void **state)
{
    (void)state;
    unsigned long before = mem_failures();
    mem_fail_once(1);
    void *a = mem_alloc(8), *b = mem_alloc(8), *c = mem_alloc(8);
    mem_fail_after(-1);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    assert_int_equal(mem_failures(), before + 1);
    mem_free(a);
    mem_free(c);
    mem_fail_once(5);
    a = mem_alloc(8);
    mem_fail_after(-1);
    assert_non_null(a);
    assert_int_equal(mem_failures(), before + 1);
    mem_free(a);
}

/* The budget belongs to the thread that set it: a thread's injected
 * failures never reach another thread (a store's writer, say), and
 * another thread's budget never reaches this one. */
static void *alloc_in_thread(void *arg)
{
    long budget = *(long *)arg;
    if (budget >= 0)
        mem_fail_after(budget);
    void *p = mem_alloc(8);
    mem_fail_after(-1);
    int ok = p != NULL;
    mem_free(p);
    return ok ? arg : NULL;
}

static void test_mem__budget_is_per_thread(void **state)
{
    (void)state;
    pthread_t t;
    long none = -1, zero = 0;
    /* This thread's budget is spent; another thread allocates freely. */
    mem_fail_after(0);
    assert_int_equal(pthread_create(&t, NULL, alloc_in_thread, &none), 0);
    void *res = NULL;
    pthread_join(t, &res);
    void *mine = mem_alloc(8);
    mem_fail_after(-1);
    assert_non_null(res);
    assert_null(mine);
    /* Another thread spends its own budget; this one is untouched. */
    assert_int_equal(pthread_create(&t, NULL, alloc_in_thread, &zero), 0);
    pthread_join(t, &res);
    assert_null(res);
    mine = mem_alloc(8);
    assert_non_null(mine);
    mem_free(mine);
}

/* Lines in klog's shape, one write each; -v decides what log_v writes. */
static void test_log__levels_and_shape(void **state)
{
    (void)state;
    char path[] = "/tmp/edge-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    log_set_verbosity(0);
    log_error("e %d", 1);
    log_warning("w");
    log_info("i\n");
    log_v(1, "hidden at 0");
    log_set_verbosity(2);
    log_v(2, "shown at 2");
    log_v(3, "hidden at 2");
    log_set_verbosity(0);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char buf[1024] = {0};
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    unlink(path);
    const char *want[] = {"E", "e 1", "W", "w", "I", "i", "I", "shown at 2"};
    char *save = NULL;
    int n = 0;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        assert_true(n < 4);
        /* "E1207 22:22:11.862673 edge-apiserver: e 1" */
        assert_int_equal(line[0], want[2 * n][0]);
        assert_true(strlen(line) > 38);
        assert_int_equal(line[5], ' ');
        assert_int_equal(line[14], '.');
        assert_memory_equal(line + 21, " edge-apiserver: ", 17);
        assert_string_equal(line + 38, want[2 * n + 1]);
    }
    assert_int_equal(n, 4);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err__table),
        cmocka_unit_test(test_err__first_error_wins),
        cmocka_unit_test(test_err__forward),
        cmocka_unit_test(test_err__cut_ends_on_a_character),
        cmocka_unit_test(test_b64__round_trip),
        cmocka_unit_test(test_mem__injected_failure),
        cmocka_unit_test(test_mem__fail_once),
        cmocka_unit_test(test_mem__budget_is_per_thread),
        cmocka_unit_test(test_log__levels_and_shape),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
