/*
 * The authorizer's life cycle and the user helpers (authz.h).
 */
#include "authz_internal.h"

#include <stdio.h>
#include <string.h>

#include "../lib/mem.h"

void authz_user_reset(authz_user_t *u)
{
    u->name[0] = '\0';
    u->uid[0] = '\0';
    u->ngroups = 0;
    u->nextra = 0;
    u->overflow = 0;
    u->used = 0;
}

void authz_user_copy(authz_user_t *d, const authz_user_t *s)
{
    memcpy(d->name, s->name, sizeof d->name);
    memcpy(d->uid, s->uid, sizeof d->uid);
    d->ngroups = s->ngroups;
    d->nextra = s->nextra;
    d->overflow = s->overflow;
    d->used = s->used;
    memcpy(d->group, s->group, s->ngroups * sizeof d->group[0]);
    memcpy(d->extra, s->extra, s->nextra * sizeof d->extra[0]);
    memcpy(d->text, s->text, s->used);
}

/* Copies at most max - 1 bytes of str into u's text; its offset, or -1
 * when the text area is full. */
static long user_text(authz_user_t *u, const char *str, size_t max)
{
    size_t len = strnlen(str, max - 1);
    if (u->used + len + 1 > sizeof u->text)
        return -1;
    size_t at = u->used;
    memcpy(u->text + at, str, len);
    u->text[at + len] = '\0';
    u->used += len + 1;
    return (long)at;
}

void authz_user_add_group(authz_user_t *u, const char *group)
{
    if (authz_user_in_group(u, group))
        return;
    long at = u->ngroups < AUTHZ_MAX_GROUPS && strlen(group) < AUTHZ_MAX_GROUP_LEN
                  ? user_text(u, group, AUTHZ_MAX_GROUP_LEN)
                  : -1;
    if (at < 0) {
        u->overflow = 1;
        return;
    }
    u->group[u->ngroups++] = (uint16_t)at;
}

const char *authz_user_group(const authz_user_t *u, size_t i)
{
    return u->text + u->group[i];
}

int authz_user_in_group(const authz_user_t *u, const char *group)
{
    for (size_t i = 0; i < u->ngroups; i++)
        if (!strcmp(authz_user_group(u, i), group))
            return 1;
    return 0;
}

int authz_user_add_extra(authz_user_t *u, const char *key, const char *value)
{
    if (u->nextra == AUTHZ_MAX_EXTRA)
        return -1;
    size_t used = u->used;
    long k = user_text(u, key, AUTHZ_MAX_EXTRA_KEY);
    long v = k < 0 ? -1 : user_text(u, value, AUTHZ_MAX_EXTRA_VALUE);
    if (v < 0) {
        u->used = used;
        return -1;
    }
    u->extra[u->nextra].key = (uint16_t)k;
    u->extra[u->nextra].value = (uint16_t)v;
    u->nextra++;
    return 0;
}

const char *authz_user_extra_key(const authz_user_t *u, size_t i)
{
    return u->text + u->extra[i].key;
}

const char *authz_user_extra_value(const authz_user_t *u, size_t i)
{
    return u->text + u->extra[i].value;
}

json_t *authz_user_groups_json(const authz_user_t *u)
{
    json_t *groups = json_array();
    for (size_t i = 0; groups && i < u->ngroups; i++) {
        if (json_array_append_new(groups, json_string(authz_user_group(u, i)))) {
            json_decref(groups);
            return NULL;
        }
    }
    return groups;
}

json_t *authz_user_extra_json(const authz_user_t *u)
{
    json_t *extra = json_object();
    for (size_t i = 0; extra && i < u->nextra; i++) {
        const char *key = authz_user_extra_key(u, i);
        json_t *vals = json_object_get(extra, key);
        if (!vals && json_object_set_new(extra, key, vals = json_array()))
            vals = NULL;
        if (!vals || json_array_append_new(vals, json_string(authz_user_extra_value(u, i)))) {
            json_decref(extra);
            return NULL;
        }
    }
    return extra;
}

int authz_new(store_t *store, const char *cluster_name, authz_t **out, err_t *err)
{
    authz_t *a = mem_calloc(1, sizeof *a);
    if (!a)
        return err_set(err, ERR_NOMEM, NULL);
    a->store = store;
    a->cluster = mem_strdup(cluster_name && *cluster_name ? cluster_name : "host");
    if (!a->cluster) {
        mem_free(a);
        return err_set(err, ERR_NOMEM, NULL);
    }
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writer preference: an index update must not wait behind a stream
     * of decisions. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&a->lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    int rc = authz__index_start(a, err);
    if (rc) {
        authz_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void authz_free(authz_t *a)
{
    if (!a)
        return;
    authz__index_stop(a);
    authz__index_free(a);
    pthread_rwlock_destroy(&a->lock);
    mem_free(a->cluster);
    mem_free(a);
}

uint64_t authz_revision(authz_t *a)
{
    pthread_rwlock_rdlock(&a->lock);
    uint64_t r = a->rev;
    pthread_rwlock_unlock(&a->lock);
    return r;
}
