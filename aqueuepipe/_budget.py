"""ByteBudget: a FIFO-fair semaphore counted in bytes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["BudgetLease", "BudgetStatistics", "ByteBudget"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetStatistics:
    """A snapshot of a :class:`ByteBudget`."""

    limit: int
    used: int
    peak: int
    waiters: int


def _check_size(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{what} must be >= 0, got {n}")


class ByteBudget:
    """A limit on the bytes held at once, shared by any number of holders.

    ``acquire(n)`` waits until ``n`` more bytes fit under :attr:`limit`;
    ``release(n)`` gives them back.

    **Fairness.**  Waiters are served in the order they arrived, so a large request
    is never starved by a stream of small ones: while it waits, later requests of
    any size wait behind it.  One exception keeps a large request that cannot fit
    (because holders that stopped moving, such as a stalled reader's pipe, keep
    the bytes it needs) from blocking everybody else: while the first waiter does
    not fit, a *small* request (at most ``limit // 16`` bytes) that fits in the free
    bytes is granted at once, until the bytes granted that way during that
    waiter's wait reach ``limit // 8``.  So:

    - the first waiter is delayed by at most ``limit // 8`` bytes of later, small
      requests (it is never starved: once the allowance is spent, every later
      request queues behind it, and each release serves it first when it fits);
    - a stalled large waiter lets small requests (a 5-byte read, a 4-byte upload,
      a pipe's chunk) through until they have taken ``limit // 8`` bytes; after that
      they queue.  Each new first waiter starts with a fresh allowance.

    A stalled holder is bounded by its own share (a pipe's own limit), never by
    this budget: give the holders that may stall a share well below the limit.

    One budget may be shared by many :class:`~aqueuepipe.AsyncPipe` objects and
    in-flight part buffers; that is how a batch of copies obeys one global limit.
    The budget is bound to no event loop until first used, and must then be used
    from that loop only.
    """

    __slots__ = (
        "_allowance",
        "_claims",
        "_growable",
        "_growers",
        "_limit",
        "_passed",
        "_peak",
        "_small",
        "_starting",
        "_used",
        "_waiters",
    )

    def __init__(self, limit: int) -> None:
        """Create a budget of ``limit`` bytes.

        Raises:
            ValueError: ``limit`` is not positive.
            TypeError: ``limit`` is not an int.
        """
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit must be an int, not {type(limit).__name__}")
        if limit <= 0:
            raise ValueError(f"limit must be > 0 (a positive number of bytes), got {limit}")
        self._limit = limit
        #: Requests of at most this many bytes may pass a first waiter that does not fit...
        self._small = limit // 16
        #: ... until this many bytes were granted that way during its wait.
        self._allowance = limit // 8
        #: Bytes granted past the current first waiter since it began to wait.
        self._passed = 0
        self._used = 0
        self._peak = 0
        # Each waiter is (bytes wanted, future); the future is resolved only once
        # those bytes have been counted as used on the waiter's behalf.
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        # Growable leases (see lease()): the bytes they hold before they grow, the
        # growth each may still ask for, and the growths waiting (served first).
        self._growable = 0
        self._claims: collections.Counter[int] = collections.Counter()
        self._growers: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._starting: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        return (
            f"<ByteBudget limit={self._limit} used={self._used} peak={self._peak} "
            f"waiters={len(self._waiters)}>"
        )

    @property
    def limit(self) -> int:
        """The most bytes that may be held at once."""
        return self._limit

    @property
    def used(self) -> int:
        """Bytes held now."""
        return self._used

    @property
    def available(self) -> int:
        """Bytes that could be acquired now (ignoring queued waiters)."""
        return self._limit - self._used

    @property
    def peak(self) -> int:
        """The most bytes ever held at once."""
        return self._peak

    def statistics(self) -> BudgetStatistics:
        """Return a snapshot of the budget's state."""
        return BudgetStatistics(
            limit=self._limit,
            used=self._used,
            peak=self._peak,
            waiters=len(self._waiters) + len(self._growers) + len(self._starting),
        )

    def try_acquire(self, n: int) -> bool:
        """Take ``n`` bytes if they fit now and nobody is waiting; never blocks.

        Returns whether the bytes were taken.  A request that fits is still
        refused while an :meth:`acquire` is queued, unless it is small enough to
        pass a first waiter that does not fit (see the class's "Fairness"), so a
        caller polling with ``try_acquire`` never overtakes a waiter otherwise.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative or larger than :attr:`limit`.
        """
        # The cheap tests come first; the full checks run only for what they let
        # through (an int subclass) or for what they must reject.
        if type(n) is not int or n < 0:
            self._check_request(n)
        used = self._used + n
        if used > self._limit:
            self._check_request(n)  # n > limit: it could never fit
            return False
        if self._waiters and not self._may_pass(n):
            return False
        self._used = used
        if used > self._peak:
            self._peak = used
        return True

    async def acquire(self, n: int) -> None:
        """Wait until ``n`` bytes fit, then count them as used.

        Cancellation is atomic: a cancelled ``acquire`` holds nothing afterwards,
        and waiters queued behind it proceed if they now fit.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative, or larger than :attr:`limit` (it could
                never be satisfied).
        """
        if self.try_acquire(n):
            return
        waiter = self._enqueue(n)
        try:
            await waiter
        except asyncio.CancelledError:
            self._cancel_waiter(waiter, n)
            raise

    def release(self, n: int) -> None:
        """Give back ``n`` bytes and wake the waiters that now fit.  Never blocks.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative or more than is held.
        """
        try:
            used = self._used - n
        except TypeError:  # not a number at all
            _check_size(n, "release size")
            raise
        if used < 0 or n < 0 or type(n) is not int:
            _check_size(n, "release size")
            if used < 0:
                raise ValueError(f"cannot release {n} bytes: only {self._used} are held")
        self._used = used
        if self._waiters or self._growers:
            self._wake()

    @contextlib.asynccontextmanager
    async def reserve(self, n: int) -> AsyncIterator[None]:
        """Hold ``n`` bytes for the body of an ``async with`` block.

        The bytes are released when the block exits, whether normally, by an
        exception, or by cancellation.

        Raises:
            ValueError: as :meth:`acquire`.
        """
        await self.acquire(n)
        try:
            yield
        finally:
            self.release(n)

    async def lease(self, n: int, *, up_to: int | None = None) -> BudgetLease:
        """Hold ``n`` bytes until the returned lease is closed.

        With ``up_to``, the lease may later :meth:`~BudgetLease.grow` to ``up_to``
        bytes while it holds its first ``n``: what a buffer needs when it cannot
        know its size before it has read a little (a stream's first part).  Such
        holding while waiting could deadlock a budget filled by leases that all
        wait to grow, so a growable lease is granted only while every open one
        could still grow (the bytes held by growable leases plus the largest growth
        any of them may ask for stay within :attr:`limit`), and a growth is
        served before every other waiter.  A lease that cannot start yet waits,
        in arrival order like :meth:`acquire`.

        Raises:
            ValueError: as :meth:`acquire`, or ``up_to`` is below ``n`` or above
                :attr:`limit`.
        """
        if up_to is None or up_to == n:
            await self.acquire(n)
            return BudgetLease(self, n, n)
        self._check_request(up_to)
        if up_to < n:
            raise ValueError(f"a lease of {n} bytes cannot grow to {up_to}")
        claim = up_to - n
        # Wait for the bytes, then for room among the growable leases; each wait is
        # one that a release or a lease's end wakes, in arrival order.
        while True:
            await self.acquire(n)
            if self._growable + n + max(claim, self._max_claim()) <= self._limit:
                break
            self.release(n)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._starting.append(waiter)  # woken when a growable lease ends
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._starting.remove(waiter)
        self._growable += n
        self._claims[claim] += 1
        return BudgetLease(self, n, up_to)

    # -- internals -----------------------------------------------------------

    def _max_claim(self) -> int:
        return max(self._claims, default=0)

    def _end_growable(self, held: int, claim: int) -> None:
        """A growable lease grew or closed: it no longer counts among them."""
        self._growable -= held
        self._claims[claim] -= 1
        if not self._claims[claim]:
            del self._claims[claim]
        # Leases waiting to start among the growable ones may now fit: they try again.
        starting, self._starting = self._starting, []
        for waiter in starting:
            if not waiter.done():
                waiter.set_result(None)

    async def _grow(self, n: int) -> None:
        """``acquire(n)`` for a lease that grows: served before every other waiter."""
        used = self._used + n
        if used <= self._limit and not self._growers:
            self._take(n)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._growers.append((n, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(n)
            else:
                self._forget_grower(waiter, n)
            raise

    def _forget_grower(self, waiter: asyncio.Future[None], n: int) -> None:
        with contextlib.suppress(ValueError):
            self._growers.remove((n, waiter))
        self._wake()

    def _may_pass(self, n: int) -> bool:
        """Whether a request for ``n`` bytes (which fit) may go before the waiters.

        Only while the first waiter cannot fit, only a small request, and only
        within the first waiter's allowance; a small request refused here spends
        the allowance, so no later one overtakes it.
        """
        if n > self._small:
            return False
        passed = self._passed + n
        if passed > self._allowance:
            self._passed = self._allowance
            return False
        self._passed = passed
        return True

    def _check_request(self, n: int) -> None:
        _check_size(n, "request size")
        if n > self._limit:
            raise ValueError(f"cannot acquire {n} bytes from a budget whose limit is {self._limit}")

    def _take(self, n: int) -> None:
        self._used += n
        if self._used > self._peak:
            self._peak = self._used

    def _enqueue(self, n: int) -> asyncio.Future[None]:
        """Queue a request for ``n`` bytes; the future resolves once granted."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, waiter))
        return waiter

    def _cancel_waiter(self, waiter: asyncio.Future[None], n: int) -> None:
        """Undo a request whose waiting was interrupted.

        If the bytes had already been granted, they are given back; otherwise the
        request leaves the queue.  Either way, waiters behind it are re-examined.
        """
        if waiter.done() and not waiter.cancelled():
            self.release(n)
            return
        first = bool(self._waiters) and self._waiters[0][1] is waiter
        with contextlib.suppress(ValueError):
            self._waiters.remove((n, waiter))
        self._wake(new_first=first)

    def _wake(self, *, new_first: bool = False) -> None:
        growers = self._growers
        while growers:
            n, waiter = growers[0]
            if waiter.done():
                growers.popleft()
                continue
            if self._used + n > self._limit:
                return  # growths go first: nothing else until this one fits
            growers.popleft()
            self._take(n)
            waiter.set_result(None)
        waiters = self._waiters
        served = new_first
        while waiters:
            n, waiter = waiters[0]
            if waiter.done():  # its acquire was cancelled
                waiters.popleft()
                served = True
                continue
            if self._used + n > self._limit:
                break
            waiters.popleft()
            self._take(n)
            waiter.set_result(None)
            served = True
        if served:
            # A new first waiter (or none): a fresh allowance, and the small
            # requests queued behind it may now pass it.
            self._passed = 0
            if len(waiters) > 1:
                self._pass_queued()

    def _pass_queued(self) -> None:
        """Grant, in order, the queued small requests that may pass the first waiter.

        Stops at the first one that may not, so the queue keeps its order.
        """
        waiters = self._waiters
        i = 1
        while i < len(waiters):
            n, waiter = waiters[i]
            if waiter.done():
                del waiters[i]
                continue
            if self._used + n > self._limit or not self._may_pass(n):
                return
            del waiters[i]
            self._take(n)
            waiter.set_result(None)


class BudgetLease:
    """Bytes held from a :class:`ByteBudget` by one owner, given back when closed.

    One owner per buffer: whatever holds the buffer holds the lease, and closing
    it (idempotent) returns every byte it holds, so no error path has to pair a
    release with an acquire by hand.
    """

    __slots__ = ("_budget", "_growable", "_held", "_up_to")

    def __init__(self, budget: ByteBudget, held: int, up_to: int) -> None:
        self._budget = budget
        self._held = held
        self._up_to = up_to
        self._growable = up_to > held

    def __repr__(self) -> str:
        return f"<BudgetLease held={self._held} up_to={self._up_to}>"

    @property
    def held(self) -> int:
        """The bytes this lease holds now."""
        return self._held

    async def grow(self) -> None:
        """Hold ``up_to`` bytes: wait for the rest, before every other waiter.

        Cancellation is atomic: a cancelled ``grow`` holds what it held before.

        Raises:
            RuntimeError: the lease is closed, or was not made growable.
        """
        if not self._growable:
            raise RuntimeError("this lease cannot grow (closed, grown, or made without up_to)")
        more = self._up_to - self._held
        await self._budget._grow(more)
        self._growable = False
        self._budget._end_growable(self._held, more)
        self._held = self._up_to

    def shrink(self, n: int) -> None:
        """Hold only ``n`` bytes from now on (the rest goes back at once)."""
        if not 0 <= n <= self._held:
            raise ValueError(f"cannot shrink a lease of {self._held} bytes to {n}")
        if self._growable:
            self._growable = False
            self._budget._end_growable(self._held, self._up_to - self._held)
        give, self._held = self._held - n, n
        self._up_to = n
        if give:
            self._budget.release(give)

    def close(self) -> None:
        """Give every byte back.  Idempotent; never blocks."""
        self.shrink(0)
