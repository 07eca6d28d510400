/*
 * semver: Semantic Versioning 2.0.0. See semver.h.
 */
#include "semver.h"

#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric part at *p: digits, no leading zero, fits in 64 bits. */
static int number(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (!is_digit(*s) || (*s == '0' && is_digit(s[1])))
        return -1;
    uint64_t v = 0;
    for (; is_digit(*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    *p = s;
    return 0;
}

/* Dot-separated identifiers at s up to end; numeric identifiers of a
 * pre-release (strict) may not have leading zeros. */
static int identifiers(const char *s, const char *end, int strict)
{
    if (s == end)
        return -1;
    const char *id = s;
    for (const char *p = s;; p++) {
        if (p == end || *p == '.') {
            if (p == id)
                return -1;
            int numeric = 1;
            for (const char *q = id; q < p; q++)
                numeric &= is_digit(*q);
            if (strict && numeric && *id == '0' && p - id > 1)
                return -1;
            if (p == end)
                return 0;
            id = p + 1;
        } else if (!is_ident_char(*p)) {
            return -1;
        }
    }
}

int semver_parse(const char *s, semver_t *v, const char **why)
{
    const char *dummy = NULL;
    why = why ? why : &dummy;
    memset(v, 0, sizeof *v);
    const char *p = s;
    if (!s || !*s) {
        *why = "must be a semantic version (MAJOR.MINOR.PATCH)";
        return -1;
    }
    if (*p == 'v' || *p == 'V') {
        *why = "must be a semantic version without a leading \"v\"";
        return -1;
    }
    if (number(&p, &v->major) || *p++ != '.' || number(&p, &v->minor) || *p++ != '.' ||
        number(&p, &v->patch)) {
        *why = "must be a semantic version (MAJOR.MINOR.PATCH, numbers without leading zeros)";
        return -1;
    }
    const char *plus = strchr(p, '+');
    const char *end = p + strlen(p);
    if (*p == '-') {
        const char *pre_end = plus ? plus : end;
        if (identifiers(p + 1, pre_end, 1)) {
            *why = "has a malformed pre-release (dot-separated [0-9A-Za-z-] identifiers, "
                   "numeric ones without leading zeros)";
            return -1;
        }
        v->pre = p + 1;
        v->pre_len = (size_t)(pre_end - p - 1);
        p = pre_end;
    }
    if (*p == '+') {
        if (identifiers(p + 1, end, 0)) {
            *why = "has malformed build metadata (dot-separated [0-9A-Za-z-] identifiers)";
            return -1;
        }
        v->build = p + 1;
        v->build_len = (size_t)(end - p - 1);
        p = end;
    }
    if (*p) {
        *why = "must be a semantic version (MAJOR.MINOR.PATCH[-pre][+build])";
        return -1;
    }
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

/* One pre-release identifier against another (rule 11.4). */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    int anum = 1, bnum = 1;
    for (size_t i = 0; i < an; i++)
        anum &= is_digit(a[i]);
    for (size_t i = 0; i < bn; i++)
        bnum &= is_digit(b[i]);
    if (anum && bnum) {
        /* No leading zeros: a longer number is larger. */
        if (an != bn)
            return an < bn ? -1 : 1;
        int c = memcmp(a, b, an);
        return c < 0 ? -1 : c > 0;
    }
    if (anum != bnum)
        return anum ? -1 : 1;
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

int semver_cmp(const semver_t *a, const semver_t *b)
{
    int c = cmp_u64(a->major, b->major);
    if (!c)
        c = cmp_u64(a->minor, b->minor);
    if (!c)
        c = cmp_u64(a->patch, b->patch);
    if (c)
        return c;
    if (!a->pre || !b->pre)
        return (a->pre != NULL) == (b->pre != NULL) ? 0 : a->pre ? -1 : 1;
    const char *p = a->pre, *pe = a->pre + a->pre_len;
    const char *q = b->pre, *qe = b->pre + b->pre_len;
    for (;;) {
        const char *pd = memchr(p, '.', (size_t)(pe - p)), *qd = memchr(q, '.', (size_t)(qe - q));
        size_t pn = (size_t)((pd ? pd : pe) - p), qn = (size_t)((qd ? qd : qe) - q);
        c = cmp_ident(p, pn, q, qn);
        if (c)
            return c;
        if (!pd || !qd)
            return !pd && !qd ? 0 : !pd ? -1 : 1;
        p = pd + 1;
        q = qd + 1;
    }
}

int semver_is_prerelease(const semver_t *v) { return v->pre != NULL; }
