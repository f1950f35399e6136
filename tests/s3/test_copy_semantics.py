"""What a copy is: its ends, sameness, directories, special files, one result per object."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import TransferResult, copy, copy_many
from aqueuepipe.s3 import S3Client

from .._helpers import (
    MakeBucket,
    MiB,
    MotoServer,
    collect,
    get,
    key_exists,
    make_fifo,
    payload,
    put,
    read_fifo,
    write_fifo,
)


async def copy_tree(src: str, dst: str, endpoint_url: str, **options: Any) -> list[TransferResult]:
    """The results of one recursive ``copy_many`` of ``src`` to ``dst``."""
    return await collect(
        copy_many([(src, dst)], recursive=True, endpoint_url=endpoint_url, **options)
    )


async def test_recursive_copy_into_its_own_prefix_copies_each_object_once(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """DESIGN: "a copy into its own prefix copies each source object once and
    ends", without holding the listing in memory: the keys already under its
    output prefix are listed first, and its own output is never listed as source."""
    bucket = await make_bucket()
    for key in ("self/a", "self/sub/b", "self/sub/sub/c", "self/z"):
        await put(s3_client, bucket, key, key.encode())
    results = await copy_tree(
        f"s3://{bucket}/self/", f"s3://{bucket}/self/sub/", moto_server.endpoint_url
    )
    assert sorted(r.src.rpartition(f"{bucket}/")[2] for r in results if r.ok) == [
        "self/a",
        "self/sub/b",
        "self/sub/sub/c",
        "self/z",
    ]
    listed = await s3_client.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "self/a",
        "self/sub/a",
        "self/sub/b",
        "self/sub/sub/b",
        "self/sub/sub/c",
        "self/sub/sub/sub/c",
        "self/sub/z",
        "self/z",
    ]
    assert await get(s3_client, bucket, "self/sub/sub/b") == b"self/sub/b"


@pytest.mark.parametrize(
    ("src", "dst"),
    [("self/sub/", "self/"), ("self/", "self/")],
    ids=["into-its-parent", "onto-itself"],
)
async def test_recursive_copy_into_a_prefix_holding_it_is_refused(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, src: str, dst: str
) -> None:
    """It could overwrite sources not yet read (self/sub/sub/c onto self/sub/c);
    the command and the Dask layer refuse it with the same words."""
    bucket = await make_bucket()
    for key in ("self/a", "self/sub/b", "self/sub/sub/c"):
        await put(s3_client, bucket, key, key.encode())
    results = await copy_tree(
        f"s3://{bucket}/{src}", f"s3://{bucket}/{dst}", moto_server.endpoint_url
    )
    assert len(results) == 1
    assert isinstance(results[0].error, ValueError)
    assert "lies in destination prefix" in str(results[0].error)
    listed = await s3_client.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "self/a",
        "self/sub/b",
        "self/sub/sub/c",
    ]


async def _one_bucket_on_both(a: S3Client, b: S3Client, bucket: str, key: str) -> None:
    """``bucket`` on both endpoints, ``key`` in the first one holding b"mirrored"."""
    for client in (a, b):
        await client.create_bucket(Bucket=bucket)
    await put(a, bucket, key, b"mirrored")


async def test_recursive_copy_into_a_prefix_of_its_own_name_on_another_endpoint_is_a_copy(
    s3_client: S3Client, s3_client_b: S3Client
) -> None:
    """Prefixes overlap only on one endpoint, as objects are the same only there."""
    await _one_bucket_on_both(s3_client, s3_client_b, "overlap-test", "p/k")
    results = await collect(
        copy_many(
            [("s3://overlap-test/p/", "s3://overlap-test/p/sub/")],
            recursive=True,
            src_client=s3_client,
            dst_client=s3_client_b,
        )
    )
    assert [r.ok for r in results] == [True]
    assert await get(s3_client_b, "overlap-test", "p/sub/k") == b"mirrored"


async def test_download_to_an_existing_directory_writes_into_it(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """As the command, ``cp`` and shutil.copy do; copy() used to fail on it."""
    bucket = await make_bucket()
    await put(s3_client, bucket, "logs/obj", b"data")
    (tmp_path / "taken").mkdir()
    result = await copy(
        f"s3://{bucket}/logs/obj", str(tmp_path / "taken"), endpoint_url=moto_server.endpoint_url
    )
    assert result.dst == str(tmp_path / "taken" / "obj")
    assert (tmp_path / "taken" / "obj").read_bytes() == b"data"


async def test_copy_to_a_bucket_alone_names_the_object_after_the_source(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """As the command and ``aws s3 cp`` do; copy() used to refuse "names no object"."""
    (tmp_path / "a.txt").write_bytes(b"data")
    bucket = await make_bucket()
    result = await copy(
        str(tmp_path / "a.txt"), f"s3://{bucket}", endpoint_url=moto_server.endpoint_url
    )
    assert result.dst == f"s3://{bucket}/a.txt"
    assert await get(s3_client, bucket, "a.txt") == b"data"


async def test_mirroring_an_object_to_another_endpoint_is_a_copy(
    s3_client: S3Client, s3_client_b: S3Client
) -> None:
    await _one_bucket_on_both(s3_client, s3_client_b, "mirror-test", "k")
    result = await copy(
        "s3://mirror-test/k", "s3://mirror-test/k", src_client=s3_client, dst_client=s3_client_b
    )
    assert result.ok
    assert await get(s3_client_b, "mirror-test", "k") == b"mirrored"


async def test_same_object_on_one_endpoint_is_refused(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket(objects={"k": b"x"})
    with pytest.raises(ValueError, match="same object"):
        await copy(f"s3://{bucket}/k", f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url)


async def test_key_ending_in_slash_that_holds_data_gets_an_error_result(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(
        objects={"d/data/": b"not a folder marker", "d/marker/": b"", "d/marker/file": b"file"}
    )
    results = await copy_tree(f"s3://{bucket}/d/", str(tmp_path / "out"), moto_server.endpoint_url)
    failed = [r for r in results if not r.ok]
    assert [r.src for r in failed] == [f"s3://{bucket}/d/data/"]
    assert "ends with '/'" in str(failed[0].error)
    assert (tmp_path / "out" / "marker" / "file").read_bytes() == b"file"


async def test_symlinked_directory_in_an_upload_gets_an_error_result(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "real.txt").write_bytes(b"real")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "src" / "link").symlink_to(tmp_path / "elsewhere")
    results = await copy_tree(str(tmp_path / "src"), f"s3://{bucket}/up/", moto_server.endpoint_url)
    outcome = {Path(r.src).name: r for r in results}
    assert outcome["real.txt"].ok
    assert not outcome["link"].ok
    assert "symbolic link to a directory" in str(outcome["link"].error)


async def test_two_pairs_aimed_at_one_local_file_are_refused(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"a": b"first", "b": b"second"})
    target = str(tmp_path / "one")
    results = await collect(
        copy_many(
            [(f"s3://{bucket}/a", target), (f"s3://{bucket}/b", target)],
            endpoint_url=moto_server.endpoint_url,
        )
    )
    assert sorted(r.ok for r in results) == [False, True]
    assert "already writes" in str(next(r.error for r in results if not r.ok))


async def test_local_destination_ending_in_slash_is_a_directory(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"logs/a.txt": b"a"})
    result = await copy(
        f"s3://{bucket}/logs/a.txt", f"{tmp_path}/newdir/", endpoint_url=moto_server.endpoint_url
    )
    assert (tmp_path / "newdir" / "a.txt").read_bytes() == b"a"
    assert result.dst == str(tmp_path / "newdir" / "a.txt")


async def test_upload_to_a_prefix_keeps_the_file_name(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "disk.img"
    source.write_bytes(b"img")
    await copy(str(source), f"s3://{bucket}/images/", endpoint_url=moto_server.endpoint_url)
    assert await get(s3_client, bucket, "images/disk.img") == b"img"


async def test_keys_a_and_a_slash_b_say_a_file_is_in_the_way(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"p/a": b"file", "p/a/b": b"under it"})
    results = await copy_tree(
        f"s3://{bucket}/p/", str(tmp_path), moto_server.endpoint_url, concurrency=1
    )
    failed = [r for r in results if not r.ok]
    assert len(results) == 2 and len(failed) == 1
    assert "a file is in the way" in str(failed[0].error)


async def test_failing_pairs_generator_lets_started_copies_report_then_raises(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    for i in range(3):
        await put(s3_client, src, f"k{i}", b"x")

    async def pairs() -> AsyncIterator[tuple[str, str]]:
        for i in range(3):
            yield f"s3://{src}/k{i}", f"s3://{dst}/k{i}"
        raise RuntimeError("the listing broke")

    seen: list[TransferResult] = []
    with pytest.raises(RuntimeError, match="the listing broke"):
        async with contextlib.aclosing(
            copy_many(pairs(), endpoint_url=moto_server.endpoint_url)
        ) as results:
            async for result in results:
                seen.append(result)  # noqa: PERF401 (the results before the error count)
    assert sorted(r.dst for r in seen if r.ok) == [f"s3://{dst}/k{i}" for i in range(3)]


async def test_fifo_destination_is_written_in_place(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    data = payload(3 * MiB, seed=1)
    bucket = await make_bucket(objects={"k": data})
    fifo = make_fifo(tmp_path / "out")
    received: list[bytes] = []
    reader = read_fifo(fifo, received)
    result = await copy(f"s3://{bucket}/k", str(fifo), endpoint_url=moto_server.endpoint_url)
    await asyncio.to_thread(reader.join, 30)
    assert result.ok and received == [data]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


async def test_fifo_source_is_read_as_a_stream(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    data = payload(9 * MiB, seed=2)
    fifo = make_fifo(tmp_path / "in")

    writer = write_fifo(fifo, data)
    result = await copy(str(fifo), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url)
    await asyncio.to_thread(writer.join, 30)
    assert result.size == len(data) and result.parts == 2
    assert await get(s3_client, bucket, "k") == data
    assert not await key_exists(s3_client, bucket, "in")
