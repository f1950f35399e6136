"""The memory promise, measured from outside: peak RSS growth of a fresh process.

Every byte the library holds for a copy is in the budget while it is referenced,
so N concurrent copies under one budget of L bytes grow a process by about L, not
N parts.  The slack allowed beyond the limit (:data:`SLACK`) covers what is not
the copies' bodies: aiohttp's and the kernel's socket buffers, the threads that
hash, and the allocator's free lists.

Two workloads also hold a little per copy outside the budget, by design or as a
known gap, allowed as :data:`OUTSIDE_PER_COPY` each: an ``open_writer``'s own pipe
(at most 256 KiB: sharing the budget with the upload's parts could deadlock), and a
download's open response, which aiohttp reads ahead into its buffer (up to twice
the 256 KiB read size) while the copy waits for budget (benchmarks/README.md,
"Memory under concurrency").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aqueuepipe import ByteBudget, copy
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, MotoServer, get, payload, put
from .._memory import SLACK, Growth, measure_growth

pytestmark = pytest.mark.slow

LIMIT = 16 * MiB
OUTSIDE_PER_COPY = 1 * MiB

# The end of the upload workloads: ``count`` uploads of ``size`` bytes at once, each
# made by the script's ``upload(client, budget, url, size)``, under one budget.
_UPLOADS = """
async def run(count, size, name):
    budget = ByteBudget(int(sys.argv[2]))
    async with create_client(endpoint_url=sys.argv[1], max_pool_connections=64) as client:
        results = await asyncio.gather(*(
            upload(client, budget, f"s3://{sys.argv[3]}/{name}{i}", size) for i in range(count)
        ))
    assert all(r is not None and r.ok for r in results)
    return sum(r.size for r in results)

async def warm_up():
    await run(2, 64 * 1024, "warm")

async def workload():
    return await run(int(sys.argv[4]), 24 * 1024 * 1024, NAME)
"""

# The end of the workloads that copy objects o0, o1... (and "warm" first) at once:
# the script's ``copy_all(client, keys, *place)`` copies them and returns the results.
_COPIES = """
async def run(keys, *place):
    async with create_client(endpoint_url=sys.argv[1], max_pool_connections=64) as client:
        results = await copy_all(client, keys, *place)
    assert len(results) == len(keys) and all(r.ok for r in results), results
    return sum(r.size for r in results)
"""

_STREAMS = (
    """
import os
from aqueuepipe import ByteBudget, copy
from aqueuepipe.s3 import create_client

NAME = "s"
BLOCK = os.urandom(64 * 1024)

async def chunks(size):
    for _ in range(size // len(BLOCK)):
        yield BLOCK  # the producer's own block, never a new allocation

async def upload(client, budget, url, size):
    return await copy(chunks(size), url, budget=budget, client=client)
"""
    + _UPLOADS
)

_S3_TO_S3 = (
    """
from aqueuepipe import ByteBudget, copy
from aqueuepipe.s3 import create_client

async def copy_all(client, keys, dst_prefix):
    budget = ByteBudget(int(sys.argv[2]))
    return await asyncio.gather(*(
        copy(f"s3://{sys.argv[3]}/{k}", f"s3://{sys.argv[3]}/{dst_prefix}{k}",
             budget=budget, client=client, part_concurrency=2, server_side=False)
        for k in keys
    ))

async def warm_up():
    await run(["warm"], "w-")

async def workload():
    return await run([f"o{i}" for i in range(int(sys.argv[4]))], "copy-")
"""
    + _COPIES
)

_WRITERS = (
    """
from aqueuepipe import ByteBudget, open_writer
from aqueuepipe.s3 import create_client

NAME = "w"
# A buffer the producer reuses, as a socket reader does: every write is copied by
# the writer's pipe, so what the library holds is its own bytes.
BLOCK = bytearray(64 * 1024)

async def upload(client, budget, url, size):
    async with open_writer(url, budget=budget, client=client) as body:
        for _ in range(size // len(BLOCK)):
            await body.write(BLOCK)
    return body.result
"""
    + _UPLOADS
)

_DOWNLOADS = (
    """
import os
from aqueuepipe import ByteBudget, copy
from aqueuepipe.s3 import create_client

async def copy_all(client, keys, directory):
    budget = ByteBudget(int(sys.argv[2]))
    os.makedirs(directory, exist_ok=True)
    return await asyncio.gather(*(
        copy(f"s3://{sys.argv[3]}/{k}", os.path.join(directory, k), budget=budget,
             client=client)
        for k in keys
    ))

async def warm_up():
    await run(["warm"], os.path.join(sys.argv[4], "warm"))

async def workload():
    return await run([f"o{i}" for i in range(int(sys.argv[5]))], sys.argv[4])
"""
    + _COPIES
)

_COPY_MANY = (
    """
from aqueuepipe import copy_many
from aqueuepipe.s3 import create_client

async def copy_all(client, keys, dst_prefix):
    bucket = sys.argv[3]
    return [r async for r in copy_many(
        [(f"s3://{bucket}/{k}", f"s3://{bucket}/{dst_prefix}{k}") for k in keys],
        limit=int(sys.argv[2]), concurrency=16, client=client, server_side=False,
    )]

async def warm_up():
    await run(["warm"], "w-")

async def workload():
    return await run([f"o{i}" for i in range(int(sys.argv[4]))], "many-")
"""
    + _COPIES
)


async def put_sixteen(client: S3Client, bucket: str, seed: int) -> bytes:
    """Objects o0 to o15 of the same 24 MiB, and a small "warm"; return the 24 MiB."""
    data = payload(24 * MiB, seed=seed)
    await asyncio.gather(*(put(client, bucket, f"o{i}", data) for i in range(16)))
    await put(client, bucket, "warm", b"w" * 1000)
    return data


def check_growth(measured: Growth, count: int, allowed: int) -> None:
    """``count`` copies of 24 MiB were made, and the process grew by ``allowed`` at most."""
    assert measured.report == count * 24 * MiB
    print(f"peak RSS growth {measured.mib:.1f} MiB")  # for the record (pytest -s)
    assert measured.growth <= allowed, f"{measured.mib:.1f} MiB"


@pytest.mark.parametrize("count", [1, 4, 16])
async def test_concurrent_stream_uploads_stay_within_the_limit(
    moto_server: MotoServer, make_bucket: MakeBucket, count: int
) -> None:
    """16 x 24 MiB streams under 16 MiB added 145 MiB before each part's buffer
    was freed with its bytes in the budget."""
    bucket = await make_bucket()
    measured = await measure_growth(
        _STREAMS, moto_server.endpoint_url, str(LIMIT), bucket, str(count)
    )
    check_growth(measured, count, LIMIT + SLACK)


@pytest.mark.parametrize(
    ("script", "last_copy"),
    [(_S3_TO_S3, "copy-o15"), (_COPY_MANY, "many-o15")],
    ids=["copy", "copy_many"],
)
async def test_sixteen_s3_to_s3_copies_at_once_stay_within_the_limit(
    moto_server: MotoServer,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    script: str,
    last_copy: str,
) -> None:
    bucket = await make_bucket()
    data = await put_sixteen(s3_client, bucket, seed=1)
    measured = await measure_growth(script, moto_server.endpoint_url, str(LIMIT), bucket, "16")
    check_growth(measured, 16, LIMIT + SLACK + 16 * OUTSIDE_PER_COPY)
    assert await get(s3_client, bucket, last_copy) == data


async def test_tiny_stream_does_not_wait_for_a_whole_part_of_a_busy_budget(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """Holders that stopped moving keep 12 of 16 MiB: a 4-byte upload needs 4
    bytes, not the 8 MiB of a part."""
    bucket = await make_bucket()
    budget = ByteBudget(LIMIT)
    await budget.acquire(12 * MiB)

    async def four_bytes():  # type: ignore[no-untyped-def]
        yield b"tiny"

    async with asyncio.timeout(10):
        result = await copy(
            four_bytes(),
            f"s3://{bucket}/tiny",
            budget=budget,
            endpoint_url=moto_server.endpoint_url,
        )
    assert result.ok and await get(s3_client, bucket, "tiny") == b"tiny"
    assert budget.used == 12 * MiB


async def test_concurrent_writers_stay_within_the_limit(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """16 open_writer blocks, each writing 24 MiB in 64 KiB writes, share 16 MiB."""
    bucket = await make_bucket()
    measured = await measure_growth(_WRITERS, moto_server.endpoint_url, str(LIMIT), bucket, "16")
    check_growth(measured, 16, LIMIT + SLACK + 16 * OUTSIDE_PER_COPY)
    head = await s3_client.head_object(Bucket=bucket, Key="w15")
    assert head["ContentLength"] == 24 * MiB


async def test_concurrent_downloads_to_files_stay_within_the_limit(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    data = await put_sixteen(s3_client, bucket, seed=2)
    measured = await measure_growth(
        _DOWNLOADS, moto_server.endpoint_url, str(LIMIT), bucket, str(tmp_path), "16"
    )
    check_growth(measured, 16, LIMIT + SLACK + 16 * OUTSIDE_PER_COPY)
    assert (tmp_path / "o15").read_bytes() == data
