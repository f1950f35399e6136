"""examples/streaming_service.py, run against the moto server process.

The service runs under aiohttp's ``AppRunner`` on a free loopback port, as
``web.run_app`` runs it, and real HTTP clients talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import aqueuepipe._options
import aqueuepipe._pipe._room
from aqueuepipe import ByteBudget
from aqueuepipe.s3 import S3Client

from . import _clients
from ._helpers import (
    MakeBucket,
    MiB,
    MotoServer,
    chunks,
    get,
    key_exists,
    open_uploads,
    payload,
    put,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "streaming_service.py"
# Request bodies go as chunks(data, BODY_CHUNK): of unknown length (sent chunked), as a
# streaming client sends them.
BODY_CHUNK = 256 * 1024


def _load_example() -> ModuleType:
    """examples/ is not a package: import the file by its path."""
    spec = importlib.util.spec_from_file_location("streaming_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


service = _load_example()


MakeApp = Callable[..., web.Application]


@pytest_asyncio.fixture
async def bucket(make_bucket: MakeBucket) -> str:
    """A fresh bucket for the service to serve."""
    return await make_bucket()


@pytest.fixture
def make_app(moto_server: MotoServer, bucket: str) -> MakeApp:
    """``service.make_app`` for ``bucket`` on the moto server; keywords go through."""
    return functools.partial(service.make_app, bucket=bucket, endpoint_url=moto_server.endpoint_url)


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, *, handler_cancellation: bool = False
) -> AsyncIterator[str]:
    """Run ``app`` on a free port of 127.0.0.1; yield its base URL."""
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_concurrent_uploads_beyond_the_budget_all_succeed_within_it(
    s3_client: S3Client, bucket: str, make_app: MakeApp
) -> None:
    app = make_app(limit=24 * MiB)
    budget: ByteBudget = app[service.BUDGET]
    bodies = {f"dir/upload-{i}.bin": payload(12 * MiB, seed=i) for i in range(6)}  # 72 MiB

    async with serving(app) as base, aiohttp.ClientSession() as http:

        async def upload(key: str, data: bytes) -> dict[str, Any]:
            async with http.put(f"{base}/objects/{key}", data=chunks(data, BODY_CHUNK)) as response:
                assert response.status == 201, await response.text()
                answer: dict[str, Any] = await response.json()
                return answer

        answers = await asyncio.gather(*(upload(k, d) for k, d in bodies.items()))

    for (key, data), answer in zip(bodies.items(), answers, strict=True):
        assert answer["key"] == key
        assert answer["size"] == len(data)
        assert answer["parts"] == 2  # 8 MiB parts
        assert answer["etag"]
        assert answer["verified"]
        assert await get(s3_client, bucket, key) == data
    assert budget.used == 0
    assert budget.statistics().waiters == 0
    assert await open_uploads(s3_client, bucket) == []


@pytest.mark.parametrize("size", [0, 1, 10 * MiB + 3])
async def test_get_streams_the_object_back(
    s3_client: S3Client, bucket: str, make_app: MakeApp, size: int
) -> None:
    data = payload(size, seed=size)
    await put(s3_client, bucket, "a key/with spaces", data)
    app = make_app(limit=16 * MiB)
    budget: ByteBudget = app[service.BUDGET]

    async with (
        serving(app) as base,
        aiohttp.ClientSession() as http,
        http.get(f"{base}/objects/a key/with spaces") as response,
    ):
        assert response.status == 200
        assert response.content_type == "application/octet-stream"
        received = b"".join([chunk async for chunk in response.content.iter_chunked(MiB)])

    assert received == data
    assert budget.used == 0


async def test_uploaded_object_comes_back_identical(make_app: MakeApp) -> None:
    data = payload(9 * MiB + 7, seed=9)
    app = make_app()
    async with serving(app) as base, aiohttp.ClientSession() as http:
        async with http.put(f"{base}/objects/k", data=chunks(data, BODY_CHUNK)) as response:
            assert response.status == 201
        async with http.get(f"{base}/objects/k") as response:
            assert response.status == 200
            assert await response.read() == data


async def test_get_of_a_missing_key_is_404(make_app: MakeApp) -> None:
    app = make_app()
    async with (
        serving(app) as base,
        aiohttp.ClientSession() as http,
        http.get(f"{base}/objects/no/such/key") as response,
    ):
        assert response.status == 404
    assert app[service.BUDGET].used == 0


async def test_a_missing_bucket_is_502_for_put_and_get(moto_server: MotoServer) -> None:
    app = service.make_app(bucket="no-such-bucket-aqp", endpoint_url=moto_server.endpoint_url)
    async with serving(app) as base, aiohttp.ClientSession() as http:
        async with http.put(f"{base}/objects/k", data=b"data") as response:
            assert response.status == 502
            assert "no-such-bucket-aqp" in await response.text()
        async with http.get(f"{base}/objects/k") as response:
            assert response.status == 502


async def test_a_key_too_long_for_s3_is_400(make_app: MakeApp) -> None:
    app = make_app()
    async with (
        serving(app) as base,
        aiohttp.ClientSession() as http,
        http.put(f"{base}/objects/{'k' * 1025}", data=b"data") as response,
    ):
        assert response.status == 400


def test_make_app_checks_its_configuration() -> None:
    with pytest.raises(ValueError, match="bucket name"):
        service.make_app(bucket="Not_A_Bucket")
    with pytest.raises(ValueError, match="limit"):
        service.make_app(bucket="fine-bucket", limit=MiB)


class SpyClient:
    """The S3 client, with an event set when the first UploadPart is sent."""

    def __init__(self, client: S3Client) -> None:
        self._client = client
        self.part_sent = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def upload_part(self, **kwargs: Any) -> Any:
        self.part_sent.set()
        return await self._client.upload_part(**kwargs)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.mark.parametrize("handler_cancellation", [False, True], ids=["default", "cancelling"])
async def test_client_disconnecting_mid_upload_leaves_no_object_and_no_upload(
    s3_client: S3Client, bucket: str, handler_cancellation: bool
) -> None:
    """The client sends 9 MiB of a 20 MiB body, waits until the service has begun the
    multipart upload (its first UploadPart), then resets the connection.

    ``default`` is ``web.run_app``'s setting (the handler goes on, its body raises);
    ``cancelling`` is ``handler_cancellation=True`` (the handler is cancelled).
    """
    spy = SpyClient(s3_client)
    app = service.make_app(bucket=bucket, client=spy, limit=24 * MiB)
    handled = asyncio.Event()
    outcome: list[BaseException | int] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except BaseException as exc:
            outcome.append(exc)
            raise
        else:
            outcome.append(response.status)
            return response
        finally:
            handled.set()

    app.middlewares.append(record)
    async with serving(app, handler_cancellation=handler_cancellation) as base:
        host, port = base.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        head = f"PUT /objects/cut HTTP/1.1\r\nHost: {host}\r\nContent-Length: {20 * MiB}\r\n\r\n"
        writer.write(head.encode())
        data = payload(9 * MiB, seed=3)
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
            await writer.drain()
        await asyncio.wait_for(spy.part_sent.wait(), timeout=30)
        writer.transport.abort()  # a reset, no FIN: the client is gone
        await asyncio.wait_for(handled.wait(), timeout=30)

    # default: the body raised, the copy failed with it (a 400 nobody reads);
    # cancelling: the handler was cancelled.  Either way the copy aborted the upload.
    expected = asyncio.CancelledError if handler_cancellation else web.HTTPBadRequest
    assert len(outcome) == 1 and isinstance(outcome[0], expected), outcome
    assert not await key_exists(s3_client, bucket, "cut")
    assert await open_uploads(s3_client, bucket) == []
    assert app[service.BUDGET].used == 0


@pytest.mark.parametrize("method", ["PUT", "GET"])
async def test_a_key_ending_in_slash_is_400(make_app: MakeApp, method: str) -> None:
    """A key ending in ``/`` names a prefix, not an object: the client's mistake."""
    app = make_app()
    async with (
        serving(app) as base,
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{base}/objects/dir/", data=b"data" if method == "PUT" else None
        ) as response,
    ):
        assert response.status == 400
        assert "prefix" in await response.text()


def _handled(app: web.Application) -> asyncio.Event:
    """An event set when a request's handler has ended, however it ended."""
    handled = asyncio.Event()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            handled.set()

    app.middlewares.append(record)
    return handled


def _tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records if record.exc_info]


async def test_client_disconnecting_mid_download_is_logged_as_one_line(
    s3_client: S3Client, bucket: str, make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    await put(s3_client, bucket, "big", payload(20 * MiB, seed=5))
    app = make_app(limit=16 * MiB)
    handled = _handled(app)
    caplog.set_level(logging.DEBUG)
    async with serving(app) as base:
        assert await _clients.get_cut_short(base, "big", read=MiB) >= MiB
        await asyncio.wait_for(handled.wait(), timeout=30)

    assert _tracebacks(caplog.records) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "streaming_service"]
    assert len(lines) == 1 and "went away" in lines[0], lines
    assert app[service.BUDGET].used == 0


async def test_client_disconnecting_mid_upload_is_logged_as_one_line(
    s3_client: S3Client, bucket: str, make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(limit=16 * MiB)
    handled = _handled(app)
    caplog.set_level(logging.DEBUG)
    async with serving(app) as base:
        await _clients.put_cut_short(base, "cut", 20 * MiB, payload(3 * MiB, seed=6), chunked=False)
        await asyncio.wait_for(handled.wait(), timeout=30)

    assert _tracebacks(caplog.records) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "streaming_service"]
    assert len(lines) == 1 and "went away" in lines[0], lines
    assert not await key_exists(s3_client, bucket, "cut")
    assert await open_uploads(s3_client, bucket) == []


class WaitedBudget(ByteBudget):
    """A ByteBudget whose ``waited`` event is set when a request must wait for room
    (AsyncPipe calls ``acquire`` only after ``try_acquire`` failed)."""

    waited: ClassVar[asyncio.Event]

    async def acquire(self, n: int) -> None:
        WaitedBudget.waited.set()
        await super().acquire(n)


#: How long the small requests may take while a reader is stalled: not a timing
#: claim, a bound on a hang (they wait for the stalled reader's 300 s stall timeout
#: when the reader holds the whole budget).
SMALL_REQUEST_BOUND = 10


async def test_client_that_stops_reading_does_not_hold_up_small_requests(
    s3_client: S3Client, bucket: str, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One client GETs a 30 MiB object and stops reading, under a 16 MiB budget; once
    its download waits for room, a 5-byte GET and a 4-byte PUT still complete."""
    await put(s3_client, bucket, "big", payload(30 * MiB, seed=7))
    await put(s3_client, bucket, "small", b"12345")
    monkeypatch.setattr(WaitedBudget, "waited", asyncio.Event(), raising=False)
    # The pipes' own limits:
    monkeypatch.setattr(aqueuepipe._pipe._room, "ByteBudget", WaitedBudget)
    app = make_app(limit=16 * MiB)
    app[service.BUDGET] = WaitedBudget(16 * MiB)

    async with (
        serving(app) as base,
        aiohttp.ClientSession() as http,
        _clients.stalled_get(base, "big") as status,
    ):
        assert status.startswith(b"HTTP/1.1 200"), status
        # The stalled download has filled what it may hold and waits for room.
        await asyncio.wait_for(WaitedBudget.waited.wait(), timeout=30)
        async with asyncio.timeout(SMALL_REQUEST_BOUND):
            async with http.get(f"{base}/objects/small") as response:
                assert response.status == 200
                assert await response.read() == b"12345"
            async with http.put(f"{base}/objects/tiny", data=chunks(b"1234")) as response:
                assert response.status == 201, await response.text()
    assert await get(s3_client, bucket, "tiny") == b"1234"
