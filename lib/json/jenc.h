/*
 * jenc: compact JSON text of jansson values, fast.
 *
 * Writes exactly the bytes json_dumps(v, JSON_COMPACT) of the installed
 * jansson (2.14) writes, and fails exactly where it returns NULL, but into
 * a caller's sbuf and without jansson's per-fragment callback and per-code-
 * point string walk: runs of bytes that need no escape are found eight at a
 * time and copied at once. The server serializes every stored object and
 * every response body, so this is on the hot path of every request.
 *
 * What "exactly" covers, read off jansson's dump.c and strconv.c:
 *   - members in the object's iteration (insertion) order, no spaces;
 *   - strings: `\"`, `\\`, `\b \f \n \r \t`, other bytes below 0x20 as
 *     `\u00XX` with upper-case hex; `/` and bytes from 0x7F up as they are
 *     (no JSON_ESCAPE_SLASH, no JSON_ENSURE_ASCII); the string's length
 *     from json_string_length, so embedded NULs come out as \u0000;
 *   - integers as "%lld"; reals as "%.17g" with '.' whatever the locale,
 *     ".0" appended when that reads as an integer, and the exponent without
 *     '+' or leading zeros (1e300 -> 1.0000000000000001e300);
 *   - failures (ERR_INVALID): a top-level value that is not an array or an
 *     object (jenc_append only), a container that contains itself, a
 *     string value that is not valid UTF-8 (possible through jansson's
 *     *_nocheck setters), a NaN or infinite real (jansson will not make
 *     one; refused rather than written as jansson would write it);
 *   - one quirk kept for byte equality: jansson ignores a failure while
 *     writing an object KEY, so a key that is not valid UTF-8 comes out
 *     cut short (its opening quote and what was flushed before the bad
 *     byte, no closing quote) and the dump goes on. Only keys set with
 *     json_object_set*_nocheck can get there.
 * Nesting depth is unbounded, as in jansson, but the walk keeps its own
 * stack on the heap instead of recursing, so a deep value cannot overflow
 * the thread's stack.
 *
 * Uses only mem (through sbuf) and jansson's accessors. Thread-safe: no
 * state but the caller's buffer; values must not change during a call.
 */
#ifndef EDGE_JENC_H
#define EDGE_JENC_H

#include <jansson.h>
#include <stddef.h>

#include "../sbuf.h"

/* Appends json_dumps(v, JSON_COMPACT) of v (an array or an object) to b.
 * Returns 0; ERR_NOMEM (b->oom is set; also when it was set on entry); or
 * ERR_INVALID where json_dumps returns NULL for other reasons (above). On
 * failure b is cut back to its length on entry. */
int jenc_append(sbuf_t *b, const json_t *v);

/* jenc_append for any value, as JSON_COMPACT | JSON_ENCODE_ANY: a string,
 * number, true, false or null alone is written too. */
int jenc_append_any(sbuf_t *b, const json_t *v);

/* Appends a member key and its ':' as json_dumps writes them inside an
 * object: len bytes of key, quoted and escaped (the quirk above included),
 * so a caller can write an object member by member. Returns 0 or
 * ERR_NOMEM. */
int jenc_append_key(sbuf_t *b, const char *key, size_t len);

/* Appends len bytes of s as a JSON string literal, quoted and escaped as
 * json_dumps writes a string value. Returns 0, ERR_NOMEM, or ERR_INVALID
 * when s is not valid UTF-8; on failure b is cut back to its length on
 * entry. */
int jenc_append_str(sbuf_t *b, const char *s, size_t len);

/* The length of the valid UTF-8 sequence at s (n bytes left; 1 for an
 * ASCII byte), 0 when there is none: what jansson accepts in a string
 * (its utf8_check_first and utf8_check_full: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
size_t jenc_utf8_len(const char *s, size_t n);

/* A jansson string of s in which every byte that is not part of valid
 * UTF-8 is replaced by U+FFFD, as Go's encoder writes such text: for
 * request-derived text (a path, a name) headed for a Status. A new
 * reference; NULL when out of memory. */
json_t *jenc_string_lossy(const char *s);

/* json_dumps(v, JSON_COMPACT): a NUL-terminated string the caller owns
 * (mem_free), with its length in *len when len is not NULL; NULL where
 * json_dumps returns NULL or when out of memory. */
char *jenc_dumps(const json_t *v, size_t *len);

#endif
