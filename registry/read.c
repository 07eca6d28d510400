/*
 * Reads: get, list (paged over a pinned snapshot, filtered by selectors) and their raw forms, which splice resourceVersion into the stored bytes instead of decoding them. See reg_internal.h and rest.c.
 */
#include "reg_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/b64.h"
#include "../lib/crypto.h"
#include "../lib/json/jenc.h"
#include "../lib/json/jtok.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../lib/yaml.h"
#include "../apimachinery/apply.h"
#include "../apimachinery/keys.h"
#include "../apimachinery/selector.h"

#define REG_MAX_DEPTH 64
#define REG_CAS_RETRIES 16

/* ---- get / list ------------------------------------------------------------------ */

/* The stored bytes of one object (*v, store_value_free), or its error as
 * a Status would word it. */
static int get_stored(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                      store_value_t *v, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    /* A name too long to be a key names nothing stored: not found. */
    if (reg__make_key(k, ns, name, key, sizeof key))
        return reg__store_error(k, name, ERR_NOT_FOUND, NULL, err);
    err_t se;
    err_clear(&se);
    int rc = store_get(r->store, key, v, &se);
    return rc ? reg__store_error(k, name, rc, &se, err) : 0;
}

int reg_get(reg_t *r, const reg_kind_t *k, const char *ns, const char *name, json_t **out,
            err_t *err)
{
    store_value_t v;
    int rc = get_stored(r, k, ns, name, &v, err);
    if (rc)
        return rc;
    rc = reg__decode_stored(v.data, v.len, v.mod_rev, out, err);
    store_value_free(&v);
    return rc;
}

typedef struct list_ctx {
    sel_t *labels;
    sel_t *fields;
    json_t *items;
    int rc;
    err_t *err;
} list_ctx_t;

typedef struct field_src {
    const json_t *obj;
} field_src_t;

static const char *field_get(void *arg, const char *name)
{
    const json_t *o = ((field_src_t *)arg)->obj;
    if (!strcmp(name, "metadata.name"))
        return reg__str_at(o, "metadata.name");
    if (!strcmp(name, "metadata.namespace"))
        return reg__str_at(o, "metadata.namespace");
    return NULL;
}

int reg__matches(const sel_t *labels, const sel_t *fields, const json_t *obj)
{
    if (labels && !sel_matches_labels(labels, reg__at(obj, "metadata.labels")))
        return 0;
    field_src_t fs = {obj};
    if (fields && !sel_matches_fields(fields, field_get, &fs))
        return 0;
    return 1;
}

static int list_visit(void *arg, const store_kv_t *kv)
{
    list_ctx_t *c = arg;
    json_t *o;
    int rc = reg__decode_stored(kv->value, kv->value_len, kv->mod_rev, &o, c->err);
    if (rc)
        return rc;
    if (!reg__matches(c->labels, c->fields, o)) {
        json_decref(o);
        return STORE_SKIP;
    }
    if (json_array_append_new(c->items, o))
        return err_set(c->err, ERR_NOMEM, NULL);
    return STORE_TAKE;
}

/* The fields a field selector may name: those field_get knows. */
static const char *const field_names[] = {"metadata.name", "metadata.namespace", NULL};

int reg__parse_selectors(const char *ls, const char *fs, sel_t **labels, sel_t **fields,
                         err_t *err)
{
    *labels = *fields = NULL;
    int rc = 0;
    if (ls && *ls)
        rc = sel_parse_labels(ls, labels, err);
    if (!rc && fs && *fs)
        rc = sel_parse_fields(fs, field_names, fields, err);
    if (rc) {
        sel_free(*labels);
        *labels = NULL;
    }
    return rc;
}

int reg__parse_rv(const char *s, uint64_t *rv, err_t *err)
{
    *rv = 0;
    if (!s || !*s)
        return 0;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return err_set(err, ERR_BAD_REQUEST, "invalid resource version \"%s\"", s);
        v = v * 10 + d;
    }
    *rv = v;
    return 0;
}

/* Runs a list: checks options, pins the snapshot they ask for, visits.
 * c->labels/c->fields are parsed here and freed by the caller. */
static int list_run(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                    list_ctx_t *c, store_visit_fn visit, store_list_result_t *res, err_t *err)
{
    int rc = reg__parse_selectors(o->label_selector, o->field_selector, &c->labels, &c->fields,
                                  err);
    if (rc)
        return rc;
    uint64_t rv = 0;
    rc = reg__parse_rv(o->resource_version, &rv, err);
    if (rc)
        return rc;
    const char *match = o->resource_version_match ? o->resource_version_match : "";
    if (*match && strcmp(match, "Exact") && strcmp(match, "NotOlderThan"))
        return err_set(err, ERR_BAD_REQUEST, "resourceVersionMatch: Unsupported value: \"%s\"", match);
    if (*match && (!o->resource_version || !*o->resource_version))
        return err_set(err, ERR_BAD_REQUEST,
                       "resourceVersionMatch is forbidden unless resourceVersion is provided");
    /* Only an Exact match, or the legacy "RV with a limit", pins a
     * snapshot; otherwise the latest state is at least as new as asked. */
    uint64_t pin = 0;
    if (!strcmp(match, "Exact") || (!*match && rv > 0 && o->limit > 0))
        pin = rv;
    if (!pin && rv > store_revision(r->store))
        return err_set(err, ERR_TOO_LARGE_RV, "Too large resource version: %" PRIu64
                       ", current: %" PRIu64, rv, store_revision(r->store));
    char prefix[STORE_MAX_KEY + 1];
    reg__key_prefix(k, ns, prefix, sizeof prefix);
    store_list_opts_t so = {.prefix = prefix, .continue_token = o->continue_token,
                            .rev = pin, .limit = o->limit,
                            .count_remaining = o->limit > 0 && !c->labels && !c->fields};
    return store_list(r->store, &so, visit, c, res, err);
}

/* The list's metadata: resourceVersion, and continue (with
 * remainingItemCount when known) for a page. NULL when out of memory:
 * never a page without its continue token, which would end the client's
 * paging early. */
static json_t *list_meta(const store_list_result_t *res)
{
    char rvs[24];
    snprintf(rvs, sizeof rvs, "%" PRIu64, res->rev);
    json_t *meta = json_pack("{s:s}", "resourceVersion", rvs);
    if (meta && res->continue_token &&
        (json_object_set_new(meta, "continue", json_string(res->continue_token)) ||
         (res->remaining > 0 &&
          json_object_set_new(meta, "remainingItemCount", json_integer(res->remaining))))) {
        json_decref(meta);
        return NULL;
    }
    return meta;
}

int reg_list(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
             json_t **out, err_t *err)
{
    list_ctx_t c = {.err = err, .items = json_array()};
    store_list_result_t res = {0};
    int rc = c.items ? list_run(r, k, ns, o, &c, list_visit, &res, err)
                     : err_set(err, ERR_NOMEM, NULL);
    if (!rc) {
        char av[160], lk[160];
        reg__api_version_of(k, av, sizeof av);
        snprintf(lk, sizeof lk, "%sList", k->kind);
        /* list_meta's NULL fails the pack (which still takes the reference
         * of every "o" value). */
        *out = json_pack("{s:s, s:s, s:o, s:O}", "apiVersion", av, "kind", lk, "metadata",
                         list_meta(&res), "items", c.items);
        if (!*out)
            rc = err_set(err, ERR_NOMEM, NULL);
    }
    store_list_result_free(&res);
    json_decref(c.items);
    sel_free(c.labels);
    sel_free(c.fields);
    return rc;
}

/* ---- raw reads: stored bytes with resourceVersion spliced in --------------------- */

/* Appends a stored object with metadata.resourceVersion set. The stored
 * form begins {"apiVersion":..,"kind":..,"metadata":{ (encode_for_store),
 * and neither value can contain that text, so the first occurrence is the
 * object's own metadata. */
static int put_with_rv(sbuf_t *b, const char *data, size_t len, uint64_t rev)
{
    static const char mark[] = "\"metadata\":{";
    const char *m = memmem(data, len, mark, sizeof mark - 1);
    if (!m)
        return ERR_INTERNAL;
    size_t at = (size_t)(m - data) + sizeof mark - 1;
    char rv[48];
    if (sbuf_grow(b, len + sizeof rv))
        return ERR_NOMEM;
    int n = snprintf(rv, sizeof rv, "\"resourceVersion\":\"%" PRIu64 "\"%s", rev,
                     at < len && data[at] == '}' ? "" : ",");
    sbuf_put(b, data, at);
    sbuf_put(b, rv, (size_t)n);
    sbuf_put(b, data + at, len - at);
    return b->oom ? ERR_NOMEM : 0;
}

int reg__put_with_rv_buf(const char *data, size_t len, uint64_t rev, char **out,
                           size_t *out_len)
{
    sbuf_t b = {0};
    if (put_with_rv(&b, data, len, rev)) {
        mem_free(b.p);
        return ERR_NOMEM;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int reg_get_raw(reg_t *r, const reg_kind_t *k, const char *ns, const char *name, char **body,
                size_t *len, err_t *err)
{
    store_value_t v;
    int rc = get_stored(r, k, ns, name, &v, err);
    if (rc)
        return rc;
    sbuf_t b = {0};
    rc = put_with_rv(&b, v.data, v.len, v.mod_rev);
    store_value_free(&v);
    if (rc) {
        mem_free(b.p);
        return err_set(err, rc, rc == ERR_NOMEM ? NULL : "stored object is malformed");
    }
    *body = b.p;
    *len = b.len;
    return 0;
}

typedef struct raw_ctx {
    list_ctx_t base;             /* first: list_run fills the selectors */
    sbuf_t b;
    int n;
    /* Tables: each matching object becomes its row at once */
    const reg_kind_t *k;
    const char *include;
} raw_ctx_t;

static int raw_visit(void *arg, const store_kv_t *kv)
{
    raw_ctx_t *c = arg;
    if (c->base.labels || c->base.fields) {
        /* Selectors need the fields: parse, but still copy the bytes. */
        unsigned long failed = mem_failures();
        json_t *o = jtok_loadb(kv->value, kv->value_len, 0, NULL);
        if (!o && mem_failures() != failed)
            return err_set(c->base.err, ERR_NOMEM, NULL);
        int ok = o && reg__matches(c->base.labels, c->base.fields, o);
        json_decref(o);
        if (!ok)
            return STORE_SKIP;
    }
    if (c->n++)
        sbuf_put(&c->b, ",", 1);
    int rc = put_with_rv(&c->b, kv->value, kv->value_len, kv->mod_rev);
    if (rc)
        return err_set(c->base.err, rc, rc == ERR_NOMEM ? NULL : "stored object is malformed");
    return STORE_TAKE;
}

static int row_visit(void *arg, const store_kv_t *kv)
{
    raw_ctx_t *c = arg;
    json_t *o;
    int rc = reg__decode_stored(kv->value, kv->value_len, kv->mod_rev, &o, c->base.err);
    if (rc)
        return rc;
    if (!reg__matches(c->base.labels, c->base.fields, o)) {
        json_decref(o);
        return STORE_SKIP;
    }
    json_t *row = reg__table_row(c->k, o, c->include);
    json_decref(o);
    if (c->n++)
        sbuf_put(&c->b, ",", 1);
    rc = row ? jenc_append(&c->b, row) : ERR_NOMEM;
    json_decref(row);
    if (rc)
        return err_set(c->base.err, rc == ERR_NOMEM ? rc : ERR_INTERNAL,
                       rc == ERR_NOMEM ? NULL : "a row does not encode");
    return STORE_TAKE;
}

/* Runs the list with visit appending each item to c->b (which holds the
 * head), then closes the items array and adds the list's metadata:
 * metadata after items, as JSON objects are unordered. */
static int raw_list(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                    raw_ctx_t *c, store_visit_fn visit, char **body, size_t *len, err_t *err)
{
    store_list_result_t res = {0};
    int rc = list_run(r, k, ns, o, &c->base, visit, &res, err);
    if (!rc) {
        json_t *meta = list_meta(&res);
        static const char between[] = "],\"metadata\":";
        sbuf_put(&c->b, between, sizeof between - 1);
        /* meta is NULL only when out of memory. */
        int jr = jenc_append(&c->b, meta);
        json_decref(meta);
        sbuf_put(&c->b, "}", 1);
        if (jr || c->b.oom)
            rc = err_set(err, ERR_NOMEM, NULL);
    }
    store_list_result_free(&res);
    sel_free(c->base.labels);
    sel_free(c->base.fields);
    if (rc) {
        mem_free(c->b.p);
        return rc;
    }
    *body = c->b.p;
    *len = c->b.len;
    return 0;
}

int reg_list_raw(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                 char **body, size_t *len, err_t *err)
{
    raw_ctx_t c = {.base = {.err = err}};
    char av[160];
    reg__api_version_of(k, av, sizeof av);
    char head[400];
    int hn = snprintf(head, sizeof head, "{\"apiVersion\":\"%s\",\"kind\":\"%sList\",\"items\":[",
                      av, k->kind);
    sbuf_put(&c.b, head, (size_t)hn);
    return raw_list(r, k, ns, o, &c, raw_visit, body, len, err);
}

int reg_list_table_raw(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                       const char *api_version, const char *include, char **body, size_t *len,
                       err_t *err)
{
    raw_ctx_t c = {.base = {.err = err}, .k = k,
                   .include = include && *include ? include : "Metadata"};
    char head[200];
    int hn = snprintf(head, sizeof head, "{\"kind\":\"Table\",\"apiVersion\":\"%s\","
                      "\"columnDefinitions\":", api_version);
    sbuf_put(&c.b, head, (size_t)hn);
    json_t *defs = reg__table_columns(k);
    int jr = defs ? jenc_append(&c.b, defs) : ERR_NOMEM;
    json_decref(defs);
    if (jr) {
        mem_free(c.b.p);
        return err_set(err, ERR_NOMEM, NULL);
    }
    sbuf_put(&c.b, ",\"rows\":[", 9);
    return raw_list(r, k, ns, o, &c, row_visit, body, len, err);
}

