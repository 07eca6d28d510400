#!/usr/bin/env bash
# The container image, as far as it can be checked with no container
# engine: the Dockerfile's build stage installs its dependencies with the
# script CI and `make` use; the runtime stage installs exactly the packages
# the release binary links (hack/runtime-packages.txt against ldd and
# dpkg -S); it runs as a fixed numeric non-root user that the Deployment's
# securityContext names too; the release binary, run as that user with the
# image's arguments on a read-only root filesystem, serves with only its
# data volume writable; and `make image` picks an engine that answers or
# fails saying what is missing.
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=test/e2e/lib.sh
source test/e2e/lib.sh

PY=/usr/bin/python3
ROOT=$PWD
# The release binary: the image ships it, not the sanitizer build in $BIN
# (which links libasan and libubsan besides).
REL=$ROOT/bin/edge-apiserver
[ -x "$REL" ] || make bin/edge-apiserver >"$WORK/make.log" 2>&1 || die "build failed: $(tail -20 "$WORK/make.log")"

# ---------------------------------------------------------------------------
# The Dockerfile as data: its stages, each a list of [instruction, argument]
# with continuation lines joined and comments dropped.
"$PY" - Dockerfile >"$WORK/dockerfile.json" <<'PY' || die "cannot parse the Dockerfile"
import json, re, sys
stages, line = [], ""
for raw in open(sys.argv[1]):
    s = raw.rstrip("\n")
    if not line and re.match(r"\s*#", s):
        continue
    if s.endswith("\\"):
        line += s[:-1] + " "
        continue
    line += s
    if line.strip():
        ins, _, arg = line.strip().partition(" ")
        ins = ins.upper()
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", arg.strip(), re.I)
            stages.append({"image": m.group(1), "name": m.group(2), "steps": []})
        elif stages:
            stages[-1]["steps"].append([ins, re.sub(r"\s+", " ", arg.strip())])
    line = ""
json.dump(stages, sys.stdout)
PY

echo "== the build stage installs with hack/install-deps.sh --build"
"$PY" - "$WORK/dockerfile.json" Makefile <<'PY' || die "the Dockerfile's build stage"
import json, re, sys
stages = json.load(open(sys.argv[1]))
errors = []
if len(stages) != 2:
    errors.append("want two stages (build, runtime), found %d" % len(stages))
build, run = stages[0], stages[-1]
if build["image"] != "debian:bookworm":
    errors.append("build stage is FROM %s, want debian:bookworm" % build["image"])
if run["image"] != "debian:bookworm-slim":
    errors.append("runtime stage is FROM %s, want debian:bookworm-slim" % run["image"])
runs = [a for i, a in build["steps"] if i == "RUN"]
# What CI and `make` run to install the build dependencies: the recipe of
# the Makefile's deps-build target.
mk = open(sys.argv[2]).read()
m = re.search(r"^deps-build:\n\t@?(.*)$", mk, re.M)
ci = m.group(1).strip() if m else None
if ci != "hack/install-deps.sh --build":
    errors.append("the Makefile's deps-build runs %r" % ci)
elif not any(re.search(r"(^|&& )" + re.escape(ci) + r"( |$)", r) for r in runs):
    errors.append("no RUN of the build stage runs %r: %r" % (ci, runs))
if not any(re.search(r"(^|&& )make( -j\S*)* bin/edge-apiserver( |$)", r) for r in runs):
    errors.append("no RUN of the build stage makes bin/edge-apiserver: %r" % runs)
copies = [a for i, a in run["steps"] if i == "COPY" and a.startswith("--from=")]
if not any(c.split()[0] == "--from=%s" % build["name"] and c.split()[1] == "/src/bin/edge-apiserver"
           and c.split()[2] == "/usr/local/bin/edge-apiserver" for c in copies):
    errors.append("the runtime stage does not copy the built binary to /usr/local/bin: %r" % copies)
if errors:
    sys.exit("\n".join(errors))
PY
# The build stage must compile from the sources, not from this machine's
# objects and binaries.
for d in build bin .git out; do
  grep -qxF "$d" .dockerignore || die ".dockerignore does not leave out $d/"
done

echo "== the runtime packages are the ones the binary links"
# The rule (also at the top of hack/runtime-packages.txt): one package per
# shared library the binary names itself (DT_NEEDED), resolved to a file by
# ldd and to its package by dpkg -S, minus BASE; plus NOT_LIBRARIES.
#   BASE           in every Debian image: the C library, whose package
#                  also holds the loader (ld-linux); linux-vdso is the
#                  kernel's and has no file at all.
#   NOT_LIBRARIES  installed for what the binary reads, not links:
#                  the CA bundle for HTTPS chart repositories.
BASE=(libc6)
NOT_LIBRARIES=(ca-certificates)
"$PY" - "$WORK/dockerfile.json" <<'PY' || die "the runtime stage does not install hack/runtime-packages.txt"
import json, sys
run = json.load(open(sys.argv[1]))[-1]["steps"]
copied = [a for i, a in run if i == "COPY" and a.split()[0] == "hack/runtime-packages.txt"]
if len(copied) != 1:
    sys.exit("the runtime stage copies hack/runtime-packages.txt %d times" % len(copied))
dest = copied[0].split()[1]
if not any(i == "RUN" and dest in a and "apt-get install" in a and "--no-install-recommends" in a
           for i, a in run):
    sys.exit("no RUN installs the packages of %s with --no-install-recommends" % dest)
# Nothing else is installed: the list is the one place.
for i, a in run:
    if i == "RUN" and "apt-get install" in a and dest not in a:
        sys.exit("a RUN installs packages outside the list: %s" % a)
PY
sed 's/#.*//' hack/runtime-packages.txt | tr -s ' \t' '\n' | sed '/^$/d' | sort >"$WORK/listed"
[ "$(sort -u "$WORK/listed" | wc -l)" = "$(wc -l <"$WORK/listed")" ] ||
  die "hack/runtime-packages.txt names a package twice"

# owner FILE: the Debian package that holds a library file. dpkg knows a
# file by the path it was packaged at, which on a merged-/usr system may
# be /lib/... or /usr/lib/..., and possibly under another link name.
owner() {
  local f=$1 real c
  real=$(readlink -f "$f")
  for c in "$f" "$real" "${f#/usr}" "/usr$f" "${real#/usr}" "/usr$real"; do
    dpkg-query -S "$c" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1 && return 0
  done
  return 1
}

# shellcheck source=/dev/null
. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ] || ! command -v dpkg-query >/dev/null; then
  echo "skip: the runtime stage is Debian 12; package names checked on ${PRETTY_NAME:-this system} would not be its"
else
  ldd "$REL" >"$WORK/ldd" || die "ldd $REL failed"
  grep -q "not found" "$WORK/ldd" && die "ldd cannot resolve every library: $(grep 'not found' "$WORK/ldd")"
  # soname -> path, for every library ldd resolves (direct and indirect).
  awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' "$WORK/ldd" >"$WORK/resolved"
  objdump -p "$REL" | awk '$1 == "NEEDED" {print $2}' >"$WORK/needed"
  [ -s "$WORK/needed" ] || die "the binary names no shared libraries (objdump -p)"
  : >"$WORK/direct"
  while read -r so; do
    path=$(awk -v so="$so" '$1 == so {print $2}' "$WORK/resolved")
    [ -n "$path" ] || die "ldd does not resolve $so, which the binary needs"
    pkg=$(owner "$path") || die "no package holds $path ($so)"
    echo "$pkg" >>"$WORK/direct"
  done <"$WORK/needed"
  { grep -vxF -f <(printf '%s\n' "${BASE[@]}") "$WORK/direct" || true
    printf '%s\n' "${NOT_LIBRARIES[@]}"; } | sort -u >"$WORK/wanted"
  diff "$WORK/wanted" "$WORK/listed" >"$WORK/pkgs.diff" ||
    die "hack/runtime-packages.txt differs from what the binary links (< missing from the list, > not linked):
$(cat "$WORK/pkgs.diff")"

  # Every library ldd resolves, indirect ones too, must come with the list:
  # a listed package, one they depend on (recursively), or BASE.
  xargs apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances <"$WORK/listed" 2>/dev/null | grep -v '^[ <]' | sort -u >"$WORK/closure"
  printf '%s\n' "${BASE[@]}" >>"$WORK/closure"
  [ "$(wc -l <"$WORK/closure")" -gt "$(wc -l <"$WORK/listed")" ] ||
    die "apt-cache depends gave nothing for the listed packages"
  missing=()
  while read -r so path; do
    pkg=$(owner "$path") || die "no package holds $path ($so)"
    grep -qxF "$pkg" "$WORK/closure" || missing+=("$so ($pkg)")
  done <"$WORK/resolved"
  [ ${#missing[@]} -eq 0 ] ||
    die "libraries the binary loads that the listed packages do not bring in: ${missing[*]}"
fi

echo "== a numeric non-root user, the same in the Deployment"
"$PY" - "$WORK/dockerfile.json" manifests/07-deployment.yaml hack/build-image.sh >"$WORK/ids" <<'PY' ||
import json, re, sys, yaml
run = json.load(open(sys.argv[1]))[-1]["steps"]
errors = []
def fail(m): errors.append(m)
users = [a for i, a in run if i == "USER"]
uid = gid = None
if len(users) != 1:
    fail("the runtime stage sets USER %d times, want once" % len(users))
elif not re.fullmatch(r"\d+:\d+", users[0]):
    fail("USER %r is not numeric UID:GID (a kubelet checks runAsNonRoot on numbers only)" % users[0])
else:
    uid, gid = (int(x) for x in users[0].split(":"))
    if uid == 0 or gid == 0:
        fail("USER %s is root" % users[0])
kinds = [i for i, _ in run]
if "USER" in kinds and "RUN" in kinds and \
        kinds.index("USER") < max(n for n, i in enumerate(kinds) if i == "RUN"):
    fail("a RUN comes after USER (it would run as the server's user, or undo it)")
def one(i):
    got = [a for x, a in run if x == i]
    return got[-1] if got else None
def exec_form(a):
    try:
        return json.loads(a)
    except (TypeError, ValueError):
        fail("%r is not in exec (JSON) form" % a)
        return []
entry, cmd = exec_form(one("ENTRYPOINT")), exec_form(one("CMD"))
vols = exec_form(one("VOLUME"))
if vols != ["/var/lib/edge-apiserver"]:
    fail("VOLUME is %r, want the data directory /var/lib/edge-apiserver" % vols)
# Everything the default arguments write lives on the volume.
for a in cmd:
    k, _, v = a.partition("=")
    if k in ("--data-dir", "--cert-dir", "--audit-log-path") and not \
            (v + "/").startswith("/var/lib/edge-apiserver/"):
        fail("CMD %s is not on the data volume" % a)
if one("WORKDIR") != "/var/lib/edge-apiserver":
    fail("WORKDIR is %r: relative defaults (./data) must land on the volume" % one("WORKDIR"))

dep = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d and d["kind"] == "Deployment"][0]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
def eff(k):  # the container's field, else the pod's
    return csc.get(k, psc.get(k))
if eff("runAsUser") != uid or eff("runAsGroup") != gid:
    fail("the Deployment runs as %r:%r, the image as %r:%r" % (eff("runAsUser"), eff("runAsGroup"), uid, gid))
if psc.get("fsGroup") != gid:
    fail("fsGroup %r is not the image's GID %r (the PVC would not be writable)" % (psc.get("fsGroup"), gid))
for k, want in (("runAsNonRoot", True), ("seccompProfile", {"type": "RuntimeDefault"})):
    if eff(k) != want:
        fail("securityContext %s is %r, want %r" % (k, eff(k), want))
for k, want in (("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False),
                ("capabilities", {"drop": ["ALL"]}), ("privileged", None)):
    if csc.get(k) != want:
        fail("container securityContext %s is %r, want %r" % (k, csc.get(k), want))
mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod.get("volumes", [])}
if "emptyDir" not in vols.get(mounts.get("/tmp"), {}):
    fail("/tmp is not an emptyDir (the root filesystem is read-only)")
if c.get("command") != entry:
    fail("the Deployment's command %r is not the image's ENTRYPOINT %r" % (c.get("command"), entry))
m = re.search(r"image=\$\{IMAGE:-([^}]+)\}", open(sys.argv[3]).read())
if not m or c.get("image") != m.group(1):
    fail("the Deployment runs image %r, make image tags %r" % (c.get("image"), m and m.group(1)))
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(uid, gid, " ".join(cmd))
PY
  die "$(cat "$WORK/ids")"
read -r IMG_UID IMG_GID IMG_ARGS <"$WORK/ids"

echo "== as that user on a read-only root filesystem"
# The release binary with the image's arguments, the data volume's path
# replaced by a directory of the test's: everything but that directory is
# read-only (a private mount namespace), and the process has the image's
# UID and GID and no capabilities. Needs root to set this up.
if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
  echo "skip: setting up a read-only root filesystem needs root and unshare"
else
  vol=$WORK/vol
  mkdir -p "$vol"
  chown "$IMG_UID:$IMG_GID" "$vol"
  chmod 0750 "$vol"
  chmod 0711 "$WORK"
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  read -ra args <<<"${IMG_ARGS//\/var\/lib\/edge-apiserver/$vol}"
  # Mount, drop to the user, then the binary; one process throughout
  # (each step execs the next), so its PID is the server's.
  # shellcheck disable=SC2016 # expanded by the inner shell
  UID_=$IMG_UID GID_=$IMG_GID unshare -m --propagation private sh -c '
    vol=$1; shift
    mount --bind "$vol" "$vol" && mount -o remount,bind,ro / || exit 97
    cd "$vol" || exit 98
    exec setpriv --reuid "$UID_" --regid "$GID_" --clear-groups --inh-caps=-all --bounding-set=-all \
      --no-new-privs "$@"' sh "$vol" "$REL" --bind-address 127.0.0.1 --secure-port "$PORT" "${args[@]}" \
    >"$WORK/ro.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_for_log "$WORK/ro.log" "serving on" 20
  ok=
  for _ in $(seq 100); do
    [ "$(curl -sk "https://127.0.0.1:$PORT/readyz" || true)" = ok ] && { ok=1; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$ok" ] || die "the server on a read-only root never became ready: $(tail -20 "$WORK/ro.log")"
  [ "$(stat -c %u "/proc/$pid")" = "$IMG_UID" ] || die "the server does not run as UID $IMG_UID"
  grep -q '^CapEff:[[:space:]]*0*$' "/proc/$pid/status" || die "the server has capabilities: $(grep Cap "/proc/$pid/status")"
  [ -s "$vol/data.mdb" ] || die "no LMDB store in the data volume: $(ls -la "$vol")"
  ls "$vol"/certificates/*.crt >/dev/null 2>&1 || die "--cert-dir did not get the self-signed certificate: $(ls -laR "$vol")"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  grep -qi 'read-only\|permission denied' "$WORK/ro.log" && die "the server tried to write elsewhere: $(cat "$WORK/ro.log")"
fi

echo "== make image picks an engine that answers, or says what is missing"
# A PATH with only what make and the script need, and stand-in engines.
tools=$WORK/tools
mkdir -p "$tools"
for t in bash sh dirname cat; do ln -s "$(command -v "$t")" "$tools/$t"; done
MAKE=$(command -v make)
stub() {  # stub NAME ANSWERS: an engine whose `info` succeeds when ANSWERS=1
  cat >"$tools/$1" <<EOF
#!$(command -v bash)
case \$1 in
  info) [ $2 = 1 ] || { echo "Cannot connect to the daemon" >&2; exit 1; }; exit 0 ;;
  build) echo "\$PWD|\$*" >>"$WORK/$1.calls"; exit 0 ;;
esac
exit 3
EOF
  chmod +x "$tools/$1"
}
mk_image() { env -i PATH="$tools" HOME="$WORK" "$@" "$MAKE" -s -C "$ROOT" image >"$WORK/image.out" 2>&1; }

# Neither command exists.
mk_image && die "make image with no engine succeeded: $(cat "$WORK/image.out")"
grep -q "no container engine" "$WORK/image.out" || die "make image with no engine says: $(cat "$WORK/image.out")"
for e in docker podman; do
  grep -q "$e: not installed" "$WORK/image.out" || die "make image does not say $e is missing: $(cat "$WORK/image.out")"
done
# Both exist; neither answers.
stub docker 0; stub podman 0
mk_image && die "make image with no engine answering succeeded: $(cat "$WORK/image.out")"
for e in docker podman; do
  grep -q "$e: installed, but '$e info' fails" "$WORK/image.out" ||
    die "make image does not say $e does not answer: $(cat "$WORK/image.out")"
done
if [ -e "$WORK/docker.calls" ] || [ -e "$WORK/podman.calls" ]; then
  die "make image built with an engine that did not answer"
fi
# podman answers: it builds, from the repository, with the Deployment's tag.
stub podman 1
mk_image || die "make image with podman answering failed: $(cat "$WORK/image.out")"
[ "$(cat "$WORK/podman.calls")" = "$ROOT|build -f Dockerfile -t edge-apiserver:latest ." ] ||
  die "make image ran: $(cat "$WORK/podman.calls")"
# docker answers too: docker first; IMAGE sets the tag.
stub docker 1
mk_image IMAGE=registry.example/edge-apiserver:v1 || die "make image with docker failed: $(cat "$WORK/image.out")"
[ "$(cat "$WORK/docker.calls")" = "$ROOT|build -f Dockerfile -t registry.example/edge-apiserver:v1 ." ] ||
  die "make image ran: $(cat "$WORK/docker.calls")"
[ "$(wc -l <"$WORK/podman.calls")" = 1 ] || die "make image ran podman although docker answered"

echo "ok"
