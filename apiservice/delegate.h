/*
 * delegate: authentication delegated to kube-apiserver, as a standard
 * aggregated server does it (k8s.io/apiserver/pkg/server/options/
 * authentication.go).
 *
 * Owns a kube client (--authentication-kubeconfig), a cache of TokenReview
 * answers (positive and negative, DELEGATE_TTL seconds each, keyed by the
 * token's SHA-256 so tokens are never kept), and the refresher of the
 * kube-system/extension-apiserver-authentication ConfigMap, whose CA
 * bundles and request-header settings it installs into the authenticator
 * at start and every minute (kube-apiserver re-syncs it every minute, and
 * rotated CAs must be picked up). Settings given by flags take precedence
 * over the ConfigMap's.
 *
 * Thread-safe.
 */
#ifndef EDGE_APISVC_DELEGATE_H
#define EDGE_APISVC_DELEGATE_H

#include "../aggregator/authn.h"
#include "../lib/err.h"

#define DELEGATE_TTL 10
#define DELEGATE_REFRESH 60

typedef struct apisvc_delegate apisvc_delegate_t;

/* What flags set explicitly; copied by apisvc_delegate_start. */
typedef struct apisvc_overrides {
    const char *client_ca_pem;      /* NULL: not given */
    int requestheader_from_flags;   /* --requestheader-client-ca-file given */
} apisvc_overrides_t;

/* Connects to kube-apiserver with kubeconfig (NULL: the in-cluster
 * configuration, see kc_from_kubeconfig). ERR_IO, ERR_BAD_REQUEST. */
int apisvc_delegate_new(const char *kubeconfig, apisvc_delegate_t **out, err_t *err);
/* Stops the refresher and frees; NULL is a no-op. */
void apisvc_delegate_free(apisvc_delegate_t *d);

/* An agg_token_review_fn (arg: the delegate): TokenReview, cached. */
int apisvc_token_review(void *arg, const char *token, authz_user_t *u, err_t *err);

/* Reads the ConfigMap once and installs what flags did not set into
 * authn. *trust receives the CA bundle the TLS layer should name when it
 * asks for client certificates (caller frees; NULL when none). A missing
 * ConfigMap is not an error (a warning is printed): tokens still work.
 * Then starts the periodic refresher. */
int apisvc_delegate_start(apisvc_delegate_t *d, agg_authn_t *authn,
                          const apisvc_overrides_t *ov, char **trust, err_t *err);

/* Upstream TokenReview calls made (for tests and metrics). */
unsigned long apisvc_delegate_reviews(const apisvc_delegate_t *d);

#endif
