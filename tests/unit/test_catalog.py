"""The course catalog, without an engine: every lab is valid, complete and renders."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from labspec import load_lab, render_text
from labspec.catalog import SPEC_FILENAME, catalog_folders, resolve_lab_path
from labspec.errors import UserInputError
from labspec.model import Lab
from labspec.templating import template_context
from provisioner.cli import main as cli
from provisioner.offline.recipes import (
    RECIPES,
    Recipe,
    dockerfile_bases,
    images_for_lab,
    normalise_ref,
    recipe_for,
    split_ref,
)
from provisioner.offline.rootfs import busybox_rootfs_tar, find_busybox

FOLDERS = catalog_folders()
IDS = [f.name for f in FOLDERS]


def load(folder: Path, **kwargs: str) -> Lab:
    return load_lab(folder / SPEC_FILENAME, **kwargs)  # type: ignore[arg-type]


def test_the_catalog_has_nine_labs_numbered_one_to_nine() -> None:
    numbers = [int(f.name.split("-", 1)[0]) for f in FOLDERS]
    assert numbers == list(range(1, 10))
    assert [load(f).id for f in FOLDERS] == list(range(1, 10))


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_every_lab_validates_and_is_complete(folder: Path) -> None:
    lab = load(folder)
    text = (folder / SPEC_FILENAME).read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/lab.schema.json\n")
    assert lab.instructions == folder / "README.md"
    assert lab.solution is not None
    scripts = ([lab.solution.script] if lab.solution.script is not None
               else [s.script for s in lab.solution.keyed])
    assert scripts and all(s is not None and s.is_file() for s in scripts)
    assert all(s is not None and s.parent == folder / "solution" for s in scripts)
    tasks = {c.id for c in lab.checks if c.stage == "task"}
    assert all(set(s.checks) <= tasks for s in lab.solution.keyed)  # steps aim at objectives
    stages = {c.stage for c in lab.checks}
    assert stages == {"env", "task"}, f"{lab.key} needs env and task checks, has {stages}"
    assert all(c.description for c in lab.checks if c.stage == "task")


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
@pytest.mark.parametrize("instance", ["default", "alice"])
def test_every_readme_renders_with_the_labs_params(folder: Path, instance: str) -> None:
    lab = load(folder, instance=instance)
    assert lab.instructions is not None
    text = render_text(
        lab.instructions.read_text(encoding="utf-8"),
        template_context(lab, instance=instance),
        file=str(lab.instructions),
    )
    assert text.startswith(f"# Lab {lab.id}")
    first = "## Objectives" if lab.id != 9 else "## What is graded"
    for heading in (first, "## Steps", "## Hints"):
        assert heading in text, f"{lab.key}: README lacks {heading}"
    assert "{%" not in text
    # Go templates for `docker inspect --format` stay (`{{.State.Status}}`); Jinja ones are gone
    for name in [*(p.name for p in lab.params), "lab.", "instance", "p "]:
        assert "{{ " + name not in text, f"{lab.key}: unrendered {{{{ {name}"
    for param in lab.params:
        if param.name.endswith("_port"):
            assert str(lab.values[param.name]) in text, f"{lab.key}: {param.name} not shown"


def test_default_host_ports_differ_from_lab_to_lab() -> None:
    seen: dict[int, str] = {}
    for folder in FOLDERS:
        lab = load(folder)
        ports = [int(v) for k, v in lab.values.items() if k.endswith("_port")]
        ports += [p.host for c in lab.containers for p in c.ports if p.host is not None]
        for port in set(ports):
            assert port not in seen, f"{lab.key} and {seen.get(port)} both use port {port}"
            seen[port] = lab.key
        assert all(8000 < p < 8100 for p in ports)


def test_params_change_the_rendered_spec() -> None:
    lab = load(FOLDERS[0], params={"web_port": "18011"})  # type: ignore[arg-type]
    published = next(c for c in lab.checks if c.id == "web-published")
    assert str(published.spec["port"]) == "18011"


def test_every_image_the_catalog_needs_has_an_offline_recipe() -> None:
    needed = {ref for folder in FOLDERS for ref in images_for_lab(load(folder))}
    assert needed, "the catalog needs base images"
    assert all(recipe_for(ref) is not None for ref in needed), needed
    assert needed <= {"busybox:1.36", "python:3.11-slim", "python:latest"}


def test_images_for_lab_reads_dockerfiles_and_skips_images_the_lab_builds() -> None:
    lab4 = load(FOLDERS[3])
    assert images_for_lab(lab4) == ["python:3.11-slim", "python:latest"]
    lab1 = load(FOLDERS[0])
    assert images_for_lab(lab1) == ["busybox:1.36"]  # not labup/lab1-greeter: lab 1 builds it


def test_solutions_and_labs_name_learner_containers_that_checks_use() -> None:
    for folder in FOLDERS:
        lab = load(folder)
        used = {
            str(c.spec[k])
            for c in lab.checks
            for k in ("container", "from")
            if isinstance(c.spec.get(k), str)
        }
        declared = {c.name for c in lab.containers} | set(lab.learner_containers)
        assert used <= declared, f"{lab.key}: {used - declared}"


@pytest.mark.parametrize(
    ("text", "bases"),
    [
        ("FROM python:3.11-slim\n", ["python:3.11-slim"]),
        ("FROM python:3.11-slim AS build\nRUN x\nFROM build\nFROM scratch\n", ["python:3.11-slim"]),
        ("from --platform=linux/amd64 busybox:1.36 as b\nFROM b AS c\n", ["busybox:1.36"]),
        ("ARG BASE=python\nFROM ${BASE}:3.11\n", []),
        ("# FROM commented:1\nFROM alpine\n", ["alpine"]),
    ],
)
def test_dockerfile_bases(text: str, bases: list[str]) -> None:
    assert dockerfile_bases(text) == bases


def test_refs_are_normalised_like_docker_does() -> None:
    assert normalise_ref("docker.io/library/python:3.11-slim") == "python:3.11-slim"
    assert normalise_ref("busybox") == "busybox:latest"
    assert split_ref("registry.local:5000/team/app") == ("registry.local:5000/team/app", "latest")
    assert split_ref("registry.local:5000/team/app:1.2") == ("registry.local:5000/team/app", "1.2")
    assert recipe_for("python") == RECIPES["python:3.11-slim"]  # python:latest, the stand-in
    assert recipe_for("nginx:1.25") is None


def test_the_cache_key_follows_what_shapes_the_root_filesystem() -> None:
    py = RECIPES["python:3.11-slim"]
    assert py.key == Recipe(**{**py.__dict__}).key
    assert py.key != Recipe(**{**py.__dict__, "include": ("python3",)}).key
    assert py.key == Recipe(**{**py.__dict__, "ref": "other:1"}).key  # the name is not in it
    assert "python3-pip" in py.include


def test_busybox_root_filesystem_looks_like_the_official_image() -> None:
    data = busybox_rootfs_tar(find_busybox())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None
        users = passwd.read().decode()
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    for applet in ("sh", "wget", "nc", "tar", "httpd"):
        assert members[f"bin/{applet}"].issym() and members[f"bin/{applet}"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777
    assert users.startswith("root:x:0:0:") and "\nnobody:x:65534:" in users


def test_unknown_lab_number_lists_the_known_ones() -> None:
    with pytest.raises(UserInputError, match=r"no lab 42 in the catalog") as info:
        resolve_lab_path("42")
    assert info.value.hint is not None and "1, 2, 3" in info.value.hint


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_labup_list_shows_nine_labs_with_what_they_need(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["list"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["LAB", "TITLE", "NEEDS"]
    rows = lines[2:]
    assert len(rows) == 9
    assert rows[0].startswith("1    First containers") and "busybox:1.36" in rows[0]
    assert "docker-compose" in rows[6] and "python:3.11-slim" in rows[6]
    assert "gpu (optional)" in rows[7]
    assert "9 labs" in err


def test_labup_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list", "--json"], capsys)
    assert code == 0
    labs = json.loads(out)["labs"]
    assert [lab["id"] for lab in labs] == list(range(1, 10))
    assert labs[4]["key"] == "lab5" and labs[4]["params"] == {"web_port": 8050}
    assert all(lab["checks"]["task"] > 0 for lab in labs)


def test_labup_show_renders_the_instructions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["show", "5", "--set", "web_port=18050"], capsys)
    assert code == 0
    assert out.startswith("# Lab 5: Container networking")
    assert "http://127.0.0.1:18050/" in out and "lab5-frontend" in out


def test_labup_show_with_an_instance_names_its_containers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(["show", "1", "--instance", "alice"], capsys)
    assert code == 0
    assert "--name lab1-alice-web" in out


def test_labup_show_unknown_lab_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["show", "77"], capsys)
    assert code == 2
    assert "no lab 77 in the catalog" in err and "Traceback" not in err


def test_an_installed_lab_is_worked_on_in_a_copy_in_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stand in for a wheel install: the catalog sits inside the package's _data folder
    from labspec import catalog, resources

    package = tmp_path / "site" / "labspec"
    lab = package / "_data" / "labs" / "03-building-images"
    (lab / "app").mkdir(parents=True)
    (lab / SPEC_FILENAME).write_text("name: lab3\n")
    (lab / "app" / "app.py").write_text("print('starter')\n")
    (lab / "__pycache__").mkdir()
    monkeypatch.setattr(resources, "_PKG", package)
    monkeypatch.setenv("LABUP_LABS_DIR", str(package / "_data" / "labs"))
    monkeypatch.setenv("LABUP_WORKSPACE", str(tmp_path / "work"))

    # commands that only need the lab's name keep reading the installed copy
    assert resolve_lab_path("3") == lab / SPEC_FILENAME
    assert not (tmp_path / "work").exists()

    spec = resolve_lab_path("3", workspace=True)
    mine = tmp_path / "work" / "03-building-images"
    assert spec == mine / SPEC_FILENAME
    assert (mine / "app" / "app.py").read_text() == "print('starter')\n"
    assert not (mine / "__pycache__").exists()
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["03-building-images"]

    # the learner's work is kept; the installed lab is never written to
    (mine / "app" / "app.py").write_text("print('mine')\n")
    assert catalog.resolve_lab_path("3", workspace=True) == spec
    assert (mine / "app" / "app.py").read_text() == "print('mine')\n"
    assert (lab / "app" / "app.py").read_text() == "print('starter')\n"


def test_a_source_checkout_lab_is_used_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABUP_LABS_DIR", raising=False)
    spec = resolve_lab_path("1", workspace=True)
    assert spec == resolve_lab_path("1")
    assert spec.parent.parent.name == "labs"


def test_an_unwritable_workspace_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labspec import resources

    package = tmp_path / "site" / "labspec"
    lab = package / "_data" / "labs" / "01-first"
    lab.mkdir(parents=True)
    (lab / SPEC_FILENAME).write_text("name: lab1\n")
    monkeypatch.setattr(resources, "_PKG", package)
    monkeypatch.setenv("LABUP_LABS_DIR", str(package / "_data" / "labs"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LABUP_WORKSPACE", str(blocker / "work"))
    with pytest.raises(UserInputError) as caught:
        resolve_lab_path("1", workspace=True)
    assert "cannot copy lab 01-first to your workspace" in caught.value.message
    assert "LABUP_WORKSPACE" in (caught.value.hint or "")
