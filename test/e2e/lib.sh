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
