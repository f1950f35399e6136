"""translate_error on real errors from a moto server process, a closed port and the OS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import pickle
import socket
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    FlexibleChecksumError,
    ReadTimeoutError,
)

from aqueuepipe import copy
from aqueuepipe._errors import (
    AqueuepipeError,
    ChecksumMismatchError,
    NoSuchBucketError,
    NoSuchKeyError,
    ObjectChangedError,
    TransferError,
)
from aqueuepipe.s3 import S3Client, create_client, translate_error

from .._helpers import MakeBucket, bucket_name

# Distinctive fake credentials: if they leak into a message, the test sees them.
ACCESS_KEY_ID = "AKIAAQUEUEPIPETEST01"
SECRET_KEY = "aqueuepipe/Secret+Key/never-in-messages-0123"
SESSION_TOKEN = "aqueuepipe-session-token-never-in-messages"
CREDENTIALS = (ACCESS_KEY_ID, SECRET_KEY, SESSION_TOKEN)

SRC = "s3://src-bucket/src-key"
DST = "s3://dst-bucket/dst-key"


@pytest.fixture(autouse=True)
def distinctive_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    yield


@pytest.fixture
def client(s3_client: S3Client) -> S3Client:
    """conftest's client of the moto server, made with the credentials above."""
    return s3_client


@pytest_asyncio.fixture
async def bucket(make_bucket: MakeBucket) -> str:
    return await make_bucket(prefix="translate")


async def failure(awaitable: Awaitable[object]) -> Exception:
    """The exception ``awaitable`` raises (the test fails if it raises none)."""
    try:
        await awaitable
    except Exception as exc:
        return exc
    pytest.fail("the operation did not fail")


def check_translation(err: TransferError, cause: BaseException) -> None:
    """What every translation guarantees: chained, ours, no credentials anywhere."""
    assert err.__cause__ is cause
    assert isinstance(err, AqueuepipeError)
    assert (err.src, err.dst) == (SRC, DST)
    text = f"{err}\n{err!r}\n{err.args}\n{err.reason}"
    for secret in CREDENTIALS:
        assert secret not in text


async def test_get_missing_key_is_no_such_key(client: S3Client, bucket: str) -> None:
    exc = await failure(client.get_object(Bucket=bucket, Key="missing/key"))
    assert isinstance(exc, ClientError)
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="missing/key", side="source")
    assert type(err) is NoSuchKeyError
    assert (err.bucket, err.key) == (bucket, "missing/key")
    assert f"source object 'missing/key' does not exist in bucket {bucket!r}" in str(err)
    check_translation(err, exc)


async def test_head_missing_key_is_no_such_key(client: S3Client, bucket: str) -> None:
    exc = await failure(client.head_object(Bucket=bucket, Key="missing"))
    # HEAD responses have no body: moto (like S3) reports only the status, "404".
    assert isinstance(exc, ClientError)
    assert exc.response["Error"]["Code"] == "404"
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="missing", side="source")
    assert type(err) is NoSuchKeyError
    assert "source object 'missing'" in str(err)
    check_translation(err, exc)


async def test_get_missing_bucket_is_no_such_bucket(client: S3Client) -> None:
    name = bucket_name("absent")
    exc = await failure(client.get_object(Bucket=name, Key="k"))
    err = translate_error(exc, src=SRC, dst=DST, bucket=name, key="k", side="source")
    assert type(err) is NoSuchBucketError
    assert err.bucket == name
    assert f"source bucket {name!r} does not exist" in str(err)
    check_translation(err, exc)


async def test_head_missing_bucket_without_key_is_no_such_bucket(client: S3Client) -> None:
    name = bucket_name("absent")
    exc = await failure(client.head_bucket(Bucket=name))
    err = translate_error(exc, src=SRC, dst=DST, bucket=name, key=None, side="destination")
    assert type(err) is NoSuchBucketError
    assert f"destination bucket {name!r} does not exist" in str(err)
    check_translation(err, exc)


async def test_put_to_missing_bucket_names_destination(client: S3Client) -> None:
    name = bucket_name("absent")
    exc = await failure(client.put_object(Bucket=name, Key="k", Body=b"x"))
    err = translate_error(exc, src=SRC, dst=DST, bucket=name, key="k", side="destination")
    assert type(err) is NoSuchBucketError
    assert str(err) == f"copy {SRC} -> {DST} failed: destination bucket {name!r} does not exist"
    check_translation(err, exc)


async def test_get_if_match_failed_is_object_changed(client: S3Client, bucket: str) -> None:
    await client.put_object(Bucket=bucket, Key="k", Body=b"new content")
    stale = '"0123456789abcdef0123456789abcdef"'
    exc = await failure(client.get_object(Bucket=bucket, Key="k", IfMatch=stale))
    err = translate_error(
        exc, src=SRC, dst=DST, bucket=bucket, key="k", side="source", expected_etag=stale
    )
    assert type(err) is ObjectChangedError
    assert err.expected_etag == stale
    assert f"source s3://{bucket}/k no longer matches (PreconditionFailed)" in str(err)
    check_translation(err, exc)


async def test_put_if_none_match_failed_is_not_object_changed(
    client: S3Client, bucket: str
) -> None:
    await client.put_object(Bucket=bucket, Key="k", Body=b"exists")
    exc = await failure(client.put_object(Bucket=bucket, Key="k", Body=b"x", IfNoneMatch="*"))
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="k", side="destination")
    assert type(err) is TransferError
    assert f"destination s3://{bucket}/k: a precondition of the write failed" in str(err)
    check_translation(err, exc)


async def test_invalid_range(client: S3Client, bucket: str) -> None:
    await client.put_object(Bucket=bucket, Key="k", Body=b"tiny")
    exc = await failure(client.get_object(Bucket=bucket, Key="k", Range="bytes=100-200"))
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="k", side="source")
    assert type(err) is TransferError
    assert "byte range is not satisfiable (InvalidRange in GetObject)" in str(err)
    check_translation(err, exc)


async def test_no_such_upload(client: S3Client, bucket: str) -> None:
    exc = await failure(client.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="nope"))
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="k", side="destination")
    assert type(err) is TransferError
    assert f"destination s3://{bucket}/k: the multipart upload no longer exists" in str(err)
    check_translation(err, exc)


async def test_part_too_small(client: S3Client, bucket: str) -> None:
    upload = await client.create_multipart_upload(Bucket=bucket, Key="mp")
    parts = []
    for number in (1, 2):
        part = await client.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=b"x"
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    exc = await failure(
        client.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
    )
    await client.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="mp", side="destination")
    assert "smaller than the server's minimum (EntityTooSmall" in str(err)
    check_translation(err, exc)


async def test_unknown_access_key_is_rejected_credentials(moto_server_with_auth: Any) -> None:
    async with create_client(endpoint_url=moto_server_with_auth.endpoint_url) as c:
        exc = await failure(c.get_object(Bucket="some-bucket", Key="k"))
    assert isinstance(exc, ClientError)
    assert exc.response["Error"]["Code"] == "InvalidAccessKeyId"
    err = translate_error(exc, src=SRC, dst=DST, bucket="some-bucket", key="k", side="source")
    assert type(err) is TransferError
    assert "the server rejected the credentials (InvalidAccessKeyId in GetObject)" in str(err)
    check_translation(err, exc)


async def test_head_with_unknown_access_key_is_access_denied(moto_server_with_auth: Any) -> None:
    async with create_client(endpoint_url=moto_server_with_auth.endpoint_url) as c:
        exc = await failure(c.head_object(Bucket="some-bucket", Key="k"))
    err = translate_error(exc, src=SRC, dst=DST, bucket="some-bucket", key="k", side="source")
    assert "source s3://some-bucket/k: access denied (403 in HeadObject)" in str(err)
    check_translation(err, exc)


async def test_unreachable_endpoint(unreachable_endpoint: str) -> None:
    async with create_client(endpoint_url=unreachable_endpoint, max_attempts=1) as c:
        exc = await failure(c.get_object(Bucket="bucket", Key="some/key"))
    assert isinstance(exc, EndpointConnectionError)
    err = translate_error(exc, src=SRC, dst=DST, bucket="bucket", key="some/key", side="source")
    assert type(err) is TransferError
    assert (
        f"source s3://bucket/some/key: cannot reach endpoint {unreachable_endpoint} "
        "(connection failed)"
    ) in str(err)
    check_translation(err, exc)


async def test_read_timeout() -> None:
    # A listening socket that never answers: the connection succeeds, the response
    # never comes, and the read timeout fires.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with create_client(endpoint_url=endpoint, max_attempts=1, read_timeout=0.2) as c:
            exc = await failure(c.head_object(Bucket="bucket", Key="k"))
    assert isinstance(exc, ReadTimeoutError)
    err = translate_error(exc, src=SRC, dst=DST, bucket="bucket", key="k", side="destination")
    assert f"destination s3://bucket/k: cannot reach endpoint {endpoint} (read timed out)" in str(
        err
    )
    check_translation(err, exc)


async def test_aiohttp_connector_error(unreachable_endpoint: str) -> None:
    async with aiohttp.ClientSession() as session:
        exc = await failure(session.get(unreachable_endpoint))
    assert isinstance(exc, aiohttp.ClientConnectorError)
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    port = unreachable_endpoint.rpartition(":")[2]
    assert f"source s3://b-1/k: cannot reach endpoint 127.0.0.1:{port}" in str(err)
    check_translation(err, exc)


async def put_with_a_wrong_sha256(client: S3Client, bucket: str) -> str:
    """Put ``bucket/k`` = b"data" stating the SHA-256 of other data, which moto stores
    without checking it; return that wrong checksum."""
    wrong = base64.b64encode(hashlib.sha256(b"other data").digest()).decode()
    await client.put_object(
        Bucket=bucket, Key="k", Body=b"data", ChecksumAlgorithm="SHA256", ChecksumSHA256=wrong
    )
    return wrong


def checking_client(server: Any) -> contextlib.AbstractAsyncContextManager[S3Client]:
    """A client of ``server`` that validates the checksums of the bodies it reads."""
    return create_client(endpoint_url=server.endpoint_url, checksum_when="when_supported")


async def test_body_not_matching_server_checksum_is_checksum_mismatch(
    moto_server: Any, client: S3Client, bucket: str
) -> None:
    wrong = await put_with_a_wrong_sha256(client, bucket)
    # A client that validates responses rejects the body when reading it.
    async with checking_client(moto_server) as c:
        response = await c.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
        async with response["Body"] as body:
            exc = await failure(body.read())
    assert isinstance(exc, FlexibleChecksumError)
    err = translate_error(exc, src=SRC, dst=DST, bucket=bucket, key="k", side="source")
    assert type(err) is ChecksumMismatchError
    assert err.expected == wrong
    assert err.actual == base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    assert f"source s3://{bucket}/k: the data received does not match" in str(err)
    check_translation(err, exc)


async def test_copy_with_a_client_that_checks_bodies_names_both_digests(
    moto_server: Any, client: S3Client, bucket: str, tmp_path: Path
) -> None:
    """A caller's client with checksum_when="when_supported" finds the bad body
    itself: the copy's error says what the bytes give and what the source reports
    (it said "the bytes give unknown, the source reports unknown")."""
    wrong = await put_with_a_wrong_sha256(client, bucket)
    async with checking_client(moto_server) as checking:
        with pytest.raises(ChecksumMismatchError) as info:
            await copy(f"s3://{bucket}/k", str(tmp_path / "k"), client=checking)
    err = info.value
    assert err.side == "source"
    assert err.actual == wrong
    assert err.expected == base64.b64encode(hashlib.sha256(b"data").digest()).decode()
    assert "unknown" not in str(err)
    assert not (tmp_path / "k").exists()


def test_os_error_names_file_and_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "file.bin"
    with pytest.raises(FileNotFoundError) as info:
        missing.open("rb")
    exc = info.value
    err = translate_error(exc, src=SRC, dst=DST, bucket="", key=None, side="destination")
    assert type(err) is TransferError
    assert f"destination file {str(missing)!r}: No such file or directory" in str(err)
    check_translation(err, exc)


def test_os_error_without_filename() -> None:
    exc = OSError(28, "No space left on device")
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="destination")
    assert str(err).endswith("destination s3://b-1/k: No space left on device")
    check_translation(err, exc)


def test_timeout_error() -> None:
    exc = TimeoutError()
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    assert str(err).endswith("source s3://b-1/k: timed out")
    check_translation(err, exc)


def _client_error(code: str, message: str, status: int, **extra: str) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message, **extra},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


def test_access_denied_message_is_fixed() -> None:
    exc = _client_error("AccessDenied", f"User {ACCESS_KEY_ID} is not authorized", 403)
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    assert str(err).endswith("source s3://b-1/k: access denied (AccessDenied in GetObject)")
    check_translation(err, exc)


def test_unknown_code_quotes_server_message_without_credentials() -> None:
    exc = _client_error("WeirdError", f"key {ACCESS_KEY_ID} secret {SECRET_KEY} " + "x" * 1000, 400)
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    assert "GetObject failed with WeirdError (HTTP 400): key <redacted> secret <redacted>" in str(
        err
    )
    assert len(str(err)) < 500
    check_translation(err, exc)


def test_unexpected_exception_is_wrapped() -> None:
    exc = RuntimeError(f"odd {SECRET_KEY}")
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    assert type(err) is TransferError
    assert str(err).endswith("source s3://b-1/k: RuntimeError: odd <redacted>")
    check_translation(err, exc)


def test_raise_from_keeps_the_same_cause() -> None:
    exc = TimeoutError()
    with pytest.raises(TransferError) as info:
        raise translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source") from exc
    assert info.value.__cause__ is exc


def test_transfer_error_passes_through_unchanged() -> None:
    original = NoSuchKeyError(SRC, DST, "b-1", "k")
    assert translate_error(original, src="x", dst="y", bucket="z", key=None, side="source") is (
        original
    )


def test_exception_group_translates_its_first_leaf() -> None:
    leaf = TimeoutError()
    group = ExceptionGroup("copy failed", [ExceptionGroup("inner", [leaf]), ValueError()])
    err = translate_error(group, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    assert str(err).endswith("timed out")
    assert err.__cause__ is leaf


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), KeyboardInterrupt()])
def test_cancellation_is_never_translated(exc: BaseException) -> None:
    with pytest.raises(TypeError, match=r"must propagate untranslated"):
        translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")


def test_translated_error_pickles_with_its_side() -> None:
    exc = _client_error("NoSuchKey", "The specified key does not exist.", 404)
    err = translate_error(exc, src=SRC, dst=DST, bucket="b-1", key="k", side="source")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is NoSuchKeyError
    assert str(clone) == str(err)
    assert "source object 'k'" in str(clone)
