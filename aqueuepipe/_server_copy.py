"""Copies the server makes itself: CopyObject and UploadPartCopy within one endpoint.

An S3-to-S3 copy on one endpoint with one client, asking for nothing the client
must compute (``checksums``), moves no body byte through the client: Amazon S3
copies at its own speed, and the budget is not touched.

- **Layout.**  The copy keeps its source's part layout, so the copy has the
  source's ETag (``sync`` and ``skip_existing`` then compare them from
  listings): an object stored in one piece is one CopyObject (S3 copies up to
  5 GiB so); a multipart one is an UploadPartCopy per part of its layout
  (uniform parts as part 1 shows them, else the sizes HeadObject with
  ``PartNumber`` reports), ``part_concurrency`` at a time.  A multipart object
  whose layout the server does not report is one CopyObject up to 5 GiB, parts
  of ``part_size`` above.  Every request is pinned to the ETag the source had
  when the copy began (``x-amz-copy-source-if-match``).
- **What the copy keeps.**  The source's headers and user metadata, or the
  caller's ``metadata``/``content_type``; ``storage_class``, ``sse``; the tags
  only with ``tags=True``, as a streamed copy does.  Its checksum follows the
  rule of every copy: the source's FULL_OBJECT CRC is kept, else CRC64NVME (or
  the caller's ``checksum_algorithm``); a COMPOSITE checksum is kept in the
  same layout.
- **Evidence.**  The destination's checksum, which the server computed from the
  bytes it copied, equal to the source's stored one (``server-side:<algorithm>``),
  or the same MD5-based ETag in the same layout (``server-side:etag-md5``).  Part
  CRCs the server reports are combined and compared before the upload is
  completed, so a multipart copy that disagrees is aborted, never committed.
  Without evidence, ``verify="required"`` streams the copy instead.
- **Refusal.**  A server that does not copy by itself (NotImplemented) or may
  not (AccessDenied) gets a streamed copy instead: :func:`copy_on_server`
  returns False, having left nothing behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

import botocore.exceptions

from ._errors import ChecksumMismatchError
from ._job import Job
from ._resume import Carries, Resumable, ResumedUpload
from ._verify import Sending, full_object
from .checksums import (
    combine_crc,
    crc_digest,
    etag_evidence,
    normalize_etag,
    s3_algorithm,
    stored_checksum,
)
from .s3._client import S3Client
from .s3._layout import PartLayout, part_layout
from .s3._objects import retry_attempts
from .s3._parts import MAX_PART_SIZE, choose_part_size
from .s3._uploads import MultipartUpload
from .s3._urls import S3Url

__all__ = ["REFUSALS", "copy_on_server"]

#: The error codes after which a copy is streamed instead of made by the server.
REFUSALS: Final = frozenset({"NotImplemented", "XNotImplemented", "AccessDenied"})

# Errors of a server-side copy that are about the source object.
_SOURCE_CODES: Final = frozenset(
    {"NoSuchKey", "PreconditionFailed", "412", "InvalidObjectState", "NoSuchVersion"}
)


class _Refused(Exception):
    """The server will not copy by itself: stream instead."""


def combine_crcs(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """The CRC (base64) of the concatenated parts, from each ``(crc base64, size)``."""
    total = 0
    for index, (value, size) in enumerate(parts):
        crc = int.from_bytes(base64.b64decode(value), "big")
        total = crc if index == 0 else combine_crc(algorithm, total, crc, size)
    return base64.b64encode(crc_digest(algorithm, total)).decode()


async def copy_on_server(
    job: Job, client: S3Client, src: S3Url, dst: S3Url, *, refused: set[str]
) -> bool:
    """Copy ``src`` to ``dst`` within ``client``'s endpoint; False: stream it instead.

    ``refused`` holds the endpoints that answered NotImplemented (shared by the
    copies of a call): they are not asked again.  Sets the job's size, ETag,
    parts and evidence, as a streamed copy does.
    """
    endpoint = str(client.meta.endpoint_url)
    if endpoint in refused:
        return False
    try:
        head = await client.head_object(Bucket=src.bucket, Key=src.key, ChecksumMode="ENABLED")
    except botocore.exceptions.ClientError:
        # A HEAD's error has no body to tell a missing bucket from a missing key (or
        # a refusal from one): the streamed copy's GetObject reports it precisely.
        return False
    except Exception as exc:
        with job.errors("source"):
            raise exc from None
    if head.get("SSECustomerAlgorithm"):
        return False  # the server needs the customer's key to read it: not ours to give
    copy = _ServerCopy(job, client, src, dst, head)
    try:
        if await copy.run():
            return True
    except _Refused as exc:
        if str(exc) == "NotImplemented":
            refused.add(endpoint)
    # The streamed copy starts afresh: it reads the object as a GET finds it.
    job.source_etag = None
    return False


class _ServerCopy:
    """One copy the server makes, from the source's HeadObject answer ``head``."""

    def __init__(
        self, job: Job, client: S3Client, src: S3Url, dst: S3Url, head: Mapping[str, Any]
    ) -> None:
        self.job = job
        self.client = client
        self.src = src
        self.dst = dst
        self.head = head
        self.kept = stored_checksum(head)  # the source's stored checksum
        #: Whether the progress listener heard of the copy: after that, a refusal
        #: is an error (a streamed copy would start it again).
        self.started = False
        #: Whether the destination's checksum is the server's own account of the
        #: bytes: a multipart copy whose parts reported no checksum gave the server
        #: no full-object checksum to check, and some (moto) then store another
        #: value; it proves nothing either way.
        self.checksum_is_evidence = True
        job.retries += retry_attempts(head)
        job.size = int(head["ContentLength"])
        job.source_etag = head.get("ETag")

    async def run(self) -> bool:
        job, size = self.job, self.job.size or 0
        layout = await self._layout()
        algorithm, composite = self._algorithm(layout)
        if job.options.verify == "required" and not self._evidence_expected(algorithm, layout):
            return False
        tag_set = None
        if job.options.settings.tags:
            with job.errors("source"):
                tagging = await self.client.get_object_tagging(
                    Bucket=self.src.bucket, Key=self.src.key
                )
            tag_set = list(tagging.get("TagSet", []))
        headers = job.options.settings.headers(source=self.head, tag_set=tag_set)
        job.pause_watch()  # no byte passes here: each request has its own read timeout
        try:
            if layout is None and size <= MAX_PART_SIZE:
                stored = await self._copy_object(headers, algorithm)
            else:
                if layout is None:
                    part = choose_part_size(size, job.options.part_size)
                    whole, rest = divmod(size, part)
                    layout = PartLayout((*(part,) * whole, *((rest,) if rest else ())))
                stored = await self._copy_parts(layout, headers, algorithm, composite)
        finally:
            job.progressed()
        job.committed = True
        if not self.started:  # zero parts (no object has none) or an empty object
            self._advanced(0)
        etag = stored.get("ETag")
        job.etag = str(etag) if etag is not None else None
        job.attempt.verified = self._evidence(stored)
        # Without evidence, a copy that requires it is streamed again: that proves it.
        return bool(job.attempt.verified) or job.options.verify != "required"

    async def _layout(self) -> PartLayout | None:
        """The source's part layout if it is a multipart object that reports one."""
        if _multipart_parts(self.job.source_etag) is None:
            return None
        with self.job.errors("source"):
            return await part_layout(
                self.client, self.src, self.job.size or 0, self.job.source_etag
            )

    def _algorithm(self, layout: PartLayout | None) -> tuple[str | None, bool]:
        """The checksum the copy is stored with, and whether it is COMPOSITE."""
        requested, kept = self.job.options.checksum_algorithm, self.kept
        if (
            requested is None
            and kept is not None
            and kept.parts is not None
            and layout is not None
            and layout.parts == kept.parts
        ):
            return kept.algorithm, True  # the same parts give the same COMPOSITE checksum
        sending = Sending.choose(str(self.client.meta.endpoint_url), requested, self.head)
        return sending.algorithm, False

    def _evidence_expected(self, algorithm: str | None, layout: PartLayout | None) -> bool:
        """Whether the copy will have evidence: the source's checksum kept, or an
        MD5-based ETag the copy will have too (one not encrypted with KMS)."""
        if self.kept is not None and self.kept.algorithm == algorithm:
            return True
        etag = etag_evidence(self.head)
        sse = self.job.options.settings.sse or ""
        return (
            etag is not None
            and not sse.startswith("aws:kms")
            and (etag.parts is None or layout is not None)
        )

    @contextlib.contextmanager
    def _requests(self) -> Iterator[None]:
        """Turn a refusal into :class:`_Refused`; translate the rest (errors about
        the source object as the source's, any other as the destination's)."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code") or "")
            if code in REFUSALS and not self.started:
                raise _Refused(code) from exc
            with self.job.errors("source" if code in _SOURCE_CODES else "destination"):
                raise

    async def _copy_object(
        self, headers: Mapping[str, Any], algorithm: str | None
    ) -> dict[str, Any]:
        """One CopyObject; what the destination then reports of itself."""
        job = self.job
        kwargs: dict[str, Any] = {
            "Bucket": self.dst.bucket,
            "Key": self.dst.key,
            "CopySource": {"Bucket": self.src.bucket, "Key": self.src.key},
            # Everything the destination gets is given, as for a streamed copy: the
            # source's headers (or the caller's), and its tags only with tags=True.
            "MetadataDirective": "REPLACE",
            "TaggingDirective": "REPLACE",
            **headers,
        }
        if job.source_etag is not None:
            kwargs["CopySourceIfMatch"] = job.source_etag
        if algorithm is not None:
            kwargs["ChecksumAlgorithm"] = s3_algorithm(algorithm)
        with self._requests():
            response = await self.client.copy_object(**kwargs)
        job.retries += retry_attempts(response)
        self._advanced(job.size or 0)
        stored: dict[str, Any] = dict(response.get("CopyObjectResult", {}))
        stored["ServerSideEncryption"] = response.get("ServerSideEncryption")
        return await self._with_checksum(stored, algorithm)

    async def _copy_parts(
        self,
        layout: PartLayout,
        headers: Mapping[str, Any],
        algorithm: str | None,
        composite: bool,
    ) -> dict[str, Any]:
        """A multipart upload of UploadPartCopy parts in ``layout``, checked before
        it is completed; aborted on any failure or cancellation."""
        job = self.job
        upload = MultipartUpload(
            self.client, self.dst, s3_algorithm(algorithm) if algorithm else None
        )
        extra = dict(headers)
        if algorithm is not None:
            extra["ChecksumType"] = "COMPOSITE" if composite else "FULL_OBJECT"
        slots = asyncio.Semaphore(job.options.part_concurrency)
        resumed = self._resumed(layout, algorithm, composite)
        name = f"Checksum{upload.checksum_algorithm}"

        async def one(number: int, start: int, size: int) -> None:
            async with slots:
                with self._requests():
                    response = await upload.copy_part(
                        number, self.src, start, size, job.source_etag
                    )
                if resumed is not None:
                    part = upload.parts[number]
                    await resumed.record(number, size, str(part["ETag"]), part.get(name))
            job.retries += retry_attempts(response)
            self._advanced(size)

        try:
            if resumed is None or not await resumed.continue_upload(upload):
                with self._requests():
                    await upload.create(extra)
                if resumed is not None:
                    await resumed.created(upload)
            stored = resumed.stored if resumed is not None else {}
            job.attempt.parts = layout.parts
            with _first_error():
                async with asyncio.TaskGroup() as tg:
                    start = 0
                    for number, size in enumerate(layout.sizes, 1):
                        if number in stored:
                            self._advanced(size)
                        else:
                            tg.create_task(one(number, start, size))
                        start += size
            complete: dict[str, Any] = {}
            whole = self._combined(upload, layout, algorithm, composite)
            if whole is None and algorithm is not None and not composite:
                self.checksum_is_evidence = False
            if whole is not None and algorithm is not None:
                # The server checks the object against it before the object exists.
                complete[f"Checksum{s3_algorithm(algorithm)}"] = whole
                complete["ChecksumType"] = "FULL_OBJECT"
            try:
                with self._requests():
                    response = await upload.complete(complete)
            except asyncio.CancelledError:
                if upload.completed is not None:  # written before the cancellation came
                    job.etag = str(upload.completed.get("ETag"))
                    job.committed = True
                raise
        except BaseException as exc:
            if resumed is not None and not isinstance(exc, _Refused):
                await resumed.failed(exc, upload)
            else:  # refused: the copy is streamed instead, with an upload of its own
                await upload.abort()
                if resumed is not None:
                    resumed.finished()
            raise
        if resumed is not None:
            resumed.finished()
        job.retries += retry_attempts(response)
        return await self._with_checksum(dict(response), algorithm)

    def _resumed(
        self, layout: PartLayout, algorithm: str | None, composite: bool
    ) -> ResumedUpload | None:
        """With ``resume=True``, the journal of this upload (the source is the
        object of the ETag the copy is pinned to); None without it."""
        if not self.job.options.resume:
            return None
        identity = {"etag": self.job.source_etag, "size": layout.size}
        return ResumedUpload(
            self.job,
            self.client,
            self.dst,
            Resumable(identity, _nothing_to_seek),
            layout.size,
            max(layout.sizes),
            layout.sizes,
            carries=Carries(algorithm, False, composite),
        )

    def _advanced(self, size: int) -> None:
        """``size`` more bytes copied: the listener hears of the copy's start first."""
        job = self.job
        if not self.started:
            self.started = True
            job.options.progress.transfer_started(job.src, job.dst, job.size)
        job.options.progress.transfer_advanced(job.src, job.dst, size)

    def _combined(
        self,
        upload: MultipartUpload,
        layout: PartLayout,
        algorithm: str | None,
        composite: bool,
    ) -> str | None:
        """The FULL_OBJECT CRC of the part CRCs the server reported, checked against
        the source's before anything is committed; None if it reported none."""
        if algorithm is None or composite or not full_object(algorithm):
            return None
        name = f"Checksum{s3_algorithm(algorithm)}"
        values = [upload.parts[n].get(name) for n in sorted(upload.parts)]
        if not all(isinstance(value, str) for value in values):
            return None
        whole = combine_crcs(
            algorithm, [(str(v), n) for v, n in zip(values, layout.sizes, strict=True)]
        )
        kept = self.kept
        if (
            kept is not None
            and kept.algorithm == algorithm
            and kept.parts is None
            and kept.value != whole
        ):
            raise ChecksumMismatchError(self.job.src, self.job.dst, algorithm, kept.value, whole)
        return whole

    async def _with_checksum(self, stored: dict[str, Any], algorithm: str | None) -> dict[str, Any]:
        """``stored`` with the destination's checksum, asked with HeadObject when
        the answer did not carry it and the source has one to compare it with."""
        kept = self.kept
        if (
            self.checksum_is_evidence
            and stored_checksum(stored) is None
            and kept is not None
            and kept.algorithm == algorithm
        ):
            with self.job.errors("destination"):
                answer = await self.client.head_object(
                    Bucket=self.dst.bucket, Key=self.dst.key, ChecksumMode="ENABLED"
                )
            self.job.retries += retry_attempts(answer)
            for name in ("ChecksumType", f"Checksum{s3_algorithm(kept.algorithm)}"):
                if answer.get(name) is not None:
                    stored[name] = answer[name]
        return stored

    def _evidence(self, stored: Mapping[str, Any]) -> tuple[str, ...]:
        """What proves the copy holds the source's bytes: the destination's checksum
        equal to the source's, or the same MD5-based ETag.  A checksum of the same
        kind that differs is a ChecksumMismatchError: the object is not the source's."""
        source, copied = self.kept, stored_checksum(stored)
        if (
            self.checksum_is_evidence
            and source is not None
            and copied is not None
            and source.algorithm == copied.algorithm
            and (source.parts is None) == (copied.parts is None)
        ):
            if source.header_value != copied.header_value:
                raise ChecksumMismatchError(
                    self.job.src,
                    self.job.dst,
                    source.algorithm,
                    source.header_value,
                    copied.header_value,
                )
            return (f"server-side:{source.algorithm}",)
        before, after = etag_evidence(self.head), etag_evidence(stored)
        if before is not None and after is not None and before.same_bytes(after):
            return ("server-side:etag-md5",)
        return ()


@contextlib.contextmanager
def _first_error() -> Iterator[None]:
    """Raise what failed the parts out of their task group as it is: a refusal if
    any part met one (then the copy is streamed), else the first error."""
    try:
        yield
    except BaseExceptionGroup as group:
        refused = group.subgroup(lambda exc: isinstance(exc, _Refused))
        chosen = refused if refused is not None else group
        first: BaseException = chosen
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def _multipart_parts(etag: object) -> int | None:
    """The part count an ETag's ``-N`` shows (whatever its encryption), or None."""
    if not isinstance(etag, str):
        return None
    digest, dash, count = normalize_etag(etag).rpartition("-")
    return int(count) if dash and digest and count.isdigit() else None


async def _nothing_to_seek(offset: int) -> None:
    """A copy the server makes reads nothing here: there is no source to seek."""
