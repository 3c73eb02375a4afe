"""The capability probe on recorded ``/version`` and ``/info`` answers of the engines labup
is tested against (dockerd 20.10 and 26 from Debian, Docker CE, Podman 4.3), the refusals,
and the Podman fixes of the engine layer that need no engine to prove."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine

from labspec.model import Container, Lab, Network
from provisioner.engine.api_body import for_podman
from provisioner.engine.capabilities import (
    Capabilities,
    EngineCannotRunLab,
    ensure_can_run,
    from_answers,
    lab_needs,
    refusals,
)
from provisioner.engine.docker_checks import health_is_stale
from provisioner.engine.docker_engine import DEPENDENTS
from provisioner.engine.http import decode_answer
from provisioner.targets.doctor import diagnose

DOCKER_DRIVERS = ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"]


def _docker(version: str, api: str, platform: str = "", swarm: str = "inactive") -> Capabilities:
    return from_answers(
        {"Platform": {"Name": platform}, "Version": version, "ApiVersion": api,
         "Components": [{"Name": "Engine", "Version": version}]},
        {"ServerVersion": version, "Plugins": {"Network": DOCKER_DRIVERS},
         "Swarm": {"LocalNodeState": swarm}},
    )


PODMAN = from_answers(
    {"Platform": {"Name": "linux/amd64/debian-12"}, "Version": "4.3.1", "ApiVersion": "1.41",
     "Components": [{"Name": "Podman Engine", "Version": "4.3.1"},
                    {"Name": "Conmon", "Version": "conmon version 2.1.6"}]},
    {"ServerVersion": "4.3.1", "Plugins": {"Network": ["bridge", "macvlan"]},
     "Swarm": {"LocalNodeState": "inactive"}, "BuildahVersion": "1.28.2"},
)
DEBIAN_20 = _docker("20.10.24+dfsg1", "1.41")
DEBIAN_26 = _docker("26.1.5+dfsg1", "1.45")
CE_28 = _docker("28.2.2", "1.50", platform="Docker Engine - Community")
CE_SWARM = _docker("28.2.2", "1.50", platform="Docker Engine - Community", swarm="active")


def _lab(*networks: Network, requires: tuple[str, ...] = ()) -> Lab:
    return Lab(api_version="labup/v1", id=None, name="t", title="t", description="",
               path=Path("/x/lab.yaml"), folder=Path("/x"), networks=networks,
               containers=(Container("box", image="busybox:1.36"),), requires=requires)


def test_the_engines_are_named_by_kind_version_and_api() -> None:
    assert DEBIAN_20.name == "Docker 20.10.24+dfsg1 (API 1.41)" and DEBIAN_20.kind == "docker"
    assert DEBIAN_26.name == "Docker 26.1.5+dfsg1 (API 1.45)"
    assert CE_28.product == "Docker Engine - Community" and DEBIAN_26.product == "Docker Engine"
    assert PODMAN.name == "Podman 4.3.1 (Docker API 1.41)" and PODMAN.kind == "podman"
    assert PODMAN.network_drivers == ("bridge", "macvlan") and not PODMAN.swarm


def test_endpoints_at_create_from_api_1_44_on() -> None:
    assert [c.endpoints_at_create for c in (DEBIAN_20, PODMAN, DEBIAN_26, CE_28)] == [
        False, False, True, True]


def test_a_lab_of_bridge_networks_needs_nothing_and_costs_no_engine_call() -> None:
    engine = FakeEngine(PODMAN)
    lab = _lab(Network("front"), Network("back", internal=True))
    assert lab_needs(lab) == []
    ensure_can_run(engine, lab)
    assert engine.calls["capabilities"] == 0  # a no-op up asks the engine nothing more


@pytest.mark.parametrize(("caps", "network", "said"), [
    (PODMAN, "overlay", "network mesh uses driver overlay, which Podman 4.3.1 (Docker API "
                        "1.41) does not have (overlay networks belong to Docker Swarm); it "
                        "has bridge, macvlan"),
    (PODMAN, "ipvlan", "network mesh uses driver ipvlan, which Podman"),
    (DEBIAN_26, "overlay", "network mesh uses driver overlay, which needs swarm mode"),
    (CE_28, "weave", "driver weave, which Docker 28.2.2 (API 1.50) does not have"),
])
def test_what_an_engine_lacks_is_said_before_anything_is_created(
    caps: Capabilities, network: str, said: str
) -> None:
    engine = FakeEngine(caps)
    lab = _lab(Network("mesh", driver=network))
    with pytest.raises(EngineCannotRunLab) as err:
        ensure_can_run(engine, lab, host="hpodman")
    assert said in err.value.message
    assert err.value.message.startswith(f"[hpodman] t cannot run on {caps.name}: nothing was "
                                        "created")
    assert engine.calls["create network"] == 0 and engine.resources == []


def test_what_an_engine_has_is_not_refused() -> None:
    assert refusals(PODMAN, lab_needs(_lab(Network("m", driver="macvlan")))) == []
    assert refusals(CE_SWARM, lab_needs(_lab(Network("m", driver="overlay")))) == []
    assert refusals(CE_SWARM, lab_needs(_lab(requires=("swarm", "docker-compose")))) == []


def test_swarm_is_refused_on_podman_and_where_it_is_off() -> None:
    needs = lab_needs(_lab(requires=("swarm",)))
    assert refusals(PODMAN, needs) == ["requires: [swarm]: Podman has no swarm mode"]
    assert "swarm mode is off" in refusals(DEBIAN_20, needs)[0]


def test_doctor_names_the_engine_and_fails_the_lab_need_it_lacks() -> None:
    report = diagnose(FakeEngine(PODMAN), _lab(Network("mesh", driver="overlay")))
    items = {(f.item, f.level): f.detail for f in report.findings}
    assert items[("engine", "ok")].startswith("Podman 4.3.1 (Docker API 1.41) at fake://")
    assert "no swarm mode" in items[("features", "info")]
    assert "driver overlay" in items[("lab needs", "fail")] and not report.ok
    assert any(f.item == "limit" and "localhost/NAME" in f.detail for f in report.findings)


def test_an_exec_form_healthcheck_with_spaces_goes_to_podman_as_the_shell_form() -> None:
    body: dict[str, Any] = {"Healthcheck": {"Test": [
        "CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://x')"],
        "Interval": 1}}
    assert for_podman(body)["Healthcheck"] == {"Test": [
        "CMD-SHELL",
        "python -c 'import urllib.request; urllib.request.urlopen('\"'\"'http://x'\"'\"')'"],
        "Interval": 1}
    plain = {"Healthcheck": {"Test": ["CMD", "true"]}}
    assert for_podman(dict(plain)) == plain
    shell = {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://x || exit 1"]}}
    assert for_podman(dict(shell)) == shell


def _inspected(log_end: str | None, interval_s: float = 2.0) -> dict[str, Any]:
    log = [] if log_end is None else [{"End": log_end, "ExitCode": 0}]
    return {"State": {"Running": True, "Health": {"Status": "starting", "Log": log}},
            "Config": {"Healthcheck": {"Test": ["CMD", "true"],
                                       "Interval": int(interval_s * 1e9)}}}


def test_a_healthcheck_result_older_than_its_interval_is_stale() -> None:
    now = time.time()
    fresh = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".123456789Z"
    old = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 10)) + ".5Z"
    assert health_is_stale(_inspected(None))  # never ran (Podman without systemd)
    assert health_is_stale(_inspected(old))
    assert not health_is_stale(_inspected(fresh))
    assert not health_is_stale({"State": {"Running": True}, "Config": {}})  # no healthcheck
    stopped = _inspected(None)
    stopped["State"]["Running"] = False
    assert not health_is_stale(stopped)


def test_an_answer_that_is_not_json_is_no_answer() -> None:
    assert decode_answer(b"OK") is None  # Podman's network connect / disconnect
    assert decode_answer(b"") is None
    assert decode_answer(b'{"Id": "x"}') == {"Id": "x"}


def test_podmans_dependent_containers_are_read_from_its_refusal() -> None:
    said = ("container 04682de2 has dependent containers which must be removed before it: "
            "e25ef7cb,084e9e25: container already exists")
    found = DEPENDENTS.search(said)
    assert found is not None
    assert found.group(1).replace(",", " ").split() == ["e25ef7cb", "084e9e25"]
