"""One copy's record, and the attempt at it that a read again replaces whole.

A :class:`Job` is what a copy is and what it found: its URLs and options, the
object's size and ETag, the retries, whether the destination was written.  Its
:class:`Attempt` is what one read of the source builds up (the hashes, the check
of the source, what the uploads carry, the evidence gathered); reading the
source again starts from a new attempt, so nothing of the failed read is
carried into the next.  The copy's parts (:mod:`aqueuepipe._upload`, its
directions :mod:`aqueuepipe._engine`, the server's copies
:mod:`aqueuepipe._server_copy`) share the one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ._errors import Side, TransferError
from ._options import Options
from ._verify import Sending, SourceCheck, SourceMismatch
from .checksums import Hasher, StreamHashes
from .s3._objects import retry_attempts
from .s3._translate import translate_error
from .s3._urls import S3Url

__all__ = ["Attempt", "ChecksumRefused", "Job", "KeyPresent", "decisions_unwrapped"]


class KeyPresent(Exception):
    """A PutObject with ``If-None-Match: *`` was refused: the key is not known absent."""


class ChecksumRefused(Exception):
    """The server refused the checksum header of a part: start again on the MD5 path."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        super().__init__(endpoint_url)


@dataclass(slots=True)
class Attempt:
    """What one read of the source builds up; reading again starts a new one."""

    #: What the upload requests carry (kept by the next attempt: a server that
    #: refused checksum headers keeps refusing them).
    sending: Sending
    #: What PutObject / CreateMultipartUpload take besides the bytes (_metadata).
    headers: dict[str, Any]
    hashes: StreamHashes
    #: The check of the bytes read against the source's own evidence.
    check: SourceCheck | None = None
    #: Whether every answer's ETag was the MD5 it was sent with.
    etags_matched: bool = True
    #: The FULL_OBJECT CRC of a multipart upload, combined from its parts' CRCs.
    full: Hasher | None = None
    #: The hashing of the last part handed out: parts are hashed in source order.
    hash_tail: asyncio.Future[None] | None = None
    parts: int = 0
    #: The evidence that proved the copy, e.g. ("source:crc32", "destination:etag-md5").
    verified: tuple[str, ...] = ()

    def next(self, checksums: tuple[str, ...]) -> Attempt:
        """A fresh attempt that sends what this one sent."""
        return Attempt(self.sending, self.headers, StreamHashes(checksums))


class Job:
    """The record of one copy: what it is, what it found, and its current attempt."""

    def __init__(
        self, src: str, dst: str, src_loc: object, dst_loc: object, options: Options
    ) -> None:
        self.src = src
        self.dst = dst
        self.locations: dict[Side, object] = {"source": src_loc, "destination": dst_loc}
        self.options = options
        self.budget = options.budget
        self.attempt = Attempt(
            Sending(algorithm=None, md5=False, trusted=False),
            {},
            StreamHashes(options.checksums),
        )
        self.size: int | None = None
        self.etag: str | None = None
        #: Requests botocore retried, bodies resumed, reads and requests repeated.
        self.retries = 0
        #: The ETag the source had when the copy began (None for a local file).
        self.source_etag: str | None = None
        #: The destination was written, even if the copy was cancelled after that.
        self.committed = False
        #: A listing made just before showed no destination object (see
        #: :meth:`~aqueuepipe._upload.Uploader._put_part`).
        self.dst_absent = False
        self._deadline: asyncio.Timeout | None = None

    def read_again(self) -> None:
        """Start a new attempt (the same sending, fresh hashes and evidence)."""
        self.attempt = self.attempt.next(self.options.checksums)

    # -- stalls -------------------------------------------------------------------

    def watch(self, deadline: asyncio.Timeout) -> None:
        """Push ``deadline`` back whenever bytes move: it measures stalls."""
        self._deadline = deadline
        self.progressed()

    def pause_watch(self) -> None:
        """Stop measuring stalls (while the server copies: no byte passes here)."""
        if self._deadline is not None:
            self._deadline.reschedule(None)

    def progressed(self) -> None:
        """Bytes moved: measure the next stall from now."""
        deadline = self._deadline
        stall = self.options.policy.stall_timeout
        if deadline is not None and stall is not None:
            deadline.reschedule(asyncio.get_running_loop().time() + stall)

    def count(self, response: Mapping[str, Any]) -> None:
        """Add the retries botocore made for ``response``."""
        self.retries += retry_attempts(response)

    # -- errors -------------------------------------------------------------------

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
        except (TransferError, SourceMismatch, ChecksumRefused, KeyPresent):
            raise
        except Exception as exc:
            if side == "source" and isinstance(exc, botocore.exceptions.FlexibleChecksumError):
                # The client validated a body against its checksum itself (a caller's
                # client with checksum_when="when_supported"): the bad read our own
                # check finds, so it is read again the same way.
                raise _client_checked(exc) from exc
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

    # -- evidence -----------------------------------------------------------------

    def verify_source(self) -> None:
        """Compare what was read with the source's evidence (raises SourceMismatch);
        once per attempt."""
        attempt = self.attempt
        check, attempt.check = attempt.check, None
        if check is not None:
            check.verify()
            attempt.verified = (*attempt.verified, check.label)

    def verify_destination(self) -> None:
        """Add the evidence the server's answers gave; none under ``verify="required"``
        fails the copy."""
        attempt = self.attempt
        label = attempt.sending.evidence(attempt.etags_matched)
        if label is not None:
            attempt.verified = (*attempt.verified, label)
        elif self.options.verify == "required":
            raise TransferError(
                self.src,
                self.dst,
                "destination: the server gave no evidence that it stored the bytes sent "
                "(verify='required')",
                side="destination",
            )

    def check_length(self, got: int, size: int, expected: int | None = None) -> None:
        """Fail the copy if the source gave ``got`` bytes where ``expected`` (``size``)
        were due."""
        want = size if expected is None else expected
        if got != want:
            raise TransferError(
                self.src, self.dst, f"the source ended after {got} of {size} bytes", side="source"
            )


# How botocore words a body that disagrees with its x-amz-checksum-* header.
_CLIENT_CHECK = re.compile(
    r"Expected checksum (?P<stored>\S+) did not match calculated checksum: (?P<computed>\S+)"
)


def _client_checked(exc: botocore.exceptions.FlexibleChecksumError) -> SourceMismatch:
    """The bad read a client that checks bodies itself found, as our own check would
    report it (what the bytes give and what the source reports, where botocore says)."""
    found = _CLIENT_CHECK.search(str(exc))
    computed, stored = found.group("computed", "stored") if found else ("?", "?")
    return SourceMismatch("x-amz-checksum (checked by the client)", computed, stored)


@contextlib.contextmanager
def decisions_unwrapped() -> Iterator[None]:
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
