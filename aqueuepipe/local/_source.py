"""A local file as the source of a copy: :class:`FileSource` opens a regular file
(never a FIFO or a device, whose size would say nothing) and fills buffers with its
bytes, each read undone on cancellation so the next one starts where it did."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import TracebackType
from typing import Self

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedReader

from .._cancel import finish, succeeded


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
        #: The opened file's modification time (ns), from the same ``os.fstat``.
        self.mtime_ns: int | None = None
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
        sizes: list[os.stat_result] = []

        def opener(path: str, flags: int) -> int:
            return _open_regular_file(path, flags, sizes)

        opening, cancelled = await finish(aiofiles.open(str(self.path), "rb", opener=opener))
        if cancelled is not None:
            if succeeded(opening):
                closing, _ = await finish(opening.result().close())
                succeeded(closing)
            raise cancelled
        self._file = opening.result()  # raises the open's error
        self._size = sizes[0].st_size
        self.mtime_ns = sizes[0].st_mtime_ns
        return self

    async def seek(self, offset: int) -> None:
        """Read from byte ``offset`` on (a resumed upload skips the parts stored).

        Cancellation: the seek runs to its end first, so the position is known.
        """
        file = self._require_open()
        seeking, cancelled = await finish(file.seek(offset))
        if cancelled is not None:
            succeeded(seeking)
            raise cancelled
        seeking.result()

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
                    reading, cancelled = await finish(file.readinto(rest))
                if cancelled is not None or not succeeded(reading):
                    if succeeded(reading):
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
        closing, cancelled = await finish(file.close())
        if cancelled is not None:
            succeeded(closing)
            raise cancelled
        if exc is None:
            closing.result()
        else:
            succeeded(closing)

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
        seeking, _ = await finish(file.seek(-count, os.SEEK_CUR))
        if not succeeded(seeking):
            self._broken = True


def _open_regular_file(path: str, flags: int, sizes: list[os.stat_result]) -> int:
    """Open ``path`` as a regular file and append its status to ``sizes`` (worker thread).

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
    sizes.append(info)
    return fd


def _check_regular(path: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file")
