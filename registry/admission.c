/*
 * The admission step: see reg_admit in registry.h for what each kind
 * needs. Every check asks the authorizer (authz/grant.c) after it has
 * caught up with storage, and any error on the way refuses the write:
 * nothing here ends in "admitted" except a check that passed.
 *
 * Where a check mirrors Kubernetes RBAC (pkg/registry/rbac, its policybased
 * storages), so do its words: a binding whose role is missing is 404 as
 * GetRoleReferenceRules answers, a grant not held is 403 "... is
 * attempting to grant RBAC permissions not currently held:" followed by
 * the rules, one per line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "reg_internal.h"

#define ADMIT_SYNC_MS 5000       /* the index follows storage in milliseconds */
#define IAM "iam.theriseunion.io"
#define SCOPE "scope.theriseunion.io"

typedef struct adm {
    reg_t *r;
    const reg_kind_t *k;
    const authz_user_t *u;
    const char *verb;            /* create, update, patch, delete */
    const json_t *old, *obj;     /* NULL on create / delete */
    const char *name;
    err_t *err;
} adm_t;

static const char *str(const json_t *o, const char *path)
{
    return json_string_value(reg__at(o, path));
}

static int is(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static const char *cluster_or_own(const adm_t *c, const char *cl)
{
    return cl && *cl ? cl : c->r->cluster ? c->r->cluster : "host";
}

/* 403 as kube's NewForbidden words it: `<resource>.<group> "<name>" is
 * forbidden: <why>`. */
static int forbid(const adm_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int forbid(const adm_t *c, const char *fmt, ...)
{
    char why[sizeof c->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_set(c->err, ERR_FORBIDDEN, "%s.%s \"%s\" is forbidden: %s", c->k->resource,
                   c->k->group, c->name, why);
}

/* user "alice" (groups=["a" "b"]), as kube's escalation message names her. */
static void who(const authz_user_t *u, char *buf, size_t n)
{
    sbuf_t b = SBUF_INIT;
    sbuf_puts(&b, "user \"");
    sbuf_puts(&b, u->name);
    sbuf_puts(&b, "\" (groups=[");
    for (size_t i = 0; i < u->ngroups; i++) {
        sbuf_puts(&b, i ? " \"" : "\"");
        sbuf_puts(&b, authz_user_group(u, i));
        sbuf_putc(&b, '"');
    }
    sbuf_puts(&b, "])");
    snprintf(buf, n, "%s", b.p && !b.oom ? b.p : "user");
    sbuf_free(&b);
}

static void scope_ref(const json_t *scope, authz_scope_ref_t *ref)
{
    *ref = (authz_scope_ref_t){str(scope, "level"), str(scope, "cluster"), str(scope, "name"),
                               str(scope, "namespace"), str(scope, "group"),
                               str(scope, "resource")};
}

static void scope_text(const authz_scope_ref_t *s, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", s->level ? s->level : "(none)", s->name && *s->name ? " " : "",
             s->name ? s->name : "");
}

/* The decision of verb on resource (and name) placed at ref, or where the
 * attributes place it when ref is NULL. */
static authz_decision_t may(const adm_t *c, authz_attrs_t *at, const authz_scope_ref_t *ref,
                            char *reason, size_t n)
{
    at->resource_request = 1;
    at->api_version = at->api_version ? at->api_version : REG_VERSION;
    if (ref)
        return authz_authorize_at(c->r->authz, c->u, at, ref, reason, n);
    return authz_authorize(c->r->authz, c->u, at, reason, n);
}

/* Rules a role or template would grant, checked as RBAC's escalation
 * prevention: held at ref, or the error naming what is not. */
static int confirm_no_escalation(const adm_t *c, const authz_scope_ref_t *ref, const json_t *rules)
{
    char *missing = NULL;
    int rc = authz_covers(c->r->authz, c->u, ref, rules, &missing);
    if (rc < 0)
        return err_set(c->err, rc, NULL);
    if (rc == 1)
        return 0;
    char user[300];
    who(c->u, user, sizeof user);
    rc = forbid(c, "%s is attempting to grant RBAC permissions not currently held:\n%s", user,
                missing ? missing : "(the scope could not be evaluated)");
    mem_free(missing);
    return rc;
}

/* 1 when every rule of a is also in b. */
static int rules_within(const json_t *a, const json_t *b)
{
    size_t i, j;
    const json_t *x, *y;
    json_array_foreach(a, i, x) {
        int found = 0;
        json_array_foreach(b, j, y) {
            if (json_equal(x, y)) {
                found = 1;
                break;
            }
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* ---- IAMRoleBinding ------------------------------------------------------------- */

/* `bind` on the role at the binding's scope. */
static int may_bind(const adm_t *c, const char *role, const authz_scope_ref_t *ref)
{
    char reason[512];
    authz_attrs_t at = {.verb = "bind", .api_group = IAM, .resource = "iamroles", .name = role};
    return may(c, &at, ref, reason, sizeof reason) == AUTHZ_ALLOW;
}

/* A binding whose role has deny rules narrows its subjects' rights:
 * removing it or changing whom or where it binds needs `bind`. */
static int check_deny_binding(const adm_t *c, const json_t *binding, const char *what)
{
    const char *role = str(binding, "spec.roleRef.name");
    json_t *rules = NULL, *deny = NULL;
    int rc = authz_role_rules(c->r->authz, role, &rules, &deny);
    if (rc == ERR_NOT_FOUND)
        return 0;  /* a missing role grants and denies nothing */
    if (rc)
        return err_set(c->err, rc, NULL);
    int has_deny = json_array_size(deny) > 0;
    json_decref(rules);
    json_decref(deny);
    authz_scope_ref_t ref;
    scope_ref(reg__at(binding, "spec.scope"), &ref);
    if (!has_deny || may_bind(c, role, &ref))
        return 0;
    char where[300];
    scope_text(&ref, where, sizeof where);
    return forbid(c, "%s a binding of IAMRole \"%s\", which has deny rules, widens access: it "
                  "needs bind on iamroles \"%s\" at %s", what, role, role, where);
}

/* The verb allowed on a binding at a scope, or the 403 saying where not. */
static int verb_at(const adm_t *c, const json_t *scope)
{
    authz_scope_ref_t ref;
    scope_ref(scope, &ref);
    char where[300], reason[512];
    int named = c->old && strcmp(c->verb, "deletecollection");
    authz_attrs_t at = {.verb = c->verb, .api_group = IAM, .resource = "iamrolebindings",
                        .name = named ? c->name : NULL};
    if (may(c, &at, &ref, reason, sizeof reason) == AUTHZ_ALLOW)
        return 0;
    scope_text(&ref, where, sizeof where);
    return forbid(c, "user \"%s\" cannot %s iamrolebindings at %s: %s", c->u->name, c->verb,
                  where, reason);
}

static int admit_binding(adm_t *c)
{
    /* The request was authorized where the index placed the binding (or,
     * for a create, wherever its author may create bindings). The index
     * follows storage a moment behind, so the verb is checked again where
     * the stored binding is, and where the new one will be. */
    const json_t *spec = c->obj ? reg__at(c->obj, "spec") : NULL;
    int rc = c->old ? verb_at(c, reg__at(c->old, "spec.scope")) : 0;
    if (rc || !c->obj)
        return rc ? rc : check_deny_binding(c, c->old, "deleting");
    if (c->old && json_equal(reg__at(c->old, "spec"), spec))
        return 0;  /* metadata or status only: grants nothing new */
    rc = c->old ? check_deny_binding(c, c->old, "changing") : 0;
    if (!rc && (!c->old || !json_equal(reg__at(c->old, "spec.scope"), reg__at(spec, "scope"))))
        rc = verb_at(c, reg__at(spec, "scope"));
    if (rc)
        return rc;
    authz_scope_ref_t ref;
    scope_ref(reg__at(spec, "scope"), &ref);
    const char *role = str(spec, "roleRef.name");
    if (may_bind(c, role, &ref))
        return 0;
    json_t *rules = NULL, *deny = NULL;
    rc = authz_role_rules(c->r->authz, role, &rules, &deny);
    if (rc == ERR_NOT_FOUND)
        return err_set(c->err, ERR_NOT_FOUND, "iamroles.%s \"%s\" not found", IAM, role ? role : "");
    if (rc)
        return err_set(c->err, rc, NULL);
    rc = confirm_no_escalation(c, &ref, rules);
    json_decref(rules);
    json_decref(deny);
    return rc;
}

/* ---- IAMRole and RoleTemplate ------------------------------------------------ */

static const authz_scope_ref_t platform = {.level = "Platform"};

static int may_escalate(const adm_t *c)
{
    char reason[512];
    authz_attrs_t at = {.verb = "escalate", .api_group = c->k->group, .resource = c->k->resource,
                        .name = c->name};
    return may(c, &at, NULL, reason, sizeof reason) == AUTHZ_ALLOW;
}

/* What a role or template object grants and denies (new references). */
static int grants_of(const adm_t *c, const json_t *o, json_t **rules, json_t **deny)
{
    const json_t *spec = reg__at(o, "spec");
    if (c->k == &reg_kind_iamrole)
        return authz_role_spec_rules(c->r->authz, c->name, spec, rules, deny);
    const json_t *r = json_object_get(spec, "rules"), *d = json_object_get(spec, "denyRules");
    *rules = json_is_array(r) ? json_incref((json_t *)r) : json_array();
    *deny = json_is_array(d) ? json_incref((json_t *)d) : json_array();
    return *rules && *deny ? 0 : ERR_NOMEM;
}

static int admit_role(adm_t *c)
{
    int template = c->k == &reg_kind_roletemplate;
    if (c->old && c->obj && json_equal(reg__at(c->old, "spec"), reg__at(c->obj, "spec")) &&
        (!template || json_equal(reg__at(c->old, "metadata.labels"),
                                 reg__at(c->obj, "metadata.labels"))))
        return 0;  /* grants nothing new, drops no deny rule */
    json_t *rules = NULL, *deny = NULL, *old_rules = NULL, *old_deny = NULL;
    int rc = c->obj ? grants_of(c, c->obj, &rules, &deny) : 0;
    if (!rc && c->old)
        rc = grants_of(c, c->old, &old_rules, &old_deny);
    if (rc) {
        rc = err_set(c->err, rc, NULL);
        goto out;
    }
    /* Deny rules dropped (or a template relabelled away from the roles
     * that select it, taking its deny rules along) widen access. */
    int drops = c->old && json_array_size(old_deny) &&
                (!c->obj || !rules_within(old_deny, deny) ||
                 (template && !json_equal(reg__at(c->old, "metadata.labels"),
                                          reg__at(c->obj, "metadata.labels"))));
    if (may_escalate(c))
        goto out;
    if (drops) {
        rc = forbid(c, "%s %s with deny rules widens access: it needs escalate on %s.%s \"%s\"",
                    c->obj ? "changing" : "deleting", c->k->kind, c->k->resource, c->k->group,
                    c->name);
        goto out;
    }
    if (c->obj)
        rc = confirm_no_escalation(c, &platform, rules);
out:
    json_decref(rules);
    json_decref(deny);
    json_decref(old_rules);
    json_decref(old_deny);
    return rc;
}

/* ---- scope claims ------------------------------------------------------------------ */

/* Authority over a namespace, node or cluster: this authorizer, or for
 * this server's own cluster kube-apiserver's (which runs RBAC too). */
static int authority(const adm_t *c, authz_attrs_t *at, const char *what)
{
    char reason[512];
    authz_decision_t d = may(c, at, NULL, reason, sizeof reason);
    if (d == AUTHZ_ALLOW)
        return 0;
    if (d == AUTHZ_NO_OPINION && c->r->delegate && is(at->cluster, cluster_or_own(c, NULL))) {
        int allowed = 0;
        err_t e;
        err_clear(&e);
        authz_attrs_t up = *at;
        up.cluster = NULL;
        if (c->r->delegate(c->r->delegate_arg, c->u, &up, &allowed, &e) == 0 && allowed)
            return 0;
        if (e.code)
            snprintf(reason, sizeof reason, "kube-apiserver could not be asked: %.400s",
                     e.message);
    }
    return forbid(c, "user \"%s\" may not claim %s: it needs %s on %s \"%s\" (%s)", c->u->name,
                  what, at->verb, at->resource, at->name, reason);
}

static int claim_namespace(const adm_t *c, const char *cluster, const char *ns)
{
    char what[600];
    snprintf(what, sizeof what, "namespace \"%s\" of cluster \"%s\"", ns, cluster);
    authz_attrs_t at = {.verb = "update", .api_group = "", .api_version = "v1",
                        .resource = "namespaces", .namespace_ = ns, .name = ns,
                        .cluster = cluster};
    return authority(c, &at, what);
}

static int claim_node(const adm_t *c, const char *cluster, const char *node)
{
    char what[600];
    snprintf(what, sizeof what, "node \"%s\" of cluster \"%s\"", node, cluster);
    authz_attrs_t at = {.verb = "update", .api_group = "", .api_version = "v1",
                        .resource = "nodes", .name = node, .cluster = cluster};
    return authority(c, &at, what);
}

static int claim_cluster(const adm_t *c, const char *cluster)
{
    char what[300];
    snprintf(what, sizeof what, "cluster \"%s\"", cluster);
    authz_attrs_t at = {.verb = "update", .api_group = SCOPE, .resource = "clusters",
                        .name = cluster, .cluster = cluster};
    return authority(c, &at, what);
}

/* 1 when o's array at path holds an entry equal to e in the fields that
 * identify it (cluster defaulted). */
static int ns_listed(const adm_t *c, const json_t *o, const char *cluster, const char *name)
{
    size_t i;
    const json_t *e;
    json_array_foreach(reg__at(o, "spec.namespaces"), i, e) {
        if (is(cluster_or_own(c, str(e, "cluster")), cluster) && is(str(e, "name"), name))
            return 1;
    }
    return 0;
}

static int str_listed(const json_t *arr, const char *s)
{
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e) {
        if (is(json_string_value(e), s))
            return 1;
    }
    return 0;
}

static int admit_workspace(adm_t *c)
{
    if (!c->obj || (c->old && json_equal(reg__at(c->old, "spec"), reg__at(c->obj, "spec"))))
        return 0;
    size_t i;
    const json_t *e;
    json_array_foreach(reg__at(c->obj, "spec.namespaces"), i, e) {
        const char *cl = cluster_or_own(c, str(e, "cluster")), *ns = str(e, "name");
        if (ns && !(c->old && ns_listed(c, c->old, cl, ns))) {
            int rc = claim_namespace(c, cl, ns);
            if (rc)
                return rc;
        }
    }
    json_array_foreach(reg__at(c->obj, "spec.clusters"), i, e) {
        const char *cl = json_string_value(e);
        if (cl && !(c->old && str_listed(reg__at(c->old, "spec.clusters"), cl))) {
            int rc = claim_cluster(c, cl);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int admit_nodegroup(adm_t *c)
{
    if (!c->obj || (c->old && json_equal(reg__at(c->old, "spec"), reg__at(c->obj, "spec"))))
        return 0;
    const char *cl = cluster_or_own(c, str(c->obj, "spec.cluster"));
    const char *old_cl = c->old ? cluster_or_own(c, str(c->old, "spec.cluster")) : NULL;
    int moved = !is(cl, old_cl);
    int rc = moved ? claim_cluster(c, cl) : 0;
    size_t i;
    const json_t *e;
    json_array_foreach(reg__at(c->obj, "spec.nodes"), i, e) {
        const char *node = json_string_value(e);
        if (!rc && node && (moved || !str_listed(reg__at(c->old, "spec.nodes"), node)))
            rc = claim_node(c, cl, node);
    }
    return rc;
}

/* ---- deployment targets -------------------------------------------------------- */

static int use(const adm_t *c, const char *resource, const char *name, const char *cluster)
{
    char reason[512];
    authz_attrs_t at = {.verb = "use", .api_group = SCOPE, .resource = resource, .name = name,
                        .cluster = cluster};
    if (may(c, &at, NULL, reason, sizeof reason) == AUTHZ_ALLOW)
        return 0;
    return forbid(c, "user \"%s\" may not use %s \"%s\" (%s)", c->u->name, resource, name, reason);
}

static int admit_deployment(adm_t *c)
{
    if (!c->obj || (c->old && json_equal(reg__at(c->old, "spec"), reg__at(c->obj, "spec"))))
        return 0;
    size_t i;
    const json_t *t;
    json_array_foreach(reg__at(c->obj, "spec.topologies"), i, t) {
        const char *g = str(t, "nodeGroup");
        int rc = use(c, "nodegroups", g ? g : "", NULL);
        if (rc)
            return rc;
    }
    return 0;
}

static int admit_component(adm_t *c)
{
    if (!c->obj || (c->old && json_equal(reg__at(c->old, "spec"), reg__at(c->obj, "spec"))))
        return 0;
    const char *cl = cluster_or_own(c, str(c->obj, "spec.cluster"));
    return use(c, "clusters", cl, cl);
}

/* ---- the step ---------------------------------------------------------------------- */

static const struct {
    const reg_kind_t *kind;
    int (*admit)(adm_t *c);
} admitters[] = {
    {&reg_kind_iamrolebinding, admit_binding},
    {&reg_kind_iamrole, admit_role},
    {&reg_kind_roletemplate, admit_role},
    {&reg_kind_workspace, admit_workspace},
    {&reg_kind_nodegroup, admit_nodegroup},
    {&reg_kind_applicationdeployment, admit_deployment},
    {&reg_kind_component, admit_component},
    {NULL, NULL},
};

int reg_admit(reg_t *r, const reg_kind_t *k, const authz_user_t *u, const char *verb,
              const json_t *old, const json_t *obj, err_t *err)
{
    if (!r->authz)
        return 0;
    size_t i = 0;
    while (admitters[i].kind && admitters[i].kind != k)
        i++;
    if (!admitters[i].kind)
        return 0;
    if (!u)
        return err_set(err, ERR_FORBIDDEN, "%s.%s is forbidden: the write has no user to "
                       "admit it for", k->resource, k->group);
    if (authz_user_in_group(u, "system:masters"))
        return 0;
    if (authz_sync(r->authz, store_revision(r->store), ADMIT_SYNC_MS))
        return err_set(err, ERR_UNAVAILABLE, "the authorizer has not caught up with storage; "
                       "try again");
    const char *name = str(obj ? obj : old, "metadata.name");
    adm_t c = {r, k, u, verb, old, obj, name ? name : "", err};
    return admitters[i].admit(&c);
}
