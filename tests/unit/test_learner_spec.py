"""The spec side of the learner features: random params, hints in levels, hint costs, solution
steps keyed by checks, and the errors a lab author gets for each."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from labspec import load_lab, validate_path
from labspec.errors import SpecError
from labspec.variants import draw
from provisioner.learner.solve import steps_of, steps_to

HEAD = """\
apiVersion: labup/v1
kind: Lab
name: vlab
title: Variants
containers:
  box: {image: "busybox:1.36"}
"""


def write(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    spec = tmp_path / "lab.yaml"
    spec.write_text(head + textwrap.dedent(body))
    return spec


PARAMS = """\
params:
  word:
    type: string
    random: {choices: [otter, falcon, lynx, heron, ibis, orca]}
  port:
    type: integer
    random: {min: 9000, max: 9999}
checks:
  - id: a
    description: "the word is {{ word }} on {{ port }}"
    container: {container: box}
"""


def test_a_random_param_is_stable_for_a_learner_and_differs_between_learners(
    tmp_path: Path,
) -> None:
    spec = write(tmp_path, PARAMS)
    alice = load_lab(spec, learner="alice")
    again = load_lab(spec, learner="alice")
    bob = load_lab(spec, learner="bob")
    assert alice.variant == again.variant and alice.learner == "alice"
    assert alice.variant != bob.variant
    assert alice.variant["word"] in ("otter", "falcon", "lynx", "heron", "ibis", "orca")
    assert 9000 <= int(alice.variant["port"]) <= 9999
    assert alice.checks[0].description == (
        f"the word is {alice.variant['word']} on {alice.variant['port']}")
    # every learner of a class gets a value in the range, and they spread over it
    ports = {load_lab(spec, learner=f"pc{i:02}").values["port"] for i in range(30)}
    assert len(ports) > 25 and all(9000 <= int(p) <= 9999 for p in ports)


def test_set_wins_over_the_random_value(tmp_path: Path) -> None:
    spec = write(tmp_path, PARAMS)
    lab = load_lab(spec, learner="alice", params={"word": "mine", "port": "9001"})
    assert lab.values == {"word": "mine", "port": 9001}


def test_the_draw_is_a_hash_of_learner_lab_and_param_not_pythons_random(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, PARAMS), learner="alice")
    word = next(p for p in lab.params if p.name == "word")
    assert draw(word, learner="alice", lab_key="vlab") == lab.values["word"]
    assert draw(word, learner="alice", lab_key="other-lab") is not None  # seeded by the lab too
    assert {draw(word, learner="alice", lab_key=f"lab{i}") for i in range(20)} != {
        lab.values["word"]}


@pytest.mark.parametrize(
    ("params", "line", "message"),
    [
        ("  w: {type: string, default: x, random: {choices: [a, b]}}\n", 8,
         "a random param takes no default"),
        ("  w: {type: boolean, random: {choices: [a, b]}}\n", 8,
         "a boolean param cannot be random"),
        ("  w: {type: integer, random: {min: 9, max: 3}}\n", 8, "min 9 is more than max 3"),
        ("  w: {type: integer, random: {choices: [1, two]}}\n", 8, "'two' is not an integer"),
        ("  w: {type: string, random: {min: 1, max: 3}}\n", 8, "a range (min, max) draws integers"),
        ("  w: {type: enum, choices: [a, b], random: {choices: [a, c]}}\n", 8,
         "'c' is not one of the param's choices"),
        ("  w: {type: string, random: {choices: [only]}}\n", 8, "['only'] is too short"),
    ],
)
def test_random_params_that_cannot_work_are_located_errors(
    tmp_path: Path, params: str, line: int, message: str
) -> None:
    spec = write(tmp_path, "params:\n" + params)
    problems = validate_path(spec)
    assert problems, "expected a problem"
    assert any(message in p.message or message in str(p) for p in problems), problems
    assert any(p.line == line for p in problems), problems


STEPS = """\
params:
  word: {type: string, default: otter}
checks:
  - id: env-ok
    stage: env
    container: {container: box}
  - id: one
    hint: [a nudge, "more: {{ word }}", the full command]
    points: {value: 3, hint_cost: [0, 1, 1.5]}
    container: {container: box}
  - id: two
    hint: just one hint
    points: {value: 2, hint_cost: 0.5}
    container: {container: box}
  - id: three
    container: {container: box}
solution:
  - {check: one, run: solution/one.sh}
  - {check: [two, three], run: [sh, -c, "echo {{ word }}"]}
"""


def steps_lab(tmp_path: Path) -> Path:
    (tmp_path / "solution").mkdir()
    (tmp_path / "solution" / "one.sh").write_text("#!/bin/sh\ntrue\n")
    return write(tmp_path, STEPS)


def test_hints_in_levels_costs_and_keyed_solution_steps_reach_the_model(tmp_path: Path) -> None:
    lab = load_lab(steps_lab(tmp_path))
    one, two, three = lab.checks[1:]
    assert one.hints == ("a nudge", "more: otter", "the full command")
    assert one.hint == "a nudge"  # the first level, for everything that shows one hint
    assert (one.points, one.hint_cost) == (3.0, (0.0, 1.0, 1.5))
    assert two.hints == ("just one hint",) and two.hint_cost == (0.5,) and two.points == 2.0
    assert three.hints == () and three.points == 1.0
    assert lab.solution is not None
    first, second = lab.solution.keyed
    assert first.checks == ("one",) and first.script == tmp_path / "solution" / "one.sh"
    assert second.checks == ("two", "three") and second.argv == ("sh", "-c", "echo otter")


def test_solve_runs_steps_up_to_the_one_that_makes_a_check_pass(tmp_path: Path) -> None:
    lab = load_lab(steps_lab(tmp_path))
    assert [s.number for s in steps_of(lab)] == [1, 2]
    assert [s.checks for s in steps_to(lab, "one")] == [("one",)]
    assert [s.checks for s in steps_to(lab, "three")] == [("one",), ("two", "three")]
    assert steps_to(lab, None) == steps_of(lab)
    assert steps_of(lab)[0].commands == (("sh", str(tmp_path / "solution" / "one.sh")),)
    with pytest.raises(Exception, match="no solution step of vlab makes 'env-ok' pass"):
        steps_to(lab, "env-ok")
    with pytest.raises(Exception, match="no check 'nope' in vlab"):
        steps_to(lab, "nope")


def test_one_script_stays_valid_and_runs_whole(tmp_path: Path) -> None:
    (tmp_path / "solve.sh").write_text("true\n")
    spec = write(tmp_path, "checks:\n  - id: t\n    container: {container: box}\n"
                 "solution: solve.sh\n")
    lab = load_lab(spec)
    (step,) = steps_of(lab)
    assert step.checks == ("t",) and step.commands == (("sh", str(tmp_path / "solve.sh")),)
    with pytest.raises(Exception, match="is one script, not steps"):
        steps_to(lab, "t")


@pytest.mark.parametrize(
    ("solution", "message"),
    [
        ("  - {check: nope, run: [\"true\"]}\n", "unknown check id 'nope'"),
        ("  - {check: t, run: [x]}\n  - {check: [u, t], run: [y]}\n",
         "check 't' is the objective of step 0 too"),
        ("  - {check: t, run: missing.sh}\n", "solution step script missing.sh does not exist"),
        ("  - {check: t}\n", "missing required key 'run'"),
    ],
)
def test_bad_solution_steps_are_located_errors(
    tmp_path: Path, solution: str, message: str
) -> None:
    body = ("checks:\n  - id: t\n    container: {container: box}\n"
            "  - id: u\n    container: {container: box}\nsolution:\n" + solution)
    spec = write(tmp_path, body)
    with pytest.raises(SpecError) as err:
        load_lab(spec)
    assert message in str(err.value)
    assert all(p.path.startswith("$.solution") for p in err.value.problems)
