"""ByteBudget: a FIFO-fair semaphore counted in bytes (its queue, fairness and growths)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ._lease import BudgetLease, _Growable, _Growth, _Request
from ._spare import _SpareBuffers


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

    **Spare buffers.**  A lease may give its buffer back with its bytes
    (:meth:`BudgetLease.close` with ``keep=``), and a later lease of the same size
    asked with ``spare=True`` is granted with it (:attr:`BudgetLease.buffer`), so
    part after part reuses the same memory instead of allocating and zero-filling
    a new buffer.  The spare buffers are counted against the limit: what is held
    and what is spare never exceed it together, so every grant that would leave
    less room closes spare buffers (the sizes given back longest ago first).  They
    change no admission: a request waits exactly as long as it would without them.

    **Growable leases** (:meth:`lease` with ``up_to``: a stream's part, which
    cannot know its size before its bytes arrive) hold what they have while they
    wait for more, which could deadlock a budget they all fill.  So the budget
    keeps the largest growth any open growable lease may still ask for
    (:attr:`kept`) from every request that came after that lease and is not a
    growth, and lets one of them at a time (the *head*) take any step that fits.
    The head therefore grows to its whole size as soon as the holders that were
    there before it give back what it lacks, even beside later holders that
    never give anything back (stalled readers); once it is whole the next one
    becomes head, and the other growable leases grow only while what is kept
    stays free.  Growths are served before other waiters.  The price is paid by
    plain requests: they see :attr:`kept` fewer free bytes (small ones may still
    take them within the allowance above), so give a budget room for a part
    beside what its stalled holders may keep.

    A stalled holder is bounded by its own share (a pipe's own limit, a stream's
    part, which grows only as its bytes arrive), never by this budget: give the
    holders that may stall a share well below the limit.

    One budget may be shared by many :class:`~aqueuepipe.AsyncPipe` objects and
    in-flight part buffers; that is how a batch of copies obeys one global limit.
    The budget is bound to no event loop until first used, and must then be used
    from that loop only.
    """

    __slots__ = (
        "_allowance",
        "_growable",
        "_growths",
        "_limit",
        "_passed",
        "_peak",
        "_small",
        "_spare",
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
        # Each waiter is a _Request; its future is resolved only once its bytes have
        # been counted as used on its behalf.
        self._waiters: collections.deque[_Request] = collections.deque()
        # Growable leases (see lease()): the open ones with their claims and head,
        # and the growths waiting.
        self._growable = _Growable()
        self._growths: collections.deque[_Growth] = collections.deque()
        self._spare = _SpareBuffers()

    def __repr__(self) -> str:
        return (
            f"<ByteBudget limit={self._limit} used={self._used} spare={self._spare.bytes} "
            f"peak={self._peak} "
            f"waiters={len(self._waiters) + len(self._growths)}>"
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
        """Bytes that could be acquired now (ignoring queued waiters and :attr:`kept`)."""
        return self._limit - self._used

    @property
    def kept(self) -> int:
        """Bytes kept free for the growth of open growable leases (see :meth:`lease`)."""
        return self._growable.kept

    @property
    def spare(self) -> int:
        """Bytes in spare buffers given back for reuse (see the class): never more
        than :attr:`available`."""
        return self._spare.bytes

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
            waiters=len(self._waiters) + len(self._growths),
        )

    def try_acquire(self, n: int) -> bool:
        """Take ``n`` bytes if they fit now and nobody is waiting; never blocks.

        Returns whether the bytes were taken.  A request that fits is still
        refused while an :meth:`acquire` or a growth is queued, unless it is small
        enough to pass a first waiter that does not fit (see the class's
        "Fairness"), so a caller polling with ``try_acquire`` never overtakes a
        waiter otherwise.  Bytes kept for growable leases (:attr:`kept`) do not
        count as free.

        Raises:
            TypeError: ``n`` is not an int.
            ValueError: ``n`` is negative or larger than :attr:`limit`.
        """
        return self._try_acquire(n, None)

    def _try_acquire(self, n: int, request: _Request | None) -> bool:
        # The cheap tests come first; the full checks run only for what they let
        # through (an int subclass) or for what they must reject.
        if type(n) is not int or n < 0:
            self._check_request(n)
        used = self._used + n
        if used > self._limit:
            self._check_request(n)  # n > limit: it could never fit
            return False
        blocked = self._waiters or self._growths or used + self.kept > self._limit
        if blocked and not self._may_pass(n):
            return False
        self._used = used
        if used > self._peak:
            self._peak = used
        self._granted(request)
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
        await self._wait(_Request(n, 0, None))

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
        if self._waiters or self._growths:
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

    async def lease(self, n: int, *, up_to: int | None = None, spare: bool = False) -> BudgetLease:
        """Hold ``n`` bytes until the returned lease is closed.

        With ``up_to``, the lease may later :meth:`~BudgetLease.grow` towards
        ``up_to`` bytes, in one step or several, while it holds what it has: what a
        buffer needs when it cannot know its size before it has read a little (a
        stream's part).  Holding while waiting for more could deadlock a budget
        whose holders all wait to grow, so the budget keeps the largest growth any
        open growable lease may still ask for (:attr:`kept`) free from every later
        request (plain ones, new leases, other leases' steps).  One
        growable lease at a time, the *head* (the oldest of those whose remaining
        growth was the largest when it became head), may take any step that fits;
        it can therefore always grow all the way, and once it is whole and closed
        the next head can.  A lease is granted in arrival order, like
        :meth:`acquire`, once its ``n`` bytes fit beside what is kept: it does not
        wait for its own growth (a 4-byte stream never waits for a part's worth of
        a busy budget), but from then on its growth is kept from later requests.

        With ``spare``, the lease comes with a spare buffer of ``n`` bytes if the
        budget has one (:attr:`BudgetLease.buffer`, else None); its admission is
        the same either way.

        Raises:
            ValueError: as :meth:`acquire`, or ``up_to`` is below ``n`` or above
                :attr:`limit`.
        """
        if up_to is None or up_to == n:
            request = _Request(n, 0, None, spare=spare)
            if not self._try_acquire(n, request):
                await self._wait(request)
            lease = BudgetLease(self, n, n)
            lease.buffer = request.buffer
            return lease
        self._check_request(n)
        self._check_request(up_to)
        if up_to < n:
            raise ValueError(f"a lease of {n} bytes cannot grow to {up_to}")
        lease = BudgetLease(self, n, up_to)
        request = _Request(n, up_to - n, lease, spare=spare)
        if not (self._waiters or self._growths) and self._fits(request):
            self._grant(request)
        else:
            await self._wait(request)
        lease.buffer = request.buffer
        return lease

    # -- internals -----------------------------------------------------------

    def _fits(self, request: _Request) -> bool:
        """Whether a request fits beside what is kept for the open growable leases.

        A new growable lease needs only its first bytes: its own growth is kept
        from the requests that come after it, but it does not wait for it (a
        4-byte stream never waits for a part's worth of a busy budget).
        """
        return self._used + request.n + self.kept <= self._limit

    def _grant(self, request: _Request) -> None:
        self._take(request.n, request)
        lease = request.lease
        if lease is not None:  # a growable lease starts
            self._growable.start(lease, request.claim)

    async def _wait(self, request: _Request) -> None:
        waiter = request.future = asyncio.get_running_loop().create_future()
        self._waiters.append(request)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                if request.lease is not None:
                    request.lease.close()
                else:
                    self.release(request.n)
                raise
            first = bool(self._waiters) and self._waiters[0] is request
            with contextlib.suppress(ValueError):
                self._waiters.remove(request)
            self._wake(new_first=first)
            raise

    def _step(self, lease: BudgetLease, old_claim: int, more: int) -> None:
        """Count a growth of ``more`` bytes of ``lease`` (whose claim was ``old_claim``)."""
        self._take(more)
        lease._held += more
        self._growable.stepped(lease, old_claim, more)

    def _end_growable(self, lease: BudgetLease, claim: int, *, wake: bool = True) -> None:
        """``lease`` (whose claim was ``claim``) can grow no more: it no longer
        counts among the growable ones."""
        self._growable.end(lease, claim)
        if wake and (self._waiters or self._growths):
            self._wake()

    async def _grow(self, lease: BudgetLease, more: int) -> None:
        """Wait until ``lease`` may take ``more`` bytes, then count them."""
        claim = lease._claim
        growth = _Growth(lease, more)
        if (lease is self._growable.head or not self._growths) and self._may_grow(growth, claim):
            self._step(lease, claim, more)
            return
        waiter = growth.future = asyncio.get_running_loop().create_future()
        self._growths.append(growth)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted as the cancellation came: the lease keeps the step, as
                # if it had returned (its owner closes or shrinks it).
                raise
            with contextlib.suppress(ValueError):
                self._growths.remove(growth)
            self._wake()
            raise

    def _may_grow(self, growth: _Growth, claim: int) -> bool:
        """Whether ``growth`` (of a lease whose claim is ``claim``) may be granted now."""
        return self._growable.may_grow(growth, claim, self._limit - self._used)

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

    def _take(self, n: int, request: _Request | None = None) -> None:
        self._used += n
        if self._used > self._peak:
            self._peak = self._used
        self._granted(request)

    def _granted(self, request: _Request | None) -> None:
        """Bytes were just granted (to ``request``, if it was queued or is a lease):
        hand it a spare buffer if it asked for one, then close the spare buffers
        that no longer fit beside what is held."""
        spare = self._spare
        if request is not None and request.spare:
            request.buffer = spare.take(request.n)
        room = self._limit - self._used
        if spare.bytes > room:
            spare.fit(room)

    def _keep(self, buffer: io.BytesIO, size: int) -> None:
        """Keep ``buffer`` (of ``size`` bytes, which its lease is about to give back)
        as a spare if it fits beside what stays held; else close it."""
        if self._spare.bytes + size <= self._limit - self._used + size:
            self._spare.keep(buffer, size)
        else:
            buffer.close()

    def _wake(self, *, new_first: bool = False) -> None:
        served = new_first
        waiters, growths = self._waiters, self._growths
        progress = True
        while progress:
            progress = False
            # Growths first, the head's before the others', each in arrival order
            # (a step may end a head and so let another grow: go round again).
            growable = self._growable
            for growth in sorted(growths, key=lambda g: g.lease is not growable.head):
                waiter = growth.future
                assert waiter is not None
                if waiter.done():  # its grow was cancelled
                    growths.remove(growth)
                    continue
                claim = growth.lease._claim
                if self._may_grow(growth, claim):
                    growths.remove(growth)
                    self._step(growth.lease, claim, growth.more)
                    waiter.set_result(None)
                    served = progress = True
            while waiters and not growths:
                request = waiters[0]
                waiter = request.future
                assert waiter is not None
                if waiter.done():  # its wait was cancelled
                    waiters.popleft()
                    served = True
                    continue
                if not self._fits(request):
                    break
                waiters.popleft()
                self._grant(request)
                waiter.set_result(None)
                served = progress = True
        if served:
            # A new first waiter (or none): a fresh allowance, and the small
            # requests queued behind it may now pass it.
            self._passed = 0
        if waiters:
            # The first waiter does not fit (or a growth waits): small requests may
            # pass it, within its allowance.
            self._pass_queued()

    def _pass_queued(self) -> None:
        """Grant, in order, the queued small plain requests that may pass the first
        waiter (or what is kept for growths).  Stops at the first one that may not,
        so the queue keeps its order.
        """
        waiters = self._waiters
        i = 0
        while i < len(waiters):
            request = waiters[i]
            waiter = request.future
            assert waiter is not None
            if waiter.done():
                del waiters[i]
                continue
            passes = (
                request.lease is None
                and self._used + request.n <= self._limit
                and self._may_pass(request.n)
            )
            if not passes:
                if i:
                    return
                i = 1  # the first waiter itself: the ones behind it may pass it
                continue
            del waiters[i]
            self._grant(request)
            waiter.set_result(None)
