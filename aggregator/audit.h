/*
 * audit: one audit.k8s.io/v1 Event per request, at level Metadata, as
 * JSON lines in --audit-log-path ("-": standard output), like
 * kube-apiserver's log backend; the events are built here too. Owns the file; writes are serialized and
 * each line is flushed whole. Thread-safe.
 */
#ifndef EDGE_AGG_AUDIT_H
#define EDGE_AGG_AUDIT_H

#include <jansson.h>
#include <time.h>

#include "../authz/authz.h"
#include "../lib/err.h"
#include "http.h"

typedef struct agg_audit agg_audit_t;

/* Opens (appends to) path. ERR_IO. *out is the caller's. */
int agg_audit_open(const char *path, agg_audit_t **out, err_t *err);
void agg_audit_close(agg_audit_t *a);
/* Writes ev (borrowed) as one line; NULL a is a no-op. */
void agg_audit_write(agg_audit_t *a, const json_t *ev);

/* What the audit event records about a request's authorization. */
typedef struct agg_audit_rec {
    const authz_user_t *user;    /* NULL until authenticated */
    int decided;
    int allowed;
    /* Copies: the request's attributes point into buffers of route(),
     * which has returned by the time the event is written. */
    int resource_request;
    char verb[32], group[256], version[64], resource[128], subresource[64];
    char namespace_[256], name[256];
    char reason[512];
} agg_audit_rec_t;


/* Writes kube-apiserver's audit Event at level Metadata (audit.k8s.io/v1)
 * for req, answered: its user, verb, objectRef and decision from rec, id
 * as auditID, received as requestReceivedTimestamp. NULL a is a no-op. */
void agg_audit_request(agg_audit_t *a, agg_req_t *req, const agg_audit_rec_t *rec,
                       const char *id, const struct timespec *received);

/* The same Event for a write made inside the server (a controller's):
 * rec as above (decided and allowed: the writer is in system:masters),
 * uri the path the write would have had over HTTP, code its HTTP status.
 * No source IP; userAgent "edge-apiserver (in-process)". NULL a is a
 * no-op. */
void agg_audit_internal(agg_audit_t *a, const agg_audit_rec_t *rec, const char *uri, int code);

#endif
