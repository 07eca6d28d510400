#!/usr/bin/env bash
# Serves edge-apiserver locally on an embedded LMDB. Everything lives under
# .run/ (git-ignored): data, generated certificates, an admin token and a
# kubeconfig for it. Extra arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$PWD/.run
port=${PORT:-6443}
mkdir -p "$run"
if [ ! -s "$run/tokens.csv" ]; then
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,admin,admin-uid,\"system:masters\"" > "$run/tokens.csv"
  chmod 600 "$run/tokens.csv"
fi
token=$(cut -d, -f1 "$run/tokens.csv" | head -1)
hack/kubeconfig.sh "https://127.0.0.1:$port" "$run/certs/ca.crt" "$token" > "$run/kubeconfig"
echo "edge-apiserver: in another shell:  kubectl --kubeconfig $run/kubeconfig api-resources"
exec bin/edge-apiserver --bind-address 127.0.0.1 --secure-port "$port" \
  --data-dir "$run/data" --cert-dir "$run/certs" --token-auth-file "$run/tokens.csv" "$@"
