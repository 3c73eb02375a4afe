"""The learner's side on the real engine: the events stream, hint levels, solve, progress,
reports, and variants (two learners, two labs: each solution passes only its own checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker]

LABUP = str(Path(sys.executable).parent / "labup")

SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Hints and steps
params:
  word:
    type: string
    random: {{choices: [otter, falcon, lynx, heron, ibis, orca, wren, kite]}}
containers:
  box:
    image: labup-test/busybox:latest
    command: [sh, -c, "trap 'exit 0' TERM INT; sleep 3600 & wait"]
checks:
  - id: box-runs
    stage: env
    container: {{container: box}}
  - id: has-word
    description: "/tmp/word in the box holds {{{{ word }}}}"
    hint:
      - Files in a container can be written with docker exec
      - "The word is {{{{ word }}}}: write it to /tmp/word"
      - "docker exec {{{{ lab.prefix }}}}-box sh -c 'echo {{{{ word }}}} > /tmp/word'"
    points: {{value: 3, hint_cost: [0, 1, 1.5]}}
    exec: {{container: box, command: [cat, /tmp/word], stdout: "{{{{ word }}}}"}}
  - id: has-done
    description: /tmp/done exists in the box
    hint: "docker exec {{{{ lab.prefix }}}}-box touch /tmp/done"
    needs: [has-word]
    file: {{container: box, path: /tmp/done}}
solution:
  - check: has-word
    run: [docker, exec, "{{{{ lab.prefix }}}}-box", sh, -c, "echo {{{{ word }}}} > /tmp/word"]
  - check: has-done
    run: [docker, exec, "{{{{ lab.prefix }}}}-box", touch, /tmp/done]
"""


@pytest.fixture
def lab(tmp_path: Path, unique: str, test_image: str) -> Any:
    name = f"hint-{unique}"
    folder = tmp_path / name
    folder.mkdir()
    spec = folder / "lab.yaml"
    spec.write_text(SPEC.format(name=name))
    env = {**os.environ, "LABUP_STATE_DIR": str(tmp_path / "state"), "LABUP_LEARNER": "alice",
           "COLUMNS": "250"}  # the table, unwrapped
    try:
        yield name, spec, env
    finally:
        subprocess.run([LABUP, "down", str(spec), "-q"], env=env, capture_output=True,
                       check=False)


def labup(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABUP, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL, check=False)


def check_json(env: dict[str, str], spec: Path, *extra: str) -> dict[str, Any]:
    proc = labup(env, "check", str(spec), "--json", *extra)
    assert proc.stdout, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in doc["results"]}


def test_hint_levels_advance_and_a_hint_costs_what_points_say(lab: Any, tmp_path: Path) -> None:
    name, spec, env = lab
    assert labup(env, "up", str(spec), "-q").returncode == 0
    from labspec import load_lab

    word = load_lab(spec, learner="alice").values["word"]

    first = labup(env, "check", str(spec))
    assert first.returncode == 1
    assert "hint 1/3: Files in a container can be written with docker exec" in first.stdout
    second = by_id(check_json(env, spec))["has-word"]
    assert (second["hints_used"], second["hints_total"]) == (2, 3)
    assert second["hint"] == f"The word is {word}: write it to /tmp/word"
    # blocked: its own hint waits until what it needs passes
    assert by_id(check_json(env, spec, "--stage", "task"))["has-done"]["hint"] == ""

    asked = labup(env, "hint", str(spec), "has-word")
    assert asked.returncode == 0, asked.stderr
    assert "has-word: hint 3/3" in asked.stdout and f"docker exec {name}-box" in asked.stdout
    assert "cost 2.5 point(s)" in asked.stderr

    # the learner does it (as hint 3 says); it passes, minus what the three hints cost
    subprocess.run(["docker", "exec", f"{name}-box", "sh", "-c", f"echo {word} > /tmp/word"],
                   check=True)
    doc = check_json(env, spec)
    has_word = by_id(doc)["has-word"]
    assert has_word["status"] == "pass" and has_word["earned"] == 0.5
    assert has_word["solved"] is False and doc["learner"] == "alice"
    assert doc["variant"] == {"word": word}
    # the next hint for the lab is now has-done's
    nxt = json.loads(labup(env, "hint", str(spec), "--json").stdout)
    assert nxt["check"] == "has-done" and nxt["level"] == 1 and "touch /tmp/done" in nxt["hint"]


def test_solve_runs_steps_marks_them_solved_and_reports_say_so(
    lab: Any, tmp_path: Path
) -> None:
    name, spec, env = lab
    assert labup(env, "up", str(spec), "-q").returncode == 0
    bad = labup(env, "solve", str(spec), "--to", "box-runs")
    assert bad.returncode == 2 and "no solution step" in bad.stderr  # before any engine call

    to_first = labup(env, "solve", str(spec), "--to", "has-word", "--json")
    assert to_first.returncode == 0, to_first.stderr
    doc = json.loads(to_first.stdout)
    assert [s["status"] for s in doc["steps"]] == ["ran"] and doc["solved"] == ["has-word"]
    after = by_id(doc["run"])
    assert after["has-word"]["solved"] and after["has-done"]["status"] == "fail"

    # all of it: the first step passes already and is skipped, the second runs
    whole = json.loads(labup(env, "solve", str(spec), "--json").stdout)
    assert [s["status"] for s in whole["steps"]] == ["skipped", "ran"]
    junit, html = tmp_path / "j.xml", tmp_path / "r.html"
    final = labup(env, "check", str(spec), "--junit", str(junit), "--report", str(html))
    assert final.returncode == 0
    assert final.stdout.count("solved by labup solve") == 2
    props = {p.get("name"): p.get("value")
             for p in ET.parse(junit).getroot().iter("property")}
    assert props["solved.has-word"] == "true" and props["solved.has-done"] == "true"
    assert props["learner"] == "alice" and "variant.word" in props
    assert "2 solved by labup" in html.read_text()

    # progress: the lab, its score, its solved objectives; --reset forgets it
    prog = json.loads(labup(env, "progress", "--json").stdout)
    row = next(r for r in prog["labs"] if r["lab"] == name)
    assert (row["passed"], row["objectives"]) == (2, 2)
    assert row["solved"] == ["has-done", "has-word"] and row["last_checked"]
    assert "not started" in labup(env, "progress").stdout  # the catalog's labs, untouched
    # a reset makes the lab fresh: nothing in it is labup's solve any more (hints stay seen)
    assert labup(env, "reset", str(spec), "-q").returncode == 0
    again = json.loads(labup(env, "progress", "--json").stdout)
    assert next(r for r in again["labs"] if r["lab"] == name)["solved"] == []
    assert labup(env, "progress", "--reset", str(spec)).returncode == 0
    prog = json.loads(labup(env, "progress", "--json").stdout)
    assert not any(r["lab"] == name for r in prog["labs"])


def test_a_step_that_fails_stops_solve_with_its_output(lab: Any) -> None:
    _, spec, env = lab
    spec.write_text(
        spec.read_text().replace("touch, /tmp/done]", "sh, -c, 'echo nope; exit 4']"))
    assert labup(env, "up", str(spec), "-q").returncode == 0
    proc = labup(env, "solve", str(spec))
    assert proc.returncode == 1
    assert "solution step 2 (has-done) failed" in proc.stderr and "nope" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_two_learners_get_their_own_lab_and_a_copied_answer_fails(lab: Any) -> None:
    _, spec, env = lab
    from labspec import load_lab

    alice = load_lab(spec, learner="alice").values["word"]
    # the lab's name is random, so is the draw: two of eight words may match; take the first
    # classmate whose word differs
    other = next(who for who in ("bob", "carol", "dave", "erin", "frank", "grace", "heidi")
                 if load_lab(spec, learner=who).values["word"] != alice)
    bob = load_lab(spec, learner=other).values["word"]
    assert alice != bob
    shown_a = labup(env, "check", str(spec), "--learner", "alice", "--json").stdout
    assert f"holds {alice}" in shown_a  # descriptions (and hints) render with one's own values
    assert labup(env, "up", str(spec), "-q").returncode == 0
    assert labup(env, "solve", str(spec), "--learner", "alice").returncode == 0
    mine = by_id(check_json(env, spec, "--learner", "alice"))
    theirs = by_id(check_json(env, spec, "--learner", other))
    assert mine["has-word"]["status"] == "pass"
    assert theirs["has-word"]["status"] == "fail" and alice in theirs["has-word"]["message"]
    # reset keeps each learner's values: the same lab again, the same word
    assert labup(env, "reset", str(spec), "-q", "--learner", "alice").returncode == 0
    assert load_lab(spec, learner="alice").values["word"] == alice


def test_the_events_stream_sees_a_network_connect_and_closes_at_once(
    docker_client: Any, test_image: str, unique: str
) -> None:
    from provisioner.engine.docker_engine import DockerEngine

    engine = DockerEngine(url="unix:///var/run/docker.sock")
    net = docker_client.networks.create(f"ev-{unique}")
    box = docker_client.containers.run(
        test_image, ["sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait"], name=f"ev-{unique}",
        detach=True)
    seen: list[tuple[str, str, str]] = []
    stream = engine.events({"type": ["network"], "network": [f"ev-{unique}"]})
    reader = threading.Thread(target=lambda: seen.extend(
        (e["Type"], e["Action"], e["Actor"]["Attributes"].get("container", "")) for e in stream))
    reader.start()
    try:
        net.connect(box)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("network", "connect", box.id) in seen
        started = time.monotonic()
        stream.close()
        reader.join(timeout=5)
        assert not reader.is_alive() and time.monotonic() - started < 2
    finally:
        stream.close()
        box.remove(force=True)
        net.remove()
        engine.close()


IDLE_SPEC = """\
apiVersion: labup/v1
kind: Lab
name: {name}
title: Idle watch
containers:
  box:
    image: labup-test/busybox:latest
    command: [sh, -c, "trap 'exit 0' TERM INT; sleep 3600 & wait"]
    healthcheck: {{test: "true", interval: 1s}}
checks:
  - id: box-runs
    stage: env
    container: {{container: box}}
  - id: done
    exec: {{container: box, command: [cat, /tmp/done]}}
"""


def test_an_idle_watch_does_not_check_again_and_ctrl_c_ends_it_cleanly(
    tmp_path: Path, unique: str, test_image: str
) -> None:
    """A container with a healthcheck every second (an exec each time) and labup's own exec
    check: neither wakes the watch; a learner's exec does; Ctrl-C ends it with no traceback."""
    name = f"idle-{unique}"
    spec = tmp_path / "lab.yaml"
    spec.write_text(IDLE_SPEC.format(name=name))
    env = {**os.environ, "LABUP_STATE_DIR": str(tmp_path / "state")}
    assert labup(env, "up", str(spec), "-q").returncode == 0
    # healthy first: its turning healthy is a change (an event the watch rightly acts on)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}",
                                 f"{name}-box"], capture_output=True, text=True).stdout.strip()
        if health == "healthy":
            break
        time.sleep(0.2)
    proc = subprocess.Popen([LABUP, "check", str(spec), "--watch", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["trigger"] == "started" and not first["ok"]
        time.sleep(6)  # six healthchecks, no change
        subprocess.run(["docker", "exec", f"{name}-box", "touch", "/tmp/done"], check=True)
        second = json.loads(proc.stdout.readline())  # the learner's exec woke it: one run
        assert second["trigger"].startswith(f"docker exec in {name}-box") and second["ok"]
        assert second["newly_passing"] == ["done"]
        proc.send_signal(2)  # Ctrl-C
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0  # the last run passed
        assert out.strip() == "" and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
        labup(env, "down", str(spec), "-q")


def test_a_damaged_learner_state_is_said_and_never_stops_a_check(lab: Any, tmp_path: Path) -> None:
    name, spec, env = lab
    assert labup(env, "up", str(spec), "-q").returncode == 0
    record = tmp_path / "state" / "labs" / f"{name}.default.json"
    record.parent.mkdir(parents=True)
    record.write_text("{edited by hand")
    proc = labup(env, "check", str(spec))
    assert proc.returncode == 1  # graded: has-word fails, as it should
    assert "has-word" in proc.stdout and "is damaged" in proc.stderr
    assert f"labup progress --reset {name} --instance default" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert labup(env, "progress", "--reset", name).returncode == 0
    assert not record.exists()
