"""Objects as async streams: :func:`open_reader` and :func:`open_writer`.

Both run a :func:`~aqueuepipe.copy` between the object and an
:class:`~aqueuepipe.AsyncPipe` in a task of their own, so everything a copy does
holds here too: the memory limit, retries and resumed bodies, verification, and
an aborted upload on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Self, Unpack

from ._budget import ByteBudget
from ._cancel import outlast
from ._errors import PipeAbortedError
from ._options import CopyOptions, StreamOptions, TransferResult, check_names
from ._pipe import AsyncPipe
from .s3 import DEFAULT_PART_SIZE
from .s3._objects import CHUNK_READ_SIZE, read_ahead
from .transfer import copy

__all__ = ["ObjectReader", "ObjectWriter", "open_reader", "open_writer"]

#: What a reader buffers ahead of its consumer when no limit is given: one part.
DEFAULT_READ_AHEAD = DEFAULT_PART_SIZE
#: What a writer's pipe buffers before the copy takes it into a part.
WRITE_BUFFER = 256 * 1024


def _unwrap(exc: PipeAbortedError) -> BaseException:
    """The copy's own error behind a pipe it aborted (a bad option, a missing key,
    a stall...), else ``exc`` (the pipe was aborted without one, or by a
    cancellation, which is not this task's to raise)."""
    cause = exc.__cause__
    return cause if isinstance(cause, Exception) else exc


def _share(limit: int | None, budget: ByteBudget | None) -> int:
    """The most a reader's pipe holds: ``limit``, else one part, but never more than
    half of a shared budget, so a reader that stops reading cannot hold it all."""
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive number of bytes, got {limit!r}")
        if budget is not None and limit > budget.limit:
            raise ValueError(
                f"limit (the reader's share, {limit} bytes) cannot exceed the shared "
                f"budget's limit ({budget.limit} bytes)"
            )
        return limit
    if budget is None:
        return DEFAULT_READ_AHEAD
    return max(1, min(DEFAULT_READ_AHEAD, budget.limit // 2))


class ObjectReader:
    """The body of an object being read: ``read(n)``, ``readexactly(n)``, ``async for``.

    At the end of the object the bytes read are verified against the object's
    evidence; if they were wrong, the read that would return the final ``b""``
    raises :class:`~aqueuepipe.ChecksumMismatchError` instead.
    """

    __slots__ = ("_pipe",)

    def __init__(self, pipe: AsyncPipe) -> None:
        self._pipe = pipe

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all until the end with -1); ``b""`` only at the end.

        Raises:
            TransferError: the copy failed (its subclasses say why).
        """
        try:
            return await self._pipe.read(n)
        except PipeAbortedError as exc:
            raise _unwrap(exc) from None

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes.

        Raises:
            asyncio.IncompleteReadError: the object ended first.
            TransferError: the copy failed.
        """
        try:
            return await self._pipe.readexactly(n)
        except PipeAbortedError as exc:
            raise _unwrap(exc) from None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._pipe)
        except PipeAbortedError as exc:
            raise _unwrap(exc) from None


class ObjectWriter:
    """The body of an object being written: ``await write(data)``.

    ``result`` is the copy's :class:`~aqueuepipe.TransferResult` once the
    ``async with`` block has completed the upload.
    """

    __slots__ = ("_pipe", "_task", "result")

    def __init__(self, pipe: AsyncPipe, task: asyncio.Task[TransferResult]) -> None:
        self._pipe = pipe
        self._task = task
        self.result: TransferResult | None = None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; waits while the upload holds its memory limit.

        Raises:
            TypeError: ``data`` is not bytes-like.
            TransferError: the upload failed (its subclasses say why).
        """
        try:
            await self._pipe.write(data)
        except PipeAbortedError as exc:
            if self._task.done() and not self._task.cancelled():
                failure = self._task.exception()
                if failure is not None:
                    raise failure from None
            raise _unwrap(exc) from None


def _start(
    coro: Coroutine[object, object, TransferResult], pipe: AsyncPipe
) -> asyncio.Task[TransferResult]:
    """Run the copy (its arguments were checked when ``coro`` was made); if it fails
    before it took the pipe in hand (a missing bucket), abort the pipe with its
    error so the other side is not left waiting."""
    task: asyncio.Task[TransferResult] = asyncio.ensure_future(coro)

    def ended(task: asyncio.Task[TransferResult]) -> None:
        if task.cancelled() or pipe.closed or pipe.aborted:
            return
        failure = task.exception()
        if failure is not None:
            pipe.abort(failure)

    task.add_done_callback(ended)
    return task


@contextlib.asynccontextmanager
async def open_reader(
    url: str,
    *,
    limit: int | None = None,
    budget: ByteBudget | None = None,
    **options: Unpack[StreamOptions],
) -> AsyncIterator[ObjectReader]:
    """Read the object ``url`` as a stream, holding at most ``limit`` bytes ahead::

        async with open_reader("s3://bucket/key", limit=8_000_000) as body:
            async for chunk in body:
                ...

    The download runs while the block reads; broken bodies are resumed, and the
    bytes are verified at the end.  Leaving the block early cancels the download
    and releases its connection.  The other options are :func:`~aqueuepipe.copy`'s.

    ``budget`` (a shared :class:`ByteBudget`) counts the bytes read ahead with
    those of every other holder, and ``limit`` is then this reader's share of it:
    a consumer that stops reading holds at most its share, and the others sharing
    the budget go on.  The reader takes its share from the budget before the
    download starts (with about 0.7 MiB more for what the HTTP client buffers of
    the body) and holds it until the block ends, so it never waits for the budget
    while holding part of it.  The share is one part (8 MiB) by default, or half
    the budget if that is less; a service with many clients should give each a
    smaller one, since the shares held at once bound how many read at once.
    Without ``budget``, ``limit`` (8 MiB by default) bounds the reader alone.

    Raises:
        ValueError: a bad URL or option, at once (before the block runs).
        TransferError: from the body's reads, when the download fails; the copy's
            own error (:class:`~aqueuepipe.NoSuchKeyError`, a stall...).
    """
    check_names("open_reader", options, StreamOptions)
    share = _share(limit, budget)
    pipe = AsyncPipe(share)
    held = None
    if budget is not None:
        # The reader's whole share, and what the HTTP client buffers of the body,
        # taken at once: a reader never waits for the shared budget while it holds
        # part of it, so readers that stop reading cannot freeze the others.
        held = await budget.lease(min(budget.limit, share + read_ahead(CHUNK_READ_SIZE)))
    try:
        task = _start(copy(url, pipe, **options), pipe)
        try:
            yield ObjectReader(pipe)
        finally:
            if not task.done():
                task.cancel()
            await outlast(task)
            if not pipe.closed:
                pipe.abort()
    finally:
        if held is not None:
            held.close()


@contextlib.asynccontextmanager
async def open_writer(url: str, **options: Unpack[CopyOptions]) -> AsyncIterator[ObjectWriter]:
    """Write the object ``url`` from a stream of unknown length::

        async with open_writer("s3://bucket/key", limit=30_000_000) as body:
            await body.write(data)
        print(body.result)

    The first ``part_size`` bytes decide between one PutObject and a multipart
    upload, whose parts go up while the block still writes.  A normal exit
    completes the upload and verifies it; an exception (or a cancellation) in the
    block aborts it: no object and no open upload are left.  The options are
    :func:`~aqueuepipe.copy`'s; the writer buffers at most 256 KiB beyond ``limit``.

    Raises:
        ValueError: a bad URL or option, at once.
        TransferError: from ``write`` or at the end of the block, when the upload fails.
    """
    check_names("open_writer", options, CopyOptions)
    pipe = AsyncPipe(WRITE_BUFFER)
    task = _start(copy(pipe, url, **options), pipe)
    writer = ObjectWriter(pipe, task)
    try:
        yield writer
    except BaseException as exc:
        pipe.abort(exc)
        await outlast(task)
        raise
    pipe.close()
    writer.result = await task
