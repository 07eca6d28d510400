/*
 * The REST verbs of the kinds: get, list, create, update, patch, delete, deletecollection. See server_internal.h.
 */
#include "server_internal.h"

#include <stdio.h>
#include <string.h>

#include "../lib/mem.h"
#include "../lib/yaml.h"

void agg__rest(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc)
{
    const char *m = agg_req_method(req);
    const reg_kind_t *k = rt->k;
    err_t err;
    err_clear(&err);
    json_t *out = NULL;
    reg_outcome_t oc = {0};
    int status = rt->sub && !strcmp(rt->sub, "status");
    int rc;

    if (rt->sub && !status) {
        agg__send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
        return;
    }
    if (k->create_only && rt->name) {
        agg__send_code(req, ERR_NOT_FOUND, "the server could not find the requested resource", NULL);
        return;
    }
    if (k->create_only && strcmp(m, "POST")) {
        agg__send_code(req, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on the "
                  "requested resource", NULL);
        return;
    }
    /* 7: includeObject is None, Metadata or Object. */
    const char *inc = agg_req_query(req, "includeObject");
    if (inc && *inc && strcmp(inc, "None") && strcmp(inc, "Metadata") && strcmp(inc, "Object")) {
        agg__send_code(req, ERR_BAD_REQUEST, "unrecognized includeObject value: \"%s\"", inc);
        return;
    }
    if (!strcmp(m, "GET")) {
        if (agg__qbool(req, "watch")) {
            agg__watch(api, req, rt, acc);
            return;
        }
        reg_list_opts_t lo;
        const reg_kind_t *lo_kind = NULL;
        if (!acc->table) {
            /* Plain JSON: straight from the stored bytes. */
            char *body = NULL;
            size_t len = 0;
            if (rt->name) {
                rc = reg_get_raw(api->reg, k, rt->ns, rt->name, &body, &len, &err);
            } else {
                rc = agg__parse_list_opts(req, rt, &lo, &lo_kind, &err);
                if (!rc)
                    rc = reg_list_raw(api->reg, k, rt->ns, &lo, &body, &len, &err);
            }
            if (rc)
                agg__send_error(req, &err, lo_kind ? lo_kind : k, lo_kind ? NULL : rt->name);
            else
                agg_respond(req, 200, JSON_CT, body, len);
            return;
        }
        if (!rt->name) {
            /* A Table of a list: rows made as the objects are read. */
            char *body = NULL;
            size_t len = 0;
            rc = agg__parse_list_opts(req, rt, &lo, &lo_kind, &err);
            if (!rc)
                rc = reg_list_table_raw(api->reg, k, rt->ns, &lo, acc->table_version, inc, &body,
                                        &len, &err);
            if (rc)
                agg__send_error(req, &err, lo_kind ? lo_kind : k, NULL);
            else
                agg_respond(req, 200, JSON_CT, body, len);
            return;
        }
        rc = reg_get(api->reg, k, rt->ns, rt->name, &out, &err);
        if (rc) {
            agg__send_error(req, &err, k, rt->name);
            return;
        }
        agg__respond_obj(req, 200, out, k, acc);
        return;
    }
    if (!strcmp(m, "DELETE")) {
        reg_delete_opts_t dopts;
        json_t *body = NULL;
        const reg_kind_t *ok_kind = NULL;
        rc = agg__parse_delete_opts(req, rt, &dopts, &body, &ok_kind, &err);
        if (!rc) {
            if (rt->name) {
                rc = reg_delete(api->reg, k, rt->ns, rt->name, &dopts, &out, &oc, &err);
            } else {
                reg_list_opts_t lo;
                rc = agg__parse_list_opts(req, rt, &lo, &ok_kind, &err);
                if (!rc)
                    rc = reg_delete_collection(api->reg, k, rt->ns, &lo, &dopts, &out, &err);
            }
        }
        json_decref(body);
        if (rc) {
            agg__send_error(req, &err, ok_kind ? ok_kind : k, ok_kind ? NULL : rt->name);
            return;
        }
        agg__respond_obj(req, oc.accepted ? 202 : 200, out, k, acc);
        return;
    }
    reg_write_opts_t wo;
    oc.want_body = !acc->table;
    const reg_kind_t *ok_kind = NULL;
    rc = agg__parse_write_opts(req, rt, &wo, &ok_kind, &err);
    if (rc) {
        agg__send_error(req, &err, ok_kind ? ok_kind : k, ok_kind ? NULL : rt->name);
        return;
    }
    size_t len;
    const char *body = agg_req_body(req, &len);
    /* A YAML body (Content-Type application/yaml) is decoded to JSON first. */
    char *yaml_json = NULL;
    int format = strcmp(m, "PATCH") ? agg_body_format(agg_req_header(req, "Content-Type"))
                                    : AGG_BODY_JSON;  /* the patch type decides */
    if (!rc && format == AGG_BODY_UNSUPPORTED)
        rc = err_set(&err, ERR_UNSUPPORTED_MEDIA, AGG_BODY_FORMATS_MSG);
    if (!rc && format == AGG_BODY_YAML) {
        json_t *doc = NULL;
        rc = yml_to_json(body, len, &doc, &err);
        if (!rc) {
            yaml_json = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(doc);
            if (!yaml_json)
                rc = err_set(&err, ERR_NOMEM, NULL);
            else {
                body = yaml_json;
                len = strlen(yaml_json);
            }
        }
    }
    if (!rc && !strcmp(m, "POST")) {
        json_t *obj = NULL;
        if (rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "the server does not allow this method on "
                         "the requested resource");
        if (!rc)
            rc = reg_decode_body(body, len, wo.field_validation, &obj, &oc, &err);
        /* Status details name the object the body named. */
        char bname[256] = "";
        const char *bn = obj ? json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")) : NULL;
        if (bn)
            snprintf(bname, sizeof bname, "%s", bn);
        if (!rc) {
            rc = reg_create_owned(api->reg, k, rt->ns, obj, &wo, &out, &oc, &err);
            obj = NULL;
        }
        json_decref(obj);
        if (rc && *bname) {
            mem_free(oc.body);
            agg__send_error(req, &err, k, bname);
            mem_free(yaml_json);
            return;
        }
    } else if (!rc && !strcmp(m, "PUT")) {
        json_t *obj = NULL;
        if (!rt->name)
            rc = err_set(&err, ERR_METHOD_NOT_ALLOWED, "PUT needs an object name");
        if (!rc)
            rc = reg_decode_body(body, len, wo.field_validation, &obj, &oc, &err);
        if (!rc)
            rc = reg_update(api->reg, k, rt->ns, rt->name, obj, status, &wo, &out, &oc, &err);
        json_decref(obj);
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
    mem_free(yaml_json);
    agg__add_warnings(req, &oc);
    if (rc) {
        mem_free(oc.body);
        agg__send_error(req, &err, k, rt->name);
        return;
    }
    if (oc.body && !acc->table) {
        /* The written object's text was made from the stored bytes. */
        json_decref(out);
        agg_respond(req, oc.created ? 201 : 200, JSON_CT, oc.body, oc.body_len);
        return;
    }
    mem_free(oc.body);
    agg__respond_obj(req, oc.created ? 201 : 200, out, k, acc);
}

