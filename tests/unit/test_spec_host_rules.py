"""What a lab may reach on the host: dangerous capabilities are gated like `privileged`, and a
read-write bind may not hold another bind's source or a build context (it could swap them)."""

from __future__ import annotations

from pathlib import Path

import pytest

import labspec
from labspec.errors import SpecError
from labspec.semantic_host import DANGEROUS_CAPABILITIES

HEAD = "apiVersion: labup/v1\nkind: Lab\nname: host\ntitle: t\n"


def _spec(tmp_path: Path, body: str) -> Path:
    for sub in ("site", "data/sub", "app"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\n")
    path = tmp_path / "lab.yaml"
    path.write_text(HEAD + body)
    return path


def _problems(path: Path, *, allow_unsafe: bool = False) -> list[str]:
    try:
        labspec.load_lab(path, allow_unsafe=allow_unsafe)
    except SpecError as e:
        return [f"{p.path}: {p.message} | {p.hint}" for p in e.problems]
    return []


@pytest.mark.parametrize("cap", [*sorted(DANGEROUS_CAPABILITIES), "sys_admin", "CAP_SYS_MODULE",
                                 " all "])
def test_dangerous_capabilities_need_allow_unsafe(tmp_path: Path, cap: str) -> None:
    path = _spec(tmp_path, f"containers:\n  web:\n    image: busybox\n"
                           f"    cap_add: [NET_BIND_SERVICE, '{cap}']\n")
    [problem] = _problems(path)
    assert problem.startswith(f"$.containers.web.cap_add[1]: capability {cap} gives the "
                              "container the host")
    assert problem.endswith("| pass --allow-unsafe if you trust this lab")
    assert _problems(path, allow_unsafe=True) == []


@pytest.mark.parametrize("cap", ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW", "CHOWN", "KILL"])
def test_ordinary_capabilities_are_fine(tmp_path: Path, cap: str) -> None:
    path = _spec(tmp_path, f"containers:\n  web: {{image: busybox, cap_add: [{cap}]}}\n")
    assert _problems(path) == []


RW_DOT = "      - {type: bind, source: ., target: /lab}\n"


@pytest.mark.parametrize(
    ("mounts", "where", "holds"),
    [
        # another container's read-only bind inside a read-write one
        ({"writer": RW_DOT, "reader": "      - {type: bind, source: site, target: /www, "
          "read_only: true}\n"}, "writer.mounts[0]", "reader.mounts[0] (site)"),
        # the container's own second bind
        ({"web": "      - {type: bind, source: data, target: /data}\n"
                 "      - {type: bind, source: data/sub, target: /sub, read_only: true}\n"},
         "web.mounts[0]", "web.mounts[1] (data/sub)"),
        # a build context
        ({"web": RW_DOT}, "web.mounts[0]", "the build context of image app (app)"),
    ],
)
def test_a_read_write_bind_may_not_hold_what_another_bind_or_build_uses(
    tmp_path: Path, mounts: dict[str, str], where: str, holds: str
) -> None:
    body = "images:\n  app: {ref: 'host/app:1', build: {context: app}}\n" if "build" in holds \
        else ""
    body += "containers:\n"
    for name, text in mounts.items():
        body += f"  {name}:\n    image: busybox\n    mounts:\n{text}"
    path = _spec(tmp_path, body)
    found = _problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"$.containers.{where}")
    assert f"is read-write and holds {holds}: a process in" in found[0]
    assert "make this bind `read_only: true`" in found[0]
    assert _problems(path, allow_unsafe=True) == []


def test_read_write_binds_that_hold_nothing_else_are_fine(tmp_path: Path) -> None:
    path = _spec(tmp_path, "containers:\n  a:\n    image: busybox\n    mounts:\n"
                           "      - {type: bind, source: data, target: /data}\n"
                           "      - {type: bind, source: site, target: /www, read_only: true}\n"
                           "  b:\n    image: busybox\n    mounts:\n"
                           "      - {type: bind, source: data, target: /shared}\n")
    assert _problems(path) == []
