"""Shared fixtures: the real Docker engine and a tiny locally built test image.

Integration tests are marked ``docker`` (and ``ssh``/``fleet``). Without an engine they
skip with the reason, except when LABUP_REQUIRE_ENGINE=1 (CI), where they fail: CI can
never pass by skipping.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The SSH classroom fixtures (scripts/testhosts.sh hosts) live in tests/classroom.py, the test
# swarm's (scripts/testswarm.sh) in tests/swarm.py.
pytest_plugins = ["classroom", "swarm"]

TEST_IMAGE = "labup-test/busybox:latest"
REQUIRE_ENGINE = os.environ.get("LABUP_REQUIRE_ENGINE") == "1"

_BUSYBOX_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/root", "/etc", "/var/www"]
RUN ["/bin/sh", "-c", "echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd \\
 && echo 'nobody:x:65534:65534:nobody:/:/bin/false' >> /etc/passwd \\
 && echo 'root:x:0:' > /etc/group && echo 'nogroup:x:65534:' >> /etc/group && chmod 1777 /tmp"]
CMD ["/bin/sh"]
"""


def find_busybox() -> Path | None:
    """The host's static busybox (Debian's busybox-static), used to build test images."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("busybox")
    return Path(found) if found else None


def build_busybox_image(client: Any, tag: str) -> None:
    """Build a ~2 MB image FROM scratch with busybox, through the API (no CLI needed)."""
    busybox = find_busybox()
    if busybox is None:
        pytest.fail("busybox-static is not installed: run scripts/engine.sh (it installs it)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(_BUSYBOX_DOCKERFILE)
        tar.addfile(info, io.BytesIO(_BUSYBOX_DOCKERFILE))
        tar.add(str(busybox), arcname="busybox")
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, forcerm=True)


def _engine_client() -> Any | None:
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception:  # any failure means "no engine": decided once, reported below
        return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client for the local engine; skip (or fail in CI) when none answers."""
    client = _engine_client()
    if client is None:
        message = "no Docker engine answers (run scripts/engine.sh)"
        if REQUIRE_ENGINE:
            pytest.fail(message + " and LABUP_REQUIRE_ENGINE=1")
        pytest.skip(message)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(docker_client: Any) -> str:
    """``labup-test/busybox:latest``, built once per session when missing."""
    import docker

    try:
        docker_client.images.get(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        build_busybox_image(docker_client, TEST_IMAGE)
    return TEST_IMAGE


@pytest.fixture
def unique() -> str:
    """A short unique token for resource names, so tests never collide or reuse stuck names."""
    return uuid.uuid4().hex[:8]
