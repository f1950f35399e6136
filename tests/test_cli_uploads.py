"""``aqueuepipe uploads list|abort``, run as a user runs it, against uploads boto3
made and left open."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ._helpers import MiB, MotoServer
from .s3.test_uploads import leave_open
from .test_cli import run


def new_bucket(boto3_client: Any) -> str:
    name = f"cli-{uuid.uuid4().hex}"
    boto3_client.create_bucket(Bucket=name)
    return name


def test_uploads_list_prints_each_open_upload_and_a_total(
    moto_server: MotoServer, boto3_client: Any
) -> None:
    bucket = new_bucket(boto3_client)
    upload_id = leave_open(boto3_client, bucket, "p/dump.sql", [5 * MiB, 100])
    leave_open(boto3_client, bucket, "other/x", [10])
    done = run("uploads", "list", f"s3://{bucket}/p/", endpoint_url=moto_server.endpoint_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert f"s3://{bucket}/p/dump.sql" in lines[0] and upload_id in lines[0]
    assert "2 parts" in lines[0] and "5.2 MB" in lines[0]
    assert lines[1] == "1 open upload, 5.2 MB in parts"
    # Listing changes nothing.
    assert len(boto3_client.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2


def test_uploads_abort_aborts_those_under_the_prefix_only(
    moto_server: MotoServer, boto3_client: Any
) -> None:
    bucket = new_bucket(boto3_client)
    leave_open(boto3_client, bucket, "p/a", [10])
    leave_open(boto3_client, bucket, "p/b", [])
    kept = leave_open(boto3_client, bucket, "q/c", [10])
    done = run(
        "uploads", "abort", "--json", f"s3://{bucket}/p/", endpoint_url=moto_server.endpoint_url
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["url"], r["aborted"], r["parts"]) for r in records] == [
        (f"s3://{bucket}/p/a", True, 1),
        (f"s3://{bucket}/p/b", True, 0),
    ]
    left = boto3_client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in left] == [("q/c", kept)]


def test_uploads_abort_upload_id_aborts_that_upload_of_that_key_only(
    moto_server: MotoServer, boto3_client: Any
) -> None:
    """The command a kept upload's message prints: keys that merely start with the
    key (``big.tar.1``) and the key's other uploads are left alone."""
    bucket = new_bucket(boto3_client)
    target = leave_open(boto3_client, bucket, "big.tar", [10])
    other = leave_open(boto3_client, bucket, "big.tar", [])
    sibling = leave_open(boto3_client, bucket, "big.tar.1", [10])
    done = run(
        "uploads",
        "abort",
        "--upload-id",
        target,
        f"s3://{bucket}/big.tar",
        endpoint_url=moto_server.endpoint_url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 aborted upload, 10 B in parts"
    left = boto3_client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert sorted(u["UploadId"] for u in left) == sorted([other, sibling])


def test_uploads_upload_id_without_a_key_is_a_usage_error(moto_server: MotoServer) -> None:
    done = run("uploads", "abort", "--upload-id", "x", "s3://bucket/", endpoint_url=None)
    assert done.returncode == 2 and "--upload-id needs the URL" in done.stderr


def test_uploads_abort_older_than_an_age_no_upload_has_aborts_nothing(
    moto_server: MotoServer, boto3_client: Any
) -> None:
    bucket = new_bucket(boto3_client)
    leave_open(boto3_client, bucket, "k", [10])
    # moto dates every upload 2010-11-10: older than 100 years is none of them.
    done = run(
        "uploads",
        "abort",
        "--older-than",
        "5200w",
        f"s3://{bucket}",
        endpoint_url=moto_server.endpoint_url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0 aborted uploads, 0 B in parts"]
    assert len(boto3_client.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 1


def test_uploads_of_a_missing_bucket_is_one_line_and_exit_1(moto_server: MotoServer) -> None:
    done = run(
        "uploads", "list", "s3://no-such-bucket-here/", endpoint_url=moto_server.endpoint_url
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "no-such-bucket-here" in done.stderr, done.stderr


def test_uploads_with_a_bad_age_or_url_is_a_usage_error(moto_server: MotoServer) -> None:
    bad_age = run("uploads", "list", "--older-than", "soon", "s3://b/", endpoint_url=None)
    assert bad_age.returncode == 2 and "invalid age 'soon'" in bad_age.stderr
    bad_url = run("uploads", "abort", "s3:/b/", endpoint_url=None)
    assert bad_url.returncode == 2 and "invalid S3 URL" in bad_url.stderr
