#include "authorizer.h"

#include <stdatomic.h>

#include "../lib/mem.h"
#include "kubeclient.h"

struct apisvc_authorizer {
    kc_t *kc;
    atomic_ulong reviews;
};

int apisvc_authorizer_new(const char *kubeconfig, apisvc_authorizer_t **out, err_t *err)
{
    apisvc_authorizer_t *z = mem_calloc(1, sizeof *z);
    if (!z)
        return err_set(err, ERR_NOMEM, NULL);
    int rc = kc_from_kubeconfig(kubeconfig, &z->kc, err);
    if (rc) {
        mem_free(z);
        return rc;
    }
    *out = z;
    return 0;
}

void apisvc_authorizer_free(apisvc_authorizer_t *z)
{
    if (!z)
        return;
    kc_free(z->kc);
    mem_free(z);
}

unsigned long apisvc_authorizer_reviews(const apisvc_authorizer_t *z)
{
    return atomic_load(&z->reviews);
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* The review's spec, as kube's delegating authorizer fills it. */
static json_t *review_of(const authz_user_t *u, const authz_attrs_t *at)
{
    json_t *groups = authz_user_groups_json(u), *extra = authz_user_extra_json(u);
    json_t *spec = json_pack("{s:s, s:s, s:o, s:o}", "user", u->name, "uid", u->uid, "groups",
                             groups, "extra", extra);
    if (at->resource_request)
        json_object_set_new(spec, "resourceAttributes",
                            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "namespace",
                                      or_empty(at->namespace_), "verb", or_empty(at->verb),
                                      "group", or_empty(at->api_group), "version",
                                      or_empty(at->api_version), "resource",
                                      or_empty(at->resource), "subresource",
                                      or_empty(at->subresource), "name", or_empty(at->name)));
    else
        json_object_set_new(spec, "nonResourceAttributes",
                            json_pack("{s:s, s:s}", "path", or_empty(at->path), "verb",
                                      or_empty(at->verb)));
    return json_pack("{s:s, s:s, s:o}", "apiVersion", "authorization.k8s.io/v1", "kind",
                     "SubjectAccessReview", "spec", spec);
}

int apisvc_subject_access_review(void *arg, const authz_user_t *u, const authz_attrs_t *at,
                                 int *allowed, err_t *err)
{
    apisvc_authorizer_t *z = arg;
    *allowed = 0;
    json_t *body = review_of(u, at), *resp = NULL;
    if (!body)
        return err_set(err, ERR_NOMEM, NULL);
    long status = 0;
    atomic_fetch_add(&z->reviews, 1);
    int rc = kc_request(z->kc, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                        body, &status, &resp, err);
    json_decref(body);
    if (rc)
        return rc;
    const json_t *st = json_object_get(resp, "status");
    if ((status != 200 && status != 201) || !json_is_object(st)) {
        json_decref(resp);
        return err_set(err, ERR_UNAVAILABLE, "kube-apiserver answered the SubjectAccessReview "
                       "with HTTP %ld", status);
    }
    /* Allowed only when kube says so and nothing it says denies. */
    *allowed = json_is_true(json_object_get(st, "allowed")) &&
               !json_is_true(json_object_get(st, "denied"));
    json_decref(resp);
    return 0;
}
