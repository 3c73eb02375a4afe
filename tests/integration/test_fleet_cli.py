"""The -i/--inventory form of up, status, plan, reset and down, and --host ssh://, through the
`labup` command line, on the real classroom."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from classroom import Classroom

from provisioner.cli.main import main
from provisioner.engine import labels as L
from provisioner.engine.ssh_docker import ssh_session_of

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: "CLI fleet test for {{{{ host.vars.learner | default('solo') }}}}"
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; httpd -f -p 80 -h /site & wait"]
    env: {{LEARNER: "{{{{ host.vars.learner | default('solo') }}}}"}}
    mounts:
      - {{type: bind, source: site, target: /site, read_only: true}}
"""


def _lab(tmp_path: Path, name: str) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(f"hello from {name}\n")
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    return spec


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


def _summary_hosts(out: str) -> list[str]:
    """Host names in the summary table (the rows between its header and the last line)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("host "))
    return [line.split()[0] for line in lines[start + 1:-1]]


def _inventory(classroom: Classroom, tmp_path: Path) -> Path:
    """A copy of the classroom inventory in tmp_path, so --only-failed records stay private."""
    copy = tmp_path / "class.yml"
    copy.write_text(classroom.inventory_path.read_text())
    return copy


def test_fleet_commands_through_the_cli(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"cli-{unique}"
    (tmp_path / "lab").mkdir()
    spec = _lab(tmp_path / "lab", name)
    inv = _inventory(classroom, tmp_path)
    try:
        code, out, err = _run(["up", str(spec), "-i", str(inv), "--limit", "h1,h2,h3,hdown",
                               "--no-check"], capsys)
        assert code == 1
        assert "1 of 4 host(s) failed: hdown" in err
        assert _summary_hosts(out) == ["h1", "h2", "h3", "hdown"]
        rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[-5:-1]}
        assert rows == {"h1": "ok", "h2": "ok", "h3": "ok", "hdown": "UNREACHABLE"}
        assert out.splitlines()[-1] == "failed: hdown"

        code, out, _ = _run(["up", str(spec), "-i", str(inv), "--only-failed", "--no-check"],
                            capsys)
        assert code == 1
        assert _summary_hosts(out) == ["hdown"]
        assert "[h1]" not in out

        code, out, _ = _run(["status", name, "-i", str(inv), "--limit", "h1,h2,h3", "--json"],
                            capsys)
        doc = json.loads(out)
        assert code == 0 and doc["failed"] == []
        for entry in doc["hosts"]:
            (instance,) = entry["result"]["instances"]
            assert instance["lab"] == name and instance["state"] == "running"

        code, out, _ = _run(["plan", str(spec), "-i", str(inv), "--limit", "h1"], capsys)
        assert code == 0
        assert "h1    ok" in out and "to keep" in out and "to create" not in out

        code, out, _ = _run(["reset", str(spec), "-i", str(inv), "--limit", "h2", "--no-check"],
                            capsys)
        assert code == 0 and f"{name} reset" in out

        code, out, _ = _run(["down", str(spec), "-i", str(inv), "--limit", "h1,h2,h3",
                             "--parallel", "2"], capsys)
        assert code == 0 and out.splitlines()[-1] == "all hosts ok"
        for h in classroom.good:
            assert classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"}) == []
    finally:
        _run(["down", str(spec), "-i", str(inv), "--limit", "h1,h2,h3"], capsys)


def test_single_remote_host_gets_the_lab_files(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"solo-{unique}"
    (tmp_path / "lab").mkdir()
    spec = _lab(tmp_path / "lab", name)
    h = classroom.host("h3")
    monkeypatch.setenv("LABUP_SSH_KEY", str(classroom.key))
    monkeypatch.setenv("LABUP_KNOWN_HOSTS", str(classroom.known_hosts))
    try:
        code, _, err = _run(["up", str(spec), "--host", h.url, "--no-check", "-q"], capsys)
        assert code == 0, err
        web = classroom.client("h3").containers.get(f"{name}-web")
        served = web.exec_run(["cat", "/site/index.html"]).output.decode()
        assert served == f"hello from {name}\n"
        assert web.attrs["Mounts"][0]["Source"].endswith(f"/.labup/labs/{name}-default/site")
    finally:
        _run(["down", str(spec), "--host", h.url, "-q"], capsys)
        client = classroom.client("h3")
        assert client.containers.list(all=True, filters={"label": f"{L.LAB}={name}"}) == []
        session = ssh_session_of(client)
        assert session is not None
        home = session.sftp().normalize(".")
        session.run(["rm", "-rf", f"{home}/.labup/labs/{name}-default"])


def test_fleet_options_need_an_inventory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(["status", "--limit", "h1"], capsys)
    assert code == 2
    assert "--limit and --only-failed go with -i INVENTORY" in err
    code, _, err = _run(["status", "-i", str(tmp_path / "nope.yml")], capsys)
    assert code == 2 and "does not exist" in err


SLOW = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Ctrl-C
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3 && touch /tmp/ready; sleep 3600 & wait"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ready"], interval: 500ms, retries: 30}}
  worker:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    depends_on: {{web: {{condition: healthy}}}}
"""


def test_ctrl_c_cleans_up_every_host_in_progress(
    classroom: Classroom, tmp_path: Path, unique: str
) -> None:
    import signal
    import subprocess
    import sys

    name = f"ctrlc-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(SLOW.format(name=name))
    inv = _inventory(classroom, tmp_path)
    labup = str(Path(sys.executable).with_name("labup"))
    proc = subprocess.Popen(
        [labup, "up", str(spec), "-i", str(inv), "--limit", "h1,h2,h3", "--no-check"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # plain lines: wait until a web container has started
            if f"container {name}-web started" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
        assert proc.returncode == 130, rest
        assert "interrupted" in rest
        for h in classroom.good:
            left = classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"})
            assert left == [], (h.name, rest)
            nets = classroom.client(h.name).networks.list(filters={"label": f"{L.LAB}={name}"})
            assert nets == [], (h.name, rest)
    finally:
        if proc.poll() is None:
            proc.kill()
        for h in classroom.good:
            for c in classroom.client(h.name).containers.list(
                    all=True, filters={"label": f"{L.LAB}={name}"}):
                c.remove(force=True)


def test_a_hosts_summary_line_carries_the_hint_of_its_error(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The live line and the summary show an error's first line: a missing image's hint (the
    bundle route) is on it, as on one engine."""
    name = f"nohint-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(f"apiVersion: labup/v1\nkind: Lab\nname: {name}\ntitle: t\n"
                    f"containers:\n  web:\n    image: labup-test/never-built-{unique}:1\n")
    inv = _inventory(classroom, tmp_path)
    code, out, _ = _run(["up", str(spec), "-i", str(inv), "--limit", "h1,h2"], capsys)
    assert code == 1
    rows = [line for line in out.splitlines() if line.startswith(("h1 ", "h2 "))]
    assert len(rows) == 2, out
    for row in rows:
        assert "could not pull" in row and "labup bundle load course.tar -i INVENTORY" in row, row
