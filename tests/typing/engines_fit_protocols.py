"""Checked by mypy --strict in tests/unit/test_engine_protocol.py, never run.

Every engine labup has, and the unit tests' fakes, must fit the protocols the lifecycle, the
checks and a classroom (the swarm's) are typed against (the model: jsonschema's typing test of
its Validator protocol).
"""

from __future__ import annotations

from fake_engine import FakeEngine
from fake_swarm import FakeSwarm

from provisioner.engine.docker_engine import DockerEngine
from provisioner.engine.protocol import CheckEngine, Engine
from provisioner.engine.swarm import DockerSwarm, SwarmManager
from provisioner.lifecycle.planner import PlanEngine


def lifecycle_engines() -> list[Engine]:
    return [DockerEngine(url="unix:///var/run/docker.sock"), FakeEngine()]


def check_engines() -> list[CheckEngine]:
    return [DockerEngine(url="unix:///var/run/docker.sock"), FakeEngine()]


def plan_engines() -> list[PlanEngine]:
    return [DockerEngine(url="unix:///var/run/docker.sock"), FakeEngine()]


def swarm_managers() -> list[SwarmManager]:
    return [DockerSwarm(DockerEngine(url="unix:///var/run/docker.sock")), FakeSwarm()]
