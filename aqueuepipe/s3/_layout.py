"""A multipart object's part layout: the size of each of its parts.

What a check of the source per part (its MD5-based ETag, a COMPOSITE checksum)
and a copy in the source's layout need: uniform parts as part 1 shows them, or
every part's size from HeadObject with ``PartNumber``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import botocore.exceptions

from ._client import S3Client
from ._urls import S3Url

__all__ = ["LAYOUT_CONCURRENCY", "PartLayout", "part_layout"]


#: HeadObject requests in flight at once while a layout is read part by part.
LAYOUT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class PartLayout:
    """The sizes of a multipart object's parts, in order.

    ``confirmed``: the server reported every size (or part 1's size and the part
    count fix them: one or two parts).  An unconfirmed layout is the uniform one
    part 1 allows, every part but the last of part 1's size: what every uploader
    we know of writes, but S3 does not require it.  Evidence that matches in it
    proves the bytes all the same; a mismatch proves nothing until the layout is
    confirmed.
    """

    sizes: tuple[int, ...]
    confirmed: bool = True

    @property
    def parts(self) -> int:
        return len(self.sizes)

    @property
    def size(self) -> int:
        return sum(self.sizes)


async def part_layout(
    client: S3Client,
    url: S3Url,
    size: int,
    etag: str | None = None,
    *,
    confirm: bool = False,
    concurrency: int = LAYOUT_CONCURRENCY,
) -> PartLayout | None:
    """The part layout of the multipart object ``url`` of ``size`` bytes.

    HeadObject with ``PartNumber=1`` gives the part count and part 1's size.  When
    those fix the layout (one or two parts) it is confirmed.  When a uniform
    layout fits them and ``confirm`` is false, that layout is returned
    unconfirmed (one request for the objects every uploader writes); otherwise
    every other part is asked for (HeadObject with ``PartNumber=n``,
    ``concurrency`` at once).  GetObjectAttributes would list the sizes in fewer
    requests, but only for objects with additional checksums and only on some
    servers (moto does not return ``ObjectParts``), so it is not used.

    None when the server does not say (no ``PartsCount``: it ignores
    ``PartNumber``), refuses to, reports sizes that do not add up to ``size``, or
    an ETag other than ``etag`` (the object changed).  Not pinned with
    ``If-Match``: some servers compare it with the part's ETag.

    Raises:
        botocore.exceptions.ClientError: any other refusal (the object is gone...).
    """
    first = await _head_part(client, url, 1, etag)
    if first is None:
        return None
    first_size, count = first
    if count is None or count < 1 or first_size < 0:
        return None
    if count == 1:
        return PartLayout((first_size,)) if first_size == size else None
    last = size - (count - 1) * first_size
    if count == 2:
        return PartLayout((first_size, last)) if last >= 0 else None
    if not confirm and 0 < last <= first_size:
        return PartLayout((*(first_size,) * (count - 1), last), confirmed=False)

    sizes: list[int | None] = [first_size, *([None] * (count - 1))]
    numbers = iter(range(2, count + 1))
    unreported = False

    async def ask() -> None:
        nonlocal unreported
        for number in numbers:  # shared: each worker takes the next part
            answer = await _head_part(client, url, number, etag)
            if answer is None or answer[1] != count:
                unreported = True
                return
            sizes[number - 1] = answer[0]

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, count - 1)):
            tg.create_task(ask())
    if unreported:
        return None
    known = tuple(s for s in sizes if s is not None)
    if len(known) != count or sum(known) != size or min(known) < 0:
        return None
    return PartLayout(known)


async def _head_part(
    client: S3Client, url: S3Url, number: int, etag: str | None
) -> tuple[int, int | None] | None:
    """``(size of part number, PartsCount)``; None if the server refuses or the
    object is not the one whose ETag is ``etag``."""
    try:
        response = await client.head_object(Bucket=url.bucket, Key=url.key, PartNumber=number)
    except botocore.exceptions.ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (400, 416, 501):  # PartNumber not supported or out of range
            return None
        raise
    if etag is not None and response.get("ETag") not in (None, etag):
        return None
    count = response.get("PartsCount")
    return int(response["ContentLength"]), None if count is None else int(count)
