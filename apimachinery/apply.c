/*
 * apply: server-side apply and managedFields tracking (see apply.h).
 *
 * How an apply runs, after structured-merge-diff's Updater.Apply and the
 * fieldmanager layers kube wraps around it:
 *   1. merged = live merged with applied;
 *   2. the manager's Apply set becomes the fields of applied;
 *   3. prune: fields the manager's previous Apply owned and this one does
 *      not leave merged, unless another manager owns them (Updater.prune,
 *      with its two add-back passes);
 *   4. compare live with the result: a field another manager owns that was
 *      added or modified is a conflict; with force (and for updates, always)
 *      other managers lose those fields and every removed one;
 *   5. untracked fields leave the manager's set (stripMeta), empty entries
 *      go, and the entries are encoded and sorted as kube does.
 * An ordinary write (Updater.Update behind managedFieldsUpdater) is step 4
 * with force between old and obj, the changed fields going to the writer's
 * Update entry.
 *
 * The field sets and the walking context are fieldset.c's, the comparison
 * compare.c's, the entries managedfields.c's (with the ordinary write) and
 * the conflicts conflicts.c's; what they share is in apply_internal.h.
 */
#include "apply_internal.h"

#include <stdio.h>
#include <string.h>

#include "../lib/mem.h"

/* ---- merge -------------------------------------------------------------------- */

static int mg_node(apply__ctx_t *c, const json_t *a, const json_t *b, json_t **out);

static int mg_map(apply__ctx_t *c, const json_t *a, const json_t *b, json_t **out)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (!o)
        return ERR_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach((json_t *)(pass ? b : a), k, v) {
            if (pass && json_object_get(a, k))
                continue;
            json_t *m = NULL;
            size_t at = apply__ctx_enter(c, k, NULL);
            int rc = pass ? mg_node(c, NULL, v, &m) : mg_node(c, v, json_object_get(b, k), &m);
            apply__ctx_leave(c, at);
            if (!rc && json_object_set_new(o, k, m))
                rc = ERR_NOMEM;
            if (rc) {
                json_decref(o);
                return rc;
            }
        }
    }
    *out = o;
    return 0;
}

static int mg_item(apply__ctx_t *c, const json_t *a, const json_t *b, json_t *arr)
{
    json_t *m = NULL;
    int rc = mg_node(c, a, b, &m);
    if (!rc && json_array_append_new(arr, m))
        rc = ERR_NOMEM;
    return rc;
}

/* Merges keyed or set lists in structured-merge-diff's order: live items
 * the configuration does not name stay where they are, the configuration's
 * items come in its order, and a live item it names moves to its place in
 * the configuration unless it is the next one expected there. Live items
 * that cannot be named pass through unchanged. */
static int mg_list(apply__ctx_t *c, const json_t *a, const json_t *b, const patch_list_rule_t *rule,
                   json_t **out)
{
    apply__lindex_t ia = {0}, ib = {0};
    char *done = NULL;
    size_t *shared = NULL, nsh = 0, si = 0;
    json_t *o = NULL;
    int rc = apply__lindex_build(rule, a, &ia);
    if (!rc)
        rc = apply__lindex_build(rule, b, &ib);
    if (rc)
        goto out;
    rc = ERR_NOMEM;
    done = mem_calloc(ia.n ? ia.n : 1, 1);
    shared = mem_alloc(sizeof *shared * (ib.n ? ib.n : 1));
    o = json_array();
    if (!done || !shared || !o)
        goto out;
    for (size_t j = 0; j < ib.n; j++)
        if (ib.pe[j] && apply__lindex_find(&ia, ib.pe[j]) >= 0)
            shared[nsh++] = j;
    const char *next = nsh ? ib.pe[shared[si++]] : NULL;
    size_t l = 0, r = 0;
    rc = 0;
    while (!rc && (l < ia.n || r < ib.n)) {
        if (r < ib.n && !ib.pe[r]) {
            r++;                                 /* already refused by fields_of */
            continue;
        }
        if (l < ia.n && done[l]) {
            l++;
            continue;
        }
        const char *pe = l < ia.n ? ia.pe[l] : NULL;
        int in_b = pe && apply__lindex_find(&ib, pe) >= 0;
        if (l < ia.n && r < ib.n) {
            if (pe && !strcmp(pe, ib.pe[r])) {
                rc = mg_item(c, ia.item[l], ib.item[r], o);
                done[l++] = 1;
                r++;
                next = si < nsh ? ib.pe[shared[si++]] : NULL;
                continue;
            }
            if (in_b && next && strcmp(next, pe)) {
                l++;                             /* shared, but not this round's */
                continue;
            }
        }
        if (l < ia.n && !in_b) {
            rc = mg_item(c, ia.item[l], NULL, o);
            done[l++] = 1;
            continue;
        }
        if (r < ib.n) {
            long li = apply__lindex_find(&ia, ib.pe[r]);
            rc = mg_item(c, li >= 0 ? ia.item[li] : NULL, ib.item[r], o);
            if (li >= 0)
                done[li] = 1;
            if (next && !strcmp(next, ib.pe[r]))
                next = si < nsh ? ib.pe[shared[si++]] : NULL;
            r++;
            continue;
        }
        l++;
    }
out:
    if (rc) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    mem_free(done);
    mem_free(shared);
    apply__lindex_free(&ia);
    apply__lindex_free(&ib);
    return rc;
}

/* a (live) merged with b (configuration), either absent: maps merge field
 * by field, keyed and set lists item by item, anything else is b's. *out is
 * new and shares nothing with a or b. */
static int mg_node(apply__ctx_t *c, const json_t *a, const json_t *b, json_t **out)
{
    const patch_list_rule_t *rule;
    *out = NULL;
    switch (apply__shape_of(c, a, b, &rule)) {
    case APPLY__SHAPE_LEAF:
        *out = json_deep_copy(b ? b : a);
        return *out ? 0 : ERR_NOMEM;
    case APPLY__SHAPE_MAP:
        return mg_map(c, a, b, out);
    default:
        return mg_list(c, a, b, rule, out);
    }
}

/* ---- removal ------------------------------------------------------------------- */

/* v without the members of rm (structured-merge-diff's RemoveItems). A map
 * or list that the removal empties is dropped (*out NULL) unless it is a
 * member of keep, as kube's typed objects lose a field that becomes null.
 * Unchanged subtrees are shared with v. */
static int rm_node(apply__ctx_t *c, const json_t *v, const json_t *rm, const json_t *keep,
                   json_t **out)
{
    const patch_list_rule_t *rule;
    int rc = 0;
    *out = NULL;
    if (json_is_object(v) && json_object_size(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *cv;
        if (!o)
            return ERR_NOMEM;
        json_object_foreach((json_t *)v, k, cv) {
            char *key = apply__field_key(k);
            json_t *nv = NULL;
            if (!key) {
                rc = ERR_NOMEM;
                break;
            }
            const json_t *cr = json_object_get(rm, key);
            if (apply__set_is_member(cr)) {
                /* removed */
            } else if (cr) {
                size_t at = apply__ctx_enter(c, k, key);
                rc = rm_node(c, cv, cr, json_object_get(keep, key), &nv);
                apply__ctx_leave(c, at);
            } else {
                nv = json_incref(cv);
            }
            mem_free(key);
            if (!rc && nv && json_object_set_new(o, k, nv))
                rc = ERR_NOMEM;
            if (rc)
                break;
        }
        if (rc || (!json_object_size(o) && !apply__set_is_member(keep))) {
            json_decref(o);
            return rc;
        }
        *out = o;
        return 0;
    }
    if (json_is_array(v) && json_array_size(v) &&
        apply__list_kind(c, &rule) != APPLY__LIST_ATOMIC) {
        json_t *o = json_array();
        size_t i;
        json_t *item;
        if (!o)
            return ERR_NOMEM;
        json_array_foreach(v, i, item) {
            char *pe = NULL, why[8];
            json_t *nv = NULL;
            rc = apply__item_pe(rule, item, &pe, why, sizeof why);
            if (rc < 0)
                break;
            const json_t *cr = rc ? NULL : json_object_get(rm, pe);
            rc = 0;
            if (apply__set_is_member(cr)) {
                /* removed */
            } else if (cr)
                rc = rm_node(c, item, cr, json_object_get(keep, pe), &nv);
            else
                nv = json_incref(item);
            mem_free(pe);
            if (!rc && nv && json_array_append_new(o, nv))
                rc = ERR_NOMEM;
            if (rc)
                break;
        }
        if (rc || (!json_array_size(o) && !apply__set_is_member(keep))) {
            json_decref(o);
            return rc;
        }
        *out = o;
        return 0;
    }
    *out = json_incref((json_t *)v);
    return 0;
}

/* rm_node on a whole object: the root is never dropped. */
static int rm_root(apply__ctx_t *c, const json_t *v, const json_t *rm, const json_t *keep,
                   json_t **out)
{
    int rc = rm_node(c, v, rm, keep, out);
    if (!rc && !*out) {
        *out = json_object();
        if (!*out)
            rc = ERR_NOMEM;
    }
    return rc;
}

/* Updater.prune: removes from merged what the applier owned last time
 * (last) and no manager owns now (managed, the new Apply set included).
 * First everything in last goes; then what no one owns and was removed
 * comes back only if it was in last; so unowned fields set by others stay. */
static int prune(apply__ctx_t *c, const json_t *merged, const json_t *last, const json_t *managed,
                 json_t **out)
{
    json_t *p1 = NULL, *p2 = NULL, *ms = NULL, *ps = NULL, *u = NULL, *r = NULL, *d = NULL;
    int rc = rm_root(c, merged, last, managed, &p1);
    if (!rc)
        rc = apply__fields_raw(c, merged, 0, &ms);
    if (!rc)
        rc = apply__fields_raw(c, p1, 0, &ps);
    if (!rc && (!(u = apply__set_union(ps, managed)) || !(r = apply__set_diff(ms, u))))
        rc = ERR_NOMEM;
    if (!rc)
        rc = rm_root(c, merged, r, managed, &p2);
    json_decref(ps);
    ps = NULL;
    if (!rc)
        rc = apply__fields_raw(c, p2, 0, &ps);
    json_decref(r);
    r = NULL;
    if (!rc && (!(d = apply__set_diff(ms, ps)) || !(r = apply__set_inter(d, last))))
        rc = ERR_NOMEM;
    if (!rc)
        rc = rm_root(c, merged, r, managed, out);
    json_decref(p1);
    json_decref(p2);
    json_decref(ms);
    json_decref(ps);
    json_decref(u);
    json_decref(r);
    json_decref(d);
    return rc;
}

/* ---- apply ------------------------------------------------------------------------ */

static void gvk_string(char *buf, size_t n, const char *api_version, const char *kind)
{
    const char *slash = strchr(api_version, '/');
    if (slash)
        snprintf(buf, n, "%.*s/%s, Kind=%s", (int)(slash - api_version), api_version, slash + 1,
                 kind);
    else
        snprintf(buf, n, "/%s, Kind=%s", api_version, kind);
}

int apply_patch(const json_t *live, const json_t *applied, const char *manager, int force,
                const char *api_version, const char *now, const patch_list_rule_t *rules,
                json_t **out, err_t *err)
{
    return apply_patch_sub(live, applied, manager, "", force, api_version, now, rules, out, err);
}

int apply_patch_sub(const json_t *live, const json_t *applied, const char *manager,
                    const char *subresource, int force, const char *api_version,
                    const char *now, const patch_list_rule_t *rules, json_t **out, err_t *err)
{
    return apply_patch_yielding(live, applied, manager, subresource, force, NULL, api_version,
                                now, rules, out, err);
}

int apply_patch_yielding(const json_t *live, const json_t *applied, const char *manager,
                         const char *subresource, int force, const char *yielding,
                         const char *api_version, const char *now,
                         const patch_list_rule_t *rules, json_t **out, err_t *err)
{
    if (!subresource)
        subresource = "";
    apply__ctx_t c;
    json_t *base = NULL, *cfg = NULL, *mgrs = NULL, *newset = NULL, *merged = NULL;
    json_t *final = NULL, *last = NULL, *managed = NULL, *changed = NULL;
    apply__delta_t d = {0};
    char why[200], gvk[256], what[640];
    int rc = 0;

    apply__ctx_init(&c, rules, err);
    if (!out)
        return err_set(err, ERR_INTERNAL, "apply_patch: no output");
    *out = NULL;
    if (!api_version || (live && !json_is_object(live)))
        return err_set(err, ERR_INTERNAL, "apply_patch: bad arguments");
    if (!json_is_object(applied))
        return err_set(err, ERR_BAD_REQUEST, "error decoding YAML: the applied configuration "
                                             "is not an object");
    if (!manager || !*manager) {
        if (err && !err->code) {
            err_set(err, ERR_INVALID, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: "
                                      "Required value: is required for apply patch");
            err_add_cause(err, "FieldValueRequired", "fieldManager",
                          "Required value: is required for apply patch");
        }
        return ERR_INVALID;
    }
    if (apply__too_deep(applied, PATCH_MAX_DEPTH) ||
        (live && apply__too_deep(live, PATCH_MAX_DEPTH)))
        return err_set(err, ERR_BAD_REQUEST, "object nested more than %d levels",
                       PATCH_MAX_DEPTH);

    const char *av = json_string_value(json_object_get(applied, "apiVersion"));
    const char *kind = json_string_value(json_object_get(applied, "kind"));
    const char *want = live ? json_string_value(json_object_get(live, "kind")) : NULL;
    gvk_string(gvk, sizeof gvk, av ? av : "", kind ? kind : "");
    if (!av || strcmp(av, api_version) || !kind || !*kind || (want && strcmp(kind, want)))
        return err_set(err, ERR_BAD_REQUEST, "invalid object type: %s", gvk);
    const json_t *ameta = json_object_get(applied, "metadata");
    const json_t *amf = json_object_get(ameta, "managedFields");
    if (amf && !json_is_null(amf))
        return err_set(err, ERR_BAD_REQUEST, "metadata.managedFields must be nil");
    snprintf(what, sizeof what, "%s/%s; %s",
             json_string_value(json_object_get(ameta, "namespace"))
                 ? json_string_value(json_object_get(ameta, "namespace")) : "",
             json_string_value(json_object_get(ameta, "name"))
                 ? json_string_value(json_object_get(ameta, "name")) : "",
             gvk);
    c.what = what;

    rc = apply__mf_decode(json_object_get(json_object_get(live, "metadata"), "managedFields"),
                          &mgrs, why, sizeof why);
    if (rc == 1) {
        rc = err_set(err, ERR_INTERNAL, "failed to decode managed fields: %s", why);
        goto out;
    }
    if (rc || (rc = apply__without_mf(live, &base)) || (rc = apply__without_mf(applied, &cfg)))
        goto nomem;

    /* What the manager now applies; a malformed list fails here. */
    rc = apply__fields_raw(&c, cfg, 1, &newset);
    if (rc)
        goto out;
    apply__set_strip_untracked(newset);
    rc = mg_node(&c, base, cfg, &merged);
    if (rc)
        goto nomem;

    long self_i = apply__ent_find_sub(mgrs, manager, 1, NULL, subresource);
    json_t *self = self_i >= 0 ? json_array_get(mgrs, (size_t)self_i) : NULL;
    if (self) {
        last = json_incref(apply__ent_set(self));
        if (apply__ent_put_set(self, json_incref(newset)) ||
            apply__ent_put_str(self, "apiVersion", api_version))
            goto nomem;
    } else {
        self = apply__ent_append(mgrs, manager, "Apply", api_version, subresource, newset);
        if (!self)
            goto nomem;
    }

    if (json_object_size(last)) {
        size_t i;
        json_t *e;
        managed = json_object();
        if (!managed)
            goto nomem;
        json_array_foreach(mgrs, i, e) {
            if (apply__set_union_into(managed, apply__ent_set(e)))
                goto nomem;
        }
        rc = prune(&c, merged, last, managed, &final);
        if (rc)
            goto nomem;
    } else {
        final = json_incref(merged);
    }

    /* Who loses what, and conflicts for those who would. */
    if (apply__delta_new(&d) || apply__cmp_map(&c, base, final, &d) ||
        !(changed = apply__delta_take_changed(&d)))
        goto nomem;
    rc = apply__check_conflicts(&c, mgrs, self, changed, force, yielding);
    if (rc)
        goto out;
    if (apply__mf_take(mgrs, changed, d.rem, self))
        goto nomem;

    /* A no-op keeps the entry's time, so nothing needs writing. */
    if (now && (!live || !json_equal(base, final) || !json_object_get(self, "time")))
        if (apply__ent_put_str(self, "time", now))
            goto nomem;
    apply__mf_drop_empty(mgrs);
    if (apply__mf_store(final, mgrs))
        goto nomem;
    *out = final;
    final = NULL;
    goto out;
nomem:
    rc = err_set(err, ERR_NOMEM, NULL);
out:
    apply__delta_free(&d);
    json_decref(changed);
    json_decref(managed);
    json_decref(last);
    json_decref(final);
    json_decref(merged);
    json_decref(newset);
    json_decref(mgrs);
    json_decref(cfg);
    json_decref(base);
    return rc;
}
