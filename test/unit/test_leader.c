/*
 * Unit tests of the lease elector (controllers/leader.c) and the store's
 * leases beneath it, against an etcd on loopback (etcd_fixture.h): two
 * replicas, each a store of its own on one etcd under one prefix, each
 * with an elector whose leading callback the test records. Exactly one
 * leads; stopping or revoking the leader hands over; a leader cut off
 * from etcd (SIGSTOP) longer than its renew deadline stops leading before
 * its lease could pass, and after etcd continues one replica leads again.
 * Short leases (3 s, etcd's minimum being 2 s) keep the cases quick.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../controllers/ctrl.h"
#include "../../lib/b64.h"
#include "../../lib/mem.h"
#include "etcd_fixture.h"
#include "fixture.h"

#define LEASE_MS 3000u
#define RENEW_MS 2000u

static fx_etcd_t etcd = {.pid = -1};
static int prefixes;

/* Leaders at once over every replica of a test, and the most seen. */
static atomic_int leaders, most_leaders;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One replica: a store and an elector, and what its callback saw. */
typedef struct replica {
    store_t *s;
    ctrl_lease_elector_t *le;
    atomic_int on;
    atomic_int ons, offs;
    _Atomic uint64_t off_at;     /* when leading(0) last came */
} replica_t;

static void on_leading(void *m, int on)
{
    replica_t *r = m;
    if (on) {
        int n = atomic_fetch_add(&leaders, 1) + 1;
        int most = atomic_load(&most_leaders);
        while (n > most && !atomic_compare_exchange_weak(&most_leaders, &most, n))
            ;
        atomic_store(&r->on, 1);
        atomic_fetch_add(&r->ons, 1);
    } else {
        atomic_store(&r->off_at, now_ms());
        atomic_store(&r->on, 0);
        atomic_fetch_sub(&leaders, 1);
        atomic_fetch_add(&r->offs, 1);
    }
}

typedef struct lfx {
    char prefix[48];
    replica_t r[2];
} lfx_t;

static void replica_start(lfx_t *f, int i)
{
    replica_t *r = &f->r[i];
    store_config_t cfg = {.backend = "etcd3", .etcd_servers = etcd.url,
                          .etcd_prefix = f->prefix, .compact_interval_ms = STORE_COMPACT_NEVER};
    err_t err = {0};
    if (store_open(&cfg, &r->s, &err))
        fail_msg("store_open: %s", err.message);
    char id[32];
    snprintf(id, sizeof id, "replica-%d", i);
    ctrl_lease_config_t lc = {.identity = id, .lease_ms = LEASE_MS,
                              .renew_deadline_ms = RENEW_MS};
    assert_int_equal(ctrl_lease_elector_new(r->s, &lc, &r->le, &err), 0);
    ctrl_elector_t el = ctrl_lease_elector(r->le);
    assert_int_equal(el.run(el.arg, on_leading, r, &err), 0);
}

/* Stops the replica's elector (a clean shutdown) and closes its store. */
static void replica_stop(lfx_t *f, int i)
{
    replica_t *r = &f->r[i];
    ctrl_lease_elector_free(r->le);
    r->le = NULL;
    if (r->s) {
        store_shutdown_watchers(r->s);
        store_close(r->s);
        r->s = NULL;
    }
}

static int setup(void **state)
{
    lfx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->prefix, sizeof f->prefix, "/edge-leader-test/t%d", ++prefixes);
    atomic_store(&leaders, 0);
    atomic_store(&most_leaders, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    lfx_t *f = *state;
    for (int i = 0; i < 2; i++)
        replica_stop(f, i);
    free(f);
    return 0;
}

/* Waits up to ms for exactly one replica to lead: its index, or -1. */
static int wait_one_leader(lfx_t *f, unsigned ms)
{
    for (uint64_t end = now_ms() + ms; now_ms() < end; sleep_ms(20)) {
        int a = atomic_load(&f->r[0].on), b = atomic_load(&f->r[1].on);
        if (a + b == 1)
            return a ? 0 : 1;
    }
    return -1;
}

/* ---- the store's leases -------------------------------------------------------- */

static void test_leader__store_leases(void **state)
{
    lfx_t *f = *state;
    store_config_t cfg = {.backend = "etcd3", .etcd_servers = etcd.url,
                          .etcd_prefix = f->prefix, .compact_interval_ms = STORE_COMPACT_NEVER};
    err_t err = {0};
    store_t *s;
    assert_int_equal(store_open(&cfg, &s, &err), 0);
    int64_t a, b;
    assert_int_equal(store_lease_grant(s, 5, 2000, &a, &err), 0);
    assert_int_equal(store_lease_grant(s, 5, 2000, &b, &err), 0);
    assert_true(a != b);
    unsigned ttl = 0;
    assert_int_equal(store_lease_keepalive(s, a, 2000, &ttl, &err), 0);
    assert_int_equal(ttl, 5);

    /* Created once, with the first lease; the second finds the holder. */
    uint64_t rev = 0;
    assert_int_equal(store_create_leased(s, "/locks/x", "a", 1, a, 2000, &rev, NULL, &err), 0);
    assert_true(rev > 0);
    store_value_t cur = {0};
    err_clear(&err);
    assert_int_equal(store_create_leased(s, "/locks/x", "b", 1, b, 2000, NULL, &cur, &err),
                     ERR_ALREADY_EXISTS);
    assert_int_equal(cur.len, 1);
    assert_memory_equal(cur.data, "a", 1);
    assert_int_equal(cur.create_rev, rev);
    store_value_free(&cur);

    /* Revoking the lease deletes its key; the lease is gone after. */
    assert_int_equal(store_lease_revoke(s, a, 2000, &err), 0);
    err_clear(&err);
    assert_int_equal(store_get(s, "/locks/x", &cur, &err), ERR_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(store_lease_keepalive(s, a, 2000, NULL, &err), ERR_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(store_lease_revoke(s, a, 2000, &err), ERR_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(store_create_leased(s, "/locks/x", "a", 1, a, 2000, NULL, NULL, &err),
                     ERR_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(store_create_leased(s, "/locks/../x", "a", 1, b, 2000, NULL, NULL, &err),
                     ERR_BAD_REQUEST);
    err_clear(&err);
    assert_int_equal(store_lease_revoke(s, b, 2000, &err), 0);
    store_shutdown_watchers(s);
    store_close(s);
}

/* LMDB: one process owns the store; it has no leases. */
static void test_leader__lmdb_has_no_leases(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    int64_t id = 0;
    assert_int_equal(store_lease_grant(f->store, 5, 0, &id, &err), ERR_METHOD_NOT_ALLOWED);
    err_clear(&err);
    assert_int_equal(store_lease_keepalive(f->store, 1, 0, NULL, &err), ERR_METHOD_NOT_ALLOWED);
    err_clear(&err);
    assert_int_equal(store_create_leased(f->store, "/a/b", "x", 1, 1, 0, NULL, NULL, &err),
                     ERR_METHOD_NOT_ALLOWED);
}

static void test_leader__config(void **state)
{
    (void)state;
    err_t err = {0};
    ctrl_lease_elector_t *le = NULL;
    ctrl_lease_config_t lc = {.lease_ms = 4000, .renew_deadline_ms = 4000};
    assert_int_equal(ctrl_lease_elector_new(NULL, &lc, &le, &err), ERR_BAD_REQUEST);
    assert_non_null(strstr(err.message, "renew deadline"));
    err_clear(&err);
    assert_int_equal(ctrl_lease_elector_new(NULL, NULL, &le, &err), 0);
    /* hostname_pid_uuid */
    const char *id = ctrl_lease_elector_identity(le);
    char pid[32];
    snprintf(pid, sizeof pid, "_%ld_", (long)getpid());
    assert_non_null(strstr(id, pid));
    assert_int_equal(strlen(strstr(id, pid) + strlen(pid)), 36);
    ctrl_lease_elector_free(le);
}

/* ---- election -------------------------------------------------------------------- */

static void test_leader__one_of_two_leads(void **state)
{
    lfx_t *f = *state;
    replica_start(f, 0);
    replica_start(f, 1);
    int l = wait_one_leader(f, 5000);
    assert_true(l >= 0);
    /* And it stays so across several renewals. */
    for (int i = 0; i < 40; i++) {
        sleep_ms(100);
        assert_int_equal(atomic_load(&f->r[l].on), 1);
        assert_int_equal(atomic_load(&f->r[!l].on), 0);
    }
    assert_int_equal(atomic_load(&f->r[l].ons), 1);
    assert_int_equal(atomic_load(&f->r[!l].ons), 0);
    /* The key holds the leader's identity, under the prefix. */
    store_value_t v = {0};
    err_t err = {0};
    assert_int_equal(store_get(f->r[0].s, "/edge-apiserver/leader", &v, &err), 0);
    char want[32];
    snprintf(want, sizeof want, "replica-%d", l);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
    store_value_free(&v);
    assert_int_equal(atomic_load(&most_leaders), 1);
}

/* A clean stop revokes the lease: the other leads at once, not a TTL
 * later. */
static void test_leader__stop_hands_over(void **state)
{
    lfx_t *f = *state;
    replica_start(f, 0);
    int l = wait_one_leader(f, 5000);
    assert_int_equal(l, 0);
    replica_start(f, 1);
    sleep_ms(300);
    assert_int_equal(atomic_load(&f->r[1].on), 0);
    uint64_t t0 = now_ms();
    replica_stop(f, 0);
    assert_int_equal(atomic_load(&f->r[0].offs), 1);
    assert_int_equal(wait_one_leader(f, LEASE_MS), 1);
    assert_true(now_ms() - t0 < LEASE_MS / 2);
    assert_int_equal(atomic_load(&most_leaders), 1);
}

/* The leader's lease revoked from outside (an operator, etcd's own
 * expiry): it stops leading when its key goes, and one leads again. */
static void test_leader__revoked_lease_hands_over(void **state)
{
    lfx_t *f = *state;
    replica_start(f, 0);
    replica_start(f, 1);
    int l = wait_one_leader(f, 5000);
    assert_true(l >= 0);
    char key[128], *k, body[256], *resp = NULL;
    snprintf(key, sizeof key, "%s/edge-apiserver/leader", f->prefix);
    k = b64_encode(key, strlen(key), B64_STD);
    snprintf(body, sizeof body, "{\"key\":\"%s\"}", k);
    mem_free(k);
    assert_int_equal(fx_etcd_post(&etcd, "/v3/kv/range", body, &resp), 200);
    const char *p = strstr(resp, "\"lease\":\"");
    assert_non_null(p);
    snprintf(body, sizeof body, "{\"ID\":\"%lld\"}", strtoll(p + 9, NULL, 10));
    free(resp);
    uint64_t t0 = now_ms();
    assert_int_equal(fx_etcd_post(&etcd, "/v3/lease/revoke", body, NULL), 200);
    for (uint64_t end = t0 + 2000; atomic_load(&f->r[l].offs) == 0 && now_ms() < end;)
        sleep_ms(20);
    assert_int_equal(atomic_load(&f->r[l].offs), 1);
    assert_true(wait_one_leader(f, LEASE_MS) >= 0);
    assert_int_equal(atomic_load(&most_leaders), 1);
}

/* etcd frozen past the renew deadline: the leader stops before its lease
 * (renewed before the freeze) could expire, and once etcd continues, one
 * replica leads. */
static void test_leader__frozen_etcd_stops_leader_in_time(void **state)
{
    lfx_t *f = *state;
    replica_start(f, 0);
    replica_start(f, 1);
    int l = wait_one_leader(f, 5000);
    assert_true(l >= 0);
    sleep_ms(500);
    uint64_t t0 = now_ms();
    assert_int_equal(kill(etcd.pid, SIGSTOP), 0);
    sleep_ms(RENEW_MS + 700);
    /* The last renewal was sent before t0: the lease lives at least until
     * then + LEASE_MS, and the leader stopped within the renew deadline. */
    assert_int_equal(atomic_load(&f->r[l].offs), 1);
    uint64_t off = atomic_load(&f->r[l].off_at);
    assert_true(off > t0);
    assert_true(off - t0 <= RENEW_MS + 200);
    assert_true(off - t0 < LEASE_MS);
    assert_int_equal(atomic_load(&leaders), 0);
    assert_int_equal(kill(etcd.pid, SIGCONT), 0);
    assert_true(wait_one_leader(f, LEASE_MS + 5000) >= 0);
    assert_int_equal(atomic_load(&most_leaders), 1);
}

static int group_setup(void **state)
{
    (void)state;
    return fx_etcd_setup(&etcd);
}

static int group_teardown(void **state)
{
    (void)state;
    fx_etcd_teardown(&etcd);
    return 0;
}

int main(void)
{
    const struct CMUnitTest lmdb[] = {
        FX_TEST(test_leader__lmdb_has_no_leases),
        cmocka_unit_test(test_leader__config),
    };
    const struct CMUnitTest on_etcd[] = {
        cmocka_unit_test_setup_teardown(test_leader__store_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader__one_of_two_leads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader__stop_hands_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader__revoked_lease_hands_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader__frozen_etcd_stops_leader_in_time, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests_name("leader/lmdb", lmdb, NULL, NULL);
    failed += cmocka_run_group_tests_name("leader/etcd3", on_etcd, group_setup, group_teardown);
    return failed;
}
