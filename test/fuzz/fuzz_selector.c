/*
 * Fuzzes apimachinery/selector (labelSelector and fieldSelector query
 * parameters, metav1.LabelSelector objects in bodies): any text parses or
 * fails with no crash and no leak; a parsed selector matches a fixed
 * object, and its string form parses back to a selector that matches it
 * alike.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "../../apimachinery/selector.h"
#include "../../lib/mem.h"
#include "fuzz.h"

static const char *const field_names[] = {"metadata.name", "metadata.namespace", NULL};

static const char *get_field(void *arg, const char *name)
{
    (void)arg;
    if (!strcmp(name, "metadata.name"))
        return "edge-1";
    if (!strcmp(name, "metadata.namespace"))
        return "kube-system";
    return NULL;
}

/* Parses a selector's string form back; the copy must match as s does. */
static sel_t *reparse(const sel_t *s, int labels, const json_t *obj, int m, char **str)
{
    *str = sel_to_string(s);
    FUZZ_CHECK(*str != NULL);
    sel_t *again = NULL;
    err_t err = {0};
    int rc = labels ? sel_parse_labels(*str, &again, &err)
                    : sel_parse_fields(*str, NULL, &again, &err);
    FUZZ_CHECK(rc == 0 && again);
    FUZZ_CHECK((labels ? sel_matches_labels(again, obj)
                       : sel_matches_fields(again, get_field, NULL)) == m);
    return again;
}

/* Matches s against the fixed object, asks it the questions the server
 * asks, and reads its string form back. A label selector's string is
 * canonical at once. A field selector's may not be: terms are ordered by
 * their text, which writing changes (`==` becomes `=`, values are
 * re-escaped), as in kube; so only its second string must read back to
 * itself. */
static void exercise(const sel_t *s, int labels, const json_t *obj)
{
    int m = labels ? sel_matches_labels(s, obj) : sel_matches_fields(s, get_field, NULL);
    FUZZ_CHECK(m == 0 || m == 1);
    FUZZ_CHECK(sel_matches_labels(s, NULL) <= 1);
    FUZZ_CHECK(!sel_is_empty(s) || m == 1);
    (void)sel_required_value(s, "app");
    (void)sel_required_value(s, "metadata.name");

    char *str, *str2, *str3;
    sel_t *again = reparse(s, labels, obj, m, &str);
    sel_t *third = reparse(again, labels, obj, m, &str2);
    FUZZ_CHECK(!labels || !strcmp(str, str2));
    sel_free(reparse(third, labels, obj, m, &str3));
    FUZZ_CHECK(!strcmp(str2, str3));
    mem_free(str3);
    mem_free(str2);
    mem_free(str);
    sel_free(third);
    sel_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > FUZZ_MAX_LEN)
        return 0;
    /* Query parameters reach the parser as C strings. */
    char *text = mem_strndup((const char *)data, size);
    json_t *labels = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "app", "a", "tier", "db",
                               "x", "", "n", "10", "example.com/role", "edge", "bad", 1);
    FUZZ_CHECK(text && labels);

    sel_t *s = NULL;
    err_t err = {0};
    if (sel_parse_labels(text, &s, &err) == 0) {
        exercise(s, 1, labels);
        sel_free(s);
    } else {
        FUZZ_CHECK(!s && err.code == ERR_BAD_REQUEST);
    }

    const char *const *allowed[] = {NULL, field_names};
    for (int i = 0; i < 2; i++) {
        s = NULL;
        err_t ferr = {0};
        if (sel_parse_fields(text, allowed[i], &s, &ferr) == 0) {
            exercise(s, 0, labels);
            sel_free(s);
        } else {
            FUZZ_CHECK(!s && ferr.code == ERR_BAD_REQUEST);
        }
    }

    /* The same bytes as a metav1.LabelSelector object. */
    json_t *ls = json_loadb((const char *)data, size, 0, NULL);
    if (ls) {
        s = NULL;
        err_t lerr = {0};
        if (sel_from_label_selector(ls, &s, &lerr) == 0) {
            exercise(s, 1, labels);
            sel_free(s);
        } else {
            FUZZ_CHECK(!s && lerr.code == ERR_INVALID);
        }
        json_decref(ls);
    }
    json_decref(labels);
    mem_free(text);
    return 0;
}
