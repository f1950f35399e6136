"""The log and the rules of :class:`tests.faultproxy.FaultProxy`: each request it
received (an :class:`Exchange`), which requests a rule applies to (a :class:`Match`),
and the rules that choose a fault for them (:class:`Rule`, :class:`RandomFaults`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypedDict
from urllib.parse import parse_qsl

from aqueuepipe.s3 import PROBE_SUFFIX
from aqueuepipe.testing import s3_operation
from aqueuepipe.testing._server import _bucket_and_key

from ._faults import FAULT_KINDS, Fault, FaultKind, Status, check_seconds, random_fault

# --- Requests and the log -----------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Exchange:
    """One request the proxy received and what became of it: an entry of the log.

    The request fields are set when its head arrives; ``fault``, ``status``,
    ``forwarded`` and the byte counts as the exchange goes on.  ``status`` is the
    status sent to the client, ``None`` while none was (or if none ever was: a stall,
    or a reset before the head).
    """

    number: int
    """1-based, in order of arrival at the proxy."""
    connection: int
    """1-based number of the client connection it came on."""
    method: str
    target: str
    """The request-target as sent: ``/bucket/key?query``."""
    path: str
    query: str
    headers: Mapping[str, str]
    """Request headers by lower-cased name (repeated headers joined with ``, ``)."""
    operation: str
    """The S3 operation, as :func:`s3_operation` infers it."""
    bucket: str | None
    key: str | None
    fault: Fault | None = None
    status: int | None = None
    forwarded: bool = False
    """Whether the request reached the upstream."""
    request_bytes: int = 0
    """Body bytes received from the client."""
    response_bytes: int = 0
    """Body bytes sent to the client."""
    flipped: int | None = None
    """The body offset of the byte a :class:`FlipByte` fault flipped, in the request
    or the response body as its direction says; None if none was flipped."""
    error: str | None = None
    """Why the exchange ended early, if it did for another reason than its fault."""

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (a name without ``=`` maps to ``""``)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        """The request header ``name`` (any case), or None."""
        return self.headers.get(name.lower())

    @classmethod
    def of(
        cls,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        *,
        number: int = 0,
        connection: int = 0,
    ) -> Exchange:
        """The exchange of a request ``method target`` with ``headers``, before any reply.

        What the proxy logs when a request head arrives; tests of rules build them too.
        """
        items = headers.items() if isinstance(headers, Mapping) else headers
        joined: dict[str, str] = {}
        for name, value in items:
            lower = name.lower()
            joined[lower] = f"{joined[lower]}, {value}" if lower in joined else value
        path, _, query = target.partition("?")
        bucket, key = _bucket_and_key(path)
        return cls(
            number=number,
            connection=connection,
            method=method,
            target=target,
            path=path,
            query=query,
            headers=joined,
            operation=s3_operation(method, path, query, joined),
            bucket=bucket,
            key=key,
        )


def is_probe(exchange: Exchange) -> bool:
    """Whether ``exchange`` belongs to the library's probe of whether the server
    checks digests: it passes untouched and unlogged, so the faults a test scripts
    meet the copy's own requests."""
    return exchange.key is not None and exchange.key.endswith(PROBE_SUFFIX)


# --- Rules --------------------------------------------------------------------------


def _names(value: str | Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset({value} if isinstance(value, str) else value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Which requests a rule applies to: every given criterion must hold.

    ``operation`` and ``method`` take one name or a collection of names (an S3
    operation as :func:`s3_operation` names it; an HTTP method).  ``bucket`` and
    ``key`` must be equal (keys are compared URL-decoded).  ``path`` and ``query``
    are regular expressions searched in the raw path and query string; ``headers``
    maps header names to regular expressions searched in the header's value (the
    header must be present).  ``where`` is any further test.  ``Match()`` matches
    every request.
    """

    operation: str | Collection[str] | None = None
    method: str | Collection[str] | None = None
    bucket: str | None = None
    key: str | None = None
    path: str | None = None
    query: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    where: Callable[[Exchange], bool] | None = None

    def matches(self, exchange: Exchange) -> bool:
        """Whether ``exchange``'s request meets every criterion."""
        operations, methods = _names(self.operation), _names(self.method)
        if operations is not None and exchange.operation not in operations:
            return False
        if methods is not None and exchange.method not in methods:
            return False
        if self.bucket is not None and exchange.bucket != self.bucket:
            return False
        if self.key is not None and exchange.key != self.key:
            return False
        if self.path is not None and not re.search(self.path, exchange.path):
            return False
        if self.query is not None and not re.search(self.query, exchange.query):
            return False
        for name, pattern in self.headers.items():
            value = exchange.header(name)
            if value is None or not re.search(pattern, value):
                return False
        return self.where is None or self.where(exchange)


MatchLike = Match | str | None
"""A :class:`Match`, an operation name (``"UploadPart"``), or None for every request."""


GETS: Final = Match(operation="GetObject")
"""Every GetObject request."""
UPLOADS: Final = Match(operation=("PutObject", "UploadPart"))
"""Every request that carries object bytes to the server: PutObject and UploadPart."""


def as_match(match: MatchLike) -> Match:
    """``match`` as a :class:`Match` (see :data:`MatchLike`)."""
    if match is None:
        return Match()
    if isinstance(match, str):
        return Match(operation=match)
    return match


class Rule:
    """Apply ``fault`` to the matching requests: the next ``times`` of them (None: all).

    The first ``skip`` matching requests pass untouched.  ``seen`` counts the matching
    requests the rule was asked about, ``applied`` the faults it applied.
    """

    __slots__ = ("applied", "fault", "match", "seen", "skip", "times")

    def __init__(
        self, match: MatchLike, fault: Fault, *, times: int | None = 1, skip: int = 0
    ) -> None:
        if times is not None and times < 0:
            raise ValueError(f"times must not be negative, not {times}")
        if skip < 0:
            raise ValueError(f"skip must not be negative, not {skip}")
        self.match = as_match(match)
        self.fault = fault
        self.times = times
        self.skip = skip
        self.seen = 0
        self.applied = 0

    @property
    def exhausted(self) -> bool:
        """Whether the rule has applied its fault ``times`` times."""
        return self.times is not None and self.applied >= self.times

    def select(self, exchange: Exchange) -> Fault | None:
        """The fault to apply to ``exchange``, counting it; None to let it through."""
        if not self.match.matches(exchange):
            return None
        self.seen += 1
        if self.seen <= self.skip or self.exhausted:
            return None
        self.applied += 1
        return self.fault

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.match!r}, {self.fault!r}, times={self.times}, "
            f"skip={self.skip}, seen={self.seen}, applied={self.applied})"
        )


class RandomFaultOptions(TypedDict, total=False):
    """The keywords :meth:`FaultProxy.random_faults` passes on to :class:`RandomFaults`."""

    kinds: Sequence[FaultKind]
    match: MatchLike
    stall_seconds: float
    times: int | None


class RandomFaults(Rule):
    """Faults on about ``rate`` of the matching requests, chosen from ``kinds``.

    Deterministic for a seed, whatever the order in which concurrent requests arrive:
    whether a request is faulted, and how, depends only on the seed, on the request
    (method, key, query without the upload id's value, Range header; not the bucket,
    so runs with fresh bucket names agree) and on how many such requests the rule saw
    before (so a retry draws again).  Reset and Truncate cut the body at a random
    fraction of its length; Status is 503 SlowDown or 500 InternalError; Stall and
    DelayBody last ``stall_seconds``; FlipByte (``"flip_byte"``, never chosen unless
    asked for) flips a byte at a random fraction of the request body if the request
    has one (an upload), else of the response body.
    """

    __slots__ = ("_occurrences", "kinds", "rate", "seed", "stall_seconds")

    def __init__(
        self,
        rate: float,
        *,
        seed: int | str,
        kinds: Sequence[FaultKind] = ("reset", "status", "stall", "truncate"),
        match: MatchLike = None,
        stall_seconds: float = 1.0,
        times: int | None = None,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1], not {rate}")
        unknown = set(kinds) - FAULT_KINDS
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty list of fault kinds, not {kinds!r}")
        check_seconds(stall_seconds)
        super().__init__(match, Status(), times=times)
        self.rate = rate
        self.seed = seed
        self.kinds = tuple(kinds)
        self.stall_seconds = stall_seconds
        self._occurrences: dict[tuple[str, ...], int] = {}

    def select(self, exchange: Exchange) -> Fault | None:
        """The fault drawn for ``exchange``, counting it; None to let it through."""
        if not self.match.matches(exchange):
            return None
        self.seen += 1
        params = sorted(
            (name, "" if name == "uploadId" else value)
            for name, value in parse_qsl(exchange.query, keep_blank_values=True)
        )
        identity = (
            exchange.method,
            exchange.key or "",
            repr(params),
            exchange.header("range") or "",
        )
        occurrence = self._occurrences.get(identity, 0) + 1
        self._occurrences[identity] = occurrence
        rng = random.Random(f"{self.seed}|{identity}|{occurrence}")
        if rng.random() >= self.rate or self.exhausted:
            return None
        self.applied += 1
        kind = rng.choice(self.kinds)
        upload = exchange.header("transfer-encoding") is not None or (
            exchange.header("content-length") or "0"
        ).strip() not in ("", "0")
        return random_fault(kind, rng, stall_seconds=self.stall_seconds, upload=upload)

    def __repr__(self) -> str:
        return (
            f"RandomFaults({self.rate}, seed={self.seed!r}, kinds={self.kinds!r}, "
            f"match={self.match!r}, seen={self.seen}, applied={self.applied})"
        )
