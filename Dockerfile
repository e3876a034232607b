# The parafork agent image: `parafork agent`, as the Helm chart (charts/parafork) runs it.
#
#   docker build -t REGISTRY/parafork:VERSION .
#
# Two stages. The builder compiles the native addon (node-gyp: g++, make, python3) and the
# TypeScript; the runtime stage gets only what runs: Node.js, dist/, the native binaries,
# production node_modules, crds/ and package.json; no compilers, no dev dependencies, no sources.
# The builder's steps live in scripts/container-build.sh, which a test runs as written here, in the
# same order, in a clean copy of the build context (test/integration/container-build.test.ts).

# Node.js 24, the LTS line. Debian bookworm, slim: the runtime is what Tasks see as their root
# filesystem by default (sandbox.rootfs "/"), so it keeps a shell and coreutils and little else.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS builder
# Compilers for node-gyp, and libseccomp's headers for the sandbox's system call filter. The
# official images carry Node's headers next to the node binary: node-gyp downloads nothing.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make python3 libseccomp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a change in the sources reuses this layer.
COPY package.json package-lock.json ./
COPY scripts/container-build.sh scripts/
RUN scripts/container-build.sh dependencies
COPY . .
RUN scripts/container-build.sh build
RUN scripts/container-build.sh install /opt/parafork

FROM ${NODE_IMAGE}
# The runtime needs libseccomp2 for the sandbox; bookworm-slim already has it (apt depends on it).
COPY --from=builder /opt/parafork /opt/parafork
# --max-semi-space-size: V8 would grow the young generation to 134 MB under a steady stream of
# Tasks; capped, the agent stays within its memory budget (docs/benchmarks.md, issue 7), and
# the agent lets it grow to the cap (src/agent/heap-sizing.ts).
ENV PATH=/opt/parafork/bin:$PATH \
    NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8
WORKDIR /opt/parafork
# Root, and no USER: the sandbox creates namespaces, mounts and cgroups and switches each Task to
# its own user, which needs capabilities that Kubernetes grants a container only when it runs as
# uid 0. The chart drops every other capability (charts/parafork/values.yaml, securityContext).
# Task processes are reaped by the agent through pidfds, and each Task's orphans by the init of
# its own PID namespace, so the agent can be PID 1 itself without an init in front of it.
# /healthz, /readyz and /metrics.
EXPOSE 9464
ENTRYPOINT ["parafork"]
CMD ["agent"]
