"""The exception hierarchy of aqueuepipe.

Every exception the library raises on its own account derives from
:class:`AqueuepipeError`.  Errors of the libraries underneath (botocore, aiohttp,
the OS) are translated at one boundary and chained as ``__cause__``, so a user
never has to import them to catch ours.  Bad arguments raise :class:`ValueError`
before any I/O.
"""

from __future__ import annotations

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


class TransferError(AqueuepipeError):
    """A copy from ``src`` to ``dst`` failed.

    ``__cause__`` is the underlying botocore, aiohttp or OS error, when there is one.
    """

    def __init__(self, src: str, dst: str, reason: str) -> None:
        self.src = src
        self.dst = dst
        self.reason = reason
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
    """A checksum computed while streaming differs from the one reported for the copy."""

    def __init__(self, src: str, dst: str, algorithm: str, expected: str, actual: str) -> None:
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            src, dst, f"{algorithm} mismatch: expected {expected}, destination has {actual}"
        )
        self.args = (src, dst, algorithm, expected, actual)
