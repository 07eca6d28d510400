/*
 * The ApplicationDeployment controller: which version is in effect and
 * where it runs.
 *
 * Resolution (status.resolvedVersion, condition VersionResolved)
 *   "latest" (or no version) is the highest Approved version of the
 *   application by semver precedence, pre-releases never; a pinned version
 *   is itself when it exists and is Approved. Otherwise VersionResolved is
 *   False with reason VersionNotFound or VersionNotApproved and nothing is
 *   provisioned. It is recomputed as versions come, go or change phase.
 *
 * Topologies (status.topologies, condition Progressing)
 *   One entry per spec.topologies item: its node group, phase (Pending,
 *   Progressing, Available, Failed), readyReplicas and a message. A
 *   topology whose NodeGroup does not exist, or whose Cluster is not
 *   Ready, says so in its entry and in Progressing (False, reason
 *   NodeGroupNotFound or ClusterNotReady).
 *
 * Provisioning goes through a table of plugins keyed by the version's
 * spec.type (the Application's when the version gives none; "workload"
 * when neither does), each with validate, provision, status and remove,
 * so an application type is one more row (ad_plugins): "workload" (a
 * Deployment and a Service server-side-applied on the member) and "helm"
 * (the version's chart, fetched, checked and cached, and installed by
 * the Component installers as release <deployment>-<nodegroup>). The finalizer
 * finalizer.app.theriseunion.io (added by the registry on create) holds a
 * deleted ApplicationDeployment until what it made is removed.
 *
 * Who may target which NodeGroup is admission's `use` check on write; the
 * controller provisions exactly the topologies the object names.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../apimachinery/semver.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "component.h"
#include "conditions.h"
#include "controllers.h"

#define APP_GROUP "app.theriseunion.io"
#define SCOPE_GROUP "scope.theriseunion.io"
#define AD_FINALIZER "finalizer.app.theriseunion.io"
#define AD_MANAGER "edge-apiserver"
#define AD_CLIENT_TIMEOUT_MS 5000
#define AD_POLL_MS 5000          /* while rolling out */
#define AD_RECHECK_MS 30000      /* once available */

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static const reg_kind_t *kind_of(const char *group, const char *resource)
{
    return reg_find(group, REG_VERSION, resource);
}

static int list_kind(ctrl_t *c, const reg_kind_t *k, const char *ns, json_t **list, err_t *err)
{
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    return reg_list(ctrl_env(c)->reg, k, ns, &lo, list, err);
}

/* ---- what one topology is provisioned with -------------------------------------------- */

/* Everything a plugin needs for one topology (borrowed). */
typedef struct ad_target {
    const char *ns;              /* the ApplicationDeployment's namespace */
    const char *deployment;      /* its name */
    const char *nodegroup;
    const json_t *nodes;         /* the NodeGroup's spec.nodes */
    json_int_t replicas;
    const json_t *values;        /* the topology's values, or NULL */
    const json_t *version;       /* the ApplicationVersion in effect */
    kc_t *kc;                    /* the topology's cluster */
    const json_t *cluster;       /* its Cluster object */
    const ctrl_env_t *env;
} ad_target_t;

typedef struct ad_plugin {
    const char *type;
    /* Whether version can be provisioned by this plugin: 0, or
     * ERR_INVALID with why in err. */
    int (*validate)(const json_t *version, err_t *err);
    /* Makes (or updates) what t runs, idempotently. */
    int (*provision)(const ad_target_t *t, err_t *err);
    /* How many replicas of t are ready. */
    int (*status)(const ad_target_t *t, json_int_t *ready, err_t *err);
    /* Removes what provision made (absent already is success). */
    int (*remove)(const ad_target_t *t, err_t *err);
} ad_plugin_t;

/* ---- the workload plugin: a Deployment and a Service per topology ---------------------- */

/* "<deployment>-<nodegroup>", the name of what a topology gets. */
static void object_name(const ad_target_t *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s-%s", t->deployment, t->nodegroup);
}

static int wl_validate(const json_t *version, err_t *err)
{
    const json_t *tpl = json_object_get(json_object_get(json_object_get(version, "spec"),
                                                        "workload"), "template");
    const json_t *containers = json_object_get(json_object_get(tpl, "spec"), "containers");
    if (!json_array_size(containers))
        return err_set(err, ERR_INVALID, "spec.workload.template.spec.containers: the version "
                       "has no containers to run");
    return 0;
}

/* A member-cluster call whose answer must be 2xx (404 too when allowed). */
static int call(kc_t *kc, const char *method, const char *path, const char *ct,
                const json_t *body, int allow_404, json_t **resp, err_t *err)
{
    long code = 0;
    json_t *r = NULL;
    int rc = kc_request_as(kc, method, path, ct, body, &code, &r, err);
    if (!rc && !(code >= 200 && code < 300) && !(allow_404 && code == 404)) {
        const char *msg = str_at(r, "message", NULL);
        rc = err_set(err, ERR_UNAVAILABLE, "%s %s: HTTP %ld%s%s", method, path, code,
                     msg ? ": " : "", msg ? msg : "");
    }
    if (resp && !rc)
        *resp = r;
    else
        json_decref(r);
    return rc;
}

static int apply(kc_t *kc, const char *path, const json_t *obj, err_t *err)
{
    char url[1100];
    if ((size_t)snprintf(url, sizeof url, "%s?fieldManager=" AD_MANAGER "&force=true", path) >=
        sizeof url)
        return err_set(err, ERR_BAD_REQUEST, "a path too long for the member cluster");
    return call(kc, "PATCH", url, "application/apply-patch+yaml", obj, 0, NULL, err);
}

/* The Deployment of t: the version's pod template, labelled, pinned to
 * the node group's nodes through node affinity on kubernetes.io/hostname. */
static json_t *wl_deployment(const ad_target_t *t, const char *name)
{
    const json_t *wl = json_object_get(json_object_get(t->version, "spec"), "workload");
    json_t *tpl = json_deep_copy(json_object_get(wl, "template"));
    if (!tpl)
        tpl = json_object();
    json_t *labels = json_pack("{s:s, s:s}", "app.theriseunion.io/deployment", t->deployment,
                               "app.theriseunion.io/nodegroup", t->nodegroup);
    json_t *tmd = json_object_get(tpl, "metadata");
    if (!json_is_object(tmd))
        json_object_set_new(tpl, "metadata", tmd = json_object());
    json_t *tl = json_object_get(tmd, "labels");
    if (!json_is_object(tl))
        json_object_set_new(tmd, "labels", tl = json_object());
    json_object_update(tl, labels);
    json_t *pspec = json_object_get(tpl, "spec");
    if (!json_is_object(pspec))
        json_object_set_new(tpl, "spec", pspec = json_object());
    json_object_set_new(
        pspec, "affinity",
        json_pack("{s:{s:{s:[{s:[{s:s, s:s, s:O}]}]}}}", "nodeAffinity",
                  "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms",
                  "matchExpressions", "key", "kubernetes.io/hostname", "operator", "In", "values",
                  t->nodes ? t->nodes : json_array()));
    json_t *d = json_pack("{s:s, s:s, s:{s:s, s:s, s:O}, s:{s:I, s:{s:O}, s:o}}", "apiVersion",
                          "apps/v1", "kind", "Deployment", "metadata", "name", name, "namespace",
                          t->ns, "labels", labels, "spec", "replicas", t->replicas, "selector",
                          "matchLabels", labels, "template", tpl);
    json_decref(labels);
    return d;
}

static json_t *wl_service(const ad_target_t *t, const char *name)
{
    const json_t *ports = json_object_get(
        json_object_get(json_object_get(t->version, "spec"), "workload"), "ports");
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s}, s:O}}", "apiVersion", "v1",
                     "kind", "Service", "metadata", "name", name, "namespace", t->ns, "spec",
                     "selector", "app.theriseunion.io/deployment", t->deployment,
                     "app.theriseunion.io/nodegroup", t->nodegroup, "ports", ports);
}

static int wl_provision(const ad_target_t *t, err_t *err)
{
    char name[512], path[1024];
    object_name(t, name, sizeof name);
    json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                           "metadata", "name", t->ns);
    json_t *dep = wl_deployment(t, name);
    int rc = !ns || !dep ? err_set(err, ERR_NOMEM, "out of memory") : 0;
    if (!rc) {
        snprintf(path, sizeof path, "/api/v1/namespaces/%s", t->ns);
        rc = apply(t->kc, path, ns, err);
    }
    if (!rc) {
        snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/%s", t->ns, name);
        rc = apply(t->kc, path, dep, err);
    }
    const json_t *ports = json_object_get(
        json_object_get(json_object_get(t->version, "spec"), "workload"), "ports");
    if (!rc && json_array_size(ports)) {
        json_t *svc = wl_service(t, name);
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/services/%s", t->ns, name);
        rc = svc ? apply(t->kc, path, svc, err) : err_set(err, ERR_NOMEM, "out of memory");
        json_decref(svc);
    }
    json_decref(ns);
    json_decref(dep);
    return rc;
}

static int wl_status(const ad_target_t *t, json_int_t *ready, err_t *err)
{
    char name[512], path[1024];
    object_name(t, name, sizeof name);
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/%s", t->ns, name);
    json_t *d = NULL;
    int rc = call(t->kc, "GET", path, "application/json", NULL, 0, &d, err);
    if (!rc)
        *ready = json_integer_value(json_object_get(json_object_get(d, "status"),
                                                    "readyReplicas"));
    json_decref(d);
    return rc;
}

static int wl_remove(const ad_target_t *t, err_t *err)
{
    char name[512], path[1024];
    object_name(t, name, sizeof name);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/services/%s", t->ns, name);
    int rc = call(t->kc, "DELETE", path, "application/json", NULL, 1, NULL, err);
    snprintf(path, sizeof path, "/apis/apps/v1/namespaces/%s/deployments/%s", t->ns, name);
    if (!rc)
        rc = call(t->kc, "DELETE", path, "application/json", NULL, 1, NULL, err);
    return rc;
}

/* ---- the helm plugin: the version's chart, as a Component installs one ----------------- */

#define AD_HELM_TIMEOUT_MS (5 * 60 * 1000)

static const json_t *helm_spec(const json_t *version)
{
    return json_object_get(json_object_get(version, "spec"), "helm");
}

static int hm_validate(const json_t *version, err_t *err)
{
    const json_t *h = helm_spec(version);
    if (!str_at(h, "chart", NULL) || !str_at(h, "repository", NULL))
        return err_set(err, ERR_INVALID, "spec.helm: a helm version names its chart and "
                       "repository");
    return 0;
}

/* The job of t: release "<deployment>-<nodegroup>" in t's namespace. */
static void hm_job(const ad_target_t *t, char *release, size_t n, comp_job_t *j)
{
    object_name(t, release, n);
    memset(j, 0, sizeof *j);
    j->name = release;
    j->ns = t->ns;
    j->cluster = t->cluster;
    j->helm = t->env->helm_binary && *t->env->helm_binary ? t->env->helm_binary : "helm";
    j->data_dir = t->env->data_dir && *t->env->data_dir ? t->env->data_dir : "data";
    j->timeout_ms = AD_HELM_TIMEOUT_MS;
}

static int hm_provision(const ad_target_t *t, err_t *err)
{
    const json_t *h = helm_spec(t->version);
    comp_chart_req_t req = {
        .data_dir = t->env->data_dir && *t->env->data_dir ? t->env->data_dir : "data",
        .allowed = t->env->allowed_chart_repositories,
        .repository = str_at(h, "repository", NULL), .chart = str_at(h, "chart", NULL),
        .version = str_at(h, "version", NULL)};
    comp_chart_t chart;
    memset(&chart, 0, sizeof chart);
    if (comp_chart_fetch(&req, &chart))
        return err_set(err, ERR_UNAVAILABLE, "%s: %s", chart.reason, chart.message);
    /* The version's values, with the topology's over them; replicas too. */
    json_t *values = json_deep_copy(json_object_get(h, "values"));
    if (!json_is_object(values)) {
        json_decref(values);
        values = json_object();
    }
    if (!values || (json_is_object(t->values) && json_object_update(values, (json_t *)t->values)) ||
        json_object_set_new(values, "replicaCount", json_integer(t->replicas))) {
        json_decref(values);
        return err_set(err, ERR_NOMEM, "out of memory");
    }
    char release[512];
    comp_job_t j;
    hm_job(t, release, sizeof release, &j);
    j.chart_path = chart.path;
    j.values = values;
    int rc = comp_install(&j);
    json_decref(values);
    return rc ? err_set(err, ERR_UNAVAILABLE, "%s: %s", j.reason, j.message) : 0;
}

/* Ready replicas of the release's Deployments, by helm's own label. */
static int hm_status(const ad_target_t *t, json_int_t *ready, err_t *err)
{
    char release[512], path[1200];
    object_name(t, release, sizeof release);
    snprintf(path, sizeof path,
             "/apis/apps/v1/namespaces/%s/deployments?labelSelector=app.kubernetes.io%%2Finstance%%3D%s",
             t->ns, release);
    json_t *list = NULL;
    int rc = call(t->kc, "GET", path, "application/json", NULL, 0, &list, err);
    *ready = 0;
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(list, "items"), i, d) {
        *ready += json_integer_value(json_object_get(json_object_get(d, "status"),
                                                     "readyReplicas"));
    }
    json_decref(list);
    return rc;
}

static int hm_remove(const ad_target_t *t, err_t *err)
{
    char release[512];
    comp_job_t j;
    hm_job(t, release, sizeof release, &j);
    return comp_uninstall(&j) ? err_set(err, ERR_UNAVAILABLE, "%s: %s", j.reason, j.message) : 0;
}

static const ad_plugin_t ad_plugins[] = {
    {"workload", wl_validate, wl_provision, wl_status, wl_remove},
    {"helm", hm_validate, hm_provision, hm_status, hm_remove},
    {NULL, NULL, NULL, NULL, NULL},
};

static const ad_plugin_t *plugin_for(const char *type)
{
    for (const ad_plugin_t *p = ad_plugins; p->type; p++)
        if (!strcmp(p->type, type && *type ? type : "workload"))
            return p;
    return NULL;
}

/* ---- resolution -------------------------------------------------------------------------- */

static int is_approved(const json_t *v)
{
    const char *ph = str_at(json_object_get(v, "status"), "phase", NULL);
    return ph && !strcmp(ph, "Approved");
}

/* The version of app that want ("latest", "" or a version) resolves to
 * among versions (ApplicationVersion objects), borrowed from it; NULL
 * with *reason and msg (n bytes) when none does. */
static const json_t *resolve(const json_t *versions, const char *app, const char *want,
                             const char **reason, char *msg, size_t n)
{
    int latest = !want || !*want || !strcmp(want, "latest");
    const json_t *best = NULL, *named = NULL;
    semver_t bv;
    size_t i;
    const json_t *v;
    json_array_foreach(versions, i, v) {
        const char *va = str_at(json_object_get(v, "spec"), "application", NULL);
        const char *vs = str_at(json_object_get(v, "spec"), "version", NULL);
        semver_t sv;
        if (!va || strcmp(va, app) || !vs || semver_parse(vs, &sv, NULL))
            continue;
        if (!latest) {
            if (!strcmp(vs, want))
                named = v;
            continue;
        }
        if (!is_approved(v) || semver_is_prerelease(&sv))
            continue;
        if (!best || semver_cmp(&sv, &bv) > 0) {
            best = v;
            bv = sv;
        }
    }
    if (latest && !best) {
        *reason = "VersionNotFound";
        snprintf(msg, n, "application %s has no Approved release to be latest", app);
    } else if (!latest && !named) {
        *reason = "VersionNotFound";
        snprintf(msg, n, "application %s has no version %s", app, want);
    } else if (!latest && !is_approved(named)) {
        *reason = "VersionNotApproved";
        snprintf(msg, n, "version %s of application %s is %s, not Approved", want, app,
                 str_at(json_object_get(named, "status"), "phase", NULL)
                     ? str_at(json_object_get(named, "status"), "phase", NULL) : "not submitted");
        named = NULL;
    }
    return latest ? best : named;
}

/* ---- reconcile ----------------------------------------------------------------------------- */

/* One topology's place: its NodeGroup and a client of its Cluster, or
 * why it has none (*reason, msg). */
typedef struct place {
    json_t *ng;
    json_t *cluster;
    kc_t *kc;
    const char *reason;
    char msg[1100];
} place_t;

static void place_free(place_t *p)
{
    json_decref(p->ng);
    json_decref(p->cluster);
    kc_free(p->kc);
    memset(p, 0, sizeof *p);
}

/* 0 (p filled, maybe with a reason), or ERR_NOMEM. */
static int locate(ctrl_t *c, const char *ng_name, place_t *p, err_t *err)
{
    memset(p, 0, sizeof *p);
    reg_t *reg = ctrl_env(c)->reg;
    err_t e;
    err_clear(&e);
    int rc = reg_get(reg, kind_of(SCOPE_GROUP, "nodegroups"), NULL, ng_name, &p->ng, &e);
    if (rc == ERR_NOT_FOUND) {
        p->reason = "NodeGroupNotFound";
        snprintf(p->msg, sizeof p->msg, "NodeGroup %s does not exist", ng_name);
        return 0;
    }
    if (rc)
        return err_set(err, rc, "%s", e.message);
    const char *cl = str_at(json_object_get(p->ng, "spec"), "cluster", NULL);
    if (!cl || !*cl)
        cl = ctrl_env(c)->cluster ? ctrl_env(c)->cluster : "host";
    json_t *cluster = NULL;
    err_clear(&e);
    rc = reg_get(reg, kind_of(SCOPE_GROUP, "clusters"), NULL, cl, &cluster, &e);
    if (rc && rc != ERR_NOT_FOUND)
        return err_set(err, rc, "%s", e.message);
    if (rc || !cond_is_true(json_object_get(cluster, "status"), "Ready")) {
        p->reason = "ClusterNotReady";
        snprintf(p->msg, sizeof p->msg, "Cluster %s of NodeGroup %s is %s", cl, ng_name,
                 rc ? "not registered" : "not Ready");
        json_decref(cluster);
        return 0;
    }
    err_clear(&e);
    rc = ctrl_cluster_client(json_object_get(json_object_get(cluster, "spec"), "connection"),
                             AD_CLIENT_TIMEOUT_MS, &p->kc, &e);
    p->cluster = cluster;
    if (rc == ERR_NOMEM)
        return err_set(err, rc, "%s", e.message);
    if (rc) {
        p->reason = "ClusterNotReady";
        snprintf(p->msg, sizeof p->msg, "Cluster %s: %s", cl, e.message);
    }
    return 0;
}

/* What a reconcile learnt, for the Progressing condition. */
typedef struct progress {
    const char *reason;          /* the first blocking reason, or NULL */
    sbuf_t msg;
    int pending;                 /* topologies not yet Available */
    int failed;
} progress_t;

static void note(progress_t *pg, const char *reason, const char *msg)
{
    if (!pg->reason)
        pg->reason = reason;
    if (pg->msg.len)
        sbuf_puts(&pg->msg, "; ");
    sbuf_puts(&pg->msg, msg);
}

/* Provisions one topology and fills its status entry. */
static int topology(ctrl_t *c, const json_t *ad, const json_t *top, const json_t *version,
                    const ad_plugin_t *plugin, json_t *entry, progress_t *pg, err_t *err)
{
    const char *ng = str_at(top, "nodeGroup", NULL);
    json_int_t replicas = json_is_integer(json_object_get(top, "replicas"))
                              ? json_integer_value(json_object_get(top, "replicas")) : 1;
    const char *phase = "Pending";
    json_int_t ready = 0;
    char msg[1200] = "";
    place_t p;
    memset(&p, 0, sizeof p);
    int rc = 0;
    if (!version) {
        snprintf(msg, sizeof msg, "waiting for a version to resolve");
    } else if (!(rc = locate(c, ng, &p, err)) && p.reason) {
        snprintf(msg, sizeof msg, "%s", p.msg);
        note(pg, p.reason, p.msg);
    } else if (!rc) {
        ad_target_t t = {.ns = str_at(ad, "metadata", "namespace"),
                         .deployment = str_at(ad, "metadata", "name"), .nodegroup = ng,
                         .nodes = json_object_get(json_object_get(p.ng, "spec"), "nodes"),
                         .replicas = replicas, .values = json_object_get(top, "values"),
                         .version = version, .kc = p.kc, .cluster = p.cluster,
                         .env = ctrl_env(c)};
        err_t e;
        err_clear(&e);
        if (!plugin || plugin->validate(version, &e) || plugin->provision(&t, &e) ||
            plugin->status(&t, &ready, &e)) {
            phase = "Failed";
            snprintf(msg, sizeof msg, "%s", plugin ? e.message : "no plugin for the version's type");
            note(pg, "ProvisionFailed", msg);
            pg->failed = 1;
        } else {
            phase = ready >= replicas ? "Available" : "Progressing";
            snprintf(msg, sizeof msg, "%lld of %lld replicas ready", (long long)ready,
                     (long long)replicas);
        }
    }
    place_free(&p);
    pg->pending += strcmp(phase, "Available") != 0;
    if (!rc && (json_object_set_new(entry, "nodeGroup", json_string(ng ? ng : "")) ||
                json_object_set_new(entry, "phase", json_string(phase)) ||
                json_object_set_new(entry, "readyReplicas", json_integer(ready)) ||
                json_object_set_new(entry, "message", json_string(msg))))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    return rc;
}

/* Removes what topology ng got (a topology gone from spec, or all of them
 * on delete). A NodeGroup or Cluster that no longer exists has nothing
 * left to remove from. */
static int unprovision(ctrl_t *c, const json_t *ad, const char *ng, const json_t *version,
                       const ad_plugin_t *plugin, err_t *err)
{
    place_t p;
    int rc = locate(c, ng, &p, err);
    if (!rc && !p.reason && plugin) {
        ad_target_t t = {.ns = str_at(ad, "metadata", "namespace"),
                         .deployment = str_at(ad, "metadata", "name"), .nodegroup = ng,
                         .version = version, .kc = p.kc, .cluster = p.cluster,
                         .env = ctrl_env(c)};
        rc = plugin->remove(&t, err);
    } else if (!rc && p.reason && !strcmp(p.reason, "ClusterNotReady") && p.ng) {
        /* The cluster is there but unreachable: try again later rather
         * than leave its workloads behind. */
        rc = err_set(err, ERR_UNAVAILABLE, "%s", p.msg);
    }
    place_free(&p);
    return rc;
}

static int in_spec(const json_t *ad, const char *ng)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(json_object_get(ad, "spec"), "topologies"), i, t) {
        const char *n = str_at(t, "nodeGroup", NULL);
        if (n && !strcmp(n, ng))
            return 1;
    }
    return 0;
}

static const char *type_of(const json_t *version, const json_t *app)
{
    const char *t = str_at(json_object_get(version, "spec"), "type", NULL);
    if (!t || !*t)
        t = str_at(json_object_get(app, "spec"), "type", NULL);
    return t && *t ? t : "workload";
}

/* The phase status gives topology ng, or NULL when it has no entry. */
static const char *status_phase(const json_t *ad, const char *ng)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(json_object_get(ad, "status"), "topologies"), i, t) {
        const char *n = str_at(t, "nodeGroup", NULL);
        if (n && !strcmp(n, ng))
            return str_at(t, "phase", NULL);
    }
    return NULL;
}

/* Deleting: every topology's workloads go, then the finalizer. A
 * topology never provisioned (no status entry, or Pending: its NodeGroup
 * or Cluster was never there to provision to) has nothing to remove. */
static int finalize(ctrl_t *c, const json_t *ad, const json_t *version, const json_t *app,
                    err_t *err)
{
    const ad_plugin_t *plugin = plugin_for(type_of(version, app));
    size_t i;
    const json_t *t;
    int rc = 0;
    json_array_foreach(json_object_get(json_object_get(ad, "status"), "topologies"), i, t) {
        const char *ng = str_at(t, "nodeGroup", NULL);
        const char *ph = ng ? status_phase(ad, ng) : NULL;
        if (!rc && ph && strcmp(ph, "Pending"))
            rc = unprovision(c, ad, ng, version, plugin, err);
    }
    if (!rc)
        rc = ctrl_remove_finalizer(c, ad, AD_FINALIZER, err);
    return rc;
}

static int set_conditions(json_t *status, const json_t *version, const char *why,
                          const char *why_msg, progress_t *pg, size_t ntop, int64_t gen)
{
    time_t now = time(NULL);
    char msg[600];
    if (version)
        snprintf(msg, sizeof msg, "resolved to %s",
                 str_at(json_object_get(version, "spec"), "version", NULL));
    int rc = cond_set(status, "VersionResolved", version ? "True" : "False",
                      version ? "Resolved" : why, version ? msg : why_msg, gen, now);
    if (rc || pg->msg.oom)
        return ERR_NOMEM;
    if (!version)
        return cond_set(status, "Progressing", "False", "VersionUnresolved", why_msg, gen, now);
    if (pg->reason)
        return cond_set(status, "Progressing", "False", pg->reason, pg->msg.p, gen, now);
    if (pg->pending) {
        snprintf(msg, sizeof msg, "%d of %zu topologies not yet available", pg->pending, ntop);
        return cond_set(status, "Progressing", "True", "RollingOut", msg, gen, now);
    }
    return cond_set(status, "Progressing", "True", "Available",
                    "every topology has its replicas ready", gen, now);
}

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    reg_t *reg = ctrl_env(c)->reg;
    json_t *ad = NULL, *versions = NULL, *app = NULL, *status = NULL;
    progress_t pg = {NULL, SBUF_INIT, 0, 0};
    int rc = reg_get(reg, ctrl_kind(c), ns, name, &ad, err);
    if (rc)
        return rc;
    const json_t *spec = json_object_get(ad, "spec");
    const char *appname = str_at(spec, "application", NULL);
    rc = list_kind(c, kind_of(APP_GROUP, "applicationversions"), NULL, &versions, err);
    err_t e;
    err_clear(&e);
    if (!rc && appname)
        reg_get(reg, kind_of(APP_GROUP, "applications"), NULL, appname, &app, &e);
    const char *why = NULL;
    char why_msg[512] = "";
    const json_t *version = rc ? NULL
                               : resolve(json_object_get(versions, "items"), appname ? appname : "",
                                         str_at(spec, "version", NULL), &why, why_msg,
                                         sizeof why_msg);
    const json_t *md = json_object_get(ad, "metadata");
    if (!rc && json_object_get(md, "deletionTimestamp")) {
        rc = ctrl_has_finalizer(ad, AD_FINALIZER) ? finalize(c, ad, version, app, err) : 0;
        goto out;
    }
    const ad_plugin_t *plugin = version ? plugin_for(type_of(version, app)) : NULL;
    json_t *tops = json_array();
    const json_t *old = json_object_get(ad, "status");
    json_t *conds = json_deep_copy(json_object_get(old, "conditions"));
    status = json_object();
    if (!rc && (!tops || !status || json_object_set_new(status, "topologies", tops) ||
                (conds && json_object_set_new(status, "conditions", conds)) ||
                (version && json_object_set_new(status, "resolvedVersion",
                                                json_string(str_at(json_object_get(version, "spec"),
                                                                   "version", NULL))))))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(spec, "topologies"), i, t) {
        json_t *entry = json_object();
        if (!rc && (!entry || json_array_append_new(tops, entry)))
            rc = err_set(err, ERR_NOMEM, "out of memory");
        if (!rc)
            rc = topology(c, ad, t, version, plugin, entry, &pg, err);
    }
    /* Topologies dropped from spec give back what they had. */
    json_array_foreach(json_object_get(old, "topologies"), i, t) {
        const char *ng = str_at(t, "nodeGroup", NULL);
        err_t ue;
        err_clear(&ue);
        if (!rc && ng && !in_spec(ad, ng) && unprovision(c, ad, ng, version, plugin, &ue))
            note(&pg, "ProvisionFailed", ue.message);
    }
    int64_t gen = json_integer_value(json_object_get(md, "generation"));
    if (!rc && set_conditions(status, version, why, why_msg, &pg,
                              json_array_size(json_object_get(spec, "topologies")), gen))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (!rc)
        rc = ctrl_write_status(c, ad, status, NULL, err);
    if (!rc) {
        /* Readiness is read from the member clusters: looked at again. */
        ctrl_enqueue_after(c, ns, name, pg.pending ? AD_POLL_MS : AD_RECHECK_MS);
        if (pg.failed)
            rc = CTRL_RETRY;
    }
out:
    sbuf_free(&pg.msg);
    json_decref(status);
    json_decref(app);
    json_decref(versions);
    json_decref(ad);
    return rc;
}

/* ---- what else queues an ApplicationDeployment ------------------------------------------- */

typedef int (*ad_match_fn)(const json_t *ad, const char *what);

static int uses_app(const json_t *ad, const char *app)
{
    const char *a = str_at(json_object_get(ad, "spec"), "application", NULL);
    return a && !strcmp(a, app);
}

static int uses_nodegroup(const json_t *ad, const char *ng) { return in_spec(ad, ng); }

static int uses_any(const json_t *ad, const char *what)
{
    (void)ad;
    (void)what;
    return 1;
}

/* Queues the ApplicationDeployments match says what concerns. */
static void enqueue_matching(ctrl_t *c, ad_match_fn match, const char *what)
{
    json_t *list = NULL;
    err_t err;
    err_clear(&err);
    if (!what || list_kind(c, ctrl_kind(c), NULL, &list, &err))
        return;                  /* the next resync looks at every one */
    size_t i;
    const json_t *ad;
    json_array_foreach(json_object_get(list, "items"), i, ad) {
        if (match(ad, what))
            ctrl_enqueue(c, str_at(ad, "metadata", "namespace"), str_at(ad, "metadata", "name"));
    }
    json_decref(list);
}

static void map_version(ctrl_t *c, const json_t *obj, const json_t *old)
{
    const char *a = str_at(json_object_get(obj, "spec"), "application", NULL);
    const char *b = str_at(json_object_get(old, "spec"), "application", NULL);
    enqueue_matching(c, uses_app, a);
    if (b && (!a || strcmp(a, b)))
        enqueue_matching(c, uses_app, b);
}

static void map_application(ctrl_t *c, const json_t *obj, const json_t *old)
{
    enqueue_matching(c, uses_app, str_at(obj ? obj : old, "metadata", "name"));
}

static void map_nodegroup(ctrl_t *c, const json_t *obj, const json_t *old)
{
    enqueue_matching(c, uses_nodegroup, str_at(obj ? obj : old, "metadata", "name"));
}

static void map_cluster(ctrl_t *c, const json_t *obj, const json_t *old)
{
    /* Readiness flips are rare; a status write that changes nothing the
     * deployments read still comes here, so only a Ready change counts. */
    if (obj && old && cond_is_true(json_object_get(obj, "status"), "Ready") ==
                          cond_is_true(json_object_get(old, "status"), "Ready"))
        return;
    enqueue_matching(c, uses_any, "");
}

static const ctrl_watch_t watches[] = {
    {APP_GROUP, "applicationversions", map_version},
    {APP_GROUP, "applications", map_application},
    {SCOPE_GROUP, "nodegroups", map_nodegroup},
    {SCOPE_GROUP, "clusters", map_cluster},
    {NULL, NULL, NULL},
};

const ctrl_def_t ctrl_appdeploy = {
    .name = "applicationdeployment",
    .group = APP_GROUP, .resource = "applicationdeployments",
    .workers = 4,
    .watches = watches,
    .reconcile = reconcile,
};
