/*
 * selector: Kubernetes label and field selectors, parsed once and matched
 * against many objects (list filtering, watch filtering, and narrowing an
 * authorization check to one workspace or node group).
 *
 * What it owns
 *   A parsed selector (sel_t) is an AND of requirements, each a key, an
 *   operator and a set of values, copied out of the input so the input may
 *   go away. Label requirements are kept sorted by key (stable for equal
 *   keys), as kube's labels.Parse sorts them; field terms are kept in the
 *   byte order of their text, as fields.ParseSelector sorts them. So
 *   sel_to_string() is canonical.
 *
 * Semantics are those of k8s.io/apimachinery:
 *   - label selectors (pkg/labels/selector.go): `=`, `==` and `in` need the
 *     key present with one of the values; `!=` and `notin` also match when
 *     the key is absent; `k` needs the key, `!k` its absence; `>`/`<` need
 *     the key present with a base-10 int64 value compared numerically.
 *   - field selectors (pkg/fields/selector.go): `=`/`==` and `!=` compare
 *     the field's value, an absent field comparing as "".
 *   The kind a selector was parsed as decides which rules apply, whichever
 *   of sel_matches_labels / sel_matches_fields is called.
 *
 * One file per thing parsed: labels.c (the label selector string),
 * fields.c (the field selector string), label_selector.c (the
 * metav1.LabelSelector object); selector.c holds what they share (the
 * requirements, matching, printing).
 *
 * It calls only mem_* and sbuf for memory, err_set/err_add_cause for
 * errors, jansson to read labels and LabelSelector objects, validation.h
 * for kube's checks of label keys and values (the one copy the registry
 * shares) and quote.h for Go's %q in messages.
 *
 * Errors: 0 on success, or a negative ERR_* code with details in err (the
 * first error wins, see err.h):
 *   ERR_BAD_REQUEST  a malformed selector string (kube answers 400 for a bad
 *                    labelSelector/fieldSelector query parameter), with the
 *                    message kube gives, e.g. `unable to parse requirement:
 *                    found '', expected: identifier`;
 *   ERR_INVALID      a metav1.LabelSelector object that fails validation,
 *                    one err cause per field error;
 *   ERR_NOMEM        an allocation failed; nothing is leaked and *out is
 *                    left NULL.
 *
 * Thread safety: parsing touches no shared state; a built sel_t is
 * immutable, so any number of threads may match against it at once. Only
 * sel_free must not race with other uses of the same selector.
 */
#ifndef EDGE_SELECTOR_H
#define EDGE_SELECTOR_H

#include <jansson.h>

#include "../lib/err.h"
#include "validation.h"

typedef struct sel sel_t;   /* an immutable parsed selector; thread-safe to share once built */

/* Parses a label selector string, exactly k8s.io/apimachinery/pkg/labels.Parse
 * syntax: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists),
 * `!k` (does not exist), `k>5`, `k<5` (integer values), comma-separated
 * requirements, whitespace (space, tab, CR, LF) tolerated between tokens.
 * Keys are label keys (optional DNS-subdomain prefix + "/" + a name of at
 * most 63 chars [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?); values are label
 * values (at most 63 chars, same charset, may be empty). `in`/`notin` value
 * sets are de-duplicated and sorted. The empty string is the empty selector
 * (matches everything).
 * Returns 0 and *out (caller-owned, sel_free), ERR_BAD_REQUEST with kube's
 * message, or ERR_NOMEM. The caller caps the length of s. */
int sel_parse_labels(const char *s, sel_t **out, err_t *err);

/* Parses a field selector string, fields.ParseSelector syntax: `k=v`,
 * `k==v`, `k!=v`, comma-separated, no whitespace trimming. In values a
 * backslash escapes `\`, `,` and `=` (`\\`, `\,`, `\=`); any other escape, a
 * trailing backslash, or an unescaped `,`/`=` in a value is ERR_BAD_REQUEST
 * (`invalid field selector: ...`), as is a term with no operator
 * (`invalid selector: '<s>'; can't understand '<term>'`). The first operator
 * in a term splits it, so field names cannot contain `=` or `!=`.
 * Only field names listed in `allowed` (a NULL-terminated array; NULL
 * allows every name) are accepted, others give ERR_BAD_REQUEST
 * `field label not supported: <name>` (reported after syntax errors, as kube
 * parses the whole selector before converting field labels).
 * Returns 0 and *out (caller-owned, sel_free), ERR_BAD_REQUEST or
 * ERR_NOMEM. */
int sel_parse_fields(const char *s, const char *const *allowed, sel_t **out,
                     err_t *err);

/* Builds a selector from a metav1.LabelSelector JSON object (borrowed):
 * matchLabels (object of string values) and matchExpressions (array of
 * {key, operator: In|NotIn|Exists|DoesNotExist, values: [string]}), AND-ed.
 * Validated like kube's ValidateLabelSelector: keys must be label keys and
 * values label values, In/NotIn need non-empty values, Exists/DoesNotExist
 * none, and the operator must be one of the four. Failures are ERR_INVALID
 * with one err cause per field error (fields relative to the selector, e.g.
 * `matchExpressions[0].values`) and a message listing them; a malformed
 * shape (not an object, a non-string value, ...) is ERR_INVALID too.
 * NULL, JSON null or {} select everything (unlike
 * metav1.LabelSelectorAsSelector, which maps a nil selector to "nothing";
 * callers wanting that check for NULL themselves).
 * Returns 0 and *out (caller-owned, sel_free), ERR_INVALID or ERR_NOMEM. */
int sel_from_label_selector(const json_t *ls, sel_t **out, err_t *err);

/* 1 if the labels (a borrowed JSON object of string->string, or NULL = no
 * labels) satisfy every requirement, else 0. A label whose value is not a
 * string counts as absent. Thread-safe. */
int sel_matches_labels(const sel_t *s, const json_t *labels);

/* 1 if the fields satisfy the selector, else 0; get(arg, name) returns the
 * field's value (borrowed, used only during the call) or NULL when absent
 * (absent compares as "" for a field selector). Thread-safe if get is. */
int sel_matches_fields(const sel_t *s,
                       const char *(*get)(void *arg, const char *name),
                       void *arg);

/* 1 when the selector has no requirements (matches everything). */
int sel_is_empty(const sel_t *s);

/* If the selector requires key to equal exactly one value (`key=v`,
 * `key==v` or `key in (v)`), returns that value (borrowed, valid while s
 * lives); else NULL. As kube's RequiresExactMatch: for a label selector
 * only the first requirement on key is considered; for a field selector the
 * first `=`/`==` term on key. Used to narrow authorization to a workspace
 * or node group. */
const char *sel_required_value(const sel_t *s, const char *key);

/* The selector in canonical string form, as labels.Selector.String():
 * requirements sorted by key, joined with ",", set values sorted, e.g.
 * `a!=b,env in (dev,prod),!x`; for a field selector as
 * fields.Selector.String(): terms in their sorted order, `==` written `=`,
 * values re-escaped. "" for the empty selector. Caller frees with mem_free;
 * NULL on OOM. */
char *sel_to_string(const sel_t *s);

/* Frees s; NULL is a no-op. */
void sel_free(sel_t *s);

#endif
