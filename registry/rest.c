/*
 * The generic REST strategy: what kube-apiserver's generic registry
 * (k8s.io/apiserver/pkg/registry/generic/registry/store.go) does to every
 * object on its way in and out of storage.
 *
 * A write goes: decode -> check identity (apiVersion, kind, name,
 * namespace) -> schema walk (prune unknown fields per fieldValidation,
 * types, enums, required) -> kind's semantic checks -> metadata rules
 * (uid, timestamps, generation, status kept or taken per subresource,
 * managedFields) -> compare-and-swap in storage, retried on races the
 * client did not ask to detect -> the stored object with its new
 * resourceVersion.
 */
#include "reg_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/b64.h"
#include "../lib/crypto.h"
#include "../lib/json/jenc.h"
#include "../lib/json/jtok.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../lib/yaml.h"
#include "../apimachinery/apply.h"
#include "../apimachinery/keys.h"
#include "../apimachinery/selector.h"

#define REG_MAX_DEPTH 64
#define REG_CAS_RETRIES 16

/* ---- small helpers ------------------------------------------------------- */

static void now_rfc3339(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *str_at(const json_t *o, const char *path)
{
    return json_string_value(reg__at(o, path));
}

static void api_version_of(const reg_kind_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", k->group, k->version);
}

static int make_key(const reg_kind_t *k, const char *ns, const char *name, char *buf,
                    size_t n)
{
    return keys_object(buf, n, k->group, k->resource, k->namespaced, ns, name) ? ERR_BAD_REQUEST
                                                                                 : 0;
}

void reg__key_prefix(const reg_kind_t *k, const char *ns, char *buf, size_t n)
{
    keys_prefix(buf, n, k->group, k->resource, k->namespaced, ns);
}

/* "IAMRole.iam.theriseunion.io" */
static void qualified_kind(const reg_kind_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", k->kind, k->group);
}

/* "iamroles.iam.theriseunion.io" */
static void qualified_resource(const reg_kind_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", k->resource, k->group);
}

static void warn(reg_outcome_t *oc, const char *fmt, const char *arg)
{
    if (!oc || oc->nwarnings >= REG_MAX_WARNINGS)
        return;
    snprintf(oc->warnings[oc->nwarnings++], sizeof oc->warnings[0], fmt, arg);
}

/* snprintf at buf + *len (buf holds n bytes), advancing *len by what was
 * written: a text too long is cut, and *len never passes the last byte,
 * so the next append never starts outside buf. */
static void append_fmt(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append_fmt(char *buf, size_t n, size_t *len, const char *fmt, ...)
{
    size_t room = n - *len;
    if (room <= 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + *len, room, fmt, ap);
    va_end(ap);
    if (m > 0)
        *len += (size_t)m < room ? (size_t)m : room - 1;
}

/* Appends metadata without its resourceVersion, as json_dumps(JSON_COMPACT)
 * writes the object with that member deleted. */
static int put_meta_without_rv(sbuf_t *b, const json_t *meta)
{
    static const char rv[] = "resourceVersion";
    int n = 0, rc = 0;
    sbuf_putc(b, '{');
    for (void *it = json_object_iter((json_t *)meta); it && !rc;
         it = json_object_iter_next((json_t *)meta, it)) {
        const char *key = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        if (kl == sizeof rv - 1 && !memcmp(key, rv, kl))
            continue;
        if (n++)
            sbuf_putc(b, ',');
        rc = jenc_append_key(b, key, kl);
        if (!rc)
            rc = jenc_append_any(b, json_object_iter_value(it));
    }
    sbuf_putc(b, '}');
    return rc ? rc : b->oom ? ERR_NOMEM : 0;
}

/* Builds the stored form: apiVersion, kind and metadata first (so readers
 * can find metadata without parsing), no resourceVersion. The bytes are
 * json_dumps(JSON_COMPACT) of that object, written member by member from
 * obj without building the object or touching obj. Caller frees
 * (mem_free); NULL when out of memory or when obj holds what jansson
 * cannot write (see lib/json/jenc.h). */
static char *encode_for_store(const json_t *obj, size_t *len)
{
    static const char *const first[] = {"apiVersion", "kind", "metadata"};
    const json_t *meta = json_object_get(obj, "metadata");
    sbuf_t b = SBUF_INIT;
    int n = 0, rc = 0;
    sbuf_grow(&b, 4096);  /* most objects fit: one allocation, no regrowth */
    sbuf_putc(&b, '{');
    for (size_t i = 0; i < 3 && !rc; i++) {
        const json_t *v = json_object_get(obj, first[i]);
        if (!v)
            continue;
        if (n++)
            sbuf_putc(&b, ',');
        rc = jenc_append_key(&b, first[i], strlen(first[i]));
        if (!rc)
            rc = v == meta && json_is_object(v) ? put_meta_without_rv(&b, v)
                                                : jenc_append_any(&b, v);
    }
    for (void *it = json_object_iter((json_t *)obj); it && !rc;
         it = json_object_iter_next((json_t *)obj, it)) {
        const char *key = json_object_iter_key(it);
        if (!strcmp(key, "apiVersion") || !strcmp(key, "kind") || !strcmp(key, "metadata"))
            continue;
        if (n++)
            sbuf_putc(&b, ',');
        rc = jenc_append_key(&b, key, json_object_iter_key_len(it));
        if (!rc)
            rc = jenc_append_any(&b, json_object_iter_value(it));
    }
    sbuf_putc(&b, '}');
    if (rc || b.oom) {
        sbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int reg__decode_stored(const char *data, size_t len, uint64_t rev, json_t **out,
                         err_t *err)
{
    unsigned long failed = mem_failures();
    json_t *o = jtok_loadb(data, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        /* jansson words running out of memory as bad input. */
        if (mem_failures() != failed)
            return err_set(err, ERR_NOMEM, NULL);
        return err_set(err, ERR_INTERNAL, "stored object does not decode");
    }
    json_t *meta = json_object_get(o, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        if (json_object_set_new(o, "metadata", meta))
            goto nomem;
    }
    char rv[24];
    snprintf(rv, sizeof rv, "%" PRIu64, rev);
    if (json_object_set_new(meta, "resourceVersion", json_string(rv)))
        goto nomem;
    *out = o;
    return 0;
nomem:
    json_decref(o);
    return err_set(err, ERR_NOMEM, NULL);
}

/* ---- names and metadata validation ------------------------------------------- */

/* One cause per message of a failed name check, as kube's field.Invalid
 * for each. */
static void invalid_each(err_t *err, const char *field, const char *value, const sel_msgs_t *ms)
{
    /* A value too long for the cause beside its finding is shown cut, so
     * the finding itself is never the part lost. */
    const size_t cap = sizeof err->causes[0].message, len = strlen(value);
    for (size_t i = 0; i < ms->n; i++) {
        int cut = len > 60 && len + strlen(ms->m[i]) + 24 > cap;
        err_add_cause(err, "FieldValueInvalid", field, "Invalid value: \"%.*s%s\": %s",
                      cut ? 40 : (int)len, value, cut ? "..." : "", ms->m[i]);
    }
}

/* ValidateLabels (values_are_labels) or ValidateAnnotations: keys are
 * qualified names, label values label values, annotations at most 256 KiB
 * in all. */
static void validate_string_map(const json_t *m, const char *field, int values_are_labels,
                                err_t *err)
{
    if (!m)
        return;
    const char *key;
    const json_t *v;
    size_t total = 0;
    json_object_foreach((json_t *)m, key, v) {
        sel_msgs_t ms;
        sel_check_qualified_name(key, strlen(key), &ms);
        invalid_each(err, field, key, &ms);
        const char *s = json_string_value(v);
        if (!s)
            continue;
        total += strlen(key) + strlen(s);
        if (values_are_labels) {
            sel_check_label_value(s, strlen(s), &ms);
            invalid_each(err, field, s, &ms);
        }
    }
    if (!values_are_labels && total > 256 * 1024)
        err_add_cause(err, "FieldValueTooLong", field,
                      "Too long: must have at most 262144 bytes");
}

/* ---- the schema walk --------------------------------------------------------- */

typedef struct walk {
    int mode;                    /* REG_FV_* */
    err_t *err;                  /* causes for Invalid */
    char unknown[1024];          /* unknown fields, for Strict's message */
    size_t unknown_len;
    int nunknown;
    reg_outcome_t *oc;
} walk_t;

static const char *type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static void walk_unknown(walk_t *w, const char *path)
{
    char msg[240];
    snprintf(msg, sizeof msg, "unknown field \"%.200s\"", path);
    if (w->mode == REG_FV_WARN)
        warn(w->oc, "%s", msg);
    append_fmt(w->unknown, sizeof w->unknown, &w->unknown_len, "%s%s",
               w->nunknown ? ", " : "", msg);
    w->nunknown++;
}

/* Checks v against schema s at path; prunes unknown fields and nulls from
 * objects in place. */
static void walk(walk_t *w, json_t *v, const json_t *s, const char *path, int depth)
{
    if (depth > REG_MAX_DEPTH || !s)
        return;
    const char *want = json_string_value(json_object_get(s, "type"));
    const char *have = type_of(v);
    if (want && strcmp(want, have) && !(!strcmp(want, "number") && !strcmp(have, "integer"))) {
        char shown[64];
        if (json_is_string(v))
            snprintf(shown, sizeof shown, "\"%.40s\"", json_string_value(v));
        else
            snprintf(shown, sizeof shown, "\"%s\"", have);
        err_add_cause(w->err, "FieldValueTypeInvalid", path,
                      "Invalid value: %s: %s in body must be of type %s: \"%s\"", shown,
                      path, want, have);
        return;
    }
    /* format: byte is standard base64, as kube's OpenAPI validation
     * (and Go's base64.StdEncoding) reads it. */
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (fmt && !strcmp(fmt, "byte") && json_is_string(v)) {
        unsigned char *raw = NULL;
        size_t rawn = 0, n = json_string_length(v);
        int rc = n % 4 ? ERR_BAD_REQUEST
                       : b64_decode(json_string_value(v), n, B64_STD, &raw, &rawn);
        mem_free(raw);
        if (rc == ERR_NOMEM)
            err_set(w->err, ERR_NOMEM, NULL);
        else if (rc)
            err_add_cause(w->err, "FieldValueInvalid", path, "Invalid value: \"%.40s\": %s in "
                          "body must be of type byte: \"%.40s\"", json_string_value(v), path,
                          json_string_value(v));
    }
    const json_t *en = json_object_get(s, "enum");
    if (json_is_array(en) && json_is_string(v)) {
        size_t i;
        const json_t *e;
        int ok = 0;
        char allowed[512] = "";
        size_t al = 0;
        json_array_foreach(en, i, e) {
            if (json_equal(e, v))
                ok = 1;
            append_fmt(allowed, sizeof allowed, &al, "%s\"%s\"", i ? ", " : "",
                       json_string_value(e));
        }
        if (!ok)
            err_add_cause(w->err, "FieldValueNotSupported", path,
                          "Unsupported value: \"%s\": supported values: %s",
                          json_string_value(v), allowed);
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(s, "properties");
        const json_t *addl = json_object_get(s, "additionalProperties");
        int preserve = json_is_true(json_object_get(s, "x-kubernetes-preserve-unknown-fields"));
        const char *key;
        json_t *child;
        void *tmp;
        json_object_foreach_safe(v, tmp, key, child) {
            char cp[512];
            snprintf(cp, sizeof cp, "%s%s%s", path, *path ? "." : "", key);
            if (json_is_null(child)) {
                json_object_del(v, key);
                continue;
            }
            const json_t *cs = props ? json_object_get(props, key) : NULL;
            if (!cs && json_is_object(addl))
                cs = addl;
            if (cs) {
                walk(w, child, cs, cp, depth + 1);
            } else if (!preserve) {
                walk_unknown(w, cp);
                json_object_del(v, key);
            }
        }
        const json_t *req = json_object_get(s, "required");
        size_t i;
        const json_t *r;
        json_array_foreach(req, i, r) {
            if (!json_object_get(v, json_string_value(r))) {
                char cp[512];
                snprintf(cp, sizeof cp, "%s%s%s", path, *path ? "." : "", json_string_value(r));
                err_add_cause(w->err, "FieldValueRequired", cp, "Required value");
            }
        }
    } else if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items");
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) {
            char cp[512];
            snprintf(cp, sizeof cp, "%s[%zu]", path, i);
            walk(w, it, items, cp, depth + 1);
        }
    }
}

/* Turns collected causes into one Invalid error, kube's message format. */
static int invalid_from_causes(const reg_kind_t *k, const char *name, err_t *err)
{
    if (!err->ncauses)
        return 0;
    char qk[160];
    qualified_kind(k, qk, sizeof qk);
    char list[2048];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; i < err->ncauses; i++)
        append_fmt(list, sizeof list, &len, "%s%s: %s", i ? ", " : "", err->causes[i].field,
                   err->causes[i].message);
    if (err->ncauses == 1)
        return err_set(err, ERR_INVALID, "%s \"%s\" is invalid: %s", qk, name ? name : "", list);
    return err_set(err, ERR_INVALID, "%s \"%s\" is invalid: [%s]", qk, name ? name : "", list);
}

/* Prunes and checks obj against its kind. */
static int check_object(const reg_kind_t *k, json_t *obj, const json_t *old, int mode,
                        reg_outcome_t *oc, err_t *err)
{
    const json_t *schema;
    int rc = reg_schema(k, &schema, err);
    if (rc)
        return rc;
    walk_t w = {.mode = mode, .err = err, .oc = oc};
    walk(&w, obj, schema, "", 0);
    if (w.nunknown && mode == REG_FV_STRICT)
        return err_set(err, ERR_BAD_REQUEST, "strict decoding error: %s", w.unknown);
    const char *name = str_at(obj, "metadata.name");
    if (name) {
        sel_msgs_t ms;
        sel_check_dns_subdomain(name, strlen(name), &ms);
        invalid_each(err, "metadata.name", name, &ms);
    }
    validate_string_map(reg__at(obj, "metadata.labels"), "metadata.labels", 1, err);
    validate_string_map(reg__at(obj, "metadata.annotations"), "metadata.annotations", 0, err);
    if (k->validate)
        k->validate(obj, old, err);
    return invalid_from_causes(k, name, err);
}

/* ---- decoding ------------------------------------------------------------------ */

int reg_decode_body(const char *body, size_t len, int field_validation, json_t **out,
                    reg_outcome_t *oc, err_t *err)
{
    json_error_t je;
    json_t *j = jtok_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j && strstr(je.text, "duplicate object key")) {
        if (field_validation == REG_FV_STRICT)
            return err_set(err, ERR_BAD_REQUEST, "strict decoding error: %s", je.text);
        if (field_validation == REG_FV_WARN)
            warn(oc, "%s", je.text);
        j = jtok_loadb(body, len, 0, &je);
    }
    if (!j)
        return err_set(err, ERR_BAD_REQUEST,
                       "the body of the request was in an unknown format - accepted media "
                       "types include: application/json, application/yaml: %s", je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(err, ERR_BAD_REQUEST, "the body of the request must be a JSON object");
    }
    *out = j;
    return 0;
}

/* Checks apiVersion/kind of a body; fills them when absent. */
/* An RFC 3339 time as Go's time.Parse(time.RFC3339) reads one. */
static int is_rfc3339(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)t[i]) : t[i] != shape[i])
            return 0;
    const char *p = t + sizeof shape - 1;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z')
        return !p[1];
    return (*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
           isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
           isdigit((unsigned char)p[5]) && !p[6];
}

static const char *json_type_name(const json_t *v)
{
    return json_is_string(v) ? "string" : json_is_number(v) ? "number"
         : json_is_boolean(v) ? "bool" : json_is_array(v) ? "array" : "object";
}

/* What Go's decoder refuses in TypeMeta and ObjectMeta before any
 * validation runs: a field of the wrong JSON type, a timestamp that is
 * not RFC 3339. code is ERR_BAD_REQUEST for a body, ERR_INVALID for the
 * result of a patch (kube reports those as 422). */
static int check_meta_types(const json_t *obj, int code, err_t *err)
{
    if (!json_is_object(obj))
        return err_set(err, code, "json: cannot unmarshal %s into Go value of type "
                       "map[string]interface {}", json_is_array(obj) ? "array"
                       : json_is_string(obj) ? "string" : json_is_number(obj) ? "number"
                       : json_is_null(obj) ? "null" : "bool");
#define WRONG(v, field, go)                                                                \
    err_set(err, code, "json: cannot unmarshal %s into Go struct field %s of type %s",     \
            json_type_name(v), field, go)
    static const char *const strs[] = {"apiVersion", "kind", NULL};
    for (size_t i = 0; strs[i]; i++) {
        const json_t *v = json_object_get(obj, strs[i]);
        if (v && !json_is_null(v) && !json_is_string(v))
            return WRONG(v, strs[i] + 0, "string");
    }
    const json_t *meta = json_object_get(obj, "metadata");
    if (!meta || json_is_null(meta))
        return 0;
    if (!json_is_object(meta))
        return WRONG(meta, "metadata", "v1.ObjectMeta");
    static const struct {
        const char *name, *go;
        int type;  /* 's' string, 'i' integer, 't' time, 'm' map of strings, 'a' strings, 'o' objects */
    } fields[] = {
        {"name", "ObjectMeta.metadata.name", 's'},
        {"generateName", "ObjectMeta.metadata.generateName", 's'},
        {"namespace", "ObjectMeta.metadata.namespace", 's'},
        {"selfLink", "ObjectMeta.metadata.selfLink", 's'},
        {"uid", "ObjectMeta.metadata.uid", 's'},
        {"resourceVersion", "ObjectMeta.metadata.resourceVersion", 's'},
        {"generation", "ObjectMeta.metadata.generation", 'i'},
        {"creationTimestamp", "ObjectMeta.metadata.creationTimestamp", 't'},
        {"deletionTimestamp", "ObjectMeta.metadata.deletionTimestamp", 't'},
        {"deletionGracePeriodSeconds", "ObjectMeta.metadata.deletionGracePeriodSeconds", 'i'},
        {"labels", "ObjectMeta.metadata.labels", 'm'},
        {"annotations", "ObjectMeta.metadata.annotations", 'm'},
        {"finalizers", "ObjectMeta.metadata.finalizers", 'a'},
        {"ownerReferences", "ObjectMeta.metadata.ownerReferences", 'o'},
        {"managedFields", "ObjectMeta.metadata.managedFields", 'o'},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *v = json_object_get(meta, fields[i].name);
        if (!v || json_is_null(v))
            continue;
        const char *go = fields[i].go;
        switch (fields[i].type) {
        case 's':
            if (!json_is_string(v))
                return WRONG(v, go, "string");
            break;
        case 'i':
            if (!json_is_integer(v))
                return WRONG(v, go, "int64");
            break;
        case 't':
            if (!json_is_string(v))
                return WRONG(v, go, "v1.Time");
            if (!is_rfc3339(json_string_value(v)))
                return err_set(err, code, "%s: parsing time \"%s\" as \"2006-01-02T15:04:05Z07:00\": "
                               "not RFC 3339", go + 11, json_string_value(v));
            break;
        case 'm': {
            if (!json_is_object(v))
                return WRONG(v, go, "map[string]string");
            const char *key;
            const json_t *e;
            json_object_foreach((json_t *)v, key, e) {
                if (!json_is_string(e))
                    return WRONG(e, go, "string");
            }
            break;
        }
        default: {
            if (!json_is_array(v))
                return WRONG(v, go, fields[i].type == 'a' ? "[]string" : "[]struct");
            size_t j;
            const json_t *e;
            json_array_foreach(v, j, e) {
                if (fields[i].type == 'a' ? !json_is_string(e) : !json_is_object(e))
                    return WRONG(e, go, fields[i].type == 'a' ? "string" : "struct");
            }
        }
        }
    }
    return 0;
#undef WRONG
}

static int check_type(const reg_kind_t *k, json_t *obj, int code, err_t *err)
{
    int rc = check_meta_types(obj, code, err);
    if (rc)
        return rc;
    char av[160];
    api_version_of(k, av, sizeof av);
    const char *bav = str_at(obj, "apiVersion");
    const char *bk = str_at(obj, "kind");
    if (bav && *bav && strcmp(bav, av))
        return err_set(err, ERR_BAD_REQUEST,
                       "the API version in the data (%s) does not match the expected API "
                       "version (%s)", bav, av);
    if (bk && *bk && strcmp(bk, k->kind))
        return err_set(err, ERR_BAD_REQUEST,
                       "the kind in the data (%s) does not match the expected kind (%s)", bk,
                       k->kind);
    if (json_object_set_new(obj, "apiVersion", json_string(av)) ||
        json_object_set_new(obj, "kind", json_string(k->kind)) ||
        (!json_is_object(json_object_get(obj, "metadata")) &&
         json_object_set_new(obj, "metadata", json_object())))
        return err_set(err, ERR_NOMEM, NULL);
    return 0;
}

static int check_namespace(const reg_kind_t *k, json_t *obj, const char *ns, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *bns = str_at(obj, "metadata.namespace");
    if (!k->namespaced) {
        json_object_del(meta, "namespace");
        return 0;
    }
    if (bns && *bns && ns && strcmp(bns, ns))
        return err_set(err, ERR_BAD_REQUEST,
                       "the namespace of the provided object does not match the namespace "
                       "sent on the request");
    if (!ns || !*ns)
        return err_set(err, ERR_BAD_REQUEST, "a namespace is required for %s", k->resource);
    if (json_object_set_new(meta, "namespace", json_string(ns)))
        return err_set(err, ERR_NOMEM, NULL);
    return 0;
}

/* generateName: prefix + 5 characters from kube's alphabet (no vowels). */
static void generate_name(const char *prefix, char *out, size_t n)
{
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    unsigned char rnd[5];
    crypto_random(rnd, sizeof rnd);
    char suffix[6];
    for (int i = 0; i < 5; i++)
        suffix[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    suffix[5] = '\0';
    size_t pl = strlen(prefix);
    if (pl > 253 - 5)
        pl = 253 - 5;
    snprintf(out, n, "%.*s%s", (int)pl, prefix, suffix);
}

/* The field manager: as given, or kube's default, the user agent's
 * program name (the part before the first '/'). buf holds the result. */
static const char *manager_of(const reg_write_opts_t *o, char *buf, size_t n)
{
    if (o->field_manager && *o->field_manager)
        return o->field_manager;
    const char *ua = o->user_agent && *o->user_agent ? o->user_agent : "unknown";
    snprintf(buf, n, "%.*s", (int)strcspn(ua, "/"), ua);
    return buf;
}

/* Everything but metadata and status: what raises generation. */
static int spec_equal(const json_t *a, const json_t *b)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)a, key, v) {
        if (!strcmp(key, "metadata") || !strcmp(key, "status"))
            continue;
        if (!json_equal(v, json_object_get(b, key)))
            return 0;
    }
    json_object_foreach((json_t *)b, key, v) {
        if (!strcmp(key, "metadata") || !strcmp(key, "status"))
            continue;
        if (!json_object_get(a, key))
            return 0;
    }
    return 1;
}

/* kube's precondition conflict (409): "Operation cannot be fulfilled on
 * <resource> \"<name>\": Precondition failed: <what> in precondition: <want>,
 * <what> in object meta: <have>". */
static int precondition_failed(const reg_kind_t *k, const char *name, const char *what,
                               const char *want, const char *have, err_t *err)
{
    char qr[160];
    qualified_resource(k, qr, sizeof qr);
    return err_set(err, ERR_CONFLICT,
                   "Operation cannot be fulfilled on %s \"%s\": Precondition failed: %s in "
                   "precondition: %s, %s in object meta: %s", qr, name, what, want, what,
                   have ? have : "");
}

/* A storage error rc as kube words it, into err (where the first error
 * wins, as everywhere): the store's own words (se, the err_t the store
 * call was given; NULL when it had none) only for errors kube has no
 * words of its own for. Store calls are given an err_t of their own for
 * this, never the caller's. */
static int store_error(const reg_kind_t *k, const char *name, int rc, const err_t *se,
                       err_t *err)
{
    char qr[160];
    qualified_resource(k, qr, sizeof qr);
    switch (rc) {
    case ERR_NOT_FOUND:
        return err_set(err, rc, "%s \"%s\" not found", qr, name);
    case ERR_ALREADY_EXISTS:
        return err_set(err, rc, "%s \"%s\" already exists", qr, name);
    case ERR_CONFLICT:
        return err_set(err, rc,
                       "Operation cannot be fulfilled on %s \"%s\": the object has been "
                       "modified; please apply your changes to the latest version and try "
                       "again", qr, name);
    default:
        if (se && se->code == rc)
            return err_forward(err, se);
        return err_set(err, rc, NULL);
    }
}

/* ---- get / list ------------------------------------------------------------------ */

/* The stored bytes of one object (*v, store_value_free), or its error as
 * a Status would word it. */
static int get_stored(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                      store_value_t *v, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    /* A name too long to be a key names nothing stored: not found. */
    if (make_key(k, ns, name, key, sizeof key))
        return store_error(k, name, ERR_NOT_FOUND, NULL, err);
    err_t se;
    err_clear(&se);
    int rc = store_get(r->store, key, v, &se);
    return rc ? store_error(k, name, rc, &se, err) : 0;
}

int reg_get(reg_t *r, const reg_kind_t *k, const char *ns, const char *name, json_t **out,
            err_t *err)
{
    store_value_t v;
    int rc = get_stored(r, k, ns, name, &v, err);
    if (rc)
        return rc;
    rc = reg__decode_stored(v.data, v.len, v.mod_rev, out, err);
    store_value_free(&v);
    return rc;
}

typedef struct list_ctx {
    sel_t *labels;
    sel_t *fields;
    json_t *items;
    int rc;
    err_t *err;
} list_ctx_t;

typedef struct field_src {
    const json_t *obj;
} field_src_t;

static const char *field_get(void *arg, const char *name)
{
    const json_t *o = ((field_src_t *)arg)->obj;
    if (!strcmp(name, "metadata.name"))
        return str_at(o, "metadata.name");
    if (!strcmp(name, "metadata.namespace"))
        return str_at(o, "metadata.namespace");
    return NULL;
}

int reg__matches(const sel_t *labels, const sel_t *fields, const json_t *obj)
{
    if (labels && !sel_matches_labels(labels, reg__at(obj, "metadata.labels")))
        return 0;
    field_src_t fs = {obj};
    if (fields && !sel_matches_fields(fields, field_get, &fs))
        return 0;
    return 1;
}

static int list_visit(void *arg, const store_kv_t *kv)
{
    list_ctx_t *c = arg;
    json_t *o;
    int rc = reg__decode_stored(kv->value, kv->value_len, kv->mod_rev, &o, c->err);
    if (rc)
        return rc;
    if (!reg__matches(c->labels, c->fields, o)) {
        json_decref(o);
        return STORE_SKIP;
    }
    if (json_array_append_new(c->items, o))
        return err_set(c->err, ERR_NOMEM, NULL);
    return STORE_TAKE;
}

/* The fields a field selector may name: those field_get knows. */
static const char *const field_names[] = {"metadata.name", "metadata.namespace", NULL};

int reg__parse_selectors(const char *ls, const char *fs, sel_t **labels, sel_t **fields,
                         err_t *err)
{
    *labels = *fields = NULL;
    int rc = 0;
    if (ls && *ls)
        rc = sel_parse_labels(ls, labels, err);
    if (!rc && fs && *fs)
        rc = sel_parse_fields(fs, field_names, fields, err);
    if (rc) {
        sel_free(*labels);
        *labels = NULL;
    }
    return rc;
}

int reg__parse_rv(const char *s, uint64_t *rv, err_t *err)
{
    *rv = 0;
    if (!s || !*s)
        return 0;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return err_set(err, ERR_BAD_REQUEST, "invalid resource version \"%s\"", s);
        v = v * 10 + d;
    }
    *rv = v;
    return 0;
}

/* Runs a list: checks options, pins the snapshot they ask for, visits.
 * c->labels/c->fields are parsed here and freed by the caller. */
static int list_run(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                    list_ctx_t *c, store_visit_fn visit, store_list_result_t *res, err_t *err)
{
    int rc = reg__parse_selectors(o->label_selector, o->field_selector, &c->labels, &c->fields,
                                  err);
    if (rc)
        return rc;
    uint64_t rv = 0;
    rc = reg__parse_rv(o->resource_version, &rv, err);
    if (rc)
        return rc;
    const char *match = o->resource_version_match ? o->resource_version_match : "";
    if (*match && strcmp(match, "Exact") && strcmp(match, "NotOlderThan"))
        return err_set(err, ERR_BAD_REQUEST, "resourceVersionMatch: Unsupported value: \"%s\"", match);
    if (*match && (!o->resource_version || !*o->resource_version))
        return err_set(err, ERR_BAD_REQUEST,
                       "resourceVersionMatch is forbidden unless resourceVersion is provided");
    /* Only an Exact match, or the legacy "RV with a limit", pins a
     * snapshot; otherwise the latest state is at least as new as asked. */
    uint64_t pin = 0;
    if (!strcmp(match, "Exact") || (!*match && rv > 0 && o->limit > 0))
        pin = rv;
    if (!pin && rv > store_revision(r->store))
        return err_set(err, ERR_TOO_LARGE_RV, "Too large resource version: %" PRIu64
                       ", current: %" PRIu64, rv, store_revision(r->store));
    char prefix[STORE_MAX_KEY + 1];
    reg__key_prefix(k, ns, prefix, sizeof prefix);
    store_list_opts_t so = {.prefix = prefix, .continue_token = o->continue_token,
                            .rev = pin, .limit = o->limit,
                            .count_remaining = o->limit > 0 && !c->labels && !c->fields};
    return store_list(r->store, &so, visit, c, res, err);
}

/* The list's metadata: resourceVersion, and continue (with
 * remainingItemCount when known) for a page. NULL when out of memory:
 * never a page without its continue token, which would end the client's
 * paging early. */
static json_t *list_meta(const store_list_result_t *res)
{
    char rvs[24];
    snprintf(rvs, sizeof rvs, "%" PRIu64, res->rev);
    json_t *meta = json_pack("{s:s}", "resourceVersion", rvs);
    if (meta && res->continue_token &&
        (json_object_set_new(meta, "continue", json_string(res->continue_token)) ||
         (res->remaining > 0 &&
          json_object_set_new(meta, "remainingItemCount", json_integer(res->remaining))))) {
        json_decref(meta);
        return NULL;
    }
    return meta;
}

int reg_list(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
             json_t **out, err_t *err)
{
    list_ctx_t c = {.err = err, .items = json_array()};
    store_list_result_t res = {0};
    int rc = c.items ? list_run(r, k, ns, o, &c, list_visit, &res, err)
                     : err_set(err, ERR_NOMEM, NULL);
    if (!rc) {
        char av[160], lk[160];
        api_version_of(k, av, sizeof av);
        snprintf(lk, sizeof lk, "%sList", k->kind);
        /* list_meta's NULL fails the pack (which still takes the reference
         * of every "o" value). */
        *out = json_pack("{s:s, s:s, s:o, s:O}", "apiVersion", av, "kind", lk, "metadata",
                         list_meta(&res), "items", c.items);
        if (!*out)
            rc = err_set(err, ERR_NOMEM, NULL);
    }
    store_list_result_free(&res);
    json_decref(c.items);
    sel_free(c.labels);
    sel_free(c.fields);
    return rc;
}

/* ---- raw reads: stored bytes with resourceVersion spliced in --------------------- */

/* Appends a stored object with metadata.resourceVersion set. The stored
 * form begins {"apiVersion":..,"kind":..,"metadata":{ (encode_for_store),
 * and neither value can contain that text, so the first occurrence is the
 * object's own metadata. */
static int put_with_rv(sbuf_t *b, const char *data, size_t len, uint64_t rev)
{
    static const char mark[] = "\"metadata\":{";
    const char *m = memmem(data, len, mark, sizeof mark - 1);
    if (!m)
        return ERR_INTERNAL;
    size_t at = (size_t)(m - data) + sizeof mark - 1;
    char rv[48];
    if (sbuf_grow(b, len + sizeof rv))
        return ERR_NOMEM;
    int n = snprintf(rv, sizeof rv, "\"resourceVersion\":\"%" PRIu64 "\"%s", rev,
                     at < len && data[at] == '}' ? "" : ",");
    sbuf_put(b, data, at);
    sbuf_put(b, rv, (size_t)n);
    sbuf_put(b, data + at, len - at);
    return b->oom ? ERR_NOMEM : 0;
}

static int put_with_rv_buf(const char *data, size_t len, uint64_t rev, char **out,
                           size_t *out_len)
{
    sbuf_t b = {0};
    if (put_with_rv(&b, data, len, rev)) {
        mem_free(b.p);
        return ERR_NOMEM;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

int reg_get_raw(reg_t *r, const reg_kind_t *k, const char *ns, const char *name, char **body,
                size_t *len, err_t *err)
{
    store_value_t v;
    int rc = get_stored(r, k, ns, name, &v, err);
    if (rc)
        return rc;
    sbuf_t b = {0};
    rc = put_with_rv(&b, v.data, v.len, v.mod_rev);
    store_value_free(&v);
    if (rc) {
        mem_free(b.p);
        return err_set(err, rc, rc == ERR_NOMEM ? NULL : "stored object is malformed");
    }
    *body = b.p;
    *len = b.len;
    return 0;
}

typedef struct raw_ctx {
    list_ctx_t base;             /* first: list_run fills the selectors */
    sbuf_t b;
    int n;
    /* Tables: each matching object becomes its row at once */
    const reg_kind_t *k;
    const char *include;
} raw_ctx_t;

static int raw_visit(void *arg, const store_kv_t *kv)
{
    raw_ctx_t *c = arg;
    if (c->base.labels || c->base.fields) {
        /* Selectors need the fields: parse, but still copy the bytes. */
        unsigned long failed = mem_failures();
        json_t *o = jtok_loadb(kv->value, kv->value_len, 0, NULL);
        if (!o && mem_failures() != failed)
            return err_set(c->base.err, ERR_NOMEM, NULL);
        int ok = o && reg__matches(c->base.labels, c->base.fields, o);
        json_decref(o);
        if (!ok)
            return STORE_SKIP;
    }
    if (c->n++)
        sbuf_put(&c->b, ",", 1);
    int rc = put_with_rv(&c->b, kv->value, kv->value_len, kv->mod_rev);
    if (rc)
        return err_set(c->base.err, rc, rc == ERR_NOMEM ? NULL : "stored object is malformed");
    return STORE_TAKE;
}

static int row_visit(void *arg, const store_kv_t *kv)
{
    raw_ctx_t *c = arg;
    json_t *o;
    int rc = reg__decode_stored(kv->value, kv->value_len, kv->mod_rev, &o, c->base.err);
    if (rc)
        return rc;
    if (!reg__matches(c->base.labels, c->base.fields, o)) {
        json_decref(o);
        return STORE_SKIP;
    }
    json_t *row = reg__table_row(c->k, o, c->include);
    json_decref(o);
    if (c->n++)
        sbuf_put(&c->b, ",", 1);
    rc = row ? jenc_append(&c->b, row) : ERR_NOMEM;
    json_decref(row);
    if (rc)
        return err_set(c->base.err, rc == ERR_NOMEM ? rc : ERR_INTERNAL,
                       rc == ERR_NOMEM ? NULL : "a row does not encode");
    return STORE_TAKE;
}

/* Runs the list with visit appending each item to c->b (which holds the
 * head), then closes the items array and adds the list's metadata:
 * metadata after items, as JSON objects are unordered. */
static int raw_list(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                    raw_ctx_t *c, store_visit_fn visit, char **body, size_t *len, err_t *err)
{
    store_list_result_t res = {0};
    int rc = list_run(r, k, ns, o, &c->base, visit, &res, err);
    if (!rc) {
        json_t *meta = list_meta(&res);
        static const char between[] = "],\"metadata\":";
        sbuf_put(&c->b, between, sizeof between - 1);
        /* meta is NULL only when out of memory. */
        int jr = jenc_append(&c->b, meta);
        json_decref(meta);
        sbuf_put(&c->b, "}", 1);
        if (jr || c->b.oom)
            rc = err_set(err, ERR_NOMEM, NULL);
    }
    store_list_result_free(&res);
    sel_free(c->base.labels);
    sel_free(c->base.fields);
    if (rc) {
        mem_free(c->b.p);
        return rc;
    }
    *body = c->b.p;
    *len = c->b.len;
    return 0;
}

int reg_list_raw(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                 char **body, size_t *len, err_t *err)
{
    raw_ctx_t c = {.base = {.err = err}};
    char av[160];
    api_version_of(k, av, sizeof av);
    char head[400];
    int hn = snprintf(head, sizeof head, "{\"apiVersion\":\"%s\",\"kind\":\"%sList\",\"items\":[",
                      av, k->kind);
    sbuf_put(&c.b, head, (size_t)hn);
    return raw_list(r, k, ns, o, &c, raw_visit, body, len, err);
}

int reg_list_table_raw(reg_t *r, const reg_kind_t *k, const char *ns, const reg_list_opts_t *o,
                       const char *api_version, const char *include, char **body, size_t *len,
                       err_t *err)
{
    raw_ctx_t c = {.base = {.err = err}, .k = k,
                   .include = include && *include ? include : "Metadata"};
    char head[200];
    int hn = snprintf(head, sizeof head, "{\"kind\":\"Table\",\"apiVersion\":\"%s\","
                      "\"columnDefinitions\":", api_version);
    sbuf_put(&c.b, head, (size_t)hn);
    json_t *defs = reg__table_columns(k);
    int jr = defs ? jenc_append(&c.b, defs) : ERR_NOMEM;
    json_decref(defs);
    if (jr) {
        mem_free(c.b.p);
        return err_set(err, ERR_NOMEM, NULL);
    }
    sbuf_put(&c.b, ",\"rows\":[", 9);
    return raw_list(r, k, ns, o, &c, row_visit, body, len, err);
}

/* ---- create ---------------------------------------------------------------------- */

/* Fills what the server owns on create. */
static int init_metadata(json_t *obj, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    char uid[37], now[32];
    crypto_uuid4(uid);
    now_rfc3339(now);
    if (json_object_set_new(meta, "uid", json_string(uid)) ||
        json_object_set_new(meta, "creationTimestamp", json_string(now)) ||
        json_object_set_new(meta, "generation", json_integer(1)))
        return err_set(err, ERR_NOMEM, NULL);
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "selfLink");
    return 0;
}

static int put_with_rv_buf(const char *data, size_t len, uint64_t rev, char **out,
                           size_t *out_len);

/* The object as written (obj, which this takes over): resourceVersion
 * set; when the stored bytes are at hand, the response text is made from
 * them (no second serialization). The write is done by now; running out
 * of memory here still fails the request, as kube's does when it cannot
 * encode its answer: an object or a text without its resourceVersion is
 * no answer. */
static int finish_write(json_t *obj, uint64_t rev, json_t **out, const char *bytes,
                        size_t len, reg_outcome_t *oc, err_t *err)
{
    char rv[24];
    snprintf(rv, sizeof rv, "%" PRIu64, rev);
    if (json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion",
                            json_string(rv)) ||
        (bytes && oc && oc->want_body && !oc->body &&
         put_with_rv_buf(bytes, len, rev, &oc->body, &oc->body_len))) {
        json_decref(obj);
        return err_set(err, ERR_NOMEM, NULL);
    }
    *out = obj;
    return 0;
}

/* Creates body. track: record the write as the manager's Update (an apply
 * that creates has already recorded its Apply entry). */
static int create(reg_t *r, const reg_kind_t *k, const char *ns, json_t *obj,
                  const reg_write_opts_t *o, int track, json_t **out, reg_outcome_t *oc,
                  err_t *err)
{
    /* obj is this function's: stored and handed back, or released. */
    int rc = check_type(k, obj, ERR_BAD_REQUEST, err);
    if (!rc)
        rc = check_namespace(k, obj, ns, err);
    if (rc)
        goto fail;
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = str_at(obj, "metadata.name");
    const char *gen = str_at(obj, "metadata.generateName");
    if ((!name || !*name) && gen && *gen) {
        char nm[256];
        generate_name(gen, nm, sizeof nm);
        if (json_object_set_new(meta, "name", json_string(nm))) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto fail;
        }
        name = str_at(obj, "metadata.name");
    }
    if ((!name || !*name) && !k->create_only) {
        rc = err_set(err, ERR_INVALID, "%s.%s \"\" is invalid: metadata.name: Required value: "
                     "name or generateName is required", k->kind, k->group);
        err_add_cause(err, "FieldValueRequired", "metadata.name",
                      "Required value: name or generateName is required");
        goto fail;
    }
    /* A new object has no status of the client's making. */
    if (k->has_status)
        json_object_del(obj, "status");
    if (k->prepare)
        k->prepare(obj, r->cluster);
    rc = check_object(k, obj, NULL, o->field_validation, oc, err);
    if (!rc && !k->create_only)
        rc = reg_admit(r, k, o->user, "create", NULL, obj, err);
    if (rc)
        goto fail;

    if (k->create_only) {
        /* A review: answered, never stored. */
        rc = k->review(r, obj, err);
        if (rc)
            goto fail;
        oc->created = 1;
        *out = obj;
        return 0;
    }
    rc = init_metadata(obj, err);
    if (rc)
        goto fail;
    if (track) {
        char now[32], av[160];
        now_rfc3339(now);
        api_version_of(k, av, sizeof av);
        char mgr[130];
        rc = apply_track_update(NULL, obj, manager_of(o, mgr, sizeof mgr), av, now, k->list_rules, err);
        if (rc)
            goto fail;
    }
    oc->created = 1;
    if (o->dry_run) {
        *out = obj;
        return 0;
    }
    char key[STORE_MAX_KEY + 1];
    if (make_key(k, ns, name, key, sizeof key)) {
        rc = err_set(err, ERR_BAD_REQUEST, "name too long");
        goto fail;
    }
    size_t len = 0;
    char *bytes = encode_for_store(obj, &len);
    if (!bytes) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto fail;
    }
    uint64_t rev = 0;
    err_t se;
    err_clear(&se);
    rc = store_create(r->store, key, bytes, len, &rev, &se);
    if (rc) {
        mem_free(bytes);
        rc = store_error(k, name, rc, &se, err);
        goto fail;
    }
    rc = finish_write(obj, rev, out, bytes, len, oc, err);
    mem_free(bytes);
    return rc;
fail:
    json_decref(obj);
    return rc;
}

/* A create names no resourceVersion. kube-apiserver's storage refuses it
 * with this message as a 500; it is the client's error, so a 400 here. */
static int check_create_rv(const json_t *body, err_t *err)
{
    const json_t *rv = reg__at(body, "metadata.resourceVersion");
    if (rv && !json_is_null(rv) && !(json_is_string(rv) && !*json_string_value(rv)))
        return err_set(err, ERR_BAD_REQUEST, "resourceVersion should not be set on objects to "
                       "be created");
    return 0;
}

int reg_create(reg_t *r, const reg_kind_t *k, const char *ns, const json_t *body,
               const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    int rc = check_create_rv(body, err);
    if (rc)
        return rc;
    json_t *obj = json_deep_copy(body);
    if (!obj)
        return err_set(err, ERR_NOMEM, NULL);
    return create(r, k, ns, obj, o, 1, out, oc, err);
}

int reg_create_owned(reg_t *r, const reg_kind_t *k, const char *ns, json_t *body,
                     const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    int rc = check_create_rv(body, err);
    if (rc) {
        json_decref(body);
        return rc;
    }
    return create(r, k, ns, body, o, 1, out, oc, err);
}

/* ---- update and patch ------------------------------------------------------------ */

/*
 * Builds the object to store from the current one and what the client
 * sent (a full object for PUT, the patched object for PATCH): identity and
 * server-owned metadata from the current object, status from the current
 * object unless this is the status subresource (which takes only status),
 * generation raised when anything outside metadata and status changed.
 */
static int merge_update(const reg_kind_t *k, const json_t *cur, json_t *obj, int status,
                        int put, const char *name, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    const json_t *cmeta = json_object_get(cur, "metadata");
    const char *bname = str_at(obj, "metadata.name");
    /* kube's checkName: a body (or a patch's result) without a name is
     * refused, never refilled from the URL. */
    if (!bname || !*bname)
        return err_set(err, ERR_BAD_REQUEST, "the name of the object (%s based on URL) was "
                       "undeterminable: name must be provided", name);
    if (strcmp(bname, name))
        return err_set(err, ERR_BAD_REQUEST,
                       "the name of the object (%s) does not match the name on the URL (%s)",
                       bname, name);
    const char *buid = str_at(obj, "metadata.uid");
    const char *cuid = str_at(cur, "metadata.uid");
    /* A PUT's uid is a precondition (409); a patch that changes it tries
     * to change an immutable field (422), as kube words both. */
    if (buid && *buid && cuid && strcmp(buid, cuid) && put)
        return precondition_failed(k, name, "UID", buid, cuid, err);
    if (buid && *buid && cuid && strcmp(buid, cuid)) {
        char qk[200];
        snprintf(qk, sizeof qk, "%s.%s", k->kind, k->group);
        err_set(err, ERR_INVALID, "%s \"%s\" is invalid: metadata.uid: Invalid value: \"%s\": "
                "field is immutable", qk, name, buid);
        err_add_cause(err, "FieldValueInvalid", "metadata.uid", "Invalid value: \"%s\": field is "
                      "immutable", buid);
        return ERR_INVALID;
    }
    static const char *const kept[] = {"name", "namespace", "uid", "creationTimestamp",
                                       "generation", "deletionTimestamp",
                                       "deletionGracePeriodSeconds", NULL};
    int bad = 0;
    for (size_t i = 0; kept[i] && !bad; i++) {
        json_t *v = json_object_get(cmeta, kept[i]);
        if (v)
            bad = json_object_set(meta, kept[i], v);
        else
            json_object_del(meta, kept[i]);
    }
    if (bad) {
        /* obj is the caller's to release, half merged. */
    } else if (status) {
        /* /status: everything but status comes from the current object;
         * kube lets metadata through for CRDs only in part, keep it all. */
        json_t *st = json_incref(json_object_get(obj, "status"));
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(obj, tmp, key, v) {
            if (strcmp(key, "metadata"))
                json_object_del(obj, key);
        }
        json_object_foreach((json_t *)cur, key, v) {
            if (!bad && strcmp(key, "metadata") && strcmp(key, "status"))
                bad = json_object_set(obj, key, v);
        }
        if (st && !bad)
            bad = json_object_set_new(obj, "status", st);
        else
            json_decref(st);
    } else if (k->has_status) {
        json_t *st = json_object_get(cur, "status");
        if (st)
            bad = json_object_set(obj, "status", st);
        else
            json_object_del(obj, "status");
    }
    json_int_t gen = json_integer_value(json_object_get(cmeta, "generation"));
    if (!bad && !spec_equal(cur, obj))
        bad = json_object_set_new(meta, "generation", json_integer(gen + 1));
    return bad ? err_set(err, ERR_NOMEM, NULL) : 0;
}

/* Finalizers gone from an object being deleted: it goes now. */
static int deleting_done(const json_t *obj)
{
    return reg__at(obj, "metadata.deletionTimestamp") &&
           json_array_size(reg__at(obj, "metadata.finalizers")) == 0;
}

typedef enum { UPD_PUT, UPD_PATCH } upd_kind_t;

/* The update loop shared by PUT and PATCH: read, transform, CAS; a race
 * the client did not pin a resourceVersion for is retried. */
typedef struct upd {
    upd_kind_t kind;
    const json_t *body;          /* PUT */
    const char *ctype;           /* PATCH */
    const char *patch;
    size_t patch_len;
    json_t *patch_doc;           /* decoded once */
} upd_t;

/*
 * k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager lastAppliedManager:
 * when the manager "kubectl" moves from client-side to server-side apply,
 * conflicts with "kubectl-client-side-apply" over fields recorded in the
 * kubectl.kubernetes.io/last-applied-configuration annotation are not
 * conflicts. Every conflict must be with that manager (apply decides on
 * its entries), and the annotation must be there. The manager to yield
 * to, or NULL.
 */
static const char *csa_takeover_from(const json_t *cur, const char *manager)
{
    if (!manager || strcmp(manager, "kubectl"))
        return NULL;
    const json_t *ann = reg__at(cur, "metadata.annotations");
    if (!json_string_value(json_object_get(ann, "kubectl.kubernetes.io/last-applied-configuration")))
        return NULL;
    return "kubectl-client-side-apply";
}

static int patch_apply_once(const reg_kind_t *k, const upd_t *u, const json_t *cur,
                            int status, const reg_write_opts_t *o, json_t **out, err_t *err)
{
    const char *ct = u->ctype;
    if (!strncmp(ct, "application/json-patch+json", 27))
        return patch_json(cur, u->patch_doc, out, err);
    if (!strncmp(ct, "application/merge-patch+json", 28))
        return patch_merge(cur, u->patch_doc, out, err);
    if (!strncmp(ct, "application/strategic-merge-patch+json", 38))
        return patch_strategic(cur, u->patch_doc, k->list_rules, out, err);
    if (!strncmp(ct, "application/apply-patch+yaml", 28) ||
        !strncmp(ct, "application/apply-patch+json", 28)) {
        char now[32], av[160];
        now_rfc3339(now);
        api_version_of(k, av, sizeof av);
        json_t *applied = json_deep_copy(u->patch_doc);
        if (!applied)
            return err_set(err, ERR_NOMEM, NULL);
        /* The main resource's apply ignores status; /status's apply
         * owns nothing but status. */
        if (k->has_status && !status) {
            json_object_del(applied, "status");
        } else if (status) {
            const char *key;
            json_t *v;
            void *tmp;
            json_object_foreach_safe(applied, tmp, key, v) {
                if (strcmp(key, "apiVersion") && strcmp(key, "kind") &&
                    strcmp(key, "metadata") && strcmp(key, "status"))
                    json_object_del(applied, key);
            }
        }
        const char *sub = status ? "status" : "";
        /* kube's lastAppliedManager: `kubectl apply --server-side` takes
         * over what `kubectl apply` owned through its annotation. */
        int rc = apply_patch_yielding(cur, applied, o->field_manager, sub, o->force,
                                      csa_takeover_from(cur, o->field_manager), av, now,
                                      k->list_rules, out, err);
        json_decref(applied);
        return rc;
    }
    return err_set(err, ERR_UNSUPPORTED_MEDIA, "the body of the request was in an unknown "
                   "format - accepted media types include: application/json-patch+json, "
                   "application/merge-patch+json, application/apply-patch+yaml, "
                   "application/strategic-merge-patch+json");
}

static int is_apply(const upd_t *u)
{
    return u->kind == UPD_PATCH && (!strncmp(u->ctype, "application/apply-patch+yaml", 28) ||
                                    !strncmp(u->ctype, "application/apply-patch+json", 28));
}

static int do_update(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                     const upd_t *u, int status, const reg_write_opts_t *o, json_t **out,
                     reg_outcome_t *oc, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    if (make_key(k, ns, name, key, sizeof key))
        return store_error(k, name, ERR_NOT_FOUND, NULL, err);
    if (k->create_only)
        return err_set(err, ERR_METHOD_NOT_ALLOWED, "%s only supports create", k->resource);
    for (int attempt = 0;; attempt++) {
        store_value_t v = {0};
        json_t *cur = NULL, *obj = NULL;
        err_t se;
        err_clear(&se);
        int rc = store_get(r->store, key, &v, &se);
        if (rc == ERR_NOT_FOUND && is_apply(u) && !status) {
            /* Apply creates what is absent. */
            json_t *created = NULL;
            json_t *body = json_deep_copy(u->patch_doc);
            json_t *meta = json_object_get(body, "metadata");
            if (body && !json_is_object(meta)) {
                meta = json_object();
                if (json_object_set_new(body, "metadata", meta))
                    meta = NULL;
            }
            if (!meta) {
                json_decref(body);
                return err_set(err, ERR_NOMEM, NULL);
            }
            const char *bname = json_string_value(json_object_get(meta, "name"));
            if (bname && *bname && strcmp(bname, name)) {
                json_decref(body);
                return err_set(err, ERR_BAD_REQUEST, "the name of the object (%s) does not "
                               "match the name on the URL (%s)", bname, name);
            }
            if (json_object_set_new(meta, "name", json_string(name))) {
                json_decref(body);
                return err_set(err, ERR_NOMEM, NULL);
            }
            char now[32], av[160];
            now_rfc3339(now);
            api_version_of(k, av, sizeof av);
            if (k->has_status)
                json_object_del(body, "status");
            rc = apply_patch(NULL, body, o->field_manager, o->force, av, now, k->list_rules,
                             &created, err);
            json_decref(body);
            if (rc)
                return rc;
            return create(r, k, ns, created, o, 0, out, oc, err);
        }
        if (rc)
            return store_error(k, name, rc, &se, err);
        rc = reg__decode_stored(v.data, v.len, v.mod_rev, &cur, err);
        if (rc) {
            store_value_free(&v);
            return rc;
        }
        const char *want_rv = NULL;
        if (u->kind == UPD_PUT) {
            obj = json_deep_copy(u->body);
            if (!obj)
                rc = err_set(err, ERR_NOMEM, NULL);
        } else {
            rc = patch_apply_once(k, u, cur, status, o, &obj, err);
            /* A patch may carry a resourceVersion precondition. */
            if (!rc && str_at(u->patch_doc, "metadata.resourceVersion"))
                want_rv = str_at(u->patch_doc, "metadata.resourceVersion");
        }
        if (!rc && u->kind == UPD_PUT)
            want_rv = str_at(obj, "metadata.resourceVersion");
        if (!rc)
            rc = check_type(k, obj, u->kind == UPD_PUT ? ERR_BAD_REQUEST : ERR_INVALID, err);
        if (!rc && want_rv && *want_rv && strcmp(want_rv, str_at(cur, "metadata.resourceVersion")))
            rc = store_error(k, name, ERR_CONFLICT, NULL, err);
        if (!rc)
            rc = check_namespace(k, obj, ns, err);
        if (!rc)
            rc = merge_update(k, cur, obj, status, u->kind == UPD_PUT, name, err);
        if (!rc && k->prepare)
            k->prepare(obj, r->cluster);
        if (!rc)
            rc = check_object(k, obj, cur, o->field_validation, oc, err);
        if (!rc)
            rc = reg_admit(r, k, o->user, u->kind == UPD_PUT ? "update" : "patch", cur, obj, err);
        if (!rc && !is_apply(u)) {
            char now[32], av[160];
            now_rfc3339(now);
            api_version_of(k, av, sizeof av);
            char mgr[130];
            rc = apply_track_update_sub(cur, obj, manager_of(o, mgr, sizeof mgr),
                                        status ? "status" : "", av, now, k->list_rules, err);
        }
        if (rc) {
            json_decref(obj);
            json_decref(cur);
            store_value_free(&v);
            return rc;
        }
        /* A no-op writes nothing and keeps the resourceVersion. */
        if (json_object_set(json_object_get(obj, "metadata"), "resourceVersion",
                            json_object_get(json_object_get(cur, "metadata"), "resourceVersion"))) {
            json_decref(obj);
            json_decref(cur);
            store_value_free(&v);
            return err_set(err, ERR_NOMEM, NULL);
        }
        if (json_equal(obj, cur) || o->dry_run) {
            json_decref(cur);
            store_value_free(&v);
            *out = obj;
            return 0;
        }
        uint64_t rev = 0;
        char *bytes = NULL;
        size_t len = 0;
        if (deleting_done(obj)) {
            rc = store_delete(r->store, key, v.mod_rev, &rev, NULL, &se);
        } else {
            bytes = encode_for_store(obj, &len);
            rc = bytes ? store_update(r->store, key, bytes, len, v.mod_rev, &rev, NULL, &se)
                       : err_set(&se, ERR_NOMEM, NULL);
        }
        json_decref(cur);
        store_value_free(&v);
        if (rc == ERR_CONFLICT && !(want_rv && *want_rv) && attempt < REG_CAS_RETRIES) {
            /* Someone wrote in between; the client did not pin a version. */
            json_decref(obj);
            mem_free(bytes);
            continue;
        }
        if (rc) {
            json_decref(obj);
            mem_free(bytes);
            return store_error(k, name, rc, &se, err);
        }
        rc = finish_write(obj, rev, out, bytes, len, oc, err);
        mem_free(bytes);
        return rc;
    }
}

int reg_update(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
               const json_t *body, int status, const reg_write_opts_t *o, json_t **out,
               reg_outcome_t *oc, err_t *err)
{
    if (status && !k->has_status)
        return err_set(err, ERR_NOT_FOUND, "the server could not find the requested resource");
    upd_t u = {.kind = UPD_PUT, .body = body};
    return do_update(r, k, ns, name, &u, status, o, out, oc, err);
}

int reg_patch(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
              const char *content_type, const char *body, size_t len, int status,
              const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    if (status && !k->has_status)
        return err_set(err, ERR_NOT_FOUND, "the server could not find the requested resource");
    upd_t u = {.kind = UPD_PATCH, .ctype = content_type ? content_type : "",
               .patch = body, .patch_len = len};
    /* The patch type first: a body of no known type is not read. */
    static const char *const types[] = {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml",
        "application/apply-patch+json", NULL};
    size_t tl = strcspn(u.ctype, "; ");
    int known = 0;
    for (size_t i = 0; types[i] && !known; i++)
        known = strlen(types[i]) == tl && !strncmp(u.ctype, types[i], tl);
    if (!known)
        return err_set(err, ERR_UNSUPPORTED_MEDIA, "the body of the request was in an unknown "
                       "format - accepted media types include: application/json-patch+json, "
                       "application/merge-patch+json, application/apply-patch+yaml, "
                       "application/strategic-merge-patch+json");
    json_error_t je;
    u.patch_doc = jtok_loadb(body, len, 0, &je);
    if (!u.patch_doc && is_apply(&u)) {
        /* kubectl sends apply configurations as JSON; others send YAML. */
        int rc = yml_to_json(body, len, &u.patch_doc, err);
        if (rc)
            return rc;
        if (!json_is_object(u.patch_doc)) {
            json_decref(u.patch_doc);
            return err_set(err, ERR_BAD_REQUEST, "error decoding YAML: not an object");
        }
    }
    if (!u.patch_doc)
        return err_set(err, ERR_BAD_REQUEST, "error decoding patch: %s", je.text);
    if (is_apply(&u) && (!o->field_manager || !*o->field_manager)) {
        json_decref(u.patch_doc);
        err_add_cause(err, "FieldValueRequired", "fieldManager", "Required value: is required for apply patch");
        return err_set(err, ERR_INVALID,
                       "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                       "value: is required for apply patch");
    }
    if (!is_apply(&u) && o->force) {
        json_decref(u.patch_doc);
        err_add_cause(err, "FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch");
        return err_set(err, ERR_INVALID,
                       "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be "
                       "specified for non-apply patch");
    }
    /* kube's merge patch is an object (evanphx/json-patch's MergePatch
     * refuses anything else), where RFC 7386 would replace the object. */
    if (!strncmp(u.ctype, "application/merge-patch+json", 28) && !json_is_object(u.patch_doc)) {
        json_decref(u.patch_doc);
        return err_set(err, ERR_BAD_REQUEST, "Invalid JSON Patch");
    }
    /* kube's maxJSONPatchOperations. */
    if (!strncmp(u.ctype, "application/json-patch+json", 27) &&
        json_array_size(u.patch_doc) > REG_MAX_JSON_PATCH_OPS) {
        size_t n = json_array_size(u.patch_doc);
        json_decref(u.patch_doc);
        return err_set(err, ERR_REQUEST_TOO_LARGE, "The allowed maximum operations in a JSON "
                       "patch is %d, got %zu", REG_MAX_JSON_PATCH_OPS, n);
    }
    /* An apply names the object it configures (kube's checkName). */
    const char *an = is_apply(&u) ? str_at(u.patch_doc, "metadata.name") : NULL;
    if (an && *an && strcmp(an, name)) {
        int rc = err_set(err, ERR_BAD_REQUEST, "the name of the object (%s) does not match the "
                         "name on the URL (%s)", an, name);
        json_decref(u.patch_doc);
        return rc;
    }
    int rc = do_update(r, k, ns, name, &u, status, o, out, oc, err);
    json_decref(u.patch_doc);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------ */

/* verb: as authorized, "delete" or "deletecollection" (admission checks it
 * again where the object acts). */
static int delete_obj(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                      const reg_delete_opts_t *o, const char *verb, json_t **out,
                      reg_outcome_t *oc, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    if (make_key(k, ns, name, key, sizeof key))
        return store_error(k, name, ERR_NOT_FOUND, NULL, err);
    for (int attempt = 0;; attempt++) {
        store_value_t v = {0};
        json_t *cur = NULL;
        err_t se;
        err_clear(&se);
        int rc = store_get(r->store, key, &v, &se);
        if (rc)
            return store_error(k, name, rc, &se, err);
        rc = reg__decode_stored(v.data, v.len, v.mod_rev, &cur, err);
        uint64_t at = v.mod_rev;
        store_value_free(&v);
        if (rc)
            return rc;
        /* An object stored without a uid fails a uid precondition, as
         * kube's does: its uid is "". */
        const char *uid = str_at(cur, "metadata.uid");
        const char *rv = str_at(cur, "metadata.resourceVersion");
        if (o->precondition_uid && *o->precondition_uid &&
            (!uid || strcmp(o->precondition_uid, uid))) {
            rc = precondition_failed(k, name, "UID", o->precondition_uid, uid, err);
            json_decref(cur);
            return rc;
        }
        if (o->precondition_rv && *o->precondition_rv && (!rv || strcmp(o->precondition_rv, rv))) {
            rc = precondition_failed(k, name, "ResourceVersion", o->precondition_rv, rv, err);
            json_decref(cur);
            return rc;
        }
        rc = reg_admit(r, k, o->user, verb, cur, NULL, err);
        if (rc) {
            json_decref(cur);
            return rc;
        }
        json_t *meta = json_object_get(cur, "metadata");
        /* Held by finalizers: mark it and answer 202 with the object;
         * otherwise remove it. Either way one compare-and-swap write. */
        int held = json_array_size(json_object_get(meta, "finalizers")) > 0;
        if (held)
            oc->accepted = 1;
        if (o->dry_run || (held && json_object_get(meta, "deletionTimestamp"))) {
            *out = cur;
            return 0;
        }
        uint64_t rev = 0;
        if (held) {
            char now[32];
            now_rfc3339(now);
            size_t len;
            char *bytes = NULL;
            if (!json_object_set_new(meta, "deletionTimestamp", json_string(now)) &&
                !json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0)))
                bytes = encode_for_store(cur, &len);
            rc = bytes ? store_update(r->store, key, bytes, len, at, &rev, NULL, &se)
                       : err_set(&se, ERR_NOMEM, NULL);
            mem_free(bytes);
        } else {
            rc = store_delete(r->store, key, at, &rev, NULL, &se);
        }
        if (rc == ERR_CONFLICT && attempt < REG_CAS_RETRIES) {
            json_decref(cur);
            continue;
        }
        if (rc) {
            json_decref(cur);
            return store_error(k, name, rc, &se, err);
        }
        /* The marked object, or the deleted one at its deletion's revision. */
        return finish_write(cur, rev, out, NULL, 0, NULL, err);
    }
}

int reg_delete(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
               const reg_delete_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    return delete_obj(r, k, ns, name, o, "delete", out, oc, err);
}

int reg_delete_collection(reg_t *r, const reg_kind_t *k, const char *ns,
                          const reg_list_opts_t *lo, const reg_delete_opts_t *o, json_t **out,
                          err_t *err)
{
    json_t *list = NULL;
    reg_list_opts_t all = *lo;
    all.limit = 0;
    all.continue_token = NULL;
    int rc = reg_list(r, k, ns, &all, &list, err);
    if (rc)
        return rc;
    json_t *deleted = json_array();
    if (!deleted) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it) {
        json_t *d = NULL;
        reg_outcome_t oc = {0};
        err_t e;
        err_clear(&e);
        reg_delete_opts_t one = *o;
        one.precondition_rv = one.precondition_uid = NULL;
        rc = delete_obj(r, k, str_at(it, "metadata.namespace"), str_at(it, "metadata.name"),
                        &one, "deletecollection", &d, &oc, &e);
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            continue;  /* gone meanwhile */
        }
        /* What is deleted stays deleted; the request still fails, as
         * kube's DeleteCollection does, rather than answer success with
         * part of the selection. */
        if (rc) {
            err_forward(err, &e);
            goto out;
        }
        if (json_array_append_new(deleted, d)) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
    }
    rc = json_object_set(list, "items", deleted) ? err_set(err, ERR_NOMEM, NULL) : 0;
out:
    json_decref(deleted);
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* ---- Status ----------------------------------------------------------------------------- */

json_t *reg_status(const err_t *err, const reg_kind_t *k, const char *name)
{
    int code = err->code ? err->code : ERR_INTERNAL;
    /* Messages and names may quote the request's bytes, which need not be
     * UTF-8 (a path is percent-decoded): written as Go would write them. */
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:o, s:s, s:i}", "kind", "Status",
                           "apiVersion", "v1", "metadata", "status", "Failure", "message",
                           jenc_string_lossy(err->message[0] ? err->message
                                                             : err_default_message(code)),
                           "reason", err_reason(code), "code", err_http_status(code));
    if (k || err->ncauses) {
        json_t *details = json_object();
        if (name && *name)
            json_object_set_new(details, "name", jenc_string_lossy(name));
        if (k) {
            /* NewInvalid names the Kind; the other errors the resource. */
            json_object_set_new(details, "group", json_string(k->group));
            json_object_set_new(details, "kind",
                                json_string(code == ERR_INVALID ? k->kind : k->resource));
        }
        if (err->ncauses) {
            json_t *causes = json_array();
            for (int i = 0; i < err->ncauses; i++)
                json_array_append_new(causes, json_pack("{s:s, s:o, s:o}", "reason",
                                                        err->causes[i].type, "message",
                                                        jenc_string_lossy(err->causes[i].message),
                                                        "field",
                                                        jenc_string_lossy(err->causes[i].field)));
            json_object_set_new(details, "causes", causes);
        }
        json_object_set_new(st, "details", details);
    }
    return st;
}
