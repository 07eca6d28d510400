/*
 * Watch streams: events as JSON lines (or Table rows), bookmarks, deadlines. See server_internal.h.
 */
#include "server_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/json/jenc.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"

#define BOOKMARK_EVERY 60        /* seconds, as kube's cacher */

typedef struct wstream {
    reg_watch_t *w;
    agg_metrics_t *metrics;      /* counts the watch while it is open */
    const char *scope;
    _Atomic(agg_stream_t *) st;
    const reg_kind_t *k;
    int table;
    const char *table_version;
    const char *include;
    char *buf;                   /* serialized bytes not yet sent */
    size_t len, off;
    time_t deadline;
    int bookmarks;
    time_t next_bookmark;
    int sent_columns;
    int done;
} wstream_t;

static void ws_notify(void *arg)
{
    wstream_t *ws = arg;
    agg_stream_t *st = atomic_load(&ws->st);
    if (st)
        agg_stream_wake(st);
}

static int ws_queue(wstream_t *ws, json_t *ev)
{
    if (ws->table) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        json_t *obj = json_object_get(ev, "object");
        if (type && strcmp(type, "ERROR") && strcmp(type, "BOOKMARK")) {
            json_t *t = reg_table(ws->k, obj, ws->table_version, ws->include);
            /* As kube: column definitions come with the first event only. */
            if (ws->sent_columns)
                json_object_set_new(t, "columnDefinitions", json_array());
            ws->sent_columns = 1;
            json_object_set_new(ev, "object", t);
        }
    }
    /* One line per event: the JSON text and a newline. */
    sbuf_t b = SBUF_INIT;
    int rc = jenc_append(&b, ev);
    json_decref(ev);
    sbuf_putc(&b, '\n');
    mem_free(ws->buf);
    ws->buf = NULL;
    ws->len = ws->off = 0;
    if (rc || b.oom) {
        sbuf_free(&b);
        return -1;
    }
    ws->buf = b.p;
    ws->len = b.len;
    ws->off = 0;
    return 0;
}

static ssize_t ws_read(void *arg, char *out, size_t max)
{
    wstream_t *ws = arg;
    size_t sent = 0;
    for (;;) {
        if (ws->off < ws->len) {
            size_t n = ws->len - ws->off;
            if (n > max - sent)
                n = max - sent;
            memcpy(out + sent, ws->buf + ws->off, n);
            ws->off += n;
            sent += n;
            if (sent == max)
                return (ssize_t)sent;
            continue;
        }
        if (ws->done || time(NULL) >= ws->deadline)
            return sent ? (ssize_t)sent : -1;
        json_t *ev = NULL;
        err_t err;
        err_clear(&err);
        int rc = reg_watch_next(ws->w, &ev, &err);
        if (rc == ERR_TIMEOUT) {
            if (ws->bookmarks && time(NULL) >= ws->next_bookmark) {
                ws->next_bookmark = time(NULL) + BOOKMARK_EVERY;
                json_t *bm = reg_watch_bookmark(ws->w);
                if (bm && ws_queue(ws, bm) == 0)
                    continue;
            }
            return (ssize_t)sent;  /* 0: nothing now, suspend */
        }
        if (rc) {
            ws->done = 1;
            if (!ev)
                return sent ? (ssize_t)sent : -1;
        }
        if (ws_queue(ws, ev))
            return -1;
    }
}

/* The labels of this watch in kube-apiserver's metrics. */
static agg_metrics_req_t ws_labels(const wstream_t *ws)
{
    return (agg_metrics_req_t){.verb = "WATCH", .group = ws->k->group,
                               .version = ws->k->version, .resource = ws->k->resource,
                               .subresource = "", .scope = ws->scope, .kind = ws->k->kind};
}

static void ws_close(void *arg)
{
    wstream_t *ws = arg;
    if (ws->metrics) {
        agg_metrics_req_t l = ws_labels(ws);
        agg_metrics_watch(ws->metrics, &l, -1);
    }
    reg_watch_close(ws->w);
    mem_free(ws->buf);
    mem_free(ws);
}

static const agg_stream_ops_t ws_ops = {ws_read, ws_close};

/* The field selector of a watch of the object called name: the term
 * metadata.name=<name>, the name escaped as kube's fields.EscapeValue
 * escapes it (a backslash before each '\', ',' and '='), so that whatever
 * the URL names stays one value and matches only an object of exactly that
 * name, as kube's fields.OneTermEqualSelector; then the query's selector,
 * if any, after a comma. Into *out, which the caller frees (also on
 * failure). 0 or ERR_NOMEM. */
static int name_selector(sbuf_t *out, const char *name, const char *field_sel)
{
    sbuf_puts(out, "metadata.name=");
    for (const char *p = name; *p; p++) {
        if (*p == '\\' || *p == ',' || *p == '=')
            sbuf_putc(out, '\\');
        sbuf_putc(out, *p);
    }
    if (field_sel && *field_sel) {
        sbuf_putc(out, ',');
        sbuf_puts(out, field_sel);
    }
    return out->oom ? ERR_NOMEM : 0;
}

void agg__watch(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc)
{
    const reg_kind_t *k = rt->k;
    const char *ns = rt->ns, *name = rt->name;
    err_t err;
    err_clear(&err);
    long long timeout = 0, limit = 0;
    if (agg__qint(req, "timeoutSeconds", &timeout, &err) || agg__qint(req, "limit", &limit, &err)) {
        agg__send_error(req, &err, k, NULL);
        return;
    }
    if (agg__validate_list_opts(req, 1, &err)) {
        agg__send_error(req, &err, agg__list_options(), NULL);
        return;
    }
    wstream_t *ws = mem_calloc(1, sizeof *ws);
    if (!ws) {
        agg__send_code(req, ERR_NOMEM, NULL, NULL);
        return;
    }
    const char *field_sel = agg_req_query(req, "fieldSelector");
    sbuf_t fs = SBUF_INIT;
    if (name) {
        /* A watch of one object is a watch filtered by its name. */
        if (name_selector(&fs, name, field_sel)) {
            mem_free(ws);
            agg__send_code(req, ERR_NOMEM, NULL, NULL);
            return;
        }
        field_sel = fs.p;
    }
    reg_watch_opts_t o = {
        .label_selector = rt->label_selector,
        .field_selector = field_sel,
        .resource_version = agg_req_query(req, "resourceVersion"),
        .send_initial_events = agg__qbool(req, "sendInitialEvents"),
        .allow_bookmarks = agg__qbool(req, "allowWatchBookmarks"),
        .notify = ws_notify,
        .notify_arg = ws,
    };
    /* The selector is parsed (and copied) by the open. */
    int rc = reg_watch_open(api->reg, k, ns, &o, &ws->w, &err);
    sbuf_free(&fs);
    if (rc) {
        mem_free(ws);
        agg__send_error(req, &err, k, name);
        return;
    }
    ws->k = k;
    ws->table = acc->table;
    ws->table_version = acc->table_version;
    ws->include = agg_req_query(req, "includeObject");
    ws->bookmarks = o.allow_bookmarks;
    ws->next_bookmark = time(NULL) + BOOKMARK_EVERY;
    /* No timeout (or 0) is kube's 30 to 60 minutes; a negative one ends
     * the watch at once, as kube's timer that has already fired. */
    if (timeout == 0)
        timeout = 1800 + (long long)(time(NULL) % 1800);
    ws->deadline = timeout < 0 ? 0 : time(NULL) + (time_t)(timeout > 1 << 30 ? 1 << 30 : timeout);
    ws->scope = ns && *ns ? "namespace" : name ? "resource" : "cluster";
    ws->metrics = api->metrics;
    if (ws->metrics) {
        agg_metrics_req_t l = ws_labels(ws);
        agg_metrics_watch(ws->metrics, &l, 1);
    }
    agg_stream_t *st = agg_respond_stream(req, 200, JSON_CT, &ws_ops, ws);
    if (st) {
        atomic_store(&ws->st, st);
        agg_stream_wake(st);
    }
}

