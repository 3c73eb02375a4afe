"""Checks on a remote engine over SSH (a classroom test host): the same check types, the
probe image built over SSH, and "from the host" meaning the engine's host."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from classroom import Classroom, connect_host
from labfactory import lab_labels

from labspec.model import Check, Container, Host, Lab, Volume
from provisioner.checks import run_checks
from provisioner.engine.labels import MANAGED
from provisioner.engine.probe import close_sidecars
from provisioner.engine.probe_image import PROBE_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.ssh]

IDLE = "trap 'exit 0' TERM INT; sleep 3600 & wait"
SERVE = (
    "trap 'exit 0' TERM INT; mkdir -p /w; echo remote > /w/index.html; httpd -f -p 80 -h /w & wait"
)

CHECKS = (
    Check("web-up", "container", {"container": "web"}),
    Check("http-host", "http", {"to": "web", "port": 80, "path": "/index.html", "body": "remote"}),
    Check("http-host-404", "http", {"to": "web", "port": 80, "path": "/nope"}),
    Check("tcp-unpublished", "tcp", {"to": "client", "port": 80, "open": False}),
    Check("client-reaches-web", "reachable", {"from": "client", "to": "web", "port": 80}),
    Check(
        "client-not-81",
        "reachable",
        {"from": "client", "to": "web", "port": 81, "reachable": False},
    ),
    Check(
        "exec",
        "exec",
        {"container": "web", "command": ["cat", "/w/index.html"], "stdout": "remote"},
    ),
    Check("file-volume", "file", {"volume": "data", "path": "kept.txt", "content_regex": "kept"}),
    # the engine's stat of a path, over the SSH transport (no exec)
    Check("file-dir", "file", {"container": "web", "path": "/w", "type": "directory"}),
    Check("file-absent", "file", {"container": "web", "path": "/w/nope", "exists": False}),
)


def test_checks_run_the_same_over_ssh(classroom: Classroom, each_engine: Host) -> None:
    """On dockerd 20.10 (h1), dockerd 26 (hdocker26) and Podman 4.3 (hpodman)."""
    host = each_engine
    engine: Any = connect_host(host)
    client = engine.sdk_client()
    key = f"cks{uuid.uuid4().hex[:8]}"
    labels = {MANAGED: "true", "labup.test": key}
    made: list[Any] = []
    net = client.networks.create(f"{key}-net", labels=labels)
    volume = client.volumes.create(f"{key}-data", labels=labels)
    try:
        image = "labup-test/busybox:latest"
        for name, command, extra in (
            ("web", SERVE, {"ports": {"80/tcp": ("127.0.0.1", None)}}),
            (
                "client",
                "echo kept > /data/kept.txt; " + IDLE,
                {"volumes": {volume.name: {"bind": "/data", "mode": "rw"}}},
            ),
        ):
            made.append(
                client.containers.run(
                    image,
                    ["sh", "-c", command],
                    name=f"{key}-{name}",
                    labels={**labels, **lab_labels(key, name)},
                    network=net.name,
                    detach=True,
                    **extra,
                )
            )
        lab = Lab(
            api_version="labup/v1",
            id=None,
            name=key,
            title="ssh checks",
            description="",
            path=Path("/nonexistent/lab.yaml"),
            folder=Path("/nonexistent"),
            volumes=(Volume("data"),),
            containers=(Container("web", image=image), Container("client", image=image)),
            checks=CHECKS,
        )
        run = run_checks(engine, lab)
        got = {r.id: (r.status, r.message) for r in run.results}
        assert run.host == host.name
        assert got["http-host-404"][0] == "fail" and "-> 404" in got["http-host-404"][1]
        assert got["client-not-81"][0] == "pass" and "as expected" in got["client-not-81"][1]
        del got["http-host-404"]
        assert {k: v[0] for k, v in got.items()} == {k: "pass" for k in got}, got
        assert "GET http://127.0.0.1:" in got["http-host"][1]  # the remote host's loopback
        assert client.images.get(PROBE_IMAGE).labels.get("labup.kind") == "probe"
    finally:
        close_sidecars(client)
        for cont in made:
            cont.remove(force=True)
        net.remove()
        volume.remove(force=True)
        engine.close()
