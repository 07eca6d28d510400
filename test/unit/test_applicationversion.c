/* Unit tests of the ApplicationVersion rules of registry/: the phase
 * (Draft on create, moved only through /status along Draft -> Submitted
 * -> Approved or Rejected), the spec frozen once submitted, semver, and
 * spec.version unique per application through a claim in the store
 * (registry.h, reg_unique_t), under concurrency too. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../registry/registry.h"
#include "../../lib/mem.h"
#include "fixture.h"

#define CLAIMS "/app.theriseunion.io/applicationversion-versions/"

static const reg_kind_t *appver(void)
{
    const reg_kind_t *k = reg_find("app.theriseunion.io", "v1alpha1", "applicationversions");
    assert_non_null(k);
    return k;
}

/* Creates version name of app; 0 or the error, its message in err. */
static int mk(fx_t *f, const char *name, const char *app, const char *version, int dry_run,
              err_t *err)
{
    char txt[512];
    snprintf(txt, sizeof txt, "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"application\":\"%s\","
             "\"version\":\"%s\",\"type\":\"helm\"},\"status\":{\"phase\":\"Approved\"}}",
             name, app, version);
    json_t *body = fx_json(txt), *out = NULL;
    reg_write_opts_t o = {.field_manager = "test", .dry_run = dry_run};
    reg_outcome_t oc = {0};
    err_clear(err);
    int rc = reg_create(&f->reg, appver(), NULL, body, &o, &out, &oc, err);
    json_decref(body);
    json_decref(out);
    mem_free(oc.body);
    return rc;
}

/* A merge patch of name (status: through /status); 0 or the error. */
static int patch(fx_t *f, const char *name, const char *merge, int status, err_t *err)
{
    reg_write_opts_t o = {.field_manager = "test"};
    reg_outcome_t oc = {0};
    json_t *out = NULL;
    err_clear(err);
    int rc = reg_patch(&f->reg, appver(), NULL, name, "application/merge-patch+json", merge,
                       strlen(merge), status, &o, &out, &oc, err);
    json_decref(out);
    mem_free(oc.body);
    return rc;
}

/* A PUT of the /status subresource setting the phase; 0 or the error. */
static int put_phase(fx_t *f, const char *name, const char *phase, err_t *err)
{
    json_t *cur = NULL, *out = NULL;
    err_clear(err);
    assert_int_equal(reg_get(&f->reg, appver(), NULL, name, &cur, err), 0);
    json_object_set_new(json_object_get(cur, "status"), "phase", json_string(phase));
    reg_write_opts_t o = {.field_manager = "test"};
    reg_outcome_t oc = {0};
    int rc = reg_update(&f->reg, appver(), NULL, name, cur, 1, &o, &out, &oc, err);
    json_decref(cur);
    json_decref(out);
    mem_free(oc.body);
    return rc;
}

static char *phase_of(fx_t *f, const char *name)
{
    static char buf[32];
    json_t *o = NULL;
    err_t err = {0};
    assert_int_equal(reg_get(&f->reg, appver(), NULL, name, &o, &err), 0);
    snprintf(buf, sizeof buf, "%s", fx_str(o, "status.phase"));
    json_decref(o);
    return buf;
}

static int phase_patch(fx_t *f, const char *name, const char *phase, err_t *err)
{
    char p[128];
    snprintf(p, sizeof p, "{\"status\":{\"phase\":\"%s\"}}", phase);
    return patch(f, name, p, 1, err);
}

static int stored(fx_t *f, const char *key)
{
    store_value_t v = {0};
    int rc = store_get(f->store, key, &v, NULL);
    store_value_free(&v);
    return rc == 0;
}

/* ---- phase ----------------------------------------------------------------- */

/* Whatever the body says, a new version is a Draft; the main resource
 * never moves the phase. */
static void test_applicationversion__draft_on_create(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    assert_int_equal(mk(f, "web-1", "web", "1.0.0", 0, &err), 0);
    assert_string_equal(phase_of(f, "web-1"), "Draft");
    assert_int_equal(patch(f, "web-1", "{\"status\":{\"phase\":\"Submitted\"}}", 0, &err), 0);
    assert_string_equal(phase_of(f, "web-1"), "Draft");
}

/* Each move from each phase, through PATCH and PUT of /status. */
static void test_applicationversion__transitions(void **state)
{
    fx_t *f = *state;
    static const struct {
        const char *path;        /* the moves that reach from, comma-separated */
        const char *from, *to;
        int ok;
    } rows[] = {
        {"", "Draft", "Draft", 1},
        {"", "Draft", "Submitted", 1},
        {"", "Draft", "Approved", 0},
        {"", "Draft", "Rejected", 0},
        {"Submitted", "Submitted", "Submitted", 1},
        {"Submitted", "Submitted", "Approved", 1},
        {"Submitted", "Submitted", "Rejected", 1},
        {"Submitted", "Submitted", "Draft", 0},
        {"Submitted,Approved", "Approved", "Approved", 1},
        {"Submitted,Approved", "Approved", "Draft", 0},
        {"Submitted,Approved", "Approved", "Submitted", 0},
        {"Submitted,Approved", "Approved", "Rejected", 0},
        {"Submitted,Rejected", "Rejected", "Approved", 0},
        {"Submitted,Rejected", "Rejected", "Submitted", 0},
        {"Submitted,Rejected", "Rejected", "Draft", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (int put = 0; put < 2; put++) {
            char name[32], version[32], path[64];
            snprintf(name, sizeof name, "v-%zu-%d", i, put);
            snprintf(version, sizeof version, "1.%zu.%d", i, put);
            err_t err = {0};
            assert_int_equal(mk(f, name, "web", version, 0, &err), 0);
            snprintf(path, sizeof path, "%s", rows[i].path);
            for (char *save = NULL, *p = strtok_r(path, ",", &save); p;
                 p = strtok_r(NULL, ",", &save))
                assert_int_equal(phase_patch(f, name, p, &err), 0);
            assert_string_equal(phase_of(f, name), rows[i].from);
            int rc = put ? put_phase(f, name, rows[i].to, &err)
                         : phase_patch(f, name, rows[i].to, &err);
            if (rows[i].ok) {
                if (rc)
                    fail_msg("%s -> %s: %s", rows[i].from, rows[i].to, err.message);
                assert_string_equal(phase_of(f, name), rows[i].to);
                continue;
            }
            assert_int_equal(rc, ERR_INVALID);
            char want[256];
            snprintf(want, sizeof want, "status.phase: Invalid value: \"%s\": may not move from "
                     "%s to %s", rows[i].to, rows[i].from, rows[i].to);
            if (!strstr(err.message, want))
                fail_msg("%s -> %s: %s", rows[i].from, rows[i].to, err.message);
            assert_int_equal(err.ncauses, 1);
            assert_string_equal(err.causes[0].field, "status.phase");
            assert_string_equal(phase_of(f, name), rows[i].from);
        }
    }
}

/* A Draft's spec changes; once submitted it is frozen, metadata not. */
static void test_applicationversion__spec_immutable_once_submitted(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    assert_int_equal(mk(f, "web-1", "web", "1.0.0", 0, &err), 0);
    assert_int_equal(patch(f, "web-1", "{\"spec\":{\"type\":\"workload\"}}", 0, &err), 0);
    assert_int_equal(phase_patch(f, "web-1", "Submitted", &err), 0);
    assert_int_equal(patch(f, "web-1", "{\"spec\":{\"type\":\"helm\"}}", 0, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "spec: Forbidden: is immutable once submitted"));
    assert_int_equal(patch(f, "web-1", "{\"spec\":{\"version\":\"1.0.1\"}}", 0, &err),
                     ERR_INVALID);
    assert_int_equal(patch(f, "web-1", "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", 0, &err), 0);
    assert_int_equal(phase_patch(f, "web-1", "Approved", &err), 0);
    assert_int_equal(patch(f, "web-1", "{\"spec\":{\"application\":\"shop\"}}", 0, &err),
                     ERR_INVALID);
}

/* ---- spec.version ------------------------------------------------------------ */

static void test_applicationversion__semver(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    assert_int_equal(mk(f, "web-v", "web", "v1.2.0", 0, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "spec.version: Invalid value: \"v1.2.0\": must be a "
                                        "semantic version without a leading \"v\""));
    assert_int_equal(mk(f, "web-z", "web", "1.02.0", 0, &err), ERR_INVALID);
    assert_int_equal(mk(f, "web-p", "web", "1.2", 0, &err), ERR_INVALID);
    assert_int_equal(mk(f, "web-a", "Web/x", "1.2.0", 0, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "spec.application: Invalid value: \"Web/x\""));
    assert_int_equal(mk(f, "web-ok", "web", "1.2.0-rc.1+build.5", 0, &err), 0);
    assert_false(stored(f, CLAIMS "web/v1.2.0"));
}

/* A version is unique per application; the 422 names the holder. */
static void test_applicationversion__duplicate(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    assert_int_equal(mk(f, "web-a", "web", "1.2.0", 0, &err), 0);
    assert_int_equal(mk(f, "web-b", "web", "1.2.0", 0, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "ApplicationVersion.app.theriseunion.io \"web-b\" is "
                                        "invalid: spec.version: Duplicate value: \"1.2.0\": "
                                        "already used by ApplicationVersion \"web-a\""));
    assert_string_equal(err.causes[0].type, "FieldValueDuplicate");
    assert_int_equal(mk(f, "shop-a", "shop", "1.2.0", 0, &err), 0);
    assert_int_equal(mk(f, "web-c", "web", "1.2.1", 0, &err), 0);
    /* A Draft moved onto a taken version is refused too; the name in use
     * gives back the claim it took for a free one. */
    assert_int_equal(patch(f, "web-c", "{\"spec\":{\"version\":\"1.2.0\"}}", 0, &err),
                     ERR_INVALID);
    assert_int_equal(mk(f, "web-a", "web", "9.9.9", 0, &err), ERR_ALREADY_EXISTS);
    assert_false(stored(f, CLAIMS "web/9.9.9"));
    /* The claims are in no list of the kind. */
    json_t *list = NULL;
    reg_list_opts_t lo = {0};
    assert_int_equal(reg_list(&f->reg, appver(), NULL, &lo, &list, &err), 0);
    assert_int_equal(json_array_size(json_object_get(list, "items")), 3);
    json_decref(list);
}

typedef struct racer {
    fx_t *f;
    int i, rc;
    pthread_barrier_t *go;
} racer_t;

static void *race(void *arg)
{
    racer_t *r = arg;
    char name[32];
    snprintf(name, sizeof name, "racer-%d", r->i);
    err_t err;
    pthread_barrier_wait(r->go);
    r->rc = mk(r->f, name, "web", "2.0.0", 0, &err);
    return NULL;
}

/* Eight creates of one version under different names at once: exactly
 * one wins, the others are told it is taken. */
static void test_applicationversion__duplicate_race(void **state)
{
    fx_t *f = *state;
    enum { N = 8 };
    for (int round = 0; round < 5; round++) {
        pthread_t t[N];
        racer_t r[N];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, N);
        for (int i = 0; i < N; i++) {
            r[i] = (racer_t){.f = f, .i = i, .go = &go};
            assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        int won = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            if (!r[i].rc)
                won++;
            else
                assert_int_equal(r[i].rc, ERR_INVALID);
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(won, 1);
        /* Clear the field for the next round. */
        reg_delete_opts_t d = {.grace_period_seconds = -1};
        reg_list_opts_t lo = {0};
        json_t *out = NULL;
        err_t err = {0};
        assert_int_equal(reg_delete_collection(&f->reg, appver(), NULL, &lo, &d, &out, &err), 0);
        assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
        json_decref(out);
        assert_false(stored(f, CLAIMS "web/2.0.0"));
    }
}

/* Deleting a version, or moving a Draft to another, frees its claim. */
static void test_applicationversion__released(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    assert_int_equal(mk(f, "web-a", "web", "1.0.0", 0, &err), 0);
    assert_true(stored(f, CLAIMS "web/1.0.0"));
    reg_delete_opts_t d = {.grace_period_seconds = -1};
    json_t *out = NULL;
    reg_outcome_t oc = {0};
    assert_int_equal(reg_delete(&f->reg, appver(), NULL, "web-a", &d, &out, &oc, &err), 0);
    json_decref(out);
    assert_false(stored(f, CLAIMS "web/1.0.0"));
    assert_int_equal(mk(f, "web-b", "web", "1.0.0", 0, &err), 0);
    assert_int_equal(patch(f, "web-b", "{\"spec\":{\"version\":\"1.1.0\"}}", 0, &err), 0);
    assert_false(stored(f, CLAIMS "web/1.0.0"));
    assert_int_equal(mk(f, "web-c", "web", "1.0.0", 0, &err), 0);
    assert_int_equal(mk(f, "web-d", "web", "1.1.0", 0, &err), ERR_INVALID);
    /* Held by a finalizer, the version keeps its claim until it goes. */
    assert_int_equal(patch(f, "web-c", "{\"metadata\":{\"finalizers\":[\"x/y\"]}}", 0, &err), 0);
    out = NULL;
    assert_int_equal(reg_delete(&f->reg, appver(), NULL, "web-c", &d, &out, &oc, &err), 0);
    json_decref(out);
    assert_int_equal(mk(f, "web-e", "web", "1.0.0", 0, &err), ERR_INVALID);
    assert_int_equal(patch(f, "web-c", "{\"metadata\":{\"finalizers\":null}}", 0, &err), 0);
    assert_false(stored(f, CLAIMS "web/1.0.0"));
    assert_int_equal(mk(f, "web-e", "web", "1.0.0", 0, &err), 0);
}

/* Dry run checks the claim and keeps nothing. */
static void test_applicationversion__dry_run(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    uint64_t rev = store_revision(f->store);
    assert_int_equal(mk(f, "web-a", "web", "1.0.0", 1, &err), 0);
    assert_int_equal(store_revision(f->store), rev);
    assert_false(stored(f, CLAIMS "web/1.0.0"));
    assert_int_equal(mk(f, "web-b", "web", "1.0.0", 0, &err), 0);
    assert_int_equal(mk(f, "web-c", "web", "1.0.0", 1, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "Duplicate value: \"1.0.0\""));
}

/* A claim whose holder never got stored (a crash between the two
 * writes) is taken over once old enough; a young one may be on its way. */
static void test_applicationversion__orphan_taken_over(void **state)
{
    fx_t *f = *state;
    err_t err = {0};
    char val[256];
    snprintf(val, sizeof val, "{\"name\":\"ghost\",\"uid\":\"u-1\",\"at\":%lld}",
             (long long)time(NULL));
    assert_int_equal(store_create(f->store, CLAIMS "web/1.0.0", val, strlen(val), NULL, &err), 0);
    assert_int_equal(mk(f, "web-a", "web", "1.0.0", 0, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "already used by ApplicationVersion \"ghost\""));
    snprintf(val, sizeof val, "{\"name\":\"ghost\",\"uid\":\"u-1\",\"at\":%lld}",
             (long long)time(NULL) - REG_UNIQUE_GRACE_S - 1);
    assert_int_equal(store_update(f->store, CLAIMS "web/1.0.0", val, strlen(val), 0, NULL, NULL,
                                  &err), 0);
    assert_int_equal(mk(f, "web-a", "web", "1.0.0", 0, &err), 0);
    assert_int_equal(mk(f, "web-b", "web", "1.0.0", 0, &err), ERR_INVALID);
    assert_non_null(strstr(err.message, "already used by ApplicationVersion \"web-a\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_applicationversion__draft_on_create),
        FX_TEST(test_applicationversion__transitions),
        FX_TEST(test_applicationversion__spec_immutable_once_submitted),
        FX_TEST(test_applicationversion__semver),
        FX_TEST(test_applicationversion__duplicate),
        FX_TEST(test_applicationversion__duplicate_race),
        FX_TEST(test_applicationversion__released),
        FX_TEST(test_applicationversion__dry_run),
        FX_TEST(test_applicationversion__orphan_taken_over),
    };
    return cmocka_run_group_tests_name("applicationversion", tests, NULL, NULL);
}
