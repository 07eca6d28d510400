#!/usr/bin/env bash
# Prints a self-contained kubeconfig for a running edge-apiserver: the CA
# and, for certificate users, the client certificate and key are embedded
# (the *-data fields, base64), so the file works wherever it is copied.
#
#   hack/print-kubeconfig.sh SERVER CA_FILE --token TOKEN [--name NAME]
#   hack/print-kubeconfig.sh SERVER CA_FILE --client-cert CRT --client-key KEY [--name NAME]
#
# SERVER is the base URL (https://127.0.0.1:6443); CA_FILE verifies its
# serving certificate (ca.crt from hack/gen-certs.sh, or the server's
# --cert-dir). NAME names the cluster, user and context (edge-apiserver).
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: hack/print-kubeconfig.sh SERVER CA_FILE --token TOKEN [--name NAME]
       hack/print-kubeconfig.sh SERVER CA_FILE --client-cert CRT --client-key KEY [--name NAME]
EOF
  exit 2
}

die() { echo "print-kubeconfig: $*" >&2; exit 1; }

token='' crt='' key='' name=edge-apiserver
positional=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage ;;
    --token) [ $# -ge 2 ] || usage; token=$2; shift 2 ;;
    --token=*) token=${1#*=}; shift ;;
    --client-cert) [ $# -ge 2 ] || usage; crt=$2; shift 2 ;;
    --client-cert=*) crt=${1#*=}; shift ;;
    --client-key) [ $# -ge 2 ] || usage; key=$2; shift 2 ;;
    --client-key=*) key=${1#*=}; shift ;;
    --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    -*) echo "print-kubeconfig: unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -eq 2 ] || usage
server=${positional[0]} ca=${positional[1]}

case $server in https://*) ;; *) die "SERVER must be an https:// URL: $server" ;; esac
[ -r "$ca" ] || die "cannot read CA file $ca"
if [ -n "$token" ]; then
  [ -z "$crt$key" ] || die "give either --token or --client-cert/--client-key, not both"
else
  if [ -z "$crt" ] || [ -z "$key" ]; then usage; fi
  [ -r "$crt" ] || die "cannot read client certificate $crt"
  [ -r "$key" ] || die "cannot read client key $key"
fi

b64() { base64 -w0 < "$1"; }
# A YAML single-quoted scalar: only the quote itself needs escaping.
quote() { printf "'%s'" "${1//\'/\'\'}"; }

cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $(quote "$name")
  cluster:
    server: $(quote "$server")
    certificate-authority-data: $(b64 "$ca")
users:
- name: $(quote "$name")
  user:
EOF
if [ -n "$token" ]; then
  echo "    token: $(quote "$token")"
else
  echo "    client-certificate-data: $(b64 "$crt")"
  echo "    client-key-data: $(b64 "$key")"
fi
cat <<EOF
contexts:
- name: $(quote "$name")
  context:
    cluster: $(quote "$name")
    user: $(quote "$name")
current-context: $(quote "$name")
EOF
