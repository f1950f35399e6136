"""Copies within one endpoint are made by the server: CopyObject and UploadPartCopy.

Counted at the server (aqueuepipe.testing counts requests by operation, and the
bytes of their bodies), never from the library's own counters.
"""

from __future__ import annotations

import asyncio
import base64
import zlib
from pathlib import Path

import awscrt.checksums
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqueuepipe import ObjectChangedError, copy, copy_many
from aqueuepipe._server_copy import combine_crcs
from aqueuepipe.s3 import S3Client, create_client
from aqueuepipe.testing import MotoServer
from tests._helpers import (
    cancel_once,
    collect,
    get,
    key_exists,
    open_uploads,
    payload,
    progress_event,
    put,
    write_payload,
)
from tests.conftest import MakeBucket
from tests.faultproxy import FaultProxy, Match

MiB = 1024 * 1024
# The operations that carry an object's bytes through the client.
BODIES = ("GetObject", "PutObject", "UploadPart")


async def put_parts(
    client: S3Client, bucket: str, key: str, sizes: list[int], **extra: str
) -> bytes:
    """A multipart object of parts of ``sizes``, as another tool would write it."""
    parts = [payload(size, seed=n) for n, size in enumerate(sizes, 1)]
    upload = await client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
    done = []
    for number, data in enumerate(parts, 1):
        answer = await client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=data
        )
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    await client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    return b"".join(parts)


async def etag(client: S3Client, bucket: str, key: str) -> str:
    return str((await client.head_object(Bucket=bucket, Key=key))["ETag"])


async def test_copy_within_one_endpoint_sends_no_body_through_the_client(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    data = payload(12 * MiB + 5, seed=1)
    src, dst = await make_bucket(objects={"big": data}), await make_bucket()
    moto_server.reset_requests()
    result = await copy(f"s3://{src}/big", f"s3://{dst}/big", endpoint_url=moto_server.endpoint_url)
    counted = moto_server.requests()
    assert [counted[op] for op in BODIES] == [0, 0, 0], counted.counts
    assert counted["CopyObject"] == 1
    assert sum(counted.bytes.values()) < 64 * 1024  # requests without bodies
    assert result.ok and result.size == len(data) and result.parts == 0
    assert result.etag == await etag(s3_client, src, "big")  # a single PUT's ETag, kept
    assert result.verified  # the same MD5 ETag, or the kept checksum
    assert await get(s3_client, dst, "big") == data


async def test_multipart_source_is_copied_in_its_own_layout_with_its_etag(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    data = await put_parts(s3_client, src, "mp", [5 * MiB, 5 * MiB, 3 * MiB])
    moto_server.reset_requests()
    result = await copy(
        f"s3://{src}/mp", f"s3://{dst}/mp", endpoint_url=moto_server.endpoint_url, part_size=8 * MiB
    )
    counted = moto_server.requests()
    assert [counted[op] for op in BODIES] == [0, 0, 0], counted.counts
    assert counted["UploadPartCopy"] == 3  # the source's parts, not 8 MiB ones
    assert result.parts == 3
    assert await etag(s3_client, dst, "mp") == await etag(s3_client, src, "mp")
    assert result.verified == ("server-side:etag-md5",)
    assert await get(s3_client, dst, "mp") == data
    assert await open_uploads(s3_client, dst) == []


async def test_unequal_parts_are_copied_as_they_are(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    data = await put_parts(s3_client, src, "odd", [5 * MiB, 7 * MiB, 6 * MiB])
    result = await copy(f"s3://{src}/odd", f"s3://{dst}/odd", endpoint_url=moto_server.endpoint_url)
    assert await etag(s3_client, dst, "odd") == await etag(s3_client, src, "odd")
    assert result.verified == ("server-side:etag-md5",)
    assert await get(s3_client, dst, "odd") == data


async def test_source_crc_is_kept_and_is_the_evidence(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    data = payload(3 * MiB, seed=4)
    await s3_client.put_object(Bucket=src, Key="c", Body=data, ChecksumAlgorithm="CRC32")
    result = await copy(f"s3://{src}/c", f"s3://{dst}/c", endpoint_url=moto_server.endpoint_url)
    stored = await s3_client.head_object(Bucket=dst, Key="c", ChecksumMode="ENABLED")
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert stored["ChecksumCRC32"] == crc
    assert result.verified == ("server-side:crc32",)


async def test_multipart_source_with_a_full_object_crc_is_copied_and_proven(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """A server that reports no part checksums (moto) stores a checksum it was given
    nothing to check: the same ETag proves the copy, and it is not failed."""
    src, dst = await make_bucket(), await make_bucket()
    local = tmp_path / "up.bin"
    data = write_payload(local, 12 * MiB, seed=9)
    endpoint = moto_server.endpoint_url
    await copy(str(local), f"s3://{src}/full", endpoint_url=endpoint, part_size=5 * MiB)
    result = await copy(f"s3://{src}/full", f"s3://{dst}/full", endpoint_url=endpoint)
    assert result.ok and result.parts == 3
    assert result.verified == ("server-side:etag-md5",)
    assert await get(s3_client, dst, "full") == data


async def test_tags_are_not_copied_unless_asked(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await s3_client.put_object(Bucket=src, Key="t", Body=b"tagged", Tagging="team=blue")
    endpoint = moto_server.endpoint_url
    await copy(f"s3://{src}/t", f"s3://{dst}/plain", endpoint_url=endpoint)
    await copy(f"s3://{src}/t", f"s3://{dst}/tagged", endpoint_url=endpoint, tags=True)
    plain = await s3_client.get_object_tagging(Bucket=dst, Key="plain")
    tagged = await s3_client.get_object_tagging(Bucket=dst, Key="tagged")
    assert plain["TagSet"] == []  # as a streamed copy: CopyObject would copy them
    assert tagged["TagSet"] == [{"Key": "team", "Value": "blue"}]


async def test_metadata_is_carried_or_replaced_as_asked(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await s3_client.put_object(
        Bucket=src, Key="m", Body=b"x", ContentType="text/csv", Metadata={"origin": "lab"}
    )
    endpoint = moto_server.endpoint_url
    await copy(f"s3://{src}/m", f"s3://{dst}/kept", endpoint_url=endpoint)
    await copy(f"s3://{src}/m", f"s3://{dst}/new", endpoint_url=endpoint, metadata={"a": "b"})
    kept = await s3_client.head_object(Bucket=dst, Key="kept")
    new = await s3_client.head_object(Bucket=dst, Key="new")
    assert (kept["ContentType"], kept["Metadata"]) == ("text/csv", {"origin": "lab"})
    assert (new["ContentType"], new["Metadata"]) == ("text/csv", {"a": "b"})


async def test_server_side_false_streams_the_copy(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(objects={"s": payload(MiB, seed=5)}), await make_bucket()
    moto_server.reset_requests()
    result = await copy(
        f"s3://{src}/s", f"s3://{dst}/s", endpoint_url=moto_server.endpoint_url, server_side=False
    )
    counted = moto_server.requests()
    assert counted["GetObject"] == 1 and counted["CopyObject"] == 0
    assert result.ok


async def test_checksums_asked_of_the_client_stream_the_copy(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(objects={"h": payload(MiB, seed=6)}), await make_bucket()
    moto_server.reset_requests()
    result = await copy(
        f"s3://{src}/h", f"s3://{dst}/h", endpoint_url=moto_server.endpoint_url, checksums=["md5"]
    )
    assert moto_server.requests()["CopyObject"] == 0
    assert "md5" in result.checksums


async def test_two_clients_stream_even_on_one_endpoint(
    moto_server: MotoServer, make_bucket: MakeBucket
) -> None:
    """Two clients may hold two sets of credentials: one may not read what the other writes."""
    src, dst = await make_bucket(objects={"two": payload(MiB, seed=7)}), await make_bucket()
    async with (
        create_client(endpoint_url=moto_server.endpoint_url) as reader,
        create_client(endpoint_url=moto_server.endpoint_url) as writer,
    ):
        moto_server.reset_requests()
        await copy(f"s3://{src}/two", f"s3://{dst}/two", src_client=reader, dst_client=writer)
    assert moto_server.requests()["CopyObject"] == 0


async def test_copy_many_copies_within_one_endpoint_on_the_server(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    keys = [f"k{i}" for i in range(4)]
    await asyncio.gather(
        *(put(s3_client, src, k, payload(MiB, seed=i)) for i, k in enumerate(keys))
    )
    moto_server.reset_requests()
    pairs = [(f"s3://{src}/{k}", f"s3://{dst}/{k}") for k in keys]
    results = await collect(copy_many(pairs, endpoint_url=moto_server.endpoint_url))
    counted = moto_server.requests()
    assert all(r.ok for r in results)
    assert counted["CopyObject"] == 4 and counted["GetObject"] == 0


@pytest.mark.parametrize(
    ("status", "code"), [(501, "NotImplemented"), (403, "AccessDenied")], ids=["501", "403"]
)
async def test_a_refused_copy_object_is_streamed_instead(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket, status: int, code: str
) -> None:
    data = payload(2 * MiB, seed=8)
    src, dst = await make_bucket(objects={"r": data}), await make_bucket()
    fault_proxy.fail(Match(operation="CopyObject"), status=status, s3_code=code, times=None)
    result = await copy(f"s3://{src}/r", f"s3://{dst}/r", endpoint_url=fault_proxy.endpoint_url)
    assert result.ok and result.verified
    assert len(fault_proxy.exchanges("CopyObject")) == 1
    assert len(fault_proxy.exchanges("GetObject")) == 1
    assert await get(s3_client, dst, "r") == data


async def test_a_refused_part_copy_is_streamed_and_leaves_no_upload(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    data = await put_parts(s3_client, src, "mp", [5 * MiB, 2 * MiB])
    fault_proxy.fail(
        Match(operation="UploadPartCopy"), status=403, s3_code="AccessDenied", times=None
    )
    result = await copy(f"s3://{src}/mp", f"s3://{dst}/mp", endpoint_url=fault_proxy.endpoint_url)
    assert result.ok
    assert fault_proxy.exchanges("AbortMultipartUpload")  # the server-side upload, aborted
    assert len(fault_proxy.exchanges("GetObject")) == 1
    assert await get(s3_client, dst, "mp") == data
    assert await open_uploads(s3_client, dst) == []


async def test_a_source_changed_before_the_server_copies_it_is_the_source(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    """The copy is pinned to the ETag its HEAD saw: a server whose source changed
    answers 412 (moto ignores x-amz-copy-source-if-match, so the proxy answers)."""
    src, dst = await make_bucket(objects={"c": b"before"}), await make_bucket()
    fault_proxy.fail(Match(operation="CopyObject"), status=412, s3_code="PreconditionFailed")
    with pytest.raises(ObjectChangedError) as caught:
        await copy(f"s3://{src}/c", f"s3://{dst}/c", endpoint_url=fault_proxy.endpoint_url)
    assert caught.value.side == "source"
    assert fault_proxy.exchanges("CopyObject")[0].headers.get(
        "x-amz-copy-source-if-match"
    ) == await etag(s3_client, src, "c")
    assert not await key_exists(s3_client, dst, "c")


async def test_not_implemented_is_asked_once_per_call(
    fault_proxy: FaultProxy, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    keys = [f"n{i}" for i in range(3)]
    await asyncio.gather(*(put(s3_client, src, k, b"data") for k in keys))
    fault_proxy.fail(
        Match(operation="CopyObject"), status=501, s3_code="NotImplemented", times=None
    )
    pairs = [(f"s3://{src}/{k}", f"s3://{dst}/{k}") for k in keys]
    results = await collect(copy_many(pairs, concurrency=1, endpoint_url=fault_proxy.endpoint_url))
    assert all(r.ok for r in results)
    assert len(fault_proxy.exchanges("CopyObject")) == 1


async def test_cancelled_part_copy_aborts_its_upload(
    moto_server: MotoServer, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src, dst = await make_bucket(), await make_bucket()
    await put_parts(s3_client, src, "mp", [5 * MiB, 5 * MiB, 5 * MiB, MiB])
    first_part, on_progress = progress_event()
    await cancel_once(
        first_part,
        copy(
            f"s3://{src}/mp",
            f"s3://{dst}/mp",
            endpoint_url=moto_server.endpoint_url,
            concurrency=1,
            progress=on_progress,
        ),
    )
    assert await open_uploads(s3_client, dst) == []
    assert not await key_exists(s3_client, dst, "mp")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.sampled_from(["crc32", "crc32c", "crc64nvme"]),
)
def test_combined_part_crcs_equal_the_crc_of_the_whole(parts: list[bytes], algorithm: str) -> None:
    one_pass = {
        "crc32": (awscrt.checksums.crc32, 4),
        "crc32c": (awscrt.checksums.crc32c, 4),
        "crc64nvme": (awscrt.checksums.crc64nvme, 8),
    }
    crc, width = one_pass[algorithm]

    def b64(data: bytes) -> str:
        return base64.b64encode(crc(data).to_bytes(width, "big")).decode()

    combined = combine_crcs(algorithm, [(b64(part), len(part)) for part in parts])
    assert combined == b64(b"".join(parts))
