/*
 * store_internal: what the generic store (store.c), the watch fan-out
 * (watch.c) and the backends (store_lmdb.c, store_etcd.c) share.
 * Not for use outside storage/.
 *
 * How a write becomes a watch event
 *   store_create/update/delete validate the key and hand a store__op_t to
 *   the backend's write(). The backend serializes writes (LMDB: one writer
 *   thread, group commit), assigns each successful op the next revision,
 *   records an event (type, key, value, previous value) in the same
 *   transaction, and after the commit returns calls store__hub_publish()
 *   with the batch's events in revision order. The hub appends them to the
 *   ring of recent events and pushes a reference to every live watcher whose
 *   prefix matches; watchers still catching up read the ring or the
 *   backend's log (read_events) themselves and go live once they reach the
 *   published revision. Only then does the writer acknowledge the ops.
 *
 *   On etcd the backend does not publish its own writes: etcd applies them
 *   (a txn per op), and one watch stream on the store's prefix, read by a
 *   background thread, publishes every change under it, this replica's
 *   and other writers' alike. A write is acknowledged once etcd applied it
 *   and the stream published its revision (waited for, bounded), so a
 *   caller that wrote and then reads store_revision() or watches from it
 *   sees its own write in place.
 */
#ifndef EDGE_STORE_INTERNAL_H
#define EDGE_STORE_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "store.h"

/* ---- events --------------------------------------------------------- */

/* A refcounted event: the public part first, data in the same allocation. */
typedef struct store__event {
    store_event_t pub;
    atomic_int refs;
} store__event_t;

/* A new event with one reference, copying key/value/prev; NULL on OOM. */
store__event_t *store__event_new(store_event_type_t type, uint64_t rev,
                                 uint64_t create_rev, uint64_t prev_rev,
                                 const char *key, size_t key_len,
                                 const void *value, size_t value_len,
                                 const void *prev, size_t prev_len);
void store__event_ref(store__event_t *ev);
void store__event_unref(store__event_t *ev);

/* ---- writes --------------------------------------------------------- */

typedef enum {
    STORE__CREATE = 1,
    STORE__UPDATE,
    STORE__DELETE,
    STORE__COMPACT,
} store__op_kind_t;

/* One write request. The caller fills the inputs, the backend the outputs.
 * When want_old is set, a successful DELETE fills old with the value it
 * deleted, and an ERR_CONFLICT fills it with the current value. */
typedef struct store__op {
    store__op_kind_t kind;
    const char *key;
    size_t key_len;
    const void *val;
    size_t len;
    uint64_t expected_rev;       /* 0: unconditional (create: must be absent) */
    int want_old;
    /* outputs */
    int rc;
    uint64_t rev;                /* revision assigned; compact: rev done to */
    int more;                    /* compact: more batches to do */
    store_value_t old;
    err_t err;
    /* backend's queue linkage and completion signal */
    struct store__op *next;
    sem_t done;
} store__op_t;

/* ---- backends ------------------------------------------------------- */

/* Receives one event the caller now owns (one reference). */
typedef int (*store__sink_fn)(void *arg, store__event_t *ev);

typedef struct store__backend {
    const char *name;
    /* Opens the backend state into s->impl; publishes nothing. Sets
     * *rev and *compact_rev to the persisted revision and compaction point. */
    int (*open)(store_t *s, const store_config_t *cfg, uint64_t *rev,
                uint64_t *compact_rev, err_t *err);
    /* Optional: starts what publishes (etcd: the watch stream), once the
     * hub knows open's revision. */
    int (*start)(store_t *s, err_t *err);
    void (*close)(store_t *s);
    int (*get)(store_t *s, const char *key, size_t key_len,
               store_value_t *out, err_t *err);
    /* Performs op durably, publishes its event, returns op->rc. */
    int (*write)(store_t *s, store__op_t *op);
    /* A snapshot list; see store_list. start is the first key to consider
     * (the prefix itself when starting). On success *next_key (owned) is
     * the first key of the next page, NULL when none. */
    int (*list)(store_t *s, const char *prefix, size_t prefix_len,
                const char *start, size_t start_len, uint64_t rev,
                size_t limit, int count_remaining, store_visit_fn fn,
                void *arg, uint64_t *snap_rev, char **next_key,
                size_t *next_len, int64_t *remaining, err_t *err);
    /* Hands the logged events with after < rev <= upto, at most max of
     * them, to sink in order; *scanned_to is the last revision looked at.
     * ERR_EXPIRED when after < the compaction point. */
    int (*read_events)(store_t *s, uint64_t after, uint64_t upto, size_t max,
                       store__sink_fn sink, void *arg, uint64_t *scanned_to,
                       err_t *err);
    void (*stats)(store_t *s, store_stats_t *st);
    void (*release_pages)(store_t *s);  /* optional */
    /* Leases (optional: NULL on a backend without them); see store.h.
     * Keys are checked. */
    int (*lease_grant)(store_t *s, unsigned ttl_s, unsigned timeout_ms, int64_t *id,
                       err_t *err);
    int (*lease_keepalive)(store_t *s, int64_t id, unsigned timeout_ms, unsigned *ttl_s,
                           err_t *err);
    int (*lease_revoke)(store_t *s, int64_t id, unsigned timeout_ms, err_t *err);
    int (*create_leased)(store_t *s, const char *key, size_t key_len, const void *val,
                         size_t len, int64_t lease, unsigned timeout_ms, uint64_t *rev,
                         store_value_t *current, err_t *err);
} store__backend_t;

extern const store__backend_t store__lmdb_backend;
extern const store__backend_t store__etcd_backend;

/* ---- the watch fan-out (watch.c) ------------------------------------ */

typedef struct store__hub {
    pthread_mutex_t mu;
    uint64_t published;          /* last revision published */
    atomic_uint_fast64_t compact_rev;
    pthread_cond_t published_cv; /* published moved, or closing */
    store__event_t **ring;       /* recent events in publish order */
    unsigned ring_cap, ring_head, ring_count;
    uint64_t ring_from;          /* every event after it is in the ring */
    store_watcher_t *live;       /* doubly linked list of live watchers */
    size_t nwatchers;
    uint64_t overflowed;
    unsigned default_queue;
    int closing;
} store__hub_t;

int store__hub_init(store__hub_t *h, unsigned ring_cap, unsigned queue,
                    uint64_t published, uint64_t compact_rev);
/* Wakes every watcher with ERR_CLOSED. */
void store__hub_shutdown(store__hub_t *h);
void store__hub_destroy(store__hub_t *h);
/* Publishes n events in revision order, all above the published revision
 * but for more events of that same revision (one etcd revision may change
 * several keys: all its events come in one call). Revisions may jump
 * (LMDB's do not). Takes over the caller's reference to each event. Never
 * blocks on a watcher. */
void store__hub_publish(store__hub_t *h, store__event_t **evs, size_t n);
/* Says that every event up to rev was published (an etcd progress
 * notification: revisions with no event under the store's prefix). */
void store__hub_advance(store__hub_t *h, uint64_t rev);
/* History between the published revision and rev is lost (an etcd watch
 * resumed at a compacted revision): every live watcher ends with
 * ERR_EXPIRED, the ring is emptied, published becomes rev and compact_rev
 * at least compact_rev. Watchers still catching up read the backend's log,
 * which says whether what they need is still there. */
void store__hub_expire(store__hub_t *h, uint64_t rev, uint64_t compact_rev);
/* Waits until rev is published: 0, ERR_TIMEOUT after timeout_ms, or
 * ERR_CLOSED when the hub shuts down first. */
int store__hub_wait(store__hub_t *h, uint64_t rev, int timeout_ms);

/* ---- the store ------------------------------------------------------ */

struct store {
    const store__backend_t *be;
    void *impl;
    store__hub_t hub;
    /* periodic compaction */
    pthread_t compactor;
    int compactor_running;
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    int stopping;
    unsigned compact_interval_ms;
};

/* Key checks shared with backends: a key is '/'-separated, starts with
 * '/', has no empty, "." or ".." segment, no NUL, and is at most
 * STORE_MAX_KEY bytes. */
int store__check_key(const char *key, size_t len, int is_prefix, err_t *err);

/* Fills v with a copy of data; 0 or ERR_NOMEM. */
int store__value_copy(store_value_t *v, const void *data, size_t len,
                      uint64_t mod_rev, uint64_t create_rev);

#endif
