"""Which servers check digests: asked once per endpoint, leaving no trace.

Requests are counted at the server (aqueuepipe.testing's middleware), not by the
client."""

from __future__ import annotations

import base64
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aqueuepipe import TransferResult, checksums, copy
from aqueuepipe.s3 import PROBE_SUFFIX, S3Client, create_client, is_amazon_s3, validates_digests
from aqueuepipe.s3._endpoints import (
    REMEMBERED_ENDPOINTS,
    accepts_checksum_headers,
    forget_endpoints,
    note_checksum_headers_refused,
)
from aqueuepipe.testing import moto_server

from .._helpers import MiB, MotoServer, bucket_name, payload
from ..faultproxy import UPLOADS, FaultProxy

PROBE_REQUESTS = {"CreateMultipartUpload": 1, "UploadPart": 1, "AbortMultipartUpload": 1}


async def probe(server: MotoServer) -> tuple[bool, dict[str, int], list[object], int]:
    """validates_digests on a fresh bucket: (answer, requests, open uploads, keys)."""
    async with create_client(endpoint_url=server.endpoint_url) as client:
        bucket = bucket_name()
        await client.create_bucket(Bucket=bucket)
        server.reset_requests()
        answer = await validates_digests(client, bucket, "dir/object")
        counts = dict(server.requests().counts)
        uploads = (await client.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])
        keys = (await client.list_objects_v2(Bucket=bucket))["KeyCount"]
    return answer, counts, uploads, keys


async def test_server_that_refuses_a_wrong_digest_is_trusted_and_keeps_no_trace(
    validating_server: MotoServer,
) -> None:
    answer, counts, uploads, keys = await probe(validating_server)
    assert answer is True
    assert counts == PROBE_REQUESTS
    assert uploads == [] and keys == 0


async def test_server_that_stores_a_wrong_digest_is_not_trusted_and_keeps_no_trace() -> None:
    with moto_server() as plain:
        answer, counts, uploads, keys = await probe(plain)
    assert answer is False
    assert counts == PROBE_REQUESTS
    assert uploads == [] and keys == 0


async def test_endpoint_is_asked_once_per_process(tmp_path: Path) -> None:
    with moto_server(validate_digests=True) as server:
        async with create_client(endpoint_url=server.endpoint_url) as client:
            await client.create_bucket(Bucket="once")
        source = tmp_path / "f"
        source.write_bytes(b"x" * 1000)
        server.reset_requests()
        for i in range(3):
            await copy(str(source), f"s3://once/k{i}", endpoint_url=server.endpoint_url)
        counts = server.requests()
    assert counts["CreateMultipartUpload"] == 1  # the probe's, once
    assert counts["PutObject"] == 3 and counts["UploadPart"] == 1


async def test_copy_to_a_validating_server_is_one_put_proven_by_the_server(
    validating_server: MotoServer, tmp_path: Path
) -> None:
    """The server's acceptance is the evidence: no MD5 to compare, no one-part upload."""
    async with create_client(endpoint_url=validating_server.endpoint_url) as client:
        bucket = bucket_name()
        await client.create_bucket(Bucket=bucket)
        source = tmp_path / "f"
        data = payload(100_000, seed=5)
        source.write_bytes(data)
        result = await copy(
            str(source), f"s3://{bucket}/k", endpoint_url=validating_server.endpoint_url
        )
        stored = await (await client.get_object(Bucket=bucket, Key="k"))["Body"].read()
    assert result.ok and result.parts == 0
    assert "destination:crc64nvme" in result.verified
    assert "destination:etag-md5" not in result.verified
    assert stored == data


def test_amazon_endpoints_are_known_without_asking() -> None:
    assert is_amazon_s3("https://s3.eu-west-1.amazonaws.com")
    assert is_amazon_s3("https://bucket.s3.amazonaws.com.cn")
    assert not is_amazon_s3("http://127.0.0.1:9000")
    assert not is_amazon_s3("https://amazonaws.com.evil.example")


def test_probe_key_stays_a_valid_s3_key() -> None:
    assert PROBE_SUFFIX.startswith(".") and len(PROBE_SUFFIX.encode()) < 100


# -- what a copy hashes, and what its requests carry ----------------------------------


async def _crc32_source(client: S3Client, size: int) -> tuple[str, bytes]:
    """An object with a stored FULL_OBJECT CRC32 (what current SDKs upload): its URL."""
    bucket = bucket_name("src")
    await client.create_bucket(Bucket=bucket)
    data = payload(size, seed=19)
    value = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    await client.put_object(
        Bucket=bucket, Key="obj", Body=data, ChecksumAlgorithm="CRC32", ChecksumCRC32=value
    )
    return f"s3://{bucket}/obj", data


async def _copy_through(
    proxy_target: MotoServer, s3_client: S3Client, size: int, parts: int = 2
) -> Any:
    """Copy a CRC32 source of ``size`` bytes to ``proxy_target`` through a proxy that
    logs the requests; (result, the upload requests), checked to be ``parts`` parts
    (0: one PutObject)."""
    src, _ = await _crc32_source(s3_client, size)
    async with (
        FaultProxy(proxy_target.endpoint_url) as proxy,
        create_client(endpoint_url=proxy.endpoint_url) as dst_client,
    ):
        bucket = bucket_name("dst")
        await dst_client.create_bucket(Bucket=bucket)
        result = await copy(src, f"s3://{bucket}/obj", src_client=s3_client, dst_client=dst_client)
        uploads = [e for e in proxy.exchanges(UPLOADS) if PROBE_SUFFIX not in e.path]
    assert result.parts == parts and len(uploads) == max(parts, 1)
    return result, uploads


async def test_copy_to_a_validating_server_sends_no_content_md5(
    validating_server: MotoServer, s3_client: S3Client
) -> None:
    # The source is one PUT: so is its copy, to a server whose answer proves it
    # (the copy keeps the source's ETag).
    result, uploads = await _copy_through(validating_server, s3_client, 11 * MiB, parts=0)
    assert result.verified == ("source:crc32", "destination:crc32")
    assert all(e.header("content-md5") is None for e in uploads)
    assert all(e.header("x-amz-checksum-crc32") for e in uploads)


async def test_copy_to_a_plain_server_sends_content_md5_with_every_part(
    moto_server: MotoServer, s3_client: S3Client
) -> None:
    result, uploads = await _copy_through(moto_server, s3_client, 11 * MiB)
    assert result.verified == ("source:crc32", "destination:etag-md5")
    assert all(e.header("content-md5") for e in uploads)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The bytes each hash function of aqueuepipe.checksums is given, by algorithm.

    Installed in this process only: no server's own hashing is counted.
    """
    counts: Counter[str] = Counter()

    def counting_crc(name: str) -> Any:
        function = checksums._CRC_FUNCTIONS[name]

        def counted(data: checksums.Buffer, previous: int = 0) -> int:
            counts[name] += memoryview(data).nbytes
            return function(data, previous)

        return counted

    class CountedMD5:
        def __init__(self) -> None:
            self._hash = constructor()
            self.digest_size = self._hash.digest_size

        def update(self, data: checksums.Buffer) -> None:
            counts["md5"] += memoryview(data).nbytes
            self._hash.update(data)

        def digest(self) -> bytes:
            return self._hash.digest()

        def copy(self) -> Any:
            return self._hash.copy()

    constructor = checksums._HASHLIB_CONSTRUCTORS["md5"]
    for name in checksums.CRC_ALGORITHMS:
        monkeypatch.setitem(checksums._CRC_FUNCTIONS, name, counting_crc(name))
    monkeypatch.setitem(checksums._HASHLIB_CONSTRUCTORS, "md5", CountedMD5)
    return counts


async def _copy_counting_hashes(
    server: MotoServer, s3_client: S3Client, hashed: Counter[str]
) -> TransferResult:
    """Copy an 11 MiB crc32 object to a fresh bucket on ``server``, counting in
    ``hashed`` only the copy's own hashing (the probe's 1-byte part goes first)."""
    async with create_client(endpoint_url=server.endpoint_url) as client:
        bucket = bucket_name()
        await client.create_bucket(Bucket=bucket)
        await validates_digests(client, bucket, "k")
        src, _ = await _crc32_source(s3_client, 11 * MiB)
        hashed.clear()
        return await copy(src, f"s3://{bucket}/k", src_client=s3_client, dst_client=client)


async def test_copy_to_a_validating_server_puts_each_byte_through_one_crc_and_no_md5(
    validating_server: MotoServer, s3_client: S3Client, hashed: Counter[str]
) -> None:
    result = await _copy_counting_hashes(validating_server, s3_client, hashed)
    assert result.parts == 0  # one PUT, as its source (so with its ETag)
    assert result.verified == ("source:crc32", "destination:crc32")
    assert hashed == {"crc32": 11 * MiB}


async def test_copy_to_a_plain_server_puts_each_byte_through_one_crc_and_one_md5(
    moto_server_b: MotoServer, s3_client: S3Client, hashed: Counter[str]
) -> None:
    result = await _copy_counting_hashes(moto_server_b, s3_client, hashed)
    assert result.parts == 2 and result.verified == ("source:crc32", "destination:etag-md5")
    assert hashed == {"crc32": 11 * MiB, "md5": 11 * MiB}


def test_refused_checksum_headers_are_remembered_within_a_bound_and_forgotten() -> None:
    """Which endpoints refuse x-amz-checksum-* headers lives in the bounded endpoint
    registry that forget_endpoints() clears, not in a module-level set that grows
    for the life of the process."""
    first = "http://127.0.0.1:1/first"
    note_checksum_headers_refused(first)
    assert not accepts_checksum_headers(first)
    forget_endpoints()
    assert accepts_checksum_headers(first)
    note_checksum_headers_refused(first)
    for n in range(REMEMBERED_ENDPOINTS):
        note_checksum_headers_refused(f"http://127.0.0.1:1/other-{n}")
    assert accepts_checksum_headers(first)  # the least recently noted went first
    assert not accepts_checksum_headers(f"http://127.0.0.1:1/other-{REMEMBERED_ENDPOINTS - 1}")
    forget_endpoints()
