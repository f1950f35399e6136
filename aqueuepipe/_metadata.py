"""What a copy writes besides the bytes: headers, user metadata, storage, encryption, tags.

An S3-to-S3 copy carries the source's Content-Type, Content-Encoding,
Content-Disposition, Content-Language, Cache-Control, Expires and user metadata
to the destination, single PUT and multipart alike, as CopyObject does.  An upload
from a file guesses its Content-Type from the file name.  The options replace
(``metadata=``, ``content_type=``) or add (``storage_class=``, ``sse=``,
``sse_kms_key_id=``, ``tags=True``) what goes with the object.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlencode

__all__ = ["SSE_CHOICES", "ObjectOptions", "ObjectSettings", "carried_headers"]

#: The response fields GetObject reports that PutObject and CreateMultipartUpload take.
_CARRIED = (
    "ContentType",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
    "Expires",
)
SSE_CHOICES = ("AES256", "aws:kms", "aws:kms:dsse")


#: What S3 stores of user-defined metadata: names and values, in UTF-8 bytes, together.
METADATA_LIMIT = 2048
#: An HTTP header name (RFC 9110 token), which is what a metadata name becomes.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A header value botocore sends as it is: printable ASCII, spaces and tabs.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _check_metadata(metadata: Mapping[str, str]) -> None:
    """S3's rules for user-defined metadata, checked before any byte moves.

    Each name travels as an ``x-amz-meta-`` header, so it must be a header name;
    values must be printable ASCII on one line (botocore refuses others only once
    the request is built, after the source was read); all names and values
    together are at most :data:`METADATA_LIMIT` bytes.

    Raises:
        ValueError: naming the entry that breaks a rule.
    """
    total = 0
    for name, value in metadata.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"metadata name {name!r} must be ASCII letters, digits or !#$%&'*+-.^_`|~ "
                "(it is sent as an x-amz-meta- header)"
            )
        if not _HEADER_VALUE.fullmatch(value):
            raise ValueError(
                f"metadata value of {name!r} must be printable ASCII without line breaks, "
                f"got {value!r}"
            )
        total += len(name.encode()) + len(value.encode())
    if total > METADATA_LIMIT:
        raise ValueError(
            f"metadata holds {total} bytes of names and values; S3 stores at most {METADATA_LIMIT}"
        )


#: The options sent as one header each (the others: metadata, tags).
_HEADER_OPTIONS = ("content_type", "storage_class", "sse", "sse_kms_key_id")


def _header_text(name: str, given: object) -> str | None:
    """``given`` if None or a header value; else an error naming the option ``name``."""
    if given is None:
        return None
    if not isinstance(given, str):
        raise ValueError(f"{name} must be a str, got {given!r} ({type(given).__name__})")
    if not given:
        raise ValueError(f"{name} must be a non-empty str, got {given!r}")
    if not _HEADER_VALUE.fullmatch(given):
        raise ValueError(f"{name} must be printable ASCII without line breaks, got {given!r}")
    return given


class ObjectOptions(TypedDict, total=False):
    """The keyword options of what goes with a written object (an S3 destination):
    ``metadata`` and ``content_type`` replace the source's, ``storage_class``,
    ``sse`` (with ``sse_kms_key_id``) and ``tags`` add to them."""

    metadata: Mapping[str, str] | None
    content_type: str | None
    storage_class: str | None
    sse: str | None
    sse_kms_key_id: str | None
    tags: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectSettings:
    """The metadata options of a copy, validated (see :meth:`build`)."""

    metadata: Mapping[str, str] | None = None
    content_type: str | None = None
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    tags: bool = False

    @classmethod
    def build(cls, options: ObjectOptions) -> ObjectSettings:
        """Check the options in ``options`` (others are ignored); raise naming what is wrong."""
        metadata = options.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise ValueError(f"metadata must be a mapping of str to str, got {metadata!r}")
            for key, value in metadata.items():
                if not isinstance(key, str) or not isinstance(value, str) or not key:
                    raise ValueError(
                        f"metadata must map non-empty str names to str values, got {key!r}: "
                        f"{value!r}"
                    )
            metadata = dict(metadata)
            _check_metadata(metadata)
        # Each is sent as a header: content_type, storage_class, sse, sse_kms_key_id.
        texts = {name: _header_text(name, options.get(name)) for name in _HEADER_OPTIONS}
        sse, sse_kms_key_id = texts["sse"], texts["sse_kms_key_id"]
        if sse is not None and sse not in SSE_CHOICES:
            raise ValueError(f"sse must be one of {', '.join(SSE_CHOICES)}, got {sse!r}")
        if sse_kms_key_id is not None and (sse is None or not sse.startswith("aws:kms")):
            raise ValueError("sse_kms_key_id needs sse='aws:kms' (or 'aws:kms:dsse')")
        tags = options.get("tags", False)
        if not isinstance(tags, bool):
            raise ValueError(f"tags must be True or False, got {tags!r} ({type(tags).__name__})")
        return cls(metadata=metadata, tags=tags, **texts)

    def check_ends(self, *, src_is_s3: bool, dst_is_s3: bool, src: str, dst: str) -> None:
        """Refuse an option that does not apply to this direction (it would be
        ignored): object settings need an S3 destination, ``tags`` an S3 source
        and destination.

        Raises:
            ValueError: naming the option and the end it cannot apply to.
        """
        if not dst_is_s3:
            for name in ("metadata", *_HEADER_OPTIONS):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to an S3 destination; {dst!r} is not one")
        if self.tags and not (src_is_s3 and dst_is_s3):
            raise ValueError(
                "tags=True copies the source object's tags, so it needs an s3:// source "
                f"and destination, not {src!r} to {dst!r}"
            )

    def headers(
        self,
        *,
        source: Mapping[str, Any] | None = None,
        path: Path | None = None,
        tag_set: list[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """The PutObject / CreateMultipartUpload arguments for the destination.

        ``source`` is the S3 source's GetObject response, ``path`` a local source,
        ``tag_set`` the source's tags (when ``tags`` is on).
        """
        kwargs = carried_headers(source) if source is not None else {}
        if path is not None and "ContentType" not in kwargs:
            guessed, _ = mimetypes.guess_type(path.name, strict=False)
            if guessed is not None:
                kwargs["ContentType"] = guessed
        if self.content_type is not None:
            kwargs["ContentType"] = self.content_type
        if self.metadata is not None:
            kwargs["Metadata"] = dict(self.metadata)
        if self.storage_class is not None:
            kwargs["StorageClass"] = self.storage_class
        if self.sse is not None:
            kwargs["ServerSideEncryption"] = self.sse
        if self.sse_kms_key_id is not None:
            kwargs["SSEKMSKeyId"] = self.sse_kms_key_id
        if tag_set:
            kwargs["Tagging"] = urlencode([(tag["Key"], tag["Value"]) for tag in tag_set])
        return kwargs


def carried_headers(source: Mapping[str, Any]) -> dict[str, Any]:
    """The headers and user metadata of ``source`` that a copy keeps."""
    kwargs = {name: source[name] for name in _CARRIED if source.get(name) not in (None, "")}
    metadata = source.get("Metadata")
    if metadata:
        kwargs["Metadata"] = dict(metadata)
    return kwargs
