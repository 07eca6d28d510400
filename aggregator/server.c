/*
 * Routing and the handlers behind it. See server.h.
 */
#include "server.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../registry/openapi_pb.h"
#include "../registry/selector.h"
#include "../lib/crypto.h"
#include "../lib/json/jenc.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../lib/yaml.h"
#include "negotiate.h"

#define JSON_CT "application/json"
#define DISCOVERY_V2 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define DISCOVERY_V2BETA1 "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
#define BOOKMARK_EVERY 60        /* seconds, as kube's cacher */

/* ---- responses -------------------------------------------------------------- */

static void send_json(agg_req_t *req, int status, json_t *j, const char *ctype)
{
    size_t n = 0;
    char *txt = j ? jenc_dumps(j, &n) : NULL;
    json_decref(j);
    if (!txt) {
        agg_respond_str(req, 500, JSON_CT, "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                        "\"status\":\"Failure\",\"message\":\"out of memory\",\"code\":500}");
        return;
    }
    agg_respond(req, status, ctype ? ctype : JSON_CT, txt, n);
}

static void send_error(agg_req_t *req, const err_t *err, const reg_kind_t *k, const char *name)
{
    int code = err->code ? err->code : ERR_INTERNAL;
    send_json(req, err_http_status(code), reg_status(err, k, name), NULL);
}

static void send_code(agg_req_t *req, int code, const char *fmt, const char *arg)
{
    err_t e;
    err_clear(&e);
    err_set(&e, code, fmt, arg);
    send_error(req, &e, NULL, NULL);
}

static void add_warnings(agg_req_t *req, const reg_outcome_t *oc)
{
    for (int i = 0; i < oc->nwarnings; i++) {
        /* RFC 7234 warn-code 299, agent "-", text quoted and escaped. */
        char v[600];
        size_t n = (size_t)snprintf(v, sizeof v, "299 - \"");
        for (const char *p = oc->warnings[i]; *p && n < sizeof v - 3; p++) {
            if (*p == '"' || *p == '\\')
                v[n++] = '\\';
            v[n++] = *p;
        }
        v[n++] = '"';
        v[n] = '\0';
        agg_add_header(req, "Warning", v);
    }
}

/* What a resource path names, who asks, and the label selector the
 * registry is to apply (the query's, or one narrowed to the scope the
 * request was authorized at). */
typedef struct route {
    const reg_kind_t *k;
    const char *ns;
    const char *name;
    const char *sub;
    const authz_user_t *user;
    const char *label_selector;
} route_t;

/* ---- query parameters ---------------------------------------------------------- */

/* A boolean query parameter as kube-apiserver converts one: absent is
 * false, "0" and "false" (any case) are false, anything else, "" and
 * "?watch" alone included, is true. */
static int qbool(agg_req_t *req, const char *key)
{
    const char *v = agg_req_query(req, key);
    return v && strcmp(v, "0") && strcasecmp(v, "false");
}

/* An integer query parameter read as Go's strconv.ParseInt(v, 10, 64):
 * an optional sign, then decimal digits, within int64. *out is left
 * alone when the parameter is absent; anything unreadable, "" included,
 * is a 400 with Go's message. */
static int qint(agg_req_t *req, const char *key, long long *out, err_t *err)
{
    const char *v = agg_req_query(req, key);
    if (!v)
        return 0;
    const char *p = v + (*v == '+' || *v == '-');
    int neg = *v == '-';
    unsigned long long n = 0, max = neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX;
    if (!*p)
        return err_set(err, ERR_BAD_REQUEST, "strconv.ParseInt: parsing \"%s\": invalid syntax",
                       v);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return err_set(err, ERR_BAD_REQUEST,
                           "strconv.ParseInt: parsing \"%s\": invalid syntax", v);
        unsigned d = (unsigned)(*p - '0');
        if (n > (max - d) / 10)
            return err_set(err, ERR_BAD_REQUEST,
                           "strconv.ParseInt: parsing \"%s\": value out of range", v);
        n = n * 10 + d;
    }
    *out = neg ? (long long)(0 - n) : (long long)n;
    return 0;
}

/* The options kinds whose validation errors kube reports as Invalid
 * (422) with details naming them: CreateOptions.meta.k8s.io "" ... */
static const reg_kind_t opts_kind[] = {
    {.group = "meta.k8s.io", .kind = "CreateOptions", .resource = "createoptions"},
    {.group = "meta.k8s.io", .kind = "UpdateOptions", .resource = "updateoptions"},
    {.group = "meta.k8s.io", .kind = "PatchOptions", .resource = "patchoptions"},
    {.group = "meta.k8s.io", .kind = "DeleteOptions", .resource = "deleteoptions"},
    {.group = "meta.k8s.io", .kind = "ListOptions", .resource = "listoptions"},
};
#define LIST_OPTIONS (&opts_kind[4])

/* Field errors of one options object, worded and listed as kube's
 * NewInvalid words an ErrorList: one is "<kind> "" is invalid: <error>",
 * several are "[<error>, <error>]". */
typedef struct opts_errs {
    const reg_kind_t *ok;
    int n;
    char text[4][300];
    const char *reason[4], *field[4];
    size_t body_off[4];
} opts_errs_t;

/* type: "Forbidden", "Invalid value", "Unsupported value"; detail is
 * what follows (for the last two, the value and the reason). */
static void opts_err(opts_errs_t *e, const char *field, const char *type, const char *detail)
{
    if (e->n == 4)
        return;
    int i = e->n++;
    e->field[i] = field;
    e->reason[i] = !strcmp(type, "Forbidden") ? "FieldValueForbidden"
                 : !strcmp(type, "Invalid value") ? "FieldValueInvalid" : "FieldValueNotSupported";
    int n = snprintf(e->text[i], sizeof e->text[i], "%s: ", field);
    e->body_off[i] = n > 0 && (size_t)n < sizeof e->text[i] ? (size_t)n : 0;
    snprintf(e->text[i] + e->body_off[i], sizeof e->text[i] - e->body_off[i], "%s: %s", type,
             detail);
}

static int opts_finish(opts_errs_t *e, err_t *err)
{
    if (!e->n)
        return 0;
    char all[1300] = "";
    size_t len = 0;
    for (int i = 0; i < e->n && len < sizeof all; i++)
        len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", i ? ", " : "", e->text[i]);
    err_set(err, ERR_INVALID, e->n > 1 ? "%s.%s \"\" is invalid: [%s]" : "%s.%s \"\" is invalid: %s",
            e->ok->kind, e->ok->group, all);
    for (int i = 0; i < e->n; i++)
        err_add_cause(err, e->reason[i], e->field[i], "%s", e->text[i] + e->body_off[i]);
    return ERR_INVALID;
}

/* kube's ValidateListOptions (and, for a watch, its watch rules). */
static int validate_list_opts(agg_req_t *req, int watch, err_t *err)
{
    opts_errs_t e = {.ok = LIST_OPTIONS};
    const char *match = agg_req_query(req, "resourceVersionMatch");
    const char *rv = agg_req_query(req, "resourceVersion");
    const char *cont = agg_req_query(req, "continue");
    int initial_set = agg_req_query(req, "sendInitialEvents") != NULL;
    char v[300];
    if (watch) {
        if (initial_set && (!match || strcmp(match, "NotOlderThan")))
            opts_err(&e, "resourceVersionMatch", "Forbidden",
                     "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
        if (match && *match) {
            if (!qbool(req, "sendInitialEvents"))
                opts_err(&e, "resourceVersionMatch", "Forbidden", "resourceVersionMatch is "
                         "forbidden for watch unless sendInitialEvents is provided");
            if (strcmp(match, "NotOlderThan")) {
                snprintf(v, sizeof v, "\"%.200s\": supported values: \"NotOlderThan\"", match);
                opts_err(&e, "resourceVersionMatch", "Unsupported value", v);
            }
            if (cont && *cont)
                opts_err(&e, "resourceVersionMatch", "Forbidden",
                         "resourceVersionMatch is forbidden when continue is provided");
        }
        return opts_finish(&e, err);
    }
    if (match && *match) {
        if (!rv || !*rv)
            opts_err(&e, "resourceVersionMatch", "Forbidden",
                     "resourceVersionMatch is forbidden unless resourceVersion is provided");
        if (cont && *cont)
            opts_err(&e, "resourceVersionMatch", "Forbidden",
                     "resourceVersionMatch is forbidden when continue is provided");
        if (strcmp(match, "Exact") && strcmp(match, "NotOlderThan")) {
            snprintf(v, sizeof v, "\"%.200s\": supported values: \"Exact\", \"NotOlderThan\", "
                     "\"\"", match);
            opts_err(&e, "resourceVersionMatch", "Unsupported value", v);
        }
        if (!strcmp(match, "Exact") && rv && !strcmp(rv, "0"))
            opts_err(&e, "resourceVersionMatch", "Forbidden",
                     "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
    }
    if (initial_set)
        opts_err(&e, "sendInitialEvents", "Forbidden", "sendInitialEvents is forbidden for list");
    return opts_finish(&e, err);
}

static const reg_kind_t *opts_kind_of(const char *method)
{
    return &opts_kind[!strcmp(method, "PUT") ? 1 : !strcmp(method, "PATCH") ? 2
                      : !strcmp(method, "DELETE") ? 3 : 0];
}

/* kube's field.NotSupported on an options kind, as NewInvalid words it. */
static int opts_unsupported(err_t *err, const reg_kind_t *ok, const char *field,
                            const char *value, const char *supported)
{
    char body[400];
    snprintf(body, sizeof body, "Unsupported value: %s: supported values: %s", value, supported);
    err_set(err, ERR_INVALID, "%s.%s \"\" is invalid: %s: %s", ok->kind, ok->group, field, body);
    err_add_cause(err, "FieldValueNotSupported", field, "%s", body);
    return ERR_INVALID;
}

/* dryRun is a list whose only allowed value is "All" (ValidateDryRun). */
static int check_dry_run(const char *dry, const reg_kind_t *ok, int *out, err_t *err)
{
    if (!dry)
        return 0;
    if (strcmp(dry, "All")) {
        char v[300];
        snprintf(v, sizeof v, "[]string{\"%.256s\"}", dry);
        return opts_unsupported(err, ok, "dryRun", v, "\"All\"");
    }
    *out = 1;
    return 0;
}

/* Sets *ok_kind to the options kind an error belongs to. */
static int parse_write_opts(agg_req_t *req, const route_t *rt, reg_write_opts_t *o,
                            const reg_kind_t **ok_kind, err_t *err)
{
    memset(o, 0, sizeof *o);
    o->user = rt->user;
    const reg_kind_t *ok = *ok_kind = opts_kind_of(agg_req_method(req));
    if (check_dry_run(agg_req_query(req, "dryRun"), ok, &o->dry_run, err))
        return err->code;
    const char *fv = agg_req_query(req, "fieldValidation");
    if (!fv || !*fv || !strcmp(fv, "Warn"))
        o->field_validation = REG_FV_WARN;
    else if (!strcmp(fv, "Strict"))
        o->field_validation = REG_FV_STRICT;
    else if (!strcmp(fv, "Ignore"))
        o->field_validation = REG_FV_IGNORE;
    else {
        char v[300];
        snprintf(v, sizeof v, "\"%.256s\"", fv);
        return opts_unsupported(err, ok, "fieldValidation", v,
                                "\"\", \"Ignore\", \"Strict\", \"Warn\"");
    }
    o->field_manager = agg_req_query(req, "fieldManager");
    for (const unsigned char *p = (const unsigned char *)o->field_manager; p && *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            /* ValidateFieldManager: printable characters only. */
            char v[300];
            size_t n = 0;
            v[n++] = '"';
            for (const unsigned char *q = (const unsigned char *)o->field_manager;
                 *q && n < sizeof v - 6; q++)
                n += (size_t)(*q < 0x20 || *q == 0x7f || *q == '"' || *q == '\\'
                              ? (*q == '"' || *q == '\\' ? snprintf(v + n, 3, "\\%c", *q)
                                                          : snprintf(v + n, 5, "\\x%02x", *q))
                              : snprintf(v + n, 2, "%c", *q));
            snprintf(v + n, sizeof v - n, "\": must only contain printable characters");
            opts_errs_t e = {.ok = ok};
            opts_err(&e, "fieldManager", "Invalid value", v);
            return opts_finish(&e, err);
        }
    }
    if (o->field_manager && strlen(o->field_manager) > 128) {
        static const char body[] = "Too long: may not be more than 128 bytes";
        err_set(err, ERR_INVALID, "%s.%s \"\" is invalid: fieldManager: %s", ok->kind, ok->group,
                body);
        err_add_cause(err, "FieldValueTooLong", "fieldManager", "%s", body);
        return ERR_INVALID;
    }
    *ok_kind = NULL;
    o->force = qbool(req, "force");
    o->user_agent = agg_req_header(req, "User-Agent");
    return 0;
}

/* Sets *ok_kind to ListOptions when the error is one of its validation. */
static int parse_list_opts(agg_req_t *req, const route_t *rt, reg_list_opts_t *o,
                           const reg_kind_t **ok_kind, err_t *err)
{
    memset(o, 0, sizeof *o);
    *ok_kind = NULL;
    if (validate_list_opts(req, 0, err)) {
        *ok_kind = LIST_OPTIONS;
        return err->code;
    }
    o->label_selector = rt->label_selector;
    o->field_selector = agg_req_query(req, "fieldSelector");
    o->continue_token = agg_req_query(req, "continue");
    o->resource_version = agg_req_query(req, "resourceVersion");
    o->resource_version_match = agg_req_query(req, "resourceVersionMatch");
    /* As kube: a limit of zero or less lists everything; timeoutSeconds
     * must parse even where a list has no use for it. */
    long long lim = 0, ts = 0;
    if (qint(req, "limit", &lim, err) || qint(req, "timeoutSeconds", &ts, err))
        return err->code;
    o->limit = lim > 0 ? (size_t)lim : 0;
    if (o->continue_token && *o->continue_token && o->resource_version &&
        *o->resource_version && strcmp(o->resource_version, "0"))
        return err_set(err, ERR_BAD_REQUEST,
                       "specifying resource version is not allowed when using continue");
    return 0;
}

/* ---- watch streaming -------------------------------------------------------------- */

typedef struct wstream {
    reg_watch_t *w;
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

static void ws_close(void *arg)
{
    wstream_t *ws = arg;
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

static void do_watch(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc)
{
    const reg_kind_t *k = rt->k;
    const char *ns = rt->ns, *name = rt->name;
    err_t err;
    err_clear(&err);
    long long timeout = 0, limit = 0;
    if (qint(req, "timeoutSeconds", &timeout, &err) || qint(req, "limit", &limit, &err)) {
        send_error(req, &err, k, NULL);
        return;
    }
    if (validate_list_opts(req, 1, &err)) {
        send_error(req, &err, LIST_OPTIONS, NULL);
        return;
    }
    wstream_t *ws = mem_calloc(1, sizeof *ws);
    if (!ws) {
        send_code(req, ERR_NOMEM, NULL, NULL);
        return;
    }
    const char *field_sel = agg_req_query(req, "fieldSelector");
    sbuf_t fs = SBUF_INIT;
    if (name) {
        /* A watch of one object is a watch filtered by its name. */
        if (name_selector(&fs, name, field_sel)) {
            mem_free(ws);
            send_code(req, ERR_NOMEM, NULL, NULL);
            return;
        }
        field_sel = fs.p;
    }
    reg_watch_opts_t o = {
        .label_selector = rt->label_selector,
        .field_selector = field_sel,
        .resource_version = agg_req_query(req, "resourceVersion"),
        .send_initial_events = qbool(req, "sendInitialEvents"),
        .allow_bookmarks = qbool(req, "allowWatchBookmarks"),
        .notify = ws_notify,
        .notify_arg = ws,
    };
    /* The selector is parsed (and copied) by the open. */
    int rc = reg_watch_open(api->reg, k, ns, &o, &ws->w, &err);
    sbuf_free(&fs);
    if (rc) {
        mem_free(ws);
        send_error(req, &err, k, name);
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
    agg_stream_t *st = agg_respond_stream(req, 200, JSON_CT, &ws_ops, ws);
    if (st) {
        atomic_store(&ws->st, st);
        agg_stream_wake(st);
    }
}

/* ---- REST ---------------------------------------------------------------------------- */

static void respond_obj(agg_req_t *req, int status, json_t *obj, const reg_kind_t *k,
                        const agg_accept_t *acc)
{
    if (acc->table) {
        json_t *t = reg_table(k, obj, acc->table_version, agg_req_query(req, "includeObject"));
        json_decref(obj);
        obj = t;
    }
    send_json(req, status, obj, NULL);
}

/* A DeleteOptions field of the wrong JSON type: Go's decoding error. */
static int delete_opts_type(const json_t *v, const char *field, const char *go_type, int ok,
                            err_t *err)
{
    if (!v || json_is_null(v) || ok)
        return 0;
    const char *jt = json_is_string(v) ? "string" : json_is_number(v) ? "number"
                   : json_is_boolean(v) ? "bool" : json_is_array(v) ? "array" : "object";
    return err_set(err, ERR_BAD_REQUEST, "json: cannot unmarshal %s into Go struct field "
                   "DeleteOptions.%s of type %s", jt, field, go_type);
}

static int parse_delete_opts(agg_req_t *req, const route_t *rt, reg_delete_opts_t *o,
                             json_t **body, const reg_kind_t **ok_kind, err_t *err)
{
    memset(o, 0, sizeof *o);
    o->user = rt->user;
    o->grace_period_seconds = -1;
    *ok_kind = NULL;
    int orphan_set = 0;
    size_t len;
    const char *b = agg_req_body(req, &len);
    *body = NULL;
    if (len) {
        int format = agg_body_format(agg_req_header(req, "Content-Type"));
        if (format == AGG_BODY_UNSUPPORTED)
            return err_set(err, ERR_UNSUPPORTED_MEDIA, AGG_BODY_FORMATS_MSG);
        json_error_t je;
        if (format == AGG_BODY_YAML) {
            if (yml_to_json(b, len, body, err))
                return err->code;
            snprintf(je.text, sizeof je.text, "not an object");
        } else {
            *body = json_loadb(b, len, 0, &je);
        }
        if (!json_is_object(*body)) {
            json_decref(*body);
            *body = NULL;
            return err_set(err, ERR_BAD_REQUEST, "invalid DeleteOptions: %s", je.text);
        }
        const json_t *d = *body, *pre = json_object_get(d, "preconditions");
        const json_t *g = json_object_get(d, "gracePeriodSeconds");
        const json_t *dry = json_object_get(d, "dryRun");
        int dry_ok = json_is_array(dry);
        for (size_t i = 0; dry_ok && i < json_array_size(dry); i++)
            dry_ok = json_is_string(json_array_get(dry, i));
        if (delete_opts_type(json_object_get(d, "kind"), "kind", "string",
                             json_is_string(json_object_get(d, "kind")), err) ||
            delete_opts_type(json_object_get(d, "apiVersion"), "apiVersion", "string",
                             json_is_string(json_object_get(d, "apiVersion")), err) ||
            delete_opts_type(pre, "preconditions", "v1.Preconditions", json_is_object(pre), err) ||
            delete_opts_type(json_object_get(pre, "uid"), "preconditions.uid", "types.UID",
                             json_is_string(json_object_get(pre, "uid")), err) ||
            delete_opts_type(json_object_get(pre, "resourceVersion"),
                             "preconditions.resourceVersion", "string",
                             json_is_string(json_object_get(pre, "resourceVersion")), err) ||
            delete_opts_type(json_object_get(d, "propagationPolicy"), "propagationPolicy",
                             "v1.DeletionPropagation",
                             json_is_string(json_object_get(d, "propagationPolicy")), err) ||
            delete_opts_type(g, "gracePeriodSeconds", "int64", json_is_integer(g), err) ||
            delete_opts_type(json_object_get(d, "orphanDependents"), "orphanDependents", "bool",
                             json_is_boolean(json_object_get(d, "orphanDependents")), err) ||
            delete_opts_type(dry, "dryRun", "[]string", dry_ok, err))
            return err->code;
        o->precondition_uid = json_string_value(json_object_get(pre, "uid"));
        o->precondition_rv = json_string_value(json_object_get(pre, "resourceVersion"));
        o->propagation_policy = json_string_value(json_object_get(d, "propagationPolicy"));
        orphan_set = json_is_boolean(json_object_get(d, "orphanDependents"));
        if (json_is_integer(g))
            o->grace_period_seconds = (long)json_integer_value(g);
        for (size_t i = 0; i < json_array_size(dry); i++)
            if (check_dry_run(json_string_value(json_array_get(dry, i)), &opts_kind[3],
                              &o->dry_run, err)) {
                *ok_kind = &opts_kind[3];
                return err->code;
            }
    }
    const char *pp = agg_req_query(req, "propagationPolicy");
    if (pp && *pp)
        o->propagation_policy = pp;
    if (agg_req_query(req, "orphanDependents"))
        orphan_set = 1;
    if (orphan_set && o->propagation_policy) {
        char v[300];
        snprintf(v, sizeof v, "\"%.200s\": orphanDependents and deletionPropagation cannot be "
                 "both set", o->propagation_policy);
        opts_errs_t e = {.ok = &opts_kind[3]};
        opts_err(&e, "propagationPolicy", "Invalid value", v);
        *ok_kind = &opts_kind[3];
        return opts_finish(&e, err);
    }
    if (o->propagation_policy && strcmp(o->propagation_policy, "Background") &&
        strcmp(o->propagation_policy, "Foreground") && strcmp(o->propagation_policy, "Orphan")) {
        char v[300];
        snprintf(v, sizeof v, "\"%.256s\"", o->propagation_policy);
        *ok_kind = &opts_kind[3];
        return opts_unsupported(err, &opts_kind[3], "propagationPolicy", v,
                                "\"Foreground\", \"Background\", \"Orphan\", \"nil\"");
    }
    if (check_dry_run(agg_req_query(req, "dryRun"), &opts_kind[3], &o->dry_run, err)) {
        *ok_kind = &opts_kind[3];
        return err->code;
    }
    return 0;
}

static void do_rest(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc)
{
    const char *m = agg_req_method(req);
    const reg_kind_t *k = rt->k;
    err_t err;
    err_clear(&err);
    json_t *out = NULL;
    reg_outcome_t oc = {0};
    int status = rt->sub && !strcmp(rt->sub, "status");
    int rc;

    if (rt->sub && !status) {
        send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
        return;
    }
    if (k->create_only && rt->name) {
        send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
        return;
    }
    if (k->create_only && strcmp(m, "POST")) {
        send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on the "
                  "requested resource", NULL);
        return;
    }
    /* 7: includeObject is None, Metadata or Object. */
    const char *inc = agg_req_query(req, "includeObject");
    if (inc && *inc && strcmp(inc, "None") && strcmp(inc, "Metadata") && strcmp(inc, "Object")) {
        send_code(req, ERR_BAD_REQUEST, "unrecognized includeObject value: \"%s\"", inc);
        return;
    }
    if (!strcmp(m, "GET")) {
        if (qbool(req, "watch")) {
            do_watch(api, req, rt, acc);
            return;
        }
        reg_list_opts_t lo;
        const reg_kind_t *lo_kind = NULL;
        if (!acc->table) {
            /* Plain JSON: straight from the stored bytes. */
            char *body = NULL;
            size_t len = 0;
            if (rt->name) {
                rc = reg_get_raw(api->reg, k, rt->ns, rt->name, &body, &len, &err);
            } else {
                rc = parse_list_opts(req, rt, &lo, &lo_kind, &err);
                if (!rc)
                    rc = reg_list_raw(api->reg, k, rt->ns, &lo, &body, &len, &err);
            }
            if (rc)
                send_error(req, &err, lo_kind ? lo_kind : k, lo_kind ? NULL : rt->name);
            else
                agg_respond(req, 200, JSON_CT, body, len);
            return;
        }
        if (!rt->name) {
            /* A Table of a list: rows made as the objects are read. */
            char *body = NULL;
            size_t len = 0;
            rc = parse_list_opts(req, rt, &lo, &lo_kind, &err);
            if (!rc)
                rc = reg_list_table_raw(api->reg, k, rt->ns, &lo, acc->table_version, inc, &body,
                                        &len, &err);
            if (rc)
                send_error(req, &err, lo_kind ? lo_kind : k, NULL);
            else
                agg_respond(req, 200, JSON_CT, body, len);
            return;
        }
        rc = reg_get(api->reg, k, rt->ns, rt->name, &out, &err);
        if (rc) {
            send_error(req, &err, k, rt->name);
            return;
        }
        respond_obj(req, 200, out, k, acc);
        return;
    }
    if (!strcmp(m, "DELETE")) {
        reg_delete_opts_t dopts;
        json_t *body = NULL;
        const reg_kind_t *ok_kind = NULL;
        rc = parse_delete_opts(req, rt, &dopts, &body, &ok_kind, &err);
        if (!rc) {
            if (rt->name) {
                rc = reg_delete(api->reg, k, rt->ns, rt->name, &dopts, &out, &oc, &err);
            } else {
                reg_list_opts_t lo;
                rc = parse_list_opts(req, rt, &lo, &ok_kind, &err);
                if (!rc)
                    rc = reg_delete_collection(api->reg, k, rt->ns, &lo, &dopts, &out, &err);
            }
        }
        json_decref(body);
        if (rc) {
            send_error(req, &err, ok_kind ? ok_kind : k, ok_kind ? NULL : rt->name);
            return;
        }
        respond_obj(req, oc.accepted ? 202 : 200, out, k, acc);
        return;
    }
    reg_write_opts_t wo;
    oc.want_body = !acc->table;
    const reg_kind_t *ok_kind = NULL;
    rc = parse_write_opts(req, rt, &wo, &ok_kind, &err);
    if (rc) {
        send_error(req, &err, ok_kind ? ok_kind : k, ok_kind ? NULL : rt->name);
        return;
    }
    size_t len;
    const char *body = agg_req_body(req, &len);
    /* A YAML body (Content-Type application/yaml) is decoded to JSON first. */
    char *yaml_json = NULL;
    int format = strcmp(m, "PATCH") ? agg_body_format(agg_req_header(req, "Content-Type"))
                                    : AGG_BODY_JSON;  /* the patch type decides */
    if (!rc && format == AGG_BODY_UNSUPPORTED)
        rc = err_set(&err, ERR_UNSUPPORTED_MEDIA, AGG_BODY_FORMATS_MSG);
    if (!rc && format == AGG_BODY_YAML) {
        json_t *doc = NULL;
        rc = yml_to_json(body, len, &doc, &err);
        if (!rc) {
            yaml_json = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(doc);
            if (!yaml_json)
                rc = err_set(&err, ERR_NOMEM, NULL);
            else {
                body = yaml_json;
                len = strlen(yaml_json);
            }
        }
    }
    if (!rc && !strcmp(m, "POST")) {
        json_t *obj = NULL;
        if (rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                         "the requested resource");
        if (!rc)
            rc = reg_decode_body(body, len, wo.field_validation, &obj, &oc, &err);
        /* Status details name the object the body named. */
        char bname[256] = "";
        const char *bn = obj ? json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")) : NULL;
        if (bn)
            snprintf(bname, sizeof bname, "%s", bn);
        if (!rc) {
            rc = reg_create_owned(api->reg, k, rt->ns, obj, &wo, &out, &oc, &err);
            obj = NULL;
        }
        json_decref(obj);
        if (rc && *bname) {
            mem_free(oc.body);
            send_error(req, &err, k, bname);
            mem_free(yaml_json);
            return;
        }
    } else if (!rc && !strcmp(m, "PUT")) {
        json_t *obj = NULL;
        if (!rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "PUT needs an object name");
        if (!rc)
            rc = reg_decode_body(body, len, wo.field_validation, &obj, &oc, &err);
        if (!rc)
            rc = reg_update(api->reg, k, rt->ns, rt->name, obj, status, &wo, &out, &oc, &err);
        json_decref(obj);
    } else if (!rc && !strcmp(m, "PATCH")) {
        if (!rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "PATCH needs an object name");
        if (!rc)
            rc = reg_patch(api->reg, k, rt->ns, rt->name, agg_req_header(req, "Content-Type"),
                           body, len, status, &wo, &out, &oc, &err);
    } else if (!rc) {
        rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                     "the requested resource");
    }
    mem_free(yaml_json);
    add_warnings(req, &oc);
    if (rc) {
        mem_free(oc.body);
        send_error(req, &err, k, rt->name);
        return;
    }
    if (oc.body && !acc->table) {
        /* The written object's text was made from the stored bytes. */
        json_decref(out);
        agg_respond(req, oc.created ? 201 : 200, JSON_CT, oc.body, oc.body_len);
        return;
    }
    mem_free(oc.body);
    respond_obj(req, oc.created ? 201 : 200, out, k, acc);
}

/* ---- routing ---------------------------------------------------------------------- */

/* Splits path into at most max segments (in place in buf). */
static int split_path(const char *path, char *buf, size_t n, char **seg, int max)
{
    snprintf(buf, n, "%s", path);
    int count = 0;
    char *save = NULL;
    for (char *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (count == max)
            return -1;
        seg[count++] = s;
    }
    return count;
}

static int is_group(const char *g)
{
    for (size_t i = 0; reg_groups[i]; i++)
        if (!strcmp(reg_groups[i], g))
            return 1;
    return 0;
}

static const char *verb_of(const char *method, const route_t *rt, int watch)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return watch ? "watch" : rt->name ? "get" : "list";
    if (!strcmp(method, "POST"))
        return "create";
    if (!strcmp(method, "PUT"))
        return "update";
    if (!strcmp(method, "PATCH"))
        return "patch";
    if (!strcmp(method, "DELETE"))
        return rt->name ? "delete" : "deletecollection";
    return "";
}

/* What the audit event records about a request's authorization. */
typedef struct audit_rec {
    const authz_user_t *user;    /* NULL until authenticated */
    int decided;
    int allowed;
    /* Copies: the request's attributes point into buffers of route(),
     * which has returned by the time the event is written. */
    int resource_request;
    char verb[32], group[256], version[64], resource[128], subresource[64];
    char namespace_[256], name[256];
    char reason[512];
} audit_rec_t;

static void copy_or_empty(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static int authorize(agg_api_t *api, agg_req_t *req, const authz_user_t *u, const authz_attrs_t *a,
                     audit_rec_t *rec)
{
    char reason[1024];
    authz_decision_t d = authz_authorize(api->authz, u, a, reason, sizeof reason);
    if (api->audit) {
        /* Only an audit event reads these. */
        rec->resource_request = a->resource_request;
        copy_or_empty(rec->verb, sizeof rec->verb, a->verb);
        copy_or_empty(rec->group, sizeof rec->group, a->api_group);
        copy_or_empty(rec->version, sizeof rec->version, a->api_version);
        copy_or_empty(rec->resource, sizeof rec->resource, a->resource);
        copy_or_empty(rec->subresource, sizeof rec->subresource, a->subresource);
        copy_or_empty(rec->namespace_, sizeof rec->namespace_, a->namespace_);
        copy_or_empty(rec->name, sizeof rec->name, a->name);
        rec->decided = 1;
        rec->allowed = d == AUTHZ_ALLOW;
        snprintf(rec->reason, sizeof rec->reason, "%.500s", reason);
    }
    if (d == AUTHZ_ALLOW)
        return 1;
    /* kube's forbiddenMessage (endpoints/handlers/responsewriters/errors.go)
     * wrapped by NewForbidden: "<resource>.<group> "<name>" is forbidden: ...". */
    char what[600], msg[1800];
    if (a->resource_request) {
        char res[200];
        snprintf(res, sizeof res, "%s%s%s", a->resource, a->subresource ? "/" : "",
                 a->subresource ? a->subresource : "");
        if (a->namespace_)
            snprintf(what, sizeof what, "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" "
                     "in the namespace \"%s\"", u->name, a->verb, res, a->api_group, a->namespace_);
        else
            snprintf(what, sizeof what, "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" "
                     "at the cluster scope", u->name, a->verb, res, a->api_group);
        if (a->name)
            snprintf(msg, sizeof msg, "%s.%s \"%s\" is forbidden: %s: %s", a->resource,
                     a->api_group, a->name, what, reason);
        else
            snprintf(msg, sizeof msg, "%s.%s is forbidden: %s: %s", a->resource, a->api_group,
                     what, reason);
    } else {
        snprintf(msg, sizeof msg, "forbidden: User \"%s\" cannot %s path \"%s\": %s", u->name,
                 a->verb, a->path, reason);
    }
    err_t e;
    err_clear(&e);
    err_set(&e, ERR_FORBIDDEN, "%s", msg);
    json_t *st = reg_status(&e, NULL, NULL);
    if (a->resource_request) {
        json_t *d = json_pack("{s:s, s:s}", "group", a->api_group, "kind", a->resource);
        if (a->name)
            json_object_set_new(d, "name", json_string(a->name));
        json_object_set_new(st, "details", d);
    }
    send_json(req, 403, st, NULL);
    return 0;
}

static void version_info(agg_req_t *req)
{
    send_json(req, 200,
              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1", "minor",
                        "0", "gitVersion", "v0.1.0", "gitCommit", "", "gitTreeState", "clean",
                        "buildDate", __DATE__, "goVersion", "n/a", "compiler", "gcc", "platform",
                        "linux/amd64"),
              NULL);
}

/* The SubjectAccessReview webhook. The caller (kube-apiserver) must be
 * allowed to create subjectaccessreviews; every well-formed review gets
 * HTTP 200 with a decision, in the version it was asked in. */
static void webhook(agg_api_t *api, agg_req_t *req, const authz_user_t *u, const char *cluster,
                    audit_rec_t *rec)
{
    if (strcmp(agg_req_method(req), "POST")) {
        send_code(req, ERR_METHOD_NOT_ALLOWED, "the authorization webhook only accepts POST", NULL);
        return;
    }
    authz_attrs_t at = {.verb = "create", .resource_request = 1, .path = agg_req_path(req),
                        .api_group = "authorization.k8s.io", .api_version = "v1",
                        .resource = "subjectaccessreviews"};
    if (!authorize(api, req, u, &at, rec))
        return;
    size_t len, out_len = 0;
    const char *body = agg_req_body(req, &len);
    err_t err;
    err_clear(&err);
    char *out = NULL;
    if (authz_subject_access_review_text(api->authz, body, len, cluster, &out, &out_len, &err)) {
        send_error(req, &err, NULL, NULL);
        return;
    }
    agg_respond(req, 200, JSON_CT, out, out_len);
}

/* The user as the server sees it: what `kubectl auth whoami` prints. */
static void self_subject_review(agg_req_t *req, const authz_user_t *u, const char *version)
{
    if (strcmp(agg_req_method(req), "POST")) {
        send_code(req, ERR_METHOD_NOT_ALLOWED, "only create is allowed on selfsubjectreviews", NULL);
        return;
    }
    if (!authz_user_in_group(u, "system:authenticated")) {
        send_code(req, ERR_FORBIDDEN, "selfsubjectreviews.authentication.k8s.io is forbidden: "
                  "User \"system:anonymous\" cannot create resource \"selfsubjectreviews\"", NULL);
        return;
    }
    json_t *info = json_pack("{s:s, s:o}", "username", u->name, "groups",
                             authz_user_groups_json(u));
    if (u->uid[0])
        json_object_set_new(info, "uid", json_string(u->uid));
    if (u->nextra)
        json_object_set_new(info, "extra", authz_user_extra_json(u));
    char av[64];
    snprintf(av, sizeof av, "authentication.k8s.io/%s", version);
    send_json(req, 201, json_pack("{s:s, s:s, s:{s:n}, s:{s:o}}", "apiVersion", av, "kind",
                                  "SelfSubjectReview", "metadata", "creationTimestamp", "status",
                                  "userInfo", info), NULL);
}

/* ---- start-up and health ---------------------------------------------------- */

#define NOT_READY_RETRY_AFTER 5  /* seconds, as kube-apiserver's start-up 503 */
#define HEALTH_MAX_EXCLUDE 16

void agg_api_advance(agg_api_t *api, agg_stage_t stage)
{
    atomic_store_explicit(&api->stage, (int)stage, memory_order_release);
}

/* Acquire: a handler that sees AGG_READY sees reg, store and authz. */
static agg_stage_t stage_of(const agg_api_t *api)
{
    return (agg_stage_t)atomic_load_explicit(&api->stage, memory_order_acquire);
}

/* A health check: NULL when it passes, else why not. */
typedef struct health_check {
    const char *name;
    int livez;                   /* part of /livez too */
    const char *(*failing)(const agg_api_t *api);
} health_check_t;

static const char *check_ping(const agg_api_t *api)
{
    (void)api;
    return NULL;
}

static const char *check_storage(const agg_api_t *api)
{
    return stage_of(api) >= AGG_STORAGE_OPEN ? NULL : "storage is not open yet";
}

static const char *check_authorizer(const agg_api_t *api)
{
    return stage_of(api) >= AGG_READY ? NULL : "the authorizer's index is not built yet";
}

/* kube-apiserver's checks are ping, log, etcd, informer-sync and its
 * post-start hooks; ours are what start-up waits for. /livez has ping
 * alone (the process answers); /readyz and /healthz, the old combined
 * check, have them all. */
static const health_check_t health_checks[] = {
    {"ping", 1, check_ping},
    {"storage", 0, check_storage},
    {"authorizer-index", 0, check_authorizer},
    {NULL, 0, NULL},
};

/* "livez", "readyz" or "healthz" when path is that endpoint (*check NULL)
 * or one check under it (*check its name); NULL for any other path. */
static const char *health_endpoint(const char *path, const char **check)
{
    static const char *const roots[] = {"livez", "readyz", "healthz", NULL};
    for (size_t i = 0; path[0] == '/' && roots[i]; i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(path + 1, roots[i], n))
            continue;
        const char *rest = path + 1 + n;
        if (!*rest || (rest[0] == '/' && rest[1] && !strchr(rest + 1, '/'))) {
            *check = *rest ? rest + 1 : NULL;
            return roots[i];
        }
    }
    return NULL;
}

static int is_health(const char *path)
{
    const char *check;
    return health_endpoint(path, &check) != NULL;
}

typedef struct health_query {
    int verbose;
    size_t nexclude;
    const char *exclude[HEALTH_MAX_EXCLUDE];
    int matched[HEALTH_MAX_EXCLUDE];
} health_query_t;

static void health_param(void *arg, const char *name, const char *value)
{
    health_query_t *q = arg;
    if (!strcmp(name, "verbose"))
        q->verbose = 1;
    else if (!strcmp(name, "exclude") && q->nexclude < HEALTH_MAX_EXCLUDE)
        q->exclude[q->nexclude++] = value;
}

static int health_excluded(health_query_t *q, const char *name)
{
    int hit = 0;
    for (size_t i = 0; i < q->nexclude; i++)
        if (!strcmp(q->exclude[i], name))
            hit = q->matched[i] = 1;
    return hit;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * /livez, /readyz, /healthz as kube-apiserver writes them (healthz.go):
 * "ok" when every check passes, or each check on a line with ?verbose;
 * when one fails, HTTP 500 with every line ("[-]<name> failed: reason
 * withheld", the reason being kept off the public endpoint) and "<endpoint>
 * check failed". ?exclude=<name> skips a check. /<endpoint>/<name> runs one
 * check and says why it fails.
 */
static void health(agg_api_t *api, agg_req_t *req, const char *endpoint, const char *one)
{
    static const char ctype[] = "text/plain; charset=utf-8";
    int livez = !strcmp(endpoint, "livez");
    agg_add_header(req, "X-Content-Type-Options", "nosniff");
    if (one) {
        for (const health_check_t *c = health_checks; c->name; c++) {
            if (strcmp(c->name, one) || (livez && !c->livez))
                continue;
            const char *why = c->failing(api);
            char msg[256];
            snprintf(msg, sizeof msg, "internal server error: %s\n", why ? why : "");
            agg_respond_str(req, why ? 500 : 200, ctype, why ? msg : "ok");
            return;
        }
        agg_respond_str(req, 404, ctype, "404 page not found\n");
        return;
    }
    health_query_t q;
    memset(&q, 0, sizeof q);
    agg_req_queries(req, health_param, &q);
    sbuf_t b = SBUF_INIT;
    int failed = 0;
    for (const health_check_t *c = health_checks; c->name; c++) {
        if (livez && !c->livez)
            continue;
        sbuf_puts(&b, "[");
        if (health_excluded(&q, c->name)) {
            sbuf_puts(&b, "+]");
            sbuf_puts(&b, c->name);
            sbuf_puts(&b, " excluded: ok\n");
        } else if (c->failing(api)) {
            failed = 1;
            sbuf_puts(&b, "-]");
            sbuf_puts(&b, c->name);
            sbuf_puts(&b, " failed: reason withheld\n");
        } else {
            sbuf_puts(&b, "+]");
            sbuf_puts(&b, c->name);
            sbuf_puts(&b, " ok\n");
        }
    }
    /* Names that match no check, sorted and once each, as kube's set. */
    const char *unmatched[HEALTH_MAX_EXCLUDE] = {NULL};
    size_t nu = 0;
    for (size_t i = 0; i < q.nexclude; i++)
        if (!q.matched[i])
            unmatched[nu++] = q.exclude[i];
    qsort(unmatched, nu, sizeof *unmatched, cmp_str);
    for (size_t i = 0; i < nu; i++) {
        if (i && !strcmp(unmatched[i], unmatched[i - 1]))
            continue;
        sbuf_puts(&b, i ? ",\"" : "warn: some health checks cannot be excluded: no matches for \"");
        sbuf_puts(&b, unmatched[i]);
        sbuf_puts(&b, "\"");
    }
    if (nu)
        sbuf_puts(&b, "\n");
    sbuf_puts(&b, endpoint);
    sbuf_puts(&b, failed ? " check failed\n" : " check passed\n");
    if (b.oom) {
        sbuf_free(&b);
        agg_respond_str(req, 500, ctype, "out of memory\n");
    } else if (!failed && !q.verbose) {
        sbuf_free(&b);
        agg_respond_str(req, 200, ctype, "ok");
    } else {
        agg_respond(req, failed ? 500 : 200, ctype, b.p, b.len);
    }
}

/* Any request but health and /version before start-up is done: 503 and
 * a Status with Retry-After, as kube-apiserver answers before its paths
 * are all installed. */
static void not_ready(agg_req_t *req, agg_stage_t stage)
{
    err_t e;
    err_clear(&e);
    err_set(&e, ERR_UNAVAILABLE, "the server is starting (%s), please try again",
            stage == AGG_STARTING ? "storage is not open yet"
                                  : "the authorizer's index is not built yet");
    json_t *st = reg_status(&e, NULL, NULL);
    json_object_set_new(st, "details", json_pack("{s:i}", "retryAfterSeconds",
                                                 NOT_READY_RETRY_AFTER));
    char ra[16];
    snprintf(ra, sizeof ra, "%d", NOT_READY_RETRY_AFTER);
    agg_add_header(req, "Retry-After", ra);
    send_json(req, 503, st, NULL);
}

/*
 * A collection request whose label selector requires one of the scope
 * labels (scope.theriseunion.io/workspace=W, ...) is placed at that scope
 * by the authorizer (IAMRoleBindings: authz/eval.c). The selector's values
 * go into at (borrowed from *sel, the caller frees it after the request).
 * Such a list of bindings that names no cluster is placed in this
 * server's: the selector the registry applies then names it too
 * (*narrowed, the caller's), so what is listed is exactly what was
 * authorized, never another cluster's bindings of the same name. A
 * selector that does not parse is left for the registry to refuse.
 * Returns 0, or ERR_NOMEM.
 */
static int scope_selector(agg_api_t *api, route_t *rt, authz_attrs_t *at, sel_t **sel,
                          char **narrowed)
{
    static const char *const keys[] = {AUTHZ_LABEL_PREFIX "workspace", AUTHZ_LABEL_PREFIX "nodegroup",
                                       AUTHZ_LABEL_PREFIX "namespace", AUTHZ_LABEL_PREFIX "node",
                                       AUTHZ_LABEL_PREFIX "cluster", NULL};
    err_t e;
    err_clear(&e);
    const char *ls = rt->label_selector;
    if (!ls || !*ls || strlen(ls) > 4096 || sel_parse_labels(ls, sel, &e))
        return 0;
    int named = 0;
    for (size_t i = 0; keys[i]; i++) {
        const char *v = sel_required_value(*sel, keys[i]);
        authz_attrs_scope_label(at, keys[i], v);
        named |= v != NULL;
    }
    if (!named || at->sel_cluster || rt->k != reg_find("iam.theriseunion.io", REG_VERSION,
                                                        "iamrolebindings"))
        return 0;
    size_t n = strlen(ls) + strlen(api->cluster_name) + sizeof AUTHZ_LABEL_PREFIX + 16;
    if (!(*narrowed = mem_alloc(n)))
        return ERR_NOMEM;
    snprintf(*narrowed, n, "%s," AUTHZ_LABEL_PREFIX "cluster=%s", ls, api->cluster_name);
    rt->label_selector = *narrowed;
    return 0;
}

static void route(agg_api_t *api, agg_req_t *req, authz_user_t *user, audit_rec_t *rec)
{
    const char *path = agg_req_path(req);
    const char *method = agg_req_method(req);
    agg_accept_t acc;
    agg_parse_accept(agg_req_header(req, "Accept"), &acc);
    agg_add_header(req, "Cache-Control", "no-cache, private");

    /* Health first: probes carry no credentials. */
    const char *check;
    const char *endpoint = health_endpoint(path, &check);
    if (endpoint) {
        health(api, req, endpoint, check);
        return;
    }
    if (!strcmp(path, "/version")) {
        if (strcmp(agg_req_method(req), "GET") && strcmp(agg_req_method(req), "HEAD"))
            send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                      "the requested resource", NULL);
        else
            version_info(req);
        return;
    }
    /* Nothing below may run before reg, store and authz are set. */
    agg_stage_t stage = stage_of(api);
    if (stage != AGG_READY) {
        not_ready(req, stage);
        return;
    }

    err_t err;
    err_clear(&err);
    if (agg_authenticate(api->authn, req, user, &err)) {
        send_error(req, &err, NULL, NULL);
        return;
    }
    rec->user = user;

    char buf[2048];
    char *seg[12];
    int n = split_path(path, buf, sizeof buf, seg, 12);
    route_t rt = {0};
    authz_attrs_t at = {.verb = "get", .path = path};

    /* Resource paths: /apis/<g>/<v>/[namespaces/<ns>/]<res>[/<name>[/<sub>]] */
    if (n >= 4 && !strcmp(seg[0], "apis") && is_group(seg[1]) && !strcmp(seg[2], REG_VERSION)) {
        int i = 3;
        if (n >= 6 && !strcmp(seg[3], "namespaces")) {
            rt.ns = seg[4];
            i = 5;
        }
        rt.k = reg_find(seg[1], seg[2], seg[i]);
        if (!rt.k || (rt.ns && !rt.k->namespaced) || n - i > 3) {
            send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
            return;
        }
        rt.name = n > i + 1 ? seg[i + 1] : NULL;
        rt.sub = n > i + 2 ? seg[i + 2] : NULL;
        rt.user = user;
        rt.label_selector = agg_req_query(req, "labelSelector");
        at = (authz_attrs_t){.verb = verb_of(method, &rt, qbool(req, "watch")),
                             .resource_request = 1, .path = path, .api_group = seg[1],
                             .api_version = seg[2], .resource = rt.k->resource,
                             .subresource = rt.sub, .namespace_ = rt.ns, .name = rt.name};
        sel_t *sel = NULL;
        char *narrowed = NULL;
        if (!rt.name && scope_selector(api, &rt, &at, &sel, &narrowed)) {
            send_code(req, ERR_NOMEM, NULL, NULL);
        } else if (authorize(api, req, user, &at, rec)) {
            if (!acc.json_ok && !acc.table)
                send_code(req, ERR_NOT_ACCEPTABLE, "only the following media types are accepted: "
                          "application/json, application/json;as=Table;v=v1;g=meta.k8s.io", NULL);
            else
                do_rest(api, req, &rt, &acc);
        }
        sel_free(sel);
        mem_free(narrowed);
        return;
    }

    /* kube-apiserver's authorization webhook: /authorize for this
     * cluster, /clusters/{name}/authorize for a member cluster. */
    if ((n == 1 && !strcmp(seg[0], "authorize")) ||
        (n == 3 && !strcmp(seg[0], "clusters") && !strcmp(seg[2], "authorize"))) {
        webhook(api, req, user, n == 3 ? seg[1] : NULL, rec);
        return;
    }
    if (n == 1 && !strcmp(seg[0], "metrics")) {
        at.verb = "get";
        if (!authorize(api, req, user, &at, rec))
            return;
        char *text = NULL;
        size_t len = 0;
        if (authz_metrics(api->authz, &text, &len) ||
            (api->store && store_metrics(api->store, &text, &len))) {
            mem_free(text);
            send_code(req, ERR_NOMEM, NULL, NULL);
            return;
        }
        agg_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        return;
    }

    /* kubectl auth whoami: authentication.k8s.io SelfSubjectReview. */
    if (n == 4 && !strcmp(seg[0], "apis") && !strcmp(seg[1], "authentication.k8s.io") &&
        !strcmp(seg[3], "selfsubjectreviews") &&
        (!strcmp(seg[2], "v1") || !strcmp(seg[2], "v1beta1") || !strcmp(seg[2], "v1alpha1"))) {
        self_subject_review(req, user, seg[2]);
        return;
    }

    /* Everything else is read-only discovery. */
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on the "
                  "requested resource", NULL);
        return;
    }
    if (!authorize(api, req, user, &at, rec))
        return;
    if (n == 1 && !strcmp(seg[0], "api")) {
        if (acc.discovery) {
            json_t *d = reg_discovery_v2(acc.discovery_version);
            json_object_set_new(d, "items", json_array());  /* no core group here */
            send_json(req, 200, d, strstr(acc.discovery_version, "v2beta1") ? DISCOVERY_V2BETA1 : DISCOVERY_V2);
        } else {
            send_json(req, 200, json_pack("{s:s, s:[], s:[{s:s, s:s}]}", "kind", "APIVersions",
                                          "versions", "serverAddressByClientCIDRs", "clientCIDR",
                                          "0.0.0.0/0", "serverAddress", ""), NULL);
        }
        return;
    }
    if (n == 1 && !strcmp(seg[0], "apis")) {
        if (acc.discovery) {
            const char *ct = strstr(acc.discovery_version, "v2beta1") ? DISCOVERY_V2BETA1 : DISCOVERY_V2;
            send_json(req, 200, reg_discovery_v2(acc.discovery_version), ct);
        } else if (acc.json_ok) {
            send_json(req, 200, reg_api_group_list(), NULL);
        } else {
            send_code(req, ERR_NOT_ACCEPTABLE, "only the following media types are accepted: "
                      "application/json, " DISCOVERY_V2 ", " DISCOVERY_V2BETA1, NULL);
        }
        return;
    }
    if (n == 2 && !strcmp(seg[0], "apis") && is_group(seg[1])) {
        send_json(req, 200, reg_api_group(seg[1]), NULL);
        return;
    }
    if (n == 3 && !strcmp(seg[0], "apis") && is_group(seg[1]) && !strcmp(seg[2], REG_VERSION)) {
        send_json(req, 200, reg_resource_list(seg[1]), NULL);
        return;
    }
    if (n == 2 && !strcmp(seg[0], "openapi") && !strcmp(seg[1], "v2")) {
        /* kubectl's client-side validation reads gnostic's protobuf form. */
        const char *pb_type = opb_accepts_v2(agg_req_header(req, "Accept"));
        if (pb_type) {
            json_t *doc = reg_openapi_v2();
            unsigned char *pb = NULL;
            size_t len = 0;
            err_t e;
            err_clear(&e);
            int rc = doc ? opb_encode_v2(doc, &pb, &len, &e) : err_set(&e, ERR_NOMEM, NULL);
            json_decref(doc);
            if (rc)
                send_error(req, &e, NULL, NULL);
            else
                agg_respond(req, 200, pb_type, (char *)pb, len);
            return;
        }
        send_json(req, 200, reg_openapi_v2(), NULL);
        return;
    }
    if (n == 2 && !strcmp(seg[0], "openapi") && !strcmp(seg[1], "v3")) {
        json_t *paths = json_object();
        for (size_t i = 0; reg_groups[i]; i++) {
            char key[160], url[256];
            snprintf(key, sizeof key, "apis/%s/%s", reg_groups[i], REG_VERSION);
            snprintf(url, sizeof url, "/openapi/v3/apis/%s/%s?hash=%s", reg_groups[i],
                     REG_VERSION, "v1");
            json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url));
        }
        send_json(req, 200, json_pack("{s:o}", "paths", paths), NULL);
        return;
    }
    if (n == 5 && !strcmp(seg[0], "openapi") && !strcmp(seg[1], "v3") &&
        !strcmp(seg[2], "apis") && is_group(seg[3]) && !strcmp(seg[4], REG_VERSION)) {
        send_json(req, 200, reg_openapi_v3(seg[3]), NULL);
        return;
    }
    send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
}

static void rfc3339_micro(const struct timespec *ts, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%.19s.%06dZ", base, (int)(ts->tv_nsec / 1000));
}

/* kube-apiserver's audit Event at level Metadata (audit.k8s.io/v1). */
static void audit(agg_api_t *api, agg_req_t *req, const audit_rec_t *rec, const char *id,
                  const struct timespec *received)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char t0[40], t1[40];
    rfc3339_micro(received, t0, sizeof t0);
    rfc3339_micro(&now, t1, sizeof t1);
    const char *verb = rec->decided ? rec->verb : agg_req_method(req);
    /* What comes from the request (path, headers, names) need not be
     * UTF-8; such bytes are written as U+FFFD, as kube-apiserver's are. */
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:[s], s:{s:{}, s:i}, s:s, s:s}",
                           "kind", "Event", "apiVersion", "audit.k8s.io/v1", "level", "Metadata",
                           "auditID", id, "stage", "ResponseComplete", "requestURI",
                           jenc_string_lossy(agg_req_path(req)), "verb", verb ? verb : "", "sourceIPs",
                           agg_req_remote(req), "responseStatus", "metadata", "code",
                           agg_req_status(req), "requestReceivedTimestamp", t0,
                           "stageTimestamp", t1);
    const char *ua = agg_req_header(req, "User-Agent");
    if (ua)
        json_object_set_new(ev, "userAgent", jenc_string_lossy(ua));
    if (rec->user) {
        json_t *groups = json_array();
        for (size_t i = 0; i < rec->user->ngroups; i++)
            json_array_append_new(groups, jenc_string_lossy(authz_user_group(rec->user, i)));
        json_object_set_new(ev, "user", json_pack("{s:o, s:o}", "username",
                                                  jenc_string_lossy(rec->user->name), "groups",
                                                  groups));
    }
    if (rec->decided && rec->resource_request) {
        json_t *ref = json_pack("{s:o, s:o, s:o}", "resource", jenc_string_lossy(rec->resource),
                                "apiGroup", jenc_string_lossy(rec->group), "apiVersion",
                                jenc_string_lossy(rec->version));
        if (*rec->namespace_)
            json_object_set_new(ref, "namespace", jenc_string_lossy(rec->namespace_));
        if (*rec->name)
            json_object_set_new(ref, "name", jenc_string_lossy(rec->name));
        if (*rec->subresource)
            json_object_set_new(ref, "subresource", jenc_string_lossy(rec->subresource));
        json_object_set_new(ev, "objectRef", ref);
    }
    if (rec->decided)
        json_object_set_new(ev, "annotations",
                            json_pack("{s:s, s:s}", "authorization.k8s.io/decision",
                                      rec->allowed ? "allow" : "forbid",
                                      "authorization.k8s.io/reason", rec->reason));
    agg_audit_write(api->audit, ev);
    json_decref(ev);
}

void agg_handle(void *arg, agg_req_t *req)
{
    agg_api_t *api = arg;
    const char *path = agg_req_path(req);
    struct timespec received;
    clock_gettime(CLOCK_REALTIME, &received);
    /* --max-requests-inflight, as kube's filter: long-running requests
     * (watches) and health probes are not counted. */
    int exempt = is_health(path) || qbool(req, "watch");
    int counted = 0;
    if (!exempt && api->max_inflight) {
        if (atomic_fetch_add(&api->inflight, 1) >= api->max_inflight) {
            atomic_fetch_sub(&api->inflight, 1);
            agg_add_header(req, "Retry-After", "1");
            send_code(req, ERR_TOO_MANY_REQUESTS, "Too many requests, please try again later.", NULL);
            return;
        }
        counted = 1;
    }
    char id[37];
    crypto_uuid4(id);
    agg_add_header(req, "Audit-Id", id);
    authz_user_t user;
    audit_rec_t rec;
    rec.user = NULL;
    rec.decided = 0;
    route(api, req, &user, &rec);
    if (counted)
        atomic_fetch_sub(&api->inflight, 1);
    if (api->audit && !is_health(path))
        audit(api, req, &rec, id, &received);
}
