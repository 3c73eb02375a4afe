"""One verified SSH connection per host, reused for everything: commands, SFTP, the Engine API.

:class:`SshSession` opens the connection (host key checked, key authenticated: see
:mod:`provisioner.engine.ssh_keys`) and hands out bounded channels: OpenSSH's ``MaxSessions``
is 10 per connection, so at most a few exec channels (``nvidia-smi``, ``df``), one SFTP channel
and the API channels of :mod:`provisioner.engine.ssh_docker` share it.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labspec.errors import EngineError, EngineUnreachable
from provisioner.engine.http import call_timeout
from provisioner.engine.protocol import CommandResult
from provisioner.engine.ssh_keys import (
    SshTarget,
    _authenticate,
    _prefer_known_key_types,
    verify_host_key,
)
from provisioner.engine.ssh_lib import paramiko
from provisioner.engine.ssh_route import Hop, Route

EXEC_CHANNELS = 3

logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class SshSession:
    """One authenticated SSH connection to a host: exec, SFTP and dial-stdio channels."""

    def __init__(self, target: SshTarget, transport: paramiko.Transport) -> None:
        self.target = target
        self._transport = transport
        self._exec_slots = threading.BoundedSemaphore(EXEC_CHANNELS)
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_lock = threading.Lock()
        self._channels: weakref.WeakSet[paramiko.Channel] = weakref.WeakSet()
        self._channels_lock = threading.Lock()
        self._jumps: list[paramiko.Transport] = []  # the jump hosts' connections, first first

    @classmethod
    def connect(cls, route: Route, *, timeout: float = 10.0) -> SshSession:
        """Open every hop of ``route`` in turn (each jump host's connection carries the next
        one: ProxyJump), verify every host key, authenticate every hop. Raises a LabupError
        for every failure, naming the hop."""
        first = route.hops[0]
        try:
            sock = socket.create_connection((first.target.host, first.target.port),
                                            timeout=timeout)
        except OSError as e:
            raise EngineUnreachable(
                f"cannot reach the SSH server: {e.strerror or e}",
                host=first.label,
                hint="is the machine on and sshd running? (ssh -p PORT user@host)",
            ) from e
        transports: list[paramiko.Transport] = []
        try:
            transport = _handshake(first, sock, timeout)
            transports.append(transport)
            for hop in route.hops[1:]:
                channel = _through(transport, hop, timeout)
                transport = _handshake(hop, channel, timeout)
                transports.append(transport)
        except BaseException:
            for opened in reversed(transports):
                opened.close()
            sock.close()
            raise
        session = cls(route.host.target, transports[-1])
        session._jumps = transports[:-1]
        return session

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def active(self) -> bool:
        return self._transport.is_active()

    @property
    def channel_count(self) -> int:
        """Open channels on this connection (tests prove the bound with it)."""
        with self._channels_lock:
            return sum(1 for chan in self._channels if not chan.closed) + (self._sftp is not None)

    def open_channel(self, argv: Sequence[str], *, timeout: float | None) -> paramiko.Channel:
        """A session channel running argv on the host (each argument quoted for its shell)."""
        if not self._transport.is_active():
            raise EngineUnreachable("the SSH connection was closed", host=self.target.label)
        try:
            chan = self._transport.open_session(timeout=timeout)
            with self._channels_lock:
                self._channels.add(chan)
            chan.settimeout(timeout)
            chan.exec_command(" ".join(shlex.quote(a) for a in argv))
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise EngineError(f"cannot open an SSH channel: {e}", host=self.target.label) from e
        return chan

    def open_stream(self, argv: Sequence[str]) -> _Stream:
        """A channel running argv on the host that stays open (the probe agent): it holds one
        of the exec channels' slots until it is closed, so the connection never opens more
        channels than sshd allows."""
        self._exec_slots.acquire()
        try:
            chan = self.open_channel(argv, timeout=None)
        except BaseException:
            self._exec_slots.release()
            raise
        return _Stream(chan, self._exec_slots.release)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = 30.0,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run argv on the host (not in a container) over this connection; never a shell string.

        ``cwd`` and ``env`` are applied on the far side by ``env`` and a fixed ``sh -c`` that
        only changes directory: every word stays an argument (quoted for the far shell)."""
        argv = with_place(argv, cwd=cwd, env=env)
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
        """The one SFTP channel of this connection (opened on first use), safe to share
        between threads (:class:`SerialSFTPClient`)."""
        with self._sftp_lock:
            if self._sftp is None:
                try:
                    self._sftp = SerialSFTPClient.from_transport(self._transport)
                except (paramiko.SSHException, OSError) as e:
                    raise EngineError(
                        f"cannot open SFTP: {e}", host=self.target.label,
                        hint="is the sftp subsystem enabled in the host's sshd_config?",
                    ) from e
                if self._sftp is None:
                    raise EngineError("the host refused SFTP", host=self.target.label)
                # an answer that stops coming fails its call (an OSError), never hangs labup
                channel = self._sftp.get_channel()
                if channel is not None:
                    channel.settimeout(call_timeout())
            return self._sftp

    def close(self) -> None:
        with self._sftp_lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
        self._transport.close()
        for jump in reversed(self._jumps):
            jump.close()


class SerialSFTPClient(paramiko.SFTPClient):
    """paramiko's SFTP client, one request at a time.

    paramiko reads an answer from the channel in whichever thread waits for one, without a
    lock: two threads asking at once (up checking the bind sources of several containers in
    parallel) can each read part of the other's answer, and one then waits forever. Here a
    request and the reading of its answer hold one lock; reading is reentrant, so a file's
    prefetched reads still work."""

    def __init__(self, sock: paramiko.Channel) -> None:
        super().__init__(sock)
        self._serial = threading.RLock()

    def _request(self, t: int, *args: Any) -> Any:
        with self._serial:
            return super()._request(t, *args)  # type: ignore[misc]

    def _read_response(self, waitfor: int | None = None) -> Any:
        with self._serial:
            return super()._read_response(waitfor)  # type: ignore[misc]


class _Stream:
    """A session channel's stdin and stdout, and a close that gives back its slot once."""

    def __init__(self, chan: paramiko.Channel, release: Callable[[], None]) -> None:
        self._chan = chan
        self._release: Callable[[], None] | None = release
        self._lock = threading.Lock()

    def sendall(self, data: bytes) -> None:
        self._chan.sendall(data)

    def recv(self, size: int) -> bytes:
        data: bytes = self._chan.recv(size)
        return data

    def close(self) -> None:
        self._chan.close()
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            release()


def _handshake(
    hop: Hop, sock: socket.socket | paramiko.Channel, timeout: float
) -> paramiko.Transport:
    """SSH over ``sock`` to ``hop``: negotiate (bounded in time), verify the host key, log in."""
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.auth_timeout = timeout
        transport.handshake_timeout = timeout
        known = hop.known_hosts or (Path("~/.ssh/known_hosts").expanduser(),)
        _prefer_known_key_types(transport, hop.target, known)
        try:
            transport.start_client(timeout=timeout)
            server_key = transport.get_remote_server_key()
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise EngineUnreachable(
                _handshake_failure(transport, e, timeout), host=hop.label,
                hint="is it an SSH server? (ssh -v -p PORT user@host shows what it says)",
            ) from e
        verify_host_key(hop.target, server_key, known)
        _authenticate(transport, hop.target, hop.key, hop.config_keys)
        transport.set_keepalive(30)
    except BaseException:
        transport.close()
        raise
    return transport


def _handshake_failure(transport: paramiko.Transport, e: BaseException, timeout: float) -> str:
    """What went wrong before the host key: silence, a stall after the banner, or an error."""
    said = str(e).strip()
    banner = (transport.remote_version or "").strip()
    if not banner and (not said or "No existing session" in said or "banner" in said.lower()):
        return (f"no SSH server speaks there: the port accepts connections but sent no SSH "
                f"banner within {timeout:g} s")
    if banner and (not said or "No existing session" in said):
        return f"{banner} answered, then the SSH key exchange stalled for {timeout:g} s"
    return f"SSH handshake failed: {said or type(e).__name__}"


def open_session(
    url: str,
    *,
    key: Path | str | None = None,
    known_hosts: Path | str | None = None,
    timeout: float = 10.0,
    proxy_jump: str | None = None,
    ssh_config: Path | None = None,
) -> SshSession:
    """The SSH connection for ``ssh://user@host:port`` (see
    :func:`provisioner.engine.ssh_docker.docker_client_over_ssh` for where the key, the
    known_hosts and the route come from)."""
    from provisioner.engine.ssh_keys import ssh_url_parts
    from provisioner.engine.ssh_route import resolve_route

    host, port, user = ssh_url_parts(url)
    key = key if key is not None else os.environ.get("LABUP_SSH_KEY") or None
    known_hosts = (
        known_hosts if known_hosts is not None else os.environ.get("LABUP_KNOWN_HOSTS") or None
    )
    route = resolve_route(
        host, port=port, user=user,
        key=Path(key).expanduser() if key is not None else None,
        known_hosts=Path(known_hosts).expanduser() if known_hosts is not None else None,
        proxy_jump=proxy_jump, ssh_config=ssh_config,
    )
    return SshSession.connect(route, timeout=timeout)


def _through(transport: paramiko.Transport, hop: Hop, timeout: float) -> paramiko.Channel:
    """A TCP connection to ``hop`` made by the jump host at the other end of ``transport``."""
    try:
        return transport.open_channel(
            "direct-tcpip", (hop.target.host, hop.target.port), ("127.0.0.1", 0),
            timeout=timeout,
        )
    except (paramiko.SSHException, OSError, EOFError) as e:
        said = e.text if isinstance(e, paramiko.ChannelException) else str(e)
        raise EngineUnreachable(
            f"the jump host cannot reach {hop.target.host}:{hop.target.port}: {said}",
            host=hop.label,
            hint="check the ProxyJump chain (ssh -J) and that the jump host may forward TCP",
        ) from e


def with_place(
    argv: Sequence[str], *, cwd: str | None = None, env: Mapping[str, str] | None = None
) -> list[str]:
    """argv run in ``cwd`` with ``env`` added, for a host's shell: ``env K=V sh -c 'cd "$1" &&
    shift && exec "$@"' sh DIR argv...`` (the script is fixed; no input becomes shell code)."""
    out = list(argv)
    if cwd is not None:
        out = ["sh", "-c", 'cd -- "$1" && shift && exec "$@"', "sh", cwd, *out]
    if env:
        out = ["env", *(f"{k}={v}" for k, v in env.items()), *out]
    return out

