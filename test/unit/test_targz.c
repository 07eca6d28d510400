/* Unit tests of lib/targz: archives built here, a ustar writer and a
 * gzip of stored deflate blocks (CRC-32 by hand), so the test needs no
 * compressor of its own. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../lib/mem.h"
#include "../../lib/targz.h"

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* One tar member: a ustar header (type, name), then data padded to 512. */
static void tar_add(buf_t *t, char type, const char *name, const char *data, size_t len)
{
    unsigned char h[512];
    memset(h, 0, sizeof h);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    snprintf((char *)h + 124, 12, "%011zo", len);
    memcpy(h + 136, "00000000000", 12);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    put(t, h, sizeof h);
    put(t, data, len);
    static const unsigned char zero[512];
    put(t, zero, (512 - len % 512) % 512);
}

static void tar_end(buf_t *t)
{
    static const unsigned char zero[1024];
    put(t, zero, sizeof zero);
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* gzip of stored blocks. */
static buf_t gzip_stored(const buf_t *in)
{
    buf_t g = {0};
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    put(&g, hdr, sizeof hdr);
    size_t off = 0;
    do {
        size_t n = in->len - off > 65535 ? 65535 : in->len - off;
        unsigned char bh[5] = {off + n == in->len ? 1 : 0, (unsigned char)(n & 0xff),
                               (unsigned char)(n >> 8), (unsigned char)(~n & 0xff),
                               (unsigned char)((~n >> 8) & 0xff)};
        put(&g, bh, sizeof bh);
        put(&g, in->p + off, n);
        off += n;
    } while (off < in->len);
    uint32_t crc = crc32_of(in->p, in->len), size = (uint32_t)in->len;
    unsigned char tr[8] = {crc & 0xff, (crc >> 8) & 0xff, (crc >> 16) & 0xff, crc >> 24,
                           size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff, size >> 24};
    put(&g, tr, sizeof tr);
    return g;
}

static const char chart_yaml[] = "apiVersion: v2\nname: app\nversion: 1.0.0\n";

/* A chart-like archive with the members given after the usual ones. */
static buf_t chart(const char *extra_name, const char *extra)
{
    buf_t t = {0};
    tar_add(&t, '5', "app/", "", 0);
    tar_add(&t, '0', "app/values.yaml", "replicas: 1\n", 12);
    tar_add(&t, '0', "app/Chart.yaml", chart_yaml, strlen(chart_yaml));
    if (extra_name)
        tar_add(&t, '0', extra_name, extra, strlen(extra));
    tar_end(&t);
    buf_t g = gzip_stored(&t);
    free(t.p);
    return g;
}

static int read_member(const buf_t *g, const char *name, size_t max, char **out, err_t *err)
{
    size_t len = 0;
    memset(err, 0, sizeof *err);
    *out = NULL;
    return targz_read_member(g->p, g->len, name, max, out, &len, err);
}

static void test_targz__member(void **state)
{
    (void)state;
    buf_t g = chart("app/templates/cm.yaml", "kind: ConfigMap\n");
    char *out;
    err_t err;
    assert_int_equal(read_member(&g, "app/Chart.yaml", 1024, &out, &err), 0);
    assert_string_equal(out, chart_yaml);
    mem_free(out);
    assert_int_equal(read_member(&g, "app/templates/cm.yaml", 1024, &out, &err), 0);
    assert_string_equal(out, "kind: ConfigMap\n");
    mem_free(out);
    assert_int_equal(read_member(&g, "app/missing.yaml", 1024, &out, &err), ERR_NOT_FOUND);
    assert_null(out);
    /* A member larger than asked for. */
    assert_int_equal(read_member(&g, "app/Chart.yaml", 8, &out, &err), ERR_BAD_REQUEST);
    free(g.p);
}

static void test_targz__dot_slash_and_pax(void **state)
{
    (void)state;
    buf_t t = {0};
    tar_add(&t, '0', "./app/Chart.yaml", chart_yaml, strlen(chart_yaml));
    /* A pax header names the next member beyond ustar's 100 bytes. */
    char longname[200], rec[256];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "app/", 4);
    longname[sizeof longname - 1] = '\0';
    size_t body = strlen(" path=") + strlen(longname) + 1;
    size_t total = body + 3;     /* three digits of length */
    snprintf(rec, sizeof rec, "%zu path=%s\n", total, longname);
    assert_int_equal(strlen(rec), total);
    tar_add(&t, 'x', "PaxHeader/x", rec, strlen(rec));
    tar_add(&t, '0', "short", "long one", 8);
    tar_end(&t);
    buf_t g = gzip_stored(&t);
    char *out;
    err_t err;
    assert_int_equal(read_member(&g, "app/Chart.yaml", 1024, &out, &err), 0);
    mem_free(out);
    assert_int_equal(read_member(&g, longname, 1024, &out, &err), 0);
    assert_string_equal(out, "long one");
    mem_free(out);
    assert_int_equal(read_member(&g, "short", 1024, &out, &err), ERR_NOT_FOUND);
    free(t.p);
    free(g.p);
}

static void test_targz__traversal(void **state)
{
    (void)state;
    static const char *const bad[] = {"../evil", "app/../../evil", "/etc/passwd", NULL};
    for (int i = 0; bad[i]; i++) {
        buf_t g = chart(bad[i], "x");
        char *out;
        err_t err;
        /* Refused whatever member is asked for. */
        assert_int_equal(read_member(&g, "app/Chart.yaml", 1024, &out, &err), ERR_BAD_REQUEST);
        assert_non_null(strstr(err.message, "outside"));
        free(g.p);
    }
    buf_t g = chart("app/..data/ok", "x");  /* ".." only as a whole component */
    char *out;
    err_t err;
    assert_int_equal(read_member(&g, "app/..data/ok", 1024, &out, &err), 0);
    mem_free(out);
    free(g.p);
}

static void test_targz__malformed(void **state)
{
    (void)state;
    buf_t g = chart(NULL, NULL);
    char *out;
    err_t err;
    /* Not gzip. */
    buf_t plain = {(unsigned char *)"hello, not an archive", 21, 0};
    assert_int_equal(read_member(&plain, "app/Chart.yaml", 1024, &out, &err), ERR_BAD_REQUEST);
    /* Truncated. */
    buf_t cut = {g.p, g.len / 2, 0};
    assert_int_equal(read_member(&cut, "app/Chart.yaml", 1024, &out, &err), ERR_BAD_REQUEST);
    /* A byte changed: the CRC does not match. */
    buf_t flip = {malloc(g.len), g.len, 0};
    memcpy(flip.p, g.p, g.len);
    flip.p[g.len - 20] ^= 0x55;
    assert_int_equal(read_member(&flip, "app/Chart.yaml", 1024, &out, &err), ERR_BAD_REQUEST);
    free(flip.p);
    /* A header whose checksum is wrong: not tar. */
    buf_t t = {0};
    tar_add(&t, '0', "app/Chart.yaml", chart_yaml, strlen(chart_yaml));
    t.p[0] = 'b';
    tar_end(&t);
    buf_t g2 = gzip_stored(&t);
    assert_int_equal(read_member(&g2, "app/Chart.yaml", 1024, &out, &err), ERR_BAD_REQUEST);
    assert_non_null(strstr(err.message, "checksum"));
    /* The same member twice. */
    buf_t t2 = {0};
    tar_add(&t2, '0', "a", "1", 1);
    tar_add(&t2, '0', "a", "2", 1);
    tar_end(&t2);
    buf_t g3 = gzip_stored(&t2);
    assert_int_equal(read_member(&g3, "a", 1024, &out, &err), ERR_BAD_REQUEST);
    free(t.p);
    free(t2.p);
    free(g.p);
    free(g2.p);
    free(g3.p);
}

/* Every allocation failing in turn: a clean error, no leak. */
static void test_targz__allocation_failures(void **state)
{
    (void)state;
    buf_t g = chart(NULL, NULL);
    int ok = 0;
    for (long n = 0; n < 20 && !ok; n++) {
        char *out;
        err_t err;
        mem_fail_after(n);
        int rc = read_member(&g, "app/Chart.yaml", 1024, &out, &err);
        mem_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            mem_free(out);
        } else {
            assert_int_equal(rc, ERR_NOMEM);
        }
    }
    assert_true(ok);
    free(g.p);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targz__member),
        cmocka_unit_test(test_targz__dot_slash_and_pax),
        cmocka_unit_test(test_targz__traversal),
        cmocka_unit_test(test_targz__malformed),
        cmocka_unit_test(test_targz__allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
