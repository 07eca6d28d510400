#!/usr/bin/env bash
# Prints a kubeconfig for a bearer token: kubeconfig.sh SERVER CA_FILE TOKEN
# The CA file may not exist yet (the server makes it at first start); the
# kubeconfig names its path, so it works once the server is up.
set -euo pipefail
server=$1 ca=$2 token=$3
cat <<YAML
apiVersion: v1
kind: Config
clusters:
- name: edge
  cluster:
    server: $server
    certificate-authority: $ca
users:
- name: admin
  user:
    token: $token
contexts:
- name: edge
  context:
    cluster: edge
    user: admin
current-context: edge
YAML
