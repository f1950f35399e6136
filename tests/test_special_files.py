"""Special files as the ends of a copy: FIFOs never block cancellation, and a
directory expansion reports the special files it finds instead of opening them.

Every FIFO case runs in a subprocess with a timeout: a copy that blocks a thread
in ``open()`` would otherwise hang the suite instead of failing.  The moment a
command has opened a FIFO is seen with inotify (:class:`OpenWatch`), never guessed
with a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from aqueuepipe import copy
from aqueuepipe.s3 import S3Client

from ._commands import EXIT_STATUS, MESSAGE, SIGNALS, StartCommand
from ._helpers import (
    MakeBucket,
    MiB,
    MotoServer,
    get,
    key_exists,
    make_fifo,
    open_uploads,
    payload,
    read_fifo,
    write_fifo,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="FIFOs, and inotify to see them opened"
)

#: A hang fails the test after this many seconds; a prompt end takes well under it.
HANG = 30.0
#: What "at once" means for a cancelled copy, with room for a loaded machine.
PROMPT = 10.0
_IN_OPEN = 0x20


class OpenWatch:
    """Sets :attr:`opened` when any process opens ``path`` (inotify ``IN_OPEN``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = asyncio.Event()
        self._fd = -1

    async def __aenter__(self) -> OpenWatch:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self._fd >= 0, os.strerror(ctypes.get_errno())
        assert libc.inotify_add_watch(self._fd, os.fsencode(self.path), _IN_OPEN) >= 0
        asyncio.get_running_loop().add_reader(self._fd, self.check)
        return self

    async def wait(self) -> None:
        """Wait until the path is opened; fail the test if it never is."""
        try:
            async with asyncio.timeout(HANG):
                await self.opened.wait()
        except TimeoutError:
            pytest.fail(f"{self.path} was not opened within {HANG:g} s")

    def check(self) -> bool:
        """Read the events queued so far; whether the path was opened yet."""
        with contextlib.suppress(BlockingIOError):
            if os.read(self._fd, 4096):
                self.opened.set()
        return self.opened.is_set()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.get_running_loop().remove_reader(self._fd)
        os.close(self._fd)


class Script:
    """``python -c CODE ARGS`` in a subprocess, the test's S3 endpoint in its environment."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.started = time.monotonic()

    @classmethod
    async def start(cls, code: str, *args: str, endpoint_url: str) -> Script:
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint_url)
        env.pop("PYTHONASYNCIODEBUG", None)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def kill(self) -> None:
        """Kill the script if it still runs (a test that failed before its end)."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def finish(self) -> tuple[int, str, str, float]:
        """(exit status, stdout, stderr, seconds since the start); a hang fails the test."""
        try:
            async with asyncio.timeout(HANG):
                out, err = await self.process.communicate()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            pytest.fail(f"still running after {HANG:g} s: it hangs")
        assert self.process.returncode is not None
        return self.process.returncode, out.decode(), err.decode(), time.monotonic() - self.started


async def run_script(code: str, *args: str, endpoint_url: str) -> tuple[int, str, str, float]:
    script = await Script.start(code, *args, endpoint_url=endpoint_url)
    return await script.finish()


async def run_command(*args: str, endpoint_url: str) -> tuple[int, str, str, float]:
    code = "import sys; from aqueuepipe.cli import main; sys.exit(main(sys.argv[1:]))"
    return await run_script(code, *args, endpoint_url=endpoint_url)


# Copies with a one-second deadline; "inotify=off" takes the fallback wait.
WAIT_FOR = """
import asyncio, sys, time
import aqueuepipe.local._special
from aqueuepipe import copy
if sys.argv[3] == "inotify=off":
    aqueuepipe.local._special._watch_opens = lambda path: None
async def main():
    try:
        await asyncio.wait_for(copy(sys.argv[1], sys.argv[2]), 1)
    except TimeoutError:
        print("TimeoutError", flush=True)
asyncio.run(main())
print("asyncio.run returned", flush=True)
"""

INOTIFY = pytest.mark.parametrize("inotify", ["inotify=on", "inotify=off"])


async def test_wait_for_a_fifo_source_without_writer_returns(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    fifo = make_fifo(tmp_path / "in")
    status, out, err, seconds = await run_script(
        WAIT_FOR, str(fifo), f"s3://{bucket}/k", "inotify=on", endpoint_url=endpoint
    )
    assert (status, out) == (0, "TimeoutError\nasyncio.run returned\n"), err
    assert seconds < PROMPT
    assert await open_uploads(s3_client, bucket) == []
    assert not await key_exists(s3_client, bucket, "k")


@INOTIFY
async def test_wait_for_a_fifo_destination_without_reader_returns(
    inotify: str, endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"k": payload(64 * 1024, seed=1)})
    fifo = make_fifo(tmp_path / "out")
    status, out, err, seconds = await run_script(
        WAIT_FOR, f"s3://{bucket}/k", str(fifo), inotify, endpoint_url=endpoint
    )
    assert (status, out) == (0, "TimeoutError\nasyncio.run returned\n"), err
    assert seconds < PROMPT
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@SIGNALS
async def test_signal_while_a_fifo_source_has_no_writer_ends_the_command(
    signum: signal.Signals,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    fifo = make_fifo(tmp_path / "in")
    async with OpenWatch(fifo) as watch:
        command = await start_command(
            "cp", str(fifo), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url
        )
        await command.wait_for(watch.opened)  # it waits for a writer now

        command.process.send_signal(signum)
        signalled = time.monotonic()

        assert await command.finish() == EXIT_STATUS[signum]
    assert time.monotonic() - signalled < PROMPT
    assert command.stderr == MESSAGE[signum]
    assert await open_uploads(s3_client, bucket) == []
    assert not await key_exists(s3_client, bucket, "k")


@SIGNALS
async def test_signal_while_a_fifo_destination_has_no_reader_ends_the_command(
    signum: signal.Signals,
    moto_server: MotoServer,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket(objects={"k": payload(3 * MiB, seed=2)})
    fifo = make_fifo(tmp_path / "out")
    async with OpenWatch(fifo) as watch:
        command = await start_command(
            "cp", f"s3://{bucket}/k", str(fifo), endpoint_url=moto_server.endpoint_url
        )
        await command.wait_for(watch.opened)  # it holds the write end, waiting for a reader

        command.process.send_signal(signum)
        signalled = time.monotonic()

        assert await command.finish() == EXIT_STATUS[signum]
    assert time.monotonic() - signalled < PROMPT
    assert command.stderr == MESSAGE[signum]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _tree(root: Path) -> Path:
    """``root/tree`` with two regular files and a FIFO (``sub/pipe``)."""
    tree = root / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha")
    (tree / "sub" / "b.txt").write_bytes(b"beta")
    os.mkfifo(tree / "sub" / "pipe")
    return tree


async def _keys(client: S3Client, bucket: str) -> list[str]:
    listed = await client.list_objects_v2(Bucket=bucket)
    return sorted(entry["Key"] for entry in listed.get("Contents", []))


@pytest.mark.parametrize("verb", [("cp", "-r"), ("sync",)], ids=["cp-r", "sync"])
async def test_tree_with_a_fifo_copies_the_files_and_reports_the_fifo_not_copied(
    verb: tuple[str, ...],
    endpoint: str,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    tree = _tree(tmp_path)
    async with OpenWatch(tree / "sub" / "pipe") as watch:
        status, out, err, _ = await run_command(
            *verb, str(tree), f"s3://{bucket}/p/", endpoint_url=endpoint
        )
        assert not watch.check()  # never opened
    # A file that was not copied fails the run, as it did before FIFOs were
    # streams: "skipped" means "already there" in results and summaries.
    assert status == 1, err
    reason = "special file (a FIFO), not copied"
    assert err == f"error: {tree}/sub/pipe -> s3://{bucket}/p/sub/pipe: {reason}\n"
    assert out.startswith("copied 2 objects (9 B)") and ", 1 failed" in out.splitlines()[0]
    assert await _keys(s3_client, bucket) == ["p/a.txt", "p/sub/b.txt"]


COPY_MANY = """
import asyncio, json, sys
from aqueuepipe import TransferError, copy_many
async def main():
    async for r in copy_many([(sys.argv[1], sys.argv[2])], recursive=True):
        error = r.error
        print(json.dumps({
            "src": r.src, "dst": r.dst, "ok": r.ok,
            "error": None if error is None else type(error).__name__,
            "reason": getattr(error, "reason", None), "side": getattr(error, "side", None),
        }), flush=True)
asyncio.run(main())
"""


def _results(out: str) -> dict[str, dict[str, Any]]:
    """The printed results by source name (its last path segment)."""
    results = [json.loads(line) for line in out.splitlines()]
    return {result["src"].rsplit("/", 1)[-1]: result for result in results}


async def test_recursive_upload_gives_a_fifo_a_result_of_its_own(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    tree = _tree(tmp_path)
    status, out, err, _ = await run_script(
        COPY_MANY, str(tree), f"s3://{bucket}/p/", endpoint_url=endpoint
    )
    assert status == 0, err
    results = _results(out)
    assert sorted(results) == ["a.txt", "b.txt", "pipe"]
    assert results["a.txt"]["ok"] and results["b.txt"]["ok"]
    assert results["pipe"] == {
        "src": str(tree / "sub" / "pipe"),
        "dst": f"s3://{bucket}/p/sub/pipe",
        "ok": False,
        "error": "TransferError",
        "reason": "special file (a FIFO), not copied",
        "side": "source",
    }


async def test_recursive_download_never_writes_into_a_fifo(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket(objects={"p/a.txt": b"alpha", "p/pipe": b"for a regular file"})
    down = tmp_path / "down"
    down.mkdir()
    os.mkfifo(down / "pipe")
    async with OpenWatch(down / "pipe") as watch:
        status, out, err, _ = await run_script(
            COPY_MANY, f"s3://{bucket}/p/", str(down), endpoint_url=endpoint
        )
        assert not watch.check()
    assert status == 0, err
    results = _results(out)
    assert results["a.txt"]["ok"] and (down / "a.txt").read_bytes() == b"alpha"
    assert results["pipe"]["reason"] == "special file (a FIFO), not copied"
    assert results["pipe"]["side"] == "destination"
    assert stat.S_ISFIFO((down / "pipe").stat().st_mode)


COPY = """
import asyncio, sys
import aqueuepipe.local._special
from aqueuepipe import copy
if sys.argv[3] == "inotify=off":
    aqueuepipe.local._special._watch_opens = lambda path: None
result = asyncio.run(copy(sys.argv[1], sys.argv[2]))
print(result.size, flush=True)
"""


@INOTIFY
async def test_fifo_destination_is_written_to_a_reader_that_comes_later(
    inotify: str, endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    data = payload(3 * MiB, seed=3)
    bucket = await make_bucket(objects={"k": data})
    fifo = make_fifo(tmp_path / "out")
    received: list[bytes] = []
    async with OpenWatch(fifo) as watch:
        script = await Script.start(
            COPY, f"s3://{bucket}/k", str(fifo), inotify, endpoint_url=endpoint
        )
        try:
            if inotify == "inotify=on":
                await watch.wait()  # the copy holds the write end and waits
            reader = read_fifo(fifo, received)
            status, out, err, _ = await script.finish()
        finally:
            await script.kill()
    await asyncio.to_thread(reader.join, HANG)
    assert (status, out) == (0, f"{len(data)}\n"), err
    assert received == [data]


async def test_fifo_source_is_read_from_a_writer_that_comes_later(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    data = payload(9 * MiB, seed=4)
    fifo = make_fifo(tmp_path / "in")

    async with OpenWatch(fifo) as watch:
        script = await Script.start(
            COPY, str(fifo), f"s3://{bucket}/k", "inotify=on", endpoint_url=endpoint
        )
        try:
            # The copy has the FIFO open, with no writer yet: not an empty stream.
            await watch.wait()
            writer = write_fifo(fifo, data)
            status, out, err, _ = await script.finish()
        finally:
            await script.kill()
    await asyncio.to_thread(writer.join, HANG)
    assert (status, out) == (0, f"{len(data)}\n"), err
    assert await get(s3_client, bucket, "k") == data


async def test_null_device_destination_takes_the_object(
    endpoint: str, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket(objects={"k": payload(MiB, seed=5)})
    result = await copy(f"s3://{bucket}/k", "/dev/null")
    assert result.ok and result.size == MiB


async def test_null_device_source_uploads_an_empty_object(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    result = await copy("/dev/null", f"s3://{bucket}/empty")
    assert result.size == 0
    assert await get(s3_client, bucket, "empty") == b""
