# A watch whose client went away is ended within seconds, also while
# nothing it selects changes: its connection is closed (no socket left in
# CLOSE-WAIT) and its store watcher freed (edge_storage_watchers in
# /metrics back where it was), as kube-apiserver ends a watch when its
# client goes. A watch whose client stays is left alone and still gets
# its events.
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_server

G=https://127.0.0.1:$PORT/apis/scope.theriseunion.io/v1alpha1
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")
watchers() {
  curl -sk "${auth[@]}" "https://127.0.0.1:$PORT/metrics" | awk '$1 == "edge_storage_watchers" {print $2}'
}
# wait_watchers N SECONDS: until the gauge reads N; fails after SECONDS.
wait_watchers() {
  local want=$1 t=$2 i=0 got
  while got=$(watchers); [ "$got" != "$want" ]; do
    i=$((i + 1)); [ $i -le $((t * 10)) ] || return 1
    sleep 0.1
  done
}
close_wait() { # server sockets of this port in CLOSE-WAIT
  ss -Htn state close-wait "( sport = :$PORT )" 2>/dev/null | wc -l
}

base=$(watchers)
[ -n "$base" ] || die "no edge_storage_watchers in /metrics"
# Five quiet watches (nothing carries the label) and one that stays.
QUIET="$G/workspaces?watch=true&labelSelector=quiet%3Dyes"
gone=()
for i in 1 2 3 4 5; do
  curl -sNk "${auth[@]}" "$QUIET" > "$WORK/gone-$i" 2>&1 &
  gone+=($!); PIDS+=($!)
done
curl -sNk "${auth[@]}" "$QUIET" > "$WORK/stays" 2>&1 &
PIDS+=($!)
wait_watchers $((base + 6)) 10 || die "the six watches did not start: watchers $(watchers), base $base"

# The clients go away (as "timeout 1 curl -N ..." would).
{ kill -TERM "${gone[@]}"; wait "${gone[@]}"; } 2>/dev/null || true
t0=$(date +%s.%N)
wait_watchers $((base + 1)) 5 ||
  die "watchers of gone clients not freed within 5 s: edge_storage_watchers $(watchers), want $((base + 1)); CLOSE-WAIT sockets: $(close_wait)"
echo "freed after $(python3 -c "import time; print(round(time.time() - $t0, 1))") s"
if command -v ss >/dev/null; then
  [ "$(close_wait)" = 0 ] || die "$(close_wait) server socket(s) left in CLOSE-WAIT"
fi

# The watch that stayed still works.
code=$(curl -sk "${auth[@]}" -X POST -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
  -d '{"apiVersion":"scope.theriseunion.io/v1alpha1","kind":"Workspace","metadata":{"name":"loud","labels":{"quiet":"yes"}},"spec":{"manager":"m"}}' \
  "$G/workspaces")
[ "$code" = 201 ] || die "create: HTTP $code"
wait_for_log "$WORK/stays" '"name":"loud"' 5
grep -q '"type":"ADDED"' "$WORK/stays" || die "the staying watch: $(cat "$WORK/stays")"
[ "$(watchers)" = $((base + 1)) ] || die "watchers $(watchers) with one watch open, want $((base + 1))"
kill -0 "$SERVER_PID" || die "the server died"
echo "watch gone ok"
