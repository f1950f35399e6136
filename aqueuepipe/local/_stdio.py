"""The process's standard input and output as the ends of a copy (``cp -`` and
``cp ... -``): blocking reads and writes in a daemon thread of their own, never the
loop's executor, since a read of a terminal or an idle pipe may never return."""

from __future__ import annotations

import asyncio
import os
import queue
import select
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

_T = TypeVar("_T")


#: Bytes asked of standard input at a time when read(n) gets no size.
STDIO_READ_SIZE: Final = 1 << 20

_Job = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


class _DescriptorThread:
    """Runs blocking calls on one file descriptor, one at a time, in a daemon thread.

    Not the loop's executor: a read of a terminal or an idle pipe may never
    return, and ``asyncio.run`` (and the interpreter) wait for every executor
    thread before the process can exit.  A daemon thread is left behind instead.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` in the thread and return its result (or raise its error).

        Cancellation: the call cannot be interrupted; it runs to its end in the
        thread, after ``CancelledError`` has propagated, and its outcome is
        dropped.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put((call, future, loop))
        return await future

    def close(self) -> None:
        """Let the thread end once the call it runs (if any) returns.  Idempotent."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            call, future, loop = job
            try:
                outcome: tuple[Any, BaseException | None] = (call(), None)
            except BaseException as exc:
                outcome = (None, exc)
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody waits for it any more
                return


def _settle(future: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if future.done():  # the caller was cancelled
        return
    result, error = outcome
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class StandardInput:
    """This process's standard input as a stream: ``async read(n)``, ``b""`` at its end.

    Whatever it is (a pipe, a file, a terminal, a socket), it is read with
    blocking reads in a thread of its own, one read at a time; nothing is read
    ahead, so the bytes it holds are those of the read in progress.  A read
    cancelled while the thread waits for input loses what that read returns
    later: cancel only to abandon the stream.
    """

    def __init__(self, fd: int = 0) -> None:
        # The descriptor, not sys.stdin: that may be None (closed at startup) or
        # replaced, and its buffer must not be read around.
        self._fd = fd
        self._thread = _DescriptorThread("aqueuepipe-stdin")

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: up to 1 MiB) as soon as some are there.

        Raises:
            OSError: reading failed.
        """
        size = STDIO_READ_SIZE if n < 0 else n
        fd = self._fd
        return await self._thread.run(lambda: os.read(fd, size))

    def close(self) -> None:
        """Stop the reading thread (the descriptor stays open).  Idempotent."""
        self._thread.close()


class StandardOutput:
    """This process's standard output as a stream: ``async write(data)``.

    Written with unbuffered blocking writes in a thread of its own, so a slow
    reader holds up the copy (and its memory) rather than the event loop.
    Nothing is buffered here: when :meth:`write` returns, the bytes are in the
    pipe or file.

    Python ignores SIGPIPE: when the reader has gone (``| head -c 10``),
    :meth:`write` raises :class:`BrokenPipeError`.
    """

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._thread = _DescriptorThread("aqueuepipe-stdout")

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``.

        Raises:
            BrokenPipeError: the reading end was closed.
            OSError: writing failed.

        Cancellation: the write runs to its end in the thread; only waiting for
        it stops.
        """
        chunk = data if isinstance(data, bytes) else bytes(data)
        fd = self._fd
        await self._thread.run(lambda: _write_all(fd, chunk))

    def close(self) -> None:
        """Stop the writing thread (the descriptor stays open).  Idempotent."""
        self._thread.close()


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (in the stream's thread)."""
    view = memoryview(data)
    while len(view):
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            # Someone made the descriptor non-blocking: wait until it takes more.
            select.select([], [fd], [])
            continue
        view = view[written:]
