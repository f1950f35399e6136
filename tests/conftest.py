"""Shared fixtures: fake AWS credentials and real moto S3 servers in separate processes.

Every test talks HTTP to a moto server process, as users talk to S3: nothing is
patched in-process.  The environment is scrubbed of real AWS settings for the whole
session, so no test can reach real AWS by accident.

What the fixtures are made of (``MotoServer``, ``start_moto_server``, ``MakeBucket``,
payloads, S3 reads...) is in ``tests/_helpers.py``, which is where test modules import
it from.  The names this module imports from there stay importable from here for the
modules that still do so.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from aqueuepipe.s3 import S3Client, create_client

from ._commands import Command, StartCommand
from ._helpers import (
    FAKE_CREDENTIALS,
    ISOLATION,
    MakeBucket,
    MotoServer,
    bucket_name,
    free_port,
    start_moto_server,
)
from .faultproxy import FaultProxy

SMALL_PARTS_MIN_SIZE = 1024
"""``S3_UPLOAD_PART_MIN_SIZE`` of the ``moto_server_small_parts`` server, in bytes."""


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
        for name, value in {**FAKE_CREDENTIALS, **ISOLATION}.items():
            mp.setenv(name, value)
        yield {name: value for name, value in os.environ.items() if name.startswith("AWS_")}


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


@pytest.fixture(scope="session")
def validating_server(fake_aws_environment: Mapping[str, str]) -> Iterator[MotoServer]:
    """A moto server that refuses a body disagreeing with its digests (400 BadDigest),
    as Amazon S3, MinIO, Ceph and LocalStack do."""
    with start_moto_server(validate_digests=True) as server:
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


@pytest_asyncio.fixture
async def make_bucket(s3_client: S3Client) -> MakeBucket:
    """``await make_bucket()`` creates a bucket with a fresh name and returns the name.

    ``make_bucket(client=s3_client_b)`` creates it on another server; ``prefix=``
    sets the start of the name (a uuid follows, so tests never share a bucket);
    ``objects={key: data}`` puts those objects in it.
    """

    async def make(
        *,
        client: S3Client | None = None,
        prefix: str = "test",
        objects: Mapping[str, bytes] | None = None,
    ) -> str:
        name = bucket_name(prefix)
        client = client or s3_client
        await client.create_bucket(Bucket=name)
        for key, data in (objects or {}).items():
            await client.put_object(Bucket=name, Key=key, Body=data)
        return name

    return make


@pytest.fixture
def endpoint(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``moto_server``'s URL, also in ``AWS_ENDPOINT_URL`` for the test.

    Code that makes its own clients (``copy()``, ``copy_many()``, a Dask driver and
    its workers) finds the server there, as a user's code would.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server.endpoint_url


@pytest.fixture
async def start_command() -> AsyncIterator[StartCommand]:
    """``await start_command(*args, endpoint_url=...)`` starts ``aqueuepipe ARGS`` as a
    :class:`~tests._commands.Command`; one still running at the end of the test is killed."""
    started: list[Command] = []

    async def start(
        *args: str, endpoint_url: str, stdin: int = asyncio.subprocess.DEVNULL
    ) -> Command:
        command = await Command.start(*args, endpoint_url=endpoint_url, stdin=stdin)
        started.append(command)
        return command

    yield start
    for command in started:
        command.kill()
        await command.process.wait()


@pytest.fixture(scope="session")
def boto3_client(moto_server: MotoServer) -> Iterator[Any]:
    """A synchronous boto3 client of ``moto_server``, for checking what the code wrote.

    One for the session: module-scoped fixtures (a data set made once) use it too.
    """
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
