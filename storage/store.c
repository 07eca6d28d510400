/*
 * The backend-independent half of the store: argument checks, continue
 * tokens, the periodic compactor, and dispatch to the backend.
 */
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/b64.h"
#include "../lib/json/jenc.h"
#include "../lib/mem.h"
#include "../lib/log.h"

#define STORE_DEFAULT_COMPACT_MS (5u * 60u * 1000u)
#define STORE_DEFAULT_RING 4096u
#define STORE_RELEASE_MS 250u      /* how often mapped pages are let go */
#define STORE_DEFAULT_QUEUE 1024u

static const store__backend_t *const store_backends[] = {
    &store__lmdb_backend,
    &store__etcd_backend,
    NULL,
};

/* ---- helpers -------------------------------------------------------- */

int store__check_key(const char *key, size_t len, int is_prefix, err_t *err)
{
    if (!key || len == 0 || key[0] != '/')
        return err_set(err, ERR_BAD_REQUEST, "storage key must start with '/'");
    if (len > STORE_MAX_KEY)
        return err_set(err, ERR_BAD_REQUEST,
                       "storage key is %zu bytes, longer than %d", len,
                       STORE_MAX_KEY);
    if (memchr(key, '\0', len))
        return err_set(err, ERR_BAD_REQUEST, "storage key contains NUL");
    /* Walk the segments between slashes. A prefix may end in '/'. */
    size_t i = 1;
    while (i <= len) {
        size_t j = i;
        while (j < len && key[j] != '/')
            j++;
        size_t seg = j - i;
        int last = j >= len;
        if (seg == 0 && !(last && is_prefix))
            return err_set(err, ERR_BAD_REQUEST,
                           "storage key %.*s has an empty segment", (int)len, key);
        if ((seg == 1 && key[i] == '.') ||
            (seg == 2 && key[i] == '.' && key[i + 1] == '.'))
            return err_set(err, ERR_BAD_REQUEST,
                           "storage key %.*s has a '.' or '..' segment", (int)len, key);
        i = j + 1;
    }
    return 0;
}

int store__value_copy(store_value_t *v, const void *data, size_t len,
                      uint64_t mod_rev, uint64_t create_rev)
{
    v->data = mem_alloc(len + 1);
    if (!v->data)
        return ERR_NOMEM;
    memcpy(v->data, data, len);
    v->data[len] = '\0';
    v->len = len;
    v->mod_rev = mod_rev;
    v->create_rev = create_rev;
    return 0;
}

void store_value_free(store_value_t *v)
{
    if (!v)
        return;
    mem_free(v->data);
    v->data = NULL;
    v->len = 0;
}

store__event_t *store__event_new(store_event_type_t type, uint64_t rev,
                                 uint64_t create_rev, uint64_t prev_rev,
                                 const char *key, size_t key_len,
                                 const void *value, size_t value_len,
                                 const void *prev, size_t prev_len)
{
    /* One allocation: header, then key, value and prev, each NUL-ended. */
    size_t n = sizeof(store__event_t) + key_len + value_len + prev_len + 3;
    store__event_t *ev = mem_alloc(n);
    if (!ev)
        return NULL;
    char *p = (char *)(ev + 1);
    ev->pub.type = type;
    ev->pub.rev = rev;
    ev->pub.create_rev = create_rev;
    ev->pub.prev_rev = prev_rev;
    memcpy(p, key, key_len);
    p[key_len] = '\0';
    ev->pub.key = p;
    ev->pub.key_len = key_len;
    p += key_len + 1;
    if (value) {
        memcpy(p, value, value_len);
        p[value_len] = '\0';
        ev->pub.value = p;
        ev->pub.value_len = value_len;
        p += value_len + 1;
    } else {
        ev->pub.value = NULL;
        ev->pub.value_len = 0;
    }
    if (prev) {
        memcpy(p, prev, prev_len);
        p[prev_len] = '\0';
        ev->pub.prev_value = p;
        ev->pub.prev_len = prev_len;
    } else {
        ev->pub.prev_value = NULL;
        ev->pub.prev_len = 0;
    }
    atomic_init(&ev->refs, 1);
    return ev;
}

void store__event_ref(store__event_t *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
}

void store__event_unref(store__event_t *ev)
{
    if (ev && atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1)
        mem_free(ev);
}

void store_event_release(const store_event_t *ev)
{
    /* pub is the first member, so the public pointer is the event's. */
    store__event_unref((store__event_t *)(uintptr_t)ev);
}

/* ---- the compactor ---------------------------------------------------- */

/*
 * Keeps one compaction interval of history, as kube-apiserver does with
 * etcd (storage/etcd3/compact.go): at each compaction tick it compacts to
 * the revision it saw at the previous one.
 *
 * The same thread lets go of mapped store pages every STORE_RELEASE_MS:
 * pages read (or faulted in around a read) since the last release stay
 * cached by the kernel but leave this process's resident set, so the RSS
 * follows the working set of the last moments rather than the file's size.
 */
static void *store_compactor_main(void *arg)
{
    store_t *s = arg;
    uint64_t seen = 0;
    unsigned tick = s->compact_interval_ms < STORE_RELEASE_MS ? s->compact_interval_ms
                                                              : STORE_RELEASE_MS;
    unsigned since_compact = 0;
    pthread_mutex_lock(&s->cmu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)tick * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        int rc = pthread_cond_timedwait(&s->ccv, &s->cmu, &ts);
        if (s->stopping)
            break;
        if (rc != ETIMEDOUT)
            continue;
        pthread_mutex_unlock(&s->cmu);
        since_compact += tick;
        if (s->compact_interval_ms != STORE_COMPACT_NEVER &&
            since_compact >= s->compact_interval_ms) {
            since_compact = 0;
            if (seen > atomic_load(&s->hub.compact_rev)) {
                err_t err;
                err_clear(&err);
                if (store_compact(s, seen, &err))
                    log_error("storage: compaction to %" PRIu64 " failed: %s",
                            seen, err.message);
            }
            seen = store_revision(s);
        }
        store_release_pages(s);
        pthread_mutex_lock(&s->cmu);
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

/* ---- open / close ----------------------------------------------------- */

int store_open(const store_config_t *cfg, store_t **out, err_t *err)
{
    const char *name = cfg->backend && *cfg->backend ? cfg->backend : "lmdb";
    const store__backend_t *be = NULL;
    for (size_t i = 0; store_backends[i]; i++)
        if (!strcmp(store_backends[i]->name, name))
            be = store_backends[i];
    if (!be)
        return err_set(err, ERR_BAD_REQUEST, "unknown storage backend %s", name);

    store_t *s = mem_calloc(1, sizeof *s);
    if (!s)
        return err_set(err, ERR_NOMEM, NULL);
    s->be = be;
    s->compact_interval_ms = cfg->compact_interval_ms ? cfg->compact_interval_ms
                                                      : STORE_DEFAULT_COMPACT_MS;
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);

    uint64_t rev = 0, compact_rev = 0;
    int rc = store__hub_init(&s->hub, cfg->ring_events ? cfg->ring_events : STORE_DEFAULT_RING,
                             cfg->watch_queue ? cfg->watch_queue : STORE_DEFAULT_QUEUE, 0, 0);
    if (rc) {
        err_set(err, rc, NULL);
        goto fail_hub;
    }
    rc = be->open(s, cfg, &rev, &compact_rev, err);
    if (rc)
        goto fail_backend;
    /* Nothing is published before open returns, so set the marks here. */
    s->hub.published = rev;
    s->hub.ring_from = rev;
    atomic_store(&s->hub.compact_rev, compact_rev);
    if (be->start && (rc = be->start(s, err)))
        goto fail_thread;

    if (pthread_create(&s->compactor, NULL, store_compactor_main, s)) {
        rc = err_set(err, ERR_INTERNAL, "cannot start the compactor thread");
        goto fail_thread;
    }
    s->compactor_running = 1;
    *out = s;
    return 0;

    /* Undo in reverse order of the steps above. */
fail_thread:
    be->close(s);
fail_backend:
    store__hub_destroy(&s->hub);
fail_hub:
    pthread_cond_destroy(&s->ccv);
    pthread_mutex_destroy(&s->cmu);
    mem_free(s);
    return rc;
}

void store_shutdown_watchers(store_t *s)
{
    if (s)
        store__hub_shutdown(&s->hub);
}

void store_close(store_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->cmu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->ccv);
    pthread_mutex_unlock(&s->cmu);
    if (s->compactor_running)
        pthread_join(s->compactor, NULL);
    store__hub_shutdown(&s->hub);
    s->be->close(s);
    store__hub_destroy(&s->hub);
    pthread_cond_destroy(&s->ccv);
    pthread_mutex_destroy(&s->cmu);
    mem_free(s);
}

/* ---- reads and writes --------------------------------------------------- */

int store_get(store_t *s, const char *key, store_value_t *out, err_t *err)
{
    size_t len = key ? strlen(key) : 0;
    int rc = store__check_key(key, len, 0, err);
    if (rc)
        return rc;
    return s->be->get(s, key, len, out, err);
}

/* Runs op; *old receives what op->want_old asked for (the current value on
 * a conflict, the deleted value on a delete), caller owns. */
static int store_write(store_t *s, store__op_t *op, uint64_t *rev,
                       store_value_t *old, err_t *err)
{
    int rc = store__check_key(op->key, op->key_len, 0, err);
    if (rc)
        return rc;
    op->want_old = old != NULL;
    rc = s->be->write(s, op);
    if (rc)
        err_set(err, rc, "%s", op->err.code ? op->err.message : err_default_message(rc));
    else if (rev)
        *rev = op->rev;
    if (old && op->old.data)
        *old = op->old;
    else
        store_value_free(&op->old);
    return rc;
}

int store_create(store_t *s, const char *key, const void *val, size_t len,
                 uint64_t *rev, err_t *err)
{
    store__op_t op = {.kind = STORE__CREATE, .key = key,
                      .key_len = key ? strlen(key) : 0, .val = val, .len = len};
    return store_write(s, &op, rev, NULL, err);
}

int store_update(store_t *s, const char *key, const void *val, size_t len,
                 uint64_t expected_rev, uint64_t *rev, store_value_t *current,
                 err_t *err)
{
    store__op_t op = {.kind = STORE__UPDATE, .key = key,
                      .key_len = key ? strlen(key) : 0, .val = val, .len = len,
                      .expected_rev = expected_rev};
    return store_write(s, &op, rev, current, err);
}

int store_delete(store_t *s, const char *key, uint64_t expected_rev,
                 uint64_t *rev, store_value_t *prev, err_t *err)
{
    store__op_t op = {.kind = STORE__DELETE, .key = key,
                      .key_len = key ? strlen(key) : 0,
                      .expected_rev = expected_rev};
    return store_write(s, &op, rev, prev, err);
}

int store_compact(store_t *s, uint64_t rev, err_t *err)
{
    /* The backend compacts in bounded batches, each its own transaction
     * queued among ordinary writes, so writers are never stalled long. */
    for (;;) {
        store__op_t op = {.kind = STORE__COMPACT, .expected_rev = rev};
        int rc = s->be->write(s, &op);
        if (rc)
            return err_set(err, rc, "%s", op.err.message);
        atomic_store(&s->hub.compact_rev, op.rev);
        if (!op.more)
            return 0;
    }
}

uint64_t store_revision(store_t *s)
{
    pthread_mutex_lock(&s->hub.mu);
    uint64_t r = s->hub.published;
    pthread_mutex_unlock(&s->hub.mu);
    return r;
}

void store_release_pages(store_t *s)
{
    if (s->be->release_pages)
        s->be->release_pages(s);
}

/* ---- leases ----------------------------------------------------------------- */

static int store_no_leases(const store_t *s, err_t *err)
{
    return err_set(err, ERR_METHOD_NOT_ALLOWED,
                   "storage: the %s backend has no leases (they need etcd3)", s->be->name);
}

int store_lease_grant(store_t *s, unsigned ttl_s, unsigned timeout_ms, int64_t *id,
                      err_t *err)
{
    if (!s->be->lease_grant)
        return store_no_leases(s, err);
    if (!ttl_s)
        return err_set(err, ERR_BAD_REQUEST, "storage: a lease needs a TTL");
    return s->be->lease_grant(s, ttl_s, timeout_ms, id, err);
}

int store_lease_keepalive(store_t *s, int64_t id, unsigned timeout_ms, unsigned *ttl_s,
                          err_t *err)
{
    if (!s->be->lease_keepalive)
        return store_no_leases(s, err);
    return s->be->lease_keepalive(s, id, timeout_ms, ttl_s, err);
}

int store_lease_revoke(store_t *s, int64_t id, unsigned timeout_ms, err_t *err)
{
    if (!s->be->lease_revoke)
        return store_no_leases(s, err);
    return s->be->lease_revoke(s, id, timeout_ms, err);
}

int store_create_leased(store_t *s, const char *key, const void *val, size_t len,
                        int64_t lease, unsigned timeout_ms, uint64_t *rev,
                        store_value_t *current, err_t *err)
{
    if (!s->be->create_leased)
        return store_no_leases(s, err);
    size_t key_len = key ? strlen(key) : 0;
    int rc = store__check_key(key, key_len, 0, err);
    if (rc)
        return rc;
    return s->be->create_leased(s, key, key_len, val, len, lease, timeout_ms, rev, current,
                                err);
}

void store_get_stats(store_t *s, store_stats_t *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&s->hub.mu);
    st->revision = s->hub.published;
    st->watchers = s->hub.nwatchers;
    st->watchers_overflowed = s->hub.overflowed;
    pthread_mutex_unlock(&s->hub.mu);
    st->compact_rev = atomic_load(&s->hub.compact_rev);
    s->be->stats(s, st);
}

int store_metrics(store_t *s, char **buf, size_t *len)
{
    store_stats_t st;
    store_get_stats(s, &st);
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "# HELP edge_storage_revision The newest revision of the store.\n"
                     "# TYPE edge_storage_revision gauge\n"
                     "edge_storage_revision %" PRIu64 "\n"
                     "# HELP edge_storage_compacted_revision History up to here is compacted.\n"
                     "# TYPE edge_storage_compacted_revision gauge\n"
                     "edge_storage_compacted_revision %" PRIu64 "\n"
                     "# HELP edge_storage_commits_total Write transactions committed (each one "
                     "durable write to disk, holding one or more writes).\n"
                     "# TYPE edge_storage_commits_total counter\n"
                     "edge_storage_commits_total %" PRIu64 "\n"
                     "# HELP edge_storage_writes_total Writes committed.\n"
                     "# TYPE edge_storage_writes_total counter\n"
                     "edge_storage_writes_total %" PRIu64 "\n"
                     "# HELP edge_storage_map_bytes Size of the database map.\n"
                     "# TYPE edge_storage_map_bytes gauge\n"
                     "edge_storage_map_bytes %zu\n"
                     "# HELP edge_storage_watchers Open watches on the store.\n"
                     "# TYPE edge_storage_watchers gauge\n"
                     "edge_storage_watchers %zu\n"
                     "# HELP edge_storage_watchers_overflowed_total Watches ended because they fell "
                     "behind.\n"
                     "# TYPE edge_storage_watchers_overflowed_total counter\n"
                     "edge_storage_watchers_overflowed_total %" PRIu64 "\n",
                     st.revision, st.compact_rev, st.commits, st.writes, st.map_size, st.watchers,
                     st.watchers_overflowed);
    if (n < 0 || (size_t)n >= sizeof text)
        return ERR_INTERNAL;
    char *p = mem_realloc(*buf, *len + (size_t)n + 1);
    if (!p)
        return ERR_NOMEM;
    memcpy(p + *len, text, (size_t)n + 1);
    *buf = p;
    *len += (size_t)n;
    return 0;
}

/* ---- lists and continue tokens ------------------------------------------ */

/*
 * kube-apiserver's continue token (k8s.io/apiserver/pkg/storage/continue.go):
 * base64.RawURLEncoding of {"v":"meta.k8s.io/v1","rv":R,"start":S} where S
 * is the next key with the list prefix cut off. rv < 0 means "latest" (the
 * token a 410 hands out for an inconsistent continue).
 */
static char *store_token_encode(uint64_t rev, const char *start, size_t len)
{
    json_t *j = json_pack("{s:s, s:I, s:s%}", "v", "meta.k8s.io/v1", "rv",
                          (json_int_t)rev, "start", start, len);
    if (!j)
        return NULL;
    size_t n;
    char *txt = jenc_dumps(j, &n);   /* insertion order: v, rv, start */
    json_decref(j);
    if (!txt)
        return NULL;
    char *tok = b64_encode(txt, n, B64_URL_RAW);
    mem_free(txt);
    return tok;
}

static int store_token_decode(const char *tok, const char *prefix,
                              size_t prefix_len, char **key, size_t *key_len,
                              int64_t *rev, err_t *err)
{
    unsigned char *raw = NULL;
    size_t rawn = 0;
    json_t *j = NULL;
    int rc = b64_decode(tok, strlen(tok), B64_URL_RAW, &raw, &rawn);
    if (rc) {
        rc = err_set(err, rc == ERR_NOMEM ? ERR_NOMEM : ERR_BAD_REQUEST,
                     "continue key is not valid: illegal base64 data");
        goto out;
    }
    j = json_loadb((const char *)raw, rawn, JSON_ALLOW_NUL, NULL);
    const char *v = NULL, *start = NULL;
    json_int_t rv = 0;
    size_t slen = 0;
    if (!j || json_unpack(j, "{s:s, s:I, s:s%}", "v", &v, "rv", &rv, "start",
                          &start, &slen) != 0) {
        rc = err_set(err, ERR_BAD_REQUEST, "continue key is not valid: malformed");
        goto out;
    }
    if (strcmp(v, "meta.k8s.io/v1")) {
        rc = err_set(err, ERR_BAD_REQUEST,
                     "continue key is not valid: server does not recognize this encoding");
        goto out;
    }
    if (slen == 0) {
        rc = err_set(err, ERR_BAD_REQUEST,
                     "continue key is not valid: encoded start key empty");
        goto out;
    }
    /* Defend against traversal as path.Clean does: the start may not climb
     * out of the prefix. The last byte may be the NUL that makes the start
     * key sort just after the previous page's last key. */
    size_t plain = start[slen - 1] == '\0' ? slen - 1 : slen;
    char *k = mem_alloc(prefix_len + slen + 1);
    if (!k) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto out;
    }
    memcpy(k, prefix, prefix_len);
    memcpy(k + prefix_len, start, slen);
    k[prefix_len + slen] = '\0';
    if (start[0] == '/' ||
        store__check_key(k, prefix_len + plain, 0, NULL) != 0) {
        mem_free(k);
        rc = err_set(err, ERR_BAD_REQUEST, "continue key is not valid: %s", start);
        goto out;
    }
    *key = k;
    *key_len = prefix_len + slen;
    *rev = rv;
out:
    json_decref(j);
    mem_free(raw);
    return rc;
}

int store_list(store_t *s, const store_list_opts_t *o, store_visit_fn fn,
               void *arg, store_list_result_t *res, err_t *err)
{
    res->rev = 0;
    res->continue_token = NULL;
    res->remaining = -1;
    size_t plen = o->prefix ? strlen(o->prefix) : 0;
    int rc = store__check_key(o->prefix, plen, 1, err);
    if (rc)
        return rc;
    if (o->prefix[plen - 1] != '/')
        return err_set(err, ERR_BAD_REQUEST, "a list prefix must end with '/'");

    char *start = NULL;
    size_t start_len = plen;
    uint64_t rev = o->rev;
    if (o->continue_token && *o->continue_token) {
        if (o->rev)
            return err_set(err, ERR_BAD_REQUEST,
                           "specifying resource version is not allowed when using continue");
        int64_t trev = 0;
        rc = store_token_decode(o->continue_token, o->prefix, plen, &start,
                                &start_len, &trev, err);
        if (rc)
            return rc;
        rev = trev < 0 ? 0 : (uint64_t)trev;
    }

    char *next = NULL;
    size_t next_len = 0;
    rc = s->be->list(s, o->prefix, plen, start ? start : o->prefix, start_len,
                     rev, o->limit, o->count_remaining, fn, arg, &res->rev,
                     &next, &next_len, &res->remaining, err);
    mem_free(start);
    if (rc)
        return rc;
    if (next) {
        res->continue_token = store_token_encode(res->rev, next + plen, next_len - plen);
        mem_free(next);
        if (!res->continue_token)
            return err_set(err, ERR_NOMEM, NULL);
    }
    return 0;
}

void store_list_result_free(store_list_result_t *r)
{
    if (!r)
        return;
    mem_free(r->continue_token);
    r->continue_token = NULL;
}
