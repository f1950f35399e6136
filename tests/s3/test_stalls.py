"""Stalls are measured in bytes: a source that moves any byte within
``stall_timeout`` is not stalled, however slowly it fills a part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aqueuepipe import RetryPolicy, TransferError, copy
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, MotoServer, get, key_exists, open_uploads

STALL = 0.5
POLICY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, stall_timeout=STALL)


async def trickle(pieces: int, gap: float, size: int = 1024) -> AsyncIterator[bytes]:
    """A producer slower than any part: ``size`` bytes every ``gap`` seconds (the
    waits are the scenario, a slow producer such as ``tail -f``, not synchronisation)."""
    for i in range(pieces):
        if i:
            await asyncio.sleep(gap)
        yield bytes([i % 256]) * size


async def test_slow_steady_stream_is_not_stalled(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    # 12 pieces 0.1 s apart: 1.1 s in all, more than twice the stall timeout,
    # and never a whole part (nor a first read) filled.
    result = await copy(
        trickle(12, STALL / 5),
        f"s3://{bucket}/log",
        endpoint_url=moto_server.endpoint_url,
        retries=POLICY,
    )
    expected = b"".join(bytes([i]) * 1024 for i in range(12))
    assert result.ok and result.size == len(expected)
    assert await get(s3_client, bucket, "log") == expected


async def test_slow_steady_multipart_stream_is_not_stalled(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """A stream that crosses a part while trickling: its first part fills slowly."""
    bucket = await make_bucket()

    async def source() -> AsyncIterator[bytes]:
        yield b"a" * (5 * MiB)
        async for piece in trickle(12, STALL / 5):
            yield piece

    result = await copy(
        source(),
        f"s3://{bucket}/k",
        endpoint_url=moto_server.endpoint_url,
        retries=POLICY,
        part_size=5 * MiB,
    )
    assert result.ok and result.parts == 2


async def test_stream_that_stops_moving_is_stalled(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()

    async def stops() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        await asyncio.Event().wait()  # never another byte
        yield b""  # pragma: no cover

    with pytest.raises(TransferError, match="stalled"):
        await copy(
            stops(), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url, retries=POLICY
        )
    assert not await key_exists(s3_client, bucket, "k")
    assert await open_uploads(s3_client, bucket) == []
