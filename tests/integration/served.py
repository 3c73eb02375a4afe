"""``labup serve`` as a user starts it: a real process, its address read from its terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABUP = Path(sys.executable).parent / "labup"
ADDRESS = re.compile(r"^dashboard: (http://\S+?/)(?:\?token=(\S+))?$")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str  # http://127.0.0.1:PORT/
    token: str | None
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def state(self) -> dict[str, Any]:
        """The dashboard's state document (GET /api/state, with the token when it has one)."""
        request = urllib.request.Request(self.url + "api/state")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=10) as answer:
            doc: dict[str, Any] = json.load(answer)
            return doc

    def learner(self, host: str) -> dict[str, Any]:
        return next(lr for lr in self.state()["learners"] if lr["host"] == host)


@contextmanager
def served(args: Sequence[str], *, prefix: Sequence[str] = (),
           timeout: float = 60.0) -> Iterator[Served]:
    """``labup serve ARGS`` (after ``prefix``, e.g. nsenter), until it printed its address;
    stopped with SIGTERM afterwards (the job in progress finishes), killed if it hangs."""
    cmd = [*prefix, str(LABUP), "serve", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    lines: list[str] = []
    found: list[tuple[str, str | None]] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            match = ADDRESS.match(line.strip())
            if match and not found:
                found.append((match.group(1), match.group(2)))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(timeout)
        if not found:
            raise AssertionError(f"labup serve printed no address: {''.join(lines)[-2000:]}")
        url, token = found[0]
        yield Served(proc, url, token, lines)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        reader.join(5)


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | None = None, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: (status, headers, body), errors included (no redirect followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wait_until(what: Any, *, timeout: float = 60.0, every: float = 0.3, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = what()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s: {message} (last: {last!r})")
