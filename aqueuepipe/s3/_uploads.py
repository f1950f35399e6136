"""Multipart uploads: one being written, and the open ones listed and aborted.

:class:`MultipartUpload` is one upload as a copy writes it: created, its parts
uploaded (or copied by the server), then completed or aborted, each of those
running to its end even if the caller is cancelled.

An upload that was created and neither completed nor aborted (another tool's, or
one a ``kill -9`` left) keeps its parts, and S3 bills their storage, but no
listing of objects shows it.  :func:`open_uploads` lists those under a prefix
(ListMultipartUploads, then ListParts for each one's size), oldest first
within S3's key order, optionally only those older than a given age;
:func:`abort_upload` aborts one.  An upload completed or aborted by someone else
between the listing and the abort is not an error: it is gone either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from .._cancel import run_to_end
from ._client import S3Client
from ._objects import PartBody
from ._urls import S3Url

__all__ = ["MultipartUpload", "OpenUpload", "abort_upload", "open_uploads"]


@dataclass(frozen=True, slots=True)
class OpenUpload:
    """One open multipart upload: where, since when, and the parts it holds."""

    bucket: str
    key: str
    upload_id: str
    initiated: datetime.datetime
    #: Bytes in the parts stored so far (ListParts).
    size: int
    parts: int

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def age(self, now: datetime.datetime | None = None) -> datetime.timedelta:
        """How long ago the upload was created."""
        return (now or datetime.datetime.now(datetime.UTC)) - self.initiated


async def open_uploads(
    client: S3Client, where: S3Url, *, older_than: datetime.timedelta | None = None
) -> AsyncIterator[OpenUpload]:
    """The open multipart uploads of keys under ``where`` (a bucket, a prefix or a
    key: its key is taken as a prefix), those created at least ``older_than`` ago
    if given, in S3's order (by key, then by when they were created).

    Raises:
        botocore.exceptions.ClientError: the listing failed (untranslated, as
            every call of this package).
    """
    if older_than is not None and older_than < datetime.timedelta(0):
        raise ValueError(f"older_than must not be negative, got {older_than}")
    now = datetime.datetime.now(datetime.UTC)
    paginator = client.get_paginator("list_multipart_uploads")
    async for page in paginator.paginate(Bucket=where.bucket, Prefix=where.key):
        for entry in page.get("Uploads", []):
            initiated = entry["Initiated"]
            if older_than is not None and now - initiated < older_than:
                continue
            size, parts = await _stored(client, where.bucket, entry["Key"], entry["UploadId"])
            if parts is None:
                continue  # completed or aborted since the listing
            yield OpenUpload(where.bucket, entry["Key"], entry["UploadId"], initiated, size, parts)


async def _stored(
    client: S3Client, bucket: str, key: str, upload_id: str
) -> tuple[int, int | None]:
    """The bytes and number of the parts an upload holds; (0, None) if it is gone."""
    size = parts = 0
    paginator = client.get_paginator("list_parts")
    try:
        async for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                size += int(part["Size"])
                parts += 1
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return 0, None
        raise
    return size, parts


async def abort_upload(client: S3Client, upload: OpenUpload) -> bool:
    """Abort ``upload``; False if it was already gone (completed or aborted)."""
    try:
        await client.abort_multipart_upload(
            Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id
        )
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return False
        raise
    return True


@dataclass(slots=True)
class MultipartUpload:
    """One multipart upload: create, upload parts, complete or abort."""

    client: S3Client
    url: S3Url
    checksum_algorithm: str | None = None  # S3's name, e.g. "SHA256"
    upload_id: str | None = None
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: CompleteMultipartUpload's response, once the object exists.
    completed: Mapping[str, Any] | None = None

    async def create(self, extra: Mapping[str, Any] | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.url.bucket, "Key": self.url.key, **(extra or {})}
        if self.checksum_algorithm is not None:
            kwargs["ChecksumAlgorithm"] = self.checksum_algorithm
        started = time.monotonic()
        task = asyncio.ensure_future(self.client.create_multipart_upload(**kwargs))
        try:
            response = await run_to_end(task)
        except asyncio.CancelledError:
            # Cancelled while the request ran: keep its id, so it can be aborted.
            if not task.cancelled() and task.exception() is None:
                self.upload_id = str(task.result()["UploadId"])
            raise
        self.upload_id = str(response["UploadId"])
        if response.get("ResponseMetadata", {}).get("RetryAttempts"):
            await run_to_end(self._abort_lost_attempts(time.monotonic() - started))

    async def _abort_lost_attempts(self, elapsed: float) -> None:
        """Abort the uploads that earlier attempts of a retried create made.

        An attempt whose answer was lost (a reset connection, a cut body) may have
        created an upload the client never learned the id of; left open, it costs
        storage until a lifecycle rule removes it.  They are the uploads of this
        key initiated, by the server's clock, within the time the retried call
        took before this upload.  (A writer of the same key that started in that
        same window would see its upload aborted and fail; it never gets a wrong
        object.)  Best effort: without ListMultipartUploads permission nothing
        is aborted.
        """
        with contextlib.suppress(
            botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError
        ):
            listed = await self.client.list_multipart_uploads(
                Bucket=self.url.bucket, Prefix=self.url.key
            )
            uploads = [u for u in listed.get("Uploads", []) if u.get("Key") == self.url.key]
            ours = next((u for u in uploads if u.get("UploadId") == self.upload_id), None)
            if ours is None or not isinstance(ours.get("Initiated"), datetime.datetime):
                return
            since = ours["Initiated"] - datetime.timedelta(seconds=elapsed + 1)
            for upload in uploads:
                initiated = upload.get("Initiated")
                if (
                    upload.get("UploadId") != self.upload_id
                    and isinstance(initiated, datetime.datetime)
                    and since <= initiated <= ours["Initiated"]
                ):
                    await self.client.abort_multipart_upload(
                        Bucket=self.url.bucket, Key=self.url.key, UploadId=upload["UploadId"]
                    )

    async def upload_part(
        self,
        number: int,
        body: PartBody,
        size: int,
        checksum_b64: str | None,
        content_md5: str | None = None,
    ) -> Mapping[str, Any]:
        """Upload part ``number`` of ``size`` bytes from ``body``; return the response.

        ``checksum_b64`` (of the upload's algorithm) and ``content_md5`` are sent as
        headers, so the server can refuse a body that disagrees with them.  ``body``
        is rewound by botocore if the request is retried.
        """
        body.seek(0)
        kwargs: dict[str, Any] = {
            "Bucket": self.url.bucket,
            "Key": self.url.key,
            "UploadId": self.upload_id,
            "PartNumber": number,
            "Body": body,
            "ContentLength": size,
        }
        if content_md5 is not None:
            kwargs["ContentMD5"] = content_md5
        part: dict[str, Any] = {"PartNumber": number}
        if self.checksum_algorithm is not None and checksum_b64 is not None:
            name = f"Checksum{self.checksum_algorithm}"
            kwargs["ChecksumAlgorithm"] = self.checksum_algorithm
            kwargs[name] = checksum_b64
            part[name] = checksum_b64
        response: Mapping[str, Any] = await self.client.upload_part(**kwargs)
        part["ETag"] = str(response["ETag"])
        self.parts[number] = part
        return response

    def take_stored(self, number: int, etag: str, checksum_b64: str | None) -> None:
        """Complete the upload with part ``number`` that the server holds already
        (stored by an earlier run): its ETag and checksum as the server has them."""
        part: dict[str, Any] = {"PartNumber": number, "ETag": etag}
        if self.checksum_algorithm is not None and checksum_b64 is not None:
            part[f"Checksum{self.checksum_algorithm}"] = checksum_b64
        self.parts[number] = part

    async def copy_part(
        self,
        number: int,
        source: S3Url,
        start: int,
        size: int,
        if_match: str | None,
    ) -> Mapping[str, Any]:
        """Part ``number`` copied by the server from ``size`` bytes of ``source`` at
        ``start`` (UploadPartCopy); return the response.

        ``if_match`` pins the source to the ETag the copy began with.  The part's
        ETag and, for an upload created with a checksum algorithm, its checksum
        (which the server computed) are kept for :meth:`complete`.
        """
        kwargs: dict[str, Any] = {
            "Bucket": self.url.bucket,
            "Key": self.url.key,
            "UploadId": self.upload_id,
            "PartNumber": number,
            "CopySource": {"Bucket": source.bucket, "Key": source.key},
            "CopySourceRange": f"bytes={start}-{start + size - 1}",
        }
        if if_match is not None:
            kwargs["CopySourceIfMatch"] = if_match
        response: Mapping[str, Any] = await self.client.upload_part_copy(**kwargs)
        result = response.get("CopyPartResult", {})
        part: dict[str, Any] = {"PartNumber": number, "ETag": str(result["ETag"])}
        if self.checksum_algorithm is not None:
            name = f"Checksum{self.checksum_algorithm}"
            if result.get(name):
                part[name] = result[name]
        self.parts[number] = part
        return response

    async def complete(self, extra: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """Complete the upload with every part uploaded; ``extra`` are more arguments.

        Runs to the end even if the caller is cancelled meanwhile; then the
        cancellation is re-raised, and :attr:`completed` holds the response if the
        object was written all the same (it must not be aborted, nor reported lost).
        """
        ordered = [self.parts[n] for n in sorted(self.parts)]
        task = asyncio.ensure_future(
            self.client.complete_multipart_upload(
                Bucket=self.url.bucket,
                Key=self.url.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": ordered},
                **(extra or {}),
            )
        )
        try:
            response: Mapping[str, Any] = await run_to_end(task)
        except asyncio.CancelledError:
            if not task.cancelled() and task.exception() is None:
                self.completed = task.result()
                self.upload_id = None
            raise
        self.upload_id = None
        self.completed = response
        return response

    async def abort(self) -> None:
        """Abort the upload so no parts are left (and billed) on the server.

        Runs to the end even if the calling task is cancelled meanwhile; the
        cancellation is re-raised afterwards.  Errors of the abort itself are
        suppressed: the caller is already handling the error that caused it.
        """
        upload_id, self.upload_id = self.upload_id, None
        if upload_id is None:
            return
        with contextlib.suppress(Exception):
            # The error that made the caller abort is the one worth reporting.
            await run_to_end(
                self.client.abort_multipart_upload(
                    Bucket=self.url.bucket, Key=self.url.key, UploadId=upload_id
                )
            )
