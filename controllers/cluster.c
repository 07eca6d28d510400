/*
 * The Cluster controller: finds out whether each member cluster answers,
 * and runs a deleted cluster's cleanup before its finalizer goes.
 *
 * Status (through cond_set, so an unchanged world writes nothing)
 *   Initialized     True once the controller has seen the cluster.
 *   AgentAvailable  connection.type direct: GET <endpoint>/version (no
 *                   credentials needed) and GET <endpoint>/apis (needs
 *                   them), with spec.connection.kubeconfig's CA and
 *                   credentials or spec.connection.token, each request
 *                   bounded by PROBE_TIMEOUT_MS. True when both answer
 *                   200; False with reason ProbeFailed (unreachable, a
 *                   TLS failure, an unexpected answer), Unauthorized (401),
 *                   Forbidden (403) or InvalidConnection (a kubeconfig or
 *                   connection that cannot be used). connection.type
 *                   proxy: Unknown, AgentNotConnected, until an agent
 *                   connects (there is none yet).
 *   Ready           True when Initialized and AgentAvailable are; else
 *                   False (AgentUnavailable) or Unknown as AgentAvailable.
 *   kubernetesVersion  the /version answer's gitVersion; kept as last
 *                   seen while the cluster does not answer.
 * Messages name no time and no latency: a probe of an unchanged cluster
 * produces an equal status. The probe's duration goes to /metrics
 * (edge_cluster_probe_duration_seconds{cluster}, the last probe) with
 * edge_cluster_probes_total{cluster,result}.
 *
 * Probing again
 *   A healthy cluster is probed again every period (30 s) through
 *   ctrl_enqueue_after. One that fails returns CTRL_RETRY: the queue's
 *   per-key exponential backoff, tuned here to 1 s doubling up to 2 min,
 *   applies, and a change of the object still queues it at once. Four
 *   workers probe, each probe bounded by its timeouts, so a cluster that
 *   does not answer holds one worker for at most 2 * PROBE_TIMEOUT_MS and
 *   never delays the others; the queue never hands one cluster to two
 *   workers.
 *
 * Deletion
 *   A Cluster carries finalizer.cluster.theriseunion.io from its creation
 *   (registry/kind_cluster.c). Once its deletionTimestamp is set, the
 *   cleanup steps (cleanup_steps[], in order; each idempotent, as a step
 *   may run again after a failure of a later one) run, then the finalizer
 *   is removed with the object's resourceVersion as precondition, and the
 *   registry deletes the object when no finalizer is left. Every write is
 *   a spec or metadata write through the registry as this controller's
 *   user, with the object's resourceVersion as precondition, read again
 *   and redone on a conflict.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../apiservice/kubeclient.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "conditions.h"
#include "controllers.h"
#include "ctrl.h"

#define SCOPE_GROUP "scope.theriseunion.io"
#define CLUSTER_FINALIZER "finalizer.cluster.theriseunion.io"
#define RELEASED_NODES "scope.theriseunion.io/released-nodes"
#define PROBE_TIMEOUT_MS 3000
#define PROBE_PERIOD_MS 30000
#define WRITE_ATTEMPTS 8

/* ---- state: the probes' metrics ----------------------------------------------------- */

typedef struct probe_stat {
    char *name;
    double last_s;               /* the last probe's duration */
    uint64_t ok, failed;
} probe_stat_t;

typedef struct cl_state {
    pthread_mutex_t mu;          /* stats */
    probe_stat_t *stats;
    size_t n, cap;
    uint64_t period_ms;
} cl_state_t;

static int init(ctrl_t *c, void **state, err_t *err)
{
    (void)c;
    cl_state_t *st = mem_calloc(1, sizeof *st);
    if (!st)
        return err_set(err, ERR_NOMEM, "out of memory");
    pthread_mutex_init(&st->mu, NULL);
    st->period_ms = PROBE_PERIOD_MS;
#ifdef EDGE_TEST_HOOKS
    /* Test builds: a short period, so a test sees reprobes. */
    const char *v = getenv("EDGE_TEST_CLUSTER_PROBE_PERIOD_MS");
    if (v && strtoul(v, NULL, 10) > 0)
        st->period_ms = strtoul(v, NULL, 10);
#endif
    *state = st;
    return 0;
}

static void fini(void *state)
{
    cl_state_t *st = state;
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        mem_free(st->stats[i].name);
    mem_free(st->stats);
    pthread_mutex_destroy(&st->mu);
    mem_free(st);
}

/* Records a probe of name. A record lost to memory shortage only leaves
 * a metric out. */
static void stats_record(cl_state_t *st, const char *name, double secs, int ok)
{
    pthread_mutex_lock(&st->mu);
    probe_stat_t *s = NULL;
    for (size_t i = 0; i < st->n && !s; i++)
        if (!strcmp(st->stats[i].name, name))
            s = &st->stats[i];
    if (!s && st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        probe_stat_t *p = mem_realloc(st->stats, cap * sizeof *p);
        if (p) {
            st->stats = p;
            st->cap = cap;
        }
    }
    if (!s && st->n < st->cap) {
        char *copy = mem_strdup(name);
        if (copy) {
            s = &st->stats[st->n++];
            *s = (probe_stat_t){.name = copy};
        }
    }
    if (s) {
        s->last_s = secs;
        if (ok)
            s->ok++;
        else
            s->failed++;
    }
    pthread_mutex_unlock(&st->mu);
}

/* A cluster that went takes its series with it. */
static void stats_forget(cl_state_t *st, const char *name)
{
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) {
        if (!strcmp(st->stats[i].name, name)) {
            mem_free(st->stats[i].name);
            st->stats[i] = st->stats[--st->n];
            break;
        }
    }
    pthread_mutex_unlock(&st->mu);
}

static int metrics(ctrl_t *c, char **buf, size_t *len)
{
    cl_state_t *st = ctrl_state(c);
    sbuf_t b = {*buf, *len, *len, 0};
    char line[512];
    sbuf_puts(&b, "# HELP edge_cluster_probe_duration_seconds How long the last probe of a member "
                  "cluster's Kubernetes API took.\n"
                  "# TYPE edge_cluster_probe_duration_seconds gauge\n");
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) {
        snprintf(line, sizeof line, "edge_cluster_probe_duration_seconds{cluster=\"%s\"} %.6f\n",
                 st->stats[i].name, st->stats[i].last_s);
        sbuf_puts(&b, line);
    }
    sbuf_puts(&b, "# HELP edge_cluster_probes_total Probes of member clusters' Kubernetes APIs by "
                  "result.\n# TYPE edge_cluster_probes_total counter\n");
    for (size_t i = 0; i < st->n; i++) {
        snprintf(line, sizeof line,
                 "edge_cluster_probes_total{cluster=\"%s\",result=\"success\"} %llu\n"
                 "edge_cluster_probes_total{cluster=\"%s\",result=\"failure\"} %llu\n",
                 st->stats[i].name, (unsigned long long)st->stats[i].ok, st->stats[i].name,
                 (unsigned long long)st->stats[i].failed);
        sbuf_puts(&b, line);
    }
    pthread_mutex_unlock(&st->mu);
    *buf = b.p;
    *len = b.len;
    return b.oom ? ERR_NOMEM : 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This server's own cluster name: what an empty cluster field means. */
static const char *own_cluster(const ctrl_t *c)
{
    const char *n = ctrl_env(c)->cluster;
    return n && *n ? n : "host";
}

/* Whether a claim's cluster field names the cluster being deleted. */
static int names_cluster(const char *field, const char *name, int own)
{
    if (!field || !*field)
        return own;
    return !strcmp(field, name);
}


/* ---- probing -------------------------------------------------------------------------- */

typedef struct probe {
    const char *st;              /* AgentAvailable's status */
    const char *reason;
    char message[640];
    char version[128];           /* gitVersion, or "" */
    int probed;                  /* a request was sent: it counts as a probe */
    int retry;                   /* a failure worth trying again soon */
    double secs;
} probe_t;

static void verdict(probe_t *p, const char *st, const char *reason, int retry, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
static void verdict(probe_t *p, const char *st, const char *reason, int retry, const char *fmt,
                    ...)
{
    p->st = st;
    p->reason = reason;
    p->retry = retry;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
}

/* Turns one answer's HTTP status into a verdict; 1 when it was 200. */
static int answered(probe_t *p, const char *path, long code)
{
    char what[96];
    if (code == 200)
        return 1;
    snprintf(what, sizeof what, "GET %s: HTTP %ld", path, code);
    if (code == 401)
        verdict(p, "False", "Unauthorized", 1, "%s: the cluster refused the credentials", what);
    else if (code == 403)
        verdict(p, "False", "Forbidden", 1, "%s: the credentials may not read the API", what);
    else
        verdict(p, "False", "ProbeFailed", 1, "%s", what);
    return 0;
}

int ctrl_cluster_client(const json_t *conn, long timeout_ms, kc_t **out, err_t *err)
{
    const char *endpoint = str_at(conn, "kubernetesAPIEndpoint", NULL);
    const char *kubeconfig = str_at(conn, "kubeconfig", NULL);
    const char *token = str_at(conn, "token", NULL);
    kc_t *base = NULL;
    *out = NULL;
    err_t e;
    err_clear(&e);
    if (kubeconfig && *kubeconfig && kc_from_kubeconfig_base64(kubeconfig, &base, &e))
        return err_set(err, e.code, "spec.connection.kubeconfig: %s", e.message);
    kc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    if (base)
        kc_config_of(base, &cfg);
    if (endpoint && *endpoint)
        cfg.server = endpoint;
    /* A token pasted with its line end still works. */
    char tok[4096] = "";
    if (token && *token) {
        snprintf(tok, sizeof tok, "%s", token);
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
            tok[--n] = '\0';
        cfg.token = tok;
    }
    cfg.connect_timeout_ms = timeout_ms;
    cfg.timeout_ms = timeout_ms;
    int rc = 0;
    if (!cfg.server || !*cfg.server)
        rc = err_set(err, ERR_BAD_REQUEST, "spec.connection names no kubernetesAPIEndpoint and "
                     "no kubeconfig with a server");
    else if (strncmp(cfg.server, "https://", 8) && strncmp(cfg.server, "http://", 7))
        rc = err_set(err, ERR_BAD_REQUEST, "spec.connection: the endpoint %s is not an http:// "
                     "or https:// URL", cfg.server);
    else if (kc_new(&cfg, out, &e))
        rc = err_set(err, e.code, "spec.connection: %s", e.message);
    kc_free(base);
    return rc;
}

/* A client for conn with the probe's timeouts. 0, or the verdict set in
 * p and -1. */
static int client_for(const json_t *conn, probe_t *p, kc_t **out)
{
    err_t e;
    err_clear(&e);
    if (!ctrl_cluster_client(conn, PROBE_TIMEOUT_MS, out, &e))
        return 0;
    verdict(p, "False", e.code == ERR_NOMEM ? "ProbeFailed" : "InvalidConnection",
            e.code == ERR_NOMEM, "%s", e.message);
    return -1;
}

/* GET /version, then GET /apis. */
static void probe_direct(const json_t *conn, probe_t *p)
{
    kc_t *kc = NULL;
    if (client_for(conn, p, &kc))
        return;
    p->probed = 1;
    double t0 = mono_s();
    json_t *resp = NULL;
    long code = 0;
    err_t e;
    err_clear(&e);
    if (kc_request(kc, "GET", "/version", NULL, &code, &resp, &e)) {
        verdict(p, "False", "ProbeFailed", 1, "%s", e.message);
        goto out;
    }
    if (!answered(p, "/version", code))
        goto out;
    const char *gv = str_at(resp, "gitVersion", NULL);
    if (!gv || !*gv) {
        verdict(p, "False", "ProbeFailed", 1, "%s", "GET /version: the answer has no gitVersion");
        goto out;
    }
    snprintf(p->version, sizeof p->version, "%s", gv);
    json_decref(resp);
    resp = NULL;
    if (kc_request(kc, "GET", "/apis", NULL, &code, &resp, &e)) {
        verdict(p, "False", "ProbeFailed", 1, "%s", e.message);
        goto out;
    }
    if (answered(p, "/apis", code))
        verdict(p, "True", "APIAvailable", 0, "%s",
                "the cluster's Kubernetes API answers and accepts the credentials");
out:
    p->secs = mono_s() - t0;
    json_decref(resp);
    kc_free(kc);
}

static void probe(const json_t *cluster, probe_t *p)
{
    const json_t *conn = json_object_get(json_object_get(cluster, "spec"), "connection");
    const char *type = str_at(conn, "type", NULL);
    if (type && !strcmp(type, "direct"))
        probe_direct(conn, p);
    else if (type && !strcmp(type, "proxy"))
        verdict(p, "Unknown", "AgentNotConnected", 0, "%s",
                "the cluster is reached through its agent, which has not connected");
    else
        verdict(p, "Unknown", "NoConnection", 0, "%s", "spec.connection.type is not set");
}

/* ---- status ----------------------------------------------------------------------------- */

static int observe(ctrl_t *c, const json_t *cluster, const char *name, err_t *err)
{
    cl_state_t *st = ctrl_state(c);
    probe_t p;
    memset(&p, 0, sizeof p);
    probe(cluster, &p);
    if (p.probed)
        stats_record(st, name, p.secs, !strcmp(p.st, "True"));

    const json_t *old = json_object_get(cluster, "status");
    json_t *status = json_is_object(old) ? json_deep_copy(old) : json_object();
    int64_t gen = json_integer_value(json_object_get(json_object_get(cluster, "metadata"), "generation"));
    time_t now = time(NULL);
    int bad = !status;
    bad = bad || cond_set(status, "Initialized", "True", "Observed",
                          "the cluster controller has seen the cluster", gen, now);
    bad = bad || cond_set(status, "AgentAvailable", p.st, p.reason, p.message, gen, now);
    if (!bad && p.version[0])
        bad = json_object_set_new(status, "kubernetesVersion", json_string(p.version));
    if (!bad && cond_is_true(status, "Initialized") && cond_is_true(status, "AgentAvailable"))
        bad = cond_set(status, "Ready", "True", "Ready",
                       "the cluster is initialized and its Kubernetes API is available", gen, now);
    else if (!bad && !strcmp(p.st, "Unknown"))
        bad = cond_set(status, "Ready", "Unknown", p.reason,
                       "whether the cluster's Kubernetes API is available is not known", gen, now);
    else if (!bad)
        bad = cond_set(status, "Ready", "False", "AgentUnavailable",
                       "AgentAvailable is not True", gen, now);
    int rc = bad ? err_set(err, ERR_NOMEM, "out of memory")
                 : ctrl_write_status(c, cluster, status, NULL, err);
    json_decref(status);
    if (rc)
        return rc;
    if (p.retry)
        return CTRL_RETRY;
    if (!strcmp(p.st, "True"))
        ctrl_enqueue_after(c, NULL, name, st->period_ms);
    return CTRL_DONE;
}

/* ---- deletion ------------------------------------------------------------------------- */

/* Edits obj (a copy the caller owns) for the cluster being deleted;
 * *changed says whether it did. 0 or ERR_NOMEM. */
typedef int (*edit_fn)(json_t *obj, const char *name, int own, int *changed);

/* Applies edit to every object of kind k and writes those it changed,
 * each with its resourceVersion as precondition, read again and edited
 * again on a conflict. */
static int edit_all(ctrl_t *c, const char *resource, const char *name, edit_fn edit, err_t *err)
{
    reg_t *reg = ctrl_env(c)->reg;
    const reg_kind_t *k = reg_find(SCOPE_GROUP, REG_VERSION, resource);
    if (!k)
        return err_set(err, ERR_INTERNAL, "no kind %s", resource);
    int own = !strcmp(name, own_cluster(c));
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    json_t *list = NULL;
    int rc = reg_list(reg, k, NULL, &lo, &list, err);
    if (rc)
        return rc;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(list, "items"), i, item) {
        const char *iname = str_at(item, "metadata", "name");
        json_t *cur = json_incref(item);
        for (int attempt = 0; !rc && cur; attempt++) {
            json_t *obj = json_deep_copy(cur);
            int changed = 0;
            if (!obj || edit(obj, name, own, &changed)) {
                json_decref(obj);
                rc = err_set(err, ERR_NOMEM, "out of memory");
                break;
            }
            if (!changed) {
                json_decref(obj);
                break;
            }
            json_t *out = NULL;
            reg_outcome_t oc;
            memset(&oc, 0, sizeof oc);
            err_t e;
            err_clear(&e);
            rc = reg_update(reg, k, NULL, iname, obj, 0, ctrl_write_opts(c), &out, &oc, &e);
            ctrl_audit(c, k, "update", NULL, iname, "", rc);
            json_decref(obj);
            json_decref(out);
            mem_free(oc.body);
            if (!rc) {
                log_v(1, "controller cluster: released cluster %s's claims in %s %s", name,
                      k->kind, iname);
                break;
            }
            if (rc == ERR_NOT_FOUND) {
                rc = 0;          /* gone meanwhile: nothing left to release */
                break;
            }
            if (rc != ERR_CONFLICT || attempt + 1 >= WRITE_ATTEMPTS) {
                err_forward(err, &e);
                break;
            }
            /* Someone wrote it meanwhile: read it again and redo the edit. */
            json_decref(cur);
            cur = NULL;
            err_clear(&e);
            rc = reg_get(reg, k, NULL, iname, &cur, &e);
            if (rc == ERR_NOT_FOUND)
                rc = 0;
            else if (rc)
                err_forward(err, &e);
        }
        json_decref(cur);
        if (rc)
            break;
    }
    json_decref(list);
    return rc;
}

/* Drops from spec.<field> what the deleted cluster claimed: items whose
 * cluster field names it (by_field), or strings equal to its name. */
static int drop_items(json_t *spec, const char *field, const char *name, int own, int by_field,
                      int *changed)
{
    json_t *a = json_object_get(spec, field);
    if (!json_is_array(a))
        return 0;
    for (size_t i = json_array_size(a); i-- > 0;) {
        const json_t *it = json_array_get(a, i);
        int gone = by_field ? json_is_object(it) && names_cluster(str_at(it, "cluster", NULL), name, own)
                            : json_is_string(it) && !strcmp(json_string_value(it), name);
        if (gone) {
            if (json_array_remove(a, i))
                return ERR_NOMEM;
            *changed = 1;
        }
    }
    return 0;
}

/* A Workspace: the cluster's namespaces, and the cluster in clusters. */
static int edit_workspace(json_t *ws, const char *name, int own, int *changed)
{
    json_t *spec = json_object_get(ws, "spec");
    int rc = drop_items(spec, "namespaces", name, own, 1, changed);
    if (!rc)
        rc = drop_items(spec, "clusters", name, own, 0, changed);
    return rc;
}

/* A NodeGroup of the cluster: its nodes, recorded in an annotation. */
static int edit_nodegroup(json_t *ng, const char *name, int own, int *changed)
{
    json_t *spec = json_object_get(ng, "spec");
    json_t *nodes = json_object_get(spec, "nodes");
    if (!names_cluster(str_at(spec, "cluster", NULL), name, own) || !json_array_size(nodes))
        return 0;
    sbuf_t b = SBUF_INIT;
    size_t i;
    const json_t *v;
    json_array_foreach(nodes, i, v) {
        if (!json_is_string(v))
            continue;
        if (b.len)
            sbuf_putc(&b, ',');
        sbuf_puts(&b, json_string_value(v));
    }
    json_t *meta = json_object_get(ng, "metadata");
    json_t *ann = json_object_get(meta, "annotations");
    int bad = b.oom;
    if (!bad && !json_is_object(ann)) {
        ann = json_object();
        bad = !ann || json_object_set_new(meta, "annotations", ann);
    }
    bad = bad || json_object_set_new(ann, RELEASED_NODES, json_string(b.p ? b.p : ""));
    bad = bad || json_object_set_new(spec, "nodes", json_array());
    sbuf_free(&b);
    if (bad)
        return ERR_NOMEM;
    *changed = 1;
    return 0;
}

/* Releases what the cluster claimed, so a new cluster of the same name
 * inherits nothing: its namespaces and its name from every Workspace,
 * the nodes of its NodeGroups. */
static int release_claims(ctrl_t *c, const json_t *cluster, err_t *err)
{
    const char *name = str_at(cluster, "metadata", "name");
    int rc = edit_all(c, "workspaces", name, edit_workspace, err);
    if (!rc)
        rc = edit_all(c, "nodegroups", name, edit_nodegroup, err);
    return rc;
}

/* The cleanup a deleted cluster gets, in order. A component installer
 * adds its own step here. Each step is idempotent. */
typedef struct cleanup_step {
    const char *name;
    int (*run)(ctrl_t *c, const json_t *cluster, err_t *err);
} cleanup_step_t;

static const cleanup_step_t cleanup_steps[] = {
    {"release-claims", release_claims},
    {NULL, NULL},
};

/* Removes the finalizer with cluster's resourceVersion as precondition:
 * the registry deletes the object when no finalizer is left. */

static int finalize(ctrl_t *c, const json_t *cluster, const char *name, err_t *err)
{
    if (!ctrl_has_finalizer(cluster, CLUSTER_FINALIZER))
        return CTRL_DONE;        /* not ours to hold, or done already */
    for (const cleanup_step_t *s = cleanup_steps; s->name; s++) {
        int rc = s->run(c, cluster, err);
        if (rc) {
            log_warning("controller cluster: cleanup of %s: %s: %s", name, s->name,
                        err->message);
            return rc;
        }
    }
    int rc = ctrl_remove_finalizer(c, cluster, CLUSTER_FINALIZER, err);
    if (!rc)
        log_info("controller cluster: cluster %s cleaned up", name);
    return rc;
}

/* ---- reconcile -------------------------------------------------------------------------- */

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    (void)ns;
    json_t *cluster = NULL;
    int rc = reg_get(ctrl_env(c)->reg, ctrl_kind(c), NULL, name, &cluster, err);
    if (rc == ERR_NOT_FOUND)
        stats_forget(ctrl_state(c), name);
    if (rc)
        return rc;
    if (json_object_get(json_object_get(cluster, "metadata"), "deletionTimestamp"))
        rc = finalize(c, cluster, name, err);
    else
        rc = observe(c, cluster, name, err);
    json_decref(cluster);
    return rc;
}

const ctrl_def_t ctrl_cluster = {
    .name = "cluster",
    .group = SCOPE_GROUP, .resource = "clusters",
    .workers = 4,
    .retry_base_ms = 1000, .retry_max_ms = 120000,
    .init = init, .fini = fini,
    .reconcile = reconcile,
    .metrics = metrics,
};
