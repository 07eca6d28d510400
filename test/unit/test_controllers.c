/* Unit tests of controllers/: the framework (informer, resync, restart,
 * resume after falling behind) and the IAMRole, Workspace, NodeGroup and
 * Application controllers, on a real store, registry and authorizer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../controllers/ctrl.h"

#include "fixture.h"

/* The manager under test and the admin who writes (system:masters), beside
 * the shared fixture; one test runs at a time. */
static ctrl_mgr_t *mgr;
static authz_user_t admin;

static void mgr_run(fx_t *f, const char *which, unsigned watch_queue)
{
    ctrl_env_t env = {.store = f->store, .reg = &f->reg, .authz = f->authz, .cluster = "host",
                      .watch_queue = watch_queue};
    err_t err = {0};
    assert_int_equal(ctrl_mgr_new(&env, which, &mgr, &err), 0);
    assert_int_equal(ctrl_mgr_start(mgr, &ctrl_elector_single, &err), 0);
}

static void mgr_start(fx_t *f, unsigned watch_queue)
{
    mgr_run(f, "iamrole,workspace,nodegroup", watch_queue);
}

static void mgr_stop(void)
{
    ctrl_mgr_free(mgr);
    mgr = NULL;
}

static int setup(void **state)
{
    if (fx_setup(state))
        return -1;
    if (fx_start_authz(*state)) {
        fx_teardown(state);
        return -1;
    }
    authz_user_reset(&admin);
    snprintf(admin.name, sizeof admin.name, "admin");
    authz_user_add_group(&admin, "system:masters");
    return 0;
}

static int teardown(void **state)
{
    mgr_stop();
    return fx_teardown(state);
}

static const reg_kind_t *kind(const char *group, const char *resource)
{
    const reg_kind_t *k = reg_find(group, "v1alpha1", resource);
    assert_non_null(k);
    return k;
}

#define IAM "iam.theriseunion.io"
#define SCOPE "scope.theriseunion.io"
#define APP "app.theriseunion.io"

/* Creates, or replaces (spec and labels), an object as admin. */
static void put(fx_t *f, const char *group, const char *resource, const char *json)
{
    const reg_kind_t *k = kind(group, resource);
    json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    const char *name = json_string_value(json_object_get(json_object_get(body, "metadata"), "name"));
    reg_write_opts_t wo = {.user = &admin, .field_manager = "test"};
    json_t *out = NULL;
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    err_t err = {0};
    int rc = reg_create(&f->reg, k, NULL, body, &wo, &out, &oc, &err);
    if (rc == ERR_ALREADY_EXISTS) {
        json_t *cur = NULL;
        err_t e2 = {0};
        assert_int_equal(reg_get(&f->reg, k, NULL, name, &cur, &e2), 0);
        json_object_set(body, "status", json_object_get(cur, "status"));
        json_object_set_new(json_object_get(body, "metadata"), "resourceVersion",
                            json_incref(json_object_get(json_object_get(cur, "metadata"),
                                                        "resourceVersion")));
        json_decref(cur);
        memset(&err, 0, sizeof err);
        rc = reg_update(&f->reg, k, NULL, name, body, 0, &wo, &out, &oc, &err);
    }
    if (rc)
        fail_msg("put %s: %s", name, err.message);
    json_decref(out);
    free(oc.body);
    json_decref(body);
}

static void del(fx_t *f, const char *group, const char *resource, const char *name)
{
    reg_delete_opts_t o = {.grace_period_seconds = -1, .user = &admin};
    json_t *out = NULL;
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    err_t err = {0};
    assert_int_equal(reg_delete(&f->reg, kind(group, resource), NULL, name, &o, &out, &oc, &err), 0);
    json_decref(out);
    free(oc.body);
}

static json_t *get(fx_t *f, const char *group, const char *resource, const char *name)
{
    json_t *out = NULL;
    err_t err = {0};
    assert_int_equal(reg_get(&f->reg, kind(group, resource), NULL, name, &out, &err), 0);
    return out;
}

/* The controllers settled, and the authorizer caught up with storage
 * (so the two can be compared). */
static void idle(fx_t *f)
{
    assert_int_equal(ctrl_mgr_wait_idle(mgr, 20000), 0);
    uint64_t want = store_revision(f->store);
    for (int i = 0; i < 20000 && authz_revision(f->authz) < want; i++)
        usleep(1000);
    assert_true(authz_revision(f->authz) >= want);
}

static uint64_t writes(void)
{
    ctrl_totals_t t;
    ctrl_mgr_totals(mgr, &t);
    return t.status_writes;
}

#define TEMPLATE(name, labels, scopes, verb) \
    "{\"metadata\":{\"name\":\"" name "\",\"labels\":" labels "},\"spec\":{\"scopes\":" scopes \
    ",\"rules\":[{\"verbs\":[\"" verb "\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}}"

/* The status's aggregated rules equal what the authorizer holds for the
 * role, through template changes, relabelling and deletion. */
static void assert_status_is_authorizers(fx_t *f, const char *role, size_t want_rules)
{
    json_t *r = get(f, IAM, "iamroles", role);
    const json_t *st = json_object_get(r, "status");
    json_t *rules = NULL, *deny = NULL;
    assert_int_equal(authz_role_rules(f->authz, role, &rules, &deny), 0);
    if (!json_equal(json_object_get(st, "aggregatedRules"), rules)) {
        fail_msg("status has %zu rules, the authorizer %zu",
                 json_array_size(json_object_get(st, "aggregatedRules")), json_array_size(rules));
    }
    assert_true(json_equal(json_object_get(st, "aggregatedDenyRules"), deny));
    assert_int_equal(json_array_size(rules), want_rules);
    assert_int_equal(json_integer_value(json_object_get(st, "observedGeneration")),
                     json_integer_value(json_object_get(json_object_get(r, "metadata"), "generation")));
    json_decref(rules);
    json_decref(deny);
    json_decref(r);
}

static void test_controllers__iamrole_status(void **state)
{
    fx_t *f = *state;
    mgr_start(f, 0);
    put(f, IAM, "roletemplates", TEMPLATE("t-get", "{\"tier\":\"view\"}", "[]", "get"));
    put(f, IAM, "iamroles",
        "{\"metadata\":{\"name\":\"viewer\"},\"spec\":{\"scope\":\"Workspace\","
        "\"templateRefs\":[\"t-get\",\"absent\"],"
        "\"templateSelector\":{\"matchLabels\":{\"tier\":\"view\"}}}}");
    idle(f);
    assert_status_is_authorizers(f, "viewer", 1);
    json_t *r = get(f, IAM, "iamroles", "viewer");
    const json_t *st = json_object_get(r, "status");
    const json_t *c0 = json_array_get(json_object_get(st, "conditions"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "type")), "TemplatesResolved");
    assert_string_equal(json_string_value(json_object_get(c0, "status")), "False");
    assert_string_equal(json_string_value(json_object_get(c0, "message")),
                        "RoleTemplates not found: absent");
    json_decref(r);
    /* A selected template appears; relabelled away it goes; one whose
     * scopes exclude the role's gives no rules and says so. */
    put(f, IAM, "roletemplates", TEMPLATE("t-list", "{\"tier\":\"view\"}", "[]", "list"));
    idle(f);
    assert_status_is_authorizers(f, "viewer", 2);
    put(f, IAM, "roletemplates", TEMPLATE("t-list", "{\"tier\":\"other\"}", "[]", "list"));
    idle(f);
    assert_status_is_authorizers(f, "viewer", 1);
    put(f, IAM, "roletemplates", TEMPLATE("t-list", "{\"tier\":\"view\"}", "[\"Platform\"]", "list"));
    idle(f);
    assert_status_is_authorizers(f, "viewer", 1);
    r = get(f, IAM, "iamroles", "viewer");
    const json_t *c1 = json_array_get(json_object_get(json_object_get(r, "status"), "conditions"), 1);
    assert_string_equal(json_string_value(json_object_get(c1, "type")), "ScopeCompatible");
    assert_string_equal(json_string_value(json_object_get(c1, "status")), "False");
    json_decref(r);
    /* The missing template created: resolved; the named one deleted: gone. */
    put(f, IAM, "roletemplates", TEMPLATE("absent", "{}", "[]", "watch"));
    idle(f);
    assert_status_is_authorizers(f, "viewer", 2);
    del(f, IAM, "roletemplates", "t-get");
    idle(f);
    assert_status_is_authorizers(f, "viewer", 1);
}

/* A resync of an unchanged world reconciles every object and writes
 * nothing; a restart on an existing store writes only what changed while
 * the controllers were down. */
static void test_controllers__resync_and_restart_write_only_changes(void **state)
{
    fx_t *f = *state;
    mgr_start(f, 0);
    put(f, IAM, "roletemplates", TEMPLATE("a", "{\"set\":\"a\"}", "[]", "get"));
    put(f, IAM, "roletemplates", TEMPLATE("b", "{\"set\":\"b\"}", "[]", "list"));
    char role[256];
    for (int i = 0; i < 20; i++) {
        snprintf(role, sizeof role,
                 "{\"metadata\":{\"name\":\"r%02d\"},\"spec\":{\"templateSelector\":"
                 "{\"matchLabels\":{\"set\":\"%s\"}}}}", i, i < 5 ? "a" : "b");
        put(f, IAM, "iamroles", role);
    }
    put(f, SCOPE, "workspaces", "{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"namespaces\":[{\"name\":\"shop\"}]}}");
    idle(f);
    uint64_t w0 = writes();
    ctrl_totals_t t0, t1;
    ctrl_mgr_totals(mgr, &t0);
    ctrl_mgr_resync(mgr);
    idle(f);
    ctrl_mgr_totals(mgr, &t1);
    assert_true(t1.reconciles >= t0.reconciles + 21);
    assert_int_equal(writes(), w0);
    mgr_stop();
    /* While down: template a changes (5 roles select it). */
    put(f, IAM, "roletemplates", TEMPLATE("a", "{\"set\":\"a\"}", "[]", "delete"));
    mgr_start(f, 0);
    idle(f);
    assert_int_equal(writes(), 5);
    assert_status_is_authorizers(f, "r00", 1);
    json_t *r = get(f, IAM, "iamroles", "r00");
    const json_t *rule = json_array_get(json_object_get(json_object_get(r, "status"), "aggregatedRules"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(rule, "verbs"), 0)), "delete");
    json_decref(r);
}

/* An informer whose watcher falls behind resumes from the last revision
 * it saw, without listing again, and misses nothing. */
static void test_controllers__resume_after_overflow(void **state)
{
    fx_t *f = *state;
    mgr_start(f, 2);
    put(f, IAM, "iamroles",
        "{\"metadata\":{\"name\":\"all\"},\"spec\":{\"templateSelector\":"
        "{\"matchLabels\":{\"bulk\":\"yes\"}}}}");
    char t[512];
    for (int i = 0; i < 300; i++) {
        snprintf(t, sizeof t,
                 "{\"metadata\":{\"name\":\"t%03d\",\"labels\":{\"bulk\":\"yes\"}},\"spec\":{"
                 "\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"r%03d\"]}]}}", i, i);
        put(f, IAM, "roletemplates", t);
    }
    idle(f);
    assert_status_is_authorizers(f, "all", 300);
    ctrl_totals_t tot;
    ctrl_mgr_totals(mgr, &tot);
    assert_true(tot.resumes > 0);
    assert_int_equal(tot.lists, 3);  /* one per controller, at start only */
}

/* Two Workspaces claiming one namespace both say so; the conflict clears
 * on both when one lets go. NodeGroups alike for a node. */
static void test_controllers__claim_conflicts(void **state)
{
    fx_t *f = *state;
    mgr_start(f, 0);
    put(f, SCOPE, "workspaces", "{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"namespaces\":[{\"name\":\"shop\"}]}}");
    put(f, SCOPE, "workspaces", "{\"metadata\":{\"name\":\"w2\"},\"spec\":{\"namespaces\":[{\"cluster\":\"host\",\"name\":\"shop\"},{\"name\":\"bank\"}]}}");
    put(f, SCOPE, "nodegroups", "{\"metadata\":{\"name\":\"g1\"},\"spec\":{\"cluster\":\"e1\",\"nodes\":[\"n1\",\"n2\"]}}");
    put(f, SCOPE, "nodegroups", "{\"metadata\":{\"name\":\"g2\"},\"spec\":{\"cluster\":\"e2\",\"nodes\":[\"n1\"]}}");
    idle(f);
    json_t *w1 = get(f, SCOPE, "workspaces", "w1"), *w2 = get(f, SCOPE, "workspaces", "w2");
    const json_t *c1 = json_array_get(json_object_get(json_object_get(w1, "status"), "conditions"), 0);
    const json_t *c2 = json_array_get(json_object_get(json_object_get(w2, "status"), "conditions"), 0);
    assert_string_equal(json_string_value(json_object_get(c1, "status")), "True");
    assert_string_equal(json_string_value(json_object_get(c1, "message")),
                        "namespace host/shop is also claimed by Workspace w2");
    assert_string_equal(json_string_value(json_object_get(c2, "message")),
                        "namespace host/shop is also claimed by Workspace w1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(w2, "status"), "namespaceCount")), 2);
    json_decref(w1);
    json_decref(w2);
    /* Nodes of the same name in different clusters do not conflict. */
    json_t *g1 = get(f, SCOPE, "nodegroups", "g1");
    assert_false(strcmp(json_string_value(json_object_get(json_array_get(json_object_get(
        json_object_get(g1, "status"), "conditions"), 0), "status")), "False"));
    json_decref(g1);
    put(f, SCOPE, "nodegroups", "{\"metadata\":{\"name\":\"g2\"},\"spec\":{\"cluster\":\"e1\",\"nodes\":[\"n2\"]}}");
    idle(f);
    g1 = get(f, SCOPE, "nodegroups", "g1");
    const json_t *gc = json_array_get(json_object_get(json_object_get(g1, "status"), "conditions"), 0);
    assert_string_equal(json_string_value(json_object_get(gc, "message")),
                        "node e1/n2 is also claimed by NodeGroup g2");
    json_decref(g1);
    /* A third claimant, deleted again: the conflict it made clears. */
    put(f, SCOPE, "workspaces", "{\"metadata\":{\"name\":\"w3\"},\"spec\":{\"namespaces\":[{\"name\":\"bank\"}]}}");
    idle(f);
    w2 = get(f, SCOPE, "workspaces", "w2");
    assert_string_equal(fx_str(json_array_get(json_object_get(json_object_get(w2, "status"), "conditions"), 0), "message"),
                        "namespace host/shop is also claimed by Workspace w1; "
                        "namespace host/bank is also claimed by Workspace w3");
    json_decref(w2);
    del(f, SCOPE, "workspaces", "w3");
    idle(f);
    w2 = get(f, SCOPE, "workspaces", "w2");
    assert_string_equal(fx_str(json_array_get(json_object_get(json_object_get(w2, "status"), "conditions"), 0), "message"),
                        "namespace host/shop is also claimed by Workspace w1");
    json_decref(w2);
    /* w2 lets go of shop: both clear. */
    put(f, SCOPE, "workspaces", "{\"metadata\":{\"name\":\"w2\"},\"spec\":{\"namespaces\":[{\"name\":\"bank\"}]}}");
    idle(f);
    w1 = get(f, SCOPE, "workspaces", "w1");
    c1 = json_array_get(json_object_get(json_object_get(w1, "status"), "conditions"), 0);
    assert_string_equal(json_string_value(json_object_get(c1, "status")), "False");
    json_decref(w1);
}

/* Moves an ApplicationVersion's phase through /status, as admin. */
static void set_phase(fx_t *f, const char *name, const char *phase)
{
    char patch[128];
    snprintf(patch, sizeof patch, "{\"status\":{\"phase\":\"%s\"}}", phase);
    reg_write_opts_t wo = {.user = &admin, .field_manager = "test"};
    json_t *out = NULL;
    reg_outcome_t oc;
    memset(&oc, 0, sizeof oc);
    err_t err = {0};
    if (reg_patch(&f->reg, kind(APP, "applicationversions"), NULL, name,
                  "application/merge-patch+json", patch, strlen(patch), 1, &wo, &out, &oc, &err))
        fail_msg("%s to %s: %s", name, phase, err.message);
    json_decref(out);
    free(oc.body);
}

#define APPVER(name, app, version) \
    "{\"metadata\":{\"name\":\"" name "\"},\"spec\":{\"application\":\"" app \
    "\",\"version\":\"" version "\"}}"

/* An Application's status: latestVersion (NULL: none) and versionCount,
 * at its generation. */
static void assert_app(fx_t *f, const char *name, const char *latest, int count)
{
    json_t *a = get(f, APP, "applications", name);
    const json_t *st = json_object_get(a, "status");
    const char *got = json_string_value(json_object_get(st, "latestVersion"));
    if (latest ? !got || strcmp(got, latest) : got != NULL)
        fail_msg("%s: latestVersion %s, want %s", name, got ? got : "(none)",
                 latest ? latest : "(none)");
    assert_int_equal(json_integer_value(json_object_get(st, "versionCount")), count);
    assert_int_equal(json_integer_value(json_object_get(st, "observedGeneration")),
                     json_integer_value(json_object_get(json_object_get(a, "metadata"), "generation")));
    json_decref(a);
}

/* latestVersion is the highest approved release by semver precedence
 * (1.10.0 above 1.9.3; a pre-release or an unapproved version never),
 * and follows approvals, deletions and a Draft moved to another
 * application; versionCount counts every phase. */
static void test_controllers__application_latest(void **state)
{
    fx_t *f = *state;
    mgr_run(f, "application", 0);
    put(f, APP, "applications", "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"type\":\"helm\"}}");
    put(f, APP, "applications", "{\"metadata\":{\"name\":\"shop\"}}");
    idle(f);
    assert_app(f, "web", NULL, 0);
    static const char *const approved[] = {"web-193", "web-1100", "web-rc"};
    put(f, APP, "applicationversions", APPVER("web-193", "web", "1.9.3"));
    put(f, APP, "applicationversions", APPVER("web-1100", "web", "1.10.0"));
    put(f, APP, "applicationversions", APPVER("web-rc", "web", "2.0.0-rc.1"));
    put(f, APP, "applicationversions", APPVER("web-300", "web", "3.0.0"));
    put(f, APP, "applicationversions", APPVER("shop-500", "shop", "5.0.0"));
    for (size_t i = 0; i < 3; i++) {
        set_phase(f, approved[i], "Submitted");
        set_phase(f, approved[i], "Approved");
    }
    set_phase(f, "web-300", "Submitted");
    set_phase(f, "shop-500", "Submitted");
    set_phase(f, "shop-500", "Approved");
    idle(f);
    assert_app(f, "web", "1.10.0", 4);
    assert_app(f, "shop", "5.0.0", 1);
    del(f, APP, "applicationversions", "web-1100");
    idle(f);
    assert_app(f, "web", "1.9.3", 3);
    set_phase(f, "web-300", "Approved");
    idle(f);
    assert_app(f, "web", "3.0.0", 3);
    /* A Draft moved from shop to web counts for web alone. */
    put(f, APP, "applicationversions", APPVER("d-1", "shop", "0.1.0"));
    idle(f);
    assert_app(f, "shop", "5.0.0", 2);
    put(f, APP, "applicationversions", APPVER("d-1", "web", "0.1.0"));
    idle(f);
    assert_app(f, "shop", "5.0.0", 1);
    assert_app(f, "web", "3.0.0", 4);
    /* A resync of that world writes nothing. */
    uint64_t w0 = writes();
    ctrl_mgr_resync(mgr);
    idle(f);
    assert_int_equal(writes(), w0);
}

/* --controllers as kube-controller-manager reads it. */
static void test_controllers__flag(void **state)
{
    fx_t *f = *state;
    ctrl_env_t env = {.store = f->store, .reg = &f->reg, .authz = f->authz};
    ctrl_mgr_t *m = NULL;
    err_t err = {0};
    assert_int_equal(ctrl_mgr_new(&env, "*,-workspace", &m, &err), 0);
    assert_true(ctrl_mgr_enabled(m, "iamrole"));
    assert_false(ctrl_mgr_enabled(m, "workspace"));
    ctrl_mgr_free(m);
    assert_int_equal(ctrl_mgr_new(&env, "nodegroup", &m, &err), 0);
    assert_true(ctrl_mgr_enabled(m, "nodegroup"));
    assert_false(ctrl_mgr_enabled(m, "iamrole"));
    ctrl_mgr_free(m);
    assert_int_equal(ctrl_mgr_new(&env, "", &m, &err), 0);
    assert_true(ctrl_mgr_enabled(m, "iamrole"));
    ctrl_mgr_free(m);
    assert_int_equal(ctrl_mgr_new(&env, "*,nosuch", &m, &err), ERR_BAD_REQUEST);
    assert_null(m);
    assert_non_null(strstr(err.message, "\"nosuch\" is not in the list of known controllers"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_controllers__iamrole_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controllers__resync_and_restart_write_only_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controllers__resume_after_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controllers__claim_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controllers__application_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controllers__flag, setup, teardown),
    };
    return cmocka_run_group_tests_name("controllers", tests, NULL, NULL);
}
