/* Unit tests of authz/: RBAC rule matching, every level of the scope
 * chain, both parallel views, deny precedence, selectors, other clusters,
 * service accounts and groups, template aggregation and its recompute, and
 * the reviews. Objects are written straight to a real store; the index
 * follows it as in the server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../authz/authz_internal.h"
#include "../../lib/mem.h"
#include "../../lib/sbuf.h"
#include "fixture.h"

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer's count of the bytes the program asked for and has not
 * freed (sanitizer/allocator_interface.h, which gcc does not install). */
size_t __sanitizer_get_current_allocated_bytes(void);
#define HEAP_COUNTS "bytes asked of malloc (AddressSanitizer's count)"
static size_t heap_bytes(void) { return __sanitizer_get_current_allocated_bytes(); }
#else
#include <malloc.h>
#define HEAP_COUNTS "bytes of heap in use (mallinfo2)"
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

/* ---- RBAC matching table ---------------------------------------------------- */

typedef struct mrow {
    const char *rule;            /* PolicyRule JSON */
    const char *verb, *group, *resource, *sub, *name, *path;
    int want;
} mrow_t;

#define R(verb, group, res, sub, name) verb, group, res, sub, name, NULL
#define N(verb, path) verb, NULL, NULL, NULL, NULL, path

static const mrow_t mrows[] = {
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", R("get", "", "pods", NULL, "p"), 1},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", R("list", "", "pods", NULL, NULL), 0},
    {"{\"verbs\":[\"*\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", R("delete", "", "pods", NULL, "p"), 1},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"apps\"],\"resources\":[\"pods\"]}", R("get", "", "pods", NULL, NULL), 0},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"pods\"]}", R("get", "apps", "pods", NULL, NULL), 1},
    /* pods does not cover pods/log */
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}", R("get", "", "pods", "log", "p"), 0},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"]}", R("get", "", "pods", "log", "p"), 1},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"]}", R("get", "", "pods", NULL, "p"), 0},
    /* "*\/scale" covers any scale; "*" covers subresources */
    {"{\"verbs\":[\"update\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}", R("update", "apps", "deployments", "scale", "d"), 1},
    {"{\"verbs\":[\"update\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}", R("update", "apps", "deployments", "status", "d"), 0},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"*\"]}", R("get", "", "pods", "log", "p"), 1},
    /* resourceNames: exact; never a create or an unnamed list */
    {"{\"verbs\":[\"get\",\"create\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}", R("get", "", "pods", NULL, "a"), 1},
    {"{\"verbs\":[\"get\",\"create\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}", R("get", "", "pods", NULL, "ab"), 0},
    {"{\"verbs\":[\"get\",\"create\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}", R("create", "", "pods", NULL, NULL), 0},
    {"{\"verbs\":[\"get\",\"create\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}", R("list", "", "pods", NULL, NULL), 0},
    {"{\"verbs\":[\"get\",\"create\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}", R("list", "", "pods", NULL, "a"), 1},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"resourceNames\":[\"*\"]}", R("get", "", "pods", NULL, "x"), 0},
    /* nonResourceURLs: exact, *, trailing * prefix; never for resources */
    {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz\"]}", N("get", "/healthz"), 1},
    {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz\"]}", N("get", "/healthz/etcd"), 0},
    {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz/*\"]}", N("get", "/healthz/etcd"), 1},
    {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz/*\"]}", N("get", "/healthz"), 0},
    {"{\"verbs\":[\"*\"],\"nonResourceURLs\":[\"*\"]}", N("post", "/anything"), 1},
    /* every trailing "*" is trimmed, as kube's strings.TrimRight */
    {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis**\"]}", N("get", "/apis/v1"), 1},
    {"{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"*\"]}", R("get", "", "pods", NULL, NULL), 0},
    {"{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}", N("get", "/healthz"), 0},
};

static void test_authz__rbac_matching(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mrows / sizeof mrows[0]; i++) {
        const mrow_t *m = &mrows[i];
        json_t *j = json_loads(m->rule, 0, NULL);
        json_t *arr = json_pack("[O]", j);
        authz__rules_t rules;
        assert_int_equal(authz__rules_parse(arr, &rules), 0);
        authz_attrs_t at = {.verb = m->verb, .resource_request = m->path == NULL,
                            .path = m->path, .api_group = m->group, .resource = m->resource,
                            .subresource = m->sub, .name = m->name};
        int got = authz__rules_match(&rules, &at) >= 0;
        if (got != m->want)
            fail_msg("row %zu: rule %s verb %s res %s/%s name %s path %s: got %d", i, m->rule,
                     m->verb, m->resource, m->sub ? m->sub : "", m->name ? m->name : "",
                     m->path ? m->path : "", got);
        authz__rules_free(&rules);
        json_decref(arr);
        json_decref(j);
    }
}

/* ---- the chain, on a real store ------------------------------------------------- */

static void put(fx_t *f, const char *key, const char *json)
{
    err_t err = {0};
    uint64_t rev;
    int rc = store_create(f->store, key, json, strlen(json), &rev, &err);
    if (rc == ERR_ALREADY_EXISTS) {
        err_clear(&err);
        rc = store_update(f->store, key, json, strlen(json), 0, &rev, NULL, &err);
    }
    if (rc)
        fail_msg("put %s: %s", key, err.message);
}

static void del(fx_t *f, const char *key)
{
    err_t err = {0};
    assert_int_equal(store_delete(f->store, key, 0, NULL, NULL, &err), 0);
}

/* Waits until the index reflects every write so far (at most 1 s: how
 * fast a change must reach decisions, "well under a second" in authz.h). */
static void synced(fx_t *f)
{
    uint64_t want = store_revision(f->store);
    for (int i = 0; i < 1000 && authz_revision(f->authz) < want; i++)
        usleep(1000);
    assert_true(authz_revision(f->authz) >= want);
}

#define TEMPLATE(name, labels, rules) \
    "{\"metadata\":{\"name\":\"" name "\",\"labels\":" labels "},\"spec\":{\"rules\":" rules "}}"
#define ROLE(name, spec) "{\"metadata\":{\"name\":\"" name "\"},\"spec\":" spec "}"
#define BINDING(name, role, subjects, scope)                                              \
    "{\"metadata\":{\"name\":\"" name "\"},\"spec\":{\"roleRef\":{\"name\":\"" role "\"}," \
    "\"subjects\":" subjects ",\"scope\":" scope "}}"

static int setup(void **state)
{
    if (fx_setup(state))
        return -1;
    fx_t *f = *state;
    /* A fixture written before the authorizer starts: it loads a snapshot. */
    put(f, "/scope.theriseunion.io/workspaces/ws1",
        "{\"metadata\":{\"name\":\"ws1\"},\"spec\":{\"namespaces\":[{\"name\":\"shop\"},"
        "{\"cluster\":\"edge-2\",\"name\":\"shop\"}]}}");
    put(f, "/scope.theriseunion.io/workspaces/ws2",
        "{\"metadata\":{\"name\":\"ws2\"},\"spec\":{\"namespaces\":[{\"name\":\"shop\"},{\"name\":\"bank\"}]}}");
    put(f, "/scope.theriseunion.io/nodegroups/ng1",
        "{\"metadata\":{\"name\":\"ng1\"},\"spec\":{\"nodes\":[\"n1\",\"n2\"]}}");
    put(f, "/iam.theriseunion.io/roletemplates/pods-view",
        TEMPLATE("pods-view", "{\"tier\":\"view\"}",
                 "[{\"verbs\":[\"get\",\"list\",\"watch\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]"));
    put(f, "/iam.theriseunion.io/iamroles/viewer", ROLE("viewer", "{\"scope\":\"Workspace\",\"templateRefs\":[\"pods-view\"]}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/alice-ws1",
        BINDING("alice-ws1", "viewer", "[{\"kind\":\"User\",\"name\":\"alice\"}]",
                "{\"level\":\"Workspace\",\"name\":\"ws1\"}"));
    if (fx_start_authz(f)) {
        fx_teardown(state);
        return -1;
    }
    return 0;
}

typedef struct req {
    const char *user;
    const char *groups;          /* comma-separated */
    authz_attrs_t at;
} req_t;

static authz_decision_t ask(fx_t *f, const char *user, const char *groups,
                            const authz_attrs_t *at, char *reason, size_t n)
{
    authz_user_t u = {0};
    snprintf(u.name, sizeof u.name, "%s", user);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", groups ? groups : "");
    char *save = NULL;
    for (char *g = strtok_r(buf, ",", &save); g; g = strtok_r(NULL, ",", &save))
        authz_user_add_group(&u, g);
    authz_user_add_group(&u, "system:authenticated");
    char local[512];
    return authz_authorize(f->authz, &u, at, reason ? reason : local, reason ? n : sizeof local);
}

#define POD(v, ns, n) \
    (authz_attrs_t){.verb = v, .resource_request = 1, .api_group = "", .resource = "pods", \
                    .namespace_ = ns, .name = n}

/* ---- escalation prevention: RBAC's Covers, less deny ------------------------ */

typedef struct crow {
    const char *owner, *deny, *want;   /* []PolicyRule JSON; deny may be NULL */
    int covered;
    const char *missing;               /* kube's message lines when not covered */
} crow_t;

#define V1(verbs, res) "{\"apiGroups\":[\"v1\"],\"verbs\":" verbs ",\"resources\":" res "}"

/* kube's pkg/registry/rbac/validation/policy_comparator_test.go, then
 * what deny rules take away. */
static const crow_t crows[] = {
    {"[" V1("[\"get\"]", "[\"builds\"]") "]", NULL, "[" V1("[\"get\"]", "[\"builds\"]") "]", 1, NULL},
    {"[" V1("[\"get\"]", "[\"*/scale\"]") "]", NULL, "[" V1("[\"get\"]", "[\"foo/scale\"]") "]", 1, NULL},
    {"[" V1("[\"delete\"]", "[\"deployments\"]") "," V1("[\"delete\"]", "[\"builds\"]") ","
     V1("[\"update\"]", "[\"builds\",\"deployments\"]") "]", NULL,
     "[" V1("[\"delete\",\"update\"]", "[\"builds\",\"deployments\"]") "]", 1, NULL},
    {"[" V1("[\"delete\",\"update\"]", "[\"builds\",\"deployments\"]") "," V1("[\"delete\"]", "[\"pods\"]") "]",
     NULL, "[" V1("[\"delete\",\"update\"]", "[\"builds\",\"deployments\",\"pods\"]") "]", 0,
     "{APIGroups:[\"v1\"], Resources:[\"pods\"], Verbs:[\"update\"]}"},
    {"[{\"apiGroups\":[\"*\"],\"verbs\":[\"get\"],\"resources\":[\"roles\"]}]", NULL,
     "[{\"apiGroups\":[\"group1\",\"group2\"],\"verbs\":[\"get\"],\"resources\":[\"roles\"]}]", 1, NULL},
    {"[{\"apiGroups\":[\"dummy-group\"],\"verbs\":[\"get\"],\"resources\":[\"roles\"]}]", NULL,
     "[{\"apiGroups\":[\"*\"],\"verbs\":[\"get\"],\"resources\":[\"roles\"]}]", 0,
     "{APIGroups:[\"*\"], Resources:[\"roles\"], Verbs:[\"get\"]}"},
    {"[" V1("[\"*\"]", "[\"roles\"]") "]", NULL, "[" V1("[\"watch\",\"list\"]", "[\"roles\"]") "]", 1, NULL},
    {"[" V1("[\"get\",\"list\",\"watch\",\"create\",\"update\",\"delete\",\"exec\"]", "[\"roles\"]") "]", NULL,
     "[" V1("[\"*\"]", "[\"roles\"]") "]", 0, "{APIGroups:[\"v1\"], Resources:[\"roles\"], Verbs:[\"*\"]}"},
    {"[" V1("[\"get\"]", "[\"*\"]") "]", NULL, "[" V1("[\"get\"]", "[\"resourcegroup:deployments\"]") "]", 1, NULL},
    {"[" V1("[\"get\"]", "[\"roles\",\"resourcegroup:deployments\"]") "]", NULL, "[" V1("[\"get\"]", "[\"*\"]") "]",
     0, "{APIGroups:[\"v1\"], Resources:[\"*\"], Verbs:[\"get\"]}"},
    {"[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"pods\"],\"resourceNames\":[]}]", NULL,
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"pods\"],\"resourceNames\":[\"foo\",\"bar\"]}]", 1, NULL},
    {"[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"pods\"],\"resourceNames\":[\"foo\",\"bar\"]}]", NULL,
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"pods\"]}]", 0,
     "{APIGroups:[\"v1\"], Resources:[\"pods\"], Verbs:[\"get\"]}"},
    {"[{\"nonResourceURLs\":[\"/apis\"],\"verbs\":[\"*\"]}]", NULL, "[{\"nonResourceURLs\":[\"/apis\"],\"verbs\":[\"*\"]}]", 1, NULL},
    {"[{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"*\"]}]", NULL,
     "[{\"nonResourceURLs\":[\"/apis\",\"/apis/v1\",\"/\"],\"verbs\":[\"*\"]}]", 1, NULL},
    {"[{\"nonResourceURLs\":[\"/apis/*\"],\"verbs\":[\"*\"]}]", NULL,
     "[{\"nonResourceURLs\":[\"/apis\",\"/apis/v1\"],\"verbs\":[\"get\"]}]", 0,
     "{NonResourceURLs:[\"/apis\"], Verbs:[\"get\"]}"},
    {"[{\"nonResourceURLs\":[\"/apis/*\"],\"verbs\":[\"*\"]}]", NULL,
     "[{\"nonResourceURLs\":[\"/apis/v1/foo\",\"/apis/v1\"],\"verbs\":[\"get\"]}]", 1, NULL},
    {"[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"builds\"],\"nonResourceURLs\":[\"/apis\"]}]", NULL,
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"builds\"],\"nonResourceURLs\":[\"/apis\"]}]", 1, NULL},
    {"[" V1("[\"get\"]", "[\"builds\"]") "]", NULL,
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"get\"],\"resources\":[\"builds\"],\"nonResourceURLs\":[\"/apis\"]}]", 0,
     "{NonResourceURLs:[\"/apis\"], Verbs:[\"get\"]}"},
    /* Missing verbs of one resource are listed together, lines sorted. */
    {"[]", NULL, "[" V1("[\"get\",\"list\"]", "[\"pods\",\"builds\"]") "]", 0,
     "{APIGroups:[\"v1\"], Resources:[\"builds\"], Verbs:[\"get\" \"list\"]}\n"
     "{APIGroups:[\"v1\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}"},
    /* Deny rules take away what they could deny. */
    {"[" V1("[\"*\"]", "[\"*\"]") "]", "[" V1("[\"get\"]", "[\"secrets\"]") "]",
     "[" V1("[\"get\"]", "[\"pods\"]") "]", 1, NULL},
    {"[" V1("[\"*\"]", "[\"*\"]") "]", "[" V1("[\"get\"]", "[\"secrets\"]") "]",
     "[" V1("[\"get\",\"list\"]", "[\"secrets\"]") "]", 0,
     "{APIGroups:[\"v1\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"},
    {"[" V1("[\"*\"]", "[\"*\"]") "]", "[" V1("[\"get\"]", "[\"secrets\"]") "]",
     "[" V1("[\"*\"]", "[\"*\"]") "]", 0, "{APIGroups:[\"v1\"], Resources:[\"*\"], Verbs:[\"*\"]}"},
    {"[" V1("[\"*\"]", "[\"*\"]") "]", "[{\"apiGroups\":[\"*\"],\"verbs\":[\"*\"],\"resources\":[\"*/exec\"]}]",
     "[" V1("[\"create\"]", "[\"pods/exec\",\"pods/log\",\"pods\"]") "]", 0,
     "{APIGroups:[\"v1\"], Resources:[\"pods/exec\"], Verbs:[\"create\"]}"},
    {"[" V1("[\"*\"]", "[\"*\"]") "]", "[" V1("[\"delete\"]", "[\"pods\"]") "]",
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"delete\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}]", 0,
     "{APIGroups:[\"v1\"], Resources:[\"pods\"], ResourceNames:[\"a\"], Verbs:[\"delete\"]}"},
    {"[" V1("[\"*\"]", "[\"*\"]") "]",
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"delete\"],\"resources\":[\"pods\"],\"resourceNames\":[\"b\"]}]",
     "[{\"apiGroups\":[\"v1\"],\"verbs\":[\"delete\"],\"resources\":[\"pods\"],\"resourceNames\":[\"a\"]}]", 1, NULL},
    {"[{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"get\"]}]", "[{\"nonResourceURLs\":[\"/metrics*\"],\"verbs\":[\"*\"]}]",
     "[{\"nonResourceURLs\":[\"/healthz\",\"/*\"],\"verbs\":[\"get\"]}]", 0, "{NonResourceURLs:[\"/*\"], Verbs:[\"get\"]}"},
    {"[" V1("[\"*\"]", "[\"*\"]") "]", "[{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"*\"]}]",
     "[" V1("[\"get\"]", "[\"pods\"]") "]", 1, NULL},
};

static void test_authz__covers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof crows / sizeof crows[0]; i++) {
        const crow_t *c = &crows[i];
        json_t *jo = json_loads(c->owner, 0, NULL), *jw = json_loads(c->want, 0, NULL);
        json_t *jd = c->deny ? json_loads(c->deny, 0, NULL) : json_array();
        assert_non_null(jo);
        assert_non_null(jw);
        assert_non_null(jd);
        authz__rules_t owner, deny, want;
        assert_int_equal(authz__rules_parse(jo, &owner), 0);
        assert_int_equal(authz__rules_parse(jd, &deny), 0);
        assert_int_equal(authz__rules_parse(jw, &want), 0);
        const authz__rules_t *allow_sets[] = {&owner}, *deny_sets[] = {&deny};
        char *missing = NULL;
        int got = authz__rules_cover(allow_sets, 1, deny_sets, 1, &want, &missing);
        if (got != c->covered)
            fail_msg("row %zu: covered %d, want %d (missing %s)", i, got, c->covered,
                     missing ? missing : "-");
        if (c->missing && (!missing || strcmp(missing, c->missing)))
            fail_msg("row %zu: missing\n%s\nwant\n%s", i, missing ? missing : "(null)", c->missing);
        if (!c->missing)
            assert_null(missing);
        mem_free(missing);
        authz__rules_free(&owner);
        authz__rules_free(&deny);
        authz__rules_free(&want);
        json_decref(jo);
        json_decref(jd);
        json_decref(jw);
    }
}

static authz_user_t user_of(const char *name)
{
    authz_user_t u = {0};
    snprintf(u.name, sizeof u.name, "%s", name);
    authz_user_add_group(&u, "system:authenticated");
    return u;
}

/* What admission asks: coverage at a scope (with deny rules above and
 * below it), decisions placed at a scope, a role's aggregated rules. */
static void test_authz__grant_checks(void **state)
{
    fx_t *f = *state;
    authz_user_t alice = user_of("alice");
    authz_scope_ref_t ws1 = {.level = "Workspace", .name = "ws1"};
    authz_scope_ref_t ws2 = {.level = "Workspace", .name = "ws2"};
    json_t *get_pods = json_loads("[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]", 0, NULL);
    json_t *del_pods = json_loads("[{\"verbs\":[\"delete\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]", 0, NULL);
    char *missing = NULL;
    /* alice views pods in ws1 (through a template) and nowhere else. */
    assert_int_equal(authz_covers(f->authz, &alice, &ws1, get_pods, &missing), 1);
    assert_null(missing);
    assert_int_equal(authz_covers(f->authz, &alice, &ws2, get_pods, &missing), 0);
    assert_string_equal(missing, "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}");
    mem_free(missing);
    assert_int_equal(authz_covers(f->authz, &alice, &ws1, del_pods, &missing), 0);
    mem_free(missing);
    /* A deny of hers below ws1 (namespace shop is in ws1) takes get pods away there. */
    put(f, "/iam.theriseunion.io/iamroles/no-pods",
        ROLE("no-pods", "{\"denyRules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/alice-shop-deny",
        BINDING("alice-shop-deny", "no-pods", "[{\"kind\":\"User\",\"name\":\"alice\"}]",
                "{\"level\":\"Namespace\",\"name\":\"bank\"}"));
    synced(f);
    /* bank is in ws2 only: ws1 unaffected. */
    assert_int_equal(authz_covers(f->authz, &alice, &ws1, get_pods, &missing), 1);
    put(f, "/iam.theriseunion.io/iamrolebindings/alice-shop-deny",
        BINDING("alice-shop-deny", "no-pods", "[{\"kind\":\"User\",\"name\":\"alice\"}]",
                "{\"level\":\"Namespace\",\"name\":\"shop\"}"));
    synced(f);
    assert_int_equal(authz_covers(f->authz, &alice, &ws1, get_pods, &missing), 0);
    assert_string_equal(missing, "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}");
    mem_free(missing);
    /* An unknown level holds nothing. */
    authz_scope_ref_t bad = {.level = "Galaxy"};
    assert_int_equal(authz_covers(f->authz, &alice, &bad, get_pods, &missing), 0);
    assert_null(missing);

    /* bind, decided at a given scope rather than where the attributes say. */
    put(f, "/iam.theriseunion.io/iamroles/binder",
        ROLE("binder", "{\"rules\":[{\"verbs\":[\"bind\"],\"apiGroups\":[\"iam.theriseunion.io\"],\"resources\":[\"iamroles\"],\"resourceNames\":[\"viewer\"]}]}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/bob-binder",
        BINDING("bob-binder", "binder", "[{\"kind\":\"User\",\"name\":\"bob\"}]",
                "{\"level\":\"Workspace\",\"name\":\"ws2\"}"));
    synced(f);
    authz_user_t bob = user_of("bob");
    authz_attrs_t bind = {.verb = "bind", .resource_request = 1, .api_group = "iam.theriseunion.io",
                          .resource = "iamroles", .name = "viewer"};
    char reason[512];
    assert_int_equal(authz_authorize_at(f->authz, &bob, &bind, &ws2, reason, sizeof reason), AUTHZ_ALLOW);
    assert_int_equal(authz_authorize_at(f->authz, &bob, &bind, &ws1, reason, sizeof reason), AUTHZ_NO_OPINION);
    assert_int_equal(authz_authorize(f->authz, &bob, &bind, reason, sizeof reason), AUTHZ_NO_OPINION);
    bind.name = "admin";
    assert_int_equal(authz_authorize_at(f->authz, &bob, &bind, &ws2, reason, sizeof reason), AUTHZ_NO_OPINION);

    /* A role's rules, aggregated; and a proposed spec's. */
    json_t *rules = NULL, *deny = NULL;
    assert_int_equal(authz_role_rules(f->authz, "viewer", &rules, &deny), 0);
    assert_int_equal(json_array_size(rules), 1);
    assert_int_equal(json_array_size(deny), 0);
    json_decref(rules);
    json_decref(deny);
    assert_int_equal(authz_role_rules(f->authz, "nope", &rules, &deny), ERR_NOT_FOUND);
    json_t *spec = json_loads("{\"templateSelector\":{\"matchLabels\":{\"tier\":\"view\"}},"
                              "\"denyRules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]}", 0, NULL);
    assert_int_equal(authz_role_spec_rules(f->authz, "new", spec, &rules, &deny), 0);
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(rules, 0), "resources"), 0)), "pods");
    assert_int_equal(json_array_size(deny), 1);
    json_decref(rules);
    json_decref(deny);
    json_decref(spec);
    assert_int_equal(authz_sync(f->authz, store_revision(f->store), 1000), 0);
    json_decref(get_pods);
    json_decref(del_pods);
}

/* Requests on IAMRoleBindings are placed where the binding acts. */
static void test_authz__binding_placement(void **state)
{
    fx_t *f = *state;
    put(f, "/iam.theriseunion.io/iamroles/members",
        ROLE("members", "{\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"iam.theriseunion.io\"],\"resources\":[\"iamrolebindings\"]}]}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/carol-ws1",
        BINDING("carol-ws1", "members", "[{\"kind\":\"User\",\"name\":\"carol\"}]",
                "{\"level\":\"Workspace\",\"name\":\"ws1\"}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/cluster-wide",
        BINDING("cluster-wide", "viewer", "[{\"kind\":\"User\",\"name\":\"zed\"}]", "{\"level\":\"Cluster\"}"));
    synced(f);
    authz_user_t carol = user_of("carol");
    char reason[512];
#define RB(v, n) (authz_attrs_t){.verb = v, .resource_request = 1, \
                                 .api_group = "iam.theriseunion.io", .resource = "iamrolebindings", .name = n}
    authz_attrs_t at = RB("get", "alice-ws1");  /* stored at Workspace ws1 */
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding carol-ws1 (IAMRole members) at Workspace ws1");
    at = RB("delete", "cluster-wide");
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_NO_OPINION);
    at = RB("list", NULL);
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_NO_OPINION);
    authz_attrs_scope_label(&at, "scope.theriseunion.io/workspace", "ws1");
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_ALLOW);
    authz_attrs_scope_label(&at, "scope.theriseunion.io/cluster", "edge-2");
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_NO_OPINION);
    at = RB("list", NULL);
    authz_attrs_scope_label(&at, "scope.theriseunion.io/workspace", "ws2");
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_NO_OPINION);
    /* A create is allowed where she may create some binding; apply of a
     * binding not stored yet is a create. */
    at = RB("create", NULL);
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_ALLOW);
    at = RB("patch", "not-yet");
    assert_int_equal(authz_authorize(f->authz, &carol, &at, reason, sizeof reason), AUTHZ_ALLOW);
    authz_user_t zed = user_of("zed");
    at = RB("create", NULL);
    assert_int_equal(authz_authorize(f->authz, &zed, &at, reason, sizeof reason), AUTHZ_NO_OPINION);
#undef RB
}

static void test_authz__workspace_cascade(void **state)
{
    fx_t *f = *state;
    char reason[512];
    authz_attrs_t at = POD("get", "shop", "web");
    assert_int_equal(ask(f, "alice", NULL, &at, reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding alice-ws1 (IAMRole viewer) at Workspace ws1");
    /* A namespace of another workspace: no opinion, with what was looked at. */
    at = POD("get", "bank", "vault");
    assert_int_equal(ask(f, "alice", NULL, &at, reason, sizeof reason), AUTHZ_NO_OPINION);
    assert_string_equal(reason, "no IAMRoleBinding of alice allows get pods vault in namespace bank; "
                                "looked at Resource pods bank/vault, Namespace bank, Workspace ws2, "
                                "Cluster host, Platform");
    /* The request in full: subresource, group, no namespace; and a path. */
    authz_attrs_t scale = {.verb = "update", .resource_request = 1, .api_group = "apps",
                           .resource = "deployments", .subresource = "scale", .name = "web"};
    assert_int_equal(ask(f, "alice", NULL, &scale, reason, sizeof reason), AUTHZ_NO_OPINION);
    assert_string_equal(reason, "no IAMRoleBinding of alice allows update deployments/scale.apps web; "
                                "looked at Cluster host, Platform");
    authz_attrs_t url = {.verb = "get", .path = "/metrics"};
    assert_int_equal(ask(f, "alice", NULL, &url, reason, sizeof reason), AUTHZ_NO_OPINION);
    assert_string_equal(reason, "no IAMRoleBinding of alice allows get /metrics; looked at Cluster host, Platform");
    /* A reason that does not fit is cut, like snprintf cuts. */
    char small[24];
    at = POD("get", "bank", "vault");
    assert_int_equal(ask(f, "alice", NULL, &at, small, sizeof small), AUTHZ_NO_OPINION);
    assert_string_equal(small, "no IAMRoleBinding of al");
    /* Not a verb the role has. */
    at = POD("delete", "shop", "web");
    assert_int_equal(ask(f, "alice", NULL, &at, NULL, 0), AUTHZ_NO_OPINION);
    /* Somebody else. */
    at = POD("get", "shop", "web");
    assert_int_equal(ask(f, "bob", NULL, &at, NULL, 0), AUTHZ_NO_OPINION);
    /* ws1 lists edge-2/shop too; a review for edge-2 reaches it... */
    at.cluster = "edge-2";
    assert_int_equal(ask(f, "alice", NULL, &at, NULL, 0), AUTHZ_NO_OPINION);  /* binding is for host */
    /* ...but a binding naming edge-2 applies there and not here. */
    put(f, "/iam.theriseunion.io/iamrolebindings/alice-ws1-edge2",
        BINDING("alice-ws1-edge2", "viewer", "[{\"kind\":\"User\",\"name\":\"carol\"}]",
                "{\"level\":\"Workspace\",\"name\":\"ws1\",\"cluster\":\"edge-2\"}"));
    synced(f);
    assert_int_equal(ask(f, "carol", NULL, &at, NULL, 0), AUTHZ_ALLOW);
    at.cluster = NULL;
    assert_int_equal(ask(f, "carol", NULL, &at, NULL, 0), AUTHZ_NO_OPINION);
}

static void test_authz__every_level(void **state)
{
    fx_t *f = *state;
    put(f, "/iam.theriseunion.io/iamroles/all", ROLE("all", "{\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]},{\"verbs\":[\"*\"],\"nonResourceURLs\":[\"*\"]}]}"));
    struct { const char *user, *scope; } bindings[] = {
        {"u-platform", "{\"level\":\"Platform\"}"},
        {"u-cluster", "{\"level\":\"Cluster\"}"},
        {"u-ns", "{\"level\":\"Namespace\",\"name\":\"shop\"}"},
        {"u-res", "{\"level\":\"Resource\",\"namespace\":\"shop\",\"group\":\"\",\"resource\":\"pods\",\"name\":\"web\"}"},
        {"u-node", "{\"level\":\"Node\",\"name\":\"n1\"}"},
        {"u-ng", "{\"level\":\"NodeGroup\",\"name\":\"ng1\"}"},
        {"u-ws2", "{\"level\":\"Workspace\",\"name\":\"ws2\"}"},
    };
    for (size_t i = 0; i < sizeof bindings / sizeof bindings[0]; i++) {
        char key[128], body[512];
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/%s", bindings[i].user);
        snprintf(body, sizeof body,
                 "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"roleRef\":{\"name\":\"all\"},"
                 "\"subjects\":[{\"kind\":\"User\",\"name\":\"%s\"}],\"scope\":%s}}",
                 bindings[i].user, bindings[i].user, bindings[i].scope);
        put(f, key, body);
    }
    synced(f);
    authz_attrs_t pod = POD("delete", "shop", "web");
    authz_attrs_t other_pod = POD("delete", "shop", "db");
    authz_attrs_t other_ns = POD("delete", "bank", "x");
    authz_attrs_t node1 = {.verb = "patch", .resource_request = 1, .api_group = "", .resource = "nodes", .name = "n1"};
    authz_attrs_t node2 = {.verb = "patch", .resource_request = 1, .api_group = "", .resource = "nodes", .name = "n2"};
    authz_attrs_t node3 = {.verb = "patch", .resource_request = 1, .api_group = "", .resource = "nodes", .name = "n3"};
    authz_attrs_t nodes_ng1 = {.verb = "list", .resource_request = 1, .api_group = "", .resource = "nodes", .nodegroup = "ng1"};
    authz_attrs_t nodes_all = {.verb = "list", .resource_request = 1, .api_group = "", .resource = "nodes"};
    authz_attrs_t ng_obj = {.verb = "update", .resource_request = 1, .api_group = "scope.theriseunion.io", .resource = "nodegroups", .name = "ng1"};
    authz_attrs_t ns_ws2 = {.verb = "list", .resource_request = 1, .api_group = "", .resource = "namespaces", .workspace = "ws2"};
    authz_attrs_t url = {.verb = "get", .path = "/metrics"};
    struct { const char *user; authz_attrs_t *at; int want; } cases[] = {
        {"u-platform", &pod, AUTHZ_ALLOW}, {"u-platform", &url, AUTHZ_ALLOW},
        {"u-cluster", &node3, AUTHZ_ALLOW}, {"u-cluster", &url, AUTHZ_ALLOW},
        {"u-ns", &pod, AUTHZ_ALLOW}, {"u-ns", &other_ns, AUTHZ_NO_OPINION}, {"u-ns", &node1, AUTHZ_NO_OPINION},
        {"u-res", &pod, AUTHZ_ALLOW}, {"u-res", &other_pod, AUTHZ_NO_OPINION},
        {"u-node", &node1, AUTHZ_ALLOW}, {"u-node", &node2, AUTHZ_NO_OPINION}, {"u-node", &pod, AUTHZ_NO_OPINION},
        {"u-ng", &node1, AUTHZ_ALLOW}, {"u-ng", &node2, AUTHZ_ALLOW}, {"u-ng", &node3, AUTHZ_NO_OPINION},
        {"u-ng", &nodes_ng1, AUTHZ_ALLOW}, {"u-ng", &nodes_all, AUTHZ_NO_OPINION}, {"u-ng", &ng_obj, AUTHZ_ALLOW},
        {"u-ng", &pod, AUTHZ_NO_OPINION},
        /* The parallel view: ws2 holds shop too, so both workspaces grant it. */
        {"u-ws2", &pod, AUTHZ_ALLOW}, {"u-ws2", &other_ns, AUTHZ_ALLOW}, {"u-ws2", &ns_ws2, AUTHZ_ALLOW},
        {"u-ws2", &node1, AUTHZ_NO_OPINION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char reason[512];
        authz_decision_t d = ask(f, cases[i].user, NULL, cases[i].at, reason, sizeof reason);
        if ((int)d != cases[i].want)
            fail_msg("case %zu (%s): got %d: %s", i, cases[i].user, d, reason);
    }
}

static void test_authz__deny_wins_and_groups(void **state)
{
    fx_t *f = *state;
    put(f, "/iam.theriseunion.io/roletemplates/no-secrets",
        "{\"metadata\":{\"name\":\"no-secrets\"},\"spec\":{\"denyRules\":[{\"verbs\":[\"*\"],"
        "\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]}}");
    put(f, "/iam.theriseunion.io/iamroles/admin",
        ROLE("admin", "{\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}]}"));
    put(f, "/iam.theriseunion.io/iamroles/guard", ROLE("guard", "{\"templateRefs\":[\"no-secrets\"]}"));
    /* Admin at the namespace through a group; a deny far up at Platform. */
    put(f, "/iam.theriseunion.io/iamrolebindings/devs-shop",
        BINDING("devs-shop", "admin", "[{\"kind\":\"Group\",\"name\":\"devs\"}]",
                "{\"level\":\"Namespace\",\"name\":\"shop\"}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/devs-guard",
        BINDING("devs-guard", "guard", "[{\"kind\":\"Group\",\"name\":\"devs\"}]", "{\"level\":\"Platform\"}"));
    /* A service account, by name and through its namespace group. */
    put(f, "/iam.theriseunion.io/iamrolebindings/robot",
        BINDING("robot", "admin", "[{\"kind\":\"ServiceAccount\",\"name\":\"ci\",\"namespace\":\"tools\"}]",
                "{\"level\":\"Namespace\",\"name\":\"bank\"}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/tools-sas",
        BINDING("tools-sas", "viewer", "[{\"kind\":\"Group\",\"name\":\"system:serviceaccounts:tools\"}]",
                "{\"level\":\"Namespace\",\"name\":\"shop\"}"));
    synced(f);
    char reason[512];
    authz_attrs_t cm = {.verb = "delete", .resource_request = 1, .api_group = "", .resource = "configmaps", .namespace_ = "shop", .name = "c"};
    assert_int_equal(ask(f, "dan", "devs", &cm, reason, sizeof reason), AUTHZ_ALLOW);
    assert_non_null(strstr(reason, "devs-shop"));
    authz_attrs_t sec = {.verb = "get", .resource_request = 1, .api_group = "", .resource = "secrets", .namespace_ = "shop", .name = "s"};
    assert_int_equal(ask(f, "dan", "devs", &sec, reason, sizeof reason), AUTHZ_DENY);
    assert_string_equal(reason, "denied by IAMRoleBinding devs-guard (IAMRole guard) at Platform");
    assert_int_equal(ask(f, "dan", "ops", &sec, NULL, 0), AUTHZ_NO_OPINION);

    authz_attrs_t bank = POD("delete", "bank", "p");
    assert_int_equal(ask(f, "system:serviceaccount:tools:ci", "system:serviceaccounts,system:serviceaccounts:tools",
                         &bank, NULL, 0), AUTHZ_ALLOW);
    assert_int_equal(ask(f, "system:serviceaccount:other:ci", "system:serviceaccounts", &bank, NULL, 0),
                     AUTHZ_NO_OPINION);
    authz_attrs_t shop = POD("get", "shop", "p");
    assert_int_equal(ask(f, "system:serviceaccount:tools:other", "system:serviceaccounts:tools", &shop, NULL, 0),
                     AUTHZ_ALLOW);
    /* system:masters needs no binding. */
    assert_int_equal(ask(f, "root", "system:masters", &sec, NULL, 0), AUTHZ_ALLOW);
}

static void test_authz__aggregation_recomputed(void **state)
{
    fx_t *f = *state;
    put(f, "/iam.theriseunion.io/iamroles/sel",
        ROLE("sel", "{\"templateSelector\":{\"matchLabels\":{\"tier\":\"edit\"}}}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/erin",
        BINDING("erin", "sel", "[{\"kind\":\"User\",\"name\":\"erin\"}]", "{\"level\":\"Cluster\"}"));
    synced(f);
    authz_attrs_t create = {.verb = "create", .resource_request = 1, .api_group = "apps", .resource = "deployments", .namespace_ = "shop"};
    assert_int_equal(ask(f, "erin", NULL, &create, NULL, 0), AUTHZ_NO_OPINION);
    /* A template that starts matching the selector grants... */
    put(f, "/iam.theriseunion.io/roletemplates/deploy-edit",
        TEMPLATE("deploy-edit", "{\"tier\":\"edit\"}",
                 "[{\"verbs\":[\"create\"],\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\"]}]"));
    synced(f);
    assert_int_equal(ask(f, "erin", NULL, &create, NULL, 0), AUTHZ_ALLOW);
    /* ...its rules changing is reflected (recomputed, not appended)... */
    put(f, "/iam.theriseunion.io/roletemplates/deploy-edit",
        TEMPLATE("deploy-edit", "{\"tier\":\"edit\"}",
                 "[{\"verbs\":[\"update\"],\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\"]}]"));
    synced(f);
    assert_int_equal(ask(f, "erin", NULL, &create, NULL, 0), AUTHZ_NO_OPINION);
    /* ...and a template named by a role, deleted, takes its rules away. */
    authz_attrs_t pod = POD("get", "shop", "web");
    assert_int_equal(ask(f, "alice", NULL, &pod, NULL, 0), AUTHZ_ALLOW);
    del(f, "/iam.theriseunion.io/roletemplates/pods-view");
    synced(f);
    assert_int_equal(ask(f, "alice", NULL, &pod, NULL, 0), AUTHZ_NO_OPINION);
    /* Deleting the binding, and the workspace membership, take effect too. */
    put(f, "/iam.theriseunion.io/roletemplates/pods-view",
        TEMPLATE("pods-view", "{}", "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]"));
    synced(f);
    assert_int_equal(ask(f, "alice", NULL, &pod, NULL, 0), AUTHZ_ALLOW);
    put(f, "/scope.theriseunion.io/workspaces/ws1",
        "{\"metadata\":{\"name\":\"ws1\"},\"spec\":{\"namespaces\":[{\"name\":\"other\"}]}}");
    synced(f);
    assert_int_equal(ask(f, "alice", NULL, &pod, NULL, 0), AUTHZ_NO_OPINION);
}

/* A template whose scopes exclude the role's scope gives deny rules only,
 * in decisions as in the aggregation the status shows. */
static void test_authz__template_scopes_fail_closed(void **state)
{
    fx_t *f = *state;
    put(f, "/iam.theriseunion.io/roletemplates/ns-only",
        "{\"metadata\":{\"name\":\"ns-only\"},\"spec\":{\"scopes\":[\"Namespace\"],"
        "\"rules\":[{\"verbs\":[\"delete\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}],"
        "\"denyRules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]}}");
    put(f, "/iam.theriseunion.io/iamroles/ws-admin",
        ROLE("ws-admin", "{\"scope\":\"Workspace\",\"templateRefs\":[\"ns-only\"],"
             "\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"\"],\"resources\":[\"*\"]}]}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/gus-ws1",
        BINDING("gus-ws1", "ws-admin", "[{\"kind\":\"User\",\"name\":\"gus\"}]",
                "{\"level\":\"Workspace\",\"name\":\"ws1\"}"));
    synced(f);
    authz_attrs_t secret = {.verb = "get", .resource_request = 1, .api_group = "",
                            .resource = "secrets", .namespace_ = "shop", .name = "s"};
    assert_int_equal(ask(f, "gus", NULL, &secret, NULL, 0), AUTHZ_DENY);
    authz_attrs_t pod = POD("delete", "shop", "web");
    assert_int_equal(ask(f, "gus", NULL, &pod, NULL, 0), AUTHZ_ALLOW);  /* own rule */
    json_t *rules = NULL, *deny = NULL;
    assert_int_equal(authz_role_rules(f->authz, "ws-admin", &rules, &deny), 0);
    assert_int_equal(json_array_size(rules), 1);  /* the template's allow is left out */
    assert_int_equal(json_array_size(deny), 1);
    json_decref(rules);
    json_decref(deny);
}

static json_t *obj(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

/* The aggregation the IAMRole status shows: own rules first, then named
 * templates in templateRefs' order, then selected ones by name; each rule
 * and permission once; missing and excluded templates named. */
static void test_authz__role_aggregation(void **state)
{
    (void)state;
    json_t *ts[] = {
        obj("{\"metadata\":{\"name\":\"zeta\",\"labels\":{\"t\":\"x\"}},\"spec\":{"
            "\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"z\"]}],"
            "\"uiPermissions\":[\"ui-z\",\"ui-own\"]}}"),
        obj("{\"metadata\":{\"name\":\"alpha\",\"labels\":{\"t\":\"x\"}},\"spec\":{"
            "\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"a\"]},"
            "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"own\"]}]}}"),
        obj("{\"metadata\":{\"name\":\"named\"},\"spec\":{"
            "\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"n\"]}]}}"),
        obj("{\"metadata\":{\"name\":\"platform-only\",\"labels\":{\"t\":\"x\"}},\"spec\":{"
            "\"scopes\":[\"Platform\"],"
            "\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}],"
            "\"denyRules\":[{\"verbs\":[\"delete\"],\"apiGroups\":[\"\"],\"resources\":[\"ns\"]}]}}"),
    };
    json_t *role = obj("{\"metadata\":{\"name\":\"r\"},\"spec\":{\"scope\":\"Cluster\","
                       "\"templateRefs\":[\"named\",\"gone\",\"zeta\"],"
                       "\"templateSelector\":{\"matchLabels\":{\"t\":\"x\"}},"
                       "\"uiPermissions\":[\"ui-own\"],"
                       "\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"own\"]}]}}");
    authz_role_agg_t g;
    err_t err = {0};
    assert_int_equal(authz_role_aggregation(role, (const json_t *const *)ts, 4, &g, &err), 0);
    char *rules = json_dumps(g.rules, JSON_COMPACT);
    assert_string_equal(rules,
        "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"own\"]},"
        "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"n\"]},"
        "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"z\"]},"
        "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"a\"]}]");
    free(rules);
    assert_int_equal(json_array_size(g.deny), 1);
    char *ui = json_dumps(g.ui, JSON_COMPACT);
    assert_string_equal(ui, "[\"ui-own\",\"ui-z\"]");
    free(ui);
    char *missing = json_dumps(g.missing, JSON_COMPACT);
    assert_string_equal(missing, "[\"gone\"]");
    free(missing);
    char *excluded = json_dumps(g.excluded, JSON_COMPACT);
    assert_string_equal(excluded, "[\"platform-only\"]");
    free(excluded);
    authz_role_agg_free(&g);
    /* The selector changing changes what is selected. */
    json_object_set_new(json_object_get(json_object_get(role, "spec"), "templateSelector"),
                        "matchLabels", obj("{\"t\":\"none\"}"));
    assert_int_equal(authz_role_aggregation(role, (const json_t *const *)ts, 4, &g, &err), 0);
    assert_int_equal(json_array_size(g.rules), 3);  /* own, named, zeta */
    assert_int_equal(json_array_size(g.deny), 0);
    assert_int_equal(json_array_size(g.excluded), 0);
    authz_role_agg_free(&g);
    json_decref(role);
    for (size_t i = 0; i < 4; i++)
        json_decref(ts[i]);
}

static void test_authz__subject_access_review(void **state)
{
    fx_t *f = *state;
    const char *v1 =
        "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
        "\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"resourceAttributes\":{\"namespace\":\"shop\","
        "\"verb\":\"list\",\"version\":\"v1\",\"resource\":\"pods\",\"labelSelector\":{\"requirements\":"
        "[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"web\"]}]}},\"user\":\"alice\",\"groups\":"
        "[\"system:authenticated\"],\"extra\":{\"x\":[\"y\"]},\"uid\":\"u1\",\"unknownField\":1},"
        "\"status\":{\"allowed\":false}}";
    json_t *sar = json_loads(v1, 0, NULL), *out = NULL;
    err_t err = {0};
    assert_int_equal(authz_subject_access_review(f->authz, sar, NULL, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "apiVersion")), "authorization.k8s.io/v1");
    assert_true(json_is_true(json_object_get(json_object_get(out, "status"), "allowed")));
    json_decref(out);
    json_decref(sar);
    /* v1beta1 spells groups "group": a group binding must still match. */
    put(f, "/iam.theriseunion.io/iamrolebindings/devs",
        BINDING("devs", "viewer", "[{\"kind\":\"Group\",\"name\":\"devs\"}]", "{\"level\":\"Namespace\",\"name\":\"shop\"}"));
    synced(f);
    const char *b1 = "{\"apiVersion\":\"authorization.k8s.io/v1beta1\",\"kind\":\"SubjectAccessReview\","
                     "\"spec\":{\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"get\",\"resource\":\"pods\"},"
                     "\"user\":\"zed\",\"group\":[\"devs\"]}}";
    sar = json_loads(b1, 0, NULL);
    assert_int_equal(authz_subject_access_review(f->authz, sar, NULL, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "apiVersion")), "authorization.k8s.io/v1beta1");
    assert_true(json_is_true(json_object_get(json_object_get(out, "status"), "allowed")));
    json_decref(out);
    json_decref(sar);
    /* Malformed: both attribute kinds, none, wrong version. */
    static const char *bad[] = {
        "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"a\"}}",
        "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\",\"spec\":{\"user\":\"a\","
        "\"resourceAttributes\":{},\"nonResourceAttributes\":{}}}",
        "{\"apiVersion\":\"v1\",\"kind\":\"SubjectAccessReview\",\"spec\":{}}",
        "[]",
    };
    for (size_t i = 0; i < 4; i++) {
        sar = json_loads(bad[i], 0, NULL);
        err_clear(&err);
        out = NULL;
        assert_int_equal(authz_subject_access_review(f->authz, sar, NULL, &out, &err), ERR_BAD_REQUEST);
        assert_null(out);
        json_decref(sar);
    }
}

/* A subject with many bindings (looked up through the scope index) and
 * with a few (its bindings checked one by one) gets the same decisions. */
static void test_authz__many_bindings_of_one_subject(void **state)
{
    fx_t *f = *state;
    char key[128], val[400], reason[256], want[128];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/many-%02d", i);
        snprintf(val, sizeof val, "{\"metadata\":{\"name\":\"many-%02d\"},\"spec\":{\"roleRef\":"
                 "{\"name\":\"viewer\"},\"subjects\":[{\"kind\":\"Group\",\"name\":\"many\"}],"
                 "\"scope\":{\"level\":\"Namespace\",\"name\":\"ns-%02d\"}}}", i, i);
        put(f, key, val);
    }
    for (int round = 0; round < 2; round++) {
        synced(f);
        int last = round ? 3 : 39;  /* 40 bindings, then 4 */
        for (int i = 0; i <= last + 1; i++) {
            char ns[16];
            snprintf(ns, sizeof ns, "ns-%02d", i);
            authz_attrs_t at = POD("list", ns, "");
            at.name = NULL;
            authz_decision_t d = ask(f, "zoe", "many", &at, reason, sizeof reason);
            if (i <= last) {
                assert_int_equal(d, AUTHZ_ALLOW);
                snprintf(want, sizeof want, "allowed by IAMRoleBinding many-%02d (IAMRole viewer) "
                         "at Namespace %s", i, ns);
                assert_string_equal(reason, want);
            } else {
                assert_int_equal(d, AUTHZ_NO_OPINION);
            }
        }
        for (int i = 4; !round && i < 40; i++) {
            snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/many-%02d", i);
            del(f, key);
        }
    }
}

/* The webhook's text path answers every review exactly as the tree path
 * does: the same JSON, or the same error and message. */
static void test_authz__review_text_matches_tree(void **state)
{
    fx_t *f = *state;
    put(f, "/iam.theriseunion.io/roletemplates/no-secrets",
        "{\"metadata\":{\"name\":\"no-secrets\"},\"spec\":{\"denyRules\":[{\"verbs\":[\"*\"],"
        "\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]}}");
    put(f, "/iam.theriseunion.io/iamroles/guard", ROLE("guard", "{\"templateRefs\":[\"no-secrets\"]}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/guard-alice",
        BINDING("guard-alice", "guard", "[{\"kind\":\"User\",\"name\":\"alice\"}]", "{\"level\":\"Cluster\"}"));
    put(f, "/iam.theriseunion.io/iamrolebindings/q",
        BINDING("q", "viewer", "[{\"kind\":\"User\",\"name\":\"q\\\"u\u00e9\"}]", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"));
    synced(f);
#define SAR(av, spec) "{\"apiVersion\":\"authorization.k8s.io/" av "\",\"kind\":\"SubjectAccessReview\"," \
                      "\"metadata\":{\"creationTimestamp\":null},\"spec\":" spec ",\"status\":{}}"
    static const char *const texts[] = {
        SAR("v1", "{\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"get\",\"resource\":\"pods\"},"
                  "\"user\":\"alice\",\"groups\":[\"system:authenticated\",7,null],\"uid\":\"u\"}"),
        SAR("v1", "{\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"get\",\"resource\":\"secrets\"},"
                  "\"user\":\"alice\"}"),
        SAR("v1", "{\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"get\",\"resource\":\"pods\"},"
                  "\"user\":\"q\\\"u\\u00e9\"}"),
        SAR("v1", "{\"resourceAttributes\":{\"verb\":\"list\",\"resource\":\"namespaces\",\"labelSelector\":"
                  "{\"requirements\":[{\"key\":\"scope.theriseunion.io/workspace\",\"operator\":\"In\","
                  "\"values\":[\"ws1\"]},{\"key\":\"x\"},7]}},\"user\":\"alice\"}"),
        SAR("v1beta1", "{\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"get\",\"resource\":\"pods\"},"
                       "\"user\":\"zed\",\"group\":[\"devs\"]}"),
        SAR("v1", "{\"nonResourceAttributes\":{\"verb\":\"get\",\"path\":\"/healthz\"},\"user\":\"nobody\"}"),
        SAR("v1", "{\"nonResourceAttributes\":{\"path\":\"/healthz\"},\"groups\":[\"g\"]}"),
        /* refused, by both paths alike */
        SAR("v1", "{\"user\":\"a\"}"),
        SAR("v1", "{\"user\":\"a\",\"resourceAttributes\":{},\"nonResourceAttributes\":{}}"),
        SAR("v1", "{\"resourceAttributes\":{}}"),
        SAR("v1", "[]"),
        SAR("v2", "{}"),
        "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"Other\",\"spec\":{}}",
        "{\"kind\":\"SubjectAccessReview\"}",
        "[]",
        "{\"apiVersion\":",
        "not json",
        "{\"a\":\"\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        err_t e1 = {0}, e2 = {0};
        json_t *tree_out = NULL;
        char *text_out = NULL;
        size_t text_len = 0;
        json_error_t je;
        json_t *sar = json_loads(texts[i], 0, &je);
        int rc1 = sar ? authz_subject_access_review(f->authz, sar, NULL, &tree_out, &e1)
                      : err_set(&e1, ERR_BAD_REQUEST, "the body is not JSON: %s", je.text);
        int rc2 = authz_subject_access_review_text(f->authz, texts[i], strlen(texts[i]), NULL,
                                                   &text_out, &text_len, &e2);
        assert_int_equal(rc1, rc2);
        if (rc1) {
            assert_string_equal(e1.message, e2.message);
        } else {
            json_t *got = json_loadb(text_out, text_len, 0, NULL);
            if (!json_equal(got, tree_out)) {
                char *w = json_dumps(tree_out, JSON_COMPACT);
                fail_msg("review %zu: text path %.*s, tree path %s", i, (int)text_len, text_out, w);
            }
            json_decref(got);
        }
        json_decref(sar);
        json_decref(tree_out);
        mem_free(text_out);
    }
    /* A namespace long enough to cut the reason inside a character: the
     * answer is still whole UTF-8, on both paths. */
    for (int odd = 0; odd < 2; odd++) {  /* the cut at either byte of a character */
        sbuf_t r = {0};
        sbuf_puts(&r, "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
                      "\"spec\":{\"resourceAttributes\":{\"verb\":\"get\",\"resource\":\"pods\","
                      "\"namespace\":\"x");
        if (odd)
            sbuf_puts(&r, "y");
        for (int i = 0; i < 700; i++)
            sbuf_puts(&r, "\xc3\xa9");
        sbuf_puts(&r, "\"},\"user\":\"nobody\"}}");
        json_t *sar = json_loadb(r.p, r.len, 0, NULL), *tree_out = NULL;
        err_t e = {0};
        assert_int_equal(authz_subject_access_review(f->authz, sar, NULL, &tree_out, &e), 0);
        char *t = NULL;
        size_t tl = 0;
        assert_int_equal(authz_subject_access_review_text(f->authz, r.p, r.len, NULL, &t, &tl, &e), 0);
        json_t *got = json_loadb(t, tl, 0, NULL);
        assert_non_null(got);
        assert_true(json_equal(got, tree_out));
        json_decref(got);
        json_decref(tree_out);
        json_decref(sar);
        mem_free(t);
        sbuf_free(&r);
    }
    /* a review too large to tokenize in place takes the tree path */
    sbuf_t big = {0};
    sbuf_puts(&big, "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
                    "\"spec\":{\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"get\","
                    "\"resource\":\"pods\"},\"user\":\"alice\",\"extra\":{\"k\":[");
    for (int g = 0; g < 600; g++) {
        char one[32];
        snprintf(one, sizeof one, "%s\"g%d\"", g ? "," : "", g);
        sbuf_puts(&big, one);
    }
    sbuf_puts(&big, "]}}}");
    err_t err = {0};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(authz_subject_access_review_text(f->authz, big.p, big.len, NULL, &out, &len, &err), 0);
    assert_non_null(strstr(out, "\"allowed\":true"));
    mem_free(out);
    sbuf_free(&big);
#undef SAR
}

static void test_authz__reviews(void **state)
{
    fx_t *f = *state;
    json_t *ar = json_loads("{\"spec\":{\"user\":\"alice\",\"resourceAttributes\":{\"namespace\":\"shop\","
                            "\"verb\":\"get\",\"resource\":\"pods\",\"name\":\"web\"}}}", 0, NULL);
    err_t err = {0};
    assert_int_equal(authz_access_review(f->authz, ar, &err), 0);
    json_t *st = json_object_get(ar, "status");
    assert_true(json_is_true(json_object_get(st, "allowed")));
    json_t *trace = json_object_get(st, "trace");
    /* Resource, Namespace, ws1, ws2, Cluster, Platform. */
    assert_int_equal(json_array_size(trace), 6);
    json_t *ws1 = json_array_get(trace, 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ws1, "scope"), "name")), "ws1");
    json_t *b = json_array_get(json_object_get(ws1, "bindings"), 0);
    assert_string_equal(json_string_value(json_object_get(b, "binding")), "alice-ws1");
    assert_string_equal(json_string_value(json_object_get(b, "result")), "allowed");
    json_decref(ar);

    json_t *pr = json_loads("{\"spec\":{\"user\":\"alice\",\"scope\":{\"level\":\"Namespace\",\"name\":\"shop\"}}}", 0, NULL);
    assert_int_equal(authz_permission_review(f->authz, pr, &err), 0);
    json_t *rules = json_object_get(json_object_get(pr, "status"), "rules");
    assert_int_equal(json_array_size(rules), 1);
    json_t *r0 = json_array_get(rules, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "binding")), "alice-ws1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r0, "scope"), "level")), "Workspace");
    json_decref(pr);
    /* At the Cluster level the workspace grant does not apply. */
    pr = json_loads("{\"spec\":{\"user\":\"alice\",\"scope\":{\"level\":\"Cluster\"}}}", 0, NULL);
    assert_int_equal(authz_permission_review(f->authz, pr, &err), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(pr, "status"), "rules")), 0);
    json_decref(pr);
}

static void test_authz__namespace_in_many_workspaces(void **state)
{
    fx_t *f = *state;
    /* More Workspaces than the chain holds inline: it grows. */
    for (int i = 0; i < 40; i++) {
        char key[96], body[256];
        snprintf(key, sizeof key, "/scope.theriseunion.io/workspaces/many-%02d", i);
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"many-%02d\"},\"spec\":"
                 "{\"namespaces\":[{\"name\":\"shared\"}]}}", i);
        put(f, key, body);
    }
    put(f, "/iam.theriseunion.io/iamrolebindings/late",
        BINDING("late", "viewer", "[{\"kind\":\"User\",\"name\":\"lou\"}]",
                "{\"level\":\"Workspace\",\"name\":\"many-37\"}"));
    synced(f);
    authz_attrs_t at = POD("get", "shared", "p");
    char reason[512];
    assert_int_equal(ask(f, "lou", NULL, &at, reason, sizeof reason), AUTHZ_ALLOW);
    assert_non_null(strstr(reason, "Workspace many-37"));
    json_t *pr = json_loads("{\"spec\":{\"user\":\"lou\",\"scope\":{\"level\":\"Namespace\",\"name\":\"shared\"}}}", 0, NULL);
    err_t err = {0};
    assert_int_equal(authz_permission_review(f->authz, pr, &err), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(pr, "status"), "rules")), 1);
    json_decref(pr);
}

static void test_authz__fails_closed_on_overflow(void **state)
{
    fx_t *f = *state;
    authz_attrs_t at = POD("get", "shop", "web");
    /* More groups than the authorizer holds: a deny bound to one of them
     * could be missed, so the answer is deny, not an allow. */
    authz_user_t u = {0};
    snprintf(u.name, sizeof u.name, "alice");
    for (int i = 0; i <= AUTHZ_MAX_GROUPS; i++) {
        char g[32];
        snprintf(g, sizeof g, "g%d", i);
        authz_user_add_group(&u, g);
    }
    assert_true(u.overflow);
    char reason[512];
    assert_int_equal(authz_authorize(f->authz, &u, &at, reason, sizeof reason), AUTHZ_DENY);
    assert_non_null(strstr(reason, "more than 256 groups"));
    /* A group name too long to hold. */
    authz_user_t v = {0};
    snprintf(v.name, sizeof v.name, "alice");
    char longg[400];
    memset(longg, 'x', sizeof longg - 1);
    longg[sizeof longg - 1] = '\0';
    authz_user_add_group(&v, longg);
    assert_int_equal(authz_authorize(f->authz, &v, &at, NULL, 0), AUTHZ_DENY);
    /* The same user with few groups is allowed as usual. */
    authz_user_t w = {0};
    snprintf(w.name, sizeof w.name, "alice");
    authz_user_add_group(&w, "g1");
    assert_int_equal(authz_authorize(f->authz, &w, &at, NULL, 0), AUTHZ_ALLOW);
}

/* A reason, a decision, for user with no groups. */
static authz_decision_t ask_r(fx_t *f, const char *user, const char *ns, char *reason, size_t n)
{
    authz_attrs_t at = POD("get", ns, "p");
    return ask(f, user, NULL, &at, reason, n);
}

static void test_authz__binding_subjects_change(void **state)
{
    fx_t *f = *state;
    const char *key = "/iam.theriseunion.io/iamrolebindings/team";
    put(f, key, BINDING("team", "viewer", "[{\"kind\":\"User\",\"name\":\"amy\"}]",
                        "{\"level\":\"Namespace\",\"name\":\"bank\"}"));
    synced(f);
    assert_int_equal(ask_r(f, "amy", "bank", NULL, 0), AUTHZ_ALLOW);
    assert_int_equal(ask_r(f, "ben", "bank", NULL, 0), AUTHZ_NO_OPINION);
    /* amy leaves, ben and a group join, an unknown kind is skipped. */
    put(f, key, BINDING("team", "viewer",
                        "[{\"kind\":\"Robot\",\"name\":\"amy\"},{\"kind\":\"User\",\"name\":\"ben\"},"
                        "{\"kind\":\"Group\",\"name\":\"auditors\"},"
                        "{\"kind\":\"ServiceAccount\",\"name\":\"ci\",\"namespace\":\"tools\"}]",
                        "{\"level\":\"Namespace\",\"name\":\"bank\"}"));
    synced(f);
    char reason[512];
    assert_int_equal(ask_r(f, "amy", "bank", NULL, 0), AUTHZ_NO_OPINION);
    assert_int_equal(ask_r(f, "ben", "bank", reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding team (IAMRole viewer) at Namespace bank");
    authz_attrs_t at = POD("get", "bank", "p");
    assert_int_equal(ask(f, "cat", "auditors", &at, NULL, 0), AUTHZ_ALLOW);
    assert_int_equal(ask_r(f, "system:serviceaccount:tools:ci", "bank", NULL, 0), AUTHZ_ALLOW);
    /* The scope moves: the old place no longer grants. */
    put(f, key, BINDING("team", "viewer", "[{\"kind\":\"User\",\"name\":\"ben\"}]",
                        "{\"level\":\"Namespace\",\"name\":\"shop\"}"));
    synced(f);
    assert_int_equal(ask_r(f, "ben", "bank", NULL, 0), AUTHZ_NO_OPINION);
    assert_int_equal(ask_r(f, "ben", "shop", NULL, 0), AUTHZ_ALLOW);
    assert_int_equal(ask(f, "cat", "auditors", &at, NULL, 0), AUTHZ_NO_OPINION);
    del(f, key);
    synced(f);
    assert_int_equal(ask_r(f, "ben", "shop", NULL, 0), AUTHZ_NO_OPINION);
}

/* Bindings of one subject and place share a bucket of by_scope (and the
 * subject's bucket of by_subject): it grows past what it holds in place,
 * loses members from the middle, and shrinks back; a binding naming its
 * subject twice is filed twice and removed twice. */
static void test_authz__shared_buckets(void **state)
{
    fx_t *f = *state;
    enum { N = 9 };
    char key[N][96];
    for (int i = 0; i < N; i++) {
        char body[512];
        snprintf(key[i], sizeof key[i], "/iam.theriseunion.io/iamrolebindings/dee-%d", i);
        snprintf(body, sizeof body,
                 "{\"metadata\":{\"name\":\"dee-%d\"},\"spec\":{\"roleRef\":{\"name\":\"viewer\"},"
                 "\"subjects\":[{\"kind\":\"User\",\"name\":\"dee\"}%s],\"scope\":"
                 "{\"level\":\"Namespace\",\"name\":\"bank\"}}}",
                 i, i == 4 ? ",{\"kind\":\"User\",\"name\":\"dee\"}" : "");
        put(f, key[i], body);
    }
    synced(f);
    const authz__bucket_t *b = authz__bindings_at(
        f->authz, "u:dee",
        &(authz__scope_t){AUTHZ__NAMESPACE, "host", "bank", "", "", ""});
    assert_non_null(b);
    assert_int_equal(b->n, N + 1);
    assert_true(b->cap > AUTHZ__BUCKET_INLINE);
    json_t *pr = json_loads("{\"spec\":{\"user\":\"dee\",\"scope\":{\"level\":\"Namespace\","
                            "\"name\":\"bank\"}}}", 0, NULL);
    err_t err = {0};
    assert_int_equal(authz_permission_review(f->authz, pr, &err), 0);
    /* Each binding once, the twice-named one included. */
    assert_int_equal(json_array_size(json_object_get(json_object_get(pr, "status"), "rules")), N);
    json_decref(pr);
    /* Out of the middle, the doubled one too, down to one. */
    int order[N] = {4, 0, 8, 2, 6, 1, 7, 3, 5};
    for (int k = 0; k < N; k++) {
        del(f, key[order[k]]);
        synced(f);
        char reason[512];
        authz_decision_t d = ask_r(f, "dee", "bank", reason, sizeof reason);
        if (k == N - 1) {
            assert_int_equal(d, AUTHZ_NO_OPINION);
            break;
        }
        assert_int_equal(d, AUTHZ_ALLOW);
        b = authz__bindings_at(f->authz, "u:dee",
                               &(authz__scope_t){AUTHZ__NAMESPACE, "host", "bank", "", "", ""});
        assert_non_null(b);
        assert_int_equal(b->n, N - 1 - k);
        if (b->n <= AUTHZ__BUCKET_INLINE)
            assert_int_equal(b->cap, AUTHZ__BUCKET_INLINE);
        /* what remains is exactly what was not deleted */
        void *const *v = authz__bucket_items(b);
        for (uint32_t j = 0; j < b->n; j++) {
            const authz__binding_t *bb = v[j];
            int gone = 0;
            for (int g = 0; g <= k; g++) {
                char nm[16];
                snprintf(nm, sizeof nm, "dee-%d", order[g]);
                gone |= !strcmp(bb->name, nm);
            }
            assert_false(gone);
        }
    }
    assert_null(authz__bindings_at(f->authz, "u:dee",
                                   &(authz__scope_t){AUTHZ__NAMESPACE, "host", "bank", "", "", ""}));
    /* alice's binding, never touched, still works. */
    assert_int_equal(ask_r(f, "alice", "shop", NULL, 0), AUTHZ_ALLOW);
}

/* Several bindings of one subject at one scope: a reason names, and a
 * trace and a PermissionReview list, them in the order of their names,
 * whatever order they were written (or rewritten) in. */
static void test_authz__same_scope_in_name_order(void **state)
{
    fx_t *f = *state;
    static const char *const names[] = {"ora-z", "ora-m", "ora-a"};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 3; i++) {
            char key[96], body[512];
            snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/%s", names[i]);
            snprintf(body, sizeof body,
                     "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"roleRef\":{\"name\":\"viewer\"},"
                     "\"subjects\":[{\"kind\":\"%s\",\"name\":\"%s\"}],\"scope\":{\"level\":"
                     "\"Namespace\",\"name\":\"bank\"}}}",
                     names[i], i == 1 ? "Group" : "User", i == 1 ? "ops" : "ora");
            put(f, key, body);
        }
        synced(f);
        char reason[512];
        authz_attrs_t at = POD("get", "bank", "p");
        assert_int_equal(ask(f, "ora", "ops", &at, reason, sizeof reason), AUTHZ_ALLOW);
        assert_string_equal(reason, "allowed by IAMRoleBinding ora-a (IAMRole viewer) at Namespace bank");
        json_t *ar = json_loads("{\"spec\":{\"user\":\"ora\",\"groups\":[\"ops\"],\"resourceAttributes\":"
                                "{\"namespace\":\"bank\",\"verb\":\"get\",\"resource\":\"pods\"}}}", 0, NULL);
        err_t err = {0};
        assert_int_equal(authz_access_review(f->authz, ar, &err), 0);
        json_t *here = json_object_get(json_array_get(json_object_get(json_object_get(ar, "status"), "trace"), 0),
                                       "bindings");
        assert_int_equal(json_array_size(here), 3);
        for (size_t i = 0; i < 3; i++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(here, i), "binding")),
                                names[2 - i]);
        json_decref(ar);
        json_t *pr = json_loads("{\"spec\":{\"user\":\"ora\",\"groups\":[\"ops\"],\"scope\":"
                                "{\"level\":\"Namespace\",\"name\":\"bank\"}}}", 0, NULL);
        assert_int_equal(authz_permission_review(f->authz, pr, &err), 0);
        json_t *rules = json_object_get(json_object_get(pr, "status"), "rules");
        assert_int_equal(json_array_size(rules), 3);
        for (size_t i = 0; i < 3; i++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(rules, i), "binding")),
                                names[2 - i]);
        json_decref(pr);
        /* The second round writes them again: new blocks, wherever the
         * heap puts them; the same answers. */
    }
}

/* Stored text in the forms the follower meets: the server's own (apiVersion
 * and kind first, managedFields and annotations the index skips), escapes
 * in the name, a repeated key (the last counts, as jansson reads it), a
 * storage key that differs from metadata.name, text that is JSON but not an
 * object, and text that does not decode (ignored: the previous version
 * stays, as it always has). */
static void test_authz__stored_object_forms(void **state)
{
    fx_t *f = *state;
    char reason[512];
    const char *key = "/iam.theriseunion.io/iamrolebindings/eve";
    put(f, key,
        "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
        "\"metadata\":{\"name\":\"eve\",\"uid\":\"u-1\",\"labels\":{\"a\":\"b\"},"
        "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
        "\"{\\\"metadata\\\":{\\\"name\\\":\\\"evil\\\"},\\\"spec\\\":{}}\"},"
        "\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Apply\","
        "\"fieldsV1\":{\"f:spec\":{\"f:scope\":{\"f:name\":{}},\"f:subjects\":{}}}}]},"
        "\"spec\":{\"roleRef\":{\"name\":\"viewer\"},\"subjects\":[{\"kind\":\"User\","
        "\"name\":\"eve\"}],\"scope\":{\"level\":\"Namespace\",\"name\":\"bank\"}},"
        "\"status\":{\"spec\":{\"scope\":{\"level\":\"Platform\"}}}}");
    synced(f);
    assert_int_equal(ask_r(f, "eve", "bank", reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding eve (IAMRole viewer) at Namespace bank");
    assert_int_equal(ask_r(f, "eve", "shop", NULL, 0), AUTHZ_NO_OPINION);
    /* Escapes decode; the last of two "spec"s counts; whitespace. */
    put(f, key,
        "{ \"metadata\" : { \"name\" : \"\\u00e9ve \\\"2\\\"\" } ,"
        " \"spec\" : {\"roleRef\":{\"name\":\"viewer\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"eve\"}],"
        "\"scope\":{\"level\":\"Namespace\",\"name\":\"bank\"}},\n"
        " \"spec\" : {\"roleRef\":{\"name\":\"viewer\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"eve\"}],"
        "\"scope\":{\"level\":\"Namespace\",\"name\":\"shop\"}} }");
    synced(f);
    assert_int_equal(ask_r(f, "eve", "bank", NULL, 0), AUTHZ_NO_OPINION);
    assert_int_equal(ask_r(f, "eve", "shop", reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding \xc3\xa9ve \"2\" (IAMRole viewer) at Namespace shop");
    /* Text that does not decode is ignored: the last good version stays. */
    put(f, key, "{\"metadata\":{\"name\":\"eve\"},\"spec\":{\"roleRef\":");
    put(f, key, "{\"metadata\":{\"name\":\"eve\"},\"spec\":{}} trailing");
    put(f, key, "{\"metadata\":{\"name\":\"eve\"},\"spec\":{\"x\":\"\\ud800\"}}");
    synced(f);
    assert_int_equal(ask_r(f, "eve", "shop", NULL, 0), AUTHZ_ALLOW);
    /* JSON that is not an object: decoded as before, a binding of nothing. */
    put(f, key, "[{\"metadata\":{\"name\":\"eve\"}}]");
    synced(f);
    assert_int_equal(ask_r(f, "eve", "shop", NULL, 0), AUTHZ_NO_OPINION);
    /* metadata that is not an object: no name, the binding still works. */
    put(f, key, "{\"metadata\":[\"eve\"],\"spec\":{\"roleRef\":{\"name\":\"viewer\"},\"subjects\":"
                "[{\"kind\":\"User\",\"name\":\"eve\"}],\"scope\":{\"level\":\"Namespace\",\"name\":\"shop\"}}}");
    synced(f);
    assert_int_equal(ask_r(f, "eve", "shop", reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding  (IAMRole viewer) at Namespace shop");
    /* Stored under one name, called another: the storage key is what a
     * later write or delete finds it by. */
    const char *k2 = "/iam.theriseunion.io/iamrolebindings/stored-name";
    put(f, k2, BINDING("called-name", "viewer", "[{\"kind\":\"User\",\"name\":\"fay\"}]",
                       "{\"level\":\"Namespace\",\"name\":\"bank\"}"));
    synced(f);
    assert_int_equal(ask_r(f, "fay", "bank", reason, sizeof reason), AUTHZ_ALLOW);
    assert_string_equal(reason, "allowed by IAMRoleBinding called-name (IAMRole viewer) at Namespace bank");
    put(f, k2, BINDING("called-name", "viewer", "[{\"kind\":\"User\",\"name\":\"fay\"}]",
                       "{\"level\":\"Namespace\",\"name\":\"shop\"}"));
    synced(f);
    assert_int_equal(ask_r(f, "fay", "bank", NULL, 0), AUTHZ_NO_OPINION);
    assert_int_equal(ask_r(f, "fay", "shop", NULL, 0), AUTHZ_ALLOW);
    del(f, k2);
    del(f, key);
    synced(f);
    assert_int_equal(ask_r(f, "fay", "shop", NULL, 0), AUTHZ_NO_OPINION);
    assert_int_equal(ask_r(f, "eve", "shop", NULL, 0), AUTHZ_NO_OPINION);
    /* A template's labels come from its metadata, however it is spelled. */
    put(f, "/iam.theriseunion.io/iamroles/picky",
        ROLE("picky", "{\"templateSelector\":{\"matchLabels\":{\"tier\":\"x\"}}}"));
    put(f, "/iam.theriseunion.io/roletemplates/t-x",
        "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"RoleTemplate\",\"metadata\":"
        "{\"name\":\"t-x\",\"l\\u0061bels\":{\"tier\":\"x\"},\"managedFields\":[{\"f\":1}]},"
        "\"spec\":{\"rules\":[{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]}}");
    put(f, "/iam.theriseunion.io/iamrolebindings/gus",
        BINDING("gus", "picky", "[{\"kind\":\"User\",\"name\":\"gus\"}]", "{\"level\":\"Cluster\"}"));
    synced(f);
    authz_attrs_t list = {.verb = "list", .resource_request = 1, .api_group = "",
                          .resource = "secrets", .namespace_ = "bank"};
    assert_int_equal(ask(f, "gus", NULL, &list, NULL, 0), AUTHZ_ALLOW);
}

/*
 * What one IAMRoleBinding costs the index, measured: the authorizer built
 * on a store holding 10,000 more bindings than the fixture, less the
 * authorizer built without them, over 10,000. Bindings as a real store
 * holds them (a few per user, over workspaces, namespaces, node groups).
 */
static void test_authz__memory_per_binding(void **state)
{
    fx_t *f = *state;
    enum { N = 10000 };
    static const char *const roles[] = {"workspace-viewer", "workspace-developer",
                                        "namespace-editor", "nodegroup-operator"};
    err_t err = {0};
    authz_free(f->authz);
    f->authz = NULL;
    size_t base = 0;
    for (int round = 0; round < 2; round++) {  /* the first warms lazy allocations */
        size_t b0 = heap_bytes();
        assert_int_equal(authz_new(f->store, "host", &f->authz, &err), 0);
        base = heap_bytes() - b0;
        authz_free(f->authz);
        f->authz = NULL;
    }
    for (int i = 0; i < N; i++) {
        char key[96], body[1024], scope[96];
        int user = (int)(((unsigned)i * 2654435761u) % 3000u);
        switch (i % 4) {
        case 0:
        case 1:
            snprintf(scope, sizeof scope, "{\"level\":\"Workspace\",\"name\":\"ws%d\"}", i % 1000);
            break;
        case 2:
            snprintf(scope, sizeof scope, "{\"level\":\"Namespace\",\"cluster\":\"host\",\"name\":\"ws%d-%c\"}",
                     i % 1000, "abc"[i % 3]);
            break;
        default:
            snprintf(scope, sizeof scope, "{\"level\":\"NodeGroup\",\"name\":\"ng-%03d\"}", i % 200);
            break;
        }
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/rb-%06d", i);
        snprintf(body, sizeof body,
                 "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
                 "\"metadata\":{\"name\":\"rb-%06d\",\"uid\":\"6f1c2a9e-0000-4000-8000-%012d\","
                 "\"labels\":{\"iam.theriseunion.io/role\":\"%s\"}},\"spec\":{\"roleRef\":"
                 "{\"name\":\"%s\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"user-%d\"}],"
                 "\"scope\":%s}}",
                 i, i, roles[i % 4], roles[i % 4], user, scope);
        put(f, key, body);
    }
    size_t b0 = heap_bytes();
    assert_int_equal(authz_new(f->store, "host", &f->authz, &err), 0);
    size_t used = heap_bytes() - b0;
    double per = ((double)used - (double)base) / N;
    print_message("index: %.0f " HEAP_COUNTS " per IAMRoleBinding, over %d\n", per, N);
    /* The index holds what was stored. */
    put(f, "/iam.theriseunion.io/iamroles/namespace-editor", ROLE("namespace-editor",
        "{\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}"));
    synced(f);
    authz_attrs_t at = POD("get", "ws2-c", "p");
    int user2 = (int)((2u * 2654435761u) % 3000u);
    char u[32];
    snprintf(u, sizeof u, "user-%d", user2);
    assert_int_equal(ask(f, u, NULL, &at, NULL, 0), AUTHZ_ALLOW);
    assert_true(per < 400);
}

/* A user is sized by what it holds: about 9 KB, not a 256-byte slot for
 * each of 256 groups (72 KB on every request's stack and per token-file
 * line). Groups and extras share one text area; a group that does not fit
 * fails closed (overflow), an extra that does not fit is dropped. */
static void test_authz__user_size_and_text(void **state)
{
    (void)state;
    assert_true(sizeof(authz_user_t) <= 10 * 1024);
    authz_user_t *u = calloc(1, sizeof *u);
    assert_non_null(u);
    authz_user_reset(u);
    authz_user_add_group(u, "system:authenticated");
    authz_user_add_group(u, "system:authenticated");
    assert_int_equal(u->ngroups, 1);
    assert_int_equal(authz_user_add_extra(u, "scopes", "a"), 0);
    assert_int_equal(authz_user_add_extra(u, "scopes", "b"), 0);
    char group[AUTHZ_MAX_GROUP_LEN];
    for (size_t i = 0; i < 40 && !u->overflow; i++) {
        memset(group, 'a' + (int)(i % 26), sizeof group - 1);
        group[sizeof group - 1] = '\0';
        char prefix[8];
        snprintf(prefix, sizeof prefix, "g%03zu-", i);
        memcpy(group, prefix, strlen(prefix));
        authz_user_add_group(u, group);
    }
    /* 8 KB of text holds 31 groups of 255 bytes beside the rest, not 40. */
    assert_true(u->overflow);
    assert_true(u->ngroups > 30 && u->ngroups < 40);
    assert_string_equal(authz_user_group(u, 0), "system:authenticated");
    assert_int_equal(strlen(authz_user_group(u, 1)), AUTHZ_MAX_GROUP_LEN - 1);
    assert_string_equal(authz_user_extra_key(u, 1), "scopes");
    assert_string_equal(authz_user_extra_value(u, 1), "b");
    json_t *extra = authz_user_extra_json(u);
    assert_non_null(extra);
    assert_int_equal(json_array_size(json_object_get(extra, "scopes")), 2);
    json_decref(extra);
    /* A copy carries everything; a reset empties it. */
    authz_user_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    authz_user_copy(c, u);
    assert_int_equal(c->ngroups, u->ngroups);
    assert_true(c->overflow);
    assert_string_equal(authz_user_group(c, u->ngroups - 1), authz_user_group(u, u->ngroups - 1));
    authz_user_reset(c);
    assert_int_equal(c->ngroups + c->nextra + c->used, 0);
    /* Extras past the limit are dropped, and say so. */
    for (size_t i = c->nextra; i < AUTHZ_MAX_EXTRA; i++)
        assert_int_equal(authz_user_add_extra(c, "k", "v"), 0);
    assert_int_equal(authz_user_add_extra(c, "k", "v"), -1);
    free(c);
    free(u);
}

/* ---- allocation failures ------------------------------------------------------ */

/*
 * Faults the tests inject, both through lib/mem: every allocation from the
 * N-th on failing (memory that stays short), or the N-th alone (a
 * transient shortage, which shows a caller that ignores a failure and
 * carries on). A run reached its fault when mem_failures() moved.
 */
typedef enum { FAULT_FROM_NTH, FAULT_NTH_ONLY } fault_t;

static const char *const fault_names[] = {"from the N-th on", "the N-th only"};

static void fault_set(fault_t mode, long n)
{
    if (mode == FAULT_FROM_NTH)
        mem_fail_after(n - 1);
    else
        mem_fail_once(n - 1);
}

static void fault_clear(void)
{
    mem_fail_after(-1);
}

/* More allocations than any run here makes. */
#define FAULT_MAX_N 20000

/* What one run under a fault answered: what it answers without one, a
 * clean error (ERR_NOMEM, or no opinion with an evaluation error), or
 * something else, which is wrong. */
typedef enum { RUN_SAME, RUN_ERROR, RUN_WRONG } run_t;

typedef run_t (*run_fn)(fx_t *f, const void *arg, char *what, size_t n);

/*
 * Runs fn with each of its allocations made to fail in turn, in both
 * fault modes, for N = 1, 2, ... until N is past the allocations the run
 * makes (the fault is not reached). Every run must answer as without a
 * fault or fail cleanly, and fail only when its fault was reached.
 */
static void each_fault(fx_t *f, const char *name, run_fn fn, const void *arg)
{
    for (int mode = FAULT_FROM_NTH; mode <= FAULT_NTH_ONLY; mode++) {
        long n;
        for (n = 1; n < FAULT_MAX_N; n++) {
            char what[512] = "";
            unsigned long f0 = mem_failures();
            fault_set((fault_t)mode, n);
            run_t r = fn(f, arg, what, sizeof what);
            fault_clear();
            int hit = mem_failures() != f0;
            if (r == RUN_WRONG || (r == RUN_ERROR && !hit))
                fail_msg("%s, allocation %s, N = %ld (fault %s): %s", name, fault_names[mode], n,
                         hit ? "reached" : "not reached", what);
            if (!hit)
                break;
        }
        assert_true(n > 1 && n < FAULT_MAX_N);
    }
}

/*
 * faye: admin (allow everything) at Namespace shop, and at Workspace ws1,
 * which lists shop, four viewer bindings then a deny of get secrets: at
 * ws1 a decision collects five of her bindings, one more than it first
 * makes room for, and the fifth is the deny.
 * gil: admin at Cluster, three viewer bindings, then a deny of get secrets
 * at Namespace shop (inside ws1): the fifth binding of his that a
 * coverage check collects.
 */
static void faults_fixture(fx_t *f)
{
    put(f, "/iam.theriseunion.io/iamroles/admin",
        ROLE("admin", "{\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],"
                      "\"resources\":[\"*\"]}]}"));
    put(f, "/iam.theriseunion.io/iamroles/no-secrets",
        ROLE("no-secrets", "{\"denyRules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
                           "\"resources\":[\"secrets\"]}],\"uiPermissions\":[\"no-secrets\"]}"));
    static const struct { const char *name, *role, *user, *scope; } b[] = {
        {"faye-admin", "admin", "faye", "{\"level\":\"Namespace\",\"name\":\"shop\"}"},
        {"faye-v1", "viewer", "faye", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"},
        {"faye-v2", "viewer", "faye", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"},
        {"faye-v3", "viewer", "faye", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"},
        {"faye-v4", "viewer", "faye", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"},
        {"faye-guard", "no-secrets", "faye", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"},
        {"gil-admin", "admin", "gil", "{\"level\":\"Cluster\"}"},
        {"gil-v1", "viewer", "gil", "{\"level\":\"Workspace\",\"name\":\"ws2\"}"},
        {"gil-v2", "viewer", "gil", "{\"level\":\"Namespace\",\"name\":\"bank\"}"},
        {"gil-v3", "viewer", "gil", "{\"level\":\"Workspace\",\"name\":\"ws1\"}"},
        {"gil-guard", "no-secrets", "gil", "{\"level\":\"Namespace\",\"name\":\"shop\"}"},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        char key[128], body[512];
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/%s", b[i].name);
        snprintf(body, sizeof body,
                 "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"roleRef\":{\"name\":\"%s\"},"
                 "\"subjects\":[{\"kind\":\"User\",\"name\":\"%s\"}],\"scope\":%s}}",
                 b[i].name, b[i].role, b[i].user, b[i].scope);
        put(f, key, body);
    }
    synced(f);
}

#define SECRET(v) (authz_attrs_t){.verb = v, .resource_request = 1, .api_group = "", \
                                  .resource = "secrets", .namespace_ = "shop", .name = "s"}

/* A decision of faye's on secret s in shop: get is denied (at ws1, over
 * her allow at shop), list allowed. */
typedef struct dcase {
    const char *verb;
    authz_decision_t want;
    const char *sar;             /* the same as a SubjectAccessReview */
    json_t *sar_json;
    json_t *permissions;         /* her PermissionReview status at shop */
} dcase_t;

/* A decision under a fault: the one made without a fault, or no opinion
 * with an evaluation error; never an allow the run without a fault does
 * not give. */
static run_t decision(const dcase_t *c, authz_decision_t d, const char *reason, int error_field,
                      char *what, size_t n)
{
    snprintf(what, n, "%s secrets: decided %d, want %d or no opinion with an evaluation error: %s",
             c->verb, d, c->want, reason ? reason : "(no reason)");
    if (d == c->want && !error_field)
        return RUN_SAME;
    if (d == AUTHZ_NO_OPINION && reason && strstr(reason, "evaluation error") &&
        (error_field || !c->sar_json))
        return RUN_ERROR;
    return RUN_WRONG;
}

static run_t run_authorize(fx_t *f, const void *arg, char *what, size_t n)
{
    const dcase_t *c = arg;
    authz_user_t faye = user_of("faye");
    authz_attrs_t at = SECRET(c->verb);
    char reason[512];
    authz_decision_t d = authz_authorize(f->authz, &faye, &at, reason, sizeof reason);
    return decision(c, d, reason, 0, what, n);
}

/* A decision placed at Namespace shop: the deny at ws1 above still wins. */
static run_t run_authorize_at(fx_t *f, const void *arg, char *what, size_t n)
{
    const dcase_t *c = arg;
    authz_user_t faye = user_of("faye");
    authz_attrs_t at = SECRET(c->verb);
    authz_scope_ref_t shop = {.level = "Namespace", .name = "shop"};
    char reason[512];
    authz_decision_t d = authz_authorize_at(f->authz, &faye, &at, &shop, reason, sizeof reason);
    return decision(c, d, reason, 0, what, n);
}

/* A review's status read as a decision: an evaluation error must come
 * with no opinion, and is reported in status.evaluationError. */
static run_t review_status(const dcase_t *c, const json_t *st, char *what, size_t n)
{
    authz_decision_t d = json_is_true(json_object_get(st, "allowed")) ? AUTHZ_ALLOW
                       : json_is_true(json_object_get(st, "denied")) ? AUTHZ_DENY
                       : AUTHZ_NO_OPINION;
    const char *reason = json_string_value(json_object_get(st, "reason"));
    return decision(c, d, reason, json_object_get(st, "evaluationError") != NULL, what, n);
}

static run_t run_review_text(fx_t *f, const void *arg, char *what, size_t n)
{
    const dcase_t *c = arg;
    err_t err = {0};
    char *text = NULL;
    size_t len = 0;
    int rc = authz_subject_access_review_text(f->authz, c->sar, strlen(c->sar), NULL, &text,
                                              &len, &err);
    if (rc) {
        snprintf(what, n, "review failed: %s", err.message);
        return rc == ERR_NOMEM ? RUN_ERROR : RUN_WRONG;
    }
    fault_clear();  /* the test reads the answer whole */
    json_t *res = json_loadb(text, len, 0, NULL);
    mem_free(text);
    run_t r = review_status(c, json_object_get(res, "status"), what, n);
    json_decref(res);
    return r;
}

static run_t run_review_tree(fx_t *f, const void *arg, char *what, size_t n)
{
    const dcase_t *c = arg;
    err_t err = {0};
    json_t *res = NULL;
    int rc = authz_subject_access_review(f->authz, c->sar_json, NULL, &res, &err);
    if (rc) {
        snprintf(what, n, "review failed: %s", err.message);
        return rc == ERR_NOMEM ? RUN_ERROR : RUN_WRONG;
    }
    run_t r = review_status(c, json_object_get(res, "status"), what, n);
    json_decref(res);
    return r;
}

/* AccessReview: its trace is built as it decides. */
static run_t run_access_review(fx_t *f, const void *arg, char *what, size_t n)
{
    const dcase_t *c = arg;
    json_t *ar = json_deep_copy(json_object_get(c->sar_json, "spec"));
    json_t *obj = ar ? json_pack("{s:o}", "spec", ar) : NULL;
    err_t err = {0};
    run_t r = RUN_ERROR;
    int rc = obj ? authz_access_review(f->authz, obj, &err) : ERR_NOMEM;
    if (rc) {
        snprintf(what, n, "review failed: %d %s", rc, err.message);
        r = rc == ERR_NOMEM ? RUN_ERROR : RUN_WRONG;
    } else {
        r = review_status(c, json_object_get(obj, "status"), what, n);
    }
    json_decref(obj);
    return r;
}

/* PermissionReview at shop: every rule and deny rule in effect, or an
 * error; never a list short of one. */
static run_t run_permission_review(fx_t *f, const void *arg, char *what, size_t n)
{
    const dcase_t *c = arg;
    json_t *pr = json_pack("{s:{s:s, s:{s:s, s:s}}}", "spec", "user", "faye", "scope", "level",
                           "Namespace", "name", "shop");
    err_t err = {0};
    int rc = pr ? authz_permission_review(f->authz, pr, &err) : ERR_NOMEM;
    run_t r = rc == ERR_NOMEM ? RUN_ERROR
            : !rc && json_equal(json_object_get(pr, "status"), c->permissions) ? RUN_SAME
            : RUN_WRONG;
    snprintf(what, n, "PermissionReview: %d %s", rc, err.message);
    json_decref(pr);
    return r;
}

/* Every allocation of a decision made to fail in turn, for a decision
 * whose answer is a deny at a Workspace overriding an allow at the
 * Namespace below it, and for one whose answer is an allow: through
 * authz_authorize, the webhook's text and tree paths, AccessReview, and
 * (its rules) PermissionReview. */
static void test_authz__faults_never_allow(void **state)
{
    fx_t *f = *state;
    faults_fixture(f);
    dcase_t cases[] = {{"get", AUTHZ_DENY, NULL, NULL, NULL}, {"list", AUTHZ_ALLOW, NULL, NULL, NULL}};
    json_t *pr = json_pack("{s:{s:s, s:{s:s, s:s}}}", "spec", "user", "faye", "scope", "level",
                           "Namespace", "name", "shop");
    err_t err = {0};
    assert_int_equal(authz_permission_review(f->authz, pr, &err), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(pr, "status"), "denyRules")), 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dcase_t *c = &cases[i];
        char sar[512], what[512];
        snprintf(sar, sizeof sar,
                 "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
                 "\"spec\":{\"user\":\"faye\",\"groups\":[\"system:authenticated\"],"
                 "\"resourceAttributes\":{\"namespace\":\"shop\",\"verb\":\"%s\","
                 "\"resource\":\"secrets\",\"name\":\"s\"}}}", c->verb);
        c->sar = sar;
        c->permissions = json_object_get(pr, "status");
        /* Without a fault, each says what it should. */
        assert_int_equal(run_authorize(f, c, what, sizeof what), RUN_SAME);
        assert_int_equal(run_review_text(f, c, what, sizeof what), RUN_SAME);
        each_fault(f, "authz_authorize", run_authorize, c);
        each_fault(f, "SubjectAccessReview as text", run_review_text, c);
        c->sar_json = json_loads(sar, 0, NULL);
        assert_non_null(c->sar_json);
        each_fault(f, "SubjectAccessReview as JSON", run_review_tree, c);
        each_fault(f, "AccessReview", run_access_review, c);
        each_fault(f, "PermissionReview", run_permission_review, c);
        json_decref(c->sar_json);
    }
    json_decref(pr);
}

/* authz_covers against the rules without a fault. */
typedef struct ccase {
    const char *rules;
    json_t *json;
    int want;                    /* 1: covered */
    char *missing;               /* what is missing, when not */
} ccase_t;

static run_t run_covers(fx_t *f, const void *arg, char *what, size_t n)
{
    const ccase_t *c = arg;
    authz_user_t gil = user_of("gil");
    authz_scope_ref_t ws1 = {.level = "Workspace", .name = "ws1"};
    char *missing = NULL;
    int rc = authz_covers(f->authz, &gil, &ws1, c->json, &missing);
    snprintf(what, n, "authz_covers %s: %d, want %d or ERR_NOMEM; missing %s", c->rules, rc,
             c->want, missing ? missing : "(none)");
    run_t r = rc == ERR_NOMEM && !missing ? RUN_ERROR
            : rc == c->want && (rc || (missing && !strcmp(missing, c->missing))) ? RUN_SAME
            : RUN_WRONG;
    mem_free(missing);
    return r;
}

/* A role's rules, stored (arg NULL) or proposed (arg its spec): all of
 * them, or ERR_NOMEM; a deny list cut short would let a binding that
 * narrows access go without the bind check. */
static json_t *role_want[2];

static run_t run_role_rules(fx_t *f, const void *arg, char *what, size_t n)
{
    json_t *rules = NULL, *deny = NULL;
    int rc = arg ? authz_role_spec_rules(f->authz, "p", arg, &rules, &deny)
                 : authz_role_rules(f->authz, "no-secrets", &rules, &deny);
    run_t r = rc == ERR_NOMEM ? RUN_ERROR
            : !rc && json_equal(rules, role_want[0]) && json_equal(deny, role_want[1]) ? RUN_SAME
            : RUN_WRONG;
    snprintf(what, n, "%s: %d, %zu rules and %zu deny rules", arg ? "proposed" : "stored", rc,
             json_array_size(rules), json_array_size(deny));
    json_decref(rules);
    json_decref(deny);
    return r;
}

/* What admission asks, under the same faults: a coverage check never
 * reads an error as covered (gil's deny at shop, inside ws1, takes get
 * secrets away at ws1), a decision placed at a scope never allows
 * wrongly, and a role's rules come whole or not at all. */
static void test_authz__faults_never_cover(void **state)
{
    fx_t *f = *state;
    faults_fixture(f);
    ccase_t covers[] = {
        {"[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]", NULL, 0, NULL},
        {"[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\",\"configmaps\"]}]",
         NULL, 1, NULL},
    };
    authz_user_t gil = user_of("gil");
    authz_scope_ref_t ws1 = {.level = "Workspace", .name = "ws1"};
    for (size_t i = 0; i < sizeof covers / sizeof covers[0]; i++) {
        ccase_t *c = &covers[i];
        c->json = json_loads(c->rules, 0, NULL);
        assert_int_equal(authz_covers(f->authz, &gil, &ws1, c->json, &c->missing), c->want);
        each_fault(f, "authz_covers", run_covers, c);
        mem_free(c->missing);
        json_decref(c->json);
    }
    dcase_t at[] = {{"get", AUTHZ_DENY, NULL, NULL, NULL}, {"list", AUTHZ_ALLOW, NULL, NULL, NULL}};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char what[512];
        assert_int_equal(run_authorize_at(f, &at[i], what, sizeof what), RUN_SAME);
        each_fault(f, "authz_authorize_at", run_authorize_at, &at[i]);
    }
    json_t *spec = json_loads("{\"templateRefs\":[\"pods-view\"],\"rules\":[{\"verbs\":[\"list\"],"
                              "\"apiGroups\":[\"\"],\"resources\":[\"nodes\"]}],\"denyRules\":"
                              "[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\"],\"resources\":"
                              "[\"secrets\"]},{\"verbs\":[\"*\"],\"nonResourceURLs\":[\"/metrics\"]}]}",
                              0, NULL);
    for (int proposed = 0; proposed < 2; proposed++) {
        const json_t *arg = proposed ? spec : NULL;
        assert_int_equal(arg ? authz_role_spec_rules(f->authz, "p", arg, &role_want[0], &role_want[1])
                             : authz_role_rules(f->authz, "no-secrets", &role_want[0], &role_want[1]),
                         0);
        assert_true(json_array_size(role_want[1]) > 0);
        each_fault(f, proposed ? "authz_role_spec_rules" : "authz_role_rules", run_role_rules, arg);
        json_decref(role_want[0]);
        json_decref(role_want[1]);
    }
    json_decref(spec);
}

/*
 * Writes body at key with the follower held back, then lets it apply the
 * event with a fault set (every allocation from the n-th on failing), and
 * waits until it has applied the event or counted a failure. The test
 * holds the index's read lock while it writes, so the follower, which
 * needs the write lock, applies the event only once the fault is set; and
 * nothing else allocates meanwhile. 1 when the fault was reached.
 */
static int put_faulted(fx_t *f, const char *key, const char *body, long n)
{
    authz_t *a = f->authz;
    unsigned long e0 = authz_index_errors(a);
    pthread_rwlock_rdlock(&a->lock);
    put(f, key, body);
    uint64_t rev = store_revision(f->store);
    /* The follower is another thread: the budget is the process's. */
    unsigned long f0 = mem_failures_everywhere();
    mem_fail_everywhere(n - 1);
    pthread_rwlock_unlock(&a->lock);
    for (int i = 0; i < 10000 && authz_index_errors(a) == e0 && authz_revision(a) < rev; i++)
        usleep(1000);
    mem_fail_everywhere(-1);
    int hit = mem_failures_everywhere() != f0;
    /* A fault reached while applying is counted; one never reached is
     * not, and the event was applied. */
    if (hit)
        assert_true(authz_index_errors(a) > e0);
    else
        assert_true(authz_index_errors(a) == e0 && authz_revision(a) >= rev);
    return hit;
}

/* Waits (up to 10 s: a rebuild retries with backoff) until who's request
 * at is decided want. */
static void converges(fx_t *f, const char *who, const authz_attrs_t *at, authz_decision_t want)
{
    char reason[512];
    authz_decision_t d = AUTHZ_NO_OPINION;
    for (int i = 0; i < 2000 && (d = ask(f, who, NULL, at, reason, sizeof reason)) != want; i++)
        usleep(5000);
    if (d != want)
        fail_msg("%s: decided %d, want %d after the fault cleared: %s", who, d, want, reason);
    uint64_t rev = store_revision(f->store);
    for (int i = 0; i < 2000 && authz_revision(f->authz) < rev; i++)
        usleep(5000);
    assert_true(authz_revision(f->authz) >= rev);
}

/* Denies get on secrets and on resource m<N>: every version of what the
 * index test updates carries the first, and the second tells it apart. */
#define GUARD_DENY "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\",\"m%ld\"]}]"

/* What the index test updates: an object that carries the deny of user,
 * and how its N-th version is written (printf formats, N as %ld). */
static const struct guard {
    const char *user, *role, *key, *body;
} guards[] = {
    /* an IAMRole */
    {"hal", "guard", "/iam.theriseunion.io/iamroles/guard",
     "{\"metadata\":{\"name\":\"guard\"},\"spec\":{\"denyRules\":" GUARD_DENY "}}"},
    /* a RoleTemplate another IAMRole names */
    {"ida", "guard-by-template", "/iam.theriseunion.io/roletemplates/guard-t",
     "{\"metadata\":{\"name\":\"guard-t\",\"labels\":{\"v\":\"%ld\"}},\"spec\":"
     "{\"denyRules\":" GUARD_DENY "}}"},
    /* the IAMRoleBinding, which binds user m<N> as well */
    {"jon", "no-secrets", "/iam.theriseunion.io/iamrolebindings/jon-guard",
     "{\"metadata\":{\"name\":\"jon-guard\"},\"spec\":{\"roleRef\":{\"name\":\"no-secrets\"},"
     "\"subjects\":[{\"kind\":\"User\",\"name\":\"jon\"},{\"kind\":\"User\",\"name\":\"m%ld\"}],"
     "\"scope\":{\"level\":\"Cluster\"}}}"},
};

/*
 * The follower under allocation failure. Each of three users has admin at
 * Namespace shop and a deny of get secrets over all of Cluster: through
 * an IAMRole, through a RoleTemplate of another, or through the binding
 * itself. That object is updated again and again, each version still
 * denying get secrets and also something new, and every allocation of
 * applying it is made to fail in turn (with every one after it, until the
 * fault is cleared). The failure is counted and the deny still holds (the
 * object keeps its last good state, where it was once taken as deleted,
 * and its deny with it); once the fault clears, the rebuild brings in the
 * new version.
 */
static void test_authz__index_keeps_last_good_state(void **state)
{
    fx_t *f = *state;
    const char *secrets_only = "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]";
    char body[768];
    put(f, "/iam.theriseunion.io/iamroles/admin",
        ROLE("admin", "{\"rules\":[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],"
                      "\"resources\":[\"*\"]}]}"));
    snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"guard-t\"},\"spec\":{\"denyRules\":%s}}",
             secrets_only);
    put(f, "/iam.theriseunion.io/roletemplates/guard-t", body);
    put(f, "/iam.theriseunion.io/iamroles/guard-by-template",
        ROLE("guard-by-template", "{\"templateRefs\":[\"guard-t\"]}"));
    static const char *const denying[] = {"guard", "no-secrets"};
    for (size_t i = 0; i < 2; i++) {
        char key[128];
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamroles/%s", denying[i]);
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"denyRules\":%s}}",
                 denying[i], secrets_only);
        put(f, key, body);
    }
    for (size_t u = 0; u < sizeof guards / sizeof guards[0]; u++) {
        char key[128];
        const char *who = guards[u].user;
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/%s-admin", who);
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"%s-admin\"},\"spec\":{\"roleRef\":"
                 "{\"name\":\"admin\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"%s\"}],"
                 "\"scope\":{\"level\":\"Namespace\",\"name\":\"shop\"}}}", who, who);
        put(f, key, body);
        snprintf(key, sizeof key, "/iam.theriseunion.io/iamrolebindings/%s-guard", who);
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"%s-guard\"},\"spec\":{\"roleRef\":"
                 "{\"name\":\"%s\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"%s\"}],"
                 "\"scope\":{\"level\":\"Cluster\"}}}", who, guards[u].role, who);
        put(f, key, body);
    }
    synced(f);
    authz_attrs_t secret = SECRET("get");
    for (size_t u = 0; u < sizeof guards / sizeof guards[0]; u++)
        assert_int_equal(ask(f, guards[u].user, NULL, &secret, NULL, 0), AUTHZ_DENY);

    unsigned long errors0 = authz_index_errors(f->authz);
    long hits = 0;
    for (size_t u = 0; u < sizeof guards / sizeof guards[0]; u++) {
        const struct guard *g = &guards[u];
        long n;
        for (n = 1; n < FAULT_MAX_N; n++) {
            snprintf(body, sizeof body, g->body, n, n);
            int hit = put_faulted(f, g->key, body, n);
            hits += hit;
            /* The deny holds, in the last good state or the new one. */
            char reason[512], marker[32];
            authz_decision_t d = ask(f, g->user, NULL, &secret, reason, sizeof reason);
            if (d != AUTHZ_DENY)
                fail_msg("%s, allocation %ld of applying %s failed: decided %d: %s", g->user, n,
                         g->key, d, reason);
            /* And the new version comes in: m<N> denied to the user, or
             * (the binding) get secrets denied to user m<N>. */
            snprintf(marker, sizeof marker, "m%ld", n);
            authz_attrs_t at = SECRET("get");
            if (u < 2)
                at.resource = marker;
            converges(f, u < 2 ? g->user : marker, &at, AUTHZ_DENY);
            if (!hit)
                break;
        }
        assert_true(n > 1 && n < FAULT_MAX_N);
    }
    assert_true(hits > 0);
    assert_true(authz_index_errors(f->authz) >= errors0 + (unsigned long)hits);
    print_message("index: %ld updates failed to apply, %lu failures counted\n", hits,
                  authz_index_errors(f->authz) - errors0);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authz__rbac_matching),
        cmocka_unit_test(test_authz__user_size_and_text),
        cmocka_unit_test(test_authz__covers),
        cmocka_unit_test_setup_teardown(test_authz__grant_checks, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__template_scopes_fail_closed, setup, fx_teardown),
        cmocka_unit_test(test_authz__role_aggregation),
        cmocka_unit_test_setup_teardown(test_authz__binding_placement, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__workspace_cascade, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__every_level, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__deny_wins_and_groups, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__aggregation_recomputed, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__subject_access_review, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__review_text_matches_tree, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__many_bindings_of_one_subject, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__reviews, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__namespace_in_many_workspaces, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__fails_closed_on_overflow, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__binding_subjects_change, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__shared_buckets, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__same_scope_in_name_order, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__stored_object_forms, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__memory_per_binding, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__faults_never_allow, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__faults_never_cover, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_authz__index_keeps_last_good_state, setup, fx_teardown),
    };
    return cmocka_run_group_tests_name("authz", tests, NULL, NULL);
}
