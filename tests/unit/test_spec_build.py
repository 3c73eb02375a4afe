"""Model building: every spec form normalised to the frozen dataclasses of labspec.model."""

from __future__ import annotations

from pathlib import Path

import pytest

import labspec
from labspec.model import (
    BuildSpec,
    Dependency,
    GpuRequest,
    Healthcheck,
    Mount,
    NetworkAttachment,
    Port,
    Resources,
    Solution,
)
from labspec.model_builder import default_image_ref, parse_port

VALID = Path(__file__).resolve().parent.parent / "data" / "specs" / "valid"


@pytest.fixture(scope="module")
def full() -> labspec.Lab:
    return labspec.load_lab(VALID / "full.yaml")


def test_lab_fields(full: labspec.Lab) -> None:
    assert (full.api_version, full.id, full.name, full.key) == ("labup/v1", 42, "full", "lab42")
    assert full.title == "Every field of spec v1"
    assert full.path == (VALID / "full.yaml").resolve()
    assert full.folder == VALID.resolve()
    assert full.requires == ("docker-compose",)
    assert full.values == {"port": 8080, "debug": False, "flavour": "small", "greeting": "hello"}
    assert [p.name for p in full.params] == ["port", "debug", "flavour", "greeting"]
    assert full.params[2].choices == ("small", "large")
    assert full.instructions == VALID.resolve() / "README.md"
    assert full.solution == Solution(
        script=VALID.resolve() / "solve.sh", steps=(("echo", "step one"),)
    )


def test_images_resolve_refs_and_builds(full: labspec.Lab) -> None:
    app, pulled, tagged = full.images
    assert app.ref == "labup/lab42-app:latest"
    assert app.build == BuildSpec(
        context=VALID.resolve() / "app",
        dockerfile="Dockerfile",
        args={"VERSION": "1", "FAST": "true"},
        target="final",
    )
    assert (pulled.ref, pulled.build, pulled.pull) == ("busybox:1.36", None, "never")
    assert tagged.ref == "registry.example.com:5000/team/app:1.0" and tagged.build is not None


def test_container_image_names_an_images_key_or_a_reference(full: labspec.Lab) -> None:
    assert (full.container("web").image, full.container("web").image_key) == (
        "busybox:1.36",
        "pulled",
    )
    assert (full.container("api").image, full.container("api").image_key) == (
        "labup/lab42-app:latest",
        "app",
    )
    assert (full.container("job").image, full.container("job").image_key) == ("busybox:1.36", None)


def test_networks_and_volumes(full: labspec.Lab) -> None:
    front, back, plain = full.networks
    assert (front.subnet, front.gateway, front.labels) == (
        "10.91.0.0/24",
        "10.91.0.1",
        {"tier": "front"},
    )
    assert (back.internal, plain.driver, plain.internal) == (True, "bridge", False)
    assert [(v.name, v.labels) for v in full.volumes] == [("data", {"keep": "yes"}), ("cache", {})]


def test_every_container_field(full: labspec.Lab) -> None:
    web = full.container("web")
    assert web.command == ("httpd", "-f", "-p", "80", "-h", "/www")
    assert web.entrypoint == ("/bin/sh", "-c")
    assert web.env == {"GREETING": "hello", "DEBUG": "false", "WORKERS": "2"}
    assert (web.working_dir, web.hostname, web.user) == ("/www", "web", "1000:1000")
    assert web.ports == (
        Port(80, 8080),
        Port(8443),
        Port(53, 9053, "127.0.0.1", "udp"),
        Port(7000, 7001, "0.0.0.0", "tcp"),
    )
    assert web.networks == (
        NetworkAttachment("front", ("www", "site"), "10.91.0.10"),
        NetworkAttachment("back"),
    )
    assert web.mounts == (
        Mount("bind", "/www", str(VALID.resolve() / "site"), read_only=True),
        Mount("volume", "/data", "data"),
        Mount("tmpfs", "/run", None, size=16 * 1024**2),
    )
    assert web.resources == Resources(cpus=0.5, memory=128 * 1024**2, pids=100)
    assert web.healthcheck == Healthcheck(
        ("CMD", "wget", "-q", "-O-", "http://localhost/"),
        interval=2.0,
        timeout=1.0,
        retries=5,
        start_period=90.0,
    )
    assert (web.read_only, web.init, web.privileged) == (True, True, False)
    assert (web.cap_add, web.cap_drop, web.restart) == (
        ("NET_BIND_SERVICE",),
        ("ALL",),
        "on-failure:3",
    )
    assert web.labels == {"course": "docker", "week": "5"}
    assert web.stop_timeout == 3.0


def test_container_forms_of_depends_on_gpus_healthcheck_and_command(full: labspec.Lab) -> None:
    api, db, job = full.container("api"), full.container("db"), full.container("job")
    assert api.command == ("python", "-m", "http.server", "a b")
    assert api.networks == (NetworkAttachment("back"), NetworkAttachment("plain"))
    assert api.depends_on == (Dependency("web", "healthy"), Dependency("db", "started"))
    assert api.gpus == GpuRequest("all", ("gpu", "compute"), optional=True)
    assert api.healthcheck == Healthcheck(("CMD-SHELL", "wget -q -O- localhost:8000"))
    assert db.gpus == GpuRequest(1) and db.user == "999"
    assert (job.network_mode, job.depends_on, job.command) == (
        "none",
        (Dependency("db"),),
        ("echo", "done"),
    )


def test_checks(full: labspec.Lab) -> None:
    first, second, third, fourth = full.checks
    assert (first.id, first.type, first.stage, first.spec) == (
        "web-running",
        "container",
        "env",
        {"container": "web", "state": "running"},
    )
    assert (second.type, second.points, second.wait, second.timeout, second.needs) == (
        "http",
        2.0,
        10.0,
        0.5,
        ("web-running",),
    )
    assert second.spec["port"] == 8080  # rendered to a native int
    assert (second.hint, second.description) == (
        "Is httpd listening on port 80?",
        "The site answers on the published port",
    )
    assert (third.type, third.stage, third.points, third.timeout) == (
        "reachable",
        "task",
        1.0,
        10.0,
    )
    assert fourth.spec == {"to": "example.com", "port": 443}


@pytest.mark.parametrize(
    ("value", "port"),
    [
        (80, Port(80)),
        ("80", Port(80)),
        ("8080:80", Port(80, 8080)),
        ("0.0.0.0:8080:80", Port(80, 8080, "0.0.0.0")),
        ("[::1]:8080:80/udp", Port(80, 8080, "::1", "udp")),
        ("53/udp", Port(53, None, "127.0.0.1", "udp")),
        ({"container": 80}, Port(80)),
        (
            {"container": 80, "host": 81, "host_ip": "::", "protocol": "udp"},
            Port(80, 81, "::", "udp"),
        ),
    ],
)
def test_port_forms(value: object, port: Port) -> None:
    assert parse_port(value) == port


def test_built_images_get_a_lowercase_default_tag() -> None:
    assert default_image_ref("lab5", "App") == "labup/lab5-app:latest"


def test_anchors_merge_into_containers() -> None:
    lab = labspec.load_lab(VALID / "anchors.yaml")
    one, two = lab.containers
    assert (one.image, one.restart, one.init, one.env) == (
        "busybox:1.36",
        "no",
        True,
        {"ROLE": "default"},
    )
    assert two.env == {"ROLE": "second"} and two.init is True


def test_healthcheck_list_without_cmd_is_an_argv(tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(
        "apiVersion: labup/v1\nkind: Lab\nname: hc\ntitle: HC\ncontainers:\n"
        "  web:\n    image: busybox\n    healthcheck: {test: [wget, -q, localhost]}\n"
    )
    assert labspec.load_lab(spec).containers[0].healthcheck == Healthcheck(
        ("CMD", "wget", "-q", "localhost")
    )
