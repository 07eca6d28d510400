/*
 * server: the API's HTTP surface.
 *
 * Owns routing (health, version, discovery, OpenAPI, the REST paths of
 * every kind), per-request authentication and authorization, content
 * negotiation (JSON, Table, aggregated discovery), watch streaming, and
 * the translation of any error into a metav1.Status. It calls the
 * registry for objects and authz for decisions; it holds no state of its
 * own beyond configuration and readiness.
 *
 * Thread-safe: agg_handle runs concurrently on the HTTP pool's threads.
 */
#ifndef EDGE_AGG_SERVER_H
#define EDGE_AGG_SERVER_H

#include "../authz/authz.h"
#include "../registry/registry.h"
#include <stdatomic.h>

#include "audit.h"
#include "authn.h"
#include "http.h"

typedef struct agg_api {
    reg_t *reg;
    store_t *store;              /* for its metrics */
    authz_t *authz;
    agg_authn_t *authn;
    const char *cluster_name;
    agg_audit_t *audit;          /* NULL: no audit log */
    unsigned max_inflight;       /* 0: unlimited; watches are exempt */
    atomic_uint inflight;
    volatile int ready;          /* storage open and watches primed */
} agg_api_t;

/* The agg_handler_fn for agg_server_start; arg is an agg_api_t. */
void agg_handle(void *arg, agg_req_t *req);

#endif
