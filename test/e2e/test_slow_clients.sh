# Slow clients (slowloris): thousands of TLS connections that send their
# request head a byte a second are each closed once the read-header
# timeout (here --read-header-timeout 30s, kube-apiserver's 32 s by
# default) has passed since they connected, however steadily they send;
# while they are all connected, curl and kubectl requests are answered in
# under a second. A kept-alive connection that finished a request and then
# says nothing is left alone (the idle timeout governs it); one that sends
# the next request line and then trickles that request's headers is closed
# the read-header timeout after its request line.
source "$(dirname "$0")/lib.sh"
set +o pipefail

DEADLINE=30
WANT=2000
# Each slow client holds a descriptor in this shell's children (the Python
# client) and one in the server.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
LIMIT=$(ulimit -n)
COUNT=$WANT
if [ "$LIMIT" != unlimited ] && [ $((LIMIT - 300)) -lt "$WANT" ]; then
  COUNT=$((LIMIT - 300))
  echo "note: open-file limit $LIMIT: $COUNT slow clients instead of $WANT"
fi

start_server --read-header-timeout "${DEADLINE}s"
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")
G=https://127.0.0.1:$PORT/apis/scope.theriseunion.io/v1alpha1
curl -sk "${auth[@]}" -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"w1"},"spec":{"manager":"alice"}}' \
  "$G/workspaces"
fds() { ls "/proc/$SERVER_PID/fd" | wc -l; }
base_fds=$(fds)

python3 test/e2e/slowloris.py --port "$PORT" --count "$COUNT" --interval 1 --duration 120 \
  --keepalive --ready-file "$WORK/ready" > "$WORK/slow.json" 2> "$WORK/slow.err" &
SLOW=$!
PIDS+=($SLOW)
i=0
while [ ! -s "$WORK/ready" ]; do
  i=$((i + 1)); [ $i -le 900 ] || die "the slow clients did not open in 90 s: $(cat "$WORK/slow.err")"
  kill -0 "$SLOW" 2>/dev/null || die "the slow client script ended early: $(cat "$WORK/slow.err")"
  sleep 0.1
done
read -r open_s open_now < "$WORK/ready"
echo "$COUNT slow clients opened in ${open_s} s; $open_now open at once; server fds $(fds)"
[ "$open_now" -eq "$COUNT" ] ||
  die "only $open_now of $COUNT slow clients were open at once (opening took ${open_s} s, deadline ${DEADLINE} s)"
[ "$(fds)" -ge "$COUNT" ] || die "the server holds $(fds) descriptors with $COUNT clients connected"

# Normal requests while every slow client is connected: each under a second.
slowest=0
for n in 1 2 3; do
  for url in "https://127.0.0.1:$PORT/healthz" "$G/workspaces" "$G/workspaces/w1"; do
    out=$(curl -sk "${auth[@]}" -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "$url")
    code=${out% *} t=${out#* }
    [ "$code" = 200 ] || die "$url during the attack: HTTP $code"
    ms=$(python3 -c "print(int(float('$t') * 1000))")
    [ "$ms" -lt 1000 ] || die "$url took $t s during the attack"
    [ "$ms" -le "$slowest" ] || slowest=$ms
  done
  # kubectl: each of its round trips, as it logs them at -v=6.
  HOME=$WORK timeout 30 kubectl get ws w1 -v=6 > "$WORK/kubectl.out" 2>&1 || die "kubectl get during the attack: $(cat "$WORK/kubectl.out")"
  for ms in $(grep -o 'OK in [0-9]* milliseconds' "$WORK/kubectl.out" | awk '{print $3}'); do
    [ "$ms" -lt 1000 ] || die "a kubectl request took $ms ms during the attack: $(cat "$WORK/kubectl.out")"
    [ "$ms" -le "$slowest" ] || slowest=$ms
  done
  grep -q '^w1 ' "$WORK/kubectl.out" || die "kubectl get ws w1: $(cat "$WORK/kubectl.out")"
done
echo "slowest normal request during the attack: $slowest ms"

# Every slow client closed by the server at its deadline, not before.
i=0
while kill -0 "$SLOW" 2>/dev/null; do
  i=$((i + 1)); [ $i -le 1200 ] || die "the slow clients were not all closed in 120 s"
  sleep 0.1
done
wait "$SLOW" || die "slowloris.py failed: $(cat "$WORK/slow.err")"
python3 - "$WORK/slow.json" "$COUNT" "$DEADLINE" <<'PY' || die "slow clients: $(head -c 600 "$WORK/slow.json")"
import json, sys
r = json.load(open(sys.argv[1]))
count, deadline = int(sys.argv[2]), float(sys.argv[3])
ca = r["closed_after"]
print("closed %d of %d, %.2f to %.2f s after connecting; idle kept-alive open: %s; "
      "second head closed %s s after its request line"
      % (r["closed"], r["opened"], ca[0], ca[-1], r["idle_open_at_end"], r["second_head_closed_after"]))
assert r["opened"] == count and r["failed"] == 0, "not all opened"
assert r["closed"] == count and r["open_at_end"] == 0, "not all closed"
# The server's clock starts at accept, after the client's: never early;
# the reaper looks four times a second: late by little.
assert ca[0] >= deadline - 0.05, "closed before the deadline"
assert ca[-1] <= deadline + 5, "closed long after the deadline"
assert r["idle_open_at_end"], "an idle kept-alive connection was closed by the read-header timeout"
s = r["second_head_closed_after"]
assert s is not None and deadline - 0.05 <= s <= deadline + 5, "a slow second head on a kept-alive connection"
PY

# The server let go of them, and still serves.
i=0
while [ "$(fds)" -gt $((base_fds + 20)) ]; do
  i=$((i + 1)); [ $i -le 100 ] || die "the server still holds $(fds) descriptors (at start: $base_fds)"
  sleep 0.1
done
[ "$(curl -sk "https://127.0.0.1:$PORT/readyz")" = ok ] || die "not ready after the attack"
kill -0 "$SERVER_PID" || die "the server died"
if grep -v -e 'edge-apiserver: ' "$WORK/server.log" | grep -q .; then
  die "unexpected server output: $(grep -v -e 'edge-apiserver: ' "$WORK/server.log" | head -5)"
fi
echo "ok"
