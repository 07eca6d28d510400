/* Unit tests of registry/: the REST strategy, validation, Tables,
 * discovery and watch translation, on a real LMDB store. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../registry/registry.h"
#include "../../lib/mem.h"
#include "fixture.h"

static const reg_kind_t *kind(const char *group, const char *resource)
{
    const reg_kind_t *k = reg_find(group, "v1alpha1", resource);
    assert_non_null(k);
    return k;
}

#define IAM "iam.theriseunion.io"
#define SCOPE "scope.theriseunion.io"
#define APP "app.theriseunion.io"

/* Creates from JSON text; returns the stored object (caller owns) or NULL
 * with err filled. */
static json_t *create(fx_t *f, const reg_kind_t *k, const char *ns, const char *txt,
                      int fv, reg_outcome_t *oc, err_t *err)
{
    json_t *body = fx_json(txt);
    reg_write_opts_t o = {.field_validation = fv, .field_manager = "test"};
    reg_outcome_t local = {0};
    json_t *out = NULL;
    int rc = reg_create(&f->reg, k, ns, body, &o, &out, oc ? oc : &local, err);
    json_decref(body);
    return rc ? NULL : out;
}

static json_int_t i_at(const json_t *o, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(o, a), b));
}

/* Fault injection: arms the allocator to fail the n-th allocation of this
 * thread from now, and every later one too (once = 0) or that one alone
 * (once = 1: a failure the code ignores is not hidden by the next);
 * disarming says whether an allocation failed, so a loop over growing n
 * knows when the call under test has run out of allocations to fail. */
static unsigned long fault_arm(int once, long n)
{
    unsigned long before = mem_failures();
    if (once)
        mem_fail_once(n);
    else
        mem_fail_after(n);
    return before;
}

static int fault_disarm(unsigned long before)
{
    mem_fail_after(-1);
    return mem_failures() != before;
}

/* ---- schemas ---------------------------------------------------------------- */

/* A kind's schema is built on first use. Must run before any other test
 * of this file uses a schema: when building it runs out of memory, that
 * request fails with ERR_NOMEM (nothing stored, no document), and the next
 * request builds it again, so validation, pruning and the OpenAPI
 * definitions are never silently lost. */
static void test_registry__schema_failure_is_an_error(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(IAM, "iamroles");
    err_t err = {0};
    /* Failing creates only, until one succeeds: one of them reaches the
     * schema's first build with no memory left. */
    json_t *o = NULL;
    for (long n = 0;; n++) {
        assert_true(n < 5000);
        char txt[200];
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"r%ld\"},\"spec\":{\"scope\":\"Cluster\","
                 "\"nope\":1}}", n);
        json_t *body = fx_json(txt);
        reg_write_opts_t wo = {.field_validation = REG_FV_IGNORE, .field_manager = "t"};
        reg_outcome_t oc = {0};
        err_clear(&err);
        mem_fail_after(n);
        int rc = reg_create(&f->reg, k, NULL, body, &wo, &o, &oc, &err);
        mem_fail_after(-1);
        json_decref(body);
        if (!rc)
            break;
        if (rc != ERR_NOMEM)
            fail_msg("allocation %ld failing: %s %s", n, err_name(rc), err.message);
        assert_int_equal(store_revision(f->store), 0);
    }
    /* Pruned by the schema, and the next request validates. */
    assert_null(json_object_get(json_object_get(o, "spec"), "nope"));
    json_decref(o);
    err_clear(&err);
    json_t *bad = create(f, k, NULL, "{\"metadata\":{\"name\":\"bad\"},"
                         "\"spec\":{\"scope\":\"Galaxy\"}}", REG_FV_STRICT, NULL, &err);
    if (bad)
        fail_msg("validation is off");
    assert_int_equal(err.code, ERR_INVALID);

    for (long n = 0;; n++) {
        assert_true(n < 50000);
        /* One allocation fails (the definitions are built first, the
         * schema of the group's one kind among them); the document is
         * then whole or none. */
        unsigned long before = mem_failures();
        mem_fail_once(n);
        json_t *doc = reg_openapi_v3("ext.theriseunion.io");
        mem_fail_after(-1);
        int fired = mem_failures() != before;
        json_t *defs = json_object_get(json_object_get(doc, "components"), "schemas");
        const char *names[] = {"io.theriseunion.ext.v1alpha1.Component",
                               "io.theriseunion.ext.v1alpha1.ComponentList"};
        for (size_t i = 0; doc && i < 2; i++) {
            const json_t *d = json_object_get(defs, names[i]);
            if (!json_object_get(d, "properties") ||
                !json_object_get(d, "x-kubernetes-group-version-kind"))
                fail_msg("allocation %ld failing: the definition of %s is missing or "
                         "incomplete", n, names[i]);
        }
        assert_true(doc || fired);
        json_decref(doc);
        if (!fired)
            break;
    }
}

/* ---- create --------------------------------------------------------------- */

static void test_registry__create_sets_server_fields(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    json_t *o = create(f, kind(IAM, "iamroles"), NULL,
                       "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRole\","
                       "\"metadata\":{\"name\":\"viewer\",\"uid\":\"client-made\"},"
                       "\"spec\":{\"scope\":\"Workspace\"},\"status\":{\"observedGeneration\":9}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    assert_int_equal(strlen(fx_str(o, "metadata.uid")), 36);
    assert_string_not_equal(fx_str(o, "metadata.uid"), "client-made");
    assert_non_null(fx_str(o, "metadata.creationTimestamp"));
    assert_int_equal(i_at(o, "metadata", "generation"), 1);
    char rv[24];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)store_revision(f->store));
    assert_string_equal(fx_str(o, "metadata.resourceVersion"), rv);
    /* Status is not the client's to set on create. */
    assert_null(json_object_get(o, "status"));
    json_t *mf = json_object_get(json_object_get(o, "metadata"), "managedFields");
    assert_int_equal(json_array_size(mf), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(mf, 0), "manager")), "test");
    json_decref(o);

    json_t *got = NULL;
    assert_int_equal(reg_get(&f->reg, kind(IAM, "iamroles"), NULL, "viewer", &got, &err), 0);
    assert_string_equal(fx_str(got, "metadata.resourceVersion"), rv);
    json_decref(got);
}

static void test_registry__generate_name(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    json_t *o = create(f, kind(SCOPE, "nodegroups"), NULL,
                       "{\"metadata\":{\"generateName\":\"edge-\"},\"spec\":{\"cluster\":\"c\"}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    const char *name = fx_str(o, "metadata.name");
    assert_int_equal(strlen(name), 10);
    assert_memory_equal(name, "edge-", 5);
    json_decref(o);
}

typedef struct bad {
    const char *resource;
    const char *group;
    const char *body;
    int fv;
    int code;
    const char *field;           /* a cause's field, or NULL */
    const char *message_part;
} bad_t;

static const bad_t bad_rows[] = {
    {"workspaces", SCOPE, "{\"metadata\":{\"name\":\"Bad_Name\"}}", REG_FV_STRICT, ERR_INVALID,
     "metadata.name", "a lowercase RFC 1123 subdomain"},
    {"workspaces", SCOPE, "{\"metadata\":{}}", REG_FV_STRICT, ERR_INVALID, "metadata.name",
     "name or generateName is required"},
    {"iamroles", IAM, "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"scope\":\"Galaxy\"}}",
     REG_FV_STRICT, ERR_INVALID, "spec.scope", "Unsupported value: \"Galaxy\""},
    {"iamroles", IAM, "{\"metadata\":{\"name\":\"r\"},\"spec\":{\"rules\":\"all\"}}", REG_FV_STRICT,
     ERR_INVALID, "spec.rules", "must be of type array"},
    {"iamrolebindings", IAM, "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"scope\":{\"level\":\"Cluster\"}}}",
     REG_FV_STRICT, ERR_INVALID, "spec.roleRef", "Required value"},
    {"iamrolebindings", IAM,
     "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"roleRef\":{\"name\":\"r\"},\"scope\":{\"level\":\"Workspace\"},"
     "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"sa\"}]}}",
     REG_FV_STRICT, ERR_INVALID, "spec.subjects[0].namespace", "needs a namespace"},
    {"applicationversions", APP,
     "{\"metadata\":{\"name\":\"v\"},\"spec\":{\"application\":\"a\",\"version\":\"1.02.0\"}}",
     REG_FV_STRICT, ERR_INVALID, "spec.version", "semantic version"},
    {"nodegroups", SCOPE, "{\"metadata\":{\"name\":\"n\",\"labels\":{\"a\":\"-bad-\"}}}", REG_FV_STRICT,
     ERR_INVALID, "metadata.labels", "a valid label"},
    {"nodegroups", SCOPE, "{\"metadata\":{\"name\":\"n\"},\"spec\":{\"nodez\":[]}}", REG_FV_STRICT,
     ERR_BAD_REQUEST, NULL, "strict decoding error: unknown field \"spec.nodez\""},
    {"nodegroups", SCOPE, "{\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"n\"}}", REG_FV_STRICT,
     ERR_BAD_REQUEST, NULL, "does not match the expected API version"},
};

static void test_registry__validation_errors(void **state)
{
    fx_t *f = *state;
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        const bad_t *b = &bad_rows[i];
        err_t err = {0};
        json_t *o = create(f, kind(b->group, b->resource), NULL, b->body, b->fv, NULL, &err);
        if (o)
            fail_msg("row %zu accepted: %s", i, b->body);
        if (err.code != b->code || !strstr(err.message, b->message_part))
            fail_msg("row %zu: %s: %s", i, err_name(err.code), err.message);
        if (b->field) {
            int found = 0;
            for (int c = 0; c < err.ncauses; c++)
                found |= !strcmp(err.causes[c].field, b->field);
            if (!found)
                fail_msg("row %zu: no cause for %s (%s)", i, b->field, err.message);
        }
    }
    /* Nothing of it was stored. */
    assert_int_equal(store_revision(f->store), 0);
}

/* The cause for field whose message is want, as an err_t holds it (cut to
 * fit); fails the test when there is none. */
static void expect_cause(const err_t *err, const char *field, const char *want)
{
    char cut[sizeof err->causes[0].message];
    snprintf(cut, sizeof cut, "%s", want);
    for (int i = 0; i < err->ncauses; i++)
        if (!strcmp(err->causes[i].field, field) && !strcmp(err->causes[i].message, cut))
            return;
    for (int i = 0; i < err->ncauses; i++)
        print_error("cause %s: %s\n", err->causes[i].field, err->causes[i].message);
    fail_msg("no cause %s: %s", field, cut);
}

#define DNS1123_MSG                                                                  \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "        \
    "characters, '-' or '.', and must start and end with an alphanumeric character " \
    "(e.g. 'example.com', regex used for validation is "                              \
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define QNAME_MSG                                                                    \
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and "  \
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "         \
    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

/* Names, label keys and values, annotation keys: kube's rules, each
 * message a cause of its own, in kube's words (those the selectors use). */
static void test_registry__name_messages(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    char long_value[65], long_name[80], body[512];
    memset(long_value, 'a', 64);
    long_value[64] = '\0';
    snprintf(long_name, sizeof long_name, "example.com/%s", long_value);
    static const struct {
        const char *meta;        /* metadata members after the name */
        const char *field, *want;
    } rows[] = {
        {"\"labels\":{\"Example.com/a\":\"v\"}", "metadata.labels",
         "Invalid value: \"Example.com/a\": prefix part " DNS1123_MSG},
        {"\"labels\":{\"a/b/c\":\"v\"}", "metadata.labels",
         "Invalid value: \"a/b/c\": a valid label key " QNAME_MSG},
        {"\"labels\":{\"%s\":\"v\"}", "metadata.labels", NULL},
        {"\"labels\":{\"a\":\"%s\"}", "metadata.labels", NULL},
        {"\"annotations\":{\"/x\":\"v\"}", "metadata.annotations",
         "Invalid value: \"/x\": prefix part must be non-empty"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char meta[256], want[256];
        snprintf(meta, sizeof meta, rows[i].meta, i == 2 ? long_name : long_value);
        snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"n%zu\",%s}}", i, meta);
        if (i == 2)
            snprintf(want, sizeof want, "Invalid value: \"%s\": name part must be no more "
                     "than 63 characters", long_name);
        else if (i == 3)
            snprintf(want, sizeof want, "Invalid value: \"%s\": must be no more than 63 "
                     "characters", long_value);
        else
            snprintf(want, sizeof want, "%s", rows[i].want);
        err_t err = {0};
        assert_null(create(f, k, NULL, body, REG_FV_STRICT, NULL, &err));
        assert_int_equal(err.code, ERR_INVALID);
        expect_cause(&err, rows[i].field, want);
    }
    err_t err = {0};
    assert_null(create(f, k, NULL, "{\"metadata\":{\"name\":\"Bad_Name\"}}", REG_FV_STRICT, NULL,
                       &err));
    expect_cause(&err, "metadata.name", "Invalid value: \"Bad_Name\": " DNS1123_MSG);
}

static void test_registry__unknown_fields_warn_and_ignore(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    reg_outcome_t oc = {0};
    json_t *o = create(f, kind(SCOPE, "nodegroups"), NULL,
                       "{\"metadata\":{\"name\":\"n1\"},\"spec\":{\"cluster\":\"c\",\"nodez\":[1]}}",
                       REG_FV_WARN, &oc, &err);
    assert_non_null(o);
    assert_int_equal(oc.nwarnings, 1);
    assert_string_equal(oc.warnings[0], "unknown field \"spec.nodez\"");
    assert_null(json_object_get(json_object_get(o, "spec"), "nodez"));
    json_decref(o);
    memset(&oc, 0, sizeof oc);
    o = create(f, kind(SCOPE, "nodegroups"), NULL,
               "{\"metadata\":{\"name\":\"n2\"},\"spec\":{\"nodez\":[1]}}", REG_FV_IGNORE, &oc, &err);
    assert_non_null(o);
    assert_int_equal(oc.nwarnings, 0);
    assert_null(json_object_get(json_object_get(o, "spec"), "nodez"));
    json_decref(o);

    /* Preserved-unknown subtrees keep whatever they hold. */
    o = create(f, kind(APP, "applicationversions"), NULL,
               "{\"metadata\":{\"name\":\"v1\"},\"spec\":{\"application\":\"a\",\"version\":\"1.0.0\","
               "\"helm\":{\"values\":{\"any\":{\"thing\":1}}}}}",
               REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(json_object_get(json_object_get(o, "spec"),
                         "helm"), "values"), "any"), "thing")), 1);
    json_decref(o);
}

static void test_registry__duplicate_keys(void **state)
{
    (void)state;
    const char body[] = "{\"metadata\":{\"name\":\"a\",\"name\":\"b\"}}";
    json_t *o = NULL;
    err_t err = {0};
    reg_outcome_t oc = {0};
    assert_int_equal(reg_decode_body(body, sizeof body - 1, REG_FV_STRICT, &o, &oc, &err),
                     ERR_BAD_REQUEST);
    assert_non_null(strstr(err.message, "duplicate"));
    err_clear(&err);
    assert_int_equal(reg_decode_body(body, sizeof body - 1, REG_FV_WARN, &o, &oc, &err), 0);
    assert_int_equal(oc.nwarnings, 1);
    json_decref(o);
}

/* ---- update, status, generation, conflicts ----------------------------------- */

/* Writers racing on one object, each with the resourceVersion it read (as
 * controllers write status): a PUT whose precondition held when checked
 * but lost the store's compare-and-swap to another is a clean 409, never
 * a read of the precondition after the request's object was rewritten. */
typedef struct racer {
    fx_t *f;
    const reg_kind_t *k;
    int status;
    int wins, conflicts, others;
} racer_t;

static void *race_put(void *arg)
{
    racer_t *r = arg;
    for (int i = 0; i < 200; i++) {
        json_t *cur = NULL, *out = NULL;
        err_t err = {0};
        if (reg_get(&r->f->reg, r->k, NULL, "raced", &cur, &err)) {
            r->others++;
            continue;
        }
        char v[32];
        snprintf(v, sizeof v, "v%d", i);
        if (r->status)
            json_object_set_new(cur, "status", json_pack("{s:s}", "kubernetesVersion", v));
        else
            json_object_set_new(json_object_get(cur, "spec"), "version", json_string(v));
        reg_write_opts_t o = {.field_manager = "racer"};
        reg_outcome_t oc = {0};
        memset(&err, 0, sizeof err);
        int rc = reg_update(&r->f->reg, r->k, NULL, "raced", cur, r->status, &o, &out, &oc, &err);
        if (!rc)
            r->wins++;
        else if (rc == ERR_CONFLICT)
            r->conflicts++;
        else
            r->others++;
        json_decref(out);
        free(oc.body);
        json_decref(cur);
    }
    return NULL;
}

static void test_registry__racing_puts_with_preconditions(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "clusters");
    err_t err = {0};
    json_t *o = create(f, k, NULL, "{\"metadata\":{\"name\":\"raced\"},\"spec\":{\"type\":\"physical\"}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    json_decref(o);
    racer_t r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (racer_t){f, k, i % 2, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, race_put, &r[i]), 0);
    }
    int wins = 0, conflicts = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].others, 0);
        wins += r[i].wins;
        conflicts += r[i].conflicts;
    }
    assert_true(wins > 0);
    assert_int_equal(wins + conflicts, 800);
}

static void test_registry__update_rules(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "clusters");
    err_t err = {0};
    json_t *o = create(f, k, NULL, "{\"metadata\":{\"name\":\"edge-1\"},\"spec\":{\"type\":\"physical\"}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    char rv1[24];
    snprintf(rv1, sizeof rv1, "%s", fx_str(o, "metadata.resourceVersion"));
    reg_write_opts_t wo = {.field_validation = REG_FV_STRICT, .field_manager = "t"};
    reg_outcome_t oc = {0};

    /* Status through the main resource is ignored. */
    json_t *body = json_deep_copy(o);
    json_object_set_new(body, "status", fx_json("{\"kubernetesVersion\":\"v1.30\"}"));
    json_t *out = NULL;
    assert_int_equal(reg_update(&f->reg, k, NULL, "edge-1", body, 0, &wo, &out, &oc, &err), 0);
    assert_null(json_object_get(out, "status"));
    /* A no-op keeps the resourceVersion. */
    assert_string_equal(fx_str(out, "metadata.resourceVersion"), rv1);
    json_decref(out);

    /* The status subresource writes status only, and not generation. */
    json_object_set_new(json_object_get(body, "spec"), "type", json_string("virtual"));
    assert_int_equal(reg_update(&f->reg, k, NULL, "edge-1", body, 1, &wo, &out, &oc, &err), 0);
    assert_string_equal(fx_str(out, "status.kubernetesVersion"), "v1.30");
    assert_string_equal(fx_str(out, "spec.type"), "physical");
    assert_int_equal(i_at(out, "metadata", "generation"), 1);
    char rv2[24];
    snprintf(rv2, sizeof rv2, "%s", fx_str(out, "metadata.resourceVersion"));
    json_decref(out);

    /* A stale resourceVersion conflicts. */
    json_object_set_new(json_object_get(body, "metadata"), "resourceVersion", json_string(rv1));
    assert_int_equal(reg_update(&f->reg, k, NULL, "edge-1", body, 0, &wo, &out, &oc, &err),
                     ERR_CONFLICT);
    assert_non_null(strstr(err.message, "the object has been modified"));
    err_clear(&err);

    /* A spec change raises generation and keeps status. */
    json_object_set_new(json_object_get(body, "metadata"), "resourceVersion", json_string(rv2));
    assert_int_equal(reg_update(&f->reg, k, NULL, "edge-1", body, 0, &wo, &out, &oc, &err), 0);
    assert_int_equal(i_at(out, "metadata", "generation"), 2);
    assert_string_equal(fx_str(out, "spec.type"), "virtual");
    assert_string_equal(fx_str(out, "status.kubernetesVersion"), "v1.30");
    json_decref(out);

    /* The name in the body must match the URL. */
    json_object_set_new(json_object_get(body, "metadata"), "name", json_string("other"));
    json_object_del(json_object_get(body, "metadata"), "resourceVersion");
    assert_int_equal(reg_update(&f->reg, k, NULL, "edge-1", body, 0, &wo, &out, &oc, &err),
                     ERR_BAD_REQUEST);
    json_decref(body);
    json_decref(o);
}

/* The stored bytes: json_dumps(JSON_COMPACT) of the object with apiVersion,
 * kind and metadata first and no resourceVersion (built here the long way,
 * as a new object). */
static void expect_stored(fx_t *f, const char *key, const json_t *obj)
{
    json_t *o = json_object(), *meta = json_deep_copy(json_object_get(obj, "metadata"));
    json_object_del(meta, "resourceVersion");
    json_object_set(o, "apiVersion", json_object_get(obj, "apiVersion"));
    json_object_set(o, "kind", json_object_get(obj, "kind"));
    json_object_set_new(o, "metadata", meta);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (strcmp(k, "apiVersion") && strcmp(k, "kind") && strcmp(k, "metadata"))
            json_object_set(o, k, v);
    }
    char *want = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(want);
    store_value_t got = {0};
    err_t err = {0};
    assert_int_equal(store_get(f->store, key, &got, &err), 0);
    if (got.len != strlen(want) || memcmp(got.data, want, got.len))
        fail_msg("stored:\n want %s\n  got %.*s", want, (int)got.len, got.data);
    store_value_free(&got);
    mem_free(want);
}

static void test_registry__stored_form(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "clusters");
    const char *key = "/" SCOPE "/clusters/edge-1";
    err_t err = {0};
    json_t *o = create(f, k, NULL,
                       "{\"spec\":{\"type\":\"physical\"},\"metadata\":{\"name\":\"edge-1\","
                       "\"labels\":{\"b\":\"2\",\"a\":\"1\"},\"annotations\":{\"note\":"
                       "\"say \\\"hi\\\"\\\\ \\n\\t\\u0001 </x> caf\\u00e9 \\u20ac \\ud83d\\ude00\"}},"
                       "\"kind\":\"Cluster\",\"apiVersion\":\"scope.theriseunion.io/v1alpha1\"}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    expect_stored(f, key, o);

    /* An update whose body carries resourceVersion mid-metadata and status. */
    json_t *body = json_deep_copy(o), *meta = json_object_get(body, "metadata");
    json_t *rv = json_incref(json_object_get(meta, "resourceVersion"));
    json_object_del(meta, "resourceVersion");
    json_t *rest = json_deep_copy(meta);
    json_object_clear(meta);
    json_object_set(meta, "name", json_object_get(rest, "name"));
    json_object_set_new(meta, "resourceVersion", rv);
    json_object_update(meta, rest);
    json_decref(rest);
    json_object_set_new(json_object_get(body, "spec"), "type", json_string("virtual"));
    reg_write_opts_t wo = {.field_validation = REG_FV_STRICT, .field_manager = "t"};
    reg_outcome_t oc = {.want_body = 1};
    json_t *out = NULL;
    assert_int_equal(reg_update(&f->reg, k, NULL, "edge-1", body, 0, &wo, &out, &oc, &err), 0);
    expect_stored(f, key, out);
    /* The response body is the stored bytes with resourceVersion put back. */
    assert_non_null(oc.body);
    json_t *sent = json_loadb(oc.body, oc.body_len, 0, NULL);
    assert_true(json_equal(sent, out));
    json_decref(sent);
    mem_free(oc.body);
    json_decref(out);
    json_decref(body);
    json_decref(o);
}

/* A patch or PUT whose result has no name is refused (kube's checkName),
 * never refilled from the URL, and nothing changes. */
static void test_registry__name_must_survive_update(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    err_t err = {0};
    json_t *o = create(f, k, NULL, "{\"metadata\":{\"name\":\"w\",\"labels\":{\"a\":\"b\"}},"
                       "\"spec\":{\"manager\":\"alice\"}}", REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    char rv[24];
    snprintf(rv, sizeof rv, "%s", fx_str(o, "metadata.resourceVersion"));
    json_decref(o);
    static const struct {
        const char *ctype, *patch;
    } rows[] = {
        {"application/merge-patch+json", "{\"metadata\":null}"},
        {"application/merge-patch+json", "{\"metadata\":{\"name\":null}}"},
        {"application/json-patch+json", "[{\"op\":\"remove\",\"path\":\"/metadata\"}]"},
        {"application/json-patch+json", "[{\"op\":\"replace\",\"path\":\"/metadata/name\",\"value\":\"\"}]"},
        {"application/strategic-merge-patch+json", "{\"$patch\":\"replace\"}"},
        {"application/strategic-merge-patch+json", "{\"metadata\":{\"$patch\":\"delete\"}}"},
    };
    reg_write_opts_t wo = {.field_validation = REG_FV_STRICT, .field_manager = "t"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        reg_outcome_t oc = {0};
        json_t *out = NULL;
        err_clear(&err);
        int rc = reg_patch(&f->reg, k, NULL, "w", rows[i].ctype, rows[i].patch,
                           strlen(rows[i].patch), 0, &wo, &out, &oc, &err);
        if (rc != ERR_BAD_REQUEST)
            fail_msg("%s %s: %d %s", rows[i].ctype, rows[i].patch, rc, err.message);
        assert_string_equal(err.message, "the name of the object (w based on URL) was "
                            "undeterminable: name must be provided");
    }
    json_t *body = fx_json("{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\","
                           "\"kind\":\"Workspace\",\"metadata\":{},\"spec\":{\"manager\":\"bob\"}}");
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    err_clear(&err);
    assert_int_equal(reg_update(&f->reg, k, NULL, "w", body, 0, &wo, &out, &oc, &err),
                     ERR_BAD_REQUEST);
    json_decref(body);
    err_clear(&err);
    assert_int_equal(reg_get(&f->reg, k, NULL, "w", &out, &err), 0);
    assert_string_equal(fx_str(out, "metadata.resourceVersion"), rv);
    assert_string_equal(fx_str(out, "metadata.labels.a"), "b");
    assert_string_equal(fx_str(out, "spec.manager"), "alice");
    json_decref(out);
}

/* A create that names a resourceVersion is a 400, and stores nothing. */
static void test_registry__create_with_resource_version(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    err_t err = {0};
    assert_null(create(f, k, NULL, "{\"metadata\":{\"name\":\"w\",\"resourceVersion\":\"3\"},"
                       "\"spec\":{\"manager\":\"a\"}}", REG_FV_STRICT, NULL, &err));
    assert_int_equal(err.code, ERR_BAD_REQUEST);
    assert_string_equal(err.message, "resourceVersion should not be set on objects to be created");
    json_t *out = NULL;
    err_clear(&err);
    assert_int_equal(reg_get(&f->reg, k, NULL, "w", &out, &err), ERR_NOT_FOUND);
    /* An empty one is no resourceVersion. */
    err_clear(&err);
    out = create(f, k, NULL, "{\"metadata\":{\"name\":\"w\",\"resourceVersion\":\"\"},"
                 "\"spec\":{\"manager\":\"a\"}}", REG_FV_STRICT, NULL, &err);
    assert_non_null(out);
    json_decref(out);
}

static void test_registry__patches(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(IAM, "iamrolebindings");
    err_t err = {0};
    json_t *o = create(f, k, NULL,
                       "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"roleRef\":{\"name\":\"r\"},"
                       "\"scope\":{\"level\":\"Cluster\"},\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    json_decref(o);
    reg_write_opts_t wo = {.field_validation = REG_FV_STRICT, .field_manager = "t"};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    const char smp[] = "{\"spec\":{\"subjects\":[{\"kind\":\"Group\",\"name\":\"devs\"}]}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "b", "application/strategic-merge-patch+json",
                               smp, sizeof smp - 1, 0, &wo, &out, &oc, &err), 0);
    /* Keyed by kind+name: merged, not replaced. */
    assert_int_equal(json_array_size(json_object_get(json_object_get(out, "spec"), "subjects")), 2);
    json_decref(out);
    const char mp[] = "{\"spec\":{\"subjects\":[{\"kind\":\"Group\",\"name\":\"ops\"}]}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "b", "application/merge-patch+json", mp,
                               sizeof mp - 1, 0, &wo, &out, &oc, &err), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(out, "spec"), "subjects")), 1);
    json_decref(out);
    const char bad[] = "{}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "b", "text/plain", bad, 2, 0, &wo, &out, &oc,
                               &err), ERR_UNSUPPORTED_MEDIA);
    err_clear(&err);

    /* Apply: creates when absent, then conflicts with another manager. */
    const char cfg[] = "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
                       "\"metadata\":{\"name\":\"c\"},\"spec\":{\"roleRef\":{\"name\":\"r\"},"
                       "\"scope\":{\"level\":\"Cluster\"}}}";
    wo.field_manager = "mgr-a";
    memset(&oc, 0, sizeof oc);
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c", "application/apply-patch+yaml", cfg,
                               sizeof cfg - 1, 0, &wo, &out, &oc, &err), 0);
    assert_true(oc.created);
    json_decref(out);
    const char cfg2[] = "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
                        "\"metadata\":{\"name\":\"c\"},\"spec\":{\"scope\":{\"level\":\"Platform\"}}}";
    wo.field_manager = "mgr-b";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c", "application/apply-patch+yaml", cfg2,
                               sizeof cfg2 - 1, 0, &wo, &out, &oc, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.message, "mgr-a"));
    err_clear(&err);
    wo.force = 1;
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c", "application/apply-patch+yaml", cfg2,
                               sizeof cfg2 - 1, 0, &wo, &out, &oc, &err), 0);
    assert_string_equal(fx_str(out, "spec.scope.level"), "Platform");
    json_decref(out);
    /* A binding's role never changes, forced or not (RBAC's rule). */
    const char cfg3[] = "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
                        "\"metadata\":{\"name\":\"c\"},\"spec\":{\"roleRef\":{\"name\":\"other\"}}}";
    err_clear(&err);
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c", "application/apply-patch+yaml", cfg3,
                               sizeof cfg3 - 1, 0, &wo, &out, &oc, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "cannot change roleRef"));
    err_clear(&err);

    /* Apply through /status owns status only, in an entry marked so. */
    const char st[] = "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\",\"kind\":\"IAMRoleBinding\","
                      "\"metadata\":{\"name\":\"c\"},\"status\":{\"conditions\":[{\"type\":\"Ready\","
                      "\"status\":\"True\"}]}}";
    wo.field_manager = "ctl";
    wo.force = 0;
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c", "application/apply-patch+yaml", st,
                               sizeof st - 1, 1, &wo, &out, &oc, &err), 0);
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(json_object_get(json_object_get(out, "metadata"), "managedFields"), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "manager")), "ctl")) {
            found = 1;
            assert_string_equal(json_string_value(json_object_get(e, "operation")), "Apply");
            assert_string_equal(json_string_value(json_object_get(e, "subresource")), "status");
        }
    }
    assert_true(found);
    json_decref(out);
}

/* kube's lastAppliedManager: `kubectl apply --server-side` takes over the
 * fields `kubectl apply` (client-side, manager kubectl-client-side-apply)
 * owned, when the object carries its last-applied annotation; a conflict
 * with any other manager still stops it, however many conflicts there
 * are. */
static void test_registry__client_side_apply_takeover(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    err_t err = {0};
    char labels_a[1024] = "", labels_b[1024] = "";
    size_t la = 0, lb = 0;
    for (int i = 0; i < 20; i++) {
        la += (size_t)snprintf(labels_a + la, sizeof labels_a - la, "%s\"l%02d\":\"a\"",
                               i ? "," : "", i);
        lb += (size_t)snprintf(labels_b + lb, sizeof labels_b - lb, "%s\"l%02d\":\"b\"",
                               i ? "," : "", i);
    }
    char txt[2048];
    snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"w\",\"labels\":{%s},\"annotations\":"
             "{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},"
             "\"spec\":{\"displayName\":\"x\"}}", labels_a);
    json_t *body = fx_json(txt), *out = NULL;
    reg_write_opts_t csa = {.field_validation = REG_FV_STRICT,
                            .field_manager = "kubectl-client-side-apply"};
    reg_outcome_t oc = {0};
    assert_int_equal(reg_create(&f->reg, k, NULL, body, &csa, &out, &oc, &err), 0);
    json_decref(body);
    json_decref(out);
    reg_write_opts_t other = {.field_manager = "zz-other"};
    const char mp[] = "{\"spec\":{\"displayName\":\"y\"}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "w", "application/merge-patch+json", mp,
                               sizeof mp - 1, 0, &other, &out, &oc, &err), 0);
    json_decref(out);

    /* 20 conflicts with kubectl-client-side-apply and one with zz-other
     * (named last, past the causes an err_t holds): refused. */
    reg_write_opts_t ssa = {.field_validation = REG_FV_STRICT, .field_manager = "kubectl"};
    snprintf(txt, sizeof txt, "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\","
             "\"kind\":\"Workspace\",\"metadata\":{\"name\":\"w\",\"labels\":{%s}},"
             "\"spec\":{\"displayName\":\"z\"}}", labels_b);
    int rc = reg_patch(&f->reg, k, NULL, "w", "application/apply-patch+yaml", txt, strlen(txt),
                       0, &ssa, &out, &oc, &err);
    if (rc != ERR_CONFLICT)
        fail_msg("apply over zz-other's field: %d %s", rc, err.message);
    assert_non_null(strstr(err.message, "Apply failed with 21 conflicts"));
    json_t *got = NULL;
    err_clear(&err);
    assert_int_equal(reg_get(&f->reg, k, NULL, "w", &got, &err), 0);
    assert_string_equal(fx_str(got, "spec.displayName"), "y");
    assert_string_equal(fx_str(got, "metadata.labels.l00"), "a");
    json_decref(got);

    /* Conflicts with kubectl-client-side-apply alone: taken over. */
    snprintf(txt, sizeof txt, "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\","
             "\"kind\":\"Workspace\",\"metadata\":{\"name\":\"w\",\"labels\":{%s}}}", labels_b);
    err_clear(&err);
    rc = reg_patch(&f->reg, k, NULL, "w", "application/apply-patch+yaml", txt, strlen(txt), 0,
                   &ssa, &out, &oc, &err);
    if (rc)
        fail_msg("takeover: %d %s", rc, err.message);
    assert_string_equal(fx_str(out, "metadata.labels.l19"), "b");
    assert_string_equal(fx_str(out, "spec.displayName"), "y");
    json_decref(out);

    /* Another manager than kubectl takes nothing over. */
    reg_write_opts_t mine = {.field_validation = REG_FV_STRICT, .field_manager = "mine"};
    snprintf(txt, sizeof txt, "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\","
             "\"kind\":\"Workspace\",\"metadata\":{\"name\":\"w\",\"annotations\":"
             "{\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"a\\\":1}\"}}}");
    err_clear(&err);
    assert_int_equal(reg_patch(&f->reg, k, NULL, "w", "application/apply-patch+yaml", txt,
                               strlen(txt), 0, &mine, &out, &oc, &err), ERR_CONFLICT);
}

/* A review is answered as the kind it was created as, which the kind
 * table says, whatever the object's own kind field holds. */
static const reg_kind_t *reviewed_as;

static int record_review(void *arg, const reg_kind_t *k, json_t *obj, err_t *err)
{
    (void)arg;
    (void)obj;
    (void)err;
    reviewed_as = k;
    return 0;
}

static void test_registry__review_kind_from_table(void **state)
{
    fx_t *f = *state;
    f->reg.review = record_review;
    static const char *const resources[] = {"accessreviews", "permissionreviews"};
    static const char *const objects[] = {"{}", "{\"kind\":\"AccessReview\"}",
                                          "{\"kind\":\"PermissionReview\"}",
                                          "{\"kind\":\"apermissionreview\"}"};
    for (size_t i = 0; i < 2; i++) {
        const reg_kind_t *k = kind(IAM, resources[i]);
        err_t err = {0};
        reviewed_as = NULL;
        json_t *o = create(f, k, NULL, "{\"spec\":{}}", REG_FV_STRICT, NULL, &err);
        assert_non_null(o);
        json_decref(o);
        assert_ptr_equal(reviewed_as, k);
        for (size_t j = 0; j < sizeof objects / sizeof objects[0]; j++) {
            json_t *obj = fx_json(objects[j]);
            reviewed_as = NULL;
            assert_int_equal(k->review(&f->reg, obj, &err), 0);
            json_decref(obj);
            if (reviewed_as != k)
                fail_msg("%s with %s answered as %s", resources[i], objects[j],
                         reviewed_as ? reviewed_as->resource : "nothing");
        }
    }
}

static void test_registry__finalizers_and_delete(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    err_t err = {0};
    json_t *o = create(f, k, NULL,
                       "{\"metadata\":{\"name\":\"w\",\"finalizers\":[\"x.io/hold\"]}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    json_decref(o);
    reg_delete_opts_t d = {.grace_period_seconds = -1};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    assert_int_equal(reg_delete(&f->reg, k, NULL, "w", &d, &out, &oc, &err), 0);
    assert_true(oc.accepted);
    assert_non_null(fx_str(out, "metadata.deletionTimestamp"));
    json_decref(out);
    /* Removing the last finalizer of a deleting object deletes it. */
    reg_write_opts_t wo = {.field_manager = "t"};
    const char jp[] = "[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "w", "application/json-patch+json", jp,
                               sizeof jp - 1, 0, &wo, &out, &oc, &err), 0);
    json_decref(out);
    assert_int_equal(reg_get(&f->reg, k, NULL, "w", &out, &err), ERR_NOT_FOUND);
    assert_string_equal(err.message, "workspaces.scope.theriseunion.io \"w\" not found");

    /* Preconditions. */
    err_clear(&err);
    o = create(f, k, NULL, "{\"metadata\":{\"name\":\"w2\"}}", REG_FV_STRICT, NULL, &err);
    json_decref(o);
    d.precondition_uid = "not-the-uid";
    assert_int_equal(reg_delete(&f->reg, k, NULL, "w2", &d, &out, &oc, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.message, "Precondition failed"));
}

/* A Cluster carries its cleanup finalizer from its creation on (once,
 * after any the client names); an update neither adds it back nor keeps
 * a user from removing it; a PUT that empties the finalizers of a
 * deleting Cluster deletes it. */
static void test_registry__cluster_finalizer(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "clusters");
    const char *fin = "finalizer.cluster.theriseunion.io";
    err_t err = {0};
    json_t *o = create(f, k, NULL, "{\"metadata\":{\"name\":\"c1\"}}", REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    const json_t *fins = json_object_get(json_object_get(o, "metadata"), "finalizers");
    assert_int_equal(json_array_size(fins), 1);
    assert_string_equal(json_string_value(json_array_get(fins, 0)), fin);
    json_decref(o);

    o = create(f, k, NULL, "{\"metadata\":{\"name\":\"c2\",\"finalizers\":[\"x.io/a\","
               "\"finalizer.cluster.theriseunion.io\"]}}", REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    assert_int_equal(json_array_size(json_object_get(json_object_get(o, "metadata"), "finalizers")), 2);
    json_decref(o);

    /* The user removes it: it stays removed. */
    reg_write_opts_t wo = {.field_manager = "t"};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    const char mp[] = "{\"metadata\":{\"finalizers\":null}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c1", "application/merge-patch+json", mp,
                               sizeof mp - 1, 0, &wo, &out, &oc, &err), 0);
    assert_null(json_object_get(json_object_get(out, "metadata"), "finalizers"));
    json_decref(out);
    const char sp[] = "{\"spec\":{\"type\":\"virtual\"}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "c1", "application/merge-patch+json", sp,
                               sizeof sp - 1, 0, &wo, &out, &oc, &err), 0);
    assert_null(json_object_get(json_object_get(out, "metadata"), "finalizers"));
    json_decref(out);

    /* Deleting c2 waits; a PUT of it without finalizers ends it. */
    reg_delete_opts_t d = {.grace_period_seconds = -1};
    assert_int_equal(reg_delete(&f->reg, k, NULL, "c2", &d, &out, &oc, &err), 0);
    assert_true(oc.accepted);
    json_object_set_new(json_object_get(out, "metadata"), "finalizers", json_array());
    json_t *gone = NULL;
    assert_int_equal(reg_update(&f->reg, k, NULL, "c2", out, 0, &wo, &gone, &oc, &err), 0);
    json_decref(gone);
    json_decref(out);
    assert_int_equal(reg_get(&f->reg, k, NULL, "c2", &out, &err), ERR_NOT_FOUND);
}

/* The store's errors get kube's words, but never over an error the
 * caller's err_t already holds: the first error wins (err.h). */
static void test_registry__first_error_wins(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    json_t *o = create(f, k, NULL, "{\"metadata\":{\"name\":\"w\"}}", REG_FV_STRICT, NULL,
                       &(err_t){0});
    assert_non_null(o);
    json_decref(o);
    err_t err = {0};
    json_t *out = NULL;
    assert_int_equal(reg_get(&f->reg, k, NULL, "gone", &out, &err), ERR_NOT_FOUND);
    assert_string_equal(err.message, "workspaces.scope.theriseunion.io \"gone\" not found");

    err_clear(&err);
    err_set(&err, ERR_BAD_REQUEST, "earlier");
    assert_int_equal(reg_get(&f->reg, k, NULL, "gone", &out, &err), ERR_NOT_FOUND);
    assert_int_equal(err.code, ERR_BAD_REQUEST);
    assert_string_equal(err.message, "earlier");

    char *raw = NULL;
    size_t len = 0;
    assert_int_equal(reg_get_raw(&f->reg, k, NULL, "gone", &raw, &len, &err), ERR_NOT_FOUND);
    assert_string_equal(err.message, "earlier");

    reg_write_opts_t wo = {.field_manager = "t"};
    reg_outcome_t oc = {0};
    json_t *body = fx_json("{\"metadata\":{\"name\":\"w\"}}");
    assert_int_equal(reg_create(&f->reg, k, NULL, body, &wo, &out, &oc, &err),
                     ERR_ALREADY_EXISTS);
    json_decref(body);
    assert_string_equal(err.message, "earlier");

    reg_delete_opts_t d = {.grace_period_seconds = -1};
    assert_int_equal(reg_delete(&f->reg, k, NULL, "gone", &d, &out, &oc, &err), ERR_NOT_FOUND);
    assert_string_equal(err.message, "earlier");

    const char mp[] = "{\"spec\":{\"manager\":\"x\"}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "gone", "application/merge-patch+json", mp,
                               sizeof mp - 1, 0, &wo, &out, &oc, &err), ERR_NOT_FOUND);
    assert_string_equal(err.message, "earlier");
    assert_int_equal(err.code, ERR_BAD_REQUEST);
}

/* An object stored without metadata.uid (written by an older server, or
 * by hand) fails a uid precondition as kube's does: a conflict naming an
 * empty uid, not a crash. */
static void test_registry__uid_precondition_without_uid(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    const char stored[] = "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\","
                          "\"kind\":\"Workspace\",\"metadata\":{\"name\":\"nouid\"}}";
    err_t err = {0};
    assert_int_equal(store_create(f->store, "/" SCOPE "/workspaces/nouid", stored,
                                  sizeof stored - 1, NULL, &err), 0);
    reg_delete_opts_t d = {.grace_period_seconds = -1, .precondition_uid = "u-1"};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    assert_int_equal(reg_delete(&f->reg, k, NULL, "nouid", &d, &out, &oc, &err), ERR_CONFLICT);
    assert_string_equal(err.message,
                        "Operation cannot be fulfilled on workspaces.scope.theriseunion.io "
                        "\"nouid\": Precondition failed: UID in precondition: u-1, UID in "
                        "object meta: ");
    assert_null(out);
    err_clear(&err);
    assert_int_equal(reg_get(&f->reg, k, NULL, "nouid", &out, &err), 0);
    json_decref(out);
    /* Without the precondition it goes. */
    d.precondition_uid = NULL;
    assert_int_equal(reg_delete(&f->reg, k, NULL, "nouid", &d, &out, &oc, &err), 0);
    json_decref(out);
}

/* Checks a written object: everything the server sets is there, and the
 * response text (when asked for) says the same. */
static void expect_written(const json_t *out, const reg_outcome_t *oc, long n, const char *what)
{
    static const char *const paths[] = {"apiVersion", "kind", "metadata.name", "metadata.uid",
                                        "metadata.creationTimestamp",
                                        "metadata.resourceVersion"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!fx_str(out, paths[i]))
            fail_msg("%s, allocation %ld failing: no %s", what, n, paths[i]);
    if (!json_is_integer(json_object_get(json_object_get(out, "metadata"), "generation")))
        fail_msg("%s, allocation %ld failing: no generation", what, n);
    if (oc->want_body) {
        if (!oc->body)
            fail_msg("%s, allocation %ld failing: success without the body", what, n);
        json_t *sent = json_loadb(oc->body, oc->body_len, 0, NULL);
        if (!json_equal(sent, out))
            fail_msg("%s, allocation %ld failing: the body is not the object", what, n);
        json_decref(sent);
    }
}

/* Writes with one allocation failing in turn (the rest succeeding, so an
 * ignored failure shows): each answers ERR_NOMEM, or success with the
 * whole object, as stored, and its text. */
static void test_registry__write_allocation_failures(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "workspaces");
    reg_write_opts_t wo = {.field_validation = REG_FV_STRICT, .field_manager = "t"};
    err_t err = {0};
    for (long n = 0;; n++) {
        assert_true(n < 20000);
        char txt[200];
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"w%ld\",\"finalizers\":[\"x.io/f\"]},"
                 "\"spec\":{\"manager\":\"a\",\"clusters\":[\"c1\"]}}", n);
        json_t *body = fx_json(txt), *out = NULL;
        reg_outcome_t oc = {.want_body = 1};
        err_clear(&err);
        unsigned long armed = fault_arm(1, n);
        int rc = reg_create(&f->reg, k, NULL, body, &wo, &out, &oc, &err);
        int fired = fault_disarm(armed);
        json_decref(body);
        if (rc) {
            assert_int_equal(rc, ERR_NOMEM);
            assert_int_equal(err.code, ERR_NOMEM);
            mem_free(oc.body);
            continue;
        }
        expect_written(out, &oc, n, "create");
        json_t *got = NULL;
        snprintf(txt, sizeof txt, "w%ld", n);
        assert_int_equal(reg_get(&f->reg, k, NULL, txt, &got, &err), 0);
        if (!json_equal(got, out))
            fail_msg("create, allocation %ld failing: stored is not answered", n);
        json_decref(got);
        json_decref(out);
        mem_free(oc.body);
        if (!fired)
            break;
    }
    /* One object, changed again and again. */
    json_t *o = create(f, k, NULL, "{\"metadata\":{\"name\":\"u\",\"finalizers\":[\"x.io/f\"]},"
                       "\"spec\":{\"manager\":\"a\"}}", REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    json_decref(o);
    for (int op = 0; op < 2; op++) {
        for (long n = 0;; n++) {
            assert_true(n < 20000);
            char mp[200];
            snprintf(mp, sizeof mp, "{\"spec\":{\"manager\":\"m%d-%ld\"}}", op, n);
            json_t *out = NULL, *cur = NULL;
            reg_outcome_t oc = {.want_body = 1};
            err_clear(&err);
            assert_int_equal(reg_get(&f->reg, k, NULL, "u", &cur, &err), 0);
            json_object_set_new(json_object_get(cur, "spec"), "manager", json_string(mp));
            unsigned long armed = fault_arm(1, n);
            int rc = op ? reg_update(&f->reg, k, NULL, "u", cur, 0, &wo, &out, &oc, &err)
                        : reg_patch(&f->reg, k, NULL, "u", "application/merge-patch+json", mp,
                                    strlen(mp), 0, &wo, &out, &oc, &err);
            int fired = fault_disarm(armed);
            json_decref(cur);
            if (rc) {
                assert_int_equal(rc, ERR_NOMEM);
                assert_int_equal(err.code, ERR_NOMEM);
                mem_free(oc.body);
                continue;
            }
            expect_written(out, &oc, n, op ? "update" : "patch");
            json_t *got = NULL;
            assert_int_equal(reg_get(&f->reg, k, NULL, "u", &got, &err), 0);
            if (!json_equal(got, out))
                fail_msg("%s, allocation %ld failing: stored is not answered",
                         op ? "update" : "patch", n);
            json_decref(got);
            json_decref(out);
            mem_free(oc.body);
            if (!fired)
                break;
        }
    }
    /* Deletion held by a finalizer: marked, whole. */
    for (long n = 0;; n++) {
        assert_true(n < 20000);
        char name[32], txt[200];
        snprintf(name, sizeof name, "d%ld", n);
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"%s\",\"finalizers\":[\"x.io/f\"]}}",
                 name);
        json_t *out = create(f, k, NULL, txt, REG_FV_STRICT, NULL, &err);
        assert_non_null(out);
        json_decref(out);
        out = NULL;
        reg_outcome_t oc = {0};
        reg_delete_opts_t d = {.grace_period_seconds = -1};
        err_clear(&err);
        unsigned long armed = fault_arm(1, n);
        int rc = reg_delete(&f->reg, k, NULL, name, &d, &out, &oc, &err);
        int fired = fault_disarm(armed);
        if (rc) {
            assert_int_equal(rc, ERR_NOMEM);
            assert_int_equal(err.code, ERR_NOMEM);
            continue;
        }
        expect_written(out, &oc, n, "delete");
        if (!fx_str(out, "metadata.deletionTimestamp"))
            fail_msg("delete, allocation %ld failing: no deletionTimestamp", n);
        json_t *got = NULL;
        assert_int_equal(reg_get(&f->reg, k, NULL, name, &got, &err), 0);
        if (!json_equal(got, out))
            fail_msg("delete, allocation %ld failing: stored is not answered", n);
        json_decref(got);
        json_decref(out);
        if (!fired)
            break;
    }
}

/* The claim of ApplicationVersion 1.0.0 of application a (reg_unique_t). */
#define APPVER_CLAIM "/app.theriseunion.io/applicationversion-versions/a/1.0.0"

/* 1 when key is stored. */
static int stored(fx_t *f, const char *key)
{
    store_value_t v = {0};
    int rc = store_get(f->store, key, &v, NULL);
    store_value_free(&v);
    return rc == 0;
}

/* A created object has the spec and labels of ref, made from the same
 * body (but its name) with no allocation failing. */
static void expect_whole(const json_t *o, const json_t *ref, const char *what, long n, int once)
{
    const json_t *labels = json_object_get(json_object_get(o, "metadata"), "labels");
    const json_t *ref_labels = json_object_get(json_object_get(ref, "metadata"), "labels");
    if (!json_equal(json_object_get(o, "spec"), json_object_get(ref, "spec")) ||
        !(labels ? json_equal(labels, ref_labels) : !ref_labels))
        fail_msg("%s, allocation %ld%s failing: an object that is not whole", what, n,
                 once ? " alone" : "");
}

/* A create of every stored kind, one allocation failing in turn (alone,
 * so an ignored failure shows, then with every later one): ERR_NOMEM
 * with nothing stored, or the whole object, as a create without failures
 * makes it. The binding rows check what the kind's prepare step adds
 * (the scope labels, a client's one under the prefix replaced). */
static void test_registry__create_each_kind_allocation_failures(void **state)
{
    fx_t *f = *state;
    static const struct {
        const char *group, *resource, *ns, *body;  /* body: a %s for the name */
    } rows[] = {
        {IAM, "roletemplates", NULL, "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"tier\":\"view\"}},"
         "\"spec\":{\"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}]}}"},
        {IAM, "iamroles", NULL, "{\"metadata\":{\"name\":\"%s\"},"
         "\"spec\":{\"scope\":\"Workspace\",\"templateRefs\":[\"t\"]}}"},
        {IAM, "iamrolebindings", NULL, "{\"metadata\":{\"name\":\"%s\",\"labels\":{\"team\":\"red\","
         "\"scope.theriseunion.io/workspace\":\"forged\"}},\"spec\":{\"roleRef\":{\"name\":\"r\"},"
         "\"scope\":{\"level\":\"Workspace\",\"name\":\"ws1\"},"
         "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}]}}"},
        {IAM, "iamrolebindings", NULL, "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"roleRef\":"
         "{\"name\":\"r\"},\"scope\":{\"level\":\"Resource\",\"cluster\":\"edge-2\","
         "\"namespace\":\"shop\"}}}"},
        {SCOPE, "clusters", NULL, "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"type\":\"physical\"}}"},
        {SCOPE, "workspaces", NULL, "{\"metadata\":{\"name\":\"%s\"},"
         "\"spec\":{\"manager\":\"a\",\"clusters\":[\"c1\"]}}"},
        {SCOPE, "nodegroups", NULL, "{\"metadata\":{\"name\":\"%s\"},"
         "\"spec\":{\"cluster\":\"c\",\"nodes\":[\"n1\"]}}"},
        {APP, "applications", NULL, "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"owner\":\"o\"}}"},
        {APP, "applicationversions", NULL, "{\"metadata\":{\"name\":\"%s\"},"
         "\"spec\":{\"application\":\"a\",\"version\":\"1.0.0\"}}"},
        {APP, "applicationdeployments", "shop", "{\"metadata\":{\"name\":\"%s\"},"
         "\"spec\":{\"application\":\"web\"}}"},
        {"ext.theriseunion.io", "components", NULL, "{\"metadata\":{\"name\":\"%s\"},"
         "\"spec\":{\"chart\":\"c\"}}"},
    };
    reg_write_opts_t wo = {.field_validation = REG_FV_STRICT, .field_manager = "t"};
    err_t err = {0};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const reg_kind_t *k = kind(rows[r].group, rows[r].resource);
        char name[64], txt[600];
        snprintf(name, sizeof name, "ref%zu", r);
        snprintf(txt, sizeof txt, rows[r].body, name);
        err_clear(&err);
        json_t *ref = create(f, k, rows[r].ns, txt, REG_FV_STRICT, NULL, &err);
        if (!ref)
            fail_msg("%s: %s", rows[r].resource, err.message);
        const json_t *ref_labels = json_object_get(json_object_get(ref, "metadata"), "labels");
        if (!strcmp(rows[r].resource, "iamrolebindings") &&
            !json_string_value(json_object_get(ref_labels, AUTHZ_LABEL_PREFIX "cluster")))
            fail_msg("row %zu: the binding has no scope labels", r);
        for (int once = 1; once >= 0; once--) {
            for (long n = 0;; n++) {
                assert_true(n < 20000);
                snprintf(name, sizeof name, "k%zu-%d-%ld", r, once, n);
                snprintf(txt, sizeof txt, rows[r].body, name);
                json_t *body = fx_json(txt), *out = NULL;
                reg_outcome_t oc = {.want_body = 1};
                /* Every version here is a.1.0.0: the claim of the last
                 * one dropped, so this one can take it. */
                if (k->unique)
                    store_delete(f->store, APPVER_CLAIM, 0, NULL, NULL, NULL);
                uint64_t rev = store_revision(f->store);
                err_clear(&err);
                unsigned long armed = fault_arm(once, n);
                int rc = reg_create(&f->reg, k, rows[r].ns, body, &wo, &out, &oc, &err);
                int fired = fault_disarm(armed);
                json_decref(body);
                json_t *got = NULL;
                err_t gerr = {0};
                int grc = reg_get(&f->reg, k, rows[r].ns, name, &got, &gerr);
                if (rc) {
                    if (rc != ERR_NOMEM || err.code != ERR_NOMEM)
                        fail_msg("%s, allocation %ld%s failing: %s %s", rows[r].resource, n,
                                 once ? " alone" : "", err_name(rc), err.message);
                    assert_null(out);
                    /* Stored, then the answer could not be made: what was
                     * stored is whole. Else nothing was written. */
                    if (grc != ERR_NOT_FOUND) {
                        assert_int_equal(grc, 0);
                        expect_whole(got, ref, rows[r].resource, n, once);
                        json_decref(got);
                    } else if (!k->unique) {
                        assert_int_equal(store_revision(f->store), rev);
                    } else if (once) {
                        /* The claim taken was given back (when every
                         * later allocation fails too, it may stay behind
                         * as an orphan). */
                        assert_false(stored(f, APPVER_CLAIM));
                    }
                    mem_free(oc.body);
                    continue;
                }
                expect_written(out, &oc, n, rows[r].resource);
                mem_free(oc.body);
                assert_int_equal(grc, 0);
                if (!json_equal(got, out))
                    fail_msg("%s, allocation %ld failing: stored is not answered",
                             rows[r].resource, n);
                expect_whole(out, ref, rows[r].resource, n, once);
                json_decref(got);
                json_decref(out);
                if (!fired)
                    break;
            }
        }
        json_decref(ref);
    }
}

/* The discovery documents with one allocation failing in turn (alone,
 * then with every later one): each is NULL or the document a call
 * without failures makes, never one with an entry or a field left out. */
static void test_registry__discovery_allocation_failures(void **state)
{
    (void)state;
    enum { RESOURCES_IAM, RESOURCES_SCOPE, GROUP, GROUPS, DISCOVERY, OPENAPI_V3, NDOCS };
    static const char *const names[NDOCS] = {"APIResourceList iam", "APIResourceList scope",
                                             "APIGroup", "APIGroupList", "discovery v2",
                                             "OpenAPI v3"};
    for (int d = 0; d < NDOCS; d++) {
        json_t *want = NULL;
        for (int once = -1; once < 2; once++) {
            for (long n = 0;; n++) {
                assert_true(n < 50000);
                /* once -1: no failure, the document to compare with. */
                unsigned long armed = once < 0 ? mem_failures() : fault_arm(once, n);
                json_t *doc = d == RESOURCES_IAM ? reg_resource_list(IAM)
                            : d == RESOURCES_SCOPE ? reg_resource_list(SCOPE)
                            : d == GROUP ? reg_api_group(APP)
                            : d == GROUPS ? reg_api_group_list()
                            : d == DISCOVERY ? reg_discovery_v2("apidiscovery.k8s.io/v2")
                            : reg_openapi_v3("ext.theriseunion.io");
                int fired = fault_disarm(armed);
                if (once < 0) {
                    assert_false(fired);
                    assert_non_null(doc);
                    want = doc;
                    break;
                }
                if (doc && !json_equal(doc, want))
                    fail_msg("%s, allocation %ld%s failing: a document not whole", names[d], n,
                             once ? " alone" : "");
                assert_true(doc || fired);
                json_decref(doc);
                if (!fired)
                    break;
            }
        }
        json_decref(want);
    }
}

static void test_registry__list_selectors_and_pages(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(APP, "applicationdeployments");
    err_t err = {0};
    const char *nss[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            char body[256];
            snprintf(body, sizeof body,
                     "{\"metadata\":{\"name\":\"d%d\",\"labels\":{\"tier\":\"%s\"}},"
                     "\"spec\":{\"application\":\"web\"}}", j, j == 0 ? "front" : "back");
            json_t *o = create(f, k, nss[i], body, REG_FV_STRICT, NULL, &err);
            assert_non_null(o);
            json_decref(o);
        }
    }
    json_t *list = NULL;
    reg_list_opts_t lo = {.label_selector = "tier=front"};
    assert_int_equal(reg_list(&f->reg, k, NULL, &lo, &list, &err), 0);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 3);
    assert_string_equal(fx_str(list, "kind"), "ApplicationDeploymentList");
    json_decref(list);
    reg_list_opts_t lf = {.field_selector = "metadata.namespace=b,metadata.name!=d0"};
    assert_int_equal(reg_list(&f->reg, k, NULL, &lf, &list, &err), 0);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 2);
    json_decref(list);
    reg_list_opts_t bad = {.field_selector = "spec.application=web"};
    assert_int_equal(reg_list(&f->reg, k, NULL, &bad, &list, &err), ERR_BAD_REQUEST);
    err_clear(&err);

    /* Pages of 4 over 9 items: all items once, one resourceVersion. */
    char token[1024] = "";
    int total = 0;
    char rv[24] = "";
    for (int page = 0; page < 5; page++) {
        reg_list_opts_t lp = {.limit = 4, .continue_token = *token ? token : NULL};
        assert_int_equal(reg_list(&f->reg, k, NULL, &lp, &list, &err), 0);
        total += (int)json_array_size(json_object_get(list, "items"));
        if (!*rv)
            snprintf(rv, sizeof rv, "%s", fx_str(list, "metadata.resourceVersion"));
        assert_string_equal(fx_str(list, "metadata.resourceVersion"), rv);
        const char *next = fx_str(list, "metadata.continue");
        if (page == 0)
            assert_int_equal(json_integer_value(json_object_get(json_object_get(list, "metadata"),
                                                                "remainingItemCount")), 5);
        snprintf(token, sizeof token, "%s", next ? next : "");
        json_decref(list);
        if (!*token)
            break;
    }
    assert_int_equal(total, 9);

    /* The raw paths say exactly what the decoded ones say. */
    for (int sel = 0; sel < 2; sel++) {
        reg_list_opts_t lr = {.label_selector = sel ? "tier=back" : NULL, .limit = 5};
        char *raw = NULL;
        size_t rawn = 0;
        assert_int_equal(reg_list_raw(&f->reg, k, NULL, &lr, &raw, &rawn, &err), 0);
        json_t *parsed = json_loadb(raw, rawn, 0, NULL);
        assert_non_null(parsed);
        assert_int_equal(reg_list(&f->reg, k, NULL, &lr, &list, &err), 0);
        assert_true(json_equal(parsed, list));
        json_decref(parsed);
        json_decref(list);
        mem_free(raw);
    }
    char *raw = NULL;
    size_t rawn = 0;
    assert_int_equal(reg_get_raw(&f->reg, k, "b", "d1", &raw, &rawn, &err), 0);
    json_t *parsed = json_loadb(raw, rawn, 0, NULL);
    json_t *got = NULL;
    assert_int_equal(reg_get(&f->reg, k, "b", "d1", &got, &err), 0);
    assert_true(json_equal(parsed, got));
    assert_non_null(fx_str(parsed, "metadata.resourceVersion"));
    json_decref(parsed);
    json_decref(got);
    mem_free(raw);
}

/* Every allocation of a list fails in turn: the list is whole (every item,
 * each with its resourceVersion, and the continue token of a page) or
 * the call fails with ERR_NOMEM and hands back nothing. */
static void test_registry__list_allocation_failures(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    char txt[200];
    /* More than a new JSON array holds, so appends must grow it. */
    for (int i = 0; i < 20; i++) {
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"g%d\"},\"spec\":{\"nodes\":[\"n%d\"]}}",
                 i, i);
        json_t *o = create(f, k, NULL, txt, REG_FV_STRICT, NULL, &err);
        assert_non_null(o);
        json_decref(o);
    }
    reg_list_opts_t opts[] = {{0}, {.limit = 2}, {.label_selector = "!x"}};
    const size_t want[] = {20, 2, 20};
    for (size_t j = 0; j < sizeof opts / sizeof opts[0]; j++) {
        for (int once = 0; once < 2; once++) {
            for (long n = 0;; n++) {
                assert_true(n < 5000);
                json_t *list = NULL;
                err_clear(&err);
                unsigned long armed = fault_arm(once, n);
                int rc = reg_list(&f->reg, k, NULL, &opts[j], &list, &err);
                int fired = fault_disarm(armed);
                if (rc) {
                    assert_int_equal(rc, ERR_NOMEM);
                    assert_int_equal(err.code, ERR_NOMEM);
                    assert_null(list);
                    continue;
                }
                assert_non_null(list);
                json_t *items = json_object_get(list, "items");
                if (json_array_size(items) != want[j])
                    fail_msg("options %zu, allocation %ld%s failing: %zu items", j, n,
                             once ? " alone" : "", json_array_size(items));
                size_t i;
                json_t *it;
                json_array_foreach(items, i, it) {
                    assert_non_null(fx_str(it, "metadata.resourceVersion"));
                }
                assert_non_null(fx_str(list, "metadata.resourceVersion"));
                if (opts[j].limit)
                    assert_non_null(fx_str(list, "metadata.continue"));
                json_decref(list);
                if (!fired)
                    break;
            }
            for (long n = 0;; n++) {
                assert_true(n < 5000);
                char *raw = NULL;
                size_t rawn = 0;
                err_clear(&err);
                unsigned long armed = fault_arm(once, n);
                int rc = reg_list_raw(&f->reg, k, NULL, &opts[j], &raw, &rawn, &err);
                int fired = fault_disarm(armed);
                if (rc) {
                    assert_int_equal(rc, ERR_NOMEM);
                    assert_int_equal(err.code, ERR_NOMEM);
                    continue;
                }
                json_t *parsed = json_loadb(raw, rawn, 0, NULL);
                assert_non_null(parsed);
                assert_int_equal(json_array_size(json_object_get(parsed, "items")), want[j]);
                if (opts[j].limit)
                    assert_non_null(fx_str(parsed, "metadata.continue"));
                json_decref(parsed);
                mem_free(raw);
                if (!fired)
                    break;
            }
            for (long n = 0;; n++) {
                assert_true(n < 5000);
                char *raw = NULL;
                size_t rawn = 0;
                err_clear(&err);
                unsigned long armed = fault_arm(once, n);
                int rc = reg_list_table_raw(&f->reg, k, NULL, &opts[j], "meta.k8s.io/v1",
                                            "Metadata", &raw, &rawn, &err);
                int fired = fault_disarm(armed);
                if (rc) {
                    assert_int_equal(rc, ERR_NOMEM);
                    assert_int_equal(err.code, ERR_NOMEM);
                    continue;
                }
                json_t *parsed = json_loadb(raw, rawn, 0, NULL);
                assert_non_null(parsed);
                json_t *rows = json_object_get(parsed, "rows");
                assert_int_equal(json_array_size(rows), want[j]);
                size_t i;
                json_t *row;
                json_array_foreach(rows, i, row) {
                    /* Name, Cluster, Nodes, Age */
                    assert_int_equal(json_array_size(json_object_get(row, "cells")), 4);
                    assert_non_null(fx_str(row, "object.metadata.name"));
                }
                assert_int_equal(json_array_size(json_object_get(parsed, "columnDefinitions")), 4);
                json_decref(parsed);
                mem_free(raw);
                if (!fired)
                    break;
            }
        }
    }
}

/* deletecollection under allocation failure: either every selected object
 * is gone and the answer lists them all, or the call fails with ERR_NOMEM;
 * never success over part of the selection. */
static void test_registry__delete_collection_allocation_failures(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    json_t *keep = create(f, k, NULL, "{\"metadata\":{\"name\":\"keep\"}}", REG_FV_STRICT, NULL,
                          &err);
    assert_non_null(keep);
    json_decref(keep);
    reg_list_opts_t lo = {.label_selector = "batch=x"};
    reg_delete_opts_t d = {.grace_period_seconds = -1};
    for (int once = 0; once < 2; once++) {
        for (long n = 0;; n++) {
            assert_true(n < 5000);
            char txt[200];
            for (int i = 0; i < 12; i++) {
                snprintf(txt, sizeof txt,
                         "{\"metadata\":{\"name\":\"g%d\",\"labels\":{\"batch\":\"x\"}}}", i);
                err_clear(&err);
                json_t *o = create(f, k, NULL, txt, REG_FV_STRICT, NULL, &err);
                assert_true(o || err.code == ERR_ALREADY_EXISTS);
                json_decref(o);
            }
            json_t *out = NULL;
            err_clear(&err);
            unsigned long armed = fault_arm(once, n);
            int rc = reg_delete_collection(&f->reg, k, NULL, &lo, &d, &out, &err);
            int fired = fault_disarm(armed);
            if (rc) {
                assert_int_equal(rc, ERR_NOMEM);
                assert_int_equal(err.code, ERR_NOMEM);
                assert_null(out);
                continue;
            }
            assert_non_null(out);
            json_t *left = NULL;
            err_clear(&err);
            assert_int_equal(reg_list(&f->reg, k, NULL, &lo, &left, &err), 0);
            if (json_array_size(json_object_get(left, "items")) ||
                json_array_size(json_object_get(out, "items")) != 12)
                fail_msg("allocation %ld%s failing: success with %zu deleted, %zu left", n,
                         once ? " alone" : "", json_array_size(json_object_get(out, "items")),
                         json_array_size(json_object_get(left, "items")));
            json_decref(left);
            json_decref(out);
            if (!fired)
                break;
        }
    }
    json_t *got = NULL;
    assert_int_equal(reg_get(&f->reg, k, NULL, "keep", &got, &err), 0);
    json_decref(got);
}

/* A watch's synthetic ADDED events under allocation failure: all of
 * them, or a final ERR_NOMEM; never a snapshot with objects left out. */
static void test_registry__watch_allocation_failures(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    char txt[200];
    for (int i = 0; i < 20; i++) {
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"g%02d\"}}", i);
        json_decref(create(f, k, NULL, txt, REG_FV_STRICT, NULL, &err));
    }
    reg_watch_opts_t o = {.resource_version = "0"};
    for (int once = 0; once < 2; once++) {
        for (long n = 0;; n++) {
            assert_true(n < 5000);
            reg_watch_t *w = NULL;
            json_t *ev = NULL;
            int added = 0, rc;
            err_clear(&err);
            unsigned long armed = fault_arm(once, n);
            rc = reg_watch_open(&f->reg, k, NULL, &o, &w, &err);
            while (!rc && (rc = reg_watch_next(w, &ev, &err)) == 0) {
                assert_non_null(ev);
                assert_string_equal(fx_str(ev, "type"), "ADDED");
                snprintf(txt, sizeof txt, "g%02d", added++);
                assert_string_equal(fx_str(ev, "object.metadata.name"), txt);
                json_decref(ev);
                ev = NULL;
            }
            int fired = fault_disarm(armed);
            json_decref(ev);
            reg_watch_close(w);
            if (rc == ERR_TIMEOUT) {
                if (added != 20)
                    fail_msg("allocation %ld%s failing: %d of 20 objects", n,
                             once ? " alone" : "", added);
                if (!fired)
                    break;
                continue;
            }
            assert_int_equal(rc, ERR_NOMEM);
            assert_int_equal(err.code, ERR_NOMEM);
        }
    }
}

/* ---- output ---------------------------------------------------------------------- */

static void test_registry__table(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(IAM, "iamrolebindings");
    err_t err = {0};
    json_t *o = create(f, k, NULL,
                       "{\"metadata\":{\"name\":\"alice-ws1\"},\"spec\":{\"roleRef\":{\"name\":\"viewer\"},"
                       "\"scope\":{\"level\":\"Workspace\",\"name\":\"ws1\"},\"subjects\":["
                       "{\"kind\":\"User\",\"name\":\"a\"},{\"kind\":\"User\",\"name\":\"b\"},"
                       "{\"kind\":\"User\",\"name\":\"c\"},{\"kind\":\"Group\",\"name\":\"d\"}]}}",
                       REG_FV_STRICT, NULL, &err);
    assert_non_null(o);
    json_t *t = reg_table(k, o, "meta.k8s.io/v1", NULL);
    assert_string_equal(fx_str(t, "kind"), "Table");
    json_t *defs = json_object_get(t, "columnDefinitions");
    const char *want[] = {"Name", "Role", "Scope", "Subjects", "Age"};
    assert_int_equal(json_array_size(defs), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(defs, i), "name")), want[i]);
    json_t *cells = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "cells");
    assert_string_equal(json_string_value(json_array_get(cells, 0)), "alice-ws1");
    assert_string_equal(json_string_value(json_array_get(cells, 1)), "viewer");
    assert_string_equal(json_string_value(json_array_get(cells, 2)), "Workspace/ws1");
    assert_string_equal(json_string_value(json_array_get(cells, 3)), "a,b,c + 1 more");
    const char *age = json_string_value(json_array_get(cells, 4));
    assert_true(age[strlen(age) - 1] == 's');
    json_t *obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    assert_string_equal(fx_str(obj, "kind"), "PartialObjectMetadata");
    assert_null(json_object_get(obj, "spec"));
    json_decref(t);
    t = reg_table(k, o, "meta.k8s.io/v1beta1", "Object");
    obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object");
    assert_string_equal(fx_str(obj, "spec.roleRef.name"), "viewer");
    assert_string_equal(fx_str(t, "apiVersion"), "meta.k8s.io/v1beta1");
    json_decref(t);
    t = reg_table(k, o, "meta.k8s.io/v1", "None");
    assert_null(json_object_get(json_array_get(json_object_get(t, "rows"), 0), "object"));
    json_decref(t);
    json_decref(o);

    /* -o wide columns carry priority 1. */
    json_t *cl = fx_json("{\"metadata\":{\"name\":\"x\"}}");
    t = reg_table(kind(SCOPE, "clusters"), cl, "meta.k8s.io/v1", NULL);
    json_decref(cl);
    int wide = 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(t, "columnDefinitions"), i, d)
        wide += json_integer_value(json_object_get(d, "priority")) == 1;
    assert_int_equal(wide, 2);
    json_decref(t);
}

static void test_registry__discovery_and_status(void **state)
{
    (void)state;
    json_t *rl = reg_resource_list(IAM);
    int status_entries = 0, found_rb = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(rl, "resources"), i, r) {
        const char *name = fx_str(r, "name");
        status_entries += strstr(name, "/status") != NULL;
        if (!strcmp(name, "iamrolebindings")) {
            found_rb = 1;
            assert_string_equal(json_string_value(json_array_get(json_object_get(r, "shortNames"), 0)), "iamrb");
            assert_int_equal(json_array_size(json_object_get(r, "verbs")), 8);
        }
        if (!strcmp(name, "accessreviews"))
            assert_int_equal(json_array_size(json_object_get(r, "verbs")), 1);
    }
    assert_true(found_rb);
    assert_int_equal(status_entries, 2);  /* iamroles, iamrolebindings */
    json_decref(rl);
    json_t *d = reg_discovery_v2("apidiscovery.k8s.io/v2");
    assert_int_equal(json_array_size(json_object_get(d, "items")), 4);
    json_decref(d);

    err_t e = {0};
    err_set(&e, ERR_INVALID, "bad");
    err_add_cause(&e, "FieldValueRequired", "spec.x", "Required value");
    json_t *st = reg_status(&e, reg_find(IAM, "v1alpha1", "iamroles"), "r1");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 422);
    assert_string_equal(fx_str(st, "reason"), "Invalid");
    assert_string_equal(fx_str(st, "details.name"), "r1");
    assert_string_equal(fx_str(st, "details.group"), IAM);
    /* NewInvalid names the Kind in details (other errors the resource). */
    assert_string_equal(fx_str(st, "details.kind"), "IAMRole");
    json_decref(st);
}

static void test_registry__watch_label_transitions(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    reg_watch_t *w = NULL;
    char rv[24];
    snprintf(rv, sizeof rv, "%llu", (unsigned long long)store_revision(f->store));
    reg_watch_opts_t o = {.label_selector = "env=prod", .resource_version = rv};
    assert_int_equal(reg_watch_open(&f->reg, k, NULL, &o, &w, &err), 0);
    json_t *obj = create(f, k, NULL, "{\"metadata\":{\"name\":\"n\",\"labels\":{\"env\":\"dev\"}}}",
                         REG_FV_STRICT, NULL, &err);
    json_decref(obj);
    reg_write_opts_t wo = {.field_manager = "t"};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    const char to_prod[] = "{\"metadata\":{\"labels\":{\"env\":\"prod\"}}}";
    const char to_dev[] = "{\"metadata\":{\"labels\":{\"env\":\"dev\"}}}";
    reg_patch(&f->reg, k, NULL, "n", "application/merge-patch+json", to_prod, sizeof to_prod - 1, 0,
              &wo, &out, &oc, &err);
    json_decref(out);
    reg_patch(&f->reg, k, NULL, "n", "application/merge-patch+json", to_dev, sizeof to_dev - 1, 0,
              &wo, &out, &oc, &err);
    json_decref(out);
    /* dev (filtered) -> prod: ADDED; prod -> dev: DELETED. */
    const char *want[] = {"ADDED", "DELETED"};
    for (int i = 0; i < 2; i++) {
        json_t *ev = NULL;
        assert_int_equal(reg_watch_next(w, &ev, &err), 0);
        assert_string_equal(fx_str(ev, "type"), want[i]);
        json_decref(ev);
    }
    json_t *ev = NULL;
    assert_int_equal(reg_watch_next(w, &ev, &err), ERR_TIMEOUT);
    reg_watch_close(w);

    /* resourceVersion 0: synthetic ADDED for what exists. */
    reg_watch_opts_t o0 = {.resource_version = "0"};
    assert_int_equal(reg_watch_open(&f->reg, k, NULL, &o0, &w, &err), 0);
    assert_int_equal(reg_watch_next(w, &ev, &err), 0);
    assert_string_equal(fx_str(ev, "type"), "ADDED");
    assert_string_equal(fx_str(ev, "object.metadata.name"), "n");
    json_decref(ev);
    reg_watch_close(w);
}

/* A watch from resourceVersion 0, however spelled ("0", "00"), starts
 * with the current state, as kube's watch cache decides on the parsed
 * number; a list reads the same numbers the same way. */
static void test_registry__watch_rv_zero_spellings(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    json_decref(create(f, k, NULL, "{\"metadata\":{\"name\":\"n\",\"labels\":{\"v\":\"1\"}}}",
                       REG_FV_STRICT, NULL, &err));
    reg_write_opts_t wo = {.field_manager = "t"};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    const char mp[] = "{\"metadata\":{\"labels\":{\"v\":\"2\"}}}";
    assert_int_equal(reg_patch(&f->reg, k, NULL, "n", "application/merge-patch+json", mp,
                               sizeof mp - 1, 0, &wo, &out, &oc, &err), 0);
    json_decref(out);
    static const char *const spellings[] = {"0", "00", "000"};
    for (size_t i = 0; i < 3; i++) {
        reg_watch_t *w = NULL;
        json_t *ev = NULL;
        reg_watch_opts_t o = {.resource_version = spellings[i]};
        assert_int_equal(reg_watch_open(&f->reg, k, NULL, &o, &w, &err), 0);
        assert_int_equal(reg_watch_next(w, &ev, &err), 0);
        assert_string_equal(fx_str(ev, "type"), "ADDED");
        if (strcmp(fx_str(ev, "object.metadata.labels.v"), "2"))
            fail_msg("resourceVersion \"%s\": history replayed instead of the current state",
                     spellings[i]);
        json_decref(ev);
        assert_int_equal(reg_watch_next(w, &ev, &err), ERR_TIMEOUT);
        reg_watch_close(w);
        json_t *list = NULL;
        reg_list_opts_t lo = {.resource_version = spellings[i]};
        assert_int_equal(reg_list(&f->reg, k, NULL, &lo, &list, &err), 0);
        assert_int_equal(json_array_size(json_object_get(list, "items")), 1);
        json_decref(list);
    }
    /* The same selectors, the same field names, the same words. */
    reg_watch_t *w = NULL;
    json_t *list = NULL;
    reg_watch_opts_t bad_w = {.field_selector = "spec.cluster=c"};
    reg_list_opts_t bad_l = {.field_selector = "spec.cluster=c"};
    err_t we = {0}, le = {0};
    assert_int_equal(reg_watch_open(&f->reg, k, NULL, &bad_w, &w, &we), ERR_BAD_REQUEST);
    assert_int_equal(reg_list(&f->reg, k, NULL, &bad_l, &list, &le), ERR_BAD_REQUEST);
    assert_string_equal(we.message, le.message);
    assert_string_equal(we.message, "field label not supported: spec.cluster");
}

/* A snapshot larger than a page: every matching object once, in key
 * order, then what changed while the client was reading it; and a
 * snapshot that history stops reaching meanwhile ends with Expired. */
static void test_registry__watch_initial_pages(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    char txt[200];
    for (int i = 0; i < 700; i++) {
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"n%04d\",\"labels\":{\"odd\":\"%s\"}}}",
                 i, i % 2 ? "yes" : "no");
        json_decref(create(f, k, NULL, txt, REG_FV_STRICT, NULL, &err));
    }
    reg_watch_t *w = NULL;
    reg_watch_opts_t o = {.resource_version = "0", .label_selector = "odd=yes",
                          .send_initial_events = 1, .allow_bookmarks = 1};
    assert_int_equal(reg_watch_open(&f->reg, k, NULL, &o, &w, &err), 0);
    json_t *ev = NULL;
    /* Two changes after the snapshot, before the client has read it. */
    json_decref(create(f, k, NULL, "{\"metadata\":{\"name\":\"late\",\"labels\":{\"odd\":\"yes\"}}}",
                       REG_FV_STRICT, NULL, &err));
    reg_delete_opts_t d = {.grace_period_seconds = -1};
    json_t *gone = NULL;
    reg_outcome_t doc = {0};
    assert_int_equal(reg_delete(&f->reg, k, NULL, "n0001", &d, &gone, &doc, &err), 0);
    json_decref(gone);
    for (int i = 1; i < 700; i += 2) {
        assert_int_equal(reg_watch_next(w, &ev, &err), 0);
        assert_string_equal(fx_str(ev, "type"), "ADDED");
        snprintf(txt, sizeof txt, "n%04d", i);
        assert_string_equal(fx_str(ev, "object.metadata.name"), txt);
        json_decref(ev);
    }
    assert_int_equal(reg_watch_next(w, &ev, &err), 0);
    assert_string_equal(fx_str(ev, "type"), "BOOKMARK");
    json_decref(ev);
    const char *after[][2] = {{"ADDED", "late"}, {"DELETED", "n0001"}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(reg_watch_next(w, &ev, &err), 0);
        assert_string_equal(fx_str(ev, "type"), after[i][0]);
        assert_string_equal(fx_str(ev, "object.metadata.name"), after[i][1]);
        json_decref(ev);
    }
    assert_int_equal(reg_watch_next(w, &ev, &err), ERR_TIMEOUT);
    reg_watch_close(w);

    /* History compacted past the snapshot while the first page is read. */
    reg_watch_opts_t all = {.resource_version = "0"};
    assert_int_equal(reg_watch_open(&f->reg, k, NULL, &all, &w, &err), 0);
    json_decref(create(f, k, NULL, "{\"metadata\":{\"name\":\"later\"}}", REG_FV_STRICT, NULL,
                       &err));
    assert_int_equal(store_compact(f->store, store_revision(f->store), &err), 0);
    int added = 0, rc;
    while ((rc = reg_watch_next(w, &ev, &err)) == 0 && !strcmp(fx_str(ev, "type"), "ADDED")) {
        added++;
        json_decref(ev);
    }
    /* The ERROR event comes with the code that ends the stream. */
    assert_int_equal(rc, ERR_EXPIRED);
    assert_non_null(ev);
    assert_string_equal(fx_str(ev, "type"), "ERROR");
    assert_string_equal(fx_str(ev, "object.reason"), "Expired");
    assert_true(added >= 256 && added < 700);
    json_decref(ev);
    reg_watch_close(w);
}

/* A list's Table written row by row is the Table of the decoded list:
 * every includeObject, with a selector and with a page. */
static void test_registry__table_list_rows(void **state)
{
    fx_t *f = *state;
    const reg_kind_t *k = kind(SCOPE, "nodegroups");
    err_t err = {0};
    char txt[200];
    for (int i = 0; i < 7; i++) {
        snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"g%d\",\"labels\":{\"even\":\"%s\"}},"
                 "\"spec\":{\"nodes\":[\"n%d\"]}}", i, i % 2 ? "no" : "yes", i);
        json_decref(create(f, k, NULL, txt, REG_FV_STRICT, NULL, &err));
    }
    static const char *const includes[] = {"None", "Metadata", "Object", ""};
    reg_list_opts_t opts[] = {{0}, {.label_selector = "even=yes"}, {.limit = 3}};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 3; j++) {
            json_t *list = NULL;
            assert_int_equal(reg_list(&f->reg, k, NULL, &opts[j], &list, &err), 0);
            json_t *want = reg_table(k, list, "meta.k8s.io/v1", includes[i]);
            char *body = NULL;
            size_t len = 0;
            assert_int_equal(reg_list_table_raw(&f->reg, k, NULL, &opts[j], "meta.k8s.io/v1",
                                                includes[i], &body, &len, &err), 0);
            json_t *got = json_loadb(body, len, 0, NULL);
            assert_non_null(got);
            /* Age, the last cell, may tick between the two */
            json_t *tables[] = {got, want};
            for (int t = 0; t < 2; t++) {
                size_t r;
                json_t *row;
                json_array_foreach(json_object_get(tables[t], "rows"), r, row) {
                    json_t *cells = json_object_get(row, "cells");
                    json_array_remove(cells, json_array_size(cells) - 1);
                }
            }
            if (!json_equal(got, want)) {
                char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
                fail_msg("include %s, options %zu: got %.*s want %s", includes[i], j, (int)len, body, w);
            }
            json_decref(got);
            json_decref(want);
            json_decref(list);
            mem_free(body);
        }
    }
}

/* ---- documentation (kubectl explain) ------------------------------------ */

/* Fails naming kind and path when a property of s (recursively, through
 * properties, items and additionalProperties) has no description; an
 * object reached through items or additionalProperties needs one too when
 * it has properties of its own. */
static void expect_documented(const char *kind, const json_t *s, const char *path, int need)
{
    const char *d = json_string_value(json_object_get(s, "description"));
    if (need && (!d || !*d))
        fail_msg("%s: %s has no description", kind, *path ? path : "(the kind)");
    const json_t *props = json_object_get(s, "properties");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)props, key, v) {
        char p[512];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
        expect_documented(kind, v, p, 1);
    }
    const json_t *items = json_object_get(s, "items");
    if (json_is_object(items)) {
        char p[512];
        snprintf(p, sizeof p, "%s[]", path);
        expect_documented(kind, items, p, json_object_get(items, "properties") != NULL);
    }
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (json_is_object(addl)) {
        char p[512];
        snprintf(p, sizeof p, "%s{}", path);
        expect_documented(kind, addl, p, json_object_get(addl, "properties") != NULL);
    }
}

static void test_registry__every_field_documented(void **state)
{
    (void)state;
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        const json_t *s;
        assert_int_equal(reg_schema(k, &s, NULL), 0);
        if (!k->description || strlen(k->description) < 40)
            fail_msg("%s: the kind has no description of its own", k->kind);
        assert_string_equal(json_string_value(json_object_get(s, "description")), k->description);
        expect_documented(k->kind, s, "", 1);
        /* spec and status are there to be documented. */
        const json_t *props = json_object_get(s, "properties");
        assert_non_null(json_object_get(props, "spec"));
        if (k->has_status || k->create_only)
            assert_non_null(json_object_get(props, "status"));
    }
}

/* The schema at a dotted path of properties below s, going through
 * array items; NULL when there is none. */
static const json_t *schema_at(const json_t *s, const char *path)
{
    char seg[128];
    while (s && *path) {
        size_t n = strcspn(path, ".");
        snprintf(seg, sizeof seg, "%.*s", (int)n, path);
        while (json_is_object(json_object_get(s, "items")))
            s = json_object_get(s, "items");
        s = json_object_get(json_object_get(s, "properties"), seg);
        path += n + (path[n] == '.');
    }
    return s;
}

/* A nested field of each kind, as a user would explain it. */
static const struct {
    const char *resource, *path;
} explained[] = {
    {"roletemplates", "spec.rules.verbs"},
    {"iamroles", "status.aggregatedRules"},
    {"iamrolebindings", "spec.scope.cluster"},
    {"accessreviews", "spec.resourceAttributes.verb"},
    {"permissionreviews", "spec.scope.level"},
    {"clusters", "spec.connection.kubeconfig"},
    {"workspaces", "spec.namespaces.cluster"},
    {"nodegroups", "status.conditions.lastTransitionTime"},
    {"applications", "status.latestVersion"},
    {"applicationversions", "spec.version"},
    {"applicationdeployments", "status.topologies.phase"},
    {"components", "status.phase"},
    {NULL, NULL},
};

/* The definition of k in defs carries k's description and the
 * documentation of its spot-checked field (counted here). */
static size_t explained_checked;

static void expect_definition(const json_t *defs, const reg_kind_t *k, const char *def_prefix)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", def_prefix, k->kind);
    const json_t *d = json_object_get(defs, name);
    if (!d)
        fail_msg("no definition %s", name);
    assert_string_equal(json_string_value(json_object_get(d, "description")), k->description);
    for (size_t i = 0; explained[i].resource; i++) {
        if (strcmp(explained[i].resource, k->resource))
            continue;
        const json_t *f = schema_at(d, explained[i].path);
        const char *desc = json_string_value(json_object_get(f, "description"));
        if (!desc || !*desc)
            fail_msg("%s: %s is undocumented", name, explained[i].path);
        explained_checked++;
    }
    char list[300];
    snprintf(list, sizeof list, "%sList", name);
    const json_t *l = json_object_get(defs, list);
    if (!k->create_only)
        expect_documented(list, l, "", 1);
}

/* "iam.theriseunion.io" -> "io.theriseunion.iam.v1alpha1" */
static void def_prefix(const char *group, char *buf, size_t n)
{
    const char *dot = strchr(group, '.');
    snprintf(buf, n, "io.theriseunion.%.*s.v1alpha1", (int)(dot - group), group);
}

static void test_registry__openapi_documents_fields(void **state)
{
    (void)state;
    /* Every kind appears in one group's v3 document and in the v2 one. */
    size_t seen = 0;
    json_t *v2 = reg_openapi_v2();
    assert_non_null(v2);
    for (size_t g = 0; reg_groups[g]; g++) {
        json_t *v3 = reg_openapi_v3(reg_groups[g]);
        assert_non_null(v3);
        const json_t *defs = json_object_get(json_object_get(v3, "components"), "schemas");
        char prefix[128];
        def_prefix(reg_groups[g], prefix, sizeof prefix);
        for (size_t i = 0; reg_kinds[i]; i++) {
            if (strcmp(reg_kinds[i]->group, reg_groups[g]))
                continue;
            expect_definition(defs, reg_kinds[i], prefix);
            expect_definition(json_object_get(v2, "definitions"), reg_kinds[i], prefix);
            seen++;
        }
        json_decref(v3);
    }
    /* Each kind once per document, and every row of explained[] checked. */
    assert_int_equal(seen, sizeof explained / sizeof explained[0] - 1);
    assert_int_equal(explained_checked, 2 * seen);

    /* Formats and patterns that document checks. */
    const json_t *defs = json_object_get(v2, "definitions");
    const json_t *av = json_object_get(defs, "io.theriseunion.app.v1alpha1.ApplicationVersion");
    const char *re = json_string_value(json_object_get(schema_at(av, "spec.version"), "pattern"));
    assert_non_null(re);
    assert_string_equal(re, "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)"
                            "(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)"
                            "(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                            "(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$");
    const char *times[] = {"metadata.creationTimestamp", "metadata.deletionTimestamp",
                           "metadata.managedFields.time", "status.conditions.lastTransitionTime"};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        assert_string_equal(json_string_value(json_object_get(schema_at(av, times[i]), "format")),
                            "date-time");
    json_decref(v2);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        /* First: it needs the schemas not built yet. */
        FX_TEST(test_registry__schema_failure_is_an_error),
        FX_TEST(test_registry__create_sets_server_fields),
        FX_TEST(test_registry__watch_initial_pages),
        FX_TEST(test_registry__table_list_rows),
        FX_TEST(test_registry__generate_name),
        FX_TEST(test_registry__validation_errors),
        FX_TEST(test_registry__name_messages),
        FX_TEST(test_registry__watch_rv_zero_spellings),
        FX_TEST(test_registry__unknown_fields_warn_and_ignore),
        FX_TEST(test_registry__duplicate_keys),
        FX_TEST(test_registry__update_rules),
        FX_TEST(test_registry__racing_puts_with_preconditions),
        FX_TEST(test_registry__stored_form),
        FX_TEST(test_registry__patches),
        FX_TEST(test_registry__name_must_survive_update),
        FX_TEST(test_registry__create_with_resource_version),
        FX_TEST(test_registry__finalizers_and_delete),
        FX_TEST(test_registry__cluster_finalizer),
        FX_TEST(test_registry__first_error_wins),
        FX_TEST(test_registry__client_side_apply_takeover),
        FX_TEST(test_registry__review_kind_from_table),
        FX_TEST(test_registry__uid_precondition_without_uid),
        FX_TEST(test_registry__write_allocation_failures),
        FX_TEST(test_registry__create_each_kind_allocation_failures),
        FX_TEST(test_registry__discovery_allocation_failures),
        FX_TEST(test_registry__list_selectors_and_pages),
        FX_TEST(test_registry__list_allocation_failures),
        FX_TEST(test_registry__delete_collection_allocation_failures),
        FX_TEST(test_registry__watch_allocation_failures),
        FX_TEST(test_registry__table),
        FX_TEST(test_registry__discovery_and_status),
        FX_TEST(test_registry__watch_label_transitions),
        FX_TEST(test_registry__every_field_documented),
        FX_TEST(test_registry__openapi_documents_fields),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
