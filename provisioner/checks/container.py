"""``container``: state, health, exit code, restart count and user of a lab container.

```yaml
container: {container: web, state: running, health: healthy, max_restarts: 0, non_root: true}
```
With no assertion the container must be running. The user is read from the container's
configuration (``Config.User``, which includes the image's ``USER``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.checks.context import CheckContext, as_int
from provisioner.checks.results import Outcome, failed, passed

ROOT_USERS = ("", "0", "root")


def _user_part(user: str) -> str:
    return user.split(":", 1)[0].strip()


def check_container(ctx: CheckContext, spec: Mapping[str, Any]) -> Outcome:
    key = str(spec["container"])
    name = ctx.name(key)
    data = ctx.lookup(key)  # the lab's own container, or CheckBlocked saying it was replaced
    want_state = spec.get("state")
    if want_state is None and "exit_code" in spec:
        want_state = "exited"
    asserts_other = any(
        k in spec for k in ("health", "max_restarts", "min_restarts", "user", "non_root")
    )
    if want_state is None and not asserts_other:
        want_state = "running"
    if data is None:
        if want_state == "absent":
            return passed(f"container {name} does not exist, as expected")
        return failed(f"container {name} does not exist")
    if want_state == "absent":
        return failed(f"container {name} exists, expected it to be absent")

    state: dict[str, Any] = data.get("State") or {}
    config: dict[str, Any] = data.get("Config") or {}
    facts: list[str] = []
    status = str(state.get("Status", "?"))
    if want_state is not None:
        if status != want_state:
            extra = f" (exit code {state.get('ExitCode')})" if status == "exited" else ""
            return failed(f"{name} is {status}{extra}, expected {want_state}")
        facts.append(status)
    if "exit_code" in spec:
        want = as_int(spec["exit_code"], "exit_code")
        code = state.get("ExitCode")
        if code != want:
            return failed(f"{name} exited with code {code}, expected {want}")
        facts.append(f"exit code {code}")
    if "health" in spec:
        health = (state.get("Health") or {}).get("Status", "none")
        if health != spec["health"]:
            why = ""
            log = (state.get("Health") or {}).get("Log") or []
            if log and health != "healthy":
                why = f"; last probe: {str(log[-1].get('Output', '')).strip()[:120]!r}"
            if health == "none":
                why = "; it has no healthcheck"
            return failed(f"{name} health is {health}, expected {spec['health']}{why}")
        facts.append(f"health {health}")
    restarts = int(data.get("RestartCount") or 0)
    if "max_restarts" in spec and restarts > as_int(spec["max_restarts"], "max_restarts"):
        return failed(f"{name} restarted {restarts} times, at most {spec['max_restarts']} allowed")
    if "min_restarts" in spec and restarts < as_int(spec["min_restarts"], "min_restarts"):
        return failed(
            f"{name} restarted {restarts} times, expected at least {spec['min_restarts']}"
        )
    if "max_restarts" in spec or "min_restarts" in spec:
        facts.append(f"{restarts} restarts")
    user = str(config.get("User") or "")
    shown = user or "root (no USER)"
    if "user" in spec:
        want_user = str(spec["user"])
        if _user_part(user) != _user_part(want_user) and user != want_user:
            return failed(f"{name} runs as {shown}, expected {want_user}")
        facts.append(f"user {user}")
    if spec.get("non_root") is True and _user_part(user) in ROOT_USERS:
        return failed(f"{name} runs as {shown}")
    if spec.get("non_root") is True:
        facts.append(f"runs as {user}")
    return passed(f"{name}: " + ", ".join(facts))
