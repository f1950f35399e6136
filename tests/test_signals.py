"""SIGINT and SIGTERM stop the command cleanly: cancellation, then cleanup.

Each test runs ``aqueuepipe cp`` in a subprocess against the moto server through
the fault proxy, which holds the copy at a known point (a part upload, a body
half sent) for as long as the test needs: the signal is sent when the proxy has
seen the request, so it always lands mid-copy, whatever the speed of the machine.
Afterwards the server holds no open multipart upload, the target directory no
temporary file, and the exit status is the signal's (130 for SIGINT, 143 for
SIGTERM).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from aqueuepipe.s3 import S3Client

from ._commands import EXIT_STATUS, HOLD_SECONDS, MESSAGE, SIGNALS, StartCommand, arrival, hold
from ._helpers import MakeBucket, MiB, get, key_exists, open_uploads, payload, write_payload
from .faultproxy import FaultProxy

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

TEMP_GLOB = ".*.aqueuepipe-part"


def big_file(directory: Path, size: int, seed: int) -> Path:
    """``directory/big.bin`` holding ``size`` bytes of payload ``seed``."""
    source = directory / "big.bin"
    write_payload(source, size, seed=seed)
    return source


@SIGNALS
async def test_signal_mid_upload_aborts_the_multipart_upload(
    signum: signal.Signals,
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    source = big_file(tmp_path, 24 * MiB, seed=1)  # three 8 MiB parts
    arrived = hold(fault_proxy, "UploadPart", times=None)
    command = await start_command(
        "cp", str(source), f"s3://{bucket}/big.bin", endpoint_url=fault_proxy.endpoint_url
    )
    await command.wait_for(arrived)
    under_way = await open_uploads(s3_client, bucket)
    assert [upload["Key"] for upload in under_way] == ["big.bin"]

    command.process.send_signal(signum)

    assert await command.finish() == EXIT_STATUS[signum]
    assert command.stderr == MESSAGE[signum]
    assert command.stdout == ""
    assert await open_uploads(s3_client, bucket) == []
    assert fault_proxy.exchanges("AbortMultipartUpload")
    assert not await key_exists(s3_client, bucket, "big.bin")
    assert source.exists()


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
    ids=["INT-INT", "TERM-INT"],
)
async def test_second_signal_during_cleanup_does_not_cut_it_short(
    first: signal.Signals,
    second: signal.Signals,
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    source = big_file(tmp_path, 9 * MiB, seed=5)
    part_arrived = hold(fault_proxy, "UploadPart", times=None)
    # The abort is held a moment, then reaches the server: the second signal
    # comes while the cleanup waits for it.
    abort_arrived = hold(fault_proxy, "AbortMultipartUpload", seconds=2, forward=True)
    command = await start_command(
        "cp", str(source), f"s3://{bucket}/big.bin", endpoint_url=fault_proxy.endpoint_url
    )
    await command.wait_for(part_arrived)
    command.process.send_signal(first)
    await command.wait_for(abort_arrived)

    command.process.send_signal(second)

    assert await command.finish() == EXIT_STATUS[first]
    assert command.stderr == MESSAGE[first]
    assert await open_uploads(s3_client, bucket) == []


@SIGNALS
async def test_signal_mid_download_removes_the_temporary_file(
    signum: signal.Signals,
    fault_proxy: FaultProxy,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket(objects={"k": payload(3_000_000, seed=2)})
    target_dir = tmp_path / "down"
    target_dir.mkdir()
    (target_dir / "out.bin").write_bytes(b"what was there before")
    body, arrived = arrival("GetObject")
    fault_proxy.delay_body(body, seconds=HOLD_SECONDS, after_bytes=1_000_000, times=None)
    command = await start_command(
        "cp",
        f"s3://{bucket}/k",
        str(target_dir / "out.bin"),
        endpoint_url=fault_proxy.endpoint_url,
    )
    await command.wait_for(arrived)
    # The temporary file is made before the object is asked for.
    assert len(list(target_dir.glob(TEMP_GLOB))) == 1

    command.process.send_signal(signum)

    assert await command.finish() == EXIT_STATUS[signum]
    assert command.stderr == MESSAGE[signum]
    assert sorted(path.name for path in target_dir.iterdir()) == ["out.bin"]
    assert (target_dir / "out.bin").read_bytes() == b"what was there before"


async def test_sigterm_mid_upload_from_standard_input_aborts_the_upload(
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
) -> None:
    # Standard input stays open and idle: the read of it that is in progress
    # must not keep the command from exiting.
    bucket = await make_bucket()
    arrived = hold(fault_proxy, "UploadPart", times=None)
    command = await start_command(
        "cp",
        "-",
        f"s3://{bucket}/from-stdin",
        endpoint_url=fault_proxy.endpoint_url,
        stdin=asyncio.subprocess.PIPE,
    )
    stdin = command.process.stdin
    assert stdin is not None
    stdin.write(payload(9 * MiB, seed=3))  # more than one part
    await stdin.drain()
    await command.wait_for(arrived)

    command.process.send_signal(signal.SIGTERM)

    assert await command.finish() == 143
    assert command.stderr == MESSAGE[signal.SIGTERM]
    assert await open_uploads(s3_client, bucket) == []
    assert not await key_exists(s3_client, bucket, "from-stdin")


async def test_sigint_during_complete_reports_the_object_written(
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    # The proxy holds CompleteMultipartUpload, the signal arrives, and then the
    # request goes on to the server, which writes the object.  The engine runs
    # the request to its end and reports the copy done: the command must not
    # say "interrupted", nor abort the completed upload.
    bucket = await make_bucket()
    source = big_file(tmp_path, 9 * MiB, seed=4)
    arrived = hold(fault_proxy, "CompleteMultipartUpload", seconds=3, forward=True)
    command = await start_command(
        "cp", str(source), f"s3://{bucket}/big.bin", endpoint_url=fault_proxy.endpoint_url
    )
    await command.wait_for(arrived)

    command.process.send_signal(signal.SIGINT)

    returncode = await command.finish()
    assert await get(s3_client, bucket, "big.bin") == source.read_bytes()
    assert "interrupted" not in command.stderr
    assert returncode == 0


@SIGNALS
async def test_signal_mid_upload_with_resume_keeps_the_upload_to_continue(
    signum: signal.Signals,
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    start_command: StartCommand,
    tmp_path: Path,
) -> None:
    bucket = await make_bucket()
    source = big_file(tmp_path, 24 * MiB, seed=2)
    journal_dir = tmp_path / "journals"
    dst = f"s3://{bucket}/big.bin"
    arrived = hold(fault_proxy, "UploadPart", times=None)
    args = ("cp", "--resume", "--journal-dir", str(journal_dir), str(source), dst)
    command = await start_command(*args, endpoint_url=fault_proxy.endpoint_url)
    await command.wait_for(arrived)

    command.process.send_signal(signum)

    assert await command.finish() == EXIT_STATUS[signum]
    assert "is kept open" in command.stderr and "--resume" in command.stderr
    (upload,) = await open_uploads(s3_client, bucket)
    assert upload["Key"] == "big.bin"
    assert (
        f"aqueuepipe uploads abort --upload-id {upload['UploadId']} "
        f"--endpoint-url {fault_proxy.endpoint_url} {dst}"
    ) in command.stderr
    assert len(list(journal_dir.glob("*.json"))) == 1

    fault_proxy.clear()
    again = await start_command(*args, endpoint_url=fault_proxy.endpoint_url)
    assert await again.finish() == 0, again.stderr
    assert await get(s3_client, bucket, "big.bin") == source.read_bytes()
    assert await open_uploads(s3_client, bucket) == []
    assert list(journal_dir.glob("*.json")) == []
