#!/usr/bin/env bash
# Components benchmark (not a test: prints figures). 200 Components in a
# dependency chain 10 deep (10 levels of 20; each Component depends on
# the one of its column a level up) go from Pending to Installed with the
# stand-in helm of the e2e test, into a member cluster (a second
# edge-apiserver), from a chart repository on loopback. The reference is
# the same 200 runs of the stand-in helm one after another: the ratio is
# what the controller (its queue, the phases' status writes, the chart
# cache, the dependency checks, four workers) costs over the helm runs
# alone, below 1 when the workers' parallelism wins.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$PWD/bin/edge-apiserver}
source test/e2e/lib.sh
source test/e2e/components_fixture.sh
LEVELS=10 WIDTH=20
N=$((LEVELS * WIDTH))

member_start
repo_build "$WORK/repo/charts" c:1.0.0
repo_serve "$WORK/repo"
fake_helm "$WORK/helm" "$WORK/helm.log"
start_server --helm-binary "$WORK/helm" >/dev/null
member_cluster member
kubectl wait --for=condition=Ready cluster/member --timeout=30s >/dev/null

python3 - "$LEVELS" "$WIDTH" "http://127.0.0.1:$RPORT/charts" > "$WORK/components.yaml" <<'PY'
import json, sys
levels, width, repo = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
items = []
for l in range(levels):
    for i in range(width):
        spec = {"chart": "c", "version": "1.0.0", "repository": repo, "cluster": "member"}
        if l:
            spec["dependsOn"] = [f"c-{l-1}-{i}"]
        items.append({"apiVersion": "ext.theriseunion.io/v1alpha1", "kind": "Component",
                      "metadata": {"name": f"c-{l}-{i}"}, "spec": spec})
for it in items:
    s = it["spec"]
    print(f"---\napiVersion: {it['apiVersion']}\nkind: Component\nmetadata: {{name: {it['metadata']['name']}}}\n"
          f"spec:\n  chart: c\n  version: \"1.0.0\"\n  repository: {s['repository']}\n  cluster: member")
    if "dependsOn" in s:
        print(f"  dependsOn: [{s['dependsOn'][0]}]")
PY

installed() {
  kubectl get components -o json | python3 -c '
import json, sys
print(sum(1 for o in json.load(sys.stdin)["items"] if o.get("status", {}).get("phase") == "Installed"))'
}
t0=$(date +%s.%N)
kubectl create -f "$WORK/components.yaml" >/dev/null
t1=$(date +%s.%N)
while [ "$(installed)" -lt "$N" ]; do
  python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t0 < 600 else 1)" || die "not all Installed after 600 s: $(installed) of $N"
  sleep 0.2
done
t2=$(date +%s.%N)
# Every Component after the one it depends on.
python3 - "$WORK/helm.log.order" <<'PY' || die "a Component installed before its dependency"
import sys
pos = {l.split()[1]: i for i, l in enumerate(open(sys.argv[1])) if l.startswith("install ")}
for name, i in pos.items():
    _, l, c = name.split("-")
    if int(l) and pos[f"c-{int(l)-1}-{c}"] > i:
        sys.exit(f"{name} before c-{int(l)-1}-{c}")
PY

# The reference: the same helm runs, one after another.
chart=$(ls "$WORK"/data/charts/*.tgz | head -1)
mkdir -p "$WORK/ref"
echo '{}' > "$WORK/ref/values.yaml"
cp "$WORK/kubeconfig" "$WORK/ref/kubeconfig"
r0=$(date +%s.%N)
for i in $(seq 1 $N); do
  "$WORK/helm" upgrade --install "ref-$i" "$chart" --namespace edge-system --create-namespace \
    --values "$WORK/ref/values.yaml" --kubeconfig "$WORK/ref/kubeconfig" >/dev/null
done
r1=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$r0" "$r1" "$N" "$LEVELS" "$WIDTH" <<'PY'
import sys
t0, t1, t2, r0, r1 = map(float, sys.argv[1:6])
n, levels, width = map(int, sys.argv[6:9])
ctl, ref = t2 - t0, r1 - r0
print(f"{n} Components ({levels} levels of {width}, each depending on one a level up): "
      f"created in {t1 - t0:.2f} s, all Installed {ctl:.2f} s after the first create "
      f"({n / ctl:.1f}/s)")
print(f"reference, {n} stand-in helm runs one after another: {ref:.2f} s ({n / ref:.1f}/s)")
print(f"ratio controller / reference: {ctl / ref:.2f}")
PY
