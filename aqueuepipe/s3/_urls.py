"""``s3://bucket/key`` URLs and the locations a copy reads from or writes to.

Everything here is pure: URLs are checked against the S3 naming rules before any
network call, so a typo fails with a :class:`ValueError` that names the URL and the
rule it breaks instead of a 400 from the server halfway through a batch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from ._secrets import redact

__all__ = [
    "MAX_KEY_BYTES",
    "Location",
    "S3Url",
    "is_s3_url",
    "parse_location",
    "parse_s3_url",
]

MAX_KEY_BYTES = 1024
"""The longest object key S3 accepts, in bytes of UTF-8."""

_SCHEME = "s3://"
# Any "scheme://" prefix (RFC 3986 scheme syntax); used to tell URLs from paths.
_URL_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: ``s3:`` or ``s3:/`` before something that is not a slash: an s3:// URL mistyped.
_NEAR_S3_RE = re.compile(r"^s3:/?(?=[^/])", re.IGNORECASE)
_BUCKET_CHARS_RE = re.compile(r"^[a-z0-9.-]+$")
_IPV4_LIKE_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# Names S3 reserves for other things (punycode, access point and Object Lambda
# aliases); a bucket can never be created with them.
_RESERVED_PREFIXES = ("xn--", "sthree-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3")


@dataclass(frozen=True, slots=True)
class S3Url:
    """An S3 object (or, with an empty key or one ending in ``/``, a prefix).

    Construction checks the bucket name and the key length, so every instance names
    something S3 could hold.

    Raises:
        ValueError: the bucket name breaks the S3 naming rules, or the key is longer
            than 1024 bytes of UTF-8 or holds a NUL.
    """

    bucket: str
    key: str

    def __post_init__(self) -> None:
        _check_bucket(self.bucket, f"{_SCHEME}{self.bucket}/{self.key}")
        _check_key(self.key, f"{_SCHEME}{self.bucket}/{self.key}")

    def __str__(self) -> str:
        return f"{_SCHEME}{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        """True for a whole bucket (empty key) or a "directory" (key ending in ``/``)."""
        return not self.key or self.key.endswith("/")

    def as_prefix(self) -> S3Url:
        """This location as a prefix: the key with one trailing ``/`` (the bucket: "").

        The one place a "directory" is spelled: ``s3://b/logs`` and ``s3://b/logs/``
        both give ``s3://b/logs/``.
        """
        if self.is_prefix:
            return self
        return S3Url(self.bucket, self.key + "/")


Location: TypeAlias = S3Url | Path
"""Where a copy reads from or writes to: an S3 object or prefix, or a local path."""


def is_s3_url(s: object) -> bool:
    """Tell whether ``s`` is a string that starts with ``s3://`` (any letter case).

    Only the scheme is looked at; :func:`parse_s3_url` does the validation.
    """
    return isinstance(s, str) and s[: len(_SCHEME)].lower() == _SCHEME


def parse_s3_url(url: str, *, require_key: bool = True) -> S3Url:
    """Split ``s3://bucket/key`` into bucket and key, checking both.

    The key is taken literally: ``?``, ``#``, ``//`` and spaces are part of it, as
    they are in S3.  With ``require_key=False`` a bucket alone (``s3://bucket`` or
    ``s3://bucket/``) is accepted and gives an empty key.

    Raises:
        ValueError: the scheme is not ``s3``, the URL holds ``user:password@``, the
            bucket is empty or breaks the S3 bucket naming rules, the key is missing
            while ``require_key`` is true, or the key is longer than 1024 bytes of
            UTF-8 (or not encodable), or it holds a NUL.
    """
    if not isinstance(url, str):
        raise TypeError(f"an S3 URL must be a str, not {type(url).__name__}")
    if not is_s3_url(url):
        match = _URL_SCHEME_RE.match(url)
        found = f"scheme {match.group(1)!r}" if match else "no scheme"
        raise ValueError(f"invalid S3 URL {_shown(url)}: must start with 's3://' ({found} given)")
    rest = url[len(_SCHEME) :]
    bucket, _, key = rest.partition("/")
    if "@" in bucket:
        # Said apart, and without what was before the "@": the bucket rule would
        # quote the name, and with it the secret.
        raise ValueError(
            f"invalid S3 URL {_shown(url)}: it must not hold user:password@ (credentials "
            "come from the AWS environment variables or configuration)"
        )
    _check_bucket(bucket, url)
    if require_key and not key:
        raise ValueError(
            f"invalid S3 URL {_shown(url)}: an object key is required (s3://{bucket}/KEY)"
        )
    _check_key(key, url)
    return S3Url(bucket, key)


def parse_location(s: str | os.PathLike[str]) -> Location:
    """Parse a copy source or destination: an ``s3://`` URL or a local path.

    A string starting with ``s3://`` is parsed with :func:`parse_s3_url` (a bucket or
    prefix without a key is allowed here); any other string, and every
    :class:`os.PathLike`, is a local :class:`~pathlib.Path`, returned as given
    (neither resolved nor checked for existence).

    A string that looks like a mistyped ``s3://`` URL (``s3:/b/k``, ``s3:b/k``,
    ``" s3://b/k"``) is refused with the URL it was likely meant to be; a local
    file of such a name is reached as ``./s3:b/k`` or with a :class:`~pathlib.Path`.

    Raises:
        ValueError: the location is empty, is an ``s3://`` URL that
            :func:`parse_s3_url` rejects, looks like a mistyped one, or is a URL
            with another scheme (``http://``, ``gs://``, ``file://``...), which
            aqueuepipe does not read.
    """
    if isinstance(s, os.PathLike):
        # A path object is always local, even if its text looks like a URL.
        return Path(s)
    if not isinstance(s, str):
        raise TypeError(f"a location must be a str or os.PathLike, not {type(s).__name__}")
    if not s:
        raise ValueError("invalid location '': an empty string is neither a path nor a URL")
    if is_s3_url(s):
        return parse_s3_url(s, require_key=False)
    suggestion = _meant_s3_url(s)
    if suggestion is not None:
        raise ValueError(
            f"invalid location {_shown(s)}: did you mean {_shown(suggestion)}? (for a "
            f"local path of that name, write {_shown('./' + s)})"
        )
    match = _URL_SCHEME_RE.match(s)
    if match:
        raise ValueError(
            f"invalid location {_shown(s)}: unsupported scheme {match.group(1)!r}; "
            "use an s3:// URL or a local path"
        )
    return Path(s)


def _meant_s3_url(text: str) -> str | None:
    """The s3:// URL a string that is not one was most likely meant to be: one with
    a slash or two missing (``s3:/b/k``, ``s3:b/k``), or with leading blanks."""
    if (match := _NEAR_S3_RE.match(text)) is not None:
        return "s3://" + text[match.end() :]
    stripped = text.lstrip()
    if stripped != text and (is_s3_url(stripped) or _NEAR_S3_RE.match(stripped)):
        return _meant_s3_url(stripped) or stripped
    return None


def _shown(text: str, limit: int = 100) -> str:
    """``repr(text)`` without credentials (:func:`~aqueuepipe.s3._secrets.redact`),
    shortened in the middle so a 1 KiB key keeps messages readable."""
    text = redact(text)
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-limit // 2 :]}"
    return repr(text)


def _check_bucket(bucket: str, url: str) -> None:
    def invalid(rule: str) -> ValueError:
        return ValueError(f"invalid S3 URL {_shown(url)}: bucket name {_shown(bucket)} {rule}")

    if not bucket:
        raise ValueError(f"invalid S3 URL {_shown(url)}: the bucket name is empty")
    if not 3 <= len(bucket) <= 63:
        raise invalid(f"must be 3 to 63 characters long (it has {len(bucket)})")
    if not _BUCKET_CHARS_RE.match(bucket):
        raise invalid("may contain only lowercase letters, digits, dots and hyphens")
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        raise invalid("must start and end with a letter or a digit")
    if ".." in bucket:
        raise invalid("must not contain two adjacent dots")
    if _IPV4_LIKE_RE.match(bucket):
        raise invalid("must not be formatted as an IP address")
    for prefix in _RESERVED_PREFIXES:
        if bucket.startswith(prefix):
            raise invalid(f"must not start with the reserved prefix {prefix!r}")
    for suffix in _RESERVED_SUFFIXES:
        if bucket.endswith(suffix):
            raise invalid(f"must not end with the reserved suffix {suffix!r}")


def _check_key(key: str, url: str) -> None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"invalid S3 URL {_shown(url)}: the key is not valid Unicode ({exc.reason})"
        ) from None
    if size > MAX_KEY_BYTES:
        raise ValueError(
            f"invalid S3 URL {_shown(url)}: the key is {size} bytes of UTF-8, "
            f"longer than the S3 limit of {MAX_KEY_BYTES}"
        )
    # S3 takes any Unicode character in a key (those XML 1.0 cannot carry are
    # listed with encoding-type=url), but a NUL can be in no XML, no POSIX path,
    # and servers answer 500 to it (moto does): it is refused before any request.
    if "\x00" in key:
        raise ValueError(
            f"invalid S3 URL {_shown(url)}: the key holds U+0000 (NUL), which no S3 "
            "request or listing can carry"
        )
