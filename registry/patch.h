/*
 * patch: the three PATCH formats kube-apiserver accepts besides apply:
 * RFC 6902 JSON patch, RFC 7386 JSON merge patch, and Kubernetes strategic
 * merge patch (k8s.io/apimachinery/pkg/util/strategicpatch).
 *
 * Owns nothing beyond each call. Inputs are borrowed and never modified;
 * each function returns a new document (*out, a reference the caller owns)
 * or a negative ERR_* code with details in err:
 *   ERR_BAD_REQUEST  the patch itself is malformed (kube: 400 BadRequest)
 *   ERR_INVALID      a well-formed patch cannot apply to this document, e.g.
 *                    a JSON patch "test" fails or a path is missing
 *                    (kube: 422 Invalid)
 *   ERR_NOMEM
 * Nesting deeper than PATCH_MAX_DEPTH is ERR_BAD_REQUEST.
 *
 * Strategic merge needs to know, per list field, whether it merges by key:
 * a kind passes a table of patch_list_rule_t. Lists without a rule are
 * replaced wholesale, as for CRDs. Thread-safe: no shared state.
 */
#ifndef EDGE_PATCH_H
#define EDGE_PATCH_H

#include <jansson.h>

#include "../storage/err.h"

#define PATCH_MAX_DEPTH 64

/* A list field that strategic merge (and server-side apply) merge by key.
 * path: the dotted field path from the object root, list items adding no
 * segment ("spec.subjects", "status.conditions",
 * "spec.workload.template.spec.containers"). keys: comma-separated merge
 * keys ("type", "kind,name"); NULL for a list of scalars merged as a set
 * (like metadata.finalizers). Tables end with {NULL, NULL}. */
typedef struct patch_list_rule {
    const char *path;
    const char *keys;
} patch_list_rule_t;

/* The rules every kind shares (metadata.finalizers as a set,
 * metadata.ownerReferences by uid); kinds append their own. */
extern const patch_list_rule_t patch_metadata_rules[];

/* Finds the rule for path in rules, then in patch_metadata_rules; NULL if
 * none. */
const patch_list_rule_t *patch_find_rule(const patch_list_rule_t *rules,
                                         const char *path);

int patch_json(const json_t *doc, const json_t *ops, json_t **out, err_t *err);
int patch_merge(const json_t *doc, const json_t *patch, json_t **out, err_t *err);
int patch_strategic(const json_t *doc, const json_t *patch,
                    const patch_list_rule_t *rules, json_t **out, err_t *err);

#endif
