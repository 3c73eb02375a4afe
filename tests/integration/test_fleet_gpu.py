"""GPU placement on the classroom: h2 has a fake GPU (nvidia-smi on its sessions' PATH, an
nvidia runtime and a no-op runtime hook); h1 and h3 have none."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from classroom import Classroom, down_on, fleet, up_on

from provisioner.engine import labels as L
from provisioner.targets.placement import host_gpus
from provisioner.targets.runner import Done, TargetContext

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: GPU lab
containers:
  trainer:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    gpus: 1
  helper:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    gpus: {{count: 1, optional: true}}
"""


def _spec(tmp_path: Path, name: str) -> Path:
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    return spec


def _purge(classroom: Classroom, name: str) -> None:
    fleet(classroom.good, down_on(name), parallel=3)


def test_probe_sees_the_fake_gpu_only_on_its_host(classroom: Classroom) -> None:
    def probe(ctx: TargetContext) -> Done[str]:
        return Done(host_gpus(ctx).text(), "")

    result = fleet(classroom.good, probe, parallel=3)
    found = {o.host: o.done.value for o in result.outcomes}
    assert found[classroom.gpu_host] == "1 GPU(s): Fake Tesla T4 [probe]"
    others = [h.name for h in classroom.good if h.name != classroom.gpu_host]
    for name in others:
        assert found[name] == "no GPU (nvidia-smi not found)"


def test_gpu_lab_lands_only_where_there_is_a_gpu(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    name = f"gpu-{unique}"
    spec = _spec(tmp_path, name)
    try:
        result = fleet(classroom.good, up_on(spec, checks=False), parallel=3)
        by = {o.host: o for o in result.outcomes}
        assert by[classroom.gpu_host].status == "ok", by[classroom.gpu_host].message
        for h in classroom.good:
            if h.name == classroom.gpu_host:
                continue
            assert by[h.name].status == "skipped"
            assert by[h.name].message == (
                f"{name} needs 1 GPU(s) (for trainer); this host has no GPU (nvidia-smi not found)"
            )
            assert classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"}) == []
        assert result.failed == () and result.exit_code == 0
        trainer = classroom.client(classroom.gpu_host).containers.get(f"{name}-trainer")
        assert trainer.status == "running"
        requests = trainer.attrs["HostConfig"]["DeviceRequests"]
        assert requests and requests[0]["Count"] == 1

        refused = fleet(classroom.good, up_on(spec, checks=False, refuse_no_gpu=True),
                            parallel=3)
        assert set(refused.failed) == {h.name for h in classroom.good} - {classroom.gpu_host}
        assert "needs 1 GPU(s)" in refused.outcome(refused.failed[0]).message
    finally:
        _purge(classroom, name)


def test_inventory_gpus_win_over_the_probe(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    name = f"gpuinv-{unique}"
    spec = _spec(tmp_path, name)
    gpu_host = dataclasses.replace(classroom.host(classroom.gpu_host), gpus=0)
    try:
        result = fleet([gpu_host], up_on(spec, checks=False))
        outcome = result.outcomes[0]
        assert outcome.status == "skipped"
        assert outcome.message.endswith("this host has no GPU")
    finally:
        _purge(classroom, name)
