/*
 * authn: who is making a request.
 *
 * Owns the credentials the server was configured with (today:
 * --token-auth-file, kube-apiserver's CSV "token,user,uid,\"g1,g2\"") and
 * turns a request into an authz_user_t. Every authenticated user also gets
 * system:authenticated; a request without credentials is system:anonymous
 * in system:unauthenticated. A credential that is present but wrong is
 * ERR_UNAUTHORIZED, never anonymous.
 *
 * Thread-safe once loaded (read-only).
 */
#ifndef EDGE_AGG_AUTHN_H
#define EDGE_AGG_AUTHN_H

#include "../authz/authz.h"
#include "../storage/err.h"
#include "http.h"

typedef struct agg_authn agg_authn_t;

/* Loads the token file (NULL: no tokens). ERR_IO, ERR_BAD_REQUEST with
 * the line number of a malformed line. *out is the caller's. */
int agg_authn_new(const char *token_file, agg_authn_t **out, err_t *err);
void agg_authn_free(agg_authn_t *a);

/* Fills *u for the request. 0, or ERR_UNAUTHORIZED. */
int agg_authenticate(const agg_authn_t *a, agg_req_t *req, authz_user_t *u, err_t *err);

#endif
