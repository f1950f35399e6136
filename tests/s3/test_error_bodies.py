"""Error responses whose body breaks while it is read are retried, like any other error.

aiobotocore reads the error body of a streaming operation (GetObject) outside the
code that turns aiohttp's errors into botocore's retryable ones; the client's HTTP
session (aqueuepipe.s3._client) reads it inside, so botocore retries it as boto3 does.
"""

from __future__ import annotations

from pathlib import Path

from aqueuepipe import copy
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, get, payload, write_payload
from ..faultproxy import FaultProxy, Status


async def test_get_object_retried_when_error_body_breaks(
    fault_proxy: FaultProxy, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    data = payload(100_000, seed=1)
    bucket = await make_bucket(objects={"k": data})
    fault_proxy.fail("GetObject", status=503, cut_after=20)
    target = tmp_path / "f"
    await copy(f"s3://{bucket}/k", str(target), endpoint_url=fault_proxy.endpoint_url)
    assert target.read_bytes() == data
    gets = fault_proxy.exchanges("GetObject")
    assert [(e.status, e.fault) for e in gets] == [(503, Status(503, cut_after=20)), (200, None)]
    assert gets[0].response_bytes == 20


async def test_upload_part_retried_when_error_body_breaks(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "f"
    data = write_payload(source, 100_000, seed=2)
    fault_proxy.fail("UploadPart", status=503, cut_after=20)
    await copy(str(source), f"s3://{bucket}/k", endpoint_url=fault_proxy.endpoint_url)
    assert await get(s3_client, bucket, "k") == data
    puts = fault_proxy.exchanges("UploadPart")
    assert [(e.status, e.fault) for e in puts] == [(503, Status(503, cut_after=20)), (200, None)]
    assert puts[0].response_bytes == 20
