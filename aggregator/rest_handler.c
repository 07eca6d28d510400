/*
 * The REST verbs of the kinds: get, list, create, update, patch, delete, deletecollection. See server_internal.h.
 */
#include "server_internal.h"

#include <stdio.h>
#include <string.h>

#include "../lib/mem.h"
#include "../lib/yaml.h"

static void decref(void *j) { json_decref(j); }

/* Errors name the options kind they belong to, or the resource's. */
static void send_failure(agg_req_t *req, const err_t *err, const reg_kind_t *ok_kind,
                         const reg_kind_t *k, const char *name)
{
    agg__send_error(req, err, ok_kind ? ok_kind : k, ok_kind ? NULL : name);
}

static void rest_get(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc,
                     const char *inc)
{
    const reg_kind_t *k = rt->k, *lo_kind = NULL;
    err_t err;
    err_clear(&err);
    reg_list_opts_t lo;
    char *body = NULL;
    size_t len = 0;
    int rc;
    if (rt->name && acc->table) {
        json_t *out = NULL;
        rc = reg_get(api->reg, k, rt->ns, rt->name, &out, &err);
        if (rc)
            agg__send_error(req, &err, k, rt->name);
        else
            agg__respond_obj(req, 200, out, k, acc);
        return;
    }
    if (rt->name) {
        /* Plain JSON: straight from the stored bytes. */
        rc = reg_get_raw(api->reg, k, rt->ns, rt->name, &body, &len, &err);
    } else {
        rc = agg__parse_list_opts(req, rt, &lo, &lo_kind, &err);
        /* A Table of a list: rows made as the objects are read. */
        if (!rc && acc->table)
            rc = reg_list_table_raw(api->reg, k, rt->ns, &lo, acc->table_version, inc, &body,
                                    &len, &err);
        else if (!rc)
            rc = reg_list_raw(api->reg, k, rt->ns, &lo, &body, &len, &err);
    }
    if (rc)
        send_failure(req, &err, lo_kind, k, rt->name);
    else
        agg_respond(req, 200, JSON_CT, body, len);
}

static void rest_delete(agg_api_t *api, agg_req_t *req, const route_t *rt,
                        const agg_accept_t *acc)
{
    const reg_kind_t *k = rt->k, *ok_kind = NULL;
    err_t err;
    err_clear(&err);
    reg_delete_opts_t dopts;
    json_t *body = NULL, *out = NULL;
    reg_outcome_t oc = {0};
    int rc = agg__parse_delete_opts(req, rt, &dopts, &body, &ok_kind, &err);
    agg_req_defer(req, decref, body);  /* dopts borrows from it */
    if (!rc && rt->name) {
        rc = reg_delete(api->reg, k, rt->ns, rt->name, &dopts, &out, &oc, &err);
    } else if (!rc) {
        reg_list_opts_t lo;
        rc = agg__parse_list_opts(req, rt, &lo, &ok_kind, &err);
        if (!rc)
            rc = reg_delete_collection(api->reg, k, rt->ns, &lo, &dopts, &out, &err);
    }
    if (rc)
        send_failure(req, &err, ok_kind, k, rt->name);
    else
        agg__respond_obj(req, oc.accepted ? 202 : 200, out, k, acc);
}

/* The body as JSON text: a YAML body (Content-Type application/yaml) is
 * decoded first, its JSON released with the request. */
static int body_json(agg_req_t *req, const char **body, size_t *len, err_t *err)
{
    *body = agg_req_body(req, len);
    if (!strcmp(agg_req_method(req), "PATCH"))
        return 0;  /* the patch type decides */
    int format = agg_body_format(agg_req_header(req, "Content-Type"));
    if (format == AGG_BODY_UNSUPPORTED)
        return err_set(err, ERR_UNSUPPORTED_MEDIA, AGG_BODY_FORMATS_MSG);
    if (format != AGG_BODY_YAML)
        return 0;
    json_t *doc = NULL;
    int rc = yml_to_json(*body, *len, &doc, err);
    if (rc)
        return rc;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(doc);
    if (!text || agg_req_defer(req, mem_free, text))
        return err_set(err, ERR_NOMEM, NULL);
    *body = text;
    *len = strlen(text);
    return 0;
}

static void rest_write(agg_api_t *api, agg_req_t *req, const route_t *rt,
                       const agg_accept_t *acc, int status)
{
    const char *m = agg_req_method(req);
    const reg_kind_t *k = rt->k, *ok_kind = NULL;
    err_t err;
    err_clear(&err);
    json_t *out = NULL, *obj = NULL;
    reg_outcome_t oc = {.want_body = !acc->table};
    reg_write_opts_t wo;
    const char *body, *name = rt->name;
    size_t len;
    char bname[256] = "";
    int rc = agg__parse_write_opts(req, rt, &wo, &ok_kind, &err);
    if (!rc)
        rc = body_json(req, &body, &len, &err);
    if (!rc && !strcmp(m, "POST")) {
        if (rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                         "the requested resource");
        if (!rc)
            rc = reg_decode_body(body, len, wo.field_validation, &obj, &oc, &err);
        /* Status details name the object the body named. */
        const char *bn = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                           "name"));
        if (bn) {
            snprintf(bname, sizeof bname, "%s", bn);
            name = bname;
        }
        if (!rc) {
            rc = reg_create_owned(api->reg, k, rt->ns, obj, &wo, &out, &oc, &err);
            obj = NULL;  /* the registry's now */
        }
    } else if (!rc && !strcmp(m, "PUT")) {
        if (!rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "PUT needs an object name");
        if (!rc)
            rc = reg_decode_body(body, len, wo.field_validation, &obj, &oc, &err);
        if (!rc)
            rc = reg_update(api->reg, k, rt->ns, rt->name, obj, status, &wo, &out, &oc, &err);
    } else if (!rc && !strcmp(m, "PATCH")) {
        if (!rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "PATCH needs an object name");
        if (!rc)
            rc = reg_patch(api->reg, k, rt->ns, rt->name, agg_req_header(req, "Content-Type"),
                           body, len, status, &wo, &out, &oc, &err);
    } else if (!rc) {
        rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                     "the requested resource");
    }
    agg_req_defer(req, decref, obj);
    agg__add_warnings(req, &oc);
    if (rc) {
        mem_free(oc.body);
        send_failure(req, &err, ok_kind, k, name);
    } else if (oc.body && !acc->table) {
        /* The written object's text was made from the stored bytes. */
        json_decref(out);
        agg_respond(req, oc.created ? 201 : 200, JSON_CT, oc.body, oc.body_len);
    } else {
        mem_free(oc.body);
        agg__respond_obj(req, oc.created ? 201 : 200, out, k, acc);
    }
}

void agg__rest(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc)
{
    const char *m = agg_req_method(req);
    const reg_kind_t *k = rt->k;
    int status = rt->sub && !strcmp(rt->sub, "status");
    if ((rt->sub && !status) || (k->create_only && rt->name)) {
        agg__send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource",
                       NULL);
        return;
    }
    if (k->create_only && strcmp(m, "POST")) {
        agg__send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on the "
                       "requested resource", NULL);
        return;
    }
    /* includeObject is None, Metadata or Object. */
    const char *inc = agg_req_query(req, "includeObject");
    if (inc && *inc && strcmp(inc, "None") && strcmp(inc, "Metadata") && strcmp(inc, "Object")) {
        agg__send_code(req, ERR_BAD_REQUEST, "unrecognized includeObject value: \"%s\"", inc);
        return;
    }
    if (!strcmp(m, "GET") && agg__qbool(req, "watch"))
        agg__watch(api, req, rt, acc);
    else if (!strcmp(m, "GET"))
        rest_get(api, req, rt, acc, inc);
    else if (!strcmp(m, "DELETE"))
        rest_delete(api, req, rt, acc);
    else
        rest_write(api, req, rt, acc, status);
}
