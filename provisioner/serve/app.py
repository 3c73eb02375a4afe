"""The dashboard's web app (Starlette): the page, its event stream, its actions, the report.

| method and path | what |
| --- | --- |
| ``GET /`` | the page (``static/index.html``, its CSRF token in a ``<meta>``) |
| ``GET /static/NAME`` | the page's script and style sheet, shipped in the package |
| ``GET /api/state`` | the whole class as one JSON document (what the stream starts with) |
| ``GET /events`` | server-sent events: ``snapshot``, then ``learner``, ``round``, ``history``, |
| | ``notice`` as they happen |
| ``POST /api/recheck`` | ``{}``: a round of the whole class now; ``{"host": H}``: one learner |
| ``POST /api/reset`` | ``{"host": H}``: reset that learner's lab, then check it |
| ``GET /report.html``, ``.csv``, ``.json`` | the class report of the last results |

Every request passes the :class:`GuardMiddleware` first (``Host``, token, CSRF, headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from provisioner.serve.rounds import Job, Worker
from provisioner.serve.security import HEADERS, Guard
from provisioner.serve.state import ClassState

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".png": "image/png", ".svg": "image/svg+xml"}
MAX_STREAMS = 32  # open event streams at once
MAX_PENDING = 1000  # events queued for one slow stream before it is closed (it reconnects)
KEEPALIVE = 15.0  # seconds between comments on an idle stream
MAX_BODY = 4096

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def sse(kind: str, document: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(document, separators=(',', ':'))}\n\n"


class Stream:
    """One open event stream: events offered from any thread, read in the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: deque[str] = deque()
        self.ready = asyncio.Event()
        self.ended = False

    def offer(self, text: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody listens
            self.loop.call_soon_threadsafe(self._put, text)

    def end(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._end)

    def _put(self, text: str) -> None:
        if len(self.items) >= MAX_PENDING:
            self.ended = True  # too slow: close it; the page reconnects to a fresh snapshot
        else:
            self.items.append(text)
        self.ready.set()

    def _end(self) -> None:
        self.ended = True
        self.ready.set()


class Hub:
    """The state's changes, fanned out to every open event stream."""

    def __init__(self, state: ClassState) -> None:
        self._state = state
        self._streams: set[Stream] = set()
        self._lock = threading.Lock()
        self.closed = False
        state.listen(self.publish)

    def publish(self, kind: str, document: dict[str, Any]) -> None:
        text = sse(kind, document)
        with self._lock:
            for s in self._streams:
                s.offer(text)

    def open(self) -> tuple[Stream, dict[str, Any]] | None:
        """A new stream and the snapshot it starts from (None: too many streams open)."""
        loop = asyncio.get_running_loop()
        with self._state.lock:  # no change can slip between the snapshot and the stream
            with self._lock:
                if self.closed or len(self._streams) >= MAX_STREAMS:
                    return None
                stream = Stream(loop)
                self._streams.add(stream)
            return stream, self._state.snapshot()

    def drop(self, stream: Stream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        with self._lock:
            self.closed = True
            for s in self._streams:
                s.end()


class GuardMiddleware:
    """Host, token and CSRF checks before any route; security headers on every answer."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        guard = self.guard
        method = scope.get("method", "GET")
        if not guard.host_ok(headers.get("host")):
            await _plain(send, 421, "labup serve: this dashboard is not served under that name")
            return
        authorised, from_query = guard.token_in(headers, scope.get("query_string", b"").decode(
            "latin-1"))
        if not authorised:
            await _plain(send, 401, "labup serve: this dashboard needs its token: open the "
                                    "address `labup serve` printed in its terminal")
            return
        if method not in ("GET", "HEAD", "POST"):
            await _plain(send, 405, "labup serve: method not allowed")
            return
        if method == "POST" and not (guard.csrf_ok(headers) and guard.origin_ok(headers)):
            await _plain(send, 403, "labup serve: refused (missing or wrong CSRF token)")
            return
        extra: list[tuple[bytes, bytes]] = []
        if from_query:
            extra.append((b"set-cookie", guard.set_cookie().encode()))
            if method == "GET" and scope.get("path") == "/":  # drop the token from the address
                await _plain(send, 303, "", [(b"location", b"/"), *extra])
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_HEADERS = [(k.encode(), v.encode()) for k, v in HEADERS]


async def _plain(send: Send, status: int, text: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode() if text else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            *_HEADERS, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for path in STATIC.iterdir():
        kind = STATIC_TYPES.get(path.suffix)
        if kind is not None and path.is_file():
            files[path.name] = (path.read_bytes(), kind)
    return files


def make_app(state: ClassState, worker: Worker, guard: Guard, hub: Hub) -> ASGIApp:
    """The dashboard as an ASGI app (wrapped in its guard)."""
    static = load_static()
    page = (STATIC / "index.html").read_text(encoding="utf-8").replace("__CSRF__", guard.csrf)
    safe_key = re.sub(r"[^A-Za-z0-9._-]", "_", state.lab_key)

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def static_file(request: Request) -> Response:
        found = static.get(str(request.path_params["name"]))
        if found is None:
            return Response("not found\n", 404, media_type="text/plain")
        return Response(found[0], media_type=found[1])

    async def api_state(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def events(request: Request) -> Response:
        opened = hub.open()
        if opened is None:
            return Response("too many open dashboards\n", 503, media_type="text/plain")
        stream, snapshot = opened

        async def body() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n" + sse("snapshot", snapshot)
                while not stream.ended:
                    try:
                        await asyncio.wait_for(stream.ready.wait(), KEEPALIVE)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    stream.ready.clear()
                    items = list(stream.items)
                    stream.items.clear()
                    if items:
                        yield "".join(items)
            finally:
                hub.drop(stream)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"x-accel-buffering": "no"})

    async def recheck(request: Request) -> Response:
        host, error = await _host_of(request, required=False)
        if error is not None:
            return error
        try:
            queued = worker.request(Job("round") if host is None else Job("check", host))
        except KeyError:
            return JSONResponse({"error": "no such learner"}, 404)
        return JSONResponse({"queued": queued}, 202)

    async def reset(request: Request) -> Response:
        host, error = await _host_of(request, required=True)
        if error is not None:
            return error
        assert host is not None
        try:
            queued = worker.request(Job("reset", host))
        except KeyError:
            return JSONResponse({"error": "no such learner"}, 404)
        return JSONResponse({"queued": queued}, 202)

    async def report(request: Request) -> Response:
        fmt = str(request.path_params["fmt"])
        media = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
                 "json": "application/json"}
        if fmt not in media:
            return Response("not found\n", 404, media_type="text/plain")
        the_report = state.report()
        text = {"html": the_report.to_html, "csv": the_report.to_csv,
                "json": the_report.to_json}[fmt]()
        name = f"{safe_key}-class-report.{fmt}"
        return Response(text, media_type=media[fmt],
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    app = Starlette(routes=[
        Route("/", index),
        Route("/static/{name}", static_file),
        Route("/api/state", api_state),
        Route("/events", events),
        Route("/api/recheck", recheck, methods=["POST"]),
        Route("/api/reset", reset, methods=["POST"]),
        Route("/report.{fmt}", report),
    ])
    return GuardMiddleware(app, guard)


async def _host_of(request: Request, *, required: bool) -> tuple[str | None, Response | None]:
    """The ``host`` a POST names (its JSON body), or the answer that refuses it."""
    length = request.headers.get("content-length") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        return None, JSONResponse({"error": "body too large"}, 413)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return None, JSONResponse({"error": "body too large"}, 413)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None, JSONResponse({"error": "expected a JSON object"}, 400)
    if not isinstance(body, dict):
        return None, JSONResponse({"error": "expected a JSON object"}, 400)
    host = body.get("host")
    if host is None and not required:
        return None, None
    if not isinstance(host, str) or not host:
        return None, JSONResponse({"error": "name the learner's host"}, 400)
    return host, None
