"""Translating botocore, aiohttp and OS errors into aqueuepipe's exceptions.

This is the one boundary where errors of the libraries underneath become
:class:`~aqueuepipe.TransferError` and its subclasses, so a user never imports
botocore to catch ours.  Messages are built from what the caller tells us (side,
bucket, key) and from fixed descriptions of the error codes; text that comes from
elsewhere is scrubbed of anything that looks like a credential and shortened.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import aiohttp
from botocore import exceptions as boto

from aqueuepipe._errors import (
    ChecksumMismatchError,
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectChangedError,
    PipeAbortedError,
    Side,
    TransferError,
)
from aqueuepipe.s3._secrets import redact

__all__ = ["Side", "is_missing_object", "translate_error"]

# Fixed descriptions of the S3 error codes a copy meets, grouped by what the user
# should do about them.  The server's own message is left out for these: some
# (InvalidAccessKeyId, SignatureDoesNotMatch) come with request details attached.
_CODE_REASONS: dict[str, str] = {
    **dict.fromkeys(
        ("AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"),
        "access denied",
    ),
    **dict.fromkeys(
        (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "TokenRefreshRequired",
            "AuthorizationHeaderMalformed",
        ),
        "the server rejected the credentials",
    ),
    "NoSuchUpload": "the multipart upload no longer exists (it was aborted or completed)",
    "InvalidRange": "the requested byte range is not satisfiable",
    "EntityTooSmall": "a part other than the last is smaller than the server's minimum",
    "EntityTooLarge": "the object or part is larger than the server allows",
    **dict.fromkeys(
        ("InvalidPart", "InvalidPartOrder"),
        "the server rejected the list of parts",
    ),
    **dict.fromkeys(
        ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"),
        "the server rejected the checksum of the data sent",
    ),
    "InvalidBucketName": "the bucket name is not valid",
    **dict.fromkeys(
        ("PermanentRedirect", "301", "IllegalLocationConstraintException"),
        "the bucket is in another region than the client",
    ),
    **dict.fromkeys(
        ("SlowDown", "503", "ServiceUnavailable", "InternalError", "500", "RequestTimeout"),
        "the server is unavailable or overloaded",
    ),
}
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
#: Requests that create the key they name: "no such key" from one of them is the
#: server refusing the key, not the object missing.
_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "UploadPart"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
_MAX_FOREIGN_TEXT = 300
_FLEXIBLE_CHECKSUM_RE = re.compile(
    r"Expected checksum (\S+) did not match calculated checksum: (\S+)"
)


def is_missing_object(exc: boto.ClientError) -> bool:
    """Whether S3 answered that the object (or the bucket's key) does not exist."""
    return str(exc.response.get("Error", {}).get("Code") or "") in _NOT_FOUND_CODES


def translate_error(
    exc: BaseException,
    *,
    src: str,
    dst: str,
    bucket: str,
    key: str | None,
    side: Side | None,
    expected_etag: str | None = None,
) -> TransferError:
    """Return the :class:`TransferError` that describes ``exc``, with ``__cause__`` set.

    ``bucket`` and ``key`` are the object the failed request was about, on ``side``
    (pass ``bucket=""`` and ``key=None`` for a local file); ``expected_etag`` is the
    ETag the source was pinned to, if any.  The message names the side and the
    object, never credentials; ``__cause__`` is ``exc`` so that both
    ``raise translate_error(...) from exc`` and a bare ``raise translate_error(...)``
    keep the chain.

    ====================================================  =========================
    ``exc``                                               result
    ====================================================  =========================
    ``NoSuchBucket``                                      :class:`NoSuchBucketError`
    ``NoSuchKey``, 404 (with a key; else bucket)          :class:`NoSuchKeyError`
    ``PreconditionFailed``/412 on the source              :class:`ObjectChangedError`
    other ``ClientError`` (AccessDenied...)               :class:`TransferError`
    ``FlexibleChecksumError`` (body vs. its checksum)     :class:`ChecksumMismatchError`
    connection failures and timeouts (botocore, aiohttp)  :class:`TransferError`
                                                          "cannot reach endpoint URL"
    :class:`OSError`                                      :class:`TransferError`
    a :class:`TransferError`                              itself, unchanged
    an exception group                                    its first leaf, translated
    ====================================================  =========================

    Raises:
        TypeError: ``exc`` is not an :class:`Exception` (``CancelledError``,
            ``KeyboardInterrupt``...): those must propagate, never be translated.
    """
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, PipeAbortedError) and isinstance(exc.__cause__, Exception):
        # The other end of a pipe gave up: its error is the one to report.
        exc = exc.__cause__
        if isinstance(exc, TransferError):
            return exc
    if isinstance(exc, BaseExceptionGroup):
        leaf = _first_leaf(exc)
        if leaf is not None:
            return translate_error(
                leaf,
                src=src,
                dst=dst,
                bucket=bucket,
                key=key,
                side=side,
                expected_etag=expected_etag,
            )
    if not isinstance(exc, Exception):
        raise TypeError(
            f"translate_error() got {type(exc).__name__}, which must propagate untranslated"
        ) from exc
    err = _translate(exc, src=src, dst=dst, bucket=bucket, key=key, side=side, etag=expected_etag)
    err.side = side
    err.__cause__ = exc
    return err


def _translate(
    exc: Exception,
    *,
    src: str,
    dst: str,
    bucket: str,
    key: str | None,
    side: Side | None,
    etag: str | None,
) -> TransferError:
    # An error about neither object (side None) is said of the copy as a whole.
    end = side or "the copy"
    where = f"{end} s3://{bucket}/{key}" if key else f"{end} s3://{bucket}" if bucket else end

    def failed(reason: str) -> TransferError:
        return TransferError(src, dst, f"{where}: {reason}")

    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if not code and status is not None:
            code = str(status)
        if code == "NoSuchBucket" or (code in _NOT_FOUND_CODES and not key):
            return _with_side(NoSuchBucketError(src, dst, bucket), side)
        if code in _NOT_FOUND_CODES and key and exc.operation_name in _WRITES:
            unusual = " (it holds control characters)" if not key.isprintable() else ""
            return failed(
                f"the server refused the key{unusual}: it answered {code} to "
                f"{exc.operation_name}, which creates the key"
            )
        if code in _NOT_FOUND_CODES and key:
            return _with_side(NoSuchKeyError(src, dst, bucket, key), side)
        if code in _PRECONDITION_CODES:
            if side == "source":
                return ObjectChangedError(
                    src, dst, etag or "unknown", f"{where} no longer matches ({code})"
                )
            return failed(f"a precondition of the write failed ({code})")
        if code in _CODE_REASONS:
            return failed(f"{_CODE_REASONS[code]} ({code} in {exc.operation_name})")
        message = _scrub(str(error.get("Message") or "no message"))
        return failed(
            f"{exc.operation_name} failed with {code or 'an unknown error'}"
            f"{f' (HTTP {status})' if status else ''}: {message}"
        )
    if isinstance(exc, boto.ProxyConnectionError):
        return failed(f"cannot reach proxy {_origin(exc.kwargs.get('proxy_url'))}")
    if isinstance(exc, (boto.ConnectionError, boto.ConnectionClosedError, boto.ReadTimeoutError)):
        return failed(
            f"cannot reach endpoint {_origin(exc.kwargs.get('endpoint_url'))} "
            f"({_connection_detail(exc)})"
        )
    if isinstance(exc, boto.FlexibleChecksumError):
        return _checksum_mismatch(exc, src=src, dst=dst, where=where)
    if isinstance(exc, boto.ResponseStreamingError):
        return failed("the connection broke while the response body was being read")
    if isinstance(
        exc, (boto.NoCredentialsError, boto.PartialCredentialsError, boto.CredentialRetrievalError)
    ):
        return failed(f"no usable AWS credentials ({type(exc).__name__})")
    if isinstance(exc, boto.ParamValidationError):
        # The report can quote parameter values (an SSE customer key, a body): leave
        # it to __cause__.
        return failed("botocore rejected the request parameters (ParamValidationError)")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return failed(f"cannot reach endpoint {exc.host}:{exc.port} (connection failed)")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return failed("cannot reach endpoint: timed out")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return failed("the connection to the endpoint broke mid-transfer")
    if isinstance(exc, TimeoutError):
        return failed("timed out")
    if isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError):
        return _os_error(exc, src=src, dst=dst, side=side, where=where)
    return failed(f"{type(exc).__name__}: {_scrub(str(exc)) or 'no details'}")


def _checksum_mismatch(
    exc: boto.FlexibleChecksumError, *, src: str, dst: str, where: str
) -> ChecksumMismatchError:
    # botocore checks a response body against the x-amz-checksum-* header it came
    # with (checksum_when="when_supported") and says only "Expected checksum X did
    # not match calculated checksum: Y".
    match = _FLEXIBLE_CHECKSUM_RE.search(str(exc))
    expected, actual = match.groups() if match else ("unknown", "unknown")
    err = ChecksumMismatchError(src, dst, "x-amz-checksum", expected, actual, "source")
    err.reason = (
        f"{where}: the data received does not match the checksum the server sent "
        f"(expected {expected}, computed {actual})"
    )
    return err


def _with_side(err: TransferError, side: Side | None) -> TransferError:
    # The subclasses build their reason from bucket and key only; say on which side.
    # The attribute travels in __dict__, so a pickled copy keeps it.
    if side is not None:
        err.reason = f"{side} {err.reason}"
    return err


def _os_error(exc: OSError, *, src: str, dst: str, side: Side | None, where: str) -> TransferError:
    what = exc.strerror or type(exc).__name__
    if exc.filename is not None:
        name = os.fsdecode(exc.filename)
        if exc.filename2 is not None:
            name = f"{name} -> {os.fsdecode(exc.filename2)}"
        return TransferError(src, dst, f"{side or 'local'} file {name!r}: {what}")
    return TransferError(src, dst, f"{where}: {what}")


def _connection_detail(exc: boto.BotoCoreError) -> str:
    if isinstance(exc, boto.ConnectTimeoutError):
        return "connect timed out"
    if isinstance(exc, boto.ReadTimeoutError):
        return "read timed out"
    if isinstance(exc, boto.ConnectionClosedError):
        return "the connection was closed before a response"
    if isinstance(exc, boto.SSLError):
        return "TLS handshake or certificate verification failed"
    return "connection failed"


def _origin(url: object) -> str:
    """``scheme://host:port`` of a request URL: no credentials, path or query."""
    if not isinstance(url, str):
        return "(unknown URL)"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    if not host:
        return "(unknown URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def _scrub(text: str) -> str:
    """Foreign text fit for a message: credentials redacted, the length capped."""
    text = redact(text)
    if len(text) > _MAX_FOREIGN_TEXT:
        text = f"{text[: _MAX_FOREIGN_TEXT - 3]}..."
    return text


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> Exception | None:
    """The error that explains ``group``: its first TransferError, else its first leaf.

    Tasks of one copy fail together (one fails, the others are aborted with it), so
    the already translated error is the cause and the rest are consequences.
    """
    for exc in _leaves(group):
        if isinstance(exc, TransferError):
            return exc
    for exc in _leaves(group):
        if isinstance(exc, Exception) and not isinstance(exc, PipeAbortedError):
            return exc
    return next((exc for exc in _leaves(group) if isinstance(exc, Exception)), None)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_leaves(exc))
        else:
            found.append(exc)
    return found
