"""What running an action on targets yields: each target's outcome, the fleet's result, and
the errors an action raises to say how its target ended (skipped, failed with a partial result).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from labspec.errors import EXIT_FAILED, LabupError

Status = Literal["ok", "failed", "unreachable", "skipped"]
R_co = TypeVar("R_co", covariant=True)


class FleetCancelled(LabupError):
    """Ctrl-C during a fleet run: raised in each running host's next step."""


class HostSkipped(LabupError):
    """Raised by an action: this target is left out on purpose (e.g. no GPU), with the reason."""


class FleetFailed(LabupError):
    """Some hosts of a fleet run failed; the message names them."""

    exit_code = EXIT_FAILED


class Done(NamedTuple, Generic[R_co]):
    """What an action returns: its own result, one line for the summary, the ``--json``."""

    value: R_co
    summary: str
    document: Mapping[str, Any] = MappingProxyType({})


class ActionFailed(LabupError):
    """An action failed but has something to show for it (what ``up`` cleaned up, a doctor
    report): ``partial`` goes into ``--json`` and the summary; ``cause`` is the real error."""

    def __init__(self, cause: LabupError, partial: Done[Any]) -> None:
        self.cause = cause
        self.partial = partial
        self.exit_code = cause.exit_code
        super().__init__(cause.message, hint=cause.hint)


class FleetView(Protocol):
    """What the runner tells a live view: a host started, moved to a step, finished."""

    def started(self, host: str) -> None: ...

    def step(self, host: str, text: str) -> None: ...

    def finished(self, outcome: HostOutcome) -> None: ...


class NullView:
    def started(self, host: str) -> None:
        pass

    def step(self, host: str, text: str) -> None:
        pass

    def finished(self, outcome: HostOutcome) -> None:
        pass


class HostOutcome(NamedTuple):
    """How one target's run ended."""

    host: str
    status: Status
    seconds: float
    step: str  # the last step reached
    message: str = ""  # one line (or a few) for the summary; the error text on failure
    done: Done[Any] | None = None  # what the action returned (or had done when it failed)
    exit_code: int = 0  # the error's exit code when it failed

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")

    @property
    def document(self) -> Mapping[str, Any] | None:
        return self.done.document if self.done is not None else None


class FleetResult(NamedTuple):
    outcomes: tuple[HostOutcome, ...]
    seconds: float

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(o.host for o in self.outcomes if not o.ok)

    @property
    def exit_code(self) -> int:
        return 0 if not self.failed else 1

    def outcome(self, host: str) -> HostOutcome:
        for o in self.outcomes:
            if o.host == host:
                return o
        raise KeyError(host)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "failed": list(self.failed),
            "hosts": [
                {
                    "host": o.host,
                    "status": o.status,
                    "seconds": round(o.seconds, 3),
                    "step": o.step,
                    "message": o.message,
                    "result": o.document,
                }
                for o in self.outcomes
            ],
        }
