"""How closely ``max_rate`` holds a copy to its cap, counted outside the library.

Run::

    python benchmarks/bench_rate.py                   # 200 MiB at 20 MB/s, each way
    python benchmarks/bench_rate.py --size-mib 100 --rate-mb 10

Issue 21's target: a 200 MiB copy capped at 20 MB/s moves within +-10 % of the cap,
averaged over 10 s.  A moto server (``aqueuepipe.testing.moto_server``) sits behind a
TCP proxy on 127.0.0.1 that counts the bytes passing each way and when they pass;
the copy talks to the proxy.  For an upload (a local file to S3) the count is what
the client sent, for a download (S3 to a local file) what it received, each sampled
every 0.5 s.  Printed: the average over the whole copy (its requests that move no
body included), and the lowest and highest average over any 10 s window while the
bytes flow, each as a ratio to the cap.  What the library
counts for itself is not used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from _machine import parse_with_smoke

_SAMPLE = 0.5
_WINDOW = 10.0


class CountingProxy:
    """Forwards TCP connections to ``target``, counting bytes each way over time."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.sent = 0  # client -> server
        self.received = 0  # server -> client
        self._server: asyncio.Server | None = None

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(256 * 1024):
                if upstream:
                    self.sent += len(data)
                else:
                    self.received += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        await asyncio.gather(
            self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            yield f"http://127.0.0.1:{port}"


async def _sampled(proxy: CountingProxy, upstream: bool, done: asyncio.Event) -> list[int]:
    samples: list[int] = []
    while not done.is_set():
        samples.append(proxy.sent if upstream else proxy.received)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), _SAMPLE)
    samples.append(proxy.sent if upstream else proxy.received)
    return samples


def _windows(samples: list[int], rate: float) -> tuple[float, float]:
    """The lowest and highest 10 s average while bytes flow: from the first sample
    that moved to the last (CreateMultipartUpload before, CompleteMultipartUpload
    after, move none: the server's time, not the cap's)."""
    moving = [i for i in range(1, len(samples)) if samples[i] != samples[i - 1]]
    if moving:
        samples = samples[moving[0] - 1 : moving[-1] + 1]
    per = int(_WINDOW / _SAMPLE)
    averages = [(samples[i + per] - samples[i]) / _WINDOW / rate for i in range(len(samples) - per)]
    return (min(averages), max(averages)) if averages else (float("nan"), float("nan"))


async def _run(size: int, rate: int) -> None:
    from aqueuepipe import copy
    from aqueuepipe.s3 import create_client
    from aqueuepipe.testing import moto_server

    with moto_server() as server, tempfile.TemporaryDirectory() as folder:
        target = urlsplit(server.endpoint_url)
        proxy = CountingProxy(target.hostname or "127.0.0.1", target.port or 80)
        source = Path(folder) / "source"
        source.write_bytes(os.urandom(size))
        async with create_client(endpoint_url=server.endpoint_url) as client:
            await client.create_bucket(Bucket="bench-rate")
        async with proxy.running() as endpoint:
            for name, src, dst, upstream in (
                ("upload", str(source), "s3://bench-rate/object", True),
                ("download", "s3://bench-rate/object", str(Path(folder) / "copy"), False),
            ):
                done = asyncio.Event()
                sampler = asyncio.create_task(_sampled(proxy, upstream, done))
                started = time.perf_counter()
                await copy(src, dst, endpoint_url=endpoint, max_rate=rate)
                seconds = time.perf_counter() - started
                done.set()
                samples = await sampler
                moved = samples[-1] - samples[0]
                low, high = _windows(samples, rate)
                print(
                    f"{name:8} {moved / 2**20:7.1f} MiB in {seconds:5.1f} s: "
                    f"{moved / seconds / rate:.3f}x the cap on average, "
                    f"{low:.3f}x to {high:.3f}x over any {_WINDOW:g} s"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument(
        "--rate-mb", type=float, default=20.0, help="the cap, in MB (10**6) a second"
    )
    args = parse_with_smoke(parser, argv, "4 MiB at 8 MB/s", size_mib=4, rate_mb=8.0)
    asyncio.run(_run(args.size_mib * 2**20, int(args.rate_mb * 1_000_000)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
