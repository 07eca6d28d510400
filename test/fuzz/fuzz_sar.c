/*
 * Fuzzes the authorization webhook's reader, differentially: for any body,
 * authz_subject_access_review_text (tokens in place, the server's path)
 * must answer exactly as the jansson path does (json_loadb, then
 * authz_subject_access_review): the same error and message, or answers
 * that decode to the same JSON. The authorizer runs over a small fixture
 * in a store made for the process; any difference aborts.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../../authz/authz.h"
#include "../../storage/store.h"
#include "fuzz.h"

static char dir[] = "/tmp/edge-fuzz-sar-XXXXXX";
static store_t *store;
static authz_t *az;

static const struct {
    const char *key, *value;
} fixture[] = {
    {"/scope.theriseunion.io/workspaces/ws1",
     "{\"metadata\":{\"name\":\"ws1\"},\"spec\":{\"namespaces\":[{\"name\":\"shop\"}]}}"},
    {"/scope.theriseunion.io/nodegroups/ng1",
     "{\"metadata\":{\"name\":\"ng1\"},\"spec\":{\"nodes\":[\"n1\",\"n2\"]}}"},
    {"/iam.theriseunion.io/roletemplates/view",
     "{\"metadata\":{\"name\":\"view\"},\"spec\":{\"rules\":[{\"verbs\":[\"get\",\"list\"],"
     "\"apiGroups\":[\"\"],\"resources\":[\"pods\",\"nodes\"]}],\"denyRules\":[{\"verbs\":[\"*\"],"
     "\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]}}"},
    {"/iam.theriseunion.io/iamroles/viewer",
     "{\"metadata\":{\"name\":\"viewer\"},\"spec\":{\"templateRefs\":[\"view\"],"
     "\"rules\":[{\"nonResourceURLs\":[\"/healthz\"],\"verbs\":[\"get\"]}]}}"},
    {"/iam.theriseunion.io/iamrolebindings/alice",
     "{\"metadata\":{\"name\":\"alice\"},\"spec\":{\"roleRef\":{\"name\":\"viewer\"},"
     "\"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"}],\"scope\":{\"level\":\"Workspace\","
     "\"name\":\"ws1\"}}}"},
    {"/iam.theriseunion.io/iamrolebindings/devs",
     "{\"metadata\":{\"name\":\"devs\"},\"spec\":{\"roleRef\":{\"name\":\"viewer\"},"
     "\"subjects\":[{\"kind\":\"Group\",\"name\":\"devs\"}],\"scope\":{\"level\":\"Cluster\"}}}"},
    {"/iam.theriseunion.io/iamrolebindings/ops",
     "{\"metadata\":{\"name\":\"ops\"},\"spec\":{\"roleRef\":{\"name\":\"viewer\"},"
     "\"subjects\":[{\"kind\":\"Group\",\"name\":\"ops\"}],\"scope\":{\"level\":\"NodeGroup\","
     "\"name\":\"ng1\"}}}"},
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    authz_free(az);
    store_close(store);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The store and the authorizer over the fixture, once per process. */
static void setup(void)
{
    if (az)
        return;
    fuzz_init();
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    store_config_t cfg = {.data_dir = dir, .no_sync = 1, .compact_interval_ms = 3600000};
    err_t err;
    err_clear(&err);
    FUZZ_CHECK(store_open(&cfg, &store, &err) == 0);
    for (size_t i = 0; i < sizeof fixture / sizeof *fixture; i++) {
        uint64_t rev;
        FUZZ_CHECK(store_create(store, fixture[i].key, fixture[i].value,
                                strlen(fixture[i].value), &rev, &err) == 0);
    }
    FUZZ_CHECK(authz_new(store, "host", &az, &err) == 0);
    FUZZ_CHECK(authz_revision(az) >= store_revision(store));
    atexit(teardown);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_LEN)
        return 0;
    setup();
    const char *body = (const char *)data;
    err_t e1, e2;
    err_clear(&e1);
    err_clear(&e2);

    /* The reference: jansson in, the tree review, jansson out. */
    json_error_t je;
    json_t *sar = json_loadb(body, size, 0, &je), *tree = NULL;
    int rc1 = sar ? authz_subject_access_review(az, sar, NULL, &tree, &e1)
                  : err_set(&e1, ERR_BAD_REQUEST, "the body is not JSON: %s", je.text);
    json_decref(sar);

    char *text = NULL;
    size_t len = 0;
    int rc2 = authz_subject_access_review_text(az, body, size, NULL, &text, &len, &e2);
    FUZZ_CHECK(rc1 == rc2);
    if (rc1) {
        FUZZ_CHECK(!strcmp(e1.message, e2.message));
        FUZZ_CHECK(text == NULL);
    } else {
        json_t *got = json_loadb(text, len, 0, NULL);
        FUZZ_CHECK(got != NULL && json_equal(got, tree));
        json_decref(got);
    }
    mem_free(text);
    json_decref(tree);
    return 0;
}
