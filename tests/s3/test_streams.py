"""The pipe meets S3: any async producer into an object, any object into any consumer."""

from __future__ import annotations

import asyncio
import hashlib
import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aqueuepipe import (
    AsyncPipe,
    ByteBudget,
    ChecksumMismatchError,
    NoSuchBucketError,
    NoSuchKeyError,
    PipeAbortedError,
    RetryPolicy,
    TransferError,
    TransferResult,
    copy,
    open_reader,
    open_writer,
)
from aqueuepipe.s3 import S3Client

from .._helpers import (
    FAST,
    MakeBucket,
    MiB,
    MotoServer,
    cancel_once,
    chunks,
    get,
    key_exists,
    open_uploads,
    payload,
    put,
)
from .._memory import measure_growth
from .._sync import run_ready
from ..faultproxy import FaultProxy, Match


class Reader:
    """An object with async read(n) only."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)

    async def read(self, n: int = -1) -> bytes:
        piece, self.data = self.data[:100_000], self.data[100_000:]
        return bytes(piece)


class Writer:
    """An object with async write(data) only."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.parts.append(data)


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 8 * MiB, 8 * MiB + 1, 17 * MiB + 3])
async def test_async_generator_of_unknown_length_becomes_an_identical_object(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, size: int
) -> None:
    bucket = await make_bucket()
    data = payload(size, seed=size)
    result = await copy(chunks(data), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url)
    assert await get(s3_client, bucket, "k") == data
    assert result.size == size
    # Below a part, one part (plain moto does not check digests: see test_copy.py).
    assert result.parts == (0 if size == 0 else -(-size // (8 * MiB)))
    assert "destination:etag-md5" in result.verified


async def test_object_with_read_is_a_source(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    data = payload(9 * MiB, seed=2)
    await copy(Reader(data), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url)
    assert await get(s3_client, bucket, "k") == data


async def test_pipe_written_by_another_task_is_a_source(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    data = payload(12 * MiB, seed=3)
    async with AsyncPipe(limit=2 * MiB) as pipe:

        async def produce() -> None:
            async for chunk in chunks(data):
                await pipe.write(chunk)
            pipe.close()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(produce())
            copying = tg.create_task(
                copy(pipe, f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url)
            )
    assert copying.result().parts == 2
    assert await get(s3_client, bucket, "k") == data
    assert pipe.peak_buffered <= 2 * MiB


async def test_80mib_generator_under_30mb_stays_within_the_budget(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    data = payload(80 * MiB, seed=4)
    budget = ByteBudget(30_000_000)
    result = await copy(
        chunks(data), f"s3://{bucket}/k", budget=budget, endpoint_url=moto_server.endpoint_url
    )
    assert result.parts == 10
    assert budget.used == 0  # what it holds is measured in the subprocess test below
    head = await s3_client.head_object(Bucket=bucket, Key="k")
    assert head["ContentLength"] == len(data)
    assert hashlib.md5(await get(s3_client, bucket, "k")).digest() == hashlib.md5(data).digest()


_STREAM_MEMORY_PROBE = """
import os
from aqueuepipe import copy

block = os.urandom(64 * 1024)

async def chunks(count):
    for _ in range(count):
        yield block  # 64 KiB at a time, length unknown to the copy

async def warm_up():
    await copy(chunks(1), sys.argv[1] + "-warm", limit=30_000_000)

async def workload():
    result = await copy(chunks(80 * 16), sys.argv[1], limit=30_000_000)
    return [result.size, result.parts]
"""


@pytest.mark.slow
async def test_80mib_stream_peak_process_memory_within_limit_plus_20mb(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    """Measured in a fresh subprocess: peak RSS (VmHWM, reset just before the copy)
    less the RSS before it, for an 80 MiB async generator under a 30 MB limit."""
    bucket = await make_bucket()
    measured = await measure_growth(
        _STREAM_MEMORY_PROBE,
        f"s3://{bucket}/stream",
        env={"AWS_ENDPOINT_URL": moto_server.endpoint_url},
        timeout=120,
    )
    assert measured.report == [80 * MiB, 10]
    assert measured.growth <= 30_000_000 + 20_000_000, measured


async def test_failing_producer_aborts_the_upload_with_its_error(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()

    async def broken() -> AsyncIterator[bytes]:
        yield payload(9 * MiB, seed=5)
        raise RuntimeError("the producer broke")

    with pytest.raises(TransferError) as caught:
        await copy(broken(), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url)
    assert caught.value.side == "source"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert await open_uploads(s3_client, bucket) == []
    assert not await key_exists(s3_client, bucket, "k")


async def test_object_into_a_pipe_consumed_by_a_hashing_task(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    data = payload(50 * 1000 * 1000, seed=6)
    bucket = await make_bucket(objects={"k": data})
    budget = ByteBudget(4 * MiB)
    async with AsyncPipe(budget=budget) as pipe:

        async def consume() -> str:
            md5 = hashlib.md5()
            async for chunk in pipe:
                md5.update(chunk)
            return md5.hexdigest()

        async with asyncio.TaskGroup() as tg:
            hashing = tg.create_task(consume())
            copying = tg.create_task(
                copy(f"s3://{bucket}/k", pipe, endpoint_url=moto_server.endpoint_url)
            )
    assert hashing.result() == hashlib.md5(data).hexdigest()
    assert copying.result().verified == ("source:etag-md5",)
    assert budget.used == 0


async def test_twenty_objects_into_pipes_under_one_budget(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    data = payload(3 * MiB, seed=7)
    bucket = await make_bucket(objects={"k": data})
    budget = ByteBudget(2 * MiB)

    async def one() -> bytes:
        async with AsyncPipe(budget=budget) as pipe:

            async def consume() -> bytes:
                return b"".join([chunk async for chunk in pipe])

            async with asyncio.TaskGroup() as tg:
                got = tg.create_task(consume())
                tg.create_task(
                    copy(f"s3://{bucket}/k", pipe, endpoint_url=moto_server.endpoint_url)
                )
        return got.result()

    results = await asyncio.gather(*(one() for _ in range(20)))
    assert all(result == data for result in results)
    assert budget.used == 0


async def test_consumer_that_aborts_the_pipe_ends_the_download(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket(objects={"k": payload(20 * MiB, seed=8)})
    pipe = AsyncPipe(limit=MiB)

    async def consume() -> None:
        await pipe.read(1000)
        pipe.abort(RuntimeError("enough"))

    consumer = asyncio.create_task(consume())
    with pytest.raises(TransferError) as caught:
        await copy(f"s3://{bucket}/k", pipe, endpoint_url=moto_server.endpoint_url)
    await consumer
    assert caught.value.side == "destination"
    assert "enough" in str(caught.value)


async def test_object_to_a_writer(moto_server: MotoServer, make_bucket: MakeBucket) -> None:
    data = payload(2 * MiB + 5, seed=9)
    bucket = await make_bucket(objects={"k": data})
    writer = Writer()
    await copy(f"s3://{bucket}/k", writer, endpoint_url=moto_server.endpoint_url)
    assert b"".join(writer.parts) == data


# -- open_reader ---------------------------------------------------------------------


async def test_open_reader_reads_identical_bytes(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    data = payload(7 * MiB + 11, seed=10)
    bucket = await make_bucket(objects={"k": data})
    got = bytearray()
    async with open_reader(
        f"s3://{bucket}/k", limit=2 * MiB, endpoint_url=moto_server.endpoint_url
    ) as body:
        while chunk := await body.read(1_000_000):
            assert len(chunk) <= 1_000_000
            got += chunk
        assert await body.read(10) == b""
    assert bytes(got) == data


async def test_open_reader_readexactly_and_iteration(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    data = payload(300_000, seed=11)
    bucket = await make_bucket(objects={"k": data})
    async with open_reader(f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url) as body:
        head = await body.readexactly(1000)
        rest = b"".join([chunk async for chunk in body])
    assert head + rest == data


async def test_open_reader_resumes_a_broken_body(
    fault_proxy: FaultProxy, make_bucket: MakeBucket
) -> None:
    data = payload(6 * MiB, seed=12)
    bucket = await make_bucket(objects={"k": data})
    fault_proxy.reset(Match(operation="GetObject"), after_bytes=2 * MiB)
    async with open_reader(
        f"s3://{bucket}/k", endpoint_url=fault_proxy.endpoint_url, retries=FAST
    ) as body:
        got = await body.read()
    assert got == data
    assert len(fault_proxy.exchanges("GetObject")) == 2


async def test_open_reader_raises_at_the_end_when_a_byte_was_flipped(
    fault_proxy: FaultProxy, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket(objects={"k": payload(3 * MiB, seed=13)})
    fault_proxy.flip(Match(operation="GetObject"), offset=5, times=None)
    async with open_reader(
        f"s3://{bucket}/k", endpoint_url=fault_proxy.endpoint_url, retries=FAST
    ) as body:
        with pytest.raises(ChecksumMismatchError) as caught:
            async for _ in body:
                pass
    assert caught.value.side == "source"


async def test_leaving_open_reader_early_leaves_no_task(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket(objects={"k": payload(20 * MiB, seed=14)})
    before = asyncio.all_tasks()
    async with open_reader(
        f"s3://{bucket}/k", limit=MiB, endpoint_url=moto_server.endpoint_url
    ) as body:
        assert len(await body.read(10)) == 10
    assert asyncio.all_tasks() == before


async def test_open_reader_of_a_missing_bucket_raises_from_read(
    moto_server: MotoServer,
) -> None:
    async with open_reader(
        "s3://no-such-bucket-here/k", endpoint_url=moto_server.endpoint_url
    ) as body:
        with pytest.raises(NoSuchBucketError):
            await body.read()


async def test_open_reader_of_a_missing_key_raises_no_such_key_from_the_read(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    async with open_reader(
        f"s3://{bucket}/no/such/key", endpoint_url=moto_server.endpoint_url
    ) as body:
        with pytest.raises(NoSuchKeyError):
            await body.read()


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("s3://bucket/dir/", {}, "stream destination needs an s3:// object"),
        ("http://bucket/k", {}, "s3://"),
        ("s3://bucket/k", {"part_size": 1}, "part_size"),
    ],
    ids=["prefix", "not-s3", "bad-option"],
)
async def test_open_reader_with_bad_arguments_raises_value_error_at_entry(
    url: str, options: dict[str, object], message: str
) -> None:
    entered = False
    with pytest.raises(ValueError, match=message):
        async with open_reader(url, endpoint_url="http://127.0.0.1:9", **options):
            entered = True
    assert not entered


async def test_open_reader_with_a_share_larger_than_its_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        async with open_reader("s3://bucket/k", limit=2 * MiB, budget=ByteBudget(MiB)):
            pass


async def test_copy_into_a_pipe_with_a_bad_option_aborts_the_pipe_with_the_error() -> None:
    """The pipe's reader, in another task, learns why no byte comes, instead of waiting."""
    pipe = AsyncPipe(limit=MiB)
    reader = asyncio.create_task(pipe.read())
    with pytest.raises(ValueError, match="part_size") as caught:
        await copy("s3://bucket/k", pipe, part_size=1)
    with pytest.raises(PipeAbortedError) as aborted:
        await asyncio.wait_for(reader, timeout=10)
    assert aborted.value.__cause__ is caught.value


async def test_copy_into_a_pipe_of_a_missing_key_aborts_the_pipe_with_the_error(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    pipe = AsyncPipe(limit=MiB)
    with pytest.raises(NoSuchKeyError) as caught:
        await copy(f"s3://{bucket}/gone", pipe, endpoint_url=moto_server.endpoint_url)
    with pytest.raises(PipeAbortedError) as aborted:
        await pipe.read()
    assert aborted.value.__cause__ is caught.value


class Finished:
    """A progress listener with an event set when the copy ends, and its result."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.result: TransferResult | None = None

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        pass

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        pass

    def transfer_finished(self, result: TransferResult) -> None:
        self.result = result
        self.event.set()


async def test_stalled_reader_gets_the_stall_error_from_its_next_read(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    """A consumer that stops reading stalls its download; when it reads again it gets
    the copy's TransferError ("stalled"), not a bare PipeAbortedError."""
    bucket = await make_bucket(objects={"k": payload(6 * MiB, seed=19)})
    finished = Finished()
    policy = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.1, stall_timeout=0.5)
    async with open_reader(
        f"s3://{bucket}/k",
        limit=MiB,
        retries=policy,
        progress=finished,
        endpoint_url=moto_server.endpoint_url,
    ) as body:
        assert len(await body.read(10)) == 10
        await asyncio.wait_for(finished.event.wait(), timeout=30)  # the reader stops meanwhile
        with pytest.raises(TransferError, match="stalled") as caught:
            while await body.read(MiB):
                pass
    assert finished.result is not None and caught.value is finished.result.error


# -- open_writer ---------------------------------------------------------------------


async def test_open_writer_writes_identical_bytes(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    data = payload(19 * MiB, seed=15)
    async with open_writer(
        f"s3://{bucket}/k", limit=30_000_000, endpoint_url=moto_server.endpoint_url
    ) as body:
        async for chunk in chunks(data, 300_000):
            await body.write(chunk)
    assert body.result is not None and body.result.parts == 3
    assert await get(s3_client, bucket, "k") == data


async def test_exception_inside_open_writer_leaves_no_object_and_no_upload(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    with pytest.raises(RuntimeError, match="the report failed"):
        async with open_writer(f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url) as body:
            await body.write(payload(10 * MiB, seed=16))
            raise RuntimeError("the report failed")
    assert await open_uploads(s3_client, bucket) == []
    assert not await key_exists(s3_client, bucket, "k")


async def test_cancelled_open_writer_leaves_no_object_and_no_upload(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    wrote = asyncio.Event()

    async def write_forever() -> None:
        async with open_writer(f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url) as body:
            await body.write(payload(9 * MiB, seed=17))
            wrote.set()
            await asyncio.Event().wait()

    await cancel_once(wrote, write_forever())
    assert await open_uploads(s3_client, bucket) == []
    assert not await key_exists(s3_client, bucket, "k")


async def test_open_writer_to_a_missing_bucket_raises(moto_server: MotoServer) -> None:
    with pytest.raises(NoSuchBucketError):
        async with open_writer(
            "s3://no-such-bucket-here/k", endpoint_url=moto_server.endpoint_url
        ) as body:
            for _ in range(20):
                await body.write(payload(MiB, seed=18))


async def test_stream_to_a_local_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stream source needs an s3:// object"):
        await copy(chunks(b"x"), str(tmp_path / "f"))
    with pytest.raises(PipeAbortedError):
        pipe = AsyncPipe(limit=10)
        pipe.abort()
        await pipe.read()


# -- open_reader under one shared budget, measured -------------------------------------

_READERS = """
import zlib
from aqueuepipe import ByteBudget, open_reader
from aqueuepipe.s3 import create_client

async def read_slowly(url, budget, client):
    crc, size = 0, 0
    async with open_reader(url, budget=budget, client=client) as body:
        while chunk := await body.read(64 * 1024):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            await asyncio.sleep(0.001)  # a consumer slower than the download
    return [size, crc]

async def run(keys):
    budget = ByteBudget(int(sys.argv[2]))
    async with create_client(endpoint_url=sys.argv[1], max_pool_connections=64) as client:
        return await asyncio.gather(
            *(read_slowly(f"s3://{sys.argv[3]}/{key}", budget, client) for key in keys)
        )

async def warm_up():
    await run(["warm", "warm"])

async def workload():
    return await run([f"r{i}" for i in range(int(sys.argv[4]))])
"""


async def test_sixteen_slow_readers_sharing_a_budget_stay_within_it(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """16 open_readers of 12 MiB objects share one 16 MiB budget, their consumers
    slower than the downloads: the process grows by at most the budget plus 20 MiB
    (sockets, the clients' buffers, the allocator), not 16 read-aheads."""
    bucket = await make_bucket()
    data = payload(12 * MiB, seed=20)
    await asyncio.gather(*(put(s3_client, bucket, f"r{i}", data) for i in range(16)))
    await put(s3_client, bucket, "warm", payload(256 * 1024, seed=21))
    limit = 16 * MiB

    measured = await measure_growth(_READERS, moto_server.endpoint_url, str(limit), bucket, "16")

    assert measured.report == [[len(data), zlib.crc32(data)]] * 16
    print(f"peak RSS growth {measured.mib:.1f} MiB")  # for the record (pytest -s)
    assert measured.growth <= limit + 20 * MiB, f"{measured.mib:.1f} MiB"


# -- what a stream holds of a shared budget -------------------------------------------


async def test_a_stream_part_grows_only_as_its_bytes_arrive(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """A client that stops sending after 1.5 MiB of an 8 MiB part holds about twice
    what it sent of the shared budget, not the whole part (the first part used to
    grow to 8 MiB at its first 1 MiB), and the rest of the budget stays free."""
    bucket = await make_bucket()
    budget = ByteBudget(32 * MiB)
    paused, resume = asyncio.Event(), asyncio.Event()
    data = os.urandom(12 * MiB)

    async def client() -> AsyncIterator[bytes]:
        yield data[: 3 * MiB // 2]
        paused.set()
        await resume.wait()
        yield data[3 * MiB // 2 :]

    task = asyncio.create_task(
        copy(client(), f"s3://{bucket}/k", budget=budget, endpoint_url=moto_server.endpoint_url)
    )
    await paused.wait()
    await run_ready()  # the copy takes what it would take of the bytes it has
    assert budget.used <= 2 * MiB, budget.used
    resume.set()
    result = await task
    assert result.size == len(data) and budget.used == 0
    assert await get(s3_client, bucket, "k") == data


async def test_open_reader_takes_its_share_and_the_bodys_buffer_when_it_starts(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    """A reader holds its share (and what the HTTP client buffers of the body) from
    the start to the end of its block, and never asks the budget for more: so
    readers that stop reading cannot leave another holding part of the budget
    while it waits for the rest."""
    data = payload(3 * MiB, seed=5)
    bucket = await make_bucket(objects={"k": data})
    budget = ByteBudget(16 * MiB)
    async with open_reader(
        f"s3://{bucket}/k", limit=MiB, budget=budget, endpoint_url=moto_server.endpoint_url
    ) as body:
        held = budget.used
        assert MiB < held <= 2 * MiB
        got = await body.read(64 * 1024)
        while chunk := await body.read(64 * 1024):
            got += chunk
            assert budget.used == held
    assert got == data and budget.used == 0


# -- streams longer than 10,000 parts of one size ---------------------------------------


@pytest.fixture
def few_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams' parts double every 2 parts, and an upload has at most 6 (the internal
    settings behind S3's 10,000 parts and their tiers of 1,000)."""
    monkeypatch.setattr("aqueuepipe.s3._parts.STREAM_TIER_PARTS", 2)
    monkeypatch.setattr("aqueuepipe._multipart.MAX_PARTS", 6)


async def _stream_in_5_mib_parts(
    server: MotoServer, bucket: str, data: bytes, *, limit: int
) -> TransferResult:
    """``data`` as a stream of unknown length (1 MiB chunks) into ``s3://bucket/k``."""
    return await copy(
        chunks(data, 1 << 20),
        f"s3://{bucket}/k",
        part_size=5 * MiB,
        limit=limit,
        endpoint_url=server.endpoint_url,
    )


@pytest.mark.usefixtures("few_parts")
async def test_a_stream_longer_than_the_parts_of_one_size_grows_its_parts(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """Parts of 5, 5, 10, 10 and 15 MiB (the fifth could grow to 20) for a 45 MiB
    stream of unknown length: it fits where 6 parts of 5 MiB (30 MiB) would not,
    verified."""
    bucket = await make_bucket()
    data = os.urandom(45 * MiB)
    result = await _stream_in_5_mib_parts(moto_server, bucket, data, limit=40 * MiB)
    assert (result.size, result.parts) == (len(data), 5)
    assert result.verified
    assert await get(s3_client, bucket, "k") == data
    sizes = [
        (await s3_client.head_object(Bucket=bucket, Key="k", PartNumber=n))["ContentLength"]
        for n in range(1, 6)
    ]
    assert sizes == [5 * MiB, 5 * MiB, 10 * MiB, 10 * MiB, 15 * MiB]


@pytest.mark.usefixtures("few_parts")
async def test_a_stream_longer_than_its_parts_can_hold_fails_clearly_and_leaves_nothing(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """Parts may grow to half the limit (10 MiB under 20 MiB): 6 parts hold 5, 5,
    10, 10, 10 and 10 MiB.  A 60 MiB stream fails once they are full, naming the
    bound and what to change, and leaves no object and no open upload."""
    bucket = await make_bucket()
    with pytest.raises(TransferError, match=r"longer than the 6 parts .* pass a larger limit"):
        await _stream_in_5_mib_parts(moto_server, bucket, os.urandom(60 * MiB), limit=20 * MiB)
    assert not await key_exists(s3_client, bucket, "k")
    assert await open_uploads(s3_client, bucket) == []
    # Exactly what the parts hold is no error: the end is found without a 7th part.
    data = os.urandom(50 * MiB)
    result = await _stream_in_5_mib_parts(moto_server, bucket, data, limit=20 * MiB)
    assert (result.size, result.parts) == (len(data), 6)
    assert await get(s3_client, bucket, "k") == data
