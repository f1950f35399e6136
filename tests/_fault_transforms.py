"""Transforms for :class:`tests.faultproxy.FaultProxy`: edits of every matching
upstream response, as a server whose ETags differ, or one without flexible
checksums, would answer.

Unlike a rule, a transform does not stop at one request nor exclude other rules: it
edits every upstream response to a request its ``match`` matches, for as long as it
is installed, before the fault of the rule that fires (if any) is applied to what it
made.  A Reset's ``after_bytes`` or a FlipByte's ``offset`` counts bytes of the
transformed body, whose Content-Length is fixed up.  Transforms apply in the order
they were added; the error responses the proxy makes itself (Status faults, 502)
carry nothing they edit and are left alone.

Headers are edited on every response.  A body is edited only if it is small XML:
``Content-Type`` mentioning xml, a ``Content-Length`` of at most
``_MAX_EDITED_BODY``, not a GetObject's (an object may well be XML) nor a HEAD's.
Such a body is read whole before the head is sent; every other body streams
through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from xml.sax.saxutils import escape, unescape

from ._fault_rules import Exchange, Match

_MAX_EDITED_BODY: Final = 1024 * 1024
_ETAG_ELEMENT: Final = re.compile(rb"<ETag>(.*?)</ETag>", re.DOTALL)
_CHECKSUM_ELEMENTS: Final = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "Type", "Algorithm")
_CHECKSUM_ELEMENT: Final = re.compile(
    rb"<(Checksum(?:" + "|".join(_CHECKSUM_ELEMENTS).encode() + rb"))(?:\s*/>|>.*?</\1>)",
    re.DOTALL,
)
_XML_ENTITIES: Final = {"&quot;": '"', "&apos;": "'"}


@dataclass(frozen=True, slots=True)
class RewriteETags:
    """Replace every ETag of matching responses with ``replace(old)``.

    Each ``ETag`` header value is passed as sent, quotes included (``'"abc"'``), and
    replaced by what ``replace`` returns.  So is the text of each ``<ETag>`` element
    of an XML body (CompleteMultipartUpload, ListParts, CopyObject and UploadPartCopy
    results, listings): entity references (``&quot;``...) are decoded before
    ``replace`` sees the value, and the new value is escaped again, quotes as
    ``&quot;`` if the old text had any.  Built by :meth:`FaultProxy.rewrite_etags`.
    """

    replace: Callable[[str], str]
    match: Match = field(default_factory=Match)

    def edit_fields(self, fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``fields`` with every ETag header value replaced."""
        return [
            (name, self.replace(value) if name.lower() == "etag" else value)
            for name, value in fields
        ]

    def edit_body(self, body: bytes) -> bytes:
        """``body`` (XML) with the text of every ``<ETag>`` element replaced."""

        def element(found: re.Match[bytes]) -> bytes:
            text = found.group(1).decode()
            new = self.replace(unescape(text, _XML_ENTITIES))
            encoded = escape(new, {'"': "&quot;"} if "&quot;" in text else {})
            return b"<ETag>" + encoded.encode() + b"</ETag>"

        return _ETAG_ELEMENT.sub(element, body)


@dataclass(frozen=True, slots=True)
class DropChecksums:
    """Remove flexible checksums from matching responses: a server without them.

    Every ``x-amz-checksum-*`` header goes (``x-amz-checksum-type`` and
    ``x-amz-checksum-algorithm`` included), and so does ``x-amz-sdk-checksum-algorithm``
    (which moto echoes); from XML bodies, every ``<ChecksumCRC32>``,
    ``<ChecksumCRC32C>``, ``<ChecksumCRC64NVME>``, ``<ChecksumSHA1>``,
    ``<ChecksumSHA256>``, ``<ChecksumType>`` and ``<ChecksumAlgorithm>`` element.
    Built by :meth:`FaultProxy.drop_checksum_headers`.
    """

    match: Match = field(default_factory=Match)

    def edit_fields(self, fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``fields`` without checksum headers."""
        return [
            (name, value)
            for name, value in fields
            if not name.lower().startswith("x-amz-checksum-")
            and name.lower() != "x-amz-sdk-checksum-algorithm"
        ]

    def edit_body(self, body: bytes) -> bytes:
        """``body`` (XML) without checksum elements."""
        return _CHECKSUM_ELEMENT.sub(b"", body)


Transform = RewriteETags | DropChecksums
"""What edits every matching response while installed (see :meth:`FaultProxy.add_transform`)."""


def carries_checksum(exchange: Exchange) -> bool:
    """Whether the request sends a flexible checksum (``x-amz-checksum-mode`` aside).

    ``x-amz-checksum-<algorithm>``, ``x-amz-checksum-algorithm`` (and any other
    ``x-amz-checksum-*``), ``x-amz-sdk-checksum-algorithm``, or an ``x-amz-trailer``
    announcing a checksum.  ``Content-MD5`` is not a flexible checksum.
    """
    for name, value in exchange.headers.items():
        if name.startswith("x-amz-checksum-") and name != "x-amz-checksum-mode":
            return True
        if name == "x-amz-sdk-checksum-algorithm":
            return True
        if name == "x-amz-trailer" and "x-amz-checksum-" in value.lower():
            return True
    return False


def editable_body(
    exchange: Exchange, fields: Sequence[tuple[str, str]], framing: str, length: int
) -> bool:
    """Whether a transform may read and edit this response body (small XML, see above)."""
    if exchange.method == "HEAD" or exchange.operation == "GetObject":
        return False
    if framing != "length" or length > _MAX_EDITED_BODY:
        return False
    content_type = ", ".join(value for name, value in fields if name.lower() == "content-type")
    return "xml" in content_type.lower()
