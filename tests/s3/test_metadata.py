"""A copy keeps what CopyObject keeps: headers and user metadata; the options add to it."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from aqueuepipe import copy
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, MotoServer, payload

HEADERS = {
    "ContentType": "text/html; charset=utf-8",
    "ContentEncoding": "gzip",
    "ContentDisposition": 'attachment; filename="page.html"',
    "ContentLanguage": "en-GB",
    "CacheControl": "max-age=300",
}


async def head(client: S3Client, bucket: str, key: str) -> dict[str, object]:
    return dict(await client.head_object(Bucket=bucket, Key=key))


@pytest.mark.parametrize("size", [1000, 11 * MiB], ids=["single-put", "multipart"])
async def test_copy_between_buckets_keeps_headers_and_user_metadata(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, size: int
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await s3_client.put_object(
        Bucket=src, Key="page.html", Body=payload(size), Metadata={"owner": "ops"}, **HEADERS
    )
    await copy(
        f"s3://{src}/page.html", f"s3://{dst}/page.html", endpoint_url=moto_server.endpoint_url
    )
    copied = await head(s3_client, dst, "page.html")
    for name, value in HEADERS.items():
        assert copied[name] == value, name
    assert copied["Metadata"] == {"owner": "ops"}


async def test_upload_guesses_content_type_from_the_file_name(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    await copy(str(page), f"s3://{bucket}/index.html", endpoint_url=moto_server.endpoint_url)
    assert (await head(s3_client, bucket, "index.html"))["ContentType"] == "text/html"


async def test_options_replace_metadata_and_set_storage_and_encryption(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await s3_client.put_object(Bucket=src, Key="k", Body=b"x", Metadata={"old": "1"}, **HEADERS)
    await copy(
        f"s3://{src}/k",
        f"s3://{dst}/k",
        endpoint_url=moto_server.endpoint_url,
        metadata={"new": "2"},
        content_type="application/json",
        storage_class="STANDARD_IA",
        sse="AES256",
    )
    copied = await head(s3_client, dst, "k")
    assert copied["Metadata"] == {"new": "2"}
    assert copied["ContentType"] == "application/json"
    assert copied["CacheControl"] == HEADERS["CacheControl"]  # kept: not replaced
    assert copied["StorageClass"] == "STANDARD_IA"
    assert copied["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("size", [10, 9 * MiB], ids=["single-put", "multipart"])
async def test_tags_are_copied_when_asked(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, size: int
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await s3_client.put_object(Bucket=src, Key="k", Body=payload(size), Tagging="team=data&tier=1")
    await copy(f"s3://{src}/k", f"s3://{dst}/k", endpoint_url=moto_server.endpoint_url, tags=True)
    await copy(f"s3://{src}/k", f"s3://{dst}/untagged", endpoint_url=moto_server.endpoint_url)
    tagged = await s3_client.get_object_tagging(Bucket=dst, Key="k")
    assert sorted((t["Key"], t["Value"]) for t in tagged["TagSet"]) == [
        ("team", "data"),
        ("tier", "1"),
    ]
    untagged = await s3_client.get_object_tagging(Bucket=dst, Key="untagged")
    assert untagged["TagSet"] == []


async def test_download_gets_the_objects_last_modified_as_mtime(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"data")
    modified = (await head(s3_client, bucket, "k"))["LastModified"]
    assert isinstance(modified, datetime.datetime)
    target = tmp_path / "k"
    await copy(f"s3://{bucket}/k", str(target), endpoint_url=moto_server.endpoint_url)
    assert target.stat().st_mtime == modified.timestamp()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("sse", "rot13", "sse must be one of"),
        ("sse_kms_key_id", "key-1", "needs sse='aws:kms'"),
        ("metadata", {"a": 1}, "metadata must map"),
        ("storage_class", "", "storage_class"),
        ("part_size", 6 * 1024**3, "5 GiB"),
        ("checksums", "md5", "not the str 'md5'"),
    ],
)
async def test_bad_metadata_and_size_options_fail_before_any_request(
    option: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await copy("s3://bucket/key", "s3://other/key", **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metadata": {"naïve": "x"}}, r"^metadata name 'naïve' must be ASCII"),
        ({"metadata": {"a b": "x"}}, r"^metadata name 'a b' must be ASCII"),
        ({"metadata": {"a": "é"}}, r"^metadata value of 'a' must be printable ASCII"),
        ({"metadata": {"a": "x\r\nX-Evil: 1"}}, r"^metadata value of 'a' must be printable"),
        ({"metadata": {"a": "x" * 2048}}, r"^metadata holds 2049 bytes .* at most 2048"),
        ({"content_type": "text/plain\r\nX: y"}, r"^content_type must be printable ASCII"),
    ],
)
def test_metadata_that_s3_cannot_store_is_refused_before_any_byte_moves(
    options: dict[str, object], message: str, tmp_path: Path
) -> None:
    """These failed only once the request was built, after the source was read
    ("botocore rejected the request parameters"), or reached the server."""
    source = tmp_path / "a.bin"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match=message):
        copy(str(source), "s3://bucket/k", **options)  # type: ignore[arg-type]
