"""AsyncPipe: a bounded byte pipe between asyncio coroutines."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

from ._budget import ByteBudget
from ._errors import PipeAbortedError, PipeClosedError

__all__ = ["AsyncPipe", "PipeStatistics"]


class _Signal(enum.Enum):
    EOF = enum.auto()
    ABORT = enum.auto()


_EOF: Final = _Signal.EOF
_ABORT: Final = _Signal.ABORT


class _State(enum.Enum):
    OPEN = enum.auto()
    CLOSED = enum.auto()
    ABORTED = enum.auto()


@dataclass(frozen=True, slots=True, kw_only=True)
class PipeStatistics:
    """A snapshot of an :class:`AsyncPipe`."""

    limit: int
    buffered: int
    peak_buffered: int
    bytes_written: int
    bytes_read: int
    closed: bool
    aborted: bool


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
        "_blocked_writers",
        "_budgets",
        "_buffered",
        "_bytes_read",
        "_bytes_written",
        "_cause",
        "_leftover",
        "_limit",
        "_max_chunk",
        "_peak_buffered",
        "_queue",
        "_sole_budget",
        "_state",
    )

    def __init__(self, limit: int | None = None, *, budget: ByteBudget | None = None) -> None:
        """Create a pipe holding at most ``limit`` bytes, or sharing ``budget``.

        Raises:
            ValueError: neither ``limit`` nor ``budget`` is given, or ``limit`` is
                not positive.
        """
        if budget is None:
            if limit is None:
                raise ValueError("AsyncPipe needs a limit (bytes) or a shared budget")
            self._budgets: tuple[ByteBudget, ...] = (ByteBudget(limit),)
        elif limit is None:
            self._budgets = (budget,)
        else:
            self._budgets = (ByteBudget(limit), budget)
        # The per-chunk hot paths are inlined for the common single-budget case.
        self._sole_budget = self._budgets[0] if len(self._budgets) == 1 else None
        self._limit = limit if limit is not None else self._budgets[0].limit
        self._max_chunk = min(b.limit for b in self._budgets)
        self._queue: asyncio.Queue[bytes | _Signal] = asyncio.Queue()
        self._state = _State.OPEN
        self._cause: BaseException | None = None
        self._leftover: memoryview | None = None
        self._blocked_writers: set[asyncio.Future[None]] = set()
        self._buffered = 0
        self._peak_buffered = 0
        self._bytes_written = 0
        self._bytes_read = 0

    def __repr__(self) -> str:
        return (
            f"<AsyncPipe {self._state.name.lower()} limit={self._limit} "
            f"buffered={self._buffered} written={self._bytes_written} read={self._bytes_read}>"
        )

    # -- introspection -------------------------------------------------------

    @property
    def limit(self) -> int:
        """The most bytes this pipe buffers (the shared budget's limit if none was given)."""
        return self._limit

    @property
    def budget(self) -> ByteBudget:
        """The budget the pipe's bytes are counted in (the shared one, if given)."""
        return self._budgets[-1]

    @property
    def buffered(self) -> int:
        """Bytes written and not yet read."""
        return self._buffered

    @property
    def peak_buffered(self) -> int:
        """The most bytes ever buffered at once."""
        return self._peak_buffered

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
        return self._state is not _State.OPEN

    @property
    def aborted(self) -> bool:
        """True once the pipe was aborted."""
        return self._state is _State.ABORTED

    @property
    def exception(self) -> BaseException | None:
        """The exception the pipe was aborted with, or None."""
        return self._cause

    def statistics(self) -> PipeStatistics:
        """Return a snapshot of the pipe's counters."""
        return PipeStatistics(
            limit=self._limit,
            buffered=self._buffered,
            peak_buffered=self._peak_buffered,
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
            PipeClosedError: the pipe was closed.
            PipeAbortedError: the pipe was aborted, before or during the wait.
        """
        if self._state is not _State.OPEN:
            raise self._write_error()
        chunk = data if type(data) is bytes else bytes(data)
        size = len(chunk)
        if size == 0:
            return
        if size <= self._max_chunk:
            budget = self._sole_budget
            if budget is not None and not budget._waiters:
                used = budget._used + size
                if used <= budget._limit:
                    # Fast path, the same steps as _put: the bytes fit at once.
                    budget._used = used
                    if used > budget._peak:
                        budget._peak = used
                    buffered = self._buffered + size
                    self._buffered = buffered
                    if buffered > self._peak_buffered:
                        self._peak_buffered = buffered
                    self._bytes_written += size
                    self._queue.put_nowait(chunk)
                    return
            await self._put(chunk)
            return
        # Pieces of half the limit let the reader drain one while the next is written.
        step = max(1, self._max_chunk // 2)
        view = memoryview(chunk)
        for start in range(0, size, step):
            await self._put(bytes(view[start : start + step]))

    def close(self) -> None:
        """Mark the end of the data.  Readers drain what is buffered, then see EOF.

        Idempotent; does nothing after :meth:`abort`.
        """
        if self._state is _State.OPEN:
            self._state = _State.CLOSED
            self._queue.put_nowait(_EOF)

    def abort(self, exc: BaseException | None = None) -> None:
        """Give up, from either side.

        Buffered data is dropped and its bytes go back to the budget at once.
        Every blocked and later :meth:`write` or read raises
        :class:`PipeAbortedError` whose ``__cause__`` is ``exc``.  Only the first
        abort counts; later ones do nothing.
        """
        if self._state is _State.ABORTED:
            return
        self._state = _State.ABORTED
        self._cause = exc
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if type(item) is bytes:
                dropped += len(item)
        if self._leftover is not None:
            dropped += len(self._leftover)
            self._leftover = None
        if dropped:
            self._give_back(dropped)
        self._queue.put_nowait(_ABORT)
        for waiter in self._blocked_writers:
            if not waiter.done():
                waiter.set_exception(self._aborted_error())

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
                self._buffered -= size
                sole = self._sole_budget
                if sole is not None:
                    sole._used -= size
                    if sole._waiters:
                        sole._wake()
                else:
                    for budget in self._budgets:
                        budget._release(size)
                return item
            queue.put_nowait(item)  # signals stay for any other reader
            if item is _ABORT:
                raise self._aborted_error()
            raise StopAsyncIteration
        chunk = await self._next()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

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
        if self._buffered:
            # Unread data left behind: drop it, and make any later read fail
            # rather than mistake the truncated stream for a complete one.
            self.abort()

    # -- internals -----------------------------------------------------------

    async def _put(self, chunk: bytes) -> None:
        size = len(chunk)
        taken: list[ByteBudget] = []
        try:
            for budget in self._budgets:
                # Fast path inlined: nobody queued and the bytes fit.
                if not budget._waiters and budget._used + size <= budget._limit:
                    budget._take(size)
                else:
                    await self._wait_for(budget, size)
                taken.append(budget)
        except BaseException:
            for budget in taken:
                budget.release(size)
            raise
        if self._state is not _State.OPEN:
            # Closed or aborted while we waited for room.
            for budget in taken:
                budget.release(size)
            raise self._write_error()
        self._buffered += size
        if self._buffered > self._peak_buffered:
            self._peak_buffered = self._buffered
        self._bytes_written += size
        self._queue.put_nowait(chunk)

    async def _wait_for(self, budget: ByteBudget, size: int) -> None:
        waiter = budget._enqueue(size)
        self._blocked_writers.add(waiter)
        try:
            await waiter
        except BaseException:
            budget._cancel_waiter(waiter, size)
            raise
        finally:
            self._blocked_writers.discard(waiter)

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
        self._give_back(size)

    def _give_back(self, size: int) -> None:
        self._buffered -= size
        for budget in self._budgets:
            budget._release(size)

    def _aborted_error(self) -> PipeAbortedError:
        err = PipeAbortedError()
        err.__cause__ = self._cause
        return err

    def _write_error(self) -> PipeAbortedError | PipeClosedError:
        if self._state is _State.ABORTED:
            return self._aborted_error()
        return PipeClosedError()
