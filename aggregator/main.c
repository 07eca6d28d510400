/*
 * edge-apiserver's entry point: flags, storage, signals.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../storage/mem.h"
#include "../storage/store.h"

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
    (void)sig;
    main_stop = 1;
}

static void main_usage(FILE *f)
{
    fprintf(f,
            "usage: edge-apiserver [flags]\n"
            "  --storage-backend lmdb|etcd3   object store (default lmdb)\n"
            "  --data-dir DIR                 LMDB data directory (default ./data)\n"
            "  --help                         this text\n");
}

int main(int argc, char **argv)
{
    enum { OPT_BACKEND = 1, OPT_DATA_DIR, OPT_HELP };
    static const struct option opts[] = {
        {"storage-backend", required_argument, NULL, OPT_BACKEND},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    store_config_t cfg = {.backend = "lmdb", .data_dir = "data"};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_BACKEND: cfg.backend = optarg; break;
        case OPT_DATA_DIR: cfg.data_dir = optarg; break;
        case OPT_HELP: main_usage(stdout); return 0;
        default: main_usage(stderr); return 2;
        }
    }
    mem_init();

    store_t *store = NULL;
    err_t err = {0};
    if (store_open(&cfg, &store, &err)) {
        fprintf(stderr, "edge-apiserver: %s\n", err.message);
        return 1;
    }
    fprintf(stderr, "edge-apiserver: storage %s at %s open at revision %" PRIu64 "\n",
            cfg.backend, cfg.data_dir, store_revision(store));

    struct sigaction sa = {.sa_handler = main_on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!main_stop)
        pause();
    store_close(store);
    return 0;
}
