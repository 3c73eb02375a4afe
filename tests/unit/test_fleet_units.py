"""Fleet logic without an engine: host selection, outcome mapping, --only-failed, placement,
host-key verification, the class report and the summary. The real-host proof is in
tests/integration/test_fleet*.py and test_ssh*.py; these pin the edges."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import paramiko
import pytest

from labspec.errors import EngineUnreachable, LabupError, UserInputError
from labspec.model import Container, GpuRequest, Host, Inventory, Lab, Mount
from provisioner.checks.results import CheckResult, CheckRun
from provisioner.engine.gpus import gpus_needed, parse_nvidia_smi
from provisioner.engine.protocol import CommandResult
from provisioner.engine.ssh_keys import HostKeyError, SshTarget, fingerprint, verify_host_key
from provisioner.lifecycle.progress import QuietReporter
from provisioner.report.class_report import HostRun, build_report
from provisioner.targets.failed_hosts import failed_file, load_failed, record_failed
from provisioner.targets.file_sync import remote_lab
from provisioner.targets.live_view import PlainView, print_summary
from provisioner.targets.runner import (
    Done,
    FleetResult,
    HostSkipped,
    TargetContext,
    run_fleet,
)
from provisioner.targets.select import TargetOptions, select_hosts
from provisioner.targets.target import Target


class FakeEngine:
    """Just enough of the Engine protocol for the runner."""

    def __init__(self, name: str) -> None:
        self.host_label = name
        self.url = f"fake://{name}"
        self.closed = False

    def info(self) -> dict[str, Any]:
        return {"Name": self.host_label}

    def close(self) -> None:
        self.closed = True


def _hosts(*names: str) -> tuple[Host, ...]:
    return tuple(Host(name=n, address="127.0.0.1", port=22000 + i) for i, n in enumerate(names))


def _targets(*names: str) -> tuple[Target, ...]:
    return tuple(Target.from_host(h) for h in _hosts(*names))


def _record(inv: Path, command: str, result: FleetResult) -> Path | None:
    return record_failed(inv, command, result.failed, [o.host for o in result.outcomes])


def _inventory(tmp_path: Path) -> Inventory:
    hosts = list(_hosts("pc01", "pc02", "pc03", "gpu1"))
    hosts[2] = dataclasses.replace(hosts[2], labels={"room": "b12"})
    hosts[3] = dataclasses.replace(hosts[3], labels={"room": "b12"})
    return Inventory(
        path=tmp_path / "class.yml",
        hosts=tuple(hosts),
        groups={"front": ("pc01", "pc02"), "gpus": ("gpu1",)},
    )


def test_limit_takes_names_groups_and_globs_in_inventory_order(tmp_path: Path) -> None:
    inv = _inventory(tmp_path)
    assert [h.name for h in select_hosts(inv, ["gpus,pc02"])] == ["pc02", "gpu1"]
    assert [h.name for h in select_hosts(inv, ["front", "pc0*"])] == ["pc01", "pc02", "pc03"]
    assert [h.name for h in select_hosts(inv, None, only=["pc03"])] == ["pc03"]
    assert [h.name for h in select_hosts(inv, ["room=b12"])] == ["pc03", "gpu1"]


def test_unknown_limit_names_the_valid_hosts_and_groups(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as info:
        select_hosts(_inventory(tmp_path), ["pc9"])
    assert "--limit 'pc9' is neither a host nor a group" in str(info.value)
    assert "hosts: pc01, pc02, pc03, gpu1; groups: front, gpus" in str(info.value)
    with pytest.raises(UserInputError, match="matches no host"):
        select_hosts(_inventory(tmp_path), ["lab*"])
    with pytest.raises(UserInputError, match="no host has the label room=a1"):
        select_hosts(_inventory(tmp_path), ["room=a1"])


def test_each_kind_of_failure_stays_on_its_own_host() -> None:
    engines: dict[str, FakeEngine] = {}

    def connect(target: Target) -> Any:
        if target.name == "down":
            raise EngineUnreachable("cannot reach the SSH server", host=target.name)
        engines[target.name] = FakeEngine(target.name)
        return engines[target.name]

    def action(ctx: TargetContext) -> Done[str]:
        ctx.step("working")
        name = ctx.target.name
        if name == "skip":
            raise HostSkipped("needs 1 GPU(s)")
        if name == "bad":
            raise LabupError("the lab failed")
        if name == "bug":
            raise RuntimeError("boom")
        return Done("done", "")

    hosts = _targets("ok", "down", "skip", "bad", "bug")
    result = run_fleet(hosts, action, parallel=2, connector=connect)
    got = {o.host: (o.status, o.message) for o in result.outcomes}
    assert [o.host for o in result.outcomes] == ["ok", "down", "skip", "bad", "bug"]
    assert got["ok"] == ("ok", "")
    assert got["down"][0] == "unreachable" and "cannot reach" in got["down"][1]
    assert got["skip"] == ("skipped", "needs 1 GPU(s)")
    assert got["bad"] == ("failed", "the lab failed")
    assert got["bug"] == ("failed", "unexpected RuntimeError: boom")
    assert result.failed == ("down", "bad", "bug") and result.exit_code == 1
    assert all(e.closed for e in engines.values())  # every connection closed, even on errors
    done = result.outcome("ok").done
    assert done is not None and done.value == "done"


def test_parallel_below_one_is_refused() -> None:
    with pytest.raises(UserInputError, match="--parallel must be at least 1"):
        TargetOptions(inventory=Path("class.yml"), parallel=0).check()


def test_only_failed_record_round_trip(tmp_path: Path) -> None:
    inv = tmp_path / "class.yml"
    with pytest.raises(UserInputError, match="no earlier fleet run is recorded"):
        load_failed(inv)
    def fails_on_b(ctx: TargetContext) -> Done[str]:
        if ctx.target.name == "b":
            raise LabupError("x")
        return Done("ok", "")

    result = run_fleet(_targets("a", "b"), fails_on_b, connector=lambda t: FakeEngine(t.name))
    path = _record(inv, "up 5", result)
    assert path == failed_file(inv) == tmp_path / ".class.yml.labup-failed.json"
    assert json.loads(path.read_text())["ran"] == ["a", "b"]
    assert load_failed(inv) == ("up 5", ("b",))
    # a later status that went well does not hide what the last up left failed
    _record(inv, "status 5", run_fleet(_targets("a", "b"), lambda ctx: Done("ok", ""),
                                       connector=lambda t: FakeEngine(t.name)))
    assert load_failed(inv, "up 5") == ("up 5", ("b",))
    assert load_failed(inv, "status") == ("status 5", ())
    assert load_failed(inv) == ("status 5", ())  # without a command: the last run
    assert load_failed(inv, "check 5") == ("status 5", ())  # no check yet: the last run


def _lab(*containers: Container, folder: Path = Path("/labs/x")) -> Lab:
    return Lab(api_version="labup/v1", id=5, name="x", title="X", description="",
               path=folder / "lab.yaml", folder=folder, containers=containers)


def test_gpus_needed_ignores_optional_requests_and_counts_all_as_one() -> None:
    lab = _lab(
        Container("a", "img", gpus=GpuRequest(count=2)),
        Container("b", "img", gpus=GpuRequest(count="all")),
        Container("c", "img", gpus=GpuRequest(count=4, optional=True)),
        Container("d", "img"),
    )
    assert gpus_needed(lab) == 2
    assert gpus_needed(_lab(Container("c", "img", gpus=GpuRequest(optional=True)))) == 0


def test_nvidia_smi_output_and_failures() -> None:
    two = parse_nvidia_smi(CommandResult(0, "0, Tesla T4, 15360 MiB\n1, Tesla T4, 15360 MiB\n"))
    assert (two.count, two.text()) == (2, "2 GPU(s): Tesla T4 [probe]")
    missing = parse_nvidia_smi(CommandResult(127, "", "sh: nvidia-smi: not found"))
    assert missing.text() == "no GPU (nvidia-smi not found)"
    broken = parse_nvidia_smi(CommandResult(9, "NVIDIA-SMI has failed: driver mismatch\n"))
    assert broken.text() == "no GPU (NVIDIA-SMI has failed: driver mismatch)"


def test_remote_lab_moves_only_binds_inside_the_lab_folder() -> None:
    lab = _lab(Container("web", "img", mounts=(
        Mount("bind", "/site", source="/labs/x/site"),
        Mount("bind", "/etc/hosts.lab", source="/etc/hosts"),
        Mount("volume", "/data", source="data"),
    )))
    moved = remote_lab(lab, "/home/u/.labup/labs/lab5-default")
    sources = [m.source for m in moved.containers[0].mounts]
    assert sources == ["/home/u/.labup/labs/lab5-default/site", "/etc/hosts", "data"]
    assert moved.folder == Path("/home/u/.labup/labs/lab5-default")
    assert lab.containers[0].mounts[0].source == "/labs/x/site"  # the original is untouched


def test_host_keys_unknown_changed_and_known(tmp_path: Path) -> None:
    server = paramiko.ECDSAKey.generate()
    other = paramiko.ECDSAKey.generate()
    target = SshTarget("pc01.lab", 2222, "root")
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(HostKeyError) as unknown:
        verify_host_key(target, server, known)
    assert fingerprint(server) in str(unknown.value)
    assert f"ssh-keyscan -p 2222 pc01.lab >> {known}" in str(unknown.value)

    known.write_text(f"[pc01.lab]:2222 {other.get_name()} {other.get_base64()}\n")
    with pytest.raises(HostKeyError) as changed:
        verify_host_key(target, server, known)
    assert "REMOTE HOST KEY HAS CHANGED" in str(changed.value)
    assert fingerprint(other) in str(changed.value)

    known.write_text(f"[pc01.lab]:2222 {server.get_name()} {server.get_base64()}\n")
    verify_host_key(target, server, known)  # accepted: no exception


def _run(*results: tuple[str, str, float, float, str]) -> CheckRun:
    run = CheckRun(lab="lab5", title="Five", host="h", instance="default", started="now")
    run.results = [
        CheckResult(id=i, type="exec", stage="task", status=s, message="", hint=hint,
                    description="", points=points, earned=earned)
        for i, s, earned, points, hint in results
    ]
    return run


def test_class_report_rows_columns_and_totals() -> None:
    hosts = [
        HostRun("pc01", "ann", _run(("a", "pass", 1, 1, ""), ("b", "pass", 2, 2, ""))),
        HostRun("pc02", "<ben>", _run(("a", "pass", 1, 1, ""), ("b", "fail", 0, 2, "do <b>"))),
        HostRun("pc03", "pc03", None, "unreachable", "cannot reach\nmore"),
    ]
    report = build_report("lab5", "Five", hosts)
    assert [c.id for c in report.columns] == ["a", "b"]
    assert [(r.learner, r.score, r.total, r.percent) for r in report.rows] == [
        ("ann", 3, 3, 100.0), ("<ben>", 1, 3, 33.3), ("pc03", 0, 0, None)]
    assert report.rows[2].error == "cannot reach"
    assert report.pass_rate("b") == "1/2" and report.average == 66.7
    # hints_used, solved and variant come after the original columns
    assert report.to_csv().splitlines()[2] == "<ben>,pc02,graded,1,0,1,3,33.3,,0,,"
    html = report.to_html()
    assert "&lt;ben&gt;" in html and "<ben>" not in html and "do &lt;b&gt;" in html


def test_plain_view_and_summary_name_the_failed_hosts() -> None:
    out = io.StringIO()
    view = PlainView(out)
    view.step("pc01", "pulling")
    view.step("pc01", "pulling")  # repeated steps are not repeated
    def fails_on_pc02(ctx: TargetContext) -> Done[str]:
        if ctx.target.name == "pc02":
            raise LabupError("port 8080 taken\nmore detail")
        return Done("fine", "fine")

    result = run_fleet(_targets("pc01", "pc02"), fails_on_pc02,
                       connector=lambda t: FakeEngine(t.name), view=view)
    assert out.getvalue().count("[pc01] pulling") == 1
    assert "[pc02] FAILED" in out.getvalue() and "port 8080 taken" in out.getvalue()
    summary = io.StringIO()
    print_summary(result, command="up 5", stream=summary)
    lines = summary.getvalue().splitlines()
    assert lines[0].startswith("up 5: 2 host(s) in ")
    assert lines[3].split()[:2] == ["pc02", "FAILED"] and lines[3].endswith("port 8080 taken")
    assert lines[-1] == "failed: pc02"


def test_after_ctrl_c_the_next_step_fails_once_so_cleanup_can_report() -> None:
    from provisioner.targets.runner import FleetCancelled

    seen: list[str] = []
    ctx = TargetContext(target=_targets("a")[0], engine=FakeEngine("a"),
                        reporter=QuietReporter(), _report=seen.append)
    ctx.step("creating web")
    ctx.cancel.set()
    with pytest.raises(FleetCancelled, match="interrupted"):
        ctx.step("starting web")
    ctx.step("removing web")  # the cleanup's own steps go through
    assert seen == ["creating web", "removing web"]
