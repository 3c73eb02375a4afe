"""Network probes run by labup itself, inside a local container's network namespace.

When labup runs as root on the engine's own host, a check "from" a container does not need a
probe container: a short-lived thread enters the container's network namespace
(``setns(2)`` on ``/proc/PID/ns/net``), opens a socket there and leaves; the socket stays in
that namespace, so connecting, sending and receiving see exactly the container's interfaces,
routes, firewall rules and DNS (Docker's resolver at 127.0.0.11 is reached through the
namespace's own NAT rules). Names resolve as in the container: its ``/etc/hosts`` first,
then the name servers of its ``resolv.conf``.

This costs a few milliseconds instead of a probe container and an exec (about 0.1 s of
engine CPU each). It is used only where it is exact: a Linux host, labup with the right to
enter namespaces, and a container whose process is visible here (its cgroup names its id).
On an engine over SSH the same code runs on the engine's host, in one ``python3`` labup starts
there over the connection (:mod:`provisioner.checks.netns_agent`), so a cause reads the same
on both. Anywhere neither can run (Docker Desktop, a non-root user, a host without python3,
``LABUP_PROBES=sidecar``) the probe sidecars of :mod:`provisioner.engine.probe` do the work.

This module needs nothing but Python's standard library (3.8 or later): it is also the
source the far side runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import random
import select
import socket
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

try:
    from labspec.errors import LabupError
except ImportError:  # on an engine's host, run by the probe agent: the standard library only
    LabupError = Exception  # type: ignore[assignment,misc]

CLONE_NEWNET = 0x40000000
ENV_MODE = "LABUP_PROBES"  # "auto" (default) or "sidecar": never enter namespaces
T = TypeVar("T")

_libc: Any = None
_usable: bool | None = None
_lock = threading.Lock()


class Unresolved(OSError):
    """A name that the container cannot resolve."""


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        # the C library Python itself is linked with (find_library would spawn ldconfig)
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _usable_here() -> bool:
    """Linux, root, and a setns that works (tried once, on this process's own namespace)."""
    global _usable
    with _lock:
        if _usable is None:
            _usable = False
            if sys.platform.startswith("linux") and os.geteuid() == 0:
                try:
                    fd = os.open(f"/proc/{os.getpid()}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    return False
                try:
                    _run_in(fd, lambda: None)
                    _usable = True
                except NamespaceError:
                    pass
                finally:
                    os.close(fd)
        return _usable


class NamespaceError(LabupError):
    """labup could not enter a container's network namespace: the check fails (it never
    passes a negative check for want of having looked)."""


def _run_in(ns_fd: int, func: Callable[[], T]) -> T:
    """Call ``func`` on a fresh thread that first enters the network namespace ``ns_fd``.
    The thread ends afterwards, so no thread of labup is ever left in a container's
    namespace. Failing to enter raises :class:`NamespaceError`; what ``func`` raises is
    raised as is."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            _setns(ns_fd)
        except OSError as e:
            box["error"] = NamespaceError(f"cannot enter the container's network namespace: {e}")
            return
        try:
            box["value"] = func()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    thread = threading.Thread(target=run, name="labup-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def sidecars_only() -> bool:
    """``LABUP_PROBES=sidecar``: probes run in probe containers only (here and over SSH)."""
    return os.environ.get(ENV_MODE, "auto").strip().lower() == "sidecar"


def enabled() -> bool:
    """In-process probes are allowed here: not turned off, Linux, root, setns works."""
    return not sidecars_only() and _usable_here()


def unresolved(name: str) -> str:
    """The container has no address for ``name``: the words every probe uses for it."""
    return f"bad address '{name}' (the container cannot resolve it)"


def reason(e: OSError) -> str:
    """What went wrong, in one phrase: the message labup gave the error, else its text."""
    return e.strerror if isinstance(e.strerror, str) and e.strerror else str(e)


def for_container(data: dict[str, Any]) -> Netns | None:
    """The network namespace of an inspected, running container, if labup can enter it here."""
    if not enabled():
        return None
    return enter(
        int((data.get("State") or {}).get("Pid") or 0),
        str(data.get("Id") or ""),
        str(data.get("HostsPath") or ""),
        str(data.get("ResolvConfPath") or ""),
    )


def enter(pid: int, cid: str, hosts_path: str, resolv_path: str) -> Netns | None:
    """The network namespace of process ``pid`` of container ``cid``, or None.

    The namespace is held open from the start (a file descriptor), and only after that is
    the process checked to be this container's: a process that ends meanwhile, and a pid
    used again by another process, can never lead labup into the wrong namespace."""
    if pid <= 0 or not cid:
        return None
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    ns = Netns(fd, hosts_path, resolv_path)
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            if cid not in f.read():  # not this container's process (another pid namespace)
                return None
        _run_in(fd, lambda: None)  # allowed here (not, say, a user namespace we cannot enter)
    except (OSError, NamespaceError):
        return None
    return ns


def host_of(pid: int, cid: str, gateways: list[str]) -> Netns | None:
    """The engine host's network as container ``cid`` (process ``pid``) has it: the network
    namespace of the process that started the container (the runtime's shim, which lives
    where the engine does, where its published ports listen), else this process's own;
    whichever holds one of the container's ``gateways`` (its networks' bridge addresses),
    which proves it is that host's. None when neither does."""
    if enter(pid, cid, "", "") is None:  # the pid is the container's (its cgroup says so)
        return None
    candidates: list[Netns] = []
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            parent = next((int(line.split()[1]) for line in f if line.startswith("PPid:")), 0)
        if parent > 0:
            fd = os.open(f"/proc/{parent}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            candidates.append(Netns(fd, "/etc/hosts", "/etc/resolv.conf"))
    except (OSError, ValueError):
        pass
    candidates.append(here())
    for ns in candidates:
        if any(_holds(ns, ip) for ip in gateways):
            return ns
    return None


def _holds(ns: Netns, ip: str) -> bool:
    """``ip`` is an address of an interface in namespace ``ns`` (a socket can bind to it)."""
    try:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        with ns.open_socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except (OSError, NamespaceError):
        return False


def here() -> Netns:
    """This process's own network (the host's), probed the same way, with no namespace to
    enter: "from the host" reads as "from a container" does."""
    return Netns(None, "/etc/hosts", "/etc/resolv.conf")


class Netns:
    """A container's network namespace, held open until this object is gone."""

    def __init__(self, fd: int | None, hosts_path: str, resolv_path: str) -> None:
        self.fd = fd  # None: this process's own namespace
        self.hosts_path = hosts_path  # the container's /etc/hosts, as a path on this host
        self.resolv_path = resolv_path  # its /etc/resolv.conf
        if fd is not None:
            weakref.finalize(self, os.close, fd)

    def open_socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        if self.fd is None:
            return socket.socket(family, kind, proto)
        return _run_in(self.fd, lambda: socket.socket(family, kind, proto))

    # -- names -------------------------------------------------------------------------
    def resolve(self, name: str, timeout: float) -> str:
        """The container's address for ``name``; :class:`Unresolved` when it has none."""
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(name))
        found = _hosts_lookup(_read(self.hosts_path), name)
        if found:
            return found
        servers, search = _resolv_conf(_read(self.resolv_path))
        candidates = [name] + ([f"{name}.{d}" for d in search] if "." not in name else [])
        deadline = time.monotonic() + timeout
        for candidate in candidates:
            for server in servers or ["127.0.0.1"]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unresolved(f"bad address '{name}' (no answer from {server})")
                answer = self._query(server, candidate, left)
                if answer is not None:
                    return answer
        raise Unresolved(unresolved(name))

    def _query(self, server: str, name: str, timeout: float) -> str | None:
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        deadline = time.monotonic() + min(timeout, 2.0)
        with self.open_socket(family, socket.SOCK_DGRAM) as s:
            query_id = random.getrandbits(16)
            try:
                s.sendto(_dns_query(query_id, name), (server, 53))
                while (left := deadline - time.monotonic()) > 0:
                    s.settimeout(left)
                    data = s.recv(4096)
                    if len(data) >= 2 and struct.unpack(">H", data[:2])[0] == query_id:
                        return _dns_answer(data)
            except OSError:
                return None
        return None

    # -- probes ------------------------------------------------------------------------
    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection from inside the container; OSError when it cannot be made."""
        ip = self.resolve(address, timeout)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        s = self.open_socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((ip, port))
        except TimeoutError as e:
            s.close()
            raise TimeoutError(f"can't connect to {address} ({ip}:{port}): timed out") from e
        except OSError as e:
            s.close()
            raise OSError(e.errno, f"can't connect to {address} ({ip}:{port}): {e.strerror}") from e
        return s

    def tcp(self, address: str, port: int, timeout: float) -> tuple[bool, str]:
        """(open?, why), as the tcp and reachable checks want it."""
        try:
            with self.connect(address, port, timeout):
                return True, "connected"
        except OSError as e:
            return False, reason(e)

    def http(
        self, method: str, address: str, port: int, path: str, data: str, timeout: float
    ) -> Answer:
        """An HTTP/1.1 request from inside the container; :class:`HttpFailed` without one."""
        return http_request(method, address, port, path, data, timeout,
                            connect=lambda: self.connect(address, port, timeout))

    def ping(self, address: str, timeout: float) -> tuple[bool, str]:
        """One ICMP echo from inside the container (a raw socket: labup is root here)."""
        try:
            ip = self.resolve(address, timeout)
        except Unresolved as e:
            return False, str(e)
        if ":" in ip:
            return False, f"{address} ({ip}): ping over IPv6 is not supported in-process"
        ident = random.getrandbits(16)
        packet = _icmp_echo(ident, 1, b"labup-probe-ping")
        try:
            with self.open_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
                s.sendto(packet, (ip, 0))
                deadline = time.monotonic() + timeout
                while (left := deadline - time.monotonic()) > 0:
                    ready, _, _ = select.select([s], [], [], left)
                    if not ready:
                        break
                    data, source = s.recvfrom(2048)
                    header = (data[0] & 0x0F) * 4 if data else 0
                    if len(data) < header + 8:
                        continue
                    kind, _, _, got_id, _ = struct.unpack(">BBHHH", data[header : header + 8])
                    if kind == 0 and got_id == ident and source[0] == ip:
                        return True, "answers ping"
        except OSError as e:
            return False, f"{address} ({ip}): {e.strerror or e}"
        return False, f"{address} ({ip}): no answer to ping"


# -- HTTP ----------------------------------------------------------------------------------
CLOSED = "connection closed without a response"
MAX_BODY = 1024 * 1024
Answer = tuple[int, str, dict[str, str], str]  # status, reason, headers (lower-cased), body


class HttpFailed(Exception):
    """No HTTP response; the message says why, in the words every probe uses."""


def http_request(
    method: str,
    address: str,
    port: int,
    path: str,
    data: str,
    timeout: float,
    *,
    connect: Callable[[], socket.socket] | None = None,
) -> Answer:
    """One request to ``address:port`` (through the socket ``connect`` opens, or a plain
    connection from here); the answer, or :class:`HttpFailed`. A namespace that cannot be
    entered raises :class:`NamespaceError`, never a failure that reads as "closed"."""
    import http.client

    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        if connect is not None:
            conn.sock = connect()
        body = data.encode() if data else None
        conn.request(method, path, body=body, headers={"User-Agent": "labup-check"})
        resp = conn.getresponse()
        content = resp.read(MAX_BODY).decode("utf-8", errors="replace")
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, resp.reason, headers, content
    except (OSError, http.client.HTTPException) as e:
        if isinstance(e, socket.timeout) and not e.strerror:
            why = "timed out"
        elif isinstance(e, (ConnectionResetError, http.client.RemoteDisconnected)):
            why = CLOSED  # a probe's nc sees a reset and a close alike: one wording
        elif isinstance(e, OSError):
            why = reason(e) or type(e).__name__
        else:
            why = str(e) or type(e).__name__
        raise HttpFailed(why) from e
    finally:
        conn.close()


# -- files of the container ---------------------------------------------------------------
def _read(path: str) -> str:
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def _hosts_lookup(text: str, name: str) -> str | None:
    wanted = name.lower()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and wanted in (w.lower() for w in words[1:]):
            with contextlib.suppress(ValueError):
                ip = ipaddress.ip_address(words[0])
                if ip.version == 4:  # as busybox's resolver does for a connect
                    return str(ip)
    return None


def _resolv_conf(text: str) -> tuple[list[str], list[str]]:
    servers: list[str] = []
    search: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            search = words[1:]
    return servers, search


# -- DNS and ICMP on the wire ---------------------------------------------------------------
def _dns_query(query_id: int, name: str) -> bytes:
    header = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # recursion desired
    labels = b"".join(
        bytes([len(part)]) + part for part in (p.encode("idna") for p in name.strip(".").split("."))
    )
    return header + labels + b"\x00" + struct.pack(">HH", 1, 1)  # A, IN


def _dns_answer(data: bytes) -> str | None:
    """The first A record of a DNS response; None for NXDOMAIN, errors or no address."""
    if len(data) < 12:
        return None
    _, flags, qdcount, ancount, _, _ = struct.unpack(">HHHHHH", data[:12])
    if flags & 0x000F:  # rcode: NXDOMAIN, SERVFAIL, REFUSED...
        return None
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        if offset + 10 > len(data):
            return None
        rtype, rclass, _, length = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == 1 and rclass == 1 and length == 4:
            return socket.inet_ntoa(data[offset : offset + 4])
        offset += length
    return None


def _skip_name(data: bytes, offset: int) -> int:
    while offset < len(data):
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += 1 + length
    return offset


def _icmp_echo(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack(">BBHHH", 8, 0, 0, ident, seq)
    checksum = _checksum(header + payload)
    return struct.pack(">BBHHH", 8, 0, checksum, ident, seq) + payload


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = int(sum(struct.unpack(f">{len(data) // 2}H", data)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
