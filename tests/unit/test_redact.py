"""Secret values in the spec language and the Redactor that keeps them out of every text."""

from __future__ import annotations

from pathlib import Path

import pytest

import labspec
from labspec.errors import SpecError, UserInputError
from labspec.redact import MASK, Redactor

HEAD = "apiVersion: labup/v1\nkind: Lab\nname: sec\ntitle: t\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pw=hunter2 ok", "pw=*** ok"),
        ("'x hunter2'", "'x ***'"),
        ("a two words secret b", "a *** b"),  # shorten() flattened its double space
        ('{"v": "quo\\"te"}', '{"v": "***"}'),  # as JSON escapes it
        ("repr: 'quo\"te'", "repr: '***'"),
        ("url q%22te x", "url q%22te x"),
        ("<b>quo&quot;te</b>", "<b>***</b>"),  # HTML-escaped
        ("stdout is 'aaaahun...', expected", "stdout is 'aaaa***...', expected"),  # cut short
        ("nothing here...", "nothing here..."),
    ],
)
def test_the_redactor_hides_every_form_of_a_value(text: str, expected: str) -> None:
    secret = Redactor(["hunter2", "two  words secret", 'quo"te'])
    assert secret(text) == expected


def test_no_secrets_is_a_no_op() -> None:
    assert not Redactor([]) and Redactor([])("abc...") == "abc..."
    assert MASK == "***"


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(HEAD + body)
    return path


def test_params_and_env_marked_secret_are_the_labs_secret_values(tmp_path: Path) -> None:
    lab = labspec.load_lab(_spec(tmp_path, (
        "params:\n  pw: {type: string, secret: true, default: s3cret}\n"
        "  pin: {type: integer, secret: true, default: 4321}\n  open: {type: string, default: x}\n"
        "containers:\n  db:\n    image: busybox\n"
        "    env: {A: '{{ pw }}', B: {value: tok-1, secret: true}, C: {value: plain}}\n"
    )))
    assert set(lab.secret_values) == {"s3cret", "4321", "tok-1"}
    db = lab.container("db")
    assert db.env == {"A": "s3cret", "B": "tok-1", "C": "plain"} and db.secret_env == ("B",)


def test_a_boolean_param_cannot_be_secret(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"\$\.params\.b\.secret: a boolean param cannot be"):
        labspec.load_lab(_spec(tmp_path, "params:\n  b: {type: boolean, secret: true}\n"
                                         "containers: {}\n"))


def test_a_bad_set_value_of_a_secret_param_is_not_echoed(tmp_path: Path) -> None:
    path = _spec(tmp_path, "params:\n  pin: {type: integer, secret: true, default: 1}\n"
                           "containers: {}\n")
    with pytest.raises(UserInputError) as info:
        labspec.load_lab(path, params={"pin": "not-a-number-77"})
    assert "not-a-number-77" not in str(info.value) and "--set pin=***:" in str(info.value)


def test_a_problem_that_quotes_a_rendered_secret_hides_it(tmp_path: Path) -> None:
    path = _spec(tmp_path, "params:\n  pw: {type: string, secret: true, default: 'S3cr3t'}\n"
                           "containers:\n  db: {image: busybox, restart: '{{ pw }}'}\n")
    with pytest.raises(SpecError) as info:
        labspec.load_lab(path)
    assert "S3cr3t" not in str(info.value) and "***" in str(info.value)


def test_the_catalog_summary_shows_no_secret_default(tmp_path: Path) -> None:
    from provisioner.cli.catalog import lab_summary

    lab = labspec.load_lab(_spec(tmp_path, "params:\n  pw: {type: string, secret: true, "
                                           "default: hunter2}\n  n: {type: integer, default: 3}\n"
                                           "containers: {}\n"))
    assert lab_summary(lab)["params"] == {"pw": "***", "n": 3}
