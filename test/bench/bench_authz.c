/*
 * In-process authorization benchmark (not a test: prints figures).
 *
 *   bench_authz DATA_DIR USERS WORKSPACES BINDINGS [--load-only] [--requests FILE]
 *               [--managed-fields]
 *
 * 1. Fixture. Writes, straight into an LMDB store at DATA_DIR (no fsync,
 *    history compacted afterwards as a long-running server's would be):
 *      21 RoleTemplates (view / edit / admin / node groups of rules, a deny
 *         template for secrets, two non-resource templates);
 *      10 IAMRoles, by templateRefs, templateSelector (matchLabels and
 *         matchExpressions) or both, at Workspace, Namespace, NodeGroup,
 *         Cluster and Platform level;
 *      WORKSPACES Workspaces ws<i> of 3 namespaces ws<i>-a/-b/-c;
 *      200 NodeGroups ng-<i> of 10 nodes edge-<i>-<j>;
 *      BINDINGS IAMRoleBindings over USERS users user-<u> (each in group
 *         team-<u % 20>): 50% Workspace, 35% Namespace, 8% NodeGroup,
 *         3% Cluster, 1% Platform, 3% to a team group at Workspace.
 *    The fixture is a pure function of the four numbers. When DATA_DIR
 *    already holds it (a copy made for the HTTP benchmark), it is used as
 *    is.
 *    --requests FILE writes the request mix below as SubjectAccessReview v1
 *    bodies, one per line, as kube-apiserver's webhook client sends them.
 *    --managed-fields stores each IAMRoleBinding as one that kubectl applied
 *    looks (~1.7 KB): a last-applied-configuration annotation and two
 *    metadata.managedFields entries, which the authorizer never reads but
 *    its follower must get past (the index build time measures that).
 *
 * 2. Unless --load-only, builds the authorizer on the store and measures:
 *    - the time authz_new takes to index the fixture, the process's memory
 *      (VmRSS, RssAnon) before and after, and the heap the index holds
 *      (malloc's own count, per IAMRoleBinding);
 *    - the decisions of the mix, checked once against what the fixture
 *      implies (any difference is printed), with where each allow came from;
 *    - authz_authorize latency over 200,000 decisions from 2 threads (p50,
 *      p99, p99.9, max, overall and per kind of request) and decisions/s;
 *    - the same reviews as the webhook handles them in-process: the body's
 *      text in, the answer's text out (authz_subject_access_review_text);
 *    - reference, same run: decoding and re-encoding the same bodies with no
 *      decision (the JSON work every review costs anyway). Timings are
 *      reported as ratios against it.
 *
 * The request mix (MIX distinct requests, cycled):
 *   30% allowed at a Workspace      get/list pods in a namespace of a
 *                                   Workspace the user is bound at
 *    5% allowed through a group     list pods, bound through team-<g>
 *   25% allowed at a Namespace      get/list configmaps in a bound namespace
 *    5% denied                      get secrets where a developer role's
 *                                   deny rule applies
 *   20% no opinion, full chain      delete a persistentvolumeclaim by name:
 *                                   Resource, Namespace, Workspace, Cluster,
 *                                   Platform all looked at, nothing allows
 *    5% node, allowed               get a node of a bound NodeGroup, or list
 *                                   nodes with the NodeGroup label selector
 *    4% node, no opinion            delete a node: Node, NodeGroup, Cluster,
 *                                   Platform
 *    6% non-resource                get /metrics (allowed for auditors; no
 *                                   opinion for others)
 *
 * The last output line, "AUTHZ_RESULT k=v ...", is for bench_authz.sh.
 */
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../authz/authz.h"
#include "../../lib/mem.h"
#include "../../storage/store.h"

#define CLUSTER "host"
#define NTEAMS 20
#define NNODEGROUPS 200
#define NODES_PER_GROUP 10
#define MIX 20000
#define DECISIONS 200000
#define REVIEWS 100000
#define NTHREADS 2

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* v must be sorted. Nearest rank. */
static double pct_sorted(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)n);
    if (i >= n)
        i = n - 1;
    return v[i];
}

/* splitmix64: the fixture's only source of randomness, so it is a pure
 * function of its parameters. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rng_state = 42;
static uint64_t rnd(uint64_t n)
{
    rng_state = mix64(rng_state);
    return n ? rng_state % n : 0;
}

/* ---- the fixture ---------------------------------------------------------- */

/* IAMRoles, in the order of role_names. */
enum { R_WS_VIEWER, R_WS_DEVELOPER, R_WS_ADMIN, R_NS_VIEWER, R_NS_EDITOR, R_NG_VIEWER,
       R_NG_OPERATOR, R_CLUSTER_VIEWER, R_PLATFORM_AUDITOR, R_PLATFORM_ADMIN, NROLES };
static const char *const role_names[NROLES] = {
    "workspace-viewer", "workspace-developer", "workspace-admin", "namespace-viewer",
    "namespace-editor", "nodegroup-viewer", "nodegroup-operator", "cluster-viewer",
    "platform-auditor", "platform-admin",
};

enum { L_WORKSPACE, L_NAMESPACE, L_NODEGROUP, L_CLUSTER, L_PLATFORM };
static const char *const level_names[] = {"Workspace", "Namespace", "NodeGroup", "Cluster",
                                          "Platform"};

typedef struct fixture {
    int users, workspaces, bindings;
    int managed;                 /* --managed-fields */
    /* per binding */
    unsigned char *level, *role;
    int *scope;                  /* workspace, namespace (ws*3+k) or node group index */
    int *subject;                /* user index, or -(team+1) for a group */
    /* per user: bit r set when a binding of role r names the user */
    uint16_t *roles_of;
    /* bindings by use, for building requests */
    int *ws_user, nws_user, *dev_user, ndev_user, *ns_user, nns_user, *ng_user, nng_user;
    int *group_b, ngroup_b, *auditors, nauditors;
} fixture_t;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "bench_authz: out of memory\n");
        exit(1);
    }
    return p;
}

static void fixture_plan(fixture_t *f)
{
    int n = f->bindings;
    f->level = xcalloc((size_t)n, 1);
    f->role = xcalloc((size_t)n, 1);
    f->scope = xcalloc((size_t)n, sizeof(int));
    f->subject = xcalloc((size_t)n, sizeof(int));
    f->roles_of = xcalloc((size_t)f->users, sizeof(uint16_t));
    f->ws_user = xcalloc((size_t)n, sizeof(int));
    f->dev_user = xcalloc((size_t)n, sizeof(int));
    f->ns_user = xcalloc((size_t)n, sizeof(int));
    f->ng_user = xcalloc((size_t)n, sizeof(int));
    f->group_b = xcalloc((size_t)n, sizeof(int));
    f->auditors = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        uint64_t h = mix64((uint64_t)i * 7919u + 1);
        uint64_t h2 = mix64(h);
        unsigned sel = (unsigned)(h % 1000);
        int user = (int)((h >> 20) % (uint64_t)f->users);
        unsigned pick = (unsigned)(h2 % 100);
        int ws = (int)((h2 >> 16) % (uint64_t)f->workspaces);
        f->subject[i] = user;
        if (sel < 500) {
            f->level[i] = L_WORKSPACE;
            f->role[i] = pick < 40 ? R_WS_VIEWER : pick < 80 ? R_WS_DEVELOPER : R_WS_ADMIN;
            f->scope[i] = ws;
        } else if (sel < 850) {
            f->level[i] = L_NAMESPACE;
            f->role[i] = pick < 60 ? R_NS_VIEWER : R_NS_EDITOR;
            f->scope[i] = ws * 3 + (int)((h2 >> 40) % 3);
        } else if (sel < 930) {
            f->level[i] = L_NODEGROUP;
            f->role[i] = pick < 70 ? R_NG_VIEWER : R_NG_OPERATOR;
            f->scope[i] = (int)((h2 >> 16) % NNODEGROUPS);
        } else if (sel < 960) {
            f->level[i] = L_CLUSTER;
            f->role[i] = R_CLUSTER_VIEWER;
        } else if (sel < 970) {
            f->level[i] = L_PLATFORM;
            f->role[i] = pick < 90 ? R_PLATFORM_AUDITOR : R_PLATFORM_ADMIN;
        } else {
            f->level[i] = L_WORKSPACE;
            f->role[i] = pick < 60 ? R_WS_VIEWER : R_WS_DEVELOPER;
            f->scope[i] = ws;
            f->subject[i] = -(int)((h >> 20) % NTEAMS) - 1;
            f->group_b[f->ngroup_b++] = i;
            continue;
        }
        f->roles_of[user] |= (uint16_t)(1u << f->role[i]);
        if (f->level[i] == L_WORKSPACE)
            f->ws_user[f->nws_user++] = i;
        if (f->role[i] == R_WS_DEVELOPER)
            f->dev_user[f->ndev_user++] = i;
        if (f->level[i] == L_NAMESPACE)
            f->ns_user[f->nns_user++] = i;
        if (f->level[i] == L_NODEGROUP)
            f->ng_user[f->nng_user++] = i;
        if (f->role[i] == R_PLATFORM_AUDITOR)
            f->auditors[f->nauditors++] = i;
    }
}

static void fixture_free(fixture_t *f)
{
    free(f->level);
    free(f->role);
    free(f->scope);
    free(f->subject);
    free(f->roles_of);
    free(f->ws_user);
    free(f->dev_user);
    free(f->ns_user);
    free(f->ng_user);
    free(f->group_b);
    free(f->auditors);
}

static void ns_name(int ns, char *buf, size_t n)
{
    snprintf(buf, n, "ws%d-%c", ns / 3, "abc"[ns % 3]);
}

/* ---- writing it ------------------------------------------------------------- */

typedef struct writer {
    store_t *s;
    long n;
    char key[STORE_MAX_KEY + 1];
    char val[8192];
} writer_t;

static void put(writer_t *w, int len)
{
    err_t err;
    err_clear(&err);
    if (len <= 0 || (size_t)len >= sizeof w->val) {
        fprintf(stderr, "bench_authz: object %s does not fit\n", w->key);
        exit(1);
    }
    if (store_create(w->s, w->key, w->val, (size_t)len, NULL, &err)) {
        fprintf(stderr, "bench_authz: create %s: %s\n", w->key, err.message);
        exit(1);
    }
    w->n++;
}

#define META(kind, group)                                                               \
    "{\"apiVersion\":\"" group "/v1alpha1\",\"kind\":\"" kind "\",\"metadata\":{\"name\":\"%s\"," \
    "\"uid\":\"6f1c2a9e-0000-4000-8000-%012lu\",\"generation\":1,"                        \
    "\"creationTimestamp\":\"2026-01-15T10:00:00Z\""

static const struct {
    const char *name, *label, *scopes, *rules, *deny, *ui;
} templates[] = {
    {"pods-view", "view", "\"Workspace\",\"Namespace\",\"Cluster\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"pods\",\"pods/log\",\"pods/status\"],"
     "\"verbs\":[\"get\",\"list\",\"watch\"]}", NULL, "\"workload.pods.view\""},
    {"configmaps-view", "view", "\"Workspace\",\"Namespace\",\"Cluster\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"verbs\":[\"get\",\"list\",\"watch\"]}",
     NULL, "\"config.configmaps.view\""},
    {"services-view", "view", "\"Workspace\",\"Namespace\",\"Cluster\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"services\",\"endpoints\"],"
     "\"verbs\":[\"get\",\"list\",\"watch\"]},{\"apiGroups\":[\"discovery.k8s.io\"],"
     "\"resources\":[\"endpointslices\"],\"verbs\":[\"get\",\"list\",\"watch\"]}",
     NULL, "\"network.services.view\""},
    {"events-view", "view", "\"Workspace\",\"Namespace\",\"Cluster\"",
     "{\"apiGroups\":[\"\",\"events.k8s.io\"],\"resources\":[\"events\"],"
     "\"verbs\":[\"get\",\"list\",\"watch\"]}", NULL, "\"observability.events.view\""},
    {"apps-view", "view", "\"Workspace\",\"Namespace\",\"Cluster\"",
     "{\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\",\"statefulsets\",\"daemonsets\","
     "\"replicasets\"],\"verbs\":[\"get\",\"list\",\"watch\"]}", NULL, "\"workload.apps.view\""},
    {"batch-view", "view", "\"Workspace\",\"Namespace\",\"Cluster\"",
     "{\"apiGroups\":[\"batch\"],\"resources\":[\"jobs\",\"cronjobs\"],"
     "\"verbs\":[\"get\",\"list\",\"watch\"]}", NULL, "\"workload.jobs.view\""},
    {"namespaces-view", "view", "\"Workspace\",\"Cluster\",\"Platform\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"namespaces\"],\"verbs\":[\"get\",\"list\",\"watch\"]}",
     NULL, "\"workspace.namespaces.view\""},
    {"pods-edit", "edit", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"pods\"],\"verbs\":[\"create\",\"update\",\"patch\","
     "\"delete\",\"deletecollection\"]},{\"apiGroups\":[\"\"],\"resources\":[\"pods/exec\","
     "\"pods/portforward\",\"pods/attach\"],\"verbs\":[\"create\",\"get\"]}",
     NULL, "\"workload.pods.edit\",\"workload.pods.exec\""},
    {"configmaps-edit", "edit", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"],\"verbs\":[\"create\",\"update\","
     "\"patch\",\"delete\"]}", NULL, "\"config.configmaps.edit\""},
    {"services-edit", "edit", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"services\"],\"verbs\":[\"create\",\"update\","
     "\"patch\",\"delete\"]}", NULL, "\"network.services.edit\""},
    {"apps-edit", "edit", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\",\"statefulsets\",\"daemonsets\","
     "\"deployments/scale\",\"statefulsets/scale\"],\"verbs\":[\"create\",\"update\",\"patch\","
     "\"delete\"]}", NULL, "\"workload.apps.edit\""},
    {"batch-edit", "edit", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"batch\"],\"resources\":[\"jobs\",\"cronjobs\"],\"verbs\":[\"create\","
     "\"update\",\"patch\",\"delete\"]}", NULL, "\"workload.jobs.edit\""},
    {"secrets-view", "admin", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"get\",\"list\",\"watch\"]}",
     NULL, "\"config.secrets.view\""},
    {"secrets-edit", "admin", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"create\",\"update\","
     "\"patch\",\"delete\"]}", NULL, "\"config.secrets.edit\""},
    {"rbac-admin", "admin", "\"Workspace\",\"Namespace\"",
     "{\"apiGroups\":[\"rbac.authorization.k8s.io\"],\"resources\":[\"roles\",\"rolebindings\"],"
     "\"verbs\":[\"*\"]}", NULL, "\"iam.members.manage\""},
    {"secrets-deny", NULL, "\"Workspace\",\"Namespace\"", NULL,
     "{\"apiGroups\":[\"\"],\"resources\":[\"secrets\"],\"verbs\":[\"*\"]}", NULL},
    {"nodes-view", "node-view", "\"NodeGroup\",\"Node\",\"Cluster\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"nodes\",\"nodes/status\"],"
     "\"verbs\":[\"get\",\"list\",\"watch\"]},{\"apiGroups\":[\"metrics.k8s.io\"],"
     "\"resources\":[\"nodes\"],\"verbs\":[\"get\",\"list\"]}", NULL, "\"infra.nodes.view\""},
    {"nodes-admin", "node-admin", "\"NodeGroup\",\"Node\",\"Cluster\"",
     "{\"apiGroups\":[\"\"],\"resources\":[\"nodes\",\"nodes/proxy\"],\"verbs\":[\"*\"]}",
     NULL, "\"infra.nodes.manage\""},
    {"scope-view", "node-view", "\"NodeGroup\",\"Workspace\",\"Cluster\"",
     "{\"apiGroups\":[\"scope.theriseunion.io\"],\"resources\":[\"workspaces\",\"nodegroups\"],"
     "\"verbs\":[\"get\",\"list\",\"watch\"]}", NULL, "\"scope.view\""},
    {"metrics-url", NULL, "\"Cluster\",\"Platform\"",
     "{\"nonResourceURLs\":[\"/metrics\",\"/metrics/*\",\"/debug/*\"],\"verbs\":[\"get\"]}",
     NULL, "\"platform.metrics.view\""},
    {"discovery-url", NULL, "\"Cluster\",\"Platform\"",
     "{\"nonResourceURLs\":[\"/version\",\"/api\",\"/api/*\",\"/apis\",\"/apis/*\"],"
     "\"verbs\":[\"get\"]}", NULL, NULL},
};
#define NTEMPLATES (sizeof templates / sizeof templates[0])

/* IAMRoles: scope, templateRefs, templateSelector, own rules. */
static const struct {
    const char *scope, *refs, *selector, *rules;
} roles[NROLES] = {
    [R_WS_VIEWER] = {"Workspace", NULL,
                     "{\"matchLabels\":{\"iam.theriseunion.io/aggregate-to\":\"view\"}}", NULL},
    [R_WS_DEVELOPER] = {"Workspace", "\"secrets-deny\"",
                        "{\"matchExpressions\":[{\"key\":\"iam.theriseunion.io/aggregate-to\","
                        "\"operator\":\"In\",\"values\":[\"view\",\"edit\"]}]}", NULL},
    [R_WS_ADMIN] = {"Workspace", "\"scope-view\"",
                    "{\"matchExpressions\":[{\"key\":\"iam.theriseunion.io/aggregate-to\","
                    "\"operator\":\"In\",\"values\":[\"view\",\"edit\",\"admin\"]}]}", NULL},
    [R_NS_VIEWER] = {"Namespace", "\"pods-view\",\"configmaps-view\",\"services-view\","
                     "\"events-view\"", NULL, NULL},
    [R_NS_EDITOR] = {"Namespace", "\"secrets-view\"",
                     "{\"matchExpressions\":[{\"key\":\"iam.theriseunion.io/aggregate-to\","
                     "\"operator\":\"In\",\"values\":[\"view\",\"edit\"]},{\"key\":"
                     "\"iam.theriseunion.io/aggregate-to\",\"operator\":\"NotIn\","
                     "\"values\":[\"admin\"]}]}", NULL},
    [R_NG_VIEWER] = {"NodeGroup", "\"nodes-view\",\"scope-view\"", NULL, NULL},
    [R_NG_OPERATOR] = {"NodeGroup", "\"nodes-view\"",
                       "{\"matchLabels\":{\"iam.theriseunion.io/aggregate-to\":\"node-admin\"}}",
                       NULL},
    [R_CLUSTER_VIEWER] = {"Cluster", "\"nodes-view\",\"scope-view\"",
                          "{\"matchLabels\":{\"iam.theriseunion.io/aggregate-to\":\"view\"}}", NULL},
    [R_PLATFORM_AUDITOR] = {"Platform", "\"metrics-url\",\"discovery-url\",\"namespaces-view\"",
                            NULL, NULL},
    [R_PLATFORM_ADMIN] = {"Platform", NULL, NULL,
                          "{\"apiGroups\":[\"*\"],\"resources\":[\"*\"],\"verbs\":[\"*\"]},"
                          "{\"nonResourceURLs\":[\"*\"],\"verbs\":[\"*\"]}"},
};

/* What kubectl apply leaves in a binding's metadata besides its labels:
 * the applied object as an annotation (JSON in a JSON string), and the
 * fields each manager owns. Appended to metadata as `,"annotations":...`. */
static void managed_fields(const char *name, const char *role, const char *level,
                           const char *spec, char *out, size_t n)
{
    char applied[1024], esc[1400];
    snprintf(applied, sizeof applied,
             "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
             "\"metadata\":{\"annotations\":{},\"labels\":{\"iam.theriseunion.io/role\":\"%s\","
             "\"iam.theriseunion.io/scope-level\":\"%s\"},\"name\":\"%s\"},\"spec\":%s}",
             role, level, name, spec);
    size_t k = 0;
    for (const char *c = applied; *c && k + 3 < sizeof esc; c++) {
        if (*c == '"' || *c == '\\')
            esc[k++] = '\\';
        esc[k++] = *c;
    }
    esc[k] = '\0';
    snprintf(out, n,
             ",\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"%s\\n\"},"
             "\"managedFields\":[{\"manager\":\"kubectl-client-side-apply\",\"operation\":\"Update\","
             "\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"time\":\"2026-01-15T10:00:00Z\","
             "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:annotations\":{\".\":{},"
             "\"f:kubectl.kubernetes.io/last-applied-configuration\":{}},\"f:labels\":{\".\":{},"
             "\"f:iam.theriseunion.io/role\":{},\"f:iam.theriseunion.io/scope-level\":{}}},"
             "\"f:spec\":{\".\":{},\"f:roleRef\":{\".\":{},\"f:name\":{}},\"f:scope\":{\".\":{},"
             "\"f:cluster\":{},\"f:level\":{},\"f:name\":{}},\"f:subjects\":{}}}},"
             "{\"manager\":\"edge-iam-controller\",\"operation\":\"Update\","
             "\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"time\":\"2026-01-15T10:00:05Z\","
             "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{"
             "\"f:iam.theriseunion.io/scope-level\":{}}}}}]",
             esc);
}

static void write_fixture(store_t *s, const fixture_t *f)
{
    writer_t *w = xcalloc(1, sizeof *w);
    w->s = s;
    unsigned long uid = 0;
    for (size_t i = 0; i < NTEMPLATES; i++) {
        char labels[160] = "";
        if (templates[i].label)
            snprintf(labels, sizeof labels, ",\"labels\":{\"iam.theriseunion.io/aggregate-to\":\"%s\"}",
                     templates[i].label);
        snprintf(w->key, sizeof w->key, "/iam.theriseunion.io/roletemplates/%s", templates[i].name);
        put(w, snprintf(w->val, sizeof w->val,
                        META("RoleTemplate", "iam.theriseunion.io") "%s},\"spec\":{"
                        "\"displayName\":\"%s\",\"description\":\"Benchmark template %s\","
                        "\"scopes\":[%s],\"rules\":[%s],\"denyRules\":[%s],\"uiPermissions\":[%s]}}",
                        templates[i].name, ++uid, labels, templates[i].name, templates[i].name,
                        templates[i].scopes, templates[i].rules ? templates[i].rules : "",
                        templates[i].deny ? templates[i].deny : "",
                        templates[i].ui ? templates[i].ui : ""));
    }
    for (int r = 0; r < NROLES; r++) {
        char sel[400] = "";
        if (roles[r].selector)
            snprintf(sel, sizeof sel, ",\"templateSelector\":%s", roles[r].selector);
        snprintf(w->key, sizeof w->key, "/iam.theriseunion.io/iamroles/%s", role_names[r]);
        put(w, snprintf(w->val, sizeof w->val,
                        META("IAMRole", "iam.theriseunion.io") "},\"spec\":{\"scope\":\"%s\","
                        "\"templateRefs\":[%s]%s,\"rules\":[%s]}}",
                        role_names[r], ++uid, roles[r].scope, roles[r].refs ? roles[r].refs : "",
                        sel, roles[r].rules ? roles[r].rules : ""));
    }
    for (int i = 0; i < f->workspaces; i++) {
        snprintf(w->key, sizeof w->key, "/scope.theriseunion.io/workspaces/ws%d", i);
        char name[16];
        snprintf(name, sizeof name, "ws%d", i);
        put(w, snprintf(w->val, sizeof w->val,
                        META("Workspace", "scope.theriseunion.io") "},\"spec\":{"
                        "\"displayName\":\"Workspace %d\",\"manager\":\"user-%d\","
                        "\"clusters\":[\"" CLUSTER "\"],\"namespaces\":["
                        "{\"cluster\":\"" CLUSTER "\",\"name\":\"ws%d-a\"},"
                        "{\"cluster\":\"" CLUSTER "\",\"name\":\"ws%d-b\"},"
                        "{\"name\":\"ws%d-c\"}]}}",
                        name, ++uid, i, i % f->users, i, i, i));
    }
    for (int i = 0; i < NNODEGROUPS; i++) {
        char name[16], nodes[400];
        size_t n = 0;
        snprintf(name, sizeof name, "ng-%03d", i);
        for (int j = 0; j < NODES_PER_GROUP; j++)
            n += (size_t)snprintf(nodes + n, sizeof nodes - n, "%s\"edge-%03d-%02d\"", j ? "," : "",
                                  i, j);
        snprintf(w->key, sizeof w->key, "/scope.theriseunion.io/nodegroups/%s", name);
        put(w, snprintf(w->val, sizeof w->val,
                        META("NodeGroup", "scope.theriseunion.io") "},\"spec\":{"
                        "\"displayName\":\"Edge site %d\",\"cluster\":\"" CLUSTER "\","
                        "\"nodes\":[%s]}}",
                        name, ++uid, i, nodes));
    }
    for (int i = 0; i < f->bindings; i++) {
        char name[24], subj[80], scope[120], ns[32];
        snprintf(name, sizeof name, "rb-%06d", i);
        if (f->subject[i] >= 0)
            snprintf(subj, sizeof subj, "{\"kind\":\"User\",\"name\":\"user-%d\"}", f->subject[i]);
        else
            snprintf(subj, sizeof subj, "{\"kind\":\"Group\",\"name\":\"team-%d\"}",
                     -f->subject[i] - 1);
        switch (f->level[i]) {
        case L_WORKSPACE:
            snprintf(scope, sizeof scope, "{\"level\":\"Workspace\",\"name\":\"ws%d\"}", f->scope[i]);
            break;
        case L_NAMESPACE:
            ns_name(f->scope[i], ns, sizeof ns);
            snprintf(scope, sizeof scope,
                     "{\"level\":\"Namespace\",\"cluster\":\"" CLUSTER "\",\"name\":\"%s\"}", ns);
            break;
        case L_NODEGROUP:
            snprintf(scope, sizeof scope, "{\"level\":\"NodeGroup\",\"name\":\"ng-%03d\"}",
                     f->scope[i]);
            break;
        case L_CLUSTER:
            snprintf(scope, sizeof scope, "{\"level\":\"Cluster\",\"cluster\":\"" CLUSTER "\"}");
            break;
        default:
            snprintf(scope, sizeof scope, "{\"level\":\"Platform\"}");
            break;
        }
        char spec[400], extra[3072] = "";
        snprintf(spec, sizeof spec, "{\"roleRef\":{\"name\":\"%s\"},\"subjects\":[%s],\"scope\":%s}",
                 role_names[f->role[i]], subj, scope);
        if (f->managed)
            managed_fields(name, role_names[f->role[i]], level_names[f->level[i]], spec, extra,
                           sizeof extra);
        snprintf(w->key, sizeof w->key, "/iam.theriseunion.io/iamrolebindings/%s", name);
        put(w, snprintf(w->val, sizeof w->val,
                        META("IAMRoleBinding", "iam.theriseunion.io")
                        ",\"labels\":{\"iam.theriseunion.io/role\":\"%s\","
                        "\"iam.theriseunion.io/scope-level\":\"%s\"}%s},\"spec\":%s}",
                        name, ++uid, role_names[f->role[i]], level_names[f->level[i]], extra,
                        spec));
    }
    printf("  wrote %ld objects: %zu RoleTemplates, %d IAMRoles, %d Workspaces (%d namespaces), "
           "%d NodeGroups (%d nodes), %d IAMRoleBindings\n",
           w->n, NTEMPLATES, NROLES, f->workspaces, f->workspaces * 3, NNODEGROUPS,
           NNODEGROUPS * NODES_PER_GROUP, f->bindings);
    free(w);
}

static int has_key(store_t *s, const char *key)
{
    store_value_t v;
    err_t err;
    err_clear(&err);
    if (store_get(s, key, &v, &err))
        return 0;
    store_value_free(&v);
    return 1;
}

/* 1 when s already holds this fixture, 0 when it is empty; exits when it
 * holds something else. */
static int fixture_present(store_t *s, const fixture_t *f)
{
    if (store_revision(s) == 0)
        return 0;
    char last[96], next[96], ws[96];
    snprintf(last, sizeof last, "/iam.theriseunion.io/iamrolebindings/rb-%06d", f->bindings - 1);
    snprintf(next, sizeof next, "/iam.theriseunion.io/iamrolebindings/rb-%06d", f->bindings);
    snprintf(ws, sizeof ws, "/scope.theriseunion.io/workspaces/ws%d", f->workspaces - 1);
    if (has_key(s, last) && !has_key(s, next) && has_key(s, ws))
        return 1;
    fprintf(stderr, "bench_authz: the store is not empty and does not hold this fixture; "
                    "use an empty DATA_DIR\n");
    exit(1);
}

/* ---- the request mix ------------------------------------------------------------- */

enum { C_WS, C_GROUP, C_NS, C_DENY, C_NONE, C_NODE_ALLOW, C_NODE_NONE, C_NONRES, NCATS };
static const char *const cat_names[NCATS] = {
    "allowed at Workspace", "allowed via group", "allowed at Namespace", "denied (deny rule)",
    "no opinion, full chain", "node, allowed", "node, no opinion", "non-resource /metrics",
};
static const int cat_weights[NCATS] = {30, 5, 25, 5, 20, 5, 4, 6};

typedef struct mreq {
    int cat;
    authz_decision_t expect;
    int user;
    int resource_request;
    const char *verb, *group, *resource;
    char ns[24], name[32], nodegroup[16], path[16];
} mreq_t;

static int user_lacks(const fixture_t *f, int u, unsigned mask)
{
    return !(f->roles_of[u] & mask);
}

/* A user none of whose own bindings has a role in mask (groups only bind
 * workspace roles). */
static int user_without(const fixture_t *f, unsigned mask)
{
    for (;;) {
        int u = (int)rnd((uint64_t)f->users);
        if (user_lacks(f, u, mask))
            return u;
    }
}

static void make_mix(const fixture_t *f, mreq_t *m, size_t n)
{
    int total = 0;
    for (int c = 0; c < NCATS; c++)
        total += cat_weights[c];
    rng_state = 0x5eedULL ^ (uint64_t)f->bindings;
    for (size_t i = 0; i < n; i++) {
        mreq_t *r = &m[i];
        memset(r, 0, sizeof *r);
        int w = (int)rnd((uint64_t)total), c = 0;
        while (w >= cat_weights[c])
            w -= cat_weights[c++];
        /* Fall back to "no opinion" when the fixture is too small to have
         * a binding of the kind. */
        if ((c == C_WS && !f->nws_user) || (c == C_GROUP && !f->ngroup_b) ||
            (c == C_NS && !f->nns_user) || (c == C_DENY && !f->ndev_user) ||
            (c == C_NODE_ALLOW && !f->nng_user))
            c = C_NONE;
        r->cat = c;
        r->resource_request = 1;
        r->group = "";
        int b;
        switch (c) {
        case C_WS:
            b = f->ws_user[rnd((uint64_t)f->nws_user)];
            r->user = f->subject[b];
            ns_name(f->scope[b] * 3 + (int)rnd(3), r->ns, sizeof r->ns);
            r->resource = "pods";
            if (rnd(2)) {
                r->verb = "get";
                snprintf(r->name, sizeof r->name, "web-%05d-x7k2p", (int)rnd(100000));
            } else {
                r->verb = "list";
            }
            r->expect = AUTHZ_ALLOW;
            break;
        case C_GROUP:
            b = f->group_b[rnd((uint64_t)f->ngroup_b)];
            r->user = (-f->subject[b] - 1) + NTEAMS * (int)rnd((uint64_t)(f->users + NTEAMS - 1) / NTEAMS);
            if (r->user >= f->users)
                r->user = -f->subject[b] - 1;
            ns_name(f->scope[b] * 3 + (int)rnd(3), r->ns, sizeof r->ns);
            r->verb = "list";
            r->resource = "pods";
            r->expect = AUTHZ_ALLOW;
            break;
        case C_NS:
            b = f->ns_user[rnd((uint64_t)f->nns_user)];
            r->user = f->subject[b];
            ns_name(f->scope[b], r->ns, sizeof r->ns);
            r->resource = "configmaps";
            if (rnd(2)) {
                r->verb = "get";
                snprintf(r->name, sizeof r->name, "app-config-%d", (int)rnd(1000));
            } else {
                r->verb = "list";
            }
            r->expect = AUTHZ_ALLOW;
            break;
        case C_DENY:
            b = f->dev_user[rnd((uint64_t)f->ndev_user)];
            r->user = f->subject[b];
            ns_name(f->scope[b] * 3 + (int)rnd(3), r->ns, sizeof r->ns);
            r->verb = "get";
            r->resource = "secrets";
            snprintf(r->name, sizeof r->name, "db-credentials-%d", (int)rnd(100));
            r->expect = AUTHZ_DENY;
            break;
        case C_NONE:
            r->user = user_without(f, 1u << R_PLATFORM_ADMIN);
            ns_name((int)rnd((uint64_t)f->workspaces * 3), r->ns, sizeof r->ns);
            r->verb = "delete";
            r->resource = "persistentvolumeclaims";
            snprintf(r->name, sizeof r->name, "data-%05d", (int)rnd(100000));
            r->expect = AUTHZ_NO_OPINION;
            break;
        case C_NODE_ALLOW:
            b = f->ng_user[rnd((uint64_t)f->nng_user)];
            r->user = f->subject[b];
            r->resource = "nodes";
            if (rnd(3)) {
                r->verb = "get";
                snprintf(r->name, sizeof r->name, "edge-%03d-%02d", f->scope[b],
                         (int)rnd(NODES_PER_GROUP));
            } else {
                r->verb = "list";
                snprintf(r->nodegroup, sizeof r->nodegroup, "ng-%03d", f->scope[b]);
            }
            r->expect = AUTHZ_ALLOW;
            break;
        case C_NODE_NONE:
            r->user = user_without(f, (1u << R_NG_OPERATOR) | (1u << R_PLATFORM_ADMIN));
            r->verb = "delete";
            r->resource = "nodes";
            snprintf(r->name, sizeof r->name, "edge-%03d-%02d", (int)rnd(NNODEGROUPS),
                     (int)rnd(NODES_PER_GROUP));
            r->expect = AUTHZ_NO_OPINION;
            break;
        default:
            r->resource_request = 0;
            r->verb = "get";
            snprintf(r->path, sizeof r->path, "/metrics");
            if (f->nauditors && rnd(2)) {
                r->user = f->subject[f->auditors[rnd((uint64_t)f->nauditors)]];
                r->expect = AUTHZ_ALLOW;
            } else {
                r->user = user_without(f, (1u << R_PLATFORM_AUDITOR) | (1u << R_PLATFORM_ADMIN));
                r->expect = AUTHZ_NO_OPINION;
            }
            break;
        }
    }
}

static void user_of(const mreq_t *r, authz_user_t *u)
{
    char g[32];
    authz_user_reset(u);
    snprintf(u->name, sizeof u->name, "user-%d", r->user);
    snprintf(u->uid, sizeof u->uid, "0b6a7c1e-%08d", r->user);
    snprintf(g, sizeof g, "team-%d", r->user % NTEAMS);
    authz_user_add_group(u, g);
    authz_user_add_group(u, "system:authenticated");
}

static void attrs_of(const mreq_t *r, authz_attrs_t *at)
{
    memset(at, 0, sizeof *at);
    at->verb = r->verb;
    at->resource_request = r->resource_request;
    if (!r->resource_request) {
        at->path = r->path;
        return;
    }
    at->api_group = *r->group ? r->group : NULL;
    at->api_version = "v1";
    at->resource = r->resource;
    at->namespace_ = *r->ns ? r->ns : NULL;
    at->name = *r->name ? r->name : NULL;
    at->nodegroup = *r->nodegroup ? r->nodegroup : NULL;
}

/* The review kube-apiserver's webhook client posts for r (field order and
 * omitted empty fields as client-go's encoding gives them). */
static int sar_body(const mreq_t *r, char *buf, size_t n)
{
    char attrs[400];
    if (!r->resource_request) {
        snprintf(attrs, sizeof attrs, "\"nonResourceAttributes\":{\"path\":\"%s\",\"verb\":\"%s\"}",
                 r->path, r->verb);
    } else {
        size_t k = (size_t)snprintf(attrs, sizeof attrs, "\"resourceAttributes\":{");
        if (*r->ns)
            k += (size_t)snprintf(attrs + k, sizeof attrs - k, "\"namespace\":\"%s\",", r->ns);
        k += (size_t)snprintf(attrs + k, sizeof attrs - k, "\"verb\":\"%s\",", r->verb);
        if (*r->group)
            k += (size_t)snprintf(attrs + k, sizeof attrs - k, "\"group\":\"%s\",", r->group);
        k += (size_t)snprintf(attrs + k, sizeof attrs - k, "\"version\":\"v1\",\"resource\":\"%s\"",
                              r->resource);
        if (*r->name)
            k += (size_t)snprintf(attrs + k, sizeof attrs - k, ",\"name\":\"%s\"", r->name);
        if (*r->nodegroup)
            k += (size_t)snprintf(attrs + k, sizeof attrs - k,
                                  ",\"labelSelector\":{\"requirements\":[{\"key\":"
                                  "\"scope.theriseunion.io/nodegroup\",\"operator\":\"In\","
                                  "\"values\":[\"%s\"]}]}",
                                  r->nodegroup);
        snprintf(attrs + k, sizeof attrs - k, "}");
    }
    return snprintf(buf, n,
                    "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
                    "\"metadata\":{\"creationTimestamp\":null},\"spec\":{%s,\"user\":\"user-%d\","
                    "\"groups\":[\"team-%d\",\"system:authenticated\"],"
                    "\"uid\":\"0b6a7c1e-%08d\"},\"status\":{\"allowed\":false}}",
                    attrs, r->user, r->user % NTEAMS, r->user);
}

/* ---- memory ---------------------------------------------------------------------- */

typedef struct mem_kb {
    long rss, anon, file;
} mem_kb_t;

/* Bytes of heap in use (every arena, plus chunks malloc mapped on their
 * own), as malloc counts them: what the program asked for plus malloc's
 * per-chunk header and rounding. Freed memory is not counted. */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static mem_kb_t read_mem(void)
{
    mem_kb_t m = {0, 0, 0};
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    while (fp && fgets(line, sizeof line, fp)) {
        if (!strncmp(line, "VmRSS:", 6))
            m.rss = strtol(line + 6, NULL, 10);
        else if (!strncmp(line, "RssAnon:", 8))
            m.anon = strtol(line + 8, NULL, 10);
        else if (!strncmp(line, "RssFile:", 8))
            m.file = strtol(line + 8, NULL, 10);
    }
    if (fp)
        fclose(fp);
    return m;
}

/* ---- timed runs ------------------------------------------------------------------- */

enum { M_DECIDE, M_WEBHOOK, M_JSON };

typedef struct run {
    authz_t *a;
    const mreq_t *mix;
    char *const *bodies;
    size_t nmix, start, count;
    int mode;
    double *lat;                 /* count seconds */
    int *cat;                    /* count categories */
    long failures;
} run_t;

static void *run_worker(void *p)
{
    run_t *w = p;
    authz_user_t *u = xcalloc(1, sizeof *u);
    authz_attrs_t at;
    char reason[1024];
    for (size_t k = 0; k < w->count; k++) {
        size_t i = (w->start + k) % w->nmix;
        const mreq_t *r = &w->mix[i];
        w->cat[k] = r->cat;
        if (w->mode == M_DECIDE) {
            user_of(r, u);
            attrs_of(r, &at);
            double t0 = now_s();
            authz_decision_t d = authz_authorize(w->a, u, &at, reason, sizeof reason);
            w->lat[k] = now_s() - t0;
            w->failures += d != r->expect;
            continue;
        }
        double t0 = now_s();
        char *text = NULL;
        if (w->mode == M_WEBHOOK) {
            /* as the server answers /authorize: text in, text out */
            err_t err;
            err_clear(&err);
            size_t len;
            if (authz_subject_access_review_text(w->a, w->bodies[i], strlen(w->bodies[i]), NULL,
                                                 &text, &len, &err))
                text = NULL;
        } else {
            json_t *sar = json_loads(w->bodies[i], 0, NULL);
            text = sar ? json_dumps(sar, JSON_COMPACT) : NULL;
            json_decref(sar);
        }
        w->failures += !text;
        mem_free(text);
        w->lat[k] = now_s() - t0;
    }
    free(u);
    return NULL;
}

typedef struct figures {
    double rate, p50, p99, p999, max;
    double cat_p50[NCATS], cat_p99[NCATS];
    long failures;
} figures_t;

static figures_t measure(authz_t *a, const mreq_t *mix, char *const *bodies, size_t nmix,
                         int mode, size_t total)
{
    run_t w[NTHREADS];
    pthread_t t[NTHREADS];
    size_t per = total / NTHREADS;
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (run_t){a, mix, bodies, nmix, (size_t)i * nmix / NTHREADS, per, mode,
                       xcalloc(per, sizeof(double)), xcalloc(per, sizeof(int)), 0};
    }
    double t0 = now_s();
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, run_worker, &w[i]);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    double el = now_s() - t0;
    figures_t f;
    memset(&f, 0, sizeof f);
    size_t n = per * NTHREADS;
    double *all = xcalloc(n, sizeof(double));
    double *bycat[NCATS];
    size_t nc[NCATS] = {0};
    for (int c = 0; c < NCATS; c++)
        bycat[c] = xcalloc(n, sizeof(double));
    for (int i = 0; i < NTHREADS; i++) {
        memcpy(all + (size_t)i * per, w[i].lat, per * sizeof(double));
        for (size_t k = 0; k < per; k++)
            bycat[w[i].cat[k]][nc[w[i].cat[k]]++] = w[i].lat[k];
        f.failures += w[i].failures;
        free(w[i].lat);
        free(w[i].cat);
    }
    qsort(all, n, sizeof(double), cmp_d);
    f.rate = (double)n / el;
    f.p50 = pct_sorted(all, n, 0.50);
    f.p99 = pct_sorted(all, n, 0.99);
    f.p999 = pct_sorted(all, n, 0.999);
    f.max = all[n - 1];
    for (int c = 0; c < NCATS; c++) {
        qsort(bycat[c], nc[c], sizeof(double), cmp_d);
        f.cat_p50[c] = pct_sorted(bycat[c], nc[c], 0.50);
        f.cat_p99[c] = pct_sorted(bycat[c], nc[c], 0.99);
        free(bycat[c]);
    }
    free(all);
    return f;
}

static void print_fig(const char *what, const figures_t *f)
{
    printf("  %-34s %9.0f/s   p50 %7.1f us   p99 %7.1f us   p99.9 %7.1f us   max %8.1f us\n",
           what, f->rate, f->p50 * 1e6, f->p99 * 1e6, f->p999 * 1e6, f->max * 1e6);
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_authz DATA_DIR USERS WORKSPACES BINDINGS [--load-only] "
                    "[--requests FILE] [--managed-fields]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 5)
        usage();
    const char *dir = argv[1];
    fixture_t f;
    memset(&f, 0, sizeof f);
    f.users = atoi(argv[2]);
    f.workspaces = atoi(argv[3]);
    f.bindings = atoi(argv[4]);
    int load_only = 0;
    const char *req_file = NULL;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--load-only"))
            load_only = 1;
        else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
            req_file = argv[++i];
        else if (!strcmp(argv[i], "--managed-fields"))
            f.managed = 1;
        else
            usage();
    }
    if (f.users < NTEAMS || f.workspaces < 1 || f.bindings < 1)
        usage();
    mem_init();

    fixture_plan(&f);
    size_t nmix = MIX;
    mreq_t *mix = xcalloc(nmix, sizeof *mix);
    make_mix(&f, mix, nmix);
    char **bodies = xcalloc(nmix, sizeof *bodies);
    for (size_t i = 0; i < nmix; i++) {
        char buf[1200];
        int n = sar_body(&mix[i], buf, sizeof buf);
        bodies[i] = xcalloc((size_t)n + 1, 1);
        memcpy(bodies[i], buf, (size_t)n + 1);
    }

    /* The fixture, unless the store holds it already. */
    store_config_t cfg = {.data_dir = dir, .no_sync = 1};
    store_t *s;
    err_t err;
    err_clear(&err);
    if (store_open(&cfg, &s, &err)) {
        fprintf(stderr, "bench_authz: open %s: %s\n", dir, err.message);
        return 1;
    }
    printf("fixture: %d users (in %d groups), %d workspaces, %d bindings in %s\n", f.users,
           NTEAMS, f.workspaces, f.bindings, dir);
    if (fixture_present(s, &f)) {
        printf("  already present at revision %" PRIu64 "; used as is\n", store_revision(s));
    } else {
        double t0 = now_s();
        write_fixture(s, &f);
        double el = now_s() - t0;
        /* Drop the creates' history, as the compactor of a server that has
         * held these objects for a while would have. */
        if (store_compact(s, store_revision(s), &err)) {
            fprintf(stderr, "bench_authz: compact: %s\n", err.message);
            return 1;
        }
        printf("  in %.1f s (%.0f objects/s, no fsync), revision %" PRIu64 "\n", el,
               (double)store_revision(s) / el, store_revision(s));
    }
    int expect[3] = {0, 0, 0};
    for (size_t i = 0; i < nmix; i++)
        expect[mix[i].expect]++;
    printf("request mix: %zu distinct requests, by construction %d allowed, %d no opinion, "
           "%d denied\n", nmix, expect[AUTHZ_ALLOW], expect[AUTHZ_NO_OPINION], expect[AUTHZ_DENY]);
    if (req_file) {
        FILE *fp = fopen(req_file, "w");
        if (!fp) {
            perror(req_file);
            return 1;
        }
        for (size_t i = 0; i < nmix; i++)
            fprintf(fp, "%s\n", bodies[i]);
        fclose(fp);
        printf("  SubjectAccessReview bodies written to %s\n", req_file);
    }
    if (load_only) {
        printf("AUTHZ_MIX allowed=%d noopinion=%d denied=%d total=%zu\n", expect[AUTHZ_ALLOW],
               expect[AUTHZ_NO_OPINION], expect[AUTHZ_DENY], nmix);
        store_close(s);
        for (size_t i = 0; i < nmix; i++)
            free(bodies[i]);
        free(bodies);
        free(mix);
        fixture_free(&f);
        return 0;
    }

    /* The index: build time and memory. The process already holds the
     * fixture plan, the request mix and the open store; what authz_new
     * adds is the index (plus heap the JSON decoding left behind). */
    mem_kb_t m0 = read_mem();
    size_t h0 = heap_in_use();
    authz_t *a;
    double t0 = now_s();
    if (authz_new(s, CLUSTER, &a, &err)) {
        fprintf(stderr, "bench_authz: authz_new: %s\n", err.message);
        return 1;
    }
    double build = now_s() - t0;
    mem_kb_t m1 = read_mem();
    size_t h1 = heap_in_use();
    printf("index: built in %.2f s at revision %" PRIu64 "\n", build, authz_revision(a));
    printf("  process memory before authz_new: VmRSS %.1f MB, RssAnon %.1f MB\n", m0.rss / 1024.0,
           m0.anon / 1024.0);
    printf("  process memory after authz_new:  VmRSS %.1f MB, RssAnon %.1f MB (RssFile %.1f MB: "
           "LMDB pages read); index about %.1f MB anonymous\n",
           m1.rss / 1024.0, m1.anon / 1024.0, m1.file / 1024.0, (m1.anon - m0.anon) / 1024.0);
    /* The whole index (templates, roles, workspaces and node groups too)
     * over the bindings: an upper bound on what one binding costs. */
    printf("  heap in use by the index: %.1f MB, %.0f bytes per IAMRoleBinding (mallinfo2)\n",
           (double)(h1 - h0) / 1048576.0, (double)(h1 - h0) / f.bindings);

    /* Every request once, single thread: the decision must be what the
     * fixture implies; the reason says at which scope an allow came from.
     * Also warms caches for the timed runs. */
    int got[3] = {0, 0, 0}, wrong = 0;
    int at_level[8] = {0};
    static const char *const at_names[] = {"Resource", "Namespace", "Workspace", "NodeGroup",
                                           "Node", "Cluster", "Platform", "?"};
    {
        authz_user_t *u = xcalloc(1, sizeof *u);
        for (size_t i = 0; i < nmix; i++) {
            authz_attrs_t at;
            char reason[1024];
            user_of(&mix[i], u);
            attrs_of(&mix[i], &at);
            authz_decision_t d = authz_authorize(a, u, &at, reason, sizeof reason);
            got[d]++;
            if (d != mix[i].expect && ++wrong <= 5)
                printf("  UNEXPECTED (%s): got %d, expected %d: %s\n", cat_names[mix[i].cat], d,
                       mix[i].expect, reason);
            if (d == AUTHZ_ALLOW) {
                const char *p = strstr(reason, ") at ");
                int l = 7;
                for (int k = 0; p && k < 7; k++) {
                    size_t len = strlen(at_names[k]);
                    if (!strncmp(p + 5, at_names[k], len) && (p[5 + len] == ' ' || !p[5 + len]))
                        l = k;
                }
                at_level[l]++;
            }
        }
        free(u);
    }
    printf("decisions of the mix: %d allowed, %d no opinion, %d denied; %d differ from the "
           "fixture's expectation\n", got[AUTHZ_ALLOW], got[AUTHZ_NO_OPINION], got[AUTHZ_DENY],
           wrong);
    printf("  allows by scope:");
    for (int k = 0; k < 8; k++)
        if (at_level[k])
            printf(" %s %d", at_names[k], at_level[k]);
    printf("\n");

    /* The timed runs. */
    printf("timed, %d threads (mix cycled):\n", NTHREADS);
    figures_t ref = measure(a, mix, bodies, nmix, M_JSON, REVIEWS);
    figures_t dec = measure(a, mix, bodies, nmix, M_DECIDE, DECISIONS);
    figures_t web = measure(a, mix, bodies, nmix, M_WEBHOOK, REVIEWS);
    print_fig("reference: JSON decode+encode", &ref);
    print_fig("authz_authorize", &dec);
    print_fig("webhook in-process (JSON+decide)", &web);
    printf("  authz_authorize by kind of request (p50 / p99, us):\n");
    for (int c = 0; c < NCATS; c++)
        printf("    %-24s %6.1f / %6.1f\n", cat_names[c], dec.cat_p50[c] * 1e6,
               dec.cat_p99[c] * 1e6);
    if (dec.failures || web.failures || ref.failures)
        printf("  UNEXPECTED: %ld decisions differed, %ld reviews failed, %ld bodies failed\n",
               dec.failures, web.failures, ref.failures);
    mem_kb_t m2 = read_mem();
    printf("  decision p50 / JSON round trip p50: %.2f; decisions/s / JSON round trips/s: %.2f\n",
           dec.p50 / ref.p50, dec.rate / ref.rate);
    printf("  p99 %.3f ms vs target < 1 ms: %s\n", dec.p99 * 1e3, dec.p99 < 1e-3 ? "yes" : "NO");
    printf("  process memory at the end: VmRSS %.1f MB, RssAnon %.1f MB\n", m2.rss / 1024.0,
           m2.anon / 1024.0);
    printf("AUTHZ_RESULT build_s=%.3f rss_mb=%.1f anon_mb=%.1f index_mb=%.1f heap_b_per_binding=%.0f dps=%.0f "
           "p50us=%.1f p99us=%.1f p999us=%.1f maxus=%.1f json_p50us=%.1f json_rate=%.0f "
           "web_p50us=%.1f web_p99us=%.1f web_rate=%.0f wrong=%d allowed=%d noopinion=%d denied=%d\n",
           build, m1.rss / 1024.0, m1.anon / 1024.0, (m1.anon - m0.anon) / 1024.0,
           (double)(h1 - h0) / f.bindings, dec.rate,
           dec.p50 * 1e6, dec.p99 * 1e6, dec.p999 * 1e6, dec.max * 1e6, ref.p50 * 1e6, ref.rate,
           web.p50 * 1e6, web.p99 * 1e6, web.rate, wrong + (int)dec.failures, got[AUTHZ_ALLOW],
           got[AUTHZ_NO_OPINION], got[AUTHZ_DENY]);

    authz_free(a);
    store_close(s);
    for (size_t i = 0; i < nmix; i++)
        free(bodies[i]);
    free(bodies);
    free(mix);
    fixture_free(&f);
    return 0;
}
