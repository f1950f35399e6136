"""The fault-injecting proxy of tests/faultproxy.py, against the real moto server process.

Each fault is checked for the error a plain aiobotocore client sees, so the reliability
tests built on the proxy know what they exercise.  Buckets are made directly at moto
(``make_bucket``), so the proxy's log holds only what the test sent through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from aqueuepipe.s3 import S3Client, create_client

from .conftest import MakeBucket, MotoServer
from .faultproxy import (
    DelayBody,
    Exchange,
    FaultProxy,
    Match,
    RandomFaults,
    Reset,
    Rule,
    Stall,
    Status,
    Truncate,
    s3_operation,
)

MiB = 1024 * 1024

# What a broken body raises from StreamingBody.read(): aiobotocore wraps aiohttp's
# connection errors in ResponseStreamingError but lets aiohttp.ClientPayloadError
# (what aiohttp raises for both a reset and a short body) through as it is.
BROKEN_BODY = (aiohttp.ClientPayloadError, ResponseStreamingError)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@contextlib.asynccontextmanager
async def proxied(proxy: FaultProxy, **options: Any) -> AsyncIterator[S3Client]:
    """A client of the proxy; no botocore retries unless ``max_attempts`` says so."""
    options.setdefault("max_attempts", 1)
    async with create_client(endpoint_url=proxy.endpoint_url, **options) as client:
        yield client


async def get(client: S3Client, bucket: str, key: str, **kwargs: Any) -> bytes:
    response = await client.get_object(Bucket=bucket, Key=key, **kwargs)
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


async def read_until_error(
    client: S3Client, bucket: str, key: str, **kwargs: Any
) -> tuple[int, BaseException | None]:
    """How many body bytes a GetObject delivered before its body read failed, and how."""
    response = await client.get_object(Bucket=bucket, Key=key, **kwargs)
    received = 0
    async with response["Body"] as body:
        try:
            while chunk := await body.read(64 * 1024):
                received += len(chunk)
        except Exception as exc:
            return received, exc
    return received, None


def error_text(exc: BaseException) -> str:
    """``repr`` of ``exc`` and of the exceptions it was raised from."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(texts) < 10:
        texts.append(repr(seen))
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(texts)


def attempt_number(exchange: Exchange) -> int:
    """The attempt botocore numbered the request (its ``amz-sdk-request`` header)."""
    found = re.search(r"attempt=(\d+)", exchange.header("amz-sdk-request") or "")
    assert found is not None
    return int(found.group(1))


@pytest.fixture
async def bucket(make_bucket: MakeBucket) -> str:
    return await make_bucket(prefix="faultproxy")


# --- Pass-through ------------------------------------------------------------------


async def test_put_and_get_pass_through_byte_identical(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    data = payload(100_000)
    async with proxied(fault_proxy) as client:
        await client.put_object(Bucket=bucket, Key="small", Body=data)
        assert await get(client, bucket, "small") == data
    put, got = fault_proxy.log
    assert (put.operation, put.status, put.request_bytes) == ("PutObject", 200, len(data))
    assert (got.operation, got.status, got.response_bytes) == ("GetObject", 200, len(data))
    assert put.fault is None and got.fault is None


async def test_put_and_get_pass_through_12_mib_object(fault_proxy: FaultProxy, bucket: str) -> None:
    data = payload(12 * MiB, seed=1)
    async with proxied(fault_proxy) as client:
        await client.put_object(Bucket=bucket, Key="big", Body=data)
        assert await get(client, bucket, "big") == data
    assert [e.status for e in fault_proxy.log] == [200, 200]


async def test_put_expect_100_continue_is_answered_by_proxy(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    # botocore sends "Expect: 100-continue" with every body, however small.
    async with proxied(fault_proxy) as client:
        await client.put_object(Bucket=bucket, Key="k", Body=b"tiny")
        assert await get(client, bucket, "k") == b"tiny"
    (put, _) = fault_proxy.log
    assert put.header("expect") == "100-continue"
    assert (put.forwarded, put.request_bytes, put.status) == (True, 4, 200)


async def test_multipart_upload_pass_through_byte_identical(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    parts = [payload(5 * MiB, seed=2), payload(5 * MiB, seed=3), payload(2 * MiB, seed=4)]
    async with proxied(fault_proxy) as client:
        upload = await client.create_multipart_upload(Bucket=bucket, Key="mp")
        etags = []
        for number, part in enumerate(parts, start=1):
            response = await client.upload_part(
                Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=number, Body=part
            )
            etags.append({"PartNumber": number, "ETag": response["ETag"]})
        await client.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": etags},
        )
        assert await get(client, bucket, "mp") == b"".join(parts)
    assert [e.operation for e in fault_proxy.log] == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
        "GetObject",
    ]
    assert all(e.status == 200 for e in fault_proxy.log)


async def test_client_connection_kept_alive_across_requests(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    async with proxied(fault_proxy) as client:
        await client.head_bucket(Bucket=bucket)
        await client.put_object(Bucket=bucket, Key="k", Body=b"one")
        await client.head_object(Bucket=bucket, Key="k")
        assert await get(client, bucket, "k") == b"one"
        await client.list_objects_v2(Bucket=bucket)
        await client.delete_object(Bucket=bucket, Key="k")
    assert len(fault_proxy.log) == 6
    assert {e.connection for e in fault_proxy.log} == {1}


async def test_chunked_request_body_is_forwarded(fault_proxy: FaultProxy, bucket: str) -> None:
    pieces = [bytes([65 + i]) * 100_000 for i in range(5)]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    # aiohttp sends a generator body with "Transfer-Encoding: chunked"; moto takes
    # an unsigned PutObject.
    async with aiohttp.ClientSession() as session:
        url = f"{fault_proxy.endpoint_url}/{bucket}/chunked"
        async with session.put(url, data=body()) as response:
            assert response.status == 200
    async with proxied(fault_proxy) as client:
        assert await get(client, bucket, "chunked") == b"".join(pieces)
    assert fault_proxy.log[0].header("transfer-encoding") == "chunked"


async def test_fault_proxy_fixture_fronts_the_session_moto_server(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="direct", Body=b"written to moto")
    async with proxied(fault_proxy) as client:
        assert await get(client, bucket, "direct") == b"written to moto"


# --- Status faults -----------------------------------------------------------------


async def test_fail_answers_slowdown_without_forwarding(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("GetObject", status=503)
    async with proxied(fault_proxy) as client:
        with pytest.raises(ClientError) as caught:
            await get(client, bucket, "any")
    error = caught.value.response
    assert error["Error"]["Code"] == "SlowDown"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.forwarded) == (503, False)
    assert exchange.fault == Status(503)


async def test_fail_answers_internal_error_with_s3_xml(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("HeadBucket", status=500)
    fault_proxy.fail("ListObjectsV2", status=500, s3_code="Custom", message="broken <here>")
    async with proxied(fault_proxy) as client:
        with pytest.raises(ClientError) as listed:
            await client.list_objects_v2(Bucket=bucket)
        with pytest.raises(ClientError) as headed:
            await client.head_bucket(Bucket=bucket)
    assert listed.value.response["Error"] == {"Code": "Custom", "Message": "broken <here>"}
    # A HEAD response has no body: botocore can only name the status.
    assert headed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


async def test_fail_put_answers_before_the_body_and_closes(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("PutObject")
    async with proxied(fault_proxy) as client:
        with pytest.raises(ClientError, match="SlowDown"):
            await client.put_object(Bucket=bucket, Key="k", Body=payload(300_000))
        listing = await client.list_objects_v2(Bucket=bucket)
    assert "Contents" not in listing
    put, listed = fault_proxy.log
    assert (put.request_bytes, put.forwarded) == (0, False)  # the body never came
    assert put.connection != listed.connection


async def test_fail_without_expect_reads_body_and_keeps_connection(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("PutObject")
    async with aiohttp.ClientSession() as session:
        url = f"{fault_proxy.endpoint_url}/{bucket}/k"
        async with session.put(url, data=b"x" * 1000) as response:
            assert response.status == 503
            assert "<Code>SlowDown</Code>" in await response.text()
        async with session.put(url, data=b"y" * 10) as response:
            assert response.status == 200
    first, second = fault_proxy.log
    assert first.request_bytes == 1000
    assert first.connection == second.connection


async def test_fail_retry_after_sets_headers(fault_proxy: FaultProxy, bucket: str) -> None:
    fault_proxy.fail("ListObjectsV2", retry_after=1.5)
    async with proxied(fault_proxy) as client:
        with pytest.raises(ClientError) as caught:
            await client.list_objects_v2(Bucket=bucket)
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["retry-after"], headers["x-amz-retry-after"]) == ("2", "1500")


async def test_fail_retried_by_botocore_when_attempts_allow(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("PutObject", status=503, times=2)
    async with proxied(fault_proxy, max_attempts=3) as client:
        await client.put_object(Bucket=bucket, Key="k", Body=b"third time")
        assert await get(client, bucket, "k") == b"third time"
    puts = fault_proxy.exchanges("PutObject")
    assert [e.status for e in puts] == [503, 503, 200]
    assert [attempt_number(e) for e in puts] == [1, 2, 3]


async def test_fail_forever_exhausts_botocore_attempts(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    rule = fault_proxy.fail("HeadBucket", status=500, times=None)
    async with proxied(fault_proxy, max_attempts=2) as client:
        with pytest.raises(ClientError, match="reached max retries: 1"):
            await client.head_bucket(Bucket=bucket)
    assert [e.status for e in fault_proxy.log] == [500, 500]
    assert (rule.applied, rule.exhausted) == (2, False)


# --- Broken bodies -----------------------------------------------------------------


async def test_reset_breaks_get_body_after_exact_bytes(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=payload(1 * MiB))
    fault_proxy.reset("GetObject", after_bytes=200_000)
    async with proxied(fault_proxy) as client:
        received, error = await read_until_error(client, bucket, "k")
    assert received == 200_000
    assert isinstance(error, BROKEN_BODY)
    assert "ConnectionResetError" in error_text(error)
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.response_bytes) == (200, 200_000)
    assert exchange.fault == Reset(200_000)


async def test_truncate_gives_short_get_body(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=payload(1 * MiB))
    fault_proxy.truncate("GetObject", after_bytes=300_000)
    async with proxied(fault_proxy) as client:
        received, error = await read_until_error(client, bucket, "k")
    assert received == 300_000
    assert isinstance(error, BROKEN_BODY)
    assert "Not enough data" in error_text(error)
    assert "ConnectionResetError" not in error_text(error)


async def test_reset_after_upstream_processed_loses_only_the_answer(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    # POST is not idempotent, so aiohttp does not resend it (see the next test).
    fault_proxy.reset("CreateMultipartUpload")
    async with proxied(fault_proxy) as client:
        with pytest.raises(ConnectionClosedError):
            await client.create_multipart_upload(Bucket=bucket, Key="k")
    uploads = await s3_client.list_multipart_uploads(Bucket=bucket)
    assert [upload["Key"] for upload in uploads["Uploads"]] == ["k"]
    (exchange,) = fault_proxy.log
    assert exchange.forwarded


async def test_reset_before_response_is_resent_once_by_aiohttp(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    # aiohttp resends an idempotent request (GET, HEAD, PUT, DELETE) once when the
    # connection fails before the response head, below botocore: max_attempts=1
    # still succeeds, and both requests say attempt=1.
    fault_proxy.reset("PutObject")
    async with proxied(fault_proxy) as client:
        await client.put_object(Bucket=bucket, Key="k", Body=b"resent")
        assert await get(client, bucket, "k") == b"resent"
    first, second, _ = fault_proxy.log
    assert (first.status, first.forwarded, second.status) == (None, True, 200)
    assert attempt_number(first) == attempt_number(second) == 1


async def test_reset_twice_before_response_fails_put(fault_proxy: FaultProxy, bucket: str) -> None:
    fault_proxy.reset("PutObject", times=2)
    async with proxied(fault_proxy) as client:
        with pytest.raises(BotoCoreError) as caught:
            await client.put_object(Bucket=bucket, Key="k", Body=b"lost")
    assert "ConnectionResetError" in error_text(caught.value) or "reset" in error_text(caught.value)
    assert [e.status for e in fault_proxy.log] == [None, None]


# --- Stalls ------------------------------------------------------------------------


async def test_stall_longer_than_read_timeout_times_out(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.stall("GetObject", seconds=0.8)
    async with proxied(fault_proxy, read_timeout=0.5) as client:
        with pytest.raises(ReadTimeoutError):
            await get(client, bucket, "k")
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.forwarded) == (None, False)


async def test_stall_with_forward_only_delays(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"slow")
    fault_proxy.stall("GetObject", seconds=0.2, forward=True)
    async with proxied(fault_proxy) as client:
        assert await get(client, bucket, "k") == b"slow"
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.forwarded) == (200, True)


async def test_delay_body_times_out_body_read(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=payload(100_000))
    fault_proxy.delay_body("GetObject", seconds=0.8, after_bytes=100)
    async with proxied(fault_proxy, read_timeout=0.5) as client:
        received, error = await read_until_error(client, bucket, "k")
    assert received == 100
    assert isinstance(error, ReadTimeoutError)


async def test_close_ends_a_stalled_exchange(moto_server: MotoServer, bucket: str) -> None:
    arrived = asyncio.Event()

    def arrive(exchange: Exchange) -> bool:
        arrived.set()
        return True

    proxy = FaultProxy(moto_server.endpoint_url)
    await proxy.start()
    try:
        proxy.stall(Match(where=arrive), seconds=30)
        async with proxied(proxy) as client:
            request = asyncio.create_task(client.head_bucket(Bucket=bucket))
            await arrived.wait()
            await proxy.close()
            with pytest.raises(BotoCoreError):
                await request
    finally:
        await proxy.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("faultproxy")]


# --- Rules -------------------------------------------------------------------------


async def test_times_limits_the_faulted_requests(fault_proxy: FaultProxy, bucket: str) -> None:
    rule = fault_proxy.fail("HeadBucket", times=2)
    async with proxied(fault_proxy) as client:
        for _ in range(2):
            with pytest.raises(ClientError):
                await client.head_bucket(Bucket=bucket)
        await client.head_bucket(Bucket=bucket)
    assert [e.status for e in fault_proxy.log] == [503, 503, 200]
    assert (rule.seen, rule.applied, rule.exhausted) == (3, 2, True)


async def test_skip_lets_first_matching_requests_through(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("HeadBucket", skip=1)
    async with proxied(fault_proxy) as client:
        await client.head_bucket(Bucket=bucket)
        with pytest.raises(ClientError):
            await client.head_bucket(Bucket=bucket)
        await client.head_bucket(Bucket=bucket)
    assert [e.status for e in fault_proxy.log] == [200, 503, 200]


async def test_match_on_part_number_faults_one_part(fault_proxy: FaultProxy, bucket: str) -> None:
    fault_proxy.fail(Match(operation="UploadPart", query=r"(^|&)partNumber=2(&|$)"))
    async with proxied(fault_proxy) as client:
        upload = await client.create_multipart_upload(Bucket=bucket, Key="k")
        part = {"Bucket": bucket, "Key": "k", "UploadId": upload["UploadId"]}
        await client.upload_part(**part, PartNumber=1, Body=b"one")
        with pytest.raises(ClientError, match="SlowDown"):
            await client.upload_part(**part, PartNumber=2, Body=b"two")
        await client.upload_part(**part, PartNumber=2, Body=b"two")
        await client.abort_multipart_upload(**part)
    assert [(e.operation, e.params.get("partNumber"), e.status) for e in fault_proxy.log] == [
        ("CreateMultipartUpload", None, 200),
        ("UploadPart", "1", 200),
        ("UploadPart", "2", 503),
        ("UploadPart", "2", 200),
        ("AbortMultipartUpload", None, 204),
    ]


async def test_match_on_range_header_faults_only_ranged_get(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    data = payload(10_000)
    put = await s3_client.put_object(Bucket=bucket, Key="k", Body=data)
    fault_proxy.reset(Match(operation="GetObject", headers={"Range": r"^bytes=\d+-$"}))
    async with proxied(fault_proxy) as client:
        assert await get(client, bucket, "k") == data
        received, error = await read_until_error(
            client, bucket, "k", Range="bytes=4000-", IfMatch=put["ETag"]
        )
    assert (received, isinstance(error, BROKEN_BODY)) == (0, True)
    whole, ranged = fault_proxy.log
    assert (whole.header("range"), whole.fault) == (None, None)
    assert ranged.header("range") == "bytes=4000-"
    assert ranged.header("if-match") == put["ETag"]
    assert (ranged.status, ranged.fault) == (206, Reset())


async def test_first_applicable_rule_wins(fault_proxy: FaultProxy, bucket: str) -> None:
    first = fault_proxy.fail("HeadBucket", status=500)
    second = fault_proxy.fail(Match(method="HEAD"), status=503, times=None)
    async with proxied(fault_proxy) as client:
        for _ in range(2):
            with pytest.raises(ClientError):
                await client.head_bucket(Bucket=bucket)
    assert [e.status for e in fault_proxy.log] == [500, 503]
    assert (first.applied, second.seen, second.applied) == (1, 1, 1)


async def test_clear_removes_rules_and_keeps_log(fault_proxy: FaultProxy, bucket: str) -> None:
    fault_proxy.fail(times=None)
    async with proxied(fault_proxy) as client:
        with pytest.raises(ClientError):
            await client.head_bucket(Bucket=bucket)
        fault_proxy.clear()
        await client.head_bucket(Bucket=bucket)
    assert fault_proxy.rules == []
    assert [e.status for e in fault_proxy.log] == [503, 200]


async def test_log_records_request_and_outcome(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="dir/a b", Body=b"12345")
    fault_proxy.truncate("GetObject", after_bytes=2)
    async with proxied(fault_proxy) as client:
        await client.list_objects_v2(Bucket=bucket, Prefix="dir/")
        received, _ = await read_until_error(client, bucket, "dir/a b")
    listed, got = fault_proxy.log
    assert (listed.number, listed.method, listed.path) == (1, "GET", f"/{bucket}")
    assert listed.params == {"list-type": "2", "prefix": "dir/", "encoding-type": "url"}
    assert (listed.operation, listed.status, listed.fault) == ("ListObjectsV2", 200, None)
    assert (got.number, got.method, got.path, got.query) == (2, "GET", f"/{bucket}/dir/a%20b", "")
    assert (got.bucket, got.key, got.operation) == (bucket, "dir/a b", "GetObject")
    assert (got.status, got.fault, got.response_bytes, received) == (200, Truncate(2), 2, 2)
    assert fault_proxy.exchanges(Match(key="dir/a b")) == [got]


# --- Random faults -----------------------------------------------------------------


async def test_random_faults_same_seed_same_faults(
    fault_proxy: FaultProxy, make_bucket: MakeBucket
) -> None:
    async def run(seed: int) -> list[tuple[str, str | None, str]]:
        fault_proxy.clear()
        fault_proxy.log.clear()
        bucket = await make_bucket(prefix="random")
        fault_proxy.random_faults(
            0.3, seed=seed, kinds=("reset", "status", "truncate"), match=Match(method="GET")
        )
        async with proxied(fault_proxy) as client:
            for i in range(12):
                await client.put_object(Bucket=bucket, Key=f"k{i}", Body=payload(5000, i))
                with contextlib.suppress(ClientError, BotoCoreError, *BROKEN_BODY):
                    await get(client, bucket, f"k{i}")
        return [
            (e.operation, e.key, type(e.fault).__name__ if e.fault else "-")
            for e in fault_proxy.log
        ]

    first = await run(seed=7)
    assert await run(seed=7) == first
    assert {kind for _, _, kind in first} > {"-"}  # some faults, and some not
    assert await run(seed=8) != first


def test_random_faults_rate_and_kinds() -> None:
    rule = RandomFaults(0.05, seed=1)
    faults = [rule.select(Exchange.of("GET", f"/b/key{i}")) for i in range(4000)]
    applied = [fault for fault in faults if fault is not None]
    assert 140 <= len(applied) <= 260  # 200 expected; fixed by the seed
    assert {type(fault) for fault in applied} == {Reset, Status, Stall, Truncate}
    assert rule.applied == len(applied)


def test_random_faults_ignore_bucket_and_arrival_order() -> None:
    keys = [f"key{i}" for i in range(500)]
    shuffled = random.Random(3).sample(keys, len(keys))

    def faulted(bucket: str, order: list[str]) -> dict[str, Any]:
        rule = RandomFaults(0.1, seed="s", kinds=("reset", "delay_body"))
        return {key: rule.select(Exchange.of("GET", f"/{bucket}/{key}")) for key in order}

    assert faulted("one", keys) == faulted("two", shuffled)


def test_random_faults_retry_draws_again() -> None:
    rule = RandomFaults(0.5, seed=0, kinds=("status",))
    draws = [rule.select(Exchange.of("PUT", "/b/k")) is not None for _ in range(40)]
    assert any(draws) and not all(draws)


# --- Pure parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "headers", "operation"),
    [
        ("GET", "/", {}, "ListBuckets"),
        ("PUT", "/b", {}, "CreateBucket"),
        ("HEAD", "/b", {}, "HeadBucket"),
        ("GET", "/b?list-type=2&prefix=x", {}, "ListObjectsV2"),
        ("GET", "/b?uploads", {}, "ListMultipartUploads"),
        ("POST", "/b?delete", {}, "DeleteObjects"),
        ("GET", "/b/k", {}, "GetObject"),
        ("GET", "/b/k", {"range": "bytes=1-"}, "GetObject"),
        ("HEAD", "/b/k", {}, "HeadObject"),
        ("PUT", "/b/k", {}, "PutObject"),
        ("PUT", "/b/k", {"x-amz-copy-source": "/a/x"}, "CopyObject"),
        ("POST", "/b/k?uploads", {}, "CreateMultipartUpload"),
        ("PUT", "/b/k?uploadId=u&partNumber=3", {}, "UploadPart"),
        ("PUT", "/b/k?partNumber=3&uploadId=u", {"x-amz-copy-source": "/a/x"}, "UploadPartCopy"),
        ("GET", "/b/k?uploadId=u", {}, "ListParts"),
        ("POST", "/b/k?uploadId=u", {}, "CompleteMultipartUpload"),
        ("DELETE", "/b/k?uploadId=u", {}, "AbortMultipartUpload"),
        ("DELETE", "/b/k", {}, "DeleteObject"),
        ("GET", "/b/k?tagging", {}, "Unknown"),
        ("GET", "/b/k?x-id=GetObject", {}, "GetObject"),
    ],
)
def test_s3_operation_infers_operation(
    method: str, target: str, headers: dict[str, str], operation: str
) -> None:
    path, _, query = target.partition("?")
    assert s3_operation(method, path, query, headers) == operation


def test_match_criteria_all_must_hold() -> None:
    ranged = Exchange.of("GET", "/b/dir/k%201?versionId=3", [("Range", "bytes=10-")])
    assert Match().matches(ranged)
    assert Match(operation=("GetObject", "HeadObject"), method="GET").matches(ranged)
    assert Match(bucket="b", key="dir/k 1", path=r"^/b/dir/", query="versionId").matches(ranged)
    assert Match(headers={"RANGE": r"^bytes=\d+-$"}).matches(ranged)
    assert Match(where=lambda e: e.params["versionId"] == "3").matches(ranged)
    assert not Match(operation="GetObject", method="HEAD").matches(ranged)
    assert not Match(key="dir/k").matches(ranged)
    assert not Match(headers={"if-match": ""}).matches(ranged)


def test_rule_counts_seen_and_applied() -> None:
    rule = Rule("HeadObject", Status(500), times=2, skip=1)
    head = Exchange.of("HEAD", "/b/k")
    results = [rule.select(head) for _ in range(5)]
    assert results == [None, Status(500), Status(500), None, None]
    assert rule.select(Exchange.of("GET", "/b/k")) is None
    assert (rule.seen, rule.applied, rule.exhausted) == (5, 2, True)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Reset(-1),
        lambda: Truncate(after_fraction=1.0),
        lambda: Status(200),
        lambda: Status(503, retry_after=-1),
        lambda: Stall(61),
        lambda: DelayBody(-0.1),
        lambda: Rule(None, Status(), times=-1),
        lambda: RandomFaults(1.5, seed=0),
        lambda: RandomFaults(0.1, seed=0, kinds=()),
        lambda: FaultProxy("https://example.com"),
    ],
)
def test_invalid_fault_settings_raise_value_error(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


async def test_endpoint_url_needs_a_started_proxy(moto_server: MotoServer) -> None:
    proxy = FaultProxy(moto_server.endpoint_url)
    with pytest.raises(RuntimeError):
        proxy.endpoint_url  # noqa: B018
    async with proxy:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", proxy.endpoint_url)
    await proxy.close()  # idempotent
    with pytest.raises(RuntimeError):
        await proxy.start()
