/*
 * label_selector: the metav1.LabelSelector JSON form
 * (sel_from_label_selector): kube's ValidateLabelSelector with its field
 * errors as err causes (sel_verr*), then LabelSelectorAsSelector. The
 * contract is in selector.h; the requirements it builds and the message
 * buffers are selector.c's.
 */
#include "selector_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/mem.h"

/* ------------------------------------------------------------------------
 * Validation
 * ---------------------------------------------------------------------- */

/* field.ErrorType: the cause type and how Error() names it. */
typedef enum sel_verr_type { VE_REQUIRED, VE_FORBIDDEN, VE_INVALID } sel_verr_type_t;

static const struct sel_verr_row {
    const char *cause;
    const char *text;
} sel_verr_rows[] = {
    [VE_REQUIRED] = {"FieldValueRequired", "Required value"},
    [VE_FORBIDDEN] = {"FieldValueForbidden", "Forbidden"},
    [VE_INVALID] = {"FieldValueInvalid", "Invalid value"},
};

/* Collects field errors as err causes and as one aggregate message. */
typedef struct sel_verrs {
    err_t *err;          /* NULL or already failed: count only */
    size_t n;
    sel_buf_t msg;
    char msg_mem[SEL_MSG_MAX];
} sel_verrs_t;

/* Records `field: <Type>[: <bad>]: detail`. bad is quoted as a string;
 * raw is printed as is (a JSON type name); either may be NULL. */
static void sel_verr(sel_verrs_t *v, sel_verr_type_t type, const char *field,
                     const char *bad, const char *raw, const char *detail)
{
    char body_mem[SEL_MSG_MAX];
    sel_buf_t body = {body_mem, 0, sizeof body_mem};

    body_mem[0] = '\0';
    sel__buf_str(&body, sel_verr_rows[type].text);
    if (bad) {
        sel__buf_str(&body, ": ");
        sel__buf_quoted(&body, bad, strlen(bad));
    } else if (raw) {
        sel__buf_str(&body, ": ");
        sel__buf_str(&body, raw);
    }
    sel__buf_str(&body, ": ");
    sel__buf_str(&body, detail);
    if (v->err && !v->err->code)
        err_add_cause(v->err, sel_verr_rows[type].cause, field, "%s", body_mem);
    sel__buf_str(&v->msg, v->n ? ", " : "");
    sel__buf_str(&v->msg, field);
    sel__buf_str(&v->msg, ": ");
    sel__buf_str(&v->msg, body_mem);
    v->n++;
}

static const char *sel_json_type(const json_t *j)
{
    static const char *const names[] = {
        [JSON_OBJECT] = "object", [JSON_ARRAY] = "array",
        [JSON_STRING] = "string", [JSON_INTEGER] = "number",
        [JSON_REAL] = "number",   [JSON_TRUE] = "boolean",
        [JSON_FALSE] = "boolean", [JSON_NULL] = "null",
    };
    return names[json_typeof(j)];
}

/* ValidateLabelName / IsValidLabelValue, one field error per message. */
static void sel_verr_key(sel_verrs_t *v, const char *field, const char *k)
{
    valid_msgs_t ms;
    valid_qualified_name(k, strlen(k), &ms);
    for (size_t i = 0; i < ms.n; i++)
        sel_verr(v, VE_INVALID, field, k, NULL, ms.m[i]);
}

static void sel_verr_value(sel_verrs_t *v, const char *field, const char *val)
{
    valid_msgs_t ms;
    valid_label_value(val, strlen(val), &ms);
    for (size_t i = 0; i < ms.n; i++)
        sel_verr(v, VE_INVALID, field, val, NULL, ms.m[i]);
}

/* The LabelSelectorOperator values. */
static const struct sel_ls_op {
    const char *name;
    sel_op_t op;
    int needs_values;
} sel_ls_ops[] = {
    {"In", SEL_IN, 1},
    {"NotIn", SEL_NOTIN, 1},
    {"Exists", SEL_EXISTS, 0},
    {"DoesNotExist", SEL_NOT_EXISTS, 0},
    {NULL, SEL_EXISTS, 0},
};

static const struct sel_ls_op *sel_ls_op(const char *name)
{
    const struct sel_ls_op *o = sel_ls_ops;
    while (o->name && strcmp(o->name, name) != 0)
        o++;
    return o->name ? o : NULL;
}

static const json_t *sel_member(const json_t *obj, const char *name)
{
    const json_t *j = json_object_get(obj, name);
    return json_is_null(j) ? NULL : j;
}

/* ValidateLabelSelectorRequirement for matchExpressions[i], plus the shape
 * checks JSON decoding would make. */
static void sel_validate_expr(sel_verrs_t *v, size_t i, const json_t *e)
{
    char field[96];
    const json_t *key, *op, *vals;

    snprintf(field, sizeof field, "matchExpressions[%zu]", i);
    if (!json_is_object(e)) {
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(e), "must be an object");
        return;
    }
    key = sel_member(e, "key");
    op = sel_member(e, "operator");
    vals = sel_member(e, "values");
    if (vals && !json_is_array(vals)) {
        snprintf(field, sizeof field, "matchExpressions[%zu].values", i);
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(vals), "must be an array");
        return;
    }
    if (op && !json_is_string(op)) {
        snprintf(field, sizeof field, "matchExpressions[%zu].operator", i);
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(op), "must be a string");
        return;
    }
    if (key && !json_is_string(key)) {
        snprintf(field, sizeof field, "matchExpressions[%zu].key", i);
        sel_verr(v, VE_INVALID, field, NULL, sel_json_type(key), "must be a string");
        return;
    }
    size_t nvals = vals ? json_array_size(vals) : 0;
    const char *opname = op ? json_string_value(op) : "";
    const struct sel_ls_op *o = sel_ls_op(opname);

    snprintf(field, sizeof field, "matchExpressions[%zu].%s", i,
             o ? "values" : "operator");
    if (!o) {
        sel_verr(v, VE_INVALID, field, opname, NULL, "not a valid selector operator");
    } else if (o->needs_values && !nvals) {
        sel_verr(v, VE_REQUIRED, field, NULL, NULL,
                 "must be specified when `operator` is 'In' or 'NotIn'");
    } else if (!o->needs_values && nvals) {
        sel_verr(v, VE_FORBIDDEN, field, NULL, NULL,
                 "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    }
    snprintf(field, sizeof field, "matchExpressions[%zu].key", i);
    sel_verr_key(v, field, key ? json_string_value(key) : "");
    for (size_t j = 0; j < nvals; j++) {
        const json_t *val = json_array_get(vals, j);
        snprintf(field, sizeof field, "matchExpressions[%zu].values[%zu]", i, j);
        if (!json_is_string(val))
            sel_verr(v, VE_INVALID, field, NULL, sel_json_type(val), "must be a string");
        else
            sel_verr_value(v, field, json_string_value(val));
    }
}

/* ValidateLabelSelector; returns the number of field errors. */
static size_t sel_validate_ls(sel_verrs_t *v, const json_t *ls)
{
    const json_t *ml, *me;

    if (!json_is_object(ls)) {
        sel_verr(v, VE_INVALID, "", NULL, sel_json_type(ls), "must be an object");
        return v->n;
    }
    ml = sel_member(ls, "matchLabels");
    me = sel_member(ls, "matchExpressions");
    if (ml && !json_is_object(ml)) {
        sel_verr(v, VE_INVALID, "matchLabels", NULL, sel_json_type(ml), "must be an object");
    } else if (ml) {
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)ml, k, val) {
            sel_verr_key(v, "matchLabels", k);
            if (!json_is_string(val))
                sel_verr(v, VE_INVALID, "matchLabels", NULL, sel_json_type(val),
                         "must be a string");
            else
                sel_verr_value(v, "matchLabels", json_string_value(val));
        }
    }
    if (me && !json_is_array(me)) {
        sel_verr(v, VE_INVALID, "matchExpressions", NULL, sel_json_type(me),
                 "must be an array");
    } else if (me) {
        for (size_t i = 0; i < json_array_size(me); i++)
            sel_validate_expr(v, i, json_array_get(me, i));
    }
    return v->n;
}

/* ------------------------------------------------------------------------
 * Building the selector
 * ---------------------------------------------------------------------- */

static sel_span_t sel_str_span(const char *s) { return (sel_span_t){s, strlen(s)}; }

/* LabelSelectorAsSelector on a validated selector. */
static int sel_build_ls(sel_t *sel, const json_t *ls)
{
    int rc = 0;
    sel_span_t *vals = NULL;
    const json_t *ml = sel_member(ls, "matchLabels");
    const json_t *me = sel_member(ls, "matchExpressions");

    if (ml) {
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)ml, k, val) {
            sel_span_t v = sel_str_span(json_string_value(val));
            if ((rc = sel__add(sel, sel_str_span(k), SEL_EQ, &v, 1)))
                goto out;
        }
    }
    for (size_t i = 0; me && i < json_array_size(me); i++) {
        const json_t *e = json_array_get(me, i);
        const json_t *key = sel_member(e, "key");
        const json_t *jv = sel_member(e, "values");
        size_t nvals = jv ? json_array_size(jv) : 0;
        const json_t *op = sel_member(e, "operator");
        /* Validation has checked the operator, so o is not NULL. */
        const struct sel_ls_op *o = sel_ls_op(op ? json_string_value(op) : "");

        if (nvals) {
            vals = mem_calloc(nvals, sizeof *vals);
            if (!vals) {
                rc = ERR_NOMEM;
                goto out;
            }
            for (size_t j = 0; j < nvals; j++)
                vals[j] = sel_str_span(json_string_value(json_array_get(jv, j)));
            /* Sorted as String() prints them; duplicates stay, as in kube. */
            qsort(vals, nvals, sizeof *vals, sel__span_cmp);
        }
        rc = sel__add(sel, sel_str_span(key ? json_string_value(key) : ""), o->op,
                      vals, nvals);
        mem_free(vals);
        vals = NULL;
        if (rc)
            goto out;
    }
    sel__sort(sel);
out:
    mem_free(vals);
    return rc;
}

int sel_from_label_selector(const json_t *ls, sel_t **out, err_t *err)
{
    int rc = ERR_NOMEM;
    sel_t *sel = NULL;
    sel_verrs_t v = {.err = err};

    *out = NULL;
    v.msg = (sel_buf_t){v.msg_mem, 0, sizeof v.msg_mem};
    v.msg_mem[0] = '\0';
    if (ls && !json_is_null(ls) && sel_validate_ls(&v, ls)) {
        rc = err_set(err, ERR_INVALID, v.n > 1 ? "[%s]" : "%s", v.msg_mem);
        goto out;
    }
    sel = sel__new(SEL_KIND_LABELS);
    if (!sel)
        goto out;
    if (ls && !json_is_null(ls) && (rc = sel_build_ls(sel, ls)))
        goto out;
    rc = 0;
    *out = sel;
    sel = NULL;
out:
    if (rc == ERR_NOMEM)
        err_set(err, rc, NULL);
    sel_free(sel);
    return rc;
}
