#!/usr/bin/env bash
# Runs the benchmarks and prints their figures. Not part of `make test`.
# The store benchmark needs a real disk: it uses a folder under build/.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "== storage (in-process)"
build/rel/bench_store "$PWD/build/bench-store"
echo "== JSON encoding (in-process): json_dumps against lib/json/jenc"
build/rel/bench_jenc
echo "== HTTP (edge-apiserver next to etcd 3.4)" && test/bench/bench_http.sh
echo "== authorization (SubjectAccessReview webhook over HTTPS, in-process decisions)" && test/bench/bench_authz.sh
echo "== controllers (in-process): a template change through 1,000 IAMRoles, a resync of 10,000"
build/rel/bench_controllers "$PWD/build/bench-ctrl"
echo "== Components: 200 in a dependency chain 10 deep, Pending to Installed with a stand-in helm"
test/bench/bench_components.sh
