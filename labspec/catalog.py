"""Find a lab by catalog number, folder or spec file."""

from __future__ import annotations

from pathlib import Path

from labspec.errors import UserInputError
from labspec.resources import labs_dir

SPEC_FILENAME = "lab.yaml"


def catalog_folders() -> list[Path]:
    """Every lab folder of the catalog (``labs/NN-slug/`` holding a lab.yaml), by number."""
    root = labs_dir()
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if (p / SPEC_FILENAME).is_file() and p.name[:2].isdigit()
    )


def resolve_lab_path(ref: str) -> Path:
    """Turn ``5``, ``labs/05-networking``, or ``my-lab.yaml`` into the spec file's path."""
    if ref.isdigit():
        number = int(ref)
        for folder in catalog_folders():
            if int(folder.name.split("-", 1)[0]) == number:
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
