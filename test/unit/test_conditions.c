/* Unit tests of controllers/conditions: status.conditions as
 * metav1.Condition. What a user sees: kubectl's conditions, whose
 * lastTransitionTime must only move when the status does (or every
 * resync would write the object), in a stable order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../controllers/conditions.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

#define T0 ((time_t)1700000000)   /* 2023-11-14T22:13:20Z */
#define T1 ((time_t)1700000600)   /* 2023-11-14T22:23:20Z */
#define T2 ((time_t)1700003600)   /* 2023-11-14T23:13:20Z */

static json_t *J(const char *txt)
{
    json_error_t e;
    json_t *v = json_loads(txt, 0, &e);
    if (!v)
        fail_msg("bad fixture %s: %s", txt, e.text);
    return v;
}

/* status equals the JSON text want. */
static void check_json(const json_t *status, const char *want)
{
    json_t *w = J(want);
    if (!json_equal(status, w)) {
        char *got = json_dumps(status, JSON_SORT_KEYS | JSON_COMPACT);
        char *exp = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
        fprintf(stderr, "got  %s\nwant %s\n", got, exp);
        mem_free(got);
        mem_free(exp);
        json_decref(w);
        fail_msg("status differs");
    }
    json_decref(w);
}

static const char *field(const json_t *status, const char *type, const char *name)
{
    return json_string_value(json_object_get(cond_get(status, type), name));
}

/* A new condition has all six fields, the time in RFC 3339 UTC. */
static void test_conditions__new_condition(void **state)
{
    (void)state;
    json_t *s = json_object();
    assert_int_equal(cond_set(s, "Ready", "True", "Reconciled", "all good", 3, T0), 0);
    check_json(s, "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
               "\"observedGeneration\":3,\"lastTransitionTime\":\"2023-11-14T22:13:20Z\","
               "\"reason\":\"Reconciled\",\"message\":\"all good\"}]}");
    /* No message: "" (the field is required in metav1.Condition). */
    assert_int_equal(cond_set(s, "Synced", "False", "Pending", NULL, 0, (time_t)0), 0);
    assert_string_equal(field(s, "Synced", "message"), "");
    assert_string_equal(field(s, "Synced", "lastTransitionTime"), "1970-01-01T00:00:00Z");
    json_decref(s);
}

/* Same status again (a resync, a new generation, new words): the time of
 * the transition stays, the rest follows. */
static void test_conditions__same_status_keeps_transition_time(void **state)
{
    (void)state;
    json_t *s = json_object();
    assert_int_equal(cond_set(s, "Ready", "False", "Waiting", "no role yet", 1, T0), 0);
    assert_int_equal(cond_set(s, "Ready", "False", "Blocked", "quota", 2, T1), 0);
    check_json(s, "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
               "\"observedGeneration\":2,\"lastTransitionTime\":\"2023-11-14T22:13:20Z\","
               "\"reason\":\"Blocked\",\"message\":\"quota\"}]}");

    /* Nothing changed: an equal status, so the controller writes nothing. */
    json_t *before = json_deep_copy(s);
    assert_int_equal(cond_set(s, "Ready", "False", "Blocked", "quota", 2, T2), 0);
    assert_true(json_equal(s, before));
    json_decref(before);
    json_decref(s);
}

/* A status change moves lastTransitionTime, each time. */
static void test_conditions__status_change_moves_transition_time(void **state)
{
    (void)state;
    json_t *s = json_object();
    assert_int_equal(cond_set(s, "Ready", "True", "Reconciled", "", 1, T0), 0);
    assert_int_equal(cond_set(s, "Ready", "False", "Failed", "boom", 1, T1), 0);
    check_json(s, "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
               "\"observedGeneration\":1,\"lastTransitionTime\":\"2023-11-14T22:23:20Z\","
               "\"reason\":\"Failed\",\"message\":\"boom\"}]}");
    assert_int_equal(cond_set(s, "Ready", "Unknown", "Lost", "", 1, T2), 0);
    assert_string_equal(field(s, "Ready", "lastTransitionTime"), "2023-11-14T23:13:20Z");
    assert_int_equal(cond_set(s, "Ready", "True", "Reconciled", "", 1, T0), 0);
    assert_string_equal(field(s, "Ready", "lastTransitionTime"), "2023-11-14T22:13:20Z");
    /* One entry per type, however often it is set. */
    assert_int_equal(json_array_size(json_object_get(s, "conditions")), 1);
    json_decref(s);
}

/* Conditions keep the order they were first set in. */
static void test_conditions__order_kept(void **state)
{
    (void)state;
    json_t *s = json_object();
    assert_int_equal(cond_set(s, "Ready", "True", "A", "", 1, T0), 0);
    assert_int_equal(cond_set(s, "Synced", "True", "B", "", 1, T0), 0);
    assert_int_equal(cond_set(s, "Degraded", "False", "C", "", 1, T0), 0);
    assert_int_equal(cond_set(s, "Ready", "False", "D", "", 2, T1), 0);
    assert_int_equal(cond_set(s, "Synced", "True", "E", "", 2, T1), 0);
    const json_t *cs = json_object_get(s, "conditions");
    assert_int_equal(json_array_size(cs), 3);
    static const char *const want[][2] = {{"Ready", "D"}, {"Synced", "E"}, {"Degraded", "C"}};
    for (size_t i = 0; i < 3; i++) {
        const json_t *c = json_array_get(cs, i);
        assert_string_equal(json_string_value(json_object_get(c, "type")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(c, "reason")), want[i][1]);
        assert_ptr_equal(cond_get(s, want[i][0]), c);
    }
    json_decref(s);
}

static void test_conditions__get_and_is_true(void **state)
{
    (void)state;
    json_t *s = J("{\"phase\":\"Running\"}");
    assert_null(cond_get(s, "Ready"));
    assert_false(cond_is_true(s, "Ready"));
    assert_int_equal(cond_set(s, "Ready", "True", "Ok", "", 1, T0), 0);
    assert_int_equal(cond_set(s, "Synced", "False", "No", "", 1, T0), 0);
    assert_int_equal(cond_set(s, "Healthy", "Unknown", "Maybe", "", 1, T0), 0);
    assert_true(cond_is_true(s, "Ready"));
    assert_false(cond_is_true(s, "Synced"));
    assert_false(cond_is_true(s, "Healthy"));
    assert_false(cond_is_true(s, "Missing"));
    assert_null(cond_get(s, "Missing"));
    assert_null(cond_get(s, "ready"));        /* types are case-sensitive */
    assert_string_equal(field(s, "Synced", "reason"), "No");

    /* Entries a client wrote badly are skipped, not trusted. */
    json_t *odd = J("{\"conditions\":[1, {\"status\":\"True\"}, {\"type\":7},"
                    "{\"type\":\"Ready\",\"status\":true},"
                    "{\"type\":\"Synced\",\"status\":\"True\"}]}");
    assert_false(cond_is_true(odd, "Ready"));
    assert_non_null(cond_get(odd, "Ready"));
    assert_true(cond_is_true(odd, "Synced"));
    json_decref(odd);
    json_decref(s);
}

/* A status without conditions gets the array, the rest kept; a
 * "conditions" that is not an array is replaced by one. */
static void test_conditions__array_made_or_replaced(void **state)
{
    (void)state;
    json_t *s = J("{\"phase\":\"Running\",\"observedGeneration\":4}");
    assert_int_equal(cond_set(s, "Ready", "True", "Ok", "fine", 4, T0), 0);
    check_json(s, "{\"phase\":\"Running\",\"observedGeneration\":4,\"conditions\":["
               "{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":4,"
               "\"lastTransitionTime\":\"2023-11-14T22:13:20Z\",\"reason\":\"Ok\","
               "\"message\":\"fine\"}]}");
    json_decref(s);

    static const char *const bad[] = {
        "{\"conditions\":\"oops\"}",
        "{\"conditions\":{\"type\":\"Ready\",\"status\":\"True\"}}",
        "{\"conditions\":null}",
        "{\"conditions\":17}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = J(bad[i]);
        assert_int_equal(cond_set(s, "Ready", "False", "No", "m", 1, T1), 0);
        check_json(s, "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
                   "\"observedGeneration\":1,\"lastTransitionTime\":\"2023-11-14T22:23:20Z\","
                   "\"reason\":\"No\",\"message\":\"m\"}]}");
        json_decref(s);
    }
}

/* Out of memory at any allocation: ERR_NOMEM and the status exactly as it
 * was (a controller that then gives up writes nothing half-made); with
 * enough memory, the same result as without faults. Covers a new array,
 * one replaced, one that must grow, a status object that must grow, and
 * an update in place. */
static void test_conditions__out_of_memory(void **state)
{
    (void)state;
    static const struct {
        const char *status, *type, *st;
    } cases[] = {
        {"{}", "Ready", "True"},
        {"{\"conditions\":\"oops\"}", "Ready", "True"},
        {"{\"conditions\":[{\"type\":\"A\"},{\"type\":\"B\"},{\"type\":\"C\"},{\"type\":\"D\"},"
         "{\"type\":\"E\"},{\"type\":\"F\"},{\"type\":\"G\"},{\"type\":\"H\"}]}", "Ready", "True"},
        {"{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8}", "Ready", "True"},
        {"{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":1,"
         "\"lastTransitionTime\":\"2023-11-14T22:13:20Z\",\"reason\":\"Ok\",\"message\":\"\"}]}",
         "Ready", "False"},
        {"{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"observedGeneration\":1,"
         "\"lastTransitionTime\":\"2023-11-14T22:13:20Z\",\"reason\":\"Ok\",\"message\":\"\"}]}",
         "Ready", "True"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *want = J(cases[i].status);
        assert_int_equal(cond_set(want, cases[i].type, cases[i].st, "Why", "what happened", 2,
                                  T1), 0);
        for (int once = 0; once < 2; once++)
            for (long n = 0;; n++) {
                assert_true(n < 1000);
                json_t *s = J(cases[i].status);
                json_t *orig = json_deep_copy(s);
                assert_non_null(orig);
                unsigned long before = mem_failures();
                if (once)
                    mem_fail_once(n);
                else
                    mem_fail_after(n);
                int rc = cond_set(s, cases[i].type, cases[i].st, "Why", "what happened", 2, T1);
                mem_fail_after(-1);
                int fired = mem_failures() != before;
                if (rc) {
                    if (rc != ERR_NOMEM || !fired)
                        fail_msg("case %zu, allocation %ld failing: %s", i, n, err_name(rc));
                    if (!json_equal(s, orig))
                        fail_msg("case %zu, allocation %ld failing: status changed", i, n);
                } else if (!json_equal(s, want)) {
                    fail_msg("case %zu, allocation %ld failing: wrong result", i, n);
                }
                json_decref(orig);
                json_decref(s);
                if (!fired)
                    break;
            }
        json_decref(want);
    }
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditions__new_condition),
        cmocka_unit_test(test_conditions__same_status_keeps_transition_time),
        cmocka_unit_test(test_conditions__status_change_moves_transition_time),
        cmocka_unit_test(test_conditions__order_kept),
        cmocka_unit_test(test_conditions__get_and_is_true),
        cmocka_unit_test(test_conditions__array_made_or_replaced),
        cmocka_unit_test(test_conditions__out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
