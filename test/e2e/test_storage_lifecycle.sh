# The binary opens its data directory, refuses a second process on the same
# directory with a clear message, and shuts down cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$BIN" --data-dir "$WORK/data" >"$WORK/a.log" 2>&1 &
PIDS+=($!); a=$!
wait_for_log "$WORK/a.log" "open at revision 0"

# On another port: the server listens before it opens storage, so on the
# same port the second would be refused for the port instead.
set +e
timeout 10 "$BIN" --data-dir "$WORK/data" --secure-port "$(free_port)" >"$WORK/b.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || die "a second process on the same data dir was not refused"
grep -q "in use by another process" "$WORK/b.log" || die "unclear message: $(cat "$WORK/b.log")"

kill -TERM "$a"
wait "$a" || die "server exited non-zero on SIGTERM"
[ -f "$WORK/data/data.mdb" ] || die "no LMDB file in the data dir"

# After the first process is gone, the directory can be opened again.
"$BIN" --data-dir "$WORK/data" >"$WORK/c.log" 2>&1 &
PIDS+=($!)
wait_for_log "$WORK/c.log" "open at revision 0"

# Listening: a port already taken is refused with the reason, and "::"
# serves IPv4 and IPv6 alike (when this kernel has IPv6 at all).
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" --bind-address 127.0.0.1 --secure-port "$PORT" --data-dir "$WORK/data1" \
  --cert-dir "$WORK/certs" >"$WORK/p.log" 2>&1 &
PIDS+=($!)
wait_for_log "$WORK/p.log" "serving on https://127.0.0.1:$PORT"
set +e
timeout 10 "$BIN" --bind-address 127.0.0.1 --secure-port "$PORT" --data-dir "$WORK/data2" \
  --cert-dir "$WORK/certs" >"$WORK/d.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || die "a second server on a taken port did not fail"
grep -q "cannot serve HTTPS on 127.0.0.1:$PORT: Address already in use" "$WORK/d.log" \
  || die "unclear message for a taken port: $(cat "$WORK/d.log")"
if [ -e /proc/net/if_inet6 ]; then
  P6=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::",0)); print(s.getsockname()[1])')
  "$BIN" --bind-address :: --secure-port "$P6" --data-dir "$WORK/data3" \
    --cert-dir "$WORK/certs" >"$WORK/e.log" 2>&1 &
  PIDS+=($!)
  wait_for_log "$WORK/e.log" "serving on https://\[::\]:$P6"
  for host in 127.0.0.1 '[::1]'; do
    [ "$(curl -sk "https://$host:$P6/healthz")" = ok ] || die "no answer on $host with --bind-address ::"
  done
fi
