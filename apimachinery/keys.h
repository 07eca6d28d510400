/*
 * keys: where an object is stored, kube-apiserver's key layout:
 *   /<group>/<resource>/<name>               cluster-scoped
 *   /<group>/<resource>/<namespace>/<name>   namespaced
 * and the prefixes a list or watch reads. The one spelling of it: the
 * registry writes and lists by it, the authorizer follows it.
 *
 * Pure functions, thread-safe.
 */
#ifndef EDGE_APIM_KEYS_H
#define EDGE_APIM_KEYS_H

#include <stddef.h>

/* The prefix of every object of a resource, as a string literal (group
 * and resource literals too). */
#define KEYS_PREFIX(group, resource) "/" group "/" resource "/"

/* An object's key into buf (n bytes): ns is used when namespaced (NULL
 * reads as ""). 0, or -1 when it does not fit (buf then holds a cut
 * key, not to be used). */
int keys_object(char *buf, size_t n, const char *group, const char *resource, int namespaced,
                const char *ns, const char *name);

/* The prefix a list or watch reads: of one namespace when namespaced and
 * ns is neither NULL nor "", else of the whole resource. Cut to n bytes
 * (keys are bounded far below what callers pass). */
void keys_prefix(char *buf, size_t n, const char *group, const char *resource, int namespaced,
                 const char *ns);

#endif
