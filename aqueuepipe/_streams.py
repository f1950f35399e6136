"""Streams as the ends of a copy: any async producer or consumer of bytes.

A source may be an :class:`~aqueuepipe.AsyncPipe`, an async iterable of
bytes-like objects, or an object with ``async read(n)``; a destination an
:class:`~aqueuepipe.AsyncPipe` or an object with ``async write(data)``.  Their
length is unknown in advance: the engine reads the first ``part_size`` bytes and
decides between one PutObject and a multipart upload.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Protocol, TypeAlias, runtime_checkable

from ._pipe import AsyncPipe
from .local import SpecialFile, special_file

__all__ = [
    "ByteReader",
    "ByteWriter",
    "SpecialFile",
    "StreamSink",
    "StreamSinkLike",
    "StreamSource",
    "StreamSourceLike",
    "describe",
    "is_stream_sink",
    "is_stream_source",
    "special_file",
]

Buffer: TypeAlias = bytes | bytearray | memoryview


@runtime_checkable
class ByteReader(Protocol):
    """An object with ``async read(n)``: up to ``n`` bytes, ``b""`` at the end."""

    async def read(self, n: int = -1) -> bytes: ...


@runtime_checkable
class ByteWriter(Protocol):
    """An object with ``async write(data)``."""

    async def write(self, data: bytes) -> object: ...


StreamSourceLike: TypeAlias = AsyncPipe | AsyncIterable[Buffer] | ByteReader
StreamSinkLike: TypeAlias = AsyncPipe | ByteWriter

_READ_SIZE = 1 << 20


class StreamSource:
    """Reads a stream into part buffers: ``readinto`` fills them, short only at the end."""

    __slots__ = ("_chunks", "_done", "_leftover", "_reader", "bytes_read", "name", "on_progress")

    def __init__(self, stream: StreamSourceLike, name: str) -> None:
        self.name = name
        self.bytes_read = 0
        #: Called whenever bytes arrive, however few: stalls are measured in bytes.
        self.on_progress: Callable[[], None] | None = None
        self._leftover = memoryview(b"")
        self._done = False
        self._reader: ByteReader | None = None
        self._chunks: AsyncIterator[Buffer] | None = None
        # read(n) is preferred where an object has both: aiohttp's request body, say,
        # iterates by lines.  An AsyncPipe is iterated: its chunks pass uncopied.
        if isinstance(stream, AsyncPipe) or not _has_async_read(stream):
            self._chunks = aiter(stream)  # type: ignore[arg-type]
        else:
            self._reader = stream  # type: ignore[assignment]

    async def _next_chunk(self, want: int) -> memoryview:
        if self._reader is not None:
            # Never more than the buffer has room for: what is read is held in the
            # budget's buffer at once, nothing is left over outside it.
            data = await self._reader.read(min(want, _READ_SIZE))
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"{self.name}.read() returned {type(data).__name__}, not bytes")
            return memoryview(data).cast("B")
        assert self._chunks is not None
        while True:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return memoryview(b"")
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(
                    f"{self.name} yielded {type(chunk).__name__}, not a bytes-like object"
                )
            if len(chunk):
                return memoryview(chunk).cast("B")

    async def readinto(self, buf: memoryview) -> int:
        """Fill ``buf``; return the bytes put in it (fewer only at the end of the stream).

        Raises:
            TypeError: the stream gave something that is not bytes-like.
            Whatever the stream raises (a failed producer's error).
        """
        filled = 0
        while filled < len(buf) and not self._done:
            if not len(self._leftover):
                self._leftover = await self._next_chunk(len(buf) - filled)
                if not len(self._leftover):
                    self._done = True
                    break
                if self.on_progress is not None:
                    self.on_progress()
            n = min(len(self._leftover), len(buf) - filled)
            buf[filled : filled + n] = self._leftover[:n]
            self._leftover = self._leftover[n:]
            filled += n
        self.bytes_read += filled
        return filled

    def close(self) -> None:
        """Close the special file this library opened as the source, if it is one
        (a caller's stream is the caller's to close).  Idempotent."""
        if isinstance(self._reader, SpecialFile):
            self._reader.close()


class StreamSink:
    """Writes a copy's bytes to a stream; closes an :class:`AsyncPipe` at the end."""

    __slots__ = ("_stream", "bytes_written")

    def __init__(self, stream: StreamSinkLike) -> None:
        self._stream = stream
        self.bytes_written = 0

    async def write(self, data: Buffer) -> None:
        """Pass ``data`` on (a pipe's budget or the consumer decides how fast).

        Raises:
            PipeAbortedError: the consumer aborted the pipe.
            Whatever the consumer's ``write`` raises.
        """
        await self._stream.write(data if isinstance(data, bytes) else bytes(data))
        self.bytes_written += len(data)

    async def finish(self) -> None:
        """The copy is complete and verified: end the stream (a pipe is closed, a
        special file this library opened is closed)."""
        if isinstance(self._stream, AsyncPipe):
            self._stream.close()
        elif isinstance(self._stream, SpecialFile):
            await self._stream.aclose()

    async def fail(self, exc: BaseException) -> None:
        """The copy failed with ``exc``: a special file is closed.

        A pipe is left open here: the copy aborts it with the error it reports
        (translated, naming its side and URL, a stall as a stall), so the pipe's
        reader sees the same exception as the copy's caller, not this raw one.
        """
        if isinstance(self._stream, SpecialFile):
            await self._stream.aclose()

    def close(self) -> None:
        """Close the special file this library opened as the destination, if it is
        one (a caller's stream is the caller's to close).  Idempotent."""
        if isinstance(self._stream, SpecialFile):
            self._stream.close()


def _has_async_read(value: object) -> bool:
    read = getattr(value, "read", None)
    return read is not None and inspect.iscoroutinefunction(read)


def is_stream_source(value: object) -> bool:
    """Whether ``value`` is a stream a copy can read (rather than a URL or path)."""
    if isinstance(value, str | bytes) or hasattr(value, "__fspath__"):
        return False
    return isinstance(value, AsyncPipe | AsyncIterable) or _has_async_read(value)


def is_stream_sink(value: object) -> bool:
    """Whether ``value`` is a stream a copy can write (rather than a URL or path)."""
    if isinstance(value, str | bytes) or hasattr(value, "__fspath__"):
        return False
    if isinstance(value, AsyncPipe):
        return True
    write = getattr(value, "write", None)
    return write is not None and inspect.iscoroutinefunction(write)


def describe(value: object) -> str:
    """How an end of a copy is named in results and messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fsdecode(os.fspath(value))
    return f"<{type(value).__name__}>"
