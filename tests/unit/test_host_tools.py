"""What doctor says of the commands a learner types on a host: docker, Compose, labup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provisioner.engine.protocol import CommandResult
from provisioner.targets.doctor import DoctorReport, _tools
from provisioner.targets.host_tools import probe_tools


class FakeShell:
    """A host where only the commands in ``answers`` exist."""

    label = "root@pc07:22"

    def __init__(self, answers: dict[tuple[str, ...], str]) -> None:
        self.answers = answers

    def run(
        self, argv: Sequence[str], *, timeout: float | None = 30.0, cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        for prefix, out in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                return CommandResult(0, out)
        return CommandResult(127, "", f"sh: {argv[0]}: not found")

    def sftp(self) -> Any:
        raise AssertionError("not used")


def _lab_needing_compose() -> Any:
    from pathlib import Path

    from labspec.model import Lab

    return Lab(api_version="labup/v1", id=7, name="seven", title="Compose", description="",
               path=Path("/l/lab.yaml"), folder=Path("/l"), requires=("docker-compose",))


def test_compose_v2_is_preferred_and_versions_are_read() -> None:
    shell = FakeShell({("docker", "version"): "28.2.2\n", ("docker", "compose"): "v2.40.3\n",
                       ("docker-compose",): "1.29.2\n"})
    tools = probe_tools(shell)
    assert tools.compose == "docker compose 2.40.3"
    assert tools.text() == "docker CLI 28.2.2, docker compose 2.40.3, no labup"


def test_a_compose_lab_on_a_host_without_compose_is_not_ready() -> None:
    report = DoctorReport("pc07")
    _tools(report, FakeShell({("docker", "version"): "20.10.24\n"}), _lab_needing_compose())
    (finding,) = report.findings
    assert finding.level == "fail" and "lab7 needs Docker Compose" in finding.detail
    ok = DoctorReport("pc08")
    _tools(ok, FakeShell({("docker", "version"): "20.10.24\n", ("docker-compose",): "1.29.2\n"}),
           _lab_needing_compose())
    assert ok.findings[0].level == "ok" and "docker-compose 1.29.2" in ok.findings[0].detail
