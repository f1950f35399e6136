"""S3 URL and location parsing: every rule, with the URL named in the message."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from aqueuepipe.s3 import MAX_KEY_BYTES, S3Url, is_s3_url, parse_location, parse_s3_url


@pytest.mark.parametrize(
    ("url", "bucket", "key"),
    [
        ("s3://my-bucket/key.bin", "my-bucket", "key.bin"),
        ("s3://my-bucket/dir/sub/file", "my-bucket", "dir/sub/file"),
        ("s3://a.b-c.123/k", "a.b-c.123", "k"),
        ("s3://abc/k", "abc", "k"),
        ("s3://" + "a" * 63 + "/k", "a" * 63, "k"),
        ("S3://bucket/k", "bucket", "k"),
        ("s3://bucket/with space?and#hash", "bucket", "with space?and#hash"),
        ("s3://bucket//leading-slash", "bucket", "/leading-slash"),
        ("s3://bucket/ünïcødé/日本", "bucket", "ünïcødé/日本"),
        ("s3://1.2.3/k", "1.2.3", "k"),
        ("s3://my-bucket--x-s3/k", "my-bucket--x-s3", "k"),
    ],
)
def test_parse_s3_url_valid(url: str, bucket: str, key: str) -> None:
    assert parse_s3_url(url) == S3Url(bucket, key)


def test_parse_s3_url_key_of_exactly_1024_bytes() -> None:
    key = "é" * (MAX_KEY_BYTES // 2)  # two bytes each in UTF-8
    assert parse_s3_url(f"s3://bucket/{key}").key == key


def test_parse_s3_url_refuses_a_key_holding_nul() -> None:
    """A NUL went to the server, which answered 500: "unavailable or overloaded"."""
    with pytest.raises(ValueError, match=r"the key holds U\+0000 \(NUL\)"):
        parse_s3_url("s3://bucket/a\x00b")


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\x01", "\x1b", "\x7f"], ids=ascii)
def test_parse_s3_url_takes_a_key_with_any_other_control_character(char: str) -> None:
    assert parse_s3_url(f"s3://bucket/a{char}b").key == f"a{char}b"


@pytest.mark.parametrize("url", ["s3://bucket", "s3://bucket/"])
def test_parse_s3_url_bucket_only_when_key_not_required(url: str) -> None:
    parsed = parse_s3_url(url, require_key=False)
    assert parsed == S3Url("bucket", "")
    assert parsed.is_prefix


@pytest.mark.parametrize("url", ["s3://bucket", "s3://bucket/"])
def test_parse_s3_url_missing_key_rejected(url: str) -> None:
    with pytest.raises(ValueError, match=r"an object key is required") as info:
        parse_s3_url(url)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://bucket/key", r"must start with 's3://' \(scheme 'http' given\)"),
        ("gs://bucket/key", r"scheme 'gs' given"),
        ("s3:/bucket/key", r"must start with 's3://' \(no scheme given\)"),
        ("bucket/key", r"no scheme given"),
        ("", r"no scheme given"),
    ],
)
def test_parse_s3_url_wrong_scheme(url: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule) as info:
        parse_s3_url(url)
    assert f"invalid S3 URL {url!r}" in str(info.value)


@pytest.mark.parametrize("url", ["s3://", "s3:///key", "s3:////"])
def test_parse_s3_url_empty_bucket(url: str) -> None:
    with pytest.raises(ValueError, match=r"the bucket name is empty"):
        parse_s3_url(url, require_key=False)


@pytest.mark.parametrize(
    ("bucket", "rule"),
    [
        ("ab", r"must be 3 to 63 characters long \(it has 2\)"),
        ("a" * 64, r"must be 3 to 63 characters long \(it has 64\)"),
        ("My-Bucket", r"only lowercase letters, digits, dots and hyphens"),
        ("my_bucket", r"only lowercase letters, digits, dots and hyphens"),
        ("my bucket", r"only lowercase letters, digits, dots and hyphens"),
        ("bücket", r"only lowercase letters, digits, dots and hyphens"),
        ("-bucket", r"must start and end with a letter or a digit"),
        ("bucket-", r"must start and end with a letter or a digit"),
        (".bucket", r"must start and end with a letter or a digit"),
        ("bucket.", r"must start and end with a letter or a digit"),
        ("my..bucket", r"must not contain two adjacent dots"),
        ("192.168.5.4", r"must not be formatted as an IP address"),
        ("1.2.3.4", r"must not be formatted as an IP address"),
        ("xn--bucket", r"must not start with the reserved prefix 'xn--'"),
        ("sthree-bucket", r"must not start with the reserved prefix 'sthree-'"),
        ("bucket-s3alias", r"must not end with the reserved suffix '-s3alias'"),
        ("bucket--ol-s3", r"must not end with the reserved suffix '--ol-s3'"),
    ],
)
def test_parse_s3_url_invalid_bucket_name(bucket: str, rule: str) -> None:
    url = f"s3://{bucket}/key"
    with pytest.raises(ValueError, match=rule) as info:
        parse_s3_url(url)
    message = str(info.value)
    assert f"invalid S3 URL {url!r}" in message
    assert f"bucket name {bucket!r}" in message


def test_parse_s3_url_key_longer_than_1024_bytes() -> None:
    key = "é" * (MAX_KEY_BYTES // 2) + "x"  # 1025 bytes, 513 characters
    with pytest.raises(ValueError, match=r"the key is 1025 bytes of UTF-8, longer than .* 1024"):
        parse_s3_url(f"s3://bucket/{key}")


def test_parse_s3_url_long_key_message_is_shortened() -> None:
    with pytest.raises(ValueError) as info:
        parse_s3_url("s3://bucket/" + "k" * 5000)
    assert len(str(info.value)) < 300
    assert "'s3://bucket/kkk" in str(info.value)


def test_parse_s3_url_key_not_encodable() -> None:
    key = os.fsdecode(b"bad\xff")  # a lone surrogate, as from an undecodable file name
    with pytest.raises(ValueError, match=r"the key is not valid Unicode"):
        parse_s3_url(f"s3://bucket/{key}")


def test_parse_s3_url_rejects_non_str() -> None:
    with pytest.raises(TypeError, match=r"must be a str"):
        parse_s3_url(b"s3://bucket/key")  # type: ignore[arg-type]


def test_s3url_str_round_trips() -> None:
    url = "s3://bucket/dir/file.bin"
    assert str(parse_s3_url(url)) == url
    assert str(S3Url("bucket", "")) == "s3://bucket/"


@pytest.mark.parametrize(
    ("key", "is_prefix"),
    [("", True), ("dir/", True), ("dir/sub/", True), ("file", False), ("dir/file", False)],
)
def test_s3url_is_prefix(key: str, is_prefix: bool) -> None:
    assert S3Url("bucket", key).is_prefix is is_prefix


def test_s3url_construction_validates_bucket() -> None:
    with pytest.raises(ValueError, match=r"bucket name 'Bad_Bucket'"):
        S3Url("Bad_Bucket", "key")


def test_s3url_construction_validates_key_length() -> None:
    with pytest.raises(ValueError, match=r"longer than the S3 limit"):
        S3Url("bucket", "k" * (MAX_KEY_BYTES + 1))


def test_s3url_is_frozen_hashable_and_slotted() -> None:
    url = S3Url("bucket", "key")
    with pytest.raises(AttributeError):
        url.key = "other"  # type: ignore[misc]
    assert {url, S3Url("bucket", "key")} == {url}
    assert not hasattr(url, "__dict__")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/key", True),
        ("S3://bucket/key", True),
        ("s3://", True),
        ("s3:/bucket", False),
        ("http://bucket/key", False),
        ("./s3://x", False),
        ("", False),
        (Path("s3://bucket/key"), False),
        (None, False),
    ],
)
def test_is_s3_url(value: object, expected: bool) -> None:
    assert is_s3_url(value) is expected


def test_parse_location_s3_url() -> None:
    assert parse_location("s3://bucket/key") == S3Url("bucket", "key")


def test_parse_location_s3_prefix_without_key() -> None:
    assert parse_location("s3://bucket") == S3Url("bucket", "")
    assert parse_location("s3://bucket/dir/") == S3Url("bucket", "dir/")


@pytest.mark.parametrize("path", ["file.bin", "./dir/file.bin", "/abs/file", "dir/", "C:\\x"])
def test_parse_location_local_path_string(path: str) -> None:
    assert parse_location(path) == Path(path)


def test_parse_location_pathlike_is_always_local() -> None:
    path = PurePosixPath("s3:") / "bucket" / "key"  # looks like a URL, but is a path
    assert parse_location(Path(path)) == Path(path)


def test_parse_location_invalid_s3_url() -> None:
    with pytest.raises(ValueError, match=r"invalid S3 URL 's3://BAD/key'"):
        parse_location("s3://BAD/key")


@pytest.mark.parametrize(
    ("location", "scheme"),
    [
        ("http://example.com/x", "http"),
        ("https://example.com/x", "https"),
        ("gs://bucket/key", "gs"),
        ("file:///tmp/x", "file"),
    ],
)
def test_parse_location_other_scheme_rejected(location: str, scheme: str) -> None:
    with pytest.raises(ValueError, match=rf"unsupported scheme {scheme!r}") as info:
        parse_location(location)
    assert repr(location) in str(info.value)


def test_parse_location_empty_string_rejected() -> None:
    with pytest.raises(ValueError, match=r"invalid location ''"):
        parse_location("")


def test_as_prefix_adds_one_trailing_slash() -> None:
    from aqueuepipe.s3._urls import S3Url

    assert str(S3Url("bkt", "logs").as_prefix()) == "s3://bkt/logs/"
    assert str(S3Url("bkt", "logs/").as_prefix()) == "s3://bkt/logs/"
    assert str(S3Url("bkt", "").as_prefix()) == "s3://bkt/"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("s3:/b/k", "s3://b/k"),
        ("s3:b/k", "s3://b/k"),
        ("S3:/b/k", "s3://b/k"),
        (" s3://b/k", "s3://b/k"),
        ("\ts3:/b/k", "s3://b/k"),
    ],
)
def test_a_mistyped_s3_url_is_refused_with_what_was_meant(typed: str, meant: str) -> None:
    """These used to become local paths, failing later with "No such file"."""
    with pytest.raises(ValueError, match=rf"did you mean {meant!r}\?"):
        parse_location(typed)
    assert parse_location(Path(typed)) == Path(typed)  # a Path is always local
    assert parse_location("./" + typed) == Path("./" + typed)


@pytest.mark.parametrize("text", ["s3x/b", "s3", "s3.txt", "data/s3:/b", "s3://bucket/trailing "])
def test_strings_that_only_resemble_an_s3_url_are_not_refused(text: str) -> None:
    assert parse_location(text) is not None


@pytest.mark.parametrize(
    "location",
    [
        "s3://someone:SECRET-VALUE@bucket/k",
        "s3://AKIAIOSFODNN7EXAMPLE:SECRET-VALUE@bucket/k",
        "https://someone:SECRET-VALUE@host/k",
    ],
)
def test_a_location_with_userinfo_is_refused_without_showing_it(location: str) -> None:
    """The bucket rule used to quote 'someone:SECRET-VALUE@bucket' in its message."""
    with pytest.raises(ValueError) as caught:
        parse_location(location)
    message = str(caught.value)
    assert "SECRET-VALUE" not in message
    assert "someone" not in message and "AKIAIOSFODNN7EXAMPLE" not in message
    if location.startswith("s3://"):
        assert "'s3://bucket/k': it must not hold user:password@" in message
