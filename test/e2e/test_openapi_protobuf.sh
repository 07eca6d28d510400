# /openapi/v2 as gnostic protobuf, which kubectl's client-side validation
# downloads (Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf):
# the framing walks cleanly, JSON is still served by default, and kubectl
# (default, 1.27 and 1.33) creates a create-only kind with validation on,
# rejects an unknown field from the schema it read, and still explains.
source "$(dirname "$0")/lib.sh"
start_server

PB_ACCEPT='application/com.github.proto-openapi.spec.v2@v1.0+protobuf'
PB_TYPE='application/com.github.proto-openapi.spec.v2.v1.0+protobuf'
URL="https://127.0.0.1:$PORT/openapi/v2"
AUTH="Authorization: Bearer $ADMIN_TOKEN"

curl -sS --fail -k -H "$AUTH" -H "Accept: $PB_ACCEPT" -D "$WORK/pb.headers" -o "$WORK/v2.pb" "$URL" \
  || die "GET /openapi/v2 as protobuf"
grep -qi "^content-type: $PB_TYPE" "$WORK/pb.headers" || die "protobuf content type: $(cat "$WORK/pb.headers")"
curl -sS --fail -k -H "$AUTH" -H "Accept: application/com.github.proto-openapi.spec.v2.v1.0+protobuf" \
  -o "$WORK/v2-dotted.pb" "$URL" || die "GET /openapi/v2 with the dotted media type"
cmp -s "$WORK/v2.pb" "$WORK/v2-dotted.pb" || die "the two spellings differ"
curl -sS --fail -k -H "$AUTH" -o "$WORK/v2.json" "$URL" || die "GET /openapi/v2 as JSON"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/v2.json" || die "JSON by default"

# A wire-format walker: Document.swagger (1), NamedSchema names under
# Document.definitions (9) match the JSON's, each message framed exactly.
python3 - "$WORK/v2.pb" "$WORK/v2.json" <<'PY' || die "protobuf does not match the JSON document"
import json, sys

def fields(buf):
    i, out = 0, []
    def varint():
        nonlocal i
        r = s = 0
        while True:
            b = buf[i]; i += 1
            r |= (b & 0x7f) << s; s += 7
            if b < 0x80:
                return r
    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out.append((num, varint()))
        elif wt == 1:
            out.append((num, buf[i:i + 8])); i += 8
        elif wt == 2:
            n = varint(); out.append((num, buf[i:i + n])); i += n
        else:
            raise SystemExit("wire type %d" % wt)
    if i != len(buf):
        raise SystemExit("message overruns its frame")
    return out

pb = open(sys.argv[1], "rb").read()
js = json.load(open(sys.argv[2]))
doc = fields(pb)
assert dict(doc)[1] == b"2.0", dict(doc)[1]
defs = [dict(fields(v)) for n, v in fields(dict(doc)[9]) if n == 1]
assert [d[1].decode() for d in defs] == list(js["definitions"]), "definition names"
paths = [dict(fields(v)) for n, v in fields(dict(doc)[8]) if n == 2]
assert [p[1].decode() for p in paths] == list(js["paths"]), "path names"
PY

cat > "$WORK/review.yaml" <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: PermissionReview
spec: {user: alice, scope: {level: Platform}}
YAML
sed 's/level: Platform}/level: Platform}, bogus: 1/' "$WORK/review.yaml" > "$WORK/bogus.yaml"

for v in "" 1.27 1.33; do
  out=$(k "$v" create -o yaml -f - < "$WORK/review.yaml" 2>&1) || die "kubectl $v create: $out"
  echo "$out" | grep -q "^status:" || die "kubectl $v create printed no status: $out"
  # Validation read the schema: an unknown field is refused client-side.
  expect_fail "kubectl $v create with an unknown field" k "$v" create -f "$WORK/bogus.yaml"
  grep -q 'unknown field "bogus"' "$WORK/out" || die "kubectl $v unknown field: $(cat "$WORK/out")"
  out=$(k "$v" explain iamroles.spec 2>&1) || die "kubectl $v explain: $out"
  echo "$out" | grep -q "KIND: *IAMRole" || die "kubectl $v explain: $out"
done
echo ok
