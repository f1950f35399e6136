"""Client CPU of reading a GetObject body into part buffers, by read size.

Run::

    python benchmarks/bench_reads.py                 # 200 MiB, 3 rounds
    python benchmarks/bench_reads.py --size-mib 100 --rounds 5

Issue 19's profile suggested 1 MiB reads (or receiving straight into the part
buffer) instead of aqueuepipe's 256 KiB.  This reads one object from a moto server
(``aqueuepipe.testing.moto_server``) into a reused 8 MiB buffer, the way a copy
fills its parts, four ways, rounds interleaved, and prints the client CPU
(``getrusage``, all threads) per GiB, medians:

``body 256 KiB`` / ``body 1 MiB``
    aiobotocore's ``StreamingBody.readinto`` of slices of that size (what
    ``ObjectStream.readinto`` does, at ``READ_SIZE`` and at 1 MiB);
``aiohttp 256 KiB`` / ``aiohttp 1 MiB``
    aiohttp's ``StreamReader.read`` of that size, copied into the buffer: the
    nearest to receiving into the part buffer that aiohttp's public API allows
    (one copy fewer than aiobotocore's ``readinto``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

from _machine import parse_with_smoke

BUFFER = 8 * 1024 * 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _read_body(body: Any, read_size: int) -> int:
    view = memoryview(bytearray(BUFFER))
    total = 0
    while True:
        filled = 0
        while filled < BUFFER:
            n: int = await body.readinto(view[filled : filled + read_size])
            if not n:
                break
            filled += n
        total += filled
        if filled < BUFFER:
            return total


async def _read_aiohttp(body: Any, read_size: int) -> int:
    content = body._raw_stream.content  # aiohttp's StreamReader under the body
    view = memoryview(bytearray(BUFFER))
    total = 0
    while True:
        filled = 0
        while filled < BUFFER:
            chunk: bytes = await content.read(min(read_size, BUFFER - filled))
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        total += filled
        if filled < BUFFER:
            return total


async def _run(size: int, rounds: int) -> dict[str, list[float]]:
    from aqueuepipe.s3 import create_client
    from aqueuepipe.testing import moto_server

    ways: dict[str, tuple[Callable[[Any, int], Awaitable[int]], int]] = {
        "body 256 KiB": (_read_body, 256 * 1024),
        "body 1 MiB": (_read_body, 1024 * 1024),
        "aiohttp 256 KiB": (_read_aiohttp, 256 * 1024),
        "aiohttp 1 MiB": (_read_aiohttp, 1024 * 1024),
    }
    results: dict[str, list[float]] = {name: [] for name in ways}
    with moto_server() as server:
        async with create_client(endpoint_url=server.endpoint_url) as client:
            await client.create_bucket(Bucket="bench-reads")
            await client.put_object(Bucket="bench-reads", Key="k", Body=os.urandom(size))
            for _ in range(rounds):
                for name, (read, read_size) in ways.items():
                    response = await client.get_object(Bucket="bench-reads", Key="k")
                    started = _cpu()
                    got = await read(response["Body"], read_size)
                    results[name].append((_cpu() - started) / (size / (1 << 30)))
                    if got != size:
                        raise AssertionError(f"{name}: read {got} of {size} bytes")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parse_with_smoke(parser, argv, "8 MiB, 1 round", size_mib=8, rounds=1)
    results = asyncio.run(_run(args.size_mib * 1024 * 1024, args.rounds))
    for name, figures in results.items():
        shown = ", ".join(f"{x:.2f}" for x in sorted(figures))
        print(f"{name:16} {statistics.median(figures):.2f} s/GiB  ({shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
