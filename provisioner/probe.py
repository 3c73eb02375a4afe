"""The probe: a throwaway container from labup's small image, for checks that need tools
(nc, wget, sh, stat) the target image may lack.

``run_probe(client, argv, network_mode="container:lab5-web")`` joins the target's network
namespace; ``network_mode="host"`` puts it on the engine host's network (how "from the host"
works on a remote engine); ``mounts`` lets it read a volume. The image, ``labup/probe:1``, is
built locally FROM scratch with the host's static busybox (no registry needed; over SSH the
binary travels in the build context); without a host busybox it falls back to pulling
``busybox`` and tagging it. ``DockerEngine.run_probe`` delegates here.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tarfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labspec.errors import EngineError
from provisioner.engine import CommandResult
from provisioner.labels import KIND, MANAGED, RESOURCE

PROBE_IMAGE = "labup/probe:1"
PROBE_PULL_FALLBACK = "busybox:1.36"
PROBE_LABELS = {MANAGED: "true", KIND: "probe", RESOURCE: "probe"}
DEFAULT_TIMEOUT = 60.0
TIMED_OUT = 124

_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/etc"]
RUN ["/bin/sh", "-c", "echo 'root:x:0:0:root:/:/bin/sh' > /etc/passwd"]
RUN ["/bin/sh", "-c", "echo 'root:x:0:' > /etc/group"]
LABEL org.opencontainers.image.title="labup probe"
CMD ["/bin/sh"]
"""

_lock = threading.Lock()
_ready: weakref.WeakSet[Any] = weakref.WeakSet()  # clients known to hold the probe image


def host_busybox() -> Path | None:
    """The host's static busybox (Debian's busybox-static), if installed."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("busybox")
    return Path(found) if found else None


def _build_context(busybox: Path) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(_DOCKERFILE)
        tar.addfile(info, io.BytesIO(_DOCKERFILE))
        tar.add(str(busybox), arcname="busybox")
    buf.seek(0)
    return buf


def ensure_probe_image(client: Any) -> str:
    """Make sure the probe image is on the engine behind ``client``; return its reference."""
    import docker

    with _lock:
        if client in _ready:
            return PROBE_IMAGE
        try:
            client.images.get(PROBE_IMAGE)
        except docker.errors.ImageNotFound:
            _provide(client)
        except docker.errors.APIError as e:
            raise EngineError(f"cannot look up the probe image: {e}", resource=PROBE_IMAGE) from e
        _ready.add(client)
    return PROBE_IMAGE


def _provide(client: Any) -> None:
    import docker

    busybox = host_busybox()
    try:
        if busybox is not None:
            client.images.build(
                fileobj=_build_context(busybox),
                custom_context=True,
                tag=PROBE_IMAGE,
                labels=PROBE_LABELS,
                rm=True,
                forcerm=True,
            )
            return
        image = client.images.pull(PROBE_PULL_FALLBACK)
        image.tag(PROBE_IMAGE)
    except (docker.errors.BuildError, docker.errors.APIError) as e:
        raise EngineError(
            f"cannot provide the probe image: {e}",
            resource=PROBE_IMAGE,
            hint="install busybox-static on this machine (apt-get install busybox-static)",
        ) from e


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
        raise EngineError(f"cannot create a probe: {_explain(e)}", resource=network_mode) from e
    try:
        try:
            container.start()
        except docker.errors.APIError as e:
            raise EngineError(f"cannot start a probe: {_explain(e)}", resource=network_mode) from e
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
            raise EngineError(f"cannot remove probe {container.id[:12]}: {_explain(e)}") from e


def _explain(err: Any) -> str:
    explanation = getattr(err, "explanation", None)
    return str(explanation or err)
