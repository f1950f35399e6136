"""Local files as a source and a sink of bytes.

:class:`FileSource` reads a local file in chunks.  :class:`FileSink` writes one
atomically: the bytes go to a temporary file beside the target, which
:meth:`FileSink.commit` renames into place.  :func:`safe_join` maps an S3 key to a
path under a download directory and refuses keys that would land outside it.

Blocking file operations run in worker threads.  A worker thread cannot be
interrupted, so wherever abandoning one would leak something (an open descriptor, a
file it creates, a caller's buffer it is still filling) the coroutine waits for it to
finish before it lets a cancellation propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import os
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor
from io import BufferedWriter
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedReader

from ._cancel import wait_despite_cancellation

__all__ = ["FileSink", "FileSource", "safe_join"]

_TEMP_SUFFIX: Final = ".aqueuepipe-part"

# ".<stem>.<16 hex digits>.aqueuepipe-part" must fit the usual 255-byte name limit.
_MAX_TEMP_STEM_BYTES: Final = 200
_TEMP_NAME_ATTEMPTS: Final = 16
_TEMP_MODE: Final = 0o600
# errno values with which link() says "this filesystem has no hard links".
_NO_HARD_LINKS: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


# -- cancellation helpers ------------------------------------------------------------


def _succeeded(fut: asyncio.Future[Any]) -> bool:
    """Whether the done ``fut`` has a result; marks its exception as retrieved."""
    return not fut.cancelled() and fut.exception() is None


# -- source --------------------------------------------------------------------------


class FileSource:
    """Reads a local file in chunks.  An async context manager.

    Entering opens the file (in a worker thread, with aiofiles); then :attr:`size`
    is its size and :meth:`read` / :meth:`readinto` return its bytes in order.
    Leaving closes the file, on every path.  One task at a time may read from a
    source, and a source can be entered only once::

        async with FileSource("data.bin") as source:
            while chunk := await source.read(8 * 1024 * 1024):
                ...
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: AsyncBufferedReader | None = None
        self._size: int | None = None
        self._entered = False
        # Bytes a cancelled read had already taken from the file; the next read
        # returns them first, so a cancelled read consumes nothing.
        self._unread = b""

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

        Cancellation: the open runs in a worker thread that is allowed to finish; if
        it succeeded the file is closed again before ``CancelledError`` propagates.
        """
        if self._entered:
            raise RuntimeError(f"{self!r} can be entered only once")
        self._entered = True
        sizes: list[int] = []

        def opener(path: str, flags: int) -> int:
            return _open_regular_file(path, flags, sizes)

        opening = asyncio.ensure_future(aiofiles.open(str(self.path), "rb", opener=opener))
        cancelled = await wait_despite_cancellation(opening)
        if cancelled is not None:
            if _succeeded(opening):
                closing = asyncio.ensure_future(opening.result().close())
                await wait_despite_cancellation(closing)
                _succeeded(closing)
            raise cancelled
        self._file = opening.result()
        self._size = sizes[0]
        return self

    async def read(self, n: int) -> bytes:
        """Read and return up to ``n`` bytes; ``b""`` only at the end of the file.

        Raises:
            ValueError: ``n`` is negative.
            RuntimeError: the source is not open (not entered yet, or already left).
            OSError: reading failed.

        Cancellation is atomic: the worker thread doing the read cannot be stopped,
        so a cancelled read waits for it (one chunk of local I/O), keeps the bytes
        it got for the next read, and then raises ``CancelledError``.  Nothing is
        consumed.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        file = self._require_open()
        if n == 0:
            return b""
        if self._unread:
            data, self._unread = self._unread[:n], self._unread[n:]
            return data
        reading = asyncio.ensure_future(file.read(n))
        cancelled = await wait_despite_cancellation(reading)
        if cancelled is not None:
            if _succeeded(reading):
                self._unread = reading.result()
            raise cancelled
        return reading.result()

    async def readinto(self, buf: bytearray | memoryview) -> int:
        """Fill ``buf`` from the file; return how many bytes were put in it.

        Reads until ``buf`` is full or the file ends, so a count below ``len(buf)``
        means end of file, and ``0`` means there was nothing left.  The bytes go
        straight from the file into ``buf``, with no intermediate copy.

        Raises:
            TypeError: ``buf`` is read-only or not contiguous.
            RuntimeError: the source is not open (not entered yet, or already left).
            OSError: reading failed; nothing is consumed, as for a cancellation.

        Cancellation is atomic for the file: a cancelled ``readinto`` waits until
        the worker thread has stopped writing into ``buf``, keeps the bytes read so
        far for the next read, and then raises ``CancelledError``.  What ``buf``
        holds afterwards is unspecified.
        """
        file = self._require_open()
        with memoryview(buf) as view, view.cast("B") as target:
            if target.readonly:
                raise TypeError("readinto() needs a writable buffer")
            filled = self._take_unread(target)
            while filled < len(target):
                with target[filled:] as rest:
                    reading = asyncio.ensure_future(file.readinto(rest))
                    cancelled = await wait_despite_cancellation(reading)
                if cancelled is not None or not _succeeded(reading):
                    if _succeeded(reading):
                        filled += reading.result() or 0
                    self._unread = bytes(target[:filled])
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
        self._unread = b""
        if file is None:
            return
        closing = asyncio.ensure_future(file.close())
        cancelled = await wait_despite_cancellation(closing)
        if cancelled is not None:
            _succeeded(closing)
            raise cancelled
        if exc is None:
            closing.result()
        else:
            _succeeded(closing)

    def _require_open(self) -> AsyncBufferedReader:
        if self._file is None:
            raise RuntimeError(f"{self!r} is not open; use it inside 'async with'")
        return self._file

    def _take_unread(self, target: memoryview) -> int:
        count = min(len(self._unread), len(target))
        if count:
            target[:count] = self._unread[:count]
            self._unread = self._unread[count:]
        return count


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
    into place, where it gets the mode a new file normally gets
    (``0o666 & ~umask``).  Leaving without a commit — by an exception, a
    cancellation, or simply without calling it — removes the temporary file, and
    the destination keeps what it had before::

        async with FileSink("out.bin") as sink:
            await sink.write(data)
            await sink.commit()

    The rename replaces the directory entry: if the destination is a symbolic
    link, the link is replaced, not the file it points to.  One task at a time
    may use a sink, and a sink can be entered only once.

    All file operations of one sink run, in order, on one worker thread of its
    own: a write abandoned by a cancellation therefore always finishes before
    the file is closed, and the descriptor can never be closed under it.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.bytes_written = 0
        self._state = _SinkState.NEW
        self._temp: Path | None = None
        self._file: BufferedWriter | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"FileSink({str(self.path)!r}, overwrite={self.overwrite})"

    async def __aenter__(self) -> Self:
        """Check the destination, then create the temporary file.

        Nothing is created when a check fails.

        Raises:
            FileNotFoundError: the parent directory does not exist (the error's
                ``filename`` is that directory).
            NotADirectoryError: the parent is not a directory.
            ValueError: the destination is an existing directory.
            FileExistsError: the destination exists and ``overwrite`` is false.
            PermissionError: the directory may not be written.
            OSError: any other failure to create the temporary file.
            RuntimeError: the sink was entered before.

        Cancellation: the check and create run in the sink's worker thread, which
        is allowed to finish; a temporary file it made is removed again before
        ``CancelledError`` propagates.
        """
        if self._state is not _SinkState.NEW:
            raise RuntimeError(f"{self!r} can be entered only once")
        self._state = _SinkState.CLOSED  # until the temporary file exists
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aqueuepipe-file-sink")
        loop = asyncio.get_running_loop()
        creating = loop.run_in_executor(executor, _create_temp_file, self.path, self.overwrite)
        cancelled = await wait_despite_cancellation(creating)
        if cancelled is not None or not _succeeded(creating):
            executor.shutdown(wait=False)
            if _succeeded(creating):
                temp, file = creating.result()
                file.close()  # just created and empty: closing it cannot block
                _remove(temp)
            if cancelled is not None:
                raise cancelled
            creating.result()  # raises the check's or the create's error
        self._temp, self._file = creating.result()
        self._executor = executor
        self._state = _SinkState.OPEN
        return self

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the temporary file.  Empty writes do nothing.

        A buffer passed in must not change until the write returns.

        Raises:
            RuntimeError: the sink is not open, is committed, or an earlier write
                failed or was cancelled (the file would have a gap).
            OSError: writing failed (for example, the disk is full); the sink can
                then only be left.

        Cancellation: the bytes may or may not reach the file, so the sink becomes
        unusable: a later :meth:`write` or :meth:`commit` raises ``RuntimeError``,
        and leaving it removes the temporary file.
        """
        file, executor = self._require_open("write to")
        with memoryview(data) as view:
            size = view.nbytes
        if size == 0:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, file.write, data)
        except BaseException:
            self._state = _SinkState.FAILED
            raise
        self.bytes_written += size

    async def commit(self) -> None:
        """Make the file durable and move it into place at :attr:`path`.

        Flushes the temporary file, sets the mode a new file normally gets
        (``0o666 & ~umask``), calls ``fsync`` and closes it, in the worker thread; then
        renames it over the destination (``os.replace``; atomic, the directory
        being the same).  With ``overwrite=False`` the rename is a hard link that
        fails if the destination appeared meanwhile (on filesystems without hard
        links, a check just before the rename).  Afterwards the destination is
        complete.

        Raises:
            RuntimeError: the sink is not open, is already committed, or a write
                failed or was cancelled.
            FileExistsError: ``overwrite`` is false and the destination exists now.
            OSError: flushing, syncing or renaming failed; the destination is
                unchanged and leaving the sink removes the temporary file.

        Cancellation: up to the rename the commit can be cancelled, and then the
        destination is unchanged and leaving the sink removes the temporary file.
        The rename itself is one system call made without awaiting, so a
        cancellation never lands halfway through it.
        """
        file, executor = self._require_open("commit")
        temp = self._temp
        assert temp is not None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, _finish_temp_file, file)
            _move_into_place(temp, self.path, overwrite=self.overwrite)
        except BaseException:
            self._state = _SinkState.FAILED
            raise
        self._state = _SinkState.COMMITTED
        self._file = None
        self._executor = None
        executor.shutdown(wait=False)

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
        (``os.unlink``), so no cancellation can leave it behind.  Then the sink
        waits for its worker thread to close the file, which happens after any
        write still running there; cancelling that wait leaves the close to
        finish on its own.
        """
        state, self._state = self._state, _SinkState.CLOSED
        if state not in (_SinkState.OPEN, _SinkState.FAILED):
            return
        temp, file, executor = self._temp, self._file, self._executor
        assert temp is not None and file is not None and executor is not None
        self._file = self._executor = None
        try:
            _remove(temp)
        except OSError:
            # The file may still be open (Windows refuses to remove open files):
            # the worker removes it after closing it.
            closing = executor.submit(_close_and_remove, file, temp)
        else:
            closing = executor.submit(_close_and_remove, file, None)
        executor.shutdown(wait=False)
        error = await asyncio.shield(asyncio.wrap_future(closing))
        if error is None:
            return
        if exc is None:
            raise error
        exc.add_note(f"aqueuepipe could not remove the temporary file {temp}: {error}")

    def _require_open(self, action: str) -> tuple[BufferedWriter, ThreadPoolExecutor]:
        if self._state is _SinkState.OPEN:
            assert self._file is not None and self._executor is not None
            return self._file, self._executor
        reason = {
            _SinkState.NEW: "it is not entered yet",
            _SinkState.FAILED: "an earlier write or commit failed or was cancelled",
            _SinkState.COMMITTED: "it is already committed",
            _SinkState.CLOSED: "it is closed",
        }[self._state]
        raise RuntimeError(f"cannot {action} {self!r}: {reason}")


def _create_temp_file(target: Path, overwrite: bool) -> tuple[Path, BufferedWriter]:
    """Check ``target`` and create the temporary file beside it (worker thread)."""
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
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "the destination exists (overwrite=False)", str(target))

    stem = target.name
    while len(os.fsencode(stem)) > _MAX_TEMP_STEM_BYTES:
        stem = stem[:-1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_NAME_ATTEMPTS):
        temp = parent / f".{stem}.{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        try:
            fd = os.open(temp, flags, _TEMP_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            # Name the destination the caller knows, not our temporary name.
            raise OSError(
                exc.errno, f"{exc.strerror} (creating the temporary file {temp.name})", str(target)
            ) from exc
        try:
            return temp, open(fd, "wb")
        except BaseException:
            os.close(fd)
            _remove(temp)
            raise
    raise FileExistsError(errno.EEXIST, "no unused temporary file name found", str(parent))


def _finish_temp_file(file: BufferedWriter) -> None:
    """Flush, set the final mode, fsync and close the temporary file (worker thread)."""
    file.flush()
    if os.name == "posix":
        os.fchmod(file.fileno(), 0o666 & ~_current_umask())
    os.fsync(file.fileno())
    file.close()


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


def _move_into_place(temp: Path, target: Path, *, overwrite: bool) -> None:
    """Rename the finished temporary file to ``target`` (on the event loop thread).

    Each branch is one or two metadata system calls in one directory; making them
    here, without an await, keeps the commit's last step whole under cancellation.
    """
    if overwrite:
        os.replace(temp, target)
        return
    try:
        # link() fails if the target exists, where replace() would clobber it.
        os.link(temp, target)
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "the destination exists (overwrite=False)", str(target)
        ) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # No hard links on this filesystem: check, then rename.  A file created in
        # between would be replaced; nothing better is portable.
        if os.path.lexists(target):
            raise FileExistsError(
                errno.EEXIST, "the destination exists (overwrite=False)", str(target)
            ) from None
        os.replace(temp, target)
    else:
        _remove(temp)


def _remove(path: Path) -> None:
    """Remove ``path``; a file that is already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _close_and_remove(file: BufferedWriter, temp: Path | None) -> OSError | None:
    """Close a discarded temporary file, then remove it if asked (worker thread).

    Returns the error removing it, if any: the data is being thrown away, so a
    failure to flush it while closing does not matter.
    """
    with contextlib.suppress(OSError):
        file.close()
    if temp is not None:
        try:
            _remove(temp)
        except OSError as exc:
            return exc
    return None


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
