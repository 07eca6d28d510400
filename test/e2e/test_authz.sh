# The scope authorizer end to end: a fixture of templates, roles,
# workspaces, node groups and bindings made with kubectl; SubjectAccessReviews
# exactly as kube-apiserver sends them (v1 and v1beta1) to /authorize and
# /clusters/{name}/authorize; the webhook's own access check; changes
# reflected within a second; the server's own API decided by the same
# evaluator; AccessReview and PermissionReview through kubectl.
source "$(dirname "$0")/lib.sh"
start_server --cluster-name host
URL=https://127.0.0.1:$PORT

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: pods-view, labels: {tier: view}}
spec:
  scopes: [Workspace, Namespace]
  rules: [{verbs: [get, list, watch], apiGroups: [""], resources: [pods, pods/log]}]
  uiPermissions: [pods.view]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: nodes-admin, labels: {tier: infra}}
spec:
  rules: [{verbs: ["*"], apiGroups: [""], resources: [nodes]}]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: ws-viewer}
spec: {scope: Workspace, templateRefs: [pods-view]}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: infra}
spec: {scope: NodeGroup, templateSelector: {matchLabels: {tier: infra}}}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws1}
spec: {namespaces: [{name: shop}]}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: edge-a}
spec: {nodes: [n1, n2]}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: alice-ws1}
spec:
  roleRef: {name: ws-viewer}
  subjects: [{kind: User, name: alice}]
  scope: {level: Workspace, name: ws1}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: ops-edge-a}
spec:
  roleRef: {name: infra}
  subjects: [{kind: Group, name: ops}]
  scope: {level: NodeGroup, name: edge-a}
YAML

# sar PATH JSON: POSTs a review as kube-apiserver (system:masters here) and
# prints "allowed denied reason".
sar() {
  curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
    -X POST "$URL$1" -d "$2" > "$WORK/sar.json"
  /usr/bin/python3 -c "import json; s=json.load(open('$WORK/sar.json'))['status']; print(s['allowed'], s.get('denied', False), s.get('reason',''))"
}
v1() { # user groups-json resourceAttributes-json
  echo "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"resourceAttributes\":$3,\"user\":\"$1\",\"groups\":$2,\"uid\":\"x\"},\"status\":{\"allowed\":false}}"
}

out=$(sar /authorize "$(v1 alice '["system:authenticated"]' '{"namespace":"shop","verb":"get","version":"v1","resource":"pods","name":"web"}')")
[[ "$out" == "True False allowed by IAMRoleBinding alice-ws1 (IAMRole ws-viewer) at Workspace ws1" ]] || die "alice get pod: $out"
out=$(sar /authorize "$(v1 alice '["system:authenticated"]' '{"namespace":"shop","verb":"get","version":"v1","resource":"pods","subresource":"log","name":"web"}')")
[[ "$out" == True* ]] || die "alice pods/log: $out"
out=$(sar /authorize "$(v1 alice '["system:authenticated"]' '{"namespace":"shop","verb":"delete","version":"v1","resource":"pods","name":"web"}')")
[[ "$out" == "False False no IAMRoleBinding of alice allows delete pods web in namespace shop; looked at"* ]] || die "alice delete: $out"
# v1beta1 spells groups "group", and the answer comes back as v1beta1.
body='{"apiVersion":"authorization.k8s.io/v1beta1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"patch","resource":"nodes","name":"n2"},"user":"olga","group":["ops","system:authenticated"]}}'
out=$(sar /authorize "$body")
[[ "$out" == "True False allowed by IAMRoleBinding ops-edge-a (IAMRole infra) at NodeGroup edge-a" ]] || die "v1beta1 node: $out"
grep -q '"apiVersion":"authorization.k8s.io/v1beta1"' "$WORK/sar.json" || die "not answered in v1beta1"
# A node outside the group; a list narrowed by the node-group selector (1.31+).
out=$(sar /authorize "$(v1 olga '["ops"]' '{"verb":"patch","version":"v1","resource":"nodes","name":"n9"}')")
[[ "$out" == False* ]] || die "node outside group: $out"
out=$(sar /authorize "$(v1 olga '["ops"]' '{"verb":"list","version":"v1","resource":"nodes","labelSelector":{"requirements":[{"key":"scope.theriseunion.io/nodegroup","operator":"In","values":["edge-a"]}]}}')")
[[ "$out" == True* ]] || die "selector-narrowed list: $out"
out=$(sar /authorize "$(v1 olga '["ops"]' '{"verb":"list","version":"v1","resource":"nodes"}')")
[[ "$out" == False* ]] || die "unnarrowed list allowed: $out"
# Another member cluster: the host's bindings do not apply there.
out=$(sar /clusters/edge-7/authorize "$(v1 alice '["system:authenticated"]' '{"namespace":"shop","verb":"get","version":"v1","resource":"pods","name":"web"}')")
[[ "$out" == False* ]] || die "host binding applied to edge-7: $out"

# Malformed reviews: 400 with a Status.
code=$(curl -sk -o "$WORK/bad.json" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" -X POST "$URL/authorize" \
  -d '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"a"}}')
[ "$code" = 400 ] && grep -q '"kind":"Status"' "$WORK/bad.json" || die "malformed review: $code"
# A caller that may not create subjectaccessreviews: 403.
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer alice-token" -X POST "$URL/authorize" \
  -d "$(v1 alice '[]' '{"namespace":"shop","verb":"get","resource":"pods"}')")
[ "$code" = 403 ] || die "unprivileged webhook caller: $code"

# Deny rules anywhere in the chain win; the change is reflected within a second.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: no-logs}
spec: {denyRules: [{verbs: ["*"], apiGroups: [""], resources: [pods/log]}]}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: alice-no-logs}
spec:
  roleRef: {name: no-logs}
  subjects: [{kind: User, name: alice}]
  scope: {level: Platform}
YAML
sleep 1
out=$(sar /authorize "$(v1 alice '[]' '{"namespace":"shop","verb":"get","version":"v1","resource":"pods","subresource":"log","name":"web"}')")
[[ "$out" == "False True denied by IAMRoleBinding alice-no-logs (IAMRole no-logs) at Platform" ]] || die "deny: $out"
kubectl delete iamrb alice-ws1 >/dev/null
sleep 1
out=$(sar /authorize "$(v1 alice '[]' '{"namespace":"shop","verb":"get","version":"v1","resource":"pods","name":"web"}')")
[[ "$out" == False* ]] || die "deleted binding still allows: $out"

# The server's own API is decided by the same evaluator.
KUBECONFIG=$WORK/alice.kubeconfig expect_fail "alice lists clusters" kubectl get clusters.scope.theriseunion.io
grep -q 'forbidden' "$WORK/out" || die "403 message: $(cat "$WORK/out")"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: scope-reader}
spec: {rules: [{verbs: [get, list, watch], apiGroups: [scope.theriseunion.io], resources: ["*"]}]}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: alice-scope-reader}
spec:
  roleRef: {name: scope-reader}
  subjects: [{kind: User, name: alice}]
  scope: {level: Cluster}
YAML
sleep 1
KUBECONFIG=$WORK/alice.kubeconfig kubectl get workspaces -o name | grep -qx workspace.scope.theriseunion.io/ws1 \
  || die "alice cannot list workspaces after the binding"
KUBECONFIG=$WORK/alice.kubeconfig expect_fail "alice deletes a workspace" kubectl delete ws ws1

# AccessReview explains; PermissionReview lists what is in effect.
kubectl create -o json -f - > "$WORK/ar.json" <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: AccessReview
spec:
  user: olga
  groups: [ops]
  resourceAttributes: {verb: delete, resource: nodes, name: n1}
YAML
/usr/bin/python3 - "$WORK/ar.json" <<'PY' || die "AccessReview: $(cat "$WORK/ar.json")"
import json, sys
s = json.load(open(sys.argv[1]))["status"]
assert s["allowed"] is True, s
levels = [t["scope"]["level"] for t in s["trace"]]
assert levels == ["Node", "NodeGroup", "Cluster", "Platform"], levels
ng = s["trace"][1]["bindings"][0]
assert ng["binding"] == "ops-edge-a" and ng["result"] == "allowed", ng
PY
kubectl create -o json -f - > "$WORK/pr.json" <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: PermissionReview
spec: {user: olga, groups: [ops], scope: {level: Node, name: n1}}
YAML
/usr/bin/python3 - "$WORK/pr.json" <<'PY' || die "PermissionReview: $(cat "$WORK/pr.json")"
import json, sys
s = json.load(open(sys.argv[1]))["status"]
assert len(s["rules"]) == 1, s
r = s["rules"][0]
assert r["binding"] == "ops-edge-a" and r["scope"]["level"] == "NodeGroup", r
assert r["rule"]["resources"] == ["nodes"], r
PY
# Metrics count decisions.
curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/metrics" >"$WORK/metrics.txt"
grep -q 'edge_authorization_decisions_total{result="allowed"} [1-9]' "$WORK/metrics.txt" \
  || die "metrics: $(head -20 "$WORK/metrics.txt")"
# A healthy index has applied every change it followed.
grep -qx 'edge_authorization_index_errors_total 0' "$WORK/metrics.txt" \
  || die "index errors metric: $(grep index_errors "$WORK/metrics.txt")"
# and storage: every fixture object above was one committed write, and
# the revision counts them all.
/usr/bin/python3 - "$WORK/metrics.txt" <<'PY' || die "storage metrics: $(grep edge_storage "$WORK/metrics.txt")"
import sys
m = dict(l.split() for l in open(sys.argv[1]) if l.startswith("edge_storage_"))
commits, writes, rev = (int(m["edge_storage_" + k]) for k in ("commits_total", "writes_total", "revision"))
assert 1 <= commits <= writes, m
assert writes == rev, m   # nothing deleted, compacted or failed: one revision per write
assert int(m["edge_storage_map_bytes"]) > 0, m
PY
