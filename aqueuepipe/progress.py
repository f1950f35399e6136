"""Progress of copies: plain counters, and a terminal display built on them.

:class:`BatchProgress` is a :class:`~aqueuepipe.ProgressListener` that only counts:
bytes done and known for each copy and for the whole batch, and copies started,
done and failed.  It has no display and no dependencies, for programs that show
progress their own way::

    totals = BatchProgress()
    async for result in copy_many(pairs, progress=totals):
        print(f"{totals.bytes_done} of {totals.bytes_total} bytes")

:class:`ProgressDisplay` draws a :class:`BatchProgress` with rich: one bar for the
batch and one per copy in flight.  Its listener methods only update counters
under a lock; rich redraws from them on its own timer in its own thread, so the
display costs the copies next to nothing however fast the events come.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from ._report import printable
from .s3._secrets import redact
from .transfer import TransferResult

__all__ = ["BatchProgress", "ProgressDisplay", "TransferProgress"]


@dataclass(eq=False, slots=True)
class TransferProgress:
    """The progress of one copy in flight: ``done`` of ``total`` bytes (``None``: unknown)."""

    src: str
    dst: str
    total: int | None
    done: int = 0

    @property
    def expected(self) -> int:
        """The bytes this copy is known to move: its size, or what it has moved so far."""
        return max(self.total or 0, self.done)


class BatchProgress:
    """Counts the bytes and copies of a batch from :class:`~aqueuepipe.ProgressListener` events.

    ``bytes_total`` grows as copies start (``copy_many`` reads its pairs lazily, so
    the size of a batch is learnt as it goes): it is the size of every copy in
    flight plus the bytes of every finished one.  A copy that fails counts for
    the bytes it moved before failing, so the batch can still reach 100 %.

    Not thread-safe: use it from the event loop thread (``ProgressDisplay``
    takes a lock around it for its drawing thread).
    """

    __slots__ = (
        "_active",
        "bytes_done",
        "bytes_total",
        "failed",
        "skipped",
        "started",
        "succeeded",
    )

    def __init__(self) -> None:
        # A list per (src, dst): a batch may hold the same pair twice.
        self._active: dict[tuple[str, str], list[TransferProgress]] = {}
        #: Bytes that reached their destination, over every copy.
        self.bytes_done = 0
        #: Bytes the batch is known to move so far (see the class docstring).
        self.bytes_total = 0
        #: Copies that started (that had opened their source).
        self.started = 0
        #: Copies that finished successfully.
        self.succeeded = 0
        #: Copies not made because the destination already held the object
        #: (``skip_existing``); their bytes count nowhere.
        self.skipped = 0
        #: Copies that failed, including those that failed before they started.
        self.failed = 0

    def __repr__(self) -> str:
        return (
            f"<BatchProgress {self.bytes_done}/{self.bytes_total} bytes, "
            f"{self.active_count} active, {self.succeeded} done, {self.skipped} skipped, "
            f"{self.failed} failed>"
        )

    @property
    def finished(self) -> int:
        """Copies that ended, successfully, skipped or failed."""
        return self.succeeded + self.skipped + self.failed

    @property
    def active_count(self) -> int:
        """Copies in flight."""
        return sum(len(entries) for entries in self._active.values())

    @property
    def active(self) -> list[TransferProgress]:
        """The copies in flight, in the order they started."""
        return [entry for entries in self._active.values() for entry in entries]

    @property
    def fraction(self) -> float:
        """``bytes_done / bytes_total``, 0.0 while nothing is known."""
        return self.bytes_done / self.bytes_total if self.bytes_total else 0.0

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        """Count a copy that began; ``total`` is its size if known."""
        entry = TransferProgress(src, dst, total)
        self._active.setdefault((src, dst), []).append(entry)
        self.started += 1
        self.bytes_total += entry.expected

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        """Count ``nbytes`` more bytes of a copy (events of unknown copies are ignored)."""
        entries = self._active.get((src, dst))
        if not entries:
            return
        entry = entries[0]
        before = entry.expected
        entry.done += nbytes
        self.bytes_done += nbytes
        self.bytes_total += entry.expected - before

    def transfer_finished(self, result: TransferResult) -> None:
        """Count a copy that ended, started or not."""
        key = (result.src, result.dst)
        entries = self._active.get(key)
        entry = entries.pop(0) if entries else None
        if entries == []:
            del self._active[key]
        if result.skipped:
            self.skipped += 1
            if entry is not None:  # nothing was moved: forget what it was expected to move
                self.bytes_done -= entry.done
                self.bytes_total -= entry.expected
        elif result.ok:
            self.succeeded += 1
            # The result's size is authoritative: it settles a copy whose size was
            # unknown, or whose events did not add up to it.
            done = entry.done if entry is not None else 0
            expected = entry.expected if entry is not None else 0
            self.bytes_done += result.size - done
            self.bytes_total += result.size - expected
        else:
            self.failed += 1
            if entry is not None:
                self.bytes_total += entry.done - entry.expected


_LABEL_WIDTH = 40


def _label(src: str) -> str:
    """What a copy's bar is called: the source key or path, its end kept if too long.

    Control characters are escaped: a key must not drive the terminal.  A URL's
    ``user:password@`` is left out.
    """
    name = printable(redact(src))
    if name[:5].lower() == "s3://":
        name = name[5:].partition("/")[2] or name
    if len(name) > _LABEL_WIDTH:
        name = "…" + name[-(_LABEL_WIDTH - 1) :]
    return name


class ProgressDisplay:
    """A terminal display of a batch of copies: a :class:`~aqueuepipe.ProgressListener`.

    One bar for the whole batch (bytes done of bytes known so far, throughput,
    time left, copies done and failed) and one per copy in flight, removed when
    it finishes; at most ``max_bars`` of those are drawn, the oldest first::

        with ProgressDisplay() as display:
            async for result in copy_many(pairs, progress=display):
                ...

    It draws on ``console`` (default: a rich console on standard error) and only
    when that is a terminal, unless ``enabled`` says otherwise; it counts in
    :attr:`totals` either way.  Drawing happens ``refresh_per_second`` times a
    second in rich's refresh thread; the listener methods take a lock and update
    counters, nothing more.  Lines printed while it draws appear above the bars.
    Only source names and byte counts are shown.
    """

    def __init__(
        self,
        *,
        console: Console | None = None,
        enabled: bool | None = None,
        max_bars: int = 10,
        refresh_per_second: float = 10,
    ) -> None:
        if max_bars < 0:
            raise ValueError(f"max_bars must be >= 0, got {max_bars}")
        self.console = console if console is not None else Console(stderr=True)
        if enabled is None:
            enabled = self.console.is_terminal and not self.console.is_dumb_terminal
        self.enabled = enabled
        self.max_bars = max_bars
        self._totals = BatchProgress()
        self._lock = threading.Lock()
        # The Progress is never started: it only keeps the tasks (and their speed
        # samples) and lays out the table.  Our own Live draws it, bringing the
        # tasks up to date from the counters at each redraw; a started Progress
        # would redraw from inside add_task(), which the redraw itself calls.
        self._bars = Progress(
            # markup=False: object names are shown as they are, brackets and all.
            TextColumn(
                "{task.description}",
                markup=False,
                table_column=Column(no_wrap=True, min_width=12, max_width=_LABEL_WIDTH),
            ),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
        )
        self._overall = self._bars.add_task("starting", total=None)
        self._overall_task = next(t for t in self._bars.tasks if t.id == self._overall)
        self._tasks_of: dict[TransferProgress, TaskID] = {}
        self._live = Live(
            console=self.console,
            auto_refresh=True,
            refresh_per_second=refresh_per_second,
            get_renderable=self._render,
            # Lines printed on the display's stream go above the bars; the other
            # stream is left alone (results printed on stdout stay on stdout).
            redirect_stdout=self.console.file is sys.stdout,
            redirect_stderr=self.console.file is sys.stderr,
        )

    # -- ProgressListener: called on the event loop thread ------------------------

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        """A copy began."""
        with self._lock:
            self._totals.transfer_started(src, dst, total)

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        """``nbytes`` more bytes of a copy reached its destination."""
        with self._lock:
            self._totals.transfer_advanced(src, dst, nbytes)

    def transfer_finished(self, result: TransferResult) -> None:
        """A copy ended."""
        with self._lock:
            self._totals.transfer_finished(result)

    # -- drawing ----------------------------------------------------------------

    @property
    def totals(self) -> BatchProgress:
        """The counters the display draws (read them from the event loop thread)."""
        return self._totals

    def start(self) -> None:
        """Start drawing (nothing happens when the display is not enabled)."""
        if self.enabled:
            self._live.start(refresh=True)

    def stop(self) -> None:
        """Draw the final state and stop; idempotent."""
        if self.enabled:
            self._live.stop()

    def refresh(self) -> None:
        """Draw now rather than at the next tick of the timer."""
        if self.enabled:
            self._live.refresh()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _render(self) -> RenderableType:
        """The bars as they are now (called by Live, in its refresh thread or on refresh())."""
        with self._lock:
            totals = self._totals
            shown = totals.active[: self.max_bars]
            bars = [(entry, entry.total, entry.done) for entry in shown]
            hidden = totals.active_count - len(shown)
            description = _overall_description(
                totals.succeeded, totals.skipped, totals.failed, hidden
            )
            bytes_total, bytes_done = totals.bytes_total, totals.bytes_done
        progress = self._bars
        visible = set(shown)
        for entry in [entry for entry in self._tasks_of if entry not in visible]:
            progress.remove_task(self._tasks_of.pop(entry))
        for entry, total, done in bars:
            task = self._tasks_of.get(entry)
            if task is None:
                # A total of 0 (an empty object) would divide by zero in the bar.
                self._tasks_of[entry] = progress.add_task(
                    _label(entry.src), total=total or None, completed=done
                )
            else:
                progress.update(task, completed=done)
        progress.update(self._overall, description=description, completed=bytes_done)
        # The batch's total grows as copies start.  It is set on the task itself:
        # update(total=...) would drop the speed samples every time, and cannot
        # go back to None (nothing known), which a total of 0 must show as.
        overall = self._overall_task
        overall.total = bytes_total or None
        if overall.total is None or bytes_done < overall.total:
            overall.finished_time = None
        return progress.get_renderable()


def _overall_description(succeeded: int, skipped: int, failed: int, hidden: int) -> str:
    parts = [f"{succeeded} done"]
    if skipped:
        parts.append(f"{skipped} skipped")
    if failed:
        parts.append(f"{failed} failed")
    if hidden > 0:
        parts.append(f"{hidden} more")
    return "all: " + ", ".join(parts)
