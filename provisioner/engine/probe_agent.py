"""labup's side of the probe agent: one ``python3`` on an SSH engine's host for a check run.

:meth:`ProbeAgent.start` opens a channel on the engine's SSH connection running the program
of :mod:`provisioner.checks.netns_agent` and reads its first line: an agent that cannot work
there (no python3, not root, cannot enter namespaces) is closed and ``start`` returns None;
the checks then use probe sidecars. Probes are JSON lines; many are in flight at once, each
answered by its id. The agent ends when its channel closes (:meth:`close`, the engine's
close, or the connection going away), so nothing is left on the host.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from labspec.errors import EngineError
from provisioner.checks.netns import CLOSED, Answer, HttpFailed, NamespaceError

HELLO_TIMEOUT = 10.0  # seconds for python3 to start there and say whether it can work
SLACK = 5.0  # seconds an answer may take beyond the probe's own timeout


class ProbeAgent:
    """The agent on one host (see the module docstring)."""

    def __init__(self, channel: Any, label: str) -> None:
        self._chan = channel
        self._label = label
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._ended: str | None = None
        self._opened: dict[tuple[str, int, bool], RemoteNetns | None] = {}
        self._hello: dict[str, Any] = {}
        self._hello_seen = threading.Event()
        self._reader = threading.Thread(target=self._read, name="labup-agent", daemon=True)
        self._reader.start()

    # -- starting ---------------------------------------------------------------------------
    @classmethod
    def start(cls, open_channel: Callable[[Sequence[str]], Any], label: str) -> ProbeAgent | None:
        """The agent, working; None where it cannot work (the reason is :attr:`refusal`)."""
        from provisioner.checks.netns_agent import source

        try:
            chan = open_channel(["python3", "-I", "-c", source()])
        except EngineError:
            return None
        agent = cls(chan, label)
        if not agent._hello_seen.wait(HELLO_TIMEOUT) or not agent._hello.get("usable"):
            agent.close()
            return None
        return agent

    @classmethod
    def start_soon(
        cls, open_channel: Callable[[Sequence[str]], Any], label: str
    ) -> Future[ProbeAgent | None]:
        """:meth:`start` on a thread of its own: the agent comes up while the caller goes on
        (connecting the Docker client, reading the lab); the future never raises."""
        future: Future[ProbeAgent | None] = Future()

        def run() -> None:
            try:
                future.set_result(cls.start(open_channel, label))
            except Exception:  # a broken start is no agent: the checks use sidecars
                future.set_result(None)

        threading.Thread(target=run, name="labup-agent-start", daemon=True).start()
        return future

    @property
    def hello(self) -> dict[str, Any]:
        return dict(self._hello)

    # -- the wire ---------------------------------------------------------------------------
    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self._chan.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._dispatch(line)
        except Exception as e:  # the channel broke: every caller waiting is told below
            self._end(f"the probe agent on {self._label} stopped: {e}")
        else:
            self._end(f"the probe agent on {self._label} ended")
        self.close()  # its channel's slot goes back to the connection

    def _dispatch(self, line: bytes) -> None:
        try:
            doc = json.loads(line)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        if "hello" in doc:
            self._hello = doc
            self._hello_seen.set()
            return
        with self._lock:
            waiter = self._waiting.pop(doc.get("id"), None)  # type: ignore[arg-type]
        if waiter is not None:
            waiter[1].append(doc)
            waiter[0].set()

    def _end(self, why: str) -> None:
        with self._lock:
            self._ended = why
            waiting = list(self._waiting.values())
            self._waiting.clear()
        self._hello_seen.set()
        for event, _ in waiting:
            event.set()

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for its answer (EngineError when none comes)."""
        rid = next(self._ids)
        event = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            if self._ended:
                raise EngineError(self._ended, host=self._label)
            self._waiting[rid] = (event, box)
        line = json.dumps({**request, "id": rid, "timeout": timeout}).encode() + b"\n"
        try:
            with self._send_lock:
                self._chan.sendall(line)
        except Exception as e:
            with self._lock:
                self._waiting.pop(rid, None)
            raise EngineError(f"cannot reach the probe agent on {self._label}: {e}",
                              host=self._label) from e
        deadline = time.monotonic() + timeout + SLACK
        event.wait(max(0.0, deadline - time.monotonic()))
        if not box:
            with self._lock:
                self._waiting.pop(rid, None)
                why = self._ended
            raise EngineError(why or f"the probe agent on {self._label} did not answer within "
                              f"{timeout + SLACK:g} s", host=self._label)
        answer = box[0]
        if "error" in answer:
            message = str(answer.get("message") or answer["error"])
            if answer["error"] == "namespace":
                raise NamespaceError(message)
            raise EngineError(f"probe agent on {self._label}: {message}", host=self._label)
        return answer

    # -- namespaces -------------------------------------------------------------------------
    def netns(self, data: dict[str, Any], timeout: float) -> RemoteNetns | None:
        """The network namespace of an inspected, running container there; None when the
        agent cannot enter it (another pid namespace, say): the sidecars then do the work."""
        return self._open(data, timeout, host=False)

    def host(self, data: dict[str, Any], timeout: float) -> RemoteNetns | None:
        """The engine host's own network, as the inspected, running container ``data`` has
        it (where its published ports listen); None when the agent cannot find it."""
        return self._open(data, timeout, host=True)

    def _open(self, data: dict[str, Any], timeout: float, *, host: bool) -> RemoteNetns | None:
        pid = int((data.get("State") or {}).get("Pid") or 0)
        cid = str(data.get("Id") or "")
        if pid <= 0 or not cid:
            return None
        ns: dict[str, Any] = {"pid": pid, "cid": cid}
        if host:
            networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
            ns.update(host=True, gateways=sorted(
                {str(n.get(k)) for n in networks.values() for k in ("Gateway", "IPv6Gateway")
                 if n.get(k)}))
        else:
            ns.update(hosts=str(data.get("HostsPath") or ""),
                      resolv=str(data.get("ResolvConfPath") or ""))
        key = (cid, pid, host)
        with self._lock:
            if key in self._opened:
                return self._opened[key]
        found = (RemoteNetns(self, ns)
                 if self.call({"op": "open", "ns": ns}, timeout).get("open") else None)
        with self._lock:
            self._opened[key] = found
        return found

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the connection may be gone already
            self._chan.close()


class RemoteNetns:
    """A network namespace on the agent's host, with the probes of a local ``Netns``."""

    def __init__(self, agent: ProbeAgent, ns: dict[str, Any]) -> None:
        self._agent = agent
        self._ns = ns

    def tcp(self, address: str, port: int, timeout: float) -> tuple[bool, str]:
        got = self._agent.call({"op": "tcp", "ns": self._ns, "address": address,
                                "port": port}, timeout)
        return _verdict(got)

    def ping(self, address: str, timeout: float) -> tuple[bool, str]:
        return _verdict(self._agent.call({"op": "ping", "ns": self._ns, "address": address},
                                         timeout))

    def http(
        self, method: str, address: str, port: int, path: str, data: str, timeout: float
    ) -> Answer:
        got = self._agent.call({"op": "http", "ns": self._ns, "method": method,
                                "address": address, "port": port, "path": path, "data": data},
                               timeout)
        if "failed" in got:
            raise HttpFailed(str(got["failed"]) or CLOSED)
        status, reason, headers, body = got["http"]
        return int(status), str(reason), {str(k): str(v) for k, v in headers.items()}, str(body)


def _verdict(got: dict[str, Any]) -> tuple[bool, str]:
    ok, why = got["ok"]
    return bool(ok), str(why)
