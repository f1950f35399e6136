"""The listing merge sync decides from (:mod:`aqueuepipe._listing`), without a server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aqueuepipe._listing import Listed, local_listing, merge, same_from_listings


async def listed(*keys: str) -> AsyncIterator[Listed]:
    for key in keys:
        yield Listed(key, 1, 0.0)


async def test_merge_pairs_keys_in_s3_key_order() -> None:
    merged = [
        (key, src is not None, dst is not None)
        async for key, src, dst in merge(listed("a.b", "a/b", "c"), listed("a/b", "b"))
    ]
    assert merged == [
        ("a.b", True, False),
        ("a/b", True, True),
        ("b", False, True),
        ("c", True, False),
    ]


async def test_merge_refuses_a_listing_out_of_order() -> None:
    with pytest.raises(ValueError, match="out of S3's key order"):
        async for _ in merge(listed("b", "a"), listed()):
            pass


async def test_local_listing_walks_in_s3_key_order(tmp_path: Path) -> None:
    """``a/b`` sorts after ``a.b`` in S3 (``/`` is 0x2F, ``.`` 0x2E): a directory's
    files come where their keys do, not where the directory's name does."""
    for name in ("a.b", "a/b", "a-c", "a0"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [entry.key async for entry in local_listing(tmp_path)] == ["a-c", "a.b", "a/b", "a0"]


def test_a_file_uploaded_within_the_second_it_was_written_is_the_same() -> None:
    """LastModified has whole seconds; a file's time has a fraction."""
    written = Listed("k", 5, 1_700_000_012.7)
    uploaded = Listed("k", 5, 1_700_000_012.0)
    assert same_from_listings(written, uploaded) is True
    assert same_from_listings(Listed("k", 5, 1_700_000_013.2), uploaded) is False
