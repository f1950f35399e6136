"""Throughput and client cost of S3 bucket-to-bucket copies: aqueuepipe, boto3, aioboto3.

Run::

    python benchmarks/bench_copy.py                 # 2, 20 and 100 MiB, 3 rounds
    python benchmarks/bench_copy.py --rounds 5
    python benchmarks/bench_copy.py --smoke         # 1 and 10 MiB, 1 round, no JSON (CI)
    python benchmarks/bench_copy.py --profile       # then cProfile the largest streamed copy
    python benchmarks/bench_copy.py --validating    # moto refusing wrong digests, as S3 does

One run starts its own moto server process (``aqueuepipe.testing.moto_server``: a
free 127.0.0.1 port, fake credentials, every request counted by S3 operation where it
arrives), creates random objects of each size once in a source bucket, and copies
them to a destination bucket of the same endpoint with each contender.  Two kinds
of copy, each against its boto3 peer ("x boto3"):

- **server-side** (the server copies, no body passes through the client):
  aqueuepipe's ``copy()`` as it comes against boto3's managed ``s3.copy()``;
- **streamed** (GetObject bodies sent back in UploadParts): aqueuepipe's
  ``copy(..., server_side=False)`` against boto3's ``upload_fileobj`` of the
  GetObject body, and the ceiling.

The rows:

``ceiling``
    What the server and the client library allow at best, from the same objects:
    a GetObject read to the end and discarded (aiobotocore, configured as
    aqueuepipe configures it), and the server's best ingest of bytes already in
    memory (the better of one PutObject and a multipart upload of 8 MiB parts,
    4 UploadParts at a time).  The copy ceiling is the slower of reading and
    ingesting: ``min(GET, max(PutObject, UploadPart))``.
``aqueuepipe`` (server-side)
    ``await copy(src, dst, limit=30_000_000)`` with default options (its clients
    are created inside, as in the plain call): CopyObject, or UploadPartCopy in
    the source's part layout; again with ``client=`` one client made before the
    timing (``aqueuepipe_client``), so the cost of creating clients is visible.
``boto3_copy`` (server-side)
    ``s3.copy({"Bucket": ..., "Key": ...}, bucket, key,
    Config=TransferConfig(multipart_threshold=8 MiB, multipart_chunksize=8 MiB,
    max_concurrency=4))``: HeadObject, then CopyObject or UploadPartCopy parts.
``aqueuepipe_stream`` (streamed)
    ``await copy(src, dst, limit=30_000_000, server_side=False)``: the bytes go
    through the client, as between two endpoints.
``boto3`` (streamed)
    ``s3.upload_fileobj(s3.get_object(...)["Body"], bucket, key,
    Config=TransferConfig(multipart_chunksize=8 MiB, max_concurrency=4))`` with
    boto3's default client configuration (``request_checksum_calculation`` and
    ``response_checksum_validation`` "when_supported": a CRC32 is computed for
    every upload and checked on the GET, as users get by default).
``aioboto3`` (streamed)
    The same with aioboto3: the async GetObject body fed to its ``upload_fileobj``.
    aioboto3 pins aiobotocore exactly (not the version aqueuepipe uses), so it runs
    under an interpreter of its own venv (``--aioboto3-python``, default
    ``/tmp/aioboto3-venv/bin/python``); without one the table says so.

Every measurement runs in a fresh client process (``benchmarks/_measure.py``)
that warms up (imports, clients, a tiny copy), resets its peak RSS, and times one
copy: wall time (``perf_counter``), the client's CPU (user + system, all threads;
the server's CPU is reported apart, never counted as the client's) and the peak
RSS growth during the copy.  The server's request counts by operation over the
client process's whole life (its warm-up copy included) show what went through the
client: "GETs" and "upload MiB" (PutObject and UploadPart bodies the server
received) are 0 for a copy made on the server.  Rounds are interleaved, the
contender order rotating, and medians are reported.  Every copy's size is checked,
and in the first round every copied object is downloaded and compared by MD5.

Results go to ``benchmarks/results/copy.json`` (``--output``); ``--smoke`` writes
no file unless ``--output`` is given.  Only ratios from one run mean anything.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import (
    add_run_options,
    finish_report,
    machine_line,
    markdown_table,
    print_profile,
    print_table,
    probe_versions,
    report_head,
    resolve_output,
    versions,
)
from _server import boto3_client, client_environment, received, through_client

from aqueuepipe.testing import MotoServer, moto_server

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MB = 1_000_000

SIZES = (2 * MIB, 20 * MIB, 100 * MIB)
# Below and above the 8 MiB part size, so the smoke run takes both the single
# PutObject path and the multipart one.
SMOKE_SIZES = (1 * MIB, 10 * MIB)
WARM_SIZE = 64 * KIB
PART_SIZE = 8 * MIB
CONCURRENCY = 4
LIMIT = 30_000_000
SRC_BUCKET = "bench-src"
DST_BUCKET = "bench-dst"

HERE = Path(__file__).resolve().parent
MEASURE = HERE / "_measure.py"
DEFAULT_AIOBOTO3_PYTHON = "/tmp/aioboto3-venv/bin/python"
AIOBOTO3_INSTALL = (
    "python3 -m venv /tmp/aioboto3-venv && /tmp/aioboto3-venv/bin/pip install aioboto3"
)
RUN_TIMEOUT = 600.0
# A measurement that fails (say the loaded server drops a connection) is tried
# again, its error printed; the attempt number is kept with the reading.
ATTEMPTS = 3

# The server's CPU is read from /proc in clock ticks (10 ms); below this many
# seconds per copy the table shows "-" (the JSON keeps the readings).
SERVER_CPU_RESOLUTION = 0.1

# Distributions whose versions the report records.
VERSIONS = ("aqueuepipe", "aiobotocore", "botocore", "aiohttp", "boto3", "s3transfer", "awscrt")
VERSIONS += ("moto", "werkzeug")

# The issues' targets, at TARGET_SIZE (or the largest size run).
TARGET_SIZE = 100 * MIB
TARGET_CEILING = 0.9
TARGET_BOTO3 = 1.0
TARGET_CPU = 0.7  # streamed client CPU per GiB against boto3's (plain moto: MD5 is evidence)

# Each kind of copy row is compared with its boto3 peer ("x boto3").
PEER = {"server_side": "boto3_copy", "stream": "boto3"}


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    kind: str  # "ceiling", "server_side" or "stream"
    python: str | None = None  # interpreter; None: this one


def contenders(aioboto3_python: str | None) -> tuple[Contender, ...]:
    return (
        Contender("get", "GET, read to the end", "ceiling"),
        Contender("put", "PutObject, from memory", "ceiling"),
        Contender("parts", f"UploadPart x{CONCURRENCY}, from memory", "ceiling"),
        Contender("aqueuepipe", "aqueuepipe copy(): server-side", "server_side"),
        Contender("aqueuepipe_client", "aqueuepipe copy(client=c): server-side", "server_side"),
        Contender("boto3_copy", "boto3 copy(): server-side", "server_side"),
        Contender("aqueuepipe_stream", "aqueuepipe copy(server_side=False)", "stream"),
        Contender("boto3", "boto3 upload_fileobj", "stream"),
        Contender("aioboto3", "aioboto3 upload_fileobj", "stream", aioboto3_python),
    )


# -- set-up -------------------------------------------------------------------------


def _label(size: int) -> str:
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size // KIB} KiB"


def _key(size: int) -> str:
    return f"object-{size}.bin"


def probe_aioboto3(python: str, env: dict[str, str]) -> tuple[str | None, dict[str, str]]:
    """(None, versions) if ``python`` can run aioboto3, else (reason, {})."""
    if not Path(python).exists():
        return f"{python} not found (create it: {AIOBOTO3_INSTALL})", {}
    names = ("aioboto3", "aiobotocore", "botocore", "boto3", "s3transfer", "aiohttp")
    return probe_versions(python, "aioboto3", names, env)


def make_objects(client: Any, sizes: tuple[int, ...]) -> dict[int, str]:
    """Create the buckets and the random source objects; return each one's MD5."""
    client.create_bucket(Bucket=SRC_BUCKET)
    client.create_bucket(Bucket=DST_BUCKET)
    md5s = {}
    for size in (WARM_SIZE, *sizes):
        data = os.urandom(size)
        client.put_object(Bucket=SRC_BUCKET, Key=_key(size), Body=data)
        md5s[size] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return md5s


def verify(client: Any, key: str, size: int, md5: str | None) -> None:
    """The copy at ``key`` has ``size`` bytes (and, given ``md5``, those bytes)."""
    head = client.head_object(Bucket=DST_BUCKET, Key=key)
    if head["ContentLength"] != size:
        raise RuntimeError(f"{key}: {head['ContentLength']} bytes, expected {size}")
    if md5 is not None:
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in client.get_object(Bucket=DST_BUCKET, Key=key)["Body"].iter_chunks(MIB):
            digest.update(chunk)
        if digest.hexdigest() != md5:
            raise RuntimeError(f"{key}: MD5 {digest.hexdigest()}, expected {md5}")


# -- measuring ----------------------------------------------------------------------


def measure(
    contender: Contender,
    size: int,
    server: MotoServer,
    env: dict[str, str],
    *,
    profile: str | None = None,
) -> dict[str, Any]:
    """Run one measurement in a fresh client process; return its readings."""
    spec = {
        "contender": contender.key,
        "src_bucket": SRC_BUCKET,
        "dst_bucket": DST_BUCKET,
        "key": _key(size),
        "dst_key": f"{contender.key}/{_key(size)}",
        "size": size,
        "warm_key": _key(WARM_SIZE),
        "warm_dst_key": f"{contender.key}/warm.bin",
        "part_size": PART_SIZE,
        "concurrency": CONCURRENCY,
        "limit": LIMIT,
        "server_pid": server.process.pid,
        "profile": profile,
    }
    command = [contender.python or sys.executable, str(MEASURE), json.dumps(spec)]
    for attempt in range(1, ATTEMPTS + 1):
        server.reset_requests()
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
        if done.returncode == 0:
            reading: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            reading["attempt"] = attempt
            # What the server received from the client process (warm-up included).
            reading.update(received(server))
            return reading
        failure = (
            f"{contender.label} at {_label(size)} failed (exit {done.returncode}, "
            f"attempt {attempt} of {ATTEMPTS}):\n{done.stderr[-4000:]}"
        )
        print(failure, file=sys.stderr, flush=True)
    raise RuntimeError(failure)


def _rotated(items: tuple[Contender, ...], n: int) -> tuple[Contender, ...]:
    n %= len(items)
    return items[n:] + items[:n]


def run_rounds(
    server: MotoServer,
    env: dict[str, str],
    client: Any,
    runnable: tuple[Contender, ...],
    sizes: tuple[int, ...],
    rounds: int,
    md5s: dict[int, str],
    *,
    quiet: bool,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(size): {c.key: [] for c in runnable} for size in sizes
    }
    for r in range(rounds):
        for size in sizes:
            for contender in _rotated(runnable, r):
                reading = measure(contender, size, server, env)
                if contender.key != "get":  # the only one that writes nothing
                    dst_key = f"{contender.key}/{_key(size)}"
                    check_md5 = r == 0 and contender.kind != "ceiling"
                    verify(client, dst_key, size, md5s[size] if check_md5 else None)
                    client.delete_object(Bucket=DST_BUCKET, Key=dst_key)
                raw[str(size)][contender.key].append(reading)
                if not quiet:
                    print(
                        f"  round {r + 1}/{rounds}  {_label(size):>7}  {contender.label:<30}"
                        f" {size / reading['seconds'] / MB:8.1f} MB/s"
                        f"  cpu {reading['cpu_seconds']:.2f} s"
                        f"  rss +{reading['rss_growth_kib'] / KIB:.0f} MiB",
                        file=sys.stderr,
                        flush=True,
                    )
    return raw


# -- summarising --------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


def summarise(
    raw: dict[str, dict[str, list[dict[str, Any]]]],
    every: tuple[Contender, ...],
    missing: dict[str, str],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size_key, by_contender in raw.items():
        size = int(size_key)
        entry: dict[str, Any] = {}
        for contender in every:
            if contender.key in missing:
                entry[contender.key] = {
                    "label": contender.label,
                    "not_installed": missing[contender.key],
                }
                continue
            runs = by_contender[contender.key]
            mbps = [size / run["seconds"] / MB for run in runs]
            cpu_per_gib = [run["cpu_seconds"] / (size / GIB) for run in runs]
            server_cpu = [run["server_cpu_seconds"] for run in runs]
            entry[contender.key] = {
                "label": contender.label,
                "kind": contender.kind,
                "size": size,
                "rounds": runs,
                "mb_per_s": mbps,
                "median_mb_per_s": _median(mbps),
                "median_seconds": _median([run["seconds"] for run in runs]),
                "median_cpu_seconds_per_gib": _median(cpu_per_gib),
                "median_rss_growth_mib": _median([run["rss_growth_kib"] / KIB for run in runs]),
                "max_rss_growth_mib": max(run["rss_growth_kib"] / KIB for run in runs),
                "median_server_cpu_seconds_per_gib": (
                    _median([s / (size / GIB) for s in server_cpu])
                    if all(s is not None for s in server_cpu)
                    else None
                ),
                # The most any round sent through the client, by the server's count.
                **through_client(runs),
                "requests": runs[-1]["requests"],
            }
        read = entry["get"]["median_mb_per_s"]
        ingest = max(entry["put"]["median_mb_per_s"], entry["parts"]["median_mb_per_s"])
        ceiling = min(read, ingest)
        entry["ceiling"] = {
            "median_mb_per_s": ceiling,
            "read_mb_per_s": read,
            "ingest_mb_per_s": ingest,
            "ingest_by": "put" if entry["put"]["median_mb_per_s"] >= ingest else "parts",
            "bound_by": "read" if read <= ingest else "ingest",
        }
        for contender in every:
            stats = entry[contender.key]
            if "median_mb_per_s" not in stats:
                continue
            stats["ratio_to_ceiling"] = stats["median_mb_per_s"] / ceiling
            if contender.kind in PEER:
                peer = entry[PEER[contender.kind]]
                stats["peer"] = PEER[contender.kind]
                stats["ratio_to_peer"] = stats["median_mb_per_s"] / peer["median_mb_per_s"]
                stats["cpu_ratio_to_peer"] = (
                    stats["median_cpu_seconds_per_gib"] / peer["median_cpu_seconds_per_gib"]
                )
        results[size_key] = entry
    return results


def check_targets(results: dict[str, Any]) -> dict[str, Any]:
    sizes = [int(s) for s in results]
    size = TARGET_SIZE if TARGET_SIZE in sizes else max(sizes)
    # The streamed copy against the streamed peers; the server-side copy against
    # boto3's server-side copy().
    ours = results[str(size)]["aqueuepipe_stream"]
    boto = results[str(size)]["boto3"]
    server_side = results[str(size)]["aqueuepipe"]
    return {
        "size": size,
        "server_side": {
            "target": 1.0,
            "ratio": server_side["ratio_to_peer"],
            "met": server_side["ratio_to_peer"] >= 1.0,
        },
        "no_body_through_client": {
            "get_objects": server_side["max_get_objects"],
            "upload_body_bytes": server_side["max_upload_body_bytes"],
            "met": server_side["max_get_objects"] == 0
            and server_side["max_upload_body_bytes"] == 0,
        },
        "ceiling": {
            "target": TARGET_CEILING,
            "ratio": ours["ratio_to_ceiling"],
            "met": ours["ratio_to_ceiling"] >= TARGET_CEILING,
        },
        "boto3": {
            "target": TARGET_BOTO3,
            "ratio": ours["ratio_to_peer"],
            "met": ours["ratio_to_peer"] >= TARGET_BOTO3,
        },
        "cpu_per_gib_vs_boto3": {
            "target": TARGET_CPU,
            "aqueuepipe": ours["median_cpu_seconds_per_gib"],
            "boto3": boto["median_cpu_seconds_per_gib"],
            "ratio": ours["cpu_ratio_to_peer"],
            "met": ours["cpu_ratio_to_peer"] <= TARGET_CPU,
        },
    }


# -- profiling ----------------------------------------------------------------------


def profile_aqueuepipe(
    server: MotoServer, env: dict[str, str], size: int, top: int
) -> dict[str, Any]:
    """cProfile aqueuepipe's streamed copy of ``size`` bytes in its client process
    (the one whose client CPU the targets are about); print the top."""
    contender = Contender("aqueuepipe_stream", "aqueuepipe copy(server_side=False)", "stream")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "copy.pstats")
        reading = measure(contender, size, server, env, profile=path)
        summary: dict[str, Any] = {"size": size, "reading": reading}
        # The event loop's thread and every other (hashing workers), merged.
        paths = [path, *sorted(glob.glob(path + ".thread-*"))]
        summary["threads_profiled"] = len(paths)
        title = f"cProfile of {contender.label} of {_label(size)}, {len(paths)} threads"
        summary.update(print_profile(paths, title, ("cumulative", "tottime"), top))
    return summary


# -- reporting ----------------------------------------------------------------------


def _rows(report: dict[str, Any]) -> Iterator[tuple[str, list[str] | None]]:
    """(size label, row) per table row; a None row starts a new size."""
    for size_key, entry in report["results"].items():
        label = _label(int(size_key))
        yield label, None
        ceiling = entry["ceiling"]
        for key in ("get", "put", "parts"):
            yield label, _row(label, entry[key])
        yield (
            label,
            [
                label,
                f"ceiling: min(GET, best ingest), {ceiling['bound_by']}-bound",
                f"{ceiling['median_mb_per_s']:.0f}",
                "1.00x",
                *[""] * 7,
            ],
        )
        for contender in contenders(None):
            if contender.kind != "ceiling":
                yield label, _row(label, entry[contender.key], copy=True)


def _row(label: str, stats: dict[str, Any], *, copy: bool = False) -> list[str]:
    if "not_installed" in stats:
        return [label, stats["label"], "not installed", *[""] * 8]
    server = stats["median_server_cpu_seconds_per_gib"]
    if server is not None and server * int(stats["size"]) / GIB < SERVER_CPU_RESOLUTION:
        server = None  # a few clock ticks: noise
    return [
        label,
        stats["label"],
        f"{stats['median_mb_per_s']:.0f}",
        f"{stats['ratio_to_ceiling']:.2f}x" if copy else "",
        f"{stats['ratio_to_peer']:.2f}x" if "ratio_to_peer" in stats else "",
        f"{stats['median_cpu_seconds_per_gib']:.2f}",
        f"{stats['cpu_ratio_to_peer']:.2f}x" if "cpu_ratio_to_peer" in stats else "",
        f"{stats['median_rss_growth_mib']:.0f}",
        f"{server:.2f}" if server is not None else "-",
        str(stats["max_get_objects"]),
        f"{stats['max_upload_body_bytes'] / MIB:.1f}",
    ]


HEADER = [
    "size",
    "contender",
    "MB/s",
    "x ceiling",
    "x boto3",
    "client CPU s/GiB",
    "CPU x boto3",
    "peak RSS growth MiB",
    "server CPU s/GiB",
    "GETs",
    "upload MiB",
]


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    title = (
        f"S3 copy bucket to bucket: median of {params['rounds']} round(s), "
        f"{params['part_size'] // MIB} MiB parts, {params['concurrency']} at a time"
    )
    print_table(title, HEADER, (row for _, row in _rows(report)), left=2, width=170)
    for key, reason in report["not_installed"].items():
        print(f"{key}: not installed: {reason}")
    print(machine_line(report))
    targets = report["targets"]
    size = _label(targets["size"])
    through = targets["no_body_through_client"]
    print(
        f"target aqueuepipe copy() server-side at {size}: no body through the client: "
        f"{through['get_objects']} GetObject, {through['upload_body_bytes']} upload body bytes "
        f"at the server, {'met' if through['met'] else 'MISSED'}"
    )
    for name, target in (
        ("boto3 copy(), server-side", targets["server_side"]),
        ("ceiling, streamed", targets["ceiling"]),
        ("boto3 upload_fileobj, streamed", targets["boto3"]),
    ):
        verdict = "met" if target["met"] else "MISSED"
        print(
            f"target aqueuepipe >= {target['target']:.1f}x {name} at {size}: "
            f"{target['ratio']:.2f}x, {verdict}"
        )
    cpu = targets["cpu_per_gib_vs_boto3"]
    print(
        f"target aqueuepipe streamed client CPU/GiB <= {cpu['target']:.1f}x boto3's at {size}: "
        f"{cpu['aqueuepipe']:.2f} s vs {cpu['boto3']:.2f} s ({cpu['ratio']:.2f}x), "
        f"{'met' if cpu['met'] else 'MISSED'}"
    )


def report_markdown(report: dict[str, Any]) -> str:
    """The table as GitHub markdown, for benchmarks/README.md."""
    table = markdown_table(HEADER, (row for _, row in _rows(report)))
    missing = report["not_installed"].items()
    return table + "".join(f"\n\n{key}: not installed: {why}" for key, why in missing)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--sizes-mib",
        type=int,
        nargs="+",
        default=None,
        help="object sizes in MiB (default 2 20 100)",
    )
    add_run_options(parser, "copy", "1 and 10 MiB, 1 round, no JSON file")
    parser.add_argument(
        "--aioboto3-python",
        default=DEFAULT_AIOBOTO3_PYTHON,
        help=f"interpreter with aioboto3 installed (default {DEFAULT_AIOBOTO3_PYTHON})",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, cProfile aqueuepipe's copy of the largest size and print the top",
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument(
        "--validating",
        action="store_true",
        help="a server that refuses wrong digests as S3 does (so aqueuepipe computes no MD5)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds = 1
        args.sizes = SMOKE_SIZES
    else:
        args.sizes = tuple(s * MIB for s in args.sizes_mib) if args.sizes_mib else SIZES
    if args.rounds < 1 or any(s < 1 for s in args.sizes):
        parser.error("--rounds and --sizes-mib must be at least 1")
    resolve_output(args, "copy")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, head = report_head("copy")
    sizes: tuple[int, ...] = args.sizes
    with moto_server(validate_digests=args.validating) as server:
        env = client_environment(server.endpoint_url)
        every = contenders(args.aioboto3_python)
        reason, aioboto3_versions = probe_aioboto3(args.aioboto3_python, env)
        missing = {"aioboto3": reason} if reason is not None else {}
        runnable = tuple(c for c in every if c.key not in missing)
        client = boto3_client(server.endpoint_url, max_pool_connections=4)
        try:
            md5s = make_objects(client, sizes)
            raw = run_rounds(
                server, env, client, runnable, sizes, args.rounds, md5s, quiet=args.quiet
            )
            results = summarise(raw, every, missing)
            report: dict[str, Any] = {
                **head,
                "versions": versions(*VERSIONS),
                "aioboto3_versions": aioboto3_versions or {"not_installed": reason},
                "parameters": {
                    "sizes": list(sizes),
                    "rounds": args.rounds,
                    "smoke": args.smoke,
                    "part_size": PART_SIZE,
                    "concurrency": CONCURRENCY,
                    "aqueuepipe_limit": LIMIT,
                    "warm_up_size": WARM_SIZE,
                    "server": "moto (aqueuepipe.testing.moto_server) on 127.0.0.1, one process",
                    "validate_digests": args.validating,
                    "requests": "counted by the server per client process, warm-up included",
                    "source_objects": "random bytes, one boto3 PutObject each (defaults)",
                    "mb": MB,
                    "order": "interleaved rounds; per round, each size, contenders rotating",
                    "statistic": "median",
                    "ceiling": "min(GET MB/s, max(PutObject MB/s, UploadPart MB/s)), medians",
                },
                "results": results,
                "not_installed": missing,
                "targets": check_targets(results),
            }
            if args.profile:
                report["profile"] = profile_aqueuepipe(server, env, max(sizes), top=30)
        finally:
            client.close()

    def show(report: dict[str, Any]) -> None:
        print_report(report)
        if args.markdown:
            print(report_markdown(report))

    return finish_report(report, started, args.output, show)


if __name__ == "__main__":
    sys.exit(main())
