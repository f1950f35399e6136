"""FileSource, FileSink and safe_join: local files as source and sink of bytes."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest
from aiofiles.threadpool.binary import AsyncBufferedReader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqueuepipe.local import FileSink, FileSource, safe_join

from ._helpers import cancel_and_check, make_fifo
from ._sync import run_ready

_P = ParamSpec("_P")
_T = TypeVar("_T")

TEMP_GLOB = ".*.aqueuepipe-part"


def temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(TEMP_GLOB))


async def commit_file(target: Path, data: bytes, *, umask: int | None = None) -> None:
    """Write ``data`` to ``target`` through a FileSink and commit, under ``umask`` if given."""
    old_umask = None if umask is None else os.umask(umask)
    try:
        async with FileSink(target) as sink:
            await sink.write(data)
            await sink.commit()
    finally:
        if old_umask is not None:
            os.umask(old_umask)


class Gate:
    """Holds the next worker-thread job, once armed, until released.

    ``held`` is set (on the event loop) when a job is being held, so a test knows
    the worker is blocked at that point without sleeping.
    """

    def __init__(self) -> None:
        self.armed = False
        self.held = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self._released = threading.Event()

    def wrap(self, fn: Callable[_P, _T]) -> Callable[_P, _T]:
        @functools.wraps(fn)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            if self.armed:
                self.armed = False
                self.loop.call_soon_threadsafe(self.held.set)
                self._released.wait(timeout=60)
            return fn(*args, **kwargs)

        return run

    def release(self) -> None:
        self._released.set()


class GatedExecutor(ThreadPoolExecutor):
    """A thread pool whose jobs pass through a :class:`Gate`."""

    def __init__(
        self, gate: Gate, max_workers: int | None = None, thread_name_prefix: str = ""
    ) -> None:
        super().__init__(max_workers, thread_name_prefix)
        self._gate = gate

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        return super().submit(self._gate.wrap(fn), *args, **kwargs)


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    held = Gate()
    yield held
    held.release()  # never leave a worker thread blocked


@pytest.fixture
def gated_default_executor(gate: Gate) -> Gate:
    """Route the loop's default executor (used by aiofiles) through ``gate``."""
    gate.loop.set_default_executor(GatedExecutor(gate))
    return gate


async def cancel_while_held(
    gate: Gate, work: Coroutine[Any, Any, object], *, arm: bool = True
) -> None:
    """Run ``work`` until a worker-thread job of it is held, cancel it, then let the job run.

    The job held is its first one, or (``arm=False``) the one before which ``work``
    arms the gate itself.  Returns once ``work`` has raised ``CancelledError``.
    """
    gate.armed = gate.armed or arm
    task = asyncio.create_task(work)
    await gate.held.wait()
    task.cancel()
    await run_ready()
    assert not task.done()  # the cancellation waits for the job in the worker thread
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await task


async def read_all(source: FileSource, chunk_size: int) -> bytes:
    buf = bytearray(chunk_size)
    out = bytearray()
    while count := await source.readinto(buf):
        out += buf[:count]
    return bytes(out)


# -- FileSource ----------------------------------------------------------------------


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=20_000), buffer_size=st.integers(min_value=1, max_value=25_000))
def test_readinto_fills_buffer_until_eof(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, buffer_size: int
) -> None:
    path = tmp_path_factory.mktemp("source") / "data.bin"
    path.write_bytes(data)

    async def main() -> tuple[bytes, list[int]]:
        buf = bytearray(buffer_size)
        out = bytearray()
        counts = []
        async with FileSource(path) as source:
            while count := await source.readinto(buf):
                counts.append(count)
                out += buf[:count]
        return bytes(out), counts

    out, counts = asyncio.run(main())
    assert out == data
    # Every fill but the last is complete: a short count means end of file.
    assert all(count == buffer_size for count in counts[:-1])


async def test_readinto_memoryview_fills_slice(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abcdef")
    buf = bytearray(10)
    async with FileSource(path) as source:
        count = await source.readinto(memoryview(buf)[2:6])
    assert count == 4
    assert buf == b"\0\0abcd\0\0\0\0"


async def test_readinto_readonly_buffer_raises_type_error(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    async with FileSource(path) as source:
        with pytest.raises(TypeError):
            await source.readinto(memoryview(b"xyz"))


async def test_size_reports_file_length(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 12_345)
    async with FileSource(path) as source:
        assert source.size == 12_345


async def test_size_before_enter_raises_runtime_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        _ = FileSource(tmp_path / "data.bin").size


async def test_readinto_of_empty_file_returns_zero(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    async with FileSource(path) as source:
        assert source.size == 0
        assert await source.readinto(bytearray(100)) == 0


async def test_readinto_after_exit_raises_runtime_error(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    async with FileSource(path) as source:
        pass
    with pytest.raises(RuntimeError):
        await source.readinto(bytearray(1))


async def test_enter_directory_source_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory, not a file"):
        async with FileSource(tmp_path):
            pass


async def test_enter_missing_source_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        async with FileSource(tmp_path / "missing.bin"):
            pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
async def test_enter_fifo_source_raises_value_error(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        async with FileSource(fifo):
            pass


async def test_enter_source_twice_raises_runtime_error(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    source = FileSource(path)
    async with source:
        pass
    with pytest.raises(RuntimeError):
        async with source:
            pass


@pytest.mark.usefixtures("gated_default_executor")
async def test_readinto_cancelled_in_worker_consumes_nothing(tmp_path: Path, gate: Gate) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    buf = bytearray(6)
    async with FileSource(path) as source:
        await cancel_while_held(gate, source.readinto(buf))
        assert await source.readinto(buf) == 6
        assert buf == b"012345"
        assert await read_all(source, 100) == b"6789"


@pytest.mark.usefixtures("gated_default_executor")
async def test_readinto_cancelled_after_a_partial_fill_gives_those_bytes_back(
    tmp_path: Path, gate: Gate
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    async with FileSource(path) as source:
        assert await source.readinto(bytearray(2)) == 2
        await cancel_while_held(gate, source.readinto(bytearray(20)))
        assert await read_all(source, 3) == b"23456789"


@pytest.mark.usefixtures("gated_default_executor")
async def test_readinto_that_cannot_be_undone_leaves_the_source_unusable(
    tmp_path: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_seek(self: object, *args: object) -> int:
        raise OSError(errno.EIO, "seek failed")

    monkeypatch.setattr(AsyncBufferedReader, "seek", failing_seek)
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    async with FileSource(path) as source:
        await cancel_while_held(gate, source.readinto(bytearray(4)))
        # Reading on would skip the bytes the cancelled call took.
        with pytest.raises(RuntimeError, match="could not be undone"):
            await source.readinto(bytearray(4))


# -- FileSink ------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(max_size=5000), max_size=12))
def test_commit_writes_exact_bytes_and_leaves_no_temp_file(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes]
) -> None:
    directory = tmp_path_factory.mktemp("sink")
    target = directory / "out.bin"

    async def main() -> int:
        async with FileSink(target) as sink:
            for chunk in chunks:
                await sink.write(chunk)
            await sink.commit()
        return sink.bytes_written

    assert asyncio.run(main()) == sum(map(len, chunks))
    assert target.read_bytes() == b"".join(chunks)
    assert list(directory.iterdir()) == [target]


async def test_write_accepts_bytes_like_objects(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    async with FileSink(target) as sink:
        await sink.write(b"ab")
        await sink.write(bytearray(b"cd"))
        await sink.write(memoryview(b"xefx")[1:3])
        await sink.write(b"")
        assert sink.bytes_written == 6
        await sink.commit()
    assert target.read_bytes() == b"abcdef"


async def test_temp_file_is_private_and_named_beside_target(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    async with FileSink(target) as sink:
        await sink.write(b"data")
        [temp] = temp_files(tmp_path)
        assert temp.name.startswith(".out.bin.")
        assert stat.S_IMODE(temp.stat().st_mode) == 0o600
        assert not target.exists()
        await sink.commit()


async def test_commit_sets_umask_derived_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    await commit_file(target, b"data", umask=0o027)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
async def test_commit_over_an_existing_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "secret.txt"
    target.write_bytes(b"old")
    target.chmod(mode)
    await commit_file(target, b"new content", umask=0o022)  # 0o644 for a new file
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_commit_over_a_setuid_file_drops_the_setuid_bit(tmp_path: Path) -> None:
    target = tmp_path / "tool"
    target.write_bytes(b"old")
    target.chmod(0o4755)
    await commit_file(target, b"bytes from elsewhere")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_commit_over_a_symlink_gives_a_new_file_mode(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.write_bytes(b"old")
    private.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(private)
    await commit_file(link, b"new", umask=0o022)
    assert not link.is_symlink()
    assert stat.S_IMODE(link.stat().st_mode) == 0o644
    assert private.read_bytes() == b"old"


async def test_commit_with_longest_file_name_succeeds(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 255)
    await commit_file(target, b"data")
    assert target.read_bytes() == b"data"


async def test_exit_without_commit_leaves_nothing(tmp_path: Path) -> None:
    async with FileSink(tmp_path / "out.bin") as sink:
        await sink.write(b"data")
    assert list(tmp_path.iterdir()) == []


async def test_exit_by_exception_leaves_nothing_and_reraises(tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with FileSink(tmp_path / "out.bin") as sink:
            await sink.write(b"data")
            raise Boom
    assert list(tmp_path.iterdir()) == []


async def test_cancel_while_writer_blocked_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    wrote = asyncio.Event()
    never = asyncio.Event()

    async def writer() -> None:
        async with FileSink(target) as sink:
            await sink.write(b"x" * 100_000)
            wrote.set()
            await never.wait()
            await sink.commit()

    task = asyncio.create_task(writer())
    await wrote.wait()
    assert len(temp_files(tmp_path)) == 1
    await cancel_and_check(task)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("gated_default_executor")
async def test_cancel_during_commit_keeps_old_target(tmp_path: Path, gate: Gate) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    async def writer() -> None:
        async with FileSink(target) as sink:
            await sink.write(b"new")
            gate.armed = True  # hold the flush/fsync/close job
            await sink.commit()

    await cancel_while_held(gate, writer(), arm=False)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.usefixtures("gated_default_executor")
async def test_commit_after_cancelled_write_raises_runtime_error(
    tmp_path: Path, gate: Gate
) -> None:
    target = tmp_path / "out.bin"
    async with FileSink(target) as sink:
        await cancel_while_held(gate, sink.write(b"data"))
        with pytest.raises(RuntimeError, match="cancelled"):
            await sink.commit()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("gated_default_executor")
async def test_cancelled_write_finishes_before_the_file_is_closed(
    tmp_path: Path, gate: Gate
) -> None:
    target = tmp_path / "out.bin"

    async def writer() -> None:
        async with FileSink(target) as sink:
            gate.armed = True  # hold the write in its worker thread
            await sink.write(b"x" * 100_000)

    task = asyncio.create_task(writer())
    await gate.held.wait()
    [temp] = temp_files(tmp_path)
    task.cancel()
    await run_ready()
    # The cancellation waits for the write: nothing was closed or removed under it.
    assert not task.done()
    assert temp.exists()
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == []


async def test_write_after_commit_raises_runtime_error(tmp_path: Path) -> None:
    async with FileSink(tmp_path / "out.bin") as sink:
        await sink.commit()
        with pytest.raises(RuntimeError, match="committed"):
            await sink.write(b"late")


async def test_write_before_enter_raises_runtime_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not entered"):
        await FileSink(tmp_path / "out.bin").write(b"early")


async def test_enter_missing_parent_raises_before_creating(tmp_path: Path) -> None:
    parent = tmp_path / "missing"
    with pytest.raises(FileNotFoundError) as info:
        async with FileSink(parent / "out.bin"):
            pass
    assert info.value.filename == str(parent)
    assert list(tmp_path.iterdir()) == []


async def test_enter_target_directory_raises_value_error(tmp_path: Path) -> None:
    target = tmp_path / "dir"
    target.mkdir()
    with pytest.raises(ValueError, match="is a directory, not a file"):
        async with FileSink(target):
            pass
    assert list(tmp_path.iterdir()) == [target]


async def test_commit_replaces_existing_target_only_at_commit(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    async with FileSink(target) as sink:
        await sink.write(b"new content")
        assert target.read_bytes() == b"old"
        await sink.commit()
        assert target.read_bytes() == b"new content"
    assert list(tmp_path.iterdir()) == [target]


async def test_enter_where_no_file_can_be_made_raises_not_a_directory_error(
    tmp_path: Path,
) -> None:
    """A destination whose parent is a regular file: the temporary file cannot be
    made, for root too (ENOTDIR), so entering fails and the file is left as it was."""
    parent = tmp_path / "file"
    parent.write_bytes(b"a regular file")
    with pytest.raises(NotADirectoryError):
        async with FileSink(parent / "out.bin"):
            pass
    assert list(tmp_path.iterdir()) == [parent]
    assert parent.read_bytes() == b"a regular file"


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's sysfs")
async def test_enter_a_directory_nobody_may_create_in_raises_even_as_root() -> None:
    """sysfs refuses new files to root too (EACCES, or EROFS where it is mounted
    read-only): a directory one may not create in, where CI runs as root."""
    with pytest.raises(OSError) as caught:
        async with FileSink(Path("/sys/aqueuepipe-out.bin")):
            pass
    assert caught.value.errno in (errno.EACCES, errno.EROFS, errno.EPERM)
    assert not [p for p in Path("/sys").iterdir() if "aqueuepipe-out" in p.name]


# -- safe_join -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("file.bin", ("file.bin",)),
        ("dir/file.bin", ("dir", "file.bin")),
        ("a/b/c/d.txt", ("a", "b", "c", "d.txt")),
        ("..hidden/x..y", ("..hidden", "x..y")),
        ("with space/ünïcode", ("with space", "ünïcode")),
    ],
)
def test_safe_join_nested_key_stays_under_root(
    tmp_path: Path, key: str, parts: tuple[str, ...]
) -> None:
    assert safe_join(tmp_path, key) == tmp_path.joinpath(*parts)


@pytest.mark.parametrize(
    "key", ["..", "../x", "a/../../x", "dir/../../escape", "/etc/passwd", "//server/share"]
)
def test_safe_join_escaping_key_raises_value_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        safe_join(tmp_path, key)


@pytest.mark.parametrize("key", ["a/../b", "a/./b", "./a", "a/."])
def test_safe_join_dot_segment_raises_value_error(tmp_path: Path, key: str) -> None:
    # Rejected even inside root: "a/./b" and "a/b" are different objects.
    with pytest.raises(ValueError, match="segment"):
        safe_join(tmp_path, key)


@pytest.mark.parametrize("key", ["a//b", "dir/", ""])
def test_safe_join_empty_segment_raises_value_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        safe_join(tmp_path, key)


def test_safe_join_nul_character_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NUL"):
        safe_join(tmp_path, "a\0b")


@pytest.mark.parametrize("key", ["C:/Windows/x", "c:x", "Z:"])
def test_safe_join_drive_letter_raises_value_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="drive letter"):
        safe_join(tmp_path, key)


def test_safe_join_symlink_out_of_root_raises_value_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError, match="outside"):
        safe_join(root, "link/file.bin")


def test_safe_join_error_names_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'\.\./secret'"):
        safe_join(tmp_path, "../secret")
