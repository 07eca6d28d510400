/*
 * The Application controller: what an Application's versions add up to,
 * in its status:
 *   latestVersion  the highest semver precedence among its
 *                  ApplicationVersions (spec.application naming it) in
 *                  phase Approved, pre-releases left out as helm leaves
 *                  them out (1.10.0 > 1.9.3 > 2.0.0-rc.1); absent when
 *                  none is approved;
 *   versionCount   how many ApplicationVersions it has, in any phase.
 * A change of an ApplicationVersion (created, edited, moved to another
 * phase, deleted) queues the Application it names, before and after.
 */
#include <string.h>

#include "../apimachinery/semver.h"
#include "controllers.h"

#define APP_GROUP "app.theriseunion.io"

static const reg_kind_t *versions_kind(void)
{
    return reg_find(APP_GROUP, REG_VERSION, "applicationversions");
}

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    return json_string_value(json_object_get(json_object_get(o, a), b));
}

/* 1 when v (an ApplicationVersion) counts for latestVersion and is above
 * *best (parsed into *best then, its text into *latest). */
static int is_newer(const json_t *v, semver_t *best, const char **latest)
{
    const char *phase = str_at(v, "status", "phase");
    const char *text = str_at(v, "spec", "version");
    semver_t sv;
    if (!phase || strcmp(phase, "Approved") || !text || semver_parse(text, &sv, NULL) ||
        semver_is_prerelease(&sv) || (*latest && semver_cmp(&sv, best) <= 0))
        return 0;
    *best = sv;
    *latest = text;
    return 1;
}

/* The status of Application name from every ApplicationVersion (items),
 * as a new reference in *out. 0 or ERR_NOMEM. */
static int summarize(const char *name, const json_t *items, json_t **out, err_t *err)
{
    semver_t best = {0};
    const char *latest = NULL;
    json_int_t count = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(items, i, v) {
        const char *app = str_at(v, "spec", "application");
        if (!app || strcmp(app, name))
            continue;
        count++;
        is_newer(v, &best, &latest);
    }
    *out = json_pack("{s:I}", "versionCount", count);
    if (*out && latest && json_object_set_new(*out, "latestVersion", json_string(latest))) {
        json_decref(*out);
        *out = NULL;
    }
    return *out ? 0 : err_set(err, ERR_NOMEM, "out of memory");
}

static int reconcile(ctrl_t *c, const char *ns, const char *name, err_t *err)
{
    (void)ns;
    reg_t *reg = ctrl_env(c)->reg;
    const reg_kind_t *vk = versions_kind();
    json_t *app = NULL, *list = NULL, *status = NULL;
    int rc = reg_get(reg, ctrl_kind(c), NULL, name, &app, err);
    if (rc)
        return rc;
    reg_list_opts_t lo;
    memset(&lo, 0, sizeof lo);
    rc = vk ? reg_list(reg, vk, NULL, &lo, &list, err)
            : err_set(err, ERR_INTERNAL, "no ApplicationVersion kind");
    if (!rc)
        rc = summarize(name, json_object_get(list, "items"), &status, err);
    if (!rc)
        rc = ctrl_write_status(c, app, status, NULL, err);
    json_decref(status);
    json_decref(list);
    json_decref(app);
    return rc;
}

/* An ApplicationVersion changed: its Application, and the one it named
 * before when that differs. */
static void map_version(ctrl_t *c, const json_t *obj, const json_t *old)
{
    const char *now = str_at(obj, "spec", "application");
    const char *was = str_at(old, "spec", "application");
    if (now && *now)
        ctrl_enqueue(c, NULL, now);
    if (was && *was && (!now || strcmp(was, now)))
        ctrl_enqueue(c, NULL, was);
}

static const ctrl_watch_t watches[] = {
    {APP_GROUP, "applicationversions", map_version},
    {NULL, NULL, NULL},
};

const ctrl_def_t ctrl_application = {
    .name = "application",
    .group = APP_GROUP, .resource = "applications",
    .watches = watches,
    .reconcile = reconcile,
};
