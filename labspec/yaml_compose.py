"""Compose YAML text into a node graph: libyaml when available, pure Python otherwise.

The resolver follows YAML 1.2's core schema for booleans (only true/false, so ``restart: no``
stays the string ``"no"``) and never reads ``22:22`` as a base-60 number. A syntax error is
re-read in Python, whose messages name the offending character.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import Node
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from labspec.errors import Problem, SpecError

TAG = "tag:yaml.org,2002:"
_TAG = TAG
MAX_DEPTH = 64  # nesting of mappings and sequences


class _Resolver(BaseResolver):
    """Implicit tags: YAML 1.2 core booleans and nulls, ints and floats without base 60."""


_Resolver.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    _TAG + "int",
    re.compile(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
    ),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(_TAG + "merge", re.compile(r"^(?:<<)$"), ["<"])
_Resolver.add_implicit_resolver(
    _TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


class _PyComposer(Reader, Scanner, Parser, Composer, _Resolver):
    """Pure-Python composer: slower, but its error messages name the offending character."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _CComposer(CParser, _Resolver):
        """libyaml composer: about ten times faster; used first, re-run in Python on error."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

    _FAST: type[Any] | None = _CComposer
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _FAST = None


def _compose(text: str, display: str) -> Node | None:
    if _FAST is not None:
        fast = _FAST(text)
        try:
            node: Node | None = fast.get_single_node()
            return node
        except yaml.YAMLError:
            pass  # re-run below: the pure-Python messages are clearer
        except RecursionError:
            pass
        finally:
            fast.dispose()
    try:
        node = _PyComposer(text).get_single_node()
    except yaml.MarkedYAMLError as e:
        raise SpecError([_syntax_problem(e, text, display)]) from None
    except yaml.reader.ReaderError as e:
        line, column = _line_col(text, e.position)
        char = e.character if isinstance(e.character, str) else chr(e.character)
        raise SpecError(
            [
                Problem(
                    display,
                    line,
                    column,
                    "$",
                    f"character U+{ord(char):04X} is not allowed in YAML text",
                    "remove the control character (often pasted from a terminal or a PDF)",
                )
            ]
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - every PyYAML error is one of the above
        raise SpecError([Problem(display, 0, 0, "$", f"YAML error: {e}")]) from None
    except RecursionError:
        raise SpecError(
            [Problem(display, 0, 0, "$", f"nesting deeper than {MAX_DEPTH} levels")]
        ) from None
    return node


def _syntax_problem(e: yaml.MarkedYAMLError, text: str, display: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    problem = (e.problem or "syntax error").replace("'\\t'", "tab")
    message = f"YAML syntax: {problem}"
    if e.context:
        message += f" ({e.context}"
        if e.context_mark is not None and e.context_mark is not mark:
            message += f" at line {e.context_mark.line + 1}"
        message += ")"
    hint = None
    lines = text.splitlines()
    nearby = [n for n in (line - 1, line - 2) if 0 <= n < len(lines)]
    for n in nearby:
        indent = lines[n][: len(lines[n]) - len(lines[n].lstrip(" \t"))]
        if "\t" in indent:
            message = "YAML syntax: a tab is used for indentation"
            line, column = n + 1, indent.index("\t") + 1
            hint = "YAML indents with spaces only: replace the tab with spaces"
            break
    else:
        if "'\\t'" in (e.problem or "") or "tab" in problem:
            hint = "YAML indents with spaces only: replace the tab with spaces"
        elif "mapping values are not allowed" in problem:
            hint = "quote values that contain ': ', or check the indentation of this line"
        elif "could not find expected ':'" in problem or "expected <block end>" in problem:
            hint = "check the indentation: items of one mapping or list line up"
    return Problem(display, line, column, "$", message, hint)


def _line_col(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column
