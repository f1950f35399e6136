"""Open multipart uploads: listed with their age and size, and aborted.

An upload that was created and neither completed nor aborted (another tool's, or
one a ``kill -9`` left) keeps its parts, and S3 bills their storage, but no
listing of objects shows it.  :func:`open_uploads` lists those under a prefix
(ListMultipartUploads, then ListParts for each one's size), oldest first
within S3's key order, optionally only those older than a given age;
:func:`abort_upload` aborts one.  An upload completed or aborted by someone else
between the listing and the abort is not an error: it is gone either way.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass

import botocore.exceptions

from ._client import S3Client
from ._urls import S3Url

__all__ = ["OpenUpload", "abort_upload", "open_uploads"]


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
