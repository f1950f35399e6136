"""Peak memory of a workload, measured from outside the library: the peak RSS of a
fresh Python process, over a warm baseline.

The workload runs in a subprocess: it first runs a small warm-up of the same
kind (imports, clients, thread pools, allocator arenas), then resets the
kernel's peak (``VmHWM``, by writing ``5`` to ``/proc/self/clear_refs``), takes
the RSS as the baseline, runs the workload, and reports ``VmHWM - baseline``.
Nothing the library counts for itself enters the figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

SLACK = 20 * 1024 * 1024
"""What a measured workload may grow beyond its memory limit: what is not the
copies' bodies (aiohttp's and the kernel's socket buffers, the threads that hash,
the allocator's free lists).  A fixed amount, whatever the number of copies."""

_HARNESS = """
import asyncio, json, sys

def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

{body}

async def _main():
    await warm_up()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS starts again from the RSS now
    baseline = _status("VmRSS")
    report = await workload()
    print(json.dumps({{"baseline": baseline, "peak": _status("VmHWM"), "report": report}}))

asyncio.run(_main())
"""


@dataclass(frozen=True)
class Growth:
    """What a measured run reports: peak RSS growth in bytes, and the workload's own report."""

    growth: int
    report: object

    @property
    def mib(self) -> float:
        return self.growth / (1 << 20)


async def measure_growth(
    body: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 180
) -> Growth:
    """Run ``body`` (Python source defining ``async def warm_up()`` and ``async def
    workload()``, the latter returning something JSON can carry) in a fresh process
    with ``sys.argv[1:] == args``; return its peak RSS growth over the warm baseline."""
    script = _HARNESS.format(body=textwrap.dedent(body))
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise AssertionError(f"the measured process failed:\n{done.stderr[-3000:]}")
    line = json.loads(done.stdout.strip().splitlines()[-1])
    return Growth(line["peak"] - line["baseline"], line["report"])
