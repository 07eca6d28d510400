/* ApplicationVersion (app, cluster-scoped): one semver release of an
 * Application. Rules beyond the schema:
 *   - spec.version is semver 2.0 (no leading v), unique per
 *     spec.application (a claim key, reg_unique_t);
 *   - status.phase is Draft on create and moves only through /status,
 *     Draft -> Submitted -> Approved or Rejected (moves[]); any other
 *     move is 422 on status.phase;
 *   - the spec is immutable once the phase is not Draft. */
#include "reg_internal.h"

#include <string.h>

#include "../apimachinery/keys.h"
#include "../apimachinery/semver.h"
#include "../apimachinery/validation.h"

/* Semantic Versioning 2.0.0, semver.org's own regular expression (no
 * leading v), as JSON string text: the pattern of spec.version, which
 * documents what validate_spec checks with semver_parse. */
#define SEMVER_PATTERN \
    "^(0|[1-9]\\\\d*)\\\\.(0|[1-9]\\\\d*)\\\\.(0|[1-9]\\\\d*)(?:-" \
    "((?:0|[1-9]\\\\d*|\\\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\\\.(?:0|[1-9]\\\\d" \
    "*|\\\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\\\+([0-9a-zA-Z-]+(?:\\\\.[0-9a-zA-Z-]+)*))?$"

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

/* The phases and the moves between them, all through /status:
 * Draft -> Submitted -> Approved or Rejected. Withdrawing (Submitted ->
 * Draft) is not one of them; a status write that keeps the phase is. */
static const struct {
    const char *from, *to;
} moves[] = {
    {"Draft", "Submitted"},
    {"Submitted", "Approved"},
    {"Submitted", "Rejected"},
    {NULL, NULL},
};

static const char *phase_of(const json_t *obj)
{
    const char *p = json_string_value(reg__at(obj, "status.phase"));
    return p ? p : "Draft";
}

static int may_move(const char *from, const char *to)
{
    if (!strcmp(from, to))
        return 1;
    for (size_t i = 0; moves[i].from; i++) {
        if (!strcmp(moves[i].from, from) && !strcmp(moves[i].to, to))
            return 1;
    }
    return 0;
}

/* A new version starts in Draft whatever the body said (create drops the
 * client's status); a phase dropped by a status write is Draft again. */
static int prepare(json_t *obj, const char *cluster, err_t *err)
{
    (void)cluster;
    json_t *st = json_object_get(obj, "status");
    if (!json_is_object(st)) {
        st = json_object();
        if (json_object_set_new(obj, "status", st))
            return err_set(err, ERR_NOMEM, NULL);
    }
    if (json_object_get(st, "phase"))
        return 0;
    return json_object_set_new(st, "phase", json_string("Draft")) ? err_set(err, ERR_NOMEM, NULL)
                                                                   : 0;
}

static void validate_spec(const json_t *obj, err_t *err)
{
    const char *v = json_string_value(reg__at(obj, "spec.version"));
    const char *why = NULL;
    semver_t sv;
    if (v && semver_parse(v, &sv, &why))
        REG_INVALID(err, "FieldValueInvalid", "spec.version", "Invalid value: \"%s\": %s", v, why);
    const char *app = json_string_value(reg__at(obj, "spec.application"));
    valid_msgs_t ms;
    if (app && valid_dns_subdomain(app, strlen(app), &ms))
        REG_INVALID(err, "FieldValueInvalid", "spec.application",
                    "Invalid value: \"%s\": %s", app, ms.m[0]);
}

/* The phase moves only as moves[] allows; the spec is frozen once the
 * version left Draft. */
static void validate_change(const json_t *obj, const json_t *old, err_t *err)
{
    const char *from = phase_of(old), *to = phase_of(obj);
    if (!may_move(from, to))
        REG_INVALID(err, "FieldValueInvalid", "status.phase",
                    "Invalid value: \"%s\": may not move from %s to %s (the phases go "
                    "Draft -> Submitted -> Approved or Rejected)", to, from, to);
    if (strcmp(from, "Draft") && !json_equal(json_object_get(obj, "spec"), json_object_get(old, "spec")))
        REG_INVALID(err, "FieldValueForbidden", "spec",
                    "Forbidden: is immutable once submitted (phase %s)", from);
}

static void validate(const json_t *obj, const json_t *old, err_t *err)
{
    validate_spec(obj, err);
    if (old)
        validate_change(obj, old, err);
}

/* The claim on spec.version within spec.application:
 * /app.theriseunion.io/applicationversion-versions/<application>/<version>,
 * a prefix no kind serves. */
static int version_key(const json_t *obj, char *buf, size_t n)
{
    const char *app = json_string_value(reg__at(obj, "spec.application"));
    const char *v = json_string_value(reg__at(obj, "spec.version"));
    semver_t sv;
    valid_msgs_t ms;
    if (!app || !v || valid_dns_subdomain(app, strlen(app), &ms) || semver_parse(v, &sv, NULL))
        return 0;
    return !keys_object(buf, n, "app.theriseunion.io", "applicationversion-versions", 1, app, v);
}

static const reg_unique_t unique_version = {"spec.version", version_key};

const reg_kind_t reg_kind_applicationversion = {
    .group = "app.theriseunion.io", .version = REG_VERSION,
    .resource = "applicationversions", .singular = "applicationversion",
    .kind = "ApplicationVersion", .short_names = short_names, .has_status = 1,
    .list_rules = list_rules, .columns = columns, .validate = validate, .prepare = prepare,
    .unique = &unique_version,
    .description =
        "ApplicationVersion is one semver release of an Application: a workload (a pod template "
        "and service ports) or a Helm chart. It starts in phase Draft and moves only through the "
        "status subresource, Draft -> Submitted -> Approved or Rejected; its spec is immutable "
        "once it has left Draft. Only Approved versions are deployed.",
    .spec_schema = REG_S_DESC_OBJ_REQ("The release: which application, which version, and what "
        "it deploys. Immutable once the phase is not Draft.", "\"application\",\"version\"",
        "\"application\":" REG_S_DESC_STR("Name of the Application this is a version of (a DNS "
            "subdomain). Required.") ","
        "\"version\":" REG_S_DESC_PATTERN("The version, Semantic Versioning 2.0.0 without a "
            "leading v (1.2.3, 1.2.3-rc.1, 1.2.3+build.5); unique within the application. "
            "Required.", SEMVER_PATTERN) ","
        "\"type\":" REG_S_DESC_STR("How the version is deployed: workload, helm, or the name "
            "of a registered plugin. Empty: the Application's spec.type, else workload.") ","
        "\"workload\":" REG_S_DESC_OBJ("For type workload: what the ApplicationDeployment "
            "controller server-side-applies on each topology's cluster, a Deployment pinned to "
            "the node group's nodes and, when ports are given, a Service.",
            "\"template\":" REG_S_DESC_ANY("The Deployment's pod template (a core/v1 "
                "PodTemplateSpec: metadata and spec); spec.containers is required.") ","
            "\"ports\":" REG_S_DESC_ARRAY("The Service's ports (core/v1 ServicePort objects); "
                "none: no Service.", REG_S_ANY)) ","
        "\"helm\":" REG_S_DESC_OBJ("For type helm: the chart the ApplicationDeployment "
            "controller installs on each topology's cluster, as release "
            "<deployment>-<nodegroup>.",
            "\"chart\":" REG_S_DESC_STR("The chart's name in the repository.") ","
            "\"repository\":" REG_S_DESC_STR("URL of the Helm chart repository (its index.yaml "
                "and chart archives); must be allowed by the server's "
                "--allowed-chart-repositories.") ","
            "\"version\":" REG_S_DESC_STR("The chart version; empty: the highest in the "
                "repository's index.") ","
            "\"values\":" REG_S_DESC_ANY("Helm values; each topology's values are merged over "
                "them, and replicaCount is set to the topology's replicas."))),
    .status_schema = REG_S_DESC_OBJ("Where the version is in its review. Written through the "
        "status subresource only.",
        "\"phase\":" REG_S_DESC_ENUM("Draft (set on create), Submitted, Approved or Rejected. "
            "Moves only through the status subresource, Draft -> Submitted -> Approved or "
            "Rejected; any other move is refused. Written by reviewers, not by a controller.",
            "\"Draft\",\"Submitted\",\"Approved\",\"Rejected\"") ","
        "\"conditions\":" REG_S_CONDITIONS("Conditions of the version, in the Kubernetes shape, "
            "written through the status subresource; no controller writes them today.") ","
        "\"observedGeneration\":" REG_S_DESC_INT("The metadata.generation the status was "
            "written for; no controller writes it today.")),
};
