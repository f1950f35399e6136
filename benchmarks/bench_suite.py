"""The benchmark suite: aqueuepipe against the server's ceiling and the tools users pick instead.

Run::

    python -m benchmarks                          # every workload, 3 rounds (~14 min here)
    python -m benchmarks --smoke                  # CI: tiny sizes, 1 round (~1-2 min)
    python -m benchmarks --workload big --contender aqueuepipe --contender boto3
    python -m benchmarks --profile --workload mixed   # then cProfile aqueuepipe on it
    python benchmarks/bench_suite.py ...          # the same, as nox runs it

One run starts two moto server processes (``aqueuepipe.testing.moto_server`` on free
127.0.0.1 ports, fake credentials, requests counted by operation): a plain one, and a
validating one (``validate_digests=True``: it refuses wrong digests as S3 does, so
aqueuepipe needs no MD5 there).  It creates the source objects once on each, and
copies them to a destination bucket of the same server with every contender, in
interleaved rounds (each round runs every workload and every contender once on the
plain server, and ``VALIDATING_ROWS`` of big, mixed and stream on the validating one,
the order rotating), reporting medians.  The workloads:

``big``      one 100 MiB object
``mixed``    32 objects of 1-25 MiB, 16 copies at a time
``small``    1,000 objects of 64 KiB, 16 at a time (objects/s: per-request overhead)
``memory``   16 concurrent copies of the 100 MiB object under a 30 MB limit (RSS)
``stream``   100 MiB from an async generator (64 KiB chunks, made in the client from
             one random buffer) uploaded with its length unknown to the uploader

and the contenders (a contender that cannot be imported is reported as "not
installed" with the reason, never dropped silently):

``ceiling``     the server's and client library's best, from the same objects: every
                GetObject read to the end (aiobotocore, configured as aqueuepipe
                configures it), and the best ingest of the same bytes from memory
                (one PutObject each, or multipart uploads of 8 MiB parts, 4 at a
                time); ceiling = min(read, best ingest) of the medians
``aqueuepipe``  ``copy(src, dst, limit=30_000_000, server_side=False)`` for one
                object, ``copy_many(pairs, concurrency=16, limit=30_000_000,
                server_side=False)`` for several: streamed through the client;
                otherwise default options, clients created inside the call
``aqueuepipe_server``, ``boto3_copy``  (big and mixed) made on the server: the
                same aqueuepipe calls without ``server_side=False``, against
                boto3's managed ``s3.copy()`` with the TransferConfig below
``boto3``       ``upload_fileobj(get_object(...)["Body"], ...)`` with
                ``TransferConfig(multipart_chunksize=8 MiB, max_concurrency=4)``,
                from a pool of 16 threads for several objects
``aioboto3``    the same with aioboto3's async ``upload_fileobj`` (in a venv of its
                own: it pins aiobotocore exactly), 16 coroutines at a time
``obstore``     ``get_async(...).stream()`` written into ``open_writer_async`` (its
                multipart writer, 8 MiB buffer, 4 parts at a time)
``s3fs``        ``fs.open(src, "rb")`` read part by part into ``fs.open(dst, "wb")``
                (8 MiB blocks), from a pool of 16 threads
on ``stream``   each its own call, same part size and concurrency: aqueuepipe
                ``copy(generator, url, limit=30_000_000)``; boto3 ``upload_fileobj``
                from an ``os.pipe`` that an event loop thread writes the generator
                into; aioboto3 ``upload_fileobj`` from an object with ``async
                read(n)``; obstore ``put_async(store, key, generator)``; s3fs
                ``fs.open(dst, "wb")`` written chunk by chunk (its ``open_async`` cannot
                write).  No ceiling or defaults rows
``*-defaults``  aqueuepipe, boto3, aioboto3 and obstore as they come: the same calls
                with no part size, concurrency, pool or checksum setting, only the
                endpoint URL (and, on ``memory``, aqueuepipe's 30 MB limit;
                aqueuepipe's ``server_side=False``, so that it streams as the
                others do); the same objects at once as above.  Issue 19's
                targets compare aqueuepipe-defaults with boto3-defaults

Every measurement runs in a fresh client process (``benchmarks/_suite_client.py``)
that warms up (imports, clients, one tiny copy), resets its peak RSS and then times
the workload: MB/s (10**6 bytes/s), client CPU seconds per GiB (user + system of all
the process's threads), peak RSS growth, VmRSS sampled every 50 ms, and the
server's CPU apart, and the server's count of the requests the client process made
(GetObject requests and upload bodies: none for a copy the server made).  Every
copy's size is checked after every run, and in the first round the copies are
downloaded and compared by MD5.

The table goes to the terminal, the raw numbers to ``results/suite.json`` and the
charts to ``results/suite-*.png`` (``--output-dir``).  ``--smoke`` writes them to a
temporary directory unless ``--output-dir`` is given, so it never replaces real
results.  Only ratios from one run mean anything.

A contender runs under this interpreter if it imports there, else under
``/tmp/CONTENDER-venv/bin/python`` if that exists (``--python CONTENDER=PATH``
chooses): the client needs only the standard library and the contender's own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import (
    close_report,
    print_profile,
    probe_versions,
    report_head,
    versions,
)
from _server import boto3_client, client_environment, received
from _suite_client import stream_bytes
from _suite_report import (
    VERSIONS,
    check_targets,
    cpu_targets,
    print_report,
    report_markdown,
    summarise,
)
from _suite_workloads import (
    BATCH,
    BY_KEY,
    CONTENDERS,
    DST_BUCKET,
    KEY_WIDTH,
    KIB,
    LIMIT,
    MB,
    MIB,
    PART_CONCURRENCY,
    PART_SIZE,
    SAMPLE_INTERVAL,
    SRC_BUCKET,
    STREAM_CHUNK,
    STREAM_SEED,
    VALIDATING_ROWS,
    WARM_SIZE,
    Contender,
    Workload,
    workloads,
)

from aqueuepipe.testing import MotoServer, moto_server

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "_suite_client.py"
DEFAULT_OUTPUT_DIR = HERE / "results"
# Where a contender that this interpreter cannot import is looked for.
VENV_PYTHON = "/tmp/{}-venv/bin/python"
RUN_TIMEOUT = 900.0
# A run that fails (say the loaded server drops a connection) is tried again, its
# error printed; if every attempt fails, the round records the failure and goes on.
ATTEMPTS = 2


# -- set-up -------------------------------------------------------------------------


def make_objects(client: Any, chosen: dict[str, Workload]) -> dict[str, str]:
    """Create the buckets and every distinct source object once; return their MD5s
    (and those of the generated streams, which the clients make themselves)."""
    from concurrent.futures import ThreadPoolExecutor

    client.create_bucket(Bucket=SRC_BUCKET)
    client.create_bucket(Bucket=DST_BUCKET)
    wanted = {("warm.bin", WARM_SIZE)}
    md5s = {}
    for workload in chosen.values():
        if not workload.generated:
            wanted.update(workload.objects)
            continue
        for key, size in workload.objects:
            data = stream_bytes(size, STREAM_SEED)
            md5s[key] = hashlib.md5(data, usedforsecurity=False).hexdigest()

    def put(item: tuple[str, int]) -> tuple[str, str]:
        key, size = item
        data = os.urandom(size)
        client.put_object(Bucket=SRC_BUCKET, Key=key, Body=data)
        return key, hashlib.md5(data, usedforsecurity=False).hexdigest()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return md5s | dict(pool.map(put, sorted(wanted)))


def probe(contender: Contender, python: str, env: dict[str, str]) -> tuple[str | None, dict]:
    """(None, versions) if ``python`` can import the contender's module, else (reason, {})."""
    if contender.module is None:
        return None, {}
    if not Path(python).exists():
        return f"{python} not found (install: {contender.install})", {}
    names = {
        "boto3": ("boto3", "botocore", "s3transfer"),
        "aioboto3": ("aioboto3", "aiobotocore", "botocore", "boto3", "s3transfer", "aiohttp"),
        "obstore": ("obstore",),
        "s3fs": ("s3fs", "fsspec", "aiobotocore", "botocore", "aiohttp"),
    }[contender.module]
    reason, found = probe_versions(python, contender.module, names, env)
    if reason is not None:
        return f"{reason} (install: {contender.install})", {}
    return None, found


# -- measuring ----------------------------------------------------------------------


def _dst_prefix(contender: str, workload: str) -> str:
    return f"{contender}/{workload}/"


def measure(
    contender: Contender,
    workload: Workload,
    server: MotoServer,
    env: dict[str, str],
    python: str,
    **extra: Any,
) -> dict[str, Any]:
    """Run one measurement in a fresh client process; return its readings."""
    prefix = _dst_prefix(contender.key, workload.key)
    spec = {
        "contender": contender.key,
        "src_bucket": SRC_BUCKET,
        "dst_bucket": DST_BUCKET,
        "pairs": [
            [key, f"{prefix}{i:05d}", size] for i, (key, size) in enumerate(workload.objects)
        ],
        "warm": ["warm.bin", f"{prefix}warm", WARM_SIZE],
        "batch": workload.batch,
        "part_size": PART_SIZE,
        "part_concurrency": PART_CONCURRENCY,
        "limit": LIMIT,
        "required_limit": workload.required_limit,
        "server_pid": server.process.pid,
        "endpoint_url": server.endpoint_url,
        "sample_interval": SAMPLE_INTERVAL,
        **extra,
    }
    if workload.generated:
        spec["stream"] = {"seed": STREAM_SEED, "chunk_size": STREAM_CHUNK}
    failure = ""
    for attempt in range(1, ATTEMPTS + 1):
        server.reset_requests()
        done = subprocess.run(
            [python, "-X", "faulthandler", str(CLIENT)],
            input=json.dumps(spec),
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        reading = _reading(done.stdout)
        if reading is not None:
            reading.update(received(server))  # warm-up included
        if done.returncode == 0 and reading is not None:
            reading["attempt"] = attempt
            return reading
        if reading is not None and done.returncode < 0:
            # It printed its measurement and then died of a signal: obstore's
            # runtime sometimes aborts (SIGABRT) while the interpreter exits.
            # The copy was complete and measured (and is verified like any other).
            reading["attempt"] = attempt
            reading["exit_status"] = done.returncode
            print(
                f"{contender.key} on {workload.key}: measured, then killed by signal "
                f"{-done.returncode} on exit; reading kept",
                file=sys.stderr,
                flush=True,
            )
            return reading
        failure = (
            f"{contender.key} on {workload.key} failed (exit {done.returncode}, "
            f"attempt {attempt} of {ATTEMPTS}):\n{done.stderr[-3000:]}"
        )
        print(failure, file=sys.stderr, flush=True)
    return {"failed": failure[-1500:]}


def _reading(stdout: str) -> dict[str, Any] | None:
    """The JSON measurement on the last line of a client's output, if it got that far."""
    lines = stdout.strip().splitlines()
    if not lines:
        return None
    try:
        reading = json.loads(lines[-1])
    except ValueError:
        return None
    return reading if isinstance(reading, dict) and "seconds" in reading else None


def _list(client: Any, prefix: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=DST_BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item
    return found


def verify_and_clean(
    client: Any,
    contender: Contender,
    workload: Workload,
    md5s: dict[str, str],
    *,
    check_md5: bool,
) -> None:
    """Every copy has its size (and, with ``check_md5``, its bytes); then delete them all."""
    prefix = _dst_prefix(contender.key, workload.key)
    found = _list(client, prefix)
    try:
        if contender.key == "get":
            return  # reads only
        for i, (src_key, size) in enumerate(workload.objects):
            key = f"{prefix}{i:05d}"
            if key not in found:
                raise RuntimeError(f"{contender.key}: {key} missing after the run")
            if found[key]["Size"] != size:
                raise RuntimeError(f"{key}: {found[key]['Size']} bytes, expected {size}")
            if not check_md5 or contender.kind not in ("copy", "defaults"):
                continue
            etag = found[key]["ETag"].strip('"')
            if "-" not in etag and etag == md5s[src_key]:
                continue  # a single PutObject: the ETag is the MD5 of the bytes
            if 0 <= workload.verify_md5 <= i:
                continue
            digest = hashlib.md5(usedforsecurity=False)
            for chunk in client.get_object(Bucket=DST_BUCKET, Key=key)["Body"].iter_chunks(MIB):
                digest.update(chunk)
            if digest.hexdigest() != md5s[src_key]:
                raise RuntimeError(f"{key}: MD5 {digest.hexdigest()}, expected {md5s[src_key]}")
    finally:
        keys = list(found)
        for start in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=DST_BUCKET,
                Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
            )


def _rotated(items: tuple[Any, ...], n: int) -> tuple[Any, ...]:
    n %= len(items)
    return items[n:] + items[:n]


@dataclass(frozen=True, slots=True)
class Server:
    """One of the run's servers ("plain" or "validating"), with what its clients need."""

    name: str
    server: MotoServer
    env: dict[str, str]
    client: Any  # boto3, for set-up and checks
    md5s: dict[str, str]


def run_rounds(
    servers: tuple[Server, ...],
    chosen: dict[str, Workload],
    runnable: dict[str, str],  # contender key -> interpreter
    rounds: int,
    *,
    quiet: bool,
) -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """Readings by server name, workload and contender; per round and workload, every
    (contender, server) pair once, the order rotating."""
    raw: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
        s.name: {
            w.key: {c: [] for c in w.contenders(s.name) if c in runnable}
            for w in chosen.values()
            if w.contenders(s.name)
        }
        for s in servers
    }
    for r in range(rounds):
        for workload in chosen.values():
            order = tuple(
                (key, s) for s in servers for key in workload.contenders(s.name) if key in runnable
            )
            for key, at in _rotated(order, r):
                contender = BY_KEY[key]
                reading = measure(contender, workload, at.server, at.env, runnable[key])
                if "failed" not in reading:
                    try:
                        verify_and_clean(at.client, contender, workload, at.md5s, check_md5=r == 0)
                    except RuntimeError as exc:
                        reading = {"failed": f"verification: {exc}"}
                else:
                    verify_and_clean(at.client, contender, workload, at.md5s, check_md5=False)
                reading["round"] = r + 1
                if not workload.keep_rss_series:
                    reading.pop("rss_series", None)  # the JSON keeps it where it is charted
                raw[at.name][workload.key][key].append(reading)
                if not quiet:
                    _progress(r, rounds, workload, contender, reading, at.name)
    return raw


def _progress(
    r: int,
    rounds: int,
    workload: Workload,
    contender: Contender,
    reading: dict[str, Any],
    server: str,
) -> None:
    head = f"  round {r + 1}/{rounds}  {workload.key:<7} {contender.key:<{KEY_WIDTH}} {server:<10}"
    if "failed" in reading:
        print(f"{head} FAILED", file=sys.stderr, flush=True)
        return
    rate = workload.total_bytes / reading["seconds"] / MB
    per_object = len(workload.objects) / reading["seconds"]
    print(
        f"{head} {rate:8.1f} MB/s {per_object:8.1f} obj/s"
        f"  cpu {reading['cpu_seconds']:6.2f} s  rss +{reading['rss_growth_kib'] / KIB:6.0f} MiB"
        f"  ({reading['seconds']:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


# -- profiling ----------------------------------------------------------------------


def profile_aqueuepipe(
    server: MotoServer,
    env: dict[str, str],
    client: Any,
    chosen: dict[str, Workload],
    top: int,
) -> dict[str, Any]:
    """cProfile aqueuepipe on each workload, then count slow callbacks in asyncio debug mode."""
    contender = BY_KEY["aqueuepipe"]
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workload in chosen.values():
            path = os.path.join(tmp, f"{workload.key}.pstats")
            reading = measure(contender, workload, server, env, sys.executable, profile=path)
            verify_and_clean(client, contender, workload, {}, check_md5=False)
            if "failed" in reading:
                found[workload.key] = {"failed": reading["failed"]}
                continue
            debug = measure(contender, workload, server, env, sys.executable, slow_callback=0.05)
            verify_and_clean(client, contender, workload, {}, check_md5=False)
            summary: dict[str, Any] = {"cpu_seconds": reading["cpu_seconds"]}
            title = f"cProfile of aqueuepipe on {workload.key} ({workload.label})"
            summary.update(print_profile([path], title, ("tottime", "cumulative"), top, digits=4))
            summary["slow_callbacks_over_50ms"] = debug.get("extra", {}).get("slow_callbacks")
            print(f"slow callbacks (> 50 ms, asyncio debug): {summary['slow_callbacks_over_50ms']}")
            found[workload.key] = summary
    return found


# -- command line -------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, 1 round, results in a temporary directory (CI)",
    )
    parser.add_argument(
        "--workload",
        action="append",
        choices=("big", "mixed", "small", "memory", "stream"),
        help="run only this workload (repeatable; default all)",
    )
    parser.add_argument(
        "--contender",
        action="append",
        choices=[c.key for c in CONTENDERS] + ["ceiling"],
        help="run only this contender (repeatable; 'ceiling' = its three rows; default all)",
    )
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="CONTENDER=PATH",
        help="the interpreter to run a contender with (default: this one if it imports "
        f"the contender, else {VENV_PYTHON.format('CONTENDER')} if it exists)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where suite.json and the charts go (default benchmarks/results; "
        "a temporary directory with --smoke)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, cProfile aqueuepipe on each workload and count slow callbacks",
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress lines")
    # Accepted so one `nox -s bench -- ARGS` can drive every script; unused here.
    parser.add_argument("--output", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds = 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.pythons = {}
    for item in args.python:
        name, sep, path = item.partition("=")
        if not sep or name not in BY_KEY:
            parser.error(f"--python wants CONTENDER=PATH, got {item!r}")
        args.pythons[name] = path
    return args


def _interpreter(
    contender: Contender, pythons: dict[str, str], env: dict[str, str]
) -> tuple[str, str | None, dict]:
    """(interpreter, None, versions), or (interpreter, why not, {}): the --python one,
    else this one if it imports the contender, else its venv's under /tmp if any."""
    given = pythons.get(contender.key, pythons.get(contender.family))
    venv = VENV_PYTHON.format(contender.family)
    others = [venv] if Path(venv).exists() else []
    candidates = [given] if given else [sys.executable, *others]
    for python in candidates:
        reason, found = probe(contender, python, env)
        if reason is None:
            break
    return python, reason, found


def _select(args: argparse.Namespace) -> tuple[dict[str, Workload], set[str]]:
    every = workloads(args.smoke)
    chosen = {k: w for k, w in every.items() if not args.workload or k in args.workload}
    keys = set(args.contender or [c.key for c in CONTENDERS])
    if "ceiling" in keys:
        keys |= {"get", "put", "parts"}
        keys.discard("ceiling")
    # Only the rows the chosen workloads have are probed (and reported if missing).
    keys &= {key for workload in chosen.values() for key in workload.contenders()}
    return chosen, keys


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, head = report_head("suite")
    chosen, keys = _select(args)
    output_dir: Path = args.output_dir or (
        Path(tempfile.mkdtemp(prefix="aqueuepipe-bench-smoke-"))
        if args.smoke
        else DEFAULT_OUTPUT_DIR
    )
    with moto_server() as plain, moto_server(validate_digests=True) as validating:
        env = client_environment(plain.endpoint_url)
        missing: dict[str, str] = {}
        other_versions: dict[str, dict[str, str]] = {}
        runnable: dict[str, str] = {}
        for contender in CONTENDERS:
            if contender.key not in keys:
                continue
            python, reason, found = _interpreter(contender, args.pythons, env)
            if reason is not None:
                missing[contender.key] = reason
            else:
                runnable[contender.key] = python
                if python != sys.executable:
                    other_versions[contender.key] = {"python": python, **found}
        servers: list[Server] = []
        try:
            for name, server in (("plain", plain), ("validating", validating)):
                client = boto3_client(server.endpoint_url)
                # Each server gets the sources of the workloads that run there.
                wanted = {k: w for k, w in chosen.items() if w.contenders(name)}
                print(f"creating source objects on {server.endpoint_url} ...", file=sys.stderr)
                servers.append(
                    Server(
                        name,
                        server,
                        client_environment(server.endpoint_url),
                        client,
                        make_objects(client, wanted),
                    )
                )
            raw = run_rounds(tuple(servers), chosen, runnable, args.rounds, quiet=args.quiet)
            results = summarise(raw["plain"], chosen, missing)
            validating_results = summarise(raw["validating"], chosen, missing, "validating")
            report: dict[str, Any] = {
                **head,
                "versions": versions(*VERSIONS),
                "other_interpreters": other_versions,
                "parameters": {
                    "rounds": args.rounds,
                    "smoke": args.smoke,
                    "workloads": {
                        k: {"label": w.label, "objects": len(w.objects), "bytes": w.total_bytes}
                        for k, w in chosen.items()
                    },
                    "part_size": PART_SIZE,
                    "part_concurrency": PART_CONCURRENCY,
                    "batch_concurrency": BATCH,
                    "aqueuepipe_limit": LIMIT,
                    "defaults_rows": "each library's defaults: only the endpoint URL "
                    "(and on memory aqueuepipe's limit); the same objects at once",
                    "rss_sample_interval": SAMPLE_INTERVAL,
                    "server": "moto (aqueuepipe.testing.moto_server) on 127.0.0.1, one process",
                    "validating_server": "the same with validate_digests=True (refuses a "
                    "body its digest headers disagree with, as S3 does); rows "
                    f"{', '.join(VALIDATING_ROWS)} on the workloads that have it",
                    "requests": "counted by the server per client process, warm-up included",
                    "mb": MB,
                    "order": "interleaved rounds; per round, each workload, contenders rotating",
                    "statistic": "median",
                    "ceiling": "min(GET rate, max(PutObject rate, UploadPart rate)), medians",
                },
                "results": results,
                "validating_results": validating_results,
                "not_installed": missing,
                "targets": check_targets(results)
                + cpu_targets(results, "plain")
                + cpu_targets(validating_results, "validating"),
            }
            if args.profile:
                first = servers[0]
                report["profile"] = profile_aqueuepipe(
                    first.server, first.env, first.client, chosen, top=25
                )
        finally:
            for each in servers:
                each.client.close()
    close_report(report, started)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        from _charts import render
    except ImportError as exc:
        report["charts"] = f"not rendered: {exc}"
    else:
        try:
            report["charts"] = [str(p) for p in render(report, output_dir)]
        except ImportError as exc:  # matplotlib missing
            report["charts"] = f"not rendered: {exc.name or exc} not installed"
    json_path = output_dir / "suite.json"
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print_report(report)
    print(f"wrote {json_path}")
    if args.markdown:
        print(report_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
