# Shared helpers for the end-to-end tests; sourced, not run.
set -euo pipefail
BIN=${BIN:-$PWD/bin/edge-apiserver}
WORK=$(mktemp -d /tmp/edge-e2e-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "FAIL: $*" >&2; exit 1; }
check() { local what=$1; shift; "$@" || die "$what"; }

# wait_for_log FILE PATTERN [SECONDS]: waits until FILE contains PATTERN.
wait_for_log() {
  local f=$1 pat=$2 t=${3:-10} i=0
  while ! grep -q -- "$pat" "$f" 2>/dev/null; do
    i=$((i + 1)); [ $i -le $((t * 10)) ] || die "timed out waiting for '$pat' in $f: $(cat "$f")"
    sleep 0.1
  done
}

# start_server [extra flags]: starts the binary on a free port with a
# token file (admin in system:masters, alice without groups, and the
# lines of $EXTRA_TOKENS when set) and writes
# $WORK/kubeconfig (admin) and $WORK/alice.kubeconfig. Sets PORT and SERVER_PID.
start_server() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ADMIN_TOKEN=admin-token-$RANDOM$RANDOM
  cat > "$WORK/tokens.csv" <<CSV
$ADMIN_TOKEN,admin,admin-uid,"system:masters"
alice-token,alice,alice-uid
${EXTRA_TOKENS:-}
CSV
  # Emptied here, not by the redirection below, which runs in the
  # background: a restart must not find the last server's "serving on".
  : > "$WORK/server.log"
  "$BIN" --bind-address 127.0.0.1 --secure-port "$PORT" --data-dir "$WORK/data" \
    --cert-dir "$WORK/certs" --token-auth-file "$WORK/tokens.csv" "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=($SERVER_PID)
  wait_for_log "$WORK/server.log" "serving on" 20
  hack/kubeconfig.sh "https://127.0.0.1:$PORT" "$WORK/certs/ca.crt" "$ADMIN_TOKEN" > "$WORK/kubeconfig"
  hack/kubeconfig.sh "https://127.0.0.1:$PORT" "$WORK/certs/ca.crt" alice-token > "$WORK/alice.kubeconfig"
  export KUBECONFIG=$WORK/kubeconfig
}

# k VERSION args...: kubectl of a given minor version ("" for /usr/bin/kubectl).
k() {
  local v=$1; shift
  if [ -z "$v" ]; then kubectl "$@"; else "/usr/lib/google-cloud-sdk/bin/kubectl.$v" "$@"; fi
}

# expect_fail "what" cmd...: the command must fail.
expect_fail() { local what=$1; shift; if "$@" >"$WORK/out" 2>&1; then die "$what: succeeded: $(cat "$WORK/out")"; fi; }

# ---- checks that keep going: each failure is counted, the test ends with
# [ "$FAILS" -eq 0 ] || die ...
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# req METHOD URL [curl args]: sets CODE; body in $WORK/body, headers in
# $WORK/hdr; sends the curl arguments of the array AUTH (set it first).
req() {
  local m=$1 u=$2; shift 2
  CODE=$(timeout 20 curl -sk -X "$m" "${AUTH[@]}" -D "$WORK/hdr" -o "$WORK/body" -w '%{http_code}' "$@" "$u" || true)
}
shown() { echo "$CODE $(head -c 600 "$WORK/body")"; }
header() { grep -i "^$1:" "$WORK/hdr" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
# check_json "what" PYTHON-EXPR: the expression, over o (the JSON body),
# code (int) and ctype (Content-Type), must hold.
check_json() {
  local what=$1 expr=$2
  python3 - "$WORK/body" "$CODE" "$(header Content-Type)" "$expr" <<'PY' 2>"$WORK/pyerr" || fail "$what: $(shown) $(tail -1 "$WORK/pyerr")"
import json, sys
body, code, ctype, expr = open(sys.argv[1]).read(), int(sys.argv[2] or 0), sys.argv[3], sys.argv[4]
o = json.loads(body)
if not eval("(" + expr + "\n)"):
    sys.exit("does not hold: " + expr)
PY
}
# status "what" CODE REASON [EXTRA-EXPR]: a Failure Status with that code and reason.
status() {
  local what=$1 code=$2 reason=$3 extra=${4:-True}
  [ "$CODE" = "$code" ] || { fail "$what: HTTP $(shown), want $code $reason"; return; }
  check_json "$what" "ctype.startswith('application/json') and o['kind'] == 'Status' and o['apiVersion'] == 'v1' \
    and o['status'] == 'Failure' and o['code'] == $code and o['reason'] == '$reason' and o['message'] and ($extra)"
}

# start_etcd: an etcd of the test's own on loopback (Debian's, or
# $ETCD_BIN), data in $WORK/etcd; sets EURL to its client URL.
start_etcd() {
  local etcd=${ETCD_BIN:-/usr/bin/etcd} cp pp i
  [ -x "$etcd" ] || die "no etcd at $etcd"
  cp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  EURL=http://127.0.0.1:$cp
  "$etcd" --data-dir "$WORK/etcd" --listen-client-urls "$EURL" --advertise-client-urls "$EURL" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "default=http://127.0.0.1:$pp" >"$WORK/etcd.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do
    curl -sf "$EURL/health" 2>/dev/null | grep -q true && return 0
    sleep 0.1
  done
  die "etcd did not come up: $(tail -5 "$WORK/etcd.log")"
}
