"""Open multipart uploads, listed and aborted: uploads boto3 made and left open."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from aqueuepipe.s3 import S3Client, abort_upload, open_uploads, parse_s3_url

from .._helpers import MakeBucket, MiB

pytestmark = pytest.mark.asyncio


def leave_open(boto3_client: Any, bucket: str, key: str, sizes: list[int]) -> str:
    """A multipart upload boto3 creates and stores ``sizes`` parts in, left open."""
    upload_id = str(boto3_client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    for number, size in enumerate(sizes, start=1):
        boto3_client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=b"p" * size
        )
    return upload_id


async def listed(client: S3Client, url: str, **options: Any) -> list[Any]:
    return [
        upload
        async for upload in open_uploads(client, parse_s3_url(url, require_key=False), **options)
    ]


async def test_open_uploads_lists_those_under_the_prefix_with_their_size(
    s3_client: S3Client, make_bucket: MakeBucket, boto3_client: Any
) -> None:
    bucket = await make_bucket()
    first = leave_open(boto3_client, bucket, "p/a.bin", [5 * MiB, 1234])
    leave_open(boto3_client, bucket, "q/other.bin", [100])
    empty = leave_open(boto3_client, bucket, "p/b.bin", [])
    found = await listed(s3_client, f"s3://{bucket}/p/")
    assert [(u.key, u.upload_id, u.size, u.parts) for u in found] == [
        ("p/a.bin", first, 5 * MiB + 1234, 2),
        ("p/b.bin", empty, 0, 0),
    ]
    assert found[0].url == f"s3://{bucket}/p/a.bin"
    assert found[0].age() > datetime.timedelta(0)  # moto's are all from one moment in 2010


async def test_open_uploads_older_than_leaves_out_the_recent_ones(
    s3_client: S3Client, make_bucket: MakeBucket, boto3_client: Any
) -> None:
    bucket = await make_bucket()
    leave_open(boto3_client, bucket, "k", [10])
    [upload] = await listed(s3_client, f"s3://{bucket}", older_than=datetime.timedelta(0))
    # moto reports every upload as initiated at one fixed moment (in 2010): ages
    # around the one it reports tell the recent from the old.
    age = upload.age()
    older = age + datetime.timedelta(days=1)
    assert await listed(s3_client, f"s3://{bucket}", older_than=older) == []
    younger = age - datetime.timedelta(days=1)
    assert len(await listed(s3_client, f"s3://{bucket}", older_than=younger)) == 1


async def test_open_uploads_refuses_a_negative_age(s3_client: S3Client) -> None:
    with pytest.raises(ValueError, match="older_than must not be negative"):
        await listed(s3_client, "s3://bucket", older_than=datetime.timedelta(days=-1))


async def test_abort_upload_leaves_nothing_open_and_tells_an_upload_already_gone(
    s3_client: S3Client, make_bucket: MakeBucket, boto3_client: Any
) -> None:
    bucket = await make_bucket()
    leave_open(boto3_client, bucket, "a", [5 * MiB, 10])
    leave_open(boto3_client, bucket, "b", [10])
    uploads = await listed(s3_client, f"s3://{bucket}")
    assert [await abort_upload(s3_client, upload) for upload in uploads] == [True, True]
    assert boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert await abort_upload(s3_client, uploads[0]) is False
