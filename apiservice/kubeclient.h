/*
 * kubeclient: JSON requests to kube-apiserver, the only file of apiservice/
 * that includes curl/curl.h.
 *
 * Owns a connection description: server URL, CA, bearer token or client
 * certificate, read from a kubeconfig (a file, or a kubeconfig's text as
 * a Cluster object carries it) or given in parts (kc_new). Each request
 * uses its own curl handle, so a kc_t may be shared between threads; a
 * kc_t never changes once made. Requests time out after KC_TIMEOUT_MS
 * unless the description sets shorter timeouts.
 *
 * A kubeconfig read from a file may name further files (a CA path, a
 * tokenFile), read as kubectl reads them. A kubeconfig's TEXT comes from
 * a user (a Cluster's spec), so it must carry everything inline: one that
 * names a file is refused, never read from this server's disk.
 *
 * kc_fetch is a plain GET of any http(s) URL (a chart repository's index
 * and archives): no credentials, the system's CAs, a size cap, and no
 * redirect followed, so what it reaches is only ever the URL the caller
 * checked.
 */
#ifndef EDGE_KUBECLIENT_H
#define EDGE_KUBECLIENT_H

#include <jansson.h>

#include "../lib/err.h"

#define KC_TIMEOUT_MS 5000

typedef struct kc kc_t;

/* A connection in parts (every pointer borrowed; kc_new copies). */
typedef struct kc_config {
    const char *server;          /* "https://host:port", no path */
    const char *ca;              /* PEM bundle; NULL: the system store */
    size_t ca_len;
    int insecure;                /* skip verifying the server's certificate */
    const char *token;           /* bearer token, or NULL */
    const char *cert, *key;      /* PEM client certificate and key, or NULL */
    size_t cert_len, key_len;
    long connect_timeout_ms;     /* 0: KC_TIMEOUT_MS */
    long timeout_ms;             /* a whole request; 0: KC_TIMEOUT_MS */
} kc_config_t;

/* A client for cfg (copied). ERR_BAD_REQUEST when cfg has no server or
 * only one of cert and key, ERR_NOMEM. *out is the caller's (kc_free). */
int kc_new(const kc_config_t *cfg, kc_t **out, err_t *err);

/* What c connects with, as kc_new took it: the pointers are borrowed
 * from c and live as long as it. For tests, and for a caller that derives
 * a client from another (another server, shorter timeouts) with kc_new. */
void kc_config_of(const kc_t *c, kc_config_t *cfg);

/* A kubeconfig's text (YAML or JSON, len bytes): its current context's
 * cluster (server, certificate-authority-data, insecure-skip-tls-verify)
 * and user (token, or client-certificate-data and client-key-data).
 * ERR_BAD_REQUEST (not a kubeconfig, no server in the current context, a
 * *-data field that is not base64, or a field naming a file, with the
 * reason), ERR_NOMEM. *out is the caller's (kc_free). */
int kc_from_kubeconfig_text(const char *text, size_t len, kc_t **out, err_t *err);
/* The same from the kubeconfig in base64 (as a Cluster's
 * spec.connection.kubeconfig); ERR_BAD_REQUEST too when b64 is not
 * base64. */
int kc_from_kubeconfig_base64(const char *b64, kc_t **out, err_t *err);

/* Reads path. ERR_IO, ERR_BAD_REQUEST (not a usable kubeconfig, with the
 * reason), ERR_NOMEM. *out is the caller's (kc_free).
 * A NULL or empty path is client-go's in-cluster configuration: the
 * server at $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the pod's
 * ServiceAccount CA, and its token, read again on every request (the
 * kubelet rotates it). ERR_NOT_FOUND when not running in a pod (no
 * $KUBERNETES_SERVICE_HOST), ERR_IO when the token cannot be read. */
int kc_from_kubeconfig(const char *path, kc_t **out, err_t *err);

/* Where the kubelet mounts a pod's ServiceAccount credentials. */
#define KC_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
void kc_free(kc_t *c);

/* Sends method path (e.g. "/api/v1/...") with body (JSON, may be NULL).
 * Returns 0 with the HTTP status in *status and the decoded response in
 * *resp (new reference; JSON null when the body is not JSON), or
 * ERR_UNAVAILABLE when kube-apiserver cannot be reached, or ERR_NOMEM
 * (nothing sent without its body or headers, no answer cut short). */
int kc_request(kc_t *c, const char *method, const char *path, const json_t *body,
               long *status, json_t **resp, err_t *err);
/* The same with the body's Content-Type given (e.g.
 * "application/apply-patch+yaml" for a server-side apply, whose body JSON
 * is, JSON being YAML). */
int kc_request_as(kc_t *c, const char *method, const char *path, const char *content_type,
                  const json_t *body, long *status, json_t **resp, err_t *err);

/* ---- plain GETs ---------------------------------------------------------------- */

/* What kc_fetch got (owned by the caller: kc_fetch_res_free). */
typedef struct kc_fetch_res {
    long status;                 /* the HTTP status */
    char *body;                  /* NUL-terminated, or NULL when empty */
    size_t len;
    char *location;              /* a 3xx's target as curl resolved it, or NULL */
} kc_fetch_res_t;

/* GET url, an http:// or https:// URL (no other scheme is tried),
 * verifying TLS against the system's CAs, sending no credentials. The
 * whole transfer is bounded by timeout_ms (0: KC_TIMEOUT_MS) and its
 * connection by KC_TIMEOUT_MS; the body by max bytes. A redirect is
 * never followed: it comes back as its status and location, for the
 * caller to judge. Returns 0 with *res filled whatever the HTTP status,
 * ERR_BAD_REQUEST (not an http(s) URL), ERR_REQUEST_TOO_LARGE (the body
 * is over max), ERR_UNAVAILABLE (unreachable, TLS refused, timed out;
 * the message says which), ERR_NOMEM. *res is empty on failure.
 * Thread-safe. */
int kc_fetch(const char *url, size_t max, long timeout_ms, kc_fetch_res_t *res, err_t *err);
void kc_fetch_res_free(kc_fetch_res_t *res);

#endif
