# SIGTERM ends the server gracefully: it stops accepting connections,
# lets a request in flight finish (a create whose body is still coming
# in is answered 201, and what it wrote is there after a restart), ends
# every watch cleanly (each stream ends with the chunked terminator, so
# curl exits 0), then exits 0 within seconds, with nothing from the
# sanitizers (memory errors, undefined behaviour, leaks at exit).
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_server

G=/apis/scope.theriseunion.io/v1alpha1
S=https://127.0.0.1:$PORT
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")
watchers() { curl -sk "${auth[@]}" "$S/metrics" | awk '$1 == "edge_storage_watchers" {print $2}'; }
code=$(curl -sk "${auth[@]}" -X POST -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
  -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"before"},"spec":{"manager":"m"}}' \
  "$S$G/workspaces")
[ "$code" = 201 ] || die "create: HTTP $code"
base=$(watchers)

# Three watches: each gets the ADDED of "before", then waits.
watch_pids=()
for i in 1 2 3; do
  curl -sNk "${auth[@]}" "$S$G/workspaces?watch=true" > "$WORK/watch-$i" 2> "$WORK/watch-$i.err" &
  watch_pids+=($!); PIDS+=($!)
done
i=0
while [ "$(watchers)" != $((base + 3)) ]; do
  i=$((i + 1)); [ $i -le 100 ] || die "the watches did not start: watchers $(watchers), base $base"
  sleep 0.1
done

# A request in flight: a create whose head and half its body are sent;
# the rest comes only after the SIGTERM.
cat > "$WORK/inflight.py" <<'PY'
import json, os, socket, ssl, sys, time
port, token, ready, go = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=30))
body = json.dumps({"apiVersion": "scope.theriseunion.io/v1alpha1", "kind": "Workspace",
                   "metadata": {"name": "inflight"}, "spec": {"manager": "m"}}).encode()
head = ("POST /apis/scope.theriseunion.io/v1alpha1/workspaces HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
        "Content-Length: %d\r\n\r\n" % (token, len(body))).encode()
half = len(body) // 2
s.sendall(head + body[:half])
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
try:
    s.sendall(body[half:])
    resp = b""
    while b"\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
except OSError as e:
    print("error:", e)
    sys.exit(1)
print(resp.split(b"\r\n", 1)[0].decode() if resp else "no response")
PY
python3 "$WORK/inflight.py" "$PORT" "$ADMIN_TOKEN" "$WORK/ready" "$WORK/go" > "$WORK/inflight.out" 2>&1 &
inflight=$!
PIDS+=($inflight)
i=0
until [ -e "$WORK/ready" ]; do
  i=$((i + 1)); [ $i -le 100 ] || die "the in-flight request did not start: $(cat "$WORK/inflight.out")"
  sleep 0.1
done
sleep 0.3

t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"
# The server waits for the request in flight; its body comes a second later.
sleep 1
touch "$WORK/go"
set +e
wait "$inflight"
inflight_rc=$?
timeout 20 tail --pid="$SERVER_PID" -f /dev/null
wait "$SERVER_PID"
rc=$?
took=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
watch_rcs=()
for p in "${watch_pids[@]}"; do
  timeout 10 tail --pid="$p" -f /dev/null
  wait "$p"
  watch_rcs+=($?)
done
set -e
echo "the server exited $rc after ${took}s; watch clients exited ${watch_rcs[*]}; in flight: $(cat "$WORK/inflight.out")"

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
[ "$rc" = 0 ] || fail "the server exited $rc on SIGTERM: $(tail -40 "$WORK/server.log")"
python3 -c "import sys; sys.exit(0 if $took <= 8 else 1)" || fail "the server took ${took}s to exit"
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer" "$WORK/server.log"; then
  fail "sanitizer report: $(cat "$WORK/server.log")"
fi
for i in 1 2 3; do
  [ "${watch_rcs[$((i - 1))]}" = 0 ] || fail "watch $i: curl exited ${watch_rcs[$((i - 1))]} (the stream did not end cleanly): $(cat "$WORK/watch-$i.err")"
  grep -q '"type":"ADDED".*"name":"before"' "$WORK/watch-$i" || fail "watch $i: $(cat "$WORK/watch-$i")"
done
[ "$inflight_rc" = 0 ] && grep -q "^HTTP/1.1 201" "$WORK/inflight.out" ||
  fail "the request in flight at SIGTERM: $(cat "$WORK/inflight.out")"

# What the request in flight wrote is there after a restart.
mv "$WORK/server.log" "$WORK/server-1.log"
start_server
code=$(curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" -o /dev/null -w '%{http_code}' \
  "https://127.0.0.1:$PORT$G/workspaces/inflight")
[ "$code" = 200 ] || fail "after a restart, GET the workspace created in flight: HTTP $code"

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "shutdown ok"
