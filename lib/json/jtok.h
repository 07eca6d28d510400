/*
 * jtok: JSON text read in place, for the hot paths where jansson's own
 * reader costs more than the work done with its result: the webhook reads
 * a few strings out of each SubjectAccessReview, the authorizer's follower
 * a few members out of each stored object, and (through jtok_loadb) every
 * request body and stored object is decoded from tokens.
 *
 * jtok_parse checks that a text is one well-formed JSON value, as strictly
 * as jansson's json_loadb (the same grammar, UTF-8 checked, no control
 * characters in strings, no trailing text, bounded nesting): it never
 * accepts a text jansson refuses. It refuses a few jansson accepts (a NUL
 * byte right after a number or a literal, which jansson skips); every
 * caller then decodes with jansson, so only speed differs. It lays the
 * values out as tokens in document order. A container token is
 * followed by its children; an object's children alternate key, value.
 * Every token knows where its subtree ends, so skipping a value is O(1).
 *
 * jtok_parse, jtok_get, jtok_item and jtok_str allocate nothing: the
 * caller passes the token array, and strings are decoded into a caller's
 * buffer on demand. Tokens point into the text, which must outlive them.
 * jtok_value and jtok_loadb build jansson values from the tokens (through
 * mem, like every jansson value here). UTF-8 is checked with jenc's
 * jenc_utf8_len, so the two modules accept the same text. Thread-safe (no
 * state).
 */
#ifndef EDGE_JTOK_H
#define EDGE_JTOK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef enum {
    JTOK_OBJECT = 1,
    JTOK_ARRAY,
    JTOK_STRING,
    JTOK_NUMBER,
    JTOK_TRUE,
    JTOK_FALSE,
    JTOK_NULL,
} jtok_type_t;

typedef struct jtok {
    uint8_t type;                /* jtok_type_t */
    uint8_t escaped;             /* a string with backslash escapes */
    uint32_t start, len;         /* strings: the text between the quotes;
                                    others: the value's text */
    uint32_t size;               /* objects: members; arrays: items */
    uint32_t next;               /* index of the token after this subtree */
} jtok_t;

#define JTOK_MAX_DEPTH 64        /* deeper texts are left to a full decoder */

/* Parses text[0..len), which must be an object or an array (as json_loadb
 * without JSON_DECODE_ANY wants). Returns the number of tokens (> 0); 0
 * when jansson would refuse the text (decode it with jansson for the
 * message); -1 when it needs more than max tokens or JTOK_MAX_DEPTH
 * levels (decode it with jansson instead). */
int jtok_parse(const char *text, size_t len, jtok_t *toks, int max);

/* The value of member key in object token obj, or -1 (not an object, or
 * no such member). Of repeated keys the last wins, as in jansson's
 * decoder. */
int jtok_get(const char *text, const jtok_t *toks, int obj, const char *key);

/* The i-th item of array token arr, or -1. O(i). */
int jtok_item(const jtok_t *toks, int arr, uint32_t i);

/* Decodes string token t into buf (NUL-terminated; escapes resolved to
 * UTF-8). Returns its length, or -1 when t is not a string or buf (cap
 * bytes) is too small. A decoded string is never longer than its text, so
 * cap = len + 1 always suffices. (jtok_parse refuses \u0000, as jansson
 * does, so a decoded string holds no NUL.) */
int jtok_str(const char *text, const jtok_t *t, char *buf, size_t cap);

/* The jansson value of token i and its subtree (a new reference), as
 * json_loadb would decode that part of the text; NULL when i < 0 or out
 * of memory. */
json_t *jtok_value(const char *text, const jtok_t *toks, int i);

/* json_loadb(text, len, flags, error), faster: the text is tokenized in
 * place and the tree built from the tokens, a few times quicker than
 * jansson's own reader on the objects this server stores. flags: 0 or
 * JSON_REJECT_DUPLICATES (others go straight to json_loadb). Texts the
 * tokenizer declines or refuses, and allocation failures, go to
 * json_loadb itself, so the value, the refusals and their messages are
 * jansson's. Returns a new reference or NULL (error filled, if not NULL). */
json_t *jtok_loadb(const char *text, size_t len, size_t flags, json_error_t *error);

#endif
