"""Cancellation anywhere in a batch leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random

import pytest

from aqueuepipe import ByteBudget, copy_many
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, open_uploads, payload, put


async def cancel_batch_after(
    pairs: list[tuple[str, str]], budget: ByteBudget, progress_events: int
) -> None:
    """Run a batch and cancel it once ``progress_events`` progress callbacks fired."""
    events = 0
    reached = asyncio.Event()

    def on_progress(src: str, dst: str, done: int, total: int | None) -> None:
        nonlocal events
        events += 1
        if events >= progress_events:
            reached.set()

    async def run() -> None:
        batch = copy_many(
            pairs,
            budget=budget,
            concurrency=8,
            part_concurrency=2,
            part_size=5 * MiB,
            progress=on_progress,
        )
        async with contextlib.aclosing(batch) as results:
            async for _ in results:
                pass

    task = asyncio.create_task(run())
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    task.cancel()
    for t in (task, waiter):
        with contextlib.suppress(asyncio.CancelledError):
            await t


@pytest.mark.slow
async def test_cancelling_a_batch_at_random_points_leaves_nothing_behind(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """20 seeded iterations: cancel a 16-object batch after a random number of
    progress events, from its first bytes to near its end."""
    src = await make_bucket()
    rng = random.Random(2026)
    sizes = [rng.choice([50_000, 2 * MiB, 6 * MiB, 11 * MiB]) for _ in range(16)]
    await asyncio.gather(
        *(put(s3_client, src, f"o{i:02}", payload(size, seed=i)) for i, size in enumerate(sizes))
    )
    for iteration in range(20):
        dst = await make_bucket()
        budget = ByteBudget(24 * MiB)
        cancel_after = rng.randint(1, 60)
        pairs = [(f"s3://{src}/o{i:02}", f"s3://{dst}/o{i:02}") for i in range(16)]
        await cancel_batch_after(pairs, budget, cancel_after)
        where = (iteration, cancel_after)
        assert budget.used == 0, where
        assert await open_uploads(s3_client, dst) == [], where
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == [], where
        gc.collect()  # an unclosed session or socket would warn here (warnings are errors)
