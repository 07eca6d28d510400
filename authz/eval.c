/*
 * How the scope chain is walked.
 *
 * A request is placed at the most specific scope it names, then looked up
 * upward:
 *   named namespaced object   Resource -> Namespace -> every Workspace
 *                             listing the namespace -> Cluster -> Platform
 *   namespaced collection     Namespace -> Workspaces -> Cluster -> Platform
 *   node N                    Node N -> every NodeGroup holding N -> Cluster
 *                             -> Platform
 *   list/watch of nodes with a scope.theriseunion.io/nodegroup=X selector
 *                             NodeGroup X -> Cluster -> Platform
 *   list/watch of namespaces with scope.theriseunion.io/workspace=X
 *                             Workspace X -> Cluster -> Platform
 *   a Workspace or NodeGroup object of this API
 *                             that Workspace/NodeGroup -> Cluster -> Platform
 *   a named IAMRoleBinding    the scope its stored spec names, upward
 *   a list/watch/deletecollection of IAMRoleBindings whose selector has
 *   scope.theriseunion.io/<level>=X
 *                             that scope, upward
 *   a create of an IAMRoleBinding (or an apply of one not stored yet)
 *                             allowed where the subject may create one at
 *                             some scope; admission checks its own scope
 *   anything else cluster-scoped, non-resource URLs
 *                             Cluster -> Platform
 * Workspace and NodeGroup are parallel views at the same level.
 *
 * The subject's candidate bindings come from the subject index (by user
 * name, service-account name and each group), so the cost is the chain
 * length times the subject's bindings, independent of how many bindings
 * exist in total. Every scope of the chain is visited: a deny rule
 * anywhere wins over any allow; otherwise the lowest scope with an allow
 * decides; nothing matching is no opinion, so kube-apiserver's next
 * authorizer (RBAC) can still decide.
 *
 * An error on the way (memory running out while the chain or a scope's
 * bindings are collected) could hide a deny, so it never allows: the
 * answer is no opinion with an evaluation error, as kube's authorizers
 * report one (a SubjectAccessReview's status.evaluationError).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/json/jenc.h"
#include "../lib/mem.h"
#include "authz_internal.h"

static void chain_init(authz__chain_t *c)
{
    c->n = 0;
    c->cap = AUTHZ__CHAIN_INLINE;
    c->truncated = 0;
    c->oom = 0;
    c->s = c->inline_s;
}

void authz__chain_free(authz__chain_t *c)
{
    if (c->s != c->inline_s)
        mem_free(c->s);
    c->s = c->inline_s;
}

static void push(authz__chain_t *c, authz__level_t level, const char *cluster, const char *name)
{
    int last_two = level == AUTHZ__CLUSTER || level == AUTHZ__PLATFORM;
    if (c->n >= AUTHZ__MAX_CHAIN - (last_two ? 0 : 2)) {
        c->truncated = 1;
        return;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap * 4 > AUTHZ__MAX_CHAIN ? AUTHZ__MAX_CHAIN : c->cap * 4;
        authz__scope_t *ns = mem_alloc(cap * sizeof *ns);
        if (!ns) {
            c->oom = 1;  /* decide answers no opinion, never allow */
            return;
        }
        memcpy(ns, c->s, c->n * sizeof *ns);
        authz__chain_free(c);
        c->s = ns;
        c->cap = cap;
    }
    c->s[c->n++] = (authz__scope_t){.level = level, .cluster = cluster, .name = name,
                                    .namespace_ = "", .group = "", .resource = ""};
}

static void push_list(authz__chain_t *c, const authz__map_t *m, const char *cluster, const char *name,
                      authz__level_t level)
{
    char key[600];
    AUTHZ__JOIN(key, sizeof key, cluster, "/", name);
    const authz__bucket_t *l = authz__multi_get(m, key);
    void *const *v = l ? authz__bucket_items(l) : NULL;
    for (size_t i = 0; l && i < l->n; i++) {
        /* Workspaces and NodeGroups both start with their name. */
        const char *const *owner_name = v[i];
        push(c, level, cluster, *owner_name);
    }
}

static int is(const char *a, const char *b) { return a && !strcmp(a, b); }
static int empty(const char *s) { return !s || !*s; }

void authz_attrs_scope_label(authz_attrs_t *at, const char *key, const char *value)
{
    static const struct { const char *key; size_t off; } keys[] = {
        {AUTHZ_LABEL_PREFIX "nodegroup", offsetof(authz_attrs_t, nodegroup)},
        {AUTHZ_LABEL_PREFIX "workspace", offsetof(authz_attrs_t, workspace)},
        {AUTHZ_LABEL_PREFIX "cluster", offsetof(authz_attrs_t, sel_cluster)},
        {AUTHZ_LABEL_PREFIX "namespace", offsetof(authz_attrs_t, sel_namespace)},
        {AUTHZ_LABEL_PREFIX "node", offsetof(authz_attrs_t, sel_node)},
    };
    for (size_t i = 0; key && i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(key, keys[i].key))
            *(const char **)((char *)at + keys[i].off) = value;
}

/* A request on IAMRoleBindings is placed where the binding acts. */
static int on_bindings(const authz_attrs_t *at)
{
    return at->resource_request && is(at->api_group, "iam.theriseunion.io") &&
           is(at->resource, "iamrolebindings");
}

/* The scope a list, watch or deletecollection of IAMRoleBindings names
 * through its scope labels, most specific first: 0 and *s, or -1 when it
 * names none (the request then stays at Cluster -> Platform). */
static int binding_list_scope(const authz_attrs_t *at, const char *cluster, authz__scope_t *s)
{
    static const struct { authz__level_t level; size_t off; } order[] = {
        {AUTHZ__NAMESPACE, offsetof(authz_attrs_t, sel_namespace)},
        {AUTHZ__NODE, offsetof(authz_attrs_t, sel_node)},
        {AUTHZ__WORKSPACE, offsetof(authz_attrs_t, workspace)},
        {AUTHZ__NODEGROUP, offsetof(authz_attrs_t, nodegroup)},
        {AUTHZ__CLUSTER, offsetof(authz_attrs_t, sel_cluster)},
    };
    if (!is(at->verb, "list") && !is(at->verb, "watch") && !is(at->verb, "deletecollection"))
        return -1;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *v = *(const char *const *)((const char *)at + order[i].off);
        if (empty(v))
            continue;
        *s = (authz__scope_t){.level = order[i].level,
                              .cluster = empty(at->sel_cluster) ? cluster : at->sel_cluster,
                              .name = order[i].level == AUTHZ__CLUSTER ? "" : v,
                              .namespace_ = "", .group = "", .resource = ""};
        return 0;
    }
    return -1;
}

/* The chain of a request, by the table at the top of this file. Strings
 * are borrowed from at and the index; valid under the read lock. */
static void chain_for_request(const authz_t *a, const authz_attrs_t *at, const char *cluster,
                              authz__chain_t *c)
{
    if (on_bindings(at)) {
        /* A named binding acts at the scope its stored spec names; a list
         * naming a scope by its labels is placed there. */
        authz__scope_t s;
        const authz__binding_t *b = empty(at->name) ? NULL : authz__map_get(&a->bindings, at->name);
        if (b && b->level < AUTHZ__LEVELS) {
            authz__binding_scope(b, &s);
            authz__chain_from_scope(a, &s, c);
            return;
        }
        if (empty(at->name) && binding_list_scope(at, cluster, &s) == 0) {
            authz__chain_from_scope(a, &s, c);
            return;
        }
    }
    chain_init(c);
    if (at->resource_request) {
        const char *group = at->api_group ? at->api_group : "";
        if (!empty(at->namespace_)) {
            if (!empty(at->name)) {
                push(c, AUTHZ__RESOURCE, cluster, at->name);
                c->s[c->n - 1].namespace_ = at->namespace_;
                c->s[c->n - 1].group = group;
                c->s[c->n - 1].resource = at->resource ? at->resource : "";
            }
            push(c, AUTHZ__NAMESPACE, cluster, at->namespace_);
            push_list(c, &a->ns_ws, cluster, at->namespace_, AUTHZ__WORKSPACE);
        } else if (is(at->resource, "nodes") && !*group) {
            if (!empty(at->name)) {
                push(c, AUTHZ__NODE, cluster, at->name);
                push_list(c, &a->node_ng, cluster, at->name, AUTHZ__NODEGROUP);
            } else if (!empty(at->nodegroup)) {
                push(c, AUTHZ__NODEGROUP, cluster, at->nodegroup);
            }
        } else if (is(at->resource, "namespaces") && !*group && !empty(at->workspace)) {
            push(c, AUTHZ__WORKSPACE, cluster, at->workspace);
        } else if (is(group, "scope.theriseunion.io") && !empty(at->name) &&
                   (is(at->resource, "workspaces") || is(at->resource, "nodegroups"))) {
            push(c, is(at->resource, "workspaces") ? AUTHZ__WORKSPACE : AUTHZ__NODEGROUP,
                 cluster, at->name);
        }
    }
    push(c, AUTHZ__CLUSTER, cluster, "");
    push(c, AUTHZ__PLATFORM, cluster, "");
}

/* The chain that starts at a given scope (PermissionReview). */
void authz__chain_from_scope(const authz_t *a, const authz__scope_t *from, authz__chain_t *c)
{
    chain_init(c);
    const char *cl = from->cluster;
    switch (from->level) {
    case AUTHZ__RESOURCE:
        c->s[c->n++] = *from;  /* the first of AUTHZ__CHAIN_INLINE slots */
        /* fall through */
    case AUTHZ__NAMESPACE: {
        const char *ns = from->level == AUTHZ__RESOURCE ? from->namespace_ : from->name;
        push(c, AUTHZ__NAMESPACE, cl, ns);
        push_list(c, &a->ns_ws, cl, ns, AUTHZ__WORKSPACE);
        break;
    }
    case AUTHZ__NODE:
        push(c, AUTHZ__NODE, cl, from->name);
        push_list(c, &a->node_ng, cl, from->name, AUTHZ__NODEGROUP);
        break;
    case AUTHZ__WORKSPACE:
    case AUTHZ__NODEGROUP:
        push(c, from->level, cl, from->name);
        break;
    default:
        break;
    }
    if (from->level != AUTHZ__PLATFORM)
        push(c, AUTHZ__CLUSTER, cl, "");
    push(c, AUTHZ__PLATFORM, cl, "");
}

static void scope_text(const authz__scope_t *s, char *buf, size_t n)
{
    switch (s->level) {
    case AUTHZ__PLATFORM:
        AUTHZ__JOIN(buf, n, "Platform");
        break;
    case AUTHZ__CLUSTER:
        AUTHZ__JOIN(buf, n, "Cluster ", s->cluster);
        break;
    case AUTHZ__RESOURCE:
        AUTHZ__JOIN(buf, n, "Resource ", s->resource, *s->group ? "." : "", s->group, " ",
                    s->namespace_, "/", s->name);
        break;
    default:
        AUTHZ__JOIN(buf, n, authz__level_names[s->level], " ", s->name);
        break;
    }
}

/* Sets key to the string v unless v is NULL; 0, or -1 when out of memory. */
static int put_str(json_t *j, const char *key, const char *v)
{
    return v ? json_object_set_new(j, key, json_string(v)) : 0;
}

/* A scope as a trace or a PermissionReview shows it; NULL when out of
 * memory. */
static json_t *scope_json(const authz__scope_t *s)
{
    int res = s->level == AUTHZ__RESOURCE;
    json_t *j = json_pack("{s:s}", "level", authz__level_names[s->level]);
    if (j && !put_str(j, "cluster", s->level != AUTHZ__PLATFORM ? s->cluster : NULL) &&
        !put_str(j, "name", s->name && *s->name ? s->name : NULL) &&
        !put_str(j, "namespace", res ? s->namespace_ : NULL) &&
        !put_str(j, "group", res ? s->group : NULL) &&
        !put_str(j, "resource", res ? s->resource : NULL))
        return j;
    json_decref(j);
    return NULL;
}

static void request_text(const authz_attrs_t *at, char *buf, size_t n)
{
    if (!at->resource_request) {
        AUTHZ__JOIN(buf, n, at->verb, " ", at->path ? at->path : "");
        return;
    }
    int sub = !empty(at->subresource), grp = !empty(at->api_group), nm = !empty(at->name);
    const char *resource = at->resource ? at->resource : "";
    if (!empty(at->namespace_))
        AUTHZ__JOIN(buf, n, at->verb, " ", resource, sub ? "/" : "", sub ? at->subresource : "",
                    grp ? "." : "", grp ? at->api_group : "", nm ? " " : "", nm ? at->name : "",
                    " in namespace ", at->namespace_);
    else
        AUTHZ__JOIN(buf, n, at->verb, " ", resource, sub ? "/" : "", sub ? at->subresource : "",
                    grp ? "." : "", grp ? at->api_group : "", nm ? " " : "", nm ? at->name : "");
}

/* By storage-key name, unique to a binding (the same binding compares
 * equal to itself only). */
static int binding_cmp(const void *x, const void *y)
{
    const authz__binding_t *a = *(void *const *)x, *b = *(void *const *)y;
    return a == b ? 0 : strcmp(a->key, b->key);
}

/* A binding reached through the user and several groups is looked at
 * once: sort and drop repeats, O(n log n) in the subject's bindings.
 * The order is the bindings' names in storage, the order a snapshot loads
 * them in: which binding a reason names when several match at one scope,
 * and the order of a trace's and a PermissionReview's entries, do not
 * depend on where the heap happened to put each binding. */
void authz__candidates_unique(authz__ptrs_t *c)
{
    if (c->n < 2)
        return;
    qsort(c->v, c->n, sizeof *c->v, binding_cmp);
    size_t m = 1;
    for (size_t i = 1; i < c->n; i++)
        if (c->v[i] != c->v[m - 1])
            c->v[m++] = c->v[i];
    c->n = m;
}

authz_decision_t authz__eval_error(int code, char *reason, size_t reason_len, int *error)
{
    AUTHZ__JOIN(reason, reason_len, "no opinion: evaluation error: ", err_default_message(code));
    if (error)
        *error = code;
    return AUTHZ_NO_OPINION;
}

/* One entry of a trace: a binding, what it did, and the rule that did it
 * (NULL: none). 0, or ERR_NOMEM. */
static int trace_binding(json_t *tb, const authz__binding_t *b, const char *result,
                         const authz__rule_t *rule)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "binding", b->name, "role", b->role, "result", result);
    if (e && rule && json_object_set_new(e, "rule", authz__rule_json(rule))) {
        json_decref(e);
        e = NULL;
    }
    return json_array_append_new(tb, e) ? ERR_NOMEM : 0;
}

/*
 * The decision over a chain. trace (optional) receives, per scope, the
 * bindings looked at and what each did. Caller holds the read lock.
 */
#define DECIDE_SCAN_MAX 16        /* a subject's bindings checked one by one */

authz_decision_t authz__decide(const authz_t *a, const char *user, const char *const *groups,
                               size_t ngroups, const authz_attrs_t *at, const authz__chain_t *c,
                               char *reason, size_t reason_len, json_t *trace, int *error)
{
    /* The subject keys: the user, then each group. */
    char ukey[300];
    AUTHZ__JOIN(ukey, sizeof ukey, "u:", user);
    const authz__binding_t *allow_b = NULL;
    const authz__scope_t *allow_s = NULL;
    authz_decision_t d = AUTHZ_NO_OPINION;
    authz__ptrs_t here = {0};
    int rc = 0;
    /* Each subject's (the user's, each group's) bindings, looked up once:
     * one bound nowhere (most groups: system:authenticated, ...) is passed
     * over at every scope, and one with a few bindings has them checked
     * against each scope directly, which is quicker than a lookup per
     * scope; only a subject with many goes through the scope index. */
    const authz__bucket_t *mine[AUTHZ_MAX_GROUPS + 1];
    int sift = ngroups <= AUTHZ_MAX_GROUPS;
    for (size_t g = 0; sift && g <= ngroups; g++) {
        char gkey[300];
        if (g)
            AUTHZ__JOIN(gkey, sizeof gkey, "g:", groups[g - 1]);
        mine[g] = authz__multi_get(&a->by_subject, g ? gkey : ukey);
    }
    for (size_t i = 0; i < c->n && d != AUTHZ_DENY && !rc; i++) {
        const authz__scope_t *s = &c->s[i];
        /* This scope's bindings of the subject. A binding that could not
         * be collected might be the one that denies: stop, with no opinion. */
        here.n = 0;
        for (size_t g = 0; g <= ngroups && !rc; g++) {
            char gkey[300];
            const char *key = ukey;
            if (sift && !mine[g])
                continue;
            if (sift && mine[g]->n <= DECIDE_SCAN_MAX) {
                void *const *v = authz__bucket_items(mine[g]);
                for (size_t j = 0; j < mine[g]->n && !rc; j++)
                    if (authz__binding_at(v[j], s))
                        rc = authz__ptrs_add(&here, v[j]);
                continue;
            }
            if (g) {
                AUTHZ__JOIN(gkey, sizeof gkey, "g:", groups[g - 1]);
                key = gkey;
            }
            const authz__bucket_t *l = authz__bindings_at(a, key, s);
            void *const *v = l ? authz__bucket_items(l) : NULL;
            for (size_t j = 0; l && j < l->n && !rc; j++)
                rc = authz__ptrs_add(&here, v[j]);
        }
        json_t *tb = trace && !rc ? json_array() : NULL;
        if (trace && !tb)
            rc = ERR_NOMEM;
        if (rc)
            break;
        authz__candidates_unique(&here);
        for (size_t j = 0; j < here.n && !rc; j++) {
            const authz__binding_t *b = here.v[j];
            const authz__role_t *r = authz__map_get(&a->roles, b->role);
            const char *result = "no matching rule";
            const authz__rule_t *rule = NULL;
            int k;
            if (!r) {
                result = "IAMRole not found";
            } else if ((k = authz__rules_match(&r->deny, at)) >= 0) {
                result = "denied";
                rule = &r->deny.v[k];
                d = AUTHZ_DENY;
                char where[300];
                scope_text(s, where, sizeof where);
                AUTHZ__JOIN(reason, reason_len, "denied by IAMRoleBinding ", b->name, " (IAMRole ",
                            b->role, ") at ", where);
            } else if ((k = authz__rules_match(&r->rules, at)) >= 0) {
                result = allow_b ? "allowed (a lower scope already allowed)" : "allowed";
                rule = &r->rules.v[k];
                if (!allow_b) {
                    allow_b = b;
                    allow_s = s;
                }
            }
            if (tb)
                rc = trace_binding(tb, b, result, rule);
            if (d == AUTHZ_DENY)
                break;
        }
        if (trace && json_array_append_new(trace, json_pack("{s:o, s:o}", "scope", scope_json(s),
                                                            "bindings", tb)))
            rc = ERR_NOMEM;
    }
    authz__ptrs_free(&here);
    if (rc)
        return authz__eval_error(rc, reason, reason_len, error);
    if (d == AUTHZ_DENY)
        return d;
    if (allow_b) {
        char where[300];
        scope_text(allow_s, where, sizeof where);
        AUTHZ__JOIN(reason, reason_len, "allowed by IAMRoleBinding ", allow_b->name, " (IAMRole ",
                    allow_b->role, ") at ", where);
        return AUTHZ_ALLOW;
    }
    char req[400], looked[600];
    size_t len = 0;
    looked[0] = '\0';
    for (size_t i = 0; i < c->n && len + 1 < sizeof looked; i++) {
        char where[300];
        scope_text(&c->s[i], where, sizeof where);
        len += AUTHZ__JOIN(looked + len, sizeof looked - len, i ? ", " : "", where);
    }
    request_text(at, req, sizeof req);
    AUTHZ__JOIN(reason, reason_len, "no IAMRoleBinding of ", user, " allows ", req,
                "; looked at ", looked);
    return AUTHZ_NO_OPINION;
}

static void observe(authz_t *a, authz_decision_t d, const struct timespec *t0)
{
    static const unsigned long bounds_us[] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
                                              10000, 25000};
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsigned long ns = (unsigned long)((t1.tv_sec - t0->tv_sec) * 1000000000L +
                                       (t1.tv_nsec - t0->tv_nsec));
    atomic_fetch_add(&a->metrics.decisions[d], 1);
    atomic_fetch_add(&a->metrics.sum_ns, ns);
    size_t b = 0;
    while (b < 11 && ns > bounds_us[b] * 1000)
        b++;
    atomic_fetch_add(&a->metrics.buckets[b], 1);
}

/* ---- the server's own requests ---------------------------------------------------- */

/* Paths any authenticated user may read (kube's system:discovery and
 * system:public-info-viewer roles), for this server's own API. */
static int is_discovery(const char *path)
{
    static const char *const prefixes[] = {"/api", "/apis", "/openapi", "/version",
                                           "/healthz", "/livez", "/readyz", NULL};
    for (size_t i = 0; path && prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(path, prefixes[i], n) && (path[n] == '\0' || path[n] == '/'))
            return 1;
    }
    return 0;
}

/* Drops from s the bytes of any sequence that is not whole UTF-8: a
 * reason quotes names from the request, and where one is cut to fit a
 * buffer it may end in part of a character. The reason then still goes
 * into a JSON answer or a Status. */
static void utf8_scrub(char *s)
{
    size_t n = 0, r = 0, w = 0;
    int ascii = 1;
    for (; s[n]; n++)
        ascii &= (unsigned char)s[n] < 0x80;
    if (ascii)
        return;
    while (r < n) {
        size_t k = jenc_utf8_len(s + r, n - r);
        if (!k) {
            r++;
            continue;
        }
        memmove(s + w, s + r, k);
        w += k;
        r += k;
    }
    s[w] = '\0';
}

/* authz__decide over c: no opinion with an evaluation error when memory
 * ran out building c, a deny when c is too long to hold every scope.
 * Caller holds the read lock. */
static authz_decision_t decide_chain(const authz_t *a, const authz_user_t *u,
                                     const char *const *groups, const authz_attrs_t *at,
                                     const authz__chain_t *c, char *reason, size_t reason_len,
                                     json_t *trace, int *error)
{
    if (c->oom)
        return authz__eval_error(ERR_NOMEM, reason, reason_len, error);
    if (!c->truncated)
        return authz__decide(a, u->name, groups, u->ngroups, at, c, reason, reason_len, trace,
                             error);
    snprintf(reason, reason_len, "denied: the scope chain is longer than %d scopes",
             AUTHZ__MAX_CHAIN);
    return AUTHZ_DENY;
}

/*
 * A create of an IAMRoleBinding names no scope the authorizer can see (the
 * scope is in the body), so it is allowed where the requester may create
 * bindings at some scope: each scope where one of her bindings has a rule
 * that could allow it is decided in turn, with its whole chain (a deny
 * there still denies there). Admission then requires the right at the new
 * binding's own scope. Caller holds the read lock.
 */
static authz_decision_t create_somewhere(const authz_t *a, const authz_user_t *u,
                                         const char *const *groups, const authz_attrs_t *at,
                                         char *reason, size_t reason_len, json_t *trace,
                                         int *error)
{
    authz__ptrs_t cand = {0};
    authz_decision_t d = AUTHZ_NO_OPINION;
    if (authz__bindings_of(a, u->name, groups, u->ngroups, &cand)) {
        authz__ptrs_free(&cand);
        return authz__eval_error(ERR_NOMEM, reason, reason_len, error);
    }
    authz__candidates_unique(&cand);
    for (size_t i = 0; i < cand.n && d != AUTHZ_ALLOW && !*error; i++) {
        const authz__binding_t *b = cand.v[i];
        const authz__role_t *r = authz__map_get(&a->roles, b->role);
        if (!r || b->level >= AUTHZ__LEVELS || authz__rules_match(&r->rules, at) < 0)
            continue;
        authz__scope_t s;
        authz__chain_t c;
        authz__binding_scope(b, &s);
        authz__chain_from_scope(a, &s, &c);
        d = decide_chain(a, u, groups, at, &c, reason, reason_len, NULL, error);
        if (d == AUTHZ_ALLOW && trace)
            d = decide_chain(a, u, groups, at, &c, reason, reason_len, trace, error);
        authz__chain_free(&c);
    }
    authz__ptrs_free(&cand);
    return d;
}

/* The decision, its reason, and in *error (never NULL; 0 on entry) the
 * code of an error that made it no opinion. */
static authz_decision_t authorize(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                  int own_api, char *reason, size_t reason_len, json_t *trace,
                                  int *error)
{
    char dummy[8];
    if (!reason) {
        reason = dummy;
        reason_len = sizeof dummy;
    }
    if (authz_user_in_group(u, "system:masters")) {
        AUTHZ__JOIN(reason, reason_len, "allowed: member of system:masters");
        return AUTHZ_ALLOW;
    }
    if (own_api && !at->resource_request && is(at->verb, "get") &&
        authz_user_in_group(u, "system:authenticated") && is_discovery(at->path)) {
        AUTHZ__JOIN(reason, reason_len, "allowed: discovery is readable by authenticated users");
        return AUTHZ_ALLOW;
    }
    if (u->overflow) {
        snprintf(reason, reason_len, "denied: the user has more than %d groups, or a group "
                 "name longer than %d bytes, which the authorizer cannot evaluate safely",
                 AUTHZ_MAX_GROUPS, AUTHZ_MAX_GROUP_LEN - 1);
        return AUTHZ_DENY;
    }
    const char *groups[AUTHZ_MAX_GROUPS];
    for (size_t i = 0; i < u->ngroups; i++)
        groups[i] = authz_user_group(u, i);
    authz__chain_t chain, *c = &chain;
    pthread_rwlock_rdlock(&a->lock);
    authz_decision_t d = AUTHZ_NO_OPINION;
    if (on_bindings(at) && is(at->verb, "create") && empty(at->name)) {
        d = create_somewhere(a, u, groups, at, reason, reason_len, trace, error);
    } else if (on_bindings(at) && is(at->verb, "patch") && empty(at->subresource) &&
               !empty(at->name) && !authz__map_get(&a->bindings, at->name)) {
        /* Server-side apply of a binding not yet stored creates it. */
        authz_attrs_t create = *at;
        create.verb = "create";
        create.name = NULL;
        d = create_somewhere(a, u, groups, &create, reason, reason_len, trace, error);
    }
    if (d != AUTHZ_ALLOW && !*error) {
        chain_for_request(a, at, at->cluster && *at->cluster ? at->cluster : a->cluster, c);
        d = decide_chain(a, u, groups, at, c, reason, reason_len, trace, error);
        authz__chain_free(c);
    }
    pthread_rwlock_unlock(&a->lock);
    utf8_scrub(reason);
    return d;
}

/* authorize, timed and counted in the metrics; the reason whole UTF-8. */
static authz_decision_t authorize_observed(authz_t *a, const authz_user_t *u,
                                           const authz_attrs_t *at, int own_api, char *reason,
                                           size_t reason_len, int *error)
{
    struct timespec t0;
    int e = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    authz_decision_t d = authorize(a, u, at, own_api, reason, reason_len, NULL, &e);
    observe(a, d, &t0);
    if (error)
        *error = e;
    return d;
}

authz_decision_t authz_authorize(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                 char *reason, size_t reason_len)
{
    return authorize_observed(a, u, at, 1, reason, reason_len, NULL);
}

/* ---- reviews ----------------------------------------------------------------------- */

authz_decision_t authz__review_decide(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                      char *reason, size_t reason_len, int *error)
{
    return authorize_observed(a, u, at, 0, reason, reason_len, error);
}

/* Fills u and at from a SubjectAccessReview-shaped spec. groups_key is
 * "groups" (v1, AccessReview) or "group" (v1beta1). Strings in at are
 * borrowed from spec. */
static int spec_attrs(const json_t *spec, const char *groups_key, authz_user_t *u,
                      authz_attrs_t *at, err_t *err)
{
    authz_user_reset(u);
    memset(at, 0, sizeof *at);
    if (!json_is_object(spec))
        return err_set(err, ERR_BAD_REQUEST, "spec is required");
    const char *user = json_string_value(json_object_get(spec, "user"));
    AUTHZ__JOIN(u->name, sizeof u->name, user ? user : "");
    const char *uid = json_string_value(json_object_get(spec, "uid"));
    AUTHZ__JOIN(u->uid, sizeof u->uid, uid ? uid : "");
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(spec, groups_key), i, g) {
        if (json_is_string(g))
            authz_user_add_group(u, json_string_value(g));
    }
    const json_t *ra = json_object_get(spec, "resourceAttributes");
    const json_t *na = json_object_get(spec, "nonResourceAttributes");
    if (json_is_object(ra) == json_is_object(na))
        return err_set(err, ERR_BAD_REQUEST,
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified");
    if (!*u->name && !u->ngroups)
        return err_set(err, ERR_BAD_REQUEST, "at least one of user or group must be specified");
    if (json_is_object(na)) {
        at->verb = json_string_value(json_object_get(na, "verb"));
        at->path = json_string_value(json_object_get(na, "path"));
        if (!at->verb)
            at->verb = "";
        return 0;
    }
    at->resource_request = 1;
    at->verb = json_string_value(json_object_get(ra, "verb"));
    at->namespace_ = json_string_value(json_object_get(ra, "namespace"));
    at->api_group = json_string_value(json_object_get(ra, "group"));
    at->api_version = json_string_value(json_object_get(ra, "version"));
    at->resource = json_string_value(json_object_get(ra, "resource"));
    at->subresource = json_string_value(json_object_get(ra, "subresource"));
    at->name = json_string_value(json_object_get(ra, "name"));
    if (!at->verb)
        at->verb = "";
    /* A list of nodes or namespaces narrowed by the scope label (1.31+
     * sends selectors as requirements). */
    const json_t *reqs = json_object_get(json_object_get(ra, "labelSelector"), "requirements");
    const json_t *r;
    json_array_foreach(reqs, i, r) {
        const char *key = json_string_value(json_object_get(r, "key"));
        const char *op = json_string_value(json_object_get(r, "operator"));
        const json_t *vals = json_object_get(r, "values");
        if (!key || !op || strcmp(op, "In") || json_array_size(vals) != 1)
            continue;
        const char *v = json_string_value(json_array_get(vals, 0));
        authz_attrs_scope_label(at, key, v);
    }
    return 0;
}

int authz_subject_access_review(authz_t *a, const json_t *sar, const char *cluster,
                                json_t **out, err_t *err)
{
    if (!json_is_object(sar))
        return err_set(err, ERR_BAD_REQUEST, "the body must be a SubjectAccessReview object");
    const char *av = json_string_value(json_object_get(sar, "apiVersion"));
    const char *kind = json_string_value(json_object_get(sar, "kind"));
    int v1beta1 = av && !strcmp(av, "authorization.k8s.io/v1beta1");
    if (!av || (!v1beta1 && strcmp(av, "authorization.k8s.io/v1")))
        return err_set(err, ERR_BAD_REQUEST, "apiVersion must be authorization.k8s.io/v1 or "
                       "authorization.k8s.io/v1beta1, not %s", av ? av : "(none)");
    if (!kind || strcmp(kind, "SubjectAccessReview"))
        return err_set(err, ERR_BAD_REQUEST, "kind must be SubjectAccessReview");
    authz_user_t u;
    authz_attrs_t at;
    int rc = spec_attrs(json_object_get(sar, "spec"), v1beta1 ? "group" : "groups", &u, &at, err);
    if (rc)
        return rc;
    at.cluster = cluster;
    char reason[1024];
    int eval_err = 0;
    authz_decision_t d = authz__review_decide(a, &u, &at, reason, sizeof reason, &eval_err);
    json_t *status = json_pack("{s:b, s:s}", "allowed", d == AUTHZ_ALLOW, "reason", reason);
    if (status && ((d == AUTHZ_DENY && json_object_set_new(status, "denied", json_true())) ||
                   put_str(status, "evaluationError",
                           eval_err ? err_default_message(eval_err) : NULL))) {
        json_decref(status);
        status = NULL;
    }
    /* kube-apiserver reads only status; the spec is not echoed back. */
    *out = json_pack("{s:s, s:s, s:{}, s:o}", "apiVersion", av, "kind", "SubjectAccessReview",
                     "metadata", "status", status);
    return *out ? 0 : err_set(err, ERR_NOMEM, NULL);
}

int authz_access_review(authz_t *a, json_t *obj, err_t *err)
{
    const json_t *spec = json_object_get(obj, "spec");
    authz_user_t u;
    authz_attrs_t at;
    int rc = spec_attrs(spec, "groups", &u, &at, err);
    if (rc) {
        err_add_cause(err, "FieldValueRequired", "spec", "%s", err->message);
        return err_set(err, ERR_INVALID, "AccessReview is invalid: %s", err->message);
    }
    at.cluster = json_string_value(json_object_get(spec, "cluster"));
    char reason[1024];
    int eval_err = 0;
    json_t *trace = json_array();
    if (!trace)
        return err_set(err, ERR_NOMEM, NULL);
    authz_decision_t d = authorize(a, &u, &at, 0, reason, sizeof reason, trace, &eval_err);
    json_t *status = json_pack("{s:b, s:b, s:s, s:o}", "allowed", d == AUTHZ_ALLOW, "denied",
                               d == AUTHZ_DENY, "reason", reason, "trace", trace);
    if (status && put_str(status, "evaluationError", eval_err ? err_default_message(eval_err) : NULL)) {
        json_decref(status);
        status = NULL;
    }
    if (!status || json_object_set_new(obj, "status", status))
        return err_set(err, ERR_NOMEM, NULL);
    return 0;
}

/* Appends e (stolen; NULL when it could not be made) to arr: 0 or ERR_NOMEM. */
static int append(json_t *arr, json_t *e)
{
    return json_array_append_new(arr, e) ? ERR_NOMEM : 0;
}

/* A rule of a PermissionReview, with the binding and scope it comes from. */
static json_t *rule_entry(const authz__rule_t *rule, const authz__binding_t *b,
                          const authz__scope_t *s)
{
    return json_pack("{s:o, s:s, s:s, s:o}", "rule", authz__rule_json(rule), "binding", b->name,
                     "role", b->role, "scope", scope_json(s));
}

int authz_permission_review(authz_t *a, json_t *obj, err_t *err)
{
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *sc = json_object_get(spec, "scope");
    const char *user = json_string_value(json_object_get(spec, "user"));
    int level = authz__level_parse(json_string_value(json_object_get(sc, "level")));
    if (level < 0) {
        err_add_cause(err, "FieldValueRequired", "spec.scope.level", "Required value");
        return err_set(err, ERR_INVALID, "PermissionReview is invalid: spec.scope.level: Required value");
    }
    const char *cl = json_string_value(json_object_get(sc, "cluster"));
    const char *nm = json_string_value(json_object_get(sc, "name"));
    authz__scope_t from = {.level = (authz__level_t)level,
                           .cluster = cl && *cl ? cl : a->cluster, .name = nm ? nm : "",
                           .namespace_ = json_string_value(json_object_get(sc, "namespace")),
                           .group = json_string_value(json_object_get(sc, "group")),
                           .resource = json_string_value(json_object_get(sc, "resource"))};
    if (!from.namespace_)
        from.namespace_ = "";
    if (!from.group)
        from.group = "";
    if (!from.resource)
        from.resource = "";
    const json_t *jg = json_object_get(spec, "groups");
    const char **groups = mem_calloc(json_array_size(jg) + 1, sizeof *groups);
    authz__chain_t chain, *c = &chain;
    if (!groups)
        return err_set(err, ERR_NOMEM, NULL);
    size_t ngroups = 0;
    size_t i;
    const json_t *g;
    json_array_foreach(jg, i, g) {
        if (json_is_string(g))
            groups[ngroups++] = json_string_value(g);
    }
    json_t *rules = json_array(), *deny = json_array(), *ui = json_array();
    authz__ptrs_t cand = {0};
    pthread_rwlock_rdlock(&a->lock);
    authz__chain_from_scope(a, &from, c);
    /* Every rule in effect or none: a list short of a deny rule would show
     * a permission as held that is not. */
    int rc = !rules || !deny || !ui || c->oom ||
             authz__bindings_of(a, user ? user : "", groups, ngroups, &cand) ? ERR_NOMEM : 0;
    authz__candidates_unique(&cand);
    for (size_t s = 0; s < c->n && !rc; s++) {
        for (size_t j = 0; j < cand.n && !rc; j++) {
            const authz__binding_t *b = cand.v[j];
            const authz__role_t *r = authz__map_get(&a->roles, b->role);
            if (!r || !authz__binding_at(b, &c->s[s]))
                continue;
            const authz__scope_t *at = &c->s[s];
            for (size_t k = 0; k < r->rules.n && !rc; k++)
                rc = append(rules, rule_entry(&r->rules.v[k], b, at));
            for (size_t k = 0; k < r->deny.n && !rc; k++)
                rc = append(deny, rule_entry(&r->deny.v[k], b, at));
            for (size_t k = 0; k < r->ui.n && !rc; k++)
                rc = append(ui, json_pack("{s:s, s:s, s:s, s:o}", "permission", r->ui.v[k],
                                          "binding", b->name, "role", b->role, "scope",
                                          scope_json(at)));
        }
    }
    authz__ptrs_free(&cand);
    pthread_rwlock_unlock(&a->lock);
    mem_free(groups);
    authz__chain_free(c);
    json_t *status = rc ? NULL : json_pack("{s:O, s:O, s:O}", "rules", rules, "denyRules", deny,
                                           "uiPermissions", ui);
    json_decref(rules);
    json_decref(deny);
    json_decref(ui);
    if (!status || json_object_set_new(obj, "status", status))
        return err_set(err, ERR_NOMEM, NULL);
    return 0;
}

/* ---- metrics ------------------------------------------------------------------------ */

int authz_metrics(authz_t *a, char **buf, size_t *len)
{
    static const char *const bounds[] = {"1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025",
                                         "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                         "+Inf"};
    char text[8192];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "# HELP edge_authorization_decisions_total Authorization decisions by result.\n"
                          "# TYPE edge_authorization_decisions_total counter\n");
    static const char *const names[] = {"no-opinion", "allowed", "denied"};
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "edge_authorization_decisions_total{result=\"%s\"} %lu\n", names[i],
                              atomic_load(&a->metrics.decisions[i]));
    /* The same under kube-apiserver's name for an authorizer's decisions. */
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "# HELP apiserver_authorization_decisions_total Total number of terminal "
                          "decisions made by an authorizer split by authorizer type, name, and "
                          "decision.\n# TYPE apiserver_authorization_decisions_total counter\n");
    for (int i = 0; i < 3; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "apiserver_authorization_decisions_total{type=\"Webhook\","
                              "name=\"edge-apiserver\",decision=\"%s\"} %lu\n", names[i],
                              atomic_load(&a->metrics.decisions[i]));
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "# HELP edge_authorization_duration_seconds Time to decide.\n"
                          "# TYPE edge_authorization_duration_seconds histogram\n");
    unsigned long cum = 0;
    for (int i = 0; i < 12; i++) {
        cum += atomic_load(&a->metrics.buckets[i]);
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "edge_authorization_duration_seconds_bucket{le=\"%s\"} %lu\n",
                              bounds[i], cum);
    }
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "edge_authorization_duration_seconds_sum %.9f\n"
                          "edge_authorization_duration_seconds_count %lu\n",
                          (double)atomic_load(&a->metrics.sum_ns) / 1e9, cum);
    n += (size_t)snprintf(text + n, sizeof text - n,
                          "# HELP edge_authorization_index_errors_total Changes the authorizer's "
                          "index could not apply (it kept the last good state and rebuilt).\n"
                          "# TYPE edge_authorization_index_errors_total counter\n"
                          "edge_authorization_index_errors_total %lu\n", authz_index_errors(a));
    char *p = mem_realloc(*buf, *len + n + 1);
    if (!p)
        return ERR_NOMEM;
    memcpy(p + *len, text, n + 1);
    *buf = p;
    *len += n;
    return 0;
}
