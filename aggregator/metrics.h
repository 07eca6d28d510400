/*
 * metrics: kube-apiserver's own metric names for this server's requests,
 * so dashboards and alerts made for kube-apiserver work unchanged:
 *   apiserver_request_total{verb,dry_run,group,version,resource,
 *     subresource,scope,component,code}
 *   apiserver_request_duration_seconds (histogram, kube's buckets)
 *   apiserver_response_sizes (histogram; GET and LIST, as kube records)
 *   apiserver_current_inflight_requests{request_kind}
 *   apiserver_longrunning_requests{verb,group,version,resource,
 *     subresource,scope,component} (watches open)
 *   apiserver_registered_watchers{group,version,kind}
 *   apiserver_storage_objects{resource}
 *   process_resident_memory_bytes, process_virtual_memory_bytes,
 *   process_cpu_seconds_total, process_open_fds, process_max_fds,
 *   process_start_time_seconds
 * Labels follow k8s.io/apiserver/pkg/endpoints/metrics: verb is the
 * reported verb (GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE),
 * scope is "namespace", "resource", "cluster" or "" (non-resource), and a
 * non-resource request puts its path in subresource; component is
 * "apiserver".
 *
 * Every function is thread-safe. Allocation failures drop a sample, never
 * the request.
 */
#ifndef EDGE_AGG_METRICS_H
#define EDGE_AGG_METRICS_H

#include <stddef.h>

#include "../storage/store.h"

typedef struct agg_metrics agg_metrics_t;

/* NULL when out of memory. */
agg_metrics_t *agg_metrics_new(void);
void agg_metrics_free(agg_metrics_t *m);

/* What one request was, for its labels (borrowed; NULL reads as ""). */
typedef struct agg_metrics_req {
    const char *verb;            /* reported verb, upper case */
    const char *dry_run;         /* "All" or "" */
    const char *group, *version, *resource, *subresource, *scope;
    const char *kind;            /* for watches: the kind watched */
    int code;
    double seconds;
    size_t response_bytes;
} agg_metrics_req_t;

/* One finished request. */
void agg_metrics_request(agg_metrics_t *m, const agg_metrics_req_t *r);
/* A request counted against --max-requests-inflight starts (+1) or ends
 * (-1); mutating: not a GET or HEAD. */
void agg_metrics_inflight(agg_metrics_t *m, int mutating, int delta);
/* A watch opens (+1) or closes (-1). */
void agg_metrics_watch(agg_metrics_t *m, const agg_metrics_req_t *r, int delta);

/* The text of every series above, appended to *buf (mem_realloc'd; *len
 * bytes so far); store (may be NULL) gives apiserver_storage_objects,
 * counted with a key scan per kind. 0 or ERR_NOMEM. */
int agg_metrics_render(agg_metrics_t *m, store_t *store, char **buf, size_t *len);

#endif
