"""HTTP/1.1 framing for :class:`tests.faultproxy.FaultProxy`: message heads, bodies
by ``Content-Length``, chunks or end of connection, and the socket's unsent bytes.

Every read is bounded: a header line by the stream's limit, a head by
``_MAX_HEADERS`` lines, each body read by the caller's ``timeout``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

try:  # The kernel's count of unacknowledged bytes; Linux (and some BSDs) only.
    import fcntl
    import termios

    _TIOCOUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - platform dependent
    _TIOCOUTQ = None

_CHUNK = 64 * 1024
_MAX_HEADERS = 200


Framing = Literal["length", "chunked", "none", "eof"]
"""How a body ends: after Content-Length bytes, the last chunk, at once, at EOF."""


class BadMessage(Exception):
    """A request or response the proxy cannot parse."""


@dataclass(frozen=True, slots=True)
class Head:
    start: str
    """The request line or status line."""
    fields: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        values = [value for key, value in self.fields if key.lower() == name]
        return ", ".join(values) if values else None

    def framing(self) -> tuple[Framing, int]:
        """How the body after this head ends, for a request (``eof`` never applies)."""
        encoding = self.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise BadMessage(f"unsupported Transfer-Encoding {encoding!r}")
            return "chunked", 0
        length = self.get("content-length")
        if length is None:
            return "none", 0
        if not length.strip().isdigit():
            raise BadMessage(f"bad Content-Length {length!r}")
        return "length", int(length)


async def read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError as exc:
        raise BadMessage("header line too long") from exc


async def read_fields(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADERS):
        line = (await read_line(reader))[:-2]
        if not line:
            return fields
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise BadMessage(f"bad header line {line[:80]!r}")
        fields.append((name, value.strip()))
    raise BadMessage(f"more than {_MAX_HEADERS} header lines")


async def body_pieces(
    reader: asyncio.StreamReader,
    framing: Framing,
    length: int,
    timeout: float,
    edit: Callable[[bytes], bytes] | None = None,
) -> AsyncGenerator[bytes, None]:
    """The raw bytes of a body as they arrive (chunked framing included, as is).

    ``edit``, if given, is applied to the body's data as it passes, never to the
    chunked framing; it must return as many bytes as it gets.  Raises
    ``asyncio.IncompleteReadError`` if the peer closes before the body ends,
    ``TimeoutError`` if a read takes longer than ``timeout``.
    """
    if framing == "length":
        remaining = length
        while remaining:
            async with asyncio.timeout(timeout):
                data = await reader.read(min(_CHUNK, remaining))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            yield data if edit is None else edit(data)
    elif framing == "chunked":
        while True:  # ends at the last chunk, or raises when the peer does
            async with asyncio.timeout(timeout):
                line = await read_line(reader)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BadMessage(f"bad chunk size line {line[:80]!r}") from exc
            yield line
            if size == 0:
                async with asyncio.timeout(timeout):
                    trailers = await read_fields(reader)
                yield b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in trailers) + b"\r\n"
                return
            async for piece in body_pieces(reader, "length", size, timeout, edit):
                yield piece
            async with asyncio.timeout(timeout):
                end = await reader.readexactly(2)
            if end != b"\r\n":
                raise BadMessage(f"chunk data not followed by CRLF but {end!r}")
            yield end
    elif framing == "eof":
        while True:  # ends when the peer closes, bounded by the timeout of each read
            async with asyncio.timeout(timeout):
                data = await reader.read(_CHUNK)
            if not data:
                return
            yield data if edit is None else edit(data)


async def whole(body: bytes) -> AsyncGenerator[bytes, None]:
    """``body`` as the pieces of a body (a transformed one), in pieces of ``_CHUNK``."""
    for start in range(0, len(body), _CHUNK):
        yield body[start : start + _CHUNK]


class Flipper:
    """An ``edit`` for :func:`body_pieces`: XOR 0x01 into the data byte at ``at``."""

    __slots__ = ("at", "flipped", "seen")

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.seen = 0
        self.flipped = False

    def __call__(self, data: bytes) -> bytes:
        start, self.seen = self.seen, self.seen + len(data)
        if self.at is None or not start <= self.at < self.seen:
            return data
        index = self.at - start
        self.flipped = True
        return b"".join((data[:index], bytes([data[index] ^ 0x01]), data[index + 1 :]))


def encode_head(start: str, fields: Sequence[tuple[str, str]]) -> bytes:
    lines = [start, *(f"{name}: {value}" for name, value in fields), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def unacknowledged(writer: asyncio.StreamWriter) -> int:
    """Bytes the kernel still holds for the peer; 0 where it cannot tell."""
    sock = writer.get_extra_info("socket")
    if _TIOCOUTQ is None or sock is None:
        return 0
    try:
        result = fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    count: int = struct.unpack("i", result)[0]
    return count
