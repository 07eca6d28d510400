/*
 * The authorizer's index of IAM and scope objects, built from one storage
 * snapshot and then kept current by a follower thread that applies every
 * watch event under the write lock.
 *
 * Derived state is updated with each change: an IAMRole's aggregated
 * rules are recomputed whenever it or any RoleTemplate changes (never
 * append-only), the subject map whenever a binding changes, and the
 * namespace -> Workspace and node -> NodeGroup maps whenever a Workspace or
 * NodeGroup changes. If the follower falls behind or its history is
 * compacted, it rebuilds everything from a fresh snapshot.
 *
 * A change is applied whole or not at all. Building an object or filing
 * it can fail (memory runs out); reading such a failure as a deletion, or
 * keeping half of a role's rules, would let a deny rule vanish without a
 * trace. So the new version of an object is built and filed before the
 * old one is taken out, and whatever a failure leaves half done is undone
 * with steps that cannot fail: the object keeps its last good state.
 * The failure is counted (authz_index_errors), the follower stops applying
 * events (the index no longer matches storage, so its revision stays
 * where it was and authz_sync waits), and it rebuilds the whole index
 * from a snapshot, retrying with backoff. A rebuild is made beside the
 * index in use and swapped in only when complete: decisions go on with
 * the last good state until then. Text that does not decode is not a
 * failure of the index: it is ignored, as it always was.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/json/jtok.h"
#include "../lib/mem.h"
#include "../apimachinery/keys.h"
#include "../apimachinery/selector.h"
#include "../lib/log.h"
#include "authz_internal.h"

#define P_TEMPLATES KEYS_PREFIX("iam.theriseunion.io", "roletemplates")
#define P_ROLES KEYS_PREFIX("iam.theriseunion.io", "iamroles")
#define P_BINDINGS KEYS_PREFIX("iam.theriseunion.io", "iamrolebindings")
#define P_WORKSPACES KEYS_PREFIX("scope.theriseunion.io", "workspaces")
#define P_NODEGROUPS KEYS_PREFIX("scope.theriseunion.io", "nodegroups")

const char *const authz__level_names[AUTHZ__LEVELS] = {
    "Platform", "Cluster", "Workspace", "NodeGroup", "Namespace", "Node", "Resource",
};

int authz__level_parse(const char *s)
{
    for (int i = 0; s && i < AUTHZ__LEVELS; i++)
        if (!strcmp(s, authz__level_names[i]))
            return i;
    return -1;
}

static const char *sv(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static char *dup_or_empty(const char *s) { return mem_strdup(s ? s : ""); }

/* ---- object lifetimes --------------------------------------------------------- */

static void template_free(void *p)
{
    authz__template_t *t = p;
    if (!t)
        return;
    mem_free(t->name);
    json_decref(t->labels);
    authz__rules_free(&t->rules);
    authz__rules_free(&t->deny);
    authz__strs_free(&t->ui);
    mem_free(t);
}

static void role_free(void *p)
{
    authz__role_t *r = p;
    if (!r)
        return;
    mem_free(r->name);
    authz__strs_free(&r->refs);
    json_decref(r->selector);
    authz__rules_free(&r->own);
    authz__rules_free(&r->own_deny);
    authz__strs_free(&r->own_ui);
    authz__rules_free(&r->rules);
    authz__rules_free(&r->deny);
    authz__strs_free(&r->ui);
    mem_free(r);
}

/* One block (authz__binding_t). */
static void binding_free(void *p) { mem_free(p); }

static void workspace_free(void *p)
{
    authz__workspace_t *w = p;
    if (!w)
        return;
    for (size_t i = 0; i < w->nns; i++) {
        mem_free(w->ns_cluster[i]);
        mem_free(w->ns_name[i]);
    }
    mem_free(w->ns_cluster);
    mem_free(w->ns_name);
    mem_free(w->name);
    mem_free(w);
}

static void nodegroup_free(void *p)
{
    authz__nodegroup_t *g = p;
    if (!g)
        return;
    mem_free(g->name);
    mem_free(g->cluster);
    authz__strs_free(&g->nodes);
    mem_free(g);
}

/* ---- parsing -------------------------------------------------------------------- */

/*
 * What the index reads of a stored object: metadata.name, metadata.labels
 * (RoleTemplates) and spec, each a new reference or NULL when absent.
 *
 * A stored object is ~1.7 KB, mostly metadata.managedFields and
 * annotations the index never reads, so the follower does not decode it:
 * jtok lays the text out as tokens (checking all of it as jansson would)
 * and only these members are built into values, the same values
 * json_loadb of the whole text gives (a repeated key resolves to its last
 * occurrence in both). Text jtok refuses or declines, or that is not an
 * object, is decoded whole with jansson, as it always was, so whatever
 * jansson accepts is read the same way and whatever it refuses is still
 * ignored.
 */
typedef struct parts {
    json_t *name, *labels, *spec;
} parts_t;

static void parts_free(parts_t *o)
{
    json_decref(o->name);
    json_decref(o->labels);
    json_decref(o->spec);
    *o = (parts_t){NULL, NULL, NULL};
}

#define PARTS_TOKENS 512         /* a stored object's tokens, on the stack */

/* 0; ERR_NOMEM; ERR_BAD_REQUEST when the text is not a well-formed object
 * or jtok declines it (the caller decodes it whole). */
static int parts_scan(const char *text, size_t len, int labels, parts_t *o)
{
    jtok_t stack[PARTS_TOKENS], *t = stack;
    int n = jtok_parse(text, len, t, PARTS_TOKENS), rc = 0;
    if (n < 0 && len < INT32_MAX / 2) {
        /* More tokens than the stack holds: a token takes two bytes at least. */
        int max = (int)(len / 2 + 2);
        t = mem_alloc((size_t)max * sizeof *t);
        if (!t)
            return ERR_NOMEM;
        n = jtok_parse(text, len, t, max);
    }
    if (n <= 0 || t[0].type != JTOK_OBJECT) {
        rc = ERR_BAD_REQUEST;
        goto out;
    }
    /* metadata that is not an object has no name, as json_object_get says */
    int md = jtok_get(text, t, 0, "metadata"), sp = jtok_get(text, t, 0, "spec");
    int nm = jtok_get(text, t, md, "name"), lb = labels ? jtok_get(text, t, md, "labels") : -1;
    o->name = jtok_value(text, t, nm);
    o->labels = jtok_value(text, t, lb);
    o->spec = jtok_value(text, t, sp);
    if ((nm >= 0 && !o->name) || (lb >= 0 && !o->labels) || (sp >= 0 && !o->spec)) {
        parts_free(o);
        rc = ERR_NOMEM;
    }
out:
    if (t != stack)
        mem_free(t);
    return rc;
}

/* The whole text, with jansson. 0, ERR_BAD_REQUEST when it does not
 * decode, or ERR_NOMEM when memory may have run out: jansson's decoder
 * reports that as a syntax error, so the allocator's count of failures
 * tells (another thread's failure meanwhile makes a text that does not
 * decode read as ERR_NOMEM: a needless rebuild, never a lost change). */
static int parts_decode(const char *text, size_t len, parts_t *o)
{
    unsigned long failures = mem_failures();
    json_t *j = json_loadb(text, len, 0, NULL);
    if (!j)
        return mem_failures() != failures ? ERR_NOMEM : ERR_BAD_REQUEST;
    const json_t *md = json_object_get(j, "metadata");
    o->name = json_incref(json_object_get(md, "name"));
    o->labels = json_incref(json_object_get(md, "labels"));
    o->spec = json_incref(json_object_get(j, "spec"));
    json_decref(j);
    return 0;
}

/* The levels spec.scopes lists, a bit each; names that are no level
 * (validation refuses them) add nothing. */
static unsigned scopes_parse(const json_t *arr)
{
    unsigned m = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        int l = authz__level_parse(json_string_value(json_array_get(arr, i)));
        if (l >= 0)
            m |= 1u << l;
    }
    /* Listed levels that are all unknown still restrict: such a template is
     * usable nowhere, never everywhere. */
    if (!m && json_array_size(arr))
        m = 1u << AUTHZ__LEVELS;
    return m;
}

static authz__template_t *template_parse(const parts_t *o)
{
    authz__template_t *t = mem_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    const json_t *spec = o->spec;
    t->name = dup_or_empty(json_string_value(o->name));
    t->labels = json_incref(o->labels);
    t->scopes = scopes_parse(json_object_get(spec, "scopes"));
    if (!t->name || authz__rules_parse(json_object_get(spec, "rules"), &t->rules) ||
        authz__rules_parse(json_object_get(spec, "denyRules"), &t->deny) ||
        authz__strs_parse(json_object_get(spec, "uiPermissions"), &t->ui)) {
        template_free(t);
        return NULL;
    }
    return t;
}

static authz__role_t *role_parse(const parts_t *o)
{
    authz__role_t *r = mem_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    const json_t *spec = o->spec;
    r->name = dup_or_empty(json_string_value(o->name));
    r->scope = authz__level_parse(json_string_value(json_object_get(spec, "scope")));
    const json_t *sel = json_object_get(spec, "templateSelector");
    r->selector = json_is_object(sel) ? json_incref((json_t *)sel) : NULL;
    if (!r->name || authz__strs_parse(json_object_get(spec, "templateRefs"), &r->refs) ||
        authz__rules_parse(json_object_get(spec, "rules"), &r->own) ||
        authz__rules_parse(json_object_get(spec, "denyRules"), &r->own_deny) ||
        authz__strs_parse(json_object_get(spec, "uiPermissions"), &r->own_ui)) {
        role_free(r);
        return NULL;
    }
    return r;
}

authz__role_t *authz__role_from_spec(const char *name, const json_t *spec)
{
    parts_t o = {json_string(name ? name : ""), NULL, (json_t *)spec};
    authz__role_t *r = o.name ? role_parse(&o) : NULL;
    json_decref(o.name);
    return r;
}

void authz__role_free(authz__role_t *r) { role_free(r); }

authz__template_t *authz__template_from(const char *name, const json_t *labels,
                                        const json_t *spec)
{
    parts_t o = {json_string(name ? name : ""), (json_t *)labels, (json_t *)spec};
    authz__template_t *t = o.name ? template_parse(&o) : NULL;
    json_decref(o.name);
    return t;
}

void authz__template_free(authz__template_t *t) { template_free(t); }

static int subject_kind(const json_t *s)
{
    const char *kind = sv(s, "kind");
    return !kind ? 0 : !strcmp(kind, "User") ? AUTHZ__USER
         : !strcmp(kind, "Group") ? AUTHZ__GROUP
         : !strcmp(kind, "ServiceAccount") ? AUTHZ__SA : 0;
}

/* Bytes a string takes in a binding's block (empty ones take none). */
static size_t text_size(const char *s) { return s && *s ? strlen(s) + 1 : 0; }

/* Copies s to *p (advancing it), or returns the shared "" for an empty s. */
static const char *text_put(char **p, const char *s)
{
    if (!s || !*s)
        return "";
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

/* key: the name in the object's storage key. */
static authz__binding_t *binding_parse(const authz_t *a, const char *key, const parts_t *o)
{
    const json_t *spec = o->spec;
    const json_t *scope = json_object_get(spec, "scope");
    const json_t *subjects = json_object_get(spec, "subjects");
    int level = authz__level_parse(sv(scope, "level"));
    const char *cluster = sv(scope, "cluster");
    const char *name = json_string_value(o->name);
    const char *role = sv(json_object_get(spec, "roleRef"), "name");
    cluster = cluster && *cluster ? cluster : a->cluster;
    const char *scope_name = sv(scope, "name"), *scope_ns = sv(scope, "namespace");
    const char *scope_group = sv(scope, "group"), *scope_resource = sv(scope, "resource");
    int own_key = strcmp(key, name ? name : "") != 0;
    /* First the size of the block, then the block. */
    size_t nsub = 0, bytes = text_size(name) + (own_key ? text_size(key) : 0) +
                             text_size(role) + text_size(cluster) + text_size(scope_name) +
                             text_size(scope_ns) + text_size(scope_group) +
                             text_size(scope_resource);
    size_t i;
    const json_t *s;
    json_array_foreach(subjects, i, s) {
        int k = subject_kind(s);
        if (!k)
            continue;
        nsub++;
        bytes += text_size(sv(s, "name")) + (k == AUTHZ__SA ? text_size(sv(s, "namespace")) : 0);
    }
    authz__binding_t *b = mem_alloc(sizeof *b + nsub * sizeof b->subjects[0] + bytes);
    if (!b)
        return NULL;
    char *p = (char *)&b->subjects[nsub];
    b->name = text_put(&p, name);
    b->key = own_key ? text_put(&p, key) : b->name;
    b->role = text_put(&p, role);
    b->cluster = text_put(&p, cluster);
    b->scope_name = text_put(&p, scope_name);
    b->scope_ns = text_put(&p, scope_ns);
    b->scope_group = text_put(&p, scope_group);
    b->scope_resource = text_put(&p, scope_resource);
    /* An unknown level can never be placed: such a binding grants nothing
     * (validation rejects it; stored data may predate that). */
    b->level = level < 0 ? AUTHZ__LEVELS : (authz__level_t)level;
    b->nsubjects = 0;
    json_array_foreach(subjects, i, s) {
        int k = subject_kind(s);
        if (!k)
            continue;
        authz__subject_t *d = &b->subjects[b->nsubjects++];
        d->kind = k;
        d->name = text_put(&p, sv(s, "name"));
        d->namespace_ = k == AUTHZ__SA ? text_put(&p, sv(s, "namespace")) : "";
    }
    return b;
}

static authz__workspace_t *workspace_parse(const authz_t *a, const parts_t *o)
{
    authz__workspace_t *w = mem_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    const json_t *nss = json_object_get(o->spec, "namespaces");
    size_t n = json_array_size(nss);
    w->name = dup_or_empty(json_string_value(o->name));
    w->ns_cluster = mem_calloc(n + 1, sizeof *w->ns_cluster);
    w->ns_name = mem_calloc(n + 1, sizeof *w->ns_name);
    if (!w->name || !w->ns_cluster || !w->ns_name) {
        workspace_free(w);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(nss, i);
        const char *c = sv(e, "cluster");
        w->ns_cluster[w->nns] = mem_strdup(c && *c ? c : a->cluster);
        w->ns_name[w->nns] = dup_or_empty(sv(e, "name"));
        w->nns++;
        if (!w->ns_cluster[w->nns - 1] || !w->ns_name[w->nns - 1]) {
            workspace_free(w);
            return NULL;
        }
    }
    return w;
}

static authz__nodegroup_t *nodegroup_parse(const authz_t *a, const parts_t *o)
{
    authz__nodegroup_t *g = mem_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    const json_t *spec = o->spec;
    const char *c = sv(spec, "cluster");
    g->name = dup_or_empty(json_string_value(o->name));
    g->cluster = mem_strdup(c && *c ? c : a->cluster);
    if (!g->name || !g->cluster || authz__strs_parse(json_object_get(spec, "nodes"), &g->nodes)) {
        nodegroup_free(g);
        return NULL;
    }
    return g;
}

/* ---- derived maps ------------------------------------------------------------ */

size_t authz__join(char *buf, size_t n, const char *const *parts, size_t count)
{
    size_t at = 0;
    for (size_t i = 0; i < count && at + 1 < n; i++) {
        const char *p = parts[i] ? parts[i] : "(null)";
        size_t len = strlen(p);
        if (len > n - 1 - at)
            len = n - 1 - at;
        memcpy(buf + at, p, len);
        at += len;
    }
    if (n)
        buf[at] = '\0';
    return at;
}

static void subject_key(const authz__subject_t *s, char *buf, size_t n)
{
    if (s->kind == AUTHZ__GROUP)
        AUTHZ__JOIN(buf, n, "g:", s->name);
    else if (s->kind == AUTHZ__SA)
        AUTHZ__JOIN(buf, n, "u:system:serviceaccount:", s->namespace_, ":", s->name);
    else
        AUTHZ__JOIN(buf, n, "u:", s->name);
}

/* "<subject>\x1f<level>\x1f<cluster>\x1f<name>[\x1f<ns>\x1f<group>\x1f<resource>]":
 * a scope's identity as binding_at compares it (Platform has no cluster). */
static void scoped_key(const char *subject, authz__level_t level, const char *cluster,
                       const char *name, const char *ns, const char *group,
                       const char *resource, char *buf, size_t n)
{
    static const char *const digits[AUTHZ__LEVELS] = {"\x1f" "0", "\x1f" "1", "\x1f" "2", "\x1f" "3",
                                                      "\x1f" "4", "\x1f" "5", "\x1f" "6"};
    const char *lv = level < AUTHZ__LEVELS ? digits[level] : "\x1f?";
    const char *const parts[] = {subject, lv, "\x1f", cluster, "\x1f", name, "\x1f", ns,
                                 "\x1f", group, "\x1f", resource};
    size_t count = level == AUTHZ__PLATFORM ? 2 : level == AUTHZ__CLUSTER ? 4
                 : level == AUTHZ__RESOURCE ? 12 : 6;
    authz__join(buf, n, parts, count);
}

/* Takes binding b out from under its first n subjects. Cannot fail. */
static void binding_unindex(authz_t *a, authz__binding_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char key[512], skey[1600];
        subject_key(&b->subjects[i], key, sizeof key);
        authz__multi_remove(&a->by_subject, key, b);
        if (b->level >= AUTHZ__LEVELS)
            continue;  /* placed nowhere */
        scoped_key(key, b->level, b->cluster, b->scope_name, b->scope_ns, b->scope_group,
                   b->scope_resource, skey, sizeof skey);
        authz__multi_remove(&a->by_scope, skey, b);
    }
}

/* Files binding b under each of its subjects, and subject and scope. 0, or
 * ERR_NOMEM with nothing filed: a binding missing from one of its
 * subjects' buckets would never deny them. */
static int binding_index(authz_t *a, authz__binding_t *b)
{
    for (size_t i = 0; i < b->nsubjects; i++) {
        char key[512], skey[1600];
        subject_key(&b->subjects[i], key, sizeof key);
        if (authz__multi_add(&a->by_subject, key, b)) {
            binding_unindex(a, b, i);
            return ERR_NOMEM;
        }
        if (b->level >= AUTHZ__LEVELS)
            continue;  /* placed nowhere */
        scoped_key(key, b->level, b->cluster, b->scope_name, b->scope_ns, b->scope_group,
                   b->scope_resource, skey, sizeof skey);
        if (authz__multi_add(&a->by_scope, skey, b)) {
            authz__multi_remove(&a->by_subject, key, b);
            binding_unindex(a, b, i);
            return ERR_NOMEM;
        }
    }
    return 0;
}

const authz__bucket_t *authz__bindings_at(const authz_t *a, const char *subject,
                                          const authz__scope_t *s)
{
    char skey[1600];
    scoped_key(subject, s->level, s->cluster, s->name, s->namespace_, s->group, s->resource,
               skey, sizeof skey);
    return authz__multi_get(&a->by_scope, skey);
}

/* Takes w out from under its first n namespaces. Cannot fail. */
static void workspace_unindex(authz_t *a, authz__workspace_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char key[600];
        AUTHZ__JOIN(key, sizeof key, w->ns_cluster[i], "/", w->ns_name[i]);
        authz__multi_remove(&a->ns_ws, key, w);
    }
}

/* Files w under each of its namespaces: 0, or ERR_NOMEM with nothing
 * filed (a namespace missing it would skip the Workspace's deny rules). */
static int workspace_index(authz_t *a, authz__workspace_t *w)
{
    for (size_t i = 0; i < w->nns; i++) {
        char key[600];
        AUTHZ__JOIN(key, sizeof key, w->ns_cluster[i], "/", w->ns_name[i]);
        if (authz__multi_add(&a->ns_ws, key, w)) {
            workspace_unindex(a, w, i);
            return ERR_NOMEM;
        }
    }
    return 0;
}

/* The same for a NodeGroup and its nodes. */
static void nodegroup_unindex(authz_t *a, authz__nodegroup_t *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char key[600];
        AUTHZ__JOIN(key, sizeof key, g->cluster, "/", g->nodes.v[i]);
        authz__multi_remove(&a->node_ng, key, g);
    }
}

static int nodegroup_index(authz_t *a, authz__nodegroup_t *g)
{
    for (size_t i = 0; i < g->nodes.n; i++) {
        char key[600];
        AUTHZ__JOIN(key, sizeof key, g->cluster, "/", g->nodes.v[i]);
        if (authz__multi_add(&a->node_ng, key, g)) {
            nodegroup_unindex(a, g, i);
            return ERR_NOMEM;
        }
    }
    return 0;
}

/* ---- role aggregation ---------------------------------------------------------- */

/* r's aggregated rules become g's (g is left empty). */
static void agg_move(authz__role_t *r, authz__agg_t *g)
{
    authz__rules_free(&r->rules);
    authz__rules_free(&r->deny);
    authz__strs_free(&r->ui);
    r->rules = g->rules;
    r->deny = g->deny;
    r->ui = g->ui;
    g->rules = (authz__rules_t){0, NULL};
    g->deny = (authz__rules_t){0, NULL};
    g->ui = (authz__strs_t){0, NULL};
    authz__agg_free(g);
}

int authz__role_aggregate(const authz_t *a, authz__role_t *r)
{
    const authz__template_t **ts;
    size_t n;
    authz__agg_t g;
    memset(&g, 0, sizeof g);
    int rc = authz__templates_sorted(a, &ts, &n);
    if (!rc)
        rc = authz__aggregate(r, ts, n, &g);
    if (!rc)
        agg_move(r, &g);
    mem_free(ts);
    return rc;
}

/* Every role aggregated again (a template changed): all of them, or on
 * ERR_NOMEM none, each role left as it was. */
static int roles_reaggregate(authz_t *a)
{
    const authz__template_t **ts;
    size_t n;
    if (authz__templates_sorted(a, &ts, &n))
        return ERR_NOMEM;
    authz__agg_t *g = mem_calloc(a->roles.cap + 1, sizeof *g);  /* by slot */
    int rc = g ? 0 : ERR_NOMEM;
    AUTHZ_MAP_EACH(&a->roles, i) {
        if (rc)
            break;
        rc = authz__aggregate(a->roles.e[i].val, ts, n, &g[i]);
    }
    AUTHZ_MAP_EACH(&a->roles, i) {
        if (!g)
            break;
        if (rc)
            authz__agg_free(&g[i]);
        else
            agg_move(a->roles.e[i].val, &g[i]);
    }
    mem_free(g);
    mem_free(ts);
    return rc;
}

/* ---- applying objects ----------------------------------------------------------- */

typedef enum { K_NONE, K_TEMPLATE, K_ROLE, K_BINDING, K_WORKSPACE, K_NODEGROUP } kind_t;

static kind_t kind_of(const char *key, const char **name)
{
    static const struct { const char *prefix; kind_t kind; } table[] = {
        {P_TEMPLATES, K_TEMPLATE}, {P_ROLES, K_ROLE}, {P_BINDINGS, K_BINDING},
        {P_WORKSPACES, K_WORKSPACE}, {P_NODEGROUPS, K_NODEGROUP}, {NULL, K_NONE},
    };
    for (size_t i = 0; table[i].prefix; i++) {
        size_t n = strlen(table[i].prefix);
        if (!strncmp(key, table[i].prefix, n)) {
            *name = key + n;
            return table[i].kind;
        }
    }
    return K_NONE;
}

/* Stands for a RoleTemplate being deleted while the roles are aggregated
 * again: it grants and denies nothing. */
static authz__template_t template_gone = {.name = ""};

static int apply_template(authz_t *a, const char *name, const parts_t *o)
{
    authz__template_t *old = authz__map_get(&a->templates, name), *t = NULL;
    if (o && !(t = template_parse(o)))
        return ERR_NOMEM;
    if (!t && !old)
        return 0;
    /* The new version (or, for a deletion, one that grants nothing) takes
     * the old one's place while every role is aggregated again. */
    if (old)
        authz__map_replace(&a->templates, name, t ? t : &template_gone);
    else if (authz__map_put(&a->templates, name, t, NULL)) {
        template_free(t);
        return ERR_NOMEM;
    }
    if (roles_reaggregate(a)) {
        /* Undone with steps that cannot fail: the roles are as they were. */
        if (old)
            authz__map_replace(&a->templates, name, old);
        else
            authz__map_del(&a->templates, name);
        template_free(t);
        return ERR_NOMEM;
    }
    if (!t)
        authz__map_del(&a->templates, name);
    template_free(old);
    return 0;
}

static int apply_role(authz_t *a, const char *name, const parts_t *o)
{
    if (!o) {
        role_free(authz__map_del(&a->roles, name));
        return 0;
    }
    authz__role_t *r = role_parse(o);
    void *old = NULL;
    if (!r || authz__role_aggregate(a, r) || authz__map_put(&a->roles, name, r, &old)) {
        role_free(r);  /* the old version stays */
        return ERR_NOMEM;
    }
    role_free(old);
    return 0;
}

static int apply_binding(authz_t *a, const char *name, const parts_t *o)
{
    authz__binding_t *old = authz__map_get(&a->bindings, name), *b = NULL;
    if (o && !(b = binding_parse(a, name, o)))
        return ERR_NOMEM;
    /* The new version is filed, then the old one taken out: a failure
     * leaves the old one filed. The map borrows the binding's copy of the
     * name. */
    if (b && binding_index(a, b)) {
        binding_free(b);
        return ERR_NOMEM;
    }
    if (b && authz__map_put(&a->bindings, b->key, b, NULL)) {
        binding_unindex(a, b, b->nsubjects);
        binding_free(b);
        return ERR_NOMEM;
    }
    if (old) {
        if (!b)
            authz__map_del(&a->bindings, name);
        binding_unindex(a, old, old->nsubjects);
        binding_free(old);
    }
    return 0;
}

static int apply_workspace(authz_t *a, const char *name, const parts_t *o)
{
    authz__workspace_t *old = authz__map_get(&a->workspaces, name), *w = NULL;
    if (o && !(w = workspace_parse(a, o)))
        return ERR_NOMEM;
    if (w && workspace_index(a, w)) {
        workspace_free(w);
        return ERR_NOMEM;
    }
    if (w && authz__map_put(&a->workspaces, name, w, NULL)) {
        workspace_unindex(a, w, w->nns);
        workspace_free(w);
        return ERR_NOMEM;
    }
    if (old) {
        if (!w)
            authz__map_del(&a->workspaces, name);
        workspace_unindex(a, old, old->nns);
        workspace_free(old);
    }
    return 0;
}

static int apply_nodegroup(authz_t *a, const char *name, const parts_t *o)
{
    authz__nodegroup_t *old = authz__map_get(&a->nodegroups, name), *g = NULL;
    if (o && !(g = nodegroup_parse(a, o)))
        return ERR_NOMEM;
    if (g && nodegroup_index(a, g)) {
        nodegroup_free(g);
        return ERR_NOMEM;
    }
    if (g && authz__map_put(&a->nodegroups, name, g, NULL)) {
        nodegroup_unindex(a, g, g->nodes.n);
        nodegroup_free(g);
        return ERR_NOMEM;
    }
    if (old) {
        if (!g)
            authz__map_del(&a->nodegroups, name);
        nodegroup_unindex(a, old, old->nodes.n);
        nodegroup_free(old);
    }
    return 0;
}

/* Applies one object (value NULL: deleted). Caller holds the write lock
 * (or owns a, an index being built). 0, or ERR_NOMEM: the object could
 * not be built or filed, and the index holds it as it did before. Text
 * that does not decode is ignored (0): the previous version stays. */
static int apply(authz_t *a, const char *key, const char *value, size_t len)
{
    const char *name = NULL;
    kind_t k = kind_of(key, &name);
    if (k == K_NONE)
        return 0;
    parts_t parts = {NULL, NULL, NULL};
    const parts_t *o = value ? &parts : NULL;
    if (value) {
        int rc = parts_scan(value, len, k == K_TEMPLATE, &parts);
        if (rc == ERR_BAD_REQUEST || rc == ERR_INVALID)
            rc = parts_decode(value, len, &parts);
        if (rc == ERR_BAD_REQUEST) {
            log_error("authz: %s does not decode; ignored", key);
            return 0;
        }
        if (rc)
            return rc;
    }
    static int (*const apply_kind[])(authz_t *, const char *, const parts_t *) = {
        [K_TEMPLATE] = apply_template, [K_ROLE] = apply_role, [K_BINDING] = apply_binding,
        [K_WORKSPACE] = apply_workspace, [K_NODEGROUP] = apply_nodegroup,
    };
    int rc = apply_kind[k](a, name, o);
    parts_free(&parts);
    return rc;
}

/* ---- snapshot and follower --------------------------------------------------------- */

void authz__index_free(authz_t *a)
{
    /* A multi-map's keys go with its buckets, the bindings map's with the
     * bindings: borrowed keys are never freed on their own. */
    authz__map_free(&a->by_subject, authz__bucket_free);
    authz__map_free(&a->by_scope, authz__bucket_free);
    authz__map_free(&a->ns_ws, authz__bucket_free);
    authz__map_free(&a->node_ng, authz__bucket_free);
    authz__map_free(&a->templates, template_free);
    authz__map_free(&a->roles, role_free);
    authz__map_free(&a->bindings, binding_free);
    authz__map_free(&a->workspaces, workspace_free);
    authz__map_free(&a->nodegroups, nodegroup_free);
}

/* The index's maps of x and y trade places. */
static void index_swap(authz_t *x, authz_t *y)
{
    authz__map_t *const mx[] = {&x->templates, &x->roles, &x->workspaces, &x->nodegroups,
                                &x->bindings, &x->by_subject, &x->by_scope, &x->ns_ws,
                                &x->node_ng};
    authz__map_t *const my[] = {&y->templates, &y->roles, &y->workspaces, &y->nodegroups,
                                &y->bindings, &y->by_subject, &y->by_scope, &y->ns_ws,
                                &y->node_ng};
    for (size_t i = 0; i < sizeof mx / sizeof mx[0]; i++) {
        authz__map_t t = *mx[i];
        *mx[i] = *my[i];
        *my[i] = t;
    }
}

/* An empty index for the cluster of a (borrowed), to load a snapshot
 * into; NULL when out of memory. Release with authz__index_free and
 * mem_free. */
static authz_t *index_new(const authz_t *a)
{
    authz_t *n = mem_calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->store = a->store;
    n->cluster = a->cluster;
    n->bindings.flags = AUTHZ__MAP_BORROWED;
    n->by_subject.flags = AUTHZ__MAP_BORROWED;
    n->by_scope.flags = AUTHZ__MAP_BORROWED;
    n->ns_ws.flags = AUTHZ__MAP_BORROWED;
    n->node_ng.flags = AUTHZ__MAP_BORROWED;
    return n;
}

static int load_visit(void *arg, const store_kv_t *kv)
{
    authz_t *n = arg;
    char key[STORE_MAX_KEY + 1];
    snprintf(key, sizeof key, "%.*s", (int)kv->key_len, kv->key);
    int rc = apply(n, key, kv->value, kv->value_len);
    return rc ? rc : STORE_TAKE;
}

/* Replaces the index with a snapshot and opens a watcher after it.
 * Templates load before roles so aggregation sees them. The snapshot is
 * built beside the index in use, which decisions go on reading, and
 * swapped in when whole: on any failure the index stays as it was. */
static int load(authz_t *a, err_t *err)
{
    static const char *const prefixes[] = {P_TEMPLATES, P_ROLES, P_BINDINGS, P_WORKSPACES,
                                           P_NODEGROUPS, NULL};
    store_watcher_close(a->watcher);
    a->watcher = NULL;
    authz_t *n = index_new(a);
    if (!n)
        return err_set(err, ERR_NOMEM, "authz: no memory for a new index");
    uint64_t rev = 0;
    int rc = 0;
    for (size_t i = 0; prefixes[i] && !rc; i++) {
        store_list_opts_t o = {.prefix = prefixes[i], .rev = rev};
        store_list_result_t res;
        rc = store_list(a->store, &o, load_visit, n, &res, err);
        if (!rc) {
            rev = res.rev;
            store_list_result_free(&res);
        } else if (rc == ERR_NOMEM) {
            err_set(err, rc, "authz: out of memory building the index from %s", prefixes[i]);
        }
    }
    if (!rc) {
        pthread_rwlock_wrlock(&a->lock);
        index_swap(a, n);
        a->rev = rev;
        pthread_rwlock_unlock(&a->lock);
    }
    /* The old index (or the part of a new one built) goes, outside the lock. */
    authz__index_free(n);
    mem_free(n);
    if (rc)
        return rc;
    /* The scan read every IAM and scope object once; decisions never read
     * them from storage again. */
    store_release_pages(a->store);
    store_watch_opts_t wo = {.prefix = "/", .after_rev = rev, .queue = 65536};
    return store_watch(a->store, &wo, &a->watcher, err);
}

/* Sleeps ms milliseconds, or less when the follower is stopped. */
static void pause_ms(authz_t *a, unsigned ms)
{
    while (ms && !atomic_load(&a->stopping)) {
        unsigned step = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* The wait before rebuilding the index after a failure, doubled after
 * each failed rebuild. */
#define REBUILD_FIRST_MS 50
#define REBUILD_MAX_MS 5000

static void *follower(void *arg)
{
    authz_t *a = arg;
    int rebuild = 0;
    unsigned backoff = 0;
    while (!atomic_load(&a->stopping)) {
        if (rebuild) {
            pause_ms(a, backoff);
            if (atomic_load(&a->stopping))
                break;
            err_t lerr;
            err_clear(&lerr);
            if (!load(a, &lerr)) {
                rebuild = 0;
                continue;
            }
            atomic_fetch_add(&a->index_errors, 1);
            backoff = backoff ? backoff * 2 : REBUILD_FIRST_MS;
            if (backoff > REBUILD_MAX_MS)
                backoff = REBUILD_MAX_MS;
            log_error("authz: rebuild failed: %s; retrying in %u ms", lerr.message, backoff);
            continue;
        }
        const store_event_t *ev;
        err_t err;
        err_clear(&err);
        int rc = store_watcher_next(a->watcher, &ev, 200, &err);
        if (rc == ERR_TIMEOUT)
            continue;
        if (rc == ERR_CLOSED)
            break;
        if (rc) {
            /* Fell behind or lost history: start over from a snapshot. */
            log_warning("authz: %s; rebuilding the index", err.message);
            rebuild = 1;
            backoff = 0;
            continue;
        }
        pthread_rwlock_wrlock(&a->lock);
        rc = apply(a, ev->key, ev->value, ev->value_len);
        if (!rc)
            a->rev = ev->rev;
        pthread_rwlock_unlock(&a->lock);
        if (rc) {
            /* The object keeps its last good state; the events after it
             * are not applied on top of a state storage never had. */
            atomic_fetch_add(&a->index_errors, 1);
            log_error("authz: cannot apply %s at revision %llu (%s); it stays as it was until "
                      "the index is rebuilt from a snapshot", ev->key,
                      (unsigned long long)ev->rev, err_default_message(rc));
            store_watcher_close(a->watcher);
            a->watcher = NULL;
            rebuild = 1;
            backoff = REBUILD_FIRST_MS;
        }
        store_event_release(ev);
    }
    return NULL;
}

int authz__index_start(authz_t *a, err_t *err)
{
    a->bindings.flags = AUTHZ__MAP_BORROWED;
    a->by_subject.flags = AUTHZ__MAP_BORROWED;
    a->by_scope.flags = AUTHZ__MAP_BORROWED;
    a->ns_ws.flags = AUTHZ__MAP_BORROWED;
    a->node_ng.flags = AUTHZ__MAP_BORROWED;
    int rc = load(a, err);
    if (rc)
        return rc;
    if (pthread_create(&a->thread, NULL, follower, a))
        return err_set(err, ERR_INTERNAL, "authz: cannot start the index follower");
    a->running = 1;
    return 0;
}

void authz__index_stop(authz_t *a)
{
    atomic_store(&a->stopping, 1);
    if (a->running)
        pthread_join(a->thread, NULL);
    a->running = 0;
    store_watcher_close(a->watcher);
    a->watcher = NULL;
}

unsigned long authz_index_errors(const authz_t *a)
{
    return atomic_load(&a->index_errors);
}

/* ---- lookups ------------------------------------------------------------------- */

int authz__bindings_of(const authz_t *a, const char *user, const char *const *groups,
                       size_t ngroups, authz__ptrs_t *out)
{
    char key[300];
    for (size_t g = 0; g <= ngroups; g++) {
        if (g)
            AUTHZ__JOIN(key, sizeof key, "g:", groups[g - 1]);
        else
            AUTHZ__JOIN(key, sizeof key, "u:", user);
        const authz__bucket_t *l = authz__multi_get(&a->by_subject, key);
        void *const *v = l ? authz__bucket_items(l) : NULL;
        for (size_t i = 0; l && i < l->n; i++)
            if (authz__ptrs_add(out, v[i]))
                return ERR_NOMEM;
    }
    return 0;
}

int authz__binding_has_subject(const authz__binding_t *b, const char *user,
                               const char *const *groups, size_t ngroups)
{
    for (size_t i = 0; i < b->nsubjects; i++) {
        const authz__subject_t *s = &b->subjects[i];
        if (s->kind == AUTHZ__USER && !strcmp(s->name, user))
            return 1;
        if (s->kind == AUTHZ__SA) {
            char sa[400];
            AUTHZ__JOIN(sa, sizeof sa, "system:serviceaccount:", s->namespace_, ":", s->name);
            if (!strcmp(sa, user))
                return 1;
        }
        for (size_t g = 0; s->kind == AUTHZ__GROUP && g < ngroups; g++)
            if (!strcmp(s->name, groups[g]))
                return 1;
    }
    return 0;
}

void authz__binding_scope(const authz__binding_t *b, authz__scope_t *s)
{
    *s = (authz__scope_t){.level = b->level, .cluster = b->cluster, .name = b->scope_name,
                          .namespace_ = b->scope_ns, .group = b->scope_group,
                          .resource = b->scope_resource};
}

int authz__binding_at(const authz__binding_t *b, const authz__scope_t *s)
{
    if (b->level != s->level)
        return 0;
    if (s->level == AUTHZ__PLATFORM)
        return 1;
    /* Bindings whose scope names another cluster never apply. */
    if (strcmp(b->cluster, s->cluster))
        return 0;
    switch (s->level) {
    case AUTHZ__CLUSTER:
        return 1;
    case AUTHZ__RESOURCE:
        return !strcmp(b->scope_name, s->name) && !strcmp(b->scope_ns, s->namespace_) &&
               !strcmp(b->scope_group, s->group) && !strcmp(b->scope_resource, s->resource);
    default:
        return !strcmp(b->scope_name, s->name);
    }
}
