# Authentication against the real server with real certificates: front-proxy
# headers are trusted only with a client certificate from the
# requestheader CA whose CN is allowed; x509 users; tokens; 401 for bad
# credentials; anonymous reaches only health; extras reach the user info.
source "$(dirname "$0")/lib.sh"

pki=$WORK/pki
mkdir -p "$pki"
# ca NAME: a self-signed CA; cert CA NAME CN [O...]: a clientAuth cert.
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.crt" 2>/dev/null
}
cert() {
  local ca=$1 name=$2 cn=$3; shift 3
  local subj="/CN=$cn"
  for o in "$@"; do subj="/O=$o$subj"; done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > "$pki/ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" \
    -CAcreateserial -days 1 -extfile "$pki/ext" -out "$pki/$name.crt" 2>/dev/null
}
ca front-proxy-ca
ca client-ca
ca foreign-ca
cert front-proxy-ca proxy front-proxy-client
cert front-proxy-ca proxy-other some-other-proxy
cert foreign-ca foreign front-proxy-client
cert client-ca bob bob team-a team-b

start_server --client-ca-file "$pki/client-ca.crt" \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client

URL=https://127.0.0.1:$PORT
SSR=$URL/apis/authentication.k8s.io/v1/selfsubjectreviews
# whoami [curl args...]: prints the status code and body of a SelfSubjectReview.
whoami() {
  curl -sk -o "$WORK/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' "$@" "$SSR"
}
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$WORK/body')); print($1)"; }
HDRS=(-H 'X-Remote-User: carol' -H 'X-Remote-Group: g1' -H 'X-Remote-Group: g2'
      -H 'X-Remote-Extra-Acme.com%2Fproject: p1' -H 'X-Remote-Extra-Scopes: s1' -H 'X-Remote-Extra-Scopes: s2')

# 1. The allowed front proxy: the headers are the user.
code=$(whoami --cert "$pki/proxy.crt" --key "$pki/proxy.key" "${HDRS[@]}")
[ "$code" = 201 ] || die "front proxy: $code $(cat "$WORK/body")"
[ "$(field "d['status']['userInfo']['username']")" = carol ] || die "front proxy user"
[ "$(field "sorted(d['status']['userInfo']['groups'])")" = "['g1', 'g2', 'system:authenticated']" ] \
  || die "front proxy groups: $(cat "$WORK/body")"
[ "$(field "d['status']['userInfo']['extra']")" = "{'acme.com/project': ['p1'], 'scopes': ['s1', 's2']}" ] \
  || die "front proxy extra: $(cat "$WORK/body")"

# 2. Headers without a certificate: ignored, anonymous (and anonymous may not).
code=$(whoami "${HDRS[@]}")
[ "$code" = 403 ] || die "headers without cert: $code $(cat "$WORK/body")"
grep -q 'system:anonymous' "$WORK/body" || die "headers without cert were trusted: $(cat "$WORK/body")"

# 3. A foreign CA's certificate with the allowed CN: a bad credential.
code=$(whoami --cert "$pki/foreign.crt" --key "$pki/foreign.key" "${HDRS[@]}")
[ "$code" = 401 ] || die "foreign CA: $code $(cat "$WORK/body")"

# 4. The front-proxy CA but a CN not in the allowed names.
code=$(whoami --cert "$pki/proxy-other.crt" --key "$pki/proxy-other.key" "${HDRS[@]}")
[ "$code" = 401 ] || die "CN not allowed: $code $(cat "$WORK/body")"

# 5. An x509 user: CN and O.
code=$(whoami --cert "$pki/bob.crt" --key "$pki/bob.key" -H 'X-Remote-User: mallory')
[ "$code" = 201 ] || die "x509 user: $code"
[ "$(field "d['status']['userInfo']['username']")" = bob ] || die "x509 user name (headers must not count)"
[ "$(field "sorted(d['status']['userInfo']['groups'])")" = "['system:authenticated', 'team-a', 'team-b']" ] \
  || die "x509 groups: $(cat "$WORK/body")"

# 6. Tokens: good and bad.
code=$(whoami -H "Authorization: Bearer $ADMIN_TOKEN")
[ "$code" = 201 ] && [ "$(field "d['status']['userInfo']['username']")" = admin ] || die "token user"
code=$(whoami -H "Authorization: Bearer wrong-token")
[ "$code" = 401 ] || die "bad token: $code"
grep -q '"reason":"Unauthorized"' "$WORK/body" || die "401 Status: $(cat "$WORK/body")"

# 7. Anonymous: health and version only.
for p in /healthz /livez /readyz /version; do
  [ "$(curl -sk -o /dev/null -w '%{http_code}' "$URL$p")" = 200 ] || die "anonymous $p"
done
[ "$(curl -sk -o /dev/null -w '%{http_code}' "$URL/apis")" = 403 ] || die "anonymous discovery allowed"
[ "$(curl -sk -o /dev/null -w '%{http_code}' "$URL/apis/iam.theriseunion.io/v1alpha1/iamroles")" = 403 ] \
  || die "anonymous list allowed"

# 8. The aggregator's availability check through the front proxy.
for g in iam scope app ext; do
  code=$(curl -sk -o /dev/null -w '%{http_code}' --cert "$pki/proxy.crt" --key "$pki/proxy.key" \
    -H 'X-Remote-User: system:kube-aggregator' -H 'X-Remote-Group: system:masters' \
    "$URL/apis/$g.theriseunion.io/v1alpha1")
  [ "$code" = 200 ] || die "availability check for $g: $code"
done
# ...and a masters group claimed without the proxy's certificate is not honoured.
code=$(curl -sk -o /dev/null -w '%{http_code}' -H 'X-Remote-User: x' -H 'X-Remote-Group: system:masters' \
  -X POST -H 'Content-Type: application/json' -d '{"metadata":{"name":"w"}}' \
  "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces")
[ "$code" = 403 ] || die "spoofed system:masters: $code"

# 9. kubectl with a client certificate.
cat > "$WORK/bob.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: e, cluster: {server: "$URL", certificate-authority: "$WORK/certs/ca.crt"}}]
users: [{name: bob, user: {client-certificate: "$pki/bob.crt", client-key: "$pki/bob.key"}}]
contexts: [{name: e, context: {cluster: e, user: bob}}]
current-context: e
YAML
kubectl --kubeconfig "$WORK/bob.kubeconfig" auth whoami | grep -q "Username *bob" || die "kubectl x509 whoami"
