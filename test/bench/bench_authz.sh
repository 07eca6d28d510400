#!/usr/bin/env bash
# Authorization benchmark: the SubjectAccessReview webhook over HTTPS and
# the authorizer in-process, on a fixture of 10,000 users, 1,000 workspaces
# of 3 namespaces, 200 node groups, and first 20,000 then 100,000
# IAMRoleBindings. Prints figures, not pass/fail: HTTP throughput is a
# ratio against the server's own /healthz measured in the same run.
#
# For each binding count:
#   1. bench_authz --load-only writes the fixture straight into an LMDB data
#      dir and the request mix as SubjectAccessReview v1 bodies (one per
#      line); the data dir is copied for step 5 (a data dir has one user).
#   2. edge-apiserver serves that data dir; time to "serving on" includes
#      building the authorizer's index.
#   3. wrk, 2 threads, 32 keep-alive connections, SECS s each: GET /healthz
#      (TLS + HTTP, no authentication, no decision), then POST /authorize
#      with the mix, as kube-apiserver's webhook client sends it with a
#      system:masters bearer token. Reviews/s, p50/p99 from wrk's latency
#      record, non-200 answers, and how many answers were allowed / denied /
#      no opinion against what the mix holds.
#   4. the server's memory (VmRSS, RssAnon) idle after start and after the
#      load; the server's own mean decision time from /metrics.
#   5. with the server stopped, bench_authz on the copy: index build time and
#      memory, decision latency over 200,000 decisions from 2 threads.
#
# Everything listens on 127.0.0.1 only; each load is bounded in time; the
# EXIT trap stops every process this script started.
# Tools: wrk, curl, /usr/bin/python3. Environment: BENCH_SECS (default 8);
# EDGE_FLAGS, more server flags (e.g. --max-request-header-bytes=32768).
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCH=test/bench
OUT=$PWD/build/bench-authz
SECS=${BENCH_SECS:-8}
THREADS=2
CONNS=32
USERS=10000
WORKSPACES=1000
CASES=(20000 100000)
PY=/usr/bin/python3

for tool in wrk curl "$PY"; do
  command -v "$tool" >/dev/null ||
    { echo "bench_authz: $tool not found (hack/install-deps.sh installs it)" >&2; exit 1; }
done
for b in bin/edge-apiserver build/rel/bench_authz; do
  [ -x "$b" ] || { echo "bench_authz: build $b first (make $b)" >&2; exit 1; }
done

# --- process bookkeeping: whatever starts here is stopped on exit --------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS WHAT CMD...: polls CMD every 0.1 s.
wait_until() {
  local t=$1 what=$2 i=0; shift 2
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt $((t * 10)) ]; then echo "bench_authz: timed out waiting for $what" >&2; exit 1; fi
    sleep 0.1
  done
}

# field NAME LINE: the value of NAME=value in a RESULT-style line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "n/a" }'; }
meets() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? r >= t : r < t; print ok ? "yes" : "NO" }'; }
# mem PID KEY: a /proc/PID/status figure in MB.
mem() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# cpu_ticks PID: user+system CPU time the process has used, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
HZ=$(getconf CLK_TCK)

mkdir -p "$OUT"
TOKEN=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN,webhook-caller,webhook-uid,\"system:masters\"" >"$OUT/tokens.csv"
NOTES=()
declare -A RATE HZRATE P50 P99 BADN SOCKERR ALLOWP DENYP NOOPP MIXOK IP50 IP99 IP999 IDPS \
  IRATIO RSS0 RSS ANON0 ANON HWM START SRVDEC

echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; wrk: $THREADS threads, $CONNS connections, $SECS s per measurement"
echo "fixture: $USERS users in 20 groups, $WORKSPACES workspaces x 3 namespaces, 200 node groups x 10 nodes"

# wrk_run CASE NAME MODE: one wrk measurement with authz_wrk.lua; sets R
# (the RESULT line) and R_CORES (server CPU, in cores).
wrk_run() {
  local b=$1 name=$2 mode=$3 out=$OUT/wrk-$1-$3.txt c0
  c0=$(cpu_ticks "$EDGE_PID")
  env AUTHZ_MODE="$mode" AUTHZ_TOKEN="$TOKEN" AUTHZ_REQUESTS="$OUT/reviews-$b.jsonl" \
    wrk -t$THREADS -c$CONNS -d"${SECS}s" --timeout 10s -s $BENCH/authz_wrk.lua "$EDGE" >"$out" 2>&1 ||
    { echo "bench_authz: wrk $name failed: $(cat "$out")" >&2; exit 1; }
  R_CORES=$(awk -v a="$c0" -v b="$(cpu_ticks "$EDGE_PID")" -v hz="$HZ" -v s="$SECS" \
    'BEGIN { printf "%.2f", (b - a) / hz / s }')
  R=$(grep '^RESULT' "$out") || { echo "bench_authz: wrk $name: no result: $(cat "$out")" >&2; exit 1; }
  local rate
  rate=$(awk -v n="$(field ok "$R")" -v s="$(field secs "$R")" 'BEGIN { printf "%.0f", n / s }')
  R="$R rate=$rate"
  R_CPU_US=$(awk -v c="$R_CORES" -v r="$rate" 'BEGIN { if (r > 0) printf "%.1f", c * 1e6 / r; else print "n/a" }')
  printf '    %-22s %7s/s  (%s ok, %s non-200, %s socket errors; p50 %s ms, p90 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; server CPU %s cores, %s us per request)\n' \
    "$name" "$rate" "$(field ok "$R")" "$(field bad "$R")" "$(field errors "$R")" \
    "$(field p50ms "$R")" "$(field p90ms "$R")" "$(field p99ms "$R")" "$(field p999ms "$R")" \
    "$(field maxms "$R")" "$R_CORES" "$R_CPU_US"
  if [ "$(field bad "$R")" != 0 ] || [ "$(field errors "$R")" != 0 ]; then
    NOTES+=("$b bindings, $name: $(field bad "$R") non-200 answers, $(field errors "$R") socket errors; first: $(grep '^BAD' "$out" | cut -c5-400)")
  fi
}

# authz_metric NAME: a sample of the server's authorization metrics.
authz_metric() {
  curl -sk -H "Authorization: Bearer $TOKEN" "$EDGE/metrics" |
    awk -v k="$1" '$1 == k { print $2 }'
}

for B in "${CASES[@]}"; do
  DATA=$OUT/data-$B
  COPY=$OUT/data-$B-inprocess
  echo
  echo "== $B IAMRoleBindings"

  # --- 1. fixture and request mix ---------------------------------------
  rm -rf "$DATA" "$COPY"
  build/rel/bench_authz "$DATA" $USERS $WORKSPACES "$B" --load-only \
    --requests "$OUT/reviews-$B.jsonl" >"$OUT/load-$B.txt" 2>&1 ||
    { echo "bench_authz: loading failed: $(cat "$OUT/load-$B.txt")" >&2; exit 1; }
  grep -v '^AUTHZ_' "$OUT/load-$B.txt" | sed 's/^/  /'
  MIX=$(grep '^AUTHZ_MIX' "$OUT/load-$B.txt")
  cp -a "$DATA" "$COPY"

  # --- 2. the server on that data ----------------------------------------
  EDGE_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  t0=$(date +%s.%N)
  bin/edge-apiserver --bind-address 127.0.0.1 --secure-port "$EDGE_PORT" \
    --data-dir "$DATA" --cert-dir "$OUT/certs" --token-auth-file "$OUT/tokens.csv" \
    --cluster-name host ${EDGE_FLAGS:-} >"$OUT/server-$B.log" 2>&1 &
  EDGE_PID=$!
  PIDS+=("$EDGE_PID")
  wait_until 120 "edge-apiserver" grep -q "serving on" "$OUT/server-$B.log"
  START[$B]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  EDGE=https://127.0.0.1:$EDGE_PORT
  wait_until 30 "/healthz" curl -sfk "$EDGE/healthz"
  sleep 1   # let start-up work settle before reading memory
  RSS0[$B]=$(mem "$EDGE_PID" VmRSS)
  ANON0[$B]=$(mem "$EDGE_PID" RssAnon)
  echo "  edge-apiserver pid $EDGE_PID on $EDGE: serving ${START[$B]} s after start; idle VmRSS ${RSS0[$B]} MB, RssAnon ${ANON0[$B]} MB"
  # One review by hand: the answer's shape.
  echo "  first review of the mix answered: $(head -1 "$OUT/reviews-$B.jsonl" |
    curl -sk -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      --data-binary @- "$EDGE/authorize" | sed 's/.*"status":/"status":/' | cut -c1-240)"

  # --- 3. webhook reviews/s vs /healthz -----------------------------------
  # An untimed warm-up with the same reviews, so both measurements see a
  # server whose threads, heap and mapped pages are warm.
  env AUTHZ_MODE=review AUTHZ_TOKEN="$TOKEN" AUTHZ_REQUESTS="$OUT/reviews-$B.jsonl" \
    wrk -t$THREADS -c$CONNS -d2s --timeout 10s -s $BENCH/authz_wrk.lua "$EDGE" >"$OUT/wrk-$B-warmup.txt" 2>&1 ||
    { echo "bench_authz: wrk warm-up failed: $(cat "$OUT/wrk-$B-warmup.txt")" >&2; exit 1; }
  # Two rounds of /healthz then reviews, alternating, so a slow spell of
  # the machine weighs on both: the rates are the rounds' means, the
  # latencies the worse round's.
  echo "  wrk ($THREADS threads, $CONNS keep-alive connections, $SECS s each, two alternating rounds, after a 2 s warm-up; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
  wrk_run "$B" "GET /healthz" healthz
  HZCPU=$R_CPU_US
  hz1=$(field rate "$R")
  n0=$(authz_metric edge_authorization_duration_seconds_count)
  s0=$(authz_metric edge_authorization_duration_seconds_sum)
  wrk_run "$B" "POST /authorize (SAR)" review
  n1=$(authz_metric edge_authorization_duration_seconds_count)
  s1=$(authz_metric edge_authorization_duration_seconds_sum)
  R1=$R
  wrk_run "$B" "GET /healthz" healthz
  HZRATE[$B]=$(awk -v a="$hz1" -v b="$(field rate "$R")" 'BEGIN { printf "%.0f", (a + b) / 2 }')
  wrk_run "$B" "POST /authorize (SAR)" review
  RATE[$B]=$(awk -v a="$(field rate "$R1")" -v b="$(field rate "$R")" 'BEGIN { printf "%.0f", (a + b) / 2 }')
  P50[$B]=$(awk -v a="$(field p50ms "$R1")" -v b="$(field p50ms "$R")" 'BEGIN { print (a > b) ? a : b }')
  P99[$B]=$(awk -v a="$(field p99ms "$R1")" -v b="$(field p99ms "$R")" 'BEGIN { print (a > b) ? a : b }')
  R2=$R
  R=$R1  # the first review round: answers and decision time (its /metrics window)
  BADN[$B]=$(($(field bad "$R1") + $(field bad "$R2"))); SOCKERR[$B]=$(($(field errors "$R1") + $(field errors "$R2")))
  ok=$(field ok "$R"); al=$(field allowed "$R"); de=$(field denied "$R"); no=$(field noopinion "$R")
  ALLOWP[$B]=$(pct "$al" "$ok"); DENYP[$B]=$(pct "$de" "$ok"); NOOPP[$B]=$(pct "$no" "$ok")
  mt=$(field total "$MIX")
  echo "    answers: allowed ${ALLOWP[$B]}%, denied ${DENYP[$B]}%, no opinion ${NOOPP[$B]}%  (the mix holds $(pct "$(field allowed "$MIX")" "$mt")% / $(pct "$(field denied "$MIX")" "$mt")% / $(pct "$(field noopinion "$MIX")" "$mt")%)"
  MIXOK[$B]=$(awk -v a="$al" -v d="$de" -v n="$no" -v ea="$(field allowed "$MIX")" -v et="$mt" \
    'BEGIN { t = a + d + n; ok = a > 0 && d + n > 0 && t > 0 && (a / t - ea / et) < 0.02 && (ea / et - a / t) < 0.02; print ok ? "yes" : "NO" }')
  [ "${MIXOK[$B]}" = yes ] || NOTES+=("$B bindings: the answers over HTTP do not match the mix (allowed $al, denied $de, no opinion $no)")
  # The server's own decision time over the review run: its histogram's
  # sum over the reviews answered (each review also counts one near-free
  # decision, the system:masters check of the webhook caller).
  SRVDEC[$B]=$(awk -v n="$ok" -v s0="${s0:-0}" -v s1="${s1:-0}" \
    'BEGIN { if (n > 0) printf "%.1f", (s1 - s0) / n * 1e6; else print "n/a" }')
  echo "    server-side decision time per review (from /metrics, wall clock inside the server): ${SRVDEC[$B]} us mean over $((${n1:-0} - ${n0:-0})) decisions"
  echo "    server CPU per review / per /healthz: $(ratio "$R_CPU_US" "$HZCPU")"

  # --- 4. server memory ----------------------------------------------------
  RSS[$B]=$(mem "$EDGE_PID" VmRSS); ANON[$B]=$(mem "$EDGE_PID" RssAnon); HWM[$B]=$(mem "$EDGE_PID" VmHWM)
  echo "  server memory after the load: VmRSS ${RSS[$B]} MB = anonymous ${ANON[$B]} MB + file-backed $(mem "$EDGE_PID" RssFile) MB (LMDB pages read); peak VmHWM ${HWM[$B]} MB; data dir $(du -sh "$DATA" | cut -f1)"
  while read -r line; do NOTES+=("$B bindings, server log: $line"); done < <(
    grep -v -e 'serving on' -e 'storage lmdb at' "$OUT/server-$B.log" | cut -c1-200 |
      sort | uniq -c | sort -rn | head -5 | sed 's/^ *\([0-9]*\) \(.*\)/\1x \2/')
  kill "$EDGE_PID" 2>/dev/null || true
  wait "$EDGE_PID" 2>/dev/null || true

  # --- 5. in-process, on the copy, with the server stopped ----------------
  echo "  in-process (bench_authz on a copy of the same data dir):"
  build/rel/bench_authz "$COPY" $USERS $WORKSPACES "$B" >"$OUT/inprocess-$B.txt" 2>&1 ||
    { echo "bench_authz: in-process run failed: $(cat "$OUT/inprocess-$B.txt")" >&2; exit 1; }
  sed -n '/^index:/,$p' "$OUT/inprocess-$B.txt" | grep -v '^AUTHZ_' | sed 's/^/  /'
  IR=$(grep '^AUTHZ_RESULT' "$OUT/inprocess-$B.txt")
  IP50[$B]=$(field p50us "$IR"); IP99[$B]=$(field p99us "$IR"); IP999[$B]=$(field p999us "$IR")
  IDPS[$B]=$(field dps "$IR")
  IRATIO[$B]=$(ratio "$(field p50us "$IR")" "$(field json_p50us "$IR")")
  [ "$(field wrong "$IR")" = 0 ] || NOTES+=("$B bindings: $(field wrong "$IR") in-process decisions differ from the fixture's expectation")
  rm -rf "$DATA" "$COPY"
done

# --- summary -----------------------------------------------------------------
B1=${CASES[0]}
B2=${CASES[1]}
row() { printf '%-42s %24s %24s  %-16s %s\n' "$@"; }
echo
echo "summary ($USERS users, $WORKSPACES workspaces; ratios against references measured in this run)"
row "measure" "$B1 bindings" "$B2 bindings" "target" "meets"
R1=$(ratio "${RATE[$B1]}" "${HZRATE[$B1]}"); R2=$(ratio "${RATE[$B2]}" "${HZRATE[$B2]}")
row "webhook reviews/s, $CONNS conns" "${RATE[$B1]}/s" "${RATE[$B2]}/s" "(info)" "-"
row "  /healthz/s, same run (reference)" "${HZRATE[$B1]}/s" "${HZRATE[$B2]}/s" "(reference)" "-"
row "  reviews/s / healthz/s" "$R1" "$R2" ">= 0.70" \
  "$(meets "$R1" ">=" 0.7) / $(meets "$R2" ">=" 0.7)"
row "webhook p50 over HTTPS" "${P50[$B1]} ms" "${P50[$B2]} ms" "(info)" "-"
row "webhook p99 over HTTPS" "${P99[$B1]} ms" "${P99[$B2]} ms" "< 5 ms" \
  "$(meets "${P99[$B1]}" "<" 5) / $(meets "${P99[$B2]}" "<" 5)"
row "webhook non-200 answers / socket errors" "${BADN[$B1]} / ${SOCKERR[$B1]}" \
  "${BADN[$B2]} / ${SOCKERR[$B2]}" "0" \
  "$([ "${BADN[$B1]}${SOCKERR[$B1]}" = 00 ] && echo yes || echo NO) / $([ "${BADN[$B2]}${SOCKERR[$B2]}" = 00 ] && echo yes || echo NO)"
row "answers allowed/denied/no opinion %" "${ALLOWP[$B1]}/${DENYP[$B1]}/${NOOPP[$B1]}" \
  "${ALLOWP[$B2]}/${DENYP[$B2]}/${NOOPP[$B2]}" "both kinds, = mix" "${MIXOK[$B1]} / ${MIXOK[$B2]}"
row "server mean decision (/metrics)" "${SRVDEC[$B1]} us" "${SRVDEC[$B2]} us" "(info)" "-"
row "in-process decision p50" "${IP50[$B1]} us" "${IP50[$B2]} us" "(info)" "-"
row "  p50 / JSON decode+encode p50" "${IRATIO[$B1]}" "${IRATIO[$B2]}" "(info)" "-"
row "in-process decision p99" "${IP99[$B1]} us" "${IP99[$B2]} us" "< 1000 us" \
  "$(meets "${IP99[$B1]}" "<" 1000) / $(meets "${IP99[$B2]}" "<" 1000)"
row "in-process decision p99.9" "${IP999[$B1]} us" "${IP999[$B2]} us" "(info)" "-"
row "in-process decisions/s, 2 threads" "${IDPS[$B1]}/s" "${IDPS[$B2]}/s" "(info)" "-"
row "server start to serving" "${START[$B1]} s" "${START[$B2]} s" "(info)" "-"
row "server VmRSS idle / after load" "${RSS0[$B1]} / ${RSS[$B1]} MB" "${RSS0[$B2]} / ${RSS[$B2]} MB" \
  "< 200 MB at $B2" "$(meets "${RSS[$B2]}" "<" 200)"
row "  of which RssAnon idle / after load" "${ANON0[$B1]} / ${ANON[$B1]} MB" \
  "${ANON0[$B2]} / ${ANON[$B2]} MB" "(info)" "-"

if [ ${#NOTES[@]} -gt 0 ]; then
  echo
  echo "notes:"
  for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
