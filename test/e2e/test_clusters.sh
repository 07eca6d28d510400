# The Cluster controller against a real member: a second edge-apiserver
# (the same binary, its own port, data and token file) stands in for the
# member cluster's Kubernetes API: /version answers anyone, /apis needs a
# token. Checked: the finalizer is there from the create on; a direct
# Cluster with the member's CA and token becomes Ready (kubectl wait)
# with status.kubernetesVersion the member's gitVersion, also with the
# token in spec.connection.token; a wrong token is AgentAvailable False
# (Unauthorized), a closed port False (ProbeFailed), and neither is Ready;
# a member that accepts connections and never answers holds up no other
# cluster and no request; a proxy Cluster is AgentAvailable Unknown
# (AgentNotConnected); kubectl get shows READY; a reprobe of an unchanged
# cluster writes nothing while the reconciles and probe metrics go on;
# deleting a Cluster releases its claims (Workspace namespaces and
# clusters, NodeGroup nodes, also for this server's own cluster name,
# whose claims may leave the cluster empty) before the object goes; a
# user may remove the finalizer. Every check runs; failures are listed.
source "$(dirname "$0")/lib.sh"
set +o pipefail

kc() { timeout 60 kubectl "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
b64() { base64 -w0; }

# The reprobe period: short in the test build (EDGE_TEST_* hooks), the
# real 30 s otherwise.
if grep -q EDGE_TEST_CLUSTER_PROBE_PERIOD_MS "$BIN"; then PERIOD=1 WAIT=4 WANT=2; else PERIOD=30 WAIT=33 WANT=1; fi
export EDGE_TEST_CLUSTER_PROBE_PERIOD_MS=$((PERIOD * 1000))

###########################################################################
# The member: the same binary on its own port, data and tokens.
MPORT=$(free_port)
MTOKEN=member-token-$RANDOM$RANDOM
echo "$MTOKEN,member-admin,member-uid,\"system:masters\"" > "$WORK/member-tokens.csv"
"$BIN" --bind-address 127.0.0.1 --secure-port "$MPORT" --data-dir "$WORK/member-data" \
  --cert-dir "$WORK/member-certs" --token-auth-file "$WORK/member-tokens.csv" \
  --cluster-name member >"$WORK/member.log" 2>&1 &
PIDS+=($!)
wait_for_log "$WORK/member.log" "serving on" 20
MURL=https://127.0.0.1:$MPORT
MVER=$(curl -s --cacert "$WORK/member-certs/ca.crt" "$MURL/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')
[ -n "$MVER" ] || die "member /version has no gitVersion"
anon=$(curl -s --cacert "$WORK/member-certs/ca.crt" -o /dev/null -w '%{http_code}' "$MURL/apis")
authd=$(curl -s --cacert "$WORK/member-certs/ca.crt" -H "Authorization: Bearer $MTOKEN" -o /dev/null -w '%{http_code}' "$MURL/apis")
{ [ "$anon" = 401 ] || [ "$anon" = 403 ]; } && [ "$authd" = 200 ] \
  || die "member /apis: anonymous $anon (want 401 or 403), with the token $authd (want 200)"

# A port nothing listens on, and one that accepts and never answers.
CLOSED=$(free_port)
HANG=$(free_port)
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $HANG)); s.listen(64); time.sleep(600)" &
PIDS+=($!)

start_server

# kubeconfig_b64 TOKEN: a kubeconfig for the member with its CA, in base64.
kubeconfig_b64() {
  local user="    token: $1"
  [ -n "$1" ] || user="    {}"
  cat <<YAML | b64
apiVersion: v1
kind: Config
clusters:
- name: member
  cluster:
    server: $MURL
    certificate-authority-data: $(b64 < "$WORK/member-certs/ca.crt")
users:
- name: u
  user:
$user
contexts:
- name: c
  context: {cluster: member, user: u}
current-context: c
YAML
}
# cluster NAME CONNECTION-JSON: creates a Cluster.
cluster() {
  echo "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Cluster\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"type\":\"physical\",\"distribution\":\"k3s\",\"connection\":$2}}" \
    | kc create -f - >/dev/null 2>"$WORK/err" || fail "create cluster $1: $(cat "$WORK/err")"
}
# cond NAME TYPE: "status reason" of the condition.
cond() { kc get cluster "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status} {.status.conditions[?(@.type==\"$2\")].reason}"; }
# wait_cond NAME TYPE WANT [SECONDS]: waits for cond NAME TYPE to be WANT.
wait_cond() {
  local i=0 n=$((${4:-20} * 10))
  while [ "$(cond "$1" "$2")" != "$3" ] && [ $i -lt $n ]; do sleep 0.1; i=$((i + 1)); done
  [ "$(cond "$1" "$2")" = "$3" ] || fail "cluster $1: $2 is \"$(cond "$1" "$2")\", want \"$3\": $(kc get cluster "$1" -o jsonpath='{.status}')"
}
metric() { curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$PORT/metrics" | grep -F "$1" | awk '{print $2}' | head -1; }

###########################################################################
# The member that never answers goes first, so its probe holds a worker
# while the others are probed.
cluster hang "{\"type\":\"direct\",\"kubernetesAPIEndpoint\":\"https://127.0.0.1:$HANG\",\"token\":\"t\"}"
t0=$(date +%s.%N)
cluster x "{\"type\":\"direct\",\"kubernetesAPIEndpoint\":\"$MURL\",\"kubeconfig\":\"$(kubeconfig_b64 "$MTOKEN")\"}"
fins=$(kc get cluster x -o jsonpath='{.metadata.finalizers}')
[ "$fins" = '["finalizer.cluster.theriseunion.io"]' ] || fail "finalizer right after create: $fins"
kc wait --for=condition=Ready cluster/x --timeout=30s >/dev/null 2>"$WORK/err" || fail "kubectl wait Ready cluster/x: $(cat "$WORK/err") $(kc get cluster x -o jsonpath='{.status}')"
t1=$(date +%s.%N)
secs=$(python3 -c "print(round($t1 - $t0, 2))")
echo "cluster x Ready ${secs}s after its create (while the hanging member held a worker)"
python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 2.5 else 1)" || fail "cluster x took ${secs}s to be Ready: the hanging member held it up"
cluster tok "{\"type\":\"direct\",\"kubernetesAPIEndpoint\":\"$MURL\",\"kubeconfig\":\"$(kubeconfig_b64 "")\",\"token\":\"$MTOKEN\"}"
cluster badtok "{\"type\":\"direct\",\"kubernetesAPIEndpoint\":\"$MURL\",\"kubeconfig\":\"$(kubeconfig_b64 wrong-token)\"}"
cluster closed "{\"type\":\"direct\",\"kubernetesAPIEndpoint\":\"https://127.0.0.1:$CLOSED\",\"token\":\"t\"}"
cluster px '{"type":"proxy"}'
cluster badcfg '{"type":"direct","kubeconfig":"bm90IGEga3ViZWNvbmZpZw=="}'

[ "$(kc get cluster x -o jsonpath='{.status.kubernetesVersion}')" = "$MVER" ] \
  || fail "kubernetesVersion: $(kc get cluster x -o jsonpath='{.status.kubernetesVersion}'), want $MVER"
[ "$(cond x Initialized)" = "True Observed" ] || fail "x Initialized: $(cond x Initialized)"
[ "$(cond x AgentAvailable)" = "True APIAvailable" ] || fail "x AgentAvailable: $(cond x AgentAvailable)"
kc wait --for=condition=Ready cluster/tok --timeout=30s >/dev/null 2>"$WORK/err" || fail "kubectl wait Ready cluster/tok (spec.connection.token): $(cat "$WORK/err") $(kc get cluster tok -o jsonpath='{.status}')"

wait_cond badtok AgentAvailable "False Unauthorized"
wait_cond badtok Ready "False AgentUnavailable"
wait_cond closed AgentAvailable "False ProbeFailed"
wait_cond closed Ready "False AgentUnavailable"
wait_cond px AgentAvailable "Unknown AgentNotConnected"
wait_cond px Ready "Unknown AgentNotConnected"
wait_cond badcfg AgentAvailable "False InvalidConnection"
msg=$(kc get cluster badcfg -o jsonpath='{.status.conditions[?(@.type=="AgentAvailable")].message}')
case "$msg" in *kubeconfig*) ;; *) fail "badcfg message: $msg";; esac
wait_cond hang AgentAvailable "False ProbeFailed" 15
msg=$(kc get cluster hang -o jsonpath='{.status.conditions[?(@.type=="AgentAvailable")].message}')
case "$msg" in *"imeout"*|*"timed out"*) ;; *) fail "hang message: $msg";; esac

kc get clusters -o jsonpath='{range .items[*]}{.metadata.name}: {.status.conditions[?(@.type=="AgentAvailable")].reason}: {.status.conditions[?(@.type=="AgentAvailable")].message}{"\n"}{end}'

# The server answers promptly while the hanging member is probed again.
for i in 1 2 3; do
  s=$(date +%s.%N)
  kc get clusters >/dev/null || fail "kubectl get clusters"
  e=$(date +%s.%N)
  python3 -c "import sys; sys.exit(0 if $e - $s < 2 else 1)" || fail "kubectl get clusters took $(python3 -c "print($e - $s)")s"
  sleep 0.5
done

# kubectl get shows READY.
kc get clusters > "$WORK/get" 2>&1
head -1 "$WORK/get" | grep -q READY || fail "kubectl get clusters: no READY column: $(cat "$WORK/get")"
grep -Eq "^x +physical +k3s +$MVER +True " "$WORK/get" || fail "kubectl get clusters: x: $(cat "$WORK/get")"
grep -Eq "^badtok .* False " "$WORK/get" || fail "kubectl get clusters: badtok: $(cat "$WORK/get")"
grep -Eq "^px .* Unknown " "$WORK/get" || fail "kubectl get clusters: px: $(cat "$WORK/get")"

###########################################################################
# A reprobe of an unchanged cluster writes nothing; the probes go on.
sleep 1
rv0=$(kc get cluster x -o jsonpath='{.metadata.resourceVersion}')
w0=$(metric 'edge_controller_status_writes_total{controller="cluster"}')
r0=$(metric 'edge_controller_reconciles_total{controller="cluster",result="success"}')
p0=$(metric 'edge_cluster_probes_total{cluster="x",result="success"}')
sleep $WAIT
rv1=$(kc get cluster x -o jsonpath='{.metadata.resourceVersion}')
r1=$(metric 'edge_controller_reconciles_total{controller="cluster",result="success"}')
p1=$(metric 'edge_cluster_probes_total{cluster="x",result="success"}')
d=$(metric 'edge_cluster_probe_duration_seconds{cluster="x"}')
echo "reprobe: resourceVersion $rv0 -> $rv1, reconciles $r0 -> $r1, probes of x $p0 -> $p1, last probe ${d}s, status writes $w0"
[ "$rv0" = "$rv1" ] || fail "a reprobe of an unchanged cluster wrote it: resourceVersion $rv0 -> $rv1"
[ -n "$p1" ] && [ "${p1:-0}" -ge $((${p0:-0} + WANT)) ] || fail "probes of x: $p0 -> $p1 in ${WAIT}s"
[ "${r1:-0}" -gt "${r0:-0}" ] || fail "reconciles: $r0 -> $r1"
[ -n "$d" ] || fail "no edge_cluster_probe_duration_seconds for x"
[ -n "$(metric 'edge_cluster_probe_duration_seconds{cluster="closed"}')" ] || fail "no probe duration for closed"

###########################################################################
# Deletion releases the cluster's claims, then the object goes.
cat <<YAML | kc apply -f - >/dev/null 2>"$WORK/err" || fail "claims: $(cat "$WORK/err")"
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws-x}
spec:
  clusters: [x, other]
  namespaces:
  - {cluster: x, name: shop}
  - {cluster: other, name: keep}
  - {name: local}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng-x}
spec: {cluster: x, nodes: [n1, n2]}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng-other}
spec: {cluster: other, nodes: [n9]}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng-local}
spec: {nodes: [h1]}
YAML
s=$(date +%s.%N)
kc delete cluster x --wait --timeout=10s >/dev/null 2>"$WORK/err" || fail "kubectl delete cluster x: $(cat "$WORK/err")"
e=$(date +%s.%N)
echo "kubectl delete cluster x: $(python3 -c "print(round($e - $s, 2))")s"
kc get cluster x >/dev/null 2>&1 && fail "cluster x is still there after its delete"
[ "$(kc get ws ws-x -o jsonpath='{.spec.namespaces}')" = '[{"cluster":"other","name":"keep"},{"name":"local"}]' ] \
  || fail "ws-x namespaces after deleting x: $(kc get ws ws-x -o jsonpath='{.spec.namespaces}')"
[ "$(kc get ws ws-x -o jsonpath='{.spec.clusters}')" = '["other"]' ] \
  || fail "ws-x clusters after deleting x: $(kc get ws ws-x -o jsonpath='{.spec.clusters}')"
[ "$(kc get ng ng-x -o jsonpath='{.spec.nodes}')" = '[]' ] || fail "ng-x nodes: $(kc get ng ng-x -o jsonpath='{.spec.nodes}')"
[ "$(kc get ng ng-x -o jsonpath='{.metadata.annotations.scope\.theriseunion\.io/released-nodes}')" = "n1,n2" ] \
  || fail "ng-x released-nodes: $(kc get ng ng-x -o jsonpath='{.metadata.annotations}')"
[ "$(kc get ng ng-other -o jsonpath='{.spec.nodes}')" = '["n9"]' ] || fail "ng-other nodes: $(kc get ng ng-other -o jsonpath='{.spec.nodes}')"
[ "$(kc get ng ng-local -o jsonpath='{.spec.nodes}')" = '["h1"]' ] || fail "ng-local nodes: $(kc get ng ng-local -o jsonpath='{.spec.nodes}')"

# A new cluster of the same name inherits nothing.
cluster x '{"type":"proxy"}'
[ "$(kc get ng ng-x -o jsonpath='{.spec.nodes}')" = '[]' ] || fail "ng-x nodes came back"

# This server's own cluster (--cluster-name, default host): claims with
# no cluster are its claims.
cluster host '{"type":"proxy"}'
kc delete cluster host --wait --timeout=10s >/dev/null 2>"$WORK/err" || fail "kubectl delete cluster host: $(cat "$WORK/err")"
[ "$(kc get ws ws-x -o jsonpath='{.spec.namespaces}')" = '[{"cluster":"other","name":"keep"}]' ] \
  || fail "ws-x namespaces after deleting host: $(kc get ws ws-x -o jsonpath='{.spec.namespaces}')"
[ "$(kc get ng ng-local -o jsonpath='{.spec.nodes}')" = '[]' ] || fail "ng-local nodes: $(kc get ng ng-local -o jsonpath='{.spec.nodes}')"

# A user may remove the finalizer: the cluster then goes without cleanup.
cluster y '{"type":"proxy"}'
kc patch cluster y --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>"$WORK/err" || fail "remove finalizer: $(cat "$WORK/err")"
[ -z "$(kc get cluster y -o jsonpath='{.metadata.finalizers}')" ] || fail "the finalizer came back: $(kc get cluster y -o jsonpath='{.metadata.finalizers}')"
kc delete cluster y --wait --timeout=10s >/dev/null 2>"$WORK/err" || fail "kubectl delete cluster y: $(cat "$WORK/err")"

# The unreachable clusters go too, whatever their probes are doing.
kc delete cluster hang closed badtok --wait --timeout=15s >/dev/null 2>"$WORK/err" || fail "kubectl delete the unreachable clusters: $(cat "$WORK/err")"

kill -0 "$SERVER_PID" || fail "the server exited: $(tail -20 "$WORK/server.log")"
[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "clusters ok"
