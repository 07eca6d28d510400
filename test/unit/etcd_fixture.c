/* An etcd on loopback for unit tests: see etcd_fixture.h. */
#include "etcd_fixture.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *etcd_bin(void)
{
    const char *bin = getenv("ETCD_BIN");
    return bin && *bin ? bin : "/usr/bin/etcd";
}

int fx_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

long fx_etcd_post(fx_etcd_t *e, const char *path, const char *body, char **resp)
{
    httpc_response_t r;
    err_t err = {0};
    if (httpc_post(e->http, path, body, strlen(body), &r, &err))
        return 0;
    if (resp)
        *resp = strdup(r.body);
    httpc_response_free(&r);
    return r.status;
}

int fx_etcd_start(fx_etcd_t *e)
{
    char client[64], peer[64], log[128];
    snprintf(client, sizeof client, "http://127.0.0.1:%d", e->client_port);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", e->peer_port);
    snprintf(log, sizeof log, "%s.log", e->dir);
    const char *bin = etcd_bin();
    char cluster[96];
    snprintf(cluster, sizeof cluster, "default=%s", peer);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--data-dir", e->dir, "--listen-client-urls", client,
              "--advertise-client-urls", client, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
              (char *)NULL);
        _exit(127);
    }
    e->pid = pid;
    for (int i = 0; i < 300; i++) {
        if (fx_etcd_post(e, "/v3/kv/range", "{\"key\":\"AA==\"}", NULL) == 200)
            return 0;
        usleep(50000);
    }
    return -1;
}

void fx_etcd_stop(fx_etcd_t *e)
{
    if (e->pid <= 0)
        return;
    kill(e->pid, SIGCONT);       /* a test may have paused it */
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
    e->pid = -1;
}

int fx_etcd_setup(fx_etcd_t *e)
{
    memset(e, 0, sizeof *e);
    e->pid = -1;
    const char *bin = etcd_bin();
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "no %s: tests on etcd cannot run\n", bin);
        return -1;
    }
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(e->dir, sizeof e->dir, "%s/edge-etcd-XXXXXX", base);
    if (!mkdtemp(e->dir))
        return -1;
    e->client_port = fx_free_port();
    e->peer_port = fx_free_port();
    snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d", e->client_port);
    httpc_config_t hc = {.urls = e->url, .timeout_ms = 5000};
    err_t err = {0};
    if (httpc_new(&hc, &e->http, &err) || fx_etcd_start(e)) {
        fprintf(stderr, "etcd did not come up\n");
        fx_etcd_teardown(e);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

void fx_etcd_teardown(fx_etcd_t *e)
{
    fx_etcd_stop(e);
    httpc_free(e->http);
    e->http = NULL;
    if (!e->dir[0])
        return;
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    char log[128];
    snprintf(log, sizeof log, "%s.log", e->dir);
    remove(log);
    e->dir[0] = '\0';
}
