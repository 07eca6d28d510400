/*
 * semver: Semantic Versioning 2.0.0 (semver.org), as application and chart
 * versions are written: MAJOR.MINOR.PATCH, an optional -pre.release of
 * dot-separated identifiers and an optional +build metadata.
 *
 * Strict: no leading "v", no leading zeros in numeric parts, no empty
 * identifiers, ASCII [0-9A-Za-z-] only. Precedence is semver.org's rule 11:
 * numeric parts compared as numbers, a pre-release sorts before its
 * release, pre-release identifiers compared left to right (numeric ones
 * as numbers and below alphanumeric ones, a shorter list first when all
 * before are equal), build metadata ignored.
 *
 * Pure functions, thread-safe; a parsed version points into its text.
 */
#ifndef EDGE_APIM_SEMVER_H
#define EDGE_APIM_SEMVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct semver {
    uint64_t major, minor, patch;
    const char *pre;             /* the pre-release after '-', or NULL */
    size_t pre_len;
    const char *build;           /* the build metadata after '+', or NULL */
    size_t build_len;
} semver_t;

/* Parses s (NUL-terminated) into v. 0, or -1 when s is not a version (why
 * in *why when given: a static sentence for a 422 message). */
int semver_parse(const char *s, semver_t *v, const char **why);

/* <0, 0 or >0 as a has lower, equal or higher precedence than b. */
int semver_cmp(const semver_t *a, const semver_t *b);

/* 1 when v has a pre-release part (helm skips these unless asked). */
int semver_is_prerelease(const semver_t *v);

#endif
