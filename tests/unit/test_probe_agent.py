"""The probe agent without an engine: its program on pipes (as python3 -I runs it on a host),
and labup's side of it on channels that answer, refuse or end."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from labspec.errors import EngineError
from provisioner.checks.netns import HttpFailed, NamespaceError
from provisioner.checks.netns_agent import source
from provisioner.engine.probe_agent import ProbeAgent


@pytest.fixture(scope="module")
def agent_process() -> Iterator[subprocess.Popen[bytes]]:
    """The shipped program, run exactly as on a host: the system's python3, isolated."""
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    proc = subprocess.Popen([python, "-I", "-c", source()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd="/")
    yield proc
    proc.kill()
    proc.wait()


class _Pipes:
    """A subprocess's pipes as a channel (what paramiko's Channel offers labup)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def sendall(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, size: int) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.read1(size)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()


@pytest.fixture(scope="module")
def agent(agent_process: subprocess.Popen[bytes]) -> ProbeAgent:
    started = ProbeAgent.start(lambda argv: _Pipes(agent_process), "testhost")
    if started is None:  # it enters network namespaces: that needs root, as on a host
        if os.environ.get("LABUP_REQUIRE_ENGINE") == "1":
            pytest.fail("the probe agent refused to work here (not root?) and "
                        "LABUP_REQUIRE_ENGINE=1")
        pytest.skip("the probe agent cannot work here: it needs root to enter namespaces")
    return started


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Probe", "yes")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_program_says_first_what_it_can_do(agent: ProbeAgent) -> None:
    hello = agent.hello
    assert hello["hello"] == 1 and hello["usable"] is True and hello["uid"] == 0
    assert tuple(hello["python"]) >= (3, 9)


def test_tcp_http_and_their_failures_in_the_words_of_the_local_probes(
    agent: ProbeAgent, web: int
) -> None:
    # the host's own network: a namespace that holds 127.0.0.1 as a gateway stands in
    ns = agent._open({"State": {"Pid": os.getpid()}, "Id": "x"}, 2.0, host=True)
    assert ns is None  # no container of that id: never a namespace labup did not verify
    from provisioner.engine.probe_agent import RemoteNetns

    host = RemoteNetns(agent, {"host": True, "pid": 0, "cid": ""})
    with pytest.raises(NamespaceError):
        host.tcp("127.0.0.1", web, 2.0)  # unverified: refused, never "closed"
    here = _HereNetns(agent)
    assert here.tcp("127.0.0.1", web, 2.0) == (True, "connected")
    port = _closed_port()
    assert here.tcp("127.0.0.1", port, 2.0) == (
        False, f"can't connect to 127.0.0.1 (127.0.0.1:{port}): Connection refused")
    status, reason, headers, body = here.http("GET", "127.0.0.1", web, "/", "", 2.0)
    assert (status, reason, headers["x-probe"], body) == (200, "OK", "yes",
                                                          "hello from the host\n")
    with pytest.raises(HttpFailed, match="Connection refused"):
        here.http("GET", "127.0.0.1", port, "/", "", 2.0)


class _HereNetns:
    """Requests for the agent's own namespace, which only this test may name: it verifies
    the agent's probe code without a container (``pid`` of the agent, ``cid`` from its own
    cgroup file, so the agent's check that the process is the container's passes)."""

    def __init__(self, agent: ProbeAgent) -> None:
        from provisioner.engine.probe_agent import RemoteNetns

        pid = _agent_pid(agent)
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            cid = f.read().strip().rsplit("/", 1)[-1] or "/"
        self.ns = RemoteNetns(agent, {"pid": pid, "cid": cid, "hosts": "/etc/hosts",
                                      "resolv": "/etc/resolv.conf"})

    def tcp(self, address: str, port: int, timeout: float) -> tuple[bool, str]:
        return self.ns.tcp(address, port, timeout)

    def http(self, *args: Any) -> Any:
        return self.ns.http(*args)


def _agent_pid(agent: ProbeAgent) -> int:
    chan = agent._chan
    assert isinstance(chan, _Pipes)
    return chan.proc.pid


def test_an_unknown_operation_and_garbage_lines_do_not_stop_it(
    agent: ProbeAgent, agent_process: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(EngineError, match="no operation 'rm'"):
        agent.call({"op": "rm", "ns": {"pid": 1, "cid": "c"}}, 2.0)
    assert agent_process.stdin is not None
    agent_process.stdin.write(b"not json\n[1, 2]\n")
    agent_process.stdin.flush()
    assert agent.call({"op": "open", "ns": {"pid": 1, "cid": "nope"}}, 2.0)["open"] is False


class _Channel:
    """A channel that says ``lines`` and then ends (or stays silent)."""

    def __init__(self, lines: list[bytes], *, end: bool = True) -> None:
        self.lines = list(lines)
        self.end = end
        self.closed = threading.Event()
        self.sent: list[bytes] = []

    def recv(self, size: int) -> bytes:
        if self.lines:
            return self.lines.pop(0)
        if self.end:
            return b""
        self.closed.wait()
        return b""

    def sendall(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed.set()


def test_a_host_where_it_cannot_work_gets_sidecars() -> None:
    refuses = _Channel([json.dumps({"hello": 1, "usable": False, "uid": 1000}).encode() + b"\n"],
                       end=False)
    assert ProbeAgent.start(lambda argv: refuses, "h") is None
    assert refuses.closed.is_set()  # and nothing is left running there

    t0 = time.monotonic()
    no_python = _Channel([b"sh: 1: python3: not found\n"])  # the channel just ends
    assert ProbeAgent.start(lambda argv: no_python, "h") is None
    assert time.monotonic() - t0 < 2  # an ended channel is not waited out


def test_an_agent_that_goes_away_fails_the_probes_waiting_on_it() -> None:
    chan = _Channel([json.dumps({"hello": 1, "usable": True, "uid": 0}).encode() + b"\n"],
                    end=False)
    agent = ProbeAgent.start(lambda argv: chan, "h")
    assert agent is not None
    result: list[BaseException] = []

    def probe() -> None:
        try:
            agent.call({"op": "tcp", "ns": {}}, 30.0)
        except BaseException as e:
            result.append(e)

    waiting = threading.Thread(target=probe)
    waiting.start()
    time.sleep(0.1)
    agent.close()  # the channel ends: the reader tells every waiting probe
    waiting.join(5)
    assert not waiting.is_alive()
    assert isinstance(result[0], EngineError) and "probe agent on h ended" in str(result[0])
    with pytest.raises(EngineError, match="ended"):
        agent.call({"op": "tcp", "ns": {}}, 1.0)


def test_an_early_start_that_breaks_is_no_agent_and_never_raises() -> None:
    def refused(argv: object) -> object:
        raise EngineError("all exec slots busy")

    def broken(argv: object) -> object:
        raise OSError("the connection went away")

    for opener in (refused, broken):
        assert ProbeAgent.start_soon(opener, "h1").result(timeout=5) is None


def test_closing_an_engine_never_waits_for_an_agent_still_starting() -> None:
    """An agent started as the engine connected and never used is closed once it is up,
    and closing the engine does not wait for that."""
    from concurrent.futures import Future

    from provisioner.engine.docker_base import DockerConnection

    class _Agent:
        closed = False

        def close(self) -> None:
            self.closed = True

    starting: Future[Any] = Future()
    conn = DockerConnection(url="tcp://127.0.0.1:9", agent_starting=starting)
    t0 = time.monotonic()
    conn.close()
    assert time.monotonic() - t0 < 1.0
    agent = _Agent()
    starting.set_result(agent)  # it comes up after the engine closed: closed at once
    assert agent.closed
