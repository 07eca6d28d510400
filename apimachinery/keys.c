/*
 * The storage key layout. See keys.h.
 */
#include "keys.h"

#include <stdio.h>

int keys_object(char *buf, size_t n, const char *group, const char *resource, int namespaced,
                const char *ns, const char *name)
{
    int len = namespaced ? snprintf(buf, n, "/%s/%s/%s/%s", group, resource, ns ? ns : "", name)
                         : snprintf(buf, n, "/%s/%s/%s", group, resource, name);
    return len > 0 && (size_t)len < n ? 0 : -1;
}

void keys_prefix(char *buf, size_t n, const char *group, const char *resource, int namespaced,
                 const char *ns)
{
    if (namespaced && ns && *ns)
        snprintf(buf, n, "/%s/%s/%s/", group, resource, ns);
    else
        snprintf(buf, n, "/%s/%s/", group, resource);
}
