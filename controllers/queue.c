/*
 * queue: a deduplicating, rate-limited work queue. See queue.h.
 *
 * Each key known to the queue has one item in a hash table (chained), the
 * item's flags saying where it is: in the FIFO (queued), handed out
 * (processing), marked for another round (dirty), in the delay heap
 * (waiting), or only remembered for its failure count. An item goes when
 * it is none of these.
 */
#include "queue.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "../lib/err.h"
#include "../lib/mem.h"

typedef struct wq_item {
    struct wq_item *next;        /* hash chain */
    uint64_t hash;
    unsigned failures;
    int queued, processing, dirty;
    size_t heap_at;              /* index in the delay heap + 1; 0: not there */
    uint64_t ready_at;           /* ms, monotonic, while waiting */
    char key[];
} wq_item_t;

struct wq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wq_limits_t lim;
    int shut;
    wq_item_t **tab;             /* hash buckets */
    size_t tab_cap, nitems;
    wq_item_t **fifo;            /* ring */
    size_t fifo_cap, fifo_head, fifo_len;
    wq_item_t **heap;            /* min-heap on ready_at */
    size_t heap_len, heap_cap;
    double tokens;               /* overall bucket; negative: reserved ahead */
    uint64_t tokens_at;
    size_t processing;
    uint64_t adds, retries;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;          /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

wq_t *wq_new(const wq_limits_t *limits)
{
    wq_t *q = mem_calloc(1, sizeof *q);
    if (!q)
        return NULL;
    static const wq_limits_t def = WQ_LIMITS_DEFAULT;
    q->lim = limits ? *limits : def;
    q->tab_cap = 64;
    q->tab = mem_calloc(q->tab_cap, sizeof *q->tab);
    if (!q->tab) {
        mem_free(q);
        return NULL;
    }
    q->tokens = q->lim.burst;
    q->tokens_at = now_ms();
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

void wq_free(wq_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->tab_cap; i++)
        for (wq_item_t *it = q->tab[i], *next; it; it = next) {
            next = it->next;
            mem_free(it);
        }
    mem_free(q->tab);
    mem_free(q->fifo);
    mem_free(q->heap);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    mem_free(q);
}

/* ---- items ------------------------------------------------------------------ */

static wq_item_t *item_find(wq_t *q, const char *key, uint64_t h)
{
    for (wq_item_t *it = q->tab[h & (q->tab_cap - 1)]; it; it = it->next)
        if (it->hash == h && !strcmp(it->key, key))
            return it;
    return NULL;
}

static void tab_grow(wq_t *q)
{
    size_t cap = q->tab_cap * 2;
    wq_item_t **tab = mem_calloc(cap, sizeof *tab);
    if (!tab)
        return;                  /* longer chains, still correct */
    for (size_t i = 0; i < q->tab_cap; i++)
        for (wq_item_t *it = q->tab[i], *next; it; it = next) {
            next = it->next;
            it->next = tab[it->hash & (cap - 1)];
            tab[it->hash & (cap - 1)] = it;
        }
    mem_free(q->tab);
    q->tab = tab;
    q->tab_cap = cap;
}

static wq_item_t *item_get(wq_t *q, const char *key)
{
    uint64_t h = hash_str(key);
    wq_item_t *it = item_find(q, key, h);
    if (it)
        return it;
    size_t len = strlen(key);
    if (!(it = mem_calloc(1, sizeof *it + len + 1)))
        return NULL;
    memcpy(it->key, key, len + 1);
    it->hash = h;
    if (q->nitems + 1 > q->tab_cap)
        tab_grow(q);
    it->next = q->tab[h & (q->tab_cap - 1)];
    q->tab[h & (q->tab_cap - 1)] = it;
    q->nitems++;
    return it;
}

/* Drops it when nothing keeps it. */
static void item_release(wq_t *q, wq_item_t *it)
{
    if (it->queued || it->processing || it->dirty || it->heap_at || it->failures)
        return;
    wq_item_t **p = &q->tab[it->hash & (q->tab_cap - 1)];
    while (*p != it)
        p = &(*p)->next;
    *p = it->next;
    q->nitems--;
    mem_free(it);
}

/* ---- the FIFO ---------------------------------------------------------------- */

static int fifo_push(wq_t *q, wq_item_t *it)
{
    if (q->fifo_len == q->fifo_cap) {
        size_t cap = q->fifo_cap ? q->fifo_cap * 2 : 64;
        wq_item_t **f = mem_calloc(cap, sizeof *f);
        if (!f)
            return ERR_NOMEM;
        for (size_t i = 0; i < q->fifo_len; i++)
            f[i] = q->fifo[(q->fifo_head + i) % q->fifo_cap];
        mem_free(q->fifo);
        q->fifo = f;
        q->fifo_cap = cap;
        q->fifo_head = 0;
    }
    q->fifo[(q->fifo_head + q->fifo_len) % q->fifo_cap] = it;
    q->fifo_len++;
    return 0;
}

static wq_item_t *fifo_pop(wq_t *q)
{
    wq_item_t *it = q->fifo[q->fifo_head];
    q->fifo_head = (q->fifo_head + 1) % q->fifo_cap;
    q->fifo_len--;
    return it;
}

/* ---- the delay heap ------------------------------------------------------------- */

static void heap_set(wq_t *q, size_t i, wq_item_t *it)
{
    q->heap[i] = it;
    it->heap_at = i + 1;
}

static void heap_up(wq_t *q, size_t i)
{
    wq_item_t *it = q->heap[i];
    while (i) {
        size_t p = (i - 1) / 2;
        if (q->heap[p]->ready_at <= it->ready_at)
            break;
        heap_set(q, i, q->heap[p]);
        i = p;
    }
    heap_set(q, i, it);
}

static void heap_down(wq_t *q, size_t i)
{
    wq_item_t *it = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->heap_len)
            break;
        if (c + 1 < q->heap_len && q->heap[c + 1]->ready_at < q->heap[c]->ready_at)
            c++;
        if (q->heap[c]->ready_at >= it->ready_at)
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, it);
}

static wq_item_t *heap_pop(wq_t *q)
{
    wq_item_t *top = q->heap[0];
    top->heap_at = 0;
    if (--q->heap_len) {
        q->heap[0] = q->heap[q->heap_len];
        heap_down(q, 0);
    }
    return top;
}

/* Takes it out wherever it is in the heap. */
static void heap_remove(wq_t *q, wq_item_t *it)
{
    size_t i = it->heap_at - 1;
    it->heap_at = 0;
    if (i == --q->heap_len)
        return;
    wq_item_t *moved = q->heap[q->heap_len];
    heap_set(q, i, moved);
    heap_down(q, i);
    heap_up(q, moved->heap_at - 1);
}

/* ---- adding -------------------------------------------------------------------- */

/* Queues it now. Caller holds mu. */
static int enqueue(wq_t *q, wq_item_t *it)
{
    if (it->queued || it->dirty) {
        return 0;
    }
    it->dirty = 1;
    q->adds++;
    if (it->processing)
        return 0;                /* queued again at wq_done */
    if (fifo_push(q, it)) {
        it->dirty = 0;
        return ERR_NOMEM;
    }
    it->queued = 1;
    pthread_cond_signal(&q->cv);
    return 0;
}

/* Moves waiting keys whose time came into the FIFO. Caller holds mu. */
static void promote(wq_t *q, uint64_t now)
{
    while (q->heap_len && q->heap[0]->ready_at <= now) {
        wq_item_t *it = heap_pop(q);
        if (enqueue(q, it)) {
            /* Kept waiting a little longer rather than lost. */
            it->ready_at = now + 10;
            heap_set(q, q->heap_len++, it);
            heap_up(q, q->heap_len - 1);
            return;
        }
    }
}

static int add_after_locked(wq_t *q, wq_item_t *it, uint64_t delay_ms)
{
    if (!delay_ms) {
        /* Queued now: a wait for the key is superseded (the earlier wins),
         * or it would be handed out a second time when the wait ends. */
        int rc = enqueue(q, it);
        if (!rc && it->heap_at)
            heap_remove(q, it);
        return rc;
    }
    uint64_t at = now_ms() + delay_ms;
    if (it->heap_at) {
        if (at < it->ready_at) {
            it->ready_at = at;
            heap_up(q, it->heap_at - 1);
        }
        return 0;
    }
    if (q->heap_len == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
        wq_item_t **h = mem_realloc(q->heap, cap * sizeof *h);
        if (!h)
            return ERR_NOMEM;
        q->heap = h;
        q->heap_cap = cap;
    }
    it->ready_at = at;
    heap_set(q, q->heap_len++, it);
    heap_up(q, q->heap_len - 1);
    pthread_cond_broadcast(&q->cv);  /* a waiter may need to wake sooner */
    return 0;
}

/* ---- the rate limiter ------------------------------------------------------------- */

/* The larger of it's backoff and the bucket's delay; reserve takes the
 * bucket's token (a retry being queued). Caller holds mu. */
static uint64_t when_locked(wq_t *q, const wq_item_t *it, int reserve)
{
    uint64_t backoff = q->lim.base_ms;
    for (unsigned i = 0; i < it->failures && backoff < q->lim.max_ms; i++)
        backoff *= 2;
    if (backoff > q->lim.max_ms)
        backoff = q->lim.max_ms;
    uint64_t now = now_ms();
    double tokens = q->tokens + (double)(now - q->tokens_at) * q->lim.qps / 1000.0;
    if (tokens > q->lim.burst)
        tokens = q->lim.burst;
    tokens -= 1;
    uint64_t bucket = tokens < 0 && q->lim.qps > 0 ? (uint64_t)(-tokens * 1000.0 / q->lim.qps + 0.999) : 0;
    if (reserve) {
        q->tokens = tokens;
        q->tokens_at = now;
    }
    return backoff > bucket ? backoff : bucket;
}

static int add(wq_t *q, const char *key, uint64_t delay_ms, int limited)
{
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (!q->shut) {
        wq_item_t *it = item_get(q, key);
        if (!it) {
            rc = ERR_NOMEM;
        } else {
            if (limited)
                delay_ms = when_locked(q, it, 1);
            rc = add_after_locked(q, it, delay_ms);
            /* A retry that could not be queued is not counted. */
            if (limited && !rc) {
                it->failures++;
                q->retries++;
            }
            item_release(q, it);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int wq_add(wq_t *q, const char *key) { return add(q, key, 0, 0); }
int wq_add_after(wq_t *q, const char *key, uint64_t delay_ms) { return add(q, key, delay_ms, 0); }
int wq_add_rate_limited(wq_t *q, const char *key) { return add(q, key, 0, 1); }

uint64_t wq_when(wq_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    wq_item_t probe = {0};
    const wq_item_t *it = item_find(q, key, hash_str(key));
    uint64_t d = when_locked(q, it ? it : &probe, 0);
    pthread_mutex_unlock(&q->mu);
    return d;
}

void wq_forget(wq_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    wq_item_t *it = item_find(q, key, hash_str(key));
    if (it) {
        it->failures = 0;
        item_release(q, it);
    }
    pthread_mutex_unlock(&q->mu);
}

unsigned wq_failures(wq_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    const wq_item_t *it = item_find(q, key, hash_str(key));
    unsigned n = it ? it->failures : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* ---- taking ---------------------------------------------------------------------- */

int wq_get(wq_t *q, const char **key, int timeout_ms)
{
    pthread_mutex_lock(&q->mu);
    uint64_t deadline = timeout_ms >= 0 ? now_ms() + (uint64_t)timeout_ms : UINT64_MAX;
    int rc = 0;
    for (;;) {
        if (q->shut) {
            rc = ERR_CLOSED;
            break;
        }
        uint64_t now = now_ms();
        promote(q, now);
        if (q->fifo_len) {
            wq_item_t *it = fifo_pop(q);
            it->queued = 0;
            it->dirty = 0;
            it->processing = 1;
            q->processing++;
            *key = it->key;
            break;
        }
        if (now >= deadline) {
            rc = ERR_TIMEOUT;
            break;
        }
        uint64_t until = deadline;
        if (q->heap_len && q->heap[0]->ready_at < until)
            until = q->heap[0]->ready_at;
        if (until == UINT64_MAX) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000};
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void wq_done(wq_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    wq_item_t *it = item_find(q, key, hash_str(key));
    if (it && it->processing) {
        it->processing = 0;
        q->processing--;
        if (it->dirty && !q->shut) {
            if (fifo_push(q, it)) {
                /* Queued again after a short wait rather than lost. */
                it->dirty = 0;
                add_after_locked(q, it, 10);
            } else {
                it->queued = 1;
                pthread_cond_signal(&q->cv);
            }
        } else {
            it->dirty = 0;
        }
        item_release(q, it);
    }
    pthread_mutex_unlock(&q->mu);
}

void wq_shut_down(wq_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->shut = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void wq_get_stats(wq_t *q, wq_stats_t *st)
{
    pthread_mutex_lock(&q->mu);
    st->depth = q->fifo_len;
    st->waiting = q->heap_len;
    st->processing = q->processing;
    st->adds = q->adds;
    st->retries = q->retries;
    pthread_mutex_unlock(&q->mu);
}
