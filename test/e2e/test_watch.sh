# Watch, as kubectl and raw HTTP clients use it: kubectl get -w (list, then
# only later changes; a single object; --output-watch-events), the
# resourceVersion forms (0: synthetic ADDED for what exists; a given
# version: only later events, replayed in order with the right types,
# whether the watch starts before or after the writes), field and label
# selectors (an object leaving a label selector is DELETED for it),
# namespaced watches, timeoutSeconds, a garbage resourceVersion (400
# Status), sendInitialEvents ending with the initial-events-end BOOKMARK,
# and Table watch events for kubectl's Accept header.
# Every check runs; the failures are listed at the end.
source "$(dirname "$0")/lib.sh"
# A pipeline's status is its last command's: "cmd | grep -q" must not
# fail because grep stopped reading early.
set +o pipefail
# Exact event sequences are asserted: the controllers' status writes
# (MODIFIED events of their own) are kept out; test_controllers.sh has them.
start_server --controllers=*,-workspace,-nodegroup,-iamrole,-application,-applicationdeployment

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
kc() { timeout 60 kubectl "$@"; }
G=https://127.0.0.1:$PORT/apis/scope.theriseunion.io/v1alpha1
APP=https://127.0.0.1:$PORT/apis/app.theriseunion.io/v1alpha1
auth=(-H "Authorization: Bearer $ADMIN_TOKEN")
TABLE='Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json'

ws() { # ws NAME MANAGER [LABELS-JSON]: creates a Workspace over HTTP.
  local labels=${3:-'{}'}
  curl -sk "${auth[@]}" -X POST -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
    -d "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Workspace\",\"metadata\":{\"name\":\"$1\",\"labels\":$labels},\"spec\":{\"manager\":\"$2\"}}" \
    "$G/workspaces" | grep -qx 201 || fail "create workspace $1"
}
list_rv() { curl -sk "${auth[@]}" "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])'; }
# bg_watch FILE URL [curl args]: a raw watch in the background (ends by itself within 10 s).
bg_watch() { local f=$1 u=$2; shift 2; timeout 10 curl -sNk "${auth[@]}" "$@" "$u" > "$f" 2>&1 & PIDS+=($!); }
# events FILE: "TYPE name field" per event (field: spec.manager, or rows for Tables).
cat > "$WORK/events.py" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    e = json.loads(line)
    o = e["object"]
    if o.get("kind") == "Table":
        print(e["type"], "TABLE", json.dumps([r["cells"][:2] for r in o["rows"]]))
    elif e["type"] in ("BOOKMARK", "ERROR"):
        print(e["type"], o.get("kind"), json.dumps(o.get("metadata", {}).get("annotations", {}) or o.get("code"), sort_keys=True))
    else:
        print(e["type"], o["metadata"]["name"], (o.get("spec") or {}).get("manager", "-"))
PY
events() { python3 "$WORK/events.py" "$1" 2>&1; }
# wait_lines FILE N: waits up to 8 s for FILE to have N lines.
wait_lines() { local i=0; while [ "$(wc -l < "$1")" -lt "$2" ] && [ $i -lt 80 ]; do sleep 0.1; i=$((i + 1)); done; }

ws pre-a alice '{"team":"red"}'
ws pre-b bob

###########################################################################
# kubectl get -w (default kubectl and 1.27): the list, then only changes.
for v in "" 1.27; do
  bin=kubectl; [ -z "$v" ] || bin=/usr/lib/google-cloud-sdk/bin/kubectl.$v
  tag=${v:-default}
  timeout 30 "$bin" get ws -w > "$WORK/kw-$tag" 2>&1 & PIDS+=($!); echo $! > "$WORK/kw-$tag.pid"
  timeout 30 "$bin" get ws pre-a -w > "$WORK/kw1-$tag" 2>&1 & PIDS+=($!); echo $! > "$WORK/kw1-$tag.pid"
  timeout 30 "$bin" get ws -w --output-watch-events > "$WORK/kwe-$tag" 2>&1 & PIDS+=($!); echo $! > "$WORK/kwe-$tag.pid"
done
for v in default 1.27; do wait_lines "$WORK/kw-$v" 3; wait_lines "$WORK/kw1-$v" 2; wait_lines "$WORK/kwe-$v" 3; done
ws live bob
kc patch ws live --type=merge -p '{"spec":{"manager":"carol"}}' >/dev/null || fail "patch live"
kc patch ws pre-a --type=merge -p '{"spec":{"manager":"dave"}}' >/dev/null || fail "patch pre-a"
kc delete ws live --wait=false >/dev/null || fail "delete live"
for v in default 1.27; do wait_lines "$WORK/kw-$v" 7; wait_lines "$WORK/kw1-$v" 3; wait_lines "$WORK/kwe-$v" 7; done
sleep 0.5
for v in default 1.27; do
  for f in kw kw1 kwe; do kill "$(cat "$WORK/$f-$v.pid")" 2>/dev/null || true; done
  # The list, each object once, then one line per change, in order.
  got=$(awk '{print $1, $2}' "$WORK/kw-$v")
  want="NAME MANAGER
pre-a alice
pre-b bob
live bob
live carol
pre-a dave
live carol"
  [ "$got" = "$want" ] || fail "kubectl $v get ws -w printed:
$(cat "$WORK/kw-$v")
want (NAME MANAGER):
$want"
  # One object: printed once, then only its own changes.
  got=$(awk '{print $1, $2}' "$WORK/kw1-$v")
  [ "$got" = "NAME MANAGER
pre-a alice
pre-a dave" ] || fail "kubectl $v get ws pre-a -w printed:
$(cat "$WORK/kw1-$v")"
  # --output-watch-events names the event types.
  got=$(awk '{print $1, $2, $3}' "$WORK/kwe-$v")
  want="EVENT NAME MANAGER
ADDED pre-a alice
ADDED pre-b bob
ADDED live bob
MODIFIED live carol
MODIFIED pre-a dave
DELETED live carol"
  [ "$got" = "$want" ] || fail "kubectl $v get ws -w --output-watch-events printed:
$(cat "$WORK/kwe-$v")
want:
$want"
done

###########################################################################
# resourceVersion=0: one synthetic ADDED per existing object, then live.
bg_watch "$WORK/rv0" "$G/workspaces?watch=true&resourceVersion=0&timeoutSeconds=3"
wait_lines "$WORK/rv0" 2
ws after0 erin
wait_lines "$WORK/rv0" 3
got=$(events "$WORK/rv0" | sort)
[ "$got" = "$(printf 'ADDED after0 erin\nADDED pre-a dave\nADDED pre-b bob')" ] \
  || fail "watch resourceVersion=0 events: $got"

# watch=1 is accepted like watch=true.
timeout 5 curl -sNk "${auth[@]}" "$G/workspaces?watch=1&resourceVersion=0&timeoutSeconds=1" > "$WORK/w1" || true
[ "$(events "$WORK/w1" | grep -c '^ADDED ')" = 3 ] || fail "watch=1: $(cat "$WORK/w1")"

###########################################################################
# A given resourceVersion: only what happened after it, in order, with the
# right types; the same sequence whether the watch is open during the
# writes or started after them (replayed from history).
rv=$(list_rv "$G/workspaces")
bg_watch "$WORK/live" "$G/workspaces?watch=true&resourceVersion=$rv&timeoutSeconds=4"
bg_watch "$WORK/live-x" "$G/workspaces?watch=true&resourceVersion=$rv&timeoutSeconds=4&fieldSelector=metadata.name%3Dx"
bg_watch "$WORK/live-red" "$G/workspaces?watch=true&resourceVersion=$rv&timeoutSeconds=4&labelSelector=team%3Dred"
sleep 0.5
ws x frank
kc patch ws x --type=merge -p '{"spec":{"manager":"gina"}}' >/dev/null || fail "patch x"
ws y hank
kc delete ws x --wait=false >/dev/null || fail "delete x"
kc label ws y team=red >/dev/null || fail "label y"
kc label ws pre-a team=blue --overwrite >/dev/null || fail "relabel pre-a"
wait_lines "$WORK/live" 6
want="ADDED x frank
MODIFIED x gina
ADDED y hank
DELETED x gina
MODIFIED y hank
MODIFIED pre-a dave"
got=$(events "$WORK/live")
[ "$got" = "$want" ] || fail "watch from resourceVersion $rv (live) events:
$got
want:
$want"
timeout 5 curl -sNk "${auth[@]}" "$G/workspaces?watch=true&resourceVersion=$rv&timeoutSeconds=1" > "$WORK/replay" || true
got=$(events "$WORK/replay")
[ "$got" = "$want" ] || fail "watch from resourceVersion $rv (replayed) events:
$got
want:
$want"
# Each event carries kind, apiVersion and a resourceVersion above the
# start and above the previous event's; DELETED carries the deletion's.
python3 - "$WORK/replay" "$rv" <<'PY' || fail "watch event objects: $(cut -c1-300 "$WORK/replay")"
import json, sys
last = int(sys.argv[2])
for line in open(sys.argv[1]):
    e = json.loads(line)
    o = e["object"]
    assert o["kind"] == "Workspace" and o["apiVersion"] == "scope.theriseunion.io/v1alpha1", o
    r = int(o["metadata"]["resourceVersion"])
    assert r > last, (e["type"], r, last)
    last = r
PY
# The field selector: x only.
got=$(events "$WORK/live-x")
[ "$got" = "$(printf 'ADDED x frank\nMODIFIED x gina\nDELETED x gina')" ] \
  || fail "watch fieldSelector=metadata.name=x events: $got"
# The label selector team=red: y enters it (ADDED), pre-a leaves it (DELETED).
got=$(events "$WORK/live-red")
[ "$got" = "$(printf 'ADDED y hank\nDELETED pre-a dave')" ] \
  || fail "watch labelSelector=team=red events (want ADDED y when labelled, DELETED pre-a when relabelled): $got"

###########################################################################
# A namespaced kind: a namespace's watch sees only that namespace; the
# all-namespaces watch sees both.
rv=$(list_rv "$APP/applicationdeployments")
bg_watch "$WORK/ns-shop" "$APP/namespaces/shop/applicationdeployments?watch=true&resourceVersion=$rv&timeoutSeconds=3"
bg_watch "$WORK/ns-all" "$APP/applicationdeployments?watch=true&resourceVersion=$rv&timeoutSeconds=3"
sleep 0.3
for ns in shop bank; do
  printf 'apiVersion: app.theriseunion.io/v1alpha1\nkind: ApplicationDeployment\nmetadata: {name: d-%s, namespace: %s}\nspec: {application: web, version: latest}\n' "$ns" "$ns" \
    | kc create -f - >/dev/null || fail "create deployment in $ns"
done
wait_lines "$WORK/ns-all" 2
[ "$(events "$WORK/ns-shop")" = "ADDED d-shop -" ] || fail "namespace watch: $(events "$WORK/ns-shop")"
[ "$(events "$WORK/ns-all")" = "$(printf 'ADDED d-shop -\nADDED d-bank -')" ] || fail "all-namespaces watch: $(events "$WORK/ns-all")"

###########################################################################
# timeoutSeconds ends the stream on time, cleanly.
start=$(date +%s.%N)
set +e; timeout 10 curl -sNk "${auth[@]}" "$G/nodegroups?watch=true&timeoutSeconds=2" > "$WORK/to"; rc=$?; set -e
took=$(python3 -c "import time; print(round(time.time() - $start, 1))")
[ "$rc" = 0 ] || fail "watch with timeoutSeconds=2: curl exit $rc (stream not ended cleanly, or not ended within 10 s)"
python3 -c "import sys; sys.exit(0 if 1.5 <= $took <= 4 else 1)" || fail "watch with timeoutSeconds=2 ended after ${took}s"

###########################################################################
# A garbage resourceVersion: 400 BadRequest Status, before any event.
code=$(timeout 5 curl -sk "${auth[@]}" -o "$WORK/bad" -w '%{http_code}' "$G/workspaces?watch=true&resourceVersion=garbage" || true)
python3 - "$WORK/bad" <<'PY' && [ "$code" = 400 ] || fail "watch resourceVersion=garbage: $code $(cat "$WORK/bad")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["kind"] == "Status" and s["status"] == "Failure" and s["code"] == 400 and s["reason"] == "BadRequest", s
PY

###########################################################################
# sendInitialEvents: ADDED per existing object, then a BOOKMARK marked
# k8s.io/initial-events-end at a resourceVersion covering them, then live.
before=$(list_rv "$G/workspaces")
bg_watch "$WORK/initial" "$G/workspaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=3"
wait_lines "$WORK/initial" 5
ws after-initial ivan
wait_lines "$WORK/initial" 6
python3 - "$WORK/initial" "$before" <<'PY' || fail "sendInitialEvents stream: $(cut -c1-400 "$WORK/initial")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
types = [e["type"] for e in evs]
names = [e["object"]["metadata"].get("name") for e in evs]
assert types[:4] == ["ADDED"] * 4, types
assert sorted(names[:4]) == ["after0", "pre-a", "pre-b", "y"], names
b = evs[4]
assert b["type"] == "BOOKMARK", types
assert b["object"]["kind"] == "Workspace" and b["object"]["apiVersion"] == "scope.theriseunion.io/v1alpha1", b
assert b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true", b
assert int(b["object"]["metadata"]["resourceVersion"]) >= int(sys.argv[2]), (b, sys.argv[2])
live = [(e["type"], e["object"]["metadata"].get("name")) for e in evs[5:] if e["type"] != "BOOKMARK"]
assert live == [("ADDED", "after-initial")], live
PY
# Without resourceVersionMatch=NotOlderThan it is refused with a Status.
code=$(timeout 5 curl -sk "${auth[@]}" -o "$WORK/bad" -w '%{http_code}' "$G/workspaces?watch=true&sendInitialEvents=true&allowWatchBookmarks=true" || true)
case $code in 4??) grep -q '"kind":"Status"' "$WORK/bad" || fail "sendInitialEvents without resourceVersionMatch: $code $(cat "$WORK/bad")";;
  *) fail "sendInitialEvents without resourceVersionMatch: $code, want a 4xx Status";; esac

###########################################################################
# Watch as Table (kubectl's Accept header): every event is a Table with the
# one changed row; the first carries the column definitions.
rv=$(list_rv "$G/workspaces")
bg_watch "$WORK/table" "$G/workspaces?watch=true&resourceVersion=$rv&timeoutSeconds=3" -H "$TABLE"
sleep 0.3
ws tab judy
kc patch ws tab --type=merge -p '{"spec":{"manager":"kim"}}' >/dev/null || fail "patch tab"
kc delete ws tab --wait=false >/dev/null || fail "delete tab"
wait_lines "$WORK/table" 3
got=$(events "$WORK/table")
want='ADDED TABLE [["tab", "judy"]]
MODIFIED TABLE [["tab", "kim"]]
DELETED TABLE [["tab", "kim"]]'
[ "$got" = "$want" ] || fail "Table watch events:
$got
want:
$want"
python3 - "$WORK/table" <<'PY' || fail "Table watch objects: $(head -c 600 "$WORK/table")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
first = evs[0]["object"]
assert first["kind"] == "Table" and first["apiVersion"] == "meta.k8s.io/v1", first
cols = [c["name"] for c in first["columnDefinitions"]]
assert cols == ["Name", "Manager", "Clusters", "Namespaces", "Age"], cols
for e in evs:
    rows = e["object"]["rows"]
    assert len(rows) == 1, rows
    assert rows[0]["object"]["metadata"]["name"] == "tab", rows[0]
PY
# A single object's watch as kubectl sends it: name field selector and
# resourceVersion=0, a synthetic ADDED Table row first.
timeout 5 curl -sNk "${auth[@]}" -H "$TABLE" "$G/workspaces?watch=true&fieldSelector=metadata.name%3Dpre-b&resourceVersion=0&timeoutSeconds=1" > "$WORK/table1" || true
[ "$(events "$WORK/table1")" = 'ADDED TABLE [["pre-b", "bob"]]' ] || fail "single-object Table watch: $(events "$WORK/table1")"

[ "$FAILS" -eq 0 ] || die "$FAILS check(s) failed"
echo "watch ok"
