/* Unit tests of apimachinery/openapi_pb: the OpenAPI v2 document as gnostic's
 * openapi.v2.Document protobuf. Small documents are checked byte for byte
 * (tags, varint lengths, nesting); larger ones through a small wire-format
 * walker that follows field numbers down the message tree. JSON in the
 * cases uses ' for " to stay readable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../apimachinery/openapi_pb.h"
#include "../../registry/registry.h"
#include "../../lib/err.h"
#include "../../lib/mem.h"

/* Parses text, reading ' as ". */
static json_t *load(const char *text)
{
    char *s = strdup(text);
    json_error_t jerr;
    json_t *j;

    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = json_loads(s, 0, &jerr);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    free(s);
    return j;
}

static void dump(const char *what, const unsigned char *p, size_t n)
{
    print_message("%s (%zu bytes):", what, n);
    for (size_t i = 0; i < n; i++)
        print_message(" %02x", p[i]);
    print_message("\n");
}

/* Encodes the document text and checks the bytes. */
static void expect_bytes(const char *doc_text, const unsigned char *want, size_t want_len)
{
    json_t *doc = load(doc_text);
    unsigned char *out = NULL;
    size_t len = 0;
    err_t err = {0};

    int rc = opb_encode_v2(doc, &out, &len, &err);
    if (rc)
        fail_msg("%s: %s", doc_text, err.message);
    if (len != want_len || memcmp(out, want, len)) {
        dump("want", want, want_len);
        dump("got ", out, len);
        fail_msg("bytes differ for %s", doc_text);
    }
    mem_free(out);
    json_decref(doc);
}

#define EXPECT_BYTES(doc, ...)                                              \
    do {                                                                    \
        static const unsigned char want_[] = {__VA_ARGS__};                 \
        expect_bytes(doc, want_, sizeof want_);                             \
    } while (0)

/* ---- a wire-format walker ------------------------------------------------------ */

typedef struct span {
    const unsigned char *p;
    size_t n;
} span_t;

static uint64_t read_varint(const unsigned char **p, const unsigned char *end)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80)
            return v;
    }
    fail_msg("truncated varint");
    return 0;
}

/* The idx-th occurrence of field num in msg: its bytes (length-delimited)
 * or, through *value, its varint. Fails the test on malformed input;
 * returns 0 when there is no such occurrence. Every field of msg is
 * walked, so a call also checks the framing of the whole message. */
static int field(span_t msg, unsigned num, int idx, span_t *bytes, uint64_t *value)
{
    const unsigned char *p = msg.p, *end = msg.p + msg.n;
    int found = 0;

    while (p < end) {
        uint64_t key = read_varint(&p, end);
        span_t s = {p, 0};
        uint64_t v = 0;
        switch (key & 7) {
        case 0:
            v = read_varint(&p, end);
            break;
        case 1:
            assert_true(end - p >= 8);
            p += 8;
            break;
        case 2:
            s.n = (size_t)read_varint(&p, end);
            assert_true(s.n <= (size_t)(end - p));
            s.p = p;
            p += s.n;
            break;
        default:
            fail_msg("wire type %u", (unsigned)(key & 7));
        }
        if ((key >> 3) == num && idx-- == 0 && !found) {
            found = 1;
            if (bytes)
                *bytes = s;
            if (value)
                *value = v;
        }
    }
    assert_true(p == end);
    return found;
}

/* Follows a path of (field number, occurrence) pairs ending in 0. */
static span_t at(span_t msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    for (unsigned num = va_arg(ap, unsigned); num; num = va_arg(ap, unsigned)) {
        int idx = va_arg(ap, int);
        if (!field(msg, num, idx, &msg, NULL))
            fail_msg("no field %u #%d", num, idx);
    }
    va_end(ap);
    return msg;
}

static void assert_span_str(span_t s, const char *want)
{
    if (s.n != strlen(want) || memcmp(s.p, want, s.n))
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.n, (const char *)s.p, want);
}

/* ---- cases ----------------------------------------------------------------------- */

static void test_openapi_pb__document_and_info(void **state)
{
    (void)state;
    /* Document.swagger = 1, Document.info = 2 { title = 1, version = 2 } */
    EXPECT_BYTES("{'swagger':'2.0','info':{'title':'t','version':'v1'}}",
                 0x0a, 0x03, '2', '.', '0',
                 0x12, 0x07, 0x0a, 0x01, 't', 0x12, 0x02, 'v', '1');
    /* Fields come out in field-number order, whatever the key order. */
    EXPECT_BYTES("{'info':{'version':'v1','title':'t'},'swagger':'2.0'}",
                 0x0a, 0x03, '2', '.', '0',
                 0x12, 0x07, 0x0a, 0x01, 't', 0x12, 0x02, 'v', '1');
    /* Proto3 defaults are left out; an empty object is an empty message. */
    EXPECT_BYTES("{'swagger':'','info':{}}", 0x12, 0x00);

    /* The empty document is zero bytes, still in a buffer to free. */
    json_t *doc = json_object();
    unsigned char *out = NULL;
    size_t len = 99;
    assert_int_equal(opb_encode_v2(doc, &out, &len, NULL), 0);
    assert_non_null(out);
    assert_int_equal(len, 0);
    mem_free(out);
    json_decref(doc);
}

static void test_openapi_pb__varint_lengths(void **state)
{
    (void)state;
    /* A 300-byte description: length 300 = ac 02, and Info's own length
     * (1 + 2 + 300 = 303 = af 02) is put in front once known. */
    char desc[301], doc[400];
    memset(desc, 'd', 300);
    desc[300] = 0;
    snprintf(doc, sizeof doc, "{'info':{'description':'%s'}}", desc);

    unsigned char want[2 + 2 + 1 + 2 + 300];
    size_t n = 0;
    want[n++] = 0x12;
    want[n++] = 0xaf;
    want[n++] = 0x02;
    want[n++] = 0x1a;
    want[n++] = 0xac;
    want[n++] = 0x02;
    memset(want + n, 'd', 300);
    n += 300;
    expect_bytes(doc, want, n);

    /* 127 fits one byte, 128 needs two. */
    memset(desc, 'd', 127);
    desc[127] = 0;
    snprintf(doc, sizeof doc, "{'host':'%s'}", desc);
    json_t *j = load(doc);
    unsigned char *out;
    size_t len;
    assert_int_equal(opb_encode_v2(j, &out, &len, NULL), 0);
    assert_int_equal(len, 2 + 127);
    assert_int_equal(out[0], 0x1a);
    assert_int_equal(out[1], 0x7f);
    mem_free(out);
    json_decref(j);
    desc[127] = 'd';
    desc[128] = 0;
    snprintf(doc, sizeof doc, "{'host':'%s'}", desc);
    j = load(doc);
    assert_int_equal(opb_encode_v2(j, &out, &len, NULL), 0);
    assert_int_equal(len, 3 + 128);
    assert_int_equal(out[1], 0x80);
    assert_int_equal(out[2], 0x01);
    mem_free(out);
    json_decref(j);
}

static void test_openapi_pb__schema(void **state)
{
    (void)state;
    /* definitions = 9 { NamedSchema = 1 { name = 1, value = 2 Schema {
     *   required = 19 (tag 9a 01), type = 22 TypeItem (b2 01),
     *   properties = 25 (ca 01) { NamedSchema { "x", Schema { type } } } } } } */
    EXPECT_BYTES("{'definitions':{'A':{'type':'object','properties':{'x':{'type':'string'}},"
                 "'required':['x']}}}",
                 0x4a, 0x2b,
                 0x0a, 0x29,
                 0x0a, 0x01, 'A',
                 0x12, 0x24,
                 0x9a, 0x01, 0x01, 'x',
                 0xb2, 0x01, 0x08, 0x0a, 0x06, 'o', 'b', 'j', 'e', 'c', 't',
                 0xca, 0x01, 0x12,
                 0x0a, 0x10, 0x0a, 0x01, 'x', 0x12, 0x0b,
                 0xb2, 0x01, 0x08, 0x0a, 0x06, 's', 't', 'r', 'i', 'n', 'g');
}

static void test_openapi_pb__schema_scalars(void **state)
{
    (void)state;
    /* Inside definitions 'A' (4a .. 0a .. 0a 01 'A' 12 ..):
     * $ref = 1, format = 2, maximum = 7 (fixed64, 1.5 = 3ff8000000000000),
     * maxLength = 11 (-1: ten bytes), uniqueItems = 16 (80 01). */
    EXPECT_BYTES("{'definitions':{'A':{'$ref':'#/r','format':'f','maximum':1.5,"
                 "'maxLength':-1,'uniqueItems':true}}}",
                 0x4a, 0x26, 0x0a, 0x24, 0x0a, 0x01, 'A', 0x12, 0x1f,
                 0x0a, 0x03, '#', '/', 'r',
                 0x12, 0x01, 'f',
                 0x39, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f,
                 0x58, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                 0x80, 0x01, 0x01);
    /* additionalProperties = 21 (aa 01): false is written (oneof). */
    EXPECT_BYTES("{'definitions':{'A':{'additionalProperties':false}}}",
                 0x4a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, 'A', 0x12, 0x05,
                 0xaa, 0x01, 0x02, 0x10, 0x00);
    /* ... or a schema; items = 23 (ba 01) from one schema or a list. */
    EXPECT_BYTES("{'definitions':{'A':{'additionalProperties':{'format':'f'},"
                 "'items':[{'format':'g'},{}]}}}",
                 0x4a, 0x19, 0x0a, 0x17, 0x0a, 0x01, 'A', 0x12, 0x12,
                 0xaa, 0x01, 0x05, 0x0a, 0x03, 0x12, 0x01, 'f',
                 0xba, 0x01, 0x07, 0x0a, 0x03, 0x12, 0x01, 'g', 0x0a, 0x00);
    /* enum = 20 (a2 01): each value an Any { yaml = 2 } of its JSON text. */
    EXPECT_BYTES("{'definitions':{'A':{'enum':['a',1]}}}",
                 0x4a, 0x15, 0x0a, 0x13, 0x0a, 0x01, 'A', 0x12, 0x0e,
                 0xa2, 0x01, 0x05, 0x12, 0x03, '"', 'a', '"',
                 0xa2, 0x01, 0x03, 0x12, 0x01, '1');
}

static void test_openapi_pb__vendor_extension(void **state)
{
    (void)state;
    /* Schema.vendor_extension = 31 (fa 01): NamedAny { name = 1,
     * value = 2 Any { yaml = 2 } }, the YAML being the JSON text. */
    EXPECT_BYTES("{'definitions':{'A':{'x-kubernetes-preserve-unknown-fields':true}}}",
                 0x4a, 0x38, 0x0a, 0x36, 0x0a, 0x01, 'A', 0x12, 0x31,
                 0xfa, 0x01, 0x2e,
                 0x0a, 0x24, 'x', '-', 'k', 'u', 'b', 'e', 'r', 'n', 'e', 't', 'e', 's', '-',
                 'p', 'r', 'e', 's', 'e', 'r', 'v', 'e', '-', 'u', 'n', 'k', 'n', 'o', 'w', 'n',
                 '-', 'f', 'i', 'e', 'l', 'd', 's',
                 0x12, 0x06, 0x12, 0x04, 't', 'r', 'u', 'e');
    /* A list of objects prints with the spaces YAML's flow style wants. */
    EXPECT_BYTES("{'x-k':[{'g':'a','v':'b'}]}",
                 0x82, 0x01, 0x1f,
                 0x0a, 0x03, 'x', '-', 'k',
                 0x12, 0x18, 0x12, 0x16,
                 '[', '{', '"', 'g', '"', ':', ' ', '"', 'a', '"', ',', ' ',
                 '"', 'v', '"', ':', ' ', '"', 'b', '"', '}', ']');
    /* In a map of schemas an "x-" key is a name like any other. */
    EXPECT_BYTES("{'definitions':{'x-a':{}}}",
                 0x4a, 0x09, 0x0a, 0x07, 0x0a, 0x03, 'x', '-', 'a', 0x12, 0x00);
}

static void test_openapi_pb__paths(void **state)
{
    (void)state;
    json_t *doc = load(
        "{'swagger':'2.0','paths':{"
        "'x-p':1,"
        "'/apis/g/v1/things':{'post':{'operationId':'post','parameters':["
        "{'name':'dryRun','in':'query','type':'string','uniqueItems':true},"
        "{'name':'name','in':'path','required':true,'type':'string'},"
        "{'name':'body','in':'body','schema':{'$ref':'#/definitions/T'}},"
        "{'$ref':'#/parameters/p'}],"
        "'responses':{'200':{'description':'OK','schema':{'$ref':'#/definitions/T'}},"
        "'401':{'$ref':'#/responses/u'}},"
        "'x-kubernetes-action':'post',"
        "'x-kubernetes-group-version-kind':{'group':'g','kind':'T','version':'v1'}}}}}");
    unsigned char *out;
    size_t len;
    err_t err = {0};
    assert_int_equal(opb_encode_v2(doc, &out, &len, &err), 0);
    span_t d = {out, len};

    /* Paths = 8: vendor_extension = 1 first, then NamedPathItem = 2. */
    assert_span_str(at(d, 8, 0, 1, 0, 1, 0, 0), "x-p");
    assert_span_str(at(d, 8, 0, 1, 0, 2, 0, 2, 0, 0), "1");
    assert_span_str(at(d, 8, 0, 2, 0, 1, 0, 0), "/apis/g/v1/things");
    span_t op = at(d, 8, 0, 2, 0, 2, 0, 4, 0, 0);    /* PathItem.post = 4 */
    assert_span_str(at(op, 5, 0, 0), "post");       /* operation_id */

    /* ParametersItem.parameter = 1 -> Parameter.non_body_parameter = 2 ->
     * NonBodyParameter.query_parameter_sub_schema = 3 { name = 4, in = 2,
     * type = 6, unique_items = 20 } */
    span_t q = at(op, 8, 0, 1, 0, 2, 0, 3, 0, 0);
    assert_span_str(at(q, 4, 0, 0), "dryRun");
    assert_span_str(at(q, 2, 0, 0), "query");
    assert_span_str(at(q, 6, 0, 0), "string");
    uint64_t v = 0;
    assert_true(field(q, 20, 0, NULL, &v));
    assert_int_equal(v, 1);
    /* path_parameter_sub_schema = 4 { required = 1, name = 4, type = 5 } */
    span_t pp = at(op, 8, 1, 1, 0, 2, 0, 4, 0, 0);
    assert_true(field(pp, 1, 0, NULL, &v));
    assert_int_equal(v, 1);
    assert_span_str(at(pp, 5, 0, 0), "string");
    /* Parameter.body_parameter = 1 { schema = 5 { _ref = 1 } } */
    assert_span_str(at(op, 8, 2, 1, 0, 1, 0, 5, 0, 1, 0, 0), "#/definitions/T");
    /* ParametersItem.json_reference = 2 { _ref = 1 } */
    assert_span_str(at(op, 8, 3, 2, 0, 1, 0, 0), "#/parameters/p");

    /* responses = 9 { NamedResponseValue = 1 { "200", ResponseValue {
     * response = 1 { description = 1, schema = 2 SchemaItem { schema = 1 } } } } } */
    span_t r = at(op, 9, 0, 1, 0, 0);
    assert_span_str(at(r, 1, 0, 0), "200");
    assert_span_str(at(r, 2, 0, 1, 0, 1, 0, 0), "OK");
    assert_span_str(at(r, 2, 0, 1, 0, 2, 0, 1, 0, 1, 0, 0), "#/definitions/T");
    assert_span_str(at(op, 9, 0, 1, 1, 2, 0, 2, 0, 1, 0, 0), "#/responses/u");

    /* Operation.vendor_extension = 13, in key order. */
    assert_span_str(at(op, 13, 0, 1, 0, 0), "x-kubernetes-action");
    assert_span_str(at(op, 13, 0, 2, 0, 2, 0, 0), "\"post\"");
    assert_span_str(at(op, 13, 1, 1, 0, 0), "x-kubernetes-group-version-kind");
    assert_span_str(at(op, 13, 1, 2, 0, 2, 0, 0),
                    "{\"group\": \"g\", \"kind\": \"T\", \"version\": \"v1\"}");
    mem_free(out);
    json_decref(doc);
}

/* Everything the server's own document holds must be representable. */
static void test_openapi_pb__server_document(void **state)
{
    (void)state;
    json_t *doc = reg_openapi_v2();
    unsigned char *out;
    size_t len;
    err_t err = {0};
    assert_non_null(doc);
    if (opb_encode_v2(doc, &out, &len, &err))
        fail_msg("%s", err.message);
    span_t d = {out, len};
    assert_span_str(at(d, 1, 0, 0), "2.0");
    assert_span_str(at(d, 2, 0, 1, 0, 0), "edge-apiserver");
    /* As many NamedPathItems and NamedSchemas as the JSON has keys. */
    span_t paths = at(d, 8, 0, 0), defs = at(d, 9, 0, 0);
    size_t n = 0;
    while (field(paths, 2, (int)n, NULL, NULL))
        n++;
    assert_int_equal(n, json_object_size(json_object_get(doc, "paths")));
    n = 0;
    while (field(defs, 1, (int)n, NULL, NULL))
        n++;
    assert_int_equal(n, json_object_size(json_object_get(doc, "definitions")));
    mem_free(out);
    json_decref(doc);
}

/* The value of the Named<T> (name = 1, value = 2) entry called name among
 * the occurrences of field num of msg. */
static span_t named(span_t msg, unsigned num, const char *name)
{
    span_t e;
    for (int i = 0; field(msg, num, i, &e, NULL); i++) {
        span_t n = at(e, 1, 0, 0);
        if (n.n == strlen(name) && !memcmp(n.p, name, n.n))
            return at(e, 2, 0, 0);
    }
    fail_msg("no entry %s", name);
    return e;
}

/* The Schema at a dotted path of properties (Schema.properties = 25,
 * NamedSchema entries = 1) below schema, through array items
 * (Schema.items = 23, ItemsItem.schema = 1). */
static span_t schema_at(span_t schema, const char *path)
{
    char seg[128];
    while (*path) {
        size_t n = strcspn(path, ".");
        snprintf(seg, sizeof seg, "%.*s", (int)n, path);
        while (!field(schema, 25, 0, NULL, NULL) && field(schema, 23, 0, NULL, NULL))
            schema = at(schema, 23, 0, 1, 0, 0);
        schema = named(at(schema, 25, 0, 0), 1, seg);
        path += n + (path[n] == '.');
    }
    return schema;
}

static int span_is(span_t s, const char *want)
{
    return s.n == strlen(want) && !memcmp(s.p, want, s.n);
}

/* What kubectl explain reads from /openapi/v2 reaches the protobuf: each
 * kind's description (Schema.description = 4), a nested field's, the
 * required list (19), formats (2) and the semver pattern (13). */
static void test_openapi_pb__server_document_explains(void **state)
{
    (void)state;
    static const struct {
        const char *resource, *path;
    } explained[] = {
        {"roletemplates", "spec.rules.verbs"},
        {"iamroles", "status.aggregatedRules"},
        {"iamrolebindings", "spec.scope.cluster"},
        {"accessreviews", "spec.resourceAttributes.verb"},
        {"permissionreviews", "spec.scope.level"},
        {"clusters", "spec.connection.kubeconfig"},
        {"workspaces", "spec.namespaces.cluster"},
        {"nodegroups", "status.conditions.lastTransitionTime"},
        {"applications", "status.latestVersion"},
        {"applicationversions", "spec.version"},
        {"applicationdeployments", "status.topologies.phase"},
        {"components", "status.phase"},
    };
    json_t *doc = reg_openapi_v2();
    unsigned char *out;
    size_t len;
    err_t err = {0};
    assert_non_null(doc);
    if (opb_encode_v2(doc, &out, &len, &err))
        fail_msg("%s", err.message);
    span_t defs = at((span_t){out, len}, 9, 0, 0);
    size_t checked = 0;
    for (size_t i = 0; reg_kinds[i]; i++) {
        const reg_kind_t *k = reg_kinds[i];
        char name[256];
        const char *dot = strchr(k->group, '.');
        snprintf(name, sizeof name, "io.theriseunion.%.*s.v1alpha1.%s", (int)(dot - k->group),
                 k->group, k->kind);
        span_t def = named(defs, 1, name);
        assert_span_str(at(def, 4, 0, 0), k->description);
        for (size_t j = 0; j < sizeof explained / sizeof explained[0]; j++) {
            if (strcmp(explained[j].resource, k->resource))
                continue;
            span_t f = schema_at(def, explained[j].path);
            span_t d;
            if (!field(f, 4, 0, &d, NULL) || d.n < 10)
                fail_msg("%s: %s has no description in the protobuf", name, explained[j].path);
            checked++;
        }
    }
    assert_int_equal(checked, sizeof explained / sizeof explained[0]);
    span_t av = named(defs, 1, "io.theriseunion.app.v1alpha1.ApplicationVersion");
    span_t spec = schema_at(av, "spec");
    assert_true(span_is(at(spec, 19, 0, 0), "application"));
    assert_true(span_is(at(spec, 19, 1, 0), "version"));
    assert_span_str(at(schema_at(av, "spec.version"), 13, 0, 0),
                    "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)"
                    "(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)"
                    "(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                    "(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$");
    assert_span_str(at(schema_at(av, "metadata.creationTimestamp"), 2, 0, 0), "date-time");
    /* enum (20): Any { yaml = 2 } per value. */
    assert_span_str(at(schema_at(av, "status.phase"), 20, 0, 2, 0, 0), "\"Draft\"");
    mem_free(out);
    json_decref(doc);
}

static void test_openapi_pb__unrepresentable(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *msg;
    } cases[] = {
        {"[]", "not an object"},
        {"{'swagger':2}", "\"swagger\" is not a string"},
        {"{'openapi':'3.0.0'}", "Document has no field for \"openapi\""},
        {"{'definitions':{'A':{'nullable':true}}}", "Schema has no field for \"nullable\""},
        {"{'definitions':{'A':{'type':7}}}", "\"type\" is not a string or an array"},
        {"{'definitions':{'A':{'type':['a',1]}}}", "\"type\" is not an array of strings"},
        {"{'definitions':{'A':{'items':'x'}}}", "\"items\" is not a schema"},
        {"{'definitions':{'A':{'additionalProperties':1}}}", "not a schema or a boolean"},
        {"{'definitions':{'A':{'maxLength':1.5}}}", "\"maxLength\" is not an integer"},
        {"{'definitions':{'A':{'required':'x'}}}", "\"required\" is not an array of strings"},
        {"{'definitions':{'A':[]}}", "\"A\" is not an object"},
        {"{'paths':{'/a':{'get':{'parameters':[{'name':'n','in':'cookie'}]}}}}",
         "no NonBodyParameter fits this object (in: cookie"},
        {"{'paths':{'/a':{'get':{'parameters':{}}}}}", "\"parameters\" is not an array"},
        {"{'securityDefinitions':{'k':{'type':'mutualTLS'}}}",
         "no SecurityDefinitionsItem fits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = load(cases[i].doc);
        unsigned char *out = (unsigned char *)"unset";
        size_t len = 99;
        err_t err = {0};
        assert_int_equal(opb_encode_v2(doc, &out, &len, &err), ERR_INTERNAL);
        assert_null(out);
        assert_int_equal(len, 0);
        if (!strstr(err.message, cases[i].msg))
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].doc, err.message, cases[i].msg);
        json_decref(doc);
    }
}

static void test_openapi_pb__depth_bound(void **state)
{
    (void)state;
    /* A schema nested through properties far past OPB_MAX_DEPTH. */
    json_t *doc = load("{'definitions':{}}");
    json_t *s = json_object();
    for (int i = 0; i < OPB_MAX_DEPTH; i++)
        s = json_pack("{s:{s:o}}", "properties", "p", s);
    json_object_set_new(json_object_get(doc, "definitions"), "A", s);
    unsigned char *out;
    size_t len;
    err_t err = {0};
    assert_int_equal(opb_encode_v2(doc, &out, &len, &err), ERR_INTERNAL);
    assert_non_null(strstr(err.message, "nested deeper"));
    json_decref(doc);
}

static void test_openapi_pb__other_messages(void **state)
{
    (void)state;
    /* The Document's remaining fields map too (spot checks). */
    json_t *doc = load(
        "{'host':'h','basePath':'/b','schemes':['https','http'],"
        "'securityDefinitions':{'BearerToken':{'type':'apiKey','name':'authorization',"
        "'in':'header'},'o':{'type':'oauth2','flow':'accessCode','scopes':{'read':'r'},"
        "'authorizationUrl':'a','tokenUrl':'t'}},"
        "'security':[{'BearerToken':[]}],'tags':[{'name':'t'}],"
        "'responses':{'u':{'description':'no','schema':{'type':'file'}}},"
        "'info':{'license':{'name':'Apache-2.0'},'x-i':null}}");
    unsigned char *out;
    size_t len;
    err_t err = {0};
    if (opb_encode_v2(doc, &out, &len, &err))
        fail_msg("%s", err.message);
    span_t d = {out, len};
    assert_span_str(at(d, 3, 0, 0), "h");
    assert_span_str(at(d, 4, 0, 0), "/b");
    assert_span_str(at(d, 5, 1, 0), "http");
    /* security_definitions = 13 { Named = 1 { value = 2 { api_key = 2 { in = 3 } } } } */
    assert_span_str(at(d, 13, 0, 1, 0, 2, 0, 2, 0, 3, 0, 0), "header");
    /* oauth2_access_code_security = 6 { token_url = 5, scopes = 3 { NamedString } } */
    assert_span_str(at(d, 13, 0, 1, 1, 2, 0, 6, 0, 5, 0, 0), "t");
    assert_span_str(at(d, 13, 0, 1, 1, 2, 0, 6, 0, 3, 0, 1, 0, 2, 0, 0), "r");
    /* security = 12 { NamedStringArray = 1 { name, value = 2 (empty) } } */
    assert_span_str(at(d, 12, 0, 1, 0, 1, 0, 0), "BearerToken");
    assert_int_equal(at(d, 12, 0, 1, 0, 2, 0, 0).n, 0);
    assert_span_str(at(d, 14, 0, 1, 0, 0), "t");
    /* responses = 11 { NamedResponse { value = 2 Response { schema = 2
     * SchemaItem { file_schema = 2 { type = 6 } } } } } */
    assert_span_str(at(d, 11, 0, 1, 0, 2, 0, 2, 0, 2, 0, 6, 0, 0), "file");
    /* Info.license = 6, Info.vendor_extension = 7 holding null. */
    assert_span_str(at(d, 2, 0, 6, 0, 1, 0, 0), "Apache-2.0");
    assert_span_str(at(d, 2, 0, 7, 0, 2, 0, 2, 0, 0), "null");
    mem_free(out);
    json_decref(doc);
}

static void test_openapi_pb__accept(void **state)
{
    (void)state;
    static const struct {
        const char *accept;
        int pb;
    } cases[] = {
        {NULL, 0},
        {"", 0},
        {"*/*", 0},
        {"application/json", 0},
        {"application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 1},
        {"application/com.github.proto-openapi.spec.v2.v1.0+protobuf", 1},
        {"Application/Com.Github.Proto-OpenAPI.Spec.V2@v1.0+Protobuf", 1},
        {"application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json", 1},
        {"application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", 0},
        {"application/com.github.proto-openapi.spec.v2+protobuf", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *ct = opb_accepts_v2(cases[i].accept);
        if (cases[i].pb)
            assert_string_equal(ct, OPB_V2_CONTENT_TYPE);
        else if (ct)
            fail_msg("%s: want JSON", cases[i].accept);
    }
}

static void test_openapi_pb__allocation_failure(void **state)
{
    (void)state;
    /* The server's document, built before allocations start failing. */
    json_t *doc = reg_openapi_v2();
    unsigned char *want, *out;
    size_t want_len, len;
    assert_int_equal(opb_encode_v2(doc, &want, &want_len, NULL), 0);
    long n;
    for (n = 0;; n++) {
        err_t err = {0};
        out = (unsigned char *)"unset";
        mem_fail_after(n);
        int rc = opb_encode_v2(doc, &out, &len, &err);
        mem_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(len, want_len);
            assert_memory_equal(out, want, len);
            mem_free(out);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(err.code, ERR_NOMEM);
        assert_null(out);
    }
    assert_true(n > 0 && n < 100000);
    mem_free(want);
    json_decref(doc);
}

int main(void)
{
    mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openapi_pb__document_and_info),
        cmocka_unit_test(test_openapi_pb__varint_lengths),
        cmocka_unit_test(test_openapi_pb__schema),
        cmocka_unit_test(test_openapi_pb__schema_scalars),
        cmocka_unit_test(test_openapi_pb__vendor_extension),
        cmocka_unit_test(test_openapi_pb__paths),
        cmocka_unit_test(test_openapi_pb__server_document),
        cmocka_unit_test(test_openapi_pb__server_document_explains),
        cmocka_unit_test(test_openapi_pb__unrepresentable),
        cmocka_unit_test(test_openapi_pb__depth_bound),
        cmocka_unit_test(test_openapi_pb__other_messages),
        cmocka_unit_test(test_openapi_pb__accept),
        cmocka_unit_test(test_openapi_pb__allocation_failure),
    };
    return cmocka_run_group_tests_name("openapi_pb", tests, NULL, NULL);
}
