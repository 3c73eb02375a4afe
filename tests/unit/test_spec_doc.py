"""docs/spec.md is generated from the schemas and cannot drift; the examples it shows are valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import labspec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    [*ROOT.glob("examples/*.yaml"), *ROOT.glob("examples/*/lab.yaml")], key=lambda p: str(p)
)


def test_docs_spec_md_is_up_to_date_with_the_schemas() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_spec_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # run: python scripts/gen_spec_doc.py


def undescribed(node: object, where: str) -> list[str]:
    """Properties without a description, as ``/path/to/key``."""
    found = []
    if isinstance(node, dict):
        for key, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict) and "description" not in prop:
                found.append(f"{where}/{key}")
        for key, value in node.items():
            if key != "if":  # conditions name properties, they do not define them
                found.extend(undescribed(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(undescribed(value, f"{where}/{i}"))
    return found


@pytest.mark.parametrize("name", ["lab", "inventory"])
def test_every_schema_property_is_described(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
    assert undescribed(schema, "") == []


def test_the_reference_example_is_in_the_doc_verbatim() -> None:
    doc = (ROOT / "docs" / "spec.md").read_text()
    assert (ROOT / "examples" / "reference" / "lab.yaml").read_text().rstrip("\n") in doc


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_is_valid(path: Path) -> None:
    assert labspec.validate_path(path) == []
    assert len(EXAMPLES) >= 5
