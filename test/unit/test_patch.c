/* Unit tests of apimachinery/patch: JSON patch, merge patch, strategic merge
 * patch. Most cases are rows of {doc, patch, expected document or error};
 * JSON in the rows uses ' for " to stay readable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../apimachinery/patch.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

typedef struct pcase {
    const char *name;
    const char *doc;
    const char *patch;
    const char *want;   /* the patched document when rc is 0 */
    int rc;
    const char *msg;    /* a substring of err.message, or NULL */
} pcase_t;

typedef int (*patch_fn_t)(const json_t *doc, const json_t *patch,
                          json_t **out, err_t *err);

/* The list rules of the project's kinds that the cases exercise. */
static const patch_list_rule_t test_rules[] = {
    {"status.conditions", "type"},
    {"spec.subjects", "kind,name"},
    {"spec.namespaces", "cluster,name"},
    {"spec.topologies", "nodeGroup"},
    {NULL, NULL},
};

static int strategic(const json_t *doc, const json_t *patch, json_t **out,
                     err_t *err)
{
    return patch_strategic(doc, patch, test_rules, out, err);
}

/* Parses text, reading ' as ". */
static json_t *load(const char *text)
{
    char *s = strdup(text);
    json_error_t jerr;
    json_t *j;

    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = json_loads(s, JSON_DECODE_ANY, &jerr);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    free(s);
    return j;
}

/* Whether no value in j is referenced from anywhere else, i.e. a result
 * shares nothing with the inputs and the inputs share nothing with it. */
static int unshared(const json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;

    if (json_is_null(j) || json_is_boolean(j))
        return 1;   /* jansson's shared singletons, never copied */
    if (j->refcount != 1)
        return 0;
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, key, v) {
            if (!unshared(v))
                return 0;
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            if (!unshared(v))
                return 0;
        }
    }
    return 1;
}

static void run_cases(const char *suite, patch_fn_t fn, const pcase_t *cases,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const pcase_t *c = &cases[i];
        json_t *doc = load(c->doc), *patch = load(c->patch);
        json_t *doc0 = json_deep_copy(doc), *patch0 = json_deep_copy(patch);
        json_t *out = NULL;
        err_t err = {0};
        int rc = fn(doc, patch, &out, &err);

        if (rc != c->rc)
            fail_msg("%s/%s: rc %s (%s), want %s", suite, c->name,
                     err_name(rc), err.message, err_name(c->rc));
        if (!json_equal(doc, doc0) || !json_equal(patch, patch0)
            || !unshared(doc) || !unshared(patch))
            fail_msg("%s/%s: an input changed or is shared", suite, c->name);
        if (rc) {
            if (out || err.code != rc)
                fail_msg("%s/%s: out set or err.code %d on failure", suite,
                         c->name, err.code);
            if (c->msg && !strstr(err.message, c->msg))
                fail_msg("%s/%s: message \"%s\" lacks \"%s\"", suite, c->name,
                         err.message, c->msg);
        } else {
            json_t *want = load(c->want);
            if (!json_equal(out, want)) {
                char *got = json_dumps(out, JSON_ENCODE_ANY);
                fail_msg("%s/%s: got %s, want %s", suite, c->name, got, c->want);
            }
            if (!unshared(out))
                fail_msg("%s/%s: result shares values", suite, c->name);
            json_decref(want);
        }
        json_decref(out);
        json_decref(doc);
        json_decref(patch);
        json_decref(doc0);
        json_decref(patch0);
    }
}

#define RUN(suite, fn, cases) \
    run_cases(suite, fn, cases, sizeof cases / sizeof cases[0])

/* ---- JSON patch ---- */

static void test_patch__json_ops(void **state)
{
    (void)state;
    static const pcase_t cases[] = {
        {"add member", "{'spec':{'a':1}}",
         "[{'op':'add','path':'/spec/b','value':{'c':[1]}}]",
         "{'spec':{'a':1,'b':{'c':[1]}}}", 0, NULL},
        {"add overwrites member", "{'a':1}",
         "[{'op':'add','path':'/a','value':2}]", "{'a':2}", 0, NULL},
        {"add null value", "{}",
         "[{'op':'add','path':'/a','value':null}]", "{'a':null}", 0, NULL},
        {"add inserts at index", "{'l':[1,3]}",
         "[{'op':'add','path':'/l/1','value':2}]", "{'l':[1,2,3]}", 0, NULL},
        {"add at size appends", "{'l':[1]}",
         "[{'op':'add','path':'/l/1','value':2}]", "{'l':[1,2]}", 0, NULL},
        {"add dash appends", "{'l':[1]}",
         "[{'op':'add','path':'/l/-','value':2}]", "{'l':[1,2]}", 0, NULL},
        {"add root", "{'a':1}", "[{'op':'add','path':'','value':[1]}]",
         "[1]", 0, NULL},
        {"add empty key", "{}", "[{'op':'add','path':'/','value':1}]",
         "{'':1}", 0, NULL},
        {"escapes", "{'a/b':1,'m~n':2}",
         "[{'op':'replace','path':'/a~1b','value':3},"
         "{'op':'remove','path':'/m~0n'}]", "{'a/b':3}", 0, NULL},
        {"add missing parent", "{'spec':{}}",
         "[{'op':'add','path':'/spec/x/y','value':1}]", NULL, ERR_INVALID,
         "add operation does not apply: doc is missing path: \"/spec/x/y\": "
         "missing value"},
        {"add index past end", "{'l':[1]}",
         "[{'op':'add','path':'/l/2','value':2}]", NULL, ERR_INVALID,
         "invalid index referenced"},
        {"add leading zero index", "{'l':[1,2]}",
         "[{'op':'add','path':'/l/01','value':2}]", NULL, ERR_INVALID, NULL},
        {"add into scalar", "{'a':1}",
         "[{'op':'add','path':'/a/b','value':2}]", NULL, ERR_INVALID, NULL},
        {"remove member", "{'a':1,'b':2}", "[{'op':'remove','path':'/a'}]",
         "{'b':2}", 0, NULL},
        {"remove element", "{'l':[1,2,3]}", "[{'op':'remove','path':'/l/1'}]",
         "{'l':[1,3]}", 0, NULL},
        {"remove missing", "{'spec':{}}", "[{'op':'remove','path':'/spec/x'}]",
         NULL, ERR_INVALID,
         "remove operation does not apply: doc is missing path: \"/spec/x\""},
        {"remove dash", "{'l':[1]}", "[{'op':'remove','path':'/l/-'}]", NULL,
         ERR_INVALID, "invalid index"},
        {"remove root", "{'a':1}", "[{'op':'remove','path':''}]", NULL,
         ERR_INVALID, "root"},
        {"replace member", "{'a':{'b':1}}",
         "[{'op':'replace','path':'/a','value':'x'}]", "{'a':'x'}", 0, NULL},
        {"replace element", "{'l':[1,2]}",
         "[{'op':'replace','path':'/l/0','value':9}]", "{'l':[9,2]}", 0, NULL},
        {"replace root", "{'a':1}",
         "[{'op':'replace','path':'','value':{'b':2}}]", "{'b':2}", 0, NULL},
        {"replace missing", "{}", "[{'op':'replace','path':'/a','value':1}]",
         NULL, ERR_INVALID, "doc is missing path: \"/a\""},
        {"replace out of range", "{'l':[1]}",
         "[{'op':'replace','path':'/l/1','value':1}]", NULL, ERR_INVALID,
         NULL},
        {"move member", "{'a':{'x':1},'b':{}}",
         "[{'op':'move','from':'/a/x','path':'/b/y'}]",
         "{'a':{},'b':{'y':1}}", 0, NULL},
        {"move within array", "{'l':[1,2,3]}",
         "[{'op':'move','from':'/l/0','path':'/l/2'}]", "{'l':[2,3,1]}", 0,
         NULL},
        {"move to dash", "{'l':[1,2,3]}",
         "[{'op':'move','from':'/l/0','path':'/l/-'}]", "{'l':[2,3,1]}", 0,
         NULL},
        {"move onto itself", "{'a':1}",
         "[{'op':'move','from':'/a','path':'/a'}]", "{'a':1}", 0, NULL},
        {"move to root", "{'a':{'b':1}}",
         "[{'op':'move','from':'/a','path':''}]", "{'b':1}", 0, NULL},
        {"move missing from", "{}", "[{'op':'move','from':'/a','path':'/b'}]",
         NULL, ERR_INVALID,
         "move operation does not apply: doc is missing from path: \"/a\""},
        {"move into own child", "{'a':{}}",
         "[{'op':'move','from':'/a','path':'/a/b'}]", NULL, ERR_BAD_REQUEST,
         "prefix"},
        {"move to sibling with common prefix", "{'a':1}",
         "[{'op':'move','from':'/a','path':'/ab'}]", "{'ab':1}", 0, NULL},
        {"copy member", "{'a':{'x':[1]}}",
         "[{'op':'copy','from':'/a','path':'/b'}]",
         "{'a':{'x':[1]},'b':{'x':[1]}}", 0, NULL},
        {"copy into array", "{'l':[1,2]}",
         "[{'op':'copy','from':'/l/1','path':'/l/0'}]", "{'l':[2,1,2]}", 0,
         NULL},
        {"copy missing from", "{}", "[{'op':'copy','from':'/a','path':'/b'}]",
         NULL, ERR_INVALID, "copy operation does not apply"},
        {"test passes", "{'spec':{'a':{'x':[1,'s',true,null]}}}",
         "[{'op':'test','path':'/spec/a','value':{'x':[1,'s',true,null]}}]",
         "{'spec':{'a':{'x':[1,'s',true,null]}}}", 0, NULL},
        {"test numbers by value", "{'a':1}",
         "[{'op':'test','path':'/a','value':1.0}]", "{'a':1}", 0, NULL},
        {"test fails", "{'spec':{'a':1}}",
         "[{'op':'test','path':'/spec/a','value':2}]", NULL, ERR_INVALID,
         "testing value /spec/a failed: test failed"},
        {"test missing path", "{}", "[{'op':'test','path':'/a','value':null}]",
         NULL, ERR_INVALID, "testing value /a failed"},
        {"test root", "[1]", "[{'op':'test','path':'','value':[1]}]", "[1]", 0,
         NULL},
        {"ops apply in order", "{'a':1}",
         "[{'op':'copy','from':'/a','path':'/b'},"
         "{'op':'replace','path':'/a','value':2},"
         "{'op':'test','path':'/b','value':1}]", "{'a':2,'b':1}", 0, NULL},
        {"later failure discards earlier ops", "{'a':1}",
         "[{'op':'remove','path':'/a'},{'op':'remove','path':'/a'}]", NULL,
         ERR_INVALID, NULL},
        {"empty patch", "{'a':1}", "[]", "{'a':1}", 0, NULL},
    };
    RUN("json", patch_json, cases);
}

static void test_patch__json_bad_request(void **state)
{
    (void)state;
    static const pcase_t cases[] = {
        {"not an array", "{}", "{'op':'add'}", NULL, ERR_BAD_REQUEST,
         "array"},
        {"op not an object", "{}", "[1]", NULL, ERR_BAD_REQUEST,
         "not an object"},
        {"no op", "{}", "[{'path':'/a'}]", NULL, ERR_BAD_REQUEST, "\"op\""},
        {"unknown op", "{}", "[{'op':'frob','path':'/a'}]", NULL,
         ERR_INVALID, "Unexpected kind: frob"},
        {"missing path", "{}", "[{'op':'add','value':1}]", NULL,
         ERR_BAD_REQUEST, "\"path\""},
        {"path not a string", "{}", "[{'op':'remove','path':1}]", NULL,
         ERR_BAD_REQUEST, "\"path\""},
        {"add missing value", "{}", "[{'op':'add','path':'/a'}]", NULL,
         ERR_BAD_REQUEST, "\"value\""},
        {"replace missing value", "{'a':1}", "[{'op':'replace','path':'/a'}]",
         NULL, ERR_BAD_REQUEST, "\"value\""},
        {"test missing value", "{'a':1}", "[{'op':'test','path':'/a'}]", NULL,
         ERR_BAD_REQUEST, "\"value\""},
        {"move missing from", "{'a':1}", "[{'op':'move','path':'/b'}]", NULL,
         ERR_BAD_REQUEST, "\"from\""},
        {"copy from not a string", "{'a':1}",
         "[{'op':'copy','path':'/b','from':null}]", NULL, ERR_BAD_REQUEST,
         "\"from\""},
        {"pointer without slash", "{'a':1}", "[{'op':'remove','path':'a'}]",
         NULL, ERR_BAD_REQUEST, "invalid JSON pointer"},
        {"bad escape", "{'a':1}", "[{'op':'remove','path':'/a~2'}]", NULL,
         ERR_BAD_REQUEST, "invalid JSON pointer"},
        {"trailing tilde", "{'a':1}", "[{'op':'remove','path':'/a~'}]", NULL,
         ERR_BAD_REQUEST, "invalid JSON pointer"},
        {"bad from pointer", "{'a':1}",
         "[{'op':'copy','path':'/b','from':'a'}]", NULL, ERR_BAD_REQUEST,
         "invalid JSON pointer"},
        /* Checked before anything applies: the malformed second op wins over
         * the first op's missing path. */
        {"malformed beats inapplicable", "{}",
         "[{'op':'remove','path':'/nope'},{'op':'add','value':1}]", NULL,
         ERR_BAD_REQUEST, NULL},
    };
    RUN("json", patch_json, cases);
}

/* ---- merge patch ---- */

static void test_patch__merge(void **state)
{
    (void)state;
    /* RFC 7386 appendix A, then a few more. */
    static const pcase_t cases[] = {
        {"A1", "{'a':'b'}", "{'a':'c'}", "{'a':'c'}", 0, NULL},
        {"A2", "{'a':'b'}", "{'b':'c'}", "{'a':'b','b':'c'}", 0, NULL},
        {"A3", "{'a':'b'}", "{'a':null}", "{}", 0, NULL},
        {"A4", "{'a':'b','b':'c'}", "{'a':null}", "{'b':'c'}", 0, NULL},
        {"A5", "{'a':['b']}", "{'a':'c'}", "{'a':'c'}", 0, NULL},
        {"A6", "{'a':'c'}", "{'a':['b']}", "{'a':['b']}", 0, NULL},
        {"A7", "{'a':{'b':'c'}}", "{'a':{'b':'d','c':null}}",
         "{'a':{'b':'d'}}", 0, NULL},
        {"A8", "{'a':[{'b':'c'}]}", "{'a':[1]}", "{'a':[1]}", 0, NULL},
        {"A9", "['a','b']", "['c','d']", "['c','d']", 0, NULL},
        {"A10", "{'a':'b'}", "['c']", "['c']", 0, NULL},
        {"A11", "{'a':'foo'}", "null", "null", 0, NULL},
        {"A12", "{'a':'foo'}", "'bar'", "'bar'", 0, NULL},
        {"A13", "{'e':null}", "{'a':1}", "{'e':null,'a':1}", 0, NULL},
        {"A14", "[1,2]", "{'a':'b','c':null}", "{'a':'b'}", 0, NULL},
        {"A15", "{}", "{'a':{'bb':{'ccc':null}}}", "{'a':{'bb':{}}}", 0, NULL},
        {"deep merge keeps siblings",
         "{'metadata':{'labels':{'a':'1','b':'2'},'name':'x'}}",
         "{'metadata':{'labels':{'a':null,'c':'3'}}}",
         "{'metadata':{'labels':{'b':'2','c':'3'},'name':'x'}}", 0, NULL},
        {"lists replace wholesale", "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'conditions':[{'type':'B'}]}}",
         "{'status':{'conditions':[{'type':'B'}]}}", 0, NULL},
        {"delete missing key", "{'a':1}", "{'b':null}", "{'a':1}", 0, NULL},
    };
    RUN("merge", patch_merge, cases);
}

/* ---- strategic merge patch ---- */

static void test_patch__strategic_maps(void **state)
{
    (void)state;
    static const pcase_t cases[] = {
        {"maps merge", "{'spec':{'a':1,'b':{'c':1,'d':2}}}",
         "{'spec':{'b':{'c':5,'e':6}}}",
         "{'spec':{'a':1,'b':{'c':5,'d':2,'e':6}}}", 0, NULL},
        {"null deletes", "{'spec':{'a':1,'b':2}}", "{'spec':{'a':null}}",
         "{'spec':{'b':2}}", 0, NULL},
        {"null for missing key", "{'a':1}", "{'b':null}", "{'a':1}", 0, NULL},
        {"scalar replaces map", "{'spec':{'a':{'b':1}}}", "{'spec':{'a':3}}",
         "{'spec':{'a':3}}", 0, NULL},
        {"map replaces scalar", "{'spec':{'a':3}}", "{'spec':{'a':{'b':1}}}",
         "{'spec':{'a':{'b':1}}}", 0, NULL},
        {"new map drops nulls and directives", "{}",
         "{'spec':{'n':{'$patch':'replace','a':1,'b':null}}}",
         "{'spec':{'n':{'a':1}}}", 0, NULL},
        {"list without rule is replaced", "{'spec':{'ports':[1,2,3]}}",
         "{'spec':{'ports':[4]}}", "{'spec':{'ports':[4]}}", 0, NULL},
        {"list without rule keeps map items",
         "{'spec':{'items':[{'a':1}]}}",
         "{'spec':{'items':[{'b':2},{'a':1}]}}",
         "{'spec':{'items':[{'b':2},{'a':1}]}}", 0, NULL},
        {"conditions under spec have no rule",
         "{'spec':{'conditions':[{'type':'A','x':1}]}}",
         "{'spec':{'conditions':[{'type':'A','y':2}]}}",
         "{'spec':{'conditions':[{'type':'A','y':2}]}}", 0, NULL},
        {"$ref is a plain field", "{'s':{'$ref':'a'}}", "{'s':{'$ref':'b'}}",
         "{'s':{'$ref':'b'}}", 0, NULL},
        {"$patch replace", "{'spec':{'a':1,'b':{'c':1}}}",
         "{'spec':{'$patch':'replace','x':{'y':1}}}",
         "{'spec':{'x':{'y':1}}}", 0, NULL},
        {"$patch replace at root", "{'a':1,'b':2}",
         "{'$patch':'replace','c':3}", "{'c':3}", 0, NULL},
        {"$patch delete", "{'spec':{'a':1},'status':{}}",
         "{'spec':{'$patch':'delete'}}", "{'spec':{},'status':{}}", 0, NULL},
        {"$patch unknown", "{'spec':{}}", "{'spec':{'$patch':'frob'}}", NULL,
         ERR_BAD_REQUEST, "unknown patch type: frob"},
        {"$patch merge in map", "{'spec':{}}", "{'spec':{'$patch':'merge'}}",
         NULL, ERR_BAD_REQUEST, "unknown patch type"},
        {"$patch not a string", "{'spec':{}}", "{'spec':{'$patch':1}}", NULL,
         ERR_BAD_REQUEST, "$patch"},
        {"$retainKeys", "{'spec':{'a':1,'b':2,'c':3}}",
         "{'spec':{'$retainKeys':['a','b'],'b':5}}",
         "{'spec':{'a':1,'b':5}}", 0, NULL},
        {"$retainKeys with null field", "{'spec':{'a':1,'b':2,'c':3}}",
         "{'spec':{'$retainKeys':['a','b'],'b':null,'d':null}}",
         "{'spec':{'a':1}}", 0, NULL},
        {"$retainKeys empty", "{'spec':{'a':1}}",
         "{'spec':{'$retainKeys':[]}}", "{'spec':{}}", 0, NULL},
        {"$retainKeys misses a field", "{'spec':{'a':1}}",
         "{'spec':{'$retainKeys':['a'],'b':1}}", NULL, ERR_BAD_REQUEST,
         "retainKeys"},
        {"$retainKeys not a list", "{'spec':{'a':1}}",
         "{'spec':{'$retainKeys':'a'}}", NULL, ERR_BAD_REQUEST,
         "invalid patch format of retainKeys"},
        {"$retainKeys not strings", "{'spec':{'a':1}}",
         "{'spec':{'$retainKeys':[1]}}", NULL, ERR_BAD_REQUEST,
         "invalid patch format of retainKeys"},
        {"patch not an object", "{}", "[1]", NULL, ERR_BAD_REQUEST, NULL},
    };
    RUN("strategic", strategic, cases);
}

static void test_patch__strategic_keyed_lists(void **state)
{
    (void)state;
    static const pcase_t cases[] = {
        {"conditions merge by type",
         "{'status':{'conditions':[{'type':'Ready','status':'False','reason':'x'},"
         "{'type':'Synced','status':'True'}]}}",
         "{'status':{'conditions':[{'type':'Ready','status':'True','reason':null},"
         "{'type':'Degraded','status':'False'}]}}",
         "{'status':{'conditions':[{'type':'Ready','status':'True'},"
         "{'type':'Synced','status':'True'},"
         "{'type':'Degraded','status':'False'}]}}", 0, NULL},
        {"conditions into empty status", "{}",
         "{'status':{'conditions':[{'type':'Ready','status':'True','x':null}]}}",
         "{'status':{'conditions':[{'type':'Ready','status':'True'}]}}", 0,
         NULL},
        {"conditions replace a non-list", "{'status':{'conditions':'x'}}",
         "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'conditions':[{'type':'A'}]}}", 0, NULL},
        {"subjects need kind and name",
         "{'spec':{'subjects':[{'kind':'User','name':'a','x':1}]}}",
         "{'spec':{'subjects':[{'kind':'Group','name':'a'},"
         "{'kind':'User','name':'a','y':2}]}}",
         "{'spec':{'subjects':[{'kind':'User','name':'a','x':1,'y':2},"
         "{'kind':'Group','name':'a'}]}}", 0, NULL},
        {"subjects delete",
         "{'spec':{'subjects':[{'kind':'User','name':'a'},"
         "{'kind':'Group','name':'a'}]}}",
         "{'spec':{'subjects':[{'$patch':'delete','kind':'User','name':'a'}]}}",
         "{'spec':{'subjects':[{'kind':'Group','name':'a'}]}}", 0, NULL},
        {"namespaces by cluster and name",
         "{'spec':{'namespaces':[{'cluster':'c1','name':'n','mode':'r'},"
         "{'cluster':'c2','name':'n','mode':'r'}]}}",
         "{'spec':{'namespaces':[{'cluster':'c2','name':'n','mode':'w'}]}}",
         "{'spec':{'namespaces':[{'cluster':'c1','name':'n','mode':'r'},"
         "{'cluster':'c2','name':'n','mode':'w'}]}}", 0, NULL},
        {"topologies by nodeGroup, nested merge",
         "{'spec':{'topologies':[{'nodeGroup':'g1','replicas':1,"
         "'labels':{'a':'1'}}]}}",
         "{'spec':{'topologies':[{'nodeGroup':'g1','labels':{'b':'2'}}]}}",
         "{'spec':{'topologies':[{'nodeGroup':'g1','replicas':1,"
         "'labels':{'a':'1','b':'2'}}]}}", 0, NULL},
        {"ownerReferences by uid",
         "{'metadata':{'ownerReferences':[{'uid':'1','name':'a'}]}}",
         "{'metadata':{'ownerReferences':[{'uid':'1','controller':true},"
         "{'uid':'2','name':'b'}]}}",
         "{'metadata':{'ownerReferences':[{'uid':'1','name':'a',"
         "'controller':true},{'uid':'2','name':'b'}]}}", 0, NULL},
        {"$patch delete of an absent item",
         "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'conditions':[{'$patch':'delete','type':'B'}]}}",
         "{'status':{'conditions':[{'type':'A'}]}}", 0, NULL},
        {"$patch replace in list",
         "{'status':{'conditions':[{'type':'A','x':1},{'type':'B'}]}}",
         "{'status':{'conditions':[{'$patch':'replace'},{'type':'A','y':2}]}}",
         "{'status':{'conditions':[{'type':'A','y':2}]}}", 0, NULL},
        {"$patch replace alone empties the list",
         "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'conditions':[{'$patch':'replace'}]}}",
         "{'status':{'conditions':[]}}", 0, NULL},
        {"item missing merge key",
         "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'conditions':[{'status':'True'}]}}", NULL,
         ERR_BAD_REQUEST, "does not contain declared merge key: type"},
        {"item missing one of two keys", "{}",
         "{'spec':{'subjects':[{'kind':'User'}]}}", NULL, ERR_BAD_REQUEST,
         "merge key: kind,name"},
        {"delete item missing merge key", "{}",
         "{'status':{'conditions':[{'$patch':'delete'}]}}", NULL,
         ERR_BAD_REQUEST, "merge key"},
        {"item not a map", "{}", "{'status':{'conditions':['x']}}", NULL,
         ERR_BAD_REQUEST, "not a map"},
        {"$patch merge in list", "{}",
         "{'status':{'conditions':[{'$patch':'merge','type':'A'}]}}", NULL,
         ERR_BAD_REQUEST, "merging lists cannot yet be specified"},
        {"$patch unknown in list", "{}",
         "{'status':{'conditions':[{'$patch':'frob','type':'A'}]}}", NULL,
         ERR_BAD_REQUEST, "unknown patch type: frob"},
        {"$patch delete in a list without keys", "{'spec':{'l':[1]}}",
         "{'spec':{'l':[{'$patch':'delete'}]}}", NULL, ERR_BAD_REQUEST,
         "does not merge by key"},
        {"null deletes a keyed list", "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'conditions':null}}", "{'status':{}}", 0, NULL},
    };
    RUN("strategic", strategic, cases);
}

static void test_patch__strategic_scalar_sets(void **state)
{
    (void)state;
    static const pcase_t cases[] = {
        {"finalizers union", "{'metadata':{'finalizers':['a','b']}}",
         "{'metadata':{'finalizers':['b','c','c']}}",
         "{'metadata':{'finalizers':['a','b','c']}}", 0, NULL},
        {"finalizers into nothing", "{}", "{'metadata':{'finalizers':['a']}}",
         "{'metadata':{'finalizers':['a']}}", 0, NULL},
        {"$deleteFromPrimitiveList",
         "{'metadata':{'finalizers':['a','b','c']}}",
         "{'metadata':{'$deleteFromPrimitiveList/finalizers':['a','c','z']}}",
         "{'metadata':{'finalizers':['b']}}", 0, NULL},
        {"add and delete together", "{'metadata':{'finalizers':['a','b']}}",
         "{'metadata':{'finalizers':['c'],"
         "'$deleteFromPrimitiveList/finalizers':['a']}}",
         "{'metadata':{'finalizers':['b','c']}}", 0, NULL},
        {"$deleteFromPrimitiveList on an absent list", "{'metadata':{}}",
         "{'metadata':{'$deleteFromPrimitiveList/finalizers':['a']}}",
         "{'metadata':{}}", 0, NULL},
        {"$deleteFromPrimitiveList not a list",
         "{'metadata':{'finalizers':['a']}}",
         "{'metadata':{'$deleteFromPrimitiveList/finalizers':'a'}}", NULL,
         ERR_BAD_REQUEST, "invalid patch format of primitive list"},
        {"$deleteFromPrimitiveList of a map",
         "{'metadata':{'finalizers':['a']}}",
         "{'metadata':{'$deleteFromPrimitiveList/finalizers':[{'a':1}]}}",
         NULL, ERR_BAD_REQUEST, "invalid patch format of primitive list"},
        {"$deleteFromPrimitiveList without field", "{'metadata':{}}",
         "{'metadata':{'$deleteFromPrimitiveList':['a']}}", NULL,
         ERR_BAD_REQUEST, "invalid patch format of primitive list"},
        {"$deleteFromPrimitiveList empty field", "{'metadata':{}}",
         "{'metadata':{'$deleteFromPrimitiveList/':['a']}}", NULL,
         ERR_BAD_REQUEST, "invalid patch format of primitive list"},
        {"map in a scalar set", "{}", "{'metadata':{'finalizers':[{'a':1}]}}",
         NULL, ERR_BAD_REQUEST, "set of scalars"},
        {"$patch replace in a scalar set",
         "{'metadata':{'finalizers':['a','b']}}",
         "{'metadata':{'finalizers':[{'$patch':'replace'},'c']}}",
         "{'metadata':{'finalizers':['c']}}", 0, NULL},
    };
    RUN("strategic", strategic, cases);
}

static void test_patch__strategic_set_element_order(void **state)
{
    (void)state;
    static const pcase_t cases[] = {
        {"reorder scalars only", "{'metadata':{'finalizers':['a','b','c']}}",
         "{'metadata':{'$setElementOrder/finalizers':['c','a','b']}}",
         "{'metadata':{'finalizers':['c','a','b']}}", 0, NULL},
        {"reorder scalars with additions", "{'metadata':{'finalizers':['a','b']}}",
         "{'metadata':{'$setElementOrder/finalizers':['c','b','a'],"
         "'finalizers':['c']}}",
         "{'metadata':{'finalizers':['c','b','a']}}", 0, NULL},
        {"reorder keyed with merge",
         "{'status':{'conditions':[{'type':'A','s':1},{'type':'B','s':1}]}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'B'},{'type':'A'},"
         "{'type':'C'}],'conditions':[{'type':'A','s':2},{'type':'C','s':3}]}}",
         "{'status':{'conditions':[{'type':'B','s':1},{'type':'A','s':2},"
         "{'type':'C','s':3}]}}", 0, NULL},
        {"server-only item last",
         "{'status':{'conditions':[{'type':'A'},{'type':'B'},{'type':'X'}]}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'B'},{'type':'A'}]}}",
         "{'status':{'conditions':[{'type':'B'},{'type':'A'},{'type':'X'}]}}",
         0, NULL},
        /* As upstream: X preceded B live, so it goes before B. */
        {"server-only item in the middle",
         "{'status':{'conditions':[{'type':'A'},{'type':'X'},{'type':'B'}]}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'B'},{'type':'A'}]}}",
         "{'status':{'conditions':[{'type':'X'},{'type':'B'},{'type':'A'}]}}",
         0, NULL},
        {"server-only item first",
         "{'status':{'conditions':[{'type':'X'},{'type':'A'},{'type':'B'}]}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'B'},{'type':'A'}]}}",
         "{'status':{'conditions':[{'type':'X'},{'type':'B'},{'type':'A'}]}}",
         0, NULL},
        {"reorder subjects by two keys",
         "{'spec':{'subjects':[{'kind':'User','name':'a'},"
         "{'kind':'Group','name':'a'}]}}",
         "{'spec':{'$setElementOrder/subjects':[{'kind':'Group','name':'a'},"
         "{'kind':'User','name':'a'}]}}",
         "{'spec':{'subjects':[{'kind':'Group','name':'a'},"
         "{'kind':'User','name':'a'}]}}", 0, NULL},
        {"with a deleted item",
         "{'status':{'conditions':[{'type':'A'},{'type':'B'},{'type':'C'}]}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'C'},{'type':'A'}],"
         "'conditions':[{'$patch':'delete','type':'B'}]}}",
         "{'status':{'conditions':[{'type':'C'},{'type':'A'}]}}", 0, NULL},
        {"for an absent list", "{'status':{}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'A'}]}}",
         "{'status':{}}", 0, NULL},
        {"patch order disagrees",
         "{'status':{'conditions':[{'type':'A'},{'type':'C'}]}}",
         "{'status':{'$setElementOrder/conditions':[{'type':'A'},{'type':'C'}],"
         "'conditions':[{'type':'C','s':1},{'type':'A','s':1}]}}", NULL,
         ERR_BAD_REQUEST, "doesn't match"},
        {"patch item not in the order", "{'metadata':{'finalizers':['a']}}",
         "{'metadata':{'$setElementOrder/finalizers':['a'],"
         "'finalizers':['b']}}", NULL, ERR_BAD_REQUEST, "doesn't match"},
        {"order not a list", "{}",
         "{'status':{'$setElementOrder/conditions':{'type':'A'}}}", NULL,
         ERR_BAD_REQUEST, "invalid patch format of setElementOrder list"},
        {"order item missing key", "{'status':{'conditions':[{'type':'A'}]}}",
         "{'status':{'$setElementOrder/conditions':[{'name':'A'}]}}", NULL,
         ERR_BAD_REQUEST, "merge key: type"},
        {"order without field", "{}", "{'status':{'$setElementOrder':[]}}",
         NULL, ERR_BAD_REQUEST, "invalid patch format of setElementOrder list"},
    };
    RUN("strategic", strategic, cases);
}

static void test_patch__find_rule(void **state)
{
    (void)state;
    const patch_list_rule_t *r = patch_find_rule(test_rules, "spec.subjects");
    assert_non_null(r);
    assert_string_equal(r->keys, "kind,name");
    r = patch_find_rule(test_rules, "metadata.ownerReferences");
    assert_non_null(r);
    assert_string_equal(r->keys, "uid");
    r = patch_find_rule(NULL, "metadata.finalizers");
    assert_non_null(r);
    assert_null(r->keys);
    assert_null(patch_find_rule(test_rules, "spec"));
    assert_null(patch_find_rule(test_rules, "spec.subjects.name"));
    assert_null(patch_find_rule(NULL, NULL));
}

/* ---- depth bound ---- */

/* n objects nested under key "a": {"a":{"a":{}}} for n = 3. */
static char *nested(int n)
{
    char *s = malloc((size_t)n * 6 + 1), *p = s;
    assert_non_null(s);
    for (int i = 1; i < n; i++)
        p += sprintf(p, "{\"a\":");
    p += sprintf(p, "{}");
    for (int i = 1; i < n; i++)
        *p++ = '}';
    *p = '\0';
    return s;
}

static void expect_depth(patch_fn_t fn, int n, int want)
{
    char *text = nested(n);
    json_t *doc = json_object(), *patch = json_loads(text, 0, NULL), *out = NULL;
    err_t err = {0};

    assert_non_null(patch);
    assert_int_equal(fn(doc, patch, &out, &err), want);
    if (want)
        assert_string_equal(err.message, "patch nests too deeply");
    json_decref(out);
    json_decref(patch);
    json_decref(doc);
    free(text);
}

static void test_patch__depth_bound(void **state)
{
    (void)state;
    expect_depth(patch_merge, PATCH_MAX_DEPTH, 0);
    expect_depth(patch_merge, PATCH_MAX_DEPTH + 1, ERR_BAD_REQUEST);
    expect_depth(strategic, PATCH_MAX_DEPTH, 0);
    expect_depth(strategic, PATCH_MAX_DEPTH + 1, ERR_BAD_REQUEST);
    expect_depth(strategic, 1000, ERR_BAD_REQUEST);

    /* Nesting through keyed lists counts too. */
    json_t *doc = json_object(), *patch = json_object(), *out = NULL;
    json_t *cur = patch;
    err_t err = {0};
    for (int i = 0; i < PATCH_MAX_DEPTH; i++) {
        json_t *status = json_object(), *list = json_array(),
               *item = json_pack("{s:s}", "type", "A");
        json_object_set_new(cur, "status", status);
        json_object_set_new(status, "conditions", list);
        json_array_append_new(list, item);
        cur = item;
    }
    assert_int_equal(strategic(doc, patch, &out, &err), ERR_BAD_REQUEST);
    assert_null(out);
    json_decref(patch);
    json_decref(doc);

    /* JSON pointers: more than PATCH_MAX_DEPTH tokens is malformed. */
    for (int n = PATCH_MAX_DEPTH; n <= PATCH_MAX_DEPTH + 1; n++) {
        char path[2 * (PATCH_MAX_DEPTH + 1) + 1] = "";
        for (int i = 0; i < n; i++)
            strcat(path, "/a");
        doc = json_object();
        patch = json_pack("[{s:s,s:s,s:i}]", "op", "add", "path", path,
                          "value", 1);
        err_clear(&err);
        assert_int_equal(patch_json(doc, patch, &out, &err),
                         n > PATCH_MAX_DEPTH ? ERR_BAD_REQUEST : ERR_INVALID);
        json_decref(patch);
        json_decref(doc);
    }
}

/* ---- allocation failure ---- */

/* Fails the n-th allocation for n = 0, 1, ... until fn succeeds: every
 * earlier call must fail cleanly with ERR_NOMEM (the sanitizer checks for
 * leaks), and the eventual result must be right. */
static void expect_nomem_clean(patch_fn_t fn, const char *doc_text,
                               const char *patch_text, const char *want_text)
{
    json_t *doc = load(doc_text), *patch = load(patch_text);
    json_t *want = load(want_text), *doc0 = json_deep_copy(doc);
    long n;

    for (n = 0; n < 100000; n++) {
        json_t *out = NULL;
        err_t err = {0};
        mem_fail_after(n);
        int rc = fn(doc, patch, &out, &err);
        mem_fail_after(-1);
        if (rc == 0) {
            assert_true(json_equal(out, want));
            json_decref(out);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(err.code, ERR_NOMEM);
        assert_null(out);
        assert_true(json_equal(doc, doc0));
    }
    assert_true(n > 0 && n < 100000);
    json_decref(doc);
    json_decref(patch);
    json_decref(want);
    json_decref(doc0);
}

static void test_patch__allocation_failure(void **state)
{
    (void)state;
    expect_nomem_clean(patch_json,
        "{'spec':{'a':1,'l':[1,2]},'metadata':{'name':'x'}}",
        "[{'op':'add','path':'/spec/b','value':{'c':[1,{'d':2}]}},"
        "{'op':'add','path':'/spec/l/-','value':3},"
        "{'op':'copy','from':'/spec/b','path':'/spec/e'},"
        "{'op':'move','from':'/spec/a','path':'/metadata/a'},"
        "{'op':'replace','path':'/metadata/name','value':'y'},"
        "{'op':'remove','path':'/spec/l/0'},"
        "{'op':'test','path':'/spec/e/c/1/d','value':2}]",
        "{'spec':{'l':[2,3],'b':{'c':[1,{'d':2}]},'e':{'c':[1,{'d':2}]}},"
        "'metadata':{'name':'y','a':1}}");
    expect_nomem_clean(patch_merge,
        "{'metadata':{'labels':{'a':'1','b':'2'}},'spec':{'x':[1]}}",
        "{'metadata':{'labels':{'a':null,'c':'3'},'annotations':{'n':'v'}},"
        "'spec':{'x':{'y':{'z':null,'w':1}}}}",
        "{'metadata':{'labels':{'b':'2','c':'3'},'annotations':{'n':'v'}},"
        "'spec':{'x':{'y':{'w':1}}}}");
    expect_nomem_clean(strategic,
        "{'metadata':{'finalizers':['a','b'],'labels':{'k':'v'}},"
        "'spec':{'subjects':[{'kind':'User','name':'u'}],'keep':1,'drop':2},"
        "'status':{'conditions':[{'type':'A','s':1},{'type':'B','s':1},"
        "{'type':'X'}]}}",
        "{'metadata':{'finalizers':['c'],'$deleteFromPrimitiveList/finalizers':['a'],"
        "'$setElementOrder/finalizers':['c','b'],'labels':{'$patch':'replace','n':'m'}},"
        "'spec':{'$retainKeys':['subjects','keep'],'subjects':[{'kind':'Group',"
        "'name':'g'},{'$patch':'delete','kind':'User','name':'u'}]},"
        "'status':{'$setElementOrder/conditions':[{'type':'B'},{'type':'A'},"
        "{'type':'C'}],'conditions':[{'type':'A','s':2},{'type':'C','s':3}]}}",
        "{'metadata':{'finalizers':['c','b'],'labels':{'n':'m'}},"
        "'spec':{'subjects':[{'kind':'Group','name':'g'}],'keep':1},"
        "'status':{'conditions':[{'type':'B','s':1},{'type':'A','s':2},"
        "{'type':'C','s':3},{'type':'X'}]}}");
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch__json_ops),
        cmocka_unit_test(test_patch__json_bad_request),
        cmocka_unit_test(test_patch__merge),
        cmocka_unit_test(test_patch__strategic_maps),
        cmocka_unit_test(test_patch__strategic_keyed_lists),
        cmocka_unit_test(test_patch__strategic_scalar_sets),
        cmocka_unit_test(test_patch__strategic_set_element_order),
        cmocka_unit_test(test_patch__find_rule),
        cmocka_unit_test(test_patch__depth_bound),
        cmocka_unit_test(test_patch__allocation_failure),
    };
    return cmocka_run_group_tests_name("patch", tests, NULL, NULL);
}
