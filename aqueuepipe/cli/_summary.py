"""The summary ``cp`` and ``sync`` print after a batch: how many objects were copied,
skipped, deleted (``sync --delete``) and failed, at what speed, what evidence
verified them, and the memory the batch held (the budget's peak and the process's
peak RSS).  After ``sync --dry-run`` it says what would have been copied and
deleted instead."""

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
    count_deleted: bool = False  # say how many were deleted, even when none was
    dry_run: bool = False  # the copies and deletions are planned, not made
    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    bytes: int = 0
    would_copy: int = 0
    would_delete: int = 0
    unverified: int = 0
    evidence: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, result: TransferResult) -> None:
        if result.skipped:
            self.skipped += 1
        elif result.planned and result.ok:
            if result.src:
                self.would_copy += 1
                self.bytes += result.size
            else:
                self.would_delete += 1
        elif result.deleted:
            self.deleted += 1
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
        rss = peak_rss()
        skipped = (
            f"{self.skipped} skipped (already there), "
            if self.skipped or self.count_skipped
            else ""
        )
        memory = (
            f"peak memory: {format_size(budget.peak)} buffered (limit "
            f"{format_size(budget.limit)}), process peak RSS "
            + (format_size(rss) if rss is not None else "unknown")
        )
        if self.dry_run:
            deleted = f" and delete {_objects(self.would_delete)}" if self.count_deleted else ""
            return [
                f"dry run: would copy {_objects(self.would_copy)} ({format_size(self.bytes)})"
                f"{deleted}; {skipped}{self.failed} failed; nothing was written or deleted",
                memory,
            ]
        rate = self.bytes / elapsed if elapsed > 0 else 0.0
        deleted = f"{self.deleted} deleted, " if self.count_deleted else ""
        return [
            f"copied {_objects(self.copied)} ({format_size(self.bytes)}) in {elapsed:.2f} s "
            f"at {rate / 1e6:.1f} MB/s, {skipped}{deleted}{self.failed} failed",
            self.verification(),
            memory,
        ]


def _objects(count: int) -> str:
    return f"{count} object{'' if count == 1 else 's'}"
