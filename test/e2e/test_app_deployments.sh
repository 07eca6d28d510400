#!/usr/bin/env bash
# ApplicationDeployments through kubectl, against a member cluster: latest
# resolves to the highest Approved release (never a pre-release), re-
# resolves when another is approved; a pinned version that is missing or
# not Approved says so; the workload plugin server-side-applies a
# Deployment pinned to the node group's nodes and a Service on the
# topology's cluster and reads readiness back; a missing NodeGroup shows in
# the topology and in Progressing; deleting removes what was made.
# The member cluster is test/e2e/fake_member.py, a loopback stand-in for a
# member's kube-apiserver: the only test of the workload plugin against a
# member cluster. The helm plugin installs a version's chart from a
# loopback chart repository with a stand-in helm (there is no helm package
# here), as the Component tests do.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/components_fixture.sh"
MEMBER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MEMBER_TOKEN=member-$RANDOM$RANDOM
python3 "$(dirname "$0")/fake_member.py" "$MEMBER_PORT" "$MEMBER_TOKEN" "$WORK/member.log" &
PIDS+=($!)
repo_build "$WORK/repo/charts" demo:0.1.0
repo_serve "$WORK/repo"
HELM=$WORK/helm
HLOG=$WORK/helm.log
fake_helm "$HELM" "$HLOG"
start_server --helm-binary "$HELM"

wait_json() {
  local kind=$1 name=$2 expr=$3 t=${4:-20} i=0; shift 3; [ $# -gt 0 ] && shift
  while :; do
    kubectl get $kind $name -o json >"$WORK/obj.json" 2>/dev/null || true
    if /usr/bin/python3 - "$WORK/obj.json" "$expr" <<'PY' 2>/dev/null; then return 0; fi
import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
    i=$((i + 1)); [ $i -le $((t * 10)) ] || die "$kind $name: timed out waiting for $expr: $(cat "$WORK/obj.json")"
    sleep 0.1
  done
}
cond() { echo "[c for c in o.get('status',{}).get('conditions',[]) if c['type']=='$1'][0]"; }
phase() { kubectl patch appver "$1" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"$2\"}}" >/dev/null; }

kubectl apply -f - >/dev/null <<YAML
apiVersion: scope.theriseunion.io/v1alpha1
kind: Cluster
metadata: {name: edge-1}
spec:
  type: physical
  connection: {type: direct, kubernetesAPIEndpoint: "http://127.0.0.1:$MEMBER_PORT", token: "$MEMBER_TOKEN"}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng1}
spec: {cluster: edge-1, nodes: [n1, n2]}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: Application
metadata: {name: web}
spec: {type: workload}
YAML
kubectl wait --for=condition=Ready cluster/edge-1 --timeout=30s >/dev/null || die "member cluster not Ready: $(kubectl get cluster edge-1 -o yaml)"
for v in 1.0.0 1.1.0 1.2.0 2.0.0-rc.1 1.3.0; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-$v}
spec:
  application: web
  version: "$v"
  workload:
    template:
      spec:
        containers: [{name: web, image: "nginx:$v"}]
    ports: [{name: http, port: 80, targetPort: 8080}]
YAML
done
for v in 1.0.0 1.1.0 1.2.0 2.0.0-rc.1; do phase web-$v Submitted; done
for v in 1.0.0 1.1.0 2.0.0-rc.1; do phase web-$v Approved; done

kubectl create namespace shop >/dev/null 2>&1 || true
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: web, namespace: shop}
spec:
  application: web
  version: latest
  topologies: [{nodeGroup: ng1, replicas: 2}]
YAML
# latest: the highest Approved release, the pre-release never.
wait_json "appdeploy -n shop" web "o.get('status',{}).get('resolvedVersion') == '1.1.0' and o['status']['topologies'][0]['phase'] == 'Available'"
/usr/bin/python3 - "$WORK/obj.json" <<'PY' || die "status: $(cat "$WORK/obj.json")"
import json, sys
o = json.load(open(sys.argv[1]))
s = o["status"]
t = s["topologies"][0]
assert t["nodeGroup"] == "ng1" and t["readyReplicas"] == 2, t
c = {c["type"]: c for c in s["conditions"]}
assert c["VersionResolved"]["status"] == "True", c
assert c["Progressing"]["status"] == "True" and c["Progressing"]["reason"] == "Available", c
assert s["observedGeneration"] == o["metadata"]["generation"], s
assert "finalizer.app.theriseunion.io" in o["metadata"]["finalizers"], o["metadata"]
PY
# What the member cluster got: server-side applies of a Deployment pinned
# to the node group's nodes, in the ApplicationDeployment's namespace, and
# its Service.
/usr/bin/python3 - "$WORK/member.log" <<'PY' || die "member cluster saw: $(tail -5 "$WORK/member.log")"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
applies = [r for r in reqs if r["method"] == "PATCH"]
assert all(r["contentType"] == "application/apply-patch+yaml" and r["fieldManager"] for r in applies), applies
dep = [r for r in applies if r["path"] == "/apis/apps/v1/namespaces/shop/deployments/web-ng1"][-1]["body"]
assert dep["spec"]["replicas"] == 2, dep
terms = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
expr = terms[0]["matchExpressions"][0]
assert expr == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}, expr
assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.1.0", dep
sel = dep["spec"]["selector"]["matchLabels"]
assert all(dep["spec"]["template"]["metadata"]["labels"][k] == v for k, v in sel.items()), dep
svc = [r for r in applies if r["path"] == "/api/v1/namespaces/shop/services/web-ng1"][-1]["body"]
assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["selector"] == sel, svc
PY
# Another release approved: latest moves to it, and the member is updated.
phase web-1.2.0 Approved
wait_json "appdeploy -n shop" web "o['status'].get('resolvedVersion') == '1.2.0'"
grep -q '"image": "nginx:1.2.0"' "$WORK/member.log" || die "the member never got 1.2.0"

# Pinned versions: missing, or not Approved, say which.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: pinned-missing, namespace: shop}
spec: {application: web, version: 9.9.9, topologies: [{nodeGroup: ng1, replicas: 1}]}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: pinned-draft, namespace: shop}
spec: {application: web, version: 1.3.0, topologies: [{nodeGroup: ng1, replicas: 1}]}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: lost, namespace: shop}
spec: {application: web, version: 1.0.0, topologies: [{nodeGroup: nowhere, replicas: 1}]}
YAML
wait_json "appdeploy -n shop" pinned-missing "$(cond VersionResolved)['status'] == 'False' and $(cond VersionResolved)['reason'] == 'VersionNotFound' and 'resolvedVersion' not in o['status']"
wait_json "appdeploy -n shop" pinned-draft "$(cond VersionResolved)['reason'] == 'VersionNotApproved'"
wait_json "appdeploy -n shop" lost "o['status'].get('resolvedVersion') == '1.0.0' and $(cond Progressing)['reason'] == 'NodeGroupNotFound' and 'nowhere' in o['status']['topologies'][0]['message']"
# The draft approved (through Submitted): the pinned one resolves.
phase web-1.3.0 Submitted
phase web-1.3.0 Approved
wait_json "appdeploy -n shop" pinned-draft "o['status'].get('resolvedVersion') == '1.3.0' and $(cond VersionResolved)['status'] == 'True'"

# Delete: what was made on the member goes, then the object.
kubectl delete appdeploy -n shop web --timeout=30s >/dev/null || die "delete did not finish"
kubectl get appdeploy -n shop web >/dev/null 2>&1 && die "the ApplicationDeployment is still there"
/usr/bin/python3 - "$WORK/member.log" <<'PY' || die "member deletes: $(grep DELETE "$WORK/member.log")"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
gone = {r["path"] for r in reqs if r["method"] == "DELETE" and r["found"]}
assert "/apis/apps/v1/namespaces/shop/deployments/web-ng1" in gone, gone
assert "/api/v1/namespaces/shop/services/web-ng1" in gone, gone
PY
# The helm plugin: the version's chart, its values under the topology's,
# into the ApplicationDeployment's namespace as release <name>-<nodegroup>;
# readiness read from the release's Deployments on the member.
kubectl apply -f - >/dev/null <<YAML
apiVersion: app.theriseunion.io/v1alpha1
kind: Application
metadata: {name: chart}
spec: {type: helm}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: chart-1.0.0}
spec:
  application: chart
  version: 1.0.0
  helm: {chart: demo, repository: "http://127.0.0.1:$RPORT/charts", version: 0.1.0, values: {a: 1, b: 1}}
YAML
phase chart-1.0.0 Submitted
phase chart-1.0.0 Approved
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: chart, namespace: shop}
spec:
  application: chart
  version: latest
  topologies: [{nodeGroup: ng1, replicas: 3, values: {b: 2}}]
YAML
i=0; until grep -q "^install chart-ng1$" "$HLOG.order" 2>/dev/null; do
  i=$((i + 1)); [ $i -le 200 ] || die "helm never installed chart-ng1: $(cat "$HLOG" 2>/dev/null) $(kubectl get appdeploy -n shop chart -o yaml)"; sleep 0.1
done
grep -E "^upgrade --install chart-ng1 .*/charts/[0-9a-f]{64}\.tgz .*--namespace shop" "$HLOG" >/dev/null \
  || die "helm arguments: $(cat "$HLOG")"
/usr/bin/python3 - "$HLOG.values.chart-ng1" <<'PY' || die "values: $(cat "$HLOG.values.chart-ng1")"
import json, sys
v = json.load(open(sys.argv[1]))
assert v == {"a": 1, "b": 2, "replicaCount": 3}, v
PY
wait_json "appdeploy -n shop" chart "o['status']['topologies'][0]['phase'] == 'Progressing' and o['status']['topologies'][0]['readyReplicas'] == 0"
# What the chart would have made, appearing on the member.
curl -s -X PATCH -H "Authorization: Bearer $MEMBER_TOKEN" -H 'Content-Type: application/apply-patch+yaml' \
  "http://127.0.0.1:$MEMBER_PORT/apis/apps/v1/namespaces/shop/deployments/chart-ng1-demo?fieldManager=helm" \
  -d '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"chart-ng1-demo","labels":{"app.kubernetes.io/instance":"chart-ng1"}},"spec":{"replicas":3}}' >/dev/null
wait_json "appdeploy -n shop" chart "o['status']['topologies'][0]['phase'] == 'Available' and o['status']['topologies'][0]['readyReplicas'] == 3" 30
kubectl delete appdeploy -n shop chart --timeout=30s >/dev/null || die "delete of the helm deployment did not finish"
grep -q "^uninstall chart-ng1$" "$HLOG.order" || die "no helm uninstall: $(cat "$HLOG.order")"
echo "app deployments: ok"
