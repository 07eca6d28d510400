/*
 * The IAMRole controller: writes what a role grants into its status
 * (aggregatedRules, aggregatedDenyRules, aggregatedUIPermissions) by the
 * authorizer's own aggregation (authz_role_aggregation), with conditions
 *   TemplatesResolved  False (TemplatesNotFound) naming the templateRefs
 *                      that name no RoleTemplate;
 *   ScopeCompatible    False (ScopeExcluded) naming the templates whose
 *                      scopes exclude the role's scope (their deny rules
 *                      apply, their rules do not).
 * A RoleTemplate's change queues the roles that name it or whose selector
 * matches its labels before or after the change.
 */
#include <string.h>
#include <time.h>

#include "../apimachinery/selector.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "conditions.h"
#include "ctrl.h"
#include "controllers.h"

#define IAM_GROUP "iam.theriseunion.io"

static const reg_kind_t *templates_kind(void)
{
    return reg_find(IAM_GROUP, REG_VERSION, "roletemplates");
}

/* "a, b, c" from a JSON array of names. */
static void join_names(sbuf_t *b, const json_t *names)
{
    size_t i;
    const json_t *v;
    json_array_foreach(names, i, v) {
        if (i)
            sbuf_puts(b, ", ");
        sbuf_puts(b, json_string_value(v));
    }
}

static int set_conditions(json_t *status, const json_t *role, const authz_role_agg_t *g,
                          int64_t gen)
{
    time_t now = time(NULL);
    sbuf_t b = SBUF_INIT;
    int rc;
    if (!json_array_size(g->missing)) {
        rc = cond_set(status, "TemplatesResolved", "True", "TemplatesFound",
                      "every RoleTemplate in templateRefs exists", gen, now);
    } else {
        sbuf_puts(&b, "RoleTemplates not found: ");
        join_names(&b, g->missing);
        rc = b.oom ? ERR_NOMEM
                   : cond_set(status, "TemplatesResolved", "False", "TemplatesNotFound", b.p,
                              gen, now);
    }
    sbuf_cut(&b, 0);
    if (!rc && !json_array_size(g->excluded)) {
        rc = cond_set(status, "ScopeCompatible", "True", "Compatible",
                      "every RoleTemplate used may be used at the role's scope", gen, now);
    } else if (!rc) {
        const char *scope =
            json_string_value(json_object_get(json_object_get(role, "spec"), "scope"));
        sbuf_puts(&b, "RoleTemplates not usable at scope ");
        sbuf_puts(&b, scope && *scope ? scope : "(none)");
        sbuf_puts(&b, " (their denyRules apply, their rules do not): ");
        join_names(&b, g->excluded);
        rc = b.oom ? ERR_NOMEM
                   : cond_set(status, "ScopeCompatible", "False", "ScopeExcluded", b.p, gen, now);
    }
    sbuf_free(&b);
    return rc;
}

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    (void)ns;
    reg_t *reg = ctrl_env(c)->reg;
    json_t *role = NULL, *list = NULL, *status = NULL;
    authz_role_agg_t g;
    memset(&g, 0, sizeof g);
    int rc = reg_get(reg, ctrl_kind(c), NULL, name, &role, err);
    if (rc)
        return rc;
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    const reg_kind_t *tk = templates_kind();
    rc = tk ? reg_list(reg, tk, NULL, &lo, &list, err)
            : err_set(err, ERR_INTERNAL, "no RoleTemplate kind");
    const json_t *items = json_object_get(list, "items");
    size_t n = json_array_size(items);
    const json_t **ts = NULL;
    if (!rc && n && !(ts = mem_calloc(n, sizeof *ts)))
        rc = err_set(err, ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        ts[i] = json_array_get(items, i);
    if (!rc)
        rc = authz_role_aggregation(role, ts, n, &g, err);
    if (!rc) {
        /* The conditions as they are, so unchanged ones keep their time. */
        const json_t *old = json_object_get(role, "status");
        json_t *conds = json_deep_copy(json_object_get(old, "conditions"));
        int64_t gen = json_integer_value(
            json_object_get(json_object_get(role, "metadata"), "generation"));
        status = json_pack("{s:O, s:O, s:O}", "aggregatedRules", g.rules,
                           "aggregatedDenyRules", g.deny, "aggregatedUIPermissions", g.ui);
        if (!status || (conds && json_object_set_new(status, "conditions", conds)))
            rc = err_set(err, ERR_NOMEM, "out of memory");
        else if (set_conditions(status, role, &g, gen))
            rc = err_set(err, ERR_NOMEM, "out of memory");
    }
    if (!rc)
        rc = ctrl_write_status(c, role, status, NULL, err);
    json_decref(status);
    authz_role_agg_free(&g);
    mem_free(ts);
    json_decref(list);
    json_decref(role);
    return rc;
}

/* Whether role is affected by the template named name when it has labels
 * (has: the template exists in that version at all). */
static int role_uses(const json_t *role, const char *name, int has, const json_t *labels)
{
    const json_t *spec = json_object_get(role, "spec");
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(spec, "templateRefs"), i, v) {
        const char *s = json_string_value(v);
        if (s && !strcmp(s, name))
            return 1;
    }
    const json_t *ls = json_object_get(spec, "templateSelector");
    if (!json_is_object(ls) || !has)
        return 0;
    sel_t *sel = NULL;
    err_t e;
    err_clear(&e);
    int rc = sel_from_label_selector(ls, &sel, &e);
    if (rc == ERR_NOMEM)
        return 1;                /* when unsure, look again */
    int hit = !rc && sel_matches_labels(sel, labels);
    sel_free(sel);
    return hit;
}

static void map_template(ctrl_t *c, const json_t *obj, const json_t *old)
{
    const json_t *any = obj ? obj : old;
    const char *name =
        json_string_value(json_object_get(json_object_get(any, "metadata"), "name"));
    if (!name)
        return;
    const json_t *labels_new = json_object_get(json_object_get(obj, "metadata"), "labels");
    const json_t *labels_old = json_object_get(json_object_get(old, "metadata"), "labels");
    json_t *list = NULL;
    err_t err;
    err_clear(&err);
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    if (reg_list(ctrl_env(c)->reg, ctrl_kind(c), NULL, &lo, &list, &err)) {
        /* Every role then comes back at the next resync. */
        return;
    }
    size_t i;
    const json_t *role;
    json_array_foreach(json_object_get(list, "items"), i, role) {
        if (role_uses(role, name, obj != NULL, labels_new) ||
            role_uses(role, name, old != NULL, labels_old))
            ctrl_enqueue(c, NULL,
                         json_string_value(json_object_get(json_object_get(role, "metadata"), "name")));
    }
    json_decref(list);
}

static const ctrl_watch_t watches[] = {
    {IAM_GROUP, "roletemplates", map_template},
    {NULL, NULL, NULL},
};

const ctrl_def_t ctrl_iamrole = {
    .name = "iamrole",
    .group = IAM_GROUP, .resource = "iamroles",
    .workers = 4,
    .watches = watches,
    .reconcile = reconcile,
};
