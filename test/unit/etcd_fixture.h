/*
 * etcd_fixture: an etcd of the test's own on loopback (Debian's
 * /usr/bin/etcd, or $ETCD_BIN), in a temporary directory, on two free
 * ports, with an HTTP client of the test's to poke it directly. Shared by
 * the tests that need a real etcd (test_store's etcd3 group, the lease
 * elector's tests). Not thread-safe: the test's thread drives it.
 */
#ifndef EDGE_TEST_ETCD_FIXTURE_H
#define EDGE_TEST_ETCD_FIXTURE_H

#include <sys/types.h>

#include "../../lib/httpc.h"

typedef struct fx_etcd {
    pid_t pid;                   /* -1 when not running */
    char dir[96];                /* its data directory; <dir>.log its log */
    int client_port, peer_port;
    char url[64];                /* the client URL, for --etcd-servers */
    httpc_t *http;               /* a client of the test's own */
} fx_etcd_t;

/* A free TCP port on 127.0.0.1 (free when asked), or -1. */
int fx_free_port(void);

/* Makes the directory, picks the ports, starts etcd and waits until it
 * answers. 0, or -1 (no etcd binary, or it did not come up; the reason
 * on stderr) with nothing left running. */
int fx_etcd_setup(fx_etcd_t *e);

/* Starts etcd again on the same ports and data (after fx_etcd_stop) and
 * waits until it answers. 0 or -1. */
int fx_etcd_start(fx_etcd_t *e);

/* Stops etcd (SIGTERM, then waits for it); a no-op when not running. */
void fx_etcd_stop(fx_etcd_t *e);

/* Stops etcd, frees the client, removes the directory and the log. */
void fx_etcd_teardown(fx_etcd_t *e);

/* POSTs a JSON body to etcd with the test's client. The HTTP status (0
 * when etcd did not answer); *resp (if non-NULL) the body, free()d by
 * the caller. */
long fx_etcd_post(fx_etcd_t *e, const char *path, const char *body, char **resp);

#endif
