/*
 * Query parameters and request options, read and validated as kube-apiserver reads them. See server_internal.h.
 */
#include "server_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/yaml.h"

/* A boolean query parameter as kube-apiserver converts one: absent is
 * false, "0" and "false" (any case) are false, anything else, "" and
 * "?watch" alone included, is true. */
int agg__qbool(agg_req_t *req, const char *key)
{
    const char *v = agg_req_query(req, key);
    return v && strcmp(v, "0") && strcasecmp(v, "false");
}

/* An integer query parameter read as Go's strconv.ParseInt(v, 10, 64):
 * an optional sign, then decimal digits, within int64. *out is left
 * alone when the parameter is absent; anything unreadable, "" included,
 * is a 400 with Go's message. */
int agg__qint(agg_req_t *req, const char *key, long long *out, err_t *err)
{
    const char *v = agg_req_query(req, key);
    if (!v)
        return 0;
    const char *p = v + (*v == '+' || *v == '-');
    int neg = *v == '-';
    unsigned long long n = 0, max = neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX;
    if (!*p)
        return err_set(err, ERR_BAD_REQUEST, "strconv.ParseInt: parsing \"%s\": invalid syntax",
                       v);
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return err_set(err, ERR_BAD_REQUEST,
                           "strconv.ParseInt: parsing \"%s\": invalid syntax", v);
        unsigned d = (unsigned)(*p - '0');
        if (n > (max - d) / 10)
            return err_set(err, ERR_BAD_REQUEST,
                           "strconv.ParseInt: parsing \"%s\": value out of range", v);
        n = n * 10 + d;
    }
    *out = neg ? (long long)(0 - n) : (long long)n;
    return 0;
}

/* The options kinds whose validation errors kube reports as Invalid
 * (422) with details naming them: CreateOptions.meta.k8s.io "" ... */
static const reg_kind_t opts_kind[] = {
    {.group = "meta.k8s.io", .kind = "CreateOptions", .resource = "createoptions"},
    {.group = "meta.k8s.io", .kind = "UpdateOptions", .resource = "updateoptions"},
    {.group = "meta.k8s.io", .kind = "PatchOptions", .resource = "patchoptions"},
    {.group = "meta.k8s.io", .kind = "DeleteOptions", .resource = "deleteoptions"},
    {.group = "meta.k8s.io", .kind = "ListOptions", .resource = "listoptions"},
};
#define LIST_OPTIONS (&opts_kind[4])

const reg_kind_t *agg__list_options(void)
{
    return LIST_OPTIONS;
}

/* One field error of an options object, as kube's field.ErrorList holds
 * it: type is "Forbidden", "Invalid value" or "Unsupported value", detail
 * what follows it. reg_invalid then words them all on the options kind. */
static void opts_err(err_t *err, const char *field, const char *type, const char *detail)
{
    const char *reason = !strcmp(type, "Forbidden") ? "FieldValueForbidden"
                       : !strcmp(type, "Invalid value") ? "FieldValueInvalid"
                       : "FieldValueNotSupported";
    err_add_cause(err, reason, field, "%s: %s", type, detail);
}

/* kube's ValidateListOptions (and, for a watch, its watch rules). */
int agg__validate_list_opts(agg_req_t *req, int watch, err_t *err)
{
    const char *match = agg_req_query(req, "resourceVersionMatch");
    const char *rv = agg_req_query(req, "resourceVersion");
    const char *cont = agg_req_query(req, "continue");
    int initial_set = agg_req_query(req, "sendInitialEvents") != NULL;
    char v[300];
    if (watch) {
        if (initial_set && (!match || strcmp(match, "NotOlderThan")))
            opts_err(err, "resourceVersionMatch", "Forbidden",
                     "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
        if (match && *match) {
            if (!initial_set)
                opts_err(err, "resourceVersionMatch", "Forbidden", "resourceVersionMatch is "
                         "forbidden for watch unless sendInitialEvents is provided");
            if (strcmp(match, "NotOlderThan")) {
                snprintf(v, sizeof v, "\"%.200s\": supported values: \"NotOlderThan\"", match);
                opts_err(err, "resourceVersionMatch", "Unsupported value", v);
            }
            if (cont && *cont)
                opts_err(err, "resourceVersionMatch", "Forbidden",
                         "resourceVersionMatch is forbidden when continue is provided");
        }
        return reg_invalid(LIST_OPTIONS, "", err);
    }
    if (match && *match) {
        if (!rv || !*rv)
            opts_err(err, "resourceVersionMatch", "Forbidden",
                     "resourceVersionMatch is forbidden unless resourceVersion is provided");
        if (cont && *cont)
            opts_err(err, "resourceVersionMatch", "Forbidden",
                     "resourceVersionMatch is forbidden when continue is provided");
        if (strcmp(match, "Exact") && strcmp(match, "NotOlderThan")) {
            snprintf(v, sizeof v, "\"%.200s\": supported values: \"Exact\", \"NotOlderThan\", "
                     "\"\"", match);
            opts_err(err, "resourceVersionMatch", "Unsupported value", v);
        }
        if (!strcmp(match, "Exact") && rv && !strcmp(rv, "0"))
            opts_err(err, "resourceVersionMatch", "Forbidden",
                     "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
    }
    if (initial_set)
        opts_err(err, "sendInitialEvents", "Forbidden", "sendInitialEvents is forbidden for list");
    return reg_invalid(LIST_OPTIONS, "", err);
}

static const reg_kind_t *opts_kind_of(const char *method)
{
    return &opts_kind[!strcmp(method, "PUT") ? 1 : !strcmp(method, "PATCH") ? 2
                      : !strcmp(method, "DELETE") ? 3 : 0];
}

/* kube's field.NotSupported on an options kind, as NewInvalid words it. */
static int opts_unsupported(err_t *err, const reg_kind_t *ok, const char *field,
                            const char *value, const char *supported)
{
    char body[400];
    snprintf(body, sizeof body, "%s: supported values: %s", value, supported);
    opts_err(err, field, "Unsupported value", body);
    return reg_invalid(ok, "", err);
}

/* dryRun is a list whose only allowed value is "All" (ValidateDryRun). */
static int check_dry_run(const char *dry, const reg_kind_t *ok, int *out, err_t *err)
{
    if (!dry)
        return 0;
    if (strcmp(dry, "All")) {
        char v[300];
        snprintf(v, sizeof v, "[]string{\"%.256s\"}", dry);
        return opts_unsupported(err, ok, "dryRun", v, "\"All\"");
    }
    *out = 1;
    return 0;
}

/* Sets *ok_kind to the options kind an error belongs to. */
int agg__parse_write_opts(agg_req_t *req, const route_t *rt, reg_write_opts_t *o,
                            const reg_kind_t **ok_kind, err_t *err)
{
    memset(o, 0, sizeof *o);
    o->user = rt->user;
    const reg_kind_t *ok = *ok_kind = opts_kind_of(agg_req_method(req));
    if (check_dry_run(agg_req_query(req, "dryRun"), ok, &o->dry_run, err))
        return err->code;
    const char *fv = agg_req_query(req, "fieldValidation");
    if (!fv || !*fv || !strcmp(fv, "Warn"))
        o->field_validation = REG_FV_WARN;
    else if (!strcmp(fv, "Strict"))
        o->field_validation = REG_FV_STRICT;
    else if (!strcmp(fv, "Ignore"))
        o->field_validation = REG_FV_IGNORE;
    else {
        char v[300];
        snprintf(v, sizeof v, "\"%.256s\"", fv);
        return opts_unsupported(err, ok, "fieldValidation", v,
                                "\"\", \"Ignore\", \"Strict\", \"Warn\"");
    }
    o->field_manager = agg_req_query(req, "fieldManager");
    for (const unsigned char *p = (const unsigned char *)o->field_manager; p && *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            /* ValidateFieldManager: printable characters only. */
            char v[300];
            size_t n = 0;
            v[n++] = '"';
            for (const unsigned char *q = (const unsigned char *)o->field_manager;
                 *q && n < sizeof v - 6; q++)
                n += (size_t)(*q < 0x20 || *q == 0x7f || *q == '"' || *q == '\\'
                              ? (*q == '"' || *q == '\\' ? snprintf(v + n, 3, "\\%c", *q)
                                                          : snprintf(v + n, 5, "\\x%02x", *q))
                              : snprintf(v + n, 2, "%c", *q));
            snprintf(v + n, sizeof v - n, "\": must only contain printable characters");
            opts_err(err, "fieldManager", "Invalid value", v);
            return reg_invalid(ok, "", err);
        }
    }
    if (o->field_manager && strlen(o->field_manager) > 128) {
        err_add_cause(err, "FieldValueTooLong", "fieldManager",
                      "Too long: may not be more than 128 bytes");
        return reg_invalid(ok, "", err);
    }
    *ok_kind = NULL;
    o->force = agg__qbool(req, "force");
    o->user_agent = agg_req_header(req, "User-Agent");
    return 0;
}

/* Sets *ok_kind to ListOptions when the error is one of its validation. */
int agg__parse_list_opts(agg_req_t *req, const route_t *rt, reg_list_opts_t *o,
                           const reg_kind_t **ok_kind, err_t *err)
{
    memset(o, 0, sizeof *o);
    *ok_kind = NULL;
    if (agg__validate_list_opts(req, 0, err)) {
        *ok_kind = LIST_OPTIONS;
        return err->code;
    }
    o->label_selector = rt->label_selector;
    o->field_selector = agg_req_query(req, "fieldSelector");
    o->continue_token = agg_req_query(req, "continue");
    o->resource_version = agg_req_query(req, "resourceVersion");
    o->resource_version_match = agg_req_query(req, "resourceVersionMatch");
    /* As kube: a limit of zero or less lists everything; timeoutSeconds
     * must parse even where a list has no use for it. */
    long long lim = 0, ts = 0;
    if (agg__qint(req, "limit", &lim, err) || agg__qint(req, "timeoutSeconds", &ts, err))
        return err->code;
    o->limit = lim > 0 ? (size_t)lim : 0;
    if (o->continue_token && *o->continue_token && o->resource_version &&
        *o->resource_version && strcmp(o->resource_version, "0"))
        return err_set(err, ERR_BAD_REQUEST,
                       "specifying resource version is not allowed when using continue");
    return 0;
}

/* A DeleteOptions field of the wrong JSON type: Go's decoding error. */
static int delete_opts_type(const json_t *v, const char *field, const char *go_type, int ok,
                            err_t *err)
{
    if (!v || json_is_null(v) || ok)
        return 0;
    return err_set(err, ERR_BAD_REQUEST, "json: cannot unmarshal %s into Go struct field "
                   "DeleteOptions.%s of type %s", reg_json_go_type(v), field, go_type);
}

int agg__parse_delete_opts(agg_req_t *req, const route_t *rt, reg_delete_opts_t *o,
                             json_t **body, const reg_kind_t **ok_kind, err_t *err)
{
    memset(o, 0, sizeof *o);
    o->user = rt->user;
    o->grace_period_seconds = -1;
    *ok_kind = NULL;
    int orphan_set = 0;
    size_t len;
    const char *b = agg_req_body(req, &len);
    *body = NULL;
    if (len) {
        int format = agg_body_format(agg_req_header(req, "Content-Type"));
        if (format == AGG_BODY_UNSUPPORTED)
            return err_set(err, ERR_UNSUPPORTED_MEDIA, AGG_BODY_FORMATS_MSG);
        json_error_t je;
        if (format == AGG_BODY_YAML) {
            if (yml_to_json(b, len, body, err))
                return err->code;
            snprintf(je.text, sizeof je.text, "not an object");
        } else {
            *body = json_loadb(b, len, 0, &je);
        }
        if (!json_is_object(*body)) {
            json_decref(*body);
            *body = NULL;
            return err_set(err, ERR_BAD_REQUEST, "invalid DeleteOptions: %s", je.text);
        }
        const json_t *d = *body, *pre = json_object_get(d, "preconditions");
        const json_t *g = json_object_get(d, "gracePeriodSeconds");
        const json_t *dry = json_object_get(d, "dryRun");
        int dry_ok = json_is_array(dry);
        for (size_t i = 0; dry_ok && i < json_array_size(dry); i++)
            dry_ok = json_is_string(json_array_get(dry, i));
        if (delete_opts_type(json_object_get(d, "kind"), "kind", "string",
                             json_is_string(json_object_get(d, "kind")), err) ||
            delete_opts_type(json_object_get(d, "apiVersion"), "apiVersion", "string",
                             json_is_string(json_object_get(d, "apiVersion")), err) ||
            delete_opts_type(pre, "preconditions", "v1.Preconditions", json_is_object(pre), err) ||
            delete_opts_type(json_object_get(pre, "uid"), "preconditions.uid", "types.UID",
                             json_is_string(json_object_get(pre, "uid")), err) ||
            delete_opts_type(json_object_get(pre, "resourceVersion"),
                             "preconditions.resourceVersion", "string",
                             json_is_string(json_object_get(pre, "resourceVersion")), err) ||
            delete_opts_type(json_object_get(d, "propagationPolicy"), "propagationPolicy",
                             "v1.DeletionPropagation",
                             json_is_string(json_object_get(d, "propagationPolicy")), err) ||
            delete_opts_type(g, "gracePeriodSeconds", "int64", json_is_integer(g), err) ||
            delete_opts_type(json_object_get(d, "orphanDependents"), "orphanDependents", "bool",
                             json_is_boolean(json_object_get(d, "orphanDependents")), err) ||
            delete_opts_type(dry, "dryRun", "[]string", dry_ok, err))
            return err->code;
        o->precondition_uid = json_string_value(json_object_get(pre, "uid"));
        o->precondition_rv = json_string_value(json_object_get(pre, "resourceVersion"));
        o->propagation_policy = json_string_value(json_object_get(d, "propagationPolicy"));
        orphan_set = json_is_boolean(json_object_get(d, "orphanDependents"));
        if (json_is_integer(g))
            o->grace_period_seconds = (long)json_integer_value(g);
        for (size_t i = 0; i < json_array_size(dry); i++)
            if (check_dry_run(json_string_value(json_array_get(dry, i)), &opts_kind[3],
                              &o->dry_run, err)) {
                *ok_kind = &opts_kind[3];
                return err->code;
            }
    }
    const char *pp = agg_req_query(req, "propagationPolicy");
    if (pp && *pp)
        o->propagation_policy = pp;
    if (agg_req_query(req, "orphanDependents"))
        orphan_set = 1;
    if (orphan_set && o->propagation_policy) {
        char v[300];
        snprintf(v, sizeof v, "\"%.200s\": orphanDependents and deletionPropagation cannot be "
                 "both set", o->propagation_policy);
        opts_err(err, "propagationPolicy", "Invalid value", v);
        *ok_kind = &opts_kind[3];
        return reg_invalid(&opts_kind[3], "", err);
    }
    if (o->propagation_policy && strcmp(o->propagation_policy, "Background") &&
        strcmp(o->propagation_policy, "Foreground") && strcmp(o->propagation_policy, "Orphan")) {
        char v[300];
        snprintf(v, sizeof v, "\"%.256s\"", o->propagation_policy);
        *ok_kind = &opts_kind[3];
        return opts_unsupported(err, &opts_kind[3], "propagationPolicy", v,
                                "\"Foreground\", \"Background\", \"Orphan\", \"nil\"");
    }
    if (check_dry_run(agg_req_query(req, "dryRun"), &opts_kind[3], &o->dry_run, err)) {
        *ok_kind = &opts_kind[3];
        return err->code;
    }
    return 0;
}

