"""Byte sizes as people write them (``30MB``, ``64MiB``, ``1.5GB``) and as we print them.

Decimal units count in powers of 1000 (``KB``, ``MB``, ``GB``, ``TB``), binary
units in powers of 1024 (``KiB``, ``MiB``, ``GiB``, ``TiB``), as the SI and IEC
standards say; ``B`` or no unit means bytes.  Units are matched without regard
to case, except that a bare ``K``/``M``/``G`` is refused: whether it means 1000
or 1024 is exactly the ambiguity the two families of units exist to remove.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_UNIT_NAMES: Final = "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
# Digits may be grouped with underscores as in Python literals: 30_000_000.
_DIGITS: Final = r"\d+(?:_\d+)*"
_SIZE_RE: Final = re.compile(rf"({_DIGITS}(?:\.{_DIGITS})?|\.{_DIGITS})\s*([A-Za-z]*)")


def parse_size(text: str) -> int:
    """Return the number of bytes ``text`` names.

    Accepts a plain number of bytes (``"1048576"``, ``"30_000_000"``) or a number,
    possibly fractional, followed by a unit (``"30MB"``, ``"64 MiB"``, ``"1.5GB"``).

    Raises:
        ValueError: ``text`` is not a size, has an unknown unit, is negative, or
            names a fractional number of bytes (``"1.5B"``).  The message quotes
            ``text`` and lists the units.
    """
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"invalid size {text!r}: expected a number of bytes with an optional unit, "
            f"such as 30MB, 64MiB or 1_000_000"
        )
    number, unit = match.groups()
    multiplier = _UNITS.get(unit.lower())
    if multiplier is None:
        raise ValueError(f"invalid size {text!r}: unknown unit {unit!r}; use {_UNIT_NAMES}")
    try:
        value = Decimal(number.replace("_", "")) * multiplier
    except InvalidOperation:  # pragma: no cover - the regular expression admits only numbers
        raise ValueError(f"invalid size {text!r}") from None
    if value != value.to_integral_value():
        raise ValueError(
            f"invalid size {text!r}: {value.normalize():f} is not a whole number of bytes"
        )
    return int(value)


def format_size(n: float) -> str:
    """``n`` bytes in decimal units with three significant digits: ``"26.2 MB"``."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n /= 1000
        if n < 999.95 or unit == "PB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


_DURATION_UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE: Final = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_WHOLE_RE: Final = re.compile(r"(?:\d+\s*[smhdw]\s*)+")


def parse_duration(text: str) -> datetime.timedelta:
    """Parse an age such as ``90s``, ``30m``, ``12h``, ``1d``, ``2w`` or ``1d12h``.

    Raises:
        ValueError: ``text`` is not one or more whole numbers, each with one of the
            units s, m, h, d, w (the message names what was given).
    """
    compact = text.strip().lower()
    if not _DURATION_WHOLE_RE.fullmatch(compact):
        raise ValueError(
            f"invalid age {text!r}: expected a whole number with a unit of s, m, h, d or w "
            "(such as 12h or 1d)"
        )
    seconds = sum(
        int(p.group(1)) * _DURATION_UNITS[p.group(2)] for p in _DURATION_RE.finditer(compact)
    )
    return datetime.timedelta(seconds=seconds)


def format_duration(age: datetime.timedelta) -> str:
    """``age`` in its two largest units, e.g. ``3d4h``, ``2h5m``, ``40s``."""
    seconds = max(0, int(age.total_seconds()))
    parts: list[str] = []
    for unit in "dhms":
        size = _DURATION_UNITS[unit]
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)
