"""How one copy uploads: parts reserved from the budget, hashed, sent, proven stored.

:class:`Uploader` is everything that writes a copy's bytes to S3: one
PutObject, or a multipart upload whose parts go up while the source still
streams, each part sent again until the server's answer proves it stored the
bytes.  It works on the copy's :class:`~aqueuepipe._job.Job` (and its current
attempt); the copy's directions (:class:`aqueuepipe._engine.Copy`) hand it
their source.  A multipart upload is :class:`~aqueuepipe._multipart.MultipartSender`'s,
and both read and send their parts with :class:`~aqueuepipe._part_io.PartIO`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from ._errors import ChecksumMismatchError, TransferError
from ._job import ChecksumRefused, Job, KeyPresent
from ._multipart import MultipartSender
from ._part import Digests, Part, PartSource, hash_part, md5_of
from ._part_io import CONDITION_REFUSED, PartIO, error_code
from ._resume import Resumable, ResumedUpload
from .checksums import etag_is_md5_based, s3_algorithm
from .s3._client import S3Client
from .s3._endpoints import note_checksum_headers_refused
from .s3._layout import PartLayout
from .s3._objects import ObjectStream
from .s3._parts import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, choose_part_size
from .s3._urls import S3Url

__all__ = ["Uploader"]


class Uploader:
    """The uploads of one copy to S3: what its directions hand their source to."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.io = PartIO(job)
        self.multipart = MultipartSender(job, self.io)

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
        await self.multipart.send(
            source, size, part_size, client, dst, resumed=resumed, sizes=sizes
        )

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

    async def _put(self, source: PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        part = await Part.take(self.job.budget, size)
        try:
            self.job.check_length(await self.io.read(part, source), size)
            await self.io.check_eof(source)
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
                await self.multipart.send(
                    None, part.size, part.size, client, dst, first=part, first_digests=digests
                )
                return
        try:
            response = await self._send_put(client, dst, part, digests, if_absent=if_absent)
        except KeyPresent:
            self.job.dst_absent = False
            await self.multipart.send(
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
        (:meth:`PartIO.fill_stream_part`): a 4-byte stream never waits for 8 MiB of a
        busy budget, and a client that stops sending mid-part holds about twice
        what it sent, not a whole part.
        """
        part_size = choose_part_size(None, self.job.options.part_size)
        part = await self.io.stream_part(part_size)
        try:
            got = await self.io.fill_stream_part(part, source)
            if got == part_size:
                await self.multipart.send(source, None, part_size, client, dst, first=part)
                return
            part.shrink(got)
            self.job.size = got
            await self._put_part(part, client, dst)
        finally:
            part.close()  # idempotent: the upload closed it once the server had it

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
                if conditional[0] and error_code(exc) in CONDITION_REFUSED:
                    raise KeyPresent from exc
                raise
            conditional[0] = False
            return response

        endpoint = client.meta.endpoint_url
        part.body.on_sent = self.job.progressed
        part.body.rate = self.job.options.upload_rate
        try:
            try:
                response = await self.io.until_stored(send, digests, None, endpoint)
            except ChecksumRefused:
                self.job.attempt.sending = self.job.attempt.sending.without_flexible_checksum()
                response = await self.io.until_stored(send, digests, None, endpoint)
                note_checksum_headers_refused(endpoint)
        except ChecksumMismatchError:
            # The server kept something else under the key: never leave it there.
            await self.io.delete(client, dst)
            raise
        try:
            self.job.verify_destination()
        except TransferError:
            await self.io.delete(client, dst)
            raise
        return response
