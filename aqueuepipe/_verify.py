"""Evidence that a copy holds the source's bytes: what is checked, against what.

Two halves, both decided before anything is committed:

- **The source.**  :class:`SourceCheck` hashes the bytes read from an S3 object
  and compares them with the strongest evidence the object has: its stored S3
  checksum (a ``FULL_OBJECT`` one against the checksum of every byte, a
  ``COMPOSITE`` one part by part in the source's own part layout), else its ETag
  when that is an MD5 (a single PUT) or an MD5 of part MD5s in a known layout.
  A mismatch is a bad read (:class:`SourceMismatch`): the copy reads the object
  again, pinned to its ETag, within the retry policy.
- **The destination.**  :class:`Sending` says what every upload request carries
  (an ``x-amz-checksum-<algorithm>`` header, ``Content-MD5``) and which of the
  server's answers prove what it stored.  Amazon S3 verifies both headers before
  it stores a byte; other servers may accept wrong values (moto does), so on
  them the MD5 each response's ETag carries is compared with ours and the request
  re-sent when they differ.

This module computes and compares; it makes no request.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .checksums import (
    CRC_ALGORITHMS,
    Buffer,
    ETagEvidence,
    Hasher,
    StoredChecksum,
    etag_evidence,
    new_hasher,
    stored_checksum,
)
from .s3._endpoints import accepts_checksum_headers, is_amazon_s3
from .s3._layout import PartLayout

__all__ = [
    "DEFAULT_ALGORITHM",
    "Sending",
    "SourceCheck",
    "SourceMismatch",
    "full_object",
    "md5_of_etag",
    "needs_layout",
]

#: The S3 checksum sent and checked when the caller names none.
DEFAULT_ALGORITHM: Final = "crc64nvme"

#: The algorithms whose multipart checksums are FULL_OBJECT (the others: COMPOSITE).
_FULL_OBJECT_CRCS: Final = frozenset({"crc32", "crc32c", "crc64nvme"})


def full_object(algorithm: str) -> bool:
    """Whether a multipart upload's ``algorithm`` checksum is sent as FULL_OBJECT.

    CRC64NVME has only FULL_OBJECT checksums; CRC32 and CRC32C are made FULL_OBJECT
    too (what the AWS SDKs do), so a copy of one PUT or of any part layout gets the
    checksum of every byte; SHA1 and SHA256 can only be COMPOSITE.
    """
    return algorithm in _FULL_OBJECT_CRCS


class SourceMismatch(Exception):  # an internal signal, never raised to users
    """The bytes read disagree with the source's evidence: read the object again.

    ``layout_confirmed`` is False when the evidence was per part in a layout
    inferred from part 1 (:class:`~aqueuepipe.s3._layout.PartLayout`): then
    the mismatch may be the layout's, not the bytes', and the next read asks the
    server for every part's size before it counts as a bad read.
    """

    def __init__(
        self, evidence: str, computed: str, stored: str, *, layout_confirmed: bool = True
    ) -> None:
        self.evidence = evidence
        #: What the bytes read give.
        self.computed = computed
        #: What the source reports.
        self.stored = stored
        self.layout_confirmed = layout_confirmed
        super().__init__(evidence, computed, stored)


@dataclass(frozen=True, slots=True)
class Sending:
    """What the upload requests of one copy carry, and what proves them stored.

    ``algorithm`` is the ``x-amz-checksum-*`` sent with every request (None: the
    MD5 path), ``md5`` whether ``Content-MD5`` is sent and each response's ETag
    compared with it, ``trusted`` whether the server is known to refuse a body
    that disagrees with the headers.
    """

    algorithm: str | None
    md5: bool
    trusted: bool

    @classmethod
    def choose(
        cls,
        endpoint_url: str,
        requested: str | None,
        source: Mapping[str, object] | None = None,
        *,
        trusted: bool | None = None,
    ) -> Sending:
        """The sending for a copy to ``endpoint_url``; ``requested`` is the caller's
        ``checksum_algorithm`` (None: the default, ``"md5"``: the MD5 path only).

        By default a copy keeps the FULL_OBJECT CRC of its ``source`` (GetObject's
        answer), as CopyObject does, so the destination ends with the source's
        checksum and a later ``skip_existing`` finds them equal; else CRC64NVME.
        """
        if requested == "md5":
            algorithm: str | None = None
        elif requested is not None:
            algorithm = requested
        elif accepts_checksum_headers(endpoint_url):
            kept = stored_checksum(source) if source is not None else None
            if kept is not None and kept.parts is None and kept.algorithm in _FULL_OBJECT_CRCS:
                algorithm = kept.algorithm
            else:
                algorithm = DEFAULT_ALGORITHM
        else:
            algorithm = None
        if trusted is None:
            trusted = is_amazon_s3(endpoint_url)
        return cls(algorithm=algorithm, md5=algorithm is None or not trusted, trusted=trusted)

    def without_flexible_checksum(self) -> Sending:
        """This sending on the MD5 path, for a server that refused the checksum header."""
        return Sending(algorithm=None, md5=True, trusted=self.trusted)

    def evidence(self, etags_matched: bool) -> str | None:
        """The destination evidence, once every request was acknowledged.

        ``etags_matched``: every ETag the server gave was an MD5 equal to ours.
        """
        if self.trusted:  # the server refused any body that disagreed with a header
            return f"destination:{self.algorithm or 'content-md5'}"
        if self.md5 and etags_matched:
            return "destination:etag-md5"
        return None


def md5_of_etag(response: Mapping[str, object]) -> str | None:
    """The MD5 (hex) a single PUT's or a part's ETag carries; None if it carries none."""
    evidence = etag_evidence(response)
    if evidence is None or evidence.parts is not None:
        return None
    return evidence.md5_hex


class SourceCheck:
    """Hashes the bytes read from an S3 object and checks them against its evidence.

    Feed every byte, in order, to :meth:`update`; :meth:`verify` then raises
    :class:`SourceMismatch` if they are not the object's.  Build one with
    :meth:`for_object`; ``None`` from it means the object has no usable evidence.
    Evidence per part is computed at the boundaries of the object's own
    :class:`PartLayout`, equal parts or not.
    """

    __slots__ = ("_digests", "_expected", "_hasher", "_in_part", "_layout", "label")

    def __init__(
        self, algorithm: str, expected: str, *, label: str, layout: PartLayout | None = None
    ) -> None:
        self.label = label
        self._expected = expected
        self._hasher: Hasher = new_hasher(algorithm)
        self._layout = layout  # None: one digest of every byte
        self._in_part = 0
        self._digests: list[bytes] = []

    @classmethod
    def for_object(
        cls, response: Mapping[str, object], size: int, layout: PartLayout | None
    ) -> SourceCheck | None:
        """The check for the object GetObject (``ChecksumMode=ENABLED``) answered with.

        ``layout`` is the object's part layout when it is a multipart upload (see
        :func:`needs_layout` and :func:`~aqueuepipe.s3._layout.part_layout`); a
        checksum or ETag of the parts proves nothing without a layout of as many
        parts adding up to ``size``, so such an object gets no check (None) from
        its part evidence.
        """
        checksum = stored_checksum(response)
        if checksum is not None:
            if checksum.parts is None:
                return cls(
                    checksum.algorithm,
                    checksum.value,
                    label=f"source:{checksum.algorithm}",
                )
            if _fits(layout, checksum.parts, size):
                return cls(
                    checksum.algorithm,
                    checksum.header_value,
                    label=f"source:{checksum.algorithm}",
                    layout=layout,
                )
        etag = etag_evidence(response)
        if etag is None:
            return None
        if etag.parts is None:
            return cls("md5", etag.md5_hex, label="source:etag-md5")
        if not _fits(layout, etag.parts, size):
            return None
        expected = f"{etag.md5_hex}-{etag.parts}"
        return cls("md5", expected, label="source:etag-md5", layout=layout)

    @property
    def layout(self) -> PartLayout | None:
        """The source's part layout when the evidence is per part, else None."""
        return self._layout

    def update(self, data: Buffer, known: Mapping[str, bytes] | None = None) -> None:
        """Feed the next bytes of the object (any split).

        ``known`` maps algorithms to the raw digest of exactly ``data`` where the
        caller computed them already (a part's checksum and MD5): where one is
        what the evidence needs (the same CRC, or the digest of exactly one of the
        source's parts), it stands for the bytes, which are not hashed again.
        """
        digest = known.get(self._hasher.name) if known else None
        if digest is not None and self._reuse(data, digest):
            return
        layout = self._layout
        if layout is None:
            self._hasher.update(data)
            return
        sizes = layout.sizes
        view = memoryview(data).cast("B")
        while len(view):
            number = len(self._digests)
            if number >= len(sizes):  # more bytes than the layout: never a match
                self._hasher.update(view)
                self._in_part += len(view)
                return
            room = sizes[number] - self._in_part
            piece, view = view[:room], view[room:]
            self._hasher.update(piece)
            self._in_part += len(piece)
            if self._in_part == sizes[number]:
                self._end_part()

    def takes_without_bytes(self, algorithm: str | None) -> bool:
        """Whether a part's digest in ``algorithm`` can stand for its bytes at any
        offset (see :meth:`skip`): the evidence is one CRC of every byte, the same."""
        return (
            self._layout is None and algorithm == self._hasher.name and algorithm in CRC_ALGORITHMS
        )

    def skip(self, length: int, digest: bytes) -> None:
        """Take the next ``length`` bytes from their CRC ``digest``, unread (a
        resumed upload's stored part; only if :meth:`takes_without_bytes`)."""
        if length:
            self._hasher.combine(int.from_bytes(digest, "big"), length)

    def _reuse(self, data: Buffer, digest: bytes) -> bool:
        """Take ``digest`` (of ``data``, in this check's algorithm) for its bytes if
        it can stand for them; whether it did."""
        length = memoryview(data).nbytes
        if not length:
            return True
        crc = self._hasher.name in CRC_ALGORITHMS
        layout = self._layout
        if layout is None:  # one digest of every byte: only a CRC continues from a digest
            if crc:
                self._hasher.combine(int.from_bytes(digest, "big"), length)
            return crc
        number = len(self._digests)
        if number >= len(layout.sizes):
            return False
        room = layout.sizes[number] - self._in_part
        if self._in_part == 0 and length == room:  # exactly one of the source's parts
            self._digests.append(bytes(digest))
            return True
        if not crc or length > room:  # a piece of a part, or across a boundary
            return False
        self._hasher.combine(int.from_bytes(digest, "big"), length)
        self._in_part += length
        if self._in_part == layout.sizes[number]:
            self._end_part()
        return True

    def verify(self) -> None:
        """Compare what was fed with the evidence.

        Raises:
            SourceMismatch: they differ.
        """
        computed = self._result()
        if computed != self._expected:
            confirmed = self._layout is None or self._layout.confirmed
            raise SourceMismatch(
                self.label.partition(":")[2], computed, self._expected, layout_confirmed=confirmed
            )

    def _end_part(self) -> None:
        self._digests.append(self._hasher.digest())
        self._hasher = new_hasher(self._hasher.name)
        self._in_part = 0

    def _result(self) -> str:
        name = self._hasher.name
        layout = self._layout
        if layout is None:
            digest = self._hasher.digest()
            return digest.hex() if name == "md5" else base64.b64encode(digest).decode()
        digests = list(self._digests)
        if self._in_part or len(digests) < layout.parts:  # a part cut short (or empty)
            digests.append(self._hasher.digest())
        if name == "md5":
            combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
        else:
            outer = new_hasher(name)
            outer.update(b"".join(digests))
            combined = outer.b64digest()
        return f"{combined}-{len(digests)}"


def needs_layout(response: Mapping[str, object]) -> bool:
    """Whether checking the object needs its part layout (HeadObject of part 1)."""
    checksum: StoredChecksum | None = stored_checksum(response)
    if checksum is not None and checksum.parts is None:
        return False
    if checksum is not None:
        return True
    etag: ETagEvidence | None = etag_evidence(response)
    return etag is not None and etag.parts is not None


def _fits(layout: PartLayout | None, parts: int, size: int) -> bool:
    """Whether ``layout`` is one of ``parts`` parts adding up to ``size`` bytes.

    Any other layout (or none: a server that does not report parts) makes the
    evidence of the parts impossible to compare, which proves nothing either way.
    """
    return (
        layout is not None
        and layout.parts == parts
        and layout.size == size
        and min(layout.sizes) >= 0
    )
