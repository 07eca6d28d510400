# Start-up: the server listens at once and reports itself not ready while
# storage opens and the authorizer's index is built (slowed down here by
# the test build's EDGE_TEST_*_GATE hooks, which hold each step until the
# test has checked it): /livez 200 from the first
# moment, /readyz and /healthz 500 listing the failing checks as
# kube-apiserver does (?verbose, ?exclude, /readyz/<check> with the
# reason), /version 200, and every other request 503 with Retry-After and
# a Status; then everything works. A release binary ignores the hooks; a
# store that cannot open still ends the process non-zero with the message;
# SIGTERM during start-up ends it cleanly.
source "$(dirname "$0")/lib.sh"
set +o pipefail

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADMIN_TOKEN=admin-token-$RANDOM$RANDOM
echo "$ADMIN_TOKEN,admin,admin-uid,\"system:masters\"" > "$WORK/tokens.csv"
S=https://127.0.0.1:$PORT
G=$S/apis/scope.theriseunion.io/v1alpha1
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
# get PATH [curl args]: sets CODE, BODY ($WORK/body) and headers ($WORK/hdrs).
get() {
  local p=$1; shift
  CODE=$(curl -sk -o "$WORK/body" -D "$WORK/hdrs" -w '%{http_code}' "$@" "$S$p")
}
header() { grep -i "^$1:" "$WORK/hdrs" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
SAR='{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"nobody","resourceAttributes":{"verb":"get","resource":"pods"}}}'

t0=$(date +%s.%N)
EDGE_TEST_STORE_OPEN_GATE=$WORK/open-storage EDGE_TEST_AUTHZ_GATE=$WORK/build-index "$BIN" --bind-address 127.0.0.1 \
  --secure-port "$PORT" --data-dir "$WORK/data" --cert-dir "$WORK/certs" \
  --token-auth-file "$WORK/tokens.csv" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
# /livez answers as soon as the port does.
i=0
until [ "$(curl -sk "$S/livez" 2>/dev/null)" = ok ]; do
  i=$((i + 1)); [ $i -le 100 ] || die "no /livez within 10 s: $(cat "$WORK/server.log")"
  sleep 0.1
done
echo "/livez 200 after $(python3 -c "import time; print(round(time.time() - $t0, 2))") s"
grep -q "listening on https://127.0.0.1:$PORT" "$WORK/server.log" || fail "no 'listening on' line: $(cat "$WORK/server.log")"
grep -q "open at revision" "$WORK/server.log" && die "storage opened before the checks ran: the delay hook did not work"

###########################################################################
# Storage not open yet.
get /livez
[ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = ok ] || fail "/livez while starting: $CODE $(cat "$WORK/body")"
get "/livez?verbose"
[ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = "[+]ping ok
livez check passed" ] || fail "/livez?verbose while starting: $CODE $(cat "$WORK/body")"
for q in "" "?verbose"; do
  get "/readyz$q"
  [ "$CODE" = 500 ] && [ "$(cat "$WORK/body")" = "[+]ping ok
[-]storage failed: reason withheld
[-]authorizer-index failed: reason withheld
readyz check failed" ] || fail "/readyz$q while storage opens: $CODE $(cat "$WORK/body")"
  [ "$(header Content-Type)" = "text/plain; charset=utf-8" ] || fail "/readyz$q Content-Type '$(header Content-Type)'"
  [ "$(header X-Content-Type-Options)" = nosniff ] || fail "/readyz$q without X-Content-Type-Options"
done
get /healthz
[ "$CODE" = 500 ] && tail -1 "$WORK/body" | grep -qx "healthz check failed" &&
  grep -qx "\[-\]storage failed: reason withheld" "$WORK/body" || fail "/healthz while starting: $CODE $(cat "$WORK/body")"
get /readyz/storage
[ "$CODE" = 500 ] && [ "$(cat "$WORK/body")" = "internal server error: storage is not open yet" ] ||
  fail "/readyz/storage while starting: $CODE $(cat "$WORK/body")"
get /readyz/ping
[ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = ok ] || fail "/readyz/ping: $CODE $(cat "$WORK/body")"
get "/readyz?exclude=storage&exclude=authorizer-index&exclude=nosuch&verbose"
[ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = '[+]ping ok
[+]storage excluded: ok
[+]authorizer-index excluded: ok
warn: some health checks cannot be excluded: no matches for "nosuch"
readyz check passed' ] || fail "/readyz with exclusions: $CODE $(cat "$WORK/body")"
get /version
[ "$CODE" = 200 ] && grep -q gitVersion "$WORK/body" || fail "/version while starting: $CODE"
# The API, the webhook and metrics: 503 with Retry-After and a Status.
check_503() { # check_503 WHAT REASON-TEXT
  [ "$CODE" = 503 ] || { fail "$1 while starting: HTTP $CODE $(cat "$WORK/body")"; return; }
  [ "$(header Retry-After)" = 5 ] || fail "$1: Retry-After '$(header Retry-After)'"
  python3 - "$WORK/body" "$2" <<'PY' || fail "$1: body $(cat "$WORK/body")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["kind"] == "Status" and o["apiVersion"] == "v1" and o["status"] == "Failure", o
assert o["reason"] == "ServiceUnavailable" and o["code"] == 503, o
assert o["details"] == {"retryAfterSeconds": 5}, o
assert sys.argv[2] in o["message"] and "please try again" in o["message"], o
PY
}
get /apis/scope.theriseunion.io/v1alpha1/workspaces "${auth[@]}"
check_503 "a list" "storage is not open yet"
get /apis "${auth[@]}"
check_503 "discovery" "storage is not open yet"
get /authorize "${auth[@]}" -X POST -H 'Content-Type: application/json' -d "$SAR"
check_503 "the webhook" "storage is not open yet"
get /metrics "${auth[@]}"
check_503 "/metrics" "storage is not open yet"
get /apis/scope.theriseunion.io/v1alpha1/workspaces
check_503 "an anonymous list" "storage is not open yet"

###########################################################################
# Storage open, the authorizer's index being built.
touch "$WORK/open-storage"
wait_for_log "$WORK/server.log" "open at revision 0" 20
grep -q "serving on" "$WORK/server.log" && die "ready before the index checks ran: the delay hook did not work"
get "/readyz?verbose"
[ "$CODE" = 500 ] && [ "$(cat "$WORK/body")" = "[+]ping ok
[+]storage ok
[-]authorizer-index failed: reason withheld
readyz check failed" ] || fail "/readyz while the index is built: $CODE $(cat "$WORK/body")"
get /readyz/storage
[ "$CODE" = 200 ] || fail "/readyz/storage once open: $CODE $(cat "$WORK/body")"
get /readyz/authorizer-index
[ "$CODE" = 500 ] && [ "$(cat "$WORK/body")" = "internal server error: the authorizer's index is not built yet" ] ||
  fail "/readyz/authorizer-index while built: $CODE $(cat "$WORK/body")"
get /apis/scope.theriseunion.io/v1alpha1/workspaces "${auth[@]}"
check_503 "a list while the index is built" "the authorizer's index is not built yet"

###########################################################################
# Ready: everything works.
touch "$WORK/build-index"
wait_for_log "$WORK/server.log" "serving on https://127.0.0.1:$PORT" 20
for p in /readyz /healthz /livez; do
  get "$p"
  [ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = ok ] || fail "$p once ready: $CODE $(cat "$WORK/body")"
done
get "/readyz?verbose"
[ "$CODE" = 200 ] && [ "$(cat "$WORK/body")" = "[+]ping ok
[+]storage ok
[+]authorizer-index ok
readyz check passed" ] || fail "/readyz?verbose once ready: $CODE $(cat "$WORK/body")"
hack/kubeconfig.sh "$S" "$WORK/certs/ca.crt" "$ADMIN_TOKEN" > "$WORK/kubeconfig"
export KUBECONFIG=$WORK/kubeconfig
HOME=$WORK timeout 60 kubectl create -f - >/dev/null 2>"$WORK/kerr" <<'YAML' || fail "kubectl create once ready: $(cat "$WORK/kerr")"
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: started}
spec: {manager: alice}
YAML
HOME=$WORK timeout 60 kubectl get ws started -o name 2>&1 | grep -qx workspace.scope.theriseunion.io/started ||
  fail "kubectl get once ready"
get /authorize "${auth[@]}" -X POST -H 'Content-Type: application/json' -d "$SAR"
[ "$CODE" = 200 ] && grep -q '"allowed":false' "$WORK/body" || fail "the webhook once ready: $CODE $(cat "$WORK/body")"
get /metrics "${auth[@]}"
[ "$CODE" = 200 ] || fail "/metrics once ready: $CODE"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "the server exited non-zero on SIGTERM"

###########################################################################
# SIGTERM in the middle of start-up: a clean exit, promptly.
P2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EDGE_TEST_STORE_OPEN_DELAY_MS=60000 "$BIN" --bind-address 127.0.0.1 --secure-port "$P2" \
  --data-dir "$WORK/data2" --cert-dir "$WORK/certs" >"$WORK/term.log" 2>&1 &
tp=$!
PIDS+=($tp)
wait_for_log "$WORK/term.log" "listening on" 20
kill -TERM "$tp"
set +e
timeout 20 tail --pid="$tp" -f /dev/null
wait "$tp"
rc=$?
set -e
[ "$rc" = 0 ] || fail "SIGTERM during start-up: exit status $rc: $(cat "$WORK/term.log")"
grep -q "shutting down" "$WORK/term.log" || fail "SIGTERM during start-up: $(cat "$WORK/term.log")"

###########################################################################
# A store that cannot open: the process still ends non-zero with the reason.
: > "$WORK/not-a-dir"
set +e
timeout 20 "$BIN" --bind-address 127.0.0.1 --secure-port "$P2" --data-dir "$WORK/not-a-dir" \
  --cert-dir "$WORK/certs" >"$WORK/bad.log" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "a store that cannot open: exit status $rc: $(cat "$WORK/bad.log")"
grep -q "not-a-dir" "$WORK/bad.log" || fail "a store that cannot open: no reason given: $(cat "$WORK/bad.log")"
grep -q "serving on" "$WORK/bad.log" && fail "a store that cannot open: reported serving"

###########################################################################
# The release binary has no hooks: it ignores the delay.
REL=$PWD/bin/edge-apiserver
if [ -x "$REL" ] && [ "$REL" != "$BIN" ]; then
  EDGE_TEST_STORE_OPEN_DELAY_MS=60000 "$REL" --bind-address 127.0.0.1 --secure-port "$P2" \
    --data-dir "$WORK/data3" --cert-dir "$WORK/certs" >"$WORK/rel.log" 2>&1 &
  rp=$!
  PIDS+=($rp)
  wait_for_log "$WORK/rel.log" "serving on" 10
  kill -TERM "$rp"
  wait "$rp" || fail "release binary exit status"
fi

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo ok
