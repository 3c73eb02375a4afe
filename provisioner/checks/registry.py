"""Check types by the key that names them in a spec, imported lazily.

Each check type is one function ``(ctx, spec) -> Outcome`` in a small module. The table
below is the single list of known types; an unknown name lists the valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from labspec.errors import UserInputError

if TYPE_CHECKING:
    from provisioner.checks.context import CheckContext
    from provisioner.checks.results import Outcome

CheckFunction = Callable[["CheckContext", Mapping[str, Any]], "Outcome"]

# type key -> "module:function"
CHECK_TYPES: dict[str, str] = {
    "container": "provisioner.checks.container:check_container",
    "http": "provisioner.checks.http:check_http",
    "tcp": "provisioner.checks.tcp:check_tcp",
    "reachable": "provisioner.checks.reachable:check_reachable",
    "exec": "provisioner.checks.exec:check_exec",
    "file": "provisioner.checks.file:check_file",
    "volume": "provisioner.checks.volume:check_volume",
    "image": "provisioner.checks.image:check_image",
    "dockerfile": "provisioner.checks.dockerfile:check_dockerfile",
    "gpu": "provisioner.checks.gpu:check_gpu",
}


# check types that read files of the lab folder (on a remote engine: the learner's copy there)
READS_LAB_FILES = frozenset({"dockerfile"})


class UnknownCheckType(UserInputError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown check type {name!r}",
            hint="known types: " + ", ".join(sorted(CHECK_TYPES)),
        )


def known_types() -> tuple[str, ...]:
    return tuple(sorted(CHECK_TYPES))


def get_check(name: str) -> CheckFunction:
    """The function implementing check type ``name``."""
    target = CHECK_TYPES.get(name)
    if target is None:
        raise UnknownCheckType(name)
    module_name, func_name = target.split(":")
    func: CheckFunction = getattr(importlib.import_module(module_name), func_name)
    return func
