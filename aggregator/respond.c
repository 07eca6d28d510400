/*
 * Answers: JSON, Tables and metav1.Status errors. See server_internal.h.
 */
#include "server_internal.h"

#include <stdio.h>
#include <string.h>

#include "../lib/json/jenc.h"

void agg__send_json(agg_req_t *req, int status, json_t *j, const char *ctype)
{
    size_t n = 0;
    char *txt = j ? jenc_dumps(j, &n) : NULL;
    json_decref(j);
    if (!txt) {
        agg_respond_str(req, 500, JSON_CT, "{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                        "\"status\":\"Failure\",\"message\":\"out of memory\",\"code\":500}");
        return;
    }
    agg_respond(req, status, ctype ? ctype : JSON_CT, txt, n);
}

void agg__send_error(agg_req_t *req, const err_t *err, const reg_kind_t *k, const char *name)
{
    int code = err->code ? err->code : ERR_INTERNAL;
    agg__send_json(req, err_http_status(code), reg_status(err, k, name), NULL);
}

void agg__send_code(agg_req_t *req, int code, const char *fmt, const char *arg)
{
    err_t e;
    err_clear(&e);
    err_set(&e, code, fmt, arg);
    agg__send_error(req, &e, NULL, NULL);
}

void agg__add_warnings(agg_req_t *req, const reg_outcome_t *oc)
{
    for (int i = 0; i < oc->nwarnings; i++) {
        /* RFC 7234 warn-code 299, agent "-", text quoted and escaped. */
        char v[600];
        size_t n = (size_t)snprintf(v, sizeof v, "299 - \"");
        for (const char *p = oc->warnings[i]; *p && n < sizeof v - 3; p++) {
            if (*p == '"' || *p == '\\')
                v[n++] = '\\';
            v[n++] = *p;
        }
        v[n++] = '"';
        v[n] = '\0';
        agg_add_header(req, "Warning", v);
    }
}

void agg__respond_obj(agg_req_t *req, int status, json_t *obj, const reg_kind_t *k,
                        const agg_accept_t *acc)
{
    if (acc->table) {
        json_t *t = reg_table(k, obj, acc->table_version, agg_req_query(req, "includeObject"));
        json_decref(obj);
        obj = t;
    }
    agg__send_json(req, status, obj, NULL);
}

