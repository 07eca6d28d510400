/*
 * delegate: authentication delegated to kube-apiserver, as a standard
 * aggregated server does it (k8s.io/apiserver/pkg/server/options/
 * authentication.go).
 *
 * Owns a kube client (--authentication-kubeconfig), a cache of TokenReview
 * answers (positive and negative, DELEGATE_TTL seconds each, keyed by the
 * token's SHA-256 so tokens are never kept), and the refresher of the
 * kube-system/extension-apiserver-authentication ConfigMap, whose CA
 * bundles and request-header settings it hands, at start and every minute
 * (kube-apiserver re-syncs it every minute, and rotated CAs must be picked
 * up), to an install callback the server provides. Settings given by
 * flags take precedence over the ConfigMap's. Users come back as kube's
 * UserInfo JSON: this module needs nothing of the server's own.
 *
 * Thread-safe.
 */
#ifndef EDGE_APISVC_DELEGATE_H
#define EDGE_APISVC_DELEGATE_H

#include <jansson.h>

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

/* TokenReview, cached: 0 and *user (the review's status.user, kube's
 * UserInfo: username, uid, groups, extra; a new reference) when
 * kube-apiserver authenticates the token; ERR_UNAUTHORIZED when it does
 * not; ERR_UNAVAILABLE when it cannot be asked (not cached); ERR_NOMEM. */
int apisvc_token_review(apisvc_delegate_t *d, const char *token, json_t **user, err_t *err);

/* The ConfigMap's authentication settings, borrowed for one install call.
 * List settings are comma-joined. */
typedef struct apisvc_authn_settings {
    const char *client_ca_pem;       /* the flag's when given; NULL: none */
    int requestheader;               /* 0: flags set them, leave as they are */
    const char *requestheader_client_ca_pem;
    const char *allowed_names, *username_headers, *uid_headers, *group_headers,
        *extra_prefixes;
} apisvc_authn_settings_t;

/* Installs settings into whatever authenticates; 0 or an ERR_* code with
 * err filled. Called from apisvc_delegate_start's thread and from the
 * refresher thread, never both at once. */
typedef int (*apisvc_install_fn)(void *arg, const apisvc_authn_settings_t *s, err_t *err);

/* Reads the ConfigMap once and installs what flags did not set through
 * install(arg, ...). *trust receives the CA bundle the TLS layer should
 * name when it asks for client certificates (caller frees; NULL when
 * none). A missing ConfigMap is not an error (a warning is logged):
 * tokens still work. Then starts the periodic refresher. */
int apisvc_delegate_start(apisvc_delegate_t *d, const apisvc_overrides_t *ov,
                          apisvc_install_fn install, void *arg, char **trust, err_t *err);

/* Upstream TokenReview calls made (for tests and metrics). */
unsigned long apisvc_delegate_reviews(const apisvc_delegate_t *d);

#endif
