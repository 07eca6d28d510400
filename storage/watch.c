/*
 * The watch fan-out: the ring of recent events and the watchers.
 *
 * A watcher is in one of two modes.
 *   catching up: its consumer pulls events with rev > pos from the ring or,
 *     when they are older than the ring, from the backend's event log, a
 *     batch at a time, without holding the hub lock during log reads.
 *   live: it sits on the hub's list and the writer pushes matching events
 *     into its bounded queue as they are published.
 * The switch happens under the hub lock once pos reaches the published
 * revision, so no event is missed or seen twice (the publisher skips events
 * at or below a watcher's pos). A live watcher whose queue is full is taken
 * off the list and marked ERR_WATCH_OVERFLOW: its consumer drains what was
 * queued, then sees the error. The writer therefore never waits.
 */
#include "store_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "../lib/mem.h"

#define WATCH_LOG_BATCH 256u

struct store_watcher {
    store_t *s;
    char *prefix;
    size_t prefix_len;
    int exact;                   /* prefix is a whole key */
    uint64_t pos;                /* every event <= pos has been considered */
    store__event_t **q;          /* bounded FIFO */
    unsigned cap, head, count;
    int live;
    int error;                   /* final error once the queue is drained */
    int waiting;
    pthread_cond_t cv;
    store_notify_fn notify;
    void *notify_arg;
    store_watcher_t *prev, *next;
};

int store__hub_init(store__hub_t *h, unsigned ring_cap, unsigned queue,
                    uint64_t published, uint64_t compact_rev)
{
    memset(h, 0, sizeof *h);
    h->ring = mem_calloc(ring_cap, sizeof *h->ring);
    if (!h->ring)
        return ERR_NOMEM;
    h->ring_cap = ring_cap;
    h->default_queue = queue;
    h->published = published;
    h->ring_first = published + 1;
    atomic_init(&h->compact_rev, compact_rev);
    pthread_mutex_init(&h->mu, NULL);
    return 0;
}

static void hub_wake(store_watcher_t *w)
{
    if (w->waiting)
        pthread_cond_signal(&w->cv);
    if (w->notify)
        w->notify(w->notify_arg);
}

void store__hub_shutdown(store__hub_t *h)
{
    pthread_mutex_lock(&h->mu);
    h->closing = 1;
    for (store_watcher_t *w = h->live; w; w = w->next)
        hub_wake(w);
    pthread_mutex_unlock(&h->mu);
}

void store__hub_destroy(store__hub_t *h)
{
    if (!h->ring)
        return;
    for (uint64_t r = h->ring_first; r <= h->published; r++)
        store__event_unref(h->ring[r % h->ring_cap]);
    mem_free(h->ring);
    h->ring = NULL;
    pthread_mutex_destroy(&h->mu);
}

static int watch_matches(const store_watcher_t *w, const store_event_t *ev)
{
    if (w->exact)
        return ev->key_len == w->prefix_len && !memcmp(ev->key, w->prefix, w->prefix_len);
    return ev->key_len >= w->prefix_len && !memcmp(ev->key, w->prefix, w->prefix_len);
}

static int watch_full(const store_watcher_t *w) { return w->count == w->cap; }

static void watch_push(store_watcher_t *w, store__event_t *ev)
{
    w->q[(w->head + w->count) % w->cap] = ev;
    w->count++;
}

static void hub_unlink(store__hub_t *h, store_watcher_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        h->live = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->live = 0;
}

void store__hub_publish(store__hub_t *h, store__event_t **evs, size_t n)
{
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        store__event_t *ev = evs[i];
        uint64_t rev = ev->pub.rev;
        /* The ring keeps the last ring_cap revisions, indexed by rev. */
        if (h->published + 1 - h->ring_first == h->ring_cap) {
            store__event_unref(h->ring[h->ring_first % h->ring_cap]);
            h->ring_first++;
        }
        h->ring[rev % h->ring_cap] = ev;
        h->published = rev;

        store_watcher_t *w = h->live;
        while (w) {
            store_watcher_t *next = w->next;
            if (rev > w->pos && watch_matches(w, &ev->pub)) {
                w->pos = rev;
                if (watch_full(w)) {
                    w->error = ERR_WATCH_OVERFLOW;
                    h->overflowed++;
                    hub_unlink(h, w);
                } else {
                    store__event_ref(ev);
                    watch_push(w, ev);
                }
                hub_wake(w);
            }
            w = next;
        }
    }
    pthread_mutex_unlock(&h->mu);
}

/* Frees a watcher that is on no list. */
static void watch_free(store_watcher_t *w)
{
    for (unsigned i = 0; i < w->count; i++)
        store__event_unref(w->q[(w->head + i) % w->cap]);
    pthread_cond_destroy(&w->cv);
    mem_free(w->q);
    mem_free(w->prefix);
    mem_free(w);
}

int store_watch(store_t *s, const store_watch_opts_t *o, store_watcher_t **out,
                err_t *err)
{
    store__hub_t *h = &s->hub;
    size_t plen = o->prefix ? strlen(o->prefix) : 0;
    int is_prefix = plen > 0 && o->prefix[plen - 1] == '/';
    int rc = store__check_key(o->prefix, plen, is_prefix, err);
    if (rc)
        return rc;
    uint64_t compact = atomic_load(&h->compact_rev);
    if (o->after_rev < compact)
        return err_set(err, ERR_EXPIRED,
                       "too old resource version: %llu (%llu)",
                       (unsigned long long)o->after_rev,
                       (unsigned long long)compact);

    store_watcher_t *w = mem_calloc(1, sizeof *w);
    if (!w)
        return err_set(err, ERR_NOMEM, NULL);
    w->cap = o->queue ? o->queue : h->default_queue;
    w->q = mem_alloc(w->cap * sizeof *w->q);
    w->prefix = mem_strndup(o->prefix, plen);
    if (!w->q || !w->prefix) {
        mem_free(w->q);
        mem_free(w->prefix);
        mem_free(w);
        return err_set(err, ERR_NOMEM, NULL);
    }
    w->prefix_len = plen;
    w->exact = !is_prefix;
    w->s = s;
    w->pos = o->after_rev;
    w->notify = o->notify;
    w->notify_arg = o->notify_arg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);

    pthread_mutex_lock(&h->mu);
    if (h->closing) {
        pthread_mutex_unlock(&h->mu);
        watch_free(w);
        return err_set(err, ERR_CLOSED, NULL);
    }
    h->nwatchers++;
    /* Already caught up (the common case: a watch from "now"): go live at
     * once, so no consumer call is needed before events are pushed. */
    if (w->pos >= h->published) {
        w->live = 1;
        w->next = h->live;
        if (h->live)
            h->live->prev = w;
        h->live = w;
    }
    pthread_mutex_unlock(&h->mu);
    *out = w;
    return 0;
}

typedef struct watch_sink {
    store_watcher_t *w;
} watch_sink_t;

static int watch_sink(void *arg, store__event_t *ev)
{
    store_watcher_t *w = ((watch_sink_t *)arg)->w;
    if (watch_matches(w, &ev->pub) && !watch_full(w))
        watch_push(w, ev);
    else
        store__event_unref(ev);
    return 0;
}

/* One step of catching up, called with the hub lock held; may drop and
 * retake it around a log read. Returns 0 or a final error. */
static int watch_catch_up(store_watcher_t *w, err_t *err)
{
    store__hub_t *h = &w->s->hub;
    if (w->pos >= h->published) {
        w->live = 1;
        w->prev = NULL;
        w->next = h->live;
        if (h->live)
            h->live->prev = w;
        h->live = w;
        return 0;
    }
    if (w->pos + 1 >= h->ring_first) {
        /* From the ring, while there is room in the queue. */
        while (w->pos < h->published && !watch_full(w)) {
            store__event_t *ev = h->ring[(w->pos + 1) % h->ring_cap];
            if (watch_matches(w, &ev->pub)) {
                store__event_ref(ev);
                watch_push(w, ev);
            }
            w->pos++;
        }
        return 0;
    }
    /* Older than the ring: from the backend's log, without the lock. Only
     * this consumer touches a watcher that is not live. */
    uint64_t upto = h->ring_first - 1;
    size_t room = w->cap - w->count;
    pthread_mutex_unlock(&h->mu);
    uint64_t scanned = w->pos;
    watch_sink_t sink = {w};
    int rc = w->s->be->read_events(w->s, w->pos, upto,
                                   room < WATCH_LOG_BATCH ? room : WATCH_LOG_BATCH,
                                   watch_sink, &sink, &scanned, err);
    pthread_mutex_lock(&h->mu);
    if (rc)
        return rc;
    if (scanned <= w->pos)  /* no progress would spin forever */
        return err_set(err, ERR_INTERNAL, "watch: event log did not advance");
    w->pos = scanned;
    return 0;
}

int store_watcher_next(store_watcher_t *w, const store_event_t **ev,
                       int timeout_ms, err_t *err)
{
    store__hub_t *h = &w->s->hub;
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t ns = (uint64_t)deadline.tv_nsec + (uint64_t)timeout_ms * 1000000u;
        deadline.tv_sec += (time_t)(ns / 1000000000u);
        deadline.tv_nsec = (long)(ns % 1000000000u);
    }
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        if (w->count) {
            *ev = &w->q[w->head]->pub;
            w->head = (w->head + 1) % w->cap;
            w->count--;
            break;
        }
        if (w->error) {
            rc = err_set(err, w->error, NULL);
            break;
        }
        if (h->closing) {
            rc = err_set(err, ERR_CLOSED, NULL);
            break;
        }
        if (!w->live) {
            rc = watch_catch_up(w, err);
            if (rc) {
                w->error = rc;
                break;
            }
            continue;
        }
        if (timeout_ms == 0) {
            rc = ERR_TIMEOUT;
            break;
        }
        w->waiting = 1;
        int wr = timeout_ms < 0 ? pthread_cond_wait(&w->cv, &h->mu)
                                : pthread_cond_timedwait(&w->cv, &h->mu, &deadline);
        w->waiting = 0;
        if (wr == ETIMEDOUT && !w->count && !w->error && !h->closing) {
            rc = ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

uint64_t store_watcher_progress(store_watcher_t *w)
{
    store__hub_t *h = &w->s->hub;
    pthread_mutex_lock(&h->mu);
    /* A live watcher with nothing queued has seen everything published. */
    uint64_t p = w->live && !w->count ? h->published : w->pos;
    if (w->count)
        p = w->q[w->head]->pub.rev - 1;
    pthread_mutex_unlock(&h->mu);
    return p;
}

void store_watcher_close(store_watcher_t *w)
{
    if (!w)
        return;
    store__hub_t *h = &w->s->hub;
    pthread_mutex_lock(&h->mu);
    if (w->live)
        hub_unlink(h, w);
    h->nwatchers--;
    pthread_mutex_unlock(&h->mu);
    watch_free(w);
}
