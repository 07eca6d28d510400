/*
 * The OpenAPI v2 document as gnostic's openapi.v2.Document protobuf. See
 * openapi_pb.h for the mapping.
 *
 * How a message is written: each gnostic message is an opb_msg_t, either a
 * table of fields in field-number order or, for a oneof wrapper, a table
 * of alternatives. encode_msg() checks that every key of the JSON object
 * has a place in the message, then writes the fields in table order. A
 * nested message is length-delimited, and its length is known only once
 * it is written: begin_nested() writes the tag and remembers where the
 * body starts, end_nested() slides the body right by the size of its
 * length varint and writes the length in front. Each level moves its own
 * bytes once, so the cost is the document size times its depth (about a
 * dozen), with no sizing pass and no second buffer.
 */
#include "openapi_pb.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "../lib/sbuf.h"

/* Wire types (protobuf encoding spec). */
#define WT_VARINT 0
#define WT_FIXED64 1
#define WT_LEN 2

/* ---- the output buffer ----------------------------------------------------- */

/* The document is written into an sbuf, filled in place after
 * sbuf_grow (which keeps room for the NUL the sbuf always ends with). */

/* Room for n more bytes at at(b), or ERR_NOMEM. */
static int reserve(sbuf_t *b, size_t n, err_t *err)
{
    return sbuf_grow(b, n) ? err_set(err, ERR_NOMEM, NULL) : 0;
}

/* Where the next byte goes. */
static unsigned char *at(sbuf_t *b) { return (unsigned char *)b->p + b->len; }

/* Advances past n bytes written at at(b). */
static void wrote(sbuf_t *b, size_t n)
{
    b->len += n;
    b->p[b->len] = '\0';
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v at dst (which has room for varint_size(v) bytes). */
static void varint_at(unsigned char *dst, uint64_t v)
{
    while (v >= 0x80) {
        *dst++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *dst = (unsigned char)v;
}

static int put_varint(sbuf_t *b, uint64_t v, err_t *err)
{
    int rc = reserve(b, 10, err);
    if (rc)
        return rc;
    varint_at(at(b), v);
    wrote(b, varint_size(v));
    return 0;
}

static int put_tag(sbuf_t *b, unsigned num, unsigned wire, err_t *err)
{
    return put_varint(b, ((uint64_t)num << 3) | wire, err);
}

static int put_bytes(sbuf_t *b, unsigned num, const void *data, size_t n, err_t *err)
{
    int rc = put_tag(b, num, WT_LEN, err);
    if (!rc)
        rc = put_varint(b, n, err);
    if (!rc)
        rc = reserve(b, n, err);
    if (rc)
        return rc;
    if (n)
        memcpy(at(b), data, n);
    wrote(b, n);
    return 0;
}

static int put_double(sbuf_t *b, unsigned num, double d, err_t *err)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int rc = put_tag(b, num, WT_FIXED64, err);
    if (!rc)
        rc = reserve(b, 8, err);
    if (rc)
        return rc;
    unsigned char *dst = at(b);
    for (int i = 0; i < 8; i++)        /* little-endian whatever the host */
        dst[i] = (unsigned char)(bits >> (8 * i));
    wrote(b, 8);
    return 0;
}

static int begin_nested(sbuf_t *b, unsigned num, size_t *mark, err_t *err)
{
    int rc = put_tag(b, num, WT_LEN, err);
    *mark = b->len;
    return rc;
}

/* Puts the length of the body written since mark in front of it. */
static int end_nested(sbuf_t *b, size_t mark, err_t *err)
{
    size_t body = b->len - mark;
    size_t k = varint_size(body);
    int rc = reserve(b, k, err);
    if (rc)
        return rc;
    unsigned char *start = (unsigned char *)b->p + mark;
    memmove(start + k, start, body);
    varint_at(start, body);
    wrote(b, k);
    return 0;
}

/* ---- message tables ---------------------------------------------------------- */

typedef enum opb_kind {
    K_STRING,    /* string from a JSON string */
    K_BOOL,      /* bool from true/false */
    K_INT64,     /* int64 from an integer */
    K_DOUBLE,    /* double from any number */
    K_STRINGS,   /* repeated string from an array of strings */
    K_ANY,       /* Any { yaml = 2 } from any value */
    K_ANYS,      /* repeated Any from an array */
    K_MSG,       /* message msg from an object */
    K_MSGS,      /* repeated message msg from an array of objects */
    K_STRLIST,   /* message { repeated string = 1 } from a string or an array
                    of strings (TypeItem, StringArray) */
    K_ITEMS,     /* ItemsItem { repeated Schema = 1 } from a schema or an
                    array of schemas */
    K_ADDPROPS,  /* AdditionalPropertiesItem from a schema or a boolean */
    K_EXT,       /* repeated NamedAny from the object's "x-" keys */
    K_NAMED,     /* repeated Named<T> from the object's other keys; value
                    says how T is written */
} opb_kind_t;

typedef struct opb_msg opb_msg_t;

typedef struct opb_field {
    const char *key;                 /* JSON key; NULL for K_EXT, K_NAMED */
    unsigned num;                    /* 0 ends a table */
    opb_kind_t kind;
    const opb_msg_t *msg;            /* K_MSG, K_MSGS */
    const struct opb_field *value;   /* K_NAMED: the value field (num 2) */
} opb_field_t;

/* One alternative of a oneof wrapper: taken when the object's key holds
 * the string value (value NULL: when key is present; key NULL: always). */
typedef struct opb_alt {
    const char *key;
    const char *value;
    unsigned num;
    const opb_msg_t *msg;
} opb_alt_t;

struct opb_msg {
    const char *name;                /* gnostic's, for error messages */
    const opb_field_t *fields;       /* a plain message */
    const opb_alt_t *alts;           /* a oneof wrapper; ends with num 0 */
};

#define F(key, num, kind) {key, num, kind, NULL, NULL}
#define M(key, num, kind, msg) {key, num, kind, msg, NULL}
#define EXT(num) {NULL, num, K_EXT, NULL, NULL}
#define NAMED(num, value) {NULL, num, K_NAMED, NULL, value}
#define END {NULL, 0, K_STRING, NULL, NULL}
/* The fields PrimitivesItems, Header and the non-body parameters share,
 * type through multipleOf, numbered from n on. */
#define PRIMITIVE_FIELDS(n)                                                            \
    F("type", (n), K_STRING), F("format", (n) + 1, K_STRING),                          \
        M("items", (n) + 2, K_MSG, &m_primitives),                                     \
        F("collectionFormat", (n) + 3, K_STRING), F("default", (n) + 4, K_ANY),        \
        F("maximum", (n) + 5, K_DOUBLE), F("exclusiveMaximum", (n) + 6, K_BOOL),       \
        F("minimum", (n) + 7, K_DOUBLE), F("exclusiveMinimum", (n) + 8, K_BOOL),       \
        F("maxLength", (n) + 9, K_INT64), F("minLength", (n) + 10, K_INT64),           \
        F("pattern", (n) + 11, K_STRING), F("maxItems", (n) + 12, K_INT64),            \
        F("minItems", (n) + 13, K_INT64), F("uniqueItems", (n) + 14, K_BOOL),          \
        F("enum", (n) + 15, K_ANYS), F("multipleOf", (n) + 16, K_DOUBLE)

/* Messages refer to each other (Schema to itself), so all are declared
 * first; the definitions follow their tables. */
static const opb_msg_t m_document, m_info, m_contact, m_license, m_external_docs, m_tag,
    m_paths, m_path_item, m_operation, m_parameters_item, m_parameter, m_non_body,
    m_body_param, m_query_param, m_form_param, m_header_param, m_path_param, m_primitives,
    m_json_ref, m_responses, m_response_value, m_response, m_headers, m_header, m_examples,
    m_schema_item, m_schema, m_file_schema, m_properties, m_definitions, m_xml,
    m_param_defs, m_response_defs, m_security_req, m_security_defs, m_security_item,
    m_basic_auth, m_api_key, m_oauth2_implicit, m_oauth2_password, m_oauth2_application,
    m_oauth2_access_code, m_oauth2_scopes;

/* Values of Named<T> entries. */
static const opb_field_t v_schema = M(NULL, 2, K_MSG, &m_schema);
static const opb_field_t v_path_item = M(NULL, 2, K_MSG, &m_path_item);
static const opb_field_t v_response_value = M(NULL, 2, K_MSG, &m_response_value);
static const opb_field_t v_response = M(NULL, 2, K_MSG, &m_response);
static const opb_field_t v_parameter = M(NULL, 2, K_MSG, &m_parameter);
static const opb_field_t v_header = M(NULL, 2, K_MSG, &m_header);
static const opb_field_t v_security_item = M(NULL, 2, K_MSG, &m_security_item);
static const opb_field_t v_any = F(NULL, 2, K_ANY);
static const opb_field_t v_string = F(NULL, 2, K_STRING);
static const opb_field_t v_string_array = F(NULL, 2, K_STRLIST);

static const opb_field_t f_document[] = {
    F("swagger", 1, K_STRING),
    M("info", 2, K_MSG, &m_info),
    F("host", 3, K_STRING),
    F("basePath", 4, K_STRING),
    F("schemes", 5, K_STRINGS),
    F("consumes", 6, K_STRINGS),
    F("produces", 7, K_STRINGS),
    M("paths", 8, K_MSG, &m_paths),
    M("definitions", 9, K_MSG, &m_definitions),
    M("parameters", 10, K_MSG, &m_param_defs),
    M("responses", 11, K_MSG, &m_response_defs),
    M("security", 12, K_MSGS, &m_security_req),
    M("securityDefinitions", 13, K_MSG, &m_security_defs),
    M("tags", 14, K_MSGS, &m_tag),
    M("externalDocs", 15, K_MSG, &m_external_docs),
    EXT(16),
    END,
};

static const opb_field_t f_info[] = {
    F("title", 1, K_STRING),
    F("version", 2, K_STRING),
    F("description", 3, K_STRING),
    F("termsOfService", 4, K_STRING),
    M("contact", 5, K_MSG, &m_contact),
    M("license", 6, K_MSG, &m_license),
    EXT(7),
    END,
};

static const opb_field_t f_contact[] = {
    F("name", 1, K_STRING), F("url", 2, K_STRING), F("email", 3, K_STRING), EXT(4), END,
};

static const opb_field_t f_license[] = {
    F("name", 1, K_STRING), F("url", 2, K_STRING), EXT(3), END,
};

static const opb_field_t f_external_docs[] = {
    F("description", 1, K_STRING), F("url", 2, K_STRING), EXT(3), END,
};

static const opb_field_t f_tag[] = {
    F("name", 1, K_STRING),
    F("description", 2, K_STRING),
    M("externalDocs", 3, K_MSG, &m_external_docs),
    EXT(4),
    END,
};

static const opb_field_t f_paths[] = {EXT(1), NAMED(2, &v_path_item), END};

static const opb_field_t f_path_item[] = {
    F("$ref", 1, K_STRING),
    M("get", 2, K_MSG, &m_operation),
    M("put", 3, K_MSG, &m_operation),
    M("post", 4, K_MSG, &m_operation),
    M("delete", 5, K_MSG, &m_operation),
    M("options", 6, K_MSG, &m_operation),
    M("head", 7, K_MSG, &m_operation),
    M("patch", 8, K_MSG, &m_operation),
    M("parameters", 9, K_MSGS, &m_parameters_item),
    EXT(10),
    END,
};

static const opb_field_t f_operation[] = {
    F("tags", 1, K_STRINGS),
    F("summary", 2, K_STRING),
    F("description", 3, K_STRING),
    M("externalDocs", 4, K_MSG, &m_external_docs),
    F("operationId", 5, K_STRING),
    F("produces", 6, K_STRINGS),
    F("consumes", 7, K_STRINGS),
    M("parameters", 8, K_MSGS, &m_parameters_item),
    M("responses", 9, K_MSG, &m_responses),
    F("schemes", 10, K_STRINGS),
    F("deprecated", 11, K_BOOL),
    M("security", 12, K_MSGS, &m_security_req),
    EXT(13),
    END,
};

static const opb_alt_t a_parameters_item[] = {
    {"$ref", NULL, 2, &m_json_ref},
    {NULL, NULL, 1, &m_parameter},
    {NULL, NULL, 0, NULL},
};

static const opb_alt_t a_parameter[] = {
    {"in", "body", 1, &m_body_param},
    {NULL, NULL, 2, &m_non_body},
    {NULL, NULL, 0, NULL},
};

static const opb_alt_t a_non_body[] = {
    {"in", "header", 1, &m_header_param},
    {"in", "formData", 2, &m_form_param},
    {"in", "query", 3, &m_query_param},
    {"in", "path", 4, &m_path_param},
    {NULL, NULL, 0, NULL},
};

static const opb_field_t f_body_param[] = {
    F("description", 1, K_STRING),
    F("name", 2, K_STRING),
    F("in", 3, K_STRING),
    F("required", 4, K_BOOL),
    M("schema", 5, K_MSG, &m_schema),
    EXT(6),
    END,
};

/* QueryParameterSubSchema and FormDataParameterSubSchema number their
 * fields alike. */
static const opb_field_t f_query_param[] = {
    F("required", 1, K_BOOL),
    F("in", 2, K_STRING),
    F("description", 3, K_STRING),
    F("name", 4, K_STRING),
    F("allowEmptyValue", 5, K_BOOL),
    PRIMITIVE_FIELDS(6),
    EXT(23),
    END,
};

/* HeaderParameterSubSchema and PathParameterSubSchema number their fields
 * alike. */
static const opb_field_t f_header_param[] = {
    F("required", 1, K_BOOL),
    F("in", 2, K_STRING),
    F("description", 3, K_STRING),
    F("name", 4, K_STRING),
    PRIMITIVE_FIELDS(5),
    EXT(22),
    END,
};

static const opb_field_t f_primitives[] = {
    PRIMITIVE_FIELDS(1),
    EXT(18),
    END,
};

/* A response header: PrimitivesItems' fields plus a description. */
static const opb_field_t f_header[] = {
    PRIMITIVE_FIELDS(1),
    F("description", 18, K_STRING),
    EXT(19),
    END,
};

static const opb_field_t f_json_ref[] = {
    F("$ref", 1, K_STRING), F("description", 2, K_STRING), END,
};

static const opb_field_t f_responses[] = {NAMED(1, &v_response_value), EXT(2), END};

static const opb_alt_t a_response_value[] = {
    {"$ref", NULL, 2, &m_json_ref},
    {NULL, NULL, 1, &m_response},
    {NULL, NULL, 0, NULL},
};

static const opb_field_t f_response[] = {
    F("description", 1, K_STRING),
    M("schema", 2, K_MSG, &m_schema_item),
    M("headers", 3, K_MSG, &m_headers),
    M("examples", 4, K_MSG, &m_examples),
    EXT(5),
    END,
};

static const opb_field_t f_headers[] = {NAMED(1, &v_header), END};
static const opb_field_t f_examples[] = {NAMED(1, &v_any), END};

static const opb_alt_t a_schema_item[] = {
    {"type", "file", 2, &m_file_schema},
    {NULL, NULL, 1, &m_schema},
    {NULL, NULL, 0, NULL},
};

static const opb_field_t f_schema[] = {
    F("$ref", 1, K_STRING),
    F("format", 2, K_STRING),
    F("title", 3, K_STRING),
    F("description", 4, K_STRING),
    F("default", 5, K_ANY),
    F("multipleOf", 6, K_DOUBLE),
    F("maximum", 7, K_DOUBLE),
    F("exclusiveMaximum", 8, K_BOOL),
    F("minimum", 9, K_DOUBLE),
    F("exclusiveMinimum", 10, K_BOOL),
    F("maxLength", 11, K_INT64),
    F("minLength", 12, K_INT64),
    F("pattern", 13, K_STRING),
    F("maxItems", 14, K_INT64),
    F("minItems", 15, K_INT64),
    F("uniqueItems", 16, K_BOOL),
    F("maxProperties", 17, K_INT64),
    F("minProperties", 18, K_INT64),
    F("required", 19, K_STRINGS),
    F("enum", 20, K_ANYS),
    F("additionalProperties", 21, K_ADDPROPS),
    F("type", 22, K_STRLIST),
    F("items", 23, K_ITEMS),
    M("allOf", 24, K_MSGS, &m_schema),
    M("properties", 25, K_MSG, &m_properties),
    F("discriminator", 26, K_STRING),
    F("readOnly", 27, K_BOOL),
    M("xml", 28, K_MSG, &m_xml),
    M("externalDocs", 29, K_MSG, &m_external_docs),
    F("example", 30, K_ANY),
    EXT(31),
    END,
};

static const opb_field_t f_file_schema[] = {
    F("format", 1, K_STRING),
    F("title", 2, K_STRING),
    F("description", 3, K_STRING),
    F("default", 4, K_ANY),
    F("required", 5, K_STRINGS),
    F("type", 6, K_STRING),
    F("readOnly", 7, K_BOOL),
    M("externalDocs", 8, K_MSG, &m_external_docs),
    F("example", 9, K_ANY),
    EXT(10),
    END,
};

/* Property and definition names are free: an "x-" name is a schema too. */
static const opb_field_t f_named_schemas[] = {NAMED(1, &v_schema), END};

static const opb_field_t f_xml[] = {
    F("name", 1, K_STRING),
    F("namespace", 2, K_STRING),
    F("prefix", 3, K_STRING),
    F("attribute", 4, K_BOOL),
    F("wrapped", 5, K_BOOL),
    EXT(6),
    END,
};

static const opb_field_t f_param_defs[] = {NAMED(1, &v_parameter), END};
static const opb_field_t f_response_defs[] = {NAMED(1, &v_response), END};
static const opb_field_t f_security_req[] = {NAMED(1, &v_string_array), END};
static const opb_field_t f_security_defs[] = {NAMED(1, &v_security_item), END};
static const opb_field_t f_oauth2_scopes[] = {NAMED(1, &v_string), END};

/* Only OAuth2 schemes have a flow, so the flow alone picks among them. */
static const opb_alt_t a_security_item[] = {
    {"flow", "implicit", 3, &m_oauth2_implicit},
    {"flow", "password", 4, &m_oauth2_password},
    {"flow", "application", 5, &m_oauth2_application},
    {"flow", "accessCode", 6, &m_oauth2_access_code},
    {"type", "basic", 1, &m_basic_auth},
    {"type", "apiKey", 2, &m_api_key},
    {NULL, NULL, 0, NULL},
};

static const opb_field_t f_basic_auth[] = {
    F("type", 1, K_STRING), F("description", 2, K_STRING), EXT(3), END,
};

static const opb_field_t f_api_key[] = {
    F("type", 1, K_STRING),
    F("name", 2, K_STRING),
    F("in", 3, K_STRING),
    F("description", 4, K_STRING),
    EXT(5),
    END,
};

static const opb_field_t f_oauth2_implicit[] = {
    F("type", 1, K_STRING),
    F("flow", 2, K_STRING),
    M("scopes", 3, K_MSG, &m_oauth2_scopes),
    F("authorizationUrl", 4, K_STRING),
    F("description", 5, K_STRING),
    EXT(6),
    END,
};

/* Oauth2PasswordSecurity and Oauth2ApplicationSecurity number their
 * fields alike. */
static const opb_field_t f_oauth2_token[] = {
    F("type", 1, K_STRING),
    F("flow", 2, K_STRING),
    M("scopes", 3, K_MSG, &m_oauth2_scopes),
    F("tokenUrl", 4, K_STRING),
    F("description", 5, K_STRING),
    EXT(6),
    END,
};

static const opb_field_t f_oauth2_access_code[] = {
    F("type", 1, K_STRING),
    F("flow", 2, K_STRING),
    M("scopes", 3, K_MSG, &m_oauth2_scopes),
    F("authorizationUrl", 4, K_STRING),
    F("tokenUrl", 5, K_STRING),
    F("description", 6, K_STRING),
    EXT(7),
    END,
};

static const opb_msg_t m_document = {"Document", f_document, NULL};
static const opb_msg_t m_info = {"Info", f_info, NULL};
static const opb_msg_t m_contact = {"Contact", f_contact, NULL};
static const opb_msg_t m_license = {"License", f_license, NULL};
static const opb_msg_t m_external_docs = {"ExternalDocs", f_external_docs, NULL};
static const opb_msg_t m_tag = {"Tag", f_tag, NULL};
static const opb_msg_t m_paths = {"Paths", f_paths, NULL};
static const opb_msg_t m_path_item = {"PathItem", f_path_item, NULL};
static const opb_msg_t m_operation = {"Operation", f_operation, NULL};
static const opb_msg_t m_parameters_item = {"ParametersItem", NULL, a_parameters_item};
static const opb_msg_t m_parameter = {"Parameter", NULL, a_parameter};
static const opb_msg_t m_non_body = {"NonBodyParameter", NULL, a_non_body};
static const opb_msg_t m_body_param = {"BodyParameter", f_body_param, NULL};
static const opb_msg_t m_query_param = {"QueryParameterSubSchema", f_query_param, NULL};
static const opb_msg_t m_form_param = {"FormDataParameterSubSchema", f_query_param, NULL};
static const opb_msg_t m_header_param = {"HeaderParameterSubSchema", f_header_param, NULL};
static const opb_msg_t m_path_param = {"PathParameterSubSchema", f_header_param, NULL};
static const opb_msg_t m_primitives = {"PrimitivesItems", f_primitives, NULL};
static const opb_msg_t m_json_ref = {"JsonReference", f_json_ref, NULL};
static const opb_msg_t m_responses = {"Responses", f_responses, NULL};
static const opb_msg_t m_response_value = {"ResponseValue", NULL, a_response_value};
static const opb_msg_t m_response = {"Response", f_response, NULL};
static const opb_msg_t m_headers = {"Headers", f_headers, NULL};
static const opb_msg_t m_header = {"Header", f_header, NULL};
static const opb_msg_t m_examples = {"Examples", f_examples, NULL};
static const opb_msg_t m_schema_item = {"SchemaItem", NULL, a_schema_item};
static const opb_msg_t m_schema = {"Schema", f_schema, NULL};
static const opb_msg_t m_file_schema = {"FileSchema", f_file_schema, NULL};
static const opb_msg_t m_properties = {"Properties", f_named_schemas, NULL};
static const opb_msg_t m_definitions = {"Definitions", f_named_schemas, NULL};
static const opb_msg_t m_xml = {"Xml", f_xml, NULL};
static const opb_msg_t m_param_defs = {"ParameterDefinitions", f_param_defs, NULL};
static const opb_msg_t m_response_defs = {"ResponseDefinitions", f_response_defs, NULL};
static const opb_msg_t m_security_req = {"SecurityRequirement", f_security_req, NULL};
static const opb_msg_t m_security_defs = {"SecurityDefinitions", f_security_defs, NULL};
static const opb_msg_t m_security_item = {"SecurityDefinitionsItem", NULL, a_security_item};
static const opb_msg_t m_basic_auth = {"BasicAuthenticationSecurity", f_basic_auth, NULL};
static const opb_msg_t m_api_key = {"ApiKeySecurity", f_api_key, NULL};
static const opb_msg_t m_oauth2_implicit = {"Oauth2ImplicitSecurity", f_oauth2_implicit, NULL};
static const opb_msg_t m_oauth2_password = {"Oauth2PasswordSecurity", f_oauth2_token, NULL};
static const opb_msg_t m_oauth2_application = {"Oauth2ApplicationSecurity", f_oauth2_token,
                                               NULL};
static const opb_msg_t m_oauth2_access_code = {"Oauth2AccessCodeSecurity", f_oauth2_access_code,
                                               NULL};
static const opb_msg_t m_oauth2_scopes = {"Oauth2Scopes", f_oauth2_scopes, NULL};

/* ---- encoding ---------------------------------------------------------------- */

static int encode_msg(sbuf_t *b, const json_t *obj, const opb_msg_t *m, int depth,
                      err_t *err);
static int encode_field(sbuf_t *b, const opb_field_t *f, const char *key, const json_t *v,
                        int depth, err_t *err);

static int is_ext(const char *key)
{
    return key[0] == 'x' && key[1] == '-';
}

static int wrong_type(err_t *err, const char *key, const char *want)
{
    return err_set(err, ERR_INTERNAL, "openapi v2 protobuf: \"%s\" is not %s",
                   key ? key : "(value)", want);
}

/* The value's JSON text, which is also its YAML text, as Any { yaml = 2 }
 * in field num. Printed without JSON_COMPACT: YAML wants a space after
 * ':' and ',' in flow collections. */
static int put_any(sbuf_t *b, unsigned num, const json_t *v, err_t *err)
{
    const size_t flags = JSON_ENCODE_ANY;
    size_t n = json_dumpb(v, NULL, 0, flags), outer, inner;
    if (n == 0)     /* no value prints as nothing: printing failed */
        return err_set(err, ERR_NOMEM, NULL);
    int rc = begin_nested(b, num, &outer, err);
    if (!rc)
        rc = put_tag(b, 2, WT_LEN, err);
    if (!rc)
        rc = put_varint(b, n, err);
    if (!rc)
        rc = reserve(b, n, err);
    if (rc)
        return rc;
    inner = json_dumpb(v, (char *)at(b), n, flags);
    if (inner != n)
        return err_set(err, ERR_NOMEM, NULL);
    wrote(b, n);
    return end_nested(b, outer, err);
}

/* A message { repeated string = 1 } in field num from a string or an array
 * of strings. */
static int put_string_list(sbuf_t *b, unsigned num, const char *key, const json_t *v,
                           err_t *err)
{
    size_t mark, i;
    const json_t *s;
    if (!json_is_string(v) && !json_is_array(v))
        return wrong_type(err, key, "a string or an array of strings");
    int rc = begin_nested(b, num, &mark, err);
    if (rc)
        return rc;
    if (json_is_string(v))
        rc = put_bytes(b, 1, json_string_value(v), json_string_length(v), err);
    json_array_foreach(v, i, s) {
        if (rc)
            break;
        rc = json_is_string(s) ? put_bytes(b, 1, json_string_value(s), json_string_length(s), err)
                               : wrong_type(err, key, "an array of strings");
    }
    return rc ? rc : end_nested(b, mark, err);
}

static int encode_field(sbuf_t *b, const opb_field_t *f, const char *key, const json_t *v,
                        int depth, err_t *err)
{
    size_t i, mark;
    const json_t *e;
    int rc = 0;

    switch (f->kind) {
    case K_STRING:
        if (!json_is_string(v))
            return wrong_type(err, key, "a string");
        return json_string_length(v) ? put_bytes(b, f->num, json_string_value(v),
                                                 json_string_length(v), err)
                                     : 0;
    case K_BOOL:
        if (!json_is_boolean(v))
            return wrong_type(err, key, "a boolean");
        if (json_is_false(v))
            return 0;
        rc = put_tag(b, f->num, WT_VARINT, err);
        return rc ? rc : put_varint(b, 1, err);
    case K_INT64:
        if (!json_is_integer(v))
            return wrong_type(err, key, "an integer");
        if (json_integer_value(v) == 0)
            return 0;
        rc = put_tag(b, f->num, WT_VARINT, err);
        /* Negative int64s are their two's complement: ten bytes. */
        return rc ? rc : put_varint(b, (uint64_t)json_integer_value(v), err);
    case K_DOUBLE:
        if (!json_is_number(v))
            return wrong_type(err, key, "a number");
        return json_number_value(v) == 0.0 ? 0 : put_double(b, f->num, json_number_value(v), err);
    case K_STRINGS:
        if (!json_is_array(v))
            return wrong_type(err, key, "an array of strings");
        json_array_foreach(v, i, e) {
            if (!json_is_string(e))
                return wrong_type(err, key, "an array of strings");
            rc = put_bytes(b, f->num, json_string_value(e), json_string_length(e), err);
            if (rc)
                return rc;
        }
        return 0;
    case K_ANY:
        return put_any(b, f->num, v, err);
    case K_ANYS:
        if (!json_is_array(v))
            return wrong_type(err, key, "an array");
        json_array_foreach(v, i, e) {
            rc = put_any(b, f->num, e, err);
            if (rc)
                return rc;
        }
        return 0;
    case K_MSG:
        if (!json_is_object(v))
            return wrong_type(err, key, "an object");
        rc = begin_nested(b, f->num, &mark, err);
        if (!rc)
            rc = encode_msg(b, v, f->msg, depth + 1, err);
        return rc ? rc : end_nested(b, mark, err);
    case K_MSGS:
        if (!json_is_array(v))
            return wrong_type(err, key, "an array of objects");
        json_array_foreach(v, i, e) {
            if (!json_is_object(e))
                return wrong_type(err, key, "an array of objects");
            rc = begin_nested(b, f->num, &mark, err);
            if (!rc)
                rc = encode_msg(b, e, f->msg, depth + 1, err);
            if (!rc)
                rc = end_nested(b, mark, err);
            if (rc)
                return rc;
        }
        return 0;
    case K_STRLIST:
        return put_string_list(b, f->num, key, v, err);
    case K_ITEMS:
        if (!json_is_object(v) && !json_is_array(v))
            return wrong_type(err, key, "a schema or an array of schemas");
        rc = begin_nested(b, f->num, &mark, err);
        if (rc)
            return rc;
        if (json_is_object(v)) {
            static const opb_field_t one = M(NULL, 1, K_MSG, &m_schema);
            rc = encode_field(b, &one, key, v, depth, err);
        } else {
            static const opb_field_t all = M(NULL, 1, K_MSGS, &m_schema);
            rc = encode_field(b, &all, key, v, depth, err);
        }
        return rc ? rc : end_nested(b, mark, err);
    case K_ADDPROPS:
        if (!json_is_object(v) && !json_is_boolean(v))
            return wrong_type(err, key, "a schema or a boolean");
        rc = begin_nested(b, f->num, &mark, err);
        if (rc)
            return rc;
        if (json_is_object(v)) {
            static const opb_field_t schema = M(NULL, 1, K_MSG, &m_schema);
            rc = encode_field(b, &schema, key, v, depth, err);
        } else {
            /* A oneof member is written even when false: the choice itself
             * is the information. */
            rc = put_tag(b, 2, WT_VARINT, err);
            if (!rc)
                rc = put_varint(b, json_is_true(v), err);
        }
        return rc ? rc : end_nested(b, mark, err);
    case K_EXT:
    case K_NAMED:
        break;
    }
    return err_set(err, ERR_INTERNAL, "openapi v2 protobuf: bad field table");
}

/* Named<T> { name = 1, value = 2 } in field num. */
static int put_named(sbuf_t *b, unsigned num, const char *name, const opb_field_t *value,
                     const json_t *v, int depth, err_t *err)
{
    size_t mark;
    int rc = begin_nested(b, num, &mark, err);
    if (!rc && *name)
        rc = put_bytes(b, 1, name, strlen(name), err);
    if (!rc)
        rc = encode_field(b, value, name, v, depth, err);
    return rc ? rc : end_nested(b, mark, err);
}

static const opb_field_t *find_field(const opb_field_t *fields, const char *key)
{
    for (const opb_field_t *f = fields; f->num; f++)
        if (f->key && !strcmp(f->key, key))
            return f;
    return NULL;
}

static const opb_field_t *find_kind(const opb_field_t *fields, opb_kind_t kind)
{
    for (const opb_field_t *f = fields; f->num; f++)
        if (f->kind == kind && !f->key)
            return f;
    return NULL;
}

/* A oneof wrapper: the alternative that fits obj, holding obj itself. */
static int encode_oneof(sbuf_t *b, const json_t *obj, const opb_msg_t *m, int depth,
                        err_t *err)
{
    for (const opb_alt_t *a = m->alts; a->num; a++) {
        const json_t *v = a->key ? json_object_get(obj, a->key) : NULL;
        if (a->key && !v)
            continue;
        if (a->key && a->value && !(json_is_string(v) && !strcmp(json_string_value(v), a->value)))
            continue;
        const opb_field_t f = M(NULL, a->num, K_MSG, a->msg);
        return encode_field(b, &f, NULL, obj, depth, err);
    }
    const json_t *in = json_object_get(obj, "in");
    const json_t *type = json_object_get(obj, "type");
    return err_set(err, ERR_INTERNAL, "openapi v2 protobuf: no %s fits this object "
                   "(in: %s, type: %s)", m->name, json_is_string(in) ? json_string_value(in) : "-",
                   json_is_string(type) ? json_string_value(type) : "-");
}

static int encode_msg(sbuf_t *b, const json_t *obj, const opb_msg_t *m, int depth,
                      err_t *err)
{
    const char *key;
    const json_t *v;

    if (depth > OPB_MAX_DEPTH)
        return err_set(err, ERR_INTERNAL, "openapi v2 protobuf: %s nested deeper than %d",
                       m->name, OPB_MAX_DEPTH);
    if (m->alts)
        return encode_oneof(b, obj, m, depth, err);

    /* Every key must have a place before anything is written. */
    const opb_field_t *ext = find_kind(m->fields, K_EXT);
    const opb_field_t *named = find_kind(m->fields, K_NAMED);
    json_object_foreach((json_t *)obj, key, v) {
        if (!find_field(m->fields, key) && !(ext && is_ext(key)) && !named)
            return err_set(err, ERR_INTERNAL, "openapi v2 protobuf: %s has no field for \"%s\"",
                           m->name, key);
    }

    for (const opb_field_t *f = m->fields; f->num; f++) {
        int rc = 0;
        if (f->kind == K_EXT || f->kind == K_NAMED) {
            json_object_foreach((json_t *)obj, key, v) {
                int to_ext = ext && is_ext(key);
                if (find_field(m->fields, key) || to_ext != (f->kind == K_EXT))
                    continue;
                rc = put_named(b, f->num, key, f->kind == K_EXT ? &v_any : f->value, v, depth,
                               err);
                if (rc)
                    return rc;
            }
            continue;
        }
        v = json_object_get(obj, f->key);
        if (v)
            rc = encode_field(b, f, f->key, v, depth, err);
        if (rc)
            return rc;
    }
    return 0;
}

const char *opb_accepts_v2(const char *accept)
{
    if (!accept)
        return NULL;
    const char *pb = strcasestr(accept, OPB_V2_ACCEPT_AT);
    const char *dotted = strcasestr(accept, OPB_V2_CONTENT_TYPE);
    const char *json = strcasestr(accept, "application/json");
    if (!pb || (dotted && dotted < pb))
        pb = dotted;
    return pb && (!json || pb < json) ? OPB_V2_CONTENT_TYPE : NULL;
}

int opb_encode_v2(const json_t *doc, unsigned char **out, size_t *len, err_t *err)
{
    sbuf_t b = SBUF_INIT;
    int rc;

    *out = NULL;
    *len = 0;
    if (!json_is_object(doc))
        return err_set(err, ERR_INTERNAL, "openapi v2 protobuf: the document is not an object");
    rc = reserve(&b, 4096, err);   /* an empty document still gets a buffer */
    if (!rc)
        rc = encode_msg(&b, doc, &m_document, 0, err);
    if (rc) {
        sbuf_free(&b);
        return rc;
    }
    *out = (unsigned char *)b.p;
    *len = b.len;
    return 0;
}
