"""Template limits hold: output size, loop steps and rendering time, whatever the template.

The shapes that got past the old limits (2M- and 100M-character outputs, three nested
``range(10000)`` loops) and one of each way to build a large value, refused fast, as a
located template problem (exit 2 at the command line)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labspec import template_limits
from labspec.document import Document, Mark
from labspec.errors import TemplateError
from labspec.templating import render_text, render_tree

LABUP = str(Path(sys.executable).with_name("labup"))

HOSTILE = {
    "2M output by ~": "{{ 'x' * 1000000 ~ 'x' * 1000000 }}",
    "2M output by loop": "{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}",
    "100M by replace": "{{ ('x' * 1000000).replace('x', 'x' * 100) }}",
    "100M by the replace filter": "{{ ('x' * 1000000)|replace('x', 'x' * 100) }}",
    "100M by center": "{{ 'x'|center(100000000) }}",
    "100M by ljust": "{{ 'x'.ljust(100000000) }}",
    "100M by a % width": "{{ '%100000000s' % 'x' }}",
    "100M by a format width": "{{ '{:>100000000}'.format('x') }}",
    "100M by join": "{{ (['x' * 1000] * 100000)|join }}",
    "100M by str.join": "{{ ('y' * 1000).join(['x'] * 100000) }}",
    "100M by indent": "{{ ('\\n' * 100000)|indent(1000) }}",
    "100M by wordwrap": "{{ ('x' * 100000)|wordwrap(1, true, 'y' * 1000) }}",
    "doubling in a namespace": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "a list of big strings as text": "{{ (['x' * 1000000] * 1)|string * 2 }}",
    "translate": "{{ ('x' * 1000).translate({120: 'y' * 1000}) }}",
    "expandtabs": "{{ ('\\t' * 1000).expandtabs(1000) }}",
    "three nested range(10000)": (
        "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
        "{% endfor %}{% endfor %}{% endfor %}x"
    ),
    "a recursive loop": (
        "{% for x in range(10000) recursive %}{% if loop.depth < 3 %}{{ loop(range(10000)) }}"
        "{% endif %}{% endfor %}"
    ),
    "a macro calling itself": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "lipsum": "{{ lipsum(1000000) }}",
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_templates_are_refused_fast_as_located_problems(text: str) -> None:
    doc = Document("f.yaml", {"a": text}, {(): Mark(1, 1), ("a",): Mark(1, 4)})
    t0 = time.monotonic()
    rendered = render_tree(doc, {})
    elapsed = time.monotonic() - t0
    [problem] = rendered.problems
    assert (problem.line, problem.column, problem.path) == (1, 4, "$.a")
    assert problem.message.startswith(("not allowed in a template", "template:")), problem
    assert elapsed < template_limits.MAX_SECONDS + 3  # bounded, whatever the machine's load


def test_a_slow_template_stops_at_the_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(template_limits, "MAX_SECONDS", 0.3)
    slow = "{% for i in range(10000) %}{{ ('x' * 1000000).upper()|length }}{% endfor %}"
    with pytest.raises(TemplateError, match=r"rendering took longer than 0.3s"):
        render_text(slow, {}, file="README.md")


def test_one_budget_covers_a_whole_document() -> None:
    """Steps add up across the strings of a spec: many small loops cannot add up to a big one."""
    loop = "{% for i in range(10000) %}{% endfor %}"
    doc = Document("f.yaml", {f"k{i}": loop for i in range(12)},
                   {(): Mark(1, 1), **{(f"k{i}",): Mark(i + 2, 4) for i in range(12)}})
    rendered = render_tree(doc, {})
    assert rendered.problems and "steps" in rendered.problems[-1].message


def test_renders_in_other_threads_have_their_own_budget() -> None:
    loop = "{% for i in range(9000) %}{% endfor %}ok"
    results: list[str] = []

    def render() -> None:
        results.append(render_text(loop, {}, file="x"))

    threads = [threading.Thread(target=render) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 8


def test_ordinary_templates_still_work() -> None:
    text = (
        "{% set p = lab.key ~ '-' ~ instance %}{{ p|upper }} {{ 'a,b'.split(',')|join('+') }} "
        "{{ '%5s' % 'x' }} {{ '{:>3}'.format(7) }} {{ 'hello'.replace('l', 'L') }} "
        "{% for i in range(3) %}{{ loop.index }}{% endfor %} {{ [1, 2] + [3] }} "
        "{{ (host.vars.port | default(8000)) + 1 }} {{ 'x' * 3 }}"
    )
    out = render_text(text, {"lab": {"key": "lab5"}, "instance": "default",
                             "host": {"vars": {}}}, file="x")
    assert out == "LAB5-DEFAULT a+b     x   7 heLLo 123 [1, 2, 3] 8001 xxx"


def test_the_cli_refuses_a_hostile_spec_with_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(
        "apiVersion: labup/v1\nkind: Lab\nname: bomb\ntitle: t\n"
        "containers:\n  web:\n    image: busybox\n"
        "    command: [sh, -c, \"{% for a in range(10000) %}{% for b in range(10000) %}"
        "{% for c in range(10000) %}{% endfor %}{% endfor %}{% endfor %}\"]\n"
    )
    result = subprocess.run([LABUP, "validate", str(spec)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "steps" in result.stdout + result.stderr and "Traceback" not in result.stderr
