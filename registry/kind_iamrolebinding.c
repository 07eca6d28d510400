/* IAMRoleBinding (iam, cluster-scoped): grants an IAMRole to subjects at a
 * scope. */
#include "reg_internal.h"

#include <stdio.h>
#include <string.h>

#include "../apimachinery/selector.h"

static const char *const short_names[] = {"iamrb", NULL};

static const patch_list_rule_t list_rules[] = {
    {"spec.subjects", "kind,name"},
    {"status.conditions", "type"},
    {NULL, NULL},
};

static json_t *cell_role(const json_t *o) { return reg__cell_str(o, "spec.roleRef.name"); }

static json_t *cell_scope(const json_t *o)
{
    const char *level = json_string_value(reg__at(o, "spec.scope.level"));
    const char *name = json_string_value(reg__at(o, "spec.scope.name"));
    if (!level)
        return NULL;
    if (!name || !*name)
        return json_string(level);
    char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", level, name);
    return json_string(buf);
}

static json_t *cell_subjects(const json_t *o) { return reg__cell_join(o, "spec.subjects", "name", 3); }

static const reg_column_t columns[] = {
    {"Role", "string", 0, "The bound IAMRole.", cell_role},
    {"Scope", "string", 0, "Where the binding applies.", cell_scope},
    {"Subjects", "string", 0, "Who it binds.", cell_subjects},
    {NULL, NULL, 0, NULL, NULL},
};

/* 0, or -1 when out of memory. */
static int set_label(json_t *labels, const char *level, const char *value)
{
    char key[64];
    snprintf(key, sizeof key, AUTHZ_LABEL_PREFIX "%s", level);
    /* A label value as kube validates one, and not empty. */
    valid_msgs_t ms;
    if (value && *value && !valid_label_value(value, strlen(value), &ms))
        return json_object_set_new(labels, key, json_string(value));
    return 0;
}

/*
 * Every binding carries its scope as labels (scope.theriseunion.io/cluster,
 * and workspace, nodegroup, namespace or node), so a list or watch with
 * those labels in its selector is placed at that scope (authz/eval.c): a
 * workspace admin lists her workspace's members. The server owns these
 * labels; what a client set under the prefix is replaced. A name that is
 * not a valid label value gets no label (such bindings are listed at the
 * Cluster only). Out of memory, the write fails: a binding stored without
 * its labels would be missing from the lists of its scope.
 */
static int prepare(json_t *obj, const char *cluster, err_t *err)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta))
        return 0;
    json_t *labels = json_object_get(meta, "labels");
    if (!json_is_object(labels)) {
        if (labels)
            return 0;  /* not an object: validation says so */
        labels = json_object();
        /* labels stays borrowed: meta holds it. */
        if (json_object_set_new(meta, "labels", labels))
            return err_set(err, ERR_NOMEM, NULL);
    }
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(labels, tmp, key, v) {
        if (!strncmp(key, AUTHZ_LABEL_PREFIX, strlen(AUTHZ_LABEL_PREFIX)))
            json_object_del(labels, key);
    }
    const char *level = json_string_value(reg__at(obj, "spec.scope.level"));
    const char *name = json_string_value(reg__at(obj, "spec.scope.name"));
    const char *cl = json_string_value(reg__at(obj, "spec.scope.cluster"));
    static const struct { const char *level, *label; } by_level[] = {
        {"Workspace", "workspace"}, {"NodeGroup", "nodegroup"}, {"Namespace", "namespace"},
        {"Node", "node"}, {NULL, NULL},
    };
    int bad = 0;
    if (level && strcmp(level, "Platform")) {
        bad = set_label(labels, "cluster", cl && *cl ? cl : cluster ? cluster : "host");
        for (size_t i = 0; !bad && by_level[i].level; i++)
            if (!strcmp(level, by_level[i].level))
                bad = set_label(labels, by_level[i].label, name);
        if (!bad && !strcmp(level, "Resource"))
            bad = set_label(labels, "namespace",
                            json_string_value(reg__at(obj, "spec.scope.namespace")));
    }
    if (bad)
        return err_set(err, ERR_NOMEM, NULL);
    if (!json_object_size(labels))
        json_object_del(meta, "labels");
    return 0;
}

static void validate(const json_t *obj, const json_t *old, err_t *err)
{
    /* As RBAC: the role of a binding never changes (delete and create
     * instead), so what a binding grants is judged once, by its role. */
    const json_t *ref = reg__at(obj, "spec.roleRef.name");
    if (old && !json_equal(ref, reg__at(old, "spec.roleRef.name")))
        REG_INVALID(err, "FieldValueInvalid", "spec.roleRef",
                    "Invalid value: cannot change roleRef");
    const json_t *subjects = reg__at(obj, "spec.subjects");
    size_t i;
    const json_t *s;
    json_array_foreach(subjects, i, s) {
        const char *kind = json_string_value(json_object_get(s, "kind"));
        const char *ns = json_string_value(json_object_get(s, "namespace"));
        char field[64];
        snprintf(field, sizeof field, "spec.subjects[%zu].namespace", i);
        if (kind && !strcmp(kind, "ServiceAccount") && (!ns || !*ns))
            REG_INVALID(err, "FieldValueRequired", field,
                        "Required value: a ServiceAccount subject needs a namespace");
    }
    const char *level = json_string_value(reg__at(obj, "spec.scope.level"));
    const char *name = json_string_value(reg__at(obj, "spec.scope.name"));
    if (level && strcmp(level, "Platform") && strcmp(level, "Cluster") &&
        strcmp(level, "Resource") && (!name || !*name))
        REG_INVALID(err, "FieldValueRequired", "spec.scope.name",
                    "Required value: a %s scope needs a name", level);
}

const reg_kind_t reg_kind_iamrolebinding = {
    .group = "iam.theriseunion.io", .version = REG_VERSION,
    .resource = "iamrolebindings", .singular = "iamrolebinding", .kind = "IAMRoleBinding",
    .short_names = short_names, .has_status = 1,
    .list_rules = list_rules, .columns = columns, .validate = validate, .prepare = prepare,
    .description =
        "IAMRoleBinding grants an IAMRole to subjects (users, groups, service accounts) at one "
        "scope and everything below it in the scope chain. The server labels every binding with "
        "its scope (scope.theriseunion.io/cluster and workspace, nodegroup, namespace or node), "
        "so the bindings of a scope can be listed with a label selector. Creating or changing "
        "one needs 'bind' on its IAMRole at the binding's scope, or holding every rule the role "
        "grants there.",
    .spec_schema = REG_S_DESC_OBJ_REQ("Which role, to whom, where.", "\"roleRef\",\"scope\"",
        "\"roleRef\":" REG_S_DESC_OBJ_REQ("The IAMRole granted. Required; cannot be changed "
            "(delete the binding and create another).", "\"name\"",
            "\"name\":" REG_S_DESC_STR("Name of the IAMRole. Required.")) ","
        "\"subjects\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
        "\"x-kubernetes-list-map-keys\":[\"kind\",\"name\"],"
        "\"description\":\"Subjects holds references to the objects the role applies to.\","
        "\"items\":" REG_S_DESC_OBJ_REQ("Subject contains a reference to the object or user "
            "identities a role binding applies to.  This can either hold a direct API object "
            "reference, or a value for non-objects such as user and group names.",
            "\"kind\",\"name\"",
            "\"kind\":" REG_S_DESC_ENUM("Kind of object being referenced: User, Group or "
                "ServiceAccount.", "\"User\",\"Group\",\"ServiceAccount\"") ","
            "\"name\":" REG_S_DESC_STR("Name of the object being referenced.") ","
            "\"namespace\":" REG_S_DESC_STR("Namespace of the referenced object: required for "
                "a ServiceAccount, empty for User and Group.") ","
            "\"apiGroup\":" REG_S_DESC_STR("APIGroup holds the API group of the referenced "
                "subject, as in Kubernetes RBAC; informational here.")) "},"
        "\"scope\":" REG_S_SCOPE_REF("Where the binding applies: this scope and everything "
            "below it in the scope chain. Required.")),
    .status_schema = REG_S_DESC_OBJ("The binding's observed state.",
        "\"conditions\":" REG_S_CONDITIONS("Conditions of the binding, in the Kubernetes "
            "shape. No controller writes them today.") ","
        "\"observedGeneration\":" REG_S_DESC_INT("The metadata.generation the status was written "
            "for. No controller writes it today.")),
};
