/*
 * metrics: kube-apiserver's request metrics. See metrics.h.
 *
 * Each family is a small hash table of series keyed by their rendered
 * label set; a request touches three or four series under one lock.
 */
#include "metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../apimachinery/keys.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../registry/registry.h"

/* k8s.io/apiserver's apiserver_request_duration_seconds buckets. */
static const double dur_le[] = {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5,
                                2,     3,     4,    5,   6,   8,   10,  15,  20,  30,  45, 60};
/* apiserver_response_sizes: ExponentialBuckets(1000, 10, 8). */
static const double size_le[] = {1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
#define NDUR (sizeof dur_le / sizeof dur_le[0])
#define NSIZE (sizeof size_le / sizeof size_le[0])
#define NBUCKETS 64

typedef struct series {
    struct series *next;
    double sum;
    long long value;             /* counter, gauge, or histogram count */
    unsigned long long b[NDUR];  /* histogram buckets (cumulative at render) */
    char labels[];
} series_t;

typedef struct family {
    series_t *t[NBUCKETS];
} family_t;

struct agg_metrics {
    pthread_mutex_t mu;
    family_t total, duration, sizes, longrunning, watchers;
    long long inflight[2];       /* readOnly, mutating */
};

agg_metrics_t *agg_metrics_new(void)
{
    agg_metrics_t *m = mem_calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void family_free(family_t *f)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        for (series_t *s = f->t[i], *n; s; s = n) {
            n = s->next;
            mem_free(s);
        }
}

void agg_metrics_free(agg_metrics_t *m)
{
    if (!m)
        return;
    family_free(&m->total);
    family_free(&m->duration);
    family_free(&m->sizes);
    family_free(&m->longrunning);
    family_free(&m->watchers);
    pthread_mutex_destroy(&m->mu);
    mem_free(m);
}

/* The series of labels in f, made when new; NULL when out of memory.
 * Caller holds mu. */
static series_t *series_of(family_t *f, const char *labels)
{
    unsigned long h = 5381;
    for (const char *p = labels; *p; p++)
        h = h * 33 + (unsigned char)*p;
    series_t **slot = &f->t[h % NBUCKETS];
    for (series_t *s = *slot; s; s = s->next)
        if (!strcmp(s->labels, labels))
            return s;
    size_t n = strlen(labels);
    series_t *s = mem_calloc(1, sizeof *s + n + 1);
    if (!s)
        return NULL;
    memcpy(s->labels, labels, n + 1);
    s->next = *slot;
    *slot = s;
    return s;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

/* Label values come from the request's path: quotes, backslashes and
 * line ends are dropped rather than break the text format. */
static void put_label(sbuf_t *b, const char *name, const char *value, int first)
{
    if (!first)
        sbuf_putc(b, ',');
    sbuf_puts(b, name);
    sbuf_puts(b, "=\"");
    for (const char *p = or_empty(value); *p; p++)
        if (*p != '"' && *p != '\\' && *p != '\n')
            sbuf_putc(b, *p);
    sbuf_putc(b, '"');
}

/* verb,dry_run?,group,version,resource,subresource,scope,component. */
static void common_labels(sbuf_t *b, const agg_metrics_req_t *r, int dry_run)
{
    put_label(b, "verb", r->verb, 1);
    if (dry_run)
        put_label(b, "dry_run", r->dry_run, 0);
    put_label(b, "group", r->group, 0);
    put_label(b, "version", r->version, 0);
    put_label(b, "resource", r->resource, 0);
    put_label(b, "subresource", r->subresource, 0);
    put_label(b, "scope", r->scope, 0);
    put_label(b, "component", "apiserver", 0);
}

static void observe(series_t *s, const double *le, size_t n, double v)
{
    s->value++;
    s->sum += v;
    for (size_t i = 0; i < n; i++)
        if (v <= le[i]) {
            s->b[i]++;
            break;
        }
}

void agg_metrics_request(agg_metrics_t *m, const agg_metrics_req_t *r)
{
    if (!m)
        return;
    sbuf_t a = SBUF_INIT, b = SBUF_INIT, c = SBUF_INIT;
    common_labels(&a, r, 1);
    char code[16];
    snprintf(code, sizeof code, "%d", r->code);
    sbuf_put(&b, a.p, a.len);
    put_label(&b, "code", code, 0);
    common_labels(&c, r, 0);
    if (!a.oom && !b.oom && !c.oom) {
        pthread_mutex_lock(&m->mu);
        series_t *s = series_of(&m->total, b.p);
        if (s)
            s->value++;
        if ((s = series_of(&m->duration, a.p)))
            observe(s, dur_le, NDUR, r->seconds);
        const char *v = or_empty(r->verb);
        if ((!strcmp(v, "GET") || !strcmp(v, "LIST")) && (s = series_of(&m->sizes, c.p)))
            observe(s, size_le, NSIZE, (double)r->response_bytes);
        pthread_mutex_unlock(&m->mu);
    }
    sbuf_free(&a);
    sbuf_free(&b);
    sbuf_free(&c);
}

void agg_metrics_inflight(agg_metrics_t *m, int mutating, int delta)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->inflight[mutating ? 1 : 0] += delta;
    pthread_mutex_unlock(&m->mu);
}

void agg_metrics_watch(agg_metrics_t *m, const agg_metrics_req_t *r, int delta)
{
    if (!m)
        return;
    sbuf_t a = SBUF_INIT, k = SBUF_INIT;
    common_labels(&a, r, 0);
    put_label(&k, "group", r->group, 1);
    put_label(&k, "version", r->version, 0);
    put_label(&k, "kind", r->kind, 0);
    if (!a.oom && !k.oom) {
        pthread_mutex_lock(&m->mu);
        series_t *s = series_of(&m->longrunning, a.p);
        if (s)
            s->value += delta;
        if ((s = series_of(&m->watchers, k.p)))
            s->value += delta;
        pthread_mutex_unlock(&m->mu);
    }
    sbuf_free(&a);
    sbuf_free(&k);
}

/* ---- rendering ----------------------------------------------------------------- */

static void header(sbuf_t *b, const char *name, const char *type, const char *help)
{
    char line[512];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    sbuf_puts(b, line);
}

static void render_values(sbuf_t *b, const char *name, const family_t *f)
{
    char line[64];
    for (size_t i = 0; i < NBUCKETS; i++)
        for (const series_t *s = f->t[i]; s; s = s->next) {
            sbuf_puts(b, name);
            sbuf_putc(b, '{');
            sbuf_puts(b, s->labels);
            snprintf(line, sizeof line, "} %lld\n", s->value);
            sbuf_puts(b, line);
        }
}

static void render_histograms(sbuf_t *b, const char *name, const family_t *f, const double *le,
                              size_t n)
{
    char line[128];
    for (size_t i = 0; i < NBUCKETS; i++)
        for (const series_t *s = f->t[i]; s; s = s->next) {
            unsigned long long cum = 0;
            for (size_t k = 0; k <= n; k++) {
                cum += k < n ? s->b[k] : 0;
                sbuf_puts(b, name);
                sbuf_puts(b, "_bucket{");
                sbuf_puts(b, s->labels);
                if (k < n)
                    snprintf(line, sizeof line, ",le=\"%g\"} %llu\n", le[k], cum);
                else
                    snprintf(line, sizeof line, ",le=\"+Inf\"} %lld\n", s->value);
                sbuf_puts(b, line);
            }
            const char *parts[] = {"_sum{", "_count{"};
            for (int k = 0; k < 2; k++) {
                sbuf_puts(b, name);
                sbuf_puts(b, parts[k]);
                sbuf_puts(b, s->labels);
                if (k)
                    snprintf(line, sizeof line, "} %lld\n", s->value);
                else
                    snprintf(line, sizeof line, "} %.9g\n", s->sum);
                sbuf_puts(b, line);
            }
        }
}

/* process_* from /proc/self, as Prometheus' process collector reads them. */
static void render_process(sbuf_t *b)
{
    char text[2048], line[256];
    FILE *fp = fopen("/proc/self/stat", "r");
    size_t n = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    if (fp)
        fclose(fp);
    text[n] = '\0';
    /* Fields after the command's closing parenthesis, from state on. */
    const char *p = strrchr(text, ')');
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                           "%*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) == 5) {
        double tick = (double)sysconf(_SC_CLK_TCK);
        double boot = 0;
        FILE *st = fopen("/proc/stat", "r");
        while (st && fgets(line, sizeof line, st))
            if (sscanf(line, "btime %lf", &boot) == 1)
                break;
        if (st)
            fclose(st);
        header(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        snprintf(line, sizeof line, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / tick);
        sbuf_puts(b, line);
        header(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        snprintf(line, sizeof line, "process_resident_memory_bytes %lld\n",
                 rss * (long long)sysconf(_SC_PAGESIZE));
        sbuf_puts(b, line);
        header(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        snprintf(line, sizeof line, "process_virtual_memory_bytes %llu\n", vsize);
        sbuf_puts(b, line);
        header(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.");
        snprintf(line, sizeof line, "process_start_time_seconds %.2f\n", boot + (double)start / tick);
        sbuf_puts(b, line);
    }
    long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        fds += e->d_name[0] != '.';
    if (d) {
        closedir(d);
        fds--;                   /* the directory's own */
    }
    header(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    snprintf(line, sizeof line, "process_open_fds %ld\n", fds);
    sbuf_puts(b, line);
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        header(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        snprintf(line, sizeof line, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
        sbuf_puts(b, line);
    }
}

static int count_visit(void *arg, const store_kv_t *kv)
{
    (void)kv;
    (*(long long *)arg)++;
    return STORE_SKIP;
}

static void render_storage(sbuf_t *b, store_t *store)
{
    header(b, "apiserver_storage_objects", "gauge",
           "Number of stored objects at the time of last check split by kind.");
    char line[384], prefix[256];
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        if (k->create_only)
            continue;
        keys_prefix(prefix, sizeof prefix, k->group, k->resource, k->namespaced, NULL);
        store_list_opts_t o = {.prefix = prefix};
        store_list_result_t res;
        long long n = 0;
        err_t err;
        err_clear(&err);
        if (store_list(store, &o, count_visit, &n, &res, &err))
            continue;
        store_list_result_free(&res);
        snprintf(line, sizeof line, "apiserver_storage_objects{resource=\"%s.%s\"} %lld\n",
                 k->resource, k->group, n);
        sbuf_puts(b, line);
    }
}

int agg_metrics_render(agg_metrics_t *m, store_t *store, char **buf, size_t *len)
{
    sbuf_t b = {*buf, *len, *len, 0};
    char line[128];
    if (m) {
        pthread_mutex_lock(&m->mu);
        header(&b, "apiserver_request_total", "counter",
               "Counter of apiserver requests broken out for each verb, dry run value, group, "
               "version, resource, scope, component, and HTTP response code.");
        render_values(&b, "apiserver_request_total", &m->total);
        header(&b, "apiserver_request_duration_seconds", "histogram",
               "Response latency distribution in seconds for each verb, dry run value, group, "
               "version, resource, subresource, scope and component.");
        render_histograms(&b, "apiserver_request_duration_seconds", &m->duration, dur_le, NDUR);
        header(&b, "apiserver_response_sizes", "histogram",
               "Response size distribution in bytes for each group, version, verb, resource, "
               "subresource, scope and component.");
        render_histograms(&b, "apiserver_response_sizes", &m->sizes, size_le, NSIZE);
        header(&b, "apiserver_current_inflight_requests", "gauge",
               "Maximal number of currently used inflight request limit of this apiserver per "
               "request kind in last second.");
        snprintf(line, sizeof line,
                 "apiserver_current_inflight_requests{request_kind=\"mutating\"} %lld\n"
                 "apiserver_current_inflight_requests{request_kind=\"readOnly\"} %lld\n",
                 m->inflight[1], m->inflight[0]);
        sbuf_puts(&b, line);
        header(&b, "apiserver_longrunning_requests", "gauge",
               "Gauge of all active long-running apiserver requests broken out by verb, group, "
               "version, resource, scope and component.");
        render_values(&b, "apiserver_longrunning_requests", &m->longrunning);
        header(&b, "apiserver_registered_watchers", "gauge",
               "Number of currently registered watchers for a given resources");
        render_values(&b, "apiserver_registered_watchers", &m->watchers);
        pthread_mutex_unlock(&m->mu);
    }
    if (store)
        render_storage(&b, store);
    render_process(&b);
    *buf = b.p;
    *len = b.len;
    return b.oom ? ERR_NOMEM : 0;
}
