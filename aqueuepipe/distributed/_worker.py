"""The worker side: one event loop per worker process, and the copy of one shard.

Dask runs tasks in a pool of threads, while a :class:`~aqueuepipe.ByteBudget` and
aiobotocore clients belong to one event loop.  So each worker process starts one
*copy loop*, an event loop in a thread of its own, on first use; a shard task
hands its shard to that loop and waits.  Every shard running on a worker at the
same time therefore shares its one budget and its one pair of clients (their
connection pools): the run's :class:`WorkerResources`.

The driver ends a run on every worker with :func:`finish_job`, also when it is
cancelled or fails: the shards of the run still copying there are cancelled (their
copies abort their multipart uploads), shards arriving later are refused, and the
run's clients are closed.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import distributed

from aqueuepipe import ByteBudget
from aqueuepipe._journal import JournalUnreadable, default_journal_dir, journal_path, load_journal
from aqueuepipe._listing import Listed, merge, s3_listing, same_from_listings
from aqueuepipe.checksums import etag_is_md5_based, normalize_etag
from aqueuepipe.s3 import (
    MAX_PART_SIZE,
    S3Client,
    S3Url,
)
from aqueuepipe.transfer import ClientOptions, PrefixCopyOptions, TransferResult, copy_many

from ._models import Entry, Job, ObjectOutcome, ShardReport, Status, describe, failed_outcome

__all__ = ["copy_shard", "finish_job"]

# A worker's clients and budget for a run are closed when the driver says the run
# is over, or, should the driver have died, after this long without a shard.
_IDLE_SECONDS = 600.0
# Runs a worker remembers as ended, to refuse a shard of theirs that starts late.
_ENDED_RUNS = 256
# Requests a shard makes at once besides the copies (part-size HEADs of streamed
# copies, aborts).
_SIDE_REQUESTS = 8

T = TypeVar("T")


class WorkerResources:
    """One run's budget and clients on one worker process (they live in the copy loop)."""

    def __init__(self, job: Job, stack: contextlib.AsyncExitStack) -> None:
        self.budget = ByteBudget(job.limit)
        #: The copy options of the run's copies here, sharing the budget.
        self.options = job.options(self.budget)
        self.idle_since = time.monotonic()
        self._stack = stack
        self.src: S3Client
        self.dst: S3Client

    @classmethod
    async def open(cls, job: Job, nthreads: int) -> WorkerResources:
        stack = contextlib.AsyncExitStack()
        resources = cls(job, stack)
        options = resources.options
        copies = options.concurrency * max(1, nthreads)
        try:
            # Two pools, as copy_many makes them: an open GetObject body holds a
            # source connection for a whole copy and must never starve the uploads.
            resources.src = await stack.enter_async_context(job.client(copies + _SIDE_REQUESTS))
            resources.dst = await stack.enter_async_context(
                job.client(copies * options.part_concurrency + _SIDE_REQUESTS)
            )
        except BaseException:
            await stack.aclose()
            raise
        return resources

    async def aclose(self) -> None:
        await self._stack.aclose()


class CopyLoop:
    """The event loop of one worker process, running in a thread of its own."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        # Touched only from the loop's thread.
        self._resources: dict[str, asyncio.Future[WorkerResources]] = {}
        self._shards: dict[str, set[asyncio.Task[Any]]] = {}
        self._ended: collections.deque[str] = collections.deque(maxlen=_ENDED_RUNS)
        self._thread = threading.Thread(target=self._main, name="aqueuepipe-copy-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` in the loop (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run_shard(self, job: Job, shard: list[Entry], nthreads: int, worker: str) -> ShardReport:
        """Copy ``shard`` in the loop and wait for its report (from a Dask task thread)."""
        try:
            return self.submit(self._run_shard(job, shard, nthreads, worker)).result()
        except concurrent.futures.CancelledError:
            # The run ended (finish_job) while the shard was copying: nobody waits for
            # this report any more; it says what happened all the same.
            return _failed_shard(job, shard, "the run ended before the shard did", worker)

    async def _run_shard(
        self, job: Job, shard: list[Entry], nthreads: int, worker: str
    ) -> ShardReport:
        if job.id in self._ended:
            return _failed_shard(job, shard, "the run ended before the shard started", worker)
        task = asyncio.current_task()
        assert task is not None
        running = self._shards.setdefault(job.id, set())
        running.add(task)
        try:
            try:
                resources = await self._open(job, nthreads)
            except Exception as exc:
                return _failed_shard(job, shard, describe(exc), worker)
            try:
                outcomes = await ShardCopy(job, resources, shard, worker).run()
            finally:
                resources.idle_since = time.monotonic()
            return ShardReport(outcomes, worker, resources.budget.peak)
        finally:
            running.discard(task)
            if not running and self._shards.get(job.id) is running:
                del self._shards[job.id]

    async def _open(self, job: Job, nthreads: int) -> WorkerResources:
        await self._close_idle(keep=job.id)
        opening = self._resources.get(job.id)
        if opening is None:
            opening = asyncio.ensure_future(WorkerResources.open(job, nthreads))
            self._resources[job.id] = opening
        try:
            return await asyncio.shield(opening)
        except Exception:
            if self._resources.get(job.id) is opening:
                del self._resources[job.id]  # let a retried shard try again
            raise

    async def finish(self, job_id: str) -> int | None:
        """End the run ``job_id`` here; return its budget peak (None if none ran here).

        Its running shards are cancelled and awaited (their copies abort their
        multipart uploads), later ones refused, and its clients closed.
        """
        self._ended.append(job_id)
        running = self._shards.pop(job_id, set())
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        opening = self._resources.pop(job_id, None)
        if opening is None:
            return None
        await asyncio.wait((opening,))
        if opening.cancelled() or opening.exception() is not None:
            return None
        resources = opening.result()
        await resources.aclose()
        return resources.budget.peak

    async def _close_idle(self, keep: str) -> None:
        now = time.monotonic()
        for job_id, opening in list(self._resources.items()):
            if job_id == keep or job_id in self._shards or not opening.done():
                continue
            if opening.cancelled() or opening.exception() is not None:
                continue
            resources = opening.result()
            if now - resources.idle_since > _IDLE_SECONDS:
                del self._resources[job_id]
                await resources.aclose()


def _order(key: str) -> bytes:
    """S3's key order: the byte order of the UTF-8 key."""
    return key.encode("utf-8", "surrogateescape")


def _failed_shard(job: Job, shard: list[Entry], error: str, worker: str) -> ShardReport:
    return ShardReport([failed_outcome(job, entry, error, worker) for entry in shard], worker, 0)


_copy_loop: CopyLoop | None = None
_copy_loop_lock = threading.Lock()


def _the_copy_loop(create: bool = True) -> CopyLoop | None:
    """This process's copy loop, started on first use by whichever task thread comes first."""
    global _copy_loop
    with _copy_loop_lock:
        if _copy_loop is None or _copy_loop.pid != os.getpid():
            _copy_loop = CopyLoop() if create else None
        return _copy_loop


def copy_shard(job: Job, shard: list[Entry]) -> ShardReport:
    """The Dask task: copy one shard on this worker's copy loop, under its budget."""
    try:
        worker = distributed.get_worker()
        address, nthreads = worker.address, worker.state.nthreads
    except ValueError:  # not on a worker (run locally, e.g. in a debugger)
        address, nthreads = f"pid:{os.getpid()}", 1
    loop = _the_copy_loop()
    assert loop is not None
    return loop.run_shard(job, shard, nthreads, address)


async def finish_job(job_id: str) -> int | None:
    """Run on every worker when a run ends (``client.run``); see :meth:`CopyLoop.finish`."""
    loop = _the_copy_loop(create=False)
    if loop is None:
        return None
    return await asyncio.wrap_future(loop.submit(loop.finish(job_id)))


class ShardCopy:
    """One shard on one worker: clean up after a dead attempt, decide from
    listings what is there already, then copy the rest.

    With ``skip_existing``, the shard's entries (as the source was listed) and a
    listing of the destination over the shard's keys are merged as
    :func:`~aqueuepipe.sync` merges its two sides
    (:func:`~aqueuepipe._listing.merge`): an object the listings show the same
    (:func:`~aqueuepipe._listing.same_from_listings`: size and ETag) is skipped
    with no request of its own, one they show missing or different is copied, and
    one they cannot tell about (other part layouts, no ETag) goes to
    :func:`~aqueuepipe.copy_many` with ``skip_existing``, which asks the server.

    Every copy keeps its source's part layout, hence its ETag (the core does it,
    streamed or made by the server), so a re-run decides from the listings.
    """

    def __init__(
        self, job: Job, resources: WorkerResources, shard: list[Entry], worker: str
    ) -> None:
        self.job = job
        self.resources = resources
        self.shard = shard
        self.worker = worker
        self.requests = asyncio.Semaphore(_SIDE_REQUESTS)

    async def run(self) -> list[ObjectOutcome]:
        try:
            await self._abort_leftover_uploads()
            skipped, copies = await self._decide()
            batches = self._batches(copies)
        except Exception as exc:
            error = describe(self.job.error(exc, "destination"))
            return [failed_outcome(self.job, entry, error, self.worker) for entry in self.shard]
        return skipped + await self._copy(batches)

    async def _abort_leftover_uploads(self) -> None:
        """Abort unfinished multipart uploads to this shard's keys.

        They can only be left by an earlier attempt at these keys that died (a
        lost worker, a killed run), or kept for ``resume``: a finished or failed
        copy completes or aborts its own upload unless it is resumable.  Any
        object but an empty one may have been: a server that does not check
        digests gets even small objects as one-part uploads.  With ``resume``, an
        upload that a journal readable on this worker names is kept, for its copy
        to continue; the others are aborted all the same.
        """
        keys = {self.job.dst_key(key) for key, size, _ in self.shard if size > 0}
        if keys:
            # Best effort: without s3:ListBucketMultipartUploads (or with the bucket
            # gone) the copies go on, and report what is wrong themselves.
            with contextlib.suppress(Exception):
                await self._abort_uploads_to(keys)

    async def _abort_uploads_to(self, keys: set[str]) -> None:
        prefix = os.path.commonprefix([min(keys), max(keys)])  # noqa: RUF071 (keys, not paths)
        leftovers: list[tuple[str, str]] = []
        dst = self.resources.dst
        paginator = dst.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.job.dst_bucket, Prefix=prefix):
            leftovers.extend(
                (str(upload["Key"]), str(upload["UploadId"]))
                for upload in page.get("Uploads", [])
                if upload["Key"] in keys
            )
        if self.resources.options.resume and leftovers:
            resumable = await asyncio.to_thread(self._journaled, leftovers)
            leftovers = [upload for upload in leftovers if upload not in resumable]

        async def abort(key: str, upload_id: str) -> None:
            async with self.requests:
                with contextlib.suppress(Exception):  # gone already: nothing left to do
                    await dst.abort_multipart_upload(
                        Bucket=self.job.dst_bucket, Key=key, UploadId=upload_id
                    )

        await asyncio.gather(*(abort(key, upload_id) for key, upload_id in leftovers))

    def _journaled(self, uploads: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The ``(key, upload id)`` of ``uploads`` that a journal here names: the
        journal the copy of that key will look for (the same directory, endpoint,
        bucket and key), holding that upload id."""
        directory = self.resources.options.journal_dir or default_journal_dir()
        endpoint = str(self.resources.dst.meta.endpoint_url)
        named: set[tuple[str, str]] = set()
        for key, upload_id in uploads:
            path = journal_path(directory, endpoint, self.job.dst_bucket, key)
            try:
                journal = load_journal(path)
            except JournalUnreadable:
                continue  # the copy starts over; the upload is not to be kept
            if journal is not None and journal.upload_id == upload_id:
                named.add((key, upload_id))
        return named

    async def _decide(self) -> tuple[list[ObjectOutcome], list[tuple[Entry, bool]]]:
        """The outcomes of the objects the listings show at the destination already,
        and the others, each with whether copy_many is to check the destination."""
        if not self.resources.options.skip_existing:
            return [], [(entry, False) for entry in self.shard]
        job = self.job
        dst_keys = [job.dst_key(key) for key, _, _ in self.shard]
        # The destination is listed under the shard's common prefix, from just
        # before its first key to its last: one page for a shard of up to 1,000
        # keys unless other objects are interleaved with them there.
        prefix = os.path.commonprefix([min(dst_keys), max(dst_keys)])  # noqa: RUF071 (keys)
        entries = {
            dst_key[len(prefix) :]: entry
            for dst_key, entry in zip(dst_keys, self.shard, strict=True)
        }
        first, last = min(entries, key=_order), max(entries, key=_order)

        async def source() -> AsyncIterator[Listed]:
            for relative, (_, size, etag) in entries.items():
                yield Listed(relative, size, 0.0, etag or None)

        async def destination() -> AsyncIterator[Listed]:
            listing = s3_listing(
                self.resources.dst, S3Url(job.dst_bucket, prefix), start_after=first[:-1]
            )
            async with contextlib.aclosing(listing) as listed:
                async for found in listed:
                    if _order(found.key) > _order(last):
                        return
                    yield found

        skipped: list[ObjectOutcome] = []
        copies: list[tuple[Entry, bool]] = []
        try:
            async with contextlib.aclosing(merge(source(), destination())) as merged:
                async for relative, src, dst in merged:
                    if src is None:
                        continue  # only at the destination
                    entry = entries[relative]
                    if dst is None:
                        copies.append((entry, False))
                        continue
                    # Without the source's ETag the time in a listing proves nothing.
                    same = same_from_listings(src, dst) if src.etag is not None else None
                    if same:
                        skipped.append(self._skipped(entry, dst))
                    else:
                        copies.append((entry, same is None))
        except Exception:
            return [], [(entry, True) for entry in self.shard]  # cannot tell: copy_many checks each
        return skipped, copies

    def _skipped(self, entry: Entry, dst: Listed) -> ObjectOutcome:
        """The outcome of ``entry``, which the listings show at the destination as ``dst``."""
        key = entry[0]
        result = TransferResult(
            src=self.job.src_url(key),
            dst=self.job.dst_url(self.job.dst_key(key)),
            size=dst.size,
            etag=dst.etag,
            parts=0,
            skipped=True,
        )
        self.resources.options.progress.transfer_finished(result)
        return self._outcome(result, entry)

    def _batches(self, copies: list[tuple[Entry, bool]]) -> dict[tuple[int, bool], list[Entry]]:
        """The objects to copy by copy_many call: their part size, and whether it is
        to check the destination first.

        The core keeps a multipart source's layout, and a single-PUT source's one
        PutObject where the server checks digests; to a server that does not, a
        single-PUT source up to half the budget goes in a batch whose part size
        exceeds it, so it is one part, whose ETag (the MD5 of its MD5) a later run
        compares with the source's from the listings.
        """
        part_size = self.resources.options.part_size
        most = min(self.job.limit // 2, MAX_PART_SIZE - 1)
        whole = [
            entry[1]
            for entry, _ in copies
            if part_size <= entry[1] <= most and _single_put(entry[2])
        ]
        single = max(whole, default=0) + 1
        batches: dict[tuple[int, bool], list[Entry]] = {}
        for entry, check in copies:
            size = single if part_size <= entry[1] <= most and _single_put(entry[2]) else part_size
            batches.setdefault((size, check), []).append(entry)
        return batches

    async def _copy(self, batches: dict[tuple[int, bool], list[Entry]]) -> list[ObjectOutcome]:
        job, resources = self.job, self.resources
        outcomes: list[ObjectOutcome] = []
        # One limit on the copies of the shard across its batches.
        slots = asyncio.Semaphore(resources.options.concurrency)
        by_dst = {job.dst_url(job.dst_key(entry[0])): entry for entry in self.shard}

        async def gated(entries: list[Entry]) -> AsyncIterator[tuple[str, str]]:
            for key, _, _ in entries:
                await slots.acquire()
                yield job.src_url(key), job.dst_url(job.dst_key(key))

        # The worker's two clients reach one endpoint with one environment's
        # credentials: given as one, the server copies (a streamed fallback then
        # shares the writing client's connections, as copy() does).
        clients: ClientOptions = (
            {"client": resources.dst}
            if resources.options.server_side
            else {"src_client": resources.src, "dst_client": resources.dst}
        )

        async def run_batch(part_size: int, check: bool, entries: list[Entry]) -> None:
            # The run's options, but the budget, clients, part size and skip of the batch.
            options: PrefixCopyOptions = {**job.copies, "part_size": part_size}
            options["skip_existing"] = check
            options.pop("endpoint_url", None)  # the clients are given
            results = copy_many(
                gated(entries), **options, **clients, budget=resources.budget, progress=job.progress
            )
            async with contextlib.aclosing(results) as iterator:
                async for result in iterator:
                    slots.release()
                    outcomes.append(self._outcome(result, by_dst[result.dst]))

        async with asyncio.TaskGroup() as tg:
            for (part_size, check), entries in batches.items():
                tg.create_task(run_batch(part_size, check, entries))
        return outcomes

    def _outcome(self, result: TransferResult, entry: Entry) -> ObjectOutcome:
        key, size, src_etag = entry
        status: Status = "skipped" if result.skipped else "copied" if result.ok else "failed"
        return ObjectOutcome(
            key=key,
            dst_key=self.job.dst_key(key),
            status=status,
            size=result.size if result.ok else size,
            etag=normalize_etag(result.etag) if result.etag else None,
            src_etag=normalize_etag(src_etag) if src_etag else None,
            parts=result.parts,
            checksums=dict(result.checksums),
            seconds=result.seconds,
            retries=result.retries,
            error=None if result.error is None else describe(result.error),
            worker=self.worker,
        )


def _single_put(etag: str | None) -> bool:
    """Whether ``etag`` is a single PutObject's (a plain MD5)."""
    return etag is not None and etag_is_md5_based(etag) and "-" not in etag
