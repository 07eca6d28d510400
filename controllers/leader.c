/*
 * The lease elector: controllers lead on one replica at a time, through
 * an etcd lease and one key (clientv3/concurrency's election, reduced to
 * a single candidate slot).
 *
 * One thread per elector holds a lease of the lease duration's TTL and
 * keeps it alive every third of it (sooner when the renew deadline is
 * short), whether it leads or not. It campaigns by creating the election
 * key with its identity, bound to the lease, only while the key is absent
 * (store_create_leased). Whoever created it leads until its lease goes:
 * revoked at a clean shutdown, or expired TTL after the last renewal when
 * the leader died or lost etcd. The others watch the key through the
 * store (an event of the store's own etcd watch) and campaign again the
 * moment it is deleted, and every retry period anyway.
 *
 * Why the leader stops in time
 *   renewed_at is the monotonic time a successful grant or keepalive was
 *   SENT, so etcd's expiry of the lease is never earlier than renewed_at
 *   + TTL. The leader calls leading(0) once renewed_at + renew deadline
 *   passes without a renewal, and every request it makes while leading is
 *   bounded by that instant, so no call blocks it past the deadline. The
 *   renew deadline being below the lease duration, its controllers stop
 *   before the key can expire and pass to another replica. It then drops
 *   the lease (revoked when etcd answers) and campaigns again afresh.
 *
 * A create whose answer was lost may have been applied: when the key
 * holds this elector's own identity while it does not lead, the lease is
 * revoked (deleting the key if that lease held it) and a new one granted,
 * so the key is never held by a replica that does not know it leads.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/crypto.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "ctrl.h"

#define LEADER_KEY "/edge-apiserver/leader"
#define LEADER_LEASE_MS 15000u          /* kube-controller-manager's defaults */
#define LEADER_RENEW_DEADLINE_MS 10000u
#define LEADER_RETRY_MAX_MS 2000u       /* its retry period */
#define LEADER_RETRY_MIN_MS 100u
#define LEADER_SLICE_MS 100             /* how often a waiting thread looks at stop */

struct ctrl_lease_elector {
    store_t *store;
    char *key, *identity;
    unsigned lease_ms, renew_deadline_ms;
    unsigned ttl_s;              /* the lease's TTL: lease_ms rounded up */
    unsigned renew_every_ms;     /* a renewal's period */
    unsigned retry_ms;           /* a failed call's retry, a follower's poll */
    pthread_t thread;
    int running;
    atomic_int stop;
    void (*leading_fn)(void *m, int on);
    void *m;
    /* The thread's own. */
    int64_t lease;               /* 0: none */
    uint64_t renewed_at;         /* when the last successful renewal was sent */
    uint64_t next_renew, next_campaign;
    int leading;
    uint64_t leader_rev;         /* the key's create revision while leading */
    store_watcher_t *w;
    char holder[256];            /* the last holder logged */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* How long a call may take: while leading, until the renew deadline;
 * otherwise up to cap. Never 0 (the client's own 30 s). */
static unsigned call_budget(const ctrl_lease_elector_t *le, unsigned cap)
{
    if (!le->leading)
        return cap;
    uint64_t deadline = le->renewed_at + le->renew_deadline_ms, now = mono_ms();
    uint64_t left = deadline > now ? deadline - now : 1;
    return left < cap ? (unsigned)left : cap;
}

/* Forgets the lease, revoking it when etcd answers in time (its key, if
 * it held the election key, goes at once); otherwise it expires. */
static void drop_lease(ctrl_lease_elector_t *le)
{
    if (!le->lease)
        return;
    err_t err;
    err_clear(&err);
    int rc = store_lease_revoke(le->store, le->lease, le->retry_ms, &err);
    if (rc && rc != ERR_NOT_FOUND)
        log_warning("leader election: could not revoke lease %" PRIx64 " (%s); it expires "
                    "within %u ms", (uint64_t)le->lease, err.message, le->lease_ms);
    le->lease = 0;
}

/* Stops leading: the controllers first, then the lease. */
static void step_down(ctrl_lease_elector_t *le, const char *why)
{
    if (le->leading) {
        if (atomic_load(&le->stop))
            log_info("leader election: %s; stopping controllers", why);
        else
            log_warning("leader election: %s; stopping controllers", why);
        le->leading = 0;
        le->leading_fn(le->m, 0);
    }
    drop_lease(le);
    le->next_campaign = 0;
}

static void ensure_lease(ctrl_lease_elector_t *le, uint64_t now)
{
    err_t err;
    err_clear(&err);
    if (!le->lease) {
        int64_t id;
        if (store_lease_grant(le->store, le->ttl_s, le->retry_ms, &id, &err)) {
            log_warning("leader election: cannot grant a lease: %s", err.message);
            le->next_renew = mono_ms() + le->retry_ms;
            return;
        }
        le->lease = id;
        le->renewed_at = now;
        le->next_renew = now + le->renew_every_ms;
        return;
    }
    if (now < le->next_renew)
        return;
    int rc = store_lease_keepalive(le->store, le->lease, call_budget(le, le->renew_every_ms),
                                   NULL, &err);
    if (!rc) {
        le->renewed_at = now;
        le->next_renew = now + le->renew_every_ms;
    } else if (rc == ERR_NOT_FOUND) {
        /* Expired or revoked: its key is gone too. */
        le->lease = 0;
        if (le->leading)
            step_down(le, "the lease expired");
        le->next_renew = 0;
    } else {
        log_warning("leader election: cannot renew lease %" PRIx64 ": %s",
                    (uint64_t)le->lease, err.message);
        le->next_renew = mono_ms() + le->retry_ms;
    }
}

static void campaign(ctrl_lease_elector_t *le, uint64_t now)
{
    if (le->leading || !le->lease || now < le->next_campaign)
        return;
    le->next_campaign = now + le->retry_ms;
    err_t err;
    err_clear(&err);
    uint64_t rev = 0;
    store_value_t cur = {0};
    int rc = store_create_leased(le->store, le->key, le->identity, strlen(le->identity),
                                 le->lease, call_budget(le, le->retry_ms), &rev, &cur, &err);
    if (!rc) {
        if (mono_ms() >= le->renewed_at + le->renew_deadline_ms) {
            /* Won too late to be sure of the lease: give it back. */
            drop_lease(le);
            return;
        }
        le->leading = 1;
        le->leader_rev = rev;
        log_info("leader election: leading as %s", le->identity);
        le->leading_fn(le->m, 1);
        return;
    }
    if (rc == ERR_NOT_FOUND) {
        le->lease = 0;           /* the lease is gone: a new one, then again */
        le->next_campaign = 0;
        return;
    }
    if (rc != ERR_ALREADY_EXISTS) {
        log_warning("leader election: cannot campaign: %s", err.message);
        return;
    }
    if (cur.len == strlen(le->identity) && !memcmp(cur.data, le->identity, cur.len)) {
        /* Ours from a create whose answer was lost, or from a lease
         * already dropped: release it rather than hold it unknowingly. */
        drop_lease(le);
    } else if (cur.len && (strlen(le->holder) != cur.len ||
                           memcmp(le->holder, cur.data, cur.len))) {
        snprintf(le->holder, sizeof le->holder, "%.*s", (int)cur.len, cur.data);
        log_info("leader election: %s leads", le->holder);
    }
    store_value_free(&cur);
}

/* Watches the key from now; without a watcher the thread polls. */
static void open_watch(ctrl_lease_elector_t *le)
{
    store_watch_opts_t wo = {.prefix = le->key, .after_rev = store_revision(le->store),
                             .queue = 64};
    err_t err;
    err_clear(&err);
    if (store_watch(le->store, &wo, &le->w, &err)) {
        le->w = NULL;
        log_warning("leader election: cannot watch %s: %s", le->key, err.message);
    }
}

/* Waits until due (monotonic ms) or until the key is deleted. */
static void wait_until(ctrl_lease_elector_t *le, uint64_t due)
{
    for (uint64_t now = mono_ms(); now < due && !atomic_load(&le->stop); now = mono_ms()) {
        int slice = due - now < LEADER_SLICE_MS ? (int)(due - now) : LEADER_SLICE_MS;
        if (!le->w) {
            open_watch(le);
            if (!le->w) {
                struct timespec ts = {0, (long)slice * 1000000L};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        const store_event_t *ev;
        err_t err;
        err_clear(&err);
        int rc = store_watcher_next(le->w, &ev, slice, &err);
        if (rc == ERR_TIMEOUT)
            continue;
        if (rc) {
            /* Fell behind or lost history: look now, watch again. */
            store_watcher_close(le->w);
            le->w = NULL;
            le->next_campaign = 0;
            return;
        }
        int gone = ev->type == STORE_DELETE, ours = ev->create_rev == le->leader_rev;
        store_event_release(ev);
        if (!gone)
            continue;
        if (le->leading && ours)
            step_down(le, "the election key was deleted");
        le->next_campaign = 0;
        return;
    }
}

static void *elector_main(void *arg)
{
    ctrl_lease_elector_t *le = arg;
    open_watch(le);
    while (!atomic_load(&le->stop)) {
        uint64_t now = mono_ms();
        if (le->leading && now >= le->renewed_at + le->renew_deadline_ms) {
            char why[128];
            snprintf(why, sizeof why, "no lease renewal within the renew deadline (%u ms)",
                     le->renew_deadline_ms);
            step_down(le, why);
        }
        ensure_lease(le, now);
        if (atomic_load(&le->stop))
            break;
        campaign(le, mono_ms());
        uint64_t due = le->next_renew;
        if (le->leading && le->renewed_at + le->renew_deadline_ms < due)
            due = le->renewed_at + le->renew_deadline_ms;
        if (!le->leading && le->lease && le->next_campaign < due)
            due = le->next_campaign;
        wait_until(le, due);
    }
    step_down(le, "shutting down");
    store_watcher_close(le->w);
    le->w = NULL;
    return NULL;
}

static int elector_run(void *arg, void (*leading)(void *m, int on), void *m, err_t *err)
{
    ctrl_lease_elector_t *le = arg;
    if (le->running)
        return err_set(err, ERR_INTERNAL, "leader election: already campaigning");
    le->leading_fn = leading;
    le->m = m;
    atomic_store(&le->stop, 0);
    if (pthread_create(&le->thread, NULL, elector_main, le))
        return err_set(err, ERR_INTERNAL, "leader election: cannot start its thread");
    le->running = 1;
    log_info("leader election: campaigning for %s as %s (lease %u ms, renew deadline %u ms)",
             le->key, le->identity, le->lease_ms, le->renew_deadline_ms);
    return 0;
}

static void elector_stop(void *arg)
{
    ctrl_lease_elector_t *le = arg;
    if (!le->running)
        return;
    atomic_store(&le->stop, 1);
    pthread_join(le->thread, NULL);
    le->running = 0;
}

int ctrl_lease_elector_new(store_t *s, const ctrl_lease_config_t *cfg,
                           ctrl_lease_elector_t **out, err_t *err)
{
    unsigned lease_ms = cfg && cfg->lease_ms ? cfg->lease_ms : LEADER_LEASE_MS;
    unsigned renew_ms = cfg && cfg->renew_deadline_ms ? cfg->renew_deadline_ms
                                                      : LEADER_RENEW_DEADLINE_MS;
    if (renew_ms >= lease_ms)
        return err_set(err, ERR_BAD_REQUEST, "leader election: the renew deadline (%u ms) must "
                       "be less than the lease duration (%u ms)", renew_ms, lease_ms);
    ctrl_lease_elector_t *le = mem_calloc(1, sizeof *le);
    if (!le)
        return err_set(err, ERR_NOMEM, NULL);
    le->store = s;
    le->lease_ms = lease_ms;
    le->renew_deadline_ms = renew_ms;
    le->ttl_s = (lease_ms + 999) / 1000;
    le->renew_every_ms = lease_ms / 3 < renew_ms / 2 ? lease_ms / 3 : renew_ms / 2;
    le->retry_ms = lease_ms / 6 < LEADER_RETRY_MAX_MS ? lease_ms / 6 : LEADER_RETRY_MAX_MS;
    if (le->retry_ms < LEADER_RETRY_MIN_MS)
        le->retry_ms = LEADER_RETRY_MIN_MS;
    atomic_init(&le->stop, 0);
    le->key = mem_strdup(cfg && cfg->key ? cfg->key : LEADER_KEY);
    if (cfg && cfg->identity) {
        le->identity = mem_strdup(cfg->identity);
    } else {
        char host[128] = "", uuid[37], id[256];
        if (gethostname(host, sizeof host - 1))
            snprintf(host, sizeof host, "localhost");
        crypto_uuid4(uuid);
        snprintf(id, sizeof id, "%s_%ld_%s", host, (long)getpid(), uuid);
        le->identity = mem_strdup(id);
    }
    if (!le->key || !le->identity) {
        ctrl_lease_elector_free(le);
        return err_set(err, ERR_NOMEM, NULL);
    }
    *out = le;
    return 0;
}

ctrl_elector_t ctrl_lease_elector(ctrl_lease_elector_t *le)
{
    ctrl_elector_t el = {elector_run, elector_stop, le};
    return el;
}

const char *ctrl_lease_elector_identity(const ctrl_lease_elector_t *le)
{
    return le->identity;
}

void ctrl_lease_elector_free(ctrl_lease_elector_t *le)
{
    if (!le)
        return;
    elector_stop(le);
    mem_free(le->key);
    mem_free(le->identity);
    mem_free(le);
}
