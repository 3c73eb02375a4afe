"""A lab's identity on an engine: its key AND where its spec came from.

Every resource carries ``labup.origin`` (:func:`labspec.catalog.lab_origin`: ``catalog`` for
catalog lab N, else ``spec:`` and the spec's path). Two specs with the same key (a spec outside
the catalog that says ``id: 1`` or ``name: lab1``) are different labs: before ``up``, ``plan``,
``reset`` or ``down`` of a spec touches anything, the resources found under its key must be its
own, else :class:`LabClash` (exit 2) names the other spec and nothing changes.

Resources made before labels had an origin have none; a catalog key (``lab5``) without an
origin counts as the catalog lab's, any other key as the spec's that asks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from labspec.catalog import CATALOG_ORIGIN, origin_of
from labspec.errors import UserInputError
from provisioner.engine import labels as L
from provisioner.engine.protocol import Observed

_CATALOG_KEY = re.compile(r"^lab\d+$")


__all__ = ["LabClash", "origin_of", "owner", "refuse_foreign"]


class LabClash(UserInputError):
    """Another spec's resources carry this lab's key."""


def owner(o: Observed) -> str:
    """The origin a resource belongs to (legacy resources without one: see the module)."""
    found = o.labels.get(L.ORIGIN)
    if found:
        return found
    key = o.labels.get(L.LAB, "")
    return CATALOG_ORIGIN if _CATALOG_KEY.match(key) else ""


def describe(origin: str) -> str:
    if origin == CATALOG_ORIGIN:
        return "the catalog's lab"
    return f"the spec {origin.removeprefix('spec:')}" if origin else "an unknown spec"


def refuse_foreign(key: str, instance: str | None, origin: str, found: Iterable[Observed]) -> None:
    """LabClash when a resource in ``found`` belongs to another origin than ``origin``."""
    for o in found:
        theirs = owner(o)
        if theirs and theirs != origin:
            where = key if instance in (None, L.DEFAULT_INSTANCE) else f"{key} [{instance}]"
            raise LabClash(
                f"{where} on this engine is {describe(theirs)} ({o.kind} {o.name}); this is "
                f"{describe(origin)}, with the same key {key!r}: refusing to touch its "
                "resources",
                hint="give this spec its own `name` (a spec outside the catalog has no `id`), "
                "or use --instance; `labup down "
                f"{key}` (the key alone) removes what carries that key, whatever made it",
            )
