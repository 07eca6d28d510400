#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/crypto.h"
#include "../lib/json/jenc.h"
#include "../lib/mem.h"

struct agg_audit {
    FILE *f;
    int owned;
    pthread_mutex_t mu;
};

int agg_audit_open(const char *path, agg_audit_t **out, err_t *err)
{
    agg_audit_t *a = mem_calloc(1, sizeof *a);
    if (!a)
        return err_set(err, ERR_NOMEM, NULL);
    if (!strcmp(path, "-")) {
        a->f = stdout;
    } else {
        a->f = fopen(path, "a");
        a->owned = 1;
    }
    if (!a->f) {
        int e = errno;
        mem_free(a);
        return err_set(err, ERR_IO, "--audit-log-path %s: %s", path, strerror(e));
    }
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return 0;
}

void agg_audit_close(agg_audit_t *a)
{
    if (!a)
        return;
    if (a->owned)
        fclose(a->f);
    pthread_mutex_destroy(&a->mu);
    mem_free(a);
}

void agg_audit_write(agg_audit_t *a, const json_t *ev)
{
    if (!a)
        return;
    size_t n;
    char *line = jenc_dumps(ev, &n);
    if (!line)
        return;
    pthread_mutex_lock(&a->mu);
    fwrite(line, 1, n, a->f);
    fputc('\n', a->f);
    fflush(a->f);
    pthread_mutex_unlock(&a->mu);
    mem_free(line);
}

static void rfc3339_micro(const struct timespec *ts, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%.19s.%06dZ", base, (int)(ts->tv_nsec / 1000));
}

/* What rec says of the user, the object and the decision, into ev. */
static void add_rec(json_t *ev, const agg_audit_rec_t *rec)
{
    if (rec->user) {
        json_t *groups = json_array();
        for (size_t i = 0; i < rec->user->ngroups; i++)
            json_array_append_new(groups, jenc_string_lossy(authz_user_group(rec->user, i)));
        json_object_set_new(ev, "user", json_pack("{s:o, s:o}", "username",
                                                  jenc_string_lossy(rec->user->name), "groups",
                                                  groups));
    }
    if (rec->decided && rec->resource_request) {
        json_t *ref = json_pack("{s:o, s:o, s:o}", "resource", jenc_string_lossy(rec->resource),
                                "apiGroup", jenc_string_lossy(rec->group), "apiVersion",
                                jenc_string_lossy(rec->version));
        if (*rec->namespace_)
            json_object_set_new(ref, "namespace", jenc_string_lossy(rec->namespace_));
        if (*rec->name)
            json_object_set_new(ref, "name", jenc_string_lossy(rec->name));
        if (*rec->subresource)
            json_object_set_new(ref, "subresource", jenc_string_lossy(rec->subresource));
        json_object_set_new(ev, "objectRef", ref);
    }
    if (rec->decided)
        json_object_set_new(ev, "annotations",
                            json_pack("{s:s, s:s}", "authorization.k8s.io/decision",
                                      rec->allowed ? "allow" : "forbid",
                                      "authorization.k8s.io/reason", rec->reason));
}

void agg_audit_request(agg_audit_t *a, agg_req_t *req, const agg_audit_rec_t *rec,
                       const char *id, const struct timespec *received)
{
    if (!a)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char t0[40], t1[40];
    rfc3339_micro(received, t0, sizeof t0);
    rfc3339_micro(&now, t1, sizeof t1);
    const char *verb = rec->decided ? rec->verb : agg_req_method(req);
    /* What comes from the request (path, headers, names) need not be
     * UTF-8; such bytes are written as U+FFFD, as kube-apiserver's are. */
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:[s], s:{s:{}, s:i}, s:s, s:s}",
                           "kind", "Event", "apiVersion", "audit.k8s.io/v1", "level", "Metadata",
                           "auditID", id, "stage", "ResponseComplete", "requestURI",
                           jenc_string_lossy(agg_req_path(req)), "verb", verb ? verb : "", "sourceIPs",
                           agg_req_remote(req), "responseStatus", "metadata", "code",
                           agg_req_status(req), "requestReceivedTimestamp", t0,
                           "stageTimestamp", t1);
    const char *ua = agg_req_header(req, "User-Agent");
    if (ua)
        json_object_set_new(ev, "userAgent", jenc_string_lossy(ua));
    add_rec(ev, rec);
    agg_audit_write(a, ev);
    json_decref(ev);
}


void agg_audit_internal(agg_audit_t *a, const agg_audit_rec_t *rec, const char *uri, int code)
{
    if (!a)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char t[40], id[37];
    rfc3339_micro(&now, t, sizeof t);
    crypto_uuid4(id);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:[], s:s, s:{s:{}, s:i},"
                           " s:s, s:s}",
                           "kind", "Event", "apiVersion", "audit.k8s.io/v1", "level", "Metadata",
                           "auditID", id, "stage", "ResponseComplete", "requestURI",
                           jenc_string_lossy(uri), "verb", rec->verb, "sourceIPs",
                           "userAgent", "edge-apiserver (in-process)", "responseStatus",
                           "metadata", "code", code, "requestReceivedTimestamp", t,
                           "stageTimestamp", t);
    add_rec(ev, rec);
    agg_audit_write(a, ev);
    json_decref(ev);
}
