# kubectl's write paths beyond create: client-side apply (created,
# unchanged, configured, a field removed from the file), kubectl diff,
# server-side apply (upsert, a no-op re-apply, field removal, conflicts with
# another manager and --force-conflicts, taking over from client-side
# apply), managedFields, kubectl edit with a scripted EDITOR, the status
# subresource (kubectl patch --subresource=status, status ignored on the
# main resource, spec ignored on /status) and metadata.generation.
# Every check runs; the failures are listed at the end.
source "$(dirname "$0")/lib.sh"
# A pipeline's status is its last command's: "cmd | grep -q" must not
# fail because grep stopped reading early.
set +o pipefail
# Exact resourceVersions and managedFields are asserted below: the
# controllers' own status writes are kept out (test_controllers.sh has them).
start_server --controllers=*,-nodegroup,-workspace,-iamrole,-application,-applicationdeployment

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
kc() { timeout 60 kubectl "$@"; }
jp() { kc get "$1" "${@:3}" -o jsonpath="$2" 2>&1; }
API=https://127.0.0.1:$PORT/apis
curl_admin() { curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$@"; }
# managers OBJ [get args]: "manager/operation/subresource" per managedFields entry.
managers() {
  kc get "$@" --show-managed-fields \
    -o jsonpath='{range .metadata.managedFields[*]}{.manager}/{.operation}/{.subresource}{"\n"}{end}' 2>&1
}
# owned OBJ MANAGER [get args]: the fieldsV1 of that manager's entries.
owned() {
  local obj=$1 m=$2; shift 2
  kc get "$obj" "$@" --show-managed-fields -o json | python3 -c '
import json, sys
m = sys.argv[1]
for e in json.load(sys.stdin)["metadata"].get("managedFields", []):
    if e["manager"] == m:
        print(json.dumps(e.get("fieldsV1", {}), sort_keys=True))' "$m"
}

###########################################################################
# Client-side apply, cluster-scoped (Component) and namespaced
# (ApplicationDeployment): first created, then unchanged, then configured.
cat > "$WORK/comp.yaml" <<'YAML'
apiVersion: ext.theriseunion.io/v1alpha1
kind: Component
metadata: {name: metrics}
spec:
  chart: metrics-server
  version: 3.12.1
  repository: https://charts.example.com
  values: {replicas: 1}
  dependsOn: [base]
YAML
cat > "$WORK/deploy.yaml" <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: web, namespace: shop}
spec:
  application: web
  version: latest
  topologies:
  - {nodeGroup: ng1, replicas: 2}
YAML
for f in comp deploy; do
  out=$(kc apply -f "$WORK/$f.yaml" 2>&1); echo "$out" | grep -q " created$" || fail "apply $f (1st): $out"
  out=$(kc apply -f "$WORK/$f.yaml" 2>&1); echo "$out" | grep -q " unchanged$" || fail "apply $f (2nd) is not unchanged: $out"
done
[ "$(jp comp/metrics '{.metadata.generation}')" = 1 ] || fail "generation after unchanged apply: $(jp comp/metrics '{.metadata.generation}')"
jp comp/metrics '{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}' | grep -q '"chart":"metrics-server"' \
  || fail "no last-applied-configuration annotation: $(jp comp/metrics '{.metadata.annotations}')"
managers comp/metrics | grep -qx "kubectl-client-side-apply/Update/" || fail "client-side apply manager: $(managers comp/metrics)"

# kubectl diff: nothing to show (exit 0) while the file matches.
kc diff -f "$WORK/deploy.yaml" > "$WORK/diff" 2>&1 || fail "kubectl diff of an unchanged object: $(cat "$WORK/diff")"

# A changed value: diff shows it (exit 1), apply configures it; a field
# removed from the file is removed from the object.
sed -i 's/replicas: 2/replicas: 3/' "$WORK/deploy.yaml"
set +e; kc diff -f "$WORK/deploy.yaml" > "$WORK/diff" 2>&1; rc=$?; set -e
[ "$rc" = 1 ] && grep -q '^+ *replicas: 3' "$WORK/diff" && grep -q '^- *replicas: 2' "$WORK/diff" \
  || fail "kubectl diff (rc $rc): $(cat "$WORK/diff")"
[ "$(jp appdeploy/web '{.spec.topologies[0].replicas}' -n shop)" = 2 ] || fail "kubectl diff changed the object"
out=$(kc apply -f "$WORK/deploy.yaml" 2>&1); echo "$out" | grep -q " configured$" || fail "apply deploy (changed): $out"
[ "$(jp appdeploy/web '{.spec.topologies[0].replicas}' -n shop)" = 3 ] || fail "apply did not change replicas"
[ "$(jp appdeploy/web '{.metadata.generation}' -n shop)" = 2 ] || fail "generation after a spec change by apply: $(jp appdeploy/web '{.metadata.generation}' -n shop)"
sed -i '/dependsOn/d' "$WORK/comp.yaml"
out=$(kc apply -f "$WORK/comp.yaml" 2>&1); echo "$out" | grep -q " configured$" || fail "apply comp (field removed): $out"
[ -z "$(jp comp/metrics '{.spec.dependsOn}')" ] || fail "field removed from the file stayed: dependsOn=$(jp comp/metrics '{.spec.dependsOn}')"
out=$(kc apply -f "$WORK/comp.yaml" 2>&1); echo "$out" | grep -q " unchanged$" || fail "apply comp again: $out"

###########################################################################
# Server-side apply: creates (201), a re-apply changes nothing, the applier
# is recorded as manager "kubectl" with operation Apply.
cat > "$WORK/ng.yaml" <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata:
  name: ssa
  labels: {tier: edge}
spec:
  displayName: Server side
  cluster: edge-1
  nodes: [n1, n2]
YAML
out=$(kc apply --server-side -f "$WORK/ng.yaml" 2>&1); echo "$out" | grep -q "nodegroup.scope.theriseunion.io/ssa serverside-applied" || fail "apply --server-side: $out"
[ "$(jp ng/ssa '{.spec.cluster} {.spec.displayName} {.spec.nodes[*]} {.metadata.labels.tier}')" = "edge-1 Server side n1 n2 edge" ] \
  || fail "server-side applied object: $(jp ng/ssa '{.spec} {.metadata.labels}')"
rv=$(jp ng/ssa '{.metadata.resourceVersion}')
kc apply --server-side -f "$WORK/ng.yaml" >/dev/null 2>&1 || fail "re-apply --server-side failed"
[ "$(jp ng/ssa '{.metadata.resourceVersion}')" = "$rv" ] || fail "a no-op server-side apply wrote the object (rv $rv -> $(jp ng/ssa '{.metadata.resourceVersion}'))"
[ "$(jp ng/ssa '{.metadata.generation}')" = 1 ] || fail "generation after a no-op apply: $(jp ng/ssa '{.metadata.generation}')"
[ "$(managers ng/ssa)" = "kubectl/Apply/" ] || fail "managedFields after server-side apply: $(managers ng/ssa)"
owned ng/ssa kubectl | grep -q '"f:displayName"' || fail "kubectl does not own spec.displayName: $(owned ng/ssa kubectl)"
owned ng/ssa kubectl | grep -q '"f:tier"' || fail "kubectl does not own metadata.labels.tier: $(owned ng/ssa kubectl)"
# managedFields are hidden from -o yaml unless asked for.
kc get ng ssa -o yaml | grep -q managedFields && fail "-o yaml shows managedFields without --show-managed-fields"
kc get ng ssa -o yaml --show-managed-fields | grep -q "manager: kubectl" || fail "--show-managed-fields shows no manager"

# Removing a field from the file removes it from the object.
sed -i '/displayName/d; /labels/d' "$WORK/ng.yaml"
kc apply --server-side -f "$WORK/ng.yaml" >/dev/null 2>&1 || fail "apply --server-side without displayName"
[ -z "$(jp ng/ssa '{.spec.displayName}')" ] || fail "displayName removed from the file stayed: $(jp ng/ssa '{.spec}')"
[ -z "$(jp ng/ssa '{.metadata.labels.tier}')" ] || fail "label removed from the file stayed: $(jp ng/ssa '{.metadata.labels}')"
owned ng/ssa kubectl | grep -q '"f:displayName"' && fail "kubectl still owns the removed displayName: $(owned ng/ssa kubectl)"
[ "$(jp ng/ssa '{.metadata.generation}')" = 2 ] || fail "generation after removing a spec field: $(jp ng/ssa '{.metadata.generation}')"

# Another manager changes a field kubectl applied: the next apply conflicts.
kc patch ng ssa --type=merge -p '{"spec":{"cluster":"edge-2"}}' --field-manager=ops >/dev/null || fail "patch by another manager"
managers ng/ssa | grep -qx "ops/Update/" || fail "patch manager not recorded: $(managers ng/ssa)"
owned ng/ssa ops | grep -q '"f:cluster"' || fail "ops does not own spec.cluster: $(owned ng/ssa ops)"
if kc apply --server-side -f "$WORK/ng.yaml" > "$WORK/out" 2>&1; then
  fail "apply over another manager's field succeeded: $(cat "$WORK/out")"
else
  grep -qi "conflict" "$WORK/out" && grep -q '"ops"' "$WORK/out" && grep -q '\.spec\.cluster' "$WORK/out" \
    || fail "conflict message: $(cat "$WORK/out")"
fi
[ "$(jp ng/ssa '{.spec.cluster}')" = edge-2 ] || fail "a conflicting apply changed the object"
# The raw conflict: 409 Conflict, a FieldManagerConflict cause per field.
curl_admin -X PATCH -H 'Content-Type: application/apply-patch+yaml' -o "$WORK/body" -w '%{http_code}' \
  --data-binary @"$WORK/ng.yaml" "$API/scope.theriseunion.io/v1alpha1/nodegroups/ssa?fieldManager=kubectl" > "$WORK/code"
python3 - "$WORK/body" "$(cat "$WORK/code")" <<'PY' || fail "raw apply conflict: $(cat "$WORK/code") $(cat "$WORK/body")"
import json, sys
s = json.load(open(sys.argv[1]))
assert sys.argv[2] == "409", sys.argv[2]
assert s["kind"] == "Status" and s["reason"] == "Conflict" and s["code"] == 409, s
causes = s["details"]["causes"]
assert any(c["reason"] == "FieldManagerConflict" and c["field"] == ".spec.cluster" for c in causes), causes
PY
# --force-conflicts takes the field over.
kc apply --server-side --force-conflicts -f "$WORK/ng.yaml" > "$WORK/out" 2>&1 || fail "apply --force-conflicts: $(cat "$WORK/out")"
[ "$(jp ng/ssa '{.spec.cluster}')" = edge-1 ] || fail "--force-conflicts did not set the value: $(jp ng/ssa '{.spec.cluster}')"
owned ng/ssa kubectl | grep -q '"f:cluster"' || fail "kubectl does not own spec.cluster after forcing: $(owned ng/ssa kubectl)"
owned ng/ssa ops | grep -q '"f:cluster"' && fail "ops still owns spec.cluster after forcing: $(owned ng/ssa ops)"

# Apply without a field manager is refused (422), as kube-apiserver does.
code=$(curl_admin -X PATCH -H 'Content-Type: application/apply-patch+yaml' -o "$WORK/body" -w '%{http_code}' \
  --data-binary @"$WORK/ng.yaml" "$API/scope.theriseunion.io/v1alpha1/nodegroups/ssa")
[ "$code" = 422 ] && grep -q '"reason":"Invalid"' "$WORK/body" && grep -q fieldManager "$WORK/body" \
  || fail "apply without fieldManager: $code $(cat "$WORK/body")"

# Server-side apply of a namespaced kind, then a namespaced re-apply.
cat > "$WORK/deploy2.yaml" <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: api, namespace: bank}
spec:
  application: api
  version: 1.2.0
  topologies:
  - {nodeGroup: ng1, replicas: 1}
YAML
kc apply --server-side -f "$WORK/deploy2.yaml" > "$WORK/out" 2>&1 || fail "apply --server-side namespaced: $(cat "$WORK/out")"
[ "$(jp appdeploy/api '{.metadata.namespace} {.spec.version}' -n bank)" = "bank 1.2.0" ] || fail "namespaced server-side apply result"
rv=$(jp appdeploy/api '{.metadata.resourceVersion}' -n bank)
kc apply --server-side -f "$WORK/deploy2.yaml" >/dev/null 2>&1 || fail "re-apply --server-side namespaced"
[ "$(jp appdeploy/api '{.metadata.resourceVersion}' -n bank)" = "$rv" ] || fail "a no-op namespaced server-side apply wrote the object"

# An object managed by client-side apply moves to server-side apply
# without conflicts over the fields of its last-applied configuration.
sed -i 's/replicas: 3/replicas: 4/' "$WORK/deploy.yaml"
kc apply --server-side -f "$WORK/deploy.yaml" > "$WORK/out" 2>&1 \
  || fail "apply --server-side after client-side apply: $(cat "$WORK/out")"
[ "$(jp appdeploy/web '{.spec.topologies[0].replicas}' -n shop)" = 4 ] || fail "switch to server-side apply did not apply replicas=4"

###########################################################################
# kubectl edit with an editor that rewrites a field.
cat > "$WORK/editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^  cluster: edge-1$/  cluster: edge-9/' "$1"
SH
chmod +x "$WORK/editor.sh"
gen=$(jp ng/ssa '{.metadata.generation}')
out=$(EDITOR="$WORK/editor.sh" kc edit ng ssa 2>&1) || fail "kubectl edit: $out"
echo "$out" | grep -q "nodegroup.scope.theriseunion.io/ssa edited" || fail "kubectl edit output: $out"
[ "$(jp ng/ssa '{.spec.cluster}')" = edge-9 ] || fail "kubectl edit did not change spec.cluster: $(jp ng/ssa '{.spec}')"
[ "$(jp ng/ssa '{.metadata.generation}')" = $((gen + 1)) ] || fail "generation after edit: $(jp ng/ssa '{.metadata.generation}'), was $gen"
managers ng/ssa | grep -qx "kubectl-edit/Update/" || fail "kubectl-edit manager: $(managers ng/ssa)"
# An editor that changes nothing: nothing is written.
rv=$(jp ng/ssa '{.metadata.resourceVersion}')
out=$(EDITOR=true kc edit ng ssa 2>&1) || fail "kubectl edit without change: $out"
echo "$out" | grep -q "Edit cancelled, no changes made" || fail "kubectl edit without change: $out"
[ "$(jp ng/ssa '{.metadata.resourceVersion}')" = "$rv" ] || fail "an edit without change wrote the object"
# An edit the server rejects is reported, and the object stays as it was.
cat > "$WORK/bad-editor.sh" <<'SH'
#!/bin/sh
sed -i 's/^  cluster: edge-9$/  cluster: 42/' "$1"
SH
chmod +x "$WORK/bad-editor.sh"
if EDITOR="$WORK/bad-editor.sh" kc edit ng ssa > "$WORK/out" 2>&1; then
  fail "an invalid edit (cluster: 42) was accepted: $(cat "$WORK/out")"
fi
[ "$(jp ng/ssa '{.spec.cluster}')" = edge-9 ] || fail "an invalid edit changed the object"

###########################################################################
# The status subresource, with kubectl 1.27 and the default kubectl.
gen=$(jp ng/ssa '{.metadata.generation}')
for v in 1.27 ""; do
  st="{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"V${v//./}\",\"message\":\"ok\",\"lastTransitionTime\":\"2024-01-01T00:00:00Z\"}]}}"
  out=$(k "$v" patch ng ssa --subresource=status --type=merge -p "$st" 2>&1) || fail "kubectl $v patch --subresource=status: $out"
  [ "$(jp ng/ssa '{.status.conditions[0].reason}')" = "V${v//./}" ] || fail "kubectl $v status patch not applied: $(jp ng/ssa '{.status}')"
done
[ "$(jp ng/ssa '{.metadata.generation}')" = "$gen" ] || fail "a status change raised generation: $gen -> $(jp ng/ssa '{.metadata.generation}')"
managers ng/ssa | grep -qx "kubectl-patch/Update/status" || fail "the status patch is not recorded with subresource status: $(managers ng/ssa)"
# Status through the main resource is ignored.
rv=$(jp ng/ssa '{.metadata.resourceVersion}')
kc patch ng ssa --type=merge -p '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Main","message":"x","lastTransitionTime":"2024-01-01T00:00:00Z"}]}}' >/dev/null 2>&1 || true
[ "$(jp ng/ssa '{.status.conditions[0].reason}')" = V ] || fail "a status patch through the main resource changed status: $(jp ng/ssa '{.status}')"
[ "$(jp ng/ssa '{.metadata.resourceVersion}')" = "$rv" ] || fail "an ignored status patch wrote the object"
# A replace of the whole object keeps the stored status too.
kc get ng ssa -o json | python3 -c 'import json,sys; o=json.load(sys.stdin); o["status"]={"conditions":[]}; o["spec"]["nodes"].append("n9"); print(json.dumps(o))' > "$WORK/replace.json"
kc replace -f "$WORK/replace.json" >/dev/null 2>&1 || fail "kubectl replace"
[ "$(jp ng/ssa '{.status.conditions[0].reason}')" = V ] || fail "replace of the main resource changed status: $(jp ng/ssa '{.status}')"
[ "$(jp ng/ssa '{.spec.nodes[*]}')" = "n1 n2 n9" ] || fail "replace did not change spec: $(jp ng/ssa '{.spec}')"
[ "$(jp ng/ssa '{.metadata.generation}')" = $((gen + 1)) ] || fail "generation after replace: $(jp ng/ssa '{.metadata.generation}'), want $((gen + 1))"
# Spec through /status is ignored.
kc patch ng ssa --subresource=status --type=merge -p '{"spec":{"cluster":"via-status"}}' >/dev/null 2>&1 || true
[ "$(jp ng/ssa '{.spec.cluster}')" = edge-9 ] || fail "a spec patch through /status changed spec: $(jp ng/ssa '{.spec}')"
[ "$(jp ng/ssa '{.metadata.generation}')" = $((gen + 1)) ] || fail "a spec patch through /status raised generation"
# get --subresource=status shows the object with its status.
[ "$(kc get ng ssa --subresource=status -o jsonpath='{.status.conditions[0].type}' 2>&1)" = Ready ] \
  || fail "kubectl get --subresource=status: $(kc get ng ssa --subresource=status -o yaml 2>&1)"

###########################################################################
# generation rises by one per spec change, never for metadata or status.
gen=$(jp ng/ssa '{.metadata.generation}')
kc label ng ssa color=red >/dev/null || fail label
kc annotate ng ssa note=hi >/dev/null || fail annotate
kc patch ng ssa --type=merge -p '{"metadata":{"finalizers":["example.com/keep"]}}' >/dev/null || fail "finalizer patch"
kc patch ng ssa --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null || fail "finalizer removal"
[ "$(jp ng/ssa '{.metadata.generation}')" = "$gen" ] || fail "metadata changes raised generation: $gen -> $(jp ng/ssa '{.metadata.generation}')"
kc patch ng ssa --type=merge -p '{"spec":{"nodes":["n1"]}}' >/dev/null || fail "spec patch"
[ "$(jp ng/ssa '{.metadata.generation}')" = $((gen + 1)) ] || fail "a spec change: generation $(jp ng/ssa '{.metadata.generation}'), want $((gen + 1))"
kc patch ng ssa --type=merge -p '{"spec":{"nodes":["n1"]}}' >/dev/null || fail "same spec patch"
[ "$(jp ng/ssa '{.metadata.generation}')" = $((gen + 1)) ] || fail "a patch that changes nothing raised generation"

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "kubectl apply ok"
