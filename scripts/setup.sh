#!/usr/bin/env bash
# Sets this machine up for parafork from a fresh clone: Debian packages the build and tests need,
# Node.js 24 (from the npm registry package node@24 when the machine's Node is older than 22.19),
# the npm dependencies, and the build (native addon + TypeScript). Idempotent: quick when done.
#
# Source it to get Node 24 on PATH in the calling shell, or run it; scripts/test.sh and
# scripts/demo.sh call it first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages: compilers for the addon, GoogleTest for the native unit tests, libseccomp for
# the sandbox's syscall filter, Prometheus (and promtool) for the observability tests, openssl for the
# test control plane's certificates, curl, flock and ss for scripts/dev-cluster.sh, mmdebstrap for the
# agent image's Debian base (scripts/build-image.sh). Installed only when missing; `apt-get update`
# runs once first.
debian_packages=(g++ make python3 libgtest-dev openssl libseccomp-dev prometheus curl util-linux iproute2 mmdebstrap)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install ${missing[*]} (or install them and run again)" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

node_bin="$("$root/scripts/provision-node.sh")"
export PATH="$node_bin:$PATH"
echo "setup: node $(node --version) at $node_bin" >&2

cd "$root"
# npm ci only when the lock file changed since the last install.
stamp="node_modules/.parafork-installed"
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund >&2
  touch "$stamp"
fi
npm run --silent build >&2
# The control plane the integration tests start (kube-apiserver, etcd, kubectl; helm too), built
# from the Go module proxy into a cache outside the repo, so a fresh machine's first test run has
# it: about ten minutes cold, a no-op once cached. Needs Go >= 1.26 on PATH.
tools_bin="$("$root/scripts/build-tools.sh" | tail -n 1)"
echo "setup: control-plane tools (kube-apiserver, etcd, kubectl, helm) in $tools_bin" >&2
