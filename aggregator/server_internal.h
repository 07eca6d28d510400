/*
 * server_internal: what the files of the API's HTTP surface share, and
 * nothing outside aggregator/ may use. server.c routes and authorizes;
 * respond.c writes JSON answers and Status errors; options.c reads query
 * parameters and request options as kube-apiserver does; rest_handler.c serves
 * the REST verbs of the kinds; watchstream.c streams watches; health.c
 * answers probes and start-up. Same threading rule as server.h.
 */
#ifndef EDGE_AGG_SERVER_INTERNAL_H
#define EDGE_AGG_SERVER_INTERNAL_H

#include "negotiate.h"
#include "server.h"

#define JSON_CT "application/json"

/* What a resource path names, who asks, and the label selector the
 * registry is to apply (the query's, or one narrowed to the scope the
 * request was authorized at). */
typedef struct route {
    const reg_kind_t *k;
    const char *ns;
    const char *name;
    const char *sub;
    const authz_user_t *user;
    const char *label_selector;
} route_t;


/* ---- respond.c: answers ---- */

/* Sends j (consumed; NULL is a 500) as JSON, with ctype or JSON_CT. */
void agg__send_json(agg_req_t *req, int status, json_t *j, const char *ctype);
/* Sends err as a metav1.Status naming k and name (either may be NULL). */
void agg__send_error(agg_req_t *req, const err_t *err, const reg_kind_t *k, const char *name);
/* Sends a Status with code and the message fmt (one %s: arg). */
void agg__send_code(agg_req_t *req, int code, const char *fmt, const char *arg);
/* The registry's warnings as Warning headers (RFC 7234, code 299). */
void agg__add_warnings(agg_req_t *req, const reg_outcome_t *oc);
/* Sends obj (consumed) as JSON, or as a Table when acc asks for one. */
void agg__respond_obj(agg_req_t *req, int status, json_t *obj, const reg_kind_t *k,
                      const agg_accept_t *acc);

/* ---- options.c: query parameters and request options ---- */

/* A boolean query parameter as kube converts one: absent, "0" and
 * "false" (any case) are false; anything else, "" included, is true. */
int agg__qbool(agg_req_t *req, const char *key);
/* An integer query parameter as Go's strconv.ParseInt(v, 10, 64); *out
 * untouched when absent; ERR_BAD_REQUEST with Go's message otherwise. */
int agg__qint(agg_req_t *req, const char *key, long long *out, err_t *err);
/* kube's ValidateListOptions (its watch rules when watch): 0 or
 * ERR_INVALID worded on ListOptions (agg__list_options()). */
int agg__validate_list_opts(agg_req_t *req, int watch, err_t *err);
const reg_kind_t *agg__list_options(void);
/* Each sets *ok_kind to the options kind (CreateOptions, ..., ListOptions)
 * an error is reported on, NULL when it is the resource's own. 0, or the
 * ERR_* code with err filled. */
int agg__parse_write_opts(agg_req_t *req, const route_t *rt, reg_write_opts_t *o,
                          const reg_kind_t **ok_kind, err_t *err);
int agg__parse_list_opts(agg_req_t *req, const route_t *rt, reg_list_opts_t *o,
                         const reg_kind_t **ok_kind, err_t *err);
/* *body: the decoded DeleteOptions (the caller's, json_decref), or NULL. */
int agg__parse_delete_opts(agg_req_t *req, const route_t *rt, reg_delete_opts_t *o,
                           json_t **body, const reg_kind_t **ok_kind, err_t *err);

/* ---- rest_handler.c and watchstream.c: the kinds' REST verbs ---- */

void agg__rest(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc);
void agg__watch(agg_api_t *api, agg_req_t *req, const route_t *rt, const agg_accept_t *acc);

/* ---- health.c: start-up and probes ---- */

agg_stage_t agg__stage_of(const agg_api_t *api);
/* The probe endpoint path names ("livez", "readyz", "healthz"), *check
 * the one check asked for (/readyz/<check>) or NULL; NULL when path is
 * not a probe. */
const char *agg__health_endpoint(const char *path, const char **check);
int agg__is_health(const char *path);
void agg__health(agg_api_t *api, agg_req_t *req, const char *endpoint, const char *one);
/* The 503 with Retry-After of a request before start-up is done. */
void agg__not_ready(agg_req_t *req, agg_stage_t stage);

#endif
