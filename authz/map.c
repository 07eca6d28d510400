/*
 * The authorizer's string map and pointer arrays (authz_internal.h).
 */
#include <stdint.h>
#include <string.h>

#include "../storage/mem.h"
#include "authz_internal.h"

/* FNV-1a: short keys, good spread, no allocation. */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t slot_of_h(const authz__map_t *m, const char *key, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->e[i].key && (m->e[i].hash != h || strcmp(m->e[i].key, key)))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static size_t slot_of(const authz__map_t *m, const char *key)
{
    return slot_of_h(m, key, hash(key));
}

void *authz__map_get(const authz__map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    return m->e[i].key ? m->e[i].val : NULL;
}

static int grow(authz__map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct authz__map_entry *e = mem_calloc(cap, sizeof *e);
    if (!e)
        return ERR_NOMEM;
    authz__map_t n = {cap, m->n, e};
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key)
            e[slot_of_h(&n, m->e[i].key, m->e[i].hash)] = m->e[i];
    mem_free(m->e);
    *m = n;
    return 0;
}

int authz__map_put(authz__map_t *m, const char *key, void *val, void **old)
{
    if (old)
        *old = NULL;
    /* At most half full: lookups that miss (most of a decision's) stay short. */
    if ((m->n + 1) * 2 > m->cap && grow(m))
        return ERR_NOMEM;
    uint64_t h = hash(key);
    size_t i = slot_of_h(m, key, h);
    if (m->e[i].key) {
        if (old)
            *old = m->e[i].val;
        m->e[i].val = val;
        return 0;
    }
    char *k = mem_strdup(key);
    if (!k)
        return ERR_NOMEM;
    m->e[i].key = k;
    m->e[i].val = val;
    m->e[i].hash = h;
    m->n++;
    return 0;
}

void *authz__map_del(authz__map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    if (!m->e[i].key)
        return NULL;
    void *val = m->e[i].val;
    mem_free(m->e[i].key);
    m->e[i].key = NULL;
    m->n--;
    /* Backward-shift deletion keeps every probe chain unbroken. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!m->e[j].key)
            break;
        size_t home = (size_t)m->e[j].hash & (m->cap - 1);
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        m->e[i] = m->e[j];
        m->e[j].key = NULL;
        i = j;
    }
    return val;
}

void authz__map_free(authz__map_t *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->e[i].key)
            continue;
        mem_free(m->e[i].key);
        if (free_val)
            free_val(m->e[i].val);
    }
    mem_free(m->e);
    memset(m, 0, sizeof *m);
}

int authz__ptrs_add(authz__ptrs_t *p, void *v)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        void **nv = mem_realloc(p->v, cap * sizeof *nv);
        if (!nv)
            return ERR_NOMEM;
        p->v = nv;
        p->cap = cap;
    }
    p->v[p->n++] = v;
    return 0;
}

void authz__ptrs_remove(authz__ptrs_t *p, void *v)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i] == v) {
            memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof *p->v);
            p->n--;
            return;
        }
    }
}

void authz__ptrs_free(authz__ptrs_t *p)
{
    mem_free(p->v);
    memset(p, 0, sizeof *p);
}
