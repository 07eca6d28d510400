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

int apisvc_subject_access_review(apisvc_authorizer_t *z, const json_t *spec, int *allowed,
                                 err_t *err)
{
    *allowed = 0;
    json_t *body = json_pack("{s:s, s:s, s:O}", "apiVersion", "authorization.k8s.io/v1", "kind",
                             "SubjectAccessReview", "spec", spec),
           *resp = NULL;
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
