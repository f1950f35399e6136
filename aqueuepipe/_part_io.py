"""A part's way in and out of an upload: read from the source, and sent until the
server's answer proves it stored.

:class:`PartIO` is what the one-request upload (:class:`aqueuepipe._upload.Uploader`)
and the multipart one (:class:`aqueuepipe._multipart.MultipartSender`) share: the
reads that fill a part (a stream's part growing as its bytes arrive) and the
request loop that sends a body again while the server refuses or misstores it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import botocore.exceptions

from ._cancel import run_to_end
from ._errors import TransferError
from ._job import ChecksumRefused, Job
from ._part import Digests, Part, PartSource, stored_mismatch
from ._verify import Sending
from .s3._client import S3Client
from .s3._urls import S3Url

__all__ = ["CONDITION_REFUSED", "PartIO", "error_code"]


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
#: Answers to a conditional PUT meaning "not written": the key exists (412), a
#: conflicting write is under way (409), or the server does not take the header.
CONDITION_REFUSED = frozenset(
    {"PreconditionFailed", "ConditionalRequestConflict", "NotImplemented", "InvalidArgument"}
)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


class PartIO:
    """Reading parts from a copy's source, and storing them, for one copy."""

    def __init__(self, job: Job) -> None:
        self.job = job

    async def read(self, part: Part, source: PartSource, start: int = 0) -> int:
        with self.job.errors("source"):
            got = await part.fill(source, start)
        self.job.progressed()
        return got

    async def stream_part(self, part_size: int, slot: asyncio.Semaphore | None = None) -> Part:
        """A part for a stream: a growable lease of at most 1 MiB, up to ``part_size``."""
        first = min(part_size, _FIRST_READ, max(1, self.job.budget.limit // 64))
        return await Part.take(self.job.budget, first, up_to=part_size, slot=slot)

    async def fill_stream_part(self, part: Part, source: PartSource) -> int:
        """Fill a stream's part, doubling it each time it is full, until it holds a
        whole part or the stream ends; return the bytes read."""
        got = await self.read(part, source)
        while got == part.size < part.lease.up_to:
            await part.grow(min(part.lease.up_to, 2 * part.size))
            got += await self.read(part, source, got)
        return got

    async def until_stored(
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
                    code = error_code(exc)
                    if self.may_fall_back(code, self.job.attempt.sending):
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

    def may_fall_back(self, code: str, sending: Sending) -> bool:
        """Whether an error answering a checksum header means "not supported here"."""
        return (
            code in _CHECKSUM_REFUSED
            and sending.algorithm is not None
            and self.job.options.checksum_algorithm is None
        )

    async def delete(self, client: S3Client, dst: S3Url) -> None:
        with contextlib.suppress(Exception):  # the error that made us delete is the one to report
            await run_to_end(client.delete_object(Bucket=dst.bucket, Key=dst.key))

    async def at_end(self, source: PartSource) -> bool:
        """Whether the source has no byte left (one is read to know)."""
        probe = bytearray(1)
        with self.job.errors("source"):
            return not await source.readinto(memoryview(probe))

    async def check_eof(self, source: PartSource) -> None:
        if not await self.at_end(source):
            raise TransferError(
                self.job.src,
                self.job.dst,
                f"the source grew beyond its size of {self.job.size} bytes",
                side="source",
            )
