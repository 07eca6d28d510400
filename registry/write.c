/*
 * Writes: create, update and every patch type, delete and deletecollection; each admitted, then a compare-and-swap in storage retried on races the client did not ask to detect. See reg_internal.h and rest.c.
 */
#include "reg_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/b64.h"
#include "../lib/crypto.h"
#include "../lib/json/jenc.h"
#include "../lib/json/jtok.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../lib/yaml.h"
#include "../apimachinery/apply.h"
#include "../apimachinery/keys.h"
#include "../apimachinery/selector.h"

#define REG_MAX_DEPTH 64
#define REG_CAS_RETRIES 16

/* The object as written (obj, which this takes over): resourceVersion
 * set; when the stored bytes are at hand, the response text is made from
 * them (no second serialization). The write is done by now; running out
 * of memory here still fails the request, as kube's does when it cannot
 * encode its answer: an object or a text without its resourceVersion is
 * no answer. */
static int finish_write(json_t *obj, uint64_t rev, json_t **out, const char *bytes,
                        size_t len, reg_outcome_t *oc, err_t *err)
{
    char rv[24];
    snprintf(rv, sizeof rv, "%" PRIu64, rev);
    if (json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion",
                            json_string(rv)) ||
        (bytes && oc && oc->want_body && !oc->body &&
         reg__put_with_rv_buf(bytes, len, rev, &oc->body, &oc->body_len))) {
        json_decref(obj);
        return err_set(err, ERR_NOMEM, NULL);
    }
    *out = obj;
    return 0;
}

/* ---- create ---------------------------------------------------------------------- */

/* Fills what the server owns on create. */
static int init_metadata(json_t *obj, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    char uid[37], now[32];
    crypto_uuid4(uid);
    reg__now_rfc3339(now);
    if (json_object_set_new(meta, "uid", json_string(uid)) ||
        json_object_set_new(meta, "creationTimestamp", json_string(now)) ||
        json_object_set_new(meta, "generation", json_integer(1)))
        return err_set(err, ERR_NOMEM, NULL);
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "selfLink");
    return 0;
}

/* Stores the new obj (taken over: stored and handed back, or released)
 * under its key, its unique claim (reg_unique_t) taken first and given
 * back when the object cannot be stored. */
static int store_new(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                     json_t *obj, json_t **out, reg_outcome_t *oc, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    reg__claim_t claim = {.rev = 0};
    size_t len = 0;
    char *bytes = NULL;
    uint64_t rev = 0;
    err_t se;
    err_clear(&se);
    int rc = reg__make_key(k, ns, name, key, sizeof key)
                 ? err_set(err, ERR_BAD_REQUEST, "name too long") : 0;
    if (!rc && !(bytes = reg__encode_for_store(obj, &len)))
        rc = err_set(err, ERR_NOMEM, NULL);
    if (!rc)
        rc = reg__unique_take(r, k, obj, NULL, 0, &claim, err);
    if (!rc && (rc = store_create(r->store, key, bytes, len, &rev, &se))) {
        reg__unique_undo(r, &claim);
        rc = reg__store_error(k, name, rc, &se, err);
    }
    if (rc) {
        mem_free(bytes);
        json_decref(obj);
        return rc;
    }
    rc = finish_write(obj, rev, out, bytes, len, oc, err);
    mem_free(bytes);
    return rc;
}

/* Creates body. track: record the write as the manager's Update (an apply
 * that creates has already recorded its Apply entry). */
static int create(reg_t *r, const reg_kind_t *k, const char *ns, json_t *obj,
                  const reg_write_opts_t *o, int track, json_t **out, reg_outcome_t *oc,
                  err_t *err)
{
    /* obj is this function's: stored and handed back, or released. */
    int rc = reg__check_type(k, obj, ERR_BAD_REQUEST, err);
    if (!rc)
        rc = reg__check_namespace(k, obj, ns, err);
    if (rc)
        goto fail;
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = reg__str_at(obj, "metadata.name");
    const char *gen = reg__str_at(obj, "metadata.generateName");
    if ((!name || !*name) && gen && *gen) {
        char nm[256];
        reg__generate_name(gen, nm, sizeof nm);
        if (json_object_set_new(meta, "name", json_string(nm))) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto fail;
        }
        name = reg__str_at(obj, "metadata.name");
    }
    if ((!name || !*name) && !k->create_only) {
        rc = err_set(err, ERR_INVALID, "%s.%s \"\" is invalid: metadata.name: Required value: "
                     "name or generateName is required", k->kind, k->group);
        err_add_cause(err, "FieldValueRequired", "metadata.name",
                      "Required value: name or generateName is required");
        goto fail;
    }
    /* A new object has no status of the client's making. */
    if (k->has_status)
        json_object_del(obj, "status");
    if (k->prepare)
        rc = k->prepare(obj, r->cluster, err);
    if (!rc && k->on_create && k->on_create(obj))
        rc = err_set(err, ERR_NOMEM, NULL);
    if (!rc)
        rc = reg__check_object(k, obj, NULL, o->field_validation, oc, err);
    if (!rc && !k->create_only)
        rc = reg_admit(r, k, o->user, "create", NULL, obj, err);
    if (rc)
        goto fail;

    if (k->create_only) {
        /* A review: answered, never stored. */
        rc = k->review(r, obj, err);
        if (rc)
            goto fail;
        oc->created = 1;
        *out = obj;
        return 0;
    }
    rc = init_metadata(obj, err);
    if (rc)
        goto fail;
    if (track) {
        char now[32], av[160];
        reg__now_rfc3339(now);
        reg__api_version_of(k, av, sizeof av);
        char mgr[130];
        rc = apply_track_update(NULL, obj, reg__manager_of(o, mgr, sizeof mgr), av, now, k->list_rules, err);
        if (rc)
            goto fail;
    }
    oc->created = 1;
    if (!o->dry_run)
        return store_new(r, k, ns, name, obj, out, oc, err);
    /* Dry run: what storing would refuse, nothing kept. */
    reg__claim_t claim;
    rc = reg__unique_take(r, k, obj, NULL, 1, &claim, err);
    if (rc)
        goto fail;
    *out = obj;
    return 0;
fail:
    json_decref(obj);
    return rc;
}

/* A create names no resourceVersion. kube-apiserver's storage refuses it
 * with this message as a 500; it is the client's error, so a 400 here. */
static int check_create_rv(const json_t *body, err_t *err)
{
    const json_t *rv = reg__at(body, "metadata.resourceVersion");
    if (rv && !json_is_null(rv) && !(json_is_string(rv) && !*json_string_value(rv)))
        return err_set(err, ERR_BAD_REQUEST, "resourceVersion should not be set on objects to "
                       "be created");
    return 0;
}

int reg_create(reg_t *r, const reg_kind_t *k, const char *ns, const json_t *body,
               const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    int rc = check_create_rv(body, err);
    if (rc)
        return rc;
    json_t *obj = json_deep_copy(body);
    if (!obj)
        return err_set(err, ERR_NOMEM, NULL);
    return create(r, k, ns, obj, o, 1, out, oc, err);
}

int reg_create_owned(reg_t *r, const reg_kind_t *k, const char *ns, json_t *body,
                     const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    int rc = check_create_rv(body, err);
    if (rc) {
        json_decref(body);
        return rc;
    }
    return create(r, k, ns, body, o, 1, out, oc, err);
}

/* ---- update and patch ------------------------------------------------------------ */

/*
 * Builds the object to store from the current one and what the client
 * sent (a full object for PUT, the patched object for PATCH): identity and
 * server-owned metadata from the current object, status from the current
 * object unless this is the status subresource (which takes only status),
 * generation raised when anything outside metadata and status changed.
 */
static int merge_update(const reg_kind_t *k, const json_t *cur, json_t *obj, int status,
                        int put, const char *name, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    const json_t *cmeta = json_object_get(cur, "metadata");
    const char *bname = reg__str_at(obj, "metadata.name");
    /* kube's checkName: a body (or a patch's result) without a name is
     * refused, never refilled from the URL. */
    if (!bname || !*bname)
        return err_set(err, ERR_BAD_REQUEST, "the name of the object (%s based on URL) was "
                       "undeterminable: name must be provided", name);
    if (strcmp(bname, name))
        return err_set(err, ERR_BAD_REQUEST,
                       "the name of the object (%s) does not match the name on the URL (%s)",
                       bname, name);
    const char *buid = reg__str_at(obj, "metadata.uid");
    const char *cuid = reg__str_at(cur, "metadata.uid");
    /* A PUT's uid is a precondition (409); a patch that changes it tries
     * to change an immutable field (422), as kube words both. */
    if (buid && *buid && cuid && strcmp(buid, cuid) && put)
        return reg__precondition_failed(k, name, "UID", buid, cuid, err);
    if (buid && *buid && cuid && strcmp(buid, cuid)) {
        char qk[200];
        snprintf(qk, sizeof qk, "%s.%s", k->kind, k->group);
        err_set(err, ERR_INVALID, "%s \"%s\" is invalid: metadata.uid: Invalid value: \"%s\": "
                "field is immutable", qk, name, buid);
        err_add_cause(err, "FieldValueInvalid", "metadata.uid", "Invalid value: \"%s\": field is "
                      "immutable", buid);
        return ERR_INVALID;
    }
    static const char *const kept[] = {"name", "namespace", "uid", "creationTimestamp",
                                       "generation", "deletionTimestamp",
                                       "deletionGracePeriodSeconds", NULL};
    int bad = 0;
    for (size_t i = 0; kept[i] && !bad; i++) {
        json_t *v = json_object_get(cmeta, kept[i]);
        if (v)
            bad = json_object_set(meta, kept[i], v);
        else
            json_object_del(meta, kept[i]);
    }
    if (bad) {
        /* obj is the caller's to release, half merged. */
    } else if (status) {
        /* /status: everything but status comes from the current object;
         * kube lets metadata through for CRDs only in part, keep it all. */
        json_t *st = json_incref(json_object_get(obj, "status"));
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(obj, tmp, key, v) {
            if (strcmp(key, "metadata"))
                json_object_del(obj, key);
        }
        json_object_foreach((json_t *)cur, key, v) {
            if (!bad && strcmp(key, "metadata") && strcmp(key, "status"))
                bad = json_object_set(obj, key, v);
        }
        if (st && !bad)
            bad = json_object_set_new(obj, "status", st);
        else
            json_decref(st);
    } else if (k->has_status) {
        json_t *st = json_object_get(cur, "status");
        if (st)
            bad = json_object_set(obj, "status", st);
        else
            json_object_del(obj, "status");
    }
    json_int_t gen = json_integer_value(json_object_get(cmeta, "generation"));
    if (!bad && !reg__spec_equal(cur, obj))
        bad = json_object_set_new(meta, "generation", json_integer(gen + 1));
    return bad ? err_set(err, ERR_NOMEM, NULL) : 0;
}

/* Finalizers gone from an object being deleted: it goes now. */
static int deleting_done(const json_t *obj)
{
    return reg__at(obj, "metadata.deletionTimestamp") &&
           json_array_size(reg__at(obj, "metadata.finalizers")) == 0;
}

/* Stores obj in cur's place (at: cur's revision) or, its finalizers done,
 * deletes it. The claim obj took is given back when that fails (or obj
 * went); cur's is released once obj no longer holds it. The store's code,
 * its details in se; *bytes (mem_free) is the text stored. */
static int store_replace(reg_t *r, const reg_kind_t *k, const char *key, const json_t *cur,
                         const json_t *obj, uint64_t at, const reg__claim_t *claim,
                         uint64_t *rev, char **bytes, size_t *len, err_t *se)
{
    int gone = deleting_done(obj), rc;
    if (gone) {
        rc = store_delete(r->store, key, at, rev, NULL, se);
    } else {
        *bytes = reg__encode_for_store(obj, len);
        rc = *bytes ? store_update(r->store, key, *bytes, *len, at, rev, NULL, se)
                    : err_set(se, ERR_NOMEM, NULL);
    }
    if (rc || gone)
        reg__unique_undo(r, claim);
    if (!rc)
        reg__unique_release(r, k, cur, gone ? NULL : obj);
    return rc;
}

typedef enum { UPD_PUT, UPD_PATCH } upd_kind_t;

/* The update loop shared by PUT and PATCH: read, transform, CAS; a race
 * the client did not pin a resourceVersion for is retried. */
typedef struct upd {
    upd_kind_t kind;
    const json_t *body;          /* PUT */
    const char *ctype;           /* PATCH */
    const char *patch;
    size_t patch_len;
    json_t *patch_doc;           /* decoded once */
} upd_t;

/*
 * k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager lastAppliedManager:
 * when the manager "kubectl" moves from client-side to server-side apply,
 * conflicts with "kubectl-client-side-apply" over fields recorded in the
 * kubectl.kubernetes.io/last-applied-configuration annotation are not
 * conflicts. Every conflict must be with that manager (apply decides on
 * its entries), and the annotation must be there. The manager to yield
 * to, or NULL.
 */
static const char *csa_takeover_from(const json_t *cur, const char *manager)
{
    if (!manager || strcmp(manager, "kubectl"))
        return NULL;
    const json_t *ann = reg__at(cur, "metadata.annotations");
    if (!json_string_value(json_object_get(ann, "kubectl.kubernetes.io/last-applied-configuration")))
        return NULL;
    return "kubectl-client-side-apply";
}

static int patch_apply_once(const reg_kind_t *k, const upd_t *u, const json_t *cur,
                            int status, const reg_write_opts_t *o, json_t **out, err_t *err)
{
    const char *ct = u->ctype;
    if (!strncmp(ct, "application/json-patch+json", 27))
        return patch_json(cur, u->patch_doc, out, err);
    if (!strncmp(ct, "application/merge-patch+json", 28))
        return patch_merge(cur, u->patch_doc, out, err);
    if (!strncmp(ct, "application/strategic-merge-patch+json", 38))
        return patch_strategic(cur, u->patch_doc, k->list_rules, out, err);
    if (!strncmp(ct, "application/apply-patch+yaml", 28) ||
        !strncmp(ct, "application/apply-patch+json", 28)) {
        char now[32], av[160];
        reg__now_rfc3339(now);
        reg__api_version_of(k, av, sizeof av);
        json_t *applied = json_deep_copy(u->patch_doc);
        if (!applied)
            return err_set(err, ERR_NOMEM, NULL);
        /* The main resource's apply ignores status; /status's apply
         * owns nothing but status. */
        if (k->has_status && !status) {
            json_object_del(applied, "status");
        } else if (status) {
            const char *key;
            json_t *v;
            void *tmp;
            json_object_foreach_safe(applied, tmp, key, v) {
                if (strcmp(key, "apiVersion") && strcmp(key, "kind") &&
                    strcmp(key, "metadata") && strcmp(key, "status"))
                    json_object_del(applied, key);
            }
        }
        const char *sub = status ? "status" : "";
        /* kube's lastAppliedManager: `kubectl apply --server-side` takes
         * over what `kubectl apply` owned through its annotation. */
        int rc = apply_patch_yielding(cur, applied, o->field_manager, sub, o->force,
                                      csa_takeover_from(cur, o->field_manager), av, now,
                                      k->list_rules, out, err);
        json_decref(applied);
        return rc;
    }
    return err_set(err, ERR_UNSUPPORTED_MEDIA, "the body of the request was in an unknown "
                   "format - accepted media types include: application/json-patch+json, "
                   "application/merge-patch+json, application/apply-patch+yaml, "
                   "application/strategic-merge-patch+json");
}

static int is_apply(const upd_t *u)
{
    return u->kind == UPD_PATCH && (!strncmp(u->ctype, "application/apply-patch+yaml", 28) ||
                                    !strncmp(u->ctype, "application/apply-patch+json", 28));
}

static int do_update(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                     const upd_t *u, int status, const reg_write_opts_t *o, json_t **out,
                     reg_outcome_t *oc, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    if (reg__make_key(k, ns, name, key, sizeof key))
        return reg__store_error(k, name, ERR_NOT_FOUND, NULL, err);
    if (k->create_only)
        return err_set(err, ERR_METHOD_NOT_ALLOWED, "%s only supports create", k->resource);
    for (int attempt = 0;; attempt++) {
        store_value_t v = {0};
        json_t *cur = NULL, *obj = NULL;
        err_t se;
        err_clear(&se);
        int rc = store_get(r->store, key, &v, &se);
        if (rc == ERR_NOT_FOUND && is_apply(u) && !status) {
            /* Apply creates what is absent. */
            json_t *created = NULL;
            json_t *body = json_deep_copy(u->patch_doc);
            json_t *meta = json_object_get(body, "metadata");
            if (body && !json_is_object(meta)) {
                meta = json_object();
                if (json_object_set_new(body, "metadata", meta))
                    meta = NULL;
            }
            if (!meta) {
                json_decref(body);
                return err_set(err, ERR_NOMEM, NULL);
            }
            const char *bname = json_string_value(json_object_get(meta, "name"));
            if (bname && *bname && strcmp(bname, name)) {
                json_decref(body);
                return err_set(err, ERR_BAD_REQUEST, "the name of the object (%s) does not "
                               "match the name on the URL (%s)", bname, name);
            }
            if (json_object_set_new(meta, "name", json_string(name))) {
                json_decref(body);
                return err_set(err, ERR_NOMEM, NULL);
            }
            char now[32], av[160];
            reg__now_rfc3339(now);
            reg__api_version_of(k, av, sizeof av);
            if (k->has_status)
                json_object_del(body, "status");
            rc = apply_patch(NULL, body, o->field_manager, o->force, av, now, k->list_rules,
                             &created, err);
            json_decref(body);
            if (rc)
                return rc;
            return create(r, k, ns, created, o, 0, out, oc, err);
        }
        if (rc)
            return reg__store_error(k, name, rc, &se, err);
        rc = reg__decode_stored(v.data, v.len, v.mod_rev, &cur, err);
        if (rc) {
            store_value_free(&v);
            return rc;
        }
        const char *want_rv = NULL;
        if (u->kind == UPD_PUT) {
            obj = json_deep_copy(u->body);
            if (!obj)
                rc = err_set(err, ERR_NOMEM, NULL);
        } else {
            rc = patch_apply_once(k, u, cur, status, o, &obj, err);
            /* A patch may carry a resourceVersion precondition. */
            if (!rc && reg__str_at(u->patch_doc, "metadata.resourceVersion"))
                want_rv = reg__str_at(u->patch_doc, "metadata.resourceVersion");
        }
        if (!rc && u->kind == UPD_PUT)
            want_rv = reg__str_at(obj, "metadata.resourceVersion");
        if (!rc)
            rc = reg__check_type(k, obj, u->kind == UPD_PUT ? ERR_BAD_REQUEST : ERR_INVALID, err);
        /* want_rv points into obj, which the steps below rewrite: what
         * the retry below needs is only whether the client pinned one. */
        int pinned = want_rv && *want_rv;
        if (!rc && pinned && strcmp(want_rv, reg__str_at(cur, "metadata.resourceVersion")))
            rc = reg__store_error(k, name, ERR_CONFLICT, NULL, err);
        if (!rc)
            rc = reg__check_namespace(k, obj, ns, err);
        if (!rc)
            rc = merge_update(k, cur, obj, status, u->kind == UPD_PUT, name, err);
        if (!rc && k->prepare)
            rc = k->prepare(obj, r->cluster, err);
        if (!rc)
            rc = reg__check_object(k, obj, cur, o->field_validation, oc, err);
        if (!rc)
            rc = reg_admit(r, k, o->user, u->kind == UPD_PUT ? "update" : "patch", cur, obj, err);
        if (!rc && !is_apply(u)) {
            char now[32], av[160];
            reg__now_rfc3339(now);
            reg__api_version_of(k, av, sizeof av);
            char mgr[130];
            rc = apply_track_update_sub(cur, obj, reg__manager_of(o, mgr, sizeof mgr),
                                        status ? "status" : "", av, now, k->list_rules, err);
        }
        if (rc) {
            json_decref(obj);
            json_decref(cur);
            store_value_free(&v);
            return rc;
        }
        /* A no-op writes nothing and keeps the resourceVersion. */
        if (json_object_set(json_object_get(obj, "metadata"), "resourceVersion",
                            json_object_get(json_object_get(cur, "metadata"), "resourceVersion"))) {
            json_decref(obj);
            json_decref(cur);
            store_value_free(&v);
            return err_set(err, ERR_NOMEM, NULL);
        }
        reg__claim_t claim;
        rc = reg__unique_take(r, k, obj, cur, o->dry_run, &claim, err);
        if (rc || json_equal(obj, cur) || o->dry_run) {
            json_decref(cur);
            store_value_free(&v);
            if (rc) {
                json_decref(obj);
                return rc;
            }
            *out = obj;
            return 0;
        }
        uint64_t rev = 0;
        char *bytes = NULL;
        size_t len = 0;
        rc = store_replace(r, k, key, cur, obj, v.mod_rev, &claim, &rev, &bytes, &len, &se);
        json_decref(cur);
        store_value_free(&v);
        if (rc == ERR_CONFLICT && !pinned && attempt < REG_CAS_RETRIES) {
            /* Someone wrote in between; the client did not pin a version. */
            json_decref(obj);
            mem_free(bytes);
            continue;
        }
        if (rc) {
            json_decref(obj);
            mem_free(bytes);
            return reg__store_error(k, name, rc, &se, err);
        }
        rc = finish_write(obj, rev, out, bytes, len, oc, err);
        mem_free(bytes);
        return rc;
    }
}

int reg_update(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
               const json_t *body, int status, const reg_write_opts_t *o, json_t **out,
               reg_outcome_t *oc, err_t *err)
{
    if (status && !k->has_status)
        return err_set(err, ERR_NOT_FOUND, "the server could not find the requested resource");
    upd_t u = {.kind = UPD_PUT, .body = body};
    return do_update(r, k, ns, name, &u, status, o, out, oc, err);
}

int reg_patch(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
              const char *content_type, const char *body, size_t len, int status,
              const reg_write_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    if (status && !k->has_status)
        return err_set(err, ERR_NOT_FOUND, "the server could not find the requested resource");
    upd_t u = {.kind = UPD_PATCH, .ctype = content_type ? content_type : "",
               .patch = body, .patch_len = len};
    /* The patch type first: a body of no known type is not read. */
    static const char *const types[] = {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml",
        "application/apply-patch+json", NULL};
    size_t tl = strcspn(u.ctype, "; ");
    int known = 0;
    for (size_t i = 0; types[i] && !known; i++)
        known = strlen(types[i]) == tl && !strncmp(u.ctype, types[i], tl);
    if (!known)
        return err_set(err, ERR_UNSUPPORTED_MEDIA, "the body of the request was in an unknown "
                       "format - accepted media types include: application/json-patch+json, "
                       "application/merge-patch+json, application/apply-patch+yaml, "
                       "application/strategic-merge-patch+json");
    json_error_t je;
    u.patch_doc = jtok_loadb(body, len, 0, &je);
    if (!u.patch_doc && is_apply(&u)) {
        /* kubectl sends apply configurations as JSON; others send YAML. */
        int rc = yml_to_json(body, len, &u.patch_doc, err);
        if (rc)
            return rc;
        if (!json_is_object(u.patch_doc)) {
            json_decref(u.patch_doc);
            return err_set(err, ERR_BAD_REQUEST, "error decoding YAML: not an object");
        }
    }
    if (!u.patch_doc)
        return err_set(err, ERR_BAD_REQUEST, "error decoding patch: %s", je.text);
    if (is_apply(&u) && (!o->field_manager || !*o->field_manager)) {
        json_decref(u.patch_doc);
        err_add_cause(err, "FieldValueRequired", "fieldManager", "Required value: is required for apply patch");
        return err_set(err, ERR_INVALID,
                       "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                       "value: is required for apply patch");
    }
    if (!is_apply(&u) && o->force) {
        json_decref(u.patch_doc);
        err_add_cause(err, "FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch");
        return err_set(err, ERR_INVALID,
                       "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be "
                       "specified for non-apply patch");
    }
    /* kube's merge patch is an object (evanphx/json-patch's MergePatch
     * refuses anything else), where RFC 7386 would replace the object. */
    if (!strncmp(u.ctype, "application/merge-patch+json", 28) && !json_is_object(u.patch_doc)) {
        json_decref(u.patch_doc);
        return err_set(err, ERR_BAD_REQUEST, "Invalid JSON Patch");
    }
    /* kube's maxJSONPatchOperations. */
    if (!strncmp(u.ctype, "application/json-patch+json", 27) &&
        json_array_size(u.patch_doc) > REG_MAX_JSON_PATCH_OPS) {
        size_t n = json_array_size(u.patch_doc);
        json_decref(u.patch_doc);
        return err_set(err, ERR_REQUEST_TOO_LARGE, "The allowed maximum operations in a JSON "
                       "patch is %d, got %zu", REG_MAX_JSON_PATCH_OPS, n);
    }
    /* An apply names the object it configures (kube's checkName). */
    const char *an = is_apply(&u) ? reg__str_at(u.patch_doc, "metadata.name") : NULL;
    if (an && *an && strcmp(an, name)) {
        int rc = err_set(err, ERR_BAD_REQUEST, "the name of the object (%s) does not match the "
                         "name on the URL (%s)", an, name);
        json_decref(u.patch_doc);
        return rc;
    }
    int rc = do_update(r, k, ns, name, &u, status, o, out, oc, err);
    json_decref(u.patch_doc);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------ */

/* verb: as authorized, "delete" or "deletecollection" (admission checks it
 * again where the object acts). */
static int delete_obj(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
                      const reg_delete_opts_t *o, const char *verb, json_t **out,
                      reg_outcome_t *oc, err_t *err)
{
    char key[STORE_MAX_KEY + 1];
    if (reg__make_key(k, ns, name, key, sizeof key))
        return reg__store_error(k, name, ERR_NOT_FOUND, NULL, err);
    for (int attempt = 0;; attempt++) {
        store_value_t v = {0};
        json_t *cur = NULL;
        err_t se;
        err_clear(&se);
        int rc = store_get(r->store, key, &v, &se);
        if (rc)
            return reg__store_error(k, name, rc, &se, err);
        rc = reg__decode_stored(v.data, v.len, v.mod_rev, &cur, err);
        uint64_t at = v.mod_rev;
        store_value_free(&v);
        if (rc)
            return rc;
        /* An object stored without a uid fails a uid precondition, as
         * kube's does: its uid is "". */
        const char *uid = reg__str_at(cur, "metadata.uid");
        const char *rv = reg__str_at(cur, "metadata.resourceVersion");
        if (o->precondition_uid && *o->precondition_uid &&
            (!uid || strcmp(o->precondition_uid, uid))) {
            rc = reg__precondition_failed(k, name, "UID", o->precondition_uid, uid, err);
            json_decref(cur);
            return rc;
        }
        if (o->precondition_rv && *o->precondition_rv && (!rv || strcmp(o->precondition_rv, rv))) {
            rc = reg__precondition_failed(k, name, "ResourceVersion", o->precondition_rv, rv, err);
            json_decref(cur);
            return rc;
        }
        rc = reg_admit(r, k, o->user, verb, cur, NULL, err);
        if (rc) {
            json_decref(cur);
            return rc;
        }
        json_t *meta = json_object_get(cur, "metadata");
        /* Held by finalizers: mark it and answer 202 with the object;
         * otherwise remove it. Either way one compare-and-swap write. */
        int held = json_array_size(json_object_get(meta, "finalizers")) > 0;
        if (held)
            oc->accepted = 1;
        if (o->dry_run || (held && json_object_get(meta, "deletionTimestamp"))) {
            *out = cur;
            return 0;
        }
        uint64_t rev = 0;
        if (held) {
            char now[32];
            reg__now_rfc3339(now);
            size_t len;
            char *bytes = NULL;
            if (!json_object_set_new(meta, "deletionTimestamp", json_string(now)) &&
                !json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0)))
                bytes = reg__encode_for_store(cur, &len);
            rc = bytes ? store_update(r->store, key, bytes, len, at, &rev, NULL, &se)
                       : err_set(&se, ERR_NOMEM, NULL);
            mem_free(bytes);
        } else {
            rc = store_delete(r->store, key, at, &rev, NULL, &se);
        }
        if (rc == ERR_CONFLICT && attempt < REG_CAS_RETRIES) {
            json_decref(cur);
            continue;
        }
        if (rc) {
            json_decref(cur);
            return reg__store_error(k, name, rc, &se, err);
        }
        if (!held)
            reg__unique_release(r, k, cur, NULL);
        /* The marked object, or the deleted one at its deletion's revision. */
        return finish_write(cur, rev, out, NULL, 0, NULL, err);
    }
}

int reg_delete(reg_t *r, const reg_kind_t *k, const char *ns, const char *name,
               const reg_delete_opts_t *o, json_t **out, reg_outcome_t *oc, err_t *err)
{
    return delete_obj(r, k, ns, name, o, "delete", out, oc, err);
}

int reg_delete_collection(reg_t *r, const reg_kind_t *k, const char *ns,
                          const reg_list_opts_t *lo, const reg_delete_opts_t *o, json_t **out,
                          err_t *err)
{
    json_t *list = NULL;
    reg_list_opts_t all = *lo;
    all.limit = 0;
    all.continue_token = NULL;
    int rc = reg_list(r, k, ns, &all, &list, err);
    if (rc)
        return rc;
    json_t *deleted = json_array();
    if (!deleted) {
        rc = err_set(err, ERR_NOMEM, NULL);
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it) {
        json_t *d = NULL;
        reg_outcome_t oc = {0};
        err_t e;
        err_clear(&e);
        reg_delete_opts_t one = *o;
        one.precondition_rv = one.precondition_uid = NULL;
        rc = delete_obj(r, k, reg__str_at(it, "metadata.namespace"), reg__str_at(it, "metadata.name"),
                        &one, "deletecollection", &d, &oc, &e);
        if (rc == ERR_NOT_FOUND) {
            rc = 0;
            continue;  /* gone meanwhile */
        }
        /* What is deleted stays deleted; the request still fails, as
         * kube's DeleteCollection does, rather than answer success with
         * part of the selection. */
        if (rc) {
            err_forward(err, &e);
            goto out;
        }
        if (json_array_append_new(deleted, d)) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
    }
    rc = json_object_set(list, "items", deleted) ? err_set(err, ERR_NOMEM, NULL) : 0;
out:
    json_decref(deleted);
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

