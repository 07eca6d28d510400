/* The shared unit-test world: see fixture.h. */
#include "fixture.h"

#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/edge-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    char data[128];
    snprintf(data, sizeof data, "%s/data", f->dir);
    store_config_t cfg = {.data_dir = data, .no_sync = 1, .compact_interval_ms = 3600000};
    err_t err = {0};
    /* From here fx_teardown undoes whatever was made. */
    *state = f;
    if (store_open(&cfg, &f->store, &err)) {
        fx_teardown(state);
        return -1;
    }
    f->reg.store = f->store;
    return 0;
}

int fx_start_authz(fx_t *f)
{
    err_t err = {0};
    if (authz_new(f->store, "host", &f->authz, &err))
        return -1;
    f->reg.authz = f->authz;
    f->reg.cluster = "host";
    return 0;
}

int fx_setup_server(void **state)
{
    if (fx_setup(state))
        return -1;
    fx_t *f = *state;
    err_t err = {0};
    char tokens[128];
    snprintf(tokens, sizeof tokens, "%s/tokens.csv", f->dir);
    FILE *t = fopen(tokens, "w");
    if (!t)
        goto fail;
    fputs("admin-token,admin,admin-uid,\"system:masters\"\nalice-token,alice,alice-uid\n", t);
    if (fclose(t))
        goto fail;
    if (fx_start_authz(f) || agg_authn_new(tokens, &f->authn, &err))
        goto fail;
    f->api.authn = f->authn;
    f->api.cluster_name = "host";
    f->api.reg = &f->reg;
    f->api.store = f->store;
    f->api.authz = f->authz;
    agg_api_advance(&f->api, AGG_READY);
    return 0;
fail:
    fx_teardown(state);
    return -1;
}

int fx_teardown(void **state)
{
    fx_t *f = *state;
    agg_authn_free(f->authn);
    authz_free(f->authz);
    store_close(f->store);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    *state = NULL;
    return 0;
}

json_t *fx_json(const char *txt)
{
    json_error_t e;
    json_t *j = json_loads(txt, 0, &e);
    if (!j)
        fail_msg("bad JSON in test: %s: %s", txt, e.text);
    return j;
}

const char *fx_str(const json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && cur;
         seg = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, seg);
    return json_string_value(cur);
}
