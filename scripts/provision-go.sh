#!/usr/bin/env bash
# Finds or fetches a Go >= 1.26 for scripts/build-tools.sh, which compiles the control-plane tools.
#
#   provision-go.sh           print the directory holding the `go` to use (last line of stdout),
#                             fetching one first when none is on PATH
#   provision-go.sh --version print "GOVERSION GOOS GOARCH" of the Go that would be used, fetching
#                             nothing (build-tools.sh keys its cache on it before deciding to build)
#
# The order: a `go` on PATH that is new enough, as it is; else the pinned toolchain below, from the
# Go module proxy (the same golang.org/toolchain module GOTOOLCHAIN switching downloads, checked
# against the checksum database), fetched by the newest Go Debian packages (golang-1.N-go, installed
# in /usr/lib/go-1.N, never put on PATH). Go >= 1.21 fetches it through GOTOOLCHAIN; older ones
# (bookworm has 1.19, which predates GOTOOLCHAIN) through `go mod download` of the same module,
# then set its commands' execute bits as Go's own toolchain switch does (module zips keep none:
# https://go.dev/doc/toolchain#download). The toolchain lands in the Go module cache (GOMODCACHE).
set -euo pipefail

# The toolchain fetched when no new-enough Go is on PATH; the Go that built the current tool cache.
pinned_go=go1.26.8
required_minor=26

log() { printf '[provision-go] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# go_is_new_enough GO: true if GO runs and is go1.N (N >= required_minor) or a later major.
go_is_new_enough() {
  local version
  version="$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null)" || return 1
  [[ "$version" =~ ^go1\.([0-9]+) ]] && (( BASH_REMATCH[1] >= required_minor ))
}

host_platform() { # "GOOS GOARCH" without a Go
  local arch
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    ppc64le) arch=ppc64le ;;
    s390x) arch=s390x ;;
    riscv64) arch=riscv64 ;;
    *) die "no Go toolchain is published for $(uname -m)" ;;
  esac
  echo "linux $arch"
}

path_go="$(command -v go 2>/dev/null || true)"
if [[ -n "$path_go" ]] && go_is_new_enough "$path_go"; then
  if [[ "${1-}" == --version ]]; then
    GOTOOLCHAIN=local "$path_go" env GOVERSION GOOS GOARCH | paste -sd' '
  else
    dirname "$path_go"
  fi
  exit 0
fi

read -r goos goarch <<<"$(host_platform)"
if [[ "${1-}" == --version ]]; then
  echo "$pinned_go $goos $goarch"
  exit 0
fi
[[ -z "$path_go" ]] || log "the go on PATH ($path_go) is older than go1.$required_minor"
toolchain_module="golang.org/toolchain@v0.0.1-$pinned_go.$goos-$goarch"

# A Go to fetch with: the newest golang-1.N-go Debian has, installed if it is not.
bootstrap_go() {
  local package newest="" installed go_binary
  installed="$(find /usr/lib -maxdepth 3 -path '/usr/lib/go-1.*/bin/go' 2>/dev/null | sort -V | tail -n 1)"
  newest="$(apt-cache search --names-only '^golang-1\.[0-9]+-go$' 2>/dev/null | cut -d' ' -f1 | sort -V | tail -n 1)"
  if [[ -n "$newest" ]]; then
    package="$newest"
    go_binary="/usr/lib/go-${package#golang-}"  # golang-1.19-go installs /usr/lib/go-1.19/bin/go
    go_binary="${go_binary%-go}/bin/go"
    if [[ ! -x "$go_binary" ]]; then
      [[ "$(id -u)" -eq 0 ]] || die "need root to apt-get install $package (or put Go >= 1.$required_minor on PATH)"
      log "installing $package (Debian) to fetch $pinned_go with"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null \
        || die "apt-get install $package failed"
    fi
    echo "$go_binary"
  elif [[ -n "$installed" ]]; then
    echo "$installed"
  else
    die "no Go >= 1.$required_minor on PATH and no golang-1.N-go package in apt (run apt-get update, or install Go from https://go.dev/dl)"
  fi
}

bootstrap="$(bootstrap_go)"
bootstrap_version="$(GOTOOLCHAIN=local "$bootstrap" env GOVERSION)"
modcache="$(GOTOOLCHAIN=local "$bootstrap" env GOMODCACHE)"
goroot="$modcache/$toolchain_module"
if [[ ! -x "$goroot/bin/go" ]] || ! go_is_new_enough "$goroot/bin/go"; then
  log "fetching $pinned_go from the Go module proxy with $bootstrap_version (~70 MB)"
  if [[ "$bootstrap_version" =~ ^go1\.([0-9]+) ]] && (( BASH_REMATCH[1] >= 21 )); then
    # GOTOOLCHAIN downloads, verifies and unpacks the toolchain module, and sets the execute bits.
    (cd / && GOTOOLCHAIN="$pinned_go" "$bootstrap" version >/dev/null) || die "GOTOOLCHAIN=$pinned_go failed"
  else
    (cd / && GO111MODULE=on GOFLAGS=-mod=mod "$bootstrap" mod download "$toolchain_module") \
      || die "go mod download $toolchain_module failed"
    # What cmd/go/internal/toolchain does after its own download: bin/ and pkg/tool/ get +x.
    chmod a+x "$goroot"/bin/* "$goroot"/pkg/tool/*/*
  fi
  go_is_new_enough "$goroot/bin/go" || die "$goroot/bin/go does not run after the download"
fi
log "using $("$goroot/bin/go" env GOVERSION) from $goroot"
echo "$goroot/bin"
