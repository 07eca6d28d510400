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
 */
#include "reg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/mem.h"
#include "selector.h"

struct reg_watch {
    reg_t *reg;
    const reg_kind_t *k;
    sel_t *labels, *fields;
    store_watcher_t *sw;
    json_t *initial;             /* synthetic ADDED objects still to send */
    size_t initial_pos;
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

static json_t *decode(const char *data, size_t len, uint64_t rev)
{
    json_t *o = NULL;
    err_t err;
    err_clear(&err);
    return reg__decode_stored(data, len, rev, &o, &err) ? NULL : o;
}

static const char *const sel_fields[] = {"metadata.name", "metadata.namespace", NULL};

static int initial_visit(void *arg, const store_kv_t *kv)
{
    reg_watch_t *w = arg;
    json_t *o = decode(kv->value, kv->value_len, kv->mod_rev);
    if (!o)
        return STORE_SKIP;
    if (w_matches(w, o))
        json_array_append_new(w->initial, o);
    else
        json_decref(o);
    return STORE_TAKE;
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
    int rc = 0;
    if (o->label_selector && *o->label_selector)
        rc = sel_parse_labels(o->label_selector, &w->labels, err);
    if (!rc && o->field_selector && *o->field_selector)
        rc = sel_parse_fields(o->field_selector, sel_fields, &w->fields, err);
    if (rc)
        goto fail;

    char prefix[STORE_MAX_KEY + 1];
    if (k->namespaced && ns && *ns)
        snprintf(prefix, sizeof prefix, "/%s/%s/%s/", k->group, k->resource, ns);
    else
        snprintf(prefix, sizeof prefix, "/%s/%s/", k->group, k->resource);

    const char *rvs = o->resource_version ? o->resource_version : "";
    uint64_t after = 0;
    int initial = o->send_initial_events || !*rvs || !strcmp(rvs, "0");
    if (*rvs) {
        char *end;
        after = strtoull(rvs, &end, 10);
        if (*end || rvs[0] == '-') {
            rc = err_set(err, ERR_BAD_REQUEST, "invalid resource version \"%s\"", rvs);
            goto fail;
        }
    }
    if (initial) {
        /* The snapshot: everything now, then events after it. */
        w->initial = json_array();
        store_list_opts_t lo = {.prefix = prefix};
        store_list_result_t res;
        rc = store_list(r->store, &lo, initial_visit, w, &res, err);
        if (rc)
            goto fail;
        after = res.rev;
        store_list_result_free(&res);
        w->end_bookmark = o->send_initial_events && o->allow_bookmarks;
    }
    w->snapshot_rev = after;
    w->last_bookmark = after;
    store_watch_opts_t so = {.prefix = prefix, .after_rev = after, .notify = o->notify,
                             .notify_arg = o->notify_arg};
    err_t e;
    err_clear(&e);
    rc = store_watch(r->store, &so, &w->sw, &e);
    if (rc == ERR_EXPIRED) {
        /* kube answers 200 and sends the 410 as an ERROR event. */
        w->error = rc;
        err_set(&w->err, ERR_EXPIRED, "too old resource version: %" PRIu64, after);
        rc = 0;
    } else if (rc) {
        *err = e;
        goto fail;
    }
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
    if (w->initial && w->initial_pos < json_array_size(w->initial)) {
        *ev = event("ADDED", json_incref(json_array_get(w->initial, w->initial_pos++)));
        return 0;
    }
    if (w->initial) {
        json_decref(w->initial);
        w->initial = NULL;
        if (w->end_bookmark) {
            *ev = bookmark(w, w->snapshot_rev, 1);
            return 0;
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
        json_t *now = se->value ? decode(se->value, se->value_len, se->rev) : NULL;
        json_t *before = se->prev_value ? decode(se->prev_value, se->prev_len, se->rev) : NULL;
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
            return 0;
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
    json_decref(w->initial);
    sel_free(w->labels);
    sel_free(w->fields);
    mem_free(w);
}
