/*
 * b64: base64 (RFC 4648) in the standard and the URL-safe, unpadded
 * alphabets: continue tokens are base64.RawURLEncoding, etcd's JSON gateway
 * carries keys and values in standard base64, kubeconfigs carry PEM in it.
 *
 * Pure functions, thread-safe, no allocation beyond what they return.
 */
#ifndef EDGE_B64_H
#define EDGE_B64_H

#include <stddef.h>

typedef enum { B64_STD, B64_URL_RAW } b64_alphabet_t;

/* Encodes n bytes; returns a NUL-terminated string the caller owns
 * (mem_free), or NULL when out of memory. */
char *b64_encode(const void *src, size_t n, b64_alphabet_t a);

/* Decodes len characters (padding optional, whitespace not allowed).
 * Returns 0 and a caller-owned buffer (NUL-terminated for convenience, *outn
 * excludes it), ERR_BAD_REQUEST on malformed input, ERR_NOMEM. */
int b64_decode(const char *src, size_t len, b64_alphabet_t a,
               unsigned char **out, size_t *outn);

#endif
