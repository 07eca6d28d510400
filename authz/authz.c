#include "authz.h"

#include <stdio.h>
#include <string.h>

void authz_user_add_group(authz_user_t *u, const char *group)
{
    if (authz_user_in_group(u, group) || u->ngroups >= AUTHZ_MAX_GROUPS)
        return;
    snprintf(u->groups[u->ngroups++], sizeof u->groups[0], "%s", group);
}

int authz_user_in_group(const authz_user_t *u, const char *group)
{
    for (size_t i = 0; i < u->ngroups; i++)
        if (!strcmp(u->groups[i], group))
            return 1;
    return 0;
}

/* Paths any authenticated user may read (kube's system:discovery and
 * system:public-info-viewer roles). */
static const char *const discovery_prefixes[] = {"/api", "/apis", "/openapi", "/version",
                                                 "/healthz", "/livez", "/readyz", NULL};

static int is_discovery(const char *path)
{
    for (size_t i = 0; discovery_prefixes[i]; i++) {
        size_t n = strlen(discovery_prefixes[i]);
        if (!strncmp(path, discovery_prefixes[i], n) && (path[n] == '\0' || path[n] == '/'))
            return 1;
    }
    return 0;
}

authz_decision_t authz_authorize(const authz_user_t *u, const authz_attrs_t *a,
                                 char *reason, size_t reason_len)
{
    char dummy[8];
    if (!reason) {
        reason = dummy;
        reason_len = sizeof dummy;
    }
    if (authz_user_in_group(u, "system:masters")) {
        snprintf(reason, reason_len, "allowed: member of system:masters");
        return AUTHZ_ALLOW;
    }
    if (!a->resource_request && !strcmp(a->verb, "get") &&
        authz_user_in_group(u, "system:authenticated") && is_discovery(a->path)) {
        snprintf(reason, reason_len, "allowed: discovery is readable by authenticated users");
        return AUTHZ_ALLOW;
    }
    snprintf(reason, reason_len, "no rule allows it");
    return AUTHZ_NO_OPINION;
}
