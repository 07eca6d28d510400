/*
 * edge-apiserver's entry point and composition root: parses flags (with
 * kube-apiserver's names), makes or loads the serving certificate, starts
 * listening, then opens storage and builds the authorizer's index (the
 * server reports itself not ready until then), and serves until SIGINT or
 * SIGTERM.
 */
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../apiservice/authorizer.h"
#include "../apiservice/delegate.h"
#include "../authz/authz.h"
#include "../controllers/ctrl.h"
#include "../registry/registry.h"
#include "../lib/crypto.h"
#include "../lib/fs.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "../storage/store.h"
#include "audit.h"
#include "authn.h"
#include "delegation.h"
#include "http.h"
#include "server.h"

/* Set by the handler of SIGINT and SIGTERM, on whichever thread the
 * signal lands; a lock-free atomic, so both the handler and the other
 * threads may touch it. */
static atomic_int main_stop;

#define MAIN_TRIM_SECONDS 5      /* how often free heap goes back to the kernel */

static void main_on_signal(int sig)
{
    (void)sig;
    main_stop = 1;
}

typedef struct flags {
    unsigned secure_port;
    const char *bind_address;
    const char *cert_dir;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *token_auth_file;
    const char *storage_backend;
    const char *data_dir;
    const char *etcd_servers;
    const char *etcd_prefix;
    const char *etcd_cafile;
    const char *etcd_certfile;
    const char *etcd_keyfile;
    const char *cluster_name;
    const char *controllers;
    const char *helm_binary;
    const char *allowed_chart_repositories;
    const char *client_ca_file;
    const char *rh_client_ca_file;
    const char *rh_allowed_names;
    const char *rh_username_headers;
    const char *rh_uid_headers;
    const char *rh_group_headers;
    const char *rh_extra_prefix;
    const char *authentication_kubeconfig;
    const char *authorization_kubeconfig;
    const char *audit_log_path;
    unsigned max_inflight;
    unsigned threads;
    long long compaction_ms;     /* -1: not given */
    long long read_header_ms;    /* -1: not given */
    long long lease_ms;          /* --leader-elect-lease-duration */
    long long renew_deadline_ms; /* --leader-elect-renew-deadline */
    int leader_elect;            /* --leader-elect */
    unsigned max_head_bytes;
    unsigned verbosity;
} flags_t;

/* A Go duration (time.ParseDuration): a sequence of decimal numbers, each
 * with a unit (h, m, s, ms, us, µs, ns), or "0". Returns milliseconds
 * (sub-millisecond parts rounded down), or -1 when malformed or negative. */
static long long parse_duration_ms(const char *s)
{
    static const struct { const char *unit; double ms; } units[] = {
        {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4},
        {"h", 3.6e6}, {NULL, 0},
    };
    if (!strcmp(s, "0"))
        return 0;
    if (!*s)
        return -1;
    double total = 0;
    while (*s) {
        char *end;
        if (!(*s >= '0' && *s <= '9') && *s != '.')
            return -1;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        s = end;
        size_t best = 0;
        double per = 0;
        for (size_t u = 0; units[u].unit; u++) {
            size_t n = strlen(units[u].unit);
            /* the longest unit that matches: "ms" before "m" */
            if (n > best && !strncmp(s, units[u].unit, n)) {
                best = n;
                per = units[u].ms;
            }
        }
        if (!best)
            return -1;
        s += best;
        total += v * per;
    }
    return total > 9.2e15 ? -1 : (long long)total;
}

/* Go's strconv.ParseBool: 1 or 0, -1 when it is neither. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False", NULL};
    for (size_t i = 0; yes[i]; i++) {
        if (!strcmp(s, yes[i]))
            return 1;
        if (!strcmp(s, no[i]))
            return 0;
    }
    return -1;
}

#ifdef EDGE_TEST_HOOKS
/* Test builds only (the sanitizer build the e2e tests run; a release
 * build has no such code): stands in for a slow start-up step such as
 * opening a gigabyte data directory. <step>_DELAY_MS sleeps that many
 * milliseconds; <step>_GATE waits until the file it names exists, so a
 * test holds the step for exactly as long as its checks take. A signal
 * cuts either short. */
static void main_test_delay(const char *step)
{
    char name[96];
    snprintf(name, sizeof name, "%s_DELAY_MS", step);
    const char *v = getenv(name);
    for (long ms = v ? strtol(v, NULL, 10) : 0; ms > 0 && !main_stop; ms -= 20) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    snprintf(name, sizeof name, "%s_GATE", step);
    const char *gate = getenv(name);
    while (gate && *gate && access(gate, F_OK) && !main_stop) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
#else
#define main_test_delay(step) ((void)(step))
#endif

/* One row per flag: its name, what it sets, and its help. Flags the later
 * authentication work reads are accepted now so deployments can set them. */
enum { F_STR, F_UINT, F_DURATION, F_BOOL };
typedef struct flag_def {
    const char *name;
    int type;
    size_t off;
    const char *help;
    unsigned long max;           /* F_UINT: the largest value */
} flag_def_t;

#define FS(n, f, h) {n, F_STR, offsetof(flags_t, f), h, 0}
#define FU(n, f, h) {n, F_UINT, offsetof(flags_t, f), h, 65535}
#define FUL(n, f, max, h) {n, F_UINT, offsetof(flags_t, f), h, max}
#define FD(n, f, h) {n, F_DURATION, offsetof(flags_t, f), h, 0}
#define FB(n, f, h) {n, F_BOOL, offsetof(flags_t, f), h, 0}
static const flag_def_t flag_defs[] = {
    FU("secure-port", secure_port, "HTTPS port (default 6443)"),
    FS("bind-address", bind_address, "IP address to listen on (default 0.0.0.0)"),
    FS("cert-dir", cert_dir, "where a self-signed serving certificate is made when no "
                             "--tls-cert-file is given (default ./apiserver.local.config/certificates)"),
    FS("tls-cert-file", tls_cert_file, "serving certificate (PEM; default none: a self-signed one in --cert-dir)"),
    FS("tls-private-key-file", tls_key_file, "serving key (PEM) of --tls-cert-file (default none)"),
    FS("token-auth-file", token_auth_file, "static tokens, CSV: token,user,uid,\"g1,g2\" (default none)"),
    FS("storage-backend", storage_backend, "lmdb or etcd3 (default lmdb)"),
    FS("data-dir", data_dir, "LMDB data directory (default ./data)"),
    FS("etcd-servers", etcd_servers, "etcd URLs, comma-separated, for the etcd3 backend (default none)"),
    FS("etcd-prefix", etcd_prefix, "etcd key prefix (default /registry)"),
    FS("etcd-cafile", etcd_cafile, "CA bundle to verify etcd's serving certificates by (default none: the system's)"),
    FS("etcd-certfile", etcd_certfile, "client certificate (PEM) for etcd (default none)"),
    FS("etcd-keyfile", etcd_keyfile, "the key (PEM) of --etcd-certfile (default none)"),
    FS("cluster-name", cluster_name, "this server's member cluster (default host)"),
    FS("controllers", controllers, "controllers to run, as kube-controller-manager's flag: "
                                   "'*' all, 'name' one, '-name' not that one, comma-separated "
                                   "(default '*'; known: iamrole, workspace, nodegroup, "
                                   "cluster, application, applicationdeployment, component)"),
    FS("helm-binary", helm_binary, "the helm program Components install with (default helm "
                                   "on PATH)"),
    FS("allowed-chart-repositories", allowed_chart_repositories,
       "URL prefixes Components may fetch charts from, comma-separated (default: any); "
       "checked on the repository and on every chart URL"),
    FS("client-ca-file", client_ca_file, "CA bundle for x509 client certificates (CN user, O groups; default none)"),
    FS("requestheader-client-ca-file", rh_client_ca_file,
       "CA bundle for the front proxy's client certificate (default none)"),
    FS("requestheader-allowed-names", rh_allowed_names,
       "front-proxy certificate CNs allowed, comma-separated (default empty: any)"),
    FS("requestheader-username-headers", rh_username_headers, "headers carrying the user name (default X-Remote-User)"),
    FS("requestheader-uid-headers", rh_uid_headers, "headers carrying the user's uid (default none)"),
    FS("requestheader-group-headers", rh_group_headers, "headers carrying the groups (default X-Remote-Group)"),
    FS("requestheader-extra-headers-prefix", rh_extra_prefix, "prefix of headers carrying extra values (default X-Remote-Extra-)"),
    FS("authentication-kubeconfig", authentication_kubeconfig,
       "kubeconfig for kube-apiserver: TokenReview and the authentication ConfigMap "
       "(default in a pod: its ServiceAccount)"),
    FS("authorization-kubeconfig", authorization_kubeconfig,
       "kubeconfig for kube-apiserver: SubjectAccessReviews for what only the cluster "
       "decides (may a user claim a namespace or node of this cluster; default in a pod: "
       "its ServiceAccount)"),
    FS("audit-log-path", audit_log_path, "audit events as JSON lines here (\"-\": stdout; default none: no audit log)"),
    FU("max-requests-inflight", max_inflight,
       "concurrent non-watch requests before 429 (default 400, 0: unlimited)"),
    FD("etcd-compaction-interval", compaction_ms,
       "how long the store keeps history for watches and continue tokens, as a Go "
       "duration (default 5m0s; 0 keeps all of it)"),
    FB("leader-elect", leader_elect,
       "on etcd3, run the controllers on one replica at a time, elected through an etcd "
       "lease under --etcd-prefix (default true; false: every replica runs them)"),
    FD("leader-elect-lease-duration", lease_ms,
       "how long a leader's lease lasts unrenewed: a killed leader is replaced within it, as "
       "a Go duration (default 15s)"),
    FD("leader-elect-renew-deadline", renew_deadline_ms,
       "how long a leader keeps leading without renewing its lease before it stops its "
       "controllers; less than the lease duration (default 10s)"),
    FU("http-threads", threads, "HTTP worker threads (default 16 per core, at least 64)"),
    FD("read-header-timeout", read_header_ms,
       "how long a client may take to send a request's headers before its connection is "
       "closed, as a Go duration (default 32s, kube-apiserver's)"),
    FUL("v", verbosity, 10, "log verbosity, as klog's -v: 1 for more detail, 2 for "
        "per-connection messages such as clients that went away (default 0)"),
    FUL("max-request-header-bytes", max_head_bytes, AGG_MAX_HEAD_LIMIT,
       "largest request head (request line and headers) served, 8192 to 1048576 bytes "
       "(default 262144); each connection holds a buffer of 1.25 times this, cleared after "
       "every request: smaller is faster"),
    {NULL, 0, 0, NULL, 0},
};

/* --help's sections, as kube-apiserver groups its flags; a flag not named
 * here is under Misc. */
static const struct {
    const char *title;
    const char *const flags[16];
} flag_sections[] = {
    {"Secure serving", {"bind-address", "secure-port", "cert-dir", "tls-cert-file",
                        "tls-private-key-file", "http-threads", "read-header-timeout",
                        "max-request-header-bytes", NULL}},
    {"Authentication", {"token-auth-file", "client-ca-file", "requestheader-client-ca-file",
                        "requestheader-allowed-names", "requestheader-username-headers",
                        "requestheader-uid-headers", "requestheader-group-headers",
                        "requestheader-extra-headers-prefix", "authentication-kubeconfig", NULL}},
    {"Authorization", {"authorization-kubeconfig", NULL}},
    {"Etcd", {"storage-backend", "data-dir", "etcd-servers", "etcd-prefix", "etcd-cafile",
              "etcd-certfile", "etcd-keyfile", "etcd-compaction-interval", NULL}},
    {"Audit", {"audit-log-path", NULL}},
    {"Controllers", {"controllers", "helm-binary", "allowed-chart-repositories",
                     "leader-elect", "leader-elect-lease-duration",
                     "leader-elect-renew-deadline", NULL}},
    {NULL, {NULL}},
};

static int flag_in_section(const char *name, int s)
{
    for (size_t i = 0; flag_sections[s].flags[i]; i++)
        if (!strcmp(flag_sections[s].flags[i], name))
            return 1;
    return 0;
}

static int flag_section(const char *name)
{
    for (int s = 0; flag_sections[s].title; s++)
        if (flag_in_section(name, s))
            return s;
    return -1;
}

static void usage_flag(FILE *f, const flag_def_t *d)
{
    static const char *const types[] = {[F_STR] = "string", [F_UINT] = "uint",
                                        [F_DURATION] = "duration", [F_BOOL] = "bool"};
    char lhs[64];
    snprintf(lhs, sizeof lhs, "--%s %s", d->name, types[d->type]);
    fprintf(f, "      %-40s %s\n", lhs, d->help);
}

/* Flags by section, as kube-apiserver --help prints them; each says its
 * default. */
static void usage(FILE *f)
{
    fprintf(f, "edge-apiserver: the IAM and edge-management API of a fleet of Kubernetes "
               "clusters, served to kube-apiserver as an aggregated API server and as its "
               "authorization webhook.\n\nUsage:\n  edge-apiserver [flags]\n");
    for (int s = 0; flag_sections[s].title; s++) {
        fprintf(f, "\n%s flags:\n\n", flag_sections[s].title);
        for (const flag_def_t *d = flag_defs; d->name; d++)
            if (flag_in_section(d->name, s))
                usage_flag(f, d);
    }
    fprintf(f, "\nMisc flags:\n\n");
    for (const flag_def_t *d = flag_defs; d->name; d++)
        if (flag_section(d->name) < 0)
            usage_flag(f, d);
    fprintf(f, "\n      %-40s %s\n", "-h, --help", "this help");
}

static int parse_flags(int argc, char **argv, flags_t *fl)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        /* klog's -v N and -v=N, beside --v. */
        char vflag[32];
        if (!strcmp(a, "-v") || !strncmp(a, "-v=", 3)) {
            snprintf(vflag, sizeof vflag, "-%s", a);
            a = vflag;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "edge-apiserver: unexpected argument %s\n", a);
            return -1;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const flag_def_t *d = flag_defs;
        while (d->name && (strlen(d->name) != nl || strncmp(d->name, a + 2, nl)))
            d++;
        if (!d->name) {
            fprintf(stderr, "edge-apiserver: unknown flag: %s\n", a);
            return -1;
        }
        if (d->type == F_BOOL) {
            /* As Go's flag package: --name alone is true, else --name=value. */
            int v = parse_bool(eq ? eq + 1 : "true");
            if (v < 0) {
                fprintf(stderr, "edge-apiserver: invalid value \"%s\" for --%s: true or "
                        "false\n", eq + 1, d->name);
                return -1;
            }
            *(int *)((char *)fl + d->off) = v;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            fprintf(stderr, "edge-apiserver: flag needs an argument: --%s\n", d->name);
            return -1;
        }
        if (d->type == F_STR) {
            *(const char **)((char *)fl + d->off) = val;
        } else if (d->type == F_DURATION) {
            long long ms = parse_duration_ms(val);
            if (ms < 0) {
                fprintf(stderr, "edge-apiserver: invalid value \"%s\" for --%s: a duration "
                        "such as 5m, 30s or 1h30m\n", val, d->name);
                return -1;
            }
            *(long long *)((char *)fl + d->off) = ms;
        } else {
            char *end;
            unsigned long v = strtoul(val, &end, 10);
            if (!*val || *end || *val == '-' || v > d->max) {
                fprintf(stderr, "edge-apiserver: invalid value \"%s\" for --%s\n", val, d->name);
                return -1;
            }
            *(unsigned *)((char *)fl + d->off) = (unsigned)v;
        }
    }
    return 0;
}

/* Loads the serving certificate and key, generating them under cert_dir
 * when none were given. */
static int load_serving_cert(const flags_t *fl, char **cert, char **key, err_t *err)
{
    char cpath[4096], kpath[4096];
    if (fl->tls_cert_file && fl->tls_key_file) {
        snprintf(cpath, sizeof cpath, "%s", fl->tls_cert_file);
        snprintf(kpath, sizeof kpath, "%s", fl->tls_key_file);
    } else {
        static const char *const dns[] = {"localhost", "edge-apiserver",
                                          "edge-apiserver.edge-system",
                                          "edge-apiserver.edge-system.svc",
                                          "edge-apiserver.edge-system.svc.cluster.local", NULL};
        int rc = crypto_ensure_serving_cert(fl->cert_dir, dns, NULL, err);
        if (rc)
            return rc;
        snprintf(cpath, sizeof cpath, "%s/apiserver.crt", fl->cert_dir);
        snprintf(kpath, sizeof kpath, "%s/apiserver.key", fl->cert_dir);
    }
    size_t n;
    int rc = fs_read_file(cpath, cert, &n, err);
    if (!rc)
        rc = fs_read_file(kpath, key, &n, err);
    return rc;
}

static int read_opt(const char *path, char **out, err_t *err)
{
    *out = NULL;
    if (!path || !*path)
        return 0;
    size_t n;
    return fs_read_file(path, out, &n, err);
}

/* Client certificates: the x509 CA and the front proxy's. *trust becomes
 * both bundles together: the CAs the TLS layer names when it asks for a
 * client certificate (a Go client sends its certificate only when its
 * issuer is among them). */
static int configure_x509(const flags_t *fl, agg_authn_t *authn, char **trust, err_t *err)
{
    char *client = NULL, *rh = NULL;
    int rc = read_opt(fl->client_ca_file, &client, err);
    if (!rc)
        rc = read_opt(fl->rh_client_ca_file, &rh, err);
    if (!rc)
        rc = agg_authn_set_client_ca(authn, client, err);
    agg_requestheader_t h = {.client_ca_pem = rh, .allowed_names = fl->rh_allowed_names,
                             .username_headers = fl->rh_username_headers,
                             .uid_headers = fl->rh_uid_headers,
                             .group_headers = fl->rh_group_headers,
                             .extra_prefixes = fl->rh_extra_prefix};
    if (!rc)
        rc = agg_authn_set_requestheader(authn, &h, err);
    if (!rc && (client || rh)) {
        size_t a = client ? strlen(client) : 0, b = rh ? strlen(rh) : 0;
        *trust = mem_alloc(a + b + 2);
        if (!*trust) {
            rc = err_set(err, ERR_NOMEM, NULL);
        } else {
            snprintf(*trust, a + b + 2, "%s%s%s", client ? client : "",
                     a && client[a - 1] != '\n' ? "\n" : "", rh ? rh : "");
        }
    }
    mem_free(client);
    mem_free(rh);
    return rc;
}

/* The registry's create-only reviews are answered by the authorizer. */
static int review_hook(void *arg, const reg_kind_t *k, json_t *obj, err_t *err)
{
    if (!strcmp(k->kind, "AccessReview"))
        return authz_access_review(arg, obj, err);
    return authz_permission_review(arg, obj, err);
}

/* --authentication-kubeconfig: TokenReview for unknown tokens, and the
 * extension-apiserver-authentication ConfigMap for what the CA flags did
 * not set. */
static int configure_delegation(const flags_t *fl, agg_authn_t *authn, apisvc_delegate_t **d,
                                char **trust, err_t *err)
{
    int rc = apisvc_delegate_new(fl->authentication_kubeconfig, d, err);
    if (rc)
        return rc;
    char *client = NULL;
    rc = read_opt(fl->client_ca_file, &client, err);
    apisvc_overrides_t ov = {.client_ca_pem = client,
                             .requestheader_from_flags = fl->rh_client_ca_file != NULL};
    char *cm_trust = NULL;
    if (!rc)
        rc = apisvc_delegate_start(*d, &ov, agg_delegation_install, authn, &cm_trust, err);
    if (!rc)
        agg_authn_set_token_review(authn, agg_delegation_token_review, *d);
    mem_free(client);
    /* Flags' CAs were installed by configure_x509; the ConfigMap's join
     * them in what the TLS layer names. */
    if (!rc && cm_trust) {
        mem_free(*trust);
        *trust = cm_trust;
    }
    return rc;
}

/* A controller's write in the audit log, as the request it stands for. */
static void main_audit_controller(void *arg, const ctrl_audit_ev_t *ev)
{
    agg_audit_rec_t rec = {.user = ev->user, .decided = 1, .allowed = 1, .resource_request = 1};
    snprintf(rec.verb, sizeof rec.verb, "%s", ev->verb);
    snprintf(rec.group, sizeof rec.group, "%s", ev->kind->group);
    snprintf(rec.version, sizeof rec.version, "%s", ev->kind->version);
    snprintf(rec.resource, sizeof rec.resource, "%s", ev->kind->resource);
    snprintf(rec.subresource, sizeof rec.subresource, "%s", ev->subresource);
    snprintf(rec.namespace_, sizeof rec.namespace_, "%s", ev->ns ? ev->ns : "");
    snprintf(rec.name, sizeof rec.name, "%s", ev->name);
    snprintf(rec.reason, sizeof rec.reason, "a controller of this server (system:masters)");
    char uri[1024];
    const char *sep = *ev->subresource ? "/" : "";
    if (ev->ns && *ev->ns)
        snprintf(uri, sizeof uri, "/apis/%s/%s/namespaces/%s/%s/%s%s%s", ev->kind->group,
                 ev->kind->version, ev->ns, ev->kind->resource, ev->name, sep, ev->subresource);
    else
        snprintf(uri, sizeof uri, "/apis/%s/%s/%s/%s%s%s", ev->kind->group, ev->kind->version,
                 ev->kind->resource, ev->name, sep, ev->subresource);
    agg_audit_internal(arg, &rec, uri, ev->code);
}

int main(int argc, char **argv)
{
    flags_t fl = {.secure_port = 6443, .bind_address = "0.0.0.0",
                  .cert_dir = "apiserver.local.config/certificates",
                  .storage_backend = "lmdb", .data_dir = "data", .cluster_name = "host",
                  .max_inflight = 400, .compaction_ms = -1, .read_header_ms = -1,
                  .lease_ms = 15000, .renew_deadline_ms = 10000, .leader_elect = 1};
    if (parse_flags(argc, argv, &fl))
        return 2;
    if (fl.read_header_ms == 0 || fl.read_header_ms > 86400000) {
        fprintf(stderr, "edge-apiserver: --read-header-timeout must be between 1ms and 24h\n");
        return 2;
    }
    if (fl.max_head_bytes && (fl.max_head_bytes < AGG_MIN_HEAD ||
                              fl.max_head_bytes > AGG_MAX_HEAD_LIMIT)) {
        fprintf(stderr, "edge-apiserver: --max-request-header-bytes must be between %u and %u\n",
                AGG_MIN_HEAD, AGG_MAX_HEAD_LIMIT);
        return 2;
    }
    if (fl.lease_ms <= 0 || fl.lease_ms > 86400000) {
        fprintf(stderr, "edge-apiserver: --leader-elect-lease-duration must be between 1ms "
                "and 24h\n");
        return 2;
    }
    if (fl.renew_deadline_ms <= 0 || fl.renew_deadline_ms >= fl.lease_ms) {
        fprintf(stderr, "edge-apiserver: --leader-elect-renew-deadline must be more than 0 "
                "and less than --leader-elect-lease-duration\n");
        return 2;
    }
    log_set_verbosity((int)fl.verbosity);
    mem_init();
    signal(SIGPIPE, SIG_IGN);
    /* Many HTTP threads would otherwise get one malloc arena each, every
     * one keeping its own free memory; a few shared arenas keep the heap
     * close to what is in use. */
    mallopt(M_ARENA_MAX, 4);

    int status = 1;
    err_t err;
    err_clear(&err);
    store_t *store = NULL;
    agg_authn_t *authn = NULL;
    agg_server_t *srv = NULL;
    char *cert = NULL, *key = NULL, *trust = NULL;
    apisvc_delegate_t *delegate = NULL;
    agg_audit_t *audit = NULL;
    authz_t *authz = NULL;
    apisvc_authorizer_t *upstream = NULL;
    ctrl_mgr_t *ctrl = NULL;
    ctrl_lease_elector_t *elector = NULL;
    agg_metrics_t *metrics = agg_metrics_new();

    store_config_t cfg = {.backend = fl.storage_backend, .data_dir = fl.data_dir,
                          .etcd_servers = fl.etcd_servers, .etcd_prefix = fl.etcd_prefix,
                          .etcd_cafile = fl.etcd_cafile, .etcd_certfile = fl.etcd_certfile,
                          .etcd_keyfile = fl.etcd_keyfile};
    if (fl.compaction_ms == 0)
        cfg.compact_interval_ms = STORE_COMPACT_NEVER;
    else if (fl.compaction_ms > 0)
        cfg.compact_interval_ms = fl.compaction_ms >= STORE_COMPACT_NEVER
                                      ? STORE_COMPACT_NEVER - 1
                                      : (unsigned)fl.compaction_ms;
    /* First what the HTTP server needs, so that it listens before the
     * slow part of start-up below. */
    if (fl.audit_log_path && *fl.audit_log_path && agg_audit_open(fl.audit_log_path, &audit, &err))
        goto out;
    if (load_serving_cert(&fl, &cert, &key, &err))
        goto out;
    if (agg_authn_new(fl.token_auth_file, &authn, &err))
        goto out;
    if (configure_x509(&fl, authn, &trust, &err))
        goto out;
    /* As k8s.io/apiserver's delegating options: without a kubeconfig, a
     * server running in a pod reaches kube-apiserver with the pod's
     * ServiceAccount; elsewhere it delegates nothing. */
    int in_cluster = getenv("KUBERNETES_SERVICE_HOST") != NULL;
    if ((fl.authentication_kubeconfig || in_cluster) &&
        configure_delegation(&fl, authn, &delegate, &trust, &err))
        goto out;
    if ((fl.authorization_kubeconfig || in_cluster) &&
        apisvc_authorizer_new(fl.authorization_kubeconfig, &upstream, &err))
        goto out;
    if (in_cluster && (!fl.authentication_kubeconfig || !fl.authorization_kubeconfig))
        log_info("reaching kube-apiserver for %s with the in-cluster "
                "ServiceAccount", !fl.authentication_kubeconfig && !fl.authorization_kubeconfig
                ? "authentication and authorization" : !fl.authentication_kubeconfig
                ? "authentication" : "authorization");

    /* Until agg_api_advance(AGG_READY) the handler answers probes and
     * /version, and 503 to the rest; it touches no field set below. */
    agg_api_t api = {.authn = authn, .cluster_name = fl.cluster_name, .audit = audit,
                     .max_inflight = fl.max_inflight, .metrics = metrics};
    agg_server_config_t sc = {.bind_address = fl.bind_address, .port = fl.secure_port,
                              .cert_pem = cert, .key_pem = key, .client_ca_pem = trust,
                              .threads = fl.threads,
                              .read_header_timeout_ms =
                                  fl.read_header_ms > 0 ? (unsigned)fl.read_header_ms : 0,
                              .max_head_bytes = fl.max_head_bytes,
                              .handler = agg_handle, .handler_arg = &api};
    if (agg_server_start(&sc, &srv, &err))
        goto out;
    int v6 = strchr(fl.bind_address, ':') != NULL;
    log_info("listening on https://%s%s%s:%u", v6 ? "[" : "",
            fl.bind_address, v6 ? "]" : "", fl.secure_port);
    struct sigaction sa = {.sa_handler = main_on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* The slow part (seconds on a large data directory): storage, then
     * the authorizer's index, while /readyz says which is still to come.
     * A failure here still ends the process with its message. */
    main_test_delay("EDGE_TEST_STORE_OPEN");
    if (store_open(&cfg, &store, &err))
        goto out;
    int on_etcd = fl.storage_backend && !strcmp(fl.storage_backend, "etcd3");
    log_info("storage %s at %s%s open at revision %" PRIu64, fl.storage_backend,
            on_etcd ? fl.etcd_servers : fl.data_dir,
            on_etcd ? (fl.etcd_prefix ? fl.etcd_prefix : "/registry") : "",
            store_revision(store));
    agg_api_advance(&api, AGG_STORAGE_OPEN);
    main_test_delay("EDGE_TEST_AUTHZ");
    if (authz_new(store, fl.cluster_name, &authz, &err))
        goto out;

    reg_t reg = {.store = store, .review = review_hook, .review_arg = authz, .authz = authz,
                 .cluster = fl.cluster_name,
                 .delegate = upstream ? agg_delegation_review : NULL,
                 .delegate_arg = upstream};
    /* Controllers write through the registry as their own users; they
     * start once this replica leads (one process on LMDB always does). */
    ctrl_env_t cenv = {.store = store, .reg = &reg, .authz = authz, .cluster = fl.cluster_name,
                       .data_dir = fl.data_dir, .helm_binary = fl.helm_binary,
                       .allowed_chart_repositories = fl.allowed_chart_repositories,
                       .audit = audit ? main_audit_controller : NULL, .audit_arg = audit};
    /* Replicas on one etcd take turns through a lease; a process alone
     * on its store, or told not to elect, always leads. */
    ctrl_lease_config_t lc = {.lease_ms = (unsigned)fl.lease_ms,
                              .renew_deadline_ms = (unsigned)fl.renew_deadline_ms};
    ctrl_elector_t el = ctrl_elector_single;
    if (on_etcd && fl.leader_elect) {
        if (ctrl_lease_elector_new(store, &lc, &elector, &err))
            goto out;
        el = ctrl_lease_elector(elector);
    }
    if (ctrl_mgr_new(&cenv, fl.controllers, &ctrl, &err) || ctrl_mgr_start(ctrl, &el, &err))
        goto out;
    api.reg = &reg;
    api.store = store;
    api.authz = authz;
    api.ctrl = ctrl;
    agg_api_advance(&api, AGG_READY);
    log_info("serving on https://%s%s%s:%u", v6 ? "[" : "",
            fl.bind_address, v6 ? "]" : "", fl.secure_port);
    /* The main thread keeps house until a signal: every few seconds it
     * hands the heap's free memory back to the kernel, so a burst (a
     * large list, many watches starting at once) does not leave the
     * resident set at its peak. A signal ends the sleep at once. */
    while (!main_stop) {
        sleep(MAIN_TRIM_SECONDS);
        if (!main_stop)
            malloc_trim(0);
    }
    log_info("shutting down");
    status = 0;
out:
    if (status)
        log_error("%s", err.message);
    /* Stop serving first: it ends the watch streams (which close their
     * watchers) and lets the requests in flight finish, their writes
     * included, while storage and the authorizer still work; then those. */
    agg_server_stop(srv);
    ctrl_mgr_free(ctrl);
    ctrl_lease_elector_free(elector);
    authz_free(authz);
    store_shutdown_watchers(store);
    store_close(store);
    apisvc_delegate_free(delegate);
    apisvc_authorizer_free(upstream);
    agg_audit_close(audit);
    agg_metrics_free(metrics);
    agg_authn_free(authn);
    mem_free(cert);
    mem_free(key);
    mem_free(trust);
    return status;
}
