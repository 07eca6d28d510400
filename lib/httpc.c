/*
 * httpc: libcurl behind a few calls. Unary requests borrow an easy handle
 * from the pool (its connection cache is what keeps connections alive
 * between requests); a stream gets a handle of its own, driven through a
 * multi handle so that cancellation is noticed while the stream is idle.
 */
#include "httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

#include "mem.h"

#define HTTPC_POOL 32
#define HTTPC_TIMEOUT_MS 30000u
#define HTTPC_CONNECT_MS 3000u
#define HTTPC_MAX_RESPONSE ((size_t)256 << 20)
#define HTTPC_POLL_MS 100

struct httpc {
    char **urls;                 /* base URLs without a trailing '/' */
    size_t nurls;
    atomic_uint cur;             /* the endpoint to try first */
    char *ca_file, *cert_file, *key_file;
    long timeout_ms, connect_timeout_ms;
    size_t max_response;
    pthread_mutex_t mu;
    CURL *pool[HTTPC_POOL];
    size_t npool;
};

static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static void httpc_global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- the client ---------------------------------------------------------- */

static int httpc_add_url(httpc_t *c, const char *s, size_t n, err_t *err)
{
    while (n && (s[n - 1] == '/' || s[n - 1] == ' '))
        n--;
    while (n && *s == ' ') {
        s++;
        n--;
    }
    if (n == 0)
        return 0;
    if (!((n > 7 && !strncmp(s, "http://", 7)) || (n > 8 && !strncmp(s, "https://", 8))))
        return err_set(err, ERR_BAD_REQUEST, "%.*s is not an http:// or https:// URL",
                       (int)n, s);
    char **u = mem_realloc(c->urls, (c->nurls + 1) * sizeof *u);
    if (!u)
        return err_set(err, ERR_NOMEM, NULL);
    c->urls = u;
    if (!(c->urls[c->nurls] = mem_strndup(s, n)))
        return err_set(err, ERR_NOMEM, NULL);
    c->nurls++;
    return 0;
}

static int httpc_dup(char **dst, const char *src, err_t *err)
{
    *dst = NULL;
    if (!src || !*src)
        return 0;
    if (!(*dst = mem_strdup(src)))
        return err_set(err, ERR_NOMEM, NULL);
    return 0;
}

int httpc_new(const httpc_config_t *cfg, httpc_t **out, err_t *err)
{
    pthread_once(&httpc_once, httpc_global_init);
    httpc_t *c = mem_calloc(1, sizeof *c);
    if (!c)
        return err_set(err, ERR_NOMEM, NULL);
    pthread_mutex_init(&c->mu, NULL);
    int rc = 0;
    const char *s = cfg->urls ? cfg->urls : "";
    while (!rc) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        rc = httpc_add_url(c, s, n, err);
        if (!comma)
            break;
        s = comma + 1;
    }
    if (!rc && c->nurls == 0)
        rc = err_set(err, ERR_BAD_REQUEST, "no server URL given");
    if (!rc && (!cfg->cert_file) != (!cfg->key_file))
        rc = err_set(err, ERR_BAD_REQUEST, "a client certificate needs its key, and a key "
                                           "its certificate");
    if (!rc)
        rc = httpc_dup(&c->ca_file, cfg->ca_file, err);
    if (!rc)
        rc = httpc_dup(&c->cert_file, cfg->cert_file, err);
    if (!rc)
        rc = httpc_dup(&c->key_file, cfg->key_file, err);
    if (rc) {
        httpc_free(c);
        return rc;
    }
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HTTPC_TIMEOUT_MS;
    c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : HTTPC_CONNECT_MS;
    c->max_response = cfg->max_response ? cfg->max_response : HTTPC_MAX_RESPONSE;
    atomic_init(&c->cur, 0);
    *out = c;
    return 0;
}

void httpc_free(httpc_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    for (size_t i = 0; i < c->nurls; i++)
        mem_free(c->urls[i]);
    mem_free(c->urls);
    mem_free(c->ca_file);
    mem_free(c->cert_file);
    mem_free(c->key_file);
    pthread_mutex_destroy(&c->mu);
    mem_free(c);
}

/* ---- handles ------------------------------------------------------------- */

/* Sets what every request of this client shares. */
static void httpc_setup(httpc_t *c, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* etcd serves its JSON gateway on HTTP/1 only (HTTP/2 is gRPC). */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
}

static CURL *httpc_take(httpc_t *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->npool)
        h = c->pool[--c->npool];
    pthread_mutex_unlock(&c->mu);
    if (!h && (h = curl_easy_init()))
        httpc_setup(c, h);
    return h;
}

static void httpc_give_back(httpc_t *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->npool < HTTPC_POOL) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* Whether a failure happened before the request could have been sent. */
static int httpc_not_sent(CURLcode cc)
{
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
           cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SSL_CONNECT_ERROR;
}

static char *httpc_url(httpc_t *c, size_t idx, const char *path)
{
    size_t a = strlen(c->urls[idx]), b = strlen(path);
    char *u = mem_alloc(a + b + 1);
    if (u) {
        memcpy(u, c->urls[idx], a);
        memcpy(u + a, path, b + 1);
    }
    return u;
}

/* ---- unary requests -------------------------------------------------------- */

typedef struct httpc_sink {
    char *buf;
    size_t len, cap, max;
    int too_big, nomem;
} httpc_sink_t;

static size_t httpc_on_data(char *p, size_t sz, size_t n, void *arg)
{
    httpc_sink_t *s = arg;
    size_t add = sz * n;
    if (s->len + add > s->max) {
        s->too_big = 1;
        return 0;
    }
    if (s->len + add + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + add + 1)
            cap *= 2;
        char *b = mem_realloc(s->buf, cap);
        if (!b) {
            s->nomem = 1;
            return 0;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, add);
    s->len += add;
    s->buf[s->len] = '\0';
    return add;
}

int httpc_post(httpc_t *c, const char *path, const char *body, size_t len,
               httpc_response_t *resp, err_t *err)
{
    return httpc_post_within(c, path, body, len, 0, resp, err);
}

int httpc_post_within(httpc_t *c, const char *path, const char *body, size_t len,
                      unsigned timeout_ms, httpc_response_t *resp, err_t *err)
{
    resp->status = 0;
    resp->body = NULL;
    resp->len = 0;
    CURL *h = httpc_take(c);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h || !hdrs) {
        if (h)
            curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        return err_set(err, ERR_NOMEM, NULL);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms ? (long)timeout_ms : c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpc_on_data);

    int rc = 0;
    unsigned start = atomic_load(&c->cur);
    CURLcode cc = CURLE_OK;
    size_t idx = 0;
    httpc_sink_t s = {.max = c->max_response};
    for (size_t i = 0; i < c->nurls; i++) {
        idx = (start + i) % c->nurls;
        char *url = httpc_url(c, idx, path);
        if (!url) {
            rc = err_set(err, ERR_NOMEM, NULL);
            break;
        }
        s.len = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
        cc = curl_easy_perform(h);
        mem_free(url);
        if (cc == CURLE_OK || !httpc_not_sent(cc))
            break;
    }
    if (!rc && cc == CURLE_OK) {
        atomic_store(&c->cur, (unsigned)idx);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        if (!s.buf && !(s.buf = mem_calloc(1, 1)))
            rc = err_set(err, ERR_NOMEM, NULL);
        resp->body = s.buf;
        resp->len = s.len;
        s.buf = NULL;
    } else if (!rc) {
        /* Start the next request elsewhere. */
        atomic_store(&c->cur, (unsigned)((idx + 1) % c->nurls));
        rc = s.nomem ? err_set(err, ERR_NOMEM, NULL)
           : s.too_big ? err_set(err, ERR_REQUEST_TOO_LARGE,
                                 "response from %s larger than %zu bytes", c->urls[idx],
                                 c->max_response)
           : err_set(err, ERR_UNAVAILABLE, "%s%s: %s", c->urls[idx], path,
                     curl_easy_strerror(cc));
    }
    mem_free(s.buf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);
    httpc_give_back(c, h);
    return rc;
}

void httpc_response_free(httpc_response_t *r)
{
    if (!r)
        return;
    mem_free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- streams ------------------------------------------------------------------ */

typedef struct httpc_lines {
    httpc_sink_t s;
    httpc_line_fn fn;
    void *arg;
    int stopped;                 /* fn's non-zero verdict */
} httpc_lines_t;

static size_t httpc_on_lines(char *p, size_t sz, size_t n, void *arg)
{
    httpc_lines_t *l = arg;
    size_t add = sz * n;
    if (httpc_on_data(p, sz, n, &l->s) != add)
        return 0;
    /* Hand over every complete line, keep the rest. */
    size_t from = 0;
    char *nl;
    while ((nl = memchr(l->s.buf + from, '\n', l->s.len - from))) {
        size_t end = (size_t)(nl - l->s.buf);
        l->s.buf[end] = '\0';
        if (end > from) {
            int v = l->fn(l->arg, l->s.buf + from, end - from);
            if (v) {
                l->stopped = v;
                return 0;
            }
        }
        from = end + 1;
    }
    memmove(l->s.buf, l->s.buf + from, l->s.len - from);
    l->s.len -= from;
    l->s.buf[l->s.len] = '\0';
    return add;
}

/* Runs one transfer of h to its end or to *cancel. */
static CURLcode httpc_run(CURL *h, const atomic_int *cancel, int *canceled)
{
    CURLM *m = curl_multi_init();
    if (!m)
        return CURLE_OUT_OF_MEMORY;
    CURLcode cc = CURLE_OK;
    curl_multi_add_handle(m, h);
    for (;;) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            cc = CURLE_RECV_ERROR;
            break;
        }
        if (!running) {
            int left;
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(m, &left)))
                if (msg->msg == CURLMSG_DONE)
                    cc = msg->data.result;
            break;
        }
        if (cancel && atomic_load(cancel)) {
            *canceled = 1;
            break;
        }
        curl_multi_poll(m, NULL, 0, HTTPC_POLL_MS, NULL);
        if (cancel && atomic_load(cancel)) {
            *canceled = 1;
            break;
        }
    }
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return cc;
}

int httpc_stream(httpc_t *c, const char *path, const char *body, size_t len,
                 const char *extra_header, httpc_line_fn fn, void *arg,
                 const atomic_int *cancel, long *status, err_t *err)
{
    if (status)
        *status = 0;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *more = hdrs && extra_header ? curl_slist_append(hdrs, extra_header) : hdrs;
    if (!h || !more) {
        if (h)
            curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        return err_set(err, ERR_NOMEM, NULL);
    }
    hdrs = more;
    httpc_setup(c, h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpc_on_lines);

    int rc = 0, canceled = 0;
    unsigned start = atomic_load(&c->cur);
    CURLcode cc = CURLE_OK;
    size_t idx = 0;
    httpc_lines_t l = {.s = {.max = c->max_response}, .fn = fn, .arg = arg};
    for (size_t i = 0; i < c->nurls; i++) {
        idx = (start + i) % c->nurls;
        char *url = httpc_url(c, idx, path);
        if (!url) {
            rc = err_set(err, ERR_NOMEM, NULL);
            break;
        }
        l.s.len = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &l);
        cc = httpc_run(h, cancel, &canceled);
        mem_free(url);
        if (canceled || cc == CURLE_OK || !httpc_not_sent(cc))
            break;
    }
    if (status)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (rc) {
        /* set above */
    } else if (l.stopped) {
        rc = l.stopped;
    } else if (canceled) {
        rc = err_set(err, ERR_CLOSED, NULL);
    } else if (cc == CURLE_OK) {
        atomic_store(&c->cur, (unsigned)idx);
        if (l.s.len)  /* the last line had no '\n' */
            rc = fn(arg, l.s.buf, l.s.len);
    } else {
        atomic_store(&c->cur, (unsigned)((idx + 1) % c->nurls));
        rc = l.s.nomem ? err_set(err, ERR_NOMEM, NULL)
           : l.s.too_big ? err_set(err, ERR_REQUEST_TOO_LARGE,
                                   "a line from %s is larger than %zu bytes", c->urls[idx],
                                   c->max_response)
           : err_set(err, ERR_UNAVAILABLE, "%s%s: %s", c->urls[idx], path,
                     curl_easy_strerror(cc));
    }
    mem_free(l.s.buf);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}
