"""Which targets a command runs on: ``--host URL`` (or the default engine), or the hosts of an
inventory narrowed by ``--limit`` and ``--only-failed``."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from labspec.errors import UserInputError
from labspec.model import Host, Inventory
from provisioner.targets.target import Target


class TargetOptions(NamedTuple):
    """Where to run, as the command line said it (:meth:`check` refuses what cannot go
    together; :func:`choose_targets` calls it)."""

    host: str | None = None  # --host URL
    inventory: Path | None = None  # -i INVENTORY
    limit: tuple[str, ...] = ()  # --limit (with -i)
    only_failed: bool = False  # --only-failed (with -i)
    parallel: int | None = None  # --parallel: hosts at once (default: the inventory's)

    def check(self) -> None:
        if self.inventory is not None and self.host:
            raise UserInputError("--host and -i/--inventory: give one or the other")
        if self.inventory is None and (self.limit or self.only_failed):
            raise UserInputError("--limit and --only-failed go with -i INVENTORY")
        if self.parallel is not None and self.parallel < 1:
            raise UserInputError(f"--parallel must be at least 1, got {self.parallel}")


class Targets(NamedTuple):
    """The targets of one run: one engine, or the chosen hosts of an inventory."""

    items: tuple[Target, ...]
    inventory: Inventory | None = None
    parallel: int = 10

    @property
    def fleet(self) -> bool:
        """From an inventory: a live line per host, a summary, failures remembered."""
        return self.inventory is not None

    @property
    def first(self) -> Target:
        return self.items[0]


def choose_targets(options: TargetOptions, command: str) -> Targets | None:
    """The targets for ``command``; None when ``--only-failed`` finds nothing to rerun."""
    options.check()
    if options.inventory is None:
        return Targets((Target.from_url(options.host),), parallel=1)
    inventory = load_inventory(options.inventory)
    only = None
    if options.only_failed:
        from provisioner.targets.failed_hosts import load_failed

        recorded, failed = load_failed(inventory.path, command)
        if not failed:
            print(f"nothing to rerun: no host failed in the last run ({recorded})",
                  file=sys.stderr)
            return None
        print(f"rerunning the hosts that failed in the last run ({recorded}): "
              f"{', '.join(failed)}", file=sys.stderr)
        only = failed
    hosts = select_hosts(inventory, options.limit, only=only)
    if not hosts:
        raise UserInputError(f"no host of {inventory.path} is selected", hint="check --limit")
    return Targets(tuple(Target.from_host(h) for h in hosts), inventory,
                   parallel=options.parallel or inventory.parallelism)


def load_inventory(path: str | Path) -> Inventory:
    import labspec

    inv_path = Path(path).expanduser()
    if not inv_path.is_file():
        raise UserInputError(f"inventory {inv_path} does not exist")
    return labspec.load_inventory(inv_path)



def select_hosts(
    inventory: Inventory,
    limit: Sequence[str] | None = None,
    *,
    only: Iterable[str] | None = None,
) -> tuple[Host, ...]:
    """The inventory's hosts, in order, narrowed by ``--limit`` (names, groups, glob patterns or
    ``label=value``, comma-separated or repeated) and by ``only`` (the last run's failures)."""
    chosen = list(inventory.hosts)
    if limit:
        wanted = _expand_limit(inventory, limit)
        chosen = [h for h in chosen if h.name in wanted]
    if only is not None:
        keep = set(only)
        chosen = [h for h in chosen if h.name in keep]
    return tuple(chosen)


def _expand_limit(inventory: Inventory, limit: Sequence[str]) -> set[str]:
    names = [h.name for h in inventory.hosts]
    wanted: set[str] = set()
    for item in limit:
        for word in (w.strip() for w in item.split(",")):
            if not word:
                continue
            if "=" in word:  # a label selector: room=b12
                key, _, value = word.partition("=")
                matches = [
                    h.name for h in inventory.hosts if str(h.labels.get(key.strip(), "")) == value
                ]
                if not matches:
                    raise UserInputError(f"--limit {word!r}: no host has the label {key}={value}")
                wanted.update(matches)
            elif word in inventory.groups:
                wanted.update(inventory.groups[word])
            elif word in names:
                wanted.add(word)
            elif any(ch in word for ch in "*?["):
                matches = fnmatch.filter(names, word)
                if not matches:
                    raise UserInputError(f"--limit {word!r} matches no host in {inventory.path}")
                wanted.update(matches)
            else:
                groups = ", ".join(sorted(inventory.groups)) or "none"
                raise UserInputError(
                    f"--limit {word!r} is neither a host nor a group of {inventory.path}",
                    hint=f"hosts: {', '.join(names)}; groups: {groups}",
                )
    return wanted


