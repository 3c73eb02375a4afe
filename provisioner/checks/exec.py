"""``exec``: a command (argv, never a shell string) inside a lab container.

```yaml
exec: {container: api, command: [python, -c, "import torch"], exit_code: 0}
exec: {container: web, command: [cat, /etc/os-release], stdout_regex: "bookworm"}
```
``stdout`` / ``stderr`` compare for equality, ignoring trailing newlines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.context import CheckContext, as_int, regex, shorten
from provisioner.checks.results import Outcome, failed, passed


def check_exec(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    key = str(spec["container"])
    argv = [str(a) for a in spec["command"]]
    env = {str(k): str(v) for k, v in (spec.get("env") or {}).items()}
    result = ctx.exec(
        key,
        argv,
        user=spec.get("user"),
        workdir=spec.get("workdir"),
        env=env or None,
    )
    shown = shorten(" ".join(argv), 60)
    want_rc = as_int(spec.get("exit_code", 0), "exit_code")
    if result.rc != want_rc:
        tail = shorten(result.stderr or result.stdout, 120)
        return failed(
            f"`{shown}` exited {result.rc}, expected {want_rc}" + (f": {tail}" if tail else "")
        )
    facts = [f"exit {result.rc}"]
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if f"{stream}_regex" in spec:
            pattern = regex(str(spec[f"{stream}_regex"]), f"{stream}_regex")
            if not pattern.search(text):
                return failed(
                    f"`{shown}` {stream} does not match /{pattern.pattern}/: {shorten(text, 100)!r}"
                )
            facts.append(f"{stream} matches")
        if stream in spec:
            want = str(spec[stream]).rstrip("\r\n")
            if text.rstrip("\r\n") != want:
                return failed(f"`{shown}` {stream} is {shorten(text, 100)!r}, expected {want!r}")
            facts.append(f"{stream} equal")
    return passed(f"`{shown}`: " + ", ".join(facts))
