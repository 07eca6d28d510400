/*
 * authorizer: authorization delegated to kube-apiserver, as a standard
 * aggregated server delegates it (k8s.io/apiserver's delegating
 * authorizer, --authorization-kubeconfig): a SubjectAccessReview is posted
 * and its status.allowed read. kube-apiserver runs its whole chain (RBAC,
 * and this server as its webhook) to answer.
 *
 * Used by the admission step for what only the member cluster knows (may
 * this user update namespace N?), through a callback the server installs.
 * No cache: those checks come with writes of Workspaces and NodeGroups,
 * which are rare. Speaks kube's types as JSON, so it needs nothing of the
 * server's own.
 *
 * Thread-safe.
 */
#ifndef EDGE_APISVC_AUTHORIZER_H
#define EDGE_APISVC_AUTHORIZER_H

#include <jansson.h>

#include "../lib/err.h"

typedef struct apisvc_authorizer apisvc_authorizer_t;

/* Reads kubeconfig (NULL: the in-cluster configuration, see
 * kc_from_kubeconfig). ERR_IO, ERR_BAD_REQUEST, ERR_NOT_FOUND, ERR_NOMEM. */
int apisvc_authorizer_new(const char *kubeconfig, apisvc_authorizer_t **out, err_t *err);
/* NULL is a no-op. */
void apisvc_authorizer_free(apisvc_authorizer_t *z);

/* Posts a SubjectAccessReview whose spec is spec (borrowed: user, uid,
 * groups, extra, and resourceAttributes or nonResourceAttributes, as
 * kube's delegating authorizer fills them). 0 and *allowed: 1 only when
 * kube-apiserver allows and does not deny; ERR_UNAVAILABLE when it cannot
 * be reached or does not answer with a SubjectAccessReview, ERR_NOMEM. */
int apisvc_subject_access_review(apisvc_authorizer_t *z, const json_t *spec, int *allowed,
                                 err_t *err);

/* Reviews posted (for tests and metrics). */
unsigned long apisvc_authorizer_reviews(const apisvc_authorizer_t *z);

#endif
