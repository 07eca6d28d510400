# The audit log (--audit-log-path) records one audit.k8s.io/v1 Event per
# request with user, verb, object, code and the authorization decision;
# --max-requests-inflight answers 429 with Retry-After past its limit while
# watches are not counted.
source "$(dirname "$0")/lib.sh"
start_server --audit-log-path "$WORK/audit.log" --max-requests-inflight 2
URL=https://127.0.0.1:$PORT

kubectl get ws >/dev/null
code=$(curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer alice-token' "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces")
[ "$code" = 403 ] || die "alice list: $code"
curl -sk -o /dev/null "$URL/healthz"
sleep 0.3
/usr/bin/python3 - "$WORK/audit.log" <<'PY' || die "audit log: $(cat "$WORK/audit.log")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert all(e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1" and e["auditID"] for e in ev), ev
assert not any(e["requestURI"] == "/healthz" for e in ev), "health probes are not audited"
got = {(e["user"]["username"], e["verb"], e["responseStatus"]["code"],
        e["annotations"]["authorization.k8s.io/decision"], e["objectRef"]["resource"])
       for e in ev if "objectRef" in e}
assert ("admin", "list", 200, "allow", "workspaces") in got, got
assert ("alice", "list", 403, "forbid", "workspaces") in got, got
refs = [e["objectRef"] for e in ev if "objectRef" in e]
assert all(r["apiGroup"] == "scope.theriseunion.io" and r["apiVersion"] == "v1alpha1" for r in refs), refs
PY

# Watches hold no in-flight slot: two long watches, then ordinary requests still pass.
for i in 1 2; do
  curl -sk -N -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces?watch=true&timeoutSeconds=20" >/dev/null &
done
sleep 0.5
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/apis/scope.theriseunion.io/v1alpha1/workspaces")
[ "$code" = 200 ] || die "request beside two watches: $code"
# Sixteen connections of durable creates against a limit of 2: writes wait
# for their commit, so they overlap, and the excess is turned away with 429
# while the rest are served.
BENCH_MODE=create BENCH_TOKEN=$ADMIN_TOKEN BENCH_PREFIX=inflight \
  wrk -t1 -c16 -d2s -s test/bench/http_wrk.lua "$URL" > "$WORK/wrk.txt" 2>&1 || die "wrk: $(cat "$WORK/wrk.txt")"
line=$(grep '^RESULT' "$WORK/wrk.txt") || die "wrk: $(cat "$WORK/wrk.txt")"
ok=$(echo "$line" | sed 's/.* ok=\([0-9]*\).*/\1/'); bad=$(echo "$line" | sed 's/.* bad=\([0-9]*\).*/\1/')
[ "$ok" -gt 0 ] && [ "$bad" -gt 0 ] || die "limit not enforced: $line"
grep -q '429' "$WORK/wrk.txt" || die "turned-away requests were not 429: $(cat "$WORK/wrk.txt")"
