"""Copying a prefix of millions of objects across a Dask cluster.

:func:`copy_prefix` (and :func:`copy_prefix_async` for an asynchronous Dask
client) lists the source prefix page by page in the driver and submits *shards*
of keys (``shard_objects`` at a time) as Dask tasks while the listing goes on,
at most ``max_shards_in_flight`` at once: the listing of a huge prefix is never
held whole in the driver.  Results are taken with
:class:`distributed.as_completed`, written to a JSON Lines manifest, and summed
up in a :class:`CopySummary`.

On each worker process, every shard runs as a :func:`~aqueuepipe.copy_many` batch
in one event loop that lives in a dedicated thread of that process.  Dask runs
tasks in a pool of threads; each task hands its shard to the loop
(:func:`asyncio.run_coroutine_threadsafe`) and waits for the outcome, so every
shard that runs on a worker at the same time shares that worker's one
:class:`~aqueuepipe.ByteBudget` of ``per_worker_limit`` bytes and its one pair of
aiobotocore clients (and their connection pools).  A worker with ``nthreads``
threads runs up to ``nthreads`` shards at once, each with up to ``concurrency``
copies; their bytes together never exceed the limit.

Copies are idempotent overwrites, which makes the whole operation safe to retry
and to resume:

* With ``skip_existing``, a shard first lists its slice of the destination and
  skips every object already there with the same size and ETag (or, where the
  ETags cannot be compared, the same S3 checksum).
* With ``preserve_etags``, objects are copied with the source's own part layout
  (a multipart source with its part size, a single-part source up to half the
  worker's limit with one PutObject), so the destination's ETag equals the
  source's: the copy is verified against the source end to end, and a later run
  recognises it by ETag alone.
* A shard starts by aborting the unfinished multipart uploads left for its keys
  by an earlier attempt (a worker that died mid-shard), so a retried shard leaves
  no orphaned parts behind.
* Dask re-runs the shards of a worker that is lost (up to the scheduler's
  ``distributed.scheduler.allowed-failures``) and retries a shard whose task
  raised (``shard_retries``).  Only completed shards are written to the
  manifest, so every key appears in it exactly once.

Install with ``pip install 'aqueuepipe[dask]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import math
import os
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

try:
    import distributed
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("aqueuepipe.distributed needs Dask: pip install 'aqueuepipe[dask]'") from exc

from ._budget import ByteBudget
from ._engine import ProgressListener
from ._errors import TransferError
from .checksums import etag_is_md5_based, new_hasher, normalize_etag, s3_algorithm
from .s3._client import S3Client, create_client
from .s3._parts import DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE, choose_part_size
from .s3._retry import RetryPolicy, as_policy
from .s3._translate import translate_error
from .s3._urls import S3Url, parse_s3_url
from .transfer import (
    DEFAULT_BATCH_CONCURRENCY,
    DEFAULT_CONCURRENCY,
    TransferResult,
    copy,
    copy_many,
)

__all__ = [
    "DEFAULT_SHARD_OBJECTS",
    "DEFAULT_WORKER_LIMIT",
    "CopySummary",
    "ObjectOutcome",
    "copy_prefix",
    "copy_prefix_async",
]

#: Objects per Dask task when none is given.
DEFAULT_SHARD_OBJECTS = 1000
#: Bytes each worker process may buffer when no ``per_worker_limit`` is given.
DEFAULT_WORKER_LIMIT = 256 * 1024 * 1024
#: Times a shard whose task raised is run again (worker loss is counted apart).
DEFAULT_SHARD_RETRIES = 2

# Shards listed ahead of submission: enough that the next shard is ready when a
# slot frees, few enough that the driver holds almost nothing.
_PREFETCH_SHARDS = 2
# A worker's clients and budget for a run are closed when the driver says the run
# is over, or, should the driver have died, after this long without a shard.
_IDLE_ENGINE_SECONDS = 600.0
# Requests a shard makes at once besides the copies (listing, HEADs, aborts).
_SIDE_REQUESTS = 8
# Largest object copied with one PutObject to keep its single-part ETag.
_MAX_PUT_SIZE = MAX_PART_SIZE - 1
_S3_CHECKSUMS = ("CRC64NVME", "CRC32C", "CRC32", "SHA256", "SHA1")

Status = Literal["copied", "skipped", "failed"]
# What the driver sends per object: (key, size, ETag as listed).
_Entry = tuple[str, int, str]
T = TypeVar("T")


# -- results ----------------------------------------------------------------------


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


# -- the job, as every worker sees it -----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """The settings of one run, sent with every shard (small, picklable)."""

    id: str
    src_bucket: str
    src_prefix: str
    dst_bucket: str
    dst_prefix: str
    limit: int
    part_size: int
    concurrency: int
    part_concurrency: int
    checksums: tuple[str, ...]
    checksum_algorithm: str | None
    skip_existing: bool
    preserve_etags: bool
    endpoint_url: str | None
    retries: RetryPolicy
    progress: ProgressListener | None

    def client_options(self, pool: int) -> dict[str, Any]:
        """What create_client needs for this run's clients, as copy_many makes them."""
        return {
            "endpoint_url": self.endpoint_url,
            "max_pool_connections": pool,
            "max_attempts": self.retries.attempts,
            "read_timeout": self.retries.read_timeout,
            "connect_timeout": self.retries.connect_timeout,
        }

    def dst_key(self, key: str) -> str:
        return self.dst_prefix + key[len(self.src_prefix) :]

    def src_url(self, key: str) -> str:
        return f"s3://{self.src_bucket}/{key}"

    def dst_url(self, key: str) -> str:
        return f"s3://{self.dst_bucket}/{key}"


@dataclass(frozen=True, slots=True)
class _ShardReport:
    """What a shard task returns: its outcomes and its worker's budget peak."""

    outcomes: list[ObjectOutcome]
    worker: str
    budget_peak: int


def _describe(error: BaseException) -> str:
    """A one-line message for an error (no traceback, no credentials)."""
    if isinstance(error, TransferError):
        return f"{type(error).__name__}: {error.reason}"
    return f"{type(error).__name__}: {error}"


# -- the worker side ----------------------------------------------------------------


class _Engine:
    """One run's budget and clients on one worker process (lives in the copy loop)."""

    def __init__(self, job: _Job, stack: contextlib.AsyncExitStack) -> None:
        self.budget = ByteBudget(job.limit)
        self.active = 0
        self.idle_since = time.monotonic()
        self._stack = stack
        self.src: S3Client
        self.dst: S3Client

    @classmethod
    async def open(cls, job: _Job, nthreads: int) -> _Engine:
        copies = job.concurrency * max(1, nthreads)
        stack = contextlib.AsyncExitStack()
        engine = cls(job, stack)
        try:
            # Two pools, as copy_many makes them: an open GetObject body holds a
            # source connection for a whole copy and must never starve the uploads.
            engine.src = await stack.enter_async_context(
                create_client(**job.client_options(copies + _SIDE_REQUESTS))
            )
            engine.dst = await stack.enter_async_context(
                create_client(**job.client_options(copies * job.part_concurrency + _SIDE_REQUESTS))
            )
        except BaseException:
            await stack.aclose()
            raise
        return engine

    async def aclose(self) -> None:
        await self._stack.aclose()


class _CopyLoop:
    """The event loop of one worker process, running in a thread of its own."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        # Touched only from the loop's thread.
        self.engines: dict[str, asyncio.Future[_Engine]] = {}
        self._thread = threading.Thread(target=self._main, name="aqueuepipe-copy-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def engine(self, job: _Job, nthreads: int) -> _Engine:
        await self._close_idle(keep=job.id)
        opening = self.engines.get(job.id)
        if opening is None:
            opening = self.engines[job.id] = asyncio.ensure_future(_Engine.open(job, nthreads))
        try:
            return await asyncio.shield(opening)
        except Exception:
            if self.engines.get(job.id) is opening:
                del self.engines[job.id]  # let a retried shard try again
            raise

    async def finish(self, job_id: str) -> int | None:
        """Close the engine of ``job_id``; return its budget peak (None if none ran here)."""
        opening = self.engines.pop(job_id, None)
        if opening is None or not opening.done() or opening.exception() is not None:
            return None
        engine = opening.result()
        await engine.aclose()
        return engine.budget.peak

    async def _close_idle(self, keep: str) -> None:
        now = time.monotonic()
        for job_id, opening in list(self.engines.items()):
            if job_id == keep or not opening.done() or opening.exception() is not None:
                continue
            engine = opening.result()
            if engine.active == 0 and now - engine.idle_since > _IDLE_ENGINE_SECONDS:
                del self.engines[job_id]
                await engine.aclose()


_copy_loop: _CopyLoop | None = None
_copy_loop_lock = threading.Lock()


def _the_copy_loop(create: bool = True) -> _CopyLoop | None:
    """This process's copy loop, started on first use by whichever task thread comes first."""
    global _copy_loop
    with _copy_loop_lock:
        if _copy_loop is None or _copy_loop.pid != os.getpid():
            _copy_loop = _CopyLoop() if create else None
        return _copy_loop


def _copy_shard(job: _Job, shard: list[_Entry]) -> _ShardReport:
    """The Dask task: copy one shard on this worker's copy loop, under its budget."""
    try:
        worker = distributed.get_worker()
        address, nthreads = worker.address, worker.state.nthreads
    except ValueError:  # not on a worker (run locally, e.g. in a debugger)
        address, nthreads = f"pid:{os.getpid()}", 1
    loop = _the_copy_loop()
    assert loop is not None
    outcomes, peak = loop.run(_run_shard(loop, job, shard, nthreads, address))
    return _ShardReport(outcomes, address, peak)


async def _finish_job(job_id: str) -> int | None:
    """Run on every worker at the end (``client.run``): close the run's clients."""
    loop = _the_copy_loop(create=False)
    if loop is None:
        return None
    return await asyncio.wrap_future(loop.submit(loop.finish(job_id)))


async def _run_shard(
    loop: _CopyLoop, job: _Job, shard: list[_Entry], nthreads: int, worker: str
) -> tuple[list[ObjectOutcome], int]:
    try:
        engine = await loop.engine(job, nthreads)
    except Exception as exc:
        error = _describe(exc)
        failed = [_failed(job, entry, error, worker) for entry in shard]
        return failed, 0
    engine.active += 1
    try:
        outcomes = await _ShardCopy(job, engine, shard, worker).run()
    finally:
        engine.active -= 1
        engine.idle_since = time.monotonic()
    return outcomes, engine.budget.peak


def _failed(job: _Job, entry: _Entry, error: str, worker: str | None) -> ObjectOutcome:
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


def _same_etag_form(a: str, b: str) -> bool:
    """Both MD5-based ETags of the same form: single-part, or multipart of as many parts."""
    if not (etag_is_md5_based(a) and etag_is_md5_based(b)):
        return False
    return normalize_etag(a).partition("-")[2] == normalize_etag(b).partition("-")[2]


class _ShardCopy:
    """One shard on one worker: skip what is there, clean up, copy the rest."""

    def __init__(self, job: _Job, engine: _Engine, shard: list[_Entry], worker: str) -> None:
        self.job = job
        self.engine = engine
        self.shard = shard
        self.worker = worker
        self.requests = asyncio.Semaphore(_SIDE_REQUESTS)

    async def run(self) -> list[ObjectOutcome]:
        job = self.job
        outcomes: list[ObjectOutcome] = []
        to_copy: list[_Entry] = []
        try:
            if job.skip_existing:
                existing = await self._list_destination()
                found = await asyncio.gather(
                    *(
                        self._already_there(entry, existing[job.dst_key(entry[0])])
                        for entry in self.shard
                        if job.dst_key(entry[0]) in existing
                    )
                )
                skipped = {outcome.key: outcome for outcome in found if outcome is not None}
            else:
                skipped = {}
            for entry in self.shard:
                if entry[0] in skipped:
                    outcomes.append(skipped[entry[0]])
                else:
                    to_copy.append(entry)
            await self._abort_leftover_uploads()
            groups = await self._group_by_part_size(to_copy)
        except Exception as exc:
            error = _describe(self._translate(exc))
            return [_failed(job, entry, error, self.worker) for entry in self.shard]
        outcomes.extend(await self._copy(groups))
        return outcomes

    def _translate(self, exc: Exception) -> BaseException:
        if isinstance(exc, TransferError):
            return exc
        job = self.job
        return translate_error(
            exc,
            src=job.src_url(job.src_prefix),
            dst=job.dst_url(job.dst_prefix),
            bucket=job.dst_bucket,
            key=None,
            side="destination",
        )

    # -- what is already there -------------------------------------------------------

    async def _list_destination(self) -> dict[str, tuple[int, str]]:
        """Size and ETag of the destination objects in this shard's key range.

        One ListObjectsV2 page covers a shard of up to 1,000 keys unless other
        objects are interleaved with them at the destination.
        """
        wanted = {self.job.dst_key(key) for key, _, _ in self.shard}
        first, last = min(wanted), max(wanted)
        prefix = os.path.commonprefix([first, last])  # noqa: RUF071 (keys, not paths)
        found: dict[str, tuple[int, str]] = {}
        paginator = self.engine.dst.get_paginator("list_objects_v2")
        kwargs: dict[str, str] = {"Bucket": self.job.dst_bucket, "Prefix": prefix}
        if len(first) > 1:
            kwargs["StartAfter"] = first[:-1]  # exclusive, and sorts just before first
        async for page in paginator.paginate(**kwargs):
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                if key in wanted:
                    found[key] = (int(entry["Size"]), str(entry.get("ETag", "")))
            contents = page.get("Contents", [])
            if contents and str(contents[-1]["Key"]) >= last:
                break
        return found

    async def _already_there(self, entry: _Entry, dst: tuple[int, str]) -> ObjectOutcome | None:
        """A "skipped" outcome if the destination object ``dst`` is this one, else None."""
        key, size, src_etag = entry
        dst_size, dst_etag = dst
        if dst_size != size:
            return None
        same = normalize_etag(dst_etag) == normalize_etag(src_etag)
        if not same and not _same_etag_form(src_etag, dst_etag):
            # The ETags say nothing about each other (single-part against multipart,
            # or not MD5-based at all): compare S3 checksums if both objects have one.
            same = await self._same_checksum(key, self.job.dst_key(key))
        if not same:
            return None
        return ObjectOutcome(
            key=key,
            dst_key=self.job.dst_key(key),
            status="skipped",
            size=size,
            etag=normalize_etag(dst_etag),
            src_etag=normalize_etag(src_etag),
            worker=self.worker,
        )

    async def _same_checksum(self, src_key: str, dst_key: str) -> bool:
        try:
            async with self.requests:
                src, dst = await asyncio.gather(
                    self.engine.src.head_object(
                        Bucket=self.job.src_bucket, Key=src_key, ChecksumMode="ENABLED"
                    ),
                    self.engine.dst.head_object(
                        Bucket=self.job.dst_bucket, Key=dst_key, ChecksumMode="ENABLED"
                    ),
                )
        except Exception:
            return False  # cannot tell: copy it (the copy reports what is wrong)
        if src.get("ChecksumType") != dst.get("ChecksumType"):
            return False
        for name in _S3_CHECKSUMS:
            ours, theirs = src.get(f"Checksum{name}"), dst.get(f"Checksum{name}")
            if ours and theirs:
                return bool(ours == theirs)
        return False

    async def _abort_leftover_uploads(self) -> None:
        """Abort unfinished multipart uploads to this shard's keys.

        They can only be left by an earlier attempt at these keys that died (a
        lost worker, a killed run): a finished or failed copy completes or aborts
        its own upload.  Only objects of at least 5 MiB can have been multipart.
        """
        keys = {self.job.dst_key(key) for key, size, _ in self.shard if size >= MIN_PART_SIZE}
        if keys:
            # Best effort: without s3:ListBucketMultipartUploads (or with the bucket
            # gone) the copies go on, and report what is wrong themselves.
            with contextlib.suppress(Exception):
                await self._abort_uploads_to(keys)

    async def _abort_uploads_to(self, keys: set[str]) -> None:
        prefix = os.path.commonprefix([min(keys), max(keys)])  # noqa: RUF071 (keys, not paths)
        leftovers: list[tuple[str, str]] = []
        paginator = self.engine.dst.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.job.dst_bucket, Prefix=prefix):
            leftovers.extend(
                (str(upload["Key"]), str(upload["UploadId"]))
                for upload in page.get("Uploads", [])
                if upload["Key"] in keys
            )

        async def abort(key: str, upload_id: str) -> None:
            async with self.requests:
                with contextlib.suppress(Exception):  # gone already: nothing left to do
                    await self.engine.dst.abort_multipart_upload(
                        Bucket=self.job.dst_bucket, Key=key, UploadId=upload_id
                    )

        await asyncio.gather(*(abort(key, upload_id) for key, upload_id in leftovers))

    # -- copying -------------------------------------------------------------------

    async def _group_by_part_size(self, entries: list[_Entry]) -> dict[int, list[_Entry]]:
        """The shard's objects to copy, by the part size that keeps their ETags."""
        sizes = await asyncio.gather(*(self._part_size(entry) for entry in entries))
        groups: dict[int, list[_Entry]] = {}
        single: list[_Entry] = []
        for entry, part_size in zip(entries, sizes, strict=True):
            if part_size is None:
                single.append(entry)
            else:
                groups.setdefault(part_size, []).append(entry)
        if single:
            # One part size above the largest of them: each goes with one PutObject.
            groups.setdefault(max(size for _, size, _ in single) + 1, []).extend(single)
        return groups

    async def _part_size(self, entry: _Entry) -> int | None:
        """The part size to copy ``entry`` with; None for "one PutObject, whatever its size"."""
        job = self.job
        _, size, etag = entry
        if not job.preserve_etags or not etag_is_md5_based(etag) or size < job.part_size:
            return job.part_size
        _, _, count = normalize_etag(etag).partition("-")
        if not count:  # a single-part source: one PutObject keeps its ETag
            return None if size <= min(job.limit // 2, _MAX_PUT_SIZE) else job.part_size
        parts = int(count)
        try:
            async with self.requests:
                head = await self.engine.src.head_object(
                    Bucket=job.src_bucket, Key=entry[0], PartNumber=1
                )
            first = int(head["ContentLength"])
        except Exception:
            return job.part_size  # the copy itself will report what is wrong
        fits = MIN_PART_SIZE <= first <= min(job.limit, MAX_PART_SIZE)
        if fits and math.ceil(size / first) == parts and choose_part_size(size, first) == first:
            return first
        return job.part_size  # uneven parts, or parts the budget cannot hold

    async def _copy(self, groups: dict[int, list[_Entry]]) -> list[ObjectOutcome]:
        job, engine = self.job, self.engine
        outcomes: list[ObjectOutcome] = []
        # One limit on the copies of the shard however many part sizes it needs.
        slots = asyncio.Semaphore(job.concurrency)
        by_dst = {
            job.dst_url(job.dst_key(key)): (key, size, etag) for key, size, etag in self.shard
        }

        async def gated(entries: list[_Entry]) -> AsyncIterator[tuple[str, str]]:
            for key, _, _ in entries:
                await slots.acquire()
                yield job.src_url(key), job.dst_url(job.dst_key(key))

        async def run_group(part_size: int, entries: list[_Entry]) -> None:
            results = copy_many(
                gated(entries),
                concurrency=job.concurrency,
                budget=engine.budget,
                part_size=part_size,
                part_concurrency=job.part_concurrency,
                checksums=job.checksums,
                checksum_algorithm=job.checksum_algorithm,
                src_client=engine.src,
                dst_client=engine.dst,
                progress=job.progress,
                retries=job.retries,
            )
            async with contextlib.aclosing(results) as iterator:
                async for result in iterator:
                    slots.release()
                    outcomes.append(self._outcome(result, by_dst[result.dst]))

        async with asyncio.TaskGroup() as tg:
            for part_size, entries in groups.items():
                tg.create_task(run_group(part_size, entries))
        return outcomes

    def _outcome(self, result: TransferResult, entry: _Entry) -> ObjectOutcome:
        key, size, src_etag = entry
        return ObjectOutcome(
            key=key,
            dst_key=self.job.dst_key(key),
            status="copied" if result.ok else "failed",
            size=result.size if result.ok else size,
            etag=normalize_etag(result.etag) if result.etag else None,
            src_etag=normalize_etag(src_etag) if src_etag else None,
            parts=result.parts,
            checksums=dict(result.checksums),
            seconds=result.seconds,
            retries=result.retries,
            error=None if result.error is None else _describe(result.error),
            worker=self.worker,
        )


# -- the driver side ----------------------------------------------------------------


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _prefix_url(url: str) -> S3Url:
    location = parse_s3_url(url, require_key=False)
    key = location.key
    if key and not key.endswith("/"):
        key += "/"  # as `aws s3 cp --recursive`: s3://bucket/dir means dir/
    return S3Url(location.bucket, key)


def _manifest_target(manifest: str | os.PathLike[str] | None) -> str | Path | None:
    if manifest is None:
        return None
    text = os.fspath(manifest)
    if text[:5].lower() == "s3://":
        url = parse_s3_url(text)
        if url.is_prefix:
            raise ValueError(f"manifest {text!r} names a prefix, not an object")
        return str(url)
    return Path(text)


@dataclass(slots=True)
class _Settings:
    """What copy_prefix and copy_prefix_async share, checked before any I/O."""

    job: _Job
    shard_objects: int
    max_shards_in_flight: int | None
    shard_retries: int
    manifest: str | Path | None
    on_outcome: Callable[[ObjectOutcome], None] | None


def _settings(
    src_prefix: str,
    dst_prefix: str,
    *,
    shard_objects: int,
    per_worker_limit: int,
    concurrency: int,
    part_size: int,
    part_concurrency: int,
    checksums: Iterable[str],
    checksum_algorithm: str | None,
    manifest: str | os.PathLike[str] | None,
    skip_existing: bool,
    preserve_etags: bool,
    max_shards_in_flight: int | None,
    shard_retries: int,
    endpoint_url: str | None,
    retries: int | RetryPolicy | None,
    worker_progress: ProgressListener | None,
    on_outcome: Callable[[ObjectOutcome], None] | None,
) -> _Settings:
    src = _prefix_url(src_prefix)
    dst = _prefix_url(dst_prefix)
    if src.bucket == dst.bucket and (dst.key.startswith(src.key) or src.key.startswith(dst.key)):
        raise ValueError(
            f"{src_prefix!r} and {dst_prefix!r} overlap: the listing would find the copies"
        )
    for name, value in (
        ("shard_objects", shard_objects),
        ("per_worker_limit", per_worker_limit),
        ("concurrency", concurrency),
        ("part_size", part_size),
        ("part_concurrency", part_concurrency),
    ):
        _positive(name, value)
    if max_shards_in_flight is not None:
        _positive("max_shards_in_flight", max_shards_in_flight)
    if isinstance(shard_retries, bool) or not isinstance(shard_retries, int) or shard_retries < 0:
        raise ValueError(f"shard_retries must be 0 or more, got {shard_retries!r}")
    if part_size < MIN_PART_SIZE:
        raise ValueError(
            f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB, the S3 minimum), "
            f"got {part_size}"
        )
    if per_worker_limit < part_size:
        raise ValueError(
            f"per_worker_limit ({per_worker_limit} bytes) must hold at least one part "
            f"(part_size {part_size} bytes)"
        )
    names = tuple(dict.fromkeys(new_hasher(name).name for name in checksums))
    if checksum_algorithm is not None:
        checksum_algorithm = new_hasher(checksum_algorithm).name
        s3_algorithm(checksum_algorithm)
    job = _Job(
        id=uuid.uuid4().hex,
        src_bucket=src.bucket,
        src_prefix=src.key,
        dst_bucket=dst.bucket,
        dst_prefix=dst.key,
        limit=per_worker_limit,
        part_size=part_size,
        concurrency=concurrency,
        part_concurrency=part_concurrency,
        checksums=names,
        checksum_algorithm=checksum_algorithm,
        skip_existing=bool(skip_existing),
        preserve_etags=bool(preserve_etags),
        endpoint_url=endpoint_url,
        retries=as_policy(retries),
        progress=worker_progress,
    )
    return _Settings(
        job=job,
        shard_objects=shard_objects,
        max_shards_in_flight=max_shards_in_flight,
        shard_retries=shard_retries,
        manifest=_manifest_target(manifest),
        on_outcome=on_outcome,
    )


class _Manifest:
    """The JSON Lines manifest: a local file, or a temporary one uploaded at the end."""

    def __init__(self, target: str | Path | None) -> None:
        self.target = target
        self._file: TextIO | None = None
        self._temporary: Path | None = None

    @property
    def uploads(self) -> bool:
        """True when the manifest goes to S3 (written locally first)."""
        return isinstance(self.target, str)

    def open(self) -> None:
        if self.target is None:
            return
        if isinstance(self.target, Path):
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.target.open("w", encoding="utf-8")
        else:
            fd, name = tempfile.mkstemp(prefix="aqueuepipe-manifest-", suffix=".jsonl")
            self._temporary = Path(name)
            self._file = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, outcomes: Iterable[ObjectOutcome]) -> None:
        if self._file is None:
            return
        self._file.writelines(json.dumps(o.to_json(), ensure_ascii=False) + "\n" for o in outcomes)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def finish(self, endpoint_url: str | None, ending: BaseException | None) -> None:
        """Upload a temporary manifest to its s3:// URL, then remove the temporary file.

        After an error the manifest of what was done is still uploaded (an error of
        the upload then yields to the one already raised); after an interruption
        (``KeyboardInterrupt``, cancellation) it is dropped.
        """
        temporary, self._temporary = self._temporary, None
        if temporary is None:
            return
        try:
            if ending is None:
                await copy(str(temporary), str(self.target), endpoint_url=endpoint_url)
            elif isinstance(ending, Exception):
                with contextlib.suppress(Exception):
                    await copy(str(temporary), str(self.target), endpoint_url=endpoint_url)
        finally:
            temporary.unlink(missing_ok=True)


class _Run:
    """The driver's bookkeeping: shards in flight, totals, the manifest."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.job = settings.job
        self.manifest = _Manifest(settings.manifest)
        self.in_flight: dict[str, list[_Entry]] = {}  # Dask key -> the shard's entries
        self.shards = 0
        self.objects = self.bytes = self.skipped = self.skipped_bytes = self.failures = 0
        self.peaks: dict[str, int] = {}
        self.started = time.perf_counter()

    def submit(self, client: distributed.Client, shard: list[_Entry]) -> distributed.Future:
        key = f"aqueuepipe-shard-{self.job.id}-{self.shards}"
        future = client.submit(
            _copy_shard,
            self.job,
            shard,
            key=key,
            pure=False,
            retries=self.settings.shard_retries,
        )
        self.in_flight[future.key] = shard
        self.shards += 1
        return future

    def account(
        self, key: str, report: _ShardReport | None, error: BaseException | None
    ) -> list[ObjectOutcome]:
        """Count a finished shard (its report, or the error that ended it); return its outcomes."""
        shard = self.in_flight.pop(key)
        if report is None:
            message = _describe(error) if error is not None else "the shard was cancelled"
            outcomes = [
                _failed(self.job, entry, f"shard failed: {message}", None) for entry in shard
            ]
        else:
            outcomes = report.outcomes
            self.peaks[report.worker] = max(self.peaks.get(report.worker, 0), report.budget_peak)
        for outcome in outcomes:
            if outcome.status == "copied":
                self.objects += 1
                self.bytes += outcome.size
            elif outcome.status == "skipped":
                self.skipped += 1
                self.skipped_bytes += outcome.size
            else:
                self.failures += 1
        return outcomes

    def announce(self, outcomes: list[ObjectOutcome]) -> None:
        if self.settings.on_outcome is not None:
            for outcome in outcomes:
                self.settings.on_outcome(outcome)

    def finished_peaks(self, peaks: dict[str, Any]) -> None:
        for worker, peak in peaks.items():
            if isinstance(peak, int):
                self.peaks[worker] = max(self.peaks.get(worker, 0), peak)

    def summary(self) -> CopySummary:
        target = self.settings.manifest
        return CopySummary(
            objects=self.objects,
            bytes=self.bytes,
            skipped=self.skipped,
            skipped_bytes=self.skipped_bytes,
            failures=self.failures,
            seconds=time.perf_counter() - self.started,
            shards=self.shards,
            worker_limit=self.job.limit,
            worker_peaks=dict(self.peaks),
            manifest=None if target is None else str(target),
        )


async def _list_shards(job: _Job, shard_objects: int) -> AsyncGenerator[list[_Entry], None]:
    """The source prefix, page by page, cut into shards of ``shard_objects`` entries."""
    src_url = job.src_url(job.src_prefix)
    try:
        async with create_client(**job.client_options(2)) as client:
            paginator = client.get_paginator("list_objects_v2")
            shard: list[_Entry] = []
            async for page in paginator.paginate(Bucket=job.src_bucket, Prefix=job.src_prefix):
                for entry in page.get("Contents", []):
                    key = str(entry["Key"])
                    if key == job.src_prefix:
                        continue  # the "directory" object of the prefix itself
                    shard.append((key, int(entry["Size"]), str(entry.get("ETag", ""))))
                    if len(shard) == shard_objects:
                        yield shard
                        shard = []
            if shard:
                yield shard
    except TransferError:
        raise
    except Exception as exc:
        raise translate_error(
            exc,
            src=src_url,
            dst=job.dst_url(job.dst_prefix),
            bucket=job.src_bucket,
            key=None,
            side="source",
        ) from exc


class _Lister:
    """The listing, in a thread with an event loop of its own, a few shards ahead."""

    _END: Any = object()

    def __init__(self, job: _Job, shard_objects: int) -> None:
        self._job = job
        self._shard_objects = shard_objects
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_PREFETCH_SHARDS)
        self._stop = threading.Event()
        self._ended = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="aqueuepipe-lister", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._list())
        except BaseException as exc:
            self.error = exc
        finally:
            self._queue.put(self._END)

    async def _list(self) -> None:
        async with contextlib.aclosing(_list_shards(self._job, self._shard_objects)) as shards:
            async for shard in shards:
                # Blocks this thread's loop, which has nothing else to do: the
                # listing waits here while the driver has enough shards in hand.
                self._queue.put(shard)
                if self._stop.is_set():
                    return

    def next(self) -> list[_Entry] | None:
        """The next shard; None once the listing has ended (see :attr:`error`)."""
        if self._ended:
            return None
        item = self._queue.get()
        if item is self._END:
            self._ended = True
            return None
        shard: list[_Entry] = item
        return shard

    def stop(self) -> None:
        """End the listing and wait for its thread (drains what it already listed)."""
        if self._thread.ident is None:
            return  # never started
        self._stop.set()
        while self.next() is not None:
            pass
        self._thread.join()


def _in_flight_limit(settings: _Settings, threads: int) -> int:
    if settings.max_shards_in_flight is not None:
        return settings.max_shards_in_flight
    return max(2, 2 * threads)


def copy_prefix(
    src_prefix: str,
    dst_prefix: str,
    *,
    client: distributed.Client,
    shard_objects: int = DEFAULT_SHARD_OBJECTS,
    per_worker_limit: int = DEFAULT_WORKER_LIMIT,
    concurrency: int = DEFAULT_BATCH_CONCURRENCY,
    part_size: int = DEFAULT_PART_SIZE,
    part_concurrency: int = DEFAULT_CONCURRENCY,
    checksums: Iterable[str] = (),
    checksum_algorithm: str | None = None,
    manifest: str | os.PathLike[str] | None = None,
    skip_existing: bool = True,
    preserve_etags: bool = True,
    max_shards_in_flight: int | None = None,
    shard_retries: int = DEFAULT_SHARD_RETRIES,
    endpoint_url: str | None = None,
    retries: int | RetryPolicy | None = None,
    worker_progress: ProgressListener | None = None,
    on_outcome: Callable[[ObjectOutcome], None] | None = None,
) -> CopySummary:
    """Copy every object under ``src_prefix`` to ``dst_prefix`` on the Dask cluster of ``client``.

    ::

        from distributed import Client
        from aqueuepipe.distributed import copy_prefix

        with Client("tcp://scheduler:8786") as client:
            summary = copy_prefix(
                "s3://src-bucket/logs/", "s3://dst-bucket/logs/",
                client=client, per_worker_limit=512_000_000,
                manifest="s3://dst-bucket/manifests/logs.jsonl",
            )
        print(summary.objects, summary.mb_per_s, summary.failures)

    The prefixes are ``s3://bucket/dir/`` URLs (a trailing ``/`` is implied, and
    an empty key means the whole bucket); keys keep their path below the prefix.
    The listing runs in this process, in a thread with an event loop of its own,
    and shards of ``shard_objects`` keys are submitted while it goes on, at most
    ``max_shards_in_flight`` at once (default: twice the cluster's worker
    threads), so memory here stays flat however many objects there are.

    On each worker process all running shards share one budget of
    ``per_worker_limit`` bytes and one pair of clients; each shard copies
    ``concurrency`` objects at once with ``part_concurrency`` parts in flight
    each.  ``part_size``, ``checksums``, ``checksum_algorithm`` and ``retries``
    (attempts per request, or a :class:`~aqueuepipe.RetryPolicy`) are as for
    :func:`~aqueuepipe.copy_many`.
    Workers take their credentials and endpoint from their own environment,
    unless ``endpoint_url`` is given.

    ``skip_existing`` skips objects already at the destination with the same
    size and ETag (or the same S3 checksum where ETags cannot be compared).
    ``preserve_etags`` copies each object with the source's part layout so the
    destination gets the same ETag (single-part sources up to half of
    ``per_worker_limit``, with one PutObject).  ``shard_retries`` is how often
    Dask re-runs a shard whose task raised; shards of lost workers are re-run
    as the scheduler's ``allowed-failures`` setting allows.

    ``manifest`` (a path or an ``s3://`` URL, written locally and uploaded at
    the end) receives one JSON line per object (:meth:`ObjectOutcome.to_json`),
    as shards finish.  ``on_outcome`` is called here with each outcome as it
    arrives; ``worker_progress``, a picklable
    :class:`~aqueuepipe.ProgressListener`, is copied to the workers and called
    there, from their copy loops.

    Returns the :class:`CopySummary`; objects that failed are counted in it and
    described in the manifest, never raised.

    Raises:
        ValueError: a bad URL or option, before anything runs.
        NoSuchBucketError, TransferError: the source could not be listed (the
            shards submitted before that finish first and are in the manifest).

    On ``KeyboardInterrupt`` (or any other exception here) the shards in flight
    are cancelled; an interrupted shard's multipart uploads are aborted by its
    next run, or are left for a bucket lifecycle rule to remove.
    """
    settings = _settings(
        src_prefix,
        dst_prefix,
        shard_objects=shard_objects,
        per_worker_limit=per_worker_limit,
        concurrency=concurrency,
        part_size=part_size,
        part_concurrency=part_concurrency,
        checksums=checksums,
        checksum_algorithm=checksum_algorithm,
        manifest=manifest,
        skip_existing=skip_existing,
        preserve_etags=preserve_etags,
        max_shards_in_flight=max_shards_in_flight,
        shard_retries=shard_retries,
        endpoint_url=endpoint_url,
        retries=retries,
        worker_progress=worker_progress,
        on_outcome=on_outcome,
    )
    run = _Run(settings)
    limit = _in_flight_limit(settings, sum(client.nthreads().values()))
    lister = _Lister(settings.job, settings.shard_objects)
    completed = distributed.as_completed(loop=client.loop)
    futures: dict[str, distributed.Future] = {}
    run.manifest.open()
    ending: BaseException | None = None
    try:
        lister.start()

        def fill() -> None:
            while len(run.in_flight) < limit and (shard := lister.next()) is not None:
                future = run.submit(client, shard)
                futures[future.key] = future
                completed.add(future)

        fill()
        for future in completed:
            report, error = _collect(future)
            del futures[future.key]
            outcomes = run.account(future.key, report, error)
            run.manifest.write(outcomes)
            run.announce(outcomes)
            fill()
        if lister.error is not None:
            raise lister.error
    except BaseException as exc:
        ending = exc
        raise
    finally:
        lister.stop()
        if futures:
            client.cancel(list(futures.values()))
        with contextlib.suppress(Exception):  # peaks are a report; the copies are done
            run.finished_peaks(client.run(_finish_job, settings.job.id, on_error="ignore"))
        run.manifest.close()
        if run.manifest.uploads:
            # In a thread: the caller may be in an event loop (a notebook) already.
            with concurrent.futures.ThreadPoolExecutor(1) as thread:
                thread.submit(
                    asyncio.run, run.manifest.finish(settings.job.endpoint_url, ending)
                ).result()
    return run.summary()


def _collect(future: distributed.Future) -> tuple[_ShardReport | None, BaseException | None]:
    """The report of a finished shard future, or the error that ended it."""
    if future.status == "finished":
        report = future.result()
        future.release()
        assert isinstance(report, _ShardReport)
        return report, None
    error = future.exception() if future.status == "error" else None
    future.release()
    return None, error if isinstance(error, BaseException) else None


async def copy_prefix_async(
    src_prefix: str,
    dst_prefix: str,
    *,
    client: distributed.Client,
    shard_objects: int = DEFAULT_SHARD_OBJECTS,
    per_worker_limit: int = DEFAULT_WORKER_LIMIT,
    concurrency: int = DEFAULT_BATCH_CONCURRENCY,
    part_size: int = DEFAULT_PART_SIZE,
    part_concurrency: int = DEFAULT_CONCURRENCY,
    checksums: Iterable[str] = (),
    checksum_algorithm: str | None = None,
    manifest: str | os.PathLike[str] | None = None,
    skip_existing: bool = True,
    preserve_etags: bool = True,
    max_shards_in_flight: int | None = None,
    shard_retries: int = DEFAULT_SHARD_RETRIES,
    endpoint_url: str | None = None,
    retries: int | RetryPolicy | None = None,
    worker_progress: ProgressListener | None = None,
    on_outcome: Callable[[ObjectOutcome], None] | None = None,
) -> CopySummary:
    """:func:`copy_prefix` for an asynchronous Dask client (``Client(..., asynchronous=True)``).

    The listing runs in the calling event loop, a few shards ahead of the
    submissions; everything else is as for :func:`copy_prefix`.  Cancelling the
    call cancels the shards in flight.
    """
    settings = _settings(
        src_prefix,
        dst_prefix,
        shard_objects=shard_objects,
        per_worker_limit=per_worker_limit,
        concurrency=concurrency,
        part_size=part_size,
        part_concurrency=part_concurrency,
        checksums=checksums,
        checksum_algorithm=checksum_algorithm,
        manifest=manifest,
        skip_existing=skip_existing,
        preserve_etags=preserve_etags,
        max_shards_in_flight=max_shards_in_flight,
        shard_retries=shard_retries,
        endpoint_url=endpoint_url,
        retries=retries,
        worker_progress=worker_progress,
        on_outcome=on_outcome,
    )
    if not client.asynchronous:
        raise ValueError("copy_prefix_async needs an asynchronous client; use copy_prefix")
    run = _Run(settings)
    threads: dict[str, int] = await client.nthreads()
    limit = _in_flight_limit(settings, sum(threads.values()))
    listed: asyncio.Queue[list[_Entry] | None] = asyncio.Queue(maxsize=_PREFETCH_SHARDS)

    async def list_all() -> None:
        try:
            async with contextlib.aclosing(
                _list_shards(settings.job, settings.shard_objects)
            ) as shards:
                async for shard in shards:
                    await listed.put(shard)
        finally:
            await listed.put(None)

    completed = distributed.as_completed(loop=client.loop)
    futures: dict[str, distributed.Future] = {}
    await asyncio.to_thread(run.manifest.open)
    lister = asyncio.create_task(list_all())
    listing_over = False
    ending: BaseException | None = None
    try:

        async def fill() -> None:
            nonlocal listing_over
            while not listing_over and len(run.in_flight) < limit:
                shard = await listed.get()
                if shard is None:
                    listing_over = True
                    return
                future = run.submit(client, shard)
                futures[future.key] = future
                completed.add(future)

        await fill()
        async for future in completed:
            report, error = await _collect_async(future)
            del futures[future.key]
            outcomes = run.account(future.key, report, error)
            await asyncio.to_thread(run.manifest.write, outcomes)
            run.announce(outcomes)
            await fill()
        await lister  # raises the listing's error, if any
    except BaseException as exc:
        ending = exc
        raise
    finally:
        if not lister.done():
            lister.cancel()
            await asyncio.wait((lister,))
            if not lister.cancelled():
                lister.exception()  # retrieved: the error being raised is what counts
        if futures:
            await client.cancel(list(futures.values()))
        with contextlib.suppress(Exception):  # peaks are a report; the copies are done
            peaks = await client.run(_finish_job, settings.job.id, on_error="ignore")
            run.finished_peaks(peaks)
        await asyncio.to_thread(run.manifest.close)
        await run.manifest.finish(settings.job.endpoint_url, ending)
    return run.summary()


async def _collect_async(
    future: distributed.Future,
) -> tuple[_ShardReport | None, BaseException | None]:
    if future.status == "finished":
        report = await future
        future.release()
        assert isinstance(report, _ShardReport)
        return report, None
    error = await future.exception() if future.status == "error" else None
    future.release()
    return None, error if isinstance(error, BaseException) else None
