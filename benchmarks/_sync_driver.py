"""The ``aqueuepipe.sync()`` contender of bench_sync.py: one sync in a fresh process.

Run as ``python benchmarks/_sync_driver.py SRC DST [--dry-run] [--warm SRC DST]``;
prints one JSON object: the results counted by kind (``copied``, ``skipped``,
``planned``, ``deleted``, ``failed``).  The endpoint and the fake credentials come
from the environment (``AWS_ENDPOINT_URL``...), as for the other contenders.

With ``--warm WSRC WDST`` it measures its own peak RSS growth as
``tests/_memory.py`` does, from the kernel's counters and never the library's: a
dry-run sync of WSRC to WDST first (imports, the client and its connections), then
``5`` into ``/proc/self/clear_refs`` (the peak starts again from the RSS now), the
RSS as the baseline, the sync, and ``VmHWM`` less the baseline (``rss_growth_kib``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import time


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _sync(src: str, dst: str, dry_run: bool) -> dict[str, int]:
    import contextlib

    import aqueuepipe

    kinds: collections.Counter[str] = collections.Counter()
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    results = aqueuepipe.sync(src, dst, dry_run=dry_run, endpoint_url=endpoint)
    async with contextlib.aclosing(results) as each:
        async for result in each:
            if not result.ok:
                kinds["failed"] += 1
            elif result.deleted:
                kinds["deleted"] += 1
            elif result.planned:
                kinds["planned"] += 1
            elif result.skipped:
                kinds["skipped"] += 1
            else:
                kinds["copied"] += 1
    return dict(kinds)


async def _main(args: argparse.Namespace) -> dict[str, object]:
    report: dict[str, object] = {}
    if args.warm:
        await _sync(args.warm[0], args.warm[1], dry_run=True)
        gc.collect()
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        baseline = _status_kib("VmRSS")
    started = time.perf_counter()
    report["results"] = await _sync(args.src, args.dst, args.dry_run)
    report["seconds_inside"] = time.perf_counter() - started
    if args.warm:
        report["baseline_kib"] = baseline
        report["rss_growth_kib"] = _status_kib("VmHWM") - baseline
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--warm", nargs=2, metavar=("SRC", "DST"))
    report = asyncio.run(_main(parser.parse_args()))
    print(json.dumps(report))
    failed = report["results"]
    return 1 if isinstance(failed, dict) and failed.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
