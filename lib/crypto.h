/*
 * crypto: hashing, randomness, certificates and client-certificate
 * verification; the one file of the project that talks to OpenSSL.
 *
 * What it owns
 *   Nothing global: every function works on what it is given. Certificates
 *   it creates use ECDSA P-256 keys signed with SHA-256, a random 127-bit
 *   serial number, and a notBefore one hour in the past so a peer whose
 *   clock lags a little still accepts them. Keys are written as unencrypted
 *   PKCS#8 PEM ("PRIVATE KEY"), mode 0600; certificates as PEM, mode 0644.
 *   Every file is written atomically (a temporary file in the same
 *   directory, fsync, rename), so a reader sees the old file or the whole
 *   new one.
 *
 * Errors
 *   OpenSSL failures become ERR_INTERNAL carrying OpenSSL's own error text;
 *   file-system failures ERR_IO with the path and strerror text. Client
 *   certificate verification fails with ERR_UNAUTHORIZED and a message in
 *   the words of Go's crypto/x509 ("x509: certificate signed by unknown
 *   authority"), the text kube-apiserver's x509 authenticator reports.
 *
 * Thread safety: every function is safe to call from any thread at the
 * same time (OpenSSL 3 initialises and locks itself; its error queue is
 * per-thread and is left empty on return). A crypto_pool_t is read-only
 * once loaded and may be shared by any number of verifying threads; it must
 * not be freed while one is using it.
 */
#ifndef EDGE_CRYPTO_H
#define EDGE_CRYPTO_H

#include <stddef.h>

#include "err.h"


/* ---- hashing and randomness ---------------------------------------- */

/* Lowercase hex SHA-256 of data into out (64 hex chars + NUL). It cannot
 * fail short of OpenSSL running out of memory, in which case out is the
 * empty string (never equal to a real digest). */
void crypto_sha256_hex(const void *data, size_t len, char out[65]);

/* Fills buf with n cryptographically random bytes (OpenSSL's DRBG).
 * Returns 0, or ERR_INTERNAL when the generator cannot be seeded. */
int crypto_random(void *buf, size_t n);

/* A random RFC 4122 version-4 UUID, lowercase,
 * "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (y is 8, 9, a or b). Falls back to
 * the kernel's getrandom(2) if OpenSSL's generator fails, and aborts the
 * process if both do: handing out a predictable or repeated UID is worse.
 * Thread-safe; each thread draws from its own buffer of generator output. */
void crypto_uuid4(char out[37]);

/* ---- certificates ---------------------------------------------------- */

/* Makes sure dir holds a serving certificate and key. dir (and any missing
 * parent) is created mode 0700 when missing.
 *
 * When dir/apiserver.crt and dir/apiserver.key both exist they are kept as
 * they are. Otherwise this generates, replacing whatever was there:
 *   dir/ca.crt, dir/ca.key   a self-signed CA, CN "edge-apiserver-ca@<unix
 *                            time>", 10 years, basicConstraints CA:TRUE,
 *                            keyUsage keyCertSign (and cRLSign,
 *                            digitalSignature);
 *   dir/apiserver.crt/.key   a serving certificate signed by that CA, CN the
 *                            first DNS name, 1 year, EKU serverAuth, SANs:
 *                            every dns_names entry as DNS, IP 127.0.0.1 and
 *                            ::1, then every ips entry as IP.
 * dns_names is NULL-terminated; NULL or empty means {"localhost"}. ips is
 * NULL-terminated and may be NULL. The serving certificate is written last,
 * so a crash part-way leaves a directory this call regenerates next time.
 *
 * Returns 0, ERR_IO (with path and strerror text), ERR_BAD_REQUEST (an ips
 * entry that is not an IPv4 or IPv6 address), ERR_INTERNAL (OpenSSL). */
int crypto_ensure_serving_cert(const char *dir, const char *const *dns_names,
                               const char *const *ips, err_t *err);

/* Issues a certificate, for tests and hack scripts.
 *
 * With ca_cert_path and ca_key_path (PEM files), the certificate is signed
 * by that CA and is a leaf (CA:FALSE): client 1 gives EKU clientAuth (and
 * ignores dns_names), client 0 gives EKU serverAuth with every dns_names
 * entry (NULL-terminated, may be NULL) as a DNS SAN. With ca_cert_path NULL
 * it is a self-signed CA instead (CA:TRUE, keyCertSign; client and
 * dns_names are ignored).
 *
 * Subject: each orgs entry (NULL-terminated, may be NULL) as an O value, in
 * order, then CN cn. Valid for days days (> 0). Writes cert_path and
 * key_path (PEM, atomically; key mode 0600).
 *
 * Returns 0, ERR_BAD_REQUEST (days <= 0, a CA file with no certificate or
 * key, a key that does not match the CA certificate), ERR_IO, ERR_NOMEM,
 * ERR_REQUEST_TOO_LARGE (CA file over FS_MAX_FILE), ERR_INTERNAL. */
int crypto_issue_cert(const char *ca_cert_path, const char *ca_key_path,
                      const char *cn, const char *const *orgs, int client,
                      const char *const *dns_names, int days,
                      const char *cert_path, const char *key_path,
                      err_t *err);

/* The DER bytes of the first CERTIFICATE block in pem (len bytes, need not
 * be NUL-terminated). *der is the caller's (mem_free). Returns 0,
 * ERR_BAD_REQUEST (no certificate block), ERR_NOMEM. */
int crypto_pem_to_der(const char *pem, size_t len, unsigned char **der,
                      size_t *der_len, err_t *err);

/* ---- client certificate verification ------------------------------- */

/* A set of trusted CA certificates. Any certificate in the pool is a trust
 * anchor, also one that is not self-signed (as in Go's x509.CertPool). */
typedef struct crypto_pool crypto_pool_t;

/* Loads every CERTIFICATE block of pem (len bytes: one certificate or many
 * concatenated; other blocks and unparsable certificates are skipped, as
 * Go's AppendCertsFromPEM does). Returns 0 and *out (caller owns;
 * crypto_pool_free), ERR_BAD_REQUEST if no certificate could be loaded,
 * ERR_NOMEM, ERR_INTERNAL. */
int crypto_pool_load(const char *pem, size_t len, crypto_pool_t **out,
                     err_t *err);

/* Frees p; NULL is a no-op. */
void crypto_pool_free(crypto_pool_t *p);

/* The identity in a verified client certificate: the subject's CN (the
 * last one if several; "" if none) and its O values in order. The caller
 * owns every string and frees them all with crypto_identity_free. */
typedef struct crypto_identity {
    char *cn;
    char **orgs;
    size_t norgs;
} crypto_identity_t;

/* Verifies a client certificate chain given as n DER blobs (leaf first,
 * then intermediates, in any order) against pool at the current time, as
 * Go's x509 Verify with ExtKeyUsageClientAuth does for
 * k8s.io/apiserver/pkg/authentication/request/x509: the chain must reach a
 * certificate of the pool, every certificate must be within its validity
 * period, and the leaf (and intermediates) must allow client auth (an EKU
 * extension, when present, must include clientAuth).
 *
 * Returns 0 and fills *id (caller frees with crypto_identity_free), or
 * ERR_UNAUTHORIZED with a Go-style message, e.g.
 *   "x509: certificate signed by unknown authority"
 *   "x509: certificate has expired or is not yet valid: current time ..."
 *   "x509: certificate specifies an incompatible key usage"
 *   "x509: malformed certificate" (a blob that is not one DER certificate)
 * or ERR_NOMEM / ERR_INTERNAL. *id is untouched on failure.
 * Thread-safe: pool is only read. */
int crypto_verify_client(const crypto_pool_t *pool,
                         const unsigned char *const *der,
                         const size_t *der_len, size_t n,
                         crypto_identity_t *id, err_t *err);

/* Frees the strings of id and zeroes it; NULL or zeroed is a no-op. */
void crypto_identity_free(crypto_identity_t *id);

#endif
