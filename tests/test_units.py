"""Byte sizes as written on the command line, and as printed."""

from __future__ import annotations

import datetime

import pytest

from aqueuepipe._units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1024", 1024),
        ("30_000_000", 30_000_000),
        ("30MB", 30_000_000),
        ("30 MB", 30_000_000),
        ("30mb", 30_000_000),
        ("64MiB", 64 * 1024**2),
        ("64mib", 64 * 1024**2),
        ("1.5GB", 1_500_000_000),
        ("0.5KiB", 512),
        (".5KB", 500),
        ("8KB", 8000),
        ("8KiB", 8192),
        ("2GiB", 2 * 1024**3),
        ("1TB", 10**12),
        ("1TiB", 1024**4),
        ("12B", 12),
        ("  7MB  ", 7_000_000),
        ("1_024KiB", 1024 * 1024),
    ],
)
def test_parse_size_accepts_decimal_binary_and_plain_bytes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "MB",
        "abc",
        "-5MB",
        "5 M B",
        "1e6",
        "30_",
        "_30",
        "1__0",
        "30MBs",
        "1.2.3MB",
        "0x10",
        "5Mb/s",
    ],
)
def test_parse_size_rejects_junk_with_a_message_quoting_it(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize("text", ["30XB", "5M", "5K", "5G", "5Mbit"])
def test_parse_size_rejects_unknown_and_ambiguous_units(text: str) -> None:
    with pytest.raises(ValueError, match="unknown unit") as info:
        parse_size(text)
    assert "MiB" in str(info.value) and "MB" in str(info.value)


@pytest.mark.parametrize("text", ["1.5B", "0.0001KB", "1.0001KB"])
def test_parse_size_rejects_fractional_bytes(text: str) -> None:
    with pytest.raises(ValueError, match="not a whole number of bytes"):
        parse_size(text)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (30_000_000, "30.0 MB"),
        (999_960_000, "1.0 GB"),
        (1.5e12, "1.5 TB"),
        (3e18, "3000.0 PB"),
    ],
)
def test_format_size_uses_decimal_units(n: float, expected: str) -> None:
    assert format_size(n) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("12h", 43200),
        ("1d", 86400),
        ("2w", 1209600),
        ("1d 12h", 129600),
    ],
)
def test_parse_duration_accepts_whole_numbers_with_units(text: str, seconds: int) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "d", "1x", "-1d", "1.5h", "d1"])
def test_parse_duration_rejects_junk_with_a_message_quoting_it(text: str) -> None:
    with pytest.raises(ValueError, match=f"invalid age {text!r}"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (40, "40s"), (3900, "1h5m"), (273600, "3d4h"), (86400, "1d")]
)
def test_format_duration_shows_the_two_largest_units(seconds: int, shown: str) -> None:
    assert format_duration(datetime.timedelta(seconds=seconds)) == shown
