"""resume=True: an interrupted multipart upload is continued, not sent again.

The bytes each run sends are counted where they arrive, by the test server's
middleware (``moto_server.requests().bytes["UploadPart"]``).

Each behaviour that holds for every direction is one test over three ``Pair``s: an
upload from a file, a copy between buckets and a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

import aqueuepipe
import aqueuepipe.transfer
from aqueuepipe import TransferResult
from aqueuepipe.s3 import S3Client
from aqueuepipe.s3._endpoints import forget_endpoints
from aqueuepipe.testing import MotoServer

from .._helpers import MakeBucket, MiB, get, interrupted, key_exists, open_uploads, payload
from ..faultproxy import Exchange, FaultProxy, Match

SIZE = 40 * MiB
PART = 5 * MiB
DIRECTIONS = ("upload", "between-buckets", "download")


def journals(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.exists() else []


def sent(moto_server: MotoServer) -> int:
    """The request bytes the server received (every operation) since the count was reset."""
    return sum(moto_server.requests().bytes.values())


def served(moto_server: MotoServer) -> int:
    """The GetObject response bytes the server wrote since the count was reset."""
    return moto_server.requests().sent.get("GetObject", 0)


def partial_downloads(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.aqueuepipe-part"))


class Source:
    """A pair's source: the local file ``path``, or the object ``url`` written from it
    by aqueuepipe (so that it has a FULL_OBJECT CRC64NVME)."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = path
        self.url = url
        self.src: str | Path = path if url is None else url
        self.evidence = () if url is None else ("source:crc64nvme",)
        """What ``result.verified`` names for a copy from this source."""

    async def replace(self, seed: int) -> None:
        """Give the source other bytes, newer than any journal's."""
        self.path.write_bytes(payload(self.path.stat().st_size, seed=seed))
        if self.url is None:
            stat = self.path.stat()
            os.utime(self.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        else:
            await aqueuepipe.copy(self.path, self.url, part_size=PART)


class ObjectDestination:
    """A pair's destination object ``copy.bin``; its copies are paced by
    part_concurrency=2 and counted by the bytes the server received."""

    pace: ClassVar[dict[str, Any]] = {"part_concurrency": 2}
    count = staticmethod(sent)

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.dst = f"s3://{bucket}/copy.bin"

    async def content(self) -> bytes | None:
        if not await key_exists(self.client, self.bucket, "copy.bin"):
            return None
        return await get(self.client, self.bucket, "copy.bin")

    async def left_open(self) -> list[Any]:
        """The multipart uploads not completed nor aborted."""
        return await open_uploads(self.client, self.bucket)


class FileDestination:
    """A pair's destination file ``object.bin`` in ``directory``; its downloads are
    paced by max_rate and counted by the GetObject bytes the server sent."""

    pace: ClassVar[dict[str, Any]] = {"max_rate": 40 * MiB}
    count = staticmethod(served)

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.directory = directory
        self.dst = directory / "object.bin"

    async def content(self) -> bytes | None:
        return self.dst.read_bytes() if self.dst.exists() else None

    async def left_open(self) -> list[Any]:
        """The partial files of downloads not completed."""
        return list(partial_downloads(self.directory))


@dataclass
class Pair:
    """A source and a destination in one direction; ``options`` go to every copy."""

    source: Source
    destination: ObjectDestination | FileDestination
    journal_dir: Path
    options: dict[str, Any]

    def count(self, moto_server: MotoServer) -> int:
        return self.destination.count(moto_server)

    async def copy(self, **extra: Any) -> TransferResult:
        return await aqueuepipe.copy(
            self.source.src,
            self.destination.dst,
            resume=True,
            journal_dir=self.journal_dir,
            **self.options,
            **extra,
        )

    async def interrupt(self, **extra: Any) -> None:
        """Copy with resume=True, cancelled half way: one journal and one upload or
        partial file remain, and nothing is at the destination yet."""

        async def run(progress: Any) -> None:
            await self.copy(progress=progress, **self.destination.pace, **extra)

        await interrupted(run, self.source.path.stat().st_size // 2)
        assert len(journals(self.journal_dir)) == 1
        assert len(await self.destination.left_open()) == 1, "the upload was not kept open"
        assert await self.destination.content() is None

    async def check_complete(self, result: TransferResult) -> None:
        """The copy completed and verified, with the source's bytes at the destination
        and nothing left over."""
        assert result.ok and result.verified, result
        assert set(self.source.evidence) <= set(result.verified), result.verified
        assert await self.destination.content() == self.source.path.read_bytes()
        assert await self.destination.left_open() == []
        assert journals(self.journal_dir) == []


MakePair = Callable[..., Awaitable[Pair]]


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journals"


@pytest.fixture
def make_pair(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path, journal_dir: Path
) -> MakePair:
    """``await make_pair(direction, size=SIZE, seed=7, part_size=PART)``: a source of
    ``size`` bytes and a destination in ``direction`` (one of DIRECTIONS), copied in
    parts of ``part_size`` (None: the default)."""

    async def make(
        direction: str, size: int = SIZE, seed: int = 7, part_size: int | None = PART
    ) -> Pair:
        path = tmp_path / "source.bin"
        path.write_bytes(payload(size, seed=seed))
        sized = {} if part_size is None else {"part_size": part_size}
        if direction == "upload":
            source = Source(path)
        else:
            url = f"s3://{await make_bucket(prefix='src')}/object.bin"
            await aqueuepipe.copy(path, url, **sized)
            source = Source(path, url)
        if direction == "download":
            return Pair(source, FileDestination(tmp_path / "out"), journal_dir, {})
        destination = ObjectDestination(s3_client, await make_bucket())
        options = sized if direction == "upload" else {"server_side": False, **sized}
        return Pair(source, destination, journal_dir, options)

    return make


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_resume_continues_an_interrupted_copy(
    moto_server: MotoServer, make_pair: MakePair, direction: str
) -> None:
    pair = await make_pair(direction)
    moto_server.reset_requests()

    await pair.interrupt()
    first = pair.count(moto_server)
    result = await pair.copy()
    total = pair.count(moto_server)

    print(f"{direction}: {first} + {total - first} = {total} bytes at the server for {SIZE}")
    await pair.check_complete(result)
    assert total <= 1.3 * SIZE, f"{first} then {total - first} bytes sent for {SIZE}"
    assert total - first < SIZE - first // 2


@pytest.mark.parametrize("direction", ["upload", "between-buckets"])
async def test_resume_takes_parts_stored_but_not_yet_journaled(
    moto_server: MotoServer,
    s3_client: S3Client,
    make_pair: MakePair,
    journal_dir: Path,
    direction: str,
) -> None:
    """A run killed after the server stored parts but before the journal said so:
    ListParts shows them, the source's bytes are read again and compared with
    them, and only the parts the server does not hold are sent."""
    pair = await make_pair(direction)
    await pair.interrupt()
    (journal,) = journals(journal_dir)
    record = json.loads(journal.read_text())
    record["parts"] = record["parts"][:1]
    journal.write_text(json.dumps(record))
    (upload,) = await pair.destination.left_open()
    listed = await s3_client.list_parts(
        Bucket=upload_bucket(pair), Key="copy.bin", UploadId=upload["UploadId"]
    )
    held = sum(part["Size"] for part in listed["Parts"])
    assert held >= 2 * PART, listed["Parts"]
    moto_server.reset_requests()

    result = await pair.copy()

    await pair.check_complete(result)
    # At most what the server lacked when it was listed: a part in flight at the
    # cancellation may have been stored since.
    assert moto_server.requests().bytes.get("UploadPart", 0) <= SIZE - held


async def test_resume_continues_a_copy_the_server_makes(
    endpoint: str,
    moto_server: MotoServer,
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
    journal_dir: Path,
) -> None:
    """A copy within one endpoint is made by the server (UploadPartCopy).  Cancelled
    while its fifth of eight parts is held at the proxy, it keeps its upload and its
    journal, and the re-run copies only the four parts the server lacks."""
    path = tmp_path / "source.bin"
    path.write_bytes(payload(SIZE, seed=9))
    src_bucket, dst_bucket = await make_bucket(prefix="src"), await make_bucket()
    src, dst = f"s3://{src_bucket}/object.bin", f"s3://{dst_bucket}/copy.bin"
    await aqueuepipe.copy(path, src, part_size=PART)
    options: dict[str, Any] = {
        "resume": True,
        "journal_dir": journal_dir,
        "part_concurrency": 1,
        "endpoint_url": fault_proxy.endpoint_url,
    }
    fifth = asyncio.Event()
    seen = []

    def count(exchange: Exchange) -> bool:
        seen.append(exchange)
        if len(seen) == 5:
            fifth.set()
        return True

    fault_proxy.stall(
        Match(operation="UploadPartCopy", where=count), seconds=60, times=None, skip=4
    )
    task = asyncio.create_task(aqueuepipe.copy(src, dst, **options))
    waiter = asyncio.create_task(fifth.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    fault_proxy.clear()
    assert len(journals(journal_dir)) == 1
    assert len(await open_uploads(s3_client, dst_bucket)) == 1, "the upload was not kept open"
    moto_server.reset_requests()

    result = await aqueuepipe.copy(src, dst, **options)

    counts = moto_server.requests().counts
    assert counts.get("UploadPartCopy") == 4, counts
    assert "CreateMultipartUpload" not in counts and "UploadPart" not in counts, counts
    assert result.ok and result.parts == SIZE // PART
    assert await get(s3_client, dst_bucket, "copy.bin") == path.read_bytes()
    assert await open_uploads(s3_client, dst_bucket) == []
    assert journals(journal_dir) == []


async def test_resume_continues_on_the_md5_path_an_upload_begun_so_in_another_process(
    endpoint: str,
    moto_server: MotoServer,
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
    journal_dir: Path,
) -> None:
    """A server that refuses checksum headers made the first run fall back to
    Content-MD5.  A new process (its endpoint registry empty) would send its
    checksum again and find the journal's parts "carry other checksums": it
    started over.  It now goes on with Content-MD5."""
    path = tmp_path / "source.bin"
    path.write_bytes(payload(SIZE, seed=11))
    bucket = await make_bucket()
    dst = f"s3://{bucket}/copy.bin"
    fault_proxy.reject_checksum_requests()
    options: dict[str, Any] = {
        "resume": True,
        "journal_dir": journal_dir,
        "part_size": PART,
        "endpoint_url": fault_proxy.endpoint_url,
    }

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(path, dst, progress=progress, part_concurrency=2, **options)

    await interrupted(run, SIZE // 2)
    (journal,) = journals(journal_dir)
    assert json.loads(journal.read_text())["algorithm"] is None  # the MD5 path
    (upload,) = await open_uploads(s3_client, bucket)
    listed = await s3_client.list_parts(Bucket=bucket, Key="copy.bin", UploadId=upload["UploadId"])
    held = sum(part["Size"] for part in listed["Parts"])
    forget_endpoints()  # as a new process starts
    moto_server.reset_requests()

    result = await aqueuepipe.copy(path, dst, **options)

    assert result.ok and result.verified, result
    # At most what the server lacked when it was listed (a part in flight at the
    # cancellation may be stored since), and the digest probe's 1-byte part.
    assert held >= 2 * PART, listed["Parts"]
    assert moto_server.requests().bytes.get("UploadPart", 0) <= SIZE - held + 1
    assert await get(s3_client, bucket, "copy.bin") == path.read_bytes()
    assert await open_uploads(s3_client, bucket) == []
    assert journals(journal_dir) == []


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_resume_starts_over_when_the_source_changed(
    make_pair: MakePair, direction: str, caplog: pytest.LogCaptureFixture
) -> None:
    pair = await make_pair(direction)
    await pair.interrupt()
    await pair.source.replace(seed=8)

    result = await pair.copy()

    await pair.check_complete(result)  # with the new bytes; the old upload was aborted
    assert "the source changed" in caplog.text


async def test_resume_starts_over_when_the_upload_was_aborted_meanwhile(
    s3_client: S3Client, make_pair: MakePair, caplog: pytest.LogCaptureFixture
) -> None:
    pair = await make_pair("upload")
    await pair.interrupt()
    (upload,) = await pair.destination.left_open()
    await s3_client.abort_multipart_upload(
        Bucket=upload_bucket(pair), Key="copy.bin", UploadId=upload["UploadId"]
    )

    result = await pair.copy()

    await pair.check_complete(result)
    assert "is no longer on the server" in caplog.text


def upload_bucket(pair: Pair) -> str:
    assert isinstance(pair.destination, ObjectDestination)
    return pair.destination.bucket


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"\x00garbage" + data[8:], id="corrupt"),
    ],
)
async def test_resume_starts_over_from_a_damaged_journal(
    make_pair: MakePair, journal_dir: Path, caplog: pytest.LogCaptureFixture, damage: Any
) -> None:
    pair = await make_pair("upload")
    await pair.interrupt()
    (journal,) = journals(journal_dir)
    journal.write_bytes(damage(journal.read_bytes()))

    result = await pair.copy()

    await pair.check_complete(result)  # the old upload was aborted
    assert "cannot be read" in caplog.text and "starting the copy over" in caplog.text


async def test_resume_reads_but_does_not_send_stored_parts_for_asked_hashes(
    moto_server: MotoServer, make_pair: MakePair
) -> None:
    """A hash of the whole stream needs every byte: the stored parts are read again
    (and compared with what the server holds), not sent again."""
    pair = await make_pair("upload")
    moto_server.reset_requests()

    await pair.interrupt(checksums=("sha256",))
    first = sent(moto_server)
    result = await pair.copy(checksums=("sha256",))
    total = sent(moto_server)

    await pair.check_complete(result)
    assert result.checksums["sha256"] == hashlib.sha256(pair.source.path.read_bytes()).hexdigest()
    assert total <= 1.3 * SIZE and total - first < SIZE - first // 2


async def test_resume_keeps_nothing_once_a_copy_completes(
    make_pair: MakePair, journal_dir: Path
) -> None:
    pair = await make_pair("upload")

    result = await pair.copy()

    await pair.check_complete(result)
    assert result.parts == SIZE // PART and journal_dir.exists()


async def test_resume_is_refused_for_a_stream_source(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()

    async def stream() -> Any:
        yield b"data"

    with pytest.raises(ValueError, match=r"resume=True.*stream"):
        await aqueuepipe.copy(stream(), f"s3://{bucket}/s.bin", resume=True)


async def test_a_download_without_resume_keeps_no_partial_file(make_pair: MakePair) -> None:
    pair = await make_pair("download")
    assert isinstance(pair.destination, FileDestination)

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            pair.source.src, pair.destination.dst, max_rate=40 * MiB, progress=progress
        )

    await interrupted(run, SIZE // 2)
    assert await pair.destination.left_open() == []


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


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_resume_after_sigkill(
    moto_server: MotoServer, make_pair: MakePair, journal_dir: Path, direction: str
) -> None:
    pair = await make_pair(direction, BIG, seed=60, part_size=None)
    args = [str(pair.source.src), str(pair.destination.dst), str(journal_dir)]
    moto_server.reset_requests()

    at_kill = await asyncio.to_thread(kill_at, moto_server, args, 0.6, BIG, pair.count)
    assert len(await pair.destination.left_open()) == 1
    first = pair.count(moto_server)
    result = await pair.copy()
    total = pair.count(moto_server)

    print(f"{direction}: killed at {at_kill}, {first} + {total - first} = {total} for {BIG}")
    await pair.check_complete(result)
    assert total <= 1.3 * BIG


async def test_resume_prunes_journals_untouched_for_a_week_with_their_uploads(
    make_pair: MakePair, journal_dir: Path
) -> None:
    pair = await make_pair("upload")
    await pair.interrupt()
    (old,) = journals(journal_dir)
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(old, (week_ago, week_ago))

    # A new run (pruning is once per process and directory).
    code = (
        "import asyncio, sys, aqueuepipe; asyncio.run(aqueuepipe.copy(sys.argv[1], sys.argv[2], "
        "resume=True, journal_dir=sys.argv[3]))"
    )
    args = [str(pair.source.path), f"s3://{upload_bucket(pair)}/new.bin", str(journal_dir)]
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code, *args], capture_output=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert b"pruned the journal of" in done.stderr
    assert await pair.destination.left_open() == []  # the interrupted copy's was aborted
    assert journals(journal_dir) == []
