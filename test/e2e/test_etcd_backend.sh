# The server on etcd (--storage-backend=etcd3): an etcd on loopback, the
# server on it under --etcd-prefix; kubectl creates, gets, lists, watches,
# updates (a stale resourceVersion conflicts) and deletes objects of
# several kinds; an IAMRoleBinding changes the answer of a
# SubjectAccessReview to /authorize; the objects are etcd keys under the
# prefix in kube-apiserver's layout; a restarted server on the same etcd
# sees them all, and serves a watch from a resourceVersion of before.
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_etcd

FLAGS=(--storage-backend etcd3 --etcd-servers "$EURL" --etcd-prefix /registry-e2e)
start_server "${FLAGS[@]}"
grep -q "storage etcd3" "$WORK/server.log" || die "not on etcd: $(cat "$WORK/server.log")"
kc() { timeout 60 kubectl "$@"; }

kc apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: pods-view}
spec:
  scopes: [Workspace, Namespace]
  rules: [{verbs: [get, list, watch], apiGroups: [""], resources: [pods]}]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: ws-viewer}
spec: {scope: Workspace, templateRefs: [pods-view]}
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
YAML

# get and list
[ "$(kc get workspace ws1 -o jsonpath='{.metadata.name}')" = ws1 ] || die "get workspace"
[ "$(kc get roletemplates -o name)" = "roletemplate.iam.theriseunion.io/pods-view" ] \
  || die "list roletemplates: $(kc get roletemplates -o name)"
kc get nodegroups edge-a >/dev/null || die "get nodegroup"
kc get iamroles ws-viewer >/dev/null || die "get iamrole"

# watch: a create shows up on kubectl's watch
kc get workspaces --watch-only -o name >"$WORK/watch.out" 2>&1 &
WPID=$!
PIDS+=($WPID)
sleep 1
kc create -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws2}
spec: {manager: bob}
YAML
for i in $(seq 50); do grep -q "workspace.scope.theriseunion.io/ws2" "$WORK/watch.out" && break; sleep 0.1; done
grep -q "workspace.scope.theriseunion.io/ws2" "$WORK/watch.out" || die "watch did not see ws2: $(cat "$WORK/watch.out")"
kill "$WPID" 2>/dev/null || true

# update, and a conflict on a stale resourceVersion
kc get workspace ws2 -o json >"$WORK/ws2.json"
kc label workspace ws2 team=red >/dev/null || die "label"
python3 - "$WORK/ws2.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); o["spec"]["manager"] = "carol"
json.dump(o, open(sys.argv[1], "w"))
PY
expect_fail "replace with a stale resourceVersion" kc replace -f "$WORK/ws2.json"
grep -q "the object has been modified" "$WORK/out" || die "no conflict: $(cat "$WORK/out")"
[ "$(kc get workspace ws2 -o jsonpath='{.metadata.labels.team}')" = red ] || die "label lost"

# authorization: alice may not, until an IAMRoleBinding says so
URL=https://127.0.0.1:$PORT
sar() {
  curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -X POST "$URL/authorize" \
    -d '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"namespace":"shop","verb":"get","version":"v1","resource":"pods","name":"web"},"user":"alice","groups":["system:authenticated"]}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["allowed"])' 2>/dev/null || echo none
}
[ "$(sar)" = False ] || die "alice allowed before any binding"
kc apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: alice-ws1}
spec:
  roleRef: {name: ws-viewer}
  subjects: [{kind: User, name: alice}]
  scope: {level: Workspace, name: ws1}
YAML
for i in $(seq 30); do [ "$(sar)" = True ] && break; sleep 0.1; done
[ "$(sar)" = True ] || die "the binding did not allow alice"

# delete
kc delete nodegroup edge-a >/dev/null || die "delete nodegroup"
expect_fail "get a deleted nodegroup" kc get nodegroup edge-a
grep -q NotFound "$WORK/out" || die "not NotFound: $(cat "$WORK/out")"

# The objects are etcd keys under the prefix, in kube-apiserver's layout.
keys=$(curl -s -X POST "$EURL/v3/kv/range" -d "{\"key\":\"$(printf /registry-e2e/ | base64)\",\"range_end\":\"$(printf /registry-e2e0 | base64)\",\"keys_only\":true}" |
  python3 -c 'import json,sys,base64; print(" ".join(base64.b64decode(k["key"]).decode() for k in json.load(sys.stdin).get("kvs", [])))')
for k in /registry-e2e/scope.theriseunion.io/workspaces/ws1 /registry-e2e/iam.theriseunion.io/iamrolebindings/alice-ws1; do
  [[ " $keys " == *" $k "* ]] || die "no etcd key $k in: $keys"
done
[[ " $keys " != *nodegroups/edge-a* ]] || die "the deleted nodegroup is still in etcd"
RV=$(curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')

# A restarted server on the same etcd sees everything, and a watch from
# a resourceVersion of the previous process replays what came after.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || die "server exited non-zero on SIGTERM"
start_server "${FLAGS[@]}"
URL=https://127.0.0.1:$PORT
[ "$(kc get workspaces -o name | sort | tr '\n' ' ')" = "workspace.scope.theriseunion.io/ws1 workspace.scope.theriseunion.io/ws2 " ] \
  || die "workspaces after restart: $(kc get workspaces -o name)"
kc get iamrolebinding alice-ws1 >/dev/null || die "binding after restart"
expect_fail "deleted nodegroup after restart" kc get nodegroup edge-a
for i in $(seq 50); do [ "$(sar)" = True ] && break; sleep 0.1; done
[ "$(sar)" = True ] || die "alice not allowed after restart"
curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" -X DELETE "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces/ws2" >/dev/null
timeout 5 curl -sNk -H "Authorization: Bearer $ADMIN_TOKEN" \
  "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces?watch=1&resourceVersion=$RV&timeoutSeconds=2" >"$WORK/w2.out" || true
grep -q '"type":"DELETED".*"name":"ws2"' "$WORK/w2.out" || die "watch from $RV after restart: $(cat "$WORK/w2.out")"
echo "ok"
