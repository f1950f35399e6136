"""Client CPU of a streamed S3-to-S3 copy between two endpoints: aqueuepipe and boto3.

Run::

    python benchmarks/bench_endpoints.py            # 100 MiB, 3 rounds
    python benchmarks/bench_endpoints.py --smoke    # 8 MiB + 1, 1 round, no JSON (CI)
    python benchmarks/bench_endpoints.py --size-mib 50 --rounds 5

One run starts three moto servers (``aqueuepipe.testing.moto_server``, each its own
process on 127.0.0.1 with fake credentials): the source, a plain destination
(stores whatever it is sent: MD5 is the only evidence of what it stored) and a
validating one (refuses a body that disagrees with its digests, as Amazon S3 does:
its acceptance is the evidence).  The source object is put once with boto3's
defaults, so it has a FULL_OBJECT CRC32, as objects uploaded by current AWS SDKs
have; a copy keeps it, so aqueuepipe sends CRC32 too.

Contenders, each in a fresh client process, timed around one copy after a warm-up
copy of 64 KiB, rounds interleaved and the order rotating:

``aqueuepipe``
    ``await copy(src, dst, src_client=..., dst_client=..., limit=30_000_000)``,
    two clients made before the timing.
``boto3``
    ``dst.upload_fileobj(src.get_object(...)["Body"], ...)`` with
    ``TransferConfig(multipart_chunksize=8 MiB, max_concurrency=4)``: boto3's
    streaming transfer, with its default checksum settings (a CRC32 per part).

Client CPU is ``getrusage(RUSAGE_SELF)`` user + system, all threads.  A second,
untimed run of aqueuepipe per destination counts the bytes each hash function is
given (wrappers installed in that process only), and the run measures what one
pass of each costs here, so the table shows where the CPU goes: passes per byte
times the cost of a pass.  Results: ``benchmarks/results/endpoints.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import (  # noqa: E402
    cpu_seconds,
    machine_info,
    print_table,
    reset_peak,
    status_kib,
    versions,
    write_report,
)
from _server import boto3_client as s3  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB
PART_SIZE = 8 * MiB
CONCURRENCY = 4
LIMIT = 30_000_000
WARM_SIZE = 64 * 1024
CONTENDERS = ("aqueuepipe", "boto3")
DESTINATIONS = ("plain", "validating")


# -- the client process -----------------------------------------------------------------


def _count_hashing() -> dict[str, int]:
    """Wrap every hash function aqueuepipe calls; return the byte counts they fill."""
    import awscrt.checksums

    import aqueuepipe.checksums as checksums

    counts: dict[str, int] = {"md5": 0, "crc32": 0, "crc32c": 0, "crc64nvme": 0}

    def size(data: Any) -> int:
        return memoryview(data).nbytes

    def crc(name: str, function: Any) -> Any:
        def counted(data: Any, previous: int = 0) -> int:
            counts[name] += size(data)
            return int(function(data, previous))

        return counted

    checksums._CRC_FUNCTIONS.update(
        crc32=crc("crc32", zlib.crc32),
        crc32c=crc("crc32c", awscrt.checksums.crc32c),
        crc64nvme=crc("crc64nvme", awscrt.checksums.crc64nvme),
    )
    real_md5 = hashlib.md5

    class CountedMD5:
        def __init__(self, data: Any = b"", **kwargs: Any) -> None:
            self._hash = kwargs.pop("_hash", None) or real_md5(usedforsecurity=False)
            self.digest_size = self._hash.digest_size
            self.update(data)

        def update(self, data: Any) -> None:
            counts["md5"] += size(data)
            self._hash.update(data)

        def digest(self) -> bytes:
            return self._hash.digest()

        def hexdigest(self) -> str:
            return self._hash.hexdigest()

        def copy(self) -> CountedMD5:
            return CountedMD5(_hash=self._hash.copy())

    hashlib.md5 = CountedMD5  # type: ignore[assignment,misc]
    return counts


async def _aqueuepipe(spec: dict[str, Any]) -> dict[str, Any]:
    from aqueuepipe import copy
    from aqueuepipe.s3 import create_client

    counts = _count_hashing() if spec.get("count") else None
    async with (
        create_client(endpoint_url=spec["src_url"]) as src_client,
        create_client(endpoint_url=spec["dst_url"]) as dst_client,
    ):
        kwargs: dict[str, Any] = {
            "src_client": src_client,
            "dst_client": dst_client,
            "limit": LIMIT,
        }
        src, dst = f"s3://{spec['src_bucket']}/", f"s3://{spec['dst_bucket']}/"
        await copy(src + spec["warm_key"], dst + spec["warm_key"], **kwargs)
        if counts is not None:
            counts.update(dict.fromkeys(counts, 0))
        before = reset_peak()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu = cpu_seconds()
        start = time.perf_counter()
        result = await copy(src + spec["key"], dst + spec["key"], **kwargs)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    if result.size != spec["size"]:
        raise RuntimeError(f"copied {result.size} bytes, expected {spec['size']}")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_growth_kib": status_kib("VmHWM")["VmHWM"] - before["VmRSS"],
        "page_faults": faults,
        "verified": list(result.verified),
        "hashed": counts,
    }


def _boto3(spec: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_chunksize=PART_SIZE, max_concurrency=CONCURRENCY)
    src = boto3.client("s3", endpoint_url=spec["src_url"])
    dst = boto3.client("s3", endpoint_url=spec["dst_url"])

    def once(key: str) -> None:
        body = src.get_object(Bucket=spec["src_bucket"], Key=key)["Body"]
        dst.upload_fileobj(body, spec["dst_bucket"], key, Config=config)

    once(spec["warm_key"])
    before = reset_peak()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu = cpu_seconds()
    start = time.perf_counter()
    once(spec["key"])
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_growth_kib": status_kib("VmHWM")["VmHWM"] - before["VmRSS"],
        "page_faults": faults,
    }


def client_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    aqueuepipe = spec["contender"] == "aqueuepipe"
    result = asyncio.run(_aqueuepipe(spec)) if aqueuepipe else _boto3(spec)
    print(json.dumps(result))
    return 0


# -- the parent ---------------------------------------------------------------------------


def pass_costs(size: int = 64 * MiB, repeat: int = 3) -> dict[str, float]:
    """CPU seconds per GiB of one pass of each hash function."""
    import awscrt.checksums

    data = os.urandom(size)
    functions: dict[str, Any] = {
        "md5": lambda: hashlib.md5(data, usedforsecurity=False).digest(),
        "crc32": lambda: zlib.crc32(data),
        "crc32c": lambda: awscrt.checksums.crc32c(data),
        "crc64nvme": lambda: awscrt.checksums.crc64nvme(data),
    }

    costs = {}
    for name, function in functions.items():
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            function()
            best = min(best, time.process_time() - start)
        costs[name] = best * GiB / size
    return costs


def run_client(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{spec['contender']} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--size-mib", type=int, default=100, help="object size (default 100)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI; no JSON")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON path (default results/endpoints.json)"
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.size = 1, PART_SIZE + 1
    else:
        args.size = args.size_mib * MiB
    if args.output is None and not args.smoke:
        args.output = HERE / "results" / "endpoints.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main(args.client)
    from aqueuepipe.testing import FAKE_CREDENTIALS, moto_server

    started = time.perf_counter()
    machine = machine_info()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    raw: dict[tuple[str, str], list[dict[str, Any]]] = {}
    counted: dict[str, dict[str, Any]] = {}
    with (
        moto_server() as source,
        moto_server() as plain,
        moto_server(validate_digests=True) as validating,
    ):
        servers = {"plain": plain, "validating": validating}
        src = s3(source.endpoint_url)
        src.create_bucket(Bucket="src")
        src.put_object(Bucket="src", Key="warm", Body=os.urandom(WARM_SIZE))
        src.put_object(Bucket="src", Key="big", Body=os.urandom(args.size))
        stored = src.head_object(Bucket="src", Key="big", ChecksumMode="ENABLED")
        source_checksum = {k: v for k, v in stored.items() if k.startswith("Checksum")}
        for server in servers.values():
            s3(server.endpoint_url).create_bucket(Bucket="dst")
        base = {
            "src_url": source.endpoint_url,
            "src_bucket": "src",
            "dst_bucket": "dst",
            "key": "big",
            "warm_key": "warm",
            "size": args.size,
        }
        cases = [(c, d) for d in DESTINATIONS for c in CONTENDERS]
        for round_number in range(args.rounds):
            shift = round_number % len(cases)
            for contender, destination in cases[shift:] + cases[:shift]:
                spec = {
                    **base,
                    "contender": contender,
                    "dst_url": servers[destination].endpoint_url,
                }
                reading = run_client(spec, env)
                raw.setdefault((contender, destination), []).append(reading)
                print(
                    f"round {round_number + 1}: {contender:>10} -> {destination:<10} "
                    f"{reading['cpu_seconds'] * GiB / args.size:5.2f} s/GiB client CPU",
                    file=sys.stderr,
                )
        for destination in DESTINATIONS:
            spec = {
                **base,
                "contender": "aqueuepipe",
                "dst_url": servers[destination].endpoint_url,
                "count": True,
            }
            counted[destination] = run_client(spec, env)
    costs = pass_costs(min(args.size, 64 * MiB))
    results = []
    for destination in DESTINATIONS:
        row: dict[str, Any] = {"destination": destination}
        for contender in CONTENDERS:
            readings = raw[(contender, destination)]
            row[contender] = {
                "cpu_s_per_gib": statistics.median(
                    r["cpu_seconds"] * GiB / args.size for r in readings
                ),
                "mb_s": statistics.median(args.size / r["seconds"] / 1e6 for r in readings),
                "rss_growth_mib": statistics.median(r["rss_growth_kib"] / 1024 for r in readings),
                "page_faults": statistics.median(r["page_faults"] for r in readings),
                "rounds": readings,
            }
        row["ratio"] = row["aqueuepipe"]["cpu_s_per_gib"] / row["boto3"]["cpu_s_per_gib"]
        hashed = counted[destination]["hashed"]
        row["passes_per_byte"] = {k: v / args.size for k, v in hashed.items() if v}
        row["hash_s_per_gib"] = {
            k: passes * costs[k] for k, passes in row["passes_per_byte"].items()
        }
        row["verified"] = counted[destination]["verified"]
        results.append(row)
    report = {
        "benchmark": "endpoints",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {**machine, "loadavg_after": list(os.getloadavg())},
        "versions": versions("aqueuepipe", "aiobotocore", "botocore", "boto3", "awscrt", "moto"),
        "parameters": {
            "size": args.size,
            "rounds": args.rounds,
            "part_size": PART_SIZE,
            "concurrency": CONCURRENCY,
            "limit": LIMIT,
            "source_checksum": source_checksum,
        },
        "pass_cost_s_per_gib": costs,
        "results": results,
        "elapsed_seconds": time.perf_counter() - started,
    }
    print_table(
        f"S3 -> S3 between two endpoints, {args.size / MiB:.0f} MiB, medians of {args.rounds}",
        [
            "destination",
            "aqueuepipe CPU s/GiB",
            "boto3 CPU s/GiB",
            "ratio",
            "aqueuepipe MB/s",
            "boto3 MB/s",
            "aqueuepipe RSS MiB",
            "aqueuepipe page faults",
            "hash passes per byte",
        ],
        [
            [
                r["destination"],
                f"{r['aqueuepipe']['cpu_s_per_gib']:.2f}",
                f"{r['boto3']['cpu_s_per_gib']:.2f}",
                f"{r['ratio']:.2f}x",
                f"{r['aqueuepipe']['mb_s']:.0f}",
                f"{r['boto3']['mb_s']:.0f}",
                f"{r['aqueuepipe']['rss_growth_mib']:.0f}",
                f"{r['aqueuepipe']['page_faults']:.0f}",
                ", ".join(f"{k} {v:.2f}" for k, v in r["passes_per_byte"].items()),
            ]
            for r in results
        ],
        left=1,
    )
    for r in results:
        print(f"{r['destination']}: verified {', '.join(r['verified'])}")
    print(
        "one pass costs (s/GiB): " + ", ".join(f"{name} {cost:.2f}" for name, cost in costs.items())
    )
    write_report(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
