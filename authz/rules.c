/*
 * Rule matching, exactly as Kubernetes RBAC matches a PolicyRule against a
 * request:
 *   verbs      exact or "*"
 *   apiGroups  exact or "*" ("" is the core group)
 *   resources  exact, "*", "res/sub" for a subresource request, "*\/sub"
 *              for that subresource of any resource; "pods" does not
 *              cover "pods/log"
 *   resourceNames  empty: any; else the request's name must be listed (so
 *              a rule with names never allows create, nor a list without a
 *              metadata.name field selector, whose name is "")
 *   nonResourceURLs  exact, "*", or a trailing "*" as a prefix match
 * A resource rule never matches a non-resource request and the reverse.
 */
#include <string.h>

#include "../lib/mem.h"
#include "authz_internal.h"

void authz__strs_free(authz__strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        mem_free(s->v[i]);
    mem_free(s->v);
    s->v = NULL;
    s->n = 0;
}

int authz__strs_parse(const json_t *arr, authz__strs_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = json_array_size(arr);
    if (!n)
        return 0;
    out->v = mem_calloc(n, sizeof *out->v);
    if (!out->v)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s)
            continue;
        if (!(out->v[out->n] = mem_strdup(s))) {
            authz__strs_free(out);
            return ERR_NOMEM;
        }
        out->n++;
    }
    return 0;
}

int authz__strs_append_unique(authz__strs_t *dst, const authz__strs_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < dst->n && !seen; j++)
            seen = !strcmp(dst->v[j], src->v[i]);
        if (seen)
            continue;
        char **nv = mem_realloc(dst->v, (dst->n + 1) * sizeof *nv);
        if (!nv)
            return ERR_NOMEM;
        dst->v = nv;
        if (!(dst->v[dst->n] = mem_strdup(src->v[i])))
            return ERR_NOMEM;
        dst->n++;
    }
    return 0;
}

static void rule_free(authz__rule_t *r)
{
    authz__strs_free(&r->verbs);
    authz__strs_free(&r->groups);
    authz__strs_free(&r->resources);
    authz__strs_free(&r->names);
    authz__strs_free(&r->urls);
}

void authz__rules_free(authz__rules_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        rule_free(&r->v[i]);
    mem_free(r->v);
    r->v = NULL;
    r->n = 0;
}

static int rule_parse(const json_t *j, authz__rule_t *r)
{
    memset(r, 0, sizeof *r);
    if (authz__strs_parse(json_object_get(j, "verbs"), &r->verbs) ||
        authz__strs_parse(json_object_get(j, "apiGroups"), &r->groups) ||
        authz__strs_parse(json_object_get(j, "resources"), &r->resources) ||
        authz__strs_parse(json_object_get(j, "resourceNames"), &r->names) ||
        authz__strs_parse(json_object_get(j, "nonResourceURLs"), &r->urls)) {
        rule_free(r);
        return ERR_NOMEM;
    }
    return 0;
}

int authz__rules_parse(const json_t *arr, authz__rules_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = json_array_size(arr);
    if (!n)
        return 0;
    out->v = mem_calloc(n, sizeof *out->v);
    if (!out->v)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (rule_parse(json_array_get(arr, i), &out->v[out->n])) {
            authz__rules_free(out);
            return ERR_NOMEM;
        }
        out->n++;
    }
    return 0;
}

static int strs_copy(authz__strs_t *dst, const authz__strs_t *src)
{
    memset(dst, 0, sizeof *dst);
    return authz__strs_append_unique(dst, src);
}

static int strs_equal(const authz__strs_t *x, const authz__strs_t *y)
{
    if (x->n != y->n)
        return 0;
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->v[i], y->v[i]))
            return 0;
    return 1;
}

static int rule_equal(const authz__rule_t *x, const authz__rule_t *y)
{
    return strs_equal(&x->verbs, &y->verbs) && strs_equal(&x->groups, &y->groups) &&
           strs_equal(&x->resources, &y->resources) && strs_equal(&x->names, &y->names) &&
           strs_equal(&x->urls, &y->urls);
}

int authz__rules_append_unique(authz__rules_t *dst, const authz__rules_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const authz__rule_t *s = &src->v[i];
        int seen = 0;
        for (size_t j = 0; j < dst->n && !seen; j++)
            seen = rule_equal(&dst->v[j], s);
        if (seen)
            continue;
        authz__rule_t *nv = mem_realloc(dst->v, (dst->n + 1) * sizeof *nv);
        if (!nv)
            return ERR_NOMEM;
        dst->v = nv;
        authz__rule_t *d = &dst->v[dst->n];
        memset(d, 0, sizeof *d);
        if (strs_copy(&d->verbs, &s->verbs) || strs_copy(&d->groups, &s->groups) ||
            strs_copy(&d->resources, &s->resources) || strs_copy(&d->names, &s->names) ||
            strs_copy(&d->urls, &s->urls)) {
            rule_free(d);
            return ERR_NOMEM;
        }
        dst->n++;
    }
    return 0;
}

/* NULL when out of memory: a list short of an item would be read as a
 * narrower rule than the one held. */
static json_t *strs_json(const authz__strs_t *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n; i++) {
        if (json_array_append_new(a, json_string(s->v[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Sets key to the list s unless it is empty; 0 or ERR_NOMEM. */
static int put_strs(json_t *j, const char *key, const authz__strs_t *s)
{
    if (!s->n)
        return 0;
    json_t *v = strs_json(s);
    return v && !json_object_set_new(j, key, v) ? 0 : ERR_NOMEM;
}

json_t *authz__rule_json(const authz__rule_t *r)
{
    json_t *verbs = strs_json(&r->verbs);
    json_t *j = verbs ? json_pack("{s:o}", "verbs", verbs) : NULL;
    if (j && !put_strs(j, "apiGroups", &r->groups) && !put_strs(j, "resources", &r->resources) &&
        !put_strs(j, "resourceNames", &r->names) && !put_strs(j, "nonResourceURLs", &r->urls))
        return j;
    json_decref(j);
    return NULL;
}

static int has(const authz__strs_t *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], "*") || !strcmp(s->v[i], v))
            return 1;
    return 0;
}

static int resource_matches(const authz__strs_t *s, const char *res, const char *sub)
{
    size_t sublen = sub ? strlen(sub) : 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *r = s->v[i];
        if (!strcmp(r, "*"))
            return 1;
        if (!sublen) {
            if (!strcmp(r, res))
                return 1;
            continue;
        }
        size_t rl = strlen(res);
        /* "res/sub" */
        if (!strncmp(r, res, rl) && r[rl] == '/' && !strcmp(r + rl + 1, sub))
            return 1;
        /* "*\/sub" */
        if (r[0] == '*' && r[1] == '/' && !strcmp(r + 2, sub))
            return 1;
    }
    return 0;
}

static int url_matches(const authz__strs_t *s, const char *path)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *u = s->v[i];
        size_t n = strlen(u);
        if (!strcmp(u, "*") || !strcmp(u, path))
            return 1;
        /* kube trims every trailing "*" (strings.TrimRight): "/a**" is "/a*" */
        if (n && u[n - 1] == '*') {
            while (n && u[n - 1] == '*')
                n--;
            if (!strncmp(u, path, n))
                return 1;
        }
    }
    return 0;
}

int authz__rule_matches(const authz__rule_t *r, const authz_attrs_t *a)
{
    if (!has(&r->verbs, a->verb ? a->verb : ""))
        return 0;
    if (!a->resource_request)
        return url_matches(&r->urls, a->path ? a->path : "");
    if (!has(&r->groups, a->api_group ? a->api_group : ""))
        return 0;
    if (!resource_matches(&r->resources, a->resource ? a->resource : "",
                          a->subresource && *a->subresource ? a->subresource : NULL))
        return 0;
    if (!r->names.n)
        return 1;
    const char *name = a->name ? a->name : "";
    for (size_t i = 0; i < r->names.n; i++)
        if (*name && !strcmp(r->names.v[i], name))
            return 1;
    return 0;
}

int authz__rules_match(const authz__rules_t *r, const authz_attrs_t *a)
{
    for (size_t i = 0; i < r->n; i++)
        if (authz__rule_matches(&r->v[i], a))
            return (int)i;
    return -1;
}
