"""What a pipe's queue carries and what it reports: chunks copied from bytes-like
input, the end-of-data and abort signals, the pipe's states and its snapshot."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Final


class _Signal(enum.Enum):
    EOF = enum.auto()
    ABORT = enum.auto()


_EOF: Final = _Signal.EOF
_ABORT: Final = _Signal.ABORT


class _State(enum.Enum):
    OPEN = enum.auto()
    CLOSED = enum.auto()
    ABORTED = enum.auto()


# Looking a member up on an Enum class costs more than the rest of a fast path.
_OPEN: Final = _State.OPEN
_CLOSED: Final = _State.CLOSED
_ABORTED: Final = _State.ABORTED


@dataclass(frozen=True, slots=True, kw_only=True)
class PipeStatistics:
    """A snapshot of an :class:`AsyncPipe`."""

    limit: int
    buffered: int
    peak_buffered: int
    bytes_written: int
    bytes_read: int
    closed: bool
    aborted: bool


def _copy_of_buffer(data: object) -> bytes:
    """The bytes of a bytes-like ``data``; TypeError naming what it is otherwise."""
    # memoryview() accepts exactly the bytes-like objects; bytes() would also
    # take an int (that many zero bytes) or an iterable of ints.
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        hint = " (encode the text first, e.g. text.encode())" if isinstance(data, str) else ""
        raise TypeError(
            f"AsyncPipe.write() wants a bytes-like object (bytes, bytearray, memoryview), "
            f"not {type(data).__name__}{hint}"
        ) from None
    with view:
        return bytes(view)


def _drop_chunks(queue: asyncio.Queue[bytes | _Signal]) -> int:
    """Empty ``queue``; return the bytes of the chunks it held."""
    dropped = 0
    while True:
        try:
            item = queue.get_nowait()
        except asyncio.QueueEmpty:
            return dropped
        if type(item) is bytes:
            dropped += len(item)
