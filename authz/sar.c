/*
 * The webhook's hot path: a SubjectAccessReview read from its JSON text in
 * place (lib/json/jtok) and answered as text, with no jansson tree on the
 * way in or out. Any review the tokenizer declines (malformed, or too
 * large or deep for it) takes the general path through jansson, which
 * also words the error, so both paths answer every text alike.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/json/jenc.h"
#include "../lib/json/jtok.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "authz_internal.h"

#define SAR_MAX_TOKENS 512

/* Decoded strings of one review, bump-allocated from one buffer that is
 * as large as the text (a decoded string never outgrows its text). */
typedef struct sar_text {
    const char *text;
    const jtok_t *t;
    char *arena;
    size_t used, cap;
} sar_text_t;

/* Token tok decoded, if a string; NULL otherwise (or tok < 0). */
static const char *str_item(sar_text_t *s, int tok)
{
    if (tok < 0 || s->t[tok].type != JTOK_STRING)
        return NULL;
    char *out = s->arena + s->used;
    int n = jtok_str(s->text, &s->t[tok], out, s->cap - s->used);
    if (n < 0)
        return NULL;
    s->used += (size_t)n + 1;
    return out;
}

/* The string at member key of object obj; NULL when absent or not a string. */
static const char *str_of(sar_text_t *s, int obj, const char *key)
{
    return str_item(s, jtok_get(s->text, s->t, obj, key));
}

static int is_object(const sar_text_t *s, int tok) { return tok >= 0 && s->t[tok].type == JTOK_OBJECT; }

/* spec_attrs (eval.c) over tokens: the same fields, the same checks. */
static int spec_attrs_text(sar_text_t *s, int spec, const char *groups_key, authz_user_t *u,
                           authz_attrs_t *at, err_t *err)
{
    authz_user_reset(u);
    memset(at, 0, sizeof *at);
    if (!is_object(s, spec))
        return err_set(err, ERR_BAD_REQUEST, "spec is required");
    const char *user = str_of(s, spec, "user");
    AUTHZ__JOIN(u->name, sizeof u->name, user ? user : "");
    const char *uid = str_of(s, spec, "uid");
    AUTHZ__JOIN(u->uid, sizeof u->uid, uid ? uid : "");
    int groups = jtok_get(s->text, s->t, spec, groups_key);
    if (groups >= 0 && s->t[groups].type == JTOK_ARRAY) {
        int g = groups + 1;
        for (uint32_t i = 0; i < s->t[groups].size; i++, g = (int)s->t[g].next) {
            const char *name = str_item(s, g);
            if (name)
                authz_user_add_group(u, name);
        }
    }
    int ra = jtok_get(s->text, s->t, spec, "resourceAttributes");
    int na = jtok_get(s->text, s->t, spec, "nonResourceAttributes");
    if (is_object(s, ra) == is_object(s, na))
        return err_set(err, ERR_BAD_REQUEST,
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified");
    if (!*u->name && !u->ngroups)
        return err_set(err, ERR_BAD_REQUEST, "at least one of user or group must be specified");
    if (is_object(s, na)) {
        at->verb = str_of(s, na, "verb");
        at->path = str_of(s, na, "path");
        if (!at->verb)
            at->verb = "";
        return 0;
    }
    at->resource_request = 1;
    at->verb = str_of(s, ra, "verb");
    at->namespace_ = str_of(s, ra, "namespace");
    at->api_group = str_of(s, ra, "group");
    at->api_version = str_of(s, ra, "version");
    at->resource = str_of(s, ra, "resource");
    at->subresource = str_of(s, ra, "subresource");
    at->name = str_of(s, ra, "name");
    if (!at->verb)
        at->verb = "";
    int sel = jtok_get(s->text, s->t, ra, "labelSelector");
    int reqs = is_object(s, sel) ? jtok_get(s->text, s->t, sel, "requirements") : -1;
    if (reqs >= 0 && s->t[reqs].type == JTOK_ARRAY) {
        int r = reqs + 1;
        for (uint32_t i = 0; i < s->t[reqs].size; i++, r = (int)s->t[r].next) {
            if (!is_object(s, r))
                continue;
            const char *key = str_of(s, r, "key");
            const char *op = str_of(s, r, "operator");
            int vals = jtok_get(s->text, s->t, r, "values");
            if (!key || !op || strcmp(op, "In") || vals < 0 || s->t[vals].type != JTOK_ARRAY ||
                s->t[vals].size != 1)
                continue;
            const char *v = str_item(s, vals + 1);
            authz_attrs_scope_label(at, key, v);
        }
    }
    return 0;
}

/* The general path: jansson in and out. */
static int review_tree(authz_t *a, const char *body, size_t len, const char *cluster,
                       char **out, size_t *out_len, err_t *err)
{
    json_error_t je;
    json_t *sar = json_loadb(body, len, 0, &je), *res = NULL;
    int rc = sar ? authz_subject_access_review(a, sar, cluster, &res, err)
                 : err_set(err, ERR_BAD_REQUEST, "the body is not JSON: %s", je.text);
    json_decref(sar);
    if (rc)
        return rc;
    *out = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    if (!*out)
        return err_set(err, ERR_NOMEM, NULL);
    *out_len = strlen(*out);
    return 0;
}

int authz_subject_access_review_text(authz_t *a, const char *body, size_t len,
                                     const char *cluster, char **out, size_t *out_len,
                                     err_t *err)
{
    jtok_t toks[SAR_MAX_TOKENS];
    int n = jtok_parse(body, len, toks, SAR_MAX_TOKENS);
    if (n <= 0 || toks[0].type != JTOK_OBJECT)
        return review_tree(a, body, len, cluster, out, out_len, err);

    sar_text_t s = {.text = body, .t = toks, .cap = len + 1};
    authz_user_t u;
    authz_attrs_t at;
    sbuf_t b = {0};
    int rc = 0;
    s.arena = mem_alloc(s.cap);
    if (!s.arena)
        return err_set(err, ERR_NOMEM, NULL);

    const char *av = str_of(&s, 0, "apiVersion");
    const char *kind = str_of(&s, 0, "kind");
    int v1beta1 = av && !strcmp(av, "authorization.k8s.io/v1beta1");
    if (!av || (!v1beta1 && strcmp(av, "authorization.k8s.io/v1"))) {
        rc = err_set(err, ERR_BAD_REQUEST, "apiVersion must be authorization.k8s.io/v1 or "
                     "authorization.k8s.io/v1beta1, not %s", av ? av : "(none)");
        goto out;
    }
    if (!kind || strcmp(kind, "SubjectAccessReview")) {
        rc = err_set(err, ERR_BAD_REQUEST, "kind must be SubjectAccessReview");
        goto out;
    }
    rc = spec_attrs_text(&s, jtok_get(body, toks, 0, "spec"), v1beta1 ? "group" : "groups", &u,
                         &at, err);
    if (rc)
        goto out;
    at.cluster = cluster;
    char reason[1024];
    int eval_err = 0;
    authz_decision_t d = authz__review_decide(a, &u, &at, reason, sizeof reason, &eval_err);

    /* The shape authz_subject_access_review builds: kube-apiserver reads
     * only status. */
    sbuf_grow(&b, 160 + strlen(reason));
    sbuf_puts(&b, "{\"apiVersion\":");
    jenc_append_str(&b, av, strlen(av));
    sbuf_puts(&b, ",\"kind\":\"SubjectAccessReview\",\"metadata\":{},\"status\":{\"allowed\":");
    sbuf_puts(&b, d == AUTHZ_ALLOW ? "true" : "false");
    sbuf_puts(&b, ",\"reason\":");
    /* The reason quotes names from the review and the URL; a cluster name
     * that is not UTF-8 cannot be written back. */
    if (jenc_append_str(&b, reason, strlen(reason)) == ERR_INVALID) {
        rc = err_set(err, ERR_BAD_REQUEST, "the review names something that is not valid UTF-8");
        goto out;
    }
    if (d == AUTHZ_DENY)
        sbuf_puts(&b, ",\"denied\":true");
    if (eval_err) {
        /* No opinion because of the error, as kube's authorizers report one. */
        const char *e = err_default_message(eval_err);
        sbuf_puts(&b, ",\"evaluationError\":");
        jenc_append_str(&b, e, strlen(e));
    }
    sbuf_puts(&b, "}}");
    if (b.oom) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto out;
    }
    *out = b.p;
    *out_len = b.len;
    b.p = NULL;
out:
    sbuf_free(&b);
    mem_free(s.arena);
    return rc;
}
