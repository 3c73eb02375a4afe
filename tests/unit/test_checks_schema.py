"""The checks schema and the loader: every type loads; bad checks give located errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import labspec
from labspec.resources import schemas_dir
from provisioner.checks import CHECK_TYPES

HEAD = """\
apiVersion: labup/v1
kind: Lab
name: schema-test
title: schema test
params:
  port: {type: integer, default: 8080}
images:
  app: {build: {context: app}}
volumes:
  data: {}
containers:
  web:
    image: busybox:1.36
    ports: ["{{ port }}"]
  client:
    image: busybox:1.36
checks:
"""

VALID = """\
  - {id: a, container: {container: web, health: healthy}, stage: env, wait: 30s}
  - {id: b, http: {to: web, port: "{{ port }}", path: /, status: [200, 301], body_regex: "ok"}}
  - {id: c, http: {from: client, alias: api, port: 8000, method: POST, data: "{}"}}
  - {id: d, tcp: {to: web, port: 8080, open: true}, timeout: 500ms}
  - {id: e, reachable: {from: client, to: web, port: 8080, reachable: false}}
  - {id: f, exec: {container: web, command: [cat, /etc/hostname], stdout_regex: "."}}
  - {id: g, file: {volume: data, path: notes.txt, mode: "0644", owner: 1000}}
  - {id: h, volume: {volume: data, container: web, path: /data}}
  - {id: i, image: {image: app, max_size: 200MB, exposes: [8000, "53/udp"], base_pinned: true}}
  - {id: j, dockerfile: {path: app/Dockerfile, rule: deps-before-source}, points: 2}
  - {id: k, gpu: {container: web}, needs: [a]}
"""


def write(tmp_path: Path, checks: str) -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    spec = tmp_path / "lab.yaml"
    spec.write_text(HEAD + checks)
    return spec


def problems(tmp_path: Path, checks: str) -> list[str]:
    return [str(p) for p in labspec.validate_path(write(tmp_path, checks))]


def test_every_check_type_loads_into_the_model(tmp_path: Path) -> None:
    lab = labspec.load_lab(write(tmp_path, VALID))
    assert [c.type for c in lab.checks] == [
        "container",
        "http",
        "http",
        "tcp",
        "reachable",
        "exec",
        "file",
        "volume",
        "image",
        "dockerfile",
        "gpu",
    ]
    assert set(CHECK_TYPES) == {c.type for c in lab.checks}
    by_id = {c.id: c for c in lab.checks}
    assert by_id["a"].wait == 30 and by_id["a"].stage == "env"
    assert by_id["d"].timeout == 0.5
    assert int(by_id["b"].spec["port"]) == 8080  # rendered from the param
    assert by_id["k"].needs == ("a",)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (
            "  - {id: x, htp: {to: web}}\n",
            ["lab.yaml:18:13: $.checks[0].htp: unknown key 'htp'", "did you mean 'http'?"],
        ),
        (
            "  - {id: x}\n",
            [
                "$.checks[0]: needs one of the keys container, http, tcp, reachable, exec, file, "
                "volume, image, dockerfile, gpu"
            ],
        ),
        (
            "  - {id: x, http: {to: web}, tcp: {to: web, port: 1}}\n",
            ["$.checks[0]: has more than one of the keys http, tcp: keep one"],
        ),
        (
            "  - {id: x, tcp: {to: web, port: 80}, timeout: -1}\n",
            ["lab.yaml:18:48: $.checks[0].timeout: -1 is less than or equal to the minimum of 0"],
        ),
        ("  - {id: x, tcp: {to: web, port: 80}, wait: -5}\n", ["$.checks[0].wait"]),
        (
            "  - {id: x, exec: {container: web, command: [id], stdout_regex: '(oops'}}\n",
            ["$.checks[0].exec.stdout_regex: stdout_regex does not compile"],
        ),
        (
            "  - {id: x, reachable: {from: clinet, to: web}}\n",
            ["$.checks[0].reachable.from: unknown container 'clinet'"],
        ),
        (
            "  - {id: x, file: {container: web, volume: data, path: /a}}\n",
            ["$.checks[0].file: has more than one of the keys container, volume: keep one"],
        ),
        (
            "  - {id: x, dockerfile: {rule: pinned}}\n",
            ["$.checks[0].dockerfile.rule: 'pinned' is not one of", "did you mean 'pinned-base'?"],
        ),
        (
            "  - {id: x, container: {container: web, sate: running}}\n",
            ["$.checks[0].container.sate: unknown key 'sate'", "did you mean 'state'?"],
        ),
        (
            "  - {id: x, http: {from: client}}\n",
            ["$.checks[0].http: needs one of the keys to, alias"],
        ),
        ("  - {id: x, tcp: {to: web, port: 99999}}\n", ["$.checks[0].tcp.port"]),
        (
            "  - {id: x, file: {volume: dta, path: a}}\n",
            ["$.checks[0].file.volume: unknown volume 'dta'"],
        ),
    ],
)
def test_bad_checks_are_located_errors(tmp_path: Path, check: str, expected: list[str]) -> None:
    found = "\n".join(problems(tmp_path, check))
    for fragment in expected:
        assert fragment in found, found


def _walk(node: Any, path: str) -> list[str]:
    """Paths of properties without a description."""
    missing: list[str] = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            if not (isinstance(sub, dict) and (sub.get("description") or "$ref" in sub)):
                missing.append(f"{path}.{name}")
            missing += _walk(sub, f"{path}.{name}")
        for key in ("$defs", "items", "additionalProperties"):
            sub = node.get(key)
            if isinstance(sub, dict):
                if key == "$defs":
                    for name, item in sub.items():
                        missing += _walk(item, f"{path}.$defs.{name}")
                else:
                    missing += _walk(sub, f"{path}.{key}")
    return missing


def test_every_property_of_the_checks_schema_is_described() -> None:
    schema = json.loads((schemas_dir() / "checks.schema.json").read_text())
    assert _walk(schema, "$") == []
    assert set(CHECK_TYPES) <= set(schema["properties"])
    assert [b["required"][0] for b in schema["oneOf"]] == list(CHECK_TYPES)
