#!/usr/bin/env bash
# Serves edge-apiserver locally on an embedded LMDB under .run/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
exec bin/edge-apiserver --data-dir .run/data "$@"
