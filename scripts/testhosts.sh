#!/usr/bin/env bash
# A classroom of real "remote" Docker hosts on this one machine, for labup's SSH and fleet tests.
#
#   bash scripts/testhosts.sh up [N]     # at least N hosts h1..hN (default 3), + the broken ones
#   bash scripts/testhosts.sh status     # what runs, one line per host
#   bash scripts/testhosts.sh down       # kill by PID, remove namespaces, veths, mounts, state
#   bash scripts/testhosts.sh trim N     # stop the hosts beyond hN (after a bigger benchmark)
#   bash scripts/testhosts.sh up [N] --engines   # the same, plus the engine hosts below
#   bash scripts/testhosts.sh engines up|status|down   # only the engine hosts (down: just them)
#
# Each host hK is a separate dockerd in its own network namespace (labup-th-hK: a veth pair with
# a /30 of 10.213.K.0, lo up; own socket, data root, exec root, pidfile, containerd) and a real
# OpenSSH sshd on 127.0.0.1:(22200+K) with its own host key, whose sessions reach hK's dockerd
# through `SetEnv DOCKER_HOST=unix://STATE/hK/docker.sock`. Besides them:
#   hdown      127.0.0.1:22299, nothing listens (an unreachable machine)
#   hbadkey    a real sshd whose host key differs from the one in known_hosts (changed key)
#   hnodocker  a real sshd whose sessions find no Docker engine
# h2 has a fake `nvidia-smi` (one "GPU") first on its sessions' PATH, for GPU placement tests.
# Every good host has `labup` on its sessions' PATH (this checkout's venv), as a classroom
# machine where learners type `labup` has it installed, and an upstream DNS that answers
# "no such name" at once (scripts/nxdns.py on 10.213.K.1), as a real network's does.
# The engine hosts, other engines than Debian 12's dockerd 20.10, each in its own namespace
# with its own sshd like hK (functions eng_*, below; optional: `up --engines` or `engines up`):
#   hdocker26  127.0.0.1:22281, Debian 13's docker.io (dockerd 26.1, API 1.45) in a trixie root
#              made once by debootstrap (cached in LABUP_TESTHOSTS_CACHE, default
#              /var/cache/labup-testhosts), run as its own root in a private mount namespace
#   hpodman    127.0.0.1:22282, Debian 12's podman 4.3 serving the Docker API
#              (`podman system service`), runc, netavark, no systemd
#
# Everything lives under STATE (LABUP_TESTHOSTS_DIR, default /tmp/labup-testhosts): the client
# key pair (client/id_ed25519), client/known_hosts, inventory.yml (all hosts), inventory-good.yml
# (h1..hN only) and hosts.env (LABUP_TESTHOSTS_ENGINES names the engine hosts that are up). `up` is safe to run again over leftovers of an earlier run (kernel
# objects survive between a session and CI): a healthy host is kept, anything else is cleaned and
# started again. The main engine (/var/run/docker.sock), its docker0 and iptables are never touched.
set -euo pipefail

STATE="${LABUP_TESTHOSTS_DIR:-/tmp/labup-testhosts}"
BASE_PORT=22200
DOWN_PORT=22299
BADKEY_PORT=22290
NODOCKER_PORT=22291
GPU_HOST=h2
MAX_HOSTS=20
LAYOUT=2  # bump when a host's setup changes: `up` then restarts hosts made by an older layout
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'testhosts: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_tools() {
    local missing=()
    for tool in ip nsenter dockerd ssh-keygen; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ -x /usr/sbin/sshd ] || missing+=("sshd")
    command -v docker >/dev/null 2>&1 || missing+=("docker")
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing openssh-server (missing: ${missing[*]})"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq openssh-server openssh-client docker.io iproute2 util-linux >/dev/null
    fi
    [ -x /usr/sbin/sshd ] || die "sshd is still missing after installing openssh-server"
}

# shellcheck source=scripts/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"  # pid_alive, kill_pidfile, umount_under

host_dir() { echo "$STATE/$1"; }
netns_of() { echo "labup-th-$1"; }

clean_host() {  # stop everything of one host and remove its kernel objects
    local h="$1" k="${1#h}" dir
    dir="$(host_dir "$h")"
    kill_pidfile "$dir/sshd.pid" sshd
    kill_pidfile "$dir/docker.pid" dockerd
    kill_pidfile "$dir/nxdns.pid" python
    # the supervised containerd of that dockerd, if it outlived it
    kill_pidfile "$dir/exec/containerd/containerd.pid" containerd
    umount_under "$dir"
    if ip netns list 2>/dev/null | grep -qw "$(netns_of "$h")"; then
        ip netns del "$(netns_of "$h")" 2>/dev/null || true
    fi
    if ip link show "lth${k}a" >/dev/null 2>&1; then
        ip link del "lth${k}a" 2>/dev/null || true
    fi
}

make_keys() {
    mkdir -p "$STATE/client" "$STATE/keys"
    [ -f "$STATE/client/id_ed25519" ] ||
        ssh-keygen -q -t ed25519 -N '' -C labup-test-client -f "$STATE/client/id_ed25519"
    cp "$STATE/client/id_ed25519.pub" "$STATE/client/authorized_keys"
    # a spare key that the changed-key host's known_hosts entry wrongly names
    [ -f "$STATE/keys/stale_host_key" ] ||
        ssh-keygen -q -t ed25519 -N '' -C labup-stale -f "$STATE/keys/stale_host_key"
    chmod 600 "$STATE/client/id_ed25519"
}

write_fake_nvidia_smi() {
    local bin="$1"
    mkdir -p "$bin"
    cat >"$bin/nvidia-smi" <<'EOF'
#!/bin/sh
# Fake nvidia-smi for labup's GPU placement tests: one GPU.
case "$*" in
  *--query-gpu*) echo "0, Fake Tesla T4, 15360 MiB"; exit 0 ;;
  *-L*) echo "GPU 0: Fake Tesla T4 (UUID: GPU-00000000-0000-0000-0000-000000000000)"; exit 0 ;;
  *) echo "Fake NVIDIA-SMI 535.00  Driver Version: 535.00  CUDA Version: 12.2"; exit 0 ;;
esac
EOF
    chmod 755 "$bin/nvidia-smi"
    cat >"$bin/nvidia-container-runtime-hook" <<'EOF'
#!/bin/sh
# Fake OCI prestart hook for labup's test GPU host: accept the container, change nothing.
cat >/dev/null
exit 0
EOF
    chmod 755 "$bin/nvidia-container-runtime-hook"
}

write_labup_shim() {  # labup on the host's PATH, as a learner's classroom machine has it
    local bin="$1"
    mkdir -p "$bin"
    printf '#!/bin/sh\n# labup as installed on this test host (scripts/testhosts.sh)\nexec %q "$@"\n' \
        "$ROOT/.venv/bin/labup" >"$bin/labup.new"
    chmod 755 "$bin/labup.new"
    mv "$bin/labup.new" "$bin/labup"
}

write_sshd() {  # write_sshd NAME PORT DOCKER_SOCK [PATH-PREFIX]
    local name="$1" port="$2" sock="$3" prefix="${4:-}" dir
    dir="$(host_dir "$name")"
    mkdir -p "$dir"
    [ -f "$dir/ssh_host_ed25519_key" ] ||
        ssh-keygen -q -t ed25519 -N '' -C "labup-$name" -f "$dir/ssh_host_ed25519_key"
    local path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    [ -n "$prefix" ] && path="$prefix:$path"
    # SHLVL=1: bash then skips ~/.bashrc in sessions (it sources it for sshd-run shells only
    # at level 1); this machine's root rc runs `pyenv init`, 0.1-0.9 s of CPU per channel,
    # which a classroom machine would not pay. Sessions get exactly the PATH below.
    cat >"$dir/sshd_config.new" <<EOF
# labup test host $name (written by scripts/testhosts.sh)
Port $port
ListenAddress ${SSHD_LISTEN:-127.0.0.1}
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $STATE/client/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
StrictModes no
UsePAM no
MaxSessions 10
LogLevel INFO
SetEnv SHLVL=1 DOCKER_HOST=unix://$sock PATH=$path
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
    if cmp -s "$dir/sshd_config.new" "$dir/sshd_config"; then
        rm -f "$dir/sshd_config.new"
        return 1  # unchanged
    fi
    mv "$dir/sshd_config.new" "$dir/sshd_config"
    return 0
}

ensure_sshd() {  # ensure_sshd NAME PORT DOCKER_SOCK [PATH-PREFIX]: start, or reload a changed config
    local name="$1" port="$2" dir
    dir="$(host_dir "$name")"
    if pid_alive "$dir/sshd.pid" sshd; then
        if write_sshd "$@"; then
            kill -HUP "$(cat "$dir/sshd.pid")"  # sshd re-executes itself with the new config
        fi
        return 0
    fi
    [ -z "${SSHD_NETNS:-}" ] && port_busy "$port" && die "port $port is taken by another process"
    write_sshd "$@" || true
    start_sshd "$name"
}

start_sshd() {
    local name="$1" dir
    dir="$(host_dir "$name")"
    mkdir -p /run/sshd
    chmod 755 /run/sshd
    if [ -n "${SSHD_NETNS:-}" ]; then  # an sshd that lives in a namespace of its own
        nsenter --net="/var/run/netns/$SSHD_NETNS" /usr/sbin/sshd -f "$dir/sshd_config" \
            -E "$dir/sshd.log"
    else
        /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_host() {  # start_host hK: netns + veth + dockerd + sshd
    local h="$1" k="${1#h}" dir ns
    dir="$(host_dir "$h")"
    ns="$(netns_of "$h")"
    mkdir -p "$dir/data" "$dir/exec"
    ip netns add "$ns"
    ip link add "lth${k}a" type veth peer name "lth${k}b"
    ip link set "lth${k}b" netns "$ns"
    ip addr add "10.213.$k.1/30" dev "lth${k}a"
    ip link set "lth${k}a" up
    ip -n "$ns" addr add "10.213.$k.2/30" dev "lth${k}b"
    ip -n "$ns" link set "lth${k}b" up
    ip -n "$ns" link set lo up
    # The namespace has no route out, so the engine's upstream DNS would never answer and a
    # name a lab container cannot resolve would hang for the resolver's timeout. A real
    # machine's DNS says "no such name" at once: so does scripts/nxdns.py, on our veth end.
    kill_pidfile "$dir/nxdns.pid" python
    setsid python3 "$ROOT/scripts/nxdns.py" "10.213.$k.1" "$dir/nxdns.pid" \
        >"$dir/nxdns.log" 2>&1 </dev/null &
    printf '{"dns": ["10.213.%s.1"]}\n' "$k" >"$dir/daemon.json"
    write_labup_shim "$dir/bin"
    local extra=() dpath="$PATH"
    if [ "$h" = "$GPU_HOST" ]; then
        # A fake GPU: dockerd registers its "nvidia" device driver when it finds
        # nvidia-container-runtime-hook on its PATH (the fake one accepts and does nothing),
        # and `docker info` lists an nvidia runtime (plain runc here).
        write_fake_nvidia_smi "$dir/bin"
        dpath="$dir/bin:$PATH"
        extra=(--add-runtime "nvidia=$(command -v runc)")
    fi
    PATH="$dpath" setsid nsenter --net="/var/run/netns/$ns" dockerd "${extra[@]}" \
        --config-file "$dir/daemon.json" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
        --containerd-namespace "labup-$h" --containerd-plugins-namespace "labup-$h-plugins" \
        --storage-driver overlay2 --log-level warn \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    echo "$LAYOUT" >"$dir/layout"
    ensure_sshd "$h" "$((BASE_PORT + k))" "$dir/docker.sock" "$dir/bin"
}

engine_up() { DOCKER_HOST="unix://$(host_dir "$1")/docker.sock" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

host_healthy() {
    local h="$1" dir
    dir="$(host_dir "$h")"
    # (the DNS answer is checked by what it needs, not by LAYOUT: an older copy of this script,
    # in another checkout, then keeps these hosts instead of restarting them)
    [ "$(cat "$dir/layout" 2>/dev/null)" = "$LAYOUT" ] && pid_alive "$dir/nxdns.pid" python &&
        grep -q '"dns"' "$dir/daemon.json" 2>/dev/null &&
        pid_alive "$dir/sshd.pid" sshd && pid_alive "$dir/docker.pid" dockerd && engine_up "$h"
}

# -- a classroom behind a gateway: hjump (a bastion) and hbehind, reachable only through it ----
# hjump: an sshd in namespace labup-th-jump on 10.213.200.2:22 (veth to this namespace, 10.213.200.1).
# hbehind: a dockerd and an sshd in namespace labup-th-hbehind on 10.213.201.2:22, linked only
# to labup-th-jump (10.213.201.1): no route from here reaches it; ProxyJump through hjump does.
JUMP_NS=labup-th-jump
BEHIND_NS=labup-th-hbehind
JUMP_ADDR=10.213.200.2
BEHIND_ADDR=10.213.201.2

clean_jump_hosts() {
    local h
    for h in hjump hbehind; do
        kill_pidfile "$(host_dir "$h")/sshd.pid" sshd
    done
    kill_pidfile "$(host_dir hbehind)/docker.pid" dockerd
    kill_pidfile "$(host_dir hbehind)/exec/containerd/containerd.pid" containerd
    kill_pidfile "$(host_dir hbehind)/nxdns.pid" python
    umount_under "$(host_dir hbehind)"
    for ns in "$BEHIND_NS" "$JUMP_NS"; do
        if ip netns list 2>/dev/null | grep -qw "$ns"; then ip netns del "$ns" 2>/dev/null || true; fi
    done
    ip link show ltjmpa >/dev/null 2>&1 && ip link del ltjmpa 2>/dev/null || true
    ip route del unreachable 10.213.201.0/30 2>/dev/null || true
}

jump_hosts_healthy() {
    local dir
    dir="$(host_dir hbehind)"
    [ "$(cat "$dir/layout" 2>/dev/null)" = "$LAYOUT" ] &&
        pid_alive "$(host_dir hjump)/sshd.pid" sshd && pid_alive "$dir/sshd.pid" sshd &&
        pid_alive "$dir/docker.pid" dockerd && pid_alive "$dir/nxdns.pid" python &&
        DOCKER_HOST="unix://$dir/docker.sock" timeout 5 docker version >/dev/null 2>&1
}

start_jump_hosts() {
    local dir
    dir="$(host_dir hbehind)"
    mkdir -p "$dir/data" "$dir/exec" "$(host_dir hjump)"
    ip netns add "$JUMP_NS"
    ip netns add "$BEHIND_NS"
    ip link add ltjmpa type veth peer name ltjmpb
    ip link set ltjmpb netns "$JUMP_NS"
    ip addr add 10.213.200.1/30 dev ltjmpa
    ip link set ltjmpa up
    ip -n "$JUMP_NS" addr add "$JUMP_ADDR/30" dev ltjmpb
    ip -n "$JUMP_NS" link set ltjmpb up
    ip -n "$JUMP_NS" link set lo up
    ip -n "$JUMP_NS" link add ltbhda type veth peer name ltbhdb
    ip -n "$JUMP_NS" link set ltbhdb netns "$BEHIND_NS"
    ip -n "$JUMP_NS" addr add 10.213.201.1/30 dev ltbhda
    ip -n "$JUMP_NS" link set ltbhda up
    ip -n "$BEHIND_NS" addr add "$BEHIND_ADDR/30" dev ltbhdb
    ip -n "$BEHIND_NS" link set ltbhdb up
    ip -n "$BEHIND_NS" link set lo up
    # from here, hbehind's link is unreachable (never the default route: nothing leaves the machine)
    ip route replace unreachable 10.213.201.0/30
    setsid nsenter --net="/var/run/netns/$JUMP_NS" python3 "$ROOT/scripts/nxdns.py" \
        10.213.201.1 "$dir/nxdns.pid" >"$dir/nxdns.log" 2>&1 </dev/null &
    printf '{"dns": ["10.213.201.1"]}\n' >"$dir/daemon.json"
    write_labup_shim "$dir/bin"
    setsid nsenter --net="/var/run/netns/$BEHIND_NS" dockerd \
        --config-file "$dir/daemon.json" \
        --data-root "$dir/data" --exec-root "$dir/exec" \
        -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
        --containerd-namespace labup-hbehind --containerd-plugins-namespace labup-hbehind-plugins \
        --storage-driver overlay2 --log-level warn \
        >"$dir/dockerd.log" 2>&1 </dev/null &
    echo "$LAYOUT" >"$dir/layout"
}

ensure_jump_hosts() {
    local dir
    dir="$(host_dir hbehind)"
    if ! jump_hosts_healthy; then
        clean_jump_hosts
        start_jump_hosts
        local deadline=$((SECONDS + 60))
        until DOCKER_HOST="unix://$dir/docker.sock" timeout 5 docker version >/dev/null 2>&1; do
            [ "$SECONDS" -ge "$deadline" ] && die "hbehind: dockerd did not answer within 60 s"
            sleep 0.3
        done
    fi
    SSHD_LISTEN="$JUMP_ADDR" SSHD_NETNS="$JUMP_NS" \
        ensure_sshd hjump 22 "$(host_dir hjump)/no-engine.sock"
    SSHD_LISTEN="$BEHIND_ADDR" SSHD_NETNS="$BEHIND_NS" \
        ensure_sshd hbehind 22 "$dir/docker.sock" "$dir/bin"
}

write_jump_files() {
    local c="$STATE/client"
    {
        echo "# labup test classroom behind a gateway (written by scripts/testhosts.sh)"
        echo "Host jump"
        echo "    HostName $JUMP_ADDR"
        echo "    User root"
        echo "    IdentityFile $c/id_ed25519"
        echo "    UserKnownHostsFile $c/known_hosts"
        echo "Host behind"
        echo "    HostName $BEHIND_ADDR"
        echo "    User root"
        echo "    ProxyJump jump"
        echo "    IdentityFile $c/id_ed25519"
        echo "    UserKnownHostsFile $c/known_hosts"
    } >"$c/ssh_config"
    {
        echo "# the classroom behind the gateway hjump (written by scripts/testhosts.sh)"
        echo "apiVersion: labup/v1"
        echo "kind: Inventory"
        echo "defaults:"
        echo "  user: root"
        echo "  key: $c/id_ed25519"
        echo "  known_hosts: $c/known_hosts"
        echo "hosts:"
        echo "  hbehind:"
        echo "    address: $BEHIND_ADDR"
        echo "    proxy_jump: root@$JUMP_ADDR"
        echo "    vars: {learner: zoe, port_offset: 90, labup_dir: $(host_dir hbehind)/labup, labup_state_dir: $(host_dir hbehind)/state}"
    } >"$STATE/inventory-jump.yml"
}

known_hosts_line() {  # known_hosts_line PORT KEYFILE.pub
    printf '[127.0.0.1]:%s %s\n' "$1" "$(cut -d' ' -f1,2 "$2")"
}

write_client_files() {
    local n="$1" k kh="$STATE/client/known_hosts.tmp"
    : >"$kh"
    for k in $(seq 1 "$n"); do
        known_hosts_line "$((BASE_PORT + k))" "$STATE/h$k/ssh_host_ed25519_key.pub" >>"$kh"
    done
    known_hosts_line "$NODOCKER_PORT" "$STATE/hnodocker/ssh_host_ed25519_key.pub" >>"$kh"
    # the gateway and the host behind it, on port 22 (OpenSSH writes no [host]:port then)
    [ -f "$STATE/hjump/ssh_host_ed25519_key.pub" ] &&
        printf '%s %s\n' "$JUMP_ADDR" "$(cut -d' ' -f1,2 "$STATE/hjump/ssh_host_ed25519_key.pub")" >>"$kh"
    [ -f "$STATE/hbehind/ssh_host_ed25519_key.pub" ] &&
        printf '%s %s\n' "$BEHIND_ADDR" "$(cut -d' ' -f1,2 "$STATE/hbehind/ssh_host_ed25519_key.pub")" >>"$kh"
    # hbadkey: known_hosts holds another key than the one its sshd presents
    known_hosts_line "$BADKEY_PORT" "$STATE/keys/stale_host_key.pub" >>"$kh"
    # hdown: a key is known, but nothing listens
    known_hosts_line "$DOWN_PORT" "$STATE/keys/stale_host_key.pub" >>"$kh"
    eng_known_hosts >>"$kh"
    mv "$kh" "$STATE/client/known_hosts"

    local learners=(alice bob carol dave erin frank grace heidi ivan judy
                    ken lena mike nina oscar peggy quinn rita sam tina)
    {
        echo "# labup test classroom (written by scripts/testhosts.sh)"
        echo "apiVersion: labup/v1"
        echo "kind: Inventory"
        echo "parallelism: 10"
        echo "defaults:"
        echo "  address: 127.0.0.1"
        echo "  user: root"
        echo "  key: $STATE/client/id_ed25519"
        echo "  known_hosts: $STATE/client/known_hosts"
        echo "hosts:"
        for k in $(seq 1 "$n"); do
            echo "  h$k:"
            echo "    port: $((BASE_PORT + k))"
            echo "    vars: {learner: ${learners[$((k - 1))]}, port_offset: $((k * 10)), labup_dir: $STATE/h$k/labup, labup_state_dir: $STATE/h$k/state}"
        done
    } >"$STATE/inventory-good.yml"
    {
        cat "$STATE/inventory-good.yml"
        echo "  hdown:"
        echo "    port: $DOWN_PORT"
        echo "    vars: {learner: down, port_offset: 0}"
        echo "  hbadkey:"
        echo "    port: $BADKEY_PORT"
        echo "    vars: {learner: badkey, port_offset: 0}"
        echo "  hnodocker:"
        echo "    port: $NODOCKER_PORT"
        echo "    vars: {learner: nodocker, port_offset: 0}"
        eng_inventory_hosts
        echo "groups:"
        printf '  class: [%s]\n' "$(seq -s, -f 'h%g' 1 "$n" | sed 's/,/, /g')"
        echo "  broken: [hdown, hbadkey, hnodocker]"
        eng_inventory_groups
    } >"$STATE/inventory.yml"
    {
        echo "LABUP_TESTHOSTS_DIR=$STATE"
        echo "LABUP_TESTHOSTS_COUNT=$n"
        echo "LABUP_TESTHOSTS_BASE_PORT=$BASE_PORT"
        echo "LABUP_TESTHOSTS_DOWN_PORT=$DOWN_PORT"
        echo "LABUP_TESTHOSTS_BADKEY_PORT=$BADKEY_PORT"
        echo "LABUP_TESTHOSTS_NODOCKER_PORT=$NODOCKER_PORT"
        echo "LABUP_TESTHOSTS_GPU_HOST=$GPU_HOST"
        echo "LABUP_TESTHOSTS_KEY=$STATE/client/id_ed25519"
        echo "LABUP_TESTHOSTS_KNOWN_HOSTS=$STATE/client/known_hosts"
        echo "LABUP_TESTHOSTS_JUMP_ADDR=$JUMP_ADDR"
        echo "LABUP_TESTHOSTS_BEHIND_ADDR=$BEHIND_ADDR"
        echo "LABUP_TESTHOSTS_SSH_CONFIG=$STATE/client/ssh_config"
        echo "LABUP_TESTHOSTS_JUMP_INVENTORY=$STATE/inventory-jump.yml"
        eng_hosts_env
    } >"$STATE/hosts.env"
}

count_hosts() {  # how many hK were brought up last time
    if [ -f "$STATE/hosts.env" ]; then
        sed -n 's/^LABUP_TESTHOSTS_COUNT=//p' "$STATE/hosts.env"
    else
        echo 0
    fi
}

cmd_up() {
    local n="${1:-3}" k h started=()
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ] ||
        die "host count must be 1..$MAX_HOSTS, got '$n'"
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, dockerd)"
    need_tools
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    make_keys
    # `up N` means "at least N": hosts beyond N from an earlier, bigger run are kept (others
    # may be using them); only `down` stops hosts
    local old
    old="$(count_hosts)"
    [ "$old" -gt "$n" ] 2>/dev/null && [ "$old" -le "$MAX_HOSTS" ] && n="$old"
    for k in $(seq 1 "$n"); do
        h="h$k"
        if host_healthy "$h"; then
            write_labup_shim "$(host_dir "$h")/bin"
            ensure_sshd "$h" "$((BASE_PORT + k))" "$(host_dir "$h")/docker.sock" \
                "$(host_dir "$h")/bin"
            continue
        fi
        clean_host "$h"
        port_busy "$((BASE_PORT + k))" && die "port $((BASE_PORT + k)) is taken by another process"
        start_host "$h"
        started+=("$h")
    done
    # the broken hosts: real sshds without an engine / with a key known_hosts does not hold
    for h in hnodocker hbadkey; do
        local port=$NODOCKER_PORT
        [ "$h" = hbadkey ] && port=$BADKEY_PORT
        ensure_sshd "$h" "$port" "$(host_dir "$h")/no-engine.sock"
    done
    port_busy "$DOWN_PORT" && die "port $DOWN_PORT (the down host) must have nothing listening"
    ensure_jump_hosts
    write_jump_files
    # wait for the engines started now
    local deadline=$((SECONDS + 60))
    for h in "${started[@]}"; do
        until engine_up "$h"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                tail -n 20 "$(host_dir "$h")/dockerd.log" >&2 || true
                die "$h: dockerd did not answer within 60 s (log: $(host_dir "$h")/dockerd.log)"
            fi
            sleep 0.3
        done
    done
    write_client_files "$n"
    log "up: $n host(s) under $STATE (started: ${started[*]:-none}); inventory $STATE/inventory.yml"
}

cmd_status() {
    local n k h dir rc=0
    n="$(count_hosts)"
    if [ "$n" = 0 ]; then
        echo "no test hosts (run: bash scripts/testhosts.sh up)"
        return 1
    fi
    for k in $(seq 1 "$n"); do
        h="h$k"
        dir="$(host_dir "$h")"
        local sshd="down" engine="down"
        pid_alive "$dir/sshd.pid" sshd && sshd="up"
        engine_up "$h" && engine="$(DOCKER_HOST="unix://$dir/docker.sock" docker version --format '{{.Server.Version}}' 2>/dev/null)"
        printf '%-10s ssh 127.0.0.1:%-6s sshd %-4s engine %s\n' "$h" "$((BASE_PORT + k))" "$sshd" "$engine"
        [ "$sshd" = up ] && [ "$engine" != down ] || rc=1
    done
    for h in hbadkey hnodocker; do
        local port=$NODOCKER_PORT state="down"
        [ "$h" = hbadkey ] && port=$BADKEY_PORT
        pid_alive "$(host_dir "$h")/sshd.pid" sshd && state="up"
        printf '%-10s ssh 127.0.0.1:%-6s sshd %-4s (broken on purpose)\n' "$h" "$port" "$state"
    done
    printf '%-10s ssh 127.0.0.1:%-6s nothing listens (on purpose)\n' hdown "$DOWN_PORT"
    return "$rc"
}

cmd_down() {
    local k n
    n="$(count_hosts)"
    [ "$n" -gt 0 ] 2>/dev/null || n=0
    for h in hbadkey hnodocker; do kill_pidfile "$(host_dir "$h")/sshd.pid" sshd; done
    clean_jump_hosts
    eng_down_all
    # also sweep namespaces left by an earlier run whose state file is gone
    local leftovers
    leftovers="$(ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^labup-th-h\([0-9][0-9]*\)$/\1/p')"
    for k in $(seq 1 "$((n > MAX_HOSTS ? MAX_HOSTS : n))") $leftovers; do
        clean_host "h$k"
    done
    for k in $(seq 1 "$MAX_HOSTS"); do
        ip link show "lth${k}a" >/dev/null 2>&1 && ip link del "lth${k}a" 2>/dev/null || true
    done
    if [ -d "$STATE" ]; then
        umount_under "$STATE"
        rm -rf "$STATE"
    fi
    log "down: test hosts removed"
}

cmd_trim() {  # stop the hosts beyond N (a benchmark that brought up more puts it back)
    local n="$1" old k
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "host count must be at least 1, got '$n'"
    old="$(count_hosts)"
    [ "$old" -gt "$n" ] 2>/dev/null || return 0
    for k in $(seq $((n + 1)) "$old"); do clean_host "h$k"; rm -rf "$(host_dir "h$k")"; done
    write_client_files "$n"
    log "trim: hosts beyond h$n stopped"
}

# -- engine hosts (issue 16): the engines learners run, beside Debian 12's dockerd 20.10 -------
# Each is a host like hK: a network namespace labup-th-NAME (veth lteIa/lteIb, 10.219.I.0/30),
# an engine serving the Docker API on a socket under STATE/NAME, and a real sshd on 127.0.0.1
# whose sessions reach it (DOCKER_HOST). They are optional (`up --engines`, `engines up`):
# the first hdocker26 needs a debootstrap of Debian 13 (about 2 minutes; cached after that).
ENGINE_HOSTS=(hdocker26 hpodman)
ENGINE_LAYOUT=1  # bump when an engine host's setup changes (restarts only the engine hosts)
ENGINE_CACHE="${LABUP_TESTHOSTS_CACHE:-/var/cache/labup-testhosts}"
TRIXIE_INCLUDE="docker.io,docker-cli,docker-compose,iptables,ca-certificates,openssh-server,openssh-sftp-server"
PODMAN_PACKAGES=(podman netavark aardvark-dns catatonit conmon golang-github-containers-common runc)

eng_port() { case "$1" in hdocker26) echo 22281 ;; hpodman) echo 22282 ;; *) return 1 ;; esac; }
eng_index() { case "$1" in hdocker26) echo 1 ;; hpodman) echo 2 ;; *) return 1 ;; esac; }
eng_sock() {  # the engine's API socket (what DOCKER_HOST names in the host's sessions)
    case "$1" in
        hdocker26) echo "$(host_dir "$1")/docker.sock" ;;
        hpodman) echo "$(host_dir "$1")/podman.sock" ;;
    esac
}
eng_pidfile() {  # eng_pidfile NAME: the engine's pid file and its process name
    case "$1" in
        hdocker26) echo "$(host_dir "$1")/docker.pid dockerd" ;;
        hpodman) echo "$(host_dir "$1")/podman.pid podman" ;;
    esac
}
eng_present() { [ -f "$(host_dir "$1")/layout" ]; }  # set up (and not removed since)
eng_answers() { DOCKER_HOST="unix://$(eng_sock "$1")" timeout 5 docker version --format '{{.Server.Version}}' 2>/dev/null; }

eng_healthy() {
    local h="$1" dir
    dir="$(host_dir "$h")"
    # shellcheck disable=SC2046
    [ "$(cat "$dir/layout" 2>/dev/null)" = "$ENGINE_LAYOUT" ] &&
        pid_alive "$dir/sshd.pid" sshd && pid_alive $(eng_pidfile "$h") &&
        [ -n "$(eng_answers "$h")" ]
}

eng_apt() {  # eng_apt PKG...: install the missing ones, daemons kept from starting
    local missing=() pkg
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ] ||
            missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local made_policy=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null; } </dev/null || rc=$?
    [ "$made_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing ${missing[*]}"
}

eng_netns() {  # eng_netns NAME: its namespace, veth pair and /30, lo up
    local h="$1" i ns
    i="$(eng_index "$h")"
    ns="$(netns_of "$h")"
    ip netns add "$ns"
    ip link add "lte${i}a" type veth peer name "lte${i}b"
    ip link set "lte${i}b" netns "$ns"
    ip addr add "10.219.$i.1/30" dev "lte${i}a"
    ip link set "lte${i}a" up
    ip -n "$ns" addr add "10.219.$i.2/30" dev "lte${i}b"
    ip -n "$ns" link set "lte${i}b" up
    ip -n "$ns" link set lo up
}

eng_kill_matching() {  # eng_kill_matching TEST ARG: KILL every process for which TEST PID ARG holds
    local test="$1" arg="$2" p pids=()
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [ "$p" = "$$" ] && continue
        "$test" "$p" "$arg" 2>/dev/null && pids+=("$p")
    done
    [ "${#pids[@]}" -eq 0 ] && return 0
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.2
}
eng_in_mntns() { [ "$(readlink "/proc/$1/ns/mnt" 2>/dev/null)" = "$2" ]; }
eng_conmon_of() {  # a conmon (container or exec monitor) of the podman whose state is under $2
    grep -q '^conmon' "/proc/$1/comm" && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2/"
}

eng_clean() {  # stop everything of one engine host and remove its kernel objects (keeps data)
    local h="$1" i dir
    i="$(eng_index "$h")"
    dir="$(host_dir "$h")"
    kill_pidfile "$dir/sshd.pid" sshd
    case "$h" in
        hdocker26)
            # dockerd stops its containers on TERM; what still runs in its private mount
            # namespace after that (containerd, shims, containers) is killed by PID
            local mntns
            mntns="$(cat "$dir/mntns" 2>/dev/null || true)"
            kill_pidfile "$dir/docker.pid" dockerd
            # never the machine's own mount namespace
            [ -n "$mntns" ] && [ "$mntns" != "$(readlink /proc/self/ns/mnt)" ] &&
                eng_kill_matching eng_in_mntns "$mntns"
            rm -f "$dir/mntns"
            ;;
        hpodman)
            # podman's containers outlive its API service (conmon watches them): remove them
            # first, then the service, then the conmons that linger after an exec (they ignore
            # SIGTERM for up to 300 s), by PID
            if [ -x /usr/bin/podman ] && [ -f "$dir/containers.conf" ]; then
                eng_podman "$h" rm --all --force --time 0 >/dev/null 2>&1 || true
                eng_podman "$h" pod rm --all --force >/dev/null 2>&1 || true
            fi
            kill_pidfile "$dir/podman.pid" podman
            eng_kill_matching eng_conmon_of "$dir"
            ;;
    esac
    umount_under "$dir"
    if ip netns list 2>/dev/null | grep -qw "$(netns_of "$h")"; then
        ip netns del "$(netns_of "$h")" 2>/dev/null || true
    fi
    ip link show "lte${i}a" >/dev/null 2>&1 && ip link del "lte${i}a" 2>/dev/null || true
    rm -f "$dir/layout"
}

# -- hdocker26: Debian 13's docker.io in a cached trixie root ----------------------------------
# The whole host is the trixie root: its sshd and its dockerd run there (so the files labup
# copies over SFTP are where the engine's bind mounts look, and sessions get Debian 13's
# docker CLI), in a private mount namespace whose root is pivoted to it.
eng_trixie_root() {  # prints the cached root; debootstraps it the first time
    local root="$ENGINE_CACHE/trixie-docker26" mirror="${LABUP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    if [ "$(cat "$root/.labup-ready" 2>/dev/null)" = "$TRIXIE_INCLUDE" ]; then
        echo "$root"
        return 0
    fi
    eng_apt debootstrap
    mkdir -p "$ENGINE_CACHE"
    umount_under "$root.tmp"
    rm -rf "$root.tmp" "$root"
    log "hdocker26: debootstrap trixie with $TRIXIE_INCLUDE from $mirror (once: about 2 minutes)"
    if ! debootstrap --variant=minbase --include="$TRIXIE_INCLUDE" trixie "$root.tmp" "$mirror" \
            >"$ENGINE_CACHE/debootstrap.log" 2>&1 </dev/null; then
        umount_under "$root.tmp"
        tail -n 15 "$ENGINE_CACHE/debootstrap.log" >&2 || true
        die "hdocker26: debootstrap failed (log: $ENGINE_CACHE/debootstrap.log)"
    fi
    umount_under "$root.tmp"
    [ -x "$root.tmp/usr/sbin/dockerd" ] && [ -x "$root.tmp/usr/sbin/sshd" ] ||
        die "hdocker26: no dockerd or sshd in the trixie root"
    mkdir -p "$root.tmp/.labup-oldroot"
    echo "$TRIXIE_INCLUDE" >"$root.tmp/.labup-ready"
    mv "$root.tmp" "$root"
    echo "$root"
}

eng_start_docker26() {
    local h=hdocker26 dir root ns pid
    dir="$(host_dir "$h")"
    root="$(eng_trixie_root)" || exit 1
    ns="$(netns_of "$h")"
    mkdir -p "$dir/data"
    eng_netns "$h"
    write_sshd "$h" "$(eng_port "$h")" "$dir/docker.sock" || true
    # A private mount namespace, pivoted to the trixie root: proc, the host's /sys and /dev,
    # tmpfs /run and /tmp, and at their own paths this host's folder (sockets, pid files, keys,
    # data root) and the classroom's client keys. sshd listens in the machine's namespace on
    # 127.0.0.1, dockerd runs in the host's network namespace. When the last process of the
    # mount namespace exits, every mount goes with it.
    cat >"$dir/launch.sh" <<'LAUNCH'
set -eu
root="$1" dir="$2" client="$3" netns="$4"
exec 9<"$netns"
mount --make-rprivate /
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mkdir -p "$root$dir" "$root$client" "$root/run/sshd"
mount --bind "$dir" "$root$dir"
mount --bind -o ro "$client" "$root$client"
cd "$root"
pivot_root . .labup-oldroot
cd /
umount -l /.labup-oldroot
/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
exec nsenter --net=/proc/self/fd/9 /usr/sbin/dockerd -H "unix://$dir/docker.sock" \
    --pidfile "$dir/docker.pid" --data-root "$dir/data" --exec-root /run/docker \
    --storage-driver overlay2 --log-level warn
LAUNCH
    rm -f "$dir/docker.sock" "$dir/docker.pid"
    setsid unshare --mount sh "$dir/launch.sh" "$root" "$dir" "$STATE/client" \
        "/var/run/netns/$ns" >"$dir/dockerd.log" 2>&1 </dev/null &
    pid=$!  # unshare, sh and nsenter each exec the next: this becomes dockerd
    # remember its mount namespace (the teardown kills what runs there), once it has its own
    local mine theirs="" i
    mine="$(readlink /proc/self/ns/mnt)"
    for i in $(seq 1 50); do
        theirs="$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)"
        [ -n "$theirs" ] && [ "$theirs" != "$mine" ] && break
        sleep 0.1
    done
    [ -n "$theirs" ] && [ "$theirs" != "$mine" ] && echo "$theirs" >"$dir/mntns"
}

# -- hpodman: Debian 12's podman 4.3, its Docker-compatible API service -------------------------
eng_podman() {  # eng_podman NAME ARGS...: the podman CLI on that host's storage and config
    local dir
    dir="$(host_dir "$1")"
    shift
    CONTAINERS_CONF="$dir/containers.conf" nsenter --net="/var/run/netns/$(netns_of hpodman)" \
        podman --root "$dir/root" --runroot "$dir/run" --storage-driver overlay "$@"
}

eng_start_podman() {
    local h=hpodman dir ns
    dir="$(host_dir "$h")"
    ns="$(netns_of "$h")"
    eng_apt "${PODMAN_PACKAGES[@]}"
    mkdir -p "$dir/root" "$dir/run" "$dir/tmp" "$dir/networks"
    # Rootful podman raises nofile/nproc by default, which needs CAP_SYS_RESOURCE here: set
    # them; crun refuses this machine's hybrid cgroups: runc; no systemd: cgroupfs, file events.
    cat >"$dir/containers.conf" <<CONF
# labup test host $h (written by scripts/testhosts.sh)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[network]
network_backend = "netavark"
network_config_dir = "$dir/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$dir/tmp"
CONF
    eng_netns "$h"
    rm -f "$dir/podman.sock"
    CONTAINERS_CONF="$dir/containers.conf" setsid nsenter --net="/var/run/netns/$ns" \
        podman --root "$dir/root" --runroot "$dir/run" --storage-driver overlay \
        system service --time=0 "unix://$dir/podman.sock" >"$dir/service.log" 2>&1 </dev/null &
    echo $! >"$dir/podman.pid"  # nsenter execs podman: this is the service
}

# -- the engine hosts as a whole -----------------------------------------------------------------
eng_up() {  # bring every engine host up; a healthy one is kept
    local h started=()
    for h in "${ENGINE_HOSTS[@]}"; do
        if eng_healthy "$h"; then
            ensure_sshd "$h" "$(eng_port "$h")" "$(eng_sock "$h")"
            continue
        fi
        eng_clean "$h"
        port_busy "$(eng_port "$h")" && die "port $(eng_port "$h") is taken by another process"
        mkdir -p "$(host_dir "$h")"
        case "$h" in
            hdocker26) eng_start_docker26 ;;  # its sshd runs in its own root
            hpodman) eng_start_podman; ensure_sshd "$h" "$(eng_port "$h")" "$(eng_sock "$h")" ;;
        esac
        echo "$ENGINE_LAYOUT" >"$(host_dir "$h")/layout"
        started+=("$h")
    done
    local deadline=$((SECONDS + 90))
    for h in "${started[@]}"; do
        until [ -n "$(eng_answers "$h")" ]; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                tail -n 20 "$(host_dir "$h")"/{dockerd,service}.log >&2 2>/dev/null || true
                die "$h: the engine did not answer within 90 s (logs in $(host_dir "$h"))"
            fi
            sleep 0.3
        done
    done
    log "engines: ${ENGINE_HOSTS[*]} up (started: ${started[*]:-none})"
}

eng_down_all() {  # stop and remove the engine hosts (their data too); the trixie root stays cached
    local h
    for h in "${ENGINE_HOSTS[@]}"; do
        [ -d "$(host_dir "$h")" ] || ip netns list 2>/dev/null | grep -qw "$(netns_of "$h")" ||
            continue
        eng_clean "$h"
        umount_under "$(host_dir "$h")"
        rm -rf "$(host_dir "$h")"
    done
}

eng_status_lines() {  # one line per engine host that is set up; never changes the exit code
    local h state
    for h in "${ENGINE_HOSTS[@]}"; do
        eng_present "$h" || continue
        local sshd=down
        pid_alive "$(host_dir "$h")/sshd.pid" sshd && sshd=up
        state="$(eng_answers "$h")"
        printf '%-10s ssh 127.0.0.1:%-6s sshd %-4s engine %s\n' "$h" "$(eng_port "$h")" "$sshd" \
            "${state:-down}"
    done
}

eng_known_hosts() {
    local h
    for h in "${ENGINE_HOSTS[@]}"; do
        eng_present "$h" && [ -f "$(host_dir "$h")/ssh_host_ed25519_key.pub" ] &&
            known_hosts_line "$(eng_port "$h")" "$(host_dir "$h")/ssh_host_ed25519_key.pub"
    done
    return 0
}

eng_inventory_hosts() {
    local h
    for h in "${ENGINE_HOSTS[@]}"; do
        eng_present "$h" || continue
        echo "  $h:"
        echo "    port: $(eng_port "$h")"
        echo "    vars: {learner: $h, port_offset: $((200 + 10 * $(eng_index "$h"))), labup_dir: $(host_dir "$h")/labup, labup_state_dir: $(host_dir "$h")/state}"
    done
}

eng_up_list() {
    local h up=()
    for h in "${ENGINE_HOSTS[@]}"; do eng_present "$h" && up+=("$h"); done
    echo "${up[*]}"
}

eng_inventory_groups() {
    local up
    up="$(eng_up_list)"
    [ -n "$up" ] && printf '  engines: [%s]\n' "${up// /, }"
    return 0
}

eng_hosts_env() {
    echo "LABUP_TESTHOSTS_ENGINES=$(eng_up_list)"
    local h
    for h in "${ENGINE_HOSTS[@]}"; do
        echo "LABUP_TESTHOSTS_$(echo "$h" | tr '[:lower:]' '[:upper:]')_PORT=$(eng_port "$h")"
    done
}

eng_cmd_up() {  # `up [N] [--engines]`
    local n=3 engines=0 arg
    for arg in "$@"; do
        case "$arg" in
            --engines) engines=1 ;;
            *) n="$arg" ;;
        esac
    done
    cmd_up "$n"
    if [ "$engines" -eq 1 ]; then
        eng_up
        write_client_files "$(count_hosts)"
    fi
}

eng_patch_client_files() {
    # `engines up|down` change only the engine hosts' lines of the client files: another
    # version of this script may have written the rest (more hosts), and its entries stay
    local kh="$STATE/client/known_hosts" inv="$STATE/inventory.yml" env="$STATE/hosts.env"
    if [ -f "$kh" ]; then
        { grep -v -e '^\[127\.0\.0\.1\]:22281 ' -e '^\[127\.0\.0\.1\]:22282 ' "$kh" || true
          eng_known_hosts; } >"$kh.eng"
        mv "$kh.eng" "$kh"
    fi
    if [ -f "$env" ]; then
        { grep -v -e '^LABUP_TESTHOSTS_ENGINES=' -e '^LABUP_TESTHOSTS_HDOCKER26_PORT=' \
              -e '^LABUP_TESTHOSTS_HPODMAN_PORT=' "$env" || true
          eng_hosts_env; } >"$env.eng"
        mv "$env.eng" "$env"
    fi
    if [ -f "$inv" ]; then
        awk -v hosts="$(eng_inventory_hosts)" -v groups="$(eng_inventory_groups)" '
            skip > 0 { skip--; next }
            /^  (hdocker26|hpodman):$/ { skip = 2; next }
            /^  engines: \[/ { next }
            /^groups:$/ { if (hosts != "") print hosts; print; next }
            { print }
            END { if (groups != "") print groups }' "$inv" >"$inv.eng"
        mv "$inv.eng" "$inv"
    fi
}

eng_cmd() {  # `engines up|status|down`
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, engines)"
    case "$1" in
        up)
            # the classroom's client key and files come with `up`; healthy hosts are kept
            if [ "$(count_hosts)" -ge 1 ] 2>/dev/null && [ -f "$STATE/client/id_ed25519" ]; then
                need_tools
                eng_up
                eng_patch_client_files
            else
                eng_cmd_up 3 --engines
            fi
            ;;
        status)
            local h rc=0
            eng_status_lines
            for h in "${ENGINE_HOSTS[@]}"; do eng_healthy "$h" || rc=1; done
            return "$rc"
            ;;
        down)
            eng_down_all
            eng_patch_client_files
            log "engines: ${ENGINE_HOSTS[*]} removed"
            ;;
        *) die "usage: $0 engines up|status|down" ;;
    esac
}

# One change at a time: up, down and trim run under a lock on the state folder (two test runs,
# or a test run and a benchmark, may both ask for hosts). flock holds it, not this shell: the
# daemons started here must not inherit the lock (-o), or it would never be released.
case "${1:-}" in
    up|down|trim|engines)
        if [ "${LABUP_TESTHOSTS_LOCKED:-}" != 1 ]; then
            mkdir -p "$STATE"
            exec flock -w 300 -o "$STATE/.lock" env LABUP_TESTHOSTS_LOCKED=1 bash "$0" "$@"
        fi
        ;;
esac

case "${1:-}" in
    up) shift; eng_cmd_up "$@" ;;
    down) cmd_down ;;
    status) rc=0; cmd_status || rc=$?; eng_status_lines; exit "$rc" ;;
    trim) cmd_trim "${2:-3}" ;;
    engines) eng_cmd "${2:-}" ;;
    *) echo "usage: $0 up [N] [--engines] | status | down | trim N | engines up|status|down" >&2
       exit 2 ;;
esac
