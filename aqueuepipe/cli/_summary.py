"""The summary ``cp`` and ``sync`` print after a batch: how many objects were copied,
skipped and failed, at what speed, what evidence verified them, and the memory the
batch held (the budget's peak and the process's peak RSS)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from .. import ByteBudget
from .._report import peak_rss
from .._units import format_size
from ..transfer import TransferResult


@dataclass(slots=True)
class Summary:
    count_skipped: bool = False  # say how many were skipped, even when none was
    copied: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    unverified: int = 0
    evidence: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, result: TransferResult) -> None:
        if result.skipped:
            self.skipped += 1
        elif result.ok:
            self.copied += 1
            self.bytes += result.size
            self.evidence.update(result.verified)
            if not result.verified:
                self.unverified += 1
        else:
            self.failed += 1

    def verification(self) -> str:
        """What proved the copies, e.g. "verified: source:crc32 x3, destination:etag-md5 x3"."""
        shown = ", ".join(f"{label} x{count}" for label, count in sorted(self.evidence.items()))
        line = f"verified: {shown or 'nothing'}"
        if self.unverified:
            line += f"; {self.unverified} without evidence"
        return line

    def lines(self, elapsed: float, budget: ByteBudget) -> list[str]:
        rate = self.bytes / elapsed if elapsed > 0 else 0.0
        objects = f"{self.copied} object{'' if self.copied == 1 else 's'}"
        rss = peak_rss()
        skipped = (
            f"{self.skipped} skipped (already there), "
            if self.skipped or self.count_skipped
            else ""
        )
        return [
            f"copied {objects} ({format_size(self.bytes)}) in {elapsed:.2f} s "
            f"at {rate / 1e6:.1f} MB/s, {skipped}{self.failed} failed",
            self.verification(),
            f"peak memory: {format_size(budget.peak)} buffered (limit "
            f"{format_size(budget.limit)}), process peak RSS "
            + (format_size(rss) if rss is not None else "unknown"),
        ]
