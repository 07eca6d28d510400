/*
 * jraw: finds the members of a JSON object text without decoding it.
 *
 * A reader that needs two or three members of a large stored object (the
 * authorizer's follower wants metadata.name and spec, not managedFields)
 * takes their byte spans here and decodes only those. Nothing is
 * allocated; the text is read once, front to back, never past text + len
 * (it need not be NUL-terminated).
 *
 * Well-formed means what jansson's json_loadb(text, len, JSON_DECODE_ANY)
 * decodes, and the whole text is checked, not only up to the member
 * looked for:
 *   - RFC 8259 grammar, whitespace (space, tab, CR, LF) around any token;
 *   - strings: strict UTF-8 (no overlong forms, surrogates or code points
 *     past U+10FFFF), no raw control characters, only the standard
 *     escapes, \u escapes with surrogates paired and never \u0000;
 *   - integers that fit json_int_t (64 bits), reals that do not overflow a
 *     double (strtod in the "C" locale; a real token longer than 1,000
 *     bytes that might overflow is rejected rather than converted);
 *   - at most JRAW_MAX_DEPTH nested values, counted as jansson counts them
 *     (the top-level value is depth 1), jansson's JSON_PARSER_MAX_DEPTH;
 *   - no NUL byte anywhere (jansson lets one pass right after a number or
 *     a literal, a quirk of its reader; jraw does not).
 * A caller that must accept exactly what jansson accepts decodes the whole
 * text with jansson when jraw reports ERR_BAD_REQUEST: jraw never accepts
 * a text jansson refuses.
 *
 * Keys match when their decoded text equals the key asked for, so
 * "na\u006de" is the member "name". Stored objects are written by jansson
 * (json_dumps), which escapes only quotes, backslashes and control
 * characters: their keys are compared with one memcmp. When a key occurs
 * more than once in the object, the last occurrence is the member, as
 * json_loadb without JSON_REJECT_DUPLICATES keeps the last. Keys inside
 * nested values never match: only the object's own members do.
 *
 * Pure functions of their arguments; thread-safe.
 */
#ifndef EDGE_JRAW_H
#define EDGE_JRAW_H

#include <stddef.h>

#define JRAW_MAX_DEPTH 2048

/* A value's text: len bytes at p, borrowed from the text searched (p is
 * NULL and len 0 for a member that is absent). Decode it with
 * json_loadb(p, len, JSON_DECODE_ANY, ...). */
typedef struct jraw_span {
    const char *p;
    size_t len;
} jraw_span_t;

/* The value of member key of the object text[0..len). Returns 0 and its
 * span in *val / *val_len; ERR_NOT_FOUND when the object has no such
 * member; ERR_INVALID when the text is well-formed JSON but not an
 * object; ERR_BAD_REQUEST when it is not well-formed (anywhere in the
 * text). *val is NULL and *val_len 0 unless 0 is returned. */
int jraw_member(const char *text, size_t len, const char *key, const char **val,
                size_t *val_len);

/* Several members in one pass: vals[i] is the span of keys[i], or
 * {NULL, 0} when the object has no such member. Returns 0 when the text
 * is a well-formed object (whichever members it has), ERR_INVALID or
 * ERR_BAD_REQUEST as jraw_member, with every vals[i] {NULL, 0}. */
int jraw_members(const char *text, size_t len, const char *const *keys, jraw_span_t *vals,
                 size_t n);

#endif
