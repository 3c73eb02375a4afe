"""labspec: the lab spec language. Reads YAML, renders params, validates, builds the model.

This package never imports docker, paramiko or provisioner (a test proves it). Importing it
is cheap: jsonschema and jinja2 load on the first call that needs them, so ``labup --help``
does not pay for them.

Public API::

    load_lab(path, *, params=None, host=None, instance=None, allow_unsafe=False,
             learner="") -> Lab
    load_inventory(path) -> Inventory
    load_class(path) -> ClassSpec
    validate_path(path, *, allow_unsafe=False, params=None) -> list[Problem]
    render_text(text, context, *, file) -> str
    template_context(lab, *, host=None, instance=None) -> dict
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labspec.errors import (
    LabupError,
    Problem,
    SpecError,
    TemplateError,
    UserInputError,
)
from labspec.model import Inventory, Lab

if TYPE_CHECKING:
    from labspec.class_spec import ClassSpec


def load_lab(
    path: str | Path,
    *,
    params: Mapping[str, str] | None = None,
    host: Mapping[str, Any] | None = None,
    instance: str | None = None,
    allow_unsafe: bool = False,
    learner: str = "",
) -> Lab:
    """Read, render, validate and build the lab spec at ``path``.

    ``params`` are the raw ``--set name=value`` strings (coerced to each param's type);
    ``host`` is ``{"name": ..., "vars": {...}}`` for templates (default the local host);
    ``instance`` is the instance name templates see (default ``"default"``); ``learner`` is
    who it is for, which seeds its ``random`` params (:mod:`labspec.variants`).
    Raises :class:`SpecError` (every located problem), :class:`TemplateError` (a template
    failed) or :class:`UserInputError` (a bad ``--set``, a param with no value). A lab built
    before from the same content is remembered (:mod:`labspec.lab_cache`).
    """
    from labspec import lab_cache

    def build() -> Lab:
        from labspec.build import load_lab as _load_lab

        return _load_lab(path, params=params, host=host, instance=instance,
                         allow_unsafe=allow_unsafe, learner=learner)

    return lab_cache.load(Path(path).resolve(), build, params=params, host=host,
                          instance=instance, allow_unsafe=allow_unsafe, learner=learner)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory (the machines of a classroom). Raises SpecError."""
    from labspec.inventory import load_inventory as _load_inventory

    return _load_inventory(path)


def load_class(path: str | Path) -> ClassSpec:
    """Read and validate a Class document (a classroom on a Swarm cluster). Raises SpecError."""
    from labspec.class_spec import load_class as _load_class

    return _load_class(path)


def validate_path(
    path: str | Path,
    *,
    allow_unsafe: bool = False,
    params: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every problem of the lab spec at ``path``; ``[]`` when it is valid. Never raises for a
    bad spec (a missing file or a bad ``--set`` value is one problem too)."""
    from labspec.build import validate_path as _validate_path

    return _validate_path(path, allow_unsafe=allow_unsafe, params=params)


def render_text(text: str, context: Mapping[str, Any], *, file: str) -> str:
    """Render a text (instructions) with sandboxed Jinja2; TemplateError names ``file``."""
    from labspec.templating import render_text as _render_text

    return _render_text(text, context, file=file)


def template_context(
    lab: Lab, *, host: Mapping[str, Any] | None = None, instance: str | None = None
) -> dict[str, Any]:
    """The names a template sees for ``lab``: each param, ``params``, ``host``, ``instance``,
    ``lab`` (``{"id", "name", "key"}``)."""
    from labspec.templating import template_context as _template_context

    return _template_context(lab, host=host, instance=instance)


__all__ = [
    "Inventory",
    "Lab",
    "LabupError",
    "Problem",
    "SpecError",
    "TemplateError",
    "UserInputError",
    "load_class",
    "load_inventory",
    "load_lab",
    "render_text",
    "template_context",
    "validate_path",
]
