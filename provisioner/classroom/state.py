"""What labup keeps of a class on this machine: its keys, the pinned host keys, the inventory.

Everything else (which sandboxes exist, where they run) is on the cluster. The folder is
``$LABUP_CLASS_DIR/NAME`` (default ``~/.local/share/labup/classes/NAME``), mode 0700:

- ``id_ed25519`` (+ ``.pub``): the class key labup logs in to every sandbox with;
- ``learners/NAME`` (+ ``.pub``): each learner's own key, authorized on their sandbox only;
- ``hostkeys/NAME`` (+ ``.pub``): each sandbox's SSH host key, made here so that the
  ``known_hosts`` file written beside them pins it before the first connection;
- ``class.json``: the swarm, its cluster id and each learner's door (address, port);
- ``inventory.yml``: the inventory ``class up`` wrote last (unless ``-o`` named another).

Private keys are created with mode 0600 and never printed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from labspec.errors import UserInputError


def classes_dir() -> Path:
    override = os.environ.get("LABUP_CLASS_DIR")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "labup" / "classes"


def new_key(comment: str) -> tuple[bytes, str]:
    """A fresh ed25519 key pair: (OpenSSH private key bytes, ``ssh-ed25519 AAAA... comment``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {comment}"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(partial, path)


def _write_text(path: Path, text: str, mode: int = 0o644) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.chmod(mode)
    os.replace(partial, path)


class Door(NamedTuple):
    """Where a learner's sandbox answers SSH: the node's address and the published port."""

    learner: str
    address: str
    port: int
    node: str = ""


@dataclass(frozen=True)
class ClassState:
    """The class's folder on this machine (see the module docstring)."""

    name: str
    root: Path

    @classmethod
    def of(cls, name: str) -> ClassState:
        return cls(name, classes_dir() / name)

    @property
    def key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def record_path(self) -> Path:
        return self.root / "class.json"

    @property
    def default_inventory(self) -> Path:
        return self.root / "inventory.yml"

    def learner_key(self, learner: str) -> Path:
        return self.root / "learners" / learner

    def exists(self) -> bool:
        return self.record_path.is_file()

    def _key_pair(self, path: Path, comment: str) -> tuple[bytes, str]:
        pub = path.with_name(path.name + ".pub")
        if not (path.is_file() and pub.is_file()):
            private, public = new_key(comment)
            _write_private(path, private)
            _write_text(pub, public + "\n")
        return path.read_bytes(), pub.read_text(encoding="utf-8").strip()

    def prepare(self) -> str:
        """Make the folder (0700) and the class key; the class key's public line."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        return self._key_pair(self.key, f"labup-class-{self.name}")[1]

    def learner_public_key(self, learner: str) -> str:
        return self._key_pair(self.learner_key(learner), f"labup-{self.name}-{learner}")[1]

    def host_key(self, learner: str) -> tuple[bytes, str]:
        """The sandbox's host key pair (private bytes go into a Swarm secret, never printed)."""
        return self._key_pair(self.root / "hostkeys" / learner, f"labup-{self.name}-{learner}")

    def write_known_hosts(self, doors: Iterable[tuple[str, int]], addresses: Iterable[str],
                          learner_ports: Mapping[str, int]) -> None:
        """Pin each sandbox's host key at its port on every node address (a door may be placed
        on any node), plus where it answers now (``doors``: address, port)."""
        every = sorted(set(addresses) | {a for a, _ in doors})
        lines = [f"# labup class {self.name}: sandbox host keys (written by labup class up)"]
        for learner, port in sorted(learner_ports.items()):
            public = self.host_key(learner)[1].split()
            names = ",".join(f"[{a}]:{port}" if port != 22 else a for a in every)
            lines.append(f"{names} {public[0]} {public[1]} {learner}")
        _write_text(self.known_hosts, "\n".join(lines) + "\n")

    # -- the record ---------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        if not self.record_path.is_file():
            raise UserInputError(
                f"no class {self.name!r} on this machine ({self.root})",
                hint="`labup class up NAME --swarm URL` makes one",
            )
        data: dict[str, Any] = json.loads(self.record_path.read_text(encoding="utf-8"))
        return data

    def save(self, *, swarm: str, cluster: str, doors: Iterable[Door], inventory: Path) -> None:
        record = {
            "name": self.name,
            "swarm": swarm,
            "cluster": cluster,
            "inventory": str(inventory),
            "updated": int(time.time()),
            "learners": {d.learner: {"address": d.address, "port": d.port, "node": d.node}
                         for d in doors},
        }
        _write_text(self.record_path, json.dumps(record, indent=2) + "\n", 0o600)

    def check_cluster(self, cluster: str) -> None:
        """A class name on this machine belongs to one cluster."""
        if not self.exists():
            return
        known = str(self.load().get("cluster", ""))
        if known and cluster and known != cluster:
            raise UserInputError(
                f"class {self.name!r} on this machine belongs to another swarm "
                f"(cluster {known[:12]})",
                hint=f"choose another class name, or forget it: labup class down {self.name} "
                "--forget on its own swarm",
            )

    def forget(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def inventory_text(
    state: ClassState,
    *,
    swarm: str,
    doors: Iterable[Door],
    learner_vars: Mapping[str, Mapping[str, Any]],
    gpus: Mapping[str, int],
) -> str:
    """The class as an inventory (the format ``-i`` reads): one host per learner, reached at its
    door, with the class key and the pinned known_hosts; ``learner`` and roster vars as vars."""
    door_list = list(doors)
    lines = [
        f"# labup class {state.name} on {swarm}: one sandbox per learner",
        "# (written by `labup class up`; run it again to refresh; `labup class status` shows it)",
        "apiVersion: labup/v1",
        "kind: Inventory",
        f"parallelism: {min(max(len(door_list), 1), 16)}",
        "defaults:",
        "  user: root",
        f"  key: {_scalar(str(state.key))}",
        f"  known_hosts: {_scalar(str(state.known_hosts))}",
        f"  labels: {{class: {_scalar(state.name)}}}",
        "hosts:",
    ]
    for door in door_list:
        host_vars = {"learner": door.learner, **dict(learner_vars.get(door.learner, {}))}
        host_vars["learner"] = door.learner
        lines.append(f"  {door.learner}:")
        lines.append(f"    address: {_scalar(door.address)}")
        lines.append(f"    port: {door.port}")
        lines.append(f"    vars: {_scalar(host_vars)}")
        if gpus.get(door.learner):
            lines.append(f"    gpus: {gpus[door.learner]}")
        if door.node:
            lines.append(f"    labels: {{node: {_scalar(door.node)}}}")
    return "\n".join(lines) + "\n"


def write_inventory(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, text)
