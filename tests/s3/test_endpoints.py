"""Which servers check digests: asked once per endpoint, leaving no trace.

Requests are counted at the server (aqueuepipe.testing's middleware), not by the
client."""

from __future__ import annotations

from pathlib import Path

from aqueuepipe import copy
from aqueuepipe.s3 import PROBE_SUFFIX, create_client, is_amazon_s3, validates_digests
from aqueuepipe.testing import moto_server

from .._helpers import MotoServer, bucket_name, payload

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
