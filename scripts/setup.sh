#!/usr/bin/env bash
# Sets this machine up to run parafork from a fresh clone, and nothing more: the Debian packages the
# build needs, Node.js 24 (the npm registry package node@24, when the machine's Node is older than
# 22.19), the npm dependencies, the native addon and the TypeScript. One short line per step; a
# step's own output is shown only when it fails. Idempotent: a few seconds when done.
#
#   scripts/setup.sh           set up (about a minute on a fresh 2-vCPU machine; README)
#   scripts/setup.sh --tests   also the Debian packages only the tests use (scripts/test.sh)
#   scripts/setup.sh --env     print `export PATH=...` putting the project's Node first, for
#                              eval "$(scripts/setup.sh --env)"; sets nothing up
#
# The control-plane tools the integration tests start (kube-apiserver, etcd, kubectl, helm) are
# not built here: scripts/test.sh and `scripts/dev-cluster.sh up` build them when first needed
# (scripts/build-tools.sh, minutes from a cold cache, fetching Go when there is none).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=$SECONDS

step() { printf 'setup: %s\n' "$*" >&2; }

# run_quietly LABEL COMMAND...: "setup: LABEL ... N s" around COMMAND, whose output is kept aside
# and shown only if it fails.
run_quietly() {
  local label="$1" output step_started=$SECONDS
  shift
  printf 'setup: %s ...' "$label" >&2
  output="$(mktemp)"
  if ! "$@" >"$output" 2>&1; then
    printf ' FAILED:\n' >&2
    cat "$output" >&2
    rm -f "$output"
    step "FAILED: $label (its output is above)"
    return 1
  fi
  rm -f "$output"
  printf ' %d s\n' "$((SECONDS - step_started))" >&2
}

node_bin="" with_tests=0
case "${1-}" in
  --env)
    node_bin="$("$root/scripts/provision-node.sh" --cached-only)" || {
      echo "echo 'parafork: no Node.js >= 22.19 set up yet: run scripts/setup.sh first' >&2"
      exit 1
    }
    printf 'export PATH=%q:"$PATH"\n' "$node_bin"
    exit 0
    ;;
  --tests) with_tests=1 ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--tests | --env]" >&2; exit 2 ;;
esac

# Debian packages: the addon's compilers (g++, make, python3 for node-gyp) and libseccomp (the
# sandbox's syscall filter); npm when there is no Node at all. With --tests also GoogleTest (native
# unit tests), Prometheus (observability tests), openssl (the test control plane's certificates),
# curl, flock and ss (scripts/dev-cluster.sh), mmdebstrap (the agent image's Debian base,
# scripts/build-image.sh), strace (the order of a sandboxed child's calls,
# test/security/sandbox-bpf-programs.test.ts). Installed only when missing.
debian_packages=(g++ make python3 libseccomp-dev)
command -v npm >/dev/null || debian_packages+=(npm)
[ "$with_tests" = 1 ] && debian_packages+=(libgtest-dev prometheus openssl curl util-linux iproute2 mmdebstrap strace)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    step "need root to apt-get install ${missing[*]} (or install them and run again)"
    exit 1
  fi
  run_quietly "Debian packages: apt-get update" apt-get update -qq
  run_quietly "Debian packages: installing ${missing[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  step "Debian packages: present"
fi

cd "$root"
# Quiet npm: no update notice, no funding or audit summary, warnings only when something fails.
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false npm_config_loglevel=error

# Node.js 24 downloads while npm ci runs (both mostly wait on the registry). npm ci may run on the
# machine's older Node: no dependency has an install script, and this package's own builds nothing
# in a source checkout (scripts/build-native.mjs --install).
node_output="$(mktemp)" node_messages="$(mktemp)"
"$root/scripts/provision-node.sh" >"$node_output" 2>"$node_messages" &
node_pid=$!
# npm ci only when the lock file changed since the last install.
stamp="node_modules/.parafork-installed"
if [ -L node_modules ]; then
  # A git worktree sharing another checkout's node_modules through a link: npm ci would empty the
  # link's target, the other checkout's dependencies. Install there instead.
  step "npm dependencies: node_modules is a link to $(readlink -f node_modules), left as it is"
elif [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  run_quietly "npm dependencies: npm ci" npm ci
  touch "$stamp"
else
  step "npm dependencies: up to date"
fi
node_status=0
wait "$node_pid" || node_status=$?
cat "$node_messages" >&2 # one line when node@24 was installed, or what went wrong
node_bin="$(tail -n 1 "$node_output")"
rm -f "$node_output" "$node_messages"
[ "$node_status" -eq 0 ] || exit "$node_status"
export PATH="$node_bin:$PATH"
step "Node.js $(node --version): $node_bin"

# The addon (make, both cores) and the TypeScript (tsc, one) at once; either's output on failure.
build() {
  local status=0 typescript_pid
  npm run --silent build:ts &
  typescript_pid=$!
  npm run --silent build:native || status=1
  wait "$typescript_pid" || status=1
  return "$status"
}
run_quietly "building the native addon and the TypeScript" build
step "ready in $((SECONDS - started)) s. For Node.js 24 on PATH in this shell (npm run bench:*, npx vitest):"
step '  eval "$(scripts/setup.sh --env)"'
