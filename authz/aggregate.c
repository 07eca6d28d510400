/*
 * Role aggregation: what an IAMRole grants, from its own rules and those
 * of the RoleTemplates it names or selects (the rule is stated at
 * authz__aggregate in authz_internal.h). The index aggregates every role
 * with it; authz_role_aggregation hands the same computation to the
 * IAMRole controller, which writes it into the role's status.
 */
#include <stdlib.h>
#include <string.h>

#include "../apimachinery/selector.h"
#include "../lib/mem.h"
#include "authz_internal.h"

void authz__agg_free(authz__agg_t *g)
{
    authz__rules_free(&g->rules);
    authz__rules_free(&g->deny);
    authz__strs_free(&g->ui);
    authz__strs_free(&g->missing);
    authz__strs_free(&g->excluded);
}

static int usable(const authz__template_t *t, int scope)
{
    return !t->scopes || (scope >= 0 && (t->scopes & (1u << scope)));
}

static int add_name(authz__strs_t *s, const char *name)
{
    char *v[1] = {(char *)name};
    authz__strs_t one = {1, v};
    return authz__strs_append_unique(s, &one);
}

/* Adds what t gives a role at scope to g. */
static int add_template(authz__agg_t *g, const authz__template_t *t, int scope)
{
    if (authz__rules_append_unique(&g->deny, &t->deny))
        return ERR_NOMEM;
    if (!usable(t, scope))
        return add_name(&g->excluded, t->name);
    if (authz__rules_append_unique(&g->rules, &t->rules) ||
        authz__strs_append_unique(&g->ui, &t->ui))
        return ERR_NOMEM;
    return 0;
}

static int by_name(const void *key, const void *elem)
{
    return strcmp(key, (*(const authz__template_t *const *)elem)->name);
}

static const authz__template_t *find(const authz__template_t *const *ts, size_t n,
                                     const char *name)
{
    const authz__template_t *const *t = n ? bsearch(name, ts, n, sizeof *ts, by_name) : NULL;
    return t ? *t : NULL;
}

int authz__aggregate(const authz__role_t *r, const authz__template_t *const *ts, size_t n,
                     authz__agg_t *g)
{
    int rc = 0;
    if (authz__rules_append_unique(&g->rules, &r->own) ||
        authz__rules_append_unique(&g->deny, &r->own_deny) ||
        authz__strs_append_unique(&g->ui, &r->own_ui))
        rc = ERR_NOMEM;
    for (size_t i = 0; i < r->refs.n && !rc; i++) {
        const authz__template_t *t = find(ts, n, r->refs.v[i]);
        rc = t ? add_template(g, t, r->scope) : add_name(&g->missing, r->refs.v[i]);
    }
    /* The templateSelector as kube's LabelSelector reads it; one that is
     * not valid selects nothing, as validation refuses it on write. */
    sel_t *sel = NULL;
    if (!rc && r->selector) {
        err_t e;
        err_clear(&e);
        if (sel_from_label_selector(r->selector, &sel, &e) == ERR_NOMEM)
            rc = ERR_NOMEM;
    }
    for (size_t i = 0; sel && i < n && !rc; i++) {
        int named = 0;
        for (size_t j = 0; j < r->refs.n && !named; j++)
            named = !strcmp(r->refs.v[j], ts[i]->name);
        if (!named && sel_matches_labels(sel, ts[i]->labels))
            rc = add_template(g, ts[i], r->scope);
    }
    sel_free(sel);
    if (rc)
        authz__agg_free(g);
    return rc;
}

static int cmp_template(const void *x, const void *y)
{
    return strcmp((*(const authz__template_t *const *)x)->name,
                  (*(const authz__template_t *const *)y)->name);
}

/* ---- the controller's entry point ------------------------------------------- */

static json_t *strs_json(const authz__strs_t *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n; i++)
        if (json_array_append_new(a, json_string(s->v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *rules_json(const authz__rules_t *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++)
        if (json_array_append_new(a, authz__rule_json(&r->v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

void authz_role_agg_free(authz_role_agg_t *g)
{
    json_decref(g->rules);
    json_decref(g->deny);
    json_decref(g->ui);
    json_decref(g->missing);
    json_decref(g->excluded);
    memset(g, 0, sizeof *g);
}

static const char *name_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

int authz_role_aggregation(const json_t *role, const json_t *const *templates, size_t n,
                           authz_role_agg_t *out, err_t *err)
{
    memset(out, 0, sizeof *out);
    authz__template_t **ts = n ? mem_calloc(n, sizeof *ts) : NULL;
    authz__role_t *r = authz__role_from_spec(name_of(role), json_object_get(role, "spec"));
    authz__agg_t g;
    memset(&g, 0, sizeof g);
    int rc = (n && !ts) || !r ? ERR_NOMEM : 0;
    size_t have = 0;
    for (; !rc && have < n; have++) {
        const json_t *t = templates[have];
        ts[have] = authz__template_from(name_of(t),
                                        json_object_get(json_object_get(t, "metadata"), "labels"),
                                        json_object_get(t, "spec"));
        if (!ts[have])
            rc = ERR_NOMEM;
    }
    if (!rc) {
        if (n)
            qsort(ts, n, sizeof *ts, cmp_template);
        rc = authz__aggregate(r, (const authz__template_t *const *)ts, n, &g);
    }
    if (!rc) {
        out->rules = rules_json(&g.rules);
        out->deny = rules_json(&g.deny);
        out->ui = strs_json(&g.ui);
        out->missing = strs_json(&g.missing);
        out->excluded = strs_json(&g.excluded);
        if (!out->rules || !out->deny || !out->ui || !out->missing || !out->excluded) {
            authz_role_agg_free(out);
            rc = ERR_NOMEM;
        }
    }
    authz__agg_free(&g);
    for (size_t i = 0; i < have; i++)
        authz__template_free(ts[i]);
    mem_free(ts);
    authz__role_free(r);
    if (rc)
        err_set(err, rc, "out of memory aggregating an IAMRole");
    return rc;
}

int authz__templates_sorted(const authz_t *a, const authz__template_t ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!a->templates.n)
        return 0;
    const authz__template_t **ts = mem_calloc(a->templates.n, sizeof *ts);
    if (!ts)
        return ERR_NOMEM;
    AUTHZ_MAP_EACH(&a->templates, i) {
        /* A template being deleted stands in as one with no name. */
        if (((const authz__template_t *)a->templates.e[i].val)->name[0])
            ts[(*n)++] = a->templates.e[i].val;
    }
    qsort(ts, *n, sizeof *ts, cmp_template);
    *out = ts;
    return 0;
}
