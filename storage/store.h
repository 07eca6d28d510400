/*
 * store: a versioned object store with Kubernetes' resourceVersion and watch
 * semantics, behind one interface with two backends (LMDB embedded, etcd v3).
 *
 * What it owns
 *   Keys are kube-apiserver's layout, "/<group>/<resource>/<ns>/<name>"
 *   (no <ns> for cluster-scoped kinds); values are opaque bytes (the
 *   registry stores an object's JSON). One global revision, a 64-bit counter
 *   raised by every successful write and persisted, so revisions are never
 *   reused, also across restarts. A key's mod_rev is the revision of its last
 *   write (an object's metadata.resourceVersion); create_rev the revision
 *   that created it. On etcd the revision is etcd's, and the keys live under
 *   --etcd-prefix (prefix + key).
 *
 * Invariants
 *   - A write is acknowledged (its call returns 0) only once it is durably
 *     committed; concurrent writers share commits (group commit). On etcd,
 *     once etcd acknowledged it and its event was published (waited for,
 *     bounded): a caller that wrote and then reads store_revision() or
 *     watches from it sees its write.
 *   - Revisions only increase. A change of a key takes a revision of its
 *     own, and a failed compare-and-swap consumes none. On LMDB every
 *     revision is exactly one change of one key, so they are consecutive;
 *     on etcd other writers (other replicas, other prefixes, the
 *     compactor's bookkeeping) make them jump, as they do for
 *     kube-apiserver, and a revision written by another client may change
 *     several keys.
 *   - Events are published to watchers in revision order with no gaps
 *     (none of the store's changes is skipped), and only after their
 *     commit. On etcd they come from etcd's watch, so writes of other
 *     replicas reach this store's watchers too.
 *   - History (the event log) is kept for revisions > compact_rev. Reads of a
 *     snapshot and watches from a revision R work for any R >= compact_rev;
 *     older R fails with ERR_EXPIRED. compact_rev only grows.
 *
 * List snapshots and continue tokens
 *   A list reads a snapshot at revision R: the latest unless the caller pins
 *   one. The snapshot is not a held transaction: the backend rebuilds state
 *   at R from the current objects and the event log after R (LMDB: undo the
 *   newer events of the keys in range; etcd: its own MVCC range at R). So a
 *   continue token stays valid exactly as long as its revision's history is
 *   kept (the compaction window, 5 minutes by default, as kube-apiserver
 *   compacts etcd), it pins no pages, and any number may be outstanding.
 *   Tokens use kube-apiserver's encoding (storage/continue.go):
 *   base64url({"v":"meta.k8s.io/v1","rv":R,"start":"<key after prefix>"}).
 *
 * Watch
 *   A watcher sees, in order, every change under its prefix with revision >
 *   its start revision: first replayed from the in-memory ring of recent
 *   events or the backend's event log, then live. Each watcher has a bounded
 *   queue; the writer never waits for a watcher. One that falls behind gets
 *   ERR_WATCH_OVERFLOW after the events it had queued, and is finished.
 *   Over HTTP its stream then just ends, with no ERROR event, as
 *   kube-apiserver's cacher stops a watcher it cannot hand an event to
 *   (cache_watcher.go: add, then forget); the client rewatches from the
 *   last revision it saw (or relists).
 *
 * Thread safety: every function is safe to call from any thread, except
 * that one store_watcher_t is used by one consumer thread at a time, and
 * store_close() must not race with other calls on the same store.
 */
#ifndef EDGE_STORE_H
#define EDGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

/* LMDB keys are at most 511 bytes; the same limit applies on etcd so the
 * two backends accept the same keys. */
#define STORE_MAX_KEY 511

typedef struct store store_t;
typedef struct store_watcher store_watcher_t;

#define STORE_COMPACT_NEVER 0xffffffffu

typedef struct store_config {
    const char *backend;         /* "lmdb" (default) or "etcd3" */
    const char *data_dir;        /* lmdb: directory, created if missing */
    size_t map_size;             /* lmdb: initial map size; 0: 1 GiB. Grows
                                    by itself when full. */
    int no_sync;                 /* lmdb: skip fsync (tests and benchmarks
                                    only: acknowledged writes may be lost on
                                    power failure) */
    const char *etcd_servers;    /* etcd3: comma-separated URLs */
    const char *etcd_prefix;     /* etcd3: key prefix, default "/registry" */
    const char *etcd_cafile;     /* etcd3: CA bundle to verify etcd by */
    const char *etcd_certfile;   /* etcd3: client certificate (PEM) */
    const char *etcd_keyfile;    /* etcd3: its key (PEM) */
    unsigned compact_interval_ms;/* 0: 5 minutes. Every interval, history up
                                    to the revision current one interval
                                    earlier is dropped. STORE_COMPACT_NEVER:
                                    history is kept (store_compact still
                                    works when called). */
    unsigned ring_events;        /* recent events kept in memory for watch
                                    replay; 0: 4096 */
    unsigned watch_queue;        /* default per-watcher queue; 0: 1024 */
} store_config_t;

/* Opens a store. Returns 0 and *out (caller owns; store_close), or
 * ERR_LOCKED when another process holds data_dir, ERR_IO, ERR_NOMEM,
 * ERR_UNAVAILABLE when no etcd server answers, ERR_BAD_REQUEST for a bad
 * config. */
int store_open(const store_config_t *cfg, store_t **out, err_t *err);

/* Stops background work, waits for pending writes, frees the store. Every
 * watcher must have been closed first (store_shutdown_watchers wakes them
 * so their owners can); NULL is a no-op. */
void store_close(store_t *s);

/* Wakes every watcher with ERR_CLOSED, so their owners close them before
 * store_close. Later store_watch calls fail with ERR_CLOSED. */
void store_shutdown_watchers(store_t *s);

/* A value read from the store, copied out; the caller owns data and frees
 * it with store_value_free(). */
typedef struct store_value {
    char *data;
    size_t len;
    uint64_t mod_rev;
    uint64_t create_rev;
} store_value_t;

void store_value_free(store_value_t *v);

/* The latest value of key. ERR_NOT_FOUND, ERR_BAD_REQUEST (bad key). */
int store_get(store_t *s, const char *key, store_value_t *out, err_t *err);

/* Creates key. On success *rev (if non-NULL) is the new revision.
 * ERR_ALREADY_EXISTS when the key exists. */
int store_create(store_t *s, const char *key, const void *val, size_t len,
                 uint64_t *rev, err_t *err);

/* Replaces key's value. expected_rev 0 means unconditional; otherwise the
 * key's mod_rev must equal it (ERR_CONFLICT if not). ERR_NOT_FOUND when
 * absent. On ERR_CONFLICT, *current (if non-NULL) receives the current
 * value, caller owns, so a caller can retry without a second read. */
int store_update(store_t *s, const char *key, const void *val, size_t len,
                 uint64_t expected_rev, uint64_t *rev, store_value_t *current,
                 err_t *err);

/* Deletes key, with the same expected_rev rule as update. On success
 * *prev (if non-NULL) is the deleted value (caller owns) and *rev the
 * revision of the delete; on ERR_CONFLICT *prev is the current value. */
int store_delete(store_t *s, const char *key, uint64_t expected_rev,
                 uint64_t *rev, store_value_t *prev, err_t *err);

/* One key-value pair handed to a list visitor. Borrowed: the pointers are
 * valid only during the callback. */
typedef struct store_kv {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    uint64_t mod_rev;
    uint64_t create_rev;
} store_kv_t;

/* Visitor verdicts: STORE_TAKE counts the item towards the limit,
 * STORE_SKIP does not (a selector filtered it out); a negative ERR_* code
 * aborts the list with that code. */
enum { STORE_SKIP = 0, STORE_TAKE = 1 };
typedef int (*store_visit_fn)(void *arg, const store_kv_t *kv);

typedef struct store_list_opts {
    const char *prefix;          /* ends with '/' */
    const char *continue_token;  /* NULL or "" for the first page */
    uint64_t rev;                /* 0: latest; else the snapshot revision
                                    (Exact). Must be 0 with a token. */
    size_t limit;                /* items taken per page; 0: all */
    int count_remaining;         /* fill remaining (costs a key scan) */
} store_list_opts_t;

typedef struct store_list_result {
    uint64_t rev;                /* the snapshot's revision */
    char *continue_token;        /* caller owns (mem_free); NULL: no more */
    int64_t remaining;           /* items after this page, when asked and
                                    known; else -1 */
} store_list_result_t;

/* Visits, in key order, the pairs under opts->prefix in one snapshot, until
 * limit items were taken. ERR_EXPIRED when the snapshot's revision is
 * compacted (with a token: the token is too old), ERR_TOO_LARGE_RV when it
 * is in the future, ERR_BAD_REQUEST for a malformed token or prefix. */
int store_list(store_t *s, const store_list_opts_t *opts, store_visit_fn fn,
               void *arg, store_list_result_t *res, err_t *err);

void store_list_result_free(store_list_result_t *r);

/* The revision up to which every write is published: on LMDB the latest
 * write's; on etcd the latest one its watch delivered, which may trail
 * etcd's own revision but is never ahead of it, so a snapshot list at it
 * works. */
uint64_t store_revision(store_t *s);

/* Drops history up to rev (clamped to the current revision): afterwards
 * snapshots and watches at revisions < rev fail with ERR_EXPIRED. Done in
 * bounded batches so writers are not stalled (etcd: its own compaction).
 * The periodic compactor calls this; tests and operators may too. */
int store_compact(store_t *s, uint64_t rev, err_t *err);

/* Drops this process's mappings of the database pages it touched. The
 * store does this four times a second by itself, and a long list scan as
 * it goes; call it after a bulk scan too.
 * The pages stay in the kernel's page cache and come back on the next
 * access, so nothing is lost but resident memory this process no longer
 * uses. A no-op for backends without a map. Thread-safe; readers may run
 * concurrently. */
void store_release_pages(store_t *s);

typedef struct store_stats {
    uint64_t revision;
    uint64_t compact_rev;
    size_t map_size;             /* lmdb: current map size in bytes; etcd: 0 */
    uint64_t commits;            /* write transactions committed (etcd: one
                                    per write) */
    uint64_t writes;             /* writes committed (>= commits) */
    size_t watchers;
    uint64_t watchers_overflowed;
} store_stats_t;

void store_get_stats(store_t *s, store_stats_t *st);

/* The stats in Prometheus text format (edge_storage_*), appended to *buf
 * (grown with mem_realloc; *len bytes so far). 0 or ERR_NOMEM. */
int store_metrics(store_t *s, char **buf, size_t *len);

/* ---- leases (etcd3 only) ----------------------------------------------
 *
 * An etcd lease: a key written with it is deleted when the lease expires
 * (its TTL passed with no renewal) or is revoked, and watchers see that
 * deletion. What leader election is built on (controllers/leader.c): one
 * key taken only while absent, held by a lease its holder keeps alive.
 *
 * Each call is one request to etcd and gives up after timeout_ms (0: the
 * backend's 30 s) with ERR_UNAVAILABLE, so a caller with a deadline never
 * waits past it. On LMDB every call is ERR_METHOD_NOT_ALLOWED: one
 * process owns the store and needs no lease. Thread-safe. */

/* Grants a lease of ttl_s seconds (etcd raises a TTL below its minimum,
 * about 2 s): 0 with *id, or ERR_UNAVAILABLE. */
int store_lease_grant(store_t *s, unsigned ttl_s, unsigned timeout_ms, int64_t *id,
                      err_t *err);

/* Renews lease id for its TTL from now: 0 with *ttl_s (if non-NULL) the
 * TTL granted, ERR_NOT_FOUND when the lease expired or was revoked,
 * ERR_UNAVAILABLE. */
int store_lease_keepalive(store_t *s, int64_t id, unsigned timeout_ms, unsigned *ttl_s,
                          err_t *err);

/* Revokes lease id, deleting its keys: 0, ERR_NOT_FOUND when it is gone
 * already, ERR_UNAVAILABLE. */
int store_lease_revoke(store_t *s, int64_t id, unsigned timeout_ms, err_t *err);

/* Creates key with val, bound to lease, only while the key is absent (a
 * transaction on its create_revision being 0). 0 with *rev (if non-NULL)
 * the revision that created it; ERR_ALREADY_EXISTS with *current (if
 * non-NULL; caller owns) the holder's value and revisions; ERR_NOT_FOUND
 * when the lease is gone; ERR_UNAVAILABLE. Unlike store_create it does
 * not wait for the write to reach this store's watchers. */
int store_create_leased(store_t *s, const char *key, const void *val, size_t len,
                        int64_t lease, unsigned timeout_ms, uint64_t *rev,
                        store_value_t *current, err_t *err);

/* ---- watch ---------------------------------------------------------- */

typedef enum { STORE_PUT = 1, STORE_DELETE = 2 } store_event_type_t;

/* One change, shared by reference between the ring and the watchers that
 * deliver it. Read-only once published. A PUT whose create_rev equals rev
 * created the key (ADDED); other PUTs modified it. For a DELETE, value is
 * NULL and prev_value holds the deleted value. */
typedef struct store_event {
    store_event_type_t type;
    uint64_t rev;
    uint64_t create_rev;         /* of the object this event is about */
    uint64_t prev_rev;           /* mod_rev of prev_value; 0 if none */
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    const char *prev_value;
    size_t prev_len;
} store_event_t;

/* An event handed out by store_watcher_next must be released once. */
void store_event_release(const store_event_t *ev);

/* Called, from the publishing thread (LMDB's writer, etcd's watch reader)
 * and under the store's fan-out lock, when
 * a watcher gets events or an error. It must return quickly and must not
 * call back into the store; resuming an HTTP connection is the intended
 * use. */
typedef void (*store_notify_fn)(void *arg);

typedef struct store_watch_opts {
    const char *prefix;          /* a key prefix ending in '/', or a key */
    uint64_t after_rev;          /* deliver revisions > after_rev */
    unsigned queue;              /* 0: the store's default */
    store_notify_fn notify;      /* optional */
    void *notify_arg;
} store_watch_opts_t;

/* Starts a watcher. ERR_EXPIRED when after_rev < compact_rev, ERR_NOMEM.
 * A future after_rev is allowed: the watcher waits for it. */
int store_watch(store_t *s, const store_watch_opts_t *opts,
                store_watcher_t **out, err_t *err);

/* Takes the next event, waiting up to timeout_ms (0: do not wait; <0:
 * forever). Returns 0 with *ev (release it), ERR_TIMEOUT when none came,
 * ERR_EXPIRED when history it needed was compacted under it,
 * ERR_WATCH_OVERFLOW once it fell behind (after its queued events),
 * ERR_CLOSED when the store is closing. Errors other than ERR_TIMEOUT are
 * final. */
int store_watcher_next(store_watcher_t *w, const store_event_t **ev,
                       int timeout_ms, err_t *err);

/* The revision this watcher has seen everything up to (for bookmarks). */
uint64_t store_watcher_progress(store_watcher_t *w);

/* Stops and frees a watcher and its queued events; NULL is a no-op. */
void store_watcher_close(store_watcher_t *w);

#endif
