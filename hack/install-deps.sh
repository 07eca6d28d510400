#!/usr/bin/env bash
# Installs the Debian packages edge-apiserver needs to build, run and test,
# and only those that are missing, so it is cheap and safe to run every time.
#
#   hack/install-deps.sh          build + test dependencies
#   hack/install-deps.sh --build  only what `make` needs
#   hack/install-deps.sh --fuzz   what `make` needs, and clang's libFuzzer
set -euo pipefail

build_pkgs=(
  gcc make pkg-config
  libmicrohttpd-dev   # HTTPS server (TLS through GnuTLS)
  libjansson-dev      # JSON
  libyaml-dev         # YAML bodies and kubeconfig files
  liblmdb-dev         # embedded storage
  libcurl4-openssl-dev  # etcd JSON gateway and upstream calls
  libssl-dev openssl  # certificates and hashing
  zlib1g-dev          # gzip: Helm chart archives (lib/targz.c)
)
test_pkgs=(
  libcmocka-dev       # unit tests
  lmdb-utils          # mdb_stat for inspecting data dirs
  etcd-server         # etcd3 backend tests and benchmarks
  wrk                 # HTTP benchmarks
  python3-kubernetes  # the official Python client in e2e tests
  curl
)

fuzz_pkgs=(
  clang libclang-rt-14-dev  # `make fuzz` (libFuzzer); `make test` needs neither
)

pkgs=("${build_pkgs[@]}")
case "${1:-}" in
  --build) ;;
  --fuzz) pkgs+=("${fuzz_pkgs[@]}") ;;
  *) pkgs+=("${test_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
