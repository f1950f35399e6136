"""A failed copy never destroys what the destination key held.

Plain moto stores a body whatever its digests say and answers with what it
computed, so a single PutObject's answer proves what was stored only after the
object replaced the key.  There (and wherever an answer proves nothing, as with
SSE-KMS ETags) the bytes go as a one-part multipart upload, checked before
CompleteMultipartUpload: a key that existed keeps its content, a new key gets no
object, and no upload is left open.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aqueuepipe import ChecksumMismatchError, TransferError, copy, open_writer
from aqueuepipe.s3 import S3Client

from .._helpers import (
    FAST,
    MakeBucket,
    MiB,
    MotoServer,
    get,
    key_exists,
    open_uploads,
    write_payload,
)
from ..faultproxy import UPLOADS, FaultProxy

PRECIOUS = b"what was there before " * 1000


@pytest.fixture
async def precious(s3_client: S3Client, make_bucket: MakeBucket) -> str:
    """A bucket whose key ``precious`` holds :data:`PRECIOUS`."""
    bucket = await make_bucket(objects={"precious": PRECIOUS})
    return bucket


async def assert_kept(client: S3Client, bucket: str) -> None:
    assert await get(client, bucket, "precious") == PRECIOUS
    assert await open_uploads(client, bucket) == []


async def test_unprovable_sse_kms_upload_required_to_verify_keeps_the_old_object(
    moto_server: MotoServer, s3_client: S3Client, precious: str, tmp_path: Path
) -> None:
    """SSE-KMS ETags are no MD5s: nothing proves what the server stored, so
    verify="required" fails, and it fails before the key is replaced."""
    source = tmp_path / "new.bin"
    write_payload(source, 100_000, seed=1)
    with pytest.raises(TransferError, match="no evidence"):
        await copy(
            str(source),
            f"s3://{precious}/precious",
            endpoint_url=moto_server.endpoint_url,
            sse="aws:kms",
            verify="required",
        )
    await assert_kept(s3_client, precious)


async def test_unprovable_stream_into_open_writer_keeps_the_old_object(
    moto_server: MotoServer, s3_client: S3Client, precious: str
) -> None:
    with pytest.raises(TransferError, match="no evidence"):
        async with open_writer(
            f"s3://{precious}/precious",
            endpoint_url=moto_server.endpoint_url,
            sse="aws:kms",
            verify="required",
        ) as writer:
            await writer.write(b"new bytes")
    await assert_kept(s3_client, precious)


async def test_sse_kms_upload_without_verify_required_is_ok_but_unproven(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "new.bin"
    data = write_payload(source, 100_000, seed=2)
    result = await copy(
        str(source), f"s3://{bucket}/k", endpoint_url=moto_server.endpoint_url, sse="aws:kms"
    )
    assert result.ok and result.verified == ()
    assert await get(s3_client, bucket, "k") == data


@pytest.mark.parametrize("size", [1, 100_000, 5 * MiB - 1])
async def test_body_corrupted_on_every_send_keeps_the_old_object(
    fault_proxy: FaultProxy, s3_client: S3Client, precious: str, tmp_path: Path, size: int
) -> None:
    """The server stores a flipped byte every time: the copy fails on the
    destination side, and the key still holds what it held."""
    source = tmp_path / "new.bin"
    write_payload(source, size, seed=3)
    fault_proxy.flip(UPLOADS, offset=0, direction="request", times=None)
    with pytest.raises(ChecksumMismatchError) as caught:
        await copy(
            str(source),
            f"s3://{precious}/precious",
            endpoint_url=fault_proxy.endpoint_url,
            retries=FAST,
        )
    assert caught.value.side == "destination"
    await assert_kept(s3_client, precious)


async def test_body_corrupted_on_every_send_leaves_no_new_key(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "new.bin"
    write_payload(source, 100_000, seed=4)
    fault_proxy.flip(UPLOADS, offset=0, direction="request", times=None)
    with pytest.raises(ChecksumMismatchError):
        await copy(
            str(source), f"s3://{bucket}/k", endpoint_url=fault_proxy.endpoint_url, retries=FAST
        )
    assert not await key_exists(s3_client, bucket, "k")
    assert await open_uploads(s3_client, bucket) == []


async def test_metadata_name_the_server_mangles_leaves_no_wrong_object(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """A metadata name with a space: moto answered the PUT with 200 and stored an
    empty object, then refused the re-send; the empty object stayed.  Such a name
    is now refused before any byte moves, so there is nothing to leave behind."""
    bucket = await make_bucket()
    source = tmp_path / "new.bin"
    source.write_bytes(b"hello world")
    with pytest.raises(ValueError, match=r"metadata name 'bad name' must be ASCII letters"):
        copy(
            str(source),
            f"s3://{bucket}/k",
            endpoint_url=moto_server.endpoint_url,
            metadata={"bad name": "v"},
        )
    assert not await key_exists(s3_client, bucket, "k")
    assert await open_uploads(s3_client, bucket) == []


@pytest.mark.parametrize("fault", ["reset", "truncate"])
async def test_create_whose_answer_is_lost_leaves_no_upload_open(
    fault_proxy: FaultProxy,
    s3_client: S3Client,
    make_bucket: MakeBucket,
    tmp_path: Path,
    fault: str,
) -> None:
    """The server made the upload, its answer never arrived, the client asked again:
    the first upload, whose id the client never saw, is aborted too."""
    bucket = await make_bucket()
    source = tmp_path / "new.bin"
    data = write_payload(source, 6 * MiB, seed=5)
    getattr(fault_proxy, fault)("CreateMultipartUpload", after_bytes=10)
    result = await copy(
        str(source),
        f"s3://{bucket}/k",
        endpoint_url=fault_proxy.endpoint_url,
        retries=FAST,
        part_size=5 * MiB,
    )
    assert result.ok and len(fault_proxy.exchanges("CreateMultipartUpload")) == 2
    assert await get(s3_client, bucket, "k") == data
    assert await open_uploads(s3_client, bucket) == []
