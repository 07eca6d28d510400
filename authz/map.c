/*
 * The authorizer's string map, pointer arrays and multi-maps
 * (authz_internal.h).
 */
#include <stdint.h>
#include <string.h>

#include "../lib/mem.h"
#include "authz_internal.h"

/* FNV-1a: short keys, good spread, no allocation. */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/*
 * Where a key's probe starts. An owned map's capacity is a power of two
 * and the hash's low bits pick the slot, as they always have (the order of
 * AUTHZ_MAP_EACH depends on it). A borrowed map's capacity grows by half,
 * so it is never less than half full; its slot is the hash scaled to the
 * capacity (multiply-shift), after mixing, since FNV-1a leaves a key's
 * last byte in few of the high bits.
 */
static size_t home(const authz__map_t *m, uint64_t h)
{
    if (!(m->flags & AUTHZ__MAP_BORROWED))
        return (size_t)h & (m->cap - 1);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (size_t)(((h >> 32) * (uint64_t)m->cap) >> 32);
}

static size_t next(const authz__map_t *m, size_t i) { return i + 1 == m->cap ? 0 : i + 1; }

static size_t slot_of_h(const authz__map_t *m, const char *key, uint64_t h)
{
    size_t i = home(m, h);
    while (m->e[i].key && (m->e[i].hash != h || strcmp(m->e[i].key, key)))
        i = next(m, i);
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
    size_t cap = !m->cap ? 16 : m->flags & AUTHZ__MAP_BORROWED ? m->cap + m->cap / 2 : m->cap * 2;
    struct authz__map_entry *e = mem_calloc(cap, sizeof *e);
    if (!e)
        return ERR_NOMEM;
    authz__map_t n = {.cap = cap, .n = m->n, .flags = m->flags, .e = e};
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
    int borrowed = m->flags & AUTHZ__MAP_BORROWED;
    /* Owned maps at most half full: lookups that miss (most of a
     * decision's) stay short. Borrowed maps, the big ones, up to 3/4. */
    size_t need = borrowed ? (m->n + 1) * 4 : (m->n + 1) * 2;
    size_t room = borrowed ? m->cap * 3 : m->cap;
    if (need > room && grow(m))
        return ERR_NOMEM;
    uint64_t h = hash(key);
    size_t i = slot_of_h(m, key, h);
    if (m->e[i].key) {
        if (old)
            *old = m->e[i].val;
        if (borrowed)
            m->e[i].key = key;
        m->e[i].val = val;
        return 0;
    }
    const char *k = borrowed ? key : mem_strdup(key);
    if (!k)
        return ERR_NOMEM;
    m->e[i].key = k;
    m->e[i].val = val;
    m->e[i].hash = h;
    m->n++;
    return 0;
}

void *authz__map_replace(authz__map_t *m, const char *key, void *val)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    if (!m->e[i].key)
        return NULL;
    void *old = m->e[i].val;
    if (m->flags & AUTHZ__MAP_BORROWED)
        m->e[i].key = key;
    m->e[i].val = val;
    return old;
}

void *authz__map_del(authz__map_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    if (!m->e[i].key)
        return NULL;
    void *val = m->e[i].val;
    if (!(m->flags & AUTHZ__MAP_BORROWED))
        mem_free((char *)m->e[i].key);
    m->e[i].key = NULL;
    m->n--;
    /* Backward-shift deletion keeps every probe chain unbroken. */
    size_t j = i;
    for (;;) {
        j = next(m, j);
        if (!m->e[j].key)
            break;
        size_t h = home(m, m->e[j].hash);
        int between = i <= j ? (h > i && h <= j) : (h > i || h <= j);
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
        if (!(m->flags & AUTHZ__MAP_BORROWED))
            mem_free((char *)m->e[i].key);
        if (free_val)
            free_val(m->e[i].val);
    }
    mem_free(m->e);
    *m = (authz__map_t){.flags = m->flags};
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

void authz__ptrs_free(authz__ptrs_t *p)
{
    mem_free(p->v);
    memset(p, 0, sizeof *p);
}

/* ---- multi-maps ---------------------------------------------------------------- */

const authz__bucket_t *authz__multi_get(const authz__map_t *m, const char *key)
{
    return authz__map_get(m, key);
}

void authz__bucket_free(void *p)
{
    authz__bucket_t *b = p;
    if (b && b->cap > AUTHZ__BUCKET_INLINE)
        mem_free(b->v.heap);
    mem_free(b);
}

int authz__multi_add(authz__map_t *m, const char *key, void *v)
{
    authz__bucket_t *b = authz__map_get(m, key);
    if (!b) {
        size_t len = strlen(key);
        b = mem_alloc(sizeof *b + len + 1);
        if (!b)
            return ERR_NOMEM;
        b->n = 0;
        b->cap = AUTHZ__BUCKET_INLINE;
        memcpy(b->key, key, len + 1);
        if (authz__map_put(m, b->key, b, NULL)) {
            mem_free(b);
            return ERR_NOMEM;
        }
    }
    if (b->n == b->cap) {
        /* Out of room: in place -> a heap array, or a bigger one. */
        uint32_t cap = b->cap * 2;
        void **nv;
        if (b->cap > AUTHZ__BUCKET_INLINE) {
            nv = mem_realloc(b->v.heap, cap * sizeof *nv);
        } else {
            nv = mem_alloc(cap * sizeof *nv);
            if (nv)
                memcpy(nv, b->v.in, b->n * sizeof *nv);
        }
        if (!nv)
            return ERR_NOMEM;  /* the bucket stays as it was */
        b->v.heap = nv;
        b->cap = cap;
    }
    void **items = b->cap > AUTHZ__BUCKET_INLINE ? b->v.heap : b->v.in;
    items[b->n++] = v;
    return 0;
}

void authz__multi_remove(authz__map_t *m, const char *key, void *v)
{
    authz__bucket_t *b = authz__map_get(m, key);
    if (!b)
        return;
    void **items = b->cap > AUTHZ__BUCKET_INLINE ? b->v.heap : b->v.in;
    uint32_t i = 0;
    while (i < b->n && items[i] != v)
        i++;
    if (i == b->n)
        return;
    /* Order is kept: a namespace's Workspaces are walked in it. */
    memmove(&items[i], &items[i + 1], (b->n - i - 1) * sizeof *items);
    b->n--;
    if (!b->n) {
        authz__map_del(m, key);
        authz__bucket_free(b);
    } else if (b->cap > AUTHZ__BUCKET_INLINE && b->n <= AUTHZ__BUCKET_INLINE) {
        void **heap = b->v.heap;
        memcpy(b->v.in, heap, b->n * sizeof *heap);
        b->cap = AUTHZ__BUCKET_INLINE;
        mem_free(heap);
    } else if (b->cap > AUTHZ__BUCKET_INLINE && b->n <= b->cap / 4) {
        /* Shrinking is optional: on failure the array stays as big. */
        void **nv = mem_realloc(b->v.heap, b->cap / 2 * sizeof *nv);
        if (nv) {
            b->v.heap = nv;
            b->cap /= 2;
        }
    }
}
