"""Special files: a FIFO or a character device named as an end of a copy is read or
written in place (:class:`SpecialFile`), opened non-blocking and waited for with the
event loop (inotify for a FIFO's reader on Linux), so no thread ever blocks and a
cancellation ends the copy at once.  :func:`special_kind` names the special files a
directory expansion reports instead of copying."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import os
import select
import stat
import sys
from pathlib import Path
from typing import Any, Final, Literal

from ._stdio import STDIO_READ_SIZE

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
        size = STDIO_READ_SIZE if n < 0 else n
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
