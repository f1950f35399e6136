"""Local files as a source and a sink of bytes.

:class:`FileSource` reads a local file in chunks.  :class:`FileSink` writes one
atomically: the bytes go to a temporary file beside the target, which
:meth:`FileSink.commit` renames into place.  :func:`safe_join` maps an S3 key to a
path under a download directory and refuses keys that would land outside it.
:class:`StandardInput` and :class:`StandardOutput` are the process's standard
streams as the ends of a copy (``async read(n)``, ``async write(data)``).
:class:`SpecialFile` is a FIFO or a character device named as an end of a copy,
read or written in place without ever blocking a thread (a FIFO whose other end
never comes must not outlive a cancellation).

Blocking file operations run in the event loop's default executor, through
aiofiles, on both sides.  A worker thread cannot be interrupted, so no operation
is ever abandoned: a cancelled coroutine first waits for the operation it started
(one local I/O call) and only then lets the cancellation propagate.  That way no
descriptor leaks, no file it creates is left behind, no caller's buffer is filled
after the call returned, and no file is closed under a write still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import errno
import functools
import os
import queue
import secrets
import select
import stat
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedIOBase, AsyncBufferedReader

from ._cancel import run_to_end, wait_despite_cancellation

__all__ = [
    "FileSink",
    "FileSource",
    "SpecialFile",
    "StandardInput",
    "StandardOutput",
    "safe_join",
    "special_file",
    "special_kind",
]

_T = TypeVar("_T")

_TEMP_SUFFIX: Final = ".aqueuepipe-part"

# ".<stem>.<16 hex digits>.aqueuepipe-part" must fit the usual 255-byte name limit.
_MAX_TEMP_STEM_BYTES: Final = 200
_TEMP_NAME_ATTEMPTS: Final = 16
_TEMP_MODE: Final = 0o600


# -- running file operations to their end ----------------------------------------------


async def _finish(
    operation: Awaitable[_T],
) -> tuple[asyncio.Future[_T], asyncio.CancelledError | None]:
    """Run ``operation`` to its end, even if the caller is cancelled meanwhile.

    Returns it done, with the cancellation that arrived while waiting (if any),
    for the caller to deal with the outcome before re-raising it.
    """
    running = asyncio.ensure_future(operation)
    return running, await wait_despite_cancellation(running)


def _succeeded(fut: asyncio.Future[Any]) -> bool:
    """Whether the done ``fut`` has a result; marks its exception as retrieved."""
    return not fut.cancelled() and fut.exception() is None


# -- source --------------------------------------------------------------------------


class FileSource:
    """Reads a local file in chunks.  An async context manager.

    Entering opens the file; then :attr:`size` is its size and :meth:`readinto`
    fills buffers with its bytes, in order.  Leaving closes the file, on every
    path.  One task at a time may read from a source, and a source can be entered
    only once::

        async with FileSource("data.bin") as source:
            buf = bytearray(8 * 1024 * 1024)
            while count := await source.readinto(buf):
                ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: AsyncBufferedReader | None = None
        self._size: int | None = None
        self._entered = False
        self._broken = False

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r})"

    @property
    def size(self) -> int:
        """Size in bytes of the opened file, from ``os.fstat`` when it was opened.

        Raises:
            RuntimeError: the source has not been entered yet.
        """
        if self._size is None:
            raise RuntimeError(f"{self!r} has no size before it is entered")
        return self._size

    async def __aenter__(self) -> Self:
        """Open the file and record its size.

        Raises:
            ValueError: the path is a directory, or not a regular file (a FIFO, a
                device, a socket), whose size would not say how much it holds.
            FileNotFoundError: the file does not exist.
            PermissionError: the file may not be read.
            OSError: any other failure to open it.
            RuntimeError: the source was entered before.

        Cancellation: the open is allowed to finish; if it succeeded the file is
        closed again before ``CancelledError`` propagates.
        """
        if self._entered:
            raise RuntimeError(f"{self!r} can be entered only once")
        self._entered = True
        sizes: list[int] = []

        def opener(path: str, flags: int) -> int:
            return _open_regular_file(path, flags, sizes)

        opening, cancelled = await _finish(aiofiles.open(str(self.path), "rb", opener=opener))
        if cancelled is not None:
            if _succeeded(opening):
                closing, _ = await _finish(opening.result().close())
                _succeeded(closing)
            raise cancelled
        self._file = opening.result()  # raises the open's error
        self._size = sizes[0]
        return self

    async def readinto(self, buf: bytearray | memoryview) -> int:
        """Fill ``buf`` from the file; return how many bytes were put in it.

        Reads until ``buf`` is full or the file ends, so a count below ``len(buf)``
        means end of file, and ``0`` means there was nothing left.  The bytes go
        straight from the file into ``buf``, with no intermediate copy.

        Raises:
            TypeError: ``buf`` is read-only or not contiguous.
            RuntimeError: the source is not open (not entered yet, or already left),
                or a failed or cancelled read could not be undone.
            OSError: reading failed; nothing is consumed, as for a cancellation.

        Cancellation is atomic for the file: a cancelled ``readinto`` waits until
        the worker thread has stopped writing into ``buf``, steps the file back
        over what this call read, and then raises ``CancelledError``; the next read
        starts where this one did.  What ``buf`` holds afterwards is unspecified.
        """
        file = self._require_open()
        with memoryview(buf) as view, view.cast("B") as target:
            if target.readonly:
                raise TypeError("readinto() needs a writable buffer")
            filled = 0
            while filled < len(target):
                with target[filled:] as rest:
                    reading, cancelled = await _finish(file.readinto(rest))
                if cancelled is not None or not _succeeded(reading):
                    if _succeeded(reading):
                        filled += reading.result() or 0
                    await self._rewind(file, filled)
                    if cancelled is not None:
                        raise cancelled
                    reading.result()  # raises the read's error
                count = reading.result()
                if not count:
                    break
                filled += count
            return filled

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the file.

        Raises:
            OSError: closing failed, reported only when leaving without an exception
                (an exception already on its way out is never replaced).

        Cancellation: the close runs to its end before ``CancelledError``
        propagates, so the descriptor is never leaked.
        """
        file, self._file = self._file, None
        if file is None:
            return
        closing, cancelled = await _finish(file.close())
        if cancelled is not None:
            _succeeded(closing)
            raise cancelled
        if exc is None:
            closing.result()
        else:
            _succeeded(closing)

    def _require_open(self) -> AsyncBufferedReader:
        if self._broken:
            raise RuntimeError(f"{self!r} cannot be read: an earlier read could not be undone")
        if self._file is None:
            raise RuntimeError(f"{self!r} is not open; use it inside 'async with'")
        return self._file

    async def _rewind(self, file: AsyncBufferedReader, count: int) -> None:
        """Step back over the ``count`` bytes just read, so the next read gets them again.

        Runs to its end even if cancelled.  If it fails, the source can no longer
        be read: the next read would skip bytes.
        """
        if not count:
            return
        seeking, _ = await _finish(file.seek(-count, os.SEEK_CUR))
        if not _succeeded(seeking):
            self._broken = True


def _open_regular_file(path: str, flags: int, sizes: list[int]) -> int:
    """Open ``path`` as a regular file and append its size to ``sizes`` (worker thread).

    The check before the open keeps a FIFO from blocking the open; the check after
    it covers a path swapped in between.
    """
    _check_regular(path, os.stat(path))
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        _check_regular(path, info)
    except BaseException:
        os.close(fd)
        raise
    sizes.append(info.st_size)
    return fd


def _check_regular(path: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file")


# -- sink ----------------------------------------------------------------------------


class _SinkState(enum.Enum):
    NEW = enum.auto()
    OPEN = enum.auto()
    FAILED = enum.auto()  # a write or the commit failed or was cancelled
    COMMITTED = enum.auto()
    CLOSED = enum.auto()


class FileSink:
    """Writes a local file atomically.  An async context manager.

    Entering checks the destination and creates a temporary file beside it, named
    ``.<name>.<random>.aqueuepipe-part`` and readable by the owner only.
    :meth:`write` appends to it; :meth:`commit` makes it durable and renames it
    into place, where it gets the permissions of the regular file it replaces
    (a private ``0o600`` file stays private), or those a new file normally gets
    (``0o666 & ~umask``).  Leaving without a commit — by an exception, a
    cancellation, or simply without calling it — removes the temporary file, and
    the destination keeps what it had before::

        async with FileSink("out.bin") as sink:
            await sink.write(data)
            await sink.commit()

    The rename replaces the directory entry: if the destination is a symbolic
    link, the link is replaced, not the file it points to.  One task at a time
    may use a sink, and a sink can be entered only once.

    Every file operation of a sink runs to its end, even when the coroutine that
    started it is cancelled, before the next one starts: a write abandoned by a
    cancellation has finished before the file is closed.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.bytes_written = 0
        self._state = _SinkState.NEW
        self._temp: Path | None = None
        self._file: AsyncBufferedIOBase | None = None

    def __repr__(self) -> str:
        return f"FileSink({str(self.path)!r})"

    async def __aenter__(self) -> Self:
        """Check the destination, then create the temporary file.

        Nothing is created when a check fails.

        Raises:
            FileNotFoundError: the parent directory does not exist (the error's
                ``filename`` is that directory).
            NotADirectoryError: the parent is not a directory.
            ValueError: the destination is an existing directory.
            PermissionError: the directory may not be written.
            OSError: any other failure to create the temporary file.
            RuntimeError: the sink was entered before.

        Cancellation: the check and create are allowed to finish; a temporary file
        they made is removed again before ``CancelledError`` propagates.
        """
        if self._state is not _SinkState.NEW:
            raise RuntimeError(f"{self!r} can be entered only once")
        self._state = _SinkState.CLOSED  # until the temporary file exists
        for _ in range(_TEMP_NAME_ATTEMPTS):
            temp = _temp_name(self.path)

            def opener(path: str, flags: int, target: Path = self.path) -> int:
                return _create_temp_file(target, path, flags)

            creating, cancelled = await _finish(aiofiles.open(temp, "wb", opener=opener))
            if cancelled is not None:
                if _succeeded(creating):
                    closing, _ = await _finish(creating.result().close())  # empty: quick
                    _succeeded(closing)
                    _remove(temp)
                raise cancelled
            error = creating.exception()
            if isinstance(error, FileExistsError) and error.filename == str(temp):
                continue  # that random name is taken: draw another
            self._temp, self._file = temp, creating.result()  # raises the error
            self._state = _SinkState.OPEN
            return self
        raise FileExistsError(
            errno.EEXIST, "no unused temporary file name found", str(self.path.parent)
        )

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the temporary file.  Empty writes do nothing.

        A buffer passed in must not change until the write returns.

        Raises:
            RuntimeError: the sink is not open, is committed, or an earlier write
                failed or was cancelled (the file would have a gap).
            OSError: writing failed (for example, the disk is full); the sink can
                then only be left.

        Cancellation: the write runs to its end first, then ``CancelledError``
        propagates and the sink becomes unusable (the caller cannot tell what was
        written): a later :meth:`write` or :meth:`commit` raises ``RuntimeError``,
        and leaving it removes the temporary file.
        """
        file = self._require_open("write to")
        with memoryview(data) as view:
            size = view.nbytes
        if size == 0:
            return
        try:
            await run_to_end(file.write(data))
        except BaseException:
            self._state = _SinkState.FAILED
            raise
        self.bytes_written += size

    async def commit(self) -> None:
        """Make the file durable and move it into place at :attr:`path`.

        Flushes the temporary file, gives it its final mode (that of the regular
        file it replaces, else ``0o666 & ~umask``), calls ``fsync`` and closes
        it, in worker threads; then renames it over the destination (``os.replace``; atomic, the
        directory being the same).  Afterwards the destination is complete.

        Raises:
            RuntimeError: the sink is not open, is already committed, or a write
                failed or was cancelled.
            OSError: flushing, syncing or renaming failed; the destination is
                unchanged and leaving the sink removes the temporary file.

        Cancellation: up to the rename the commit can be cancelled (the step under
        way runs to its end first), and then the destination is unchanged and
        leaving the sink removes the temporary file.  The rename itself is one
        system call made without awaiting, so a cancellation never lands halfway
        through it.
        """
        file = self._require_open("commit")
        temp = self._temp
        assert temp is not None
        try:
            await run_to_end(file.flush())
            # The loop's default executor, where aiofiles runs its calls too.
            await run_to_end(asyncio.to_thread(_make_durable, file.fileno(), self.path))
            await run_to_end(file.close())
            os.replace(temp, self.path)
        except BaseException:
            self._state = _SinkState.FAILED
            raise
        self._state = _SinkState.COMMITTED
        self._file = None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Remove the temporary file unless :meth:`commit` succeeded.

        An exception on its way out always propagates unchanged; a failure to
        remove the temporary file is then added to it as a note.

        Raises:
            OSError: the temporary file could not be removed, reported only when
                leaving without an exception.

        Cancellation: the temporary file is removed first, synchronously
        (``os.unlink``), so no cancellation can leave it behind.  Then the file is
        closed, and the close runs to its end before ``CancelledError``
        propagates, so the descriptor is never leaked.
        """
        state, self._state = self._state, _SinkState.CLOSED
        if state not in (_SinkState.OPEN, _SinkState.FAILED):
            return
        temp, file = self._temp, self._file
        assert temp is not None and file is not None
        self._file = None
        try:
            _remove(temp)
        except OSError:
            # The file may still be open (Windows refuses to remove open files):
            # remove it after closing it.
            remove_after_close = True
        else:
            remove_after_close = False
        # The data is being thrown away: a failure to flush it while closing
        # (a closed file after a failed commit, a full disk) does not matter.
        closing, cancelled = await _finish(file.close())
        _succeeded(closing)
        error: OSError | None = None
        if remove_after_close:
            try:
                _remove(temp)
            except OSError as removing:
                error = removing
        if cancelled is not None:
            if error is not None:
                cancelled.add_note(
                    f"aqueuepipe could not remove the temporary file {temp}: {error}"
                )
            raise cancelled
        if error is None:
            return
        if exc is None:
            raise error
        exc.add_note(f"aqueuepipe could not remove the temporary file {temp}: {error}")

    def _require_open(self, action: str) -> AsyncBufferedIOBase:
        if self._state is _SinkState.OPEN:
            assert self._file is not None
            return self._file
        reason = {
            _SinkState.NEW: "it is not entered yet",
            _SinkState.FAILED: "an earlier write or commit failed or was cancelled",
            _SinkState.COMMITTED: "it is already committed",
            _SinkState.CLOSED: "it is closed",
        }[self._state]
        raise RuntimeError(f"cannot {action} {self!r}: {reason}")


def _temp_name(target: Path) -> Path:
    """A random name for the temporary file of ``target``, beside it."""
    stem = target.name
    while len(os.fsencode(stem)) > _MAX_TEMP_STEM_BYTES:
        stem = stem[:-1]
    return target.parent / f".{stem}.{secrets.token_hex(8)}{_TEMP_SUFFIX}"


def _create_temp_file(target: Path, temp: str, flags: int) -> int:
    """Check ``target``, then create its temporary file ``temp`` (worker thread).

    The opener of ``aiofiles.open``: returns the new file's descriptor.  A
    ``FileExistsError`` naming ``temp`` means only that the random name is taken.
    """
    parent = target.parent
    try:
        parent_info = os.stat(parent)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"the directory to hold {target} does not exist", str(parent)
        ) from None
    if not stat.S_ISDIR(parent_info.st_mode):
        raise NotADirectoryError(
            errno.ENOTDIR, f"the parent of {target} is not a directory", str(parent)
        )
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.stat(target).st_mode):
            raise ValueError(f"{target} is a directory, not a file")
    # open() asks for O_CREAT | O_TRUNC; O_EXCL instead never reuses a file.
    flags = (flags & ~os.O_TRUNC) | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        return os.open(temp, flags, _TEMP_MODE)
    except FileExistsError:
        raise
    except OSError as exc:
        # Name the destination the caller knows, not our temporary name.
        raise OSError(
            exc.errno,
            f"{exc.strerror} (creating the temporary file {Path(temp).name})",
            str(target),
        ) from exc


def _make_durable(fd: int, target: Path) -> None:
    """Set the final mode of the flushed temporary file and fsync it (worker thread)."""
    if os.name == "posix":
        os.fchmod(fd, _final_mode(target))
    os.fsync(fd)


def _final_mode(target: Path) -> int:
    """The permissions of the file that will be at ``target``.

    Those of the regular file it replaces, so that overwriting a private file
    does not publish its new content; the setuid, setgid and sticky bits are not
    carried over to bytes that came from elsewhere.  Anything else (no file, a
    symbolic link, which the rename replaces) gives what a new file gets.
    """
    try:
        info = os.stat(target, follow_symlinks=False)
    except OSError:
        pass
    else:
        if stat.S_ISREG(info.st_mode):
            return stat.S_IMODE(info.st_mode) & 0o777
    return 0o666 & ~_current_umask()


def _current_umask() -> int:
    # /proc shows the umask without changing it.  Elsewhere os.umask() is the only
    # way to read it, by setting it; setting a restrictive value for that instant
    # means a file another thread creates meanwhile comes out too private, never
    # too open.
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    """Remove ``path``; a file that is already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# -- standard input and output -----------------------------------------------------------

#: Bytes asked of standard input at a time when read(n) gets no size.
_STDIO_READ_SIZE: Final = 1 << 20

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
        size = _STDIO_READ_SIZE if n < 0 else n
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


# -- special files -------------------------------------------------------------------

#: inotify(7) constants (Linux): IN_OPEN, and inotify_init1's flags, which are
#: O_NONBLOCK and O_CLOEXEC by definition.
_IN_OPEN: Final = 0x20
#: The back-off of the fallback wait for a FIFO's reader (no inotify): first and
#: longest pause, in seconds.
_FIFO_RETRY_FIRST: Final = 0.005
_FIFO_RETRY_LONGEST: Final = 0.5


def special_file(end: object) -> Path | None:
    """``end`` as a path if it names an existing FIFO or character device, else None.

    Only such a file named by the caller is read or written as a stream; a
    directory expansion reports the special files it finds instead (see
    :func:`special_kind`).
    """
    if not isinstance(end, str | os.PathLike):
        return None
    try:
        info = os.stat(end)
    except (OSError, ValueError):
        return None
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode):
        return Path(end)
    return None


def special_kind(mode: int) -> str | None:
    """What a file of ``mode`` is, if it is neither a regular file nor a directory
    (``"a FIFO"``, ``"a character device"``...); None for those two."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class SpecialFile:
    """A FIFO or a character device, read or written in place as a stream (never
    replaced by a renamed temporary file).

    No thread is ever blocked, so cancelling a copy ends it at once and
    ``asyncio.run`` can return: the file is opened with ``O_NONBLOCK`` (on the
    first :meth:`read` or :meth:`write`) and every wait is an event of the loop.

    - Read: the open returns at once.  The first read waits until the FIFO is
      readable, which it is only once a writer has opened it (data, or its
      close: an empty stream); a FIFO whose writer never comes is never mistaken
      for an empty one.
    - Write: a FIFO is opened for writing through a read end of our own, closed
      again at once, so the copy holds the write end while it waits for a reader
      (a reader's blocking open then completes).  On Linux the wait is an
      inotify watch for opens of the FIFO.  Where inotify is missing (another
      system, or its limits reached), the reader is looked for with a bounded
      back-off instead: from 5 ms, doubling, at most every 0.5 s.
    - A character device (``/dev/null``, ``/dev/zero``, a terminal) is read and
      written directly; one that can be polled is waited for when it would block.
    """

    __slots__ = ("_fd", "_fifo", "_mode", "_peer", "path")

    def __init__(self, path: Path, mode: Literal["rb", "wb"]) -> None:
        self.path = path
        self._mode = mode
        self._fd: int | None = None
        self._fifo = False
        self._peer = False  # the FIFO's writer has been seen (reading)

    def __repr__(self) -> str:
        return f"SpecialFile({str(self.path)!r}, {self._mode!r})"

    async def _opened(self) -> int:
        if self._fd is None:
            if self._mode == "rb":
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            else:
                fd = await _open_for_writing(self.path)
            try:
                self._fifo = _check_special(self.path, os.fstat(fd))
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: up to 1 MiB) as soon as some are there;
        ``b""`` at the end (the file is then closed).

        Raises:
            ValueError: the path is no longer a FIFO or a character device.
            OSError: opening or reading failed.
        """
        fd = await self._opened()
        size = _STDIO_READ_SIZE if n < 0 else n
        if self._fifo and not self._peer:
            # Before a writer opened the FIFO a read says b"": not the end.
            await _ready(fd, self.path, write=False)
            self._peer = True
        while True:
            try:
                data = os.read(fd, size)
            except BlockingIOError:
                await _ready(fd, self.path, write=False)
                continue
            if not data:
                self.close()
            return data

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting (on the loop) while the reader is slow.

        Raises:
            ValueError: the path is no longer a FIFO or a character device.
            BrokenPipeError: the FIFO's reader went away.
            OSError: opening or writing failed.
        """
        fd = await self._opened()
        view = memoryview(data).cast("B")
        while len(view):
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                await _ready(fd, self.path, write=True)
                continue
            view = view[written:]

    def close(self) -> None:
        """Close the file if it is open (a FIFO's reader then sees its end).  Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    async def aclose(self) -> None:
        """:meth:`close`, awaitable."""
        self.close()


def _check_special(path: Path, info: os.stat_result) -> bool:
    """Whether the opened file is a FIFO; ValueError unless it is a FIFO or a
    character device (another file was put in its place since it was looked at)."""
    if stat.S_ISFIFO(info.st_mode):
        return True
    if stat.S_ISCHR(info.st_mode):
        return False
    raise ValueError(f"{path} is no longer a FIFO or a character device")


async def _ready(fd: int, path: Path, *, write: bool) -> None:
    """Wait until ``fd`` can be read (or written), woken by the event loop."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    try:
        if write:
            loop.add_writer(fd, wake)
        else:
            loop.add_reader(fd, wake)
    except PermissionError as exc:
        # epoll refuses files that are always ready (/dev/zero): one that still
        # says "would block" cannot be waited for.
        raise OSError(errno.EAGAIN, f"{path} would block and cannot be waited for") from exc
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _open_for_writing(path: Path) -> int:
    """Open ``path`` for writing without blocking; a FIFO once it has a reader."""
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if not stat.S_ISFIFO(os.stat(path).st_mode):
        return os.open(path, flags)
    watch = _watch_opens(path)
    if watch is None:
        return await _open_with_back_off(path, flags)
    try:
        # Our own read end lets the write end open at once; then a reader's open,
        # blocking or not, finds a writer and completes, and inotify reports it.
        own_reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fd = os.open(path, flags)
        finally:
            os.close(own_reader)
        try:
            while not _has_reader(fd):
                await _ready(watch, path, write=False)
                _drain(watch)
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(watch)


def _has_reader(fd: int) -> bool:
    """Whether the FIFO whose write end is ``fd`` has a reader (no POLLERR)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return not any(events & select.POLLERR for _, events in poller.poll(0))


async def _open_with_back_off(path: Path, flags: int) -> int:
    """Open a FIFO for writing once it has a reader, looking again with a bounded
    back-off: only where no event says when a reader comes (no inotify)."""
    delay = _FIFO_RETRY_FIRST
    while True:
        try:
            return os.open(path, flags)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, _FIFO_RETRY_LONGEST)


def _watch_opens(path: Path) -> int | None:
    """A non-blocking inotify descriptor reporting every open of ``path``, or None
    where inotify cannot be had (not Linux, no libc, its limits reached)."""
    calls = _inotify()
    if calls is None:
        return None
    init, add_watch = calls
    fd = int(init(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        return None
    if add_watch(fd, os.fsencode(path), _IN_OPEN) < 0:
        os.close(fd)
        return None
    return fd


@functools.cache
def _inotify() -> tuple[Any, Any] | None:
    """libc's inotify_init1 and inotify_add_watch, or None where there are none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add_watch = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add_watch.restype = ctypes.c_int
    return init, add_watch


def _drain(fd: int) -> None:
    """Read away the events queued on an inotify descriptor."""
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


# -- paths ---------------------------------------------------------------------------


def safe_join(root: Path, relative_key: str) -> Path:
    """Return the path under ``root`` for ``relative_key``, an S3 key relative to it.

    The key is split on ``/`` and every segment must be a plain name.  Refused,
    with a ``ValueError`` naming the key:

    - an empty key, and a key with a NUL character;
    - an absolute key (``/etc/passwd``) and one whose first segment starts with a
      drive letter (``C:/x``, ``c:x``), on every platform, so that a prefix
      downloads the same way everywhere;
    - ``..`` segments, wherever they point (``../x``, ``a/../../x``, and also
      ``a/../b``);
    - ``.`` and empty segments (``a/./b``, ``a//b``, and a trailing ``/`` such as
      the ``dir/`` folder markers some tools create): these would silently map
      distinct keys to the same file (``a/./b``, ``a//b`` and ``a/b`` are three
      different S3 objects), so one download would overwrite another;
    - on Windows, segments containing ``\\`` or ``:``;
    - a key whose path, with symbolic links resolved, is not inside ``root``
      resolved (a symbolic link under ``root`` pointing elsewhere).

    The target need not exist.  The result is ``root`` joined with the segments,
    not resolved.
    """
    reason = _unsafe_key_reason(relative_key)
    if reason is None:
        candidate = root.joinpath(*relative_key.split("/"))
        resolved_root = root.resolve()
        resolved = candidate.resolve()
        if resolved != resolved_root and resolved.is_relative_to(resolved_root):
            return candidate
        reason = f"resolves to {resolved}, outside {resolved_root}"
    raise ValueError(f"unsafe key {relative_key!r}: {reason}")


def _unsafe_key_reason(key: str) -> str | None:
    if not key:
        return "it is empty"
    if "\0" in key:
        return "it contains a NUL character"
    if key.startswith("/"):
        return "it is an absolute path"
    if key.endswith("/"):
        return "it ends with '/' (a folder marker, not a file)"
    segments = key.split("/")
    first = segments[0]
    if len(first) >= 2 and first[1] == ":" and first[0].isascii() and first[0].isalpha():
        return "it starts with a drive letter"
    for segment in segments:
        if not segment:
            return "it has an empty segment ('//')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        if os.name == "nt" and ("\\" in segment or ":" in segment):
            return f"its segment {segment!r} contains '\\' or ':'"
    return None
