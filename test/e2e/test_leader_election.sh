#!/usr/bin/env bash
# Controllers on one replica at a time: two servers on one etcd (their
# own ports and data directories, one --etcd-prefix) with a short lease.
# Exactly one reports edge_controller_leader 1 in /metrics; an IAMRole
# created through the other gets its status from the leader; the leader
# killed with SIGKILL, the other leads within the lease duration (plus
# slack) and writes the status of a new IAMRole. Bad --leader-elect-*
# values are refused with the flags named.
source "$(dirname "$0")/lib.sh"
set +o pipefail

# Flag checks first: they need no etcd.
expect_fail "renew deadline not below the lease" \
  "$BIN" --leader-elect-lease-duration=4s --leader-elect-renew-deadline=4s
grep -q -- "--leader-elect-renew-deadline must be .*less than --leader-elect-lease-duration" "$WORK/out" \
  || die "renew deadline message: $(cat "$WORK/out")"
expect_fail "a lease that is no duration" "$BIN" --leader-elect-lease-duration=4
grep -q -- "--leader-elect-lease-duration" "$WORK/out" || die "lease message: $(cat "$WORK/out")"
expect_fail "--leader-elect=maybe" "$BIN" --leader-elect=maybe
grep -q -- "--leader-elect" "$WORK/out" || die "leader-elect message: $(cat "$WORK/out")"

start_etcd
LEASE=4
ADMIN_TOKEN=admin-token-$RANDOM$RANDOM
echo "$ADMIN_TOKEN,admin,admin-uid,\"system:masters\"" > "$WORK/tokens.csv"

# start_replica N: replica N on a port of its own; sets PORT_N and PID_N.
start_replica() {
  local n=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN" --bind-address 127.0.0.1 --secure-port "$port" --data-dir "$WORK/data$n" \
    --cert-dir "$WORK/certs$n" --token-auth-file "$WORK/tokens.csv" \
    --storage-backend etcd3 --etcd-servers "$EURL" --etcd-prefix /registry-le \
    --leader-elect-lease-duration=${LEASE}s --leader-elect-renew-deadline=3s \
    >"$WORK/r$n.log" 2>&1 &
  PIDS+=($!)
  eval "PORT_$n=$port PID_$n=$!"
  wait_for_log "$WORK/r$n.log" "serving on" 20
  hack/kubeconfig.sh "https://127.0.0.1:$port" "$WORK/certs$n/ca.crt" "$ADMIN_TOKEN" > "$WORK/r$n.kubeconfig"
}

# leader N: what replica N says of itself in /metrics (1 or 0; "" if it
# did not answer).
leader() {
  local port
  eval "port=\$PORT_$1"
  timeout 5 curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$port/metrics" |
    awk '$1 == "edge_controller_leader" {print $2}'
}

# wait_one_leader SECONDS [REPLICAS...]: until exactly one of them
# reports 1 and the others 0; sets LEADER.
wait_one_leader() {
  local t=$1 i=0 n ones zeros; shift
  while :; do
    ones=() zeros=0
    for n in "$@"; do
      case "$(leader "$n")" in 1) ones+=("$n") ;; 0) zeros=$((zeros + 1)) ;; esac
    done
    if [ "${#ones[@]}" -eq 1 ] && [ $((zeros + 1)) -eq $# ]; then LEADER=${ones[0]}; return 0; fi
    i=$((i + 1)); [ $i -le $((t * 5)) ] || return 1
    sleep 0.2
  done
}

# role_status KUBECONFIG NAME SECONDS: until the IAMRole's status says it
# saw generation 1.
role_status() {
  local kc=$1 name=$2 t=$3 i=0
  while :; do
    [ "$(timeout 10 kubectl --kubeconfig "$kc" get iamrole "$name" \
      -o jsonpath='{.status.observedGeneration}' 2>/dev/null)" = 1 ] && return 0
    i=$((i + 1)); [ $i -le $((t * 5)) ] || return 1
    sleep 0.2
  done
}

create_role() {
  timeout 30 kubectl --kubeconfig "$1" create -f - >/dev/null <<YAML || die "create iamrole $2"
apiVersion: iam.theriseunion.io/v1alpha1
kind: IAMRole
metadata: {name: $2}
spec:
  scope: Cluster
  rules: [{verbs: [get, list], apiGroups: [""], resources: [pods]}]
YAML
}

start_replica 1
start_replica 2
wait_one_leader 15 1 2 || die "not exactly one leader: 1 says '$(leader 1)', 2 says '$(leader 2)'"
# ...and it stays so over more than one renewal.
first=$LEADER
for i in $(seq 6); do
  sleep 0.5
  wait_one_leader 1 1 2 && [ "$LEADER" = "$first" ] || die "leadership moved: $(leader 1) $(leader 2)"
done
FOLLOWER=$((3 - LEADER))
echo "replica $LEADER leads, replica $FOLLOWER follows"
eval "lport=\$PORT_$LEADER"
timeout 5 curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$lport/metrics" >"$WORK/metrics"
grep -q '^leader_election_master_status{name="edge-apiserver"} 1$' "$WORK/metrics" \
  || die "no leader_election_master_status 1: $(grep leader "$WORK/metrics")"
grep -q '^edge_controller_leader_transitions_total 1$' "$WORK/metrics" \
  || die "transitions: $(grep leader "$WORK/metrics")"
grep -q "leading as" "$WORK/r$LEADER.log" || die "the leader did not say so: $(cat "$WORK/r$LEADER.log")"
grep -q "leading: starting" "$WORK/r$FOLLOWER.log" && die "the follower started controllers: $(cat "$WORK/r$FOLLOWER.log")"

# Written through the follower, reconciled by the leader.
create_role "$WORK/r$FOLLOWER.kubeconfig" via-follower
role_status "$WORK/r$FOLLOWER.kubeconfig" via-follower 15 \
  || die "no status for via-follower: $(kubectl --kubeconfig "$WORK/r$FOLLOWER.kubeconfig" get iamrole via-follower -o yaml)"

# The leader dies without a word: its lease expires and the other leads.
eval "lpid=\$PID_$LEADER"
t0=$(date +%s.%N)
kill -9 "$lpid"
wait "$lpid" 2>/dev/null || true
wait_one_leader $((LEASE + 6)) "$FOLLOWER" || die "replica $FOLLOWER did not take over: $(tail -5 "$WORK/r$FOLLOWER.log")"
took=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
echo "replica $FOLLOWER leads ${took}s after the leader was killed"
python3 -c "import sys; sys.exit(0 if $took <= $LEASE + 3 else 1)" || die "takeover took ${took}s, lease ${LEASE}s"
create_role "$WORK/r$FOLLOWER.kubeconfig" after-takeover
role_status "$WORK/r$FOLLOWER.kubeconfig" after-takeover 15 || die "no status for after-takeover"

# A clean stop hands over at once: a new replica follows, the leader stops.
start_replica 3
wait_one_leader 5 "$FOLLOWER" 3 && [ "$LEADER" = "$FOLLOWER" ] || die "after replica 3 joined: $(leader "$FOLLOWER") $(leader 3)"
eval "fpid=\$PID_$FOLLOWER"
t0=$(date +%s.%N)
kill -TERM "$fpid"
wait "$fpid" || die "replica $FOLLOWER exited non-zero on SIGTERM"
wait_one_leader $((LEASE + 6)) 3 || die "replica 3 did not take over: $(tail -5 "$WORK/r3.log")"
took=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
echo "replica 3 leads ${took}s after a clean stop"
python3 -c "import sys; sys.exit(0 if $took < $LEASE else 1)" || die "a clean stop took ${took}s to hand over"
echo "ok"
