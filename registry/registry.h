/*
 * registry: the API's kinds and the generic REST strategy that serves them.
 *
 * Owns the table of kinds (one file per kind, reg_kind_<name>.c, and one
 * row in kinds.c) and every rule kube-apiserver's generic registry applies
 * to objects: names, uid, creationTimestamp, generation, resourceVersion,
 * the status subresource, optimistic concurrency, the patch formats,
 * server-side apply, finalizers, dry run, field validation, selectors,
 * paging, watch translation, and Table rendering.
 *
 * It calls storage/, lib/, apimachinery/ and authz/ (for admission); it knows
 * nothing of HTTP: every function takes decoded arguments and returns 0 or
 * a negative ERR_* code with an err_t the caller turns into a Status.
 *
 * Objects are stored as their JSON without metadata.resourceVersion, under
 * kube-apiserver's key layout, "/<group>/<resource>[/<namespace>]/<name>";
 * resourceVersion is set from the store's mod_rev whenever an object is
 * read. All returned json_t are new references the caller owns.
 *
 * Errors (the REST functions below: reg_get .. reg_watch_next). Each
 * returns 0 or one of these, with err worded as kube-apiserver words it:
 *   ERR_NOT_FOUND        no such object (404)
 *   ERR_ALREADY_EXISTS   create of a name in use (409)
 *   ERR_CONFLICT         a resourceVersion or uid precondition failed, or
 *                        an apply conflicts with other managers (409)
 *   ERR_INVALID          the object breaks the schema or a kind's rule;
 *                        one err cause per field (422)
 *   ERR_BAD_REQUEST      a malformed body, patch, selector, option or
 *                        continue token (400)
 *   ERR_UNSUPPORTED_MEDIA, ERR_REQUEST_TOO_LARGE  a patch type or size
 *                        kube refuses (415, 413)
 *   ERR_FORBIDDEN        admission refused the write (403; reg_admit)
 *   ERR_EXPIRED          a continue token or resourceVersion older than the
 *                        kept history (410)
 *   ERR_TOO_LARGE_RV     a resourceVersion not reached yet (504)
 *   ERR_METHOD_NOT_ALLOWED  the kind does not serve the verb (a review
 *                        read, a status write of a kind without status)
 *   ERR_UNAVAILABLE      the authorizer could not catch up with storage,
 *                        or storage is closing (503)
 *   ERR_NOMEM, ERR_IO, ERR_STORAGE_FULL, ERR_INTERNAL  the server's own
 *                        failures (500, 507). A write never stores part
 *                        of an object; one that fails this way after its
 *                        commit (building the reply ran out of memory)
 *                        stays committed, as a lost reply would.
 *
 * Thread safety: all functions may be called concurrently.
 */
#ifndef EDGE_REGISTRY_H
#define EDGE_REGISTRY_H

#include <jansson.h>
#include <stdint.h>

#include "../authz/authz.h"
#include "../lib/err.h"
#include "../storage/store.h"
#include "../apimachinery/patch.h"

/* A printer column between NAME and AGE. cell returns a new reference (a
 * string or integer), or NULL for an empty cell. */
typedef struct reg_column {
    const char *name;
    const char *type;            /* string, integer, date */
    int priority;                /* 0: always; 1: -o wide */
    const char *description;
    json_t *(*cell)(const json_t *obj);
} reg_column_t;

typedef struct reg reg_t;

/*
 * A field value no two objects of a kind may share (an ApplicationVersion's
 * spec.version within its application). The object's claim on it is a key
 * of its own, under a prefix no kind serves (so no list, watch, informer
 * or the authorizer's follower sees it), taken with the store's atomic
 * create before the object is stored; that makes the rule hold under
 * concurrent writes, with no read-then-write race. unique.c keeps it:
 *   - create, and an update that moves the object to another claim, take
 *     the new claim first and give it back when the object's write fails;
 *   - the old claim goes once the object is deleted (finalizers done) or
 *     stored with another; dry run only checks;
 *   - a claim whose holder is gone or holds another (a crash between the
 *     two writes, a release that failed) is taken over with a
 *     compare-and-swap once REG_UNIQUE_GRACE_S old: younger, its holder
 *     may still be on its way to storage.
 * A claim taken already is 422 FieldValueDuplicate on field, naming the
 * object that holds it.
 */
#define REG_UNIQUE_GRACE_S 30
typedef struct reg_unique {
    const char *field;           /* the unique field, "spec.version" */
    /* The claim's storage key of obj into buf (n bytes): 1, or 0 when obj
     * claims nothing (the field absent or invalid: validation says so). */
    int (*key)(const json_t *obj, char *buf, size_t n);
} reg_unique_t;

typedef struct reg_kind {
    const char *group;
    const char *version;
    const char *resource;        /* plural, lower case */
    const char *singular;
    const char *kind;
    /* What an object of the kind is, for people: the description of the
     * kind's schema, which kubectl explain <kind> prints. */
    const char *description;
    int namespaced;
    const char *const *short_names;  /* NULL-terminated, may be NULL */
    int has_status;              /* a status subresource exists */
    int create_only;             /* a review: never stored */
    const patch_list_rule_t *list_rules;
    const reg_column_t *columns; /* ends with {NULL} */
    /* OpenAPI v3 schemas (JSON text) of spec and status, used for
     * discovery of fields (explain), pruning unknown fields, and type,
     * enum and required checks. Every property has a description (what
     * it means, its values and default; for status, what writes it),
     * built with reg_internal.h's REG_S_DESC_* fragments. */
    const char *spec_schema;
    const char *status_schema;
    /* Optional semantic checks beyond the schema: add causes to err (the
     * caller turns any cause into ERR_INVALID). old is NULL on create. */
    void (*validate)(const json_t *obj, const json_t *old, err_t *err);
    /* For create_only kinds: fills obj's status. */
    int (*review)(reg_t *reg, json_t *obj, err_t *err);
    /* Optional: fields the server sets on every write, before validation
     * (cluster: this server's --cluster-name). 0, or ERR_NOMEM in err:
     * the write then fails, as obj may be half prepared. */
    int (*prepare)(json_t *obj, const char *cluster, err_t *err);
    /* Optional: what the server adds to a new object only (a create, and
     * an apply that creates), after prepare and before validation, so no
     * reader ever sees the object without it (a Cluster's cleanup
     * finalizer). Later writes may remove it. 0 or ERR_NOMEM. */
    int (*on_create)(json_t *obj);
    /* Optional: a field unique across the kind's objects (above). */
    const reg_unique_t *unique;
} reg_kind_t;

/* Every kind, NULL-terminated, and the groups they form. */
extern const reg_kind_t *const reg_kinds[];
extern const char *const reg_groups[];   /* NULL-terminated */
#define REG_VERSION "v1alpha1"

/* The kind served at group/version/resource; NULL if none. */
const reg_kind_t *reg_find(const char *group, const char *version,
                           const char *resource);

/* The kind's parsed OpenAPI v3 object schema in *out (borrowed, kept for
 * the life of the process): {type: object, description: the kind's,
 * properties: {apiVersion, kind, metadata, spec, status}}, every property
 * documented. Built on first use; a build that runs out of memory keeps
 * nothing and is ERR_NOMEM for its caller, and the next call builds
 * again: there is never "no schema". ERR_INTERNAL for a kind not in
 * reg_kinds. Thread-safe. */
int reg_schema(const reg_kind_t *k, const json_t **out, err_t *err);

/* ---- the registry ----------------------------------------------------- */

/* Hook the authorizer installs to answer create_only reviews; NULL until
 * it does. */
typedef int (*reg_review_fn)(void *arg, const reg_kind_t *k, json_t *obj,
                             err_t *err);

/* Hook main installs to ask kube-apiserver (a SubjectAccessReview through
 * --authorization-kubeconfig) whether u may do at in this server's own
 * cluster: 0 and *allowed, or an error (the check then fails closed). */
typedef int (*reg_delegate_fn)(void *arg, const authz_user_t *u, const authz_attrs_t *at,
                               int *allowed, err_t *err);

struct reg {
    store_t *store;
    reg_review_fn review;
    void *review_arg;
    /* The admission step (admission.c) asks the authorizer; NULL turns
     * admission off, which only tests of the REST strategy alone do. */
    authz_t *authz;
    const char *cluster;         /* --cluster-name; NULL: "host" */
    reg_delegate_fn delegate;    /* NULL: no delegated authorization */
    void *delegate_arg;
};

/* ---- requests ----------------------------------------------------------- */

enum { REG_FV_WARN = 0, REG_FV_STRICT, REG_FV_IGNORE };

/* Options of a write. */
typedef struct reg_write_opts {
    int dry_run;
    int field_validation;        /* REG_FV_* */
    const char *field_manager;   /* NULL: derived ("unknown") */
    int force;                   /* apply */
    const char *user_agent;      /* for the default field manager */
    const authz_user_t *user;    /* who writes: admission judges by it */
} reg_write_opts_t;

/* What a write hands back besides the object: warnings (for Warning
 * headers) and whether it created. */
#define REG_MAX_WARNINGS 8
typedef struct reg_outcome {
    int created;                 /* 201 instead of 200 */
    int accepted;                /* 202: deletion pending finalizers */
    int want_body;               /* in: also produce body */
    char *body;                  /* the written object as JSON text, made
                                    from the stored bytes, or NULL; the
                                    caller frees it with mem_free */
    size_t body_len;
    int nwarnings;
    char warnings[REG_MAX_WARNINGS][256];
} reg_outcome_t;

typedef struct reg_list_opts {
    const char *label_selector;
    const char *field_selector;
    size_t limit;
    const char *continue_token;
    const char *resource_version;       /* "" / "0" / "N" */
    const char *resource_version_match; /* "", "Exact", "NotOlderThan" */
} reg_list_opts_t;

typedef struct reg_delete_opts {
    int dry_run;
    const char *precondition_uid;
    const char *precondition_rv;
    const char *propagation_policy;
    long grace_period_seconds;   /* -1 when not given */
    const authz_user_t *user;    /* who deletes: admission judges by it */
} reg_delete_opts_t;

int reg_get(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
            json_t **out, err_t *err);
/* The same answers as reg_get and reg_list, as JSON text (caller frees
 * with mem_free), built from the stored bytes without decoding them: the
 * fast path when the client wants plain JSON. */
int reg_get_raw(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                char **body, size_t *len, err_t *err);
int reg_list_raw(reg_t *r, const reg_kind_t *k, const char *ns,
                 const reg_list_opts_t *o, char **body, size_t *len, err_t *err);
/* The list as a meta.k8s.io Table of api_version (v1 or v1beta1), rows
 * with include ("None", "Metadata" when NULL or empty, "Object"), as JSON
 * text: each object becomes its row as it is read, so a large list holds
 * one decoded object at a time, not the collection. */
int reg_list_table_raw(reg_t *r, const reg_kind_t *k, const char *ns,
                       const reg_list_opts_t *o, const char *api_version,
                       const char *include, char **body, size_t *len, err_t *err);
/* ns NULL or "" lists every namespace. Returns the <Kind>List, whole: an
 * allocation failure anywhere is ERR_NOMEM and no list. */
int reg_list(reg_t *r, const reg_kind_t *k, const char *ns,
             const reg_list_opts_t *o, json_t **out, err_t *err);
int reg_create(reg_t *r, const reg_kind_t *k, const char *ns, const json_t *body,
               const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc,
               err_t *err);
/* reg_create taking over the caller's reference to body (no copy):
 * afterwards the caller must not use or release body. */
int reg_create_owned(reg_t *r, const reg_kind_t *k, const char *ns, json_t *body,
                     const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc,
                     err_t *err);
/* PUT. status: the /status subresource. */
int reg_update(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
               const json_t *body, int status, const reg_write_opts_t *o,
               json_t **out, reg_outcome_t *oc, err_t *err);
/* PATCH with the body's content type: application/json-patch+json,
 * application/merge-patch+json, application/strategic-merge-patch+json,
 * application/apply-patch+yaml (JSON, which kubectl sends, or YAML).
 * ERR_UNSUPPORTED_MEDIA for others, ERR_REQUEST_TOO_LARGE for a JSON
 * patch of more than REG_MAX_JSON_PATCH_OPS operations. */
#define REG_MAX_JSON_PATCH_OPS 10000
int reg_patch(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
              const char *content_type, const char *body, size_t len,
              int status, const reg_write_opts_t *o, json_t **out,
              reg_outcome_t *oc, err_t *err);
int reg_delete(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
               const reg_delete_opts_t *o, json_t **out, reg_outcome_t *oc,
               err_t *err);
/* Deletes what the list options select; returns the list of deleted (or
 * deletion-pending) objects. Success means every selected object was
 * deleted (or is pending); the first failure is returned instead, with
 * what was deleted before it staying deleted, as in kube. */
int reg_delete_collection(reg_t *r, const reg_kind_t *k, const char *ns,
                          const reg_list_opts_t *lo, const reg_delete_opts_t *o,
                          json_t **out, err_t *err);

/* Parses a request body as JSON (objects only, duplicate keys follow
 * fieldValidation: Strict rejects, others warn), bounded in depth. */
int reg_decode_body(const char *body, size_t len, int field_validation,
                    json_t **out, reg_outcome_t *oc, err_t *err);

/* ---- watch --------------------------------------------------------------- */

typedef struct reg_watch reg_watch_t;

typedef struct reg_watch_opts {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version;   /* "" or "0": synthetic ADDED first */
    int send_initial_events;        /* sendInitialEvents=true */
    int allow_bookmarks;
    store_notify_fn notify;
    void *notify_arg;
} reg_watch_opts_t;

int reg_watch_open(reg_t *r, const reg_kind_t *k, const char *ns,
                   const reg_watch_opts_t *o, reg_watch_t **out, err_t *err);
/* The next event as {"type": ..., "object": ...} (new reference) in *ev:
 * 0; ERR_TIMEOUT when none is ready; any other code is final, and *ev is
 * then the ERROR event to send (or NULL when the stream should just end). */
int reg_watch_next(reg_watch_t *w, json_t **ev, err_t *err);
/* A BOOKMARK event at the watcher's progress, NULL if nothing new since
 * the last one. */
json_t *reg_watch_bookmark(reg_watch_t *w);
void reg_watch_close(reg_watch_t *w);

/* ---- admission ------------------------------------------------------------ */

/*
 * The admission step (admission.c), between authorization and storage on
 * every write path (create, update, each patch type, apply, /status, and
 * dry run alike): what a write would change in who may do what is checked
 * against what its author already may do, as Kubernetes RBAC's escalation
 * prevention does. system:masters skips it.
 *   IAMRoleBinding  create/update: `create` (or the update verb) at the new
 *                   binding's own scope when that is not where the request
 *                   was authorized, and `bind` on the role there or every
 *                   rule of the role already held there; roleRef is
 *                   immutable; deleting or changing a binding whose role
 *                   has deny rules needs `bind`.
 *   IAMRole, RoleTemplate  create/update/relabel: `escalate` on it, or
 *                   every rule it would grant held at Platform; dropping
 *                   deny rules (deleting, changing, relabelling a template
 *                   out of a selector) needs `escalate`.
 *   Workspace, NodeGroup  a namespace, node or cluster joins only when the
 *                   author may `update` it (the namespace or node in that
 *                   cluster; the Cluster), by this authorizer or, for this
 *                   server's own cluster, kube-apiserver's.
 *   ApplicationDeployment  `use` on each topology's NodeGroup.
 *   Component       `use` on its Cluster.
 * verb is create, update, patch, delete or deletecollection (as the
 * request was authorized); old is NULL on create, obj NULL
 * on delete. 0 when admitted; ERR_FORBIDDEN (a message naming what was
 * missing), ERR_NOT_FOUND (a binding's role), ERR_UNAVAILABLE (the
 * authorizer could not catch up with storage) or ERR_NOMEM otherwise.
 */
int reg_admit(reg_t *r, const reg_kind_t *k, const authz_user_t *u, const char *verb,
              const json_t *old, const json_t *obj, err_t *err);

/* ---- output --------------------------------------------------------------- */

/* A meta.k8s.io Table (v1 or v1beta1) of an object or a list. include:
 * "None", "Metadata" (default), "Object". NULL when out of memory (never
 * a Table missing rows or cells). */
json_t *reg_table(const reg_kind_t *k, const json_t *obj_or_list,
                  const char *api_version, const char *include);

/* Discovery: the APIResourceList of group/version, the APIGroup, and the
 * aggregated APIGroupDiscoveryList (v2 or v2beta1). A new reference the
 * caller owns, or NULL when out of memory: never a list with an entry or
 * a field left out. */
json_t *reg_resource_list(const char *group);
json_t *reg_api_group(const char *group);
json_t *reg_api_group_list(void);
json_t *reg_discovery_v2(const char *api_version);

/* OpenAPI: the v3 document of one group/version, and the v2 document of
 * everything. NULL when out of memory, a schema's build included: never a
 * document without a kind's definition. */
json_t *reg_openapi_v3(const char *group);
json_t *reg_openapi_v2(void);

/* A metav1.Status for err (code, reason, message, details with causes). */
json_t *reg_status(const err_t *err, const reg_kind_t *k, const char *name);

/* Turns the field causes collected in err into one Invalid error (422)
 * worded as kube's NewInvalid: `<Kind>.<group> "<name>" is invalid:
 * <field>: <message>`, several in brackets. k may be an options kind
 * (CreateOptions.meta.k8s.io, ...) with name "". Returns ERR_INVALID, or
 * 0 when err holds no cause. */
int reg_invalid(const reg_kind_t *k, const char *name, err_t *err);

/* Go's encoding/json name for v's JSON type ("string", "number", "bool",
 * "array", "object", "null"), as its decoding errors word it. */
const char *reg_json_go_type(const json_t *v);

#endif
