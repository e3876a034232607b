#!/usr/bin/env bash
# Build the dev/test control-plane tools from the Go module proxy:
#   kube-apiserver, kubectl, etcd,  (tools/controlplane)
#   kubelet, kube-controller-manager, kube-scheduler
#   helm                            (tools/helm)
#   containerd, containerd-shim-runc-v2, ctr, runc, crictl and the CNI
#   plugins bridge, host-local, loopback (tools/node), in node/ beside bin/:
#   the node of `scripts/dev-cluster.sh up --node`
#
# Binaries go to a cache outside the repo:
#   ${PARAFORK_CACHE:-$HOME/.cache/parafork}/tools/<key>/bin/
# where <key> hashes the pinned inputs (go.mod/go.sum, the etcd wrapper, the
# Go version and this recipe's version). Unchanged pins => instant no-op;
# changed pins => new key => rebuild. Progress goes to stderr; the bin dir is
# the last line of stdout. `build-tools.sh --check` builds nothing: exit 0 when they are built, 3
# when not.
#
# Works on a fresh machine with an empty Go module cache: `go build` fetches
# exactly the modules that go.sum already pins (-mod=readonly: a build never
# rewrites the committed go.mod/go.sum). And with no Go at all: without a
# Go >= 1.26 on PATH, scripts/provision-go.sh fetches one (only when something
# has to be built). scripts/test.sh and `scripts/dev-cluster.sh up` call this
# when they first need the tools; scripts/setup.sh does not.
set -euo pipefail

# Bump when the build recipe (flags, binary list) changes, to force a rebuild.
RECIPE_VERSION=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CP_MOD="$ROOT/tools/controlplane"
HELM_MOD="$ROOT/tools/helm"
NODE_MOD="$ROOT/tools/node"
CACHE_ROOT="${PARAFORK_CACHE:-$HOME/.cache/parafork}/tools"
BINARIES=(kube-apiserver kubectl etcd helm kubelet kube-controller-manager kube-scheduler)
NODE_BINARIES=(containerd containerd-shim-runc-v2 ctr runc crictl cni/bridge cni/host-local cni/loopback)

log() { printf '[build-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export GOWORK=off          # a stray go.work must not change what we build
export CGO_ENABLED=0       # static binaries, no C toolchain needed

# The Go that builds (the one on PATH if new enough, else the pinned one to fetch), named without
# fetching anything: a cached build needs no Go.
read -r go_version go_os go_arch <<<"$("$ROOT/scripts/provision-go.sh" --version)"
[[ -n "${go_arch-}" ]] || die "scripts/provision-go.sh --version named no Go to build with"
key="$(
  {
    echo "recipe=$RECIPE_VERSION go=$go_version os=$go_os arch=$go_arch"
    for f in "$CP_MOD/go.mod" "$CP_MOD/go.sum" "$CP_MOD/cmd/etcd/main.go" \
             "$HELM_MOD/go.mod" "$HELM_MOD/go.sum" "$NODE_MOD/go.mod" "$NODE_MOD/go.sum"; do
      [[ -f "$f" ]] || die "missing $f"
      printf '%s ' "${f#"$ROOT"/}"; sha256sum <"$f"
    done
  } | sha256sum | cut -c1-16
)"
KEY_DIR="$CACHE_ROOT/$key"
BIN_DIR="$KEY_DIR/bin"

have_all() {
  [[ -f "$KEY_DIR/.complete" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  for b in "${NODE_BINARIES[@]}"; do [[ -x "$KEY_DIR/node/$b" ]] || return 1; done
}

if have_all; then
  log "up to date: $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi
# --check: only say whether they are built (exit 0 above) or not (exit 3), building nothing.
[[ "${1-}" != --check ]] || exit 3

mkdir -p "$CACHE_ROOT"
# Serialise concurrent builders of the same key; the loser finds it built.
exec 9>"$CACHE_ROOT/$key.lock"
flock 9
if have_all; then
  log "up to date (built concurrently): $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

go_bin="$("$ROOT/scripts/provision-go.sh" | tail -n 1)"
export PATH="$go_bin:$PATH"
log "building tools into $BIN_DIR (key $key, $go_version): several minutes on a cold cache"
STAGE="$KEY_DIR/bin.partial"
rm -rf "$STAGE"
mkdir -p "$STAGE"

modver() { # modver DIR MODULE -> version selected in DIR's build list
  (cd "$1" && go list -mod=readonly -m -f '{{.Version}}' "$2")
}

# show_progress OUT TOTAL START: reads `go build -v` (one package name per line as each is
# compiled) and prints "N/TOTAL packages, ELAPSED" - in place on a terminal, else every 30 s - so
# a cold build (minutes) is never silent. Lines that are not package names (errors) are kept and
# printed if the build fails.
show_progress() {
  local out="$1" total="$2" start="$3" line compiled=0 last=0 now errors=""
  while IFS= read -r line; do
    if [[ "$line" =~ ^[A-Za-z0-9._/~-]+$ ]]; then
      compiled=$((compiled + 1))
    else
      errors+="$line"$'\n'
    fi
    now=$(date +%s)
    if [[ -t 2 ]]; then
      printf '\r\033[K[build-tools] %s: %d/%d packages compiled, %ds' "$out" "$compiled" "$total" "$((now - start))" >&2
    elif (( now - last >= 30 )); then
      last=$now
      log "$out: $compiled/$total packages compiled, $((now - start))s"
    fi
  done
  [[ -t 2 ]] && printf '\r\033[K' >&2
  printf '%s' "$errors"
}

# build DIR OUTPUT PACKAGE [extra -ldflags...]
build() {
  local dir="$1" out="$2" pkg="$3"; shift 3
  local ldflags="-s -w${*:+ $*}" start end total errors
  start=$(date +%s)
  log "go build $pkg -> $out (fetching its modules first)"
  # `go list -deps` fetches the modules go.sum pins and counts the packages, so the progress line
  # has a total; packages already in the build cache are not compiled again (fewer than the total).
  total="$(cd "$dir" && go list -mod=readonly -deps "$pkg" 2>"$STAGE/$out.list-errors" | wc -l)" \
    || { cat "$STAGE/$out.list-errors" >&2; die "listing the packages of $pkg failed"; }
  rm -f "$STAGE/$out.list-errors"  # `go: downloading ...` lines, kept only for a failure
  errors="$( (cd "$dir" && go build -v -mod=readonly -buildvcs=false -trimpath \
      -ldflags="$ldflags" -o "$STAGE/$out" "$pkg") 2>&1 | show_progress "$out" "$total" "$start"; \
      exit "${PIPESTATUS[0]}")" \
    || { printf '%s' "$errors" >&2; die "building $pkg failed"; }
  end=$(date +%s)
  log "built $out in $((end - start))s"
}

total_start=$(date +%s)

kver="$(modver "$CP_MOD" k8s.io/kubernetes)"          # e.g. v1.37.2
[[ "$kver" =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "unexpected k8s.io/kubernetes version '$kver'"
kmajor="${BASH_REMATCH[1]}" kminor="${BASH_REMATCH[2]}"
# The same version stamping Kubernetes' own build applies (hack/lib/version.sh),
# so /version reports the real release instead of v0.0.0-master.
kube_ld=()
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ld+=("-X $p.gitVersion=$kver" "-X $p.gitMajor=$kmajor" "-X $p.gitMinor=$kminor"
            "-X $p.gitTreeState=clean")
done

build "$CP_MOD" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "${kube_ld[@]}"
build "$CP_MOD" kubectl k8s.io/kubernetes/cmd/kubectl "${kube_ld[@]}"
build "$CP_MOD" etcd ./cmd/etcd
# The one-node cluster of `dev-cluster.sh up --node` (issue 18).
build "$CP_MOD" kubelet k8s.io/kubernetes/cmd/kubelet "${kube_ld[@]}"
build "$CP_MOD" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "${kube_ld[@]}"
build "$CP_MOD" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "${kube_ld[@]}"

hver="$(modver "$HELM_MOD" helm.sh/helm/v4)"
build "$HELM_MOD" helm helm.sh/helm/v4/cmd/helm \
  "-X helm.sh/helm/v4/internal/version.version=$hver" \
  "-X helm.sh/helm/v4/internal/version.gitTreeState=clean"

# The node's runtime. runc is the one cgo build: its seccomp filters come from libseccomp
# (libseccomp-dev, which scripts/setup.sh installs), the same library the addon uses.
NODE_STAGE="$KEY_DIR/node.partial"
rm -rf "$NODE_STAGE"
mkdir -p "$NODE_STAGE/cni"
STAGE_ALL="$STAGE" STAGE="$NODE_STAGE"
build "$NODE_MOD" containerd github.com/containerd/containerd/v2/cmd/containerd
build "$NODE_MOD" containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
build "$NODE_MOD" ctr github.com/containerd/containerd/v2/cmd/ctr
build "$NODE_MOD" crictl sigs.k8s.io/cri-tools/cmd/crictl
for plugin in main/bridge ipam/host-local main/loopback; do
  build "$NODE_MOD" "cni/${plugin#*/}" "github.com/containernetworking/plugins/plugins/$plugin"
done
CGO_ENABLED=1 GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=seccomp,urfave_cli_no_docs" \
  build "$NODE_MOD" runc github.com/opencontainers/runc
STAGE="$STAGE_ALL"

rm -rf "$BIN_DIR" "$KEY_DIR/node"
mv "$STAGE" "$BIN_DIR"
mv "$NODE_STAGE" "$KEY_DIR/node"
{
  echo "kubernetes=$kver"
  echo "etcd=$(modver "$CP_MOD" go.etcd.io/etcd/server/v3)"
  echo "helm=$hver"
  echo "containerd=$(modver "$NODE_MOD" github.com/containerd/containerd/v2)"
  echo "runc=$(modver "$NODE_MOD" github.com/opencontainers/runc)"
  echo "cni-plugins=$(modver "$NODE_MOD" github.com/containernetworking/plugins)"
  echo "go=$go_version"
} >"$KEY_DIR/.complete"
log "all tools built in $(( $(date +%s) - total_start ))s"
echo "$BIN_DIR"
