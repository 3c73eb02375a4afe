"""Rules on what a lab may reach on the host: bind mounts and capabilities.

- A bind stays inside the lab folder (symlinks resolved at load), unless ``--allow-unsafe``.
- A read-write bind holds no other bind's source and no build context (any container's,
  its own container's too): a process in the container could otherwise swap that path for
  a symlink to ``/`` before the other bind is made (Docker follows symlinks in a bind
  source, on every start), and the host path would be mounted. With this rule no container
  of the lab can change the path to any bind source; :mod:`provisioner.lifecycle.bind_guard`
  re-resolves every source right before each container is created, for writers outside the
  lab (see docs/security.md).
- ``cap_add`` of a capability in :data:`DANGEROUS_CAPABILITIES` is gated like ``privileged``.
"""

from __future__ import annotations

from pathlib import Path

from labspec.document import JsonPath
from labspec.model import Container
from labspec.semantic_base import UNSAFE_HINT, RuleBase, suggest

# Capabilities that give a container the host (its kernel, its files, its other processes),
# each with what it allows; ``cap_add`` of one needs --allow-unsafe, like ``privileged``.
DANGEROUS_CAPABILITIES: dict[str, str] = {
    "ALL": "every capability: as good as privileged",
    "SYS_ADMIN": "mount, namespaces and most of what root may do on the host",
    "SYS_MODULE": "loading modules into the host's kernel",
    "SYS_RAWIO": "raw I/O ports and memory (/dev/mem, /dev/kmem)",
    "SYS_PTRACE": "tracing and injecting code into processes (the default seccomp filter "
    "lets ptrace through with it)",
    "SYS_BOOT": "kexec_load: booting the host into another kernel",
    "SYS_TIME": "setting the host's clock (time is not namespaced)",
    "DAC_READ_SEARCH": "open_by_handle_at: reading any file of the host (the 'shocker' escape)",
    "MAC_ADMIN": "changing the host's AppArmor or SELinux policy",
    "MAC_OVERRIDE": "bypassing the host's AppArmor or SELinux policy",
    "BPF": "loading BPF programs into the host's kernel",
    "PERFMON": "kernel performance monitoring (reads kernel addresses and events)",
    "SYSLOG": "reading and clearing the host kernel's log",
    "AUDIT_CONTROL": "changing the host's audit rules",
}


def capability_name(cap: str) -> str:
    """As Docker reads it: case ignored, an optional ``CAP_`` prefix."""
    name = cap.strip().upper()
    return name.removeprefix("CAP_")


class HostRules(RuleBase):
    def capabilities(self, c: Container, path: JsonPath) -> None:
        if self.allow_unsafe:
            return
        for i, cap in enumerate(c.cap_add):
            why = DANGEROUS_CAPABILITIES.get(capability_name(cap))
            if why is not None:
                self.add(
                    (*path, "cap_add", i),
                    f"capability {cap} gives the container the host ({why})",
                    UNSAFE_HINT,
                )

    def mounts(self, c: Container, path: JsonPath) -> None:
        targets: dict[str, int] = {}
        for i, mount in enumerate(c.mounts):
            where: JsonPath = (*path, "mounts", i)
            if mount.target in targets:
                self.add(
                    (*where, "target"),
                    f"{mount.target} is already a mount target (mounts[{targets[mount.target]}])",
                )
            targets.setdefault(mount.target, i)
            if mount.size is not None and mount.type != "tmpfs":
                self.add((*where, "size"), "size only applies to tmpfs mounts")
            if mount.type == "volume" and mount.source not in self.volume_names:
                self.add(
                    (*where, "source"),
                    f"unknown volume {mount.source!r}",
                    suggest(str(mount.source), self.volume_names, "volumes"),
                )
            if mount.type == "bind" and mount.source is not None:
                self.bind((*where, "source"), mount.source)

    def bind(self, path: JsonPath, source: str) -> None:
        raw = str(self.raw(path) or "")
        if raw.startswith(("/", "~")):
            if not self.allow_unsafe:
                self.add(
                    path,
                    f"bind of {source}: an absolute path reaches outside the lab folder",
                    "use a path relative to the lab folder, or " + UNSAFE_HINT,
                )
            return
        if not self.inside_folder(Path(source)):
            if not self.allow_unsafe:
                self.add(
                    path,
                    f"bind of {raw} leaves the lab folder ({source})",
                    "binds stay inside the lab folder; " + UNSAFE_HINT,
                )
            return
        if not Path(source).exists():
            self.add(
                path,
                f"bind source {raw} does not exist in the lab folder",
                "create it, or fix the path (relative to the lab folder)",
            )

    def rw_binds(self) -> None:
        """No read-write bind holds another bind's source or a build context."""
        if self.allow_unsafe:
            return
        binds: list[tuple[JsonPath, Path, bool]] = []
        for c in self.lab.containers:
            for i, m in enumerate(c.mounts):
                if m.type == "bind" and m.source is not None:
                    where: JsonPath = ("containers", c.name, "mounts", i)
                    binds.append((where, Path(m.source), m.read_only))
        needed = [(f"{w[1]}.mounts[{w[3]}]", src) for w, src, _ in binds]
        needed += [
            (f"the build context of image {image.name}", image.build.context)
            for image in self.lab.images
            if image.build is not None
        ]
        for where, src, read_only in binds:
            if read_only or not self.inside_folder(src):
                continue
            inside = [(what, other) for what, other in needed
                      if other != src and other.is_relative_to(src)]
            if inside:
                what, other = inside[0]
                shown = self.raw((*where, "source"))
                self.add(
                    (*where, "read_only"),
                    f"bind of {shown} is read-write and holds {what} "
                    f"({other.relative_to(self.lab.folder)}): a process in "
                    f"{where[1]} could swap that path for a link out of the lab folder "
                    "before it is mounted",
                    "make this bind `read_only: true`, or bind a folder that holds no other "
                    "bind's source or build context",
                    key=not isinstance(self.raw((*where, "read_only")), bool),
                )
