"""``labup serve LAB -i INVENTORY``: the instructor's live class dashboard in a browser.

Parses, builds the :class:`~provisioner.serve.server.ServeOptions` and calls ``serve``. The
web stack (Starlette, uvicorn) and :mod:`provisioner.serve` are imported only here, inside
the command, never when ``labup`` starts (a test proves it).
"""

from __future__ import annotations

import typer

from labspec.errors import UserInputError
from provisioner.cli import options as opt
from provisioner.cli.check import CHECK_JOBS

PORT = typer.Option(8765, "--port", "-p", min=0, max=65535,
                    help="Port to listen on (0: any free port; the address is printed).")
EVERY = typer.Option("20s", "--every",
                     help="Re-check the class this often (e.g. 20s, 1m; 0: only on demand).")
BIND = typer.Option(
    None, "--bind", metavar="ADDRESS",
    help="Listen on this IP address instead of 127.0.0.1; a token is then generated, shown "
    "once, and asked on every request.",
)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        parallel: int | None = opt.PARALLEL,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        port: int = PORT,
        every: str = EVERY,
        bind: str | None = BIND,
        check_jobs: int = CHECK_JOBS,
    ) -> None:
        """Serve a live dashboard of the class: who passes what, re-check, reset, reports.

        Re-checks every learner's machine on a schedule (--every) and on demand, and pushes
        each result to the page as it comes. Listens on 127.0.0.1 unless --bind."""
        from labspec.units import parse_duration
        from provisioner.catalog.lab_source import LabSource
        from provisioner.cli.run import choose
        from provisioner.serve.security import bind_address
        from provisioner.serve.server import ServeOptions, serve

        try:  # a plain number is seconds (0: only on demand)
            seconds = parse_duration(float(every) if _number(every) else every)
        except ValueError as e:
            raise UserInputError(f"--every {every!r}: {e}") from None
        if 0 < seconds < 1:
            raise UserInputError(f"--every {every!r}: at least 1s (or 0: only on demand)")
        address = bind_address(bind)
        where = opt.where(host, inventory, limit, False, parallel)
        source = LabSource.resolve(lab, sets=sets, instance=instance, allow_unsafe=allow_unsafe,
                                   workspace=where.inventory is None)
        targets = choose(where, f"serve {lab}", source)
        if targets is None:  # only --only-failed says nothing to do, and serve has none
            return
        serve(ServeOptions(source, targets, address, port, seconds, check_jobs))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
