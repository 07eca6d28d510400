/* ApplicationVersion (app, cluster-scoped): one semver release of an
 * Application. */
#include "reg_internal.h"

#include <string.h>

static const char *const short_names[] = {"appver", NULL};

static const patch_list_rule_t list_rules[] = {
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_app(const json_t *o) { return reg__cell_str(o, "spec.application"); }
static json_t *cell_version(const json_t *o) { return reg__cell_str(o, "spec.version"); }
static json_t *cell_phase(const json_t *o) { return reg__cell_str(o, "status.phase"); }

static const reg_column_t columns[] = {
    {"Application", "string", 0, "The application.", cell_app},
    {"Version", "string", 0, "Semantic version.", cell_version},
    {"Phase", "string", 0, "Draft, Submitted, Approved or Rejected.", cell_phase},
    {NULL, NULL, 0, NULL, NULL},
};

/* semver 2.0.0: MAJOR.MINOR.PATCH, numeric parts without leading zeros,
 * optional -prerelease and +build of [0-9A-Za-z.-]. */
static int is_semver(const char *v)
{
    const char *p = *v == 'v' ? v + 1 : v;
    for (int part = 0; part < 3; part++) {
        if (*p < '0' || *p > '9')
            return 0;
        if (*p == '0' && p[1] >= '0' && p[1] <= '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        if (part < 2 && *p++ != '.')
            return 0;
    }
    if (*p == '-' || *p == '+')
        return strspn(p + 1, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-+") ==
                   strlen(p + 1) && p[1];
    return *p == '\0';
}

static void validate(const json_t *obj, const json_t *old, err_t *err)
{
    (void)old;
    const char *v = json_string_value(reg__at(obj, "spec.version"));
    if (v && !is_semver(v))
        REG_INVALID(err, "FieldValueInvalid", "spec.version",
                    "Invalid value: \"%s\": must be a semantic version (MAJOR.MINOR.PATCH)", v);
}

const reg_kind_t reg_kind_applicationversion = {
    .group = "app.theriseunion.io", .version = REG_VERSION,
    .resource = "applicationversions", .singular = "applicationversion",
    .kind = "ApplicationVersion", .short_names = short_names, .has_status = 1,
    .list_rules = list_rules, .columns = columns, .validate = validate,
    .spec_schema =
        "{\"type\":\"object\",\"required\":[\"application\",\"version\"],\"properties\":{"
        "\"application\":" REG_S_STR ",\"version\":" REG_S_STR ",\"type\":" REG_S_STR ","
        "\"workload\":{\"type\":\"object\",\"properties\":{\"template\":" REG_S_ANY ","
        "\"ports\":{\"type\":\"array\",\"items\":" REG_S_ANY "}}},"
        "\"helm\":{\"type\":\"object\",\"properties\":{\"chart\":" REG_S_STR ",\"repository\":" REG_S_STR ","
        "\"version\":" REG_S_STR ",\"values\":" REG_S_ANY "}}}}",
    .status_schema =
        "{\"type\":\"object\",\"properties\":{\"phase\":{\"type\":\"string\",\"enum\":"
        "[\"Draft\",\"Submitted\",\"Approved\",\"Rejected\"]},\"conditions\":" REG_S_CONDITIONS ","
        "\"observedGeneration\":" REG_S_INT "}}",
};
