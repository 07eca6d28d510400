/*
 * Unit tests of storage/store.h, one suite run on both backends: on LMDB
 * in a temporary directory, then on etcd3 against an etcd started on
 * loopback for the group (Debian's /usr/bin/etcd, or $ETCD_BIN), each
 * test under an --etcd-prefix of its own. Tests of what only LMDB has (a
 * map, its pages, the data directory's lock, group commit, crash safety of
 * its file) run on LMDB only; the last tests are etcd's own: other
 * writers in the same etcd, and an etcd restart under a watcher.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>
#include <lmdb.h>

#include "../../lib/b64.h"
#include "../../lib/httpc.h"
#include "../../lib/mem.h"
#include "../../storage/store.h"
#include "etcd_fixture.h"

/* ---- fixtures ---------------------------------------------------------- */

typedef struct fx {
    char dir[64];
    char prefix[32];             /* etcd3: this test's --etcd-prefix */
    store_t *s;
    store_config_t cfg;
} fx_t;

/* ---- an etcd on loopback, for the etcd3 group ------------------------------ */

/* The backend the running group tests; the etcd it uses. */
static const char *backend = "lmdb";
static fx_etcd_t etcd = {.pid = -1};
static int etcd_prefixes;        /* prefixes handed out so far */

static long etcd_post(const char *path, const char *body, char **resp)
{
    return fx_etcd_post(&etcd, path, body, resp);
}

static int etcd_group_setup(void **state)
{
    (void)state;
    if (fx_etcd_setup(&etcd))
        return -1;
    backend = "etcd3";
    return 0;
}

static int etcd_group_teardown(void **state)
{
    (void)state;
    fx_etcd_teardown(&etcd);
    backend = "lmdb";
    return 0;
}

/* Puts value at an etcd key (not a store key: no prefix is added) as
 * another client of the same etcd would. Returns the revision. */
static uint64_t etcd_put_raw(const char *key, const char *value)
{
    char *k = b64_encode(key, strlen(key), B64_STD);
    char *v = b64_encode(value, strlen(value), B64_STD);
    char body[512], *resp = NULL;
    snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
    mem_free(k);
    mem_free(v);
    if (etcd_post("/v3/kv/put", body, &resp) != 200)
        fail_msg("etcd put %s failed", key);
    const char *r = strstr(resp, "\"revision\":\"");
    uint64_t rev = r ? strtoull(r + 12, NULL, 10) : 0;
    free(resp);
    return rev;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void fx_open(fx_t *f)
{
    err_t err = {0};
    int rc = store_open(&f->cfg, &f->s, &err);
    if (rc)
        fail_msg("store_open: %s", err.message);
}

static int fx_setup_cfg(void **state, const store_config_t *cfg)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/edge-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    f->cfg = *cfg;
    f->cfg.data_dir = f->dir;
    if (!strcmp(backend, "etcd3")) {
        snprintf(f->prefix, sizeof f->prefix, "/edge-test/t%d", ++etcd_prefixes);
        f->cfg.backend = "etcd3";
        f->cfg.etcd_servers = etcd.url;
        f->cfg.etcd_prefix = f->prefix;
    }
    fx_open(f);
    *state = f;
    return 0;
}

static int fx_setup(void **state)
{
    store_config_t cfg = {.no_sync = 1, .compact_interval_ms = 3600000};
    return fx_setup_cfg(state, &cfg);
}

static int fx_setup_small_ring(void **state)
{
    store_config_t cfg = {.no_sync = 1, .compact_interval_ms = 3600000, .ring_events = 16};
    return fx_setup_cfg(state, &cfg);
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static uint64_t put(store_t *s, const char *key, const char *val)
{
    uint64_t rev = 0;
    err_t err = {0};
    int rc = store_create(s, key, val, strlen(val), &rev, &err);
    if (rc == ERR_ALREADY_EXISTS) {
        err_clear(&err);
        rc = store_update(s, key, val, strlen(val), 0, &rev, NULL, &err);
    }
    if (rc)
        fail_msg("put %s: %s", key, err.message);
    return rev;
}

static void del(store_t *s, const char *key)
{
    err_t err = {0};
    if (store_delete(s, key, 0, NULL, NULL, &err))
        fail_msg("delete %s: %s", key, err.message);
}

/* Collects a list page into "key=value;" text. */
typedef struct page {
    char buf[65536];
    size_t len;
    int n;
} page_t;

static int collect(void *arg, const store_kv_t *kv)
{
    page_t *p = arg;
    p->len += (size_t)snprintf(p->buf + p->len, sizeof p->buf - p->len, "%.*s=%.*s;",
                               (int)kv->key_len, kv->key, (int)kv->value_len, kv->value);
    p->n++;
    return STORE_TAKE;
}

/* Lists everything under prefix page by page with the given limit. */
static int list_all(store_t *s, const char *prefix, uint64_t rev, size_t limit,
                    page_t *out, void (*between)(store_t *, int), err_t *err)
{
    memset(out, 0, sizeof *out);
    char *tok = NULL;
    int pages = 0;
    for (;;) {
        store_list_opts_t o = {.prefix = prefix, .continue_token = tok,
                               .rev = tok ? 0 : rev, .limit = limit};
        store_list_result_t r;
        int rc = store_list(s, &o, collect, out, &r, err);
        free(tok);
        tok = NULL;
        if (rc)
            return rc;
        pages++;
        if (!r.continue_token)
            break;
        tok = strdup(r.continue_token);
        store_list_result_free(&r);
        if (between)
            between(s, pages);
    }
    return pages;
}

/* ---- basic reads and writes --------------------------------------------- */

static void test_store__create_get_revisions(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    uint64_t r0 = store_revision(f->s);
    uint64_t r1 = put(f->s, "/g/things/a", "one");
    uint64_t r2 = put(f->s, "/g/things/b", "two");
    assert_int_equal(r1, r0 + 1);
    assert_int_equal(r2, r1 + 1);
    assert_int_equal(store_revision(f->s), r2);

    store_value_t v = {0};
    assert_int_equal(store_get(f->s, "/g/things/a", &v, &err), 0);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "one", 3);
    assert_int_equal(v.mod_rev, r1);
    assert_int_equal(v.create_rev, r1);
    store_value_free(&v);

    uint64_t r3 = put(f->s, "/g/things/a", "uno");
    assert_int_equal(store_get(f->s, "/g/things/a", &v, &err), 0);
    assert_int_equal(v.mod_rev, r3);
    assert_int_equal(v.create_rev, r1);
    store_value_free(&v);
}

static void test_store__errors(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    uint64_t r1 = put(f->s, "/g/things/a", "one");

    assert_int_equal(store_create(f->s, "/g/things/a", "x", 1, NULL, &err), ERR_ALREADY_EXISTS);
    assert_int_equal(err_http_status(err.code), 409);
    assert_string_equal(err_reason(err.code), "AlreadyExists");
    err_clear(&err);

    store_value_t v = {0};
    assert_int_equal(store_get(f->s, "/g/things/zz", &v, &err), ERR_NOT_FOUND);
    assert_int_equal(err_http_status(err.code), 404);
    err_clear(&err);
    assert_int_equal(store_update(f->s, "/g/things/zz", "x", 1, 0, NULL, NULL, &err), ERR_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(store_delete(f->s, "/g/things/zz", 0, NULL, NULL, &err), ERR_NOT_FOUND);
    err_clear(&err);

    /* Failed writes consumed no revision. */
    assert_int_equal(store_revision(f->s), r1);

    static const char *bad[] = {"", "g/x", "/g//x", "/g/./x", "/g/../x", "/g/x/", NULL};
    for (int i = 0; bad[i]; i++) {
        err_clear(&err);
        assert_int_equal(store_create(f->s, bad[i], "x", 1, NULL, &err), ERR_BAD_REQUEST);
    }
    char longkey[600];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[0] = '/';
    longkey[sizeof longkey - 1] = '\0';
    err_clear(&err);
    assert_int_equal(store_create(f->s, longkey, "x", 1, NULL, &err), ERR_BAD_REQUEST);
    assert_non_null(strstr(err.message, "longer than 511"));
}

static void test_store__compare_and_swap(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    uint64_t r1 = put(f->s, "/g/things/a", "one");
    uint64_t r2 = 0;
    assert_int_equal(store_update(f->s, "/g/things/a", "two", 3, r1, &r2, NULL, &err), 0);
    assert_true(r2 > r1);

    /* A stale expected revision conflicts and hands back the current value. */
    store_value_t cur = {0};
    assert_int_equal(store_update(f->s, "/g/things/a", "three", 5, r1, NULL, &cur, &err),
                     ERR_CONFLICT);
    assert_int_equal(err_http_status(err.code), 409);
    assert_string_equal(err_reason(err.code), "Conflict");
    assert_int_equal(cur.mod_rev, r2);
    assert_memory_equal(cur.data, "two", 3);
    store_value_free(&cur);
    err_clear(&err);

    assert_int_equal(store_delete(f->s, "/g/things/a", r1, NULL, NULL, &err), ERR_CONFLICT);
    err_clear(&err);
    assert_int_equal(store_revision(f->s), r2);

    store_value_t prev = {0};
    uint64_t rd = 0;
    assert_int_equal(store_delete(f->s, "/g/things/a", r2, &rd, &prev, &err), 0);
    assert_int_equal(rd, r2 + 1);
    assert_memory_equal(prev.data, "two", 3);
    assert_int_equal(prev.mod_rev, r2);
    store_value_free(&prev);
    assert_int_equal(store_get(f->s, "/g/things/a", &prev, &err), ERR_NOT_FOUND);
}

/* Concurrent CAS increments: exactly one writer wins each revision. */
typedef struct cas_arg {
    store_t *s;
    int wins;
    int conflicts;
} cas_arg_t;

static void *cas_worker(void *p)
{
    cas_arg_t *a = p;
    for (int i = 0; i < 50; i++) {
        err_t err = {0};
        store_value_t v = {0};
        if (store_get(a->s, "/g/counter/c", &v, &err))
            return NULL;
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d", atoi(v.data) + 1);
        int rc = store_update(a->s, "/g/counter/c", buf, (size_t)n, v.mod_rev, NULL, NULL, &err);
        store_value_free(&v);
        if (rc == 0)
            a->wins++;
        else if (rc == ERR_CONFLICT)
            a->conflicts++;
    }
    return NULL;
}

static void test_store__cas_concurrent(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/counter/c", "0");
    pthread_t t[8];
    cas_arg_t a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (cas_arg_t){f->s, 0, 0};
        pthread_create(&t[i], NULL, cas_worker, &a[i]);
    }
    int wins = 0, total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        wins += a[i].wins;
        total += a[i].wins + a[i].conflicts;
    }
    assert_int_equal(total, 8 * 50);
    store_value_t v = {0};
    err_t err = {0};
    assert_int_equal(store_get(f->s, "/g/counter/c", &v, &err), 0);
    /* No lost update: the counter equals the number of successful CAS. */
    assert_int_equal(atoi(v.data), wins);
    store_value_free(&v);
}

static void test_store__revisions_survive_restart(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/things/a", "1");
    uint64_t r = put(f->s, "/g/things/b", "2");
    del(f->s, "/g/things/b");
    uint64_t before = store_revision(f->s);
    assert_int_equal(before, r + 1);
    store_close(f->s);
    fx_open(f);
    assert_int_equal(store_revision(f->s), before);
    /* Never reused, even though the last write was a delete. */
    assert_int_equal(put(f->s, "/g/things/b", "3"), before + 1);
}

static void test_store__second_open_refused(void **state)
{
    fx_t *f = *state;
    store_t *other = NULL;
    err_t err = {0};
    assert_int_equal(store_open(&f->cfg, &other, &err), ERR_LOCKED);
    assert_null(other);
    assert_non_null(strstr(err.message, "in use by another process"));
}

/* ---- lists --------------------------------------------------------------- */

static void test_store__list_prefix_and_order(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/things/ns1/b", "1");
    put(f->s, "/g/things/ns1/a", "2");
    put(f->s, "/g/things/ns2/a", "3");
    put(f->s, "/g/thingsx/ns1/a", "4");  /* shares a string prefix only */
    page_t p;
    err_t err = {0};
    assert_int_equal(list_all(f->s, "/g/things/", 0, 0, &p, NULL, &err), 1);
    assert_string_equal(p.buf, "/g/things/ns1/a=2;/g/things/ns1/b=1;/g/things/ns2/a=3;");
    assert_int_equal(list_all(f->s, "/g/things/ns1/", 0, 0, &p, NULL, &err), 1);
    assert_string_equal(p.buf, "/g/things/ns1/a=2;/g/things/ns1/b=1;");
    assert_int_equal(list_all(f->s, "/g/none/", 0, 0, &p, NULL, &err), 1);
    assert_int_equal(p.n, 0);
}

/* Between pages: update, delete and create keys across the whole range. */
static void churn(store_t *s, int page)
{
    char k[64], v[64];
    for (int i = 0; i < 100; i += 7) {
        snprintf(k, sizeof k, "/g/items/k%03d", i);
        snprintf(v, sizeof v, "changed-%d", page);
        put(s, k, v);
    }
    snprintf(k, sizeof k, "/g/items/k%03d", page * 11 % 100);
    err_t err = {0};
    store_delete(s, k, 0, NULL, NULL, &err);
    snprintf(k, sizeof k, "/g/items/k%03d-new", page * 3);
    put(s, k, "new");
}

static void test_store__list_pages_one_snapshot(void **state)
{
    fx_t *f = *state;
    char k[64], v[64];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "/g/items/k%03d", i);
        snprintf(v, sizeof v, "v%d", i);
        put(f->s, k, v);
    }
    page_t expect, got;
    err_t err = {0};
    list_all(f->s, "/g/items/", 0, 0, &expect, NULL, &err);
    assert_int_equal(expect.n, 100);
    int pages = list_all(f->s, "/g/items/", 0, 9, &got, churn, &err);
    assert_int_equal(pages, 12);
    assert_int_equal(got.n, 100);
    assert_string_equal(got.buf, expect.buf);

    /* A list at the latest revision sees the churn. */
    list_all(f->s, "/g/items/", 0, 0, &got, NULL, &err);
    assert_string_not_equal(got.buf, expect.buf);
}

static void test_store__list_exact_revision(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/x/a", "1");
    put(f->s, "/g/x/b", "1");
    uint64_t r = store_revision(f->s);
    put(f->s, "/g/x/a", "2");
    del(f->s, "/g/x/b");
    put(f->s, "/g/x/c", "1");
    del(f->s, "/g/x/c");
    put(f->s, "/g/x/b", "3");

    page_t p;
    err_t err = {0};
    list_all(f->s, "/g/x/", r, 0, &p, NULL, &err);
    assert_string_equal(p.buf, "/g/x/a=1;/g/x/b=1;");
    list_all(f->s, "/g/x/", r, 1, &p, NULL, &err);
    assert_string_equal(p.buf, "/g/x/a=1;/g/x/b=1;");
    list_all(f->s, "/g/x/", 0, 0, &p, NULL, &err);
    assert_string_equal(p.buf, "/g/x/a=2;/g/x/b=3;");

    store_list_opts_t o = {.prefix = "/g/x/", .rev = store_revision(f->s) + 5};
    store_list_result_t res;
    assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), ERR_TOO_LARGE_RV);
    assert_int_equal(err_http_status(err.code), 504);
}

static void test_store__list_remaining_and_skip(void **state)
{
    fx_t *f = *state;
    char k[32];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "/g/r/k%d", i);
        put(f->s, k, "v");
    }
    page_t p = {0};
    err_t err = {0};
    store_list_opts_t o = {.prefix = "/g/r/", .limit = 4, .count_remaining = 1};
    store_list_result_t res;
    assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), 0);
    assert_int_equal(p.n, 4);
    assert_int_equal(res.remaining, 6);
    assert_non_null(res.continue_token);
    assert_int_equal(res.rev, store_revision(f->s));
    store_list_result_free(&res);
}

static void test_store__continue_token_expired_and_bad(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/t/a", "1");
    put(f->s, "/g/t/b", "1");
    page_t p = {0};
    err_t err = {0};
    store_list_opts_t o = {.prefix = "/g/t/", .limit = 1};
    store_list_result_t res;
    assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), 0);
    char *tok = strdup(res.continue_token);
    store_list_result_free(&res);

    /* The token is kube-apiserver's encoding. */
    unsigned char *raw;
    size_t rawn;
    assert_int_equal(b64_decode(tok, strlen(tok), B64_URL_RAW, &raw, &rawn), 0);
    assert_non_null(strstr((char *)raw, "\"v\":\"meta.k8s.io/v1\""));
    assert_non_null(strstr((char *)raw, "\"start\":\"a\\u0000\""));
    mem_free(raw);

    put(f->s, "/g/t/c", "1");
    put(f->s, "/g/t/a", "2");
    assert_int_equal(store_compact(f->s, store_revision(f->s), &err), 0);
    o.continue_token = tok;
    assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), ERR_EXPIRED);
    assert_int_equal(err_http_status(err.code), 410);
    assert_string_equal(err_reason(err.code), "Expired");
    free(tok);

    static const char *bad[] = {
        "not base64!",
        "e30",                                                   /* {} */
        /* {"v":"meta.k8s.io/v1","rv":1,"start":"../../secrets/x"} */
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiIuLi8uLi9zZWNyZXRzL3gifQ",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        err_clear(&err);
        o.continue_token = bad[i];
        assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), ERR_BAD_REQUEST);
    }
    err_clear(&err);
    o.continue_token = "e30";
    o.rev = 3;
    assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), ERR_BAD_REQUEST);
}

/* ---- watch --------------------------------------------------------------- */

static const store_event_t *next_ev(store_watcher_t *w, int timeout_ms)
{
    const store_event_t *ev = NULL;
    err_t err = {0};
    int rc = store_watcher_next(w, &ev, timeout_ms, &err);
    if (rc)
        fail_msg("watcher_next: %s (%s)", err_name(rc), err.message);
    return ev;
}

static void expect_ev(store_watcher_t *w, store_event_type_t type, const char *key,
                      const char *val, const char *prev, uint64_t rev)
{
    const store_event_t *ev = next_ev(w, 2000);
    assert_int_equal(ev->type, type);
    assert_string_equal(ev->key, key);
    if (val)
        assert_string_equal(ev->value, val);
    else
        assert_null(ev->value);
    if (prev)
        assert_string_equal(ev->prev_value, prev);
    else
        assert_null(ev->prev_value);
    if (rev)
        assert_int_equal(ev->rev, rev);
    store_event_release(ev);
}

static void watch_replay_then_live(fx_t *f)
{
    uint64_t start = store_revision(f->s);
    uint64_t r1 = put(f->s, "/g/w/a", "1");
    put(f->s, "/g/other/x", "ignored");
    for (int i = 0; i < 40; i++)  /* more than a 16-event ring */
        put(f->s, "/g/w/b", i % 2 ? "odd" : "even");
    del(f->s, "/g/w/a");

    store_watcher_t *w;
    err_t err = {0};
    store_watch_opts_t o = {.prefix = "/g/w/", .after_rev = start};
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    expect_ev(w, STORE_PUT, "/g/w/a", "1", NULL, r1);
    const store_event_t *ev = next_ev(w, 2000);
    assert_int_equal(ev->create_rev, ev->rev);  /* b was created: ADDED */
    store_event_release(ev);
    uint64_t last = 0;
    for (int i = 1; i < 40; i++) {
        ev = next_ev(w, 2000);
        assert_string_equal(ev->key, "/g/w/b");
        assert_string_equal(ev->value, i % 2 ? "odd" : "even");
        assert_string_equal(ev->prev_value, i % 2 ? "even" : "odd");
        assert_true(ev->create_rev < ev->rev);  /* MODIFIED */
        assert_true(ev->rev > last);
        last = ev->rev;
        store_event_release(ev);
    }
    expect_ev(w, STORE_DELETE, "/g/w/a", NULL, "1", 0);

    /* Nothing more, then live events. */
    const store_event_t *none = NULL;
    assert_int_equal(store_watcher_next(w, &none, 50, &err), ERR_TIMEOUT);
    uint64_t r = put(f->s, "/g/w/c", "live");
    expect_ev(w, STORE_PUT, "/g/w/c", "live", NULL, r);
    assert_int_equal(store_watcher_progress(w), r);
    store_watcher_close(w);
}

static void test_store__watch_replay_from_ring(void **state)
{
    watch_replay_then_live(*state);
}

static void test_store__watch_replay_from_log(void **state)
{
    /* The fixture's ring holds 16 events: the replay starts in the log. */
    watch_replay_then_live(*state);
}

static void test_store__watch_exact_key(void **state)
{
    fx_t *f = *state;
    store_watcher_t *w;
    err_t err = {0};
    store_watch_opts_t o = {.prefix = "/g/w/a", .after_rev = store_revision(f->s)};
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    put(f->s, "/g/w/ab", "no");
    put(f->s, "/g/w/a", "yes");
    expect_ev(w, STORE_PUT, "/g/w/a", "yes", NULL, 0);
    store_watcher_close(w);
}

typedef struct waiter {
    store_watcher_t *w;
    const store_event_t *ev;
    int rc;
} waiter_t;

static void *wait_one(void *p)
{
    waiter_t *a = p;
    err_t err = {0};
    a->rc = store_watcher_next(a->w, &a->ev, 5000, &err);
    return NULL;
}

static int notified;
static void on_notify(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&notified, 1, __ATOMIC_SEQ_CST);
}

static void test_store__watch_blocks_until_event(void **state)
{
    fx_t *f = *state;
    store_watcher_t *w;
    err_t err = {0};
    notified = 0;
    store_watch_opts_t o = {.prefix = "/g/w/", .after_rev = store_revision(f->s),
                            .notify = on_notify};
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    waiter_t a = {w, NULL, -1};
    pthread_t t;
    pthread_create(&t, NULL, wait_one, &a);
    usleep(50000);
    uint64_t r = put(f->s, "/g/w/z", "wake");
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.ev->rev, r);
    store_event_release(a.ev);
    assert_int_equal(notified, 1);
    store_watcher_close(w);
}

static void test_store__watch_compacted_is_expired(void **state)
{
    fx_t *f = *state;
    uint64_t r0 = put(f->s, "/g/w/a", "1");
    put(f->s, "/g/w/a", "2");
    uint64_t r2 = put(f->s, "/g/w/a", "3");
    err_t err = {0};
    assert_int_equal(store_compact(f->s, r2, &err), 0);
    store_stats_t st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.compact_rev, r2);

    store_watcher_t *w = NULL;
    store_watch_opts_t o = {.prefix = "/g/w/", .after_rev = r0};
    assert_int_equal(store_watch(f->s, &o, &w, &err), ERR_EXPIRED);
    assert_int_equal(err_http_status(err.code), 410);
    /* From the compaction point itself it still works. */
    err_clear(&err);
    o.after_rev = r2;
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    uint64_t r3 = put(f->s, "/g/w/a", "4");
    expect_ev(w, STORE_PUT, "/g/w/a", "4", "3", r3);
    store_watcher_close(w);

    /* A list at a compacted revision is expired too. */
    page_t p;
    err_clear(&err);
    assert_int_equal(list_all(f->s, "/g/w/", r0, 0, &p, NULL, &err), ERR_EXPIRED);
}

static void test_store__compaction_window(void **state)
{
    fx_t *f = *state;
    /* The fixture compacts every 150 ms to what it saw one interval ago. */
    uint64_t r1 = put(f->s, "/g/c/a", "1");
    uint64_t r2 = put(f->s, "/g/c/a", "2");
    store_stats_t st;
    int waited = 0;
    do {
        usleep(50000);
        waited += 50;
        store_get_stats(f->s, &st);
    } while (st.compact_rev < r2 && waited < 3000);
    assert_true(st.compact_rev >= r2);
    store_watcher_t *w = NULL;
    err_t err = {0};
    store_watch_opts_t o = {.prefix = "/g/c/", .after_rev = r1};
    assert_int_equal(store_watch(f->s, &o, &w, &err), ERR_EXPIRED);
    /* Recent history is kept: the current revision is watchable. */
    err_clear(&err);
    o.after_rev = store_revision(f->s);
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    store_watcher_close(w);
}

static int fx_setup_fast_compaction(void **state)
{
    store_config_t cfg = {.no_sync = 1, .compact_interval_ms = 150};
    return fx_setup_cfg(state, &cfg);
}

static void test_store__slow_watcher_ended(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    store_watcher_t *slow, *fast;
    store_watch_opts_t o = {.prefix = "/g/s/", .after_rev = store_revision(f->s), .queue = 8};
    assert_int_equal(store_watch(f->s, &o, &slow, &err), 0);
    o.queue = 1000;
    assert_int_equal(store_watch(f->s, &o, &fast, &err), 0);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 200; i++)
        put(f->s, "/g/s/k", i % 2 ? "a" : "b");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    /* 200 unsynced writes with a stuck watcher: the writer never waited. */
    assert_true(ms < 2000);

    for (int i = 0; i < 200; i++)
        store_event_release(next_ev(fast, 1000));
    for (int i = 0; i < 8; i++)
        store_event_release(next_ev(slow, 1000));
    const store_event_t *ev = NULL;
    assert_int_equal(store_watcher_next(slow, &ev, 1000, &err), ERR_WATCH_OVERFLOW);
    /* Final: it stays ended, and writes go on. */
    assert_int_equal(store_watcher_next(slow, &ev, 0, NULL), ERR_WATCH_OVERFLOW);
    store_stats_t st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.watchers_overflowed, 1);
    put(f->s, "/g/s/k", "after");
    store_event_release(next_ev(fast, 1000));
    store_watcher_close(slow);
    store_watcher_close(fast);
}

/* ---- map growth, group commit, allocation failure -------------------------- */

static int fx_setup_tiny_map(void **state)
{
    store_config_t cfg = {.no_sync = 1, .compact_interval_ms = 3600000,
                          .map_size = 256 * 1024};
    return fx_setup_cfg(state, &cfg);
}

static void test_store__map_grows(void **state)
{
    fx_t *f = *state;
    char val[2000], key[64];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    for (int i = 0; i < 2000; i++) {  /* ~8 MB with the event log */
        snprintf(key, sizeof key, "/g/big/k%05d", i);
        put(f->s, key, val);
    }
    store_stats_t st;
    store_get_stats(f->s, &st);
    assert_true(st.map_size > 256 * 1024);
    store_close(f->s);
    fx_open(f);
    page_t p;
    err_t err = {0};
    store_list_opts_t o = {.prefix = "/g/big/", .count_remaining = 1, .limit = 1};
    store_list_result_t res;
    memset(&p, 0, sizeof p);
    assert_int_equal(store_list(f->s, &o, collect, &p, &res, &err), 0);
    assert_int_equal(res.remaining, 1999);
    store_list_result_free(&res);
}

typedef struct gc_arg {
    store_t *s;
    int id;
} gc_arg_t;

static void *gc_worker(void *p)
{
    gc_arg_t *a = p;
    char key[64];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "/g/gc/w%d-%d", a->id, i);
        err_t err = {0};
        if (store_create(a->s, key, "v", 1, NULL, &err))
            fail_msg("create: %s", err.message);
    }
    return NULL;
}

static int fx_setup_durable(void **state)
{
    store_config_t cfg = {.compact_interval_ms = 3600000};
    return fx_setup_cfg(state, &cfg);
}

static void test_store__group_commit(void **state)
{
    fx_t *f = *state;
    store_stats_t before, after;
    store_get_stats(f->s, &before);
    pthread_t t[16];
    gc_arg_t a[16];
    for (int i = 0; i < 16; i++) {
        a[i] = (gc_arg_t){f->s, i};
        pthread_create(&t[i], NULL, gc_worker, &a[i]);
    }
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    store_get_stats(f->s, &after);
    uint64_t writes = after.writes - before.writes;
    uint64_t commits = after.commits - before.commits;
    assert_int_equal(writes, 16 * 40);
    /* Durable commits were shared between concurrent writers. */
    assert_true(commits < writes);
}

/* Fails the n-th allocation of the calling thread for growing n (the
 * budget is per thread: the writer and the compactor never spend it).
 * Every call either works or fails cleanly with ERR_NOMEM and leaves
 * nothing behind: no key, no revision, no page, no watcher. Once the
 * budget covers what a call allocates, it succeeds; the sanitizer checks
 * for leaks. */
static void test_store__allocation_failures(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/m/seed", "s");
    put(f->s, "/g/m/seed2", "s");
    int created = 0, listed = 0, watched = 0;
    for (long n = 0; !(created && listed && watched); n++) {
        assert_true(n < 200);
        err_t err = {0};
        if (!created) {
            char key[32];
            snprintf(key, sizeof key, "/g/m/k%ld", n);
            uint64_t before = store_revision(f->s), rev = 0;
            mem_fail_after(n);
            int rc = store_create(f->s, key, "v", 1, &rev, &err);
            mem_fail_after(-1);
            if (rc == 0) {
                created = 1;
                assert_int_equal(rev, before + 1);
            } else {
                assert_int_equal(rc, ERR_NOMEM);
                assert_int_equal(err.code, ERR_NOMEM);
                assert_int_equal(store_revision(f->s), before);
                store_value_t v = {0};
                err_clear(&err);
                assert_int_equal(store_get(f->s, key, &v, &err), ERR_NOT_FOUND);
            }
        }

        if (!listed) {
            page_t p = {0};
            store_list_opts_t o = {.prefix = "/g/m/", .limit = 1};
            store_list_result_t res = {0};
            err_clear(&err);
            mem_fail_after(n);
            int rc = store_list(f->s, &o, collect, &p, &res, &err);
            mem_fail_after(-1);
            if (rc == 0) {
                listed = 1;
                assert_int_equal(p.n, 1);
                assert_non_null(res.continue_token);
            } else {
                assert_int_equal(rc, ERR_NOMEM);
                assert_int_equal(err.code, ERR_NOMEM);
                assert_null(res.continue_token);
            }
            store_list_result_free(&res);
        }

        if (!watched) {
            store_watcher_t *w = NULL;
            store_watch_opts_t wo = {.prefix = "/g/m/", .after_rev = 0};
            const store_event_t *ev = NULL;
            err_clear(&err);
            mem_fail_after(n);
            int rc = store_watch(f->s, &wo, &w, &err);
            int rc2 = rc ? rc : store_watcher_next(w, &ev, 0, &err);
            mem_fail_after(-1);
            if (rc) {
                assert_int_equal(rc, ERR_NOMEM);
                assert_int_equal(err.code, ERR_NOMEM);
                assert_null(w);
            } else if (rc2 == 0) {
                watched = 1;
                assert_non_null(ev);
                assert_string_equal(ev->key, "/g/m/seed");
                store_event_release(ev);
            } else {
                assert_int_equal(rc2, ERR_NOMEM);
                assert_null(ev);
            }
            store_watcher_close(w);
        }
    }
    /* The store still works afterwards. */
    put(f->s, "/g/m/after", "ok");
}

static void test_store__release_pages_keeps_data(void **state)
{
    fx_t *f = *state;
    char key[64], val[64];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "/g/rel/k%03d", i);
        snprintf(val, sizeof val, "value-%d", i);
        put(f->s, key, val);
    }
    page_t before, after;
    err_t err = {0};
    list_all(f->s, "/g/rel/", 0, 0, &before, NULL, &err);
    store_release_pages(f->s);
    list_all(f->s, "/g/rel/", 0, 0, &after, NULL, &err);
    assert_int_equal(after.n, 500);
    assert_string_equal(before.buf, after.buf);
    /* Writes go on as before. */
    assert_true(put(f->s, "/g/rel/k999", "x") > 0);
}

/* This process's resident pages of mapped files, in KiB. */
static long rss_file_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssFile: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int count_value(void *arg, const store_kv_t *kv)
{
    *(size_t *)arg += kv->value_len == 1999 && kv->value[1998] == 'x';
    return STORE_TAKE;
}

/* Releasing lets go of what a scan mapped, also after the map has moved
 * (grown) since the last release. */
static void test_store__release_pages_after_growth(void **state)
{
    fx_t *f = *state;
    store_release_pages(f->s);
    long base = rss_file_kib();
    char val[2000], key[64];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    for (int i = 0; i < 3000; i++) {  /* ~12 MB with the event log: the map grows */
        snprintf(key, sizeof key, "/g/grow/k%05d", i);
        put(f->s, key, val);
    }
    /* One scan reads every value (a page's buffer would not hold them). */
    size_t n = 0;
    err_t err = {0};
    store_list_opts_t o = {.prefix = "/g/grow/"};
    store_list_result_t res;
    assert_int_equal(store_list(f->s, &o, count_value, &n, &res, &err), 0);
    store_list_result_free(&res);
    assert_int_equal(n, 3000);
    store_release_pages(f->s);
    long after = rss_file_kib();
    assert_true(base > 0);
    if (after > base + 1024)
        fail_msg("RssFile %ld KiB after release, %ld before the writes", after, base);
}

/* ---- a map grown by another process ----------------------------------------- */

#define GROWN_MAP ((size_t)32 << 20)

/* Another process writes about 4 MiB, so the environment's data reaches
 * past this process's 256 KiB map. LMDB lets several processes share an
 * environment (the store's LOCK file is what keeps a second store out):
 * a child opens it with plain LMDB and a map of GROWN_MAP, and writes into
 * a database of its own. */
static void grow_from_another_process(const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        static char val[4000];
        memset(val, 'g', sizeof val);
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
            mdb_env_set_mapsize(env, GROWN_MAP) || mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
            mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "grown", MDB_CREATE, &dbi))
            _exit(2);
        for (int i = 0; i < 1000; i++) {
            char k[16];
            snprintf(k, sizeof k, "%06d", i);
            MDB_val kv = {strlen(k), k}, vv = {sizeof val, val};
            if (mdb_put(txn, dbi, &kv, &vv, 0))
                _exit(3);
        }
        if (mdb_txn_commit(txn))
            _exit(4);
        mdb_env_close(env);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

typedef struct resize_race {
    store_t *s;
    sem_t inside;                /* the list's visitor holds its read open */
    sem_t go;                    /* the visitor may return */
    atomic_int get_done;         /* the second reader's get returned */
    int get_rc;
    int moved_under_read;        /* the get returned while the read was open */
    int value_ok;
} resize_race_t;

static int hold_read(void *arg, const store_kv_t *kv)
{
    resize_race_t *r = arg;
    sem_post(&r->inside);
    while (sem_wait(&r->go) != 0)
        ;
    /* Had the map been moved while this read was open, kv would point
     * into memory no longer mapped: look at it only if it was not. */
    r->moved_under_read = atomic_load(&r->get_done);
    if (!r->moved_under_read)
        r->value_ok = kv->value_len == 4 && !memcmp(kv->value, "held", 4);
    return STORE_TAKE;
}

static void *list_holding_read(void *arg)
{
    resize_race_t *r = arg;
    store_list_opts_t o = {.prefix = "/g/rs/"};
    store_list_result_t res;
    err_t err = {0};
    if (store_list(r->s, &o, hold_read, r, &res, &err) == 0)
        store_list_result_free(&res);
    return NULL;
}

static void *get_after_growth(void *arg)
{
    resize_race_t *r = arg;
    store_value_t v = {0};
    err_t err = {0};
    r->get_rc = store_get(r->s, "/g/rs/k", &v, &err);
    if (!r->get_rc && (v.len != 4 || memcmp(v.data, "held", 4)))
        r->get_rc = -1;
    store_value_free(&v);
    atomic_store(&r->get_done, 1);
    return NULL;
}

/* A read that finds the map grown by another process adopts the new size
 * (mdb_env_set_mapsize(env, 0)), which moves the map: only once no other
 * read of this process is open (LMDB forbids it while one is, and that
 * read's pointers would go stale), and the size it adopted is the one the
 * store reports (and the one it releases pages by). */
static void test_store__map_resized_by_another_process(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/rs/k", "held");
    store_stats_t st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.map_size, 256 * 1024);

    resize_race_t r = {.s = f->s};
    sem_init(&r.inside, 0, 0);
    sem_init(&r.go, 0, 0);
    pthread_t lister, getter;
    pthread_create(&lister, NULL, list_holding_read, &r);
    while (sem_wait(&r.inside) != 0)
        ;
    grow_from_another_process(f->dir);
    pthread_create(&getter, NULL, get_after_growth, &r);
    /* The get must wait for the open read; give it time not to. */
    for (int i = 0; i < 50 && !atomic_load(&r.get_done); i++)
        usleep(10000);
    sem_post(&r.go);
    pthread_join(lister, NULL);
    pthread_join(getter, NULL);
    sem_destroy(&r.inside);
    sem_destroy(&r.go);
    if (r.moved_under_read)
        fail_msg("the map was resized while another read of this process was open");
    assert_true(r.value_ok);
    assert_int_equal(r.get_rc, 0);
    store_get_stats(f->s, &st);
    assert_int_equal(st.map_size, GROWN_MAP);

    /* Pages are released from where the map is now; reads and writes go on. */
    store_release_pages(f->s);
    assert_true(put(f->s, "/g/rs/k2", "after") > 0);
    page_t p;
    err_t err = {0};
    assert_int_equal(list_all(f->s, "/g/rs/", 0, 0, &p, NULL, &err), 1);
    assert_string_equal(p.buf, "/g/rs/k=held;/g/rs/k2=after;");
}

/* The writer adopts a map grown by another process too, instead of
 * failing the batch. */
static void test_store__map_resized_before_a_write(void **state)
{
    fx_t *f = *state;
    put(f->s, "/g/rs/k", "held");
    grow_from_another_process(f->dir);
    err_t err = {0};
    assert_int_equal(store_create(f->s, "/g/rs/w", "v", 1, NULL, &err), 0);
    store_stats_t st;
    store_get_stats(f->s, &st);
    assert_int_equal(st.map_size, GROWN_MAP);
    store_value_t v = {0};
    assert_int_equal(store_get(f->s, "/g/rs/w", &v, &err), 0);
    store_value_free(&v);
}

/* ---- crash safety ---------------------------------------------------------- */

typedef struct crash_arg {
    store_t *s;
    int fd;
    int id;
} crash_arg_t;

static void *crash_writer(void *p)
{
    crash_arg_t *a = p;
    char key[64], line[96];
    for (int i = 0;; i++) {
        snprintf(key, sizeof key, "/g/crash/w%d-%06d", a->id, i);
        uint64_t rev = 0;
        err_t err = {0};
        if (store_create(a->s, key, key, strlen(key), &rev, &err))
            _exit(3);
        /* Acknowledged: report it (one write(2) under PIPE_BUF is atomic). */
        int n = snprintf(line, sizeof line, "%s %" PRIu64 "\n", key, rev);
        if (write(a->fd, line, (size_t)n) != n)
            _exit(4);
    }
    return NULL;
}

static void test_store__crash_safety(void **state)
{
    fx_t *f = *state;
    store_close(f->s);  /* the child owns the directory now */
    f->s = NULL;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        store_t *s;
        err_t err = {0};
        if (store_open(&f->cfg, &s, &err))
            _exit(2);
        pthread_t t[4];
        crash_arg_t a[4];
        for (int i = 0; i < 4; i++) {
            a[i] = (crash_arg_t){s, pfd[1], i};
            pthread_create(&t[i], NULL, crash_writer, &a[i]);
        }
        pause();
        _exit(0);
    }
    close(pfd[1]);
    usleep(700000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));

    /* Read every acknowledgement the child sent before it died. */
    size_t cap = 1 << 22, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(pfd[0], buf + len, cap - len - 1)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(pfd[0]);

    fx_open(f);
    int acked = 0;
    uint64_t max_rev = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char key[64];
        uint64_t rev;
        if (sscanf(line, "%63s %" SCNu64, key, &rev) != 2)
            fail_msg("bad ack line %s", line);
        store_value_t v = {0};
        err_t err = {0};
        if (store_get(f->s, key, &v, &err))
            fail_msg("acknowledged write %s (rev %" PRIu64 ") lost: %s", key, rev, err.message);
        assert_int_equal(v.mod_rev, rev);
        assert_memory_equal(v.data, key, strlen(key));
        store_value_free(&v);
        if (rev > max_rev)
            max_rev = rev;
        acked++;
    }
    free(buf);
    assert_true(acked > 20);
    assert_true(store_revision(f->s) >= max_rev);

    /* The event log holds strictly increasing revisions with no gaps. */
    store_watcher_t *w;
    err_t err = {0};
    store_watch_opts_t o = {.prefix = "/g/crash/", .after_rev = 0, .queue = 1 << 16};
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    uint64_t prev = 0;
    const store_event_t *ev;
    while (store_watcher_next(w, &ev, 0, &err) == 0) {
        assert_int_equal(ev->rev, prev + 1);
        prev = ev->rev;
        store_event_release(ev);
    }
    assert_int_equal(prev, store_revision(f->s));
    store_watcher_close(w);
}

/* ---- etcd: other writers, restarts ------------------------------------------ */

/* Another replica (a second store on the same prefix) and another client
 * (keys outside the prefix) write into the same etcd: this store's
 * revisions jump, and its watchers, its lists at a revision and its replay
 * of history stay exact. */
static void test_store__etcd_other_writers(void **state)
{
    fx_t *f = *state;
    store_t *other = NULL;
    err_t err = {0};
    assert_int_equal(store_open(&f->cfg, &other, &err), 0);
    uint64_t start = store_revision(f->s);
    store_watcher_t *w;
    store_watch_opts_t o = {.prefix = "/g/j/", .after_rev = start};
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);

    uint64_t revs[60], mid = 0;
    char val[32];
    for (int i = 0; i < 30; i++) {
        snprintf(val, sizeof val, "a%d", i);
        revs[2 * i] = put(f->s, "/g/j/a", val);
        etcd_put_raw("/elsewhere/k", val);
        etcd_put_raw("/edge-test/unrelated", val);
        snprintf(val, sizeof val, "b%d", i);
        revs[2 * i + 1] = put(other, "/g/j/b", val);
        if (i == 14)
            mid = revs[2 * i + 1];
    }
    /* Revisions jumped over the other client's writes. */
    assert_true(revs[1] > revs[0] + 2);

    /* The watcher saw both replicas' writes, in order, once each. */
    for (int i = 0; i < 60; i++) {
        const store_event_t *ev = next_ev(w, 5000);
        snprintf(val, sizeof val, "%c%d", i % 2 ? 'b' : 'a', i / 2);
        assert_string_equal(ev->key, i % 2 ? "/g/j/b" : "/g/j/a");
        assert_string_equal(ev->value, val);
        assert_int_equal(ev->rev, revs[i]);
        store_event_release(ev);
    }
    const store_event_t *none = NULL;
    assert_int_equal(store_watcher_next(w, &none, 100, &err), ERR_TIMEOUT);
    store_watcher_close(w);

    /* Lists: the latest, and one at a revision in the middle. */
    page_t p;
    list_all(f->s, "/g/j/", 0, 1, &p, NULL, &err);
    assert_string_equal(p.buf, "/g/j/a=a29;/g/j/b=b29;");
    list_all(f->s, "/g/j/", mid, 1, &p, NULL, &err);
    assert_string_equal(p.buf, "/g/j/a=a14;/g/j/b=b14;");

    /* A replay from the start (older than the 16-event ring: etcd's
     * history) is the same sequence. */
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    for (int i = 0; i < 60; i++) {
        const store_event_t *ev = next_ev(w, 5000);
        assert_int_equal(ev->rev, revs[i]);
        assert_string_equal(ev->key, i % 2 ? "/g/j/b" : "/g/j/a");
        store_event_release(ev);
    }
    assert_int_equal(store_watcher_next(w, &none, 100, &err), ERR_TIMEOUT);
    store_watcher_close(w);
    store_close(other);
}

/* etcd restarts under a live watcher; meanwhile another client writes
 * under the prefix. The watch resumes where it was: every change once, in
 * order, none lost. */
static void test_store__etcd_restart_resumes_watch(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    store_watcher_t *w;
    store_watch_opts_t o = {.prefix = "/g/rs/", .after_rev = store_revision(f->s)};
    assert_int_equal(store_watch(f->s, &o, &w, &err), 0);
    uint64_t r1 = put(f->s, "/g/rs/a", "1");
    expect_ev(w, STORE_PUT, "/g/rs/a", "1", NULL, r1);

    fx_etcd_stop(&etcd);
    assert_int_equal(fx_etcd_start(&etcd), 0);
    char key[64];
    snprintf(key, sizeof key, "%s/g/rs/x", f->prefix);
    uint64_t rx1 = etcd_put_raw(key, "x1");
    uint64_t rx2 = etcd_put_raw(key, "x2");
    uint64_t r2 = 0;
    for (int i = 0; i < 100; i++) {  /* until the store's connections are back */
        err_clear(&err);
        if (store_update(f->s, "/g/rs/a", "2", 1, r1, &r2, NULL, &err) == 0)
            break;
        assert_int_equal(err.code, ERR_UNAVAILABLE);
        usleep(50000);
    }
    assert_true(r2 > rx2);
    expect_ev(w, STORE_PUT, "/g/rs/x", "x1", NULL, rx1);
    expect_ev(w, STORE_PUT, "/g/rs/x", "x2", "x1", rx2);
    expect_ev(w, STORE_PUT, "/g/rs/a", "2", "1", r2);
    const store_event_t *none = NULL;
    assert_int_equal(store_watcher_next(w, &none, 200, &err), ERR_TIMEOUT);
    store_watcher_close(w);
}

/* Each test with the setup and teardown it needs; lmdb_only ones are not
 * run on etcd, etcd_only ones not on LMDB. */
typedef struct suite_case {
    struct CMUnitTest t;
    int lmdb_only, etcd_only;
} suite_case_t;

#define CASE(fn, setup) {cmocka_unit_test_setup_teardown(fn, setup, fx_teardown), 0, 0}
#define LMDB_CASE(fn, setup) {cmocka_unit_test_setup_teardown(fn, setup, fx_teardown), 1, 0}
#define ETCD_CASE(fn, setup) {cmocka_unit_test_setup_teardown(fn, setup, fx_teardown), 0, 1}

static const suite_case_t cases[] = {
    CASE(test_store__create_get_revisions, fx_setup),
    CASE(test_store__errors, fx_setup),
    CASE(test_store__compare_and_swap, fx_setup),
    CASE(test_store__cas_concurrent, fx_setup),
    CASE(test_store__revisions_survive_restart, fx_setup),
    LMDB_CASE(test_store__second_open_refused, fx_setup),
    CASE(test_store__list_prefix_and_order, fx_setup),
    CASE(test_store__list_pages_one_snapshot, fx_setup),
    CASE(test_store__list_exact_revision, fx_setup),
    CASE(test_store__list_remaining_and_skip, fx_setup),
    CASE(test_store__continue_token_expired_and_bad, fx_setup),
    CASE(test_store__watch_replay_from_ring, fx_setup),
    CASE(test_store__watch_replay_from_log, fx_setup_small_ring),
    CASE(test_store__watch_exact_key, fx_setup),
    CASE(test_store__watch_blocks_until_event, fx_setup),
    CASE(test_store__watch_compacted_is_expired, fx_setup),
    CASE(test_store__compaction_window, fx_setup_fast_compaction),
    CASE(test_store__slow_watcher_ended, fx_setup),
    LMDB_CASE(test_store__map_grows, fx_setup_tiny_map),
    LMDB_CASE(test_store__group_commit, fx_setup_durable),
    /* On etcd an allocation failing after etcd applied a write cannot
     * take the write back, as with a timeout. */
    LMDB_CASE(test_store__allocation_failures, fx_setup),
    LMDB_CASE(test_store__release_pages_keeps_data, fx_setup),
    LMDB_CASE(test_store__release_pages_after_growth, fx_setup_tiny_map),
    LMDB_CASE(test_store__map_resized_by_another_process, fx_setup_tiny_map),
    LMDB_CASE(test_store__map_resized_before_a_write, fx_setup_tiny_map),
    LMDB_CASE(test_store__crash_safety, fx_setup_durable),
    ETCD_CASE(test_store__etcd_other_writers, fx_setup_small_ring),
    ETCD_CASE(test_store__etcd_restart_resumes_watch, fx_setup),
};

int main(void)
{
    mem_init();
    enum { N = sizeof cases / sizeof cases[0] };
    struct CMUnitTest lmdb[N], etcd3[N];
    size_t nl = 0, ne = 0;
    for (size_t i = 0; i < N; i++) {
        if (!cases[i].etcd_only)
            lmdb[nl++] = cases[i].t;
        if (!cases[i].lmdb_only)
            etcd3[ne++] = cases[i].t;
    }
    int failed = _cmocka_run_group_tests("store/lmdb", lmdb, nl, NULL, NULL);
    failed += _cmocka_run_group_tests("store/etcd3", etcd3, ne, etcd_group_setup,
                                      etcd_group_teardown);
    return failed;
}
