/*
 * Unique fields: the claims that keep a kind's unique field unique
 * (registry.h, reg_unique_t). A claim's value names its holder and when
 * it was taken: {"name", "namespace", "uid", "at"} ("at" in seconds since
 * the epoch). Every step is one store call on one key, so two writers
 * racing for a claim meet in the store: one create (or one
 * compare-and-swap over an orphan) wins, the other sees it taken.
 */
#include "reg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../lib/json/jenc.h"
#include "../lib/json/jtok.h"
#include "../lib/log.h"
#include "../lib/mem.h"

/* A takeover lost to another writer is tried again this many times. */
#define CLAIM_RETRIES 8

/* obj's claim key into buf: 1, or 0 when it claims nothing. */
static int claim_key(const reg_kind_t *k, const json_t *obj, char *buf, size_t n)
{
    return k->unique && obj && k->unique->key(obj, buf, n);
}

/* The claim value naming obj as holder (mem_alloc'd text), or NULL when
 * out of memory. */
static char *claim_value(const json_t *obj, size_t *len)
{
    json_t *v = json_pack("{s:s?, s:s?, s:s?, s:I}", "name", reg__str_at(obj, "metadata.name"),
                          "namespace", reg__str_at(obj, "metadata.namespace"),
                          "uid", reg__str_at(obj, "metadata.uid"),
                          "at", (json_int_t)time(NULL));
    char *txt = v ? jenc_dumps(v, len) : NULL;
    json_decref(v);
    return txt;
}

/* The stored claim decoded into *claim (new reference): 0; 0 with *claim
 * NULL when the bytes are no claim (an orphan nobody holds); ERR_NOMEM. */
static int claim_decode(const store_value_t *v, json_t **claim)
{
    *claim = NULL;
    int rc = reg__decode_stored(v->data, v->len, v->mod_rev, claim, NULL);
    return rc == ERR_NOMEM ? rc : 0;
}

static int same_uid(const json_t *claim, const json_t *obj)
{
    const char *a = reg__str_at(claim, "uid"), *b = reg__str_at(obj, "metadata.uid");
    return a && b && !strcmp(a, b);
}

/* 1 when the holder the claim names still holds it: stored with that uid
 * and that claim, or taken so recently that it may be on its way to
 * storage. 0: an orphan. An error (the holder unreadable) counts as held:
 * never take over what may be held. */
static int claim_held(reg_t *r, const reg_kind_t *k, const char *ckey, const json_t *claim)
{
    json_int_t at = json_integer_value(json_object_get(claim, "at"));
    json_int_t age = (json_int_t)time(NULL) - at;
    if (age > -REG_UNIQUE_GRACE_S && age < REG_UNIQUE_GRACE_S)
        return 1;
    char key[STORE_MAX_KEY + 1], hkey[STORE_MAX_KEY + 1];
    const char *name = reg__str_at(claim, "name");
    if (!name || reg__make_key(k, reg__str_at(claim, "namespace"), name, key, sizeof key))
        return 0;
    store_value_t v = {0};
    json_t *holder = NULL;
    int rc = store_get(r->store, key, &v, NULL);
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (!rc)
        rc = reg__decode_stored(v.data, v.len, v.mod_rev, &holder, NULL);
    store_value_free(&v);
    if (rc)
        return 1;
    int held = same_uid(claim, holder) && claim_key(k, holder, hkey, sizeof hkey) &&
               !strcmp(hkey, ckey);
    json_decref(holder);
    return held;
}

/* The 422 of a claim held by another: FieldValueDuplicate on the field. */
static int duplicate(const reg_kind_t *k, const json_t *obj, const json_t *claim, err_t *err)
{
    const char *value = json_string_value(reg__at(obj, k->unique->field));
    const char *holder = reg__str_at(claim, "name");
    REG_INVALID(err, "FieldValueDuplicate", k->unique->field,
                "Duplicate value: \"%s\": already used by %s \"%s\"", value ? value : "",
                k->kind, holder ? holder : "");
    return reg_invalid(k, reg__str_at(obj, "metadata.name"), err);
}

/* One attempt at the claim at c->key for obj: created, found ours, found
 * held (the 422), or an orphan taken over. ERR_CONFLICT: another writer
 * changed the claim meanwhile; look again. */
static int take_once(reg_t *r, const reg_kind_t *k, const json_t *obj, int dry_run,
                     const char *val, size_t len, reg__claim_t *c, err_t *err)
{
    const char *name = reg__str_at(obj, "metadata.name");
    err_t se;
    err_clear(&se);
    c->rev = 0;
    int rc = dry_run ? ERR_ALREADY_EXISTS : store_create(r->store, c->key, val, len, &c->rev, &se);
    if (rc != ERR_ALREADY_EXISTS)
        return rc ? reg__store_error(k, name, rc, &se, err) : 0;
    store_value_t v = {0};
    json_t *claim = NULL;
    rc = store_get(r->store, c->key, &v, &se);
    if (rc == ERR_NOT_FOUND)
        return dry_run ? 0 : ERR_CONFLICT;   /* released meanwhile */
    if (!rc)
        rc = claim_decode(&v, &claim);
    /* Ours already, held by another, or an orphan to take over. */
    if (!rc && !(claim && same_uid(claim, obj))) {
        if (claim && claim_held(r, k, c->key, claim))
            rc = duplicate(k, obj, claim, err);
        else if (!dry_run)
            rc = store_update(r->store, c->key, val, len, v.mod_rev, &c->rev, NULL, &se);
    }
    json_decref(claim);
    store_value_free(&v);
    if (rc && rc != ERR_INVALID && rc != ERR_CONFLICT)
        rc = reg__store_error(k, name, rc, &se, err);
    return rc;
}

int reg__unique_take(reg_t *r, const reg_kind_t *k, const json_t *obj, const json_t *old,
                     int dry_run, reg__claim_t *c, err_t *err)
{
    char prev[STORE_MAX_KEY + 1];
    c->rev = 0;
    if (!claim_key(k, obj, c->key, sizeof c->key))
        return 0;
    if (claim_key(k, old, prev, sizeof prev) && !strcmp(prev, c->key))
        return 0;                            /* claimed already */
    size_t len = 0;
    char *val = claim_value(obj, &len);
    if (!val)
        return err_set(err, ERR_NOMEM, NULL);
    int rc = ERR_CONFLICT;
    for (int i = 0; rc == ERR_CONFLICT && i < CLAIM_RETRIES; i++)
        rc = take_once(r, k, obj, dry_run, val, len, c, err);
    mem_free(val);
    if (rc == ERR_CONFLICT)
        rc = reg__store_error(k, reg__str_at(obj, "metadata.name"), rc, NULL, err);
    return rc;
}

void reg__unique_undo(reg_t *r, const reg__claim_t *c)
{
    if (!c->rev)
        return;
    int rc = store_delete(r->store, c->key, c->rev, NULL, NULL, NULL);
    if (rc && rc != ERR_NOT_FOUND && rc != ERR_CONFLICT)
        log_warning("registry: claim %s not given back (%s); it is an orphan now", c->key,
                    err_name(rc));
}

void reg__unique_release(reg_t *r, const reg_kind_t *k, const json_t *old, const json_t *obj)
{
    char key[STORE_MAX_KEY + 1], now[STORE_MAX_KEY + 1];
    if (!claim_key(k, old, key, sizeof key))
        return;
    if (claim_key(k, obj, now, sizeof now) && !strcmp(now, key))
        return;                              /* still holds it */
    store_value_t v = {0};
    json_t *claim = NULL;
    int rc = store_get(r->store, key, &v, NULL);
    if (rc == ERR_NOT_FOUND)
        return;
    if (!rc)
        rc = claim_decode(&v, &claim);
    if (!rc && claim && same_uid(claim, old))
        rc = store_delete(r->store, key, v.mod_rev, NULL, NULL, NULL);
    if (rc && rc != ERR_NOT_FOUND && rc != ERR_CONFLICT)
        log_warning("registry: claim %s not released (%s); it is an orphan now", key,
                    err_name(rc));
    json_decref(claim);
    store_value_free(&v);
}
