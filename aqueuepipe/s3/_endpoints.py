"""What this process has learned about S3 endpoints: which ones check digests,
and which ones refuse ``x-amz-checksum-*`` headers.

Amazon S3 refuses a request body that disagrees with its ``Content-MD5`` or
``x-amz-checksum-*`` header (BadDigest) before it stores a byte, so accepting a
request proves it stored what was sent; so do MinIO, Ceph, LocalStack and most
S3-compatible servers.  Others (moto) store whatever comes and answer with what
they computed, which proves only that something was stored, after it replaced
what was there.  A copy to a server that checks needs no MD5 and no comparison of
answers; a copy to one that does not is checked before it commits anything.

Which kind a server is is found out once per endpoint and process by asking it
(:func:`validates_digests`): a throwaway multipart upload gets one 1-byte part
whose CRC32 header is deliberately wrong, and is aborted whatever the answer, so
no trace is left.  BadDigest means the server checks; a stored part means it does
not.  Anything else (no permission, a missing bucket, a server that refuses
flexible checksums) proves nothing and is not remembered.  Amazon S3's own
endpoints are known without asking.

A server that answers a checksum header with an error (older S3-compatible
servers) is remembered too (:func:`note_checksum_headers_refused`), so later
copies to it take the MD5 path from their first request.

The knowledge lives in one registry per process, bounded to the
:data:`REMEMBERED_ENDPOINTS` most recently used endpoints of each kind.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import zlib
from typing import Final
from urllib.parse import urlsplit

import botocore.exceptions

from .._cancel import run_to_end
from ._client import S3Client

__all__ = [
    "PROBE_SUFFIX",
    "REMEMBERED_ENDPOINTS",
    "accepts_checksum_headers",
    "forget_endpoints",
    "is_amazon_s3",
    "note_checksum_headers_refused",
    "validates_digests",
]

#: How many endpoints the registry remembers (the least recently used go first).
REMEMBERED_ENDPOINTS: Final = 256

#: Appended to the key a probe's throwaway upload is made under.
PROBE_SUFFIX: Final = ".aqueuepipe-digest-probe"

# What a server that checks digests answers to a body that disagrees with one.
_BAD_DIGEST: Final = frozenset({"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"})

_PROBE_BODY: Final = b"\0"
# The CRC32 of another byte: a wrong checksum for the probe's body.
_WRONG_CRC32: Final = base64.b64encode(zlib.crc32(b"\1").to_bytes(4, "big")).decode()


class _Registry:
    """Endpoint URL -> whether it checks digests; the probes under way; the
    endpoints that refuse checksum headers."""

    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._known: collections.OrderedDict[str, bool] = collections.OrderedDict()
        self._probing: dict[str, asyncio.Task[bool | None]] = {}
        self.refusing: collections.OrderedDict[str, None] = collections.OrderedDict()

    def refused(self, endpoint: str) -> None:
        self.refusing[endpoint] = None
        self.refusing.move_to_end(endpoint)
        while len(self.refusing) > self._bound:
            self.refusing.popitem(last=False)

    def get(self, endpoint: str) -> bool | None:
        known = self._known.get(endpoint)
        if known is not None:
            self._known.move_to_end(endpoint)
        return known

    def remember(self, endpoint: str, validates: bool) -> None:
        self._known[endpoint] = validates
        self._known.move_to_end(endpoint)
        while len(self._known) > self._bound:
            self._known.popitem(last=False)

    def probe(
        self, endpoint: str, client: S3Client, bucket: str, key: str
    ) -> asyncio.Task[bool | None]:
        """The probe of ``endpoint`` under way in this event loop, started if none is."""
        task = self._probing.get(endpoint)
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(_probe(client, bucket, key))
            self._probing[endpoint] = task

            def ended(done: asyncio.Task[bool | None]) -> None:
                if self._probing.get(endpoint) is done:
                    del self._probing[endpoint]
                if not done.cancelled() and done.exception() is None:
                    result = done.result()
                    if result is not None:
                        self.remember(endpoint, result)

            task.add_done_callback(ended)
        return task

    def clear(self) -> None:
        self._known.clear()
        self.refusing.clear()


_REGISTRY = _Registry(REMEMBERED_ENDPOINTS)


def is_amazon_s3(endpoint_url: str) -> bool:
    """Whether ``endpoint_url`` is one of Amazon S3's own endpoints."""
    host = (urlsplit(endpoint_url).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


async def validates_digests(client: S3Client, bucket: str, key: str) -> bool:
    """Whether the server behind ``client`` refuses a body that disagrees with its
    checksum header; asked once per endpoint and process (see the module).

    ``bucket`` and ``key`` are where the caller is about to write: the probe's
    throwaway upload goes to ``key`` + :data:`PROBE_SUFFIX` in that bucket, which
    the caller may write to.  A probe that proves nothing answers False (the
    careful assumption) and is tried again by the next copy.  Cancelling the
    caller leaves the probe to finish and abort its upload.
    """
    endpoint = str(client.meta.endpoint_url)
    if is_amazon_s3(endpoint):
        return True
    known = _REGISTRY.get(endpoint)
    if known is not None:
        return known
    result = await asyncio.shield(_REGISTRY.probe(endpoint, client, bucket, key))
    return bool(result)


def accepts_checksum_headers(endpoint_url: str) -> bool:
    """False once ``endpoint_url`` refused an ``x-amz-checksum-*`` header."""
    return endpoint_url not in _REGISTRY.refusing


def note_checksum_headers_refused(endpoint_url: str) -> None:
    """Remember that ``endpoint_url`` refuses ``x-amz-checksum-*`` headers."""
    _REGISTRY.refused(endpoint_url)


def forget_endpoints() -> None:
    """Forget what was learned about every endpoint (for tests and long-lived
    processes whose servers change behind one URL)."""
    _REGISTRY.clear()


async def _probe(client: S3Client, bucket: str, key: str) -> bool | None:
    """True: the server refused a wrong checksum; False: it stored the part; None:
    the answer proves nothing."""
    room = 1024 - len(PROBE_SUFFIX)  # S3 keys are at most 1024 bytes of UTF-8
    probe_key = key.encode()[:room].decode(errors="ignore") + PROBE_SUFFIX
    try:
        created = await run_to_end(
            client.create_multipart_upload(Bucket=bucket, Key=probe_key, ChecksumAlgorithm="CRC32")
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None
    upload_id = created["UploadId"]
    try:
        await client.upload_part(
            Bucket=bucket,
            Key=probe_key,
            UploadId=upload_id,
            PartNumber=1,
            Body=_PROBE_BODY,
            ContentLength=len(_PROBE_BODY),
            ChecksumAlgorithm="CRC32",
            ChecksumCRC32=_WRONG_CRC32,
        )
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "")
        return True if code in _BAD_DIGEST else None
    except botocore.exceptions.BotoCoreError:
        return None
    else:
        return False
    finally:
        with contextlib.suppress(Exception):
            await run_to_end(
                client.abort_multipart_upload(Bucket=bucket, Key=probe_key, UploadId=upload_id)
            )
