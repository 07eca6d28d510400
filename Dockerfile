# The edge-apiserver image (`make image`; manifests/07-deployment.yaml runs
# it). Two stages:
#
#   build    Debian 12 with the build dependencies, installed by the same
#            script CI and `make` use (hack/install-deps.sh --build), and
#            the release binary (`make bin/edge-apiserver`: no sanitizers,
#            no test hooks).
#   runtime  Debian 12 slim with only the libraries that binary links
#            (hack/runtime-packages.txt, checked against the binary by
#            test/e2e/test_image.sh) and the binary.
#
# The server runs as UID/GID 65532, never root, and writes only to its data
# volume (/var/lib/edge-apiserver: the LMDB store, the chart cache, helm's
# scratch files, and a self-signed serving certificate when no
# --tls-cert-file is given) and to the paths its flags name, so the root
# filesystem can be mounted read-only. The Deployment's securityContext
# (runAsUser/runAsGroup 65532) matches USER below.

FROM debian:bookworm AS build
WORKDIR /src
# The dependency layer first, so a source change does not reinstall them.
COPY hack/install-deps.sh hack/
RUN hack/install-deps.sh --build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" bin/edge-apiserver && strip --strip-debug bin/edge-apiserver

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY hack/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && sed 's/#.*//' /tmp/runtime-packages.txt | xargs -r apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/runtime-packages.txt
# A named account for the fixed IDs (tools that look the user up find a
# home), and the data directory it owns, so a fresh volume mounted there
# (docker, or a PVC with fsGroup) is writable.
RUN groupadd --system --gid 65532 edge-apiserver \
 && useradd --system --no-log-init --uid 65532 --gid 65532 --no-create-home \
      --home-dir /var/lib/edge-apiserver --shell /usr/sbin/nologin edge-apiserver \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/edge-apiserver
COPY --from=build /src/bin/edge-apiserver /usr/local/bin/edge-apiserver

USER 65532:65532
WORKDIR /var/lib/edge-apiserver
VOLUME ["/var/lib/edge-apiserver"]
EXPOSE 6443
ENTRYPOINT ["/usr/local/bin/edge-apiserver"]
# Defaults for `docker run`; the Deployment passes its own arguments.
# --cert-dir is where the self-signed certificate goes when no
# --tls-cert-file is given; point it elsewhere (or pass the files) as needed.
CMD ["--data-dir=/var/lib/edge-apiserver", "--cert-dir=/var/lib/edge-apiserver/certificates"]
