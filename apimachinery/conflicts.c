/*
 * conflicts: which other managers an apply conflicts with (they own a
 * field whose value it changes), when that stops it (no force, not only
 * the yielding manager), and the 409 kube words for it: the message
 * grouped by manager and one FieldManagerConflict cause per field.
 */
#include "apply_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"
#include "quote.h"

/* Appends "<path>" of every member of node, prefixed by prefix, to paths,
 * in fieldpath's Set.Iterate order (a level's members, then its children). */
static int set_paths(const json_t *node, sbuf_t *prefix, json_t *paths)
{
    size_t n, len = prefix->len;
    const char **keys = apply__set_sorted_keys(node, &n);
    int rc = 0;
    if (!keys && n)
        return ERR_NOMEM;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (size_t i = 0; i < n && !rc; i++) {
            const json_t *child = json_object_get(node, keys[i]);
            if (pass ? !apply__set_has_children(child) : !apply__set_is_member(child))
                continue;
            rc = apply__sb_disp_pe(prefix, keys[i]);
            if (!rc && prefix->oom)
                rc = ERR_NOMEM;
            if (!rc)
                rc = pass ? set_paths(child, prefix, paths)
                          : (json_array_append_new(paths, json_string(prefix->p)) ? ERR_NOMEM
                                                                                  : 0);
            sbuf_cut(prefix, len);
        }
    }
    mem_free(keys);
    return rc;
}

/* printManager: "name" [with subresource "s"] [using <apiVersion> for an
 * Update]. */
static void sb_manager(sbuf_t *b, const json_t *e)
{
    const char *m = apply__ent_str(e, "manager"), *s = apply__ent_str(e, "subresource");
    quote_go_sb(b, m, strlen(m));
    if (*s) {
        sbuf_puts(b, " with subresource ");
        quote_go_sb(b, s, strlen(s));
    }
    if (!apply__ent_is_apply(e)) {
        sbuf_puts(b, " using ");
        sbuf_puts(b, apply__ent_str(e, "apiVersion"));
    }
}

typedef struct conflict {
    const json_t *e;             /* the owner's entry */
    char *id;
    char *who;                   /* printManager */
    json_t *paths;               /* strings */
} conflict_t;

static int conflict_cmp(const void *x, const void *y)
{
    return strcmp(((const conflict_t *)x)->id, ((const conflict_t *)y)->id);
}

/* ERR_CONFLICT as NewConflictError builds it, from the conflicting sets
 * (conf[i] for entry i of mgrs, NULL where none). */
static int report_conflicts(apply__ctx_t *c, const json_t *mgrs, json_t *const *conf)
{
    size_t n = json_array_size(mgrs), k = 0, total = 0;
    conflict_t *cs = mem_calloc(n ? n : 1, sizeof *cs);
    sbuf_t msg = {0}, prefix = {0};
    int rc = ERR_NOMEM;
    if (!cs)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!conf[i])
            continue;
        conflict_t *x = &cs[k++];
        x->e = json_array_get(mgrs, i);
        sbuf_t who = {0};
        sb_manager(&who, x->e);
        x->who = apply__sb_take(&who);
        x->id = apply__ent_identity(x->e);
        x->paths = json_array();
        if (!x->who || !x->id || !x->paths)
            goto out;
        sbuf_cut(&prefix, 0);
        if (set_paths(conf[i], &prefix, x->paths))
            goto out;
        total += json_array_size(x->paths);
    }
    qsort(cs, k, sizeof *cs, conflict_cmp);
    if (total == 1) {
        sbuf_puts(&msg, "Apply failed with 1 conflict: conflict with ");
        sbuf_puts(&msg, cs[0].who);
        sbuf_puts(&msg, ": ");
        sbuf_puts(&msg, json_string_value(json_array_get(cs[0].paths, 0)));
    } else {
        char head[64];
        snprintf(head, sizeof head, "Apply failed with %zu conflicts: ", total);
        sbuf_puts(&msg, head);
        for (size_t i = 0; i < k; i++) {
            size_t j;
            json_t *p;
            if (i)
                sbuf_putc(&msg, '\n');
            sbuf_puts(&msg, "conflicts with ");
            sbuf_puts(&msg, cs[i].who);
            sbuf_putc(&msg, ':');
            json_array_foreach(cs[i].paths, j, p) {
                sbuf_puts(&msg, "\n- ");
                sbuf_puts(&msg, json_string_value(p));
            }
        }
    }
    if (msg.oom)
        goto out;
    /* Everything is built: from here nothing allocates. */
    rc = ERR_CONFLICT;
    if (c->err && c->err->code)
        goto out;
    err_set(c->err, ERR_CONFLICT, "%s", msg.p);
    for (size_t i = 0; i < k; i++) {
        size_t j;
        json_t *p;
        json_array_foreach(cs[i].paths, j, p) {
            err_add_cause(c->err, "FieldManagerConflict", json_string_value(p),
                          "conflict with %s", cs[i].who);
        }
    }
out:
    if (rc == ERR_NOMEM)
        err_set(c->err, ERR_NOMEM, NULL);
    for (size_t i = 0; cs && i < k; i++) {
        mem_free(cs[i].id);
        mem_free(cs[i].who);
        json_decref(cs[i].paths);
    }
    mem_free(cs);
    sbuf_free(&msg);
    sbuf_free(&prefix);
    return rc;
}

/* NewConflictError's conditions: see apply_internal.h. */
int apply__check_conflicts(apply__ctx_t *c, const json_t *mgrs, const json_t *self,
                           const json_t *changed, int force, const char *yielding)
{
    size_t n = json_array_size(mgrs), nconf = 0;
    json_t **conf = mem_calloc(n ? n : 1, sizeof *conf);
    int rc = 0, yield;
    if (!conf)
        return err_set(c->err, ERR_NOMEM, NULL);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(mgrs, i);
        if (e == self)
            continue;
        if (!(conf[i] = apply__set_inter(apply__ent_set(e), changed))) {
            rc = err_set(c->err, ERR_NOMEM, NULL);
            goto out;
        }
        if (!json_object_size(conf[i])) {
            json_decref(conf[i]);
            conf[i] = NULL;
        } else {
            nconf++;
        }
    }
    /* Conflicts with the yielding manager alone are none: it loses the
     * fields as to a forced apply. */
    yield = nconf && yielding;
    for (size_t i = 0; yield && i < n; i++)
        yield = !conf[i] || !strcmp(apply__ent_str(json_array_get(mgrs, i), "manager"), yielding);
    if (nconf && !force && !yield)
        rc = report_conflicts(c, mgrs, conf);
out:
    for (size_t i = 0; i < n; i++)
        json_decref(conf[i]);
    mem_free(conf);
    return rc;
}
