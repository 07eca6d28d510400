/*
 * kube's name checks. See validation.h.
 */
#include "validation.h"

#include <string.h>

#define VALID_QNAME_MSG                                                      \
    "must consist of alphanumeric characters, '-', '_' or '.', and must "    \
    "start and end with an alphanumeric character (e.g. 'MyName',  or "      \
    "'my.name',  or '123-abc', regex used for validation is "                \
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define VALID_DNS_MSG                                                        \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric " \
    "characters, '-' or '.', and must start and end with an alphanumeric "   \
    "character (e.g. 'example.com', regex used for validation is "           \
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define VALID_VALUE_MSG                                                      \
    "a valid label must be an empty string or consist of alphanumeric "      \
    "characters, '-', '_' or '.', and must start and end with an "           \
    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "  \
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

static void msgs_add(valid_msgs_t *ms, const char *m)
{
    if (ms->n < sizeof ms->m / sizeof ms->m[0])
        ms->m[ms->n++] = m;
}

static int valid_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static int valid_is_name(const char *s, size_t n)
{
    if (n == 0 || !valid_is_alnum(s[0]) || !valid_is_alnum(s[n - 1]))
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!valid_is_alnum(s[i]) && !strchr("-_.", s[i]))
            return 0;
    return 1;
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)* */
static int valid_is_dns_subdomain(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return 0;
            continue;
        }
        /* s[start, i) is one DNS label */
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return 0;
        start = i + 1;
    }
    return 1;
}

size_t valid_dns_subdomain(const char *s, size_t n, valid_msgs_t *ms)
{
    ms->n = 0;
    if (n > VALID_PREFIX_MAX)
        msgs_add(ms, "must be no more than 253 characters");
    if (!valid_is_dns_subdomain(s, n))
        msgs_add(ms, VALID_DNS_MSG);
    return ms->n;
}

/* content.IsLabelKey: an optional DNS-subdomain prefix and '/', then a
 * name. */
size_t valid_qualified_name(const char *s, size_t n, valid_msgs_t *ms)
{
    const char *slash = memchr(s, '/', n);
    const char *name = s;
    size_t name_n = n;

    ms->n = 0;
    if (slash) {
        size_t pre_n = (size_t)(slash - s);
        name = slash + 1;
        name_n = n - pre_n - 1;
        if (memchr(name, '/', name_n)) {
            msgs_add(ms, "a valid label key " VALID_QNAME_MSG
                     " with an optional DNS subdomain prefix and '/' "
                     "(e.g. 'example.com/MyName')");
            return ms->n;
        }
        if (pre_n == 0) {
            msgs_add(ms, "prefix part must be non-empty");
        } else {
            if (pre_n > VALID_PREFIX_MAX)
                msgs_add(ms, "prefix part must be no more than 253 characters");
            if (!valid_is_dns_subdomain(s, pre_n))
                msgs_add(ms, "prefix part " VALID_DNS_MSG);
        }
    }
    if (name_n == 0)
        msgs_add(ms, "name part must be non-empty");
    else if (name_n > VALID_NAME_MAX)
        msgs_add(ms, "name part must be no more than 63 characters");
    if (!valid_is_name(name, name_n))
        msgs_add(ms, "name part " VALID_QNAME_MSG);
    return ms->n;
}

/* validation.IsValidLabelValue */
size_t valid_label_value(const char *s, size_t n, valid_msgs_t *ms)
{
    ms->n = 0;
    if (n > VALID_NAME_MAX)
        msgs_add(ms, "must be no more than 63 characters");
    if (n && !valid_is_name(s, n))
        msgs_add(ms, VALID_VALUE_MSG);
    return ms->n;
}

