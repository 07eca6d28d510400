#!/usr/bin/env bash
# The Component controller with a real chart repository (python3's
# http.server on loopback over charts this test builds as gzip tars, with
# real sha256 digests), a real member cluster (a second edge-apiserver, as
# test_clusters.sh does) and a stand-in helm (there is no helm package to
# install here: a bash script that records its arguments and the order of
# its installs). Checked: a Component installs into its Cluster with the
# helm arguments expected (release, chart archive in the cache under
# --data-dir, namespace, --create-namespace, the values, a kubeconfig for
# the member); spec.version empty takes the highest release, pre-releases
# left out; A dependsOn B installs B first; a missing dependency is
# Blocked/DependencyNotFound; a cycle Blocks both members naming it; a
# wrong digest is Failed/DigestMismatch and helm never runs for it; a
# repository (or a chart URL) outside --allowed-chart-repositories is
# Failed/RepositoryNotAllowed; a helm failure is Failed with helm's last
# line; a label change runs no helm; after a restart with the repository
# down, Installed stays Installed and a new spec or a new Component of a
# cached chart installs from the cache; deleting a Component others
# depend on waits (DeletionBlocked) until they are gone; a delete runs
# helm uninstall and the object goes; a --helm-binary that does not exist
# is HelmNotFound. Every check runs; failures are listed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/components_fixture.sh"
set +o pipefail

kc() { timeout 60 kubectl "$@"; }

# wait_json KIND NAME PYTHON-EXPR [SECONDS]: polls `kubectl get -o json`
# until the expression over o holds; a failure is counted.
wait_json() {
  local kind=$1 name=$2 expr=$3 t=${4:-30} i=0
  while :; do
    kc get "$kind" "$name" -o json >"$WORK/obj.json" 2>/dev/null || echo '{}' > "$WORK/obj.json"
    if python3 - "$WORK/obj.json" "$expr" <<'PY' 2>/dev/null; then return 0; fi
import json, sys
o = json.load(open(sys.argv[1]))
def cond(t):
    return ([c for c in o.get('status', {}).get('conditions', []) if c['type'] == t] or [{}])[0]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
    i=$((i + 1))
    if [ $i -gt $((t * 10)) ]; then fail "$kind/$name: timed out waiting for $expr: $(cat "$WORK/obj.json")"; return 1; fi
    sleep 0.1
  done
}
# helm runs but for boom's (it fails, and is retried with backoff).
hcount() { grep -vc ' boom ' "$HLOG"; }
phase_is() { echo "o.get('status',{}).get('phase') == '$1'"; }

# comp NAME CHART VERSION [EXTRA-SPEC-JSON] [REPO]: creates a Component on the member.
comp() {
  local repo=${5:-$REPO}
  echo "{\"apiVersion\":\"ext.theriseunion.io/v1alpha1\",\"kind\":\"Component\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"chart\":\"$2\",\"version\":\"$3\",\"repository\":\"$repo\",\"cluster\":\"member\"${4:+,$4}}}" \
    | kc create -f - >/dev/null 2>"$WORK/err" || fail "create component $1: $(cat "$WORK/err")"
}

###########################################################################
member_start
RPORT=$(free_port)
REPO=http://127.0.0.1:$RPORT/charts
repo_build "$WORK/repo/charts" base:1.0.0 base:1.1.0 base:2.0.0-rc.1 \
  "app:1.0.0:url=httpCOLON//127.0.0.1COLON$RPORT/charts/app-1.0.0.tgz" bad:1.0.0:bad \
  "escape:1.0.0:url=../elsewhere/escape-1.0.0.tgz" boom:1.0.0
repo_serve "$WORK/repo"
HELM=$WORK/helm
HLOG=$WORK/helm.log
fake_helm "$HELM" "$HLOG"
export EDGE_TEST_HELM_TIMEOUT_MS=20000
start_server --helm-binary "$HELM" --allowed-chart-repositories "http://127.0.0.1:$RPORT/charts/"
member_cluster member
kc wait --for=condition=Ready cluster/member --timeout=30s >/dev/null 2>&1 || die "cluster member is not Ready: $(kc get cluster member -o jsonpath='{.status}')"

###########################################################################
# A dependsOn B: B installs first. B asks for the highest release.
comp a app 1.0.0 '"dependsOn":["b"],"namespace":"apps","values":{"replicas":3,"name":"x"}'
fins=$(kc get component a -o jsonpath='{.metadata.finalizers}')
[ "$fins" = '["finalizer.ext.theriseunion.io"]' ] || fail "finalizer right after create: $fins"
sleep 0.5
comp b base ""
wait_json component a "$(phase_is Installed) and cond('Installed')['status'] == 'True'"
wait_json component b "$(phase_is Installed)"
kc get components -o wide
[ "$(cat "$HLOG.order" 2>/dev/null | head -2 | tr '\n' ' ')" = "install b install a " ] \
  || fail "install order: $(cat "$HLOG.order")"
BVER=$(kc get component b -o jsonpath='{.status.resolvedVersion}')
[ "$BVER" = 1.1.0 ] || fail "b resolvedVersion $BVER, want 1.1.0 (the highest release, 2.0.0-rc.1 left out)"
ADIG=$(kc get component a -o jsonpath='{.status.chartDigest}')
[ "$ADIG" = "$(sha256sum "$WORK/repo/charts/app-1.0.0.tgz" | cut -d' ' -f1)" ] || fail "a chartDigest $ADIG"
[ -f "$WORK/data/charts/$ADIG.tgz" ] || fail "no $WORK/data/charts/$ADIG.tgz in the cache: $(ls -R "$WORK/data/charts")"
line=$(grep '^upgrade --install a ' "$HLOG" | head -1)
python3 - "$line" "$WORK/data/charts/$ADIG.tgz" <<'PY' || fail "helm arguments for a: $line"
import sys
a = sys.argv[1].split()
assert a[:5] == ["upgrade", "--install", "a", sys.argv[2], "--namespace"], a
assert a[5] == "apps" and "--create-namespace" in a, a
assert a[a.index("--values") + 1] and a[a.index("--kubeconfig") + 1], a
PY
grep -q '^upgrade --install b .* --namespace edge-system --create-namespace ' "$HLOG" || fail "b's namespace: $(grep ' b ' "$HLOG")"
python3 -c "import json,sys; v=json.load(open(sys.argv[1])); sys.exit(0 if v == {'replicas': 3, 'name': 'x'} else 1)" "$HLOG.values.a" \
  || fail "a's values file: $(cat "$HLOG.values.a")"
grep -q "$MURL" "$HLOG.kubeconfig.a" || fail "a's kubeconfig does not name the member $MURL: $(cat "$HLOG.kubeconfig.a")"
grep -q "$MTOKEN" "$HLOG.kubeconfig.a" || fail "a's kubeconfig has not the member's token"
ls "$WORK/data/tmp" 2>/dev/null | grep -q . && fail "temporary files left: $(ls -la "$WORK/data/tmp")"

###########################################################################
# A missing dependency, a cycle, a wrong digest, repositories not allowed,
# a helm failure.
comp m base 1.0.0 '"dependsOn":["ghost"]'
comp c2 base 1.0.0 '"dependsOn":["c1"]'
comp c1 base 1.0.0 '"dependsOn":["c2"]'
comp bad bad 1.0.0
comp other base 1.0.0 "" "http://127.0.0.1:$RPORT/other"
comp esc escape 1.0.0
comp boom boom 1.0.0
wait_json component m "$(phase_is Blocked) and cond('DependenciesReady')['reason'] == 'DependencyNotFound' and 'ghost' in cond('DependenciesReady')['message']"
for n in c1 c2; do
  wait_json component $n "$(phase_is Blocked) and cond('DependenciesReady')['reason'] == 'DependencyCycle' and cond('DependenciesReady')['message'] == 'dependency cycle: c1 -> c2 -> c1'"
done
wait_json component bad "$(phase_is Failed) and cond('ChartFetched')['reason'] == 'DigestMismatch'"
wait_json component other "$(phase_is Failed) and cond('ChartFetched')['reason'] == 'RepositoryNotAllowed'"
wait_json component esc "$(phase_is Failed) and cond('ChartFetched')['reason'] == 'RepositoryNotAllowed' and 'elsewhere' in cond('ChartFetched')['message']"
wait_json component boom "$(phase_is Failed) and cond('Installed')['reason'] == 'InstallFailed' and cond('Installed')['message'] == 'Error: INSTALLATION FAILED: the chart did not deploy'"
grep -q ' bad ' "$HLOG" && fail "helm ran for the chart whose digest does not match: $(grep ' bad ' "$HLOG")"
ls "$WORK/data/charts" | grep -q "$(sha256sum "$WORK/repo/charts/bad-1.0.0.tgz" | cut -d' ' -f1)" && fail "the mismatching chart went into the cache"
grep -Eq ' (other|esc|m|c1|c2) ' "$HLOG" && fail "helm ran for a Component that may not install: $(cat "$HLOG")"
# A missing dependency that appears unblocks its dependent.
comp ghost base 1.0.0
wait_json component m "$(phase_is Installed)"

###########################################################################
# Labels do not change the hash: no helm run, no status write.
n0=$(hcount)
h0=$(kc get component a -o jsonpath='{.status.observedHash}')
kc label component a tier=platform >/dev/null || fail "label a"
kc annotate component a note=hello >/dev/null || fail "annotate a"
sleep 2
[ "$(hcount)" = "$n0" ] || fail "a label change ran helm: $(tail -2 "$HLOG")"
[ "$(kc get component a -o jsonpath='{.status.observedHash}')" = "$h0" ] || fail "a label changed observedHash"

###########################################################################
# A restart with the repository down: Installed stays Installed; a new
# hash of an exact version, and a new Component of a cached chart, install
# from the cache.
kill "$RPID"; wait "$RPID" 2>/dev/null || true
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
curl -s -o /dev/null "http://127.0.0.1:$RPORT/charts/index.yaml" && die "the repository still answers"
start_server --helm-binary "$HELM" --allowed-chart-repositories "http://127.0.0.1:$RPORT/charts/"
n0=$(hcount)
sleep 2
[ "$(hcount)" = "$n0" ] || fail "the restart ran helm again: $(tail -3 "$HLOG")"
for n in a b m; do wait_json component $n "$(phase_is Installed)" 5; done
kc patch component a --type=merge -p '{"spec":{"values":{"replicas":4}}}' >/dev/null || fail "patch a"
wait_json component a "$(phase_is Installed) and o['status']['observedHash'] != '$h0'"
[ "$(grep -c '^upgrade --install a ' "$HLOG")" = 2 ] || fail "a's new values did not install from the cache: $(grep ' a ' "$HLOG")"
comp a2 app 1.0.0
wait_json component a2 "$(phase_is Installed) and o['status']['chartDigest'] == '$ADIG'"

###########################################################################
# Deletion: b is held while a depends on it; a's delete uninstalls it.
kc delete component b --wait=false >/dev/null || fail "delete b"
wait_json component b "cond('DeletionBlocked')['status'] == 'True' and cond('DeletionBlocked')['reason'] == 'DependentsExist' and cond('DeletionBlocked')['message'] == 'components that depend on it: a'"
grep -q '^uninstall b ' "$HLOG" && fail "b was uninstalled while a depends on it"
kc delete component a --wait --timeout=20s >/dev/null 2>"$WORK/err" || fail "delete a: $(cat "$WORK/err")"
kc get component a >/dev/null 2>&1 && fail "a is still there after its delete"
grep -q '^uninstall a --namespace apps --kubeconfig ' "$HLOG" || fail "no helm uninstall of a: $(grep uninstall "$HLOG")"
i=0; while kc get component b >/dev/null 2>&1 && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
kc get component b >/dev/null 2>&1 && fail "b is still there once a is gone: $(kc get component b -o jsonpath='{.status}')"
[ "$(grep uninstall "$HLOG.order" | tr '\n' ' ')" = "uninstall a uninstall b " ] || fail "uninstall order: $(cat "$HLOG.order")"
# One never installed goes without helm.
kc delete component other --wait --timeout=20s >/dev/null 2>&1 || fail "delete other"
grep -q '^uninstall other' "$HLOG" && fail "helm uninstall ran for a Component never installed"

###########################################################################
# No helm: HelmNotFound, never a success.
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server --helm-binary "$WORK/no-such-helm" --allowed-chart-repositories "http://127.0.0.1:$RPORT/charts/"
comp nohelm app 1.0.0
wait_json component nohelm "$(phase_is Failed) and cond('Installed')['status'] == 'False' and cond('Installed')['reason'] == 'HelmNotFound'"

kill -0 "$SERVER_PID" || fail "the server exited: $(tail -20 "$WORK/server.log")"
[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "components ok"
