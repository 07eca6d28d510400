/* Unit tests of lib/crypto: hashing, UUIDs, certificate creation and
 * client-certificate verification. Certificates are made in a temporary
 * directory under /tmp that each test removes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../lib/crypto.h"
#include "../../lib/fs.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

/* ---- helpers ---------------------------------------------------------- */

typedef struct tmpdir {
    char path[64];
} tmpdir_t;

static void tmpdir_make(tmpdir_t *t)
{
    snprintf(t->path, sizeof t->path, "/tmp/test_crypto.XXXXXX");
    assert_non_null(mkdtemp(t->path));
}

/* Removes dir and everything below it (the tests make at most two levels). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void path_in(char *buf, size_t n, const tmpdir_t *t, const char *name)
{
    int w = snprintf(buf, n, "%s/%s", t->path, name);
    assert_true(w > 0 && (size_t)w < n);
}

static char *read_all(const char *path, size_t *len)
{
    char *data = NULL;
    err_t e = {0};
    assert_int_equal(fs_read_file(path, &data, len, &e), 0);
    return data;
}

static crypto_pool_t *pool_from(const char *ca_path)
{
    size_t len;
    char *pem = read_all(ca_path, &len);
    crypto_pool_t *p = NULL;
    err_t e = {0};
    assert_int_equal(crypto_pool_load(pem, len, &p, &e), 0);
    mem_free(pem);
    return p;
}

/* DER of the first certificate in the PEM file at path (caller mem_frees). */
static unsigned char *der_from(const char *path, size_t *der_len)
{
    size_t len;
    char *pem = read_all(path, &len);
    unsigned char *der = NULL;
    err_t e = {0};
    assert_int_equal(crypto_pem_to_der(pem, len, &der, der_len, &e), 0);
    mem_free(pem);
    return der;
}

/* Verifies the single certificate at path against pool. */
static int verify_file(const crypto_pool_t *pool, const char *path,
                       crypto_identity_t *id, err_t *e)
{
    size_t len = 0;
    unsigned char *der = der_from(path, &len);
    const unsigned char *ders[] = {der};
    const size_t lens[] = {len};
    int rc = crypto_verify_client(pool, ders, lens, 1, id, e);
    mem_free(der);
    return rc;
}

static void issue_ca(const tmpdir_t *t, const char *name)
{
    char crt[256], key[256];
    char base[64];
    err_t e = {0};
    snprintf(base, sizeof base, "%s.crt", name);
    path_in(crt, sizeof crt, t, base);
    snprintf(base, sizeof base, "%s.key", name);
    path_in(key, sizeof key, t, base);
    assert_int_equal(crypto_issue_cert(NULL, NULL, name, NULL, 0, NULL, 30, crt, key, &e), 0);
}

/* Issues <name>.crt/.key signed by CA <ca>. */
static void issue_leaf(const tmpdir_t *t, const char *ca, const char *name,
                       const char *cn, const char *const *orgs, int client,
                       const char *const *dns)
{
    char ca_crt[256], ca_key[256], crt[256], key[256], base[64];
    err_t e = {0};
    snprintf(base, sizeof base, "%s.crt", ca);
    path_in(ca_crt, sizeof ca_crt, t, base);
    snprintf(base, sizeof base, "%s.key", ca);
    path_in(ca_key, sizeof ca_key, t, base);
    snprintf(base, sizeof base, "%s.crt", name);
    path_in(crt, sizeof crt, t, base);
    snprintf(base, sizeof base, "%s.key", name);
    path_in(key, sizeof key, t, base);
    int rc = crypto_issue_cert(ca_crt, ca_key, cn, orgs, client, dns, 1, crt, key, &e);
    if (rc)
        fail_msg("issue %s: %s", name, e.message);
}

/* Output of an openssl(1) command, for checks the module has no reader for. */
static void run_openssl(const char *cmd, char *out, size_t n)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    assert_int_equal(pclose(f), 0);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

/* ---- hashing, randomness, UUIDs -------------------------------------- */

static void test_crypto__sha256_vectors(void **state)
{
    (void)state;
    /* FIPS 180-2 / NIST examples. */
    static const struct { const char *in; const char *hex; } rows[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[65];
        crypto_sha256_hex(rows[i].in, strlen(rows[i].in), out);
        assert_string_equal(out, rows[i].hex);
    }
    char out[65];
    crypto_sha256_hex(NULL, 0, out);
    assert_string_equal(out, rows[0].hex);
}

static void test_crypto__random(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_int_equal(crypto_random(a, sizeof a), 0);
    assert_int_equal(crypto_random(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(crypto_random(NULL, 0), 0);
}

static int uuid_well_formed(const char *u)
{
    if (strlen(u) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (u[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", u[i]) || u[i] == '\0') {
            return 0;
        }
    }
    return u[14] == '4' && strchr("89ab", u[19]) != NULL;
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

#define UUIDS 2000

static void test_crypto__uuid4(void **state)
{
    (void)state;
    char (*u)[37] = calloc(UUIDS, sizeof *u);
    assert_non_null(u);
    for (int i = 0; i < UUIDS; i++) {
        crypto_uuid4(u[i]);
        if (!uuid_well_formed(u[i]))
            fail_msg("malformed UUID %s", u[i]);
    }
    qsort(u, UUIDS, sizeof *u, cmp_uuid);
    for (int i = 1; i < UUIDS; i++)
        assert_string_not_equal(u[i - 1], u[i]);
    free(u);
}

#define UUID_THREADS 4
#define UUIDS_PER_THREAD 500

static void *uuid_worker(void *arg)
{
    char (*u)[37] = arg;
    for (int i = 0; i < UUIDS_PER_THREAD; i++)
        crypto_uuid4(u[i]);
    return NULL;
}

/* Many threads at once get well-formed UUIDs that are all distinct. */
static void test_crypto__uuid4_threads(void **state)
{
    (void)state;
    char (*u)[37] = calloc(UUID_THREADS * UUIDS_PER_THREAD, sizeof *u);
    pthread_t th[UUID_THREADS];
    assert_non_null(u);
    for (int i = 0; i < UUID_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, uuid_worker, u + i * UUIDS_PER_THREAD), 0);
    for (int i = 0; i < UUID_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    qsort(u, UUID_THREADS * UUIDS_PER_THREAD, sizeof *u, cmp_uuid);
    for (int i = 0; i < UUID_THREADS * UUIDS_PER_THREAD; i++) {
        assert_true(uuid_well_formed(u[i]));
        if (i > 0)
            assert_string_not_equal(u[i - 1], u[i]);
    }
    free(u);
}

/* ---- files ----------------------------------------------------------- */

static void test_crypto__read_file(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char p[256];
    err_t e = {0};
    char *data = NULL;
    size_t len = 99;
    tmpdir_make(&t);

    path_in(p, sizeof p, &t, "missing");
    assert_int_equal(fs_read_file(p, &data, &len, &e), ERR_IO);
    assert_non_null(strstr(e.message, p));
    assert_null(data);

    path_in(p, sizeof p, &t, "empty");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    err_clear(&e);
    assert_int_equal(fs_read_file(p, &data, &len, &e), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    mem_free(data);

    path_in(p, sizeof p, &t, "hello");
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("hello\nworld", f);
    fclose(f);
    assert_int_equal(fs_read_file(p, &data, NULL, &e), 0);
    assert_string_equal(data, "hello\nworld");
    mem_free(data);
    data = NULL;

    /* An allocation failure is reported, not a crash or a leak. */
    mem_fail_after(0);
    err_clear(&e);
    assert_int_equal(fs_read_file(p, &data, &len, &e), ERR_NOMEM);
    mem_fail_after(-1);
    assert_null(data);

    /* One byte over the cap. */
    path_in(p, sizeof p, &t, "big");
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)FS_MAX_FILE + 1), 0);
    fclose(f);
    err_clear(&e);
    assert_int_equal(fs_read_file(p, &data, &len, &e), ERR_REQUEST_TOO_LARGE);

    /* Files whose size stat does not tell are read to the end. */
    assert_int_equal(fs_read_file("/proc/self/status", &data, &len, &e), 0);
    assert_true(len > 0);
    assert_non_null(strstr(data, "Name:"));
    mem_free(data);

    rm_tree(t.path);
}

/* ---- serving certificates ------------------------------------------- */

static void test_crypto__ensure_serving_cert(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char dir[128], crt[256], key[256], ca[256], ca_key[256], cmd[1024], out[8192];
    err_t e = {0};
    static const char *const dns[] = {"edge.example.test", "edge.svc", NULL};
    static const char *const ips[] = {"10.0.0.7", "fd00::7", NULL};
    tmpdir_make(&t);

    /* A missing directory, and its missing parent, are created 0700. */
    path_in(dir, sizeof dir, &t, "a/certs");
    int rc = crypto_ensure_serving_cert(dir, dns, ips, &e);
    if (rc)
        fail_msg("ensure: %s", e.message);
    assert_int_equal(file_mode(dir), 0700);
    snprintf(crt, sizeof crt, "%s/apiserver.crt", dir);
    snprintf(key, sizeof key, "%s/apiserver.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(ca_key, sizeof ca_key, "%s/ca.key", dir);
    assert_int_equal(file_mode(key), 0600);
    assert_int_equal(file_mode(ca_key), 0600);
    assert_int_equal(file_mode(crt), 0644);

    /* No temporary files are left behind. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int nfiles = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (de->d_name[0] != '.')
            nfiles++;
        assert_null(strstr(de->d_name, ".tmp-"));
    }
    closedir(d);
    assert_int_equal(nfiles, 4);

    /* A second call keeps the files byte for byte. */
    size_t l1, l2, k1, k2;
    char *c1 = read_all(crt, &l1), *key1 = read_all(key, &k1);
    assert_int_equal(crypto_ensure_serving_cert(dir, dns, NULL, &e), 0);
    char *c2 = read_all(crt, &l2), *key2 = read_all(key, &k2);
    assert_int_equal(l1, l2);
    assert_memory_equal(c1, c2, l1);
    assert_int_equal(k1, k2);
    assert_memory_equal(key1, key2, k1);
    mem_free(c2);
    mem_free(key2);

    /* The serving certificate chains to ca.crt for server use... */
    snprintf(cmd, sizeof cmd,
             "openssl verify -purpose sslserver -CAfile %s %s 2>&1", ca, crt);
    run_openssl(cmd, out, sizeof out);
    assert_non_null(strstr(out, ": OK"));

    /* ...and has the expected subject, SANs and extensions. */
    snprintf(cmd, sizeof cmd, "openssl x509 -noout -text -in %s", crt);
    run_openssl(cmd, out, sizeof out);
    static const char *const want[] = {
        "CN = edge.example.test", "DNS:edge.example.test", "DNS:edge.svc",
        "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "IP Address:10.0.0.7",
        "IP Address:FD00:0:0:0:0:0:0:7", "TLS Web Server Authentication",
        "CA:FALSE", "prime256v1", "ecdsa-with-SHA256", NULL,
    };
    for (size_t i = 0; want[i]; i++)
        if (!strstr(out, want[i]))
            fail_msg("serving certificate lacks \"%s\":\n%s", want[i], out);
    assert_null(strstr(out, "Client Authentication"));

    snprintf(cmd, sizeof cmd, "openssl x509 -noout -text -in %s", ca);
    run_openssl(cmd, out, sizeof out);
    static const char *const want_ca[] = {
        "CN = edge-apiserver-ca@", "CA:TRUE", "Certificate Sign", NULL,
    };
    for (size_t i = 0; want_ca[i]; i++)
        if (!strstr(out, want_ca[i]))
            fail_msg("CA certificate lacks \"%s\":\n%s", want_ca[i], out);

    /* Through the module: the chain to the CA is good, but a serving
     * certificate is no client certificate. */
    crypto_pool_t *pool = pool_from(ca);
    crypto_identity_t id = {0};
    err_clear(&e);
    assert_int_equal(verify_file(pool, crt, &id, &e), ERR_UNAUTHORIZED);
    assert_string_equal(e.message, "x509: certificate specifies an incompatible key usage");
    crypto_pool_free(pool);

    /* A missing key means a fresh pair, and a fresh CA. */
    assert_int_equal(unlink(key), 0);
    assert_int_equal(crypto_ensure_serving_cert(dir, dns, NULL, &e), 0);
    c2 = read_all(crt, &l2);
    assert_true(l1 != l2 || memcmp(c1, c2, l1) != 0);
    mem_free(c1);
    mem_free(c2);
    mem_free(key1);

    rm_tree(t.path);
}

static void test_crypto__serving_cert_defaults_and_errors(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char dir[128], crt[256], cmd[512], out[8192];
    err_t e = {0};
    tmpdir_make(&t);

    /* No DNS names: CN and SAN localhost. */
    path_in(dir, sizeof dir, &t, "d1");
    assert_int_equal(crypto_ensure_serving_cert(dir, NULL, NULL, &e), 0);
    snprintf(crt, sizeof crt, "%s/apiserver.crt", dir);
    snprintf(cmd, sizeof cmd, "openssl x509 -noout -text -in %s", crt);
    run_openssl(cmd, out, sizeof out);
    assert_non_null(strstr(out, "CN = localhost"));
    assert_non_null(strstr(out, "DNS:localhost"));

    /* A DNS name longer than the 64 bytes X.509 suggests for a CN. */
    static const char *const long_dns[] = {
        "edge-apiserver.a-rather-long-namespace-name.svc.cluster.local.example.test", NULL,
    };
    path_in(dir, sizeof dir, &t, "d2");
    assert_int_equal(crypto_ensure_serving_cert(dir, long_dns, NULL, &e), 0);

    /* A bad IP fails cleanly and leaves no serving certificate. */
    static const char *const bad_ips[] = {"not-an-ip", NULL};
    path_in(dir, sizeof dir, &t, "d3");
    assert_int_equal(crypto_ensure_serving_cert(dir, NULL, bad_ips, &e), ERR_BAD_REQUEST);
    assert_non_null(strstr(e.message, "not-an-ip"));
    snprintf(crt, sizeof crt, "%s/apiserver.crt", dir);
    assert_int_not_equal(access(crt, F_OK), 0);

    /* A directory that cannot be created. */
    path_in(dir, sizeof dir, &t, "file");
    FILE *f = fopen(dir, "w");
    assert_non_null(f);
    fclose(f);
    strcat(dir, "/sub");
    err_clear(&e);
    assert_int_equal(crypto_ensure_serving_cert(dir, NULL, NULL, &e), ERR_IO);
    assert_non_null(strstr(e.message, "file"));

    rm_tree(t.path);
}

/* ---- client verification -------------------------------------------- */

static void test_crypto__verify_client(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char p[256];
    err_t e = {0};
    static const char *const orgs[] = {"g1", "g2", NULL};
    static const char *const dns[] = {"server.test", NULL};
    tmpdir_make(&t);

    issue_ca(&t, "caA");
    issue_ca(&t, "caB");
    issue_leaf(&t, "caA", "alice", "alice", orgs, 1, NULL);
    issue_leaf(&t, "caA", "server", "server.test", NULL, 0, dns);
    issue_leaf(&t, "caB", "bob", "bob", NULL, 1, NULL);

    char alice[256], server[256], bob[256], caA[256], caB[256];
    path_in(alice, sizeof alice, &t, "alice.crt");
    path_in(server, sizeof server, &t, "server.crt");
    path_in(bob, sizeof bob, &t, "bob.crt");
    path_in(caA, sizeof caA, &t, "caA.crt");
    path_in(caB, sizeof caB, &t, "caB.crt");
    path_in(p, sizeof p, &t, "alice.key");
    assert_int_equal(file_mode(p), 0600);

    crypto_pool_t *poolA = pool_from(caA);
    crypto_pool_t *poolB = pool_from(caB);
    crypto_identity_t id = {0};

    /* Trusted CA: the identity comes out. */
    int rc = verify_file(poolA, alice, &id, &e);
    if (rc)
        fail_msg("verify alice: %s", e.message);
    assert_string_equal(id.cn, "alice");
    assert_int_equal(id.norgs, 2);
    assert_string_equal(id.orgs[0], "g1");
    assert_string_equal(id.orgs[1], "g2");
    crypto_identity_free(&id);
    assert_null(id.cn);
    crypto_identity_free(&id);  /* twice is harmless */

    /* A certificate without O values. */
    err_clear(&e);
    assert_int_equal(verify_file(poolB, bob, &id, &e), 0);
    assert_string_equal(id.cn, "bob");
    assert_int_equal(id.norgs, 0);
    crypto_identity_free(&id);

    /* Another CA. */
    err_clear(&e);
    assert_int_equal(verify_file(poolB, alice, &id, &e), ERR_UNAUTHORIZED);
    assert_string_equal(e.message, "x509: certificate signed by unknown authority");
    assert_null(id.cn);

    /* A serverAuth-only certificate from the trusted CA. */
    err_clear(&e);
    assert_int_equal(verify_file(poolA, server, &id, &e), ERR_UNAUTHORIZED);
    assert_string_equal(e.message, "x509: certificate specifies an incompatible key usage");

    /* A CA certificate itself is not signed by the other CA either. */
    err_clear(&e);
    assert_int_equal(verify_file(poolB, caA, &id, &e), ERR_UNAUTHORIZED);

    /* A pool of both CAs (concatenated PEM) trusts both clients. */
    size_t la, lb;
    char *pa = read_all(caA, &la), *pb = read_all(caB, &lb);
    char *both = mem_alloc(la + lb + 1);
    assert_non_null(both);
    memcpy(both, pa, la);
    memcpy(both + la, pb, lb);
    both[la + lb] = '\0';
    crypto_pool_t *poolAB = NULL;
    assert_int_equal(crypto_pool_load(both, la + lb, &poolAB, &e), 0);
    assert_int_equal(verify_file(poolAB, alice, &id, &e), 0);
    crypto_identity_free(&id);
    assert_int_equal(verify_file(poolAB, bob, &id, &e), 0);
    crypto_identity_free(&id);
    crypto_pool_free(poolAB);
    mem_free(both);
    mem_free(pa);
    mem_free(pb);

    /* Malformed input. */
    size_t dlen;
    unsigned char *der = der_from(alice, &dlen);
    const unsigned char *ders[] = {der, der};
    size_t lens[] = {dlen - 1, dlen};
    err_clear(&e);
    assert_int_equal(crypto_verify_client(poolA, ders, lens, 1, &id, &e), ERR_UNAUTHORIZED);
    assert_string_equal(e.message, "x509: malformed certificate");
    lens[0] = dlen;
    err_clear(&e);
    assert_int_equal(crypto_verify_client(poolA, ders, lens, 0, &id, &e), ERR_UNAUTHORIZED);
    err_clear(&e);
    assert_int_equal(crypto_verify_client(NULL, ders, lens, 1, &id, &e), ERR_UNAUTHORIZED);
    /* Extra chain certificates that are not needed do no harm. */
    err_clear(&e);
    assert_int_equal(crypto_verify_client(poolA, ders, lens, 2, &id, &e), 0);
    crypto_identity_free(&id);

    /* Allocation failures anywhere in verification return ERR_NOMEM and
     * leak nothing; eventually there are enough allocations to succeed. */
    for (long n = 0;; n++) {
        mem_fail_after(n);
        err_clear(&e);
        rc = crypto_verify_client(poolA, ders, lens, 1, &id, &e);
        mem_fail_after(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(id.cn);
    }
    assert_string_equal(id.cn, "alice");
    crypto_identity_free(&id);
    mem_free(der);

    crypto_pool_free(poolA);
    crypto_pool_free(poolB);
    rm_tree(t.path);
}

/* Any certificate of the pool is a trust anchor, as with Go's CertPool:
 * a pool holding only the leaf accepts that leaf. */
static void test_crypto__verify_leaf_in_pool(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char alice[256];
    err_t e = {0};
    crypto_identity_t id = {0};
    tmpdir_make(&t);
    issue_ca(&t, "ca");
    issue_leaf(&t, "ca", "alice", "alice", NULL, 1, NULL);
    path_in(alice, sizeof alice, &t, "alice.crt");
    crypto_pool_t *pool = pool_from(alice);
    assert_int_equal(verify_file(pool, alice, &id, &e), 0);
    assert_string_equal(id.cn, "alice");
    crypto_identity_free(&id);
    crypto_pool_free(pool);
    rm_tree(t.path);
}

/* Runs a shell command in dir t, failing the test if it fails. */
static void sh(const tmpdir_t *t, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && (%s) >/dev/null 2>&1", t->path, cmd);
    if (system(full) != 0)
        fail_msg("command failed: %s", cmd);
}

/* Certificates the module does not make itself (expired ones,
 * intermediate CAs) come from openssl(1), signed by a module-made CA. */
static void test_crypto__verify_expired(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char ca[256], old[256];
    err_t e = {0};
    crypto_identity_t id = {0};
    tmpdir_make(&t);
    issue_ca(&t, "ca");
    sh(&t, "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout old.key -subj /CN=old -out old.csr && "
           "openssl x509 -req -in old.csr -CA ca.crt -CAkey ca.key -days -1 "
           "-extfile client.ext -out old.crt");
    path_in(ca, sizeof ca, &t, "ca.crt");
    path_in(old, sizeof old, &t, "old.crt");
    crypto_pool_t *pool = pool_from(ca);
    assert_int_equal(verify_file(pool, old, &id, &e), ERR_UNAUTHORIZED);
    const char *want = "x509: certificate has expired or is not yet valid: current time ";
    if (strncmp(e.message, want, strlen(want)) != 0 || !strstr(e.message, "Z is after 20"))
        fail_msg("unexpected message: %s", e.message);
    assert_null(id.cn);
    crypto_pool_free(pool);
    rm_tree(t.path);
}

/* Leaf <- intermediate <- root: the intermediate travels with the leaf. */
static void test_crypto__verify_chain(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char root[256], inter[256], leaf[256];
    err_t e = {0};
    crypto_identity_t id = {0};
    tmpdir_make(&t);
    issue_ca(&t, "root");
    sh(&t, "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n' > ca.ext && "
           "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout inter.key -subj /CN=inter -out inter.csr && "
           "openssl x509 -req -in inter.csr -CA root.crt -CAkey root.key -days 1 "
           "-extfile ca.ext -out inter.crt && "
           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout leaf.key -subj /O=team/O=ops/CN=carol -out leaf.csr && "
           "openssl x509 -req -in leaf.csr -CA inter.crt -CAkey inter.key -days 1 "
           "-extfile client.ext -out leaf.crt");
    path_in(root, sizeof root, &t, "root.crt");
    path_in(inter, sizeof inter, &t, "inter.crt");
    path_in(leaf, sizeof leaf, &t, "leaf.crt");
    crypto_pool_t *pool = pool_from(root);

    size_t ll, li;
    unsigned char *dl = der_from(leaf, &ll), *di = der_from(inter, &li);
    const unsigned char *ders[] = {dl, di};
    const size_t lens[] = {ll, li};

    /* Without the intermediate the root cannot be reached. */
    assert_int_equal(crypto_verify_client(pool, ders, lens, 1, &id, &e), ERR_UNAUTHORIZED);
    assert_string_equal(e.message, "x509: certificate signed by unknown authority");
    err_clear(&e);
    int rc = crypto_verify_client(pool, ders, lens, 2, &id, &e);
    if (rc)
        fail_msg("verify chain: %s", e.message);
    assert_string_equal(id.cn, "carol");
    assert_int_equal(id.norgs, 2);
    assert_string_equal(id.orgs[0], "team");
    assert_string_equal(id.orgs[1], "ops");
    crypto_identity_free(&id);

    /* An intermediate restricted to serverAuth may not issue client
     * certificates (Go checks EKUs down the chain too). */
    sh(&t, "printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n"
           "extendedKeyUsage=serverAuth\\n' > srvca.ext && "
           "openssl x509 -req -in inter.csr -CA root.crt -CAkey root.key -days 1 "
           "-extfile srvca.ext -out inter.crt");
    mem_free(di);
    di = der_from(inter, &li);
    const unsigned char *ders2[] = {dl, di};
    const size_t lens2[] = {ll, li};
    err_clear(&e);
    assert_int_equal(crypto_verify_client(pool, ders2, lens2, 2, &id, &e), ERR_UNAUTHORIZED);
    assert_null(id.cn);

    mem_free(dl);
    mem_free(di);
    crypto_pool_free(pool);
    rm_tree(t.path);
}

static void test_crypto__pool_load_errors(void **state)
{
    (void)state;
    crypto_pool_t *p = NULL;
    err_t e = {0};
    static const char *const bad[] = {
        "",
        "garbage, not PEM at all",
        "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        /* valid PEM of something that is not a certificate */
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\naGVsbG8gd29ybGQ=\n-----END PUBLIC KEY-----\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        assert_int_equal(crypto_pool_load(bad[i], strlen(bad[i]), &p, &e), ERR_BAD_REQUEST);
        assert_null(p);
    }
    unsigned char *der = NULL;
    size_t len = 0;
    err_clear(&e);
    assert_int_equal(crypto_pem_to_der(bad[4], strlen(bad[4]), &der, &len, &e), ERR_BAD_REQUEST);
    assert_null(der);
}

static void test_crypto__pem_to_der(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char crt[256], key[256];
    err_t e = {0};
    tmpdir_make(&t);
    issue_ca(&t, "ca");
    path_in(crt, sizeof crt, &t, "ca.crt");
    path_in(key, sizeof key, &t, "ca.key");

    /* A key block before the certificate is skipped. */
    size_t lc, lk;
    char *pc = read_all(crt, &lc), *pk = read_all(key, &lk);
    char *both = mem_alloc(lc + lk);
    assert_non_null(both);
    memcpy(both, pk, lk);
    memcpy(both + lk, pc, lc);
    unsigned char *d1 = NULL, *d2 = NULL;
    size_t n1, n2;
    assert_int_equal(crypto_pem_to_der(pc, lc, &d1, &n1, &e), 0);
    assert_int_equal(crypto_pem_to_der(both, lc + lk, &d2, &n2, &e), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);
    assert_int_equal(d1[0], 0x30);  /* DER SEQUENCE */

    mem_fail_after(0);
    unsigned char *d3 = NULL;
    err_clear(&e);
    assert_int_equal(crypto_pem_to_der(pc, lc, &d3, &n1, &e), ERR_NOMEM);
    mem_fail_after(-1);
    assert_null(d3);

    mem_free(d1);
    mem_free(d2);
    mem_free(both);
    mem_free(pc);
    mem_free(pk);
    rm_tree(t.path);
}

static void test_crypto__issue_cert_errors(void **state)
{
    (void)state;
    tmpdir_t t = {{0}};
    char crt[256], key[256], ca[256], ca_key[256], other_key[256], missing[256];
    err_t e = {0};
    tmpdir_make(&t);
    issue_ca(&t, "ca");
    issue_ca(&t, "other");
    path_in(ca, sizeof ca, &t, "ca.crt");
    path_in(ca_key, sizeof ca_key, &t, "ca.key");
    path_in(other_key, sizeof other_key, &t, "other.key");
    path_in(missing, sizeof missing, &t, "missing.crt");
    path_in(crt, sizeof crt, &t, "x.crt");
    path_in(key, sizeof key, &t, "x.key");

    assert_int_equal(crypto_issue_cert(ca, ca_key, "x", NULL, 1, NULL, 0, crt, key, &e),
                     ERR_BAD_REQUEST);
    err_clear(&e);
    assert_int_equal(crypto_issue_cert(missing, ca_key, "x", NULL, 1, NULL, 1, crt, key, &e),
                     ERR_IO);
    err_clear(&e);
    assert_int_equal(crypto_issue_cert(ca, other_key, "x", NULL, 1, NULL, 1, crt, key, &e),
                     ERR_BAD_REQUEST);
    assert_non_null(strstr(e.message, "does not match"));
    err_clear(&e);
    /* The key file holds no certificate. */
    assert_int_equal(crypto_issue_cert(ca_key, ca_key, "x", NULL, 1, NULL, 1, crt, key, &e),
                     ERR_BAD_REQUEST);
    assert_int_not_equal(access(crt, F_OK), 0);
    assert_int_not_equal(access(key, F_OK), 0);
    rm_tree(t.path);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crypto__sha256_vectors),
        cmocka_unit_test(test_crypto__random),
        cmocka_unit_test(test_crypto__uuid4),
        cmocka_unit_test(test_crypto__uuid4_threads),
        cmocka_unit_test(test_crypto__read_file),
        cmocka_unit_test(test_crypto__ensure_serving_cert),
        cmocka_unit_test(test_crypto__serving_cert_defaults_and_errors),
        cmocka_unit_test(test_crypto__verify_client),
        cmocka_unit_test(test_crypto__verify_leaf_in_pool),
        cmocka_unit_test(test_crypto__verify_expired),
        cmocka_unit_test(test_crypto__verify_chain),
        cmocka_unit_test(test_crypto__pool_load_errors),
        cmocka_unit_test(test_crypto__pem_to_der),
        cmocka_unit_test(test_crypto__issue_cert_errors),
    };
    return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
