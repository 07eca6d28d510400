#!/usr/bin/env bash
# HTTP benchmark: edge-apiserver over HTTPS, side by side with etcd 3.4
# through its v3 JSON gateway (the store kube-apiserver would keep the same
# objects in). Prints figures, not pass/fail: every timing is a ratio
# against a reference measured in this same run, on this machine.
#
#   1. creates/s, 32 connections  vs  etcd puts/s, 32 connections
#   2. GET/s of one object        vs  etcd range/s of one key
#   3. GET/s of one object        vs  the server's own /healthz (HTTP ceiling)
#   4. list of 10,000 objects     vs  etcd range over 10,000 keys (median/p90)
#   5. server RSS holding 100,000 objects (budget 100 MB)
#
# Everything listens on 127.0.0.1 only; each load is bounded in count and
# time; the EXIT trap stops every process this script started.
# Tools: etcd (etcd-server), wrk, curl, /usr/bin/python3.
# Environment: BENCH_SECS (default 8) seconds per wrk measurement;
# EDGE_FLAGS, more server flags (e.g. --max-request-header-bytes=32768).
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH=test/bench
ETCD_DIR=$PWD/build/bench-etcd
EDGE_DIR=$PWD/build/bench-edge
ETCD_PORT=23790
ETCD_PEER=23800
ETCD=http://127.0.0.1:$ETCD_PORT
SECS=${BENCH_SECS:-8}
THREADS=2
CONNS=32
PY=/usr/bin/python3
LIST_N=10000      # objects in the list measurement
RSS_N=100000      # objects stored for the memory measurement

for tool in etcd wrk curl "$PY"; do
  command -v "$tool" >/dev/null ||
    { echo "bench_http: $tool not found (hack/install-deps.sh installs it)" >&2; exit 1; }
done
[ -x bin/edge-apiserver ] || { echo "bench_http: build bin/edge-apiserver first (make)" >&2; exit 1; }

# --- process bookkeeping: whatever starts here is stopped on exit --------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS WHAT CMD...: polls CMD every 0.1 s.
wait_until() {
  local t=$1 what=$2 i=0; shift 2
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt $((t * 10)) ]; then echo "bench_http: timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}

NOTES=()   # anything that looked wrong, printed after the table

# --- etcd 3.4 on loopback, its own data dir -------------------------------
for p in $ETCD_PORT $ETCD_PEER; do
  port_free "$p" || { echo "bench_http: port $p is in use" >&2; exit 1; }
done
rm -rf "$ETCD_DIR" "$EDGE_DIR"
mkdir -p "$ETCD_DIR" "$EDGE_DIR"
etcd --name default --data-dir "$ETCD_DIR/data" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "default=http://127.0.0.1:$ETCD_PEER" >"$ETCD_DIR/etcd.log" 2>&1 &
ETCD_PID=$!
PIDS+=("$ETCD_PID")
wait_until 30 "etcd" curl -sf -X POST "$ETCD/v3/maintenance/status" -d '{}'

# --- edge-apiserver, fresh LMDB on the real disk --------------------------
EDGE_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN,admin,admin-uid,\"system:masters\"" >"$EDGE_DIR/tokens.csv"
bin/edge-apiserver --bind-address 127.0.0.1 --secure-port "$EDGE_PORT" \
  --data-dir "$EDGE_DIR/data" --cert-dir "$EDGE_DIR/certs" \
  --token-auth-file "$EDGE_DIR/tokens.csv" ${EDGE_FLAGS:-} >"$EDGE_DIR/server.log" 2>&1 &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
wait_until 30 "edge-apiserver" grep -q "serving on" "$EDGE_DIR/server.log"
EDGE=https://127.0.0.1:$EDGE_PORT
RB=/apis/iam.theriseunion.io/v1alpha1/iamrolebindings
NG=/apis/scope.theriseunion.io/v1alpha1/nodegroups
ecurl() { curl -sk -H "Authorization: Bearer $TOKEN" "$@"; }

echo "edge-apiserver pid $EDGE_PID on $EDGE, etcd $(etcd --version | sed -n 's/^etcd Version: //p') pid $ETCD_PID on $ETCD"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; wrk: $THREADS threads, $CONNS connections, $SECS s per measurement"

# cpu_ticks PID: user+system CPU time the process has used, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
HZ=$(getconf CLK_TCK)

# wrk_run NAME MODE edge|etcd [VAR=VALUE...]: one wrk measurement with
# test/bench/http_wrk.lua against that server. Sets R_OK (expected
# statuses), R_BAD, R_RATE (R_OK per second), R_P50/R_P99 (ms); prints
# them with the CPU the server used (in cores); keeps wrk's output in build/.
wrk_run() {
  local name=$1 mode=$2 url=$EDGE pid=$EDGE_PID out=$EDGE_DIR/wrk-${1//[^A-Za-z0-9]/_}.txt line c0
  [ "$3" = etcd ] && { url=$ETCD; pid=$ETCD_PID; }
  shift 3
  c0=$(cpu_ticks "$pid")
  env BENCH_MODE="$mode" BENCH_TOKEN="$TOKEN" "$@" \
    wrk -t$THREADS -c$CONNS -d"${SECS}s" --timeout 10s -s $BENCH/http_wrk.lua "$url" >"$out" 2>&1 ||
    { echo "bench_http: wrk $name failed: $(cat "$out")" >&2; exit 1; }
  local cores
  cores=$(awk -v a="$c0" -v b="$(cpu_ticks "$pid")" -v hz="$HZ" -v s="$SECS" \
    'BEGIN { printf "%.2f", (b - a) / hz / s }')
  line=$(grep '^RESULT' "$out") || { echo "bench_http: wrk $name: no result: $(cat "$out")" >&2; exit 1; }
  R_OK=$(sed 's/.* ok=\([0-9]*\).*/\1/' <<<"$line")
  R_BAD=$(sed 's/.* bad=\([0-9]*\).*/\1/' <<<"$line")
  local secs errs
  secs=$(sed 's/.* secs=\([0-9.]*\).*/\1/' <<<"$line")
  errs=$(sed 's/.* errors=\([0-9]*\).*/\1/' <<<"$line")
  R_P50=$(sed 's/.* p50ms=\([0-9.]*\).*/\1/' <<<"$line")
  R_P99=$(sed 's/.* p99ms=\([0-9.]*\).*/\1/' <<<"$line")
  R_RATE=$(awk -v n="$R_OK" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
  printf '  %-20s %7s/s  (%s ok, %s unexpected, %s socket errors; p50 %s ms, p99 %s ms; server CPU %s cores)\n' \
    "$name" "$R_RATE" "$R_OK" "$R_BAD" "$errs" "$R_P50" "$R_P99" "$cores"
  if [ "$R_BAD" != 0 ] || [ "$errs" != 0 ]; then
    NOTES+=("$name: $R_BAD unexpected statuses, $errs socket errors; first: $(grep '^BAD' "$out" | cut -c5-400)")
  fi
}

# count_objects PATH: objects of one kind, from a one-item page
# (1 + remainingItemCount), without listing them all.
count_objects() {
  ecurl "$EDGE$1?limit=1" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(len(d["items"]) + int(d["metadata"].get("remainingItemCount", 0)))'
}

# time_requests N CURL-ARGS... URL: N+1 requests on one keep-alive
# connection; the first (connection set-up, warm-up) is dropped. Prints
# "median p90" in ms of the whole transfer (request sent to last byte).
time_requests() {
  local n=$1 url=${*: -1} args=("${@:2:$#-2}") urls=() i
  for ((i = 0; i <= n; i++)); do urls+=(-o /dev/null "$url"); done
  curl -s "${args[@]}" -w '%{http_code} %{time_total}\n' "${urls[@]}" | "$PY" -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
bad = [r[0] for r in rows if r[0] != "200"]
if bad: sys.exit("statuses %s" % bad)
t = sorted(float(r[1]) * 1000 for r in rows[1:])
n = len(t)
median = (t[(n - 1) // 2] + t[n // 2]) / 2
p90 = t[-(-9 * n // 10) - 1]          # nearest rank: ceil(0.9 n)-th value
print("%.1f %.1f" % (median, p90))'
}

b64() { printf '%s' "$1" | base64 -w0; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
meets() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? r >= t : (op == "<=") ? r <= t : r < t; print ok ? "yes" : "NO" }'; }

# --- 1. creates/s vs etcd puts/s ------------------------------------------
# Each create is a new ~1 KB IAMRoleBinding, acknowledged (201) after a
# durable commit; each put a new key with a ~1 KB value, durable in etcd's
# WAL. Only 201 (resp. 200) answers count.
echo
echo "1. writes, 1 KB objects, $CONNS connections"
wrk_run "edge creates" create edge BENCH_PREFIX=c
CREATE_RATE=$R_RATE
# Group commit at work: writes per durable commit, from the server's metrics.
ecurl "$EDGE/metrics" | awk '$1 == "edge_storage_commits_total" { c = $2 } $1 == "edge_storage_writes_total" { w = $2 }
  END { if (c > 0) printf "  %-20s %d writes in %d commits, %.1f writes per commit\n", "edge group commit", w, c, w / c }'
wrk_run "etcd puts" etcd_put etcd BENCH_PREFIX=c
PUT_RATE=$R_RATE

# --- 2. and 3. single-object reads ----------------------------------------
# The same object is read over and over: edge-apiserver GET (authn, authz,
# storage get, JSON out) vs etcd's linearizable range of one key (the read
# kube-apiserver makes for a GET with no resourceVersion), and vs the
# server's /healthz (same TLS, HTTP and token handling, no object).
"$PY" $BENCH/http_load.py edge "$EDGE_PORT" "$TOKEN" iamrolebinding get- 1 1 30 >/dev/null ||
  { echo "bench_http: could not create the GET target" >&2; exit 1; }
GET_KEY=/registry/iam.theriseunion.io/iamrolebindings/get-000000
curl -sf -X POST "$ETCD/v3/kv/put" -o /dev/null \
  -d "{\"key\":\"$(b64 "$GET_KEY")\",\"value\":\"$(b64 "$(ecurl "$EDGE$RB/get-000000")")\"}"
STORED_SIZE=$(ecurl "$EDGE$RB/get-000000" | wc -c)
echo
echo "2./3. single-object reads ($STORED_SIZE-byte object as served)"
wrk_run "edge GET" get edge BENCH_PATH="$RB/get-000000"
GET_RATE=$R_RATE
wrk_run "etcd range (1 key)" etcd_range etcd BENCH_KEY="$GET_KEY"
RANGE_RATE=$R_RATE
wrk_run "edge /healthz" get edge BENCH_PATH=/healthz
HEALTHZ_RATE=$R_RATE

# --- 4. list of 10,000 objects vs etcd range of 10,000 keys ---------------
# Exactly LIST_N NodeGroups of ~1 KB (a kind untouched so far), and as many
# etcd keys under one prefix with values of the same size. Then 10 timed
# full lists each, after one untimed warm-up on the same connection.
echo
echo "4. list of $LIST_N objects (~1 KB each), 10 timed lists each"
NG_PREFIX=/registry/scope.theriseunion.io/nodegroups/
echo "  load edge:  $("$PY" $BENCH/http_load.py edge "$EDGE_PORT" "$TOKEN" nodegroup ng- $LIST_N 16 300)"
echo "  load etcd:  $("$PY" $BENCH/http_load.py etcd $ETCD_PORT "$NG_PREFIX" $LIST_N 16 300)"
# The whole list must come back: LIST_N items from each.
n=$(ecurl -H 'Accept: application/json' "$EDGE$NG" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n" = $LIST_N ] || NOTES+=("edge list returned $n items, expected $LIST_N")
RANGE_BODY="{\"key\":\"$(b64 "$NG_PREFIX")\",\"range_end\":\"$(b64 "${NG_PREFIX%/}0")\"}"
n=$(curl -s -X POST "$ETCD/v3/kv/range" -d "$RANGE_BODY" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin).get("kvs", [])))')
[ "$n" = $LIST_N ] || NOTES+=("etcd range returned $n keys, expected $LIST_N")
read -r LIST_MED LIST_P90 < <(time_requests 10 -k -H "Authorization: Bearer $TOKEN" \
  -H 'Accept: application/json' "$EDGE$NG")
read -r ELIST_MED ELIST_P90 < <(time_requests 10 -X POST -H 'Content-Type: application/json' \
  -d "$RANGE_BODY" "$ETCD/v3/kv/range")
LIST_BYTES=$(ecurl -H 'Accept: application/json' -o /dev/null -w '%{size_download}' "$EDGE$NG")
ELIST_BYTES=$(curl -s -X POST -d "$RANGE_BODY" -o /dev/null -w '%{size_download}' "$ETCD/v3/kv/range")
printf '  %-20s median %s ms, p90 %s ms (%s MB)\n' "edge list" "$LIST_MED" "$LIST_P90" \
  "$(awk -v b="$LIST_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')"
printf '  %-20s median %s ms, p90 %s ms (%s MB)\n' "etcd range (prefix)" "$ELIST_MED" "$ELIST_P90" \
  "$(awk -v b="$ELIST_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')"

# --- 5. RSS with 100,000 stored objects -----------------------------------
# Top the store up to exactly RSS_N objects with more ~1 KB
# IAMRoleBindings, then read the server's memory from /proc.
echo
echo "5. memory with $RSS_N stored objects"
have=$(($(count_objects $RB) + $(count_objects $NG)))
if [ "$have" -lt $RSS_N ]; then
  echo "  load edge:  $("$PY" $BENCH/http_load.py edge "$EDGE_PORT" "$TOKEN" iamrolebinding fill- $((RSS_N - have)) 16 400)"
fi
STORED=$(($(count_objects $RB) + $(count_objects $NG)))
sleep 2   # let any deferred work after the load settle
mem() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$EDGE_PID/status"; }
mb() { awk -v k="$(mem "$1")" 'BEGIN { printf "%.1f", k / 1024 }'; }
RSS_MB=$(mb VmRSS)
ANON_MB=$(mb RssAnon)
# VmRSS = anonymous memory (heap, stacks) + file pages mapped and touched,
# which for an LMDB store includes the pages of the database file it read.
printf '  %-20s %s objects; VmRSS %s MB = anonymous %s MB + file-backed %s MB; peak VmHWM %s MB; LMDB files %s\n' \
  "edge-apiserver" "$STORED" "$RSS_MB" "$ANON_MB" "$(mb RssFile)" "$(mb VmHWM)" \
  "$(du -sh "$EDGE_DIR/data" | cut -f1)"
[ "$STORED" -ge $RSS_N ] || NOTES+=("only $STORED objects stored, fewer than $RSS_N")

# --- summary ---------------------------------------------------------------
R1=$(ratio "$CREATE_RATE" "$PUT_RATE")
R2=$(ratio "$GET_RATE" "$RANGE_RATE")
R3=$(ratio "$GET_RATE" "$HEALTHZ_RATE")
R4=$(ratio "$LIST_MED" "$ELIST_MED")
R4P=$(ratio "$LIST_P90" "$ELIST_P90")
R5=$(ratio "$RSS_MB" 100)
R5A=$(ratio "$ANON_MB" 100)
echo
echo "summary (ratio = edge-apiserver / reference, both measured in this run)"
printf '%-30s %16s %24s %7s  %-9s %s\n' "measure" "edge-apiserver" "reference" "ratio" "target" "meets"
printf '%-30s %16s %24s %7s  %-9s %s\n' \
  "creates/s (32 conns)" "$CREATE_RATE/s" "etcd puts $PUT_RATE/s" "$R1" ">= 1.00" "$(meets "$R1" ">=" 1)" \
  "GET one object/s" "$GET_RATE/s" "etcd range $RANGE_RATE/s" "$R2" ">= 1.00" "$(meets "$R2" ">=" 1)" \
  "GET one object vs /healthz" "$GET_RATE/s" "/healthz $HEALTHZ_RATE/s" "$R3" ">= 0.70" "$(meets "$R3" ">=" 0.7)" \
  "list 10k, median" "$LIST_MED ms" "etcd range $ELIST_MED ms" "$R4" "<= 1.00" "$(meets "$R4" "<=" 1)" \
  "list 10k, p90" "$LIST_P90 ms" "etcd range $ELIST_P90 ms" "$R4P" "<= 1.00" "$(meets "$R4P" "<=" 1)" \
  "RSS, $STORED objects" "$RSS_MB MB" "budget 100 MB" "$R5" "< 1.00" "$(meets "$R5" "<" 1)" \
  "  of which anonymous" "$ANON_MB MB" "budget 100 MB" "$R5A" "(info)" "-"

# The server's own log: each distinct message once, with its count.
while read -r line; do NOTES+=("server log: $line"); done < <(
  grep -v -e 'serving on' -e 'storage lmdb at' "$EDGE_DIR/server.log" | cut -c1-200 |
    sort | uniq -c | sort -rn | head -10 | sed 's/^ *\([0-9]*\) \(.*\)/\1x \2/')

if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  echo "notes:"
  for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
