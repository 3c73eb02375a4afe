"""The one lab loader: LAB as the command line names it, resolved once, rendered per target.

``LabSource.resolve("5", ...)`` finds the spec (a catalog number, a lab folder or a spec file;
a learner's commands work in the learner's copy of an installed lab) and parses ``--set``
before anything is connected, so bad input fails at once and changes nothing. ``load(host)``
renders it as one host sees it (``host.name``, ``host.vars`` of an inventory host).
``lab_key(ref)`` is the one rule for the key ``down`` and ``status`` work on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from labspec.errors import UserInputError
from labspec.model import Lab
from provisioner.engine.labels import DEFAULT_INSTANCE


def parse_sets(values: Sequence[str] | None) -> dict[str, str]:
    """``--set name=value`` strings to a mapping (the spec loader coerces the types)."""
    params: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserInputError(f"--set {item!r}: expected NAME=VALUE")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8, as lone surrogates
            raise UserInputError(
                f"--set {name.strip()}: the value is not UTF-8 text",
                hint="params are text: check the terminal's encoding",
            ) from None
        params[name.strip()] = value
    return params


@dataclass(frozen=True)
class LabSource:
    """A lab spec and how to render it: params, instance, whether unsafe features are allowed."""

    path: Path
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    instance: str = DEFAULT_INSTANCE
    allow_unsafe: bool = False
    # where the spec comes from (labspec.catalog.lab_origin); None: from ``path``. The
    # self-test's throwaway copy keeps the original's, so it is the same lab on the engine.
    origin: str | None = None
    learner: str | None = None  # --learner / LABUP_LEARNER (provisioner/learner/identity.py)
    # renderings already made in this process, by host (the CLI renders the first target's
    # once up front to refuse a bad spec before any engine; the action then reuses it)
    _loaded: dict[str, Lab] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def resolve(
        cls,
        ref: str,
        *,
        sets: Sequence[str] | None = None,
        instance: str | None = None,
        allow_unsafe: bool = False,
        workspace: bool = False,
        learner: str | None = None,
    ) -> LabSource:
        """``workspace``: a learner's command (up, check, reset...) on an installed catalog lab
        works in the learner's copy of it (see :func:`labspec.catalog.learner_copy`)."""
        from labspec.catalog import resolve_lab_path
        from labspec.templating import check_instance
        from provisioner.learner.identity import explicit

        check_instance(instance)
        return cls(
            path=resolve_lab_path(ref, workspace=workspace),
            params=MappingProxyType(parse_sets(sets)),
            instance=instance or DEFAULT_INSTANCE,
            allow_unsafe=allow_unsafe,
            learner=explicit(learner),
        )

    def load(self, host: Mapping[str, Any] | None = None, *, learner: str | None = None) -> Lab:
        """The lab as a host sees it: ``host`` is ``{"name", "vars"}`` for the templates (a
        target's :meth:`~provisioner.targets.target.Target.template_host`), default local;
        ``learner`` seeds its random params (default ``--learner``, else the user name)."""
        import json

        from labspec import load_lab
        from provisioner.learner.identity import local_user

        who = learner or self.learner or local_user()
        key = json.dumps([host, who], sort_keys=True, default=str)
        lab = self._loaded.get(key)
        if lab is None:
            lab = load_lab(
                self.path,
                params=dict(self.params),
                host=host,
                instance=None if self.instance == DEFAULT_INSTANCE else self.instance,
                allow_unsafe=self.allow_unsafe,
                learner=who,
            )
            if not lab.origin:
                from dataclasses import replace

                from labspec.catalog import lab_origin

                lab = replace(lab, origin=self.origin or lab_origin(self.path, lab.id))
            self._loaded[key] = lab
        return lab


class LabKey(NamedTuple):
    """What ``down`` and ``status`` act on: a key, whether a spec named it, and then where
    that spec comes from (only that spec's resources are its own)."""

    key: str
    from_spec: bool
    origin: str | None = None


def lab_key(ref: str) -> LabKey:
    """The key for LAB: from its spec when LAB names one (a number, folder or file), else LAB
    itself, so an instance whose spec is gone can still be found and removed."""
    from labspec.catalog import resolve_lab_path, spec_key, spec_origin

    try:
        path = resolve_lab_path(ref)
        return LabKey(spec_key(path), True, spec_origin(path))
    except UserInputError:
        if ref.isdigit() or not ref or "/" in ref:
            raise
        return LabKey(ref, False)
