/*
 * err: the project's one error currency.
 *
 * Owns the error codes every module returns, and the caller-owned error
 * struct that carries the details of the first failure up to the HTTP layer.
 * Nothing here allocates; nothing here may fail.
 *
 * Convention, everywhere in the project:
 *   - a function returns 0 on success or a negative ERR_* code;
 *   - when it fails and was given an err_t, it fills it with err_set(), and
 *     the FIRST error set wins: later err_set() calls on a filled err_t only
 *     return their code, so the root cause is what reaches the client;
 *   - libraries' codes (LMDB, curl, OpenSSL, errno) are converted to ERR_*
 *     at the edge of the one file that calls the library.
 *
 * ERR_TABLE maps each code to its HTTP status and Kubernetes StatusReason
 * (k8s.io/apimachinery/pkg/apis/meta/v1/types.go), so any failure becomes a
 * metav1.Status without the HTTP layer guessing.
 *
 * Thread safety: an err_t belongs to one thread at a time; the table is
 * read-only.
 */
#ifndef EDGE_ERR_H
#define EDGE_ERR_H

#include <stddef.h>

/*       name                      HTTP  Kubernetes reason        default message */
#define ERR_TABLE(X)                                                              \
    X(ERR_NOT_FOUND,             404, "NotFound",               "not found")     \
    X(ERR_ALREADY_EXISTS,        409, "AlreadyExists",          "already exists") \
    X(ERR_CONFLICT,              409, "Conflict",               "the object has been modified") \
    X(ERR_EXPIRED,               410, "Expired",                "the resourceVersion is too old") \
    X(ERR_GONE,                  410, "Gone",                   "gone")          \
    X(ERR_INVALID,               422, "Invalid",                "invalid")       \
    X(ERR_BAD_REQUEST,           400, "BadRequest",             "bad request")   \
    X(ERR_UNAUTHORIZED,          401, "Unauthorized",           "Unauthorized")  \
    X(ERR_FORBIDDEN,             403, "Forbidden",              "forbidden")     \
    X(ERR_METHOD_NOT_ALLOWED,    405, "MethodNotAllowed",       "method not allowed") \
    X(ERR_NOT_ACCEPTABLE,        406, "NotAcceptable",          "not acceptable") \
    X(ERR_REQUEST_TOO_LARGE,     413, "RequestEntityTooLarge",  "request entity too large") \
    X(ERR_UNSUPPORTED_MEDIA,     415, "UnsupportedMediaType",   "unsupported media type") \
    X(ERR_TOO_MANY_REQUESTS,     429, "TooManyRequests",        "too many requests") \
    X(ERR_INTERNAL,              500, "InternalError",          "internal error") \
    X(ERR_NOMEM,                 500, "InternalError",          "out of memory") \
    X(ERR_IO,                    500, "InternalError",          "storage I/O error") \
    X(ERR_STORAGE_FULL,          507, "InternalError",          "storage is full") \
    X(ERR_UNAVAILABLE,           503, "ServiceUnavailable",     "service unavailable") \
    X(ERR_LOCKED,                503, "ServiceUnavailable",     "data directory is in use") \
    X(ERR_TIMEOUT,               504, "Timeout",                "timeout")       \
    X(ERR_TOO_LARGE_RV,          504, "Timeout",                "Too large resource version") \
    X(ERR_WATCH_OVERFLOW,        410, "Expired",                "watcher fell behind and was closed") \
    X(ERR_CLOSED,                503, "ServiceUnavailable",     "store is closing")

enum {
    ERR_OK = 0,
    ERR__FIRST = -1000,
#define ERR_ENUM_(name, http, reason, msg) name,
    ERR_TABLE(ERR_ENUM_)
#undef ERR_ENUM_
    ERR__LAST
};

#define ERR_MAX_CAUSES 16

/* One field-level cause of an Invalid error (metav1.StatusCause). */
typedef struct err_cause {
    char type[32];       /* e.g. FieldValueRequired */
    char field[128];     /* e.g. spec.scope.level */
    char message[160];
} err_cause_t;

typedef struct err {
    int code;            /* 0 while unset */
    char message[512];
    int ncauses;
    err_cause_t causes[ERR_MAX_CAUSES];
} err_t;

/* Clears *e so it can be reused. */
void err_clear(err_t *e);

/* Records code and a printf-style message in e unless e is NULL or already
 * holds an error. Returns code, so `return err_set(e, ERR_X, "...")` reads
 * naturally. A NULL fmt uses the table's default message. */
int err_set(err_t *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Passes on the error a callee left in from (its code, message and
 * causes), as err_set would record it: nothing when e is NULL or already
 * holds an error, or when from holds none. Returns from's code. For a
 * caller that gave the callee an err_t of its own, to look at the error
 * before deciding whether it is the caller's. */
int err_forward(err_t *e, const err_t *from);

/* Adds a field cause to e (ignored once ERR_MAX_CAUSES are held). Does not
 * set e->code; the caller sets ERR_INVALID once all causes are in. */
void err_add_cause(err_t *e, const char *type, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Table look-ups; unknown codes map to ERR_INTERNAL's row. */
int err_http_status(int code);
const char *err_reason(int code);      /* static string */
const char *err_name(int code);        /* "ERR_NOT_FOUND"; static string */
const char *err_default_message(int code);

#endif
