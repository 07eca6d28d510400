/*
 * validation: kube's checks of names, label keys and label values
 * (k8s.io/apimachinery/pkg/util/validation), with kube's messages word for
 * word: the one copy the registry (object names, labels, annotations) and
 * the selectors (label keys and values in a selector) both use.
 */
#ifndef EDGE_APIM_VALIDATION_H
#define EDGE_APIM_VALIDATION_H

#include <stddef.h>

/* The longest name part and label value, and the longest DNS subdomain. */
#define VALID_NAME_MAX 63
#define VALID_PREFIX_MAX 253

/* Each check fills ms with kube's messages for the n bytes at s, word for
 * word (static strings), one per rule s breaks, and returns how many: 0
 * when s is valid. A caller reports one field error per message, as kube
 * does ("Invalid value: \"<s>\": <message>"). Thread-safe, no allocation. */
#define VALID_MAX_MSGS 4
typedef struct valid_msgs {
    size_t n;
    const char *m[VALID_MAX_MSGS];
} valid_msgs_t;

/* IsDNS1123Subdomain: an object's name (at most 253 characters of
 * [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*). */
size_t valid_dns_subdomain(const char *s, size_t n, valid_msgs_t *ms);

/* A label or annotation key (content.IsLabelKey, the rule of
 * IsQualifiedName): an optional DNS-subdomain prefix and '/', then a name
 * of at most 63 characters of ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]. */
size_t valid_qualified_name(const char *s, size_t n, valid_msgs_t *ms);

/* IsValidLabelValue: empty, or a name as above. */
size_t valid_label_value(const char *s, size_t n, valid_msgs_t *ms);

#endif
