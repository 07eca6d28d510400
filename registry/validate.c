/*
 * Validation of an object on its way in: names, labels and annotations as kube checks them, and the walk of the kind's schema (prune unknown fields per fieldValidation, types, formats, enums, required), then the kind's own checks. See reg_internal.h and rest.c.
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

/* ---- names and metadata validation ------------------------------------------- */

/* One cause per message of a failed name check, as kube's field.Invalid
 * for each. */
static void invalid_each(err_t *err, const char *field, const char *value, const valid_msgs_t *ms)
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
        valid_msgs_t ms;
        valid_qualified_name(key, strlen(key), &ms);
        invalid_each(err, field, key, &ms);
        const char *s = json_string_value(v);
        if (!s)
            continue;
        total += strlen(key) + strlen(s);
        if (values_are_labels) {
            valid_label_value(s, strlen(s), &ms);
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
        reg__warn(w->oc, "%s", msg);
    reg__append_fmt(w->unknown, sizeof w->unknown, &w->unknown_len, "%s%s",
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
            reg__append_fmt(allowed, sizeof allowed, &al, "%s\"%s\"", i ? ", " : "",
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

int reg_invalid(const reg_kind_t *k, const char *name, err_t *err)
{
    if (!err->ncauses)
        return 0;
    char qk[160];
    reg__qualified_kind(k, qk, sizeof qk);
    char list[2048];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; i < err->ncauses; i++)
        reg__append_fmt(list, sizeof list, &len, "%s%s: %s", i ? ", " : "", err->causes[i].field,
                   err->causes[i].message);
    if (err->ncauses == 1)
        return err_set(err, ERR_INVALID, "%s \"%s\" is invalid: %s", qk, name ? name : "", list);
    return err_set(err, ERR_INVALID, "%s \"%s\" is invalid: [%s]", qk, name ? name : "", list);
}

/* Prunes and checks obj against its kind. */
int reg__check_object(const reg_kind_t *k, json_t *obj, const json_t *old, int mode,
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
    const char *name = reg__str_at(obj, "metadata.name");
    if (name) {
        valid_msgs_t ms;
        valid_dns_subdomain(name, strlen(name), &ms);
        invalid_each(err, "metadata.name", name, &ms);
    }
    validate_string_map(reg__at(obj, "metadata.labels"), "metadata.labels", 1, err);
    validate_string_map(reg__at(obj, "metadata.annotations"), "metadata.annotations", 0, err);
    if (k->validate)
        k->validate(obj, old, err);
    return reg_invalid(k, name, err);
}

