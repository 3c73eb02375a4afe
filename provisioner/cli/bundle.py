"""``labup bundle``: offline course bundles (write, inspect, load on one engine or a fleet).

    labup bundle 1 2 3 -o course.tar       # same as `labup bundle create 1 2 3 -o course.tar`
    labup bundle inspect course.tar [--verify]
    labup bundle load course.tar [--host URL | -i room.yml]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from labspec.model import Lab
from provisioner.cli import options as opt

SUBCOMMANDS = ("create", "inspect", "load")


class _BundleGroup(TyperGroup):
    """``labup bundle 5 6 -o x.tar`` means ``labup bundle create 5 6 -o x.tar``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["create", *args]
        return super().resolve_command(ctx, args)


bundle_app = typer.Typer(
    cls=_BundleGroup,
    name="bundle",
    help="Offline course bundles: labs and their images in one verified tar, for classrooms "
    "without internet. `labup bundle 1 2 3 -o course.tar` writes one (same as `create`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

LABS_ARG = typer.Argument(
    ..., help="Lab numbers, folders or spec files.", metavar="LAB...",
    autocompletion=opt.complete_lab,
)
BUNDLE_ARG = typer.Argument(..., help="The bundle file.")
VERIFY = typer.Option(False, "--verify", help="Also check every sha256 sum.")
OUTPUT = typer.Option(..., "--output", "-o", help="The bundle file to write (a tar).")
IMAGE = typer.Option(
    None, "--image", help="Also include this image reference (repeatable).", metavar="REF"
)
LABS_DIR = typer.Option(
    None, "--labs-dir", help="Also write the bundle's lab folders here (for LABUP_LABS_DIR)."
)
ALL_IMAGES = typer.Option(
    False, "--all", help="Send every image of the bundle, even those the engine has."
)


def _mb(n: int) -> str:
    """A byte count for people: ``812 B``, ``4.1 kB``, ``2.3 MB``, ``1.20 GB``."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1e3:.1f} kB"
    if n < 1_000_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e9:.2f} GB"


def _emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _load_labs(refs: list[str], sets: list[str] | None) -> list[Lab]:
    from provisioner.catalog.lab_source import LabSource

    return [LabSource.resolve(ref, sets=sets).load() for ref in refs]


class _Bar:
    """Progress on stderr: a rich bar on a terminal, nothing otherwise."""

    def __init__(self, label: str) -> None:
        self._progress: Any = None
        self._task: Any = None
        self._label = label
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, done: int, total: int | None = None, label: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=done, total=total, description=label or self._label
            )


def register(app: typer.Typer) -> None:
    """Add ``labup bundle create|inspect|load``."""

    @bundle_app.command("create")
    def create_cmd(
        labs: list[str] = LABS_ARG,
        output: Path = OUTPUT,
        image: list[str] | None = IMAGE,
        sets: list[str] | None = opt.SET,
        host: str | None = opt.HOST,
        json_out: bool = opt.JSON,
    ) -> None:
        """Pack labs (specs, files, every image they need) into one verified tar."""
        from provisioner.engine.connect import connect
        from provisioner.offline.bundle_write import write_bundle

        loaded = _load_labs(labs, sets)
        engine = connect(host)
        try:
            with _Bar("writing") as bar:
                manifest = write_bundle(
                    engine.sdk_client(),
                    loaded,
                    output,
                    images=image or [],
                    progress=lambda what, n: bar.update(n, label=what),
                )
        finally:
            engine.close()
        size = output.stat().st_size
        if json_out:
            from provisioner.offline.bundle_format import describe

            _emit_json(describe(manifest, path=output, size=size))
            return
        print(
            f"{output}: {len(manifest.labs)} lab(s), {len(manifest.images)} image(s), "
            f"{_mb(size)}, {len(manifest.members)} members, checksums verified"
        )
        for img in manifest.images:
            print(f"  {', '.join(img.tags)}  {img.short_id}  {_mb(img.size)}")

    @bundle_app.command("inspect")
    def inspect_cmd(
        path: Path = BUNDLE_ARG,
        verify: bool = VERIFY,
        json_out: bool = opt.JSON,
    ) -> None:
        """Show what a bundle holds: labs, images, sizes, and which labs use which image."""
        from provisioner.offline.bundle_format import Bundle, describe

        with Bundle.open(path) as bundle:
            checked = bundle.verify() if verify else None
            doc = describe(bundle.manifest, path=path, size=path.stat().st_size)
        doc["verified"] = checked is not None
        if json_out:
            _emit_json(doc)
            return
        print(f"{path}: {doc['format']}, written {doc['created']} by labup {doc['labup_version']}")
        print(
            f"  {_mb(doc['bytes'])} in {doc['members']} members; "
            f"image data {_mb(doc['images_bytes'])}"
        )
        print("labs:")
        for lab in doc["labs"]:
            number = f"{lab['id']:>3}" if lab["id"] is not None else "  -"
            print(f"  {number}  {lab['key']:<24} {lab['title']}  ({_mb(lab['files_bytes'])} files)")
            for ref in lab["images"]:
                print(f"         uses {ref}")
        print("images:")
        for img in doc["images"]:
            labs = ", ".join(img["labs"]) or "(extra)"
            short = img["id"].split(":", 1)[-1][:12]
            print(f"  {', '.join(img['tags'])}  {short}  {_mb(img['size'])}  for {labs}")
            for digest in img["repo_digests"]:
                print(f"      {digest}")
        if checked is not None:
            print(f"checksums: all {doc['members']} members verified ({_mb(checked)} read)")

    @bundle_app.command("load")
    def load_cmd(
        path: Path = BUNDLE_ARG,
        host: str | None = opt.HOST,
        inventory: Path | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        parallel: int | None = opt.PARALLEL,
        only_failed: bool = opt.ONLY_FAILED,
        all_images: bool = ALL_IMAGES,
        labs_dir: Path | None = LABS_DIR,
        json_out: bool = opt.JSON,
    ) -> None:
        """Load the images an engine lacks (compared by image ID) from a verified bundle."""
        from provisioner.cli.run import choose, run
        from provisioner.offline.bundle_extract import extract_labs
        from provisioner.offline.bundle_format import Bundle
        from provisioner.offline.bundle_load import LoadResult
        from provisioner.targets.bundle_action import BundleLoadOptions, bundle_load_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        with Bundle.open(path) as bundle:  # refuse a bad bundle before touching any engine
            bundle.verify()
            if labs_dir is not None:
                for folder in extract_labs(bundle, labs_dir):
                    print(f"lab files: {folder}", file=sys.stderr)
        command = f"bundle load {path.name}"
        targets = choose(where, command)
        if targets is None:
            return
        options = BundleLoadOptions(path, only_missing=not all_images)
        result = run(targets, bundle_load_action(options), command=command, json_out=json_out)
        if targets.fleet or json_out:
            return
        done = result.outcomes[0].done
        assert done is not None and isinstance(done.value, LoadResult)
        print(f"{done.value.host}: {done.value.summary()}")

    app.add_typer(bundle_app, name="bundle")
