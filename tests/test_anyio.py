"""AsyncPipe's ends as anyio byte streams, driven by anyio's own helpers (asyncio backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextReceiveStream, TextSendStream

from aqueuepipe import AsyncPipe, PipeAbortedError

from ._sync import run_ready


def test_ends_are_anyio_byte_streams() -> None:
    pipe = AsyncPipe(limit=10)
    assert isinstance(pipe.receive_stream(), anyio.abc.ByteReceiveStream)
    assert isinstance(pipe.send_stream(), anyio.abc.ByteSendStream)
    assert pipe.receive_stream().pipe is pipe
    assert pipe.send_stream().pipe is pipe


async def test_buffered_stream_receives_exactly_and_until_across_chunks() -> None:
    pipe = AsyncPipe(limit=100)
    for piece in (b"HEAD", b"ER:12\r", b"\nbody-", b"bytes", b"\r\ntail"):
        await pipe.write(piece)
    pipe.close()
    buffered = BufferedByteReceiveStream(pipe.receive_stream())
    assert await buffered.receive_exactly(6) == b"HEADER"
    assert await buffered.receive_until(b"\r\n", 100) == b":12"
    assert await buffered.receive_until(b"\r\n", 100) == b"body-bytes"
    assert await buffered.receive_exactly(4) == b"tail"
    with pytest.raises(anyio.EndOfStream):
        await buffered.receive()


async def test_buffered_receive_exactly_at_early_eof_raises_incomplete_read() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"abc")
    pipe.close()
    buffered = BufferedByteReceiveStream(pipe.receive_stream())
    with pytest.raises(anyio.IncompleteRead):
        await buffered.receive_exactly(4)


async def test_text_stream_decodes_characters_split_between_chunks() -> None:
    pipe = AsyncPipe(limit=100)
    encoded = "grüße, 東京".encode()
    for i in range(len(encoded)):  # one byte a chunk: every character is split
        await pipe.write(encoded[i : i + 1])
    pipe.close()
    text = "".join([piece async for piece in TextReceiveStream(pipe.receive_stream())])
    assert text == "grüße, 東京"


async def test_text_send_stream_writes_through_the_send_side() -> None:
    pipe = AsyncPipe(limit=100)
    async with TextSendStream(pipe.send_stream()) as text:
        await text.send("naïve ")
        await text.send("text")
    assert pipe.closed
    assert await pipe.read() == "naïve text".encode()


async def test_send_side_and_receive_side_move_data_between_anyio_tasks() -> None:
    pipe = AsyncPipe(limit=64)
    payload = bytes(range(256)) * 40
    received = bytearray()

    async def produce(stream: anyio.abc.ByteSendStream) -> None:
        async with stream:
            for start in range(0, len(payload), 100):
                await stream.send(payload[start : start + 100])

    async def consume(stream: anyio.abc.ByteReceiveStream) -> None:
        async with stream:
            async for chunk in stream:
                received.extend(chunk)

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce, pipe.send_stream())
        tg.start_soon(consume, pipe.receive_stream())
    assert bytes(received) == payload
    assert pipe.peak_buffered <= 64
    assert pipe.budget.used == 0


async def test_receive_at_eof_raises_end_of_stream() -> None:
    pipe = AsyncPipe(limit=10)
    pipe.close()
    with pytest.raises(anyio.EndOfStream):
        await pipe.receive_stream().receive()


async def test_receive_returns_at_most_max_bytes() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"abcdef")
    stream = pipe.receive_stream()
    assert await stream.receive(4) == b"abcd"
    assert await stream.receive(4) == b"ef"


async def test_receive_with_max_bytes_below_one_raises() -> None:
    pipe = AsyncPipe(limit=10)
    with pytest.raises(ValueError, match="max_bytes must be >= 1"):
        await pipe.receive_stream().receive(0)


async def broken_by_abort(pipe: AsyncPipe, waiting: Coroutine[Any, Any, object]) -> BaseException:
    """Abort ``pipe`` while ``waiting`` waits on it; return the abort's cause it raised with."""
    task = asyncio.create_task(waiting)
    await run_ready()
    assert not task.done()
    pipe.abort(OSError("the other side failed"))
    with pytest.raises(anyio.BrokenResourceError) as info:
        await task
    assert pipe.budget.used == 0
    assert isinstance(info.value.__cause__, OSError)
    return info.value.__cause__


async def test_receive_from_aborted_pipe_raises_broken_resource_with_cause() -> None:
    pipe = AsyncPipe(limit=10)
    cause = await broken_by_abort(pipe, pipe.receive_stream().receive())
    assert cause is pipe.exception


async def test_send_to_aborted_pipe_raises_broken_resource_with_cause() -> None:
    pipe = AsyncPipe(limit=4)
    stream = pipe.send_stream()
    await stream.send(b"full")
    cause = await broken_by_abort(pipe, stream.send(b"more"))  # blocked: the pipe is full
    assert cause is pipe.exception


async def test_send_after_aclose_raises_closed_resource() -> None:
    pipe = AsyncPipe(limit=10)
    stream = pipe.send_stream()
    await stream.aclose()
    await stream.aclose()  # idempotent
    with pytest.raises(anyio.ClosedResourceError):
        await stream.send(b"late")
    assert pipe.closed and not pipe.aborted


async def test_send_aclose_is_eof_for_the_reader() -> None:
    pipe = AsyncPipe(limit=10)
    async with pipe.send_stream() as stream:
        await stream.send(b"data")
    assert await pipe.read() == b"data"
    assert await pipe.read() == b""


async def test_receive_after_aclose_raises_closed_resource() -> None:
    pipe = AsyncPipe(limit=10)
    pipe.close()
    stream = pipe.receive_stream()
    await stream.aclose()
    await stream.aclose()  # idempotent
    with pytest.raises(anyio.ClosedResourceError):
        await stream.receive()


async def test_receive_aclose_before_eof_aborts_the_pipe_and_fails_the_writer() -> None:
    pipe = AsyncPipe(limit=4)
    await pipe.write(b"full")
    writer = asyncio.create_task(pipe.write(b"more"))
    await run_ready()
    await pipe.receive_stream().aclose()
    with pytest.raises(PipeAbortedError):
        await writer
    assert pipe.aborted
    assert pipe.budget.used == 0


async def test_receive_aclose_after_reading_to_eof_leaves_the_pipe_closed() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"all")
    pipe.close()
    async with pipe.receive_stream() as stream:
        assert await stream.receive() == b"all"
    assert pipe.closed and not pipe.aborted


async def test_cancelled_receive_consumes_nothing() -> None:
    pipe = AsyncPipe(limit=10)
    stream = pipe.receive_stream()
    with anyio.move_on_after(0) as scope:
        await stream.receive()
    assert scope.cancelled_caught
    await pipe.write(b"kept")
    assert await stream.receive() == b"kept"


def test_streams_work_under_anyio_run_on_asyncio() -> None:
    async def main() -> bytes:
        pipe = AsyncPipe(limit=8)
        out = bytearray()

        async def produce() -> None:
            async with pipe.send_stream() as stream:
                for _ in range(10):
                    await stream.send(b"0123456789")

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            buffered = BufferedByteReceiveStream(pipe.receive_stream())
            for _ in range(20):
                out.extend(await buffered.receive_exactly(5))
        return bytes(out)

    assert anyio.run(main, backend="asyncio") == b"0123456789" * 10
