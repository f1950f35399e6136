"""The exception hierarchy of aqueuepipe.

Every exception the library raises on its own account derives from
:class:`AqueuepipeError`.  Errors of the libraries underneath (botocore, aiohttp,
the OS) are translated at one boundary and chained as ``__cause__``, so a user
never has to import them to catch ours.  Bad arguments raise :class:`ValueError`
before any I/O.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AqueuepipeError",
    "ChecksumMismatchError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "ObjectChangedError",
    "PipeAbortedError",
    "PipeClosedError",
    "PipeError",
    "TransferError",
]


class AqueuepipeError(Exception):
    """Base class of every exception raised by aqueuepipe."""


class PipeError(AqueuepipeError):
    """Base class of the errors raised by :class:`~aqueuepipe.AsyncPipe`."""


class PipeClosedError(PipeError):
    """The writer side closed the pipe and something tried to write to it."""

    def __init__(self, message: str = "write to a closed pipe") -> None:
        super().__init__(message)


class PipeAbortedError(PipeError):
    """One side gave up; the pipe is unusable.

    ``__cause__`` is the exception the pipe was aborted with, if any.
    """

    def __init__(self, message: str = "the pipe was aborted") -> None:
        super().__init__(message)


Side = Literal["source", "destination"]
"""Which end of a copy an error is about."""


class TransferError(AqueuepipeError):
    """A copy from ``src`` to ``dst`` failed.

    ``side`` says on which end (``"source"`` or ``"destination"``; ``None`` when the
    failure belongs to neither, such as a stall of the whole copy).  It is decided
    where the failing call was made.  ``__cause__`` is the underlying botocore,
    aiohttp or OS error, when there is one.
    """

    def __init__(self, src: str, dst: str, reason: str, *, side: Side | None = None) -> None:
        self.src = src
        self.dst = dst
        self.reason = reason
        self.side: Side | None = side
        super().__init__(src, dst, reason)

    def __str__(self) -> str:
        return f"copy {self.src} -> {self.dst} failed: {self.reason}"


class NoSuchBucketError(TransferError):
    """A bucket named by the source or the destination does not exist."""

    def __init__(self, src: str, dst: str, bucket: str) -> None:
        self.bucket = bucket
        super().__init__(src, dst, f"bucket {bucket!r} does not exist")
        self.args = (src, dst, bucket)  # so the exception pickles (Dask workers)


class NoSuchKeyError(TransferError):
    """The source object does not exist."""

    def __init__(self, src: str, dst: str, bucket: str, key: str) -> None:
        self.bucket = bucket
        self.key = key
        super().__init__(src, dst, f"object {key!r} does not exist in bucket {bucket!r}")
        self.args = (src, dst, bucket, key)


class ObjectChangedError(TransferError):
    """The source object changed while it was being copied."""

    def __init__(self, src: str, dst: str, expected_etag: str, detail: str = "") -> None:
        self.expected_etag = expected_etag
        reason = f"the source changed during the copy (expected ETag {expected_etag})"
        if detail:
            reason = f"{reason}: {detail}"
        super().__init__(src, dst, reason)
        self.args = (src, dst, expected_etag, detail)


class ChecksumMismatchError(TransferError):
    """The bytes of a copy disagree with the evidence of one side, after every retry.

    ``side`` is ``"source"`` when the bytes read differ from what the source holds
    (its stored S3 checksum or its ETag), ``"destination"`` when what the server
    stored differs from what was sent.  ``evidence`` names what was compared
    (``"crc64nvme"``, ``"etag-md5"``...), ``part`` the part number when the
    evidence is one part's; ``expected`` is the value computed from the bytes,
    ``actual`` the one the side reported.
    """

    def __init__(
        self,
        src: str,
        dst: str,
        evidence: str,
        expected: str,
        actual: str,
        side: Side = "destination",
        part: int | None = None,
    ) -> None:
        self.evidence = evidence
        self.expected = expected
        self.actual = actual
        self.part = part
        what = f"{evidence} of part {part}" if part is not None else evidence
        super().__init__(
            src,
            dst,
            f"{side}: {what} mismatch: the bytes give {expected}, the {side} reports {actual}",
            side=side,
        )
        self.args = (src, dst, evidence, expected, actual, side, part)

    @property
    def algorithm(self) -> str:
        """The evidence compared (kept for code written against earlier versions)."""
        return self.evidence
