"""Copying objects: S3 to S3 (one or two endpoints), local file to S3, S3 to local file.

Memory: every byte a copy holds is counted in one :class:`~aqueuepipe.ByteBudget`
(its own ``limit``, or a ``budget`` shared by many copies).  A copy to S3 reserves
a whole part from the budget before it reads the part, reads the source straight
into that buffer, and gives the bytes back when the server has acknowledged the
part.  Reserving whole parts means a copy never holds some bytes while waiting
for more, so any number of copies can share one budget without deadlocking.  A
download streams the body through an :class:`~aqueuepipe.AsyncPipe` on the same
budget into the local file.

Integrity: hashes are computed while the bytes pass (in a worker thread for
large buffers).  Each part's MD5 is checked against the ETag the server returns
for it before the upload is completed, and the final ETag against the MD5 of the
part MD5s, whenever the server's ETags are MD5-based (SSE-KMS, SSE-C and some
S3-compatible servers use other ETags; then only sizes and S3 checksums are
compared, so a good copy never fails).  A failed or cancelled multipart copy
aborts its upload, so no parts are left on the server; a failed download leaves
no file at the destination.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import itertools
import os
import time
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ._budget import ByteBudget
from ._errors import ChecksumMismatchError, TransferError
from ._pipe import AsyncPipe
from .checksums import (
    StreamHashes,
    composite_checksum,
    etag_is_md5_based,
    multipart_etag,
    new_hasher,
    normalize_etag,
    s3_algorithm,
    single_etag,
)
from .files import FileSink, FileSource, safe_join
from .s3._client import ChecksumWhen, S3Client, create_client
from .s3._objects import MultipartUpload, ObjectStream, open_object
from .s3._parts import DEFAULT_PART_SIZE, MIN_PART_SIZE, choose_part_size
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
    ``error`` is set, and ``ok`` false, when the copy failed (only
    :func:`copy_many` reports failures as values; :func:`copy` raises).
    """

    src: str
    dst: str
    size: int
    etag: str | None
    parts: int
    checksums: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the copy succeeded."""
        return self.error is None

    @property
    def throughput(self) -> float:
        """Bytes per second over the whole copy (0 when nothing was timed)."""
        return self.size / self.seconds if self.seconds > 0 else 0.0


class ProgressListener(Protocol):
    """Receives progress of copies; :mod:`aqueuepipe.progress` has a terminal display."""

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        """A copy began; ``total`` is its size if known."""

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        """``nbytes`` more bytes of the copy reached the destination."""

    def transfer_finished(self, result: TransferResult) -> None:
        """The copy ended, successfully or not."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    """Validated options shared by every copy of a call."""

    part_size: int
    concurrency: int
    checksums: tuple[str, ...]
    checksum_algorithm: str | None  # aqueuepipe's name, e.g. "sha256"
    budget: ByteBudget
    progress: ProgressListener


def _validate_options(
    *,
    limit: int | None,
    budget: ByteBudget | None,
    part_size: int,
    concurrency: int,
    checksums: Iterable[str],
    checksum_algorithm: str | None,
    progress: ProgressListener | ProgressCallback | None,
) -> _Options:
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
        s3_algorithm(checksum_algorithm)  # ValueError for md5
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
    return _Options(
        part_size=part_size,
        concurrency=concurrency,
        checksums=names,
        checksum_algorithm=checksum_algorithm,
        budget=budget,
        progress=_as_listener(progress),
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
    checksums: Iterable[str] = ("md5",),
    checksum_algorithm: str | None = None,
    client: S3Client | None = None,
    src_client: S3Client | None = None,
    dst_client: S3Client | None = None,
    endpoint_url: str | None = None,
    checksum_when: ChecksumWhen = "when_required",
    progress: ProgressListener | ProgressCallback | None = None,
    retries: int | None = None,
) -> TransferResult:
    """Copy ``src`` to ``dst`` by streaming, holding at most ``limit`` bytes.

    ``src`` and ``dst`` are ``s3://bucket/key`` URLs or local paths (at least one
    of them an S3 URL).  Objects smaller than ``part_size`` go with one
    PutObject; larger ones with a multipart upload whose parts are uploaded
    while the source still streams, at most ``concurrency`` at a time.
    ``part_size`` grows automatically so no object needs more than 10,000 parts.

    ``limit`` (bytes) or a shared ``budget`` bounds the memory the copy holds;
    the default fits ``concurrency + 1`` parts.  ``checksums`` are computed over
    the bytes as they pass and returned hex-encoded in the result;
    ``checksum_algorithm`` (e.g. ``"sha256"``, ``"crc32c"``) also sends that S3
    checksum with every part and checks the one S3 reports for the object.

    Clients: ``client`` for both sides, or ``src_client`` and ``dst_client`` for
    two endpoints; otherwise clients are created from the environment (honouring
    ``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL``, or ``endpoint_url``) and
    closed afterwards.  ``retries`` is the number of attempts botocore makes per
    request for those clients.

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
    )
    src_loc, dst_loc = _check_pair(src, dst)
    _check_clients(client, src_client, dst_client, retries)
    async with contextlib.AsyncExitStack() as stack:
        clients = _Clients(src=src_client or client, dst=dst_client or client)
        make = _client_factory(
            stack, endpoint_url=endpoint_url, checksum_when=checksum_when, retries=retries
        )
        if isinstance(src_loc, S3Url) and clients.src is None:
            clients.src = await make(2)
        if isinstance(dst_loc, S3Url) and clients.dst is None:
            clients.dst = await make(options.concurrency + 2)
        result = await _copy_one(src, dst, src_loc, dst_loc, clients, options)
    if result.error is not None:
        raise result.error
    return result


Pairs = Iterable[tuple[str, str]] | AsyncIterable[tuple[str, str]]


def copy_many(
    pairs: Pairs,
    *,
    concurrency: int = DEFAULT_BATCH_CONCURRENCY,
    recursive: bool = False,
    limit: int | None = None,
    budget: ByteBudget | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    part_concurrency: int = DEFAULT_CONCURRENCY,
    checksums: Iterable[str] = ("md5",),
    checksum_algorithm: str | None = None,
    client: S3Client | None = None,
    src_client: S3Client | None = None,
    dst_client: S3Client | None = None,
    endpoint_url: str | None = None,
    checksum_when: ChecksumWhen = "when_required",
    progress: ProgressListener | ProgressCallback | None = None,
    retries: int | None = None,
) -> AsyncIterator[TransferResult]:
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
    )
    _check_clients(client, src_client, dst_client, retries)
    return _run_batch(
        pairs,
        concurrency=concurrency,
        recursive=recursive,
        options=options,
        clients=_Clients(src=src_client or client, dst=dst_client or client),
        endpoint_url=endpoint_url,
        checksum_when=checksum_when,
        retries=retries,
    )


def _check_clients(
    client: S3Client | None,
    src_client: S3Client | None,
    dst_client: S3Client | None,
    retries: int | None,
) -> None:
    if client is not None and (src_client is not None or dst_client is not None):
        raise ValueError("pass either client or src_client/dst_client, not both")
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 1
    ):
        raise ValueError(f"retries must be a positive number of attempts, got {retries!r}")


async def _run_batch(
    pairs: Pairs,
    *,
    concurrency: int,
    recursive: bool,
    options: _Options,
    clients: _Clients,
    endpoint_url: str | None,
    checksum_when: ChecksumWhen,
    retries: int | None,
) -> AsyncIterator[TransferResult]:
    # Bounded: a copy holds its slot until its result is taken, so results never
    # pile up and at most `concurrency` copies run.
    results: asyncio.Queue[TransferResult | None] = asyncio.Queue(maxsize=concurrency)
    slots = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        make = _client_factory(
            stack, endpoint_url=endpoint_url, checksum_when=checksum_when, retries=retries
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
            async with asyncio.TaskGroup() as copies:
                async for src, dst, dst_dir, error in _expand(pairs, recursive, lazy):
                    await slots.acquire()
                    if error is not None:
                        slots.release()
                        await results.put(_failed(src, dst, error, options))
                        continue
                    copies.create_task(run_one(src, dst, dst_dir))
            await results.put(None)

        feeder = asyncio.create_task(feed())
        try:
            while (result := await results.get()) is not None:
                yield result
            await feeder
        finally:
            if not feeder.done():
                feeder.cancel()
                await _wait_uncancellable(feeder)


async def _wait_uncancellable(task: asyncio.Task[None]) -> None:
    """Wait for ``task`` to end even if we are cancelled meanwhile; then re-raise that.

    The copies clean up (abort uploads, remove temporary files, give bytes back)
    as they unwind, and the batch must not end before they have.
    """
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def _failed(src: str, dst: str, error: BaseException, options: _Options) -> TransferResult:
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
    src: str, dst: str, dst_dir: Path | None, lazy: _LazyClients, options: _Options
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


async def _aiter_pairs(pairs: Pairs) -> AsyncIterator[tuple[str, str]]:
    if isinstance(pairs, AsyncIterable):
        async for pair in pairs:
            yield pair
    else:
        for pair in pairs:
            yield pair


_Expanded = tuple[str, str, Path | None, BaseException | None]


async def _expand(pairs: Pairs, recursive: bool, lazy: _LazyClients) -> AsyncIterator[_Expanded]:
    """Yield (src, dst, download root or None, error or None) per object to copy."""
    async for pair in _aiter_pairs(pairs):
        try:
            src, dst = (str(part) for part in pair)
        except (TypeError, ValueError):
            yield str(pair), "", None, ValueError(f"not a (src, dst) pair: {pair!r}")
            continue
        if not recursive:
            yield src, dst, None, None
            continue
        try:
            src_loc = parse_location(src)
            dst_loc = parse_location(dst)
        except ValueError as exc:
            yield src, dst, None, exc
            continue
        if isinstance(src_loc, S3Url) and (not src_loc.key or src_loc.key.endswith("/")):
            async for item in _expand_prefix(src, dst, src_loc, dst_loc, lazy):
                yield item
        elif isinstance(src_loc, Path) and await asyncio.to_thread(src_loc.is_dir):
            async for item in _expand_directory(src, dst, src_loc, dst_loc):
                yield item
        else:
            yield src, dst, None, None


def _join_dst(dst_loc: S3Url | Path, relative: str) -> tuple[str, Path | None]:
    """The destination of ``relative`` under ``dst_loc``; raises ValueError if unsafe."""
    if isinstance(dst_loc, S3Url):
        prefix = dst_loc.key if not dst_loc.key or dst_loc.key.endswith("/") else dst_loc.key + "/"
        return str(S3Url(dst_loc.bucket, prefix + relative)), None
    return str(safe_join(dst_loc, relative)), dst_loc


async def _expand_prefix(
    src: str, dst: str, src_loc: S3Url, dst_loc: S3Url | Path, lazy: _LazyClients
) -> AsyncIterator[_Expanded]:
    prefix = src_loc.key
    try:
        client = await lazy.get("source")
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=src_loc.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                relative = key[len(prefix) :]
                if not relative or (isinstance(dst_loc, Path) and key.endswith("/")):
                    continue  # the prefix itself, or a folder marker on download
                source = str(S3Url(src_loc.bucket, key))
                try:
                    target, root = _join_dst(dst_loc, relative)
                except ValueError as exc:
                    yield source, f"{dst.rstrip('/')}/{relative}", None, exc
                    continue
                yield source, target, root, None
    except Exception as exc:
        yield (
            src,
            dst,
            None,
            translate_error(exc, src=src, dst=dst, bucket=src_loc.bucket, key=None, side="source"),
        )


async def _expand_directory(
    src: str, dst: str, root: Path, dst_loc: S3Url | Path
) -> AsyncIterator[_Expanded]:
    walker = _walk_files(root)
    while batch := await asyncio.to_thread(_take, walker, 1000):
        for path in batch:
            relative = path.relative_to(root).as_posix()
            try:
                target, _ = _join_dst(dst_loc, relative)
            except ValueError as exc:
                yield str(path), dst, None, exc
                continue
            yield str(path), target, None, None


def _walk_files(root: Path) -> Iterator[Path]:
    for directory, _dirs, files in os.walk(root):
        for name in sorted(files):
            yield Path(directory, name)


def _take(iterator: Iterator[Path], n: int) -> list[Path]:
    return list(itertools.islice(iterator, n))


def _client_factory(
    stack: contextlib.AsyncExitStack,
    *,
    endpoint_url: str | None,
    checksum_when: ChecksumWhen,
    retries: int | None,
) -> Callable[[int], Awaitable[S3Client]]:
    async def make(pool: int) -> S3Client:
        kwargs: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "max_pool_connections": pool,
            "checksum_when": checksum_when,
        }
        if retries is not None:
            kwargs["max_attempts"] = retries
        return await stack.enter_async_context(create_client(**kwargs))

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
    options: _Options,
) -> TransferResult:
    """Run one copy; return its result with ``error`` set instead of raising.

    Cancellation propagates (after cleanup); every other failure is translated
    to a :class:`TransferError` and put in the result.
    """
    started = time.perf_counter()
    job = _Copy(src, dst, src_loc, dst_loc, options)
    try:
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
        bucket, key = job.object_on(job.side)
        error = translate_error(exc, src=src, dst=dst, bucket=bucket, key=key, side=job.side)
        result = TransferResult(
            src=src,
            dst=dst,
            size=job.size or 0,
            etag=None,
            parts=job.parts,
            checksums={},
            seconds=time.perf_counter() - started,
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
        )
    options.progress.transfer_finished(result)
    return result


# Open GetObject bodies per client that is used for both sides of copies. Each
# body holds a pooled connection for the whole copy; if the bodies took every
# connection, no part could be uploaded and the copies would wait for each other
# forever. So at most (pool size - 1) bodies are open per shared client.
_STREAM_SLOTS: weakref.WeakKeyDictionary[object, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _stream_slots(client: S3Client) -> asyncio.Semaphore:
    slots = _STREAM_SLOTS.get(client)
    if slots is None:
        config = getattr(client.meta, "config", None)
        pool = int(getattr(config, "max_pool_connections", None) or 10)
        slots = _STREAM_SLOTS[client] = asyncio.Semaphore(max(1, pool - 1))
    return slots


class _PartSource(Protocol):
    async def readinto(self, buf: memoryview) -> int: ...


class _Copy:
    """The state of one copy while it runs."""

    def __init__(
        self, src: str, dst: str, src_loc: S3Url | Path, dst_loc: S3Url | Path, options: _Options
    ) -> None:
        self.src = src
        self.dst = dst
        self.locations: dict[Side, S3Url | Path] = {"source": src_loc, "destination": dst_loc}
        self.options = options
        self.budget = options.budget
        self.hashes = StreamHashes(options.checksums)
        self.size: int | None = None
        self.etag: str | None = None
        self.parts = 0
        # Which side a failure is about, for the error message: updated as the
        # copy moves between reading the source and writing the destination.
        self.side: Side = "source"
        self._hash_tail: asyncio.Future[None] | None = None

    def object_on(self, side: Side) -> tuple[str, str | None]:
        """The (bucket, key) of ``side``; ("", None) for a local file."""
        location = self.locations[side]
        if isinstance(location, S3Url):
            return location.bucket, location.key
        return "", None

    # -- the three directions ---------------------------------------------------

    async def s3_to_s3(
        self, src_client: S3Client, src: S3Url, dst_client: S3Client, dst: S3Url
    ) -> None:
        self.side = "source"
        async with contextlib.AsyncExitStack() as stack:
            if src_client is dst_client:
                await stack.enter_async_context(_stream_slots(src_client))
            stream = await stack.enter_async_context(open_object(src_client, src))
            self.size = stream.size
            self.options.progress.transfer_started(self.src, self.dst, stream.size)
            await self._upload(stream, stream.size, dst_client, dst)

    async def file_to_s3(self, src: Path, dst_client: S3Client, dst: S3Url) -> None:
        self.side = "source"
        async with FileSource(src) as source:
            self.size = source.size
            self.options.progress.transfer_started(self.src, self.dst, source.size)
            await self._upload(source, source.size, dst_client, dst)

    async def s3_to_file(self, src_client: S3Client, src: S3Url, dst: Path) -> None:
        self.side = "destination"
        async with FileSink(dst) as sink:  # checks the target before any request
            self.side = "source"
            async with open_object(src_client, src) as stream:
                self.size = stream.size
                self.options.progress.transfer_started(self.src, self.dst, stream.size)
                await self._download(stream, sink)
            self._check_download_etag(stream)
            self.side = "destination"
            await sink.commit()

    # -- upload -----------------------------------------------------------------

    async def _upload(self, source: _PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        part_size = choose_part_size(size, self.options.part_size)
        if part_size > self.budget.limit:
            raise ValueError(
                f"the memory limit ({self.budget.limit} bytes) cannot hold one part of "
                f"{part_size} bytes, the size needed to copy {size} bytes in 10,000 parts"
            )
        if size < part_size:
            await self._put(source, size, client, dst)
        else:
            await self._multipart(source, size, part_size, client, dst)

    async def _put(self, source: _PartSource, size: int, client: S3Client, dst: S3Url) -> None:
        async with self.budget.reserve(size):
            part = _Part(size)
            self._check_length(await part.fill(source), size)
            await self._check_eof(source)
            md5, checksum = await self._hash_part(part)
            kwargs: dict[str, Any] = {
                "Bucket": dst.bucket,
                "Key": dst.key,
                "Body": part.body,
                "ContentLength": size,
            }
            algorithm = self.options.checksum_algorithm
            if algorithm is not None and checksum is not None:
                kwargs["ChecksumAlgorithm"] = s3_algorithm(algorithm)
                kwargs[f"Checksum{s3_algorithm(algorithm)}"] = checksum
            self.side = "destination"
            response = await client.put_object(**kwargs)
        etag = str(response["ETag"])
        self._check_etag(response, single_etag(md5))
        if algorithm is not None and checksum is not None:
            self._check_s3_checksum(response, checksum)
        self.etag = etag
        self.options.progress.transfer_advanced(self.src, self.dst, size)

    async def _multipart(
        self, source: _PartSource, size: int, part_size: int, client: S3Client, dst: S3Url
    ) -> None:
        algorithm = self.options.checksum_algorithm
        upload = MultipartUpload(
            client, dst, checksum_algorithm=s3_algorithm(algorithm) if algorithm else None
        )
        part_md5s: dict[int, bytes] = {}
        part_checksums: dict[int, bytes] = {}
        slots = asyncio.Semaphore(self.options.concurrency)
        try:
            self.side = "destination"
            await upload.create()
            async with asyncio.TaskGroup() as tg:
                offset = 0
                number = 0
                while offset < size:
                    number += 1
                    length = min(part_size, size - offset)
                    # A slot, then the part's bytes; both are given back by
                    # _send_part once the server has the part, or here on failure.
                    await slots.acquire()
                    try:
                        await self.budget.acquire(length)
                    except BaseException:
                        slots.release()
                        raise
                    try:
                        part = _Part(length)
                        self.side = "source"
                        got = await part.fill(source)
                        self._check_length(offset + got, size, offset + length)
                    except BaseException:
                        self.budget.release(length)
                        slots.release()
                        raise
                    tg.create_task(
                        self._send_part(upload, number, part, slots, part_md5s, part_checksums)
                    )
                    offset += length
                await self._check_eof(source)
            self.parts = number
            self.side = "destination"
            response = await upload.complete()
        except BaseException:
            await upload.abort()
            raise
        ordered_md5s = [part_md5s[n] for n in sorted(part_md5s)]
        self._check_etag(response, multipart_etag(ordered_md5s))
        if algorithm is not None:
            ordered = [part_checksums[n] for n in sorted(part_checksums)]
            self._check_s3_checksum(response, composite_checksum(algorithm, ordered))
        self.etag = str(response["ETag"])

    async def _send_part(
        self,
        upload: MultipartUpload,
        number: int,
        part: _Part,
        slots: asyncio.Semaphore,
        part_md5s: dict[int, bytes],
        part_checksums: dict[int, bytes],
    ) -> None:
        """Hash and upload one part, then give its bytes back to the budget."""
        try:
            md5, checksum = await self._hash_part(part)
            self.side = "destination"
            response = await upload.upload_part(number, part.body, part.size, checksum)
            self._check_etag(response, md5.hex(), what=f"ETag of part {number}")
            part_md5s[number] = md5
            if checksum is not None:
                part_checksums[number] = base64.b64decode(checksum)
            self.options.progress.transfer_advanced(self.src, self.dst, part.size)
        finally:
            self.budget.release(part.size)
            slots.release()

    async def _hash_part(self, part: _Part) -> tuple[bytes, str | None]:
        """Hash a part: the stream hashes in order, plus its own MD5 and S3 checksum.

        Parts are hashed one after another in source order (the stream hashes
        depend on it), in a worker thread, while other parts download and upload.
        """
        previous = self._hash_tail
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._hash_tail = mine
        algorithm = self.options.checksum_algorithm

        def work() -> tuple[bytes, str | None]:
            with part.body.getbuffer() as view:
                self.hashes.update(view)
                md5 = hashlib.md5(view, usedforsecurity=False).digest()
                checksum = None
                if algorithm is not None:
                    hasher = new_hasher(algorithm)
                    hasher.update(view)
                    checksum = hasher.b64digest()
            return md5, checksum

        try:
            if previous is not None:
                await previous
            return await asyncio.to_thread(work)
        finally:
            if not mine.done():
                mine.set_result(None)

    # -- download ---------------------------------------------------------------

    async def _download(self, stream: ObjectStream, sink: FileSink) -> None:
        async with AsyncPipe(budget=self.budget) as pipe:

            async def produce() -> None:
                try:
                    while chunk := await stream.read():
                        await pipe.write(chunk)
                except BaseException as exc:
                    pipe.abort(exc)
                    raise
                pipe.close()

            async def consume() -> None:
                try:
                    async for chunk in pipe:
                        await self.hashes.aupdate(chunk)
                        await sink.write(chunk)
                        self.options.progress.transfer_advanced(self.src, self.dst, len(chunk))
                except BaseException as exc:
                    pipe.abort(exc)
                    raise

            async with asyncio.TaskGroup() as tg:
                tg.create_task(produce())
                tg.create_task(consume())
        self._check_length(pipe.bytes_read, stream.size)

    def _check_download_etag(self, stream: ObjectStream) -> None:
        self.etag = stream.etag
        md5 = self.hashes.hexdigests().get("md5")
        if md5 is not None and "-" not in stream.etag:  # a multipart ETag is no MD5 of the bytes
            self._check_etag(stream.response, md5)

    # -- checks -----------------------------------------------------------------

    def _check_length(self, got: int, size: int, expected: int | None = None) -> None:
        want = size if expected is None else expected
        if got != want:
            raise TransferError(self.src, self.dst, f"the source ended after {got} of {size} bytes")

    async def _check_eof(self, source: _PartSource) -> None:
        probe = bytearray(1)
        if await source.readinto(memoryview(probe)):
            raise TransferError(
                self.src, self.dst, f"the source grew beyond its size of {self.size} bytes"
            )

    def _check_etag(
        self, response: Mapping[str, Any], expected_md5_hex: str, *, what: str = "ETag"
    ) -> None:
        """Compare an ETag with the MD5 we computed, where the ETag is MD5-based.

        SSE-KMS and SSE-C objects have ETags that look MD5-based but are not, so
        those are skipped, as are ETags of another form (some S3-compatible
        servers): a good copy must never fail on them.
        """
        etag = str(response["ETag"])
        if response.get("ServerSideEncryption", "").startswith("aws:kms") or response.get(
            "SSECustomerAlgorithm"
        ):
            return
        if etag_is_md5_based(etag) and normalize_etag(etag) != expected_md5_hex:
            raise ChecksumMismatchError(
                self.src, self.dst, what, expected_md5_hex, normalize_etag(etag)
            )

    def _check_s3_checksum(self, response: Mapping[str, Any], expected: str) -> None:
        algorithm = self.options.checksum_algorithm
        assert algorithm is not None
        reported = response.get(f"Checksum{s3_algorithm(algorithm)}")
        if reported is not None and str(reported) != expected:
            raise ChecksumMismatchError(self.src, self.dst, algorithm, expected, str(reported))


class _Part:
    """One part's bytes, in the BytesIO the HTTP client streams the request body from.

    aiohttp sends a BytesIO in 64 KiB pieces with flow control (a raw bytes body
    would be copied into the socket buffer whole), and botocore rewinds it to
    resend the part on a retry.  The buffer is sized once and filled in place
    through ``getbuffer()``, so the part exists in memory exactly once.
    """

    __slots__ = ("body", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.body = io.BytesIO()
        if size:
            self.body.seek(size - 1)
            self.body.write(b"\0")
            self.body.seek(0)

    async def fill(self, source: _PartSource) -> int:
        """Read the source into the part; return the bytes read (fewer only at EOF)."""
        with self.body.getbuffer() as view:
            return await source.readinto(view)
