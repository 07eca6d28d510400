/*
 * meta.k8s.io Table rendering: NAME, the kind's columns, AGE; each row
 * carrying the object as PartialObjectMetadata (default), the whole object,
 * or nothing, as includeObject asks.
 */
#include "reg_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
static void human_duration(long long secs, char *buf, size_t n)
{
    if (secs < -1) {
        snprintf(buf, n, "<invalid>");
        return;
    }
    if (secs < 0)
        secs = 0;
    if (secs < 120) {
        snprintf(buf, n, "%llds", secs);
        return;
    }
    long long minutes = secs / 60, hours = secs / 3600, days = hours / 24;
    if (minutes < 10) {
        if (secs % 60)
            snprintf(buf, n, "%lldm%llds", minutes, secs % 60);
        else
            snprintf(buf, n, "%lldm", minutes);
    } else if (minutes < 180) {
        snprintf(buf, n, "%lldm", minutes);
    } else if (hours < 8) {
        if (minutes % 60)
            snprintf(buf, n, "%lldh%lldm", hours, minutes % 60);
        else
            snprintf(buf, n, "%lldh", hours);
    } else if (hours < 48) {
        snprintf(buf, n, "%lldh", hours);
    } else if (hours < 24 * 8) {
        if (hours % 24)
            snprintf(buf, n, "%lldd%lldh", days, hours % 24);
        else
            snprintf(buf, n, "%lldd", days);
    } else if (hours < 24 * 365 * 2) {
        snprintf(buf, n, "%lldd", days);
    } else if (hours < 24 * 365 * 8) {
        if (days % 365)
            snprintf(buf, n, "%lldy%lldd", days / 365, days % 365);
        else
            snprintf(buf, n, "%lldy", days / 365);
    } else {
        snprintf(buf, n, "%lldy", days / 365);
    }
}

static json_t *age_cell(const json_t *obj)
{
    const char *ts = json_string_value(reg__at(obj, "metadata.creationTimestamp"));
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return json_string("<unknown>");
    char buf[32];
    human_duration((long long)(time(NULL) - timegm(&tm)), buf, sizeof buf);
    return json_string(buf);
}

/* Appends v (stolen) to arr; -1 when v is NULL or the append fails. */
static int append(json_t *arr, json_t *v)
{
    return v ? json_array_append_new(arr, v) : -1;
}

json_t *reg__table_columns(const reg_kind_t *k)
{
    json_t *defs = json_array();
    int bad = append(defs, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "Name", "type",
                                     "string", "format", "name", "description",
                                     "Name must be unique within a namespace.", "priority", 0));
    for (const reg_column_t *c = k->columns; !bad && c && c->name; c++)
        bad = append(defs, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c->name, "type",
                                     c->type, "format", "", "description", c->description,
                                     "priority", c->priority));
    if (!bad)
        bad = append(defs, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "Age", "type",
                                     "date", "format", "", "description",
                                     "CreationTimestamp is a timestamp representing the "
                                     "server time when this object was created.",
                                     "priority", 0));
    if (bad) {
        json_decref(defs);
        return NULL;
    }
    return defs;
}

json_t *reg__table_row(const reg_kind_t *k, const json_t *obj, const char *include)
{
    json_t *cells = json_array();
    const char *name = json_string_value(reg__at(obj, "metadata.name"));
    int bad = append(cells, json_string(name ? name : ""));
    for (const reg_column_t *c = k->columns; !bad && c && c->name; c++) {
        json_t *v = c->cell(obj);
        /* A cell is NULL when empty, and when out of memory: the cell
         * functions cannot say which, so both are an empty cell. */
        bad = append(cells, v ? v : json_null());
    }
    if (!bad)
        bad = append(cells, age_cell(obj));
    if (bad) {
        json_decref(cells);
        return NULL;
    }
    json_t *r = json_pack("{s:o}", "cells", cells);
    if (r && !strcmp(include, "Object")) {
        bad = json_object_set(r, "object", (json_t *)obj);
    } else if (r && strcmp(include, "None")) {
        json_t *meta = json_object_get(obj, "metadata");
        bad = json_object_set_new(r, "object",
                                  json_pack("{s:s, s:s, s:O}", "kind", "PartialObjectMetadata",
                                            "apiVersion", "meta.k8s.io/v1", "metadata", meta));
    }
    if (bad) {
        json_decref(r);
        return NULL;
    }
    return r;
}

json_t *reg_table(const reg_kind_t *k, const json_t *obj_or_list,
                  const char *api_version, const char *include)
{
    if (!include || !*include)
        include = "Metadata";
    json_t *rows = json_array();
    json_t *meta = json_object();
    int bad = !rows || !meta;
    const json_t *items = json_object_get(obj_or_list, "items");
    if (!bad && json_is_array(items)) {
        size_t i;
        const json_t *it;
        json_array_foreach(items, i, it) {
            if ((bad = append(rows, reg__table_row(k, it, include))))
                break;
        }
        const json_t *lm = json_object_get(obj_or_list, "metadata");
        if (!bad && json_is_object(lm))
            bad = json_object_update(meta, (json_t *)lm);
    } else if (!bad) {
        bad = append(rows, reg__table_row(k, obj_or_list, include));
        const json_t *rv = reg__at(obj_or_list, "metadata.resourceVersion");
        if (!bad && rv)
            bad = json_object_set(meta, "resourceVersion", (json_t *)rv);
    }
    if (bad) {
        json_decref(rows);
        json_decref(meta);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Table", "apiVersion", api_version,
                     "metadata", meta, "columnDefinitions", reg__table_columns(k), "rows", rows);
}
