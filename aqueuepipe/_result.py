"""What a copy reports: its :class:`TransferResult`, and the progress events it
sends to a :class:`ProgressListener` (or a :data:`ProgressCallback`) as it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["ProgressCallback", "ProgressListener", "TransferResult", "as_listener"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferResult:
    """The outcome of one copy.

    ``checksums`` maps each algorithm asked for to the hex digest of the bytes
    that passed; ``parts`` is 0 for a single PutObject (and for downloads);
    ``retries`` counts the requests botocore retried and the response bodies
    resumed after they broke off;
    ``error`` is set, and ``ok`` false, when the copy failed (only
    :func:`copy_many` reports failures as values; :func:`copy` raises).
    ``verified`` lists the evidence that proved the copy end to end, such as
    ``("source:crc64nvme", "destination:crc64nvme")`` or ``("source:etag-md5",
    "destination:etag-md5")``: what was read matched the source's stored checksum
    or ETag, and the server proved it stored what was sent.  It is empty when
    neither end had evidence (``verify="required"`` makes that a failure).
    ``skipped`` is true when ``skip_existing`` found the destination already
    holding the source's object, and nothing was copied.
    """

    src: str
    dst: str
    size: int
    etag: str | None
    parts: int
    checksums: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    retries: int = 0
    verified: tuple[str, ...] = ()
    skipped: bool = False
    error: BaseException | None = None
    #: A sync removed ``dst``, which its source lacks (``src`` is empty).
    deleted: bool = False
    #: A dry run: this copy (or deletion) would be made; nothing was written.
    planned: bool = False

    @property
    def ok(self) -> bool:
        """True when the copy succeeded."""
        return self.error is None

    @property
    def throughput(self) -> float:
        """Bytes per second over the whole copy (0 when nothing was timed)."""
        return self.size / self.seconds if self.seconds > 0 else 0.0


#: The callback form of progress: called with (src, dst, bytes done, total or None).
ProgressCallback = Callable[[str, str, int, int | None], None]


class ProgressListener(Protocol):
    """Receives progress of copies; :mod:`aqueuepipe.progress` has a terminal display."""

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        """A copy began; ``total`` is its size if known."""

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        """``nbytes`` more bytes of the copy reached the destination."""

    def transfer_finished(self, result: TransferResult) -> None:
        """The copy ended, successfully or not."""


class _CallbackListener:
    """Adapts a :data:`ProgressCallback` to :class:`ProgressListener`."""

    __slots__ = ("_callback", "_done", "_totals")

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._done: dict[tuple[str, str], int] = {}
        self._totals: dict[tuple[str, str], int | None] = {}

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        self._done[src, dst] = 0
        self._totals[src, dst] = total
        self._callback(src, dst, 0, total)

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        done = self._done.get((src, dst), 0) + nbytes
        self._done[src, dst] = done
        self._callback(src, dst, done, self._totals.get((src, dst)))

    def transfer_finished(self, result: TransferResult) -> None:
        self._done.pop((result.src, result.dst), None)
        self._totals.pop((result.src, result.dst), None)


class _NoProgress:
    __slots__ = ()

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        pass

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        pass

    def transfer_finished(self, result: TransferResult) -> None:
        pass


_LISTENER_METHODS = ("transfer_started", "transfer_advanced", "transfer_finished")


def as_listener(progress: ProgressListener | ProgressCallback | None) -> ProgressListener:
    if progress is None:
        return _NoProgress()
    if all(callable(getattr(progress, name, None)) for name in _LISTENER_METHODS):
        return progress  # type: ignore[return-value]
    if callable(progress):
        return _CallbackListener(progress)
    raise TypeError(
        "progress must be a callable taking a TransferResult, or a ProgressListener "
        f"(with {', '.join(_LISTENER_METHODS)}), got {progress!r} ({type(progress).__name__})"
    )
