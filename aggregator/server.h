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
 * Start-up: the server listens before storage is open, so probes get an
 * answer from the first moment. Until agg_api_advance(AGG_READY), /livez
 * passes, /readyz and /healthz fail listing the checks not yet passed
 * (kube's format), /version answers, and every other request is a 503
 * ServiceUnavailable Status with Retry-After; agg_handle touches neither
 * reg, store nor authz until then.
 *
 * Readiness is one-way and says only that start-up is done: once
 * AGG_READY, /readyz passes until the process exits, whatever storage
 * does later. A storage failure after start is the failing request's
 * error (its Status: 500, 507 when the disk is full, ...), while
 * discovery, /version and the authorization webhook go on answering
 * from memory. Reporting not ready then would take the one replica out
 * of its Service and turn those answers, and every read that still
 * works, into connection failures too; kube-apiserver's etcd check on
 * /readyz serves replicas that share a remote etcd, where another
 * replica can take the traffic. The stage and the in-flight count are
 * atomics shared by every thread; the stage is published with release
 * order and read with acquire order.
 *
 * Thread-safe: agg_handle runs concurrently on the HTTP pool's threads.
 */
#ifndef EDGE_AGG_SERVER_H
#define EDGE_AGG_SERVER_H

#include "../authz/authz.h"
#include "../controllers/ctrl.h"
#include "../registry/registry.h"
#include <stdatomic.h>

#include "audit.h"
#include "authn.h"
#include "http.h"
#include "metrics.h"

/* How far start-up has come, in order. */
typedef enum agg_stage {
    AGG_STARTING,                /* serving probes; storage not open */
    AGG_STORAGE_OPEN,            /* the authorizer's index is being built */
    AGG_READY,                   /* reg, store and authz are set: serving all */
} agg_stage_t;

typedef struct agg_api {
    /* Set before agg_server_start, never changed. */
    agg_authn_t *authn;
    const char *cluster_name;
    agg_audit_t *audit;          /* NULL: no audit log */
    unsigned max_inflight;       /* 0: unlimited; watches are exempt */
    agg_metrics_t *metrics;      /* kube-apiserver's request metrics; NULL: none */
    /* Set before agg_api_advance(AGG_READY), never changed after it. */
    reg_t *reg;
    store_t *store;              /* for its metrics */
    authz_t *authz;
    ctrl_mgr_t *ctrl;            /* for its metrics; NULL: none */
    /* Internal. */
    atomic_uint inflight;
    atomic_int stage;            /* agg_stage_t; starts at AGG_STARTING (0) */
} agg_api_t;

/* The agg_handler_fn for agg_server_start; arg is an agg_api_t. */
void agg_handle(void *arg, agg_req_t *req);

/* Moves start-up on to stage (never back). Publishes with release order
 * the fields set before it, so a handler that sees AGG_READY sees them. */
void agg_api_advance(agg_api_t *api, agg_stage_t stage);

#endif
