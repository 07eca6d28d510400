/*
 * The server's side of delegation to kube-apiserver. See delegation.h.
 */
#include "delegation.h"

#include <stdio.h>

static const char *or_empty(const char *s) { return s ? s : ""; }

/* kube's UserInfo JSON into u. */
static void user_from(const json_t *ju, authz_user_t *u)
{
    authz_user_reset(u);
    snprintf(u->name, sizeof u->name, "%s",
             or_empty(json_string_value(json_object_get(ju, "username"))));
    snprintf(u->uid, sizeof u->uid, "%s", or_empty(json_string_value(json_object_get(ju, "uid"))));
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(ju, "groups"), i, g) {
        authz_user_add_group(u, or_empty(json_string_value(g)));
    }
    const char *key;
    const json_t *vals;
    json_object_foreach((json_t *)json_object_get(ju, "extra"), key, vals) {
        json_array_foreach(vals, i, g) {
            authz_user_add_extra(u, key, or_empty(json_string_value(g)));
        }
    }
}

int agg_delegation_token_review(void *arg, const char *token, authz_user_t *u, err_t *err)
{
    json_t *ju = NULL;
    int rc = apisvc_token_review(arg, token, &ju, err);
    if (!rc)
        user_from(ju, u);
    json_decref(ju);
    return rc;
}

int agg_delegation_install(void *arg, const apisvc_authn_settings_t *s, err_t *err)
{
    agg_authn_t *authn = arg;
    int rc = agg_authn_set_client_ca(authn, s->client_ca_pem, err);
    if (rc || !s->requestheader)
        return rc;
    agg_requestheader_t rh = {.client_ca_pem = s->requestheader_client_ca_pem,
                              .allowed_names = s->allowed_names,
                              .username_headers = s->username_headers,
                              .uid_headers = s->uid_headers,
                              .group_headers = s->group_headers,
                              .extra_prefixes = s->extra_prefixes};
    return agg_authn_set_requestheader(authn, &rh, err);
}

/* The review's spec, as kube's delegating authorizer fills it. */
static json_t *spec_of(const authz_user_t *u, const authz_attrs_t *at)
{
    json_t *groups = authz_user_groups_json(u), *extra = authz_user_extra_json(u);
    json_t *spec = json_pack("{s:s, s:s, s:o*, s:o*}", "user", u->name, "uid", u->uid, "groups",
                             groups, "extra", extra);
    if (!spec || !groups || !extra) {
        json_decref(spec);
        return NULL;
    }
    json_t *attrs;
    if (at->resource_request)
        attrs = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "namespace",
                          or_empty(at->namespace_), "verb", or_empty(at->verb), "group",
                          or_empty(at->api_group), "version", or_empty(at->api_version),
                          "resource", or_empty(at->resource), "subresource",
                          or_empty(at->subresource), "name", or_empty(at->name));
    else
        attrs = json_pack("{s:s, s:s}", "path", or_empty(at->path), "verb", or_empty(at->verb));
    if (!attrs || json_object_set_new(spec, at->resource_request ? "resourceAttributes"
                                                                 : "nonResourceAttributes",
                                      attrs)) {
        json_decref(spec);
        return NULL;
    }
    return spec;
}

int agg_delegation_review(void *arg, const authz_user_t *u, const authz_attrs_t *at,
                          int *allowed, err_t *err)
{
    *allowed = 0;
    json_t *spec = spec_of(u, at);
    if (!spec)
        return err_set(err, ERR_NOMEM, NULL);
    int rc = apisvc_subject_access_review(arg, spec, allowed, err);
    json_decref(spec);
    return rc;
}
