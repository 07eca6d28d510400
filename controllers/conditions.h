/*
 * conditions: status.conditions in the Kubernetes shape (metav1.Condition:
 * type, status, observedGeneration, lastTransitionTime, reason, message),
 * the one helper every controller sets them with.
 *
 * lastTransitionTime changes only when a condition's status does, so a
 * controller that recomputes an unchanged world produces an equal status
 * and writes nothing. Conditions keep the order they were first set in.
 *
 * Operates on a status object the caller owns; not thread-safe per object.
 */
#ifndef EDGE_CTRL_CONDITIONS_H
#define EDGE_CTRL_CONDITIONS_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

/* Sets condition type in status (status.conditions made when absent):
 * st is "True", "False" or "Unknown"; reason a CamelCase word; message
 * may be NULL (""). now is the transition time used when the status
 * changes (or the condition is new). 0, or ERR_NOMEM with status as it
 * was. */
int cond_set(json_t *status, const char *type, const char *st, const char *reason,
             const char *message, int64_t generation, time_t now);

/* The condition of that type in status, borrowed; NULL when none. */
const json_t *cond_get(const json_t *status, const char *type);

/* 1 when the condition of that type has status "True". */
int cond_is_true(const json_t *status, const char *type);

#endif
