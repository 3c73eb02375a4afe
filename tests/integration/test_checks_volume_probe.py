"""The volume persistence check across a container replacement, and the probe itself."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from labfactory import lab_labels

from labspec.errors import EngineError
from labspec.model import Check, Container, Lab, Volume
from provisioner.checks import run_checks
from provisioner.engine.connect import connect
from provisioner.engine.labels import MANAGED
from provisioner.engine.probe import close_sidecars, run_probe
from provisioner.engine.probe_image import PROBE_IMAGE, ensure_probe_image

pytestmark = pytest.mark.docker

IDLE = "trap 'exit 0' TERM INT; sleep 3600 & wait"


@pytest.fixture
def engine() -> Iterator[Any]:
    eng = connect(None)
    yield eng
    eng.close()


def _lab(key: str, checks: tuple[Check, ...]) -> Lab:
    return Lab(
        api_version="labup/v1",
        id=None,
        name=key,
        title="volume",
        description="",
        path=Path("/nonexistent/lab.yaml"),
        folder=Path("/nonexistent"),
        volumes=(Volume("data"),),
        containers=(Container("db", image="x"),),
        checks=checks,
    )


def test_volume_check_sees_data_survive_a_replaced_container(
    docker_client: Any, test_image: str, engine: Any
) -> None:
    key = f"vol{uuid.uuid4().hex[:8]}"
    labels = {MANAGED: "true", "labup.test": key}
    volume = docker_client.volumes.create(f"{key}-data", labels=labels)
    check = Check("persist", "volume", {"volume": "data", "container": "db", "path": "/data"})
    lab = _lab(key, (check,))
    mounts = {volume.name: {"bind": "/data", "mode": "rw"}}
    created: list[Any] = []
    try:
        first = docker_client.containers.run(
            test_image, ["sh", "-c", IDLE], name=f"{key}-db",
            labels={**labels, **lab_labels(key, "db")}, volumes=mounts,
            detach=True,
        )
        created.append(first)
        before = run_checks(engine, lab).results[0]
        assert before.status == "pass", before.message
        assert f"{key}-db writes /data into volume {key}-data" in before.message
        assert "survived" not in before.message

        first.remove(force=True)  # replace the container, keep the volume
        second = docker_client.containers.run(
            test_image, ["sh", "-c", IDLE], name=f"{key}-db",
            labels={**labels, **lab_labels(key, "db")}, volumes=mounts,
            detach=True,
        )
        created.append(second)
        after = run_checks(engine, lab).results[0]
        assert after.status == "pass", after.message
        assert f"earlier container ({first.id[:12]}) survived its replacement" in after.message
    finally:
        for cont in created:
            with contextlib.suppress(docker.errors.NotFound):  # the first one is gone already
                cont.remove(force=True)
        volume.remove(force=True)


def test_volume_check_fails_when_the_container_writes_outside_the_volume(
    docker_client: Any, test_image: str, engine: Any
) -> None:
    key = f"vol{uuid.uuid4().hex[:8]}"
    labels = {MANAGED: "true", "labup.test": key}
    volume = docker_client.volumes.create(f"{key}-data", labels=labels)
    lab = _lab(
        key,
        (
            Check("unmounted", "volume", {"volume": "data", "container": "db"}),
            Check("wrong-path", "volume", {"volume": "data", "container": "db", "path": "/srv"}),
            Check("no-volume", "volume", {"volume": "nope"}),
        ),
    )
    cont = docker_client.containers.run(
        test_image, ["sh", "-c", IDLE], name=f"{key}-db",
            labels={**labels, **lab_labels(key, "db")}, detach=True,
        volumes={volume.name: {"bind": "/data", "mode": "rw"}},
    )
    bare = None
    try:
        results = {r.id: r for r in run_checks(engine, lab).results}
        assert results["wrong-path"].status == "fail"
        assert f"mounts volume {key}-data at /data, not at /srv" in results["wrong-path"].message
        assert results["no-volume"].status == "fail"
        assert f"volume {key}-nope does not exist" in results["no-volume"].message
        assert results["unmounted"].status == "pass"

        cont.remove(force=True)
        bare = docker_client.containers.run(
            test_image, ["sh", "-c", IDLE], name=f"{key}-db",
            labels={**labels, **lab_labels(key, "db")}, detach=True
        )
        result = run_checks(engine, lab, only=("unmounted",)).results[0]
        assert result.status == "fail"
        assert f"{key}-db does not mount volume {key}-data" in result.message
    finally:
        cont.remove(force=True) if bare is None else bare.remove(force=True)
        volume.remove(force=True)


def test_probe_image_is_built_locally_and_labelled_as_no_labs(docker_client: Any) -> None:
    assert ensure_probe_image(docker_client) == PROBE_IMAGE
    image = docker_client.images.get(PROBE_IMAGE)
    assert image.labels.get("labup.kind") == "probe"
    assert MANAGED not in image.labels  # probes belong to no lab: never in `labup status`


def test_probe_returns_output_and_exit_code_and_leaves_nothing(docker_client: Any) -> None:
    probes = {"label": "labup.kind=probe"}
    before = {c.id for c in docker_client.containers.list(all=True, filters=probes)}
    result = run_probe(docker_client, ["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert (result.rc, result.stdout, result.stderr) == (4, "out\n", "err\n")
    after = {c.id for c in docker_client.containers.list(all=True, filters=probes)}
    assert after <= before


def test_probe_times_out_with_code_124(docker_client: Any) -> None:
    result = run_probe(docker_client, ["sleep", "30"], timeout=1)
    assert result.rc == 124
    assert "probe timed out after 1s" in result.stderr


def test_probe_reads_a_volume_read_only(docker_client: Any, test_image: str) -> None:
    name = f"probe{uuid.uuid4().hex[:8]}"
    volume = docker_client.volumes.create(name, labels={MANAGED: "true"})
    try:
        docker_client.containers.run(
            test_image, ["sh", "-c", "echo kept > /v/f"], remove=True,
            volumes={name: {"bind": "/v", "mode": "rw"}},
        )
        mount = {"type": "volume", "source": name, "target": "/m", "read_only": True}
        result = run_probe(docker_client, ["sh", "-c", "cat /m/f; echo x > /m/g"], mounts=[mount])
        assert result.stdout == "kept\n"
        assert result.rc != 0 and "Read-only file system" in result.stderr
    finally:
        volume.remove(force=True)


def test_probe_joining_a_missing_container_is_an_engine_error(docker_client: Any) -> None:
    with pytest.raises(EngineError, match=r"cannot (create|start) a probe") as info:
        run_probe(docker_client, ["true"], network_mode=f"container:nope-{uuid.uuid4().hex[:6]}")
    assert "nope-" in str(info.value)


def _sidecars_of(docker_client: Any, target_id: str) -> list[Any]:
    found = docker_client.containers.list(filters={"label": "labup.resource=probe-sidecar"})
    return [c for c in found if c.attrs["HostConfig"]["NetworkMode"] == f"container:{target_id}"]


def test_probes_share_one_sidecar_per_namespace_and_follow_a_restart(
    docker_client: Any, test_image: str
) -> None:
    serve = "trap 'exit 0' TERM INT; httpd -f -p 80 -h / & wait"
    target = docker_client.containers.run(
        test_image, ["sh", "-c", serve], name=f"side-{uuid.uuid4().hex[:8]}", detach=True,
        labels={MANAGED: "true"},
    )
    mode = f"container:{target.name}"
    connect_80 = ["nc", "-w", "2", "127.0.0.1", "80", "-e", "true"]
    try:
        first = run_probe(docker_client, ["cat", "/proc/1/cmdline"], network_mode=mode, timeout=5)
        second = run_probe(docker_client, connect_80, network_mode=mode, timeout=5)
        assert "sleep" in first.stdout  # ran inside the sidecar, whose PID 1 sleeps
        assert second.rc == 0, second.stderr
        sidecars = _sidecars_of(docker_client, target.id)
        assert len(sidecars) == 1
        assert MANAGED not in sidecars[0].labels  # not a lab's: `labup status` never lists it

        target.restart(timeout=2)  # a new network namespace: a fresh sidecar must see it
        again = run_probe(docker_client, connect_80, network_mode=mode, timeout=5)
        assert again.rc == 0, again.stderr
        assert len(_sidecars_of(docker_client, target.id)) == 2

        close_sidecars(docker_client)
        deadline = time.monotonic() + 10
        while _sidecars_of(docker_client, target.id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _sidecars_of(docker_client, target.id) == []  # they removed themselves
    finally:
        target.remove(force=True)


def test_probe_of_a_stopped_container_is_an_engine_error(
    docker_client: Any, test_image: str
) -> None:
    stopped = docker_client.containers.create(test_image, ["true"], labels={MANAGED: "true"})
    try:
        with pytest.raises(EngineError, match="is not running"):
            run_probe(docker_client, ["true"], network_mode=f"container:{stopped.id}", timeout=5)
    finally:
        stopped.remove(force=True)


def test_concurrent_probes_in_one_namespace_share_one_exec(
    docker_client: Any, test_image: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from provisioner.engine import probe

    target = docker_client.containers.run(
        test_image, ["sh", "-c", IDLE], name=f"batch-{uuid.uuid4().hex[:8]}", detach=True,
        labels={MANAGED: "true"},
    )
    mode = f"container:{target.name}"

    def call(i: int) -> Any:
        script = f"printf 'out {i}\\n\\n'; echo 'err {i}' >&2; exit {i % 4}"
        return run_probe(docker_client, ["sh", "-c", script], network_mode=mode, timeout=5)

    try:
        run_probe(docker_client, ["true"], network_mode=mode, timeout=5)  # start the sidecar
        before = probe._SIDECARS.execs
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(call, range(10)))
        assert [(r.rc, r.stdout, r.stderr) for r in results] == [
            (i % 4, f"out {i}\n\n", f"err {i}\n") for i in range(10)
        ]
        assert probe._SIDECARS.execs - before < 10
    finally:
        close_sidecars(docker_client)
        target.remove(force=True)


def test_file_in_a_volume_is_read_through_a_mounting_container_or_a_probe(
    docker_client: Any, test_image: str, engine: Any
) -> None:
    from labspec.model import Mount

    key = f"fv{uuid.uuid4().hex[:8]}"
    labels = {MANAGED: "true", "labup.test": key}
    volume = docker_client.volumes.create(f"{key}-data", labels=labels)
    mounts = {volume.name: {"bind": "/data", "mode": "rw"}}
    docker_client.containers.run(
        test_image, ["sh", "-c", "echo open > /data/open.txt; echo shut > /data/shut.txt; "
                     "chmod 600 /data/shut.txt"], remove=True, volumes=mounts,
    )
    reader = docker_client.containers.run(
        test_image, ["sh", "-c", IDLE], name=f"{key}-db",
            labels={**labels, **lab_labels(key, "db")}, volumes=mounts,
        user="65534", detach=True,
    )
    lab = Lab(
        api_version="labup/v1", id=None, name=key, title="file in volume", description="",
        path=Path("/nonexistent/lab.yaml"), folder=Path("/nonexistent"),
        volumes=(Volume("data"),),
        containers=(Container("db", image="x", mounts=(Mount("volume", "/data", "data"),)),),
        checks=(
            Check("open", "file", {"volume": "data", "path": "open.txt", "content_regex": "open"}),
            Check("shut", "file", {"volume": "data", "path": "shut.txt", "content_regex": "shut"}),
        ),
    )
    try:
        got = {r.id: r for r in run_checks(engine, lab).results}
        assert got["open"].status == "pass"
        assert f"open.txt in volume {key}-data (read through {key}-db)" in got["open"].message
        # db (uid 65534) cannot read shut.txt: a probe that mounts the volume reads it
        assert got["shut"].status == "pass", got["shut"].message
        assert f"shut.txt in volume {key}-data: regular file" in got["shut"].message
    finally:
        reader.remove(force=True)
        volume.remove(force=True)
