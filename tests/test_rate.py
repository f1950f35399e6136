"""The bandwidth cap's token bucket: its average, its order, its errors."""

from __future__ import annotations

import asyncio

import pytest

from aqueuepipe._rate import RateLimit

MiB = 1024 * 1024


async def test_take_lets_the_rate_through_on_average() -> None:
    """8 MiB at 16 MiB/s with a 1 MiB bucket: at least (8 - 1) / 16 s."""
    limit = RateLimit(16 * MiB, burst=MiB)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(64):
        await limit.take(128 * 1024)
    elapsed = loop.time() - started
    assert elapsed >= 7 / 16
    assert elapsed < 30  # it ends: one timer per wait, nothing that spins


async def test_take_larger_than_the_bucket_is_paid_for_by_the_next_taker() -> None:
    limit = RateLimit(8 * MiB, burst=MiB)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await limit.take(5 * MiB)  # 4 MiB beyond the bucket: half a second owed
    await limit.take(1)
    assert loop.time() - started >= 0.5


async def test_takers_are_let_through_in_the_order_they_came() -> None:
    limit = RateLimit(32 * MiB, burst=MiB)
    done: list[str] = []

    async def take(name: str, n: int) -> None:
        await limit.take(n)
        done.append(name)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(take("big", 4 * MiB))
        tg.create_task(take("small", 1))
        tg.create_task(take("medium", MiB))
    assert done == ["big", "small", "medium"]


async def test_cancelled_taker_gives_its_bytes_back() -> None:
    limit = RateLimit(MiB, burst=MiB)
    await limit.take(MiB)  # the bucket is empty
    asked = asyncio.Event()

    async def take_a_minute() -> None:
        asked.set()
        await limit.take(60 * MiB)  # runs on, without a pause, to its timer

    waiting = asyncio.create_task(take_a_minute())
    await asked.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    loop = asyncio.get_running_loop()
    started = loop.time()
    await limit.take(1024)
    assert loop.time() - started < 30  # not behind the cancelled minute


@pytest.mark.parametrize(
    ("rate", "error", "match"),
    [
        (0, ValueError, "rate must be a positive number"),
        (-5, ValueError, "rate must be a positive number"),
        (float("inf"), ValueError, "rate must be a positive number"),
        ("50MB", TypeError, "rate must be a number of bytes per second, got '50MB'"),
        (True, TypeError, "rate must be a number"),
    ],
)
def test_rate_limit_refuses_a_rate_that_is_not_a_positive_number(
    rate: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RateLimit(rate)  # type: ignore[arg-type]
