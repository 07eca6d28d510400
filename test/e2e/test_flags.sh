#!/usr/bin/env bash
# --help as kube-apiserver prints it: flags grouped by section, each with
# its type and default; an unknown flag or a bad value ends the process
# with an error that names the flag.
source "$(dirname "$0")/lib.sh"
"$BIN" --help > "$WORK/help" 2>&1 || die "--help failed: $(cat "$WORK/help")"
for s in "Secure serving" Authentication Authorization Etcd Audit Controllers Misc; do
  grep -qx "$s flags:" "$WORK/help" || die "no section $s: $(cat "$WORK/help")"
done
flags=$(grep -cE '^      --[a-z-]+ (string|uint|duration|bool) ' "$WORK/help")
[ "$flags" -ge 30 ] || die "only $flags flags listed"
grep -E '^      --[a-z-]+ (string|uint|duration|bool) ' "$WORK/help" > "$WORK/flags"
nodefault=$(grep -v default "$WORK/flags" || true)
[ -z "$nodefault" ] || die "flags without their default: $nodefault"
grep -A3 '^Etcd flags:' "$WORK/help" > "$WORK/etcd"
grep -q -- '--storage-backend string' "$WORK/etcd" || die "storage-backend not under Etcd"
grep -q -- '--leader-elect bool' "$WORK/help" || die "--leader-elect's type"
if "$BIN" --no-such-flag=1 > "$WORK/out" 2>&1; then die "an unknown flag was accepted"; fi
grep -q 'unknown flag: --no-such-flag' "$WORK/out" || die "unknown flag: $(cat "$WORK/out")"
if "$BIN" --secure-port=http > "$WORK/out" 2>&1; then die "a bad port was accepted"; fi
grep -q 'invalid value "http" for --secure-port' "$WORK/out" || die "bad value: $(cat "$WORK/out")"
if "$BIN" --etcd-compaction-interval=soon > "$WORK/out" 2>&1; then die "a bad duration was accepted"; fi
grep -q -- '--etcd-compaction-interval' "$WORK/out" || die "bad duration: $(cat "$WORK/out")"
echo "flags: ok"
