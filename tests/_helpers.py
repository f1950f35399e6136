"""What the tests build with: moto server processes, bucket names, payloads, S3 reads.

Test modules import these from here, never from ``conftest.py`` or from one another;
``conftest.py`` makes its fixtures out of the same pieces.  Nothing here patches
anything: every helper talks HTTP to a moto server process, as users talk to S3.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import socket
import threading
import uuid
import zlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import RetryPolicy, TransferResult, copy, testing
from aqueuepipe.s3 import S3Client

MiB = 1024 * 1024

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.1, read_timeout=10)
"""Retries for tests that break requests on purpose: three attempts, little backoff."""

# -- the environment ----------------------------------------------------------------

FAKE_CREDENTIALS: Mapping[str, str] = testing.FAKE_CREDENTIALS
"""What os.environ holds for AWS during the tests (every other AWS_* is removed): the
credentials aqueuepipe.testing gives its users' tests."""

ISOLATION: Mapping[str, str] = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
"""Nothing outside the environment may configure botocore either: no shared config or
credentials files (they can set endpoints, profiles, credential processes) and no
instance metadata lookups (slow, and real credentials on a cloud machine)."""


def fake_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with every ``AWS_*`` variable replaced by the fake, isolated ones."""
    env = {name: value for name, value in base.items() if not name.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(ISOLATION)
    return env


# -- moto server processes ------------------------------------------------------------

# One launcher for tests, benchmarks, the demo and users: aqueuepipe.testing.
MotoServer = testing.MotoServer


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (bound to port 0, then closed).

    Nothing listens on it, so it serves as an unreachable endpoint.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def start_moto_server(
    env_extra: Mapping[str, str] | None = None, *, validate_digests: bool = False
) -> Iterator[MotoServer]:
    """A moto server process (:func:`aqueuepipe.testing.moto_server`) with moto's
    settings ``env_extra``; no AWS_* variable but fake credentials reaches it."""
    with testing.moto_server(env_extra, validate_digests=validate_digests) as server:
        yield server


# -- buckets and objects --------------------------------------------------------------

MakeBucket = Callable[..., Awaitable[str]]
"""The ``make_bucket`` fixture: ``await make_bucket(client=..., prefix=..., objects=...)`` -> a
new name, holding ``objects`` ({key: data}) if given."""


def bucket_name(prefix: str = "test") -> str:
    """A bucket name no other test uses: ``prefix``, a dash and a uuid, cut to 63 characters."""
    return f"{prefix}-{uuid.uuid4().hex}"[:63]


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


def write_payload(path: Path, size: int, seed: int = 0) -> bytes:
    """Write ``payload(size, seed)`` to the file ``path`` and return those bytes."""
    data = payload(size, seed)
    path.write_bytes(data)
    return data


def make_fifo(path: Path) -> Path:
    """A named pipe made at ``path``."""
    os.mkfifo(path)
    return path


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` as an async iterable of ``size``-byte pieces (the last one shorter)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def put(client: S3Client, bucket: str, key: str, data: bytes) -> None:
    await client.put_object(Bucket=bucket, Key=key, Body=data)


async def get(client: S3Client, bucket: str, key: str, **kwargs: Any) -> bytes:
    """The whole body of ``bucket/key``; ``kwargs`` go to GetObject (``Range=``...)."""
    response = await client.get_object(Bucket=bucket, Key=key, **kwargs)
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


async def open_uploads(client: S3Client, bucket: str) -> list[Any]:
    """The multipart uploads started in ``bucket`` and neither completed nor aborted."""
    response = await client.list_multipart_uploads(Bucket=bucket)
    return list(response.get("Uploads", []))


async def key_exists(client: S3Client, bucket: str, key: str) -> bool:
    response = await client.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(obj["Key"] == key for obj in response.get("Contents", []))


def s3_checksum(algorithm: str, data: bytes) -> str:
    """S3's base64 ``CRC32`` or ``SHA256`` checksum of ``data``, computed with zlib
    and hashlib (not with aqueuepipe, whose checks the tests are proving)."""
    if algorithm == "CRC32":
        return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if algorithm == "SHA256":
        return base64.b64encode(hashlib.sha256(data).digest()).decode()
    raise ValueError(f"no reference checksum for {algorithm!r}")


async def upload_parts(
    client: S3Client, bucket: str, key: str, parts: Iterable[bytes], algorithm: str | None
) -> None:
    """Write ``bucket/key`` as a multipart upload of ``parts``, as boto3 would, each part
    with its S3 ``algorithm`` checksum (:func:`s3_checksum`) if one is given."""
    created = await client.create_multipart_upload(
        Bucket=bucket, Key=key, **({"ChecksumAlgorithm": algorithm} if algorithm else {})
    )
    done = []
    for number, chunk in enumerate(parts, start=1):
        extra = {f"Checksum{algorithm}": s3_checksum(algorithm, chunk)} if algorithm else {}
        response = await client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=chunk,
            **extra,
        )
        done.append({"PartNumber": number, "ETag": response["ETag"], **extra})
    await client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=created["UploadId"], MultipartUpload={"Parts": done}
    )


async def copy_streamed(src: str, dst: str, endpoint_url: str, **options: Any) -> TransferResult:
    """``copy`` with the :data:`FAST` retries, its bytes streamed through this process
    (``server_side=False``), so that a fault proxy at ``endpoint_url`` sees the body."""
    return await copy(
        src, dst, endpoint_url=endpoint_url, retries=FAST, server_side=False, **options
    )


async def collect(results: AsyncGenerator[TransferResult, None]) -> list[TransferResult]:
    """Every result of ``copy_many(...)``, the generator closed even if one raises."""
    async with contextlib.aclosing(results) as iterator:
        return [result async for result in iterator]


# -- FIFOs ----------------------------------------------------------------------------


def read_fifo(fifo: Path, into: list[bytes]) -> threading.Thread:
    """A started thread that reads ``fifo`` to its end into ``into``: a blocking
    reader, as ``cat fifo`` is (its open waits for a writer)."""
    return _started(lambda: into.append(fifo.read_bytes()))


def write_fifo(fifo: Path, data: bytes) -> threading.Thread:
    """A started thread that writes ``data`` into ``fifo`` and closes it (its open
    waits for a reader)."""
    return _started(lambda: fifo.write_bytes(data))


def _started(target: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# -- cancelling -----------------------------------------------------------------------


def progress_event() -> tuple[asyncio.Event, Callable[[str, str, int, int | None], None]]:
    """An event, and a ``progress=`` callback that sets it once a transfer reports bytes."""
    event = asyncio.Event()

    def on_progress(src: str, dst: str, done: int, total: int | None) -> None:
        if done > 0:
            event.set()

    return event, on_progress


async def cancel_and_check(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and check that it ends cancelled (neither finished nor failed)."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def cancel_once(started: asyncio.Event, run: Coroutine[Any, Any, object]) -> None:
    """Run ``run`` in a task, cancel it once ``started`` is set, and check it ends cancelled."""
    task = asyncio.create_task(run)
    await started.wait()
    await cancel_and_check(task)


async def interrupted(run: Any, after: int) -> None:
    """Run the copy ``run(progress)`` and cancel it once ``after`` bytes reached the
    destination (by its progress)."""
    reached = asyncio.Event()

    def on_progress(src: str, dst: str, done: int, total: int | None) -> None:
        if done >= after:
            reached.set()

    task = asyncio.create_task(run(on_progress))
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert not task.done(), "the copy ended before it could be interrupted"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
