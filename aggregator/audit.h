/*
 * audit: one audit.k8s.io/v1 Event per request, at level Metadata, as
 * JSON lines in --audit-log-path ("-": standard output), like
 * kube-apiserver's log backend. Owns the file; writes are serialized and
 * each line is flushed whole. Thread-safe.
 */
#ifndef EDGE_AGG_AUDIT_H
#define EDGE_AGG_AUDIT_H

#include <jansson.h>

#include "../lib/err.h"

typedef struct agg_audit agg_audit_t;

/* Opens (appends to) path. ERR_IO. *out is the caller's. */
int agg_audit_open(const char *path, agg_audit_t **out, err_t *err);
void agg_audit_close(agg_audit_t *a);
/* Writes ev (borrowed) as one line; NULL a is a no-op. */
void agg_audit_write(agg_audit_t *a, const json_t *ev);

#endif
