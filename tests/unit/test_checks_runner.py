"""The check runner with a small fake engine: retries, needs, stages, parallelism, errors."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine

from labspec.errors import UserInputError
from labspec.model import Check, Container, GpuRequest, Lab
from provisioner.checks import run_checks, select_checks
from provisioner.engine.protocol import CheckEngine, CommandResult, Engine


def lab_with(*checks: Check, containers: tuple[Container, ...] = ()) -> Lab:
    return Lab(
        api_version="labup/v1",
        id=7,
        name="seven",
        title="Lab seven",
        description="",
        path=Path("/labs/07/lab.yaml"),
        folder=Path("/labs/07"),
        containers=containers or (Container("web", image="x"),),
        checks=checks,
    )


def exec_check(cid: str, *, needs: tuple[str, ...] = (), **kw: Any) -> Check:
    spec = {"container": "web", "command": [kw.pop("cmd", "true")]}
    return Check(cid, "exec", spec, needs=needs, **kw)


def test_fake_engine_fits_the_protocols_at_run_time() -> None:
    assert isinstance(FakeEngine(), CheckEngine)
    assert isinstance(FakeEngine(), Engine)


def test_wait_retries_a_failing_check_until_it_passes() -> None:
    engine = FakeEngine()
    engine.running("lab7-web")
    engine.exec_script["probe"] = [CommandResult(1, "", "not yet")] * 2 + [CommandResult(0, "")]
    run = run_checks(engine, lab_with(exec_check("settles", cmd="probe", wait=5)))
    result = run.results[0]
    assert (result.status, result.attempts) == ("pass", 3)
    assert result.duration < 2


def test_wait_gives_up_at_the_deadline_and_says_how_long_it_tried() -> None:
    engine = FakeEngine()
    engine.running("lab7-web")
    engine.exec_script["probe"] = [CommandResult(1, "", "never")]
    t0 = time.monotonic()
    result = run_checks(engine, lab_with(exec_check("never", cmd="probe", wait=1))).results[0]
    assert result.status == "fail"
    assert "exited 1, expected 0: never (after" in result.message
    assert result.attempts >= 2
    assert 0.7 < time.monotonic() - t0 < 2.5


def test_without_wait_a_check_runs_once() -> None:
    engine = FakeEngine()
    engine.running("lab7-web")
    engine.exec_script["probe"] = [CommandResult(1, "", "no")]
    result = run_checks(engine, lab_with(exec_check("once", cmd="probe"))).results[0]
    assert (result.status, result.attempts) == ("fail", 1)


def test_a_failed_need_blocks_and_a_skipped_need_skips() -> None:
    engine = FakeEngine()
    engine.running("lab7-web")
    engine.running("lab7-gpu")
    engine.exec_script["false"] = [CommandResult(1, "", "")]
    engine.exec_script["nvidia-smi"] = [CommandResult(127, "", "not found")]
    engine.exec_script["sh"] = [CommandResult(1, "", "")]
    lab = lab_with(
        exec_check("broken", cmd="false"),
        exec_check("after-broken", needs=("broken",)),
        exec_check("after-after", needs=("after-broken",)),
        Check("gpu", "gpu", {"container": "gpu"}),
        exec_check("after-gpu", needs=("gpu",)),
        exec_check("fine"),
        exec_check("after-fine", needs=("fine",)),
        containers=(
            Container("web", image="x"),
            Container("gpu", image="x", gpus=GpuRequest(optional=True)),
        ),
    )
    run = run_checks(engine, lab)
    got = {r.id: (r.status, r.message) for r in run.results}
    assert got["after-broken"] == ("blocked", "needs broken, which did not pass")
    assert got["after-after"] == ("blocked", "needs after-broken, which did not pass")
    assert got["gpu"][0] == "skipped" and "optional" in got["gpu"][1]
    assert got["gpu"][1].endswith("and it has no nvidia runtime")
    assert got["after-gpu"] == ("skipped", "needs gpu, skipped")
    assert got["after-fine"][0] == "pass"
    assert [r.id for r in run.results] == [c.id for c in lab.checks]  # spec order


def test_score_total_and_ok() -> None:
    engine = FakeEngine()
    engine.running("lab7-web")
    engine.exec_script["false"] = [CommandResult(1, "", "")]
    engine.exec_script["nvidia-smi"] = [CommandResult(127, "", "not found")]
    engine.exec_script["sh"] = [CommandResult(1, "", "")]
    lab = lab_with(
        exec_check("a", points=3),
        exec_check("b", cmd="false", points=2),
        Check("gpu", "gpu", {"container": "web"}, points=5),  # web's GPU is not optional
    )
    run = run_checks(engine, lab)
    assert (run.score, run.total, run.ok) == (3, 10, False)
    assert run.counts() == {"pass": 1, "fail": 2, "blocked": 0, "skipped": 0}
    assert run.to_dict()["version"] == 1


def test_checks_run_in_parallel() -> None:
    engine = FakeEngine()
    engine.running("lab7-web")
    engine.exec_delay = 0.15
    lab = lab_with(*(exec_check(f"c{i}") for i in range(8)))
    run = run_checks(engine, lab, parallel=8)
    assert all(r.status == "pass" for r in run.results)
    assert run.duration < 0.15 * 8 / 2
    serial = run_checks(engine, lab, parallel=1)
    assert serial.duration > 0.15 * 8 * 0.9


def test_stages_and_only_select_checks_and_pull_needs_in() -> None:
    lab = lab_with(
        exec_check("env-a", stage="env"),
        exec_check("task-a"),
        exec_check("task-b", needs=("env-a",)),
    )
    assert [c.id for c in select_checks(lab, stages=("env",))] == ["env-a"]
    assert [c.id for c in select_checks(lab, stages=("task",))] == ["env-a", "task-a", "task-b"]
    assert [c.id for c in select_checks(lab, only=("task-b",))] == ["env-a", "task-b"]


def test_unknown_only_id_names_the_lab_checks() -> None:
    with pytest.raises(UserInputError, match="no check 'zzz' in lab7") as info:
        run_checks(FakeEngine(), lab_with(exec_check("a"), exec_check("b")), only=("zzz",))
    assert info.value.hint == "checks of this lab: a, b"


def test_a_cycle_of_needs_is_blocked_not_a_hang() -> None:
    lab = lab_with(exec_check("x", needs=("y",)), exec_check("y", needs=("x",)))
    run = run_checks(FakeEngine(), lab)
    assert [(r.status, r.message) for r in run.results] == [
        ("blocked", "its needs form a cycle")
    ] * 2


def test_unknown_type_and_missing_container_fail_with_a_message() -> None:
    engine = FakeEngine()
    lab = lab_with(
        Check("odd", "htp", {}),
        exec_check("gone"),
    )
    got = {r.id: r for r in run_checks(engine, lab).results}
    assert got["odd"].status == "fail"
    assert "unknown check type 'htp'" in got["odd"].message
    assert "known types: container, dockerfile, exec, file, gpu, http" in got["odd"].message
    assert got["gone"].message == "container lab7-web does not exist"


def test_a_crashing_check_type_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import provisioner.checks.exec as exec_module

    def boom(ctx: Any, spec: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setattr(exec_module, "check_exec", boom)
    engine = FakeEngine()
    engine.running("lab7-web")
    lab = lab_with(exec_check("crash"), Check("up", "container", {"container": "web"}))
    got = {r.id: r for r in run_checks(engine, lab).results}
    assert got["crash"].message == "internal error in check type 'exec': RuntimeError('kaput')"
    assert got["up"].status == "pass"


def test_instance_names_follow_labels_resource_name() -> None:
    engine = FakeEngine()
    engine.running("lab7-alice-web", labels={"labup.managed": "true", "labup.lab": "lab7",
                                              "labup.instance": "alice", "labup.resource": "web"})
    lab = lab_with(Check("up", "container", {"container": "web"}))
    assert run_checks(engine, lab, instance="alice").results[0].message == (
        "lab7-alice-web: running"
    )
