/*
 * reg_internal: what the registry's files share: schema fragments the
 * kinds are built from, and helpers for printer-column cells. Not for use
 * outside registry/.
 */
#ifndef EDGE_REG_INTERNAL_H
#define EDGE_REG_INTERNAL_H

#include <jansson.h>

#include "registry.h"

/* ---- schema fragments (OpenAPI v3 JSON text) ---------------------------- */

/*
 * A kind's schema is JSON text built from these fragments, and every field
 * carries its documentation where it is declared: kubectl explain shows the
 * "description" of each property (OpenAPI v3 and v2 documents, discovery.c)
 * and unit tests fail on a property without one. The REG_S_DESC_* macros
 * take the description d as a string literal written as JSON string text:
 * no double quote or backslash unless escaped for JSON ('single quotes'
 * need nothing). Descriptions, formats other than byte and patterns are
 * documentation only: the schema walk (validate.c) checks type, format
 * byte, enum and required, nothing else.
 */

/* Undocumented scalars, for array items and map values only. */
#define REG_S_STR "{\"type\":\"string\"}"
#define REG_S_INT "{\"type\":\"integer\",\"format\":\"int64\"}"
#define REG_S_BOOL "{\"type\":\"boolean\"}"
#define REG_S_ANY "{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true}"

#define REG_S_D_(d) "\"description\":\"" d "\""

#define REG_S_DESC_STR(d) "{\"type\":\"string\"," REG_S_D_(d) "}"
#define REG_S_DESC_INT(d) "{\"type\":\"integer\",\"format\":\"int64\"," REG_S_D_(d) "}"
#define REG_S_DESC_INT32(d) "{\"type\":\"integer\",\"format\":\"int32\"," REG_S_D_(d) "}"
#define REG_S_DESC_BOOL(d) "{\"type\":\"boolean\"," REG_S_D_(d) "}"
/* RFC 3339 date and time. */
#define REG_S_DESC_TIME(d) "{\"type\":\"string\",\"format\":\"date-time\"," REG_S_D_(d) "}"
/* Standard base64 (checked: format byte). */
#define REG_S_DESC_BYTES(d) "{\"type\":\"string\",\"format\":\"byte\"," REG_S_D_(d) "}"
/* A string with a pattern (an ECMA 262 regular expression as JSON string
 * text) that documents a check the kind's own validation makes. */
#define REG_S_DESC_PATTERN(d, re) "{\"type\":\"string\"," REG_S_D_(d) ",\"pattern\":\"" re "\"}"
/* A string of the listed values (JSON strings, comma-separated); checked. */
#define REG_S_DESC_ENUM(d, values) "{\"type\":\"string\"," REG_S_D_(d) ",\"enum\":[" values "]}"
/* Free-form JSON object, kept as sent. */
#define REG_S_DESC_ANY(d) \
    "{\"type\":\"object\"," REG_S_D_(d) ",\"x-kubernetes-preserve-unknown-fields\":true}"
#define REG_S_DESC_STRS(d) "{\"type\":\"array\"," REG_S_D_(d) ",\"items\":" REG_S_STR "}"
/* A list of unique strings, merged as a set by apply. */
#define REG_S_DESC_SET(d) \
    "{\"type\":\"array\"," REG_S_D_(d) ",\"x-kubernetes-list-type\":\"set\",\"items\":" REG_S_STR "}"
#define REG_S_DESC_ARRAY(d, items) "{\"type\":\"array\"," REG_S_D_(d) ",\"items\":" items "}"
/* A map of string keys to values of schema value. */
#define REG_S_DESC_MAP(d, value) \
    "{\"type\":\"object\"," REG_S_D_(d) ",\"additionalProperties\":" value "}"
/* An object: props is the text of its properties ("\"a\":...,\"b\":..."),
 * req the JSON strings of its required ones. */
#define REG_S_DESC_OBJ(d, props) "{\"type\":\"object\"," REG_S_D_(d) ",\"properties\":{" props "}}"
#define REG_S_DESC_OBJ_REQ(d, req, props) \
    "{\"type\":\"object\"," REG_S_D_(d) ",\"required\":[" req "],\"properties\":{" props "}}"

/* status.observedGeneration, written with every status a controller writes
 * (ctrl_write_status); who writes it is named in ctrl. */
#define REG_S_OBSERVED_GENERATION(ctrl)                                            \
    REG_S_DESC_INT("The metadata.generation the " ctrl " controller last acted on; "  \
                   "status describes an older spec while it is below metadata.generation.")

#define REG_S_LEVELS "\"Platform\",\"Cluster\",\"Workspace\",\"NodeGroup\",\"Namespace\",\"Node\",\"Resource\""

/* Kubernetes RBAC's PolicyRule, in its own words. */
#define REG_S_POLICY_RULE                                                          \
    REG_S_DESC_OBJ_REQ(                                                            \
        "PolicyRule holds information that describes a policy rule, but does not contain " \
        "information about who the rule applies to or which namespace the rule applies to.", \
        "\"verbs\"",                                                               \
        "\"verbs\":" REG_S_DESC_STRS("Verbs is a list of Verbs that apply to ALL the ResourceKinds " \
            "contained in this rule. '*' represents all verbs.") ","               \
        "\"apiGroups\":" REG_S_DESC_STRS("APIGroups is the name of the APIGroup that contains the " \
            "resources.  If multiple API groups are specified, any action requested against one " \
            "of the enumerated resources in any API group will be allowed. '' represents the " \
            "core API group and '*' represents all API groups.") ","              \
        "\"resources\":" REG_S_DESC_STRS("Resources is a list of resources this rule applies to. " \
            "'*' represents all resources. A subresource is written resource/subresource " \
            "(pods/log).") ","                                                     \
        "\"resourceNames\":" REG_S_DESC_STRS("ResourceNames is an optional white list of names " \
            "that the rule applies to.  An empty set means that everything is allowed.") "," \
        "\"nonResourceURLs\":" REG_S_DESC_STRS("NonResourceURLs is a set of partial urls that a " \
            "user should have access to.  *s are allowed, but only as the full, final step in " \
            "the path. Rules can either apply to API resources (such as 'pods' or 'secrets') or " \
            "non-resource URL paths (such as '/api'),  but not both."))

/* A []PolicyRule described by d. */
#define REG_S_RULES(d) REG_S_DESC_ARRAY(d, REG_S_POLICY_RULE)

/* A ScopeRef described by d. */
#define REG_S_SCOPE_REF(d)                                                         \
    REG_S_DESC_OBJ_REQ(d, "\"level\"",                                             \
        "\"level\":" REG_S_DESC_ENUM("The level of the scope: Platform (everything), Cluster, " \
            "Workspace, NodeGroup, Namespace, Node, or Resource (one object). Required.", \
            REG_S_LEVELS) ","                                                      \
        "\"cluster\":" REG_S_DESC_STR("The member cluster, for every level below Platform; " \
            "empty means the server's own cluster (its --cluster-name).") ","      \
        "\"name\":" REG_S_DESC_STR("The Workspace, NodeGroup, Namespace or Node name (required " \
            "at those levels); for Resource, the object's name.") ","             \
        "\"namespace\":" REG_S_DESC_STR("For level Resource: the object's namespace (empty for " \
            "a cluster-scoped object).") ","                                       \
        "\"group\":" REG_S_DESC_STR("For level Resource: the object's API group (empty for the " \
            "core group).") ","                                                    \
        "\"resource\":" REG_S_DESC_STR("For level Resource: the object's resource, plural and " \
            "lower case (deployments)."))

/* Kubernetes' metav1.LabelSelector, in its own words, described by d. */
#define REG_S_LABEL_SELECTOR(d)                                                    \
    REG_S_DESC_OBJ(d,                                                              \
        "\"matchLabels\":" REG_S_DESC_MAP("matchLabels is a map of {key,value} pairs. A single " \
            "{key,value} in the matchLabels map is equivalent to an element of matchExpressions, " \
            "whose key field is 'key', the operator is 'In', and the values array contains only " \
            "'value'. The requirements are ANDed.", REG_S_STR) ","               \
        "\"matchExpressions\":" REG_S_DESC_ARRAY("matchExpressions is a list of label selector " \
            "requirements. The requirements are ANDed.",                          \
            REG_S_DESC_OBJ_REQ("A label selector requirement is a selector that contains values, " \
                "a key, and an operator that relates the key and values.",        \
                "\"key\",\"operator\"",                                            \
                "\"key\":" REG_S_DESC_STR("key is the label key that the selector applies to.") "," \
                "\"operator\":" REG_S_DESC_ENUM("operator represents a key's relationship to a " \
                    "set of values. Valid operators are In, NotIn, Exists and DoesNotExist.", \
                    "\"In\",\"NotIn\",\"Exists\",\"DoesNotExist\"") ","           \
                "\"values\":" REG_S_DESC_STRS("values is an array of string values. If the " \
                    "operator is In or NotIn, the values array must be non-empty. If the operator " \
                    "is Exists or DoesNotExist, the values array must be empty. This array is " \
                    "replaced during a strategic merge patch."))))

/* status.conditions in Kubernetes' metav1.Condition shape, its fields in
 * kube's words; d names the condition types and who writes them. */
#define REG_S_CONDITIONS(d)                                                        \
    "{\"type\":\"array\"," REG_S_D_(d) ",\"x-kubernetes-list-type\":\"map\","      \
    "\"x-kubernetes-list-map-keys\":[\"type\"],"                                   \
    "\"x-kubernetes-patch-merge-key\":\"type\",\"x-kubernetes-patch-strategy\":\"merge\"," \
    "\"items\":"                                                                   \
    REG_S_DESC_OBJ_REQ("Condition contains details for one aspect of the current state of this " \
        "API Resource.", "\"type\",\"status\"",                                    \
        "\"type\":" REG_S_DESC_STR("type of condition in CamelCase or in " \
            "foo.example.com/CamelCase.") ","                                      \
        "\"status\":" REG_S_DESC_ENUM("status of the condition, one of True, False, Unknown.", \
            "\"True\",\"False\",\"Unknown\"") ","                                  \
        "\"reason\":" REG_S_DESC_STR("reason contains a programmatic identifier indicating the " \
            "reason for the condition's last transition. Producers of specific condition types " \
            "may define expected values and meanings for this field, and whether the values are " \
            "considered a guaranteed API. The value should be a CamelCase string. This field may " \
            "not be empty.") ","                                                   \
        "\"message\":" REG_S_DESC_STR("message is a human readable message indicating details " \
            "about the transition. This may be an empty string.") ","              \
        "\"lastTransitionTime\":" REG_S_DESC_TIME("lastTransitionTime is the last time the " \
            "condition transitioned from one status to another. This should be when the " \
            "underlying condition changed.  If that is not known, then using the time when the " \
            "API field changed is acceptable.") ","                                \
        "\"observedGeneration\":" REG_S_DESC_INT("observedGeneration represents the " \
            ".metadata.generation that the condition was set based upon. For instance, if " \
            ".metadata.generation is currently 12, but the .status.conditions[x]." \
            "observedGeneration is 9, the condition is out of date with respect to the current " \
            "state of the instance.")) "}"

/* ---- cells ----------------------------------------------------------------- */

/* The value at a dotted path ("spec.scope.level"), borrowed; NULL if absent. */
const json_t *reg__at(const json_t *obj, const char *path);
/* The string at path as a new reference, NULL when absent or not a string. */
json_t *reg__cell_str(const json_t *obj, const char *path);
/* The length of the array at path (0 when absent). */
json_t *reg__cell_count(const json_t *obj, const char *path);
/* The strings of the array at path joined by ",", at most max shown, then
 * "+N more"; sub picks a field of object items (NULL for string items). */
json_t *reg__cell_join(const json_t *obj, const char *path, const char *sub, int max);
/* The status of the condition of type cond_type ("True", ...), or NULL. */
json_t *reg__cell_condition(const json_t *obj, const char *cond_type);

/* A stored object decoded, with metadata.resourceVersion set to rev (new
 * reference in *out). ERR_INTERNAL when the bytes do not decode, ERR_NOMEM
 * when memory ran out (also while decoding). */
int reg__decode_stored(const char *data, size_t len, uint64_t rev, json_t **out, err_t *err);

/* The storage key prefix of k's objects in namespace ns (every namespace
 * when ns is NULL or "", and for cluster-scoped kinds), ending in '/'. */
void reg__key_prefix(const reg_kind_t *k, const char *ns, char *buf, size_t n);

/* A resourceVersion query parameter read as kube's ParseResourceVersion
 * (Go's strconv.ParseUint, base 10): "" or NULL is 0; anything but digits,
 * or a value over 2^64-1, is ERR_BAD_REQUEST "invalid resource version". */
int reg__parse_rv(const char *s, uint64_t *rv, err_t *err);

/* 1 when obj passes the label and field selectors (NULL: no selector);
 * fields are metadata.name and metadata.namespace. */
struct sel;
int reg__matches(const struct sel *labels, const struct sel *fields, const json_t *obj);

/* The labelSelector and fieldSelector of a list or a watch (NULL or ""
 * for none: *labels / *fields NULL), the field selector naming only the
 * fields reg__matches knows. 0 and both (caller frees with sel_free), or
 * ERR_BAD_REQUEST / ERR_NOMEM with neither. */
int reg__parse_selectors(const char *label_selector, const char *field_selector,
                         struct sel **labels, struct sel **fields, err_t *err);

/* A Table's column definitions for kind k, and one object's row with its
 * cells and, per include ("None", "Metadata", "Object"), the object or
 * its PartialObjectMetadata (table.c). New references; NULL when out of
 * memory. */
json_t *reg__table_columns(const reg_kind_t *k);
json_t *reg__table_row(const reg_kind_t *k, const json_t *obj, const char *include);

/* RBAC's ValidatePolicyRule for each rule of the []PolicyRule at path
 * (e.g. "spec.rules"): verbs required; a non-resource rule names no API
 * groups, resources or names; a resource rule names at least one API group
 * and one resource. Causes are added to err, with kube's messages. */
void reg__validate_rules(const json_t *obj, const char *path, err_t *err);

/* ---- unique fields (unique.c; registry.h's reg_unique_t) ------------------ */

/* The claim a write took, for it to give back when the write fails. */
typedef struct reg__claim {
    char key[STORE_MAX_KEY + 1];
    uint64_t rev;                /* 0: the write took nothing */
} reg__claim_t;

/* Takes obj's claim before obj is stored (old: the stored object on
 * update, NULL on create; obj's uid set). Nothing to take when obj claims
 * nothing or what old claims. dry_run only checks. 0 (c says what was
 * taken), ERR_INVALID (FieldValueDuplicate: another holds it), or a
 * storage error; nothing taken on failure. */
int reg__unique_take(reg_t *r, const reg_kind_t *k, const json_t *obj, const json_t *old,
                     int dry_run, reg__claim_t *c, err_t *err);
/* Gives back what reg__unique_take took: the write it was for failed. */
void reg__unique_undo(reg_t *r, const reg__claim_t *c);
/* After a write stored obj (NULL: deleted) in old's place: releases old's
 * claim unless obj holds it still. Best effort: a claim left behind is an
 * orphan, taken over by the next taker. */
void reg__unique_release(reg_t *r, const reg_kind_t *k, const json_t *old, const json_t *obj);

/* Adds a cause and keeps going: validation collects every cause. */
#define REG_INVALID(err, type, field, ...) err_add_cause((err), (type), (field), __VA_ARGS__)

/* The kinds, one file each. */
extern const reg_kind_t reg_kind_roletemplate, reg_kind_iamrole, reg_kind_iamrolebinding,
    reg_kind_accessreview, reg_kind_permissionreview, reg_kind_cluster,
    reg_kind_workspace, reg_kind_nodegroup, reg_kind_application,
    reg_kind_applicationversion, reg_kind_applicationdeployment, reg_kind_component;


/* ---- the REST strategy's shared steps (rest.c, validate.c) -------------------
 * The pipeline is split by stage: rest.c (these helpers, decoding and
 * identity checks), validate.c (names and the schema walk), read.c (get
 * and list), write.c (create, update, patch, delete), status.c (Status). */

/* "<group>/<version>" of k into buf. */
void reg__api_version_of(const reg_kind_t *k, char *buf, size_t n);
/* Appends printf output at buf + *len (n bytes in all), never past n. */
void reg__append_fmt(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The bytes stored for obj (no resourceVersion), mem_alloc'd; NULL when
 * out of memory. */
char *reg__encode_for_store(const json_t *obj, size_t *len);
/* The object's storage key into buf; ERR_BAD_REQUEST when too long. */
int reg__make_key(const reg_kind_t *k, const char *ns, const char *name, char *buf, size_t n);
/* Now as RFC 3339 in UTC, second precision. */
void reg__now_rfc3339(char buf[32]);
/* "IAMRole.iam.theriseunion.io" and "iamroles.iam.theriseunion.io". */
void reg__qualified_kind(const reg_kind_t *k, char *buf, size_t n);
void reg__qualified_resource(const reg_kind_t *k, char *buf, size_t n);
/* The string at a dotted path, borrowed; NULL when absent or not a string. */
const char *reg__str_at(const json_t *o, const char *path);
/* Adds a warning (fmt with one %s: arg) to oc, for a Warning header. */
void reg__warn(reg_outcome_t *oc, const char *fmt, const char *arg);
/* Identity checks of a body: its namespace against the URL's; apiVersion
 * and kind (filled when absent) and the types Go's decoder enforces on
 * TypeMeta and ObjectMeta, refused with code (ERR_BAD_REQUEST for a body,
 * ERR_INVALID for a patch's result). 0 or the error set. */
int reg__check_namespace(const reg_kind_t *k, json_t *obj, const char *ns, err_t *err);
int reg__check_type(const reg_kind_t *k, json_t *obj, int code, err_t *err);
/* prefix plus five random characters, as kube's generateName. */
void reg__generate_name(const char *prefix, char *out, size_t n);
/* The field manager of a write: the option, else the User-Agent's product. */
const char *reg__manager_of(const reg_write_opts_t *o, char *buf, size_t n);
/* kube's precondition conflict (409). Returns ERR_CONFLICT. */
int reg__precondition_failed(const reg_kind_t *k, const char *name, const char *what,
                             const char *want, const char *have, err_t *err);
/* 1 when everything but metadata and status is equal. */
int reg__spec_equal(const json_t *a, const json_t *b);
/* A store error rc (its details in se, may be NULL) as kube words it for
 * k and name; the first error set in err wins. Returns rc. */
int reg__store_error(const reg_kind_t *k, const char *name, int rc, const err_t *se, err_t *err);
/* Stored bytes with resourceVersion rev spliced in, into *out (mem_alloc'd,
 * *out_len bytes). 0 or ERR_NOMEM. */
int reg__put_with_rv_buf(const char *data, size_t len, uint64_t rev, char **out,
                         size_t *out_len);
/* Prunes and checks obj against k (schema, names, labels, annotations,
 * the kind's own checks; old is the stored object on update). mode is
 * REG_FV_*; warnings go to oc. 0, ERR_BAD_REQUEST (strict decoding),
 * ERR_INVALID with causes, or ERR_NOMEM. */
int reg__check_object(const reg_kind_t *k, json_t *obj, const json_t *old, int mode,
                      reg_outcome_t *oc, err_t *err);

/* Adds finalizer to a new object's metadata.finalizers unless it is
 * there (a kind's on_create hook, for the finalizer its controller's
 * cleanup needs). A finalizers field that is not an array is left for
 * validation to refuse. 0 or ERR_NOMEM. */
int reg__add_finalizer(json_t *obj, const char *finalizer);

#endif
