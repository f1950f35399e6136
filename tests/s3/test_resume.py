"""resume=True: an interrupted multipart upload is continued, not sent again.

The bytes each run sends are counted where they arrive, by the test server's
middleware (``moto_server.requests().bytes["UploadPart"]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aqueuepipe
import aqueuepipe.transfer
from aqueuepipe.s3 import S3Client
from aqueuepipe.testing import MotoServer

from .._helpers import MakeBucket, MiB, get, open_uploads, payload

SIZE = 40 * MiB
PART = 5 * MiB


def journals(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


def sent(moto_server: MotoServer) -> int:
    """The request bytes the server received (every operation) since the count was reset."""
    return sum(moto_server.requests().bytes.values())


async def interrupted(run: Any, after: int) -> None:
    """Run the copy ``run(progress)`` and cancel it once ``after`` bytes reached the
    destination (by its progress)."""
    reached = asyncio.Event()

    def on_progress(src: str, dst: str, done: int, total: int | None) -> None:
        if done >= after:
            reached.set()

    task = asyncio.create_task(run(on_progress))
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert not task.done(), "the copy ended before it could be interrupted"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(payload(SIZE, seed=21))
    return path


async def test_resume_continues_an_interrupted_upload_from_a_file(
    endpoint: str,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    source_file: Path,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    dst = f"s3://{bucket}/big.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            source_file,
            dst,
            resume=True,
            journal_dir=journal_dir,
            part_size=PART,
            part_concurrency=2,
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    assert len(await open_uploads(s3_client, bucket)) == 1, "the upload was not kept open"
    assert len(journals(journal_dir)) == 1
    first = sent(moto_server)
    result = await aqueuepipe.copy(
        source_file, dst, resume=True, journal_dir=journal_dir, part_size=PART
    )
    total = sent(moto_server)
    print(f"bytes at the server: {first} + {total - first} = {total} for {SIZE}")
    assert result.ok and result.verified
    assert await get(s3_client, bucket, "big.bin") == source_file.read_bytes()
    assert total <= 1.3 * SIZE, f"{first} then {total - first} bytes sent for {SIZE}"
    assert total - first < SIZE - first // 2
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


async def make_source_object(make_bucket: MakeBucket, tmp_path: Path, size: int) -> str:
    """An object of ``size`` bytes written by aqueuepipe (a FULL_OBJECT CRC64NVME)."""
    bucket = await make_bucket(prefix="src")
    path = tmp_path / "object.bin"
    path.write_bytes(payload(size, seed=7))
    await aqueuepipe.copy(path, f"s3://{bucket}/object.bin", part_size=PART)
    return f"s3://{bucket}/object.bin"


async def test_resume_continues_an_interrupted_copy_between_buckets(
    endpoint: str,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    src = await make_source_object(make_bucket, tmp_path, SIZE)
    bucket = await make_bucket()
    dst = f"s3://{bucket}/copy.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            src,
            dst,
            resume=True,
            journal_dir=journal_dir,
            server_side=False,
            part_size=PART,
            part_concurrency=2,
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    assert len(await open_uploads(s3_client, bucket)) == 1
    first = sent(moto_server)
    result = await aqueuepipe.copy(
        src, dst, resume=True, journal_dir=journal_dir, server_side=False, part_size=PART
    )
    total = sent(moto_server)
    print(f"bytes at the server: {first} + {total - first} = {total} for {SIZE}")
    assert result.ok
    assert "source:crc64nvme" in result.verified, result.verified
    assert await get(s3_client, bucket, "copy.bin") == (tmp_path / "object.bin").read_bytes()
    assert total <= 1.3 * SIZE
    assert total - first < SIZE - first // 2
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


async def interrupt_upload_from_file(source: Path, dst: str, journal_dir: Path) -> None:
    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            source,
            dst,
            resume=True,
            journal_dir=journal_dir,
            part_size=PART,
            part_concurrency=2,
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    assert len(journals(journal_dir)) == 1


async def test_resume_starts_over_when_the_source_file_changed(
    endpoint: str,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    source_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = await make_bucket()
    dst = f"s3://{bucket}/big.bin"
    journal_dir = tmp_path / "journals"
    await interrupt_upload_from_file(source_file, dst, journal_dir)
    changed = payload(SIZE, seed=22)
    source_file.write_bytes(changed)
    stat = source_file.stat()
    os.utime(source_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    result = await aqueuepipe.copy(
        source_file, dst, resume=True, journal_dir=journal_dir, part_size=PART
    )

    assert result.ok and result.verified
    assert await get(s3_client, bucket, "big.bin") == changed
    assert "the source changed" in caplog.text
    assert await open_uploads(s3_client, bucket) == []  # the old one was aborted
    assert journals(journal_dir) == []


async def test_resume_starts_over_when_the_source_object_changed(
    endpoint: str,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = await make_source_object(make_bucket, tmp_path, SIZE)
    bucket = await make_bucket()
    dst = f"s3://{bucket}/copy.bin"
    journal_dir = tmp_path / "journals"

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            src,
            dst,
            resume=True,
            journal_dir=journal_dir,
            server_side=False,
            part_size=PART,
            part_concurrency=2,
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    replacement = tmp_path / "replacement.bin"
    replacement.write_bytes(payload(SIZE, seed=8))
    await aqueuepipe.copy(replacement, src, part_size=PART)

    result = await aqueuepipe.copy(
        src, dst, resume=True, journal_dir=journal_dir, server_side=False, part_size=PART
    )

    assert result.ok and result.verified
    assert await get(s3_client, bucket, "copy.bin") == replacement.read_bytes()
    assert "the source changed" in caplog.text
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


async def test_resume_starts_over_when_the_upload_was_aborted_meanwhile(
    endpoint: str,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    source_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = await make_bucket()
    dst = f"s3://{bucket}/big.bin"
    journal_dir = tmp_path / "journals"
    await interrupt_upload_from_file(source_file, dst, journal_dir)
    (upload,) = await open_uploads(s3_client, bucket)
    await s3_client.abort_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=upload["UploadId"]
    )

    result = await aqueuepipe.copy(
        source_file, dst, resume=True, journal_dir=journal_dir, part_size=PART
    )

    assert result.ok and result.verified
    assert await get(s3_client, bucket, "big.bin") == source_file.read_bytes()
    assert "is no longer on the server" in caplog.text
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"\x00garbage" + data[8:], id="corrupt"),
    ],
)
async def test_resume_starts_over_from_a_damaged_journal(
    endpoint: str,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    source_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Any,
) -> None:
    bucket = await make_bucket()
    dst = f"s3://{bucket}/big.bin"
    journal_dir = tmp_path / "journals"
    await interrupt_upload_from_file(source_file, dst, journal_dir)
    (journal,) = journals(journal_dir)
    journal.write_bytes(damage(journal.read_bytes()))

    result = await aqueuepipe.copy(
        source_file, dst, resume=True, journal_dir=journal_dir, part_size=PART
    )

    assert result.ok and result.verified
    assert await get(s3_client, bucket, "big.bin") == source_file.read_bytes()
    assert "cannot be read" in caplog.text and "starting the copy over" in caplog.text
    assert await open_uploads(s3_client, bucket) == []  # the old upload was aborted
    assert journals(journal_dir) == []


async def test_resume_reads_but_does_not_send_stored_parts_for_asked_hashes(
    endpoint: str,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    source_file: Path,
    tmp_path: Path,
) -> None:
    """A hash of the whole stream needs every byte: the stored parts are read again
    (and compared with what the server holds), not sent again."""
    bucket = await make_bucket()
    dst = f"s3://{bucket}/big.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            source_file,
            dst,
            resume=True,
            journal_dir=journal_dir,
            part_size=PART,
            part_concurrency=2,
            checksums=("sha256",),
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    first = sent(moto_server)
    result = await aqueuepipe.copy(
        source_file,
        dst,
        resume=True,
        journal_dir=journal_dir,
        part_size=PART,
        checksums=("sha256",),
    )
    total = sent(moto_server)

    data = source_file.read_bytes()
    assert result.ok and result.verified
    assert result.checksums["sha256"] == hashlib.sha256(data).hexdigest()
    assert total <= 1.3 * SIZE and total - first < SIZE - first // 2
    assert await get(s3_client, bucket, "big.bin") == data
    assert await open_uploads(s3_client, bucket) == []


async def test_resume_keeps_nothing_once_a_copy_completes(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, source_file: Path, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    journal_dir = tmp_path / "journals"
    result = await aqueuepipe.copy(
        source_file, f"s3://{bucket}/big.bin", resume=True, journal_dir=journal_dir, part_size=PART
    )
    assert result.ok and result.parts == SIZE // PART
    assert journals(journal_dir) == [] and journal_dir.exists()
    assert await open_uploads(s3_client, bucket) == []


async def test_resume_is_refused_for_a_stream_source(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()

    async def stream() -> Any:
        yield b"data"

    with pytest.raises(ValueError, match=r"resume=True.*stream"):
        await aqueuepipe.copy(stream(), f"s3://{bucket}/s.bin", resume=True)


def served(moto_server: MotoServer) -> int:
    """The GetObject response bytes the server wrote since the count was reset."""
    return moto_server.requests().sent.get("GetObject", 0)


def partial_downloads(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.aqueuepipe-part"))


async def test_resume_continues_an_interrupted_download(
    endpoint: str,
    moto_server: MotoServer,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    src = await make_source_object(make_bucket, tmp_path, SIZE)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "object.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            src,
            target,
            resume=True,
            journal_dir=journal_dir,
            max_rate=40 * MiB,
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    assert not target.exists()
    assert len(partial_downloads(out)) == 1 and len(journals(journal_dir)) == 1
    first = served(moto_server)
    result = await aqueuepipe.copy(src, target, resume=True, journal_dir=journal_dir)
    total = served(moto_server)

    print(f"download: {first} + {total - first} = {total} bytes served for {SIZE}")
    assert result.ok and "source:crc64nvme" in result.verified, result.verified
    assert target.read_bytes() == (tmp_path / "object.bin").read_bytes()
    assert total <= 1.3 * SIZE
    assert partial_downloads(out) == [] and journals(journal_dir) == []


async def test_resume_starts_a_download_over_when_the_source_changed(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = await make_source_object(make_bucket, tmp_path, SIZE)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "object.bin"
    journal_dir = tmp_path / "journals"

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            src,
            target,
            resume=True,
            journal_dir=journal_dir,
            max_rate=40 * MiB,
            progress=progress,
        )

    await interrupted(run, SIZE // 2)
    replacement = tmp_path / "replacement.bin"
    replacement.write_bytes(payload(SIZE, seed=9))
    await aqueuepipe.copy(replacement, src, part_size=PART)

    result = await aqueuepipe.copy(src, target, resume=True, journal_dir=journal_dir)

    assert result.ok and result.verified
    assert target.read_bytes() == replacement.read_bytes()
    assert "the source changed" in caplog.text
    assert partial_downloads(out) == [] and journals(journal_dir) == []


async def test_a_download_without_resume_keeps_no_partial_file(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    src = await make_source_object(make_bucket, tmp_path, SIZE)
    out = tmp_path / "out"
    out.mkdir()

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(src, out / "object.bin", max_rate=40 * MiB, progress=progress)

    await interrupted(run, SIZE // 2)
    assert partial_downloads(out) == []


def test_journal_dir_must_be_a_path(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="journal_dir"):
        aqueuepipe.transfer.build_options(journal_dir=3)  # type: ignore[typeddict-item]


# -- killed with SIGKILL at about 60 % ------------------------------------------------

BIG = 200 * MiB
_KILLED_COPY = """
import asyncio, sys
import aqueuepipe

asyncio.run(aqueuepipe.copy(
    sys.argv[1], sys.argv[2], resume=True, journal_dir=sys.argv[3], server_side=False,
    max_rate=int(sys.argv[4]),
))
"""


def kill_at(
    moto_server: MotoServer,
    args: list[str],
    fraction: float,
    size: int,
    count: Callable[[MotoServer], int] = sent,
) -> int:
    """Run the copy of ``args`` in a subprocess and SIGKILL it once the server has
    received ``fraction`` of ``size`` bytes (or ``count`` says it sent them); return
    that count then.

    The copy is capped at 50 MB/s, so that the mark is seen before it ends; the
    server's count is read every 20 ms, for at most 60 s.
    """
    process = subprocess.Popen([sys.executable, "-c", _KILLED_COPY, *args, "50000000"])
    try:
        deadline = time.monotonic() + 60
        while (received := count(moto_server)) < fraction * size:
            assert process.poll() is None, f"the copy ended (status {process.returncode})"
            assert time.monotonic() < deadline, f"only {received} bytes arrived in 60 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return received


async def test_resume_after_sigkill_of_an_upload_from_a_file(
    endpoint: str,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(payload(BIG, seed=60))
    bucket = await make_bucket()
    dst = f"s3://{bucket}/big.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    at_kill = await asyncio.to_thread(
        kill_at, moto_server, [str(source), dst, str(journal_dir)], 0.6, BIG
    )
    assert len(await open_uploads(s3_client, bucket)) == 1
    first = sent(moto_server)
    result = await aqueuepipe.copy(source, dst, resume=True, journal_dir=journal_dir)
    total = sent(moto_server)

    print(f"file: killed at {at_kill}, {first} + {total - first} = {total} bytes for {BIG}")
    assert result.ok and result.verified, result
    assert total <= 1.3 * BIG
    assert await get(s3_client, bucket, "big.bin") == source.read_bytes()
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


async def test_resume_after_sigkill_of_a_copy_between_buckets(
    endpoint: str,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    source = tmp_path / "object.bin"
    source.write_bytes(payload(BIG, seed=61))
    src_bucket = await make_bucket(prefix="src")
    src = f"s3://{src_bucket}/object.bin"
    await aqueuepipe.copy(source, src)
    bucket = await make_bucket()
    dst = f"s3://{bucket}/copy.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    at_kill = await asyncio.to_thread(kill_at, moto_server, [src, dst, str(journal_dir)], 0.6, BIG)
    assert len(await open_uploads(s3_client, bucket)) == 1
    first = sent(moto_server)
    result = await aqueuepipe.copy(
        src, dst, resume=True, journal_dir=journal_dir, server_side=False
    )
    total = sent(moto_server)

    print(f"s3: killed at {at_kill}, {first} + {total - first} = {total} bytes for {BIG}")
    assert result.ok, result
    assert "source:crc64nvme" in result.verified, result.verified
    assert total <= 1.3 * BIG
    assert await get(s3_client, bucket, "copy.bin") == source.read_bytes()
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


async def test_resume_after_sigkill_of_a_download(
    endpoint: str,
    moto_server: MotoServer,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    source = tmp_path / "object.bin"
    source.write_bytes(payload(BIG, seed=62))
    src_bucket = await make_bucket(prefix="src")
    src = f"s3://{src_bucket}/object.bin"
    await aqueuepipe.copy(source, src)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "object.bin"
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()

    at_kill = await asyncio.to_thread(
        kill_at, moto_server, [src, str(target), str(journal_dir)], 0.6, BIG, served
    )
    assert len(partial_downloads(out)) == 1
    first = served(moto_server)
    result = await aqueuepipe.copy(src, target, resume=True, journal_dir=journal_dir)
    total = served(moto_server)

    print(f"download: killed at {at_kill}, {first} + {total - first} = {total} for {BIG}")
    assert result.ok and "source:crc64nvme" in result.verified, result.verified
    assert total <= 1.3 * BIG
    assert target.read_bytes() == source.read_bytes()
    assert partial_downloads(out) == [] and journals(journal_dir) == []


async def test_resume_prunes_journals_untouched_for_a_week_with_their_uploads(
    endpoint: str,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    source_file: Path,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    journal_dir = tmp_path / "journals"
    await interrupt_upload_from_file(source_file, f"s3://{bucket}/old.bin", journal_dir)
    (old,) = journals(journal_dir)
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(old, (week_ago, week_ago))

    # A new run (pruning is once per process and directory).
    code = (
        "import asyncio, sys, aqueuepipe; asyncio.run(aqueuepipe.copy(sys.argv[1], sys.argv[2], "
        "resume=True, journal_dir=sys.argv[3]))"
    )
    args = [str(source_file), f"s3://{bucket}/new.bin", str(journal_dir)]
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code, *args], capture_output=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert b"pruned the journal of" in done.stderr
    assert await open_uploads(s3_client, bucket) == []  # old.bin's was aborted
    assert journals(journal_dir) == []
