"""How one copy uploads: parts reserved from the budget, hashed, sent, proven stored.

:class:`Uploader` is everything that writes a copy's bytes to S3: one
PutObject, or a multipart upload whose parts go up while the source still
streams, each part sent again until the server's answer proves it stored the
bytes.  It works on the copy's :class:`~aqueuepipe._job.Job` (and its current
attempt); the copy's directions (:class:`aqueuepipe._engine.Copy`) hand it
their source.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import botocore.exceptions

from ._cancel import run_to_end
from ._errors import ChecksumMismatchError, TransferError
from ._job import ChecksumRefused, Job, KeyPresent, decisions_unwrapped
from ._journal import StoredPart
from ._part import (
    Digests,
    Part,
    PartSource,
    check_completed,
    hash_part,
    hash_stored,
    md5_of,
    needs_bytes_to_skip,
    stored_mismatch,
)
from ._resume import Resumable, ResumedUpload
from ._verify import Sending, full_object, md5_of_etag
from .checksums import (
    etag_is_md5_based,
    new_hasher,
    s3_algorithm,
)
from .s3._client import S3Client
from .s3._endpoints import note_checksum_headers_refused
from .s3._layout import PartLayout
from .s3._objects import MultipartUpload, ObjectStream
from .s3._parts import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    choose_part_size,
    stream_part_size,
)
from .s3._urls import S3Url

__all__ = ["Uploader"]


#: The most a stream's part takes from the budget before the stream shows it has
#: more (then the part doubles each time it is full, up to a whole part).
_FIRST_READ = 1024 * 1024

# S3 error codes of a body that disagrees with its Content-MD5 or checksum header:
# the server refused to store it, so it is sent again.
_BAD_DIGEST = frozenset({"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"})
# What servers without flexible checksums answer to an x-amz-checksum-* header.
_CHECKSUM_REFUSED = frozenset(
    {"InvalidRequest", "InvalidArgument", "NotImplemented", "XNotImplemented"}
)


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


#: Answers to a conditional PUT meaning "not written": the key exists (412), a
#: conflicting write is under way (409), or the server does not take the header.
_CONDITION_REFUSED = frozenset(
    {"PreconditionFailed", "ConditionalRequestConflict", "NotImplemented", "InvalidArgument"}
)


class Uploader:
    """The uploads of one copy to S3: what its directions hand their source to."""

    def __init__(self, job: Job) -> None:
        self.job = job

    # -- upload -----------------------------------------------------------------

    async def upload(
        self,
        source: PartSource,
        size: int,
        client: S3Client,
        dst: S3Url,
        stream: ObjectStream | None,
        resumable: Resumable | None = None,
        *,
        layout: PartLayout | None = None,
    ) -> None:
        """Upload ``size`` bytes of ``source``: in the source's part ``layout`` when
        it has one that fits the budget (so the copy gets the source's ETag), else
        in parts of ``part_size`` (one PutObject below it).  ``resumable``: with
        ``resume=True``, a multipart upload keeps a journal and continues an
        earlier one's."""
        sizes = self._kept(layout, size)
        if stream is not None and sizes is None and self._one_put_kept(stream.etag, size):
            await self._put(source, size, client, dst)
            return
        if sizes is not None:
            part_size = max(sizes)
        else:
            part_size = choose_part_size(size, self.job.options.part_size)
            if part_size > self.job.budget.limit:
                raise ValueError(
                    f"the memory limit ({self.job.budget.limit} bytes) cannot hold one part "
                    f"of {part_size} bytes, the size needed to copy {size} bytes in 10,000 parts"
                )
            if size < part_size:
                await self._put(source, size, client, dst)
                return
        resumed = (
            ResumedUpload(self.job, client, dst, resumable, size, part_size, sizes)
            if resumable is not None and self.job.options.resume
            else None
        )
        await self._multipart(source, size, part_size, client, dst, resumed=resumed, sizes=sizes)

    def _one_put_kept(self, etag: str | None, size: int) -> bool:
        """Whether a source stored with one PUT (a plain MD5 ETag) and at least
        ``part_size`` long goes with one PutObject too, to keep its ETag: on a
        server that checks digests (elsewhere a PUT is not sent, see
        :meth:`_put_part`), when it is at most half the budget (its bytes are all
        held at once) and 5 GiB."""
        if etag is None or not etag_is_md5_based(etag) or "-" in etag:
            return False
        if not self.job.attempt.sending.trusted:
            return False  # it would go as a one-part upload: another ETag all the same
        return self.job.options.part_size <= size <= min(self.job.budget.limit // 2, MAX_PART_SIZE)

    def _kept(self, layout: PartLayout | None, size: int) -> tuple[int, ...] | None:
        """The part sizes of ``layout`` if a copy can be made in them: they add up
        to ``size``, every part fits the budget, and every part but the last has
        S3's minimum size (a destination refuses smaller ones)."""
        if layout is None or layout.size != size or not 0 < layout.parts <= MAX_PARTS:
            return None
        if max(layout.sizes) > self.job.budget.limit:
            return None
        if any(part < MIN_PART_SIZE for part in layout.sizes[:-1]):
            return None
        return layout.sizes

    async def _read(self, part: Part, source: PartSource, start: int = 0) -> int:
        with self.job.errors("source"):
            got = await part.fill(source, start)
        self.job.progressed()
        return got

    async def _put(self, source: PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        part = await Part.take(self.job.budget, size)
        try:
            self.job.check_length(await self._read(part, source), size)
            await self._check_eof(source)
            await self._put_part(part, client, dst)
        finally:
            part.close()

    async def _put_part(self, part: Part, client: S3Client, dst: S3Url) -> None:
        """Store a part that is the whole object (the caller closes it).

        A PutObject replaces what the key held before the answer can prove
        anything, so it is sent only to a server known to refuse a body that
        disagrees with its digests; elsewhere the bytes go as a one-part multipart
        upload, checked before CompleteMultipartUpload, so a failed copy never
        destroys what the key held.  (An empty object has no bytes to get wrong.)
        A key a listing showed absent (``job.dst_absent``) holds nothing to
        destroy: it gets a PutObject with ``If-None-Match: *``, which a key
        written since refuses (then the multipart way is taken).
        """
        digests = await hash_part(self.job.attempt, part, whole=True)
        self.job.verify_source()  # before anything is sent
        if_absent = False
        if not self.job.attempt.sending.trusted and part.size:
            if_absent = self.job.dst_absent
            if not if_absent:
                await self._multipart(
                    None, part.size, part.size, client, dst, first=part, first_digests=digests
                )
                return
        try:
            response = await self._send_put(client, dst, part, digests, if_absent=if_absent)
        except KeyPresent:
            self.job.dst_absent = False
            await self._multipart(
                None, part.size, part.size, client, dst, first=part, first_digests=digests
            )
            return
        self.job.etag = str(response["ETag"])
        self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, part.size)
        part.close(reuse=True)

    async def upload_stream(self, source: PartSource, client: S3Client, dst: S3Url) -> None:
        """Upload a stream of unknown length: its first ``part_size`` bytes decide
        between one PutObject and a multipart upload.

        Every part of a stream starts small and grows as its bytes arrive
        (:meth:`_fill_stream_part`): a 4-byte stream never waits for 8 MiB of a
        busy budget, and a client that stops sending mid-part holds about twice
        what it sent, not a whole part.
        """
        part_size = choose_part_size(None, self.job.options.part_size)
        part = await self._stream_part(part_size)
        try:
            got = await self._fill_stream_part(part, source)
            if got == part_size:
                await self._multipart(source, None, part_size, client, dst, first=part)
                return
            part.shrink(got)
            self.job.size = got
            await self._put_part(part, client, dst)
        finally:
            part.close()  # idempotent: the upload closed it once the server had it

    async def _stream_part(self, part_size: int, slot: asyncio.Semaphore | None = None) -> Part:
        """A part for a stream: a growable lease of at most 1 MiB, up to ``part_size``."""
        first = min(part_size, _FIRST_READ, max(1, self.job.budget.limit // 64))
        return await Part.take(self.job.budget, first, up_to=part_size, slot=slot)

    async def _fill_stream_part(self, part: Part, source: PartSource) -> int:
        """Fill a stream's part, doubling it each time it is full, until it holds a
        whole part or the stream ends; return the bytes read."""
        got = await self._read(part, source)
        while got == part.size < part.lease.up_to:
            await part.grow(min(part.lease.up_to, 2 * part.size))
            got += await self._read(part, source, got)
        return got

    async def _send_put(
        self, client: S3Client, dst: S3Url, part: Part, digests: Digests, *, if_absent: bool
    ) -> Mapping[str, Any]:
        """PutObject the part until the server's answer proves it stored the bytes.

        A server that refuses the checksum header gets the same PUT on the MD5
        path; a key found holding wrong bytes, or unproven under
        ``verify="required"``, is deleted.  ``if_absent``: the first PUT is
        conditional (``If-None-Match: *``); KeyPresent if the server refuses it
        (the key exists, or the server does not take the condition).
        """
        conditional = [if_absent]  # the first request only: later ones replace our own

        async def send() -> Mapping[str, Any]:
            sending = self.job.attempt.sending
            kwargs: dict[str, Any] = {
                **self.job.attempt.headers,
                "Bucket": dst.bucket,
                "Key": dst.key,
                "Body": part.body,
                "ContentLength": part.size,
            }
            if conditional[0]:
                kwargs["IfNoneMatch"] = "*"
            if sending.algorithm is not None and digests.checksum is not None:
                kwargs["ChecksumAlgorithm"] = s3_algorithm(sending.algorithm)
                kwargs[f"Checksum{s3_algorithm(sending.algorithm)}"] = digests.checksum
            if sending.md5:
                if digests.md5 is None:
                    digests.md5 = await md5_of(part)
                kwargs["ContentMD5"] = digests.content_md5
            part.body.seek(0)
            try:
                response: Mapping[str, Any] = await client.put_object(**kwargs)
            except botocore.exceptions.ClientError as exc:
                if conditional[0] and _error_code(exc) in _CONDITION_REFUSED:
                    raise KeyPresent from exc
                raise
            conditional[0] = False
            return response

        endpoint = client.meta.endpoint_url
        part.body.on_sent = self.job.progressed
        part.body.rate = self.job.options.upload_rate
        try:
            try:
                response = await self._until_stored(send, digests, None, endpoint)
            except ChecksumRefused:
                self.job.attempt.sending = self.job.attempt.sending.without_flexible_checksum()
                response = await self._until_stored(send, digests, None, endpoint)
                note_checksum_headers_refused(endpoint)
        except ChecksumMismatchError:
            # The server kept something else under the key: never leave it there.
            await self._delete(client, dst)
            raise
        try:
            self.job.verify_destination()
        except TransferError:
            await self._delete(client, dst)
            raise
        return response

    async def _until_stored(
        self,
        send: Callable[[], Awaitable[Mapping[str, Any]]],
        digests: Digests,
        part: int | None,
        endpoint_url: str,
    ) -> Mapping[str, Any]:
        """Send an upload request again until the answer proves the bytes stored.

        A server that refused the body (BadDigest) or answered with the wrong
        checksum or MD5 ETag gets it again, within the retry policy.

        Raises:
            ChecksumRefused: the server refuses the checksum header itself.
            ChecksumMismatchError: the answer stayed wrong (side "destination").
            TransferError: any other failure of the request.
        """
        attempts = self.job.options.policy.attempts
        attempt = 0
        while True:
            attempt += 1
            with self.job.errors("destination"):
                try:
                    response: Mapping[str, Any] = await send()
                except botocore.exceptions.ClientError as exc:
                    code = _error_code(exc)
                    if self._may_fall_back(code, self.job.attempt.sending):
                        raise ChecksumRefused(endpoint_url) from exc
                    if code in _BAD_DIGEST and attempt < attempts:
                        self.job.retries += 1
                        continue
                    raise
            self.job.count(response)
            self.job.progressed()
            mismatch = stored_mismatch(self.job, response, digests, part)
            if mismatch is None:
                return response
            if attempt >= attempts:
                raise mismatch
            self.job.retries += 1

    def _may_fall_back(self, code: str, sending: Sending) -> bool:
        """Whether an error answering a checksum header means "not supported here"."""
        return (
            code in _CHECKSUM_REFUSED
            and sending.algorithm is not None
            and self.job.options.checksum_algorithm is None
        )

    async def _delete(self, client: S3Client, dst: S3Url) -> None:
        with contextlib.suppress(Exception):  # the error that made us delete is the one to report
            await run_to_end(client.delete_object(Bucket=dst.bucket, Key=dst.key))

    async def _multipart(
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
        part_md5s: dict[int, bytes] = {}
        part_checksums: dict[int, bytes] = {}
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
                                part_md5s,
                                part_checksums,
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
                            tg.create_task(self._held_part(number, held, part_md5s, part_checksums))
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
                        await self._check_eof(source)
                    self.job.size = offset
            self.job.attempt.parts = number
            self.job.verify_source()  # before the object exists
            self.job.verify_destination()
            if self.job.attempt.full is not None:
                whole = self.job.attempt.full.b64digest()
            response = await self._complete(upload, algorithm, whole)
        except BaseException as exc:
            if resumed is not None and resumed.keeps(exc, upload):
                resumed.kept(exc)
            else:
                await upload.abort()
                if resumed is not None and upload.upload_id is None:
                    resumed.finished()
            raise
        finally:
            for part in list(live):  # parts whose task never ran (cancelled early)
                part.close()
        if resumed is not None:
            resumed.finished()
        try:
            check_completed(self.job, response, part_md5s, part_checksums, whole)
        except ChecksumMismatchError:
            await self._delete(client, dst)
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
            if size is None and await self._at_end(source):
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
            part = await self._stream_part(length, slots)
        else:
            length = min(part_size, size - offset)
            part = await Part.take(self.job.budget, length, slot=slots)
        try:
            if size is None:
                got = await self._fill_stream_part(part, source)
            else:
                got = await self._read(part, source)
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
                if not self._may_fall_back(_error_code(exc), sending):
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
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
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
                self._note_held(number, held, part_md5s, part_checksums)
                if resumed is not None:
                    await resumed.adopt(upload, held)
                return
            response = await self._until_stored(
                lambda: upload.upload_part(
                    number, part.body, part.size, digests.checksum, digests.content_md5
                ),
                digests,
                number,
                upload.client.meta.endpoint_url,
            )
            if digests.md5 is not None:
                part_md5s[number] = digests.md5
            if digests.checksum is not None:
                part_checksums[number] = base64.b64decode(digests.checksum)
            self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, part.size)
            size = part.size
            part.close(reuse=True)
            if resumed is not None:
                await resumed.record(number, size, str(response["ETag"]), digests.checksum)
        finally:
            live.discard(part)
            part.close()

    async def _held_part(
        self,
        number: int,
        held: StoredPart,
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
    ) -> None:
        """A part the server holds from an earlier run, not read again: its CRC
        stands for its bytes in the checks (in source order)."""
        await hash_stored(self.job.attempt, held.size, held.checksum)
        self._note_held(number, held, part_md5s, part_checksums)

    def _note_held(
        self,
        number: int,
        held: StoredPart,
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
    ) -> None:
        md5 = md5_of_etag({"ETag": held.etag})
        if md5 is not None and self.job.attempt.sending.md5:
            part_md5s[number] = bytes.fromhex(md5)
        if held.checksum is not None:
            part_checksums[number] = base64.b64decode(held.checksum)
        self.job.options.progress.transfer_advanced(self.job.src, self.job.dst, held.size)

    # -- checks -----------------------------------------------------------------

    async def _at_end(self, source: PartSource) -> bool:
        """Whether the source has no byte left (one is read to know)."""
        probe = bytearray(1)
        with self.job.errors("source"):
            return not await source.readinto(memoryview(probe))

    async def _check_eof(self, source: PartSource) -> None:
        if not await self._at_end(source):
            raise TransferError(
                self.job.src,
                self.job.dst,
                f"the source grew beyond its size of {self.job.size} bytes",
                side="source",
            )


def _same_part(held: StoredPart, digests: Digests) -> bool:
    """Whether a part read again is the one the server holds (by its checksum, else
    by the MD5 its ETag carries)."""
    if held.checksum is not None and digests.checksum is not None:
        return held.checksum == digests.checksum
    md5 = md5_of_etag({"ETag": held.etag})
    return md5 is not None and digests.md5 is not None and md5 == digests.md5.hex()
