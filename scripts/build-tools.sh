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
# the last line of stdout.
#
# Works on a fresh machine with an empty Go module cache: `go build` fetches
# exactly the modules that go.sum already pins (-mod=readonly: a build never
# rewrites the committed go.mod/go.sum).
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

command -v go >/dev/null 2>&1 || die "go is not on PATH (need Go >= 1.26)"

export GOWORK=off          # a stray go.work must not change what we build
export CGO_ENABLED=0       # static binaries, no C toolchain needed

go_version="$(go env GOVERSION)"
key="$(
  {
    echo "recipe=$RECIPE_VERSION go=$go_version os=$(go env GOOS) arch=$(go env GOARCH)"
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

mkdir -p "$CACHE_ROOT"
# Serialise concurrent builders of the same key; the loser finds it built.
exec 9>"$CACHE_ROOT/$key.lock"
flock 9
if have_all; then
  log "up to date (built concurrently): $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

log "building tools into $BIN_DIR (key $key, $go_version)"
STAGE="$KEY_DIR/bin.partial"
rm -rf "$STAGE"
mkdir -p "$STAGE"

modver() { # modver DIR MODULE -> version selected in DIR's build list
  (cd "$1" && go list -mod=readonly -m -f '{{.Version}}' "$2")
}

# build DIR OUTPUT PACKAGE [extra -ldflags...]
build() {
  local dir="$1" out="$2" pkg="$3"; shift 3
  local ldflags="-s -w${*:+ $*}" start end
  log "go build $pkg -> $out"
  start=$(date +%s)
  (cd "$dir" && go build -mod=readonly -buildvcs=false -trimpath \
      -ldflags="$ldflags" -o "$STAGE/$out" "$pkg") \
    || die "building $pkg failed"
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
