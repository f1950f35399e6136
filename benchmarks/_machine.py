"""What every benchmark shares: the machine it ran on, readings of a process, the report.

Only the standard library is imported at the top: ``_measure.py`` imports this module
under an interpreter of its own (the aioboto3 venv), where nothing else is installed.
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import os
import platform
import resource
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# -- the machine ----------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """Platform, Python, CPU model, CPUs available, memory and the load average."""
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        nproc = os.cpu_count() or 0
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            memory = f"{int(f.readline().split()[1]) / (1024 * 1024):.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "cpu_model": cpu_model,
        "nproc": nproc,
        "memory": memory,
        "event_loop": "asyncio (stock)",
        "loadavg_before": list(os.getloadavg()),
    }


def versions(*names: str) -> dict[str, str]:
    """The installed version of each distribution in ``names``, or "not installed"."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# -- readings of a process (Linux /proc) ----------------------------------------------


def status_kib(*names: str) -> dict[str, int]:
    """Fields of ``/proc/self/status`` (``VmRSS``, ``VmHWM``...), in KiB."""
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in names:
                found[name] = int(value.split()[0])
    return found


def reset_peak() -> dict[str, int]:
    """Collect garbage and make the peak RSS the current one; ``VmRSS`` and ``VmHWM`` after."""
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # VmHWM := VmRSS
    return status_kib("VmRSS", "VmHWM")


def cpu_seconds() -> float:
    """User + system CPU of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU process ``pid`` has used so far; None if it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # Fields 14 and 15 of stat (utime, stime), counted after "pid (comm)".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the report -----------------------------------------------------------------------


def print_table(
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[str] | None],
    *,
    left: int = 0,
    width: int = 120,
) -> None:
    """A table with rich if it is installed, else in plain columns.

    The first ``left`` columns are left-aligned, the others right-aligned.  A row of
    None starts a new section (a rule with rich; nothing in plain text).  Off a
    terminal (CI logs, a file) the table is ``width`` characters wide: rich would
    squeeze it into 80 columns.
    """
    rows = list(rows)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        body = [row for row in rows if row is not None]
        widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                cell.ljust(w) if i < left else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
            )

        print(title)
        print(line(header))
        for row in body:
            print(line(row))
        return
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < left else "right")
    started = False
    for row in rows:
        if row is None:
            if started:
                table.add_section()
        else:
            table.add_row(*row)
            started = True
    Console(width=None if sys.stdout.isatty() else width).print(table)


def machine_line(report: dict[str, Any]) -> str:
    """The report's last line: the machine, Python and how long the run took."""
    machine = report["machine"]
    return (
        f"{machine['cpu_model']}, {machine['nproc']} CPUs, Python {machine['python']}, "
        f"{report['elapsed_seconds']:.0f} s in all"
    )


def write_report(report: dict[str, Any], output: Path | None) -> None:
    """Write ``report`` as JSON to ``output`` (its folder made if need be); None: nowhere."""
    if output is None:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}")
