/*
 * httpc: a small HTTP/1.1 client for JSON APIs spread over several
 * equivalent endpoints (the members of an etcd cluster). The only file of
 * lib/ that includes curl/curl.h; the etcd storage backend talks through
 * it. apiservice/kubeclient.c still drives libcurl itself and is to move
 * onto this module, so that libcurl lives in one file.
 *
 * What it owns
 *   A list of base URLs ("https://10.0.0.1:2379"), TLS material (a CA
 *   bundle to verify servers by, a client certificate and key), timeouts,
 *   and a pool of idle curl handles, each holding its kept-alive
 *   connection, so consecutive requests reuse connections.
 *
 * Failover
 *   Requests go to the endpoint that last answered. When an endpoint cannot
 *   be reached (connection refused, host unknown, connect timeout), the
 *   request was never sent, so the next endpoint is tried, each once. Any
 *   later failure (a reset or a timeout once the request went out) is
 *   returned as ERR_UNAVAILABLE and the next request starts at the next
 *   endpoint: the caller decides whether a request may be repeated (a
 *   write that timed out may have been applied).
 *
 * Thread safety: every function may be called from any thread at once;
 * httpc_free must not race with other calls on the same client.
 */
#ifndef EDGE_LIB_HTTPC_H
#define EDGE_LIB_HTTPC_H

#include <stdatomic.h>
#include <stddef.h>

#include "err.h"

typedef struct httpc httpc_t;

typedef struct httpc_config {
    const char *urls;            /* comma-separated base URLs (required) */
    const char *ca_file;         /* PEM bundle to verify servers; NULL: the
                                    system's */
    const char *cert_file;       /* client certificate (PEM), with key_file */
    const char *key_file;
    unsigned timeout_ms;         /* a whole unary request; 0: 30 s */
    unsigned connect_timeout_ms; /* 0: 3 s */
    size_t max_response;         /* bytes of a unary response or of one
                                    streamed line; 0: 256 MiB */
} httpc_config_t;

/* A new client (caller owns; httpc_free). ERR_BAD_REQUEST for no or a bad
 * URL, or a cert without a key; ERR_NOMEM. Files are read per connection
 * by libcurl: a missing file fails the requests, not this call. */
int httpc_new(const httpc_config_t *cfg, httpc_t **out, err_t *err);

/* Closes the pooled connections and frees the client; NULL is a no-op. */
void httpc_free(httpc_t *c);

typedef struct httpc_response {
    long status;                 /* HTTP status */
    char *body;                  /* NUL-terminated; caller owns (mem) */
    size_t len;
} httpc_response_t;

/* POSTs body (Content-Type: application/json) to base URL + path. Returns
 * 0 with *resp filled whatever the HTTP status (release it with
 * httpc_response_free), ERR_UNAVAILABLE when no endpoint answered,
 * ERR_REQUEST_TOO_LARGE for a response over max_response, ERR_NOMEM. */
int httpc_post(httpc_t *c, const char *path, const char *body, size_t len,
               httpc_response_t *resp, err_t *err);

/* httpc_post bounded by timeout_ms instead of the client's timeout (0:
 * the client's): the whole request, connecting included, to each
 * endpoint it tries. For a caller with a deadline of its own (a
 * lease that must be renewed in time). */
int httpc_post_within(httpc_t *c, const char *path, const char *body, size_t len,
                      unsigned timeout_ms, httpc_response_t *resp, err_t *err);

void httpc_response_free(httpc_response_t *r);

/* Receives one line of a streamed response (without its '\n'; text is
 * NUL-terminated and borrowed for the call). A non-zero return ends the
 * stream, and httpc_stream returns it. */
typedef int (*httpc_line_fn)(void *arg, const char *text, size_t len);

/* POSTs body and hands each newline-ended line of the response to fn as
 * it arrives (the last, unended one too), with no overall timeout. The
 * stream runs until the server ends it (returns 0), fn stops it (returns
 * fn's value), *cancel becomes non-zero (checked about every 100 ms even
 * while the stream is idle; returns ERR_CLOSED), or the connection fails
 * (ERR_UNAVAILABLE). *status (if non-NULL) receives the HTTP status, 0 if
 * none came. extra_header is one more request header line, or NULL. Uses
 * a connection of its own. */
int httpc_stream(httpc_t *c, const char *path, const char *body, size_t len,
                 const char *extra_header, httpc_line_fn fn, void *arg,
                 const atomic_int *cancel, long *status, err_t *err);

#endif
