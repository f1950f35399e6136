"""Incremental hashing: :class:`Hasher` and :class:`StreamHashes`."""

from __future__ import annotations

import abc
import asyncio
import base64
from collections.abc import Iterable, Sequence
from typing import Final

from ._algorithms import (
    _CRC_FUNCTIONS,
    _CRC_SIZES,
    _HASHLIB_CONSTRUCTORS,
    Buffer,
    _as_buffer,
    _canonical_name,
    _HashObject,
    _nbytes,
    combine_crc,
)

#: Chunks of at least this many bytes are hashed in a worker thread by
#: :meth:`StreamHashes.aupdate`.  Below it, the thread hop costs more than it saves.
OFFLOAD_THRESHOLD: Final[int] = 1 << 20


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


class _NamedHasher(Hasher):
    """A hasher of the algorithm it was made for, by canonical name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name


class _HashlibHasher(_NamedHasher):
    __slots__ = ("_hash",)

    def __init__(self, name: str, hash_object: _HashObject) -> None:
        super().__init__(name)
        self._hash = hash_object

    @property
    def digest_size(self) -> int:
        return self._hash.digest_size

    def update(self, data: Buffer) -> None:
        self._hash.update(_as_buffer(data))

    def digest(self) -> bytes:
        return self._hash.digest()

    def copy(self) -> Hasher:
        return _HashlibHasher(self._name, self._hash.copy())


class _CrcHasher(_NamedHasher):
    __slots__ = ("_crc", "_function", "_size")

    def __init__(self, name: str, crc: int = 0) -> None:
        super().__init__(name)
        self._size = _CRC_SIZES[name]
        self._function = _CRC_FUNCTIONS[name]
        self._crc = crc

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
