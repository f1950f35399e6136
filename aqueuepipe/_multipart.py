"""One multipart upload of a copy: parts read while earlier ones are in flight.

:class:`MultipartSender` creates the upload (or continues a journaled one), reads
the source a part at a time within the budget and the parts in flight, sends each
part until the server proves it stored (:class:`~aqueuepipe._part_io.PartIO`),
and completes the upload with the FULL_OBJECT checksum, or aborts it (or keeps it
open for ``resume=True``) when anything fails.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from ._errors import ChecksumMismatchError, TransferError
from ._job import Job, decisions_unwrapped
from ._journal import StoredPart
from ._part import (
    Digests,
    Part,
    PartSource,
    check_completed,
    hash_part,
    hash_stored,
    needs_bytes_to_skip,
)
from ._part_io import PartIO, error_code
from ._resume import ResumedUpload
from ._verify import full_object, md5_of_etag
from .checksums import new_hasher, s3_algorithm
from .s3._client import S3Client
from .s3._endpoints import note_checksum_headers_refused
from .s3._parts import MAX_PARTS, stream_part_size
from .s3._uploads import MultipartUpload
from .s3._urls import S3Url

__all__ = ["MultipartSender"]


class MultipartSender:
    """The multipart uploads of one copy."""

    def __init__(self, job: Job, io: PartIO) -> None:
        self.job = job
        self.io = io

    async def send(
        self,
        source: PartSource | None,
        size: int | None,
        part_size: int,
        client: S3Client,
        dst: S3Url,
        *,
        first: Part | None = None,
        first_digests: Digests | None = None,
        resumed: ResumedUpload | None = None,
        sizes: tuple[int, ...] | None = None,
    ) -> None:
        """Upload ``size`` bytes (None: until the source ends) in parts of
        ``part_size``, or of the given ``sizes`` (a source's layout).

        ``first`` is a first part already read (the caller's to close as well),
        ``first_digests`` its digests if it was hashed already (then it is the
        whole object); ``source`` None means it is all there is.  Every part owns its buffer,
        its bytes in the budget and its slot among the parts in flight: the task
        that sends it closes it once the server has it, and whatever was not
        sent is closed here, so nothing outlives the upload.

        ``resumed`` (a source of known size, read from any byte): the upload is
        journaled, continued if an earlier run's can be, and kept open on a
        failure that does not prove its parts wrong.  Parts stored before are not
        sent again, nor read if their CRCs can stand for them in the checks.
        """
        upload = MultipartUpload(client, dst)
        sent = _Sent()
        slots = asyncio.Semaphore(self.job.options.part_concurrency)
        live: set[Part] = set()
        try:
            if resumed is None or not await resumed.continue_upload(upload):
                await self._create(upload)
                if resumed is not None:
                    await resumed.created(upload)
            stored = resumed.stored if resumed is not None else {}
            algorithm = self.job.attempt.sending.algorithm
            # The checksum of every byte, sent with CompleteMultipartUpload: one part
            # hashed already has it; else it is computed as the parts are hashed.
            whole: str | None = None
            if algorithm is not None and full_object(algorithm):
                if first_digests is not None:
                    whole = first_digests.checksum
                else:
                    self.job.attempt.full = new_hasher(algorithm)
            if first_digests is not None and algorithm is None:
                first_digests = Digests(first_digests.md5, None)  # the MD5 path now
            with decisions_unwrapped():
                async with asyncio.TaskGroup() as tg:

                    def send(
                        number: int,
                        part: Part,
                        digests: Digests | None = None,
                        held: StoredPart | None = None,
                    ) -> None:
                        live.add(part)
                        tg.create_task(
                            self._send_part(
                                upload,
                                number,
                                part,
                                sent,
                                live,
                                digests,
                                resumed=resumed,
                                held=held,
                            )
                        )

                    offset = 0
                    number = 0
                    if first is not None:
                        await slots.acquire()
                        first.slot = slots
                        number, offset = 1, first.size
                        send(1, first, first_digests)
                    position = offset  # where the source reads next
                    while source is not None and (size is None or offset < size):
                        held = stored.get(number + 1)
                        if held is not None and not needs_bytes_to_skip(self.job.attempt):
                            number += 1
                            tg.create_task(self._held_part(number, held, sent))
                            offset += held.size
                            continue
                        if held is None and resumed is not None:
                            held = resumed.unjournaled.get(number + 1)
                        if position != offset:
                            assert resumed is not None
                            with self.job.errors("source"):
                                await resumed.source.seek(offset)
                        length = sizes[number] if sizes is not None else part_size
                        read = await self._next_part(
                            source, size, number + 1, offset, length, slots
                        )
                        if read is None:
                            break
                        part, ended = read
                        number += 1
                        send(number, part, held=held)
                        offset += part.size
                        position = offset
                        if ended:
                            break
                    if size is not None and source is not None:
                        if position != offset:
                            assert resumed is not None
                            with self.job.errors("source"):
                                await resumed.source.seek(offset)
                        await self.io.check_eof(source)
                    self.job.size = offset
            self.job.attempt.parts = number
            self.job.verify_source()  # before the object exists
            self.job.verify_destination()
            if self.job.attempt.full is not None:
                whole = self.job.attempt.full.b64digest()
            response = await self._complete(upload, algorithm, whole)
        except BaseException as exc:
            if resumed is not None:
                await resumed.failed(exc, upload)
            else:
                await upload.abort()
            raise
        finally:
            for part in list(live):  # parts whose task never ran (cancelled early)
                part.close()
        if resumed is not None:
            resumed.finished()
        try:
            check_completed(self.job, response, sent.md5s, sent.checksums, whole)
        except ChecksumMismatchError:
            await self.io.delete(client, dst)
            raise
        self.job.etag = str(response["ETag"])

    async def _next_part(
        self,
        source: PartSource,
        size: int | None,
        number: int,
        offset: int,
        part_size: int,
        slots: asyncio.Semaphore,
    ) -> tuple[Part, bool] | None:
        """Part ``number``, read from ``offset`` of a source of ``size`` bytes (None: a
        stream), and whether the source ended with it; None if it ended before.

        The part holds its buffer, bytes and slot (its sender closes it); one whose
        read fails is closed here.
        """
        # A stream's parts grow with it, up to what half the budget holds.
        most = max(part_size, self.job.budget.limit // 2)
        if number > MAX_PARTS:
            if size is None and await self.io.at_end(source):
                return None
            raise TransferError(
                self.job.src,
                self.job.dst,
                f"the stream is longer than the {MAX_PARTS} parts of an upload "
                f"can hold ({offset} bytes): its parts grow from {part_size} "
                f"bytes to at most {most} (half the memory limit); pass a "
                "larger limit or part_size",
                side="source",
            )
        if size is None:
            length = stream_part_size(number, part_size, most)
            part = await self.io.stream_part(length, slots)
        else:
            length = min(part_size, size - offset)
            part = await Part.take(self.job.budget, length, slot=slots)
        try:
            if size is None:
                got = await self.io.fill_stream_part(part, source)
            else:
                got = await self.io.read(part, source)
                self.job.check_length(offset + got, size, offset + length)
        except BaseException:
            part.close()
            raise
        if got == 0:  # the stream ended exactly at a part boundary
            part.close()
            return None
        if got < length:  # the end of the stream
            part.shrink(got)
        return part, got < length

    async def _complete(
        self, upload: MultipartUpload, algorithm: str | None, whole: str | None
    ) -> Mapping[str, Any]:
        """CompleteMultipartUpload, with the FULL_OBJECT checksum ``whole`` if any."""
        extra: dict[str, Any] = {}
        if whole is not None and algorithm is not None:
            # The server checks the object against it before the object exists.
            extra[f"Checksum{s3_algorithm(algorithm)}"] = whole
            extra["ChecksumType"] = "FULL_OBJECT"
        with self.job.errors("destination"):
            try:
                response = await upload.complete(extra)
            except asyncio.CancelledError:
                if upload.completed is not None:
                    # The object was written before the cancellation could stop
                    # it: the copy is done, whatever comes of the cancellation.
                    self.job.etag = str(upload.completed["ETag"])
                    self.job.committed = True
                raise
        self.job.count(response)
        return response

    async def _create(self, upload: MultipartUpload) -> None:
        """CreateMultipartUpload, on the MD5 path if the server refuses the checksum."""
        sending = self.job.attempt.sending
        algorithm = sending.algorithm
        upload.checksum_algorithm = s3_algorithm(algorithm) if algorithm is not None else None
        extra = dict(self.job.attempt.headers)
        if algorithm is not None and full_object(algorithm):
            extra["ChecksumType"] = "FULL_OBJECT"
        with self.job.errors("destination"):
            try:
                await upload.create(extra)
            except botocore.exceptions.ClientError as exc:
                if not self.io.may_fall_back(error_code(exc), sending):
                    raise
                self.job.attempt.sending = sending.without_flexible_checksum()
                upload.checksum_algorithm = None
                extra.pop("ChecksumType", None)
                await upload.create(extra)
                note_checksum_headers_refused(upload.client.meta.endpoint_url)

    async def _send_part(
        self,
        upload: MultipartUpload,
        number: int,
        part: Part,
        sent: _Sent,
        live: set[Part],
        digests: Digests | None = None,
        *,
        resumed: ResumedUpload | None = None,
        held: StoredPart | None = None,
    ) -> None:
        """Hash (unless ``digests`` are known) and upload one part until it is
        proven stored; then close it.

        ``held``: the server holds this part from an earlier run (journaled, or
        only listed), and it was read for the hashes or to be compared; it is sent
        again only if its bytes differ from it.
        """
        part.body.on_sent = self.job.progressed
        part.body.rate = self.job.options.upload_rate
        try:
            if digests is None:
                digests = await hash_part(self.job.attempt, part)
            if held is not None and _same_part(held, digests):
                self._note_held(number, held, sent)
                if resumed is not None:
                    await resumed.adopt(upload, held)
                return
            response = await self.io.until_stored(
                lambda: upload.upload_part(
                    number, part.body, part.size, digests.checksum, digests.content_md5
                ),
                digests,
                number,
                upload.client.meta.endpoint_url,
            )
            sent.add(number, digests.md5, digests.checksum)
            self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, part.size)
            size = part.size
            part.close(reuse=True)
            if resumed is not None:
                await resumed.record(number, size, str(response["ETag"]), digests.checksum)
        finally:
            live.discard(part)
            part.close()

    async def _held_part(self, number: int, held: StoredPart, sent: _Sent) -> None:
        """A part the server holds from an earlier run, not read again: its CRC
        stands for its bytes in the checks (in source order)."""
        await hash_stored(self.job.attempt, held.size, held.checksum)
        self._note_held(number, held, sent)

    def _note_held(self, number: int, held: StoredPart, sent: _Sent) -> None:
        md5 = md5_of_etag({"ETag": held.etag})
        use_md5 = md5 is not None and self.job.attempt.sending.md5
        sent.add(number, bytes.fromhex(md5) if use_md5 and md5 else None, held.checksum)
        self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, held.size)

    # -- checks -----------------------------------------------------------------


@dataclass(slots=True)
class _Sent:
    """The digests of each part the upload is completed with (sent now, or held
    from an earlier run): what CompleteMultipartUpload's answer is checked by."""

    md5s: dict[int, bytes] = field(default_factory=dict)
    checksums: dict[int, bytes] = field(default_factory=dict)

    def add(self, number: int, md5: bytes | None, checksum_b64: str | None) -> None:
        if md5 is not None:
            self.md5s[number] = md5
        if checksum_b64 is not None:
            self.checksums[number] = base64.b64decode(checksum_b64)


def _same_part(held: StoredPart, digests: Digests) -> bool:
    """Whether a part read again is the one the server holds (by its checksum, else
    by the MD5 its ETag carries)."""
    if held.checksum is not None and digests.checksum is not None:
        return held.checksum == digests.checksum
    md5 = md5_of_etag({"ETag": held.etag})
    return md5 is not None and digests.md5 is not None and md5 == digests.md5.hex()
