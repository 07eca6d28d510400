/*
 * Watch: store events of one kind (and namespace) turned into Kubernetes
 * watch events, filtered by selectors the way kube-apiserver's watcher
 * filters them (k8s.io/apiserver/pkg/storage/etcd3/watcher.go): an object
 * that starts matching is ADDED, one that stops matching is DELETED, one
 * that keeps matching is MODIFIED.
 *
 * resourceVersion "" or "0" (or sendInitialEvents=true) first sends a
 * synthetic ADDED for every matching object of a snapshot, then events
 * after that snapshot; with sendInitialEvents and bookmarks, a BOOKMARK
 * annotated k8s.io/initial-events-end closes the initial part.
 *
 * The snapshot is read a page at a time, as the client takes the events
 * (a continue token keeps the place), so a watch of a large collection
 * holds one page in memory, not the collection. The store watcher opens
 * when the snapshot is done, from its revision: what changed meanwhile is
 * replayed from the store's history, and a snapshot that history no
 * longer reaches (a client slower than the compaction window) ends the
 * watch with Expired, as kube-apiserver's would.
 */
#include "reg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"
#include "../apimachinery/selector.h"

struct reg_watch {
    reg_t *reg;
    const reg_kind_t *k;
    sel_t *labels, *fields;
    store_watcher_t *sw;
    char prefix[STORE_MAX_KEY + 1];
    store_notify_fn notify;
    void *notify_arg;
    /* the synthetic ADDED events: the snapshot, a page at a time */
    int initial;                 /* still sending them */
    json_t *page;                /* this page's matching objects */
    size_t page_pos;
    char *next_token;            /* the snapshot's next page; NULL: none */
    int end_bookmark;            /* send initial-events-end after them */
    uint64_t snapshot_rev;
    uint64_t last_bookmark;
    int error;                   /* pending final error (as an ERROR event) */
    err_t err;
};

static int w_matches(const reg_watch_t *w, const json_t *o)
{
    return o && reg__matches(w->labels, w->fields, o);
}


#define WATCH_PAGE 256             /* synthetic ADDED objects read at a time */

typedef struct page_ctx {
    reg_watch_t *w;
    err_t *err;
} page_ctx_t;

static int initial_visit(void *arg, const store_kv_t *kv)
{
    page_ctx_t *c = arg;
    json_t *o = NULL;
    int rc = reg__decode_stored(kv->value, kv->value_len, kv->mod_rev, &o, c->err);
    if (rc)
        return rc;
    if (!w_matches(c->w, o)) {
        json_decref(o);
        return STORE_SKIP;
    }
    return json_array_append_new(c->w->page, o) ? err_set(c->err, ERR_NOMEM, NULL) : STORE_TAKE;
}

/* Reads the snapshot's next page (the first when no token is held): the
 * page's objects into w->page, the place after it into w->next_token.
 * Sets snapshot_rev on the first. A storage error, ERR_EXPIRED among
 * them, is returned. */
static int next_page(reg_watch_t *w, err_t *err)
{
    char *token = w->next_token;
    w->next_token = NULL;
    json_decref(w->page);
    w->page_pos = 0;
    w->page = json_array();
    if (!w->page) {
        mem_free(token);
        return err_set(err, ERR_NOMEM, NULL);
    }
    store_list_opts_t lo = {.prefix = w->prefix, .continue_token = token, .limit = WATCH_PAGE};
    store_list_result_t res = {0};
    page_ctx_t c = {w, err};
    int rc = store_list(w->reg->store, &lo, initial_visit, &c, &res, err);
    mem_free(token);
    if (rc)
        return rc;
    if (!w->snapshot_rev)
        w->snapshot_rev = res.rev;
    w->next_token = res.continue_token;
    res.continue_token = NULL;
    store_list_result_free(&res);
    return 0;
}

/* Opens the store watcher after snapshot_rev. A revision the history no
 * longer holds becomes the watch's ERROR event (kube answers 200 and sends
 * the 410 in the stream); other errors are returned. */
static int open_store_watch(reg_watch_t *w, err_t *err)
{
    store_watch_opts_t so = {.prefix = w->prefix, .after_rev = w->snapshot_rev,
                             .notify = w->notify, .notify_arg = w->notify_arg};
    err_t e;
    err_clear(&e);
    int rc = store_watch(w->reg->store, &so, &w->sw, &e);
    if (rc == ERR_EXPIRED) {
        w->error = rc;
        err_set(&w->err, ERR_EXPIRED, "too old resource version: %" PRIu64, w->snapshot_rev);
        return 0;
    }
    if (rc)
        *err = e;
    return rc;
}

int reg_watch_open(reg_t *r, const reg_kind_t *k, const char *ns, const reg_watch_opts_t *o,
                   reg_watch_t **out, err_t *err)
{
    if (k->create_only)
        return err_set(err, ERR_METHOD_NOT_ALLOWED, "%s only supports create", k->resource);
    reg_watch_t *w = mem_calloc(1, sizeof *w);
    if (!w)
        return err_set(err, ERR_NOMEM, NULL);
    w->reg = r;
    w->k = k;
    int rc = reg__parse_selectors(o->label_selector, o->field_selector, &w->labels,
                                  &w->fields, err);
    if (rc)
        goto fail;

    reg__key_prefix(k, ns, w->prefix, sizeof w->prefix);
    w->notify = o->notify;
    w->notify_arg = o->notify_arg;

    /* As kube's watch cache, on the number: 0 however spelled (or none)
     * starts with the current state. */
    uint64_t after = 0;
    rc = reg__parse_rv(o->resource_version, &after, err);
    if (rc)
        goto fail;
    if (o->send_initial_events || after == 0) {
        /* The snapshot's first page now (its errors are the request's);
         * the rest, and then the events after it, as the client reads. */
        w->initial = 1;
        w->end_bookmark = o->send_initial_events && o->allow_bookmarks;
        rc = next_page(w, err);
        if (rc)
            goto fail;
    } else {
        w->snapshot_rev = after;
        rc = open_store_watch(w, err);
        if (rc)
            goto fail;
    }
    w->last_bookmark = w->snapshot_rev;
    *out = w;
    return 0;
fail:
    reg_watch_close(w);
    return rc;
}

static json_t *event(const char *type, json_t *obj)
{
    return json_pack("{s:s, s:o}", "type", type, "object", obj);
}

static json_t *bookmark(reg_watch_t *w, uint64_t rev, int initial_end)
{
    char rv[24], av[160];
    snprintf(rv, sizeof rv, "%" PRIu64, rev);
    snprintf(av, sizeof av, "%s/%s", w->k->group, w->k->version);
    json_t *meta = json_pack("{s:s}", "resourceVersion", rv);
    if (initial_end)
        json_object_set_new(meta, "annotations",
                            json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
    w->last_bookmark = rev;
    return event("BOOKMARK", json_pack("{s:s, s:s, s:o}", "kind", w->k->kind, "apiVersion", av,
                                       "metadata", meta));
}

int reg_watch_next(reg_watch_t *w, json_t **ev, err_t *err)
{
    *ev = NULL;
    while (w->initial) {
        if (w->page_pos < json_array_size(w->page)) {
            *ev = event("ADDED", json_incref(json_array_get(w->page, w->page_pos++)));
            return *ev ? 0 : err_set(err, ERR_NOMEM, NULL);
        }
        if (w->next_token) {
            err_t e;
            err_clear(&e);
            int rc = next_page(w, &e);
            if (rc == ERR_EXPIRED) {
                /* The snapshot fell out of history while the client read. */
                w->initial = 0;
                w->error = rc;
                w->err = e;
                break;
            }
            if (rc)
                return err_set(err, rc, "%s", e.message);
            continue;
        }
        /* The snapshot is sent: now what happened after it. */
        json_decref(w->page);
        w->page = NULL;
        w->initial = 0;
        int rc = open_store_watch(w, err);
        if (rc)
            return rc;
        if (w->end_bookmark && !w->error) {
            *ev = bookmark(w, w->snapshot_rev, 1);
            return *ev ? 0 : err_set(err, ERR_NOMEM, NULL);
        }
    }
    if (w->error) {
        int rc = w->error;
        w->error = ERR_GONE;  /* sent once; then the stream ends */
        if (rc == ERR_GONE)
            return rc;
        *ev = event("ERROR", reg_status(&w->err, NULL, NULL));
        return rc;
    }
    for (;;) {
        const store_event_t *se;
        err_t e;
        err_clear(&e);
        int rc = store_watcher_next(w->sw, &se, 0, &e);
        if (rc == ERR_TIMEOUT)
            return rc;
        if (rc == ERR_EXPIRED) {
            w->error = ERR_GONE;
            *ev = event("ERROR", reg_status(&e, NULL, NULL));
            return err_set(err, rc, "%s", e.message);
        }
        if (rc)
            return err_set(err, rc, "%s", e.message);  /* overflow or closing: end */
        /* An event that cannot be decoded ends the stream (the client
         * watches again from the last revision it saw): skipping it, or
         * judging it without one side, would send the wrong event. */
        json_t *now = NULL, *before = NULL;
        if (se->value)
            rc = reg__decode_stored(se->value, se->value_len, se->rev, &now, &e);
        if (!rc && se->prev_value)
            rc = reg__decode_stored(se->prev_value, se->prev_len, se->rev, &before, &e);
        if (rc) {
            store_event_release(se);
            json_decref(now);
            return err_forward(err, &e);
        }
        int now_ok = w_matches(w, now), before_ok = w_matches(w, before);
        const char *type = NULL;
        json_t *obj = NULL;
        if (se->type == STORE_DELETE) {
            if (before_ok) {
                type = "DELETED";
                obj = json_incref(before);
            }
        } else if (now_ok && before_ok) {
            type = "MODIFIED";
            obj = json_incref(now);
        } else if (now_ok) {
            type = "ADDED";
            obj = json_incref(now);
        } else if (before_ok) {
            type = "DELETED";
            obj = json_incref(now);
        }
        store_event_release(se);
        json_decref(now);
        json_decref(before);
        if (type) {
            *ev = event(type, obj);
            return *ev ? 0 : err_set(err, ERR_NOMEM, NULL);
        }
    }
}

json_t *reg_watch_bookmark(reg_watch_t *w)
{
    if (!w->sw || w->initial)
        return NULL;
    uint64_t p = store_watcher_progress(w->sw);
    if (p <= w->last_bookmark)
        return NULL;
    return bookmark(w, p, 0);
}

void reg_watch_close(reg_watch_t *w)
{
    if (!w)
        return;
    store_watcher_close(w->sw);
    json_decref(w->page);
    mem_free(w->next_token);
    sel_free(w->labels);
    sel_free(w->fields);
    mem_free(w);
}
