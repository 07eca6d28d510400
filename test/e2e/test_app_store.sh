#!/usr/bin/env bash
# The application store through kubectl: an ApplicationVersion is a Draft
# whatever its body says; its phase moves only through /status, Draft ->
# Submitted -> Approved or Rejected (anything else is 422 naming
# status.phase), so who may submit or approve is plain authorization on
# applicationversions/status; its spec is frozen once submitted; its
# version is strict semver, unique within its application (and free
# again once the holder is deleted); an Application's LATEST follows the
# approvals by semver precedence, pre-releases left out.
EXTRA_TOKENS='bob-token,bob,bob-uid'
source "$(dirname "$0")/lib.sh"
start_server
URL=https://127.0.0.1:$PORT
hack/kubeconfig.sh "$URL" "$WORK/certs/ca.crt" bob-token > "$WORK/bob.kubeconfig"

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
phase() { kubectl get appver "$1" -o jsonpath='{.status.phase}'; }
# to PHASE NAME...: moves each version through /status as admin.
to() {
  local p=$1; shift
  for v in "$@"; do
    kubectl patch appver "$v" --subresource=status --type=merge \
      -p "{\"status\":{\"phase\":\"$p\"}}" >/dev/null || die "$v to $p"
  done
}
# expect_out "what" TEXT cmd...: the command fails, saying TEXT.
expect_out() {
  local what=$1 text=$2; shift 2
  expect_fail "$what" "$@"
  grep -qF -- "$text" "$WORK/out" || die "$what: $(cat "$WORK/out")"
}

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: Application
metadata: {name: web}
spec: {displayName: Web, type: helm}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-1.9.3}
spec: {application: web, version: 1.9.3, type: helm}
status: {phase: Approved}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-1.10.0}
spec: {application: web, version: 1.10.0, type: helm}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-2.0.0-rc.1}
spec: {application: web, version: 2.0.0-rc.1, type: helm}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-3.0.0}
spec: {application: web, version: 3.0.0, type: helm}
YAML

# Draft on create, whatever the body said; the main resource never moves
# the phase.
[ "$(phase web-1.9.3)" = Draft ] || die "created as $(phase web-1.9.3)"
kubectl patch appver web-1.9.3 --type=merge -p '{"status":{"phase":"Submitted"}}' >/dev/null
[ "$(phase web-1.9.3)" = Draft ] || die "the main resource moved the phase"
kubectl get appver web-1.9.3 --no-headers | grep -q 'web *1.9.3 *Draft' \
  || die "appver columns: $(kubectl get appver web-1.9.3)"

# Through /status: Draft -> Submitted; Draft -> Approved is refused (422).
to Submitted web-1.9.3
[ "$(phase web-1.9.3)" = Submitted ] || die "submit: $(phase web-1.9.3)"
expect_out "Draft to Approved" \
  'status.phase: Invalid value: "Approved": may not move from Draft to Approved' \
  kubectl patch appver web-3.0.0 --subresource=status --type=merge -p '{"status":{"phase":"Approved"}}'
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")
req PATCH "$URL/apis/app.theriseunion.io/v1alpha1/applicationversions/web-3.0.0/status" \
  -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Approved"}}'
status "Draft to Approved over HTTP" 422 Invalid \
  "o['details']['causes'][0]['field'] == 'status.phase' and 'may not move from Draft to Approved' in o['message']"
expect_out "withdrawing" 'may not move from Submitted to Draft' \
  kubectl patch appver web-1.9.3 --subresource=status --type=merge -p '{"status":{"phase":"Draft"}}'

# Submitted: the spec is frozen, metadata is not.
expect_out "spec after submit" 'spec: Forbidden: is immutable once submitted' \
  kubectl patch appver web-1.9.3 --type=merge -p '{"spec":{"type":"workload"}}'
kubectl label appver web-1.9.3 tier=stable >/dev/null || die "label a submitted version"

# Strict semver, unique per application.
expect_out "leading v" 'spec.version: Invalid value: "v4.0.0": must be a semantic version without a leading "v"' \
  kubectl create -f - <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-v4}
spec: {application: web, version: v4.0.0}
YAML
DUP='{"apiVersion":"app.theriseunion.io/v1alpha1","kind":"ApplicationVersion","metadata":{"name":"web-dup"},"spec":{"application":"web","version":"1.9.3"}}'
expect_out "duplicate" 'spec.version: Duplicate value: "1.9.3": already used by ApplicationVersion "web-1.9.3"' \
  kubectl create -f - <<<"$DUP"
req POST "$URL/apis/app.theriseunion.io/v1alpha1/applicationversions" -H 'Content-Type: application/json' -d "$DUP"
status "duplicate over HTTP" 422 Invalid \
  "o['details']['causes'][0] == {'reason': 'FieldValueDuplicate', 'field': 'spec.version', 'message': 'Duplicate value: \"1.9.3\": already used by ApplicationVersion \"web-1.9.3\"'}"
kubectl create -f - >/dev/null <<'YAML' || die "the same version of another application"
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: shop-1.9.3}
spec: {application: shop, version: 1.9.3}
YAML
kubectl get appver -o name | grep -c . | grep -qx 5 || die "appvers: $(kubectl get appver -o name)"

# Who may submit is authorization on applicationversions/status: alice is
# given update and patch there (and get: kubectl reads the subresource
# first), bob nothing.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: appver-submitter}
spec:
  rules:
  - {verbs: [get, list], apiGroups: [app.theriseunion.io], resources: [applicationversions]}
  - {verbs: [get, update, patch], apiGroups: [app.theriseunion.io], resources: [applicationversions/status]}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: alice-submitter}
spec:
  roleRef: {name: appver-submitter}
  subjects: [{kind: User, name: alice}]
  scope: {level: Cluster}
YAML
for i in $(seq 50); do
  KUBECONFIG=$WORK/alice.kubeconfig kubectl get appver web-1.10.0 >/dev/null 2>&1 && break
  sleep 0.1
done
KUBECONFIG=$WORK/alice.kubeconfig kubectl patch appver web-1.10.0 --subresource=status --type=merge \
  -p '{"status":{"phase":"Submitted"}}' >/dev/null || die "alice submits"
[ "$(phase web-1.10.0)" = Submitted ] || die "alice's submit: $(phase web-1.10.0)"
KUBECONFIG=$WORK/alice.kubeconfig kubectl get appver web-1.10.0 -o json \
  | KUBECONFIG=$WORK/alice.kubeconfig kubectl replace --subresource=status -f - >/dev/null \
  || die "alice updates the status"
KUBECONFIG=$WORK/alice.kubeconfig expect_out "alice edits the spec" 'forbidden' \
  kubectl patch appver web-1.10.0 --type=merge -p '{"spec":{"type":"workload"}}'
KUBECONFIG=$WORK/bob.kubeconfig expect_out "bob submits" 'forbidden' \
  kubectl patch appver web-2.0.0-rc.1 --subresource=status --type=merge -p '{"status":{"phase":"Submitted"}}'
AUTH=(-H "Authorization: Bearer bob-token")
req PATCH "$URL/apis/app.theriseunion.io/v1alpha1/applicationversions/web-2.0.0-rc.1/status" \
  -H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Submitted"}}'
status "bob's submit over HTTP" 403 Forbidden
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")
[ "$(phase web-2.0.0-rc.1)" = Draft ] || die "bob's submit went through"

# LATEST follows approvals: 1.10.0 above 1.9.3, the pre-release and the
# merely submitted 3.0.0 left out.
to Approved web-1.9.3 web-1.10.0
to Submitted web-2.0.0-rc.1 web-3.0.0
to Approved web-2.0.0-rc.1
wait_json app web "o.get('status',{}).get('latestVersion') == '1.10.0' and o['status']['versionCount'] == 4 \
  and o['status']['observedGeneration'] == o['metadata']['generation']"
kubectl get app web > "$WORK/table"
head -1 "$WORK/table" | grep -q LATEST || die "no LATEST column: $(cat "$WORK/table")"
kubectl get app web --no-headers | grep -qw '1.10.0' || die "LATEST: $(kubectl get app web)"
expect_out "Approved to Draft" 'may not move from Approved to Draft' \
  kubectl patch appver web-1.9.3 --subresource=status --type=merge -p '{"status":{"phase":"Draft"}}'
to Approved web-3.0.0
wait_json app web "o['status'].get('latestVersion') == '3.0.0'"
kubectl get app web --no-headers | grep -qw '3.0.0' || die "LATEST after approval: $(kubectl get app web)"

# Rejected is final.
kubectl create -f - >/dev/null <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-4.0.0}
spec: {application: web, version: 4.0.0}
YAML
to Submitted web-4.0.0
to Rejected web-4.0.0
expect_out "Rejected to Approved" 'may not move from Rejected to Approved' \
  kubectl patch appver web-4.0.0 --subresource=status --type=merge -p '{"status":{"phase":"Approved"}}'
wait_json app web "o['status'].get('latestVersion') == '3.0.0' and o['status']['versionCount'] == 5"

# Deleting the latest moves LATEST back and frees its version.
kubectl delete appver web-3.0.0 >/dev/null
wait_json app web "o['status'].get('latestVersion') == '1.10.0' and o['status']['versionCount'] == 4"
kubectl create -f - >/dev/null <<'YAML' || die "3.0.0 again after its delete"
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-3.0.0-again}
spec: {application: web, version: 3.0.0}
YAML
wait_json app web "o['status'].get('latestVersion') == '1.10.0' and o['status']['versionCount'] == 5"

[ "$FAILS" -eq 0 ] || die "$FAILS checks failed"
echo "PASS app store"
