"""One engine is a classroom of one: `--host ssh://` and `-i` run the same action, so GPU
placement, per-host rendering and the failure messages are the same on both paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from classroom import Classroom

from provisioner.cli.main import main
from provisioner.engine import labels as L

pytestmark = [pytest.mark.docker, pytest.mark.ssh]

GPU_SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: GPU placement
containers:
  trainer:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    gpus: 1
"""

BROKEN_ENV = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: An environment check that cannot pass
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: marker-present
    stage: env
    hint: the image should carry /marker
    exec: {{container: web, command: [cat, /marker]}}
"""


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


def _ssh(classroom: Classroom, name: str) -> list[str]:
    host = classroom.host(name)
    return ["--host", f"ssh://root@127.0.0.1:{host.port}"]


@pytest.fixture
def ssh_env(classroom: Classroom, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABUP_SSH_KEY", str(classroom.key))
    monkeypatch.setenv("LABUP_KNOWN_HOSTS", str(classroom.known_hosts))


def test_gpu_placement_on_one_ssh_engine_is_the_fleets(
    classroom: Classroom, tmp_path: Path, unique: str, ssh_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"onepath-gpu-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(GPU_SPEC.format(name=name))
    try:
        code, _, err = _run(["up", str(spec), "-q", *_ssh(classroom, "h1")], capsys)
        assert code == 1
        assert f"{name} needs 1 GPU(s) (for trainer); this host has no GPU" in err
        assert "Traceback" not in err
        left = classroom.client("h1").containers.list(
            all=True, filters={"label": f"{L.LAB}={name}"})
        assert left == []  # refused before anything was created
        code, _, err = _run(["up", str(spec), "-q", *_ssh(classroom, classroom.gpu_host)],
                            capsys)
        assert code == 0, err
        trainer = classroom.client(classroom.gpu_host).containers.get(f"{name}-trainer")
        assert trainer.attrs["HostConfig"]["DeviceRequests"][0]["Count"] == 1
    finally:
        _run(["down", str(spec), "-q", *_ssh(classroom, classroom.gpu_host)], capsys)


def test_a_failing_env_check_is_named_with_its_cause_on_both_paths(
    classroom: Classroom, tmp_path: Path, unique: str, ssh_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"onepath-env-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(BROKEN_ENV.format(name=name))
    inventory = tmp_path / "class.yml"
    inventory.write_text(classroom.inventory_path.read_text())
    try:
        code, _, err = _run(["up", str(spec), "-q", *_ssh(classroom, "h1")], capsys)
        assert code == 1
        first = f"{name} is up but env check marker-present fails: `cat /marker` exited 1"
        assert first in err
        assert "hint: the image should carry /marker" in err
        code, out, _ = _run(["up", str(spec), "-i", str(inventory), "--limit", "h1,h2"],
                            capsys)
        assert code == 1
        rows = [line for line in out.splitlines() if line.startswith(("h1 ", "h2 "))]
        assert len(rows) == 2 and all(first in row for row in rows), out
    finally:
        _run(["down", str(spec), "-i", str(inventory), "--limit", "h1,h2"], capsys)


LINT_SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: The learner writes a Dockerfile
containers:
  box:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: runs-as-a-user
    dockerfile: {{rule: user, path: app/Dockerfile}}
"""


def test_checks_read_the_learners_files_on_their_machine(
    classroom: Classroom, tmp_path: Path, unique: str, ssh_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"onepath-lint-{unique}"
    folder = tmp_path / "lab"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")  # the lab's: no USER
    spec = folder / "lab.yaml"
    spec.write_text(LINT_SPEC.format(name=name))
    h1 = classroom.host("h1")
    inventory = tmp_path / "class.yml"
    inventory.write_text(classroom.inventory_path.read_text())
    try:
        code, _, err = _run(["up", str(spec), "-q", "-i", str(inventory), "--limit", "h1"], capsys)
        assert code == 0, err
        copy = f"{h1.vars['labup_dir']}/labs/{name}-default"
        session = classroom.client("h1")
        from provisioner.engine.ssh_docker import ssh_session_of

        shell = ssh_session_of(session)
        assert shell is not None
        with shell.sftp().open(f"{copy}/app/Dockerfile", "w") as fh:  # the learner's work
            fh.write("FROM busybox:1.36\nUSER nobody\n")
        code, out, _ = _run(["check", str(spec), "-i", str(inventory), "--limit", "h1"], capsys)
        assert code == 0, out
        code, out, _ = _run(["check", str(spec), "--json"], capsys)  # this machine's copy
        assert code == 1 and "no USER" in out
        # a second up keeps the learner's Dockerfile; reset brings the lab's back
        _run(["up", str(spec), "-q", "-i", str(inventory), "--limit", "h1"], capsys)
        with shell.sftp().open(f"{copy}/app/Dockerfile") as fh:
            assert b"USER nobody" in fh.read()
        _run(["reset", str(spec), "-q", "-i", str(inventory), "--limit", "h1"], capsys)
        with shell.sftp().open(f"{copy}/app/Dockerfile") as fh:
            assert fh.read() == b"FROM busybox:1.36\n"
    finally:
        _run(["down", str(spec), "-i", str(inventory), "--limit", "h1"], capsys)


RW_SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: A folder the container writes
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    mounts:
      - {{type: bind, source: data, target: /data}}
"""


def test_over_ssh_up_leaves_a_read_write_folder_to_its_containers_and_reset_restores_it(
    classroom: Classroom, tmp_path: Path, unique: str, ssh_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"onepath-rw-{unique}"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "seed.txt").write_text("seed\n")
    spec = tmp_path / "lab.yaml"
    spec.write_text(RW_SPEC.format(name=name))
    client = classroom.client("h1")

    def inside(*argv: str) -> str:
        out: bytes = client.containers.get(f"{name}-web").exec_run(list(argv)).output
        return out.decode()

    try:
        code, _, err = _run(["up", str(spec), "-q", *_ssh(classroom, "h1")], capsys)
        assert code == 0, err
        assert inside("cat", "/data/seed.txt") == "seed\n"
        inside("sh", "-c", "echo mine > /data/made.txt")
        (tmp_path / "data" / "seed.txt").write_text("changed\n")

        code, out, err = _run(["up", str(spec), *_ssh(classroom, "h1")], capsys)
        assert code == 0, err
        assert "1 kept as they are on the host" in out + err
        assert inside("cat", "/data/seed.txt", "/data/made.txt") == "seed\nmine\n"

        code, _, err = _run(["reset", str(spec), "-q", *_ssh(classroom, "h1")], capsys)
        assert code == 0, err
        assert inside("cat", "/data/seed.txt") == "changed\n"
        assert inside("ls", "/data") == "seed.txt\n"
    finally:
        _run(["down", str(spec), "-q", *_ssh(classroom, "h1")], capsys)
        left = client.containers.list(all=True, filters={"label": f"{L.LAB}={name}"})
        assert left == []
