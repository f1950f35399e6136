"""Waiting for work that must finish even when the waiting task is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["run_to_end", "wait_despite_cancellation"]

T = TypeVar("T")


async def wait_despite_cancellation(fut: asyncio.Future[Any]) -> asyncio.CancelledError | None:
    """Wait until ``fut`` is done, even if the calling task is cancelled meanwhile.

    Returns the first cancellation that arrived while waiting (``None`` if none
    did), for the caller to re-raise once it has dealt with the outcome of ``fut``.
    """
    cancelled: asyncio.CancelledError | None = None
    while not fut.done():
        try:
            # Unlike wait_for(), wait() leaves fut running when this task is cancelled.
            await asyncio.wait((fut,))
        except asyncio.CancelledError as exc:
            if cancelled is None:
                cancelled = exc
    return cancelled


async def run_to_end(call: Awaitable[T]) -> T:
    """Await ``call`` to its end even if the caller is cancelled meanwhile.

    For requests whose effect must be known (an upload created, an object
    completed): abandoning them half way could leave an upload nobody aborts.
    A cancellation that arrived meanwhile is re-raised afterwards, in preference
    to the call's own outcome.
    """
    task = asyncio.ensure_future(call)
    cancelled = await wait_despite_cancellation(task)
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what we report
        raise cancelled
    return task.result()
