"""Creating aiobotocore S3 clients configured for streaming copies.

botocore is untyped, so :class:`S3Client` describes, structurally, the part of the
aiobotocore client aqueuepipe calls.  Requests take botocore's keyword arguments
(``Bucket=``, ``Key=``...) and responses are botocore's plain dicts; their values
are typed ``Any`` because that is what botocore gives us, and this module is the
one place the looseness is spelled out.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import ssl
import threading
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import botocore.loaders
from aiobotocore.config import AioConfig
from aiobotocore.hooks import AioHierarchicalEmitter
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.httpsession import get_cert_path

from aqueuepipe.__about__ import __version__
from aqueuepipe.s3._secrets import redact

__all__ = [
    "DEFAULT_REGION",
    "ChecksumWhen",
    "S3Client",
    "S3ClientMeta",
    "S3Paginator",
    "create_client",
    "resolve_endpoint_url",
    "resolve_region",
]

DEFAULT_REGION = "us-east-1"

ChecksumWhen = Literal["when_supported", "when_required"]

# A botocore response: a dict of str to values of many types (str, int, datetime,
# streaming bodies, nested dicts).  botocore ships no types for them.
_Response = dict[str, Any]


class S3ClientMeta(Protocol):
    """``client.meta``: where the client sends its requests."""

    @property
    def endpoint_url(self) -> str: ...

    @property
    def region_name(self) -> str: ...


class S3Paginator(Protocol):
    """An aiobotocore paginator: ``async for page in paginator.paginate(...)``."""

    def paginate(self, **kwargs: Any) -> AsyncIterable[_Response]: ...


class S3Client(Protocol):
    """The operations of an aiobotocore S3 client that aqueuepipe uses.

    Any aiobotocore S3 client satisfies it, such as the one :func:`create_client`
    yields or one a caller built with its own session and configuration.
    """

    @property
    def meta(self) -> S3ClientMeta: ...

    async def head_bucket(self, **kwargs: Any) -> _Response: ...
    async def create_bucket(self, **kwargs: Any) -> _Response: ...
    async def head_object(self, **kwargs: Any) -> _Response: ...
    async def get_object(self, **kwargs: Any) -> _Response: ...
    async def put_object(self, **kwargs: Any) -> _Response: ...
    async def delete_object(self, **kwargs: Any) -> _Response: ...
    async def delete_objects(self, **kwargs: Any) -> _Response: ...
    async def list_objects_v2(self, **kwargs: Any) -> _Response: ...
    async def create_multipart_upload(self, **kwargs: Any) -> _Response: ...
    async def upload_part(self, **kwargs: Any) -> _Response: ...
    async def copy_object(self, **kwargs: Any) -> _Response: ...
    async def upload_part_copy(self, **kwargs: Any) -> _Response: ...
    async def complete_multipart_upload(self, **kwargs: Any) -> _Response: ...
    async def abort_multipart_upload(self, **kwargs: Any) -> _Response: ...
    async def list_parts(self, **kwargs: Any) -> _Response: ...
    async def get_object_tagging(self, **kwargs: Any) -> _Response: ...
    async def list_multipart_uploads(self, **kwargs: Any) -> _Response: ...
    def get_paginator(self, operation_name: str) -> S3Paginator: ...


def resolve_endpoint_url(endpoint_url: str | None = None) -> str | None:
    """Return the S3 endpoint a client should use; ``None`` means AWS itself.

    In order: the argument, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``.  Empty
    values count as unset, and the environment is ignored when
    ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true, as botocore does.

    Raises:
        ValueError: the endpoint is not an ``http://`` or ``https://`` URL with a
            host, or holds ``user:password@`` (the message names the variable it
            came from, and never the credentials).
    """
    source = "endpoint_url"
    if not endpoint_url:
        endpoint_url = None
        ignore = os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower()
        if ignore != "true":
            for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
                if value := os.environ.get(name, "").strip():
                    endpoint_url, source = value, name
                    break
    if endpoint_url is None:
        return None
    try:
        parts = urlsplit(endpoint_url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(
            f"invalid S3 endpoint {redact(endpoint_url)!r} from {source}: "
            "expected an http:// or https:// URL with a host"
        )
    if "@" in parts.netloc:
        # The HTTP client refuses such URLs on every request; say so now.
        raise ValueError(
            f"invalid S3 endpoint {redact(endpoint_url)!r} from {source}: it must not hold "
            "user:password@ (credentials come from the AWS environment variables or "
            "configuration)"
        )
    return endpoint_url


def resolve_region(region: str | None = None) -> str:
    """Return the region: the argument, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, else us-east-1."""
    if region:
        return region
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if value := os.environ.get(name, "").strip():
            return value
    return DEFAULT_REGION


def create_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    max_pool_connections: int = 32,
    checksum_when: ChecksumWhen = "when_required",
    read_timeout: float = 60,
    connect_timeout: float = 10,
    max_attempts: int = 3,
) -> contextlib.AbstractAsyncContextManager[S3Client]:
    """Return an ``async with`` context that opens an S3 client and closes it on exit.

    ::

        async with create_client(endpoint_url="http://127.0.0.1:5000") as client:
            await client.put_object(Bucket="b", Key="k", Body=b"data")

    Credentials come from botocore's usual chain (environment, shared files, instance
    metadata); they are never logged nor put in any message.  The endpoint is
    resolved by :func:`resolve_endpoint_url` and the region by :func:`resolve_region`.
    With a custom endpoint the client uses path-style addressing
    (``http://host/bucket/key``), which every S3-compatible server understands.

    ``checksum_when`` sets both ``request_checksum_calculation`` and
    ``response_checksum_validation``: ``"when_required"`` (the default) skips the
    CRC botocore would otherwise compute over every body, since aqueuepipe computes
    its own hashes while streaming; ``"when_supported"`` is botocore's default.
    ``max_attempts`` counts the first try (botocore's "standard" retry mode).

    Raises:
        ValueError: a bad endpoint URL, or a pool size, timeout or attempt count that
            is not positive.  Nothing touches the network until the context is entered.
    """
    if max_pool_connections < 1:
        raise ValueError(f"max_pool_connections must be at least 1, not {max_pool_connections}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
    for name, value in (("read_timeout", read_timeout), ("connect_timeout", connect_timeout)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, not {value}")
    if checksum_when not in ("when_supported", "when_required"):
        raise ValueError(
            f"checksum_when must be 'when_supported' or 'when_required', not {checksum_when!r}"
        )
    endpoint = resolve_endpoint_url(endpoint_url)
    config = _client_config(
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # botocore's "max_attempts" counts retries only; "total_max_attempts" counts
        # the first try too, which is what our max_attempts means.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        request_checksum_calculation=checksum_when,
        response_checksum_validation=checksum_when,
        user_agent_extra=f"aqueuepipe/{__version__}",
        s3={
            # The payload is not signed (UNSIGNED-PAYLOAD, as botocore does itself
            # over TLS with a checksum): signing it means a SHA-256 pass over every
            # part on the event loop thread. Integrity comes from TLS and from the
            # hashes aqueuepipe checks against ETags and S3 checksums.
            "payload_signing_enabled": False,
            **({"addressing_style": "path"} if endpoint is not None else {}),
        },
    )
    return _open_client(
        region=resolve_region(region),
        endpoint_url=endpoint,
        config=config,
        validate_bodies=checksum_when == "when_supported",
    )


@contextlib.asynccontextmanager
async def _open_client(
    *, region: str, endpoint_url: str | None, config: Config, validate_bodies: bool
) -> AsyncIterator[S3Client]:
    # aiobotocore's own context wraps a coroutine made at once, which warns "never
    # awaited" if the context is dropped unentered; this generator makes it on entry.
    #
    # A fresh session per client (credentials are resolved anew), but what does not
    # depend on the environment is made once per process: the loader (parsing
    # botocore's service models costs ~25 MB and tens of ms) and the session's
    # built-in event handlers (registering them checks each handler's signature,
    # ~6 ms of CPU per session; copying the registered set takes 0.4 ms).
    session = AioSession(event_hooks=copy.copy(_builtin_events()), include_builtin_handlers=False)
    session.register_component("data_loader", _shared_loader())
    async with session.create_client(
        "s3", region_name=region, endpoint_url=endpoint_url, config=config
    ) as client:
        if not validate_bodies:
            # GetObject asks for the stored checksum (ChecksumMode=ENABLED) so that
            # the copy can check what it read; botocore would then check the body
            # too, a second pass over every byte, and raise before ours can read
            # the object again.
            client.meta.events.register(
                "before-call.s3.GetObject", _skip_body_validation, unique_id=_SKIP_VALIDATION
            )
        yield client


_SKIP_VALIDATION = "aqueuepipe-skip-body-validation"


def _skip_body_validation(params: dict[str, Any], **kwargs: Any) -> None:
    params.get("context", {}).get("checksum", {}).pop("response_algorithms", None)


@functools.cache
def _shared_loader() -> Any:
    return botocore.loaders.create_loader()


@functools.cache
def _builtin_events() -> Any:
    """An event emitter with botocore's and aiobotocore's built-in handlers registered.

    A new session registers exactly these (module-level handlers, none bound to
    the session); each session gets a copy, so nothing registered on one session
    reaches another.
    """
    emitter = AioHierarchicalEmitter()
    AioSession(event_hooks=emitter)
    return emitter


# -- the HTTP session ----------------------------------------------------------------
#
# aiobotocore reads a response body inside AIOHTTPSession.send, where aiohttp's errors
# become botocore's retryable ones (ConnectionClosedError...), only for operations
# without a streaming output.  The error body of a streaming operation (a 503 to a
# GetObject) is read later, by endpoint.convert_to_response_dict, where a connection
# that breaks mid-body raises aiohttp.ClientPayloadError as it is: botocore's retry
# handler does not know it, and the request fails instead of being retried (boto3,
# which reads the body with urllib3 inside the error mapping, retries it).  The
# session below reads such a body itself, inside a mapping of its own.


class _Session(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session, retrying a streaming request whose error body breaks."""

    async def send(self, request: Any) -> Any:
        response = await super().send(request)
        if request.stream_output and response.status_code >= 300:
            # An error (or redirect) answer: a small XML body, read whole here as
            # aiobotocore does for every other operation.
            try:
                await response.content
            except TimeoutError as exc:  # aiohttp's ServerTimeoutError among them
                response.raw.close()
                raise ReadTimeoutError(endpoint_url=request.url, error=exc) from exc
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
                response.raw.close()
                raise ConnectionClosedError(
                    error=exc, request=request, endpoint_url=request.url
                ) from exc
        return response


# -- one SSL context per process ----------------------------------------------------
#
# aiobotocore builds an SSLContext and loads the whole CA bundle into it for every
# client (15 to 25 ms of CPU, even for an http:// endpoint that never uses it).  An
# SSLContext is made to be shared by many connections, threads and event loops
# (aiohttp shares its own default one the same way) and nothing mutates it once
# built, so clients of this module share one per verify setting and CA bundle.
# aiobotocore 3.x builds its contexts in ``_build_ssl_contexts``; where that hook is
# missing (older versions) :class:`_Session` builds them as aiobotocore does.  Passing a
# context through ``AioConfig(connector_args={"ssl_context": ...})`` does not work:
# aiobotocore 3.10 forwards it to aiohttp beside its own ``ssl=``, which aiohttp
# rejects ("ssl parameters are mutually exclusive").

_SSL_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()  # contexts are built in a worker thread


def _ca_stamp(path: object) -> tuple[int, int] | None:
    """(mtime, size) of a CA bundle file, so a replaced bundle gets a new context."""
    if not isinstance(path, str):
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class _SharedSSLSession(_Session):
    """:class:`_Session`, with its SSL context built once per process."""

    def _build_ssl_contexts(self, proxy_url: str | None) -> tuple[Any, Any]:
        if proxy_url or self._cert_file:
            # Client certificates and proxies: built per client, as aiobotocore does.
            contexts: tuple[Any, Any] = super()._build_ssl_contexts(proxy_url)
            return contexts
        verify = self._verify
        path = get_cert_path(verify) if verify else None
        key = (verify, path, _ca_stamp(path))
        with _SSL_LOCK:
            context = _SSL_CONTEXTS.get(key)
            if context is None:
                if len(_SSL_CONTEXTS) >= 8:  # bundles replaced again and again
                    _SSL_CONTEXTS.clear()
                context = _SSL_CONTEXTS[key] = self._build_verify_context()
        return context, None


_SHARE_SSL = all(
    callable(getattr(AIOHTTPSession, name, None))
    for name in ("_build_ssl_contexts", "_build_verify_context")
)


def _client_config(**kwargs: Any) -> Config:
    """aiobotocore's Config with our session class; sharing SSL where aiobotocore allows."""
    session_cls = _SharedSSLSession if _SHARE_SSL else _Session
    config: Config = AioConfig(http_session_cls=session_cls, **kwargs)
    return config
