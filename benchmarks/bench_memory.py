"""Memory under concurrency: the peak RSS growth of a fresh process, N copies under one budget.

Run::

    python benchmarks/bench_memory.py                # 1, 4, 16 copies; 16 and 64 MiB; 3 rounds
    python benchmarks/bench_memory.py --rounds 1
    python benchmarks/bench_memory.py --smoke        # 2 MiB objects, 1 and 4 copies (CI)

aqueuepipe's promise is a memory bound: N concurrent copies sharing one
``ByteBudget(L)`` grow a process by about L, not by N parts.  This measures it
from outside the library, never from ``budget.peak`` (a counter that cannot exceed
the limit by construction).  One run starts its own moto server process (fake
credentials, 127.0.0.1 only), and every measurement runs in a fresh Python
process that warms up on a small run of the same kind (imports, the client and
its connections, thread pools), resets the kernel's peak RSS (``VmHWM``, by
writing ``5`` to ``/proc/self/clear_refs``), takes the RSS as its baseline, runs
the workload and reports ``VmHWM - baseline``:

``stream``
    N concurrent ``copy(gen(), "s3://...", budget=budget, client=client)`` of
    async generators of unknown length (``--object-mib`` each, 64 KiB chunks: the
    same block yielded again and again, so the figure is what the library holds),
    with one ``ByteBudget`` and one client for all, as in an async service.
``s3-to-s3``
    N concurrent ``copy("s3://src", "s3://dst", budget=budget, client=client,
    server_side=False)`` of ``--object-mib`` objects, one budget and one client:
    streamed through the client (on one endpoint the server would copy them).
``boto3 stream`` (reference, at the largest N only)
    N threads, each ``s3.upload_fileobj(reader, ...)`` of a non-seekable reader
    of the same size (``read(n)`` only), one boto3 client, boto3's default
    ``TransferConfig`` (8 MiB parts, 10 threads per upload, up to 10 parts read
    ahead of a non-seekable stream).  boto3 has no shared budget: the row is
    what the same workload costs without one.

Each figure is the median of ``--rounds`` interleaved rounds (the max is kept in
the JSON).  Every result's size is checked.  Results go to
``benchmarks/results/memory.json`` (``--output``); ``--smoke`` writes no file
unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from _machine import (
    add_run_options,
    finish_report,
    machine_line,
    print_table,
    report_head,
    resolve_output,
    versions,
)
from _server import boto3_client, client_environment

from aqueuepipe.testing import moto_server

MIB = 1024 * 1024
BUCKET_SRC = "bench-memory-src"
BUCKET_DST = "bench-memory-dst"

# What each measured process runs: the harness, then one workload's body, which
# defines ``async def warm_up()`` and ``async def workload()``.  argv: endpoint,
# budget bytes, count, object bytes.
_HARNESS = """
import asyncio, json, sys, time

def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

ENDPOINT, BUDGET, COUNT, SIZE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
SRC, DST = {src!r}, {dst!r}

{body}

async def _main():
    await warm_up()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS starts again from the RSS now
    baseline = _status("VmRSS")
    started = time.perf_counter()
    moved = await workload()
    seconds = time.perf_counter() - started
    if moved != COUNT * SIZE:
        raise SystemExit(f"moved {{moved}} bytes, expected {{COUNT * SIZE}}")
    print(json.dumps({{"growth": _status("VmHWM") - baseline, "baseline": baseline,
                      "seconds": seconds, "bytes": moved}}))

asyncio.run(_main())
"""

_STREAM = """
import os
from aqueuepipe import ByteBudget, copy
from aqueuepipe.s3 import create_client

BLOCK = os.urandom(64 * 1024)

async def chunks(size):
    whole, rest = divmod(size, len(BLOCK))
    for _ in range(whole):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]

async def run(count, size, name):
    budget = ByteBudget(BUDGET)
    async with create_client(endpoint_url=ENDPOINT, max_pool_connections=64) as client:
        results = await asyncio.gather(*(
            copy(chunks(size), f"s3://{DST}/{name}{i}", budget=budget, client=client)
            for i in range(count)
        ))
    assert all(r.ok for r in results), results
    return sum(r.size for r in results)

async def warm_up():
    await run(2, 64 * 1024, "warm-stream")

async def workload():
    return await run(COUNT, SIZE, "stream")
"""

_S3_TO_S3 = """
from aqueuepipe import ByteBudget, copy
from aqueuepipe.s3 import create_client

async def run(keys, prefix):
    budget = ByteBudget(BUDGET)
    async with create_client(endpoint_url=ENDPOINT, max_pool_connections=64) as client:
        results = await asyncio.gather(*(
            copy(
                f"s3://{SRC}/{k}",
                f"s3://{DST}/{prefix}{k}",
                budget=budget,
                client=client,
                server_side=False,
            )
            for k in keys
        ))
    assert all(r.ok for r in results), results
    return sum(r.size for r in results)

async def warm_up():
    await run(["warm"], "warm-")

async def workload():
    return await run([f"o{i}" for i in range(COUNT)], "copy-")
"""

_BOTO3_STREAM = """
import os
from concurrent.futures import ThreadPoolExecutor
import boto3

BLOCK = os.urandom(64 * 1024)

class Reader:
    # A stream of unknown length: read(n) only, no seek or tell.
    def __init__(self, size):
        self.left = size

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        whole, rest = divmod(n, len(BLOCK))
        return BLOCK * whole + BLOCK[:rest]

def run(count, size, name):
    s3 = boto3.client("s3", endpoint_url=ENDPOINT,
                      config=boto3.session.Config(max_pool_connections=count * 11))
    def one(i):
        s3.upload_fileobj(Reader(size), DST, f"{name}{i}")
        return s3.head_object(Bucket=DST, Key=f"{name}{i}")["ContentLength"]
    with ThreadPoolExecutor(count) as pool:
        return sum(pool.map(one, range(count)))

async def warm_up():
    await asyncio.to_thread(run, COUNT, 64 * 1024, "warm-boto3-")

async def workload():
    return await asyncio.to_thread(run, COUNT, SIZE, "boto3-")
"""

WORKLOADS = {"stream": _STREAM, "s3-to-s3": _S3_TO_S3, "boto3-stream": _BOTO3_STREAM}


def measure(
    workload: str, endpoint: str, budget: int, count: int, size: int, env: dict[str, str]
) -> dict[str, Any]:
    """One measured run in a fresh process: its growth, baseline and seconds."""
    script = _HARNESS.format(src=BUCKET_SRC, dst=BUCKET_DST, body=WORKLOADS[workload])
    done = subprocess.run(
        [sys.executable, "-c", script, endpoint, str(budget), str(count), str(size)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{workload} x{count} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def plan(counts: list[int], budgets: list[int]) -> list[tuple[str, int, int]]:
    """Every (workload, budget, count) measured in a round; boto3 at the largest count."""
    cases = [(w, b, c) for b in budgets for w in ("stream", "s3-to-s3") for c in counts]
    return [*cases, ("boto3-stream", 0, max(counts))]


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    size = args.object_mib * MIB
    counts, budgets = args.counts, [b * MIB for b in args.budgets_mib]
    cases = plan(counts, budgets)
    samples: dict[str, list[dict[str, Any]]] = {}
    with moto_server() as server:
        s3 = boto3_client(server.endpoint_url, max_pool_connections=32)
        for bucket in (BUCKET_SRC, BUCKET_DST):
            s3.create_bucket(Bucket=bucket)
        data = os.urandom(size)
        for i in range(max(counts)):
            s3.put_object(Bucket=BUCKET_SRC, Key=f"o{i}", Body=data)
        s3.put_object(Bucket=BUCKET_SRC, Key="warm", Body=b"w" * 1000)
        del data
        env = client_environment(server.endpoint_url)
        for round_ in range(args.rounds):
            # The order rotates from round to round, so a noisy moment hits them all.
            shift = round_ % len(cases)
            for workload, budget, count in cases[shift:] + cases[:shift]:
                sample = measure(workload, server.endpoint_url, budget, count, size, env)
                key = f"{workload}/{budget}/{count}"
                samples.setdefault(key, []).append(sample)
                if not args.quiet:
                    print(
                        f"round {round_ + 1}: {workload:12} x{count:<2} budget "
                        f"{budget // MIB or '-':>3} MiB: +{sample['growth'] / MIB:.1f} MiB "
                        f"in {sample['seconds']:.1f} s",
                        flush=True,
                    )
        s3.close()
    results = {}
    for key, runs in samples.items():
        growths = [r["growth"] for r in runs]
        results[key] = {
            "median_growth": statistics.median(growths),
            "max_growth": max(growths),
            "growths": growths,
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "baselines": [r["baseline"] for r in runs],
        }
    return results


def _mib(n: float) -> str:
    return f"{n / MIB:.1f}"


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str] | None]]:
    params, results = report["parameters"], report["results"]
    counts, budgets = params["counts"], params["budgets"]
    header = ["workload", "budget", *(f"x{c} MiB" for c in counts), "budget + slack"]
    rows: list[list[str] | None] = []
    for workload in ("stream", "s3-to-s3"):
        rows.append(None)
        for budget in budgets:
            cells = [_mib(results[f"{workload}/{budget}/{c}"]["median_growth"]) for c in counts]
            rows.append(
                [workload, f"{budget // MIB} MiB", *cells, f"{(budget + params['slack']) // MIB}"]
            )
    boto3 = results.get(f"boto3-stream/0/{max(counts)}")
    if boto3 is not None:
        rows.append(None)
        cells = ["" for _ in counts[:-1]] + [_mib(boto3["median_growth"])]
        rows.append(["boto3 stream", "none", *cells, ""])
    return header, rows


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    title = (
        f"Peak RSS growth of a fresh process, median of {params['rounds']} round(s): "
        f"N concurrent copies of {params['object_bytes'] // MIB} MiB under one budget"
    )
    header, rows = table_rows(report)
    print_table(title, header, rows, left=2, width=120)
    print(machine_line(report))
    before, after = report["machine"]["loadavg_before"], report["machine"]["loadavg_after"]
    print("load average before", " ".join(f"{x:.2f}" for x in before), end=", ")
    print("after", " ".join(f"{x:.2f}" for x in after))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--object-mib", type=int, default=24, help="MiB per object (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--counts", type=int, nargs="+", default=[1, 4, 16], help="concurrent copies"
    )
    parser.add_argument(
        "--budgets-mib", type=int, nargs="+", default=[16, 64], help="shared budgets, MiB"
    )
    add_run_options(parser, "memory", "2 MiB, x1 and x4, 1 round, no JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.object_mib, args.rounds, args.counts, args.budgets_mib = 2, 1, [1, 4], [16]
    if args.object_mib < 1 or args.rounds < 1 or min(args.counts) < 1:
        parser.error("--object-mib, --rounds and --counts must be at least 1")
    if min(args.budgets_mib) < 8:
        parser.error("--budgets-mib must hold at least one 8 MiB part")
    args.counts = sorted(set(args.counts))
    resolve_output(args, "memory")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, head = report_head("memory")
    results = run_all(args)
    report = {
        **head,
        "versions": versions("aqueuepipe", "aiobotocore", "aiohttp", "boto3", "moto"),
        "parameters": {
            "object_bytes": args.object_mib * MIB,
            "counts": args.counts,
            "budgets": [b * MIB for b in args.budgets_mib],
            "rounds": args.rounds,
            "smoke": args.smoke,
            "slack": 20 * MIB,
            "statistic": "median",
            "measure": "VmHWM - VmRSS after a warm-up, in a fresh process per run",
        },
        "results": results,
    }
    return finish_report(report, started, args.output, print_report)


if __name__ == "__main__":
    sys.exit(main())
