"""Running a file operation to its end despite a cancellation, for the source and the
sink: the operation runs in a worker thread that cannot be interrupted, so it is
waited for and its outcome dealt with (a descriptor closed, a file removed) before
the cancellation propagates."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from .._cancel import wait_despite_cancellation

_T = TypeVar("_T")


async def finish(
    operation: Awaitable[_T],
) -> tuple[asyncio.Future[_T], asyncio.CancelledError | None]:
    """Run ``operation`` to its end, even if the caller is cancelled meanwhile.

    Returns it done, with the cancellation that arrived while waiting (if any),
    for the caller to deal with the outcome before re-raising it.
    """
    running = asyncio.ensure_future(operation)
    return running, await wait_despite_cancellation(running)


def succeeded(fut: asyncio.Future[Any]) -> bool:
    """Whether the done ``fut`` has a result; marks its exception as retrieved."""
    return not fut.cancelled() and fut.exception() is None
