"""``labup serve``: bind the socket, print the address (and the token, once), run the worker
and the web server until Ctrl-C or SIGTERM, then let the job in progress finish (exit 0)."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple, TextIO

from labspec.errors import UserInputError
from provisioner.catalog.lab_source import LabSource
from provisioner.serve.security import Guard, host_port, is_loopback
from provisioner.targets.runner import Connector
from provisioner.targets.select import Targets


class ServeOptions(NamedTuple):
    source: LabSource
    targets: Targets
    bind: str = "127.0.0.1"  # an IP address (security.bind_address)
    port: int = 8765  # 0: any free port
    every: float = 20.0  # seconds between rounds; 0: only on demand
    check_jobs: int = 16


def listen(address: str, port: int) -> socket.socket:
    """The listening socket, bound now so a port in use is one clear error."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as e:
        sock.close()
        raise UserInputError(
            f"cannot listen on {host_port(address, port)}: {e.strerror or e}",
            hint="choose another --port (0: any free one)" if port else None,
        ) from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(opts: ServeOptions, *, out: TextIO | None = None,
          connector: Connector | None = None) -> None:
    """Serve the dashboard until interrupted."""
    import uvicorn

    from provisioner.serve.app import Hub, make_app
    from provisioner.serve.rounds import Worker
    from provisioner.serve.state import ClassState

    stream = out or sys.stdout
    lab = opts.source.load(opts.targets.first.template_host())
    sock = listen(opts.bind, opts.port)
    port = sock.getsockname()[1]
    guard = Guard.make(opts.bind, port)
    learners = [(t.name, t.learner) for t in opts.targets.items]
    state = ClassState(lab.key, lab.title, lab.checks, learners, every=opts.every)
    hub = Hub(state)
    worker = Worker(state, opts.targets, opts.source, every=opts.every,
                    check_jobs=opts.check_jobs, connector=connector)
    app = make_app(state, worker, guard, hub)

    where = f"http://{host_port(opts.bind, port)}/"
    every = f"a round every {opts.every:g}s" if opts.every > 0 else "rounds on demand only"
    print(f"labup serve: {lab.key} ({lab.title}), {len(learners)} learner(s), {every}",
          file=stream)
    if guard.token is None:
        print(f"dashboard: {where}", file=stream)
    else:
        print(f"dashboard: {where}?token={guard.token}", file=stream)
        print("  (the token is shown only now: anyone who has it can reset labs; "
              "it is asked on every request)", file=stream)
    if not is_loopback(opts.bind):
        print(f"  listening on {opts.bind}, not only this machine", file=stream)
    print("Ctrl-C stops it", file=stream, flush=True)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            hub.close()  # open event streams end, so the server stops at once
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """Ctrl-C and SIGTERM stop the server (uvicorn's own would raise the signal
            again afterwards, killing the process before the worker has stopped)."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {s: signal.signal(s, self.handle_exit)
                        for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            timeout_graceful_shutdown=3, lifespan="off", ws="none")
    server = Server(config)
    worker.start()
    try:
        server.run(sockets=[sock])
    finally:
        hub.close()
        print("labup serve: stopping (the job in progress finishes first)", file=stream,
              flush=True)
        worker.stop()
        sock.close()
