#include "yaml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mem.h"

/* YAML 1.2 core schema resolution of a plain scalar. */
static json_t *plain_scalar(const char *v, size_t n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    for (size_t i = 0; nulls[i]; i++)
        if (!strcmp(v, nulls[i]))
            return json_null();
    for (size_t i = 0; trues[i]; i++)
        if (!strcmp(v, trues[i]))
            return json_true();
    for (size_t i = 0; falses[i]; i++)
        if (!strcmp(v, falses[i]))
            return json_false();
    if (n && strspn(v + (v[0] == '-' || v[0] == '+'), "0123456789") == n - (v[0] == '-' || v[0] == '+') &&
        n > (size_t)(v[0] == '-' || v[0] == '+')) {
        errno = 0;
        long long x = strtoll(v, NULL, 10);
        if (!errno)
            return json_integer(x);
    }
    if (n && strspn(v, "0123456789+-.eE") == n && strpbrk(v, "0123456789") && strpbrk(v, ".eE")) {
        char *end;
        double d = strtod(v, &end);
        if (*end == '\0')
            return json_real(d);
    }
    return json_stringn(v, n);
}

typedef struct yp {
    yaml_parser_t p;
    err_t *err;
} yp_t;

static int next(yp_t *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev))
        return err_set(y->err, ERR_BAD_REQUEST, "yaml: line %zu: %s",
                       y->p.problem_mark.line + 1, y->p.problem ? y->p.problem : "parse error");
    return 0;
}

/* Builds the node that begins with ev (already taken). */
static int node(yp_t *y, yaml_event_t *ev, int depth, json_t **out)
{
    if (depth > YML_MAX_DEPTH)
        return err_set(y->err, ERR_BAD_REQUEST, "yaml: nesting deeper than %d", YML_MAX_DEPTH);
    int rc = 0;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return err_set(y->err, ERR_BAD_REQUEST, "yaml: line %zu: aliases are not supported",
                       ev->start_mark.line + 1);
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        *out = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(v, n)
                                                                : json_stringn(v, n);
        return *out ? 0 : err_set(y->err, ERR_NOMEM, NULL);
    }
    case YAML_SEQUENCE_START_EVENT: {
        json_t *arr = json_array();
        if (!arr)
            return err_set(y->err, ERR_NOMEM, NULL);
        for (;;) {
            yaml_event_t e;
            if ((rc = next(y, &e)))
                break;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            json_t *item = NULL;
            rc = node(y, &e, depth + 1, &item);
            yaml_event_delete(&e);
            if (rc || json_array_append_new(arr, item)) {
                rc = rc ? rc : err_set(y->err, ERR_NOMEM, NULL);
                break;
            }
        }
        if (rc)
            json_decref(arr);
        else
            *out = arr;
        return rc;
    }
    case YAML_MAPPING_START_EVENT: {
        json_t *obj = json_object();
        if (!obj)
            return err_set(y->err, ERR_NOMEM, NULL);
        for (;;) {
            yaml_event_t k;
            if ((rc = next(y, &k)))
                break;
            if (k.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&k);
                break;
            }
            if (k.type != YAML_SCALAR_EVENT) {
                rc = err_set(y->err, ERR_BAD_REQUEST, "yaml: line %zu: mapping keys must be scalars",
                             k.start_mark.line + 1);
                yaml_event_delete(&k);
                break;
            }
            char *key = mem_strndup((const char *)k.data.scalar.value, k.data.scalar.length);
            yaml_event_delete(&k);
            yaml_event_t v;
            json_t *val = NULL;
            if (!key)
                rc = err_set(y->err, ERR_NOMEM, NULL);
            if (!rc)
                rc = next(y, &v);
            if (!rc) {
                rc = node(y, &v, depth + 1, &val);
                yaml_event_delete(&v);
            }
            if (!rc && json_object_set_new(obj, key, val))
                rc = err_set(y->err, ERR_NOMEM, NULL);
            mem_free(key);
            if (rc)
                break;
        }
        if (rc)
            json_decref(obj);
        else
            *out = obj;
        return rc;
    }
    default:
        return err_set(y->err, ERR_BAD_REQUEST, "yaml: unexpected event");
    }
}

int yml_to_json(const char *text, size_t len, json_t **out, err_t *err)
{
    yp_t y = {.err = err};
    if (!yaml_parser_initialize(&y.p))
        return err_set(err, ERR_NOMEM, NULL);
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    int rc = 0;
    json_t *doc = NULL;
    /* STREAM-START, DOCUMENT-START, node, ... */
    for (;;) {
        yaml_event_t ev;
        if ((rc = next(&y, &ev)))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        rc = node(&y, &ev, 0, &doc);
        yaml_event_delete(&ev);
        break;
    }
    yaml_parser_delete(&y.p);
    if (rc)
        return rc;
    *out = doc ? doc : json_null();
    return 0;
}
