"""Property: whatever a spec file holds, loading it either succeeds or raises a LabupError.

Hypothesis mutates the valid specs three ways: raw bytes (insert, delete, replace), the YAML
structure (replace a value with any YAML-able value, delete a key, add a key), and templates
(put an arbitrary expression into a string).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labspec
from labspec.errors import Problem
from labspec.loader import parse

VALID = Path(__file__).resolve().parent.parent / "data" / "specs" / "valid"
SOURCES = {p.name: p.read_bytes() for p in sorted(VALID.glob("*.yaml"))}
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["80", "8080:80", "5s", "64m", "all", "busybox", "web", "{{ port }}", "/x"]),
    st.sampled_from(
        [1.0, 5.0, 0.5, float("nan"), float("inf"), 0, -1, 65536, 2**63, "a\x00b", ".."]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def load_bytes(data: bytes) -> None:
    """Load ``data`` as a spec in the valid folder's layout; only LabupError may escape."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "lab.yaml"
        spec.write_bytes(data)
        # validate_path runs load_lab and turns LabupError into problems: anything else escapes
        problems = labspec.validate_path(spec)
        assert all(isinstance(p, Problem) and p.message for p in problems)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*prefix, i))


def document(name: str) -> Any:
    doc, _ = parse(SOURCES[name].decode(), name)
    return doc.data


@SETTINGS
@given(
    name=st.sampled_from(sorted(SOURCES)),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_byte_mutations_raise_only_labup_errors(
    name: str, edits: list[tuple[str, float, bytes]]
) -> None:
    data = bytearray(SOURCES[name])
    for kind, where, blob in edits:
        at = int(where * len(data))
        if kind == "insert":
            data[at:at] = blob
        elif kind == "delete":
            del data[at : at + len(blob)]
        else:
            data[at : at + len(blob)] = blob
    load_bytes(bytes(data))


@SETTINGS
@given(data=st.data(), name=st.sampled_from(sorted(SOURCES)))
def test_structure_mutations_raise_only_labup_errors(data: st.DataObject, name: str) -> None:
    tree = document(name)
    target = data.draw(st.sampled_from(list(paths(tree))[1:]))
    parent = tree
    for part in target[:-1]:
        parent = parent[part]
    action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
    if action == "replace":
        parent[target[-1]] = data.draw(values)
    elif action == "delete":
        del parent[target[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=12))] = data.draw(values)
    else:
        parent.insert(target[-1], data.draw(values))
    load_bytes(yaml.safe_dump(tree, allow_unicode=True).encode())


@SETTINGS
@given(
    name=st.sampled_from(sorted(SOURCES)),
    data=st.data(),
    expression=st.one_of(
        st.text(max_size=20),
        st.sampled_from(
            [
                "port",
                "host.vars",
                "lab",
                "params",
                "''.__class__",
                "range(99999999)",
                "'x' * 999999999",
                "lipsum()",
                "cycler",
                "namespace()",
                "self",
                "joiner",
                "[1] * 10**8",
                "port.__init__",
                "(1,2)",
                "{'a': 1}",
                "none",
                "None",
            ]
        ),
    ),
)
def test_template_mutations_raise_only_labup_errors(
    name: str, data: st.DataObject, expression: str
) -> None:
    tree = document(name)
    strings = [p for p in paths(tree) if p and isinstance(_get(tree, p), str)]
    target = data.draw(st.sampled_from(strings))
    parent = _get(tree, target[:-1])
    wrap = data.draw(
        st.sampled_from(["{{ %s }}", "x{{ %s }}y", "{%% if %s %%}a{%% endif %%}", "{# %s #}"])
    )
    parent[target[-1]] = wrap % expression
    load_bytes(yaml.safe_dump(tree, allow_unicode=True).encode())


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree
