"""HTTP clients that misbehave on purpose, on raw sockets: one that stops reading an
answer, one that stops sending a body, one that resets its connection mid-body.

aiohttp's client reads ahead and cannot be told to stop, so these speak HTTP/1.1
themselves.  A stalled client's socket has a tiny receive buffer and a reader that
pauses after a few KiB, so what it does not read stays on the server's side.  The
workloads at the end run in a process of their own, beside a measured service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp

#: The receive buffer of a client that stops reading (the kernel may round it up).
TINY_BUFFER = 4096


async def connect(
    base: str, *, receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the service at ``base`` (``http://host:port``)."""
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    except BaseException:
        sock.close()
        raise
    limit = receive_buffer or 64 * 1024
    return await asyncio.open_connection(sock=sock, limit=limit)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a reset, no FIN: the client is gone."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: closing sends RST.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@contextlib.asynccontextmanager
async def stalled_get(base: str, key: str) -> AsyncIterator[bytes]:
    """GET ``key``, read the status line (yielded), then read nothing more until the
    block ends; the connection is reset then."""
    reader, writer = await connect(base, receive_buffer=TINY_BUFFER)
    try:
        writer.write(f"GET /objects/{key} HTTP/1.1\r\nHost: service\r\n\r\n".encode())
        await writer.drain()
        yield await reader.readline()
    finally:
        reset(writer)


@contextlib.asynccontextmanager
async def stalled_put(base: str, key: str, size: int, sent: bytes) -> AsyncIterator[None]:
    """PUT ``key`` announcing ``size`` bytes, send ``sent`` of them, then stop sending
    until the block ends; the connection is reset then."""
    _, writer = await connect(base)
    try:
        head = f"PUT /objects/{key} HTTP/1.1\r\nHost: service\r\nContent-Length: {size}\r\n\r\n"
        writer.write(head.encode() + sent)
        await writer.drain()
        yield
    finally:
        reset(writer)


async def put_cut_short(base: str, key: str, size: int, body: bytes, *, chunked: bool) -> None:
    """PUT ``key`` announcing ``size`` bytes (or chunked), send ``body`` (fewer), and
    reset the connection."""
    _, writer = await connect(base)
    try:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        writer.write(f"PUT /objects/{key} HTTP/1.1\r\nHost: service\r\n{framing}\r\n\r\n".encode())
        view = memoryview(body)
        step = 256 * 1024
        for start in range(0, len(view), step):
            piece = view[start : start + step]
            if chunked:
                writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                writer.write(piece)
            await writer.drain()
    finally:
        reset(writer)


async def get_cut_short(base: str, key: str, read: int) -> int:
    """GET ``key``, read about ``read`` bytes of the answer, and reset the connection;
    return the bytes read."""
    reader, writer = await connect(base)
    got = 0
    try:
        writer.write(f"GET /objects/{key} HTTP/1.1\r\nHost: service\r\n\r\n".encode())
        await writer.drain()
        while got < read:
            data = await reader.read(64 * 1024)
            if not data:
                break
            got += len(data)
    finally:
        reset(writer)
    return got


# -- workloads, run as ``python -m tests._clients NAME BASE ARGS...`` -------------------
#
# The service runs in a measured process of its own (tests/_memory.py) and these
# clients in another, so the growth measured is the service's alone.  Each workload
# prints one JSON report.

_BLOCK = os.urandom(256 * 1024)


async def _body(size: int) -> AsyncIterator[bytes]:
    """``size`` bytes, sent chunked: the same block over and over."""
    while size > 0:
        yield _BLOCK if size >= len(_BLOCK) else _BLOCK[:size]
        size -= len(_BLOCK)


async def _put(http: aiohttp.ClientSession, base: str, key: str, size: int) -> int:
    async with http.put(f"{base}/objects/{key}", data=_body(size)) as response:
        if response.status != 201:
            raise AssertionError(f"PUT {key}: {response.status} {await response.text()}")
        stored: int = (await response.json())["size"]
        return stored


async def _get(http: aiohttp.ClientSession, base: str, key: str) -> int:
    got = 0
    async with http.get(f"{base}/objects/{key}") as response:
        if response.status != 200:
            raise AssertionError(f"GET {key}: {response.status}")
        async for chunk in response.content.iter_chunked(256 * 1024):
            got += len(chunk)
    return got


def _session() -> aiohttp.ClientSession:
    # No pool limit: every client has its own connection, as separate clients would.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def warm(base: str) -> dict[str, object]:
    """A little of everything, so the service's first-use costs precede its baseline."""
    async with _session() as http, stalled_get(base, "warm") as status:
        assert status.startswith(b"HTTP/1.1 200"), status
        await asyncio.gather(*(_put(http, base, f"warm{i}", 256 * 1024) for i in range(4)))
        await asyncio.gather(*(_get(http, base, "warm") for _ in range(4)))
        await put_cut_short(base, "warm-cut", 1 << 20, _BLOCK, chunked=False)
    return {}


async def stalled_readers(
    base: str, stalled: str, puts: str, gets: str, bound: str
) -> dict[str, object]:
    """``stalled`` clients GET ``big{i}`` and stop reading; meanwhile ``puts`` clients
    PUT 20 MiB to ``up{i}`` and ``gets`` clients GET ``obj{i}``, all within ``bound``
    seconds.  Reports what each fast client moved and how long they took."""
    async with _session() as http, contextlib.AsyncExitStack() as stack:
        for i in range(int(stalled)):
            status = await stack.enter_async_context(stalled_get(base, f"big{i}"))
            assert status.startswith(b"HTTP/1.1 200"), status
        started = time.monotonic()
        async with asyncio.timeout(float(bound)):
            sizes = await asyncio.gather(
                *(_put(http, base, f"up{i}", 20 << 20) for i in range(int(puts))),
                *(_get(http, base, f"obj{i}") for i in range(int(gets))),
            )
        seconds = time.monotonic() - started
    return {"sizes": sizes, "seconds": seconds}


def _size(rng: random.Random, low: int, high: int) -> int:
    """A size between ``low`` and ``high``, uniform in its logarithm."""
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


async def soak(
    base: str, seconds: str, seed: str, fast: str, stalling: str, cutting: str, bound: str
) -> dict[str, object]:
    """For ``seconds``: ``fast`` clients PUT and GET their own key (1 KiB to 20 MiB,
    seeded), each request within ``bound`` seconds; ``stalling`` clients GET
    ``big{i}`` and stop reading until the end; ``cutting`` clients reset their
    connection mid-body, over and over (PUTs to ``cut/...``, GETs of ``big{i}``).
    Reports the fast requests' count, their longest time, and every failure."""
    deadline = time.monotonic() + float(seconds)
    root = random.Random(int(seed))
    latencies: list[float] = []
    failures: list[str] = []
    cuts = 0

    async def fast_client(i: int, rng: random.Random, http: aiohttp.ClientSession) -> None:
        stored: int | None = None
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                async with asyncio.timeout(float(bound)):
                    if stored is None or rng.random() < 0.5:
                        size = _size(rng, 1024, 20 << 20)
                        assert await _put(http, base, f"soak/c{i}", size) == size
                        stored = size
                    else:
                        got = await _get(http, base, f"soak/c{i}")
                        assert got == stored, (got, stored)
            except (AssertionError, TimeoutError, aiohttp.ClientError) as exc:
                failures.append(f"client {i}: {exc!r}")
                return
            latencies.append(time.monotonic() - started)

    async def cutting_client(i: int, rng: random.Random) -> None:
        nonlocal cuts
        n = 0
        while time.monotonic() < deadline:
            n += 1
            size = _size(rng, 1 << 20, 20 << 20)
            if n % 2:
                body = _BLOCK * (rng.randrange(1, max(2, size // len(_BLOCK))))
                await put_cut_short(base, f"cut/{i}-{n}", size, body, chunked=n % 4 == 1)
            else:
                await get_cut_short(base, f"big{i % int(stalling)}", rng.randrange(1, 8 << 20))
            cuts += 1

    async with _session() as http, contextlib.AsyncExitStack() as stack:
        for i in range(int(stalling)):
            status = await stack.enter_async_context(stalled_get(base, f"big{i}"))
            assert status.startswith(b"HTTP/1.1 200"), status
        async with asyncio.TaskGroup() as tasks:
            for i in range(int(fast)):
                tasks.create_task(fast_client(i, random.Random(root.random()), http))
            for i in range(int(cutting)):
                tasks.create_task(cutting_client(i, random.Random(root.random())))
    return {
        "requests": len(latencies),
        "longest": max(latencies, default=0.0),
        "failures": failures,
        "cuts": cuts,
    }


_WORKLOADS = {"warm": warm, "stalled-readers": stalled_readers, "soak": soak}


def main(argv: list[str]) -> None:
    name, base, *args = argv
    report = asyncio.run(_WORKLOADS[name](base, *args))
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
