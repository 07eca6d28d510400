/*
 * targz: one member of a gzip-compressed tar archive (a Helm chart is
 * one), the only file that includes zlib.h.
 *
 * The archive is inflated as a stream and read as tar (POSIX ustar, with
 * the pax extended headers and GNU long names that Go's archive/tar and
 * GNU tar write): headers are checked (checksum, octal or base-256
 * sizes), members other than the one asked for are skipped without being
 * kept. Every member name in the archive is checked, not only the one
 * asked for: an absolute name or one with a ".." component makes the
 * whole archive refused, as a chart that tries to reach outside its
 * directory is not a chart to install.
 *
 * Bounded: the inflated size (TARGZ_MAX_TOTAL, a gzip bomb stops there),
 * the member (the caller's max), a pax header (1 MiB), a name (4 KiB).
 * Thread-safe: no shared state.
 */
#ifndef EDGE_LIB_TARGZ_H
#define EDGE_LIB_TARGZ_H

#include <stddef.h>

#include "err.h"

/* The most an archive may inflate to. */
#define TARGZ_MAX_TOTAL (256u * 1024u * 1024u)

/* Reads the regular file member named name ("mychart/Chart.yaml"; a
 * leading "./" in the archive's names is ignored) from the gzip tar of
 * len bytes at gz. *out is a new NUL-terminated copy of its content
 * (mem_free), *out_len its length. Returns 0, ERR_NOT_FOUND (no such
 * member), ERR_BAD_REQUEST (not gzip, corrupt or truncated, not tar, a
 * member named outside the archive, the member over max bytes, named
 * twice, or the whole over TARGZ_MAX_TOTAL; err says which), ERR_NOMEM. */
int targz_read_member(const void *gz, size_t len, const char *name, size_t max, char **out,
                      size_t *out_len, err_t *err);

#endif
