/*
 * The Component controller: installs each Component's Helm chart into its
 * cluster once the Components it depends on are installed, and uninstalls
 * it when the Component is deleted.
 *
 * The hash
 *   status.observedHash is the SHA-256 of the spec's canonical JSON
 *   (comp_spec_hash). Only a new hash starts work: a Component Installed
 *   at its current hash is left alone (labels, annotations, resyncs),
 *   except that one with no spec.version has its repository's index read
 *   again every recheck period, and a newer release installs.
 *
 * Phases (status.phase) and what each reconcile does, level-triggered:
 *   Pending     a new hash, or waiting for the target Cluster (condition
 *               Installed False: ClusterNotFound, ClusterNotReady).
 *   Blocked     a dependency is missing (DependencyNotFound), not yet
 *               Installed at its current hash (DependencyNotReady), or
 *               this Component is on a dependency cycle (DependencyCycle,
 *               the cycle named from its lowest name); condition
 *               DependenciesReady False.
 *   Fetching    written first, then the chart is resolved and fetched
 *               (component_chart.c); condition ChartFetched.
 *   Fetched     status.resolvedVersion and status.chartDigest recorded.
 *   Installing  written first, then the installers run (component_helm.c);
 *               condition Installed Unknown.
 *   Installed   condition Installed True.
 *   Failed      ChartFetched False (RepositoryNotAllowed, ChartNotFound,
 *               DigestMismatch, InvalidChart, FetchFailed) or Installed
 *               False (HelmNotFound, InstallFailed, InvalidConnection);
 *               retried with the queue's backoff (1 s doubling to 5 min),
 *               except RepositoryNotAllowed, which only a restart with
 *               other flags or a new spec can change.
 *   Each phase is one status write; the write's own event brings the next
 *   step, so a restart resumes at the phase it finds. Messages name no
 *   time and no temporary path, so an unchanged world writes nothing.
 *
 * Who is queued when
 *   Every reconcile records the Component's dependencies and cluster in
 *   the controller's state. A Component that becomes Installed, or is
 *   seen for the first time, queues the Components recorded as depending
 *   on it; one that is gone queues those it depended on (a deletion they
 *   held back) and its dependents. A Cluster's change queues the
 *   Components recorded on it. The resync covers what a restart has not
 *   recorded yet.
 *
 * Deletion
 *   finalizer.ext.theriseunion.io is added on create (registry/
 *   kind_component.c). A deleted Component that others still depend on
 *   keeps it, with condition DeletionBlocked True naming them, until they
 *   are gone; then the installers' uninstall runs (helm uninstall) when
 *   the release may exist, and the finalizer is removed.
 *
 * Parallel: four workers; the queue never hands one Component to two, so
 * independent Components install at once and a slow helm holds one
 * worker for at most its timeout (5 min).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "component.h"
#include "conditions.h"
#include "controllers.h"
#include "ctrl.h"

#define EXT_GROUP "ext.theriseunion.io"
#define SCOPE_GROUP "scope.theriseunion.io"
#define COMP_FINALIZER "finalizer.ext.theriseunion.io"
#define HELM_TIMEOUT_MS 300000
#define RECHECK_MS 600000
#define MAX_GRAPH 1000

typedef struct cs {
    pthread_mutex_t mu;
    json_t *index;               /* name -> {"deps": [...], "cluster": "..."} */
    json_t *checked;             /* name -> when its index was last read (ms) */
    long helm_timeout_ms;
    uint64_t recheck_ms;
} cs_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int init(ctrl_t *c, void **state, err_t *err)
{
    (void)c;
    cs_t *st = mem_calloc(1, sizeof *st);
    if (!st || !(st->index = json_object()) || !(st->checked = json_object())) {
        if (st) {
            json_decref(st->index);
            mem_free(st);
        }
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&st->mu, NULL);
    st->helm_timeout_ms = HELM_TIMEOUT_MS;
    st->recheck_ms = RECHECK_MS;
#ifdef EDGE_TEST_HOOKS
    /* Test builds: a short helm timeout and recheck period on demand. */
    const char *v = getenv("EDGE_TEST_HELM_TIMEOUT_MS");
    if (v && strtol(v, NULL, 10) > 0)
        st->helm_timeout_ms = strtol(v, NULL, 10);
    v = getenv("EDGE_TEST_COMPONENT_RECHECK_MS");
    if (v && strtoul(v, NULL, 10) > 0)
        st->recheck_ms = strtoul(v, NULL, 10);
#endif
    *state = st;
    return 0;
}

static void fini(void *state)
{
    cs_t *st = state;
    if (!st)
        return;
    json_decref(st->index);
    json_decref(st->checked);
    pthread_mutex_destroy(&st->mu);
    mem_free(st);
}

/* ---- helpers ---------------------------------------------------------------------- */

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static const char *or_default(const char *s, const char *def) { return s && *s ? s : def; }

/* The cluster a spec names: spec.cluster, else this server's own. */
static const char *target_cluster(const ctrl_t *c, const json_t *spec)
{
    return or_default(str_at(spec, "cluster", NULL), or_default(ctrl_env(c)->cluster, "host"));
}

static const char *data_dir(const ctrl_t *c) { return or_default(ctrl_env(c)->data_dir, "data"); }


static int installed_current(const json_t *obj)
{
    const json_t *status = json_object_get(obj, "status");
    const char *phase = str_at(status, "phase", NULL);
    const char *seen = str_at(status, "observedHash", NULL);
    char hash[65];
    return phase && !strcmp(phase, "Installed") && seen &&
           !comp_spec_hash(json_object_get(obj, "spec"), hash) && !strcmp(hash, seen);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends ", name" (or "name") to b. */
static void list_add(sbuf_t *b, const char *name)
{
    if (b->len)
        sbuf_puts(b, ", ");
    sbuf_puts(b, name);
}

/* ---- the recorded graph ------------------------------------------------------------- */

static void record(ctrl_t *c, const char *name, const json_t *spec)
{
    cs_t *st = ctrl_state(c);
    const json_t *deps = json_object_get(spec, "dependsOn");
    json_t *d = json_is_array(deps) ? json_deep_copy(deps) : json_array();
    json_t *e = d ? json_pack("{s:o,s:s}", "deps", d, "cluster", target_cluster(c, spec)) : NULL;
    if (!e)
        return;                  /* the resync makes up for it */
    pthread_mutex_lock(&st->mu);
    json_object_set_new(st->index, name, e);
    pthread_mutex_unlock(&st->mu);
}

/* Queues the recorded Components that depend on name. */
static void queue_dependents(ctrl_t *c, const char *name)
{
    cs_t *st = ctrl_state(c);
    const char *key;
    json_t *e;
    pthread_mutex_lock(&st->mu);
    json_object_foreach(st->index, key, e) {
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(e, "deps"), i, d) {
            if (json_is_string(d) && !strcmp(json_string_value(d), name)) {
                ctrl_enqueue(c, NULL, key);
                break;
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
}

/* name is gone: queues what it depended on and what depends on it. */
static void forget(ctrl_t *c, const char *name)
{
    cs_t *st = ctrl_state(c);
    pthread_mutex_lock(&st->mu);
    json_t *e = json_incref(json_object_get(st->index, name));
    json_object_del(st->index, name);
    json_object_del(st->checked, name);
    pthread_mutex_unlock(&st->mu);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(e, "deps"), i, d) {
        if (json_is_string(d))
            ctrl_enqueue(c, NULL, json_string_value(d));
    }
    json_decref(e);
    queue_dependents(c, name);
}

/* A Cluster changed: queue the Components recorded on it. */
static void map_cluster(ctrl_t *c, const json_t *obj, const json_t *old)
{
    const char *name = str_at(json_object_get(obj ? obj : old, "metadata"), "name", NULL);
    if (!name)
        return;
    cs_t *st = ctrl_state(c);
    const char *key;
    json_t *e;
    pthread_mutex_lock(&st->mu);
    json_object_foreach(st->index, key, e) {
        const char *cl = str_at(e, "cluster", NULL);
        if (cl && !strcmp(cl, name))
            ctrl_enqueue(c, NULL, key);
    }
    pthread_mutex_unlock(&st->mu);
}

/* ---- status ------------------------------------------------------------------------- */

typedef struct view {
    json_t *status;              /* the status being built (owned) */
    int64_t gen;
    time_t now;
    int bad;                     /* memory ran out */
} view_t;

static void set_phase(view_t *v, const char *phase)
{
    v->bad = v->bad || json_object_set_new(v->status, "phase", json_string(phase));
}

static void set_str(view_t *v, const char *key, const char *val)
{
    v->bad = v->bad || json_object_set_new(v->status, key, json_string(val));
}

static void cond(view_t *v, const char *type, const char *st, const char *reason,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void cond(view_t *v, const char *type, const char *st, const char *reason,
                 const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->bad = v->bad || cond_set(v->status, type, st, reason, msg, v->gen, v->now);
}

static const char *phase_of(const view_t *v) { return str_at(v->status, "phase", NULL); }

static int is_phase(const view_t *v, const char *p)
{
    const char *ph = phase_of(v);
    return ph && !strcmp(ph, p);
}

/* Writes the view as obj's status; *wrote says whether it changed. */
static int save(ctrl_t *c, const json_t *obj, view_t *v, int *wrote, err_t *err)
{
    *wrote = 0;
    if (v->bad)
        return err_set(err, ERR_NOMEM, "out of memory");
    return ctrl_write_status(c, obj, v->status, wrote, err);
}

/* ---- dependencies ------------------------------------------------------------------- */

static const reg_kind_t *kind_clusters(void)
{
    return reg_find(SCOPE_GROUP, REG_VERSION, "clusters");
}

/* The graph reachable from self through dependsOn, self's edges from
 * spec, read from the store, at most MAX_GRAPH nodes. */
static int reachable(ctrl_t *c, const char *self, const json_t *spec, json_t **out, err_t *err)
{
    json_t *g = json_object(), *todo = json_array();
    json_t *deps = json_object_get(spec, "dependsOn");
    int rc = (!g || !todo || json_object_set_new(g, self, json_is_array(deps) ? json_deep_copy(deps)
                                                                         : json_array()))
                 ? err_set(err, ERR_NOMEM, "out of memory")
                 : 0;
    if (!rc)
        rc = json_array_extend(todo, json_object_get(g, self)) ? ERR_NOMEM : 0;
    while (!rc && json_array_size(todo) && json_object_size(g) < MAX_GRAPH) {
        const char *n = json_string_value(json_array_get(todo, 0));
        char name[256];
        snprintf(name, sizeof name, "%s", n ? n : "");
        json_array_remove(todo, 0);
        if (!name[0] || json_object_get(g, name))
            continue;
        json_t *o = NULL;
        err_t e;
        err_clear(&e);
        int r = reg_get(ctrl_env(c)->reg, ctrl_kind(c), NULL, name, &o, &e);
        if (r == ERR_NOT_FOUND)
            continue;
        if (r) {
            rc = err_forward(err, &e);
            break;
        }
        json_t *d = json_object_get(json_object_get(o, "spec"), "dependsOn");
        json_t *copy = json_is_array(d) ? json_deep_copy(d) : json_array();
        if (!copy || json_object_set_new(g, name, copy) || json_array_extend(todo, copy))
            rc = err_set(err, ERR_NOMEM, "out of memory");
        json_decref(o);
    }
    json_decref(todo);
    if (rc) {
        json_decref(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* 0 when every dependency is Installed at its current hash (the
 * condition set True); 1 when blocked (set False with the reason). */
static int check_deps(ctrl_t *c, const char *self, const json_t *spec, view_t *v, err_t *err)
{
    const json_t *deps = json_object_get(spec, "dependsOn");
    if (!json_array_size(deps)) {
        cond(v, "DependenciesReady", "True", "NoDependencies", "%s", "no dependencies");
        return 0;
    }
    sbuf_t missing = SBUF_INIT, waiting = SBUF_INIT;
    int rc = 0;
    size_t i;
    const json_t *d;
    json_t *names = json_array();
    json_array_foreach(deps, i, d) {
        if (json_is_string(d))
            json_array_append(names, (json_t *)d);
    }
    /* Sorted, for messages that do not depend on the spec's order. */
    size_t n = json_array_size(names);
    const char **sorted = n ? mem_alloc(n * sizeof *sorted) : NULL;
    for (i = 0; sorted && i < n; i++)
        sorted[i] = json_string_value(json_array_get(names, i));
    if (sorted)
        qsort(sorted, n, sizeof *sorted, cmp_names);
    for (i = 0; sorted && i < n && !rc; i++) {
        if (i && !strcmp(sorted[i], sorted[i - 1]))
            continue;
        json_t *o = NULL;
        err_t e;
        err_clear(&e);
        int r = reg_get(ctrl_env(c)->reg, ctrl_kind(c), NULL, sorted[i], &o, &e);
        if (r == ERR_NOT_FOUND)
            list_add(&missing, sorted[i]);
        else if (r)
            rc = err_forward(err, &e);
        else if (!installed_current(o))
            list_add(&waiting, sorted[i]);
        json_decref(o);
    }
    if (!rc && n && !sorted)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (!rc && (missing.len || waiting.len)) {
        json_t *g = NULL;
        char cycle[512];
        rc = reachable(c, self, spec, &g, err);
        if (!rc && comp_cycle(g, self, cycle, sizeof cycle))
            cond(v, "DependenciesReady", "False", "DependencyCycle", "dependency cycle: %s",
                 cycle);
        else if (!rc && missing.len)
            cond(v, "DependenciesReady", "False", "DependencyNotFound",
                 "dependencies not found: %s", missing.p);
        else if (!rc)
            cond(v, "DependenciesReady", "False", "DependencyNotReady",
                 "waiting for dependencies to be installed: %s", waiting.p);
        json_decref(g);
        if (!rc)
            rc = 1;
    } else if (!rc) {
        cond(v, "DependenciesReady", "True", "DependenciesInstalled", "%s",
             "every dependency is installed");
    }
    if (missing.oom || waiting.oom)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    mem_free(sorted);
    json_decref(names);
    sbuf_free(&missing);
    sbuf_free(&waiting);
    return rc;
}

/* ---- the target cluster ----------------------------------------------------------- */

/* The Cluster the spec targets when it is Ready (*cluster, the caller's);
 * else 1 with condition Installed False saying why. */
static int check_cluster(ctrl_t *c, const json_t *spec, view_t *v, json_t **cluster, err_t *err)
{
    const char *name = target_cluster(c, spec);
    const reg_kind_t *k = kind_clusters();
    if (!k)
        return err_set(err, ERR_INTERNAL, "no kind clusters");
    json_t *o = NULL;
    err_t e;
    err_clear(&e);
    int rc = reg_get(ctrl_env(c)->reg, k, NULL, name, &o, &e);
    if (rc == ERR_NOT_FOUND) {
        cond(v, "Installed", "False", "ClusterNotFound", "cluster %s does not exist", name);
        return 1;
    }
    if (rc)
        return err_forward(err, &e);
    if (!cond_is_true(json_object_get(o, "status"), "Ready")) {
        json_decref(o);
        cond(v, "Installed", "False", "ClusterNotReady", "cluster %s is not Ready", name);
        return 1;
    }
    *cluster = o;
    return 0;
}

/* ---- the steps ------------------------------------------------------------------------ */

static void chart_req(const ctrl_t *c, const json_t *spec, const json_t *status,
                      comp_chart_req_t *req)
{
    *req = (comp_chart_req_t){
        .data_dir = data_dir(c),
        .allowed = ctrl_env(c)->allowed_chart_repositories,
        .repository = or_default(str_at(spec, "repository", NULL), ""),
        .chart = or_default(str_at(spec, "chart", NULL), ""),
        .version = str_at(spec, "version", NULL),
        .known_version = str_at(status, "resolvedVersion", NULL),
    };
}

static void job_for(ctrl_t *c, const char *name, const json_t *spec, const json_t *cluster,
                    comp_job_t *j)
{
    cs_t *st = ctrl_state(c);
    memset(j, 0, sizeof *j);
    j->name = name;
    j->ns = or_default(str_at(spec, "namespace", NULL), COMP_DEFAULT_NAMESPACE);
    j->values = json_object_get(spec, "values");
    j->cluster = cluster;
    j->helm = or_default(ctrl_env(c)->helm_binary, "helm");
    j->data_dir = data_dir(c);
    j->timeout_ms = st->helm_timeout_ms;
}

/* Whether an Installed Component with no spec.version is due a look at
 * its repository's index; records the look. */
static int recheck_due(ctrl_t *c, const char *name)
{
    cs_t *st = ctrl_state(c);
    uint64_t now = mono_ms();
    pthread_mutex_lock(&st->mu);
    json_t *t = json_object_get(st->checked, name);
    int due = !t || now - (uint64_t)json_integer_value(t) >= st->recheck_ms;
    if (due)
        json_object_set_new(st->checked, name, json_integer((json_int_t)now));
    pthread_mutex_unlock(&st->mu);
    return due;
}

/* The Component as it is, moved on by one step. */
static int advance(ctrl_t *c, const json_t *obj, const char *name, err_t *err)
{
    cs_t *st = ctrl_state(c);
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *old = json_object_get(obj, "status");
    char hash[65];
    if (comp_spec_hash(spec, hash))
        return err_set(err, ERR_NOMEM, "out of memory");
    view_t v = {.status = json_is_object(old) ? json_deep_copy(old) : json_object(),
                .gen = json_integer_value(json_object_get(json_object_get(obj, "metadata"),
                                                          "generation")),
                .now = time(NULL)};
    if (!v.status)
        return err_set(err, ERR_NOMEM, "out of memory");
    int first = !str_at(old, "observedHash", NULL);
    const char *seen = str_at(old, "observedHash", NULL);
    if (!seen || strcmp(seen, hash) || !phase_of(&v)) {
        set_str(&v, "observedHash", hash);
        set_phase(&v, "Pending");
    }
    const char *version = str_at(spec, "version", NULL);
    json_t *cluster = NULL;
    int rc = 0, wrote = 0, retry = 0;
    if (is_phase(&v, "Installed")) {
        /* Left alone, but for a look at the repository now and then when
         * spec.version asks for its highest release. */
        if (!version || !*version) {
            if (recheck_due(c, name)) {
                comp_chart_req_t req;
                comp_chart_t ch;
                chart_req(c, spec, old, &req);
                if (comp_chart_resolve(&req, &ch))
                    log_v(1, "controller component: %s: recheck: %s", name, ch.message);
                else if (strcmp(ch.version, or_default(str_at(old, "resolvedVersion", NULL), ""))) {
                    log_info("controller component: %s: chart %s %s is out; installing it", name,
                             req.chart, ch.version);
                    set_phase(&v, "Pending");
                }
            }
            if (is_phase(&v, "Installed"))
                ctrl_enqueue_after(c, NULL, name, st->recheck_ms);
        }
        if (is_phase(&v, "Installed"))
            goto write;
    }

    rc = check_deps(c, name, spec, &v, err);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        rc = 0;
        set_phase(&v, "Blocked");
        goto write;
    }
    if (is_phase(&v, "Blocked"))
        set_phase(&v, "Pending");
    rc = check_cluster(c, spec, &v, &cluster, err);
    if (rc < 0)
        goto out;
    if (rc == 1) {
        rc = 0;
        set_phase(&v, "Pending");
        goto write;
    }

    int fetch_failed = is_phase(&v, "Failed") &&
                       !cond_is_true(v.status, "ChartFetched");
    if (is_phase(&v, "Pending")) {
        set_phase(&v, "Fetching");
        cond(&v, "ChartFetched", "Unknown", "Fetching", "fetching chart %s from %s",
             or_default(str_at(spec, "chart", NULL), ""),
             or_default(str_at(spec, "repository", NULL), ""));
        goto write;
    }
    if (is_phase(&v, "Fetching") || fetch_failed) {
        comp_chart_req_t req;
        comp_chart_t ch;
        chart_req(c, spec, old, &req);
        if (comp_chart_fetch(&req, &ch)) {
            set_phase(&v, "Failed");
            cond(&v, "ChartFetched", "False", ch.reason, "%s", ch.message);
            retry = ch.retry;
            goto write;
        }
        set_phase(&v, "Fetched");
        set_str(&v, "resolvedVersion", ch.version);
        set_str(&v, "chartDigest", ch.digest);
        cond(&v, "ChartFetched", "True", "Fetched", "chart %s version %s, sha256 %s", req.chart,
             ch.version, ch.digest);
        goto write;
    }
    if (is_phase(&v, "Fetched")) {
        set_phase(&v, "Installing");
        cond(&v, "Installed", "Unknown", "Installing", "installing chart %s version %s",
             or_default(str_at(spec, "chart", NULL), ""),
             or_default(str_at(v.status, "resolvedVersion", NULL), ""));
        goto write;
    }
    /* Installing, or Failed after the chart was fetched: install. */
    comp_job_t j;
    char path[PATH_MAX];
    const char *digest = str_at(v.status, "chartDigest", NULL);
    if (!digest || !comp_chart_cached(data_dir(c), digest, path, sizeof path)) {
        set_phase(&v, "Pending");    /* the cache lost it: fetch again */
        goto write;
    }
    job_for(c, name, spec, cluster, &j);
    j.chart_path = path;
    if (comp_install(&j)) {
        set_phase(&v, "Failed");
        cond(&v, "Installed", "False", j.reason, "%s", j.message);
        retry = 1;
        log_warning("controller component: %s: %s: %s", name, j.reason, j.message);
        goto write;
    }
    set_phase(&v, "Installed");
    cond(&v, "Installed", "True", "Installed", "release %s in namespace %s of cluster %s",
         name, j.ns, target_cluster(c, spec));
    if (!version || !*version) {
        recheck_due(c, name);
        ctrl_enqueue_after(c, NULL, name, st->recheck_ms);
    }

write:
    rc = save(c, obj, &v, &wrote, err);
    if (!rc && wrote && (first || is_phase(&v, "Installed")))
        queue_dependents(c, name);
    if (!rc && retry)
        rc = CTRL_RETRY;
out:
    json_decref(cluster);
    json_decref(v.status);
    return rc;
}

/* ---- deletion ------------------------------------------------------------------------ */


/* The Components whose dependsOn names name, sorted and joined in b. */
static int dependents(ctrl_t *c, const char *name, sbuf_t *b, err_t *err)
{
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    json_t *list = NULL;
    int rc = reg_list(ctrl_env(c)->reg, ctrl_kind(c), NULL, &lo, &list, err);
    if (rc)
        return rc;
    const json_t *items = json_object_get(list, "items");
    size_t n = json_array_size(items), k = 0, i;
    const char **names = n ? mem_alloc(n * sizeof *names) : NULL;
    const json_t *it;
    json_array_foreach(items, i, it) {
        const char *iname = str_at(it, "metadata", "name");
        if (!names || !iname || !strcmp(iname, name))
            continue;
        size_t j;
        const json_t *d;
        json_array_foreach(json_object_get(json_object_get(it, "spec"), "dependsOn"), j, d) {
            if (json_is_string(d) && !strcmp(json_string_value(d), name)) {
                names[k++] = iname;
                break;
            }
        }
    }
    if (n && !names)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (names)
        qsort(names, k, sizeof *names, cmp_names);
    for (i = 0; names && i < k; i++)
        list_add(b, names[i]);
    mem_free(names);
    json_decref(list);
    if (!rc && b->oom)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    return rc;
}

/* Whether a release of the Component may exist on its cluster. */
static int may_be_installed(const json_t *status)
{
    const char *phase = str_at(status, "phase", NULL);
    const json_t *ic = cond_get(status, "Installed");
    const char *reason = str_at(ic, "reason", NULL);
    if (phase && (!strcmp(phase, "Installed") || !strcmp(phase, "Installing")))
        return 1;
    return reason && (!strcmp(reason, "Installed") || !strcmp(reason, "Installing") ||
                      !strcmp(reason, "InstallFailed"));
}

static int finalize(ctrl_t *c, const json_t *obj, const char *name, err_t *err)
{
    if (!ctrl_has_finalizer(obj, COMP_FINALIZER))
        return CTRL_DONE;
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *old = json_object_get(obj, "status");
    view_t v = {.status = json_is_object(old) ? json_deep_copy(old) : json_object(),
                .gen = json_integer_value(json_object_get(json_object_get(obj, "metadata"),
                                                          "generation")),
                .now = time(NULL)};
    sbuf_t deps = SBUF_INIT;
    json_t *cluster = NULL;
    int rc = v.status ? dependents(c, name, &deps, err) : err_set(err, ERR_NOMEM, "out of memory");
    int wrote = 0;
    if (rc)
        goto out;
    if (deps.len) {
        cond(&v, "DeletionBlocked", "True", "DependentsExist",
             "components that depend on it: %s", deps.p);
        rc = save(c, obj, &v, &wrote, err);
        goto out;
    }
    if (may_be_installed(old)) {
        const reg_kind_t *k = kind_clusters();
        const char *cname = target_cluster(c, spec);
        err_t e;
        err_clear(&e);
        rc = k ? reg_get(ctrl_env(c)->reg, k, NULL, cname, &cluster, &e) : ERR_NOT_FOUND;
        if (rc == ERR_NOT_FOUND) {
            /* No cluster left to uninstall from. */
            log_info("controller component: %s: cluster %s is gone; nothing to uninstall", name,
                     cname);
            rc = 0;
        } else if (rc) {
            rc = err_forward(err, &e);
            goto out;
        } else if (!cond_is_true(json_object_get(cluster, "status"), "Ready")) {
            cond(&v, "DeletionBlocked", "True", "ClusterNotReady",
                 "cluster %s is not Ready: the release cannot be uninstalled", cname);
            rc = save(c, obj, &v, &wrote, err);
            rc = rc ? rc : CTRL_RETRY;
            goto out;
        } else {
            comp_job_t j;
            job_for(c, name, spec, cluster, &j);
            if (comp_uninstall(&j)) {
                cond(&v, "DeletionBlocked", "True", j.reason, "%s", j.message);
                log_warning("controller component: %s: %s: %s", name, j.reason, j.message);
                rc = save(c, obj, &v, &wrote, err);
                rc = rc ? rc : CTRL_RETRY;
                goto out;
            }
            log_info("controller component: %s: release uninstalled", name);
        }
    }
    rc = ctrl_remove_finalizer(c, obj, COMP_FINALIZER, err);
out:
    sbuf_free(&deps);
    json_decref(cluster);
    json_decref(v.status);
    return rc;
}

/* ---- reconcile ------------------------------------------------------------------------ */

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    (void)ns;
    json_t *obj = NULL;
    int rc = reg_get(ctrl_env(c)->reg, ctrl_kind(c), NULL, name, &obj, err);
    if (rc == ERR_NOT_FOUND)
        forget(c, name);
    if (rc)
        return rc;
    record(c, name, json_object_get(obj, "spec"));
    if (json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        rc = finalize(c, obj, name, err);
    else
        rc = advance(c, obj, name, err);
    json_decref(obj);
    return rc;
}

static const ctrl_watch_t watches[] = {
    {SCOPE_GROUP, "clusters", map_cluster},
    {NULL, NULL, NULL},
};

const ctrl_def_t ctrl_component = {
    .name = "component",
    .group = EXT_GROUP, .resource = "components",
    .workers = 4,
    .retry_base_ms = 1000, .retry_max_ms = 300000,
    .watches = watches,
    .init = init, .fini = fini,
    .reconcile = reconcile,
};
