/*
 * openapi_pb: the OpenAPI v2 document as protocol buffers.
 *
 * kubectl and client-go (discovery's OpenAPISchema()) fetch /openapi/v2
 * with Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf
 * and parse the body as the gnostic message openapi.v2.Document
 * (github.com/google/gnostic-models, openapiv2/OpenAPIv2.proto), the form
 * kube-apiserver serves (k8s.io/kube-openapi/pkg/handler, ToProtoBinary).
 * A JSON body there fails with "proto: cannot parse invalid wire-format
 * data" and with it every client-side validation.
 *
 * What it owns
 *   Nothing beyond one call. The encoder walks the JSON document with a
 *   table per gnostic message (JSON key -> field number and wire form) and
 *   writes the protobuf wire format by hand: varints, length-delimited
 *   strings and nested messages, fixed64 doubles. It calls only jansson
 *   (to read the document and print extension values) and lib/mem.
 *
 * Mapping, as gnostic's compiler does it
 *   - An object key maps to its field; keys starting with "x-" become
 *     NamedAny { name, value: Any { yaml } } entries of the message's
 *     vendor_extension field. The YAML text is the value's JSON text (JSON
 *     is YAML), printed with ": " and ", " separators.
 *   - Maps with free keys (paths, definitions, properties, responses, ...)
 *     become repeated Named<T> { name = 1, value = 2 } in the object's key
 *     order.
 *   - oneof wrappers are chosen from the object: "$ref" makes a
 *     JsonReference; a parameter's "in" picks body, header, formData,
 *     query or path; a schema of type "file" in a response is a FileSchema;
 *     a security scheme's "type" and "flow" pick its message.
 *   - Schema.type is a TypeItem (a string or a list of strings),
 *     Schema.items an ItemsItem (a schema or a list of them),
 *     Schema.additionalProperties an AdditionalPropertiesItem (a schema or
 *     a boolean, false included).
 *   - Scalars equal to their proto3 default ("", false, 0) are left out,
 *     as Go's proto.Marshal does; fields are written in field-number order.
 *
 * Invariants: the input is never modified; the output is a valid encoding
 * or nothing (on failure *out is NULL and *len 0).
 *
 * Thread safety: every function is pure and thread-safe.
 */
#ifndef EDGE_OPENAPI_PB_H
#define EDGE_OPENAPI_PB_H

#include <stddef.h>

#include <jansson.h>

#include "../lib/err.h"

/* The protobuf media types of /openapi/v2. Clients (client-go's
 * OpenAPISchema, kubectl 1.27-1.33) ask with the "@" spelling, but "@" is
 * not a token character, so Go's mime.ParseMediaType rejects it in a
 * Content-Type: kube-openapi's handler answers either request with the
 * dotted spelling, and so must we. */
#define OPB_V2_CONTENT_TYPE "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
#define OPB_V2_ACCEPT_AT "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

/* Nesting deeper than this (objects inside objects of the document) is
 * ERR_INTERNAL rather than a deep recursion. */
#define OPB_MAX_DEPTH 64

/* The Content-Type to answer /openapi/v2 with when an Accept header (NULL:
 * none) names either protobuf spelling (case-insensitively) before any
 * "application/json": OPB_V2_CONTENT_TYPE, a static string. NULL when the
 * client wants JSON. As kube-openapi, the media type named first wins;
 * q-values are not weighed. */
const char *opb_accepts_v2(const char *accept);

/* Encodes an OpenAPI v2 document (the JSON the server serves at
 * /openapi/v2, borrowed) as the gnostic openapi.v2.Document protobuf.
 * Returns 0 with *out a buffer of *len bytes the caller frees with
 * mem_free; ERR_NOMEM; ERR_INTERNAL for a document it cannot represent (a
 * key gnostic does not know outside "x-", a value of the wrong JSON type,
 * an unknown parameter location, nesting beyond OPB_MAX_DEPTH), with the
 * key and message named in err (which may be NULL). On failure *out is
 * NULL and *len 0. */
int opb_encode_v2(const json_t *doc, unsigned char **out, size_t *len, err_t *err);

#endif
