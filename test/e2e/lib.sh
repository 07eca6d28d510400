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
