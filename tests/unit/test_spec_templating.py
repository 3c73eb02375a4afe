"""Sandboxed Jinja2: native values, context, limits, located errors, --set coercion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import labspec
from labspec.document import Document, Mark
from labspec.errors import TemplateError, UserInputError
from labspec.model import Param
from labspec.templating import context, render_tree, render_value, resolve_values

CTX = context(values={"port": 8080, "name": "web"}, lab_id=5, lab_name="networking")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{{ port }}", 8080),
        ("{{ port + 1 }}", 8081),
        (" {{ name }} ", "web"),
        ("p{{ port }}", "p8080"),
        ("{{ port }}:{{ port }}", "8080:8080"),
        ("{{ [port, 2] }}", [8080, 2]),
        ("{{ {'a': port} }}", {"a": 8080}),
        ("{{ port > 1000 }}", True),
        ("{{ lab.key }}", "lab5"),
        ("{{ params.port }}", 8080),
        ("{{ instance }}", "default"),
        ("{{ host.name }}", "local"),
        ("{{ host.vars.offset | default(0) }}", 0),
        ("{% if port > 1 %}big{% endif %}", "big"),
    ],
)
def test_a_lone_expression_keeps_its_type_and_text_stays_text(text: str, value: Any) -> None:
    assert render_value(text, CTX) == value


def test_host_and_instance_reach_the_context() -> None:
    ctx = context(
        values={},
        lab_id=None,
        lab_name="demo",
        host={"name": "pc07", "vars": {"seat": 7}},
        instance="alice",
    )
    assert (
        render_value("{{ host.name }}-{{ host.vars.seat }}-{{ instance }}", ctx) == "pc07-7-alice"
    )
    assert render_value("{{ lab }}", ctx) == {"id": None, "name": "demo", "key": "demo",
                                              "prefix": "demo-alice"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nope }}", "'nope' is undefined"),
        ("{{ host.vars.seat }}", "has no attribute 'seat'"),
        ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ port.__class__ }}", "unsafe"),
        ("{{ 'a' * 10**9 }}", "result would be longer than"),
        ("{{ 2 ** 100000000 }}", "exponent 100000000 is too large"),
        ("{% for i in range(10**6) %}{% endfor %}", "range() longer than 10000"),
        (
            "{% for a in range(600) %}{{ 'x' * 2000 }}{% endfor %}",
            "output longer",
        ),
        ("{{ range }}", "not text, a number or a list"),
        ("{{ 1/0 }}", "division by zero"),
        ("{{ ", "unexpected 'end of template'"),
    ],
)
def test_template_failures_are_refused_with_a_reason(text: str, message: str) -> None:
    doc = Document("f.yaml", {"a": text}, {(): Mark(1, 1), ("a",): Mark(1, 4)})
    rendered = render_tree(doc, CTX)
    assert rendered.failed == {("a",)}
    assert rendered.data == {"a": text}
    [problem] = rendered.problems
    assert (problem.line, problem.column, problem.path) == (1, 4, "$.a")
    assert message in problem.message


def test_a_failing_template_in_a_spec_is_a_located_template_error(tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(
        "apiVersion: labup/v1\nkind: Lab\nname: t\ntitle: T\n"
        "containers:\n  web:\n    image: busybox\n    env:\n      A: '{{ missing }}'\n"
    )
    with pytest.raises(TemplateError) as info:
        labspec.load_lab(spec)
    assert str(info.value).startswith(
        f"{spec}:9:10: $.containers.web.env.A: template: 'missing' is undefined"
    )
    assert "names a template can use: host, instance, lab" in str(info.value)


def test_render_text_reports_the_template_line() -> None:
    with pytest.raises(TemplateError) as info:
        labspec.render_text("# Title\n\nport {{ port }}\n{{ nope }}\n", CTX, file="README.md")
    assert str(info.value).startswith("README.md:4:1: $: template: 'nope' is undefined")
    assert labspec.render_text("port {{ port }}\n", CTX, file="README.md") == "port 8080\n"


def test_render_text_reports_syntax_errors_with_their_line() -> None:
    with pytest.raises(TemplateError) as info:
        labspec.render_text("a\nb {% if %}\n", CTX, file="README.md")
    assert str(info.value).startswith("README.md:2:1: $: template syntax:")


PARAMS = (
    Param("port", "integer", 8080),
    Param("debug", "boolean", False),
    Param("size", "enum", "small", choices=("small", "large")),
    Param("who", "string", None),
)


def test_set_values_are_coerced_to_the_param_type() -> None:
    values = resolve_values(
        PARAMS, {"port": "9000", "debug": "yes", "size": "large", "who": "ann"}, file="f"
    )
    assert values == {"port": 9000, "debug": True, "size": "large", "who": "ann"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"port": "eighty", "who": "x"}, "--set port=eighty: port is an integer param"),
        ({"debug": "maybe", "who": "x"}, "--set debug=maybe: debug is a boolean param"),
        ({"size": "huge", "who": "x"}, "--set size=huge: not one of small, large"),
        ({"prot": "1", "who": "x"}, "f has no param 'prot'"),
        ({}, "param who has no default and no value"),
    ],
)
def test_bad_set_values_are_user_errors(sets: dict[str, str], message: str) -> None:
    with pytest.raises(UserInputError) as info:
        resolve_values(PARAMS, sets, file="f")
    assert message in str(info.value)


def test_unknown_set_lists_the_valid_params() -> None:
    with pytest.raises(UserInputError) as info:
        resolve_values(PARAMS, {"prot": "1"}, file="f")
    assert info.value.hint == "valid params: debug, port, size, who"


def test_a_bad_instance_name_is_refused(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parent.parent / "data" / "specs" / "valid" / "minimal.yaml"
    with pytest.raises(UserInputError, match="instance name 'Bad Name!' is not valid"):
        labspec.load_lab(spec, instance="Bad Name!")


def test_load_lab_renders_with_host_vars_and_set_values() -> None:
    spec = Path(__file__).resolve().parent.parent / "data" / "specs" / "valid" / "templated.yaml"
    lab = labspec.load_lab(
        spec,
        params={"port": "9000"},
        host={"name": "pc03", "vars": {"offset": 3, "learner": "ann"}},
        instance="ann",
    )
    web = lab.container("web")
    assert web.ports[0].host == 9003
    assert web.env == {"LEARNER": "ann", "INSTANCE": "ann", "KEY": "templated", "REPLICAS": "4"}
    assert web.command == ("sh", "-c", "echo 9000")
    assert lab.title == "Lab for pc03"
    assert lab.values == {"port": 9000, "replicas": 2}
    assert lab.container("sidecar").stop_timeout == 2.0
    ctx = labspec.template_context(lab, instance="ann")
    assert ctx["port"] == 9000 and ctx["lab"]["key"] == "templated" and ctx["instance"] == "ann"


def test_validation_renders_the_instructions_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(
        "apiVersion: labup/v1\nkind: Lab\nname: t\ntitle: T\ninstructions: README.md\n"
        "params:\n  port: {type: integer, default: 80}\n"
        "containers:\n  web:\n    image: busybox\n"
    )
    (tmp_path / "README.md").write_text("# {{ lab.name }}\n\nOpen port {{ prot }}.\n")
    labspec.load_lab(spec)  # loading does not render the instructions
    [problem] = labspec.validate_path(spec)
    assert str(problem) == f"{tmp_path / 'README.md'}:3:1: $: template: 'prot' is undefined"
    monkeypatch.chdir(tmp_path)
    from provisioner.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["validate", "lab.yaml"])
    assert info.value.code == 2
    assert capsys.readouterr().out == "README.md:3:1: $: template: 'prot' is undefined\n"
    (tmp_path / "README.md").write_text("# {{ lab.name }}\n\nOpen port {{ port }}.\n")
    assert labspec.validate_path(spec) == []
