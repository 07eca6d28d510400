/*
 * Start-up stages and the probes: /livez, /readyz, /healthz in kube's format. See server_internal.h.
 */
#include "server_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/sbuf.h"

#define NOT_READY_RETRY_AFTER 5  /* seconds, as kube-apiserver's start-up 503 */
#define HEALTH_MAX_EXCLUDE 16

void agg_api_advance(agg_api_t *api, agg_stage_t stage)
{
    atomic_store_explicit(&api->stage, (int)stage, memory_order_release);
}

/* Acquire: a handler that sees AGG_READY sees reg, store and authz. */
agg_stage_t agg__stage_of(const agg_api_t *api)
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
    return agg__stage_of(api) >= AGG_STORAGE_OPEN ? NULL : "storage is not open yet";
}

static const char *check_authorizer(const agg_api_t *api)
{
    return agg__stage_of(api) >= AGG_READY ? NULL : "the authorizer's index is not built yet";
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
const char *agg__health_endpoint(const char *path, const char **check)
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

int agg__is_health(const char *path)
{
    const char *check;
    return agg__health_endpoint(path, &check) != NULL;
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
void agg__health(agg_api_t *api, agg_req_t *req, const char *endpoint, const char *one)
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
void agg__not_ready(agg_req_t *req, agg_stage_t stage)
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
    agg__send_json(req, 503, st, NULL);
}

