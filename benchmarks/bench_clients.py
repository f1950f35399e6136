"""What one SSL context per process saves a copy that makes its own client.

Run::

    python benchmarks/bench_clients.py              # 5 rounds of 10 copies each way
    python benchmarks/bench_clients.py --rounds 9

aiobotocore builds an SSLContext and loads the whole CA bundle for every client
it makes, even for an ``http://`` endpoint that never uses it.
``aqueuepipe.s3.create_client`` shares one per process through aiobotocore's
``_build_ssl_contexts`` hook (a private one: see ``aqueuepipe/s3/_client.py``).
This measures what that is worth where it matters most: ``copy()`` of a 64 KiB
file to a moto server (``aqueuepipe.testing.moto_server``) with no client passed
in, so each call makes and closes its own, as a service calling ``copy()`` per
request does.  Rounds alternate shared and per-client contexts in one process;
medians of wall time and of this process's CPU time per copy are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from _machine import parse_with_smoke


async def _run(rounds: int, copies: int) -> dict[bool, list[tuple[float, float]]]:
    import aqueuepipe.s3._client as client_module
    from aqueuepipe import copy
    from aqueuepipe.s3 import create_client
    from aqueuepipe.testing import moto_server

    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with moto_server() as server, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small"
        path.write_bytes(os.urandom(64 * 1024))
        async with create_client(endpoint_url=server.endpoint_url) as client:
            await client.create_bucket(Bucket="bench-clients")
        shared = client_module._SHARE_SSL
        try:
            for _ in range(rounds):
                for share in (True, False):
                    client_module._SHARE_SSL = share
                    started, cpu = time.perf_counter(), time.process_time()
                    for n in range(copies):
                        await copy(
                            str(path), f"s3://bench-clients/k{n}", endpoint_url=server.endpoint_url
                        )
                    results[share].append(
                        (
                            (time.perf_counter() - started) / copies,
                            (time.process_time() - cpu) / copies,
                        )
                    )
        finally:
            client_module._SHARE_SSL = shared
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=10)
    args = parse_with_smoke(parser, argv, "1 round of 2 copies", rounds=1, copies=2)
    results = asyncio.run(_run(args.rounds, args.copies))
    medians = {
        share: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for share, runs in results.items()
    }
    for share, (wall, cpu) in medians.items():
        name = "one SSL context per process" if share else "one SSL context per client"
        print(f"{name:30} {wall * 1000:6.1f} ms wall  {cpu * 1000:6.1f} ms CPU per copy")
    ratio = medians[False][0] / medians[True][0]
    print(f"per-client contexts make a copy {ratio:.2f}x as long")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
