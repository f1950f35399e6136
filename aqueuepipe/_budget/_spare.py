"""The spare buffers of a :class:`~aqueuepipe.ByteBudget`: buffers given back with
their bytes, kept for a later lease of the same size."""

from __future__ import annotations

import collections
import io


class _SpareBuffers:
    """Buffers given back with their bytes, by size, for leases of the same size."""

    __slots__ = ("_by_size", "bytes")

    def __init__(self) -> None:
        # Sizes in the order they were last given back, the oldest first.
        self._by_size: collections.OrderedDict[int, list[io.BytesIO]] = collections.OrderedDict()
        self.bytes = 0

    def take(self, size: int) -> io.BytesIO | None:
        kept = self._by_size.get(size)
        if not kept:
            return None
        buffer = kept.pop()
        if not kept:
            del self._by_size[size]
        self.bytes -= size
        return buffer

    def keep(self, buffer: io.BytesIO, size: int) -> None:
        self._by_size.setdefault(size, []).append(buffer)
        self._by_size.move_to_end(size)
        self.bytes += size

    def fit(self, room: int) -> None:
        """Close spare buffers until at most ``room`` bytes are spare."""
        while self.bytes > room:
            size, kept = next(iter(self._by_size.items()))
            kept.pop().close()
            if not kept:
                del self._by_size[size]
            self.bytes -= size
