"""What runs inside a class's containers: the sandbox's start script, the door's forwarders and
the class registry's configuration. They travel as Swarm configs (the sandbox image itself is a
plain Debian root built offline), so a change here needs no image rebuild.

Nothing from a learner or a roster is ever put into these texts: the few values they need
(the door's name, the MTU) come from the environment labup sets on the service.
"""

from __future__ import annotations

# The sandbox: PID 1 is tini; this script starts sshd, then becomes dockerd.
SANDBOX_SCRIPT = r"""#!/bin/sh
# A labup class sandbox (written by labup, delivered as a Swarm config): its own Docker engine
# and an sshd for the learner and for labup. PID 1 is tini; this script starts sshd and then
# becomes the engine, so the sandbox stops when its engine stops.
set -eu
log() { echo "labup-sandbox: $*" >&2; }

# A service container is not privileged: its cgroup filesystems are read-only bind mounts of its
# own cgroup. The engine inside needs them writable; its containers' cgroups then nest under the
# sandbox's, so the sandbox's limits bound them all.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then  # cgroup v2 (as Docker's own dind does)
    mount -o remount,rw /sys/fs/cgroup 2>/dev/null || log "cannot make /sys/fs/cgroup writable"
    mkdir -p /sys/fs/cgroup/init
    xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
    sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
        >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || :
else
    for dir in /sys/fs/cgroup/*/; do
        mount -o remount,bind,rw "$dir" 2>/dev/null || log "cannot make $dir writable"
    done
fi

# The sandbox keeps Docker's default seccomp profile (a Swarm service cannot drop it), which
# refuses keyctl(2) and pivot_root(2): its engine's containers start without a session keyring
# of their own and are jailed with chroot rather than pivot_root.
mkdir -p /usr/local/lib/labup /etc/docker
cat >/usr/local/lib/labup/runc <<'RUNC'
#!/bin/sh
added=
for arg; do
    shift
    set -- "$@" "$arg"
    if [ -z "$added" ] && { [ "$arg" = create ] || [ "$arg" = run ]; }; then
        set -- "$@" --no-new-keyring --no-pivot
        added=1
    fi
done
exec runc "$@"
RUNC
chmod 0755 /usr/local/lib/labup/runc

# Public image names (python:3.11-slim) are pulled through the door from the class registry.
mtu="$(cat /sys/class/net/eth0/mtu 2>/dev/null || echo 1450)"
cat >/etc/docker/daemon.json <<JSON
{
  "registry-mirrors": ["http://$LABUP_MIRROR"],
  "insecure-registries": ["$LABUP_MIRROR"],
  "mtu": $mtu,
  "storage-driver": "overlay2",
  "runtimes": {"labup-runc": {"path": "/usr/local/lib/labup/runc"}},
  "default-runtime": "labup-runc",
  "shutdown-timeout": 3,
  "log-level": "warn"
}
JSON

# sshd: the host key labup made for this sandbox (a Swarm secret), the keys of labup and of
# this sandbox's learner (a Swarm config), no passwords.
install -d -m 0700 /root/.ssh
install -m 0600 /run/labup/authorized_keys /root/.ssh/authorized_keys
install -m 0600 /run/secrets/labup-host-key /etc/ssh/ssh_host_ed25519_key
install -d -m 0755 /run/sshd
cat >/etc/ssh/labup_sshd_config <<'SSHD'
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile /root/.ssh/authorized_keys
UsePAM no
MaxSessions 20
MaxStartups 30:50:100
X11Forwarding no
PermitTunnel no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
SSHD
/usr/sbin/sshd -f /etc/ssh/labup_sshd_config -E /var/log/sshd.log

exec dockerd
"""

# The door: the sandbox's only ways in and out. Inbound SSH on the published port goes to the
# sandbox; the sandbox's pulls go to the class registry. Nothing else is forwarded (and the
# door's own forwarding is off: net.ipv4.ip_forward=0).
DOOR_SCRIPT = r"""socat TCP-LISTEN:22,fork,reuseaddr "TCP:$LABUP_SANDBOX:22" &
socat TCP-LISTEN:5000,fork,reuseaddr "TCP:$LABUP_REGISTRY:5000" &
wait
"""


def registry_config(*, read_only: bool, addr: str) -> bytes:
    """The configuration of Debian's ``docker-registry``: the cluster's read-only mirror, or
    the writable one labup runs on the manager's loopback while seeding."""
    mode = "true" if read_only else "false"
    return f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: {mode}
http:
  addr: {addr}
  headers:
    X-Content-Type-Options: [nosniff]
""".encode()


# The seed registry reads its configuration from the environment (a plain container on the
# manager's engine, so no Swarm config): the text is never part of the command line.
SEED_COMMAND = (
    "/bin/sh", "-c",
    'printf "%s" "$LABUP_REGISTRY_CONFIG" >/tmp/registry.yml && '
    "exec docker-registry serve /tmp/registry.yml",
)
