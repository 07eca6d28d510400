/*
 * fs: the file helpers the server needs, with no library beyond libc.
 *
 * Every call returns 0 or an ERR_* code with err filled (ERR_IO carries
 * the path and the system's reason). Thread-safe: no shared state.
 */
#ifndef EDGE_LIB_FS_H
#define EDGE_LIB_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Largest file fs_read_file reads. */
#define FS_MAX_FILE (16u * 1024 * 1024)

/* Reads the whole file at path into a NUL-terminated buffer *out (caller
 * frees with mem_free), its length without the NUL in *len (may be NULL).
 * Returns 0, ERR_IO, ERR_NOMEM, or ERR_REQUEST_TOO_LARGE when the file
 * exceeds FS_MAX_FILE. */
int fs_read_file(const char *path, char **out, size_t *len, err_t *err);

/* Creates dir and its missing parents, mode 0700 (mkdir -p); ERR_IO also
 * when dir exists but is not a directory. */
int fs_mkdir_p(const char *dir, err_t *err);

/* Whether path exists: 0 with *exists set, or ERR_IO for any error other
 * than its absence (a permission problem must not read as "missing"). */
int fs_exists(const char *path, int *exists, err_t *err);

/* Writes len bytes of data to path atomically with the given mode: a
 * temporary file beside it (never readable by others while written),
 * fsync, rename over path, fsync of the directory. On failure path is
 * untouched and the temporary file removed. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, err_t *err);

#endif
