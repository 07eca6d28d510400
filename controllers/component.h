/*
 * component: the Component controller's parts, shared by its files
 * (component.c the reconcile, component_chart.c the chart repository and
 * the chart cache, component_helm.c the installers and the helm runs).
 * The pure functions here (hashing, dependency order, URL rules, index
 * lookup) touch no store and no network, so unit tests drive them
 * directly.
 *
 * Thread safety: every function is safe to call from several workers at
 * once; none keeps state between calls.
 */
#ifndef EDGE_CTRL_COMPONENT_H
#define EDGE_CTRL_COMPONENT_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

#include "../lib/err.h"

#define COMP_MAX_INDEX (20u * 1024u * 1024u)   /* a repository's index.yaml */
#define COMP_MAX_CHART (50u * 1024u * 1024u)   /* a chart archive */
#define COMP_DEFAULT_NAMESPACE "edge-system"

/* ---- pure parts ------------------------------------------------------------------ */

/* out = hex SHA-256 of spec's canonical JSON: jansson's JSON_SORT_KEYS |
 * JSON_COMPACT encoding (object keys sorted by their UTF-8 bytes, no
 * whitespace, strings as UTF-8 with JSON's escapes, numbers as jansson
 * prints them), "null" for a missing spec. Only the spec is hashed, so
 * labels, annotations and status never change it. 0 or ERR_NOMEM. */
int comp_spec_hash(const json_t *spec, char out[65]);

/* A dependency graph is a JSON object: Component name -> array of the
 * names it depends on (a name that is not a key is a missing node). */

/* Whether start lies on a cycle of graph: 1 with the cycle written to
 * out as "a -> b -> a", starting at its lowest name (byte order), the
 * dependencies followed in byte order, so every member of a simple cycle
 * names it alike; 0 when not (out ""). */
int comp_cycle(const json_t *graph, const char *start, char *out, size_t cap);

/* Kahn's order of graph: *order (new array) lists the nodes whose
 * dependencies can all be installed first, each after its dependencies,
 * the lowest name first among those ready together; *stuck (new array,
 * sorted) the rest: members of a cycle, nodes depending on a missing
 * node, and nodes behind either. 0 or ERR_NOMEM. */
int comp_topo_order(const json_t *graph, json_t **order, json_t **stuck);

/* RFC 3986 reference resolution of ref against base (both NUL-
 * terminated) into out, dot segments removed, for http and https only:
 * 0, or -1 when the result is not an http(s) URL with a host, has
 * credentials in it (user@host), control or space characters or a
 * backslash, or is longer than cap. A base path is taken as a directory
 * (a chart repository's URL, as helm resolves a chart's URL against it). */
int comp_url_resolve(const char *base, const char *ref, char *out, size_t cap);

/* 1 when a and b (absolute http(s) URLs) have the same scheme, host
 * (ASCII case ignored) and port (the scheme's default when absent). */
int comp_url_same_origin(const char *a, const char *b);

/* 1 when url may be fetched under prefixes (comma-separated URL
 * prefixes, NULL or "": any http(s) URL): for some prefix, the same
 * origin and a path that equals the prefix's path or continues it at a
 * "/" (the prefix http://h/charts admits http://h/charts/x.tgz, not
 * http://h/charts-evil/). url must be one comp_url_resolve made (no dot
 * segments, no credentials). */
int comp_url_allowed(const char *url, const char *prefixes);

/* The entry of chart at version in index (index.yaml as JSON): the
 * entry whose version is exactly version, or with version NULL or "",
 * the highest by semver precedence among those that parse, pre-releases
 * left out as helm does. 0 with *entry borrowed from index, or
 * ERR_NOT_FOUND with why set (no such chart, no such version, no
 * release). */
int comp_index_find(const json_t *index, const char *chart, const char *version,
                    const json_t **entry, char *why, size_t cap);

/* ---- the chart repository and the cache (component_chart.c) ------------------------ */

/* What a fetch is asked (borrowed). */
typedef struct comp_chart_req {
    const char *data_dir;        /* the cache is <data_dir>/charts */
    const char *allowed;         /* --allowed-chart-repositories */
    const char *repository, *chart, *version;
    const char *known_version;   /* status.resolvedVersion: used when the
                                  * index cannot be read and it is cached */
} comp_chart_req_t;

/* What it found, or why not. */
typedef struct comp_chart {
    char version[128];
    char digest[65];
    char path[PATH_MAX];         /* the archive in the cache */
    const char *reason;          /* on failure: a CamelCase reason */
    char message[480];
    int retry;                   /* worth trying again later */
} comp_chart_t;

/* The version req resolves to now (spec.version, or the repository's
 * highest release), reading the index. 0, or -1 with out->reason. */
int comp_chart_resolve(const comp_chart_req_t *req, comp_chart_t *out);

/* Resolves, then makes sure the archive is in the cache: downloaded from
 * the entry's first URL when not, its SHA-256 checked against the
 * index's digest, its <chart>/Chart.yaml checked for the chart's name
 * and version, written atomically to <data_dir>/charts/<sha256>.tgz. An
 * exact version fetched once is never fetched again (the cache keeps
 * which archive it was). 0, or -1 with out->reason: RepositoryNotAllowed,
 * ChartNotFound, DigestMismatch, InvalidChart, FetchFailed. */
int comp_chart_fetch(const comp_chart_req_t *req, comp_chart_t *out);

/* The cached archive of digest: its path in out (cap bytes); 1 when it
 * is there, 0 when not. */
int comp_chart_cached(const char *data_dir, const char *digest, char *out, size_t cap);

/* ---- installers (component_helm.c) --------------------------------------------------- */

/* One install or uninstall of one Component (borrowed inputs). */
typedef struct comp_job {
    const char *name;            /* the release */
    const char *ns;              /* the target namespace */
    const char *chart_path;      /* the cached archive (install) */
    const json_t *values;        /* spec.values, or NULL */
    const json_t *cluster;       /* the target Cluster object */
    const char *helm;            /* --helm-binary */
    const char *data_dir;        /* temporary files go under <data_dir>/tmp */
    long timeout_ms;             /* one program run */
    /* Scratch of the stages: a private directory, removed after. */
    char dir[PATH_MAX];
    char kubeconfig[PATH_MAX + 32], values_path[PATH_MAX + 32];
    char helm_path[PATH_MAX];
    /* The outcome: a reason and a message when a stage failed. */
    const char *reason;
    char message[480];
} comp_job_t;

/* An installer: three steps for an install (each 0, or -1 with the
 * job's reason and message set), and its uninstall. A Component runs
 * every installer of comp_installers whose applies says so, in order;
 * an uninstall runs them in reverse. */
typedef struct comp_installer {
    const char *name;
    int (*applies)(const comp_job_t *j);
    int (*pre_install)(comp_job_t *j);
    int (*install)(comp_job_t *j);
    int (*post_install)(comp_job_t *j);
    int (*uninstall)(comp_job_t *j);
} comp_installer_t;

/* The installers, ending with {NULL}. */
extern const comp_installer_t comp_installers[];

/* Runs the installers' stages for j; always removes j's temporary files
 * before returning. 0, or -1 with j->reason and j->message. */
int comp_install(comp_job_t *j);
int comp_uninstall(comp_job_t *j);

/* Runs argv[0] (a path) with argv, no shell, its stdout and stderr
 * captured, for at most timeout_ms (then killed). 0 with *status the
 * exit status (128 + signal when killed by one) and the output's last
 * non-empty line in last (cap bytes); ERR_TIMEOUT (killed),
 * ERR_NOT_FOUND (cannot be run), ERR_NOMEM, ERR_IO. */
int comp_run(char *const argv[], long timeout_ms, int *status, char *last, size_t cap,
             err_t *err);

#endif
