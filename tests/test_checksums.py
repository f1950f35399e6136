"""Tests of aqueuepipe.checksums: hashers, StreamHashes, ETags and S3 checksum forms."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import threading
import zlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aqueuepipe import checksums
from aqueuepipe.checksums import (
    ALGORITHMS,
    OFFLOAD_THRESHOLD,
    StreamHashes,
    _hasher,
    composite_checksum,
    etag_is_md5_based,
    multipart_etag,
    new_hasher,
    normalize_etag,
    s3_algorithm,
    single_etag,
)

from ._helpers import cancel_and_check

CHECK_INPUT = b"123456789"  # the "check" input of the CRC catalogue
CRCS = ("crc32", "crc32c", "crc64nvme")
CRC_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8}


def _reflected_crc(data: bytes, poly: int, width: int) -> int:
    """A bit-at-a-time reflected CRC with all-ones init and xorout: an independent reference."""
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ mask


def reference_crc32c(data: bytes) -> int:
    return _reflected_crc(data, 0x82F63B78, 32)


def reference_crc64nvme(data: bytes) -> int:
    return _reflected_crc(data, 0x9A6C9329AC4BC9B5, 64)


def reference_digest(name: str, data: bytes) -> bytes:
    """The digest of ``data`` computed without aqueuepipe or awscrt."""
    if name in ("md5", "sha1", "sha256"):
        return hashlib.new(name, data).digest()
    if name == "crc32":
        return zlib.crc32(data).to_bytes(4, "big")
    if name == "crc32c":
        return reference_crc32c(data).to_bytes(4, "big")
    assert name == "crc64nvme"
    return reference_crc64nvme(data).to_bytes(8, "big")


def one_shot(name: str, data: bytes) -> bytes:
    hasher = new_hasher(name)
    hasher.update(data)
    return hasher.digest()


# -- known vectors -----------------------------------------------------------


def test_algorithms_lists_the_supported_names() -> None:
    assert ALGORITHMS == ("md5", "sha1", "sha256", "crc32", "crc32c", "crc64nvme")


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256"])
@pytest.mark.parametrize("data", [b"", b"abc", CHECK_INPUT, bytes(range(256)) * 40])
def test_hashlib_algorithm_matches_hashlib(name: str, data: bytes) -> None:
    hasher = new_hasher(name)
    hasher.update(data)
    assert hasher.digest() == hashlib.new(name, data).digest()
    assert hasher.hexdigest() == hashlib.new(name, data).hexdigest()


@pytest.mark.parametrize("data", [b"", b"abc", CHECK_INPUT, bytes(range(256)) * 40])
def test_crc32_matches_zlib(data: bytes) -> None:
    assert one_shot("crc32", data) == zlib.crc32(data).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("crc32", CHECK_INPUT, 0xCBF43926),
        ("crc32c", CHECK_INPUT, 0xE3069283),
        ("crc64nvme", CHECK_INPUT, 0xAE8B14860A799888),
        ("crc32", b"", 0),
        ("crc32c", b"", 0),
        ("crc64nvme", b"", 0),
        # RFC 3720, appendix B.4
        ("crc32c", bytes(32), 0x8A9136AA),
        ("crc32c", b"\xff" * 32, 0x62A8AB43),
        ("crc32c", bytes(range(32)), 0x46DD794E),
        ("crc32c", bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc_matches_check_value(name: str, data: bytes, expected: int) -> None:
    assert one_shot(name, data) == expected.to_bytes(CRC_SIZES[name], "big")


def test_crc_hexdigest_is_big_endian_hex() -> None:
    hasher = new_hasher("crc32")
    hasher.update(CHECK_INPUT)
    assert hasher.hexdigest() == "cbf43926"


def test_reference_crcs_match_check_values() -> None:
    assert reference_crc32c(CHECK_INPUT) == 0xE3069283
    assert reference_crc64nvme(CHECK_INPUT) == 0xAE8B14860A799888


@given(data=st.binary(max_size=300))
@pytest.mark.parametrize("name", ["crc32c", "crc64nvme"])
def test_crc_matches_reference_implementation(name: str, data: bytes) -> None:
    assert one_shot(name, data) == reference_digest(name, data)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_digest_size_matches_digest(name: str) -> None:
    hasher = new_hasher(name)
    hasher.update(CHECK_INPUT)
    assert len(hasher.digest()) == hasher.digest_size
    if name in CRC_SIZES:
        assert hasher.digest_size == CRC_SIZES[name]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_b64digest_is_base64_of_big_endian_digest(name: str) -> None:
    hasher = new_hasher(name)
    hasher.update(CHECK_INPUT)
    expected = base64.b64encode(reference_digest(name, CHECK_INPUT)).decode()
    assert hasher.b64digest() == expected


def test_b64digest_of_crc32_is_s3_header_form() -> None:
    hasher = new_hasher("crc32")
    hasher.update(CHECK_INPUT)
    # 0xCBF43926 as 4 big-endian bytes, base64: what S3 sends as x-amz-checksum-crc32.
    assert hasher.b64digest() == "y/Q5Jg=="


def test_b64digest_of_md5_is_content_md5_form() -> None:
    hasher = new_hasher("md5")
    hasher.update(b"")
    assert hasher.b64digest() == "1B2M2Y8AsgTpgAmY7PhCfg=="


# -- incremental updates -----------------------------------------------------


@given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(0, 4096), max_size=12))
@pytest.mark.parametrize("name", ALGORITHMS)
def test_update_in_pieces_equals_one_shot(name: str, data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    hasher = new_hasher(name)
    for start, end in itertools.pairwise(bounds):
        hasher.update(data[start:end])
    assert hasher.digest() == one_shot(name, data)


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize(
    "wrap",
    [bytearray, memoryview, lambda b: memoryview(bytearray(b))],
    ids=["bytearray", "memoryview", "memoryview-of-bytearray"],
)
def test_update_accepts_any_bytes_like(name: str, wrap: Callable[[bytes], object]) -> None:
    hasher = new_hasher(name)
    hasher.update(wrap(CHECK_INPUT))  # type: ignore[arg-type]
    assert hasher.digest() == one_shot(name, CHECK_INPUT)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_update_with_non_contiguous_memoryview_hashes_its_bytes(name: str) -> None:
    view = memoryview(b"0123456789abcdef")[::2]
    hasher = new_hasher(name)
    hasher.update(view)
    assert hasher.digest() == one_shot(name, view.tobytes())


@pytest.mark.parametrize("name", ALGORITHMS)
def test_update_with_str_raises_type_error(name: str) -> None:
    hasher = new_hasher(name)
    with pytest.raises(TypeError, match="str"):
        hasher.update("123456789")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_copy_is_independent(name: str) -> None:
    hasher = new_hasher(name)
    hasher.update(b"1234")
    twin = hasher.copy()
    twin.update(b"56789")
    assert hasher.digest() == one_shot(name, b"1234")
    assert twin.digest() == one_shot(name, CHECK_INPUT)
    assert twin.name == hasher.name


@pytest.mark.parametrize("name", ALGORITHMS)
def test_digest_does_not_finish_the_hasher(name: str) -> None:
    hasher = new_hasher(name)
    hasher.update(b"1234")
    hasher.digest()
    hasher.update(b"56789")
    assert hasher.digest() == one_shot(name, CHECK_INPUT)


# -- names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [("SHA256", "sha256"), ("CRC64NVME", "crc64nvme"), ("Md5", "md5")],
)
def test_new_hasher_accepts_any_case(given_name: str, canonical: str) -> None:
    assert new_hasher(given_name).name == canonical


def test_new_hasher_with_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="blake2b") as excinfo:
        new_hasher("blake2b")
    for name in ALGORITHMS:
        assert name in str(excinfo.value)


def test_new_hasher_with_non_str_name_raises_type_error() -> None:
    with pytest.raises(TypeError):
        new_hasher(b"md5")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sha1", "SHA1"),
        ("sha256", "SHA256"),
        ("crc32", "CRC32"),
        ("crc32c", "CRC32C"),
        ("crc64nvme", "CRC64NVME"),
        ("SHA256", "SHA256"),
    ],
)
def test_s3_algorithm_maps_to_s3_checksum_algorithm(name: str, expected: str) -> None:
    assert s3_algorithm(name) == expected


def test_s3_algorithm_of_md5_raises_value_error() -> None:
    with pytest.raises(ValueError, match="MD5"):
        s3_algorithm("md5")


def test_s3_algorithm_of_unknown_name_raises_value_error() -> None:
    with pytest.raises(ValueError, match="whirlpool"):
        s3_algorithm("whirlpool")


# -- StreamHashes ------------------------------------------------------------


def test_stream_hashes_match_single_hashers() -> None:
    hashes = StreamHashes(ALGORITHMS)
    hashes.update(b"1234")
    hashes.update(bytearray(b"56789"))
    assert hashes.digests() == {name: one_shot(name, CHECK_INPUT) for name in ALGORITHMS}
    assert hashes.hexdigests() == {name: one_shot(name, CHECK_INPUT).hex() for name in ALGORITHMS}
    assert hashes.b64digests() == {
        name: base64.b64encode(one_shot(name, CHECK_INPUT)).decode() for name in ALGORITHMS
    }
    assert hashes.bytes_hashed == len(CHECK_INPUT)


def test_stream_hashes_names_are_canonical_deduplicated_and_ordered() -> None:
    hashes = StreamHashes(["SHA256", "md5", "sha256", "CRC32C"])
    assert hashes.names == ("sha256", "md5", "crc32c")
    assert list(hashes.hexdigests()) == ["sha256", "md5", "crc32c"]


def test_stream_hashes_with_unknown_name_raises_value_error() -> None:
    with pytest.raises(ValueError, match="sha512"):
        StreamHashes(["md5", "sha512"])


def test_stream_hashes_with_single_str_raises_type_error() -> None:
    with pytest.raises(TypeError, match="iterable"):
        StreamHashes("md5")


def test_stream_hashes_with_negative_threshold_raises_value_error() -> None:
    with pytest.raises(ValueError, match="offload_threshold"):
        StreamHashes(["md5"], offload_threshold=-1)


def test_stream_hashes_update_with_str_raises_type_error() -> None:
    hashes = StreamHashes(["md5"])
    with pytest.raises(TypeError):
        hashes.update("abc")  # type: ignore[arg-type]
    assert hashes.bytes_hashed == 0


def test_stream_hashes_counts_bytes_of_a_multibyte_memoryview() -> None:
    hashes = StreamHashes(["crc32"])
    hashes.update(memoryview(bytes(12)).cast("I"))
    assert hashes.bytes_hashed == 12
    assert hashes.digests()["crc32"] == one_shot("crc32", bytes(12))


async def test_aupdate_of_large_chunk_equals_sync_update() -> None:
    data = os.urandom(OFFLOAD_THRESHOLD + 12345)
    sync_hashes = StreamHashes(ALGORITHMS)
    sync_hashes.update(data)
    async_hashes = StreamHashes(ALGORITHMS)
    await async_hashes.aupdate(data)
    assert async_hashes.hexdigests() == sync_hashes.hexdigests()
    assert async_hashes.bytes_hashed == len(data)


async def test_aupdate_of_large_chunk_hashes_off_the_event_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real_update_each = _hasher._update_each

    def recording_update_each(hashers: Sequence[checksums.Hasher], data: bytes) -> None:
        threads.append(threading.get_ident())
        real_update_each(hashers, data)

    monkeypatch.setattr(_hasher, "_update_each", recording_update_each)
    hashes = StreamHashes(["sha256"])
    await hashes.aupdate(bytes(OFFLOAD_THRESHOLD))
    await hashes.aupdate(b"small")
    assert threads[0] != threading.get_ident()
    assert threads[1] == threading.get_ident()


async def test_aupdate_lets_other_coroutines_run_while_hashing() -> None:
    hashes = StreamHashes(["sha256", "md5"])
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    ticks_before = ticks
    await hashes.aupdate(bytes(OFFLOAD_THRESHOLD))
    await cancel_and_check(task)
    assert ticks > ticks_before


@given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=40))
async def test_aupdate_preserves_order_across_many_chunks(sizes: list[int]) -> None:
    # A small threshold sends some chunks to a thread and hashes others inline.
    data = os.urandom(sum(sizes))
    hashes = StreamHashes(ALGORITHMS, offload_threshold=1000)
    offset = 0
    for size in sizes:
        await hashes.aupdate(data[offset : offset + size])
        offset += size
    expected = StreamHashes(ALGORITHMS)
    expected.update(data)
    assert hashes.hexdigests() == expected.hexdigests()
    assert hashes.bytes_hashed == len(data)


async def test_aupdate_preserves_order_across_large_chunks() -> None:
    chunks = [os.urandom(OFFLOAD_THRESHOLD + n) for n in range(6)]
    hashes = StreamHashes(ALGORITHMS)
    for chunk in chunks:
        await hashes.aupdate(chunk)
    expected = StreamHashes(ALGORITHMS)
    expected.update(b"".join(chunks))
    assert hashes.hexdigests() == expected.hexdigests()


async def test_aupdate_cancelled_leaves_hashes_unchanged() -> None:
    hashes = StreamHashes(["sha256", "crc32c"], offload_threshold=1)
    hashes.update(b"1234")
    before = hashes.hexdigests()
    task = asyncio.create_task(hashes.aupdate(bytes(8 * OFFLOAD_THRESHOLD)))
    await asyncio.sleep(0)  # let it hand the chunk to the worker thread
    await cancel_and_check(task)
    assert hashes.hexdigests() == before
    assert hashes.bytes_hashed == 4
    await hashes.aupdate(b"56789")
    assert hashes.digests() == {n: one_shot(n, CHECK_INPUT) for n in ("sha256", "crc32c")}


async def test_update_during_aupdate_raises_runtime_error() -> None:
    hashes = StreamHashes(["md5"], offload_threshold=1)
    task = asyncio.create_task(hashes.aupdate(bytes(OFFLOAD_THRESHOLD)))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="in progress"):
        hashes.update(b"x")
    with pytest.raises(RuntimeError, match="in progress"):
        await hashes.aupdate(b"x")
    await task
    assert hashes.hexdigests() == {"md5": hashlib.md5(bytes(OFFLOAD_THRESHOLD)).hexdigest()}


async def test_aupdate_of_empty_chunk_changes_nothing() -> None:
    hashes = StreamHashes(["sha1"], offload_threshold=0)
    await hashes.aupdate(b"")
    assert hashes.hexdigests() == {"sha1": hashlib.sha1(b"").hexdigest()}
    assert hashes.bytes_hashed == 0


# -- ETags -------------------------------------------------------------------


def test_single_etag_is_hex_md5() -> None:
    assert single_etag(hashlib.md5(b"abc").digest()) == hashlib.md5(b"abc").hexdigest()


def test_single_etag_with_wrong_length_raises_value_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        single_etag(hashlib.sha1(b"abc").digest())


def test_multipart_etag_equals_md5_of_part_md5s() -> None:
    parts = [os.urandom(1000), os.urandom(1000), os.urandom(17)]
    part_etags = [hashlib.md5(part).hexdigest() for part in parts]
    # How S3 and moto build it: the md5 of the parts' ETags decoded from hex.
    expected = hashlib.md5(bytes.fromhex("".join(part_etags))).hexdigest() + "-3"
    assert multipart_etag([hashlib.md5(part).digest() for part in parts]) == expected


def test_multipart_etag_of_one_part_has_suffix_one() -> None:
    digest = hashlib.md5(b"x").digest()
    assert multipart_etag([digest]) == hashlib.md5(digest).hexdigest() + "-1"


def test_multipart_etag_without_parts_raises_value_error() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        multipart_etag([])


def test_multipart_etag_with_wrong_digest_length_raises_value_error() -> None:
    with pytest.raises(ValueError, match="part 2"):
        multipart_etag([hashlib.md5(b"a").digest(), b"short"])


MD5_HEX = "9e107d9d372bb6826bd81d3542a419d6"


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        (MD5_HEX, True),
        (f'"{MD5_HEX}"', True),
        (MD5_HEX.upper(), True),
        (f"{MD5_HEX}-1", True),
        (f'"{MD5_HEX}-10000"', True),
        (f" {MD5_HEX} ", True),
        (MD5_HEX[:-1], False),
        (MD5_HEX + "0", False),
        (f"{MD5_HEX}-0", False),
        (f"{MD5_HEX}-", False),
        (f"{MD5_HEX}-1-2", False),
        (f"W/{MD5_HEX}", False),
        ("z" * 32, False),
        ("", False),
        ('""', False),
        ("1b2cf535f27731c974343645a3985328-08", False),
        # Forms seen from other S3-compatible servers and gateways.
        ("0x8D9A1E2B3C4D5E6", False),
        ("a3f5c1d2-17b4-4e2a-9c3d-8f1e2d3c4b5a", False),
        (hashlib.sha256(b"x").hexdigest(), False),
    ],
)
def test_etag_is_md5_based(etag: str, expected: bool) -> None:
    assert etag_is_md5_based(etag) is expected


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        (f'"{MD5_HEX.upper()}"', MD5_HEX),
        (f'"{MD5_HEX.upper()}-3"', f"{MD5_HEX}-3"),
        (MD5_HEX, MD5_HEX),
        (f' "{MD5_HEX}" ', MD5_HEX),
        ('"OpaqueTag"', "OpaqueTag"),
        ('"', '"'),
    ],
)
def test_normalize_etag(etag: str, expected: str) -> None:
    assert normalize_etag(etag) == expected


def test_normalize_etag_of_non_str_raises_type_error() -> None:
    with pytest.raises(TypeError):
        normalize_etag(b"abc")  # type: ignore[arg-type]


# -- S3 multipart checksums --------------------------------------------------


def _parts() -> list[bytes]:
    return [b"a" * 5000, b"b" * 5000, b"tail"]


@pytest.mark.parametrize("name", ["sha1", "sha256", "crc32", "crc32c", "crc64nvme"])
def test_composite_checksum_is_checksum_of_part_checksums(name: str) -> None:
    part_digests = [reference_digest(name, part) for part in _parts()]
    expected = base64.b64encode(reference_digest(name, b"".join(part_digests))).decode()
    assert composite_checksum(name, [one_shot(name, p) for p in _parts()]) == f"{expected}-3"


def test_composite_checksum_of_known_sha256_parts() -> None:
    part_digests = [hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()]
    value = base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()
    assert composite_checksum("SHA256", part_digests) == f"{value}-2"


@pytest.mark.parametrize("name", ["sha1", "sha256", "crc32", "crc64nvme"])
def test_composite_checksum_matches_moto(name: str) -> None:
    # moto's own builder, in-process (no server); it computes each part's checksum
    # from the part's bytes, concatenates the raw digests and hashes them again.
    # crc32c is left out: without the optional `crc32c` package moto silently
    # computes CRC32 instead.
    models = pytest.importorskip("moto.s3.models")
    builder = models.MultipartChecksumBuilder(s3_algorithm(name), "COMPOSITE")
    for part in _parts():
        builder.addPart(part)
    checksum_type, value, part_count = builder.build()
    assert checksum_type == "COMPOSITE"
    expected = f"{value}-{part_count}"
    assert composite_checksum(name, [one_shot(name, p) for p in _parts()]) == expected


@pytest.mark.parametrize("name", ["crc32", "crc64nvme"])
def test_full_object_checksum_of_moto_is_base64_of_the_stream_crc(name: str) -> None:
    models = pytest.importorskip("moto.s3.models")
    builder = models.MultipartChecksumBuilder(s3_algorithm(name), "FULL_OBJECT")
    hashes = StreamHashes([name])
    for part in _parts():
        builder.addPart(part)
        hashes.update(part)
    checksum_type, value, _ = builder.build()
    assert checksum_type == "FULL_OBJECT"
    assert base64.b64encode(hashes.digests()[name]).decode() == value


def test_composite_checksum_of_md5_raises_value_error() -> None:
    with pytest.raises(ValueError, match="MD5"):
        composite_checksum("md5", [hashlib.md5(b"a").digest()])


def test_composite_checksum_without_parts_raises_value_error() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        composite_checksum("sha256", [])


def test_composite_checksum_with_wrong_digest_length_raises_value_error() -> None:
    with pytest.raises(ValueError, match="part 1"):
        composite_checksum("crc32", [hashlib.sha256(b"a").digest()])


# -- combining CRCs ------------------------------------------------------------------


@given(
    name=st.sampled_from(CRCS),
    parts=st.lists(
        st.one_of(st.just(b""), st.binary(min_size=1, max_size=1), st.binary(max_size=300)),
        max_size=12,
    ),
)
def test_combined_part_crcs_equal_the_one_pass_crc_of_the_whole(
    name: str, parts: list[bytes]
) -> None:
    combined = 0
    hasher = new_hasher(name)
    for part in parts:
        value = checksums.crc(name, part)
        combined = checksums.combine_crc(name, combined, value, len(part))
        hasher.combine(value, len(part))
    whole = b"".join(parts)
    assert checksums.crc_digest(name, combined) == reference_digest(name, whole)
    assert hasher.digest() == reference_digest(name, whole)


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256"])
def test_combine_of_a_digest_that_is_not_a_crc_raises_type_error(name: str) -> None:
    with pytest.raises(TypeError, match="only CRCs"):
        new_hasher(name).combine(0, 1)


def test_crc_of_an_algorithm_that_is_not_a_crc_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not a CRC"):
        checksums.crc("sha256", b"x")
