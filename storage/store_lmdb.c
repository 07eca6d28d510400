/*
 * The LMDB backend: the only file that includes lmdb.h.
 *
 * Schema (one environment, three named databases):
 *   meta     "current_rev", "compact_rev", "schema" -> be64
 *   objects  key bytes -> be64 mod_rev | be64 create_rev | value
 *            (live keys only: a delete removes the key; its tombstone lives
 *            in the event log)
 *   events   be64 rev -> event header | key | value | prev value
 *            (appended with MDB_APPEND; rows <= compact_rev are deleted)
 *
 * Writes: callers queue ops; one writer thread takes everything queued (up
 * to WRITER_BATCH), applies it in one write transaction, commits (LMDB's
 * default mode: data fdatasync, then the meta page; a power cut falls back
 * to the previous commit, never to a torn one), publishes the events, and
 * only then marks the ops done. Writers that arrive during a commit's fsync
 * share the next one: that is the group commit.
 *
 * Map growth: every transaction holds resize_lock shared, and the map is
 * moved (mdb_env_set_mapsize) only under it held exclusively, so that no
 * transaction of this process is active, as LMDB requires. On MDB_MAP_FULL
 * the writer aborts the batch, doubles the map and replays the batch. A
 * transaction that fails to begin with MDB_MAP_RESIZED (another process,
 * an LMDB tool say, wrote past this process's map) lets go of the lock,
 * adopts the size that process recorded (mdb_env_set_mapsize(env, 0))
 * under the exclusive lock, and begins again. map_size, the size the map
 * has, is written only there and read by the statistics and the page
 * release without the lock: it is accessed atomically throughout.
 *
 * One process: an flock on <data_dir>/LOCK refuses a second process (LMDB
 * itself would allow it, and two writers' revisions and watch fan-outs
 * would then diverge). Dead processes' reader slots are cleared at open.
 */
#include "store_internal.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/mem.h"
#include "../lib/log.h"

#define WRITER_BATCH 1024
#define COMPACT_BATCH 1000
#define OBJ_HDR 16
#define EV_HDR 36
#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#define SCHEMA_VERSION 1

typedef struct lmdb_store {
    MDB_env *env;
    MDB_dbi meta, objects, events;
    int lock_fd;
    char data_file[4096];        /* absolute path of data.mdb */
    _Atomic size_t map_size;     /* the map's size; see "Map growth" */
    pthread_rwlock_t resize_lock;
    /* Where data.mdb is mapped, read from /proc/self/maps once per map
     * size (it moves only on a resize) for release_mapped. */
    pthread_mutex_t maps_mu;
    size_t maps_for;             /* map_size they were read at; 0: never, or
                                    the map moved since */
    size_t nmaps;
    uintptr_t map_lo[4], map_hi[4];

    pthread_t writer;
    int writer_running;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;          /* work queued or stopping */
    store__op_t *qhead, *qtail;
    int stop;

    uint64_t current_rev;        /* writer thread only */
    uint64_t compact_rev;        /* writer thread only */
    _Atomic uint64_t commits, writes;
} lmdb_store_t;

/* ---- encoding ---------------------------------------------------------- */

static void put_be64(unsigned char *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

static uint64_t get_be64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* A decoded event row; pointers into the map (valid in its txn). */
typedef struct ev_row {
    int type;
    uint64_t rev, create_rev, prev_rev;
    const char *key, *value, *prev;
    size_t key_len, value_len, prev_len;
} ev_row_t;

static int ev_decode(const MDB_val *k, const MDB_val *v, ev_row_t *r)
{
    const unsigned char *p = v->mv_data;
    if (k->mv_size != 8 || v->mv_size < EV_HDR)
        return ERR_IO;
    r->rev = get_be64(k->mv_data);
    r->type = p[0];
    r->create_rev = get_be64(p + 4);
    r->prev_rev = get_be64(p + 12);
    r->key_len = get_u32(p + 20);
    r->value_len = get_u32(p + 24);
    r->prev_len = get_u32(p + 28);
    uint32_t flags = get_u32(p + 32);
    if (EV_HDR + r->key_len + r->value_len + r->prev_len != v->mv_size)
        return ERR_IO;
    r->key = (const char *)p + EV_HDR;
    r->value = (flags & 1) ? r->key + r->key_len : NULL;
    r->prev = (flags & 2) ? r->key + r->key_len + r->value_len : NULL;
    return 0;
}

/* ---- error conversion -------------------------------------------------- */

static int lm_err(int mrc, err_t *err, const char *what)
{
    int code = mrc == MDB_MAP_FULL || mrc == ENOSPC ? ERR_STORAGE_FULL
             : mrc == ENOMEM ? ERR_NOMEM
             : mrc == MDB_READERS_FULL ? ERR_UNAVAILABLE
             : ERR_IO;
    return err_set(err, code, "storage: %s: %s", what, mdb_strerror(mrc));
}

/* ---- the map -------------------------------------------------------------- */

#define MAX_ADOPTIONS 3          /* map sizes adopted per transaction begun */

/*
 * Moves the map: grow doubles it (the writer on MDB_MAP_FULL), else it
 * takes the size the environment's last commit recorded, which another
 * process may have grown it to (after MDB_MAP_RESIZED). The caller holds
 * no part of resize_lock: it is taken here exclusively, so no transaction
 * of this process is open while the map moves, as mdb_env_set_mapsize
 * requires. Publishes the new size in map_size and has the next page
 * release find where the map went. Returns 0 or an MDB error.
 */
static int remap(lmdb_store_t *l, int grow)
{
    pthread_rwlock_wrlock(&l->resize_lock);
    size_t want = grow ? atomic_load(&l->map_size) * 2 : 0;
    int mrc = mdb_env_set_mapsize(l->env, want);
    MDB_envinfo info;
    if (!mrc)
        mrc = mdb_env_info(l->env, &info);
    if (!mrc)
        atomic_store(&l->map_size, info.me_mapsize);
    pthread_mutex_lock(&l->maps_mu);
    l->maps_for = 0;
    pthread_mutex_unlock(&l->maps_mu);
    pthread_rwlock_unlock(&l->resize_lock);
    return mrc;
}

/* ---- read transactions -------------------------------------------------- */

static int rd_begin(lmdb_store_t *l, MDB_txn **txn, err_t *err)
{
    int mrc;
    for (int adopted = 0;; adopted++) {
        pthread_rwlock_rdlock(&l->resize_lock);
        mrc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn);
        if (!mrc)
            return 0;
        pthread_rwlock_unlock(&l->resize_lock);
        if (mrc != MDB_MAP_RESIZED || adopted == MAX_ADOPTIONS)
            break;
        /* Another process wrote past this map: adopt its size, once the
         * reads open in this process are done, and begin again. */
        mrc = remap(l, 0);
        if (mrc)
            break;
    }
    return lm_err(mrc, err, "begin read");
}

static void rd_end(lmdb_store_t *l, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&l->resize_lock);
}

static uint64_t meta_get(lmdb_store_t *l, MDB_txn *txn, const char *name)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    if (mdb_get(txn, l->meta, &k, &v) || v.mv_size != 8)
        return 0;
    return get_be64(v.mv_data);
}

static int meta_put(lmdb_store_t *l, MDB_txn *txn, const char *name, uint64_t val)
{
    unsigned char b[8];
    put_be64(b, val);
    MDB_val k = {strlen(name), (void *)name}, v = {8, b};
    return mdb_put(txn, l->meta, &k, &v, 0);
}

/* ---- the writer ---------------------------------------------------------- */

/* Applies one op inside txn. Returns 0 (op->rc says how the op went) or an
 * MDB error that fails the whole batch. *ev is the op's event, if any. */
static int apply_op(lmdb_store_t *l, MDB_txn *txn, store__op_t *op,
                    uint64_t *rev, store__event_t **ev)
{
    MDB_val k = {op->key_len, (void *)op->key}, old;
    int mrc = mdb_get(txn, l->objects, &k, &old);
    if (mrc && mrc != MDB_NOTFOUND)
        return mrc;
    int exists = mrc == 0;
    if (exists && old.mv_size < OBJ_HDR)
        return MDB_CORRUPTED;
    uint64_t old_mod = exists ? get_be64(old.mv_data) : 0;
    uint64_t old_create = exists ? get_be64((char *)old.mv_data + 8) : 0;
    const char *old_val = exists ? (char *)old.mv_data + OBJ_HDR : NULL;
    size_t old_len = exists ? old.mv_size - OBJ_HDR : 0;

    if (op->kind == STORE__CREATE && exists) {
        op->rc = err_set(&op->err, ERR_ALREADY_EXISTS, "key %.*s already exists",
                         (int)op->key_len, op->key);
        return 0;
    }
    if (op->kind != STORE__CREATE && !exists) {
        op->rc = err_set(&op->err, ERR_NOT_FOUND, "key %.*s not found",
                         (int)op->key_len, op->key);
        return 0;
    }
    if (op->kind != STORE__CREATE && op->expected_rev && op->expected_rev != old_mod) {
        op->rc = err_set(&op->err, ERR_CONFLICT,
                         "key %.*s is at revision %llu, not %llu", (int)op->key_len,
                         op->key, (unsigned long long)old_mod,
                         (unsigned long long)op->expected_rev);
        if (op->want_old &&
            store__value_copy(&op->old, old_val, old_len, old_mod, old_create))
            op->rc = ERR_NOMEM;
        return 0;
    }

    uint64_t r = *rev + 1;
    uint64_t create = op->kind == STORE__CREATE ? r : old_create;
    int is_del = op->kind == STORE__DELETE;
    store__event_t *e = store__event_new(is_del ? STORE_DELETE : STORE_PUT, r,
                                         create, old_mod, op->key, op->key_len,
                                         is_del ? NULL : op->val, is_del ? 0 : op->len,
                                         old_val, old_len);
    /* Only a delete hands back what it replaced. */
    if (!e || (op->want_old && is_del &&
               store__value_copy(&op->old, old_val, old_len, old_mod, old_create))) {
        store__event_unref(e);
        op->rc = err_set(&op->err, ERR_NOMEM, NULL);
        return 0;
    }

    /* The event row: header, key, value, prev. */
    size_t vlen = is_del ? 0 : op->len;
    MDB_val ek, evv;
    unsigned char rk[8];
    put_be64(rk, r);
    ek.mv_size = 8;
    ek.mv_data = rk;
    evv.mv_size = EV_HDR + op->key_len + vlen + old_len;
    mrc = mdb_put(txn, l->events, &ek, &evv, MDB_APPEND | MDB_RESERVE);
    if (mrc)
        goto fail;
    unsigned char *p = evv.mv_data;
    memset(p, 0, EV_HDR);
    p[0] = (unsigned char)e->pub.type;
    put_be64(p + 4, create);
    put_be64(p + 12, old_mod);
    put_u32(p + 20, (uint32_t)op->key_len);
    put_u32(p + 24, (uint32_t)vlen);
    put_u32(p + 28, (uint32_t)old_len);
    put_u32(p + 32, (is_del ? 0u : 1u) | (exists ? 2u : 0u));
    memcpy(p + EV_HDR, op->key, op->key_len);
    if (vlen)
        memcpy(p + EV_HDR + op->key_len, op->val, vlen);
    /* old_val pointed into the map, which the put above may have changed:
     * use the event's copy, taken before any write. */
    if (old_len)
        memcpy(p + EV_HDR + op->key_len + vlen, e->pub.prev_value, old_len);

    if (is_del) {
        mrc = mdb_del(txn, l->objects, &k, NULL);
    } else {
        MDB_val ov = {OBJ_HDR + op->len, NULL};
        mrc = mdb_put(txn, l->objects, &k, &ov, MDB_RESERVE);
        if (!mrc) {
            put_be64(ov.mv_data, r);
            put_be64((unsigned char *)ov.mv_data + 8, create);
            memcpy((char *)ov.mv_data + OBJ_HDR, op->val, op->len);
        }
    }
    if (mrc)
        goto fail;
    *rev = r;
    op->rev = r;
    op->rc = 0;
    *ev = e;
    return 0;
fail:
    store__event_unref(e);
    store_value_free(&op->old);
    return mrc;
}

/* Raises compact_rev (first, in the same transaction as the first
 * deletions, so a reader never sees a partly deleted range it believes
 * intact) and deletes up to COMPACT_BATCH event rows at or below it. */
static int apply_compact(lmdb_store_t *l, MDB_txn *txn, store__op_t *op)
{
    uint64_t target = op->expected_rev;
    if (target > l->current_rev)
        target = l->current_rev;
    if (target < l->compact_rev)
        target = l->compact_rev;
    int mrc = meta_put(l, txn, "compact_rev", target);
    if (mrc)
        return mrc;
    MDB_cursor *c;
    mrc = mdb_cursor_open(txn, l->events, &c);
    if (mrc)
        return mrc;
    MDB_val k, v;
    int n = 0;
    op->more = 0;
    while ((mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        if (get_be64(k.mv_data) > target)
            break;
        if (n == COMPACT_BATCH) {
            op->more = 1;
            break;
        }
        mrc = mdb_cursor_del(c, 0);
        if (mrc)
            break;
        n++;
    }
    mdb_cursor_close(c);
    if (mrc && mrc != MDB_NOTFOUND)
        return mrc;
    op->rev = target;
    op->rc = 0;
    return 0;
}

/* Wakes exactly the callers of this batch, each on its own semaphore. */
static void writer_finish(lmdb_store_t *l, store__op_t **batch, size_t n)
{
    (void)l;
    for (size_t i = 0; i < n; i++)
        sem_post(&batch[i]->done);
}

/* Runs one batch to completion, growing the map as often as needed. */
static void writer_run_batch(store_t *s, lmdb_store_t *l, store__op_t **batch,
                             size_t n, store__event_t **evs)
{
    for (int adopted = 0;;) {
        size_t nev = 0;
        uint64_t rev = l->current_rev;
        uint64_t compact = l->compact_rev;
        MDB_txn *txn = NULL;
        pthread_rwlock_rdlock(&l->resize_lock);
        int mrc = mdb_txn_begin(l->env, NULL, 0, &txn);
        for (size_t i = 0; !mrc && i < n; i++) {
            store__op_t *op = batch[i];
            op->rc = 0;
            err_clear(&op->err);
            store_value_free(&op->old);
            if (op->kind == STORE__COMPACT) {
                mrc = apply_compact(l, txn, op);
                if (!mrc)
                    compact = op->rev;
                continue;
            }
            store__event_t *ev = NULL;
            mrc = apply_op(l, txn, op, &rev, &ev);
            if (!mrc && ev)
                evs[nev++] = ev;
        }
        if (!mrc && rev != l->current_rev)
            mrc = meta_put(l, txn, "current_rev", rev);
        if (!mrc)
            mrc = mdb_txn_commit(txn);
        else if (txn)
            mdb_txn_abort(txn);
        pthread_rwlock_unlock(&l->resize_lock);

        if (mrc == 0) {
            l->current_rev = rev;
            l->compact_rev = compact;
            atomic_fetch_add(&l->commits, 1);
            atomic_fetch_add(&l->writes, nev);
            store__hub_publish(&s->hub, evs, nev);
            writer_finish(l, batch, n);
            return;
        }
        for (size_t i = 0; i < nev; i++)
            store__event_unref(evs[i]);
        if (mrc == MDB_MAP_FULL) {
            /* Grow and replay: nothing of the batch was applied. */
            int grc = remap(l, 1);
            if (!grc) {
                log_v(1, "storage: map grown to %zu KiB", atomic_load(&l->map_size) >> 10);
                continue;
            }
            mrc = grc;
        } else if (mrc == MDB_MAP_RESIZED && adopted++ < MAX_ADOPTIONS) {
            /* Another process wrote past this map (the write did not
             * begin): adopt its size and begin again. */
            int grc = remap(l, 0);
            if (!grc)
                continue;
            mrc = grc;
        }
        /* Any other failure fails every op of the batch; none was applied,
         * so clients may retry. */
        for (size_t i = 0; i < n; i++) {
            err_clear(&batch[i]->err);
            store_value_free(&batch[i]->old);
            batch[i]->rc = lm_err(mrc, &batch[i]->err, "commit");
        }
        writer_finish(l, batch, n);
        return;
    }
}

static void *writer_main(void *arg)
{
    store_t *s = arg;
    lmdb_store_t *l = s->impl;
    store__op_t **batch = mem_alloc(WRITER_BATCH * sizeof *batch);
    store__event_t **evs = mem_alloc(WRITER_BATCH * sizeof *evs);
    if (!batch || !evs) {
        log_error("storage: writer cannot allocate its batch");
        abort();
    }
    pthread_mutex_lock(&l->qmu);
    for (;;) {
        while (!l->qhead && !l->stop)
            pthread_cond_wait(&l->qcv, &l->qmu);
        if (!l->qhead && l->stop)
            break;
        size_t n = 0;
        while (l->qhead && n < WRITER_BATCH) {
            batch[n++] = l->qhead;
            l->qhead = l->qhead->next;
        }
        if (!l->qhead)
            l->qtail = NULL;
        pthread_mutex_unlock(&l->qmu);
        writer_run_batch(s, l, batch, n, evs);
        pthread_mutex_lock(&l->qmu);
    }
    pthread_mutex_unlock(&l->qmu);
    mem_free(batch);
    mem_free(evs);
    return NULL;
}

static int lm_write(store_t *s, store__op_t *op)
{
    lmdb_store_t *l = s->impl;
    op->next = NULL;
    pthread_mutex_lock(&l->qmu);
    if (l->stop) {
        pthread_mutex_unlock(&l->qmu);
        return op->rc = err_set(&op->err, ERR_CLOSED, NULL);
    }
    sem_init(&op->done, 0, 0);
    if (l->qtail)
        l->qtail->next = op;
    else
        l->qhead = op;
    l->qtail = op;
    pthread_cond_signal(&l->qcv);
    pthread_mutex_unlock(&l->qmu);
    while (sem_wait(&op->done) != 0)
        ;  /* EINTR: keep waiting; the writer always posts */
    sem_destroy(&op->done);
    return op->rc;
}

/* ---- reads ------------------------------------------------------------- */

static int lm_get(store_t *s, const char *key, size_t key_len,
                  store_value_t *out, err_t *err)
{
    lmdb_store_t *l = s->impl;
    MDB_txn *txn;
    int rc = rd_begin(l, &txn, err);
    if (rc)
        return rc;
    MDB_val k = {key_len, (void *)key}, v;
    int mrc = mdb_get(txn, l->objects, &k, &v);
    if (mrc == MDB_NOTFOUND)
        rc = err_set(err, ERR_NOT_FOUND, "key %s not found", key);
    else if (mrc)
        rc = lm_err(mrc, err, "get");
    else if (v.mv_size < OBJ_HDR)
        rc = err_set(err, ERR_IO, "storage: corrupt object %s", key);
    else if (store__value_copy(out, (char *)v.mv_data + OBJ_HDR, v.mv_size - OBJ_HDR,
                               get_be64(v.mv_data), get_be64((char *)v.mv_data + 8)))
        rc = err_set(err, ERR_NOMEM, NULL);
    rd_end(l, txn);
    return rc;
}

/* A key's state at the snapshot revision, rebuilt from its first event
 * after that revision. */
typedef struct undo {
    const char *key;
    size_t key_len;
    uint64_t rev;                /* the first event's revision */
    int absent;                  /* the key did not exist at the snapshot */
    const char *value;
    size_t value_len;
    uint64_t mod_rev, create_rev;
} undo_t;

static int undo_cmp(const void *a, const void *b)
{
    const undo_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->rev < y->rev ? -1 : x->rev > y->rev;
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    return c ? c : al < bl ? -1 : al > bl;
}

/* Collects, sorted by key, the snapshot state of every key under prefix
 * (and >= start) changed after rev. *out is caller-owned; its pointers are
 * valid in txn. */
static int collect_undo(lmdb_store_t *l, MDB_txn *txn, const char *prefix,
                        size_t plen, const char *start, size_t slen,
                        uint64_t rev, undo_t **out, size_t *nout, err_t *err)
{
    MDB_cursor *c;
    int mrc = mdb_cursor_open(txn, l->events, &c);
    if (mrc)
        return lm_err(mrc, err, "cursor");
    undo_t *u = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    unsigned char rk[8];
    put_be64(rk, rev + 1);
    MDB_val k = {8, rk}, v;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ev_row_t r;
        if (ev_decode(&k, &v, &r)) {
            rc = err_set(err, ERR_IO, "storage: corrupt event log");
            break;
        }
        if (r.key_len < plen || memcmp(r.key, prefix, plen) ||
            key_cmp(r.key, r.key_len, start, slen) < 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            undo_t *nu = mem_realloc(u, ncap * sizeof *u);
            if (!nu) {
                rc = err_set(err, ERR_NOMEM, NULL);
                break;
            }
            u = nu;
            cap = ncap;
        }
        undo_t *x = &u[n++];
        x->key = r.key;
        x->key_len = r.key_len;
        x->rev = r.rev;
        x->absent = r.prev == NULL;
        x->value = r.prev;
        x->value_len = r.prev_len;
        x->mod_rev = r.prev_rev;
        x->create_rev = r.create_rev;
    }
    mdb_cursor_close(c);
    if (!rc && mrc && mrc != MDB_NOTFOUND)
        rc = lm_err(mrc, err, "event scan");
    if (rc) {
        mem_free(u);
        return rc;
    }
    /* Sort by key then revision; keep each key's first event. */
    if (n > 1)
        qsort(u, n, sizeof *u, undo_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || key_cmp(u[m - 1].key, u[m - 1].key_len, u[i].key, u[i].key_len))
            u[m++] = u[i];
    *out = u;
    *nout = m;
    return 0;
}

#define LIST_RELEASE_EVERY 8192  /* entries a scan reads between releases (~16 MB) */

static void release_mapped(lmdb_store_t *l);

static int lm_list(store_t *s, const char *prefix, size_t plen,
                   const char *start, size_t slen, uint64_t want_rev,
                   size_t limit, int count_remaining, store_visit_fn fn,
                   void *arg, uint64_t *snap_rev, char **next_key,
                   size_t *next_len, int64_t *remaining, err_t *err)
{
    lmdb_store_t *l = s->impl;
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    undo_t *u = NULL;
    size_t nu = 0, ui = 0;
    int rc = rd_begin(l, &txn, err);
    if (rc)
        return rc;
    uint64_t cur = meta_get(l, txn, "current_rev");
    uint64_t compact = meta_get(l, txn, "compact_rev");
    uint64_t rev = want_rev ? want_rev : cur;
    if (rev > cur) {
        rc = err_set(err, ERR_TOO_LARGE_RV,
                     "Too large resource version: %llu, current: %llu",
                     (unsigned long long)rev, (unsigned long long)cur);
        goto out;
    }
    if (rev < compact) {
        rc = err_set(err, ERR_EXPIRED,
                     "The resourceVersion for the provided list is too old.");
        goto out;
    }
    if (rev < cur) {
        rc = collect_undo(l, txn, prefix, plen, start, slen, rev, &u, &nu, err);
        if (rc)
            goto out;
    }
    int mrc = mdb_cursor_open(txn, l->objects, &c);
    if (mrc) {
        rc = lm_err(mrc, err, "cursor");
        goto out;
    }

    MDB_val k = {slen, (void *)start}, v;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    size_t taken = 0, visited = 0;
    int64_t after = 0;
    const char *last = NULL;
    size_t last_len = 0;
    int more = 0;
    for (;;) {
        int have_obj = mrc == 0 && k.mv_size >= plen && !memcmp(k.mv_data, prefix, plen);
        if (mrc && mrc != MDB_NOTFOUND) {
            rc = lm_err(mrc, err, "list");
            goto out;
        }
        int have_undo = ui < nu;
        if (!have_obj && !have_undo)
            break;
        store_kv_t kv;
        int cmp = !have_obj ? 1 : !have_undo ? -1
                : key_cmp(k.mv_data, k.mv_size, u[ui].key, u[ui].key_len);
        int present;
        if (cmp < 0) {
            if (v.mv_size < OBJ_HDR) {
                rc = err_set(err, ERR_IO, "storage: corrupt object");
                goto out;
            }
            kv = (store_kv_t){k.mv_data, k.mv_size, (char *)v.mv_data + OBJ_HDR,
                              v.mv_size - OBJ_HDR, get_be64(v.mv_data),
                              get_be64((char *)v.mv_data + 8)};
            present = 1;
        } else {
            undo_t *x = &u[ui];
            kv = (store_kv_t){x->key, x->key_len, x->value, x->value_len,
                              x->mod_rev, x->create_rev};
            present = !x->absent;
        }
        if (cmp <= 0)
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        if (cmp >= 0)
            ui++;
        /* A long scan (a count of what remains, a big list) lets go of the
         * pages behind it as it goes, so it never holds a kind's whole share
         * of the file mapped at once. Pointers into released pages stay
         * good: the next read maps the same page back in, and the read
         * transaction keeps it from being reused. */
        if (++visited % LIST_RELEASE_EVERY == 0)
            release_mapped(l);
        if (!present)
            continue;
        if (limit && taken == limit) {
            /* Past the page: only whether (and how much) more there is. */
            more = 1;
            if (!count_remaining)
                break;
            after++;
            continue;
        }
        int vr = fn(arg, &kv);
        if (vr < 0) {
            rc = err_set(err, vr, NULL);
            goto out;
        }
        if (vr == STORE_TAKE)
            taken++;
        last = kv.key;
        last_len = kv.key_len;
    }
    *snap_rev = rev;
    *remaining = count_remaining ? after : -1;
    *next_key = NULL;
    if (more) {
        /* The next page starts just after the last key looked at. */
        char *nk = mem_alloc(last_len + 1);
        if (!nk) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
        memcpy(nk, last, last_len);
        nk[last_len] = '\0';
        *next_key = nk;
        *next_len = last_len + 1;
    }
out:
    if (c)
        mdb_cursor_close(c);
    mem_free(u);
    rd_end(l, txn);
    return rc;
}

static int lm_read_events(store_t *s, uint64_t after, uint64_t upto, size_t max,
                          store__sink_fn sink, void *arg, uint64_t *scanned_to,
                          err_t *err)
{
    lmdb_store_t *l = s->impl;
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    int rc = rd_begin(l, &txn, err);
    if (rc)
        return rc;
    if (after < meta_get(l, txn, "compact_rev")) {
        rc = err_set(err, ERR_EXPIRED,
                     "The resourceVersion for the provided watch is too old.");
        goto out;
    }
    int mrc = mdb_cursor_open(txn, l->events, &c);
    if (mrc) {
        rc = lm_err(mrc, err, "cursor");
        goto out;
    }
    unsigned char rk[8];
    put_be64(rk, after + 1);
    MDB_val k = {8, rk}, v;
    size_t n = 0;
    uint64_t last = after;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0 && n < max;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ev_row_t r;
        if (ev_decode(&k, &v, &r)) {
            rc = err_set(err, ERR_IO, "storage: corrupt event log");
            goto out;
        }
        if (r.rev > upto)
            break;
        store__event_t *e = store__event_new(r.type, r.rev, r.create_rev, r.prev_rev,
                                             r.key, r.key_len, r.value, r.value_len,
                                             r.prev, r.prev_len);
        if (!e) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
        last = r.rev;
        n++;
        rc = sink(arg, e);
        if (rc)
            goto out;
    }
    if (mrc && mrc != MDB_NOTFOUND) {
        rc = lm_err(mrc, err, "event scan");
        goto out;
    }
    if (n == 0 && max > 0 && upto > after) {
        /* Every revision has a row until compacted, and compaction was
         * ruled out above in this same snapshot. */
        rc = err_set(err, ERR_INTERNAL, "storage: event log has no row after %llu",
                     (unsigned long long)after);
        goto out;
    }
    *scanned_to = last;
out:
    if (c)
        mdb_cursor_close(c);
    rd_end(l, txn);
    return rc;
}

/* The map is read-only and shared with the file: MADV_DONTNEED unmaps the
 * pages from this process (they stay cached) and a later read maps them
 * again with the same contents, so readers in flight are unaffected.
 * LMDB does not export its map address, so the mapping of data.mdb is
 * read from /proc/self/maps, once per map size: the map moves only under
 * resize_lock held exclusively (remap, which marks the ranges stale), and
 * callers hold it shared, so a range read since is where the map is. */
static void read_maps(lmdb_store_t *l)
{
    l->nmaps = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4608];
    while (f && fgets(line, sizeof line, f) && l->nmaps < 4) {
        unsigned long lo, hi;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3 ||
            !path_at)
            continue;
        char *path = line + path_at;
        path[strcspn(path, "\n")] = '\0';
        if (perms[0] == 'r' && perms[3] == 's' && !strcmp(path, l->data_file)) {
            l->map_lo[l->nmaps] = lo;
            l->map_hi[l->nmaps++] = hi;
        }
    }
    if (f)
        fclose(f);
}

static void release_mapped(lmdb_store_t *l)
{
    uintptr_t lo[4], hi[4];
    size_t map_size = atomic_load(&l->map_size);
    pthread_mutex_lock(&l->maps_mu);
    if (l->maps_for != map_size) {
        read_maps(l);
        l->maps_for = map_size;
    }
    size_t n = l->nmaps;
    memcpy(lo, l->map_lo, sizeof lo);
    memcpy(hi, l->map_hi, sizeof hi);
    pthread_mutex_unlock(&l->maps_mu);
    for (size_t i = 0; i < n; i++)
        madvise((void *)lo[i], hi[i] - lo[i], MADV_DONTNEED);
}

static void lm_release_pages(store_t *s)
{
    lmdb_store_t *l = s->impl;
    pthread_rwlock_rdlock(&l->resize_lock);
    release_mapped(l);
    pthread_rwlock_unlock(&l->resize_lock);
}

static void lm_stats(store_t *s, store_stats_t *st)
{
    lmdb_store_t *l = s->impl;
    st->map_size = atomic_load(&l->map_size);
    st->commits = atomic_load(&l->commits);
    st->writes = atomic_load(&l->writes);
}

/* ---- open / close -------------------------------------------------------- */

static int lock_data_dir(const char *dir, int *fd_out, err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, ERR_IO, "storage: cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        pid[r > 0 ? r : 0] = '\0';
        close(fd);
        return err_set(err, ERR_LOCKED,
                       "storage: data directory %s is in use by another process%s%s",
                       dir, *pid ? " (pid " : "", *pid ? strtok(pid, "\n") : "");
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld)\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The pid is informational; the lock is what matters. */
    }
    *fd_out = fd;
    return 0;
}

static int lm_open(store_t *s, const store_config_t *cfg, uint64_t *rev,
                   uint64_t *compact_rev, err_t *err)
{
    if (!cfg->data_dir || !*cfg->data_dir)
        return err_set(err, ERR_BAD_REQUEST, "storage: --data-dir is required");
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
        return err_set(err, ERR_IO, "storage: cannot create %s: %s", cfg->data_dir,
                       strerror(errno));
    lmdb_store_t *l = mem_calloc(1, sizeof *l);
    if (!l)
        return err_set(err, ERR_NOMEM, NULL);
    l->lock_fd = -1;
    int rc = lock_data_dir(cfg->data_dir, &l->lock_fd, err);
    if (rc)
        goto fail;

    int mrc = mdb_env_create(&l->env);
    if (mrc) {
        rc = lm_err(mrc, err, "env create");
        goto fail;
    }
    atomic_store(&l->map_size, cfg->map_size ? cfg->map_size : DEFAULT_MAP_SIZE);
    mdb_env_set_maxdbs(l->env, 4);
    mdb_env_set_maxreaders(l->env, 1024);
    mdb_env_set_mapsize(l->env, atomic_load(&l->map_size));
    /* NORDAHEAD: reads are random; readahead would only fill memory
     * with neighbouring (often free) pages. */
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (cfg->no_sync ? MDB_NOSYNC : 0);
    mrc = mdb_env_open(l->env, cfg->data_dir, flags, 0600);
    if (mrc) {
        rc = lm_err(mrc, err, cfg->data_dir);
        goto fail;
    }
    char real[4096];
    if (realpath(cfg->data_dir, real))
        snprintf(l->data_file, sizeof l->data_file, "%.4000s/data.mdb", real);
    /* A larger existing file wins over the configured size. */
    MDB_envinfo info;
    mdb_env_info(l->env, &info);
    atomic_store(&l->map_size, info.me_mapsize);
    int dead = 0;
    mdb_reader_check(l->env, &dead);
    if (dead)
        log_warning("storage: cleared %d stale reader slots", dead);

    MDB_txn *txn;
    mrc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (mrc) {
        rc = lm_err(mrc, err, "begin");
        goto fail;
    }
    mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &l->meta);
    if (!mrc)
        mrc = mdb_dbi_open(txn, "objects", MDB_CREATE, &l->objects);
    if (!mrc)
        mrc = mdb_dbi_open(txn, "events", MDB_CREATE, &l->events);
    if (mrc) {
        mdb_txn_abort(txn);
        rc = lm_err(mrc, err, "open databases");
        goto fail;
    }
    uint64_t schema = meta_get(l, txn, "schema");
    if (schema && schema != SCHEMA_VERSION) {
        mdb_txn_abort(txn);
        rc = err_set(err, ERR_IO, "storage: %s holds schema %llu, this build reads %d",
                     cfg->data_dir, (unsigned long long)schema, SCHEMA_VERSION);
        goto fail;
    }
    if (!schema)
        mrc = meta_put(l, txn, "schema", SCHEMA_VERSION);
    l->current_rev = meta_get(l, txn, "current_rev");
    l->compact_rev = meta_get(l, txn, "compact_rev");
    if (!mrc)
        mrc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (mrc) {
        rc = lm_err(mrc, err, "init");
        goto fail;
    }

    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writer preference, so a resize is not starved by a stream of reads. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&l->resize_lock, &ra);
    pthread_mutex_init(&l->maps_mu, NULL);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&l->qmu, NULL);
    pthread_cond_init(&l->qcv, NULL);
    s->impl = l;
    if (pthread_create(&l->writer, NULL, writer_main, s)) {
        rc = err_set(err, ERR_INTERNAL, "storage: cannot start the writer thread");
        pthread_cond_destroy(&l->qcv);
        pthread_mutex_destroy(&l->qmu);
        pthread_rwlock_destroy(&l->resize_lock);
    pthread_mutex_destroy(&l->maps_mu);
        s->impl = NULL;
        goto fail;
    }
    l->writer_running = 1;
    *rev = l->current_rev;
    *compact_rev = l->compact_rev;
    return 0;

fail:
    if (l->env)
        mdb_env_close(l->env);
    if (l->lock_fd >= 0)
        close(l->lock_fd);
    mem_free(l);
    return rc;
}

static void lm_close(store_t *s)
{
    lmdb_store_t *l = s->impl;
    if (!l)
        return;
    pthread_mutex_lock(&l->qmu);
    l->stop = 1;
    pthread_cond_signal(&l->qcv);
    pthread_mutex_unlock(&l->qmu);
    if (l->writer_running)
        pthread_join(l->writer, NULL);
    mdb_env_close(l->env);
    close(l->lock_fd);
    pthread_cond_destroy(&l->qcv);
    pthread_mutex_destroy(&l->qmu);
    pthread_rwlock_destroy(&l->resize_lock);
    pthread_mutex_destroy(&l->maps_mu);
    mem_free(l);
    s->impl = NULL;
}

const store__backend_t store__lmdb_backend = {
    .name = "lmdb",
    .open = lm_open,
    .close = lm_close,
    .get = lm_get,
    .write = lm_write,
    .list = lm_list,
    .read_events = lm_read_events,
    .stats = lm_stats,
    .release_pages = lm_release_pages,
};
