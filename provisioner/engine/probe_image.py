"""The probe image, ``labup/probe:2``: busybox FROM scratch, built on the engine from this
machine's static busybox (no registry needed; over SSH the binary travels in the build
context); without a host busybox it falls back to pulling ``busybox`` and tagging it. The image
and the probe containers carry ``labup.kind=probe`` but not ``labup.managed``: they belong to
no lab.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import threading
import weakref
from pathlib import Path
from typing import Any

from labspec.errors import EngineError
from provisioner.engine.labels import KIND, RESOURCE

PROBE_IMAGE = "labup/probe:2"
PROBE_PULL_FALLBACK = "busybox:1.36"
# No labup.managed: containers inherit their image's labels, and probes belong to no lab,
# so they must never show up in `labup status` or a lab's label selector.
PROBE_LABELS = {KIND: "probe", RESOURCE: "probe"}
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


def explain(err: Any) -> str:
    explanation = getattr(err, "explanation", None)
    return str(explanation or err)
