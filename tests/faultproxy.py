"""A fault-injecting HTTP/1.1 reverse proxy between an S3 client and a moto server process.

The reliability tests of issue 6 point a client at ``proxy.endpoint_url`` (path-style
addressing, plain HTTP/1.1) and script what goes wrong::

    async with FaultProxy(moto_server.endpoint_url) as proxy:
        proxy.fail("UploadPart", status=503, times=2)           # two SlowDowns
        proxy.reset(Match(operation="GetObject"), after_bytes=1000)  # body cut, RST
        ...
        assert [e.status for e in proxy.exchanges("UploadPart")] == [503, 503, 200]

Each request the client sends is parsed, matched against the rules in the order they
were added (the first rule that applies a fault wins; later rules do not see the
request), forwarded to the upstream over a fresh connection (moto closes its
connections after every response anyway) and its response streamed back, with the
fault applied on the way.  Every request is recorded in :attr:`FaultProxy.log`.

Besides the rules, *transforms* (:class:`RewriteETags`, :class:`DropChecksums`) edit
every matching upstream response while they are installed, whatever rule fires: a
server whose ETags differ, or one without flexible checksums::

    proxy.rewrite_etags(lambda etag: '"0123"')        # every ETag, header and XML
    proxy.drop_checksum_headers()                     # no x-amz-checksum-* anywhere
    proxy.reject_checksum_requests()                  # 400 for checksum headers

Towards the client, connections are kept alive (HTTP/1.1's default), as aiohttp pools
them: the proxy only closes a connection after a fault that breaks it, when the client
asks (``Connection: close``), after ``max_requests_per_connection`` requests, or when a
response's body is delimited by the end of the connection; each time it says
``Connection: close`` in the response head if it sends one.  An idle kept-alive
connection is closed after ``idle_timeout`` (30 s), longer than aiobotocore's pool
keeps idle connections (12 s), so the client always gives up on an idle connection
first and never sends a request on one the proxy is closing.

``Expect: 100-continue`` (which botocore sends with every PutObject and UploadPart
body, whatever its size) is answered by the proxy itself once it has connected to the
upstream, and is not passed on; a :class:`Status` fault on such a request answers at
once, without ``100 Continue``, as S3 does, and closes the connection since the body
never came.  Request bodies are streamed through as they arrive, framed by
``Content-Length`` or ``Transfer-Encoding: chunked`` (passed on as is).

Every wait is bounded: reading a request or response head, each read of a body
(``io_timeout``), an idle connection (``idle_timeout``), stalls (at most
:data:`MAX_STALL_SECONDS`), the number of requests per connection and of headers per
message.  :meth:`FaultProxy.close` stops accepting, cancels every connection task and
waits for them, so nothing outlives the proxy.

Tests import every name from here.  This module holds the proxy itself; the faults
live in ``tests/_faults.py``, the log and the rules in ``tests/_fault_rules.py``, the
transforms in ``tests/_fault_transforms.py`` and the HTTP/1.1 framing in
``tests/_http11.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import math
import socket
import struct
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Final, Literal, NoReturn, Unpack
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from aqueuepipe.testing import s3_operation

from ._fault_rules import (
    GETS,
    UPLOADS,
    Exchange,
    Match,
    MatchLike,
    RandomFaultOptions,
    RandomFaults,
    Rule,
    as_match,
    is_probe,
)
from ._fault_transforms import (
    DropChecksums,
    RewriteETags,
    Transform,
    carries_checksum,
    editable_body,
)
from ._faults import (
    MAX_STALL_SECONDS,
    DelayBody,
    Fault,
    FaultKind,
    FlipByte,
    Reset,
    Stall,
    Status,
    Truncate,
)
from ._http11 import (
    BadMessage,
    Flipper,
    Framing,
    Head,
    body_pieces,
    encode_head,
    read_fields,
    read_line,
    unacknowledged,
    whole,
)

__all__ = [
    "GETS",
    "MAX_STALL_SECONDS",
    "UPLOADS",
    "DelayBody",
    "DropChecksums",
    "Exchange",
    "Fault",
    "FaultKind",
    "FaultProxy",
    "FlipByte",
    "Match",
    "MatchLike",
    "RandomFaults",
    "Reset",
    "RewriteETags",
    "Rule",
    "Stall",
    "Status",
    "Transform",
    "Truncate",
    "s3_operation",
]

_CLOSE_TIMEOUT = 2.0
# After a Reset's last bytes are written, how long to wait for the client to
# acknowledge them before the RST, which discards whatever is still unacknowledged.
_FLUSH_TIMEOUT = 2.0
_FLUSH_POLL = 0.002
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "proxy-connection", "te", "upgrade"})


class _Closed(Exception):
    """The exchange ended the client connection (a fault, or the client went away)."""


# --- The proxy ----------------------------------------------------------------------


class FaultProxy:
    """A reverse proxy on a free loopback port in front of ``upstream_url``.

    ``async with FaultProxy(url) as proxy:`` starts and closes it; so do
    :meth:`start` and :meth:`close`.  Script faults with :meth:`add` or the shortcuts
    :meth:`fail`, :meth:`reset`, :meth:`truncate`, :meth:`stall`, :meth:`delay_body`,
    :meth:`flip`, :meth:`reject_checksum_requests` and :meth:`random_faults`; edit
    responses with :meth:`add_transform` or :meth:`rewrite_etags` and
    :meth:`drop_checksum_headers`; read what happened in :attr:`log`.

    Bounds: ``max_requests_per_connection`` requests on one client connection,
    ``idle_timeout`` seconds waiting for the next request on it, ``io_timeout``
    seconds for any one read or write (head, body piece, upstream connect).
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        max_requests_per_connection: int = 1000,
        idle_timeout: float = 30.0,
        io_timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, not {upstream_url!r}")
        self.upstream_url = upstream_url
        self._upstream = (parts.hostname, parts.port)
        self._max_requests = max_requests_per_connection
        self._idle_timeout = idle_timeout
        self._io_timeout = io_timeout
        self._rules: list[Rule] = []
        self._transforms: list[Transform] = []
        self.log: list[Exchange] = []
        """Every request received, in order of arrival."""
        self.errors: list[BaseException] = []
        """Unexpected exceptions of connection handlers (bugs of the proxy)."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections = 0
        self._closed = False
        self.host = "127.0.0.1"
        self.port = 0

    # -- lifecycle --

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``create_client(endpoint_url=...)``."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1.

        Raises:
            RuntimeError: already started, or closed.
            OSError: could not listen.
        """
        if self._server is not None or self._closed:
            raise RuntimeError("a FaultProxy can be started only once")
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, end every connection and wait until they are closed.

        Idempotent.  Connection tasks are cancelled (a stalled exchange ends at once)
        and awaited, so no task or socket outlives the proxy.

        Raises:
            RuntimeError: a connection handler failed unexpectedly (after closing
                everything); the exceptions are in :attr:`errors`.
        """
        if self._closed:
            return
        self._closed = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        if self.errors:
            raise RuntimeError(f"the fault proxy failed: {self.errors[0]!r}") from self.errors[0]

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- rules --

    @property
    def rules(self) -> list[Rule]:
        """The rules, in the order they are tried (a copy)."""
        return list(self._rules)

    def add(self, rule: Rule) -> Rule:
        """Add ``rule`` after the existing ones and return it."""
        self._rules.append(rule)
        return rule

    @property
    def transforms(self) -> list[Transform]:
        """The transforms, in the order they apply (a copy)."""
        return list(self._transforms)

    def add_transform(self, transform: Transform) -> Transform:
        """Apply ``transform`` to every matching response from now on, after the others.

        Transforms apply besides whatever rule fires; see :class:`RewriteETags`.
        """
        self._transforms.append(transform)
        return transform

    def clear(self) -> None:
        """Remove every rule and transform (the log is kept: ``proxy.log.clear()`` empties it)."""
        self._rules.clear()
        self._transforms.clear()

    def fail(
        self,
        match: MatchLike = None,
        *,
        status: int = 503,
        s3_code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        cut_after: int | None = None,
        times: int | None = 1,
        skip: int = 0,
    ) -> Rule:
        """Answer matching requests with an S3 error (:class:`Status`).

        ``cut_after`` sends only that many bytes of the error body, then resets.
        """
        fault = Status(status, s3_code, message, retry_after, cut_after)
        return self.add(Rule(match, fault, times=times, skip=skip))

    def reject_checksum_requests(self, match: MatchLike = None) -> Rule:
        """Answer 400 ``InvalidRequest`` to every request sending a flexible checksum.

        As a server without flexible checksums does: a request with an
        ``x-amz-checksum-*`` header (``x-amz-checksum-crc32``...,
        ``x-amz-checksum-algorithm``), ``x-amz-sdk-checksum-algorithm`` or an
        ``x-amz-trailer`` naming a checksum is refused, unforwarded, every time.
        ``x-amz-checksum-mode`` (a GET asking for checksums, which old servers ignore)
        and ``Content-MD5`` pass.  ``match`` narrows the requests further.
        """
        criteria = as_match(match)
        further = criteria.where

        def carries(exchange: Exchange) -> bool:
            return carries_checksum(exchange) and (further is None or further(exchange))

        fault = Status(400, "InvalidRequest", "x-amz-checksum headers are not supported")
        return self.add(Rule(dataclasses.replace(criteria, where=carries), fault, times=None))

    def flip(
        self,
        match: MatchLike = None,
        *,
        offset: int = 0,
        fraction: float | None = None,
        direction: Literal["request", "response"] = "response",
        times: int | None = 1,
        skip: int = 0,
    ) -> Rule:
        """Flip a byte of the response (or request) body (:class:`FlipByte`).

        ``times=1`` corrupts the first matching attempt only; ``times=None`` every one.
        """
        fault = FlipByte(offset, fraction, direction)
        return self.add(Rule(match, fault, times=times, skip=skip))

    def rewrite_etags(self, replace: Callable[[str], str], match: MatchLike = None) -> RewriteETags:
        """Replace matching responses' ETags with ``replace(old)`` (:class:`RewriteETags`)."""
        transform = RewriteETags(replace, as_match(match))
        self.add_transform(transform)
        return transform

    def drop_checksum_headers(self, match: MatchLike = None) -> DropChecksums:
        """Remove flexible checksums from matching responses (:class:`DropChecksums`)."""
        transform = DropChecksums(as_match(match))
        self.add_transform(transform)
        return transform

    def reset(
        self, match: MatchLike = None, *, after_bytes: int = 0, times: int | None = 1, skip: int = 0
    ) -> Rule:
        """Reset the connection after ``after_bytes`` of the response body (:class:`Reset`)."""
        return self.add(Rule(match, Reset(after_bytes), times=times, skip=skip))

    def truncate(
        self, match: MatchLike = None, *, after_bytes: int = 0, times: int | None = 1, skip: int = 0
    ) -> Rule:
        """Close the connection after ``after_bytes`` of the body (:class:`Truncate`)."""
        return self.add(Rule(match, Truncate(after_bytes), times=times, skip=skip))

    def stall(
        self,
        match: MatchLike = None,
        *,
        seconds: float,
        forward: bool = False,
        times: int | None = 1,
        skip: int = 0,
    ) -> Rule:
        """Send nothing for ``seconds``, then close, or forward (:class:`Stall`)."""
        return self.add(Rule(match, Stall(seconds, forward), times=times, skip=skip))

    def delay_body(
        self,
        match: MatchLike = None,
        *,
        seconds: float,
        after_bytes: int = 0,
        times: int | None = 1,
        skip: int = 0,
    ) -> Rule:
        """Pause ``seconds`` after ``after_bytes`` of the body (:class:`DelayBody`)."""
        return self.add(Rule(match, DelayBody(seconds, after_bytes), times=times, skip=skip))

    def random_faults(
        self, rate: float, *, seed: int | str, **options: Unpack[RandomFaultOptions]
    ) -> RandomFaults:
        """Fault about ``rate`` of the matching requests, deterministically (:class:`RandomFaults`,
        whose defaults the ``options`` keep).

        ``match=Match(method=("GET", "PUT"))`` restricts them to some methods.
        """
        rule = RandomFaults(rate, seed=seed, **options)
        self.add(rule)
        return rule

    # -- the log --

    def exchanges(self, match: MatchLike = None) -> list[Exchange]:
        """The logged exchanges ``match`` matches (an operation name, a Match, or all)."""
        criteria = as_match(match)
        return [exchange for exchange in self.log if criteria.matches(exchange)]

    # -- serving --

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, not a coroutine: the task is ours to cancel and await
        # (asyncio 3.11 logs an error for cancelled tasks it made itself).
        if self._closed:
            writer.transport.abort()
            return
        self._connections += 1
        task = asyncio.create_task(
            self._serve(reader, writer, self._connections),
            name=f"faultproxy-connection-{self._connections}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: int
    ) -> None:
        abort = False
        try:
            for count in range(1, self._max_requests + 1):
                exchange_head = await self._next_request(reader, connection)
                if exchange_head is None:
                    return
                exchange, head = exchange_head
                last = count == self._max_requests
                if not await self._exchange(exchange, head, reader, writer, last=last):
                    return
        except _Closed:
            pass  # already reset or closed by a fault
        except BadMessage as exc:
            # Neither botocore nor moto sends these: a bug somewhere, reported by close().
            self.errors.append(exc)
            abort = True
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            abort = True  # the client went away or stopped talking
        except asyncio.CancelledError:
            abort = True
            raise
        except Exception as exc:
            self.errors.append(exc)
            abort = True
        finally:
            await _close(writer, abort=abort)

    async def _next_request(
        self, reader: asyncio.StreamReader, connection: int
    ) -> tuple[Exchange, Head] | None:
        """The next request's head, or None if the client closed or stayed idle."""
        try:
            async with asyncio.timeout(self._idle_timeout):
                line = await read_line(reader)
                if line == b"\r\n":  # RFC 9112 2.2: ignore one empty line before a request
                    line = await read_line(reader)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return None
        except TimeoutError:
            return None
        async with asyncio.timeout(self._io_timeout):
            fields = await read_fields(reader)
        start = line[:-2].decode("latin-1")
        method, _, rest = start.partition(" ")
        target, _, version = rest.rpartition(" ")
        if not method or not target.startswith("/") or not version.startswith("HTTP/1."):
            raise BadMessage(f"bad request line {start[:80]!r}")
        head = Head(start, fields)
        exchange = Exchange.of(
            method, target, fields, number=len(self.log) + 1, connection=connection
        )
        if not is_probe(exchange):
            self.log.append(exchange)
        return exchange, head

    def _choose(self, exchange: Exchange) -> Fault | None:
        if is_probe(exchange):
            return None
        for rule in self._rules:
            fault = rule.select(exchange)
            if fault is not None:
                return fault
        return None

    async def _exchange(
        self,
        exchange: Exchange,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        last: bool,
    ) -> bool:
        """Serve one request; True if the client connection stays open for another."""
        framing, length = head.framing()
        has_body = framing == "chunked" or (framing == "length" and length > 0)
        expect = (exchange.header("expect") or "").lower() == "100-continue" and has_body
        close = last or "close" in (exchange.header("connection") or "").lower()
        fault = exchange.fault = self._choose(exchange)

        if isinstance(fault, Stall):
            await asyncio.sleep(fault.seconds)
            if not fault.forward:
                return False
        if isinstance(fault, Status):
            if expect:
                # As S3 does: answer before the body, which then never comes, so
                # the connection cannot carry another request.
                await self._send_error(exchange, fault, writer, close=True)
                return False
            async with contextlib.aclosing(
                body_pieces(reader, framing, length, self._io_timeout)
            ) as pieces:
                async for piece in pieces:
                    exchange.request_bytes += len(piece)
            await self._send_error(exchange, fault, writer, close=close)
            return not close

        try:
            async with asyncio.timeout(self._io_timeout):
                upstream_reader, upstream = await asyncio.open_connection(*self._upstream)
        except (OSError, TimeoutError) as exc:
            exchange.error = f"upstream unreachable: {exc!r}"
            await self._send_error(
                exchange, Status(502, "BadGateway", str(exc)), writer, close=True
            )
            return False
        abort_upstream = True
        try:
            exchange.forwarded = True
            fields = [
                (name, value)
                for name, value in head.fields
                if name.lower() not in _HOP_BY_HOP and name.lower() != "expect"
            ]
            upstream.write(encode_head(head.start, [*fields, ("Connection", "close")]))
            if expect:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            flipper: Flipper | None = None
            if isinstance(fault, FlipByte) and fault.direction == "request":
                size: int | None = length
                if framing == "chunked":
                    decoded = exchange.header("x-amz-decoded-content-length") or ""
                    size = int(decoded) if decoded.strip().isdigit() else None
                flipper = Flipper(fault.position(size))
            async with contextlib.aclosing(
                body_pieces(reader, framing, length, self._io_timeout, flipper)
            ) as pieces:
                async for piece in pieces:
                    exchange.request_bytes += len(piece)
                    upstream.write(piece)
                    async with asyncio.timeout(self._io_timeout):
                        await upstream.drain()
            async with asyncio.timeout(self._io_timeout):
                await upstream.drain()
            if flipper is not None and flipper.flipped:
                exchange.flipped = flipper.at
            keep = await self._respond(exchange, fault, upstream_reader, writer, close=close)
            abort_upstream = False
            return keep
        finally:
            await _close(upstream, abort=abort_upstream)

    async def _respond(
        self,
        exchange: Exchange,
        fault: Fault | None,
        upstream: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        close: bool,
    ) -> bool:
        """Stream the upstream's response to the client, applying ``fault``."""
        while True:  # skip interim (1xx) responses; bounded by the upstream's header limits
            async with asyncio.timeout(self._io_timeout):
                start = (await read_line(upstream))[:-2].decode("latin-1")
                fields = await read_fields(upstream)
            _, _, rest = start.partition(" ")
            code_text = rest[:3]
            if not code_text.isdigit():
                raise BadMessage(f"bad status line from upstream {start[:80]!r}")
            status = int(code_text)
            if status >= 200:
                break
        head = Head(start, fields)
        framing: Framing
        if exchange.method == "HEAD" or status in (204, 304):
            framing, length = "none", 0
        else:
            framing, length = head.framing()
            if framing == "none":
                framing = "eof"
        if framing == "eof":
            close = True

        transforms = [
            t for t in self._transforms if t.match.matches(exchange) and not is_probe(exchange)
        ]
        edited: bytes | None = None
        for transform in transforms:
            fields = transform.edit_fields(fields)
        if transforms and editable_body(exchange, fields, framing, length):
            async with contextlib.aclosing(
                body_pieces(upstream, framing, length, self._io_timeout)
            ) as pieces:
                edited = b"".join([piece async for piece in pieces])
            for transform in transforms:
                edited = transform.edit_body(edited)
            length = len(edited)
            fields = [
                (name, str(length) if name.lower() == "content-length" else value)
                for name, value in fields
            ]

        flipper: Flipper | None = None
        if isinstance(fault, FlipByte) and fault.direction == "response":
            flipper = Flipper(fault.position(length if framing == "length" else None))

        cut: int | None = None
        if isinstance(fault, Reset | Truncate):
            cut = fault.after_bytes
            if fault.after_fraction is not None:
                cut = int(fault.after_fraction * length)
            if framing == "none" or (framing == "length" and length <= cut):
                # Nothing of the body can be cut off: lose the whole response.
                await self._break(writer, reset=isinstance(fault, Reset))
            close = True
        elif isinstance(fault, DelayBody):
            cut = fault.after_bytes

        fields = [(name, value) for name, value in fields if name.lower() not in _HOP_BY_HOP]
        if close:
            fields.append(("Connection", "close"))
        exchange.status = status
        writer.write(encode_head(start, fields))
        if edited is not None:
            body = whole(edited if flipper is None else flipper(edited))
        else:
            body = body_pieces(upstream, framing, length, self._io_timeout, flipper)
        async with contextlib.aclosing(body) as pieces:
            if cut is not None:
                await self._relay(exchange, pieces, writer, limit=cut)
                if isinstance(fault, Reset | Truncate):
                    await self._break(writer, reset=isinstance(fault, Reset))
                if isinstance(fault, DelayBody):
                    await asyncio.sleep(fault.seconds)
            await self._relay(exchange, pieces, writer, limit=None)
        async with asyncio.timeout(self._io_timeout):
            await writer.drain()
        if flipper is not None and flipper.flipped:
            exchange.flipped = flipper.at
        return not close

    async def _relay(
        self,
        exchange: Exchange,
        pieces: AsyncIterator[bytes],
        writer: asyncio.StreamWriter,
        *,
        limit: int | None,
    ) -> None:
        """Copy pieces to the client until the body ends, or ``limit`` bytes in all."""
        if limit is not None and exchange.response_bytes >= limit:
            return
        async for piece in pieces:
            if limit is not None and exchange.response_bytes + len(piece) >= limit:
                piece = piece[: limit - exchange.response_bytes]
                writer.write(piece)
                exchange.response_bytes += len(piece)
                return
            writer.write(piece)
            exchange.response_bytes += len(piece)
            async with asyncio.timeout(self._io_timeout):
                await writer.drain()

    async def _break(self, writer: asyncio.StreamWriter, *, reset: bool) -> NoReturn:
        """Deliver what was written, then reset (RST) or close (FIN) the connection.

        Raises:
            _Closed: always, to end the connection's loop.
        """
        writer.transport.set_write_buffer_limits(high=0)
        async with asyncio.timeout(self._io_timeout):
            await writer.drain()
        if reset:
            # An RST discards what the client has not acknowledged yet; on loopback
            # that is nothing unless the client stopped reading.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FLUSH_TIMEOUT):
                    while unacknowledged(writer):
                        await asyncio.sleep(_FLUSH_POLL)
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()
        raise _Closed

    async def _send_error(
        self, exchange: Exchange, fault: Status, writer: asyncio.StreamWriter, *, close: bool
    ) -> None:
        request_id = f"FAULTPROXY{exchange.number:010d}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(fault.error_code())}</Code>"
            f"<Message>{escape(fault.error_message())}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>faultproxy</HostId></Error>"
        ).encode()
        fields = [
            ("Date", formatdate(usegmt=True)),
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(body))),
            ("x-amz-request-id", request_id),
        ]
        if fault.retry_after is not None:
            fields.append(("Retry-After", str(math.ceil(fault.retry_after))))
            fields.append(("x-amz-retry-after", str(round(fault.retry_after * 1000))))
        if close or fault.cut_after is not None:
            fields.append(("Connection", "close"))
        phrase = http.HTTPStatus(fault.code).phrase if fault.code in _STATUS_CODES else "Error"
        exchange.status = fault.code
        writer.write(encode_head(f"HTTP/1.1 {fault.code} {phrase}", fields))
        if exchange.method != "HEAD":
            sent = body if fault.cut_after is None else body[: fault.cut_after]
            writer.write(sent)
            exchange.response_bytes = len(sent)
        if fault.cut_after is not None:
            await self._break(writer, reset=True)
        async with asyncio.timeout(self._io_timeout):
            await writer.drain()


_STATUS_CODES: Final = frozenset(status.value for status in http.HTTPStatus)


async def _close(writer: asyncio.StreamWriter, *, abort: bool) -> None:
    """Close ``writer``'s connection and wait (bounded) until it is closed."""
    if abort:
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await writer.wait_closed()
