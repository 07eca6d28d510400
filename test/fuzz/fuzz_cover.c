/*
 * Fuzzes the admission step's rule coverage (authz/grant.c): the input is
 * a JSON array [owner, deny, want] of three []PolicyRule. Any input is
 * judged with no crash and no leak, and the judgement is sound: when want
 * is said to be covered, every request a rule of want allows (one made
 * concrete from each rule, wildcards replaced by a name no rule spells) is
 * allowed by owner and denied by no deny rule; and a rule set with no
 * deny covers itself.
 */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "../../authz/authz_internal.h"
#include "fuzz.h"

#define ANY "zz-any"

/* A request rule r allows, from its first verb, group, resource and name
 * (or URL); strings go into buf. 0 when r has none to offer. */
static int concrete(const authz__rule_t *r, char buf[4][300], authz_attrs_t *at)
{
    memset(at, 0, sizeof *at);
    if (!r->verbs.n)
        return 0;
    const char *verb = r->verbs.v[0];
    at->verb = strcmp(verb, "*") ? verb : ANY;
    if (r->urls.n && !r->resources.n) {
        const char *u = r->urls.v[0];
        size_t n = strlen(u);
        snprintf(buf[0], sizeof buf[0], "%.*s%s", (int)(n && u[n - 1] == '*' ? n - 1 : n), u,
                 n && u[n - 1] == '*' ? ANY : "");
        at->path = buf[0];
        return 1;
    }
    if (!r->groups.n || !r->resources.n)
        return 0;
    at->resource_request = 1;
    at->api_group = strcmp(r->groups.v[0], "*") ? r->groups.v[0] : ANY;
    const char *res = r->resources.v[0], *slash = strchr(res, '/');
    snprintf(buf[1], sizeof buf[1], "%.*s", (int)(slash ? (size_t)(slash - res) : strlen(res)), res);
    at->resource = strcmp(buf[1], "*") ? buf[1] : ANY;
    if (slash) {
        snprintf(buf[2], sizeof buf[2], "%s", slash + 1);
        at->subresource = buf[2];
    }
    at->name = r->names.n ? r->names.v[0] : "nm";
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > FUZZ_MAX_LEN)
        return 0;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_array(doc) || json_array_size(doc) != 3) {
        json_decref(doc);
        return 0;
    }
    authz__rules_t owner, deny, want, none = {0, NULL};
    FUZZ_CHECK(authz__rules_parse(json_array_get(doc, 0), &owner) == 0);
    FUZZ_CHECK(authz__rules_parse(json_array_get(doc, 1), &deny) == 0);
    FUZZ_CHECK(authz__rules_parse(json_array_get(doc, 2), &want) == 0);
    const authz__rules_t *allow_sets[] = {&owner}, *deny_sets[] = {&deny}, *no_deny[] = {&none};

    char *missing = NULL;
    int covered = authz__rules_cover(allow_sets, 1, deny_sets, 1, &want, &missing);
    FUZZ_CHECK(covered == 0 || covered == 1);
    FUZZ_CHECK((covered == 0) == (missing != NULL));
    mem_free(missing);
    for (size_t i = 0; covered && i < want.n; i++) {
        char buf[4][300];
        authz_attrs_t at;
        if (!concrete(&want.v[i], buf, &at) || !authz__rule_matches(&want.v[i], &at))
            continue;
        FUZZ_CHECK(authz__rules_match(&owner, &at) >= 0);
        FUZZ_CHECK(authz__rules_match(&deny, &at) < 0);
    }

    /* A URL rule that names resources covers no URL (as in kube, where
     * validation refuses such rules); any other set covers itself. */
    int odd = 0;
    for (size_t i = 0; i < owner.n; i++)
        odd |= owner.v[i].urls.n && owner.v[i].names.n;
    missing = NULL;
    FUZZ_CHECK(odd || authz__rules_cover(allow_sets, 1, no_deny, 1, &owner, &missing) == 1);
    FUZZ_CHECK(missing == NULL);

    authz__rules_free(&owner);
    authz__rules_free(&deny);
    authz__rules_free(&want);
    json_decref(doc);
    return 0;
}
