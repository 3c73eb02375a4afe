"""Find a lab by catalog number, folder or spec file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from labspec.errors import SpecError, UserInputError
from labspec.resources import is_packaged, labs_dir, workspace_dir

if TYPE_CHECKING:
    from labspec.model import Lab

SPEC_FILENAME = "lab.yaml"


def catalog_folders() -> list[Path]:
    """Every lab folder of the catalog (``labs/NN-slug/`` holding a lab.yaml), by number."""
    root = labs_dir()
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if (p / SPEC_FILENAME).is_file() and p.name[:2].isdigit()
    )


def resolve_lab_path(ref: str, *, workspace: bool = False) -> Path:
    """Turn ``5``, ``labs/05-networking``, or ``my-lab.yaml`` into the spec file's path.

    With ``workspace`` (the commands a learner runs: up, check, reset, show...), a catalog lab
    that was installed inside the package is worked on in the learner's own copy (see
    :func:`learner_copy`), never in site-packages."""
    if ref.isdigit():
        number = int(ref)
        for folder in catalog_folders():
            if int(folder.name.split("-", 1)[0]) == number:
                if workspace:
                    folder = learner_copy(folder)
                return folder / SPEC_FILENAME
        known = ", ".join(str(int(f.name.split("-", 1)[0])) for f in catalog_folders()) or "none"
        raise UserInputError(
            f"no lab {number} in the catalog ({labs_dir()})",
            hint=f"known labs: {known}; `labup list` shows them",
        )
    path = Path(ref).expanduser()
    if path.is_dir():
        spec = path / SPEC_FILENAME
        if not spec.is_file():
            raise UserInputError(f"{path}: folder has no {SPEC_FILENAME}")
        return spec.resolve()
    if path.is_file():
        return path.resolve()
    raise UserInputError(
        f"{ref}: no such file or folder, and not a lab number",
        hint="give a lab number (`labup list`), a lab folder, or a spec file",
    )


def learner_copy(folder: Path) -> Path:
    """The folder a learner works in for the catalog lab ``folder``.

    A source checkout's ``labs/`` (and a ``LABUP_LABS_DIR``) is used in place. A lab installed
    inside the package is copied once to ``workspace_dir()/NN-slug`` and that copy is used
    from then on: the learner's edits stay, an upgrade of labup never overwrites them, and
    deleting the copy starts the lab afresh."""
    if not is_packaged(folder):
        return folder
    dest = workspace_dir() / folder.name
    if (dest / SPEC_FILENAME).is_file():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=dest.parent))
        try:
            shutil.copytree(
                folder, staging / "lab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
            try:
                os.rename(staging / "lab", dest)  # atomic: a lab folder is whole or absent
            except OSError:
                if not (dest / SPEC_FILENAME).is_file():  # not another labup's copy: a real error
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as e:
        raise UserInputError(
            f"cannot copy lab {folder.name} to your workspace {dest}: {e.strerror or e}",
            hint="set LABUP_WORKSPACE to a folder you can write to",
        ) from e
    return dest


def spec_key(path: Path) -> str:
    """The key of the lab whose spec is ``path`` (``lab5``, or its name), read from the spec's
    top level without rendering it: ``down`` and ``status`` need only this."""
    from labspec.model import lab_key

    lab_id, name = _spec_head(path)
    if lab_id is not None:
        return lab_key(lab_id, name)
    if name:
        return name
    raise UserInputError(f"{path}: the spec has neither an id nor a name")


def spec_origin(path: Path) -> str:
    """:func:`lab_origin` of the spec at ``path``, read without rendering it."""
    return lab_origin(path, _spec_head(path)[0])


def _spec_head(path: Path) -> tuple[int | None, str]:
    from labspec.loader import load_file

    doc, problems = load_file(path)
    if problems:
        raise SpecError(problems)
    data = doc.data if isinstance(doc.data, dict) else {}
    lab_id, name = data.get("id"), data.get("name")
    number = lab_id if isinstance(lab_id, int) and not isinstance(lab_id, bool) else None
    return number, name if isinstance(name, str) else ""


CATALOG_ORIGIN = "catalog"


def origin_of(lab: Lab) -> str:
    """The lab's origin: as its loader recorded it, else from its spec's path."""
    return lab.origin or lab_origin(lab.path, lab.id)


def lab_origin(spec: Path, lab_id: int | None) -> str:
    """Where a lab comes from, the other half of its identity on an engine (the key is the
    first): ``catalog`` for catalog lab N (its folder is the catalog's ``NN-slug`` folder for
    that number, or a learner's copy of it), else ``spec:`` and the spec file's real path.
    Two specs that share a key (a spec outside the catalog that says ``id: 1`` or
    ``name: lab1``) have different origins, and labup refuses to let one touch the other's
    resources.

    ``labup test`` runs a lab's solution in a throwaway copy of its folder and tells it, in
    its environment, where that copy's spec is (``LABUP_LAB_PATH``) and whose lab it is
    (``LABUP_LAB_ORIGIN``): a labup the solution runs on exactly that spec works on the
    original's resources. The environment is the user's (or labup test's), never a spec's."""
    given, at = os.environ.get("LABUP_LAB_ORIGIN"), os.environ.get("LABUP_LAB_PATH")
    if given and at and Path(at).resolve() == spec.resolve():
        return given
    folder = spec.resolve().parent
    if lab_id is not None and spec.name == SPEC_FILENAME:
        for known in catalog_folders():
            same = folder == known.resolve() or (
                folder.parent == workspace_dir().resolve() and folder.name == known.name
            )
            number = known.name.split("-", 1)[0]
            if same and number.isdigit() and int(number) == lab_id:
                return CATALOG_ORIGIN
    return f"spec:{spec.resolve()}"
