"""Part size choice: S3's 10,000-part, 5 GiB and 5 TiB limits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aqueuepipe.s3 import (
    DEFAULT_PART_SIZE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    choose_part_size,
)
from aqueuepipe.s3._parts import STREAM_TIER_PARTS, stream_part_size

from .._helpers import MiB

GiB = 1024**3
TiB = 1024**4


def test_limits_are_those_of_s3() -> None:
    assert 5 * MiB == MIN_PART_SIZE
    assert 5 * GiB == MAX_PART_SIZE
    assert MAX_PARTS == 10_000
    assert 5 * TiB == MAX_OBJECT_SIZE
    assert 8 * MiB == DEFAULT_PART_SIZE


@pytest.mark.parametrize("size", [0, 1, DEFAULT_PART_SIZE, 20 * MiB, 1 * GiB])
def test_choose_part_size_small_object_keeps_default(size: int) -> None:
    assert choose_part_size(size) == DEFAULT_PART_SIZE


def test_choose_part_size_unknown_size_keeps_part_size() -> None:
    assert choose_part_size(None) == DEFAULT_PART_SIZE
    assert choose_part_size(None, 64 * MiB) == 64 * MiB


def test_choose_part_size_exactly_max_parts_keeps_part_size() -> None:
    assert choose_part_size(MAX_PARTS * DEFAULT_PART_SIZE) == DEFAULT_PART_SIZE


def test_choose_part_size_one_byte_over_max_parts_grows() -> None:
    size = MAX_PARTS * DEFAULT_PART_SIZE + 1
    part_size = choose_part_size(size)
    assert part_size == 9 * MiB
    assert math.ceil(size / part_size) <= MAX_PARTS


def test_choose_part_size_grows_to_multiple_of_mib() -> None:
    size = 100 * GiB
    part_size = choose_part_size(size)
    assert part_size % MiB == 0
    assert math.ceil(size / part_size) <= MAX_PARTS
    # The smallest such multiple: one MiB less would need too many parts.
    assert math.ceil(size / (part_size - MiB)) > MAX_PARTS


def test_choose_part_size_max_object_fits_in_max_parts() -> None:
    part_size = choose_part_size(MAX_OBJECT_SIZE)
    assert part_size == 525 * MiB
    assert math.ceil(MAX_OBJECT_SIZE / part_size) <= MAX_PARTS
    assert part_size <= MAX_PART_SIZE


def test_choose_part_size_large_enough_part_size_unchanged() -> None:
    assert choose_part_size(MAX_OBJECT_SIZE, MAX_PART_SIZE) == MAX_PART_SIZE


def test_choose_part_size_custom_part_size_not_rounded_when_it_fits() -> None:
    odd = MIN_PART_SIZE + 12345
    assert choose_part_size(50 * MiB, odd) == odd


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE, MAX_PART_SIZE])
def test_choose_part_size_accepts_boundary_part_sizes(part_size: int) -> None:
    assert choose_part_size(MIN_PART_SIZE, part_size) == part_size


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE - 1, 0, -1, MAX_PART_SIZE + 1])
def test_choose_part_size_rejects_part_size_out_of_range(part_size: int) -> None:
    with pytest.raises(ValueError, match=rf"part size {part_size} is out of range"):
        choose_part_size(10 * MiB, part_size)


def test_choose_part_size_rejects_bad_part_size_even_for_unknown_size() -> None:
    with pytest.raises(ValueError, match=r"out of range"):
        choose_part_size(None, MIN_PART_SIZE - 1)


def test_choose_part_size_rejects_negative_object_size() -> None:
    with pytest.raises(ValueError, match=r"object size -1 is negative"):
        choose_part_size(-1)


@pytest.mark.parametrize("asked", [MIN_PART_SIZE, DEFAULT_PART_SIZE, 600 * MiB, MAX_PART_SIZE])
def test_choose_part_size_accepts_exactly_max_object_size(asked: int) -> None:
    """Whatever part size is asked, 5 TiB gets one S3 takes: the one asked if it is
    large enough, else the smallest whole MiB that fits in 10,000 parts (525 MiB)."""
    part_size = choose_part_size(MAX_OBJECT_SIZE, asked)
    assert part_size == max(asked, 525 * MiB)
    assert math.ceil(MAX_OBJECT_SIZE / part_size) <= MAX_PARTS


def test_choose_part_size_rejects_object_over_5_tib() -> None:
    with pytest.raises(ValueError, match=r"exceeds the S3 maximum .* \(5 TiB\)"):
        choose_part_size(MAX_OBJECT_SIZE + 1)


# -- parts of a stream of unknown length -------------------------------------------


def _capacity(part_size: int, most: int) -> int:
    """What the 10,000 parts of a stream hold, tier by tier."""
    return sum(
        stream_part_size(first, part_size, most) * STREAM_TIER_PARTS
        for first in range(1, MAX_PARTS + 1, STREAM_TIER_PARTS)
    )


def test_stream_parts_keep_their_size_for_a_tier_then_double() -> None:
    sizes = [stream_part_size(n, 8 * MiB, 4 * GiB) for n in (1, 1000, 1001, 2000, 2001, 10_000)]
    assert sizes == [8 * MiB, 8 * MiB, 16 * MiB, 16 * MiB, 32 * MiB, 4 * GiB]


def test_stream_parts_never_outgrow_what_the_budget_holds_nor_s3s_largest() -> None:
    assert stream_part_size(10_000, 8 * MiB, 15 * MiB) == 15 * MiB
    assert stream_part_size(10_000, 16 * MiB, 100 * GiB) == MAX_PART_SIZE
    assert stream_part_size(10_000, 8 * MiB, MiB) == 8 * MiB  # never below part_size


def test_a_stream_of_default_parts_can_reach_the_largest_object_when_memory_allows() -> None:
    """At one size, 10,000 parts of 8 MiB stop at 78 GiB; growing, they pass 5 TiB
    once parts may be 4 GiB, and hold about 136 GiB under the default 30 MB limit."""
    assert 80 * GiB > MAX_PARTS * DEFAULT_PART_SIZE
    assert _capacity(DEFAULT_PART_SIZE, 4 * GiB) >= MAX_OBJECT_SIZE
    assert 130 * GiB < _capacity(DEFAULT_PART_SIZE, 30_000_000 // 2) < 140 * GiB


@given(
    part_size=st.integers(MIN_PART_SIZE, 64 * MiB),
    most=st.integers(1, 8 * GiB),
    a=st.integers(1, MAX_PARTS),
    b=st.integers(1, MAX_PARTS),
)
def test_stream_part_sizes_grow_monotonically_within_their_bounds(
    part_size: int, most: int, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    size = stream_part_size(high, part_size, most)
    assert stream_part_size(low, part_size, most) <= size
    assert part_size <= size <= max(part_size, min(most, MAX_PART_SIZE))
