# Shared by test_components.sh and the components benchmark; sourced.
# Needs lib.sh first (WORK, PIDS, wait_for_log, die).
#
#   member_start              a second edge-apiserver as the member cluster:
#                             MURL, MTOKEN, $WORK/member-certs
#   member_cluster NAME       a Cluster NAME for it (kubeconfig with its CA
#                             and token)
#   repo_build DIR CHART...   charts (NAME:VERSION[:bad][:url=U], COLON for
#                             each ":" of U) as gzip
#                             tars and an index.yaml with their sha256
#                             digests in DIR (":bad" records a wrong digest)
#   repo_serve DIR            python3 http.server on loopback: RPORT, RPID
#   fake_helm PATH LOG        a stand-in helm: each run appends its
#                             arguments to LOG and "install NAME" or
#                             "uninstall NAME" to LOG.order; copies the
#                             values file to LOG.values.NAME and the
#                             kubeconfig to LOG.kubeconfig.NAME; release
#                             "boom" fails as helm does ("Error: ...")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

member_start() {
  local port
  port=$(free_port)
  MTOKEN=member-token-$RANDOM$RANDOM
  echo "$MTOKEN,member-admin,member-uid,\"system:masters\"" > "$WORK/member-tokens.csv"
  "$BIN" --bind-address 127.0.0.1 --secure-port "$port" --data-dir "$WORK/member-data" \
    --cert-dir "$WORK/member-certs" --token-auth-file "$WORK/member-tokens.csv" \
    --cluster-name member >"$WORK/member.log" 2>&1 &
  PIDS+=($!)
  wait_for_log "$WORK/member.log" "serving on" 20
  MURL=https://127.0.0.1:$port
}

member_cluster() {
  local kc
  kc=$(cat <<YAML | base64 -w0
apiVersion: v1
kind: Config
clusters:
- name: member
  cluster:
    server: $MURL
    certificate-authority-data: $(base64 -w0 < "$WORK/member-certs/ca.crt")
users:
- name: u
  user:
    token: $MTOKEN
contexts:
- name: c
  context: {cluster: member, user: u}
current-context: c
YAML
)
  echo "{\"apiVersion\":\"scope.theriseunion.io/v1alpha1\",\"kind\":\"Cluster\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"type\":\"physical\",\"distribution\":\"k3s\",\"connection\":{\"type\":\"direct\",\"kubeconfig\":\"$kc\"}}}" \
    | kubectl create -f - >/dev/null || die "create cluster $1"
}

repo_build() {
  local dir=$1; shift
  mkdir -p "$dir"
  python3 - "$dir" "$@" <<'PY' || die "building the chart repository"
import hashlib, io, sys, tarfile
d, specs = sys.argv[1], sys.argv[2:]
entries = {}
for spec in specs:
    parts = spec.split(":")
    name, version, opts = parts[0], parts[1], parts[2:]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        def add(path, data):
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
        add(f"{name}/Chart.yaml", f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode())
        add(f"{name}/values.yaml", b"replicas: 1\n")
        add(f"{name}/templates/configmap.yaml", b"apiVersion: v1\nkind: ConfigMap\n")
    data = buf.getvalue()
    fname = f"{name}-{version}.tgz"
    open(f"{d}/{fname}", "wb").write(data)
    digest = hashlib.sha256(data).hexdigest()
    url = fname
    for o in opts:
        if o == "bad":
            digest = hashlib.sha256(data + b"x").hexdigest()
        elif o.startswith("url="):
            url = o[4:].replace("COLON", ":")
    entries.setdefault(name, []).append(
        {"name": name, "version": version, "digest": digest, "urls": [url],
         "created": "2024-01-01T00:00:00Z", "apiVersion": "v2"})
with open(f"{d}/index.yaml", "w") as f:
    f.write("apiVersion: v1\nentries:\n")
    for name, es in entries.items():
        f.write(f"  {name}:\n")
        for e in es:
            f.write(f"  - apiVersion: v2\n    name: {e['name']}\n    version: \"{e['version']}\"\n"
                    f"    digest: {e['digest']}\n    created: \"{e['created']}\"\n"
                    f"    urls:\n    - {e['urls'][0]}\n")
    f.write("generated: \"2024-01-01T00:00:00Z\"\n")
PY
}

repo_serve() {
  RPORT=${RPORT:-$(free_port)}
  python3 -m http.server --bind 127.0.0.1 --directory "$1" "$RPORT" >"$WORK/repo.log" 2>&1 &
  RPID=$!
  PIDS+=($RPID)
  local i=0
  until curl -s -o /dev/null "http://127.0.0.1:$RPORT/"; do
    i=$((i + 1)); [ $i -le 100 ] || die "the chart repository did not start: $(cat "$WORK/repo.log")"
    sleep 0.1
  done
}

fake_helm() {
  cat > "$1" <<SH
#!/usr/bin/env bash
# A stand-in for helm: records what it was asked and succeeds.
log=$2
echo "\$*" >> "\$log"
release=""; values=""; kubeconfig=""
cmd=\$1
[ "\$cmd" = upgrade ] && release=\$3
[ "\$cmd" = uninstall ] && release=\$2
while [ \$# -gt 0 ]; do
  case \$1 in --values) values=\$2; shift ;; --kubeconfig) kubeconfig=\$2; shift ;; esac
  shift
done
[ -n "\$values" ] && cp "\$values" "\$log.values.\$release"
[ -n "\$kubeconfig" ] && cp "\$kubeconfig" "\$log.kubeconfig.\$release"
if [ "\$release" = boom ] && [ "\$cmd" = upgrade ]; then
  echo "Release \"boom\" does not exist. Installing it now."
  echo "Error: INSTALLATION FAILED: the chart did not deploy" >&2
  exit 1
fi
case \$cmd in upgrade) echo "install \$release" >> "\$log.order" ;; uninstall) echo "uninstall \$release" >> "\$log.order" ;; esac
echo "Release \"\$release\" has been upgraded. Happy Helming!"
SH
  chmod +x "$1"
}
