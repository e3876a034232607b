#!/usr/bin/env bash
# A throwaway Kubernetes control plane (etcd + kube-apiserver, no controllers,
# no nodes) on loopback, for development and integration tests.
#
#   scripts/dev-cluster.sh up     build the tools if needed, start etcd and
#                                 kube-apiserver, wait for /readyz; the last
#                                 line of stdout is the kubeconfig path
#   scripts/dev-cluster.sh up --node
#                                 the same plus a node: kube-controller-manager,
#                                 kube-scheduler, containerd + runc + CNI
#                                 bridge and a kubelet, until the node is Ready
#                                 (root only; scripts/dev-cluster-node.sh says
#                                 what it makes on the host and how `down`
#                                 undoes it). The apiserver then listens on the
#                                 node's address instead of 127.0.0.1.
#   scripts/dev-cluster.sh down   stop the processes `up` started (by their
#                                 recorded pids) and remove the state dir
#   scripts/dev-cluster.sh env    print `export KUBECONFIG=...` (and PATH with
#                                 the tool bin dir: kubectl, helm)
#   scripts/dev-cluster.sh restart-apiserver
#                                 stop kube-apiserver and start it again on the
#                                 same port (etcd and its data stay)
#
# State lives in ${PARAFORK_CLUSTER_DIR:-/tmp/parafork-cluster}; use a
# different dir per concurrent cluster. Ports are picked at run time, so
# parallel clusters don't collide. Everything listens on 127.0.0.1 only, but
# with --node the apiserver and kubelet listen on the node's address, on the
# bridge `up` makes for its Pods (nothing outside this machine is on it).
#
# The apiserver flags follow controller-runtime's envtest. With no
# kube-controller-manager there is no namespace finaliser, garbage collector
# or service-account token controller: deleted namespaces stay Terminating
# and pods get no default service account.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${PARAFORK_CLUSTER_DIR:-/tmp/parafork-cluster}"
MARKER="$STATE/.parafork-dev-cluster"
PKI="$STATE/pki"
LOGS="$STATE/logs"
KUBECONFIG_PATH="$STATE/kubeconfig"
READY_TIMEOUT="${PARAFORK_CLUSTER_READY_TIMEOUT:-180}"   # seconds
SERVICE_CIDR="10.0.0.0/24"        # same as envtest; only an allocation range
SERVICE_IP="10.0.0.1"             # first IP of SERVICE_CIDR: 'kubernetes' svc
PORT_LOCK="${TMPDIR:-/tmp}/parafork-dev-cluster.ports.lock"

log() { printf '[dev-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { echo "usage: $0 up [--node]|down|env|restart-apiserver" >&2; exit 2; }

# shellcheck source=scripts/dev-cluster-node.sh
source "$ROOT/scripts/dev-cluster-node.sh"

# ---------------------------------------------------------------- processes

# A started process is identified by its pid plus the kernel's record of when
# it started (and the boot it started in), not by the binary it runs: both are
# fixed at fork and survive exec, so the identity holds from the instant `start`
# forks, before setsid and the server binary have been exec'd, and a recycled
# pid never matches. (Comparing /proc/PID/exe with the binary judged a process
# that had not exec'd yet as not ours: `up` then dropped its pid file, reported
# "did not start listening" with an empty log and left the server running.)

# proc_identity PID: print "BOOT_ID START_TIME" of a live, non-zombie process.
proc_identity() {
  local pid="$1" stat boot
  local -a fields
  { stat="$(<"/proc/$pid/stat")"; } 2>/dev/null || return 1
  boot="$(<"/proc/sys/kernel/random/boot_id")"
  # The command name (field 2) may contain spaces and ')': split after its
  # last ')'. fields[0] is the state (field 3), fields[19] the start time (22).
  read -r -a fields <<<"${stat##*) }"
  [[ "${fields[0]-}" != Z && "${fields[19]-}" =~ ^[0-9]+$ ]] || return 1
  echo "$boot ${fields[19]}"
}

# pid_is_ours NAME: true if $STATE/NAME.pid names a live process that is the
# one `start` forked.
pid_is_ours() {
  local name="$1" pid want have
  [[ -f "$STATE/$name.pid" ]] || return 1
  pid="$(<"$STATE/$name.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [[ -f "$STATE/$name.identity" ]]; then
    want="$(<"$STATE/$name.identity")"
    have="$(proc_identity "$pid")" || return 1
    [[ -n "$want" && "$have" == "$want" ]]
  elif [[ -f "$STATE/$name.exe" ]]; then
    # A cluster started by an older version of this script, which recorded
    # only the binary; those processes exec'd long ago, so the check is sound.
    want="$(<"$STATE/$name.exe")"
    have="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    [[ "${have% (deleted)}" == "$want" ]]
  else
    return 1
  fi
}

# stop_one NAME [GRACE_TENTHS]: SIGTERM, then SIGKILL after GRACE_TENTHS tenths of a second
# (default 300: 30 s for a clean exit).
stop_one() {
  local name="$1" grace_tenths="${2:-300}" pid i
  if ! pid_is_ours "$name"; then
    rm -f "$STATE/$name.pid" "$STATE/$name.identity" "$STATE/$name.exe"
    return 0
  fi
  pid="$(<"$STATE/$name.pid")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace_tenths; i++)); do
    pid_is_ours "$name" || break
    sleep 0.1
  done
  if pid_is_ours "$name"; then
    log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do pid_is_ours "$name" || break; sleep 0.1; done
  fi
  rm -f "$STATE/$name.pid" "$STATE/$name.identity" "$STATE/$name.exe"
}

stop_all() {
  # A node (up --node) goes first: its Pods need containerd, and the kubelet the apiserver.
  if [[ -f "$NODE_ENV_FILE" || -f "$STATE/node-bridge" || -f "$STATE/node-cgroup" ]]; then node_down; fi
  stop_one kube-apiserver
  stop_one etcd
}

# start NAME BINARY ARGS...: start detached (own session, so a Ctrl-C in the
# calling shell doesn't reach it) and record its pid and identity at once, so
# every later failure path can stop it. A background job of a non-interactive
# script is not a process-group leader, so setsid(1) calls setsid() in place
# and execs BINARY: the pid stays the one we record. Fd 8 (the port lock) is
# closed in the child: a server holding it would block every other `up` if
# this script died before unlocking.
start() {
  local name="$1" bin="$2"; shift 2
  setsid "$bin" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- &
  local pid=$!
  echo "$pid" >"$STATE/$name.pid"
  # Empty if it is already gone; pid_is_ours then reports it as exited.
  proc_identity "$pid" >"$STATE/$name.identity" || true
  log "started $name (pid $pid), log: $LOGS/$name.log"
}

# While `up` runs, any exit other than success (an error, Ctrl-C, SIGTERM)
# stops what it started: a failed `up` leaves no process behind.
stop_all_unless_up() {
  local status=$?
  trap - EXIT
  if ((status != 0)); then
    stop_all || true
  fi
  exit "$status"
}

# ---------------------------------------------------------------- ports

PICKED=()
# pick_port: set PORT to a loopback TCP port nobody listens on, below the
# default ephemeral range so outgoing connections don't take it meanwhile.
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ " ${PICKED[*]-} " == *" $p "* ]] && continue
    listening "$p" && continue
    PICKED+=("$p")
    PORT="$p"
    return 0
  done
  die "could not find a free port"
}

listening() {  # listening PORT
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# wait_listen NAME PORT TIMEOUT: until PORT listens; fails if NAME exits.
wait_listen() {
  local name="$1" port="$2" timeout="$3" i
  for ((i = 0; i < timeout * 10; i++)); do
    pid_is_ours "$name" || return 1
    listening "$port" && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- pki

gen_pki() {
  command -v openssl >/dev/null 2>&1 \
    || die "openssl not found (Debian/Ubuntu: apt-get install openssl)"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    umask 077
    local days=3650
    ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    serial() { echo "0x$(openssl rand -hex 16)"; }

    # CA for both serving and client certs.
    ec ca.key
    openssl req -x509 -new -key ca.key -sha256 -days "$days" -out ca.crt \
      -subj "/CN=parafork-dev-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"

    # kube-apiserver serving cert.
    ec apiserver.key
    openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr
    cat >apiserver.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -set_serial "$(serial)" \
      -sha256 -days "$days" -extfile apiserver.ext -out apiserver.crt 2>/dev/null

    # Admin client cert: O=system:masters is bound to cluster-admin by the
    # bootstrap RBAC policy (and short-circuits authorization).
    ec admin.key
    openssl req -new -key admin.key -subj "/O=system:masters/CN=parafork-admin" -out admin.csr
    cat >admin.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -set_serial "$(serial)" \
      -sha256 -days "$days" -extfile admin.ext -out admin.crt 2>/dev/null

    # Service-account token signing key pair.
    ec sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext
  ) || die "certificate generation failed"
}

write_kubeconfig() {
  local port="$1" tmp="$KUBECONFIG_PATH.tmp"
  b64() { base64 -w0 <"$1"; }
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: parafork-dev
  cluster:
    server: https://$2:$port
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: parafork-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: parafork-dev
  context:
    cluster: parafork-dev
    user: parafork-admin
current-context: parafork-dev
EOF
  )
  mv "$tmp" "$KUBECONFIG_PATH"
}

# ---------------------------------------------------------------- commands

readyz() {  # readyz KUBECONFIG
  "$BIN/kubectl" --kubeconfig "$1" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

fail_up() {
  local name="$1" msg="$2"
  log "ERROR: $msg"
  if [[ -f "$LOGS/$name.log" ]]; then
    log "---- last 40 lines of $LOGS/$name.log ----"
    tail -n 40 "$LOGS/$name.log" >&2 || true
    log "----"
  fi
  stop_all
  log "state (logs, certs) left in $STATE; '$0 down' removes it"
  exit 1
}

cmd_up() {
  local with_node=0
  case "${1:-}" in
    "") ;;
    --node) with_node=1 ;;
    *) usage ;;
  esac
  if ((with_node)) && [[ "$(id -u)" != 0 ]]; then die "up --node needs root (containerd, runc, a bridge, cgroups)"; fi
  # Already running? Then this is a no-op.
  if [[ -f "$MARKER" ]] && pid_is_ours etcd && pid_is_ours kube-apiserver \
     && [[ -f "$STATE/bin-dir" ]] && { ((with_node == 0)) || pid_is_ours kubelet; }; then
    BIN="$(<"$STATE/bin-dir")"
    if readyz "$KUBECONFIG_PATH"; then
      log "already up ($STATE)"
      echo "$KUBECONFIG_PATH"
      return 0
    fi
  fi

  BIN="$("$ROOT/scripts/build-tools.sh" | tail -n 1)"
  [[ -x "$BIN/kube-apiserver" && -x "$BIN/etcd" && -x "$BIN/kubectl" ]] \
    || die "build-tools.sh did not produce the binaries (got '$BIN')"
  # The node's runtime (containerd, runc, CNI plugins, crictl) is in the node/ dir beside bin/.
  NODE_BIN="$(dirname "$BIN")/node"
  if ((with_node)); then
    [[ -x "$BIN/kubelet" && -x "$NODE_BIN/containerd" && -x "$NODE_BIN/runc" && -x "$NODE_BIN/cni/bridge" ]] \
      || die "build-tools.sh did not produce the node's binaries (kubelet in $BIN, containerd, runc, cni/ in $NODE_BIN)"
  fi

  # Clear a previous (stopped or half-started) cluster in this dir.
  if [[ -e "$STATE" ]]; then
    if [[ -f "$MARKER" ]]; then
      stop_all
      rm -rf "$STATE"
    elif [[ -n "$(ls -A "$STATE" 2>/dev/null)" ]]; then
      die "$STATE exists, is not empty and is not a dev-cluster state dir; refusing to touch it"
    fi
  fi
  mkdir -p "$STATE" "$LOGS"
  touch "$MARKER"
  trap stop_all_unless_up EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "$BIN" >"$STATE/bin-dir"

  local address=127.0.0.1
  if ((with_node)); then
    exec 8>"$PORT_LOCK"
    flock 8
    node_claim_machine
    node_pick_network
    node_network_up
    flock -u 8
    address="$NODE_IP"
  fi
  log "generating certificates in $PKI"
  gen_pki "$address"

  local attempt etcd_port peer_port api_port
  for attempt in 1 2 3; do
    ((attempt == 1)) || log "attempt $attempt of 3"
    # Hold a machine-wide lock from picking ports until both servers listen,
    # so concurrent `up`s can't choose the same ports.
    exec 8>"$PORT_LOCK"
    flock 8
    PICKED=()
    pick_port; etcd_port=$PORT
    pick_port; peer_port=$PORT
    pick_port; api_port=$PORT
    if ((with_node)); then
      pick_port; KUBELET_PORT=$PORT
      pick_port; KUBELET_HEALTHZ_PORT=$PORT
    fi

    rm -rf "$STATE/etcd-data"
    start etcd "$BIN/etcd" \
      --name=parafork-dev \
      --data-dir="$STATE/etcd-data" \
      --listen-client-urls="http://127.0.0.1:$etcd_port" \
      --advertise-client-urls="http://127.0.0.1:$etcd_port" \
      --listen-peer-urls="http://127.0.0.1:$peer_port" \
      --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
      --initial-cluster="parafork-dev=http://127.0.0.1:$peer_port" \
      --unsafe-no-fsync=true
    if ! wait_listen etcd "$etcd_port" 30; then
      flock -u 8
      if grep -q 'address already in use' "$LOGS/etcd.log" 2>/dev/null; then
        log "etcd: port taken, retrying with new ports"; stop_all; continue
      fi
      fail_up etcd "etcd did not start listening on 127.0.0.1:$etcd_port"
    fi

    local api_args=(
      --bind-address="$address"
      --advertise-address="$address"
      --secure-port="$api_port"
      --cert-dir="$PKI"
      --tls-cert-file="$PKI/apiserver.crt"
      --tls-private-key-file="$PKI/apiserver.key"
      --client-ca-file="$PKI/ca.crt"
      --etcd-servers="http://127.0.0.1:$etcd_port"
      --authorization-mode=RBAC
      --service-account-issuer="https://127.0.0.1:$api_port/"
      --service-account-key-file="$PKI/sa.pub"
      --service-account-signing-key-file="$PKI/sa.key"
      --service-cluster-ip-range="$SERVICE_CIDR"
      --allow-privileged=true
    )
    if ((with_node)); then
      # Pods get ServiceAccount tokens (kube-controller-manager signs them), the kubernetes
      # Service the node's address, and `kubectl logs` reaches the kubelet.
      api_args+=(--kubelet-client-certificate="$PKI/admin.crt" --kubelet-client-key="$PKI/admin.key"
                 --kubelet-preferred-address-types=InternalIP)
    else
      api_args+=(--disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none)
    fi
    # Kept for `restart-apiserver`, which starts it again exactly so (same port, same etcd).
    printf '%s\0' "${api_args[@]}" >"$STATE/kube-apiserver.args"
    start kube-apiserver "$BIN/kube-apiserver" "${api_args[@]}"
    if ! wait_listen kube-apiserver "$api_port" 60; then
      flock -u 8
      if grep -q 'address already in use' "$LOGS/kube-apiserver.log" 2>/dev/null; then
        log "kube-apiserver: port taken, retrying with new ports"; stop_all; continue
      fi
      fail_up kube-apiserver "kube-apiserver did not start listening on 127.0.0.1:$api_port"
    fi
    flock -u 8
    break
  done
  pid_is_ours kube-apiserver || die "could not start the control plane after 3 attempts"

  write_kubeconfig "$api_port" "$address"
  cat >"$STATE/cluster.env" <<EOF
KUBECONFIG=$KUBECONFIG_PATH
PARAFORK_TOOLS_BIN=$BIN
APISERVER_URL=https://$address:$api_port
ETCD_URL=http://127.0.0.1:$etcd_port
EOF

  log "waiting up to ${READY_TIMEOUT}s for /readyz on https://$address:$api_port"
  local start_ts=$SECONDS
  until readyz "$KUBECONFIG_PATH"; do
    pid_is_ours kube-apiserver || fail_up kube-apiserver "kube-apiserver exited"
    pid_is_ours etcd || fail_up etcd "etcd exited"
    ((SECONDS - start_ts < READY_TIMEOUT)) \
      || fail_up kube-apiserver "kube-apiserver not ready after ${READY_TIMEOUT}s"
    sleep 0.5
  done
  log "ready in $((SECONDS - start_ts))s: https://$address:$api_port (etcd 127.0.0.1:$etcd_port)"
  if ((with_node)); then
    API_PORT=$api_port
    echo "APISERVER_PORT=$api_port" >>"$NODE_ENV_FILE"
    node_up "$KUBECONFIG_PATH"
  fi
  trap - EXIT INT TERM
  echo "$KUBECONFIG_PATH"
}

cmd_down() {
  if [[ ! -e "$STATE" ]]; then
    log "nothing to do: $STATE does not exist"
    return 0
  fi
  [[ -f "$MARKER" ]] || die "$STATE is not a dev-cluster state dir; refusing to touch it"
  stop_all
  rm -rf "$STATE"
  log "removed $STATE"
}

# Stops kube-apiserver and starts it again with the same arguments, for tests of clients that must
# survive an apiserver restart; etcd (and so every object) stays.
cmd_restart_apiserver() {
  [[ -f "$MARKER" && -f "$STATE/kube-apiserver.args" ]] || die "no cluster is up in $STATE (run '$0 up')"
  local args=()
  mapfile -d '' args <"$STATE/kube-apiserver.args"
  BIN="$(sed -n 's/^PARAFORK_TOOLS_BIN=//p' "$STATE/cluster.env")"
  [[ -x "$BIN/kube-apiserver" ]] || die "no kube-apiserver binary recorded in $STATE/cluster.env"
  # One second, not thirty: kube-apiserver drains open watches for ~30 s on SIGTERM, and a test of
  # a client surviving a restart is served as well (better) by an abrupt stop.
  stop_one kube-apiserver 10
  local start_ts=$SECONDS attempt log_offset
  for ((attempt = 1; ; attempt++)); do
    log_offset=$(stat -c %s "$LOGS/kube-apiserver.log" 2>/dev/null || echo 0)
    start kube-apiserver "$BIN/kube-apiserver" "${args[@]}"
    until readyz "$KUBECONFIG_PATH"; do
      pid_is_ours kube-apiserver || break
      ((SECONDS - start_ts < READY_TIMEOUT)) || die "kube-apiserver not ready ${READY_TIMEOUT}s after the restart"
      sleep 0.2
    done
    pid_is_ours kube-apiserver && break
    # A killed apiserver's main thread shows as a zombie (so stop_one saw it gone) while its
    # other threads are still being torn down and hold its listening socket: under load (a CI run
    # at load 35) the new one's bind failed with EADDRINUSE. The port is this cluster's, so wait
    # for it to be free rather than take another.
    if ((attempt < 20)) && tail -c +"$((log_offset + 1))" "$LOGS/kube-apiserver.log" | grep -q 'address already in use'; then
      log "kube-apiserver: port $(sed -n 's|^APISERVER_URL=.*:||p' "$STATE/cluster.env") still held by the stopped one; starting again"
      sleep 0.5
      continue
    fi
    tail -c +"$((log_offset + 1))" "$LOGS/kube-apiserver.log" | tail -n 20 >&2
    die "kube-apiserver exited on restart; log: $LOGS/kube-apiserver.log (its last lines above)"
  done
  log "kube-apiserver restarted, ready in $((SECONDS - start_ts))s"
}

cmd_env() {
  [[ -f "$KUBECONFIG_PATH" ]] || log "warning: no cluster is up in $STATE (run '$0 up')"
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_PATH"
  if [[ -f "$STATE/bin-dir" ]]; then
    # shellcheck disable=SC2016 # $PATH is for the shell that evals this
    printf 'export PATH=%q:"$PATH"\n' "$(<"$STATE/bin-dir")"
  fi
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  env) cmd_env ;;
  restart-apiserver) cmd_restart_apiserver ;;
  *) usage ;;
esac
