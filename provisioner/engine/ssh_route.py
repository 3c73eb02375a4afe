"""How to reach a host over SSH, as people configure it: ``~/.ssh/config`` and ProxyJump.

A host named by an inventory or ``--host ssh://NAME`` may be an alias of an ssh_config file
(the inventory's ``ssh_config``, else ``LABUP_SSH_CONFIG``, else ``~/.ssh/config``): its
``HostName``, ``Port``, ``User``, ``IdentityFile``, ``UserKnownHostsFile`` and ``ProxyJump`` apply
as OpenSSH applies them (what the user wrote in the URL or the inventory wins). A route is the
chain of hops: the jump hosts, first to last, then the host itself; every hop's host key is
verified against its known_hosts, and nothing is ever added to one.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

from labspec.errors import UserInputError
from provisioner.engine.ssh_keys import SshTarget
from provisioner.engine.ssh_lib import allow_match_exec, paramiko

MAX_HOPS = 8


@dataclass(frozen=True)
class Hop:
    """One SSH server on the way: where it is, how to log in, how to know it."""

    target: SshTarget
    name: str  # as the user named it (an alias, or the address)
    key: Path | None = None  # a key the user named: it must exist
    config_keys: tuple[Path, ...] = ()  # IdentityFile lines of the ssh_config
    known_hosts: tuple[Path, ...] = ()  # empty: ~/.ssh/known_hosts

    @property
    def label(self) -> str:
        return self.target.label if self.name == self.target.host else (
            f"{self.target.label} ({self.name})")


@dataclass(frozen=True)
class Route:
    hops: tuple[Hop, ...]  # the jumps, then the host

    @property
    def host(self) -> Hop:
        return self.hops[-1]


def config_file(explicit: Path | None) -> Path | None:
    """The ssh_config to read: the inventory's, else ``LABUP_SSH_CONFIG``, else ~/.ssh/config."""
    if explicit is not None:
        if not explicit.is_file():
            raise UserInputError(f"ssh_config {explicit} does not exist")
        return explicit
    named = os.environ.get("LABUP_SSH_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise UserInputError(f"LABUP_SSH_CONFIG={named}: no such file")
        return path
    default = Path("~/.ssh/config").expanduser()
    return default if default.is_file() else None


def _read(path: Path | None) -> paramiko.SSHConfig | None:
    if path is None:
        return None
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.SSHException, ValueError) as e:
        raise UserInputError(f"cannot read the ssh_config {path}: {e}") from e


def resolve_route(
    host: str,
    *,
    port: int | None = None,
    user: str | None = None,
    key: Path | None = None,
    known_hosts: Path | None = None,
    proxy_jump: str | None = None,
    ssh_config: Path | None = None,
) -> Route:
    """The hops to ``host`` (an address or an ssh_config alias)."""
    config = _read(config_file(ssh_config))
    hops = _chain(config, host, port=port, user=user, key=key, known_hosts=known_hosts,
                  jump_spec=proxy_jump, depth=0)
    return Route(tuple(hops))


def _chain(
    config: paramiko.SSHConfig | None,
    name: str,
    *,
    port: int | None,
    user: str | None,
    key: Path | None,
    known_hosts: Path | None,
    jump_spec: str | None,
    depth: int,
    fallback_key: Path | None = None,
) -> list[Hop]:
    """``name``'s hops, as OpenSSH builds them for ``-J a,b name``: ``a`` is reached as its own
    config says (its ProxyJump too), ``b`` through ``a``, ``name`` through ``b``."""
    if depth > MAX_HOPS:
        raise UserInputError(f"ProxyJump to {name} has more than {MAX_HOPS} hops (a loop?)")
    spec = jump_spec if jump_spec is not None else _lookup(config, name).get("proxyjump")
    jumps = _split(spec)
    hops: list[Hop] = []
    if jumps:
        jhost, jport, juser = _parse_jump(jumps[0])
        hops += _chain(config, jhost, port=jport, user=juser, key=None, known_hosts=known_hosts,
                       jump_spec=None, depth=depth + 1, fallback_key=key or fallback_key)
        for later in jumps[1:]:
            jhost, jport, juser = _parse_jump(later)
            hops.append(_hop(config, jhost, port=jport, user=juser, key=None,
                             known_hosts=known_hosts, fallback_key=key or fallback_key))
    hops.append(_hop(config, name, port=port, user=user, key=key, known_hosts=known_hosts,
                     fallback_key=fallback_key))
    return hops


def _lookup(config: paramiko.SSHConfig | None, host: str) -> dict[str, object]:
    if config is None:
        return {}
    try:
        return dict(config.lookup(host))
    except ImportError as e:  # a `Match exec` line: paramiko runs it with invoke
        if not allow_match_exec():
            raise UserInputError(
                f"the ssh_config's `Match exec` for {host} needs the invoke package ({e})"
            ) from e
        return dict(config.lookup(host))


def _split(spec: object) -> list[str]:
    if not isinstance(spec, str) or spec.strip().lower() in ("", "none"):
        return []
    return [part.strip() for part in spec.split(",") if part.strip()]


def _parse_jump(spec: str) -> tuple[str, int | None, str | None]:
    """``[user@]host[:port]`` or ``ssh://...`` of a ProxyJump entry."""
    from provisioner.engine.ssh_keys import ssh_url_parts

    return ssh_url_parts(spec if spec.startswith("ssh://") else f"ssh://{spec}")


def _hop(
    config: paramiko.SSHConfig | None,
    name: str,
    *,
    port: int | None,
    user: str | None,
    key: Path | None,
    known_hosts: Path | None,
    fallback_key: Path | None = None,
) -> Hop:
    found = _lookup(config, name)
    hostname = str(found.get("hostname") or name)
    try:
        real_port = port or int(str(found.get("port") or 22))
    except ValueError as e:
        raise UserInputError(f"ssh_config: bad Port for {name}: {found.get('port')}") from e
    real_user = user or str(found.get("user") or getpass.getuser())
    files = found.get("identityfile")
    config_keys = tuple(Path(str(f)) for f in files) if isinstance(files, list) else ()
    if not config_keys and key is None and fallback_key is not None:
        key = fallback_key  # a jump with no IdentityFile of its own: the host's key
    knowns: tuple[Path, ...]
    if known_hosts is not None:
        knowns = (known_hosts,)
    else:
        listed = str(found.get("userknownhostsfile") or "")
        knowns = tuple(Path(p).expanduser() for p in listed.split() if p)
    return Hop(SshTarget(hostname, real_port, real_user), name, key, config_keys, knowns)
