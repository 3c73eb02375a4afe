"""Probe sidecars: one reusable probe container per (engine, network namespace).

A check run that probes the same container twenty times starts one probe container, not
twenty, and calls that arrive together share one exec (see :class:`Sidecars`).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labspec.errors import EngineError
from provisioner.engine.labels import KIND, RESOURCE
from provisioner.engine.probe_image import (
    DEFAULT_TIMEOUT,
    TIMED_OUT,
    ensure_probe_image,
    explain,
)
from provisioner.engine.protocol import CommandResult

SIDECAR_LIFETIME = 40.0  # seconds; a sidecar then exits and the engine removes it
BATCH_WINDOW = 0.02  # seconds a sidecar call waits for others to share its exec
SIDECAR_LABELS = {KIND: "probe", RESOURCE: "probe-sidecar"}


@dataclass
class _Sidecar:
    id: str
    expires: float  # time.monotonic() after which it is gone


class Sidecars:
    """Reusable probe containers, one per (engine client, network namespace).

    A sidecar runs ``sleep`` for :data:`SIDECAR_LIFETIME` seconds with ``auto_remove``, so
    it removes itself even when labup is killed; until then probes ``exec`` into it (about
    0.1 s) instead of creating, starting and removing a container each (0.3 s to seconds on
    a busy engine). A namespace is keyed by the target container's id and start time, so a
    replaced or restarted container gets a fresh sidecar. Sidecars do not carry
    ``labup.managed`` (they belong to no lab) and never hold a volume or a network endpoint
    of their own, so ``down`` is never blocked by one. At exit they are killed.
    """

    def __init__(self, lifetime: float = SIDECAR_LIFETIME) -> None:
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[int, str], threading.Lock] = {}
        self._by_client: weakref.WeakKeyDictionary[Any, dict[str, _Sidecar]] = (
            weakref.WeakKeyDictionary()
        )
        self._open: dict[str, _Batch] = {}  # sidecar id -> batch still collecting calls
        self.execs = 0  # execs run (for tests and benchmarks)
        atexit.register(self.close_all)

    def run(
        self,
        client: Any,
        argv: Sequence[str],
        *,
        network_mode: str | None,
        timeout: float | None,
    ) -> CommandResult:
        """Run argv in the sidecar of ``network_mode``. Calls that arrive for the same
        sidecar within :data:`BATCH_WINDOW` share one exec (the commands run side by side
        and each gets its own exit code and output), so 12 probes cost 1 exec, not 12."""
        limit = DEFAULT_TIMEOUT if timeout is None else timeout
        sidecar = self._get(client, network_mode, limit)
        with self._lock:
            batch = self._open.get(sidecar.id)
            leader = batch is None
            if batch is None:
                batch = _Batch()
                self._open[sidecar.id] = batch
            slot = batch.add(list(argv), limit)
        if not leader:
            slot.done.wait()
            return slot.outcome()
        time.sleep(BATCH_WINDOW)
        with self._lock:
            del self._open[sidecar.id]  # sealed: later calls open a new batch
        try:
            results = self._execute(client, sidecar, network_mode, batch.slots)
            for item, result in zip(batch.slots, results, strict=True):
                item.result = result
        except BaseException as e:  # handed to every caller of the batch, re-raised there
            for item in batch.slots:
                item.error = e
        finally:
            for item in batch.slots:
                item.done.set()
        return slot.outcome()

    def _execute(
        self, client: Any, sidecar: _Sidecar, network_mode: str | None, slots: list[_Slot]
    ) -> list[CommandResult]:
        import docker

        limit = max(item.limit for item in slots)
        boundary = f"@@labup-{uuid.uuid4().hex}@@"
        argv = slots[0].argv if len(slots) == 1 else _batch_argv([i.argv for i in slots], boundary)
        for attempt in (1, 2):
            try:
                exec_id = client.api.exec_create(sidecar.id, argv, stdout=True, stderr=True)["Id"]
            except docker.errors.APIError as e:  # the sidecar ended: start another, once
                self._forget(client, sidecar)
                if attempt == 2:
                    raise EngineError(f"cannot run a probe: {explain(e)}") from e
                sidecar = self._get(client, network_mode, limit)
                continue
            with self._lock:
                self.execs += 1
            rc, out, err = _exec_raw(client, exec_id, limit)
            if rc == TIMED_OUT and out is None:
                timed_out = CommandResult(TIMED_OUT, "", f"probe timed out after {limit:g}s")
                return [timed_out] * len(slots)
            if len(slots) == 1:
                return [CommandResult(rc, _text(out), _text(err))]
            return _split_batch(out or b"", boundary, len(slots), _text(err))
        raise AssertionError("unreachable")  # pragma: no cover

    def _namespace(self, client: Any, network_mode: str | None) -> str:
        import docker

        if not network_mode or not network_mode.startswith("container:"):
            return network_mode or "default"
        target = network_mode.split(":", 1)[1]
        try:
            data = client.api.inspect_container(target)
        except docker.errors.APIError as e:
            raise EngineError(f"cannot create a probe: {explain(e)}", resource=target) from e
        state = data.get("State") or {}
        if not state.get("Running"):
            raise EngineError(
                f"cannot create a probe: container {target} is not running", resource=target
            )
        return f"container:{data.get('Id')}@{state.get('StartedAt')}"

    def _get(self, client: Any, network_mode: str | None, limit: float) -> _Sidecar:
        key = self._namespace(client, network_mode)
        with self._lock:
            key_lock = self._key_locks.setdefault((id(client), key), threading.Lock())
        with key_lock:
            with self._lock:
                known = self._by_client.setdefault(client, {})
                sidecar = known.get(key)
            if sidecar is not None and time.monotonic() + limit + 2 < sidecar.expires:
                return sidecar
            fresh = self._start(client, network_mode)
            with self._lock:
                known[key] = fresh
            return fresh

    def _start(self, client: Any, network_mode: str | None) -> _Sidecar:
        import docker

        image = ensure_probe_image(client)
        started = time.monotonic()
        command = f"trap 'exit 0' TERM INT; sleep {self.lifetime:g} & wait"
        try:
            container = client.containers.run(
                image,
                ["sh", "-c", command],
                network_mode=network_mode,
                labels=SIDECAR_LABELS,
                detach=True,
                auto_remove=True,
            )
        except docker.errors.APIError as e:
            raise EngineError(f"cannot start a probe: {explain(e)}", resource=network_mode) from e
        return _Sidecar(str(container.id), started + self.lifetime)

    def _forget(self, client: Any, sidecar: _Sidecar) -> None:
        with self._lock:
            known = self._by_client.get(client) or {}
            for key, value in list(known.items()):
                if value is sidecar:
                    del known[key]

    def close(self, client: Any) -> None:
        """Stop the sidecars of one client now (they remove themselves)."""
        with self._lock:
            known = self._by_client.pop(client, {})
        for sidecar in known.values():
            if time.monotonic() < sidecar.expires:
                with contextlib.suppress(Exception):  # best effort: it expires on its own
                    client.api.kill(sidecar.id)

    def close_all(self) -> None:
        with self._lock:
            clients = list(self._by_client.keys())
        for client in clients:
            self.close(client)


@dataclass
class _Slot:
    argv: list[str]
    limit: float
    done: threading.Event = field(default_factory=threading.Event)
    result: CommandResult | None = None
    error: BaseException | None = None

    def outcome(self) -> CommandResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass
class _Batch:
    slots: list[_Slot] = field(default_factory=list)

    def add(self, argv: list[str], limit: float) -> _Slot:
        slot = _Slot(argv, limit)
        self.slots.append(slot)
        return slot


def _batch_argv(commands: list[list[str]], boundary: str) -> list[str]:
    """One ``sh -c`` running every command side by side, each with its own output files;
    the script refers to the commands only as positional parameters, so no input ever
    becomes shell code. It prints, per command, ``BOUNDARY RC OUTLEN ERRLEN`` then the
    raw stdout and stderr bytes."""
    lines = ["d=$(mktemp -d) || exit 125"]
    position = 2  # $1 is the boundary
    for i, argv in enumerate(commands):
        words = " ".join(f'"${{{position + k}}}"' for k in range(len(argv)))
        position += len(argv)
        lines.append(f'{{ {words} >"$d/o{i}" 2>"$d/e{i}"; echo $? >"$d/r{i}"; }} &')
    lines.append("wait")
    for i in range(len(commands)):
        lines.append(
            f'printf "%s %s %s %s\\n" "$1" "$(cat "$d/r{i}")" '
            f'$(wc -c <"$d/o{i}") $(wc -c <"$d/e{i}"); cat "$d/o{i}" "$d/e{i}"'
        )
    lines.append('rm -rf "$d"')
    flat = [word for argv in commands for word in argv]
    return ["sh", "-c", "\n".join(lines), "sh", boundary, *flat]


def _split_batch(raw: bytes, boundary: str, count: int, stderr: str) -> list[CommandResult]:
    results: list[CommandResult] = []
    rest = raw
    marker = boundary.encode()
    for _ in range(count):
        head, sep, rest = rest.partition(b"\n")
        parts = head.split()
        if not sep or len(parts) != 4 or parts[0] != marker:
            raise EngineError(f"probe batch output is garbled ({stderr.strip()[:120]!r})")
        rc, out_len, err_len = (int(p) for p in parts[1:])
        out, err, rest = (
            rest[:out_len],
            rest[out_len : out_len + err_len],
            rest[out_len + err_len :],
        )
        results.append(CommandResult(rc, _text(out), _text(err)))
    return results


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _exec_raw(client: Any, exec_id: str, limit: float) -> tuple[int, bytes | None, bytes | None]:
    """(exit code, stdout, stderr) of a created exec; (124, None, None) after ``limit``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["out"] = client.api.exec_start(exec_id, demux=True)
        except Exception as e:  # reported to the caller below
            box["err"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        return TIMED_OUT, None, None
    if "err" in box:
        raise EngineError(f"probe failed: {explain(box['err'])}") from box["err"]
    out, err = box.get("out") or (None, None)
    rc = client.api.exec_inspect(exec_id).get("ExitCode")
    return (int(rc) if rc is not None else -1), out or b"", err or b""
