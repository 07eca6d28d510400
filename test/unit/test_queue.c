/* Unit tests of controllers/queue: the rate-limited work queue every
 * controller's workers take keys from. Each case checks what a controller
 * would notice if the guarantee broke: a reconcile run twice at once, a
 * change never reconciled, a retry storm or a retry never coming.
 *
 * Timing: the machine may be slow (two cores, AddressSanitizer), so lower
 * bounds are firm and upper bounds loose. */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../controllers/queue.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Joins a thread that must end within about ms (else the test fails and
 * leaves it blocked). */
static void join_within(pthread_t t, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000 + 1;
    if (pthread_timedjoin_np(t, NULL, &ts))
        fail_msg("a thread blocked in wq_get did not end");
}

/* Takes a key that must come now and checks which. */
static void get_now(wq_t *q, const char *want)
{
    const char *key = NULL;
    int rc = wq_get(q, &key, 0);
    if (rc)
        fail_msg("wanted %s, got %s", want, err_name(rc));
    assert_string_equal(key, want);
}

static void get_none(wq_t *q, int timeout_ms)
{
    const char *key = NULL;
    int rc = wq_get(q, &key, timeout_ms);
    if (rc != ERR_TIMEOUT)
        fail_msg("wanted nothing, got %s", rc ? err_name(rc) : key);
}

/* ---- dedup, order, processing ------------------------------------------------- */

/* Three adds of a key before a worker takes it: one reconcile, not three. */
static void test_queue__dedup(void **state)
{
    (void)state;
    wq_t *q = wq_new(NULL);
    assert_non_null(q);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wq_add(q, "ns/a"), 0);
    wq_stats_t st;
    wq_get_stats(q, &st);
    assert_int_equal(st.depth, 1);
    assert_int_equal(st.adds, 1);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.processing, 0);

    get_now(q, "ns/a");
    get_none(q, 0);
    wq_get_stats(q, &st);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.processing, 1);
    wq_done(q, "ns/a");
    get_none(q, 0);
    wq_get_stats(q, &st);
    assert_int_equal(st.processing, 0);
    assert_int_equal(st.adds, 1);
    wq_free(q);
}

/* Distinct keys come out in the order first added; re-adding a queued key
 * does not move it. */
static void test_queue__fifo(void **state)
{
    (void)state;
    wq_t *q = wq_new(NULL);
    assert_non_null(q);
    const char *order[] = {"c", "a", "b", "e", "d"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(wq_add(q, order[i]), 0);
    assert_int_equal(wq_add(q, "a"), 0);
    assert_int_equal(wq_add(q, "c"), 0);
    for (size_t i = 0; i < 5; i++) {
        get_now(q, order[i]);
        wq_done(q, order[i]);
    }
    get_none(q, 0);

    /* More keys than the ring's first size, with wrap-around. */
    char key[16];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 150; i++) {
            snprintf(key, sizeof key, "k%d", i);
            assert_int_equal(wq_add(q, key), 0);
        }
        for (int i = 0; i < 150; i++) {
            snprintf(key, sizeof key, "k%d", i);
            get_now(q, key);
            wq_done(q, key);
        }
        get_none(q, 0);
    }
    wq_free(q);
}

/* A key being reconciled is not handed to a second worker; a change that
 * arrives meanwhile is reconciled once more after wq_done, exactly once. */
static void test_queue__processing_key_requeued_at_done(void **state)
{
    (void)state;
    wq_t *q = wq_new(NULL);
    assert_non_null(q);
    assert_int_equal(wq_add(q, "a"), 0);
    get_now(q, "a");

    for (int i = 0; i < 3; i++)
        assert_int_equal(wq_add(q, "a"), 0);
    get_none(q, 0);
    wq_stats_t st;
    wq_get_stats(q, &st);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.processing, 1);
    assert_int_equal(st.adds, 2);

    /* Another key is not held up by it. */
    assert_int_equal(wq_add(q, "b"), 0);
    get_now(q, "b");
    wq_done(q, "b");

    wq_done(q, "a");
    get_now(q, "a");
    get_none(q, 0);
    wq_done(q, "a");
    get_none(q, 0);

    /* Without a change meanwhile, wq_done queues nothing. */
    assert_int_equal(wq_add(q, "a"), 0);
    get_now(q, "a");
    wq_done(q, "a");
    get_none(q, 0);
    wq_free(q);
}

/* ---- no concurrent reconcile, no lost change ----------------------------------- */

enum { CC_WORKERS = 8, CC_KEYS = 5, CC_ADDS = 20000 };

typedef struct cc {
    wq_t *q;
    atomic_int in_flight[CC_KEYS];
    atomic_int overlaps;         /* times a key was held by two workers */
    atomic_int bad_keys;
    atomic_uint gen[CC_KEYS];    /* changes made to each key */
    atomic_uint seen[CC_KEYS];   /* gen read by the key's last reconcile */
    atomic_uint runs;
} cc_t;

static void *cc_worker(void *arg)
{
    cc_t *c = arg;
    const char *key;
    while (!wq_get(c->q, &key, -1)) {
        int k = key[0] == 'k' ? key[1] - '0' : -1;
        if (k < 0 || k >= CC_KEYS || key[2]) {
            atomic_fetch_add(&c->bad_keys, 1);
            wq_done(c->q, key);
            continue;
        }
        if (atomic_fetch_add(&c->in_flight[k], 1) != 0)
            atomic_fetch_add(&c->overlaps, 1);
        /* The reconcile reads the world as it is when it starts. */
        atomic_store(&c->seen[k], atomic_load(&c->gen[k]));
        sched_yield();
        atomic_fetch_sub(&c->in_flight[k], 1);
        atomic_fetch_add(&c->runs, 1);
        wq_done(c->q, key);
    }
    return NULL;
}

static void *cc_producer(void *arg)
{
    cc_t *c = arg;
    char key[4];
    for (unsigned i = 0; i < CC_ADDS; i++) {
        unsigned k = (i * 7 + i / 3) % CC_KEYS;
        snprintf(key, sizeof key, "k%u", k);
        /* The change first, then its notification, as an informer does. */
        atomic_fetch_add(&c->gen[k], 1);
        if (wq_add(c->q, key))
            atomic_fetch_add(&c->bad_keys, 1);
        if (i % 64 == 0)
            sched_yield();
    }
    return NULL;
}

static void test_queue__no_concurrent_reconcile(void **state)
{
    (void)state;
    static cc_t c;
    memset(&c, 0, sizeof c);
    c.q = wq_new(NULL);
    assert_non_null(c.q);
    pthread_t w[CC_WORKERS], p;
    for (int i = 0; i < CC_WORKERS; i++)
        assert_int_equal(pthread_create(&w[i], NULL, cc_worker, &c), 0);
    assert_int_equal(pthread_create(&p, NULL, cc_producer, &c), 0);
    pthread_join(p, NULL);

    /* Drained: nothing queued, waiting or in a worker's hands. */
    uint64_t give_up = mono_ms() + 20000;
    wq_stats_t st;
    for (;;) {
        wq_get_stats(c.q, &st);
        if (!st.depth && !st.waiting && !st.processing)
            break;
        if (mono_ms() > give_up)
            fail_msg("not drained: depth %zu waiting %zu processing %zu", st.depth,
                     st.waiting, st.processing);
        sleep_ms(5);
    }
    wq_shut_down(c.q);
    for (int i = 0; i < CC_WORKERS; i++)
        join_within(w[i], 5000);

    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(atomic_load(&c.bad_keys), 0);
    for (int k = 0; k < CC_KEYS; k++)
        if (atomic_load(&c.seen[k]) != atomic_load(&c.gen[k]))
            fail_msg("k%d: last reconcile saw change %u of %u", k, atomic_load(&c.seen[k]),
                     atomic_load(&c.gen[k]));
    unsigned runs = atomic_load(&c.runs);
    assert_true(runs >= CC_KEYS && runs <= CC_ADDS);
    assert_int_equal(st.adds, runs);
    wq_free(c.q);
}

/* ---- the rate limiter ---------------------------------------------------------- */

/* A failing key backs off 5, 10, 20, ... ms; its success resets it; other
 * keys are not slowed by it. The bucket is kept out of the way. */
static void test_queue__backoff_doubles(void **state)
{
    (void)state;
    wq_limits_t lim = {.base_ms = 5, .max_ms = 1000000, .qps = 1e9, .burst = 1000000};
    wq_t *q = wq_new(&lim);
    assert_non_null(q);
    for (unsigned i = 0; i < 12; i++) {
        assert_int_equal(wq_failures(q, "bad"), i);
        assert_int_equal(wq_when(q, "bad"), (uint64_t)5 << i);
        /* Reading the delay does not count a failure. */
        assert_int_equal(wq_when(q, "bad"), (uint64_t)5 << i);
        assert_int_equal(wq_add_rate_limited(q, "bad"), 0);
        assert_int_equal(wq_when(q, "good"), 5);
    }
    assert_int_equal(wq_failures(q, "bad"), 12);
    assert_int_equal(wq_failures(q, "good"), 0);
    wq_stats_t st;
    wq_get_stats(q, &st);
    assert_int_equal(st.retries, 12);
    assert_int_equal(st.waiting, 1);

    wq_forget(q, "bad");
    assert_int_equal(wq_failures(q, "bad"), 0);
    assert_int_equal(wq_when(q, "bad"), 5);
    assert_int_equal(wq_add_rate_limited(q, "bad"), 0);
    assert_int_equal(wq_failures(q, "bad"), 1);
    assert_int_equal(wq_when(q, "bad"), 10);
    wq_free(q);
}

static void test_queue__backoff_capped(void **state)
{
    (void)state;
    wq_limits_t lim = {.base_ms = 5, .max_ms = 40, .qps = 1e9, .burst = 1000000};
    wq_t *q = wq_new(&lim);
    assert_non_null(q);
    static const uint64_t want[] = {5, 10, 20, 40, 40, 40, 40};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(wq_when(q, "k"), want[i]);
        assert_int_equal(wq_add_rate_limited(q, "k"), 0);
    }
    /* Many failures later, still the cap (no overflow of the doubling). */
    for (int i = 0; i < 100; i++)
        assert_int_equal(wq_add_rate_limited(q, "k"), 0);
    assert_int_equal(wq_failures(q, "k"), 107);
    assert_int_equal(wq_when(q, "k"), 40);
    wq_forget(q, "k");
    assert_int_equal(wq_when(q, "k"), 5);
    wq_free(q);

    /* A cap that is not base times a power of two. */
    lim.max_ms = 30;
    q = wq_new(&lim);
    assert_non_null(q);
    static const uint64_t want30[] = {5, 10, 20, 30, 30};
    for (size_t i = 0; i < sizeof want30 / sizeof *want30; i++) {
        assert_int_equal(wq_when(q, "k"), want30[i]);
        assert_int_equal(wq_add_rate_limited(q, "k"), 0);
    }
    wq_free(q);

    /* The defaults: client-go's DefaultControllerRateLimiter. */
    q = wq_new(NULL);
    assert_non_null(q);
    assert_int_equal(wq_when(q, "k"), 5);
    assert_int_equal(wq_add_rate_limited(q, "k"), 0);
    assert_int_equal(wq_when(q, "k"), 10);
    wq_free(q);
}

/* The overall bucket (qps 10, burst 3): three retries pass at once, the
 * fourth waits for a token, ~100 ms, the fifth for the next, ~200 ms,
 * whatever keys they are. */
static void test_queue__bucket_limits_all_keys(void **state)
{
    (void)state;
    wq_limits_t lim = {.base_ms = 1, .max_ms = 1, .qps = 10.0, .burst = 3};
    wq_t *q = wq_new(&lim);
    assert_non_null(q);
    const char *keys[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(wq_when(q, keys[i]) <= 1);
        assert_int_equal(wq_add_rate_limited(q, keys[i]), 0);
    }
    uint64_t d = wq_when(q, "d");
    if (d < 50 || d > 100)
        fail_msg("the 4th retry waits %llu ms, not ~100", (unsigned long long)d);
    assert_int_equal(wq_add_rate_limited(q, "d"), 0);
    d = wq_when(q, "e");
    if (d < 150 || d > 200)
        fail_msg("the 5th retry waits %llu ms, not ~200", (unsigned long long)d);
    wq_free(q);

    /* Idle time fills the bucket up to its burst, no further: after 400
     * ms of quiet, still three at once and the fourth waits. */
    q = wq_new(&lim);
    assert_non_null(q);
    sleep_ms(400);
    for (size_t i = 0; i < 3; i++) {
        assert_true(wq_when(q, keys[i]) <= 1);
        assert_int_equal(wq_add_rate_limited(q, keys[i]), 0);
    }
    d = wq_when(q, "d");
    if (d < 50 || d > 100)
        fail_msg("after a quiet spell the 4th retry waits %llu ms, not ~100",
                 (unsigned long long)d);
    wq_free(q);
}

/* ---- delays ---------------------------------------------------------------------- */

/* Takes key, which must come after at least min_ms since t0 and well
 * before a second. */
static void get_after(wq_t *q, const char *want, uint64_t t0, uint64_t min_ms)
{
    const char *key = NULL;
    int rc = wq_get(q, &key, 3000);
    uint64_t took = mono_ms() - t0;
    if (rc)
        fail_msg("wanted %s, got %s", want, err_name(rc));
    assert_string_equal(key, want);
    if (took < min_ms || took > 1000)
        fail_msg("%s came after %llu ms, wanted %llu..1000", want, (unsigned long long)took,
                 (unsigned long long)min_ms);
    wq_done(q, key);
}

static void test_queue__add_after(void **state)
{
    (void)state;
    wq_t *q = wq_new(NULL);
    assert_non_null(q);

    /* Not before its time (1 ms off for the clocks' millisecond rounding). */
    uint64_t t0 = mono_ms();
    assert_int_equal(wq_add_after(q, "a", 50), 0);
    get_none(q, 0);
    wq_stats_t st;
    wq_get_stats(q, &st);
    assert_int_equal(st.waiting, 1);
    assert_int_equal(st.depth, 0);
    get_after(q, "a", t0, 49);
    get_none(q, 0);
    wq_get_stats(q, &st);
    assert_int_equal(st.waiting, 0);

    /* An earlier delay for a waiting key wins, in either order. */
    t0 = mono_ms();
    assert_int_equal(wq_add_after(q, "b", 5000), 0);
    assert_int_equal(wq_add_after(q, "b", 50), 0);
    assert_int_equal(wq_add_after(q, "c", 60), 0);
    assert_int_equal(wq_add_after(q, "c", 5000), 0);
    wq_get_stats(q, &st);
    assert_int_equal(st.waiting, 2);
    get_none(q, 0);
    get_after(q, "b", t0, 49);
    get_after(q, "c", t0, 59);
    get_none(q, 0);
    wq_get_stats(q, &st);
    assert_int_equal(st.waiting, 0);

    /* An add with no delay queues a waiting key now, and that is its one
     * reconcile: the wait it replaced does not bring it back. */
    assert_int_equal(wq_add_after(q, "d", 100), 0);
    assert_int_equal(wq_add(q, "d"), 0);
    get_now(q, "d");
    get_none(q, 0);
    wq_done(q, "d");
    get_none(q, 300);
    wq_get_stats(q, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.depth, 0);

    /* A rate-limited retry comes back by itself after its backoff. */
    t0 = mono_ms();
    assert_int_equal(wq_add_rate_limited(q, "e"), 0);
    get_none(q, 0);
    get_after(q, "e", t0, 4);
    wq_free(q);
}

/* A worker blocked in wq_get: what it got, and when. */
typedef struct getter {
    wq_t *q;
    int timeout_ms;
    int rc;
    char key[16];
    uint64_t at;
} getter_t;

static void *getter_main(void *arg)
{
    getter_t *g = arg;
    const char *key;
    g->rc = wq_get(g->q, &key, g->timeout_ms);
    g->at = mono_ms();
    if (!g->rc) {
        snprintf(g->key, sizeof g->key, "%s", key);
        wq_done(g->q, key);
    }
    return NULL;
}

/* A worker already asleep in wq_get (on an empty queue, or until a later
 * key's time) is woken for a delayed key that comes sooner. */
static void test_queue__add_after_wakes_sleeping_worker(void **state)
{
    (void)state;
    for (int later = 0; later < 2; later++) {
        wq_t *q = wq_new(NULL);
        assert_non_null(q);
        if (later)
            assert_int_equal(wq_add_after(q, "late", 5000), 0);
        getter_t g = {q, 3000, 1, "", 0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, getter_main, &g), 0);
        sleep_ms(50);
        uint64_t t0 = mono_ms();
        assert_int_equal(wq_add_after(q, "soon", 50), 0);
        join_within(t, 3000);
        assert_int_equal(g.rc, 0);
        assert_string_equal(g.key, "soon");
        uint64_t took = g.at - t0;
        if (took < 49 || took > 1000)
            fail_msg("came after %llu ms, wanted 49..1000", (unsigned long long)took);
        wq_free(q);
    }
}

/* A waiting key's time coming while it is being reconciled: it is queued
 * again at wq_done, not handed to a second worker. */
static void test_queue__delay_expires_while_processing(void **state)
{
    (void)state;
    wq_t *q = wq_new(NULL);
    assert_non_null(q);
    assert_int_equal(wq_add(q, "a"), 0);
    get_now(q, "a");
    assert_int_equal(wq_add_after(q, "a", 20), 0);
    get_none(q, 200);
    uint64_t t0 = mono_ms();
    wq_done(q, "a");
    get_after(q, "a", t0, 0);
    get_none(q, 0);
    wq_free(q);
}

/* ---- shutting down --------------------------------------------------------------- */


/* Workers blocked waiting for keys return ERR_CLOSED when the controller
 * stops; later adds are ignored and queued keys dropped. */
static void test_queue__shut_down_wakes_getters(void **state)
{
    (void)state;
    wq_t *q = wq_new(NULL);
    assert_non_null(q);
    getter_t g[2] = {{q, -1, 1, "", 0}, {q, 60000, 1, "", 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
    sleep_ms(50);
    wq_shut_down(q);
    for (int i = 0; i < 2; i++) {
        join_within(t[i], 5000);
        assert_int_equal(g[i].rc, ERR_CLOSED);
    }
    const char *key;
    assert_int_equal(wq_add(q, "a"), 0);
    assert_int_equal(wq_get(q, &key, 0), ERR_CLOSED);
    assert_int_equal(wq_get(q, &key, -1), ERR_CLOSED);
    wq_free(q);

    q = wq_new(NULL);
    assert_non_null(q);
    assert_int_equal(wq_add(q, "a"), 0);
    assert_int_equal(wq_add_after(q, "b", 10), 0);
    wq_shut_down(q);
    assert_int_equal(wq_get(q, &key, 100), ERR_CLOSED);
    wq_free(q);
}

/* ---- out of memory ---------------------------------------------------------------- */

/* An add that runs out of memory says so and queues nothing; one that
 * succeeds queues the key once. */
static void test_queue__add_out_of_memory(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++)
        for (long n = 0;; n++) {
            assert_true(n < 1000);
            wq_t *q = wq_new(NULL);
            assert_non_null(q);
            /* Enough keys for the tables to grow on the next add. */
            char key[16];
            for (int i = 0; i < 64; i++) {
                snprintf(key, sizeof key, "k%d", i);
                assert_int_equal(kind == 1 ? wq_add_after(q, key, 60000) : wq_add(q, key), 0);
            }
            unsigned long before = mem_failures();
            mem_fail_once(n);
            int rc = kind == 0 ? wq_add(q, "new") : kind == 1 ? wq_add_after(q, "new", 1)
                                                                : wq_add_rate_limited(q, "new");
            mem_fail_after(-1);
            int fired = mem_failures() != before;
            if (rc && rc != ERR_NOMEM)
                fail_msg("add %d, allocation %ld failing: %s", kind, n, err_name(rc));
            if (rc) {
                assert_true(fired);
                assert_int_equal(wq_failures(q, "new"), 0);
            }
            if (kind != 1)
                for (int i = 0; i < 64; i++) {
                    snprintf(key, sizeof key, "k%d", i);
                    get_now(q, key);
                    wq_done(q, key);
                }
            const char *got;
            int grc = wq_get(q, &got, rc ? 50 : 2000);
            if (rc) {
                if (grc != ERR_TIMEOUT)
                    fail_msg("add %d failed at allocation %ld yet queued %s", kind, n,
                             grc ? err_name(grc) : got);
            } else {
                assert_int_equal(grc, 0);
                assert_string_equal(got, "new");
                wq_done(q, got);
                get_none(q, 0);
            }
            wq_free(q);
            if (!rc && !fired)
                break;
        }
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue__dedup),
        cmocka_unit_test(test_queue__fifo),
        cmocka_unit_test(test_queue__processing_key_requeued_at_done),
        cmocka_unit_test(test_queue__no_concurrent_reconcile),
        cmocka_unit_test(test_queue__backoff_doubles),
        cmocka_unit_test(test_queue__backoff_capped),
        cmocka_unit_test(test_queue__bucket_limits_all_keys),
        cmocka_unit_test(test_queue__add_after),
        cmocka_unit_test(test_queue__add_after_wakes_sleeping_worker),
        cmocka_unit_test(test_queue__delay_expires_while_processing),
        cmocka_unit_test(test_queue__shut_down_wakes_getters),
        cmocka_unit_test(test_queue__add_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
