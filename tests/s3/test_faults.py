"""Copies that survive faults, injected by a proxy in front of the moto server process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import (
    ByteBudget,
    ObjectChangedError,
    RetryPolicy,
    TransferError,
    copy,
    copy_many,
)
from aqueuepipe.s3 import S3Client

from .._helpers import (
    MakeBucket,
    MiB,
    collect,
    copy_streamed,
    get,
    key_exists,
    open_uploads,
    payload,
    put,
)
from .._memory import SLACK, measure_growth
from ..faultproxy import Exchange, FaultProxy, Match

# Short waits so faults cost little time; enough attempts for ~5% faults.
FAST = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.2, read_timeout=2, stall_timeout=60)


async def test_broken_download_body_resumes_from_the_next_byte(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    data = payload(9 * MiB, seed=1)
    bucket = await make_bucket(objects={"obj": data})
    fault_proxy.reset(Match(operation="GetObject"), after_bytes=3 * MiB + 5, times=1)
    target = tmp_path / "obj"
    result = await copy(
        f"s3://{bucket}/obj",
        str(target),
        endpoint_url=fault_proxy.endpoint_url,
        retries=FAST,
        checksums=("sha256",),
    )
    assert target.read_bytes() == data
    assert result.checksums["sha256"] == hashlib.sha256(data).hexdigest()
    assert result.retries >= 1
    gets = fault_proxy.exchanges("GetObject")
    assert len(gets) == 2
    resumed = gets[1]
    assert resumed.header("Range") == f"bytes={3 * MiB + 5}-"
    assert (
        resumed.header("If-Match")
        == (await s3_client.head_object(Bucket=bucket, Key="obj"))["ETag"]
    )


async def test_broken_source_body_resumes_in_a_multipart_copy(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(21 * MiB, seed=2)
    src, dst = await make_bucket(objects={"obj": data}), await make_bucket()
    fault_proxy.truncate(Match(operation="GetObject"), after_bytes=10 * MiB, times=1)
    result = await copy(
        f"s3://{src}/obj",
        f"s3://{dst}/obj",
        endpoint_url=fault_proxy.endpoint_url,
        retries=FAST,
        checksums=("md5",),
    )
    assert result.parts == 3 and result.retries >= 1
    assert result.checksums["md5"] == hashlib.md5(data).hexdigest()
    assert await get(s3_client, dst, "obj") == data


async def test_upload_part_retry_resends_the_part(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(17 * MiB, seed=3)
    src, dst = await make_bucket(objects={"obj": data}), await make_bucket()
    fault_proxy.fail("UploadPart", status=503, times=2)
    fault_proxy.fail("UploadPart", status=500, times=1, skip=1)
    result = await copy_streamed(f"s3://{src}/obj", f"s3://{dst}/obj", fault_proxy.endpoint_url)
    assert result.retries >= 3
    assert await get(s3_client, dst, "obj") == data


async def test_source_changed_during_copy_raises_object_changed(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket, boto3_client: Any
) -> None:
    """The body breaks; before the resume reaches the server, the source is overwritten."""
    src, dst = await make_bucket(objects={"obj": payload(12 * MiB, seed=4)}), await make_bucket()

    def overwrite_before_resume(exchange: Exchange) -> bool:
        if exchange.header("Range"):
            boto3_client.put_object(Bucket=src, Key="obj", Body=b"a new version")
        return False  # no fault: the resume goes through, and meets a new ETag

    fault_proxy.reset(
        Match(operation="GetObject", where=lambda e: e.header("Range") is None),
        after_bytes=2 * MiB,
    )
    fault_proxy.reset(Match(operation="GetObject", where=overwrite_before_resume), times=None)
    with pytest.raises(ObjectChangedError) as caught:
        await copy_streamed(f"s3://{src}/obj", f"s3://{dst}/obj", fault_proxy.endpoint_url)
    assert caught.value.side == "source"
    assert await open_uploads(s3_client, dst) == []
    assert not await key_exists(s3_client, dst, "obj")


async def test_fault_that_never_clears_fails_and_leaves_nothing(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await put(s3_client, dst, "kept", b"previous content")
    await put(s3_client, src, "big", payload(12 * MiB, seed=5))
    await put(s3_client, src, "small", b"small object")
    await put(s3_client, src, "download", payload(3 * MiB, seed=6))
    fault_proxy.fail("UploadPart", status=500, times=None)
    fault_proxy.fail("PutObject", status=503, times=None)
    # Only the download's body breaks, whenever its GET comes.
    fault_proxy.reset(Match(operation="GetObject", key="download"), after_bytes=100, times=None)
    results = await collect(
        copy_many(
            [
                (f"s3://{src}/big", f"s3://{dst}/big"),
                (f"s3://{src}/small", f"s3://{dst}/kept"),
                (f"s3://{src}/download", str(tmp_path / "download.bin")),
            ],
            endpoint_url=fault_proxy.endpoint_url,
            retries=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05),
            server_side=False,  # the faults are on the uploads a client sends
        )
    )
    assert len(results) == 3
    assert all(isinstance(r.error, TransferError) for r in results), results
    assert await open_uploads(s3_client, dst) == []
    assert not await key_exists(s3_client, dst, "big")
    assert await get(s3_client, dst, "kept") == b"previous content"
    assert list(tmp_path.iterdir()) == []


async def test_read_timeout_on_a_silent_server_is_an_error_not_a_hang(
    fault_proxy: FaultProxy, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"obj": b"x" * 1000})
    fault_proxy.stall("GetObject", seconds=5, times=None)
    with pytest.raises(TransferError):
        await copy(
            f"s3://{bucket}/obj",
            str(tmp_path / "obj"),
            endpoint_url=fault_proxy.endpoint_url,
            retries=RetryPolicy(attempts=2, read_timeout=0.2, base_delay=0.01),
        )
    assert list(tmp_path.iterdir()) == []


async def test_stall_timeout_fails_a_copy_that_stops_moving(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """Each read is within the read timeout, but the copy as a whole makes no progress."""
    src, dst = await make_bucket(objects={"obj": payload(6 * MiB, seed=6)}), await make_bucket()
    fault_proxy.delay_body("GetObject", seconds=30, after_bytes=1 * MiB, times=None)
    with pytest.raises(TransferError, match="no progress"):
        await copy(
            f"s3://{src}/obj",
            f"s3://{dst}/obj",
            endpoint_url=fault_proxy.endpoint_url,
            retries=RetryPolicy(read_timeout=20, stall_timeout=0.5),
            server_side=False,
        )
    assert await open_uploads(s3_client, dst) == []


@pytest.mark.slow
async def test_100mb_copy_with_random_faults_is_verified(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(100 * MiB, seed=7)
    src, dst = await make_bucket(objects={"big": data}), await make_bucket()
    digest = hashlib.sha256(data).hexdigest()
    del data
    # A 100 MB copy is only ~16 requests: at 15% a few of them fail, in every way.
    faults = fault_proxy.random_faults(
        0.15, seed=7, kinds=("reset", "status", "truncate", "stall"), stall_seconds=0.5
    )
    result = await copy(
        f"s3://{src}/big",
        f"s3://{dst}/big",
        endpoint_url=fault_proxy.endpoint_url,
        retries=RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.2, read_timeout=0.3),
        checksums=("sha256",),
        limit=30_000_000,
    )
    assert result.checksums["sha256"] == digest
    assert faults.applied > 0 and result.retries > 0
    response = await s3_client.get_object(Bucket=dst, Key="big")
    async with response["Body"] as body:
        assert hashlib.sha256(await body.read()).hexdigest() == digest


@pytest.mark.slow
async def test_batch_of_40_mixed_objects_with_random_faults_is_verified(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    rng = random.Random(40)
    objects = {
        f"o{i:02}": payload(rng.choice([1_000, 300_000, 3 * MiB, 9 * MiB]), seed=100 + i)
        for i in range(40)
    }
    await asyncio.gather(*(put(s3_client, src, k, v) for k, v in objects.items()))
    faults = fault_proxy.random_faults(0.05, seed=40, kinds=("reset", "status", "truncate"))
    budget = ByteBudget(30_000_000)
    results = await collect(
        copy_many(
            [(f"s3://{src}/{k}", f"s3://{dst}/{k}") for k in objects],
            endpoint_url=fault_proxy.endpoint_url,
            retries=FAST,
            budget=budget,
            checksums=("md5",),
        )
    )
    assert len(results) == 40 and all(r.ok for r in results), [r.error for r in results]
    for r in results:
        key = r.dst.rsplit("/", 1)[1]
        assert r.checksums["md5"] == hashlib.md5(objects[key]).hexdigest()
    assert faults.applied > 0 and sum(r.retries for r in results) > 0
    assert budget.used == 0
    assert await open_uploads(s3_client, dst) == []


_LOAD = """
import json
from aqueuepipe import RetryPolicy, copy_many

FAST = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.2, read_timeout=2, stall_timeout=60)

async def run(pairs):
    results = [r async for r in copy_many(
        pairs, endpoint_url=sys.argv[1], retries=FAST, limit=30_000_000,
        checksums=("md5",), concurrency=16,
    )]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return {r.dst: r.checksums["md5"] for r in results}

async def warm_up():
    await run([(f"s3://{sys.argv[2]}/s/000", f"s3://{sys.argv[3]}/warm")])

async def workload():
    return await run([tuple(pair) for pair in json.loads(sys.argv[4])])
"""


@pytest.mark.slow
async def test_load_500_small_and_4_large_with_faults(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """504 copies with 3% faults under a 30 MB limit, 16 at a time: retries that
    hold a part for re-sending still keep the peak RSS growth of a fresh process
    (tests/_memory.py) within the limit plus the slack."""
    src, dst = await make_bucket(), await make_bucket()
    small = {f"s/{i:03}": b"%d" % i * (i + 1) for i in range(500)}
    large = payload(100 * MiB, seed=8)
    await asyncio.gather(*(put(s3_client, src, k, v) for k, v in small.items()))
    await put(s3_client, src, "large", large)
    large_md5 = hashlib.md5(large).hexdigest()
    del large
    faults = fault_proxy.random_faults(0.03, seed=500, kinds=("reset", "status", "truncate"))
    pairs = [(f"s3://{src}/{k}", f"s3://{dst}/{k}") for k in small]
    pairs += [(f"s3://{src}/large", f"s3://{dst}/large{i}") for i in range(4)]
    random.Random(1).shuffle(pairs)
    measured = await measure_growth(_LOAD, fault_proxy.endpoint_url, src, dst, json.dumps(pairs))
    md5s = measured.report
    assert isinstance(md5s, dict) and sorted(md5s) == sorted(dst_ for _, dst_ in pairs)
    for dst_url, md5 in md5s.items():
        key = dst_url.split("/", 3)[3]
        assert md5 == (
            large_md5 if key.startswith("large") else hashlib.md5(small[key]).hexdigest()
        )
    assert faults.applied > 0
    print(f"peak RSS growth {measured.mib:.1f} MiB")  # for the record (pytest -s)
    assert measured.growth <= 30_000_000 + SLACK, f"{measured.mib:.1f} MiB"
