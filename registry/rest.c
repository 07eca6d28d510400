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
 *
 * The pipeline's files: this one holds the steps every stage shares
 * (encoding of stored objects, identity checks, the mapping of store
 * errors, body decoding); validate.c the names and the schema walk;
 * read.c get and list; write.c create, update, patch and delete;
 * status.c the Status of an error.
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


/* ---- small helpers ------------------------------------------------------- */

void reg__now_rfc3339(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *reg__str_at(const json_t *o, const char *path)
{
    return json_string_value(reg__at(o, path));
}

void reg__api_version_of(const reg_kind_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", k->group, k->version);
}

int reg__make_key(const reg_kind_t *k, const char *ns, const char *name, char *buf,
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
void reg__qualified_kind(const reg_kind_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", k->kind, k->group);
}

/* "iamroles.iam.theriseunion.io" */
void reg__qualified_resource(const reg_kind_t *k, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", k->resource, k->group);
}

void reg__warn(reg_outcome_t *oc, const char *fmt, const char *arg)
{
    if (!oc || oc->nwarnings >= REG_MAX_WARNINGS)
        return;
    snprintf(oc->warnings[oc->nwarnings++], sizeof oc->warnings[0], fmt, arg);
}

/* snprintf at buf + *len (buf holds n bytes), advancing *len by what was
 * written: a text too long is cut, and *len never passes the last byte,
 * so the next append never starts outside buf. */
void reg__append_fmt(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reg__append_fmt(char *buf, size_t n, size_t *len, const char *fmt, ...)
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
char *reg__encode_for_store(const json_t *obj, size_t *len)
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
            reg__warn(oc, "%s", je.text);
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

const char *reg_json_go_type(const json_t *v)
{
    return json_is_string(v) ? "string" : json_is_number(v) ? "number"
         : json_is_boolean(v) ? "bool" : json_is_array(v) ? "array"
         : json_is_null(v) ? "null" : "object";
}

/* What Go's decoder refuses in TypeMeta and ObjectMeta before any
 * validation runs: a field of the wrong JSON type, a timestamp that is
 * not RFC 3339. code is ERR_BAD_REQUEST for a body, ERR_INVALID for the
 * result of a patch (kube reports those as 422). */
static int check_meta_types(const json_t *obj, int code, err_t *err)
{
    if (!json_is_object(obj))
        return err_set(err, code, "json: cannot unmarshal %s into Go value of type "
                       "map[string]interface {}", reg_json_go_type(obj));
#define WRONG(v, field, go)                                                                \
    err_set(err, code, "json: cannot unmarshal %s into Go struct field %s of type %s",     \
            reg_json_go_type(v), field, go)
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

int reg__check_type(const reg_kind_t *k, json_t *obj, int code, err_t *err)
{
    int rc = check_meta_types(obj, code, err);
    if (rc)
        return rc;
    char av[160];
    reg__api_version_of(k, av, sizeof av);
    const char *bav = reg__str_at(obj, "apiVersion");
    const char *bk = reg__str_at(obj, "kind");
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

int reg__check_namespace(const reg_kind_t *k, json_t *obj, const char *ns, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    const char *bns = reg__str_at(obj, "metadata.namespace");
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
void reg__generate_name(const char *prefix, char *out, size_t n)
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
const char *reg__manager_of(const reg_write_opts_t *o, char *buf, size_t n)
{
    if (o->field_manager && *o->field_manager)
        return o->field_manager;
    const char *ua = o->user_agent && *o->user_agent ? o->user_agent : "unknown";
    snprintf(buf, n, "%.*s", (int)strcspn(ua, "/"), ua);
    return buf;
}

/* Everything but metadata and status: what raises generation. */
int reg__spec_equal(const json_t *a, const json_t *b)
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
int reg__precondition_failed(const reg_kind_t *k, const char *name, const char *what,
                               const char *want, const char *have, err_t *err)
{
    char qr[160];
    reg__qualified_resource(k, qr, sizeof qr);
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
int reg__store_error(const reg_kind_t *k, const char *name, int rc, const err_t *se,
                       err_t *err)
{
    char qr[160];
    reg__qualified_resource(k, qr, sizeof qr);
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


int reg__add_finalizer(json_t *obj, const char *finalizer)
{
    json_t *meta = json_object_get(obj, "metadata");
    json_t *fins = json_object_get(meta, "finalizers");
    if (!json_is_object(meta) || (fins && !json_is_array(fins) && !json_is_null(fins)))
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(fins, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), finalizer))
            return 0;
    }
    if (!json_is_array(fins)) {
        fins = json_array();
        if (!fins || json_object_set_new(meta, "finalizers", fins))
            return ERR_NOMEM;
    }
    return json_array_append_new(fins, json_string(finalizer)) ? ERR_NOMEM : 0;
}
