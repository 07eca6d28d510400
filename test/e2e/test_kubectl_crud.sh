# kubectl (default, 1.27 and 1.33) against the real server: discovery,
# create/get/list/-o yaml/-o wide, apply twice, patch types, label,
# annotate, errors, delete with and without finalizers, delete --all,
# --chunk-size, dry-run.
source "$(dirname "$0")/lib.sh"
start_server

for v in "" 1.27 1.33; do
  out=$(k "$v" api-resources --api-group=iam.theriseunion.io)
  echo "$out" | grep -q "iamrolebindings .*iamrb .*iam.theriseunion.io/v1alpha1 .*false .*IAMRoleBinding" \
    || die "kubectl $v api-resources: $out"
  k "$v" api-versions | grep -qx "scope.theriseunion.io/v1alpha1" || die "kubectl $v api-versions"
done

cat > "$WORK/ws.yaml" <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata:
  name: ws1
  labels: {team: blue}
spec:
  displayName: Workspace One
  manager: alice
  clusters: [edge-1, edge-2]
  namespaces:
  - {cluster: edge-1, name: shop}
  - {cluster: edge-2, name: shop}
YAML
k "" create -f "$WORK/ws.yaml" | grep -q "workspace.scope.theriseunion.io/ws1 created" || die "create"
expect_fail "create twice" k "" create -f "$WORK/ws.yaml"
grep -q 'AlreadyExists\|already exists' "$WORK/out" || die "duplicate create message: $(cat "$WORK/out")"

out=$(k "" get ws)
echo "$out" | head -1 | grep -q "^NAME *MANAGER *CLUSTERS *NAMESPACES *AGE" || die "columns: $out"
echo "$out" | grep -q "^ws1 *alice *edge-1,edge-2 *2 " || die "row: $out"
for v in 1.27 1.33; do
  k "$v" get workspaces.scope.theriseunion.io ws1 -o wide | grep -q "^ws1 " || die "kubectl $v get"
done
uid=$(k "" get ws ws1 -o jsonpath='{.metadata.uid}')
[ ${#uid} -eq 36 ] || die "uid: $uid"
gen=$(k "" get ws ws1 -o jsonpath='{.metadata.generation}')
[ "$gen" = 1 ] || die "generation $gen"

# Client-side apply: first configures, second is unchanged.
k "" apply -f "$WORK/ws.yaml" 2>&1 | grep -q "configured\|unchanged" || die "apply 1"
k "" apply -f "$WORK/ws.yaml" | grep -q "unchanged" || die "apply twice is not unchanged"

# Patches of every type.
k "" patch ws ws1 --type=merge -p '{"spec":{"manager":"bob"}}' >/dev/null || die "merge patch"
[ "$(k "" get ws ws1 -o jsonpath='{.spec.manager}')" = bob ] || die "merge patch result"
[ "$(k "" get ws ws1 -o jsonpath='{.metadata.generation}')" = 2 ] || die "generation not raised"
k "" patch ws ws1 --type=json -p '[{"op":"replace","path":"/spec/displayName","value":"One"}]' >/dev/null || die "json patch"
[ "$(k "" get ws ws1 -o jsonpath='{.spec.displayName}')" = One ] || die "json patch result"
k "" patch ws ws1 --type=strategic -p '{"spec":{"namespaces":[{"cluster":"edge-3","name":"shop"}]}}' >/dev/null || die "strategic patch"
[ "$(k "" get ws ws1 -o jsonpath='{.spec.namespaces[*].cluster}')" = "edge-1 edge-2 edge-3" ] || die "strategic merge by key"
expect_fail "json patch test failure" k "" patch ws ws1 --type=json -p '[{"op":"test","path":"/spec/manager","value":"nobody"}]'

k "" label ws ws1 tier=gold >/dev/null || die label
k "" get ws -l tier=gold -o name | grep -qx "workspace.scope.theriseunion.io/ws1" || die "label selector"
[ -z "$(k "" get ws -l tier=silver -o name)" ] || die "selector matched wrongly"
k "" annotate ws ws1 note=hello >/dev/null || die annotate
[ "$(k "" get ws ws1 -o jsonpath='{.metadata.annotations.note}')" = hello ] || die annotation

# Errors a user sees.
expect_fail "bad name" k "" create -f - <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: Bad_Name}
YAML
grep -q "is invalid" "$WORK/out" || die "invalid name message: $(cat "$WORK/out")"
expect_fail "enum" k "" create -f - <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Cluster
metadata: {name: c1}
spec: {type: spaceship}
YAML
grep -q 'Unsupported value: "spaceship"' "$WORK/out" || die "enum message: $(cat "$WORK/out")"
expect_fail "unknown field, strict" k "" create -f - <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng1}
spec: {cluster: edge-1, nodez: [a]}
YAML
grep -q 'unknown field "spec.nodez"' "$WORK/out" || die "strict message: $(cat "$WORK/out")"
expect_fail "not found" k "" get ws nope
grep -q 'NotFound\|not found' "$WORK/out" || die "not found: $(cat "$WORK/out")"

# Dry run stores nothing.
k "" create --dry-run=server -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: dry}
spec: {cluster: edge-1}
YAML
expect_fail "dry-run stored" k "" get ng dry

# Chunked lists.
for i in $(seq 1 12); do
  printf 'apiVersion: scope.theriseunion.io/v1alpha1\nkind: NodeGroup\nmetadata: {name: ng-%02d}\nspec: {cluster: edge-1, nodes: [n%d]}\n---\n' "$i" "$i"
done > "$WORK/ngs.yaml"
k "" create -f "$WORK/ngs.yaml" >/dev/null || die "create many"
[ "$(k "" get ng --chunk-size=5 -o name | wc -l)" = 12 ] || die "chunked list"

# Finalizers hold a delete until removed.
k "" patch ws ws1 --type=merge -p '{"metadata":{"finalizers":["example.com/hold"]}}' >/dev/null || die "add finalizer"
k "" delete ws ws1 --wait=false >/dev/null || die "delete with finalizer"
[ -n "$(k "" get ws ws1 -o jsonpath='{.metadata.deletionTimestamp}')" ] || die "no deletionTimestamp"
k "" patch ws ws1 --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null || die "remove finalizer"
expect_fail "still there after finalizer removal" k "" get ws ws1

k "" delete ng --all >/dev/null || die "delete --all"
[ -z "$(k "" get ng -o name)" ] || die "delete --all left objects"
