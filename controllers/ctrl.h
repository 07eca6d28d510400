/*
 * ctrl: the controllers' framework. A controller watches the store in
 * process (the watcher API the authorizer follows, no HTTP round trip),
 * turns events into keys on a work queue (queue.h: deduplicated, never
 * one key on two workers, rate-limited retries) and reconciles each key
 * from current state, level-triggered: the event says only which object
 * to look at.
 *
 * Informer (one thread per controller)
 *   Lists its kind at a revision R and queues every key, then watches its
 *   kind and the kinds it maps (ctrl_watch_t) from R. A watcher that falls
 *   behind (ERR_WATCH_OVERFLOW) is reopened from the last revision it saw;
 *   only when that revision was compacted does it list again. Every
 *   resync period it queues every key again; a reconcile of an unchanged
 *   object writes nothing.
 *
 * Writes
 *   A controller writes through the registry as its own user,
 *   system:edge-controller:<name> in system:masters (admission judges and
 *   the audit log names it), with field manager edge-controller-<name>.
 *   ctrl_write_status writes a status through the /status strategy with
 *   the object's resourceVersion as precondition, and only when it changed.
 *
 * Leader election
 *   Controllers run only while this replica leads (ctrl_elector_t). With
 *   LMDB one process is always leader (ctrl_elector_single); replicas on
 *   one etcd elect one through an etcd lease (ctrl_lease_elector_new,
 *   leader.c).
 *
 * Errors: functions return 0 or a negative ERR_* code with err filled.
 * Thread safety: the manager's functions may be called from any thread;
 * a controller's callbacks run on its informer thread (map) or workers
 * (reconcile), concurrently for different keys.
 */
#ifndef EDGE_CTRL_H
#define EDGE_CTRL_H

#include <jansson.h>
#include <stdint.h>

#include "../authz/authz.h"
#include "../lib/err.h"
#include "../registry/registry.h"
#include "../storage/store.h"

/* A controller's write, for the audit log (borrowed strings). */
typedef struct ctrl_audit_ev {
    const authz_user_t *user;
    const char *verb;            /* update, patch, delete */
    const reg_kind_t *kind;
    const char *ns, *name;       /* ns NULL when cluster-scoped */
    const char *subresource;     /* "status" or "" */
    int code;                    /* the HTTP status it would have had */
} ctrl_audit_ev_t;

/* What controllers work with (borrowed; outlives the manager). */
typedef struct ctrl_env {
    store_t *store;
    reg_t *reg;
    authz_t *authz;
    const char *cluster;         /* --cluster-name */
    const char *data_dir;        /* --data-dir: the controllers' own files
                                  * (the chart cache); NULL: "data" */
    const char *helm_binary;     /* --helm-binary; NULL or "": helm on PATH */
    const char *allowed_chart_repositories; /* URL prefixes, comma-separated;
                                  * NULL or "": any */
    unsigned watch_queue;        /* each informer watcher's queue; 0: 65536 */
    /* Called for each write a controller makes (NULL: none), so the
     * audit log names the controller's user as it names any client. */
    void (*audit)(void *arg, const ctrl_audit_ev_t *ev);
    void *audit_arg;
} ctrl_env_t;

typedef struct ctrl ctrl_t;

/* A reconcile's verdict besides errors: done (the key's failures are
 * forgotten), or look again after the key's backoff without it counting
 * as an error (a cluster still unreachable). A negative ERR_* is an error:
 * retried after the backoff too, and counted. */
enum { CTRL_DONE = 0, CTRL_RETRY = 1 };

/* Another kind a controller watches: map is called for each change of it
 * (obj the new object, old the previous; either NULL for a create or a
 * delete; borrowed) and queues the controller's keys it affects with
 * ctrl_enqueue. Runs on the informer thread. */
typedef struct ctrl_watch {
    const char *group, *resource;
    void (*map)(ctrl_t *c, const json_t *obj, const json_t *old);
} ctrl_watch_t;

typedef struct ctrl_def {
    const char *name;            /* --controllers name and metrics label */
    const char *group, *resource;/* the kind it reconciles */
    unsigned workers;            /* 0: 2 */
    unsigned resync_s;           /* 0: 600 */
    /* The per-key backoff of a retry (CTRL_RETRY or an error): base_ms
     * doubling per failure in a row, at most max_ms (0: the queue's,
     * client-go's 5 ms and 1,000 s). */
    unsigned retry_base_ms, retry_max_ms;
    const ctrl_watch_t *watches; /* ends with {NULL}; NULL: none */
    /* Optional private state: made when the controller starts, freed when
     * it stops (ctrl_state reads it). */
    int (*init)(ctrl_t *c, void **state, err_t *err);
    void (*fini)(void *state);
    /* Reconciles one object (ns NULL for cluster-scoped kinds). Returns
     * CTRL_DONE, CTRL_RETRY or an ERR_*; ERR_NOT_FOUND (the object went)
     * counts as done. */
    int (*reconcile)(ctrl_t *c, const char *ns, const char *name, err_t *err);
    /* Optional: appends the controller's own metrics (Prometheus text,
     * each family with its HELP and TYPE lines) to *buf, grown with
     * mem_realloc, *len its length. ctrl_mgr_metrics calls it under the
     * manager's lock and only while the controller runs (its state
     * exists), concurrently with reconciles. 0 or ERR_NOMEM. */
    int (*metrics)(ctrl_t *c, char **buf, size_t *len);
} ctrl_def_t;

/* Every controller there is, NULL-terminated (controllers.c). */
extern const ctrl_def_t *const ctrl_defs[];

/* ---- inside a controller -------------------------------------------------- */

const ctrl_env_t *ctrl_env(const ctrl_t *c);
const reg_kind_t *ctrl_kind(const ctrl_t *c);
void *ctrl_state(const ctrl_t *c);
const char *ctrl_name(const ctrl_t *c);
/* The options every write of the controller passes (user, manager). */
const reg_write_opts_t *ctrl_write_opts(const ctrl_t *c);
const authz_user_t *ctrl_user(const ctrl_t *c);

/* Queues an object of the controller's kind (ns NULL or "" when
 * cluster-scoped), now or after ms. Never fails visibly: a key lost to
 * memory shortage comes back at the next resync, and is counted. */
void ctrl_enqueue(ctrl_t *c, const char *ns, const char *name);
void ctrl_enqueue_after(ctrl_t *c, const char *ns, const char *name, uint64_t ms);

/* Reports a write the controller made to an object of kind k (NULL: its
 * own kind; rc: the write's result) to the audit hook. ctrl_write_status does it itself; a controller calls it after its
 * own reg_update/reg_patch/reg_delete. */
void ctrl_audit(ctrl_t *c, const reg_kind_t *k, const char *verb, const char *ns,
                const char *name, const char *subresource, int rc);

/* Writes status (borrowed; observedGeneration is set in it from obj's
 * metadata.generation) as obj's status through the /status subresource,
 * obj being the object as read (its resourceVersion the precondition),
 * unless it equals obj's status already. 0 (written or unchanged, *wrote
 * saying which when not NULL), ERR_CONFLICT (obj is stale: retry), or the
 * registry's error. */
int ctrl_write_status(ctrl_t *c, const json_t *obj, json_t *status, int *wrote, err_t *err);

/* 1 when obj's metadata.finalizers holds finalizer. */
int ctrl_has_finalizer(const json_t *obj, const char *finalizer);

/* Removes finalizer from obj (as read: its resourceVersion is the
 * precondition) with an update as the controller; the registry deletes
 * the object once a deletion's last finalizer goes. 0, ERR_CONFLICT
 * (retry), or the registry's error. */
int ctrl_remove_finalizer(ctrl_t *c, const json_t *obj, const char *finalizer, err_t *err);

/* ---- the manager ------------------------------------------------------------- */

/* Campaigns for leadership: run starts it and calls leading(m, 1) when
 * this replica leads and leading(m, 0) when it stops leading (before
 * another can); stop ends the campaign (calling leading(m, 0) first when
 * leading). */
typedef struct ctrl_elector {
    int (*run)(void *arg, void (*leading)(void *m, int on), void *m, err_t *err);
    void (*stop)(void *arg);
    void *arg;
} ctrl_elector_t;

/* One process on a store of its own: always leads. */
extern const ctrl_elector_t ctrl_elector_single;

/* Replicas sharing an etcd: the one holding the election key leads
 * (leader.c says how). The key is a store key, so it lives under
 * --etcd-prefix, bound to an etcd lease of lease_ms that the holder
 * renews every third of it. A leader that has not renewed for
 * renew_deadline_ms calls leading(m, 0) and gives the lease up; as the
 * deadline is shorter than the lease, that is before another replica can
 * take the key. A killed leader's key expires with its lease; stop (a
 * clean shutdown) revokes it, so another replica leads at once. */
typedef struct ctrl_lease_config {
    const char *key;             /* NULL: "/edge-apiserver/leader" */
    const char *identity;        /* the key's value; NULL: hostname_pid_uuid */
    unsigned lease_ms;           /* 0: 15 s (--leader-elect-lease-duration) */
    unsigned renew_deadline_ms;  /* 0: 10 s (--leader-elect-renew-deadline);
                                    less than lease_ms */
} ctrl_lease_config_t;

typedef struct ctrl_lease_elector ctrl_lease_elector_t;

/* A lease elector on s (borrowed; outlives it), cfg copied (NULL: the
 * defaults). Caller owns *out: ctrl_lease_elector_free once the manager
 * that ran it is freed. ERR_BAD_REQUEST when the renew deadline is not
 * less than the lease, ERR_NOMEM. Nothing talks to etcd until run; on a
 * store without leases (LMDB) it never leads. */
int ctrl_lease_elector_new(store_t *s, const ctrl_lease_config_t *cfg,
                           ctrl_lease_elector_t **out, err_t *err);
/* The elector for ctrl_mgr_start (its arg is le, borrowed). */
ctrl_elector_t ctrl_lease_elector(ctrl_lease_elector_t *le);
/* This replica's identity, the key's value while it leads (borrowed). */
const char *ctrl_lease_elector_identity(const ctrl_lease_elector_t *le);
/* Stops campaigning if still running, then frees; NULL is a no-op. */
void ctrl_lease_elector_free(ctrl_lease_elector_t *le);

typedef struct ctrl_mgr ctrl_mgr_t;

/* A manager for the controllers --controllers enables, as
 * kube-controller-manager reads the flag: a comma-separated list where
 * "*" enables every controller, "name" enables one and "-name" disables
 * one (NULL or "": "*"). ERR_BAD_REQUEST names an unknown controller.
 * Nothing runs until ctrl_mgr_start. */
int ctrl_mgr_new(const ctrl_env_t *env, const char *controllers, ctrl_mgr_t **out, err_t *err);
/* Starts campaigning through el (copied); controllers start while it
 * leads. */
int ctrl_mgr_start(ctrl_mgr_t *m, const ctrl_elector_t *el, err_t *err);
/* Stops campaigning and every controller (in-flight reconciles finish),
 * then frees; NULL is a no-op. Call before the store closes. */
void ctrl_mgr_free(ctrl_mgr_t *m);
/* 1 when the named controller is enabled. */
int ctrl_mgr_enabled(const ctrl_mgr_t *m, const char *name);
/* Waits until every running controller's queue is empty with nothing in
 * flight and its informer has seen the store's current revision (a
 * settled world), up to timeout_ms: 0 or ERR_TIMEOUT. For tests and
 * benchmarks. */
int ctrl_mgr_wait_idle(ctrl_mgr_t *m, int timeout_ms);

/* Prometheus text, appended to *buf (grown with mem_realloc): per
 * controller, client-go's workqueue metrics (workqueue_depth,
 * workqueue_adds_total, workqueue_retries_total,
 * workqueue_work_duration_seconds) labelled name, and
 * edge_controller_reconciles_total{controller,result},
 * edge_controller_status_writes_total{controller},
 * edge_controller_leader, edge_controller_leader_transitions_total (times
 * this replica began leading) and client-go's
 * leader_election_master_status{name="edge-apiserver"}; then what each
 * running controller's metrics
 * callback adds. 0 or ERR_NOMEM. */
int ctrl_mgr_metrics(ctrl_mgr_t *m, char **buf, size_t *len);

/* Queues every object of every running controller now, as the periodic
 * resync does. */
void ctrl_mgr_resync(ctrl_mgr_t *m);

/* Totals over every controller, for tests and benchmarks: reconciles
 * (errors among them), status writes, the informers' lists (the first
 * one included) and watches resumed after falling behind. */
typedef struct ctrl_totals {
    uint64_t reconciles, errors, status_writes, lists, resumes;
} ctrl_totals_t;
void ctrl_mgr_totals(ctrl_mgr_t *m, ctrl_totals_t *t);

#endif
