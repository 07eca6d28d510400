/*
 * delegation: what joins apiservice/ (kube-apiserver's TokenReview,
 * SubjectAccessReview and authentication ConfigMap, spoken as kube's JSON)
 * to the server's own authenticator and admission step. apiservice/ knows
 * nothing of either; main installs these functions.
 *
 * Thread-safe as the modules they join are.
 */
#ifndef EDGE_AGG_DELEGATION_H
#define EDGE_AGG_DELEGATION_H

#include "../apiservice/authorizer.h"
#include "../apiservice/delegate.h"
#include "../authz/authz.h"
#include "authn.h"

/* An agg_token_review_fn (arg: an apisvc_delegate_t): the reviewed
 * user as an authz_user_t. 0, ERR_UNAUTHORIZED, ERR_UNAVAILABLE, ERR_NOMEM. */
int agg_delegation_token_review(void *arg, const char *token, authz_user_t *u, err_t *err);

/* An apisvc_install_fn (arg: an agg_authn_t): the ConfigMap's client CA
 * and front-proxy settings into the authenticator. */
int agg_delegation_install(void *arg, const apisvc_authn_settings_t *s, err_t *err);

/* A reg_delegate_fn (arg: an apisvc_authorizer_t): asks kube-apiserver
 * whether u may do at, by a SubjectAccessReview filled as kube's
 * delegating authorizer fills it. 0 with *allowed, ERR_UNAVAILABLE,
 * ERR_NOMEM. */
int agg_delegation_review(void *arg, const authz_user_t *u, const authz_attrs_t *at,
                          int *allowed, err_t *err);

#endif
