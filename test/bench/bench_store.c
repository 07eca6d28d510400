/*
 * In-process storage benchmark (not a test: prints figures).
 *
 *   bench_store DIR
 *
 * Measures, on a store in DIR (use a real disk, not tmpfs):
 *   - this disk's fdatasync/s, the reference the create figures compare to;
 *   - gets/s over 10,000 objects, 2 threads;
 *   - durable creates/s with 1 and with 32 concurrent writers;
 *   - time to list 10,000 objects (p50 and p99 of 30 lists);
 *   - commit-to-delivery latency at 1,000 watchers (p50/p99), consumers
 *     woken through the notify hook as the HTTP layer will be.
 */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../lib/mem.h"
#include "../../storage/store.h"

#define NOBJ 10000
#define NWATCH 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static store_t *open_store(const char *dir, int no_sync)
{
    rm_rf(dir);
    store_config_t cfg = {.data_dir = dir, .no_sync = no_sync};
    store_t *s;
    err_t err = {0};
    if (store_open(&cfg, &s, &err)) {
        fprintf(stderr, "open %s: %s\n", dir, err.message);
        exit(1);
    }
    return s;
}

/* A ~1 KB object like the registry will store. */
static size_t make_obj(char *buf, size_t cap, int i)
{
    int n = snprintf(buf, cap,
                     "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
                     "\"metadata\":{\"name\":\"binding-%06d\",\"uid\":\"3f1c2a9e-0000-4000-8000-%012d\","
                     "\"creationTimestamp\":\"2026-11-25T10:00:00Z\",\"labels\":{\"team\":\"t%d\"}},"
                     "\"spec\":{\"roleRef\":{\"name\":\"viewer\"},\"subjects\":[{\"kind\":\"User\","
                     "\"name\":\"user-%d\"}],\"scope\":{\"level\":\"Workspace\",\"name\":\"ws-%d\"}},"
                     "\"pad\":\"",
                     i, i, i % 50, i, i % 1000);
    while ((size_t)n < 1000 && (size_t)n < cap - 3)
        buf[n++] = 'x';
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = '\0';
    return (size_t)n;
}

/* ---- fdatasync reference ------------------------------------------------ */

static double fdatasync_rate(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s.sync", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char block[4096] = {0};
    int n = 0;
    double t0 = now_s();
    while (now_s() - t0 < 1.0) {
        if (pwrite(fd, block, sizeof block, 0) != (ssize_t)sizeof block || fdatasync(fd))
            break;
        n++;
    }
    double rate = n / (now_s() - t0);
    close(fd);
    unlink(path);
    return rate;
}

/* ---- creates -------------------------------------------------------------- */

typedef struct cw {
    store_t *s;
    int id;
    double until;
    long done;
} cw_t;

static void *create_worker(void *p)
{
    cw_t *a = p;
    char key[64], obj[1200];
    for (long i = 0; now_s() < a->until; i++) {
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/w%d-%ld", a->id, i);
        size_t n = make_obj(obj, sizeof obj, (int)i);
        err_t err = {0};
        if (store_create(a->s, key, obj, n, NULL, &err)) {
            fprintf(stderr, "create: %s\n", err.message);
            exit(1);
        }
        a->done++;
    }
    return NULL;
}

static double creates_per_s(const char *dir, int writers, double secs)
{
    store_t *s = open_store(dir, 0);
    pthread_t t[64];
    cw_t a[64];
    double t0 = now_s();
    for (int i = 0; i < writers; i++) {
        a[i] = (cw_t){s, i, t0 + secs, 0};
        pthread_create(&t[i], NULL, create_worker, &a[i]);
    }
    long total = 0;
    for (int i = 0; i < writers; i++) {
        pthread_join(t[i], NULL);
        total += a[i].done;
    }
    double el = now_s() - t0;
    store_stats_t st;
    store_get_stats(s, &st);
    printf("  %2d writer(s): %8.0f creates/s  (%" PRIu64 " writes in %" PRIu64
           " commits, %.1f per commit)\n",
           writers, (double)total / el, st.writes, st.commits,
           (double)st.writes / (double)(st.commits ? st.commits : 1));
    store_close(s);
    return (double)total / el;
}

/* ---- gets ----------------------------------------------------------------- */

typedef struct gw {
    store_t *s;
    double until;
    long done;
    unsigned seed;
} gw_t;

static void *get_worker(void *p)
{
    gw_t *a = p;
    char key[96];
    while (now_s() < a->until) {
        for (int k = 0; k < 1000; k++) {
            int i = (int)(rand_r(&a->seed) % NOBJ);
            snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/binding-%06d", i);
            store_value_t v;
            err_t err = {0};
            if (store_get(a->s, key, &v, &err)) {
                fprintf(stderr, "get %s: %s\n", key, err.message);
                exit(1);
            }
            store_value_free(&v);
            a->done++;
        }
    }
    return NULL;
}

static void fill(store_t *s)
{
    char key[96], obj[1200];
    for (int i = 0; i < NOBJ; i++) {
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/binding-%06d", i);
        size_t n = make_obj(obj, sizeof obj, i);
        err_t err = {0};
        if (store_create(s, key, obj, n, NULL, &err)) {
            fprintf(stderr, "fill: %s\n", err.message);
            exit(1);
        }
    }
}

/* ---- list ----------------------------------------------------------------- */

typedef struct lst {
    char *buf;
    size_t len;
    int n;
} lst_t;

/* Copies each value out, as a response writer would. */
static int list_visit(void *arg, const store_kv_t *kv)
{
    lst_t *l = arg;
    memcpy(l->buf + l->len, kv->value, kv->value_len);
    l->len += kv->value_len;
    l->n++;
    return STORE_TAKE;
}

/* ---- watch fan-out ---------------------------------------------------------- */

typedef struct wslot {
    store_watcher_t *w;
    atomic_int queued;
    struct wslot *next_ready;
} wslot_t;

static pthread_mutex_t rq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rq_cv = PTHREAD_COND_INITIALIZER;
static wslot_t *rq_head, *rq_tail;
static int rq_stop;
static double *lat;
static atomic_size_t nlat;
static size_t lat_cap;

/* The notify hook: what an HTTP layer does to resume a suspended watch. */
static void on_ready(void *arg)
{
    wslot_t *w = arg;
    if (atomic_exchange(&w->queued, 1))
        return;
    pthread_mutex_lock(&rq_mu);
    w->next_ready = NULL;
    if (rq_tail)
        rq_tail->next_ready = w;
    else
        rq_head = w;
    rq_tail = w;
    pthread_cond_signal(&rq_cv);
    pthread_mutex_unlock(&rq_mu);
}

static void *consumer(void *p)
{
    (void)p;
    for (;;) {
        pthread_mutex_lock(&rq_mu);
        while (!rq_head && !rq_stop)
            pthread_cond_wait(&rq_cv, &rq_mu);
        if (!rq_head) {
            pthread_mutex_unlock(&rq_mu);
            return NULL;
        }
        wslot_t *w = rq_head;
        rq_head = w->next_ready;
        if (!rq_head)
            rq_tail = NULL;
        pthread_mutex_unlock(&rq_mu);
        atomic_store(&w->queued, 0);
        const store_event_t *ev;
        while (store_watcher_next(w->w, &ev, 0, NULL) == 0) {
            double sent;
            memcpy(&sent, ev->value, sizeof sent);
            size_t i = atomic_fetch_add(&nlat, 1);
            if (i < lat_cap)
                lat[i] = now_s() - sent;
            store_event_release(ev);
        }
    }
}

static void watch_fanout(const char *dir, int no_sync)
{
    store_t *s = open_store(dir, no_sync);
    const int writes = 200;
    lat_cap = (size_t)writes * NWATCH;
    lat = malloc(lat_cap * sizeof *lat);
    atomic_store(&nlat, 0);
    rq_stop = 0;
    wslot_t *slots = calloc(NWATCH, sizeof *slots);
    err_t err = {0};
    for (int i = 0; i < NWATCH; i++) {
        store_watch_opts_t o = {.prefix = "/scope.theriseunion.io/clusters/",
                                .after_rev = store_revision(s), .notify = on_ready,
                                .notify_arg = &slots[i]};
        if (store_watch(s, &o, &slots[i].w, &err)) {
            fprintf(stderr, "watch: %s\n", err.message);
            exit(1);
        }
    }
    pthread_t c[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&c[i], NULL, consumer, NULL);
    for (int i = 0; i < writes; i++) {
        double t = now_s();
        char val[64];
        memcpy(val, &t, sizeof t);
        memset(val + sizeof t, 'v', sizeof val - sizeof t);
        if (store_update(s, "/scope.theriseunion.io/clusters/edge-1", val, sizeof val, 0,
                         NULL, NULL, &err) == ERR_NOT_FOUND) {
            err_clear(&err);
            store_create(s, "/scope.theriseunion.io/clusters/edge-1", val, sizeof val, NULL, &err);
        }
        usleep(5000);
    }
    usleep(200000);
    pthread_mutex_lock(&rq_mu);
    rq_stop = 1;
    pthread_cond_broadcast(&rq_cv);
    pthread_mutex_unlock(&rq_mu);
    for (int i = 0; i < 2; i++)
        pthread_join(c[i], NULL);
    size_t n = atomic_load(&nlat);
    printf("  %s: %zu deliveries of %zu; write-call-start to delivered p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           no_sync ? "commit without fsync" : "durable commit     ", n, lat_cap,
           pct(lat, n, 0.50) * 1e3, pct(lat, n, 0.99) * 1e3, pct(lat, n, 1.0) * 1e3);
    for (int i = 0; i < NWATCH; i++)
        store_watcher_close(slots[i].w);
    free(slots);
    free(lat);
    store_close(s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_store DIR\n");
        return 2;
    }
    mem_init();
    const char *dir = argv[1];

    double sync_rate = fdatasync_rate(dir);
    printf("disk: %.0f fdatasync/s (4 KiB write + fdatasync, 1 s)\n", sync_rate);

    printf("durable creates (1 KB objects, 3 s each):\n");
    double c1 = creates_per_s(dir, 1, 3.0);
    double c32 = creates_per_s(dir, 32, 3.0);
    printf("  32 writers vs fdatasync rate: %.2fx (target > 1.0: group commit working)\n",
           c32 / sync_rate);
    (void)c1;

    store_t *s = open_store(dir, 1);
    fill(s);
    printf("gets (10,000 objects of 1 KB, 2 threads, 2 s):\n");
    pthread_t t[2];
    gw_t g[2];
    double t0 = now_s();
    for (int i = 0; i < 2; i++) {
        g[i] = (gw_t){s, t0 + 2.0, 0, (unsigned)i + 1};
        pthread_create(&t[i], NULL, get_worker, &g[i]);
    }
    long gets = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        gets += g[i].done;
    }
    printf("  %.0f gets/s\n", (double)gets / (now_s() - t0));

    lst_t l = {malloc((size_t)NOBJ * 1100), 0, 0};
    double times[30];
    for (int i = 0; i < 30; i++) {
        l.len = 0;
        l.n = 0;
        store_list_opts_t o = {.prefix = "/iam.theriseunion.io/iamrolebindings/"};
        store_list_result_t r;
        err_t err = {0};
        double a = now_s();
        if (store_list(s, &o, list_visit, &l, &r, &err) || l.n != NOBJ) {
            fprintf(stderr, "list: %s (%d items)\n", err.message, l.n);
            return 1;
        }
        times[i] = now_s() - a;
        store_list_result_free(&r);
    }
    printf("list of 10,000 objects (values copied out): p50 %.2f ms, p99 %.2f ms (target < 10 ms)\n",
           pct(times, 30, 0.5) * 1e3, pct(times, 30, 0.99) * 1e3);
    free(l.buf);
    store_close(s);

    printf("watch fan-out, 1,000 watchers, 200 writes, 2 consumer threads woken by notify:\n");
    watch_fanout(dir, 1);
    watch_fanout(dir, 0);
    rm_rf(dir);
    return 0;
}
