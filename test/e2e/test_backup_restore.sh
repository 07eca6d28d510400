#!/usr/bin/env bash
# A backup with kubectl and a restore from it, as a user does them with
# the server standalone: every kind is written out with
# `kubectl get ... -o yaml` (a v1 List), everything is deleted, the files
# are applied back with `kubectl apply -f`, and spec, labels and
# annotations come back as they were. Status does not come back through
# apply (an ApplicationVersion returns as Draft): the README says how to
# restore it, and this test does that too.
source "$(dirname "$0")/lib.sh"
start_server

kubectl create namespace shop >/dev/null 2>&1 || true
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: iam.theriseunion.io/v1alpha1
kind: RoleTemplate
metadata: {name: pods-view, labels: {tier: view}, annotations: {owner: platform}}
spec:
  scopes: [Workspace, Namespace]
  rules: [{verbs: [get, list], apiGroups: [""], resources: [pods]}]
  denyRules: [{verbs: [delete], apiGroups: [""], resources: [secrets]}]
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: viewer, labels: {team: a}}
spec: {scope: Workspace, templateSelector: {matchLabels: {tier: view}}}
---
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRoleBinding
metadata: {name: alice-viewer}
spec:
  roleRef: {name: viewer}
  subjects: [{kind: User, name: alice}]
  scope: {level: Workspace, name: ws1}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: Cluster
metadata: {name: edge-1}
spec: {type: physical, distribution: k3s, connection: {type: proxy}}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws1, annotations: {note: "first workspace"}}
spec: {displayName: One, namespaces: [{name: shop}], clusters: [edge-1]}
---
apiVersion: scope.theriseunion.io/v1alpha1
kind: NodeGroup
metadata: {name: ng1}
spec: {cluster: edge-1, nodes: [n1, n2]}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: Application
metadata: {name: web}
spec: {type: workload, displayName: Web}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationVersion
metadata: {name: web-1.0.0}
spec:
  application: web
  version: 1.0.0
  workload: {template: {spec: {containers: [{name: web, image: "nginx:1"}]}}}
---
apiVersion: app.theriseunion.io/v1alpha1
kind: ApplicationDeployment
metadata: {name: web, namespace: shop}
spec: {application: web, version: latest, topologies: [{nodeGroup: ng1, replicas: 2}]}
---
apiVersion: ext.theriseunion.io/v1alpha1
kind: Component
metadata: {name: metrics}
spec: {chart: metrics, repository: "http://127.0.0.1:9/charts", cluster: edge-1}
YAML
kubectl patch appver web-1.0.0 --subresource=status --type=merge -p '{"status":{"phase":"Submitted"}}' >/dev/null
kubectl patch appver web-1.0.0 --subresource=status --type=merge -p '{"status":{"phase":"Approved"}}' >/dev/null

KINDS="roletemplates iamroles iamrolebindings clusters workspaces nodegroups applications applicationversions components"
# The backup: one file per kind (a v1 List each), and the namespaced kind
# across namespaces.
mkdir -p "$WORK/backup"
for k in $KINDS; do kubectl get "$k" -o yaml > "$WORK/backup/$k.yaml"; done
kubectl get applicationdeployments -A -o yaml > "$WORK/backup/applicationdeployments.yaml"
grep -q '^kind: List' "$WORK/backup/workspaces.yaml" || die "not a List: $(head -5 "$WORK/backup/workspaces.yaml")"

# What must come back: spec, labels, annotations of every object.
snapshot() {
  for k in $KINDS; do kubectl get "$k" -o json; done > "$WORK/$1.json"
  kubectl get applicationdeployments -A -o json >> "$WORK/$1.json"
}
snapshot before

# Everything deleted (finalizers are run by the controllers).
kubectl delete applicationdeployments --all -A --timeout=60s >/dev/null
for k in components applicationversions applications iamrolebindings iamroles roletemplates nodegroups workspaces clusters; do
  kubectl delete "$k" --all --timeout=60s >/dev/null || die "delete $k"
done
for k in $KINDS; do
  [ -z "$(kubectl get "$k" -o name)" ] || die "$k left after delete: $(kubectl get "$k" -o name)"
done

# The restore, in the order objects depend on each other.
for k in roletemplates iamroles iamrolebindings clusters workspaces nodegroups applications applicationversions applicationdeployments components; do
  kubectl apply -f "$WORK/backup/$k.yaml" > "$WORK/apply.out" 2>&1 || die "restore $k: $(cat "$WORK/apply.out")"
done
snapshot after
/usr/bin/python3 - "$WORK/before.json" "$WORK/after.json" <<'PY' || die "restore differs"
import json, sys

def objects(path):
    dec, text, out, i = json.JSONDecoder(), open(path).read(), {}, 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        doc, i = dec.raw_decode(text, i)
        for o in doc["items"]:
            md = o["metadata"]
            ann = {k: v for k, v in md.get("annotations", {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
            out[(o["kind"], md.get("namespace", ""), md["name"])] = (o.get("spec"), md.get("labels", {}), ann)
    return out

before, after = objects(sys.argv[1]), objects(sys.argv[2])
assert set(before) == set(after), (set(before) ^ set(after))
for k in before:
    assert before[k] == after[k], (k, before[k], after[k])
print(len(before), "objects restored")
PY
# Status is not restored by apply: the version is Draft again, and comes
# back through /status as the README says.
[ "$(kubectl get appver web-1.0.0 -o jsonpath='{.status.phase}')" = Draft ] || die "phase after restore"
kubectl patch appver web-1.0.0 --subresource=status --type=merge -p '{"status":{"phase":"Submitted"}}' >/dev/null
kubectl patch appver web-1.0.0 --subresource=status --type=merge -p '{"status":{"phase":"Approved"}}' >/dev/null
i=0; until [ "$(kubectl get app web -o jsonpath='{.status.latestVersion}')" = 1.0.0 ]; do
  i=$((i + 1)); [ $i -le 100 ] || die "latestVersion after restoring the phase"; sleep 0.1
done
echo "backup and restore: ok"
