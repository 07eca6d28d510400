#!/usr/bin/env bash
# Makes the certificates edge-apiserver needs inside a cluster and renders
# manifests/ with them.
#
#   hack/gen-certs.sh OUTDIR [OVERLAY]
#
# Writes into OUTDIR:
#   ca.crt, ca.key                   the CA that signs both certificates below
#   tls.crt, tls.key                 serving certificate (serverAuth) for the
#                                    Service edge-system/edge-apiserver
#   webhook-client.crt, .key         client certificate (clientAuth,
#                                    CN=kube-apiserver-webhook) kube-apiserver
#                                    presents when it calls POST /authorize
#   manifests/                       manifests/*.yaml with ${CA_BUNDLE}
#                                    filled in, plus 06-secret-tls.yaml (the
#                                    Secret edge-apiserver-tls)
#   manifests/kube-apiserver/        the kube-apiserver files, filled in
#
# and into OVERLAY (default OUTDIR/overlay) a kustomize overlay of
# manifests/ for `kubectl apply -k OVERLAY`:
#   kustomization.yaml               the base (manifests/, by a relative
#                                    path) plus the two files below
#   secret-tls.yaml                  the Secret edge-apiserver-tls, as above
#   apiservice-cabundle.yaml         a JSON patch that sets every
#                                    APIService's caBundle to the CA
# Only these three files of OVERLAY are written; anything else there stays.
# OVERLAY may not lie inside manifests/: kustomize refuses a base that
# contains its overlay.
#
# Running it again keeps what is still good: the CA while ca.crt and ca.key
# are there, and each certificate while it chains to the CA, has the right
# names and usage, matches its key and stays valid for 30 more days. Delete a
# file to force a new one. The rendered manifests are always rewritten.
#
# Environment:
#   EXTRA_SANS  more subjectAltNames for the serving certificate, e.g.
#               "IP:10.96.0.50,DNS:edge.example.com" (the Service ClusterIP
#               when kube-apiserver cannot resolve the Service name)
#   DAYS        validity of the serving and client certificates (365)
#   CA_DAYS     validity of a new CA (3650)
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: hack/gen-certs.sh OUTDIR [OVERLAY]

Creates a CA, a serving certificate for edge-apiserver.edge-system.svc and a
client certificate for kube-apiserver's webhook calls in OUTDIR, renders
the manifests into OUTDIR/manifests with the CA bundle filled in, and writes
a kustomize overlay with the Secret and the CA bundle into OVERLAY (default
OUTDIR/overlay, not inside manifests/), for `kubectl apply -k OVERLAY`.
Environment: EXTRA_SANS (e.g. "IP:10.96.0.50"), DAYS (365), CA_DAYS (3650).
EOF
  exit 2
}

[ $# -eq 1 ] || [ $# -eq 2 ] || usage
case $1 in -h|--help) usage ;; esac
command -v openssl >/dev/null || { echo "gen-certs: openssl not found" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
overlay=$(realpath -m "${2:-$out/overlay}")
case $overlay/ in
  "$(realpath "$root/manifests")"/*)
    echo "gen-certs: the overlay $overlay is inside manifests/, which kustomize refuses" \
      "(a base may not contain its overlay); name a directory elsewhere" >&2
    exit 2 ;;
esac
mkdir -p "$overlay"

days=${DAYS:-365}
ca_days=${CA_DAYS:-3650}
renew_before=$((30 * 24 * 3600))

namespace=edge-system
service=edge-apiserver
sans="DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc"
sans="$sans,DNS:$service.$namespace.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
[ -z "${EXTRA_SANS:-}" ] || sans="$sans,$EXTRA_SANS"

# Keys are private from the moment they are written.
umask 077
tmp=$(mktemp -d "$out/.gen-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One OpenSSL configuration for all three certificates, so nothing depends
# on the system's openssl.cnf.
cat > "$tmp/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = edge-apiserver-ca
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF

log() { echo "gen-certs: $*" >&2; }

# key_matches CRT KEY: the certificate carries the key's public half.
key_matches() {
  [ "$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" = \
    "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}

# has_sans CRT: every wanted subjectAltName is on the certificate.
has_sans() {
  local have want wanted
  have=$(openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null |
    tail -n +2 | tr ',' '\n' | sed 's/^ *//; s/^IP Address:/IP:/')
  IFS=, read -ra wanted <<<"$sans"
  for want in "${wanted[@]}"; do
    grep -qxF -- "$want" <<<"$have" || return 1
  done
}

# still_good CRT KEY PURPOSE: chains to the CA for PURPOSE (sslserver or
# sslclient, which checks the extended key usage), matches its key, and is
# not about to expire.
still_good() {
  [ -s "$1" ] && [ -s "$2" ] &&
    openssl verify -CAfile "$out/ca.crt" -purpose "$3" "$1" >/dev/null 2>&1 &&
    key_matches "$1" "$2" &&
    openssl x509 -in "$1" -noout -checkend "$renew_before" >/dev/null 2>&1
}

# sign NAME CN SECTION: a new key and certificate, written next to each
# other only once both exist.
sign() {
  local name=$1 cn=$2 section=$3
  openssl req -new -config "$tmp/openssl.cnf" -newkey rsa:2048 -nodes \
    -keyout "$tmp/$name.key" -out "$tmp/$name.csr" -subj "/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$tmp/openssl.cnf" -extensions "$section" -out "$tmp/$name.crt" 2>/dev/null
  chmod 600 "$tmp/$name.key"
  chmod 644 "$tmp/$name.crt"
  mv -f "$tmp/$name.key" "$out/$name.key"
  mv -f "$tmp/$name.crt" "$out/$name.crt"
  log "wrote $out/$name.crt (CN=$cn)"
}

# The CA.
if [ -s "$out/ca.crt" ] && [ -s "$out/ca.key" ] && key_matches "$out/ca.crt" "$out/ca.key"; then
  log "keeping CA $out/ca.crt"
elif [ -s "$out/ca.crt" ] && [ ! -e "$out/ca.key" ]; then
  log "$out/ca.crt exists without ca.key; cannot sign with it (remove ca.crt to start over)"
  exit 1
else
  openssl req -x509 -new -config "$tmp/openssl.cnf" -extensions ca \
    -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
    -days "$ca_days" -sha256 -subj "/CN=edge-apiserver-ca" 2>/dev/null
  chmod 600 "$tmp/ca.key"
  chmod 644 "$tmp/ca.crt"
  mv -f "$tmp/ca.key" "$out/ca.key"
  mv -f "$tmp/ca.crt" "$out/ca.crt"
  log "wrote CA $out/ca.crt"
fi

# The serving certificate.
if still_good "$out/tls.crt" "$out/tls.key" sslserver && has_sans "$out/tls.crt"; then
  log "keeping $out/tls.crt"
else
  sign tls "$service.$namespace.svc" serving
fi

# kube-apiserver's client certificate for the authorization webhook.
if still_good "$out/webhook-client.crt" "$out/webhook-client.key" sslclient &&
  [ "$(openssl x509 -in "$out/webhook-client.crt" -noout -subject -nameopt multiline |
    sed -n 's/^ *commonName *= *//p')" = kube-apiserver-webhook ]; then
  log "keeping $out/webhook-client.crt"
else
  sign webhook-client kube-apiserver-webhook client
fi

# The rendered manifests: a fresh copy each time, so nothing stale survives.
b64() { base64 -w0 < "$1"; }
ca_b64=$(b64 "$out/ca.crt")
rm -rf "$out/manifests"
mkdir -p "$out/manifests/kube-apiserver"
for f in "$root"/manifests/*.yaml; do
  # The plain files only: kubectl apply -f would take a kustomization for
  # an object.
  [ "$(basename "$f")" != kustomization.yaml ] || continue
  sed "s|\${CA_BUNDLE}|$ca_b64|g" "$f" > "$out/manifests/$(basename "$f")"
done
chmod 644 "$out"/manifests/*.yaml

secret_tls() {
  cat <<EOF
# The serving certificate of edge-apiserver, its key, and the CA that signed
# it and kube-apiserver's webhook client certificate (--client-ca-file).
apiVersion: v1
kind: Secret
metadata:
  name: edge-apiserver-tls
  namespace: $namespace
  labels:
    app.kubernetes.io/name: edge-apiserver
    app.kubernetes.io/part-of: edge-apiserver
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$out/tls.crt")
  tls.key: $(b64 "$out/tls.key")
  ca.crt: $ca_b64
EOF
}
secret_tls > "$out/manifests/06-secret-tls.yaml"

client_crt_b64=$(b64 "$out/webhook-client.crt")
client_key_b64=$(b64 "$out/webhook-client.key")
for f in "$root"/manifests/kube-apiserver/*; do
  case $f in
    *.md) cp "$f" "$out/manifests/kube-apiserver/"; continue ;;
  esac
  sed -e "s|\${CA_BUNDLE}|$ca_b64|g" \
    -e "s|\${WEBHOOK_CLIENT_CERT}|$client_crt_b64|g" \
    -e "s|\${WEBHOOK_CLIENT_KEY}|$client_key_b64|g" \
    "$f" > "$out/manifests/kube-apiserver/$(basename "$f")"
done
log "rendered manifests into $out/manifests"

# The overlay. kustomize takes a base by a path relative to the overlay;
# the Secret is a plain resource (a secretGenerator would rename it with a
# hash), and the caBundle a JSON patch on every APIService, since
# kustomize does not substitute placeholders.
base=$(realpath --relative-to="$overlay" "$root/manifests")
secret_tls > "$overlay/secret-tls.yaml"
cat > "$overlay/apiservice-cabundle.yaml" <<EOF
# The CA that signed edge-apiserver's serving certificate, which the
# aggregator verifies it against.
- op: replace
  path: /spec/caBundle
  value: $ca_b64
EOF
cat > "$overlay/kustomization.yaml" <<EOF
# Written by hack/gen-certs.sh (again on each run): manifests/ with the
# TLS Secret and the APIServices' caBundle. kubectl apply -k $overlay
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $base
- secret-tls.yaml
patches:
- path: apiservice-cabundle.yaml
  target:
    group: apiregistration.k8s.io
    version: v1
    kind: APIService
EOF
chmod 644 "$overlay/kustomization.yaml" "$overlay/apiservice-cabundle.yaml"
log "wrote the overlay $overlay (kubectl apply -k $overlay)"
