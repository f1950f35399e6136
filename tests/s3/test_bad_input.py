"""Bad input: a clear error naming what is wrong, raised before anything is written."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aqueuepipe import (
    NoSuchBucketError,
    NoSuchKeyError,
    TransferError,
    copy,
    copy_many,
    open_writer,
)
from aqueuepipe.s3 import S3Client

from .._helpers import MakeBucket, MiB, key_exists, open_uploads, put


class _Client:
    """Passes for an S3 client at the call (it is never used: nothing runs)."""

    def get_object(self) -> None:
        raise AssertionError("not to be called")


FAKE = _Client()


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        ("http://bucket/key", "s3://bucket/x", "scheme"),
        ("s3://", "s3://bucket/x", "bucket"),
        ("s3://ab/key", "s3://bucket/x", "3"),
        ("s3://Bad_Bucket/key", "s3://bucket/x", "Bad_Bucket"),
        ("s3://bucket..name/key", "s3://bucket/x", "bucket..name"),
        ("s3://192.168.1.1/key", "s3://bucket/x", "IP"),
        ("s3://bucket", "s3://bucket/x", "key"),
        ("s3://bucket/dir/", "s3://bucket/x", "prefix"),
        ("s3://bucket/key", "s3://bucket/key", "same"),
        ("./a", "./b", "s3://"),
    ],
)
async def test_bad_urls_raise_value_error_before_any_request(
    src: str, dst: str, message: str
) -> None:
    # No endpoint is configured: reaching the network would fail differently.
    with pytest.raises(ValueError, match=message):
        await copy(src, dst, endpoint_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("limit", 0, "limit"),
        ("limit", -5, "limit"),
        ("limit", 1 * MiB, "must hold at least one part"),
        ("part_size", 1 * MiB, "part_size"),
        ("part_size", 0, "part_size"),
        ("concurrency", 0, "concurrency"),
        ("concurrency", -1, "concurrency"),
        ("part_concurrency", 0, "part_concurrency must be a positive integer"),
        ("retries", -1, "retries"),
        ("checksums", ("md6",), "md6"),
        ("checksum_algorithm", "md6", "md6"),
        ("verify", "always", "verify"),
    ],
)
async def test_bad_options_raise_value_error_naming_them(
    option: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await copy("s3://bucket/key", "s3://other/key", **{option: value})  # type: ignore[arg-type]


async def test_part_concurrency_and_its_alias_together_are_refused() -> None:
    with pytest.raises(ValueError, match="part_concurrency or its alias"):
        await copy("s3://bucket/key", "s3://other/key", part_concurrency=2, concurrency=3)


async def test_missing_source_bucket_raises_and_writes_nothing(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    dst = await make_bucket()
    with pytest.raises(NoSuchBucketError, match="source"):
        await copy("s3://missing-source-aqp/key", f"s3://{dst}/key")
    assert not await key_exists(s3_client, dst, "key")


async def test_missing_destination_bucket_for_upload_raises(endpoint: str, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 100)
    with pytest.raises(NoSuchBucketError, match="destination"):
        await copy(str(source), "s3://missing-destination-aqp/key")


async def test_a_key_holding_nul_is_refused_before_any_request(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"U\+0000"):
        await copy(source, "s3://bucket/a\x00b", endpoint_url="http://127.0.0.1:9")


async def test_a_key_the_server_refuses_is_not_called_missing(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """moto answers 404 NoSuchKey to a write of a key with a newline (S3 takes it):
    that is a refused key, not "destination object ... does not exist"."""
    bucket = await make_bucket()
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    with pytest.raises(TransferError, match=r"refused the key \(it holds control") as caught:
        await copy(source, f"s3://{bucket}/a\nb")
    assert not isinstance(caught.value, NoSuchKeyError)
    assert "does not exist" not in str(caught.value)


async def test_missing_key_for_download_creates_nothing(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    with pytest.raises(NoSuchKeyError, match="nope"):
        await copy(f"s3://{bucket}/nope", str(tmp_path / "out.bin"))
    assert list(tmp_path.iterdir()) == []


async def test_local_source_that_is_a_directory_raises(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    with pytest.raises((ValueError, TransferError), match="directory"):
        await copy(str(tmp_path), f"s3://{bucket}/key")


async def test_missing_local_source_raises_naming_it(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    with pytest.raises(TransferError, match=r"absent\.bin"):
        await copy(str(tmp_path / "absent.bin"), f"s3://{bucket}/key")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
async def test_unreadable_local_source_raises(
    endpoint: str, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    source = tmp_path / "secret.bin"
    source.write_bytes(b"x")
    source.chmod(0)
    with pytest.raises(TransferError, match=r"secret\.bin"):
        await copy(str(source), f"s3://{bucket}/key")


async def test_source_that_cannot_be_opened_raises_naming_it_even_as_root(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """A failure root gets too (the test above is skipped where CI runs as root): a
    path through a regular file cannot be opened (ENOTDIR), and nothing is stored."""
    bucket = await make_bucket()
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(TransferError, match=r"plain/secret\.bin"):
        await copy(str(tmp_path / "plain" / "secret.bin"), f"s3://{bucket}/key")
    assert not await key_exists(s3_client, bucket, "key")


async def test_download_into_missing_directory_raises_before_any_request(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    bucket = await make_bucket()
    await put(s3_client, bucket, "obj", b"data")
    with pytest.raises(TransferError, match="no-such-dir"):
        await copy(f"s3://{bucket}/obj", str(tmp_path / "no-such-dir" / "out.bin"))
    assert list(tmp_path.iterdir()) == []


async def test_multipart_to_missing_bucket_leaves_no_upload(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket
) -> None:
    src = await make_bucket()
    await put(s3_client, src, "big", b"z" * (9 * MiB))
    with pytest.raises(NoSuchBucketError):
        await copy(f"s3://{src}/big", "s3://missing-destination-aqp/big")
    assert await open_uploads(s3_client, src) == []


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"concurrency": 0}, ValueError, r"^concurrency must be a positive integer, got 0"),
        ({"progress": 42}, TypeError, r"^progress must be a callable .* got 42 \(int\)"),
        ({"budget": "big"}, TypeError, r"^budget must be a ByteBudget .* got 'big' \(str\)"),
        ({"client": "x"}, TypeError, r"^client must be an S3 client .* got 'x' \(str\)"),
        ({"src_client": 1}, TypeError, r"^src_client must be an S3 client"),
        ({"endpoint_url": 123}, TypeError, r"^endpoint_url must be a str .* got 123 \(int\)"),
        ({"checksums": 3}, TypeError, r"^checksums must be a collection .* got 3 \(int\)"),
        ({"checksums": (5,)}, TypeError, r"^checksums must hold algorithm names .* got 5"),
        ({"checksum_algorithm": 5}, TypeError, r"^checksum_algorithm must be .* got 5 \(int\)"),
        ({"checksum_when": "always"}, ValueError, r"^checksum_when must be .* got 'always'"),
        (
            {"sse": "aws:kms", "sse_kms_key_id": 3},
            ValueError,
            r"^sse_kms_key_id must be a str, got 3 \(int\)",
        ),
        ({"storage_class": 5}, ValueError, r"^storage_class must be a str, got 5 \(int\)"),
    ],
)
def test_options_of_the_wrong_type_are_refused_at_the_call_naming_the_keyword(
    options: dict[str, object], error: type[Exception], message: str, tmp_path: Path
) -> None:
    """Each of these used to fail deep inside the copy, after it began (or, for
    concurrency=0, blamed part_concurrency).  No server is needed: nothing runs."""
    with pytest.raises(error, match=message):
        copy("s3://bucket/k", str(tmp_path / "k"), **options)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        copy_many([("s3://bucket/k", str(tmp_path / "k"))], **options)  # type: ignore[arg-type]
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("dst", ["s3://", "s3:///"])
def test_a_destination_without_a_bucket_is_named_as_typed(dst: str) -> None:
    """It used to be named 's3://k' (the source's name appended as to a directory)."""
    with pytest.raises(ValueError, match=rf"invalid S3 URL {dst!r}: the bucket name is empty"):
        copy("s3://bucket/k", dst)


@pytest.mark.parametrize("pairs", ["s3://bucket/k", b"s3://bucket/k", Path("a")])
def test_copy_many_of_a_single_location_is_refused_at_the_call(pairs: object) -> None:
    """A str was taken as pairs, one failed result per character."""
    with pytest.raises(TypeError, match=r"copy_many takes \(src, dst\) pairs, not the single"):
        copy_many(pairs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("src", "dst", "options", "message"),
    [
        ("s3://bucket/k", "local.bin", {"metadata": {"a": "b"}}, r"^metadata applies to an S3"),
        ("s3://bucket/k", "local.bin", {"sse": "AES256"}, r"^sse applies to an S3 destination"),
        ("s3://bucket/k", "local.bin", {"content_type": "text/plain"}, r"^content_type applies"),
        ("s3://bucket/k", "local.bin", {"storage_class": "GLACIER"}, r"^storage_class applies"),
        ("local.bin", "s3://bucket/k", {"tags": True}, r"^tags=True copies the source object"),
        ("s3://bucket/k", "local.bin", {"tags": True}, r"^tags=True copies the source object"),
        ("local.bin", "s3://bucket/k", {"src_client": FAKE}, r"^src_client applies to an s3://"),
        ("s3://bucket/k", "local.bin", {"dst_client": FAKE}, r"^dst_client applies to an s3://"),
    ],
)
def test_an_option_that_cannot_apply_to_the_direction_is_refused(
    src: str, dst: str, options: dict[str, object], message: str, tmp_path: Path
) -> None:
    """These were silently ignored (the copy ran without them)."""
    (tmp_path / "local.bin").write_bytes(b"x")
    src = str(tmp_path / src) if src == "local.bin" else src
    dst = str(tmp_path / dst) if dst == "local.bin" else dst
    with pytest.raises(ValueError, match=message):
        copy(src, dst, **options)  # type: ignore[arg-type]


async def test_copy_many_refuses_the_option_for_the_pairs_it_cannot_apply_to(
    endpoint: str, s3_client: S3Client, make_bucket: MakeBucket, tmp_path: Path
) -> None:
    """In a batch the pair it cannot apply to fails, with the reason; the others copy."""
    bucket = await make_bucket()
    await put(s3_client, bucket, "k", b"data")
    local = tmp_path / "up.bin"
    local.write_bytes(b"up")
    pairs = [(f"s3://{bucket}/k", str(tmp_path / "down.bin")), (str(local), f"s3://{bucket}/up")]
    results = {r.dst: r async for r in copy_many(pairs, metadata={"team": "x"})}
    down = results[str(tmp_path / "down.bin")]
    assert not down.ok and "metadata applies to an S3 destination" in str(down.error)
    assert not (tmp_path / "down.bin").exists()
    assert results[f"s3://{bucket}/up"].ok
    head = await s3_client.head_object(Bucket=bucket, Key="up")
    assert head["Metadata"] == {"team": "x"}


def test_copy_many_refuses_a_recursive_that_is_not_a_bool() -> None:
    """recursive='yes' was taken as true."""
    with pytest.raises(ValueError, match=r"^recursive must be True or False, got 'yes'"):
        copy_many([("s3://bucket/k", "s3://other/k")], recursive="yes")  # type: ignore[arg-type]


async def test_skip_existing_with_a_stream_end_fails_that_pair_before_any_request() -> None:
    """A stream cannot be compared with the destination: skip_existing was ignored."""

    async def body() -> AsyncIterator[bytes]:
        yield b"x"

    batch = copy_many(
        [(body(), "s3://bucket/k")], skip_existing=True, endpoint_url="http://127.0.0.1:9"
    )
    results = [result async for result in batch]
    assert len(results) == 1
    assert isinstance(results[0].error, ValueError)
    assert str(results[0].error).startswith("skip_existing=True compares the destination")


@pytest.mark.parametrize("call", ["copy", "copy_many"])
def test_an_unknown_keyword_is_a_type_error_naming_it(call: str) -> None:
    """The options are typed ``**options: Unpack[...]``, which Python does not check."""
    with pytest.raises(
        TypeError, match=rf"^{call}\(\) got an unexpected keyword argument 'part_sise'"
    ):
        if call == "copy":
            copy("s3://bucket/k", "s3://other/k", part_sise=1)  # type: ignore[call-arg]
        else:
            copy_many([("s3://bucket/k", "s3://other/k")], part_sise=1)  # type: ignore[call-arg]


async def test_open_writer_refuses_an_unknown_keyword_naming_it() -> None:
    with pytest.raises(TypeError, match=r"^open_writer\(\) got an unexpected keyword .* 'limt'"):
        async with open_writer("s3://bucket/k", limt=1):  # type: ignore[call-arg]
            pass
