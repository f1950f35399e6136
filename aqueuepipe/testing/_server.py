"""What runs in a test server's process: moto's S3 behind a thin WSGI middleware.

The middleware does two things S3 does and moto does not, or that a test wants to
see from the server's side:

- **Counts** every request by S3 operation, with the request bytes received and
  the response bytes sent, each counted once the server has written it (in 1 MiB
  pieces, so a client that stops reading is not counted as having had the rest)
  (``GET /_aqueuepipe/requests`` answers them as JSON, ``DELETE`` resets them):
  a promise about requests is checked where the requests arrive, not by a counter
  of the client's.
- **Refuses wrong digests** (``--validate-digests``), as Amazon S3, MinIO, Ceph and
  LocalStack do: a PutObject or UploadPart whose body disagrees with its
  ``Content-MD5`` or ``x-amz-checksum-*`` header gets ``400 BadDigest`` and stores
  nothing; a malformed ``Content-MD5`` gets ``400 InvalidDigest``.  Plain moto stores
  such a body and answers 200.

Run as ``python -m aqueuepipe.testing._server --fd FD [--validate-digests]``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..checksums import new_hasher

__all__ = ["CONTROL_PATH", "DigestMiddleware", "main", "s3_operation"]

#: Where the middleware answers for itself (no bucket name can start with "_").
CONTROL_PATH = "/_aqueuepipe/requests"

# x-amz-checksum-<name> header -> aqueuepipe.checksums algorithm name.
_CHECKSUM_HEADERS: Mapping[str, str] = {
    "HTTP_X_AMZ_CHECKSUM_CRC32": "crc32",
    "HTTP_X_AMZ_CHECKSUM_CRC32C": "crc32c",
    "HTTP_X_AMZ_CHECKSUM_CRC64NVME": "crc64nvme",
    "HTTP_X_AMZ_CHECKSUM_SHA1": "sha1",
    "HTTP_X_AMZ_CHECKSUM_SHA256": "sha256",
}

_LISTING_PARAMS = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "encoding-type",
        "continuation-token",
        "start-after",
        "max-keys",
        "marker",
        "fetch-owner",
    }
)

#: The largest piece of a response body written (and counted) at once.
_PIECE = 1024 * 1024

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _bucket_and_key(path: str) -> tuple[str | None, str | None]:
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    return bucket or None, key or None


def s3_operation(method: str, path: str, query: str, headers: Mapping[str, str]) -> str:
    """The S3 operation a path-style request is, e.g. ``"UploadPart"``; ``"Unknown"``.

    ``headers`` are keyed by lower-cased name.  Covers the operations aqueuepipe
    sends; sub-resources it does not know (``?acl``...) give ``"Unknown"``.
    """
    params = dict(parse_qsl(query, keep_blank_values=True))
    if "x-id" in params:  # newer botocore names the operation itself
        return params["x-id"]
    bucket, key = _bucket_and_key(path)
    copy = "x-amz-copy-source" in headers
    if bucket is None:
        return "ListBuckets" if method == "GET" else "Unknown"
    if key is None:
        table = {
            "PUT": "CreateBucket",
            "HEAD": "HeadBucket",
            "DELETE": "DeleteBucket",
            "POST": "DeleteObjects" if "delete" in params else "Unknown",
        }
        if method == "GET":
            if "uploads" in params:
                return "ListMultipartUploads"
            if "location" in params:
                return "GetBucketLocation"
            if "versions" in params:
                return "ListObjectVersions"
            if params.keys() - _LISTING_PARAMS:
                return "Unknown"
            return "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"
        return table.get(method, "Unknown")
    if method in ("GET", "HEAD"):
        if "uploadId" in params:
            return "ListParts" if method == "GET" else "Unknown"
        if "tagging" in params and method == "GET":
            return "GetObjectTagging"
        if "attributes" in params and method == "GET":
            return "GetObjectAttributes"
        if params.keys() - {"partNumber", "versionId"} and method == "GET":
            return "Unknown"
        return "GetObject" if method == "GET" else "HeadObject"
    if method == "PUT":
        if "uploadId" in params and "partNumber" in params:
            return "UploadPartCopy" if copy else "UploadPart"
        if "tagging" in params:
            return "PutObjectTagging"
        if params:
            return "Unknown"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        if "uploadId" in params:
            return "CompleteMultipartUpload"
        return "Unknown"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
    return "Unknown"


def _error(start_response: StartResponse, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(
        "400 Bad Request",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


class DigestMiddleware:
    """Counts requests by operation and, if asked, refuses wrong digests (see the module)."""

    def __init__(self, app: WSGIApp, *, validate_digests: bool) -> None:
        self._app = app
        self._validate = validate_digests
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._sent: dict[str, int] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "/"))
        if path == CONTROL_PATH:
            return self._control(method, start_response)
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        operation = s3_operation(method, path, str(environ.get("QUERY_STRING", "")), headers)
        body = self._body(environ) if operation in ("PutObject", "UploadPart") else None
        with self._lock:
            self._counts[operation] = self._counts.get(operation, 0) + 1
            received = len(body) if body is not None else int(environ.get("CONTENT_LENGTH") or 0)
            self._bytes[operation] = self._bytes.get(operation, 0) + received
        if body is not None and self._validate:
            refusal = self._refusal(environ, body)
            if refusal is not None:
                return _error(start_response, *refusal)
        return self._counted(operation, self._app(environ, start_response))

    def _counted(self, operation: str, body: Iterable[bytes]) -> Iterator[bytes]:
        """The response body in pieces of at most 1 MiB, each counted once written
        (the server asks for the next piece after writing the last one)."""
        try:
            for chunk in body:
                for start in range(0, len(chunk), _PIECE):
                    piece = chunk[start : start + _PIECE]
                    yield piece
                    with self._lock:
                        self._sent[operation] = self._sent.get(operation, 0) + len(piece)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def _control(self, method: str, start_response: StartResponse) -> list[bytes]:
        with self._lock:
            if method == "DELETE":
                self._counts.clear()
                self._bytes.clear()
                self._sent.clear()
            body = json.dumps(
                {"counts": self._counts, "bytes": self._bytes, "sent": self._sent}
            ).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        """Read the whole request body and put it back for moto to read."""
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        body: bytes = stream.read(int(length)) if length else stream.read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    @staticmethod
    def _refusal(environ: Mapping[str, Any], body: bytes) -> tuple[str, str] | None:
        """(code, message) of S3's answer to a body its digests disagree with, else None.

        aws-chunked bodies carry their checksum in a trailer: not checked here
        (aqueuepipe never sends them).
        """
        if "aws-chunked" in str(environ.get("HTTP_CONTENT_ENCODING", "")):
            return None
        md5 = environ.get("HTTP_CONTENT_MD5")
        if md5 is not None:
            try:
                expected = base64.b64decode(str(md5), validate=True)
            except (binascii.Error, ValueError):
                expected = b""
            if len(expected) != 16:
                return "InvalidDigest", "The Content-MD5 you specified was invalid."
            if hashlib.md5(body).digest() != expected:
                return "BadDigest", "The Content-MD5 you specified did not match what we received."
        for header, algorithm in _CHECKSUM_HEADERS.items():
            value = environ.get(header)
            if value is None:
                continue
            hasher = new_hasher(algorithm)
            hasher.update(body)
            if hasher.b64digest() != str(value):
                name = algorithm.upper()
                return (
                    "BadDigest",
                    f"The {name} you specified did not match the calculated checksum.",
                )
        return None


def _send_response(self: Any, code: int, message: str | None = None) -> None:
    """werkzeug's, less its ``Server`` header: moto sends its own, and aiohttp's
    strict parser (Python's dev mode, PYTHONASYNCIODEBUG) refuses two."""
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())


def main(argv: list[str] | None = None) -> None:
    """Serve moto's S3 with the middleware on the listening socket ``--fd`` (bound
    by the parent, so no other process can take its port) until terminated.
    Prints ``ready`` once it serves."""
    parser = argparse.ArgumentParser(description="moto's S3 for tests")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--validate-digests", action="store_true")
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    listening = socket.socket(fileno=args.fd)
    host, port = listening.getsockname()[:2]
    # moto builds some URLs (presigned, redirects) from it, as its own launcher sets it.
    os.environ.setdefault("MOTO_PORT", str(port))

    class Handler(MotoRequestHandler):
        send_response = _send_response

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        host,
        port,
        DigestMiddleware(app, validate_digests=args.validate_digests),
        threaded=True,
        request_handler=Handler,
        fd=listening.fileno(),
    )
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
