"""From a YAML file to a :class:`~labspec.model.Lab`: the whole pipeline, and the model builder.

The stages, each reporting every problem it finds in the ``FILE:LINE:COL: $.path: message``
format, and each only run when the one before it passed:

1. read and parse the YAML (:mod:`labspec.loader`): syntax, encoding, duplicates, aliases;
2. params: their schema and defaults, then the ``--set`` values;
3. render the templates (:mod:`labspec.templating`) and validate the schema
   (:mod:`labspec.validate`) -- reported together, a value whose template failed is not
   reported a second time by the schema;
4. build the model (this module) and check the semantic rules (:mod:`labspec.semantic`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from labspec import semantic, templating, validate, variants
from labspec.document import Document, JsonPath, format_path
from labspec.errors import LabupError, Problem, SpecError, TemplateError
from labspec.loader import load_file
from labspec.model import Lab, lab_key
from labspec.model_builder import _Builder, _lab_id, build_params
from labspec.redact import Redactor

_NOT_RENDERED = frozenset({"apiVersion", "kind", "id", "name", "params"})


def load_lab(
    path: str | Path,
    *,
    params: Mapping[str, str] | None = None,
    host: Mapping[str, Any] | None = None,
    instance: str | None = None,
    allow_unsafe: bool = False,
    learner: str = "",
) -> Lab:
    """Read, render, validate and build a lab spec (see the module docstring); ``learner``
    seeds the ``random`` params (:mod:`labspec.variants`)."""
    templating.check_instance(instance)
    raw_doc, problems = load_file(path)
    spec_path = Path(path).resolve()
    folder = spec_path.parent

    # Stage 2: params must be sound before anything can be rendered.
    # Validate the head (params, id, name) alone: a whole, still unrendered document would
    # report templates where the schema wants numbers. `containers: {}` keeps it schema-whole.
    head_keys = ("apiVersion", "kind", "id", "name", "title", "params")
    head = {k: v for k, v in raw_doc.data.items() if k in head_keys}
    head["containers"] = {}
    head_doc = Document(raw_doc.file, head, raw_doc.values, raw_doc.keys)
    param_problems = [p for p in validate.check(head_doc, "lab") if p.path != "$"]
    if not param_problems:
        param_problems = semantic.check_params(raw_doc) + variants.check(raw_doc)
    if problems or param_problems:
        raise SpecError([*problems, *param_problems])
    data = raw_doc.data
    param_defs = build_params(data.get("params") or {})
    lab_id = _lab_id(data.get("id"))
    lab_name = str(data.get("name", ""))
    drawn = variants.with_drawn(param_defs, learner=learner, lab_key=lab_key(lab_id, lab_name))
    values = templating.resolve_values(drawn, params, file=raw_doc.file)
    secret = Redactor(str(values[p.name]) for p in param_defs
                      if p.secret and p.name in values and not isinstance(values[p.name], bool))

    # Stage 3: render, then validate the rendered document.
    ctx = templating.context(
        values=values, lab_id=lab_id, lab_name=lab_name, host=host, instance=instance
    )
    rendered = templating.render_tree(
        raw_doc, ctx, skip=lambda p: len(p) == 1 and p[0] in _NOT_RENDERED
    )
    template_problems = rendered.problems
    doc = Document(raw_doc.file, rendered.data, raw_doc.values, raw_doc.keys)

    def under_failed(p: JsonPath) -> bool:
        return any(p[: len(f)] == f for f in rendered.failed)

    schema_problems = _show_sources(validate.check(doc, "lab", skip=under_failed), rendered.sources)
    if template_problems or schema_problems:
        errors = sorted([*template_problems, *schema_problems], key=lambda p: (p.line, p.column))
        if template_problems and not schema_problems:
            raise TemplateError(_hidden(errors, secret))
        raise SpecError(_hidden(errors, secret))

    # Stage 4: the model, then the rules that span more than one value.
    builder = _Builder(doc, folder)
    lab = replace(builder.lab(spec_path, param_defs, values), learner=learner)
    problems = builder.problems or semantic.check_lab(lab, doc, allow_unsafe=allow_unsafe)
    if problems:
        raise SpecError(_hidden(problems, Redactor(lab.secret_values)))
    return lab


def _hidden(problems: list[Problem], secret: Redactor) -> list[Problem]:
    """A rendered value in a problem may be a secret param's: never shown."""
    if not secret:
        return problems
    return [replace(p, message=secret(p.message), hint=secret(p.hint) if p.hint else p.hint)
            for p in problems]


def _show_sources(problems: list[Problem], sources: Mapping[JsonPath, str]) -> list[Problem]:
    """Say which template produced a value the schema rejected."""
    if not sources:
        return problems
    by_path = {format_path(p): text for p, text in sources.items()}
    out = []
    for problem in problems:
        source = by_path.get(problem.path)
        if source is not None:
            problem = replace(problem, message=f"{problem.message} (rendered from {source!r})")
        out.append(problem)
    return out


def validate_path(
    path: str | Path,
    *,
    allow_unsafe: bool = False,
    params: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every problem of the spec at ``path`` ([] when it is valid), its instructions'
    templates included; never raises LabupError."""
    try:
        lab = load_lab(path, params=params, allow_unsafe=allow_unsafe)
    except SpecError as e:
        return list(e.problems)
    except LabupError as e:
        return [Problem(str(path), 0, 0, "$", e.message, e.hint)]
    return check_instructions(lab)


def check_instructions(lab: Lab) -> list[Problem]:
    """Render the instructions file as ``labup show`` would, so an author learns of a bad
    template at validation time rather than in front of a class."""
    if lab.instructions is None:
        return []
    from labspec.loader import read_text

    try:
        text = read_text(lab.instructions, _shown(lab.instructions))
    except SpecError as e:
        return list(e.problems)
    context = templating.template_context(lab)
    try:
        templating.render_text(text, context, file=_shown(lab.instructions))
    except TemplateError as e:
        return list(e.problems)
    return []


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
