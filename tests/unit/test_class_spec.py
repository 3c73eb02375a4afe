"""The Class document and the roster: schema, located problems, the command line's overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

import labspec
from labspec.class_spec import load_roster, numbered, resolve_class
from labspec.errors import SpecError, UserInputError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "class.yml"
HEAD = "apiVersion: labup/v1\nkind: Class\n"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        if path.suffix == ".csv":
            load_roster(path)
        else:
            labspec.load_class(path)
    return [f"{p.line}:{p.column} {p.path}: {p.message}" for p in info.value.problems]


def write(tmp_path: Path, body: str, name: str = "class.yml") -> Path:
    path = tmp_path / name
    path.write_text(body if name.endswith(".csv") else HEAD + body)
    return path


def test_the_example_class_loads() -> None:
    spec = labspec.load_class(EXAMPLE)
    assert spec.name == "docker-101"
    assert [lr.name for lr in spec.learners] == ["ana", "ben", "chloe", "dev"]
    assert spec.learners[2].vars == {"team": "blue"}
    assert [spec.gpus_of(lr) for lr in spec.learners] == [0, 0, 0, 1]
    box = spec.sandbox
    assert (box.memory, box.memory_reservation, box.cpus, box.pids) == (2 << 30, 512 << 20, 2, 4096)
    assert box.constraints == ("node.labels.classroom == true",)
    assert (spec.ssh_port, spec.registry_port, spec.seed_port) == (22000, 5000, 5001)


def test_a_count_names_the_learners_so_they_sort() -> None:
    assert [lr.name for lr in numbered(3)] == ["learner01", "learner02", "learner03"]
    assert numbered(120)[0].name == "learner001"


def test_schema_problems_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, "name: Docker 101\nlearners: 0\nsandbox:\n  memory: lots\n  pids: 8\n"
                           "  constraints: [nonsense]\nbogus: 1\n")
    found = problems_of(path)
    assert any(p.startswith("3:7 $.name:") for p in found), found
    assert any(p.startswith("4:11 $.learners:") for p in found), found
    assert any(p.startswith("6:11 $.sandbox.memory:") for p in found), found
    assert any(p.startswith("7:9 $.sandbox.pids:") for p in found), found
    assert any(p.startswith("8:17 $.sandbox.constraints[0]:") for p in found), found
    assert any(p.startswith("9:1 $.bogus: unknown key") for p in found), found


def test_rules_the_schema_cannot_say_are_located_too(tmp_path: Path) -> None:
    path = write(tmp_path, "learners: [ana, ben, ana]\nsandbox:\n  memory: 1g\n"
                           "  memory_reservation: 2g\nregistry: {port: 5000, seed_port: 5000}\n")
    assert problems_of(path) == [
        "3:22 $.learners[2]: learner 'ana' is listed twice",
        "6:23 $.sandbox.memory_reservation: memory_reservation is above the memory limit",
        "7:35 $.registry.seed_port: the seed port must differ from the registry's port",
    ]
    both = write(tmp_path, "learners: 2\nroster: r.csv\n", "both.yml")
    assert problems_of(both) == ["4:1 $.roster: give either learners or a roster, not both"]


def test_a_roster_is_read_relative_to_the_document(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("# the class\nana, team=red\n\n\"ben\",gpus=1\n")
    spec = labspec.load_class(write(tmp_path, "roster: r.csv\n"))
    assert [(lr.name, dict(lr.vars), lr.gpus) for lr in spec.learners] == [
        ("ana", {"team": "red"}, None), ("ben", {}, 1)]
    missing = write(tmp_path, "roster: nowhere.csv\n", "missing.yml")
    assert problems_of(missing)[0].startswith("3:9 $.roster: roster ")


def test_roster_problems_name_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "ana,team=red\nBen Smith\ncarol, gpus=two, learner=x\nana\ndev,x\n",
                 "roster.csv")
    assert problems_of(path) == [
        "2:1 $[1].name: 'Ben Smith' is not a learner name",
        "3:8 $[2].gpus: gpus=two is not 0..16",
        "3:18 $[2].vars.learner: learner is the name itself",
        "4:1 $[3].name: learner 'ana' is already on line 1",
        "5:5 $[4]: 'x' is not key=value",
    ]
    assert problems_of(write(tmp_path, "# nobody\n", "empty.csv")) == [
        "0:0 $: the roster names no learner"]


def test_the_command_line_wins_over_the_document(tmp_path: Path) -> None:
    doc = write(tmp_path, "name: c1\nlearners: 2\nsandbox: {memory: 1g, pids: 512}\n")
    spec = resolve_class(name="c1", document=doc, learners="3",
                         overrides={"memory": 3 << 30, "pids": None, "cpus": 1.5})
    assert [lr.name for lr in spec.learners] == ["learner01", "learner02", "learner03"]
    assert (spec.sandbox.memory, spec.sandbox.pids, spec.sandbox.cpus) == (3 << 30, 512, 1.5)
    roster = write(tmp_path, "zoe\n", "r.csv")
    assert resolve_class(name="c2", learners=str(roster)).learners[0].name == "zoe"


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"name": "Docker 101", "learners": "2"}, "is not a class name"),
    ({"name": "c1"}, "the class has no learners"),
    ({"name": "c1", "learners": "0"}, "a class has 1..500 learners"),
    ({"name": "c1", "learners": "2", "overrides": {"memory": 1 << 20}}, "at least 64m"),
    ({"name": "c1", "learners": "2", "overrides": {"memory_reservation": 8 << 30}},
     "memory_reservation is above the memory limit"),
    ({"name": "c1", "learners": "no-such-roster.csv"}, "does not exist"),
])
def test_bad_command_lines_are_refused_with_the_reason(kwargs: dict[str, object],
                                                       said: str) -> None:
    with pytest.raises(UserInputError, match=said):
        resolve_class(**kwargs)  # type: ignore[arg-type]


def test_the_document_and_the_command_line_must_name_the_same_class(tmp_path: Path) -> None:
    doc = write(tmp_path, "name: c1\nlearners: 1\n")
    with pytest.raises(UserInputError, match="names the class 'c1', not 'c2'"):
        resolve_class(name="c2", document=doc)
