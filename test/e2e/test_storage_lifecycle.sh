# The binary opens its data directory, refuses a second process on the same
# directory with a clear message, and shuts down cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"

"$BIN" --data-dir "$WORK/data" >"$WORK/a.log" 2>&1 &
PIDS+=($!); a=$!
wait_for_log "$WORK/a.log" "open at revision 0"

set +e
timeout 10 "$BIN" --data-dir "$WORK/data" >"$WORK/b.log" 2>&1
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
