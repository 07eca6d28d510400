/*
 * The Component controller's installers: a table of plugins, each with
 * PreInstall (prerequisites: the program, the files it needs), Install
 * and PostInstall (record what was done), and an uninstall; the helm
 * installer is the first and, for now, the only row.
 *
 * A job's files (the target cluster's kubeconfig, the values) live in a
 * private directory made for the job under <data_dir>/tmp (0700, files
 * 0600) and removed when the job ends, whatever its outcome. The
 * kubeconfig is built from the Cluster's connection through kubeclient's
 * reader, so only what a Cluster may carry inline reaches helm: a
 * kubeconfig naming a file or an exec plugin on this server is refused
 * or dropped, never handed on.
 *
 * Programs run through posix_spawn (no shell) with their output captured
 * through a pipe, bounded (only the tail is kept), and killed with their
 * process group when the job's timeout passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../apiservice/kubeclient.h"
#include "../lib/b64.h"
#include "../lib/fs.h"
#include "../lib/log.h"
#include "../lib/mem.h"
#include "component.h"
#include "controllers.h"

extern char **environ;

#define OUTPUT_TAIL 8192

static int job_fail(comp_job_t *j, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int job_fail(comp_job_t *j, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof j->message, fmt, ap);
    va_end(ap);
    j->reason = reason;
    return -1;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- running a program ----------------------------------------------------------- */

/* The last non-empty line of the n bytes at p, into out. */
static void last_line(const char *p, size_t n, char *out, size_t cap)
{
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    size_t s = n;
    while (s && p[s - 1] != '\n')
        s--;
    snprintf(out, cap, "%.*s", (int)(n - s), p + s);
}

/* Appends n bytes (n <= OUTPUT_TAIL) to the tail, dropping its oldest
 * bytes to make room. */
static void tail_add(char *tail, size_t *tl, const char *p, size_t n)
{
    if (*tl + n > OUTPUT_TAIL) {
        size_t drop = *tl + n - OUTPUT_TAIL;
        memmove(tail, tail + drop, *tl - drop);
        *tl -= drop;
    }
    memcpy(tail + *tl, p, n);
    *tl += n;
}

int comp_run(char *const argv[], long timeout_ms, int *status, char *last, size_t cap,
             err_t *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return err_set(err, ERR_IO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* stdin from /dev/null; stdout and stderr to the pipe (dup2 clears
     * close-on-exec on the copies only). */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    /* Its own process group (killed whole on a timeout), default signal
     * dispositions (this server ignores SIGPIPE), nothing blocked. */
    sigset_t def, none;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int sr = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (sr) {
        close(fds[0]);
        return sr == ENOMEM ? err_set(err, ERR_NOMEM, NULL)
                            : err_set(err, ERR_NOT_FOUND, "%s: %s", argv[0], strerror(sr));
    }
    char tail[OUTPUT_TAIL];
    size_t tl = 0;
    long long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 300000);
    int timed_out = 0, open_ = 1, ws = 0, exited = 0;
    while (!exited) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        if (open_) {
            struct pollfd pf = {fds[0], POLLIN, 0};
            int pr = poll(&pf, 1, left > 200 ? 200 : (int)left);
            if (pr > 0) {
                char buf[4096];
                ssize_t r = read(fds[0], buf, sizeof buf);
                if (r > 0) {
                    tail_add(tail, &tl, buf, (size_t)r);
                } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                    open_ = 0;
                }
            }
        } else {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid && !open_)
            exited = 1;
        else if (w == pid)
            exited = 2;          /* drain what is left of the pipe below */
    }
    if (timed_out) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
    }
    if (exited == 2) {
        /* The program has exited: read what it wrote, without waiting for
         * a grandchild that keeps the pipe open. */
        int fl = fcntl(fds[0], F_GETFL);
        fcntl(fds[0], F_SETFL, fl | O_NONBLOCK);
        char buf[4096];
        ssize_t r;
        while ((r = read(fds[0], buf, sizeof buf)) > 0)
            tail_add(tail, &tl, buf, (size_t)r);
    }
    close(fds[0]);
    last_line(tail, tl, last, cap);
    if (timed_out)
        return err_set(err, ERR_TIMEOUT, "%s did not finish within %ld s", argv[0],
                       (timeout_ms + 999) / 1000);
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
    return 0;
}

/* ---- the job's files ------------------------------------------------------------- */

/* prog (a path, or a name looked up in $PATH) as an executable path. */
static int find_program(const char *prog, char *out, size_t cap)
{
    struct stat sb;
    if (!prog || !*prog)
        return -1;
    if (strchr(prog, '/')) {
        snprintf(out, cap, "%s", prog);
        return stat(out, &sb) == 0 && S_ISREG(sb.st_mode) && access(out, X_OK) == 0 ? 0 : -1;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
        size_t l = strcspn(p, ":");
        snprintf(out, cap, "%.*s/%s", (int)l, l ? p : ".", prog);
        if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode) && access(out, X_OK) == 0)
            return 0;
        p += l;
        if (*p == ':')
            p++;
    }
    return -1;
}

static int job_dir(comp_job_t *j)
{
    char root[PATH_MAX - 16];
    snprintf(root, sizeof root, "%s/tmp", j->data_dir);
    err_t e;
    err_clear(&e);
    if (fs_mkdir_p(root, &e))
        return job_fail(j, "InstallFailed", "temporary files: %s", e.message);
    snprintf(j->dir, sizeof j->dir, "%s/job-XXXXXX", root);
    if (!mkdtemp(j->dir)) {
        j->dir[0] = '\0';
        return job_fail(j, "InstallFailed", "temporary files: %s: %s", root, strerror(errno));
    }
    snprintf(j->kubeconfig, sizeof j->kubeconfig, "%s/kubeconfig", j->dir);
    snprintf(j->values_path, sizeof j->values_path, "%s/values.yaml", j->dir);
    return 0;
}

static void job_cleanup(comp_job_t *j)
{
    if (!j->dir[0])
        return;
    unlink(j->kubeconfig);
    unlink(j->values_path);
    if (rmdir(j->dir))
        log_warning("controller component: cannot remove %s: %s", j->dir, strerror(errno));
    j->dir[0] = '\0';
}

static int set_b64(json_t *o, const char *key, const char *data, size_t len)
{
    if (!data)
        return 0;
    char *b = b64_encode(data, len, B64_STD);
    int bad = !b || json_object_set_new(o, key, json_string(b));
    mem_free(b);
    return bad;
}

/* The target cluster's connection as a kubeconfig file of the job. */
static int write_kubeconfig(comp_job_t *j)
{
    const json_t *conn = json_object_get(json_object_get(j->cluster, "spec"), "connection");
    const char *cname = json_string_value(json_object_get(json_object_get(j->cluster, "metadata"), "name"));
    kc_t *base = NULL;
    kc_config_t cfg;
    err_t e;
    err_clear(&e);
    /* The same reading of the connection the Cluster controller probes
     * with; the kubeconfig helm gets is made from its parts alone. */
    if (ctrl_cluster_client(conn, 0, &base, &e))
        return job_fail(j, e.code == ERR_NOMEM ? "InstallFailed" : "InvalidConnection",
                        "cluster %s: %s", cname, e.message);
    kc_config_of(base, &cfg);
    int rc = 0;
    json_t *doc = NULL;
    json_t *cl = json_pack("{s:s}", "server", cfg.server);
    json_t *us = json_object();
    int bad = !cl || !us;
    bad = bad || set_b64(cl, "certificate-authority-data", cfg.ca, cfg.ca_len);
    if (!bad && cfg.insecure)
        bad = json_object_set_new(cl, "insecure-skip-tls-verify", json_true());
    if (!bad && cfg.token)
        bad = json_object_set_new(us, "token", json_string(cfg.token));
    bad = bad || set_b64(us, "client-certificate-data", cfg.cert, cfg.cert_len);
    bad = bad || set_b64(us, "client-key-data", cfg.key, cfg.key_len);
    if (!bad)
        doc = json_pack("{s:s,s:s,s:[{s:s,s:O}],s:[{s:s,s:O}],s:[{s:s,s:{s:s,s:s}}],s:s}",
                        "apiVersion", "v1", "kind", "Config", "clusters", "name", "target",
                        "cluster", cl, "users", "name", "target", "user", us, "contexts", "name",
                        "target", "context", "cluster", "target", "user", "target",
                        "current-context", "target");
    json_decref(cl);
    json_decref(us);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    if (!text) {
        rc = job_fail(j, "InstallFailed", "out of memory");
        goto out;
    }
    if (fs_write_atomic(j->kubeconfig, text, strlen(text), 0600, &e))
        rc = job_fail(j, "InstallFailed", "kubeconfig: %s", e.message);
    mem_free(text);
out:
    json_decref(doc);
    kc_free(base);
    return rc;
}

static int write_values(comp_job_t *j)
{
    json_t *empty = json_object();
    const json_t *v = json_is_object(j->values) ? j->values : empty;
    char *text = v ? json_dumps(v, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
    json_decref(empty);
    if (!text)
        return job_fail(j, "InstallFailed", "out of memory");
    err_t e;
    err_clear(&e);
    int rc = fs_write_atomic(j->values_path, text, strlen(text), 0600, &e);
    mem_free(text);
    return rc ? job_fail(j, "InstallFailed", "values: %s", e.message) : 0;
}

/* ---- the helm installer ----------------------------------------------------------- */

static int helm_applies(const comp_job_t *j)
{
    (void)j;
    return 1;
}

static int helm_find(comp_job_t *j)
{
    if (find_program(j->helm, j->helm_path, sizeof j->helm_path))
        return job_fail(j, "HelmNotFound", "the helm program (--helm-binary %s) was not found",
                        j->helm && *j->helm ? j->helm : "helm");
    return 0;
}

/* Runs helm with argv; a failure's message is helm's last line. */
static int helm_run(comp_job_t *j, char *const argv[], const char *reason, int not_found_ok)
{
    char last[400] = "";
    int st = 0;
    err_t e;
    err_clear(&e);
    int rc = comp_run(argv, j->timeout_ms, &st, last, sizeof last, &e);
    if (rc == ERR_NOT_FOUND)
        return job_fail(j, "HelmNotFound", "%s", e.message);
    if (rc)
        return job_fail(j, reason, "%s", e.message);
    if (st == 0)
        return 0;
    if (not_found_ok && strstr(last, "not found"))
        return 0;
    if (last[0])
        return job_fail(j, reason, "%s", last);
    return job_fail(j, reason, "helm exited with status %d and no output", st);
}

static int helm_pre(comp_job_t *j)
{
    int rc = helm_find(j);
    if (!rc)
        rc = write_kubeconfig(j);
    if (!rc)
        rc = write_values(j);
    return rc;
}

static int helm_install(comp_job_t *j)
{
    char *argv[] = {j->helm_path, "upgrade", "--install", (char *)j->name,
                    (char *)j->chart_path, "--namespace", (char *)j->ns, "--create-namespace",
                    "--values", j->values_path, "--kubeconfig", j->kubeconfig, NULL};
    return helm_run(j, argv, "InstallFailed", 0);
}

static int helm_post(comp_job_t *j)
{
    log_info("controller component: helm release %s installed in namespace %s from %s",
             j->name, j->ns, j->chart_path);
    return 0;
}

static int helm_uninstall(comp_job_t *j)
{
    int rc = helm_find(j);
    if (!rc)
        rc = write_kubeconfig(j);
    if (rc)
        return rc;
    /* A release that is not there is uninstalled already. */
    char *argv[] = {j->helm_path, "uninstall", (char *)j->name, "--namespace", (char *)j->ns,
                    "--kubeconfig", j->kubeconfig, NULL};
    return helm_run(j, argv, "UninstallFailed", 1);
}

const comp_installer_t comp_installers[] = {
    {"helm", helm_applies, helm_pre, helm_install, helm_post, helm_uninstall},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

int comp_install(comp_job_t *j)
{
    int rc = job_dir(j);
    for (const comp_installer_t *in = comp_installers; !rc && in->name; in++) {
        if (!in->applies(j))
            continue;
        if (in->pre_install)
            rc = in->pre_install(j);
        if (!rc && in->install)
            rc = in->install(j);
        if (!rc && in->post_install)
            rc = in->post_install(j);
    }
    job_cleanup(j);
    return rc;
}

int comp_uninstall(comp_job_t *j)
{
    size_t n = 0;
    while (comp_installers[n].name)
        n++;
    int rc = job_dir(j);
    while (!rc && n-- > 0) {
        const comp_installer_t *in = &comp_installers[n];
        if (in->applies(j) && in->uninstall)
            rc = in->uninstall(j);
    }
    job_cleanup(j);
    return rc;
}
