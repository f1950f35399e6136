"""Copying objects: S3 to S3 (one or two endpoints), local file to S3, S3 to local file.

:func:`copy` copies one object and raises on failure; :func:`copy_many` runs
many copies in one event loop under one memory limit and reports each outcome as
a :class:`TransferResult`.  How a copy streams, bounds its memory and verifies
what it wrote is described in :mod:`aqueuepipe._engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._budget import ByteBudget
from ._cancel import wait_despite_cancellation
from ._engine import Copy, Options, ProgressListener, Verify
from ._errors import TransferError
from ._expand import Pairs, expand
from ._skip import already_there
from .checksums import (
    new_hasher,
    s3_algorithm,
)
from .s3._client import ChecksumWhen, S3Client, create_client
from .s3._parts import DEFAULT_PART_SIZE, MIN_PART_SIZE
from .s3._retry import RetryPolicy, as_policy
from .s3._translate import Side, translate_error
from .s3._urls import S3Url, parse_location

__all__ = [
    "DEFAULT_BATCH_CONCURRENCY",
    "DEFAULT_CONCURRENCY",
    "ProgressCallback",
    "ProgressListener",
    "TransferResult",
    "copy",
    "copy_many",
]

#: Parts in flight per copy when none is given.
DEFAULT_CONCURRENCY = 4
#: Copies running at once in :func:`copy_many` when none is given.
DEFAULT_BATCH_CONCURRENCY = 16


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


def _as_listener(progress: ProgressListener | ProgressCallback | None) -> ProgressListener:
    if progress is None:
        return _NoProgress()
    if callable(progress) and not hasattr(progress, "transfer_advanced"):
        return _CallbackListener(progress)
    return progress  # type: ignore[return-value]


def _validate_options(
    *,
    limit: int | None,
    budget: ByteBudget | None,
    part_size: int,
    concurrency: int,
    checksums: Iterable[str],
    checksum_algorithm: str | None,
    progress: ProgressListener | ProgressCallback | None,
    retries: int | RetryPolicy | None,
    verify: Verify = "auto",
    skip_existing: bool = False,
) -> Options:
    """Check every option before any I/O; raise ValueError naming what is wrong."""
    for name, value in (("part_size", part_size), ("concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if part_size < MIN_PART_SIZE:
        raise ValueError(
            f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB, the S3 minimum), "
            f"got {part_size}"
        )
    names = tuple(dict.fromkeys(new_hasher(name).name for name in checksums))
    if checksum_algorithm is not None:
        checksum_algorithm = new_hasher(checksum_algorithm).name
        if checksum_algorithm != "md5":  # md5: Content-MD5 only, no flexible checksum
            s3_algorithm(checksum_algorithm)
    if verify not in ("auto", "required"):
        raise ValueError(f"verify must be 'auto' or 'required', got {verify!r}")
    if budget is not None and limit is not None:
        raise ValueError("pass either limit or budget, not both")
    if budget is None:
        if limit is None:
            limit = part_size * (concurrency + 1)
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
        concurrency=concurrency,
        checksums=names,
        checksum_algorithm=checksum_algorithm,
        verify=verify,
        skip_existing=skip_existing,
        budget=budget,
        progress=_as_listener(progress),
        policy=as_policy(retries),
    )


@dataclass(slots=True)
class _Clients:
    src: S3Client | None
    dst: S3Client | None


async def copy(
    src: str,
    dst: str,
    *,
    limit: int | None = None,
    budget: ByteBudget | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    checksums: Iterable[str] = (),
    checksum_algorithm: str | None = None,
    client: S3Client | None = None,
    src_client: S3Client | None = None,
    dst_client: S3Client | None = None,
    endpoint_url: str | None = None,
    checksum_when: ChecksumWhen = "when_required",
    progress: ProgressListener | ProgressCallback | None = None,
    retries: int | RetryPolicy | None = None,
    verify: Verify = "auto",
) -> TransferResult:
    """Copy ``src`` to ``dst`` by streaming, holding at most ``limit`` bytes.

    ``src`` and ``dst`` are ``s3://bucket/key`` URLs or local paths (at least one
    of them an S3 URL).  Objects smaller than ``part_size`` go with one
    PutObject; larger ones with a multipart upload whose parts are uploaded
    while the source still streams, at most ``concurrency`` at a time.
    ``part_size`` grows automatically so no object needs more than 10,000 parts.

    ``limit`` (bytes) or a shared ``budget`` bounds the memory the copy holds;
    the default fits ``concurrency + 1`` parts.  ``checksums`` (none by default;
    none by default) are computed over
    the bytes as they pass and returned hex-encoded in the result;
    ``checksum_algorithm`` is the S3 checksum sent with every request and checked
    (``"crc64nvme"`` by default, with ``Content-MD5`` where the server is not
    known to verify it; ``"md5"`` sends ``Content-MD5`` only).  A server that
    refuses the header gets the MD5 path, remembered per endpoint.  What was read
    is checked against the source's stored checksum or MD5 ETag before anything is
    committed, and read again when it differs; ``result.verified`` lists the
    evidence, and ``verify="required"`` fails a copy that has none for an S3 end.

    Clients: ``client`` for both sides, or ``src_client`` and ``dst_client`` for
    two endpoints; otherwise clients are created from the environment (honouring
    ``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL``, or ``endpoint_url``) and
    closed afterwards.  ``retries`` is the number of attempts per request (and
    per resumed response body), or a :class:`~aqueuepipe.RetryPolicy` that also
    sets the backoff, the read timeout and the stall timeout; see "Reliability"
    in the README for which layer retries what.

    Raises:
        ValueError: a bad URL or option, before any network call.
        NoSuchBucketError, NoSuchKeyError: the bucket or key is missing.
        ChecksumMismatchError: the destination disagrees with the bytes sent.
        TransferError: any other failure; ``__cause__`` is the underlying error.

    On failure or cancellation a multipart upload is aborted (no parts are left
    on the server) and a local destination is not created.
    """
    options = _validate_options(
        limit=limit,
        budget=budget,
        part_size=part_size,
        concurrency=concurrency,
        checksums=checksums,
        checksum_algorithm=checksum_algorithm,
        progress=progress,
        retries=retries,
        verify=verify,
    )
    src_loc, dst_loc = _check_pair(src, dst)
    _check_clients(client, src_client, dst_client)
    async with contextlib.AsyncExitStack() as stack:
        clients = _Clients(src=src_client or client, dst=dst_client or client)
        make = _client_factory(
            stack, endpoint_url=endpoint_url, checksum_when=checksum_when, policy=options.policy
        )
        both_s3 = isinstance(src_loc, S3Url) and isinstance(dst_loc, S3Url)
        if both_s3 and clients.src is None and clients.dst is None:
            # One client (one pool, one set-up) for both sides of one copy: the
            # body takes one connection and the parts the others.
            clients.src = clients.dst = await make(options.concurrency + 2)
        if isinstance(src_loc, S3Url) and clients.src is None:
            clients.src = await make(2)
        if isinstance(dst_loc, S3Url) and clients.dst is None:
            clients.dst = await make(options.concurrency + 2)
        result = await _copy_one(src, dst, src_loc, dst_loc, clients, options)
    if result.error is not None:
        raise result.error
    return result


def copy_many(
    pairs: Pairs,
    *,
    concurrency: int = DEFAULT_BATCH_CONCURRENCY,
    recursive: bool = False,
    limit: int | None = None,
    budget: ByteBudget | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    part_concurrency: int = DEFAULT_CONCURRENCY,
    checksums: Iterable[str] = (),
    checksum_algorithm: str | None = None,
    client: S3Client | None = None,
    src_client: S3Client | None = None,
    dst_client: S3Client | None = None,
    endpoint_url: str | None = None,
    checksum_when: ChecksumWhen = "when_required",
    progress: ProgressListener | ProgressCallback | None = None,
    retries: int | RetryPolicy | None = None,
    verify: Verify = "auto",
    skip_existing: bool = False,
) -> AsyncGenerator[TransferResult, None]:
    """Copy many ``(src, dst)`` pairs, ``concurrency`` at a time, under one memory limit.

    Returns an async iterator of :class:`TransferResult` in completion order::

        async for result in copy_many(pairs, concurrency=16, limit=30_000_000):
            print(result.dst, "ok" if result.ok else result.error)

    All copies share one :class:`~aqueuepipe.ByteBudget` (``budget``, or one of
    ``limit`` bytes), so the bytes they hold together stay within it however many
    run.  ``pairs`` may be a list, a generator or an async iterable; it is read
    lazily, only as fast as copies start, so it may be endless or huge.

    Every pair yields exactly one result, and a failed pair yields a result with
    ``error`` set (a bad URL, a missing bucket...) while the others go on.  With
    ``recursive=True`` a pair whose source is a prefix (``s3://bucket/dir/``) or a
    local directory is expanded into one pair per object below it (listed page by
    page while the copies run), keeping the relative paths under the destination;
    it yields one result per object, or one failed result if the listing fails.
    A download never writes outside its destination directory: a key such as
    ``dir/../../x`` yields a failed result instead.

    ``skip_existing=True`` skips a pair whose destination already holds the
    source's object: the same size and the same content evidence (an equal
    MD5-based ETag or stored S3 checksum between two objects; a local file's bytes
    checked against the object's checksum or MD5 ETag).  Its result has
    ``skipped=True``.  What cannot be compared is copied again.

    ``part_concurrency`` is the number of parts in flight per copy (what
    ``concurrency`` means for :func:`copy`); the other options are as for
    :func:`copy`, and are checked before any network call.

    Stopping the iteration early (``break``, an exception, cancellation) cancels
    the copies in flight, aborts their multipart uploads and returns every byte
    to the budget before the iterator is closed.

    Raises:
        ValueError: a bad option (at the call, before anything runs).
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    options = _validate_options(
        limit=limit,
        budget=budget,
        part_size=part_size,
        concurrency=part_concurrency,
        checksums=checksums,
        checksum_algorithm=checksum_algorithm,
        progress=progress,
        retries=retries,
        verify=verify,
        skip_existing=skip_existing,
    )
    _check_clients(client, src_client, dst_client)
    return _run_batch(
        pairs,
        concurrency=concurrency,
        recursive=recursive,
        options=options,
        clients=_Clients(src=src_client or client, dst=dst_client or client),
        endpoint_url=endpoint_url,
        checksum_when=checksum_when,
    )


def _check_clients(
    client: S3Client | None, src_client: S3Client | None, dst_client: S3Client | None
) -> None:
    if client is not None and (src_client is not None or dst_client is not None):
        raise ValueError("pass either client or src_client/dst_client, not both")


async def _run_batch(
    pairs: Pairs,
    *,
    concurrency: int,
    recursive: bool,
    options: Options,
    clients: _Clients,
    endpoint_url: str | None,
    checksum_when: ChecksumWhen,
) -> AsyncGenerator[TransferResult, None]:
    # Bounded: a copy holds its slot until its result is taken, so results never
    # pile up and at most `concurrency` copies run.
    results: asyncio.Queue[TransferResult | None] = asyncio.Queue(maxsize=concurrency)
    slots = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        make = _client_factory(
            stack, endpoint_url=endpoint_url, checksum_when=checksum_when, policy=options.policy
        )
        # Separate pools for reading and writing: an open GetObject body holds a
        # connection of the source pool for the whole copy, which must never
        # starve the part uploads of theirs.
        lazy = _LazyClients(clients, make, concurrency, options.concurrency)

        async def run_one(src: str, dst: str, dst_dir: Path | None) -> None:
            try:
                result = await _copy_pair(src, dst, dst_dir, lazy, options)
                await results.put(result)
            finally:
                slots.release()

        async def feed() -> None:
            try:
                async with asyncio.TaskGroup() as copies:
                    async for src, dst, dst_dir, error in expand(pairs, recursive, lazy.get):
                        await slots.acquire()
                        if error is not None:
                            slots.release()
                            await results.put(_failed(src, dst, error, options))
                            continue
                        copies.create_task(run_one(src, dst, dst_dir))
            finally:
                # However the feeder ends (done, or failed: the pairs iterator
                # raised, a bug), the reader must not wait for results forever.
                # A full queue has a reader coming for it, which then finds the
                # feeder done.
                with contextlib.suppress(asyncio.QueueFull):
                    results.put_nowait(None)

        feeder = asyncio.create_task(feed())
        try:
            while True:
                if results.empty() and feeder.done():
                    break
                result = await results.get()
                if result is None:
                    break
                yield result
            await feeder  # raises what ended the feeder, if it failed
        finally:
            if not feeder.done():
                feeder.cancel()
                # The copies clean up (abort uploads, remove temporary files, give
                # bytes back) as they unwind: the batch ends only after they have.
                cancelled = await wait_despite_cancellation(feeder)
                if not feeder.cancelled():
                    feeder.exception()  # retrieved; we are already leaving early
                if cancelled is not None:
                    raise cancelled


async def _existing(
    src: S3Url | Path, dst: S3Url | Path, clients: _Clients
) -> tuple[int, str | None] | None:
    """What :func:`already_there` says; None when it cannot tell (the copy then runs
    and reports whatever is wrong)."""
    try:
        return await already_there(src, dst, clients.src, clients.dst)
    except Exception:
        return None


def _failed(src: str, dst: str, error: BaseException, options: Options) -> TransferResult:
    result = TransferResult(src=src, dst=dst, size=0, etag=None, parts=0, error=error)
    options.progress.transfer_finished(result)
    return result


class _LazyClients:
    """The clients of a batch, created the first time a side needs one."""

    def __init__(
        self,
        given: _Clients,
        make: Callable[[int], Awaitable[S3Client]],
        copies: int,
        parts: int,
    ) -> None:
        self._given = given
        self._make = make
        self._pools = {"source": copies + 1, "destination": copies * parts + 1}
        self._made: dict[str, asyncio.Task[S3Client]] = {}

    async def get(self, side: Side) -> S3Client:
        client = self._given.src if side == "source" else self._given.dst
        if client is not None:
            return client
        if side not in self._made:
            self._made[side] = asyncio.ensure_future(self._make(self._pools[side]))
        return await asyncio.shield(self._made[side])


async def _copy_pair(
    src: str, dst: str, dst_dir: Path | None, lazy: _LazyClients, options: Options
) -> TransferResult:
    try:
        src_loc, dst_loc = _check_pair(src, dst)
        if dst_dir is not None and isinstance(dst_loc, Path):
            await asyncio.to_thread(dst_loc.parent.mkdir, parents=True, exist_ok=True)
        clients = _Clients(
            src=await lazy.get("source") if isinstance(src_loc, S3Url) else None,
            dst=await lazy.get("destination") if isinstance(dst_loc, S3Url) else None,
        )
    except Exception as exc:
        return _failed(src, dst, _as_transfer_error(exc, src, dst), options)
    return await _copy_one(src, dst, src_loc, dst_loc, clients, options)


def _as_transfer_error(exc: Exception, src: str, dst: str) -> BaseException:
    if isinstance(exc, ValueError | TransferError):
        return exc
    return translate_error(exc, src=src, dst=dst, bucket="", key=None, side="source")


def _client_factory(
    stack: contextlib.AsyncExitStack,
    *,
    endpoint_url: str | None,
    checksum_when: ChecksumWhen,
    policy: RetryPolicy,
) -> Callable[[int], Awaitable[S3Client]]:
    async def make(pool: int) -> S3Client:
        client = create_client(
            endpoint_url=endpoint_url,
            max_pool_connections=pool,
            checksum_when=checksum_when,
            max_attempts=policy.attempts,
            read_timeout=policy.read_timeout,
            connect_timeout=policy.connect_timeout,
        )
        return await stack.enter_async_context(client)

    return make


def _check_pair(src: str, dst: str) -> tuple[S3Url | Path, S3Url | Path]:
    src_loc = parse_location(src)
    dst_loc = parse_location(dst)
    if isinstance(src_loc, S3Url) and not src_loc.key:
        raise ValueError(f"source {src!r} names no object (a key is needed)")
    if isinstance(src_loc, S3Url) and src_loc.key.endswith("/"):
        raise ValueError(f"source {src!r} is a prefix; copy prefixes with recursive=True")
    if not isinstance(src_loc, S3Url) and not isinstance(dst_loc, S3Url):
        raise ValueError(f"one of {src!r} and {dst!r} must be an s3:// URL")
    if isinstance(dst_loc, S3Url) and not dst_loc.key:
        raise ValueError(f"destination {dst!r} names no object (a key is needed)")
    if src_loc == dst_loc:
        raise ValueError(f"source and destination are the same object: {src!r}")
    return src_loc, dst_loc


async def _copy_one(
    src: str,
    dst: str,
    src_loc: S3Url | Path,
    dst_loc: S3Url | Path,
    clients: _Clients,
    options: Options,
) -> TransferResult:
    """Run one copy; return its result with ``error`` set instead of raising.

    Cancellation propagates (after cleanup); every other failure is translated
    to a :class:`TransferError` and put in the result.
    """
    started = time.perf_counter()
    if options.skip_existing:
        found = await _existing(src_loc, dst_loc, clients)
        if found is not None:
            size, etag = found
            result = TransferResult(
                src=src,
                dst=dst,
                size=size,
                etag=etag,
                parts=0,
                skipped=True,
                seconds=time.perf_counter() - started,
            )
            options.progress.transfer_finished(result)
            return result
    job = Copy(src, dst, src_loc, dst_loc, options)
    try:
        async with asyncio.timeout(options.policy.stall_timeout) as deadline:
            job.watch(deadline)
            if isinstance(src_loc, S3Url):
                assert clients.src is not None
                if isinstance(dst_loc, S3Url):
                    assert clients.dst is not None
                    await job.s3_to_s3(clients.src, src_loc, clients.dst, dst_loc)
                else:
                    await job.s3_to_file(clients.src, src_loc, dst_loc)
            else:
                assert isinstance(dst_loc, S3Url) and clients.dst is not None
                await job.file_to_s3(src_loc, clients.dst, dst_loc)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            exc = TransferError(
                src, dst, f"no progress for {options.policy.stall_timeout:g} s (stalled)"
            )
        # Errors are translated where each call is made (with its side); what is
        # left (a bug, a bad option found late) is not about either object.
        error = translate_error(
            exc, src=src, dst=dst, bucket="", key=None, side="source", expected_etag=None
        )
        result = TransferResult(
            src=src,
            dst=dst,
            size=job.size or 0,
            etag=None,
            parts=job.parts,
            checksums={},
            seconds=time.perf_counter() - started,
            retries=job.retries,
            error=error,
        )
    else:
        result = TransferResult(
            src=src,
            dst=dst,
            size=job.size or 0,
            etag=job.etag,
            parts=job.parts,
            checksums=job.hashes.hexdigests(),
            seconds=time.perf_counter() - started,
            retries=job.retries,
            verified=job.verified,
        )
    options.progress.transfer_finished(result)
    return result
