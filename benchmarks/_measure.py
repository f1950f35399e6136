"""One client-side measurement of bench_copy.py, run in a fresh process.

Run as ``python benchmarks/_measure.py SPEC_JSON``; prints one JSON object.  The
process warms up (imports, clients, a tiny copy of the same kind), resets its peak
RSS (``5`` into ``/proc/self/clear_refs``), notes VmRSS, and then times one
transfer with ``time.perf_counter`` and ``getrusage(RUSAGE_SELF)`` (user + system
CPU of every thread of this process: s3transfer's and ``asyncio.to_thread``'s
workers count, the moto server does not).  VmHWM afterwards less VmRSS before is
the peak RSS growth of the transfer.

Only the standard library (and ``_machine.py`` beside it, which imports nothing
else) is imported at the top: the aioboto3 contender runs under another interpreter
(a venv of its own), where aqueuepipe is not installed.  Each contender imports what
it needs.

SPEC_JSON keys: ``contender``; ``src_bucket``, ``dst_bucket``, ``key`` (the
object), ``dst_key``, ``size``; ``warm_key``, ``warm_dst_key`` (the tiny object);
``part_size``, ``concurrency``, ``limit``; ``server_pid`` (its CPU is reported
apart); optionally ``profile`` (a path: cProfile of the timed transfer is dumped
there, and that of each other thread, such as the hashing workers of
``asyncio.to_thread``, to ``PATH.thread-N``; CPU time of each thread).  The
endpoint and fake credentials come from the environment (``AWS_ENDPOINT_URL``...).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _machine
from _machine import check_size, read_to_end, upload_in_parts

READ_SIZE = 1024 * 1024  # the ceiling GET's reads, into one reused buffer

# With a profile asked for, every thread started after profile_threads() runs under
# a profiler of its own (cProfile sees only the thread that enables it).
_THREAD_PROFILERS: list[Any] = []


def profile_threads() -> None:
    import cProfile
    import threading

    def start(*_: Any) -> None:
        profiler = cProfile.Profile(time.thread_time)
        _THREAD_PROFILERS.append(profiler)
        profiler.enable()  # replaces this hook for the new thread

    threading.setprofile(start)


def _dump_thread_profiles(path: str) -> None:
    import marshal

    for n, profiler in enumerate(_THREAD_PROFILERS):
        profiler.snapshot_stats()  # without disabling: the thread is another one
        with open(f"{path}.thread-{n}", "wb") as f:
            marshal.dump(profiler.stats, f)


class Meter(_machine.Meter):
    """The shared meter; a profile also covers the threads started after
    :func:`profile_threads`, by the CPU time of each thread."""

    # Each thread's CPU time, not wall time: waits cost nothing, and a loaded
    # machine does not inflate what the hashing threads cost.
    profile_clock = time.thread_time

    def started(self) -> None:
        if self.spec.get("profile"):
            for other in _THREAD_PROFILERS:
                other.clear()  # the warm-up's calls

    def dumped(self, path: str) -> None:
        _dump_thread_profiles(path)


# -- ceiling: what the client library and the server can do at best ---------------


async def ceiling_get(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """GetObject, the body read to the end into one reused buffer and discarded."""
    from aqueuepipe.s3 import create_client

    buf = memoryview(bytearray(READ_SIZE))

    async with create_client() as client:
        await read_to_end(client, spec["src_bucket"], spec["warm_key"], buf)
        with meter.timed():
            got = await read_to_end(client, spec["src_bucket"], spec["key"], buf)
    check_size(got, spec["size"])
    return {}


async def ceiling_put(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """One PutObject of bytes already in memory."""
    from aqueuepipe.s3 import create_client

    data = os.urandom(spec["size"])
    async with create_client() as client:
        await client.put_object(Bucket=spec["dst_bucket"], Key=spec["warm_dst_key"], Body=b"w")
        with meter.timed():
            await client.put_object(Bucket=spec["dst_bucket"], Key=spec["dst_key"], Body=data)
    return {}


async def ceiling_parts(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """A multipart upload of bytes already in memory, ``concurrency`` UploadParts at once."""
    from aqueuepipe.s3 import create_client

    bucket, part_size, concurrency = spec["dst_bucket"], spec["part_size"], spec["concurrency"]
    data = os.urandom(spec["size"])
    async with create_client() as client:
        await upload_in_parts(client, bucket, spec["warm_dst_key"], b"w", part_size, concurrency)
        with meter.timed():
            count = await upload_in_parts(
                client, bucket, spec["dst_key"], data, part_size, concurrency
            )
    return {"parts": count}


# -- contenders ---------------------------------------------------------------------


def _aqueuepipe(
    *, own_client: bool = False, stream: bool = False
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """aqueuepipe's copy(); with ``own_client``, given one client made during warm-up;
    with ``stream``, streamed through the client (``server_side=False``)."""

    async def run(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
        from contextlib import AsyncExitStack

        from aqueuepipe import copy
        from aqueuepipe.s3 import create_client

        kwargs: dict[str, Any] = {"limit": spec["limit"]}
        if stream:
            kwargs["server_side"] = False
        src, dst = f"s3://{spec['src_bucket']}/", f"s3://{spec['dst_bucket']}/"
        async with AsyncExitStack() as stack:
            if own_client:
                kwargs["client"] = await stack.enter_async_context(create_client())
            await copy(src + spec["warm_key"], dst + spec["warm_dst_key"], **kwargs)
            with meter.timed():
                result = await copy(src + spec["key"], dst + spec["dst_key"], **kwargs)
        check_size(result.size, spec["size"])
        return {
            "parts": result.parts,
            "checksums": sorted(result.checksums),
            "verified": list(result.verified),
        }

    return run


def boto3_managed(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """boto3: the GetObject body streamed into upload_fileobj (s3transfer, threads)."""
    import boto3
    import boto3.s3.transfer
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_chunksize=spec["part_size"], max_concurrency=spec["concurrency"]
    )
    s3 = boto3.client("s3")

    def once(key: str, dst_key: str) -> None:
        body = s3.get_object(Bucket=spec["src_bucket"], Key=key)["Body"]
        s3.upload_fileobj(body, spec["dst_bucket"], dst_key, Config=config)

    once(spec["warm_key"], spec["warm_dst_key"])
    with meter.timed():
        once(spec["key"], spec["dst_key"])
    should_use_crt = getattr(boto3.s3.transfer, "_should_use_crt", None)
    return {
        "boto3": boto3.__version__,
        "crt_transfer_manager": should_use_crt(config) if should_use_crt else None,
        "request_checksum_calculation": s3.meta.config.request_checksum_calculation,
        "response_checksum_validation": s3.meta.config.response_checksum_validation,
    }


def boto3_copy(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """boto3's managed copy(): HeadObject, then CopyObject or UploadPartCopy parts."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=spec["part_size"],
        multipart_chunksize=spec["part_size"],
        max_concurrency=spec["concurrency"],
    )
    s3 = boto3.client("s3")

    def once(key: str, dst_key: str) -> None:
        source = {"Bucket": spec["src_bucket"], "Key": key}
        s3.copy(source, spec["dst_bucket"], dst_key, Config=config)

    once(spec["warm_key"], spec["warm_dst_key"])
    with meter.timed():
        once(spec["key"], spec["dst_key"])
    return {"boto3": boto3.__version__}


async def aioboto3_managed(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """aioboto3: the async GetObject body fed to its upload_fileobj."""
    import aioboto3
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_chunksize=spec["part_size"], max_concurrency=spec["concurrency"]
    )
    session = aioboto3.Session()
    async with session.client("s3") as s3:

        async def once(key: str, dst_key: str) -> None:
            response = await s3.get_object(Bucket=spec["src_bucket"], Key=key)
            body = response["Body"]
            try:
                await s3.upload_fileobj(body, spec["dst_bucket"], dst_key, Config=config)
            finally:
                body.close()

        await once(spec["warm_key"], spec["warm_dst_key"])
        with meter.timed():
            await once(spec["key"], spec["dst_key"])
        return {
            "aioboto3": aioboto3.__version__,
            "request_checksum_calculation": s3.meta.config.request_checksum_calculation,
            "response_checksum_validation": s3.meta.config.response_checksum_validation,
        }


CONTENDERS: dict[str, Callable[[dict[str, Any], Meter], Any]] = {
    "get": ceiling_get,
    "put": ceiling_put,
    "parts": ceiling_parts,
    "aqueuepipe": _aqueuepipe(),
    "aqueuepipe_client": _aqueuepipe(own_client=True),
    "aqueuepipe_stream": _aqueuepipe(stream=True),
    "boto3": boto3_managed,
    "boto3_copy": boto3_copy,
    "aioboto3": aioboto3_managed,
}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    if spec.get("profile"):
        profile_threads()
    meter = Meter(spec)
    run = CONTENDERS[spec["contender"]]
    outcome = run(spec, meter)
    if asyncio.iscoroutine(outcome):
        outcome = asyncio.run(outcome)
    if not meter.result:
        raise RuntimeError(f"{spec['contender']} measured nothing")
    print(json.dumps({**meter.result, "extra": outcome, "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
