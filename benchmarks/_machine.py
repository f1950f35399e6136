"""The machine a benchmark ran on, recorded with its results."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any


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
