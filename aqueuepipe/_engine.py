"""The mechanics of one copy: parts reserved from the budget, hashed and uploaded.

Memory: every byte a copy holds is counted in one :class:`~aqueuepipe.ByteBudget`.
A copy to S3 reserves a whole part from the budget before it reads the part,
reads the source straight into that buffer, and gives the bytes back when the
server has acknowledged the part.  Reserving whole parts means a copy never holds
some bytes while waiting for more, so any number of copies can share one budget
without deadlocking.  A download streams the body through an
:class:`~aqueuepipe.AsyncPipe` on the same budget into the local file.

Integrity (see :mod:`aqueuepipe._verify`): the bytes read from an S3 source are
checked against the source's own evidence before anything is committed (the
single PUT, CompleteMultipartUpload, the rename of a download); a mismatch is
read again, pinned to the source's ETag, within the retry policy.  Every upload
request carries checksum headers computed from its buffer, and the server's
answers are compared with them; a part or PUT the server got wrong is sent again
from the buffer, which stays in the budget until it is proven stored.  A failed
or cancelled multipart copy aborts its upload, so no parts are left on the
server; a failed download leaves no file at the destination; a new key found
holding wrong bytes is deleted.

Errors are translated where each call is made, with the side that call is about
(:meth:`Copy.errors`), never from state the tasks of a copy share.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from ._errors import ChecksumMismatchError, TransferError
from ._job import ChecksumRefused, Job, decisions_unwrapped
from ._pipe import AsyncPipe
from ._resume import Resumable, ResumedDownload
from ._streams import StreamSink, StreamSource
from ._upload import Uploader
from ._verify import Sending, SourceCheck, SourceMismatch
from ._verify import needs_layout as _needs_layout
from .local import FileSink, FileSource
from .s3._client import S3Client
from .s3._endpoints import note_checksum_headers_refused, validates_digests
from .s3._layout import PartLayout, part_layout
from .s3._objects import CHUNK_READ_SIZE, ObjectStream, open_object
from .s3._urls import S3Url

__all__ = ["Copy"]


class Copy:
    """One copy in one direction: S3 to S3, a file or a stream to S3, S3 to a file
    or a stream; what it does and finds is recorded in ``job``."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._uploader = Uploader(job)
        #: The source's part layout, asked once per copy (re-reads are pinned to
        #: the same ETag), and where it was asked, to confirm it after a mismatch.
        self._layout: PartLayout | None = None
        self._layout_asked: tuple[S3Client, S3Url] | None = None

    # -- the three directions ---------------------------------------------------

    async def s3_to_s3(
        self,
        src_client: S3Client,
        src: S3Url,
        dst_client: S3Client,
        dst: S3Url,
        body_slot: contextlib.AbstractAsyncContextManager[None],
    ) -> None:
        """Copy between objects; ``body_slot`` is held while the source's body is open.

        What the uploads carry is chosen once the source answered (it keeps the
        source's CRC), on every read.
        """
        async with body_slot:

            async def once() -> None:
                async with self._open(src_client, src, keep_layout=True) as stream:
                    self.job.attempt.sending = await self._choose_sending(
                        dst_client, stream.response
                    )
                    self.job.attempt.headers = self.job.options.settings.headers(
                        source=stream.response, tag_set=await self._source_tags(src_client, src)
                    )
                    resumable = Resumable({"etag": stream.etag, "size": stream.size}, stream.seek)
                    try:
                        await self._uploader.upload(
                            stream,
                            stream.size,
                            dst_client,
                            dst,
                            stream,
                            resumable,
                            layout=self._layout,
                        )
                    finally:
                        self.job.retries += stream.retries

            await self._reading_again(once)

    async def file_to_s3(self, src: Path, dst_client: S3Client, dst: S3Url) -> None:
        self.job.attempt.sending = await self._choose_sending(dst_client)

        async def once() -> None:
            async with contextlib.AsyncExitStack() as stack:
                with self.job.errors("source"):
                    source = await stack.enter_async_context(FileSource(src))
                self.job.size = source.size
                self.job.attempt.headers = self.job.options.settings.headers(path=src)
                self.job.options.progress.transfer_started(self.job.src, self.job.dst, source.size)
                resumable = Resumable(
                    {"size": source.size, "mtime_ns": source.mtime_ns}, source.seek
                )
                await self._uploader.upload(source, source.size, dst_client, dst, None, resumable)

        await self._reading_again(once)

    async def stream_to_s3(self, source: StreamSource, dst_client: S3Client, dst: S3Url) -> None:
        """Upload a stream of unknown length; it cannot be read twice, so a server
        refusing checksum headers mid-upload fails the copy instead of restarting it."""
        self.job.attempt.sending = await self._choose_sending(dst_client)
        self.job.attempt.headers = self.job.options.settings.headers()
        self.job.options.progress.transfer_started(self.job.src, self.job.dst, None)
        source.on_progress = self.job.progressed
        try:
            await self._uploader.upload_stream(source, dst_client, dst)
        except ChecksumRefused as refused:
            note_checksum_headers_refused(refused.endpoint_url)
            raise TransferError(
                self.job.src,
                self.job.dst,
                "destination: the server refused the checksum header of a part; the stream "
                "cannot be read again (copies to this endpoint now use Content-MD5)",
                side="destination",
            ) from None

    async def s3_to_stream(self, src_client: S3Client, src: S3Url, sink: StreamSink) -> None:
        """Stream an object into a consumer: verified at the end, before a pipe is
        closed.  What was passed on cannot be taken back, so a bad read fails."""
        try:
            # Required evidence cannot wait for a second read: the layout is asked whole.
            required = self.job.options.verify == "required"
            async with self._open(src_client, src, confirm=required) as stream:
                try:
                    await self._download(stream, sink)
                finally:
                    self.job.retries += stream.retries
                self.job.etag = stream.etag
            try:
                self.job.verify_source()
            except SourceMismatch as exc:
                if exc.layout_confirmed or not await self._layout_was_not_the_objects():
                    raise ChecksumMismatchError(
                        self.job.src, self.job.dst, exc.evidence, exc.computed, exc.stored, "source"
                    ) from None
                # What was passed on cannot be read again in the object's layout.
                self._require_source_evidence()
        except BaseException as exc:
            await sink.fail(exc)
            raise
        with self.job.errors("destination"):
            await sink.finish()

    async def s3_to_file(self, src_client: S3Client, src: S3Url, dst: Path) -> None:
        """Download into a temporary file renamed into place once verified; with
        ``resume=True`` a failed or interrupted download keeps it (and a journal),
        and the next run continues it with a Range GET pinned by ``If-Match``."""
        download = (
            ResumedDownload(self.job, src_client, src, dst) if self.job.options.resume else None
        )

        async def once() -> None:
            found = await download.find() if download is not None else None
            async with contextlib.AsyncExitStack() as stack:
                resume = (found.journal.temp, found.offset) if found is not None else None
                with self.job.errors("destination"):  # checks the target before any request
                    sink = await stack.enter_async_context(FileSink(dst, resume=resume))
                sink.keep = download is not None
                try:
                    if found is not None:
                        self.job.source_etag = found.journal.etag
                    async with self._open(
                        src_client,
                        src,
                        start=found.offset if found is not None else 0,
                        evidence=found.head if found is not None else None,
                    ) as stream:
                        if download is not None and found is None:
                            assert sink.temp is not None
                            await download.started(sink.temp, stream.etag, stream.size)
                        if found is not None:
                            await self._take_existing(found.journal.temp, found.offset)
                        try:
                            await self._download(stream, sink)
                        finally:
                            self.job.retries += stream.retries
                    self.job.verify_source()
                    self.job.etag = stream.etag
                    with self.job.errors("destination"):
                        await sink.commit()
                        await _set_mtime(dst, stream.response.get("LastModified"))
                except BaseException as exc:
                    if download is not None:
                        if download.journal is None or isinstance(
                            exc, SourceMismatch | ChecksumMismatchError
                        ):
                            sink.discard()  # what it holds is wrong: start over
                            download.finished()
                        else:
                            download.kept(exc)
                    raise
            if download is not None:
                download.finished()

        await self._reading_again(once)

    async def _take_existing(self, temp: Path, length: int) -> None:
        """Hash the first ``length`` bytes of a resumed download's temporary file,
        as if they had just been read (the check of the source needs every byte)."""
        hashes, check = self.job.attempt.hashes, self.job.attempt.check

        def work() -> None:
            with open(temp, "rb") as file:
                left = length
                while left:
                    chunk = file.read(min(left, 1024 * 1024))
                    if not chunk:
                        raise OSError(f"{temp} is shorter than the {length} bytes it had")
                    hashes.update(chunk)
                    if check is not None:
                        check.update(chunk)
                    left -= len(chunk)

        with self.job.errors("destination"):
            await asyncio.to_thread(work)
        self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, length)

    async def _reading_again(self, once: Callable[[], Awaitable[None]]) -> None:
        """Run ``once`` again while what it read disagrees with the source's evidence.

        Each run starts from scratch (the source pinned to the ETag of the first
        read); a persistent mismatch fails after the retry policy's attempts.  A
        server that refuses the checksum header of a part gets the MD5 path.
        """
        reads = 0
        while True:
            self.job.read_again()
            try:
                await once()
                return
            except SourceMismatch as exc:
                if not exc.layout_confirmed and await self._layout_was_not_the_objects():
                    self.job.retries += 1  # not a bad read: read again in the object's layout
                    continue
                reads += 1
                if reads >= self.job.options.policy.attempts:
                    raise ChecksumMismatchError(
                        self.job.src, self.job.dst, exc.evidence, exc.computed, exc.stored, "source"
                    ) from None
                self.job.retries += 1
            except ChecksumRefused as refused:
                if self.job.attempt.sending.algorithm is None:
                    raise TransferError(
                        self.job.src,
                        self.job.dst,
                        "the server refused an upload without checksum headers",
                        side="destination",
                    ) from None
                note_checksum_headers_refused(refused.endpoint_url)
                self.job.attempt.sending = self.job.attempt.sending.without_flexible_checksum()

    async def _layout_was_not_the_objects(self) -> bool:
        """After a mismatch in a layout inferred from part 1, ask the server for every
        part's size; whether the inferred layout was wrong (then the mismatch proves
        nothing).  Later reads use what the server said (None: no part evidence)."""
        assumed, asked = self._layout, self._layout_asked
        assert asked is not None and assumed is not None and self.job.size is not None
        client, url = asked
        with self.job.errors("source"):
            self._layout = await part_layout(
                client, url, self.job.size, self.job.source_etag, confirm=True
            )
        return self._layout is None or self._layout.sizes != assumed.sizes

    def _require_source_evidence(self) -> None:
        """Fail a copy with ``verify='required'`` whose source gives no evidence."""
        if self.job.options.verify == "required":
            raise TransferError(
                self.job.src,
                self.job.dst,
                "source: no evidence to verify the bytes read against: the object has "
                "no checksum and no MD5 ETag, or its part layout is not reported "
                "(verify='required')",
                side="source",
            )

    async def _source_tags(self, client: S3Client, url: S3Url) -> list[Mapping[str, str]] | None:
        if not self.job.options.settings.tags:
            return None
        with self.job.errors("source"):
            response = await client.get_object_tagging(Bucket=url.bucket, Key=url.key)
        return list(response.get("TagSet", []))

    async def _choose_sending(
        self, client: S3Client, source: Mapping[str, Any] | None = None
    ) -> Sending:
        """What the uploads carry: it depends on whether the destination's server
        checks digests (asked once per endpoint) and on the source's checksum."""
        bucket, key = self.job.object_on("destination")
        trusted = await validates_digests(client, bucket, key or "")
        return Sending.choose(
            client.meta.endpoint_url, self.job.options.checksum_algorithm, source, trusted=trusted
        )

    @contextlib.asynccontextmanager
    async def _open(
        self,
        client: S3Client,
        url: S3Url,
        *,
        confirm: bool = False,
        keep_layout: bool = False,
        start: int = 0,
        evidence: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ObjectStream]:
        """GetObject ``url`` and build the check of what it reads; ``confirm``: ask
        every part's size rather than infer a uniform layout from part 1;
        ``keep_layout``: ask a multipart source's layout (for a copy made in it)
        even where its check does not need it."""
        async with contextlib.AsyncExitStack() as stack:
            with self.job.errors("source"):
                stream = await stack.enter_async_context(
                    open_object(
                        client,
                        url,
                        policy=self.job.options.policy,
                        if_match=self.job.source_etag,
                        start=start,
                        evidence=evidence,
                    )
                )
                wanted = _needs_layout(stream.response) or (
                    keep_layout and _is_multipart_etag(stream.etag)
                )
                if wanted and self._layout_asked is None:
                    self._layout = await part_layout(
                        client, url, stream.size, stream.etag, confirm=confirm
                    )
                    self._layout_asked = (client, url)
            stream.on_progress = self.job.progressed
            stream.rate = self.job.options.download_rate
            self.job.size = stream.size
            self.job.source_etag = stream.etag
            self.job.attempt.check = SourceCheck.for_object(
                stream.response, stream.size, self._layout
            )
            if self.job.attempt.check is None:
                self._require_source_evidence()
            self.job.options.progress.transfer_started(self.job.src, self.job.dst, stream.size)
            yield stream

    # -- download ---------------------------------------------------------------

    async def _download(self, stream: ObjectStream, sink: FileSink | StreamSink) -> None:
        """Read the body into ``sink``, hashing on the way.

        A file is written through a pipe on the copy's budget, so the network
        never waits for the disk; a stream consumer is written directly (its own
        pipe or pace bounds what is held), in small chunks so that little of the
        body waits in aiohttp's buffer (:func:`~aqueuepipe.s3._objects.read_ahead`).
        """
        if isinstance(sink, StreamSink):
            while True:
                with self.job.errors("source"):
                    chunk = await stream.read(CHUNK_READ_SIZE)
                if not chunk:
                    break
                await self._take(chunk, sink)
            self.job.check_length(sink.bytes_written, stream.size)
            return

        async with AsyncPipe(budget=self.job.budget) as pipe:

            async def produce() -> None:
                try:
                    while True:
                        with self.job.errors("source"):
                            chunk = await stream.read()
                        if not chunk:
                            break
                        await pipe.write(chunk)
                except BaseException as exc:
                    pipe.abort(exc)
                    raise
                pipe.close()

            async def consume() -> None:
                try:
                    async for chunk in pipe:
                        await self._take(chunk, sink)
                except BaseException as exc:
                    pipe.abort(exc)
                    raise

            with decisions_unwrapped():
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(produce())
                    tg.create_task(consume())
        self.job.check_length(stream.start + pipe.bytes_read, stream.size)

    async def _take(self, chunk: bytes, sink: FileSink | StreamSink) -> None:
        """Hash a chunk of the body and hand it to the destination."""
        await self.job.attempt.hashes.aupdate(chunk)
        if self.job.attempt.check is not None:
            self.job.attempt.check.update(chunk)
        with self.job.errors("destination"):
            await sink.write(chunk)
        self.job.progressed()
        self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, len(chunk))


async def _set_mtime(path: Path, when: object) -> None:
    """Give a downloaded file the object's LastModified as its modification time."""
    if isinstance(when, datetime.datetime):
        stamp = when.timestamp()
        await asyncio.to_thread(os.utime, path, (stamp, stamp))


def _is_multipart_etag(etag: str | None) -> bool:
    """Whether ``etag`` has a multipart upload's form (``...-N``): its object has a
    part layout to keep."""
    count = (etag or "").strip('"').rpartition("-")[2]
    return "-" in (etag or "") and count.isdigit()
