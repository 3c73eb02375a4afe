#!/usr/bin/env bash
# A real Docker Swarm on this one machine, for labup's classroom-on-a-cluster tests and benchmarks.
#
#   bash scripts/testswarm.sh up       # three nodes: n1 (manager), n2, n3 (workers); idempotent
#   bash scripts/testswarm.sh status   # one line per node; exit 1 unless the swarm is healthy
#   bash scripts/testswarm.sh down     # kill by PID, remove namespaces, veths, bridge, rule, state
#
# Each node nK is a separate dockerd in its own network namespace (labup-sw-nK) and UTS namespace
# (hostname labup-sw-nK), on one bridge of the root namespace (labup-swbr, 10.250.0.1/24; node K
# at 10.250.0.1K): own socket, data root, exec root, pidfile, managed containerd, docker0
# (10.252.K.1/24), local address pool (10.253.K.0/24), cgroup parent (/labup-sw-nK) and
# iptables. n1 inits the swarm (overlay pool 10.251.0.0/16), n2 and n3 join as workers.
# n3 advertises one fake GPU as a generic resource (NVIDIA-GPU=gpu0). Every node trusts the
# registries at 10.250.0.0/24 over plain HTTP (labup's class registry runs on the manager).
# The namespaces have no default route: a pull of a name no registry here holds fails at once
# instead of waiting on DNS that can never answer.
#
# Everything lives under STATE (LABUP_TESTSWARM_DIR, default /tmp/labup-testswarm); `up` writes
# STATE/swarm.env (LABUP_TESTSWARM_MANAGER=unix://STATE/n1/docker.sock and the rest). `up` is safe
# to run again over leftovers (kernel objects outlive processes between a session and CI): a
# healthy swarm is kept; otherwise every node is stopped and the swarm is made again, keeping
# the nodes' images (the sandbox image is 400 MB) but not their containers, volumes or swarm
# state. The main engine (/var/run/docker.sock), the SSH test hosts (labup-th-*, 10.213.x) and
# their iptables are never touched; the one root-namespace rule this script adds is
# `FORWARD -i labup-swbr -o labup-swbr -j ACCEPT` (FORWARD's policy is DROP here and bridged
# traffic passes iptables), removed by `down`.
set -euo pipefail

STATE="${LABUP_TESTSWARM_DIR:-/tmp/labup-testswarm}"
BRIDGE=labup-swbr
NET=10.250.0
POOL=10.251.0.0/16
NODES=(n1 n2 n3)
MANAGER=n1
GPU_NODE=n3
LAYOUT=1  # bump when a node's setup changes: `up` then rebuilds a swarm made by an older layout

log() { printf 'testswarm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_tools() {
    local missing=()
    for tool in ip nsenter unshare dockerd docker iptables; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing packages (missing: ${missing[*]})"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq docker.io iproute2 iptables util-linux >/dev/null
    fi
}

node_dir() { echo "$STATE/$1"; }
netns_of() { echo "labup-sw-$1"; }
addr_of() { echo "$NET.1${1#n}"; }
sock_of() { echo "unix://$(node_dir "$1")/docker.sock"; }
dk() { local n="$1"; shift; DOCKER_HOST="$(sock_of "$n")" timeout 30 docker "$@"; }

# shellcheck source=scripts/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"  # pid_alive, kill_pidfile, umount_under

forward_rule() {  # forward_rule -C|-I|-D: the one root-namespace rule for the bridge
    local op="$1"
    if [ "$op" = -I ]; then
        iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null ||
            iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    else
        while iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do
            iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
        done
    fi
}

stop_node() {  # stop one node's processes and remove its kernel objects (keeps its data root)
    local n="$1" k="${1#n}" dir
    dir="$(node_dir "$n")"
    kill_pidfile "$dir/docker.pid" dockerd 30
    kill_pidfile "$dir/exec/containerd/containerd.pid" containerd 20
    # the shims of task containers a killed dockerd left behind, by their pidfiles only
    if [ -d "$dir/exec" ]; then
        find "$dir/exec" -name 'shim.pid' -o -name 'init.pid' 2>/dev/null | while read -r f; do
            pid="$(cat "$f" 2>/dev/null || true)"
            [ -n "$pid" ] && [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
        done
    fi
    umount_under "$dir"
    if ip netns list 2>/dev/null | grep -qw "$(netns_of "$n")"; then
        ip netns del "$(netns_of "$n")" 2>/dev/null || true
    fi
    ip link show "lsw${k}a" >/dev/null 2>&1 && ip link del "lsw${k}a" 2>/dev/null || true
}

make_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    ip addr show dev "$BRIDGE" | grep -q "inet $NET.1/24" || ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    forward_rule -I
}

write_daemon_json() {
    local n="$1" k="${1#n}" gpu=""
    [ "$n" = "$GPU_NODE" ] && gpu=', "node-generic-resources": ["NVIDIA-GPU=gpu0"]'
    cat >"$(node_dir "$n")/daemon.json" <<EOF
{
  "bip": "10.252.$k.1/24",
  "default-address-pools": [{"base": "10.253.$k.0/24", "size": 26}],
  "cgroup-parent": "/labup-sw-$n",
  "insecure-registries": ["$NET.0/24"],
  "storage-driver": "overlay2",
  "log-level": "warn"$gpu
}
EOF
}

start_node() {  # netns + veth on the bridge + dockerd (own hostname); fresh swarm state
    local n="$1" k="${1#n}" dir ns
    dir="$(node_dir "$n")"
    ns="$(netns_of "$n")"
    mkdir -p "$dir/data" "$dir/exec"
    rm -rf "$dir/data/swarm"  # a node always starts outside any swarm; `up` makes it again
    ip netns add "$ns"
    ip link add "lsw${k}a" type veth peer name "lsw${k}b"
    ip link set "lsw${k}a" master "$BRIDGE"
    ip link set "lsw${k}a" up
    ip link set "lsw${k}b" netns "$ns"
    ip -n "$ns" addr add "$(addr_of "$n")/24" dev "lsw${k}b"
    ip -n "$ns" link set "lsw${k}b" up
    ip -n "$ns" link set lo up
    write_daemon_json "$n"
    # nsenter --net, not `ip netns exec` (which remounts /sys: dockerd then finds no devices
    # cgroup); unshare --uts so each node has its own hostname, hence its own swarm node name
    setsid nsenter --net="/var/run/netns/$ns" unshare --uts -- \
        sh -c 'hostname "$0" && exec "$@"' "labup-sw-$n" \
        dockerd --config-file "$dir/daemon.json" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        -H "$(sock_of "$n")" --pidfile "$dir/docker.pid" \
        --containerd-namespace "labup-sw-$n" --containerd-plugins-namespace "labup-sw-$n-plugins" \
        >"$dir/dockerd.log" 2>&1 </dev/null &
}

engine_up() { DOCKER_HOST="$(sock_of "$1")" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

wait_engine() {
    local n="$1" deadline=$((SECONDS + 60))
    until engine_up "$n"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$(node_dir "$n")/dockerd.log" >&2 || true
            die "$n: dockerd did not answer within 60 s (log: $(node_dir "$n")/dockerd.log)"
        fi
        sleep 0.2
    done
}

clear_node() {  # what an earlier swarm left in a node's engine: containers, volumes, networks
    local n="$1" ids
    ids="$(dk "$n" ps -aq 2>/dev/null || true)"
    [ -n "$ids" ] && dk "$n" rm -f $ids >/dev/null 2>&1 || true
    dk "$n" volume prune -f >/dev/null 2>&1 || true
    dk "$n" network prune -f >/dev/null 2>&1 || true
}

ready_nodes() {  # how many nodes the manager sees Ready and active
    dk "$MANAGER" node ls --format '{{.Status}} {{.Availability}}' 2>/dev/null |
        grep -c '^Ready Active' || true
}

swarm_healthy() {
    [ "$(cat "$STATE/layout" 2>/dev/null)" = "$LAYOUT" ] || return 1
    local n
    for n in "${NODES[@]}"; do
        pid_alive "$(node_dir "$n")/docker.pid" dockerd && engine_up "$n" || return 1
        [ "$(dk "$n" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ] || return 1
    done
    [ "$(ready_nodes)" = "${#NODES[@]}" ]
}

write_env() {
    local n sockets="" addrs=""
    for n in "${NODES[@]}"; do
        sockets+="${sockets:+,}$(sock_of "$n")"
        addrs+="${addrs:+,}$(addr_of "$n")"
    done
    {
        echo "LABUP_TESTSWARM_DIR=$STATE"
        echo "LABUP_TESTSWARM_MANAGER=$(sock_of "$MANAGER")"
        echo "LABUP_TESTSWARM_MANAGER_ADDR=$(addr_of "$MANAGER")"
        echo "LABUP_TESTSWARM_NODES=$(printf 'labup-sw-%s,' "${NODES[@]}" | sed 's/,$//')"
        echo "LABUP_TESTSWARM_SOCKETS=$sockets"
        echo "LABUP_TESTSWARM_ADDRESSES=$addrs"
        echo "LABUP_TESTSWARM_GPU_NODE=labup-sw-$GPU_NODE"
        echo "LABUP_TESTSWARM_GPU_KIND=NVIDIA-GPU"
    } >"$STATE/swarm.env.tmp"
    mv "$STATE/swarm.env.tmp" "$STATE/swarm.env"
}

cmd_up() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, dockerd)"
    need_tools
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    make_bridge
    if swarm_healthy; then
        write_env
        log "up: swarm healthy, kept (manager $(sock_of "$MANAGER"))"
        return 0
    fi
    log "making the swarm (${NODES[*]}) under $STATE"
    local n
    rm -f "$STATE/layout" "$STATE/swarm.env"
    for n in "${NODES[@]}"; do stop_node "$n"; done
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do wait_engine "$n"; clear_node "$n"; done
    dk "$MANAGER" swarm init --advertise-addr "$(addr_of "$MANAGER")" \
        --listen-addr "$(addr_of "$MANAGER"):2377" --default-addr-pool "$POOL" >/dev/null
    local token
    token="$(dk "$MANAGER" swarm join-token -q worker)"
    for n in "${NODES[@]}"; do
        [ "$n" = "$MANAGER" ] && continue
        dk "$n" swarm join --token "$token" --advertise-addr "$(addr_of "$n")" \
            --listen-addr "$(addr_of "$n"):2377" "$(addr_of "$MANAGER"):2377" >/dev/null
    done
    local deadline=$((SECONDS + 60))
    until [ "$(ready_nodes)" = "${#NODES[@]}" ]; do
        [ "$SECONDS" -ge "$deadline" ] && die "the swarm has $(ready_nodes) ready node(s) after 60 s"
        sleep 0.3
    done
    echo "$LAYOUT" >"$STATE/layout"
    write_env
    log "up: swarm of ${#NODES[@]} nodes, manager $(sock_of "$MANAGER") ($STATE/swarm.env)"
}

cmd_status() {
    local n rc=0
    for n in "${NODES[@]}"; do
        local engine="down" state="-"
        if pid_alive "$(node_dir "$n")/docker.pid" dockerd && engine_up "$n"; then
            engine="up"
            state="$(dk "$n" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || echo '?')"
        else
            rc=1
        fi
        printf '%-4s %-14s %-12s engine %-4s swarm %s\n' "$n" "labup-sw-$n" "$(addr_of "$n")" "$engine" "$state"
    done
    [ "$rc" = 0 ] && swarm_healthy || rc=1
    return "$rc"
}

cmd_down() {
    local n k
    for n in "${NODES[@]}"; do stop_node "$n"; done
    # namespaces and veths of an earlier run whose state folder is gone
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^labup-sw-' || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    for k in 1 2 3 4 5 6 7 8 9; do
        ip link show "lsw${k}a" >/dev/null 2>&1 && ip link del "lsw${k}a" 2>/dev/null || true
    done
    forward_rule -D
    ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE" 2>/dev/null || true
    if [ -d "$STATE" ]; then
        umount_under "$STATE"
        rm -rf "$STATE"
    fi
    log "down: test swarm removed"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up | status | down" >&2; exit 2 ;;
esac
