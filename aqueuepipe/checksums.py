"""Streaming checksums in the forms S3 uses.

A :class:`Hasher` computes one algorithm incrementally; :class:`StreamHashes`
computes several at once over a stream and can hash large chunks in a worker
thread so the event loop keeps streaming.  The remaining functions build the
values S3 reports for an object: the ETag of a single or multipart upload, and
the ``COMPOSITE`` and ``FULL_OBJECT`` checksums of a multipart upload.

Digests are raw bytes; :meth:`Hasher.hexdigest` gives lowercase hex and
:meth:`Hasher.b64digest` the base64 form of S3's ``Content-MD5`` and
``x-amz-checksum-*`` headers.  A CRC's digest is its value as a big-endian
unsigned integer of 4 bytes (crc32, crc32c) or 8 bytes (crc64nvme), as S3 encodes it.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias

from awscrt import checksums as _crt

__all__ = [
    "ALGORITHMS",
    "CRC_ALGORITHMS",
    "OFFLOAD_THRESHOLD",
    "ETagEvidence",
    "Hasher",
    "StoredChecksum",
    "StreamHashes",
    "combine_crc",
    "composite_checksum",
    "crc",
    "crc_digest",
    "etag_evidence",
    "etag_is_md5_based",
    "multipart_etag",
    "new_hasher",
    "normalize_etag",
    "s3_algorithm",
    "single_etag",
    "stored_checksum",
]

#: The algorithms :func:`new_hasher` knows, by their canonical (lowercase) names.
ALGORITHMS: Final[tuple[str, ...]] = ("md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme")

#: The CRCs: the algorithms whose values combine (:func:`combine_crc`).
CRC_ALGORITHMS: Final[frozenset[str]] = frozenset({"crc32", "crc32c", "crc64nvme"})

#: Chunks of at least this many bytes are hashed in a worker thread by
#: :meth:`StreamHashes.aupdate`.  Below it, the thread hop costs more than it saves.
OFFLOAD_THRESHOLD: Final[int] = 1 << 20

Buffer: TypeAlias = bytes | bytearray | memoryview

_CRC_SIZES: Final[dict[str, int]] = {"crc32": 4, "crc32c": 4, "crc64nvme": 8}
_CRC_FUNCTIONS: Final[dict[str, Callable[[Buffer, int], int]]] = {
    # zlib and awscrt both release the GIL for buffers above a few KiB, which is
    # what makes hashing in a worker thread worthwhile.
    "crc32": zlib.crc32,
    "crc32c": _crt.crc32c,
    "crc64nvme": _crt.crc64nvme,
}
_CRC_COMBINES: Final[dict[str, Callable[[int, int, int], int]]] = {
    "crc32": _crt.combine_crc32,
    "crc32c": _crt.combine_crc32c,
    "crc64nvme": _crt.combine_crc64nvme,
}
_S3_ALGORITHMS: Final[dict[str, str]] = {
    "sha1": "SHA1",
    "sha256": "SHA256",
    "crc32": "CRC32",
    "crc32c": "CRC32C",
    "crc64nvme": "CRC64NVME",
}
_MD5_SIZE: Final = 16
_MD5_ETAG = re.compile(r"[0-9a-fA-F]{32}(?:-[1-9][0-9]*)?")


class _HashObject(Protocol):
    """The part of a :mod:`hashlib` object that :class:`Hasher` uses."""

    @property
    def digest_size(self) -> int: ...
    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> _HashObject: ...


_HASHLIB_CONSTRUCTORS: Final[dict[str, Callable[[], _HashObject]]] = {
    # usedforsecurity=False: these are integrity checks, and the flag keeps md5
    # available on FIPS-restricted builds of OpenSSL.
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": lambda: hashlib.sha256(usedforsecurity=False),
}


def _canonical_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"algorithm name must be a str, not {type(name).__name__}")
    canonical = name.lower()
    if canonical not in ALGORITHMS:
        raise ValueError(
            f"unknown checksum algorithm {name!r}; expected one of: {', '.join(ALGORITHMS)}"
        )
    return canonical


def _as_buffer(data: Buffer) -> Buffer:
    # awscrt would silently accept a str (hashing its UTF-8 form), so reject it here
    # for every algorithm alike.
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, bytearray or memoryview, not {type(data).__name__}")
    if isinstance(data, memoryview) and not data.c_contiguous:
        return data.tobytes()
    return data


def _nbytes(data: Buffer) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


def _crc_name(name: str) -> str:
    canonical = _canonical_name(name)
    if canonical not in CRC_ALGORITHMS:
        raise ValueError(f"{name!r} is not a CRC; CRCs: {', '.join(sorted(CRC_ALGORITHMS))}")
    return canonical


def crc(name: str, data: Buffer, previous: int = 0) -> int:
    """The CRC ``name`` (crc32, crc32c or crc64nvme) of ``data``, continuing ``previous``.

    Raises:
        ValueError: ``name`` is not a CRC.
        TypeError: ``data`` is not bytes, bytearray or memoryview.
    """
    return _CRC_FUNCTIONS[_crc_name(name)](_as_buffer(data), previous)


def combine_crc(name: str, first: int, second: int, second_length: int) -> int:
    """The CRC ``name`` of ``A + B`` from ``first`` (A's CRC), ``second`` (B's CRC)
    and ``second_length`` (B's length in bytes), without reading a byte.

    Raises:
        ValueError: ``name`` is not a CRC, or ``second_length`` is negative.
    """
    if second_length < 0:
        raise ValueError(f"second_length must be >= 0, got {second_length}")
    if not second_length:
        return first
    return _CRC_COMBINES[_crc_name(name)](first, second, second_length)


def crc_digest(name: str, value: int) -> bytes:
    """The CRC ``value`` as S3 encodes it: big-endian, 4 or 8 bytes."""
    return value.to_bytes(_CRC_SIZES[_crc_name(name)], "big")


class Hasher(abc.ABC):
    """One checksum algorithm computed incrementally; create one with :func:`new_hasher`.

    Feeding the same bytes in any split through :meth:`update` gives the same
    digest as feeding them at once.  A hasher is not safe to update from two
    threads at the same time.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The canonical (lowercase) name of the algorithm, one of :data:`ALGORITHMS`."""

    @property
    @abc.abstractmethod
    def digest_size(self) -> int:
        """The length of :meth:`digest` in bytes."""

    @abc.abstractmethod
    def update(self, data: Buffer) -> None:
        """Feed ``data`` to the hash.

        Raises:
            TypeError: ``data`` is not bytes, bytearray or memoryview.
        """

    @abc.abstractmethod
    def digest(self) -> bytes:
        """Return the digest of the bytes fed so far; the hasher can go on being updated."""

    @abc.abstractmethod
    def copy(self) -> Hasher:
        """Return an independent hasher in the same state."""

    def combine(self, value: int, length: int) -> None:
        """Feed bytes known only by their CRC: ``value`` is the CRC of ``length``
        bytes, as if they were given to :meth:`update` (CRC hashers only).

        Raises:
            TypeError: the algorithm is not a CRC (no digest but a CRC combines).
        """
        raise TypeError(f"{self.name} digests cannot be combined; only CRCs can")

    def hexdigest(self) -> str:
        """Return :meth:`digest` as lowercase hex."""
        return self.digest().hex()

    def b64digest(self) -> str:
        """Return :meth:`digest` in base64, the form of S3's checksum and Content-MD5 headers."""
        return base64.b64encode(self.digest()).decode("ascii")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.hexdigest()}>"


class _HashlibHasher(Hasher):
    __slots__ = ("_hash", "_name")

    def __init__(self, name: str, hash_object: _HashObject) -> None:
        self._name = name
        self._hash = hash_object

    @property
    def name(self) -> str:
        return self._name

    @property
    def digest_size(self) -> int:
        return self._hash.digest_size

    def update(self, data: Buffer) -> None:
        self._hash.update(_as_buffer(data))

    def digest(self) -> bytes:
        return self._hash.digest()

    def copy(self) -> Hasher:
        return _HashlibHasher(self._name, self._hash.copy())


class _CrcHasher(Hasher):
    __slots__ = ("_crc", "_function", "_name", "_size")

    def __init__(self, name: str, crc: int = 0) -> None:
        self._name = name
        self._size = _CRC_SIZES[name]
        self._function = _CRC_FUNCTIONS[name]
        self._crc = crc

    @property
    def name(self) -> str:
        return self._name

    @property
    def digest_size(self) -> int:
        return self._size

    def update(self, data: Buffer) -> None:
        self._crc = self._function(_as_buffer(data), self._crc)

    def combine(self, value: int, length: int) -> None:
        self._crc = combine_crc(self._name, self._crc, value, length)

    def digest(self) -> bytes:
        return self._crc.to_bytes(self._size, "big")

    def copy(self) -> Hasher:
        return _CrcHasher(self._name, self._crc)


def new_hasher(name: str) -> Hasher:
    """Return a fresh :class:`Hasher` for the algorithm ``name`` (case-insensitive).

    Raises:
        ValueError: ``name`` is not one of :data:`ALGORITHMS`; the message lists them.
        TypeError: ``name`` is not a str.
    """
    canonical = _canonical_name(name)
    constructor = _HASHLIB_CONSTRUCTORS.get(canonical)
    if constructor is not None:
        return _HashlibHasher(canonical, constructor())
    return _CrcHasher(canonical)


def s3_algorithm(name: str) -> str:
    """Return S3's ``ChecksumAlgorithm`` value for ``name``, e.g. ``"sha256"`` -> ``"SHA256"``.

    The response field holding the checksum is ``f"Checksum{s3_algorithm(name)}"``.

    Raises:
        ValueError: ``name`` is unknown, or is ``md5``: S3 has no MD5 checksum
            algorithm (MD5 travels as ``Content-MD5`` and in the ETag).
        TypeError: ``name`` is not a str.
    """
    canonical = _canonical_name(name)
    try:
        return _S3_ALGORITHMS[canonical]
    except KeyError:
        raise ValueError(
            f"S3 has no {name!r} ChecksumAlgorithm (MD5 is checked through Content-MD5 and "
            f"the ETag); S3 supports: {', '.join(_S3_ALGORITHMS)}"
        ) from None


def _update_each(hashers: Sequence[Hasher], data: Buffer) -> None:
    for hasher in hashers:
        hasher.update(data)


class StreamHashes:
    """Several :class:`Hasher` objects fed the same stream of chunks.

    Use :meth:`update` from synchronous code and :meth:`aupdate` from a coroutine:
    ``aupdate`` hashes chunks of at least ``offload_threshold`` bytes in a worker
    thread, so other coroutines keep running meanwhile (hashlib, zlib and awscrt
    all release the GIL while they hash a large buffer).  Chunks are hashed in the
    order the calls are made; one update must finish before the next one starts.
    """

    __slots__ = ("_bytes_hashed", "_hashers", "_offload_threshold", "_updating")

    def __init__(self, names: Iterable[str], *, offload_threshold: int = OFFLOAD_THRESHOLD) -> None:
        """Hash with each algorithm in ``names`` (case-insensitive; duplicates count once).

        Raises:
            ValueError: a name is unknown (see :func:`new_hasher`), or
                ``offload_threshold`` is negative.
            TypeError: ``names`` is a single str rather than an iterable of them,
                or a name is not a str.
        """
        if isinstance(names, str):
            raise TypeError(f"names must be an iterable of algorithm names, not the str {names!r}")
        if offload_threshold < 0:
            raise ValueError(f"offload_threshold must be >= 0, got {offload_threshold}")
        canonical = dict.fromkeys(_canonical_name(name) for name in names)
        self._hashers: tuple[Hasher, ...] = tuple(new_hasher(name) for name in canonical)
        self._offload_threshold = offload_threshold
        self._bytes_hashed = 0
        self._updating = False

    def __repr__(self) -> str:
        return f"<StreamHashes {', '.join(self.names)} bytes_hashed={self._bytes_hashed}>"

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical names of the algorithms, in the order first given."""
        return tuple(hasher.name for hasher in self._hashers)

    @property
    def bytes_hashed(self) -> int:
        """The number of bytes fed so far."""
        return self._bytes_hashed

    def update(self, data: Buffer) -> None:
        """Feed ``data`` to every hasher, in the calling thread.

        Raises:
            TypeError: ``data`` is not bytes, bytearray or memoryview.
            RuntimeError: an :meth:`aupdate` is in progress.
        """
        self._check_idle()
        data = _as_buffer(data)
        _update_each(self._hashers, data)
        self._bytes_hashed += _nbytes(data)

    async def aupdate(self, data: Buffer) -> None:
        """Feed ``data`` to every hasher, in a worker thread if the chunk is large.

        Cancellation is atomic: a cancelled ``aupdate`` leaves the hashes as they
        were before it, as if the chunk had never been given.  (The worker thread
        cannot be stopped; it finishes on private copies of the hashers, which are
        then dropped.  A mutable buffer passed in must not be resized until then.)

        Raises:
            TypeError: ``data`` is not bytes, bytearray or memoryview.
            RuntimeError: another :meth:`aupdate` is in progress.
        """
        self._check_idle()
        data = _as_buffer(data)
        size = _nbytes(data)
        if size < self._offload_threshold or size == 0:
            _update_each(self._hashers, data)
            self._bytes_hashed += size
            return
        self._updating = True
        try:
            # Hash copies and swap them in only on success, so a cancellation
            # while the thread runs changes nothing.
            copies = tuple(hasher.copy() for hasher in self._hashers)
            await asyncio.to_thread(_update_each, copies, data)
        finally:
            self._updating = False
        self._hashers = copies
        self._bytes_hashed += size

    def digests(self) -> dict[str, bytes]:
        """Return the raw digest of each algorithm, by canonical name."""
        return {hasher.name: hasher.digest() for hasher in self._hashers}

    def hexdigests(self) -> dict[str, str]:
        """Return the lowercase hex digest of each algorithm, by canonical name."""
        return {hasher.name: hasher.hexdigest() for hasher in self._hashers}

    def b64digests(self) -> dict[str, str]:
        """Return the base64 digest (S3's header form) of each algorithm, by canonical name."""
        return {hasher.name: hasher.b64digest() for hasher in self._hashers}

    def _check_idle(self) -> None:
        if self._updating:
            raise RuntimeError(
                "StreamHashes updated while an aupdate() is in progress; "
                "await each update before starting the next"
            )


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
