"""copy_many(): batches under one budget, against a real moto server process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aqueuepipe import ByteBudget, NoSuchBucketError, NoSuchKeyError, TransferResult, copy_many
from aqueuepipe.s3 import S3Client

from .._helpers import (
    MakeBucket,
    MiB,
    MotoServer,
    cancel_and_check,
    collect,
    get,
    key_exists,
    open_uploads,
    payload,
    put,
)
from .._memory import measure_growth


def test_bad_options_raise_at_the_call() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        copy_many([], concurrency=0)
    with pytest.raises(ValueError, match="must hold at least one part"):
        copy_many([], limit=1_000_000)
    with pytest.raises(ValueError, match="md6"):
        copy_many([], checksums=("md6",))


async def test_empty_batch_yields_nothing(endpoint: str) -> None:
    assert await collect(copy_many([])) == []


@pytest.mark.slow
async def test_batch_of_files_copied_verified_and_downloaded_back(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    rng = random.Random(1234)
    sizes = [rng.randint(1 * 1000 * 1000, 25 * 1000 * 1000) for _ in range(12)]
    files = {}
    for i, size in enumerate(sizes):
        path = tmp_path / "up" / f"file{i:02}.bin"
        path.parent.mkdir(exist_ok=True)
        data = payload(size, seed=i)
        path.write_bytes(data)
        files[path.name] = data
    src, dst = await make_bucket(), await make_bucket()
    budget = ByteBudget(30_000_000)
    checks = ("md5", "sha256")
    uploads = await collect(
        copy_many(
            [(str(tmp_path / "up" / name), f"s3://{src}/in/{name}") for name in files],
            budget=budget,
            checksums=checks,
        )
    )
    copies = await collect(
        copy_many([(f"s3://{src}/in/", f"s3://{dst}/out/")], recursive=True, budget=budget)
    )
    downloads = await collect(
        copy_many(
            [(f"s3://{dst}/out/", str(tmp_path / "down"))],
            recursive=True,
            budget=budget,
            checksums=checks,
        )
    )
    for results in (uploads, copies, downloads):
        assert len(results) == 12 and all(r.ok for r in results), results
    for result in (*uploads, *downloads):
        data = files[Path(result.dst).name]
        assert result.checksums == {
            "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    for name, data in files.items():
        assert (tmp_path / "down" / name).read_bytes() == data
    assert budget.used == 0
    assert await open_uploads(s3_client, dst) == []


_SIXTEEN_COPIES = """
from aqueuepipe import copy_many

async def run(pairs):
    results = [r async for r in copy_many(pairs, limit=30_000_000, checksums=("sha256",))]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return [[r.checksums["sha256"], r.parts] for r in results]

async def warm_up():
    await run([(sys.argv[1] + "-warm", sys.argv[2] + "-warm")])

async def workload():
    return await run([(sys.argv[1], f"{sys.argv[2]}{i:02}") for i in range(16)])
"""


@pytest.mark.slow
async def test_sixteen_100mb_copies_share_a_30mb_budget(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    """1.6 GB copied 16 at a time under a 30 MB limit: the peak RSS growth of a
    fresh process (tests/_memory.py) stays within 55 MB (45-48 MiB measured; each
    open response holds up to ~1 MiB outside the budget, see test_memory.py)."""
    data = payload(100 * MiB, seed=16)
    src, dst = await make_bucket(objects={"big": data, "big-warm": b"warm"}), await make_bucket()
    measured = await measure_growth(_SIXTEEN_COPIES, f"s3://{src}/big", f"s3://{dst}/copy")
    assert measured.report == [[hashlib.sha256(data).hexdigest(), 13]] * 16
    print(f"peak RSS growth {measured.mib:.1f} MiB")  # for the record (pytest -s)
    assert measured.growth <= 55_000_000, f"{measured.mib:.1f} MiB"


async def test_broken_pairs_are_reported_and_do_not_stop_the_others(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    good = {f"ok{i:02}": payload(100_000 + i, seed=i) for i in range(16)}
    good["ok-multipart"] = payload(12 * MiB, seed=77)
    await asyncio.gather(*(put(s3_client, src, k, v) for k, v in good.items()))
    pairs = [(f"s3://{src}/{k}", f"s3://{dst}/{k}") for k in good]
    broken = [
        (f"s3://{src}/missing-key", f"s3://{dst}/x1"),
        (f"s3://{src}/ok-multipart", "s3://no-such-bucket-aqp/x2"),
        ("s3://Bad_Bucket!/key", f"s3://{dst}/x3"),
    ]
    for i, pair in enumerate(broken):
        pairs.insert(5 * i + 2, pair)
    results = await collect(copy_many(pairs, concurrency=6))
    assert len(results) == 20
    ok = [r for r in results if r.ok]
    failed = {r.src: r.error for r in results if not r.ok}
    assert len(ok) == 17 and len(failed) == 3
    assert isinstance(failed[f"s3://{src}/missing-key"], NoSuchKeyError)
    assert isinstance(failed[f"s3://{src}/ok-multipart"], NoSuchBucketError)
    assert isinstance(failed["s3://Bad_Bucket!/key"], ValueError)
    for key, data in good.items():
        assert await get(s3_client, dst, key) == data
    assert await open_uploads(s3_client, dst) == []


async def test_async_iterable_of_pairs(endpoint: str, make_bucket: MakeBucket) -> None:
    src, dst = await make_bucket(objects={"a": b"alpha"}), await make_bucket()

    async def pairs() -> AsyncIterator[tuple[str, str]]:
        for i in range(3):
            yield f"s3://{src}/a", f"s3://{dst}/a{i}"

    results = await collect(copy_many(pairs()))
    assert sorted(r.dst for r in results) == [f"s3://{dst}/a{i}" for i in range(3)]
    assert all(r.ok for r in results)


@pytest.mark.slow
async def test_generator_of_many_tiny_pairs_is_consumed_lazily(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """2,000 pairs (6,000 requests: one-part uploads on plain moto): the generator
    is read only as fast as copies start, and the memory held does not grow with
    the number of pairs."""
    dst = await make_bucket()
    tiny = tmp_path / "tiny.txt"
    tiny.write_bytes(b"x")
    count, concurrency = 2_000, 16
    pulled = 0

    def pairs() -> Iterator[tuple[str, str]]:
        nonlocal pulled
        for i in range(count):
            pulled += 1
            yield str(tiny), f"s3://{dst}/t/{i}"

    seen = 0
    max_ahead = 0
    memory_at: dict[int, int] = {}
    tracemalloc.start()
    try:
        async with contextlib.aclosing(
            copy_many(pairs(), concurrency=concurrency, checksums=())
        ) as results:
            async for result in results:
                assert result.ok, result.error
                seen += 1
                max_ahead = max(max_ahead, pulled - seen)
                if seen in (500, count):
                    memory_at[seen] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert seen == count
    # Started-but-unreported copies, plus results waiting to be taken, plus one.
    assert max_ahead <= 2 * concurrency + 1
    assert memory_at[count] - memory_at[500] < 2 * MiB


async def test_cancelling_a_batch_releases_budget_and_aborts_uploads(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(objects={"big": payload(20 * MiB, seed=3)}), await make_bucket()
    budget = ByteBudget(24 * MiB)
    parts_sent = asyncio.Event()

    def on_progress(src_: str, dst_: str, done: int, total: int | None) -> None:
        if done > 0:
            parts_sent.set()

    async def run() -> None:
        async with contextlib.aclosing(
            copy_many(
                [(f"s3://{src}/big", f"s3://{dst}/c{i}") for i in range(6)],
                budget=budget,
                part_concurrency=1,
                progress=on_progress,
            )
        ) as results:
            async for _ in results:
                pass

    task = asyncio.create_task(run())
    await parts_sent.wait()
    await cancel_and_check(task)
    assert budget.used == 0
    assert await open_uploads(s3_client, dst) == []


async def test_breaking_out_of_a_batch_cleans_up(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    objects = {"small": b"s", "big": payload(16 * MiB, seed=4)}
    src, dst = await make_bucket(objects=objects), await make_bucket()
    budget = ByteBudget(24 * MiB)
    pairs = [(f"s3://{src}/small", f"s3://{dst}/small")] + [
        (f"s3://{src}/big", f"s3://{dst}/big{i}") for i in range(4)
    ]
    async with contextlib.aclosing(copy_many(pairs, budget=budget, concurrency=5)) as results:
        async for first in results:
            assert first.ok
            break
    assert budget.used == 0
    assert await open_uploads(s3_client, dst) == []


# -- prefixes ------------------------------------------------------------------


async def test_recursive_prefix_copy_keeps_relative_paths(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    keys = ["dir/a.txt", "dir/sub/b.txt", "dir/sub/deeper/c.txt", "other/not-me.txt"]
    for key in keys:
        await put(s3_client, src, key, key.encode())
    results = await collect(copy_many([(f"s3://{src}/dir/", f"s3://{dst}/copied")], recursive=True))
    assert sorted(r.dst for r in results) == [
        f"s3://{dst}/copied/a.txt",
        f"s3://{dst}/copied/sub/b.txt",
        f"s3://{dst}/copied/sub/deeper/c.txt",
    ]
    assert await get(s3_client, dst, "copied/sub/deeper/c.txt") == b"dir/sub/deeper/c.txt"
    assert not await key_exists(s3_client, dst, "copied/not-me.txt")


async def test_prefix_listing_spans_pages(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await asyncio.gather(*(put(s3_client, src, f"p/{i:04}", b"%d" % i) for i in range(1_050)))
    results = await collect(
        copy_many([(f"s3://{src}/p/", f"s3://{dst}/q/")], recursive=True, checksums=())
    )
    assert len(results) == 1_050 and all(r.ok for r in results)


async def test_prefix_download_refuses_keys_escaping_the_directory(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects={"dir/good/file.txt": b"good", "dir/../../escape": b"evil"})
    target = tmp_path / "target"
    results = await collect(copy_many([(f"s3://{src}/dir/", str(target))], recursive=True))
    by_src = {r.src: r for r in results}
    assert by_src[f"s3://{src}/dir/good/file.txt"].ok
    bad = by_src[f"s3://{src}/dir/../../escape"]
    assert isinstance(bad.error, ValueError) and "escape" in str(bad.error)
    assert (target / "good" / "file.txt").read_bytes() == b"good"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file.txt", "good", "target"]


async def test_prefix_of_missing_bucket_yields_one_failed_result(endpoint: str) -> None:
    results = await collect(
        copy_many([("s3://no-such-bucket-aqp/dir/", "s3://elsewhere-aqp/x/")], recursive=True)
    )
    assert len(results) == 1
    assert isinstance(results[0].error, NoSuchBucketError)


async def test_recursive_upload_of_a_directory(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    dst = await make_bucket()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "top.txt").write_bytes(b"top")
    (tmp_path / "a" / "b" / "leaf.txt").write_bytes(b"leaf")
    results = await collect(copy_many([(str(tmp_path), f"s3://{dst}/up/")], recursive=True))
    assert sorted(r.dst for r in results) == [
        f"s3://{dst}/up/a/b/leaf.txt",
        f"s3://{dst}/up/top.txt",
    ]
    assert await get(s3_client, dst, "up/a/b/leaf.txt") == b"leaf"


async def test_concurrent_multipart_copies_hold_no_part_outside_the_budget(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    """Regression: the part loop kept the last part it handed over alive after its
    bytes went back to the budget, one 8 MiB part per running copy."""
    src, dst = await make_bucket(objects={"big": payload(20 * MiB, seed=21)}), await make_bucket()
    await collect(copy_many([(f"s3://{src}/big", f"s3://{dst}/warm")]))  # load models
    limit = 24 * MiB
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        results = await collect(
            copy_many(
                [(f"s3://{src}/big", f"s3://{dst}/c{i}") for i in range(8)],
                limit=limit,
                concurrency=8,
            )
        )
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert all(r.ok for r in results)
    # Eight stale parts would add 64 MiB; 16 MiB covers clients, buffers and slack.
    assert peak <= limit + 16 * MiB, peak


async def test_pairs_iterator_that_raises_ends_the_batch_with_its_error(endpoint: str) -> None:
    def pairs() -> Iterator[tuple[str, str]]:
        yield "s3://no-such-bucket-aqp/a", "s3://no-such-bucket-aqp/b"
        raise RuntimeError("the listing broke")

    results: list[TransferResult] = []
    # The iterator's own error, not an ExceptionGroup; the copy it started first
    # still finishes and reports.
    with pytest.raises(RuntimeError, match="the listing broke"):
        async with contextlib.aclosing(copy_many(pairs())) as batch:
            async for result in batch:
                results.append(result)  # noqa: PERF401 (the results before the error count)
    assert [r.src for r in results] == ["s3://no-such-bucket-aqp/a"]
    assert not results[0].ok


async def test_recursive_copy_of_a_prefix_named_without_its_slash_points_at_it(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={"a/x": b"x"})
    dst = await make_bucket()
    [result] = await collect(
        copy_many(
            [(f"s3://{src}/a", f"s3://{dst}/b/")],
            recursive=True,
            endpoint_url=moto_server.endpoint_url,
        )
    )
    assert isinstance(result.error, NoSuchKeyError)
    assert f"'s3://{src}/a/' is a prefix" in str(result.error)
