"""What the command and the demo print about copies: one line per failure, JSON
results, and the process's peak memory.

Nothing printed here holds credentials (:func:`~aqueuepipe.s3._secrets.redact`)
or raw control characters (:func:`printable`): object names come from whoever
wrote the bucket, and must not drive the terminal.
"""

from __future__ import annotations

import re
import sys
import traceback
from typing import Any, Final, TextIO

from ._errors import AqueuepipeError, TransferError
from .s3._secrets import redact
from .transfer import TransferResult

__all__ = ["failure_message", "peak_rss", "print_failure", "printable", "result_json"]

_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters escaped, so an object name cannot drive the terminal."""
    return _CONTROL_RE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def failure_message(error: BaseException) -> str:
    """The one-line, credential-free description of a failed copy's error."""
    if isinstance(error, TransferError):
        message = error.reason
    elif isinstance(error, AqueuepipeError | ValueError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
    return printable(redact(message))


def print_failure(result: TransferResult, file: TextIO | None = None) -> None:
    """Print ``error: SRC -> DST: MESSAGE`` for a failed result on standard error
    (``error: deleting DST: MESSAGE`` for a failed deletion).

    Errors aqueuepipe expects (its own, and ``ValueError`` for bad input) get that
    one line; anything else is a bug, and its traceback follows.
    """
    assert result.error is not None
    out = sys.stderr if file is None else file
    src, dst = printable(redact(result.src)), printable(redact(result.dst))
    if not result.src:  # a deletion (sync's): it has no source
        print(f"error: deleting {dst}: {failure_message(result.error)}", file=out)
    else:
        print(f"error: {src} -> {dst}: {failure_message(result.error)}", file=out)
    if not isinstance(result.error, AqueuepipeError | ValueError):
        lines = traceback.format_exception(result.error)
        # Line breaks kept, every other control character escaped.
        shown = (printable(line) for line in redact("".join(lines)).splitlines())
        print("\n".join(shown), file=out)


def result_json(result: TransferResult) -> dict[str, Any]:
    """A result as a JSON-ready dict; ``error`` is a message (None when it succeeded).

    JSON escapes control characters itself; a URL's ``user:password@`` is left out.
    """
    return {
        "src": redact(result.src),
        "dst": redact(result.dst),
        "ok": result.ok,
        "skipped": result.skipped,
        "deleted": result.deleted,
        "planned": result.planned,
        "size": result.size,
        "etag": result.etag,
        "parts": result.parts,
        "checksums": dict(result.checksums),
        "verified": list(result.verified),
        "seconds": round(result.seconds, 6),
        "throughput": round(result.throughput, 1),
        "error": None if result.error is None else failure_message(result.error),
        "error_type": None if result.error is None else type(result.error).__name__,
    }


def peak_rss() -> int | None:
    """The peak resident set size of this process in bytes; None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS (and the BSDs' ru_maxrss on darwin) bytes.
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


class PeakGrowth:
    """How much this process's peak RSS grew from the moment it was made.

    On Linux the kernel's peak (``VmHWM``) is reset to the current RSS first, so
    the figure is the growth of whatever ran since, measured from outside the
    library's own counters; elsewhere :meth:`bytes` is None.
    """

    __slots__ = ("_baseline",)

    def __init__(self) -> None:
        self._baseline: int | None = None
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # VmHWM starts again from VmRSS
            self._baseline = _status_bytes("VmRSS")
        except OSError:
            self._baseline = None

    def bytes(self) -> int | None:
        """Peak RSS now minus the RSS when this was made; None where unknown."""
        if self._baseline is None:
            return None
        peak = _status_bytes("VmHWM")
        return None if peak is None else max(0, peak - self._baseline)


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status, in bytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
