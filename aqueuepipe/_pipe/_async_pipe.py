"""AsyncPipe: a bounded byte pipe between asyncio coroutines.

Its two ends are also available as anyio byte streams (:class:`PipeReceiveStream`,
:class:`PipeSendStream`), for code written against anyio running on asyncio.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import anyio
import anyio.abc

from .._budget import ByteBudget
from .._errors import PipeAbortedError, PipeClosedError
from ._items import (
    _ABORT,
    _ABORTED,
    _CLOSED,
    _EOF,
    _OPEN,
    PipeStatistics,
    _copy_of_buffer,
    _drop_chunks,
    _Signal,
)
from ._room import _Room


class AsyncPipe:
    """A pipe of bytes from a producer coroutine to a consumer coroutine.

    Chunks travel through an :class:`asyncio.Queue`; the bytes in between are
    counted by a :class:`~aqueuepipe.ByteBudget`, so :attr:`buffered` never
    exceeds :attr:`limit`.  Pass ``budget=`` to share one budget among many
    pipes (and part buffers): then the total held by all of them stays within
    ``budget.limit``.  With both ``limit`` and ``budget``, the pipe obeys both.

    Use it as an async context manager: leaving the block normally closes the
    pipe, leaving it with an exception aborts the pipe with that exception, and
    either way every byte is back in the budget afterwards::

        async with AsyncPipe(limit=30_000_000) as pipe:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(producer(pipe))  # await pipe.write(...); pipe.close()
                tg.create_task(consumer(pipe))  # async for chunk in pipe: ...

    The pipe is meant for one writer task and one reader task at a time; it stays
    consistent with more, but their chunks interleave in no defined order.
    """

    __slots__ = (
        "_bytes_dropped",
        "_bytes_read",
        "_bytes_written",
        "_cause",
        "_fast_limit",
        "_leftover",
        "_max_chunk",
        "_own",
        "_queue",
        "_room",
        "_shared",
        "_state",
    )

    def __init__(self, limit: int | None = None, *, budget: ByteBudget | None = None) -> None:
        """Create a pipe holding at most ``limit`` bytes, or sharing ``budget``.

        Raises:
            ValueError: neither ``limit`` nor ``budget`` is given, or ``limit`` is
                not positive.
        """
        if limit is None:
            if budget is None:
                raise ValueError("AsyncPipe needs a limit (bytes) or a shared budget")
            limit = budget.limit
        room = self._room = _Room(limit, budget)
        # The budgets at hand, for the fast paths.
        self._own = room.own
        self._shared = budget
        self._max_chunk = room.max_chunk
        # The largest chunk write() may queue on its fast path: while the pipe is
        # open and has its own budget alone.  0 sends every write the checked way.
        self._fast_limit = self._max_chunk if budget is None else 0
        self._queue: asyncio.Queue[bytes | _Signal] = asyncio.Queue()
        self._state = _OPEN
        self._cause: BaseException | None = None
        self._leftover: memoryview | None = None
        self._bytes_written = 0
        self._bytes_read = 0
        self._bytes_dropped = 0

    def __repr__(self) -> str:
        return (
            f"<AsyncPipe {self._state.name.lower()} limit={self.limit} "
            f"buffered={self.buffered} written={self._bytes_written} read={self._bytes_read}>"
        )

    # -- introspection -------------------------------------------------------

    @property
    def limit(self) -> int:
        """The most bytes this pipe buffers (the shared budget's limit if none was given)."""
        return self._own.limit

    @property
    def budget(self) -> ByteBudget:
        """The budget the pipe's bytes are counted in (the shared one, if given)."""
        return self._own if self._shared is None else self._shared

    @property
    def buffered(self) -> int:
        """Bytes written and not yet read."""
        return self._bytes_written - self._bytes_read - self._bytes_dropped

    @property
    def peak_buffered(self) -> int:
        """The most bytes the pipe ever held at once.

        That is the most it ever buffered, or a little more where a waiting write
        held its bytes in the pipe's own limit before they were queued (granted
        room while the reader went on reading, or waiting for a shared budget).
        It never exceeds :attr:`limit`.
        """
        return self._own.peak

    @property
    def bytes_written(self) -> int:
        """Bytes accepted by :meth:`write` so far."""
        return self._bytes_written

    @property
    def bytes_read(self) -> int:
        """Bytes handed to readers so far."""
        return self._bytes_read

    @property
    def closed(self) -> bool:
        """True once the pipe was closed or aborted: no more writes are accepted."""
        return self._state is not _OPEN

    @property
    def aborted(self) -> bool:
        """True once the pipe was aborted."""
        return self._state is _ABORTED

    @property
    def exception(self) -> BaseException | None:
        """The exception the pipe was aborted with, or None."""
        return self._cause

    def statistics(self) -> PipeStatistics:
        """Return a snapshot of the pipe's counters."""
        return PipeStatistics(
            limit=self.limit,
            buffered=self.buffered,
            peak_buffered=self.peak_buffered,
            bytes_written=self._bytes_written,
            bytes_read=self._bytes_read,
            closed=self.closed,
            aborted=self.aborted,
        )

    # -- writer side ---------------------------------------------------------

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for the reader, waiting while the pipe is full.

        ``bytes`` are passed on without copying; mutable buffers are copied, so
        changing them after ``write`` returns does not change what is read.  A
        write larger than the limit is split so it still flows.  Empty writes do
        nothing.

        Cancellation is atomic per chunk: a cancelled write has queued either the
        chunk or nothing of it (for a split write, a prefix of whole pieces).

        Raises:
            TypeError: ``data`` is not a bytes-like object.
            PipeClosedError: the pipe was closed, before or during the wait.
            PipeAbortedError: the pipe was aborted, before or during the wait.
        """
        chunk = data if type(data) is bytes else _copy_of_buffer(data)
        size = len(chunk)
        # Fast path: open, the pipe's own budget alone, and the bytes fit at once.
        if 0 < size <= self._fast_limit and self._own.try_acquire(size):
            self._bytes_written += size
            self._queue.put_nowait(chunk)
            return
        if self._state is not _OPEN:
            raise self._write_error()
        if size == 0:
            return
        if size <= self._max_chunk:
            await self._put(chunk)
            return
        # Pieces of half the limit let the reader drain one while the next is written.
        step = max(1, self._max_chunk // 2)
        view = memoryview(chunk)
        for start in range(0, size, step):
            await self._put(bytes(view[start : start + step]))

    def close(self) -> None:
        """Mark the end of the data.  Readers drain what is buffered, then see EOF.

        A write waiting for room fails with :class:`PipeClosedError`.  Idempotent;
        does nothing after :meth:`abort`.
        """
        if self._state is _OPEN:
            self._state = _CLOSED
            self._fast_limit = 0
            self._room.interrupt()
            self._queue.put_nowait(_EOF)

    def abort(self, exc: BaseException | None = None) -> None:
        """Give up, from either side.

        Buffered data is dropped and its bytes go back to the budget at once.
        Every blocked and later :meth:`write` or read raises
        :class:`PipeAbortedError` whose ``__cause__`` is ``exc``.  Only the first
        abort counts; later ones do nothing.
        """
        if self._state is _ABORTED:
            return
        self._state = _ABORTED
        self._fast_limit = 0
        self._cause = exc
        # Interrupt blocked writers first, so that the bytes given back below go
        # to other holders of a shared budget, not to this pipe's dead writes.
        self._room.interrupt()
        dropped = _drop_chunks(self._queue)
        if self._leftover is not None:
            dropped += len(self._leftover)
            self._leftover = None
        if dropped:
            self._bytes_dropped += dropped
            self._room.give_back(dropped)
        self._queue.put_nowait(_ABORT)

    # -- reader side ---------------------------------------------------------

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all bytes until EOF if ``n`` is -1).

        Returns ``b""`` only at EOF (or for ``n == 0``).  Cancellation is atomic:
        a cancelled read consumed nothing.

        Raises:
            ValueError: ``n`` is below -1.
            PipeAbortedError: the pipe was aborted.
        """
        if n < -1:
            raise ValueError(f"read size must be -1 or >= 0, got {n}")
        if n == 0:
            return b""
        if n == -1:
            parts = []
            while (chunk := await self._next()) is not None:
                parts.append(chunk)
            return b"".join(parts)
        chunk = await self._next(n)
        return b"" if chunk is None else chunk

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises:
            ValueError: ``n`` is negative.
            asyncio.IncompleteReadError: EOF came first; ``partial`` holds what
                was read.
            PipeAbortedError: the pipe was aborted.
        """
        if n < 0:
            raise ValueError(f"readexactly size must be >= 0, got {n}")
        parts: list[bytes] = []
        remaining = n
        while remaining:
            chunk = await self._next(remaining)
            if chunk is None:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            remaining -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """Return the next chunk as it was written (without copying).

        Raises:
            StopAsyncIteration: at EOF.
            PipeAbortedError: the pipe was aborted.
        """
        if self._leftover is None:
            # Fast path for whole chunks, the same steps as _next.
            queue = self._queue
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                item = await queue.get()
            if type(item) is bytes:
                size = len(item)
                self._bytes_read += size
                self._own.release(size)
                shared = self._shared
                if shared is not None:
                    shared.release(size)
                return item
            queue.put_nowait(item)  # signals stay for any other reader
            if item is _ABORT:
                raise self._aborted_error()
            raise StopAsyncIteration
        chunk = await self._next()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    # -- anyio streams -------------------------------------------------------

    def receive_stream(self) -> PipeReceiveStream:
        """The reading side as an anyio :class:`~anyio.abc.ByteReceiveStream`.

        For anyio code on the asyncio backend, e.g. ``BufferedByteReceiveStream``
        or ``TextReceiveStream``; see :class:`PipeReceiveStream`.
        """
        return PipeReceiveStream(self)

    def send_stream(self) -> PipeSendStream:
        """The writing side as an anyio :class:`~anyio.abc.ByteSendStream`.

        See :class:`PipeSendStream`.
        """
        return PipeSendStream(self)

    # -- context manager -----------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.abort(exc)
            return
        self.close()
        if self.buffered:
            # Unread data left behind: drop it, and make any later read fail
            # rather than mistake the truncated stream for a complete one.
            self.abort()

    # -- internals -----------------------------------------------------------

    async def _put(self, chunk: bytes) -> None:
        """Queue ``chunk`` (at most ``_max_chunk`` bytes) once every budget has room."""
        size = len(chunk)
        await self._room.take(size, self._write_error)
        if self._state is not _OPEN:
            # Closed or aborted between the checks (close() and abort() wake the
            # writers they find waiting, so this only guards the invariant).
            self._room.give_back(size)
            raise self._write_error()
        self._bytes_written += size
        self._queue.put_nowait(chunk)

    async def _next(self, n: int = -1) -> bytes | None:
        """Take the next chunk (at most ``n`` bytes of it); None at EOF."""
        leftover = self._leftover
        if leftover is not None:
            if n == -1 or n >= len(leftover):
                self._leftover = None
                chunk = leftover.tobytes()
            else:
                self._leftover = leftover[n:]
                chunk = leftover[:n].tobytes()
            self._consumed(len(chunk))
            return chunk
        queue = self._queue
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            item = await queue.get()
        if type(item) is not bytes:
            # Signals stay in the queue for any other reader.
            queue.put_nowait(item)
            if item is _ABORT:
                raise self._aborted_error()
            return None
        if n != -1 and len(item) > n:
            view = memoryview(item)
            self._leftover = view[n:]
            item = view[:n].tobytes()
        self._consumed(len(item))
        return item

    def _consumed(self, size: int) -> None:
        self._bytes_read += size
        self._room.give_back(size)

    def _aborted_error(self) -> PipeAbortedError:
        err = PipeAbortedError()
        err.__cause__ = self._cause
        return err

    def _write_error(self) -> PipeAbortedError | PipeClosedError:
        if self._state is _ABORTED:
            return self._aborted_error()
        return PipeClosedError()


# -- anyio adapters ----------------------------------------------------------------


class PipeReceiveStream(anyio.abc.ByteReceiveStream):
    """The reading side of an :class:`AsyncPipe` as an anyio byte stream.

    Runs on anyio's asyncio backend only.  Errors are anyio's: the end of the data
    is :exc:`anyio.EndOfStream`, an aborted pipe :exc:`anyio.BrokenResourceError`
    whose ``__cause__`` is the exception the pipe was aborted with, and receiving
    after :meth:`aclose` :exc:`anyio.ClosedResourceError`.
    """

    def __init__(self, pipe: AsyncPipe) -> None:
        self._pipe = pipe
        self._closed = False

    @property
    def pipe(self) -> AsyncPipe:
        """The pipe read from."""
        return self._pipe

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Return up to ``max_bytes`` bytes: a chunk as written, or part of one.

        Cancellation is atomic, as for :meth:`AsyncPipe.read`.

        Raises:
            ValueError: ``max_bytes`` is below 1.
            anyio.EndOfStream: the writer closed the pipe and everything was read.
            anyio.BrokenResourceError: the pipe was aborted.
            anyio.ClosedResourceError: this stream was closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        try:
            data = await self._pipe.read(max_bytes)
        except PipeAbortedError as exc:
            raise anyio.BrokenResourceError("the pipe was aborted") from exc.__cause__
        if not data:
            raise anyio.EndOfStream
        return data

    async def aclose(self) -> None:
        """Stop reading.  Idempotent; never blocks.

        Unless the pipe was closed and read to its end, this aborts it (without
        a cause): the writer's next or blocked write fails instead of waiting for
        a reader that is gone, and buffered bytes go back to the budget.
        """
        if self._closed:
            return
        self._closed = True
        pipe = self._pipe
        if not pipe.closed or pipe.buffered:
            pipe.abort()


class PipeSendStream(anyio.abc.ByteSendStream):
    """The writing side of an :class:`AsyncPipe` as an anyio byte stream.

    Runs on anyio's asyncio backend only.  :meth:`aclose` closes the pipe (the
    reader sees the end of the data).  An aborted pipe raises
    :exc:`anyio.BrokenResourceError` whose ``__cause__`` is the exception the pipe
    was aborted with; a closed one :exc:`anyio.ClosedResourceError`.
    """

    def __init__(self, pipe: AsyncPipe) -> None:
        self._pipe = pipe

    @property
    def pipe(self) -> AsyncPipe:
        """The pipe written to."""
        return self._pipe

    async def send(self, item: bytes | bytearray | memoryview) -> None:
        """Write ``item``, waiting while the pipe is full (see :meth:`AsyncPipe.write`).

        Raises:
            TypeError: ``item`` is not a bytes-like object.
            anyio.BrokenResourceError: the pipe was aborted.
            anyio.ClosedResourceError: the pipe was closed (by :meth:`aclose` or
                :meth:`AsyncPipe.close`).
        """
        try:
            await self._pipe.write(item)
        except PipeAbortedError as exc:
            raise anyio.BrokenResourceError("the pipe was aborted") from exc.__cause__
        except PipeClosedError:
            raise anyio.ClosedResourceError from None

    async def aclose(self) -> None:
        """Close the pipe: the end of the data.  Idempotent; never blocks."""
        self._pipe.close()
