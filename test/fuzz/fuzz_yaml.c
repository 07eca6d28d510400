/*
 * Fuzzes lib/yaml (kubeconfig files, apply-patch+yaml bodies): any
 * bytes give a value or an error with no crash and no leak, and a value
 * always encodes with jenc as json_dumps would encode it.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "../../lib/json/jenc.h"
#include "../../lib/mem.h"
#include "fuzz.h"
#include "../../lib/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > FUZZ_MAX_LEN)
        return 0;
    json_t *v = NULL;
    err_t err = {0};
    int rc = yml_to_json((const char *)data, size, &v, &err);
    if (rc) {
        FUZZ_CHECK(rc < 0 && err.code == rc && !v);
        return 0;
    }
    FUZZ_CHECK(v != NULL);
    /* A document may be a scalar; jenc_dumps writes containers only. */
    json_t *doc = json_is_object(v) || json_is_array(v) ? json_incref(v) : json_pack("[O]", v);
    FUZZ_CHECK(doc != NULL);
    size_t len;
    char *got = jenc_dumps(doc, &len);
    char *want = json_dumps(doc, JSON_COMPACT);
    FUZZ_CHECK(got && want && len == strlen(want) && !memcmp(got, want, len));
    mem_free(got);
    free(want);
    json_decref(doc);
    json_decref(v);
    return 0;
}
