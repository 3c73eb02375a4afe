"""The far side of labup's network probes on an engine over SSH.

A check "from" a container, or "from the host", on a remote engine needs a vantage point on
that machine. Instead of a probe container per network namespace (a create, a start and an
exec each, over the connection), labup starts one ``python3`` on the engine's host, through
the same SSH connection, for the whole check run, and sends it the probes as JSON lines; it
answers each on its own thread with the in-process probes of :mod:`provisioner.checks.netns`
(the very same code, so a cause reads the same here and there).

The program is this module with ``netns.py``'s source in place of its import line (see
:func:`source`); it needs only the standard library (Python 3.9 or later) and root on that
host (entering a network namespace needs it). Its first line says whether it can work there;
where it cannot (no python3, not root, a namespace it may not enter) the sidecars do the work.

Requests: ``{"id": 1, "op": "open" | "tcp" | "ping" | "http", "ns": NS, ...}`` where ``NS`` is
``{"pid", "cid", "hosts", "resolv"}`` from a container's inspect data (that container's
namespace, verified as labup does locally: the process's cgroup must name the container), or
``{"host": true, "pid", "cid", "gateways"}``: the engine host's network as that container has
it (:func:`~provisioner.checks.netns.host_of`). Answers carry
the same ``id``: ``{"open": true}``, ``{"ok": [bool, why]}``, ``{"http": [status, reason,
headers, body]}``, ``{"failed": why}``, or ``{"error": "namespace" | "unknown" | "internal",
"message": text}``. Nothing in a request is ever run
as a command: the operations are fixed and their arguments are data. It reads until its
standard input ends (labup closed the channel, or the connection went away) and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any

from provisioner.checks.netns import (  # netns.py's source stands here when shipped
    HttpFailed,
    NamespaceError,
    Netns,
    _usable_here,
    enter,
    host_of,
)

PROTOCOL = 1
_IMPORT_LINE = "from provisioner.checks.netns import (  # netns.py's source stands here"


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer the requests on ``inp`` until it ends (see the module docstring)."""
    lock = threading.Lock()
    opened: dict[str, Netns | None] = {}

    def send(doc: dict[str, Any]) -> None:
        line = json.dumps(doc).encode() + b"\n"
        with lock:
            out.write(line)
            out.flush()

    def namespace(doc: dict[str, Any]) -> Netns | None:
        pid, cid = int(doc.get("pid") or 0), str(doc.get("cid") or "")
        key = f"{'host of ' if doc.get('host') else ''}{cid}@{pid}"
        with lock:
            if key in opened:
                return opened[key]
        if doc.get("host"):
            ns = host_of(pid, cid, [str(g) for g in doc.get("gateways") or []])
        else:
            ns = enter(pid, cid, str(doc.get("hosts") or ""), str(doc.get("resolv") or ""))
        with lock:
            opened[key] = ns
        return ns

    def answer(req: dict[str, Any]) -> None:
        rid = req.get("id")
        op = req.get("op")
        if op not in ("open", "tcp", "ping", "http"):
            send({"id": rid, "error": "unknown", "message": f"no operation {op!r}"})
            return
        try:
            ns = namespace(dict(req.get("ns") or {}))
            if op == "open":
                send({"id": rid, "open": ns is not None})
                return
            if ns is None:
                send({"id": rid, "error": "namespace",
                      "message": "cannot enter the container's network namespace"})
                return
            timeout = float(req.get("timeout") or 5.0)
            if op == "tcp":
                send({"id": rid, "ok": list(ns.tcp(str(req["address"]), int(req["port"]),
                                                    timeout))})
            elif op == "ping":
                send({"id": rid, "ok": list(ns.ping(str(req["address"]), timeout))})
            else:
                try:
                    got = ns.http(str(req["method"]), str(req["address"]), int(req["port"]),
                                  str(req["path"]), str(req.get("data") or ""), timeout)
                except HttpFailed as e:
                    send({"id": rid, "failed": str(e)})
                    return
                send({"id": rid, "http": list(got)})
        except NamespaceError as e:
            send({"id": rid, "error": "namespace", "message": str(e)})
        except Exception as e:  # reported to labup, which fails that check with it
            send({"id": rid, "error": "internal", "message": f"{type(e).__name__}: {e}"})

    send({"hello": PROTOCOL, "usable": _usable_here(), "uid": os.geteuid(),
          "python": list(sys.version_info[:2])})
    for line in inp:
        try:
            req = json.loads(line)
        except ValueError:
            continue
        if isinstance(req, dict):
            threading.Thread(target=answer, args=(req,), daemon=True).start()


def source() -> str:
    """The program labup runs on the far side: netns.py, then this module without its import
    of netns (one ``from __future__`` line, first, as Python wants it)."""
    here = Path(__file__).with_name("netns_agent.py").read_text(encoding="utf-8")
    netns = Path(__file__).with_name("netns.py").read_text(encoding="utf-8")
    head, sep, tail = here.partition(_IMPORT_LINE)
    if not sep:
        raise RuntimeError("netns_agent.py lost its import line")  # pragma: no cover
    tail = tail.split(")\n", 1)[1]
    future = "from __future__ import annotations\n"
    body = (netns + head.replace(future, "") + tail).replace(future, "")
    return future + body


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
    os._exit(0)  # probes still running end with the process
