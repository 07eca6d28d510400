# A corpus of malformed and hostile requests, one table row per request.
# Each row is sent once and must get the status kube-apiserver gives it
# (always 4xx, but for a few positive rows on how query booleans, watch
# timeouts and request heads are read); where the server rather than the
# HTTP library answers, the body must be a metav1.Status (kind Status,
# apiVersion v1, status Failure, that code, the reason kube pairs with it,
# a message). After every row /healthz must answer 200, the server must
# still run, and the store's revision must not have moved: a bad request
# writes nothing. Fixtures of several kinds are read before the corpus and
# after it and must be byte-for-byte the same, and no list may gain or lose
# an item. Every row runs; the failures are listed at the end.
#
# A row: NAME | METHOD | PATH | HEADERS | BODY | EXPECT | MESSAGE
#   PATH     @iam/, @scope/, @app/, @ext/ stand for /apis/<group>/v1alpha1/
#   HEADERS  "-", or headers separated by "^": json, yaml, merge, jpatch,
#            smp, apply, text, xml, form name a Content-Type; "@FILE" reads
#            header lines from a file made below; anything else is sent as is
#   BODY     "-" for none, "@FILE" for a file made below, else the bytes
#   EXPECT   CODE[/CODE...][:CHECK], CHECK being
#              lib         the HTTP library answers: check the code only
#              list        a list (the body is a ...List)
#              watch       a watch stream with the fixtures' ADDED events
#                          that ends by itself (timeoutSeconds=1)
#              watch-ends  a watch stream that ends at once
#   MESSAGE  a substring the Status message must contain (optional)
# Where this server knowingly differs from kube-apiserver the row says
# what this server answers: a body that is not valid UTF-8 JSON (invalid
# UTF-8, an escaped NUL) is refused by the JSON reader as a 400 before the
# name is read (Go's decoder replaces or keeps such bytes and the name
# check then gives 422); a request line that is not HTTP at all gets no
# answer from libmicrohttpd, only a closed connection, and a NUL byte in a
# header value is cut there by libmicrohttpd before the server sees it
# (Go answers 400 to both).
# METHOD RAW writes BODY (a file) as raw bytes on a TLS connection, for
# what curl will not send. {{NAME}} in PATH, HEADERS and BODY is replaced
# from PH (each kind's apiVersion and kind; a continue token and a list
# resourceVersion read at start-up).
source "$(dirname "$0")/lib.sh"
set +o pipefail
shopt -u patsub_replacement 2>/dev/null || true
start_server

S=https://127.0.0.1:$PORT
AUTH="Authorization: Bearer $ADMIN_TOKEN"
B=$WORK/b C=$WORK/c
mkdir -p "$B" "$C" "$WORK/before" "$WORK/after"
url_of() {
  local p=$1 g
  case $p in @*/*) g=${p%%/*}; p="/apis/${g#@}.theriseunion.io/v1alpha1/${p#*/}";; esac
  printf '%s%s' "$S" "$p"
}

###########################################################################
# Fixtures: one or more objects of most kinds, with labels, annotations and
# lists, made before the corpus and compared after it. rt-fix comes first,
# so resourceVersion "1" is stale for every other fixture.
mk() {
  local code
  code=$(curl -sk -X POST -H "$AUTH" -H 'Content-Type: application/json' --data-binary "$2" \
    -o "$WORK/out" -w '%{http_code}' "$(url_of "$1")" || true)
  [ "$code" = 201 ] || die "fixture in $1: HTTP $code $(head -c 400 "$WORK/out")"
}
tm() { printf '"apiVersion":"%s.theriseunion.io/v1alpha1","kind":"%s"' "$1" "$2"; }
declare -A PH=(
  [RT]=$(tm iam RoleTemplate) [IR]=$(tm iam IAMRole) [AR]=$(tm iam AccessReview)
  [CL]=$(tm scope Cluster) [WS]=$(tm scope Workspace) [NG]=$(tm scope NodeGroup)
  [AP]=$(tm app Application) [AD]=$(tm app ApplicationDeployment) [CO]=$(tm ext Component)
)
RULES='[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"]}]'
mk @iam/roletemplates "{${PH[RT]},\"metadata\":{\"name\":\"rt-fix\",\"labels\":{\"tier\":\"base\"}},
  \"spec\":{\"displayName\":\"Fixture\",\"scopes\":[\"Platform\",\"Workspace\"],\"rules\":$RULES}}"
mk @iam/iamroles "{${PH[IR]},\"metadata\":{\"name\":\"role-fix\",\"annotations\":{\"note\":\"keep\"}},
  \"spec\":{\"scope\":\"Platform\",\"templateRefs\":[\"rt-fix\"],\"rules\":$RULES,\"uiPermissions\":[\"a\"]}}"
mk @scope/clusters "{${PH[CL]},\"metadata\":{\"name\":\"c-fix\",\"labels\":{\"site\":\"edge\"}},
  \"spec\":{\"type\":\"physical\",\"distribution\":\"k3s\",\"version\":\"v1.30.0\",\"edgeRuntime\":\"none\",
  \"connection\":{\"type\":\"direct\",\"kubernetesAPIEndpoint\":\"https://10.0.0.1:6443\",\"kubernetesAPIServerPort\":6443}}}"
mk @scope/workspaces "{${PH[WS]},\"metadata\":{\"name\":\"ws-fix\",\"labels\":{\"team\":\"a\",\"tier\":\"gold\"},
  \"annotations\":{\"note\":\"keep me\"}},\"spec\":{\"displayName\":\"Fixture\",\"manager\":\"alice\",
  \"clusters\":[\"c-fix\"],\"namespaces\":[{\"cluster\":\"c-fix\",\"name\":\"shop\"}]}}"
VICTIMS=(vic-1 vic-2 vic-3 vic-4 vic-5 vic-6 vic-7 vic-8 vic-9)
for ng in ng-fix ng-fix2 "${VICTIMS[@]}"; do
  mk @scope/nodegroups "{${PH[NG]},\"metadata\":{\"name\":\"$ng\",\"labels\":{\"grp\":\"x\"}},
    \"spec\":{\"cluster\":\"c-fix\",\"nodes\":[\"n1\",\"n2\"]}}"
done
mk @app/applications "{${PH[AP]},\"metadata\":{\"name\":\"app-fix\"},\"spec\":{\"displayName\":\"App\",\"type\":\"workload\"}}"
mk @app/namespaces/shop/applicationdeployments "{${PH[AD]},\"metadata\":{\"name\":\"ad-fix\",\"labels\":{\"app\":\"x\"}},
  \"spec\":{\"application\":\"app-fix\",\"version\":\"1.0.0\",\"topologies\":[{\"nodeGroup\":\"ng-fix\",\"replicas\":2}]}}"
mk @ext/components "{${PH[CO]},\"metadata\":{\"name\":\"comp-fix\"},\"spec\":{\"chart\":\"nginx\",\"version\":\"1.0.0\",
  \"repository\":\"https://charts.example.com\",\"values\":{\"a\":{\"b\":[1,2]}},\"cluster\":\"c-fix\"}}"

FIXTURES=(@iam/roletemplates/rt-fix @iam/iamroles/role-fix @scope/clusters/c-fix @scope/workspaces/ws-fix
  @scope/nodegroups/ng-fix @scope/nodegroups/ng-fix2 @app/applications/app-fix
  @app/namespaces/shop/applicationdeployments/ad-fix @ext/components/comp-fix "${VICTIMS[@]/#/@scope/nodegroups/}")
LISTS=(@iam/roletemplates @iam/iamroles @iam/iamrolebindings @scope/clusters @scope/workspaces
  @scope/nodegroups @app/applications @app/applicationversions @app/applicationdeployments @ext/components)
# snap DIR: every fixture and every list, on one connection.
snap() {
  local args=() i
  for i in "${!FIXTURES[@]}"; do args+=(-o "$1/fix$i" "$(url_of "${FIXTURES[$i]}")"); done
  for i in "${!LISTS[@]}"; do args+=(-o "$1/list$i" "$(url_of "${LISTS[$i]}")"); done
  curl -sk -H "$AUTH" "${args[@]}" || die "snapshot into $1 failed"
}
# The controllers' status writes land before the snapshot: app-fix's
# (the Application controller's) is the last to come.
for i in $(seq 100); do
  curl -sk -H "$AUTH" "$(url_of @app/applications/app-fix)" | grep -q '"versionCount"' && break
  sleep 0.1
done
snap "$WORK/before"

# A continue token and the revision, for rows that need real ones.
curl -sk -H "$AUTH" -o "$WORK/page" "$(url_of '@scope/nodegroups?limit=1')"
read -r PH[CONT] PH[LISTRV] < <(python3 -c 'import json, sys, urllib.parse
m = json.load(open(sys.argv[1]))["metadata"]
print(urllib.parse.quote(m["continue"], safe=""), m["resourceVersion"])' "$WORK/page") \
  || die "no continue token: $(head -c 300 "$WORK/page")"
REV_URL=$(url_of '@scope/workspaces?limit=1')
long() { printf "%${2}s" | tr ' ' "$1"; }
PH[N254]=$(long a 254) PH[N1000]=$(long a 1000) PH[FM129]=$(long m 129) PH[V64]=$(long v 64)

###########################################################################
# Generated bodies, header files and raw requests.
python3 - "$B" "$ADMIN_TOKEN" <<'PY'
import json, os, sys
d, token = sys.argv[1], sys.argv[2]
def put(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
TM = lambda g, k: '"apiVersion":"%s.theriseunion.io/v1alpha1","kind":"%s"' % (g, k)
WS, CO = TM("scope", "Workspace"), TM("ext", "Component")
MiB3 = 3 * 1024 * 1024
put("empty", b"")
put("nul_in_string", '{%s,"metadata":{"name":"bad\x00nul"}}' % WS)
put("utf8_outside", b'{' + WS.encode() + b',"metadata":{"name":"bad-utf8"},"spec":\xff}')
put("bom", b"\xef\xbb\xbf{" + WS.encode() + b',"metadata":{"name":"bad-bom"}}')
put("utf8_name", b'{' + WS.encode() + b',"metadata":{"name":"bad\xffname"}}')
put("deep_manager", '{%s,"metadata":{"name":"bad-deep1"},"spec":{"manager":%s%s}}' % (WS, "[" * 10000, "]" * 10000))
put("deep_values", '{%s,"metadata":{"name":"bad-deep2"},"spec":{"chart":"x","values":{"a":%s%s}}}'
    % (CO, "[" * 10000, "]" * 10000))
put("deep_open", '{%s,"metadata":{"name":"bad-deep3"},"spec":%s' % (WS, "[" * 100000))
put("huge_int", '{%s,"metadata":{"name":"bad-bigint"},"spec":{"application":"a","topologies":[{"nodeGroup":"g","replicas":%s}]}}'
    % (TM("app", "ApplicationDeployment"), "9" * 400))
big = "a" * (MiB3 + 16)
put("big_create", json.dumps({"apiVersion": "scope.theriseunion.io/v1alpha1", "kind": "Workspace",
                              "metadata": {"name": "bad-big", "annotations": {"x": big}}}))
put("big_put", json.dumps({"apiVersion": "scope.theriseunion.io/v1alpha1", "kind": "Workspace",
                           "metadata": {"name": "ws-fix", "annotations": {"x": big}}}))
put("big_merge", json.dumps({"metadata": {"annotations": {"x": big}}}))
put("big_delete", json.dumps({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"], "x": big}))
put("jpatch_10001", json.dumps([{"op": "test", "path": "/kind", "value": "Workspace"}] * 10001))
# Raw requests. Those the server itself would answer carry credentials.
auth = "Authorization: Bearer %s\r\n" % token
col = "/apis/scope.theriseunion.io/v1alpha1/workspaces"
def req(line, headers="", body=b""):
    return line.encode() + b"\r\nHost: 127.0.0.1\r\n" + auth.encode() + headers.encode() \
        + b"Connection: close\r\n\r\n" + body
put("raw_garbage", b"HELLO\r\n\r\n")
put("raw_nocolon", req("GET /healthz HTTP/1.1", "NoColonHere\r\n"))
put("raw_nulhdr", req("GET %s HTTP/1.1" % col, "X-Bad: a\x00b\r\n"))
put("raw_cl_abc", req("POST %s HTTP/1.1" % col, "Content-Type: application/json\r\nContent-Length: abc\r\n", b"{}"))
put("raw_dup_cl", req("POST %s HTTP/1.1" % col,
    "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n", b"{} "))
put("raw_nohost", ("GET %s HTTP/1.1\r\n%sConnection: close\r\n\r\n" % (col, auth)).encode())
put("raw_badpct", req("GET /apis/scope.theriseunion.io/v1alpha1/workspaces/%zz HTTP/1.1"))
put("raw_hdr300k", req("GET %s HTTP/1.1" % col, "X-Filler: %s\r\n" % ("a" * (300 * 1024))))
put("raw_hdr200k", req("GET %s HTTP/1.1" % col, "X-Filler: %s\r\n" % ("a" * (200 * 1024))))
put("raw_url300k", req("GET %s?x=%s HTTP/1.1" % (col, "a" * (300 * 1024))))
PY

# raw.py PORT FILE OUT: sends FILE's bytes over TLS, stops sending once an
# answer arrives (a server may refuse early), writes the answer's body to
# OUT and prints its status code (000 when there is none).
cat > "$WORK/raw.py" <<'PY'
import select, socket, ssl, sys, time
port, data, out = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
t = ssl._create_unverified_context().wrap_socket(
    socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")
resp = b""
try:
    for i in range(0, len(data), 16384):
        if t.pending() or select.select([t], [], [], 0)[0]:
            break
        t.sendall(data[i:i + 16384])
except OSError:
    pass
t.settimeout(5)
deadline = time.time() + 10
try:
    while time.time() < deadline:
        chunk = t.recv(65536)
        if not chunk:
            break
        resp += chunk
        head, sep, body = resp.partition(b"\r\n\r\n")
        if sep:
            cl = [l.split(b":", 1)[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if cl and len(body) >= int(cl[0]):
                break
except (OSError, ValueError):
    pass
head, _, body = resp.partition(b"\r\n\r\n")
open(out, "wb").write(body)
parts = head.split(b" ", 2)
print(parts[1].decode() if len(parts) > 1 and parts[0].startswith(b"HTTP/") else "000")
PY

###########################################################################
# The corpus.
CASES=$(cat <<'TABLE'
# Malformed bodies: what does not decode is 400.
truncated object                 | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-trunc"} | 400
trailing garbage                 | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-trail"}} xyz | 400
empty body                       | POST  | @scope/workspaces | json | @empty | 400
a JSON array                     | POST  | @scope/workspaces | json | [] | 400
single quotes                    | POST  | @scope/workspaces | json | {'apiVersion':'scope.theriseunion.io/v1alpha1','kind':'Workspace'} | 400
raw NUL inside a string          | POST  | @scope/workspaces | json | @nul_in_string | 400
invalid UTF-8 between tokens     | POST  | @scope/workspaces | json | @utf8_outside | 400
byte order mark                  | POST  | @scope/workspaces | json | @bom | 400
10000 arrays deep in spec        | POST  | @scope/workspaces | json | @deep_manager | 400
10000 arrays deep in free values | POST  | @ext/components | json | @deep_values | 400
100000 unclosed arrays           | POST  | @scope/workspaces | json | @deep_open | 400
1e400 in an integer field        | POST  | @scope/clusters | json | {{{CL}},"metadata":{"name":"bad-num"},"spec":{"connection":{"kubernetesAPIServerPort":1e400}}} | 400
a 400-digit integer              | POST  | @app/namespaces/shop/applicationdeployments | json | @huge_int | 400
duplicate keys, Strict           | POST  | @scope/nodegroups?fieldValidation=Strict | json | {{{NG}},"metadata":{"name":"bad-dup"},"spec":{"cluster":"a","cluster":"b"}} | 400 | duplicate
duplicate keys by default: Warn  | POST  | @scope/nodegroups?dryRun=All | json | {{{NG}},"metadata":{"name":"dup-ok"},"spec":{"cluster":"a","cluster":"b"}} | 201
malformed YAML                   | POST  | @scope/workspaces | yaml | {apiVersion: scope.theriseunion.io/v1alpha1, kind: Workspace, metadata: {name: bad-yaml | 400
a YAML scalar                    | POST  | @scope/workspaces | yaml | just words | 400

# Wrong types in metadata or in the type fields do not decode: 400.
metadata a string                | POST  | @scope/workspaces | json | {{{WS}},"metadata":"bad-meta"} | 400
metadata an array                | POST  | @scope/workspaces | json | {{{WS}},"metadata":[{"name":"bad-meta2"}]} | 400
metadata.name a number           | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":42}} | 400
metadata.labels a list           | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-labels","labels":["a","b"]}} | 400
a label value a number           | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-labels2","labels":{"a":1}}} | 400
metadata.annotations a string    | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-ann","annotations":"a=b"}} | 400
creationTimestamp not a time     | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-ts","creationTimestamp":"yesterday"}} | 400
apiVersion a number              | POST  | @scope/workspaces | json | {"apiVersion":1,"kind":"Workspace","metadata":{"name":"bad-av"}} | 400
kind an object                   | POST  | @scope/workspaces | json | {"apiVersion":"scope.theriseunion.io/v1alpha1","kind":{"k":"Workspace"},"metadata":{"name":"bad-kind"}} | 400

# Wrong types in spec fail the kind's schema: 422, as for a CRD.
spec a string                    | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-spec"},"spec":"x"} | 422
spec.manager a number            | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-mgr"},"spec":{"manager":5}} | 422 | spec.manager
a namespace entry without name   | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-nsent"},"spec":{"namespaces":[{"cluster":"c1"}]}} | 422
IAMRole rules a string           | POST  | @iam/iamroles | json | {{{IR}},"metadata":{"name":"bad-rules"},"spec":{"scope":"Platform","rules":"all"}} | 422
IAMRole scope not a level        | POST  | @iam/iamroles | json | {{{IR}},"metadata":{"name":"bad-level"},"spec":{"scope":"Galaxy"}} | 422
Cluster port a string            | POST  | @scope/clusters | json | {{{CL}},"metadata":{"name":"bad-port"},"spec":{"connection":{"kubernetesAPIServerPort":"6443"}}} | 422
Cluster kubeconfig not base64    | POST  | @scope/clusters | json | {{{CL}},"metadata":{"name":"bad-kc"},"spec":{"connection":{"kubeconfig":"not base64!"}}} | 422
replicas a string                | POST  | @app/namespaces/shop/applicationdeployments | json | {{{AD}},"metadata":{"name":"bad-repl"},"spec":{"application":"a","topologies":[{"nodeGroup":"g","replicas":"two"}]}} | 422
Component without its chart      | POST  | @ext/components | json | {{{CO}},"metadata":{"name":"bad-chart"},"spec":{"version":"1.0.0"}} | 422

# apiVersion and kind must be the URL's: 400.
apiVersion of another group      | POST  | @scope/workspaces | json | {"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"bad-gv1"}} | 400
apiVersion of another version    | POST  | @scope/workspaces | json | {"apiVersion":"scope.theriseunion.io/v1","kind":"Workspace","metadata":{"name":"bad-gv2"}} | 400
another kind of the group        | POST  | @scope/workspaces | json | {{{NG}},"metadata":{"name":"bad-k1"}} | 400
a Workspace sent to iamroles     | POST  | @iam/iamroles | json | {{{WS}},"metadata":{"name":"bad-k3"}} | 400
PUT of another kind              | PUT   | @scope/workspaces/ws-fix | json | {{{NG}},"metadata":{"name":"ws-fix"}} | 400

# Names: kube's DNS-1123 subdomain rules, 422. Go's decoder turns invalid
# UTF-8 into U+FFFD and accepts \u0000, so those reach validation too.
upper case and underscore        | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"Bad_Name"}} | 422 | a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters
a slash in the name              | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad/name"}} | 422
leading dash                     | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"-bad"}} | 422 | a lowercase RFC 1123 subdomain
254 characters                   | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"{{N254}}"}} | 422 | must be no more than 253 characters
no name, no generateName         | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"labels":{"a":"b"}}} | 422 | name or generateName is required
invalid UTF-8 in the name        | POST  | @scope/workspaces | json | @utf8_name | 400
an escaped NUL in the name       | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad\u0000nul"}} | 400
an invalid label key             | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-lk","labels":{"bad key":"v"}}} | 422
a 64-character label value       | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-lv","labels":{"k":"{{V64}}"}}} | 422 | must be no more than 63 characters

# Creates that clash with what is stored or set what they may not.
a duplicate of a fixture         | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"ws-fix"}} | 409 | already exists
resourceVersion set (Workspace)  | POST  | @scope/workspaces | json | {{{WS}},"metadata":{"name":"bad-rv1","resourceVersion":"5"}} | 400 | resourceVersion should not be set on objects to be created
resourceVersion set (NodeGroup)  | POST  | @scope/nodegroups | json | {{{NG}},"metadata":{"name":"bad-rv2","resourceVersion":"1"}} | 400 | resourceVersion should not be set on objects to be created
resourceVersion set (namespaced) | POST  | @app/namespaces/shop/applicationdeployments | json | {{{AD}},"metadata":{"name":"bad-rv3","resourceVersion":"9"},"spec":{"application":"a"}} | 400 | resourceVersion should not be set on objects to be created
namespace other than the URL's   | POST  | @app/namespaces/shop/applicationdeployments | json | {{{AD}},"metadata":{"name":"bad-ns","namespace":"other"},"spec":{"application":"a"}} | 400 | does not match the namespace

# Bodies in a format the server does not read: 415, naming those it reads.
create as text/plain             | POST  | @scope/workspaces | text | {{{WS}},"metadata":{"name":"bad-text"}} | 415 | application/json
create as application/xml        | POST  | @scope/workspaces | xml  | <Workspace><metadata><name>bad-xml</name></metadata></Workspace> | 415 | application/json
create as a form                 | POST  | @scope/workspaces | form | name=bad-form | 415 | application/json
create with a broken media type  | POST  | @scope/workspaces | Content-Type: application/ | {{{WS}},"metadata":{"name":"bad-mt"}} | 415
PUT as text/plain                | PUT   | @scope/workspaces/ws-fix | text | {{{WS}},"metadata":{"name":"ws-fix"},"spec":{"manager":"mallory"}} | 415 | application/json
PUT as application/xml           | PUT   | @scope/workspaces/ws-fix | xml  | <Workspace><metadata><name>ws-fix</name></metadata></Workspace> | 415 | application/json

# PUT: the body names the object on the URL, at its version. An empty
# name is "undeterminable" (400, "name must be provided").
PUT under another name           | PUT   | @scope/workspaces/ws-fix | json | {{{WS}},"metadata":{"name":"ws-other"},"spec":{"manager":"mallory"}} | 400 | does not match the name on the URL
PUT without a name               | PUT   | @scope/workspaces/ws-fix | json | {{{WS}},"metadata":{"labels":{"a":"b"}},"spec":{"manager":"mallory"}} | 400 | name must be provided
PUT without metadata             | PUT   | @scope/workspaces/ws-fix | json | {{{WS}},"spec":{"manager":"mallory"}} | 400 | name must be provided
PUT in another namespace         | PUT   | @app/namespaces/shop/applicationdeployments/ad-fix | json | {{{AD}},"metadata":{"name":"ad-fix","namespace":"other"},"spec":{"application":"x"}} | 400 | does not match the namespace
PUT status under another name    | PUT   | @scope/workspaces/ws-fix/status | json | {{{WS}},"metadata":{"name":"ws-other"}} | 400 | does not match the name on the URL
PUT a stale resourceVersion      | PUT   | @scope/workspaces/ws-fix | json | {{{WS}},"metadata":{"name":"ws-fix","resourceVersion":"1"},"spec":{"manager":"mallory"}} | 409 | the object has been modified
PUT another uid                  | PUT   | @scope/workspaces/ws-fix | json | {{{WS}},"metadata":{"name":"ws-fix","uid":"00000000-0000-0000-0000-000000000000"},"spec":{"manager":"mallory"}} | 409 | Precondition failed
PUT a spec of wrong types        | PUT   | @scope/workspaces/ws-fix | json | {{{WS}},"metadata":{"name":"ws-fix"},"spec":{"manager":5}} | 422
PUT an object that is not there  | PUT   | @scope/workspaces/ws-missing | json | {{{WS}},"metadata":{"name":"ws-missing"}} | 404

# Query options: a value that does not parse is 400; one that parses but
# is not allowed fails the options' validation, 422 (CreateOptions,
# ListOptions, PatchOptions, DeleteOptions.meta.k8s.io "" is invalid).
create, dryRun=bogus             | POST  | @scope/workspaces?dryRun=bogus | json | {{{WS}},"metadata":{"name":"bad-dry"}} | 422 | dryRun
create, fieldValidation=bogus    | POST  | @scope/workspaces?fieldValidation=bogus | json | {{{WS}},"metadata":{"name":"bad-fv"}} | 422 | fieldValidation
create, a 129-byte fieldManager  | POST  | @scope/workspaces?fieldManager={{FM129}} | json | {{{WS}},"metadata":{"name":"bad-fm"}} | 422 | fieldManager
create, a control byte in fieldManager | POST | @scope/workspaces?fieldManager=a%01b | json | {{{WS}},"metadata":{"name":"bad-fm2"}} | 422 | fieldManager
list, limit=abc                  | GET   | @scope/nodegroups?limit=abc | - | - | 400
list, limit empty                | GET   | @scope/nodegroups?limit= | - | - | 400
list, limit past int64           | GET   | @scope/nodegroups?limit=99999999999999999999 | - | - | 400
list, resourceVersion=abc        | GET   | @scope/nodegroups?resourceVersion=abc | - | - | 400
list, resourceVersion past uint64| GET   | @scope/nodegroups?resourceVersion=99999999999999999999 | - | - | 400
list, timeoutSeconds=abc         | GET   | @scope/nodegroups?timeoutSeconds=abc | - | - | 400
fieldSelector without operator   | GET   | @scope/nodegroups?fieldSelector=metadata.name | - | - | 400
fieldSelector on an unknown field| GET   | @scope/nodegroups?fieldSelector=spec.cluster%3Dc-fix | - | - | 400 | not supported
labelSelector, unclosed set      | GET   | @scope/nodegroups?labelSelector=grp%20in%20(x | - | - | 400
labelSelector, invalid key       | GET   | @scope/nodegroups?labelSelector=bad%20key%3Dx | - | - | 400
labelSelector, 64-char value     | GET   | @scope/nodegroups?labelSelector=grp%3D{{V64}} | - | - | 400
resourceVersionMatch alone       | GET   | @scope/nodegroups?resourceVersionMatch=NotOlderThan | - | - | 422 | resourceVersionMatch is forbidden unless resourceVersion is provided
resourceVersionMatch Exact at 0  | GET   | @scope/nodegroups?resourceVersion=0&resourceVersionMatch=Exact | - | - | 422
resourceVersionMatch, continue   | GET   | @scope/nodegroups?resourceVersion=1&resourceVersionMatch=NotOlderThan&continue={{CONT}} | - | - | 422
resourceVersionMatch on a watch  | GET   | @scope/nodegroups?watch=true&timeoutSeconds=1&resourceVersion=1&resourceVersionMatch=NotOlderThan | - | - | 422
sendInitialEvents on a list      | GET   | @scope/nodegroups?sendInitialEvents=true | - | - | 422
continue, garbage                | GET   | @scope/nodegroups?limit=1&continue=not-a-token | - | - | 400
continue with a resourceVersion  | GET   | @scope/nodegroups?limit=1&continue={{CONT}}&resourceVersion={{LISTRV}} | - | - | 400 | specifying resource version is not allowed when using continue
list, Accept application/xml     | GET   | @scope/nodegroups | Accept: application/xml | - | 406

# Patches. A patch that leaves no name or another name is 400, and the
# object is left as it was.
patch as text/plain              | PATCH | @scope/workspaces/ws-fix | text | {"spec":{"manager":"mallory"}} | 415
patch as application/json        | PATCH | @scope/workspaces/ws-fix | json | {"spec":{"manager":"mallory"}} | 415
patch as application/xml         | PATCH | @scope/workspaces/ws-fix | xml  | <spec/> | 415
patch without a Content-Type     | PATCH | @scope/workspaces/ws-fix | Content-Type: | {"spec":{"manager":"mallory"}} | 415
JSON patch not an array          | PATCH | @scope/workspaces/ws-fix | jpatch | {"op":"replace","path":"/spec/manager","value":"mallory"} | 400
JSON patch malformed             | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"replace", | 400
JSON patch, unknown op           | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"bogus","path":"/spec/manager","value":"mallory"}] | 422
JSON patch, failing test         | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"test","path":"/spec/manager","value":"nobody"},{"op":"replace","path":"/spec/manager","value":"mallory"}] | 422 | test
JSON patch, remove missing path  | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"remove","path":"/spec/nosuch"}] | 422
JSON patch, remove /metadata     | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"remove","path":"/metadata"}] | 400 | name must be provided
JSON patch, remove the name      | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"remove","path":"/metadata/name"}] | 400 | name must be provided
JSON patch, rename               | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"replace","path":"/metadata/name","value":"ws-other"}] | 400 | does not match the name on the URL
JSON patch, labels a list        | PATCH | @scope/workspaces/ws-fix | jpatch | [{"op":"replace","path":"/metadata/labels","value":["a"]}] | 422
JSON patch, 10001 operations     | PATCH | @scope/workspaces/ws-fix | jpatch | @jpatch_10001 | 413
merge patch, metadata null       | PATCH | @scope/workspaces/ws-fix | merge | {"metadata":null} | 400 | name must be provided
merge patch, name null           | PATCH | @scope/workspaces/ws-fix | merge | {"metadata":{"name":null}} | 400 | name must be provided
merge patch, rename              | PATCH | @scope/workspaces/ws-fix | merge | {"metadata":{"name":"ws-other"}} | 400 | does not match the name on the URL
merge patch malformed            | PATCH | @scope/workspaces/ws-fix | merge | {"spec": | 400
merge patch an array             | PATCH | @scope/workspaces/ws-fix | merge | [] | 400
merge patch, metadata a string   | PATCH | @scope/workspaces/ws-fix | merge | {"metadata":"x"} | 422
merge patch, IAMRole rules text  | PATCH | @iam/iamroles/role-fix | merge | {"spec":{"rules":"all"}} | 422
merge patch, another uid         | PATCH | @scope/workspaces/ws-fix | merge | {"metadata":{"uid":"00000000-0000-0000-0000-000000000000"}} | 422 | field is immutable
merge patch, stale version       | PATCH | @scope/workspaces/ws-fix | merge | {"metadata":{"resourceVersion":"1"},"spec":{"manager":"mallory"}} | 409 | the object has been modified
merge patch of a missing object  | PATCH | @scope/workspaces/ws-missing | merge | {"spec":{"manager":"mallory"}} | 404
merge patch of the collection    | PATCH | @scope/workspaces | merge | {"spec":{"manager":"mallory"}} | 405
strategic merge, $patch replace  | PATCH | @scope/workspaces/ws-fix | smp | {"$patch":"replace"} | 400 | name must be provided
strategic merge, delete metadata | PATCH | @scope/workspaces/ws-fix | smp | {"metadata":{"$patch":"delete"}} | 400 | name must be provided
strategic merge, $retainKeys     | PATCH | @scope/workspaces/ws-fix | smp | {"spec":{"$retainKeys":"manager","manager":"mallory"}} | 400
strategic merge, $deleteFromPrimitiveList | PATCH | @scope/workspaces/ws-fix | smp | {"spec":{"$deleteFromPrimitiveList/clusters":"c-fix"}} | 400
apply without a fieldManager     | PATCH | @scope/workspaces/ws-fix | apply | {{{WS}},"metadata":{"name":"ws-fix"},"spec":{"manager":"mallory"}} | 422 | fieldManager
apply, malformed YAML            | PATCH | @scope/workspaces/ws-fix?fieldManager=t | apply | {apiVersion: [ | 400
apply of another version         | PATCH | @scope/workspaces/ws-fix?fieldManager=t | apply | {"apiVersion":"scope.theriseunion.io/v9","kind":"Workspace","metadata":{"name":"ws-fix"}} | 400
apply under another name         | PATCH | @scope/workspaces/ws-fix?fieldManager=t | apply | {{{WS}},"metadata":{"name":"ws-other"},"spec":{"manager":"mallory"}} | 400 | does not match the name on the URL
patch, force on a merge patch    | PATCH | @scope/workspaces/ws-fix?force=true | merge | {"spec":{"manager":"mallory"}} | 422 | force
patch, dryRun=bogus              | PATCH | @scope/workspaces/ws-fix?dryRun=bogus | merge | {"spec":{"manager":"mallory"}} | 422 | dryRun

# Paths the server does not serve (404), methods they do not take (405).
an unknown resource              | GET   | @scope/nosuchthings | - | - | 404 | the server could not find the requested resource
an unknown version               | GET   | /apis/scope.theriseunion.io/v1/workspaces | - | - | 404
an unknown group                 | GET   | /apis/nosuch.example.com/v1alpha1/workspaces | - | - | 404
a cluster kind in a namespace    | GET   | @scope/namespaces/default/workspaces | - | - | 404
an escaped slash in a name       | GET   | @scope/workspaces/ws%2Ffix | - | - | 404
a 1000-character name            | GET   | @scope/workspaces/{{N1000}} | - | - | 404
a named path of a create-only kind| GET  | @iam/accessreviews/x | - | - | 404
POST on a named object           | POST  | @scope/workspaces/ws-fix | json | {{{WS}},"metadata":{"name":"ws-fix"}} | 405 | the server does not allow this method on the requested resource
PUT on a collection              | PUT   | @scope/workspaces | json | {{{WS}},"metadata":{"name":"ws-fix"}} | 405
an unknown method                | FOO   | @scope/workspaces | - | - | 405
list of a create-only kind       | GET   | @iam/accessreviews | - | - | 405
POST /version                    | POST  | /version | json | {} | 405
an AccessReview as text/plain    | POST  | @iam/accessreviews | text | {{{AR}},"spec":{"user":"alice"}} | 415
a PermissionReview of a Workspace| POST  | @iam/permissionreviews | json | {{{WS}},"metadata":{"name":"bad-pr"}} | 400

# Sizes: a body over 3 MiB is 413; a request head of 200 KB is served, one
# over 256 KiB refused (by the HTTP library, so only the code is checked).
create over 3 MiB                | POST  | @scope/workspaces | json | @big_create | 413
create over 3 MiB, chunked       | POST  | @scope/workspaces | json^Transfer-Encoding: chunked | @big_create | 413
PUT over 3 MiB                   | PUT   | @scope/workspaces/ws-fix | json | @big_put | 413
merge patch over 3 MiB           | PATCH | @scope/workspaces/ws-fix | merge | @big_merge | 413
a 200 KB header                  | RAW   | - | - | @raw_hdr200k | 200:lib
a 300 KiB header                 | RAW   | - | - | @raw_hdr300k | 431/414:lib
a 300 KiB URL                    | RAW   | - | - | @raw_url300k | 414/431:lib

# Malformed HTTP, sent raw: Go's net/http answers 400 before kube sees it.
a request line that is not HTTP  | RAW   | - | - | @raw_garbage | 400/000:lib
a header line without a colon    | RAW   | - | - | @raw_nocolon | 400:lib
a NUL byte in a header value     | RAW   | - | - | @raw_nulhdr | 400/200:lib
Content-Length not a number      | RAW   | - | - | @raw_cl_abc | 400:lib
two different Content-Lengths    | RAW   | - | - | @raw_dup_cl | 400:lib
HTTP/1.1 without Host            | RAW   | - | - | @raw_nohost | 400:lib
an invalid escape in the path    | RAW   | - | - | @raw_badpct | 400:lib

# Query booleans as Go's kube-apiserver reads them: only "0" and "false"
# (in any case) are false, so ?watch, ?watch= and ?watch=yes are watches.
?watch                           | GET   | @iam/roletemplates?watch&timeoutSeconds=1 | - | - | 200:watch
?watch=                          | GET   | @iam/roletemplates?watch=&timeoutSeconds=1 | - | - | 200:watch
?watch=yes                       | GET   | @iam/roletemplates?watch=yes&timeoutSeconds=1 | - | - | 200:watch
?watch=no                        | GET   | @iam/roletemplates?watch=no&timeoutSeconds=1 | - | - | 200:watch
?watch=1                         | GET   | @iam/roletemplates?watch=1&timeoutSeconds=1 | - | - | 200:watch
?watch=0                         | GET   | @iam/roletemplates?watch=0&timeoutSeconds=1 | - | - | 200:list
?watch=False                     | GET   | @iam/roletemplates?watch=False&timeoutSeconds=1 | - | - | 200:list
a watch with timeoutSeconds=-5   | GET   | @iam/roletemplates?watch=true&timeoutSeconds=-5 | - | - | 200:watch-ends

# DELETE, last: a server that deletes when it should refuse takes the
# objects with it. DeleteOptions that do not decode are 400 (as kube 1.35),
# values not allowed 422, a failed precondition 409. Each single-object
# row has its own victim, so one wrong delete cannot mask the next.
delete, gracePeriodSeconds text  | DELETE| @scope/nodegroups/vic-1 | json | {"gracePeriodSeconds":"soon"} | 400
delete, malformed options        | DELETE| @scope/nodegroups/vic-2 | json | {"kind": | 400
delete, unknown propagationPolicy| DELETE| @scope/nodegroups/vic-3 | json | {"propagationPolicy":"Sometimes"} | 422 | propagationPolicy
delete, options as text/plain    | DELETE| @scope/nodegroups/vic-4 | text | {"propagationPolicy":"Background"} | 415
delete, dryRun=bogus             | DELETE| @scope/nodegroups/vic-5?dryRun=bogus | - | - | 422 | dryRun
delete, orphan and propagation   | DELETE| @scope/nodegroups/vic-6?orphanDependents=true&propagationPolicy=Orphan | - | - | 422 | cannot be both set
delete, another uid              | DELETE| @scope/nodegroups/vic-7 | json | {"preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}} | 409 | Precondition failed
delete, stale resourceVersion    | DELETE| @scope/nodegroups/vic-8 | json | {"preconditions":{"resourceVersion":"1"}} | 409 | Precondition failed
delete, options over 3 MiB       | DELETE| @scope/nodegroups/vic-9 | json | @big_delete | 413
delete of a missing object       | DELETE| @scope/nodegroups/ng-missing | - | - | 404
deletecollection, bad labels     | DELETE| @scope/nodegroups?labelSelector=grp%20in%20(x | - | - | 400
deletecollection, unknown field  | DELETE| @scope/nodegroups?fieldSelector=spec.cluster%3Dc-fix | - | - | 400
deletecollection, lone rvMatch   | DELETE| @scope/nodegroups?resourceVersionMatch=NotOlderThan | - | - | 422 | resourceVersionMatch
deletecollection, options typed wrong | DELETE| @scope/nodegroups | json | {"gracePeriodSeconds":"soon"} | 400
deletecollection, dryRun=bogus   | DELETE| @scope/nodegroups?dryRun=bogus | - | - | 422 | dryRun
TABLE
)

expand() {
  local s=$1 k
  for k in "${!PH[@]}"; do s=${s//"{{$k}}"/${PH[$k]}}; done
  printf '%s' "$s"
}
# running: the server process exists and has not exited (a zombie has).
running() { local st; st=$(cut -d' ' -f3 "/proc/$SERVER_PID/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]; }
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

: > "$WORK/results"
n=0
while IFS= read -r line; do
  case $(trim "$line") in ''|'#'*) continue;; esac
  IFS=$'\x1f' read -r name method path hdrs body expect msg <<< "${line//|/$'\x1f'}"
  name=$(trim "$name") method=$(trim "$method") path=$(trim "$path") hdrs=$(trim "$hdrs")
  body=$(trim "$body") expect=$(trim "$expect") msg=$(trim "${msg:-}")
  n=$((n + 1))
  H=()
  if [ "$hdrs" != - ]; then
    IFS='^' read -ra hl <<< "$(expand "$hdrs")"
    for h in "${hl[@]}"; do
      case $h in
        json) h='Content-Type: application/json';;
        yaml) h='Content-Type: application/yaml';;
        merge) h='Content-Type: application/merge-patch+json';;
        jpatch) h='Content-Type: application/json-patch+json';;
        smp) h='Content-Type: application/strategic-merge-patch+json';;
        apply) h='Content-Type: application/apply-patch+yaml';;
        text) h='Content-Type: text/plain';;
        xml) h='Content-Type: application/xml';;
        form) h='Content-Type: application/x-www-form-urlencoded';;
        @*) h="@$B/${h#@}";;
      esac
      H+=(-H "$h")
    done
  fi
  D=()
  case $body in
    -) ;;
    @*) D=(--data-binary "@$B/${body#@}");;
    *) expand "$body" > "$WORK/req"; D=(--data-binary "@$WORK/req");;
  esac
  mt=20
  case $expect in *watch*) mt=8;; esac
  # The request, then /healthz and the revision on the same connection
  # when the server kept it open.
  after=(--next -sk --max-time 10 -o /dev/null -w '%{http_code}\n' "$S/healthz"
         --next -sk --max-time 10 -H "$AUTH" -o "$C/$n.rev" -w '%{http_code}\n' "$REV_URL")
  if [ "$method" = RAW ]; then
    got="$(python3 "$WORK/raw.py" "$PORT" "$B/${body#@}" "$C/$n.body" 2>"$C/$n.err" || echo 000) 0"
    : > "$C/$n.hdr"
    res=$(curl "${after[@]:1}" || true)
  else
    res=$(curl -sk --max-time "$mt" -X "$method" -H "$AUTH" "${H[@]}" "${D[@]}" -D "$C/$n.hdr" \
      -o "$C/$n.body" -w '%{http_code} %{time_total}\n' "$(url_of "$(expand "$path")")" "${after[@]}" || true)
    got=$(sed -n 1p <<< "$res")
    res=$(sed -n '2,$p' <<< "$res")
  fi
  health=$(sed -n 1p <<< "$res")
  alive=1
  running || alive=0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$name" "$expect" "$msg" "$got" "${health:-000}" "$alive" >> "$WORK/results"
  [ "$alive" = 1 ] || break
done <<< "$CASES"

###########################################################################
# Judge the answers, then the data.
alive=1
running || alive=0
[ "$alive" = 1 ] && snap "$WORK/after"
rc=0
python3 - "$WORK" "${PH[LISTRV]}" "$alive" "${#FIXTURES[@]}" "${#LISTS[@]}" "${FIXTURES[@]}" "${LISTS[@]}" <<'PY' || rc=$?
import json, os, sys
work, base_rev, alive, nfix, nlist = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), int(sys.argv[5])
fixtures, lists = sys.argv[6:6 + nfix], sys.argv[6 + nfix:6 + nfix + nlist]
c = os.path.join(work, "c")
REASONS = {400: {"BadRequest"}, 401: {"Unauthorized"}, 403: {"Forbidden"}, 404: {"NotFound"},
           405: {"MethodNotAllowed"}, 406: {"NotAcceptable"}, 409: {"AlreadyExists", "Conflict"},
           410: {"Expired", "Gone"}, 413: {"RequestEntityTooLarge"}, 415: {"UnsupportedMediaType"},
           422: {"Invalid"}, 429: {"TooManyRequests"}}

def read(path):
    try:
        return open(path, "rb").read()
    except OSError:
        return b""

def status_problems(code, body, hdr, msg):
    ctype = [l.split(":", 1)[1].strip() for l in hdr.decode("latin-1").splitlines()
             if l.lower().startswith("content-type:")]
    if not ctype or not ctype[-1].startswith("application/json"):
        return ["Content-Type %r, not application/json" % (ctype[-1] if ctype else None)]
    try:
        o = json.loads(body)
    except ValueError as e:
        return ["the body is not JSON (%s)" % e]
    p = []
    if not isinstance(o, dict):
        return ["the body is not a Status object"]
    for k, want in (("kind", "Status"), ("apiVersion", "v1"), ("status", "Failure"), ("code", code)):
        if o.get(k) != want:
            p.append("%s %r, want %r" % (k, o.get(k), want))
    if code in REASONS and o.get("reason") not in REASONS[code]:
        p.append("reason %r, want %s" % (o.get("reason"), "/".join(sorted(REASONS[code]))))
    if not o.get("message"):
        p.append("no message")
    elif msg and msg not in o["message"]:
        p.append("message %r lacks %r" % (o["message"][:300], msg))
    return p

def stream_problems(body, kind, secs):
    p = []
    events = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError:
            return ["not a watch stream: %r" % line[:120]]
        if not isinstance(e, dict) or "type" not in e or "object" not in e:
            return ["not a watch stream: %r" % line[:120]]
        events.append(e)
    if kind == "watch":
        if not any(e["type"] == "ADDED" for e in events):
            p.append("no ADDED event for the fixtures")
        if secs >= 5:
            p.append("took %.1fs, timeoutSeconds=1 did not end it" % secs)
    elif secs >= 3:
        p.append("took %.1fs, did not end at once" % secs)
    return p

fails, total = [], 0
for line in open(os.path.join(work, "results"), encoding="utf-8", errors="replace"):
    n, name, expect, msg, got, health, up = line.rstrip("\n").split("\t")
    total += 1
    codes, _, check = expect.partition(":")
    want = [int(x) for x in codes.split("/")]
    code_s, _, secs = got.partition(" ")
    code = int(code_s) if code_s.isdigit() else 0
    secs = float(secs or 0)
    body, hdr = read(os.path.join(c, n + ".body")), read(os.path.join(c, n + ".hdr"))
    p = []
    if code not in want:
        p.append("HTTP %03d, want %s" % (code, codes))
    if check != "lib" and 400 <= code < 500 and all(400 <= w < 500 for w in want):
        p += status_problems(code, body, hdr, msg if code in want else "")
    if code in want and check in ("watch", "watch-ends"):
        p += stream_problems(body, check, secs)
    if code in want and check == "list":
        try:
            o = json.loads(body)
            if not (o["kind"].endswith("List") and isinstance(o["items"], list)):
                raise ValueError(o.get("kind"))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            p.append("not a list: %r" % body[:120])
    if health != "200":
        p.append("/healthz answered %s afterwards" % health)
    if up != "1":
        p.append("the server died")
    try:
        rev = json.load(open(os.path.join(c, n + ".rev")))["metadata"]["resourceVersion"]
        if rev != base_rev:
            p.append("it wrote: the store revision went from %s to %s" % (base_rev, rev))
            base_rev = rev
    except (OSError, ValueError, KeyError, TypeError):
        p.append("the store revision could not be read afterwards")
    if p:
        shown = body[:200].decode("utf-8", "replace").replace("\n", " ")
        fails.append("[%s] %s: %s\n      body: %s" % (n, name, "; ".join(p), shown))

data = []
if alive:
    def meta(raw):
        o = json.loads(raw)
        return o.get("metadata", {}), o.get("spec")
    for i, path in enumerate(fixtures):
        a, b = read(os.path.join(work, "before", "fix%d" % i)), read(os.path.join(work, "after", "fix%d" % i))
        if a == b:
            continue
        try:
            if json.loads(b).get("kind") == "Status":
                data.append("fixture %s is gone: %r" % (path, b[:150]))
                continue
            (ma, sa), (mb, sb) = meta(a), meta(b)
            what = [k for k in ("resourceVersion", "uid", "labels", "annotations") if ma.get(k) != mb.get(k)]
            what += ["spec"] if sa != sb else []
            data.append("fixture %s changed (%s)" % (path, ", ".join(what) or "bytes"))
        except (ValueError, AttributeError):
            data.append("fixture %s is unreadable: %r" % (path, b[:150]))
    for i, path in enumerate(lists):
        # Names only: a changed fixture is reported above.
        def items(raw):
            try:
                return {"/".join(filter(None, (m.get("namespace"), m["name"])))
                        for m in (x["metadata"] for x in json.loads(raw)["items"])}
            except (ValueError, KeyError, TypeError):
                return {"(unreadable: %r)" % raw[:100]}
        a, b = items(read(os.path.join(work, "before", "list%d" % i))), items(read(os.path.join(work, "after", "list%d" % i)))
        if a != b:
            data.append("list %s: new %s, gone %s" % (path, sorted(b - a), sorted(a - b)))
else:
    data.append("the server is not running: stored data not compared")

for f in fails:
    print("FAIL " + f, file=sys.stderr)
for d in data:
    print("FAIL data: " + d, file=sys.stderr)
print("bad requests: %d cases, %d failed%s" % (total, len(fails), "; stored data changed" if data else ""))
sys.exit(1 if fails or data else 0)
PY
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK/server.log"; then
  grep -E -A5 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$WORK/server.log" | head -40 >&2
  die "the server reported sanitizer errors"
fi
[ "$rc" = 0 ] || die "bad requests: see the failures above"
echo "bad requests ok"
