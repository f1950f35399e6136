"""Scale-out: aqueuepipe.distributed.copy_prefix on a Dask LocalCluster of 1 and 2 workers.

Run::

    python benchmarks/bench_distributed.py            # 2,000 small, 8 x 32 MiB, 100,000 keys
    python benchmarks/bench_distributed.py --rounds 3
    python benchmarks/bench_distributed.py --smoke    # tiny, one round, no JSON (CI)

Needs ``pip install -e '.[bench,dask]'``.  Two measurements:

``throughput``
    A moto server process (``python -m moto.server`` on 127.0.0.1) holds a
    prefix of small objects (``--small`` of 10 KB) and one of large objects
    (``--large`` of 32 MiB, uploaded in 8 MiB parts as the AWS CLI does).
    Each prefix is copied to a fresh bucket with ``copy_prefix`` on a
    ``LocalCluster`` of 1 and then 2 worker processes (2 threads each, 256 MiB
    per worker, 16 copies per shard, shards of 250 small or 2 large objects), and, for
    reference, with ``copy_many`` in this process (one event loop, no Dask).
    The cluster is started before the clock starts.  Reported: objects/s and
    MB/s (10^6 bytes/s) over the whole ``copy_prefix`` call, the moto server's
    CPU share during it (1.0 = one core busy: the server is the bottleneck),
    and the largest per-worker budget peak.  Every copy is checked: all objects
    copied, none failed, the destination's ETags equal the source's.
``driver memory``
    A moto server process started with ``--keys`` (100,000) empty objects
    already in a source and a destination bucket (put straight into moto's
    backend before it serves, which takes seconds instead of the minutes
    100,000 PutObjects would).  A fresh driver process connects to a
    two-worker cluster and runs ``copy_prefix`` over them with a manifest:
    the whole listing flows through the driver, 100 shards of 1,000 keys go to
    the workers, every object is found at the destination and skipped, and
    100,000 manifest lines are written.  The driver resets its peak RSS after
    a warm-up run (``5`` into ``/proc/self/clear_refs``) and reports VmHWM
    growth.  For comparison it also lists the same prefix into one Python list
    of (key, size, ETag), which is what holding the listing would cost.  Both
    at 10,000 keys as well, to show that the driver's memory does not grow with
    the number of keys.

Results go to ``benchmarks/results/distributed.json`` (``--output``);
``--smoke`` writes no file unless ``--output`` is given.  On a machine with few
cores the workers, the driver and the moto server share them: read the server's
CPU share before reading anything into the 1- vs 2-worker ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _machine import (
    add_run_options,
    cpu_seconds,
    finish_report,
    machine_line,
    print_table,
    report_head,
    reset_peak,
    resolve_output,
    status_kib,
    versions,
)
from _server import HOST, MotoServer, client_environment, moto_server

from aqueuepipe.checksums import etag_evidence

KIB = 1024
MIB = 1024 * KIB
MB = 1_000_000

SMALL_SIZE = 10_000
LARGE_SIZE = 32 * MIB
SOURCE_PART_SIZE = 8 * MIB
WORKER_LIMIT = 256 * MIB
THREADS_PER_WORKER = 2
# Objects per shard: 8 shards of small objects, 4 of large ones (2 each), so that
# both workers of the 2-worker cluster get work in both cases.
SHARD_OBJECTS = {"small/": 250, "large/": 2}
LISTING_SHARD_OBJECTS = 1000

# What a moto server process runs before it serves (``moto_server``'s ``setup``):
# ``count`` empty objects put straight into its backend, in two buckets.
_PREPOPULATE = """
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
for bucket in ("listing-src", "listing-dst"):
    backend.create_bucket(bucket, "us-east-1")
    for prefix, n in (("warm/", 10), ("keys/", count)):
        for i in range(n):
            backend.put_object(bucket, f"{prefix}{i:07}", b"", disable_notification=True)
"""
VERSIONS = ("aqueuepipe", "aiobotocore", "botocore", "aiohttp", "dask", "distributed", "moto")


# -- throughput ---------------------------------------------------------------------


def listing(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"][len(prefix) :]] = (entry["Size"], entry["ETag"])
    return found


def make_source(s3: Any, small: int, large: int) -> str:
    bucket = f"bench-src-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(SMALL_SIZE)
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(Bucket=bucket, Key=f"small/{i:06}", Body=body),
                range(small),
            )
        )
    for i in range(2 * THREADS_PER_WORKER):
        s3.put_object(Bucket=bucket, Key=f"warm/{i}", Body=b"warm")
    data = os.urandom(LARGE_SIZE)
    for i in range(large):
        key = f"large/{i:03}"
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = []
        for number, offset in enumerate(range(0, LARGE_SIZE, SOURCE_PART_SIZE), start=1):
            response = s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data[offset : offset + SOURCE_PART_SIZE],
            )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    return bucket


def local_cluster(workers: int, env: dict[str, str]) -> Any:
    """A LocalCluster of ``workers`` processes (its dashboard off the default port)."""
    import distributed

    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=THREADS_PER_WORKER,
        processes=True,
        host=HOST,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": f"{HOST}:0"},
        env=env,
    )


def copy_with_dask(
    server: MotoServer, s3: Any, src: str, prefix: str, workers: int, env: dict[str, str]
) -> dict[str, Any]:
    import distributed

    from aqueuepipe.distributed import copy_prefix

    dst = f"bench-dst-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=dst)
    options: dict[str, Any] = {
        "per_worker_limit": WORKER_LIMIT,
        "endpoint_url": server.endpoint_url,
        "max_shards_in_flight": 2 * workers * THREADS_PER_WORKER,
    }
    with (
        local_cluster(workers, env) as cluster,
        distributed.Client(cluster) as client,
    ):
        # Warm-up on every worker (imports, botocore's service models): a run
        # copies at scale, so a worker's first-second costs are not what it measures.
        warm = f"s3://{src}/warm/"
        copy_prefix(warm, f"s3://{dst}/warm/", client=client, shard_objects=1, **options)
        workers_before = sum(client.run(cpu_seconds).values())
        driver_before = cpu_seconds()
        cpu_before = server.cpu_seconds()
        summary = copy_prefix(
            f"s3://{src}/{prefix}",
            f"s3://{dst}/{prefix}",
            client=client,
            shard_objects=SHARD_OBJECTS[prefix],
            **options,
        )
        cpu_after = server.cpu_seconds()
        driver_cpu = cpu_seconds() - driver_before
        workers_cpu = sum(client.run(cpu_seconds).values()) - workers_before
    check(s3, src, dst, prefix, summary.objects, summary.failures)
    return {
        "seconds": summary.seconds,
        "objects": summary.objects,
        "bytes": summary.bytes,
        "shards": summary.shards,
        "server_cpu_share": _share(cpu_before, cpu_after, summary.seconds),
        "client_cpu_seconds": workers_cpu,
        "driver_cpu_seconds": driver_cpu,
        "worker_peak_max": max(summary.worker_peaks.values(), default=0),
        "worker_peaks": summary.worker_peaks,
    }


def copy_in_process(server: MotoServer, s3: Any, src: str, prefix: str) -> dict[str, Any]:
    from aqueuepipe import copy_many

    dst = f"bench-dst-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=dst)

    async def run(prefix: str) -> tuple[int, int, int]:
        copied = failed = size = 0
        results = copy_many(
            [(f"s3://{src}/{prefix}", f"s3://{dst}/{prefix}")],
            recursive=True,
            limit=WORKER_LIMIT,
            endpoint_url=server.endpoint_url,
        )
        async with contextlib.aclosing(results) as iterator:
            async for result in iterator:
                if result.ok:
                    copied += 1
                    size += result.size
                else:
                    failed += 1
        return copied, failed, size

    asyncio.run(run("warm/"))  # as the workers are warmed up
    cpu_before = server.cpu_seconds()
    client_before = cpu_seconds()
    started = time.perf_counter()
    copied, failed, size = asyncio.run(run(prefix))
    seconds = time.perf_counter() - started
    client_cpu = cpu_seconds() - client_before
    cpu_after = server.cpu_seconds()
    check(s3, src, dst, prefix, copied, failed, same_etags=False)
    return {
        "seconds": seconds,
        "objects": copied,
        "bytes": size,
        "server_cpu_share": _share(cpu_before, cpu_after, seconds),
        "client_cpu_seconds": client_cpu,
    }


def _share(before: float | None, after: float | None, seconds: float) -> float | None:
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds


def _same_etags(copy: dict[str, Any], source: dict[str, Any]) -> bool:
    """The same keys, each copy's ETag proving its source's bytes: equal, or (a small
    object sent as one part to a server that does not check digests) the MD5 of
    the source's MD5 with ``-1``."""
    if copy.keys() != source.keys():
        return False
    for key, (_, etag) in copy.items():
        theirs, ours = etag_evidence({"ETag": source[key][1]}), etag_evidence({"ETag": etag})
        if theirs is None or ours is None or not theirs.same_bytes(ours):
            return False
    return True


def check(
    s3: Any,
    src: str,
    dst: str,
    prefix: str,
    copied: int,
    failed: int,
    *,
    same_etags: bool = True,
) -> None:
    source, copy = listing(s3, src, prefix), listing(s3, dst, prefix)
    if failed or copied != len(source):
        raise RuntimeError(f"{failed} failed, {copied} of {len(source)} copied")
    if same_etags and not _same_etags(copy, source):
        raise RuntimeError("the destination differs from the source")
    if {k: v[0] for k, v in copy.items()} != {k: v[0] for k, v in source.items()}:
        raise RuntimeError("sizes differ")


def run_throughput(
    server: MotoServer, small: int, large: int, rounds: int, quiet: bool
) -> dict[str, Any]:
    env = client_environment(server.endpoint_url)
    s3 = server.boto3_client()
    try:
        src = make_source(s3, small, large)
        raw: dict[str, list[dict[str, Any]]] = {}
        contenders = ("1 worker", "2 workers", "copy_many, no Dask")
        for round_number in range(rounds):
            order = contenders[round_number % 3 :] + contenders[: round_number % 3]
            for prefix in ("small/", "large/"):
                for name in order:
                    if name == "copy_many, no Dask":
                        result = copy_in_process(server, s3, src, prefix)
                    else:
                        result = copy_with_dask(server, s3, src, prefix, int(name[0]), env)
                    raw.setdefault(f"{prefix[:-1]} / {name}", []).append(result)
                    if not quiet:
                        print(
                            f"  round {round_number + 1}: {prefix:7} {name:20} "
                            f"{result['seconds']:6.2f} s",
                            flush=True,
                        )
    finally:
        s3.close()
    summary = {}
    for label, runs in raw.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        objects, size = runs[0]["objects"], runs[0]["bytes"]
        shares = [r["server_cpu_share"] for r in runs if r["server_cpu_share"] is not None]
        summary[label] = {
            "median_seconds": seconds,
            "objects": objects,
            "bytes": size,
            "objects_per_s": objects / seconds,
            "mb_per_s": size / seconds / MB,
            "server_cpu_share": statistics.median(shares) if shares else None,
            # The copying processes' CPU (the workers', or this one's for copy_many).
            "client_cpu_ms_per_object": statistics.median(
                r["client_cpu_seconds"] * 1000 / objects for r in runs
            ),
            "client_cpu_s_per_gib": statistics.median(
                r["client_cpu_seconds"] / (size / 1024**3) for r in runs
            ),
            **(
                {"worker_peak_max": max(r["worker_peak_max"] for r in runs)}
                if "worker_peak_max" in runs[0]
                else {}
            ),
            "runs": runs,
        }
    return summary


# -- driver memory ------------------------------------------------------------------


def prepopulated_server(keys: int) -> contextlib.AbstractContextManager[MotoServer]:
    """A moto server process with ``keys`` empty objects under keys/ in two buckets."""
    return moto_server(f"count = {keys}\n{_PREPOPULATE}", startup_timeout=120 + keys / 1000)


def driver_main(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: copy_prefix over the pre-filled keys; peak RSS growth."""
    import distributed

    from aqueuepipe.distributed import copy_prefix
    from aqueuepipe.s3 import create_client

    endpoint = spec["endpoint_url"]
    with distributed.Client(spec["scheduler"]) as client:
        options = {
            "client": client,
            "shard_objects": LISTING_SHARD_OBJECTS,
            "endpoint_url": endpoint,
            "skip_existing": True,  # the listing benchmark: every key is there already
        }
        with tempfile.TemporaryDirectory() as tmp:
            # Warm-up: imports, service models, a manifest, engines on the workers.
            copy_prefix(
                "s3://listing-src/warm/",
                "s3://listing-dst/warm/",
                manifest=Path(tmp, "warm.jsonl"),
                **options,
            )
            before = reset_peak()["VmRSS"]
            started = time.perf_counter()
            summary = copy_prefix(
                "s3://listing-src/keys/",
                "s3://listing-dst/keys/",
                manifest=Path(tmp, "keys.jsonl"),
                **options,
            )
            seconds = time.perf_counter() - started
            hwm = status_kib("VmHWM")["VmHWM"]
            with Path(tmp, "keys.jsonl").open(encoding="utf-8") as lines:
                manifest_lines = sum(1 for _ in lines)

    async def hold_listing() -> int:
        """Peak RSS growth while the whole listing is kept (warmed up on warm/)."""
        async with create_client(endpoint_url=endpoint) as s3:
            paginator = s3.get_paginator("list_objects_v2")
            held: list[tuple[str, int, str]] = []
            before = 0
            for prefix in ("warm/", "keys/"):
                if prefix == "keys/":
                    held.clear()
                    before = reset_peak()["VmRSS"]
                async for page in paginator.paginate(Bucket="listing-src", Prefix=prefix):
                    held.extend((e["Key"], e["Size"], e["ETag"]) for e in page.get("Contents", []))
            return status_kib("VmHWM")["VmHWM"] - before

    held_kib = asyncio.run(hold_listing())
    return {
        "keys": spec["keys"],
        "seconds": seconds,
        "keys_per_s": spec["keys"] / seconds,
        "skipped": summary.skipped,
        "objects": summary.objects,
        "failures": summary.failures,
        "shards": summary.shards,
        "manifest_lines": manifest_lines,
        "rss_before_kib": before,
        "hwm_kib": hwm,
        "driver_growth_kib": hwm - before,
        "held_listing_growth_kib": held_kib,
    }


def run_driver_memory(keys: int, quiet: bool) -> dict[str, Any]:

    with prepopulated_server(keys) as server:
        env = client_environment(server.endpoint_url)
        with local_cluster(2, env) as cluster:
            spec = {
                "scheduler": cluster.scheduler_address,
                "endpoint_url": server.endpoint_url,
                "keys": keys,
            }
            completed = subprocess.run(
                [sys.executable, __file__, "--driver", json.dumps(spec)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
    if completed.returncode != 0:
        raise RuntimeError(f"driver failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    if result["skipped"] != keys or result["manifest_lines"] != keys:
        raise RuntimeError(f"the driver did not see every key: {result}")
    if not quiet:
        print(
            f"  driver, {keys:,} keys: {result['seconds']:.1f} s, "
            f"+{result['driver_growth_kib'] / 1024:.1f} MiB",
            flush=True,
        )
    return result


# -- report -------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    throughput = []
    for label, r in report["throughput"].items():
        share = r["server_cpu_share"]
        throughput.append(
            [
                label,
                f"{r['objects']}",
                f"{r['bytes'] / MB:.1f}",
                f"{r['median_seconds']:.2f}",
                f"{r['objects_per_s']:.0f}",
                f"{r['mb_per_s']:.1f}",
                "" if share is None else f"{share:.2f}",
                f"{r['client_cpu_ms_per_object']:.2f}",
                f"{r['client_cpu_s_per_gib']:.1f}",
                f"{r['worker_peak_max'] / MIB:.2f} MiB" if "worker_peak_max" in r else "",
            ]
        )
    print_table(
        "Throughput (median of rounds; server CPU = moto's CPU seconds per second; "
        "client CPU = the copying processes')",
        THROUGHPUT_HEADER,
        throughput,
        left=1,
        width=140,
    )
    memory = [
        [
            f"{r['keys']:,}",
            f"{r['seconds']:.1f}",
            f"{r['keys_per_s']:.0f}",
            f"{r['driver_growth_kib'] / 1024:.1f} MiB",
            f"{r['held_listing_growth_kib'] / 1024:.1f} MiB",
        ]
        for r in report["driver_memory"]
    ]
    print_table(
        "Driver memory while copy_prefix lists, shards and writes the manifest (all skipped)",
        MEMORY_HEADER,
        memory,
    )
    print(machine_line(report))


THROUGHPUT_HEADER = [
    "prefix / run",
    "objects",
    "MB",
    "s",
    "obj/s",
    "MB/s",
    "server CPU",
    "ms CPU/obj",
    "s CPU/GiB",
    "peak/worker",
]
MEMORY_HEADER = ["keys", "s", "keys/s", "driver peak growth", "a held listing"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="small objects (10 KB)")
    parser.add_argument("--large", type=int, default=8, help="large objects (32 MiB)")
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    add_run_options(parser, "distributed", "tiny sizes, one round, no JSON")
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.small, args.large, args.keys, args.rounds = 100, 1, [2000], 1
    resolve_output(args, "distributed")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if importlib.util.find_spec("distributed") is None:
        # The bench session installs .[bench]; this one needs .[bench,dask] too.
        print("bench_distributed.py: skipped, Dask is not installed (pip install '.[dask]')")
        return 0
    if args.driver is not None:
        print(json.dumps(driver_main(json.loads(args.driver))))
        return 0
    # This process is the driver: fake credentials, and no real AWS settings at all.
    environment = client_environment(None)
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(environment)
    started, head = report_head("distributed")
    with moto_server() as server:
        throughput = run_throughput(server, args.small, args.large, args.rounds, args.quiet)
    memory = [run_driver_memory(keys, args.quiet) for keys in args.keys]
    report = {
        **head,
        "versions": versions(*VERSIONS),
        "parameters": {
            "small": [args.small, SMALL_SIZE],
            "large": [args.large, LARGE_SIZE],
            "source_part_size": SOURCE_PART_SIZE,
            "worker_limit": WORKER_LIMIT,
            "threads_per_worker": THREADS_PER_WORKER,
            "shard_objects": SHARD_OBJECTS,
            "listing_shard_objects": LISTING_SHARD_OBJECTS,
            "rounds": args.rounds,
            "smoke": args.smoke,
            "server": "moto (python -m moto.server) on 127.0.0.1, one process",
            "mb": MB,
            "statistic": "median",
        },
        "throughput": throughput,
        "driver_memory": memory,
    }
    return finish_report(report, started, args.output, print_report)


if __name__ == "__main__":
    sys.exit(main())
