"""Who the host is and who we are: ``ssh://`` URLs, host keys checked against known_hosts,
and the key we log in with. Host keys are always verified: an unknown key is refused with its
fingerprint and the command that trusts it, a changed key is refused loudly. Keys and
passwords are never printed.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labspec.errors import EXIT_ENGINE, EngineError, UserInputError
from provisioner.engine.ssh_lib import paramiko

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


class HostKeyError(EngineError):
    """The host's SSH key is unknown or changed: never connect."""

    exit_code = EXIT_ENGINE


class SshAuthError(EngineError):
    """The host refused our key (wrong user, key not authorized)."""

    exit_code = EXIT_ENGINE


@dataclass(frozen=True)
class SshTarget:
    """Where to connect: parsed from ``ssh://user@host:port``."""

    host: str
    port: int
    user: str

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH names the host in known_hosts: ``host`` or ``[host]:port``."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse_ssh_url(url: str) -> SshTarget:
    """``ssh://user@host:port`` (user and port optional) to an :class:`SshTarget`."""
    host, port, user = ssh_url_parts(url)
    return SshTarget(host=host, port=port or 22, user=user or getpass.getuser())


def ssh_url_parts(url: str) -> tuple[str, int | None, str | None]:
    """(host, port or None, user or None) of ``ssh://[user@]host[:port]``: what the URL says,
    so that an ssh_config can fill in the rest as OpenSSH would. Passwords are refused."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "ssh" or not parsed.hostname:
        raise UserInputError(
            f"not an SSH engine URL: {url!r}", hint="write it as ssh://user@host:port"
        )
    if parsed.password:
        raise UserInputError(
            "passwords in ssh:// URLs are not supported (and would be shown in logs)",
            hint="use a key: the inventory's `key`, or ssh-agent",
        )
    try:
        port = parsed.port
    except ValueError as e:
        raise UserInputError(f"bad port in {url!r}: {e}") from e
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise UserInputError(
            f"not an SSH engine URL: {url!r}", hint="write it as ssh://user@host:port"
        )
    return parsed.hostname, port, parsed.username or None


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint: ``SHA256:base64`` without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _key_kind(key: paramiko.PKey) -> str:
    name = key.get_name()
    return {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}.get(
        name, name.removeprefix("ssh-").split("-")[0].upper()
    )


def load_known_hosts(files: Path | Sequence[Path], target: SshTarget) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    for path in [files] if isinstance(files, Path) else files:
        if path.is_file():
            try:
                keys.load(str(path))
            except (OSError, paramiko.SSHException) as e:
                raise HostKeyError(
                    f"cannot read known_hosts {path}: {e}", host=target.label
                ) from e
    return keys


def verify_host_key(
    target: SshTarget, server_key: paramiko.PKey, known_hosts: Path | Sequence[Path]
) -> None:
    """Accept the server's key only when known_hosts holds exactly it for this host."""
    keys = load_known_hosts(known_hosts, target)
    if not isinstance(known_hosts, Path):
        known_hosts = known_hosts[0] if known_hosts else Path("~/.ssh/known_hosts").expanduser()
    entry = keys.lookup(target.known_hosts_name)
    shown = f"{_key_kind(server_key)} key fingerprint {fingerprint(server_key)}"
    if not entry:
        port_flag = f"-p {target.port} " if target.port != 22 else ""
        raise HostKeyError(
            f"host key not known: the host presents an {shown}, which {known_hosts} does not hold;"
            " refusing to connect",
            host=target.label,
            hint=(
                "check the fingerprint with the machine's owner (ssh-keygen -lf "
                "/etc/ssh/ssh_host_ed25519_key.pub on it), then trust it with: "
                f"ssh-keyscan {port_flag}{target.host} >> {known_hosts}"
            ),
        )
    for known in entry.values():
        if known.get_name() == server_key.get_name() and known.asbytes() == server_key.asbytes():
            return
    others = ", ".join(f"{_key_kind(k)} {fingerprint(k)}" for k in entry.values())
    raise HostKeyError(
        "WARNING: REMOTE HOST KEY HAS CHANGED! The host presents an "
        f"{shown}, but {known_hosts} holds another key for {target.known_hosts_name} ({others}). "
        "Someone could be intercepting the connection (man-in-the-middle), or the machine was "
        "reinstalled. Refusing to connect.",
        host=target.label,
        hint=(
            "only if you know the machine's key really changed: "
            f"ssh-keygen -f {known_hosts} -R '{target.known_hosts_name}', then trust the new key"
        ),
    )


def _load_private_key(path: Path, target: SshTarget) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(str(path))
    except paramiko.PasswordRequiredException as e:
        raise SshAuthError(
            f"the private key {path} is encrypted",
            host=target.label,
            hint="load it into ssh-agent (ssh-add) and leave the inventory's `key` unset",
        ) from e
    except (OSError, paramiko.SSHException, ValueError) as e:
        raise SshAuthError(
            f"cannot read private key {path}: {type(e).__name__}", host=target.label
        ) from e


def _prefer_known_key_types(
    transport: paramiko.Transport, target: SshTarget, known_hosts: Path | Sequence[Path]
) -> None:
    """Ask the server for the key type known_hosts holds (as OpenSSH and SSHClient do)."""
    try:
        keys = load_known_hosts(known_hosts, target)
    except HostKeyError:
        return  # reported when the key is verified
    entry = keys.lookup(target.known_hosts_name)
    if not entry:
        return
    options = transport.get_security_options()
    wanted = [t for t in entry if t in options.key_types]
    if wanted:
        options.key_types = tuple(wanted) + tuple(t for t in options.key_types if t not in wanted)


def _authenticate(
    transport: paramiko.Transport,
    target: SshTarget,
    key: Path | None,
    config_keys: Sequence[Path] = (),
) -> None:
    """Log in with ``key`` (named by the user: it must exist), else the ssh_config's
    IdentityFiles that exist, else ssh-agent and the default ``~/.ssh/id_*`` keys."""
    candidates: list[tuple[str, paramiko.PKey]] = []
    if key is not None:
        path = key.expanduser()
        if not path.is_file():
            raise SshAuthError(f"private key file {path} does not exist", host=target.label)
        candidates.append((str(path), _load_private_key(path, target)))
    elif any(p.expanduser().is_file() for p in config_keys):
        candidates += [(str(p), _load_private_key(p.expanduser(), target))
                       for p in config_keys if p.expanduser().is_file()]
    else:
        try:
            agent_keys = paramiko.Agent().get_keys()
        except paramiko.SSHException:
            agent_keys = ()
        candidates += [("ssh-agent key", k) for k in agent_keys]
        for name in DEFAULT_KEYS:
            path = Path("~/.ssh").expanduser() / name
            if path.is_file():
                try:
                    candidates.append((str(path), paramiko.PKey.from_path(str(path))))
                except (paramiko.SSHException, OSError, ValueError):
                    continue  # an encrypted default key: the agent may hold it
    if not candidates:
        raise SshAuthError(
            "no SSH key to log in with",
            host=target.label,
            hint="set `key` for the host in the inventory, or load a key into ssh-agent",
        )
    for _, pkey in candidates:
        try:
            transport.auth_publickey(target.user, pkey)
        except paramiko.AuthenticationException:
            continue
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SshAuthError(f"SSH authentication failed: {e}", host=target.label) from e
        if transport.is_authenticated():
            return
    tried = ", ".join(name for name, _ in candidates)
    raise SshAuthError(
        f"the host refused user {target.user!r} with {tried}",
        host=target.label,
        hint="check the user name and that the key's .pub is in that user's authorized_keys",
    )
