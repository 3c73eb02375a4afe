"""Durations and sizes as people write them."""

from __future__ import annotations

import math

import pytest

from labspec.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("5s", 5.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        (" 1m 30s ", 90.0),
        ("1.5s", 1.5),
        ("1h1m1s", 3661.0),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_durations_become_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 sec", "ms", "1x", "-1s", "1m-5s"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration: write e\.g\. 500ms"):
        parse_duration(text)


@pytest.mark.parametrize("value", [-1, math.inf, math.nan, True])
def test_bad_duration_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64m", 64 * 1024**2),
        ("1g", 1024**3),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("512k", 512 * 1024),
        ("10", 10),
        ("10b", 10),
        ("64MB", 64 * 1024**2),
        ("64Mi", 64 * 1024**2),
        ("2t", 2 * 1024**4),
        (4096, 4096),
    ],
)
def test_sizes_become_bytes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "64x", "m", "1..5m", "-1m"])
def test_bad_sizes_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a size: write e\.g\. 512k, 64m or 1g"):
        parse_size(text)


def test_durations_format_back_to_short_text() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(0.5) == "500ms"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(0) == "0s"
    assert format_duration(3600) == "1h"
