# Process and mount helpers shared by scripts/testhosts.sh and scripts/testswarm.sh (sourced).

pid_alive() {  # pid_alive PIDFILE NAME: the pid in PIDFILE runs a process whose comm is NAME
    local file="$1" name="$2" pid
    [ -s "$file" ] || return 1
    pid="$(cat "$file" 2>/dev/null)" || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    grep -q "^$name" "/proc/$pid/comm" 2>/dev/null
}

kill_pidfile() {  # kill_pidfile PIDFILE NAME [SECONDS]: TERM, wait (10 s), then KILL; only that PID
    local file="$1" name="$2" wait="${3:-10}" pid i
    pid_alive "$file" "$name" || { rm -f "$file"; return 0; }
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((wait * 5))); do
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
