/*
 * authz: every authorization decision of the server, and the answers to
 * kube-apiserver's SubjectAccessReview webhook, AccessReview and
 * PermissionReview.
 *
 * Owns an in-memory index of the IAM and scope objects (RoleTemplates,
 * IAMRoles with their aggregated rules, IAMRoleBindings by subject,
 * namespace -> Workspaces, node -> NodeGroups), kept current by one
 * watcher on storage: a change is reflected in decisions as soon as its
 * event is applied, well under a second. Decisions never read storage.
 * A change the index cannot take in (memory ran out) leaves the object
 * as it was, never half applied or dropped, and is retried by rebuilding
 * the index (authz_index_errors).
 *
 * The decision (see eval.c for how the chain is walked):
 *   - members of system:masters may do anything;
 *   - otherwise the request is placed at its most specific scope and the
 *     chain is walked upward (Resource -> Namespace -> Workspace -> Cluster
 *     -> Platform; Node -> NodeGroup -> Cluster -> Platform; a binding
 *     at the scope it binds at; ...). A deny
 *     rule of any binding of the subject anywhere in the chain denies; else
 *     the first scope with a matching allow rule allows; else no opinion.
 * Rules match exactly as Kubernetes RBAC matches them (rules.c).
 * An error while deciding (memory ran out) never allows: the answer is
 * no opinion, with "evaluation error" in the reason (and a review's
 * evaluationError), as kube's authorizers report one.
 *
 * Thread safety: authz_authorize and the reviews run concurrently with
 * each other and with the index's updates (a read-write lock).
 */
#ifndef EDGE_AUTHZ_H
#define EDGE_AUTHZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../storage/store.h"

#define AUTHZ_MAX_GROUPS 256
#define AUTHZ_MAX_GROUP_LEN 256
#define AUTHZ_MAX_EXTRA 16
#define AUTHZ_MAX_EXTRA_KEY 128      /* longer keys and values are cut */
#define AUTHZ_MAX_EXTRA_VALUE 256
#define AUTHZ_USER_TEXT 8192         /* the groups' and extras' text, NULs included */

/* An authenticated (or anonymous) user, as SubjectAccessReview carries it.
 * Groups and extra values live in one text area of AUTHZ_USER_TEXT bytes
 * (about 9 KB in all, where a slot per group of the longest length would
 * take 72 KB); read them through authz_user_group and authz_user_extra_*.
 * Plain data: copy it with authz_user_copy, no release needed. */
typedef struct authz_user {
    char name[256];
    char uid[128];
    size_t ngroups, nextra;
    int overflow;                /* a group did not fit: decisions fail closed */
    size_t used;                 /* bytes of text in use */
    uint16_t group[AUTHZ_MAX_GROUPS];
    struct {
        uint16_t key, value;
    } extra[AUTHZ_MAX_EXTRA];
    char text[AUTHZ_USER_TEXT];
} authz_user_t;

/* Empties u / copies s to d, touching only the parts in use. */
void authz_user_reset(authz_user_t *u);
void authz_user_copy(authz_user_t *d, const authz_user_t *s);

/* Adds a group unless already present. A group that does not fit (past
 * AUTHZ_MAX_GROUPS, longer than AUTHZ_MAX_GROUP_LEN - 1, or past the text
 * area) sets u->overflow instead of being dropped silently: a deny rule
 * bound to it could otherwise be missed, so the authorizer then denies. */
void authz_user_add_group(authz_user_t *u, const char *group);
int authz_user_in_group(const authz_user_t *u, const char *group);
/* The i-th group (i < u->ngroups), borrowed from u. */
const char *authz_user_group(const authz_user_t *u, size_t i);
/* Adds one extra value under key (cut to AUTHZ_MAX_EXTRA_KEY - 1 and
 * AUTHZ_MAX_EXTRA_VALUE - 1 bytes). Extras only travel to kube-apiserver's
 * reviews, no decision here reads them: past AUTHZ_MAX_EXTRA values or the
 * text area one is dropped, and -1 says so; 0 when added. */
int authz_user_add_extra(authz_user_t *u, const char *key, const char *value);
/* The i-th extra's key and value (i < u->nextra), borrowed from u. */
const char *authz_user_extra_key(const authz_user_t *u, size_t i);
const char *authz_user_extra_value(const authz_user_t *u, size_t i);
/* u's groups as a JSON array and its extra as an object of arrays (the
 * shapes UserInfo and SubjectAccessReview use); new references, NULL when
 * out of memory. */
json_t *authz_user_groups_json(const authz_user_t *u);
json_t *authz_user_extra_json(const authz_user_t *u);

/* What a request does (the attributes kube-apiserver's authorizers are
 * given), plus the label-selector requirement that narrows a list of
 * nodes or namespaces to a NodeGroup or Workspace. */
typedef struct authz_attrs {
    const char *verb;            /* get, list, watch, create, ... */
    int resource_request;
    const char *path;            /* non-resource requests */
    const char *api_group;
    const char *api_version;
    const char *resource;
    const char *subresource;
    const char *namespace_;
    const char *name;
    const char *cluster;         /* member cluster; NULL: this server's */
    /* A list's label selector requirement scope.theriseunion.io/<level>=X
     * (authz_attrs_scope_label): narrows a list of nodes to a NodeGroup,
     * of namespaces to a Workspace, of IAMRoleBindings to any scope. */
    const char *nodegroup;
    const char *workspace;
    const char *sel_cluster;
    const char *sel_namespace;
    const char *sel_node;
} authz_attrs_t;

/* The label keys the server sets on every IAMRoleBinding (its scope), and
 * that place a list or watch carrying them in its label selector. */
#define AUTHZ_LABEL_PREFIX "scope.theriseunion.io/"

/* Reads one requirement key=value of a list's label selector into at's
 * selector fields when key is one of the scope labels; other keys are
 * ignored. value is borrowed for as long as at is used. */
void authz_attrs_scope_label(authz_attrs_t *at, const char *key, const char *value);

typedef enum { AUTHZ_NO_OPINION = 0, AUTHZ_ALLOW = 1, AUTHZ_DENY = 2 } authz_decision_t;

typedef struct authz authz_t;

/* Builds the index from storage (a consistent snapshot) and starts
 * following it. cluster_name is this server's --cluster-name. Returns 0,
 * ERR_NOMEM, or a storage error. *out is the caller's (authz_free). */
int authz_new(store_t *store, const char *cluster_name, authz_t **out, err_t *err);
/* Stops following storage; call before store_close. NULL is a no-op. */
void authz_free(authz_t *a);

/* Decides; reason (may be NULL) receives a sentence a person can act on,
 * e.g. "allowed by IAMRoleBinding alice-ws1 (IAMRole viewer) at Workspace
 * ws1". Cannot fail: an error inside the decision is AUTHZ_NO_OPINION
 * with the error in reason. */
authz_decision_t authz_authorize(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                 char *reason, size_t reason_len);

/* The webhook: a SubjectAccessReview (v1 or v1beta1, as JSON) for
 * cluster (NULL: this server's). Returns 0 and *out, the review with its
 * status, in the version asked (new reference), with evaluationError when
 * an error made the decision no opinion; ERR_BAD_REQUEST for a malformed
 * review, ERR_NOMEM. */
int authz_subject_access_review(authz_t *a, const json_t *sar, const char *cluster,
                                json_t **out, err_t *err);

/* The same review given as JSON text: *out is the answer as JSON text
 * (mem_alloc'd, the caller's; *out_len bytes). Reads the text in place,
 * falling back to authz_subject_access_review for any text it cannot;
 * both answer alike. ERR_BAD_REQUEST (a message jansson words, for text
 * that is not JSON) or ERR_NOMEM. Thread-safe. */
int authz_subject_access_review_text(authz_t *a, const char *body, size_t len,
                                     const char *cluster, char **out, size_t *out_len,
                                     err_t *err);

/* AccessReview: fills obj's status (allowed, denied, reason, trace, and
 * evaluationError when an error made the decision no opinion). 0,
 * ERR_INVALID (a malformed spec) or ERR_NOMEM. */
int authz_access_review(authz_t *a, json_t *obj, err_t *err);
/* PermissionReview: fills obj's status with the rules and UI permissions
 * in effect at spec.scope, each with the binding and scope it comes from.
 * 0, ERR_INVALID (no level) or ERR_NOMEM (never a list short of a rule). */
int authz_permission_review(authz_t *a, json_t *obj, err_t *err);

/* ---- admission (grant.c): what registry's admission step asks --------------- */

/* A ScopeRef, the place an IAMRoleBinding's spec.scope names, as an object
 * spells it: level (Platform, Cluster, Workspace, NodeGroup, Namespace,
 * Node or Resource), cluster, name (of the Workspace, NodeGroup,
 * Namespace, Node or object), and for a Resource its namespace, API group
 * and resource. Borrowed strings, NULL or "" where absent (cluster: this
 * server's). */
typedef struct authz_scope_ref {
    const char *level, *cluster, *name, *namespace_, *group, *resource;
} authz_scope_ref_t;

/* The decision for at placed at ref and looked up upward from there,
 * rather than where at itself would be placed (`bind` on a role at a
 * binding's scope; `create` of a binding at its own scope). An unknown
 * level is no opinion. Thread-safe. */
authz_decision_t authz_authorize_at(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                    const authz_scope_ref_t *ref, char *reason, size_t reason_len);

/* Escalation prevention (RBAC's ConfirmNoEscalation): whether u already
 * holds, at ref, every rule of rules (a JSON []PolicyRule): each must be
 * covered by an allow rule of u's bindings at ref or above it, and overlap
 * no deny rule of u's bindings there or below it. Returns 1 when held; 0
 * when not, with *missing (mem_alloc'd, the caller's; NULL when the scope
 * itself could not be evaluated) the rules not held, one per line in kube's
 * compact form; ERR_NOMEM. Thread-safe. */
int authz_covers(authz_t *a, const authz_user_t *u, const authz_scope_ref_t *ref,
                 const json_t *rules, char **missing);

/* ---- role aggregation (aggregate.c) ------------------------------------------- */

/* An IAMRole's aggregation, as its status spells it (new references, the
 * caller's; authz_role_agg_free): rules, deny and ui are aggregatedRules,
 * aggregatedDenyRules and aggregatedUIPermissions; missing the names in
 * spec.templateRefs that name no template; excluded the templates (named
 * or selected) whose spec.scopes exclude the role's spec.scope, which
 * give it their deny rules only. */
typedef struct authz_role_agg {
    json_t *rules, *deny, *ui, *missing, *excluded;
} authz_role_agg_t;

/* Aggregates role (an IAMRole object) over templates[0..n) (every
 * RoleTemplate there is, in any order; borrowed) by the computation the
 * authorizer files roles with: own rules, then each template named in
 * templateRefs in that order, then each other template templateSelector
 * matches in name order, every rule and permission once at its first
 * place. 0, or ERR_NOMEM with *out empty. Pure: thread-safe. */
int authz_role_aggregation(const json_t *role, const json_t *const *templates, size_t n,
                           authz_role_agg_t *out, err_t *err);
void authz_role_agg_free(authz_role_agg_t *g);

/* What IAMRole name grants, aggregated as decisions aggregate it: *rules
 * and *deny are new references ([]PolicyRule). ERR_NOT_FOUND, ERR_NOMEM. */
int authz_role_rules(authz_t *a, const char *name, json_t **rules, json_t **deny);
/* The same for an IAMRole with a proposed spec (borrowed), against the
 * RoleTemplates stored now. ERR_NOMEM. */
int authz_role_spec_rules(authz_t *a, const char *name, const json_t *spec, json_t **rules,
                          json_t **deny);

/* Waits until the index reflects storage revision rev, so a check sees
 * every write committed before it; 0, or ERR_TIMEOUT after timeout_ms. */
int authz_sync(authz_t *a, uint64_t rev, unsigned timeout_ms);

/* Decision counters, a latency histogram and the index's errors, in
 * Prometheus text format, appended to *buf (*len bytes; grown with
 * mem_realloc, the caller's). 0, or ERR_NOMEM with *buf as it was. */
int authz_metrics(authz_t *a, char **buf, size_t *len);

/* The revision of storage the index reflects. */
uint64_t authz_revision(authz_t *a);

/* How many times the index could not take in a change of storage, and
 * kept the last good state of what it holds instead: an IAM or scope
 * object it could not build or file (memory ran out), or a rebuild that
 * failed. After each, the follower stops applying changes and rebuilds
 * the whole index from a snapshot, after 50 ms and then twice as long
 * after each failed rebuild (at most 5 s), until one succeeds; meanwhile
 * decisions use the last good state, and authz_revision stays where it
 * was, so authz_sync times out rather than let admission judge by a state
 * storage has moved past. A counter (it only grows), for /metrics.
 * Thread-safe. */
unsigned long authz_index_errors(const authz_t *a);

#endif
