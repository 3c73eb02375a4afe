#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (Debian 12, root, no systemd).
#
#   bash scripts/engine.sh
#
# - Install the Debian packages that are missing (only those; `apt-get update` once first):
#   busybox-static, debootstrap, openssh-server, iproute2, iptables, docker-compose,
#   chromium and chromium-driver (the dashboard's browser tests), tmux (the learner's
#   `check --watch` test runs in a real terminal), and docker.io when no engine answers.
# - If `docker info` already answers, leave the engine alone (never restart it).
# - Otherwise clear leftovers of an earlier run
#   (a stale pid file or socket whose daemon is gone), start dockerd in the background and
#   wait until `docker info` answers.
#
# Safe to run twice, and over leftovers. Environment:
#   LABUP_DOCKERD_LOG      dockerd's log file      (default /var/log/labup-dockerd.log)
#   LABUP_ENGINE_TIMEOUT   seconds to wait for it  (default 90)
set -euo pipefail

LOG=${LABUP_DOCKERD_LOG:-/var/log/labup-dockerd.log}
TIMEOUT=${LABUP_ENGINE_TIMEOUT:-90}
PIDFILE=${LABUP_DOCKER_PIDFILE:-/var/run/docker.pid}
SOCKET=${LABUP_DOCKER_SOCKET:-/var/run/docker.sock}
# Tools the tests and labs need besides the engine (test images, test hosts, the Compose lab,
# a terminal for `check --watch`).
TOOLS=(busybox-static debootstrap openssh-server iproute2 iptables docker-compose tmux)
# A real browser for the dashboard's tests (headless, driven by selenium; nothing downloaded).
TOOLS+=(chromium chromium-driver)

say() { printf 'engine.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

engine_answers() {
    command -v docker >/dev/null 2>&1 || return 1
    timeout 15 docker info >/dev/null 2>&1
}

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "packages already installed"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "must run as root to install: ${missing[*]}"
    say "installing: ${missing[*]}"
    # Keep the packages' maintainer scripts from starting daemons (dockerd, sshd) on their own:
    # this script starts dockerd itself, and the test hosts start their own sshd.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    } </dev/null || rc=$?
    if [ "$made_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing: ${missing[*]}"
}

# PID of a running dockerd, or nothing.
running_dockerd() {
    local pid
    if [ -s "$PIDFILE" ]; then
        pid=$(cat "$PIDFILE" 2>/dev/null || true)
        if [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "dockerd" ]; then
            echo "$pid"
            return 0
        fi
    fi
    # A dockerd without our pid file (started by someone else): don't start a second one.
    # Only a daemon on the default socket counts; test hosts run their own with --pidfile.
    pgrep -x dockerd 2>/dev/null | while read -r pid; do
        if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '--pidfile'; then
            echo "$pid"
            break
        fi
    done
}

clear_leftovers() {
    if [ -e "$PIDFILE" ]; then
        say "removing stale $PIDFILE (its daemon is gone)"
        rm -f "$PIDFILE"
    fi
    if [ -S "$SOCKET" ]; then
        say "removing stale socket $SOCKET"
        rm -f "$SOCKET"
    fi
    # dockerd uses a system containerd whenever this socket file exists: a socket left by a
    # containerd that is no longer running would make dockerd wait on it and fail.
    local sys_sock=/run/containerd/containerd.sock
    if [ -S "$sys_sock" ] && ! pgrep -x containerd >/dev/null 2>&1; then
        say "removing stale socket $sys_sock"
        rm -f "$sys_sock"
    fi
    # A containerd that a previous dockerd started and left running is reused by the new
    # dockerd (through this pid file): keep it. A pid file whose process is gone, or is now
    # some other process, would be trusted by dockerd: remove it.
    local ctr_pidfile=/var/run/docker/containerd/containerd.pid ctr_pid
    if [ -s "$ctr_pidfile" ]; then
        ctr_pid=$(cat "$ctr_pidfile" 2>/dev/null || true)
        if [ -z "$ctr_pid" ] || [ "$(cat "/proc/$ctr_pid/comm" 2>/dev/null || true)" != "containerd" ]; then
            say "removing stale $ctr_pidfile"
            rm -f "$ctr_pidfile"
        fi
    fi
}

start_dockerd() {
    command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed (docker.io failed?)"
    mkdir -p "$(dirname "$LOG")"
    say "starting dockerd (log: $LOG)"
    printf '\n==== %s engine.sh starts dockerd ====\n' "$(date -u +%FT%TZ)" >>"$LOG"
    setsid dockerd >>"$LOG" 2>&1 </dev/null &
    STARTED_PID=$!
}

STARTED_PID=""

wait_for_engine() {
    local deadline=$((SECONDS + TIMEOUT)) why="no answer from dockerd after ${TIMEOUT}s"
    while [ "$SECONDS" -lt "$deadline" ]; do
        if engine_answers; then
            say "engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
            return 0
        fi
        if [ -n "$STARTED_PID" ] && ! kill -0 "$STARTED_PID" 2>/dev/null; then
            why="dockerd exited during startup"
            break
        fi
        sleep 1
    done
    say "error: $why; last lines of $LOG:"
    tail -n 25 "$LOG" >&2 2>/dev/null || true
    exit 1
}

main() {
    if engine_answers; then
        # Never touch a running engine; only add the tools that are missing.
        install_missing "${TOOLS[@]}"
        say "engine already answers: leaving it alone"
        return 0
    fi
    install_missing docker.io "${TOOLS[@]}"
    # docker.io brings a client; some machines have another one earlier on PATH. Either works.
    command -v docker >/dev/null 2>&1 || die "no docker client on PATH after installing docker.io"
    if engine_answers; then
        say "engine answers"
        return 0
    fi
    local pid
    pid=$(running_dockerd || true)
    if [ -n "$pid" ]; then
        say "dockerd (pid $pid) is running but not answering yet: waiting for it"
    else
        clear_leftovers
        start_dockerd
    fi
    wait_for_engine
}

main "$@"
