"""Ship the top-level schemas/ and labs/ folders inside the wheel as labspec/_data/."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
DATA_DIRS = ("schemas", "labs")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "labspec" / "_data"
        for name in DATA_DIRS:
            src = ROOT / name
            if src.is_dir():
                # a build folder left by an earlier build may hold files the source no longer has
                shutil.rmtree(target / name, ignore_errors=True)
                shutil.copytree(src, target / name, ignore=IGNORE)


setup(cmdclass={"build_py": BuildWithData})
