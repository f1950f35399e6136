"""Throughput of AsyncPipe next to the stock ways of moving bytes between coroutines.

Run::

    python benchmarks/bench_pipe.py                    # 1 GiB, 3 rounds
    python benchmarks/bench_pipe.py --total-mib 256 --rounds 5
    python benchmarks/bench_pipe.py --smoke            # 64 MiB, 1 round (CI)

One producer coroutine hands ``--total-mib`` MiB to one consumer coroutine through
each contender, at 4 KiB, 64 KiB and 1 MiB chunks, and the MB/s (10**6 bytes per
second) of each run is recorded:

``AsyncPipe``
    ``AsyncPipe(limit=30_000_000)``; ``await pipe.write(payload)``, ``async for``.
``asyncio.Queue``
    ``asyncio.Queue(maxsize=N)`` with ``N = max(1, 30_000_000 // chunk)`` items, so
    it holds about as many bytes as the pipe; ``put``/``get`` and a ``None`` sentinel.
``anyio stream``
    ``anyio.create_memory_object_stream(max_buffer_size=N)`` (same ``N``), run on
    the asyncio loop; ``send`` and ``async for``.
``StreamReader``
    ``asyncio.StreamReader`` fed with ``feed_data`` and read with ``read(chunk)``.
    Backpressure uses StreamReader's own flow control, the one a socket transport
    gets: the reader is given a stand-in transport whose ``pause_reading`` and
    ``resume_reading`` clear and set an event.  The reader pauses it once more
    than ``2 * limit`` bytes are buffered and resumes it once it is drained to
    ``limit``; the producer awaits the event only while paused.  ``limit`` is
    15 MB so that the pause point is the same 30 MB the other contenders hold
    (``limit=30_000_000`` would let it buffer 60 MB).  This costs the producer
    nothing per chunk, like the other contenders' non-blocking fast paths;
    yielding with ``asyncio.sleep(0)`` after every chunk instead would charge it an
    event-loop round trip per chunk that nobody else pays.

The payload is one preallocated ``bytes`` object written again and again, so the
numbers are about the transport, not about allocating data.  All contenders run on
the stock asyncio event loop (no uvloop), each run in a fresh ``asyncio.run``.
Rounds are interleaved: every round runs every chunk size and every contender once
(the contender order rotating from round to round), so noise on a shared machine
hits all of them alike.  The median of the rounds is reported, with the ratios of
AsyncPipe to the queue and to the anyio stream, and AsyncPipe's ``peak_buffered``
to show that its limit held.

Each run is also timed in CPU seconds of the process (``time.process_time``, the
whole ``asyncio.run``): every contender runs on one thread, so on a shared
machine that counts its own work and not the time other tenants took the CPU
away from it.  The report gives the CPU-time ratios beside the wall-clock ones;
the targets are judged on wall-clock, as before.

Results go to ``benchmarks/results/pipe.json`` (``--output``); a ``--smoke`` run
writes no file unless ``--output`` is given, so it never replaces real results.
Only ratios from one run mean anything: absolute numbers depend on the machine and
on whatever else it is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from _machine import (
    add_run_options,
    finish_report,
    machine_line,
    print_table,
    report_head,
    resolve_output,
    versions,
)

import aqueuepipe
from aqueuepipe import AsyncPipe

KIB = 1024
MIB = 1024 * KIB
MB = 1_000_000

BUFFER_BYTES = 30_000_000
CHUNK_SIZES = (4 * KIB, 64 * KIB, MIB)

# The targets, checked at 64 KiB chunks: AsyncPipe / contender >= ratio.
TARGET_CHUNK = 64 * KIB
TARGETS = {"queue": 0.8, "anyio": 1.0}


@dataclass(frozen=True, slots=True)
class Run:
    """One producer-to-consumer transfer."""

    seconds: float
    peak_buffered: int | None  # measured high-water mark, where the contender exposes it
    cpu_seconds: float = 0.0  # CPU time of the whole asyncio.run, set by measure()


# -- contenders ----------------------------------------------------------------
#
# Each takes the payload (one chunk) and the total to move, and returns a Run.
# They share a shape on purpose: bound methods are looked up once, the producer
# writes ``count`` whole chunks and then a short tail (if the total is not a
# multiple of the chunk), the consumer counts bytes and the count is checked.


def _plan(payload: bytes, total: int) -> tuple[int, bytes]:
    count, rest = divmod(total, len(payload))
    return count, payload[:rest]


async def _timed(produce: Coroutine[Any, Any, None], consume: Coroutine[Any, Any, None]) -> float:
    """Seconds until ``produce`` and ``consume``, run as two tasks, have both returned."""
    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce)
        tg.create_task(consume)
    return time.perf_counter() - start


def _check(received: int, total: int, name: str) -> None:
    if received != total:
        raise RuntimeError(f"{name}: consumer got {received} bytes, expected {total}")


async def run_asyncpipe(payload: bytes, total: int) -> Run:
    count, tail = _plan(payload, total)
    received = 0

    async def produce(pipe: AsyncPipe) -> None:
        write = pipe.write
        for _ in range(count):
            await write(payload)
        if tail:
            await write(tail)
        pipe.close()

    async def consume(pipe: AsyncPipe) -> None:
        nonlocal received
        async for chunk in pipe:
            received += len(chunk)

    start = time.perf_counter()
    async with AsyncPipe(limit=BUFFER_BYTES) as pipe, asyncio.TaskGroup() as tg:
        tg.create_task(produce(pipe))
        tg.create_task(consume(pipe))
    seconds = time.perf_counter() - start
    _check(received, total, "AsyncPipe")
    if pipe.peak_buffered > pipe.limit:
        raise RuntimeError(f"AsyncPipe buffered {pipe.peak_buffered} > limit {pipe.limit}")
    return Run(seconds, pipe.peak_buffered)


async def run_queue(payload: bytes, total: int) -> Run:
    count, tail = _plan(payload, total)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=_items(len(payload)))
    received = 0

    async def produce() -> None:
        put = queue.put
        for _ in range(count):
            await put(payload)
        if tail:
            await put(tail)
        await put(None)

    async def consume() -> None:
        nonlocal received
        get = queue.get
        while (chunk := await get()) is not None:
            received += len(chunk)

    seconds = await _timed(produce(), consume())
    _check(received, total, "asyncio.Queue")
    return Run(seconds, None)


async def run_anyio(payload: bytes, total: int) -> Run:
    count, tail = _plan(payload, total)
    send_stream, receive_stream = anyio.create_memory_object_stream[bytes](
        max_buffer_size=_items(len(payload))
    )
    received = 0

    async def produce() -> None:
        async with send_stream:
            send = send_stream.send
            for _ in range(count):
                await send(payload)
            if tail:
                await send(tail)

    async def consume() -> None:
        nonlocal received
        async with receive_stream:
            async for chunk in receive_stream:
                received += len(chunk)

    seconds = await _timed(produce(), consume())
    _check(received, total, "anyio stream")
    return Run(seconds, None)


class _FlowControl(asyncio.BaseTransport):
    """What StreamReader sees of a socket transport: pause and resume reading."""

    def __init__(self) -> None:
        super().__init__()
        self.resumed = asyncio.Event()
        self.resumed.set()

    def pause_reading(self) -> None:
        self.resumed.clear()

    def resume_reading(self) -> None:
        self.resumed.set()


async def run_streamreader(payload: bytes, total: int) -> Run:
    count, tail = _plan(payload, total)
    chunk_size = len(payload)
    # StreamReader pauses its transport above 2 * limit bytes: 30 MB, as the others.
    reader = asyncio.StreamReader(limit=BUFFER_BYTES // 2)
    flow = _FlowControl()
    reader.set_transport(flow)
    resumed = flow.resumed
    sent = received = peak = 0

    async def produce() -> None:
        nonlocal sent, peak
        feed = reader.feed_data
        for _ in range(count):
            feed(payload)
            sent += chunk_size
            if not resumed.is_set():
                # The buffer only grows until a pause, so its peak is seen here.
                peak = max(peak, sent - received)
                await resumed.wait()
        if tail:
            feed(tail)
            sent += len(tail)
        peak = max(peak, sent - received)
        reader.feed_eof()

    async def consume() -> None:
        nonlocal received
        read = reader.read
        while chunk := await read(chunk_size):
            received += len(chunk)

    seconds = await _timed(produce(), consume())
    _check(received, total, "StreamReader")
    return Run(seconds, peak)


def _items(chunk: int) -> int:
    """Queue and anyio stream capacity, in chunks: about BUFFER_BYTES."""
    return max(1, BUFFER_BYTES // chunk)


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    short: str  # table column
    run: Callable[[bytes, int], Coroutine[Any, Any, Run]]
    capacity: Callable[[int], int]  # bytes it may hold, by chunk size


CONTENDERS = (
    Contender("asyncpipe", "AsyncPipe", "AsyncPipe", run_asyncpipe, lambda chunk: BUFFER_BYTES),
    Contender("queue", "asyncio.Queue", "Queue", run_queue, lambda chunk: _items(chunk) * chunk),
    Contender("anyio", "anyio stream", "anyio", run_anyio, lambda chunk: _items(chunk) * chunk),
    Contender(
        "streamreader",
        "StreamReader",
        "StreamReader",
        run_streamreader,
        # Pauses once above 2 * limit, so it may exceed that by one chunk.
        lambda chunk: BUFFER_BYTES + chunk,
    ),
)


# -- driver -------------------------------------------------------------------


def measure(contender: Contender, chunk: int, total: int) -> Run:
    payload = os.urandom(chunk)
    gc.collect()
    cpu = time.process_time()
    run = asyncio.run(contender.run(payload, total))
    return dataclasses.replace(run, cpu_seconds=time.process_time() - cpu)


def run_all(total: int, rounds: int, chunks: tuple[int, ...], *, quiet: bool) -> dict[str, Any]:
    raw: dict[int, dict[str, list[Run]]] = {
        chunk: {c.key: [] for c in CONTENDERS} for chunk in chunks
    }
    for r in range(rounds):
        # Rotate the order so no contender always runs first (cold) or last.
        order = CONTENDERS[r % len(CONTENDERS) :] + CONTENDERS[: r % len(CONTENDERS)]
        for chunk in chunks:
            for contender in order:
                run = measure(contender, chunk, total)
                raw[chunk][contender.key].append(run)
                if not quiet:
                    print(
                        f"  round {r + 1}/{rounds}  {_size(chunk):>7}  {contender.label:<14}"
                        f" {total / run.seconds / MB:9.1f} MB/s  ({run.seconds:.3f} s)",
                        file=sys.stderr,
                        flush=True,
                    )

    results: dict[str, Any] = {}
    for chunk in chunks:
        entry: dict[str, Any] = {}
        for contender in CONTENDERS:
            runs = raw[chunk][contender.key]
            mbps = [total / run.seconds / MB for run in runs]
            cpu_mbps = [total / max(run.cpu_seconds, 1e-9) / MB for run in runs]
            entry[contender.key] = {
                "label": contender.label,
                "seconds": [run.seconds for run in runs],
                "mb_per_s": mbps,
                "median_mb_per_s": statistics.median(mbps),
                "cpu_seconds": [run.cpu_seconds for run in runs],
                "median_cpu_mb_per_s": statistics.median(cpu_mbps),
                "capacity_bytes": contender.capacity(chunk),
                "peak_buffered": [run.peak_buffered for run in runs],
            }
        for ratios, statistic in (
            ("ratios", "median_mb_per_s"),
            ("cpu_ratios", "median_cpu_mb_per_s"),
        ):
            pipe = entry["asyncpipe"][statistic]
            entry[ratios] = {
                f"asyncpipe/{key}": pipe / entry[key][statistic]
                for key in ("queue", "anyio", "streamreader")
            }
        results[str(chunk)] = entry
    return results


def check_targets(results: dict[str, Any]) -> dict[str, Any]:
    entry = results.get(str(TARGET_CHUNK))
    if entry is None:
        return {}
    return {
        f"asyncpipe/{key}": {
            "chunk": TARGET_CHUNK,
            "target": target,
            "ratio": entry["ratios"][f"asyncpipe/{key}"],
            "cpu_ratio": entry["cpu_ratios"][f"asyncpipe/{key}"],
            "met": entry["ratios"][f"asyncpipe/{key}"] >= target,
        }
        for key, target in TARGETS.items()
    }


# -- reporting ------------------------------------------------------------------


def versions_measured() -> dict[str, str]:
    found = versions("aqueuepipe", "anyio")
    # Which tree was measured: an installed copy, or one put first on PYTHONPATH.
    found["aqueuepipe_imported_from"] = str(Path(aqueuepipe.__file__).parent)
    return found


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n // KIB} KiB"


def table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["chunk", *(c.short for c in CONTENDERS)]
    header += ["pipe/queue", "pipe/anyio", "pipe/reader", "pipe/queue cpu", "pipe peak"]
    rows = []
    for chunk_key, entry in results.items():
        peaks = [p for p in entry["asyncpipe"]["peak_buffered"] if p is not None]
        rows.append(
            [
                _size(int(chunk_key)),
                *(f"{entry[c.key]['median_mb_per_s']:.0f}" for c in CONTENDERS),
                f"{entry['ratios']['asyncpipe/queue']:.2f}x",
                f"{entry['ratios']['asyncpipe/anyio']:.2f}x",
                f"{entry['ratios']['asyncpipe/streamreader']:.2f}x",
                f"{entry['cpu_ratios']['asyncpipe/queue']:.2f}x",
                f"{max(peaks) / MB:.1f} MB" if peaks else "-",
            ]
        )
    return header, rows


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    title = (
        f"Pipe throughput: median MB/s of {params['rounds']} round(s), "
        f"{params['total_bytes'] / MIB:.0f} MiB per run, ~{BUFFER_BYTES / MB:.0f} MB buffered"
    )
    header, rows = table_rows(report["results"])
    print_table(title, header, rows, width=120)
    print(machine_line(report))
    for name, target in report["targets"].items():
        verdict = "met" if target["met"] else "MISSED"
        print(
            f"target {name} >= {target['target']:.1f}x at {_size(target['chunk'])}: "
            f"{target['ratio']:.2f}x, {verdict} (by CPU time {target['cpu_ratio']:.2f}x)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--total-mib", type=int, default=1024, help="MiB moved per run (default 1024)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add_run_options(parser, "pipe", "64 MiB, 1 round, no JSON file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.total_mib, args.rounds = 64, 1
    if args.total_mib < 1 or args.rounds < 1:
        parser.error("--total-mib and --rounds must be at least 1")
    resolve_output(args, "pipe")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    total = args.total_mib * MIB
    started, head = report_head("pipe")
    results = run_all(total, args.rounds, CHUNK_SIZES, quiet=args.quiet)
    report = {
        **head,
        "versions": versions_measured(),
        "parameters": {
            "total_bytes": total,
            "total_mib": args.total_mib,
            "rounds": args.rounds,
            "smoke": args.smoke,
            "chunk_sizes": list(CHUNK_SIZES),
            "buffer_bytes": BUFFER_BYTES,
            "queue_items": {str(c): _items(c) for c in CHUNK_SIZES},
            "streamreader_limit": BUFFER_BYTES // 2,
            "mb": MB,
            "order": "interleaved rounds; per round, each chunk size, contenders rotating",
            "statistic": "median",
        },
        "results": results,
        "targets": check_targets(results),
    }
    return finish_report(report, started, args.output, print_report)


if __name__ == "__main__":
    sys.exit(main())
