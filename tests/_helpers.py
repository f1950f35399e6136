"""What the tests build with: moto server processes, bucket names, payloads, S3 reads.

Test modules import these from here, never from ``conftest.py`` or from one another;
``conftest.py`` makes its fixtures out of the same pieces.  Nothing here patches
anything: every helper talks HTTP to a moto server process, as users talk to S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import IO, Any

import pytest

from aqueuepipe import TransferResult
from aqueuepipe.s3 import S3Client

MiB = 1024 * 1024

# -- the environment ----------------------------------------------------------------

FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What os.environ holds for AWS during the tests (every other AWS_* is removed)."""

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

# What the server process runs: ``python -m moto.server`` less one header.  Werkzeug
# sends "Server: Werkzeug/..." and moto its own "Server: amazon.com"; aiohttp's strict
# parser, on in Python's dev mode and under PYTHONASYNCIODEBUG, rejects a response
# with two Server headers, which would fail every request in an asyncio debug run.
# (benchmarks/_server.py has its own copy: tests and benchmarks never import each other.)
_SERVER_MAIN = """
import sys
from moto import server
from moto.moto_server.werkzeug_app import MotoRequestHandler

def send_response(self, code, message=None):
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())

MotoRequestHandler.send_response = send_response
server.main(sys.argv[1:])
"""

_STARTUP_TIMEOUT = 30.0
_SHUTDOWN_TIMEOUT = 10.0


@dataclass(frozen=True)
class MotoServer:
    """A moto server process listening on ``endpoint_url``.

    ``settings`` are the extra environment variables it was started with.
    """

    endpoint_url: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    settings: Mapping[str, str]

    def reset(self) -> None:
        """Forget every bucket and object (``POST /moto-api/reset``).

        The servers are shared by the whole session; prefer fresh buckets from
        ``make_bucket`` to resetting, which would pull the rug from other tests.
        """
        status = _http_request(self.host, self.port, "POST", "/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset at {self.endpoint_url} answered HTTP {status}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (bound to port 0, then closed).

    Nothing listens on it, so it also serves as an unreachable endpoint.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def _http_request(host: str, port: int, method: str, path: str, timeout: float = 5.0) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-limit:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_SHUTDOWN_TIMEOUT)


@contextlib.contextmanager
def start_moto_server(env_extra: Mapping[str, str] | None = None) -> Iterator[MotoServer]:
    """Run moto's server (``python -m moto.server``) on a free loopback port until the block exits.

    The process gets the fake AWS environment plus ``env_extra``; moto reads its
    settings (``S3_UPLOAD_PART_MIN_SIZE``...) from the environment when it starts,
    which is why each setting needs its own process.  Waits (at most 30 s) until the
    server answers HTTP.  Its log goes to a temporary file, quoted if it fails to start.
    """
    host = "127.0.0.1"
    env = fake_environment(os.environ)
    env.update(env_extra or {})
    with tempfile.TemporaryFile() as log:
        # Another process may grab the port between free_port() and the server's
        # bind; then the server exits at once and we try another port.
        for _ in range(3):
            port = free_port(host)
            process = subprocess.Popen(
                [sys.executable, "-c", _SERVER_MAIN, "-H", host, "-p", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                if _wait_until_answering(process, host, port):
                    break
            except BaseException:
                _stop(process)
                raise
        else:
            raise RuntimeError(f"moto server did not start; its output:\n{_tail(log)}")
        try:
            yield MotoServer(f"http://{host}:{port}", host, port, process, dict(env_extra or {}))
        finally:
            _stop(process)


def _wait_until_answering(process: subprocess.Popen[bytes], host: str, port: int) -> bool:
    """True once the server answers HTTP, False if it exited; raises after 30 s."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            _http_request(host, port, "GET", "/moto-api/", timeout=1.0)
        except OSError:
            time.sleep(0.05)  # setup only: a bounded poll while the server starts
        else:
            return True
    _stop(process)
    raise RuntimeError(f"moto server on {host}:{port} did not answer within {_STARTUP_TIMEOUT} s")


# -- buckets and objects --------------------------------------------------------------

MakeBucket = Callable[..., Awaitable[str]]
"""The ``make_bucket`` fixture: ``await make_bucket(client=..., prefix=...)`` -> a new name."""


def bucket_name(prefix: str = "test") -> str:
    """A bucket name no other test uses: ``prefix``, a dash and a uuid, cut to 63 characters."""
    return f"{prefix}-{uuid.uuid4().hex}"[:63]


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


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


async def collect(results: AsyncGenerator[TransferResult, None]) -> list[TransferResult]:
    """Every result of ``copy_many(...)``, the generator closed even if one raises."""
    async with contextlib.aclosing(results) as iterator:
        return [result async for result in iterator]


# -- cancelling -----------------------------------------------------------------------


def progress_event() -> tuple[asyncio.Event, Callable[[str, str, int, int | None], None]]:
    """An event, and a ``progress=`` callback that sets it once a transfer reports bytes."""
    event = asyncio.Event()

    def on_progress(src: str, dst: str, done: int, total: int | None) -> None:
        if done > 0:
            event.set()

    return event, on_progress


async def cancel_once(started: asyncio.Event, run: Coroutine[Any, Any, object]) -> None:
    """Run ``run`` in a task, cancel it once ``started`` is set, and check it ends cancelled."""
    task = asyncio.create_task(run)
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
