#!/usr/bin/env bash
# A classroom of real "remote" Docker hosts on this one machine, for labup's SSH and fleet tests.
#
#   bash scripts/testhosts.sh up [N]     # at least N hosts h1..hN (default 3), + the broken ones
#   bash scripts/testhosts.sh status     # what runs, one line per host
#   bash scripts/testhosts.sh down       # kill by PID, remove namespaces, veths, mounts, state
#   bash scripts/testhosts.sh trim N     # stop the hosts beyond hN (after a bigger benchmark)
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
#
# Everything lives under STATE (LABUP_TESTHOSTS_DIR, default /tmp/labup-testhosts): the client
# key pair (client/id_ed25519), client/known_hosts, inventory.yml (all hosts), inventory-good.yml
# (h1..hN only) and hosts.env. `up` is safe to run again over leftovers of an earlier run (kernel
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

pid_alive() {  # pid_alive PIDFILE NAME: the pid in PIDFILE runs a process whose comm is NAME
    local file="$1" name="$2" pid
    [ -s "$file" ] || return 1
    pid="$(cat "$file" 2>/dev/null)" || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    grep -q "^$name" "/proc/$pid/comm" 2>/dev/null
}

kill_pidfile() {  # kill_pidfile PIDFILE NAME: TERM, wait, then KILL; only that PID
    local file="$1" name="$2" pid i
    pid_alive "$file" "$name" || { rm -f "$file"; return 0; }
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        [ -d "/proc/$pid" ] || break
        sleep 0.2
    done
    [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
}

umount_under() {  # lazily unmount everything mounted below a directory (deepest first)
    local dir="$1"
    awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

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
        echo "    vars: {learner: zoe, port_offset: 90, labup_dir: $(host_dir hbehind)/labup}"
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
            echo "    vars: {learner: ${learners[$((k - 1))]}, port_offset: $((k * 10)), labup_dir: $STATE/h$k/labup}"
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
        echo "groups:"
        printf '  class: [%s]\n' "$(seq -s, -f 'h%g' 1 "$n" | sed 's/,/, /g')"
        echo "  broken: [hdown, hbadkey, hnodocker]"
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

# One change at a time: up, down and trim run under a lock on the state folder (two test runs,
# or a test run and a benchmark, may both ask for hosts). flock holds it, not this shell: the
# daemons started here must not inherit the lock (-o), or it would never be released.
case "${1:-}" in
    up|down|trim)
        if [ "${LABUP_TESTHOSTS_LOCKED:-}" != 1 ]; then
            mkdir -p "$STATE"
            exec flock -w 300 -o "$STATE/.lock" env LABUP_TESTHOSTS_LOCKED=1 bash "$0" "$@"
        fi
        ;;
esac

case "${1:-}" in
    up) cmd_up "${2:-3}" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    trim) cmd_trim "${2:-3}" ;;
    *) echo "usage: $0 up [N] | status | down | trim N" >&2; exit 2 ;;
esac
