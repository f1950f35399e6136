"""End-to-end verification: "ok" means the destination holds the source's bytes.

A fault proxy in front of the moto server process flips bytes in bodies (once, or on
every attempt), rewrites ETags into other forms, hides checksum headers and refuses
checksum requests as servers without flexible checksums do.  For every case: a copy
reported ok holds the source's bytes (read back and compared), transient flips heal,
persistent ones fail with ChecksumMismatchError on the right side, and nothing is
left behind: no new key (a previous version is kept), no file, no open upload.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from aqueuepipe import ChecksumMismatchError, TransferError, TransferResult, copy
from aqueuepipe.s3 import S3Client

from .._helpers import (
    FAST,
    MakeBucket,
    MiB,
    get,
    key_exists,
    open_uploads,
    payload,
    put,
    s3_checksum,
    upload_parts,
)
from ..faultproxy import GETS, UPLOADS, FaultProxy, Match

# -- sources ------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """How a source object was written: its size, part size and stored checksum."""

    name: str
    size: int
    part_size: int | None  # None: one PutObject
    checksum: Literal["CRC32", "SHA256"] | None = None

    @property
    def evidence(self) -> str:
        if self.checksum is None:
            return "source:etag-md5"
        return f"source:{self.checksum.lower()}"


SOURCES = [
    Source("single", 1 * MiB + 7, None),
    Source("single-crc32", 1 * MiB + 7, None, "CRC32"),
    Source("multipart-8mib", 17 * MiB + 3, 8 * MiB),
    Source("multipart-5mib-sha256", 11 * MiB + 3, 5 * MiB, "SHA256"),
]


async def write_source(client: S3Client, bucket: str, key: str, source: Source) -> bytes:
    """Write ``source`` at ``bucket/key`` directly on the server; return its bytes."""
    data = payload(source.size, seed=len(source.name))
    algorithm = source.checksum
    if source.part_size is None:
        extra = {}
        if algorithm is not None:
            value = s3_checksum(algorithm, data)
            extra = {"ChecksumAlgorithm": algorithm, f"Checksum{algorithm}": value}
        await client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        return data
    step = source.part_size
    chunks = [data[start : start + step] for start in range(0, source.size, step)]
    await upload_parts(client, bucket, key, chunks, algorithm)
    return data


# -- directions ----------------------------------------------------------------------

Direction = Literal["s3-to-s3", "s3-to-file", "file-to-s3"]


@dataclass
class Trip:
    """One copy of a source in one direction, through the proxy, and what to check."""

    direction: Direction
    src: str
    dst: str
    data: bytes
    dst_bucket: str
    dst_key: str = "copy"
    local: Path | None = None

    async def run(self, proxy: FaultProxy, **options: object) -> TransferResult:
        if self.direction == "s3-to-s3":  # these tests are about the bytes a client moves
            options.setdefault("server_side", False)
        return await copy(
            self.src,
            self.dst,
            endpoint_url=proxy.endpoint_url,
            retries=FAST,
            **options,  # type: ignore[arg-type]
        )

    async def assert_holds_source(self, client: S3Client) -> None:
        if self.direction == "s3-to-file":
            assert self.local is not None
            assert self.local.read_bytes() == self.data
        else:
            assert await get(client, self.dst_bucket, self.dst_key) == self.data

    async def assert_nothing_left(self, client: S3Client, previous: bytes | None) -> None:
        if self.direction == "s3-to-file":
            assert self.local is not None
            assert not self.local.exists()
            assert list(self.local.parent.iterdir()) == []  # no temporary file either
            return
        assert await open_uploads(client, self.dst_bucket) == []
        if previous is None:
            assert not await key_exists(client, self.dst_bucket, self.dst_key)
        else:
            assert await get(client, self.dst_bucket, self.dst_key) == previous


MakeTrip = Callable[[Direction, Source], Awaitable[Trip]]


@pytest.fixture
def make_trip(s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path) -> MakeTrip:
    async def make(direction: Direction, source: Source) -> Trip:
        src_bucket, dst_bucket = await make_bucket(), await make_bucket()
        data = await write_source(s3_client, src_bucket, "obj", source)
        if direction == "s3-to-s3":
            return Trip(
                direction, f"s3://{src_bucket}/obj", f"s3://{dst_bucket}/copy", data, dst_bucket
            )
        if direction == "s3-to-file":
            local = tmp_path / "out" / "copy.bin"
            local.parent.mkdir()
            return Trip(
                direction, f"s3://{src_bucket}/obj", str(local), data, dst_bucket, local=local
            )
        upload = tmp_path / "upload.bin"
        upload.write_bytes(data)
        return Trip(direction, str(upload), f"s3://{dst_bucket}/copy", data, dst_bucket)

    return make


@pytest.fixture
async def trip(make_trip: MakeTrip, direction: Direction, source: Source) -> Trip:
    """A trip from the test's parameters: ``direction`` and ``source``."""
    return await make_trip(direction, source)


def _flip_offset(source: Source) -> int:
    return source.size - 1000  # in the last part of every source


# -- faults on the read ---------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
@pytest.mark.parametrize("direction", ["s3-to-s3", "s3-to-file"])
async def test_flipped_byte_in_source_read_once_is_read_again(
    fault_proxy: FaultProxy, s3_client: S3Client, trip: Trip, source: Source
) -> None:
    fault_proxy.flip(GETS, offset=_flip_offset(source), times=1)
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert source.evidence in result.verified
    assert result.retries >= 1
    gets = fault_proxy.exchanges(GETS)
    assert len(gets) == 2
    assert gets[1].header("If-Match") == gets[0].headers.get("if-match") or gets[1].header(
        "If-Match"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
@pytest.mark.parametrize("direction", ["s3-to-s3", "s3-to-file"])
async def test_flipped_byte_in_every_source_read_fails_on_the_source_side(
    fault_proxy: FaultProxy, s3_client: S3Client, trip: Trip, source: Source
) -> None:
    fault_proxy.flip(GETS, offset=_flip_offset(source), times=None)
    with pytest.raises(ChecksumMismatchError) as caught:
        await trip.run(fault_proxy)
    assert caught.value.side == "source"
    assert caught.value.evidence == source.evidence.partition(":")[2]
    await trip.assert_nothing_left(s3_client, previous=None)
    assert len(fault_proxy.exchanges(GETS)) == FAST.attempts


async def test_persistent_bad_read_keeps_the_previous_destination_object(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    source = SOURCES[2]
    trip = await make_trip("s3-to-s3", source)
    await put(s3_client, trip.dst_bucket, trip.dst_key, b"previous version")
    fault_proxy.flip(GETS, offset=_flip_offset(source), times=None)
    with pytest.raises(ChecksumMismatchError):
        await trip.run(fault_proxy)
    await trip.assert_nothing_left(s3_client, previous=b"previous version")


async def test_persistent_bad_read_of_a_single_put_sends_nothing(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[0])
    fault_proxy.flip(GETS, offset=10, times=None)
    with pytest.raises(ChecksumMismatchError):
        await trip.run(fault_proxy)
    assert fault_proxy.exchanges(UPLOADS) == []


# -- faults on the upload ---------------------------------------------------------------


@pytest.mark.parametrize("source", [SOURCES[1], SOURCES[2], SOURCES[3]], ids=lambda s: s.name)
@pytest.mark.parametrize("direction", ["s3-to-s3", "file-to-s3"])
async def test_flipped_byte_in_an_upload_once_is_sent_again(
    fault_proxy: FaultProxy, s3_client: S3Client, trip: Trip
) -> None:
    fault_proxy.flip(UPLOADS, offset=100, direction="request", times=1)
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert "destination:etag-md5" in result.verified
    assert result.retries >= 1
    assert await open_uploads(s3_client, trip.dst_bucket) == []


@pytest.mark.parametrize("source", [SOURCES[0], SOURCES[2]], ids=lambda s: s.name)
@pytest.mark.parametrize("direction", ["s3-to-s3", "file-to-s3"])
async def test_flipped_byte_in_every_upload_fails_on_the_destination_side(
    fault_proxy: FaultProxy, s3_client: S3Client, trip: Trip
) -> None:
    fault_proxy.flip(UPLOADS, offset=100, direction="request", times=None)
    with pytest.raises(ChecksumMismatchError) as caught:
        await trip.run(fault_proxy)
    assert caught.value.side == "destination"
    await trip.assert_nothing_left(s3_client, previous=None)


async def test_persistent_bad_part_upload_keeps_the_previous_destination_object(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("file-to-s3", SOURCES[2])
    await put(s3_client, trip.dst_bucket, trip.dst_key, b"previous version")
    fault_proxy.flip(Match(operation="UploadPart"), offset=5, direction="request", times=None)
    with pytest.raises(ChecksumMismatchError):
        await trip.run(fault_proxy)
    await trip.assert_nothing_left(s3_client, previous=b"previous version")


# -- servers that answer differently --------------------------------------------------------


def _whole_md5_for_multipart(data: bytes) -> Callable[[str], str]:
    md5 = hashlib.md5(data).hexdigest()
    return lambda etag: f'"{md5}"' if "-" in etag else etag


@pytest.mark.parametrize("source", [SOURCES[0], SOURCES[2], SOURCES[3]], ids=lambda s: s.name)
@pytest.mark.parametrize("direction", ["s3-to-s3", "s3-to-file", "file-to-s3"])
async def test_whole_object_md5_etags_on_multipart_objects_never_fail_a_good_copy(
    fault_proxy: FaultProxy, s3_client: S3Client, trip: Trip
) -> None:
    fault_proxy.rewrite_etags(_whole_md5_for_multipart(trip.data))
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert result.ok


WHOLE_OBJECT_OPERATIONS = ("GetObject", "HeadObject", "PutObject", "CompleteMultipartUpload")


def OPAQUE(etag: str) -> str:
    return '"opaque-' + hashlib.sha1(etag.encode()).hexdigest() + '"'


@pytest.mark.parametrize("direction", ["s3-to-s3", "s3-to-file", "file-to-s3"])
async def test_opaque_etags_never_fail_a_good_copy_and_prove_nothing(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip, direction: Direction
) -> None:
    trip = await make_trip(direction, SOURCES[2])
    # Every ETag but the parts' (the server must recognise those in the part list).
    fault_proxy.rewrite_etags(OPAQUE, match=Match(operation=WHOLE_OBJECT_OPERATIONS))
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert "source:etag-md5" not in result.verified


@pytest.mark.parametrize("direction", ["s3-to-s3", "s3-to-file", "file-to-s3"])
async def test_unquoted_etags_are_evidence_like_quoted_ones(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip, direction: Direction
) -> None:
    trip = await make_trip(direction, SOURCES[2])
    fault_proxy.rewrite_etags(lambda etag: etag.strip('"'))
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    if direction != "file-to-s3":
        assert "source:etag-md5" in result.verified
    if direction != "s3-to-file":
        assert "destination:etag-md5" in result.verified


async def test_source_without_checksum_headers_is_checked_against_its_etag(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[3])  # stored SHA256, hidden by the server
    fault_proxy.drop_checksum_headers()
    fault_proxy.flip(GETS, offset=_flip_offset(SOURCES[3]), times=1)
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert result.verified[0] == "source:etag-md5"


async def test_server_refusing_checksum_headers_gets_the_md5_path(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("file-to-s3", SOURCES[2])
    fault_proxy.reject_checksum_requests()
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert result.verified == ("destination:etag-md5",)
    accepted = [e for e in fault_proxy.exchanges(UPLOADS) if e.status == 200]
    assert accepted
    assert all(e.header("Content-MD5") for e in accepted)
    assert not any(name.startswith("x-amz-checksum-") for e in accepted for name in e.headers)


async def test_md5_path_is_remembered_for_the_endpoint(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    first = await make_trip("file-to-s3", SOURCES[0])
    fault_proxy.reject_checksum_requests()
    await first.run(fault_proxy)
    refused = len([e for e in fault_proxy.log if e.status == 400])
    assert refused == 1
    second = await make_trip("file-to-s3", SOURCES[2])
    result = await second.run(fault_proxy)
    assert result.verified == ("destination:etag-md5",)
    assert len([e for e in fault_proxy.log if e.status == 400]) == refused


async def test_flipped_upload_on_a_server_without_flexible_checksums_heals(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[2])
    fault_proxy.reject_checksum_requests()
    fault_proxy.flip(UPLOADS, offset=3, direction="request", times=1)
    result = await trip.run(fault_proxy)
    await trip.assert_holds_source(s3_client)
    assert result.verified == ("source:etag-md5", "destination:etag-md5")


# -- what the result says ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["crc64nvme", "crc32", "crc32c", "sha1", "sha256"])
async def test_multipart_copy_with_each_checksum_algorithm_succeeds(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip, algorithm: str
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[2])
    result = await trip.run(fault_proxy, checksum_algorithm=algorithm)
    await trip.assert_holds_source(s3_client)
    assert result.parts == 3
    response = await s3_client.get_object(
        Bucket=trip.dst_bucket, Key=trip.dst_key, ChecksumMode="ENABLED"
    )
    response["Body"].close()
    stored = response.get(f"Checksum{algorithm.upper()}")
    assert stored is not None
    # CRCs are FULL_OBJECT (the checksum of every byte), SHA1/SHA256 COMPOSITE.
    assert ("-" not in stored) == algorithm.startswith("crc")


async def test_copy_keeps_the_full_object_crc_of_its_source(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[1])  # a stored CRC32
    result = await trip.run(fault_proxy)
    assert result.verified == ("source:crc32", "destination:etag-md5")
    source = await s3_client.head_object(
        Bucket=trip.src.split("/")[2], Key="obj", ChecksumMode="ENABLED"
    )
    copied = await s3_client.head_object(
        Bucket=trip.dst_bucket, Key=trip.dst_key, ChecksumMode="ENABLED"
    )
    assert copied["ChecksumCRC32"] == source["ChecksumCRC32"]


async def test_default_copy_stores_a_full_object_crc64nvme(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    from awscrt import checksums

    trip = await make_trip("file-to-s3", SOURCES[2])
    await trip.run(fault_proxy)
    head = await s3_client.head_object(
        Bucket=trip.dst_bucket, Key=trip.dst_key, ChecksumMode="ENABLED"
    )
    expected = base64.b64encode(checksums.crc64nvme(trip.data).to_bytes(8, "big")).decode()
    assert head["ChecksumCRC64NVME"] == expected
    assert all(e.header("x-amz-checksum-crc64nvme") for e in fault_proxy.exchanges(UPLOADS))


async def test_required_verification_fails_a_copy_without_evidence_and_leaves_nothing(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[2])
    fault_proxy.rewrite_etags(OPAQUE, match=Match(operation=WHOLE_OBJECT_OPERATIONS))
    with pytest.raises(TransferError, match="verify='required'") as caught:
        await trip.run(fault_proxy, verify="required")
    assert caught.value.side == "source"
    await trip.assert_nothing_left(s3_client, previous=None)


async def test_required_verification_passes_with_evidence_on_both_ends(
    fault_proxy: FaultProxy, s3_client: S3Client, make_trip: MakeTrip
) -> None:
    trip = await make_trip("s3-to-s3", SOURCES[1])
    result = await trip.run(fault_proxy, verify="required")
    assert result.verified == ("source:crc32", "destination:etag-md5")
