#include "targz.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "mem.h"

#define BLOCK 512
#define MAX_PAX (1024u * 1024u)
#define MAX_NAME 4096

/* The inflating reader: bytes come out of gz in whatever pieces the
 * caller asks for. */
typedef struct gz {
    z_stream zs;
    unsigned char buf[65536];
    size_t pos, avail;           /* what of buf is not read yet */
    int end;                     /* the gzip stream ended */
    uint64_t total;
} gz_t;

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return mem_calloc(items, size);
}

static void gz_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    mem_free(p);
}

/* Reads exactly n bytes into dst (NULL: drops them). */
static int gz_read(gz_t *g, void *dst, size_t n, err_t *err)
{
    unsigned char *d = dst;
    while (n) {
        if (g->avail) {
            size_t k = n < g->avail ? n : g->avail;
            if (d) {
                memcpy(d, g->buf + g->pos, k);
                d += k;
            }
            g->pos += k;
            g->avail -= k;
            n -= k;
            continue;
        }
        if (g->end)
            return err_set(err, ERR_BAD_REQUEST, "the archive is truncated");
        g->zs.next_out = g->buf;
        g->zs.avail_out = sizeof g->buf;
        int zr = inflate(&g->zs, Z_NO_FLUSH);
        size_t got = sizeof g->buf - g->zs.avail_out;
        if (zr == Z_MEM_ERROR)
            return err_set(err, ERR_NOMEM, NULL);
        if (zr == Z_STREAM_END)
            g->end = 1;
        else if (zr == Z_BUF_ERROR && !got)
            g->end = 1;          /* the input ended inside the stream */
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return err_set(err, ERR_BAD_REQUEST, "not a valid gzip stream: %s",
                           g->zs.msg ? g->zs.msg : "corrupt data");
        g->pos = 0;
        g->avail = got;
        g->total += got;
        if (g->total > TARGZ_MAX_TOTAL)
            return err_set(err, ERR_BAD_REQUEST, "the archive inflates to more than %u bytes",
                           TARGZ_MAX_TOTAL);
    }
    return 0;
}

/* A numeric header field: octal digits (spaces and NULs around them), or
 * base-256 when its first byte has the high bit set. -1 when malformed. */
static int64_t tar_num(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    if (p[0] & 0x80) {
        if (p[0] & 0x40)
            return -1;           /* negative */
        v = p[0] & 0x3f;
        for (size_t i = 1; i < n; i++) {
            if (v >> 55)
                return -1;
            v = v << 8 | p[i];
        }
        return (int64_t)v;
    }
    size_t i = 0;
    while (i < n && p[i] == ' ')
        i++;
    int digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++, digits++) {
        if (v >> 60)
            return -1;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    for (; i < n; i++)
        if (p[i] != ' ' && p[i] != '\0')
            return -1;
    return digits ? (int64_t)v : 0;
}

static int tar_checksum_ok(const unsigned char *h)
{
    int64_t want = tar_num(h + 148, 8);
    uint64_t sum = 0;
    for (int i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return want >= 0 && (uint64_t)want == sum;
}

/* A name with no absolute start and no ".." component. */
static int name_safe(const char *n)
{
    if (n[0] == '/')
        return 0;
    for (const char *p = n; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += l;
        if (*p == '/')
            p++;
    }
    return 1;
}

/* The value of "path" in a pax extended header's records ("LEN
 * key=value\n"), copied to out; untouched when there is none. */
static int pax_path(const char *rec, size_t len, char *out, size_t cap, err_t *err)
{
    size_t i = 0;
    while (i < len) {
        size_t rl = 0, j = i;
        while (j < len && rec[j] >= '0' && rec[j] <= '9' && rl < len)
            rl = rl * 10 + (size_t)(rec[j++] - '0');
        if (j >= len || rec[j] != ' ' || rl <= j - i || rl > len - i || rec[i + rl - 1] != '\n')
            return err_set(err, ERR_BAD_REQUEST, "a malformed pax extended header");
        const char *kv = rec + j + 1;
        size_t kvl = i + rl - 1 - (j + 1);
        if (kvl >= 5 && !memcmp(kv, "path=", 5)) {
            if (kvl - 5 >= cap || memchr(kv + 5, '\0', kvl - 5))
                return err_set(err, ERR_BAD_REQUEST, "a member name longer than %d bytes",
                               MAX_NAME - 1);
            memcpy(out, kv + 5, kvl - 5);
            out[kvl - 5] = '\0';
        }
        i += rl;
    }
    return 0;
}

/* Reads n bytes of a header member (pax or GNU long name), padded to
 * the block, into a new buffer. */
static int read_meta(gz_t *g, uint64_t n, size_t cap, char **out, err_t *err)
{
    if (n > cap)
        return err_set(err, ERR_BAD_REQUEST, "an extended header of %llu bytes",
                       (unsigned long long)n);
    char *p = mem_alloc((size_t)n + 1);
    if (!p)
        return err_set(err, ERR_NOMEM, NULL);
    int rc = gz_read(g, p, (size_t)n, err);
    if (!rc)
        rc = gz_read(g, NULL, (size_t)((BLOCK - n % BLOCK) % BLOCK), err);
    if (rc) {
        mem_free(p);
        return rc;
    }
    p[n] = '\0';
    *out = p;
    return 0;
}

static int read_tar(gz_t *g, const char *want, size_t max, char **out, size_t *out_len,
                    err_t *err)
{
    unsigned char h[BLOCK];
    char pending[MAX_NAME] = "", name[MAX_NAME];
    char *found = NULL;
    size_t found_len = 0;
    int rc = 0, members = 0;
    for (;;) {
        if ((rc = gz_read(g, h, BLOCK, err)))
            goto out;
        int zero = 1;
        for (int i = 0; i < BLOCK && zero; i++)
            zero = !h[i];
        if (zero)
            break;               /* the end-of-archive blocks */
        if (!tar_checksum_ok(h)) {
            rc = err_set(err, ERR_BAD_REQUEST, "not a tar archive (a header's checksum is wrong)");
            goto out;
        }
        int64_t size = tar_num(h + 124, 12);
        if (size < 0) {
            rc = err_set(err, ERR_BAD_REQUEST, "not a tar archive (a malformed size)");
            goto out;
        }
        char type = (char)h[156];
        if (type == 'x' || type == 'L') {
            char *meta = NULL;
            if ((rc = read_meta(g, (uint64_t)size, type == 'x' ? MAX_PAX : MAX_NAME, &meta, err)))
                goto out;
            if (type == 'x')
                rc = pax_path(meta, (size_t)size, pending, sizeof pending, err);
            else
                snprintf(pending, sizeof pending, "%s", meta);
            mem_free(meta);
            if (rc)
                goto out;
            continue;
        }
        if (pending[0]) {
            snprintf(name, sizeof name, "%s", pending);
            pending[0] = '\0';
        } else if (!memcmp(h + 257, "ustar", 5) && h[345]) {
            snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
        } else {
            snprintf(name, sizeof name, "%.100s", (const char *)h);
        }
        members++;
        const char *n = name;
        while (n[0] == '.' && n[1] == '/')
            n += 2;
        if (!name_safe(n)) {
            rc = err_set(err, ERR_BAD_REQUEST, "a member named outside the archive: %.200s", name);
            goto out;
        }
        uint64_t pad = (BLOCK - (uint64_t)size % BLOCK) % BLOCK;
        int regular = type == '0' || type == '\0' || type == '7';
        if (type == 'g' || !regular || strcmp(n, want)) {
            /* Skipped in pieces: a size near 2^64 is read until the
             * stream ends (truncated) or TARGZ_MAX_TOTAL stops it. */
            uint64_t left = (uint64_t)size + pad;
            while (left && !rc) {
                size_t k = left > (1u << 20) ? (1u << 20) : (size_t)left;
                rc = gz_read(g, NULL, k, err);
                left -= k;
            }
            if (rc)
                goto out;
            continue;
        }
        if (found) {
            rc = err_set(err, ERR_BAD_REQUEST, "%s is in the archive twice", want);
            goto out;
        }
        if ((uint64_t)size > max) {
            rc = err_set(err, ERR_BAD_REQUEST, "%s is larger than %zu bytes", want, max);
            goto out;
        }
        found = mem_alloc((size_t)size + 1);
        if (!found) {
            rc = err_set(err, ERR_NOMEM, NULL);
            goto out;
        }
        found_len = (size_t)size;
        if ((rc = gz_read(g, found, found_len, err)) || (rc = gz_read(g, NULL, (size_t)pad, err)))
            goto out;
        found[found_len] = '\0';
    }
    if (!members) {
        rc = err_set(err, ERR_BAD_REQUEST, "an empty tar archive");
        goto out;
    }
    if (!found) {
        rc = err_set(err, ERR_NOT_FOUND, "the archive has no %s", want);
        goto out;
    }
    *out = found;
    *out_len = found_len;
    found = NULL;
out:
    mem_free(found);
    return rc;
}

int targz_read_member(const void *gz, size_t len, const char *name, size_t max, char **out,
                      size_t *out_len, err_t *err)
{
    const unsigned char *p = gz;
    if (len < 18 || p[0] != 0x1f || p[1] != 0x8b)
        return err_set(err, ERR_BAD_REQUEST, "not a gzip archive");
    if (len > UINT32_MAX)
        return err_set(err, ERR_BAD_REQUEST, "the archive is larger than 4 GiB");
    gz_t *g = mem_calloc(1, sizeof *g);
    if (!g)
        return err_set(err, ERR_NOMEM, NULL);
    g->zs.zalloc = gz_alloc;
    g->zs.zfree = gz_free;
    g->zs.next_in = (unsigned char *)(uintptr_t)p;
    g->zs.avail_in = (uInt)len;
    /* 16 + MAX_WBITS: a gzip header and trailer (its CRC is checked). */
    int zr = inflateInit2(&g->zs, 16 + MAX_WBITS);
    if (zr != Z_OK) {
        mem_free(g);
        return zr == Z_MEM_ERROR ? err_set(err, ERR_NOMEM, NULL)
                                 : err_set(err, ERR_INTERNAL, "zlib: cannot start inflating");
    }
    int rc = read_tar(g, name, max, out, out_len, err);
    inflateEnd(&g->zs);
    mem_free(g);
    return rc;
}
