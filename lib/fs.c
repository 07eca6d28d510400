/*
 * File helpers. See fs.h.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

static int fs_io_fail(err_t *err, const char *what, const char *path)
{
    char buf[128];
    /* The GNU strerror_r: a static string or buf, thread-safe either way. */
    return err_set(err, ERR_IO, "%s %s: %s", what, path, strerror_r(errno, buf, sizeof buf));
}

int fs_read_file(const char *path, char **out, size_t *len, err_t *err)
{
    int rc = 0;
    char *buf = NULL;
    size_t n = 0, cap;
    /* One byte more than the cap is read, to tell "exactly the cap" from
     * "over it"; plus one for the NUL. */
    const size_t limit = (size_t)FS_MAX_FILE + 2;
    struct stat st;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fs_io_fail(err, "cannot open", path);
    if (fstat(fd, &st) != 0) {
        rc = fs_io_fail(err, "cannot stat", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_size > (off_t)FS_MAX_FILE) {
        rc = err_set(err, ERR_REQUEST_TOO_LARGE, "%s is larger than %u bytes",
                     path, FS_MAX_FILE);
        goto out;
    }
    /* The size is a hint only: files in /proc report 0, and a file may
     * grow while it is read. */
    cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 2 : 4096;
    buf = mem_alloc(cap);
    if (!buf) {
        rc = err_set(err, ERR_NOMEM, "out of memory reading %s", path);
        goto out;
    }
    for (;;) {
        if (n + 1 == cap) {
            size_t ncap = cap * 2 < limit ? cap * 2 : limit;
            char *nbuf = mem_realloc(buf, ncap);
            if (!nbuf) {
                rc = err_set(err, ERR_NOMEM, "out of memory reading %s", path);
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = fs_io_fail(err, "cannot read", path);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > FS_MAX_FILE) {
            rc = err_set(err, ERR_REQUEST_TOO_LARGE, "%s is larger than %u bytes",
                         path, FS_MAX_FILE);
            goto out;
        }
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = n;
out:
    mem_free(buf);
    close(fd);
    return rc;
}

/* Creates dir and its missing parents, mode 0700 (mkdir -p). */
int fs_mkdir_p(const char *dir, err_t *err)
{
    char path[PATH_MAX];
    struct stat st;
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof path)
        return err_set(err, ERR_IO, "invalid directory name \"%s\"", dir);
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return fs_io_fail(err, "cannot create directory", path);
        *p = c;
        if (c == '\0')
            break;
    }
    if (stat(dir, &st) != 0)
        return fs_io_fail(err, "cannot stat", dir);
    if (!S_ISDIR(st.st_mode))
        return err_set(err, ERR_IO, "%s: not a directory", dir);
    return 0;
}

/* Whether path exists: 0 with *exists set, or ERR_IO for any error other
 * than its absence (a permission problem must not read as "missing" and
 * get the files regenerated). */
int fs_exists(const char *path, int *exists, err_t *err)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        *exists = 1;
        return 0;
    }
    if (errno == ENOENT) {
        *exists = 0;
        return 0;
    }
    return fs_io_fail(err, "cannot stat", path);
}

/* Writes data to path atomically: a temporary file next to it with the
 * final mode, fsync, rename over path, fsync of the directory. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                    err_t *err)
{
    int rc = 0;
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    const char *p = data;
    int fd = -1, dfd = -1;

    int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    if (n < 0 || n >= (int)sizeof tmp)
        return err_set(err, ERR_IO, "path too long: %s", path);
    fd = mkstemp(tmp);  /* created 0600, so a key is never readable by others */
    if (fd < 0)
        return fs_io_fail(err, "cannot create", tmp);
    if (fchmod(fd, mode) != 0) {
        rc = fs_io_fail(err, "cannot chmod", tmp);
        goto out;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = fs_io_fail(err, "cannot write", tmp);
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = fs_io_fail(err, "cannot fsync", tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = fs_io_fail(err, "cannot close", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = fs_io_fail(err, "cannot rename to", path);
        goto out;
    }
    tmp[0] = '\0';  /* renamed: nothing to remove */

    /* Make the rename itself durable. */
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = fs_io_fail(err, "cannot fsync directory", dir);
out:
    if (dfd >= 0)
        close(dfd);
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    return rc;
}

