"""aqueuepipe.distributed: copy_prefix on a Dask LocalCluster of two worker processes.

Every test talks HTTP to the session's moto server process; the workers are real
processes (``processes=True``) with the fake credentials and the server's
endpoint in their environment.  The data set is made once per module: 2,000
small objects and six of 20 MB (three uploaded in one PUT, three in 5 MiB parts)
under ``data/``, and a few more under ``few/`` for the quick tests.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import io
import json
import os
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

distributed = pytest.importorskip("distributed")

from aqueuepipe import NoSuchBucketError, TransferResult  # noqa: E402
from aqueuepipe.checksums import etag_evidence  # noqa: E402
from aqueuepipe.cli import main  # noqa: E402
from aqueuepipe.distributed import (  # noqa: E402
    CopySummary,
    ObjectOutcome,
    copy_prefix,
    copy_prefix_async,
)

from ._helpers import MiB, MotoServer, bucket_name, interrupted  # noqa: E402
from ._memory import SLACK  # noqa: E402
from .faultproxy import MAX_STALL_SECONDS, Exchange, FaultProxy, Match  # noqa: E402

pytestmark = pytest.mark.dask

MB = 1000 * 1000
LIMIT = 64 * MiB  # per worker: holds a 20 MB object copied with one PutObject
SMALL_OBJECTS = 2000
LARGE_SIZE = 20 * MB
SHARD = 250


# -- the data set ---------------------------------------------------------------------


def small_body(i: int) -> bytes:
    return random.Random(i).randbytes(i % 1500)  # 0 to 1,499 bytes, one of them empty


def large_body(i: int) -> bytes:
    return random.Random(10_000 + i).randbytes(LARGE_SIZE)


def small_key(i: int) -> str:
    # Spaces and non-ASCII too: keys travel through listings, pickles and JSON.
    return f"small/{i:05}" if i % 500 else f"small/ü ñ {i:05}"


@dataclass(frozen=True)
class Source:
    """The module's source bucket: what it holds, for checking copies against."""

    bucket: str
    objects: dict[str, tuple[int, str]]  # key below data/ -> (size, ETag)
    few: dict[str, tuple[int, str]]  # key below few/ -> (size, ETag)


def upload_multipart(
    s3: Any, bucket: str, key: str, body: bytes, part_size: int, checksum: str | None = "CRC32"
) -> None:
    """A multipart object as boto3 makes it: ``part_size`` parts, each with a
    ``checksum`` (None: none, boto3's default)."""
    asked = {} if checksum is None else {"ChecksumAlgorithm": checksum}
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **asked)["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, len(body), part_size), start=1):
        response = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body[offset : offset + part_size],
            **asked,
        )
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if checksum is not None:
            part[f"Checksum{checksum}"] = response[f"Checksum{checksum}"]
        parts.append(part)
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def listing(s3: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key below ``prefix`` -> (size, ETag without quotes)."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"][len(prefix) :]] = (entry["Size"], entry["ETag"].strip('"'))
    return found


@pytest.fixture(scope="module")
def s3(boto3_client: Any) -> Any:
    """conftest's boto3 client of the moto server, by a shorter name."""
    return boto3_client


def new_bucket(s3: Any, prefix: str = "dist") -> str:
    name = bucket_name(prefix)
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def source(s3: Any) -> Source:
    bucket = new_bucket(s3, "src")
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=bucket, Key=f"data/{small_key(i)}", Body=small_body(i)
                ),
                range(SMALL_OBJECTS),
            )
        )
    for i in range(6):
        key = f"data/large/{i}.bin"
        if i % 2:  # parts of 5 MiB, not the 8 MiB aqueuepipe would choose
            upload_multipart(s3, bucket, key, large_body(i), 5 * MiB)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=large_body(i))
    for i in range(40):
        s3.put_object(Bucket=bucket, Key=f"few/{i:03}", Body=small_body(i))
    # A SHA-256 checksum, which copies made without one never match.
    body = large_body(99)[: 12 * MiB]
    upload_multipart(s3, bucket, "few/multi.bin", body, 5 * MiB, checksum="SHA256")
    return Source(bucket, listing(s3, bucket, "data/"), listing(s3, bucket, "few/"))


# -- the cluster ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker_env(fake_aws_environment: Mapping[str, str], moto_server: MotoServer) -> dict[str, str]:
    """The tests' AWS environment, with the server as the endpoint."""
    return {**fake_aws_environment, "AWS_ENDPOINT_URL": moto_server.endpoint_url}


@pytest.fixture(scope="module")
def cluster(worker_env: dict[str, str]) -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # No dashboard, and its HTTP server (health, metrics) off the default port 8787.
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        env=worker_env,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest_asyncio.fixture
async def async_client(cluster: Any) -> AsyncIterator[Any]:
    async with distributed.Client(cluster.scheduler_address, asynchronous=True) as dask_client:
        yield dask_client


def read_manifest(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def same_etag(copy: str, source: str) -> bool:
    """The source's ETag, or (a single PUT's copy to a server that does not check
    digests, sent as one part) the ETag of one part holding the same bytes."""
    evidence = etag_evidence({"ETag": copy}), etag_evidence({"ETag": source})
    return None not in evidence and evidence[0].same_bytes(evidence[1])  # type: ignore[union-attr]


def assert_same_objects(
    copies: dict[str, tuple[int, str]], objects: dict[str, tuple[int, str]]
) -> None:
    """The same keys, each with the same size and an ETag proving the same bytes."""
    assert copies.keys() == objects.keys()
    for key, (size, etag) in copies.items():
        assert size == objects[key][0], key
        assert same_etag(etag, objects[key][1]), key


def check_copies(s3: Any, source: Source, bucket: str, prefix: str = "copy/") -> None:
    """Every object at the destination, with the source's size and ETag, and nothing else."""
    assert_same_objects(listing(s3, bucket, prefix), source.objects)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def check_bytes(s3: Any, bucket: str, prefix: str = "copy/") -> None:
    """The bytes of a sample of small objects and of every large one."""
    for i in (*range(0, SMALL_OBJECTS, 97), 500):
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}{small_key(i)}")["Body"].read()
        assert hashlib.md5(body).digest() == hashlib.md5(small_body(i)).digest()
    for i in range(6):
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}large/{i}.bin")["Body"].read()
        assert hashlib.md5(body).digest() == hashlib.md5(large_body(i)).digest()


def copy_data(client: Any, source: Source, bucket: str, **options: Any) -> CopySummary:
    """copy_prefix of the data set (data/) to copy/ in ``bucket``, in shards of SHARD."""
    return copy_prefix(
        f"s3://{source.bucket}/data/",
        f"s3://{bucket}/copy/",
        client=client,
        shard_objects=SHARD,
        per_worker_limit=LIMIT,
        **options,
    )


@dataclass(frozen=True)
class FirstCopy:
    summary: CopySummary
    bucket: str
    manifest: Path
    #: Each worker's peak RSS growth during the copy (VmHWM over its RSS before).
    worker_growth: dict[str, int]


def _worker_memory() -> tuple[Any, Any]:
    """Two functions for ``client.run``, made here so that they are sent by value
    (a worker need not import this module): one warms a worker up with a copy of
    one object, restarts its peak RSS from now and returns its RSS; the other
    returns its peak RSS."""

    def status(field: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(field)

    async def baseline(src: str, dst: str) -> int:
        import os

        import aqueuepipe

        # A warm-up of the same kind: imports, the client's models, thread pools.
        await aqueuepipe.copy(src, f"{dst}{os.getpid()}", limit=LIMIT)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status("VmRSS")

    def peak() -> int:
        return status("VmHWM")

    return baseline, peak


@pytest.fixture(scope="module")
def first_copy(
    s3: Any, source: Source, client: Any, moto_server: MotoServer, tmp_path_factory: Any
) -> FirstCopy:
    bucket = new_bucket(s3, "dst")
    manifest = tmp_path_factory.mktemp("manifest") / "copy.jsonl"
    baseline, peak = _worker_memory()
    warm = f"s3://{source.bucket}/data/large/0.bin", f"s3://{bucket}/warm/"
    baselines = client.run(baseline, *warm)
    summary = copy_data(
        client,
        source,
        bucket,
        checksums=("md5", "sha256"),
        manifest=manifest,
        endpoint_url=moto_server.endpoint_url,
    )
    peaks = client.run(peak)
    growth = {worker: peaks[worker] - baselines[worker] for worker in baselines}
    return FirstCopy(summary, bucket, manifest, growth)


# -- a whole prefix -------------------------------------------------------------------


def test_copy_prefix_copies_every_object_verified(
    first_copy: FirstCopy, source: Source, s3: Any
) -> None:
    summary = first_copy.summary
    assert summary.failures == 0
    assert summary.objects == len(source.objects) == SMALL_OBJECTS + 6
    assert summary.bytes == sum(size for size, _ in source.objects.values())
    assert summary.skipped == 0
    assert summary.shards == -(-(SMALL_OBJECTS + 6) // SHARD)
    assert summary.mb_per_s > 0
    # Same ETags as the source, multipart ones included: the part layout was kept.
    check_copies(s3, source, first_copy.bucket)
    check_bytes(s3, first_copy.bucket)


def test_manifest_has_one_line_per_key(first_copy: FirstCopy, source: Source) -> None:
    lines = read_manifest(first_copy.manifest)
    assert len(lines) == len(source.objects)
    assert {line["key"] for line in lines} == {f"data/{key}" for key in source.objects}
    for line in lines:
        relative = line["key"].removeprefix("data/")
        assert line["dst_key"] == f"copy/{relative}"
        assert line["status"] == "copied" and line["error"] is None
        size, etag = source.objects[relative]
        assert line["size"] == size and same_etag(line["etag"], etag)
        assert line["worker"].startswith("tcp://127.0.0.1:")
        assert set(line["checksums"]) == {"md5", "sha256"}
        if line["etag"].endswith("-1"):  # one part: the ETag is the MD5 of the MD5 computed
            md5 = bytes.fromhex(line["checksums"]["md5"])
            assert hashlib.md5(md5).hexdigest() + "-1" == line["etag"]


def test_workers_grow_by_at_most_their_limit_plus_the_slack(first_copy: FirstCopy) -> None:
    """Measured from outside the library: each worker process's peak RSS growth
    during the copy (the kernel's VmHWM over its RSS before), not the budget's own
    count (which cannot exceed the limit by construction)."""
    summary = first_copy.summary
    assert summary.worker_limit == LIMIT
    assert len(summary.worker_peaks) == 2 and all(summary.worker_peaks.values())
    assert len(first_copy.worker_growth) == 2
    for worker, growth in first_copy.worker_growth.items():
        print(f"{worker}: peak RSS growth {growth / MiB:.1f} MiB")  # pytest -s
        assert growth <= LIMIT + SLACK, f"{worker}: {growth / MiB:.1f} MiB"


def test_rerun_after_completion_copies_nothing(
    first_copy: FirstCopy, source: Source, client: Any, endpoint: str
) -> None:
    summary = copy_data(client, source, first_copy.bucket, skip_existing=True)
    assert (summary.objects, summary.bytes, summary.failures) == (0, 0, 0)
    assert summary.skipped == len(source.objects)
    assert summary.skipped_bytes == sum(size for size, _ in source.objects.values())


def test_rerun_copies_exactly_the_deleted_objects(
    first_copy: FirstCopy, source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    # Eight of any kind, and one large object of each kind (single-part, multipart).
    small = sorted(key for key in source.objects if key.startswith("small/"))
    deleted = [*random.Random(8).sample(small, 8), "large/0.bin", "large/1.bin"]
    for key in deleted:
        s3.delete_object(Bucket=first_copy.bucket, Key=f"copy/{key}")
    copied: list[ObjectOutcome] = []
    summary = copy_data(
        client,
        source,
        first_copy.bucket,
        skip_existing=True,
        on_outcome=lambda outcome: copied.append(outcome) if outcome.status == "copied" else None,
    )
    assert summary.objects == 10
    assert sorted(outcome.key.removeprefix("data/") for outcome in copied) == sorted(deleted)
    assert summary.skipped == len(source.objects) - 10
    check_copies(s3, source, first_copy.bucket)


# -- re-runs decided from listings -----------------------------------------------------

#: What a re-run over objects all present may ask the server: listings (the
#: driver's of the source, each shard's of the destination) and each shard's
#: look for multipart uploads an earlier attempt left.
LISTINGS_ONLY = {"ListObjectsV2", "ListMultipartUploads"}


def rerun(moto_server: MotoServer, copy: Callable[..., Any], **options: Any) -> tuple[Any, Any]:
    """Run ``copy`` again with skip_existing=True: its summary and the requests the
    server counted for it."""
    moto_server.reset_requests()
    summary = copy(skip_existing=True, **options)
    counts = moto_server.requests().counts
    print(f"re-run requests: {dict(counts)}")  # pytest -s
    return summary, counts


def put_objects(s3: Any, bucket: str, objects: Mapping[str, bytes]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: s3.put_object(Bucket=bucket, Key=item[0], Body=item[1]),
                objects.items(),
            )
        )


@pytest.mark.parametrize(
    "present", [200, pytest.param(1000, marks=pytest.mark.slow, id="1000")], ids=str
)
def test_rerun_over_present_objects_makes_only_listings(
    present: int, client: Any, s3: Any, moto_server: MotoServer, endpoint: str
) -> None:
    """Issue 20: each shard decides from a listing of the destination, as sync does,
    with no request per object (it made two HeadObject per object)."""
    bucket = new_bucket(s3, "present")
    objects = {f"src/{i:05}": small_body(i) for i in range(present)}
    # Objects around the copies' keys at the destination, which no shard skips for.
    put_objects(s3, bucket, {**objects, "dst/0": b"before", "dst/99999": b"after"})
    copy = partial(
        copy_prefix,
        f"s3://{bucket}/src/",
        f"s3://{bucket}/dst/",
        client=client,
        shard_objects=present // 4,
        per_worker_limit=LIMIT,
    )
    assert copy().objects == present
    statuses: list[str] = []
    summary, counts = rerun(moto_server, copy, on_outcome=lambda o: statuses.append(o.status))
    assert set(counts) <= LISTINGS_ONLY, counts
    # One page per shard's listing (bounded to its keys), one of the source.
    assert counts["ListObjectsV2"] <= 1 + summary.shards
    assert statuses == ["skipped"] * present
    assert (summary.objects, summary.skipped, summary.failures) == (0, present, 0)


def test_copy_of_a_multipart_source_gets_its_etag_and_is_skipped_from_listings(
    client: Any, s3: Any, moto_server: MotoServer, endpoint: str
) -> None:
    """Sources made by boto3 in 5 MiB and 16 MiB parts (not aqueuepipe's 8 MiB),
    no checksum: the core copies them in their layout, so a re-run decides from
    the listings and asks nothing per object."""
    bucket = new_bucket(s3, "layout")
    body = large_body(20)[: 12 * MiB]
    upload_multipart(s3, bucket, "src/five.bin", body, 5 * MiB, checksum=None)
    upload_multipart(s3, bucket, "src/sixteen.bin", large_body(21), 16 * MiB, checksum=None)
    copy = partial(
        copy_prefix,
        f"s3://{bucket}/src/",
        f"s3://{bucket}/dst/",
        client=client,
        per_worker_limit=LIMIT,
    )
    assert copy().objects == 2
    sources, copies = listing(s3, bucket, "src/"), listing(s3, bucket, "dst/")
    assert [etag for _, etag in sources.values()] == [
        etag for _, etag in copies.values()
    ]  # "...-3" and "...-2"
    again, counts = rerun(moto_server, copy)
    assert set(counts) <= LISTINGS_ONLY, counts
    assert (again.objects, again.skipped) == (0, 2)


def test_rerun_copies_what_the_listings_show_different_without_asking(
    source: Source, client: Any, s3: Any, moto_server: MotoServer, endpoint: str
) -> None:
    """Another size, or another MD5 ETag of the same size: copied again with no
    check of the destination first; the others skipped with no request each."""
    bucket = new_bucket(s3, "differ")
    copy = partial(
        copy_prefix,
        f"s3://{source.bucket}/few/",
        f"s3://{bucket}/few/",
        client=client,
        per_worker_limit=LIMIT,
    )
    assert copy().objects == len(source.few)
    s3.put_object(Bucket=bucket, Key="few/005", Body=b"x" * source.few["005"][0])  # same size
    s3.put_object(Bucket=bucket, Key="few/006", Body=b"shorter")
    summary, counts = rerun(moto_server, copy)
    assert (summary.objects, summary.skipped) == (2, len(source.few) - 2)
    # At most the HeadObject of its source a copy made by the server makes.
    assert counts.get("HeadObject", 0) <= summary.objects, counts
    assert_same_objects(listing(s3, bucket, "few/"), source.few)


# -- a worker lost mid-shard ----------------------------------------------------------


@dataclass(frozen=True)
class DieDuringMultipartCopy:
    """A progress listener that kills its worker process once a multipart part is uploaded.

    Once per cluster: the first worker to create ``marker`` dies, with the upload
    of a 20 MB object open on the server and its shard half done.
    """

    marker: str

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        pass

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        if nbytes != 5 * MiB:  # only a part of a multipart copy
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {dst}".encode())
        os.close(fd)
        os._exit(1)

    def transfer_finished(self, result: TransferResult) -> None:
        pass


@pytest.mark.slow
def test_worker_lost_mid_shard_still_copies_every_object_once(
    source: Source, client: Any, s3: Any, endpoint: str, tmp_path: Path
) -> None:
    bucket = new_bucket(s3, "dst")
    marker = tmp_path / "killed"
    manifest = tmp_path / "copy.jsonl"
    pids_before = set(client.run(os.getpid).values())
    summary = copy_data(
        client,
        source,
        bucket,
        manifest=manifest,
        worker_progress=DieDuringMultipartCopy(str(marker)),
    )
    killed_pid = int(marker.read_text().split()[0])
    assert killed_pid in pids_before
    assert killed_pid not in client.run(os.getpid).values()  # the nanny started a new one
    assert summary.failures == 0
    assert summary.objects + summary.skipped == len(source.objects)
    lines = read_manifest(manifest)
    assert sorted(line["key"] for line in lines) == sorted(f"data/{k}" for k in source.objects)
    assert {line["status"] for line in lines} <= {"copied", "skipped"}
    check_copies(s3, source, bucket)  # ETags as the source's; no open multipart uploads
    check_bytes(s3, bucket)


# -- ending a run early ---------------------------------------------------------------
#
# Every UploadPart to the destination is held at a fault proxy, so each multipart copy
# stalls with its upload open, and the run can only end early: the driver must cancel
# the shards in flight, whose copies abort their uploads, and end within seconds
# (well before the proxy's stall would let anything go).


class OutcomeRejected(Exception):
    """What the ``on_outcome`` callbacks below raise."""


@dataclass
class StalledUploads:
    """The proxy the workers copy through, holding every UploadPart of a large
    object to ``bucket``."""

    proxy: FaultProxy
    bucket: str
    first: asyncio.Event  # set when the first UploadPart arrived: an upload is open

    def raise_once_stalled(self, outcome: ObjectOutcome) -> None:
        """An ``on_outcome`` that raises from the first outcome after an upload stalled."""
        if self.first.is_set():
            raise OutcomeRejected(outcome.key)

    def open_uploads(self, s3: Any) -> list[Any]:
        return list(s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))


@pytest_asyncio.fixture
async def stalled(fault_proxy: FaultProxy, s3: Any) -> StalledUploads:
    bucket = new_bucket(s3, "dst")
    first = asyncio.Event()

    def arrived(exchange: Exchange) -> bool:
        # Only the large objects' parts: on plain moto small objects go as one-part
        # uploads too, and they must keep finishing.
        if "/large/" not in (exchange.key or ""):
            return False
        first.set()
        return True

    fault_proxy.stall(
        Match(operation="UploadPart", bucket=bucket, where=arrived),
        seconds=MAX_STALL_SECONDS,
        times=None,
    )
    return StalledUploads(fault_proxy, bucket, first)


def stalling_run(source: Source, stalled: StalledUploads, **options: Any) -> dict[str, Any]:
    """copy_prefix arguments for data/ through the proxy: a run the stalls cannot finish.

    The first shard holds the multipart sources, which stall; the other shards, of
    small objects, keep finishing through the free slots while the listing, far
    ahead of them, waits on its full queue.
    """
    return {
        "src_prefix": f"s3://{source.bucket}/data/",
        "dst_prefix": f"s3://{stalled.bucket}/copy/",
        "shard_objects": 10,
        "max_shards_in_flight": 3,
        "per_worker_limit": LIMIT,
        "endpoint_url": stalled.proxy.endpoint_url,
        "server_side": False,  # the stalls hold UploadPart: the bytes go through the workers
        **options,
    }


async def test_cancelling_copy_prefix_async_cancels_the_shards_in_flight(
    source: Source, async_client: Any, stalled: StalledUploads, s3: Any
) -> None:
    run = asyncio.create_task(
        copy_prefix_async(client=async_client, **stalling_run(source, stalled))
    )
    async with asyncio.timeout(30):
        await stalled.first.wait()
    run.cancel()
    async with asyncio.timeout(20):
        await asyncio.wait((run,))
    assert run.cancelled()
    assert stalled.open_uploads(s3) == []


async def test_on_outcome_error_ends_copy_prefix_async_and_propagates(
    source: Source, async_client: Any, stalled: StalledUploads, s3: Any
) -> None:
    async with asyncio.timeout(45):  # the stalls last 60 s
        with pytest.raises(OutcomeRejected, match="data/small/"):
            await copy_prefix_async(
                client=async_client,
                **stalling_run(source, stalled, on_outcome=stalled.raise_once_stalled),
            )
    assert stalled.open_uploads(s3) == []


async def test_on_outcome_error_ends_copy_prefix_and_propagates(
    source: Source, client: Any, stalled: StalledUploads, s3: Any
) -> None:
    arguments = stalling_run(source, stalled, on_outcome=stalled.raise_once_stalled)
    async with asyncio.timeout(45):  # the stalls last 60 s
        with pytest.raises(OutcomeRejected, match="data/small/"):
            # In a thread: this event loop runs the proxy meanwhile.
            await asyncio.to_thread(copy_prefix, client=client, **arguments)
    assert stalled.open_uploads(s3) == []


async def test_keyboard_interrupt_ends_copy_prefix_and_cancels_the_shards(
    source: Source, client: Any, stalled: StalledUploads, s3: Any
) -> None:
    runs_in: list[int] = []

    def run() -> BaseException | None:
        runs_in.append(threading.get_ident())
        try:
            copy_prefix(client=client, **stalling_run(source, stalled))
        except KeyboardInterrupt as exc:  # returned: asyncio re-raises it from any task
            return exc
        return None

    running = asyncio.create_task(asyncio.to_thread(run))
    async with asyncio.timeout(30):
        await stalled.first.wait()
    # As Ctrl-C would in the main thread: KeyboardInterrupt in the waiting thread.
    raised = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(runs_in[0]), ctypes.py_object(KeyboardInterrupt)
    )
    assert raised == 1
    async with asyncio.timeout(20):
        assert isinstance(await running, KeyboardInterrupt)
    assert stalled.open_uploads(s3) == []


# -- smaller runs -----------------------------------------------------------------------


def test_copy_prefix_writes_manifest_to_s3(
    source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    bucket = new_bucket(s3, "dst")
    summary = copy_prefix(
        f"s3://{source.bucket}/few",  # no trailing slash: few/ is meant
        f"s3://{bucket}/out",
        client=client,
        shard_objects=7,
        per_worker_limit=LIMIT,
        manifest=f"s3://{bucket}/manifests/few.jsonl",
    )
    assert (summary.objects, summary.failures, summary.shards) == (41, 0, 6)
    assert summary.manifest == f"s3://{bucket}/manifests/few.jsonl"
    assert_same_objects(listing(s3, bucket, "out/"), source.few)
    body = s3.get_object(Bucket=bucket, Key="manifests/few.jsonl")["Body"].read()
    lines = [json.loads(line) for line in io.StringIO(body.decode())]
    assert sorted(line["dst_key"] for line in lines) == sorted(f"out/{k}" for k in source.few)


async def test_copy_prefix_async_with_an_asynchronous_client(
    source: Source, async_client: Any, s3: Any, endpoint: str
) -> None:
    bucket = new_bucket(s3, "dst")
    summary = await copy_prefix_async(
        f"s3://{source.bucket}/few/",
        f"s3://{bucket}/few/",
        client=async_client,
        shard_objects=10,
        per_worker_limit=LIMIT,
    )
    assert (summary.objects, summary.failures, summary.shards) == (41, 0, 5)
    assert_same_objects(listing(s3, bucket, "few/"), source.few)


def test_preserve_etags_is_deprecated_and_streamed_copies_keep_the_etag(
    source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    """Streamed copies keep their source's layout in the core now: the option that
    asked the cluster to fake a part size is a no-op, and says so."""
    bucket = new_bucket(s3, "dst")
    with pytest.warns(DeprecationWarning, match="preserve_etags has no effect"):
        summary = copy_prefix(
            f"s3://{source.bucket}/few/",
            f"s3://{bucket}/few/",
            client=client,
            per_worker_limit=LIMIT,
            preserve_etags=False,
            server_side=False,
        )
    assert summary.failures == 0
    copied = listing(s3, bucket, "few/")
    assert copied["multi.bin"][1] == source.few["multi.bin"][1]  # 12 MiB in 5 MiB parts
    assert source.few["multi.bin"][1].endswith("-3")


def test_object_differing_at_destination_is_copied_again(
    source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    bucket = new_bucket(s3, "dst")
    size = source.few["005"][0]
    s3.put_object(Bucket=bucket, Key="few/005", Body=b"x" * size)  # same size, other bytes
    s3.put_object(Bucket=bucket, Key="few/006", Body=b"shorter")
    summary = copy_prefix(
        f"s3://{source.bucket}/few/", f"s3://{bucket}/few/", client=client, per_worker_limit=LIMIT
    )
    assert (summary.objects, summary.skipped) == (41, 0)
    assert_same_objects(listing(s3, bucket, "few/"), source.few)


def test_skip_existing_off_copies_everything_again(
    source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    bucket = new_bucket(s3, "dst")
    for skip_existing, expected in ((True, 41), (False, 41)):
        summary = copy_prefix(
            f"s3://{source.bucket}/few/",
            f"s3://{bucket}/few/",
            client=client,
            per_worker_limit=LIMIT,
            skip_existing=skip_existing,
        )
        assert (summary.objects, summary.skipped) == (expected, 0)


def test_copy_prefix_copies_objects_already_there_again_by_default(
    source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    """skip_existing is off by default, as for copy_many (it used to be on here)."""
    bucket = new_bucket(s3, "dst")
    runs = [
        copy_prefix(
            f"s3://{source.bucket}/few/",
            f"s3://{bucket}/few/",
            client=client,
            per_worker_limit=LIMIT,
        )
        for _ in range(2)
    ]
    assert [(run.objects, run.skipped) for run in runs] == [(41, 0), (41, 0)]


def test_copy_prefix_takes_verify_and_checks_it_before_anything_runs() -> None:
    """verify was not one of copy_prefix's options (TypeError), so no cluster copy could
    ask for it.  ``client`` is never reached: the options are checked first."""
    with pytest.raises(ValueError, match=r"^verify must be 'auto' or 'required', got 'always'"):
        copy_prefix("s3://bbb/data/", "s3://ccc/", client=object(), verify="always")  # type: ignore[typeddict-item]


def test_copy_prefix_refuses_an_option_a_cluster_does_not_take() -> None:
    with pytest.raises(TypeError, match=r"^copy_prefix\(\) got an unexpected keyword .*'metadata'"):
        copy_prefix("s3://bbb/data/", "s3://ccc/", client=object(), metadata={"a": "b"})  # type: ignore[call-arg]


def test_failed_objects_are_counted_and_in_the_manifest(
    source: Source, client: Any, endpoint: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "failed.jsonl"
    summary = copy_prefix(
        f"s3://{source.bucket}/few/",
        "s3://no-such-bucket-aqueuepipe/few/",
        client=client,
        shard_objects=20,
        per_worker_limit=LIMIT,
        manifest=manifest,
    )
    assert (summary.objects, summary.failures, summary.ok) == (0, 41, False)
    lines = read_manifest(manifest)
    assert len(lines) == 41
    assert all(line["status"] == "failed" for line in lines)
    assert all("no-such-bucket-aqueuepipe" in line["error"] for line in lines)


def test_missing_source_bucket_raises(client: Any, endpoint: str) -> None:
    with pytest.raises(NoSuchBucketError):
        copy_prefix("s3://no-such-bucket-aqueuepipe/x/", "s3://elsewhere/x/", client=client)


@pytest.mark.parametrize(
    ("src", "dst", "options", "match"),
    [
        ("s3://bbb/data/copy", "s3://bbb/data/", {}, "lies in destination prefix"),
        ("s3://bbb/data/", "s3://ccc/", {"shard_objects": 0}, "shard_objects"),
        ("s3://bbb/data/", "s3://ccc/", {"per_worker_limit": 6 * MiB}, "at least one part"),
        ("s3://bbb/data/", "s3://ccc/", {"part_size": 1 * MiB}, "part_size"),
        ("s3://bbb/data/", "s3://ccc/", {"checksums": ("md6",)}, "md6"),
        ("s3://bbb/data/", "s3://ccc/", {"manifest": "s3://ccc/dir/"}, "prefix"),
        ("/tmp/data", "s3://ccc/", {}, "s3://"),
    ],
)
def test_bad_options_raise_before_anything_runs(
    client: Any, src: str, dst: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        copy_prefix(src, dst, client=client, **options)


@pytest.mark.parametrize(
    ("src", "dst"), [("s3://bbb/data/copy", "s3://bbb/data/"), ("s3://bbb/data/", "s3://bbb/data")]
)
def test_overlapping_prefixes_are_refused_as_the_command_refuses_them(
    client: Any, src: str, dst: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One rule: the command refused only one direction, with other words."""
    with pytest.raises(ValueError, match="lies in destination prefix") as caught:
        copy_prefix(src, dst, client=client)
    assert main(["cp", "-r", src, dst]) == 2
    assert str(caught.value) in capsys.readouterr().err


def test_copy_prefix_into_its_own_prefix_copies_each_object_once(
    source: Source, client: Any, s3: Any, endpoint: str
) -> None:
    """As copy_many and the command do (DESIGN: "a copy into its own prefix copies
    each source object once and ends"); the Dask layer used to refuse it."""
    bucket = new_bucket(s3, "self")
    for key, (size, _) in source.few.items():
        s3.put_object(Bucket=bucket, Key=f"p/{key}", Body=b"x" * size)
    summary = copy_prefix(
        f"s3://{bucket}/p/", f"s3://{bucket}/p/copy/", client=client, per_worker_limit=LIMIT
    )
    assert (summary.objects, summary.failures) == (len(source.few), 0)
    copied = listing(s3, bucket, "p/copy/")
    assert sorted(copied) == sorted(source.few)  # nothing under p/copy/copy/


SUMMARY = CopySummary(
    objects=1,
    bytes=1,
    skipped=0,
    skipped_bytes=0,
    failures=0,
    seconds=1.0,
    shards=1,
    worker_limit=LIMIT,
)


def test_outcomes_and_summaries_pickle() -> None:
    import pickle

    outcome = ObjectOutcome(key="a", dst_key="b", status="copied", size=1, checksums={"md5": "x"})
    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert pickle.loads(pickle.dumps(SUMMARY)) == SUMMARY


# -- the command ------------------------------------------------------------------------


def test_cli_copies_a_prefix_on_a_scheduler(
    source: Source, cluster: Any, s3: Any, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = new_bucket(s3, "dst")
    status = main(
        [
            "cp",
            "--recursive",
            "--limit",
            "64MiB",
            "--scheduler",
            cluster.scheduler_address,
            f"s3://{source.bucket}/few/",
            f"s3://{bucket}/few/",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "copied 41 objects" in out and "0 failed" in out
    assert_same_objects(listing(s3, bucket, "few/"), source.few)


def test_cli_reports_failures_with_exit_status_1(
    source: Source, cluster: Any, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "cp",
            "-r",
            "--json",
            "--scheduler",
            cluster.scheduler_address,
            f"s3://{source.bucket}/few/",
            "s3://no-such-bucket-aqueuepipe/few/",
        ]
    )
    captured = capsys.readouterr()
    assert status == 1
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 41 and all(line["status"] == "failed" for line in lines)
    assert captured.err.count("error: s3://") == 41


def test_cli_cluster_options_need_a_recursive_s3_copy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = main(["cp", "--dask", "2", "s3://bucket/key", str(tmp_path / "file")])
    assert status == 2
    assert "--recursive" in capsys.readouterr().err
    status = main(["cp", "-r", "--dask", "2", "--scheduler", "tcp://x:1", "s3://a/", "s3://b/"])
    assert status == 2  # one or the other


def test_cli_cp_recursive_on_a_cluster_copies_objects_already_there_again(
    source: Source, cluster: Any, s3: Any, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only sync skips: `cp -r --scheduler` skipped by default, as if it were sync."""
    bucket = new_bucket(s3, "dst")
    args = ["-r", "--scheduler", cluster.scheduler_address]
    urls = [f"s3://{source.bucket}/few/", f"s3://{bucket}/few/"]
    assert main(["cp", *args, *urls]) == 0
    capsys.readouterr()
    assert main(["cp", *args, *urls]) == 0
    assert "copied 41 objects" in capsys.readouterr().out
    assert main(["sync", "--scheduler", cluster.scheduler_address, *urls]) == 0
    assert "copied 0 objects" in capsys.readouterr().out


def test_cli_gives_a_cluster_the_options_it_gives_a_local_batch(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--verify was dropped on the cluster path; the options now come from one list."""
    import aqueuepipe.distributed

    given: dict[str, Any] = {}

    def fake_copy_prefix(src: str, dst: str, **options: Any) -> CopySummary:
        given.update(options, src=src, dst=dst)
        return replace(SUMMARY, objects=0, bytes=0, shards=0)

    monkeypatch.setattr(aqueuepipe.distributed, "copy_prefix", fake_copy_prefix)
    status = main(
        [
            "cp",
            "-r",
            "-q",
            "--verify",
            "required",
            "--stream",
            "--part-concurrency",
            "3",
            "--scheduler",
            cluster.scheduler_address,
            "s3://src-aqp/a/",
            "s3://dst-aqp/b/",
        ]
    )
    assert status == 0
    assert (given["verify"], given["skip_existing"], given["server_side"]) == (
        "required",
        False,
        False,
    )
    assert given["part_concurrency"] == 3


@pytest.mark.slow
def test_cli_dask_starts_a_local_cluster(
    source: Source, s3: Any, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = new_bucket(s3, "dst")
    status = main(["cp", "-r", "--dask", "1", f"s3://{source.bucket}/few/", f"s3://{bucket}/"])
    assert status == 0
    assert "copied 41 objects" in capsys.readouterr().out
    assert_same_objects(listing(s3, bucket, ""), source.few)


# -- resume: a shard continues the upload a journal names, and aborts the others ---------

RESUME_SIZE = 40 * MiB
RESUME_PART = 5 * MiB


async def interrupt_resumable_copy(src: str, dst: str, journal_dir: Path) -> None:
    """Copy ``src`` to ``dst`` with ``resume=True`` in this process (streamed) and
    cancel the copy once half its bytes reached the destination: its upload stays
    open and its journal is in ``journal_dir``."""
    import aqueuepipe

    async def run(progress: Any) -> None:
        await aqueuepipe.copy(
            src,
            dst,
            resume=True,
            journal_dir=journal_dir,
            server_side=False,
            part_size=RESUME_PART,
            part_concurrency=2,
            progress=progress,
        )

    await interrupted(run, RESUME_SIZE // 2)


def open_uploads_of(s3: Any, bucket: str) -> list[tuple[str, str]]:
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [(upload["Key"], upload["UploadId"]) for upload in uploads]


async def test_copy_prefix_resume_continues_an_upload_interrupted_earlier(
    async_client: Any, s3: Any, endpoint: str, moto_server: MotoServer, tmp_path: Path
) -> None:
    """The shard kept the upload its journal names (it used to abort every upload to
    its keys), and the copy sent only the parts the server lacked."""
    body = random.Random(21).randbytes(RESUME_SIZE)
    src_bucket, dst_bucket = new_bucket(s3, "src"), new_bucket(s3, "dst")
    upload_multipart(s3, src_bucket, "big/object.bin", body, RESUME_PART)
    journal_dir = tmp_path / "journals"
    moto_server.reset_requests()
    await interrupt_resumable_copy(
        f"s3://{src_bucket}/big/object.bin", f"s3://{dst_bucket}/big/object.bin", journal_dir
    )
    assert len(open_uploads_of(s3, dst_bucket)) == 1, "the upload was not kept open"
    first = moto_server.requests().bytes.get("UploadPart", 0)

    summary = await copy_prefix_async(
        f"s3://{src_bucket}/big/",
        f"s3://{dst_bucket}/big/",
        client=async_client,
        per_worker_limit=LIMIT,
        part_size=RESUME_PART,
        server_side=False,
        verify="required",
        resume=True,
        journal_dir=journal_dir,
    )
    total = moto_server.requests().bytes.get("UploadPart", 0)
    print(f"UploadPart bytes at the server: {first} + {total - first} = {total} of {RESUME_SIZE}")
    assert (summary.objects, summary.failures) == (1, 0)
    copied = s3.get_object(Bucket=dst_bucket, Key="big/object.bin")["Body"].read()
    assert hashlib.md5(copied).digest() == hashlib.md5(body).digest()
    assert total <= 1.3 * RESUME_SIZE, f"{first} then {total - first} bytes sent"
    assert open_uploads_of(s3, dst_bucket) == []
    assert list(journal_dir.glob("*.json")) == []


@pytest.mark.parametrize("resume", [False, True])
def test_copy_prefix_aborts_a_leftover_upload_no_journal_names(
    client: Any, s3: Any, endpoint: str, tmp_path: Path, resume: bool
) -> None:
    src_bucket, dst_bucket = new_bucket(s3, "src"), new_bucket(s3, "dst")
    s3.put_object(Bucket=src_bucket, Key="p/object.bin", Body=b"x" * 1024)
    s3.create_multipart_upload(Bucket=dst_bucket, Key="p/object.bin")  # a dead attempt's
    options: dict[str, Any] = {"resume": True, "journal_dir": tmp_path} if resume else {}
    summary = copy_prefix(
        f"s3://{src_bucket}/p/",
        f"s3://{dst_bucket}/p/",
        client=client,
        per_worker_limit=LIMIT,
        **options,
    )
    assert (summary.objects, summary.failures) == (1, 0)
    assert open_uploads_of(s3, dst_bucket) == []


def test_cli_gives_a_cluster_resume_and_journal_dir(
    cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--resume on a cluster was refused (exit status 2)."""
    import aqueuepipe.distributed

    given: dict[str, Any] = {}

    def fake_copy_prefix(src: str, dst: str, **options: Any) -> CopySummary:
        given.update(options)
        return replace(SUMMARY, objects=0, bytes=0, shards=0)

    monkeypatch.setattr(aqueuepipe.distributed, "copy_prefix", fake_copy_prefix)
    for command in (["cp", "-r"], ["sync"]):
        given.clear()
        status = main(
            [
                *command,
                "-q",
                "--resume",
                "--journal-dir",
                str(tmp_path),
                "--scheduler",
                cluster.scheduler_address,
                "s3://src-aqp/a/",
                "s3://dst-aqp/b/",
            ]
        )
        assert status == 0, command
        assert (given["resume"], given["journal_dir"]) == (True, str(tmp_path)), command
