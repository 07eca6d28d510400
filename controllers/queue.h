/*
 * queue: a controller's work queue, client-go's rate-limited workqueue.
 *
 * What it guarantees
 *   - A key is queued at most once however often it is added (dedup);
 *   - a key being processed is never handed out again until wq_done: an
 *     add meanwhile marks it dirty and it is queued again at wq_done, so
 *     no two workers ever hold the same key and no change is lost;
 *   - keys come out in the order they were first queued (FIFO);
 *   - wq_add_after queues a key once its delay passes (an earlier delay
 *     for a key already waiting wins, as client-go's delaying queue; a
 *     wq_add of a waiting key queues it now and ends the wait);
 *   - wq_add_rate_limited delays by the larger of the key's exponential
 *     backoff (5 ms doubling per failure up to 1,000 s) and an overall
 *     token bucket (10 per second, bursts of 100): client-go's
 *     DefaultControllerRateLimiter. wq_forget clears the key's failures.
 *
 * Keys are copied in; a key handed out by wq_get stays valid until its
 * wq_done. Every function is thread-safe. Allocation failures: adds return
 * ERR_NOMEM and the key is not queued (the caller retries or relies on
 * the next resync).
 */
#ifndef EDGE_CTRL_QUEUE_H
#define EDGE_CTRL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct wq wq_t;

/* Rate-limiter settings (client-go's defaults unless a test sets others). */
typedef struct wq_limits {
    uint64_t base_ms, max_ms;    /* per-key backoff: base * 2^failures, capped */
    double qps;                  /* overall bucket refill, per second */
    unsigned burst;              /* and its size */
} wq_limits_t;

#define WQ_LIMITS_DEFAULT {5, 1000000, 10.0, 100}

/* NULL when out of memory. limits NULL: the defaults. */
wq_t *wq_new(const wq_limits_t *limits);
/* Frees the queue; no thread may be inside it. NULL is a no-op. */
void wq_free(wq_t *q);

int wq_add(wq_t *q, const char *key);
int wq_add_after(wq_t *q, const char *key, uint64_t delay_ms);
/* Requeues after the rate limiter's delay (a retry); counts a failure. */
int wq_add_rate_limited(wq_t *q, const char *key);
/* The delay wq_add_rate_limited would use now for key, without adding:
 * for callers that only need the backoff (tests read the sequence). */
uint64_t wq_when(wq_t *q, const char *key);
/* Forgets key's failures (it succeeded). */
void wq_forget(wq_t *q, const char *key);
/* How many times key was retried since its last wq_forget. */
unsigned wq_failures(wq_t *q, const char *key);

/* Takes the next key, waiting up to timeout_ms (<0: until one comes or
 * the queue shuts down). 0 with *key (borrowed until wq_done), ERR_TIMEOUT,
 * or ERR_CLOSED once wq_shut_down was called (queued keys are dropped). */
int wq_get(wq_t *q, const char **key, int timeout_ms);
/* Ends the processing of a key wq_get handed out. */
void wq_done(wq_t *q, const char *key);
/* Wakes every waiter with ERR_CLOSED; later adds are ignored. */
void wq_shut_down(wq_t *q);

typedef struct wq_stats {
    size_t depth;                /* queued, not yet handed out */
    size_t waiting;              /* delayed, not yet queued */
    size_t processing;
    uint64_t adds, retries;      /* totals: keys queued, rate-limited adds */
} wq_stats_t;
void wq_get_stats(wq_t *q, wq_stats_t *st);

#endif
