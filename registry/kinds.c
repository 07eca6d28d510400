/*
 * The table of kinds, their full schemas, and the cell helpers kinds use.
 */
#include "reg_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"
#include "../lib/log.h"

const reg_kind_t *const reg_kinds[] = {
    &reg_kind_roletemplate,
    &reg_kind_iamrole,
    &reg_kind_iamrolebinding,
    &reg_kind_accessreview,
    &reg_kind_permissionreview,
    &reg_kind_cluster,
    &reg_kind_workspace,
    &reg_kind_nodegroup,
    &reg_kind_application,
    &reg_kind_applicationversion,
    &reg_kind_applicationdeployment,
    &reg_kind_component,
    NULL,
};

const char *const reg_groups[] = {
    "iam.theriseunion.io",
    "scope.theriseunion.io",
    "app.theriseunion.io",
    "ext.theriseunion.io",
    NULL,
};

const reg_kind_t *reg_find(const char *group, const char *version,
                           const char *resource)
{
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        if (!strcmp(k->group, group) && !strcmp(k->version, version) &&
            !strcmp(k->resource, resource))
            return k;
    }
    return NULL;
}

/* ---- schemas ----------------------------------------------------------------- */

/* ObjectMeta, as much of it as clients set or read. */
static const char meta_schema[] =
    "{\"type\":\"object\",\"description\":\"Standard object metadata.\",\"properties\":{"
    "\"name\":" REG_S_STR ",\"generateName\":" REG_S_STR ",\"namespace\":" REG_S_STR ","
    "\"uid\":" REG_S_STR ",\"resourceVersion\":" REG_S_STR ",\"generation\":" REG_S_INT ","
    "\"creationTimestamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"deletionTimestamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"deletionGracePeriodSeconds\":" REG_S_INT ","
    "\"labels\":{\"type\":\"object\",\"additionalProperties\":" REG_S_STR "},"
    "\"annotations\":{\"type\":\"object\",\"additionalProperties\":" REG_S_STR "},"
    "\"finalizers\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\","
    "\"x-kubernetes-patch-strategy\":\"merge\",\"items\":" REG_S_STR "},"
    "\"ownerReferences\":{\"type\":\"array\",\"x-kubernetes-patch-merge-key\":\"uid\","
    "\"x-kubernetes-patch-strategy\":\"merge\",\"items\":{\"type\":\"object\","
    "\"required\":[\"apiVersion\",\"kind\",\"name\",\"uid\"],\"properties\":{"
    "\"apiVersion\":" REG_S_STR ",\"kind\":" REG_S_STR ",\"name\":" REG_S_STR ",\"uid\":" REG_S_STR ","
    "\"controller\":" REG_S_BOOL ",\"blockOwnerDeletion\":" REG_S_BOOL "}}},"
    "\"managedFields\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"manager\":" REG_S_STR ",\"operation\":" REG_S_STR ",\"apiVersion\":" REG_S_STR ","
    "\"time\":" REG_S_STR ",\"fieldsType\":" REG_S_STR ",\"subresource\":" REG_S_STR ","
    "\"fieldsV1\":" REG_S_ANY "}}},"
    "\"selfLink\":" REG_S_STR "}}";

/* Built on first use, one kind at a time; a slot once set never changes. */
static _Atomic(json_t *) schemas[64];
static pthread_mutex_t schemas_mu = PTHREAD_MUTEX_INITIALIZER;

/* A schema text of the source, parsed; NULL when out of memory. Text that
 * does not parse is a mistake in the source, found by any test. */
static json_t *parse_schema(const char *txt, const char *what)
{
    unsigned long failed = mem_failures();
    json_error_t e;
    json_t *j = json_loads(txt, 0, &e);
    if (!j && mem_failures() == failed) {
        log_error("registry: schema of %s does not parse: %s at %d", what, e.text,
                  e.position);
        abort();
    }
    return j;
}

/* k's whole schema (a new reference), or NULL when out of memory. */
static json_t *build_schema(const reg_kind_t *k)
{
    json_t *props = json_object();
    if (!props ||
        json_object_set_new(props, "apiVersion", json_pack("{s:s, s:s}", "type", "string",
                            "description", "APIVersion defines the versioned schema of this representation of an object.")) ||
        json_object_set_new(props, "kind", json_pack("{s:s, s:s}", "type", "string",
                            "description", "Kind is a string value representing the REST resource this object represents.")) ||
        json_object_set_new(props, "metadata", parse_schema(meta_schema, "metadata")) ||
        (k->spec_schema &&
         json_object_set_new(props, "spec", parse_schema(k->spec_schema, k->kind))) ||
        (k->status_schema &&
         json_object_set_new(props, "status", parse_schema(k->status_schema, k->kind)))) {
        json_decref(props);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o}", "type", "object", "description", k->kind,
                     "properties", props);
}

int reg_schema(const reg_kind_t *k, const json_t **out, err_t *err)
{
    size_t i = 0;
    while (reg_kinds[i] && reg_kinds[i] != k)
        i++;
    if (!reg_kinds[i] || i >= sizeof schemas / sizeof schemas[0])
        return err_set(err, ERR_INTERNAL, "no schema for kind %s", k->kind);
    json_t *s = atomic_load_explicit(&schemas[i], memory_order_acquire);
    if (!s) {
        /* One builder at a time; what it fails to build is not kept, so
         * the next caller tries again. */
        pthread_mutex_lock(&schemas_mu);
        s = atomic_load_explicit(&schemas[i], memory_order_relaxed);
        if (!s && (s = build_schema(k)))
            atomic_store_explicit(&schemas[i], s, memory_order_release);
        pthread_mutex_unlock(&schemas_mu);
        if (!s)
            return err_set(err, ERR_NOMEM, NULL);
    }
    *out = s;
    return 0;
}

/* ---- cell helpers ------------------------------------------------------------ */

const json_t *reg__at(const json_t *obj, const char *path)
{
    char seg[128];
    const json_t *cur = obj;
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof seg)
            return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        cur = json_is_object(cur) ? json_object_get(cur, seg) : NULL;
        path += n + (path[n] == '.');
    }
    return cur;
}

json_t *reg__cell_str(const json_t *obj, const char *path)
{
    const json_t *v = reg__at(obj, path);
    return json_is_string(v) ? json_string(json_string_value(v)) : NULL;
}

json_t *reg__cell_count(const json_t *obj, const char *path)
{
    const json_t *v = reg__at(obj, path);
    return json_integer(json_is_array(v) ? (json_int_t)json_array_size(v) : 0);
}

json_t *reg__cell_join(const json_t *obj, const char *path, const char *sub, int max)
{
    const json_t *arr = reg__at(obj, path);
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return NULL;
    char buf[1024];
    size_t len = 0;
    size_t i;
    const json_t *it;
    int shown = 0;
    json_array_foreach(arr, i, it) {
        const char *s = json_string_value(sub ? json_object_get(it, sub) : it);
        if (!s)
            continue;
        if (shown == max) {
            len += (size_t)snprintf(buf + len, sizeof buf - len, " + %zu more",
                                    json_array_size(arr) - i);
            break;
        }
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", shown ? "," : "", s);
        if (len >= sizeof buf)
            len = sizeof buf - 1;
        shown++;
    }
    return json_string(buf);
}

json_t *reg__cell_condition(const json_t *obj, const char *cond_type)
{
    const json_t *conds = reg__at(obj, "status.conditions");
    size_t i;
    const json_t *c;
    json_array_foreach(conds, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && !strcmp(t, cond_type))
            return reg__cell_str(c, "status");
    }
    return json_string("Unknown");
}

void reg__validate_rules(const json_t *obj, const char *path, err_t *err)
{
    size_t i;
    const json_t *r;
    json_array_foreach(reg__at(obj, path), i, r) {
        char f[160];
        size_t urls = json_array_size(json_object_get(r, "nonResourceURLs"));
        size_t groups = json_array_size(json_object_get(r, "apiGroups"));
        size_t res = json_array_size(json_object_get(r, "resources"));
        size_t names = json_array_size(json_object_get(r, "resourceNames"));
        if (!json_array_size(json_object_get(r, "verbs"))) {
            snprintf(f, sizeof f, "%s[%zu].verbs", path, i);
            REG_INVALID(err, "FieldValueRequired", f,
                        "Required value: verbs must contain at least one value");
        }
        if (urls) {
            snprintf(f, sizeof f, "%s[%zu].nonResourceURLs", path, i);
            if (groups || res || names)
                REG_INVALID(err, "FieldValueInvalid", f, "Invalid value: rules cannot apply to "
                            "both regular resources and non-resource URLs");
            continue;
        }
        if (!groups) {
            snprintf(f, sizeof f, "%s[%zu].apiGroups", path, i);
            REG_INVALID(err, "FieldValueRequired", f,
                        "Required value: resource rules must supply at least one api group");
        }
        if (!res) {
            snprintf(f, sizeof f, "%s[%zu].resources", path, i);
            REG_INVALID(err, "FieldValueRequired", f,
                        "Required value: resource rules must supply at least one resource");
        }
    }
}
