"""How one copy uploads: parts reserved from the budget, hashed, sent, proven stored.

:class:`Uploader` holds the state of a copy (its options, budget, hashes, the
evidence it gathered) and everything that writes to S3: one PutObject, or a
multipart upload whose parts go up while the source still streams, each part
sent again until the server's answer proves it stored the bytes.  The copy's
directions (:class:`aqueuepipe._engine.Copy`) build on it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import botocore.exceptions

from ._budget import BudgetLease, ByteBudget
from ._cancel import run_to_end
from ._errors import ChecksumMismatchError, Side, TransferError
from ._options import Options
from ._verify import (
    Sending,
    SourceCheck,
    SourceMismatch,
    forget_flexible_checksums,
    full_object,
    md5_of_etag,
)
from .checksums import (
    OFFLOAD_THRESHOLD,
    Buffer,
    Hasher,
    StreamHashes,
    composite_checksum,
    etag_evidence,
    multipart_etag,
    new_hasher,
    s3_algorithm,
    stored_checksum,
)
from .s3._client import S3Client
from .s3._objects import (
    MultipartUpload,
    ObjectStream,
    PartBody,
    retry_attempts,
)
from .s3._parts import MAX_PARTS, choose_part_size, stream_part_size
from .s3._translate import translate_error
from .s3._urls import S3Url

__all__ = ["ChecksumRefused", "Uploader", "signals_unwrapped"]


#: How much more memory than its size a part's buffer may hold and be kept for reuse.
_SPARE_SLACK = 4096

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


class _PartSource(Protocol):
    async def readinto(self, buf: memoryview) -> int: ...


class ChecksumRefused(Exception):
    """The server refused the checksum header of a part: start again on the MD5 path."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        super().__init__(endpoint_url)


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


@dataclass(slots=True)
class _Digests:
    """A part's MD5 (raw) and S3 checksum (base64), each where it is needed."""

    md5: bytes | None
    checksum: str | None

    @property
    def content_md5(self) -> str | None:
        return base64.b64encode(self.md5).decode() if self.md5 is not None else None


class Uploader:
    """The state of one copy, and its uploads to S3."""

    def __init__(
        self, src: str, dst: str, src_loc: object, dst_loc: object, options: Options
    ) -> None:
        self.src = src
        self.dst = dst
        self.locations: dict[Side, object] = {"source": src_loc, "destination": dst_loc}
        self.options = options
        self.budget = options.budget
        self.hashes = StreamHashes(options.checksums)
        self.size: int | None = None
        self.etag: str | None = None
        self.parts = 0
        #: Requests botocore retried, bodies resumed, reads and requests repeated.
        self.retries = 0
        #: The ETag the source had when the copy began (None for a local file).
        self.source_etag: str | None = None
        #: The evidence that proved the copy, e.g. ("source:crc32", "destination:etag-md5").
        self.verified: tuple[str, ...] = ()
        self._check: SourceCheck | None = None
        #: What PutObject / CreateMultipartUpload take besides the bytes (_metadata).
        self._headers: dict[str, Any] = {}
        self._sending = Sending(algorithm=None, md5=False, trusted=False)
        self._etags_matched = True
        #: The FULL_OBJECT CRC of a multipart upload, combined from its parts' CRCs.
        self._full: Hasher | None = None
        self._hash_tail: asyncio.Future[None] | None = None
        self._deadline: asyncio.Timeout | None = None
        #: The destination was written, even if the copy was cancelled after that.
        self.committed = False

    def watch(self, deadline: asyncio.Timeout) -> None:
        """Push ``deadline`` back whenever bytes move: it measures stalls."""
        self._deadline = deadline
        self._progressed()

    def pause_watch(self) -> None:
        """Stop measuring stalls (while the server copies: no byte passes here)."""
        if self._deadline is not None:
            self._deadline.reschedule(None)

    def watch_again(self) -> None:
        """Measure stalls again, from now."""
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

    @contextlib.contextmanager
    def errors(self, side: Side) -> Iterator[None]:
        """Translate what the calls in the block raise into errors about ``side``.

        Wrap each call where it is made, so an error is blamed on the side the
        call was about whatever the other tasks of the copy are doing.
        """
        try:
            yield
        except (TransferError, SourceMismatch, ChecksumRefused):
            raise
        except Exception as exc:
            if side == "source" and isinstance(exc, botocore.exceptions.FlexibleChecksumError):
                # The client validated a body against its checksum itself (a caller's
                # client with checksum_when="when_supported"): the bad read our own
                # check finds, so it is read again the same way.
                raise SourceMismatch("x-amz-checksum", "unknown", "unknown") from exc
            bucket, key = self.object_on(side)
            raise translate_error(
                exc,
                src=self.src,
                dst=self.dst,
                bucket=bucket,
                key=key,
                side=side,
                expected_etag=self.source_etag,
            ) from exc

    def _verify_source(self) -> None:
        """Compare what was read with the source's evidence (raises SourceMismatch);
        once per attempt."""
        check, self._check = self._check, None
        if check is not None:
            check.verify()
            self.verified = (*self.verified, check.label)

    def _verify_destination(self) -> None:
        label = self._sending.evidence(self._etags_matched)
        if label is not None:
            self.verified = (*self.verified, label)
        elif self.options.verify == "required":
            raise TransferError(
                self.src,
                self.dst,
                "destination: the server gave no evidence that it stored the bytes sent "
                "(verify='required')",
                side="destination",
            )

    # -- upload -----------------------------------------------------------------

    async def _upload(
        self,
        source: _PartSource,
        size: int,
        client: S3Client,
        dst: S3Url,
        stream: ObjectStream | None,
    ) -> None:
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

    async def _read(self, part: _Part, source: _PartSource, start: int = 0) -> int:
        with self.errors("source"):
            got = await part.fill(source, start)
        self._progressed()
        return got

    async def _put(self, source: _PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        part = await _Part.take(self.budget, size)
        try:
            self._check_length(await self._read(part, source), size)
            await self._check_eof(source)
            await self._put_part(part, client, dst)
        finally:
            part.close()

    async def _put_part(self, part: _Part, client: S3Client, dst: S3Url) -> None:
        """Store a part that is the whole object (the caller closes it).

        A PutObject replaces what the key held before the answer can prove
        anything, so it is sent only to a server known to refuse a body that
        disagrees with its digests; elsewhere the bytes go as a one-part multipart
        upload, checked before CompleteMultipartUpload, so a failed copy never
        destroys what the key held.  (An empty object has no bytes to get wrong.)
        """
        digests = await self._hash_part(part, whole=True)
        self._verify_source()  # before anything is sent
        if not self._sending.trusted and part.size:
            await self._multipart(
                None, part.size, part.size, client, dst, first=part, first_digests=digests
            )
            return
        response = await self._send_put(client, dst, part, digests)
        self.etag = str(response["ETag"])
        self.options.progress.transfer_advanced(self.src, self.dst, part.size)
        part.close(reuse=True)

    async def _upload_stream(self, source: _PartSource, client: S3Client, dst: S3Url) -> None:
        """Upload a stream of unknown length: its first ``part_size`` bytes decide
        between one PutObject and a multipart upload.

        Every part of a stream starts small and grows as its bytes arrive
        (:meth:`_fill_stream_part`): a 4-byte stream never waits for 8 MiB of a
        busy budget, and a client that stops sending mid-part holds about twice
        what it sent, not a whole part.
        """
        part_size = choose_part_size(None, self.options.part_size)
        part = await self._stream_part(part_size)
        try:
            got = await self._fill_stream_part(part, source)
            if got == part_size:
                await self._multipart(source, None, part_size, client, dst, first=part)
                return
            part.shrink(got)
            self.size = got
            await self._put_part(part, client, dst)
        finally:
            part.close()  # idempotent: the upload closed it once the server had it

    async def _stream_part(self, part_size: int, slot: asyncio.Semaphore | None = None) -> _Part:
        """A part for a stream: a growable lease of at most 1 MiB, up to ``part_size``."""
        first = min(part_size, _FIRST_READ, max(1, self.budget.limit // 64))
        return await _Part.take(self.budget, first, up_to=part_size, slot=slot)

    async def _fill_stream_part(self, part: _Part, source: _PartSource) -> int:
        """Fill a stream's part, doubling it each time it is full, until it holds a
        whole part or the stream ends; return the bytes read."""
        got = await self._read(part, source)
        while got == part.size < part.lease.up_to:
            await part.grow(min(part.lease.up_to, 2 * part.size))
            got += await self._read(part, source, got)
        return got

    async def _send_put(
        self, client: S3Client, dst: S3Url, part: _Part, digests: _Digests
    ) -> Mapping[str, Any]:
        """PutObject the part until the server's answer proves it stored the bytes.

        A server that refuses the checksum header gets the same PUT on the MD5
        path; a key found holding wrong bytes, or unproven under
        ``verify="required"``, is deleted.
        """

        async def send() -> Mapping[str, Any]:
            sending = self._sending
            kwargs: dict[str, Any] = {
                **self._headers,
                "Bucket": dst.bucket,
                "Key": dst.key,
                "Body": part.body,
                "ContentLength": part.size,
            }
            if sending.algorithm is not None and digests.checksum is not None:
                kwargs["ChecksumAlgorithm"] = s3_algorithm(sending.algorithm)
                kwargs[f"Checksum{s3_algorithm(sending.algorithm)}"] = digests.checksum
            if sending.md5:
                if digests.md5 is None:
                    digests.md5 = await _md5(part)
                kwargs["ContentMD5"] = digests.content_md5
            part.body.seek(0)
            response: Mapping[str, Any] = await client.put_object(**kwargs)
            return response

        endpoint = client.meta.endpoint_url
        part.body.on_sent = self._progressed
        try:
            try:
                response = await self._until_stored(send, digests, None, endpoint)
            except ChecksumRefused:
                self._sending = self._sending.without_flexible_checksum()
                response = await self._until_stored(send, digests, None, endpoint)
                forget_flexible_checksums(endpoint)
        except ChecksumMismatchError:
            # The server kept something else under the key: never leave it there.
            await self._delete(client, dst)
            raise
        try:
            self._verify_destination()
        except TransferError:
            await self._delete(client, dst)
            raise
        return response

    async def _until_stored(
        self,
        send: Callable[[], Awaitable[Mapping[str, Any]]],
        digests: _Digests,
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
        attempts = self.options.policy.attempts
        attempt = 0
        while True:
            attempt += 1
            with self.errors("destination"):
                try:
                    response: Mapping[str, Any] = await send()
                except botocore.exceptions.ClientError as exc:
                    code = _error_code(exc)
                    if self._may_fall_back(code, self._sending):
                        raise ChecksumRefused(endpoint_url) from exc
                    if code in _BAD_DIGEST and attempt < attempts:
                        self.retries += 1
                        continue
                    raise
            self._count(response)
            self._progressed()
            mismatch = self._stored_mismatch(response, digests, part)
            if mismatch is None:
                return response
            if attempt >= attempts:
                raise mismatch
            self.retries += 1

    def _may_fall_back(self, code: str, sending: Sending) -> bool:
        """Whether an error answering a checksum header means "not supported here"."""
        return (
            code in _CHECKSUM_REFUSED
            and sending.algorithm is not None
            and self.options.checksum_algorithm is None
        )

    def _stored_mismatch(
        self, response: Mapping[str, Any], digests: _Digests, part: int | None
    ) -> ChecksumMismatchError | None:
        """Compare the server's answer to one request with what it was sent."""
        sending = self._sending
        if sending.md5 and digests.md5 is not None:
            stored_md5 = md5_of_etag(response)
            if stored_md5 is None:
                self._etags_matched = False  # an opaque ETag proves nothing
            elif stored_md5 != digests.md5.hex():
                return ChecksumMismatchError(
                    self.src,
                    self.dst,
                    "etag-md5",
                    digests.md5.hex(),
                    stored_md5,
                    "destination",
                    part,
                )
        if sending.algorithm is not None and digests.checksum is not None:
            reported = response.get(f"Checksum{s3_algorithm(sending.algorithm)}")
            if reported is not None and str(reported) != digests.checksum:
                return ChecksumMismatchError(
                    self.src,
                    self.dst,
                    sending.algorithm,
                    digests.checksum,
                    str(reported),
                    "destination",
                    part,
                )
        return None

    async def _delete(self, client: S3Client, dst: S3Url) -> None:
        with contextlib.suppress(Exception):  # the error that made us delete is the one to report
            await run_to_end(client.delete_object(Bucket=dst.bucket, Key=dst.key))

    async def _multipart(
        self,
        source: _PartSource | None,
        size: int | None,
        part_size: int,
        client: S3Client,
        dst: S3Url,
        *,
        first: _Part | None = None,
        first_digests: _Digests | None = None,
    ) -> None:
        """Upload ``size`` bytes (None: until the source ends) in parts.

        ``first`` is a first part already read (the caller's to close as well),
        ``first_digests`` its digests if it was hashed already (then it is the
        whole object); ``source`` None means it is all there is.  Every part owns its buffer,
        its bytes in the budget and its slot among the parts in flight: the task
        that sends it closes it once the server has it, and whatever was not
        sent is closed here, so nothing outlives the upload.
        """
        upload = MultipartUpload(client, dst)
        part_md5s: dict[int, bytes] = {}
        part_checksums: dict[int, bytes] = {}
        slots = asyncio.Semaphore(self.options.part_concurrency)
        live: set[_Part] = set()
        try:
            await self._create(upload)
            algorithm = self._sending.algorithm
            # The checksum of every byte, sent with CompleteMultipartUpload: one part
            # hashed already has it; else it is computed as the parts are hashed.
            whole: str | None = None
            if algorithm is not None and full_object(algorithm):
                if first_digests is not None:
                    whole = first_digests.checksum
                else:
                    self._full = new_hasher(algorithm)
            if first_digests is not None and algorithm is None:
                first_digests = _Digests(first_digests.md5, None)  # the MD5 path now
            with signals_unwrapped():
                async with asyncio.TaskGroup() as tg:

                    def send(number: int, part: _Part, digests: _Digests | None = None) -> None:
                        live.add(part)
                        tg.create_task(
                            self._send_part(
                                upload, number, part, part_md5s, part_checksums, live, digests
                            )
                        )

                    offset = 0
                    number = 0
                    if first is not None:
                        await slots.acquire()
                        first.slot = slots
                        number, offset = 1, first.size
                        send(1, first, first_digests)
                    # A stream's parts grow with it, up to what half the budget holds.
                    most = max(part_size, self.budget.limit // 2)
                    while source is not None and (size is None or offset < size):
                        number += 1
                        if number > MAX_PARTS:
                            if size is None and await self._at_end(source):
                                number -= 1
                                break
                            raise TransferError(
                                self.src,
                                self.dst,
                                f"the stream is longer than the {MAX_PARTS} parts of an upload "
                                f"can hold ({offset} bytes): its parts grow from {part_size} "
                                f"bytes to at most {most} (half the memory limit); pass a "
                                "larger limit or part_size",
                                side="source",
                            )
                        if size is None:
                            length = stream_part_size(number, part_size, most)
                            part = await self._stream_part(length, slots)
                            live.add(part)
                            got = await self._fill_stream_part(part, source)
                        else:
                            length = min(part_size, size - offset)
                            part = await _Part.take(self.budget, length, slot=slots)
                            live.add(part)
                            got = await self._read(part, source)
                        if size is not None:
                            self._check_length(offset + got, size, offset + length)
                        if got == 0:  # the stream ended exactly at a part boundary
                            part.close()
                            number -= 1
                            break
                        if got < length:  # the end of the stream
                            part.shrink(got)
                        send(number, part)
                        offset += got
                        if got < length:
                            break
                    if size is not None and source is not None:
                        await self._check_eof(source)
                    self.size = offset
            self.parts = number
            self._verify_source()  # before the object exists
            self._verify_destination()
            extra: dict[str, Any] = {}
            if self._full is not None:
                whole = self._full.b64digest()
            if whole is not None and algorithm is not None:
                # The server checks the object against it before the object exists.
                extra[f"Checksum{s3_algorithm(algorithm)}"] = whole
                extra["ChecksumType"] = "FULL_OBJECT"
            with self.errors("destination"):
                try:
                    response = await upload.complete(extra)
                except asyncio.CancelledError:
                    if upload.completed is not None:
                        # The object was written before the cancellation could stop
                        # it: the copy is done, whatever comes of the cancellation.
                        self.etag = str(upload.completed["ETag"])
                        self.committed = True
                    raise
            self._count(response)
        except BaseException:
            await upload.abort()
            raise
        finally:
            for part in list(live):  # parts whose task never ran (cancelled early)
                part.close()
        try:
            self._check_completed(response, part_md5s, part_checksums, whole)
        except ChecksumMismatchError:
            await self._delete(client, dst)
            raise
        self.etag = str(response["ETag"])

    async def _create(self, upload: MultipartUpload) -> None:
        """CreateMultipartUpload, on the MD5 path if the server refuses the checksum."""
        sending = self._sending
        algorithm = sending.algorithm
        upload.checksum_algorithm = s3_algorithm(algorithm) if algorithm is not None else None
        extra = dict(self._headers)
        if algorithm is not None and full_object(algorithm):
            extra["ChecksumType"] = "FULL_OBJECT"
        with self.errors("destination"):
            try:
                await upload.create(extra)
            except botocore.exceptions.ClientError as exc:
                if not self._may_fall_back(_error_code(exc), sending):
                    raise
                self._sending = sending.without_flexible_checksum()
                upload.checksum_algorithm = None
                extra.pop("ChecksumType", None)
                await upload.create(extra)
                forget_flexible_checksums(upload.client.meta.endpoint_url)

    def _check_completed(
        self,
        response: Mapping[str, Any],
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
        whole: str | None,
    ) -> None:
        """Compare the object's ETag and checksum with ours, under S3's rules
        (``whole``: the FULL_OBJECT checksum we computed, if any)."""
        etag = etag_evidence(response)
        if etag is not None and etag.parts is not None and len(part_md5s) == self.parts:
            expected = multipart_etag([part_md5s[n] for n in sorted(part_md5s)])
            if f"{etag.md5_hex}-{etag.parts}" != expected:
                raise ChecksumMismatchError(
                    self.src, self.dst, "etag-md5", expected, f"{etag.md5_hex}-{etag.parts}"
                )
        stored = stored_checksum(response)
        algorithm = self._sending.algorithm
        if stored is None or stored.algorithm != algorithm:
            return
        if stored.parts is None and whole is not None:
            expected = whole
        elif stored.parts is not None and len(part_checksums) == self.parts:
            expected = composite_checksum(
                algorithm, [part_checksums[n] for n in sorted(part_checksums)]
            )
        else:
            return
        if stored.header_value != expected:
            raise ChecksumMismatchError(
                self.src, self.dst, algorithm, expected, stored.header_value
            )

    async def _send_part(
        self,
        upload: MultipartUpload,
        number: int,
        part: _Part,
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
        live: set[_Part],
        digests: _Digests | None = None,
    ) -> None:
        """Hash (unless ``digests`` are known) and upload one part until it is
        proven stored; then close it."""
        part.body.on_sent = self._progressed
        try:
            if digests is None:
                digests = await self._hash_part(part)
            await self._until_stored(
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
            self.options.progress.transfer_advanced(self.src, self.dst, part.size)
            part.close(reuse=True)
        finally:
            live.discard(part)
            part.close()

    async def _hash_part(self, part: _Part, *, whole: bool = False) -> _Digests:
        """Hash a part: the stream hashes and the source check in order, plus its own
        MD5 and S3 checksum where the sending needs them.

        Parts are hashed one after another in source order (the stream hashes,
        the source check and a FULL_OBJECT checksum depend on it), in a worker
        thread while other parts download and upload (parts below
        ``OFFLOAD_THRESHOLD`` on the event loop: the hop costs more).  A part that
        is the ``whole`` object reuses the stream's MD5 and checksum when those are
        computed anyway.  The part's checksum is computed once: the FULL_OBJECT
        CRC is combined from the parts' CRCs, and a source check of the same CRC
        (or of a source part that is exactly this part) takes the part's digest
        instead of hashing the bytes again.
        """
        previous = self._hash_tail
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hash_tail = mine
        sending = self._sending
        algorithm = sending.algorithm
        check = self._check
        full = self._full
        hashes = self.hashes

        def work() -> _Digests:
            with part.body.getbuffer() as view:
                hashes.update(view)
                done = hashes.digests() if whole else {}
                known: dict[str, bytes] = {}
                if sending.md5:
                    known["md5"] = done.get("md5") or _digest("md5", view)
                if algorithm is not None:
                    # Each byte goes through the part's checksum once: the object's
                    # FULL_OBJECT CRC and a source check of the same CRC are combined
                    # from it.
                    known[algorithm] = done.get(algorithm) or _digest(algorithm, view)
                if check is not None:
                    check.update(view, known)
                if full is not None and algorithm is not None:
                    full.combine(int.from_bytes(known[algorithm], "big"), len(view))
            checksum = known.get(algorithm) if algorithm is not None else None
            return _Digests(
                known.get("md5"), base64.b64encode(checksum).decode() if checksum else None
            )

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

    # -- checks -----------------------------------------------------------------

    def _check_length(self, got: int, size: int, expected: int | None = None) -> None:
        want = size if expected is None else expected
        if got != want:
            raise TransferError(
                self.src, self.dst, f"the source ended after {got} of {size} bytes", side="source"
            )

    async def _at_end(self, source: _PartSource) -> bool:
        """Whether the source has no byte left (one is read to know)."""
        probe = bytearray(1)
        with self.errors("source"):
            return not await source.readinto(memoryview(probe))

    async def _check_eof(self, source: _PartSource) -> None:
        if not await self._at_end(source):
            raise TransferError(
                self.src,
                self.dst,
                f"the source grew beyond its size of {self.size} bytes",
                side="source",
            )


@contextlib.contextmanager
def signals_unwrapped() -> Iterator[None]:
    """Raise a bad read or a refused checksum out of a task group as it is.

    They are decisions for the whole copy (read again; use the MD5 path), not
    failures to report, and whichever task met one first decides.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        found = group.subgroup(lambda exc: isinstance(exc, SourceMismatch | ChecksumRefused))
        if found is not None:
            first = found.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        raise


def _digest(algorithm: str, data: Buffer) -> bytes:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return hasher.digest()


async def _md5(part: _Part) -> bytes:
    def work() -> bytes:
        with part.body.getbuffer() as view:
            return _digest("md5", view)

    return await asyncio.to_thread(work) if part.size >= OFFLOAD_THRESHOLD else work()


class _Part:
    """One part's bytes and everything they hold: one owner.

    The bytes live in the :class:`PartBody` the HTTP client streams the request
    from (sent in slices with flow control; botocore rewinds it to resend the
    part), sized once and filled in place through ``getbuffer()``, so the part
    exists in memory exactly once.  The part owns the budget lease that pays for
    those bytes and, in a multipart upload, its slot among the parts in flight.
    :meth:`close` frees the buffer and gives back the lease and the slot
    (idempotent), so a reference to a closed part, left in a local or a finished
    task, holds no memory outside the budget.
    """

    __slots__ = ("body", "lease", "reusable", "size", "slot")

    def __init__(self, lease: BudgetLease, slot: asyncio.Semaphore | None = None) -> None:
        self.lease = lease
        self.slot = slot
        self.size = lease.held
        #: A part of a size known in advance: its buffer may go to the next one.  (A
        #: stream's parts grow and shrink: their sizes seldom repeat, and keeping
        #: their buffers only spreads the heap.)
        self.reusable = lease.up_to == lease.held
        spare = lease.buffer
        if isinstance(spare, PartBody) and not spare.closed:
            # A buffer of an earlier part of this size: its bytes are overwritten by
            # the read before anything uses them, so it needs no zero-fill.
            spare.on_sent = None
            spare.seek(0)
            self.body = spare
        else:
            self.body = PartBody()
            self._resize(self.size)

    @classmethod
    async def take(
        cls,
        budget: ByteBudget,
        size: int,
        *,
        up_to: int | None = None,
        slot: asyncio.Semaphore | None = None,
    ) -> _Part:
        """A part of ``size`` bytes (growable to ``up_to``), once ``slot`` and the
        budget allow; the buffer is made (or a spare one of the budget's taken)
        only once its bytes are in the budget."""
        if slot is not None:
            await slot.acquire()
        try:
            lease = await budget.lease(size, up_to=up_to, spare=up_to in (None, size))
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        return cls(lease, slot)

    def _resize(self, size: int) -> None:
        if size:
            self.body.seek(size - 1)
            self.body.write(b"\0")
            self.body.seek(0)

    async def grow(self, to: int) -> None:
        """Grow to ``to`` bytes, at most the lease's ``up_to`` (the bytes read so
        far are kept)."""
        await self.lease.grow(to)
        self.size = self.lease.held
        self._resize(self.size)

    def shrink(self, size: int) -> None:
        """Keep only the first ``size`` bytes (the last part of a stream)."""
        self.body.truncate(size)
        self.lease.shrink(size)
        self.size = size

    async def fill(self, source: _PartSource, start: int = 0) -> int:
        """Read the source into the part from ``start``; return the bytes read
        (fewer than asked only at the end of the source)."""
        with self.body.getbuffer() as view, view[start:] as rest:
            return await source.readinto(rest)

    def close(self, *, reuse: bool = False) -> None:
        """Free the buffer, give back its bytes and its slot.  Idempotent.

        ``reuse``: the part was stored and nothing reads its buffer any more, so
        the budget may keep it for a later part of the same size (counted
        against its limit, see :class:`~aqueuepipe.ByteBudget`).
        """
        body, self.body = self.body, PartBody()
        keep: PartBody | None = None
        held = self.lease.held
        # Only a buffer whose memory is what its lease counts is worth keeping (a
        # shrunk one may still hold the memory of its larger past).
        if (
            reuse
            and self.reusable
            and held
            and not body.closed
            and sys.getsizeof(body) - held <= _SPARE_SLACK
        ):
            try:
                body.truncate(held)  # BufferError while a view of it lives
            except BufferError:
                pass
            else:
                keep = body
        if keep is None:
            with contextlib.suppress(BufferError):
                # A view of it outlives the read that made it (in the traceback of
                # the error being raised): the buffer goes with that view.
                body.close()
        self.lease.close(keep=keep)
        slot, self.slot = self.slot, None
        if slot is not None:
            slot.release()
