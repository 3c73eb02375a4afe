"""The learner's verbs on the SSH classroom: `hint -i` and `solve -i` work in each host's own
learner state (solve runs the steps on the host), `check -i --report` shows every learner's
hints, solved objectives and variant; `solve --host ssh://` runs the steps on the far side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from classroom import Classroom, down_on, fleet, up_on

from labspec import load_lab
from provisioner.cli.main import main

pytestmark = [pytest.mark.docker, pytest.mark.ssh, pytest.mark.fleet]

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Words
params:
  word:
    type: string
    random: {{choices: [otter, falcon, lynx, heron, ibis, orca, wren, kite]}}
containers:
  box:
    image: labup-test/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: box-runs
    stage: env
    container: {{container: box}}
  - id: the-word
    description: "/tmp/word holds {{{{ word }}}}"
    hint: [Use docker exec, "echo {{{{ word }}}} > /tmp/word in the box"]
    points: {{value: 2, hint_cost: 0.5}}
    exec: {{container: box, command: [cat, /tmp/word], stdout: "{{{{ word }}}}"}}
solution:
  - check: the-word
    run: solution/word.sh
"""

SOLUTION = """\
#!/bin/sh
set -eu
if [ "$LABUP_INSTANCE" = default ]; then p=$LABUP_LAB; else p=$LABUP_LAB-$LABUP_INSTANCE; fi
docker exec "$p-box" sh -c "echo $LABUP_PARAM_WORD > /tmp/word"
pwd > /tmp/labup-solve-ran-in-{name}-$(hostname -I 2>/dev/null | tr -d ' ' || echo x)
"""


def _inventory(classroom: Classroom, path: Path, states: Path) -> Path:
    lines = ["apiVersion: labup/v1", "kind: Inventory",
             f"defaults: {{address: 127.0.0.1, user: root, key: {classroom.key}, "
             f"known_hosts: {classroom.known_hosts}}}", "hosts:"]
    for h in classroom.good[:2]:
        lines.append(f"  {h.name}: {{port: {h.port}, vars: {{learner: {h.vars['learner']}, "
                     f"labup_dir: {h.vars['labup_dir']}, labup_state_dir: {states / h.name}}}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hint_solve_and_the_class_report_use_each_hosts_own_state(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"words-{unique}"
    folder = tmp_path / name
    (folder / "solution").mkdir(parents=True)
    (folder / "solution" / "word.sh").write_text(SOLUTION.format(name=name))
    spec = folder / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    states = tmp_path / "states"
    inventory = _inventory(classroom, tmp_path / "class.yml", states)
    h1, h2 = classroom.good[:2]
    try:
        assert fleet((h1, h2), up_on(spec, checks=False)).failed == ()
        # alice (h1) asks for a hint twice; bob (h2) has labup solve it
        for _ in range(2):
            with pytest.raises(SystemExit) as code:
                main(["hint", str(spec), "-i", str(inventory), "--limit", "h1"])
            assert code.value.code == 0
        with pytest.raises(SystemExit) as code:
            main(["solve", str(spec), "-i", str(inventory), "--limit", "h2"])
        capsys.readouterr()
        assert code.value.code == 0
        # the steps ran on h2, in labup's copy of the lab folder there
        ran = list(Path("/tmp").glob(f"labup-solve-ran-in-{name}-*"))
        assert ran and ran[0].read_text().strip().startswith(str(h2.vars["labup_dir"]))
        for marker in ran:
            marker.unlink()
        # each host's state is in its own folder, written over SFTP
        h1_state = json.loads((states / "h1" / "labs" / f"{name}.default.json").read_text())
        assert h1_state["checks"]["the-word"]["hints"] == 2
        h2_state = json.loads((states / "h2" / "labs" / f"{name}.default.json").read_text())
        assert h2_state["checks"]["the-word"]["solved"] is True

        report = tmp_path / "class.json"
        with pytest.raises(SystemExit) as code:
            main(["check", str(spec), "-i", str(inventory), "--report", str(report)])
        capsys.readouterr()
        assert code.value.code == 1  # alice's check fails
        doc = json.loads(report.read_text())
        rows = {r["learner"]: r for r in doc["learners"]}
        words = {who: load_lab(spec, learner=who).values["word"] for who in ("alice", "bob")}
        assert rows["alice"]["variant"] == {"word": words["alice"]}
        assert rows["bob"]["variant"] == {"word": words["bob"]}
        assert rows["alice"]["hints_used"] == 2 and rows["alice"]["solved"] == []
        assert rows["bob"]["solved"] == ["the-word"] and rows["bob"]["hints_used"] == 0
        assert rows["bob"]["checks"]["the-word"]["earned"] == 2.0
        # the instructor's check moved nobody's hints on
        again = json.loads((states / "h1" / "labs" / f"{name}.default.json").read_text())
        assert again["checks"]["the-word"]["hints"] == 2
        html = tmp_path / "class.html"
        with pytest.raises(SystemExit):
            main(["check", str(spec), "-i", str(inventory), "--report", str(html)])
        capsys.readouterr()
        page = html.read_text()
        assert "(solved by labup)" in page and f"word={words['alice']}" in page
    finally:
        fleet((h1, h2), down_on(name))


def test_solve_on_one_ssh_host_runs_the_steps_there(
    classroom: Classroom, tmp_path: Path, unique: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"words-{unique}"
    folder = tmp_path / name
    (folder / "solution").mkdir(parents=True)
    (folder / "solution" / "word.sh").write_text(SOLUTION.format(name=name))
    spec = folder / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    h3 = classroom.good[2]
    monkeypatch.setenv("LABUP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LABUP_SSH_KEY", str(classroom.key))
    monkeypatch.setenv("LABUP_KNOWN_HOSTS", str(classroom.known_hosts))
    url = f"ssh://root@127.0.0.1:{h3.port}"
    try:
        assert fleet((h3,), up_on(spec, checks=False)).failed == ()
        with pytest.raises(SystemExit) as code:
            main(["solve", str(spec), "--host", url, "--learner", "erin", "--json"])
        out = capsys.readouterr().out
        assert code.value.code == 0, out
        doc = json.loads(out)
        assert doc["solved"] == ["the-word"]
        # on one engine the learner's state is this machine's
        here = json.loads((tmp_path / "state" / "labs" / f"{name}.default.json").read_text())
        assert here["checks"]["the-word"]["solved"] and here["learner"] == "erin"
        ran = list(Path("/tmp").glob(f"labup-solve-ran-in-{name}-*"))
        assert ran and "/labs/" in ran[0].read_text()  # in the far side's copy, not here
        for marker in ran:
            marker.unlink()
    finally:
        fleet((h3,), down_on(name))


def test_hosts_sharing_one_home_each_leave_a_whole_record(
    classroom: Classroom, tmp_path: Path
) -> None:
    """Classroom machines may share a home (NFS): three hosts write one learner record at
    once, over their own SSH connections, and every write lands whole."""
    import threading

    from classroom import connect_host

    from provisioner.learner.state import RemoteStore

    engines = [connect_host(h) for h in classroom.good[:3]]
    shared = str(tmp_path / "shared-state")
    errors: list[BaseException] = []

    def write(engine: object, k: int) -> None:
        store = RemoteStore(engine.ssh_session().sftp(), shared, host=f"h{k}")  # type: ignore[attr-defined]
        try:
            for n in range(15):
                store.update("lab5", "default", lambda r, n=n: setattr(r, "learner", f"h{k}-{n}"))
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    try:
        threads = [threading.Thread(target=write, args=(e, k)) for k, e in enumerate(engines)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        record = json.loads((tmp_path / "shared-state/labs/lab5.default.json").read_text())
        assert record["learner"] in {f"h{k}-14" for k in range(3)}
        assert not [p.name for p in (tmp_path / "shared-state/labs").iterdir()
                    if p.name.endswith(".labup-tmp")]
    finally:
        for e in engines:
            e.close()
