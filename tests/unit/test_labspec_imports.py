"""labspec knows nothing of Docker: importing all of it loads no docker, paramiko or provisioner."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "labspec",
    "labspec.build",
    "labspec.catalog",
    "labspec.errors",
    "labspec.inventory",
    "labspec.loader",
    "labspec.model",
    "labspec.resources",
    "labspec.semantic",
    "labspec.templating",
    "labspec.units",
    "labspec.validate",
]


def test_labspec_imports_no_docker_paramiko_or_provisioner() -> None:
    code = (
        f"import {', '.join(MODULES)}\n"
        "import labspec, pathlib\n"
        "spec = pathlib.Path(labspec.__file__).parent.parent / 'examples' / 'webapp'\n"
        "labspec.load_lab(spec / 'lab.yaml')\n"
        "import sys\n"
        "roots = {'docker', 'paramiko', 'provisioner'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "clean\n"


def test_importing_labspec_defers_jsonschema_and_jinja2() -> None:
    code = (
        "import labspec, sys\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'jsonschema', 'jinja2'})\n"
        "assert not heavy, heavy\n"
        "print('light')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "light\n"
