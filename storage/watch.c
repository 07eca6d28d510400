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
 * at or below the revision a watcher went live at). A live watcher whose
 * queue is full is taken off the list and marked ERR_WATCH_OVERFLOW: its
 * consumer drains what was queued, then sees the error. The writer
 * therefore never waits.
 *
 * Revisions increase but need not be consecutive: on etcd other writers
 * (other replicas, other prefixes, the compactor's bookkeeping) take
 * revisions this store never sees, and one etcd revision may change
 * several keys. So the ring holds events in publish order, not indexed by
 * revision, and is searched by revision; ring_from is the revision after
 * which every event is in the ring. The events of one revision are
 * published in one call and handed to a watcher all together or not at
 * all, so pos (a revision) is always a boundary between whole revisions.
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
    uint64_t floor;              /* live: events <= floor are not for it */
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
    h->ring_from = published;
    atomic_init(&h->compact_rev, compact_rev);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->published_cv, NULL);
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
    pthread_cond_broadcast(&h->published_cv);
    pthread_mutex_unlock(&h->mu);
}

/* The i-th event of the ring, oldest first. */
static store__event_t *hub_at(const store__hub_t *h, unsigned i)
{
    return h->ring[(h->ring_head + i) % h->ring_cap];
}

/* Drops every event of the ring. */
static void hub_ring_clear(store__hub_t *h)
{
    for (unsigned i = 0; i < h->ring_count; i++)
        store__event_unref(hub_at(h, i));
    h->ring_head = 0;
    h->ring_count = 0;
}

/* The index of the ring's first event with a revision above rev
 * (ring_count when none). */
static unsigned hub_find(const store__hub_t *h, uint64_t rev)
{
    unsigned lo = 0, hi = h->ring_count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (hub_at(h, mid)->pub.rev <= rev)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void store__hub_destroy(store__hub_t *h)
{
    if (!h->ring)
        return;
    hub_ring_clear(h);
    mem_free(h->ring);
    h->ring = NULL;
    pthread_cond_destroy(&h->published_cv);
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
        /* The ring keeps the last ring_cap events. */
        if (h->ring_count == h->ring_cap) {
            store__event_t *old = hub_at(h, 0);
            h->ring_from = old->pub.rev;
            store__event_unref(old);
            h->ring_head = (h->ring_head + 1) % h->ring_cap;
            h->ring_count--;
        }
        h->ring[(h->ring_head + h->ring_count) % h->ring_cap] = ev;
        h->ring_count++;
        if (rev > h->published)
            h->published = rev;

        store_watcher_t *w = h->live;
        while (w) {
            store_watcher_t *next = w->next;
            if (rev > w->floor && watch_matches(w, &ev->pub)) {
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
    pthread_cond_broadcast(&h->published_cv);
    pthread_mutex_unlock(&h->mu);
}

void store__hub_advance(store__hub_t *h, uint64_t rev)
{
    pthread_mutex_lock(&h->mu);
    if (rev > h->published) {
        h->published = rev;
        if (!h->ring_count)
            h->ring_from = rev;
        pthread_cond_broadcast(&h->published_cv);
    }
    pthread_mutex_unlock(&h->mu);
}

void store__hub_expire(store__hub_t *h, uint64_t rev, uint64_t compact_rev)
{
    pthread_mutex_lock(&h->mu);
    while (h->live) {
        store_watcher_t *w = h->live;
        w->error = ERR_EXPIRED;
        hub_unlink(h, w);
        hub_wake(w);
    }
    hub_ring_clear(h);
    if (rev > h->published)
        h->published = rev;
    h->ring_from = h->published;
    if (compact_rev > atomic_load(&h->compact_rev))
        atomic_store(&h->compact_rev, compact_rev);
    pthread_cond_broadcast(&h->published_cv);
    pthread_mutex_unlock(&h->mu);
}

int store__hub_wait(store__hub_t *h, uint64_t rev, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    uint64_t ns = (uint64_t)deadline.tv_nsec + (uint64_t)timeout_ms * 1000000u;
    deadline.tv_sec += (time_t)(ns / 1000000000u);
    deadline.tv_nsec = (long)(ns % 1000000000u);
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    while (h->published < rev && !h->closing) {
        if (pthread_cond_timedwait(&h->published_cv, &h->mu, &deadline) == ETIMEDOUT) {
            rc = h->published < rev ? ERR_TIMEOUT : 0;
            break;
        }
    }
    if (!rc && h->published < rev)
        rc = ERR_CLOSED;
    pthread_mutex_unlock(&h->mu);
    return rc;
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
        w->floor = w->pos;
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
    if (!watch_matches(w, &ev->pub)) {
        store__event_unref(ev);
        return 0;
    }
    if (watch_full(w)) {
        /* A backend hands over no more than the room it was given but for
         * the events of one revision changing many keys. */
        store__event_unref(ev);
        return ERR_WATCH_OVERFLOW;
    }
    watch_push(w, ev);
    return 0;
}

/* One step of catching up, called with the hub lock held; may drop and
 * retake it around a log read. Returns 0 or a final error. */
static int watch_catch_up(store_watcher_t *w, err_t *err)
{
    store__hub_t *h = &w->s->hub;
    if (w->pos >= h->published) {
        w->live = 1;
        w->floor = w->pos;
        w->prev = NULL;
        w->next = h->live;
        if (h->live)
            h->live->prev = w;
        h->live = w;
        return 0;
    }
    if (w->pos >= h->ring_from) {
        /* From the ring, a whole revision at a time, while there is room
         * in the queue. */
        unsigned i = hub_find(h, w->pos);
        while (i < h->ring_count) {
            uint64_t rev = hub_at(h, i)->pub.rev;
            unsigned j = i, want = 0;
            for (; j < h->ring_count && hub_at(h, j)->pub.rev == rev; j++)
                want += (unsigned)watch_matches(w, &hub_at(h, j)->pub);
            if (want > w->cap - w->count) {
                if (w->count)
                    return 0;  /* the consumer drains, then comes back */
                h->overflowed++;
                return err_set(err, ERR_WATCH_OVERFLOW, NULL);
            }
            for (; i < j; i++) {
                store__event_t *ev = hub_at(h, i);
                if (watch_matches(w, &ev->pub)) {
                    store__event_ref(ev);
                    watch_push(w, ev);
                }
            }
            w->pos = rev;
        }
        /* Revisions after the last event held no event for this store. */
        w->pos = h->published;
        return 0;
    }
    /* Older than the ring: from the backend's log, without the lock. Only
     * this consumer touches a watcher that is not live. */
    uint64_t upto = h->ring_from;
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
