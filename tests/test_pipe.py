"""AsyncPipe: every sentence of the contract in ../shared/DESIGN.md has a test here."""

from __future__ import annotations

import array
import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqueuepipe import AsyncPipe, ByteBudget, PipeAbortedError, PipeClosedError, PipeError

from ._helpers import cancel_and_check
from ._sync import run_ready


class CheckedBudget(ByteBudget):
    """A budget that asserts its invariant every time bytes are taken or given back."""

    __slots__ = ()

    def try_acquire(self, n: int) -> bool:
        taken = super().try_acquire(n)
        assert self.used <= self.limit, (self.used, self.limit)
        return taken

    async def acquire(self, n: int) -> None:
        await super().acquire(n)
        assert self.used <= self.limit, (self.used, self.limit)

    def release(self, n: int) -> None:
        super().release(n)  # also grants queued requests
        assert self.used <= self.limit, (self.used, self.limit)


def write_more(pipe: AsyncPipe) -> Awaitable[Any]:
    return pipe.write(b"more")


async def full_pipe_and_blocked_writer(
    write: Callable[[AsyncPipe], Awaitable[Any]] = write_more,
) -> tuple[AsyncPipe, asyncio.Future[Any]]:
    """A pipe of 4 bytes holding 4, and a task whose ``write`` (of 4 more) waits for room."""
    pipe = AsyncPipe(limit=4)
    await pipe.write(b"full")
    writer = asyncio.ensure_future(write(pipe))
    await run_ready()
    assert not writer.done()
    return pipe, writer


async def assert_aborted(task: Awaitable[Any], cause: BaseException | None) -> None:
    """``task`` fails with PipeAbortedError, whose ``__cause__`` is ``cause``."""
    with pytest.raises(PipeAbortedError) as info:
        await task
    assert info.value.__cause__ is cause


# -- construction --------------------------------------------------------------


def test_create_without_limit_or_budget_raises() -> None:
    with pytest.raises(ValueError, match="needs a limit"):
        AsyncPipe()


def test_create_with_nonpositive_limit_raises() -> None:
    with pytest.raises(ValueError, match="limit"):
        AsyncPipe(limit=0)


def test_shared_budget_needs_no_limit() -> None:
    budget = ByteBudget(1000)
    pipe = AsyncPipe(budget=budget)
    assert pipe.limit == 1000
    assert pipe.budget is budget


def test_errors_share_a_base() -> None:
    assert issubclass(PipeClosedError, PipeError)
    assert issubclass(PipeAbortedError, PipeError)


# -- write and read ------------------------------------------------------------


async def test_write_then_read_all_until_eof() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"hello ")
    await pipe.write(b"world")
    pipe.close()
    assert await pipe.read() == b"hello world"
    assert await pipe.read() == b""
    assert (pipe.bytes_written, pipe.bytes_read, pipe.buffered) == (11, 11, 0)


async def test_read_n_returns_at_most_n_and_keeps_the_rest() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"abcdefgh")
    assert await pipe.read(3) == b"abc"
    assert pipe.buffered == 5
    assert await pipe.read(100) == b"defgh"
    assert pipe.buffered == 0


async def test_read_zero_returns_empty_without_waiting() -> None:
    pipe = AsyncPipe(limit=10)
    assert await pipe.read(0) == b""


async def test_read_invalid_size_raises() -> None:
    pipe = AsyncPipe(limit=10)
    with pytest.raises(ValueError, match="read size"):
        await pipe.read(-2)
    with pytest.raises(ValueError, match="readexactly size"):
        await pipe.readexactly(-1)


async def test_read_blocks_until_write() -> None:
    pipe = AsyncPipe(limit=10)
    reader = asyncio.create_task(pipe.read(5))
    await run_ready()
    assert not reader.done()
    await pipe.write(b"xy")
    assert await reader == b"xy"


async def test_iteration_yields_chunks_as_written_without_copy() -> None:
    pipe = AsyncPipe(limit=100)
    chunks = [b"one", b"two", b"three"]
    for chunk in chunks:
        await pipe.write(chunk)
    pipe.close()
    received = [chunk async for chunk in pipe]
    assert received == chunks
    assert all(r is c for r, c in zip(received, chunks, strict=True))


async def test_iteration_after_partial_read_yields_rest_first() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"abcdef")
    await pipe.write(b"gh")
    pipe.close()
    assert await pipe.read(2) == b"ab"
    assert [chunk async for chunk in pipe] == [b"cdef", b"gh"]


async def test_readexactly_spans_chunks() -> None:
    pipe = AsyncPipe(limit=100)
    for chunk in (b"ab", b"cde", b"f"):
        await pipe.write(chunk)
    assert await pipe.readexactly(4) == b"abcd"
    assert await pipe.readexactly(2) == b"ef"


async def test_readexactly_at_early_eof_raises_incomplete_read() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"abc")
    pipe.close()
    with pytest.raises(asyncio.IncompleteReadError) as info:
        await pipe.readexactly(5)
    assert info.value.partial == b"abc"
    assert info.value.expected == 5


async def test_write_accepts_bytearray_and_memoryview() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(bytearray(b"ab"))
    await pipe.write(memoryview(b"cd"))
    await pipe.write(memoryview(bytearray(b"ef")))
    pipe.close()
    assert await pipe.read() == b"abcdef"


@pytest.mark.parametrize("item", [5, "text", [1, 2], None])
async def test_write_of_non_bytes_like_raises_type_error(item: object) -> None:
    pipe = AsyncPipe(limit=10)
    with pytest.raises(TypeError):
        await pipe.write(item)  # type: ignore[arg-type]
    assert (pipe.buffered, pipe.bytes_written, pipe.budget.used) == (0, 0, 0)


async def test_write_of_str_names_str_and_asks_for_bytes() -> None:
    pipe = AsyncPipe(limit=10)
    with pytest.raises(TypeError) as info:
        await pipe.write("text")  # type: ignore[arg-type]
    message = str(info.value)
    assert "bytes-like object" in message and "not str" in message
    assert "encode" in message
    assert "string argument without an encoding" not in message


async def test_write_of_int_names_int_and_writes_nothing() -> None:
    pipe = AsyncPipe(limit=100)
    with pytest.raises(TypeError, match=r"bytes-like object .* not int"):
        await pipe.write(10**9)  # type: ignore[arg-type]
    assert (pipe.buffered, pipe.bytes_written, pipe.budget.used) == (0, 0, 0)


async def test_write_of_wide_item_buffer_counts_bytes() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(memoryview(array.array("i", [1, 2, 3])))
    assert pipe.buffered == 3 * array.array("i").itemsize
    pipe.close()
    assert await pipe.read() == array.array("i", [1, 2, 3]).tobytes()


async def test_mutating_bytearray_after_write_does_not_change_data() -> None:
    pipe = AsyncPipe(limit=100)
    buf = bytearray(b"original")
    await pipe.write(buf)
    buf[:] = b"MUTATED!"
    view_source = bytearray(b"viewdata")
    await pipe.write(memoryview(view_source))
    view_source[:] = b"CHANGED!"
    pipe.close()
    assert await pipe.read() == b"originalviewdata"


async def test_immutable_bytes_are_not_copied() -> None:
    pipe = AsyncPipe(limit=100)
    data = b"immutable"
    await pipe.write(data)
    assert await pipe.__anext__() is data


async def test_empty_write_is_a_noop() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"")
    await pipe.write(bytearray())
    assert (pipe.bytes_written, pipe.buffered) == (0, 0)
    pipe.close()
    assert await pipe.read() == b""


async def test_write_larger_than_limit_is_split_and_flows() -> None:
    pipe = AsyncPipe(limit=10)
    data = bytes(range(256)) * 4  # 1024 bytes through a 10-byte pipe
    received = bytearray()

    async def consume() -> None:
        async for chunk in pipe:
            assert len(chunk) <= 10
            received.extend(chunk)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(consume())
        await pipe.write(data)
        pipe.close()
    assert bytes(received) == data
    assert pipe.peak_buffered <= 10


async def test_write_blocks_while_full_and_resumes_when_read() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"x" * 8)
    writer = asyncio.create_task(pipe.write(b"y" * 5))
    await run_ready()
    assert not writer.done()
    assert pipe.buffered == 8
    assert await pipe.read(4) == b"xxxx"  # 4 + 5 fits now
    await writer
    assert pipe.buffered == 9


# -- close ---------------------------------------------------------------------


async def test_close_is_idempotent() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"a")
    pipe.close()
    pipe.close()
    assert pipe.closed
    assert await pipe.read() == b"a"
    assert await pipe.read() == b""


async def test_write_after_close_raises() -> None:
    pipe = AsyncPipe(limit=10)
    pipe.close()
    with pytest.raises(PipeClosedError):
        await pipe.write(b"late")
    assert pipe.bytes_written == 0


async def test_close_while_writer_blocked_fails_the_write() -> None:
    pipe, writer = await full_pipe_and_blocked_writer()
    pipe.close()
    assert await pipe.read() == b"full"
    with pytest.raises(PipeClosedError):
        await writer
    assert pipe.budget.used == 0


async def test_close_fails_a_blocked_write_without_waiting_for_room() -> None:
    pipe, writer = await full_pipe_and_blocked_writer()
    pipe.close()
    with pytest.raises(PipeClosedError):
        await writer
    assert (pipe.buffered, pipe.budget.used) == (4, 4)
    assert await pipe.read() == b"full"
    assert pipe.budget.used == 0


async def test_readers_drain_buffer_then_see_eof() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"a")
    await pipe.write(b"b")
    pipe.close()
    assert await pipe.read(1) == b"a"
    assert await pipe.read(1) == b"b"
    assert await pipe.read(1) == b""
    assert await pipe.read(1) == b""  # EOF is sticky


async def test_close_wakes_blocked_reader_with_eof() -> None:
    pipe = AsyncPipe(limit=10)
    reader = asyncio.create_task(pipe.read(5))
    await run_ready()
    pipe.close()
    assert await reader == b""


async def test_close_wakes_every_blocked_reader() -> None:
    pipe = AsyncPipe(limit=10)
    readers = [asyncio.create_task(pipe.read()) for _ in range(3)]
    await run_ready()
    pipe.close()
    assert await asyncio.gather(*readers) == [b"", b"", b""]


# -- abort ---------------------------------------------------------------------


async def test_abort_from_writer_wakes_blocked_reader_with_cause() -> None:
    pipe = AsyncPipe(limit=10)
    reader = asyncio.create_task(pipe.read(5))
    await run_ready()
    cause = OSError("download failed")
    pipe.abort(cause)
    await assert_aborted(reader, cause)
    assert pipe.exception is cause


def write_more_in_a_shield(pipe: AsyncPipe) -> Awaitable[Any]:
    return asyncio.shield(write_more(pipe))


@pytest.mark.parametrize("write", [write_more, write_more_in_a_shield], ids=["plain", "shielded"])
async def test_abort_from_reader_wakes_blocked_writer_with_cause(
    write: Callable[[AsyncPipe], Awaitable[Any]],
) -> None:
    pipe, writer = await full_pipe_and_blocked_writer(write)
    cause = RuntimeError("upload failed")
    pipe.abort(cause)
    await assert_aborted(writer, cause)


async def test_abort_of_blocked_writer_leaves_its_task_uncancelled() -> None:
    async def write_then_report(pipe: AsyncPipe) -> int:
        with pytest.raises(PipeAbortedError):
            await pipe.write(b"more")
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0)  # a pending cancellation would be delivered here
        return task.cancelling()

    pipe, writer = await full_pipe_and_blocked_writer(write_then_report)
    pipe.abort()
    assert await writer == 0
    assert pipe.budget.used == 0


async def test_writer_cancelled_and_aborted_at_once_sees_the_cancellation() -> None:
    pipe, writer = await full_pipe_and_blocked_writer()
    writer.cancel()
    pipe.abort(RuntimeError("gave up"))
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert pipe.budget.used == 0


async def test_abort_returns_buffered_bytes_to_budget_at_once() -> None:
    budget = ByteBudget(100)
    pipe = AsyncPipe(budget=budget)
    await pipe.write(b"x" * 40)
    await pipe.write(b"y" * 30)
    assert await pipe.read(10) == b"x" * 10  # leaves a partial chunk behind
    assert budget.used == 60
    pipe.abort()
    assert budget.used == 0
    assert pipe.buffered == 0


async def test_abort_makes_later_writes_and_reads_raise() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"data")
    cause = ValueError("bad")
    pipe.abort(cause)
    await assert_aborted(pipe.write(b"more"), cause)
    await assert_aborted(pipe.read(), cause)
    with pytest.raises(PipeAbortedError):
        await pipe.readexactly(1)
    with pytest.raises(PipeAbortedError):
        await pipe.__anext__()


async def test_abort_without_cause_raises_without_cause() -> None:
    pipe = AsyncPipe(limit=10)
    pipe.abort()
    await assert_aborted(pipe.read(), None)
    assert pipe.aborted and pipe.closed


async def test_abort_after_close_drops_unread_data() -> None:
    pipe = AsyncPipe(limit=10)
    await pipe.write(b"abc")
    pipe.close()
    pipe.abort()
    with pytest.raises(PipeAbortedError):
        await pipe.read()
    assert pipe.budget.used == 0


async def test_only_first_abort_counts() -> None:
    pipe = AsyncPipe(limit=10)
    first, second = OSError("first"), OSError("second")
    pipe.abort(first)
    pipe.abort(second)
    assert pipe.exception is first


async def test_abort_wakes_writer_blocked_on_shared_budget_and_others_proceed() -> None:
    budget = ByteBudget(10)
    a, b = AsyncPipe(budget=budget), AsyncPipe(budget=budget)
    await a.write(b"a" * 10)
    blocked_b = asyncio.create_task(b.write(b"b" * 5))
    await run_ready()
    blocked_a = asyncio.create_task(a.write(b"a" * 5))  # queued behind b's request
    await run_ready()
    a.abort()  # frees a's 10 bytes and fails a's queued write
    with pytest.raises(PipeAbortedError):
        await blocked_a
    await blocked_b
    assert budget.used == 5
    assert budget.statistics().waiters == 0


# -- cancellation --------------------------------------------------------------


async def test_cancelled_write_leaves_budget_consistent_and_others_proceed() -> None:
    budget = ByteBudget(10)
    a, b = AsyncPipe(budget=budget), AsyncPipe(budget=budget)
    await a.write(b"a" * 8)
    blocked = asyncio.create_task(a.write(b"a" * 8))  # cannot fit: waits
    await run_ready()
    behind = asyncio.create_task(b.write(b"b" * 2))  # fits, but FIFO behind
    await run_ready()
    assert not behind.done()
    await cancel_and_check(blocked)
    await behind
    assert budget.used == 10
    assert a.buffered == 8
    assert a.bytes_written == 8
    a.close()
    assert await a.read() == b"a" * 8


async def test_cancelled_read_consumes_nothing() -> None:
    pipe = AsyncPipe(limit=10)
    reader = asyncio.create_task(pipe.read(5))
    await run_ready()
    await cancel_and_check(reader)
    await pipe.write(b"hello")
    assert await pipe.read(5) == b"hello"
    assert pipe.budget.used == 0


async def test_cancelled_write_while_pipe_has_own_limit_and_shared_budget() -> None:
    shared = ByteBudget(100)
    pipe = AsyncPipe(limit=10, budget=shared)
    await pipe.write(b"x" * 10)
    blocked = asyncio.create_task(pipe.write(b"y" * 5))
    await run_ready()
    await cancel_and_check(blocked)
    assert shared.used == 10
    assert pipe.buffered == 10


# -- limit and shared budgets --------------------------------------------------


async def test_own_limit_and_shared_budget_both_bound() -> None:
    shared = ByteBudget(100)
    pipe = AsyncPipe(limit=10, budget=shared)
    assert pipe.limit == 10
    await pipe.write(b"x" * 10)
    writer = asyncio.create_task(pipe.write(b"y"))
    await run_ready()
    assert not writer.done()  # own limit of 10 reached, though shared has room
    assert shared.used == 10
    await pipe.read(1)
    await writer
    assert shared.used == 10


# -- context manager -----------------------------------------------------------


async def test_async_with_normal_exit_closes() -> None:
    async with AsyncPipe(limit=10) as pipe:
        await pipe.write(b"abc")
        assert await pipe.read(3) == b"abc"
    assert pipe.closed and not pipe.aborted
    assert await pipe.read() == b""


async def test_async_with_normal_exit_releases_unread_bytes() -> None:
    budget = ByteBudget(100)
    async with AsyncPipe(budget=budget) as pipe:
        await pipe.write(b"unread")
    assert budget.used == 0
    with pytest.raises(PipeAbortedError):  # dropped data is never mistaken for EOF
        await pipe.read()


async def test_async_with_exception_aborts_with_it() -> None:
    budget = ByteBudget(100)
    error = RuntimeError("producer failed")
    with pytest.raises(RuntimeError):
        async with AsyncPipe(budget=budget) as pipe:
            await pipe.write(b"partial")
            raise error
    assert pipe.aborted
    assert pipe.exception is error
    assert budget.used == 0


async def test_async_with_cancellation_releases_every_byte() -> None:
    budget = ByteBudget(100)
    written = asyncio.Event()

    async def run() -> None:
        async with AsyncPipe(budget=budget) as pipe:
            await pipe.write(b"x" * 50)
            written.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(run())
    await written.wait()
    assert budget.used == 50
    await cancel_and_check(task)
    assert budget.used == 0


async def test_producer_failure_is_never_seen_as_eof() -> None:
    """A consumer whose producer failed gets an error, never a short stream."""
    pipe = AsyncPipe(limit=100)
    received = bytearray()

    async def consume() -> None:
        async for chunk in pipe:
            received.extend(chunk)

    consumer = asyncio.create_task(consume())
    await pipe.write(b"first half")
    await run_ready()
    assert received == b"first half"
    failure = ConnectionResetError("body broke")
    pipe.abort(failure)
    await assert_aborted(consumer, failure)


# -- introspection -------------------------------------------------------------


async def test_statistics_snapshot() -> None:
    pipe = AsyncPipe(limit=100)
    await pipe.write(b"x" * 30)
    await pipe.read(10)
    stats = pipe.statistics()
    assert (stats.limit, stats.buffered, stats.peak_buffered) == (100, 20, 30)
    assert (stats.bytes_written, stats.bytes_read) == (30, 10)
    assert not stats.closed and not stats.aborted
    assert "buffered=20" in repr(pipe)


# -- invariant under adversarial schedules ------------------------------------


async def _run_schedule(
    pipes: int,
    limit: int,
    write_sizes: list[int],
    read_sizes: list[int],
    seed: int,
) -> None:
    budget = CheckedBudget(limit)
    rng = random.Random(seed)
    pipe_list = [AsyncPipe(budget=budget) for _ in range(pipes)]
    payloads = [bytes(rng.getrandbits(8) for _ in range(sum(write_sizes))) for _ in range(pipes)]

    def check() -> None:
        assert budget.used <= budget.limit
        for p in pipe_list:
            assert p.buffered <= p.limit

    async def produce(pipe: AsyncPipe, payload: bytes, rng: random.Random) -> None:
        pos = 0
        for size in write_sizes:
            await pipe.write(payload[pos : pos + size])
            pos += size
            check()
            if rng.random() < 0.5:
                await run_ready()
        pipe.close()

    async def consume(pipe: AsyncPipe, rng: random.Random) -> bytes:
        out = bytearray()
        i = 0
        while True:
            mode = rng.random()
            if mode < 0.3:
                chunk = await pipe.read(read_sizes[i % len(read_sizes)])
            elif mode < 0.6:
                try:
                    chunk = await pipe.readexactly(read_sizes[i % len(read_sizes)])
                except asyncio.IncompleteReadError as exc:
                    chunk = exc.partial
                    out.extend(chunk)
                    break
            else:
                try:
                    chunk = await pipe.__anext__()
                except StopAsyncIteration:
                    break
            check()
            if not chunk:
                break
            out.extend(chunk)
            i += 1
            if rng.random() < 0.5:
                await run_ready()
        return bytes(out)

    async with asyncio.TaskGroup() as tg:
        results = []
        for pipe, payload in zip(pipe_list, payloads, strict=True):
            tg.create_task(produce(pipe, payload, random.Random(rng.random())))
            results.append(tg.create_task(consume(pipe, random.Random(rng.random()))))
    for payload, result in zip(payloads, results, strict=True):
        assert result.result() == payload
    assert budget.used == 0
    assert budget.peak <= limit


def _random_schedules(
    pipes: int, *, most_limit: int, most_write: int, most_writes: int, examples: int
) -> Callable[..., None]:
    """A property test: ``pipes`` pipes share one budget of 1 to ``most_limit`` bytes and
    carry up to ``most_writes`` writes of up to ``most_write`` bytes each, in random order."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        limit=st.integers(min_value=1, max_value=most_limit),
        write_sizes=st.lists(
            st.integers(min_value=0, max_value=most_write), min_size=1, max_size=most_writes
        ),
        read_sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=10),
        seed=st.integers(min_value=0, max_value=2**32),
    )
    def test(limit: int, write_sizes: list[int], read_sizes: list[int], seed: int) -> None:
        asyncio.run(_run_schedule(pipes, limit, write_sizes, read_sizes, seed))

    return test


test_invariant_single_pipe_random_schedule = _random_schedules(
    1, most_limit=64, most_write=200, most_writes=30, examples=60
)
test_invariant_eight_pipes_share_one_budget = _random_schedules(
    8, most_limit=256, most_write=300, most_writes=20, examples=40
)
