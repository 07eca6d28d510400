/*
 * apply: server-side apply and metadata.managedFields, as kube-apiserver
 * does them (sigs.k8s.io/structured-merge-diff v4 under
 * k8s.io/apimachinery/pkg/util/managedfields).
 *
 * What it owns
 *   The field sets of managedFields entries and the two operations that
 *   change them: an Apply (PATCH application/apply-patch+yaml), which merges
 *   a manager's full configuration into the object, and an ordinary write
 *   (create, update, patch), which records what the writer changed. Nothing
 *   is kept between calls; inputs are borrowed and never modified, except
 *   the object apply_track_update is asked to annotate.
 *
 * Field sets
 *   A set is the FieldsV1 JSON kube stores: "f:<name>" for a map field,
 *   "k:<merge keys as compact JSON, keys sorted>" for an item of a keyed
 *   list, "v:<JSON value>" for an item of a list of scalars merged as a set,
 *   and "." for the node itself when a node with children is owned, e.g.
 *     {"f:spec":{"f:replicas":{},"f:subjects":{"k:{\"kind\":\"User\",\"name\":\"a\"}":
 *       {".":{},"f:kind":{},"f:name":{}}}}}
 *   Without a schema, every map is read as a struct: a manager owns the
 *   leaves it sets (scalars, null, atomic lists, empty maps and lists) and
 *   the items of keyed and set lists, never a non-empty map by setting its
 *   fields. A list is keyed or a set when the kind's patch_list_rule_t table
 *   (or the shared metadata rules: finalizers as a set, ownerReferences by
 *   uid) names its dotted path; any other list is atomic.
 *   Never tracked (kube's stripMeta, plus the deletion fields): apiVersion,
 *   kind, metadata itself, metadata.name, namespace, uid, resourceVersion,
 *   generation, creationTimestamp, deletionTimestamp,
 *   deletionGracePeriodSeconds, managedFields, selfLink and clusterName.
 *   status is the caller's business: the registry strips it, or passes only
 *   it, before calling.
 *
 * Managers
 *   An entry's identity is (manager, operation, subresource) for Apply and
 *   (manager, operation, apiVersion, subresource) for Update, so a manager's
 *   Apply and Update entries are different owners and may conflict. Entries
 *   with empty sets are dropped. When more than 10 Update entries exist the
 *   oldest are merged into an "ancient-changes" entry per apiVersion.
 *   Entries come out sorted as kube sorts them: Apply before Update, then by
 *   time (seconds), manager, apiVersion and subresource.
 *
 * Errors: 0, or a negative ERR_* with err filled (first error wins).
 * Nesting deeper than PATCH_MAX_DEPTH is ERR_BAD_REQUEST. Thread-safe: no
 * shared state.
 */
#ifndef EDGE_APPLY_H
#define EDGE_APPLY_H

#include <jansson.h>

#include "../lib/err.h"
#include "patch.h"

/* Server-side apply of `applied` (the manager's full configuration) onto
 * `live` (the current object; NULL when it does not exist yet).
 *
 * *out (a new object, caller owns, sharing nothing with the inputs) is live
 * with every field applied sets merged in (maps recursively; keyed lists item
 * by item, in kube's merged order; set lists by value; atomic lists and
 * scalars replaced), minus every field this manager's previous Apply owned
 * that applied no longer sets and no other manager owns (a map or list left
 * empty by such a removal goes too, unless someone owns it), with
 * metadata.managedFields updated: the manager's Apply entry
 * {"manager","operation":"Apply","apiVersion":api_version,"time":now,
 * "fieldsType":"FieldsV1","fieldsV1":<fields applied sets>} replaces its
 * previous one; other managers lose the fields this apply changed or removed.
 * An apply that changes no field of the object keeps its entry's previous
 * time (as kube does; a new entry gets now), so re-applying the same
 * configuration returns an object equal to live and the caller can skip
 * the write.
 *
 * Conflicts: a field another manager owns whose value this apply would
 * change (same value: shared ownership, no conflict). Without force:
 * ERR_CONFLICT, with kube's message, for one conflict
 *   Apply failed with 1 conflict: conflict with "ctl" using v1: .spec.x
 * and for several, grouped by manager,
 *   Apply failed with 2 conflicts: conflicts with "a":\n- .spec.x\nconflicts with "ctl" using v1:\n- .spec.y
 * ("using <apiVersion>" for Update owners only), and one cause per conflict:
 * type "FieldManagerConflict", field ".spec.x", message `conflict with "ctl"
 * using v1`. With force the other managers lose those fields.
 *
 * Errors: ERR_BAD_REQUEST when applied is not an object, its
 * apiVersion/kind differ from api_version / live's kind ("invalid object
 * type: <group>/<version>, Kind=<kind>"), it carries
 * metadata.managedFields ("metadata.managedFields must be nil"), or nesting
 * is too deep; ERR_INVALID when manager is empty ("fieldManager: Required
 * value"); ERR_INTERNAL, as kube's 500, when a keyed or set list of applied
 * is malformed ("failed to create typed patch object (<ns>/<name>; <gvk>):
 * .spec.subjects: duplicate entries for key [kind=\"User\",name=\"a\"]") or
 * live's managedFields cannot be decoded (or live is not an object, or
 * api_version is NULL); ERR_CONFLICT; ERR_NOMEM. *out is NULL on failure. */
int apply_patch(const json_t *live, const json_t *applied, const char *manager, int force,
                const char *api_version, const char *now, const patch_list_rule_t *rules,
                json_t **out, err_t *err);

/* Records an ordinary write (create, update, patch) by manager in obj's
 * metadata.managedFields; obj is modified in place, nothing else of it.
 * old is the object before the write (NULL on create).
 *
 * The starting entries are old's, unless obj carries managedFields of its
 * own: [] or [{}] resets them (kube's isResetManagedFields), a non-empty list
 * that decodes is taken as given (clients may edit managedFields), anything
 * else falls back to old's. Then every entry loses the fields whose value
 * differs between old and obj (added, modified or removed), and the
 * manager's Update entry (operation "Update", apiVersion api_version, time
 * now) gains those added or modified; when there are none (nothing changed,
 * or only removals) no entry gains anything and no time moves. A map or
 * list item that did not exist before is owned as a node (".") by the
 * writer.
 * Empty entries are dropped; no entries left removes the key.
 *
 * Returns 0; ERR_BAD_REQUEST for nesting deeper than PATCH_MAX_DEPTH;
 * ERR_INTERNAL when obj is not an object or api_version is NULL; ERR_NOMEM
 * (obj keeps the managedFields it came with). Malformed keyed-list
 * items are not tracked (kube tracks what it can and never fails a write
 * over managedFields). */
int apply_track_update(const json_t *old, json_t *obj, const char *manager,
                       const char *api_version, const char *now,
                       const patch_list_rule_t *rules, err_t *err);

/* The FieldsV1 set of obj (a new reference, caller owns): what a manager
 * applying obj would own, untracked fields left out, keys in kube's order
 * ("." first, then f:, k:, v: each sorted). Items of a keyed list lacking a
 * key, and repeated items, are skipped. NULL on allocation failure or
 * nesting deeper than PATCH_MAX_DEPTH. */
json_t *apply_fields_of(const json_t *obj, const patch_list_rule_t *rules);

/* apply_track_update for a write through a subresource ("status"): the
 * manager's entry is the one with that subresource, as kube records
 * writes to /status separately. */
int apply_track_update_sub(const json_t *old, json_t *obj, const char *manager,
                           const char *subresource, const char *api_version, const char *now,
                           const patch_list_rule_t *rules, err_t *err);

/* apply_patch through a subresource ("status"): the manager's Apply entry
 * is the one recorded with that subresource. */
int apply_patch_sub(const json_t *live, const json_t *applied, const char *manager,
                    const char *subresource, int force, const char *api_version,
                    const char *now, const patch_list_rule_t *rules, json_t **out, err_t *err);

/* apply_patch_sub where conflicts that are all with the entries of
 * manager `yielding` (any operation, any subresource) are no conflicts:
 * the apply goes on as forced and that manager loses the fields. A
 * conflict with any other manager is ERR_CONFLICT as without it, naming
 * every conflict. It decides on the conflicting entries themselves, not
 * on the error's text or its causes (of which err keeps at most
 * ERR_MAX_CAUSES). yielding NULL: apply_patch_sub. The registry passes
 * "kubectl-client-side-apply" for kube's lastAppliedManager. */
int apply_patch_yielding(const json_t *live, const json_t *applied, const char *manager,
                         const char *subresource, int force, const char *yielding,
                         const char *api_version, const char *now,
                         const patch_list_rule_t *rules, json_t **out, err_t *err);

#endif
