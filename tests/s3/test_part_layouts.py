"""A source's part layout is read as the object has it, never guessed from part 1.

S3 lets the parts of a multipart upload differ in size (every part but the last of
at least 5 MiB).  The source check cuts the bytes read at the object's own part
boundaries (its MD5-of-part-MD5s ETag, its COMPOSITE checksum), so a valid object
with parts of 6, 5 and 2 MiB is copied and verified like any other, a corrupted
read of it is still caught, and a server that does not report the layout gives a
copy without source evidence, never a false corruption error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import pytest

from aqueuepipe import (
    ChecksumMismatchError,
    TransferError,
    TransferResult,
    copy,
    copy_many,
)
from aqueuepipe._verify import SourceCheck, SourceMismatch
from aqueuepipe.s3 import S3Client, parse_s3_url
from aqueuepipe.s3._layout import LAYOUT_CONCURRENCY, PartLayout, part_layout

from .._helpers import FAST, MakeBucket, MiB, get, key_exists, open_uploads, payload, upload_parts
from ..faultproxy import GETS, FaultProxy, Match

PART_HEADS = Match(operation="HeadObject", query="partNumber")

Algorithm = Literal["SHA256", "CRC32"] | None

UNEQUAL = (6 * MiB, 5 * MiB, 2 * MiB)  # part 1 allows 6+6+1: it does not tell
GROWING = (5 * MiB, 7 * MiB, 7 * MiB)  # part 1 allows no uniform layout of 19 MiB
UNIFORM = (5 * MiB, 5 * MiB, 1 * MiB + 3)


async def write_parts(
    client: S3Client, bucket: str, key: str, sizes: tuple[int, ...], algorithm: Algorithm = None
) -> bytes:
    """A multipart object of parts of ``sizes``, uploaded as boto3 would; its bytes."""
    data = payload(sum(sizes), seed=len(sizes) + sizes[1])
    ends = list(itertools.accumulate(sizes))
    parts = [data[end - size : end] for end, size in zip(ends, sizes, strict=True)]
    await upload_parts(client, bucket, key, parts, algorithm)
    return data


def _evidence(algorithm: Algorithm) -> str:
    return "source:etag-md5" if algorithm is None else f"source:{algorithm.lower()}"


@dataclass
class Source:
    """A source object and where the tests copy it."""

    url: str
    data: bytes
    dst_bucket: str
    local: Path


MakeSource = Callable[..., Awaitable[Source]]


@pytest.fixture
def make_source(s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path) -> MakeSource:
    async def make(sizes: tuple[int, ...], algorithm: Algorithm = None) -> Source:
        src_bucket, dst_bucket = await make_bucket(), await make_bucket()
        data = await write_parts(s3_client, src_bucket, "obj", sizes, algorithm)
        local = tmp_path / "out" / "copy.bin"
        local.parent.mkdir(exist_ok=True)
        return Source(f"s3://{src_bucket}/obj", data, dst_bucket, local)

    return make


async def _copy(
    proxy: FaultProxy, source: Source, direction: str, **options: Any
) -> TransferResult:
    dst = f"s3://{source.dst_bucket}/copy" if direction == "s3-to-s3" else str(source.local)
    if direction == "s3-to-s3":  # the layout of the bytes a client reads and writes
        options.setdefault("server_side", False)
    return await copy(
        source.url,
        dst,
        endpoint_url=proxy.endpoint_url,
        retries=FAST,
        **options,
    )


async def _holds(client: S3Client, source: Source, direction: str) -> bool:
    if direction == "s3-to-s3":
        return await get(client, source.dst_bucket, "copy") == source.data
    return source.local.read_bytes() == source.data


ALGORITHMS = [None, "SHA256", "CRC32"]
DIRECTIONS = ["s3-to-s3", "s3-to-file"]


# -- unequal parts are verified ----------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=str)
@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_copy_of_unequal_parts_is_verified_against_the_source(
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_source: MakeSource,
    direction: str,
    algorithm: Algorithm,
) -> None:
    source = await make_source(UNEQUAL, algorithm)
    result = await _copy(fault_proxy, source, direction)
    assert result.ok
    assert await _holds(s3_client, source, direction)
    assert _evidence(algorithm) in result.verified


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_copy_of_parts_part_one_cannot_describe_reads_once(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource, direction: str
) -> None:
    source = await make_source(GROWING)
    result = await _copy(fault_proxy, source, direction)
    assert await _holds(s3_client, source, direction)
    assert "source:etag-md5" in result.verified
    assert len(fault_proxy.exchanges(GETS)) == 1
    asked = sorted(e.params["partNumber"] for e in fault_proxy.exchanges(PART_HEADS))
    assert asked == ["1", "2", "3"]


async def test_copy_of_uniform_parts_asks_one_layout_head(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource
) -> None:
    source = await make_source(UNIFORM)
    result = await _copy(fault_proxy, source, "s3-to-s3")
    assert await _holds(s3_client, source, "s3-to-s3")
    assert "source:etag-md5" in result.verified
    assert len(fault_proxy.exchanges(PART_HEADS)) == 1
    assert len(fault_proxy.exchanges(GETS)) == 1


@pytest.mark.parametrize("algorithm", [None, "CRC32"], ids=str)
@pytest.mark.parametrize(
    "sizes", [UNEQUAL, GROWING, UNIFORM], ids=["unequal", "growing", "uniform"]
)
async def test_streamed_copy_keeps_the_source_layout_and_its_etag(
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_source: MakeSource,
    sizes: tuple[int, ...],
    algorithm: Algorithm,
) -> None:
    """Issue 20: a copy cut in its own ``part_size`` gets an ETag of its own, so a
    sync re-copies it every run; in the source's layout it gets the source's."""
    source = await make_source(sizes, algorithm)
    result = await _copy(fault_proxy, source, "s3-to-s3", part_size=8 * MiB)
    src = parse_s3_url(source.url)
    stored = await s3_client.head_object(Bucket=src.bucket, Key=src.key)
    copied = await s3_client.head_object(Bucket=source.dst_bucket, Key="copy")
    assert copied["ETag"] == stored["ETag"] == result.etag
    assert result.parts == len(sizes) and await _holds(s3_client, source, "s3-to-s3")


async def test_streamed_copy_of_parts_larger_than_the_budget_is_cut_to_fit(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource
) -> None:
    source = await make_source(GROWING)  # 7 MiB parts; the budget holds 6 MiB
    result = await _copy(fault_proxy, source, "s3-to-s3", limit=6 * MiB, part_size=5 * MiB)
    assert result.ok and result.parts == 4  # 19 MiB in parts of 5 MiB
    assert "source:etag-md5" in result.verified
    assert await _holds(s3_client, source, "s3-to-s3")


async def test_stream_of_unequal_parts_with_verify_required_is_verified(
    fault_proxy: FaultProxy, make_source: MakeSource
) -> None:
    source = await make_source(UNEQUAL, "SHA256")
    received: list[bytes] = []

    class Writer:
        async def write(self, data: bytes) -> None:
            received.append(data)

    result = await copy(
        source.url, Writer(), endpoint_url=fault_proxy.endpoint_url, verify="required"
    )
    assert b"".join(received) == source.data
    assert "source:sha256" in result.verified
    assert len(fault_proxy.exchanges(GETS)) == 1


# -- bad reads are still caught ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [None, "SHA256"], ids=str)
@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_flipped_byte_in_every_read_of_unequal_parts_fails_on_the_source_side(
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_source: MakeSource,
    direction: str,
    algorithm: Algorithm,
) -> None:
    source = await make_source(UNEQUAL, algorithm)
    fault_proxy.flip(GETS, offset=7 * MiB, times=None)
    with pytest.raises(ChecksumMismatchError) as caught:
        await _copy(fault_proxy, source, direction)
    assert caught.value.side == "source"
    # The first read, checked in the layout part 1 allows, does not count as bad.
    assert len(fault_proxy.exchanges(GETS)) == FAST.attempts + 1
    assert await open_uploads(s3_client, source.dst_bucket) == []
    assert not await key_exists(s3_client, source.dst_bucket, "copy")
    assert not source.local.exists()


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_flipped_byte_in_one_read_of_unequal_parts_is_read_again(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource, direction: str
) -> None:
    source = await make_source(GROWING)
    fault_proxy.flip(GETS, offset=12 * MiB + 5, times=1)
    result = await _copy(fault_proxy, source, direction)
    assert await _holds(s3_client, source, direction)
    assert "source:etag-md5" in result.verified
    assert len(fault_proxy.exchanges(GETS)) == 2


# -- layouts that cannot be compared ----------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_copy_from_server_without_part_numbers_is_ok_without_source_evidence(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource, direction: str
) -> None:
    source = await make_source(UNEQUAL)
    fault_proxy.fail(PART_HEADS, status=501, s3_code="NotImplemented", times=None)
    result = await _copy(fault_proxy, source, direction)
    assert result.ok
    assert await _holds(s3_client, source, direction)
    assert not any(label.startswith("source:") for label in result.verified)
    assert len(fault_proxy.exchanges(GETS)) == 1


async def test_copy_from_server_reporting_only_part_one_is_ok_without_source_evidence(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource
) -> None:
    source = await make_source(UNEQUAL)
    fault_proxy.fail(
        Match(operation="HeadObject", query="partNumber=[^1]"),
        status=501,
        s3_code="NotImplemented",
        times=None,
    )
    result = await _copy(fault_proxy, source, "s3-to-s3")
    assert result.ok
    assert await _holds(s3_client, source, "s3-to-s3")
    assert not any(label.startswith("source:") for label in result.verified)


async def test_copy_without_reported_layout_and_verify_required_fails_for_lack_of_evidence(
    fault_proxy: FaultProxy, s3_client: S3Client, make_source: MakeSource
) -> None:
    source = await make_source(UNEQUAL)
    fault_proxy.fail(PART_HEADS, status=501, s3_code="NotImplemented", times=None)
    with pytest.raises(TransferError) as caught:
        await _copy(fault_proxy, source, "s3-to-s3", verify="required")
    assert not isinstance(caught.value, ChecksumMismatchError)
    assert "no evidence" in str(caught.value)
    assert len(fault_proxy.exchanges(GETS)) == 1
    assert not await key_exists(s3_client, source.dst_bucket, "copy")


# -- skip_existing ------------------------------------------------------------------------


async def test_skip_existing_download_of_unequal_parts_skips_the_same_file(
    fault_proxy: FaultProxy, make_source: MakeSource
) -> None:
    source = await make_source(UNEQUAL)
    source.local.write_bytes(source.data)
    pairs = [(source.url, str(source.local))]
    async with contextlib.aclosing(
        copy_many(pairs, endpoint_url=fault_proxy.endpoint_url, skip_existing=True)
    ) as results:
        (result,) = [r async for r in results]
    assert result.ok
    assert result.skipped
    assert fault_proxy.exchanges(GETS) == []


# -- the check itself ----------------------------------------------------------------------


def _etag_of(parts: list[bytes]) -> str:
    inner = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(inner).hexdigest()}-{len(parts)}"'


def test_source_check_cuts_the_etag_at_unequal_boundaries() -> None:
    parts = [b"a" * 6, b"b" * 5, b"c" * 2]
    check = SourceCheck.for_object({"ETag": _etag_of(parts)}, 13, PartLayout((6, 5, 2)))
    assert check is not None
    for byte in b"".join(parts):  # one byte at a time: any split
        check.update(bytes([byte]))
    check.verify()


def test_source_check_mismatch_in_an_inferred_layout_is_unconfirmed() -> None:
    parts = [b"a" * 6, b"b" * 5, b"c" * 2]
    inferred = PartLayout((6, 6, 1), confirmed=False)
    check = SourceCheck.for_object({"ETag": _etag_of(parts)}, 13, inferred)
    assert check is not None
    check.update(b"".join(parts))
    with pytest.raises(SourceMismatch) as caught:
        check.verify()
    assert not caught.value.layout_confirmed


@pytest.mark.parametrize(
    "layout", [PartLayout((6, 5)), PartLayout((6, 5, 3)), None], ids=["count", "size", "none"]
)
def test_source_check_without_a_layout_adding_up_has_no_part_evidence(
    layout: PartLayout | None,
) -> None:
    parts = [b"a" * 6, b"b" * 5, b"c" * 2]
    assert SourceCheck.for_object({"ETag": _etag_of(parts)}, 13, layout) is None


class _PartHeads:
    """A client whose HeadObject of a part reports ``sizes``, counting requests in flight."""

    def __init__(self, sizes: tuple[int, ...], bound: int) -> None:
        self.sizes = sizes
        self.in_flight = 0
        self.most = 0
        self.full = asyncio.Event()  # set once ``bound`` requests are in flight
        self.bound = bound

    async def head_object(self, *, Bucket: str, Key: str, PartNumber: int) -> dict[str, Any]:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if PartNumber > 1:
            if self.in_flight == self.bound:
                self.full.set()
            await self.full.wait()
        self.in_flight -= 1
        size = self.sizes[PartNumber - 1]
        return {"ContentLength": size, "PartsCount": len(self.sizes), "ETag": '"e-20"'}


async def test_part_layout_asks_every_part_with_bounded_concurrency() -> None:
    sizes = (5 * MiB, *[6 * MiB] * 18, 1)
    client = _PartHeads(sizes, bound=LAYOUT_CONCURRENCY)
    async with asyncio.timeout(10):  # a bound below LAYOUT_CONCURRENCY never fills it
        layout = await part_layout(
            cast(S3Client, client), parse_s3_url("s3://bucket/k"), sum(sizes), '"e-20"'
        )
    assert layout == PartLayout(sizes)
    assert client.most == LAYOUT_CONCURRENCY


async def test_part_layout_of_sizes_not_adding_up_is_none() -> None:
    sizes = (5 * MiB, 7 * MiB, 7 * MiB)
    client = _PartHeads(sizes, bound=2)
    url = parse_s3_url("s3://bucket/k")
    assert await part_layout(cast(S3Client, client), url, sum(sizes) + 1) is None
