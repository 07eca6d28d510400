/*
 * authz: every authorization decision of the server.
 *
 * Owns the decision for a (user, request attributes) pair. Today it holds
 * the interim rule: members of system:masters may do anything,
 * authenticated users may read discovery, OpenAPI, health and version,
 * and everything else has no opinion (the caller answers 403). The scope
 * model replaces the inside of authz_authorize, not its callers.
 *
 * Thread-safe; the user and attributes are borrowed for the call.
 */
#ifndef EDGE_AUTHZ_H
#define EDGE_AUTHZ_H

#include <stddef.h>

#define AUTHZ_MAX_GROUPS 64
#define AUTHZ_MAX_EXTRA 16

/* An authenticated (or anonymous) user, as SubjectAccessReview carries it. */
typedef struct authz_user {
    char name[256];
    char uid[128];
    size_t ngroups;
    char groups[AUTHZ_MAX_GROUPS][128];
    size_t nextra;
    struct {
        char key[128];
        char value[256];
    } extra[AUTHZ_MAX_EXTRA];
} authz_user_t;

/* Adds a group unless already present (silently drops past the cap). */
void authz_user_add_group(authz_user_t *u, const char *group);
int authz_user_in_group(const authz_user_t *u, const char *group);

/* What a request does (k8s.io/apiserver/pkg/authorization/authorizer
 * Attributes). */
typedef struct authz_attrs {
    const char *verb;            /* get, list, watch, create, ... */
    int resource_request;
    const char *path;            /* non-resource requests */
    const char *api_group;
    const char *api_version;
    const char *resource;
    const char *subresource;
    const char *namespace_;
    const char *name;
} authz_attrs_t;

typedef enum { AUTHZ_NO_OPINION = 0, AUTHZ_ALLOW = 1, AUTHZ_DENY = 2 } authz_decision_t;

/* Decides; reason (may be NULL) receives a sentence a person can act on. */
authz_decision_t authz_authorize(const authz_user_t *u, const authz_attrs_t *a,
                                 char *reason, size_t reason_len);

#endif
