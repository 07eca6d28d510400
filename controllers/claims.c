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
 * A claim's cluster "" is this server's own (--cluster-name).
 *
 * Who claims what is kept in an index (claim -> claimants, claimant ->
 * claims), built from a list of the kind before the workers start and
 * brought up to date by each reconcile from the object as stored, so a
 * reconcile costs what its own claims share, not a walk over every
 * claimant. A reconcile whose object's claims changed (or that found it
 * deleted) queues the claimants it shared a claim with, before or after
 * the change, so a conflict appears and clears on both sides; one whose
 * claims did not change queues nothing, so claimants never queue each
 * other back and forth.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "conditions.h"
#include "controllers.h"

#define SCOPE_GROUP "scope.theriseunion.io"

typedef struct index {
    pthread_mutex_t mu;
    json_t *by_owner;            /* name -> ["<cluster>/<claim>", ...] */
    json_t *by_claim;            /* "<cluster>/<claim>" -> {name: true, ...} */
} index_t;

static const char *str_or(const json_t *j, const char *dflt)
{
    const char *s = json_string_value(j);
    return s && *s ? s : dflt;
}

static int claim_add(json_t *arr, const char *cluster, const char *name)
{
    if (!name || !*name)
        return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", cluster, name);
    return json_array_append_new(arr, json_string(buf)) ? ERR_NOMEM : 0;
}

static int is_workspaces(const ctrl_t *c) { return !strcmp(ctrl_kind(c)->resource, "workspaces"); }

/* What obj claims, as a new array of "<cluster>/<name>": a Workspace its
 * namespaces, a NodeGroup its nodes, each with its cluster. NULL when out
 * of memory. */
static json_t *claims_of(const ctrl_t *c, const json_t *obj)
{
    const char *home = ctrl_env(c)->cluster ? ctrl_env(c)->cluster : "host";
    const json_t *spec = json_object_get(obj, "spec");
    json_t *out = json_array();
    size_t i;
    const json_t *v;
    int rc = out ? 0 : ERR_NOMEM;
    if (is_workspaces(c)) {
        json_array_foreach(json_object_get(spec, "namespaces"), i, v) {
            if (!rc)
                rc = claim_add(out, str_or(json_object_get(v, "cluster"), home),
                               json_string_value(json_object_get(v, "name")));
        }
    } else {
        const char *cluster = str_or(json_object_get(spec, "cluster"), home);
        json_array_foreach(json_object_get(spec, "nodes"), i, v) {
            if (!rc)
                rc = claim_add(out, cluster, json_string_value(v));
        }
    }
    if (rc) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static const char *name_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

/* ---- the index (caller holds mu) ------------------------------------------------ */

static void index_drop(index_t *x, const char *owner)
{
    size_t i;
    const json_t *cl;
    json_array_foreach(json_object_get(x->by_owner, owner), i, cl) {
        json_t *set = json_object_get(x->by_claim, json_string_value(cl));
        json_object_del(set, owner);
        if (!json_object_size(set))
            json_object_del(x->by_claim, json_string_value(cl));
    }
    json_object_del(x->by_owner, owner);
}

/* Files owner's claims (taking the reference), replacing what was filed.
 * 0 or ERR_NOMEM (owner then filed with what fit: its reconcile is
 * retried and files it whole). */
static int index_set(index_t *x, const char *owner, json_t *claims)
{
    index_drop(x, owner);
    if (json_object_set_new(x->by_owner, owner, claims))
        return ERR_NOMEM;
    size_t i;
    const json_t *cl;
    json_array_foreach(claims, i, cl) {
        const char *k = json_string_value(cl);
        json_t *set = json_object_get(x->by_claim, k);
        if (!set && (!(set = json_object()) || json_object_set_new(x->by_claim, k, set)))
            return ERR_NOMEM;
        if (json_object_set_new(set, owner, json_true()))
            return ERR_NOMEM;
    }
    return 0;
}

/* The other claimants of claims into names (a set object). */
static int co_claimants(const index_t *x, const json_t *claims, const char *self, json_t *names)
{
    size_t i;
    const json_t *cl;
    json_array_foreach(claims, i, cl) {
        const char *who;
        json_t *t;
        json_object_foreach(json_object_get(x->by_claim, json_string_value(cl)), who, t) {
            if (strcmp(who, self) && json_object_set_new(names, who, json_true()))
                return ERR_NOMEM;
        }
    }
    return 0;
}

static int list_all(ctrl_t *c, json_t **list, err_t *err)
{
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    return reg_list(ctrl_env(c)->reg, ctrl_kind(c), NULL, &lo, list, err);
}

static void index_free(void *p)
{
    index_t *x = p;
    if (!x)
        return;
    json_decref(x->by_owner);
    json_decref(x->by_claim);
    pthread_mutex_destroy(&x->mu);
    mem_free(x);
}

/* Before the workers start: every claimant as stored, so the first
 * reconciles see every conflict that is there (and a restart writes
 * nothing for what did not change). */
static int index_init(ctrl_t *c, void **state, err_t *err)
{
    index_t *x = mem_calloc(1, sizeof *x);
    if (!x)
        return err_set(err, ERR_NOMEM, "out of memory");
    pthread_mutex_init(&x->mu, NULL);
    x->by_owner = json_object();
    x->by_claim = json_object();
    json_t *list = NULL;
    int rc = x->by_owner && x->by_claim ? list_all(c, &list, err)
                                        : err_set(err, ERR_NOMEM, "out of memory");
    size_t i;
    const json_t *obj;
    json_array_foreach(json_object_get(list, "items"), i, obj) {
        const char *name = name_of(obj);
        json_t *claims = rc || !name ? NULL : claims_of(c, obj);
        if (!rc && name && (!claims || index_set(x, name, claims)))
            rc = err_set(err, ERR_NOMEM, "out of memory");
    }
    json_decref(list);
    if (rc) {
        index_free(x);
        return rc;
    }
    *state = x;
    return 0;
}

/* ---- reconcile ---------------------------------------------------------------------- */

/* Sorted names of a set object, joined into the message for one claim. */
static void say_others(sbuf_t *msg, const ctrl_t *c, const char *claim, const json_t *set,
                       const char *self)
{
    const char *names[64];
    size_t n = 0;
    const char *who;
    json_t *t;
    json_object_foreach((json_t *)set, who, t) {
        if (strcmp(who, self) && n < 64)
            names[n++] = who;
    }
    for (size_t i = 1; i < n; i++)          /* few: insertion sort */
        for (size_t j = i; j && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *tmp = names[j];
            names[j] = names[j - 1];
            names[j - 1] = tmp;
        }
    for (size_t i = 0; i < n; i++) {
        if (msg->len)
            sbuf_puts(msg, "; ");
        sbuf_puts(msg, is_workspaces(c) ? "namespace " : "node ");
        sbuf_puts(msg, claim);
        sbuf_puts(msg, " is also claimed by ");
        sbuf_puts(msg, ctrl_kind(c)->kind);
        sbuf_putc(msg, ' ');
        sbuf_puts(msg, names[i]);
    }
}

static void enqueue_all(ctrl_t *c, const json_t *names)
{
    const char *who;
    json_t *t;
    json_object_foreach((json_t *)names, who, t) {
        ctrl_enqueue(c, NULL, who);
    }
}

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    (void)ns;
    index_t *x = ctrl_state(c);
    json_t *obj = NULL, *claims = NULL, *status = NULL, *touched = json_object();
    sbuf_t msg = SBUF_INIT;
    if (!touched)
        return err_set(err, ERR_NOMEM, "out of memory");
    int rc = reg_get(ctrl_env(c)->reg, ctrl_kind(c), NULL, name, &obj, err);
    if (rc == ERR_NOT_FOUND) {
        /* Gone: its co-claimants may have no conflict left. */
        pthread_mutex_lock(&x->mu);
        int oom = co_claimants(x, json_object_get(x->by_owner, name), name, touched);
        index_drop(x, name);
        pthread_mutex_unlock(&x->mu);
        enqueue_all(c, touched);
        json_decref(touched);
        return oom ? err_set(err, ERR_NOMEM, "out of memory") : ERR_NOT_FOUND;
    }
    if (!rc && !(claims = claims_of(c, obj)))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    if (!rc) {
        pthread_mutex_lock(&x->mu);
        const json_t *old = json_object_get(x->by_owner, name);
        int changed = !json_equal(old, claims);
        if (changed && (co_claimants(x, old, name, touched) ||
                        index_set(x, name, json_incref(claims)) ||
                        co_claimants(x, claims, name, touched)))
            rc = err_set(err, ERR_NOMEM, "out of memory");
        size_t i;
        const json_t *cl;
        json_array_foreach(claims, i, cl) {
            const json_t *set = json_object_get(x->by_claim, json_string_value(cl));
            if (json_object_size(set) > 1)
                say_others(&msg, c, json_string_value(cl), set, name);
        }
        pthread_mutex_unlock(&x->mu);
        enqueue_all(c, touched);
    }
    if (!rc && msg.oom)
        rc = err_set(err, ERR_NOMEM, "out of memory");
    int ws = is_workspaces(c);
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
    json_decref(claims);
    json_decref(touched);
    json_decref(status);
    json_decref(obj);
    return rc;
}

const ctrl_def_t ctrl_workspace = {
    .name = "workspace",
    .group = SCOPE_GROUP, .resource = "workspaces",
    .init = index_init, .fini = index_free,
    .reconcile = reconcile,
};

const ctrl_def_t ctrl_nodegroup = {
    .name = "nodegroup",
    .group = SCOPE_GROUP, .resource = "nodegroups",
    .init = index_init, .fini = index_free,
    .reconcile = reconcile,
};
