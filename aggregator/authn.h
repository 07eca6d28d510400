/*
 * authn: who is making a request.
 *
 * Owns the credentials the server trusts and turns a request into an
 * authz_user_t, in kube-apiserver's order:
 *   1. front proxy: a client certificate that verifies against the
 *      requestheader CA (clientAuth) and whose CN is in the allowed names
 *      (any CN when the list is empty) makes the X-Remote-User / -Group /
 *      -Extra-* headers (names configurable) the identity; in every other
 *      case those headers are ignored;
 *   2. x509: a client certificate that verifies against the client CA:
 *      CN is the user, O values the groups;
 *   3. bearer tokens: --token-auth-file (kube-apiserver's CSV), then the
 *      delegated reviewer (TokenReview against kube-apiserver) if one is
 *      installed;
 *   4. no credentials: system:anonymous in system:unauthenticated.
 * Every authenticated user also gets system:authenticated. A credential
 * that is present but does not verify is ERR_UNAUTHORIZED, never anonymous.
 *
 * The CA bundles may be replaced at run time (the
 * extension-apiserver-authentication ConfigMap rotates them); lookups
 * take a read lock. Thread-safe.
 */
#ifndef EDGE_AGG_AUTHN_H
#define EDGE_AGG_AUTHN_H

#include "../authz/authz.h"
#include "../lib/err.h"
#include "http.h"

typedef struct agg_authn agg_authn_t;

/* A delegated token check: 0 and *u filled when the token is valid,
 * ERR_UNAUTHORIZED when it is not, another code when the reviewer could
 * not answer (the request then fails with 401 too). */
typedef int (*agg_token_review_fn)(void *arg, const char *token, authz_user_t *u,
                                   err_t *err);

/* The front-proxy header settings; NULL fields take kube's defaults. */
typedef struct agg_requestheader {
    const char *client_ca_pem;   /* NULL: front-proxy authentication off */
    const char *allowed_names;   /* comma-separated CNs; empty: any */
    const char *username_headers;/* comma-separated; X-Remote-User */
    const char *uid_headers;     /* comma-separated; none by default */
    const char *group_headers;   /* X-Remote-Group */
    const char *extra_prefixes;  /* X-Remote-Extra- */
} agg_requestheader_t;

/* Loads the token file (NULL: none). ERR_IO, ERR_BAD_REQUEST naming the
 * line of a malformed entry. *out is the caller's (agg_authn_free). */
int agg_authn_new(const char *token_file, agg_authn_t **out, err_t *err);
void agg_authn_free(agg_authn_t *a);

/* Replaces the x509 client CA (NULL: off) and the front-proxy settings.
 * ERR_BAD_REQUEST when a PEM holds no certificate. Safe while serving. */
int agg_authn_set_client_ca(agg_authn_t *a, const char *pem, err_t *err);
int agg_authn_set_requestheader(agg_authn_t *a, const agg_requestheader_t *rh, err_t *err);

/* Installs the delegated token reviewer (before serving). */
void agg_authn_set_token_review(agg_authn_t *a, agg_token_review_fn fn, void *arg);

/* Fills *u for the request. 0, or ERR_UNAUTHORIZED. */
int agg_authenticate(agg_authn_t *a, agg_req_t *req, authz_user_t *u, err_t *err);

#endif
