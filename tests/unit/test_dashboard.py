"""The dashboard without a browser or a network: the class state, the guard (token, CSRF,
Host), the web app called as ASGI, the worker's queue on fake engines, and that nothing of
the web stack is imported unless `labup serve` runs. The real proofs (SSH classroom,
chromium, a token in a network namespace) are in tests/integration/test_dashboard_*.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine

from labspec.model import Check
from provisioner.catalog.lab_source import LabSource
from provisioner.checks.results import CheckResult, CheckRun
from provisioner.serve.app import Hub, make_app, sse
from provisioner.serve.rounds import Job, Worker
from provisioner.serve.security import Guard, bind_address, host_port
from provisioner.serve.state import ClassState, ContainerView, Observed
from provisioner.targets.outcome import Done, HostOutcome
from provisioner.targets.select import Targets
from provisioner.targets.target import Target

HOSTILE = "<script>alert(1)</script>"


# -- start-up stays light ----------------------------------------------------------------------

WEB = ("starlette", "uvicorn", "anyio", "h11", "click")
PROBE = """
import sys
from provisioner.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
web = sorted(m for m in sys.modules
             if m.split('.')[0] in {roots!r} or m.startswith('provisioner.serve'))
print(json.dumps(web))
"""


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"],
                                  ["validate", "examples/webapp/lab.yaml"]])
def test_labup_starts_without_importing_the_web_stack(argv: list[str]) -> None:
    repo = Path(__file__).resolve().parents[2]
    code = "import json\n" + PROBE.format(roots=set(WEB))
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                            text=True, check=False, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


# -- the class state -----------------------------------------------------------------------------


def _checks() -> list[Check]:
    return [Check("up", "container", {}, description="web runs", stage="env"),
            Check("greet", "exec", {}, description="greets", points=2.0)]


def _run(host: str, up: str, greet: str, message: str = "") -> CheckRun:
    results = [
        CheckResult("up", "container", "env", up, "running", points=1.0,  # type: ignore[arg-type]
                    earned=1.0 if up == "pass" else 0.0),
        CheckResult("greet", "exec", "task", greet, message or f"greet {greet}",  # type: ignore[arg-type]
                    hint="echo hello", points=2.0, earned=2.0 if greet == "pass" else 0.0),
    ]
    return CheckRun("lab1", "Lab", host, "default", "2026-01-01T00:00:00Z", results=results)


def _graded(host: str, up: str = "pass", greet: str = "fail", message: str = "",
            seconds: float = 0.5) -> HostOutcome:
    seen = Observed(_run(host, up, greet, message),
                    (ContainerView("web", "running", None, "Up 3 seconds"),))
    return HostOutcome(host, "ok", seconds, "done", "ok", Done(seen, "ok"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _state(clock: Callable[[], float] | None = None) -> tuple[ClassState, list[tuple[str, Any]]]:
    state = ClassState("lab1", "Lab", _checks(), [("h1", "alice"), ("h2", "bob")],
                       every=20.0, clock=clock or time.time)
    events: list[tuple[str, Any]] = []
    state.listen(lambda kind, doc: events.append((kind, doc)))
    return state, events


def test_a_learner_is_graded_and_remembers_when_each_check_first_passed() -> None:
    clock = Clock()
    state, events = _state(clock)
    state.record(_graded("h1"))
    clock.now = 1010.0
    state.record(_graded("h1", greet="pass"))
    clock.now = 1020.0
    state.record(_graded("h1", greet="fail"))  # failing again keeps the first pass
    doc = state.learners["h1"].as_dict()
    assert doc["status"] == "graded" and doc["checked_at"] == 1020.0
    assert doc["first_passed"] == {"up": 1000.0, "greet": 1010.0}
    assert doc["checks"]["greet"] == {"status": "fail", "message": "greet fail",
                                      "hint": "echo hello", "earned": 0.0, "points": 2.0,
                                      "first_passed": 1010.0}
    assert (doc["score"], doc["total"], doc["percent"], doc["all_pass"]) == (1, 3, 33.3, False)
    assert doc["containers"] == [{"name": "web", "state": "running", "health": None,
                                  "status": "Up 3 seconds"}]
    assert [k for k, _ in events] == ["learner"] * 3
    state.forget_passes("h1")  # a reset: the learner starts again
    assert state.learners["h1"].first_passed == {}


def test_an_unreachable_host_is_shown_as_such_with_no_old_results() -> None:
    state, events = _state()
    state.record(_graded("h1", greet="pass"))
    state.record(HostOutcome("h1", "unreachable", 0.1, "connecting",
                             "[root@10.0.0.1:22] cannot reach the SSH server\nmore"))
    doc = events[-1][1]
    assert (doc["status"], doc["error"]) == ("unreachable",
                                            "[root@10.0.0.1:22] cannot reach the SSH server")
    assert doc["checks"] == {} and doc["containers"] == [] and not doc["all_pass"]


def test_each_round_adds_a_point_to_the_charts_and_a_long_message_is_clipped() -> None:
    state, events = _state()
    state.started("round")
    state.record(_graded("h1", greet="pass"))
    state.record(_graded("h2", message="x" * 5000))
    state.finished(full=True, seconds=1.5, next_at=2000.0)
    point = state.history[-1]
    assert (point["graded"], point["all_pass"], point["passing"]) == (
        2, 1, {"up": 2, "greet": 1})
    assert [k for k, _ in events][-2:] == ["history", "round"]
    assert events[-1][1]["count"] == 1 and events[-1][1]["next"] == 2000.0
    assert len(state.learners["h2"].as_dict()["checks"]["greet"]["message"]) == 1000


def test_the_class_report_has_every_learner_graded_or_not() -> None:
    state, _ = _state()
    state.record(_graded("h1", greet="pass"))
    report = state.report()
    rows = {r.learner: r for r in report.rows}
    assert rows["alice"].status == "graded" and rows["alice"].score == 3
    assert rows["bob"].status == "failed" and rows["bob"].error == "not checked yet"
    assert [c.id for c in report.columns] == ["up", "greet"]


def test_a_learner_document_holds_what_the_page_shows_and_no_more() -> None:
    state, _ = _state()
    state.record(_graded("h1"))
    doc = state.snapshot()
    assert set(doc) == {"version", "lab", "checks", "learners", "round", "history"}
    assert set(doc["learners"][0]) == {
        "host", "learner", "status", "busy", "error", "note", "checked_at", "seconds",
        "score", "total", "percent", "all_pass", "checks", "first_passed", "containers"}
    assert "ssh://" not in json.dumps(doc)  # no URL, no key path, no var, no environment


# -- the guard -----------------------------------------------------------------------------------


def test_loopback_asks_no_token_but_checks_the_host_name() -> None:
    guard = Guard.make("127.0.0.1", 8765)
    assert guard.token is None
    assert guard.token_in({}, "") == (True, False)
    assert guard.host_ok("127.0.0.1:8765") and guard.host_ok("localhost:8765")
    assert not guard.host_ok("evil.example:8765") and not guard.host_ok(None)
    assert not guard.host_ok("127.0.0.1:9999")


def test_another_address_asks_for_the_token_as_cookie_bearer_or_query() -> None:
    guard = Guard.make("192.0.2.7", 8765)
    token = guard.token
    assert token is not None and len(token) >= 32
    assert guard.token_in({}, "") == (False, False)
    assert guard.token_in({"authorization": f"Bearer {token}"}, "") == (True, False)
    assert guard.token_in({"cookie": f"other=1; {guard.cookie}={token}"}, "") == (True, False)
    assert guard.token_in({}, f"token={token}") == (True, True)
    assert guard.token_in({}, "token=nope") == (False, False)
    assert guard.token_in({"cookie": 'bad"cookie;;='}, "") == (False, False)
    assert guard.hosts == frozenset({"192.0.2.7:8765"})
    assert "HttpOnly" in guard.set_cookie() and "SameSite=Strict" in guard.set_cookie()
    assert Guard.make("0.0.0.0", 1).hosts is None  # every address: the token guards
    assert Guard.make("::1", 80).token is None and host_port("::1", 80) == "[::1]:80"


def test_bind_takes_an_ip_address_only() -> None:
    from labspec.errors import UserInputError

    assert bind_address(None) == "127.0.0.1" and bind_address("[::1]") == "::1"
    with pytest.raises(UserInputError, match="not an IP address"):
        bind_address("classroom.example")


# -- the web app, as ASGI ------------------------------------------------------------------------


async def _call(app: Any, method: str, path: str, *, headers: dict[str, str] | None = None,
                body: bytes = b"", chunks: int = 100) -> tuple[int, dict[str, str], bytes]:
    path, _, query = path.partition("?")
    sent: list[dict[str, Any]] = []
    raw = [(k.lower().encode(), v.encode()) for k, v in
           {"host": "127.0.0.1:8765", **(headers or {})}.items()]
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": raw, "scheme": "http",
             "server": ("127.0.0.1", 8765), "client": ("127.0.0.1", 5555), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    done = asyncio.Event()
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        bodies = [m for m in sent if m["type"] == "http.response.body"]
        if len(bodies) >= chunks or (bodies and not message.get("more_body", False)):
            done.set()

    task = asyncio.ensure_future(app(scope, receive, send))
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.wait_for(task, 5)
    start = sent[0]
    heads = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], heads, b"".join(m.get("body", b"") for m in sent[1:])


def _app(guard: Guard | None = None) -> tuple[Any, ClassState, Worker]:
    state, _ = _state()
    targets = Targets(tuple(Target(n, f"ssh://root@{n}") for n in ("h1", "h2")))
    worker = Worker(state, targets, LabSource(Path("/nonexistent/lab.yaml")), every=0)
    guard = guard or Guard.make("127.0.0.1", 8765)
    return make_app(state, worker, guard, Hub(state)), state, worker


def call(app: Any, method: str, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    result: tuple[int, dict[str, str], bytes] = asyncio.run(_call(app, method, path, **kw))
    return result


def test_the_page_carries_its_csrf_token_and_strict_headers() -> None:
    guard = Guard.make("127.0.0.1", 8765)
    app, _, _ = _app(guard)
    status, heads, body = call(app, "GET", "/")
    assert status == 200 and f'content="{guard.csrf}"' in body.decode()
    assert "script-src 'self'" in heads["content-security-policy"]
    assert heads["x-frame-options"] == "DENY" and heads["referrer-policy"] == "no-referrer"
    status, heads, body = call(app, "GET", "/static/dashboard.js")
    assert status == 200 and heads["content-type"].startswith("text/javascript")
    assert b"textContent" in body and b"innerHTML" not in body
    assert call(app, "GET", "/static/..%2Fapp.py")[0] == 404
    assert call(app, "GET", "/static/nothing.js")[0] == 404


def test_actions_need_a_post_with_the_csrf_token_from_our_own_origin() -> None:
    guard = Guard.make("127.0.0.1", 8765)
    app, _, worker = _app(guard)
    ok = {"x-csrf-token": guard.csrf, "content-type": "application/json"}
    assert call(app, "POST", "/api/reset", body=b'{"host": "h1"}')[0] == 403
    assert call(app, "POST", "/api/reset", headers={**ok, "x-csrf-token": "x"},
                body=b'{"host": "h1"}')[0] == 403
    assert call(app, "POST", "/api/reset", headers={**ok, "origin": "http://evil.example"},
                body=b'{"host": "h1"}')[0] == 403
    assert call(app, "GET", "/api/reset")[0] == 405
    assert call(app, "PUT", "/api/reset", headers=ok)[0] == 405
    status, _, body = call(app, "POST", "/api/reset", headers=ok, body=b'{"host": "h1"}')
    assert (status, json.loads(body)) == (202, {"queued": True})
    status, _, body = call(app, "POST", "/api/reset", headers=ok, body=b'{"host": "h1"}')
    assert (status, json.loads(body)) == (202, {"queued": False})  # already waiting
    assert call(app, "POST", "/api/reset", headers=ok, body=b'{"host": "nope"}')[0] == 404
    assert call(app, "POST", "/api/reset", headers=ok, body=b"{}")[0] == 400
    assert call(app, "POST", "/api/reset", headers=ok, body=b"[1]")[0] == 400
    assert call(app, "POST", "/api/recheck", headers=ok, body=b"x" * 5000)[0] == 413
    assert call(app, "POST", "/api/recheck", headers=ok, body=b"{}")[0] == 202
    assert worker._queue == [Job("round"), Job("reset", "h1")]


def test_another_site_cannot_reach_the_dashboard_through_its_own_name() -> None:
    app, _, _ = _app()
    status, _, body = call(app, "GET", "/api/state", headers={"host": "evil.example:8765"})
    assert status == 421 and b"not served under that name" in body


def test_with_a_token_every_path_is_refused_without_it() -> None:
    guard = Guard.make("192.0.2.7", 8765)
    app, _, _ = _app(guard)
    host = {"host": "192.0.2.7:8765"}
    for path in ("/", "/api/state", "/events", "/report.csv", "/static/dashboard.js"):
        status, _, body = call(app, "GET", path, headers=host)
        assert status == 401 and b"needs its token" in body, path
    status, heads, _ = call(app, "GET", f"/?token={guard.token}", headers=host)
    assert status == 303 and heads["location"] == "/"
    assert heads["set-cookie"].startswith(f"{guard.cookie}={guard.token};")
    status, _, _ = call(app, "GET", "/api/state",
                        headers={**host, "cookie": f"{guard.cookie}={guard.token}"})
    assert status == 200


def test_the_event_stream_starts_with_a_snapshot_and_reports_come_in_three_formats() -> None:
    app, state, _ = _app()
    state.record(_graded("h1", message=HOSTILE))
    status, heads, body = call(app, "GET", "/events", chunks=1)
    assert status == 200 and heads["content-type"].startswith("text/event-stream")
    text = body.decode()
    assert text.startswith("retry: 2000\n\nevent: snapshot\ndata: {")
    snapshot = json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])
    assert snapshot["learners"][0]["checks"]["greet"]["message"] == HOSTILE  # raw JSON: the
    # page puts it on screen as text
    status, heads, body = call(app, "GET", "/report.html")
    assert status == 200 and "attachment" in heads["content-disposition"]
    assert HOSTILE not in body.decode() and "&lt;script&gt;" in body.decode()
    status, heads, body = call(app, "GET", "/report.csv")
    assert heads["content-disposition"] == 'attachment; filename="lab1-class-report.csv"'
    assert body.decode().splitlines()[0].startswith("learner,host,status,up,greet")
    assert json.loads(call(app, "GET", "/report.json")[2])["lab"] == "lab1"
    assert call(app, "GET", "/report.exe")[0] == 404
    assert sse("x", {"a": "b\nc"}) == 'event: x\ndata: {"a":"b\\nc"}\n\n'


# -- the worker, on fake engines -----------------------------------------------------------------

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: fakeclass
title: Fake class
containers:
  web:
    image: busybox:1.36
checks:
  - id: web-running
    container: {container: web, state: running}
"""


def _wait(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_the_worker_runs_one_job_at_a_time_and_never_queues_one_twice(tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC)
    source = LabSource(spec)
    lab = source.load()
    engines: dict[str, FakeEngine] = {}
    running = 0
    most = 0

    def connect(target: Target) -> Any:
        nonlocal running, most
        engine = engines.setdefault(target.name, FakeEngine())
        running += 1
        most = max(most, running)
        time.sleep(0.05)
        running -= 1
        return engine

    targets = Targets(tuple(Target(n, f"ssh://root@{n}") for n in ("h1", "h2")), parallel=1)
    state = ClassState(lab.key, lab.title, lab.checks, [("h1", "a"), ("h2", "b")], every=0)
    worker = Worker(state, targets, source, every=0, connector=connect)
    engines["h1"] = FakeEngine()
    engines["h1"].running("fakeclass-web")
    worker.start()
    try:
        _wait(lambda: state.round.count == 1 and not state.round.running)
        assert state.learners["h1"].all_pass
        assert state.learners["h2"].status == "graded" and not state.learners["h2"].all_pass
        assert "not up on h2" in state.learners["h2"].note
        assert state.round.next is None  # every=0: only on demand
        engines["h2"].running("fakeclass-web")
        assert worker.request(Job("check", "h2"))
        _wait(lambda: state.learners["h2"].all_pass)
        assert worker.request(Job("round"))
        _wait(lambda: state.round.count == 2 and not state.round.running)
        assert most == 1  # --parallel 1, and never two jobs at once
        with pytest.raises(KeyError):
            worker.request(Job("check", "h9"))
    finally:
        assert worker.stop(10)
