/*
 * In-process controllers benchmark (not a test: prints figures).
 *
 *   bench_controllers DIR
 *
 * On a store in DIR (a real disk), with the IAMRole controller running:
 *   - 1,000 IAMRoles select one RoleTemplate; the template's rules change:
 *     the time until the last role shows the change in its status, and
 *     status writes per second meanwhile. The reference is the same 1,000
 *     status writes made one after another through the registry's
 *     /status strategy, in this process: the ratio is what the controller
 *     (its queue, its reads, the aggregation) costs over the writes alone;
 *   - 10,000 unchanged IAMRoles at resync: reconciles per second, and the
 *     status writes it made (must be 0);
 *   - 1,000 ApplicationDeployments on "latest": the time until the last
 *     shows a newly approved version in status.resolvedVersion.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../controllers/ctrl.h"
#include "../../lib/mem.h"

#define NSELECT 1000
#define NTOTAL 10000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static reg_t reg;
static authz_user_t admin;

static void die(const char *what, const err_t *err)
{
    fprintf(stderr, "bench_controllers: %s: %s\n", what, err ? err->message : "");
    exit(1);
}

static const reg_kind_t *kind(const char *resource)
{
    const reg_kind_t *k = reg_find("iam.theriseunion.io", "v1alpha1", resource);
    return k ? k : reg_find("app.theriseunion.io", "v1alpha1", resource);
}

static void put_ns(const char *resource, const char *ns, const char *text);

static void put(const char *resource, const char *text) { put_ns(resource, NULL, text); }

static void put_ns(const char *resource, const char *ns, const char *text)
{
    json_t *body = json_loads(text, 0, NULL);
    reg_write_opts_t wo = {.user = &admin, .field_manager = "bench"};
    json_t *out = NULL;
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    err_t err;
    err_clear(&err);
    const char *name = json_string_value(json_object_get(json_object_get(body, "metadata"), "name"));
    int rc = reg_create(&reg, kind(resource), ns, body, &wo, &out, &oc, &err);
    if (rc == ERR_ALREADY_EXISTS) {
        json_t *cur = NULL;
        err_clear(&err);
        if (reg_get(&reg, kind(resource), NULL, name, &cur, &err))
            die("get", &err);
        json_object_set(json_object_get(body, "metadata"), "resourceVersion",
                        json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
        json_decref(cur);
        rc = reg_update(&reg, kind(resource), NULL, name, body, 0, &wo, &out, &oc, &err);
    }
    if (rc)
        die(name, &err);
    json_decref(out);
    mem_free(oc.body);
    json_decref(body);
}

static void template_with(const char *verb)
{
    char t[512];
    snprintf(t, sizeof t,
             "{\"metadata\":{\"name\":\"bench\",\"labels\":{\"bench\":\"yes\"}},\"spec\":{"
             "\"rules\":[{\"verbs\":[\"%s\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}}",
             verb);
    put("roletemplates", t);
}

static void settle(ctrl_mgr_t *m)
{
    if (ctrl_mgr_wait_idle(m, 600000))
        die("controllers did not settle", NULL);
}

/* Moves ApplicationVersion name to phase through /status. */
static void set_phase(const char *name, const char *phase)
{
    json_t *cur = NULL, *out = NULL;
    err_t err;
    err_clear(&err);
    if (reg_get(&reg, kind("applicationversions"), NULL, name, &cur, &err))
        die("get version", &err);
    json_object_set_new(cur, "status", json_pack("{s:s}", "phase", phase));
    reg_write_opts_t wo = {.user = &admin, .field_manager = "bench"};
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    if (reg_update(&reg, kind("applicationversions"), NULL, name, cur, 1, &wo, &out, &oc, &err))
        die("phase", &err);
    json_decref(out);
    mem_free(oc.body);
    json_decref(cur);
}

static void version(const char *v, int approve)
{
    char t[512];
    snprintf(t, sizeof t, "{\"metadata\":{\"name\":\"web-%s\"},\"spec\":{\"application\":"
             "\"web\",\"version\":\"%s\"}}", v, v);
    put("applicationversions", t);
    if (approve) {
        snprintf(t, sizeof t, "web-%s", v);
        set_phase(t, "Submitted");
        set_phase(t, "Approved");
    }
}

/* The reference: n status writes one after another, of the roles
 * r0000.., each a real change (a condition's message). */
static double reference_writes(size_t n)
{
    double t0 = now_s();
    reg_write_opts_t wo = {.user = &admin, .field_manager = "bench-reference"};
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%05zu", i);
        json_t *cur = NULL;
        err_t err;
        err_clear(&err);
        if (reg_get(&reg, kind("iamroles"), NULL, name, &cur, &err))
            die("get", &err);
        json_t *st = json_object_get(cur, "status");
        json_object_set_new(st, "aggregatedUIPermissions", json_pack("[s]", "reference"));
        json_t *out = NULL;
        reg_outcome_t oc;
        memset(&oc, 0, sizeof oc);
        if (reg_update(&reg, kind("iamroles"), NULL, name, cur, 1, &wo, &out, &oc, &err))
            die("reference write", &err);
        json_decref(out);
        mem_free(oc.body);
        json_decref(cur);
    }
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bench_controllers DIR\n");
        return 2;
    }
    mem_init();
    nftw(argv[1], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    store_config_t cfg = {.data_dir = argv[1], .compact_interval_ms = STORE_COMPACT_NEVER};
    store_t *store = NULL;
    authz_t *authz = NULL;
    err_t err;
    err_clear(&err);
    if (store_open(&cfg, &store, &err) || authz_new(store, "host", &authz, &err))
        die("open", &err);
    reg = (reg_t){.store = store, .authz = authz, .cluster = "host"};
    authz_user_reset(&admin);
    snprintf(admin.name, sizeof admin.name, "bench");
    authz_user_add_group(&admin, "system:masters");

    template_with("get");
    char role[256];
    for (size_t i = 0; i < NTOTAL; i++) {
        snprintf(role, sizeof role,
                 i < NSELECT ? "{\"metadata\":{\"name\":\"r%05zu\"},\"spec\":{\"scope\":\"Cluster\","
                               "\"templateSelector\":{\"matchLabels\":{\"bench\":\"yes\"}}}}"
                             : "{\"metadata\":{\"name\":\"r%05zu\"},\"spec\":{\"scope\":\"Cluster\","
                               "\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
                               "\"resources\":[\"nodes\"]}]}}",
                 i);
        put("iamroles", role);
    }
    ctrl_env_t env = {.store = store, .reg = &reg, .authz = authz, .cluster = "host"};
    ctrl_mgr_t *m = NULL;
    put("applications", "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"type\":\"workload\"}}");
    version("1.0.0", 1);
    for (size_t i = 0; i < NSELECT; i++) {
        snprintf(role, sizeof role,
                 "{\"metadata\":{\"name\":\"d%04zu\"},\"spec\":{\"application\":\"web\","
                 "\"version\":\"latest\"}}", i);
        put_ns("applicationdeployments", "bench", role);
    }
    if (ctrl_mgr_new(&env, "iamrole,application,applicationdeployment", &m, &err) ||
        ctrl_mgr_start(m, &ctrl_elector_single, &err))
        die("controllers", &err);
    double t0 = now_s();
    settle(m);
    printf("start-up: %d IAMRoles and %d ApplicationDeployments reconciled and their status "
           "written in %.2f s\n", NTOTAL, NSELECT, now_s() - t0);

    /* One template change reaches the 1,000 roles that select it. */
    ctrl_totals_t a, b;
    ctrl_mgr_totals(m, &a);
    t0 = now_s();
    template_with("list");
    settle(m);
    double took = now_s() - t0, change_s = took;
    ctrl_mgr_totals(m, &b);
    size_t shown = 0;
    for (size_t i = 0; i < NSELECT; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%05zu", i);
        json_t *r = NULL;
        if (reg_get(&reg, kind("iamroles"), NULL, name, &r, &err))
            die("get", &err);
        const json_t *rule = json_array_get(
            json_object_get(json_object_get(r, "status"), "aggregatedRules"), 0);
        const char *verb = json_string_value(json_array_get(json_object_get(rule, "verbs"), 0));
        shown += verb && !strcmp(verb, "list");
        json_decref(r);
    }
    uint64_t writes = b.status_writes - a.status_writes;
    printf("template change -> %zu/%d selecting roles show it: %.0f ms, %llu status writes "
           "(%.0f/s)\n", shown, NSELECT, took * 1000, (unsigned long long)writes,
           (double)writes / took);

    /* Resync of an unchanged world. */
    ctrl_mgr_totals(m, &a);
    t0 = now_s();
    ctrl_mgr_resync(m);
    settle(m);
    took = now_s() - t0;
    ctrl_mgr_totals(m, &b);
    printf("resync of %d unchanged IAMRoles and %d ApplicationDeployments: %.2f s "
           "(%.0f reconciles/s), %llu status writes (must be 0)\n", NTOTAL, NSELECT, took, (double)(b.reconciles - a.reconciles) / took,
           (unsigned long long)(b.status_writes - a.status_writes));

    /* A new release approved: every deployment on latest re-resolves. */
    version("1.1.0", 0);
    settle(m);
    t0 = now_s();
    set_phase("web-1.1.0", "Submitted");
    set_phase("web-1.1.0", "Approved");
    settle(m);
    double resolve_s = now_s() - t0;
    size_t moved = 0;
    for (size_t i = 0; i < NSELECT; i++) {
        char name[32];
        snprintf(name, sizeof name, "d%04zu", i);
        json_t *d = NULL;
        if (reg_get(&reg, kind("applicationdeployments"), "bench", name, &d, &err))
            die("get", &err);
        const char *rv = json_string_value(
            json_object_get(json_object_get(d, "status"), "resolvedVersion"));
        moved += rv && !strcmp(rv, "1.1.0");
        json_decref(d);
    }
    printf("version approved -> %zu/%d ApplicationDeployments on latest resolved to it: %.0f ms\n",
           moved, NSELECT, resolve_s * 1000);

    ctrl_mgr_free(m);
    double ref = reference_writes(NSELECT);
    printf("reference: %d status writes one after another: %.0f ms (%.0f/s); the controller's "
           "%d took %.2fx that\n", NSELECT, ref * 1000, NSELECT / ref, NSELECT,
           change_s / ref);
    authz_free(authz);
    store_shutdown_watchers(store);
    store_close(store);
    return 0;
}
