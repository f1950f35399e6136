"""aqueuepipe.testing: the one moto launcher, its request counts, its digest checks,
and the pytest plugin a user's tests load."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from aqueuepipe.testing import MotoServer, moto_server


@pytest.fixture(scope="module")
def validating() -> Iterator[MotoServer]:
    with moto_server(validate_digests=True) as server:
        yield server


def boto3_of(server: MotoServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


WRONG = {
    "ContentMD5": b64(hashlib.md5(b"other").digest()),
    "ChecksumCRC32": b64(zlib.crc32(b"other").to_bytes(4, "big")),
    "ChecksumSHA256": b64(hashlib.sha256(b"other").digest()),
}


def test_moto_server_counts_requests_by_operation_at_the_server(
    validating: MotoServer,
) -> None:
    s3 = boto3_of(validating)
    s3.create_bucket(Bucket="counted")
    validating.reset_requests()
    s3.put_object(Bucket="counted", Key="a", Body=b"12345")
    s3.put_object(Bucket="counted", Key="b", Body=b"678")
    s3.head_object(Bucket="counted", Key="a")
    counts = validating.requests()
    assert counts.counts == {"PutObject": 2, "HeadObject": 1}
    assert counts.bytes["PutObject"] == 8
    assert counts["UploadPart"] == 0 and counts.total == 3
    validating.reset_requests()
    assert validating.requests().total == 0


@pytest.mark.parametrize("header", sorted(WRONG))
def test_validating_server_refuses_a_wrong_digest_and_stores_nothing(
    validating: MotoServer, header: str
) -> None:
    s3 = boto3_of(validating)
    s3.create_bucket(Bucket="refusing")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.put_object(Bucket="refusing", Key=header, Body=b"hello", **{header: WRONG[header]})
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.list_objects_v2(Bucket="refusing", Prefix=header)["KeyCount"] == 0


def test_validating_server_refuses_a_wrong_part_digest(validating: MotoServer) -> None:
    s3 = boto3_of(validating)
    s3.create_bucket(Bucket="parts")
    upload = s3.create_multipart_upload(Bucket="parts", Key="k", ChecksumAlgorithm="CRC32")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.upload_part(
            Bucket="parts",
            Key="k",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x",
            ChecksumCRC32=WRONG["ChecksumCRC32"],
        )
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert s3.list_parts(Bucket="parts", Key="k", UploadId=upload["UploadId"]).get("Parts") is None


def test_validating_server_refuses_a_malformed_content_md5(validating: MotoServer) -> None:
    s3 = boto3_of(validating)
    s3.create_bucket(Bucket="malformed")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.put_object(Bucket="malformed", Key="k", Body=b"hello", ContentMD5="bm90IGFuIG1kNQ==")
    assert caught.value.response["Error"]["Code"] == "InvalidDigest"


def test_validating_server_stores_a_body_with_right_digests(validating: MotoServer) -> None:
    s3 = boto3_of(validating)
    s3.create_bucket(Bucket="right")
    s3.put_object(
        Bucket="right",
        Key="k",
        Body=b"hello",
        ContentMD5=b64(hashlib.md5(b"hello").digest()),
        ChecksumSHA256=b64(hashlib.sha256(b"hello").digest()),
    )
    assert s3.get_object(Bucket="right", Key="k")["Body"].read() == b"hello"


def test_plain_moto_stores_a_body_whose_content_md5_is_wrong() -> None:
    """What makes the validating middleware necessary (if moto starts refusing,
    the library's probe finds it out, and this test says so)."""
    with moto_server() as plain:
        s3 = boto3_of(plain)
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="k", Body=b"hello", ContentMD5=WRONG["ContentMD5"])
        assert s3.get_object(Bucket="plain", Key="k")["Body"].read() == b"hello"


def test_moto_server_passes_its_settings_to_moto() -> None:
    with moto_server({"S3_UPLOAD_PART_MIN_SIZE": "1024"}) as small:
        assert small.settings == {"S3_UPLOAD_PART_MIN_SIZE": "1024"}
        s3 = boto3_of(small)
        s3.create_bucket(Bucket="small")
        upload = s3.create_multipart_upload(Bucket="small", Key="k")
        parts = [
            {
                "PartNumber": n,
                "ETag": s3.upload_part(
                    Bucket="small", Key="k", UploadId=upload["UploadId"], PartNumber=n, Body=body
                )["ETag"],
            }
            for n, body in ((1, b"a" * 2048), (2, b"b"))
        ]
        s3.complete_multipart_upload(
            Bucket="small", Key="k", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )  # moto's default minimum (5 MiB) would refuse the 2 KiB first part


def test_moto_server_is_stopped_at_exit() -> None:
    with moto_server() as server:
        process = server.process
    assert process.poll() is not None


def test_plugin_gives_a_users_tests_an_endpoint_and_buckets(tmp_path: Path) -> None:
    """Two lines in a user's conftest.py and their pytest-asyncio tests copy
    against a real server."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["aqueuepipe.testing"]\n')
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from aqueuepipe import copy, open_reader

            @pytest.mark.asyncio
            async def test_round_trip(s3_endpoint, s3_bucket, tmp_path):
                source = tmp_path / "a.bin"
                source.write_bytes(b"user data")
                url = f"s3://{s3_bucket}/a.bin"
                assert (await copy(str(source), url, endpoint_url=s3_endpoint)).ok
                async with open_reader(url, endpoint_url=s3_endpoint) as body:
                    assert await body.read() == b"user data"

            def test_buckets_are_fresh(s3_bucket, request):
                assert s3_bucket.startswith("test-")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout
