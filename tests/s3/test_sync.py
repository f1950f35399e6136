"""``sync()``: decided from listings, counted at the server.

A re-run over objects already there makes no request per object (only the
listings); deletions come after the copies, in DeleteObjects batches; a dry run
writes nothing; filters follow aws cli's rules.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import TransferResult, copy_many, sync
from aqueuepipe._sync import sync_in_order
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, MotoServer, collect, get, interrupted, payload, put

OBJECTS = {
    "a.txt": b"alpha",
    "dir/b.bin": payload(64 * 1024, seed=1),
    "dir/sub/c.txt": b"gamma",
    "z": b"",
}


def by_key(results: list[TransferResult], base: str) -> dict[str, TransferResult]:
    return {(r.dst or r.src).removeprefix(base): r for r in results}


async def keys(client: S3Client, bucket: str, prefix: str = "") -> list[str]:
    listed = await client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for o in listed.get("Contents", []))


async def test_sync_copies_then_a_rerun_makes_no_request_per_object(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={f"p/{k}": v for k, v in OBJECTS.items()})
    dst = await make_bucket()
    first = await collect(
        sync(f"s3://{src}/p/", f"s3://{dst}/q/", endpoint_url=moto_server.endpoint_url)
    )
    assert sorted(by_key(first, f"s3://{dst}/q/")) == sorted(OBJECTS)
    assert all(r.ok and not r.skipped for r in first)
    assert await get(s3_client, dst, "q/dir/b.bin") == OBJECTS["dir/b.bin"]
    moto_server.reset_requests()
    again = await collect(
        sync(f"s3://{src}/p", f"s3://{dst}/q", endpoint_url=moto_server.endpoint_url)
    )
    assert all(r.skipped for r in again) and len(again) == len(OBJECTS)
    counts = moto_server.requests().counts
    # Two listings; no HeadObject, no GetObject, no copy, per object or at all.
    assert set(counts) == {"ListObjectsV2"}, counts


async def test_sync_copies_what_differs_and_deletes_what_the_source_lacks(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects=OBJECTS)
    dst = await make_bucket(
        objects={"a.txt": b"ALPHA", "dir/b.bin": OBJECTS["dir/b.bin"], "old": b"x", "zz/y": b"y"}
    )
    results = await collect(
        sync(f"s3://{src}/", f"s3://{dst}/", delete=True, endpoint_url=moto_server.endpoint_url)
    )
    found = by_key(results, f"s3://{dst}/")
    assert not found["a.txt"].skipped and found["dir/b.bin"].skipped  # same size, other bytes
    assert found["old"].deleted and found["zz/y"].deleted and found["old"].src == ""
    assert await keys(s3_client, dst) == sorted(OBJECTS)
    assert await get(s3_client, dst, "a.txt") == b"alpha"


async def test_sync_deletes_nothing_when_a_copy_failed(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """Uploading a directory with an unreadable file: the other copies go on, the
    extra object stays."""
    (tmp_path / "ok").write_bytes(b"ok")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    dst = await make_bucket(objects={"extra": b"e"})
    results = await collect(
        sync(str(tmp_path), f"s3://{dst}/", delete=True, endpoint_url=moto_server.endpoint_url)
    )
    assert [r.ok for r in results if r.dst.endswith("/ok")] == [True]
    assert any(not r.ok for r in results)
    assert not any(r.deleted for r in results)
    assert "extra" in await keys(s3_client, dst)


async def test_sync_dry_run_writes_and_deletes_nothing(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects=OBJECTS)
    dst = await make_bucket(objects={"a.txt": b"alpha", "old": b"x"})
    moto_server.reset_requests()
    results = await collect(
        sync(
            f"s3://{src}/",
            f"s3://{dst}/",
            delete=True,
            dry_run=True,
            endpoint_url=moto_server.endpoint_url,
        )
    )
    found = by_key(results, f"s3://{dst}/")
    assert found["a.txt"].skipped
    assert {k for k, r in found.items() if r.planned} == {"dir/b.bin", "dir/sub/c.txt", "z", "old"}
    assert not any(r.deleted for r in results)
    assert await keys(s3_client, dst) == ["a.txt", "old"]
    written = {"PutObject", "CopyObject", "UploadPart", "DeleteObjects", "DeleteObject"}
    assert not written & set(moto_server.requests().counts)


async def test_sync_filters_follow_aws_cli_rules(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects=OBJECTS)
    dst = await make_bucket(objects={"keep.bin": b"k"})
    await collect(
        sync(
            f"s3://{src}/",
            f"s3://{dst}/",
            exclude=["*"],
            include=["*.txt"],
            delete=True,
            endpoint_url=moto_server.endpoint_url,
        )
    )
    # keep.bin is excluded, so it is not deleted either.
    assert await keys(s3_client, dst) == ["a.txt", "dir/sub/c.txt", "keep.bin"]


async def test_sync_down_and_up_again_decides_by_size_and_time(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects=OBJECTS)
    down = await collect(sync(f"s3://{src}/", str(tmp_path), endpoint_url=moto_server.endpoint_url))
    assert all(r.ok and not r.skipped for r in down), down
    assert len(down) == len(OBJECTS)
    assert (tmp_path / "dir" / "sub" / "c.txt").read_bytes() == b"gamma"
    moto_server.reset_requests()
    again = await collect(
        sync(f"s3://{src}/", str(tmp_path), endpoint_url=moto_server.endpoint_url)
    )
    assert all(r.skipped for r in again)
    assert set(moto_server.requests().counts) == {"ListObjectsV2"}
    (tmp_path / "a.txt").write_bytes(b"ALPHA!")  # another size
    up = await collect(sync(str(tmp_path), f"s3://{src}/", endpoint_url=moto_server.endpoint_url))
    changed = [r for r in up if not r.skipped]
    assert [r.dst for r in changed] == [f"s3://{src}/a.txt"]
    assert await get(s3_client, src, "a.txt") == b"ALPHA!"


async def test_sync_copies_folder_markers_down_as_directories(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects={"p/folder/": b"", "p/folder/f": b"f", "p/empty/": b""})
    results = await collect(
        sync(f"s3://{src}/p/", str(tmp_path), endpoint_url=moto_server.endpoint_url)
    )
    assert all(r.ok for r in results)
    assert (tmp_path / "folder" / "f").read_bytes() == b"f"
    assert (tmp_path / "empty").is_dir()
    assert sorted(r.dst for r in results) == [
        str(tmp_path / "empty"),
        str(tmp_path / "folder"),
        str(tmp_path / "folder" / "f"),
    ]  # a result per key, markers too
    again = await collect(
        sync(f"s3://{src}/p/", str(tmp_path), endpoint_url=moto_server.endpoint_url)
    )
    assert len(again) == 3 and all(r.skipped for r in again)


async def test_sync_download_never_writes_outside_its_directory(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects={"p/good": b"good", "p/dir/../../escape": b"evil"})
    root = tmp_path / "root"
    results = await collect(
        sync(f"s3://{src}/p/", str(root), endpoint_url=moto_server.endpoint_url)
    )
    by_src = {r.src.removeprefix(f"s3://{src}/p/"): r for r in results}
    assert by_src["good"].ok and (root / "good").read_bytes() == b"good"
    assert isinstance(by_src["dir/../../escape"].error, ValueError)
    assert not (tmp_path / "escape").exists()


async def test_copy_many_recursive_downloads_folder_markers_as_directories(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_bucket(objects={"p/empty/": b"", "p/f": b"f"})
    results = await collect(
        copy_many(
            [(f"s3://{src}/p/", str(tmp_path))],
            recursive=True,
            endpoint_url=moto_server.endpoint_url,
        )
    )
    assert all(r.ok for r in results) and len(results) == 2
    assert (tmp_path / "empty").is_dir() and (tmp_path / "f").read_bytes() == b"f"


@pytest.mark.parametrize(
    ("src", "dst", "error", "match"),
    [
        ("s3://b-1/p/", "s3://b-1/p/sub/", ValueError, "lies in source prefix"),
        ("s3://b-1/p/sub/", "s3://b-1/p/", ValueError, "lies in destination prefix"),
        ("./a", "./b", ValueError, "must be an s3:// prefix"),
    ],
)
async def test_sync_refuses_bad_pairs_before_any_request(
    src: str, dst: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await collect(sync(src, dst))


async def test_sync_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file"):
        await collect(sync("s3://b-1/p/", str(target)))


async def test_sync_refuses_options_it_decides_itself() -> None:
    with pytest.raises(ValueError, match="skip_existing does not apply"):
        await collect(sync("s3://b-1/p/", "s3://b-2/p/", skip_existing=True))


async def test_sync_deletes_in_batches_of_a_thousand(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={"kept": b"k"})
    dst = await make_bucket(objects={f"extra/{n:04}": b"" for n in range(1001)})
    moto_server.reset_requests()
    results = await collect(
        sync(f"s3://{src}/", f"s3://{dst}/", delete=True, endpoint_url=moto_server.endpoint_url)
    )
    assert sum(r.deleted for r in results) == 1001
    assert moto_server.requests()["DeleteObjects"] == 2
    assert moto_server.requests()["DeleteObject"] == 0
    assert await keys(s3_client, dst) == ["kept"]


async def test_sync_copies_folder_markers_and_slash_keys_as_objects(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """A console's folder marker (``folder/``, empty) and a key ending in ``/`` that
    holds data are objects of their own names: never "a prefix", never ``data/data``."""
    src = await make_bucket(objects={"p/folder/": b"", "p/data/": b"xyz", "p/a": b"a"})
    dst = await make_bucket()
    results = await collect(
        sync(f"s3://{src}/p/", f"s3://{dst}/q/", endpoint_url=moto_server.endpoint_url)
    )
    assert all(r.ok for r in results), [r.error for r in results]
    assert await keys(s3_client, dst) == ["q/a", "q/data/", "q/folder/"]
    assert await get(s3_client, dst, "q/data/") == b"xyz"
    moto_server.reset_requests()
    again = await collect(
        sync(f"s3://{src}/p/", f"s3://{dst}/q/", endpoint_url=moto_server.endpoint_url)
    )
    assert len(again) == 3 and all(r.skipped for r in again)
    assert set(moto_server.requests().counts) == {"ListObjectsV2"}


async def test_copy_many_recursive_copies_slash_keys_under_their_own_names(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket(objects={"p/folder/": b"", "p/data/": b"xyz"})
    dst = await make_bucket()
    results = await collect(
        copy_many(
            [(f"s3://{src}/p/", f"s3://{dst}/q/")],
            recursive=True,
            endpoint_url=moto_server.endpoint_url,
        )
    )
    assert sorted(r.dst for r in results if r.ok) == [
        f"s3://{dst}/q/data/",
        f"s3://{dst}/q/folder/",
    ]
    assert await keys(s3_client, dst) == ["q/data/", "q/folder/"]


def _boto3_multipart(endpoint_url: str, bucket: str, sizes: dict[str, tuple[int, int]]) -> None:
    """Objects uploaded by boto3 with the given part size and no checksum at all
    (``when_required``): what a migration meets from older tools."""
    boto3 = pytest.importorskip("boto3")
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=Config(request_checksum_calculation="when_required"),
    )
    try:
        for key, (size, part_size) in sizes.items():
            config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)
            client.upload_fileobj(io.BytesIO(payload(size, seed=size)), bucket, key, Config=config)
    finally:
        client.close()


@pytest.mark.slow
async def test_sync_of_a_migration_reruns_on_listings_alone(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """Issue 20's case: 4,000 small objects, 3 multipart ones made by boto3 with 5 MiB
    and 16 MiB parts and no checksums, and a folder marker.  The first sync copies
    them all (multipart ones in their source's layout, so with its ETag); the re-run
    makes no request but the listings, counted at the server."""
    src = await make_bucket()
    small = {f"p/{n // 100:02}/{n:04}.txt": f"object {n}".encode() for n in range(4000)}
    for start in range(0, len(small), 200):
        batch = list(small.items())[start : start + 200]
        await asyncio.gather(*(put(s3_client, src, key, data) for key, data in batch))
    await put(s3_client, src, "p/folder/", b"")
    multipart = {"p/big/a": (12 * MiB, 5 * MiB), "p/big/b": (40 * MiB, 16 * MiB)}
    multipart["p/big/c"] = (5 * MiB + 1, 5 * MiB)
    await asyncio.to_thread(_boto3_multipart, moto_server.endpoint_url, src, multipart)
    dst = await make_bucket()
    first = await collect(
        sync(f"s3://{src}/p/", f"s3://{dst}/q/", endpoint_url=moto_server.endpoint_url)
    )
    assert len(first) == 4004 and all(r.ok and not r.skipped for r in first)
    for key in multipart:
        source = await s3_client.head_object(Bucket=src, Key=key)
        copied = await s3_client.head_object(Bucket=dst, Key="q/" + key.removeprefix("p/"))
        assert copied["ETag"] == source["ETag"] and "-" in source["ETag"]
    moto_server.reset_requests()
    again = await collect(
        sync(f"s3://{src}/p/", f"s3://{dst}/q/", endpoint_url=moto_server.endpoint_url)
    )
    assert len(again) == 4004 and all(r.skipped for r in again)
    requests = moto_server.requests()
    assert set(requests.counts) == {"ListObjectsV2"}, requests.counts
    assert requests["ListObjectsV2"] == 2 * 5  # 4,004 keys: five pages of 1,000 a side


async def test_sync_in_order_lets_the_later_filter_win(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """aws cli: ``--include '*.txt' --exclude '*'`` leaves every key out (the later
    filter wins); ``--exclude '*' --include '*.txt'`` keeps the text files."""
    src = await make_bucket(objects=OBJECTS)
    none, some = await make_bucket(), await make_bucket()
    await collect(
        sync_in_order(
            f"s3://{src}/",
            f"s3://{none}/",
            [("include", "*.txt"), ("exclude", "*")],
            endpoint_url=moto_server.endpoint_url,
        )
    )
    await collect(
        sync_in_order(
            f"s3://{src}/",
            f"s3://{some}/",
            [("exclude", "*"), ("include", "*.txt"), ("exclude", "dir/*")],
            endpoint_url=moto_server.endpoint_url,
        )
    )
    assert await keys(s3_client, none) == []
    assert await keys(s3_client, some) == ["a.txt"]


async def test_sync_in_order_refuses_a_filter_that_is_not_a_pair() -> None:
    with pytest.raises(TypeError, match="pairs"):
        await collect(sync_in_order("s3://b-1/p/", "s3://b-2/p/", [("keep", "*")]))  # type: ignore[list-item]


async def test_sync_uploads_keys_the_listing_shows_absent_with_one_put_each(
    moto_server: MotoServer, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """Plain moto does not check digests, so a PUT over an existing key could destroy
    it before its answer proves anything: such keys go as one-part multipart
    uploads.  A key the listing shows absent has nothing to lose: one conditional
    PutObject (``If-None-Match: *``), three requests fewer."""
    for n in range(5):
        (tmp_path / f"f{n}").write_bytes(payload(1000 + n, seed=n))
    dst = await make_bucket()
    moto_server.reset_requests()
    results = await collect(
        sync(str(tmp_path), f"s3://{dst}/", endpoint_url=moto_server.endpoint_url)
    )
    assert all(r.ok and r.verified for r in results) and len(results) == 5
    counts = moto_server.requests()
    # (The one multipart upload a process makes is its probe of whether the server
    # checks digests, aborted: no object is written that way.)
    assert counts["PutObject"] == 5 and counts["CompleteMultipartUpload"] == 0, counts.counts


async def test_upload_to_a_key_written_since_its_listing_keeps_the_safe_way(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """The listing said absent, but the key exists by the time the copy starts: the
    conditional PUT is refused (412) and the bytes go the multipart way."""
    from aqueuepipe._clients import ClientPool
    from aqueuepipe._expand import Expanded
    from aqueuepipe._options import build_options
    from aqueuepipe.transfer import run_batch

    dst = await make_bucket(objects={"k": b"written meanwhile"})
    (tmp_path / "k").write_bytes(b"the file's bytes")
    options = build_options(endpoint_url=moto_server.endpoint_url)

    async def items() -> AsyncIterator[Expanded]:
        yield Expanded(str(tmp_path / "k"), f"s3://{dst}/k", tmp_path, None, True, True)

    moto_server.reset_requests()
    async with ClientPool(options) as pool:
        [result] = [r async for r in run_batch(items(), options, pool)]
    assert result.ok, result.error
    assert await get(s3_client, dst, "k") == b"the file's bytes"
    counts = moto_server.requests()
    assert counts["PutObject"] == 1 and counts["CompleteMultipartUpload"] == 1, counts.counts


# -- resume -------------------------------------------------------------------------------


async def test_sync_resume_continues_an_interrupted_upload(
    endpoint: str,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:

    import aqueuepipe

    size, part = 40 * MiB, 5 * MiB
    body = payload(size, seed=40)
    (tmp_path / "object.bin").write_bytes(body)
    src_bucket, dst_bucket = await make_bucket(prefix="src"), await make_bucket(prefix="dst")
    await aqueuepipe.copy(tmp_path / "object.bin", f"s3://{src_bucket}/p/big.bin", part_size=part)
    src, dst = f"s3://{src_bucket}/p/", f"s3://{dst_bucket}/p/"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    async def run(progress: Any) -> None:
        await collect(
            sync(
                src,
                dst,
                resume=True,
                journal_dir=journal_dir,
                server_side=False,
                part_size=part,
                part_concurrency=2,
                progress=progress,
            )
        )

    await interrupted(run, size // 2)
    listed = await s3_client.list_multipart_uploads(Bucket=dst_bucket)
    assert len(listed.get("Uploads", [])) == 1, "the upload was not kept open"
    first = moto_server.requests().bytes.get("UploadPart", 0)

    results = await collect(
        sync(src, dst, resume=True, journal_dir=journal_dir, server_side=False, part_size=part)
    )
    total = moto_server.requests().bytes.get("UploadPart", 0)
    print(f"UploadPart bytes at the server: {first} + {total - first} = {total} of {size}")
    assert [(r.ok, bool(r.verified)) for r in results] == [(True, True)]
    assert await get(s3_client, dst_bucket, "p/big.bin") == body
    assert total <= 1.3 * size, f"{first} then {total - first} bytes sent for {size}"
    listed = await s3_client.list_multipart_uploads(Bucket=dst_bucket)
    assert listed.get("Uploads", []) == []
    assert list(journal_dir.glob("*.json")) == []
