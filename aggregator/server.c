/*
 * Routing and the handlers behind it. See server.h.
 */
#include "server_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../apimachinery/openapi_pb.h"
#include "../apimachinery/selector.h"
#include "../lib/crypto.h"
#include "../lib/mem.h"

#define DISCOVERY_V2 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define DISCOVERY_V2BETA1 "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

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

static void copy_or_empty(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static int authorize(agg_api_t *api, agg_req_t *req, const authz_user_t *u, const authz_attrs_t *a,
                     agg_audit_rec_t *rec)
{
    char reason[1024];
    authz_decision_t d = authz_authorize(api->authz, u, a, reason, sizeof reason);
    /* The request's attributes: the metrics' labels, and the audit event. */
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
    if (api->audit)
        snprintf(rec->reason, sizeof rec->reason, "%.500s", reason);
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
    agg__send_json(req, 403, st, NULL);
    return 0;
}

static void version_info(agg_req_t *req)
{
    agg__send_json(req, 200,
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
                    agg_audit_rec_t *rec)
{
    if (strcmp(agg_req_method(req), "POST")) {
        agg__send_code(req, ERR_METHOD_NOT_ALLOWED, "the authorization webhook only accepts POST", NULL);
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
        agg__send_error(req, &err, NULL, NULL);
        return;
    }
    agg_respond(req, 200, JSON_CT, out, out_len);
}

/* The user as the server sees it: what `kubectl auth whoami` prints. */
static void self_subject_review(agg_req_t *req, const authz_user_t *u, const char *version)
{
    if (strcmp(agg_req_method(req), "POST")) {
        agg__send_code(req, ERR_METHOD_NOT_ALLOWED, "only create is allowed on selfsubjectreviews", NULL);
        return;
    }
    if (!authz_user_in_group(u, "system:authenticated")) {
        agg__send_code(req, ERR_FORBIDDEN, "selfsubjectreviews.authentication.k8s.io is forbidden: "
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
    agg__send_json(req, 201, json_pack("{s:s, s:s, s:{s:n}, s:{s:o}}", "apiVersion", av, "kind",
                                  "SelfSubjectReview", "metadata", "creationTimestamp", "status",
                                  "userInfo", info), NULL);
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

/* ---- the non-resource paths ------------------------------------------------------ */

/* What a handler of the route table gets: the request, its user, its
 * accepted representations, its non-resource attributes, the path's
 * segments. */
typedef struct route_ctx {
    agg_api_t *api;
    agg_req_t *req;
    const authz_user_t *user;
    agg_audit_rec_t *rec;
    const agg_accept_t *acc;
    authz_attrs_t *at;
    char **seg;
    int n;
} route_ctx_t;

typedef struct route_entry {
    /* Segments separated by '/': a literal, "{group}" (one of ours),
     * "{version}" (ours), "{authn}" (an authentication.k8s.io version
     * kubectl uses), or "*" (anything). */
    const char *pattern;
    int read_only;               /* GET and HEAD only: 405 otherwise */
    int authorize;               /* authorized as a non-resource request */
    void (*fn)(route_ctx_t *c);
} route_entry_t;

static int route_segment(const char *pat, size_t len, const char *seg)
{
    if (len == 1 && *pat == '*')
        return 1;
    if (len == 7 && !strncmp(pat, "{group}", 7))
        return is_group(seg);
    if (len == 9 && !strncmp(pat, "{version}", 9))
        return !strcmp(seg, REG_VERSION);
    if (len == 7 && !strncmp(pat, "{authn}", 7))
        return !strcmp(seg, "v1") || !strcmp(seg, "v1beta1") || !strcmp(seg, "v1alpha1");
    return strlen(seg) == len && !strncmp(pat, seg, len);
}

static int route_match(const char *pattern, char **seg, int n)
{
    int i = 0;
    for (const char *p = pattern; *p; i++) {
        size_t len = strcspn(p, "/");
        if (i >= n || !route_segment(p, len, seg[i]))
            return 0;
        p += len + (p[len] == '/');
    }
    return i == n;
}

/* kube-apiserver's authorization webhook: /authorize for this cluster,
 * /clusters/{name}/authorize for a member cluster. */
static void h_webhook(route_ctx_t *c)
{
    webhook(c->api, c->req, c->user, c->n == 3 ? c->seg[1] : NULL, c->rec);
}

static void h_metrics(route_ctx_t *c)
{
    char *text = NULL;
    size_t len = 0;
    if (authz_metrics(c->api->authz, &text, &len) ||
        (c->api->store && store_metrics(c->api->store, &text, &len)) ||
        (c->api->ctrl && ctrl_mgr_metrics(c->api->ctrl, &text, &len)) ||
        agg_metrics_render(c->api->metrics, c->api->store, &text, &len)) {
        mem_free(text);
        agg__send_code(c->req, ERR_NOMEM, NULL, NULL);
        return;
    }
    agg_respond(c->req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

/* kubectl auth whoami: authentication.k8s.io SelfSubjectReview. */
static void h_self_subject_review(route_ctx_t *c)
{
    self_subject_review(c->req, c->user, c->seg[2]);
}

static const char *discovery_type(const agg_accept_t *acc)
{
    return strstr(acc->discovery_version, "v2beta1") ? DISCOVERY_V2BETA1 : DISCOVERY_V2;
}

/* The legacy group at /api: core v1 is advertised with no resources.
 * This server serves none of the core group, but kubectl maps the "v1
 * List" of a multi-object file (kubectl get -o yaml's output) only when
 * discovery shows core v1, as kube-apiserver's always does; so a backup
 * made with kubectl get applies back the same standalone as behind
 * kube-apiserver (whose own /api answers there). */
static void h_api(route_ctx_t *c)
{
    if (c->acc->discovery) {
        json_t *d = reg_discovery_v2(c->acc->discovery_version);
        /* Only the core group here; a NULL answer is out of memory. */
        if (d && json_object_set_new(d, "items",
                                     json_pack("[{s:{s:s}, s:[{s:s, s:[], s:s}]}]", "metadata",
                                               "name", "", "versions", "version", "v1",
                                               "resources", "freshness", "Current"))) {
            json_decref(d);
            d = NULL;
        }
        agg__send_json(c->req, 200, d, discovery_type(c->acc));
        return;
    }
    agg__send_json(c->req, 200, json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions",
                                          "versions", "v1", "serverAddressByClientCIDRs",
                                          "clientCIDR", "0.0.0.0/0", "serverAddress", ""), NULL);
}

/* /api/v1: core v1 with no resources (see h_api). */
static void h_api_v1(route_ctx_t *c)
{
    agg__send_json(c->req, 200, json_pack("{s:s, s:s, s:s, s:[]}", "kind", "APIResourceList",
                                          "apiVersion", "v1", "groupVersion", "v1", "resources"),
                   NULL);
}

static void h_apis(route_ctx_t *c)
{
    if (c->acc->discovery)
        agg__send_json(c->req, 200, reg_discovery_v2(c->acc->discovery_version),
                       discovery_type(c->acc));
    else if (c->acc->json_ok)
        agg__send_json(c->req, 200, reg_api_group_list(), NULL);
    else
        agg__send_code(c->req, ERR_NOT_ACCEPTABLE, "only the following media types are "
                       "accepted: application/json, " DISCOVERY_V2 ", " DISCOVERY_V2BETA1, NULL);
}

static void h_group(route_ctx_t *c)
{
    agg__send_json(c->req, 200, reg_api_group(c->seg[1]), NULL);
}

static void h_resources(route_ctx_t *c)
{
    agg__send_json(c->req, 200, reg_resource_list(c->seg[1]), NULL);
}

static void h_openapi_v2(route_ctx_t *c)
{
    /* kubectl's client-side validation reads gnostic's protobuf form. */
    const char *pb_type = opb_accepts_v2(agg_req_header(c->req, "Accept"));
    if (!pb_type) {
        agg__send_json(c->req, 200, reg_openapi_v2(), NULL);
        return;
    }
    json_t *doc = reg_openapi_v2();
    unsigned char *pb = NULL;
    size_t len = 0;
    err_t e;
    err_clear(&e);
    int rc = doc ? opb_encode_v2(doc, &pb, &len, &e) : err_set(&e, ERR_NOMEM, NULL);
    json_decref(doc);
    if (rc)
        agg__send_error(c->req, &e, NULL, NULL);
    else
        agg_respond(c->req, 200, pb_type, (char *)pb, len);
}

static void h_openapi_v3(route_ctx_t *c)
{
    json_t *paths = json_object();
    for (size_t i = 0; paths && reg_groups[i]; i++) {
        char key[160], url[256];
        snprintf(key, sizeof key, "apis/%s/%s", reg_groups[i], REG_VERSION);
        snprintf(url, sizeof url, "/openapi/v3/apis/%s/%s?hash=%s", reg_groups[i], REG_VERSION,
                 "v1");
        if (json_object_set_new(paths, key, json_pack("{s:s}", "serverRelativeURL", url))) {
            json_decref(paths);
            paths = NULL;
        }
    }
    /* A NULL paths fails the pack: out of memory, never a partial list. */
    agg__send_json(c->req, 200, json_pack("{s:o}", "paths", paths), NULL);
}

static void h_openapi_v3_group(route_ctx_t *c)
{
    agg__send_json(c->req, 200, reg_openapi_v3(c->seg[3]), NULL);
}

static const route_entry_t routes[] = {
    {"authorize", 0, 0, h_webhook},
    {"clusters/*/authorize", 0, 0, h_webhook},
    {"metrics", 0, 1, h_metrics},
    {"apis/authentication.k8s.io/{authn}/selfsubjectreviews", 0, 0, h_self_subject_review},
    {"api", 1, 1, h_api},
    {"api/v1", 1, 1, h_api_v1},
    {"apis", 1, 1, h_apis},
    {"apis/{group}", 1, 1, h_group},
    {"apis/{group}/{version}", 1, 1, h_resources},
    {"openapi/v2", 1, 1, h_openapi_v2},
    {"openapi/v3", 1, 1, h_openapi_v3},
    {"openapi/v3/apis/{group}/{version}", 1, 1, h_openapi_v3_group},
    {NULL, 0, 0, NULL},
};

static void route(agg_api_t *api, agg_req_t *req, authz_user_t *user, agg_audit_rec_t *rec)
{
    const char *path = agg_req_path(req);
    const char *method = agg_req_method(req);
    agg_accept_t acc;
    agg_parse_accept(agg_req_header(req, "Accept"), &acc);
    agg_add_header(req, "Cache-Control", "no-cache, private");

    /* Health first: probes carry no credentials. */
    const char *check;
    const char *endpoint = agg__health_endpoint(path, &check);
    if (endpoint) {
        agg__health(api, req, endpoint, check);
        return;
    }
    if (!strcmp(path, "/version")) {
        if (strcmp(agg_req_method(req), "GET") && strcmp(agg_req_method(req), "HEAD"))
            agg__send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                      "the requested resource", NULL);
        else
            version_info(req);
        return;
    }
    /* Nothing below may run before reg, store and authz are set. */
    agg_stage_t stage = agg__stage_of(api);
    if (stage != AGG_READY) {
        agg__not_ready(req, stage);
        return;
    }

    err_t err;
    err_clear(&err);
    if (agg_authenticate(api->authn, req, user, &err)) {
        agg__send_error(req, &err, NULL, NULL);
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
            agg__send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
            return;
        }
        rt.name = n > i + 1 ? seg[i + 1] : NULL;
        rt.sub = n > i + 2 ? seg[i + 2] : NULL;
        rt.user = user;
        rt.label_selector = agg_req_query(req, "labelSelector");
        at = (authz_attrs_t){.verb = verb_of(method, &rt, agg__qbool(req, "watch")),
                             .resource_request = 1, .path = path, .api_group = seg[1],
                             .api_version = seg[2], .resource = rt.k->resource,
                             .subresource = rt.sub, .namespace_ = rt.ns, .name = rt.name};
        sel_t *sel = NULL;
        char *narrowed = NULL;
        if (!rt.name && scope_selector(api, &rt, &at, &sel, &narrowed)) {
            agg__send_code(req, ERR_NOMEM, NULL, NULL);
        } else if (authorize(api, req, user, &at, rec)) {
            if (!acc.json_ok && !acc.table)
                agg__send_code(req, ERR_NOT_ACCEPTABLE, "only the following media types are accepted: "
                          "application/json, application/json;as=Table;v=v1;g=meta.k8s.io", NULL);
            else
                agg__rest(api, req, &rt, &acc);
        }
        sel_free(sel);
        mem_free(narrowed);
        return;
    }

    /* The other paths, by the table below. */
    route_ctx_t ctx = {.api = api, .req = req, .user = user, .rec = rec, .acc = &acc,
                       .at = &at, .seg = seg, .n = n};
    for (const route_entry_t *e = routes; e->pattern; e++) {
        if (!route_match(e->pattern, seg, n))
            continue;
        if (e->read_only && strcmp(method, "GET") && strcmp(method, "HEAD")) {
            agg__send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                           "the requested resource", NULL);
            return;
        }
        /* Non-resource paths are authorized by path ("get" for reads, as
         * kube's RequestInfo); the webhook and SelfSubjectReview answer
         * any authenticated caller, as kube-apiserver's do. */
        if (e->authorize && !authorize(api, req, user, &at, rec))
            return;
        e->fn(&ctx);
        return;
    }
    agg__send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
}

/* The verb kube-apiserver's metrics report for a request: the method,
 * a read of a collection LIST (WATCH when watching), a server-side apply
 * APPLY. */
static const char *reported_verb(agg_req_t *req, const agg_audit_rec_t *rec)
{
    const char *m = agg_req_method(req);
    if (rec->decided && rec->resource_request) {
        if (!strcmp(rec->verb, "watch"))
            return "WATCH";
        if (!strcmp(rec->verb, "list"))
            return "LIST";
    }
    const char *ct = agg_req_header(req, "Content-Type");
    if (!strcmp(m, "PATCH") && ct && !strncmp(ct, "application/apply-patch", 23))
        return "APPLY";
    return m;
}

static void record(agg_api_t *api, agg_req_t *req, const agg_audit_rec_t *rec,
                   const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int res = rec->decided && rec->resource_request;
    const char *dry = agg_req_query(req, "dryRun");
    agg_metrics_req_t r = {
        .verb = reported_verb(req, rec), .dry_run = dry && *dry ? "All" : "",
        .group = res ? rec->group : "", .version = res ? rec->version : "",
        .resource = res ? rec->resource : "",
        .subresource = res ? rec->subresource : agg_req_path(req),
        .scope = !res ? "" : *rec->namespace_ ? "namespace" : *rec->name ? "resource" : "cluster",
        .code = agg_req_status(req),
        .seconds = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9,
        .response_bytes = agg_req_response_len(req)};
    agg_metrics_request(api->metrics, &r);
}

void agg_handle(void *arg, agg_req_t *req)
{
    agg_api_t *api = arg;
    const char *path = agg_req_path(req);
    struct timespec received, t0;
    clock_gettime(CLOCK_REALTIME, &received);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* --max-requests-inflight, as kube's filter: long-running requests
     * (watches) and health probes are not counted. */
    int exempt = agg__is_health(path) || agg__qbool(req, "watch");
    int mutating = strcmp(agg_req_method(req), "GET") && strcmp(agg_req_method(req), "HEAD");
    int counted = 0;
    if (!exempt && api->max_inflight) {
        if (atomic_fetch_add(&api->inflight, 1) >= api->max_inflight) {
            atomic_fetch_sub(&api->inflight, 1);
            agg_add_header(req, "Retry-After", "1");
            agg__send_code(req, ERR_TOO_MANY_REQUESTS, "Too many requests, please try again later.", NULL);
            return;
        }
        counted = 1;
    }
    if (!exempt)
        agg_metrics_inflight(api->metrics, mutating, 1);
    char id[37];
    crypto_uuid4(id);
    agg_add_header(req, "Audit-Id", id);
    authz_user_t user;
    agg_audit_rec_t rec;
    rec.user = NULL;
    rec.decided = 0;
    route(api, req, &user, &rec);
    if (counted)
        atomic_fetch_sub(&api->inflight, 1);
    if (!exempt)
        agg_metrics_inflight(api->metrics, mutating, -1);
    if (!agg__is_health(path))
        record(api, req, &rec, &t0);
    if (api->audit && !agg__is_health(path))
        agg_audit_request(api->audit, req, &rec, id, &received);
}
