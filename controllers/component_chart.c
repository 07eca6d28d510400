/*
 * The Component controller's chart side: the canonical hash, the
 * dependency graph, URL rules, the repository index, and the chart cache.
 *
 * The cache (<data_dir>/charts)
 *   <sha256>.tgz     an archive whose SHA-256 matched its index entry's
 *                    digest and whose Chart.yaml named the chart and the
 *                    version; read again (and hashed again) before use.
 *   refs/<sha256 of "repository\nchart\nversion">
 *                    the digest that exact version resolved to: a chart
 *                    version is immutable in a Helm repository, so an
 *                    exact version fetched once needs no network again,
 *                    after a restart or while the repository is down.
 *   Every file is written atomically (lib/fs.h); a cache shared by two
 *   workers writing the same archive ends with one whole copy.
 *
 * Fetching
 *   kc_fetch follows no redirect; here a redirect is followed only to the
 *   same scheme, host and port, and only to a URL the allowed prefixes
 *   admit, at most MAX_REDIRECTS times. Every URL (the repository's, the
 *   index's, each chart URL after resolving, each redirect's target) is
 *   checked against --allowed-chart-repositories before it is fetched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../apimachinery/semver.h"
#include "../apiservice/kubeclient.h"
#include "../lib/crypto.h"
#include "../lib/fs.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "../lib/targz.h"
#include "../lib/yaml.h"
#include "component.h"

#define MAX_REDIRECTS 3
#define INDEX_TIMEOUT_MS 30000
#define CHART_TIMEOUT_MS 120000
#define MAX_CHART_YAML (1024u * 1024u)

/* ---- the canonical hash ------------------------------------------------------------ */

int comp_spec_hash(const json_t *spec, char out[65])
{
    char *text = spec ? json_dumps(spec, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)
                      : mem_strdup("null");
    if (!text)
        return ERR_NOMEM;
    crypto_sha256_hex(text, strlen(text), out);
    mem_free(text);              /* jansson allocates through lib/mem */
    return 0;
}

/* ---- the dependency graph --------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of node's dependencies, sorted, in a new array of borrowed
 * pointers (*n of them); NULL with *n 0 when none or out of memory. */
static const char **sorted_deps(const json_t *graph, const char *node, size_t *n)
{
    const json_t *deps = json_object_get(graph, node);
    size_t cnt = json_array_size(deps), k = 0;
    *n = 0;
    const char **v = cnt ? mem_alloc(cnt * sizeof *v) : NULL;
    if (!v)
        return NULL;
    for (size_t i = 0; i < cnt; i++) {
        const char *s = json_string_value(json_array_get(deps, i));
        if (s)
            v[k++] = s;
    }
    qsort(v, k, sizeof *v, cmp_str);
    *n = k;
    return v;
}

/* Depth-first from node looking for start; path holds the walk. dead
 * marks nodes from which start is known unreachable. */
static int find_back(const json_t *graph, const char *start, const char *node, const char **path,
                     size_t depth, size_t max, json_t *dead, size_t *plen)
{
    path[depth] = node;
    size_t n;
    const char **deps = sorted_deps(graph, node, &n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(deps[i], start)) {
            *plen = depth + 1;
            mem_free(deps);
            return 1;
        }
        if (json_object_get(dead, deps[i]) || !json_object_get(graph, deps[i]) || depth + 1 >= max)
            continue;
        int on_path = 0;
        for (size_t j = 0; j <= depth && !on_path; j++)
            on_path = !strcmp(path[j], deps[i]);
        if (on_path)
            continue;
        if (find_back(graph, start, deps[i], path, depth + 1, max, dead, plen)) {
            mem_free(deps);
            return 1;
        }
    }
    mem_free(deps);
    json_object_set_new(dead, node, json_true());
    return 0;
}

int comp_cycle(const json_t *graph, const char *start, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    size_t max = json_object_size(graph) + 1, plen = 0;
    const char **path = mem_alloc(max * sizeof *path);
    json_t *dead = json_object();
    int found = path && dead && json_object_get(graph, start) &&
                find_back(graph, start, start, path, 0, max, dead, &plen);
    if (found && cap) {
        size_t lo = 0;
        for (size_t i = 1; i < plen; i++)
            if (strcmp(path[i], path[lo]) < 0)
                lo = i;
        size_t used = 0;
        for (size_t i = 0; i <= plen && used < cap; i++) {
            int w = snprintf(out + used, cap - used, "%s%s", i ? " -> " : "",
                             path[(lo + i) % plen]);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    json_decref(dead);
    mem_free(path);
    return found;
}

int comp_topo_order(const json_t *graph, json_t **order, json_t **stuck)
{
    json_t *o = json_array(), *s = json_array(), *done = json_object();
    size_t n = json_object_size(graph), k = 0;
    const char **names = n ? mem_alloc(n * sizeof *names) : NULL;
    int rc = (!o || !s || !done || (n && !names)) ? ERR_NOMEM : 0;
    const char *key;
    const json_t *v;
    if (!rc) {
        json_object_foreach((json_t *)graph, key, v) names[k++] = key;
        qsort(names, n, sizeof *names, cmp_str);
    }
    /* Each round takes the lowest name whose dependencies are all done. */
    for (size_t round = 0; !rc && round < n; round++) {
        const char *pick = NULL;
        for (size_t i = 0; i < n && !pick; i++) {
            if (json_object_get(done, names[i]))
                continue;
            const json_t *deps = json_object_get(graph, names[i]);
            int ready = 1;
            for (size_t j = 0; j < json_array_size(deps) && ready; j++) {
                const char *d = json_string_value(json_array_get(deps, j));
                ready = d && json_object_get(done, d);
            }
            if (ready)
                pick = names[i];
        }
        if (!pick)
            break;
        if (json_object_set_new(done, pick, json_true()) ||
            json_array_append_new(o, json_string(pick)))
            rc = ERR_NOMEM;
    }
    for (size_t i = 0; !rc && i < n; i++)
        if (!json_object_get(done, names[i]) && json_array_append_new(s, json_string(names[i])))
            rc = ERR_NOMEM;
    mem_free(names);
    json_decref(done);
    if (rc) {
        json_decref(o);
        json_decref(s);
        return rc;
    }
    *order = o;
    *stuck = s;
    return 0;
}

/* ---- URLs ------------------------------------------------------------------------- */

typedef struct url {
    int https;
    const char *host;            /* into the text */
    size_t host_len;
    unsigned port;
    const char *path;            /* "/..." with any query, or "" */
    size_t origin_len;           /* the text before path */
} url_t;

static int url_parse(const char *s, url_t *u)
{
    memset(u, 0, sizeof *u);
    const char *p;
    if (!strncasecmp(s, "http://", 7)) {
        p = s + 7;
        u->port = 80;
    } else if (!strncasecmp(s, "https://", 8)) {
        p = s + 8;
        u->https = 1;
        u->port = 443;
    } else {
        return -1;
    }
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen))
        return -1;               /* credentials in a URL are refused */
    const char *hend = p + alen;
    if (*p == '[') {
        const char *rb = memchr(p, ']', alen);
        if (!rb)
            return -1;
        u->host = p;
        u->host_len = (size_t)(rb - p) + 1;
        hend = rb + 1;
    } else {
        const char *colon = memchr(p, ':', alen);
        u->host = p;
        u->host_len = colon ? (size_t)(colon - p) : alen;
        hend = p + u->host_len;
    }
    if (!u->host_len)
        return -1;
    if (hend < p + alen) {
        if (*hend != ':')
            return -1;
        unsigned long port = 0;
        const char *q = hend + 1;
        if (q == p + alen)
            return -1;
        for (; q < p + alen; q++) {
            if (*q < '0' || *q > '9' || (port = port * 10 + (unsigned long)(*q - '0')) > 65535)
                return -1;
        }
        u->port = (unsigned)port;
    }
    u->path = p + alen;
    u->origin_len = (size_t)(u->path - s);
    return 0;
}

/* Characters no URL here may carry, and encoded dots and slashes (a
 * server decoding them could leave the allowed path). */
static int url_chars_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '\\')
            return 0;
    for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%'))
        if (p[1] == '2' && (p[2] == 'e' || p[2] == 'E' || p[2] == 'f' || p[2] == 'F'))
            return 0;
    return 1;
}

static int has_scheme(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[i] && (strchr("+-.", s[i]) || (s[i] >= '0' && s[i] <= '9') ||
                    (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    return s[i] == ':';
}

/* RFC 3986 5.2.4 on the path part of in (up to any '?'), the rest
 * copied; into out. -1 when it does not fit. */
static int remove_dots(const char *in, char *out, size_t cap)
{
    size_t plen = strcspn(in, "?");
    const char *seg[512];
    size_t segl[512], n = 0;
    int trailing = 0;
    for (size_t i = 0; i < plen;) {
        if (in[i] == '/') {
            i++;
            continue;
        }
        size_t l = strcspn(in + i, "/?");
        if (l > plen - i)
            l = plen - i;
        int last = i + l >= plen;
        if (l == 1 && in[i] == '.') {
            trailing = last;
        } else if (l == 2 && in[i] == '.' && in[i + 1] == '.') {
            if (n)
                n--;
            trailing = last;
        } else {
            if (n == 512)
                return -1;
            seg[n] = in + i;
            segl[n++] = l;
            trailing = 0;
        }
        i += l;
    }
    if (plen && in[plen - 1] == '/')
        trailing = 1;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (used + 1 + segl[i] >= cap)
            return -1;
        out[used++] = '/';
        memcpy(out + used, seg[i], segl[i]);
        used += segl[i];
    }
    if ((trailing || !n) && used + 1 < cap)
        out[used++] = '/';
    int w = snprintf(out + used, cap - used, "%s", in + plen);
    return w < 0 || (size_t)w >= cap - used ? -1 : 0;
}

int comp_url_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    char tmp[4096], r[4096];
    if (!url_chars_ok(base) || !url_chars_ok(ref))
        return -1;
    snprintf(r, sizeof r, "%.*s", (int)strcspn(ref, "#"), ref);
    url_t b;
    if (url_parse(base, &b))
        return -1;
    int w;
    if (has_scheme(r)) {
        w = snprintf(tmp, sizeof tmp, "%s", r);
    } else if (r[0] == '/' && r[1] == '/') {
        w = snprintf(tmp, sizeof tmp, "%s:%s", b.https ? "https" : "http", r);
    } else if (r[0] == '/') {
        w = snprintf(tmp, sizeof tmp, "%.*s%s", (int)b.origin_len, base, r);
    } else {
        /* The base's path as a directory, without its query. */
        size_t bl = strcspn(b.path, "?#");
        int slash = bl && b.path[bl - 1] == '/';
        w = snprintf(tmp, sizeof tmp, "%.*s%s%.*s%s%s", (int)b.origin_len, base, bl ? "" : "/",
                     (int)bl, b.path, bl && !slash ? "/" : "", r);
    }
    if (w < 0 || (size_t)w >= sizeof tmp)
        return -1;
    url_t u;
    if (url_parse(tmp, &u))
        return -1;
    char path[4096];
    if (remove_dots(*u.path ? u.path : "/", path, sizeof path))
        return -1;
    w = snprintf(out, cap, "%.*s%s", (int)u.origin_len, tmp, path);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

static int origin_eq(const url_t *a, const url_t *b)
{
    return a->https == b->https && a->port == b->port && a->host_len == b->host_len &&
           !strncasecmp(a->host, b->host, a->host_len);
}

int comp_url_same_origin(const char *a, const char *b)
{
    url_t ua, ub;
    return !url_parse(a, &ua) && !url_parse(b, &ub) && origin_eq(&ua, &ub);
}

int comp_url_allowed(const char *url, const char *prefixes)
{
    url_t u;
    if (url_parse(url, &u) || !url_chars_ok(url))
        return 0;
    if (!prefixes || !*prefixes)
        return 1;
    size_t upl = strcspn(u.path, "?#");
    for (const char *p = prefixes; *p;) {
        size_t l = strcspn(p, ",");
        char pre[2048];
        snprintf(pre, sizeof pre, "%.*s", (int)(l < sizeof pre ? l : sizeof pre - 1), p);
        p += l;
        if (*p == ',')
            p++;
        char *s = pre;
        while (*s == ' ')
            s++;
        size_t sl = strlen(s);
        while (sl && s[sl - 1] == ' ')
            s[--sl] = '\0';
        url_t pu;
        if (!*s || url_parse(s, &pu) || !origin_eq(&u, &pu))
            continue;
        size_t ppl = strcspn(pu.path, "?#");
        while (ppl && pu.path[ppl - 1] == '/')
            ppl--;
        if (!ppl)
            return 1;
        if (upl >= ppl && !memcmp(u.path, pu.path, ppl) && (upl == ppl || u.path[ppl] == '/'))
            return 1;
    }
    return 0;
}

/* ---- the index ------------------------------------------------------------------- */

int comp_index_find(const json_t *index, const char *chart, const char *version,
                    const json_t **entry, char *why, size_t cap)
{
    const json_t *list = json_object_get(json_object_get(index, "entries"), chart);
    if (!json_array_size(list)) {
        snprintf(why, cap, "the repository has no chart %s", chart);
        return ERR_NOT_FOUND;
    }
    size_t i;
    const json_t *e, *best = NULL;
    semver_t bv;
    json_array_foreach(list, i, e) {
        const char *v = json_string_value(json_object_get(e, "version"));
        if (!v)
            continue;
        if (version && *version) {
            if (!strcmp(v, version)) {
                *entry = e;
                return 0;
            }
            continue;
        }
        semver_t sv;
        if (semver_parse(v, &sv, NULL) || semver_is_prerelease(&sv))
            continue;
        if (!best || semver_cmp(&sv, &bv) > 0) {
            best = e;
            bv = sv;
        }
    }
    if (best) {
        *entry = best;
        return 0;
    }
    if (version && *version)
        snprintf(why, cap, "the repository has no version %s of chart %s", version, chart);
    else
        snprintf(why, cap, "chart %s has no release in the repository (pre-releases are left "
                 "out)", chart);
    return ERR_NOT_FOUND;
}

/* ---- fetching --------------------------------------------------------------------- */

static int fail(comp_chart_t *out, const char *reason, int retry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(comp_chart_t *out, const char *reason, int retry, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    out->reason = reason;
    out->retry = retry;
    return -1;
}

/* GET url with the redirect and prefix rules; *res the final answer,
 * which was 200. */
static int get_checked(const char *url, const char *allowed, size_t max, long timeout_ms,
                       kc_fetch_res_t *res, comp_chart_t *out)
{
    char cur[4096];
    snprintf(cur, sizeof cur, "%s", url);
    for (int hop = 0;; hop++) {
        if (!comp_url_allowed(cur, allowed))
            return fail(out, "RepositoryNotAllowed", 0,
                        "%s is not under --allowed-chart-repositories", cur);
        err_t e;
        err_clear(&e);
        int rc = kc_fetch(cur, max, timeout_ms, res, &e);
        if (rc == ERR_REQUEST_TOO_LARGE)
            return fail(out, "FetchFailed", 1, "%s", e.message);
        if (rc)
            return fail(out, "FetchFailed", 1, "%s", e.message);
        if (res->status == 200)
            return 0;
        if (res->status >= 300 && res->status < 400 && res->location && hop < MAX_REDIRECTS) {
            char next[4096];
            if (comp_url_resolve(cur, res->location, next, sizeof next) ||
                !comp_url_same_origin(cur, next)) {
                fail(out, "FetchFailed", 1, "GET %s: a redirect to another host (%.200s) is "
                     "not followed", cur, res->location);
                kc_fetch_res_free(res);
                return -1;
            }
            kc_fetch_res_free(res);
            snprintf(cur, sizeof cur, "%s", next);
            continue;
        }
        long st = res->status;
        kc_fetch_res_free(res);
        return fail(out, "FetchFailed", 1, "GET %s: HTTP %ld", cur, st);
    }
}

/* The repository URL without trailing slashes, in out. */
static void repo_base(const char *repo, char *out, size_t cap)
{
    snprintf(out, cap, "%s", repo);
    size_t l = strlen(out);
    while (l && out[l - 1] == '/')
        out[--l] = '\0';
}

static void ref_path(const char *data_dir, const char *repo, const char *chart,
                     const char *version, char *out, size_t cap)
{
    char key[8192], hex[65];
    snprintf(key, sizeof key, "%s\n%s\n%s", repo, chart, version);
    crypto_sha256_hex(key, strlen(key), hex);
    snprintf(out, cap, "%s/charts/refs/%s", data_dir, hex);
}

/* The digest an exact version was cached as, into digest; 1 when known
 * and its archive is in the cache. */
static int ref_lookup(const comp_chart_req_t *req, const char *repo, const char *version,
                      char digest[65], char *path, size_t cap)
{
    char p[PATH_MAX];
    ref_path(req->data_dir, repo, req->chart, version, p, sizeof p);
    char *text = NULL;
    size_t len = 0;
    err_t e;
    err_clear(&e);
    if (fs_read_file(p, &text, &len, &e))
        return 0;
    int ok = len == 64 && strspn(text, "0123456789abcdef") == 64;
    if (ok)
        memcpy(digest, text, 65);
    mem_free(text);
    return ok && comp_chart_cached(req->data_dir, digest, path, cap);
}

int comp_chart_cached(const char *data_dir, const char *digest, char *out, size_t cap)
{
    snprintf(out, cap, "%s/charts/%s.tgz", data_dir, digest);
    struct stat sb;
    return stat(out, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The entry of the request in the repository's index: its version, its
 * digest (lowercase) and its first URL resolved, into out and url. */
static int resolve_entry(const comp_chart_req_t *req, const char *repo, comp_chart_t *out,
                         char *url, size_t cap)
{
    char index_url[4096];
    if (comp_url_resolve(repo, "index.yaml", index_url, sizeof index_url))
        return fail(out, "RepositoryNotAllowed", 0,
                    "spec.repository %s is not an http:// or https:// URL", req->repository);
    kc_fetch_res_t res;
    if (get_checked(index_url, req->allowed, COMP_MAX_INDEX, INDEX_TIMEOUT_MS, &res, out))
        return -1;
    json_t *index = NULL;
    err_t e;
    err_clear(&e);
    int rc = yml_to_json(res.body ? res.body : "", res.len, &index, &e);
    kc_fetch_res_free(&res);
    if (rc)
        return fail(out, "FetchFailed", 1, "%s: not YAML: %s", index_url, e.message);
    const json_t *entry = NULL;
    char why[256];
    if (comp_index_find(index, req->chart, req->version, &entry, why, sizeof why)) {
        json_decref(index);
        return fail(out, "ChartNotFound", 1, "%s: %s", index_url, why);
    }
    const char *version = json_string_value(json_object_get(entry, "version"));
    const char *digest = json_string_value(json_object_get(entry, "digest"));
    const char *u0 = json_string_value(json_array_get(json_object_get(entry, "urls"), 0));
    snprintf(out->version, sizeof out->version, "%s", version);
    rc = -1;
    if (!digest || strlen(digest) != 64 || strspn(digest, "0123456789abcdefABCDEF") != 64)
        fail(out, "DigestMismatch", 1, "%s: chart %s version %s has no sha256 digest", index_url,
             req->chart, version);
    else if (!u0 || !*u0)
        fail(out, "ChartNotFound", 1, "%s: chart %s version %s has no URL", index_url,
             req->chart, version);
    else if (comp_url_resolve(repo, u0, url, cap))
        fail(out, "RepositoryNotAllowed", 0, "chart URL %.300s is not an http:// or https:// URL",
             u0);
    else
        rc = 0;
    if (!rc) {
        for (int i = 0; i < 64; i++)
            out->digest[i] = (char)(digest[i] >= 'A' && digest[i] <= 'F' ? digest[i] + 32
                                                                          : digest[i]);
        out->digest[64] = '\0';
    }
    json_decref(index);
    return rc;
}

int comp_chart_resolve(const comp_chart_req_t *req, comp_chart_t *out)
{
    char repo[4096], url[4096];
    memset(out, 0, sizeof *out);
    repo_base(req->repository, repo, sizeof repo);
    if (!comp_url_allowed(repo, req->allowed))
        return fail(out, "RepositoryNotAllowed", 0,
                    "spec.repository %s is not under --allowed-chart-repositories",
                    req->repository);
    return resolve_entry(req, repo, out, url, sizeof url);
}

/* Reads a whole file of at most max bytes. */
static int read_max(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat sb;
    char *p = NULL;
    int rc = -1;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > max ||
        !(p = mem_alloc((size_t)sb.st_size + 1)))
        goto out;
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, p + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    p[got] = '\0';
    *out = p;
    *len = got;
    p = NULL;
    rc = 0;
out:
    mem_free(p);
    close(fd);
    return rc;
}

/* The archive holds <chart>/Chart.yaml naming chart and version. */
static int check_archive(const char *data, size_t len, const char *chart, const char *version,
                         comp_chart_t *out)
{
    char member[512];
    snprintf(member, sizeof member, "%s/Chart.yaml", chart);
    char *text = NULL;
    size_t tl = 0;
    err_t e;
    err_clear(&e);
    int rc = targz_read_member(data, len, member, MAX_CHART_YAML, &text, &tl, &e);
    if (rc)
        return fail(out, "InvalidChart", 1, "chart %s version %s: %s", chart, version, e.message);
    json_t *doc = NULL;
    rc = yml_to_json(text, tl, &doc, &e);
    mem_free(text);
    if (rc)
        return fail(out, "InvalidChart", 1, "%s: not YAML: %s", member, e.message);
    const char *n = json_string_value(json_object_get(doc, "name"));
    const char *v = json_string_value(json_object_get(doc, "version"));
    rc = 0;
    if (!n || strcmp(n, chart) || !v || strcmp(v, version))
        rc = fail(out, "InvalidChart", 1, "%s names chart %s version %s, not %s version %s",
                  member, n ? n : "(none)", v ? v : "(none)", chart, version);
    json_decref(doc);
    return rc;
}

/* Whether the cached archive for out->digest is there, whole, and of
 * this chart; a damaged one is removed. */
static int use_cached(const comp_chart_req_t *req, comp_chart_t *out)
{
    char *data = NULL;
    size_t len = 0;
    if (!comp_chart_cached(req->data_dir, out->digest, out->path, sizeof out->path) ||
        read_max(out->path, COMP_MAX_CHART, &data, &len))
        return 0;
    char hex[65];
    crypto_sha256_hex(data, len, hex);
    comp_chart_t scratch;
    memset(&scratch, 0, sizeof scratch);
    int ok = !strcmp(hex, out->digest) &&
             !check_archive(data, len, req->chart, out->version, &scratch);
    mem_free(data);
    if (!ok) {
        log_warning("controller component: %s in the chart cache is damaged; fetching it again",
                    out->path);
        unlink(out->path);
    }
    return ok;
}

static void remember(const comp_chart_req_t *req, const char *repo, const comp_chart_t *out)
{
    char p[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/charts/refs", req->data_dir);
    ref_path(req->data_dir, repo, req->chart, out->version, p, sizeof p);
    err_t e;
    err_clear(&e);
    if (fs_mkdir_p(dir, &e) || fs_write_atomic(p, out->digest, 64, 0600, &e))
        log_warning("controller component: cannot record %s in the chart cache: %s", p,
                    e.message);
}

int comp_chart_fetch(const comp_chart_req_t *req, comp_chart_t *out)
{
    char repo[4096], url[4096];
    memset(out, 0, sizeof *out);
    repo_base(req->repository, repo, sizeof repo);
    if (!comp_url_allowed(repo, req->allowed))
        return fail(out, "RepositoryNotAllowed", 0,
                    "spec.repository %s is not under --allowed-chart-repositories",
                    req->repository);
    /* An exact version fetched before needs no network. */
    if (req->version && *req->version &&
        ref_lookup(req, repo, req->version, out->digest, out->path, sizeof out->path)) {
        snprintf(out->version, sizeof out->version, "%s", req->version);
        if (use_cached(req, out))
            return 0;
    }
    if (resolve_entry(req, repo, out, url, sizeof url)) {
        /* The repository is down: the version it resolved to last will do
         * when its archive is cached. */
        comp_chart_t again;
        memset(&again, 0, sizeof again);
        if (out->reason && !strcmp(out->reason, "FetchFailed") && (!req->version || !*req->version) &&
            req->known_version && *req->known_version &&
            ref_lookup(req, repo, req->known_version, again.digest, again.path,
                       sizeof again.path)) {
            snprintf(again.version, sizeof again.version, "%s", req->known_version);
            if (use_cached(req, &again)) {
                log_info("controller component: %s; using the cached chart %s %s", out->message,
                         req->chart, again.version);
                *out = again;
                return 0;
            }
        }
        return -1;
    }
    if (use_cached(req, out)) {
        remember(req, repo, out);
        return 0;
    }
    kc_fetch_res_t res;
    if (get_checked(url, req->allowed, COMP_MAX_CHART, CHART_TIMEOUT_MS, &res, out))
        return -1;
    char hex[65];
    crypto_sha256_hex(res.body ? res.body : "", res.len, hex);
    if (strcmp(hex, out->digest)) {
        fail(out, "DigestMismatch", 1, "%s: sha256 %s, the index says %s", url, hex, out->digest);
        kc_fetch_res_free(&res);
        return -1;
    }
    if (check_archive(res.body ? res.body : "", res.len, req->chart, out->version, out)) {
        kc_fetch_res_free(&res);
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/charts", req->data_dir);
    comp_chart_cached(req->data_dir, out->digest, out->path, sizeof out->path);
    err_t e;
    err_clear(&e);
    int rc = fs_mkdir_p(dir, &e);
    if (!rc)
        rc = fs_write_atomic(out->path, res.body ? res.body : "", res.len, 0600, &e);
    kc_fetch_res_free(&res);
    if (rc)
        return fail(out, "FetchFailed", 1, "the chart cache: %s", e.message);
    remember(req, repo, out);
    return 0;
}
