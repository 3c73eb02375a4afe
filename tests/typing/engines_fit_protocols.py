"""Checked by mypy --strict in tests/unit/test_engine_protocol.py, never run.

Every engine labup has, and the unit tests' fake, must fit the protocols the lifecycle and
the checks are typed against (the model: jsonschema's typing test of its Validator protocol).
"""

from __future__ import annotations

from fake_engine import FakeEngine

from provisioner.engine.docker_engine import DockerEngine
from provisioner.engine.protocol import CheckEngine, Engine
from provisioner.lifecycle.planner import PlanEngine


def lifecycle_engines() -> list[Engine]:
    return [DockerEngine(url="unix:///var/run/docker.sock"), FakeEngine()]


def check_engines() -> list[CheckEngine]:
    return [DockerEngine(url="unix:///var/run/docker.sock"), FakeEngine()]


def plan_engines() -> list[PlanEngine]:
    return [DockerEngine(url="unix:///var/run/docker.sock"), FakeEngine()]
