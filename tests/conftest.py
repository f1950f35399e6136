"""Shared fixtures: fake AWS credentials and real moto S3 servers in separate processes.

Every test talks HTTP to a moto server process, as users talk to S3: nothing is
patched in-process.  The environment is scrubbed of real AWS settings for the whole
session, so no test can reach real AWS by accident.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

import pytest
import pytest_asyncio

from aqueuepipe.s3 import S3Client, create_client

from .faultproxy import FaultProxy

FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What os.environ holds for AWS during the tests (every other AWS_* is removed)."""

# Nothing outside the environment may configure botocore either: no shared config or
# credentials files (they can set endpoints, profiles, credential processes) and no
# instance metadata lookups (slow, and real credentials on a cloud machine).
_ISOLATION = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}

SMALL_PARTS_MIN_SIZE = 1024
"""``S3_UPLOAD_PART_MIN_SIZE`` of the ``moto_server_small_parts`` server, in bytes."""

# What the server process runs: ``python -m moto.server`` less one header.  Werkzeug
# sends "Server: Werkzeug/..." and moto its own "Server: amazon.com"; aiohttp's strict
# parser, on in Python's dev mode and under PYTHONASYNCIODEBUG, rejects a response
# with two Server headers, which would fail every request in an asyncio debug run.
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


def _test_environment(base: Mapping[str, str]) -> dict[str, str]:
    env = {name: value for name, value in base.items() if not name.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(_ISOLATION)
    return env


@pytest.fixture(scope="session", autouse=True)
def fake_aws_environment() -> Iterator[Mapping[str, str]]:
    """Replace every ``AWS_*`` variable with fake credentials for the whole session.

    Removes ``AWS_PROFILE``, real keys, session tokens, endpoint overrides and the
    shared config files; yields the AWS variables that are set.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                mp.delenv(name)
        for name, value in {**FAKE_CREDENTIALS, **_ISOLATION}.items():
            mp.setenv(name, value)
        yield {name: value for name, value in os.environ.items() if name.startswith("AWS_")}


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
    env = _test_environment(os.environ)
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


@pytest.fixture(scope="session")
def moto_server(fake_aws_environment: Mapping[str, str]) -> Iterator[MotoServer]:
    """The session's main moto S3 server (S3's real 5 MiB minimum part size)."""
    with start_moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server_b(fake_aws_environment: Mapping[str, str]) -> Iterator[MotoServer]:
    """A second, independent moto server, for copies between two endpoints."""
    with start_moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_server_small_parts(fake_aws_environment: Mapping[str, str]) -> Iterator[MotoServer]:
    """A moto server that accepts multipart parts down to ``SMALL_PARTS_MIN_SIZE`` bytes."""
    with start_moto_server({"S3_UPLOAD_PART_MIN_SIZE": str(SMALL_PARTS_MIN_SIZE)}) as server:
        yield server


@pytest.fixture(scope="session")
def moto_server_with_auth(fake_aws_environment: Mapping[str, str]) -> Iterator[MotoServer]:
    """A moto server that authenticates every request (``INITIAL_NO_AUTH_ACTION_COUNT=0``).

    Access keys unknown to its IAM get ``InvalidAccessKeyId``, as on AWS.
    """
    with start_moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        yield server


@pytest.fixture
def unreachable_endpoint() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest_asyncio.fixture
async def s3_client(moto_server: MotoServer) -> AsyncIterator[S3Client]:
    """An aiobotocore client of ``moto_server``, closed after the test."""
    async with create_client(endpoint_url=moto_server.endpoint_url) as client:
        yield client


@pytest_asyncio.fixture
async def s3_client_b(moto_server_b: MotoServer) -> AsyncIterator[S3Client]:
    """An aiobotocore client of ``moto_server_b``, closed after the test."""
    async with create_client(endpoint_url=moto_server_b.endpoint_url) as client:
        yield client


MakeBucket = Callable[..., Awaitable[str]]


@pytest_asyncio.fixture
async def make_bucket(s3_client: S3Client) -> MakeBucket:
    """``await make_bucket()`` creates a bucket with a fresh name and returns the name.

    ``make_bucket(client=s3_client_b)`` creates it on another server; ``prefix=``
    sets the start of the name (a uuid follows, so tests never share a bucket).
    """

    async def make(*, client: S3Client | None = None, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"[:63]
        await (client or s3_client).create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def boto3_client(moto_server: MotoServer) -> Iterator[Any]:
    """A synchronous boto3 client of ``moto_server``, for checking what the code wrote."""
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    try:
        yield client
    finally:
        client.close()


# Fault injection: a proxy between the client and the moto server process.


@pytest_asyncio.fixture
async def fault_proxy(moto_server: MotoServer) -> AsyncIterator[FaultProxy]:
    """A :class:`~tests.faultproxy.FaultProxy` in front of ``moto_server``, closed after the test.

    Point a client at ``fault_proxy.endpoint_url``; script faults with
    ``fault_proxy.fail(...)``, ``.reset(...)``, ``.stall(...)``...; read
    ``fault_proxy.log``.  For another server, ``async with FaultProxy(url) as proxy``.
    """
    async with FaultProxy(moto_server.endpoint_url) as proxy:
        yield proxy
