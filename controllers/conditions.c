/*
 * conditions: metav1.Condition in a status object. See conditions.h.
 */
#include "conditions.h"

#include <stdio.h>
#include <string.h>

#include "../lib/err.h"

const json_t *cond_get(const json_t *status, const char *type)
{
    const json_t *cs = json_object_get(status, "conditions");
    size_t i;
    const json_t *c;
    json_array_foreach(cs, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

int cond_is_true(const json_t *status, const char *type)
{
    const char *st = json_string_value(json_object_get(cond_get(status, type), "status"));
    return st && !strcmp(st, "True");
}

int cond_set(json_t *status, const char *type, const char *st, const char *reason,
             const char *message, int64_t generation, time_t now)
{
    const json_t *old = cond_get(status, type);
    const char *old_st = json_string_value(json_object_get(old, "status"));
    const char *old_time = json_string_value(json_object_get(old, "lastTransitionTime"));
    char when[32];
    if (old_st && old_time && !strcmp(old_st, st)) {
        snprintf(when, sizeof when, "%s", old_time);
    } else {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "type", type, "status", st,
                          "observedGeneration", (json_int_t)generation,
                          "lastTransitionTime", when, "reason", reason,
                          "message", message ? message : "");
    if (!c)
        return ERR_NOMEM;
    json_t *cs = json_object_get(status, "conditions");
    if (!json_is_array(cs)) {
        /* The array is made whole before it goes in, so a failure leaves
         * status as it was. */
        if (!(cs = json_array())) {
            json_decref(c);
            return ERR_NOMEM;
        }
        if (json_array_append_new(cs, c)) {
            json_decref(cs);
            return ERR_NOMEM;
        }
        return json_object_set_new(status, "conditions", cs) ? ERR_NOMEM : 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(cs, i, e) {
        if (e == old)
            return json_array_set_new(cs, i, c) ? ERR_NOMEM : 0;
    }
    return json_array_append_new(cs, c) ? ERR_NOMEM : 0;
}
