"""The YAML loader: positions for every node, YAML pitfalls reported, not resolved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from labspec import loader
from labspec.document import Mark, format_path
from labspec.errors import SpecError
from labspec.loader import parse


def test_every_value_and_key_is_located() -> None:
    doc, problems = parse("a:\n  b: [1, {c: x}]\n  d: text\n", "f.yaml")
    assert problems == []
    assert doc.data == {"a": {"b": [1, {"c": "x"}], "d": "text"}}
    assert doc.values[("a", "b", 1, "c")] == Mark(2, 14)
    assert doc.keys[("a", "d")] == Mark(3, 3)
    assert doc.values[("a", "d")] == Mark(3, 6)
    assert doc.where(("a", "b", 7)) == Mark(2, 6)  # no node: the nearest located ancestor


def test_json_paths_quote_keys_that_are_not_identifiers() -> None:
    assert format_path(()) == "$"
    assert format_path(("containers", "web", "ports", 0)) == "$.containers.web.ports[0]"
    assert format_path(("containers", "web.1", "x y")) == "$.containers['web.1']['x y']"


def test_scalars_follow_yaml_1_2_booleans_and_never_base_60() -> None:
    text = (
        "a: yes\nb: no\nc: 22:22\nd: 0755\ne: 1.5\nf: ~\ng: true\nh: 0o17\ni: 2024-01-01\nj: off\n"
    )
    doc, _ = parse(text, "f.yaml")
    assert doc.data == {
        "a": "yes",
        "b": "no",
        "c": "22:22",
        "d": 0o755,
        "e": 1.5,
        "f": None,
        "g": True,
        "h": 15,
        "i": "2024-01-01",
        "j": "off",
    }


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    doc, problems = parse("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert doc.data == {"a": 1, "b": 2}
    assert [str(p).splitlines()[0] for p in problems] == [
        "f.yaml:3:1: $.a: duplicate key 'a' (first written at line 1)"
    ]


def test_merge_keys_merge_and_explicit_keys_win_and_keep_their_position() -> None:
    doc, problems = parse("x-base: &b {one: 1, two: 2}\nc:\n  <<: *b\n  two: 3\n", "f.yaml")
    assert problems == []
    assert doc.data["c"] == {"one": 1, "two": 3}
    assert doc.values[("c", "two")] == Mark(4, 8)
    assert doc.values[("c", "one")] == Mark(1, 18)  # where the merged value was written


def test_a_merge_of_a_scalar_is_a_problem() -> None:
    _, problems = parse("a: &a 1\nb:\n  <<: *a\n", "f.yaml")
    assert "a merge key (<<) takes a mapping" in problems[0].message


def test_alias_bomb_fails_fast() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{','.join([prev] * 10)}]")
    text = "\n".join(lines) + "\n"  # ~1 KB that expands to 10**10 strings
    assert len(text) < 2000
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse(text, "bomb.yaml")
    assert time.perf_counter() - start < 5
    assert "document expands to more than 50000 values (aliases included)" in str(info.value)


def test_recursive_alias_is_a_problem() -> None:
    _, problems = parse("a: &a [1, *a]\n", "f.yaml")
    assert problems[0].path == "$.a[1]"
    assert "an alias refers to a mapping or list that contains it" in problems[0].message


def test_deep_nesting_is_refused() -> None:
    text = "a: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(SpecError, match="nesting deeper than 64 levels"):
        parse(text, "f.yaml")


def test_very_deep_nesting_does_not_crash_the_parser() -> None:
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(SpecError, match="nesting deeper than 64 levels"):
        parse(text, "f.yaml")


def test_unsupported_tags_are_problems_not_objects() -> None:
    _, problems = parse("a: !!python/object/apply:os.system [ls]\nb: !!binary aGk=\n", "f.yaml")
    messages = [p.message for p in problems]
    assert "unsupported YAML tag !!python/object/apply:os.system" in messages
    assert "unsupported YAML tag !!binary" in messages


def test_explicit_tag_with_a_bad_value_is_a_problem() -> None:
    _, problems = parse("a: !!int abc\n", "f.yaml")
    assert problems[0].message == "'abc' is not a valid int"


def test_explicit_str_tag_keeps_text() -> None:
    doc, problems = parse("a: !!str 8080\n", "f.yaml")
    assert (doc.data, problems) == ({"a": "8080"}, [])


def test_control_characters_are_located() -> None:
    with pytest.raises(SpecError) as info:
        parse("a: 1\nb: x\x07y\n", "f.yaml")
    assert str(info.value).startswith("f.yaml:2:5: $: character U+0007 is not allowed")


def test_non_utf8_bytes_give_the_line(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        loader.load_file(path)
    assert str(info.value).startswith(f"{path}:2:7: $: byte 0xe9 is not UTF-8 text")


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    doc, _ = loader.load_file(path)
    assert doc.data == {"a": 1}


def test_huge_files_are_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (loader.MAX_BYTES + 1))
    with pytest.raises(SpecError, match="a spec is at most"):
        loader.load_file(path)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("a: [1, 2\nb: 3\n", "f.yaml:2:2", "expected ',' or ']'"),
        ("a: 1\n  b: 2\n", "f.yaml:2:4", "mapping values are not allowed here"),
        ("a: *nothing\n", "f.yaml:1:4", "found undefined alias 'nothing'"),
        ("a: 'open\n", "f.yaml:2:1", "found unexpected end of stream"),
        ("a:\n\t- x\n", "f.yaml:2:1", "a tab is used for indentation"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1", "expected a single document"),
    ],
)
def test_syntax_errors_are_located(text: str, where: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(text, "f.yaml")
    assert str(info.value).startswith(where + ": $: YAML syntax")
    assert message in str(info.value)


def test_non_string_keys_keep_their_text() -> None:
    doc, problems = parse("80: http\ntrue: yes\n", "f.yaml")
    assert (doc.data, problems) == ({"80": "http", "true": "yes"}, [])


def test_complex_keys_are_problems() -> None:
    _, problems = parse("? [a, b]\n: 1\n", "f.yaml")
    assert "a mapping key must be a plain string" in problems[0].message


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n", "a list"), ("hello\n", "a string"), ("42\n", "a number"), ("null\n", "nothing")],
)
def test_a_document_that_is_not_a_mapping_is_refused(text: str, found: str) -> None:
    with pytest.raises(
        SpecError, match=f"expected a mapping \\(key: value lines\\), found {found}"
    ):
        parse(text, "f.yaml")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_an_empty_document_is_refused(text: str) -> None:
    with pytest.raises(SpecError, match="file is empty"):
        parse(text, "f.yaml")
