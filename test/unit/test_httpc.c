/* Unit tests of lib/httpc.h against a small HTTP/1.1 server on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "../../lib/httpc.h"
#include "../../lib/mem.h"

/* ---- the server ----------------------------------------------------------- */

/* One connection at a time. POST /echo answers the body back (kept
 * alive); /lines streams three lines, the last without '\n', and closes;
 * /hang sends the head of a chunked response and then nothing. */
typedef struct srv {
    int fd, port;
    pthread_t t;
    atomic_int stop;
    atomic_int connections;
    atomic_int requests;
} srv_t;

static int srv_read_request(srv_t *s, int c, char *path, size_t pathcap, char *body,
                            size_t bodycap, size_t *bodylen)
{
    char buf[8192];
    size_t n = 0;
    char *end = NULL;
    while (!(end = memmem(buf, n, "\r\n\r\n", 4))) {
        struct pollfd p = {c, POLLIN, 0};
        if (atomic_load(&s->stop))
            return -1;
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(c, buf + n, sizeof buf - n - 1);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    buf[n] = '\0';
    sscanf(buf, "%*s %255s", path);
    (void)pathcap;
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t have = n - (size_t)(end + 4 - buf);
    if (want > bodycap)
        return -1;
    memcpy(body, end + 4, have);
    while (have < want) {
        ssize_t r = read(c, body + have, want - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    *bodylen = want;
    return 0;
}

static void srv_write(int c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(c, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&s->connections, 1);
        char path[256] = "", body[4096];
        size_t blen = 0;
        while (srv_read_request(s, c, path, sizeof path, body, sizeof body, &blen) == 0) {
            atomic_fetch_add(&s->requests, 1);
            char head[256];
            if (!strcmp(path, "/echo")) {
                int h = snprintf(head, sizeof head,
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: %zu\r\n\r\n", blen);
                srv_write(c, head, (size_t)h);
                srv_write(c, body, blen);
                continue;
            }
            if (!strcmp(path, "/lines")) {
                const char *h = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
                srv_write(c, h, strlen(h));
                srv_write(c, "{\"a\":1}\n{\"b\"", 12);
                usleep(50000);
                srv_write(c, ":2}\n\npartial", 12);
                break;
            }
            if (!strcmp(path, "/hang")) {
                const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                srv_write(c, h, strlen(h));
                while (!atomic_load(&s->stop))
                    usleep(10000);
                break;
            }
            const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
            srv_write(c, nf, strlen(nf));
        }
        close(c);
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &n)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
    int port = 0;
    int fd = listen_loopback(&port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int srv_setup(void **state)
{
    srv_t *s = calloc(1, sizeof *s);
    s->fd = listen_loopback(&s->port);
    if (s->fd < 0) {
        free(s);
        return -1;
    }
    pthread_create(&s->t, NULL, srv_main, s);
    *state = s;
    return 0;
}

static int srv_teardown(void **state)
{
    srv_t *s = *state;
    atomic_store(&s->stop, 1);
    pthread_join(s->t, NULL);
    close(s->fd);
    free(s);
    return 0;
}

static httpc_t *client(const char *fmt, ...)
{
    char urls[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(urls, sizeof urls, fmt, ap);
    va_end(ap);
    httpc_config_t cfg = {.urls = urls, .timeout_ms = 3000};
    httpc_t *c = NULL;
    err_t err = {0};
    if (httpc_new(&cfg, &c, &err))
        fail_msg("httpc_new %s: %s", urls, err.message);
    return c;
}

/* ---- cases ------------------------------------------------------------------ */

static void test_httpc__config_errors(void **state)
{
    (void)state;
    static const char *bad[] = {"", " , ", "ftp://x", "127.0.0.1:2379", NULL};
    for (int i = 0; bad[i]; i++) {
        httpc_config_t cfg = {.urls = bad[i]};
        httpc_t *c = NULL;
        err_t err = {0};
        assert_int_equal(httpc_new(&cfg, &c, &err), ERR_BAD_REQUEST);
        assert_null(c);
    }
    httpc_config_t cfg = {.urls = "https://a:1", .cert_file = "/x.crt"};
    httpc_t *c = NULL;
    err_t err = {0};
    assert_int_equal(httpc_new(&cfg, &c, &err), ERR_BAD_REQUEST);
    httpc_free(NULL);
}

/* The first endpoint refuses connections: the request goes to the next,
 * and later requests go there at once, over the same connection. */
static void test_httpc__failover_and_reuse(void **state)
{
    srv_t *s = *state;
    httpc_t *c = client("http://127.0.0.1:%d/, http://127.0.0.1:%d", closed_port(), s->port);
    for (int i = 0; i < 3; i++) {
        httpc_response_t r;
        err_t err = {0};
        assert_int_equal(httpc_post(c, "/echo", "{\"n\":1}", 7, &r, &err), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"n\":1}");
        httpc_response_free(&r);
    }
    httpc_response_t r;
    err_t err = {0};
    assert_int_equal(httpc_post(c, "/missing", "{}", 2, &r, &err), 0);
    assert_int_equal(r.status, 404);
    httpc_response_free(&r);
    assert_int_equal(atomic_load(&s->requests), 4);
    assert_int_equal(atomic_load(&s->connections), 1);
    httpc_free(c);
}

static void test_httpc__unreachable(void **state)
{
    (void)state;
    httpc_t *c = client("http://127.0.0.1:%d,http://127.0.0.1:%d", closed_port(), closed_port());
    httpc_response_t r;
    err_t err = {0};
    assert_int_equal(httpc_post(c, "/echo", "{}", 2, &r, &err), ERR_UNAVAILABLE);
    assert_null(r.body);
    err_clear(&err);
    assert_int_equal(httpc_stream(c, "/lines", "{}", 2, NULL, NULL, NULL, NULL, NULL, &err),
                     ERR_UNAVAILABLE);
    httpc_free(c);
}

typedef struct lines {
    char text[256];
    int n, stop_at;
} lines_t;

static int on_line(void *arg, const char *text, size_t len)
{
    lines_t *l = arg;
    assert_int_equal(strlen(text), len);
    strncat(l->text, text, sizeof l->text - strlen(l->text) - 2);
    strcat(l->text, "|");
    return ++l->n == l->stop_at ? 7 : 0;
}

/* Lines split across reads come whole, empty ones are skipped, the last
 * unended one comes at the end; a callback can end the stream. */
static void test_httpc__stream_lines(void **state)
{
    srv_t *s = *state;
    httpc_t *c = client("http://127.0.0.1:%d", s->port);
    lines_t l = {0};
    long status = 0;
    err_t err = {0};
    assert_int_equal(httpc_stream(c, "/lines", "{}", 2, "X-Test: 1", on_line, &l, NULL,
                                  &status, &err), 0);
    assert_int_equal(status, 200);
    assert_string_equal(l.text, "{\"a\":1}|{\"b\":2}|partial|");
    lines_t one = {.stop_at = 1};
    assert_int_equal(httpc_stream(c, "/lines", "{}", 2, NULL, on_line, &one, NULL, NULL, &err),
                     7);
    assert_string_equal(one.text, "{\"a\":1}|");
    httpc_free(c);
}

typedef struct canceller {
    atomic_int *flag;
} canceller_t;

static void *cancel_later(void *arg)
{
    usleep(200000);
    atomic_store(((canceller_t *)arg)->flag, 1);
    return NULL;
}

/* An idle stream ends soon after it is canceled. */
static void test_httpc__stream_cancel(void **state)
{
    srv_t *s = *state;
    httpc_t *c = client("http://127.0.0.1:%d", s->port);
    atomic_int flag;
    atomic_init(&flag, 0);
    canceller_t k = {&flag};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &k);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lines_t l = {0};
    err_t err = {0};
    assert_int_equal(httpc_stream(c, "/hang", "{}", 2, NULL, on_line, &l, &flag, NULL, &err),
                     ERR_CLOSED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 150 && ms < 1500);
    assert_int_equal(l.n, 0);
    httpc_free(c);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_httpc__config_errors),
        cmocka_unit_test_setup_teardown(test_httpc__failover_and_reuse, srv_setup, srv_teardown),
        cmocka_unit_test(test_httpc__unreachable),
        cmocka_unit_test_setup_teardown(test_httpc__stream_lines, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_httpc__stream_cancel, srv_setup, srv_teardown),
    };
    return cmocka_run_group_tests_name("httpc", tests, NULL, NULL);
}
