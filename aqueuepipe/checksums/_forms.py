"""The values S3 reports for an object's bytes: ETags, COMPOSITE checksums, and
the evidence a response carries."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ._algorithms import _S3_ALGORITHMS, _nbytes, s3_algorithm
from ._hasher import new_hasher

_MD5_SIZE: Final = 16
_MD5_ETAG = re.compile(r"[0-9a-fA-F]{32}(?:-[1-9][0-9]*)?")


def _check_digest(digest: bytes, size: int, what: str) -> None:
    if not isinstance(digest, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes, not {type(digest).__name__}")
    if _nbytes(digest) != size:
        raise ValueError(f"{what} must be {size} bytes, got {_nbytes(digest)}")


def single_etag(md5_digest: bytes) -> str:
    """Return the ETag S3 gives an unencrypted object uploaded in one PUT: its MD5 in hex.

    Like every ETag returned here, it has no surrounding quotes.

    Raises:
        ValueError: ``md5_digest`` is not 16 bytes long.
        TypeError: ``md5_digest`` is not bytes.
    """
    _check_digest(md5_digest, _MD5_SIZE, "md5_digest")
    return bytes(md5_digest).hex()


def multipart_etag(part_md5_digests: Sequence[bytes]) -> str:
    """Return the ETag S3 gives an unencrypted multipart upload of parts with these MD5s.

    The form is ``"<hex md5 of the concatenated part digests>-<number of parts>"``,
    without surrounding quotes.

    Raises:
        ValueError: there are no parts, or a digest is not 16 bytes long.
        TypeError: a digest is not bytes.
    """
    if not part_md5_digests:
        raise ValueError("a multipart upload has at least one part")
    md5 = hashlib.md5(usedforsecurity=False)
    for number, digest in enumerate(part_md5_digests, start=1):
        _check_digest(digest, _MD5_SIZE, f"the MD5 digest of part {number}")
        md5.update(digest)
    return f"{md5.hexdigest()}-{len(part_md5_digests)}"


def _strip_etag(etag: str) -> str:
    if not isinstance(etag, str):
        raise TypeError(f"etag must be a str, not {type(etag).__name__}")
    etag = etag.strip()
    if len(etag) >= 2 and etag[0] == etag[-1] == '"':
        etag = etag[1:-1]
    return etag


def etag_is_md5_based(etag: str) -> bool:
    """Tell whether ``etag`` has the form of an MD5-based ETag.

    That is 32 hex digits (one PUT) or 32 hex digits, ``-`` and a part count
    (multipart upload), with or without surrounding quotes.  Only such ETags can
    be checked against :func:`single_etag` or :func:`multipart_etag`.

    The form is necessary, not sufficient: on AWS an object encrypted with SSE-KMS
    or SSE-C has an ETag of the same form that is not derived from the MD5 of its
    data, so check the response's encryption headers as well.

    Raises:
        TypeError: ``etag`` is not a str.
    """
    return _MD5_ETAG.fullmatch(_strip_etag(etag)) is not None


def normalize_etag(etag: str) -> str:
    """Return ``etag`` without surrounding whitespace and quotes, lowercase if MD5-based.

    An ETag not of the MD5-based form (see :func:`etag_is_md5_based`) is opaque
    and keeps its case.

    Raises:
        TypeError: ``etag`` is not a str.
    """
    etag = _strip_etag(etag)
    return etag.lower() if _MD5_ETAG.fullmatch(etag) else etag


def composite_checksum(name: str, part_digests: Sequence[bytes]) -> str:
    """Return S3's ``COMPOSITE`` checksum of a multipart upload with these part digests.

    The form is ``"<base64 of hash(concatenated raw part digests)>-<number of parts>"``,
    the checksum of the checksums of the parts, in part order.  S3 supports
    ``COMPOSITE`` for crc32, crc32c, sha1 and sha256; for crc64nvme it only keeps
    ``FULL_OBJECT`` checksums (the base64 of the whole-stream CRC, as for a single
    PUT), but the value is computed the same way if asked for.

    Raises:
        ValueError: ``name`` is unknown or ``md5``, there are no parts, or a digest
            has the wrong length for the algorithm.
        TypeError: ``name`` is not a str or a digest is not bytes.
    """
    s3_algorithm(name)
    if not part_digests:
        raise ValueError("a multipart upload has at least one part")
    hasher = new_hasher(name)
    for number, digest in enumerate(part_digests, start=1):
        _check_digest(digest, hasher.digest_size, f"the {hasher.name} digest of part {number}")
        hasher.update(digest)
    return f"{hasher.b64digest()}-{len(part_digests)}"


# -- reading S3's evidence out of a response ------------------------------------------

#: The order in which a response's checksums are preferred when it has several.
_CHECKSUM_PREFERENCE: Final = ("crc64nvme", "crc32c", "crc32", "sha256", "sha1")
_COMPOSITE_SUFFIX = re.compile(r"^(.*)-([1-9][0-9]*)$")


@dataclass(frozen=True, slots=True)
class StoredChecksum:
    """An S3 checksum as a response reports it (``Checksum<ALGO>`` and ``ChecksumType``).

    ``parts`` is the number of parts of a ``COMPOSITE`` checksum (the checksum of
    the parts' checksums) and ``None`` for a ``FULL_OBJECT`` one (the checksum of
    every byte, which is also what a single PUT has).  ``value`` is base64, without
    the ``-N`` suffix.
    """

    algorithm: str
    value: str
    parts: int | None

    @property
    def header_value(self) -> str:
        """The value in S3's form: ``value`` or ``value-N``."""
        return self.value if self.parts is None else f"{self.value}-{self.parts}"


def stored_checksum(response: Mapping[str, object]) -> StoredChecksum | None:
    """The S3 checksum ``response`` reports, under S3's rules; None if it has none.

    CRC64NVME checksums are always ``FULL_OBJECT``; SHA1 and SHA256 checksums of
    multipart uploads are always ``COMPOSITE``; CRC32 and CRC32C ones are what
    ``ChecksumType`` says, else what the value's form (``-N`` or not) shows.
    """
    for name in _CHECKSUM_PREFERENCE:
        raw = response.get(f"Checksum{_S3_ALGORITHMS[name]}")
        if not isinstance(raw, str) or not raw:
            continue
        match = _COMPOSITE_SUFFIX.match(raw)
        declared = response.get("ChecksumType")
        if match is not None and name != "crc64nvme" and declared != "FULL_OBJECT":
            return StoredChecksum(name, match.group(1), int(match.group(2)))
        if match is not None:
            return StoredChecksum(name, match.group(1), None)
        return StoredChecksum(name, raw, None)
    return None


@dataclass(frozen=True, slots=True)
class ETagEvidence:
    """What an ETag proves about an object's bytes, when it is MD5-based.

    ``parts`` is None for the MD5 of the whole object (a single PUT), else the
    number of parts of a multipart upload whose ETag is the MD5 of the part MD5s.
    """

    md5_hex: str
    parts: int | None

    def same_bytes(self, other: ETagEvidence) -> bool:
        """Whether the two ETags prove the same bytes.

        Equal ETags do; so does the MD5 of a whole object and the ETag of a
        one-part multipart upload of it (the MD5 of that one MD5), which is how
        a copy is stored where a single PUT could not be proven before it
        replaced the key.
        """
        if self == other:
            return True
        single, one_part = (self, other) if self.parts is None else (other, self)
        return (
            single.parts is None
            and one_part.parts == 1
            and multipart_etag([bytes.fromhex(single.md5_hex)]) == f"{one_part.md5_hex}-1"
        )


def etag_evidence(response: Mapping[str, object]) -> ETagEvidence | None:
    """The evidence in ``response``'s ETag; None where the ETag proves nothing.

    An ETag is the MD5 of the bytes only in the 32-hex-digit form, and the MD5 of
    part MD5s only in that form followed by ``-N``; any other form is opaque.
    Objects encrypted with SSE-KMS or SSE-C have ETags of those forms that are not
    MD5s, so their ETags prove nothing either.
    """
    etag = response.get("ETag")
    if not isinstance(etag, str):
        return None
    encryption = response.get("ServerSideEncryption")
    if (isinstance(encryption, str) and encryption.startswith("aws:kms")) or response.get(
        "SSECustomerAlgorithm"
    ):
        return None
    value = normalize_etag(etag)
    if not _MD5_ETAG.fullmatch(value):
        return None
    digest, _, count = value.partition("-")
    return ETagEvidence(digest, int(count) if count else None)
