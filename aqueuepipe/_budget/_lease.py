"""What a :class:`~aqueuepipe.ByteBudget` hands out and queues: leases, and the
requests and growths waiting for their bytes."""

from __future__ import annotations

import asyncio
import collections
import io
from dataclasses import dataclass
from typing import Protocol


class _Budget(Protocol):
    """What a lease asks of the budget it holds bytes from (a ByteBudget)."""

    @property
    def _growable(self) -> _Growable: ...
    async def _grow(self, lease: BudgetLease, more: int) -> None: ...
    def _end_growable(self, lease: BudgetLease, claim: int, *, wake: bool = True) -> None: ...
    def _keep(self, buffer: io.BytesIO, size: int) -> None: ...
    def release(self, n: int) -> None: ...


class _Growable:
    """The open growable leases of a budget (see :meth:`ByteBudget.lease`).

    In arrival order, with the growth each may still ask for (its claim: the
    largest is what the budget keeps free) and the one whose growth is always
    kept possible (the head).
    """

    __slots__ = ("claims", "head", "leases")

    def __init__(self) -> None:
        self.leases: dict[BudgetLease, None] = {}
        self.claims: collections.Counter[int] = collections.Counter()
        self.head: BudgetLease | None = None

    @property
    def kept(self) -> int:
        """The bytes kept free for the growth of the open growable leases."""
        return max(self.claims, default=0)

    def start(self, lease: BudgetLease, claim: int) -> None:
        self.leases[lease] = None
        self.claims[claim] += 1
        if self.head is None:
            self.head = lease

    def stepped(self, lease: BudgetLease, old_claim: int, more: int) -> None:
        """``lease``, whose claim was ``old_claim``, grew by ``more`` bytes."""
        left = old_claim - more
        if left:
            self._forget_claim(old_claim)
            self.claims[left] += 1
        else:
            self.end(lease, old_claim)

    def end(self, lease: BudgetLease, claim: int) -> None:
        """``lease`` (whose claim was ``claim``) can grow no more."""
        self._forget_claim(claim)
        del self.leases[lease]
        if self.head is lease:
            self.head = None
            best = 0
            for other in self.leases:  # the oldest of the largest claims
                if other._claim > best:
                    self.head, best = other, other._claim

    def may_grow(self, growth: _Growth, claim: int, free: int) -> bool:
        """Whether ``growth`` (of a lease whose claim is ``claim``) may take its
        bytes out of ``free``: the head's step when it fits; another's only if
        what is kept stays free."""
        if growth.lease is self.head:
            return growth.more <= free
        # What is kept after the step: this lease's claim goes down by the step.
        others = (c for c, leases in self.claims.items() if c != claim or leases > 1)
        keep = max(claim - growth.more, max(others, default=0))
        return growth.more + keep <= free

    def _forget_claim(self, claim: int) -> None:
        self.claims[claim] -= 1
        if not self.claims[claim]:
            del self.claims[claim]


@dataclass(slots=True, eq=False)
class _Request:
    """A request: ``n`` bytes now, and for a growable lease, its ``claim``;
    ``spare``: it takes a spare buffer of ``n`` bytes when granted (``buffer``)."""

    n: int
    claim: int
    lease: BudgetLease | None
    future: asyncio.Future[None] | None = None
    spare: bool = False
    buffer: io.BytesIO | None = None


@dataclass(slots=True, eq=False)
class _Growth:
    """A queued growth of ``lease`` by ``more`` bytes."""

    lease: BudgetLease
    more: int
    future: asyncio.Future[None] | None = None


class BudgetLease:
    """Bytes held from a :class:`~aqueuepipe.ByteBudget` by one owner, given back when closed.

    One owner per buffer: whatever holds the buffer holds the lease, and closing
    it (idempotent) returns every byte it holds, so no error path has to pair a
    release with an acquire by hand.
    """

    __slots__ = ("_budget", "_held", "_up_to", "buffer")

    def __init__(self, budget: _Budget, held: int, up_to: int) -> None:
        self._budget = budget
        self._held = held
        self._up_to = up_to
        #: The spare buffer this lease was granted with (``lease(spare=True)``), or None.
        self.buffer: io.BytesIO | None = None

    def __repr__(self) -> str:
        return f"<BudgetLease held={self._held} up_to={self._up_to}>"

    @property
    def held(self) -> int:
        """The bytes this lease holds now."""
        return self._held

    @property
    def up_to(self) -> int:
        """The most bytes this lease may grow to (its :attr:`held` if it cannot grow)."""
        return self._up_to

    @property
    def _claim(self) -> int:
        return self._up_to - self._held

    async def grow(self, to: int | None = None) -> None:
        """Hold ``to`` bytes (default: ``up_to``): wait for the rest, before every
        waiter that is not a growth.

        A lease may grow in as many steps as it likes; it stops being growable once
        it holds ``up_to``.  Cancellation is atomic: a cancelled ``grow`` holds what
        it held before.

        Raises:
            RuntimeError: the lease cannot grow (made without ``up_to``, grown
                whole, shrunk or closed).
            ValueError: ``to`` is not above what it holds, or above ``up_to``.
        """
        if self not in self._budget._growable.leases:
            raise RuntimeError("this lease cannot grow (closed, grown, or made without up_to)")
        target = self._up_to if to is None else to
        if not self._held < target <= self._up_to:
            raise ValueError(
                f"a lease holding {self._held} bytes cannot grow to {target} "
                f"(at most {self._up_to})"
            )
        await self._budget._grow(self, target - self._held)  # counts the bytes held

    def shrink(self, n: int) -> None:
        """Hold only ``n`` bytes from now on (the rest goes back at once); the lease
        can grow no more."""
        if not 0 <= n <= self._held:
            raise ValueError(f"cannot shrink a lease of {self._held} bytes to {n}")
        budget = self._budget
        claim = self._claim
        give, self._held = self._held - n, n
        self._up_to = n
        if self in budget._growable.leases:
            budget._end_growable(self, claim)
        if give:
            budget.release(give)

    def close(self, *, keep: io.BytesIO | None = None) -> None:
        """Give every byte back.  Idempotent; never blocks.

        ``keep``: a buffer of exactly :attr:`held` bytes, no longer used, that the
        budget keeps as a spare for a later lease of that size if it fits beside
        what stays held (else it is closed).
        """
        self.buffer = None
        if keep is not None:
            if self._held:
                self._budget._keep(keep, self._held)
            else:
                keep.close()
        self.shrink(0)
