#include "negotiate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The value of parameter name in a media type's parameter list, copied into
 * out; "" when absent. */
static void param(const char *mt, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = strchr(mt, ';'); p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        if (!strncmp(q, name, nl) && q[nl] == '=') {
            q += nl + 1;
            size_t len = strcspn(q, "; ");
            snprintf(out, n, "%.*s", (int)len, q);
            return;
        }
    }
}

void agg_parse_accept(const char *h, agg_accept_t *a)
{
    memset(a, 0, sizeof *a);
    if (!h || !*h) {
        a->json_ok = a->any = 1;
        return;
    }
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", h);
    char *save = NULL;
    int chosen = 0;
    for (char *mt = strtok_r(buf, ",", &save); mt; mt = strtok_r(NULL, ",", &save)) {
        while (*mt == ' ')
            mt++;
        size_t base = strcspn(mt, "; ");
        int wildcard = (base == 3 && !strncmp(mt, "*/*", 3)) ||
                       (base == 13 && !strncmp(mt, "application/*", 13));
        int json = base == 16 && !strncmp(mt, "application/json", 16);
        if (!json && !wildcard)
            continue;
        char as[64], g[64], v[32];
        param(mt, "as", as, sizeof as);
        param(mt, "g", g, sizeof g);
        param(mt, "v", v, sizeof v);
        if (!*as) {
            a->json_ok = 1;
            if (wildcard)
                a->any = 1;
        }
        if (chosen)
            continue;
        if (!strcmp(as, "Table") && !strcmp(g, "meta.k8s.io") &&
            (!strcmp(v, "v1") || !strcmp(v, "v1beta1"))) {
            a->table = 1;
            a->table_version = !strcmp(v, "v1") ? "meta.k8s.io/v1" : "meta.k8s.io/v1beta1";
            chosen = 1;
        } else if (!strcmp(as, "APIGroupDiscoveryList") && !strcmp(g, "apidiscovery.k8s.io") &&
                   (!strcmp(v, "v2") || !strcmp(v, "v2beta1"))) {
            a->discovery = 1;
            a->discovery_version = !strcmp(v, "v2") ? "apidiscovery.k8s.io/v2"
                                                    : "apidiscovery.k8s.io/v2beta1";
            chosen = 1;
        } else if (!*as) {
            chosen = 1;
        }
    }
}

int agg_body_format(const char *ct)
{
    if (!ct)
        return AGG_BODY_JSON;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (!n)
        return AGG_BODY_JSON;
    if (n == 16 && !strncasecmp(ct, "application/json", n))
        return AGG_BODY_JSON;
    if (n == 16 && !strncasecmp(ct, "application/yaml", n))
        return AGG_BODY_YAML;
    return AGG_BODY_UNSUPPORTED;
}
