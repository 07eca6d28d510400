#include "delegate.h"

#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/crypto.h"
#include "../lib/mem.h"
#include "../lib/log.h"
#include "kubeclient.h"

#define CACHE_SLOTS 4096
#define CM_PATH "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"

typedef struct slot {
    char key[65];                /* sha256 of the token; "" when empty */
    time_t expires;
    int ok;
    json_t *user;                /* TokenReview status.user when ok */
} slot_t;

struct apisvc_delegate {
    kc_t *kc;
    pthread_mutex_t mu;
    slot_t *cache;
    atomic_ulong reviews;
    /* refresher */
    apisvc_install_fn install;
    void *install_arg;
    char *client_ca_flag;        /* owned copy of the override */
    int requestheader_from_flags;
    pthread_t thread;
    int running, stopping;
    pthread_cond_t cv;
};

int apisvc_delegate_new(const char *kubeconfig, apisvc_delegate_t **out, err_t *err)
{
    apisvc_delegate_t *d = mem_calloc(1, sizeof *d);
    if (!d)
        return err_set(err, ERR_NOMEM, NULL);
    d->cache = mem_calloc(CACHE_SLOTS, sizeof *d->cache);
    int rc = d->cache ? kc_from_kubeconfig(kubeconfig, &d->kc, err) : err_set(err, ERR_NOMEM, NULL);
    if (rc) {
        mem_free(d->cache);
        mem_free(d);
        return rc;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    *out = d;
    return 0;
}

void apisvc_delegate_free(apisvc_delegate_t *d)
{
    if (!d)
        return;
    if (d->running) {
        pthread_mutex_lock(&d->mu);
        d->stopping = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    kc_free(d->kc);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        json_decref(d->cache[i].user);
    mem_free(d->client_ca_flag);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    mem_free(d->cache);
    mem_free(d);
}

unsigned long apisvc_delegate_reviews(const apisvc_delegate_t *d)
{
    return atomic_load(&d->reviews);
}

static const char *str_or(const char *s) { return s ? s : ""; }

/* ---- TokenReview ------------------------------------------------------------- */

/* The cache key of a token: its SHA-256, or "" when hashing failed (a
 * test build can make it fail: EDGE_TEST_DIGEST_FAILS). */
static void token_key(const char *token, char key[65])
{
    crypto_sha256_hex(token, strlen(token), key);
#ifdef EDGE_TEST_HOOKS
    if (getenv("EDGE_TEST_DIGEST_FAILS"))
        key[0] = '\0';
#endif
}

int apisvc_token_review(apisvc_delegate_t *d, const char *token, json_t **user, err_t *err)
{
    *user = NULL;
    char key[65];
    token_key(token, key);
    /* Without a digest the answer is neither looked up nor kept: two
     * tokens whose hashing failed would share the key "". */
    int cacheable = key[0] != '\0';
    char head[9] = "0";
    if (cacheable) {
        memcpy(head, key, 8);
        head[8] = '\0';
    }
    unsigned idx = (unsigned)(strtoul(head, NULL, 16) % CACHE_SLOTS);
    time_t now = time(NULL);
    pthread_mutex_lock(&d->mu);
    slot_t *s = &d->cache[idx];
    if (cacheable && !strcmp(s->key, key) && s->expires > now) {
        int ok = s->ok;
        if (ok)
            *user = json_deep_copy(s->user);
        pthread_mutex_unlock(&d->mu);
        if (ok && !*user)
            return err_set(err, ERR_NOMEM, NULL);
        return ok ? 0 : err_set(err, ERR_UNAUTHORIZED, "token rejected (cached)");
    }
    pthread_mutex_unlock(&d->mu);

    atomic_fetch_add(&d->reviews, 1);
    json_t *req = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "authentication.k8s.io/v1",
                            "kind", "TokenReview", "spec", "token", token);
    json_t *resp = NULL;
    long status = 0;
    int rc = req ? kc_request(d->kc, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", req,
                              &status, &resp, err)
                 : err_set(err, ERR_NOMEM, NULL);
    json_decref(req);
    if (rc)
        return rc;  /* upstream unreachable: not cached */
    const json_t *st = json_object_get(resp, "status");
    int ok = status == 201 || status == 200 ? json_is_true(json_object_get(st, "authenticated")) : 0;
    json_t *juser = ok ? json_incref(json_object_get(st, "user")) : NULL;
    json_decref(resp);
    if (status != 200 && status != 201)
        return err_set(err, ERR_UNAVAILABLE, "TokenReview failed with HTTP %ld", status);
    if (ok && !(*user = json_deep_copy(juser))) {
        json_decref(juser);
        return err_set(err, ERR_NOMEM, NULL);
    }
    if (cacheable) {
        pthread_mutex_lock(&d->mu);
        snprintf(s->key, sizeof s->key, "%s", key);
        s->expires = now + DELEGATE_TTL;
        s->ok = ok;
        json_decref(s->user);
        s->user = juser;
        pthread_mutex_unlock(&d->mu);
    } else {
        json_decref(juser);
    }
    if (!ok)
        return err_set(err, ERR_UNAUTHORIZED, "token rejected");
    return 0;
}

/* ---- the ConfigMap ------------------------------------------------------------ */

/* A ConfigMap list value is a JSON array in a string; joined with commas. */
static void join_list(const json_t *data, const char *key, char *out, size_t n)
{
    out[0] = '\0';
    const char *txt = json_string_value(json_object_get(data, key));
    json_t *arr = txt ? json_loads(txt, 0, NULL) : NULL;
    size_t i, len = 0;
    const json_t *v;
    json_array_foreach(arr, i, v) {
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", i ? "," : "",
                                str_or(json_string_value(v)));
    }
    json_decref(arr);
}

/* Installs the ConfigMap's settings; *trust (optional) gets the CAs. */
static int apply_configmap(apisvc_delegate_t *d, char **trust, err_t *err)
{
    json_t *cm = NULL;
    long status = 0;
    int rc = kc_request(d->kc, "GET", CM_PATH, NULL, &status, &cm, err);
    if (rc)
        return rc;
    if (status != 200) {
        json_decref(cm);
        return err_set(err, status == 404 ? ERR_NOT_FOUND : ERR_UNAVAILABLE,
                       "reading kube-system/extension-apiserver-authentication: HTTP %ld", status);
    }
    const json_t *data = json_object_get(cm, "data");
    char allowed[1024], user[256], uid[256], group[256], extra[256];
    apisvc_authn_settings_t set = {
        .client_ca_pem = d->client_ca_flag
                             ? d->client_ca_flag
                             : json_string_value(json_object_get(data, "client-ca-file")),
        .requestheader = !d->requestheader_from_flags};
    if (set.requestheader) {
        join_list(data, "requestheader-allowed-names", allowed, sizeof allowed);
        join_list(data, "requestheader-username-headers", user, sizeof user);
        join_list(data, "requestheader-uid-headers", uid, sizeof uid);
        join_list(data, "requestheader-group-headers", group, sizeof group);
        join_list(data, "requestheader-extra-headers-prefix", extra, sizeof extra);
        set.requestheader_client_ca_pem =
            json_string_value(json_object_get(data, "requestheader-client-ca-file"));
        set.allowed_names = allowed;
        set.username_headers = user;
        set.uid_headers = uid;
        set.group_headers = group;
        set.extra_prefixes = extra;
    }
    rc = d->install(d->install_arg, &set, err);
    if (!rc && set.requestheader && trust) {
        const char *rhca = set.requestheader_client_ca_pem ? set.requestheader_client_ca_pem : "";
        const char *cca = set.client_ca_pem ? set.client_ca_pem : "";
        size_t n = strlen(rhca) + strlen(cca) + 2;
        if ((*rhca || *cca) && (*trust = mem_alloc(n)))
            snprintf(*trust, n, "%s\n%s", cca, rhca);
    }
    json_decref(cm);
    return rc;
}

static void *refresher(void *arg)
{
    apisvc_delegate_t *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += DELEGATE_REFRESH;
        if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT || d->stopping)
            continue;
        pthread_mutex_unlock(&d->mu);
        err_t err;
        err_clear(&err);
        if (apply_configmap(d, NULL, &err) && err.code != ERR_NOT_FOUND)
            log_warning("authentication: %s", err.message);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int apisvc_delegate_start(apisvc_delegate_t *d, const apisvc_overrides_t *ov,
                          apisvc_install_fn install, void *arg, char **trust, err_t *err)
{
    d->install = install;
    d->install_arg = arg;
    d->requestheader_from_flags = ov->requestheader_from_flags;
    if (ov->client_ca_pem && !(d->client_ca_flag = mem_strdup(ov->client_ca_pem)))
        return err_set(err, ERR_NOMEM, NULL);
    err_t e;
    err_clear(&e);
    int rc = apply_configmap(d, trust, &e);
    if (rc == ERR_NOT_FOUND || rc == ERR_UNAVAILABLE) {
        /* kube-apiserver may not be up yet; tokens still work, and the
         * refresher tries again. */
        log_warning("authentication: %s; client certificates from it are not trusted yet",
                e.message);
    } else if (rc) {
        *err = e;
        return rc;
    }
    if (pthread_create(&d->thread, NULL, refresher, d))
        return err_set(err, ERR_INTERNAL, "cannot start the authentication refresher");
    d->running = 1;
    return 0;
}
