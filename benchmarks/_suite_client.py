"""One client-side measurement of the benchmark suite (bench_suite.py), in a fresh process.

Run as ``python benchmarks/_suite_client.py`` with a JSON spec on standard input;
prints one JSON object (the last line of standard output).  The process imports its
contender, creates its clients, copies one tiny object the same way (so imports,
client set-up that is done once and connection pools are warm), resets its peak
RSS (``5`` into ``/proc/self/clear_refs``), notes VmRSS, and then times the whole
workload: wall time (``time.perf_counter``), the client's CPU (``getrusage``
user + system of every thread of this process: s3transfer's, s3fs's and
obstore's threads count; the moto server's CPU is read from ``/proc`` and kept
apart), the peak RSS growth (VmHWM afterwards less VmRSS before), and VmRSS
sampled every ``sample_interval`` seconds by a thread reading
``/proc/self/status``.

Only the standard library is imported at the top: aioboto3 runs under the
interpreter of a venv of its own, where aqueuepipe is not installed.  Each
contender imports what it needs.

Spec keys: ``contender``; ``src_bucket``, ``dst_bucket``; ``pairs`` (a list of
``[src_key, dst_key, size]``); ``warm`` (one such triple, copied before timing);
``batch`` (objects copied at once: 1 for one object, else a thread pool or
coroutines of that size); ``part_size``, ``part_concurrency`` (parts in flight
per object), ``limit`` (aqueuepipe's memory limit); ``required_limit`` (the
memory limit the workload itself sets, or null: the only option besides the
endpoint that the ``-defaults`` rows pass); ``server_pid``;
``endpoint_url``; ``sample_interval``; optionally ``profile`` (a path: cProfile
of the timed run is dumped there) and ``slow_callback`` (seconds: the event loop
runs in debug mode and callbacks slower than that are counted and reported).
Fake credentials come from the environment (``AWS_ACCESS_KEY_ID``...).

With ``stream`` (``{"seed": ..., "chunk_size": ...}``) the sources are not objects:
each pair's bytes come from an async generator in this process (see
:class:`GeneratedStream`) and go up with a length the uploader is not told, and
the contenders come from :data:`STREAM_CONTENDERS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import IO, Any

import _machine
from _machine import check_size, read_to_end, status_kib, upload_in_parts

READ_SIZE = 1024 * 1024  # the ceiling GET's reads, into one reused buffer per object

Pair = tuple[str, str, int]


class RssSampler(threading.Thread):
    """Reads VmRSS every ``interval`` seconds until stopped: (seconds, KiB) pairs."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()
        self._start = time.perf_counter()

    def run(self) -> None:
        self._start = time.perf_counter()
        self._sample()
        while not self._stop_event.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        rss = status_kib("VmRSS")["VmRSS"]
        self.samples.append((round(time.perf_counter() - self._start, 4), rss))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self._sample()


class Meter(_machine.Meter):
    """The shared meter, with VmRSS sampled over the timed block."""

    def prepare(self) -> None:
        self.sampler = RssSampler(self.spec["sample_interval"])

    def started(self) -> None:
        self.sampler.start()

    def stopped(self) -> None:
        self.sampler.stop()

    def extra(self, before: dict[str, int]) -> dict[str, Any]:
        # VmRSS over the run, less VmRSS before it.
        return {"rss_series": [(t, kib - before["VmRSS"]) for t, kib in self.sampler.samples]}


def _pairs(spec: dict[str, Any]) -> list[Pair]:
    return [(src, dst, int(size)) for src, dst, size in spec["pairs"]]


def _warm(spec: dict[str, Any]) -> Pair:
    src, dst, size = spec["warm"]
    return src, dst, int(size)


async def _gather_bounded(
    pairs: list[Pair], limit: int, one: Callable[[Pair], Awaitable[None]]
) -> None:
    """Run ``one`` for every pair, at most ``limit`` at a time."""
    slots = asyncio.Semaphore(limit)

    async def bounded(pair: Pair) -> None:
        async with slots:
            await one(pair)

    async with asyncio.TaskGroup() as tg:
        for pair in pairs:
            tg.create_task(bounded(pair))


def _threaded(pairs: list[Pair], workers: int, one: Callable[[Pair], None]) -> None:
    """Run ``one`` for every pair in a pool of ``workers`` threads; re-raise the first error."""
    if workers == 1:
        for pair in pairs:
            one(pair)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(one, pairs):
            pass


async def _time_each(
    spec: dict[str, Any], meter: Meter, one: Callable[[Pair], Awaitable[None]]
) -> None:
    """``one`` on the warm-up pair, then timed on every pair, ``batch`` at a time."""
    await one(_warm(spec))
    with meter.timed():
        await _gather_bounded(_pairs(spec), spec["batch"], one)


def _time_each_threaded(spec: dict[str, Any], meter: Meter, one: Callable[[Pair], None]) -> None:
    """The same with ``one`` a blocking call, from a pool of ``batch`` threads."""
    one(_warm(spec))
    with meter.timed():
        _threaded(_pairs(spec), spec["batch"], one)


# -- the ceiling: what the client library and the server can do at best -----------


def _aqueuepipe_client(spec: dict[str, Any]) -> Any:
    from aqueuepipe.s3 import create_client

    return create_client(max_pool_connections=spec["batch"] * spec["part_concurrency"] + 4)


async def ceiling_get(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """GetObject of every object, each body read to the end into a reused buffer."""
    bucket = spec["src_bucket"]

    async with _aqueuepipe_client(spec) as client:

        async def one(pair: Pair) -> None:
            buf = memoryview(bytearray(min(READ_SIZE, max(pair[2], 1))))
            check_size(await read_to_end(client, bucket, pair[0], buf), pair[2])

        await _time_each(spec, meter, one)
    return {}


async def _ingest(spec: dict[str, Any], meter: Meter, *, parts: bool) -> dict[str, Any]:
    """Upload bytes already in memory: PutObject each, or multipart for objects >= part_size."""
    bucket = spec["dst_bucket"]
    part_size = spec["part_size"]
    pairs = _pairs(spec)
    data = {dst: os.urandom(size) for _, dst, size in pairs}
    uploads = {"put": 0, "multipart": 0}

    async with _aqueuepipe_client(spec) as client:

        async def one(pair: Pair) -> None:
            body = data.pop(pair[1], None) or b"w"
            if parts and len(body) >= part_size:
                uploads["multipart"] += 1
                await upload_in_parts(
                    client, bucket, pair[1], body, part_size, spec["part_concurrency"]
                )
            else:
                uploads["put"] += 1
                await client.put_object(Bucket=bucket, Key=pair[1], Body=body)

        await one(_warm(spec))
        uploads.update(put=0, multipart=0)
        with meter.timed():
            await _gather_bounded(pairs, spec["batch"], one)
    return uploads


async def ceiling_put(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """One PutObject per object, of bytes already in memory."""
    return await _ingest(spec, meter, parts=False)


async def ceiling_parts(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """Multipart uploads (part_concurrency UploadParts at a time) of bytes in memory."""
    return await _ingest(spec, meter, parts=True)


# -- the stream workload's producer ---------------------------------------------------


def stream_bytes(size: int, seed: int) -> bytes:
    """The bytes of a generated stream of ``size``: the same in every process."""
    return random.Random(seed).randbytes(size)


class GeneratedStream:
    """The stream workload's producer: async generators of fresh ``bytes`` chunks.

    One buffer of random bytes is made before the warm-up (so it is in the RSS
    baseline), and every chunk is a copy of a slice of it: a new ``bytes`` object, as
    a socket or a file would hand out, so a contender that keeps chunks shows them in
    its peak RSS, and generating costs every contender the same small memcpy.  The
    generator never waits: the consumer sets the pace.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.chunk_size = int(spec["stream"]["chunk_size"])
        largest = max(size for _, _, size in (*_pairs(spec), _warm(spec)))
        self._data = memoryview(stream_bytes(largest, int(spec["stream"]["seed"])))

    async def chunks(self, pair: Pair) -> AsyncIterator[bytes]:
        """``pair``'s bytes (the first ``pair[2]`` bytes of the buffer), chunk by chunk."""
        data, step = self._data[: pair[2]], self.chunk_size
        for offset in range(0, len(data), step):
            yield bytes(data[offset : offset + step])


class AsyncReader:
    """``async read(n)`` over async chunks: ``n`` bytes, fewer only at the end.

    As an async file object (aiofiles, a buffered stream) reads; aioboto3's
    upload_fileobj asks for whole parts and would concatenate short reads itself.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    async def read(self, n: int = -1) -> bytes:
        parts, have = [self._left], len(self._left)
        while n < 0 or have < n:
            chunk = await anext(self._chunks, b"")
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if 0 <= n < have:
            data, self._left = data[:n], data[n:]
        else:
            self._left = b""
        return data


@contextmanager
def _piped(stream: GeneratedStream, pair: Pair) -> Iterator[IO[bytes]]:
    """The reading end of an ``os.pipe``; a thread running an event loop writes
    ``pair``'s stream into the other end."""
    read_fd, write_fd = os.pipe()
    writer = open(write_fd, "wb")  # noqa: SIM115 (the feeder closes it)

    async def feed() -> None:
        with writer:
            async for chunk in stream.chunks(pair):
                writer.write(chunk)

    feeder = threading.Thread(target=asyncio.run, args=(feed(),), name="feeder", daemon=True)
    feeder.start()
    try:
        with open(read_fd, "rb") as reader:
            yield reader
    finally:
        feeder.join()  # the reader closed: a feeder still writing gets BrokenPipeError


# -- contenders ---------------------------------------------------------------------


def _aqueuepipe(**options: Any) -> Callable[[dict[str, Any], Meter], Awaitable[dict[str, Any]]]:
    """copy() for one object, copy_many() for several; clients made inside the call."""

    async def run(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
        options_here = {"limit": spec["limit"], **options}
        return await _aqueuepipe_copy(spec, meter, options_here, {"concurrency": spec["batch"]})

    return run


async def aqueuepipe_defaults(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """Plain copy() / copy_many(): the endpoint and the workload's own limit, nothing else."""
    import inspect

    from aqueuepipe import copy, copy_many

    options: dict[str, Any] = {"endpoint_url": spec["endpoint_url"]}
    if spec.get("required_limit") is not None:
        options["limit"] = spec["required_limit"]
    if "stream" not in spec:
        options["server_side"] = False  # a streamed copy, against boto3's streaming one
    outcome = await _aqueuepipe_copy(spec, meter, options, {})
    # What "defaults" meant in this run (they change between versions).
    outcome["defaults"] = {
        fn.__name__: {
            name: repr(p.default)
            for name, p in inspect.signature(fn).parameters.items()
            if p.default is not p.empty and name not in options
        }
        for fn in (copy, copy_many)
    }
    return outcome


async def _aqueuepipe_copy(
    spec: dict[str, Any],
    meter: Meter,
    options: dict[str, Any],
    many_options: dict[str, Any],
) -> dict[str, Any]:
    """Time copy() (one object) or copy_many(**many_options) with ``options``.

    The source is an object's URL, or on the stream workload the generated stream.
    """
    from aqueuepipe import copy, copy_many

    dst = f"s3://{spec['dst_bucket']}/"
    source: Callable[[Pair], Any]
    if "stream" in spec:
        source = GeneratedStream(spec).chunks
    else:
        src = f"s3://{spec['src_bucket']}/"

        def source(pair: Pair) -> str:
            return src + pair[0]

    pairs = _pairs(spec)
    warm = _warm(spec)
    await copy(source(warm), dst + warm[1], **options)
    parts = 0
    single = spec["batch"] == 1 and len(pairs) == 1
    with meter.timed():
        if single:
            result = await copy(source(pairs[0]), dst + pairs[0][1], **options)
            check_size(result.size, pairs[0][2])
            parts = result.parts
        else:
            count = 0
            async for result in copy_many(
                [(source(p), dst + p[1]) for p in pairs], **many_options, **options
            ):
                if not result.ok:
                    raise RuntimeError(f"{result.dst}: {result.error!r}")
                count += 1
                parts += result.parts
            check_size(count, len(pairs))
    return {"parts": parts, "options": options if single else options | many_options}


def _transfer_config(spec: dict[str, Any], defaults: bool) -> Any:
    """The suite's TransferConfig, or None (upload_fileobj's own default) for defaults."""
    if defaults:
        return None
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_chunksize=spec["part_size"], max_concurrency=spec["part_concurrency"]
    )


def _client_options(spec: dict[str, Any], defaults: bool, config_class: type) -> dict[str, Any]:
    """boto3/aioboto3 client arguments: the endpoint alone for defaults, else a sized pool."""
    if defaults:
        return {"endpoint_url": spec["endpoint_url"]}
    batch = spec["batch"]
    if batch == 1:
        return {}
    # One client shared by the threads (boto3 clients are thread-safe); its pool
    # sized so that no thread's connection is discarded.
    return {"config": config_class(max_pool_connections=batch * (spec["part_concurrency"] + 1))}


def _boto_settings(s3: Any, transfer: Any) -> dict[str, Any]:
    """The client and transfer settings a boto3/aioboto3 row ran with."""
    from boto3.s3.transfer import TransferConfig

    transfer = transfer or TransferConfig()
    return {
        "max_pool_connections": s3.meta.config.max_pool_connections,
        "request_checksum_calculation": s3.meta.config.request_checksum_calculation,
        "response_checksum_validation": s3.meta.config.response_checksum_validation,
        "multipart_chunksize": transfer.multipart_chunksize,
        "max_concurrency": transfer.max_concurrency,
    }


def boto3_managed(
    spec: dict[str, Any], meter: Meter, *, defaults: bool = False, server_side: bool = False
) -> dict[str, Any]:
    """boto3: each GetObject body streamed into upload_fileobj (s3transfer, threads);
    on the stream workload, the reading end of a pipe the stream is written into;
    with ``server_side``, its managed copy() (CopyObject or UploadPartCopy parts)."""
    import boto3
    from botocore.config import Config

    config = _transfer_config(spec, defaults)
    s3 = boto3.client("s3", **_client_options(spec, defaults, Config))
    opened: Callable[[Pair], contextlib.AbstractContextManager[Any]]
    if "stream" in spec:
        opened = partial(_piped, GeneratedStream(spec))
    else:

        def opened(pair: Pair) -> contextlib.AbstractContextManager[Any]:
            body = s3.get_object(Bucket=spec["src_bucket"], Key=pair[0])["Body"]
            return contextlib.nullcontext(body)

    def one(pair: Pair) -> None:
        if server_side:
            source = {"Bucket": spec["src_bucket"], "Key": pair[0]}
            s3.copy(source, spec["dst_bucket"], pair[1], Config=config)
            return
        with opened(pair) as body:
            s3.upload_fileobj(body, spec["dst_bucket"], pair[1], Config=config)

    _time_each_threaded(spec, meter, one)
    return {"boto3": boto3.__version__, **_boto_settings(s3, config)}


async def aioboto3_managed(
    spec: dict[str, Any], meter: Meter, *, defaults: bool = False
) -> dict[str, Any]:
    """aioboto3: each async GetObject body fed to its upload_fileobj; on the stream
    workload, an :class:`AsyncReader` of the stream."""
    import aioboto3
    from aiobotocore.config import AioConfig

    config = _transfer_config(spec, defaults)
    session = aioboto3.Session()
    async with session.client("s3", **_client_options(spec, defaults, AioConfig)) as s3:
        opened: Callable[[Pair], contextlib.AbstractAsyncContextManager[Any]]
        if "stream" in spec:
            stream = GeneratedStream(spec)

            def opened(pair: Pair) -> contextlib.AbstractAsyncContextManager[Any]:
                return contextlib.nullcontext(AsyncReader(stream.chunks(pair)))

        else:

            @contextlib.asynccontextmanager
            async def opened(pair: Pair) -> AsyncIterator[Any]:
                response = await s3.get_object(Bucket=spec["src_bucket"], Key=pair[0])
                try:
                    yield response["Body"]
                finally:
                    response["Body"].close()

        async def one(pair: Pair) -> None:
            async with opened(pair) as body:
                await s3.upload_fileobj(body, spec["dst_bucket"], pair[1], Config=config)

        await _time_each(spec, meter, one)
        return {"aioboto3": aioboto3.__version__, **_boto_settings(s3, config)}


async def obstore_stream(
    spec: dict[str, Any], meter: Meter, *, defaults: bool = False
) -> dict[str, Any]:
    """obstore: get_async's stream written into open_writer_async (its multipart writer)."""
    import obstore

    src, dst = _obstore_store(spec, spec["src_bucket"]), _obstore_store(spec, spec["dst_bucket"])
    writer_options = (
        {}
        if defaults
        else {"buffer_size": spec["part_size"], "max_concurrency": spec["part_concurrency"]}
    )

    async def one(pair: Pair) -> None:
        response = await obstore.get_async(src, pair[0])
        async with obstore.open_writer_async(dst, pair[1], **writer_options) as writer:
            async for chunk in response.stream():
                await writer.write(chunk)

    await _time_each(spec, meter, one)
    return {"obstore": obstore.__version__, "writer_options": writer_options}


def _obstore_store(spec: dict[str, Any], bucket: str) -> Any:
    from obstore.store import S3Store

    return S3Store(
        bucket,
        endpoint=spec["endpoint_url"],
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )


async def obstore_put(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """obstore: put_async(store, key, async iterator): its multipart upload of a stream."""
    import obstore

    dst = _obstore_store(spec, spec["dst_bucket"])
    stream = GeneratedStream(spec)
    options = {"chunk_size": spec["part_size"], "max_concurrency": spec["part_concurrency"]}

    async def one(pair: Pair) -> None:
        await obstore.put_async(dst, pair[1], stream.chunks(pair), **options)

    await _time_each(spec, meter, one)
    return {"obstore": obstore.__version__, "put_options": options}


def s3fs_stream(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """s3fs: a file opened for reading copied into one opened for writing, part by part."""
    import s3fs

    fs = _s3fs(spec)
    part_size = spec["part_size"]

    def one(pair: Pair) -> None:
        src = f"{spec['src_bucket']}/{pair[0]}"
        dst = f"{spec['dst_bucket']}/{pair[1]}"
        with (
            fs.open(src, "rb", block_size=part_size) as reader,
            fs.open(dst, "wb", block_size=part_size) as writer,
        ):
            while chunk := reader.read(part_size):
                writer.write(chunk)

    _time_each_threaded(spec, meter, one)
    return {"s3fs": s3fs.__version__}


def _s3fs(spec: dict[str, Any]) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        endpoint_url=spec["endpoint_url"],
        key=os.environ["AWS_ACCESS_KEY_ID"],
        secret=os.environ["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")},
    )


async def s3fs_write(spec: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """s3fs: the stream written chunk by chunk into ``fs.open(dst, "wb")``.

    Its async file (``await fs.open_async(dst, "wb")``) cannot write: s3fs 2026.9.0
    returns it closed, and its write raises ValueError (fsspec/s3fs#853, #748).  So
    the event loop calls the blocking writer, which uploads each full block (one
    part at a time) on fsspec's own event loop thread while this loop waits; nothing
    else runs on it here, so that costs no throughput.
    """
    import s3fs

    fs = _s3fs(spec)
    stream = GeneratedStream(spec)

    async def one(pair: Pair) -> None:
        path = f"{spec['dst_bucket']}/{pair[1]}"
        with fs.open(path, "wb", block_size=spec["part_size"]) as writer:
            async for chunk in stream.chunks(pair):
                writer.write(chunk)

    await _time_each(spec, meter, one)
    return {"s3fs": s3fs.__version__, "writer": "fs.open(wb), blocking writes"}


CONTENDERS: dict[str, Callable[[dict[str, Any], Meter], Any]] = {
    "get": ceiling_get,
    "put": ceiling_put,
    "parts": ceiling_parts,
    # Streamed through the client, against the other libraries' streamed copies.
    "aqueuepipe": _aqueuepipe(server_side=False),
    # moto emulates S3's full-object CRC64NVME for uploads created without a
    # checksum algorithm, at a cost to the server (see README): this row shows it.
    "aqueuepipe_crc32": _aqueuepipe(checksum_algorithm="crc32", server_side=False),
    "boto3": boto3_managed,
    # Made on the server: aqueuepipe as it comes on one endpoint, boto3's copy().
    "aqueuepipe_server": _aqueuepipe(),
    "boto3_copy": partial(boto3_managed, server_side=True),
    "aioboto3": aioboto3_managed,
    "obstore": obstore_stream,
    "s3fs": s3fs_stream,
    # Each library as it comes: no part size, concurrency, pool or checksum
    # setting, only what reaches the endpoint (and the memory workload's limit).
    "aqueuepipe-defaults": aqueuepipe_defaults,
    "boto3-defaults": partial(boto3_managed, defaults=True),
    "aioboto3-defaults": partial(aioboto3_managed, defaults=True),
    "obstore-defaults": partial(obstore_stream, defaults=True),
}
# The stream workload: the same libraries, each uploading a stream of unknown length.
STREAM_CONTENDERS: dict[str, Callable[[dict[str, Any], Meter], Any]] = {
    "aqueuepipe": _aqueuepipe(),
    "boto3": boto3_managed,
    "aioboto3": aioboto3_managed,
    "obstore": obstore_put,
    "s3fs": s3fs_write,
}


class _SlowCallbacks(logging.Handler):
    """Collects asyncio's "Executing <Handle ...> took N seconds" debug warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing"):
            # "Executing <Handle or Task ...> took 0.123 seconds": the handle's repr
            # can be long; keep its start and the time.
            head, _, took = message.rpartition(" took ")
            self.seen.append(f"{head[:200]} ... took {took}")


async def _debugged(coro: Awaitable[Any], threshold: float, slow: _SlowCallbacks) -> Any:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    logging.getLogger("asyncio").addHandler(slow)
    return await coro


def main() -> int:
    spec = json.loads(sys.stdin.read())
    meter = Meter(spec)
    run = (STREAM_CONTENDERS if "stream" in spec else CONTENDERS)[spec["contender"]]
    outcome = run(spec, meter)
    slow = None
    if asyncio.iscoroutine(outcome):
        threshold = spec.get("slow_callback")
        if threshold:
            slow = _SlowCallbacks()
            outcome = asyncio.run(_debugged(outcome, threshold, slow))
        else:
            outcome = asyncio.run(outcome)
    if not meter.result:
        raise RuntimeError(f"{spec['contender']} measured nothing")
    if slow is not None:
        outcome["slow_callbacks"] = {"count": len(slow.seen), "first": slow.seen[:10]}
    print(json.dumps({**meter.result, "extra": outcome, "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
