"""The driver: list the source prefix, submit shards, account for their outcomes.

One asynchronous driver, :func:`_drive`, serves both entry points.  It runs in
the Dask client's event loop: :func:`copy_prefix_async` awaits it there, and
:func:`copy_prefix` starts it there (the loop a synchronous client runs in a
thread of its own) and waits.

The listing is a task of its own, at most ``_PREFETCH_SHARDS`` shards ahead of
the submissions.  However the driver ends (done, failed, cancelled, or an error
from ``on_outcome``), it cancels the listing, cancels the shards in flight and
ends the run on every worker (:func:`~._worker.finish_job`: the copies still
running there are cancelled and abort their multipart uploads), then closes the
manifest.  No wait of that cleanup depends on anyone reading a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator
from typing import Any, Unpack

import distributed

from aqueuepipe.s3 import S3Url
from aqueuepipe.transfer import check_prefixes, list_as_at_start

from ._manifest import Manifest
from ._models import CopySummary, Entry, Job, ObjectOutcome, ShardReport, describe, failed_outcome
from ._options import CopyPrefixOptions, Settings, check_options
from ._worker import copy_shard, finish_job

__all__ = ["copy_prefix", "copy_prefix_async"]

# Shards listed ahead of submission: enough that the next shard is ready when a
# slot frees, few enough that the driver holds almost nothing.
_PREFETCH_SHARDS = 2


def copy_prefix(
    src_prefix: str,
    dst_prefix: str,
    *,
    client: distributed.Client,
    **options: Unpack[CopyPrefixOptions],
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
    The driver runs in the event loop of ``client`` (a synchronous client runs
    one in a thread of its own): it lists the prefix page by page and submits
    shards of ``shard_objects`` keys (default 1,000) while the listing goes on, at
    most ``max_shards_in_flight`` at once (default: twice the cluster's worker
    threads), so memory here stays flat however many objects there are.

    On each worker process all running shards share one budget of
    ``per_worker_limit`` bytes (default 256 MiB) and one pair of clients; each
    shard copies ``concurrency`` objects at once (default 16) with
    ``part_concurrency`` parts in flight each (default 4).  ``part_size``,
    ``checksums``, ``checksum_algorithm``, ``verify`` and ``retries`` (attempts per
    request, or a :class:`~aqueuepipe.RetryPolicy`) are as for
    :func:`~aqueuepipe.copy_many` (one list of options: :class:`~aqueuepipe.transfer.
    PrefixCopyOptions`); options that make no sense on a cluster (``client``,
    ``metadata``...) are refused with a TypeError.
    Workers take their credentials and endpoint from their own environment,
    unless ``endpoint_url`` is given.

    ``skip_existing`` (off by default, as for :func:`~aqueuepipe.copy_many`; on for
    ``aqueuepipe sync``) skips objects already at the destination, decided as
    :func:`~aqueuepipe.sync` decides: from a listing of the destination per shard
    (the same size and ETag), with no request per object, and by
    :func:`~aqueuepipe.copy_many`'s rule (size, ETag or S3 checksum, asked with
    HeadObject) only where the listings cannot tell: set it to make a re-run
    copy only what is missing.
    Copies keep their source's part layout, so the destination gets the same
    ETag, whether the server makes them or they are streamed (single-part sources
    up to half of ``per_worker_limit`` with one PutObject).  ``preserve_etags`` is
    deprecated and has no effect.  Within one
    endpoint (and with no ``checksums``), the server makes the copies
    (CopyObject, UploadPartCopy) as :func:`~aqueuepipe.copy_many` does;
    ``server_side=False`` streams them through the workers.
    ``shard_retries`` (default 2) is how often Dask re-runs a shard whose task
    raised; shards of lost workers are re-run as the scheduler's
    ``allowed-failures`` setting allows.  A shard first aborts the multipart
    uploads a dead attempt left for its keys.

    ``resume`` (off by default) and ``journal_dir`` are as for
    :func:`~aqueuepipe.copy_many`: each multipart upload keeps a journal, an
    interrupted copy (a failure, a cancelled run, a killed worker) leaves its
    upload open, and the same copy run again continues it, sending only the parts
    the server lacks.  The journals are written by the workers, on each worker's
    own disk: by default in the per-user cache folder of the user the worker runs
    as (``$XDG_CACHE_HOME/aqueuepipe/uploads``, else
    ``~/.cache/aqueuepipe/uploads``), so only a shard that runs again on the same
    machine finds them.  Pass a ``journal_dir`` on a file system every worker
    mounts at the same path (a relative one is taken from this process's working
    directory) for a shard re-run on another machine to continue the uploads.
    With ``resume``, a shard keeps the uploads to its keys that a journal it can
    read names, and aborts the others as it does without.

    ``manifest`` (a path or an ``s3://`` URL, written locally and uploaded at
    the end) receives one JSON line per object (:meth:`ObjectOutcome.to_json`),
    as shards finish.  ``on_outcome`` is called with each outcome as it arrives,
    in the client's event loop: keep it short.  ``worker_progress``, a picklable
    :class:`~aqueuepipe.ProgressListener`, is copied to the workers and called
    there, from their copy loops.

    Returns the :class:`CopySummary`; objects that failed are counted in it and
    described in the manifest, never raised.

    Raises:
        ValueError: a bad URL or option, before anything runs; or ``client`` is
            asynchronous and this is its event loop (use :func:`copy_prefix_async`).
        NoSuchBucketError, TransferError: the source could not be listed (the
            shards submitted before that finish first and are in the manifest).
        Whatever ``on_outcome`` raises.

    On ``KeyboardInterrupt``, an exception from ``on_outcome`` or any other end
    before the last shard, the shards in flight are cancelled on the workers
    (their multipart uploads aborted, or kept for the next run with ``resume``)
    before the call returns or raises.
    """
    settings = check_options(src_prefix, dst_prefix, **options)
    if client.asynchronous:
        raise ValueError("this is the client's event loop: use await copy_prefix_async(...)")
    return _run_in_client_loop(client, settings)


async def copy_prefix_async(
    src_prefix: str,
    dst_prefix: str,
    *,
    client: distributed.Client,
    **options: Unpack[CopyPrefixOptions],
) -> CopySummary:
    """:func:`copy_prefix` for an asynchronous Dask client (``Client(..., asynchronous=True)``).

    Options, result and errors are as for :func:`copy_prefix`.  Cancelling the
    call, or an exception from ``on_outcome``, cancels the listing and the shards
    in flight (their multipart uploads aborted on the workers) and closes the
    manifest before the cancellation or the exception propagates.

    Raises:
        ValueError: a bad URL or option, or a client that is not asynchronous.
    """
    settings = check_options(src_prefix, dst_prefix, **options)
    if not client.asynchronous:
        raise ValueError("copy_prefix_async needs an asynchronous client; use copy_prefix")
    return await _drive(client, settings)


# -- the driver -----------------------------------------------------------------------


def _run_in_client_loop(client: distributed.Client, settings: Settings) -> CopySummary:
    """Run :func:`_drive` in the event loop of the synchronous ``client``; wait for it.

    A ``KeyboardInterrupt`` (or any other exception) while waiting cancels the
    driver, and is raised again once the driver's cleanup is over.
    """
    loop: asyncio.AbstractEventLoop = client.loop.asyncio_loop
    if not loop.is_running():
        raise ValueError("the client's event loop is not running (is the client closed?)")
    ended = threading.Event()
    driver: list[asyncio.Task[CopySummary]] = []

    def start() -> None:
        task = loop.create_task(_drive(client, settings))
        task.add_done_callback(lambda _: ended.set())
        driver.append(task)

    def wait() -> None:
        while not ended.wait(1.0):
            if loop.is_closed():
                raise RuntimeError("the Dask client's event loop closed under copy_prefix")

    loop.call_soon_threadsafe(start)
    try:
        wait()
    except BaseException:
        # A second interrupt while the driver cleans up ends the wait, not the cleanup.
        loop.call_soon_threadsafe(lambda: driver[0].cancel())  # after start(): FIFO
        wait()
        raise
    return driver[0].result()


async def _drive(client: distributed.Client, settings: Settings) -> CopySummary:
    """List, submit and account until every shard is done; see the module docstring."""
    run = _Run(settings)
    threads: dict[str, int] = await client.nthreads()
    limit = settings.in_flight_limit(sum(threads.values()))
    completed = distributed.as_completed(loop=client.loop)
    listing = _Listing(settings.job, settings.shard_objects)
    ending: BaseException | None = None
    try:
        await run.manifest.open()

        async def fill() -> None:
            while len(run.in_flight) < limit and (shard := await listing.next()) is not None:
                completed.add(run.submit(client, shard))

        await fill()
        async for future in completed:
            outcomes = run.account(future.key, *await _collect(future))
            await run.manifest.write(outcomes)
            run.announce(outcomes)
            await fill()
        if listing.error is not None:
            raise listing.error
    except BaseException as exc:
        ending = exc
        raise
    finally:
        await listing.aclose()
        await run.end_shards(client)
        await run.manifest.close(settings.job.endpoint_url, ending)
    return run.summary()


async def _collect(
    future: distributed.Future,
) -> tuple[ShardReport | None, BaseException | None]:
    """The report of a finished shard future, or the error that ended it."""
    try:
        if future.status == "finished":
            report = await future
            assert isinstance(report, ShardReport)
            return report, None
        error = await future.exception() if future.status == "error" else None
        return None, error if isinstance(error, BaseException) else None
    finally:
        future.release()


class _Listing:
    """The source prefix, listed by a task of its own a few shards ahead of the driver."""

    def __init__(self, job: Job, shard_objects: int) -> None:
        self._shards: asyncio.Queue[list[Entry] | None] = asyncio.Queue(_PREFETCH_SHARDS)
        self._over = False
        #: What ended the listing early, once it has.
        self.error: Exception | None = None
        self._task = asyncio.create_task(self._list(job, shard_objects))

    async def _list(self, job: Job, shard_objects: int) -> None:
        try:
            async with contextlib.aclosing(_list_shards(job, shard_objects)) as shards:
                async for shard in shards:
                    await self._shards.put(shard)
        except Exception as exc:
            self.error = exc
        # The end, after the last shard or an error; never after a cancellation
        # (no reader is left then), so a cancelled listing never waits on the queue.
        await self._shards.put(None)

    async def next(self) -> list[Entry] | None:
        """The next shard; None once the listing has ended (see :attr:`error`)."""
        if self._over:
            return None
        shard = await self._shards.get()
        self._over = shard is None
        return shard

    async def aclose(self) -> None:
        """Stop listing and wait until the task has ended (it ends at once)."""
        self._task.cancel()
        await asyncio.wait((self._task,))


async def _list_shards(job: Job, shard_objects: int) -> AsyncGenerator[list[Entry], None]:
    """The source prefix, page by page, cut into shards of ``shard_objects`` entries."""
    try:
        # A copy into its own prefix lists it as it was when the copy started.
        own_output = check_prefixes(
            S3Url(job.src_bucket, job.src_prefix),
            S3Url(job.dst_bucket, job.dst_prefix),
            one_endpoint=True,
        )
        async with job.client(pool=2) as client:
            shard: list[Entry] = []
            entries = list_as_at_start(client, job.src_bucket, job.src_prefix, own_output)
            async for entry in entries:
                key = str(entry["Key"])
                if key == job.src_prefix:
                    continue  # the "directory" object of the prefix itself
                shard.append((key, int(entry["Size"]), str(entry.get("ETag", ""))))
                if len(shard) == shard_objects:
                    yield shard
                    shard = []
            if shard:
                yield shard
    except Exception as exc:
        error = job.error(exc, "source")
        if error is exc:
            raise
        raise error from exc


class _Run:
    """The driver's bookkeeping: shards in flight, totals, the manifest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.job = settings.job
        self.manifest = Manifest(settings.manifest)
        # Dask key -> the shard's future and entries.
        self.in_flight: dict[str, tuple[distributed.Future, list[Entry]]] = {}
        self.shards = 0
        self.objects = self.bytes = self.skipped = self.skipped_bytes = self.failures = 0
        self.peaks: dict[str, int] = {}
        self.started = time.perf_counter()

    def submit(self, client: distributed.Client, shard: list[Entry]) -> distributed.Future:
        future = client.submit(
            copy_shard,
            self.job,
            shard,
            key=f"aqueuepipe-shard-{self.job.id}-{self.shards}",
            pure=False,
            retries=self.settings.shard_retries,
        )
        self.in_flight[future.key] = (future, shard)
        self.shards += 1
        return future

    def account(
        self, key: str, report: ShardReport | None, error: BaseException | None
    ) -> list[ObjectOutcome]:
        """Count a finished shard (its report, or the error that ended it); return its outcomes."""
        _, shard = self.in_flight.pop(key)
        if report is None:
            message = describe(error) if error is not None else "the shard was cancelled"
            outcomes = [
                failed_outcome(self.job, entry, f"shard failed: {message}", None) for entry in shard
            ]
        else:
            outcomes = report.outcomes
            self._peak(report.worker, report.budget_peak)
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

    async def end_shards(self, client: distributed.Client) -> None:
        """Cancel the shards in flight and end the run on every worker (its clients closed).

        Dask cannot stop a task that is running; :func:`finish_job` cancels its
        copies on the worker, which abort their uploads before it returns.
        """
        futures = [future for future, _ in self.in_flight.values()]
        if futures:
            await client.cancel(futures)
        # Best effort once the scheduler is gone (the client raises); the budget
        # peaks it returns are a report.
        with contextlib.suppress(Exception):
            peaks: dict[str, Any] = await client.run(finish_job, self.job.id, on_error="ignore")
            for worker, peak in peaks.items():
                if isinstance(peak, int):
                    self._peak(worker, peak)

    def _peak(self, worker: str, peak: int) -> None:
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
