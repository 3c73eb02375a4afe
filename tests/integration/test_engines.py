"""The engines learners run, beside Debian 12's dockerd 20.10: Debian 13's dockerd 26
(hdocker26, API 1.45) and Podman 4.3's Docker API (hpodman), each a real SSH test host.

Every lab of the catalog comes up on both (its environment checks pass), `labup check` says the
same, `down` leaves nothing; a lab that needs what an engine lacks is refused up front; API
1.44+ takes every network endpoint at create.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from classroom import ENGINE_HOSTS, Classroom, connect_host
from labfactory import make_lab, on, service

from labspec.catalog import SPEC_FILENAME, catalog_folders
from labspec.model import Host, Network
from provisioner.engine import labels as L

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.engines]

LABUP = str(Path(sys.executable).parent / "labup")
NUMBERS = [int(f.name.split("-", 1)[0]) for f in catalog_folders()]
# LABUP_ENGINE_LABS=1,5 runs only those labs on the engine hosts (default: the whole catalog)
ONLY = {int(n) for n in os.environ.get("LABUP_ENGINE_LABS", "").split(",") if n.strip()}
CASES = [(h, n) for h in ENGINE_HOSTS for n in NUMBERS if not ONLY or n in ONLY]


def _env(classroom: Classroom) -> dict[str, str]:
    """The key, and the known_hosts that holds the classroom's and the engine hosts' keys."""
    known = classroom.engines["hpodman"].known_hosts if classroom.engines else None
    return {**os.environ, "LABUP_SSH_KEY": str(classroom.key),
            "LABUP_KNOWN_HOSTS": str(known or classroom.known_hosts)}


def labup(
    classroom: Classroom, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=_env(classroom))


@pytest.fixture(scope="session")
def engine_images(classroom: Classroom, engine_hosts: dict[str, Host]) -> None:
    """The catalog's base images on both engine hosts, built offline when missing."""
    from labspec import load_lab
    from provisioner.offline.base_images import prepare_images
    from provisioner.offline.recipes import refs_for_labs

    refs = refs_for_labs([load_lab(f / SPEC_FILENAME) for f in catalog_folders()])
    for name in engine_hosts:
        results = prepare_images(classroom.client(name), refs, offline=True)
        failed = [r.detail for r in results if r.action == "failed"]
        assert not failed, (name, failed)


def _left(classroom: Classroom, host: str, key: str) -> list[str]:
    engine = connect_host(classroom.host(host))
    try:
        return [f"{kind} {o.name}" for kind in ("container", "network", "volume")
                for o in engine.list_resources(kind, L.selector(key))]
    finally:
        engine.close()


@pytest.mark.slow
@pytest.mark.parametrize(("host", "number"), CASES, ids=[f"{h}-lab{n}" for h, n in CASES])
def test_every_catalog_lab_comes_up_checks_and_goes_down_on_the_engine(
    classroom: Classroom, engine_hosts: dict[str, Host], engine_images: None,
    host: str, number: int,
) -> None:
    url = engine_hosts[host].url
    key = f"lab{number}"
    try:
        up = labup(classroom, "up", str(number), "--host", url, "-q")
        assert up.returncode == 0, up.stdout + up.stderr
        checked = labup(classroom, "check", str(number), "--stage", "env", "--host", url,
                        "--json")
        result = json.loads(checked.stdout)
        env = [r for r in result["results"] if r["stage"] == "env"]
        assert env and all(r["status"] in ("pass", "skipped") for r in env), json.dumps(env)
        down = labup(classroom, "down", str(number), "--volumes", "--host", url)
        assert down.returncode == 0, down.stdout + down.stderr
        assert _left(classroom, host, key) == []
    finally:
        labup(classroom, "down", str(number), "--volumes", "--host", url, "-q")


OVERLAY_LAB = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: A lab on an overlay network
networks:
  mesh: {{driver: overlay}}
containers:
  box:
    image: labup-test/busybox:latest
    command: [sh, -c, "trap 'exit 0' TERM; sleep 3600 & wait"]
    networks: [mesh]
"""


@pytest.mark.parametrize("host", ENGINE_HOSTS)
def test_a_lab_the_engine_cannot_run_is_refused_up_front_by_doctor_and_up(
    classroom: Classroom, engine_hosts: dict[str, Host], tmp_path: Path, unique: str, host: str,
) -> None:
    name = f"ovl{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(OVERLAY_LAB.format(name=name))
    url = engine_hosts[host].url
    why = ("driver overlay, which Podman 4.3.1 (Docker API 1.41) does not have"
           if host == "hpodman" else "driver overlay, which needs swarm mode")
    doctor = labup(classroom, "doctor", str(spec), "--host", url, "--json")
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    (report,) = json.loads(doctor.stdout)["hosts"]
    needs = [f for f in report["findings"] if f["item"] == "lab needs"]
    assert needs and needs[0]["level"] == "fail" and why in needs[0]["detail"], needs
    try:
        up = labup(classroom, "up", str(spec), "--host", url)
        assert up.returncode == 1
        assert f"{name} cannot run on " in up.stderr and why in up.stderr, up.stderr
        assert "nothing was created" in up.stderr and "Traceback" not in up.stderr
        assert _left(classroom, host, name) == []
    finally:
        labup(classroom, "down", str(spec), "--host", url, "-q")


def test_doctor_names_the_engine_kind_and_version_and_its_limits(
    classroom: Classroom, engine_hosts: dict[str, Host],
) -> None:
    seen: dict[str, dict[str, list[str]]] = {}
    for host in ("h1", *ENGINE_HOSTS):
        proc = labup(classroom, "doctor", "--host", classroom.host(host).url, "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (report,) = json.loads(proc.stdout)["hosts"]
        items: dict[str, list[str]] = {}
        for f in report["findings"]:
            items.setdefault(f["item"], []).append(f["detail"])
        seen[host] = items
    assert seen["h1"]["engine"][0].startswith("Docker 20.10.")
    assert seen["hdocker26"]["engine"][0].startswith("Docker 26.1.")
    assert "(API 1.45)" in seen["hdocker26"]["engine"][0]
    assert "every network attached at create" in seen["hdocker26"]["features"][0]
    assert seen["hpodman"]["engine"][0].startswith("Podman 4.3.")
    assert "(Podman Engine)" in seen["hpodman"]["engine"][0]
    assert "no swarm mode" in seen["hpodman"]["features"][0]
    assert any("localhost/NAME" in t for t in seen["hpodman"]["limit"])


@pytest.mark.parametrize("host", ["h1", "hdocker26"])
def test_every_network_is_attached_at_create_where_the_api_allows_it(
    classroom: Classroom, engine_hosts: dict[str, Host], tmp_path: Path, unique: str, host: str,
) -> None:
    """API >= 1.44 (dockerd 26) takes all endpoints in the create body: no connect call, and
    the created (not yet started) container is on every network with its aliases. API 1.41
    takes one and labup connects the others."""
    engine: Any = connect_host(classroom.host(host))
    key = f"eac{unique}"
    lab = make_lab(key, tmp_path, [service("web", networks=(*on("a", "b"), *on("c")))],
                   networks=[Network("a"), Network("b"), Network("c")])
    calls: list[str] = []
    real = engine.call

    def spy(method: str, path: str, **kw: Any) -> Any:
        calls.append(f"{method} {path.split('?')[0]}")
        return real(method, path, **kw)

    engine.call = spy
    try:
        assert engine.endpoints_at_create() is (host == "hdocker26")
        nets = [(f"{key}-{n}", (f"{n}-alias",), None) for n in "abc"]
        for net, _, _ in nets:
            engine.create_network(net, driver="bridge", internal=False, subnet=None,
                                  gateway=None, labels=L.selector(key))
        cid = engine.create_container(f"{key}-web", lab.containers[0], networks=nets,
                                      volume_names={}, labels=L.selector(key), use_gpu=False)
        connects = [c for c in calls if c.endswith("/connect")]
        attached = engine.inspect_container(cid)["NetworkSettings"]["Networks"]
        assert sorted(attached) == sorted(net for net, _, _ in nets)
        for net, (alias,), _ in nets:
            assert alias in (attached[net].get("Aliases") or []), attached[net]
        if host == "hdocker26":
            assert connects == [], calls  # every endpoint went in the create body
        else:
            assert len(connects) == 2, calls
    finally:
        engine.call = real
        engine.remove_container(f"{key}-web")
        for n in "abc":
            engine.remove_network(f"{key}-{n}")
        engine.close()


BUNDLED_LAB = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: An image only the bundle brings
containers:
  app:
    image: {ref}
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
"""


@pytest.mark.parametrize("host", ENGINE_HOSTS)
def test_a_bundle_loads_under_the_names_the_lab_uses_and_a_second_load_sends_nothing(
    classroom: Classroom, engine_hosts: dict[str, Host], docker_client: Any, test_image: str,
    tmp_path: Path, unique: str, host: str,
) -> None:
    """labup tags a loaded image with the bundle's names through the engine's API (loads carry
    no names of their own), so Podman holds ``docker.io/NAME`` as its Docker API tags short
    names; labup still finds it as ``NAME``."""
    import io
    import tarfile

    import labspec
    from provisioner.offline.bundle_write import write_bundle

    ref = f"labup-bundle-eng/app:{unique}"
    dockerfile = f"FROM {test_image}\nRUN echo {unique} > /token\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    docker_client.images.build(fileobj=buf, custom_context=True, tag=ref, rm=True)
    name = f"bnd{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(BUNDLED_LAB.format(name=name, ref=ref))
    bundle = tmp_path / "course.tar"
    url = engine_hosts[host].url
    remote = classroom.client(host)
    try:
        write_bundle(docker_client, [labspec.load_lab(spec)], bundle)
        first = labup(classroom, "bundle", "load", str(bundle), "--host", url, "--json")
        assert first.returncode == 0, first.stdout + first.stderr
        tags = remote.images.get(ref).tags
        assert tags == ([f"docker.io/{ref}"] if host == "hpodman" else [ref]), tags
        second = labup(classroom, "bundle", "load", str(bundle), "--host", url, "--json")
        assert second.returncode == 0, second.stdout + second.stderr
        assert '"bytes_sent": 0' in second.stdout, second.stdout
        up = labup(classroom, "up", str(spec), "--host", url, "-q")
        assert up.returncode == 0, up.stdout + up.stderr
        got = remote.containers.get(f"{name}-app").exec_run(["cat", "/token"])
        assert got.output.decode().strip() == unique
    finally:
        labup(classroom, "down", str(spec), "--host", url, "-q")
        for client in (remote, docker_client):
            with contextlib.suppress(Exception):
                client.images.remove(ref, force=True)


@pytest.mark.parametrize("transport", ["unix", "ssh"])
def test_a_healthcheck_with_spaces_becomes_healthy_on_podman_without_systemd(
    classroom: Classroom, engine_hosts: dict[str, Host], tmp_path: Path, unique: str,
    transport: str,
) -> None:
    """Podman 4.3 re-splits an exec-form healthcheck on spaces and, without systemd, never
    runs it: `up` still waits it to healthy, over its own socket (the standard-library
    transport) and over SSH (the SDK's)."""
    from labspec.model import Dependency, Healthcheck
    from provisioner import lifecycle
    from provisioner.engine.docker_engine import DockerEngine
    from provisioner.lifecycle.progress import QuietReporter

    test = ("CMD", "sh", "-c", "test \"$(echo a  b)\" = 'a b' && test -d /tmp")
    lab = make_lab(f"hc{unique}", tmp_path, [
        service("web", healthcheck=Healthcheck(test=test, interval=1.0, retries=30)),
        service("after", depends_on=(Dependency("web", "healthy"),)),
    ])
    engine: Any = (DockerEngine(url=f"unix://{classroom.state}/hpodman/podman.sock")
                   if transport == "unix" else connect_host(classroom.host("hpodman")))
    try:
        assert (engine.raw is not None) is (transport == "unix")
        result = lifecycle.up(engine, lab, reporter=QuietReporter(), checks=False, timeout=60)
        assert result.ok
        state = engine.inspect_container(f"hc{unique}-web")["State"]
        assert state["Health"]["Status"] == "healthy", state["Health"]
    finally:
        lifecycle.down(engine, f"hc{unique}", volumes=True, reporter=QuietReporter())
        engine.close()
