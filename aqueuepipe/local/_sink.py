"""A local file as the destination of a copy: :class:`FileSink` writes a private
temporary file beside the target and renames it into place on commit, with the
permissions of the file it replaces; leaving without a commit removes the temporary
file and the destination keeps what it had."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import os
import secrets
import stat
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from .._cancel import finish, run_to_end, succeeded

_TEMP_SUFFIX: Final = ".aqueuepipe-part"

# ".<stem>.<16 hex digits>.aqueuepipe-part" must fit the usual 255-byte name limit.
_MAX_TEMP_STEM_BYTES: Final = 200
_TEMP_NAME_ATTEMPTS: Final = 16
_TEMP_MODE: Final = 0o600


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

    def __init__(
        self, path: str | os.PathLike[str], *, resume: tuple[Path, int] | None = None
    ) -> None:
        self.path = Path(path)
        #: (temporary file, bytes of it to keep): continue that file, cut to that
        #: length, instead of creating one (a download resumed).
        self._resume = resume
        #: Leaving without a commit keeps the temporary file (for a resumed download).
        self.keep = False
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
        if self._resume is not None:
            temp, length = self._resume

            def reopen(path: str, flags: int, target: Path = self.path) -> int:
                return _reopen_temp_file(target, path, length)

            opening, cancelled = await finish(aiofiles.open(temp, "r+b", opener=reopen))
            if cancelled is not None:
                if succeeded(opening):
                    closing, _ = await finish(opening.result().close())
                    succeeded(closing)
                raise cancelled
            self._file = opening.result()
            await run_to_end(self._file.seek(length))
            self._temp, self.bytes_written = temp, length
            self._state = _SinkState.OPEN
            return self
        for _ in range(_TEMP_NAME_ATTEMPTS):
            temp = _temp_name(self.path)

            def opener(path: str, flags: int, target: Path = self.path) -> int:
                return _create_temp_file(target, path, flags)

            creating, cancelled = await finish(aiofiles.open(temp, "wb", opener=opener))
            if cancelled is not None:
                if succeeded(creating):
                    closing, _ = await finish(creating.result().close())  # empty: quick
                    succeeded(closing)
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
        if self.keep:
            # What was written stays for the next run to continue (it flushes the
            # bytes written; a write cut short leaves a shorter file, never a gap).
            closing, cancelled = await finish(file.close())
            succeeded(closing)
            if cancelled is not None:
                raise cancelled
            return
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
        closing, cancelled = await finish(file.close())
        succeeded(closing)
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

    @property
    def temp(self) -> Path | None:
        """The temporary file, once entered."""
        return self._temp

    def discard(self) -> None:
        """Leave without keeping the temporary file after all (see :attr:`keep`)."""
        self.keep = False


def _reopen_temp_file(target: Path, temp: str, length: int) -> int:
    """Open a download's temporary file again, cut to ``length`` bytes (worker thread)."""
    _check_target(target)
    fd = os.open(temp, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{temp} is not a regular file")
        os.ftruncate(fd, length)
    except BaseException:
        os.close(fd)
        raise
    return fd


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
    _check_target(target)
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


def _check_target(target: Path) -> None:
    """Check the directory that holds ``target``, and that ``target`` is no directory."""
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
