#!/usr/bin/env bash
# Builds the agent image (the one the Dockerfile describes) and the dev cluster's pause image without
# a Docker engine or a registry, as OCI image archives that `ctr images import` loads (issue 18).
#
#   scripts/build-image.sh agent OUTPUT.tar [NAME]          NAME defaults to docker.io/library/parafork:dev
#   scripts/build-image.sh pause OUTPUT.tar [NAME]          NAME defaults to localhost/parafork-pause:1
#   scripts/build-image.sh agent-python OUTPUT.tar [NAME]   NAME defaults to docker.io/library/parafork-python:dev
#
# agent-python is a test image, never shipped: the agent image with Debian's python3 and strace in
# its base, so that test/node can run test/security's hostile payloads (most of them Python, one
# reading the order of a sandboxed child's calls with strace) inside the agent's Pod. The agent image itself stays without it: a Task sees the image as its root filesystem, and
# python3 would add ~30 MB to the ~130 MB base for nothing the agent needs. Its other layer is the
# agent image's, byte for byte.
#
# The agent image is the Dockerfile's runtime stage rebuilt from what this machine can reach:
#   layer 1  Debian bookworm, minbase (mmdebstrap, from Debian's mirror): the package set of
#            bookworm-slim, which node:24-bookworm-slim is built on; cached outside the repo
#   layer 2  Node 24 from the npm package node@24 (scripts/provision-node.sh) in /usr/local/bin,
#            where the official image has it, and /opt/parafork: the Dockerfile's builder steps,
#            scripts/container-build.sh dependencies|build|install, run in a clean copy of the build
#            context (.dockerignore's allowlist) on this machine (bookworm too, so the addon's glibc
#            and libseccomp are the image's)
# and the runtime stage's ENV, WORKDIR, ENTRYPOINT, CMD and EXPOSE, written out below.
# test/node/image.test.ts compares the built image with the Dockerfile (entrypoint, command,
# environment, user, working directory, ports, files), so the two cannot drift apart.
#
# Needs root (mmdebstrap --mode=root, and files owned by root in the layers), mmdebstrap, tar,
# gcc (static libc, for the pause binary), and what scripts/container-build.sh needs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PARAFORK_CACHE:-$HOME/.cache/parafork}/images"
SUITE=bookworm

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { echo "usage: $0 agent|agent-python|pause OUTPUT.tar [NAME]" >&2; exit 2; }

[[ $# -ge 2 && $# -le 3 ]] || usage
kind="$1" output="$(realpath -m "$2")"
[[ "$(id -u)" == 0 ]] || die "needs root: the layers hold root-owned files, and mmdebstrap runs as root"
mkdir -p "$CACHE" "$(dirname "$output")"
work="$(mktemp -d "$CACHE/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# A reproducible tarball of a directory: sorted, root-owned, epoch times.
tar_directory() { # tar_directory DIR OUTPUT
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf "$2" .
}

# write_config FILE ENTRYPOINT_JSON CMD_JSON USER WORKDIR [ENV=VALUE...] -- [PORT/PROTO...]
write_config() {
  local file="$1"; shift
  node -e '
    const [entrypoint, cmd, user, workdir, ...rest] = process.argv.slice(1);
    const split = rest.indexOf("--");
    const env = rest.slice(0, split), ports = rest.slice(split + 1);
    const config = { Entrypoint: JSON.parse(entrypoint), Cmd: JSON.parse(cmd), Env: env, WorkingDir: workdir };
    if (user !== "") config.User = user;
    if (ports.length) config.ExposedPorts = Object.fromEntries(ports.map((port) => [port, {}]));
    process.stdout.write(JSON.stringify(config));
  ' "$@" >"$file"
}

base_rootfs() { # base_rootfs [PACKAGE...]: prints the cached base layer (minbase and these packages), building it first if needed
  # The key covers what decides its contents but the mirror's state: refresh by deleting the cache.
  local include=() package
  for package in "$@"; do include+=("--include=$package"); done
  local args=(--variant=minbase --mode=root --format=tar "${include[@]}"
              "--dpkgopt=path-exclude=/usr/share/doc/*" "--dpkgopt=path-include=/usr/share/doc/*/copyright"
              "--dpkgopt=path-exclude=/usr/share/man/*" "--dpkgopt=path-exclude=/usr/share/locale/*"
              --aptopt='Acquire::Languages "none"' "$SUITE")
  local key file
  key="$(printf '%s\n' "${args[@]}" | sha256sum | cut -c1-16)"
  file="$CACHE/debian-$SUITE-minbase${1:+-with-$(IFS=-; echo "$*")}-$key.tar"
  if [[ ! -f "$file" ]]; then
    command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
    log "debootstrapping Debian $SUITE (minbase${1:+ and $*}) into $file"
    local started=$SECONDS
    mmdebstrap --quiet "${args[@]}" "$file.partial" >&2 || die "mmdebstrap failed"
    mv "$file.partial" "$file"
    log "base layer built in $((SECONDS - started))s: $(du -h "$file" | cut -f1)"
  fi
  echo "$file"
}

# The build context Docker would send: tracked and untracked-but-not-ignored files that
# .dockerignore's allowlist ("*", then "!path" lines) lets through.
copy_context() { # copy_context DEST
  local dest="$1" line allow=() file a
  while IFS= read -r line; do
    line="${line%%#*}"; line="${line//[[:space:]]/}"
    [[ -z "$line" || "$line" == '*' ]] && continue
    [[ "$line" == '!'* ]] || die ".dockerignore must be an allowlist ('*' then '!path' lines); found '$line'"
    allow+=("${line#!}")
  done <"$ROOT/.dockerignore"
  (cd "$ROOT" && git ls-files --cached --others --exclude-standard -z) | while IFS= read -r -d '' file; do
    [[ -e "$ROOT/$file" ]] || continue
    for a in "${allow[@]}"; do
      if [[ "$file" == "${a%/}" || "$file" == "${a%/}/"* ]]; then
        mkdir -p "$dest/$(dirname "$file")"
        cp -p "$ROOT/$file" "$dest/$file"
        break
      fi
    done
  done
}

# parafork_layer: sets layer to the cached layer of /usr/local/bin/node and /opt/parafork, building
# it first if needed, and node_version to that Node's version.
parafork_layer() {
  local node_bin context="$work/context" tree="$work/layer" key cached
  node_bin="$(PARAFORK_FORCE_NODE24=1 "$ROOT/scripts/provision-node.sh" | tail -n 1)"
  node_version="$("$node_bin/node" -p process.versions.node)"
  [[ "$node_version" == 24.* ]] || die "provision-node.sh gave Node $node_version, not 24"
  mkdir -p "$context" "$tree/usr/local/bin" "$tree/opt"
  copy_context "$context"
  # The same context, Node and recipe make the same layer: reuse it (the build is minutes of npm ci
  # and node-gyp).
  key="$( { echo "node=$node_version"; cat "$0";
            (cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum); } | sha256sum | cut -c1-16)"
  cached="$CACHE/parafork-layer-$key.tar"
  if [[ -f "$cached" ]]; then
    log "the agent's layer is unchanged since its last build ($cached)"
    layer="$cached"
    return 0
  fi
  log "running scripts/container-build.sh in a clean copy of the build context ($context)"
  (
    cd "$context"
    export PATH="$node_bin:/usr/local/bin:/usr/bin:/bin"
    scripts/container-build.sh dependencies >&2
    scripts/container-build.sh build >&2
    scripts/container-build.sh install "$tree/opt/parafork" >&2
  ) || die "scripts/container-build.sh failed"
  cp "$node_bin/node" "$tree/usr/local/bin/node"
  # One cached layer at a time: the previous ones are stale (a changed context).
  rm -f "$CACHE"/parafork-layer-*.tar "$CACHE"/agent-*.tar
  tar_directory "$tree" "$cached.partial"
  mv "$cached.partial" "$cached"
  layer="$cached"
}

# build_agent NAME [PACKAGE...]: the agent image, on a base with these packages added.
build_agent() {
  local name="$1" base layer node_version started=$SECONDS
  shift
  base="$(base_rootfs "$@")"
  parafork_layer
  # What the runtime stage adds to its base, as the Dockerfile writes it. PATH is the base
  # image's (Docker's default) with /opt/parafork/bin in front; NODE_VERSION as node's images set it.
  write_config "$work/config.json" '["parafork"]' '["agent"]' '' /opt/parafork \
    "PATH=/opt/parafork/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "NODE_VERSION=$node_version" \
    NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8 \
    -- 9464/tcp
  node "$ROOT/scripts/oci-archive.mjs" --name "$name" --config "$work/config.json" \
    --layer "$base" --layer "$layer" --output "$output" >/dev/null
  log "agent image $name${1:+ (with $*)} in $output: $(du -h "$output" | cut -f1) (Node $node_version), $((SECONDS - started))s"
}

build_pause() {
  local name="${1:-localhost/parafork-pause:1}" image="$work/image"
  mkdir -p "$image"
  gcc -static -Os -s -o "$image/pause" "$ROOT/scripts/pause.c" || die "compiling scripts/pause.c failed (needs gcc and libc6-dev's static libc)"
  write_config "$work/config.json" '["/pause"]' '[]' 65535:65535 / --
  tar_directory "$image" "$work/pause.tar"
  node "$ROOT/scripts/oci-archive.mjs" --name "$name" --config "$work/config.json" \
    --layer "$work/pause.tar" --output "$output" >/dev/null
  log "pause image $name in $output: $(du -h "$output" | cut -f1)"
}

case "$kind" in
  agent) build_agent "${3:-docker.io/library/parafork:dev}" ;;
  agent-python) build_agent "${3:-docker.io/library/parafork-python:dev}" python3 strace ;;
  pause) build_pause "${3:-}" ;;
  *) usage ;;
esac
