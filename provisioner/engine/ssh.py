"""Docker engines over SSH: one verified paramiko connection per host, reused for everything.

:func:`docker_client_over_ssh` returns a ``docker.DockerClient`` whose HTTP requests travel
over ``docker system dial-stdio`` channels of ONE SSH transport. The channels are pooled and
bounded (OpenSSH's ``MaxSessions`` is 10 per connection): at most ``pool_size`` API channels,
plus a few for exec probes (``nvidia-smi``, ``df``) and one SFTP channel, all on the same
connection. docker-py's own ssh adapter opens an unbounded number of channels under load and
only knows ``~/.ssh/known_hosts``; this one takes the key and known_hosts of an inventory host.

Host keys are always verified: an unknown key is refused with its fingerprint and the command
that trusts it, a changed key is refused loudly. Keys and passwords are never printed.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import logging
import os
import queue
import shlex
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import paramiko
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from labspec.errors import EXIT_ENGINE, EngineError, EngineUnreachable, UserInputError
from provisioner.engine.protocol import CommandResult

DEFAULT_POOL_SIZE = 6  # API channels; + EXEC_CHANNELS + 1 SFTP stays within MaxSessions 10
EXEC_CHANNELS = 3
DIAL_STDIO = ("docker", "system", "dial-stdio")
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")

logging.getLogger("paramiko").setLevel(logging.CRITICAL)


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
        port = parsed.port or 22
    except ValueError as e:
        raise UserInputError(f"bad port in {url!r}: {e}") from e
    return SshTarget(host=parsed.hostname, port=port, user=parsed.username or getpass.getuser())


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint: ``SHA256:base64`` without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _key_kind(key: paramiko.PKey) -> str:
    name = key.get_name()
    return {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}.get(
        name, name.removeprefix("ssh-").split("-")[0].upper()
    )


def verify_host_key(
    target: SshTarget, server_key: paramiko.PKey, known_hosts: Path
) -> None:
    """Accept the server's key only when known_hosts holds exactly it for this host."""
    keys = paramiko.HostKeys()
    if known_hosts.is_file():
        try:
            keys.load(str(known_hosts))
        except (OSError, paramiko.SSHException) as e:
            raise HostKeyError(
                f"cannot read known_hosts {known_hosts}: {e}", host=target.label
            ) from e
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


class SshSession:
    """One authenticated SSH connection to a host: exec, SFTP and dial-stdio channels."""

    def __init__(self, target: SshTarget, transport: paramiko.Transport) -> None:
        self.target = target
        self._transport = transport
        self._exec_slots = threading.BoundedSemaphore(EXEC_CHANNELS)
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_lock = threading.Lock()
        self._docker_host: str | None = None

    @classmethod
    def connect(
        cls,
        target: SshTarget,
        *,
        key: Path | None = None,
        known_hosts: Path | None = None,
        timeout: float = 10.0,
    ) -> SshSession:
        """Open, verify the host key, authenticate. Raises a LabupError for every failure."""
        known = (known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        try:
            sock = socket.create_connection((target.host, target.port), timeout=timeout)
        except OSError as e:
            raise EngineUnreachable(
                f"cannot reach the SSH server: {e.strerror or e}",
                host=target.label,
                hint="is the machine on and sshd running? (ssh -p PORT user@host)",
            ) from e
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = timeout
            transport.auth_timeout = timeout
            _prefer_known_key_types(transport, target, known)
            try:
                transport.start_client(timeout=timeout)
            except (paramiko.SSHException, OSError, EOFError) as e:
                raise EngineUnreachable(
                    f"SSH handshake failed: {e}", host=target.label
                ) from e
            server_key = transport.get_remote_server_key()
            verify_host_key(target, server_key, known)
            _authenticate(transport, target, key)
            transport.set_keepalive(30)
        except BaseException:
            transport.close()
            raise
        return cls(target, transport)

    @property
    def active(self) -> bool:
        return self._transport.is_active()

    @property
    def channel_count(self) -> int:
        """Open channels on this connection (tests prove the bound with it)."""
        channels = getattr(self._transport, "_channels", None)
        return len(channels.values()) if channels is not None else 0

    def open_channel(self, argv: Sequence[str], *, timeout: float | None) -> paramiko.Channel:
        """A session channel running argv on the host (each argument quoted for its shell)."""
        if not self._transport.is_active():
            raise EngineUnreachable("the SSH connection was closed", host=self.target.label)
        try:
            chan = self._transport.open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(" ".join(shlex.quote(a) for a in argv))
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise EngineError(f"cannot open an SSH channel: {e}", host=self.target.label) from e
        return chan

    def run(self, argv: Sequence[str], *, timeout: float | None = 30.0) -> CommandResult:
        """Run argv on the host (not in a container) over this connection; never a shell string."""
        with self._exec_slots:
            chan = self.open_channel(argv, timeout=timeout)
            try:
                chan.shutdown_write()
                out = bytearray()
                err = bytearray()
                deadline = None if timeout is None else time.monotonic() + timeout
                while True:
                    if chan.recv_ready():
                        out += chan.recv(65536)
                    elif chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                    elif chan.exit_status_ready() and not chan.recv_ready():
                        while chan.recv_stderr_ready():
                            err += chan.recv_stderr(65536)
                        break
                    else:
                        if deadline is not None and time.monotonic() > deadline:
                            raise EngineError(
                                f"{argv[0]} did not finish within {timeout:g} s",
                                host=self.target.label,
                            )
                        time.sleep(0.005)
                rc = chan.recv_exit_status()
            except (paramiko.SSHException, OSError) as e:
                raise EngineError(f"{argv[0]} failed over SSH: {e}", host=self.target.label) from e
            finally:
                chan.close()
        return CommandResult(
            rc=rc,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
        )

    def sftp(self) -> paramiko.SFTPClient:
        """The one SFTP channel of this connection (opened on first use)."""
        with self._sftp_lock:
            if self._sftp is None:
                try:
                    self._sftp = self._transport.open_sftp_client()
                except (paramiko.SSHException, OSError) as e:
                    raise EngineError(
                        f"cannot open SFTP: {e}", host=self.target.label,
                        hint="is the sftp subsystem enabled in the host's sshd_config?",
                    ) from e
                if self._sftp is None:
                    raise EngineError("the host refused SFTP", host=self.target.label)
            return self._sftp

    def close(self) -> None:
        with self._sftp_lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
        self._transport.close()


def _prefer_known_key_types(
    transport: paramiko.Transport, target: SshTarget, known_hosts: Path
) -> None:
    """Ask the server for the key type known_hosts holds (as OpenSSH and SSHClient do)."""
    if not known_hosts.is_file():
        return
    keys = paramiko.HostKeys()
    try:
        keys.load(str(known_hosts))
    except (OSError, paramiko.SSHException):
        return
    entry = keys.lookup(target.known_hosts_name)
    if not entry:
        return
    options = transport.get_security_options()
    wanted = [t for t in entry if t in options.key_types]
    if wanted:
        options.key_types = tuple(wanted) + tuple(t for t in options.key_types if t not in wanted)


def _authenticate(transport: paramiko.Transport, target: SshTarget, key: Path | None) -> None:
    candidates: list[tuple[str, paramiko.PKey]] = []
    if key is not None:
        path = key.expanduser()
        if not path.is_file():
            raise SshAuthError(f"private key file {path} does not exist", host=target.label)
        candidates.append((str(path), _load_private_key(path, target)))
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


# -- docker-py adapter: HTTP over dial-stdio channels of one transport ------------------------


class _ChannelConnection(urllib3.connection.HTTPConnection):
    def __init__(self, session: SshSession, dial: Sequence[str], timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._session = session
        self._dial = tuple(dial)
        self._channel_timeout = timeout

    def connect(self) -> None:
        self.sock = self._session.open_channel(self._dial, timeout=self._channel_timeout)


class _ChannelPool(urllib3.connectionpool.HTTPConnectionPool):
    """A blocking, bounded pool: never more than ``maxsize`` dial-stdio channels at once."""

    scheme = "ssh"

    def __init__(
        self, session: SshSession, dial: Sequence[str], timeout: float, maxsize: int
    ) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize, block=True)
        self._session = session
        self._dial = tuple(dial)
        self._channel_timeout = timeout
        self._size = maxsize

    def _new_conn(self) -> _ChannelConnection:
        return _ChannelConnection(self._session, self._dial, self._channel_timeout)

    def _get_conn(self, timeout: float | None = None) -> Any:
        if self.pool is None:
            raise urllib3.exceptions.ClosedPoolError(self, "Pool is closed.")
        try:
            conn = self.pool.get(block=True, timeout=self._channel_timeout)
        except queue.Empty:
            raise urllib3.exceptions.EmptyPoolError(
                self,
                f"all {self._size} API channels to {self._session.target.label} stayed busy "
                f"for {self._channel_timeout:g} s",
            ) from None
        if conn is not None and conn.sock is not None:
            chan = conn.sock
            if chan.closed or chan.exit_status_ready():  # dial-stdio ended: open a new one
                conn.close()
        return conn or self._new_conn()


class SshDockerAdapter(requests.adapters.HTTPAdapter):
    """requests adapter sending every Docker API call over the host's one SSH connection."""

    def __init__(
        self,
        session: SshSession,
        *,
        timeout: float,
        pool_size: int = DEFAULT_POOL_SIZE,
        docker_host: str | None = None,
    ) -> None:
        self.session = session
        dial: tuple[str, ...] = DIAL_STDIO
        if docker_host:
            dial = ("env", f"DOCKER_HOST={docker_host}", *DIAL_STDIO)
        self._pool = _ChannelPool(session, dial, timeout, pool_size)
        super().__init__(pool_connections=1, pool_maxsize=pool_size)

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        return self._pool

    def get_connection_with_tls_context(
        self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
    ) -> Any:
        return self._pool

    def close(self) -> None:
        super().close()
        self._pool.close()
        self.session.close()


def ssh_session_of(client: Any) -> SshSession | None:
    """The SSH connection behind a client made by :func:`docker_client_over_ssh`, if any."""
    api = getattr(client, "api", client)
    adapter = getattr(api, "_custom_adapter", None)
    return adapter.session if isinstance(adapter, SshDockerAdapter) else None


def docker_client_over_ssh(
    url: str,
    *,
    key: Path | str | None = None,
    known_hosts: Path | str | None = None,
    timeout: float = 10.0,
    api_timeout: float = 120.0,
    pool_size: int = DEFAULT_POOL_SIZE,
    docker_host: str | None = None,
) -> docker.DockerClient:
    """A docker SDK client for the engine behind ``ssh://user@host:port``.

    ``timeout`` bounds connecting (TCP, handshake, auth); ``api_timeout`` each API call.
    The key defaults to ``LABUP_SSH_KEY``, else ssh-agent and ``~/.ssh/id_*``; the host key is
    checked against ``known_hosts`` (default ``LABUP_KNOWN_HOSTS``, else ``~/.ssh/known_hosts``).
    Raises :class:`HostKeyError`, :class:`SshAuthError` or ``EngineUnreachable`` (no sshd, or
    no Docker engine answering on the far side), each one line with a hint.
    """
    target = parse_ssh_url(url)
    key = key if key is not None else os.environ.get("LABUP_SSH_KEY") or None
    known_hosts = (
        known_hosts if known_hosts is not None else os.environ.get("LABUP_KNOWN_HOSTS") or None
    )
    session = SshSession.connect(
        target,
        key=Path(key) if key is not None else None,
        known_hosts=Path(known_hosts) if known_hosts is not None else None,
        timeout=timeout,
    )
    try:
        adapter = SshDockerAdapter(
            session, timeout=api_timeout, pool_size=pool_size, docker_host=docker_host
        )
        # A placeholder base URL and version keep the constructor from calling the engine
        # before our adapter is mounted; the real version is asked right after.
        client = docker.DockerClient(
            base_url="tcp://127.0.0.1:9", version="1.24", timeout=int(api_timeout)
        )
        api = client.api
        api._custom_adapter = adapter  # type: ignore[attr-defined]
        api.mount("http+docker://ssh", adapter)
        for proto in ("http://", "https://"):
            api.adapters.pop(proto, None)
        api.base_url = "http+docker://ssh"
        try:
            api._version = str(  # type: ignore[attr-defined]
                api.version(api_version=False)["ApiVersion"])
        except (docker.errors.DockerException, requests.exceptions.RequestException,
                urllib3.exceptions.HTTPError, KeyError, OSError) as e:
            raise _no_engine_error(session, docker_host) from e
    except BaseException:
        session.close()
        raise
    return client


def _no_engine_error(session: SshSession, docker_host: str | None) -> EngineUnreachable:
    """Explain why no engine answered over SSH, from the far side's own words."""
    argv = ["docker", "version", "--format", "{{.Server.Version}}"]
    if docker_host:
        argv = ["env", f"DOCKER_HOST={docker_host}", *argv]
    try:
        probe = session.run(argv, timeout=15)
        said = (probe.stderr or probe.stdout).strip().splitlines()
        detail = said[-1] if said else f"exit code {probe.rc}"
    except EngineError as e:
        detail = e.message
    return EngineUnreachable(
        f"SSH works, but no Docker engine answers there: {detail}",
        host=session.target.label,
        hint="install and start Docker on that machine (and put `docker` on PATH for sessions), "
        "or set the host's docker_host in the inventory",
    )
