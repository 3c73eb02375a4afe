"""Probes: commands run in a container of labup's small image, for checks that need tools
(nc, wget, sh, stat) the target image may lack.

``run_probe(client, argv, network_mode="container:lab5-web")`` joins the target's network
namespace; ``network_mode="host"`` puts it on the engine host's network (how "from the host"
works on a remote engine); ``mounts`` lets it read a volume. Short probes run in a sidecar
(:mod:`provisioner.engine.sidecars`), the rest in a throwaway container.
``DockerEngine.run_probe`` delegates here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from labspec.errors import EngineError
from provisioner.engine.probe_image import (
    DEFAULT_TIMEOUT,
    PROBE_LABELS,
    TIMED_OUT,
    ensure_probe_image,
    explain,
)
from provisioner.engine.protocol import CommandResult
from provisioner.engine.sidecars import SIDECAR_LIFETIME, Sidecars


def _mount(spec: Mapping[str, Any]) -> Any:
    import docker

    return docker.types.Mount(
        target=str(spec["target"]),
        source=str(spec["source"]),
        type="bind" if spec.get("type") == "bind" else "volume",
        read_only=bool(spec.get("read_only", False)),
    )


def run_probe(
    client: Any,
    argv: Sequence[str],
    *,
    network_mode: str | None = None,
    mounts: Sequence[Mapping[str, Any]] = (),
    timeout: float | None = None,
    reuse: bool = True,
) -> CommandResult:
    """Run argv in a probe on ``network_mode`` and return its exit code and output.

    Without mounts (and with ``reuse``) the command is exec'd in a short-lived probe
    *sidecar* kept for that network namespace (see :class:`Sidecars`): a check run that
    probes the same container twenty times starts one probe container, not twenty. With
    mounts, or no ``timeout`` (or one over half a sidecar's life), a throwaway probe
    container runs the command and is removed.
    """
    short = timeout is not None and timeout <= SIDECAR_LIFETIME / 2
    if mounts or not reuse or not short:
        return run_throwaway_probe(
            client, argv, network_mode=network_mode, mounts=mounts, timeout=timeout
        )
    return _SIDECARS.run(client, argv, network_mode=network_mode, timeout=timeout)


def run_throwaway_probe(
    client: Any,
    argv: Sequence[str],
    *,
    network_mode: str | None = None,
    mounts: Sequence[Mapping[str, Any]] = (),
    timeout: float | None = None,
) -> CommandResult:
    """Run argv in a throwaway probe container and return its exit code and output.

    ``mounts`` items are mappings with ``type`` (``volume`` or ``bind``), ``source``,
    ``target`` and optional ``read_only``. A probe still running after ``timeout`` seconds
    is killed and reported with exit code 124. The container is always removed.
    """
    import docker

    image = ensure_probe_image(client)
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        container = client.containers.create(
            image,
            command=list(argv),
            network_mode=network_mode,
            mounts=[_mount(m) for m in mounts] or None,
            labels=PROBE_LABELS,
            detach=True,
        )
    except docker.errors.APIError as e:
        raise EngineError(f"cannot create a probe: {explain(e)}", resource=network_mode) from e
    try:
        try:
            container.start()
        except docker.errors.APIError as e:
            raise EngineError(f"cannot start a probe: {explain(e)}", resource=network_mode) from e
        try:
            status = container.wait(timeout=limit)
            rc = int(status.get("StatusCode", -1))
        except (OSError, docker.errors.APIError):  # requests' ReadTimeout is an OSError
            rc = TIMED_OUT
            # it may have ended meanwhile; it is removed below either way
            with contextlib.suppress(docker.errors.APIError):
                container.kill()
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", errors="replace")
        if rc == TIMED_OUT:
            stderr += f"\nprobe timed out after {limit:g}s"
        return CommandResult(rc, stdout, stderr)
    finally:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            raise EngineError(f"cannot remove probe {container.id[:12]}: {explain(e)}") from e


_SIDECARS = Sidecars()


def close_sidecars(client: Any) -> None:
    """Stop the probe sidecars started through ``client`` (e.g. before closing it)."""
    _SIDECARS.close(client)
