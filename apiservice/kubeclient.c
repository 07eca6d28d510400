#include "kubeclient.h"

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "../lib/b64.h"
#include "../lib/crypto.h"
#include "../lib/fs.h"
#include "../lib/mem.h"
#include "../lib/yaml.h"

#define KC_MAX_RESPONSE (16u * 1024u * 1024u)

struct kc {
    char *server;
    char *ca;                    /* PEM, or NULL for the system store */
    size_t ca_len;
    int insecure;
    char *token;
    char *token_file;            /* read again on every request, or NULL */
    char *cert, *key;            /* PEM client certificate */
    size_t cert_len, key_len;
    long connect_timeout_ms;     /* 0: KC_TIMEOUT_MS */
    long timeout_ms;
};

static pthread_once_t kc_once = PTHREAD_ONCE_INIT;
static void kc_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static const json_t *named(const json_t *list, const char *name, const char *field)
{
    size_t i;
    const json_t *it;
    json_array_foreach(list, i, it) {
        const char *n = json_string_value(json_object_get(it, "name"));
        if (n && !strcmp(n, name))
            return json_object_get(it, field);
    }
    return NULL;
}

/* A PEM from "<field>-data" (base64) or "<field>" (a path, read only
 * when files is set: a kubeconfig's text from a user may not make this
 * server read its own files). what names the kubeconfig in errors. */
static int pem_of(const json_t *obj, const char *field, int files, const char *what, char **out,
                  size_t *len, err_t *err)
{
    char key[96];
    snprintf(key, sizeof key, "%s-data", field);
    const char *data = json_string_value(json_object_get(obj, key));
    if (data && *data) {
        unsigned char *raw;
        int rc = b64_decode(data, strlen(data), B64_STD, &raw, len);
        if (rc == ERR_NOMEM)
            return err_set(err, ERR_NOMEM, NULL);
        if (rc)
            return err_set(err, ERR_BAD_REQUEST, "%s: %s is not base64", what, key);
        *out = (char *)raw;
        return 0;
    }
    const char *path = json_string_value(json_object_get(obj, field));
    if (path && *path && !files)
        return err_set(err, ERR_BAD_REQUEST, "%s: %s names a file; only %s (inline) is accepted",
                       what, field, key);
    if (path && *path)
        return fs_read_file(path, out, len, err);
    return 0;
}

void kc_free(kc_t *c)
{
    if (!c)
        return;
    mem_free(c->server);
    mem_free(c->ca);
    mem_free(c->token);
    mem_free(c->token_file);
    mem_free(c->cert);
    mem_free(c->key);
    mem_free(c);
}

/* A token file's text without its line end, a new string. */
static int read_token(const char *path, char **out, err_t *err)
{
    size_t tl = 0;
    int rc = fs_read_file(path, out, &tl, err);
    while (!rc && tl && ((*out)[tl - 1] == '\n' || (*out)[tl - 1] == '\r'))
        (*out)[--tl] = '\0';
    return rc;
}

/* The ServiceAccount directory; a test build may point it elsewhere
 * (EDGE_TEST_SA_DIR), as no test may write the real one. */
static const char *sa_dir(void)
{
#ifdef EDGE_TEST_HOOKS
    const char *d = getenv("EDGE_TEST_SA_DIR");
    if (d && *d)
        return d;
#endif
    return KC_SA_DIR;
}

static int kc_in_cluster(kc_t **out, err_t *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return err_set(err, ERR_NOT_FOUND, "not running in a cluster: no kubeconfig given and "
                       "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
    kc_t *c = mem_calloc(1, sizeof *c);
    char server[300];
    /* An IPv6 service address goes in brackets, as net.JoinHostPort. */
    snprintf(server, sizeof server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
             host, port);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/token", sa_dir());
    if (!c || !(c->server = mem_strdup(server)) || !(c->token_file = mem_strdup(path))) {
        kc_free(c);
        return err_set(err, ERR_NOMEM, NULL);
    }
    /* The token must be readable now; it is read again on each request. */
    int rc = read_token(c->token_file, &c->token, err);
    snprintf(path, sizeof path, "%s/ca.crt", sa_dir());
    if (!rc)
        rc = fs_read_file(path, &c->ca, &c->ca_len, err);
    if (rc) {
        kc_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* The connection the kubeconfig doc describes (its current context, or
 * its only one). files: whether it may name files (see pem_of). */
static int kc_from_doc(const json_t *doc, const char *what, int files, kc_t **out, err_t *err)
{
    kc_t *c = NULL;
    int rc = 0;
    if (!json_is_object(doc))
        return err_set(err, ERR_BAD_REQUEST, "%s: not a kubeconfig (not a YAML or JSON object)", what);
    const char *ctx_name = json_string_value(json_object_get(doc, "current-context"));
    const json_t *ctx = ctx_name ? named(json_object_get(doc, "contexts"), ctx_name, "context")
                                 : NULL;
    if (!ctx && json_array_size(json_object_get(doc, "contexts")) == 1)
        ctx = json_object_get(json_array_get(json_object_get(doc, "contexts"), 0), "context");
    const char *cl_name = json_string_value(json_object_get(ctx, "cluster"));
    const char *us_name = json_string_value(json_object_get(ctx, "user"));
    const json_t *cluster = cl_name ? named(json_object_get(doc, "clusters"), cl_name, "cluster") : NULL;
    const json_t *user = us_name ? named(json_object_get(doc, "users"), us_name, "user") : NULL;
    const char *server = json_string_value(json_object_get(cluster, "server"));
    if (!server || !*server)
        return err_set(err, ERR_BAD_REQUEST, "%s: no cluster server in its current context", what);
    c = mem_calloc(1, sizeof *c);
    if (!c || !(c->server = mem_strdup(server))) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto out;
    }
    /* No trailing slash, so paths join cleanly. */
    size_t sl = strlen(c->server);
    if (sl && c->server[sl - 1] == '/')
        c->server[sl - 1] = '\0';
    c->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    rc = pem_of(cluster, "certificate-authority", files, what, &c->ca, &c->ca_len, err);
    if (!rc)
        rc = pem_of(user, "client-certificate", files, what, &c->cert, &c->cert_len, err);
    if (!rc)
        rc = pem_of(user, "client-key", files, what, &c->key, &c->key_len, err);
    if (!rc && (!c->cert) != (!c->key))
        rc = err_set(err, ERR_BAD_REQUEST, "%s: a client certificate needs both its certificate "
                     "and its key", what);
    const char *token = json_string_value(json_object_get(user, "token"));
    const char *token_file = json_string_value(json_object_get(user, "tokenFile"));
    if (!rc && token && *token && !(c->token = mem_strdup(token)))
        rc = err_set(err, ERR_NOMEM, NULL);
    if (!rc && !c->token && token_file && *token_file && !files)
        rc = err_set(err, ERR_BAD_REQUEST, "%s: tokenFile names a file; only token (inline) is "
                     "accepted", what);
    if (!rc && !c->token && token_file && *token_file)
        rc = read_token(token_file, &c->token, err);
out:
    if (rc) {
        kc_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int kc_from_kubeconfig(const char *path, kc_t **out, err_t *err)
{
    pthread_once(&kc_once, kc_global_init);
    if (!path || !*path)
        return kc_in_cluster(out, err);
    char *text = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    int rc = fs_read_file(path, &text, &len, err);
    if (rc)
        return rc;
    rc = yml_to_json(text, len, &doc, err);
    mem_free(text);
    if (rc)
        return rc;
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "kubeconfig %s", path);
    rc = kc_from_doc(doc, what, 1, out, err);
    json_decref(doc);
    return rc;
}

int kc_from_kubeconfig_text(const char *text, size_t len, kc_t **out, err_t *err)
{
    pthread_once(&kc_once, kc_global_init);
    json_t *doc = NULL;
    err_t ye;
    err_clear(&ye);
    unsigned long failed = mem_failures();
    int rc = yml_to_json(text, len, &doc, &ye);
    /* Memory running out may read as bad input to the decoder. */
    if (rc == ERR_NOMEM || (rc && mem_failures() != failed))
        return err_set(err, ERR_NOMEM, NULL);
    if (rc)
        return err_set(err, ERR_BAD_REQUEST, "kubeconfig: not YAML or JSON: %s", ye.message);
    rc = kc_from_doc(doc, "kubeconfig", 0, out, err);
    json_decref(doc);
    return rc;
}

int kc_from_kubeconfig_base64(const char *b64, kc_t **out, err_t *err)
{
    unsigned char *text = NULL;
    size_t len = 0;
    int rc = b64 ? b64_decode(b64, strlen(b64), B64_STD, &text, &len) : ERR_BAD_REQUEST;
    if (rc == ERR_NOMEM)
        return err_set(err, ERR_NOMEM, NULL);
    if (rc)
        return err_set(err, ERR_BAD_REQUEST, "kubeconfig: not base64");
    rc = kc_from_kubeconfig_text((const char *)text, len, out, err);
    mem_free(text);
    return rc;
}

/* A copy of n bytes of p (NUL-terminated), or NULL for NULL; *bad set
 * when memory ran out. */
static char *dup_n(const char *p, size_t n, int *bad)
{
    if (!p)
        return NULL;
    char *d = mem_alloc(n + 1);
    if (!d) {
        *bad = 1;
        return NULL;
    }
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

int kc_new(const kc_config_t *cfg, kc_t **out, err_t *err)
{
    pthread_once(&kc_once, kc_global_init);
    if (!cfg->server || !*cfg->server)
        return err_set(err, ERR_BAD_REQUEST, "no server URL");
    if ((!cfg->cert) != (!cfg->key))
        return err_set(err, ERR_BAD_REQUEST, "a client certificate needs both its certificate "
                       "and its key");
    kc_t *c = mem_calloc(1, sizeof *c);
    if (!c)
        return err_set(err, ERR_NOMEM, NULL);
    int bad = 0;
    size_t sl = strlen(cfg->server);
    while (sl > 1 && cfg->server[sl - 1] == '/')
        sl--;
    c->server = dup_n(cfg->server, sl, &bad);
    c->ca = dup_n(cfg->ca, cfg->ca_len, &bad);
    c->ca_len = cfg->ca ? cfg->ca_len : 0;
    c->insecure = cfg->insecure;
    c->token = cfg->token && *cfg->token ? dup_n(cfg->token, strlen(cfg->token), &bad) : NULL;
    c->cert = dup_n(cfg->cert, cfg->cert_len, &bad);
    c->cert_len = cfg->cert ? cfg->cert_len : 0;
    c->key = dup_n(cfg->key, cfg->key_len, &bad);
    c->key_len = cfg->key ? cfg->key_len : 0;
    c->connect_timeout_ms = cfg->connect_timeout_ms;
    c->timeout_ms = cfg->timeout_ms;
    if (bad) {
        kc_free(c);
        return err_set(err, ERR_NOMEM, NULL);
    }
    *out = c;
    return 0;
}

void kc_config_of(const kc_t *c, kc_config_t *cfg)
{
    *cfg = (kc_config_t){.server = c->server, .ca = c->ca, .ca_len = c->ca_len,
                         .insecure = c->insecure, .token = c->token, .cert = c->cert,
                         .key = c->key, .cert_len = c->cert_len, .key_len = c->key_len,
                         .connect_timeout_ms = c->connect_timeout_ms,
                         .timeout_ms = c->timeout_ms};
}

/* A response body as curl hands it over, kept NUL-terminated. */
typedef struct sink {
    char *p;
    size_t len, cap;
    size_t max;                  /* the largest body; 0: KC_MAX_RESPONSE */
    int too_big;                 /* over max */
    int nomem;                   /* the buffer could not grow */
} sink_t;

/* curl's write callback: appends to the sink, whose buffer grows by
 * doubling up to its max and a NUL. 0 makes curl fail the
 * transfer (CURLE_WRITE_ERROR); the sink says why. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sink_t *s = arg;
    size_t n = size * nmemb;
    size_t max = s->max ? s->max : KC_MAX_RESPONSE;
    if (n > max - s->len) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *p = mem_realloc(s->p, cap);
        if (!p) {
            s->nomem = 1;
            return 0;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, ptr, n);
    s->len += n;
    s->p[s->len] = '\0';
    return n;
}

/* Appends a header line to *list: 0, or ERR_NOMEM with *list as it was
 * (still the caller's to free). */
static int add_header(struct curl_slist **list, const char *line, err_t *err)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return err_set(err, ERR_NOMEM, NULL);
    *list = l;
    return 0;
}

int kc_request(kc_t *c, const char *method, const char *path, const json_t *body,
               long *status, json_t **resp, err_t *err)
{
    return kc_request_as(c, method, path, "application/json", body, status, resp, err);
}

int kc_request_as(kc_t *c, const char *method, const char *path, const char *content_type,
                  const json_t *body, long *status, json_t **resp, err_t *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return err_set(err, ERR_NOMEM, NULL);
    struct curl_slist *hdrs = NULL;
    sink_t s = {0};
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->server, path);
    /* A body that cannot be encoded is never sent as an empty one. */
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = body && !payload ? err_set(err, ERR_NOMEM, NULL) : 0;
    if (!rc)
        rc = add_header(&hdrs, "Accept: application/json", err);
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    if (!rc)
        rc = add_header(&hdrs, ct, err);
    if (rc)
        goto out;
    char auth[4200];
    /* A rotated token is picked up at once; the last one read stands in
     * when the file is briefly missing mid-rotation. */
    char *fresh = NULL;
    err_t ignored;
    err_clear(&ignored);
    if (c->token_file && read_token(c->token_file, &fresh, &ignored))
        fresh = NULL;
    const char *token = fresh ? fresh : c->token;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        rc = add_header(&hdrs, auth, err);
    }
    mem_free(fresh);
    if (rc)
        goto out;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : (long)KC_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->connect_timeout_ms > 0 ? c->connect_timeout_ms : (long)KC_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    if (payload)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->ca) {
        struct curl_blob ca = {c->ca, c->ca_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (c->cert && c->key) {
        struct curl_blob cert = {c->cert, c->cert_len, CURL_BLOB_COPY};
        struct curl_blob key = {c->key, c->key_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = s.nomem || cc == CURLE_OUT_OF_MEMORY
                 ? err_set(err, ERR_NOMEM, NULL)
                 : err_set(err, ERR_UNAVAILABLE, "%s %s: %s%s", method, url,
                           curl_easy_strerror(cc), s.too_big ? " (response too large)" : "");
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    /* jansson says nothing of why a decode failed, and its reader can
     * drop a byte of a string whose buffer could not grow and still
     * succeed: any allocation failing meanwhile is ERR_NOMEM. Otherwise
     * a body that is not JSON is JSON null. */
    unsigned long failed = mem_failures();
    json_t *j = s.p ? json_loadb(s.p, s.len, 0, NULL) : NULL;
    if (mem_failures() != failed) {
        json_decref(j);
        rc = err_set(err, ERR_NOMEM, NULL);
    } else {
        *resp = j ? j : json_null();
    }
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    mem_free(s.p);
    mem_free(payload);
    return rc;
}

void kc_fetch_res_free(kc_fetch_res_t *res)
{
    if (!res)
        return;
    mem_free(res->body);
    mem_free(res->location);
    memset(res, 0, sizeof *res);
}

int kc_fetch(const char *url, size_t max, long timeout_ms, kc_fetch_res_t *res, err_t *err)
{
    pthread_once(&kc_once, kc_global_init);
    memset(res, 0, sizeof *res);
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return err_set(err, ERR_BAD_REQUEST, "%s: not an http:// or https:// URL", url);
    CURL *h = curl_easy_init();
    if (!h)
        return err_set(err, ERR_NOMEM, NULL);
    sink_t s = {.max = max ? max : 1};
    int rc = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    /* Only these schemes, and no redirect: the caller judges a 3xx's
     * target (a repository must not send this server elsewhere). */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : (long)KC_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)KC_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s.max);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_FILESIZE_EXCEEDED || s.too_big) {
        rc = err_set(err, ERR_REQUEST_TOO_LARGE, "GET %s: larger than %zu bytes", url, s.max);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = s.nomem || cc == CURLE_OUT_OF_MEMORY
                 ? err_set(err, ERR_NOMEM, NULL)
                 : err_set(err, ERR_UNAVAILABLE, "GET %s: %s", url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
    char *loc = NULL;
    if (res->status >= 300 && res->status < 400 &&
        curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc &&
        !(res->location = mem_strdup(loc))) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto out;
    }
    res->body = s.p;
    res->len = s.len;
    s.p = NULL;
out:
    if (rc)
        kc_fetch_res_free(res);
    curl_easy_cleanup(h);
    mem_free(s.p);
    return rc;
}
