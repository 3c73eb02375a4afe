"""A plain wheel (not only an editable install) ships the schemas and the labs catalog."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sysconfig
from pathlib import Path
import labspec.resources as r
site = Path(sysconfig.get_paths()["purelib"]).resolve()
schemas, labs = r.schemas_dir().resolve(), r.labs_dir().resolve()
files = []
if labs.is_dir():
    files = sorted(
        str(p.relative_to(labs)) for p in labs.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
print(json.dumps({
    "site": str(site),
    "schemas": str(schemas),
    "labs": str(labs),
    "lab_schema": (schemas / "lab.schema.json").is_file(),
    "inventory_schema": (schemas / "inventory.schema.json").is_file(),
    "lab_files": files,
}))
"""


def test_wheel_installs_with_schemas_and_labs_inside_site_packages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("labup-*.whl")
    # the dashboard's page ships as package data (no frontend build step)
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    static = REPO / "provisioner" / "serve" / "static"
    assert {f"provisioner/serve/static/{p.name}" for p in static.iterdir()} <= shipped

    # A fresh venv without pip of its own (ensurepip is slow): the test's pip installs into it.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-compile", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # Run from tmp_path so the source checkout is not on sys.path.
    probe = subprocess.run(
        [str(python), "-c", _PROBE], check=True, capture_output=True, text=True,
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, timeout=60,
    )
    found = json.loads(probe.stdout)
    site = Path(found["site"])
    assert Path(found["schemas"]).is_relative_to(site), found
    assert Path(found["labs"]).is_relative_to(site), found
    assert found["lab_schema"] is True
    assert found["inventory_schema"] is True
    # Every file of the source catalog ships (the catalog may still be empty early on).
    source_labs = REPO / "labs"
    expected = sorted(
        str(p.relative_to(source_labs))
        for p in source_labs.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ) if source_labs.is_dir() else []
    assert found["lab_files"] == expected

    # A learner of the installed package works on a copy of the lab in the workspace.
    work = tmp_path / "workspace"
    copy = subprocess.run(
        [str(python), "-c", "from labspec.catalog import resolve_lab_path as r; "
         "print(r('3', workspace=True)); print(r('3'))"],
        check=True, capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={"PATH": "/usr/bin:/bin", "LABUP_WORKSPACE": str(work)},
    )
    mine, installed = (Path(line) for line in copy.stdout.split())
    assert mine.parent.parent == work and mine.is_file(), copy.stdout
    assert installed.is_relative_to(site)
    assert sorted(p.name for p in mine.parent.iterdir()) == sorted(
        p.name for p in installed.parent.iterdir() if p.name != "__pycache__"
    )
