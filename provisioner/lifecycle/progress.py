"""Progress output of the lifecycle: one line per resource as it is created or started.

The lifecycle functions never print: they call a :class:`Reporter`. The CLI picks
:class:`ConsoleReporter` (rich on a terminal, plain lines otherwise); a fleet passes its own
reporter (for instance one that routes each host's events to a live view), or
:class:`QuietReporter`. Every reporter also records the events, for ``--json``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TextIO


class Event(NamedTuple):
    """One thing that happened to one resource: ``container lab5-web started 0.21s``."""

    kind: str  # container / network / volume / image
    name: str  # Docker name (or image reference)
    action: str  # created / started / healthy / completed / removed / kept / pulled / built / ...
    seconds: float | None = None
    detail: str = ""

    def text(self) -> str:
        timing = f" ({self.seconds:.2f}s)" if self.seconds is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.kind} {self.name} {self.action}{timing}{detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "seconds": round(self.seconds, 3) if self.seconds is not None else None,
            "detail": self.detail,
        }


class Reporter:
    """Base reporter: records events and messages, prints nothing. Thread-safe."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.messages: list[tuple[str, str]] = []  # (level, text)
        self._lock = threading.Lock()

    def resource(
        self, kind: str, name: str, action: str, seconds: float | None = None, detail: str = ""
    ) -> None:
        event = Event(kind, name, action, seconds, detail)
        with self._lock:
            self.events.append(event)
            self.show_event(event)

    def info(self, text: str) -> None:
        with self._lock:
            self.messages.append(("info", text))
            self.show_message("info", text)

    def warn(self, text: str) -> None:
        with self._lock:
            self.messages.append(("warning", text))
            self.show_message("warning", text)

    def progress(self, name: str, text: str) -> None:
        """Transient progress (image pull layers); not recorded."""

    # hooks for subclasses; called with the lock held
    def show_event(self, event: Event) -> None:
        """Show one event."""

    def show_message(self, level: str, text: str) -> None:
        """Show one message."""


class QuietReporter(Reporter):
    """Records everything, shows nothing (``--quiet``, ``--json``, fleets)."""


class CallbackReporter(Reporter):
    """Hands every event and message to a callback, e.g. a fleet's live view for one host."""

    def __init__(self, callback: Callable[[Event], None]) -> None:
        super().__init__()
        self._callback = callback

    def show_event(self, event: Event) -> None:
        self._callback(event)

    def show_message(self, level: str, text: str) -> None:
        self._callback(Event("message", level, text))

    def progress(self, name: str, text: str) -> None:
        self._callback(Event("progress", name, text))


_STYLES = {
    "created": "green", "started": "green", "healthy": "green", "completed": "green",
    "pulled": "green", "built": "green", "removed": "yellow", "replaced": "yellow",
    "kept": "dim", "up to date": "dim", "failed": "bold red", "left behind": "bold red",
}


class ConsoleReporter(Reporter):
    """Rich lines on a terminal, plain lines otherwise (on stderr, so stdout stays for data)."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.rich = self.stream.isatty() if color is None else color
        self._console: Any = None
        if self.rich:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

    def show_event(self, event: Event) -> None:
        if self._console is None:
            print(event.text(), file=self.stream, flush=True)
            return
        style = _STYLES.get(event.action, "")
        timing = f" [dim]{event.seconds:.2f}s[/dim]" if event.seconds is not None else ""
        detail = f" [dim]{_escape(event.detail)}[/dim]" if event.detail else ""
        action = f"[{style}]{event.action}[/{style}]" if style else event.action
        self._console.print(
            f"  {event.kind:<9} {_escape(event.name)} {action}{timing}{detail}"
        )

    def show_message(self, level: str, text: str) -> None:
        if self._console is None:
            prefix = "warning: " if level == "warning" else ""
            print(prefix + text, file=self.stream, flush=True)
            return
        style = "yellow" if level == "warning" else "bold"
        self._console.print(f"[{style}]{_escape(text)}[/{style}]")

    def progress(self, name: str, text: str) -> None:
        if self._console is not None:
            self._console.print(f"  [dim]{_escape(name)}: {_escape(text)}[/dim]", end="\r")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
