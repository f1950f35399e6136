"""create_client against a real moto server process, and the test servers themselves."""

from __future__ import annotations

import http.client
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from aqueuepipe.s3 import (
    DEFAULT_REGION,
    S3Client,
    create_client,
    resolve_endpoint_url,
    resolve_region,
)

MakeBucket = Callable[..., Awaitable[str]]


def _events(client: S3Client) -> Any:
    """botocore's event system (not part of the S3Client protocol)."""
    return cast(Any, client).meta.events


def _config(client: S3Client) -> Any:
    return cast(Any, client).meta.config


async def test_create_client_put_and_get(moto_server: Any, s3_client: S3Client) -> None:
    bucket = f"client-{uuid.uuid4().hex}"
    await s3_client.create_bucket(Bucket=bucket)
    await s3_client.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello moto")
    response = await s3_client.get_object(Bucket=bucket, Key="dir/hello.txt")
    async with response["Body"] as body:
        assert await body.read() == b"hello moto"
    assert s3_client.meta.endpoint_url == moto_server.endpoint_url


async def test_create_client_uses_path_style_with_endpoint(
    moto_server: Any, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    urls: list[str] = []

    def record(request: Any, **kwargs: object) -> None:
        urls.append(request.url)

    _events(s3_client).register("before-send.s3.PutObject", record)
    await s3_client.put_object(Bucket=bucket, Key="a/b", Body=b"x")
    assert urls == [f"{moto_server.endpoint_url}/{bucket}/a/b"]


async def test_create_client_endpoint_from_aws_endpoint_url_s3(
    moto_server: Any,
    unreachable_endpoint: str,
    make_bucket: MakeBucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = await make_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", unreachable_endpoint)  # the S3 one wins
    async with create_client() as client:
        assert client.meta.endpoint_url == moto_server.endpoint_url
        await client.put_object(Bucket=bucket, Key="k", Body=b"via AWS_ENDPOINT_URL_S3")
        assert _config(client).s3["addressing_style"] == "path"


async def test_create_client_endpoint_from_aws_endpoint_url(
    moto_server: Any, make_bucket: MakeBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = await make_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    async with create_client() as client:
        assert client.meta.endpoint_url == moto_server.endpoint_url
        await client.put_object(Bucket=bucket, Key="k", Body=b"via AWS_ENDPOINT_URL")
        head = await client.head_object(Bucket=bucket, Key="k")
        assert head["ContentLength"] == len(b"via AWS_ENDPOINT_URL")


async def test_create_client_argument_beats_environment(
    moto_server: Any, unreachable_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", unreachable_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", unreachable_endpoint)
    async with create_client(endpoint_url=moto_server.endpoint_url) as client:
        assert client.meta.endpoint_url == moto_server.endpoint_url
        response = await cast(Any, client).list_buckets()
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_resolve_endpoint_url_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint_url() is None
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    assert resolve_endpoint_url() == "http://generic:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2")
    assert resolve_endpoint_url() == "http://s3-only:2"
    assert resolve_endpoint_url("https://argument:3") == "https://argument:3"


def _resolved(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], argument: str
) -> tuple[str | None, str | None]:
    """``resolve_endpoint_url()`` and ``resolve_endpoint_url(argument)`` under ``env``."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return resolve_endpoint_url(), resolve_endpoint_url(argument)


def test_resolve_endpoint_url_empty_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": "http://generic:1"}
    assert _resolved(monkeypatch, env, "") == ("http://generic:1", "http://generic:1")


def test_resolve_endpoint_url_ignore_configured_endpoint_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"AWS_ENDPOINT_URL_S3": "http://s3-only:2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert _resolved(monkeypatch, env, "http://argument:3") == (None, "http://argument:3")


@pytest.mark.parametrize(
    "endpoint", ["ftp://host", "localhost:9000", "http://", "not a url", "http://host:99999"]
)
def test_create_client_rejects_invalid_endpoint_argument(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"invalid S3 endpoint .* from endpoint_url"):
        create_client(endpoint_url=endpoint)


def test_create_client_invalid_endpoint_variable_named_in_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "minio:9000")
    with pytest.raises(ValueError, match=r"'minio:9000' from AWS_ENDPOINT_URL_S3"):
        create_client()


def test_create_client_invalid_endpoint_message_hides_userinfo() -> None:
    with pytest.raises(ValueError) as info:
        create_client(endpoint_url="ftp://user:hunter2@host/")
    assert "hunter2" not in str(info.value)
    assert "'ftp://host/'" in str(info.value)


def test_an_endpoint_with_userinfo_is_refused_without_showing_it() -> None:
    """It was accepted, and the HTTP client then refused every request."""
    with pytest.raises(ValueError, match="must not hold user:password@") as caught:
        resolve_endpoint_url("http://someone:hunter2@127.0.0.1:9000")
    assert "hunter2" not in str(caught.value) and "someone" not in str(caught.value)
    assert "'http://127.0.0.1:9000' from endpoint_url" in str(caught.value)


def test_resolve_region_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert resolve_region() == DEFAULT_REGION == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert resolve_region() == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert resolve_region() == "eu-central-1"
    assert resolve_region("ap-south-1") == "ap-south-1"


async def test_create_client_region_from_environment(
    moto_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    async with create_client(endpoint_url=moto_server.endpoint_url) as client:
        assert client.meta.region_name == "eu-west-3"


async def test_create_client_region_argument(moto_server: Any) -> None:
    async with create_client(endpoint_url=moto_server.endpoint_url, region="sa-east-1") as client:
        assert client.meta.region_name == "sa-east-1"


async def test_create_client_config(moto_server: Any) -> None:
    async with create_client(
        endpoint_url=moto_server.endpoint_url,
        max_pool_connections=7,
        read_timeout=12.5,
        connect_timeout=3,
        max_attempts=2,
    ) as client:
        config = _config(client)
        assert config.max_pool_connections == 7
        assert config.read_timeout == 12.5
        assert config.connect_timeout == 3
        assert config.retries == {"mode": "standard", "total_max_attempts": 2}
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
        assert "aqueuepipe/" in config.user_agent_extra


async def test_create_client_without_endpoint_uses_aws_virtual_hosting() -> None:
    # Entering the context opens no connection; nothing is sent to AWS here.
    async with create_client(region="eu-west-1") as client:
        assert client.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"
        assert "addressing_style" not in (_config(client).s3 or {})


@pytest.mark.parametrize("checksum_when", ["when_supported", "when_required"])
async def test_create_client_checksum_setting_can_put_object(
    moto_server: Any, make_bucket: MakeBucket, checksum_when: Any
) -> None:
    bucket = await make_bucket()
    async with create_client(
        endpoint_url=moto_server.endpoint_url, checksum_when=checksum_when
    ) as client:
        config = _config(client)
        assert config.request_checksum_calculation == checksum_when
        assert config.response_checksum_validation == checksum_when
        put = await client.put_object(Bucket=bucket, Key="k", Body=b"hello")
        # botocore adds a CRC32 only when asked to compute checksums when supported.
        assert ("ChecksumCRC32" in put) is (checksum_when == "when_supported")
        response = await client.get_object(Bucket=bucket, Key="k")
        async with response["Body"] as body:
            assert await body.read() == b"hello"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_pool_connections": 0}, r"max_pool_connections must be at least 1"),
        ({"max_attempts": 0}, r"max_attempts must be at least 1"),
        ({"read_timeout": 0}, r"read_timeout must be positive"),
        ({"connect_timeout": -1}, r"connect_timeout must be positive"),
        ({"checksum_when": "always"}, r"checksum_when must be"),
    ],
)
def test_create_client_rejects_bad_arguments(kwargs: Mapping[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_client(**kwargs)


def test_create_client_touches_no_network_before_entering(unreachable_endpoint: str) -> None:
    context = create_client(endpoint_url=unreachable_endpoint)
    assert hasattr(context, "__aenter__")


def test_fake_aws_environment_has_no_real_credentials(
    fake_aws_environment: Mapping[str, str],
) -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "testing"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        assert name not in os.environ
    assert os.environ["AWS_CONFIG_FILE"] == os.environ["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert set(fake_aws_environment) == {n for n in os.environ if n.startswith("AWS_")}


async def test_moto_server_b_is_independent(
    make_bucket: MakeBucket, s3_client: S3Client, s3_client_b: S3Client
) -> None:
    bucket = await make_bucket(client=s3_client_b)
    await s3_client_b.put_object(Bucket=bucket, Key="k", Body=b"on b")
    assert s3_client.meta.endpoint_url != s3_client_b.meta.endpoint_url
    with pytest.raises(ClientError) as info:
        await s3_client.head_bucket(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "404"


async def _upload_two_parts(client: S3Client, bucket: str, part_size: int) -> dict[str, Any]:
    upload = await client.create_multipart_upload(Bucket=bucket, Key="mp")
    parts = []
    try:
        for number in (1, 2):
            part = await client.upload_part(
                Bucket=bucket,
                Key="mp",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=bytes([number]) * part_size,
            )
            parts.append({"PartNumber": number, "ETag": part["ETag"]})
        return await client.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
    except BaseException:
        await client.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])
        raise


async def test_moto_server_small_parts_accepts_small_parts(
    moto_server_small_parts: Any, make_bucket: MakeBucket
) -> None:
    min_size = int(moto_server_small_parts.settings["S3_UPLOAD_PART_MIN_SIZE"])
    async with create_client(endpoint_url=moto_server_small_parts.endpoint_url) as client:
        bucket = await make_bucket(client=client)
        response = await _upload_two_parts(client, bucket, min_size)
        assert response["ETag"].endswith('-2"')
        head = await client.head_object(Bucket=bucket, Key="mp")
        assert head["ContentLength"] == 2 * min_size


async def test_moto_server_default_rejects_parts_below_5_mib(
    moto_server_small_parts: Any, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    bucket = await make_bucket()
    min_size = int(moto_server_small_parts.settings["S3_UPLOAD_PART_MIN_SIZE"])
    with pytest.raises(ClientError) as info:
        await _upload_two_parts(s3_client, bucket, min_size)
    assert info.value.response["Error"]["Code"] == "EntityTooSmall"


def test_moto_server_sends_one_server_header(moto_server: Any) -> None:
    # aiohttp's strict parser (asyncio debug mode) rejects duplicated Server headers.
    connection = http.client.HTTPConnection(moto_server.host, moto_server.port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert [name for name, _ in response.getheaders() if name.lower() == "server"] == ["server"]
