#include "authn.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../storage/crypto.h"
#include "../storage/mem.h"

typedef struct token {
    char *token;
    authz_user_t user;
} token_t;

struct agg_authn {
    token_t *tokens;
    size_t ntokens;
};

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

int agg_authn_new(const char *token_file, agg_authn_t **out, err_t *err)
{
    agg_authn_t *a = mem_calloc(1, sizeof *a);
    if (!a)
        return err_set(err, ERR_NOMEM, NULL);
    if (!token_file || !*token_file) {
        *out = a;
        return 0;
    }
    char *data = NULL;
    size_t len = 0;
    int rc = crypto_read_file(token_file, &data, &len, err);
    if (rc) {
        mem_free(a);
        return rc;
    }
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
    mem_free(a);
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

int agg_authenticate(const agg_authn_t *a, agg_req_t *req, authz_user_t *u, err_t *err)
{
    memset(u, 0, sizeof *u);
    const char *auth = agg_req_header(req, "Authorization");
    if (auth && *auth) {
        if (strncasecmp(auth, "Bearer ", 7))
            return err_set(err, ERR_UNAUTHORIZED, "Unauthorized");
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        for (size_t i = 0; i < a->ntokens; i++) {
            if (same(a->tokens[i].token, tok)) {
                *u = a->tokens[i].user;
                return 0;
            }
        }
        return err_set(err, ERR_UNAUTHORIZED, "Unauthorized");
    }
    snprintf(u->name, sizeof u->name, "system:anonymous");
    authz_user_add_group(u, "system:unauthenticated");
    return 0;
}
