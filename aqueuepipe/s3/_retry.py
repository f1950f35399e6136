"""How copies survive faults: which layer retries what, and for how long.

Three layers share one :class:`RetryPolicy`:

- **Requests** (every S3 call: GetObject up to its headers, PutObject,
  UploadPart, the multipart calls, listings) are retried by botocore's
  ``standard`` retry mode, up to ``attempts`` tries each: throttling (503
  SlowDown, ``Throttling``...), 5xx answers, connection errors and read timeouts.
  Client errors (4xx: ``NoSuchKey``, ``AccessDenied``...) are never retried.  An
  UploadPart retry resends the part from its buffer, which stays counted in the
  budget until the server has acknowledged the part.
- **Response bodies** that break off or stall after the headers arrived (a reset
  connection, a read timeout, a short body) cannot be retried by botocore: the
  copy resumes them from the next byte with a ranged GetObject pinned to the
  object's ETag (``If-Match``).  Bytes already passed on are never requested
  again.  If the object changed meanwhile the server answers 412 and the copy
  fails with :class:`~aqueuepipe.ObjectChangedError`, instead of producing a mix
  of two versions.  Resumes wait ``base_delay * 2**n`` seconds at most, with full
  jitter, and stop after ``attempts`` resumes per body or ``max_seconds``.
- **Stalls**: ``read_timeout`` bounds each wait for data on a connection, and
  ``stall_timeout`` bounds the time a whole copy may go without moving a byte,
  so a silent server cannot hang a batch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy", "as_policy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Retry and timeout settings for copies; see the module documentation.

    Raises:
        ValueError: a count below 1 or a time that is not positive.
    """

    attempts: int = 5
    max_seconds: float = 300.0
    base_delay: float = 0.1
    max_delay: float = 10.0
    read_timeout: float = 60.0
    connect_timeout: float = 10.0
    stall_timeout: float | None = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ValueError(f"attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        for name in ("max_seconds", "base_delay", "max_delay", "read_timeout", "connect_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.stall_timeout is not None and not self.stall_timeout > 0:
            raise ValueError(f"stall_timeout must be positive or None, got {self.stall_timeout!r}")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return (rng or random).uniform(0, ceiling)


def as_policy(retries: int | RetryPolicy | None) -> RetryPolicy:
    """``retries`` as a policy: an int is the number of retries after the first
    attempt (``retries=0``: one attempt; ``retries=3``: four), as its name says and
    as :attr:`TransferResult.retries` counts them.

    Raises:
        ValueError: ``retries`` is neither None, an int of 0 or more, nor a policy.
    """
    if retries is None:
        return RetryPolicy()
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(
            f"retries must be a number of retries (0 or more) or a RetryPolicy, got {retries!r}"
        )
    return RetryPolicy(attempts=retries + 1)
