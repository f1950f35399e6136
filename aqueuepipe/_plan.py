"""What a (source, destination) pair means, decided once for every entry point.

:func:`~aqueuepipe.copy`, :func:`~aqueuepipe.copy_many`, the command and the Dask
driver all ask this module, so they cannot disagree:

- **Directory naming.** A destination that names a directory gets the source's own
  name: a string ending in ``/`` (or ``os.sep``), an existing local directory, an
  S3 prefix or a bucket alone (``s3://b``), as ``cp`` and ``aws s3 cp`` do.
- **Prefix normalisation.** A prefix to list is spelled with one trailing ``/``:
  ``s3://b/logs`` and ``s3://b/logs/`` are both the prefix ``logs/``
  (:meth:`~aqueuepipe.s3.S3Url.as_prefix`).
- **Same object.** Two S3 locations are the same object only if endpoint, bucket
  and key are all equal: mirroring to another endpoint is an ordinary copy.
- **A copy into its own prefix** (``s3://b/p/`` to ``s3://b/p/sub/``) copies each
  source object once, as the prefix was when the copy started, and ends
  (DESIGN "copy and copy_many"): the keys already under its output prefix
  ``p/sub/`` are listed first (:func:`list_as_at_start`), and the main listing
  takes only those from there, so the copy never lists its own output.  Only
  the output prefix's keys are held, never the whole listing.
- **The other overlaps are refused:** a prefix copied into one that holds it
  (``s3://b/p/sub/`` to ``s3://b/p/``) could overwrite sources not yet read, and
  a prefix onto itself is every object onto itself; every entry point refuses
  them before any byte moves.

URL typos and credentials in URLs are refused by the URL parser itself
(:func:`~aqueuepipe.s3.parse_location`), which every entry point goes through.

Nothing here does I/O beyond looking at local paths and listing a prefix.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .s3 import S3Client, S3Url, parse_location, parse_s3_url

__all__ = [
    "check_distinct",
    "check_prefixes",
    "into_directory",
    "list_as_at_start",
    "listed_prefix",
    "names_directory",
    "same_endpoint",
]


def names_directory(dst_end: object) -> bool:
    """Whether ``dst_end`` is spelled as a directory: a string ending in a separator."""
    return isinstance(dst_end, str) and dst_end.endswith(("/", os.sep))


def into_directory(src_end: object, dst_end: object) -> object:
    """``dst_end`` with the source's name appended when it names a directory.

    ``copy("s3://b/logs/a.txt", "out/")`` writes ``out/a.txt``, and
    ``copy("a.txt", "s3://b")`` writes ``s3://b/a.txt``.  Anything that is not a
    location (a stream), or does not parse, is returned as given, for the checks
    that follow to name it as the caller typed it.
    """
    if not isinstance(dst_end, str | os.PathLike) or not isinstance(src_end, str | os.PathLike):
        return dst_end
    try:
        src_loc = parse_location(src_end)
        dst_loc = parse_location(dst_end)
    except (TypeError, ValueError):
        return dst_end
    name = src_loc.key.rpartition("/")[2] if isinstance(src_loc, S3Url) else src_loc.name
    if not name or name in (".", ".."):
        return dst_end
    if isinstance(dst_loc, S3Url):
        return str(S3Url(dst_loc.bucket, dst_loc.key + name)) if dst_loc.is_prefix else dst_end
    if names_directory(dst_end) or dst_loc.is_dir():
        joined = dst_loc / name
        return str(joined) if isinstance(dst_end, str) else joined
    return dst_end


def listed_prefix(url: str) -> S3Url:
    """The prefix a recursive copy of ``url`` lists: ``s3://b/dir`` means ``dir/``.

    Raises:
        ValueError: ``url`` is not a valid ``s3://`` URL.
    """
    return parse_s3_url(url, require_key=False).as_prefix()


def same_endpoint(src: S3Client | None, dst: S3Client | None) -> bool:
    """Whether two clients reach one store (so equal bucket names are one bucket)."""
    if src is None or dst is None:
        return False
    return src is dst or src.meta.endpoint_url == dst.meta.endpoint_url


def check_distinct(src_loc: object, dst_loc: object, *, one_endpoint: bool) -> None:
    """Refuse a copy of an object onto itself (same endpoint, bucket and key).

    Raises:
        ValueError: the two ends are the same object.
    """
    if one_endpoint and isinstance(src_loc, S3Url) and src_loc == dst_loc:
        raise ValueError(f"source and destination are the same object: {str(src_loc)!r}")


def check_prefixes(src: S3Url, dst: object, *, one_endpoint: bool) -> str | None:
    """Check a recursive copy of the prefix ``src`` to ``dst``; return the key
    prefix of its own output inside the source (``dst``'s), if it writes there.

    ``dst`` is taken as a prefix (a recursive copy writes below it).  Prefixes of
    different buckets, or on different endpoints, never overlap.

    Raises:
        ValueError: ``src`` lies inside ``dst``, or is ``dst``, on one endpoint.
    """
    if not one_endpoint or not isinstance(dst, S3Url) or src.bucket != dst.bucket:
        return None
    src_prefix, dst_prefix = src.as_prefix(), dst.as_prefix()
    if src_prefix.key.startswith(dst_prefix.key):
        raise ValueError(
            f"source prefix {str(src_prefix)!r} lies in destination prefix "
            f"{str(dst_prefix)!r}: the copy could overwrite sources not yet read "
            "(copy to a prefix outside the source, then move it)"
        )
    if dst_prefix.key.startswith(src_prefix.key):
        return dst_prefix.key
    return None


async def list_as_at_start(
    client: S3Client, bucket: str, prefix: str, own_output: str | None
) -> AsyncIterator[Mapping[str, Any]]:
    """ListObjectsV2 of ``prefix``, page by page; where the copy writes into
    ``own_output`` (a prefix inside it), only the keys that were there when the
    listing started come from there (see the module)."""
    before: set[str] = set()
    if own_output is not None:
        async for entry in _entries(client, bucket, own_output):
            before.add(str(entry["Key"]))
    async for entry in _entries(client, bucket, prefix):
        key = str(entry["Key"])
        if own_output is not None and key.startswith(own_output):
            if key not in before:
                continue  # written by this copy (or by someone else since it began)
            before.discard(key)
        yield entry


async def _entries(client: S3Client, bucket: str, prefix: str) -> AsyncIterator[Mapping[str, Any]]:
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield entry
