# History and --etcd-compaction-interval: with a 1 s interval, history older
# than a second or two is compacted, and what needed it says so as
# kube-apiserver does (a watch from a compacted resourceVersion ends with
# Expired, a list at one or a continue token into one is 410 Expired);
# with 0, nothing is compacted; a malformed interval is refused at start.
source "$(dirname "$0")/lib.sh"
set +o pipefail
start_server --etcd-compaction-interval 1s

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
G=https://127.0.0.1:$PORT/apis/scope.theriseunion.io/v1alpha1
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")
mk() { # mk URL NAME: creates a Workspace; prints its resourceVersion.
  curl -sk "${auth[@]}" -X POST -H 'Content-Type: application/json' \
    -d "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Workspace\",\"metadata\":{\"name\":\"$2\"},\"spec\":{}}" \
    "$1/workspaces" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])'
}
# expired FILE: the body is a 410 Expired Status, or a watch stream whose
# ERROR event carries one.
cat > "$WORK/expired.py" <<'PY'
import json, sys
text = open(sys.argv[1]).read().strip()
o = json.loads(text.splitlines()[-1])
if o.get("type") == "ERROR":
    o = o["object"]
assert o["kind"] == "Status" and o["code"] == 410 and o["reason"] == "Expired", o
PY

old=$(mk "$G" a1)
mk "$G" a2 >/dev/null
token=$(curl -sk "${auth[@]}" "$G/workspaces?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["continue"])')
# Two compaction ticks later, with writes in between, $old is history.
sleep 1.2; mk "$G" a3 >/dev/null; sleep 1.2; mk "$G" a4 >/dev/null; sleep 1.2

code=$(curl -sk "${auth[@]}" -o "$WORK/w.txt" -w '%{http_code}' "$G/workspaces?watch=true&resourceVersion=$old&timeoutSeconds=2")
if [ "$code" = 410 ] || [ "$code" = 200 ]; then
  python3 "$WORK/expired.py" "$WORK/w.txt" || fail "watch from a compacted version: $code $(cat "$WORK/w.txt")"
else
  fail "watch from a compacted version: HTTP $code $(cat "$WORK/w.txt")"
fi
code=$(curl -sk "${auth[@]}" -o "$WORK/l.txt" -w '%{http_code}' "$G/workspaces?resourceVersion=$old&resourceVersionMatch=Exact")
[ "$code" = 410 ] && python3 "$WORK/expired.py" "$WORK/l.txt" || fail "list at a compacted version: $code $(cat "$WORK/l.txt")"
code=$(curl -sk "${auth[@]}" -o "$WORK/c.txt" -w '%{http_code}' "$G/workspaces?limit=1&continue=$token")
[ "$code" = 410 ] && python3 "$WORK/expired.py" "$WORK/c.txt" || fail "continue into compacted history: $code $(cat "$WORK/c.txt")"
# The present is still there: a list and a watch from now work.
n=$(curl -sk "${auth[@]}" "$G/workspaces" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n" = 4 ] || fail "list after compaction: $n items"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

# 0 keeps every version: the first one still replays after the same wait.
P2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --bind-address 127.0.0.1 --secure-port "$P2" --data-dir "$WORK/data0" --cert-dir "$WORK/certs" \
  --token-auth-file "$WORK/tokens.csv" --etcd-compaction-interval 0 >"$WORK/s0.log" 2>&1 &
PIDS+=($!)
wait_for_log "$WORK/s0.log" "serving on"
G0=https://127.0.0.1:$P2/apis/scope.theriseunion.io/v1alpha1
first=$(mk "$G0" b1)
sleep 1.2; mk "$G0" b2 >/dev/null; sleep 1.2; mk "$G0" b3 >/dev/null; sleep 1.2
curl -sk "${auth[@]}" "$G0/workspaces?watch=true&resourceVersion=$((first - 1))&timeoutSeconds=1" > "$WORK/w0.txt"
names=$(python3 -c '
import json, sys
print(" ".join(json.loads(l)["object"]["metadata"]["name"] for l in open(sys.argv[1]) if l.strip()))' "$WORK/w0.txt")
[ "$names" = "b1 b2 b3" ] || fail "with compaction off, a watch from the start saw: $names"

# A malformed interval is refused, with the flag named.
set +e
"$BIN" --etcd-compaction-interval 10 --data-dir "$WORK/data9" >"$WORK/bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q -- "--etcd-compaction-interval" "$WORK/bad.log" || fail "a bare number was not refused: $(cat "$WORK/bad.log")"

[ "$FAILS" -eq 0 ] || die "$FAILS compaction checks failed"
echo "compaction ok"
