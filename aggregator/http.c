/*
 * libmicrohttpd glue. See http.h for the request life cycle.
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../lib/log.h"

#define AGG_MAX_PEER_CERTS 8
#define AGG_IDLE_TIMEOUT_S 120      /* MHD's connection timeout, since the last byte */
#define AGG_REAP_EVERY_MS 250       /* how often deadlines are checked */
/* How long a shutdown waits for the requests in flight: kube-apiserver's
 * default --request-timeout, which bounds its own. */
#define AGG_SHUTDOWN_TIMEOUT_S 60

struct agg_header {
    char *name;
    char *value;
};

/* Where a connection is in its request cycle (see "Slow clients" above
 * reaper_main). Written only by the thread that serves the connection. */
enum conn_phase {
    CONN_FIRST,                  /* opened; its first request's head not complete */
    CONN_IDLE,                   /* a request finished; nothing of the next seen */
    CONN_HEAD,                   /* the next request's line came; its head has not */
    CONN_BUSY,                   /* head complete: body, handler or response */
};

/* One per open connection, from MHD's connection-started notice to its
 * closed notice, on srv->conns. */
typedef struct agg_conn {
    int fd;
    int phase;                   /* enum conn_phase; the serving thread's */
    /* When the reaper cuts the connection (ms on CLOCK_MONOTONIC), 0 for
     * never. Set by the serving thread, read and cleared by the reaper. */
    _Atomic long long deadline;
    size_t uri_len;              /* the current request's URI, query included */
    int bad_escape;              /* and it holds a malformed %-escape */
    struct agg_conn *prev, *next;
} agg_conn_t;

struct agg_req {
    agg_server_t *srv;
    struct MHD_Connection *conn;
    agg_conn_t *cn;              /* its connection's entry (borrowed), or NULL */
    const char *method;
    char *path;
    sbuf_t body;
    int too_large;
    int head_status;             /* 400, 414 or 431: the head is refused (check_head) */
    const char *head_why;
    int responded;
    int status;
    size_t resp_len;             /* the body queued by agg_respond */
    struct agg_header *hdrs;     /* response headers to add */
    size_t nhdrs;
    void *user;
    void (*user_free)(void *);
    /* client certificates, fetched on first use */
    int certs_loaded;
    size_t ncerts;
    const unsigned char *cert_der[AGG_MAX_PEER_CERTS];
    size_t cert_len[AGG_MAX_PEER_CERTS];
    char remote[64];
    int remote_done;             /* remote is filled in (agg_req_remote) */
    struct agg_fake *fake;       /* a request made in memory (agg_req_fake) */
    struct agg_defer *defer;     /* cleanups, newest first (agg_req_defer) */
};

typedef struct agg_defer {
    void (*fn)(void *);
    void *p;
    struct agg_defer *next;
} agg_defer_t;

/* What an in-memory request carries instead of a connection: its query
 * and headers as name/value pairs, and the response it got. */
typedef struct agg_pair {
    char *name, *value;
} agg_pair_t;

struct agg_fake {
    agg_pair_t *query, *headers;
    size_t nquery, nheaders;
    sbuf_t response;
    char *content_type;
};

struct agg_stream {
    agg_server_t *srv;
    struct MHD_Connection *conn;
    const agg_stream_ops_t *ops;
    void *arg;
    int fd;                      /* the connection's socket, -1: unknown */
    pthread_mutex_t mu;
    int suspended;               /* the connection is suspended by us */
    int pending;                 /* a wake came while not suspended */
    int closed;
    agg_stream_t *prev, *next;   /* on srv->streams */
};

struct agg_server {
    struct MHD_Daemon *d;
    agg_server_config_t cfg;
    /* the listening socket and the thread that accepts on it */
    int lfd, wake[2];
    pthread_t acceptor;
    int accepting;
    char *cert, *key, *ca;
    /* streams, so the ticker can wake them and stop can end them */
    pthread_mutex_t smu;
    agg_stream_t *streams;
    pthread_t ticker;
    int stopping;                /* the ticker is to end (under smu) */
    pthread_cond_t scv;
    /* shutting down: every stream is ended, new ones as they start (under
     * smu); responses close their connections (read without it) */
    atomic_int draining;
    atomic_uint active;          /* requests begun and not completed */
    /* open connections, and the thread that cuts slow heads off */
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    agg_conn_t *conns;
    pthread_t reaper;
    int reaper_stop;
    long long read_header_ms, idle_ms;
    size_t max_head;             /* bytes of a request head served */
};

/* ---- request accessors -------------------------------------------------- */

const char *agg_req_method(const agg_req_t *r) { return r->method; }
const char *agg_req_path(const agg_req_t *r) { return r->path; }
/* Made on first use: most requests never ask (only audit events do). */
const char *agg_req_remote(const agg_req_t *cr)
{
    agg_req_t *r = (agg_req_t *)cr;
    if (r->remote_done)
        return r->remote;
    r->remote_done = 1;
    if (r->fake) {
        snprintf(r->remote, sizeof r->remote, "127.0.0.1");
        return r->remote;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->remote,
                      sizeof r->remote);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->remote,
                      sizeof r->remote);
    }
    return r->remote;
}

const char *agg_req_query(const agg_req_t *r, const char *key)
{
    /* "?watch" is present with no value: "" as Go's url.Values has it. */
    if (r->fake) {
        for (size_t i = 0; i < r->fake->nquery; i++)
            if (!strcmp(r->fake->query[i].name, key))
                return r->fake->query[i].value;
        return NULL;
    }
    const char *v = NULL;
    size_t vlen = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v,
                                      &vlen) != MHD_YES)
        return NULL;
    return v ? v : "";
}

const char *agg_req_header(const agg_req_t *r, const char *name)
{
    if (r->fake) {
        for (size_t i = 0; i < r->fake->nheaders; i++)
            if (!strcasecmp(r->fake->headers[i].name, name))
                return r->fake->headers[i].value;
        return NULL;
    }
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct hdr_iter {
    void (*fn)(void *, const char *, const char *);
    void *arg;
} hdr_iter_t;

static enum MHD_Result hdr_each(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
    (void)kind;
    hdr_iter_t *it = cls;
    it->fn(it->arg, key, value ? value : "");
    return MHD_YES;
}

void agg_req_headers(const agg_req_t *r,
                     void (*fn)(void *arg, const char *name, const char *value),
                     void *arg)
{
    if (r->fake) {
        for (size_t i = 0; i < r->fake->nheaders; i++)
            fn(arg, r->fake->headers[i].name, r->fake->headers[i].value);
        return;
    }
    hdr_iter_t it = {fn, arg};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, hdr_each, &it);
}

void agg_req_queries(const agg_req_t *r,
                     void (*fn)(void *arg, const char *name, const char *value),
                     void *arg)
{
    if (r->fake) {
        for (size_t i = 0; i < r->fake->nquery; i++)
            fn(arg, r->fake->query[i].name, r->fake->query[i].value);
        return;
    }
    hdr_iter_t it = {fn, arg};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, hdr_each, &it);
}

const char *agg_req_body(const agg_req_t *r, size_t *len)
{
    *len = r->body.len;
    return r->body.p ? r->body.p : "";
}

size_t agg_req_peer_certs(agg_req_t *r, const unsigned char *const **der,
                          const size_t **len)
{
    if (!r->certs_loaded && !r->fake) {
        r->certs_loaded = 1;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci && ci->tls_session) {
            unsigned n = 0;
            const gnutls_datum_t *certs =
                gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
            for (unsigned i = 0; certs && i < n && i < AGG_MAX_PEER_CERTS; i++) {
                r->cert_der[i] = certs[i].data;
                r->cert_len[i] = certs[i].size;
                r->ncerts++;
            }
        }
    }
    *der = r->cert_der;
    *len = r->cert_len;
    return r->ncerts;
}

void agg_req_set_user(agg_req_t *r, void *p, void (*free_fn)(void *))
{
    if (r->user_free)
        r->user_free(r->user);
    r->user = p;
    r->user_free = free_fn;
}

void *agg_req_user(const agg_req_t *r) { return r->user; }

int agg_req_defer(agg_req_t *r, void (*fn)(void *), void *p)
{
    if (!p)
        return 0;
    agg_defer_t *d = mem_alloc(sizeof *d);
    if (!d) {
        fn(p);
        return -1;
    }
    *d = (agg_defer_t){fn, p, r->defer};
    r->defer = d;
    return 0;
}

int agg_req_status(const agg_req_t *r) { return r->status; }

size_t agg_req_response_len(const agg_req_t *r) { return r->resp_len; }

/* ---- responses ------------------------------------------------------------ */

void agg_add_header(agg_req_t *r, const char *name, const char *value)
{
    struct agg_header *h = mem_realloc(r->hdrs, (r->nhdrs + 1) * sizeof *h);
    if (!h)
        return;
    r->hdrs = h;
    h[r->nhdrs].name = mem_strdup(name);
    h[r->nhdrs].value = mem_strdup(value);
    if (!h[r->nhdrs].name || !h[r->nhdrs].value) {
        mem_free(h[r->nhdrs].name);
        mem_free(h[r->nhdrs].value);
        return;
    }
    r->nhdrs++;
}

static void queue(agg_req_t *r, int status, const char *ctype,
                  struct MHD_Response *resp)
{
    if (!resp) {
        /* Out of memory for the response itself: drop the connection. */
        r->responded = 1;
        return;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (size_t i = 0; i < r->nhdrs; i++)
        MHD_add_response_header(resp, r->hdrs[i].name, r->hdrs[i].value);
    /* Shutting down: no next request on this connection (as Go's server
     * turns keep-alives off when it shuts down). */
    if (atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->responded = 1;
    r->status = status;
}

void agg_respond(agg_req_t *r, int status, const char *content_type,
                 char *body, size_t len)
{
    if (r->responded) {
        mem_free(body);
        return;
    }
    r->resp_len = len;
    if (r->fake) {
        sbuf_put(&r->fake->response, body, len);
        mem_free(body);
        r->fake->content_type = content_type ? mem_strdup(content_type) : NULL;
        r->responded = 1;
        r->status = status;
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, body, mem_free);
    if (!resp)
        mem_free(body);
    queue(r, status, content_type, resp);
}

void agg_respond_str(agg_req_t *r, int status, const char *content_type,
                     const char *body)
{
    size_t n = strlen(body);
    char *copy = mem_strndup(body, n);
    if (!copy) {
        r->responded = 1;
        return;
    }
    agg_respond(r, status, content_type, copy, n);
}

/* ---- streams ---------------------------------------------------------------- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    agg_stream_t *st = cls;
    for (;;) {
        pthread_mutex_lock(&st->mu);
        int closed = st->closed;
        pthread_mutex_unlock(&st->mu);
        if (closed)
            return MHD_CONTENT_READER_END_OF_STREAM;
        ssize_t n = st->ops->read(st->arg, buf, max);
        if (n > 0)
            return n;
        if (n < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing to send: suspend unless a wake slipped in meanwhile. */
        pthread_mutex_lock(&st->mu);
        if (st->pending) {
            st->pending = 0;
            pthread_mutex_unlock(&st->mu);
            continue;
        }
        st->suspended = 1;
        MHD_suspend_connection(st->conn);
        pthread_mutex_unlock(&st->mu);
        return 0;
    }
}

void agg_stream_wake(agg_stream_t *st)
{
    pthread_mutex_lock(&st->mu);
    if (st->suspended) {
        st->suspended = 0;
        MHD_resume_connection(st->conn);
    } else {
        st->pending = 1;
    }
    pthread_mutex_unlock(&st->mu);
}

static void stream_free(void *cls)
{
    agg_stream_t *st = cls;
    agg_server_t *s = st->srv;
    pthread_mutex_lock(&s->smu);
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    pthread_mutex_unlock(&s->smu);
    st->ops->close(st->arg);
    pthread_mutex_destroy(&st->mu);
    mem_free(st);
}

agg_stream_t *agg_respond_stream(agg_req_t *r, int status,
                                 const char *content_type,
                                 const agg_stream_ops_t *ops, void *arg)
{
    if (r->fake) {
        /* In memory: what the stream has now, then its end. */
        char buf[4096];
        ssize_t n;
        while ((n = ops->read(arg, buf, sizeof buf)) > 0)
            sbuf_put(&r->fake->response, buf, (size_t)n);
        ops->close(arg);
        r->fake->content_type = content_type ? mem_strdup(content_type) : NULL;
        r->responded = 1;
        r->status = status;
        return NULL;
    }
    agg_server_t *s = r->srv;
    agg_stream_t *st = mem_calloc(1, sizeof *st);
    struct MHD_Response *resp = NULL;
    if (st)
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
                                                 stream_reader, st, stream_free);
    if (!resp) {
        mem_free(st);
        ops->close(arg);
        agg_respond_str(r, 500, "text/plain", "out of memory");
        return NULL;
    }
    st->srv = s;
    st->conn = r->conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->fd = ci ? ci->connect_fd : -1;
    st->ops = ops;
    st->arg = arg;
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_lock(&s->smu);
    /* A watch begun during a shutdown ends at once, with its first read. */
    st->closed = atomic_load(&s->draining);
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    pthread_mutex_unlock(&s->smu);
    queue(r, status, content_type, resp);
    return st;
}

/* ---- connections and slow clients ------------------------------------------ */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The entry of a connection, NULL when it has none (out of memory when
 * it opened). Call from the thread serving the connection. */
static agg_conn_t *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* MHD's notice that a connection opened or closed. MHD sends "closed"
 * before it closes the socket, and the entry leaves the list under cmu,
 * so the reaper (which shuts sockets down holding cmu) never touches a
 * descriptor that was closed or reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    agg_server_t *s = cls;
    agg_conn_t *cn = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        cn = ci ? mem_calloc(1, sizeof *cn) : NULL;
        if (!cn)
            return;  /* untracked: only the idle timeout applies to it */
        cn->fd = ci->connect_fd;
        cn->phase = CONN_FIRST;
        atomic_init(&cn->deadline, now_ms() + s->read_header_ms);
        pthread_mutex_lock(&s->cmu);
        cn->next = s->conns;
        if (s->conns)
            s->conns->prev = cn;
        s->conns = cn;
        pthread_mutex_unlock(&s->cmu);
        *socket_context = cn;
        return;
    }
    if (!cn)
        return;
    pthread_mutex_lock(&s->cmu);
    if (cn->prev)
        cn->prev->next = cn->next;
    else
        s->conns = cn->next;
    if (cn->next)
        cn->next->prev = cn->prev;
    pthread_mutex_unlock(&s->cmu);
    mem_free(cn);
    *socket_context = NULL;
}

/* MHD's URI callback: a request line has arrived. On a kept-alive
 * connection this starts the next request's head, and its deadline. */
/* A URI with a '%' not followed by two hex digits, which Go's URL parser
 * refuses ("invalid URL escape") where libmicrohttpd would pass it on. */
static int bad_escape(const char *uri)
{
    for (const char *p = strchr(uri, '%'); p; p = strchr(p + 1, '%'))
        if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
            return 1;
    return 0;
}

static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
    agg_server_t *s = cls;
    (void)uri;
    agg_conn_t *cn = conn_of(c);
    if (cn) {
        cn->uri_len = strlen(uri);
        cn->bad_escape = bad_escape(uri);
    }
    if (cn && cn->phase == CONN_IDLE) {
        cn->phase = CONN_HEAD;
        atomic_store(&cn->deadline, now_ms() + s->read_header_ms);
    }
    return NULL;  /* the access handler makes the request on its first call */
}

/*
 * Slow clients
 *
 * libmicrohttpd's connection timeout (AGG_IDLE_TIMEOUT_S) counts from the
 * last byte received, so a client that sends its request head a byte at a
 * time keeps its connection forever, and a few thousand such clients take
 * every connection the server has (slowloris). kube-apiserver's Go server
 * bounds the head instead: ReadHeaderTimeout, 32 s (secure_serving.go).
 * This thread does the same: every connection carries a deadline, and it
 * shuts down the socket of any connection past its deadline; MHD then sees
 * the connection end and closes it as if the client had gone.
 *
 * The deadline follows the connection through its requests:
 *   opened            read-header timeout from now. It covers the TLS
 *                     handshake too (Go gives the handshake its own 32 s
 *                     before the head's), which no real client needs.
 *   head complete     none (the access handler's first call): the body,
 *                     the handler and the response, a watch included, are
 *                     bounded by the idle timeout alone, as in kube.
 *   request finished  the idle timeout from now, counted from here and
 *                     not reset by bytes: a kept-alive connection with
 *                     nothing to say is closed when it would have been
 *                     anyway, and one that trickles its next request line
 *                     is closed then too.
 *   next request line read-header timeout from now (MHD's URI callback).
 *                     Go starts the next head's clock when its first byte
 *                     arrives, after an idle wait bounded by IdleTimeout;
 *                     MHD tells us of the request line, not of its first
 *                     byte, so the wait for the line is what the idle
 *                     deadline above bounds.
 * A slow client thus holds a connection for the read-header timeout at
 * most; one that completes a request first buys itself the idle timeout
 * (plus the read-header timeout once its request line is in), as an idle
 * kept-alive client does on any server, Go's included.
 */
static void *reaper_main(void *arg)
{
    agg_server_t *s = arg;
    pthread_mutex_lock(&s->cmu);
    while (!s->reaper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += AGG_REAP_EVERY_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->ccv, &s->cmu, &ts);
        long long now = now_ms();
        for (agg_conn_t *cn = s->conns; cn; cn = cn->next) {
            long long d = atomic_load(&cn->deadline);
            /* Cleared once cut, unless its thread set a new one since. */
            if (d && d <= now && atomic_compare_exchange_strong(&cn->deadline, &d, 0))
                shutdown(cn->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&s->cmu);
    return NULL;
}

/* ---- the daemon -------------------------------------------------------------- */

static void req_free(agg_req_t *r)
{
    while (r->defer) {
        agg_defer_t *d = r->defer;
        r->defer = d->next;
        d->fn(d->p);
        mem_free(d);
    }
    if (r->user_free)
        r->user_free(r->user);
    for (size_t i = 0; i < r->nhdrs; i++) {
        mem_free(r->hdrs[i].name);
        mem_free(r->hdrs[i].value);
    }
    mem_free(r->hdrs);
    sbuf_free(&r->body);
    mem_free(r->path);
    mem_free(r);
}

/* ---- requests in memory --------------------------------------------------- */

/* Percent-decodes n bytes of s into a new string ('+' stays '+', as Go's
 * query parsing keeps it for the values kube reads). */
static char *fake_decode(const char *s, size_t n)
{
    char *out = mem_alloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int fake_add(agg_pair_t **v, size_t *n, char *name, char *value)
{
    agg_pair_t *p = name && value ? mem_realloc(*v, (*n + 1) * sizeof **v) : NULL;
    if (!p) {
        mem_free(name);
        mem_free(value);
        return -1;
    }
    *v = p;
    p[*n].name = name;
    p[*n].value = value;
    (*n)++;
    return 0;
}

agg_req_t *agg_req_fake(const char *method, const char *path, const char *query,
                        const char *const *headers, const char *body, size_t body_len)
{
    agg_req_t *r = mem_calloc(1, sizeof *r);
    struct agg_fake *f = r ? mem_calloc(1, sizeof *f) : NULL;
    if (!f) {
        mem_free(r);
        return NULL;
    }
    r->fake = f;
    r->method = method;
    int bad = !(r->path = mem_strdup(path));
    for (const char *q = query; !bad && q && *q;) {
        size_t len = strcspn(q, "&"), eq = strcspn(q, "=");
        if (eq > len)
            eq = len;
        bad = fake_add(&f->query, &f->nquery, fake_decode(q, eq),
                       eq < len ? fake_decode(q + eq + 1, len - eq - 1) : mem_strdup(""));
        q += len + (q[len] == '&');
    }
    for (size_t i = 0; !bad && headers && headers[i]; i++) {
        const char *colon = strchr(headers[i], ':');
        const char *v = colon ? colon + 1 : "";
        while (*v == ' ')
            v++;
        bad = fake_add(&f->headers, &f->nheaders,
                       mem_strndup(headers[i], colon ? (size_t)(colon - headers[i])
                                                     : strlen(headers[i])),
                       mem_strdup(v));
    }
    if (!bad && body)
        sbuf_put(&r->body, body, body_len);
    if (bad || r->body.oom) {
        agg_req_fake_free(r);
        return NULL;
    }
    return r;
}

const char *agg_req_fake_response(const agg_req_t *r, size_t *len)
{
    if (len)
        *len = r->fake->response.len;
    return r->fake->response.p ? r->fake->response.p : "";
}

const char *agg_req_fake_header(const agg_req_t *r, const char *name)
{
    if (!strcasecmp(name, "Content-Type"))
        return r->fake->content_type;
    for (size_t i = 0; i < r->nhdrs; i++)
        if (!strcasecmp(r->hdrs[i].name, name))
            return r->hdrs[i].value;
    return NULL;
}

void agg_req_fake_free(agg_req_t *r)
{
    if (!r)
        return;
    struct agg_fake *f = r->fake;
    for (size_t i = 0; i < f->nquery; i++) {
        mem_free(f->query[i].name);
        mem_free(f->query[i].value);
    }
    for (size_t i = 0; i < f->nheaders; i++) {
        mem_free(f->headers[i].name);
        mem_free(f->headers[i].value);
    }
    mem_free(f->query);
    mem_free(f->headers);
    sbuf_free(&f->response);
    mem_free(f->content_type);
    mem_free(f);
    req_free(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    agg_server_t *s = cls;
    (void)c;
    (void)toe;
    agg_req_t *r = *con_cls;
    if (!r)
        return;
    atomic_fetch_sub(&s->active, 1);
    if (r->cn) {
        /* Between requests: see "Slow clients" above reaper_main. */
        r->cn->phase = CONN_IDLE;
        atomic_store(&r->cn->deadline, now_ms() + s->idle_ms);
    }
    req_free(r);
    *con_cls = NULL;
}

/* What one pass over a request's headers finds. */
typedef struct head_scan {
    size_t bytes;                /* as sent: "name: value" CRLF each */
    int nul;                     /* a header holds a NUL byte */
    int host;                    /* a Host header is present */
    int transfer_encoding;
    const char *content_length;  /* the first one */
    int content_lengths_differ;
} head_scan_t;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_len, const char *value, size_t value_len)
{
    (void)kind;
    head_scan_t *h = cls;
    h->bytes += key_len + value_len + 4;  /* ": " and CRLF */
    if (strlen(key) != key_len || (value && strlen(value) != value_len))
        h->nul = 1;
    if (!strcasecmp(key, "Host"))
        h->host = 1;
    else if (!strcasecmp(key, "Transfer-Encoding"))
        h->transfer_encoding = 1;
    else if (!strcasecmp(key, "Content-Length")) {
        if (!h->content_length)
            h->content_length = value ? value : "";
        else if (strcmp(h->content_length, value ? value : ""))
            h->content_lengths_differ = 1;
    }
    return MHD_YES;
}

/* What Go's HTTP server refuses before kube-apiserver sees the request,
 * refused here the same way: 0, or the status with *why set. */
static int check_head(agg_server_t *s, struct MHD_Connection *conn, const char *method,
                      const char *version, const agg_conn_t *cn, size_t uri_len,
                      const char **why)
{
    if (uri_len > s->max_head)
        return *why = "Request URI too long", 414;
    head_scan_t h = {.bytes = strlen(method) + uri_len + 12 + 2};  /* request line, blank */
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &h);
    if (h.bytes > s->max_head)
        return *why = "Request header fields too large", 431;
    if (h.nul)
        return *why = "invalid header field: a NUL byte", 400;
    if (h.content_lengths_differ)
        return *why = "message cannot contain multiple Content-Length headers", 400;
    if (h.content_length && h.transfer_encoding)
        return *why = "message cannot carry both Content-Length and Transfer-Encoding", 400;
    if (!h.host && !strcmp(version, "HTTP/1.1"))
        return *why = "missing required Host header", 400;
    if (cn && cn->bad_escape)
        return *why = "invalid URL escape in the request URI", 400;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    agg_server_t *s = cls;
    agg_req_t *r = *con_cls;
    if (!r) {
        r = mem_calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->method = method;
        /* The head is complete: no read-header deadline from here on. */
        r->cn = conn_of(conn);
        if (r->cn) {
            r->cn->phase = CONN_BUSY;
            atomic_store(&r->cn->deadline, 0);
        }
        r->path = mem_strdup(url);
        if (!r->path) {
            mem_free(r);
            return MHD_NO;
        }
        size_t uri_len = r->cn ? r->cn->uri_len : strlen(url);
        r->head_status = check_head(s, conn, method, version, r->cn, uri_len, &r->head_why);
        *con_cls = r;
        atomic_fetch_add(&s->active, 1);  /* until on_completed */
        return MHD_YES;
    }
    if (*upload_size) {
        /* Collect the body, refusing more than AGG_MAX_BODY. */
        if (!r->too_large && !r->head_status) {
            if (r->body.len + *upload_size > AGG_MAX_BODY) {
                r->too_large = 1;
            } else {
                if (!r->body.cap) {
                    /* Room for the whole body at once when its length is
                     * declared (and within the limit): no regrowth. */
                    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
                    unsigned long want = cl ? strtoul(cl, NULL, 10) : 0;
                    if (want > *upload_size && want <= AGG_MAX_BODY)
                        sbuf_grow(&r->body, want);
                }
                sbuf_put(&r->body, upload, *upload_size);
                if (r->body.oom)
                    return MHD_NO;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    if (r->head_status) {
        /* Refused as a Status; the connection closes, as Go's server
         * closes it after such an answer. */
        char msg[160], st[400];
        int large = r->head_status == 414 || r->head_status == 431;
        if (large)
            snprintf(msg, sizeof msg, "%s: limit is %zu bytes", r->head_why, s->max_head);
        else
            snprintf(msg, sizeof msg, "%s", r->head_why);
        snprintf(st, sizeof st, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                 "\"status\":\"Failure\",\"message\":\"%s\",\"reason\":\"%s\",\"code\":%d}",
                 msg, r->head_status == 414 ? "RequestURITooLong" : r->head_status == 431
                 ? "RequestHeaderFieldsTooLarge" : "BadRequest", r->head_status);
        agg_add_header(r, "Connection", "close");
        agg_respond_str(r, r->head_status, "application/json", st);
        return MHD_YES;
    }
    if (r->too_large) {
        agg_respond_str(r, 413, "application/json",
                        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                        "\"status\":\"Failure\",\"message\":\"Request entity too large: "
                        "limit is 3145728\",\"reason\":\"RequestEntityTooLarge\",\"code\":413}");
        return MHD_YES;
    }
    s->cfg.handler(s->cfg.handler_arg, r);
    if (!r->responded)
        agg_respond_str(r, 500, "text/plain", "handler sent no response");
    return MHD_YES;
}

/* Whether the client at the other end of fd has gone: it closed its end
 * (FIN: POLLRDHUP) or reset the connection (POLLHUP, POLLERR). Bytes it
 * sent and that wait to be read (a pipelined request) do not count. */
static int peer_gone(int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLRDHUP};
    return fd >= 0 && poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/*
 * Wakes every stream once a second, so each can notice its deadline or
 * send a bookmark, and ends those whose client went away.
 *
 * A suspended connection is not polled by libmicrohttpd, and a woken one
 * with nothing to send is suspended again without a read or a write: a
 * client that closes a quiet watch would leave its socket in CLOSE-WAIT
 * and its store watcher open until the watch's own timeout (up to an
 * hour). So the ticker looks at the socket of each suspended stream
 * itself (safe: a suspended connection is not closed, and st->mu keeps
 * it suspended meanwhile) and ends the stream of a client that hung up;
 * the response's last write then fails or finds the client gone, and
 * the connection closes and frees the watch, as kube-apiserver ends a
 * watch as soon as its client goes.
 */
static void *ticker_main(void *arg)
{
    agg_server_t *s = arg;
    pthread_mutex_lock(&s->smu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->scv, &s->smu, &ts);
        for (agg_stream_t *st = s->streams; st; st = st->next) {
            pthread_mutex_lock(&st->mu);
            if (st->suspended && peer_gone(st->fd)) {
                st->closed = 1;
                log_v(2, "http: a watch's client went away");
            }
            pthread_mutex_unlock(&st->mu);
            agg_stream_wake(st);
        }
    }
    pthread_mutex_unlock(&s->smu);
    return NULL;
}

/*
 * Connections are accepted here and handed to the worker threads with
 * MHD_add_connection, which deals them out by socket number, one per
 * worker in turn. Left to itself, MHD lets every worker poll the listening
 * socket and accept up to ten connections at a time, so a burst of new
 * connections (a client's pool opening at once) can land on two or three
 * workers; as handlers block while their write waits for its commit, the
 * connections sharing a worker then wait for each other, and throughput
 * falls to a fraction of what the other idle workers could give.
 */
static void *acceptor_main(void *arg)
{
    agg_server_t *s = arg;
    struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents)
            break;  /* stopping */
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd = accept4(s->lfd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: wait for some to close, do not spin. */
                struct timespec ts = {0, 50 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        /* MHD owns (and closes) fd from here, whether it takes it or not. */
        MHD_add_connection(s->d, fd, (const struct sockaddr *)&addr, len);
    }
    return NULL;
}

static void reaper_stop(agg_server_t *s)
{
    pthread_mutex_lock(&s->cmu);
    s->reaper_stop = 1;
    pthread_cond_broadcast(&s->ccv);
    pthread_mutex_unlock(&s->cmu);
    pthread_join(s->reaper, NULL);
}

/* The listening socket: address reuse, and both IPv4 and IPv6 on "::". */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1, off = 0;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off)) ||
        bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 1024)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* MHD's error log, as the server's warnings, less the notes that a client
 * went away mid-request or mid-handshake: that is not the server's error
 * (kube-apiserver logs none), and each connection the reaper cuts would
 * print one; those only at -v=2. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    static const char *const quiet[] = {
        "Socket has been disconnected when reading",
        "Connection socket is closed when reading",
        "Error: received handshake message out of context",
        "Failed to send the response headers",
        NULL,
    };
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (size_t i = 0; quiet[i]; i++) {
        if (!strncmp(msg, quiet[i], strlen(quiet[i]))) {
            log_v(2, "http: %s", msg);
            return;
        }
    }
    log_warning("http: %s", msg);
}

static void on_panic(void *cls, const char *file, unsigned line, const char *reason)
{
    (void)cls;
    log_error("http: fatal error in %s:%u: %s", file, line, reason ? reason : "");
    abort();
}

int agg_server_start(const agg_server_config_t *cfg, agg_server_t **out, err_t *err)
{
    agg_server_t *s = mem_calloc(1, sizeof *s);
    if (!s)
        return err_set(err, ERR_NOMEM, NULL);
    s->cfg = *cfg;
    atomic_init(&s->draining, 0);
    atomic_init(&s->active, 0);
    s->read_header_ms = cfg->read_header_timeout_ms ? (long long)cfg->read_header_timeout_ms
                                                    : AGG_READ_HEADER_TIMEOUT_MS;
    s->idle_ms = AGG_IDLE_TIMEOUT_S * 1000LL;
    s->max_head = cfg->max_head_bytes ? cfg->max_head_bytes : AGG_MAX_HEAD;
    if (s->max_head < AGG_MIN_HEAD || s->max_head > AGG_MAX_HEAD_LIMIT) {
        mem_free(s);
        return err_set(err, ERR_BAD_REQUEST, "the request head limit must be between %u and %u "
                       "bytes", AGG_MIN_HEAD, AGG_MAX_HEAD_LIMIT);
    }
    pthread_mutex_init(&s->smu, NULL);
    pthread_cond_init(&s->scv, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_cond_init(&s->ccv, NULL);
    MHD_set_panic_func(on_panic, NULL);

    /* Handlers block while their write waits for its group commit, and
     * a blocked thread holds up the other connections it polls: enough
     * threads keep many writes in flight, which is what makes the shared
     * commits large. */
    unsigned threads = cfg->threads;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n * 16 : 32;
        if (threads < 64)
            threads = 64;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    const char *bind = cfg->bind_address && *cfg->bind_address ? cfg->bind_address : "0.0.0.0";
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_TLS |
                     MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
    socklen_t sslen;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)cfg->port);
        sslen = sizeof *in4;
    } else if (inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
        sslen = sizeof *in6;
    } else {
        mem_free(s);
        return err_set(err, ERR_BAD_REQUEST, "--bind-address %s is not an IP address", bind);
    }

    struct MHD_OptionItem opts[16];
    int n = 0;
    /* The logger first, or MHD logs the options before it its own way. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->cert_pem};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->key_pem};
    if (cfg->client_ca_pem)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                            (void *)cfg->client_ca_pem};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, AGG_IDLE_TIMEOUT_S, NULL};
    /* The pool holds the request head (bodies are collected in the
     * request's own buffer); MHD clears all of it between requests. */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)AGG_HEAD_POOL(s->max_head), NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 10000, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                        (intptr_t)on_completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                        (intptr_t)on_connection, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK,
                                        (intptr_t)on_request_line, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    int rc = 0;
    s->wake[0] = s->wake[1] = -1;
    s->lfd = listen_on(&ss, sslen);
    if (s->lfd < 0) {
        rc = err_set(err, ERR_UNAVAILABLE, "cannot serve HTTPS on %s:%u: %s", bind, cfg->port,
                     strerror(errno));
        goto fail_listen;
    }
    if (pipe2(s->wake, O_CLOEXEC)) {
        rc = err_set(err, ERR_INTERNAL, "cannot make the acceptor's pipe");
        goto fail_pipe;
    }
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->d) {
        rc = err_set(err, ERR_UNAVAILABLE,
                     "cannot serve HTTPS on %s:%u (bad TLS certificate or key)", bind, cfg->port);
        goto fail_daemon;
    }
    if (pthread_create(&s->ticker, NULL, ticker_main, s)) {
        rc = err_set(err, ERR_INTERNAL, "cannot start the stream ticker");
        goto fail_ticker;
    }
    if (pthread_create(&s->reaper, NULL, reaper_main, s)) {
        rc = err_set(err, ERR_INTERNAL, "cannot start the connection reaper");
        goto fail_reaper;
    }
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s)) {
        rc = err_set(err, ERR_INTERNAL, "cannot start the acceptor");
        goto fail_acceptor;
    }
    s->accepting = 1;
    *out = s;
    return 0;

    /* Undo in reverse order of the steps above. */
fail_acceptor:
    reaper_stop(s);
fail_reaper:
    pthread_mutex_lock(&s->smu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->scv);
    pthread_mutex_unlock(&s->smu);
    pthread_join(s->ticker, NULL);
fail_ticker:
    MHD_stop_daemon(s->d);
fail_daemon:
    close(s->wake[0]);
    close(s->wake[1]);
fail_pipe:
    close(s->lfd);
fail_listen:
    pthread_cond_destroy(&s->ccv);
    pthread_mutex_destroy(&s->cmu);
    pthread_cond_destroy(&s->scv);
    pthread_mutex_destroy(&s->smu);
    mem_free(s);
    return rc;
}

/*
 * Shutdown, as kube-apiserver's on SIGTERM: no new connections; every
 * watch ended cleanly (its suspended connection resumed, its chunked
 * response completed with the terminating chunk, so a client sees the
 * stream end and not a broken connection), watches begun meanwhile
 * ended at once; the requests in flight finished and answered, for at
 * most AGG_SHUTDOWN_TIMEOUT_S, each response closing its connection.
 * Only then is the daemon stopped: libmicrohttpd must not be stopped
 * while it has a suspended connection, and by then none is (every
 * stream is ended and resumed, and none suspends again once ended); the
 * daemon closes the idle connections, and any still busy at the timeout.
 */
void agg_server_stop(agg_server_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->smu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->scv);
    pthread_mutex_unlock(&s->smu);
    pthread_join(s->ticker, NULL);
    /* No new connections: the acceptor ends when its pipe is written. */
    if (s->accepting) {
        ssize_t w = write(s->wake[1], "x", 1);
        (void)w;
        pthread_join(s->acceptor, NULL);
    }
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    /* End every stream, and (draining) every one that starts from now. */
    pthread_mutex_lock(&s->smu);
    atomic_store(&s->draining, 1);
    for (agg_stream_t *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        st->closed = 1;
        pthread_mutex_unlock(&st->mu);
        agg_stream_wake(st);
    }
    pthread_mutex_unlock(&s->smu);
    /* Wait for the requests in flight, the ending streams among them. */
    long long deadline = now_ms() + AGG_SHUTDOWN_TIMEOUT_S * 1000LL;
    unsigned left;
    while ((left = atomic_load(&s->active)) && now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (left)
        log_warning("http: shutting down with %u request(s) still in flight after %d s",
                    left, AGG_SHUTDOWN_TIMEOUT_S);
    /* The reaper goes before the daemon, which closes what is left. */
    reaper_stop(s);
    MHD_stop_daemon(s->d);
    pthread_cond_destroy(&s->ccv);
    pthread_mutex_destroy(&s->cmu);
    pthread_cond_destroy(&s->scv);
    pthread_mutex_destroy(&s->smu);
    mem_free(s);
}
