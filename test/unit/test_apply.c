/* Unit tests of apimachinery/apply: server-side apply and managedFields. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../apimachinery/apply.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

#define AV "wardle.example.com/v1alpha1"
#define T1 "2024-01-01T00:00:01Z"
#define T2 "2024-01-01T00:00:02Z"
#define T3 "2024-01-01T00:00:03Z"

static const patch_list_rule_t rules[] = {
    {"spec.subjects", "kind,name"},
    {"status.conditions", "type"},
    {NULL, NULL},
};

/* JSON from a literal written with single quotes ('\'' becomes '"'). */
static json_t *js(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(d, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON: %s: %s", e.text, d);
    free(d);
    return v;
}

static void assert_json(const json_t *got, const char *want_sq)
{
    json_t *want = js(want_sq);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* The object with "spec" = spec_sq (and a fixed identity). */
static json_t *flunder(const char *spec_sq)
{
    json_t *o = js("{'apiVersion':'" AV "','kind':'Flunder',"
                   "'metadata':{'name':'f','namespace':'ns'}}");
    if (spec_sq)
        json_object_set_new(o, "spec", js(spec_sq));
    return o;
}

static const json_t *mf(const json_t *obj)
{
    return json_object_get(json_object_get(obj, "metadata"), "managedFields");
}

/* The fieldsV1 of manager's entry with operation op; NULL if none. */
static const json_t *fields(const json_t *obj, const char *manager, const char *op)
{
    size_t i;
    json_t *e;
    json_array_foreach(mf(obj), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "manager")), manager) &&
            !strcmp(json_string_value(json_object_get(e, "operation")), op))
            return json_object_get(e, "fieldsV1");
    }
    return NULL;
}

static const json_t *spec(const json_t *obj) { return json_object_get(obj, "spec"); }

/* Applies spec_sq as manager onto *live (replaced by the result). */
static int apply(json_t **live, const char *manager, const char *spec_sq, int force,
                 const char *now, err_t *err)
{
    json_t *cfg = flunder(spec_sq), *out = NULL;
    err_clear(err);
    int rc = apply_patch(*live, cfg, manager, force, AV, now, rules, &out, err);
    json_decref(cfg);
    if (!rc) {
        json_decref(*live);
        *live = out;
    } else {
        assert_null(out);
    }
    return rc;
}

/* An ordinary write by manager: *live's spec becomes spec_sq. */
static void update(json_t **live, const char *manager, const char *spec_sq, const char *now)
{
    err_t err = {0};
    json_t *obj = json_deep_copy(*live);
    json_object_set_new(obj, "spec", js(spec_sq));
    assert_int_equal(apply_track_update(*live, obj, manager, AV, now, rules, &err), 0);
    json_decref(*live);
    *live = obj;
}

static void test_apply__create(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *cfg = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f',"
                     "'namespace':'ns','labels':{'app':'x'}},'spec':{'replicas':2,"
                     "'subjects':[{'kind':'User','name':'alice'}]}}");
    json_t *out = NULL;
    assert_int_equal(apply_patch(NULL, cfg, "kubectl", 0, AV, T1, rules, &out, &err), 0);
    assert_json(out,
        "{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f','namespace':'ns',"
        "'labels':{'app':'x'},'managedFields':[{'manager':'kubectl','operation':'Apply',"
        "'apiVersion':'" AV "','time':'" T1 "','fieldsType':'FieldsV1','fieldsV1':{"
        "'f:metadata':{'f:labels':{'f:app':{}}},'f:spec':{'f:replicas':{},'f:subjects':{"
        "'k:{\\'kind\\':\\'User\\',\\'name\\':\\'alice\\'}':{'.':{},'f:kind':{},'f:name':{}}}}}}]},"
        "'spec':{'replicas':2,'subjects':[{'kind':'User','name':'alice'}]}}");
    /* The wire form is kube's: fields in its order, "." first. */
    char *s = json_dumps(json_object_get(json_array_get(mf(out), 0), "fieldsV1"), JSON_COMPACT);
    assert_string_equal(s, "{\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},\"f:spec\":{"
                           "\"f:replicas\":{},\"f:subjects\":{\"k:{\\\"kind\\\":\\\"User\\\","
                           "\\\"name\\\":\\\"alice\\\"}\":{\".\":{},\"f:kind\":{},\"f:name\":{}}}}}");
    free(s);
    json_decref(out);
    json_decref(cfg);
}

static void test_apply__reapply_is_noop(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'a':1,'b':{'c':'x'}}", 0, T1, &err), 0);
    json_t *before = json_deep_copy(live);
    /* Same configuration: nothing changes, the entry's time included, so
     * the registry writes nothing. */
    assert_int_equal(apply(&live, "kubectl", "{'a':1,'b':{'c':'x'}}", 0, T2, &err), 0);
    assert_true(json_equal(live, before));
    /* A change moves the time. */
    assert_int_equal(apply(&live, "kubectl", "{'a':2,'b':{'c':'x'}}", 0, T3, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(mf(live), 0), "time")),
                        T3);
    assert_json(spec(live), "{'a':2,'b':{'c':'x'}}");
    json_decref(before);
    json_decref(live);
}

/* Removing fields from the configuration removes them from the object,
 * unless another manager owns them. */
static void test_apply__removed_fields(void **state)
{
    (void)state;
    static const struct {
        const char *first, *second, *spec_after, *fields_after;
    } cases[] = {
        {"{'a':1,'b':2}", "{'a':1}", "{'a':1}", "{'f:spec':{'f:a':{}}}"},
        {"{'a':1,'m':{'x':1,'y':2}}", "{'a':1,'m':{'x':1}}", "{'a':1,'m':{'x':1}}",
         "{'f:spec':{'f:a':{},'f:m':{'f:x':{}}}}"},
        /* A map the removal empties goes with its last field. */
        {"{'a':1,'m':{'x':1}}", "{'a':1}", "{'a':1}", "{'f:spec':{'f:a':{}}}"},
        /* unless the configuration keeps it, empty. */
        {"{'a':1,'m':{'x':1}}", "{'a':1,'m':{}}", "{'a':1,'m':{}}",
         "{'f:spec':{'f:a':{},'f:m':{}}}"},
        {"{'l':[1,2]}", "{'l':[3]}", "{'l':[3]}", "{'f:spec':{'f:l':{}}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err = {0};
        json_t *live = NULL;
        assert_int_equal(apply(&live, "kubectl", cases[i].first, 0, T1, &err), 0);
        assert_int_equal(apply(&live, "kubectl", cases[i].second, 0, T2, &err), 0);
        assert_json(spec(live), cases[i].spec_after);
        assert_json(fields(live, "kubectl", "Apply"), cases[i].fields_after);
        json_decref(live);
    }

    /* Applying nothing but the identity drops the spec and the entry. */
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'a':1}", 0, T1, &err), 0);
    assert_int_equal(apply(&live, "kubectl", NULL, 0, T2, &err), 0);
    assert_null(spec(live));
    assert_null(mf(live));

    /* A field someone else set and nobody owns stays. */
    json_decref(live);
    live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'a':1}", 0, T1, &err), 0);
    json_object_set_new(json_object_get(live, "spec"), "other", json_integer(5));
    assert_int_equal(apply(&live, "kubectl", "{'b':1}", 0, T2, &err), 0);
    assert_json(spec(live), "{'other':5,'b':1}");
    json_decref(live);
}

static void test_apply__shared_ownership(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "a", "{'x':1,'y':1}", 0, T1, &err), 0);
    /* Same value: no conflict, both own x. */
    assert_int_equal(apply(&live, "b", "{'x':1}", 0, T2, &err), 0);
    assert_json(fields(live, "a", "Apply"), "{'f:spec':{'f:x':{},'f:y':{}}}");
    assert_json(fields(live, "b", "Apply"), "{'f:spec':{'f:x':{}}}");
    /* a lets go of x: b still owns it, so it stays. */
    assert_int_equal(apply(&live, "a", "{'y':1}", 0, T3, &err), 0);
    assert_json(spec(live), "{'x':1,'y':1}");
    /* b lets go too: x goes. */
    assert_int_equal(apply(&live, "b", NULL, 0, T3, &err), 0);
    assert_json(spec(live), "{'y':1}");
    assert_null(fields(live, "b", "Apply"));
    json_decref(live);
}

static void test_apply__conflict(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'x':1,'y':1,'z':1}", 0, T1, &err), 0);
    update(&live, "ctl", "{'x':2,'y':1,'z':1}", T2);
    json_t *before = json_deep_copy(live);

    assert_int_equal(apply(&live, "kubectl", "{'x':1,'y':1,'z':1}", 0, T3, &err), ERR_CONFLICT);
    assert_int_equal(err.code, ERR_CONFLICT);
    assert_string_equal(err.message, "Apply failed with 1 conflict: conflict with \"ctl\" using "
                                     AV ": .spec.x");
    assert_int_equal(err.ncauses, 1);
    assert_string_equal(err.causes[0].type, "FieldManagerConflict");
    assert_string_equal(err.causes[0].field, ".spec.x");
    assert_string_equal(err.causes[0].message, "conflict with \"ctl\" using " AV);
    assert_true(json_equal(live, before));

    /* Several conflicts, grouped by manager. */
    assert_int_equal(apply(&live, "other", "{'y':3,'z':3}", 1, T3, &err), 0);
    assert_int_equal(apply(&live, "kubectl", "{'x':1,'y':1,'z':1}", 0, T3, &err), ERR_CONFLICT);
    assert_string_equal(err.message,
                        "Apply failed with 3 conflicts: conflicts with \"ctl\" using " AV ":\n"
                        "- .spec.x\nconflicts with \"other\":\n- .spec.y\n- .spec.z");
    assert_int_equal(err.ncauses, 3);
    assert_string_equal(err.causes[0].field, ".spec.x");
    assert_string_equal(err.causes[1].field, ".spec.y");
    assert_string_equal(err.causes[1].message, "conflict with \"other\"");
    assert_string_equal(err.causes[2].field, ".spec.z");
    json_decref(before);
    json_decref(live);
}

static void test_apply__force(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'x':1,'y':1}", 0, T1, &err), 0);
    update(&live, "ctl", "{'x':2,'y':2}", T2);
    assert_json(fields(live, "ctl", "Update"), "{'f:spec':{'f:x':{},'f:y':{}}}");
    assert_null(fields(live, "kubectl", "Apply"));
    assert_int_equal(apply(&live, "kubectl", "{'x':1,'y':2}", 1, T3, &err), 0);
    assert_json(spec(live), "{'x':1,'y':2}");
    /* x moved to kubectl; y (same value) is shared. */
    assert_json(fields(live, "kubectl", "Apply"), "{'f:spec':{'f:x':{},'f:y':{}}}");
    assert_json(fields(live, "ctl", "Update"), "{'f:spec':{'f:y':{}}}");
    /* Apply entries come before Update entries. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(mf(live), 0),
                                                          "operation")), "Apply");
    json_decref(live);
}

static void test_apply__keyed_lists(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'subjects':[{'kind':'User','name':'alice'}]}", 0,
                           T1, &err), 0);
    update(&live, "ctl", "{'subjects':[{'kind':'User','name':'alice'},"
                         "{'kind':'User','name':'bob','ns':'x'}]}", T2);
    assert_json(fields(live, "ctl", "Update"),
                "{'f:spec':{'f:subjects':{'k:{\\'kind\\':\\'User\\',\\'name\\':\\'bob\\'}':"
                "{'.':{},'f:kind':{},'f:name':{},'f:ns':{}}}}}");
    /* carol comes in the configuration's place, bob (not named) stays. */
    assert_int_equal(apply(&live, "kubectl", "{'subjects':[{'kind':'User','name':'carol'},"
                                             "{'kind':'User','name':'alice','ro':true}]}", 0,
                           T3, &err), 0);
    assert_json(spec(live), "{'subjects':[{'kind':'User','name':'carol'},"
                            "{'kind':'User','name':'alice','ro':true},"
                            "{'kind':'User','name':'bob','ns':'x'}]}");
    /* alice leaves the configuration: the item goes, bob stays. */
    assert_int_equal(apply(&live, "kubectl", "{'subjects':[{'kind':'User','name':'carol'}]}", 0,
                           T3, &err), 0);
    assert_json(spec(live), "{'subjects':[{'kind':'User','name':'carol'},"
                            "{'kind':'User','name':'bob','ns':'x'}]}");
    assert_json(fields(live, "kubectl", "Apply"),
                "{'f:spec':{'f:subjects':{'k:{\\'kind\\':\\'User\\',\\'name\\':\\'carol\\'}':"
                "{'.':{},'f:kind':{},'f:name':{}}}}}");
    json_decref(live);

    /* status.conditions by type: a field of another manager's item
     * conflicts, a new field of the same item does not. */
    live = NULL;
    json_t *cfg = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f'},"
                     "'status':{'conditions':[{'type':'Ready','status':'True'}]}}");
    json_t *out = NULL;
    assert_int_equal(apply_patch(NULL, cfg, "ctl", 0, AV, T1, rules, &out, &err), 0);
    json_decref(cfg);
    assert_json(fields(out, "ctl", "Apply"),
                "{'f:status':{'f:conditions':{'k:{\\'type\\':\\'Ready\\'}':"
                "{'.':{},'f:status':{},'f:type':{}}}}}");
    cfg = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f'},"
             "'status':{'conditions':[{'type':'Ready','reason':'R'},{'type':'Synced'}]}}");
    json_t *out2 = NULL;
    assert_int_equal(apply_patch(out, cfg, "other", 0, AV, T2, rules, &out2, &err), 0);
    assert_json(json_object_get(out2, "status"),
                "{'conditions':[{'type':'Ready','status':'True','reason':'R'},{'type':'Synced'}]}");
    json_decref(cfg);
    cfg = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f'},"
             "'status':{'conditions':[{'type':'Ready','status':'False'}]}}");
    json_t *out3 = NULL;
    err_clear(&err);
    assert_int_equal(apply_patch(out2, cfg, "other", 0, AV, T3, rules, &out3, &err),
                     ERR_CONFLICT);
    assert_string_equal(err.causes[0].field, ".status.conditions[type=\"Ready\"].status");
    json_decref(cfg);
    json_decref(out2);
    json_decref(out);
}

static void test_apply__finalizers_as_set(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *cfg = js("{'apiVersion':'" AV "','kind':'Flunder',"
                     "'metadata':{'name':'f','finalizers':['a','b']}}");
    json_t *live = NULL;
    assert_int_equal(apply_patch(NULL, cfg, "kubectl", 0, AV, T1, rules, &live, &err), 0);
    json_decref(cfg);
    assert_json(fields(live, "kubectl", "Apply"),
                "{'f:metadata':{'f:finalizers':{'v:\\'a\\'':{},'v:\\'b\\'':{}}}}");
    /* A controller adds its finalizer. */
    json_t *obj = json_deep_copy(live);
    json_array_append_new(json_object_get(json_object_get(obj, "metadata"), "finalizers"),
                          json_string("c"));
    assert_int_equal(apply_track_update(live, obj, "ctl", AV, T2, rules, &err), 0);
    assert_json(fields(obj, "ctl", "Update"), "{'f:metadata':{'f:finalizers':{'v:\\'c\\'':{}}}}");
    json_decref(live);
    live = obj;
    /* kubectl drops b: c stays. */
    cfg = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f','finalizers':['a']}}");
    json_t *out = NULL;
    assert_int_equal(apply_patch(live, cfg, "kubectl", 0, AV, T3, rules, &out, &err), 0);
    assert_json(json_object_get(json_object_get(out, "metadata"), "finalizers"), "['a','c']");
    json_decref(cfg);
    json_decref(out);
    json_decref(live);
}

static void test_apply__track_update(void **state)
{
    (void)state;
    err_t err = {0};
    /* Create: the writer owns what it set; new maps are owned as nodes. */
    json_t *obj = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f',"
                     "'namespace':'ns','uid':'u','labels':{'app':'x'}},"
                     "'spec':{'replicas':1,'paused':false}}");
    assert_int_equal(apply_track_update(NULL, obj, "kubectl-create", AV, T1, rules, &err), 0);
    assert_json(mf(obj), "[{'manager':'kubectl-create','operation':'Update','apiVersion':'" AV "',"
                         "'time':'" T1 "','fieldsType':'FieldsV1','fieldsV1':{"
                         "'f:metadata':{'f:labels':{'.':{},'f:app':{}}},"
                         "'f:spec':{'.':{},'f:paused':{},'f:replicas':{}}}}]");

    /* Nothing changed: no entry moves. */
    json_t *same = json_deep_copy(obj);
    assert_int_equal(apply_track_update(obj, same, "ctl", AV, T2, rules, &err), 0);
    assert_true(json_equal(same, obj));
    json_decref(same);
    json_decref(obj);

    /* An Update takes exactly the changed fields, from an applier too. */
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'x':1,'y':1,'m':{'k':1}}", 0, T1, &err), 0);
    update(&live, "ctl", "{'x':5,'y':1,'m':{'k':1},'n':{'a':1}}", T2);
    assert_json(fields(live, "ctl", "Update"),
                "{'f:spec':{'f:x':{},'f:n':{'.':{},'f:a':{}}}}");
    assert_json(fields(live, "kubectl", "Apply"), "{'f:spec':{'f:y':{},'f:m':{'f:k':{}}}}");
    /* A removal takes the field from everyone and, changing nothing the
     * writer could own, moves no time (kube's "current-operation" set
     * stays empty). */
    update(&live, "ctl", "{'x':5,'y':1,'n':{'a':1}}", T3);
    assert_json(fields(live, "ctl", "Update"),
                "{'f:spec':{'f:x':{},'f:n':{'.':{},'f:a':{}}}}");
    assert_json(fields(live, "kubectl", "Apply"), "{'f:spec':{'f:y':{}}}");
    const json_t *e = json_array_get(mf(live), 1);
    assert_string_equal(json_string_value(json_object_get(e, "time")), T2);
    /* A later change by the same manager adds to its entry. */
    update(&live, "ctl", "{'x':5,'y':7,'n':{'a':1}}", T3);
    assert_json(fields(live, "ctl", "Update"),
                "{'f:spec':{'f:x':{},'f:y':{},'f:n':{'.':{},'f:a':{}}}}");
    assert_null(fields(live, "kubectl", "Apply"));
    e = json_array_get(mf(live), 0);
    assert_string_equal(json_string_value(json_object_get(e, "time")), T3);
    /* A map turned scalar: its fields are gone from their owner. */
    update(&live, "other", "{'x':5,'y':7,'n':'flat'}", T3);
    assert_json(fields(live, "ctl", "Update"), "{'f:spec':{'f:x':{},'f:y':{}}}");
    assert_json(fields(live, "other", "Update"), "{'f:spec':{'f:n':{}}}");
    json_decref(live);
}

/* A create (no old object) records exactly what an update from an empty
 * object does: keyed and set lists, repeated and unnamed items, empty maps
 * and lists, nested maps, a change of type cannot occur. */
static void test_apply__create_equals_update_from_empty(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "{}",
        "{'replicas':1,'paused':false,'empty':{},'none':[],'nul':null}",
        "{'subjects':[{'kind':'User','name':'a'},{'kind':'Group','name':'g','x':{'y':1}},"
        "{'kind':'User','name':'a'},{'name':'no-kind'}],'tags':['p','q'],"
        "'deep':{'a':{'b':{'c':[1,2,{'d':3}]}}}}",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        err_t err = {0};
        json_t *created = flunder(specs[i]);
        json_object_set_new(json_object_get(created, "metadata"), "labels",
                            js("{'app':'x','tier':'y'}"));
        json_object_set_new(json_object_get(created, "metadata"), "finalizers", js("['a/b']"));
        json_object_set_new(created, "status", js("{'conditions':[{'type':'Ready'}]}"));
        json_t *updated = json_deep_copy(created);
        json_t *empty = json_object();
        assert_int_equal(apply_track_update(NULL, created, "m", AV, T1, rules, &err), 0);
        assert_int_equal(apply_track_update(empty, updated, "m", AV, T1, rules, &err), 0);
        if (!json_equal(mf(created), mf(updated))) {
            char *a = json_dumps(mf(created), JSON_COMPACT);
            char *b = json_dumps(mf(updated), JSON_COMPACT);
            print_error("spec %zu\ncreate: %s\nupdate: %s\n", i, a, b);
            free(a);
            free(b);
            fail();
        }
        json_decref(empty);
        json_decref(created);
        json_decref(updated);
    }
}

static void test_apply__managed_fields_reset(void **state)
{
    (void)state;
    static const struct {
        const char *mf;          /* what the client sends; NULL: absent */
        int kept;                /* the old entries survive */
    } cases[] = {
        {NULL, 1},
        {"[]", 0},
        {"[{}]", 0},
        {"'unchanged'", 1},      /* the client echoes what it read */
        {"[{'manager':'x','operation':'Bogus'}]", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err = {0};
        json_t *live = NULL;
        assert_int_equal(apply(&live, "kubectl", "{'x':1}", 0, T1, &err), 0);
        json_t *obj = json_deep_copy(live);
        json_t *meta = json_object_get(obj, "metadata");
        if (!cases[i].mf)
            json_object_del(meta, "managedFields");
        else if (strcmp(cases[i].mf, "'unchanged'"))
            json_object_set_new(meta, "managedFields", js(cases[i].mf));
        assert_int_equal(apply_track_update(live, obj, "ctl", AV, T2, rules, &err), 0);
        if (cases[i].kept)
            assert_true(json_equal(mf(obj), mf(live)));
        else
            assert_null(mf(obj));
        json_decref(obj);
        json_decref(live);
    }

    /* A reset together with a change: the writer owns just that change. */
    err_t err = {0};
    json_t *live = NULL;
    assert_int_equal(apply(&live, "kubectl", "{'x':1}", 0, T1, &err), 0);
    json_t *obj = json_deep_copy(live);
    json_object_set_new(json_object_get(obj, "metadata"), "managedFields", js("[]"));
    json_object_set_new(json_object_get(obj, "spec"), "y", json_integer(2));
    assert_int_equal(apply_track_update(live, obj, "ctl", AV, T2, rules, &err), 0);
    assert_int_equal(json_array_size(mf(obj)), 1);
    assert_json(fields(obj, "ctl", "Update"), "{'f:spec':{'f:y':{}}}");
    json_decref(obj);
    json_decref(live);
}

/* Past ten Update entries the oldest merge into "ancient-changes". */
static void test_apply__cap_update_managers(void **state)
{
    (void)state;
    json_t *live = flunder("{}");
    err_t err = {0};
    for (int i = 0; i < 11; i++) {
        char name[16], when[32];
        snprintf(name, sizeof name, "m%02d", i);
        snprintf(when, sizeof when, "2024-01-01T00:00:%02dZ", i);
        json_t *obj = json_deep_copy(live);
        json_object_set_new(json_object_get(obj, "spec"), name, json_integer(i));
        assert_int_equal(apply_track_update(live, obj, name, AV, when, rules, &err), 0);
        json_decref(live);
        live = obj;
    }
    assert_int_equal(json_array_size(mf(live)), 10);
    const json_t *first = json_array_get(mf(live), 0);
    assert_string_equal(json_string_value(json_object_get(first, "manager")), "ancient-changes");
    assert_string_equal(json_string_value(json_object_get(first, "time")),
                        "2024-01-01T00:00:01Z");
    assert_json(json_object_get(first, "fieldsV1"), "{'f:spec':{'f:m00':{},'f:m01':{}}}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(mf(live), 9), "manager")),
                        "m10");
    json_decref(live);
}

static void test_apply__fields_of(void **state)
{
    (void)state;
    static const struct {
        const char *obj, *want;  /* want is compared as text: kube's key order */
    } cases[] = {
        {"{'apiVersion':'v1','kind':'K','metadata':{'name':'n','namespace':'ns','uid':'u',"
         "'resourceVersion':'1','generation':1,'creationTimestamp':'t','managedFields':[],"
         "'labels':{'b':'1','a':'2'},'finalizers':['y','x'],"
         "'ownerReferences':[{'uid':'u1','kind':'K','name':'n'}]},"
         "'spec':{'z':1,'a':{'b':[1,2],'c':{},'d':null},"
         "'subjects':[{'name':'a','kind':'User'},{'kind':'Group','name':'g'}]},"
         "'status':{'conditions':[{'type':'Ready','status':'True'}]}}",
         "{'f:metadata':{'f:finalizers':{'v:\\'x\\'':{},'v:\\'y\\'':{}},"
         "'f:labels':{'f:a':{},'f:b':{}},'f:ownerReferences':{'k:{\\'uid\\':\\'u1\\'}':"
         "{'.':{},'f:kind':{},'f:name':{},'f:uid':{}}}},"
         "'f:spec':{'f:a':{'f:b':{},'f:c':{},'f:d':{}},'f:subjects':{"
         "'k:{\\'kind\\':\\'Group\\',\\'name\\':\\'g\\'}':{'.':{},'f:kind':{},'f:name':{}},"
         "'k:{\\'kind\\':\\'User\\',\\'name\\':\\'a\\'}':{'.':{},'f:kind':{},'f:name':{}}},"
         "'f:z':{}},"
         "'f:status':{'f:conditions':{'k:{\\'type\\':\\'Ready\\'}':"
         "{'.':{},'f:status':{},'f:type':{}}}}}"},
        /* Only identity: nothing is owned. */
        {"{'apiVersion':'v1','kind':'K','metadata':{'name':'n'}}", "{}"},
        /* Keys are JSON with Go's escapes; items lacking a key are skipped. */
        {"{'spec':{'subjects':[{'kind':'<a&b>','name':1.5},{'kind':'x'}],"
         "'finalizers':[]}}",
         "{'f:spec':{'f:finalizers':{},'f:subjects':{"
         "'k:{\\'kind\\':\\'\\\\u003ca\\\\u0026b\\\\u003e\\',\\'name\\':1.5}':"
         "{'.':{},'f:kind':{},'f:name':{}}}}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *obj = js(cases[i].obj), *want = js(cases[i].want);
        json_t *got = apply_fields_of(obj, rules);
        assert_non_null(got);
        char *g = json_dumps(got, JSON_COMPACT), *w = json_dumps(want, JSON_COMPACT);
        if (strcmp(g, w))
            fail_msg("case %zu\ngot:  %s\nwant: %s", i, g, w);
        free(g);
        free(w);
        json_decref(got);
        json_decref(want);
        json_decref(obj);
    }
}

static void test_apply__bad_requests(void **state)
{
    (void)state;
    static const struct {
        const char *cfg;
        const char *manager;
        int code;
        const char *message;
    } cases[] = {
        {"[1]", "m", ERR_BAD_REQUEST, NULL},
        {"{'apiVersion':'wardle.example.com/v1','kind':'Flunder','metadata':{'name':'f'}}", "m",
         ERR_BAD_REQUEST, "invalid object type: wardle.example.com/v1, Kind=Flunder"},
        {"{'apiVersion':'" AV "','kind':'Fish','metadata':{'name':'f'}}", "m", ERR_BAD_REQUEST,
         "invalid object type: wardle.example.com/v1alpha1, Kind=Fish"},
        {"{'kind':'Flunder','metadata':{'name':'f'}}", "m", ERR_BAD_REQUEST,
         "invalid object type: /, Kind=Flunder"},
        {"{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f','managedFields':[]}}",
         "m", ERR_BAD_REQUEST, "metadata.managedFields must be nil"},
        {"{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f'}}", "", ERR_INVALID,
         NULL},
        {"{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f','namespace':'ns'},"
         "'spec':{'subjects':[{'kind':'User'}]}}", "m", ERR_INTERNAL,
         "failed to create typed patch object (ns/f; wardle.example.com/v1alpha1, "
         "Kind=Flunder): .spec.subjects: element 0: associative list with keys has an element "
         "that omits key field \"name\" (and doesn't have default value)"},
        {"{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f'},"
         "'spec':{'subjects':[{'kind':'User','name':'a'},{'name':'a','kind':'User'}]}}", "m",
         ERR_INTERNAL, "failed to create typed patch object (/f; wardle.example.com/v1alpha1, "
         "Kind=Flunder): .spec.subjects: duplicate entries for key [kind=\"User\",name=\"a\"]"},
        {"{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f',"
         "'finalizers':[{'a':1}]}}", "m", ERR_INTERNAL, NULL},
    };
    json_t *live = flunder("{}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err = {0};
        json_t *cfg = js(cases[i].cfg), *out = NULL;
        int rc = apply_patch(live, cfg, cases[i].manager, 0, AV, T1, rules, &out, &err);
        if (rc != cases[i].code)
            fail_msg("case %zu: rc %d (%s)", i, rc, err.message);
        assert_int_equal(err.code, cases[i].code);
        assert_null(out);
        if (cases[i].message)
            assert_string_equal(err.message, cases[i].message);
        json_decref(cfg);
    }
    json_decref(live);

    /* Nesting deeper than PATCH_MAX_DEPTH. */
    json_t *deep = json_integer(1);
    for (int i = 0; i < PATCH_MAX_DEPTH + 1; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "a", deep);
        deep = o;
    }
    json_t *cfg = flunder(NULL), *out = NULL;
    json_object_set_new(cfg, "spec", deep);
    err_t err = {0};
    assert_int_equal(apply_patch(NULL, cfg, "m", 0, AV, T1, rules, &out, &err), ERR_BAD_REQUEST);
    assert_null(apply_fields_of(cfg, rules));
    json_decref(cfg);
}

/* Inputs of the allocation failure scenario, built before failures are
 * injected. */
typedef struct fixture {
    json_t *create, *spec2, *conflicting;
} fixture_t;

/* One run of everything, for the allocation failure loop: 0 with *result
 * (the applied object and its fields), or the first unexpected code. A
 * failure of the test's own copying counts as ERR_NOMEM. */
static int scenario(const fixture_t *fx, json_t **result)
{
    err_t err = {0};
    json_t *live = NULL, *out = NULL, *obj = NULL, *set = NULL;
    *result = NULL;
    int rc = apply_patch(NULL, fx->create, "kubectl", 0, AV, T1, rules, &live, &err);
    if (rc)
        goto out;
    obj = json_deep_copy(live);
    if (!obj || json_object_set(obj, "spec", fx->spec2)) {
        rc = ERR_NOMEM;
        goto mine;
    }
    rc = apply_track_update(live, obj, "ctl", AV, T2, rules, &err);
    if (rc)
        goto out;
    /* A conflict, refused, then forced. */
    rc = apply_patch(obj, fx->conflicting, "kubectl", 0, AV, T3, rules, &out, &err);
    if (rc != ERR_CONFLICT)
        goto out;
    err_clear(&err);
    rc = apply_patch(obj, fx->conflicting, "kubectl", 1, AV, T3, rules, &out, &err);
    if (rc)
        goto out;
    set = apply_fields_of(out, rules);
    if (!set || !(*result = json_pack("[O,O]", out, set)))
        rc = ERR_NOMEM;
    goto mine;
out:
    if (rc && rc != ERR_NOMEM && rc != ERR_CONFLICT)
        print_error("%s\n", err.message);
    if (rc)
        assert_int_equal(err.code, rc);
mine:
    json_decref(set);
    json_decref(out);
    json_decref(obj);
    json_decref(live);
    return rc;
}

static void test_apply__allocation_failures(void **state)
{
    (void)state;
    fixture_t fx = {
        js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f',"
           "'finalizers':['a'],'labels':{'x':'1'}},'spec':{'a':1,'m':{'k':[1]},"
           "'subjects':[{'kind':'User','name':'alice'}]}}"),
        js("{'a':2,'b':2,'m':{'k':[1]},'subjects':[{'kind':'User','name':'alice'}]}"),
        js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f'},"
           "'spec':{'a':3,'subjects':[{'kind':'User','name':'bob'}]}}"),
    };
    long n;
    json_t *want = NULL, *got = NULL;
    assert_int_equal(scenario(&fx, &want), 0);
    for (n = 0; n < 100000; n++) {
        mem_fail_after(n);
        int rc = scenario(&fx, &got);
        mem_fail_after(-1);
        if (!rc) {
            /* Success under pressure is the same success. */
            assert_true(json_equal(got, want));
            json_decref(got);
            break;
        }
        if (rc != ERR_NOMEM)
            fail_msg("after %ld allocations: rc %d", n, rc);
    }
    json_decref(want);
    assert_true(n > 10);
    assert_true(n < 100000);
    json_decref(fx.create);
    json_decref(fx.spec2);
    json_decref(fx.conflicting);
}

/* Conflicts all with the yielding manager are none; one more, with anyone
 * else, is a conflict, whatever the number of the others. */
static void test_apply__yielding(void **state)
{
    (void)state;
    err_t err = {0};
    json_t *live = flunder("{'a':1}"), *out = NULL;
    update(&live, "csa", "{'a':1,'b':1}", T1);
    /* csa owns a and b */
    json_t *cfg = flunder("{'a':2,'b':2}");
    assert_int_equal(apply_patch_yielding(live, cfg, "kubectl", "", 0, NULL, AV, T2, rules,
                                          &out, &err), ERR_CONFLICT);
    err_clear(&err);
    assert_int_equal(apply_patch_yielding(live, cfg, "kubectl", "", 0, "csa", AV, T2, rules,
                                          &out, &err), 0);
    assert_json(spec(out), "{'a':2,'b':2}");
    assert_null(fields(out, "csa", "Update"));
    json_decref(out);
    out = NULL;
    json_decref(cfg);
    update(&live, "other", "{'a':1,'b':1,'c':1}", T2);
    cfg = flunder("{'a':2,'b':2,'c':2}");
    err_clear(&err);
    assert_int_equal(apply_patch_yielding(live, cfg, "kubectl", "", 0, "csa", AV, T3, rules,
                                          &out, &err), ERR_CONFLICT);
    assert_null(out);
    assert_non_null(strstr(err.message, "\"other\""));
    json_decref(cfg);
    json_decref(live);
}

/* Apply reads metadata's lists by the rules strategic merge uses
 * (patch_metadata_rules, the one table): finalizers as a set, owner
 * references by uid, whatever the kind's own rules say. */
static void test_apply__metadata_rules_shared(void **state)
{
    (void)state;
    assert_non_null(patch_find_rule(NULL, "metadata.finalizers"));
    assert_null(patch_find_rule(NULL, "metadata.finalizers")->keys);
    assert_string_equal(patch_find_rule(rules, "metadata.ownerReferences")->keys, "uid");
    json_t *obj = js("{'apiVersion':'" AV "','kind':'Flunder','metadata':{'name':'f',"
                     "'finalizers':['a','b'],'ownerReferences':[{'apiVersion':'v1','kind':'K',"
                     "'name':'o','uid':'u1'}]}}");
    json_t *set = apply_fields_of(obj, NULL);
    assert_json(set, "{'f:metadata':{'f:finalizers':{'v:\\'a\\'':{},'v:\\'b\\'':{}},"
                     "'f:ownerReferences':{'k:{\\'uid\\':\\'u1\\'}':{'.':{},'f:apiVersion':{},"
                     "'f:kind':{},'f:name':{},'f:uid':{}}}}}");
    json_decref(set);
    json_decref(obj);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply__create),
        cmocka_unit_test(test_apply__reapply_is_noop),
        cmocka_unit_test(test_apply__removed_fields),
        cmocka_unit_test(test_apply__shared_ownership),
        cmocka_unit_test(test_apply__conflict),
        cmocka_unit_test(test_apply__force),
        cmocka_unit_test(test_apply__keyed_lists),
        cmocka_unit_test(test_apply__finalizers_as_set),
        cmocka_unit_test(test_apply__track_update),
        cmocka_unit_test(test_apply__create_equals_update_from_empty),
        cmocka_unit_test(test_apply__managed_fields_reset),
        cmocka_unit_test(test_apply__cap_update_managers),
        cmocka_unit_test(test_apply__fields_of),
        cmocka_unit_test(test_apply__bad_requests),
        cmocka_unit_test(test_apply__allocation_failures),
        cmocka_unit_test(test_apply__yielding),
        cmocka_unit_test(test_apply__metadata_rules_shared),
    };
    return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
