/*
 * What admission asks the authorizer before a write that changes who may
 * do what (registry/admission.c decides which of these each write needs):
 *
 *   authz_authorize_at   a decision placed at a given scope instead of
 *                        where the request's attributes would place it
 *                        (`bind` on a role at a binding's scope);
 *   authz_covers         escalation prevention, as Kubernetes RBAC's
 *                        validation.Covers: does the requester already
 *                        hold every rule she is about to grant?
 *   authz_role_rules     what a stored role grants, aggregated;
 *   authz_role_spec_rules  what a role with a proposed spec would grant;
 *   authz_sync           wait until the index has caught up with storage,
 *                        so admission judges by what is committed.
 *
 * Coverage breaks each rule to grant into subrules of one API group, one
 * resource, one verb and at most one name (or one URL and one verb), as
 * BreakdownRule does, and each subrule must be covered by one allow rule
 * the requester holds at the scope (the scope and every scope above it,
 * exactly the bindings a request placed there would be judged by). RBAC
 * has no deny; here a subrule that overlaps any deny rule of the
 * requester's in effect at the scope, above it or below it is not held:
 * she cannot grant what she is denied anywhere the grant would reach.
 *
 * An error (memory running out) never reads as held or allowed: a rule
 * list or candidate binding that could not be collected might be the one
 * that denies, so each function returns the error (authz_covers
 * ERR_NOMEM, authz_authorize_at no opinion with an evaluation error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/mem.h"
#include "../apimachinery/quote.h"
#include "../lib/sbuf.h"
#include "authz_internal.h"

static int empty(const char *s) { return !s || !*s; }

/* A ScopeRef as the index places it. -1 when the level is unknown. */
static int scope_of(const authz_t *a, const authz_scope_ref_t *ref, authz__scope_t *s)
{
    int level = authz__level_parse(ref->level);
    if (level < 0)
        return -1;
    *s = (authz__scope_t){.level = (authz__level_t)level,
                          .cluster = empty(ref->cluster) ? a->cluster : ref->cluster,
                          .name = ref->name ? ref->name : "",
                          .namespace_ = ref->namespace_ ? ref->namespace_ : "",
                          .group = ref->group ? ref->group : "",
                          .resource = ref->resource ? ref->resource : ""};
    return 0;
}

static size_t user_groups(const authz_user_t *u, const char **groups)
{
    for (size_t i = 0; i < u->ngroups; i++)
        groups[i] = authz_user_group(u, i);
    return u->ngroups;
}

authz_decision_t authz_authorize_at(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                    const authz_scope_ref_t *ref, char *reason, size_t reason_len)
{
    if (authz_user_in_group(u, "system:masters")) {
        AUTHZ__JOIN(reason, reason_len, "allowed: member of system:masters");
        return AUTHZ_ALLOW;
    }
    if (u->overflow) {
        AUTHZ__JOIN(reason, reason_len, "denied: the user has too many groups to evaluate");
        return AUTHZ_DENY;
    }
    authz__scope_t s;
    if (scope_of(a, ref, &s)) {
        AUTHZ__JOIN(reason, reason_len, "no opinion: the scope's level is not one of the known levels");
        return AUTHZ_NO_OPINION;
    }
    const char *groups[AUTHZ_MAX_GROUPS];
    size_t ng = user_groups(u, groups);
    authz__chain_t c;
    pthread_rwlock_rdlock(&a->lock);
    authz__chain_from_scope(a, &s, &c);
    authz_decision_t d = AUTHZ_DENY;
    if (c.oom)
        d = authz__eval_error(ERR_NOMEM, reason, reason_len, NULL);
    else if (c.truncated)
        AUTHZ__JOIN(reason, reason_len, "denied: the scope chain is too long to evaluate");
    else
        d = authz__decide(a, u->name, groups, ng, at, &c, reason, reason_len, NULL, NULL);
    pthread_rwlock_unlock(&a->lock);
    authz__chain_free(&c);
    return d;
}

/* ---- coverage ------------------------------------------------------------------ */


static int has(const authz__strs_t *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], v))
            return 1;
    return 0;
}

/* Whether owner's resources cover res (kube's resourceCoversAll for one
 * resource): "*", res itself, or for a subresource "r/s", "*\/s". */
static int resource_covers(const authz__strs_t *owner, const char *res)
{
    if (has(owner, "*") || has(owner, res))
        return 1;
    const char *slash = strchr(res, '/');
    if (!slash)
        return 0;
    char any[300];
    AUTHZ__JOIN(any, sizeof any, "*", slash);
    return has(owner, any);
}

/* Whether the URL pattern owner covers path (kube's nonResourceURLCovers):
 * the same path, or a pattern ending in "*" of which path starts with what
 * comes before the stars. */
static int url_covers(const char *owner, const char *path)
{
    if (!strcmp(owner, path))
        return 1;
    size_t n = strlen(owner);
    if (!n || owner[n - 1] != '*')
        return 0;
    while (n && owner[n - 1] == '*')
        n--;
    return !strncmp(path, owner, n);
}

/* kube's ruleCovers(owner, subrule): owner has s's verb (or "*"); for a URL,
 * a URL pattern that covers it and no resource names; otherwise s's group
 * (or "*"), a resource covering s's (resource_covers), and either no names
 * or, when s names one, that name. */
int authz__rule_covers(const authz__rule_t *o, const authz__subrule_t *s)
{
    if (!has(&o->verbs, "*") && !has(&o->verbs, s->verb))
        return 0;
    if (s->url) {
        for (size_t i = 0; i < o->urls.n; i++)
            if (url_covers(o->urls.v[i], s->url))
                return !o->names.n;
        return 0;
    }
    if (!has(&o->groups, "*") && !has(&o->groups, s->group))
        return 0;
    if (!resource_covers(&o->resources, s->resource))
        return 0;
    if (!s->name)
        return !o->names.n;
    return !o->names.n || has(&o->names, s->name);
}

/* Whether two resource names of rules can match one request. */
static int resources_meet(const char *x, const char *y)
{
    if (!strcmp(x, "*") || !strcmp(y, "*") || !strcmp(x, y))
        return 1;
    const char *xs = strchr(x, '/'), *ys = strchr(y, '/');
    if (!xs || !ys || strcmp(xs, ys))
        return 0;
    return (xs - x == 1 && *x == '*') || (ys - y == 1 && *y == '*') ||
           (xs - x == ys - y && !strncmp(x, y, (size_t)(xs - x)));
}

/* Whether two URL patterns (exact or with a trailing "*") can match one path. */
static int urls_meet(const char *x, const char *y)
{
    size_t xn = strlen(x), yn = strlen(y);
    int xs = xn && x[xn - 1] == '*', ys = yn && y[yn - 1] == '*';
    if (xs)
        xn--;
    if (ys)
        yn--;
    if (!xs && !ys)
        return !strcmp(x, y);
    size_t n = xs && ys ? (xn < yn ? xn : yn) : xs ? xn : yn;
    if (!xs && yn > xn)
        return 0;
    if (!ys && xn > yn)
        return 0;
    return !strncmp(x, y, n);
}

static int any_meets(const authz__strs_t *s, const char *v)
{
    if (!strcmp(v, "*"))
        return s->n > 0;
    return has(s, "*") || has(s, v);
}

/* Whether deny rule d could deny some request that subrule s grants. */
int authz__rule_overlaps(const authz__rule_t *d, const authz__subrule_t *s)
{
    if (!any_meets(&d->verbs, s->verb))
        return 0;
    if (s->url) {
        for (size_t i = 0; i < d->urls.n; i++)
            if (urls_meet(d->urls.v[i], s->url))
                return 1;
        return 0;
    }
    if (!any_meets(&d->groups, s->group))
        return 0;
    int res = 0;
    for (size_t i = 0; i < d->resources.n && !res; i++)
        res = resources_meet(d->resources.v[i], s->resource);
    if (!res)
        return 0;
    return !s->name || !d->names.n || has(&d->names, s->name);
}

/* The rules a coverage check weighs: borrowed from the index's roles. */
typedef struct held {
    authz__ptrs_t allow, deny;   /* authz__rules_t * */
} held_t;

/* 1 when binding b sits at target or below it (its deny rules reach into
 * what a grant at target reaches). */
static int binding_within(const authz_t *a, const authz__binding_t *b, const authz__scope_t *t)
{
    if (t->level == AUTHZ__PLATFORM)
        return 1;
    if (b->level == AUTHZ__PLATFORM || b->level >= AUTHZ__LEVELS || strcmp(b->cluster, t->cluster))
        return 0;
    const char *ns = b->level == AUTHZ__NAMESPACE ? b->scope_name
                   : b->level == AUTHZ__RESOURCE ? b->scope_ns : NULL;
    char key[600];
    const authz__bucket_t *l = NULL;
    switch (t->level) {
    case AUTHZ__CLUSTER:
        return 1;
    case AUTHZ__NAMESPACE:
        return b->level == AUTHZ__RESOURCE && !strcmp(b->scope_ns, t->name);
    case AUTHZ__WORKSPACE:
        if (!ns)
            return 0;
        AUTHZ__JOIN(key, sizeof key, b->cluster, "/", ns);
        l = authz__multi_get(&a->ns_ws, key);
        break;
    case AUTHZ__NODEGROUP:
        if (b->level != AUTHZ__NODE)
            return 0;
        AUTHZ__JOIN(key, sizeof key, b->cluster, "/", b->scope_name);
        l = authz__multi_get(&a->node_ng, key);
        break;
    default:
        return 0;
    }
    void *const *v = l ? authz__bucket_items(l) : NULL;
    for (size_t i = 0; l && i < l->n; i++) {
        const char *const *owner_name = v[i];  /* Workspaces and NodeGroups start with it */
        if (!strcmp(*owner_name, t->name))
            return 1;
    }
    return 0;
}

/* The requester's rules at s: allow rules of her bindings in s's chain,
 * deny rules of those and of her bindings below s. Caller holds the read
 * lock. 0, or ERR_NOMEM (some of them could not be collected: a missing
 * deny rule would read as held) / ERR_FORBIDDEN (a chain too long to
 * hold). */
static int held_at(const authz_t *a, const authz_user_t *u, const authz__scope_t *s, held_t *h)
{
    const char *groups[AUTHZ_MAX_GROUPS];
    size_t ng = user_groups(u, groups);
    authz__ptrs_t cand = {0};
    authz__chain_t c;
    authz__chain_from_scope(a, s, &c);
    int rc = c.oom || authz__bindings_of(a, u->name, groups, ng, &cand) ? ERR_NOMEM
           : c.truncated ? ERR_FORBIDDEN : 0;
    authz__candidates_unique(&cand);
    for (size_t i = 0; i < cand.n && !rc; i++) {
        const authz__binding_t *b = cand.v[i];
        const authz__role_t *r = authz__map_get(&a->roles, b->role);
        if (!r)
            continue;
        int in_chain = 0;
        for (size_t j = 0; j < c.n && !in_chain; j++)
            in_chain = authz__binding_at(b, &c.s[j]);
        if (in_chain && authz__ptrs_add(&h->allow, (void *)&r->rules))
            rc = ERR_NOMEM;
        if ((in_chain || binding_within(a, b, s)) && r->deny.n &&
            authz__ptrs_add(&h->deny, (void *)&r->deny))
            rc = ERR_NOMEM;
    }
    authz__ptrs_free(&cand);
    authz__chain_free(&c);
    return rc;
}

/* The sets of rules a subrule is weighed against. */
typedef struct weigh {
    const authz__rules_t *const *allow, *const *deny;
    size_t nallow, ndeny;
} weigh_t;

static int subrule_held(const weigh_t *h, const authz__subrule_t *s)
{
    for (size_t i = 0; i < h->ndeny; i++) {
        const authz__rules_t *rs = h->deny[i];
        for (size_t j = 0; j < rs->n; j++)
            if (authz__rule_overlaps(&rs->v[j], s))
                return 0;
    }
    for (size_t i = 0; i < h->nallow; i++) {
        const authz__rules_t *rs = h->allow[i];
        for (size_t j = 0; j < rs->n; j++)
            if (authz__rule_covers(&rs->v[j], s))
                return 1;
    }
    return 0;
}

static void put_field(sbuf_t *b, int *first, const char *name, const char *const *v, size_t n)
{
    if (!n)
        return;
    sbuf_puts(b, *first ? "" : ", ");
    *first = 0;
    sbuf_puts(b, name);
    sbuf_puts(b, ":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sbuf_putc(b, ' ');
        quote_go_sb(b, v[i], strlen(v[i]));
    }
    sbuf_putc(b, ']');
}

/* A missing subrule in kube's PolicyRule.CompactString form, with the
 * verbs of subrules that differ only by verb (CompactRules): the fields
 * that are set, in the order APIGroups, Resources, NonResourceURLs,
 * ResourceNames, Verbs, each a list of Go-quoted strings,
 * e.g. {APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}.
 * NULL when out of memory. */
static char *compact_string(const authz__subrule_t *s, const char *const *verbs, size_t nverbs)
{
    sbuf_t b = SBUF_INIT;
    int first = 1;
    sbuf_putc(&b, '{');
    if (!s->url) {
        put_field(&b, &first, "APIGroups", &s->group, 1);
        put_field(&b, &first, "Resources", &s->resource, 1);
    } else {
        put_field(&b, &first, "NonResourceURLs", &s->url, 1);
    }
    if (s->name)
        put_field(&b, &first, "ResourceNames", &s->name, 1);
    put_field(&b, &first, "Verbs", verbs, nverbs);
    sbuf_putc(&b, '}');
    if (b.oom) {
        sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Sorted, without repeats, one per line, as kube lists them; NULL when out
 * of memory (n > 0). */
static char *join_missing(char **lines, size_t n)
{
    qsort(lines, n, sizeof *lines, str_cmp);
    sbuf_t b = SBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(lines[i], lines[i - 1]))
            continue;
        if (b.len)
            sbuf_putc(&b, '\n');
        sbuf_puts(&b, lines[i]);
    }
    if (b.oom || !b.p) {
        sbuf_free(&b);
        return NULL;
    }
    return b.p;
}

/* The subrules of want (BreakdownRule), through visit; stops when visit
 * returns non-zero and returns that. */
typedef int (*subrule_fn)(void *arg, const authz__subrule_t *s);
static int breakdown(const authz__rules_t *want, subrule_fn visit, void *arg)
{
    for (size_t i = 0; i < want->n; i++) {
        const authz__rule_t *r = &want->v[i];
        for (size_t g = 0; g < r->groups.n; g++)
            for (size_t k = 0; k < r->resources.n; k++)
                for (size_t v = 0; v < r->verbs.n; v++) {
                    authz__subrule_t s = {r->verbs.v[v], r->groups.v[g], r->resources.v[k], NULL, NULL};
                    if (!r->names.n) {
                        int rc = visit(arg, &s);
                        if (rc)
                            return rc;
                    }
                    for (size_t n = 0; n < r->names.n; n++) {
                        s.name = r->names.v[n];
                        int rc = visit(arg, &s);
                        if (rc)
                            return rc;
                    }
                }
        for (size_t k = 0; k < r->urls.n; k++)
            for (size_t v = 0; v < r->verbs.n; v++) {
                authz__subrule_t s = {r->verbs.v[v], NULL, NULL, NULL, r->urls.v[k]};
                int rc = visit(arg, &s);
                if (rc)
                    return rc;
            }
    }
    return 0;
}

/* The uncovered subrules, collected and compacted. */
typedef struct missing {
    weigh_t held;
    authz__subrule_t *v;
    size_t n, cap;
} missing_t;

static int collect(void *arg, const authz__subrule_t *s)
{
    missing_t *m = arg;
    if (subrule_held(&m->held, s))
        return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        authz__subrule_t *nv = mem_realloc(m->v, cap * sizeof *nv);
        if (!nv)
            return ERR_NOMEM;
        m->v = nv;
        m->cap = cap;
    }
    m->v[m->n++] = *s;
    return 0;
}

static int same_but_verb(const authz__subrule_t *x, const authz__subrule_t *y)
{
    return !x->url && !y->url && !x->name && !y->name && !strcmp(x->group, y->group) &&
           !strcmp(x->resource, y->resource);
}

/* *out: the missing subrules as kube's message lists them. */
static int describe_missing(const missing_t *m, char **out)
{
    char **lines = mem_calloc(m->n + 1, sizeof *lines);
    const char **verbs = mem_calloc(m->n + 1, sizeof *verbs);
    char *done = mem_calloc(m->n + 1, 1);
    size_t nl = 0;
    int rc = lines && verbs && done ? 0 : ERR_NOMEM;
    for (size_t i = 0; i < m->n && !rc; i++) {
        if (done[i])
            continue;
        size_t nv = 0;
        verbs[nv++] = m->v[i].verb;
        for (size_t j = i + 1; j < m->n; j++)
            if (!done[j] && same_but_verb(&m->v[i], &m->v[j])) {
                done[j] = 1;
                verbs[nv++] = m->v[j].verb;
            }
        if (!(lines[nl++] = compact_string(&m->v[i], verbs, nv)))
            rc = ERR_NOMEM;
    }
    if (!rc && !(*out = join_missing(lines, nl)))
        rc = ERR_NOMEM;
    for (size_t i = 0; lines && i < nl; i++)
        mem_free(lines[i]);
    mem_free(lines);
    mem_free((void *)verbs);
    mem_free(done);
    return rc;
}

int authz__rules_cover(const authz__rules_t *const *allow, size_t nallow,
                       const authz__rules_t *const *deny, size_t ndeny,
                       const authz__rules_t *want, char **missing)
{
    missing_t m = {.held = {allow, deny, nallow, ndeny}};
    *missing = NULL;
    int rc = breakdown(want, collect, &m);
    if (!rc && m.n)
        rc = describe_missing(&m, missing);
    mem_free(m.v);
    return rc ? rc : m.n ? 0 : 1;
}

int authz_covers(authz_t *a, const authz_user_t *u, const authz_scope_ref_t *ref,
                 const json_t *rules, char **missing)
{
    *missing = NULL;
    authz__scope_t s;
    authz__rules_t want;
    if (u->overflow || scope_of(a, ref, &s))
        return 0;
    if (authz__rules_parse(rules, &want))
        return ERR_NOMEM;
    held_t h = {{0}, {0}};
    pthread_rwlock_rdlock(&a->lock);
    int rc = held_at(a, u, &s, &h);
    if (!rc)
        rc = authz__rules_cover((const authz__rules_t *const *)h.allow.v, h.allow.n,
                                (const authz__rules_t *const *)h.deny.v, h.deny.n, &want,
                                missing);
    pthread_rwlock_unlock(&a->lock);
    authz__ptrs_free(&h.allow);
    authz__ptrs_free(&h.deny);
    authz__rules_free(&want);
    return rc == ERR_FORBIDDEN ? 0 : rc;
}

/* ---- roles ------------------------------------------------------------------------ */

/* Every rule of r, or NULL when out of memory: a list short of a deny
 * rule would tell admission that a role denies less than it does. */
static json_t *rules_json(const authz__rules_t *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->n; i++) {
        if (json_array_append_new(arr, authz__rule_json(&r->v[i]))) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int role_out(const authz__role_t *r, json_t **rules, json_t **deny)
{
    *rules = rules_json(&r->rules);
    *deny = rules_json(&r->deny);
    if (*rules && *deny)
        return 0;
    json_decref(*rules);
    json_decref(*deny);
    *rules = *deny = NULL;
    return ERR_NOMEM;
}

int authz_role_rules(authz_t *a, const char *name, json_t **rules, json_t **deny)
{
    pthread_rwlock_rdlock(&a->lock);
    const authz__role_t *r = authz__map_get(&a->roles, name ? name : "");
    int rc = r ? role_out(r, rules, deny) : ERR_NOT_FOUND;
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

int authz_role_spec_rules(authz_t *a, const char *name, const json_t *spec, json_t **rules,
                          json_t **deny)
{
    authz__role_t *r = authz__role_from_spec(name, spec);
    if (!r)
        return ERR_NOMEM;
    pthread_rwlock_rdlock(&a->lock);
    int rc = authz__role_aggregate(a, r);
    pthread_rwlock_unlock(&a->lock);
    if (!rc)
        rc = role_out(r, rules, deny);
    authz__role_free(r);
    return rc;
}

int authz_sync(authz_t *a, uint64_t rev, unsigned timeout_ms)
{
    struct timespec step = {0, 500000};  /* 0.5 ms */
    for (unsigned waited = 0; authz_revision(a) < rev; waited++) {
        if (waited >= timeout_ms * 2)
            return ERR_TIMEOUT;
        nanosleep(&step, NULL);
    }
    return 0;
}
