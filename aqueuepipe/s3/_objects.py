"""Reading an S3 object as a stream, and writing one with PutObject or a multipart upload.

These are thin, typed wrappers over the S3 calls; the copy engine in
:mod:`aqueuepipe.transfer` decides what to call when.  Errors from botocore pass
through untranslated: the engine translates them once, where it knows both sides
of the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._cancel import run_to_end
from ._client import S3Client
from ._urls import S3Url

__all__ = ["READ_SIZE", "MultipartUpload", "ObjectStream", "open_object"]

#: The most bytes asked of a response body at once.  aiohttp raises its receive
#: buffer to twice the largest read, so reading a whole part in one call would let
#: it buffer two parts' worth outside the budget; this keeps it at 512 KiB.
READ_SIZE = 256 * 1024


@dataclass(slots=True)
class ObjectStream:
    """An open GetObject response body."""

    url: S3Url
    size: int
    etag: str
    response: Mapping[str, Any] = field(repr=False)  # GetObject's fields but Body
    _body: Any = field(repr=False)

    async def readinto(self, buf: memoryview) -> int:
        """Fill ``buf`` from the body; return the bytes read (fewer only at EOF).

        A body's ``read`` returns *up to* the bytes asked for, so this loops until
        the buffer is full: a part is never cut short by a slow network.

        Raises:
            botocore's IncompleteReadError / ResponseStreamingError, or
            AioReadTimeoutError: the body broke off or stalled.
        """
        filled = 0
        total = len(buf)
        while filled < total:
            n: int = await self._body.readinto(buf[filled : filled + READ_SIZE])
            if n == 0:
                break
            filled += n
        return filled

    async def read(self, n: int = READ_SIZE) -> bytes:
        """Return up to ``n`` bytes as they arrive; ``b""`` at EOF."""
        data: bytes = await self._body.read(min(n, READ_SIZE))
        return data


@contextlib.asynccontextmanager
async def open_object(
    client: S3Client, url: S3Url, *, if_match: str | None = None, byte_range: str | None = None
) -> AsyncIterator[ObjectStream]:
    """GetObject ``url`` and yield its body; the connection is released on exit.

    The body is closed on every path out of the block, including errors and
    cancellation, so a pooled connection never leaks.
    """
    kwargs: dict[str, str] = {"Bucket": url.bucket, "Key": url.key}
    if if_match is not None:
        kwargs["IfMatch"] = if_match
    if byte_range is not None:
        kwargs["Range"] = byte_range
    response = await client.get_object(**kwargs)
    body = response["Body"]
    try:
        yield ObjectStream(
            url=url,
            size=int(response["ContentLength"]),
            etag=str(response["ETag"]),
            response={k: v for k, v in response.items() if k != "Body"},
            _body=body,
        )
    finally:
        body.close()


@dataclass(slots=True)
class MultipartUpload:
    """One multipart upload: create, upload parts, complete or abort."""

    client: S3Client
    url: S3Url
    checksum_algorithm: str | None = None  # S3's name, e.g. "SHA256"
    upload_id: str | None = None
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)

    async def create(self, extra: Mapping[str, Any] | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.url.bucket, "Key": self.url.key, **(extra or {})}
        if self.checksum_algorithm is not None:
            kwargs["ChecksumAlgorithm"] = self.checksum_algorithm
        task = asyncio.ensure_future(self.client.create_multipart_upload(**kwargs))
        try:
            response = await run_to_end(task)
        except asyncio.CancelledError:
            # Cancelled while the request ran: keep its id, so it can be aborted.
            if not task.cancelled() and task.exception() is None:
                self.upload_id = str(task.result()["UploadId"])
            raise
        self.upload_id = str(response["UploadId"])

    async def upload_part(
        self, number: int, body: io.BytesIO, size: int, checksum_b64: str | None
    ) -> Mapping[str, Any]:
        """Upload part ``number`` of ``size`` bytes from ``body``; return the response.

        ``body`` is rewound by botocore if the request is retried.
        """
        kwargs: dict[str, Any] = {
            "Bucket": self.url.bucket,
            "Key": self.url.key,
            "UploadId": self.upload_id,
            "PartNumber": number,
            "Body": body,
            "ContentLength": size,
        }
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

    async def complete(self) -> Mapping[str, Any]:
        ordered = [self.parts[n] for n in sorted(self.parts)]
        response: Mapping[str, Any] = await run_to_end(
            self.client.complete_multipart_upload(
                Bucket=self.url.bucket,
                Key=self.url.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": ordered},
            )
        )
        self.upload_id = None
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
