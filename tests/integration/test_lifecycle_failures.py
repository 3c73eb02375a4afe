"""Bad input and failures in up: a clear message naming the resource, nothing left behind."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labfactory import leftovers, make_lab, purge, service

from labspec.errors import EXIT_FAILED
from labspec.model import (
    BuildSpec,
    Dependency,
    GpuRequest,
    Healthcheck,
    Image,
    Mount,
    Port,
    Volume,
)
from provisioner import lifecycle
from provisioner.engine.connect import connect
from provisioner.engine.docker_engine import DockerEngine
from provisioner.lifecycle.progress import QuietReporter
from provisioner.lifecycle.verbs import UpFailed

pytestmark = pytest.mark.docker

# how long after the last start a container must still run; generous, so a loaded machine
# (other test suites on 2 cores) cannot make a quick exit look like a running container
SETTLE = 1.5


@pytest.fixture
def engine(docker_client: Any, test_image: str) -> Iterator[DockerEngine]:
    eng = connect(None)
    yield eng
    eng.close()


@pytest.fixture
def key(docker_client: Any, unique: str) -> Iterator[str]:
    name = f"t{unique}"
    yield name
    purge(docker_client, name)
    for ref in docker_client.api.images(filters={"label": f"labup.lab={name}"}):
        docker_client.api.remove_image(ref["Id"], force=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthcheck_that_never_passes_fails_with_health_output_and_logs(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    sick = service(
        "db",
        command=("sh", "-c", "echo starting the db; trap 'exit 0' TERM; sleep 3600 & wait"),
        healthcheck=Healthcheck(("CMD-SHELL", "echo probe says no; exit 1"), interval=0.3,
                                timeout=2, retries=2),
    )
    lab = make_lab(key, tmp_path, [sick, service("other")], volumes=[Volume("data")])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    text = str(caught.value)
    assert f"{key}-db: is unhealthy" in text
    assert "probe says no" in text and "starting the db" in text
    assert caught.value.exit_code == EXIT_FAILED
    assert leftovers(docker_client, key) == []
    assert caught.value.result.cleaned_up is not None
    assert (("container", f"{key}-db") in caught.value.result.cleaned_up.removed)


def test_container_exiting_at_once_is_an_error_with_its_logs(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [
        service("web"),
        service("broken", command=("sh", "-c", "echo config file missing >&2; exit 3")),
    ])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False, settle=SETTLE)
    text = str(caught.value)
    assert f"{key}-broken: exited at once (Exited (3)" in text
    assert "config file missing" in text
    assert leftovers(docker_client, key) == []


def test_container_exiting_zero_at_once_is_a_warning(
    engine: DockerEngine, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("oneshot", command=("true",))])
    result = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False, settle=SETTLE)
    assert result.ok
    assert any(f"{key}-oneshot exited at once (code 0)" in w for w in result.warnings)


def test_host_port_already_taken_names_the_container_and_port(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        lab = make_lab(key, tmp_path, [service("web", ports=(Port(80, port),)), service("db")])
        with pytest.raises(UpFailed) as caught:
            lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    text = str(caught.value)
    assert f"{key}-web: could not start" in text
    assert f"127.0.0.1:{port}" in text and "is taken" in text
    assert leftovers(docker_client, key) == []


def test_image_that_cannot_be_pulled_names_image_cause_and_offline_hint(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    ref = f"labup-missing.invalid/{key}:1.0"
    lab = make_lab(key, tmp_path, [service("web"), service("app", image=ref)])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    text = str(caught.value)
    assert f"image {ref}: could not pull:" in text
    assert "labup images prepare" in text and "--offline" in text
    assert f"labup up {key} --bundle course.tar" in text  # the route a classroom takes
    assert "labup bundle load course.tar -i INVENTORY" in text
    assert leftovers(docker_client, key) == []


def test_build_from_lab_folder_is_skipped_when_unchanged_and_replaces_on_change(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path, test_image: str
) -> None:
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {test_image}\nCOPY msg.txt /msg.txt\n")
    (ctx / "msg.txt").write_text("v1\n")
    (ctx / "notes.tmp").write_text("ignored\n")
    (ctx / ".dockerignore").write_text("*.tmp\n")
    ref = f"labup-test/{key}-app:latest"
    lab = make_lab(key, tmp_path, [service("app", image=ref, image_key="app")],
                   images=(Image("app", ref, build=BuildSpec(ctx)),))
    first = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    assert ("image", ref, "built") in {(e["kind"], e["name"], e["action"]) for e in first.events}
    assert engine.exec(f"{key}-app", ["cat", "/msg.txt"]).stdout == "v1\n"
    (ctx / "notes.tmp").write_text("changed, but ignored\n")
    assert lifecycle.plan(engine, lab).is_noop
    (ctx / "msg.txt").write_text("v2\n")
    p = lifecycle.plan(engine, lab)
    actions = [(s.kind, s.action) for s in p.changes]
    assert actions == [("image", "create"), ("container", "replace")]
    assert p.changes[1].changed == ("image_build",)
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    assert engine.exec(f"{key}-app", ["cat", "/msg.txt"]).stdout == "v2\n"


def test_failing_build_shows_the_step_and_its_output(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path, test_image: str
) -> None:
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {test_image}\nRUN echo preparing\nRUN echo compiler exploded; exit 7\n"
    )
    ref = f"labup-test/{key}-broken:latest"
    lab = make_lab(key, tmp_path, [service("web"), service("app", image=ref, image_key="app")],
                   images=(Image("app", ref, build=BuildSpec(ctx)),))
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    text = str(caught.value)
    assert re.search(
        rf"image {re.escape(ref)}: build failed at Step 3/\d+ : RUN echo compiler exploded; exit 7",
        text,
    )
    assert "compiler exploded" in text.split("output of that step:")[1]
    assert "returned a non-zero code: 7" in text
    assert leftovers(docker_client, key) == []


def test_build_whose_base_image_cannot_be_pulled_says_how_to_get_it_offline(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "app"
    ctx.mkdir()
    base = f"labup-test/{key}-absent-base:1"  # on no engine, in no registry reachable here
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo never\n")
    ref = f"labup-test/{key}-app:latest"
    lab = make_lab(key, tmp_path, [service("app", image=ref, image_key="app")],
                   images=(Image("app", ref, build=BuildSpec(ctx)),))
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    text = str(caught.value)
    assert re.search(rf"image {re.escape(ref)}: build failed at Step 1/\d+ : FROM {base}", text)
    assert f"`labup images prepare {key} --offline`" in text
    assert f"`labup up {key} --bundle course.tar`" in text
    assert leftovers(docker_client, key) == []


def test_required_gpu_is_refused_before_anything_is_created(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("web"), service("trainer", gpus=GpuRequest(count=1))],
                   volumes=[Volume("data")])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    text = str(caught.value)
    assert "no GPU" in text and f"{key}-trainer (needs 1 GPU(s) with gpu)" in text
    assert caught.value.result.events == []  # nothing was created, not even the volume
    assert not any("removed what this run created" in w for w in caught.value.result.warnings)
    assert leftovers(docker_client, key) == []


def test_optional_gpu_starts_without_and_says_so(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("trainer", gpus=GpuRequest(count="all",
                                                                       optional=True))])
    result = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    assert any("no GPU on this engine; starting it without" in w for w in result.warnings)
    host = docker_client.api.inspect_container(f"{key}-trainer")["HostConfig"]
    assert not host.get("DeviceRequests")
    assert docker_client.api.inspect_container(f"{key}-trainer")["State"]["Running"]


def test_failed_up_leaves_preexisting_resources_and_removes_its_own(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("web", mounts=(Mount("volume", "/d", "data"),))],
                   volumes=[Volume("data")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    web_id = docker_client.api.inspect_container(f"{key}-web")["Id"]
    bigger = make_lab(key, tmp_path, [*lab.containers, service("api"),
                                      service("bad", command=("sh", "-c", "exit 4"))],
                      volumes=[Volume("data"), Volume("extra")])
    with pytest.raises(UpFailed):
        lifecycle.up(engine, bigger, reporter=QuietReporter(), checks=False, settle=SETTLE)
    assert sorted(leftovers(docker_client, key)) == sorted([f"{key}-web", f"{key}-data"])
    assert docker_client.api.inspect_container(web_id)["State"]["Running"]


def test_keep_on_failure_keeps_what_the_run_created(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    lab = make_lab(key, tmp_path, [service("bad", command=("sh", "-c", "echo oops; exit 2"))])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False, keep_on_failure=True,
                     settle=SETTLE)
    assert "oops" in str(caught.value)
    assert leftovers(docker_client, key) == [f"{key}-bad"]
    # the next up replaces the broken container (and fails the same way, cleaning up this time)
    step = lifecycle.plan(engine, lab).changes[0]
    assert (step.action, step.key) == ("replace", "bad") and "Exited (2)" in step.reason


def test_failed_up_after_a_change_puts_replaced_containers_back(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    port = free_port()
    lab = make_lab(key, tmp_path, [service("web", env={"X": "1"}, ports=(Port(8080, port),)),
                                   service("gone")])
    lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False)
    before = {n: docker_client.api.inspect_container(f"{key}-{n}")["Id"] for n in ("web", "gone")}
    changed = make_lab(key, tmp_path, [
        service("web", env={"X": "2"}, ports=(Port(8080, port),)),
        service("bad", command=("sh", "-c", "echo broken; exit 5")),
    ])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, changed, reporter=QuietReporter(), checks=False, settle=SETTLE)
    assert f"{key}-bad: exited at once" in str(caught.value)
    # the replaced container and the removed one are back, as they were, under their names
    for n in ("web", "gone"):
        info = docker_client.api.inspect_container(f"{key}-{n}")
        assert info["Id"] == before[n] and info["State"]["Running"]
    assert "X=1" in docker_client.api.inspect_container(f"{key}-web")["Config"]["Env"]
    assert sorted(leftovers(docker_client, key)) == sorted([f"{key}-web", f"{key}-gone"])
    assert lifecycle.plan(engine, lab).is_noop


def test_health_wait_times_out_with_the_last_output(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    slow = service("db", healthcheck=Healthcheck(("CMD-SHELL", "echo still warming up; exit 1"),
                                                 interval=0.3, timeout=2, retries=1000))
    lab = make_lab(key, tmp_path, [slow])
    with pytest.raises(UpFailed) as caught:
        lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False, timeout=2)
    text = str(caught.value)
    assert f"{key}-db: not healthy after 2s" in text and "still warming up" in text
    assert leftovers(docker_client, key) == []


def test_a_callers_interrupt_stops_a_health_wait_and_cleans_up(
    engine: DockerEngine, docker_client: Any, key: str, tmp_path: Path
) -> None:
    """A fleet's Ctrl-C is an event the caller sets: up sees it at its next wait, however
    the host's own reporting went, and removes what it created."""
    import threading

    from provisioner.lifecycle.apply import Cancelled
    from provisioner.lifecycle.progress import CallbackReporter, Event

    slow = service(
        "web",
        command=("sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait"),
        healthcheck=Healthcheck(("CMD", "test", "-f", "/never"), interval=0.3, retries=100),
    )
    worker = service("worker", depends_on=(Dependency("web", "healthy"),))
    lab = make_lab(key, tmp_path, [slow, worker])
    interrupt = threading.Event()

    def seen(event: Event) -> None:  # Ctrl-C once the first container has started
        if event.action == "started":
            interrupt.set()

    with pytest.raises(UpFailed) as info:
        lifecycle.up(engine, lab, reporter=CallbackReporter(seen), checks=False,
                     interrupt=interrupt)
    assert isinstance(info.value.__cause__, Cancelled)
    assert info.value.result.cleaned_up.removed
    assert leftovers(docker_client, key) == []
