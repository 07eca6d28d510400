/*
 * fixture: the world the unit tests of registry/, authz/ and aggregator/
 * run in, made once here instead of once a file.
 *
 * A fixture owns a temporary directory with a real LMDB store in it
 * (<dir>/data), the registry over that store, and on demand the
 * authorizer, the users of a token file and the HTTP surface's agg_api_t.
 * Every test gets a fresh one (cmocka's per-test setup and teardown), so
 * no test sees another's objects; fx_teardown releases whatever the setup
 * made and removes the directory.
 *
 * The users (<dir>/tokens.csv): "admin-token" is admin in system:masters,
 * "alice-token" is alice with no group.
 *
 * Not thread-safe: one fixture is driven by the test's thread (the store's
 * and the authorizer's own threads run behind it as in the server).
 */
#ifndef EDGE_TEST_FIXTURE_H
#define EDGE_TEST_FIXTURE_H

#include <jansson.h>

#include "../../aggregator/server.h"

typedef struct fx {
    char dir[64];          /* the temporary directory */
    store_t *store;
    reg_t reg;             /* store only; authz and cluster once fx_start_authz */
    authz_t *authz;        /* NULL until fx_start_authz */
    agg_authn_t *authn;    /* NULL unless fx_setup_server */
    agg_api_t api;         /* zero unless fx_setup_server: then AGG_READY */
} fx_t;

/* cmocka setups: *state becomes a new fx_t. fx_setup opens the store and
 * the registry over it; fx_setup_server adds the authorizer ("host"
 * cluster), the users and an agg_api_t advanced to AGG_READY. 0, or -1
 * with nothing left behind. */
int fx_setup(void **state);
int fx_setup_server(void **state);

/* Starts the authorizer over the store as it is now (a test may write
 * objects first, for it to load as a snapshot) and joins it to the
 * registry. 0, or -1 (f->authz stays NULL). */
int fx_start_authz(fx_t *f);

/* The cmocka teardown of either setup: releases everything, removes the
 * directory and frees the fx_t. Always 0. */
int fx_teardown(void **state);

/* A cmocka test run in a fresh fixture of either setup. */
#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define FX_SERVER_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_server, fx_teardown)

/* JSON text of the test's own; fails the test when it does not parse.
 * The caller owns the value. */
json_t *fx_json(const char *txt);

/* The string at a dotted path ("metadata.name") of o, borrowed from o;
 * NULL when a step is missing or the value is not a string. */
const char *fx_str(const json_t *o, const char *path);

#endif
