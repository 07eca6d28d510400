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
}

void authz_user_copy(authz_user_t *d, const authz_user_t *s)
{
    memcpy(d->name, s->name, sizeof d->name);
    memcpy(d->uid, s->uid, sizeof d->uid);
    d->ngroups = s->ngroups;
    d->overflow = s->overflow;
    memcpy(d->groups, s->groups, s->ngroups * sizeof d->groups[0]);
    d->nextra = s->nextra;
    memcpy(d->extra, s->extra, s->nextra * sizeof d->extra[0]);
}

void authz_user_add_group(authz_user_t *u, const char *group)
{
    if (authz_user_in_group(u, group))
        return;
    if (u->ngroups >= AUTHZ_MAX_GROUPS || strlen(group) >= AUTHZ_MAX_GROUP_LEN) {
        u->overflow = 1;
        return;
    }
    size_t len = strlen(group);  /* fits: checked above */
    memcpy(u->groups[u->ngroups++], group, len + 1);
}

int authz_user_in_group(const authz_user_t *u, const char *group)
{
    for (size_t i = 0; i < u->ngroups; i++)
        if (!strcmp(u->groups[i], group))
            return 1;
    return 0;
}

json_t *authz_user_groups_json(const authz_user_t *u)
{
    json_t *groups = json_array();
    for (size_t i = 0; groups && i < u->ngroups; i++) {
        if (json_array_append_new(groups, json_string(u->groups[i]))) {
            json_decref(groups);  /* never a list short of a group */
            return NULL;
        }
    }
    return groups;
}

json_t *authz_user_extra_json(const authz_user_t *u)
{
    json_t *extra = json_object();
    for (size_t i = 0; extra && i < u->nextra; i++) {
        json_t *vals = json_object_get(extra, u->extra[i].key);
        if (!vals) {
            vals = json_array();
            if (json_object_set_new(extra, u->extra[i].key, vals))  /* frees vals on failure */
                vals = NULL;
        }
        if (!vals || json_array_append_new(vals, json_string(u->extra[i].value))) {
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
