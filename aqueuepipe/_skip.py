"""``skip_existing``: is the destination already the source's object?

The same rule serves ``copy_many(skip_existing=True)``, ``aqueuepipe sync`` and the
Dask layer's re-runs: the destination exists, has the source's size, and the same
content evidence.

- S3 to S3: the same ETag when both are MD5-based (a copy that kept the source's
  part layout has the source's ETag), or the same stored S3 checksum (same
  algorithm, same value and form).
- S3 to a local file, and a local file to S3: the file's bytes checked against
  the S3 object's own evidence (its FULL_OBJECT or COMPOSITE checksum, or its MD5
  ETag), as a copy checks what it reads (:class:`~aqueuepipe._verify.SourceCheck`).

An object without comparable evidence is copied again: skipping is an
optimisation, never a guess.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import botocore.exceptions

from ._verify import SourceCheck, SourceMismatch, needs_layout
from .checksums import etag_evidence, stored_checksum
from .s3._client import S3Client
from .s3._layout import PartLayout, part_layout
from .s3._translate import is_missing_object
from .s3._urls import S3Url

__all__ = ["already_there"]

_READ_SIZE = 1 << 20


async def head(client: S3Client, url: S3Url) -> Mapping[str, Any] | None:
    """HeadObject with the stored checksum; None when there is no such object.

    Raises:
        botocore.exceptions.ClientError: any other refusal (a missing bucket...).
    """
    try:
        response: Mapping[str, Any] = await client.head_object(
            Bucket=url.bucket, Key=url.key, ChecksumMode="ENABLED"
        )
    except botocore.exceptions.ClientError as exc:
        if is_missing_object(exc):
            return None
        raise
    return response


def _same_evidence(src: Mapping[str, Any], dst: Mapping[str, Any]) -> bool:
    src_etag, dst_etag = etag_evidence(src), etag_evidence(dst)
    if src_etag is not None and dst_etag is not None and src_etag.same_bytes(dst_etag):
        return True
    src_sum, dst_sum = stored_checksum(src), stored_checksum(dst)
    return src_sum is not None and src_sum == dst_sum


def _file_size(path: Path) -> int | None:
    """The size of the regular file ``path``; None if it is not one."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


async def _file_matches(
    path: Path, client: S3Client, url: S3Url, response: Mapping[str, Any]
) -> bool:
    """Whether the file holds the bytes the object's evidence describes."""
    size = int(response["ContentLength"])
    etag = str(response["ETag"])
    layout = await part_layout(client, url, size, etag) if needs_layout(response) else None
    matches = await _file_matches_in(path, response, size, layout)
    if matches is None and layout is not None:  # inferred from part 1: ask every part
        reported = await part_layout(client, url, size, etag, confirm=True)
        if reported is not None and reported.sizes != layout.sizes:
            matches = await _file_matches_in(path, response, size, reported)
    return bool(matches)


async def _file_matches_in(
    path: Path, response: Mapping[str, Any], size: int, layout: PartLayout | None
) -> bool | None:
    """Whether the file holds the object's bytes, its part evidence cut in ``layout``;
    None when they differ in a layout that was inferred, not reported."""
    check = SourceCheck.for_object(response, size, layout)
    if check is None:
        return False

    def feed() -> bool | None:
        with path.open("rb") as file:
            while chunk := file.read(_READ_SIZE):
                check.update(chunk)
        try:
            check.verify()
        except SourceMismatch as exc:
            return False if exc.layout_confirmed else None
        return True

    return await asyncio.to_thread(feed)


async def already_there(
    src: S3Url | Path,
    dst: S3Url | Path,
    src_client: S3Client | None,
    dst_client: S3Client | None,
) -> tuple[int, str | None] | None:
    """``(size, destination ETag)`` when ``dst`` already holds ``src``'s object, else None.

    Raises:
        botocore.exceptions.ClientError, OSError: the source cannot be examined
            (the copy would fail the same way, and reports it).
    """
    if isinstance(src, S3Url) and isinstance(dst, S3Url):
        assert src_client is not None and dst_client is not None
        # The destination first: an object not there yet (the common case of a
        # first run) costs one request, not two.
        dst_head = await head(dst_client, dst)
        if dst_head is None:
            return None
        src_head = await head(src_client, src)
        if src_head is None or src_head["ContentLength"] != dst_head["ContentLength"]:
            return None  # the copy reports a missing source
        if _same_evidence(src_head, dst_head):
            return int(dst_head["ContentLength"]), str(dst_head["ETag"])
        return None
    if isinstance(src, S3Url):
        assert src_client is not None and isinstance(dst, Path)
        # The file first: a file not there yet costs no request at all.
        size = await asyncio.to_thread(_file_size, dst)
        if size is None:
            return None
        src_head = await head(src_client, src)
        if src_head is None or int(src_head["ContentLength"]) != size:
            return None  # the copy reports a missing source
        if await _file_matches(dst, src_client, src, src_head):
            return size, str(src_head["ETag"])
        return None
    assert isinstance(dst, S3Url) and dst_client is not None
    dst_head = await head(dst_client, dst)
    if dst_head is None:
        return None
    size = int(dst_head["ContentLength"])
    if await asyncio.to_thread(_file_size, src) != size:
        return None
    if await _file_matches(src, dst_client, dst, dst_head):
        return size, str(dst_head["ETag"])
    return None
