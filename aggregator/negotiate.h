/*
 * negotiate: what representation a client asked for in its Accept header.
 *
 * Kubernetes clients name the representation in media-type parameters:
 * `application/json;as=Table;v=v1;g=meta.k8s.io` for Tables,
 * `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`
 * for aggregated discovery. The first media type in the list that the
 * server can produce wins, as in kube's negotiation
 * (k8s.io/apiserver/pkg/endpoints/handlers/negotiation). Pure; thread-safe.
 */
#ifndef EDGE_AGG_NEGOTIATE_H
#define EDGE_AGG_NEGOTIATE_H

typedef struct agg_accept {
    int table;                     /* as=Table;g=meta.k8s.io */
    const char *table_version;     /* "meta.k8s.io/v1" or "meta.k8s.io/v1beta1" */
    int discovery;                 /* as=APIGroupDiscoveryList */
    const char *discovery_version; /* "apidiscovery.k8s.io/v2" or ".../v2beta1" */
    int json_ok;                   /* plain JSON is acceptable somewhere in the list */
    int any;                       /* nothing was asked, or a wildcard */
} agg_accept_t;

/* Reads an Accept header (NULL or "" accepts anything). Strings in *a are
 * static. */
void agg_parse_accept(const char *header, agg_accept_t *a);

/* What a request body's Content-Type says it is, as kube's input
 * negotiation: no Content-Type is JSON; parameters (charset) are ignored;
 * the media type compares without regard to case. */
enum { AGG_BODY_UNSUPPORTED = -1, AGG_BODY_JSON = 0, AGG_BODY_YAML = 1 };
int agg_body_format(const char *content_type);

/* The 415 message for a body in any other format. */
#define AGG_BODY_FORMATS_MSG                                                           \
    "the body of the request was in an unknown format - accepted media types include: " \
    "application/json, application/yaml"

#endif
