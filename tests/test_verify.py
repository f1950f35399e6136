"""Tests of aqueuepipe._verify's SourceCheck fed digests computed already (a part's)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aqueuepipe._verify import SourceCheck, SourceMismatch
from aqueuepipe.checksums import composite_checksum
from aqueuepipe.s3._layout import PartLayout

DATA = bytes(range(256)) * 40  # 10,240 bytes


def _crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _full_object_check(data: bytes) -> SourceCheck:
    value = base64.b64encode(_crc32(data)).decode()
    check = SourceCheck.for_object({"ChecksumCRC32": value}, len(data), None)
    assert check is not None
    return check


def _composite_check(data: bytes, sizes: tuple[int, ...]) -> SourceCheck:
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    digests = [_crc32(data[o : o + n]) for o, n in zip(offsets, sizes, strict=True)]
    response = {"ChecksumCRC32": composite_checksum("crc32", digests), "ChecksumType": "COMPOSITE"}
    check = SourceCheck.for_object(response, len(data), PartLayout(sizes))
    assert check is not None
    return check


def _feed(check: SourceCheck, data: bytes, cuts: list[int], *, bytes_too: bool = True) -> None:
    """Feed ``data`` cut at ``cuts`` with each piece's CRC32 as a known digest; with
    ``bytes_too`` False, the bytes given are zeros, so only the digests can prove them."""
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        piece = data[start:end]
        check.update(piece if bytes_too else bytes(len(piece)), {"crc32": _crc32(piece)})


def test_full_object_check_takes_the_parts_crcs_for_their_bytes() -> None:
    check = _full_object_check(DATA)
    _feed(check, DATA, [1000, 5000], bytes_too=False)
    check.verify()  # the CRCs alone proved the bytes: they were not hashed again


def test_full_object_check_fed_a_wrong_part_crc_fails() -> None:
    check = _full_object_check(DATA)
    check.update(DATA[:100], {"crc32": _crc32(b"other")})
    check.update(DATA[100:], {"crc32": _crc32(DATA[100:])})
    with pytest.raises(SourceMismatch):
        check.verify()


def test_check_of_another_algorithm_hashes_the_bytes() -> None:
    check = _full_object_check(DATA)
    check.update(DATA, {"md5": hashlib.md5(b"not these bytes").digest()})
    check.verify()


@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 1 << 30), max_size=6),
)
def test_composite_check_fed_part_crcs_at_any_cuts_matches_the_bytes(
    sizes: list[int], cuts: list[int]
) -> None:
    data = (DATA * 2)[: sum(sizes)]
    check = _composite_check(data, tuple(sizes))
    _feed(check, data, [c % (len(data) + 1) for c in cuts])
    check.verify()


def test_composite_check_takes_a_digest_that_covers_exactly_one_source_part() -> None:
    sizes = (4000, 4000, 2240)
    check = _composite_check(DATA, sizes)
    _feed(check, DATA, [4000, 8000], bytes_too=False)
    check.verify()
