"""A web service that streams uploads of any size into S3, and objects back out.

Every request, however many run at once, holds its bytes in ONE shared
:class:`~aqueuepipe.ByteBudget`, so the service's memory for bodies stays under
``--limit`` whatever the clients send; a request waits for room instead.

Run it (credentials come from the environment, as for any aqueuepipe copy, and are
never logged)::

    python examples/streaming_service.py --bucket B [--endpoint-url URL] [--limit BYTES] [--port P]
    curl -T big.iso http://127.0.0.1:8080/objects/big.iso      # 201 {"key", "size", ...}
    curl -o copy.iso http://127.0.0.1:8080/objects/big.iso

A client that disconnects in the middle of an upload leaves no object and no open
multipart upload: the copy fails (or is cancelled) and aborts the upload.  A client
that stops reading a download holds at most ``READER_SHARE`` bytes of the budget,
and what the S3 client buffers of the body (about 0.7 MiB, in the budget too; plus
the chunk in its socket's buffer), so the other requests go on.  A client
that goes away is logged as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from aqueuepipe import ByteBudget, NoSuchKeyError, TransferError, copy, open_reader
from aqueuepipe.s3 import DEFAULT_PART_SIZE, S3Client, S3Url, Side, create_client

BUDGET = web.AppKey("budget", ByteBudget)
BUCKET = web.AppKey("bucket", str)
CLIENT = web.AppKey("client", S3Client)

DEFAULT_LIMIT = 64 * 1024 * 1024
CHUNK = 256 * 1024  # the most bytes a GET takes from its reader, and writes, at once
#: The most a download reads ahead of its client, in the shared budget: a client
#: that stops reading holds this much (and the S3 body's buffer), never the whole
#: budget.  Each GET takes it from the budget when it starts, so it is small: the
#: shares of clients that stop reading must leave room for an upload's part.
READER_SHARE = 2 * CHUNK

#: The S3 connections the service may open.  A download holds its connection while
#: it waits for room in the budget, and an upload's part holds its bytes while it
#: waits for a connection: with fewer connections than requests in flight, the two
#: can wait on each other for good.  Connections are opened only as needed.
MAX_CONNECTIONS = 1024

log = logging.getLogger("streaming_service")


def s3_url(request: web.Request) -> str:
    """``s3://bucket/key`` for the request's key; 400 for a key this service cannot
    hold: one S3 refuses, or one ending in ``/`` (a prefix, not an object)."""
    key = request.match_info["key"]
    try:
        url = S3Url(request.app[BUCKET], key)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    if url.is_prefix:
        raise web.HTTPBadRequest(text=f"{key!r} ends in '/': a prefix, not an object")
    return str(url)


def client_gone(request: web.Request) -> bool:
    """Whether the client closed or reset its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


def http_error(exc: TransferError, *, client_side: Side | None = None) -> web.HTTPException:
    """The answer for a failed copy: 404 for a missing key; 400 when the client's own
    body broke (``client_side``: which end of the copy is the request); else 502, as S3
    failed us (a missing bucket too: it is this service's configuration, not the client's)."""
    if isinstance(exc, NoSuchKeyError):
        return web.HTTPNotFound(text="no such object")
    if client_side is not None and exc.side == client_side:
        return web.HTTPBadRequest(text=exc.reason)
    return web.HTTPBadGateway(text=exc.reason)


async def put_object(request: web.Request) -> web.Response:
    """``PUT /objects/{key}``: stream the request body into the object, of any size."""
    try:
        result = await copy(
            # The body, chunk by chunk as it arrives.  Not request.content itself:
            # copy() would read it with read(1 MiB), and aiohttp then buffers up to
            # twice that per request, outside the budget.
            request.content.iter_any(),
            s3_url(request),
            budget=request.app[BUDGET],
            client=request.app[CLIENT],
        )
    except TransferError as exc:  # a client gone mid-upload lands here too: nothing is left in S3
        if exc.side == "source" and client_gone(request):
            log.info("PUT %s: the client went away mid-body; nothing stored", request.path)
        raise http_error(exc, client_side="source") from exc
    return web.json_response(
        {
            "key": request.match_info["key"],
            "size": result.size,
            "etag": result.etag,
            "parts": result.parts,
            "verified": list(result.verified),
        },
        status=201,
    )


async def get_object(request: web.Request) -> web.StreamResponse:
    """``GET /objects/{key}``: stream the object back (chunked: its length is not asked).

    The object's bytes are verified as they pass; if they turn out wrong, or S3
    fails after the answer began, the connection is broken before the final chunk,
    so the client sees a truncated body rather than a complete wrong one.
    """
    url = s3_url(request)
    async with open_reader(
        url, limit=READER_SHARE, budget=request.app[BUDGET], client=request.app[CLIENT]
    ) as body:
        try:
            chunk = await body.read(CHUNK)  # a missing key or bucket raises here, before any answer
        except TransferError as exc:
            raise http_error(exc) from exc
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        sent = 0
        try:
            await response.prepare(request)
            while chunk:
                await response.write(chunk)
                sent += len(chunk)
                chunk = await body.read(CHUNK)
            await response.write_eof()
        except ConnectionError:
            # Leaving the block cancels the download; the answer cannot be completed
            # (its end cannot be written to a closed connection).
            log.info("GET %s: the client went away after %d bytes", request.path, sent)
    return response


def make_app(
    *,
    bucket: str,
    endpoint_url: str | None = None,
    limit: int = DEFAULT_LIMIT,
    client: S3Client | None = None,
) -> web.Application:
    """The service for ``bucket``, its requests sharing a budget of ``limit`` bytes.

    The S3 client is made at startup (``endpoint_url``, else the environment's) and
    closed at cleanup, unless ``client`` is given (then it is used as it is).

    Raises:
        ValueError: a bad bucket name, or a limit that cannot hold one part.
    """
    S3Url(bucket, "")  # checks the bucket name now rather than at the first request
    if limit < DEFAULT_PART_SIZE:
        raise ValueError(f"limit must hold one part ({DEFAULT_PART_SIZE} bytes), got {limit}")
    app = web.Application()
    app[BUCKET] = bucket
    app[BUDGET] = ByteBudget(limit)

    async def s3_client(app: web.Application) -> AsyncIterator[None]:
        if client is not None:
            app[CLIENT] = client
            yield
            return
        async with create_client(
            endpoint_url=endpoint_url, max_pool_connections=MAX_CONNECTIONS
        ) as made:
            app[CLIENT] = made
            yield

    app.cleanup_ctx.append(s3_client)
    app.router.add_put("/objects/{key:.+}", put_object)
    app.router.add_get("/objects/{key:.+}", get_object)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the service until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--bucket", required=True, help="the bucket objects are kept in")
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint (default: AWS)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="bytes held at once")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = make_app(bucket=args.bucket, endpoint_url=args.endpoint_url, limit=args.limit)
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
