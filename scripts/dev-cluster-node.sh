# shellcheck shell=bash
# The node of `scripts/dev-cluster.sh up --node` (issue 18), sourced by dev-cluster.sh: a bridge
# with a private /24 for Pods (whose gateway address is also the node's, and the apiserver's),
# containerd with runc and the CNI bridge plugin, the pause image, kube-controller-manager,
# kube-scheduler and a kubelet. All of it lives under $STATE: sockets, containerd's root and state,
# the kubelet's root dir, Pod logs, network namespace mounts, CNI IP allocations, runc's state. The
# rest is on the host, made here and undone by node_down:
#   - /run/containerd/s, where containerd's shims put their sockets whatever the config says,
#     /var/lib/cni, libcni's cache, and /var/lib/kubelet/device-plugins/kubelet.sock, the kubelet's
#     device plugin socket: removed (once empty) if this node made them; that socket's path is fixed,
#     so one node runs per machine, which /run/parafork-dev-node.owner enforces;
#   - the bridge pfbrN and the Pods' veths (ip link);
#   - a cgroup /parafork-dev-N in each cgroup hierarchy, the kubelet's --cgroup-root;
#   - the kernel settings the kubelet sets when it starts (vm.overcommit_memory, kernel.panic,
#     kernel.panic_on_oops, ...: container_manager_linux.go setupKernelTunables, which no
#     configuration turns into a warning): put back as soon as the node is Ready, since the
#     kubelet only sets them once, at start.
# No kube-proxy (it would add netfilter rules to the host): a Pod reaches the apiserver at the
# node's address, which `node.env` names (KUBERNETES_SERVICE_HOST/PORT for the agent), and a
# Service through the apiserver's service proxy.

NODE_ENV_FILE="$STATE/node.env"
NODE_NAME="parafork-dev-node"
# The kernel settings setupKernelTunables writes; their values before the kubelet starts are kept
# in $STATE/sysctl.saved.
KUBELET_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
                 kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

# The cgroup hierarchies of this host: v1 ones (one per controller, or named) and the unified one.
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts; }

# One node cluster per machine: the kubelet's device manager serves its registration socket at
# /var/lib/kubelet/device-plugins/kubelet.sock whatever its --root-dir (pluginapi.KubeletSocket, a
# constant), so a second kubelet would take the first one's socket. This file names the state dir of
# the node that holds the machine; a node whose processes are all gone no longer does.
NODE_OWNER_FILE=/run/parafork-dev-node.owner

# node_claim_machine: called with the port lock held, so two `up --node` cannot both claim it.
node_claim_machine() {
  local other
  if [[ -f "$NODE_OWNER_FILE" ]]; then
    other="$(<"$NODE_OWNER_FILE")"
    if [[ "$other" != "$STATE" ]] && (STATE="$other"; pid_is_ours etcd || pid_is_ours kube-apiserver || pid_is_ours kubelet); then
      die "a node cluster already runs on this machine ($other): its kubelet and a second one would share /var/lib/kubelet/device-plugins/kubelet.sock; stop it first (scripts/dev-cluster.sh down with that state dir)"
    fi
  fi
  echo "$STATE" >"$NODE_OWNER_FILE"
}

# node_pick_network: a /24 in 10.245.0.0/16 no interface or route uses, and a bridge name with the
# same number. Called with the port lock held, so two `up --node` don't pick the same one.
node_pick_network() {
  local n used
  used="$(ip -4 route show table all 2>/dev/null; ip -4 addr show 2>/dev/null)"
  for ((i = 0; i < 200; i++)); do
    n=$((RANDOM % 250 + 1))
    [[ "$used" == *"10.245.$n."* ]] && continue
    ip link show "pfbr$n" >/dev/null 2>&1 && continue
    NODE_NUMBER=$n
    return 0
  done
  die "no free 10.245.N.0/24 for the node's Pod network"
}

# node_network_up: the bridge, made here rather than by the CNI plugin, because its address is
# the node's address and has to exist before the apiserver binds to it.
node_network_up() {
  NODE_BRIDGE="pfbr$NODE_NUMBER"
  NODE_IP="10.245.$NODE_NUMBER.1"
  POD_SUBNET="10.245.$NODE_NUMBER.0/24"
  ip link add "$NODE_BRIDGE" type bridge || die "could not create bridge $NODE_BRIDGE"
  echo "$NODE_BRIDGE" >"$STATE/node-bridge"
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  cat >"$NODE_ENV_FILE" <<EOF
NODE_NAME=$NODE_NAME
NODE_IP=$NODE_IP
NODE_BRIDGE=$NODE_BRIDGE
POD_SUBNET=$POD_SUBNET
CGROUP_ROOT=/parafork-dev-$NODE_NUMBER
EOF
}

node_cgroups_up() {
  local mount dir
  echo "/parafork-dev-$NODE_NUMBER" >"$STATE/node-cgroup"
  for mount in $(cgroup_mounts); do
    dir="$mount/parafork-dev-$NODE_NUMBER"
    mkdir -p "$dir"
    # A new v1 cpuset starts with no CPUs and no memory nodes; its tasks could not run.
    if [[ -f "$mount/cpuset.cpus" && ! -s "$dir/cpuset.cpus" ]]; then
      cat "$mount/cpuset.cpus" >"$dir/cpuset.cpus"
      cat "$mount/cpuset.mems" >"$dir/cpuset.mems"
    fi
  done
}

# node_cgroups_down: every cgroup under the kubelet's root, deepest first; a cgroup still holding a
# process (one that escaped its Pod) is reported and left, never killed by this script.
node_cgroups_down() {
  [[ -f "$STATE/node-cgroup" ]] || return 0
  local root mount dir left=0
  root="$(<"$STATE/node-cgroup")"
  for mount in $(cgroup_mounts); do
    [[ -d "$mount$root" ]] || continue
    while IFS= read -r dir; do
      rmdir "$dir" 2>/dev/null || { log "cgroup $dir still busy: $(tr '\n' ' ' <"$dir/cgroup.procs")"; left=1; }
    done < <(find "$mount$root" -depth -type d)
  done
  ((left == 0)) && rm -f "$STATE/node-cgroup"
  return 0
}

node_sysctls_save() {
  local name
  for name in "${KUBELET_SYSCTLS[@]}"; do echo "$name $(<"/proc/sys/$name")"; done >"$STATE/sysctl.saved"
}

node_sysctls_restore() {
  [[ -f "$STATE/sysctl.saved" ]] || return 0
  local name value
  while read -r name value; do
    [[ "$(<"/proc/sys/$name")" == "$value" ]] || echo "$value" >"/proc/sys/$name"
  done <"$STATE/sysctl.saved"
  rm -f "$STATE/sysctl.saved"
}

node_write_configs() {
  local nodebin="$1" c="$STATE/containerd"
  mkdir -p "$c" "$STATE/cni/net.d" "$STATE/kubelet" "$STATE/pod-logs"
  cat >"$c/config.toml" <<EOF
version = 4
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.nri.v1.nri"]
[plugins.'io.containerd.server.v1.grpc']
  address = "$c/containerd.sock"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$c/containerd.sock.ttrpc"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "localhost/parafork-pause:1"
[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  # Nothing below containerd's own OOM score: the kubelet asks -998 for each Pod sandbox, which
  # needs CAP_SYS_RESOURCE, and root on some machines (this test machine's) does not hold it.
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$nodebin/cni"]
    conf_dir = "$STATE/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$nodebin/runc"
        Root = "$c/runc"
        SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
# Would make /opt/containerd.
[plugins.'io.containerd.internal.v1.opt']
  path = "$c/opt"
EOF
  # Not isGateway: the bridge has its address already (node_network_up), and the plugin would
  # also switch on the host's net.ipv4.ip_forward. No ipMasq and no portmap: both would add
  # netfilter rules to the host. Pods reach the node's address on the link; the default route
  # (IPAM's) goes there too, and no further.
  cat >"$STATE/cni/net.d/10-parafork-dev.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "parafork-dev",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_SUBNET", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$NODE_IP" }],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
EOF
  cat >"$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host mounts cgroup v1 hierarchies (and cgroup2 at /sys/fs/cgroup/unified): the kubelet
# refuses cgroup v1 unless told not to (KEP-5573), and there is no systemd to drive cgroups.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /parafork-dev-$NODE_NUMBER
containerRuntimeEndpoint: unix://$c/containerd.sock
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
podLogsDir: $STATE/pod-logs
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
# Nothing evicts the test's Pods because this shared machine's disk is fuller than a real node's.
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
registerNode: true
resolvConf: /etc/resolv.conf
serializeImagePulls: false
EOF
  cat >"$STATE/kubelet/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: parafork-dev
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: kubelet
  user:
    client-certificate: $PKI/node.crt
    client-key: $PKI/node.key
contexts:
- name: kubelet
  context: {cluster: parafork-dev, user: kubelet}
current-context: kubelet
EOF
}

# The node's client certificate: system:masters too (no Node authorizer here), its own CN so the
# apiserver's audit trail tells it from the admin.
node_gen_cert() {
  (
    cd "$PKI"
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out node.key 2>/dev/null
    openssl req -new -key node.key -subj "/O=system:masters/CN=system:node:$NODE_NAME" -out node.csr
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >node.ext
    openssl x509 -req -in node.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -sha256 -days 3650 -extfile node.ext -out node.crt 2>/dev/null
    rm -f node.csr node.ext
  ) || die "node certificate generation failed"
}

ctr_node() { "$NODE_BIN/ctr" --address "$STATE/containerd/containerd.sock" --namespace k8s.io "$@"; }
crictl_node() { "$NODE_BIN/crictl" --runtime-endpoint "unix://$STATE/containerd/containerd.sock" --timeout 30s "$@"; }

# node_up: after etcd and the apiserver are up (bound to $NODE_IP).
node_up() {
  local kubeconfig="$1"
  echo "$NODE_BIN" >"$STATE/node-bin-dir"
  node_write_configs "$NODE_BIN"
  node_gen_cert

  # Shims put their sockets in /run/containerd/s, whatever the config says (pkg/shim's
  # SocketAddress); node_down removes those directories again if this node made them.
  # The same for libcni's result cache, /var/lib/cni (containerd's CRI leaves it at the default),
  # and /var/lib/kubelet, where the kubelet's device manager puts device-plugins/kubelet.sock
  # whatever its --root-dir (pluginapi.KubeletSocket).
  local dir
  for dir in /run/containerd /var/lib/cni /var/lib/kubelet; do [[ -e "$dir" ]] || echo "$dir" >>"$STATE/made-host-dirs"; done
  # containerd finds containerd-shim-runc-v2 on its PATH.
  PATH="$NODE_BIN:$PATH" start containerd "$NODE_BIN/containerd" --config "$STATE/containerd/config.toml"
  local i
  for ((i = 0; i < 300; i++)); do
    [[ -S "$STATE/containerd/containerd.sock" ]] && ctr_node version >/dev/null 2>&1 && break
    pid_is_ours containerd || fail_up containerd "containerd exited"
    sleep 0.1
  done
  ctr_node version >/dev/null 2>&1 || fail_up containerd "containerd did not answer on its socket"

  local pause="$STATE/pause.tar"
  "$ROOT/scripts/build-image.sh" pause "$pause" || die "building the pause image failed"
  ctr_node images import "$pause" >&2 || fail_up containerd "importing the pause image failed"
  rm -f "$pause"

  local controller_args=(--kubeconfig="$kubeconfig" --leader-elect=false --secure-port=0)
  start kube-controller-manager "$BIN/kube-controller-manager" "${controller_args[@]}" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=false --controllers='*,-nodeipam'
  start kube-scheduler "$BIN/kube-scheduler" "${controller_args[@]}"

  node_cgroups_up
  node_sysctls_save
  start kubelet "$BIN/kubelet" --config="$STATE/kubelet/config.yaml" \
    --kubeconfig="$STATE/kubelet/kubeconfig" --root-dir="$STATE/kubelet" \
    --cert-dir="$STATE/kubelet/pki" --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --v=2

  log "waiting up to ${READY_TIMEOUT}s for node $NODE_NAME to be Ready"
  local start_ts=$SECONDS ready=""
  until [[ "$ready" == True ]]; do
    for name in containerd kube-controller-manager kube-scheduler kubelet; do
      pid_is_ours "$name" || fail_up "$name" "$name exited"
    done
    ((SECONDS - start_ts < READY_TIMEOUT)) || fail_up kubelet "node $NODE_NAME not Ready after ${READY_TIMEOUT}s"
    sleep 0.5
    ready="$("$BIN/kubectl" --kubeconfig "$kubeconfig" get node "$NODE_NAME" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
  done
  # The kubelet has run setupKernelTunables by now; the host gets its own settings back.
  node_sysctls_restore
  log "node $NODE_NAME Ready in $((SECONDS - start_ts))s (Pods on $POD_SUBNET, bridge $NODE_BRIDGE)"
}

# node_down: Pods first (the kubelet stopped, so it starts none again; containerd tears down their
# containers, mounts and network namespaces), then the processes, then what is left on the host.
node_down() {
  node_sysctls_restore
  stop_one kubelet
  if pid_is_ours containerd && [[ -f "$STATE/node-bin-dir" ]]; then
    NODE_BIN="$(<"$STATE/node-bin-dir")"
    local pods
    pods="$(crictl_node pods -q 2>/dev/null || true)"
    if [[ -n "$pods" ]]; then
      log "removing $(wc -w <<<"$pods") Pod sandbox(es)"
      # shellcheck disable=SC2086 # one argument per pod id
      crictl_node stopp $pods >/dev/null 2>&1 || true
      # shellcheck disable=SC2086
      crictl_node rmp --force $pods >/dev/null 2>&1 || true
    fi
  fi
  stop_one kube-scheduler
  stop_one kube-controller-manager
  stop_one containerd
  # Shims outlive containerd by design; ours serve only this state dir's containerd, and exit
  # once their containers are gone. One still here means a container that would not die.
  local shim
  for shim in $(pgrep -f -- "-address $STATE/containerd/containerd.sock" 2>/dev/null || true); do
    log "warning: containerd shim $shim is still running"
  done
  # Mounts under the state dir (overlay rootfs, Pod volumes, netns), deepest first.
  local mount
  while IFS= read -r mount; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || log "could not unmount $mount"
  done < <(awk -v prefix="$STATE/" 'index($2, prefix) == 1 { print $2 }' /proc/self/mounts | sort -r)
  node_cgroups_down
  if [[ -f "$STATE/made-host-dirs" ]]; then
    local dir
    while IFS= read -r dir; do
      if [[ "$dir" == /var/lib/kubelet ]]; then rm -f /var/lib/kubelet/device-plugins/kubelet.sock; fi
      # Empty directories only: what is still in them is not this node's to delete.
      if [[ -d "$dir" ]]; then find "$dir" -depth -type d -empty -delete; fi
      if [[ -e "$dir" ]]; then log "$dir is not empty; left in place"; fi
    done <"$STATE/made-host-dirs"
    rm -f "$STATE/made-host-dirs"
  fi
  if [[ -f "$STATE/node-bridge" ]]; then
    ip link del "$(<"$STATE/node-bridge")" 2>/dev/null || true
    rm -f "$STATE/node-bridge"
  fi
  if [[ -f "$NODE_OWNER_FILE" && "$(<"$NODE_OWNER_FILE")" == "$STATE" ]]; then rm -f "$NODE_OWNER_FILE"; fi
}
