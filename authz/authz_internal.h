/*
 * authz_internal: what the authorizer's files share. Not for use outside
 * authz/.
 *
 * The index is a set of plain C structures under one read-write lock:
 * readers (decisions) hold it shared; the single watcher thread that
 * applies storage events holds it exclusively for each event. Strings are
 * owned by the structure that holds them.
 */
#ifndef EDGE_AUTHZ_INTERNAL_H
#define EDGE_AUTHZ_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "authz.h"

/* ---- a string -> pointer hash map (open addressing, linear probing) ---- */

/*
 * A map either owns its keys (put copies the key, del and free release it)
 * or borrows them (AUTHZ__MAP_BORROWED: the key handed to put must live as
 * long as its entry, which it does when it is stored in the value itself, as
 * a binding's name or a bucket's key are). A borrowed map also stays
 * between 1/2 and 3/4 full (any capacity, grown by half) where an owning
 * one stays at most 1/2 full (a power of two): the maps that hold one entry
 * per binding are the big ones. An owning map keeps the layout it always
 * had, so iterating it (the templates a selector matches, in slot order)
 * visits entries in the same order, and aggregated rules come out in the
 * same order. Borrowed maps are never iterated.
 */
enum { AUTHZ__MAP_BORROWED = 1 };

typedef struct authz__map {
    size_t cap, n;
    int flags;                   /* AUTHZ__MAP_*; kept by authz__map_free */
    struct authz__map_entry {
        const char *key;
        void *val;
        uint64_t hash;           /* of key, compared before the key is */
    } *e;
} authz__map_t;

void *authz__map_get(const authz__map_t *m, const char *key);
/* Inserts or replaces; returns the value replaced (NULL if none) in *old.
 * A borrowed map stores key itself (also when replacing). 0 or ERR_NOMEM. */
int authz__map_put(authz__map_t *m, const char *key, void *val, void **old);
/* Replaces the value of key, which must be in m, allocating nothing (so an
 * undo cannot fail; a borrowed map stores key itself). Returns the value
 * replaced, or NULL when key is not in m (nothing changes). */
void *authz__map_replace(authz__map_t *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *authz__map_del(authz__map_t *m, const char *key);
/* Frees the entries (free_val, if given, on each value) and leaves the map
 * empty, with its flags, ready for reuse. */
void authz__map_free(authz__map_t *m, void (*free_val)(void *));
#define AUTHZ_MAP_EACH(m, i) for (size_t i = 0; i < (m)->cap; i++) if ((m)->e[i].key)

/* A growable array of pointers (a decision's candidates). */
typedef struct authz__ptrs {
    size_t n, cap;
    void **v;
} authz__ptrs_t;
int authz__ptrs_add(authz__ptrs_t *p, void *v);
void authz__ptrs_free(authz__ptrs_t *p);

/* ---- multi-maps: a key -> the objects filed under it ------------------------ */

#define AUTHZ__BUCKET_INLINE 2

/*
 * The objects under one key of a multi-map, in the order they were added:
 * one allocation holding the count, the key text (which the map borrows)
 * and up to AUTHZ__BUCKET_INLINE pointers in place; past that the pointers
 * move to a heap array, and back in place when they fit again. Most keys
 * of by_scope name one binding, so most buckets are one small block.
 */
typedef struct authz__bucket {
    uint32_t n, cap;             /* cap <= AUTHZ__BUCKET_INLINE: v.in holds them */
    union {
        void *in[AUTHZ__BUCKET_INLINE];
        void **heap;
    } v;
    char key[];
} authz__bucket_t;

static inline void *const *authz__bucket_items(const authz__bucket_t *b)
{
    return b->cap > AUTHZ__BUCKET_INLINE ? b->v.heap : b->v.in;
}

/* m must be a borrowed map. add files v under key (making the bucket; a
 * pointer may be filed twice and is then removed twice); 0 or ERR_NOMEM.
 * remove takes out one v, and the bucket when it empties. get: NULL when
 * nothing is filed under key. */
int authz__multi_add(authz__map_t *m, const char *key, void *v);
void authz__multi_remove(authz__map_t *m, const char *key, void *v);
const authz__bucket_t *authz__multi_get(const authz__map_t *m, const char *key);
/* For authz__map_free on a multi-map. */
void authz__bucket_free(void *b);

/* Joins count strings (a NULL one reads "(null)", as printf would) into
 * buf, cut at n - 1 bytes as snprintf cuts; returns the length written.
 * Keys and reasons are made on every decision, and this is several times
 * quicker than formatting them. AUTHZ__JOIN(buf, n, s1, s2, ...) counts
 * the strings itself. */
size_t authz__join(char *buf, size_t n, const char *const *parts, size_t count);
#define AUTHZ__JOIN(buf, n, ...)                                             \
    authz__join(buf, n, (const char *const[]){__VA_ARGS__},                  \
                sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* ---- rules ------------------------------------------------------------------- */

typedef struct authz__strs {
    size_t n;
    char **v;
} authz__strs_t;

typedef struct authz__rule {
    authz__strs_t verbs, groups, resources, names, urls;
} authz__rule_t;

typedef struct authz__rules {
    size_t n;
    authz__rule_t *v;
} authz__rules_t;

/* Parses a []PolicyRule / []string from JSON (missing: empty). */
int authz__rules_parse(const json_t *arr, authz__rules_t *out);
/* Appends the rules of src that dst does not hold yet (equal: the same
 * lists in the same order). 0 or ERR_NOMEM (dst then holds a prefix of
 * what it would have; the caller discards it). */
int authz__rules_append_unique(authz__rules_t *dst, const authz__rules_t *src);
void authz__rules_free(authz__rules_t *r);
int authz__strs_parse(const json_t *arr, authz__strs_t *out);
int authz__strs_append_unique(authz__strs_t *dst, const authz__strs_t *src);
void authz__strs_free(authz__strs_t *s);
/* The JSON form of a rule (new reference); NULL when out of memory, never
 * a rule with a list cut short. */
json_t *authz__rule_json(const authz__rule_t *r);

/* 1 when rule r allows the request a, by the matching rules stated at the
 * top of rules.c (those of Kubernetes RBAC). */
int authz__rule_matches(const authz__rule_t *r, const authz_attrs_t *a);
/* Index of the first matching rule, or -1. */
int authz__rules_match(const authz__rules_t *r, const authz_attrs_t *a);

/* ---- the index ----------------------------------------------------------------- */

typedef enum {
    AUTHZ__PLATFORM = 0,
    AUTHZ__CLUSTER,
    AUTHZ__WORKSPACE,
    AUTHZ__NODEGROUP,
    AUTHZ__NAMESPACE,
    AUTHZ__NODE,
    AUTHZ__RESOURCE,
    AUTHZ__LEVELS
} authz__level_t;

extern const char *const authz__level_names[AUTHZ__LEVELS];
/* -1 when s names no level. */
int authz__level_parse(const char *s);

/* A place in the chain (borrowed strings). */
typedef struct authz__scope {
    authz__level_t level;
    const char *cluster;
    const char *name;            /* Workspace, NodeGroup, Namespace, Node, or Resource name */
    const char *namespace_;      /* Resource */
    const char *group;           /* Resource */
    const char *resource;        /* Resource */
} authz__scope_t;

typedef struct authz__template {
    char *name;
    json_t *labels;
    unsigned scopes;             /* bit per authz__level_t it may be used at;
                                    0: spec.scopes lists none, any level */
    authz__rules_t rules, deny;
    authz__strs_t ui;
} authz__template_t;

typedef struct authz__role {
    char *name;
    int scope;                   /* spec.scope's authz__level_t; -1: none */
    authz__strs_t refs;
    json_t *selector;            /* metav1.LabelSelector, or NULL */
    authz__rules_t own, own_deny;
    authz__strs_t own_ui;
    /* own + templates', recomputed whenever a template or the role changes */
    authz__rules_t rules, deny;
    authz__strs_t ui;
} authz__role_t;

enum { AUTHZ__USER = 1, AUTHZ__GROUP, AUTHZ__SA };

typedef struct authz__subject {
    int kind;
    const char *name;
    const char *namespace_;      /* ServiceAccount; "" for the others */
} authz__subject_t;

/*
 * An IAMRoleBinding is one allocation: this struct, its subjects, then the
 * text of every non-empty string (empty ones point at a shared ""). There
 * are as many bindings as users times places, so each byte counts.
 */
typedef struct authz__binding {
    const char *name;            /* metadata.name */
    const char *key;             /* the name in its storage key: the bindings
                                    map's (borrowed) key; usually == name */
    const char *role;
    const char *cluster;         /* defaulted to this server's */
    const char *scope_name, *scope_ns, *scope_group, *scope_resource;
    authz__level_t level;        /* AUTHZ__LEVELS: placed nowhere */
    uint32_t nsubjects;
    authz__subject_t subjects[];
} authz__binding_t;

typedef struct authz__workspace {
    char *name;
    size_t nns;
    char **ns_cluster, **ns_name;
} authz__workspace_t;

typedef struct authz__nodegroup {
    char *name;
    char *cluster;
    authz__strs_t nodes;
} authz__nodegroup_t;

typedef struct authz__metrics {
    atomic_ulong decisions[3];   /* by authz_decision_t */
    atomic_ulong buckets[12];    /* latency histogram */
    atomic_ulong sum_ns;
} authz__metrics_t;

struct authz {
    store_t *store;
    char *cluster;
    pthread_rwlock_t lock;
    authz__map_t templates, roles, workspaces, nodegroups;
    /* Borrowed maps (set up by authz__index_start). */
    authz__map_t bindings;       /* binding->key -> binding */
    authz__map_t by_subject;     /* "u:<name>", "g:<name>" -> bucket of bindings */
    authz__map_t by_scope;       /* subject key + scope key -> bucket of bindings */
    authz__map_t ns_ws;          /* "<cluster>/<ns>" -> bucket of workspaces */
    authz__map_t node_ng;        /* "<cluster>/<node>" -> bucket of node groups */
    uint64_t rev;
    /* the follower */
    store_watcher_t *watcher;
    pthread_t thread;
    int running;
    atomic_int stopping;
    atomic_ulong index_errors;   /* authz_index_errors */
    authz__metrics_t metrics;
};

/* Builds the index from a snapshot and starts the follower (index.c). */
int authz__index_start(authz_t *a, err_t *err);
void authz__index_stop(authz_t *a);
void authz__index_free(authz_t *a);

/* Candidate bindings of a user: by name, by each group, and as a service
 * account. Appends to out (borrowed pointers, valid under the read lock).
 * 0, or ERR_NOMEM with out missing some of them: the caller must not
 * decide on it. */
int authz__bindings_of(const authz_t *a, const char *user, const char *const *groups,
                       size_t ngroups, authz__ptrs_t *out);
/* 1 when binding b's subjects include the user. */
int authz__binding_has_subject(const authz__binding_t *b, const char *user,
                               const char *const *groups, size_t ngroups);
/* 1 when binding b is placed exactly at scope s. */
int authz__binding_at(const authz__binding_t *b, const authz__scope_t *s);

/* The bindings of one subject key ("u:<name>" or "g:<name>") placed at
 * scope s, or NULL: the index decisions use, one lookup per (subject,
 * scope), whatever the number of bindings. */
const authz__bucket_t *authz__bindings_at(const authz_t *a, const char *subject,
                                          const authz__scope_t *s);

/* ---- chains and decisions (eval.c) --------------------------------------------- */

/* Long enough for any real chain; Cluster and Platform always fit, and a
 * chain that could not hold every Workspace or NodeGroup is marked so the
 * decision fails closed instead of missing a deny. */
#define AUTHZ__MAX_CHAIN 1024
#define AUTHZ__CHAIN_INLINE 16

/* The scopes a request is looked up at, most specific first: usually a
 * handful, held inline; a namespace listed by many Workspaces grows it on
 * the heap (authz__chain_free releases that). Strings are borrowed from
 * the index and the request: valid under the read lock. */
typedef struct authz__chain {
    size_t n, cap;
    int truncated;               /* a scope did not fit: decide denies */
    int oom;                     /* memory ran out growing it: decide gives
                                    no opinion with an evaluation error */
    authz__scope_t *s;
    authz__scope_t inline_s[AUTHZ__CHAIN_INLINE];
} authz__chain_t;

/* The chain that starts at scope from and goes upward. */
void authz__chain_from_scope(const authz_t *a, const authz__scope_t *from, authz__chain_t *c);
void authz__chain_free(authz__chain_t *c);
/* Sorts a subject's candidate bindings by storage name and drops repeats. */
void authz__candidates_unique(authz__ptrs_t *c);
/* The decision over chain c (deny anywhere wins, else the lowest allow,
 * else no opinion), its reason in reason; trace (optional) gets each
 * scope's bindings and what they did. Caller holds the read lock.
 *
 * An error while deciding (memory ran out collecting a scope's bindings
 * or building the trace) could hide a deny, so it never allows: the
 * decision is AUTHZ_NO_OPINION, the reason begins "no opinion: evaluation
 * error: ", and *error (if not NULL) gets the code (ERR_NOMEM); it is left
 * alone when there is none. */
authz_decision_t authz__decide(const authz_t *a, const char *user, const char *const *groups,
                               size_t ngroups, const authz_attrs_t *at, const authz__chain_t *c,
                               char *reason, size_t reason_len, json_t *trace, int *error);
/* Such an answer for an error of code: the reason, *error (if not NULL),
 * and AUTHZ_NO_OPINION to return. */
authz_decision_t authz__eval_error(int code, char *reason, size_t reason_len, int *error);
/* The scope a binding is placed at (borrowed strings). */
void authz__binding_scope(const authz__binding_t *b, authz__scope_t *s);

/* ---- role aggregation (aggregate.c) -------------------------------------------- */

/*
 * What a role grants once aggregated: its own rules, deny rules and UI
 * permissions, then those of each template in spec.templateRefs (in that
 * order), then those of each other template spec.templateSelector matches
 * (in name order); every rule and permission once, at its first place.
 * A template whose scopes exclude the role's scope adds its deny rules but
 * not its rules or permissions (fail closed: a role never gains an allow
 * by a template not meant for its level, never loses a deny). This is the
 * one computation behind decisions, reviews, admission and the IAMRole
 * status the controller writes.
 */
typedef struct authz__agg {
    authz__rules_t rules, deny;
    authz__strs_t ui;
    authz__strs_t missing;       /* templateRefs naming no template */
    authz__strs_t excluded;      /* templates (named or selected) whose
                                    scopes exclude the role's scope */
} authz__agg_t;

/* Aggregates r over the templates ts[0..n) (sorted by name, borrowed)
 * into g, which must be zeroed. 0, or ERR_NOMEM with g empty: a role with
 * only part of its deny rules must never be filed. */
int authz__aggregate(const authz__role_t *r, const authz__template_t *const *ts, size_t n,
                     authz__agg_t *g);
void authz__agg_free(authz__agg_t *g);
/* The index's templates, sorted by name, in *out (mem_alloc'd array of
 * borrowed pointers, the caller frees it; NULL when there are none).
 * Caller holds the lock. 0 or ERR_NOMEM. */
int authz__templates_sorted(const authz_t *a, const authz__template_t ***out, size_t *n);
/* The aggregated rules of a role in the index's world (r->rules, deny,
 * ui). Caller holds the lock. 0, or ERR_NOMEM with r's aggregated rules as
 * they were. */
int authz__role_aggregate(const authz_t *a, authz__role_t *r);
/* A role built from an IAMRole's name and spec (borrowed), not yet
 * aggregated; NULL when out of memory. authz__role_free releases it. */
authz__role_t *authz__role_from_spec(const char *name, const json_t *spec);
void authz__role_free(authz__role_t *r);
/* A template from a RoleTemplate's name, labels and spec (borrowed); NULL
 * when out of memory. authz__template_free releases it. */
authz__template_t *authz__template_from(const char *name, const json_t *labels,
                                        const json_t *spec);
void authz__template_free(authz__template_t *t);

/* ---- escalation prevention (grant.c) -------------------------------------------- */

/* One verb on one API group, resource and at most one name, or one verb
 * on one non-resource URL: a rule broken down as RBAC's BreakdownRule
 * does. Borrowed strings. */
typedef struct authz__subrule {
    const char *verb, *group, *resource, *name, *url;
} authz__subrule_t;

/* RBAC's ruleCovers: owner allows everything s does. */
int authz__rule_covers(const authz__rule_t *owner, const authz__subrule_t *s);
/* deny could deny some request that s allows (wildcards, subresources,
 * names and URL prefixes taken into account). */
int authz__rule_overlaps(const authz__rule_t *deny, const authz__subrule_t *s);
/* RBAC's Covers, less what deny rules overlap: 1 when every subrule of
 * want is covered by a rule of the allow sets and overlaps no rule of the
 * deny sets; 0 with *missing (mem_alloc'd, the caller's) the subrules not
 * held, compacted and sorted as kube's escalation message lists them, one
 * per line; ERR_NOMEM. */
int authz__rules_cover(const authz__rules_t *const *allow, size_t nallow,
                       const authz__rules_t *const *deny, size_t ndeny,
                       const authz__rules_t *want, char **missing);

/* A SubjectAccessReview's decision (the webhook's rules: no special case
 * for this server's own API), counted in the metrics (eval.c). *error as
 * authz__decide sets it: the review's evaluationError. */
authz_decision_t authz__review_decide(authz_t *a, const authz_user_t *u, const authz_attrs_t *at,
                                      char *reason, size_t reason_len, int *error);

#endif
