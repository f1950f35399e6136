"""A bandwidth cap shared by every copy of a run: a token bucket per direction.

:class:`RateLimit` lets ``rate`` bytes a second through, on average, to all its
takers together: each :meth:`~RateLimit.take` of ``n`` bytes waits until the
bucket holds them, in the order the takers came (FIFO, so a copy of large parts
does not starve one of small reads, nor the other way round).  The bucket holds
at most ``burst`` bytes (a tenth of a second's worth by default, at least one
1 MiB slice), so a pause is not followed by a burst at many times the cap.  A
take larger than the bucket is let through at once and paid for by the takers
after it: the average stays the cap whatever the sizes.

A wait is one timer, until the moment the bytes are due, never a polling loop;
a cancelled taker gives its bytes back, as if it had never asked.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["RateLimit"]

_MIN_BURST = 1024 * 1024


class RateLimit:
    """At most ``rate`` bytes per second on average through :meth:`take`."""

    __slots__ = ("_burst", "_lock", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise TypeError(f"rate must be a number of bytes per second, got {rate!r}")
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be a positive number of bytes per second, got {rate!r}")
        if burst is None:
            burst = max(rate / 10, _MIN_BURST)
        elif burst <= 0:
            raise ValueError(f"burst must be positive, got {burst!r}")
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<RateLimit rate={self._rate:g} B/s burst={self._burst:g} B>"

    @property
    def rate(self) -> float:
        """The bytes per second let through, on average."""
        return self._rate

    async def take(self, n: int) -> None:
        """Wait until ``n`` more bytes may pass (FIFO among the takers)."""
        if n <= 0:
            return
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self._stamp is not None:
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= n
            if self._tokens >= 0:
                return
            try:
                await asyncio.sleep(-self._tokens / self._rate)
            except asyncio.CancelledError:
                self._tokens += n  # not let through: as if never asked
                raise
