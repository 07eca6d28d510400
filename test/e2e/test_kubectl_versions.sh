# Every kubectl minor version from 1.27 to 1.33, plus the default kubectl,
# against the real server, one version after another, each with its own
# discovery cache: api-resources lists all 12 kinds with their short names;
# create of every kind (the two reviews answer with a status); get shows the
# printer columns each kind declares (NAME first, AGE last) with its values;
# get -o wide adds the bracketed columns; get -o yaml returns what was
# created; describe and explain work; delete removes every object.
# Every check runs for every version; the failures are listed at the end.
source "$(dirname "$0")/lib.sh"
# A pipeline's status is its last command's: "cmd | grep -q" must not
# fail because grep stopped reading early.
set +o pipefail
start_server

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# Table columns by the start of each header word, so empty cells stay
# empty: prints one "HEADER=value" line per column of the first row.
cat > "$WORK/cells.py" <<'PY'
import re, sys
lines = [l.rstrip("\n") for l in sys.stdin if l.strip()]
if len(lines) < 2:
    sys.exit("no rows: %r" % lines)
head, row = lines[0], lines[1]
starts = [m.start() for m in re.finditer(r"\S+", head)]
names = head.split()
for i, n in enumerate(names):
    end = starts[i + 1] if i + 1 < len(starts) else None
    print("%s=%s" % (n, row[starts[i]:end].strip()))
PY

# Compares the objects a server returned (a List, YAML) with the manifests
# created: every field of every manifest must come back unchanged, and the
# server must have set uid, resourceVersion, creationTimestamp, generation.
cat > "$WORK/roundtrip.py" <<'PY'
import sys, yaml
sent = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and "spec" in d and not d["kind"].endswith("Review")]
got = yaml.safe_load(open(sys.argv[2]))
items = got.get("items", [got]) if got.get("kind") == "List" else [got]
byname = {(i["kind"], i["metadata"]["name"]): i for i in items}
problems = []
def sub(want, have, path):
    if isinstance(want, dict):
        if not isinstance(have, dict):
            problems.append("%s: want %r, got %r" % (path, want, have)); return
        for k, v in want.items():
            sub(v, have.get(k), path + "." + k)
    elif want != have:
        problems.append("%s: want %r, got %r" % (path, want, have))
for d in sent:
    key = (d["kind"], d["metadata"]["name"])
    o = byname.get(key)
    if o is None:
        problems.append("%s/%s missing from the output" % key); continue
    if o.get("apiVersion") != d["apiVersion"]:
        problems.append("%s/%s apiVersion %r" % (key + (o.get("apiVersion"),)))
    sub(d["spec"], o.get("spec"), "%s/%s spec" % key)
    for f in ("labels", "annotations"):
        if f in d["metadata"]:
            sub(d["metadata"][f], o["metadata"].get(f), "%s/%s metadata.%s" % (key + (f,)))
    m = o["metadata"]
    for f in ("uid", "resourceVersion", "creationTimestamp"):
        if not m.get(f):
            problems.append("%s/%s has no metadata.%s" % (key + (f,)))
    if m.get("generation") != 1:
        problems.append("%s/%s generation %r" % (key + (m.get("generation"),)))
if problems:
    sys.exit("\n".join(problems))
PY

# manifests TAG: one object of each kind, names suffixed with TAG.
manifests() {
  local t=$1
  cat <<YAML
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata:
  name: rt-$t
  labels: {team: blue}
  annotations: {note: "a template"}
spec:
  displayName: Viewer
  description: read pods and deployments
  scopes: [Workspace, Namespace]
  rules:
  - {verbs: [get, list], apiGroups: [""], resources: [pods, pods/log]}
  - {verbs: [get], apiGroups: [apps], resources: [deployments], resourceNames: [web]}
  uiPermissions: [pods.view, deploy.view]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: role-$t}
spec:
  scope: Workspace
  templateRefs: [rt-$t]
  rules:
  - {verbs: [get], apiGroups: [""], resources: [configmaps]}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: rb-$t}
spec:
  roleRef: {name: role-$t}
  subjects:
  - {kind: User, name: alice}
  scope: {level: Workspace, name: ws-$t}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: Cluster
metadata: {name: edge-$t}
spec:
  type: physical
  distribution: k3s
  version: v1.30.2
  edgeRuntime: kubeedge
  connection: {type: direct, kubernetesAPIEndpoint: "https://10.0.0.1:6443", kubernetesAPIServerPort: 6443}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws-$t}
spec:
  displayName: Workspace One
  manager: alice
  clusters: [host]
  namespaces:
  - {cluster: host, name: shop-$t}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng-$t}
spec:
  displayName: Group One
  cluster: edge-1
  nodes: [n1, n2, n3]
---
apiVersion: app.theriseunion.io/v1alpha1
kind: Application
metadata: {name: web-$t}
spec:
  displayName: Web
  description: the web shop
  owner: alice
  workspace: ws-$t
  type: workload
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-$t-1.0.0}
spec:
  application: web-$t
  version: 1.0.0
  type: helm
  helm: {chart: web, repository: "https://charts.example.com", version: 1.0.0, values: {replicas: 2}}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: web-$t, namespace: shop-$t}
spec:
  application: web-$t
  version: 1.0.0
  topologies:
  - {nodeGroup: ng-$t, replicas: 2}
  - {nodeGroup: ng-other, replicas: 1, values: {tier: edge}}
---
apiVersion: ext.theriseunion.io/v1alpha1
kind: Component
metadata: {name: metrics-$t}
spec:
  chart: metrics-server
  version: 3.12.1
  repository: https://charts.example.com
  values: {replicas: 1, args: [--kubelet-insecure-tls], resources: {limits: {cpu: 100m}}, enabled: true}
  dependsOn: [base]
  cluster: edge-$t
YAML
}

reviews() {
  local t=$1
  cat <<YAML
apiVersion: iam.theriseunion.io/v1alpha1
kind: AccessReview
metadata: {name: ar-$t}
spec:
  user: alice
  resourceAttributes: {verb: get, resource: configmaps, namespace: shop-$t}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: PermissionReview
metadata: {name: pr-$t}
spec:
  user: alice
  scope: {level: Workspace, name: ws-$t}
YAML
}

# api-resources rows: NAME SHORTNAMES APIVERSION NAMESPACED KIND.
RESOURCES="roletemplates rt iam false RoleTemplate
iamroles iamr iam false IAMRole
iamrolebindings iamrb iam false IAMRoleBinding
accessreviews - iam false AccessReview
permissionreviews - iam false PermissionReview
clusters - scope false Cluster
workspaces ws scope false Workspace
nodegroups ng scope false NodeGroup
applications app app false Application
applicationversions appver app false ApplicationVersion
applicationdeployments appdeploy app true ApplicationDeployment
components comp ext false Component"

for v in "" 1.27 1.28 1.29 1.30 1.31 1.32 1.33; do
  ver=${v:-default}
  t=v${v//./}; [ -n "$v" ] || t=vdef
  bin=kubectl; [ -z "$v" ] || bin=/usr/lib/google-cloud-sdk/bin/kubectl.$v
  kv() { timeout 60 "$bin" --cache-dir "$WORK/cache-$ver" "$@"; }
  echo "--- kubectl $ver"

  # Discovery: each kind with its short names, group, scope and kind.
  if ! kv api-resources > "$WORK/res" 2>&1; then
    fail "kubectl $ver api-resources: $(cat "$WORK/res")"
  fi
  while read -r name short group ns kind; do
    if [ "$short" = - ]; then
      pat="^$name +$group\.theriseunion\.io/v1alpha1 +$ns +$kind\$"
    else
      pat="^$name +$short +$group\.theriseunion\.io/v1alpha1 +$ns +$kind\$"
    fi
    grep -Eq "$pat" "$WORK/res" || fail "kubectl $ver api-resources has no line /$pat/: $(grep theriseunion "$WORK/res")"
  done <<< "$RESOURCES"
  [ "$(grep -c 'theriseunion\.io/v1alpha1' "$WORK/res")" = 12 ] \
    || fail "kubectl $ver api-resources: not exactly 12 kinds: $(grep theriseunion "$WORK/res")"

  # Create every kind.
  manifests "$t" > "$WORK/$t.yaml"
  if kv create -f "$WORK/$t.yaml" > "$WORK/out" 2>&1; then
    for o in roletemplate.iam iamrole.iam iamrolebinding.iam cluster.scope workspace.scope \
             nodegroup.scope application.app applicationversion.app applicationdeployment.app component.ext; do
      grep -q "^$o\.theriseunion\.io/.* created$" "$WORK/out" || fail "kubectl $ver create: no '$o created': $(cat "$WORK/out")"
    done
  else
    fail "kubectl $ver create: $(cat "$WORK/out")"
  fi

  # The two reviews are answered at once, with a status, and not stored.
  reviews "$t" > "$WORK/$t-reviews.yaml"
  if kv create -f "$WORK/$t-reviews.yaml" -o json > "$WORK/out" 2>"$WORK/err"; then
    python3 - "$WORK/out" "$t" <<'PY' || fail "kubectl $ver create reviews: $(cat "$WORK/out")"
import json, sys
t = sys.argv[2]
text = open(sys.argv[1]).read()
dec, objs, i = json.JSONDecoder(), [], 0
while i < len(text):
    if text[i].isspace():
        i += 1; continue
    o, i = dec.raw_decode(text, i); objs.append(o)
if len(objs) == 1 and objs[0].get("kind") == "List":
    objs = objs[0]["items"]
by = {o["kind"]: o for o in objs}
ar, pr = by["AccessReview"], by["PermissionReview"]
assert ar["status"]["allowed"] is True, ar["status"]
assert ar["status"]["denied"] is False, ar["status"]
assert "rb-" + t in ar["status"]["reason"], ar["status"]
rules = pr["status"]["rules"]
assert any("configmaps" in r["rule"]["resources"] for r in rules), rules
assert all(r["binding"] == "rb-" + t for r in rules), rules
PY
  else
    fail "kubectl $ver create reviews: $(cat "$WORK/err")"
  fi

  # get: the default columns, exactly, then the values of the row.
  # kind|get args|header|-o wide header|expected cells (HEADER=value ...)
  while IFS='|' read -r what args head wide cells; do
    if ! kv get $args > "$WORK/get" 2>&1; then
      fail "kubectl $ver get $args: $(cat "$WORK/get")"; continue
    fi
    got=$(head -1 "$WORK/get" | tr -s ' ' | sed 's/ $//')
    [ "$got" = "$head" ] || fail "kubectl $ver get $what: columns '$got', want '$head'"
    python3 "$WORK/cells.py" < "$WORK/get" > "$WORK/cells" || fail "kubectl $ver get $what: $(cat "$WORK/get")"
    grep -Eq '^AGE=[0-9]+s$' "$WORK/cells" || fail "kubectl $ver get $what: AGE: $(cat "$WORK/get")"
    for c in $cells; do
      grep -qxF "$c" "$WORK/cells" || fail "kubectl $ver get $what: want cell $c in: $(cat "$WORK/get")"
    done
    if ! kv get $args -o wide > "$WORK/get" 2>&1; then
      fail "kubectl $ver get $args -o wide: $(cat "$WORK/get")"; continue
    fi
    got=$(head -1 "$WORK/get" | tr -s ' ' | sed 's/ $//')
    [ "$got" = "$wide" ] || fail "kubectl $ver get $what -o wide: columns '$got', want '$wide'"
  done <<EOF
rt|roletemplates rt-$t|NAME SCOPES RULES AGE|NAME SCOPES RULES UI-PERMISSIONS AGE|NAME=rt-$t SCOPES=Workspace,Namespace RULES=2
iamr|iamr role-$t|NAME SCOPE TEMPLATES RULES AGE|NAME SCOPE TEMPLATES RULES AGE|NAME=role-$t SCOPE=Workspace TEMPLATES=1
iamrb|iamrb rb-$t|NAME ROLE SCOPE SUBJECTS AGE|NAME ROLE SCOPE SUBJECTS AGE|NAME=rb-$t ROLE=role-$t SCOPE=Workspace/ws-$t
cluster|clusters edge-$t|NAME TYPE DISTRIBUTION VERSION READY AGE|NAME TYPE DISTRIBUTION VERSION READY CONNECTION EDGE-RUNTIME AGE|NAME=edge-$t TYPE=physical DISTRIBUTION=k3s VERSION=v1.30.2
ws|ws ws-$t|NAME MANAGER CLUSTERS NAMESPACES AGE|NAME MANAGER CLUSTERS NAMESPACES AGE|NAME=ws-$t MANAGER=alice CLUSTERS=host NAMESPACES=1
ng|ng ng-$t|NAME CLUSTER NODES AGE|NAME CLUSTER NODES AGE|NAME=ng-$t CLUSTER=edge-1 NODES=3
app|app web-$t|NAME TYPE WORKSPACE LATEST AGE|NAME TYPE WORKSPACE LATEST AGE|NAME=web-$t TYPE=workload WORKSPACE=ws-$t
appver|appver web-$t-1.0.0|NAME APPLICATION VERSION PHASE AGE|NAME APPLICATION VERSION PHASE AGE|NAME=web-$t-1.0.0 APPLICATION=web-$t VERSION=1.0.0
appdeploy|appdeploy -n shop-$t web-$t|NAME APPLICATION VERSION RESOLVED TOPOLOGIES AGE|NAME APPLICATION VERSION RESOLVED TOPOLOGIES AGE|NAME=web-$t APPLICATION=web-$t VERSION=1.0.0 TOPOLOGIES=2
comp|comp metrics-$t|NAME CHART VERSION PHASE AGE|NAME CHART VERSION PHASE DEPENDS-ON AGE|NAME=metrics-$t CHART=metrics-server VERSION=3.12.1
EOF

  # The bracketed columns carry the object's values.
  # obj|args|cells
  while IFS='|' read -r what args cells; do
    kv get $args -o wide > "$WORK/get" 2>&1 || true
    python3 "$WORK/cells.py" < "$WORK/get" > "$WORK/cells" 2>&1 || true
    for c in $cells; do
      grep -qxF "$c" "$WORK/cells" || fail "kubectl $ver get $what -o wide: want cell $c in: $(cat "$WORK/get")"
    done
  done <<EOF
rt|roletemplates rt-$t|UI-PERMISSIONS=pods.view,deploy.view
cluster|clusters edge-$t|CONNECTION=direct EDGE-RUNTIME=kubeedge
comp|comp metrics-$t|DEPENDS-ON=base
EOF
  # A namespaced kind across namespaces: NAMESPACE column before NAME.
  kv get appdeploy -A > "$WORK/get" 2>&1
  head -1 "$WORK/get" | grep -Eq '^NAMESPACE +NAME +APPLICATION +VERSION +RESOLVED +TOPOLOGIES +AGE$' \
    || fail "kubectl $ver get appdeploy -A: $(cat "$WORK/get")"
  grep -Eq "^shop-$t +web-$t +web-$t +1\.0\.0 " "$WORK/get" || fail "kubectl $ver get appdeploy -A row: $(cat "$WORK/get")"

  # -o yaml round-trips every field that was sent.
  if kv get -f "$WORK/$t.yaml" -o yaml > "$WORK/got.yaml" 2>"$WORK/err"; then
    python3 "$WORK/roundtrip.py" "$WORK/$t.yaml" "$WORK/got.yaml" 2>"$WORK/err" \
      || fail "kubectl $ver get -o yaml round trip: $(cat "$WORK/err")"
  else
    fail "kubectl $ver get -o yaml: $(cat "$WORK/err")"
  fi

  # describe prints the object's fields.
  if kv describe -f "$WORK/$t.yaml" > "$WORK/desc" 2>&1; then
    for want in "Name: *rt-$t" "Kind: *RoleTemplate" "Display Name: *Viewer" \
                "Kind: *IAMRoleBinding" "Level: *Workspace" "Kind: *Cluster" "Edge Runtime: *kubeedge" \
                "Name: *ng-$t" "Kind: *ApplicationDeployment" "Namespace: *shop-$t" \
                "Node Group: *ng-$t" "Chart: *metrics-server" "Kind: *Component"; do
      grep -Eq "$want" "$WORK/desc" || fail "kubectl $ver describe: no /$want/"
    done
  else
    fail "kubectl $ver describe: $(cat "$WORK/desc")"
  fi

  # explain: every kind has a schema, and nested fields are described.
  if kv explain iamrolebindings.spec.scope > "$WORK/explain" 2>&1; then
    grep -Eq '^ *level[[:space:]]+<string>' "$WORK/explain" || fail "kubectl $ver explain iamrolebindings.spec.scope: $(cat "$WORK/explain")"
  else
    fail "kubectl $ver explain iamrolebindings.spec.scope: $(cat "$WORK/explain")"
  fi
  while read -r name short group ns kind; do
    if kv explain "$name" > "$WORK/explain" 2>&1; then
      grep -Eq "^KIND: +$kind\$" "$WORK/explain" && grep -Eq '^ *spec[[:space:]]+<' "$WORK/explain" \
        || fail "kubectl $ver explain $name: $(head -20 "$WORK/explain")"
    else
      fail "kubectl $ver explain $name: $(cat "$WORK/explain")"
    fi
  done <<< "$RESOURCES"
  if kv explain clusters.spec.connection > "$WORK/explain" 2>&1; then
    grep -Eq '^ *kubernetesAPIEndpoint[[:space:]]+<string>' "$WORK/explain" || fail "kubectl $ver explain clusters.spec.connection: $(cat "$WORK/explain")"
  else
    fail "kubectl $ver explain clusters.spec.connection: $(cat "$WORK/explain")"
  fi

  # delete removes every object (and waits for it to be gone).
  if kv delete -f "$WORK/$t.yaml" > "$WORK/out" 2>&1; then
    [ "$(grep -c ' deleted' "$WORK/out")" = 10 ] || fail "kubectl $ver delete: $(cat "$WORK/out")"
  else
    fail "kubectl $ver delete: $(cat "$WORK/out")"
  fi
  left=$(kv get -f "$WORK/$t.yaml" -o name --ignore-not-found 2>&1 || true)
  [ -z "$left" ] || fail "kubectl $ver: left after delete: $left"
done

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "kubectl versions ok"
