"""The room an :class:`~aqueuepipe.AsyncPipe`'s writes wait for in its budgets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._budget import ByteBudget
from .._errors import PipeAbortedError, PipeClosedError


class _Room:
    """The budgets a pipe's bytes are counted in, and the writes waiting for room.

    The pipe's own budget (:attr:`own`) holds it to ``limit`` and counts what it
    holds (``peak_buffered``); a ``shared`` budget counts the same bytes again,
    with those of its other holders.
    """

    __slots__ = ("_blocked", "_interrupted", "budgets", "max_chunk", "own", "shared")

    def __init__(self, limit: int, shared: ByteBudget | None) -> None:
        own = ByteBudget(limit)
        self.own = own
        self.shared = shared
        # The order in which a write that must wait takes them: the tighter
        # limit first, so that a writer held up by it keeps nothing of the other
        # budget meanwhile.  (Shared first when the own limit is no tighter: the
        # own budget then always has room once the shared one granted it.)
        self.budgets: tuple[ByteBudget, ...]
        if shared is None:
            self.budgets = (own,)
        elif own.limit < shared.limit:
            self.budgets = (own, shared)
        else:
            self.budgets = (shared, own)
        #: The largest chunk that fits in every budget.
        self.max_chunk = min(b.limit for b in self.budgets)
        # Tasks waiting for room, and those that interrupt() cancelled to wake them.
        self._blocked: set[asyncio.Task[object]] = set()
        self._interrupted: set[asyncio.Task[object]] = set()

    async def take(
        self, size: int, interrupted: Callable[[], PipeAbortedError | PipeClosedError]
    ) -> None:
        """Count ``size`` bytes (at most :attr:`max_chunk`) in every budget, waiting
        for room; a failed or cancelled ``take`` holds nothing afterwards.

        Raises:
            PipeClosedError, PipeAbortedError: :meth:`interrupt` woke the wait;
                ``interrupted()`` says which.
        """
        taken: list[ByteBudget] = []
        try:
            for budget in self.budgets:
                if not budget.try_acquire(size):
                    await self._wait_for(budget, size, interrupted)
                taken.append(budget)
        except BaseException:
            for budget in taken:
                budget.release(size)
            raise

    def give_back(self, size: int) -> None:
        """Release ``size`` bytes in every budget."""
        for budget in self.budgets:
            budget.release(size)

    def interrupt(self) -> None:
        """Wake every write waiting for room (the pipe was closed or aborted)."""
        for writer in self._blocked - self._interrupted:
            writer.cancel()
            self._interrupted.add(writer)

    async def _wait_for(
        self,
        budget: ByteBudget,
        size: int,
        interrupted: Callable[[], PipeAbortedError | PipeClosedError],
    ) -> None:
        """``budget.acquire(size)``, interrupted by :meth:`interrupt`.

        It cancels the waiting task, as :func:`asyncio.timeout` does: that
        cancellation is undone here and becomes ``interrupted()``
        (:class:`PipeClosedError` or :class:`PipeAbortedError`), while any other
        cancellation propagates as usual.  Either way the interrupted ``acquire``
        holds nothing afterwards.
        """
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._blocked.add(task)
        try:
            await budget.acquire(size)
        except asyncio.CancelledError:
            if task in self._interrupted and task.uncancel() <= cancelling:
                error = interrupted()
                raise error from error.__cause__  # abort's exception, or None
            raise
        finally:
            self._blocked.discard(task)
            self._interrupted.discard(task)
