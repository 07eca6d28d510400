/*
 * An error as a metav1.Status. See reg_internal.h and rest.c.
 */
#include "reg_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/b64.h"
#include "../lib/crypto.h"
#include "../lib/json/jenc.h"
#include "../lib/json/jtok.h"
#include "../lib/mem.h"
#include "../lib/sbuf.h"
#include "../lib/yaml.h"
#include "../apimachinery/apply.h"
#include "../apimachinery/keys.h"
#include "../apimachinery/selector.h"

#define REG_MAX_DEPTH 64
#define REG_CAS_RETRIES 16

/* ---- Status ----------------------------------------------------------------------------- */

json_t *reg_status(const err_t *err, const reg_kind_t *k, const char *name)
{
    int code = err->code ? err->code : ERR_INTERNAL;
    /* Messages and names may quote the request's bytes, which need not be
     * UTF-8 (a path is percent-decoded): written as Go would write them. */
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:o, s:s, s:i}", "kind", "Status",
                           "apiVersion", "v1", "metadata", "status", "Failure", "message",
                           jenc_string_lossy(err->message[0] ? err->message
                                                             : err_default_message(code)),
                           "reason", err_reason(code), "code", err_http_status(code));
    if (k || err->ncauses) {
        json_t *details = json_object();
        if (name && *name)
            json_object_set_new(details, "name", jenc_string_lossy(name));
        if (k) {
            /* NewInvalid names the Kind; the other errors the resource. */
            json_object_set_new(details, "group", json_string(k->group));
            json_object_set_new(details, "kind",
                                json_string(code == ERR_INVALID ? k->kind : k->resource));
        }
        if (err->ncauses) {
            json_t *causes = json_array();
            for (int i = 0; i < err->ncauses; i++)
                json_array_append_new(causes, json_pack("{s:s, s:o, s:o}", "reason",
                                                        err->causes[i].type, "message",
                                                        jenc_string_lossy(err->causes[i].message),
                                                        "field",
                                                        jenc_string_lossy(err->causes[i].field)));
            json_object_set_new(details, "causes", causes);
        }
        json_object_set_new(st, "details", details);
    }
    return st;
}
