"""What a rule of :class:`tests.faultproxy.FaultProxy` does to a request it matches:
reset or cut a response, answer an error, stall, delay a body, flip a byte.

Each fault is a frozen value that checks its arguments when it is made.
"""

from __future__ import annotations

import http
import random
from dataclasses import dataclass
from typing import Final, Literal

MAX_STALL_SECONDS: Final = 60.0
"""The longest :class:`Stall` or :class:`DelayBody` accepted, so no fault hangs a test."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Forward the response head and ``after_bytes`` bytes of its body, then reset (RST).

    The client sees a body broken mid-stream, having received exactly ``after_bytes``
    bytes of it (unless it stopped reading for longer than 2 s: the RST discards what
    it has not acknowledged).  ``after_fraction`` (0 <= f < 1), if given, replaces
    ``after_bytes`` with that fraction of the body's ``Content-Length``.

    When the body is not longer than ``after_bytes`` (always so for a response without
    a body, such as PutObject's or HeadObject's), the connection is reset before any
    of the response is sent: the upstream did the work but the client never hears of
    it.  Either way the client sees an error.
    """

    after_bytes: int = 0
    after_fraction: float | None = None

    def __post_init__(self) -> None:
        _check_cut(self.after_bytes, self.after_fraction)


@dataclass(frozen=True, slots=True)
class Truncate:
    """Like :class:`Reset`, but close the connection cleanly (FIN): a short body.

    The response head still carries the full ``Content-Length``.
    """

    after_bytes: int = 0
    after_fraction: float | None = None

    def __post_init__(self) -> None:
        _check_cut(self.after_bytes, self.after_fraction)


@dataclass(frozen=True, slots=True)
class Status:
    """Answer ``code`` with an S3 XML error body, without forwarding the request.

    ``s3_code`` and ``message`` default to what S3 sends for the status (``SlowDown``
    for 503, ``InternalError`` for 500...).  ``retry_after`` (seconds) adds the
    headers ``Retry-After`` (whole seconds, rounded up), which botocore ignores, and
    ``x-amz-retry-after`` (milliseconds), which botocore's opt-in new retry behaviour
    (``AWS_NEW_RETRIES_2026``) honours.

    ``cut_after`` breaks the error body: the head still announces the whole body's
    ``Content-Length``, but only its first ``cut_after`` bytes follow (all of them if
    the body is not longer), then the connection is reset (RST, as :class:`Reset`
    does).  The client gets the status, then fails reading the body.  A HEAD
    response has no body: its head is sent, then the connection reset.
    """

    code: int = 503
    s3_code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    cut_after: int | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise ValueError(f"a Status fault needs an error code (400-599), not {self.code}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"retry_after must not be negative, not {self.retry_after}")
        if self.cut_after is not None and self.cut_after < 0:
            raise ValueError(f"cut_after must not be negative, not {self.cut_after}")

    def error_code(self) -> str:
        """The S3 error code the response body carries."""
        if self.s3_code is not None:
            return self.s3_code
        if self.code in _S3_ERRORS:
            return _S3_ERRORS[self.code][0]
        return http.HTTPStatus(self.code).phrase.replace(" ", "")

    def error_message(self) -> str:
        """The message the response body carries."""
        if self.message is not None:
            return self.message
        if self.code in _S3_ERRORS:
            return _S3_ERRORS[self.code][1]
        return http.HTTPStatus(self.code).description or http.HTTPStatus(self.code).phrase


_S3_ERRORS: Final = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


@dataclass(frozen=True, slots=True)
class Stall:
    """Send nothing for ``seconds``, then close the connection (FIN) unanswered.

    The request never reaches the upstream.  With ``forward=True`` the request is
    forwarded after the stall instead: a slow server rather than a dead one.
    """

    seconds: float
    forward: bool = False

    def __post_init__(self) -> None:
        check_seconds(self.seconds)


@dataclass(frozen=True, slots=True)
class DelayBody:
    """Forward the head and ``after_bytes`` bytes of the body, pause ``seconds``, go on.

    With a client read timeout shorter than ``seconds``, the body read times out.
    """

    seconds: float
    after_bytes: int = 0

    def __post_init__(self) -> None:
        check_seconds(self.seconds)
        _check_cut(self.after_bytes, None)


@dataclass(frozen=True, slots=True)
class FlipByte:
    """Corrupt one byte of a body (XOR 0x01); the rest of the exchange is unchanged.

    ``direction="response"`` flips a byte of the response body sent to the client;
    ``"request"`` flips a byte of the request body forwarded to the upstream, which
    then stores (or answers about) corrupted data.  The byte is the one at body
    offset ``offset``, or, if ``fraction`` (0 <= f < 1) is given, at
    ``int(fraction * length)``, where length is the body's ``Content-Length`` (for a
    chunked request, its ``x-amz-decoded-content-length`` if it has one).  Offsets
    count body data only, never chunked framing (chunk sizes, CRLFs, trailers); an
    ``aws-chunked`` content encoding is not decoded, its framing counts as data.

    The ``Content-Length`` is unchanged.  If the body is not longer than the offset,
    or ``fraction`` is given and the length is unknown, nothing is flipped.
    :attr:`Exchange.flipped` records the offset of the flipped byte, if any.
    """

    offset: int = 0
    fraction: float | None = None
    direction: Literal["request", "response"] = "response"

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError(f"offset must not be negative, not {self.offset}")
        if self.fraction is not None and not 0 <= self.fraction < 1:
            raise ValueError(f"fraction must be in [0, 1), not {self.fraction}")
        if self.direction not in ("request", "response"):
            raise ValueError(f"direction must be 'request' or 'response', not {self.direction!r}")

    def position(self, length: int | None) -> int | None:
        """The body offset to flip in a body of ``length`` bytes (None: unknown)."""
        if self.fraction is None:
            return self.offset
        return None if length is None else int(self.fraction * length)


Fault = Reset | Truncate | Status | Stall | DelayBody | FlipByte
"""What a rule does to a request it matches."""

FaultKind = Literal["reset", "truncate", "status", "stall", "delay_body", "flip_byte"]
"""The kinds :meth:`FaultProxy.random_faults` chooses from."""

FAULT_KINDS: Final = frozenset({"reset", "truncate", "status", "stall", "delay_body", "flip_byte"})
"""Every :data:`FaultKind`, for checking a list of them."""


def _check_cut(after_bytes: int, after_fraction: float | None) -> None:
    if after_bytes < 0:
        raise ValueError(f"after_bytes must not be negative, not {after_bytes}")
    if after_fraction is not None and not 0 <= after_fraction < 1:
        raise ValueError(f"after_fraction must be in [0, 1), not {after_fraction}")


def check_seconds(seconds: float) -> None:
    """Refuse a duration outside [0, :data:`MAX_STALL_SECONDS`]."""
    if not 0 <= seconds <= MAX_STALL_SECONDS:
        raise ValueError(f"seconds must be in [0, {MAX_STALL_SECONDS}], not {seconds}")


def random_fault(
    kind: FaultKind, rng: random.Random, *, stall_seconds: float, upload: bool
) -> Fault:
    """A fault of ``kind`` drawn with ``rng``, as :class:`RandomFaults` describes them.

    Reset and Truncate cut at a random fraction; Status is 503 or 500; Stall and
    DelayBody last ``stall_seconds``; FlipByte flips at a random fraction of the
    request body if ``upload`` (the request has one), else of the response body.
    """
    if kind == "reset":
        return Reset(after_fraction=rng.random())
    if kind == "truncate":
        return Truncate(after_fraction=rng.random())
    if kind == "status":
        return Status(rng.choice((503, 500)))
    if kind == "stall":
        return Stall(stall_seconds)
    if kind == "flip_byte":
        return FlipByte(fraction=rng.random(), direction="request" if upload else "response")
    return DelayBody(stall_seconds, after_bytes=rng.randrange(1024))
