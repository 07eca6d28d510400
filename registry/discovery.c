/*
 * Discovery (APIResourceList, APIGroup, aggregated APIGroupDiscoveryList)
 * and OpenAPI v2/v3 documents, all derived from the table of kinds.
 *
 * Every document is whole or NULL: an allocation that fails anywhere
 * releases what was built. jansson makes that short: json_pack fails on a
 * NULL "o" argument and releases every "o" it was handed, and
 * json_object_set_new / json_array_append_new fail on a NULL value.
 */
#include "reg_internal.h"

#include <stdio.h>
#include <string.h>

static json_t *verbs_of(const reg_kind_t *k)
{
    if (k->create_only)
        return json_pack("[s]", "create");
    return json_pack("[s,s,s,s,s,s,s,s]", "create", "delete", "deletecollection", "get",
                     "list", "patch", "update", "watch");
}

static json_t *strings(const char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; a && v && v[i]; i++) {
        if (json_array_append_new(a, json_string(v[i]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *categories_of(const reg_kind_t *k)
{
    return k->create_only ? json_array() : json_pack("[s,s]", "all", "theriseunion");
}

static char *group_version(const char *group, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", group, REG_VERSION);
    return buf;
}

json_t *reg_resource_list(const char *group)
{
    json_t *res = json_array();
    if (!res)
        return NULL;
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        if (strcmp(k->group, group))
            continue;
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o, s:o}", "name", k->resource,
                              "singularName", k->singular, "namespaced", k->namespaced,
                              "kind", k->kind, "verbs", verbs_of(k), "categories",
                              categories_of(k));
        if (r && k->short_names &&
            json_object_set_new(r, "shortNames", strings(k->short_names))) {
            json_decref(r);
            r = NULL;
        }
        if (json_array_append_new(res, r))
            goto fail;
        if (k->has_status) {
            char sub[128];
            snprintf(sub, sizeof sub, "%s/status", k->resource);
            if (json_array_append_new(res, json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name",
                                                     sub, "singularName", "", "namespaced",
                                                     k->namespaced, "kind", k->kind, "verbs",
                                                     "get", "patch", "update")))
                goto fail;
        }
    }
    char gv[128];
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", group_version(group, gv, sizeof gv), "resources", res);
fail:
    json_decref(res);
    return NULL;
}

static json_t *group_entry(const char *group)
{
    char gv[128];
    group_version(group, gv, sizeof gv);
    return json_pack("{s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "name", group, "versions",
                     "groupVersion", gv, "version", REG_VERSION, "preferredVersion",
                     "groupVersion", gv, "version", REG_VERSION);
}

json_t *reg_api_group(const char *group)
{
    json_t *g = group_entry(group);
    if (g && (json_object_set_new(g, "kind", json_string("APIGroup")) ||
              json_object_set_new(g, "apiVersion", json_string("v1")))) {
        json_decref(g);
        return NULL;
    }
    return g;
}

json_t *reg_api_group_list(void)
{
    json_t *groups = json_array();
    for (size_t i = 0; groups && reg_groups[i]; i++) {
        if (json_array_append_new(groups, group_entry(reg_groups[i]))) {
            json_decref(groups);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
                     groups);
}

json_t *reg_discovery_v2(const char *api_version)
{
    json_t *items = json_array();
    if (!items)
        return NULL;
    for (size_t g = 0; reg_groups[g]; g++) {
        json_t *resources = json_array();
        if (!resources)
            goto fail;
        for (size_t i = 0; reg_kinds[i]; i++) {
            const reg_kind_t *k = reg_kinds[i];
            if (strcmp(k->group, reg_groups[g]))
                continue;
            json_t *r = json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:o, s:o}",
                                  "resource", k->resource, "responseKind", "group", k->group,
                                  "version", k->version, "kind", k->kind, "scope",
                                  k->namespaced ? "Namespaced" : "Cluster", "singularResource",
                                  k->singular, "verbs", verbs_of(k), "categories",
                                  categories_of(k));
            if (r && ((k->short_names &&
                       json_object_set_new(r, "shortNames", strings(k->short_names))) ||
                      (k->has_status &&
                       json_object_set_new(r, "subresources",
                                           json_pack("[{s:s, s:{s:s, s:s, s:s}, s:[s,s,s]}]",
                                                     "subresource", "status", "responseKind",
                                                     "group", k->group, "version", k->version,
                                                     "kind", k->kind, "verbs", "get", "patch",
                                                     "update"))))) {
                json_decref(r);
                r = NULL;
            }
            if (json_array_append_new(resources, r)) {
                json_decref(resources);
                goto fail;
            }
        }
        /* The pack takes resources, failing or not. */
        if (json_array_append_new(items, json_pack("{s:{s:s}, s:[{s:s, s:o, s:s}]}", "metadata",
                                                   "name", reg_groups[g], "versions", "version",
                                                   REG_VERSION, "resources", resources,
                                                   "freshness", "Current")))
            goto fail;
    }
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList", "apiVersion",
                     api_version, "metadata", "items", items);
fail:
    json_decref(items);
    return NULL;
}

/* ---- OpenAPI ----------------------------------------------------------------- */

/* "iam.theriseunion.io" -> "io.theriseunion.iam.v1alpha1.<Kind>" */
static void definition_name(const reg_kind_t *k, const char *suffix, char *buf, size_t n)
{
    char parts[8][64];
    int np = 0;
    const char *p = k->group;
    while (*p && np < 8) {
        size_t len = strcspn(p, ".");
        snprintf(parts[np++], sizeof parts[0], "%.*s", (int)len, p);
        p += len + (p[len] == '.');
    }
    size_t used = 0;
    for (int i = np - 1; i >= 0; i--)
        used += (size_t)snprintf(buf + used, n - used, "%s.", parts[i]);
    snprintf(buf + used, n - used, "%s.%s%s", k->version, k->kind, suffix);
}

#define LIST_META_DESC                                                                     \
    "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/"      \
    "sig-architecture/api-conventions.md#types-kinds"

/* The definitions of group's kinds (every kind's when NULL), each whole:
 * 0, or -1 when out of memory (a schema's build included). */
static int add_definitions(json_t *defs, const char *group)
{
    if (!defs)
        return -1;
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        if (group && strcmp(k->group, group))
            continue;
        const json_t *schema;
        if (reg_schema(k, &schema, NULL))
            return -1;
        char name[256];
        definition_name(k, "", name, sizeof name);
        json_t *s = json_deep_copy(schema);
        if (!s || json_object_set_new(s, "x-kubernetes-group-version-kind",
                                      json_pack("[{s:s, s:s, s:s}]", "group", k->group, "kind",
                                                k->kind, "version", k->version))) {
            json_decref(s);
            return -1;
        }
        if (json_object_set_new(defs, name, s))
            return -1;
        if (k->create_only)
            continue;
        char list_kind[160];
        snprintf(list_kind, sizeof list_kind, "%sList", k->kind);
        char list_name[256];
        definition_name(k, "List", list_name, sizeof list_name);
        char list_desc[400], items_desc[200];
        snprintf(list_desc, sizeof list_desc, "%s is a list of %s objects.", list_kind, k->kind);
        snprintf(items_desc, sizeof items_desc, "List of %s objects.", k->kind);
        const json_t *props = json_object_get(schema, "properties");
        json_t *item = json_deep_copy(schema);
        /* A NULL item or copy fails the pack, which releases the others. */
        if (json_object_set_new(defs, list_name,
                                json_pack("{s:s, s:s, s:[s], s:{s:o, s:o, s:{s:s, s:s}, s:{s:s, s:s, s:o}},"
                                          " s:[{s:s, s:s, s:s}]}",
                                          "type", "object", "description", list_desc, "required",
                                          "items", "properties", "apiVersion",
                                          json_deep_copy(json_object_get(props, "apiVersion")),
                                          "kind", json_deep_copy(json_object_get(props, "kind")),
                                          "metadata", "type",
                                          "object", "description", LIST_META_DESC, "items",
                                          "type", "array", "description", items_desc, "items", item,
                                          "x-kubernetes-group-version-kind", "group", k->group,
                                          "kind", list_kind, "version", k->version)))
            return -1;
    }
    return 0;
}

/* One operation of a path, in OpenAPI v3 (v3 != 0) or v2 form: the GVK
 * and action extensions kubectl looks for, the query parameters the
 * server honours, and the response schema. */
static json_t *operation(const reg_kind_t *k, const char *action, const char *def, int v3)
{
    static const char *const write_params[] = {"dryRun", "fieldManager", "fieldValidation", NULL};
    static const char *const patch_params[] = {"dryRun", "fieldManager", "fieldValidation",
                                               "force", NULL};
    static const char *const list_params[] = {"labelSelector", "fieldSelector", "limit",
                                              "continue", "resourceVersion",
                                              "resourceVersionMatch", "watch",
                                              "allowWatchBookmarks", "sendInitialEvents",
                                              "timeoutSeconds", NULL};
    const char *const *names = !strcmp(action, "patch") ? patch_params
                             : !strcmp(action, "list") ? list_params
                             : (!strcmp(action, "get") || !strcmp(action, "delete")) ? NULL
                             : write_params;
    json_t *params = json_array();
    for (size_t i = 0; params && names && names[i]; i++) {
        json_t *p = json_pack("{s:s, s:s, s:b}", "name", names[i], "in", "query", "uniqueItems",
                              1);
        if (p && (v3 ? json_object_set_new(p, "schema", json_pack("{s:s}", "type", "string"))
                     : json_object_set_new(p, "type", json_string("string")))) {
            json_decref(p);
            p = NULL;
        }
        if (json_array_append_new(params, p)) {
            json_decref(params);
            return NULL;
        }
    }
    char ref[320];
    snprintf(ref, sizeof ref, v3 ? "#/components/schemas/%s" : "#/definitions/%s", def);
    json_t *schema = json_pack("{s:s}", "$ref", ref);
    json_t *ok = v3 ? json_pack("{s:s, s:{s:{s:o}}}", "description", "OK", "content",
                                "application/json", "schema", schema)
                    : json_pack("{s:s, s:o}", "description", "OK", "schema", schema);
    json_t *op = json_pack("{s:s, s:o, s:{s:o}, s:s, s:{s:s, s:s, s:s}}", "operationId", action,
                           "parameters", params, "responses", "200", ok, "x-kubernetes-action",
                           action, "x-kubernetes-group-version-kind", "group", k->group,
                           "version", k->version, "kind", k->kind);
    if (op && !strcmp(action, "patch")) {
        /* The patch formats this server really applies. */
        static const char *const types[] = {"application/json-patch+json",
                                            "application/merge-patch+json",
                                            "application/strategic-merge-patch+json",
                                            "application/apply-patch+yaml", NULL};
        int bad;
        if (v3) {
            json_t *content = json_object();
            bad = !content;
            for (size_t i = 0; !bad && types[i]; i++)
                bad = json_object_set_new(content, types[i],
                                          json_pack("{s:{s:s}}", "schema", "type", "object"));
            if (bad)
                json_decref(content);
            else
                bad = json_object_set_new(op, "requestBody", json_pack("{s:o, s:b}", "content",
                                                                       content, "required", 1));
        } else {
            bad = json_object_set_new(op, "consumes", strings(types));
        }
        if (bad) {
            json_decref(op);
            return NULL;
        }
    }
    return op;
}

/* The paths of group's kinds (every kind's when NULL): 0, or -1 when out
 * of memory (paths then holds part of them). */
static int add_paths(json_t *paths, const char *group, int v3)
{
    if (!paths)
        return -1;
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        if (group && strcmp(k->group, group))
            continue;
        char def[256], list_def[256], base[320], item[400], st[420];
        definition_name(k, "", def, sizeof def);
        definition_name(k, "List", list_def, sizeof list_def);
        snprintf(base, sizeof base, "/apis/%s/%s/%s%s", k->group, k->version,
                 k->namespaced ? "namespaces/{namespace}/" : "", k->resource);
        if (k->create_only) {
            if (json_object_set_new(paths, base, json_pack("{s:o}", "post",
                                                           operation(k, "post", def, v3))))
                return -1;
            continue;
        }
        if (json_object_set_new(paths, base,
                            json_pack("{s:o, s:o, s:o}", "get", operation(k, "list", list_def, v3),
                                      "post", operation(k, "post", def, v3), "delete",
                                      operation(k, "deletecollection", list_def, v3))))
            return -1;
        snprintf(item, sizeof item, "%s/{name}", base);
        if (json_object_set_new(paths, item,
                            json_pack("{s:o, s:o, s:o, s:o}", "get", operation(k, "get", def, v3),
                                      "put", operation(k, "put", def, v3), "patch",
                                      operation(k, "patch", def, v3), "delete",
                                      operation(k, "delete", def, v3))))
            return -1;
        if (k->has_status) {
            snprintf(st, sizeof st, "%s/status", item);
            if (json_object_set_new(paths, st,
                                    json_pack("{s:o, s:o, s:o}", "get",
                                              operation(k, "get", def, v3), "put",
                                              operation(k, "put", def, v3), "patch",
                                              operation(k, "patch", def, v3))))
                return -1;
        }
    }
    return 0;
}

json_t *reg_openapi_v3(const char *group)
{
    json_t *defs = json_object();
    if (add_definitions(defs, group)) {
        json_decref(defs);
        return NULL;
    }
    json_t *paths = json_object();
    if (add_paths(paths, group, 1)) {
        json_decref(paths);
        json_decref(defs);
        return NULL;
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi", "3.0.0", "info", "title",
                     "edge-apiserver", "version", REG_VERSION, "paths", paths, "components",
                     "schemas", defs);
}

json_t *reg_openapi_v2(void)
{
    json_t *defs = json_object();
    if (add_definitions(defs, NULL)) {
        json_decref(defs);
        return NULL;
    }
    json_t *paths = json_object();
    if (add_paths(paths, NULL, 0)) {
        json_decref(paths);
        json_decref(defs);
        return NULL;
    }
    return json_pack("{s:s, s:{s:s, s:s}, s:o, s:o}", "swagger", "2.0", "info", "title",
                     "edge-apiserver", "version", REG_VERSION, "paths", paths, "definitions", defs);
}
