/*
 * managedfields: metadata.managedFields, as kube's fieldmanager keeps it:
 * decoding and encoding entries (identity, operation, apiVersion, time,
 * subresource; kube's order), dropping empty ones, capping Update
 * entries into "ancient-changes", taking changed fields from their
 * owners, and recording an ordinary write (apply_track_update).
 */
#include "apply_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"

/* Update entries kept before the oldest are merged (kube's
 * DefaultMaxUpdateManagers) and the name of the entry they merge into. */
#define APPLY_MAX_UPDATE_MANAGERS 10
#define APPLY_ANCIENT "ancient-changes"

/* ---- entries (their layout: apply_internal.h) ----------------------------------- */

const char *apply__ent_str(const json_t *e, const char *k)
{
    const char *s = json_string_value(json_object_get(e, k));
    return s ? s : "";
}

int apply__ent_is_apply(const json_t *e)
{
    return !strcmp(apply__ent_str(e, "operation"), "Apply");
}

json_t *apply__ent_set(const json_t *e) { return json_object_get(e, "set"); }

/* The entry of (manager, Apply) or (manager, Update, api_version) for
 * subresource ("" for the main resource); -1 if none. */
long apply__ent_find_sub(const json_t *mgrs, const char *manager, int apply,
                         const char *api_version, const char *subresource)
{
    size_t i;
    json_t *e;
    json_array_foreach(mgrs, i, e) {
        if (!strcmp(apply__ent_str(e, "manager"), manager) && apply__ent_is_apply(e) == apply &&
            !strcmp(apply__ent_str(e, "subresource"), subresource) &&
            (apply || !strcmp(apply__ent_str(e, "apiVersion"), api_version)))
            return (long)i;
    }
    return -1;
}

static long ent_find(const json_t *mgrs, const char *manager, int apply, const char *api_version)
{
    return apply__ent_find_sub(mgrs, manager, apply, api_version, "");
}

/* Whether two entries are the same manager (BuildManagerIdentifier). */
static int ent_same(const json_t *a, const json_t *b)
{
    return !strcmp(apply__ent_str(a, "manager"), apply__ent_str(b, "manager")) &&
           apply__ent_is_apply(a) == apply__ent_is_apply(b) &&
           !strcmp(apply__ent_str(a, "subresource"), apply__ent_str(b, "subresource")) &&
           (apply__ent_is_apply(a) ||
            !strcmp(apply__ent_str(a, "apiVersion"), apply__ent_str(b, "apiVersion")));
}

/* kube's manager identifier, {"manager":..,"operation":..,"apiVersion":..
 * (Update only),"subresource":..}, which orders managers in messages and
 * ties. Caller owns; NULL on allocation failure. */
char *apply__ent_identity(const json_t *e)
{
    static const char *const fields[] = {"manager", "operation", "apiVersion", "subresource"};
    sbuf_t b = {0};
    int first = 1;
    sbuf_putc(&b, '{');
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v = apply__ent_str(e, fields[i]);
        if (!*v || (i == 2 && apply__ent_is_apply(e)))
            continue;
        if (!first)
            sbuf_putc(&b, ',');
        first = 0;
        apply__sb_json_str(&b, fields[i], strlen(fields[i]));
        sbuf_putc(&b, ':');
        apply__sb_json_str(&b, v, strlen(v));
    }
    sbuf_putc(&b, '}');
    return apply__sb_take(&b);
}

/* Seconds since the epoch of an RFC 3339 time; 0 when absent or malformed,
 * as kube treats a missing time. */
static long long time_seconds(const char *t)
{
    int y, mo, d, h, mi, s, used = 0;
    if (!t || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6 ||
        mo < 1 || mo > 12)
        return 0;
    const char *p = t + used;
    long long off = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
            off = (oh * 3600LL + om * 60LL) * (*p == '-' ? -1 : 1);
    }
    /* Days from the civil date (proleptic Gregorian). */
    long long yy = y - (mo <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600LL + mi * 60LL + s - off;
}

/* Whether managedFields asks for a reset: [] or [{}] (isResetManagedFields). */
static int mf_is_reset(const json_t *mf)
{
    if (!json_is_array(mf))
        return 0;
    if (json_array_size(mf) == 0)
        return 1;
    if (json_array_size(mf) > 1 || !json_is_object(json_array_get(mf, 0)))
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_array_get(mf, 0), k, v) {
        if (!json_is_null(v) && !(json_is_string(v) && !*json_string_value(v)))
            return 0;
    }
    return 1;
}

/* Decodes wire managedFields (NULL or null: none) into entries (*out, new),
 * as DecodeManagedFields: a later entry of the same manager replaces an
 * earlier one. Returns 0, ERR_NOMEM, or 1 when malformed (reason in why). */
int apply__mf_decode(const json_t *wire, json_t **out, char *why, size_t whylen)
{
    json_t *mgrs = json_array();
    size_t i;
    json_t *w;
    int rc = 0;
    *out = NULL;
    if (!mgrs)
        return ERR_NOMEM;
    if (wire && !json_is_null(wire) && !json_is_array(wire)) {
        snprintf(why, whylen, "managedFields is not a list");
        json_decref(mgrs);
        return 1;
    }
    json_array_foreach(wire, i, w) {
        const json_t *op = json_object_get(w, "operation"), *av = json_object_get(w, "apiVersion");
        const json_t *ft = json_object_get(w, "fieldsType"), *fv = json_object_get(w, "fieldsV1");
        const json_t *mgr = json_object_get(w, "manager"), *tm = json_object_get(w, "time");
        const json_t *sub = json_object_get(w, "subresource");
        rc = 1;
        if (!json_is_object(w))
            snprintf(why, whylen, "managed fields entry %zu is not an object", i);
        else if (!json_is_string(op) || (strcmp(json_string_value(op), "Apply") &&
                                         strcmp(json_string_value(op), "Update")))
            snprintf(why, whylen, "operation must be `Apply` or `Update`");
        else if (!json_is_string(av) || !*json_string_value(av))
            snprintf(why, whylen, "apiVersion must not be empty");
        else if (!json_is_string(ft) || !*json_string_value(ft))
            snprintf(why, whylen, "missing fieldsType in managed fields entry %zu", i);
        else if (strcmp(json_string_value(ft), "FieldsV1"))
            snprintf(why, whylen, "invalid fieldsType \"%.32s\" in managed fields entry %zu",
                     json_string_value(ft), i);
        else if ((mgr && !json_is_null(mgr) && !json_is_string(mgr)) ||
                 (tm && !json_is_null(tm) && !json_is_string(tm)) ||
                 (sub && !json_is_null(sub) && !json_is_string(sub)) ||
                 (fv && !json_is_null(fv) && !json_is_object(fv)))
            snprintf(why, whylen, "malformed managed fields entry %zu", i);
        else
            rc = 0;
        if (rc)
            break;
        json_t *set = NULL, *e = NULL;
        rc = json_is_object(fv) ? apply__fv1_decode(fv, 0, &set, why, whylen)
                                : ((set = json_object()) ? 0 : ERR_NOMEM);
        if (!rc) {
            e = json_pack("{s:s, s:O, s:O, s:O}", "manager", mgr ? json_string_value(mgr) : "",
                          "operation", op, "apiVersion", av, "set", set);
            if (e && json_is_string(tm) && json_object_set(e, "time", (json_t *)tm))
                rc = ERR_NOMEM;
            if (e && json_is_string(sub) && *json_string_value(sub) &&
                json_object_set(e, "subresource", (json_t *)sub))
                rc = ERR_NOMEM;
            if (!e)
                rc = ERR_NOMEM;
        }
        json_decref(set);
        if (!rc) {
            size_t j;
            json_t *have;
            json_array_foreach(mgrs, j, have) {
                if (ent_same(have, e))
                    break;
            }
            if (j < json_array_size(mgrs))
                json_array_remove(mgrs, j);
            if (json_array_append_new(mgrs, e))
                rc = ERR_NOMEM;
            e = NULL;
        }
        json_decref(e);
        if (rc)
            break;
    }
    if (rc) {
        json_decref(mgrs);
        return rc;
    }
    *out = mgrs;
    return 0;
}

/* kube's order of encoded entries (sortEncodedManagedFields). */
static int wire_cmp(const void *x, const void *y)
{
    const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
    int r = strcmp(apply__ent_str(a, "operation"), apply__ent_str(b, "operation"));
    if (r)
        return r;
    long long ta = time_seconds(json_string_value(json_object_get(a, "time")));
    long long tb = time_seconds(json_string_value(json_object_get(b, "time")));
    if (ta != tb)
        return ta < tb ? -1 : 1;
    if ((r = strcmp(apply__ent_str(a, "manager"), apply__ent_str(b, "manager"))) ||
        (r = strcmp(apply__ent_str(a, "apiVersion"), apply__ent_str(b, "apiVersion"))))
        return r;
    return strcmp(apply__ent_str(a, "subresource"), apply__ent_str(b, "subresource"));
}

/* Wire managedFields of the entries with a non-empty set (*out, new). */
static int mf_encode(const json_t *mgrs, json_t **out)
{
    size_t n = json_array_size(mgrs), k = 0, i;
    json_t **v = mem_calloc(n ? n : 1, sizeof *v);
    json_t *arr = json_array(), *e;
    int rc = 0;
    *out = NULL;
    if (!v || !arr) {
        rc = ERR_NOMEM;
        goto out;
    }
    json_array_foreach(mgrs, i, e) {
        if (!json_object_size(apply__ent_set(e)))
            continue;
        json_t *w = json_pack("{s:s, s:s, s:s}", "manager", apply__ent_str(e, "manager"),
                              "operation", apply__ent_str(e, "operation"), "apiVersion",
                              apply__ent_str(e, "apiVersion"));
        v[k++] = w;
        if (!w || (json_object_get(e, "time") &&
                   json_object_set(w, "time", json_object_get(e, "time"))) ||
            json_object_set_new(w, "fieldsType", json_string("FieldsV1")) ||
            json_object_set_new(w, "fieldsV1", apply__fv1_encode(apply__ent_set(e))) ||
            (*apply__ent_str(e, "subresource") &&
             json_object_set(w, "subresource", json_object_get(e, "subresource")))) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    qsort(v, k, sizeof *v, wire_cmp);
    for (i = 0; i < k; i++) {
        int bad = json_array_append_new(arr, v[i]);
        v[i] = NULL;
        if (bad) {
            rc = ERR_NOMEM;
            goto out;
        }
    }
    *out = arr;
    arr = NULL;
out:
    for (i = 0; v && i < k; i++)
        json_decref(v[i]);
    mem_free(v);
    json_decref(arr);
    return rc;
}

/* Drops entries whose set is empty. */
void apply__mf_drop_empty(json_t *mgrs)
{
    for (size_t i = json_array_size(mgrs); i-- > 0;)
        if (!json_object_size(apply__ent_set(json_array_get(mgrs, i))))
            json_array_remove(mgrs, i);
}

/* Replaces the entry's set; takes set. */
int apply__ent_put_set(json_t *e, json_t *set)
{
    return json_object_set_new(e, "set", set) ? ERR_NOMEM : 0;
}

int apply__ent_put_str(json_t *e, const char *k, const char *v)
{
    return json_object_set_new(e, k, json_string(v)) ? ERR_NOMEM : 0;
}

json_t *apply__ent_append(json_t *mgrs, const char *manager, const char *operation,
                          const char *api_version, const char *subresource, json_t *set)
{
    json_t *e = json_pack("{s:s, s:s, s:s, s:O}", "manager", manager, "operation", operation,
                          "apiVersion", api_version, "set", set);
    if (e && *subresource && json_object_set_new(e, "subresource", json_string(subresource))) {
        json_decref(e);
        return NULL;
    }
    if (!e || json_array_append_new(mgrs, e))
        return NULL;
    return e;
}

typedef struct upd_ref {
    json_t *e;
    long long t;
    char *id;
} upd_ref_t;

static int upd_ref_cmp(const void *x, const void *y)
{
    const upd_ref_t *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* capManagersManager: past APPLY_MAX_UPDATE_MANAGERS Update entries, the
 * oldest merge, per apiVersion, into an "ancient-changes" entry carrying
 * the time of the latest one merged. Merged entries are emptied, for
 * apply__mf_drop_empty. */
static int mf_cap_updates(json_t *mgrs)
{
    size_t n = 0, i, length;
    json_t *e;
    upd_ref_t *u = mem_calloc(json_array_size(mgrs) + 1, sizeof *u);
    json_t **first = mem_calloc(json_array_size(mgrs) + 1, sizeof *first);
    size_t nfirst = 0;
    int rc = ERR_NOMEM;
    if (!u || !first)
        goto out;
    json_array_foreach(mgrs, i, e) {
        if (apply__ent_is_apply(e))
            continue;
        u[n].e = e;
        u[n].t = time_seconds(json_string_value(json_object_get(e, "time")));
        if (!(u[n++].id = apply__ent_identity(e)))
            goto out;
    }
    rc = 0;
    if (n <= APPLY_MAX_UPDATE_MANAGERS)
        goto out;
    qsort(u, n, sizeof *u, upd_ref_cmp);
    length = n;
    for (i = 0; i < n && length > APPLY_MAX_UPDATE_MANAGERS; i++) {
        const char *version = apply__ent_str(u[i].e, "apiVersion");
        json_t *f = NULL;
        for (size_t j = 0; j < nfirst && !f; j++)
            if (!strcmp(apply__ent_str(first[j], "apiVersion"), version))
                f = first[j];
        if (!f) {
            first[nfirst++] = u[i].e;
            continue;
        }
        long bi = ent_find(mgrs, APPLY_ANCIENT, 0, version);
        json_t *bucket = bi >= 0 ? json_array_get(mgrs, (size_t)bi) : NULL;
        if (bucket == u[i].e)
            continue;
        if (!bucket) {
            /* The first entry of this version becomes the bucket. */
            bucket = f;
            json_object_del(bucket, "subresource");
            if ((rc = apply__ent_put_str(bucket, "manager", APPLY_ANCIENT)))
                goto out;
        }
        if (apply__set_union_into(apply__ent_set(bucket), apply__ent_set(u[i].e))) {
            rc = ERR_NOMEM;
            goto out;
        }
        json_t *t = json_object_get(u[i].e, "time");
        if (!t)
            json_object_del(bucket, "time");
        else if (json_object_set(bucket, "time", t)) {
            rc = ERR_NOMEM;
            goto out;
        }
        json_object_clear(apply__ent_set(u[i].e));
        length--;
    }
out:
    for (i = 0; u && i < n; i++)
        mem_free(u[i].id);
    mem_free(u);
    mem_free(first);
    return rc;
}

/* Replaces metadata.managedFields of obj by the encoded entries, or removes
 * it when none are left. */
int apply__mf_store(json_t *obj, const json_t *mgrs)
{
    json_t *wire = NULL;
    json_t *meta = json_object_get(obj, "metadata");
    int rc = mf_encode(mgrs, &wire);
    if (rc)
        return rc;
    if (!json_array_size(wire)) {
        json_decref(wire);
        if (json_is_object(meta))
            json_object_del(meta, "managedFields");
        return 0;
    }
    if (!json_is_object(meta)) {
        meta = json_object();
        if (!meta || json_object_set_new(obj, "metadata", meta)) {
            json_decref(wire);
            return ERR_NOMEM;
        }
    }
    return json_object_set_new(meta, "managedFields", wire) ? ERR_NOMEM : 0;
}

/* ---- views and taking fields ----------------------------------------------------- */

/* A shallow copy of obj without the key skip (NULL: none); NULL on
 * allocation failure. (json_copy would drop keys it fails to insert.) */
static json_t *shallow_copy(const json_t *obj, const char *skip)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (!o)
        return NULL;
    json_object_foreach((json_t *)obj, k, v) {
        if (skip && !strcmp(k, skip))
            continue;
        if (json_object_set(o, k, v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A shallow view of obj without metadata.managedFields (*out, new; the
 * rest shared with obj); an empty object for NULL. */
int apply__without_mf(const json_t *obj, json_t **out)
{
    json_t *meta = json_object_get(obj, "metadata");
    int strip = json_is_object(meta) && json_object_get(meta, "managedFields");
    *out = shallow_copy(obj, strip ? "metadata" : NULL);
    if (!*out)
        return ERR_NOMEM;
    if (strip && json_object_set_new(*out, "metadata", shallow_copy(meta, "managedFields"))) {
        json_decref(*out);
        *out = NULL;
        return ERR_NOMEM;
    }
    return 0;
}

/* Every entry loses the fields in changed and in removed (Updater.update
 * with force). */
int apply__mf_take(json_t *mgrs, const json_t *changed, const json_t *removed, const json_t *skip)
{
    size_t i;
    json_t *e;
    json_array_foreach(mgrs, i, e) {
        if (e == skip)
            continue;
        json_t *s = json_incref(apply__ent_set(e));
        int rc = apply__set_apply(&s, apply__set_diff, changed);
        if (!rc)
            rc = apply__set_apply(&s, apply__set_diff, removed);
        if (rc) {
            json_decref(s);
            return rc;
        }
        if (apply__ent_put_set(e, s))
            return ERR_NOMEM;
    }
    return 0;
}

/* ---- ordinary writes -------------------------------------------------------------- */

int apply_track_update(const json_t *old, json_t *obj, const char *manager,
                       const char *api_version, const char *now,
                       const patch_list_rule_t *rules, err_t *err)
{
    return apply_track_update_sub(old, obj, manager, "", api_version, now, rules, err);
}

int apply_track_update_sub(const json_t *old, json_t *obj, const char *manager,
                           const char *subresource, const char *api_version, const char *now,
                           const patch_list_rule_t *rules, err_t *err)
{
    if (!subresource)
        subresource = "";
    apply__ctx_t c;
    json_t *mgrs = NULL, *a = NULL, *b = NULL, *changed = NULL;
    apply__delta_t d = {0};
    char why[200];
    int rc = 0;

    apply__ctx_init(&c, rules, err);
    if (!json_is_object(obj) || !api_version || (old && !json_is_object(old)))
        return err_set(err, ERR_INTERNAL, "apply_track_update: bad arguments");
    if (!manager)
        manager = "";
    if (apply__too_deep(obj, PATCH_MAX_DEPTH) || (old && apply__too_deep(old, PATCH_MAX_DEPTH)))
        return err_set(err, ERR_BAD_REQUEST, "object nested more than %d levels",
                       PATCH_MAX_DEPTH);

    /* The starting entries: a reset, the client's own, or old's. */
    const json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
    if (mf_is_reset(mf)) {
        if (!(mgrs = json_array()))
            goto nomem;
    } else {
        rc = json_array_size(mf) ? apply__mf_decode(mf, &mgrs, why, sizeof why) : 1;
        if (rc < 0)
            goto nomem;
        if (rc || !json_array_size(mgrs)) {
            json_decref(mgrs);
            mgrs = NULL;
            rc = apply__mf_decode(
                json_object_get(json_object_get(old, "metadata"), "managedFields"), &mgrs, why,
                sizeof why);
            if (rc < 0)
                goto nomem;
            if (rc && !(mgrs = json_array()))
                goto nomem;
        }
    }
    rc = 0;

    if (!old) {
        /* A create: every field is added, nothing modified or removed. */
        if (apply__without_mf(obj, &b) || !(changed = json_object()) ||
            apply__add_map(&c, b, changed))
            goto nomem;
    } else if (apply__without_mf(old, &a) || apply__without_mf(obj, &b) || apply__delta_new(&d) ||
               apply__cmp_map(&c, a, b, &d) || !(changed = apply__delta_take_changed(&d))) {
        goto nomem;
    }
    if (apply__mf_take(mgrs, changed, d.rem, NULL))
        goto nomem;
    apply__set_strip_untracked(changed);
    if (json_object_size(changed)) {
        long i = apply__ent_find_sub(mgrs, manager, 0, api_version, subresource);
        json_t *e = i >= 0 ? json_array_get(mgrs, (size_t)i) : NULL;
        if (e) {
            if (apply__set_union_into(apply__ent_set(e), changed))
                goto nomem;
        } else {
            e = apply__ent_append(mgrs, manager, "Update", api_version, subresource, changed);
            if (!e)
                goto nomem;
        }
        if (now && apply__ent_put_str(e, "time", now))
            goto nomem;
    }
    apply__mf_drop_empty(mgrs);
    if (mf_cap_updates(mgrs))
        goto nomem;
    apply__mf_drop_empty(mgrs);
    if (apply__mf_store(obj, mgrs))
        goto nomem;
    goto out;
nomem:
    rc = err_set(err, ERR_NOMEM, NULL);
out:
    apply__delta_free(&d);
    json_decref(changed);
    json_decref(b);
    json_decref(a);
    json_decref(mgrs);
    return rc;
}
