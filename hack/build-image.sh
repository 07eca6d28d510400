#!/usr/bin/env bash
# Builds the container image from ./Dockerfile with the first container
# engine that answers: docker, then podman. An engine answers when
# `<engine> info` succeeds, i.e. its daemon or runtime is reachable by this
# user, not merely when its command is installed. With none, says which
# were missing or not answering and exits 1.
#
#   hack/build-image.sh            (what `make image` runs)
#
# Environment:
#   IMAGE             the tag (edge-apiserver:latest, what
#                     manifests/07-deployment.yaml names)
#   CONTAINER_ENGINE  use this engine only (docker, podman, or a path)
set -euo pipefail
cd "$(dirname "$0")/.."

image=${IMAGE:-edge-apiserver:latest}
read -ra candidates <<<"${CONTAINER_ENGINE:-docker podman}"

engine=
problems=()
for e in "${candidates[@]}"; do
  if ! command -v "$e" >/dev/null 2>&1; then
    problems+=("$e: not installed (no '$e' on PATH)")
  elif ! "$e" info >/dev/null 2>&1; then
    problems+=("$e: installed, but '$e info' fails (daemon not running, or not reachable by this user)")
  else
    engine=$e
    break
  fi
done

if [ -z "$engine" ]; then
  {
    echo "make image: no container engine answers, so no image was built."
    for p in "${problems[@]}"; do echo "  $p"; done
    echo "Install and start docker or podman (or set CONTAINER_ENGINE), then run 'make image' again."
  } >&2
  exit 1
fi

echo "make image: building $image with $engine"
exec "$engine" build -f Dockerfile -t "$image" .
