"""``aqueuepipe sync``, run as users run it (a subprocess), counted at the server.

The command runs :func:`aqueuepipe.sync`: decided from the two listings, with
``--delete``, ``--dry-run``, ``--exclude``/``--include`` in command-line order,
``--checksum`` and ``--size-only``.  What it asks of the server is read from the
moto server's own per-operation counter, never from the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from aqueuepipe.cli import main
from aqueuepipe.s3 import S3Client

from ._commands import EXIT_STATUS, MESSAGE, SIGNALS, hold
from ._helpers import MakeBucket, MiB, MotoServer, get, open_uploads, payload
from .conftest import StartCommand
from .faultproxy import MAX_STALL_SECONDS, Exchange, FaultProxy, Match

#: The requests that write or delete at the server.
WRITES = frozenset(
    {
        "PutObject",
        "CopyObject",
        "UploadPart",
        "UploadPartCopy",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "DeleteObject",
        "DeleteObjects",
    }
)


Sync = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture
def sync(start_command: StartCommand, moto_server: MotoServer) -> Sync:
    """``await sync(*args, status=0)``: run ``aqueuepipe sync ARGS`` against the moto
    server, check its exit status, return its standard output and standard error."""

    async def run(*args: str, status: int = 0) -> tuple[str, str]:
        command = await start_command("sync", *args, endpoint_url=moto_server.endpoint_url)
        assert await command.finish() == status, (command.stdout, command.stderr)
        return command.stdout, command.stderr

    return run


async def keys(client: S3Client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix``, relative to it, with its bytes."""
    listed = await client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    names = sorted(str(o["Key"]) for o in listed.get("Contents", []))
    return {name[len(prefix) :]: await get(client, bucket, name) for name in names}


def writes(moto_server: MotoServer) -> dict[str, int]:
    return {op: n for op, n in moto_server.requests().counts.items() if op in WRITES}


def error_lines(stderr: str) -> list[str]:
    """The lines of argparse's usage error that are not the usage itself."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("usage: aqueuepipe sync"), stderr
    return [line for line in lines if line.startswith("aqueuepipe sync: error:")]


# -- the changes case of issue 20 --------------------------------------------------------

OBJECTS = {f"f{n:02d}.bin": payload(200 + n, seed=n) for n in range(30)}
REMOVED = [f"f{n:02d}.bin" for n in range(10)]  # gone from the source
OVERWRITTEN = [f"f{n:02d}.bin" for n in (10, 11, 12)]  # same size, other bytes
ADDED = {f"new/{n}.bin": payload(50 + n, seed=100 + n) for n in range(5)}


class Synced(NamedTuple):
    src_bucket: str
    dst_bucket: str
    src: str
    dst: str


@pytest.fixture
async def changed_since_last_sync(
    sync: Sync, moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> Synced:
    """Two prefixes synced by the command, then 10 objects deleted at the source, 3
    overwritten with the same size and 5 added; the server's counts start from there."""
    src_bucket = await make_bucket(objects={f"p/{k}": v for k, v in OBJECTS.items()})
    dst_bucket = await make_bucket()
    src, dst = f"s3://{src_bucket}/p/", f"s3://{dst_bucket}/q/"
    await sync(src, dst)
    assert await keys(s3_client, dst_bucket, "q/") == OBJECTS
    for name in REMOVED:
        await s3_client.delete_object(Bucket=src_bucket, Key=f"p/{name}")
    for name in OVERWRITTEN:
        other = bytes(b ^ 0xFF for b in OBJECTS[name])
        await s3_client.put_object(Bucket=src_bucket, Key=f"p/{name}", Body=other)
    for name, data in ADDED.items():
        await s3_client.put_object(Bucket=src_bucket, Key=f"p/{name}", Body=data)
    moto_server.reset_requests()
    return Synced(src_bucket, dst_bucket, src, dst)


async def test_sync_delete_dry_run_prints_the_plan_and_writes_nothing(
    sync: Sync,
    moto_server: MotoServer,
    s3_client: S3Client,
    changed_since_last_sync: Synced,
) -> None:
    _, dst_bucket, src, dst = changed_since_last_sync
    out, _ = await sync(src, dst, "--delete", "--dry-run")
    assert writes(moto_server) == {}
    copies = sorted(OVERWRITTEN + list(ADDED))
    planned = [line for line in out.splitlines() if line.startswith("(dry run)")]
    assert sorted(planned) == sorted(
        [f"(dry run) copy: {src}{name} -> {dst}{name}" for name in copies]
        + [f"(dry run) delete: {dst}{name}" for name in REMOVED]
    )
    assert "dry run: would copy 8 objects" in out
    assert "and delete 10 objects; 17 skipped (already there), 0 failed" in out
    assert await keys(s3_client, dst_bucket, "q/") == OBJECTS  # untouched


async def test_sync_delete_makes_exactly_the_changes_and_the_destination_equals_the_source(
    sync: Sync,
    moto_server: MotoServer,
    s3_client: S3Client,
    changed_since_last_sync: Synced,
) -> None:
    src_bucket, dst_bucket, src, dst = changed_since_last_sync
    out, _ = await sync(src, dst, "--delete")
    counted = writes(moto_server)
    assert counted.get("PutObject", 0) + counted.get("CopyObject", 0) == 8, counted
    assert counted.get("DeleteObjects") == 1 and "DeleteObject" not in counted, counted
    assert "copied 8 objects" in out
    assert "17 skipped (already there), 10 deleted, 0 failed" in out
    assert await keys(s3_client, dst_bucket, "q/") == await keys(s3_client, src_bucket, "p/")


async def test_sync_rerun_with_nothing_changed_makes_only_listings(
    sync: Sync,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
) -> None:
    """Also without a trailing '/': telling a prefix from an object costs a listing."""
    src_bucket = await make_bucket(objects={f"p/{k}": v for k, v in OBJECTS.items()})
    dst_bucket = await make_bucket()
    src, dst = f"s3://{src_bucket}/p", f"s3://{dst_bucket}/q"
    await sync(src, dst)
    moto_server.reset_requests()
    out, _ = await sync(src, dst, "--delete")
    assert set(moto_server.requests().counts) == {"ListObjectsV2"}, moto_server.requests().counts
    assert "copied 0 objects" in out and "30 skipped (already there), 0 deleted" in out


# -- filters and comparisons -------------------------------------------------------------

FILES = {"a.txt": b"alpha", "b.bin": b"beta", "dir/c.txt": b"gamma", "dir/d.log": b"delta"}


@pytest.mark.parametrize(
    ("filters", "held"),
    [
        (("--include", "*.txt", "--exclude", "*"), ["dir/gone.txt", "keep.bin"]),
        (("--exclude", "*", "--include", "*.txt"), ["a.txt", "dir/c.txt", "keep.bin"]),
        (
            ("--exclude", "*", "--include", "*.txt", "--exclude", "dir/*"),
            ["a.txt", "dir/gone.txt", "keep.bin"],
        ),
        (
            ("--exclude", "dir/*", "--include", "*.log"),
            ["a.txt", "b.bin", "dir/d.log", "dir/gone.txt"],
        ),
    ],
    ids=["include-then-exclude", "exclude-then-include", "three", "log-back"],
)
async def test_sync_filters_the_later_one_winning(
    sync: Sync,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    filters: tuple[str, ...],
    held: list[str],
) -> None:
    """aws cli's rule, for copies and --delete alike: the last filter that matches
    a key decides, and a key left out is neither copied nor deleted."""
    src = await make_bucket(objects=FILES)
    dst = await make_bucket(objects={"keep.bin": b"k", "dir/gone.txt": b"g"})
    await sync(f"s3://{src}/", f"s3://{dst}/", "--delete", *filters)
    assert sorted(await keys(s3_client, dst)) == held


async def test_sync_size_only_skips_an_object_of_the_same_size(
    sync: Sync,
    s3_client: S3Client,
    make_bucket: MakeBucket,
) -> None:
    src = await make_bucket(objects={"a": b"alpha", "b": b"beta"})
    dst = await make_bucket(objects={"a": b"ALPHA", "b": b"BETA!"})
    out, _ = await sync(f"s3://{src}/", f"s3://{dst}/", "--size-only")
    assert await keys(s3_client, dst) == {"a": b"ALPHA", "b": b"beta"}
    assert "copied 1 object" in out and "1 skipped (already there)" in out


async def test_sync_checksum_copies_a_file_of_the_same_size_and_an_older_time(
    sync: Sync,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    """Size and time call the file unchanged; its content says otherwise.

    The files' times are set in the past: LastModified has whole seconds, so a file
    written in the second of its upload would look newer than its copy."""
    (tmp_path / "a.txt").write_bytes(b"alpha")
    (tmp_path / "b.txt").write_bytes(b"beta")
    for name in ("a.txt", "b.txt"):
        os.utime(tmp_path / name, (1_000_000_000, 1_000_000_000))  # 2001
    bucket = await make_bucket()
    dst = f"s3://{bucket}/up/"
    await sync(str(tmp_path), dst)
    (tmp_path / "a.txt").write_bytes(b"ALPHA")
    os.utime(tmp_path / "a.txt", (1_000_000_000, 1_000_000_000))  # older than its copy
    out, _ = await sync(str(tmp_path), dst)
    assert "copied 0 objects" in out
    out, _ = await sync(str(tmp_path), dst, "--checksum")
    assert "copied 1 object" in out and "1 skipped (already there)" in out
    assert await keys(s3_client, bucket, "up/") == {"a.txt": b"ALPHA", "b.txt": b"beta"}


def test_sync_checksum_and_size_only_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sync", "--checksum", "--size-only", "s3://b-1/p/", "s3://b-2/p/"]) == 2
    assert "not allowed with argument --checksum" in capsys.readouterr().err


async def test_sync_json_lines_say_planned_then_deleted(
    sync: Sync,
    make_bucket: MakeBucket,
) -> None:
    src = await make_bucket(objects={"new": b"n"})
    dst = await make_bucket(objects={"old": b"o"})
    urls = (f"s3://{src}/", f"s3://{dst}/")
    runs: list[list[dict[str, Any]]] = []
    for flags in (("--dry-run",), ()):
        out, _ = await sync(*urls, "--delete", "--json", *flags)
        runs.append([json.loads(line) for line in out.splitlines()])
    fields = [
        [(line["src"], line["dst"], line["planned"], line["deleted"]) for line in lines]
        for lines in runs
    ]
    assert fields == [
        [(f"{urls[0]}new", f"{urls[1]}new", True, False), ("", f"{urls[1]}old", True, False)],
        [(f"{urls[0]}new", f"{urls[1]}new", False, False), ("", f"{urls[1]}old", False, True)],
    ]


async def test_sync_from_a_missing_bucket_fails_with_one_line_and_deletes_nothing(
    sync: Sync,
    s3_client: S3Client,
    make_bucket: MakeBucket,
) -> None:
    """A listing that fails ends the sync as a failed copy (exit 1), not a traceback."""
    dst = await make_bucket(objects={"q/old": b"o"})
    src = f"s3://missing-{dst}/p/"
    out, err = await sync(src, f"s3://{dst}/q/", "--delete", status=1)
    [line] = err.splitlines()
    assert line.startswith(f"error: {src} -> s3://{dst}/q/: ")
    assert f"source bucket 'missing-{dst}' does not exist" in line
    assert ", 0 deleted, 1 failed" in out
    assert await keys(s3_client, dst) == {"q/old": b"o"}


# -- usage errors ------------------------------------------------------------------------


async def test_sync_from_an_object_url_is_a_usage_error(
    sync: Sync,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
) -> None:
    src = await make_bucket(objects={"k": b"an object"})
    dst = await make_bucket(objects={"q/old": b"o"})
    moto_server.reset_requests()
    out, err = await sync(f"s3://{src}/k", f"s3://{dst}/q/", "--delete", status=2)
    assert error_lines(err) == [
        f"aqueuepipe sync: error: sync copies a prefix or a directory: 's3://{src}/k' "
        "is an object; use cp (or end the URL with '/' for the prefix)"
    ]
    assert out == ""
    assert writes(moto_server) == {}
    assert await keys(s3_client, dst) == {"q/old": b"o"}


async def test_sync_from_a_prefix_named_without_a_slash_is_no_object(
    sync: Sync,
    s3_client: S3Client,
    make_bucket: MakeBucket,
) -> None:
    """``s3://b/p`` is the prefix ``p/``, even when an object ``p`` exists too."""
    src = await make_bucket(objects={"p": b"an object", "p/a": b"a"})
    dst = await make_bucket()
    await sync(f"s3://{src}/p", f"s3://{dst}/q")
    assert await keys(s3_client, dst) == {"q/a": b"a"}


@pytest.mark.parametrize("side", ["source", "destination"])
async def test_sync_with_a_local_file_is_a_usage_error(
    sync: Sync,
    moto_server: MotoServer,
    make_bucket: MakeBucket,
    tmp_path: Path,
    side: str,
) -> None:
    bucket = await make_bucket(objects={"p/a": b"a", "p/a/b": b"b"})
    file = tmp_path / "file"
    file.write_bytes(b"x")
    args = (str(file), f"s3://{bucket}/p/")
    if side == "destination":
        args = args[::-1]
    moto_server.reset_requests()
    _, err = await sync(*args, status=2)
    into = "into " if side == "destination" else ""
    assert error_lines(err) == [
        f"aqueuepipe sync: error: sync copies {into}a prefix or a directory: "
        f"'{file}' is a file; use cp"
    ]
    assert file.read_bytes() == b"x"
    assert writes(moto_server) == {}


async def test_sync_from_a_missing_directory_is_a_usage_error(
    sync: Sync,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
) -> None:
    """With --delete it would otherwise empty the destination."""
    bucket = await make_bucket(objects={"p/a": b"a"})
    missing = tmp_path / "typo"
    _, err = await sync(str(missing), f"s3://{bucket}/p/", "--delete", status=2)
    assert error_lines(err) == [
        f"aqueuepipe sync: error: sync copies a directory: '{missing}' does not exist"
    ]
    assert await keys(s3_client, bucket) == {"p/a": b"a"}


@pytest.mark.parametrize(
    "args", [["-", "s3://b-1/p/"], ["s3://b-1/p/", "-"]], ids=["stdin", "stdout"]
)
def test_sync_with_standard_input_or_output_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(["sync", *args]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [
        "aqueuepipe sync: error: '-' (standard input or output) is one stream: sync does not apply"
    ]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--delete"], "--delete"),
        (["--dry-run"], "--dry-run"),
        (["--exclude", "*.tmp"], "--exclude/--include"),
        (["--include", "*.txt"], "--exclude/--include"),
        (["--checksum"], "--checksum"),
        (["--size-only"], "--size-only"),
    ],
)
@pytest.mark.parametrize("cluster", [["--dask", "2"], ["--scheduler", "tcp://127.0.0.1:1"]])
def test_sync_options_of_listings_on_a_cluster_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], flags: list[str], named: str, cluster: list[str]
) -> None:
    assert main(["sync", *cluster, *flags, "s3://b-1/p/", "s3://b-2/p/"]) == 2
    assert error_lines(capsys.readouterr().err) == [
        f"aqueuepipe sync: error: {named} is not supported with --scheduler or --dask"
    ]


# -- signals -----------------------------------------------------------------------------


@SIGNALS
async def test_sync_delete_stopped_by_a_signal_aborts_its_upload_and_deletes_nothing(
    signum: signal.Signals,
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    (tmp_path / "big.bin").write_bytes(payload(24 * MiB, seed=3))  # three 8 MiB parts
    bucket = await make_bucket(objects={"p/extra": b"e"})
    arrived = hold(fault_proxy, "UploadPart", times=None)
    command = await start_command(
        "sync",
        str(tmp_path),
        f"s3://{bucket}/p/",
        "--delete",
        endpoint_url=fault_proxy.endpoint_url,
    )
    await command.wait_for(arrived)
    assert [upload["Key"] for upload in await open_uploads(s3_client, bucket)] == ["p/big.bin"]

    command.process.send_signal(signum)

    assert await command.finish() == EXIT_STATUS[signum]
    assert command.stderr == MESSAGE[signum]
    assert await open_uploads(s3_client, bucket) == []
    assert await keys(s3_client, bucket) == {"p/extra": b"e"}
    assert not fault_proxy.exchanges("DeleteObjects")


# -- resume ------------------------------------------------------------------------------


async def test_sync_resume_after_sigint_continues_the_upload_it_kept(
    fault_proxy: FaultProxy,
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    """Parts 1 to 4 of eight are stored, 5 to 8 held at the proxy; SIGINT keeps the
    upload and its journal, and ``sync --resume`` sends only what the server lacks."""
    size = 40 * MiB
    source = tmp_path / "source"
    source.mkdir()
    body = payload(size, seed=41)
    (source / "big.bin").write_bytes(body)
    bucket = await make_bucket()
    journal_dir = tmp_path / "journals"
    held: list[Exchange] = []
    all_held = asyncio.Event()

    def seen(exchange: Exchange) -> bool:
        held.append(exchange)
        if len(held) == 4:  # parts 5 to 8 all sent: 1 to 4 are done
            all_held.set()
        return True

    fault_proxy.stall(
        Match(operation="UploadPart", query=r"partNumber=[5-8](&|$)", where=seen),
        seconds=MAX_STALL_SECONDS,
        times=None,
    )
    args = (
        "sync",
        "--resume",
        "--journal-dir",
        str(journal_dir),
        "--part-size",
        "5MiB",
        "--part-concurrency",
        "4",
        str(source),
        f"s3://{bucket}/p/",
    )
    moto_server.reset_requests()
    command = await start_command(*args, endpoint_url=fault_proxy.endpoint_url)
    await command.wait_for(all_held)

    command.process.send_signal(signal.SIGINT)

    assert await command.finish() == EXIT_STATUS[signal.SIGINT]
    assert "is kept open" in command.stderr and "--resume" in command.stderr
    assert [upload["Key"] for upload in await open_uploads(s3_client, bucket)] == ["p/big.bin"]
    first = moto_server.requests().bytes.get("UploadPart", 0)

    fault_proxy.clear()
    again = await start_command(*args, endpoint_url=fault_proxy.endpoint_url)
    assert await again.finish() == 0, again.stderr
    total = moto_server.requests().bytes.get("UploadPart", 0)
    print(f"UploadPart bytes at the server: {first} + {total - first} = {total} of {size}")
    assert await get(s3_client, bucket, "p/big.bin") == body
    assert total <= 1.3 * size, f"{first} then {total - first} bytes sent for {size}"
    assert await open_uploads(s3_client, bucket) == []
    assert list(journal_dir.glob("*.json")) == []
