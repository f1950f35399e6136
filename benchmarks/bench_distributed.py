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
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from _machine import machine_info
from _server import HOST, MotoServer, client_environment, moto_server
from botocore.config import Config

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
RESULTS = Path(__file__).parent / "results" / "distributed.json"

# A moto server with objects put straight into its backend before it serves.
_PREPOPULATED_MAIN = """
import sys
from moto import server
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.s3.models import s3_backends

def send_response(self, code, message=None):
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())

MotoRequestHandler.send_response = send_response
count = int(sys.argv[1])
backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
for bucket in ("listing-src", "listing-dst"):
    backend.create_bucket(bucket, "us-east-1")
    for prefix, n in (("warm/", 10), ("keys/", count)):
        for i in range(n):
            backend.put_object(bucket, f"{prefix}{i:07}", b"", disable_notification=True)
server.main(sys.argv[2:])
"""


def versions() -> dict[str, str]:
    found = {}
    for name in ("aqueuepipe", "aiobotocore", "botocore", "aiohttp", "dask", "distributed", "moto"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# -- throughput ---------------------------------------------------------------------


def s3_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=16),
    )


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
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=THREADS_PER_WORKER,
            processes=True,
            host=HOST,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": f"{HOST}:0"},
            env=env,
        ) as cluster,
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


def cpu_seconds() -> float:
    """User + system CPU of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _share(before: float | None, after: float | None, seconds: float) -> float | None:
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds


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
    if same_etags and copy != source:
        raise RuntimeError("the destination differs from the source")
    if {k: v[0] for k, v in copy.items()} != {k: v[0] for k, v in source.items()}:
        raise RuntimeError("sizes differ")


def run_throughput(
    server: MotoServer, small: int, large: int, rounds: int, quiet: bool
) -> dict[str, Any]:
    env = client_environment(server.endpoint_url)
    s3 = s3_client(server.endpoint_url)
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


@contextlib.contextmanager
def prepopulated_server(keys: int) -> Iterator[MotoServer]:
    """A moto server process with ``keys`` empty objects under keys/ in two buckets."""
    import socket

    from _server import _answers, _stop  # the benchmarks' own helpers

    env = client_environment("")
    del env["AWS_ENDPOINT_URL"]
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _PREPOPULATED_MAIN, str(keys), "-H", HOST, "-p", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120 + keys / 1000
            while not _answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"moto did not start:\n{log.read().decode()[-3000:]}")
                time.sleep(0.2)  # setup only: polling while the server fills its buckets
            yield MotoServer(f"http://{HOST}:{port}", port, process)
        finally:
            _stop(process)


def _status_kib(*names: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in names:
                found[name] = int(value.split()[0])
    return found


def _reset_peak() -> int:
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # VmHWM := VmRSS
    return _status_kib("VmRSS")["VmRSS"]


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
        }
        with tempfile.TemporaryDirectory() as tmp:
            # Warm-up: imports, service models, a manifest, engines on the workers.
            copy_prefix(
                "s3://listing-src/warm/",
                "s3://listing-dst/warm/",
                manifest=Path(tmp, "warm.jsonl"),
                **options,
            )
            before = _reset_peak()
            started = time.perf_counter()
            summary = copy_prefix(
                "s3://listing-src/keys/",
                "s3://listing-dst/keys/",
                manifest=Path(tmp, "keys.jsonl"),
                **options,
            )
            seconds = time.perf_counter() - started
            hwm = _status_kib("VmHWM")["VmHWM"]
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
                    before = _reset_peak()
                async for page in paginator.paginate(Bucket="listing-src", Prefix=prefix):
                    held.extend((e["Key"], e["Size"], e["ETag"]) for e in page.get("Contents", []))
            return _status_kib("VmHWM")["VmHWM"] - before

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
    import distributed

    with prepopulated_server(keys) as server:
        env = client_environment(server.endpoint_url)
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=THREADS_PER_WORKER,
            processes=True,
            host=HOST,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": f"{HOST}:0"},
            env=env,
        ) as cluster:
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
    print()
    print(
        "Throughput (median of rounds; server CPU = moto's CPU seconds per second; "
        "client CPU = the copying processes')"
    )
    print(
        f"{'prefix / run':32} {'objects':>8} {'MB':>8} {'s':>7} {'obj/s':>8} "
        f"{'MB/s':>7} {'server CPU':>10} {'ms CPU/obj':>10} {'s CPU/GiB':>9} {'peak/worker':>12}"
    )
    for label, r in report["throughput"].items():
        share = "" if r["server_cpu_share"] is None else f"{r['server_cpu_share']:.2f}"
        peak = f"{r['worker_peak_max'] / MIB:.2f} MiB" if "worker_peak_max" in r else ""
        print(
            f"{label:32} {r['objects']:>8} {r['bytes'] / MB:>8.1f} {r['median_seconds']:>7.2f} "
            f"{r['objects_per_s']:>8.0f} {r['mb_per_s']:>7.1f} {share:>10} "
            f"{r['client_cpu_ms_per_object']:>10.2f} {r['client_cpu_s_per_gib']:>9.1f} {peak:>12}"
        )
    print()
    print("Driver memory while copy_prefix lists, shards and writes the manifest (all skipped)")
    print(f"{'keys':>8} {'s':>7} {'keys/s':>8} {'driver peak growth':>19} {'a held listing':>15}")
    for r in report["driver_memory"]:
        growth, held = r["driver_growth_kib"] / 1024, r["held_listing_growth_kib"] / 1024
        print(
            f"{r['keys']:>8,} {r['seconds']:>7.1f} {r['keys_per_s']:>8.0f} "
            f"{growth:>15.1f} MiB {held:>11.1f} MiB"
        )
    machine = report["machine"]
    print(
        f"\n{machine['cpu_model']}, {machine['nproc']} CPUs, Python {machine['python']}, "
        f"{report['elapsed_seconds']:.0f} s in all"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="small objects (10 KB)")
    parser.add_argument("--large", type=int, default=8, help="large objects (32 MiB)")
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round, no JSON")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--driver", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.small, args.large, args.keys, args.rounds = 100, 1, [2000], 1
    elif args.output is None:
        args.output = RESULTS
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
    environment = client_environment("")
    del environment["AWS_ENDPOINT_URL"]
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(environment)
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    machine = machine_info()
    with moto_server() as server:
        throughput = run_throughput(server, args.small, args.large, args.rounds, args.quiet)
    memory = [run_driver_memory(keys, args.quiet) for keys in args.keys]
    report = {
        "benchmark": "distributed",
        "date": date,
        "machine": machine,
        "versions": versions(),
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
        "elapsed_seconds": time.perf_counter() - started,
    }
    report["machine"]["loadavg_after"] = list(os.getloadavg())
    print_report(report)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
