#!/usr/bin/env bash
# End-to-end tests: each test/e2e/test_*.sh starts the real binary and
# drives it from outside. Prints one line per test and a closing
# "N passed, N failed" line; exits non-zero when any failed.
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0 failed=()
for t in test/e2e/test_*.sh; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .sh)
  log=$(mktemp)
  if timeout 900 bash "$t" >"$log" 2>&1; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name"; sed 's/^/     /' "$log" | tail -40
  fi
  rm -f "$log"
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
