"""Deterministic scheduling helpers for tests (no wall-clock sleeps)."""

from __future__ import annotations

import asyncio


async def run_ready() -> None:
    """Let every task that is ready now run until it blocks, then resume.

    asyncio runs ready callbacks in FIFO order, so a callback queued now runs
    after everything already queued: awaiting it lets freshly created or woken
    tasks reach their next suspension point.  Tests assert the state they expect
    afterwards, so a schedule that differs fails loudly instead of flaking.
    """
    loop = asyncio.get_running_loop()
    for _ in range(3):  # three passes cover wake-ups that schedule one more hop
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done
