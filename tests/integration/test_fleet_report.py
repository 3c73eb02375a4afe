"""`labup check LAB -i inventory --report ...` on the classroom: one class report, learners as
rows, checks as columns, per-host rendering of the checks (each learner has their own answer)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from classroom import Classroom, down_on, fleet, up_on

from provisioner.cli.main import main
from provisioner.engine import labels as L

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Greetings
containers:
  web:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: web-running
    description: The web container runs
    stage: env
    container: {{container: web, state: running}}
  - id: greeting
    description: /tmp/greeting greets you by name
    hint: "echo 'hello {{{{ host.vars.learner }}}}' > /tmp/greeting"
    points: 2
    exec:
      container: web
      command: [cat, /tmp/greeting]
      stdout: "hello {{{{ host.vars.learner }}}}"
"""


def _inventory(classroom: Classroom, path: Path) -> Path:
    port = {h.name: h.port for h in (*classroom.good, *classroom.broken)}
    path.write_text(
        "apiVersion: labup/v1\nkind: Inventory\n"
        f"defaults: {{address: 127.0.0.1, user: root, key: {classroom.key}, "
        f"known_hosts: {classroom.known_hosts}}}\n"
        "hosts:\n"
        f"  h1: {{port: {port['h1']}, vars: {{learner: alice}}}}\n"
        f"  h2: {{port: {port['h2']}, vars: {{learner: bob}}}}\n"
        f"  h3: {{port: {port['h3']}, vars: {{learner: '<b>eve</b>'}}}}\n"
        f"  hdown: {{port: {port['hdown']}, vars: {{learner: dan}}}}\n"
    )
    return path


def test_class_report_has_a_row_per_learner_and_a_column_per_check(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"report-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    inventory = _inventory(classroom, tmp_path / "class.yml")
    reports = [tmp_path / "class.html", tmp_path / "class.json", tmp_path / "class.csv"]
    try:
        up = fleet(classroom.good, up_on(spec, checks=False), parallel=3)
        assert up.failed == ()
        answers = {"h1": "hello alice", "h2": "hello carol"}  # h2 wrong, h3 nothing
        for host, text in answers.items():
            web = classroom.client(host).containers.get(f"{name}-web")
            assert web.exec_run(["sh", "-c", f"echo '{text}' > /tmp/greeting"]).exit_code == 0

        # through the CLI: labup check LAB -i INVENTORY --report class.html
        with pytest.raises(SystemExit) as code:
            main(["check", str(spec), "-i", str(inventory), "--report", str(reports[0])])
        captured = capsys.readouterr()
        assert code.value.code == 1
        assert "failed: hdown" in captured.out
        assert "1 of 4 host(s) failed: hdown" in captured.err
        # and the JSON and CSV forms
        for path in reports[1:]:
            with pytest.raises(SystemExit) as code:
                main(["check", str(spec), "-i", str(inventory), "--report", str(path),
                      "--parallel", "4"])
            assert code.value.code == 1
            assert "1 of 4 host(s) failed: hdown" in capsys.readouterr().err

        doc = json.loads(reports[1].read_text())
        assert [c["id"] for c in doc["checks"]] == ["web-running", "greeting"]
        rows = {r["learner"]: r for r in doc["learners"]}
        assert (rows["alice"]["score"], rows["alice"]["total"]) == (3, 3)
        assert rows["bob"]["checks"]["greeting"]["status"] == "fail"
        assert (rows["bob"]["score"], rows["<b>eve</b>"]["score"]) == (1, 1)
        assert rows["dan"]["status"] == "unreachable"
        assert "cannot reach the SSH server" in rows["dan"]["error"]

        table = list(csv.DictReader(io.StringIO(reports[2].read_text())))
        assert [r["learner"] for r in table] == ["alice", "bob", "<b>eve</b>", "dan"]
        assert table[0]["greeting"] == "2" and table[1]["greeting"] == "0"
        assert table[0]["percent"] == "100" and table[3]["status"] == "unreachable"

        html = reports[0].read_text()
        assert html.startswith("<!DOCTYPE html>")
        assert "&lt;b&gt;eve&lt;/b&gt;" in html and "<b>eve</b>" not in html  # autoescaped
        assert '<td class="pass"' in html and '<td class="fail"' in html
        assert "unreachable:" in html
        assert "hint: echo &#39;hello bob&#39; &gt; /tmp/greeting" in html
    finally:
        fleet(classroom.good, down_on(name), parallel=3)
        for h in classroom.good:
            left = classroom.client(h.name).containers.list(
                all=True, filters={"label": f"{L.LAB}={name}"})
            assert left == []
