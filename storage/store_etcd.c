/*
 * The etcd v3 backend: the store on etcd's JSON gateway (/v3/kv/..., 
 * /v3/watch), through lib/httpc. Keys and values travel in base64,
 * 64-bit numbers as JSON strings, and fields at their default value are
 * left out (a failed txn has no "succeeded", a PUT event no "type").
 *
 * Layout: a store key K lives at etcd key <prefix>K, prefix being
 * --etcd-prefix without a trailing '/' ("/registry/iam.theriseunion.io/
 * users/alice"), as kube-apiserver lays out its keys. The store's
 * revision is etcd's: an object's mod_rev is its etcd mod_revision, a
 * list's the range's header revision.
 *
 * Writes are kube-apiserver's transactions (etcd3/store.go through
 * client/v3/kubernetes): create = put if create_revision == 0; update and
 * delete = put or delete if mod_revision == expected, else read the key
 * back, which tells a conflict (and the current value) from a missing key;
 * an unconditional one compares create_revision > 0 so that a missing key
 * is still "not found".
 *
 * Watch: one etcd watch on the prefix (prev_kv, progress notifications,
 * hasleader) runs in a thread of its own and publishes every event to the
 * hub, in revision order, one message of the stream (whole revisions) at
 * a time; a progress notification publishes the revision it reports. When
 * the stream breaks (etcd restarted, a member lost its leader) the thread
 * opens it again from the revision after the last one published, so no
 * event is lost or repeated. When that revision was compacted meanwhile,
 * the events in between are gone: every live watcher ends with
 * ERR_EXPIRED (its client relists) and the stream goes on from the
 * current revision.
 *
 * History for watchers catching up (read_events) is a second, short watch
 * from the revision they need on the WHOLE key space: every etcd revision
 * is at least one change of some key, so that watch reaches the upper
 * bound asked for even when nothing under the prefix changed, and it is
 * closed there. A compacted start is ERR_EXPIRED.
 *
 * Compaction: /v3/kv/compaction to the revision asked for, then
 * kube-apiserver's "compact_rev_key" records it (a decimal string), which
 * is where open learns the compaction point.
 *
 * Leases: /v3/lease/grant, keepalive (one answer per request through the
 * gateway) and revoke, and a create bound to a lease, each bounded by its
 * caller's timeout; leader election's building blocks.
 */
#include "store_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/b64.h"
#include "../lib/httpc.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"

#define ETCD_DEFAULT_PREFIX "/registry"
#define ETCD_COMPACT_KEY "compact_rev_key"
#define ETCD_WRITE_WAIT_MS 10000  /* how long a write waits for its event */
#define ETCD_LIST_MAX_LIMIT 10000 /* largest range asked for when a page
                                     needs more rounds (a selector) */
#define ETCD_BACKOFF_MIN_MS 50
#define ETCD_BACKOFF_MAX_MS 2000
#define ETCD_STOP_STREAM 1        /* a line callback's "enough" */

typedef struct etcd_store {
    httpc_t *http;
    char *prefix;                /* without a trailing '/' ("" for none) */
    size_t prefix_len;
    pthread_t watcher;
    int watcher_running;
    atomic_int stop;
    int follow_failing;          /* the watch thread's: said so in the log */
    _Atomic uint64_t writes;
} etcd_store_t;

/* ---- JSON helpers ---------------------------------------------------------- */

/* A 64-bit number etcd sends as a string (or a number); 0 when absent. */
static uint64_t ej_u64(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    if (json_is_integer(v) && json_integer_value(v) > 0)
        return (uint64_t)json_integer_value(v);
    return 0;
}

/* The bytes of a base64 member; an absent one is empty. *out is
 * caller-owned and NUL-terminated. */
static int ej_bytes(const json_t *o, const char *k, unsigned char **out, size_t *len)
{
    const json_t *v = json_object_get(o, k);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    int rc = b64_decode(s, strlen(s), B64_STD, out, len);
    return rc == ERR_NOMEM ? ERR_NOMEM : rc ? ERR_IO : 0;
}

/* Appends "name":"<base64 of n bytes>". */
static void sb_b64(sbuf_t *b, const char *name, const void *p, size_t n)
{
    char *enc = b64_encode(p, n, B64_STD);
    if (!enc) {
        b->oom = 1;
        return;
    }
    sbuf_putc(b, '"');
    sbuf_puts(b, name);
    sbuf_puts(b, "\":\"");
    sbuf_puts(b, enc);
    sbuf_putc(b, '"');
    mem_free(enc);
}

/* Appends "name":"<base64 of prefix + key>". */
static void sb_key(sbuf_t *b, const etcd_store_t *e, const char *name, const char *key,
                   size_t len)
{
    char *k = mem_alloc(e->prefix_len + len + 1);
    if (!k) {
        b->oom = 1;
        return;
    }
    memcpy(k, e->prefix, e->prefix_len);
    memcpy(k + e->prefix_len, key, len);
    sb_b64(b, name, k, e->prefix_len + len);
    mem_free(k);
}

/* Appends "name":"<base64 of the end of the range of keys starting with
 * prefix + key>": its last byte below 0xff raised by one, what follows
 * dropped (clientv3's getPrefix); "\0", all keys after, when every byte
 * is 0xff. */
static void sb_key_end(sbuf_t *b, const etcd_store_t *e, const char *name, const char *key,
                       size_t len)
{
    size_t n = e->prefix_len + len;
    unsigned char *k = mem_alloc(n + 1);
    if (!k) {
        b->oom = 1;
        return;
    }
    memcpy(k, e->prefix, e->prefix_len);
    memcpy(k + e->prefix_len, key, len);
    while (n && k[n - 1] == 0xff)
        n--;
    if (n)
        k[n - 1]++;
    else
        k[n++] = 0;
    sb_b64(b, name, k, n);
    mem_free(k);
}

static void sb_u64(sbuf_t *b, const char *name, uint64_t v)
{
    char t[64];
    snprintf(t, sizeof t, "\"%s\":\"%llu\"", name, (unsigned long long)v);
    sbuf_puts(b, t);
}

/* ---- calls ------------------------------------------------------------------ */

/* etcd's error for a failed call, converted. ERR_EXPIRED (compacted) and
 * ERR_TOO_LARGE_RV (a future revision) are returned without touching err:
 * the caller words them as kube-apiserver does. */
static int ec_error(const json_t *j, long status, err_t *err)
{
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(j, "error"));
    if (!msg)
        msg = "unknown error";
    if (strstr(msg, "required revision has been compacted"))
        return ERR_EXPIRED;
    if (strstr(msg, "required revision is a future revision"))
        return ERR_TOO_LARGE_RV;
    if (strstr(msg, "requested lease not found"))
        return err_set(err, ERR_NOT_FOUND, "etcd: lease not found");
    int code = strstr(msg, "database space exceeded") ? ERR_STORAGE_FULL
             : strstr(msg, "request is too large") ? ERR_REQUEST_TOO_LARGE
             : status >= 500 || status == 429 ? ERR_UNAVAILABLE
             : ERR_INTERNAL;
    return err_set(err, code, "etcd: %s", msg);
}

/* POSTs body to path, giving up after timeout_ms (0: the client's); on
 * HTTP 200, *out is the decoded answer (caller owns). See ec_error for
 * the codes. */
static int ec_call_within(etcd_store_t *e, const char *path, const sbuf_t *body,
                          unsigned timeout_ms, json_t **out, err_t *err)
{
    *out = NULL;
    if (body->oom)
        return err_set(err, ERR_NOMEM, NULL);
    httpc_response_t r;
    int rc = httpc_post_within(e->http, path, body->p, body->len, timeout_ms, &r, err);
    if (rc)
        return rc;
    unsigned long failed = mem_failures();
    json_error_t je;
    json_t *j = json_loadb(r.body, r.len, 0, &je);
    if (!j)
        rc = mem_failures() != failed
                 ? err_set(err, ERR_NOMEM, NULL)
                 : err_set(err, ERR_UNAVAILABLE, "etcd: %s answered HTTP %ld, not JSON: %s",
                           path, r.status, je.text);
    else if (r.status != 200)
        rc = ec_error(j, r.status, err);
    else
        *out = j;
    if (rc)
        json_decref(j);
    httpc_response_free(&r);
    return rc;
}

static int ec_call(etcd_store_t *e, const char *path, const sbuf_t *body, json_t **out,
                   err_t *err)
{
    return ec_call_within(e, path, body, 0, out, err);
}

/* A store key from an etcd key under the prefix; *out caller-owned. */
static int ec_store_key(const etcd_store_t *e, const json_t *kv, char **out, size_t *len)
{
    unsigned char *k;
    size_t n;
    int rc = ej_bytes(kv, "key", &k, &n);
    if (rc)
        return rc;
    if (n < e->prefix_len || memcmp(k, e->prefix, e->prefix_len)) {
        mem_free(k);
        return ERR_IO;
    }
    memmove(k, k + e->prefix_len, n - e->prefix_len + 1);
    *out = (char *)k;
    *len = n - e->prefix_len;
    return 0;
}

/* The current revision: a range of one key reads the header. */
static int ec_current(etcd_store_t *e, uint64_t *rev, uint64_t *compact, err_t *err)
{
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_b64(&b, "key", ETCD_COMPACT_KEY, strlen(ETCD_COMPACT_KEY));
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_call(e, "/v3/kv/range", &b, &j, err);
    sbuf_free(&b);
    if (rc)
        return rc == ERR_EXPIRED || rc == ERR_TOO_LARGE_RV ? err_set(err, ERR_UNAVAILABLE, NULL)
                                                           : rc;
    *rev = ej_u64(json_object_get(j, "header"), "revision");
    if (compact) {
        *compact = 0;
        const json_t *kv = json_array_get(json_object_get(j, "kvs"), 0);
        unsigned char *v;
        size_t n;
        if (kv && !ej_bytes(kv, "value", &v, &n)) {
            *compact = strtoull((char *)v, NULL, 10);
            mem_free(v);
        }
    }
    json_decref(j);
    return 0;
}

/* ---- reads -------------------------------------------------------------------- */

static int ec_value(const json_t *kv, store_value_t *out)
{
    unsigned char *v;
    size_t n;
    int rc = ej_bytes(kv, "value", &v, &n);
    if (rc)
        return rc;
    out->data = (char *)v;
    out->len = n;
    out->mod_rev = ej_u64(kv, "mod_revision");
    out->create_rev = ej_u64(kv, "create_revision");
    return 0;
}

static int ec_get(store_t *s, const char *key, size_t key_len, store_value_t *out,
                  err_t *err)
{
    etcd_store_t *e = s->impl;
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_key(&b, e, "key", key, key_len);
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_call(e, "/v3/kv/range", &b, &j, err);
    sbuf_free(&b);
    if (rc)
        return rc < 0 && (rc == ERR_EXPIRED || rc == ERR_TOO_LARGE_RV)
                   ? err_set(err, ERR_INTERNAL, "etcd: unexpected revision error") : rc;
    const json_t *kv = json_array_get(json_object_get(j, "kvs"), 0);
    if (!kv)
        rc = err_set(err, ERR_NOT_FOUND, "key %s not found", key);
    else if ((rc = ec_value(kv, out)))
        rc = err_set(err, rc, rc == ERR_NOMEM ? NULL : "etcd: bad value of %s", key);
    json_decref(j);
    return rc;
}

static int ec_list(store_t *s, const char *prefix, size_t plen, const char *start,
                   size_t slen, uint64_t want_rev, size_t limit, int count_remaining,
                   store_visit_fn fn, void *arg, uint64_t *snap_rev, char **next_key,
                   size_t *next_len, int64_t *remaining, err_t *err)
{
    etcd_store_t *e = s->impl;
    uint64_t rev = want_rev;
    char *cursor = mem_strndup(start, slen);   /* the next key to read from */
    size_t cursor_len = slen;
    char *last = NULL;
    size_t last_len = 0, taken = 0;
    size_t ask = limit;
    int more = 0, rc = 0;
    int64_t after = 0;
    json_t *j = NULL;
    if (!cursor)
        return err_set(err, ERR_NOMEM, NULL);
    for (;;) {
        sbuf_t b = SBUF_INIT;
        sbuf_putc(&b, '{');
        sb_key(&b, e, "key", cursor, cursor_len);
        sbuf_putc(&b, ',');
        sb_key_end(&b, e, "range_end", prefix, plen);
        if (rev) {
            sbuf_putc(&b, ',');
            sb_u64(&b, "revision", rev);
        }
        if (ask) {
            sbuf_putc(&b, ',');
            sb_u64(&b, "limit", ask);
        }
        sbuf_putc(&b, '}');
        rc = ec_call(e, "/v3/kv/range", &b, &j, err);
        sbuf_free(&b);
        if (rc == ERR_EXPIRED) {
            rc = err_set(err, ERR_EXPIRED,
                         "The resourceVersion for the provided list is too old.");
        } else if (rc == ERR_TOO_LARGE_RV) {
            uint64_t cur = 0;
            ec_current(e, &cur, NULL, NULL);
            rc = err_set(err, ERR_TOO_LARGE_RV,
                         "Too large resource version: %llu, current: %llu",
                         (unsigned long long)rev, (unsigned long long)cur);
        }
        if (rc)
            goto out;
        if (!rev)
            rev = ej_u64(json_object_get(j, "header"), "revision");
        const json_t *kvs = json_object_get(j, "kvs");
        size_t n = json_array_size(kvs), visited = 0;
        for (size_t i = 0; i < n; i++) {
            if (limit && taken == limit) {
                more = 1;
                break;
            }
            const json_t *kv = json_array_get(kvs, i);
            char *key;
            size_t key_len;
            store_value_t v;
            rc = ec_store_key(e, kv, &key, &key_len);
            if (!rc && (rc = ec_value(kv, &v)))
                mem_free(key);
            if (rc) {
                rc = err_set(err, rc, rc == ERR_NOMEM ? NULL : "etcd: bad key or value");
                goto out;
            }
            visited++;
            store_kv_t skv = {key, key_len, v.data, v.len, v.mod_rev, v.create_rev};
            int vr = fn(arg, &skv);
            store_value_free(&v);
            mem_free(last);
            last = key;
            last_len = key_len;
            if (vr < 0) {
                rc = err_set(err, vr, NULL);
                goto out;
            }
            if (vr == STORE_TAKE)
                taken++;
        }
        int range_more = json_is_true(json_object_get(j, "more"));
        if (!more && range_more && limit && taken == limit)
            more = 1;
        if (more || !range_more) {
            /* count: every key from the cursor on, at this revision. */
            after = more ? (int64_t)(ej_u64(j, "count") - visited) : 0;
            break;
        }
        /* A selector skipped items: read on after the last key, asking
         * for more each round, as kube-apiserver does. */
        mem_free(cursor);
        cursor = mem_alloc(last_len + 1);
        if (!cursor) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
        memcpy(cursor, last, last_len);
        cursor[last_len] = '\0';
        cursor_len = last_len + 1;
        ask = ask * 2 > ETCD_LIST_MAX_LIMIT ? ETCD_LIST_MAX_LIMIT : ask * 2;
        json_decref(j);
        j = NULL;
    }
    *snap_rev = rev;
    *remaining = count_remaining ? after : -1;
    *next_key = NULL;
    if (more) {
        /* The next page starts just after the last key looked at. */
        char *nk = mem_alloc(last_len + 1);
        if (!nk) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
        memcpy(nk, last, last_len);
        nk[last_len] = '\0';
        *next_key = nk;
        *next_len = last_len + 1;
    }
out:
    json_decref(j);
    mem_free(cursor);
    mem_free(last);
    return rc;
}

/* ---- events --------------------------------------------------------------- */

/* The store event of one etcd event under the prefix; NULL in *out for
 * an event outside it. */
static int ec_event(const etcd_store_t *e, const json_t *jev, store__event_t **out)
{
    *out = NULL;
    const json_t *kv = json_object_get(jev, "kv");
    const json_t *pkv = json_object_get(jev, "prev_kv");
    const char *type = json_string_value(json_object_get(jev, "type"));
    int is_del = type && !strcmp(type, "DELETE");
    char *key = NULL;
    unsigned char *val = NULL, *prev = NULL;
    size_t key_len = 0, val_len = 0, prev_len = 0;
    int rc = ec_store_key(e, kv, &key, &key_len);
    if (rc == ERR_IO)
        return 0;  /* not ours */
    if (!rc && !is_del)
        rc = ej_bytes(kv, "value", &val, &val_len);
    if (!rc && pkv)
        rc = ej_bytes(pkv, "value", &prev, &prev_len);
    if (!rc) {
        uint64_t create = is_del ? ej_u64(pkv, "create_revision") : ej_u64(kv, "create_revision");
        *out = store__event_new(is_del ? STORE_DELETE : STORE_PUT, ej_u64(kv, "mod_revision"),
                                create, pkv ? ej_u64(pkv, "mod_revision") : 0, key, key_len,
                                is_del ? NULL : val, val_len, pkv ? prev : NULL, prev_len);
        if (!*out)
            rc = ERR_NOMEM;
    }
    mem_free(key);
    mem_free(val);
    mem_free(prev);
    return rc;
}

/* A watch request body. whole: every key, else the store's prefix. */
static int ec_watch_body(const etcd_store_t *e, uint64_t from, int whole, sbuf_t *b)
{
    sbuf_puts(b, "{\"create_request\":{");
    if (whole) {
        sbuf_puts(b, "\"key\":\"AA==\",\"range_end\":\"AA==\"");
    } else {
        sb_key(b, e, "key", "/", 1);
        sbuf_putc(b, ',');
        sb_key_end(b, e, "range_end", "/", 1);
        sbuf_puts(b, ",\"progress_notify\":true");
    }
    sbuf_putc(b, ',');
    sb_u64(b, "start_revision", from);
    sbuf_puts(b, ",\"prev_kv\":true}}");
    return b->oom ? ERR_NOMEM : 0;
}

/* One line of a watch stream, decoded: *res is its "result" (borrowed
 * from *j, which the caller frees), or an error. */
static int ec_watch_line(const char *text, size_t len, json_t **j, const json_t **res,
                         err_t *err)
{
    unsigned long failed = mem_failures();
    *j = json_loadb(text, len, 0, NULL);
    if (!*j)
        return mem_failures() != failed ? err_set(err, ERR_NOMEM, NULL)
                                        : err_set(err, ERR_UNAVAILABLE,
                                                  "etcd: unreadable watch response");
    const json_t *jerr = json_object_get(*j, "error");
    if (jerr) {
        const char *m = json_string_value(json_object_get(jerr, "message"));
        return err_set(err, ERR_UNAVAILABLE, "etcd: watch: %s", m ? m : "error");
    }
    *res = json_object_get(*j, "result");
    if (!*res)
        return err_set(err, ERR_UNAVAILABLE, "etcd: watch response without a result");
    return 0;
}

/* read_events' stream state. */
typedef struct ec_history {
    store_t *s;
    uint64_t upto;
    size_t max, n;
    store__sink_fn sink;
    void *arg;
    uint64_t scanned;
    int rc;
    err_t *err;
} ec_history_t;

static int ec_history_line(void *arg, const char *text, size_t len)
{
    ec_history_t *h = arg;
    etcd_store_t *e = h->s->impl;
    json_t *j;
    const json_t *res;
    int rc = ec_watch_line(text, len, &j, &res, h->err);
    if (!rc && ej_u64(res, "compact_revision")) {
        uint64_t c = ej_u64(res, "compact_revision");
        if (c > atomic_load(&h->s->hub.compact_rev))
            atomic_store(&h->s->hub.compact_rev, c);
        rc = err_set(h->err, ERR_EXPIRED,
                     "The resourceVersion for the provided watch is too old.");
    } else if (!rc && json_is_true(json_object_get(res, "canceled"))) {
        rc = err_set(h->err, ERR_UNAVAILABLE, "etcd: watch canceled");
    }
    const json_t *evs = rc ? NULL : json_object_get(res, "events");
    size_t n = json_array_size(evs);
    int done = 0;
    /* Revision by revision: each is handed over whole or not at all. */
    for (size_t i = 0; !rc && !done && i < n;) {
        uint64_t rev = ej_u64(json_object_get(json_array_get(evs, i), "kv"), "mod_revision");
        size_t k = i, ours = 0;
        for (; k < n; k++) {
            const json_t *kv = json_object_get(json_array_get(evs, k), "kv");
            if (ej_u64(kv, "mod_revision") != rev)
                break;
            const char *kk = json_string_value(json_object_get(kv, "key"));
            ours += kk != NULL;  /* counted loosely: an upper bound */
        }
        if (rev > h->upto || (h->n && h->n + ours > h->max)) {
            done = 1;
            break;
        }
        for (; !rc && i < k; i++) {
            store__event_t *ev;
            rc = ec_event(e, json_array_get(evs, i), &ev);
            if (rc)
                rc = err_set(h->err, rc, rc == ERR_NOMEM ? NULL : "etcd: bad watch event");
            else if (ev) {
                h->n++;
                rc = h->sink(h->arg, ev);
            }
        }
        if (!rc) {
            h->scanned = rev;
            done = rev >= h->upto || h->n >= h->max;
        }
    }
    json_decref(j);
    if (rc) {
        h->rc = rc;
        return rc;
    }
    return done ? ETCD_STOP_STREAM : 0;
}

static int ec_read_events(store_t *s, uint64_t after, uint64_t upto, size_t max,
                          store__sink_fn sink, void *arg, uint64_t *scanned_to,
                          err_t *err)
{
    etcd_store_t *e = s->impl;
    if (after < atomic_load(&s->hub.compact_rev))
        return err_set(err, ERR_EXPIRED,
                       "The resourceVersion for the provided watch is too old.");
    if (upto <= after) {
        *scanned_to = after;
        return 0;
    }
    sbuf_t b = SBUF_INIT;
    int rc = ec_watch_body(e, after + 1, 1, &b);
    if (rc) {
        sbuf_free(&b);
        return err_set(err, rc, NULL);
    }
    ec_history_t h = {.s = s, .upto = upto, .max = max ? max : 1, .sink = sink, .arg = arg,
                      .scanned = after, .err = err};
    long status = 0;
    rc = httpc_stream(e->http, "/v3/watch", b.p, b.len, NULL, ec_history_line, &h,
                      &e->stop, &status, err);
    sbuf_free(&b);
    if (rc == ETCD_STOP_STREAM)
        rc = 0;
    else if (!rc)
        rc = h.rc ? h.rc : err_set(err, ERR_UNAVAILABLE, "etcd: watch ended early (HTTP %ld)",
                                   status);
    if (!rc)
        *scanned_to = h.scanned;
    return rc;
}

/* ---- the watch stream ------------------------------------------------------------ */

typedef struct ec_follow {
    store_t *s;
    int created;                 /* etcd accepted the watch */
    uint64_t compacted;          /* the resume revision was compacted to here */
    err_t err;
} ec_follow_t;

static int ec_follow_line(void *arg, const char *text, size_t len)
{
    ec_follow_t *f = arg;
    store_t *s = f->s;
    json_t *j;
    const json_t *res;
    int rc = ec_watch_line(text, len, &j, &res, &f->err);
    if (rc) {
        json_decref(j);
        return rc;
    }
    uint64_t compact = ej_u64(res, "compact_revision");
    const json_t *evs = json_object_get(res, "events");
    size_t n = json_array_size(evs);
    if (compact) {
        f->compacted = compact;
        rc = ETCD_STOP_STREAM;
    } else if (json_is_true(json_object_get(res, "canceled"))) {
        const char *why = json_string_value(json_object_get(res, "cancel_reason"));
        rc = err_set(&f->err, ERR_UNAVAILABLE, "etcd: watch canceled: %s", why ? why : "");
    } else if (n) {
        /* A message holds whole revisions: publish it in one call. */
        store__event_t **batch = mem_alloc(n * sizeof *batch);
        size_t m = 0;
        if (!batch)
            rc = err_set(&f->err, ERR_NOMEM, NULL);
        for (size_t i = 0; !rc && i < n; i++) {
            store__event_t *ev;
            rc = ec_event(s->impl, json_array_get(evs, i), &ev);
            if (rc)
                err_set(&f->err, rc, rc == ERR_NOMEM ? NULL : "etcd: bad watch event");
            else if (ev)
                batch[m++] = ev;
        }
        if (rc) {
            /* Nothing of the message was published: the stream resumes
             * before it. */
            for (size_t i = 0; i < m; i++)
                store__event_unref(batch[i]);
        } else {
            store__hub_publish(&s->hub, batch, m);
            store__hub_advance(&s->hub, ej_u64(json_object_get(res, "header"), "revision"));
        }
        mem_free(batch);
    } else if (json_is_true(json_object_get(res, "created"))) {
        f->created = 1;
        etcd_store_t *e = s->impl;
        if (e->follow_failing)
            log_info("storage: etcd watch resumed after revision %llu",
                     (unsigned long long)store_revision(s));
        e->follow_failing = 0;
    } else {
        /* A progress notification: nothing under the prefix up to here. */
        store__hub_advance(&s->hub, ej_u64(json_object_get(res, "header"), "revision"));
    }
    json_decref(j);
    return rc;
}

/* Sleeps ms unless the store stops first. */
static void ec_pause(etcd_store_t *e, unsigned ms)
{
    for (unsigned slept = 0; slept < ms && !atomic_load(&e->stop); slept += 10) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *ec_follow_main(void *arg)
{
    store_t *s = arg;
    etcd_store_t *e = s->impl;
    unsigned backoff = 0;
    while (!atomic_load(&e->stop)) {
        uint64_t from = store_revision(s) + 1;
        ec_follow_t f = {.s = s};
        err_clear(&f.err);
        sbuf_t b = SBUF_INIT;
        int rc = ec_watch_body(e, from, 0, &b);
        if (!rc)
            rc = httpc_stream(e->http, "/v3/watch", b.p, b.len,
                              "Grpc-Metadata-hasleader: true", ec_follow_line, &f, &e->stop,
                              NULL, &f.err);
        else
            err_set(&f.err, rc, NULL);
        sbuf_free(&b);
        if (atomic_load(&e->stop))
            break;
        if (f.compacted) {
            /* What happened between from and the compaction is gone. */
            uint64_t cur = 0;
            if (ec_current(e, &cur, NULL, &f.err) == 0) {
                log_warning("storage: etcd compacted to %llu before the watch could resume at "
                            "%llu; watchers must relist", (unsigned long long)f.compacted,
                            (unsigned long long)from);
                store__hub_expire(&s->hub, cur, f.compacted);
                backoff = 0;
                continue;
            }
        }
        /* A stream etcd accepted was healthy until now: start over. */
        if (f.created)
            backoff = 0;
        if (!e->follow_failing)
            log_warning("storage: etcd watch after revision %llu ended: %s; resuming",
                        (unsigned long long)store_revision(s),
                        f.err.code ? f.err.message : "the server closed it");
        e->follow_failing = 1;
        backoff = backoff ? backoff * 2 : ETCD_BACKOFF_MIN_MS;
        if (backoff > ETCD_BACKOFF_MAX_MS)
            backoff = ETCD_BACKOFF_MAX_MS;
        ec_pause(e, backoff);
    }
    return NULL;
}

/* ---- writes ---------------------------------------------------------------------- */

/* The compare that guards an update or delete. */
static void sb_guard(sbuf_t *b, const etcd_store_t *e, const store__op_t *op)
{
    sbuf_puts(b, "\"compare\":[{");
    if (op->kind == STORE__CREATE) {
        sbuf_puts(b, "\"target\":\"CREATE\",\"result\":\"EQUAL\",");
        sb_u64(b, "create_revision", 0);
    } else if (op->expected_rev) {
        sbuf_puts(b, "\"target\":\"MOD\",\"result\":\"EQUAL\",");
        sb_u64(b, "mod_revision", op->expected_rev);
    } else {
        /* Unconditional, but a missing key compares as 0. */
        sbuf_puts(b, "\"target\":\"CREATE\",\"result\":\"GREATER\",");
        sb_u64(b, "create_revision", 0);
    }
    sbuf_putc(b, ',');
    sb_key(b, e, "key", op->key, op->key_len);
    sbuf_puts(b, "}]");
}

static int ec_compact(store_t *s, store__op_t *op)
{
    etcd_store_t *e = s->impl;
    uint64_t target = op->expected_rev, cur = store_revision(s);
    uint64_t done = atomic_load(&s->hub.compact_rev);
    if (target > cur)
        target = cur;
    op->more = 0;
    op->rc = 0;
    op->rev = done;
    if (target <= done)
        return 0;
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_u64(&b, "revision", target);
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_call(e, "/v3/kv/compaction", &b, &j, &op->err);
    sbuf_free(&b);
    json_decref(j);
    if (rc == ERR_EXPIRED)
        rc = 0;  /* another replica compacted at least this far */
    if (rc)
        return op->rc = rc == ERR_TOO_LARGE_RV ? err_set(&op->err, ERR_INTERNAL,
                                                         "etcd: compaction past the revision")
                                               : rc;
    /* Recorded as kube-apiserver records it, for the next open. */
    char num[32];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)target);
    sbuf_putc(&b, '{');
    sb_b64(&b, "key", ETCD_COMPACT_KEY, strlen(ETCD_COMPACT_KEY));
    sbuf_putc(&b, ',');
    sb_b64(&b, "value", num, (size_t)n);
    sbuf_putc(&b, '}');
    err_t ignored;
    err_clear(&ignored);
    if (ec_call(e, "/v3/kv/put", &b, &j, &ignored))
        log_warning("storage: compacted etcd to %llu but could not record it: %s",
                    (unsigned long long)target, ignored.message);
    json_decref(j);
    sbuf_free(&b);
    op->rev = target;
    return 0;
}

static int ec_write(store_t *s, store__op_t *op)
{
    etcd_store_t *e = s->impl;
    err_clear(&op->err);
    op->rc = 0;
    if (op->kind == STORE__COMPACT)
        return ec_compact(s, op);
    int is_del = op->kind == STORE__DELETE;
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_guard(&b, e, op);
    sbuf_puts(&b, ",\"success\":[{");
    if (is_del) {
        sbuf_puts(&b, "\"request_delete_range\":{");
        sb_key(&b, e, "key", op->key, op->key_len);
        sbuf_puts(&b, ",\"prev_kv\":true}}]");
    } else {
        sbuf_puts(&b, "\"request_put\":{");
        sb_key(&b, e, "key", op->key, op->key_len);
        sbuf_putc(&b, ',');
        sb_b64(&b, "value", op->val, op->len);
        sbuf_puts(&b, "}}]");
    }
    if (op->kind != STORE__CREATE) {
        sbuf_puts(&b, ",\"failure\":[{\"request_range\":{");
        sb_key(&b, e, "key", op->key, op->key_len);
        sbuf_puts(&b, "}}]");
    }
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_call(e, "/v3/kv/txn", &b, &j, &op->err);
    sbuf_free(&b);
    if (rc == ERR_EXPIRED || rc == ERR_TOO_LARGE_RV)
        rc = err_set(&op->err, ERR_INTERNAL, "etcd: unexpected revision error");
    if (rc)
        return op->rc = rc;

    const json_t *r0 = json_array_get(json_object_get(j, "responses"), 0);
    if (json_is_true(json_object_get(j, "succeeded"))) {
        uint64_t rev = ej_u64(json_object_get(j, "header"), "revision");
        if (is_del && op->want_old) {
            const json_t *pkv = json_array_get(
                json_object_get(json_object_get(r0, "response_delete_range"), "prev_kvs"), 0);
            if (pkv && ec_value(pkv, &op->old))
                rc = err_set(&op->err, ERR_NOMEM, NULL);
        }
        json_decref(j);
        atomic_fetch_add(&e->writes, 1);
        /* Applied. Its event comes back through the watch stream; wait for
         * it, so that what the caller does next (read the revision, watch
         * from it) sees the write. */
        int wrc = store__hub_wait(&s->hub, rev, ETCD_WRITE_WAIT_MS);
        if (wrc == ERR_TIMEOUT)
            log_warning("storage: revision %llu written to etcd but not yet seen on its "
                        "watch", (unsigned long long)rev);
        op->rev = rev;
        return op->rc = rc;
    }
    const json_t *kv = json_array_get(
        json_object_get(json_object_get(r0, "response_range"), "kvs"), 0);
    if (op->kind == STORE__CREATE) {
        rc = err_set(&op->err, ERR_ALREADY_EXISTS, "key %.*s already exists",
                     (int)op->key_len, op->key);
    } else if (!kv) {
        rc = err_set(&op->err, ERR_NOT_FOUND, "key %.*s not found", (int)op->key_len, op->key);
    } else {
        uint64_t mod = ej_u64(kv, "mod_revision");
        rc = err_set(&op->err, ERR_CONFLICT, "key %.*s is at revision %llu, not %llu",
                     (int)op->key_len, op->key, (unsigned long long)mod,
                     (unsigned long long)op->expected_rev);
        if (op->want_old && ec_value(kv, &op->old))
            rc = ERR_NOMEM;
    }
    json_decref(j);
    return op->rc = rc;
}

/* ---- leases ------------------------------------------------------------------------ */

/* A lease ID: a signed 64-bit number etcd sends as a string. */
static int64_t ej_i64(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void sb_i64(sbuf_t *b, const char *name, int64_t v)
{
    char t[64];
    snprintf(t, sizeof t, "\"%s\":\"%lld\"", name, (long long)v);
    sbuf_puts(b, t);
}

/* A lease call's revision errors cannot happen; anything else passes. */
static int ec_lease_rc(int rc, err_t *err)
{
    return rc == ERR_EXPIRED || rc == ERR_TOO_LARGE_RV
               ? err_set(err, ERR_INTERNAL, "etcd: unexpected revision error") : rc;
}

static int ec_lease_grant(store_t *s, unsigned ttl_s, unsigned timeout_ms, int64_t *id,
                          err_t *err)
{
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_u64(&b, "TTL", ttl_s);
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_lease_rc(ec_call_within(s->impl, "/v3/lease/grant", &b, timeout_ms, &j, err),
                         err);
    sbuf_free(&b);
    if (rc)
        return rc;
    const char *why = json_string_value(json_object_get(j, "error"));
    *id = ej_i64(j, "ID");
    if (why && *why)
        rc = err_set(err, ERR_UNAVAILABLE, "etcd: lease grant: %s", why);
    else if (!*id)
        rc = err_set(err, ERR_UNAVAILABLE, "etcd: lease grant answered no ID");
    json_decref(j);
    return rc;
}

/* /v3/lease/keepalive is a stream through the gateway, but one request
 * gets one answer and the stream ends: a unary call, as clientv3's
 * KeepAliveOnce. No TTL in the answer means the lease is gone. */
static int ec_lease_keepalive(store_t *s, int64_t id, unsigned timeout_ms, unsigned *ttl_s,
                              err_t *err)
{
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_i64(&b, "ID", id);
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_lease_rc(
        ec_call_within(s->impl, "/v3/lease/keepalive", &b, timeout_ms, &j, err), err);
    sbuf_free(&b);
    if (rc)
        return rc;
    const json_t *res = json_object_get(j, "result");
    const json_t *e = json_object_get(j, "error");
    uint64_t ttl = ej_u64(res, "TTL");
    if (!res) {
        const char *msg = json_string_value(json_object_get(e, "message"));
        rc = msg && strstr(msg, "requested lease not found")
                 ? err_set(err, ERR_NOT_FOUND, "etcd: lease not found")
                 : err_set(err, ERR_UNAVAILABLE, "etcd: lease keepalive: %s",
                           msg ? msg : "no result");
    } else if (!ttl) {
        rc = err_set(err, ERR_NOT_FOUND, "etcd: lease %lld expired", (long long)id);
    } else if (ttl_s) {
        *ttl_s = (unsigned)ttl;
    }
    json_decref(j);
    return rc;
}

static int ec_lease_revoke(store_t *s, int64_t id, unsigned timeout_ms, err_t *err)
{
    sbuf_t b = SBUF_INIT;
    sbuf_putc(&b, '{');
    sb_i64(&b, "ID", id);
    sbuf_putc(&b, '}');
    json_t *j;
    int rc = ec_lease_rc(ec_call_within(s->impl, "/v3/lease/revoke", &b, timeout_ms, &j, err),
                         err);
    sbuf_free(&b);
    json_decref(j);
    return rc;
}

/* clientv3/concurrency's campaign: put the key with the lease if its
 * create_revision is 0, else read it. */
static int ec_create_leased(store_t *s, const char *key, size_t key_len, const void *val,
                            size_t len, int64_t lease, unsigned timeout_ms, uint64_t *rev,
                            store_value_t *current, err_t *err)
{
    etcd_store_t *e = s->impl;
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "{\"compare\":[{\"target\":\"CREATE\",\"result\":\"EQUAL\",");
    sb_u64(&b, "create_revision", 0);
    sbuf_putc(&b, ',');
    sb_key(&b, e, "key", key, key_len);
    sbuf_puts(&b, "}],\"success\":[{\"request_put\":{");
    sb_key(&b, e, "key", key, key_len);
    sbuf_putc(&b, ',');
    sb_b64(&b, "value", val, len);
    sbuf_putc(&b, ',');
    sb_i64(&b, "lease", lease);
    sbuf_puts(&b, "}}],\"failure\":[{\"request_range\":{");
    sb_key(&b, e, "key", key, key_len);
    sbuf_puts(&b, "}}]}");
    json_t *j;
    int rc = ec_lease_rc(ec_call_within(e, "/v3/kv/txn", &b, timeout_ms, &j, err), err);
    sbuf_free(&b);
    if (rc)
        return rc;
    if (json_is_true(json_object_get(j, "succeeded"))) {
        atomic_fetch_add(&e->writes, 1);
        if (rev)
            *rev = ej_u64(json_object_get(j, "header"), "revision");
    } else {
        const json_t *r0 = json_array_get(json_object_get(j, "responses"), 0);
        const json_t *kv = json_array_get(
            json_object_get(json_object_get(r0, "response_range"), "kvs"), 0);
        int vr = current && kv ? ec_value(kv, current) : 0;
        rc = vr ? err_set(err, vr, vr == ERR_NOMEM ? NULL : "etcd: bad value of %.*s",
                          (int)key_len, key)
                : err_set(err, ERR_ALREADY_EXISTS, "key %.*s already exists", (int)key_len, key);
    }
    json_decref(j);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------ */

static void ec_stats(store_t *s, store_stats_t *st)
{
    etcd_store_t *e = s->impl;
    st->map_size = 0;
    /* Every write is its own etcd transaction. */
    st->writes = atomic_load(&e->writes);
    st->commits = st->writes;
}

static void ec_free(etcd_store_t *e)
{
    httpc_free(e->http);
    mem_free(e->prefix);
    mem_free(e);
}

static int ec_open(store_t *s, const store_config_t *cfg, uint64_t *rev,
                   uint64_t *compact_rev, err_t *err)
{
    if (!cfg->etcd_servers || !*cfg->etcd_servers)
        return err_set(err, ERR_BAD_REQUEST, "storage: --etcd-servers is required with etcd3");
    etcd_store_t *e = mem_calloc(1, sizeof *e);
    if (!e)
        return err_set(err, ERR_NOMEM, NULL);
    const char *p = cfg->etcd_prefix ? cfg->etcd_prefix : ETCD_DEFAULT_PREFIX;
    size_t plen = strlen(p);
    while (plen && p[plen - 1] == '/')
        plen--;
    e->prefix = mem_strndup(p, plen);
    e->prefix_len = plen;
    atomic_init(&e->stop, 0);
    httpc_config_t hc = {.urls = cfg->etcd_servers, .ca_file = cfg->etcd_cafile,
                         .cert_file = cfg->etcd_certfile, .key_file = cfg->etcd_keyfile};
    int rc = e->prefix ? 0 : err_set(err, ERR_NOMEM, NULL);
    if (!rc && plen && p[0] != '/')
        rc = err_set(err, ERR_BAD_REQUEST, "storage: --etcd-prefix must start with '/'");
    if (!rc)
        rc = httpc_new(&hc, &e->http, err);
    if (!rc)
        rc = ec_current(e, rev, compact_rev, err);
    if (rc) {
        ec_free(e);
        return rc;
    }
    s->impl = e;
    return 0;
}

static int ec_start(store_t *s, err_t *err)
{
    etcd_store_t *e = s->impl;
    if (pthread_create(&e->watcher, NULL, ec_follow_main, s))
        return err_set(err, ERR_INTERNAL, "storage: cannot start the etcd watch thread");
    e->watcher_running = 1;
    return 0;
}

static void ec_close(store_t *s)
{
    etcd_store_t *e = s->impl;
    if (!e)
        return;
    atomic_store(&e->stop, 1);
    if (e->watcher_running)
        pthread_join(e->watcher, NULL);
    ec_free(e);
    s->impl = NULL;
}

const store__backend_t store__etcd_backend = {
    .name = "etcd3",
    .open = ec_open,
    .start = ec_start,
    .close = ec_close,
    .get = ec_get,
    .write = ec_write,
    .list = ec_list,
    .read_events = ec_read_events,
    .stats = ec_stats,
    .lease_grant = ec_lease_grant,
    .lease_keepalive = ec_lease_keepalive,
    .lease_revoke = ec_lease_revoke,
    .create_leased = ec_create_leased,
};
