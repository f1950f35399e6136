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

from ._helpers import MakeBucket, MiB, MotoServer, get, payload
from .faultproxy import (
    DelayBody,
    Exchange,
    FaultProxy,
    FlipByte,
    Match,
    RandomFaults,
    Reset,
    RewriteETags,
    Rule,
    Stall,
    Status,
    Truncate,
    s3_operation,
)

# What a broken body raises from StreamingBody.read(): aiobotocore wraps aiohttp's
# connection errors in ResponseStreamingError but lets aiohttp.ClientPayloadError
# (what aiohttp raises for both a reset and a short body) through as it is.
BROKEN_BODY = (aiohttp.ClientPayloadError, ResponseStreamingError)


@contextlib.asynccontextmanager
async def proxied(proxy: FaultProxy, **options: Any) -> AsyncIterator[S3Client]:
    """A client of the proxy; no botocore retries unless ``max_attempts`` says so."""
    options.setdefault("max_attempts", 1)
    async with create_client(endpoint_url=proxy.endpoint_url, **options) as client:
        yield client


async def gets_through(proxy: FaultProxy, bucket: str, key: str, times: int = 1) -> list[bytes]:
    """The bodies of ``times`` GETs of ``bucket/key``, one after another, through ``proxy``."""
    async with proxied(proxy) as client:
        return [await get(client, bucket, key) for _ in range(times)]


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


def flipped(data: bytes, offset: int) -> bytes:
    """``data`` with the byte at ``offset`` XORed with 0x01, as FlipByte does."""
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def rewritten(etag: str) -> str:
    """The ETag the tests' rewrite_etags gives for ``etag``: recognisable, still quoted."""
    return f'"rewritten-{etag.strip(chr(34))}"'


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
    assert await gets_through(fault_proxy, bucket, "chunked") == [b"".join(pieces)]
    assert fault_proxy.log[0].header("transfer-encoding") == "chunked"


async def test_fault_proxy_fixture_fronts_the_session_moto_server(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="direct", Body=b"written to moto")
    assert await gets_through(fault_proxy, bucket, "direct") == [b"written to moto"]


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


async def test_fail_cut_after_sends_full_length_head_then_resets(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("GetObject", status=503, cut_after=20)
    url = f"{fault_proxy.endpoint_url}/{bucket}/k"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 503
        announced = int(response.headers["Content-Length"])
        with pytest.raises(aiohttp.ClientPayloadError) as caught:
            await response.read()
    assert announced > 20
    assert "ConnectionResetError" in error_text(caught.value)
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.response_bytes) == (503, 20)
    assert exchange.fault == Status(503, cut_after=20)


async def test_fail_cut_after_is_connection_closed_for_non_streaming_operation(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("ListObjectsV2", status=503, cut_after=20)
    async with proxied(fault_proxy) as client:
        with pytest.raises(ConnectionClosedError):
            await client.list_objects_v2(Bucket=bucket)


async def test_fail_cut_after_retried_by_botocore_when_attempts_allow(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.fail("ListObjectsV2", status=500, cut_after=20)
    async with proxied(fault_proxy, max_attempts=2) as client:
        listing = await client.list_objects_v2(Bucket=bucket)
    assert listing["KeyCount"] == 0
    assert [e.status for e in fault_proxy.log] == [500, 200]


# --- Broken bodies -----------------------------------------------------------------


async def broken_get_body(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str, fault: str, after_bytes: int
) -> BaseException:
    """The error of a 1 MiB GetObject body broken by ``fault_proxy.<fault>`` after
    ``after_bytes``, which it checks were delivered first."""
    await s3_client.put_object(Bucket=bucket, Key="k", Body=payload(1 * MiB))
    getattr(fault_proxy, fault)("GetObject", after_bytes=after_bytes)
    async with proxied(fault_proxy) as client:
        received, error = await read_until_error(client, bucket, "k")
    assert received == after_bytes
    assert isinstance(error, BROKEN_BODY)
    return error


async def test_reset_breaks_get_body_after_exact_bytes(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    error = await broken_get_body(fault_proxy, s3_client, bucket, "reset", 200_000)
    assert "ConnectionResetError" in error_text(error)
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.response_bytes) == (200, 200_000)
    assert exchange.fault == Reset(200_000)


async def test_truncate_gives_short_get_body(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    error = await broken_get_body(fault_proxy, s3_client, bucket, "truncate", 300_000)
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
    assert await gets_through(fault_proxy, bucket, "k") == [b"slow"]
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


# --- Flipped bytes -----------------------------------------------------------------


async def test_flip_corrupts_one_byte_of_get_body(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    data = payload(200_000)
    await s3_client.put_object(Bucket=bucket, Key="k", Body=data)
    fault_proxy.flip("GetObject", offset=150_000)
    assert await gets_through(fault_proxy, bucket, "k") == [flipped(data, 150_000)]
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.response_bytes) == (200, len(data))
    assert (exchange.fault, exchange.flipped) == (FlipByte(150_000), 150_000)


async def test_flip_fraction_picks_offset_from_content_length(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    data = payload(10_000)
    await s3_client.put_object(Bucket=bucket, Key="k", Body=data)
    fault_proxy.flip("GetObject", fraction=0.25)
    assert await gets_through(fault_proxy, bucket, "k") == [flipped(data, 2500)]
    assert fault_proxy.log[0].flipped == 2500


async def test_flip_request_stores_corrupted_object(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    data = payload(100_000)
    fault_proxy.flip("PutObject", offset=5, direction="request")
    async with proxied(fault_proxy) as client:
        await client.put_object(Bucket=bucket, Key="k", Body=data)
    assert await get(s3_client, bucket, "k") == flipped(data, 5)
    (exchange,) = fault_proxy.log
    assert (exchange.status, exchange.request_bytes, exchange.flipped) == (200, len(data), 5)


async def test_flip_request_counts_chunked_data_not_framing(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    pieces = [bytes([65 + i]) * 100_000 for i in range(3)]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    fault_proxy.flip("PutObject", offset=150_000, direction="request")
    async with aiohttp.ClientSession() as session:
        url = f"{fault_proxy.endpoint_url}/{bucket}/chunked"
        async with session.put(url, data=body()) as response:
            assert response.status == 200
    assert await get(s3_client, bucket, "chunked") == flipped(b"".join(pieces), 150_000)
    (exchange,) = fault_proxy.log
    assert (exchange.header("transfer-encoding"), exchange.flipped) == ("chunked", 150_000)


async def test_flip_beyond_body_changes_nothing(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"short")
    fault_proxy.flip("GetObject", offset=5)
    assert await gets_through(fault_proxy, bucket, "k") == [b"short"]
    (exchange,) = fault_proxy.log
    assert (exchange.fault, exchange.flipped) == (FlipByte(5), None)


async def test_flip_default_corrupts_first_attempt_only(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"abc")
    fault_proxy.flip("GetObject")
    assert await gets_through(fault_proxy, bucket, "k", times=2) == [b"`bc", b"abc"]


async def test_flip_times_none_corrupts_every_attempt(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"abc")
    fault_proxy.flip("GetObject", offset=2, times=None)
    assert await gets_through(fault_proxy, bucket, "k", times=3) == [b"abb"] * 3


# --- Transforms ----------------------------------------------------------------------


async def test_rewrite_etags_replaces_etag_headers(fault_proxy: FaultProxy, bucket: str) -> None:
    seen: list[str] = []

    def replace(etag: str) -> str:
        seen.append(etag)
        return rewritten(etag)

    fault_proxy.rewrite_etags(replace)
    async with proxied(fault_proxy) as client:
        put = await client.put_object(Bucket=bucket, Key="k", Body=b"hello")
        head = await client.head_object(Bucket=bucket, Key="k")
    md5 = "5d41402abc4b2a76b9719d911017c592"
    assert seen == [f'"{md5}"', f'"{md5}"']  # as sent: quotes included
    assert put["ETag"] == head["ETag"] == f'"rewritten-{md5}"'


async def test_rewrite_etags_replaces_etags_in_xml_bodies(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="src", Body=b"source")
    fault_proxy.rewrite_etags(rewritten)
    async with proxied(fault_proxy) as client:
        upload = await client.create_multipart_upload(Bucket=bucket, Key="mp")
        part = {"Bucket": bucket, "Key": "mp", "UploadId": upload["UploadId"], "PartNumber": 1}
        uploaded = await client.upload_part(**part, Body=b"part")
        any_client: Any = client  # S3Client does not list UploadPartCopy
        copied = await any_client.upload_part_copy(**part, CopySource=f"{bucket}/src")
        parts = await client.list_parts(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])
        await client.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"])
    assert uploaded["ETag"].startswith('"rewritten-')
    assert copied["CopyPartResult"]["ETag"].startswith('"rewritten-')
    assert [p["ETag"] for p in parts["Parts"]] == [copied["CopyPartResult"]["ETag"]]
    listed = fault_proxy.exchanges("ListParts")[0]
    assert listed.response_bytes == int(parts["ResponseMetadata"]["HTTPHeaders"]["content-length"])


async def test_rewrite_etags_completes_multipart_with_rewritten_etag(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    part_data = payload(5 * 1024 * 1024)
    upload = await s3_client.create_multipart_upload(Bucket=bucket, Key="mp")
    ids = {"Bucket": bucket, "Key": "mp", "UploadId": upload["UploadId"]}
    part = await s3_client.upload_part(**ids, PartNumber=1, Body=part_data)
    fault_proxy.rewrite_etags(rewritten, match="CompleteMultipartUpload")
    async with proxied(fault_proxy) as client:
        completed = await client.complete_multipart_upload(
            **ids, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
        )
    head = await s3_client.head_object(Bucket=bucket, Key="mp")
    assert completed["ETag"] == rewritten(head["ETag"])


def test_rewrite_etags_decodes_and_reencodes_entities() -> None:
    seen: list[str] = []

    def replace(etag: str) -> str:
        seen.append(etag)
        return '"new<1>"'

    transform = RewriteETags(replace)
    body = b'<R><ETag>&quot;abc&quot;</ETag><ETag>"def"</ETag></R>'
    assert transform.edit_body(body) == (
        b'<R><ETag>&quot;new&lt;1&gt;&quot;</ETag><ETag>"new&lt;1&gt;"</ETag></R>'
    )
    assert seen == ['"abc"', '"def"']


async def test_rewrite_etags_leaves_get_body_untouched(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    data = b'<?xml version="1.0"?><R><ETag>"kept"</ETag></R>'
    await s3_client.put_object(Bucket=bucket, Key="k.xml", Body=data, ContentType="application/xml")
    fault_proxy.rewrite_etags(rewritten)
    async with proxied(fault_proxy) as client:
        response = await client.get_object(Bucket=bucket, Key="k.xml")
        async with response["Body"] as body:
            assert await body.read() == data
    assert response["ETag"].startswith('"rewritten-')


async def test_rewrite_etags_applies_besides_a_fault_rule(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"abc")
    fault_proxy.rewrite_etags(rewritten)
    fault_proxy.flip("GetObject")
    async with proxied(fault_proxy) as client:
        response = await client.get_object(Bucket=bucket, Key="k")
        async with response["Body"] as body:
            assert await body.read() == b"`bc"
    assert response["ETag"].startswith('"rewritten-')


async def test_transform_match_limits_edited_responses(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    fault_proxy.rewrite_etags(rewritten, match="HeadObject")
    async with proxied(fault_proxy) as client:
        put = await client.put_object(Bucket=bucket, Key="k", Body=b"hello")
        head = await client.head_object(Bucket=bucket, Key="k")
    assert head["ETag"] == rewritten(put["ETag"]) != put["ETag"]


async def test_drop_checksum_headers_removes_checksum_headers(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"hello", ChecksumAlgorithm="SHA256")
    direct = await s3_client.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" in direct  # moto sends it; the proxy takes it away
    fault_proxy.drop_checksum_headers()
    async with proxied(fault_proxy) as client:
        head = await client.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head
    assert not [h for h in head["ResponseMetadata"]["HTTPHeaders"] if "checksum" in h]
    assert head["ETag"] == direct["ETag"]


async def test_drop_checksum_headers_removes_checksum_elements(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"hello", ChecksumAlgorithm="SHA256")
    moto: Any = s3_client  # S3Client does not list CopyObject
    direct = await moto.copy_object(Bucket=bucket, Key="direct", CopySource=f"{bucket}/k")
    assert "ChecksumSHA256" in direct["CopyObjectResult"]
    fault_proxy.drop_checksum_headers()
    async with proxied(fault_proxy) as client:
        any_client: Any = client
        copied = await any_client.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/k")
        listing = await client.list_objects_v2(Bucket=bucket)
    assert copied["CopyObjectResult"].keys() == {"ETag", "LastModified"}
    assert len(listing["Contents"]) == 3
    assert not [key for obj in listing["Contents"] for key in obj if key.startswith("Checksum")]


async def test_clear_removes_transforms(fault_proxy: FaultProxy, bucket: str) -> None:
    fault_proxy.rewrite_etags(rewritten)
    fault_proxy.drop_checksum_headers()
    assert len(fault_proxy.transforms) == 2
    fault_proxy.clear()
    async with proxied(fault_proxy) as client:
        put = await client.put_object(Bucket=bucket, Key="k", Body=b"hello")
    assert fault_proxy.transforms == []
    assert put["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'


# --- Servers without flexible checksums ------------------------------------------------


async def test_reject_checksum_requests_answers_invalid_request(
    fault_proxy: FaultProxy, bucket: str
) -> None:
    rule = fault_proxy.reject_checksum_requests()
    async with proxied(fault_proxy, checksum_when="when_supported") as client:
        for _ in range(2):
            with pytest.raises(ClientError) as caught:
                await client.put_object(Bucket=bucket, Key="k", Body=b"hello")
            error = caught.value.response
            assert error["Error"]["Code"] == "InvalidRequest"
            assert "x-amz-checksum" in error["Error"]["Message"]
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [(e.status, e.forwarded) for e in fault_proxy.log] == [(400, False)] * 2
    assert (rule.times, rule.applied) == (None, 2)


async def test_reject_checksum_requests_passes_content_md5_only(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    fault_proxy.reject_checksum_requests()
    md5 = "XUFAKrxLKna5cZ2REBfFkg=="  # of b"hello"
    async with proxied(fault_proxy) as client:
        await client.put_object(Bucket=bucket, Key="k", Body=b"hello", ContentMD5=md5)
    assert await get(s3_client, bucket, "k") == b"hello"
    (exchange,) = fault_proxy.log
    assert (exchange.header("content-md5"), exchange.fault, exchange.status) == (md5, None, 200)


async def test_reject_checksum_requests_passes_checksum_mode(
    fault_proxy: FaultProxy, s3_client: S3Client, bucket: str
) -> None:
    await s3_client.put_object(Bucket=bucket, Key="k", Body=b"hello")
    fault_proxy.reject_checksum_requests()
    async with proxied(fault_proxy) as client:
        assert await get(client, bucket, "k", ChecksumMode="ENABLED") == b"hello"
    (exchange,) = fault_proxy.log
    assert (exchange.header("x-amz-checksum-mode"), exchange.status) == ("ENABLED", 200)


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


def test_random_faults_flip_byte_targets_upload_request_bodies() -> None:
    rule = RandomFaults(1.0, seed=0, kinds=("flip_byte",))
    upload = rule.select(Exchange.of("PUT", "/b/k", {"Content-Length": "10"}))
    download = rule.select(Exchange.of("GET", "/b/k"))
    assert isinstance(upload, FlipByte) and upload.direction == "request"
    assert isinstance(download, FlipByte) and download.direction == "response"
    assert upload.fraction is not None and 0 <= upload.fraction < 1


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
        ("GET", "/b/k?tagging", {}, "GetObjectTagging"),
        ("GET", "/b/k?acl", {}, "Unknown"),
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
        lambda: Status(503, cut_after=-1),
        lambda: FlipByte(-1),
        lambda: FlipByte(fraction=1.0),
        lambda: FlipByte(direction="both"),  # type: ignore[arg-type]
        lambda: RandomFaults(0.1, seed=0, kinds=("flip",)),  # type: ignore[arg-type]
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
