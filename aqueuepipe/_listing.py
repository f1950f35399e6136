"""Sync decided from listings: both sides listed in S3's key order and merged.

A sync lists its source and its destination, each in S3's key order (the byte
order of the UTF-8 key), and walks the two listings side by side as two sorted
streams (:func:`merge`): each key comes out once, with what each side has
under it.  Whether a key present on both sides is already the same object is
decided from what the listings say (:func:`same_from_listings`), with no
request per object:

- S3 to S3: the same size and the same ETag (copies keep their source's part
  layout, so a copy has its source's ETag); ETags of other layouts, or opaque
  ones, cannot tell, and the object is a candidate for one HeadObject;
- a local file and an object: the same size, and the destination at least as
  new as the source (``aws s3 sync``'s rule);
- ``size_only``: the same size;
- ``checksum``: content, which a listing cannot tell: an object of the same size
  is a candidate for one HeadObject of its checksum (None is returned).

Memory does not grow with the number of keys: the listings are consumed a page
(S3) or a batch of files (a local tree) at a time, and the merge holds one entry
of each side.  A local tree is walked depth first with each directory's entries
sorted as S3 would sort their keys (a directory ``d`` as ``d/``, so ``a.b``
comes before ``a/b``), which yields the whole tree in key order while holding
only the entries of the directories on the current path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .checksums import etag_evidence, normalize_etag
from .local import special_kind
from .s3._client import S3Client
from .s3._urls import S3Url

__all__ = [
    "Compare",
    "Listed",
    "local_listing",
    "merge",
    "s3_listing",
    "same_from_listings",
    "walk_in_key_order",
]

#: How a sync tells that a destination already holds its source's object.
Compare = Literal["listing", "size_only", "checksum"]

#: Files stat'ed per trip to a worker thread while a tree is walked.
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of a listing: its key relative to the listed prefix or directory."""

    key: str
    size: int
    #: POSIX seconds: the object's LastModified, the file's modification time.
    mtime: float
    #: The object's ETag as S3 lists it (None for a file).
    etag: str | None = None
    #: What a local entry is if it is not a regular file (see ``special_kind``).
    special: str | None = None

    @property
    def is_folder_marker(self) -> bool:
        """An empty object whose key ends in ``/``: what consoles make for a folder."""
        return self.key.endswith("/") and self.size == 0


def _sort_key(entry: os.DirEntry[str]) -> bytes:
    name = entry.name.encode("utf-8", "surrogateescape")
    try:
        is_dir = entry.is_dir(follow_symlinks=False)
    except OSError:
        is_dir = False
    return name + b"/" if is_dir else name


def walk_in_key_order(root: Path) -> Iterator[tuple[str, Path, os.stat_result | None]]:
    """Every file under ``root`` as (key, path, its stat or None if it cannot be
    stat'ed), in S3's key order.  Symbolic links are not followed into
    directories; a link is listed as what it points to."""
    stack: list[Iterator[os.DirEntry[str]]] = []
    prefixes: list[str] = []

    def enter(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            stack.append(iter(sorted(entries, key=_sort_key)))
        prefixes.append(prefix)

    enter(root, "")
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            prefixes.pop()
            continue
        key = prefixes[-1] + entry.name
        if entry.is_dir(follow_symlinks=False):
            enter(Path(entry.path), key + "/")
            continue
        try:
            info: os.stat_result | None = os.stat(entry.path)
        except OSError:
            info = None  # a broken link: its copy says what is wrong
        yield key, Path(entry.path), info


async def local_listing(root: Path) -> AsyncIterator[Listed]:
    """The files under ``root``, in S3's key order (walked in a worker thread, a
    batch at a time)."""
    walker = walk_in_key_order(root)
    while batch := await asyncio.to_thread(lambda: list(itertools.islice(walker, _BATCH))):
        for key, _path, info in batch:
            if info is None:
                yield Listed(key, 0, 0.0, special="unreadable")
            elif stat.S_ISREG(info.st_mode):
                yield Listed(key, info.st_size, info.st_mtime)
            else:
                yield Listed(key, 0, info.st_mtime, special=special_kind(info.st_mode) or "other")


async def s3_listing(
    client: S3Client, url: S3Url, *, start_after: str = ""
) -> AsyncGenerator[Listed, None]:
    """The objects under the prefix ``url`` (ListObjectsV2, a page at a time), with
    keys relative to it, in S3's key order; those after ``start_after`` (a key
    relative to it) when it is given."""
    prefix = url.key
    paginator = client.get_paginator("list_objects_v2")
    listing = {"Bucket": url.bucket, "Prefix": prefix}
    if start_after:
        listing["StartAfter"] = prefix + start_after
    async for page in _read_ahead(paginator.paginate(**listing)):
        for entry in page.get("Contents", []):
            yield Listed(
                str(entry["Key"])[len(prefix) :],
                int(entry["Size"]),
                entry["LastModified"].timestamp(),
                str(entry["ETag"]),
            )


async def _read_ahead(pages: AsyncIterable[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
    """``pages``, the next one asked for while the caller works through this one
    (so a merge waits on neither listing in turn): at most two pages held."""
    ahead: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue(maxsize=1)

    async def fetch() -> None:
        try:
            async for page in pages:
                await ahead.put(page)
        except Exception as exc:  # handed to the reader, raised there
            await ahead.put(exc)
            return
        await ahead.put(None)

    task = asyncio.create_task(fetch())
    try:
        while (page := await ahead.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            yield page
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def merge(
    source: AsyncIterable[Listed], destination: AsyncIterable[Listed]
) -> AsyncGenerator[tuple[str, Listed | None, Listed | None], None]:
    """Walk two listings in key order side by side: (key, source's, destination's)
    once per key either has, None for the side that lacks it.

    Raises:
        ValueError: a listing is not in S3's key order (the merge would be wrong).
    """
    src_iter, dst_iter = aiter(source), aiter(destination)
    try:
        src = await _next(src_iter, None)
        dst = await _next(dst_iter, None)
        while src is not None or dst is not None:
            if dst is None or (src is not None and _order(src.key) < _order(dst.key)):
                assert src is not None
                yield src.key, src, None
                src = await _next(src_iter, src)
            elif src is None or _order(dst.key) < _order(src.key):
                yield dst.key, None, dst
                dst = await _next(dst_iter, dst)
            else:
                yield src.key, src, dst
                src = await _next(src_iter, src)
                dst = await _next(dst_iter, dst)
    finally:  # a merge left early closes both listings (and their reads ahead)
        for listing in (src_iter, dst_iter):
            if isinstance(listing, AsyncGenerator):
                await listing.aclose()


def _order(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


async def _next(listing: AsyncIterator[Listed], previous: Listed | None) -> Listed | None:
    entry = await anext(listing, None)
    if entry is not None and previous is not None and _order(entry.key) <= _order(previous.key):
        raise ValueError(f"listing out of S3's key order: {entry.key!r} after {previous.key!r}")
    return entry


def same_from_listings(src: Listed, dst: Listed, compare: Compare = "listing") -> bool | None:
    """Whether ``dst`` already holds ``src``'s object, from the listings alone;
    None when only the content can tell (``compare="checksum"``, same size)."""
    if src.size != dst.size:
        return False
    if compare == "size_only":
        return True
    if compare == "checksum":
        return None
    if src.etag is not None and dst.etag is not None:
        if normalize_etag(src.etag) == normalize_etag(dst.etag):
            return True
        a, b = etag_evidence({"ETag": src.etag}), etag_evidence({"ETag": dst.etag})
        if a is not None and b is not None and (a.same_bytes(b) or a.parts == b.parts):
            return a.same_bytes(b)  # MD5s of the same layout: they tell
        return None  # other layouts, opaque ETags: the stored checksums may tell
    # Whole seconds: LastModified has no fraction, a file's time has one, so a
    # file uploaded within the second it was written is not "newer" than its copy.
    return math.floor(dst.mtime) >= math.floor(src.mtime)
