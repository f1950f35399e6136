"""HTTP clients that misbehave on purpose, on raw sockets: one that stops reading an
answer, one that stops sending a body, one that resets its connection mid-body.

aiohttp's client reads ahead and cannot be told to stop, so these speak HTTP/1.1
themselves.  A stalled client's socket has a tiny receive buffer and a reader that
pauses after a few KiB, so what it does not read stays on the server's side.  Only
the standard library is used: the measured subprocesses of tests/_memory.py import
this module too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

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
