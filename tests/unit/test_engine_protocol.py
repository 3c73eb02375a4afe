"""The engine protocols are the seam: every engine, and the tests' fake, fits them (mypy), and
the docker-py internals the SSH adapter and the SDK transport rely on are still there."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _mypy(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    from mypy import api

    monkeypatch.setenv("MYPYPATH", str(REPO / "tests" / "unit"))
    stdout, stderr, status = api.run([
        "--strict", "--no-error-summary",
        "--config-file", str(REPO / "pyproject.toml"), str(path),
    ])
    return status, stdout + stderr


def test_docker_engine_and_the_fake_fit_the_engine_protocols_for_mypy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, said = _mypy(REPO / "tests" / "typing" / "engines_fit_protocols.py", monkeypatch)
    assert status == 0, said


def test_an_engine_missing_a_lifecycle_method_does_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "half_engine.py"
    bad.write_text(
        "from typing import Any\n"
        "from provisioner.engine.protocol import CheckEngine, Engine\n"
        "class Half:\n"
        "    url = 'x'\n"
        "    host_label = 'x'\n"
        "def fits(e: Engine) -> None: ...\n"
        "fits(Half())\n"
    )
    status, said = _mypy(bad, monkeypatch)
    assert status == 1 and 'incompatible type "Half"; expected "Engine"' in said, said


def test_docker_sdk_internals_the_adapters_rely_on_are_there() -> None:
    """``provisioner.engine.ssh`` mounts its adapter and sets ``base_url``/``_version`` on the
    SDK's APIClient; ``SdkTransport`` calls ``_get``/``_post``/``_put``/``_delete``/``_url``.
    docker is pinned below 8; this fails first if a release moves them."""
    docker = pytest.importorskip("docker")
    client = docker.APIClient(base_url="tcp://127.0.0.1:9", version="1.41")
    try:
        for name in ("_get", "_post", "_put", "_delete", "_url", "mount", "adapters", "head"):
            assert hasattr(client, name), name
        assert client._version == "1.41"
        assert "version" in inspect.signature(docker.APIClient).parameters
    finally:
        client.close()
