"""Show a lab's instructions: its Markdown file rendered with the lab's params.

Rich Markdown on a terminal; the rendered Markdown text as is otherwise.
"""

from __future__ import annotations

import sys
from typing import TextIO

from labspec.model import Lab


def render_instructions(
    lab: Lab, *, instance: str | None = None, host: dict[str, object] | None = None
) -> str | None:
    """The instructions Markdown with templates rendered, or None when the lab has none."""
    if lab.instructions is None:
        return None
    from labspec import render_text, template_context
    from labspec.loader import read_text

    # the spec's own rules: a located problem for a missing, huge or non-UTF-8 file
    text = read_text(lab.instructions, str(lab.instructions))

    from labspec.redact import redactor

    context = template_context(lab, host=host, instance=instance)
    return redactor(lab)(render_text(text, context, file=str(lab.instructions)))


def print_instructions(
    lab: Lab,
    *,
    instance: str | None = None,
    stream: TextIO | None = None,
    rich: bool | None = None,
) -> bool:
    """Print the rendered instructions; False when the lab has none."""
    text = render_instructions(lab, instance=instance)
    if text is None:
        return False
    out = stream or sys.stdout
    use_rich = out.isatty() if rich is None else rich
    if use_rich:
        from rich.console import Console
        from rich.markdown import Markdown

        Console(file=out).print(Markdown(text))
    else:
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
    return True
