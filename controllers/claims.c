/*
 * The Workspace and NodeGroup controllers: what each claims, and where
 * two claim the same thing.
 *
 * A namespace of a cluster may be claimed by several Workspaces and a
 * node by several NodeGroups: the authorizer walks every claimant (each
 * claim passed the claim-authority check on write). The controllers make
 * the overlap visible: condition Conflict True (reason ClaimedTwice) on
 * every claimant, naming the others and what they share; False
 * (NoConflict) otherwise. Status also counts the claims (Workspace:
 * namespaceCount, clusterCount; NodeGroup: nodeCount).
 *
 * A claim's cluster "" is this server's own (--cluster-name). A change of
 * one claimant queues the others that shared a claim with it, before or
 * after the change, so a conflict clears on both sides.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "conditions.h"
#include "controllers.h"

#define SCOPE_GROUP "scope.theriseunion.io"

/* One claim: "<cluster>/<name>". */
typedef struct claims {
    size_t n;
    char **v;
} claims_t;

static void claims_free(claims_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        mem_free(c->v[i]);
    mem_free(c->v);
    c->v = NULL;
    c->n = 0;
}

static int claims_add(claims_t *c, const char *cluster, const char *name)
{
    if (!name || !*name)
        return 0;
    size_t len = strlen(cluster) + strlen(name) + 2;
    char *s = mem_alloc(len);
    char **nv = s ? mem_realloc(c->v, (c->n + 1) * sizeof *nv) : NULL;
    if (!nv) {
        mem_free(s);
        return ERR_NOMEM;
    }
    snprintf(s, len, "%s/%s", cluster, name);
    c->v = nv;
    c->v[c->n++] = s;
    return 0;
}

static const char *str_or(const json_t *j, const char *dflt)
{
    const char *s = json_string_value(j);
    return s && *s ? s : dflt;
}

/* What obj claims, by kind: a Workspace its namespaces, a NodeGroup its
 * nodes, each with its cluster. */
static int claims_of(const ctrl_t *c, const json_t *obj, claims_t *out)
{
    const char *home = ctrl_env(c)->cluster ? ctrl_env(c)->cluster : "host";
    const json_t *spec = json_object_get(obj, "spec");
    int ws = !strcmp(ctrl_kind(c)->resource, "workspaces");
    size_t i;
    const json_t *v;
    int rc = 0;
    if (ws) {
        json_array_foreach(json_object_get(spec, "namespaces"), i, v) {
            if (!rc)
                rc = claims_add(out, str_or(json_object_get(v, "cluster"), home),
                                json_string_value(json_object_get(v, "name")));
        }
    } else {
        const char *cluster = str_or(json_object_get(spec, "cluster"), home);
        json_array_foreach(json_object_get(spec, "nodes"), i, v) {
            if (!rc)
                rc = claims_add(out, cluster, json_string_value(v));
        }
    }
    if (rc)
        claims_free(out);
    return rc;
}

static int claims_has(const claims_t *c, const char *s)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i], s))
            return 1;
    return 0;
}

static const char *name_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

static int list_all(ctrl_t *c, json_t **list, err_t *err)
{
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    return reg_list(ctrl_env(c)->reg, ctrl_kind(c), NULL, &lo, list, err);
}

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    (void)ns;
    json_t *obj = NULL, *list = NULL, *status = NULL;
    claims_t mine = {0, NULL};
    sbuf_t msg = SBUF_INIT;
    int rc = reg_get(ctrl_env(c)->reg, ctrl_kind(c), NULL, name, &obj, err);
    if (!rc)
        rc = list_all(c, &list, err);
    if (!rc && claims_of(c, obj, &mine))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    int ws = !strcmp(ctrl_kind(c)->resource, "workspaces");
    const char *what = ws ? "namespace" : "node";
    size_t i;
    const json_t *other;
    json_array_foreach(json_object_get(list, "items"), i, other) {
        const char *oname = name_of(other);
        if (rc || !oname || !strcmp(oname, name))
            continue;
        claims_t theirs = {0, NULL};
        if (claims_of(c, other, &theirs)) {
            rc = err_set(err, ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < mine.n; k++) {
            if (!claims_has(&theirs, mine.v[k]))
                continue;
            if (msg.len)
                sbuf_puts(&msg, "; ");
            sbuf_puts(&msg, what);
            sbuf_putc(&msg, ' ');
            sbuf_puts(&msg, mine.v[k]);
            sbuf_puts(&msg, " is also claimed by ");
            sbuf_puts(&msg, ctrl_kind(c)->kind);
            sbuf_putc(&msg, ' ');
            sbuf_puts(&msg, oname);
        }
        claims_free(&theirs);
    }
    if (!rc && msg.oom)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (!rc) {
        const json_t *spec = json_object_get(obj, "spec");
        const json_t *old = json_object_get(obj, "status");
        int64_t gen =
            json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
        status = ws ? json_pack("{s:I, s:I}", "namespaceCount",
                                (json_int_t)json_array_size(json_object_get(spec, "namespaces")),
                                "clusterCount",
                                (json_int_t)json_array_size(json_object_get(spec, "clusters")))
                    : json_pack("{s:I}", "nodeCount",
                                (json_int_t)json_array_size(json_object_get(spec, "nodes")));
        json_t *conds = json_deep_copy(json_object_get(old, "conditions"));
        if (!status || (conds && json_object_set_new(status, "conditions", conds)) ||
            cond_set(status, "Conflict", msg.len ? "True" : "False",
                     msg.len ? "ClaimedTwice" : "NoConflict",
                     msg.len ? msg.p : (ws ? "no namespace here is claimed by another Workspace"
                                           : "no node here is in another NodeGroup"),
                     gen, time(NULL)))
            rc = err_set(err, ERR_NOMEM, "out of memory");
    }
    if (!rc)
        rc = ctrl_write_status(c, obj, status, NULL, err);
    sbuf_free(&msg);
    claims_free(&mine);
    json_decref(status);
    json_decref(list);
    json_decref(obj);
    return rc;
}

/* A claimant changed: the others that share a claim with its old or new
 * version are looked at again (it itself is queued by its own event). */
static void map_claimant(ctrl_t *c, const json_t *obj, const json_t *old)
{
    claims_t now = {0, NULL}, before = {0, NULL};
    json_t *list = NULL;
    err_t err;
    err_clear(&err);
    const char *self = name_of(obj ? obj : old);
    if ((obj && claims_of(c, obj, &now)) || (old && claims_of(c, old, &before)) ||
        list_all(c, &list, &err) || !self) {
        claims_free(&now);
        claims_free(&before);
        json_decref(list);
        return;                  /* the next resync looks at every one */
    }
    size_t i;
    const json_t *other;
    json_array_foreach(json_object_get(list, "items"), i, other) {
        const char *oname = name_of(other);
        claims_t theirs = {0, NULL};
        if (!oname || !strcmp(oname, self) || claims_of(c, other, &theirs))
            continue;
        int shared = 0;
        for (size_t k = 0; k < theirs.n && !shared; k++)
            shared = claims_has(&now, theirs.v[k]) || claims_has(&before, theirs.v[k]);
        if (shared)
            ctrl_enqueue(c, NULL, oname);
        claims_free(&theirs);
    }
    claims_free(&now);
    claims_free(&before);
    json_decref(list);
}

static const ctrl_watch_t workspace_watches[] = {
    {SCOPE_GROUP, "workspaces", map_claimant},
    {NULL, NULL, NULL},
};

static const ctrl_watch_t nodegroup_watches[] = {
    {SCOPE_GROUP, "nodegroups", map_claimant},
    {NULL, NULL, NULL},
};

const ctrl_def_t ctrl_workspace = {
    .name = "workspace",
    .group = SCOPE_GROUP, .resource = "workspaces",
    .watches = workspace_watches,
    .reconcile = reconcile,
};

const ctrl_def_t ctrl_nodegroup = {
    .name = "nodegroup",
    .group = SCOPE_GROUP, .resource = "nodegroups",
    .watches = nodegroup_watches,
    .reconcile = reconcile,
};
