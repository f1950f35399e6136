"""The mechanics of one copy: parts reserved from the budget, hashed and uploaded.

Memory: every byte a copy holds is counted in one :class:`~aqueuepipe.ByteBudget`.
A copy to S3 reserves a whole part from the budget before it reads the part,
reads the source straight into that buffer, and gives the bytes back when the
server has acknowledged the part.  Reserving whole parts means a copy never holds
some bytes while waiting for more, so any number of copies can share one budget
without deadlocking.  A download streams the body through an
:class:`~aqueuepipe.AsyncPipe` on the same budget into the local file.

Integrity: hashes are computed while the bytes pass (in a worker thread for large
buffers).  Each part's MD5 is checked against the ETag the server returns for it
before the upload is completed, and the final ETag against the MD5 of the part
MD5s, whenever the server's ETags are MD5-based (SSE-KMS, SSE-C and some
S3-compatible servers use other ETags; then only sizes and S3 checksums are
compared, so a good copy never fails).  A failed or cancelled multipart copy
aborts its upload, so no parts are left on the server; a failed download leaves
no file at the destination.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._budget import ByteBudget
from ._errors import ChecksumMismatchError, TransferError
from ._pipe import AsyncPipe
from .checksums import (
    OFFLOAD_THRESHOLD,
    StreamHashes,
    composite_checksum,
    etag_is_md5_based,
    multipart_etag,
    new_hasher,
    normalize_etag,
    s3_algorithm,
    single_etag,
)
from .files import FileSink, FileSource
from .s3._client import S3Client
from .s3._objects import MultipartUpload, ObjectStream, PartBody, open_object, retry_attempts
from .s3._parts import choose_part_size
from .s3._retry import RetryPolicy
from .s3._translate import Side
from .s3._urls import S3Url

if TYPE_CHECKING:
    from .transfer import TransferResult

__all__ = ["Copy", "Options", "ProgressListener"]


class ProgressListener(Protocol):
    """Receives progress of copies; :mod:`aqueuepipe.progress` has a terminal display."""

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        """A copy began; ``total`` is its size if known."""

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        """``nbytes`` more bytes of the copy reached the destination."""

    def transfer_finished(self, result: TransferResult) -> None:
        """The copy ended, successfully or not."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Validated options shared by every copy of a call."""

    part_size: int
    concurrency: int
    checksums: tuple[str, ...]
    checksum_algorithm: str | None  # aqueuepipe's name, e.g. "sha256"
    budget: ByteBudget
    progress: ProgressListener
    policy: RetryPolicy


# Open GetObject bodies per client that is used for both sides of copies. Each
# body holds a pooled connection for the whole copy; if the bodies took every
# connection, no part could be uploaded and the copies would wait for each other
# forever. So at most (pool size - 1) bodies are open per shared client.
_STREAM_SLOTS: weakref.WeakKeyDictionary[object, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _stream_slots(client: S3Client) -> asyncio.Semaphore:
    slots = _STREAM_SLOTS.get(client)
    if slots is None:
        config = getattr(client.meta, "config", None)
        pool = int(getattr(config, "max_pool_connections", None) or 10)
        slots = _STREAM_SLOTS[client] = asyncio.Semaphore(max(1, pool - 1))
    return slots


class _PartSource(Protocol):
    async def readinto(self, buf: memoryview) -> int: ...


class Copy:
    """The state of one copy while it runs."""

    def __init__(
        self, src: str, dst: str, src_loc: S3Url | Path, dst_loc: S3Url | Path, options: Options
    ) -> None:
        self.src = src
        self.dst = dst
        self.locations: dict[Side, S3Url | Path] = {"source": src_loc, "destination": dst_loc}
        self.options = options
        self.budget = options.budget
        self.hashes = StreamHashes(options.checksums)
        self.size: int | None = None
        self.etag: str | None = None
        self.parts = 0
        # Which side a failure is about, for the error message: updated as the
        # copy moves between reading the source and writing the destination.
        self.side: Side = "source"
        #: Requests botocore retried plus response bodies resumed.
        self.retries = 0
        #: The ETag the source had when the copy began (None for a local file).
        self.source_etag: str | None = None
        self._hash_tail: asyncio.Future[None] | None = None
        self._deadline: asyncio.Timeout | None = None

    def watch(self, deadline: asyncio.Timeout) -> None:
        """Push ``deadline`` back whenever bytes move: it measures stalls."""
        self._deadline = deadline
        self._progressed()

    def _progressed(self) -> None:
        deadline = self._deadline
        stall = self.options.policy.stall_timeout
        if deadline is not None and stall is not None:
            deadline.reschedule(asyncio.get_running_loop().time() + stall)

    def _count(self, response: Mapping[str, Any]) -> None:
        self.retries += retry_attempts(response)

    def object_on(self, side: Side) -> tuple[str, str | None]:
        """The (bucket, key) of ``side``; ("", None) for a local file."""
        location = self.locations[side]
        if isinstance(location, S3Url):
            return location.bucket, location.key
        return "", None

    # -- the three directions ---------------------------------------------------

    async def s3_to_s3(
        self, src_client: S3Client, src: S3Url, dst_client: S3Client, dst: S3Url
    ) -> None:
        self.side = "source"
        async with contextlib.AsyncExitStack() as stack:
            if src_client is dst_client:
                await stack.enter_async_context(_stream_slots(src_client))
            stream = await stack.enter_async_context(self._open(src_client, src))
            try:
                await self._upload(stream, stream.size, dst_client, dst)
            finally:
                self.retries += stream.retries

    async def file_to_s3(self, src: Path, dst_client: S3Client, dst: S3Url) -> None:
        self.side = "source"
        async with FileSource(src) as source:
            self.size = source.size
            self.options.progress.transfer_started(self.src, self.dst, source.size)
            await self._upload(source, source.size, dst_client, dst)

    async def s3_to_file(self, src_client: S3Client, src: S3Url, dst: Path) -> None:
        self.side = "destination"
        async with FileSink(dst) as sink:  # checks the target before any request
            self.side = "source"
            async with self._open(src_client, src) as stream:
                try:
                    await self._download(stream, sink)
                finally:
                    self.retries += stream.retries
            self._check_download_etag(stream)
            self.side = "destination"
            await sink.commit()

    @contextlib.asynccontextmanager
    async def _open(self, client: S3Client, url: S3Url) -> AsyncIterator[ObjectStream]:
        async with open_object(client, url, policy=self.options.policy) as stream:
            stream.on_progress = self._progressed
            self.size = stream.size
            self.source_etag = stream.etag
            self.options.progress.transfer_started(self.src, self.dst, stream.size)
            yield stream

    # -- upload -----------------------------------------------------------------

    async def _upload(self, source: _PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        part_size = choose_part_size(size, self.options.part_size)
        if part_size > self.budget.limit:
            raise ValueError(
                f"the memory limit ({self.budget.limit} bytes) cannot hold one part of "
                f"{part_size} bytes, the size needed to copy {size} bytes in 10,000 parts"
            )
        if size < part_size:
            await self._put(source, size, client, dst)
        else:
            await self._multipart(source, size, part_size, client, dst)

    async def _put(self, source: _PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        async with self.budget.reserve(size):
            part = _Part(size)
            self._check_length(await part.fill(source), size)
            await self._check_eof(source)
            md5, checksum = await self._hash_part(part, whole=True)
            kwargs: dict[str, Any] = {
                "Bucket": dst.bucket,
                "Key": dst.key,
                "Body": part.body,
                "ContentLength": size,
            }
            algorithm = self.options.checksum_algorithm
            if algorithm is not None and checksum is not None:
                kwargs["ChecksumAlgorithm"] = s3_algorithm(algorithm)
                kwargs[f"Checksum{s3_algorithm(algorithm)}"] = checksum
            self.side = "destination"
            response = await client.put_object(**kwargs)
            self._count(response)
        etag = str(response["ETag"])
        self._check_etag(response, single_etag(md5))
        if algorithm is not None and checksum is not None:
            self._check_s3_checksum(response, checksum)
        self.etag = etag
        self.options.progress.transfer_advanced(self.src, self.dst, size)

    async def _multipart(
        self, source: _PartSource, size: int, part_size: int, client: S3Client, dst: S3Url
    ) -> None:
        algorithm = self.options.checksum_algorithm
        upload = MultipartUpload(
            client, dst, checksum_algorithm=s3_algorithm(algorithm) if algorithm else None
        )
        part_md5s: dict[int, bytes] = {}
        part_checksums: dict[int, bytes] = {}
        slots = asyncio.Semaphore(self.options.concurrency)
        try:
            self.side = "destination"
            await upload.create()
            async with asyncio.TaskGroup() as tg:
                offset = 0
                number = 0
                while offset < size:
                    number += 1
                    length = min(part_size, size - offset)
                    # A slot, then the part's bytes; both are given back by
                    # _send_part once the server has the part, or here on failure.
                    await slots.acquire()
                    try:
                        await self.budget.acquire(length)
                    except BaseException:
                        slots.release()
                        raise
                    try:
                        part = _Part(length)
                        self.side = "source"
                        got = await part.fill(source)
                        self._progressed()
                        self._check_length(offset + got, size, offset + length)
                    except BaseException:
                        self.budget.release(length)
                        slots.release()
                        raise
                    tg.create_task(
                        self._send_part(upload, number, part, slots, part_md5s, part_checksums)
                    )
                    # The task owns the part now.  Kept here, it would stay alive while
                    # the loop waits for the next part's bytes, after _send_part gave
                    # its bytes back: one part per copy held outside the budget.
                    del part
                    offset += length
                await self._check_eof(source)
            self.parts = number
            self.side = "destination"
            response = await upload.complete()
            self._count(response)
        except BaseException:
            await upload.abort()
            raise
        ordered_md5s = [part_md5s[n] for n in sorted(part_md5s)]
        self._check_etag(response, multipart_etag(ordered_md5s))
        if algorithm is not None:
            ordered = [part_checksums[n] for n in sorted(part_checksums)]
            self._check_s3_checksum(response, composite_checksum(algorithm, ordered))
        self.etag = str(response["ETag"])

    async def _send_part(
        self,
        upload: MultipartUpload,
        number: int,
        part: _Part,
        slots: asyncio.Semaphore,
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
    ) -> None:
        """Hash and upload one part, then give its bytes back to the budget."""
        try:
            md5, checksum = await self._hash_part(part)
            self.side = "destination"
            response = await upload.upload_part(number, part.body, part.size, checksum)
            self._count(response)
            self._progressed()
            self._check_etag(response, md5.hex(), what=f"ETag of part {number}")
            part_md5s[number] = md5
            if checksum is not None:
                part_checksums[number] = base64.b64decode(checksum)
            self.options.progress.transfer_advanced(self.src, self.dst, part.size)
        finally:
            self.budget.release(part.size)
            slots.release()

    async def _hash_part(self, part: _Part, *, whole: bool = False) -> tuple[bytes, str | None]:
        """Hash a part: the stream hashes in order, plus its own MD5 and S3 checksum.

        Parts are hashed one after another in source order (the stream hashes
        depend on it), in a worker thread while other parts download and upload
        (parts below ``OFFLOAD_THRESHOLD`` on the event loop: the hop costs more).
        A part that is the ``whole`` object reuses the stream's MD5 and checksum
        when those are computed anyway, so no byte is hashed twice.
        """
        previous = self._hash_tail
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hash_tail = mine
        algorithm = self.options.checksum_algorithm

        def work() -> tuple[bytes, str | None]:
            with part.body.getbuffer() as view:
                self.hashes.update(view)
                done = self.hashes.digests() if whole else {}
                md5 = done.get("md5") or hashlib.md5(view, usedforsecurity=False).digest()
                checksum = None
                if algorithm is not None:
                    if algorithm in done:
                        checksum = base64.b64encode(done[algorithm]).decode()
                    else:
                        hasher = new_hasher(algorithm)
                        hasher.update(view)
                        checksum = hasher.b64digest()
            return md5, checksum

        try:
            if previous is not None:
                await previous
            if part.size < OFFLOAD_THRESHOLD:
                # Small parts: hashing takes less than the hop to a worker thread.
                return work()
            return await asyncio.to_thread(work)
        finally:
            if not mine.done():
                mine.set_result(None)

    # -- download ---------------------------------------------------------------

    async def _download(self, stream: ObjectStream, sink: FileSink) -> None:
        async with AsyncPipe(budget=self.budget) as pipe:

            async def produce() -> None:
                try:
                    while chunk := await stream.read():
                        await pipe.write(chunk)
                except BaseException as exc:
                    pipe.abort(exc)
                    raise
                pipe.close()

            async def consume() -> None:
                try:
                    async for chunk in pipe:
                        await self.hashes.aupdate(chunk)
                        await sink.write(chunk)
                        self._progressed()
                        self.options.progress.transfer_advanced(self.src, self.dst, len(chunk))
                except BaseException as exc:
                    pipe.abort(exc)
                    raise

            async with asyncio.TaskGroup() as tg:
                tg.create_task(produce())
                tg.create_task(consume())
        self._check_length(pipe.bytes_read, stream.size)

    def _check_download_etag(self, stream: ObjectStream) -> None:
        self.etag = stream.etag
        md5 = self.hashes.hexdigests().get("md5")
        if md5 is not None and "-" not in stream.etag:  # a multipart ETag is no MD5 of the bytes
            self._check_etag(stream.response, md5)

    # -- checks -----------------------------------------------------------------

    def _check_length(self, got: int, size: int, expected: int | None = None) -> None:
        want = size if expected is None else expected
        if got != want:
            raise TransferError(self.src, self.dst, f"the source ended after {got} of {size} bytes")

    async def _check_eof(self, source: _PartSource) -> None:
        probe = bytearray(1)
        if await source.readinto(memoryview(probe)):
            raise TransferError(
                self.src, self.dst, f"the source grew beyond its size of {self.size} bytes"
            )

    def _check_etag(
        self, response: Mapping[str, Any], expected_md5_hex: str, *, what: str = "ETag"
    ) -> None:
        """Compare an ETag with the MD5 we computed, where the ETag is MD5-based.

        SSE-KMS and SSE-C objects have ETags that look MD5-based but are not, so
        those are skipped, as are ETags of another form (some S3-compatible
        servers): a good copy must never fail on them.
        """
        etag = str(response["ETag"])
        if response.get("ServerSideEncryption", "").startswith("aws:kms") or response.get(
            "SSECustomerAlgorithm"
        ):
            return
        if etag_is_md5_based(etag) and normalize_etag(etag) != expected_md5_hex:
            raise ChecksumMismatchError(
                self.src, self.dst, what, expected_md5_hex, normalize_etag(etag)
            )

    def _check_s3_checksum(self, response: Mapping[str, Any], expected: str) -> None:
        algorithm = self.options.checksum_algorithm
        assert algorithm is not None
        reported = response.get(f"Checksum{s3_algorithm(algorithm)}")
        if reported is not None and str(reported) != expected:
            raise ChecksumMismatchError(self.src, self.dst, algorithm, expected, str(reported))


class _Part:
    """One part's bytes, in the :class:`PartBody` the HTTP client streams the request from.

    The body is sent in slices with flow control (a raw bytes body would be
    copied into the socket buffer whole), and botocore rewinds it to resend the
    part on a retry.  The buffer is sized once and filled in place through
    ``getbuffer()``, so the part exists in memory exactly once.
    """

    __slots__ = ("body", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.body = PartBody()
        if size:
            self.body.seek(size - 1)
            self.body.write(b"\0")
            self.body.seek(0)

    async def fill(self, source: _PartSource) -> int:
        """Read the source into the part; return the bytes read (fewer only at EOF)."""
        with self.body.getbuffer() as view:
            return await source.readinto(view)
