"""The checks' narrow door on a Docker engine: exec, inspections, the engine's stat, probes.

Nothing here creates or removes a lab resource (:class:`~provisioner.engine.protocol.
CheckEngine`); a check runs the same over every transport.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from labspec.errors import EngineError
from provisioner.engine.docker_base import _AGENT_WAIT, DockerConnection, _q
from provisioner.engine.protocol import ApiError, CommandResult

if TYPE_CHECKING:
    from provisioner.engine.probe_agent import ProbeAgent


class DockerChecks(DockerConnection):
    """A Docker engine as the checks see it."""

    def exec(
        self,
        container: str,
        argv: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        try:
            exec_id = self.api.exec_create(
                container,
                list(argv),
                user=user or "",
                workdir=workdir,
                environment=dict(env) if env else None,
                stdout=True,
                stderr=True,
            )["Id"]
        except Exception as e:
            raise self._fail(e, f"run {list(argv)!r}", container) from e
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["out"] = self.api.exec_start(exec_id, demux=True)
            except Exception as e:  # reported to the caller below
                box["err"] = e

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            return CommandResult(rc=124, stdout="", stderr=f"timed out after {timeout:g}s")
        if "err" in box:
            raise self._fail(box["err"], f"run {list(argv)!r}", container) from box["err"]
        out, err = box["out"] or (None, None)
        rc = self.api.exec_inspect(exec_id).get("ExitCode")
        return CommandResult(
            rc=int(rc) if rc is not None else -1,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
        )

    def _inspect(self, path: str, what: str) -> dict[str, Any] | None:
        try:
            result = self.call("GET", path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise self._fail(e, f"inspect {what}") from e
        return dict(result) if result is not None else None

    def inspect_container(self, name: str) -> dict[str, Any] | None:
        doc = self._inspect(f"/containers/{_q(name)}/json", f"container {name}")
        if doc is not None and health_is_stale(doc) and self.is_podman:
            doc = self._run_healthcheck(name) or doc
        return doc

    def _run_healthcheck(self, name: str) -> dict[str, Any] | None:
        """Podman runs healthchecks from systemd timers, so without systemd they never run
        and a container stays "starting" for ever. When its last result is older than its
        interval, run it once (libpod's own endpoint records the result) and look again."""
        path = f"/libpod/containers/{_q(name)}/healthcheck"
        if self.raw is not None:  # the plain socket sends paths as they are: version it
            path = f"/v{self.api_version}{path}"
        try:
            self.call("GET", path, timeout=self._timeout)
        except EngineError:  # not running any more, or gone: the inspection says so
            return None
        return self._inspect(f"/containers/{_q(name)}/json", f"container {name}")

    def stat_path(self, container: str, path: str) -> dict[str, Any] | None:
        try:
            if self.raw is not None:
                found = self.raw.head(f"/containers/{_q(container)}/archive", {"path": path})
                header = None if found is None else found.get("x-docker-container-path-stat")
            else:  # over SSH: the docker SDK's transport
                resp = self.api.head(
                    self.api._url("/containers/{0}/archive", container), params={"path": path}
                )
                found = None if resp.status_code == 404 else {}
                header = resp.headers.get("X-Docker-Container-Path-Stat")
        except Exception as e:
            raise self._fail(e, f"look at {path}", container) from e
        if found is None:
            return None
        if not header:
            raise EngineError(
                f"could not look at {path}: the engine sent no stat", resource=container
            )
        stat = json.loads(base64.b64decode(header))
        return dict(stat) if isinstance(stat, dict) else None

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        return self._inspect(f"/images/{_q(ref)}/json", f"image {ref}")

    def inspect_volume(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/volumes/{_q(name)}", f"volume {name}")

    def inspect_network(self, name: str) -> dict[str, Any] | None:
        return self._inspect(f"/networks/{_q(name)}", f"network {name}")

    def probe_agent(self) -> ProbeAgent | None:
        """The probe agent on the engine's SSH host, started on first use for this engine's
        life; None for a local engine, where it cannot work, or with ``LABUP_PROBES=sidecar``
        (see :mod:`provisioner.engine.probe_agent`)."""
        shell = self._ssh
        from provisioner.checks.netns import sidecars_only

        if shell is None or sidecars_only():
            return None
        with self._agent_lock:
            if self._agent is None:
                from provisioner.engine.probe_agent import ProbeAgent

                starting, self._agent_starting = self._agent_starting, None
                if starting is not None:  # connect() began it (see connect(probes=True))
                    try:
                        started = starting.result(timeout=_AGENT_WAIT)
                    except Exception:
                        started = None
                else:
                    started = ProbeAgent.start(shell.open_stream, self._host_label)
                self._agent = started if started is not None else False
            return self._agent or None

    def run_probe(
        self,
        argv: Sequence[str],
        *,
        network_mode: str | None = None,
        mounts: Sequence[Mapping[str, Any]] = (),
        timeout: float | None = None,
    ) -> CommandResult:
        from provisioner.engine.probe import run_probe

        result: CommandResult = run_probe(
            self.sdk_client(), argv, network_mode=network_mode, mounts=mounts, timeout=timeout
        )
        return result


def health_is_stale(doc: Mapping[str, Any]) -> bool:
    """A running container with a healthcheck whose last result is older than its interval
    (or that has none yet)."""
    state = doc.get("State") or {}
    health = state.get("Health")
    check = (doc.get("Config") or {}).get("Healthcheck") or {}
    if not state.get("Running") or not isinstance(health, dict):
        return False
    if not check.get("Test") or check["Test"][:1] == ["NONE"]:
        return False
    log = health.get("Log") or []
    if not log:
        return True
    ended = _timestamp(str(log[-1].get("End") or ""))
    if ended is None:
        return True
    interval = (check.get("Interval") or 30_000_000_000) / 1e9
    return time.time() - ended >= interval


def _timestamp(text: str) -> float | None:
    """Seconds since the epoch of an engine's RFC 3339 time (nanoseconds allowed)."""
    import datetime

    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
