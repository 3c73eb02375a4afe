"""The engine that scripts/engine.sh starts answers, and runs a container from a local image."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.docker


def test_engine_answers_with_a_version(docker_client: Any) -> None:
    assert docker_client.ping() is True
    version = docker_client.version()
    assert version["ApiVersion"]
    assert version["Version"]


def test_container_from_the_test_image_runs_and_prints(
    docker_client: Any, test_image: str, unique: str
) -> None:
    name = f"labup-smoke-{unique}"
    container = docker_client.containers.create(
        test_image,
        ["sh", "-c", "echo hello from $(hostname)"],
        name=name,
        hostname="smoke",
        labels={"labup.test": "smoke"},
    )
    try:
        container.start()
        result = container.wait(timeout=30)
        output = container.logs().decode()
        assert result["StatusCode"] == 0
        assert output.strip() == "hello from smoke"
    finally:
        container.remove(force=True)
