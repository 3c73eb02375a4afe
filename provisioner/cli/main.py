"""The ``labup`` command line: one handler at the top maps LabupError to a short message.

Commands live in ``provisioner/cli_*.py`` modules, each with ``register(app)``; this file
only assembles them, so ``labup --help`` stays fast (docker, paramiko and rich are imported
lazily by the commands that need them).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence

import typer

from labspec.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, LabupError, UserInputError

# Command modules, in the order their commands appear in --help. Each has register(app).
COMMAND_MODULES: tuple[str, ...] = (
    "provisioner.cli.spec",
    "provisioner.cli.lifecycle",
    "provisioner.cli.check",
    "provisioner.cli.learner",
    "provisioner.cli.bundle",
    "provisioner.cli.catalog",
    "provisioner.cli.doctor",
    "provisioner.cli.lint",
    "provisioner.cli.serve",
    "provisioner.cli.classroom",
)

app = typer.Typer(
    name="labup",
    help="Declarative Docker labs: `labup 5` brings lab 5 up, `labup check 5` grades it.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (provisioner/cli/complete.py)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks for errors (also LABUP_DEBUG=1).", is_eager=True
    ),
) -> None:
    if debug:
        os.environ["LABUP_DEBUG"] = "1"


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def _normalise(argv: list[str]) -> list[str]:
    """``labup 5 ...`` means ``labup up 5 ...``."""
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            continue
        if arg.isdigit():
            return [*argv[:i], "up", *argv[i:]]
        break
    return argv


def check_text_args(args: Sequence[str]) -> None:
    """Every argument is text labup can carry (into specs, labels, JSON, file names): bytes
    that are not UTF-8 reach Python as lone surrogates, and are refused here, naming the
    argument (a ``--set`` by its param name only: its value may be a secret), before anything
    reads them."""
    for i, arg in enumerate(args):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            before = args[i - 1] if i else ""
            text = arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if before == "--set" or arg.startswith("--set="):
                shown = "--set " + text.removeprefix("--set=").partition("=")[0]
            else:
                shown = f"{before} {text!r}" if before.startswith("-") else repr(text)
            raise UserInputError(
                f"{shown}: not UTF-8 text",
                hint="labup takes its arguments as UTF-8 (check the terminal's encoding)",
            ) from None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``labup`` console script."""
    args = _normalise(list(sys.argv[1:] if argv is None else argv))
    if "_LABUP_COMPLETE" in os.environ:  # a shell asks for completions: `labup 5 ...` too
        from provisioner.cli.complete import normalise_env

        normalise_env(os.environ)
    debug = "--debug" in args or os.environ.get("LABUP_DEBUG") == "1"
    try:
        check_text_args(args)
        rc = app(args=args, prog_name="labup", standalone_mode=False)
    except LabupError as err:
        if debug:
            traceback.print_exc()
        print(f"labup: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except typer.Abort:
        print("labup: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as ex:  # usage errors: typer vendors click's exceptions
        show = getattr(ex, "show", None)
        if callable(show):
            show()
        else:
            print(f"labup: {ex}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("labup: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rc if isinstance(rc, int) else 0)
