"""Secret values never shown: every text labup prints or reports goes through a Redactor.

A lab marks values secret (``params: {x: {secret: true}}``, env ``{value: ..., secret:
true}``; :attr:`labspec.model.Lab.secret_values`). :func:`redactor` makes a
:class:`Redactor` of them; it replaces each value by ``***`` in any text, in the forms a
message may carry it: as is, with its whitespace flattened (``shorten``), as ``repr`` and
JSON would escape it, HTML-escaped and URL-quoted; and a message cut short by ``...`` never
ends on the first two or more characters of one.

labup applies it where a lab's values can reach output: check results (messages, hints,
descriptions: so tables, ``--json``, JUnit, HTML and the class report), the errors of ``up``
(container logs, healthcheck output), rendered instructions, the self-test's solution output,
and problems found while loading a spec. Every value is redacted whatever its length: a very
short secret masks its every occurrence.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from labspec.model import Lab

MASK = "***"
_CUT = "..."


class Redactor:
    """Replaces secret values by ``***``; falsy (and a no-op) when there are none."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for value in values:
            if not value:
                continue
            forms.update((
                value,
                " ".join(value.split()),
                repr(value)[1:-1],
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
                html.escape(value),
                html.escape(value, quote=False),
                quote(value, safe=""),
            ))
        forms.discard("")
        self.forms = tuple(sorted(forms, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self.forms)

    def __call__(self, text: str) -> str:
        if not self.forms or not text:
            return text
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return self._cuts(text) if _CUT in text else text

    def _cuts(self, text: str) -> str:
        """``shorten()`` cuts at a limit and adds ``...``: the start of a value may sit
        right before it."""
        parts = text.split(_CUT)
        for i, head in enumerate(parts[:-1]):
            for form in self.forms:
                k = next((k for k in range(min(len(form) - 1, len(head)), 1, -1)
                          if head.endswith(form[:k])), 0)
                if k:
                    parts[i] = head[:-k] + MASK
                    break
        return _CUT.join(parts)


NO_SECRETS = Redactor()


def redactor(lab: Lab) -> Redactor:
    """The Redactor of a lab's secret values (a no-op when it has none)."""
    values = lab.secret_values
    return Redactor(values) if values else NO_SECRETS
