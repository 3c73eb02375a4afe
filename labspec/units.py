"""Durations and sizes as people write them: ``"1m30s"`` -> 90.0 seconds, ``"64m"`` -> bytes.

The JSON Schema already restricts their shape; these functions still check everything and raise
``ValueError`` with a readable message, so they are safe on unvalidated input.
"""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)(ms|s|m|h)\s*")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number or a string such as ``500ms``, ``5s``, ``1m30s``, ``2h``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration: give a number of seconds >= 0")
        return float(value)
    text = value.strip()
    pos = 0
    total = 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration: write e.g. 500ms, 5s, 1m30s or 2h")
    return total


def parse_size(value: str | int | float) -> int:
    """Bytes from a number or a string such as ``512k``, ``64m``, ``1g``, ``1.5GiB`` (base 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a size: give a number of bytes >= 0")
        return int(value)
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size: write e.g. 512k, 64m or 1g")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``0.5`` -> ``500ms``, ``90`` -> ``1m30s``."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts) or "0s"
