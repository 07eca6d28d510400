/*
 * authorizer: authorization delegated to kube-apiserver, as a standard
 * aggregated server delegates it (k8s.io/apiserver's delegating
 * authorizer, --authorization-kubeconfig): a SubjectAccessReview is posted
 * and its status.allowed read. kube-apiserver runs its whole chain (RBAC,
 * and this server as its webhook) to answer.
 *
 * Used by the admission step for what only the member cluster knows (may
 * this user update namespace N?). No cache: those checks come with writes
 * of Workspaces and NodeGroups, which are rare.
 *
 * Thread-safe.
 */
#ifndef EDGE_APISVC_AUTHORIZER_H
#define EDGE_APISVC_AUTHORIZER_H

#include "../authz/authz.h"
#include "../lib/err.h"

typedef struct apisvc_authorizer apisvc_authorizer_t;

/* Reads kubeconfig (NULL: the in-cluster configuration, see
 * kc_from_kubeconfig). ERR_IO, ERR_BAD_REQUEST, ERR_NOT_FOUND, ERR_NOMEM. */
int apisvc_authorizer_new(const char *kubeconfig, apisvc_authorizer_t **out, err_t *err);
/* NULL is a no-op. */
void apisvc_authorizer_free(apisvc_authorizer_t *z);

/* A reg_delegate_fn (arg: the authorizer): 0 and *allowed from
 * kube-apiserver's answer; ERR_UNAVAILABLE when it cannot be reached or
 * does not answer with a SubjectAccessReview, ERR_NOMEM. */
int apisvc_subject_access_review(void *arg, const authz_user_t *u, const authz_attrs_t *at,
                                 int *allowed, err_t *err);

/* Reviews posted (for tests and metrics). */
unsigned long apisvc_authorizer_reviews(const apisvc_authorizer_t *z);

#endif
