#include "authn.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/crypto.h"
#include "../lib/fs.h"
#include "../lib/mem.h"

#define MAX_NAMES 16

typedef struct token {
    char *token;
    authz_user_t user;
} token_t;

/* A comma-separated list, split once. */
typedef struct names {
    char *buf;
    size_t n;
    const char *v[MAX_NAMES];
} names_t;

struct agg_authn {
    token_t *tokens;
    size_t ntokens;
    pthread_rwlock_t lock;       /* guards the CA pools and header names */
    crypto_pool_t *client_ca;
    crypto_pool_t *rh_ca;
    names_t allowed, user_h, uid_h, group_h, extra_p;
    agg_token_review_fn review;
    void *review_arg;
};

static void names_free(names_t *n)
{
    mem_free(n->buf);
    memset(n, 0, sizeof *n);
}

static int names_parse(names_t *n, const char *list, const char *dflt)
{
    names_free(n);
    const char *src = list && *list ? list : dflt;
    if (!src)
        return 0;
    n->buf = mem_strdup(src);
    if (!n->buf)
        return ERR_NOMEM;
    char *save = NULL;
    for (char *t = strtok_r(n->buf, ",", &save); t && n->n < MAX_NAMES;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (*t)
            n->v[n->n++] = t;
    }
    return 0;
}

/* Splits one CSV line into at most max fields, honouring quotes. */
static size_t csv_fields(char *line, char **f, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (*p && n < max) {
        char *out = p;
        f[n++] = out;
        int quoted = *p == '"';
        if (quoted)
            p++;
        while (*p) {
            if (quoted && *p == '"' && p[1] == '"') {
                *out++ = '"';
                p += 2;
            } else if (quoted && *p == '"') {
                quoted = 0;
                p++;
            } else if (!quoted && *p == ',') {
                break;
            } else {
                *out++ = *p++;
            }
        }
        int more = *p == ',';
        *out = '\0';
        if (more)
            p++;
        else
            break;
    }
    return n;
}

static int load_tokens(agg_authn_t *a, const char *token_file, err_t *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = fs_read_file(token_file, &data, &len, err);
    if (rc)
        return rc;
    char *save = NULL;
    int lineno = 0;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (!l || line[0] == '#')
            continue;
        char *f[4] = {0};
        size_t n = csv_fields(line, f, 4);
        if (n < 3 || !*f[0] || !*f[1]) {
            rc = err_set(err, ERR_BAD_REQUEST,
                         "--token-auth-file %s line %d: want token,user,uid[,\"groups\"]",
                         token_file, lineno);
            break;
        }
        token_t *t = mem_realloc(a->tokens, (a->ntokens + 1) * sizeof *t);
        if (!t) {
            rc = err_set(err, ERR_NOMEM, NULL);
            break;
        }
        a->tokens = t;
        t = &a->tokens[a->ntokens];
        memset(t, 0, sizeof *t);
        t->token = mem_strdup(f[0]);
        if (!t->token) {
            rc = err_set(err, ERR_NOMEM, NULL);
            break;
        }
        a->ntokens++;
        snprintf(t->user.name, sizeof t->user.name, "%s", f[1]);
        snprintf(t->user.uid, sizeof t->user.uid, "%s", f[2]);
        if (n == 4) {
            char *gs = NULL;
            for (char *g = strtok_r(f[3], ",", &gs); g; g = strtok_r(NULL, ",", &gs))
                authz_user_add_group(&t->user, g);
        }
        authz_user_add_group(&t->user, "system:authenticated");
    }
    mem_free(data);
    return rc;
}

int agg_authn_new(const char *token_file, agg_authn_t **out, err_t *err)
{
    agg_authn_t *a = mem_calloc(1, sizeof *a);
    if (!a)
        return err_set(err, ERR_NOMEM, NULL);
    pthread_rwlock_init(&a->lock, NULL);
    int rc = 0;
    if (token_file && *token_file)
        rc = load_tokens(a, token_file, err);
    if (!rc) {
        agg_requestheader_t none = {0};
        rc = agg_authn_set_requestheader(a, &none, err);
    }
    if (rc) {
        agg_authn_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void agg_authn_free(agg_authn_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->ntokens; i++)
        mem_free(a->tokens[i].token);
    mem_free(a->tokens);
    crypto_pool_free(a->client_ca);
    crypto_pool_free(a->rh_ca);
    names_free(&a->allowed);
    names_free(&a->user_h);
    names_free(&a->uid_h);
    names_free(&a->group_h);
    names_free(&a->extra_p);
    pthread_rwlock_destroy(&a->lock);
    mem_free(a);
}

static int load_pool(const char *pem, crypto_pool_t **out, err_t *err)
{
    *out = NULL;
    if (!pem || !*pem)
        return 0;
    return crypto_pool_load(pem, strlen(pem), out, err);
}

int agg_authn_set_client_ca(agg_authn_t *a, const char *pem, err_t *err)
{
    crypto_pool_t *p;
    int rc = load_pool(pem, &p, err);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&a->lock);
    crypto_pool_t *old = a->client_ca;
    a->client_ca = p;
    pthread_rwlock_unlock(&a->lock);
    crypto_pool_free(old);
    return 0;
}

int agg_authn_set_requestheader(agg_authn_t *a, const agg_requestheader_t *rh, err_t *err)
{
    crypto_pool_t *p;
    int rc = load_pool(rh->client_ca_pem, &p, err);
    if (rc)
        return rc;
    names_t allowed = {0}, user_h = {0}, uid_h = {0}, group_h = {0}, extra_p = {0};
    if (names_parse(&allowed, rh->allowed_names, NULL) ||
        names_parse(&user_h, rh->username_headers, "X-Remote-User") ||
        names_parse(&uid_h, rh->uid_headers, NULL) ||
        names_parse(&group_h, rh->group_headers, "X-Remote-Group") ||
        names_parse(&extra_p, rh->extra_prefixes, "X-Remote-Extra-")) {
        names_free(&allowed);
        names_free(&user_h);
        names_free(&uid_h);
        names_free(&group_h);
        names_free(&extra_p);
        crypto_pool_free(p);
        return err_set(err, ERR_NOMEM, NULL);
    }
    pthread_rwlock_wrlock(&a->lock);
    crypto_pool_t *old = a->rh_ca;
    a->rh_ca = p;
    names_free(&a->allowed);
    names_free(&a->user_h);
    names_free(&a->uid_h);
    names_free(&a->group_h);
    names_free(&a->extra_p);
    a->allowed = allowed;
    a->user_h = user_h;
    a->uid_h = uid_h;
    a->group_h = group_h;
    a->extra_p = extra_p;
    pthread_rwlock_unlock(&a->lock);
    crypto_pool_free(old);
    return 0;
}

void agg_authn_set_token_review(agg_authn_t *a, agg_token_review_fn fn, void *arg)
{
    a->review = fn;
    a->review_arg = arg;
}

/* ---- front-proxy headers ---------------------------------------------------- */

typedef struct hdr_scan {
    const agg_authn_t *a;
    authz_user_t *u;
    int have_user;
} hdr_scan_t;

static int in_names(const names_t *n, const char *h)
{
    for (size_t i = 0; i < n->n; i++)
        if (!strcasecmp(n->v[i], h))
            return 1;
    return 0;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* The extra key: the header suffix, percent-decoded and lower-cased
 * (requestheader.go unescapeExtraKey). */
static void extra_key(const char *suffix, char *out, size_t n)
{
    size_t o = 0;
    for (const char *p = suffix; *p && o + 1 < n; p++) {
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            out[o++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            out[o++] = (char)tolower((unsigned char)*p);
        }
    }
    out[o] = '\0';
}

static void on_header(void *arg, const char *name, const char *value)
{
    hdr_scan_t *s = arg;
    const agg_authn_t *a = s->a;
    authz_user_t *u = s->u;
    if (!s->have_user && in_names(&a->user_h, name) && *value) {
        snprintf(u->name, sizeof u->name, "%s", value);
        s->have_user = 1;
        return;
    }
    if (in_names(&a->uid_h, name) && !u->uid[0]) {
        snprintf(u->uid, sizeof u->uid, "%s", value);
        return;
    }
    if (in_names(&a->group_h, name)) {
        authz_user_add_group(u, value);
        return;
    }
    for (size_t i = 0; i < a->extra_p.n; i++) {
        size_t pl = strlen(a->extra_p.v[i]);
        if (!strncasecmp(name, a->extra_p.v[i], pl) && name[pl]) {
            char key[AUTHZ_MAX_EXTRA_KEY];
            extra_key(name + pl, key, sizeof key);
            authz_user_add_extra(u, key, value);
            return;
        }
    }
}

/* 1: authenticated by the front proxy; 0: not applicable; <0: the
 * certificate was for the front proxy but is not acceptable. */
static int by_front_proxy(agg_authn_t *a, agg_req_t *req, const unsigned char *const *der,
                          const size_t *len, size_t n, authz_user_t *u, err_t *err)
{
    if (!a->rh_ca)
        return 0;
    crypto_identity_t id = {0};
    err_t verr;
    err_clear(&verr);
    if (crypto_verify_client(a->rh_ca, der, len, n, &id, &verr)) {
        /* Not the front proxy's: the x509 authenticator may still take it. */
        err_set(err, ERR_UNAUTHORIZED, "verifying certificate failed: %s", verr.message);
        return -1;
    }
    int allowed = a->allowed.n == 0 || in_names(&a->allowed, id.cn ? id.cn : "");
    if (!allowed) {
        err_set(err, ERR_UNAUTHORIZED, "x509: subject with cn=%s is not in the allowed list",
                id.cn ? id.cn : "");
        crypto_identity_free(&id);
        return -1;
    }
    crypto_identity_free(&id);
    hdr_scan_t s = {a, u, 0};
    agg_req_headers(req, on_header, &s);
    if (!s.have_user) {
        authz_user_reset(u);
        return 0;
    }
    return 1;
}

/* 1: authenticated by the client CA; 0: no client CA; <0: bad cert. */
static int by_x509(agg_authn_t *a, const unsigned char *const *der, const size_t *len,
                   size_t n, authz_user_t *u, err_t *err)
{
    if (!a->client_ca)
        return 0;
    crypto_identity_t id = {0};
    err_t verr;
    err_clear(&verr);
    if (crypto_verify_client(a->client_ca, der, len, n, &id, &verr)) {
        err_set(err, ERR_UNAUTHORIZED, "%s", verr.message);
        return -1;
    }
    snprintf(u->name, sizeof u->name, "%s", id.cn ? id.cn : "");
    for (size_t i = 0; i < id.norgs; i++)
        authz_user_add_group(u, id.orgs[i]);
    crypto_identity_free(&id);
    return u->name[0] ? 1 : -1;
}

/* Constant-time comparison, so a token cannot be guessed byte by byte. */
static int same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static int by_token(agg_authn_t *a, const char *auth, authz_user_t *u, err_t *err)
{
    if (strncasecmp(auth, "Bearer ", 7))
        return err_set(err, ERR_UNAUTHORIZED, "Unauthorized");
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    if (!*tok)
        return err_set(err, ERR_UNAUTHORIZED, "Unauthorized");
    for (size_t i = 0; i < a->ntokens; i++) {
        if (same(a->tokens[i].token, tok)) {
            authz_user_copy(u, &a->tokens[i].user);
            return 0;
        }
    }
    if (a->review) {
        err_t rerr;
        err_clear(&rerr);
        if (a->review(a->review_arg, tok, u, &rerr) == 0) {
            authz_user_add_group(u, "system:authenticated");
            return 0;
        }
    }
    return err_set(err, ERR_UNAUTHORIZED, "Unauthorized");
}

int agg_authenticate(agg_authn_t *a, agg_req_t *req, authz_user_t *u, err_t *err)
{
    authz_user_reset(u);
    const unsigned char *const *der = NULL;
    const size_t *len = NULL;
    size_t n = agg_req_peer_certs(req, &der, &len);
    int rc = 0;
    pthread_rwlock_rdlock(&a->lock);
    if (n) {
        /* A certificate that verifies against neither CA is a bad
         * credential (401), as in kube's union of x509 authenticators. */
        rc = by_front_proxy(a, req, der, len, n, u, err);
        if (rc <= 0) {
            err_t xerr;
            err_clear(&xerr);
            int x = by_x509(a, der, len, n, u, &xerr);
            if (x > 0) {
                err_clear(err);
                rc = 1;
            } else if (x < 0 && rc == 0) {
                *err = xerr;
                rc = -1;
            }
        }
    }
    pthread_rwlock_unlock(&a->lock);
    if (rc > 0) {
        authz_user_add_group(u, "system:authenticated");
        return 0;
    }
    const char *auth = agg_req_header(req, "Authorization");
    if (auth && *auth) {
        err_clear(err);
        return by_token(a, auth, u, err);
    }
    if (rc < 0)
        return ERR_UNAUTHORIZED;
    authz_user_reset(u);
    snprintf(u->name, sizeof u->name, "system:anonymous");
    authz_user_add_group(u, "system:unauthenticated");
    return 0;
}
