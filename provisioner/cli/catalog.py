"""Catalog commands: ``labup list``, ``labup show N``, ``labup test N|PATH`` and
``labup images prepare [N...] [--offline]`` / ``labup images list``.

Progress goes to stderr; stdout carries the table, the instructions, or with ``--json`` one
JSON document (documented in docs/catalog.md and docs/offline-images.md).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import typer

from provisioner.cli import options as opt

if TYPE_CHECKING:
    from labspec.model import Lab
    from provisioner.catalog.selftest import SelfTestResult

OFFLINE = typer.Option(
    False, "--offline", help="Build missing images locally from Debian packages (no registry)."
)
FORCE = typer.Option(False, "--force", help="Rebuild images that labup built offline before.")
MIRROR = typer.Option(
    None, "--mirror", help="Debian mirror for debootstrap (default: $LABUP_DEBIAN_MIRROR)."
)
KEEP_WORKSPACE = typer.Option(
    False, "--keep-workspace", help="Keep the temporary copy of the lab folder the test ran in."
)
LABS_ARG = typer.Argument(
    None, help="Lab numbers, folders or spec files (default: every lab).",
    autocompletion=opt.complete_lab,
)




def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain, aligned text table (the same on a terminal and in a pipe)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


# -- catalog ---------------------------------------------------------------------------------


def catalog_labs() -> list[Lab]:
    """Every lab of the catalog, loaded with its defaults."""
    from labspec.catalog import SPEC_FILENAME, catalog_folders
    from provisioner.catalog.lab_source import LabSource

    return [LabSource(folder / SPEC_FILENAME).load() for folder in catalog_folders()]


def lab_needs(lab: Lab) -> list[str]:
    """What a lab needs besides an engine: host tools, base images, an optional GPU."""
    from provisioner.offline.recipes import images_for_lab

    needs = list(lab.requires)
    needs += images_for_lab(lab)
    if any(c.gpus is not None for c in lab.containers) and "gpu" not in needs:
        optional = all(c.gpus.optional for c in lab.containers if c.gpus is not None)
        needs.append("gpu (optional)" if optional else "gpu")
    return needs


def lab_summary(lab: Lab) -> dict[str, Any]:
    from labspec.redact import redactor

    secret = redactor(lab)
    return {
        "id": lab.id,
        "key": lab.key,
        "name": lab.name,
        "title": secret(lab.title),
        "description": secret(" ".join(lab.description.split())),
        "folder": str(lab.folder),
        "needs": lab_needs(lab),
        "checks": {
            "env": sum(1 for c in lab.checks if c.stage == "env"),
            "task": sum(1 for c in lab.checks if c.stage == "task"),
        },
        "params": {p.name: "***" if p.secret and p.default is not None else p.default
                   for p in lab.params if p.random is None},
        # params every learner gets their own value of (labspec/variants.py)
        "random_params": {
            p.name: list(p.random.choices) or [p.random.minimum, p.random.maximum]
            for p in lab.params if p.random is not None
        },
    }


def load_one(
    ref: str, sets: list[str] | None, instance: str | None, *, workspace: bool = False,
    learner: str | None = None,
) -> Lab:
    from provisioner.catalog.lab_source import LabSource

    return LabSource.resolve(ref, sets=sets, instance=instance, workspace=workspace,
                             learner=learner).load()


# -- images ----------------------------------------------------------------------------------


_FINAL_WORDS = ("failed", "imported", "built", "present", "cached")


def _progress_printer() -> Any:
    """Progress lines on stderr: every line in a pipe, the latest step per image on a tty."""
    last: dict[str, str] = {}
    tty = sys.stderr.isatty()

    def show(ref: str, message: str) -> None:
        if last.get(ref) == message:
            return
        last[ref] = message
        if tty:
            sys.stderr.write(f"\r\033[K{ref}: {message[:110]}")
            if message.startswith(_FINAL_WORDS) or "importing" in message:
                sys.stderr.write("\n")
            sys.stderr.flush()
        else:
            err(f"{ref}: {message}")

    return show


def prepare(
    refs_from: list[str] | None,
    *,
    host: str | None,
    offline: bool,
    force: bool,
    mirror: str | None,
    json_out: bool,
    sandbox: bool = False,
) -> int:
    from provisioner.engine.connect import connect
    from provisioner.offline.base_images import prepare_images
    from provisioner.offline.recipes import refs_for_labs

    labs = [load_one(ref, None, None) for ref in refs_from] if refs_from else catalog_labs()
    refs = refs_for_labs(labs)
    if sandbox:
        from provisioner.offline.recipes import SANDBOX_IMAGE

        refs.append(SANDBOX_IMAGE)
    engine = connect(host)
    if not json_out:
        which = ", ".join(lab.key for lab in labs) or "no labs"
        err(f"images for {which}: {', '.join(refs) or 'none'}")
    results = prepare_images(
        engine.sdk_client(),
        refs,
        offline=offline,
        force=force,
        mirror=mirror,
        progress=_progress_printer() if not json_out else (lambda ref, message: None),
    )
    failed = [r for r in results if r.action == "failed"]
    if json_out:
        emit_json(
            {
                "ok": not failed,
                "images": [
                    {"ref": r.ref, "action": r.action, "seconds": round(r.seconds, 2),
                     "offline": r.offline, "detail": r.detail}
                    for r in results
                ],
            }
        )
    else:
        rows = [[r.ref, r.action, f"{r.seconds:.1f}s", r.detail.splitlines()[0] if r.detail else ""]
                for r in results]
        print(table(rows, ["IMAGE", "RESULT", "TIME", "DETAIL"]))
        for r in failed:
            err(f"labup: {r.detail}")
    return 1 if failed else 0


def _print_selftest(result: SelfTestResult) -> None:
    rows = [[s.name, "ok" if s.ok else "FAILED", f"{s.seconds:.1f}s", s.detail]
            for s in result.steps]
    print(table(rows, ["STEP", "RESULT", "TIME", "DETAIL"]))
    verdict = "PASSED" if result.ok else "FAILED"
    print(f"{result.lab} ({result.title}): self-test {verdict} in {result.seconds:.1f}s")


def register(app: typer.Typer) -> None:
    """Add list, show, test and the images group to the labup app."""

    @app.command("list")
    def list_cmd(json_out: bool = opt.JSON) -> None:
        """List the course's labs: number, title, and what each needs."""
        labs = catalog_labs()
        if json_out:
            emit_json({"labs": [lab_summary(lab) for lab in labs]})
            return
        rows = [
            [str(lab.id if lab.id is not None else "-"), lab.title, ", ".join(lab_needs(lab))]
            for lab in labs
        ]
        print(table(rows, ["LAB", "TITLE", "NEEDS"]))
        err(f"{len(labs)} labs: `labup show N` for the instructions, `labup N` to start one")

    @app.command("show")
    def show_cmd(
        lab: str = opt.LAB_ARG,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
    ) -> None:
        """Print a lab's instructions, rendered with its params (and the learner's variant)."""
        from provisioner.catalog.instructions import print_instructions

        the_lab = load_one(lab, sets, instance, workspace=True, learner=learner)
        if not print_instructions(the_lab, instance=instance):
            err(f"{the_lab.key} has no instructions")
        err(f"lab folder: {the_lab.folder}")

    @app.command("test")
    def test_cmd(
        lab: str = opt.LAB_ARG,
        host: str | None = opt.HOST,
        instance: str | None = opt.INSTANCE,
        sets: list[str] | None = opt.SET,
        learner: str | None = opt.LEARNER,
        json_out: bool = opt.JSON,
        offline: bool = typer.Option(
            False, "--offline", help="First build the lab's missing base images offline."
        ),
        keep_workspace: bool = KEEP_WORKSPACE,
        allow_unsafe: bool = opt.ALLOW_UNSAFE,
        inventory: str | None = opt.INVENTORY,
        limit: list[str] | None = opt.LIMIT,
        only_failed: bool = opt.ONLY_FAILED,
        parallel: int | None = opt.PARALLEL,
    ) -> None:
        """Prove a lab: up, env checks pass, task checks fail, solution, all pass, down, clean.

        With -i, on every host of the inventory, with a summary."""
        from provisioner.catalog.lab_source import LabSource
        from provisioner.catalog.selftest import SelfTestFailed, SelfTestResult
        from provisioner.cli.run import choose, run
        from provisioner.targets.test_action import TestOptions, test_action

        where = opt.where(host, inventory, limit, only_failed, parallel)
        source = LabSource.resolve(lab, sets=sets, instance=instance, allow_unsafe=allow_unsafe,
                                   learner=learner)
        command = f"test {lab}"
        targets = choose(where, command, source)
        if targets is None:
            return
        if offline:
            code = prepare([str(source.path)], host=host, offline=True, force=False,
                           mirror=None, json_out=False)
            if code != 0:
                raise typer.Exit(code)
        options = TestOptions(source, keep_workspace=keep_workspace, narrate=not json_out)
        try:
            result = run(targets, test_action(options), command=command, json_out=json_out)
        except SelfTestFailed as e:
            if not json_out:
                _print_selftest(e.result)
                raise
            raise typer.Exit(1) from e
        if targets.fleet or json_out:
            return
        done = result.outcomes[0].done
        assert done is not None and isinstance(done.value, SelfTestResult)
        _print_selftest(done.value)

    images = typer.Typer(
        name="images",
        help="The images labs need: prepare them (pull, or build offline) and list them.",
        no_args_is_help=True,
    )

    @images.command("prepare")
    def images_prepare_cmd(
        labs: list[str] | None = LABS_ARG,
        host: str | None = opt.HOST,
        offline: bool = OFFLINE,
        force: bool = FORCE,
        mirror: str | None = MIRROR,
        json_out: bool = opt.JSON,
        sandbox: bool = typer.Option(
            False, "--sandbox",
            help="Also the class sandbox image (labup/sandbox:1) `labup class up` needs."),
    ) -> None:
        """Make the images the labs need present: pull them, or with --offline build them."""
        code = prepare(labs, host=host, offline=offline, force=force, mirror=mirror,
                       json_out=json_out, sandbox=sandbox)
        if code:
            raise typer.Exit(code)

    @images.command("list")
    def images_list_cmd(host: str | None = opt.HOST, json_out: bool = opt.JSON) -> None:
        """The images each lab needs, whether they are present, and which labup built offline."""
        from provisioner.engine.connect import connect
        from provisioner.offline.base_images import image_labels
        from provisioner.offline.recipes import OFFLINE_LABEL, recipe_for

        engine = connect(host)
        rows: list[dict[str, Any]] = []
        for lab in catalog_labs():
            from provisioner.offline.recipes import images_for_lab

            for ref in images_for_lab(lab):
                found = next((r for r in rows if r["ref"] == ref), None)
                if found is not None:
                    found["labs"].append(lab.key)
                    continue
                labels = image_labels(engine.sdk_client(), ref)
                rows.append(
                    {
                        "ref": ref,
                        "labs": [lab.key],
                        "present": labels is not None,
                        "offline": bool(labels and labels.get(OFFLINE_LABEL) == "true"),
                        "recipe": recipe_for(ref) is not None,
                    }
                )
        if json_out:
            emit_json({"images": rows})
            return
        shown = [
            [
                r["ref"],
                ("present, built offline" if r["offline"] else "present") if r["present"]
                else "MISSING",
                "yes" if r["recipe"] else "no",
                ", ".join(r["labs"]),
            ]
            for r in rows
        ]
        print(table(shown, ["IMAGE", "STATE", "OFFLINE RECIPE", "USED BY"]))
        if any(not r["present"] for r in rows):
            err("missing images: `labup images prepare` pulls them; add --offline to build them")

    app.add_typer(images)
