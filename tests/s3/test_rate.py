"""``max_rate``: one bandwidth cap for all the copies of a call, in each direction.

The cap's accuracy is measured in benchmarks/bench_rate.py (bytes counted by a proxy
in front of the server); these tests check that it holds copies back at all, that
the copies of one call share it, and that a bad value is refused before any I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import pytest

from aqueuepipe import copy, copy_many
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, MotoServer, collect, get, payload, put, write_payload

RATE = 4 * MiB  # its bucket holds 1 MiB


async def timed(run: Awaitable[object]) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run
    return loop.time() - started


async def test_upload_capped_takes_at_least_its_bytes_over_the_rate(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "six"
    data = write_payload(source, 6 * MiB, seed=1)
    seconds = await timed(
        copy(
            str(source), f"s3://{bucket}/six", endpoint_url=moto_server.endpoint_url, max_rate=RATE
        )
    )
    assert seconds >= (6 - 1) / 4  # all but the bucket's 1 MiB at 4 MiB/s
    assert await get(s3_client, bucket, "six") == data


async def test_download_capped_takes_at_least_its_bytes_over_the_rate(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    data = payload(6 * MiB, seed=2)
    await put(s3_client, bucket, "six", data)
    target = tmp_path / "six"
    seconds = await timed(
        copy(
            f"s3://{bucket}/six", str(target), endpoint_url=moto_server.endpoint_url, max_rate=RATE
        )
    )
    assert seconds >= (6 - 1) / 4
    assert target.read_bytes() == data


async def test_copies_of_one_call_share_the_cap(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """Three 2 MiB uploads at once: 6 MiB through one 4 MiB/s cap, not three."""
    bucket = await make_bucket()
    pairs = []
    for n in range(3):
        path = tmp_path / f"f{n}"
        write_payload(path, 2 * MiB, seed=n)
        pairs.append((str(path), f"s3://{bucket}/f{n}"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await collect(
        copy_many(pairs, endpoint_url=moto_server.endpoint_url, max_rate=RATE, concurrency=3)
    )
    assert loop.time() - started >= (6 - 1) / 4  # three own caps would take 0.25 s
    assert all(r.ok for r in results), results


@pytest.mark.parametrize("rate", [0, -1, 1.5, "50MB", True])
async def test_a_bad_max_rate_is_refused_before_any_request(rate: object, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="max_rate must be a positive number of bytes per second"):
        await copy(str(source), "s3://no-such-bucket-anywhere/f", max_rate=rate)  # type: ignore[arg-type]
