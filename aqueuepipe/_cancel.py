"""Waiting for work that must finish even when the waiting task is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["finish", "outlast", "run_to_end", "succeeded", "wait_despite_cancellation"]

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


async def finish(
    operation: Awaitable[T],
) -> tuple[asyncio.Future[T], asyncio.CancelledError | None]:
    """Run ``operation`` to its end, even if the caller is cancelled meanwhile.

    Returns it done, with the cancellation that arrived while waiting (if any),
    for the caller to deal with the outcome (close what it opened, remove what it
    made) before re-raising it.
    """
    running = asyncio.ensure_future(operation)
    return running, await wait_despite_cancellation(running)


def succeeded(fut: asyncio.Future[Any]) -> bool:
    """Whether the done ``fut`` has a result; marks its exception as retrieved."""
    return not fut.cancelled() and fut.exception() is None


async def outlast(task: asyncio.Future[Any]) -> None:
    """Wait for ``task`` to end (it cleans up as it unwinds), even if cancelled meanwhile.

    Its outcome is dropped (its exception marked retrieved): the caller is leaving
    with an error or a cancellation of its own.  A cancellation that arrived while
    waiting is re-raised afterwards.
    """
    cancelled = await wait_despite_cancellation(task)
    succeeded(task)
    if cancelled is not None:
        raise cancelled


async def run_to_end(call: Awaitable[T]) -> T:
    """Await ``call`` to its end even if the caller is cancelled meanwhile.

    For requests whose effect must be known (an upload created, an object
    completed): abandoning them half way could leave an upload nobody aborts.
    A cancellation that arrived meanwhile is re-raised afterwards, in preference
    to the call's own outcome.
    """
    task, cancelled = await finish(call)
    if cancelled is not None:
        succeeded(task)  # its exception retrieved: the cancellation is what we report
        raise cancelled
    return task.result()
