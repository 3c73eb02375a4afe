"""One error tree for the whole project.

Every error a user can cause is a :class:`LabupError`. The CLI prints ``str(error)`` on
stderr and exits with ``error.exit_code``; a traceback only appears with ``--debug``.
Messages are built in the constructors; nothing here logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1  # something ran and failed: a check, an up, a host in a fleet
EXIT_BAD_INPUT = 2  # the user's input is wrong: spec, params, lab number, inventory
EXIT_ENGINE = 3  # no engine answers at the URL given
EXIT_INTERRUPTED = 130


class LabupError(Exception):
    """Base of every error labup reports to a user."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        text = message if not hint else f"{message}\n  hint: {hint}"
        super().__init__(text)


@dataclass(frozen=True)
class Problem:
    """One located problem in a document: ``FILE:LINE:COL: $.path: message``."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # JSON path such as ``$.containers.web.ports[0]``
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        text = f"{where}: {self.path}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class SpecError(LabupError):
    """A document (lab spec, inventory) is invalid; carries every problem found."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Sequence[Problem], *, summary: str | None = None) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = summary or (f"{count} problem{'s' if count != 1 else ''} found")
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{body}\n{head}" if body else head)


class TemplateError(SpecError):
    """A Jinja2 expression in a spec failed to render (located like a schema error)."""


class UserInputError(LabupError):
    """A command-line argument is wrong: unknown lab, bad --set, missing file."""

    exit_code = EXIT_BAD_INPUT


class EngineError(LabupError):
    """The Docker engine refused or failed an operation."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        resource: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.host = host
        self.resource = resource
        self.detail = message  # without the host and resource prefix
        prefix = ""
        if host:
            prefix += f"[{host}] "
        if resource:
            prefix += f"{resource}: "
        super().__init__(prefix + message, hint=hint)


class EngineUnreachable(EngineError):
    """No engine answers at the URL."""

    exit_code = EXIT_ENGINE


class CheckFailed(LabupError):
    """One or more checks failed (used by ``up`` for environment checks)."""

    exit_code = EXIT_FAILED
