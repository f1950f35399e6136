"""copy(): every scenario of ../shared/DESIGN.md against a real moto server process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import (
    ByteBudget,
    NoSuchBucketError,
    NoSuchKeyError,
    TransferError,
)
from aqueuepipe.s3 import S3Client, create_client
from aqueuepipe.transfer import TransferResult, copy

from .._helpers import (
    MakeBucket,
    MiB,
    MotoServer,
    cancel_once,
    free_port,
    get,
    key_exists,
    open_uploads,
    payload,
    progress_event,
    put,
    write_payload,
)
from .._memory import measure_growth

# -- scenarios -----------------------------------------------------------------


async def test_copy_small_object_between_buckets_with_hashes(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(3 * MiB + 17)
    src, dst = await make_bucket(objects={"small.bin": data}), await make_bucket()
    result = await copy(
        f"s3://{src}/small.bin", f"s3://{dst}/copied.bin", checksums=("md5", "sha256")
    )
    # Plain moto stores bodies whatever their digests say, so a single PutObject
    # could not be proven before it replaced the key: one part, checked first.
    assert result.ok and result.parts == 1
    assert result.size == len(data)
    assert result.checksums == {
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    # The ETag of one part: the MD5 of the object's MD5.
    one_part = hashlib.md5(hashlib.md5(data).digest()).hexdigest() + "-1"
    assert result.etag is not None and result.etag.strip('"') == one_part
    assert await get(s3_client, dst, "copied.bin") == data


async def test_copy_20mb_multipart_streams_parts(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(20 * MiB, seed=1)
    src, dst = await make_bucket(objects={"big": data}), await make_bucket()
    result = await copy(f"s3://{src}/big", f"s3://{dst}/big", checksums=("md5", "sha256"))
    assert result.parts == 3  # 8 + 8 + 4 MiB
    assert result.etag is not None and result.etag.strip('"').endswith("-3")
    assert result.checksums["sha256"] == hashlib.sha256(data).hexdigest()
    assert result.checksums["md5"] == hashlib.md5(data).hexdigest()
    assert await get(s3_client, dst, "big") == data
    assert await open_uploads(s3_client, dst) == []


async def test_copy_50mb_under_30mb_limit_returns_every_byte_to_the_budget(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """What the copy holds is measured from outside in the slow test below; here,
    that it drew its parts from the caller's budget and gave every byte back."""
    data = payload(50 * 1000 * 1000, seed=2)
    src, dst = await make_bucket(objects={"fifty": data}), await make_bucket()
    budget = ByteBudget(30_000_000)
    result = await copy(f"s3://{src}/fifty", f"s3://{dst}/fifty", budget=budget, server_side=False)
    assert result.ok and result.parts == 6
    assert budget.peak > 0  # the parts came from this budget
    assert budget.used == 0
    assert await get(s3_client, dst, "fifty") == data


_FIFTY = """
from aqueuepipe.transfer import copy

async def warm_up():
    await copy(sys.argv[1] + "-warm", sys.argv[2] + "-warm", limit=30_000_000, server_side=False)

async def workload():
    result = await copy(sys.argv[1], sys.argv[2], limit=30_000_000, server_side=False)
    return [result.size, result.parts]
"""


@pytest.mark.slow
async def test_copy_50mb_peak_process_memory_within_limit_plus_overhead(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    """50 MB streamed under a 30 MB limit, with peak memory measured: the peak RSS
    growth of a fresh process (tests/_memory.py) stays under the limit plus a fixed
    overhead (15 MB: aiohttp's socket buffers, the hashing thread, allocator slack)."""
    objects = {"fifty": payload(50 * 1000 * 1000, seed=3), "fifty-warm": b"warm"}
    src, dst = await make_bucket(objects=objects), await make_bucket()
    limit, overhead = 30_000_000, 15_000_000
    measured = await measure_growth(_FIFTY, f"s3://{src}/fifty", f"s3://{dst}/fifty")
    assert measured.report == [50 * 1000 * 1000, 6]
    assert measured.growth <= limit + overhead, f"{measured.mib:.1f} MiB"


async def test_eight_concurrent_copies_in_one_loop_share_a_budget(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    objects = {f"obj{i}": payload(MiB * (i + 1) + i, seed=10 + i) for i in range(8)}
    objects["obj7"] = payload(12 * MiB, seed=99)  # one multipart among them
    await asyncio.gather(*(put(s3_client, src, k, v) for k, v in objects.items()))
    budget = ByteBudget(30_000_000)
    results = await asyncio.gather(
        *(copy(f"s3://{src}/{k}", f"s3://{dst}/{k}", budget=budget) for k in objects)
    )
    assert all(r.ok for r in results)
    assert budget.used == 0
    for key, data in objects.items():
        assert await get(s3_client, dst, key) == data


async def test_copies_sharing_one_client_beyond_its_pool_do_not_deadlock(
    moto_server: MotoServer, make_bucket: MakeBucket, s3_client: S3Client
) -> None:
    """More concurrent multipart copies than the client has connections.

    Each copy keeps a GetObject body (a pooled connection) open while it uploads
    parts through the same client; copy() must leave room for the uploads.
    """
    src, dst = await make_bucket(), await make_bucket()
    data = payload(6 * MiB, seed=5)
    keys = [f"k{i}" for i in range(6)]
    await asyncio.gather(*(put(s3_client, src, k, data) for k in keys))
    async with create_client(
        endpoint_url=moto_server.endpoint_url, max_pool_connections=3
    ) as small_pool:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    copy(
                        f"s3://{src}/{k}",
                        f"s3://{dst}/{k}",
                        client=small_pool,
                        part_size=5 * MiB,
                        limit=60 * MiB,
                        server_side=False,
                    )
                    for k in keys
                )
            ),
            timeout=60,
        )
    assert [r.parts for r in results] == [2] * 6


# -- errors --------------------------------------------------------------------


async def test_copy_from_missing_bucket_raises_no_such_bucket(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    dst = await make_bucket()
    with pytest.raises(NoSuchBucketError) as info:
        await copy("s3://no-such-bucket-aqp/key", f"s3://{dst}/key")
    assert info.value.bucket == "no-such-bucket-aqp"
    assert "no-such-bucket-aqp" in str(info.value) and "source" in str(info.value)
    assert info.value.__cause__ is not None


async def test_copy_of_missing_key_raises_no_such_key(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    with pytest.raises(NoSuchKeyError) as info:
        await copy(f"s3://{src}/missing.bin", f"s3://{dst}/x")
    assert info.value.key == "missing.bin"
    assert "missing.bin" in str(info.value)
    assert not await key_exists(s3_client, dst, "x")


@pytest.mark.parametrize("size", [1 * MiB, 12 * MiB], ids=["single-put", "multipart"])
async def test_copy_to_missing_bucket_raises_and_leaves_no_upload(
    endpoint: str, make_bucket: MakeBucket, size: int
) -> None:
    src = await make_bucket(objects={"obj": payload(size)})
    with pytest.raises(NoSuchBucketError) as info:
        await copy(f"s3://{src}/obj", "s3://no-such-destination-aqp/obj")
    assert info.value.bucket == "no-such-destination-aqp"
    assert "destination" in str(info.value)


async def test_copy_from_unreachable_endpoint_raises_transfer_error(
    make_bucket: MakeBucket,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransferError) as info:
        await copy("s3://bucket/key", "s3://other/key", endpoint_url=dead, retries=0)
    assert "127.0.0.1" in str(info.value)
    assert info.value.__cause__ is not None


async def test_failing_source_mid_multipart_aborts_upload_never_completes(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """A source that breaks half way must abort the upload, not complete a truncated object."""
    dst = await make_bucket()
    path = tmp_path / "shrinking.bin"
    write_payload(path, 15 * MiB)

    # The file shrinks once the first part is uploaded: the source ends early.
    truncate_after = asyncio.Event()

    def on_progress(src: str, dst_: str, done: int, total: int | None) -> None:
        if done >= 5 * MiB and not truncate_after.is_set():
            truncate_after.set()
            with path.open("r+b") as f:
                f.truncate(7 * MiB)

    with pytest.raises(TransferError, match="ended after"):
        await copy(
            str(path),
            f"s3://{dst}/truncated",
            part_size=5 * MiB,
            concurrency=1,
            limit=5 * MiB,
            progress=on_progress,
        )
    assert await open_uploads(s3_client, dst) == []
    assert not await key_exists(s3_client, dst, "truncated")


async def test_cancelled_multipart_copy_aborts_upload(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(objects={"obj": payload(20 * MiB)}), await make_bucket()
    first_part_sent, on_progress = progress_event()
    await cancel_once(
        first_part_sent,
        copy(
            f"s3://{src}/obj",
            f"s3://{dst}/obj",
            concurrency=1,
            progress=on_progress,
            server_side=False,
        ),
    )
    assert await open_uploads(s3_client, dst) == []
    assert not await key_exists(s3_client, dst, "obj")


# -- local files ---------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 3 * MiB, 17 * MiB], ids=["empty", "single", "multipart"])
async def test_upload_then_download_round_trip_is_byte_identical(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path, size: int
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "source.bin"
    data = write_payload(source, size, seed=size)
    up = await copy(str(source), f"s3://{bucket}/file", checksums=("md5", "sha256"))
    target = tmp_path / "back" / "target.bin"
    target.parent.mkdir()
    down = await copy(f"s3://{bucket}/file", str(target), checksums=("md5", "sha256"))
    assert target.read_bytes() == data
    assert (
        up.checksums
        == down.checksums
        == {
            "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    )
    assert sorted(p.name for p in target.parent.iterdir()) == ["target.bin"]


async def test_download_of_missing_key_creates_no_file(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    target = tmp_path / "never.bin"
    with pytest.raises(NoSuchKeyError):
        await copy(f"s3://{bucket}/nothing", str(target))
    assert list(tmp_path.iterdir()) == []


async def test_cancelled_download_leaves_no_partial_file(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"obj": payload(16 * MiB)})
    started, on_progress = progress_event()
    await cancel_once(
        started,
        copy(f"s3://{bucket}/obj", str(tmp_path / "obj"), limit=8 * MiB, progress=on_progress),
    )
    assert list(tmp_path.iterdir()) == []


# -- sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "parts"),
    [
        (0, 0),
        (1, 1),  # one-part multipart uploads: plain moto does not check digests
        (5 * MiB - 1, 1),
        (5 * MiB, 1),
        (5 * MiB + 1, 2),
        (3 * 5 * MiB, 3),
    ],
    ids=["0", "1", "5MiB-1", "5MiB", "5MiB+1", "3parts-exact"],
)
async def test_copy_edge_sizes(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, size: int, parts: int
) -> None:
    data = payload(size, seed=size)
    src, dst = await make_bucket(objects={"obj": data}), await make_bucket()
    result = await copy(
        f"s3://{src}/obj", f"s3://{dst}/obj", part_size=5 * MiB, checksums=("sha256",)
    )
    assert (result.size, result.parts) == (size, parts)
    assert result.checksums["sha256"] == hashlib.sha256(data).hexdigest()
    assert await get(s3_client, dst, "obj") == data
    if parts:
        assert result.etag is not None and result.etag.strip('"').endswith(f"-{parts}")


# -- endpoints and S3 checksums -----------------------------------------------


async def test_copy_between_two_endpoints(
    s3_client: S3Client, s3_client_b: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket()
    dst = await make_bucket(client=s3_client_b)
    data = payload(11 * MiB, seed=7)
    await put(s3_client, src, "obj", data)
    result = await copy(
        f"s3://{src}/obj", f"s3://{dst}/obj", src_client=s3_client, dst_client=s3_client_b
    )
    assert result.parts == 2
    assert await get(s3_client_b, dst, "obj") == data
    assert not await key_exists(s3_client, src, "obj-missing")


@pytest.mark.parametrize("checksum_when", ["when_required", "when_supported"])
@pytest.mark.parametrize("size", [2 * MiB, 13 * MiB], ids=["single", "multipart"])
async def test_copy_with_s3_checksum_algorithm_reads_back_equal(
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    checksum_when: Any,
    size: int,
) -> None:
    data = payload(size, seed=11)
    src, dst = await make_bucket(objects={"obj": data}), await make_bucket()
    result = await copy(
        f"s3://{src}/obj",
        f"s3://{dst}/obj",
        endpoint_url=moto_server.endpoint_url,
        checksum_algorithm="sha256",
        checksum_when=checksum_when,
        checksums=("sha256",),
    )
    # moto accepts any checksum without checking it: read the object back.
    response = await s3_client.get_object(Bucket=dst, Key="obj", ChecksumMode="ENABLED")
    async with response["Body"] as body:
        assert await body.read() == data
    reported = response["ChecksumSHA256"]
    if result.parts:
        part_digests = [
            hashlib.sha256(data[i : i + 8 * MiB]).digest() for i in range(0, size, 8 * MiB)
        ]
        expected = base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()
        assert reported == f"{expected}-{result.parts}"
    else:
        assert reported == base64_sha256(data)


def base64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def test_copy_100mb_reports_throughput(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(100 * MiB, seed=13)
    src, dst = await make_bucket(objects={"hundred": data}), await make_bucket()
    del data
    result: TransferResult = await copy(
        f"s3://{src}/hundred",
        f"s3://{dst}/hundred",
        limit=30_000_000,
        concurrency=3,
        server_side=False,
    )
    assert result.size == 100 * MiB and result.parts == 13
    assert result.seconds > 0 and result.throughput == result.size / result.seconds
    head = await s3_client.head_object(Bucket=dst, Key="hundred")
    assert head["ContentLength"] == 100 * MiB
    assert head["ETag"].strip('"').endswith("-13")
