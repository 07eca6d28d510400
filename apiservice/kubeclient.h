/*
 * kubeclient: JSON requests to kube-apiserver, the only file of apiservice/
 * that includes curl/curl.h.
 *
 * Owns a connection description read from a kubeconfig file (its current
 * context: server URL, CA, bearer token or client certificate). Each
 * request uses its own curl handle, so a kc_t may be shared between
 * threads. Requests time out after KC_TIMEOUT_MS.
 */
#ifndef EDGE_KUBECLIENT_H
#define EDGE_KUBECLIENT_H

#include <jansson.h>

#include "../lib/err.h"

#define KC_TIMEOUT_MS 5000

typedef struct kc kc_t;

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

#endif
