/*
 * ctrl: the controller manager, informers and workers. See ctrl.h.
 */
#include "ctrl.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../apimachinery/keys.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "queue.h"

#define CTRL_MAX 32
#define CTRL_MAX_SOURCES 8
#define CTRL_WATCH_QUEUE 65536

/* client-go's workqueue_work_duration_seconds buckets: 10ns .. 10s. */
#define CTRL_BUCKETS 10
static const double ctrl_bucket_le[CTRL_BUCKETS] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4,
                                                    1e-3, 1e-2, 1e-1, 1,    10};

enum { RES_SUCCESS, RES_ERROR, RES_REQUEUE, RES_N };
static const char *const ctrl_result_names[RES_N] = {"success", "error", "requeue"};

/* One watched kind: its prefix and watcher, and for a mapped kind its
 * map function (NULL for the controller's own kind). */
typedef struct source {
    const reg_kind_t *kind;
    void (*map)(ctrl_t *c, const json_t *obj, const json_t *old);
    char prefix[128];
    store_watcher_t *w;
} source_t;

struct ctrl {
    const ctrl_def_t *def;
    ctrl_mgr_t *mgr;
    const reg_kind_t *kind;
    char prefix[128];
    authz_user_t user;
    char manager[96];
    reg_write_opts_t wopts;
    void *state;
    /* While running. */
    wq_t *q;
    source_t src[CTRL_MAX_SOURCES];
    size_t nsrc;
    pthread_t informer;
    pthread_t *workers;
    unsigned nworkers;
    atomic_int stop;
    atomic_uint_fast64_t seen_rev;   /* the informer has queued every change up to it */
    pthread_mutex_t wake_mu;         /* the store's notify wakes the informer */
    pthread_cond_t wake_cv;
    int woken;
    /* Metrics (kept across restarts of the controller). */
    pthread_mutex_t stat_mu;
    uint64_t results[RES_N];
    uint64_t buckets[CTRL_BUCKETS];
    double dur_sum;
    uint64_t dur_count;
    atomic_uint_fast64_t status_writes, lost_keys, lists, resumes;
    uint64_t adds_before, retries_before;  /* of queues of earlier runs */
};

struct ctrl_mgr {
    ctrl_env_t env;
    ctrl_t *c[CTRL_MAX];
    size_t n;
    ctrl_elector_t el;
    int started;
    pthread_mutex_t mu;          /* leading and the controllers' running state */
    int leading;
    uint64_t transitions;        /* times it began leading */
};

/* ---- accessors -------------------------------------------------------------------- */

const ctrl_env_t *ctrl_env(const ctrl_t *c) { return &c->mgr->env; }
const reg_kind_t *ctrl_kind(const ctrl_t *c) { return c->kind; }
void *ctrl_state(const ctrl_t *c) { return c->state; }
const char *ctrl_name(const ctrl_t *c) { return c->def->name; }
const reg_write_opts_t *ctrl_write_opts(const ctrl_t *c) { return &c->wopts; }
const authz_user_t *ctrl_user(const ctrl_t *c) { return &c->user; }

/* ---- keys --------------------------------------------------------------------------- */

/* "ns/name" for a namespaced kind, "name" otherwise. */
static void key_make(const ctrl_t *c, const char *ns, const char *name, char *buf, size_t n)
{
    if (c->kind->namespaced)
        snprintf(buf, n, "%s/%s", ns ? ns : "", name);
    else
        snprintf(buf, n, "%s", name);
}

static void enqueue_key(ctrl_t *c, const char *key, uint64_t ms)
{
    wq_t *q = c->q;
    if (!q)
        return;
    if (ms ? wq_add_after(q, key, ms) : wq_add(q, key))
        atomic_fetch_add(&c->lost_keys, 1);
}

void ctrl_enqueue(ctrl_t *c, const char *ns, const char *name)
{
    ctrl_enqueue_after(c, ns, name, 0);
}

void ctrl_enqueue_after(ctrl_t *c, const char *ns, const char *name, uint64_t ms)
{
    char key[STORE_MAX_KEY + 1];
    key_make(c, ns, name, key, sizeof key);
    enqueue_key(c, key, ms);
}

/* The key of a stored object of the controller's kind: its storage key
 * after the kind's prefix, which is "ns/name" or "name" already. */
static void enqueue_store_key(ctrl_t *c, const char *key, size_t len)
{
    size_t plen = strlen(c->prefix);
    if (len <= plen || strncmp(key, c->prefix, plen))
        return;
    char buf[STORE_MAX_KEY + 1];
    size_t n = len - plen < sizeof buf - 1 ? len - plen : sizeof buf - 1;
    memcpy(buf, key + plen, n);
    buf[n] = '\0';
    enqueue_key(c, buf, 0);
}

/* ---- writes ------------------------------------------------------------------------- */

void ctrl_audit(ctrl_t *c, const reg_kind_t *k, const char *verb, const char *ns,
                const char *name, const char *subresource, int rc)
{
    const ctrl_env_t *env = &c->mgr->env;
    if (!env->audit)
        return;
    ctrl_audit_ev_t ev = {.user = &c->user, .verb = verb, .kind = k ? k : c->kind, .ns = ns,
                          .name = name, .subresource = subresource ? subresource : "",
                          .code = rc ? err_http_status(rc) : 200};
    env->audit(env->audit_arg, &ev);
}

int ctrl_write_status(ctrl_t *c, const json_t *obj, json_t *status, int *wrote, err_t *err)
{
    if (wrote)
        *wrote = 0;
    const json_t *md = json_object_get(obj, "metadata");
    json_int_t gen = json_integer_value(json_object_get(md, "generation"));
    if (json_object_set_new(status, "observedGeneration", json_integer(gen)))
        return err_set(err, ERR_NOMEM, "out of memory");
    if (json_equal(json_object_get(obj, "status"), status))
        return 0;
    json_t *body = json_copy((json_t *)obj);
    if (!body || json_object_set(body, "status", status)) {
        json_decref(body);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    json_t *out = NULL;
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    int rc = reg_update(c->mgr->env.reg, c->kind, ns, name, body, 1, &c->wopts, &out, &oc, err);
    ctrl_audit(c, NULL, "update", ns, name, "status", rc);
    json_decref(body);
    json_decref(out);
    mem_free(oc.body);
    if (!rc) {
        atomic_fetch_add(&c->status_writes, 1);
        if (wrote)
            *wrote = 1;
    }
    return rc;
}

int ctrl_has_finalizer(const json_t *obj, const char *finalizer)
{
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), finalizer))
            return 1;
    }
    return 0;
}

int ctrl_remove_finalizer(ctrl_t *c, const json_t *obj, const char *finalizer, err_t *err)
{
    json_t *copy = json_deep_copy(obj);
    if (!copy)
        return err_set(err, ERR_NOMEM, "out of memory");
    json_t *md = json_object_get(copy, "metadata");
    json_t *fins = json_object_get(md, "finalizers");
    for (size_t i = json_array_size(fins); i-- > 0;) {
        const char *f = json_string_value(json_array_get(fins, i));
        if (f && !strcmp(f, finalizer) && json_array_remove(fins, i)) {
            json_decref(copy);
            return err_set(err, ERR_NOMEM, "out of memory");
        }
    }
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    json_t *out = NULL;
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    int rc = reg_update(c->mgr->env.reg, c->kind, ns, name, copy, 0, &c->wopts, &out, &oc, err);
    ctrl_audit(c, NULL, "update", ns, name, "", rc);
    json_decref(copy);
    json_decref(out);
    mem_free(oc.body);
    return rc;
}

/* ---- the informer ---------------------------------------------------------------------- */

static void on_notify(void *arg)
{
    ctrl_t *c = arg;
    pthread_mutex_lock(&c->wake_mu);
    c->woken = 1;
    pthread_cond_signal(&c->wake_cv);
    pthread_mutex_unlock(&c->wake_mu);
}

static int list_visit(void *arg, const store_kv_t *kv)
{
    enqueue_store_key(arg, kv->key, kv->key_len);
    return STORE_SKIP;
}

/* Queues every object of the kind; *rev: the list's revision. */
static int relist(ctrl_t *c, uint64_t *rev, err_t *err)
{
    store_list_opts_t o = {.prefix = c->prefix};
    store_list_result_t res;
    atomic_fetch_add(&c->lists, 1);
    int rc = store_list(c->mgr->env.store, &o, list_visit, c, &res, err);
    if (!rc) {
        *rev = res.rev;
        store_list_result_free(&res);
    }
    return rc;
}

static int source_open(ctrl_t *c, source_t *s, uint64_t after, err_t *err)
{
    unsigned q = c->mgr->env.watch_queue ? c->mgr->env.watch_queue : CTRL_WATCH_QUEUE;
    store_watch_opts_t wo = {.prefix = s->prefix, .after_rev = after,
                             .queue = q, .notify = on_notify, .notify_arg = c};
    return store_watch(c->mgr->env.store, &wo, &s->w, err);
}

static void sources_close(ctrl_t *c)
{
    for (size_t i = 0; i < c->nsrc; i++) {
        store_watcher_close(c->src[i].w);
        c->src[i].w = NULL;
    }
}

/* Lists, then watches every source from the list's revision. */
static int sync_all(ctrl_t *c, err_t *err)
{
    sources_close(c);
    uint64_t rev = 0;
    int rc = relist(c, &rev, err);
    for (size_t i = 0; i < c->nsrc && !rc; i++)
        rc = source_open(c, &c->src[i], rev, err);
    if (!rc)
        atomic_store(&c->seen_rev, rev);
    return rc;
}

static json_t *decode(const char *text, size_t len)
{
    return text ? json_loadb(text, len, 0, NULL) : NULL;
}

static void handle(ctrl_t *c, const source_t *s, const store_event_t *ev)
{
    if (!s->map) {
        enqueue_store_key(c, ev->key, ev->key_len);
        return;
    }
    json_t *obj = ev->type == STORE_PUT ? decode(ev->value, ev->value_len) : NULL;
    json_t *old = decode(ev->prev_value, ev->prev_len);
    if ((ev->type == STORE_PUT && !obj) || (ev->prev_value && !old)) {
        /* Out of memory (or bytes that do not decode): look at everything
         * of the controller's kind again rather than miss what it maps. */
        uint64_t rev;
        err_t e;
        err_clear(&e);
        relist(c, &rev, &e);
    } else {
        s->map(c, obj, old);
    }
    json_decref(obj);
    json_decref(old);
}

/* Drains what the sources hold now. 1 when something came; 0 when
 * nothing; ERR_CLOSED when the store is closing; another error when the
 * sources must be synced again. */
static int drain(ctrl_t *c, err_t *err)
{
    int got = 0;
    for (size_t i = 0; i < c->nsrc; i++) {
        source_t *s = &c->src[i];
        for (int k = 0; k < 256; k++) {
            const store_event_t *ev = NULL;
            int rc = store_watcher_next(s->w, &ev, 0, err);
            if (rc == ERR_TIMEOUT) {
                err_clear(err);
                break;
            }
            if (rc == ERR_WATCH_OVERFLOW) {
                /* Resumed from what it saw; listed again only when that
                 * history is gone. */
                uint64_t from = store_watcher_progress(s->w);
                store_watcher_close(s->w);
                s->w = NULL;
                err_clear(err);
                rc = source_open(c, s, from, err);
                if (rc)
                    return rc;
                atomic_fetch_add(&c->resumes, 1);
                got = 1;
                continue;
            }
            if (rc)
                return rc;
            handle(c, s, ev);
            store_event_release(ev);
            got = 1;
        }
    }
    /* Progress is the least any source has seen. */
    uint64_t least = UINT64_MAX;
    for (size_t i = 0; i < c->nsrc; i++) {
        uint64_t p = store_watcher_progress(c->src[i].w);
        if (p < least)
            least = p;
    }
    if (least != UINT64_MAX && least > atomic_load(&c->seen_rev))
        atomic_store(&c->seen_rev, least);
    return got;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *informer_main(void *arg)
{
    ctrl_t *c = arg;
    unsigned resync_ms = (c->def->resync_s ? c->def->resync_s : 600) * 1000u;
    uint64_t next_resync = mono_ms() + resync_ms;
    int synced = 0;
    while (!atomic_load(&c->stop)) {
        err_t err;
        err_clear(&err);
        if (!synced) {
            if (sync_all(c, &err)) {
                if (err.code == ERR_CLOSED)
                    break;
                log_warning("controller %s: listing: %s", c->def->name, err.message);
                pthread_mutex_lock(&c->wake_mu);
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += 1;
                pthread_cond_timedwait(&c->wake_cv, &c->wake_mu, &ts);
                pthread_mutex_unlock(&c->wake_mu);
                continue;
            }
            synced = 1;
        }
        int rc = drain(c, &err);
        if (rc == ERR_CLOSED)
            break;
        if (rc < 0) {
            /* History it needed was compacted: list again. */
            log_v(1, "controller %s: watch: %s; listing again", c->def->name, err.message);
            synced = 0;
            continue;
        }
        uint64_t now = mono_ms();
        if (now >= next_resync) {
            uint64_t rev;
            err_clear(&err);
            relist(c, &rev, &err);
            next_resync = now + resync_ms;
        }
        if (rc > 0)
            continue;
        pthread_mutex_lock(&c->wake_mu);
        if (!c->woken && !atomic_load(&c->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = next_resync > now ? next_resync - now : 0;
            if (wait > 1000)
                wait = 1000;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&c->wake_cv, &c->wake_mu, &ts);
        }
        c->woken = 0;
        pthread_mutex_unlock(&c->wake_mu);
    }
    sources_close(c);
    return NULL;
}

/* ---- workers -------------------------------------------------------------------------- */

static void observe(ctrl_t *c, int result, double secs)
{
    pthread_mutex_lock(&c->stat_mu);
    c->results[result]++;
    for (int i = 0; i < CTRL_BUCKETS; i++)
        if (secs <= ctrl_bucket_le[i])
            c->buckets[i]++;
    c->dur_sum += secs;
    c->dur_count++;
    pthread_mutex_unlock(&c->stat_mu);
}

static void *worker_main(void *arg)
{
    ctrl_t *c = arg;
    const char *key;
    while (wq_get(c->q, &key, -1) == 0) {
        char ns[STORE_MAX_KEY + 1] = "";
        const char *name = key;
        if (c->kind->namespaced) {
            const char *slash = strchr(key, '/');
            if (slash) {
                size_t n = (size_t)(slash - key) < sizeof ns - 1 ? (size_t)(slash - key) : sizeof ns - 1;
                memcpy(ns, key, n);
                ns[n] = '\0';
                name = slash + 1;
            }
        }
        err_t err;
        err_clear(&err);
        uint64_t t0 = mono_ms();
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = c->def->reconcile(c, c->kind->namespaced ? ns : NULL, name, &err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        (void)t0;
        double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        if (rc == ERR_NOT_FOUND)
            rc = CTRL_DONE;
        if (rc == CTRL_DONE) {
            wq_forget(c->q, key);
            observe(c, RES_SUCCESS, secs);
        } else if (rc == CTRL_RETRY) {
            wq_add_rate_limited(c->q, key);
            observe(c, RES_REQUEUE, secs);
        } else {
            if (rc != ERR_CONFLICT)
                log_v(1, "controller %s: %s: %s", c->def->name, key, err.message);
            wq_add_rate_limited(c->q, key);
            observe(c, RES_ERROR, secs);
        }
        wq_done(c->q, key);
    }
    return NULL;
}

/* ---- running a controller -------------------------------------------------------------- */

/* Frees what a start made: the queue, the worker array, the state. */
static void ctrl_release(ctrl_t *c)
{
    wq_free(c->q);
    c->q = NULL;
    mem_free(c->workers);
    c->workers = NULL;
    if (c->def->fini)
        c->def->fini(c->state);
    c->state = NULL;
}

static int ctrl_start(ctrl_t *c, err_t *err)
{
    if (c->def->init && c->def->init(c, &c->state, err))
        return err->code ? err->code : ERR_INTERNAL;
    wq_limits_t lim = WQ_LIMITS_DEFAULT;
    if (c->def->retry_base_ms)
        lim.base_ms = c->def->retry_base_ms;
    if (c->def->retry_max_ms)
        lim.max_ms = c->def->retry_max_ms;
    c->q = wq_new(&lim);
    unsigned n = c->def->workers ? c->def->workers : 2;
    c->workers = mem_calloc(n, sizeof *c->workers);
    if (!c->q || !c->workers) {
        ctrl_release(c);
        return err_set(err, ERR_NOMEM, "out of memory starting controller %s", c->def->name);
    }
    atomic_store(&c->stop, 0);
    atomic_store(&c->seen_rev, 0);
    c->woken = 0;
    c->nworkers = 0;
    for (unsigned i = 0; i < n; i++)
        if (!pthread_create(&c->workers[i], NULL, worker_main, c))
            c->nworkers++;
    if (!c->nworkers || pthread_create(&c->informer, NULL, informer_main, c)) {
        wq_shut_down(c->q);
        for (unsigned i = 0; i < c->nworkers; i++)
            pthread_join(c->workers[i], NULL);
        ctrl_release(c);
        return err_set(err, ERR_INTERNAL, "cannot start controller %s's threads", c->def->name);
    }
    log_v(1, "controller %s started with %u workers", c->def->name, c->nworkers);
    return 0;
}

static void ctrl_stop(ctrl_t *c)
{
    if (!c->q)
        return;
    atomic_store(&c->stop, 1);
    on_notify(c);
    pthread_join(c->informer, NULL);
    wq_shut_down(c->q);
    for (unsigned i = 0; i < c->nworkers; i++)
        pthread_join(c->workers[i], NULL);
    wq_stats_t st;
    wq_get_stats(c->q, &st);
    c->adds_before += st.adds;
    c->retries_before += st.retries;
    ctrl_release(c);
}

/* ---- the manager ---------------------------------------------------------------------- */

/* Whether --controllers enables name: the last of "name" / "-name" that
 * names it decides; otherwise "*" does. */
static int flag_enables(const char *flag, const char *name, int *known_err, err_t *err)
{
    int star = 0, on = -1;
    const char *p = flag && *flag ? flag : "*";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (*p == ' ')) p++, n--;
        while (n && p[n - 1] == ' ') n--;
        if (n == 1 && *p == '*') {
            star = 1;
        } else if (n) {
            int neg = *p == '-';
            const char *w = p + neg;
            size_t wn = n - (size_t)neg;
            int found = 0;
            for (size_t i = 0; ctrl_defs[i]; i++)
                found |= strlen(ctrl_defs[i]->name) == wn && !strncmp(ctrl_defs[i]->name, w, wn);
            if (!found && !*known_err) {
                *known_err = 1;
                err_set(err, ERR_BAD_REQUEST,
                        "--controllers: \"%.*s\" is not in the list of known controllers", (int)wn, w);
            }
            if (strlen(name) == wn && !strncmp(name, w, wn))
                on = !neg;
        }
        p += n;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
    }
    return on >= 0 ? on : star;
}

int ctrl_mgr_new(const ctrl_env_t *env, const char *controllers, ctrl_mgr_t **out, err_t *err)
{
    *out = NULL;
    ctrl_mgr_t *m = mem_calloc(1, sizeof *m);
    if (!m)
        return err_set(err, ERR_NOMEM, "out of memory");
    m->env = *env;
    pthread_mutex_init(&m->mu, NULL);
    int bad = 0, rc = 0;
    for (size_t i = 0; ctrl_defs[i] && !rc; i++) {
        const ctrl_def_t *d = ctrl_defs[i];
        if (!flag_enables(controllers, d->name, &bad, err) || m->n == CTRL_MAX)
            continue;
        ctrl_t *c = mem_calloc(1, sizeof *c);
        const reg_kind_t *k = reg_find(d->group, REG_VERSION, d->resource);
        if (!c || !k) {
            mem_free(c);
            rc = k ? err_set(err, ERR_NOMEM, "out of memory")
                   : err_set(err, ERR_INTERNAL, "controller %s: no kind %s", d->name, d->resource);
            break;
        }
        c->def = d;
        c->mgr = m;
        c->kind = k;
        keys_prefix(c->prefix, sizeof c->prefix, k->group, k->resource, k->namespaced, NULL);
        authz_user_reset(&c->user);
        snprintf(c->user.name, sizeof c->user.name, "system:edge-controller:%s", d->name);
        authz_user_add_group(&c->user, "system:masters");
        authz_user_add_group(&c->user, "system:authenticated");
        snprintf(c->manager, sizeof c->manager, "edge-controller-%s", d->name);
        c->wopts = (reg_write_opts_t){.field_manager = c->manager, .user = &c->user,
                                      .field_validation = REG_FV_IGNORE};
        c->src[c->nsrc++] = (source_t){.kind = k};
        snprintf(c->src[0].prefix, sizeof c->src[0].prefix, "%s", c->prefix);
        for (const ctrl_watch_t *w = d->watches; w && w->group && c->nsrc < CTRL_MAX_SOURCES; w++) {
            const reg_kind_t *wk = reg_find(w->group, REG_VERSION, w->resource);
            if (!wk)
                continue;
            source_t *s = &c->src[c->nsrc++];
            *s = (source_t){.kind = wk, .map = w->map};
            keys_prefix(s->prefix, sizeof s->prefix, wk->group, wk->resource, wk->namespaced, NULL);
        }
        pthread_mutex_init(&c->wake_mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->wake_cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&c->stat_mu, NULL);
        m->c[m->n++] = c;
    }
    if (bad)
        rc = ERR_BAD_REQUEST;
    if (rc) {
        ctrl_mgr_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int ctrl_mgr_enabled(const ctrl_mgr_t *m, const char *name)
{
    for (size_t i = 0; m && i < m->n; i++)
        if (!strcmp(m->c[i]->def->name, name))
            return 1;
    return 0;
}

static void on_leading(void *arg, int on)
{
    ctrl_mgr_t *m = arg;
    pthread_mutex_lock(&m->mu);
    if (on && !m->leading) {
        m->leading = 1;
        m->transitions++;
        log_info("leading: starting %zu controllers", m->n);
        for (size_t i = 0; i < m->n; i++) {
            err_t err;
            err_clear(&err);
            if (ctrl_start(m->c[i], &err))
                log_error("controller %s: %s", m->c[i]->def->name, err.message);
        }
    } else if (!on && m->leading) {
        log_info("no longer leading: stopping controllers");
        for (size_t i = 0; i < m->n; i++)
            ctrl_stop(m->c[i]);
        m->leading = 0;
    }
    pthread_mutex_unlock(&m->mu);
}

int ctrl_mgr_start(ctrl_mgr_t *m, const ctrl_elector_t *el, err_t *err)
{
    m->el = *el;
    int rc = m->el.run(m->el.arg, on_leading, m, err);
    if (!rc)
        m->started = 1;
    return rc;
}

void ctrl_mgr_free(ctrl_mgr_t *m)
{
    if (!m)
        return;
    if (m->started && m->el.stop)
        m->el.stop(m->el.arg);
    on_leading(m, 0);
    for (size_t i = 0; i < m->n; i++) {
        ctrl_t *c = m->c[i];
        pthread_mutex_destroy(&c->wake_mu);
        pthread_cond_destroy(&c->wake_cv);
        pthread_mutex_destroy(&c->stat_mu);
        mem_free(c);
    }
    pthread_mutex_destroy(&m->mu);
    mem_free(m);
}

int ctrl_mgr_wait_idle(ctrl_mgr_t *m, int timeout_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    int quiet = 0;
    for (;;) {
        uint64_t want = store_revision(m->env.store);
        int idle = 1;
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < m->n && idle; i++) {
            ctrl_t *c = m->c[i];
            if (!c->q)
                continue;
            wq_stats_t st;
            wq_get_stats(c->q, &st);
            int seen = atomic_load(&c->seen_rev) >= want;
            if (!seen)
                on_notify(c);    /* nothing of its kinds came: it learns the
                                    store moved on only when it looks */
            idle = !st.depth && !st.processing && seen;
        }
        pthread_mutex_unlock(&m->mu);
        /* Twice in a row, so a write a reconcile just made is seen too. */
        quiet = idle ? quiet + 1 : 0;
        if (quiet >= 2)
            return 0;
        if (mono_ms() >= deadline)
            return ERR_TIMEOUT;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
}

/* ---- metrics --------------------------------------------------------------------------- */

int ctrl_mgr_metrics(ctrl_mgr_t *m, char **buf, size_t *len)
{
    sbuf_t b = {*buf, *len, *len, 0};
    char line[512];
#define PUT(...) (snprintf(line, sizeof line, __VA_ARGS__), sbuf_puts(&b, line))
    pthread_mutex_lock(&m->mu);
    PUT("# HELP edge_controller_leader 1 when this replica leads and runs its controllers.\n"
        "# TYPE edge_controller_leader gauge\nedge_controller_leader %d\n", m->leading);
    PUT("# HELP edge_controller_leader_transitions_total Times this replica began leading.\n"
        "# TYPE edge_controller_leader_transitions_total counter\n"
        "edge_controller_leader_transitions_total %llu\n", (unsigned long long)m->transitions);
    PUT("# HELP leader_election_master_status Gauge of if the reporting system is master of "
        "the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string "
        "used to identify the lease. Please make sure to group by name.\n"
        "# TYPE leader_election_master_status gauge\n"
        "leader_election_master_status{name=\"edge-apiserver\"} %d\n", m->leading);
    static const char *const help[][3] = {
        {"workqueue_depth", "gauge", "Current depth of workqueue"},
        {"workqueue_adds_total", "counter", "Total number of adds handled by workqueue"},
        {"workqueue_retries_total", "counter", "Total number of retries handled by workqueue"},
    };
    for (size_t h = 0; h < 3; h++) {
        PUT("# HELP %s %s\n# TYPE %s %s\n", help[h][0], help[h][2], help[h][0], help[h][1]);
        for (size_t i = 0; i < m->n; i++) {
            ctrl_t *c = m->c[i];
            wq_stats_t st = {0};
            if (c->q)
                wq_get_stats(c->q, &st);
            uint64_t v = h == 0 ? st.depth : h == 1 ? c->adds_before + st.adds
                                                    : c->retries_before + st.retries;
            PUT("%s{name=\"%s\"} %llu\n", help[h][0], c->def->name, (unsigned long long)v);
        }
    }
    PUT("# HELP workqueue_work_duration_seconds How long in seconds processing an item from "
        "workqueue takes.\n# TYPE workqueue_work_duration_seconds histogram\n");
    for (size_t i = 0; i < m->n; i++) {
        ctrl_t *c = m->c[i];
        pthread_mutex_lock(&c->stat_mu);
        for (int k = 0; k < CTRL_BUCKETS; k++)
            PUT("workqueue_work_duration_seconds_bucket{name=\"%s\",le=\"%g\"} %llu\n",
                c->def->name, ctrl_bucket_le[k], (unsigned long long)c->buckets[k]);
        PUT("workqueue_work_duration_seconds_bucket{name=\"%s\",le=\"+Inf\"} %llu\n"
            "workqueue_work_duration_seconds_sum{name=\"%s\"} %.9f\n"
            "workqueue_work_duration_seconds_count{name=\"%s\"} %llu\n",
            c->def->name, (unsigned long long)c->dur_count, c->def->name, c->dur_sum,
            c->def->name, (unsigned long long)c->dur_count);
        pthread_mutex_unlock(&c->stat_mu);
    }
    PUT("# HELP edge_controller_reconciles_total Reconciles by controller and result.\n"
        "# TYPE edge_controller_reconciles_total counter\n");
    for (size_t i = 0; i < m->n; i++) {
        ctrl_t *c = m->c[i];
        pthread_mutex_lock(&c->stat_mu);
        for (int r = 0; r < RES_N; r++)
            PUT("edge_controller_reconciles_total{controller=\"%s\",result=\"%s\"} %llu\n",
                c->def->name, ctrl_result_names[r], (unsigned long long)c->results[r]);
        pthread_mutex_unlock(&c->stat_mu);
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"edge_controller_status_writes_total",
         "Status writes by controller (an unchanged status is not written).",
         offsetof(ctrl_t, status_writes)},
        {"edge_controller_lists_total",
         "Lists by the controller's informer: one at start, then one per resync, and one "
         "when a watch's history was compacted.", offsetof(ctrl_t, lists)},
        {"edge_controller_watch_resumes_total",
         "Watches reopened from the last revision seen after falling behind.",
         offsetof(ctrl_t, resumes)},
        {"edge_controller_lost_keys_total",
         "Keys that could not be queued (memory ran short); the next resync queues them again.",
         offsetof(ctrl_t, lost_keys)},
    };
    for (size_t k = 0; k < sizeof counters / sizeof counters[0]; k++) {
        PUT("# HELP %s %s\n# TYPE %s counter\n", counters[k].name, counters[k].help,
            counters[k].name);
        for (size_t i = 0; i < m->n; i++) {
            atomic_uint_fast64_t *v = (atomic_uint_fast64_t *)((char *)m->c[i] + counters[k].off);
            PUT("%s{controller=\"%s\"} %llu\n", counters[k].name, m->c[i]->def->name,
                (unsigned long long)atomic_load(v));
        }
    }
    /* The controllers' own, while they run. */
    for (size_t i = 0; i < m->n && !b.oom; i++) {
        ctrl_t *c = m->c[i];
        if (!c->q || !c->def->metrics)
            continue;
        char *p = b.p;
        size_t n = b.len;
        int rc = c->def->metrics(c, &p, &n);
        b = (sbuf_t){p, n, n, rc ? 1 : 0};
    }
    pthread_mutex_unlock(&m->mu);
#undef PUT
    *buf = b.p;
    *len = b.len;
    return b.oom ? ERR_NOMEM : 0;
}

void ctrl_mgr_totals(ctrl_mgr_t *m, ctrl_totals_t *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < m->n; i++) {
        ctrl_t *c = m->c[i];
        pthread_mutex_lock(&c->stat_mu);
        for (int r = 0; r < RES_N; r++)
            t->reconciles += c->results[r];
        t->errors += c->results[RES_ERROR];
        pthread_mutex_unlock(&c->stat_mu);
        t->status_writes += atomic_load(&c->status_writes);
        t->lists += atomic_load(&c->lists);
        t->resumes += atomic_load(&c->resumes);
    }
}

void ctrl_mgr_resync(ctrl_mgr_t *m)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        ctrl_t *c = m->c[i];
        uint64_t rev;
        err_t err;
        err_clear(&err);
        if (c->q)
            relist(c, &rev, &err);
    }
    pthread_mutex_unlock(&m->mu);
}

/* ---- the single-process elector ------------------------------------------------------ */

static int single_run(void *arg, void (*leading)(void *m, int on), void *m, err_t *err)
{
    (void)arg;
    (void)err;
    leading(m, 1);
    return 0;
}

const ctrl_elector_t ctrl_elector_single = {single_run, NULL, NULL};
