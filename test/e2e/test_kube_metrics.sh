#!/usr/bin/env bash
# kube-apiserver's metric names, so its dashboards and alerts work here:
# a request raises apiserver_request_total for its verb, resource, scope
# and code; durations and sizes are histograms with kube's buckets; open
# watches show as long-running requests and registered watchers; stored
# objects are counted per resource; process metrics are there; /metrics
# needs `get` on the non-resource URL /metrics, as kube-apiserver's does.
source "$(dirname "$0")/lib.sh"
start_server
URL=https://127.0.0.1:$PORT
metrics() { curl -sk -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/metrics"; }
value() { metrics > "$WORK/v.txt"; grep -F "$1" "$WORK/v.txt" | head -1 | awk '{print $NF}' || true; }

kubectl apply -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws1}
spec: {displayName: One}
YAML
LIST='apiserver_request_total{verb="LIST",dry_run="",group="scope.theriseunion.io",version="v1alpha1",resource="workspaces",subresource="",scope="cluster",component="apiserver",code="200"}'
before=$(value "$LIST"); before=${before:-0}
kubectl get ws >/dev/null
kubectl get ws >/dev/null
after=$(value "$LIST")
[ "$after" = $((before + 2)) ] || die "LIST count $before -> $after: $(metrics | grep apiserver_request_total | head)"
# A 404 is counted under its code, a GET of one object in scope resource.
kubectl get ws nosuch >/dev/null 2>&1 || true
metrics > "$WORK/m.txt"
grep -qF 'apiserver_request_total{verb="GET",dry_run="",group="scope.theriseunion.io",version="v1alpha1",resource="workspaces",subresource="",scope="resource",component="apiserver",code="404"} ' "$WORK/m.txt" \
  || die "404 not counted: $(grep 'code="404"' "$WORK/m.txt")"
# A create, a server-side apply and a dry run.
kubectl create -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws2}
YAML
kubectl apply --server-side -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws3}
YAML
kubectl create --dry-run=server -f - >/dev/null <<'YAML'
apiVersion: scope.theriseunion.io/v1alpha1
kind: Workspace
metadata: {name: ws4}
YAML
metrics > "$WORK/m.txt"
for want in 'verb="POST",dry_run="",group="scope.theriseunion.io"' 'verb="APPLY",dry_run=""' \
            'verb="POST",dry_run="All"'; do
  grep -F "$want" "$WORK/m.txt" > "$WORK/hit" || true
  grep -q '^apiserver_request_total' "$WORK/hit" || die "no $want: $(grep apiserver_request_total "$WORK/m.txt")"
done
# Histograms with kube's buckets.
grep -q '^apiserver_request_duration_seconds_bucket{verb="LIST".*le="0.005"}' "$WORK/m.txt" || die "duration buckets"
grep -q '^apiserver_request_duration_seconds_bucket{verb="LIST".*le="60"}' "$WORK/m.txt" || die "duration buckets"
grep -q '^apiserver_response_sizes_bucket{verb="LIST".*le="1000"}' "$WORK/m.txt" || die "size buckets"
grep -q '^apiserver_current_inflight_requests{request_kind="readOnly"}' "$WORK/m.txt" || die "inflight"
grep -qF 'apiserver_storage_objects{resource="workspaces.scope.theriseunion.io"} 3' "$WORK/m.txt" \
  || die "storage objects: $(grep storage_objects "$WORK/m.txt")"
grep -q '^apiserver_authorization_decisions_total{type="Webhook",name="edge-apiserver",decision="allowed"}' "$WORK/m.txt" || die "authorization decisions"
for p in process_resident_memory_bytes process_cpu_seconds_total process_open_fds process_start_time_seconds; do
  grep -q "^$p [0-9]" "$WORK/m.txt" || die "no $p"
done
# An open watch is a long-running request and a registered watcher.
timeout 20 kubectl get ws --watch >/dev/null 2>&1 &
WPID=$!
i=0; until value 'apiserver_registered_watchers{group="scope.theriseunion.io",version="v1alpha1",kind="Workspace"}' | grep -qx 1; do
  i=$((i + 1)); [ $i -le 100 ] || die "watcher not registered: $(metrics | grep -E 'registered_watchers|longrunning')"; sleep 0.1
done
metrics > "$WORK/m.txt"
grep -qF 'apiserver_longrunning_requests{verb="WATCH",group="scope.theriseunion.io",version="v1alpha1",resource="workspaces",subresource="",scope="cluster",component="apiserver"} 1' "$WORK/m.txt" \
  || die "long-running: $(metrics | grep longrunning)"
kill $WPID 2>/dev/null; wait $WPID 2>/dev/null || true
i=0; until value 'apiserver_registered_watchers{group="scope.theriseunion.io",version="v1alpha1",kind="Workspace"}' | grep -qx 0; do
  i=$((i + 1)); [ $i -le 150 ] || die "watcher never unregistered: $(metrics | grep registered_watchers)"; sleep 0.1
done
# /metrics needs authorization: alice (no binding) is refused.
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer alice-token" "$URL/metrics")
[ "$code" = 403 ] || die "/metrics for alice: $code"
echo "kube metrics: ok"
