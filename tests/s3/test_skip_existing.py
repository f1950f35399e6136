"""copy_many(skip_existing=True): what is already at the destination is not copied again."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from aqueuepipe import TransferResult, copy_many
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, MotoServer, get, payload, put, write_payload
from ..faultproxy import FaultProxy


async def run(pairs: Any, endpoint: str, **options: Any) -> list[TransferResult]:
    async with contextlib.aclosing(
        copy_many(pairs, endpoint_url=endpoint, skip_existing=True, **options)
    ) as results:
        return [result async for result in results]


async def test_rerun_of_a_prefix_copy_copies_nothing(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={f"d/{i}": payload(1000 + i, seed=i) for i in range(5)})
    dst = await make_bucket()
    # A single PUT of 11 MiB is copied in parts (another ETag): the CRC64NVME
    # checksum that S3 now stores with every new object is what proves it the same.
    await s3_client.put_object(
        Bucket=src, Key="d/big", Body=payload(11 * MiB, seed=9), ChecksumAlgorithm="CRC64NVME"
    )
    pairs = [(f"s3://{src}/d/", f"s3://{dst}/d/")]
    first = await run(pairs, moto_server.endpoint_url, recursive=True)
    assert [r.ok and not r.skipped for r in first] == [True] * 6
    second = await run(pairs, moto_server.endpoint_url, recursive=True)
    assert sorted(r.dst for r in second) == sorted(r.dst for r in first)
    assert all(r.ok and r.skipped for r in second)


async def test_only_deleted_and_changed_objects_are_copied_again(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={f"d/{i:02}": payload(500, seed=i) for i in range(20)})
    dst = await make_bucket()
    pairs = [(f"s3://{src}/d/", f"s3://{dst}/d/")]
    await run(pairs, moto_server.endpoint_url, recursive=True)
    for i in range(10):
        await s3_client.delete_object(Bucket=dst, Key=f"d/{i:02}")
    for i in range(17, 20):  # same size, new content
        await put(s3_client, src, f"d/{i:02}", payload(500, seed=100 + i))
    again = await run(pairs, moto_server.endpoint_url, recursive=True)
    copied = sorted(r.dst.rsplit("/", 1)[1] for r in again if not r.skipped)
    assert copied == [f"{i:02}" for i in [*range(10), *range(17, 20)]]
    assert all(r.ok for r in again)
    assert await get(s3_client, dst, "d/18") == payload(500, seed=118)


async def test_download_is_skipped_when_the_file_holds_the_object(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects={"k": payload(3000, seed=1)})
    target = tmp_path / "k"
    pairs = [(f"s3://{src}/k", str(target))]
    (first,) = await run(pairs, moto_server.endpoint_url)
    assert not first.skipped
    (second,) = await run(pairs, moto_server.endpoint_url)
    assert second.skipped
    write_payload(target, 3000, seed=2)  # same size, other bytes
    (third,) = await run(pairs, moto_server.endpoint_url)
    assert not third.skipped
    assert target.read_bytes() == payload(3000, seed=1)


async def test_upload_is_skipped_when_the_object_holds_the_file(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    dst = await make_bucket()
    source = tmp_path / "f"
    write_payload(source, 9 * MiB, seed=3)
    pairs = [(str(source), f"s3://{dst}/f")]
    (first,) = await run(pairs, moto_server.endpoint_url)
    assert not first.skipped
    (second,) = await run(pairs, moto_server.endpoint_url)
    assert second.skipped and second.size == 9 * MiB
    write_payload(source, 9 * MiB, seed=4)
    (third,) = await run(pairs, moto_server.endpoint_url)
    assert not third.skipped
    assert await get(s3_client, dst, "f") == payload(9 * MiB, seed=4)


async def test_first_run_asks_one_head_per_object_and_a_rerun_two(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={f"d/{i}": payload(100, seed=i) for i in range(3)})
    dst = await make_bucket()
    pairs = [(f"s3://{src}/d/{i}", f"s3://{dst}/d/{i}") for i in range(3)]
    first = await run(pairs, fault_proxy.endpoint_url)
    assert not any(r.skipped for r in first)
    # Not at the destination yet: its HEAD is asked, then the source's, which the
    # server-side copy needs instead of a GET.
    assert len(fault_proxy.exchanges("HeadObject")) == 6
    assert len(fault_proxy.exchanges("CopyObject")) == 3
    fault_proxy.log.clear()
    second = await run(pairs, fault_proxy.endpoint_url)
    assert all(r.skipped for r in second)
    assert len(fault_proxy.exchanges("HeadObject")) == 6
    assert fault_proxy.exchanges("GetObject") == []
