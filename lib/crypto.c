#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fs.h"
#include "mem.h"

/* Certificates are backdated this much so a peer whose clock lags a little
 * behind ours still accepts a certificate made a moment ago. */
#define CRYPTO_BACKDATE_SECONDS 3600L
#define CRYPTO_CA_DAYS 3650
#define CRYPTO_SERVING_DAYS 365

static const char crypto_hex[] = "0123456789abcdef";

/* ---- error conversion ----------------------------------------------- */

/* Converts the failure OpenSSL left in this thread's error queue into
 * ERR_INTERNAL ("<what>: <OpenSSL text>") and empties the queue, so no
 * stale entry is blamed for a later failure. */
static int crypto_ssl_fail(err_t *err, int code, const char *what)
{
    char text[256] = "no OpenSSL error recorded";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, text, sizeof text);
    ERR_clear_error();
    return err_set(err, code, "%s: %s", what, text);
}

/* ---- hashing and randomness ----------------------------------------- */

static void crypto_hex_encode(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = crypto_hex[b[i] >> 4];
        out[2 * i + 1] = crypto_hex[b[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

void crypto_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        ERR_clear_error();
        return;
    }
    crypto_hex_encode(md, mdlen, out);
}

int crypto_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    /* RAND_bytes takes an int count. */
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1) {
            ERR_clear_error();
            return ERR_INTERNAL;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* The kernel's generator, for when OpenSSL's cannot be used. */
static int crypto_getrandom(unsigned char *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(buf, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ERR_INTERNAL;
        }
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

/* UUIDs are drawn from a per-thread buffer of DRBG output: one generator
 * call per 32 UUIDs instead of one each (a request's audit ID is one). */
#define CRYPTO_UUID_POOL 512

void crypto_uuid4(char out[37])
{
    static _Thread_local unsigned char pool[CRYPTO_UUID_POOL];
    static _Thread_local size_t left;
    unsigned char b[16];

    if (left < sizeof b) {
        if (crypto_random(pool, sizeof pool) != 0 && crypto_getrandom(pool, sizeof pool) != 0) {
            fputs("crypto: no source of random bytes for a UUID\n", stderr);
            abort();
        }
        left = sizeof pool;
    }
    memcpy(b, pool + sizeof pool - left, sizeof b);
    /* Used bytes do not stay behind in the buffer. */
    OPENSSL_cleanse(pool + sizeof pool - left, sizeof b);
    left -= sizeof b;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */

    char *o = out;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = crypto_hex[b[i] >> 4];
        *o++ = crypto_hex[b[i] & 0x0f];
    }
    *o = '\0';
}

/* ---- files ------------------------------------------------------------ */

/* dir + "/" + name into buf (PATH_MAX bytes). */
static int crypto_join(char *buf, const char *dir, const char *name, err_t *err)
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_MAX)
        return err_set(err, ERR_IO, "path too long: %s/%s", dir, name);
    return 0;
}

/* Writes cert (if non-NULL) or else key as PEM to path; keys are 0600. */
static int crypto_write_pem(const char *path, X509 *cert, EVP_PKEY *key, err_t *err)
{
    int rc = 0;
    char *data = NULL;
    BIO *b = BIO_new(BIO_s_mem());

    if (!b)
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a memory BIO");
    int ok = cert ? PEM_write_bio_X509(b, cert)
                  : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    if (!ok) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot encode PEM");
        goto out;
    }
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0 || !data) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot encode PEM");
        goto out;
    }
    rc = fs_write_atomic(path, data, (size_t)n, cert ? 0644 : 0600, err);
out:
    BIO_free(b);
    return rc;
}

/* ---- certificate creation ------------------------------------------ */

/* One X509v3 extension in OpenSSL's configuration syntax. */
typedef struct crypto_ext {
    int nid;
    const char *value;
} crypto_ext_t;

static const crypto_ext_t crypto_ca_exts[] = {
    {NID_basic_constraints, "critical,CA:TRUE"},
    {NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign"},
    {NID_subject_key_identifier, "hash"},
    {NID_undef, NULL},
};

static const crypto_ext_t crypto_server_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "serverAuth"},
    {NID_authority_key_identifier, "keyid"},
    {NID_undef, NULL},
};

static const crypto_ext_t crypto_client_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "clientAuth"},
    {NID_authority_key_identifier, "keyid"},
    {NID_undef, NULL},
};

/* What to put in a new certificate. */
typedef struct crypto_cert_spec {
    const char *cn;
    const char *const *orgs;      /* NULL-terminated, may be NULL */
    const crypto_ext_t *exts;     /* one of the tables above */
    const char *const *dns;       /* DNS SANs, NULL-terminated, may be NULL */
    int loopback;                 /* add IP SANs 127.0.0.1 and ::1 */
    const char *const *ips;       /* IP SANs, NULL-terminated, may be NULL */
    int days;
} crypto_cert_spec_t;

/* Appends one DNS or IP name to gens. */
static int crypto_add_name(GENERAL_NAMES *gens, int type, const char *value,
                           err_t *err)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!gn)
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a SAN");
    if (type == GEN_DNS) {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!s || !ASN1_STRING_set(s, value, -1)) {
            ASN1_IA5STRING_free(s);
            GENERAL_NAME_free(gn);
            return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a SAN");
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    } else {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
        if (!ip) {
            GENERAL_NAME_free(gn);
            ERR_clear_error();
            return err_set(err, ERR_BAD_REQUEST, "invalid IP address \"%s\"", value);
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    }
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a SAN");
    }
    return 0;
}

/* Adds the subjectAltName extension for spec's names, if it has any. */
static int crypto_add_sans(X509 *x, const crypto_cert_spec_t *spec, err_t *err)
{
    static const char *const loopback[] = {"127.0.0.1", "::1", NULL};
    int rc = 0;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

    if (!gens)
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate SANs");
    for (size_t i = 0; spec->dns && spec->dns[i] && !rc; i++)
        rc = crypto_add_name(gens, GEN_DNS, spec->dns[i], err);
    for (size_t i = 0; spec->loopback && loopback[i] && !rc; i++)
        rc = crypto_add_name(gens, GEN_IPADD, loopback[i], err);
    for (size_t i = 0; spec->ips && spec->ips[i] && !rc; i++)
        rc = crypto_add_name(gens, GEN_IPADD, spec->ips[i], err);
    if (!rc && sk_GENERAL_NAME_num(gens) > 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot add subjectAltName");
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Subject: O values in order, then CN. UTF8String entries are set as
 * given, without OpenSSL's 64-byte CN limit (Go has none, and a long DNS
 * name may become a CN). */
static int crypto_set_subject(X509 *x, const crypto_cert_spec_t *spec, err_t *err)
{
    int rc = 0;
    X509_NAME *name = X509_NAME_new();

    if (!name)
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a name");
    for (size_t i = 0; spec->orgs && spec->orgs[i]; i++) {
        if (!X509_NAME_add_entry_by_NID(name, NID_organizationName, V_ASN1_UTF8STRING,
                                        (const unsigned char *)spec->orgs[i], -1, -1, 0)) {
            rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot set subject O");
            goto out;
        }
    }
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                    (const unsigned char *)spec->cn, -1, -1, 0) ||
        !X509_set_subject_name(x, name)) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot set subject");
        goto out;
    }
out:
    X509_NAME_free(name);
    return rc;
}

/* A random positive 16-byte serial number, as RFC 5280 section 4.1.2.2
 * and the CA/Browser baseline (64 random bits or more) ask. */
static int crypto_set_serial(X509 *x, err_t *err)
{
    unsigned char b[16];
    if (crypto_random(b, sizeof b) != 0)
        return err_set(err, ERR_INTERNAL, "cannot generate a serial number");
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);  /* positive, 16 bytes */
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    if (!ok)
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot set the serial number");
    return 0;
}

/* Makes a new key and a certificate for it as spec says, signed by
 * ca/ca_key, or self-signed when ca is NULL. On success *cert_out and
 * *key_out are the caller's (X509_free, EVP_PKEY_free). */
static int crypto_make_cert(const crypto_cert_spec_t *spec, X509 *ca,
                            EVP_PKEY *ca_key, X509 **cert_out,
                            EVP_PKEY **key_out, err_t *err)
{
    int rc = 0;
    X509 *x = NULL;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (!key) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot generate an ECDSA P-256 key");
        goto out;
    }
    x = X509_new();
    if (!x || !X509_set_version(x, X509_VERSION_3)) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a certificate");
        goto out;
    }
    rc = crypto_set_serial(x, err);
    if (rc)
        goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -CRYPTO_BACKDATE_SECONDS) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), spec->days, 0, NULL)) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot set the validity period");
        goto out;
    }
    rc = crypto_set_subject(x, spec, err);
    if (rc)
        goto out;
    if (!X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : X509_get_subject_name(x)) ||
        !X509_set_pubkey(x, key)) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot set issuer or public key");
        goto out;
    }

    /* The extension context names the issuer (for authorityKeyIdentifier)
     * and the subject (for subjectKeyIdentifier, from the key set above). */
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca ? ca : x, x, NULL, NULL, 0);
    for (const crypto_ext_t *e = spec->exts; e->nid != NID_undef; e++) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, e->nid, e->value);
        int ok = ext && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        if (!ok) {
            rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot add a certificate extension");
            goto out;
        }
    }
    rc = crypto_add_sans(x, spec, err);
    if (rc)
        goto out;
    if (!X509_sign(x, ca_key ? ca_key : key, EVP_sha256())) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot sign the certificate");
        goto out;
    }
    *cert_out = x;
    *key_out = key;
    x = NULL;
    key = NULL;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* Writes a key then its certificate: the certificate's presence is what
 * says the pair is complete. */
static int crypto_write_pair(const char *cert_path, const char *key_path,
                             X509 *cert, EVP_PKEY *key, err_t *err)
{
    int rc = crypto_write_pem(key_path, NULL, key, err);
    if (!rc)
        rc = crypto_write_pem(cert_path, cert, NULL, err);
    return rc;
}

int crypto_ensure_serving_cert(const char *dir, const char *const *dns_names,
                               const char *const *ips, err_t *err)
{
    static const char *const default_dns[] = {"localhost", NULL};
    char ca_crt[PATH_MAX], ca_key_path[PATH_MAX], crt[PATH_MAX], key_path[PATH_MAX];
    char ca_cn[64];
    int rc, have_crt = 0, have_key = 0;
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;

    ERR_clear_error();
    rc = fs_mkdir_p(dir, err);
    if (rc)
        return rc;
    if ((rc = crypto_join(ca_crt, dir, "ca.crt", err)) ||
        (rc = crypto_join(ca_key_path, dir, "ca.key", err)) ||
        (rc = crypto_join(crt, dir, "apiserver.crt", err)) ||
        (rc = crypto_join(key_path, dir, "apiserver.key", err)))
        return rc;
    if ((rc = fs_exists(crt, &have_crt, err)) ||
        (rc = fs_exists(key_path, &have_key, err)))
        return rc;
    if (have_crt && have_key)
        return 0;

    if (!dns_names || !dns_names[0])
        dns_names = default_dns;
    snprintf(ca_cn, sizeof ca_cn, "edge-apiserver-ca@%lld", (long long)time(NULL));
    const crypto_cert_spec_t ca_spec = {
        .cn = ca_cn, .exts = crypto_ca_exts, .days = CRYPTO_CA_DAYS,
    };
    const crypto_cert_spec_t spec = {
        .cn = dns_names[0], .exts = crypto_server_exts, .dns = dns_names,
        .loopback = 1, .ips = ips, .days = CRYPTO_SERVING_DAYS,
    };
    rc = crypto_make_cert(&ca_spec, NULL, NULL, &ca, &ca_key, err);
    if (rc)
        goto out;
    rc = crypto_make_cert(&spec, ca, ca_key, &cert, &key, err);
    if (rc)
        goto out;
    /* CA first, serving pair last (see crypto_write_pair). */
    rc = crypto_write_pair(ca_crt, ca_key_path, ca, ca_key, err);
    if (rc)
        goto out;
    rc = crypto_write_pair(crt, key_path, cert, key, err);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    ERR_clear_error();
    return rc;
}

/* Refuses to prompt for a passphrase: keys here are never encrypted, and a
 * server must not block on a terminal. */
static int crypto_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Reads the first certificate (cert non-NULL) or private key (key non-NULL)
 * from the PEM file at path. */
static int crypto_load_pem_file(const char *path, X509 **cert, EVP_PKEY **key,
                                err_t *err)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *b = NULL;
    int rc = fs_read_file(path, &pem, &len, err);

    if (rc)
        return rc;
    /* len is at most FS_MAX_FILE, so it fits an int. */
    b = BIO_new_mem_buf(pem, (int)len);
    if (!b) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a memory BIO");
        goto out;
    }
    if (cert) {
        *cert = PEM_read_bio_X509(b, NULL, crypto_no_passphrase, NULL);
        if (!*cert) {
            char what[PATH_MAX + 32];
            snprintf(what, sizeof what, "no certificate in %s", path);
            rc = crypto_ssl_fail(err, ERR_BAD_REQUEST, what);
        }
    } else {
        *key = PEM_read_bio_PrivateKey(b, NULL, crypto_no_passphrase, NULL);
        if (!*key) {
            char what[PATH_MAX + 32];
            snprintf(what, sizeof what, "no private key in %s", path);
            rc = crypto_ssl_fail(err, ERR_BAD_REQUEST, what);
        }
    }
out:
    BIO_free(b);
    mem_free(pem);
    return rc;
}

int crypto_issue_cert(const char *ca_cert_path, const char *ca_key_path,
                      const char *cn, const char *const *orgs, int client,
                      const char *const *dns_names, int days,
                      const char *cert_path, const char *key_path,
                      err_t *err)
{
    int rc = 0;
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    crypto_cert_spec_t spec = {.cn = cn, .orgs = orgs, .days = days};

    ERR_clear_error();
    if (days <= 0)
        return err_set(err, ERR_BAD_REQUEST, "days must be positive, got %d", days);
    if (ca_cert_path) {
        if (!ca_key_path)
            return err_set(err, ERR_BAD_REQUEST, "a CA certificate needs its key");
        rc = crypto_load_pem_file(ca_cert_path, &ca, NULL, err);
        if (rc)
            goto out;
        rc = crypto_load_pem_file(ca_key_path, NULL, &ca_key, err);
        if (rc)
            goto out;
        if (X509_check_private_key(ca, ca_key) != 1) {
            ERR_clear_error();
            rc = err_set(err, ERR_BAD_REQUEST, "key %s does not match certificate %s",
                         ca_key_path, ca_cert_path);
            goto out;
        }
        spec.exts = client ? crypto_client_exts : crypto_server_exts;
        spec.dns = client ? NULL : dns_names;
    } else {
        spec.exts = crypto_ca_exts;
    }
    rc = crypto_make_cert(&spec, ca, ca_key, &cert, &key, err);
    if (rc)
        goto out;
    rc = crypto_write_pair(cert_path, key_path, cert, key, err);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    ERR_clear_error();
    return rc;
}

/* ---- PEM blocks ------------------------------------------------------ */

/* Calls fn(arg, der, len) for each CERTIFICATE block of pem in order until
 * fn returns non-zero (which is returned) or the blocks end (0). A block
 * that is not valid PEM ends the walk, as there is no telling where the
 * next one starts. */
typedef int (*crypto_der_fn)(void *arg, const unsigned char *der, long len);

static int crypto_each_cert_block(const char *pem, size_t len, crypto_der_fn fn,
                                  void *arg, err_t *err)
{
    int rc = 0;

    if (len > INT_MAX)
        return err_set(err, ERR_BAD_REQUEST, "PEM data too large");
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a memory BIO");
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long dlen = 0;
        if (PEM_read_bio(b, &name, &header, &data, &dlen) != 1)
            break;
        if (strcmp(name, "CERTIFICATE") == 0)
            rc = fn(arg, data, dlen);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (rc)
            break;
    }
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

typedef struct crypto_first_der {
    unsigned char *der;
    size_t len;
} crypto_first_der_t;

/* Keeps a copy of the first block and stops the walk (1). */
static int crypto_take_first(void *arg, const unsigned char *der, long len)
{
    crypto_first_der_t *f = arg;
    f->der = mem_alloc((size_t)len);
    if (!f->der)
        return ERR_NOMEM;
    memcpy(f->der, der, (size_t)len);
    f->len = (size_t)len;
    return 1;
}

int crypto_pem_to_der(const char *pem, size_t len, unsigned char **der,
                      size_t *der_len, err_t *err)
{
    crypto_first_der_t f = {NULL, 0};
    int rc = crypto_each_cert_block(pem, len, crypto_take_first, &f, err);

    if (rc == ERR_NOMEM)
        return err_set(err, ERR_NOMEM, "out of memory decoding PEM");
    if (rc < 0)
        return rc;
    if (!f.der)
        return err_set(err, ERR_BAD_REQUEST, "no CERTIFICATE block in PEM data");
    *der = f.der;
    *der_len = f.len;
    return 0;
}

/* ---- trust pools ----------------------------------------------------- */

struct crypto_pool {
    X509_STORE *store;     /* read-only once loaded; OpenSSL locks lookups */
    size_t ncerts;
};

/* Parses one DER certificate that must span exactly len bytes, as Go's
 * ParseCertificate insists (no trailing data). NULL if it does not. */
static X509 *crypto_parse_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    if (!der || len == 0 || len > LONG_MAX)
        return NULL;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    ERR_clear_error();
    return x;
}

/* Adds one parsed block to the pool; unparsable ones are skipped. */
static int crypto_pool_add(void *arg, const unsigned char *der, long len)
{
    crypto_pool_t *p = arg;
    X509 *x = crypto_parse_der(der, (size_t)len);
    if (!x)
        return 0;
    int ok = X509_STORE_add_cert(p->store, x);
    X509_free(x);  /* the store holds its own reference */
    if (!ok)
        return ERR_INTERNAL;
    p->ncerts++;
    return 0;
}

int crypto_pool_load(const char *pem, size_t len, crypto_pool_t **out, err_t *err)
{
    int rc = 0;
    crypto_pool_t *p = mem_calloc(1, sizeof *p);

    ERR_clear_error();
    if (!p)
        return err_set(err, ERR_NOMEM, "out of memory loading CA certificates");
    p->store = X509_STORE_new();
    if (!p->store) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot allocate a certificate store");
        goto out;
    }
    /* Every certificate of the pool is a trust anchor, self-signed or not,
     * as in Go's CertPool. */
    if (!X509_STORE_set_flags(p->store, X509_V_FLAG_PARTIAL_CHAIN)) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "cannot configure a certificate store");
        goto out;
    }
    rc = crypto_each_cert_block(pem, len, crypto_pool_add, p, err);
    if (rc) {
        rc = crypto_ssl_fail(err, rc, "cannot add a CA certificate");
        goto out;
    }
    if (p->ncerts == 0) {
        rc = err_set(err, ERR_BAD_REQUEST, "no valid CERTIFICATE block in CA PEM data");
        goto out;
    }
    *out = p;
    p = NULL;
out:
    crypto_pool_free(p);
    return rc;
}

void crypto_pool_free(crypto_pool_t *p)
{
    if (!p)
        return;
    X509_STORE_free(p->store);
    mem_free(p);
}

/* ---- client verification -------------------------------------------- */

void crypto_identity_free(crypto_identity_t *id)
{
    if (!id)
        return;
    mem_free(id->cn);
    for (size_t i = 0; i < id->norgs; i++)
        mem_free(id->orgs[i]);
    mem_free(id->orgs);
    id->cn = NULL;
    id->orgs = NULL;
    id->norgs = 0;
}

/* A name entry's value as a NUL-terminated UTF-8 copy (caller mem_frees).
 * A value with an embedded NUL is refused: "alice\0admin" must not turn
 * into "alice". */
static int crypto_entry_utf8(const X509_NAME_ENTRY *e, char **out, err_t *err)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));

    if (n < 0)
        return crypto_ssl_fail(err, ERR_UNAUTHORIZED, "x509: malformed subject");
    if (memchr(utf8, '\0', (size_t)n)) {
        OPENSSL_free(utf8);
        return err_set(err, ERR_UNAUTHORIZED, "x509: malformed subject");
    }
    *out = mem_strndup((const char *)utf8, (size_t)n);
    OPENSSL_free(utf8);
    if (!*out)
        return err_set(err, ERR_NOMEM, "out of memory reading a certificate subject");
    return 0;
}

/* Fills id (zeroed by the caller) from the subject of x: the last CN (Go's
 * pkix.Name keeps the last) and every O in order. On failure id holds what
 * was filled so far, for the caller to free. */
static int crypto_identity_from(const X509 *x, crypto_identity_t *id, err_t *err)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int count = X509_NAME_entry_count(name);
    size_t norgs = 0;
    int rc;

    for (int i = 0; i < count; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) == NID_organizationName)
            norgs++;
    }
    if (norgs) {
        id->orgs = mem_calloc(norgs, sizeof *id->orgs);
        if (!id->orgs)
            return err_set(err, ERR_NOMEM, "out of memory reading a certificate subject");
    }
    for (int i = 0; i < count; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        char *s = NULL;
        if (nid != NID_commonName && nid != NID_organizationName)
            continue;
        rc = crypto_entry_utf8(e, &s, err);
        if (rc)
            return rc;
        if (nid == NID_commonName) {
            mem_free(id->cn);
            id->cn = s;
        } else {
            id->orgs[id->norgs++] = s;
        }
    }
    if (!id->cn) {
        id->cn = mem_strdup("");
        if (!id->cn)
            return err_set(err, ERR_NOMEM, "out of memory reading a certificate subject");
    }
    return 0;
}

/* A time as RFC 3339 ("2006-01-02T15:04:05Z"); t NULL is now. */
static void crypto_rfc3339(const ASN1_TIME *t, char *buf, size_t n)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "unknown");
}

/* How each OpenSSL verification error reads in Go's crypto/x509 words. */
typedef struct crypto_verify_msg {
    int x509_code;
    int code;
    const char *message;
} crypto_verify_msg_t;

#define CRYPTO_UNKNOWN_CA "x509: certificate signed by unknown authority"
#define CRYPTO_EXPIRED "x509: certificate has expired or is not yet valid"

static const crypto_verify_msg_t crypto_verify_msgs[] = {
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_CERT_UNTRUSTED, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_CERT_REJECTED, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_CERT_SIGNATURE_FAILURE, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY, ERR_UNAUTHORIZED, CRYPTO_UNKNOWN_CA},
    {X509_V_ERR_CERT_HAS_EXPIRED, ERR_UNAUTHORIZED, CRYPTO_EXPIRED},
    {X509_V_ERR_CERT_NOT_YET_VALID, ERR_UNAUTHORIZED, CRYPTO_EXPIRED},
    {X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, ERR_UNAUTHORIZED, CRYPTO_EXPIRED},
    {X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, ERR_UNAUTHORIZED, CRYPTO_EXPIRED},
    {X509_V_ERR_INVALID_PURPOSE, ERR_UNAUTHORIZED,
     "x509: certificate specifies an incompatible key usage"},
    {X509_V_ERR_INVALID_CA, ERR_UNAUTHORIZED,
     "x509: certificate is not authorized to sign other certificates"},
    {X509_V_ERR_KEYUSAGE_NO_CERTSIGN, ERR_UNAUTHORIZED,
     "x509: certificate is not authorized to sign other certificates"},
    {X509_V_ERR_PATH_LENGTH_EXCEEDED, ERR_UNAUTHORIZED,
     "x509: too many intermediates for path length constraint"},
    {X509_V_ERR_OUT_OF_MEM, ERR_NOMEM, "x509: out of memory"},
    {X509_V_OK, 0, NULL},
};

/* Reports why X509_verify_cert refused the chain. */
static int crypto_verify_fail(X509_STORE_CTX *ctx, err_t *err)
{
    int x509_code = X509_STORE_CTX_get_error(ctx);
    const crypto_verify_msg_t *m = crypto_verify_msgs;

    ERR_clear_error();
    while (m->message && m->x509_code != x509_code)
        m++;
    if (!m->message)
        return err_set(err, ERR_UNAUTHORIZED, "x509: %s",
                       X509_verify_cert_error_string(x509_code));
    if (x509_code == X509_V_ERR_CERT_HAS_EXPIRED || x509_code == X509_V_ERR_CERT_NOT_YET_VALID) {
        /* Go adds which bound was crossed, in RFC 3339. */
        const X509 *x = X509_STORE_CTX_get_current_cert(ctx);
        int expired = x509_code == X509_V_ERR_CERT_HAS_EXPIRED;
        char now[32], bound[32];
        crypto_rfc3339(NULL, now, sizeof now);
        crypto_rfc3339(x ? (expired ? X509_get0_notAfter(x) : X509_get0_notBefore(x)) : NULL,
                       bound, sizeof bound);
        return err_set(err, m->code, "%s: current time %s is %s %s", m->message, now,
                       expired ? "after" : "before", bound);
    }
    return err_set(err, m->code, "%s", m->message);
}

int crypto_verify_client(const crypto_pool_t *pool,
                         const unsigned char *const *der,
                         const size_t *der_len, size_t n,
                         crypto_identity_t *id, err_t *err)
{
    int rc = 0;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE_CTX *ctx = NULL;
    crypto_identity_t got = {NULL, NULL, 0};

    ERR_clear_error();
    if (!pool)
        return err_set(err, ERR_UNAUTHORIZED, "x509: no client CA configured");
    if (n == 0)
        return err_set(err, ERR_UNAUTHORIZED, "x509: no client certificate");
    leaf = crypto_parse_der(der[0], der_len[0]);
    if (!leaf) {
        rc = err_set(err, ERR_UNAUTHORIZED, "x509: malformed certificate");
        goto out;
    }
    untrusted = sk_X509_new_null();
    if (!untrusted) {
        rc = crypto_ssl_fail(err, ERR_NOMEM, "x509: cannot allocate a chain");
        goto out;
    }
    for (size_t i = 1; i < n; i++) {
        X509 *x = crypto_parse_der(der[i], der_len[i]);
        if (!x) {
            rc = err_set(err, ERR_UNAUTHORIZED, "x509: malformed certificate");
            goto out;
        }
        if (!sk_X509_push(untrusted, x)) {
            X509_free(x);
            rc = crypto_ssl_fail(err, ERR_NOMEM, "x509: cannot allocate a chain");
            goto out;
        }
    }
    ctx = X509_STORE_CTX_new();
    /* The store is only read here; OpenSSL locks its own lookups. */
    if (!ctx || !X509_STORE_CTX_init(ctx, pool->store, leaf, untrusted) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
        rc = crypto_ssl_fail(err, ERR_INTERNAL, "x509: cannot set up verification");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        rc = crypto_verify_fail(ctx, err);
        goto out;
    }
    rc = crypto_identity_from(leaf, &got, err);
    if (rc)
        goto out;
    *id = got;
    got = (crypto_identity_t){NULL, NULL, 0};
out:
    crypto_identity_free(&got);
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    ERR_clear_error();
    return rc;
}
