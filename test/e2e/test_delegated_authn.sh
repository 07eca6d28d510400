# Delegated authentication and authorization through
# --authentication-kubeconfig and --authorization-kubeconfig: a local HTTPS
# server plays kube-apiserver (TokenReview, SubjectAccessReview, and the
# kube-system/extension-apiserver-authentication ConfigMap). Tokens it
# vouches for authenticate, answers are cached, and the ConfigMap's CAs and
# request-header settings are trusted; a namespace of this cluster that
# kube-apiserver says a user may update can be claimed by her Workspace.
source "$(dirname "$0")/lib.sh"

pki=$WORK/pki
mkdir -p "$pki"
mk_ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.crt" 2>/dev/null; }
mk_cert() { # CA NAME CN EKU [SAN]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
    -keyout "$pki/$2.key" -out "$pki/$2.csr" 2>/dev/null
  { echo "extendedKeyUsage=$4"; [ -n "${5:-}" ] && echo "subjectAltName=$5"; } > "$pki/$2.ext"
  openssl x509 -req -in "$pki/$2.csr" -CA "$pki/$1.crt" -CAkey "$pki/$1.key" -CAcreateserial \
    -days 1 -extfile "$pki/$2.ext" -out "$pki/$2.crt" 2>/dev/null
}
mk_ca kube-ca; mk_ca front-proxy-ca; mk_ca client-ca
mk_cert kube-ca kube-serving localhost serverAuth "DNS:localhost,IP:127.0.0.1"
mk_cert front-proxy-ca proxy front-proxy-client clientAuth
mk_cert client-ca dave dave clientAuth

KPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/fake_kube.py" <<'PY'
import json, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, pki = int(sys.argv[1]), sys.argv[2]
reviews = {"n": 0, "sar": 0, "last": None}
cm = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
      "data": {"client-ca-file": open(pki + "/client-ca.crt").read(),
               "requestheader-client-ca-file": open(pki + "/front-proxy-ca.crt").read(),
               "requestheader-allowed-names": '["front-proxy-client"]',
               "requestheader-username-headers": '["X-Remote-User"]',
               "requestheader-group-headers": '["X-Remote-Group"]',
               "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]'}}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer server-sa-token":
            return self.send(401, {"kind": "Status", "code": 401})
        if self.path == "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication":
            return self.send(200, cm)
        if self.path == "/reviews":
            return self.send(200, reviews)
        self.send(404, {"kind": "Status", "code": 404})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews" and \
                self.headers.get("Authorization") == "Bearer server-sa-token":
            reviews["sar"] += 1
            reviews["last"] = body
            spec, ra = body["spec"], body["spec"].get("resourceAttributes", {})
            ok = (spec["user"] == "carol" and "system:authenticated" in spec["groups"] and
                  ra == {"namespace": "team-z", "verb": "update", "group": "", "version": "v1",
                         "resource": "namespaces", "subresource": "", "name": "team-z"})
            return self.send(201, {"apiVersion": "authorization.k8s.io/v1",
                                   "kind": "SubjectAccessReview", "status": {"allowed": ok}})
        if self.path != "/apis/authentication.k8s.io/v1/tokenreviews" or self.headers.get("Authorization") != "Bearer server-sa-token":
            return self.send(403, {"kind": "Status", "code": 403})
        reviews["n"] += 1
        tok = body["spec"]["token"]
        status = {"authenticated": False}
        if tok == "robot-token":
            status = {"authenticated": True, "user": {"username": "system:serviceaccount:team:robot",
                      "uid": "u-1", "groups": ["system:serviceaccounts", "system:serviceaccounts:team"],
                      "extra": {"authentication.kubernetes.io/pod-name": ["p1"]}}}
        self.send(201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
srv = ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(pki + "/kube-serving.crt", pki + "/kube-serving.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("fake kube-apiserver ready", flush=True)
srv.serve_forever()
PY
/usr/bin/python3 "$WORK/fake_kube.py" "$KPORT" "$pki" > "$WORK/fake.log" 2>&1 &
PIDS+=($!)
wait_for_log "$WORK/fake.log" "ready"
cat > "$WORK/auth.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: kube
  cluster:
    server: https://127.0.0.1:$KPORT
    certificate-authority-data: $(base64 -w0 "$pki/kube-ca.crt")
users:
- name: sa
  user: {token: server-sa-token}
contexts:
- name: c
  context: {cluster: kube, user: sa}
current-context: c
YAML

EXTRA_TOKENS="carol-t,carol,carol-uid"
start_server --authentication-kubeconfig "$WORK/auth.kubeconfig" \
  --authorization-kubeconfig "$WORK/auth.kubeconfig"
URL=https://127.0.0.1:$PORT
whoami() {
  curl -sk -o "$WORK/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' "$@" \
    "$URL/apis/authentication.k8s.io/v1/selfsubjectreviews"
}
field() { /usr/bin/python3 -c "import json; d=json.load(open('$WORK/body')); print($1)"; }
reviews() { curl -s --cacert "$pki/kube-ca.crt" -H 'Authorization: Bearer server-sa-token' \
  "https://127.0.0.1:$KPORT/reviews" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["n"])'; }

# A token kube-apiserver vouches for.
[ "$(whoami -H 'Authorization: Bearer robot-token')" = 201 ] || die "delegated token: $(cat "$WORK/body")"
[ "$(field "d['status']['userInfo']['username']")" = system:serviceaccount:team:robot ] || die "delegated user"
[ "$(field "sorted(d['status']['userInfo']['groups'])")" = \
  "['system:authenticated', 'system:serviceaccounts', 'system:serviceaccounts:team']" ] || die "delegated groups"
[ "$(field "d['status']['userInfo']['extra']")" = "{'authentication.kubernetes.io/pod-name': ['p1']}" ] \
  || die "delegated extra: $(cat "$WORK/body")"
[ "$(reviews)" = 1 ] || die "expected one upstream review"
# Cached: no second upstream call.
whoami -H 'Authorization: Bearer robot-token' >/dev/null
whoami -H 'Authorization: Bearer robot-token' >/dev/null
[ "$(reviews)" = 1 ] || die "answer not cached: $(reviews) reviews"
# A token it rejects: 401, and the rejection is cached too.
[ "$(whoami -H 'Authorization: Bearer forged')" = 401 ] || die "rejected token not 401"
[ "$(whoami -H 'Authorization: Bearer forged')" = 401 ] || die "rejected token not 401 (2)"
[ "$(reviews)" = 2 ] || die "rejection not cached: $(reviews) reviews"
# The ConfigMap's front-proxy CA and settings.
code=$(whoami --cert "$pki/proxy.crt" --key "$pki/proxy.key" -H 'X-Remote-User: erin' -H 'X-Remote-Group: ops')
[ "$code" = 201 ] && [ "$(field "d['status']['userInfo']['username']")" = erin ] || die "configmap front proxy: $code $(cat "$WORK/body")"
# The ConfigMap's client CA.
code=$(whoami --cert "$pki/dave.crt" --key "$pki/dave.key")
[ "$code" = 201 ] && [ "$(field "d['status']['userInfo']['username']")" = dave ] || die "configmap client CA: $code"

# Delegated authorization: claiming a namespace of this cluster.
sars() { curl -s --cacert "$pki/kube-ca.crt" -H 'Authorization: Bearer server-sa-token' \
  "https://127.0.0.1:$KPORT/reviews" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sar"])'; }
post() { # TOKEN METHOD PATH BODY [CT]
  curl -sk -o "$WORK/body" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
    -H "Content-Type: ${5:-application/json}" --data-binary "$4" "$URL$3"; }
IAMP=/apis/iam.theriseunion.io/v1alpha1
[ "$(post "$ADMIN_TOKEN" POST $IAMP/iamroles '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRole","metadata":{"name":"ws-admin"},"spec":{"scope":"Workspace","rules":[{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}]}}')" = 201 ] || die "role: $(cat "$WORK/body")"
[ "$(post "$ADMIN_TOKEN" POST /apis/scope.theriseunion.io/v1alpha1/workspaces '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"ws-a"},"spec":{"namespaces":[{"name":"team-a"}]}}')" = 201 ] || die "workspace"
[ "$(post "$ADMIN_TOKEN" POST $IAMP/iamrolebindings '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRoleBinding","metadata":{"name":"carol-ws-a"},"spec":{"roleRef":{"name":"ws-admin"},"subjects":[{"kind":"User","name":"carol"}],"scope":{"level":"Workspace","name":"ws-a"}}}')" = 201 ] || die "binding"
sleep 0.3
WS=/apis/scope.theriseunion.io/v1alpha1/workspaces/ws-a
code=$(post carol-t PATCH $WS '{"spec":{"namespaces":[{"name":"team-a"},{"name":"team-z"}]}}' application/merge-patch+json)
[ "$code" = 200 ] || die "claim kube-apiserver allows: $code $(cat "$WORK/body")"
[ "$(sars)" = 1 ] || die "expected one upstream SubjectAccessReview, got $(sars)"
code=$(post carol-t PATCH $WS '{"spec":{"namespaces":[{"name":"team-a"},{"name":"team-z"},{"name":"kube-system"}]}}' application/merge-patch+json)
[ "$code" = 403 ] || die "claim kube-apiserver refuses: $code $(cat "$WORK/body")"
grep -q 'may not claim namespace' "$WORK/body" || die "claim refusal message: $(cat "$WORK/body")"
[ "$(sars)" = 2 ] || die "expected two upstream reviews, got $(sars)"
# Another cluster's namespace is not kube-apiserver's to vouch for.
code=$(post carol-t PATCH $WS '{"spec":{"namespaces":[{"name":"team-a"},{"name":"team-z"},{"cluster":"edge-1","name":"team-z"}]}}' application/merge-patch+json)
[ "$code" = 403 ] || die "claim in another cluster: $code $(cat "$WORK/body")"
[ "$(sars)" = 2 ] || die "another cluster's claim was asked upstream"

# In a pod, with neither kubeconfig flag: the in-cluster configuration
# (KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's token and CA; the
# test build reads them from EDGE_TEST_SA_DIR), as k8s.io/apiserver does.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
mkdir -p "$WORK/sa"
cp "$pki/kube-ca.crt" "$WORK/sa/ca.crt"
echo server-sa-token > "$WORK/sa/token"
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KPORT EDGE_TEST_SA_DIR=$WORK/sa \
  start_server
grep -q "reaching kube-apiserver for authentication and authorization with the in-cluster ServiceAccount" \
  "$WORK/server.log" || die "in-cluster: no log line: $(cat "$WORK/server.log")"
URL=https://127.0.0.1:$PORT
n0=$(reviews)
[ "$(whoami -H 'Authorization: Bearer robot-token')" = 201 ] || die "in-cluster delegated token: $(cat "$WORK/body")"
[ "$(field "d['status']['userInfo']['username']")" = system:serviceaccount:team:robot ] || die "in-cluster user"
[ "$(reviews)" = $((n0 + 1)) ] || die "in-cluster: expected one more upstream review"
code=$(whoami --cert "$pki/proxy.crt" --key "$pki/proxy.key" -H 'X-Remote-User: erin')
[ "$code" = 201 ] || die "in-cluster: the ConfigMap's front-proxy CA: $code $(cat "$WORK/body")"
# The token is read again on each request: a rotated-out one is refused
# upstream (the fake kube-apiserver knows only server-sa-token).
echo stale-token > "$WORK/sa/token"
[ "$(whoami -H 'Authorization: Bearer robot-token-2')" = 401 ] || die "in-cluster: unknown token with a stale SA token"
[ "$(reviews)" = $((n0 + 1)) ] || die "in-cluster: the rotated-out token was still sent"
echo server-sa-token > "$WORK/sa/token"
[ "$(whoami -H 'Authorization: Bearer robot-token-3')" = 401 ] || die "in-cluster: unknown token"
[ "$(reviews)" = $((n0 + 2)) ] || die "in-cluster: the rotated-in token was not used"
code=$(post carol-t PATCH $WS '{"spec":{"namespaces":[{"name":"team-a"},{"name":"team-z"},{"name":"kube-system"}]}}' application/merge-patch+json)
[ "$code" = 403 ] && grep -q 'may not claim namespace' "$WORK/body" || die "in-cluster claim refusal: $code $(cat "$WORK/body")"
# A token whose digest cannot be made is never cached: two such tokens
# would share one cache key and the second be served the first's user.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
EDGE_TEST_DIGEST_FAILS=1 start_server --authentication-kubeconfig "$WORK/auth.kubeconfig"
URL=https://127.0.0.1:$PORT
n0=$(reviews)
[ "$(whoami -H 'Authorization: Bearer robot-token')" = 201 ] || die "no digest: the robot token: $(cat "$WORK/body")"
[ "$(whoami -H 'Authorization: Bearer forged-2')" = 401 ] || die "no digest: a forged token was served the robot's user: $(cat "$WORK/body")"
[ "$(whoami -H 'Authorization: Bearer robot-token')" = 201 ] || die "no digest: the robot token again"
[ "$(reviews)" = $((n0 + 3)) ] || die "no digest: answers were cached ($(reviews) reviews, want $((n0 + 3)))"
# Outside a pod and without the flags nothing is delegated.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server
URL=https://127.0.0.1:$PORT
grep -q "in-cluster" "$WORK/server.log" && die "outside a pod the in-cluster configuration was used"
[ "$(whoami -H 'Authorization: Bearer robot-token')" = 401 ] || die "outside a pod a token was delegated"
echo "delegated authn and authz: ok"
