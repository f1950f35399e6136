"""The values every copy is built from: its validated options and its result.

One home for each decision: :func:`build_options` is the only validation of a
copy's options (``copy``, ``copy_many``, the command and the Dask workers call it),
and :class:`TransferResult` is what every copy reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from . import _budget
from ._budget import ByteBudget
from ._metadata import ObjectSettings
from .checksums import new_hasher, s3_algorithm
from .s3._parts import MAX_PART_SIZE, MIN_PART_SIZE
from .s3._retry import RetryPolicy, as_policy

__all__ = [
    "Options",
    "ProgressCallback",
    "ProgressListener",
    "TransferResult",
    "Verify",
    "build_options",
    "positive_int",
]

#: ``"required"``: a copy without evidence for each S3 end fails.
Verify = Literal["auto", "required"]


class ProgressListener(Protocol):
    """Receives progress of copies; :mod:`aqueuepipe.progress` has a terminal display."""

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        """A copy began; ``total`` is its size if known."""

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        """``nbytes`` more bytes of the copy reached the destination."""

    def transfer_finished(self, result: TransferResult) -> None:
        """The copy ended, successfully or not."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Validated options shared by every copy of a call."""

    part_size: int
    #: Parts in flight per copy.
    part_concurrency: int
    checksums: tuple[str, ...]
    #: aqueuepipe's name ("sha256"...), "md5" for the MD5 path only, None: the default.
    checksum_algorithm: str | None
    verify: Verify
    #: Skip a copy whose destination already holds the source's object (see _skip).
    skip_existing: bool
    #: Metadata, storage class, encryption and tags of what the copies write.
    settings: ObjectSettings
    #: Let the server copy within one endpoint (CopyObject, UploadPartCopy).
    server_side: bool = True
    budget: ByteBudget
    progress: ProgressListener
    policy: RetryPolicy


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


def _as_listener(progress: ProgressListener | ProgressCallback | None) -> ProgressListener:
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


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an int of at least 1 (not a bool); else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_options(
    *,
    limit: int | None,
    budget: ByteBudget | None,
    part_size: int,
    part_concurrency: int,
    checksums: Iterable[str],
    checksum_algorithm: str | None,
    progress: ProgressListener | ProgressCallback | None,
    retries: int | RetryPolicy | None,
    verify: Verify = "auto",
    skip_existing: bool = False,
    metadata: Mapping[str, str] | None = None,
    content_type: str | None = None,
    storage_class: str | None = None,
    sse: str | None = None,
    sse_kms_key_id: str | None = None,
    tags: bool = False,
    server_side: bool = True,
) -> Options:
    """The one validation of a copy's options, before any I/O.

    ``copy``, ``copy_many``, the command and the Dask workers all build their
    options here.

    Raises:
        ValueError: an option is wrong; the message names it.
    """
    positive_int("part_size", part_size)
    positive_int("part_concurrency", part_concurrency)
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part_size must be between {MIN_PART_SIZE} bytes (5 MiB) and {MAX_PART_SIZE} "
            f"bytes (5 GiB), S3's limits for a part; got {part_size}"
        )
    if isinstance(checksums, str):
        raise ValueError(
            f"checksums must be a collection of algorithm names, e.g. ({checksums!r},), "
            f"not the str {checksums!r}"
        )
    names = tuple(dict.fromkeys(new_hasher(name).name for name in checksums))
    if checksum_algorithm is not None:
        checksum_algorithm = new_hasher(checksum_algorithm).name
        if checksum_algorithm != "md5":  # md5: Content-MD5 only, no flexible checksum
            s3_algorithm(checksum_algorithm)
    if not isinstance(skip_existing, bool):
        raise ValueError(f"skip_existing must be True or False, got {skip_existing!r}")
    if not isinstance(server_side, bool):
        raise ValueError(f"server_side must be True or False, got {server_side!r}")
    if verify not in ("auto", "required"):
        raise ValueError(f"verify must be 'auto' or 'required', got {verify!r}")
    if budget is not None and not isinstance(budget, _budget.ByteBudget):
        raise TypeError(
            f"budget must be a ByteBudget shared by the copies (or pass limit=N bytes), "
            f"got {budget!r} ({type(budget).__name__})"
        )
    if budget is not None and limit is not None:
        raise ValueError("pass either limit or budget, not both")
    if budget is None:
        if limit is None:
            limit = part_size * (part_concurrency + 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive number of bytes, got {limit!r}")
        budget = ByteBudget(limit)
    if budget.limit < part_size:
        raise ValueError(
            f"the memory limit ({budget.limit} bytes) must hold at least one part "
            f"(part_size {part_size} bytes)"
        )
    return Options(
        part_size=part_size,
        part_concurrency=part_concurrency,
        checksums=names,
        checksum_algorithm=checksum_algorithm,
        verify=verify,
        skip_existing=skip_existing,
        settings=ObjectSettings.build(
            metadata=metadata,
            content_type=content_type,
            storage_class=storage_class,
            sse=sse,
            sse_kms_key_id=sse_kms_key_id,
            tags=tags,
        ),
        server_side=server_side,
        budget=budget,
        progress=_as_listener(progress),
        policy=as_policy(retries),
    )
