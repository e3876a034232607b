#!/usr/bin/env bash
# The build steps of the container image, kept here rather than inline in the Dockerfile so that a
# test can run exactly what the image build runs (no Docker engine is needed for that):
# test/integration/container-build.test.ts copies the build context (.dockerignore) into an empty
# directory and runs the same three steps the Dockerfile's builder stage runs, in the same order.
#
#   scripts/container-build.sh dependencies   npm ci: every dependency, the build's included
#   scripts/container-build.sh build          the native addon (node-gyp) and the TypeScript
#   scripts/container-build.sh install DEST   the runtime tree in DEST (an empty or absent dir):
#       package.json, package-lock.json, dist/, native/build/Release/ (the addon and any helper
#       executables the sandbox builds there), crds/, production node_modules, and bin/parafork
#
# Run from the root of the build context. Needs node and npm (Node >= 22.19, with its headers next
# to the binary, as the official images and the npm package `node` have them), g++, make and
# python3 for node-gyp; the install step needs none of the compilers.
set -euo pipefail

log() { printf '[container-build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -f package.json && -f package-lock.json ]] || die "run me from the root of the build context (no package.json here)"

dependencies() {
  # --ignore-scripts: no dependency may run code at install; the addon is built by `build`.
  npm ci --ignore-scripts --no-audit --no-fund
}

build() {
  # Always a clean native build: the context never carries native/build (.dockerignore).
  PARAFORK_NATIVE_REBUILD=1 npm run --silent build
  [[ -f native/build/Release/parafork.node ]] || die "the build made no native/build/Release/parafork.node"
  [[ -f dist/cli/main.js ]] || die "the build made no dist/cli/main.js"
}

install_runtime() {
  local dest="$1"
  if [[ -e "$dest" && -n "$(ls -A "$dest")" ]]; then die "$dest is not empty"; fi
  mkdir -p "$dest/native/build/Release" "$dest/bin"
  cp package.json package-lock.json "$dest/"
  cp -R dist crds "$dest/"
  # The loader looks for the addon in native/build/Release (src/native/binding.ts). Only the
  # products there, not the object files node-gyp leaves beside them.
  find native/build/Release -maxdepth 1 -type f -exec cp {} "$dest/native/build/Release/" \;
  # Production dependencies only, from the same lock file; nothing runs at install.
  (cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)
  # The package's bin, as `npm install -g` would link it: the image puts $dest/bin on PATH.
  chmod +x "$dest/dist/cli/main.js"
  ln -s ../dist/cli/main.js "$dest/bin/parafork"
  log "runtime tree in $dest: $(du -sh "$dest" | cut -f1)"
}

case "${1:-}" in
  dependencies) dependencies ;;
  build) build ;;
  install)
    [[ $# -eq 2 ]] || die "usage: $0 install DEST"
    install_runtime "$2"
    ;;
  *)
    echo "usage: $0 dependencies|build|install DEST" >&2
    exit 2
    ;;
esac
