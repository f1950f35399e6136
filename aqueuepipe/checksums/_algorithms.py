"""The checksum algorithms: their names, CRC functions and CRC combination."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Final, Protocol, TypeAlias

from awscrt import checksums as _crt

#: The algorithms :func:`new_hasher` knows, by their canonical (lowercase) names.
ALGORITHMS: Final[tuple[str, ...]] = ("md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme")

#: The CRCs: the algorithms whose values combine (:func:`combine_crc`).
CRC_ALGORITHMS: Final[frozenset[str]] = frozenset({"crc32", "crc32c", "crc64nvme"})

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
