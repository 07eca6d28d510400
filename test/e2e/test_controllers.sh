#!/usr/bin/env bash
# Controllers as a user sees them through kubectl: an IAMRole's status
# shows exactly what the authorizer grants for it (PermissionReview), its
# conditions name missing and excluded templates, a template change
# reaches every role that selects it, two Workspaces claiming one
# namespace both say so, --controllers turns them off, writes are audited
# under the controller's user, /metrics has client-go's workqueue names,
# and a restart writes nothing for what did not change.
source "$(dirname "$0")/lib.sh"
start_server --audit-log-path "$WORK/audit.log"
URL=https://127.0.0.1:$PORT

# wait_json KIND NAME PYTHON-EXPR [SECONDS]: polls `kubectl get -o json`
# until the expression over o holds.
wait_json() {
  local kind=$1 name=$2 expr=$3 t=${4:-15} i=0
  while :; do
    kubectl get "$kind" "$name" -o json >"$WORK/obj.json" 2>/dev/null || true
    if /usr/bin/python3 - "$WORK/obj.json" "$expr" <<'PY' 2>/dev/null; then return 0; fi
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
    i=$((i + 1)); [ $i -le $((t * 10)) ] || die "$kind/$name: timed out waiting for $expr: $(cat "$WORK/obj.json")"
    sleep 0.1
  done
}
cond() { echo "[c for c in o.get('status',{}).get('conditions',[]) if c['type']=='$1'][0]"; }

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: pods-view, labels: {tier: view}}
spec:
  rules: [{verbs: [get, list], apiGroups: [""], resources: [pods]}]
  uiPermissions: [pods.view]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: logs-view, labels: {tier: view}}
spec:
  rules: [{verbs: [get], apiGroups: [""], resources: [pods/log]}]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: platform-admin, labels: {tier: view}}
spec:
  scopes: [Platform]
  rules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"]}]
  denyRules: [{verbs: [delete], apiGroups: [""], resources: [namespaces]}]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: viewer}
spec:
  scope: Cluster
  templateRefs: [pods-view, not-yet]
  templateSelector: {matchLabels: {tier: view}}
  rules: [{verbs: [get, list], apiGroups: [""], resources: [pods]}]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: vera-viewer}
spec:
  roleRef: {name: viewer}
  subjects: [{kind: User, name: vera}]
  scope: {level: Cluster}
YAML

# Aggregated in a stable order, each rule once: own, then named, then
# selected by name; the Platform-only template gives its deny rules only.
wait_json iamrole viewer "o.get('status',{}).get('observedGeneration') == 1 and len(o['status']['aggregatedRules']) == 2"
/usr/bin/python3 - "$WORK/obj.json" <<'PY' || die "viewer status: $(cat "$WORK/obj.json")"
import json, sys
s = json.load(open(sys.argv[1]))["status"]
assert [r["resources"] for r in s["aggregatedRules"]] == [["pods"], ["pods/log"]], s
assert s["aggregatedDenyRules"] == [{"verbs": ["delete"], "apiGroups": [""], "resources": ["namespaces"]}], s
assert s["aggregatedUIPermissions"] == ["pods.view"], s
c = {c["type"]: c for c in s["conditions"]}
assert c["TemplatesResolved"]["status"] == "False" and c["TemplatesResolved"]["reason"] == "TemplatesNotFound", c
assert "not-yet" in c["TemplatesResolved"]["message"], c
assert c["ScopeCompatible"]["status"] == "False" and "platform-admin" in c["ScopeCompatible"]["message"], c
for k in ("lastTransitionTime", "observedGeneration", "reason", "message"):
    assert k in c["ScopeCompatible"], c
PY
# kubectl's table shows the aggregated count.
[ "$(kubectl get iamr viewer --no-headers | awk '{print $4}')" = 2 ] || die "RULES column: $(kubectl get iamr viewer)"

# The status is what the authorizer grants for a binding of the role.
check_review() {
  kubectl create -o json -f - > "$WORK/pr.json" <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: PermissionReview
spec: {user: vera, scope: {level: Cluster}}
YAML
  kubectl get iamrole viewer -o json > "$WORK/role.json"
  /usr/bin/python3 - "$WORK/pr.json" "$WORK/role.json" <<'PY' || die "PermissionReview vs status: $(cat "$WORK/pr.json") $(cat "$WORK/role.json")"
import json, sys
pr = json.load(open(sys.argv[1]))["status"]
st = json.load(open(sys.argv[2]))["status"]
granted = [r["rule"] for r in pr["rules"] if r.get("binding") == "vera-viewer"]
norm = lambda rs: [json.dumps(r, sort_keys=True) for r in rs]
assert norm(granted) == norm(st["aggregatedRules"]), (granted, st["aggregatedRules"])
PY
}
check_review

# The missing template created: resolved; a template change reaches the role.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: not-yet}
spec:
  rules: [{verbs: [watch], apiGroups: [""], resources: [pods]}]
YAML
wait_json iamrole viewer "$(cond TemplatesResolved)['status'] == 'True' and len(o['status']['aggregatedRules']) == 3"
kubectl label roletemplate logs-view tier=other --overwrite >/dev/null
wait_json iamrole viewer "len(o['status']['aggregatedRules']) == 2"
check_review
T0=$(wait_json iamrole viewer "True"; /usr/bin/python3 -c "import json; print(json.load(open('$WORK/obj.json'))['status']['conditions'][0]['lastTransitionTime'])")

# Two Workspaces claiming one namespace both say so, naming each other;
# the conflict clears on both when one lets go.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws-a}
spec: {namespaces: [{name: shop}, {name: bank}], clusters: [host]}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws-b}
spec: {namespaces: [{cluster: host, name: shop}]}
YAML
wait_json workspace ws-a "$(cond Conflict)['status'] == 'True' and 'ws-b' in $(cond Conflict)['message'] and o['status']['namespaceCount'] == 2"
wait_json workspace ws-b "$(cond Conflict)['status'] == 'True' and 'ws-a' in $(cond Conflict)['message']"
kubectl patch workspace ws-b --type=merge -p '{"spec":{"namespaces":[{"name":"other"}]}}' >/dev/null
wait_json workspace ws-a "$(cond Conflict)['status'] == 'False'"
wait_json workspace ws-b "$(cond Conflict)['status'] == 'False'"

# Audit: the status writes are the controller's.
grep -q '"username":"system:edge-controller:iamrole"' "$WORK/audit.log" \
  || die "no controller write in the audit log: $(tail -3 "$WORK/audit.log")"
/usr/bin/python3 - "$WORK/audit.log" <<'PY' || die "audit event of a controller write"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
ev = [e for e in evs if e.get("user", {}).get("username") == "system:edge-controller:iamrole"][0]
assert ev["verb"] == "update" and ev["objectRef"]["subresource"] == "status", ev
assert ev["objectRef"]["resource"] == "iamroles" and ev["responseStatus"]["code"] == 200, ev
assert "system:masters" in ev["user"]["groups"], ev
assert ev["requestURI"].startswith("/apis/iam.theriseunion.io/v1alpha1/iamroles/"), ev
PY
# ...and managedFields names the controller as the status's manager.
kubectl get iamrole viewer -o json --show-managed-fields > "$WORK/mf.json"
grep -q '"manager": "edge-controller-iamrole"' "$WORK/mf.json" || die "managedFields: $(cat "$WORK/mf.json")"

# /metrics: client-go's workqueue names, per controller.
curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/metrics" > "$WORK/metrics.txt"
for m in 'workqueue_depth{name="iamrole"}' 'workqueue_adds_total{name="iamrole"}' \
         'workqueue_retries_total{name="workspace"}' 'workqueue_work_duration_seconds_count{name="iamrole"}' \
         'edge_controller_reconciles_total{controller="iamrole",result="success"}' \
         'edge_controller_leader 1'; do
  grep -qF "$m" "$WORK/metrics.txt" || die "metrics lack $m"
done

# A restart: what did not change is not written again; what changed while
# the server was down is.
WRITES_BEFORE=$(grep -c '"system:edge-controller:' "$WORK/audit.log")
RV=$(kubectl get iamrole viewer -o jsonpath='{.metadata.resourceVersion}')
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server --audit-log-path "$WORK/audit2.log"
URL=https://127.0.0.1:$PORT
# Every role and workspace was reconciled (after the start-up list)...
wait_metric() {
  local pat=$1 i=0
  until curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/metrics" | grep -qE "$pat"; do
    i=$((i + 1)); [ $i -le 150 ] || die "metrics never showed $pat"; sleep 0.1
  done
}
wait_metric 'edge_controller_reconciles_total\{controller="iamrole",result="success"\} [1-9]'
wait_metric 'edge_controller_reconciles_total\{controller="workspace",result="success"\} ([2-9]|[1-9][0-9])'
wait_metric 'workqueue_depth\{name="iamrole"\} 0'
# ...and nothing was written.
[ "$(kubectl get iamrole viewer -o jsonpath='{.metadata.resourceVersion}')" = "$RV" ] \
  || die "an unchanged role was written again after a restart"
! grep -q '"system:edge-controller:' "$WORK/audit2.log" || die "writes after restart: $(grep edge-controller "$WORK/audit2.log" | head -3)"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
# Down: a template changes (with that controller off, as kube-controller-manager reads "*,-name", the status stays).
start_server --controllers=*,-iamrole
URL=https://127.0.0.1:$PORT
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: not-yet}
spec:
  rules: [{verbs: [watch, list], apiGroups: [""], resources: [services]}]
YAML
sleep 1
[ "$(kubectl get iamrole viewer -o jsonpath='{.metadata.resourceVersion}')" = "$RV" ] \
  || die "--controllers=*,-iamrole still wrote the role"
curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/metrics" > "$WORK/metrics.txt"
grep -q 'workqueue_depth{name="workspace"}' "$WORK/metrics.txt" || die "metrics: $(head -5 "$WORK/metrics.txt")"
grep -q 'workqueue_depth{name="iamrole"}' "$WORK/metrics.txt" && die "a disabled controller in /metrics"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server
URL=https://127.0.0.1:$PORT
wait_json iamrole viewer "any(r['resources'] == ['services'] for r in o['status']['aggregatedRules'])"
check_review
# The unchanged condition kept its transition time through all of it.
wait_json iamrole viewer "o['status']['conditions'][0]['lastTransitionTime'] == '$T0'"

# An unknown controller is refused at start, as kube-controller-manager does.
if "$BIN" --controllers=nosuch --data-dir "$WORK/d2" --secure-port 0 >"$WORK/bad.log" 2>&1; then
  die "--controllers=nosuch started"
fi
grep -q 'is not in the list of known controllers' "$WORK/bad.log" || die "unknown controller: $(cat "$WORK/bad.log")"
echo "controllers: ok"
