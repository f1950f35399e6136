"""Reading an S3 object as a stream, and the body a part is written from.

These are thin, typed wrappers over the S3 calls (a multipart upload being
written is :class:`aqueuepipe.s3._uploads.MultipartUpload`); the copy engine in
:mod:`aqueuepipe.transfer` decides what to call when.  Errors from botocore pass
through untranslated: the engine translates them once, where it knows both sides
of the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import aiohttp.payload
import botocore.exceptions

from .._rate import RateLimit
from ._client import S3Client
from ._retry import RetryPolicy
from ._urls import S3Url

__all__ = [
    "CHUNK_READ_SIZE",
    "READ_SIZE",
    "WRITE_SIZE",
    "ObjectStream",
    "PartBody",
    "open_object",
    "read_ahead",
    "retry_attempts",
]

#: The most bytes asked of a response body at once.  aiohttp raises its receive
#: buffer to twice the largest read, so reading a whole part in one call would let
#: it buffer two parts' worth outside the budget; this keeps it at 512 KiB.
READ_SIZE = 256 * 1024

#: The bytes asked of a body at once when it is passed on chunk by chunk (to a
#: stream's consumer): aiohttp then buffers less of it ahead.
CHUNK_READ_SIZE = 64 * 1024


def read_ahead(read_size: int) -> int:
    """What aiohttp holds of an open body read ``read_size`` bytes at a time, beyond
    what the reader took: twice the largest read (its high-water mark), one socket
    read (256 KiB) and the response's own objects.  Measured with tracemalloc over
    20 bodies left unread: 0.65 MiB at 64 KiB reads, 1.3 MiB at 256 KiB."""
    return 4 * read_size + 448 * 1024


#: The most bytes of a :class:`PartBody` handed to the connection at once.
WRITE_SIZE = 1024 * 1024


class PartBody(io.BytesIO):
    """The bytes of one part or object to upload: a BytesIO sent without copies.

    botocore takes it as any file-like body (and rewinds it to resend the part on
    a retry).  aiohttp would send a plain BytesIO in 64 KiB reads, each one a copy,
    a trip round the event loop and a ``send()``; a ``PartBody`` goes out as
    slices of its own buffer, :data:`WRITE_SIZE` at a time.  Each slice is sent
    with aiohttp's flow control, so the connection buffers at most about one
    slice beyond what the socket takes.
    """

    __slots__ = ("on_sent", "rate")

    def __init__(self) -> None:
        super().__init__()
        #: Called after each slice goes out, so a slow destination that still takes
        #: bytes is never taken for a stalled one.
        self.on_sent: Callable[[], None] | None = None
        #: The bandwidth cap each slice waits for before it goes out, if any.
        self.rate: RateLimit | None = None


class _PartPayload(aiohttp.payload.BytesIOPayload):
    """aiohttp's payload for a :class:`PartBody`: memoryview slices of its buffer."""

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        self._set_or_restore_start_position()  # a resent request starts over
        value = self._value
        start = value.tell()
        with value.getbuffer() as view:
            end = len(view) if content_length is None else min(len(view), start + content_length)
            on_sent = value.on_sent if isinstance(value, PartBody) else None
            rate = value.rate if isinstance(value, PartBody) else None
            for offset in range(start, end, WRITE_SIZE):
                piece = view[offset : min(offset + WRITE_SIZE, end)]
                if rate is not None:
                    await rate.take(len(piece))
                await writer.write(piece)
                if on_sent is not None:
                    on_sent()
        value.seek(end)


# aiohttp versions without the hooks used above send a PartBody like any BytesIO.
if callable(getattr(aiohttp.payload.BytesIOPayload, "_set_or_restore_start_position", None)):
    aiohttp.payload.register_payload(_PartPayload, PartBody, order=aiohttp.payload.Order.try_first)


# What a response body raises when it breaks off, stalls or ends short.
_BROKEN_BODY: tuple[type[BaseException], ...] = (
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ReadTimeoutError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientConnectionError,
    ConnectionError,
    TimeoutError,
)


def retry_attempts(response: Mapping[str, Any]) -> int:
    """How many times botocore retried the request that got ``response``."""
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))


class ObjectStream:
    """An open GetObject body that resumes where it broke off.

    If the body breaks off, stalls past the read timeout or ends short, the
    stream asks for the rest with a ranged GetObject pinned to the first
    response's ETag (``If-Match``), so bytes already read are never read again
    and a changed object fails with 412 (PreconditionFailed) instead of mixing
    two versions.  ``policy`` bounds the resumes; see :mod:`aqueuepipe.s3._retry`.
    """

    __slots__ = (
        "_body",
        "_client",
        "_first_failure",
        "_policy",
        "etag",
        "on_progress",
        "position",
        "rate",
        "response",
        "resumes",
        "retries",
        "size",
        "start",
        "url",
    )

    def __init__(
        self,
        client: S3Client,
        url: S3Url,
        response: Mapping[str, Any],
        policy: RetryPolicy,
        start: int = 0,
    ) -> None:
        self._client = client
        self._policy = policy
        self._body: Any = response["Body"]
        self._first_failure: float | None = None
        self.url = url
        #: The first byte read (a ranged GET continuing a download).
        self.start = start
        self.size = start + int(response["ContentLength"])
        self.etag = str(response["ETag"])
        self.response = {k: v for k, v in response.items() if k != "Body"}
        self.position = start
        self.resumes = 0
        #: Retries of the requests (botocore's) plus resumes of the body.
        self.retries = retry_attempts(response)
        #: Called whenever bytes arrive (the copy's stall watchdog).
        self.on_progress: Callable[[], None] | None = None
        #: The bandwidth cap the bytes read wait for, if any.
        self.rate: RateLimit | None = None

    async def readinto(self, buf: memoryview) -> int:
        """Fill ``buf`` from the body; return the bytes read (fewer only at EOF).

        A body's ``read`` returns *up to* the bytes asked for, so this loops until
        the buffer is full: a part is never cut short by a slow network.

        Raises:
            botocore.exceptions.ClientError: a resume was refused (412 when the
                object changed).
            The body's last error, when the retry policy is exhausted.
        """
        filled = 0
        total = len(buf)
        while filled < total:
            try:
                n: int = await self._body.readinto(buf[filled : filled + READ_SIZE])
            except _BROKEN_BODY as exc:
                await self._resume(exc)
                continue
            if n == 0:
                break
            filled += n
            self.position += n
            if self.on_progress is not None:
                self.on_progress()
            if self.rate is not None:
                await self.rate.take(n)
        return filled

    async def read(self, n: int = READ_SIZE) -> bytes:
        """Return up to ``n`` bytes as they arrive; ``b""`` at EOF.

        Raises:
            As :meth:`readinto`.
        """
        while True:
            try:
                data: bytes = await self._body.read(min(n, READ_SIZE))
            except _BROKEN_BODY as exc:
                await self._resume(exc)
                continue
            self.position += len(data)
            if self.rate is not None:
                await self.rate.take(len(data))
            return data

    def close(self) -> None:
        """Close the body, releasing its connection."""
        self._body.close()

    async def seek(self, offset: int) -> None:
        """Read from byte ``offset`` on: the body is replaced by a ranged GetObject
        pinned to the first response's ETag (``If-Match``), so a resumed upload
        reads only the bytes it lacks, of the same object.

        Raises:
            botocore.exceptions.ClientError: 412 (PreconditionFailed) when the object
                changed.
        """
        if offset == self.position:
            return
        self._body.close()
        self.position = offset
        if offset >= self.size:
            self._body = _EndedBody()
            return
        response = await self._client.get_object(
            Bucket=self.url.bucket,
            Key=self.url.key,
            Range=f"bytes={offset}-",
            IfMatch=self.etag,
        )
        self._body = response["Body"]
        self.retries += retry_attempts(response)
        expected = f"bytes {offset}-{self.size - 1}/{self.size}"
        if response.get("ContentRange") != expected:
            raise botocore.exceptions.IncompleteReadError(
                actual_bytes=offset, expected_bytes=self.size
            )

    async def _resume(self, exc: BaseException) -> None:
        """Replace the broken body with one for the rest of the object."""
        loop = asyncio.get_running_loop()
        if self._first_failure is None:
            self._first_failure = loop.time()
        policy = self._policy
        self.resumes += 1
        if (
            self.resumes >= policy.attempts
            or loop.time() - self._first_failure > policy.max_seconds
            or self.position >= self.size
        ):
            raise exc
        self._body.close()
        await asyncio.sleep(policy.backoff(self.resumes))
        response = await self._client.get_object(
            Bucket=self.url.bucket,
            Key=self.url.key,
            Range=f"bytes={self.position}-",
            IfMatch=self.etag,
        )
        self._body = response["Body"]
        self.retries += 1 + retry_attempts(response)
        expected = f"bytes {self.position}-{self.size - 1}/{self.size}"
        if response.get("ContentRange") != expected:
            raise botocore.exceptions.IncompleteReadError(
                actual_bytes=self.position, expected_bytes=self.size
            ) from exc


class _EndedBody:
    """The body of a stream moved to its end: nothing more to read."""

    async def readinto(self, buf: memoryview) -> int:
        return 0

    async def read(self, n: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def open_object(
    client: S3Client,
    url: S3Url,
    *,
    policy: RetryPolicy | None = None,
    if_match: str | None = None,
    start: int = 0,
    evidence: Mapping[str, Any] | None = None,
) -> AsyncIterator[ObjectStream]:
    """GetObject ``url`` and yield its body; the connection is released on exit.

    The response carries the object's stored S3 checksum, if it has one
    (``ChecksumMode=ENABLED``).  ``if_match`` pins the read to an ETag (a re-read
    of an object whose first read was bad).  The body is closed on every path out
    of the block, including errors and cancellation, so a pooled connection never
    leaks.
    """
    kwargs: dict[str, Any] = {"Bucket": url.bucket, "Key": url.key, "ChecksumMode": "ENABLED"}
    if if_match is not None:
        kwargs["IfMatch"] = if_match
    if start:
        # The rest of an object a download has the start of: pinned to its ETag, and
        # with the object's own answer (HeadObject) as the evidence for the check.
        assert if_match is not None and evidence is not None
        kwargs["Range"] = f"bytes={start}-"
    response = await client.get_object(**kwargs)
    stream = ObjectStream(client, url, response, policy or RetryPolicy(), start)
    if start:
        stream.response = {k: v for k, v in (evidence or {}).items() if k != "Body"}
        expected = f"bytes {start}-{stream.size - 1}/{stream.size}"
        if response.get("ContentRange") != expected:
            stream.close()
            raise botocore.exceptions.IncompleteReadError(
                actual_bytes=start, expected_bytes=stream.size
            )
    try:
        yield stream
    finally:
        stream.close()
