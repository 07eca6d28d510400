/*
 * http: the HTTPS server, the only file that includes microhttpd.h.
 *
 * Owns the listening daemon (libmicrohttpd, TLS through GnuTLS, an epoll
 * thread pool), each request's collected headers and body, and the life
 * cycle of streamed responses. Handlers see only the types below, so a
 * test can drive them without a socket.
 *
 * Request life cycle
 *   The acceptor thread accepts the connection and hands it to MHD, which
 *   does the TLS handshake and parses the headers. A connection whose
 *   request head is not complete within the read-header timeout (32 s by
 *   default, kube-apiserver's ReadHeaderTimeout) is closed, however
 *   steadily its bytes trickle in; between requests a kept-alive
 *   connection may stay idle for 120 s (see "Slow clients" in http.c).
 *   A request head (request line and headers) of up to max_head_bytes
 *   (AGG_MAX_HEAD) is read; a larger one is refused with a Status, 414
 *   when the URI alone is too long, else 431, without calling the handler
 *   (past the connection's buffer, AGG_HEAD_POOL(max), libmicrohttpd
 *   itself refuses it with its own page).
 *   The body is collected into the request (at most AGG_MAX_BODY bytes:
 *   larger is a 413 without calling the handler); then the handler runs
 *   once, on one of the pool's threads, and must answer with exactly one
 *   agg_respond*() call.
 *   Handlers may block briefly (a durable write waits for its group commit),
 *   which is why the pool is larger than the core count. A streamed
 *   response (watch) does not hold a thread: while it has nothing to send
 *   its connection is suspended, and agg_stream_wake() resumes it.
 *
 * Thread safety: a request belongs to the thread running its handler; an
 * agg_stream_t may be woken from any thread until its close callback ran.
 */
#ifndef EDGE_AGG_HTTP_H
#define EDGE_AGG_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "../lib/err.h"

#define AGG_MAX_BODY (3u * 1024u * 1024u)  /* kube-apiserver's request limit */
/* kube-apiserver reads heads of up to 1 MiB (Go's MaxHeaderBytes). Here
 * each connection's libmicrohttpd buffer must hold the whole head, plus
 * room for the parsed header table, and libmicrohttpd clears all of it
 * between the requests of a kept-alive connection: a larger limit costs
 * memory per connection and time per request. The default is a quarter
 * of kube's. */
#define AGG_MAX_HEAD (256u * 1024u)
#define AGG_MIN_HEAD (8u * 1024u)
#define AGG_MAX_HEAD_LIMIT (1024u * 1024u)
/* The buffer: the head, its header table, and the response's headers. */
#define AGG_HEAD_POOL(max) ((max) + ((max) / 4 > 16384u ? (max) / 4 : 16384u))
#define AGG_READ_HEADER_TIMEOUT_MS 32000u   /* kube-apiserver's ReadHeaderTimeout */

typedef struct agg_req agg_req_t;
typedef struct agg_server agg_server_t;
typedef struct agg_stream agg_stream_t;

typedef void (*agg_handler_fn)(void *arg, agg_req_t *req);

typedef struct agg_server_config {
    const char *bind_address;    /* "0.0.0.0", "127.0.0.1", "::" ... */
    unsigned port;
    const char *cert_pem;        /* serving certificate chain, PEM */
    const char *key_pem;
    const char *client_ca_pem;   /* when set, client certificates are
                                    requested (never required) */
    unsigned threads;            /* 0: 16 per core, at least 64 */
    unsigned read_header_timeout_ms;  /* 0: AGG_READ_HEADER_TIMEOUT_MS */
    unsigned max_head_bytes;     /* 0: AGG_MAX_HEAD; at most AGG_MAX_HEAD_LIMIT */
    agg_handler_fn handler;
    void *handler_arg;
} agg_server_config_t;

/* Starts serving. 0, ERR_UNAVAILABLE (cannot bind or bad TLS material;
 * the message says which). *out is the caller's; agg_server_stop. */
int agg_server_start(const agg_server_config_t *cfg, agg_server_t **out, err_t *err);
/* Shuts down gracefully: stops accepting connections, ends every stream
 * cleanly (its chunked response completed; a stream started meanwhile
 * ends at once), waits for the requests in flight to finish (at most a
 * minute; their responses close their connections), then stops the
 * daemon, which closes the connections left, and frees it. NULL is a
 * no-op. Call once, from one thread. */
void agg_server_stop(agg_server_t *s);

/* ---- the request (borrowed strings, valid until the response is sent) -- */

const char *agg_req_method(const agg_req_t *r);
const char *agg_req_path(const agg_req_t *r);      /* percent-decoded */
/* A query parameter's first value, NULL when absent, "" when given
 * without a value ("?watch"). */
const char *agg_req_query(const agg_req_t *r, const char *key);
/* Calls fn for every query parameter, in order (repeated names repeat; a
 * bare "?name" has the value ""). */
void agg_req_queries(const agg_req_t *r,
                     void (*fn)(void *arg, const char *name, const char *value),
                     void *arg);
/* A header's first value (case-insensitive name), NULL when absent. */
const char *agg_req_header(const agg_req_t *r, const char *name);
/* Calls fn for every header, in order (repeated names repeat). */
void agg_req_headers(const agg_req_t *r,
                     void (*fn)(void *arg, const char *name, const char *value),
                     void *arg);
const char *agg_req_body(const agg_req_t *r, size_t *len);
/* DER certificates the client presented (leaf first), 0 when none. */
size_t agg_req_peer_certs(agg_req_t *r, const unsigned char *const **der,
                          const size_t **len);
/* Remote address as text. Not thread-safe: call it from the handler. */
const char *agg_req_remote(const agg_req_t *r);

/* The status of the response queued so far (0 before one is). */
int agg_req_status(const agg_req_t *r);
/* The length of the response body queued (0 for a stream or none yet). */
size_t agg_req_response_len(const agg_req_t *r);

/* Per-request state a handler may hang on the request; freed with it. */
void agg_req_set_user(agg_req_t *r, void *p, void (*free_fn)(void *));
void *agg_req_user(const agg_req_t *r);
/* Runs fn(p) when the request is freed (its response sent), the latest
 * registered first, so a handler releases what it allocated in one place
 * whichever way it answers. NULL p is ignored. 0, or -1 when out of
 * memory, fn(p) having then run at once. */
int agg_req_defer(agg_req_t *r, void (*fn)(void *), void *p);

/* ---- responses ------------------------------------------------------ */

/* Adds a response header (copied). Call before agg_respond*. */
void agg_add_header(agg_req_t *r, const char *name, const char *value);
/* Sends body (taken over; freed with mem_free) as the whole response. */
void agg_respond(agg_req_t *r, int status, const char *content_type,
                 char *body, size_t len);
/* Sends a copy of a static or borrowed string. */
void agg_respond_str(agg_req_t *r, int status, const char *content_type,
                     const char *body);

/*
 * A streamed (chunked) response. read() is called whenever the connection
 * can take data: it copies up to max bytes into buf and returns how many,
 * 0 when it has nothing right now (the connection is then suspended until
 * agg_stream_wake), or -1 to end the response. close() runs exactly once,
 * when the response is done or the client went away; after it returns,
 * the stream must not be woken.
 */
typedef struct agg_stream_ops {
    ssize_t (*read)(void *arg, char *buf, size_t max);
    void (*close)(void *arg);
} agg_stream_ops_t;

/* Starts a streamed response; on failure close() has been called. The
 * returned handle is for agg_stream_wake. */
agg_stream_t *agg_respond_stream(agg_req_t *r, int status,
                                 const char *content_type,
                                 const agg_stream_ops_t *ops, void *arg);
/* Makes the stream's read() run soon. Safe from any thread and while
 * holding locks that read() does not take. */
void agg_stream_wake(agg_stream_t *st);

/* ---- requests in memory (tests): a handler cannot tell them apart ---- */

/* A request with no connection: method and path (both borrowed for the
 * request's life; path percent-decoded, without the query), query (raw
 * "a=1&b", percent-decoded here; NULL for none), headers ("Name: value"
 * each, NULL-terminated; NULL for none) and body (copied; NULL for none).
 * Its peer is 127.0.0.1 with no certificates. A streamed response is read
 * until its read() has nothing more right now, then closed, and
 * agg_respond_stream returns NULL. NULL when out of memory. */
agg_req_t *agg_req_fake(const char *method, const char *path, const char *query,
                        const char *const *headers, const char *body, size_t body_len);
/* The response's body (borrowed) and one of its headers (Content-Type
 * included; NULL when absent); its status is agg_req_status. */
const char *agg_req_fake_response(const agg_req_t *r, size_t *len);
const char *agg_req_fake_header(const agg_req_t *r, const char *name);
void agg_req_fake_free(agg_req_t *r);

#endif
