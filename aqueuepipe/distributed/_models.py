"""What a run is and what it reports: the job every shard carries, and the outcomes.

Everything here crosses process boundaries (Dask pickles a shard's job on its way
to a worker and its report on the way back), so it is small, frozen and picklable.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

from aqueuepipe import ByteBudget, RetryPolicy, TransferError
from aqueuepipe.checksums import normalize_etag
from aqueuepipe.s3 import S3Client, Side, create_client, translate_error
from aqueuepipe.transfer import Options, PrefixCopyOptions, ProgressListener, build_options

__all__ = [
    "CopySummary",
    "Entry",
    "Job",
    "ObjectOutcome",
    "ShardReport",
    "Status",
    "describe",
    "failed_outcome",
]

Status = Literal["copied", "skipped", "failed"]
#: What the driver sends per object: (key, size, ETag as listed).
Entry = tuple[str, int, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectOutcome:
    """What happened to one object of :func:`copy_prefix`: one line of the manifest.

    ``key`` is the source key and ``dst_key`` the destination key.  ``etag`` is
    the destination's ETag (of the new copy, or of the object found there when
    ``status`` is ``"skipped"``), ``src_etag`` the source's as listed; both are
    normalised (no quotes).  ``checksums`` are hex digests of the bytes copied
    (for the algorithms asked for; none by default), ``retries`` the requests and
    response bodies that were retried, ``error`` a one-line message when
    ``status`` is ``"failed"``, ``worker`` the address of the Dask worker that
    handled the object.
    """

    key: str
    dst_key: str
    status: Status
    size: int
    etag: str | None = None
    src_etag: str | None = None
    parts: int = 0
    checksums: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    retries: int = 0
    error: str | None = None
    worker: str | None = None

    @property
    def ok(self) -> bool:
        """True unless the object failed to copy."""
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        """The outcome as a JSON-ready dict (the manifest's line)."""
        return {
            "key": self.key,
            "dst_key": self.dst_key,
            "status": self.status,
            "size": self.size,
            "etag": self.etag,
            "src_etag": self.src_etag,
            "parts": self.parts,
            "checksums": dict(self.checksums),
            "seconds": round(self.seconds, 6),
            "retries": self.retries,
            "error": self.error,
            "worker": self.worker,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CopySummary:
    """The totals of one :func:`copy_prefix` run.

    ``objects`` and ``bytes`` count what was copied; ``skipped`` and
    ``skipped_bytes`` what was already at the destination; ``failures`` the
    objects that could not be copied (the manifest says why).  ``worker_peaks``
    maps each worker address that ran shards to the most bytes its budget held
    at once, never more than ``worker_limit``.
    """

    objects: int
    bytes: int
    skipped: int
    skipped_bytes: int
    failures: int
    seconds: float
    shards: int
    worker_limit: int
    worker_peaks: dict[str, int] = field(default_factory=dict)
    manifest: str | None = None

    @property
    def listed(self) -> int:
        """Objects found under the source prefix (copied, skipped or failed)."""
        return self.objects + self.skipped + self.failures

    @property
    def ok(self) -> bool:
        """True when no object failed."""
        return self.failures == 0

    @property
    def throughput(self) -> float:
        """Bytes copied per second over the whole run (0 when nothing was timed)."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        """:attr:`throughput` in MB/s (10^6 bytes)."""
        return self.throughput / 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """The settings of one run, sent with every shard (small, picklable).

    ``copies`` are the copy options as the caller gave them (checked by the driver
    as :func:`~aqueuepipe.copy_many` checks them, which the workers pass them to;
    ``checksums`` made a tuple, ``retries`` the RetryPolicy), ``limit`` each
    worker's budget.
    """

    id: str
    src_bucket: str
    src_prefix: str
    dst_bucket: str
    dst_prefix: str
    limit: int
    copies: PrefixCopyOptions
    progress: ProgressListener | None

    @property
    def endpoint_url(self) -> str | None:
        return self.copies.get("endpoint_url")

    @property
    def policy(self) -> RetryPolicy:
        retries = self.copies.get("retries")  # made a policy by the driver's check
        return retries if isinstance(retries, RetryPolicy) else RetryPolicy()

    def options(self, budget: ByteBudget) -> Options:
        """The options of this run's copies on a worker whose copies share ``budget``."""
        return build_options(**self.copies, budget=budget, progress=self.progress)

    def client(self, pool: int) -> contextlib.AbstractAsyncContextManager[S3Client]:
        """An S3 client for this run with ``pool`` connections, as copy_many makes them."""
        return create_client(
            endpoint_url=self.endpoint_url,
            max_pool_connections=pool,
            max_attempts=self.policy.attempts,
            read_timeout=self.policy.read_timeout,
            connect_timeout=self.policy.connect_timeout,
        )

    def error(self, exc: Exception, side: Side) -> BaseException:
        """``exc``, from a request about the whole prefix on ``side``, as a TransferError."""
        if isinstance(exc, TransferError):
            return exc
        return translate_error(
            exc,
            src=self.src_url(self.src_prefix),
            dst=self.dst_url(self.dst_prefix),
            bucket=self.src_bucket if side == "source" else self.dst_bucket,
            key=None,
            side=side,
        )

    def dst_key(self, key: str) -> str:
        return self.dst_prefix + key[len(self.src_prefix) :]

    def src_url(self, key: str) -> str:
        return f"s3://{self.src_bucket}/{key}"

    def dst_url(self, key: str) -> str:
        return f"s3://{self.dst_bucket}/{key}"


@dataclass(frozen=True, slots=True)
class ShardReport:
    """What a shard task returns: its outcomes and its worker's budget peak."""

    outcomes: list[ObjectOutcome]
    worker: str
    budget_peak: int


def describe(error: BaseException) -> str:
    """A one-line message for an error (no traceback, no credentials)."""
    if isinstance(error, TransferError):
        return f"{type(error).__name__}: {error.reason}"
    return f"{type(error).__name__}: {error}"


def failed_outcome(job: Job, entry: Entry, error: str, worker: str | None) -> ObjectOutcome:
    """The outcome of an object that was never copied because of ``error``."""
    key, size, etag = entry
    return ObjectOutcome(
        key=key,
        dst_key=job.dst_key(key),
        status="failed",
        size=size,
        src_etag=normalize_etag(etag) if etag else None,
        error=error,
        worker=worker,
    )
