/* Unit tests of apimachinery/selector: label and field selector parsing,
 * matching and printing, checked against kube's behaviour. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../apimachinery/selector.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The kube messages for a bad label key name part and a bad label value. */
#define NAME_MSG                                                               \
    "name part must consist of alphanumeric characters, '-', '_' or '.', "    \
    "and must start and end with an alphanumeric character (e.g. 'MyName',  " \
    "or 'my.name',  or '123-abc', regex used for validation is "              \
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define VALUE_MSG                                                              \
    "a valid label must be an empty string or consist of alphanumeric "       \
    "characters, '-', '_' or '.', and must start and end with an "            \
    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "   \
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

#define LONG63 "a23456789012345678901234567890123456789012345678901234567890123"
#define LONG64 LONG63 "4"

static json_t *parse_json(const char *text)
{
    if (!text)
        return NULL;
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, je.text);
    return j;
}

/* Prints the row that failed, since the tables are long. */
#define CHECK_INT(row, got, want)                                              \
    do {                                                                       \
        if ((got) != (want))                                                   \
            fail_msg("%s: got %d, want %d", (row), (int)(got), (int)(want));   \
    } while (0)
#define CHECK_STR(row, got, want)                                              \
    do {                                                                       \
        if (strcmp((got), (want)) != 0)                                        \
            fail_msg("%s:\n got  %s\n want %s", (row), (got), (want));         \
    } while (0)

/* ---------------------------------------------------------------------- */

static const struct label_match_row {
    const char *sel;
    const char *labels;    /* JSON; NULL: no labels */
    int match;
} label_match_rows[] = {
    /* empty selector */
    {"", NULL, 1},
    {"", "{\"a\":\"b\"}", 1},
    {"  ", "{}", 1},
    /* = and == need the key with the value */
    {"a=b", "{\"a\":\"b\"}", 1},
    {"a=b", "{\"a\":\"c\"}", 0},
    {"a=b", "{}", 0},
    {"a=b", NULL, 0},
    {"a==b", "{\"a\":\"b\"}", 1},
    {"a==b", "{\"x\":\"b\"}", 0},
    {"a=", "{\"a\":\"\"}", 1},
    {"a=", "{}", 0},
    /* != matches an absent key */
    {"a!=b", "{\"a\":\"b\"}", 0},
    {"a!=b", "{\"a\":\"c\"}", 1},
    {"a!=b", "{}", 1},
    {"a!=b", NULL, 1},
    /* in needs the key; notin matches an absent one */
    {"a in (b,c)", "{\"a\":\"c\"}", 1},
    {"a in (b,c)", "{\"a\":\"d\"}", 0},
    {"a in (b,c)", "{}", 0},
    {"a notin (b,c)", "{\"a\":\"c\"}", 0},
    {"a notin (b,c)", "{\"a\":\"d\"}", 1},
    {"a notin (b,c)", "{}", 1},
    {"a in ()", "{\"a\":\"\"}", 1},
    {"a in (b,)", "{\"a\":\"\"}", 1},
    {"a in (,b)", "{\"a\":\"\"}", 1},
    {"a in (b,,c)", "{\"a\":\"\"}", 1},
    {"a in (b,c)", "{\"a\":\"\"}", 0},
    {"a notin ()", "{\"a\":\"\"}", 0},
    /* exists / does not exist */
    {"a", "{\"a\":\"\"}", 1},
    {"a", "{}", 0},
    {"!a", "{}", 1},
    {"!a", NULL, 1},
    {"!a", "{\"a\":\"x\"}", 0},
    /* gt / lt: key present with an integer value */
    {"a>5", "{\"a\":\"6\"}", 1},
    {"a>5", "{\"a\":\"5\"}", 0},
    {"a>5", "{\"a\":\"x\"}", 0},
    {"a>5", "{}", 0},
    {"a<5", "{\"a\":\"4\"}", 1},
    {"a<5", "{\"a\":\"-7\"}", 1},
    {"a<5", "{\"a\":\"+4\"}", 1},
    {"a<5", "{\"a\":\"5\"}", 0},
    {"a<5", "{}", 0},
    {"a<5", "{\"a\":\"\"}", 0},
    {"a>9223372036854775806", "{\"a\":\"9223372036854775807\"}", 1},
    {"a>0", "{\"a\":\"9223372036854775808\"}", 0},
    {"a<0", "{\"a\":\"-9223372036854775808\"}", 1},
    {"a<0", "{\"a\":\"-9223372036854775809\"}", 0},
    /* several requirements are AND-ed */
    {"a=b,c", "{\"a\":\"b\",\"c\":\"\"}", 1},
    {"a=b,c", "{\"a\":\"b\"}", 0},
    {"a=b,a!=c", "{\"a\":\"b\"}", 1},
    {"a,!b,c in (1,2),d notin (x)", "{\"a\":\"\",\"c\":\"2\"}", 1},
    {"a,!b,c in (1,2),d notin (x)", "{\"a\":\"\",\"c\":\"2\",\"d\":\"x\"}", 0},
    /* whitespace anywhere between tokens */
    {"  a  =  b  ,\tc\nin ( d , e ) ,\r!f ", "{\"a\":\"b\",\"c\":\"e\"}", 1},
    {"a\t!=\tb", "{\"a\":\"c\"}", 1},
    {"a in(b)", "{\"a\":\"b\"}", 1},
    /* keywords are plain words where a value (or key) may stand */
    {"x in (in)", "{\"x\":\"in\"}", 1},
    {"in in (notin)", "{\"in\":\"notin\"}", 1},
    {"notin=in", "{\"notin\":\"in\"}", 1},
    /* prefixed keys, values with every allowed character */
    {"example.com/app=web-1_x.y", "{\"example.com/app\":\"web-1_x.y\"}", 1},
    {"k8s.io/a", "{\"k8s.io/a\":\"1\"}", 1},
    {"a=" LONG63, "{\"a\":\"" LONG63 "\"}", 1},
    /* a label that is not a string counts as absent */
    {"!a", "{\"a\":5}", 1},
    {"a!=b", "{\"a\":true}", 1},
    {"a", "{\"a\":null}", 0},
};

static void test_selector__label_matching(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(label_match_rows); i++) {
        const struct label_match_row *r = &label_match_rows[i];
        err_t err = {0};
        sel_t *s = NULL;
        json_t *labels = parse_json(r->labels);
        char row[256];
        snprintf(row, sizeof row, "[%s] on %s", r->sel, r->labels ? r->labels : "NULL");

        int rc = sel_parse_labels(r->sel, &s, &err);
        if (rc)
            fail_msg("%s: parse failed: %s", row, err.message);
        CHECK_INT(row, sel_matches_labels(s, labels), r->match);
        sel_free(s);
        json_decref(labels);
    }
}

/* ---------------------------------------------------------------------- */

static const struct label_error_row {
    const char *sel;
    const char *message;   /* the whole message kube gives */
} label_error_rows[] = {
    {"a=b c", "found 'c', expected: ',' or 'end of string'"},
    {"!a=b", "found '=', expected: ',' or 'end of string'"},
    {"a in (b) c", "found 'c', expected: ',' or 'end of string'"},
    {",", "found ',', expected: !, identifier, or 'end of string'"},
    {"=a", "found '=', expected: !, identifier, or 'end of string'"},
    {")", "found ')', expected: !, identifier, or 'end of string'"},
    {"a,", "found '', expected: identifier after ','"},
    {"a,,b", "found ',', expected: identifier after ','"},
    {"a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"},
    {"a (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"},
    {"a !b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"},
    {"a >= 1", "unable to parse requirement: found '=', expected: identifier"},
    {"a===b", "unable to parse requirement: found '=', expected: identifier"},
    {"a in", "unable to parse requirement: found '' expected: '('"},
    {"a in b", "unable to parse requirement: found 'b' expected: '('"},
    {"a in (b", "unable to parse requirement: found '', expected: ',' or ')'"},
    {"a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"},
    {"a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"},
    {"a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"},
    {"a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"},
    {"a notin (,", "unable to parse requirement: found '', expected: ',', or identifier"},
    {"a=(", "unable to parse requirement: found '(', expected: identifier"},
    {"a!=!", "unable to parse requirement: found '!', expected: identifier"},
    {"!", "unable to parse requirement: found '', expected: identifier"},
    {"!!a", "unable to parse requirement: found '!', expected: identifier"},
    {"!=a", "found '!=', expected: !, identifier, or 'end of string'"},
    /* keys */
    {"a_=b", "unable to parse requirement: <nil>: Invalid value: \"a_\": " NAME_MSG},
    {"-a", "unable to parse requirement: <nil>: Invalid value: \"-a\": " NAME_MSG},
    {"/a", "unable to parse requirement: <nil>: Invalid value: \"/a\": "
           "prefix part must be non-empty"},
    {"a/", "unable to parse requirement: <nil>: Invalid value: \"a/\": "
           "name part must be non-empty; " NAME_MSG},
    {LONG64, "unable to parse requirement: <nil>: Invalid value: \"" LONG64
             "\": name part must be no more than 63 characters"},
    {"Example.com/a", "unable to parse requirement: <nil>: Invalid value: "
                      "\"Example.com/a\": prefix part a lowercase RFC 1123 subdomain"},
    {"a/b/c", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": "
              "a valid label key must consist of"},
    {"a\"b", "unable to parse requirement: <nil>: Invalid value: \"a\\\"b\": " NAME_MSG},
    /* values */
    {"a=b_", "unable to parse requirement: values[0][a]: Invalid value: \"b_\": " VALUE_MSG},
    {"a in (x,b_)", "unable to parse requirement: values[0][a]: Invalid value: \"b_\": " VALUE_MSG},
    {"a=" LONG64, "unable to parse requirement: values[0][a]: Invalid value: \""
                  LONG64 "\": must be no more than 63 characters"},
    {"a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": "
            "for 'Gt', 'Lt' operators, the value must be an integer"},
    {"a<", "unable to parse requirement: values[0]: Invalid value: \"\": "
           "for 'Gt', 'Lt' operators, the value must be an integer"},
    {"a>99999999999999999999", "unable to parse requirement: values[0]: Invalid value: "
                               "\"99999999999999999999\": for 'Gt', 'Lt' operators, "
                               "the value must be an integer"},
    {"a>b_", "unable to parse requirement: [values[0]: Invalid value: \"b_\": "
             "for 'Gt', 'Lt' operators, the value must be an integer, "
             "values[0][a]: Invalid value: \"b_\": " VALUE_MSG "]"},
};

static void test_selector__label_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(label_error_rows); i++) {
        const struct label_error_row *r = &label_error_rows[i];
        err_t err = {0};
        sel_t *s = (sel_t *)1;

        int rc = sel_parse_labels(r->sel, &s, &err);
        CHECK_INT(r->sel, rc, ERR_BAD_REQUEST);
        CHECK_INT(r->sel, err.code, ERR_BAD_REQUEST);
        assert_null(s);
        /* err.message is cut at its size; compare what fits. */
        size_t n = strlen(r->message);
        if (n >= sizeof err.message)
            n = sizeof err.message - 1;
        if (strncmp(err.message, r->message, n) != 0)
            fail_msg("[%s]:\n got  %s\n want %s", r->sel, err.message, r->message);
    }
}

/* ---------------------------------------------------------------------- */

static const struct string_row {
    const char *sel;
    const char *canonical;
} label_string_rows[] = {
    {"", ""},
    {"b=1, a in (z,y,y), !c, d notin (), e>3, f<10", "a in (y,z),b=1,!c,d notin (),e>3,f<10"},
    {"x==y", "x==y"},
    {"x = y", "x=y"},
    {"a in (b)", "a in (b)"},
    {"a notin (b,,a)", "a notin (,a,b)"},
    {"z, y, x", "x,y,z"},
    /* equal keys keep their order */
    {"a!=x,a=y,a", "a!=x,a=y,a"},
    {"a,a=y,a!=x", "a,a=y,a!=x"},
};

static void test_selector__label_to_string(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(label_string_rows); i++) {
        const struct string_row *r = &label_string_rows[i];
        sel_t *s = NULL, *again = NULL;
        err_t err = {0};
        if (sel_parse_labels(r->sel, &s, &err))
            fail_msg("[%s]: %s", r->sel, err.message);
        char *str = sel_to_string(s);
        assert_non_null(str);
        CHECK_STR(r->sel, str, r->canonical);
        /* The canonical form parses to itself. */
        assert_int_equal(sel_parse_labels(str, &again, &err), 0);
        char *str2 = sel_to_string(again);
        CHECK_STR(r->sel, str2, r->canonical);
        mem_free(str2);
        mem_free(str);
        sel_free(again);
        sel_free(s);
    }
}

/* ---------------------------------------------------------------------- */

static const struct required_row {
    const char *sel;
    int fields;          /* parse as a field selector */
    const char *key;
    const char *value;   /* NULL: no single required value */
} required_rows[] = {
    {"a=v", 0, "a", "v"},
    {"a==v", 0, "a", "v"},
    {"a in (v)", 0, "a", "v"},
    {"a in (v,w)", 0, "a", NULL},
    {"a in (v,v)", 0, "a", "v"},
    {"a!=v", 0, "a", NULL},
    {"a notin (v)", 0, "a", NULL},
    {"a", 0, "a", NULL},
    {"!a", 0, "a", NULL},
    {"a>1", 0, "a", NULL},
    {"b=v", 0, "a", NULL},
    {"", 0, "a", NULL},
    {"b=x,a=v,c=y", 0, "a", "v"},
    {"a=", 0, "a", ""},
    /* labels: the first requirement on the key decides */
    {"a!=x,a=y", 0, "a", NULL},
    {"a=y,a!=x", 0, "a", "y"},
    /* fields: the first equality term on the key */
    {"spec.x=b", 1, "spec.x", "b"},
    {"spec.x==b", 1, "spec.x", "b"},
    {"spec.x!=a,spec.x=b", 1, "spec.x", "b"},
    {"spec.x!=a", 1, "spec.x", NULL},
    {"spec.x=a\\,b", 1, "spec.x", "a,b"},
    {"metadata.name=n", 1, "spec.x", NULL},
};

static void test_selector__required_value(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(required_rows); i++) {
        const struct required_row *r = &required_rows[i];
        sel_t *s = NULL;
        err_t err = {0};
        int rc = r->fields ? sel_parse_fields(r->sel, NULL, &s, &err)
                           : sel_parse_labels(r->sel, &s, &err);
        if (rc)
            fail_msg("[%s]: %s", r->sel, err.message);
        const char *v = sel_required_value(s, r->key);
        if (!r->value && v)
            fail_msg("[%s]: got %s, want none", r->sel, v);
        if (r->value && !v)
            fail_msg("[%s]: got none, want %s", r->sel, r->value);
        if (r->value)
            CHECK_STR(r->sel, v, r->value);
        sel_free(s);
    }
}

/* ---------------------------------------------------------------------- */

static const char *const pod_fields[] = {
    "metadata.name", "metadata.namespace", "spec.nodeName", "spec.x", NULL,
};

/* A field set for sel_matches_fields: name/value pairs, NULL-terminated. */
static const char *get_field(void *arg, const char *name)
{
    const char *const *kv = arg;
    for (; kv[0]; kv += 2)
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

static const struct field_match_row {
    const char *sel;
    const char *fields[7];
    int match;
} field_match_rows[] = {
    {"", {NULL}, 1},
    {",", {NULL}, 1},
    {"metadata.name=foo", {"metadata.name", "foo", NULL}, 1},
    {"metadata.name=foo", {"metadata.name", "bar", NULL}, 0},
    {"metadata.name=foo", {NULL}, 0},
    {"metadata.name==foo", {"metadata.name", "foo", NULL}, 1},
    {"metadata.name!=foo", {"metadata.name", "foo", NULL}, 0},
    {"metadata.name!=foo", {"metadata.name", "bar", NULL}, 1},
    /* an absent field compares as "" */
    {"metadata.name!=foo", {NULL}, 1},
    {"spec.nodeName=", {NULL}, 1},
    {"spec.nodeName==", {"spec.nodeName", "", NULL}, 1},
    {"spec.nodeName!=", {NULL}, 0},
    {"spec.nodeName!=", {"spec.nodeName", "n1", NULL}, 1},
    /* escapes */
    {"spec.x=a\\,b", {"spec.x", "a,b", NULL}, 1},
    {"spec.x=a\\=b", {"spec.x", "a=b", NULL}, 1},
    {"spec.x=a\\\\b", {"spec.x", "a\\b", NULL}, 1},
    {"spec.x=a\\\\", {"spec.x", "a\\", NULL}, 1},
    {"spec.x!=a\\,b,metadata.name=n", {"spec.x", "a", "metadata.name", "n", NULL}, 1},
    {"spec.x!=a\\,b,metadata.name=n", {"spec.x", "a,b", "metadata.name", "n", NULL}, 0},
    /* the first operator splits; values keep spaces and other symbols */
    {"spec.x= a b ", {"spec.x", " a b ", NULL}, 1},
    {"spec.x=a(b)!", {"spec.x", "a(b)!", NULL}, 1},
    {"metadata.name=a,metadata.namespace=b", {"metadata.name", "a", "metadata.namespace", "b", NULL}, 1},
    {"metadata.name=a,metadata.namespace=b", {"metadata.name", "a", NULL}, 0},
    {"metadata.name=a,,", {"metadata.name", "a", NULL}, 1},
};

static void test_selector__field_matching(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(field_match_rows); i++) {
        const struct field_match_row *r = &field_match_rows[i];
        sel_t *s = NULL;
        err_t err = {0};
        int rc = sel_parse_fields(r->sel, pod_fields, &s, &err);
        if (rc)
            fail_msg("[%s]: %s", r->sel, err.message);
        CHECK_INT(r->sel, sel_matches_fields(s, get_field, (void *)r->fields), r->match);
        sel_free(s);
    }
}

static const struct field_error_row {
    const char *sel;
    const char *message;
} field_error_rows[] = {
    {"spec.x=a\\qb", "invalid field selector: invalid escape sequence: \\q"},
    {"spec.x=a\\!b", "invalid field selector: invalid escape sequence: \\!"},
    {"spec.x=a\\\xc3\xa9", "invalid field selector: invalid escape sequence: \\\xc3\xa9"},
    {"spec.x=a\\", "invalid field selector: invalid escape sequence: \\"},
    {"spec.x=a=b", "invalid field selector: unescaped character in value: 61"},
    {"spec.x==a=b", "invalid field selector: unescaped character in value: 61"},
    /* the first operator splits: `=` here, leaving a bare `=` in the value */
    {"spec.x=a!=b", "invalid field selector: unescaped character in value: 61"},
    {"foo", "invalid selector: 'foo'; can't understand 'foo'"},
    {"metadata.name=a,foo", "invalid selector: 'metadata.name=a,foo'; can't understand 'foo'"},
    {" ", "invalid selector: ' '; can't understand ' '"},
    {"bogus=1", "field label not supported: bogus"},
    {"=1", "field label not supported: "},
    {"metadata.name =1", "field label not supported: metadata.name "},
    {"status.phase!=Running", "field label not supported: status.phase"},
    /* terms are handled in sorted order, syntax before field labels */
    {"zz=\\q,bogus=1", "invalid field selector: invalid escape sequence: \\q"},
    {"b=\\q,a=\\,\\x", "invalid field selector: invalid escape sequence: \\x"},
    {"metadata.name=a,bogus=1,another=2", "field label not supported: another"},
};

static void test_selector__field_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(field_error_rows); i++) {
        const struct field_error_row *r = &field_error_rows[i];
        sel_t *s = (sel_t *)1;
        err_t err = {0};
        CHECK_INT(r->sel, sel_parse_fields(r->sel, pod_fields, &s, &err), ERR_BAD_REQUEST);
        CHECK_INT(r->sel, err.code, ERR_BAD_REQUEST);
        assert_null(s);
        CHECK_STR(r->sel, err.message, r->message);
    }
    /* NULL allows any field name */
    sel_t *s = NULL;
    assert_int_equal(sel_parse_fields("bogus=1", NULL, &s, NULL), 0);
    sel_free(s);
}

static const struct string_row field_string_rows[] = {
    {"", ""},
    {"spec.x!=a\\,b,metadata.name==b", "metadata.name=b,spec.x!=a\\,b"},
    {"spec.x=a\\=\\\\", "spec.x=a\\=\\\\"},
    /* sorted as text, not by field name */
    {"spec.x=1,spec.x!=2", "spec.x!=2,spec.x=1"},
};

static void test_selector__field_to_string(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(field_string_rows); i++) {
        const struct string_row *r = &field_string_rows[i];
        sel_t *s = NULL;
        err_t err = {0};
        if (sel_parse_fields(r->sel, pod_fields, &s, &err))
            fail_msg("[%s]: %s", r->sel, err.message);
        char *str = sel_to_string(s);
        assert_non_null(str);
        CHECK_STR(r->sel, str, r->canonical);
        mem_free(str);
        sel_free(s);
    }
}

/* ---------------------------------------------------------------------- */

static const struct ls_match_row {
    const char *ls;       /* JSON; NULL: no selector */
    const char *labels;
    int match;
    const char *canonical;
} ls_match_rows[] = {
    {NULL, "{}", 1, ""},
    {"null", "{\"a\":\"b\"}", 1, ""},
    {"{}", "{}", 1, ""},
    {"{\"matchLabels\":{},\"matchExpressions\":[]}", NULL, 1, ""},
    {"{\"matchLabels\":null}", NULL, 1, ""},
    {"{\"matchLabels\":{\"a\":\"b\"}}", "{\"a\":\"b\"}", 1, "a=b"},
    {"{\"matchLabels\":{\"a\":\"b\"}}", "{\"a\":\"c\"}", 0, "a=b"},
    {"{\"matchLabels\":{\"a\":\"\"}}", "{}", 0, "a="},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"y\",\"x\"]}]}",
     "{\"a\":\"x\"}", 1, "a in (x,y)"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"x\"]}]}",
     "{}", 0, "a in (x)"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[\"x\"]}]}",
     "{}", 1, "a notin (x)"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[\"x\"]}]}",
     "{\"a\":\"x\"}", 0, "a notin (x)"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"}]}",
     "{\"a\":\"\"}", 1, "a"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[]}]}",
     "{}", 0, "a"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\",\"values\":null}]}",
     "{}", 1, "!a"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\"}]}",
     "{\"a\":\"x\"}", 0, "!a"},
    {"{\"matchLabels\":{\"b\":\"1\"},\"matchExpressions\":[{\"key\":\"a\",\"operator\":"
     "\"NotIn\",\"values\":[\"z\",\"y\"]},{\"key\":\"c\",\"operator\":\"Exists\"}]}",
     "{\"b\":\"1\",\"c\":\"\"}", 1, "a notin (y,z),b=1,c"},
    {"{\"matchLabels\":{\"b\":\"1\"},\"matchExpressions\":[{\"key\":\"a\",\"operator\":"
     "\"NotIn\",\"values\":[\"z\",\"y\"]},{\"key\":\"c\",\"operator\":\"Exists\"}]}",
     "{\"b\":\"1\"}", 0, "a notin (y,z),b=1,c"},
    {"{\"matchLabels\":{\"example.com/x\":\"v\"},\"other\":1}",
     "{\"example.com/x\":\"v\"}", 1, "example.com/x=v"},
};

static void test_selector__label_selector_json(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(ls_match_rows); i++) {
        const struct ls_match_row *r = &ls_match_rows[i];
        json_t *ls = parse_json(r->ls);
        json_t *labels = parse_json(r->labels);
        const char *row = r->ls ? r->ls : "NULL";
        sel_t *s = NULL;
        err_t err = {0};
        if (sel_from_label_selector(ls, &s, &err))
            fail_msg("%s: %s", row, err.message);
        CHECK_INT(row, sel_matches_labels(s, labels), r->match);
        CHECK_INT(row, sel_is_empty(s), r->canonical[0] == '\0');
        char *str = sel_to_string(s);
        assert_non_null(str);
        CHECK_STR(row, str, r->canonical);
        mem_free(str);
        sel_free(s);
        json_decref(labels);
        json_decref(ls);
    }
}

static const struct ls_error_row {
    const char *ls;
    int ncauses;
    const char *type;      /* the first cause */
    const char *field;
    const char *message;   /* the start of the first cause's message */
} ls_error_rows[] = {
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", 1,
     "FieldValueRequired", "matchExpressions[0].values",
     "Required value: must be specified when `operator` is 'In' or 'NotIn'"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}", 1,
     "FieldValueRequired", "matchExpressions[0].values", "Required value"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
     "{\"key\":\"b\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}", 1,
     "FieldValueForbidden", "matchExpressions[1].values",
     "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\",\"values\":[\"x\"]}]}", 1,
     "FieldValueForbidden", "matchExpressions[0].values", "Forbidden"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Foo\"}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].operator",
     "Invalid value: \"Foo\": not a valid selector operator"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"x\"]}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].operator", "Invalid value: \"in\""},
    {"{\"matchExpressions\":[{\"key\":\"a\"}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].operator", "Invalid value: \"\""},
    {"{\"matchExpressions\":[{\"key\":\"a_\",\"operator\":\"Exists\"}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].key", "Invalid value: \"a_\": name part must"},
    {"{\"matchExpressions\":[{\"operator\":\"Exists\"}]}", 2,
     "FieldValueInvalid", "matchExpressions[0].key",
     "Invalid value: \"\": name part must be non-empty"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"ok\",\"b_\"]}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].values[1]",
     "Invalid value: \"b_\": a valid label must be"},
    {"{\"matchLabels\":{\"a\":\"b_\"}}", 1,
     "FieldValueInvalid", "matchLabels", "Invalid value: \"b_\": a valid label must be"},
    {"{\"matchLabels\":{\"a/b/c\":\"x\"}}", 1,
     "FieldValueInvalid", "matchLabels", "Invalid value: \"a/b/c\": a valid label key"},
    {"{\"matchLabels\":{\"-\":\"-\"}}", 2,
     "FieldValueInvalid", "matchLabels", "Invalid value: \"-\": name part must"},
    /* shapes JSON decoding would reject */
    {"[]", 1, "FieldValueInvalid", "", "Invalid value: array: must be an object"},
    {"{\"matchLabels\":[]}", 1, "FieldValueInvalid", "matchLabels", "Invalid value: array"},
    {"{\"matchLabels\":{\"a\":5}}", 1, "FieldValueInvalid", "matchLabels",
     "Invalid value: number: must be a string"},
    {"{\"matchExpressions\":{}}", 1, "FieldValueInvalid", "matchExpressions",
     "Invalid value: object: must be an array"},
    {"{\"matchExpressions\":[1]}", 1, "FieldValueInvalid", "matchExpressions[0]",
     "Invalid value: number: must be an object"},
    {"{\"matchExpressions\":[{\"key\":1,\"operator\":\"Exists\"}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].key", "Invalid value: number"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":true}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].operator", "Invalid value: boolean"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].values", "Invalid value: string"},
    {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[null]}]}", 1,
     "FieldValueInvalid", "matchExpressions[0].values[0]",
     "Invalid value: null: must be a string"},
};

static void test_selector__label_selector_json_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(ls_error_rows); i++) {
        const struct ls_error_row *r = &ls_error_rows[i];
        json_t *ls = parse_json(r->ls);
        sel_t *s = (sel_t *)1;
        err_t err = {0};
        CHECK_INT(r->ls, sel_from_label_selector(ls, &s, &err), ERR_INVALID);
        CHECK_INT(r->ls, err.code, ERR_INVALID);
        assert_null(s);
        CHECK_INT(r->ls, err.ncauses, r->ncauses);
        CHECK_STR(r->ls, err.causes[0].type, r->type);
        CHECK_STR(r->ls, err.causes[0].field, r->field);
        if (strncmp(err.causes[0].message, r->message, strlen(r->message)) != 0)
            fail_msg("%s:\n got  %s\n want %s...", r->ls, err.causes[0].message, r->message);
        json_decref(ls);
    }

    /* The message aggregates the field errors as kube prints them. */
    json_t *ls = parse_json("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"},"
                            "{\"key\":\"b\",\"operator\":\"Bad\"}]}");
    sel_t *s = NULL;
    err_t err = {0};
    assert_int_equal(sel_from_label_selector(ls, &s, &err), ERR_INVALID);
    assert_string_equal(err.message,
                        "[matchExpressions[0].values: Required value: must be specified "
                        "when `operator` is 'In' or 'NotIn', matchExpressions[1].operator: "
                        "Invalid value: \"Bad\": not a valid selector operator]");
    json_decref(ls);

    ls = parse_json("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}");
    err_clear(&err);
    assert_int_equal(sel_from_label_selector(ls, &s, &err), ERR_INVALID);
    assert_string_equal(err.message, "matchExpressions[0].values: Required value: must be "
                                     "specified when `operator` is 'In' or 'NotIn'");
    /* A NULL err is allowed. */
    assert_int_equal(sel_from_label_selector(ls, &s, NULL), ERR_INVALID);
    json_decref(ls);
}

/* ---------------------------------------------------------------------- */

static void test_selector__is_empty(void **state)
{
    (void)state;
    static const struct { const char *sel; int fields; int empty; } rows[] = {
        {"", 0, 1}, {" \t ", 0, 1}, {"a", 0, 0}, {"!a", 0, 0},
        {"", 1, 1}, {",,", 1, 1}, {"spec.x=", 1, 0},
    };
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        sel_t *s = NULL;
        int rc = rows[i].fields ? sel_parse_fields(rows[i].sel, pod_fields, &s, NULL)
                                : sel_parse_labels(rows[i].sel, &s, NULL);
        CHECK_INT(rows[i].sel, rc, 0);
        CHECK_INT(rows[i].sel, sel_is_empty(s), rows[i].empty);
        sel_free(s);
    }
    sel_free(NULL);
}

/* A label selector matched through sel_matches_fields keeps label rules
 * (absent is absent), and a field selector through sel_matches_labels keeps
 * field rules (absent is ""). */
static void test_selector__kind_decides_semantics(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    sel_t *l = NULL, *f = NULL;
    json_t *empty = json_object();
    assert_int_equal(sel_parse_labels("a=", &l, NULL), 0);
    assert_int_equal(sel_parse_fields("spec.x=", pod_fields, &f, NULL), 0);
    assert_int_equal(sel_matches_fields(l, get_field, (void *)none), 0);
    assert_int_equal(sel_matches_labels(f, empty), 1);
    assert_int_equal(sel_matches_labels(f, NULL), 1);
    sel_free(l);
    sel_free(f);
    json_decref(empty);
}

/* The first error wins: a filled err_t is left alone. */
static void test_selector__first_error_wins(void **state)
{
    (void)state;
    err_t err = {0};
    sel_t *s = NULL;
    err_set(&err, ERR_NOT_FOUND, "earlier");
    assert_int_equal(sel_parse_labels("a b", &s, &err), ERR_BAD_REQUEST);
    assert_int_equal(sel_parse_fields("x", NULL, &s, &err), ERR_BAD_REQUEST);
    json_t *ls = parse_json("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}");
    assert_int_equal(sel_from_label_selector(ls, &s, &err), ERR_INVALID);
    json_decref(ls);
    assert_int_equal(err.code, ERR_NOT_FOUND);
    assert_string_equal(err.message, "earlier");
    assert_int_equal(err.ncauses, 0);
}

/* Every allocation in turn fails: each call returns 0 or ERR_NOMEM, never
 * crashes, and leaks nothing (checked by AddressSanitizer). */
static void test_selector__allocation_failure(void **state)
{
    (void)state;
    json_t *ls = parse_json(
        "{\"matchLabels\":{\"b\":\"1\",\"c\":\"2\",\"d\":\"3\",\"e\":\"4\",\"f\":\"5\"},"
        "\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[\"z\",\"y\"]},"
        "{\"key\":\"g\",\"operator\":\"Exists\"}]}");
    const char *labels = "a in (x,y,z,w,v,u), b!=c, !d, e, f>1, g<2, h==3, i notin (), "
                         "j=1, k=2, example.com/l in (p,q)";
    const char *fields = "metadata.name=a\\,b,spec.nodeName!=n,metadata.namespace==ns,"
                         "spec.x=1,spec.x!=2";
    int done = 0;

    for (long n = 0; !done; n++) {
        int ok = 0;
        sel_t *s = NULL;
        err_t err = {0};

        assert_true(n < 1000);
        mem_fail_after(n);

        int rc = sel_parse_labels(labels, &s, &err);
        assert_true(rc == 0 || rc == ERR_NOMEM);
        assert_int_equal(err.code, rc);
        if (!rc) {
            char *str = sel_to_string(s);
            ok += str != NULL;
            mem_free(str);
            sel_free(s);
            s = NULL;
        }

        err_clear(&err);
        rc = sel_parse_fields(fields, pod_fields, &s, &err);
        assert_true(rc == 0 || rc == ERR_NOMEM);
        assert_int_equal(err.code, rc);
        if (!rc) {
            char *str = sel_to_string(s);
            ok += str != NULL;
            mem_free(str);
            sel_free(s);
            s = NULL;
        }

        err_clear(&err);
        rc = sel_from_label_selector(ls, &s, &err);
        assert_true(rc == 0 || rc == ERR_NOMEM);
        assert_int_equal(err.code, rc);
        if (!rc) {
            char *str = sel_to_string(s);
            ok += str != NULL;
            mem_free(str);
            sel_free(s);
        }

        /* Parse errors are still reported as such when memory is short. */
        err_clear(&err);
        rc = sel_parse_labels("a b", &s, &err);
        assert_true(rc == ERR_BAD_REQUEST || rc == ERR_NOMEM);

        mem_fail_after(-1);
        done = ok == 3;
    }
    json_decref(ls);
}

/* The name checks the registry's validation shares, in kube's words. */
static void test_selector__name_checks(void **state)
{
    (void)state;
    valid_msgs_t ms;
    char long_name[300];
    memset(long_name, 'a', 254);
    long_name[254] = '\0';
    assert_int_equal(valid_dns_subdomain("a.b-c", 5, &ms), 0);
    assert_int_equal(valid_dns_subdomain(long_name, 253, &ms), 0);
    assert_int_equal(valid_dns_subdomain(long_name, 254, &ms), 1);
    assert_string_equal(ms.m[0], "must be no more than 253 characters");
    assert_int_equal(valid_dns_subdomain("A_", 2, &ms), 1);
    assert_non_null(strstr(ms.m[0], "a lowercase RFC 1123 subdomain must consist of"));
    assert_int_equal(valid_dns_subdomain("", 0, &ms), 1);
    long_name[253] = '-';
    assert_int_equal(valid_dns_subdomain(long_name, 254, &ms), 2);
    assert_int_equal(valid_qualified_name("example.com/a_b", 15, &ms), 0);
    assert_int_equal(valid_qualified_name("/a", 2, &ms), 1);
    assert_string_equal(ms.m[0], "prefix part must be non-empty");
    assert_int_equal(valid_label_value("", 0, &ms), 0);
    assert_int_equal(valid_label_value("-a", 2, &ms), 1);
    assert_non_null(strstr(ms.m[0], "a valid label must be an empty string"));
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector__label_matching),
        cmocka_unit_test(test_selector__label_errors),
        cmocka_unit_test(test_selector__label_to_string),
        cmocka_unit_test(test_selector__required_value),
        cmocka_unit_test(test_selector__field_matching),
        cmocka_unit_test(test_selector__field_errors),
        cmocka_unit_test(test_selector__field_to_string),
        cmocka_unit_test(test_selector__label_selector_json),
        cmocka_unit_test(test_selector__label_selector_json_errors),
        cmocka_unit_test(test_selector__is_empty),
        cmocka_unit_test(test_selector__kind_decides_semantics),
        cmocka_unit_test(test_selector__first_error_wins),
        cmocka_unit_test(test_selector__allocation_failure),
        cmocka_unit_test(test_selector__name_checks),
    };
    return cmocka_run_group_tests_name("selector", tests, NULL, NULL);
}
