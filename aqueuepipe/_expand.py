"""Expanding prefixes and directories into one (src, dst) pair per object."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from ._errors import TransferError
from ._plan import check_prefixes, list_as_at_start, same_endpoint
from ._streams import is_stream_sink, is_stream_source
from .local import safe_join, special_kind
from .s3._client import S3Client
from .s3._translate import Side, translate_error
from .s3._urls import S3Url, parse_location

__all__ = ["Expanded", "Pairs", "expand", "not_copied"]

#: An end of a copy as the caller gives it: a URL, a path, or a stream (see
#: :mod:`aqueuepipe._streams`); :data:`aqueuepipe._pair.End` is what it becomes.
GivenEnd = object
Pairs = Iterable[tuple[GivenEnd, GivenEnd]] | AsyncIterable[tuple[GivenEnd, GivenEnd]]


class Expanded(NamedTuple):
    """One copy to make, or the error that stops it."""

    src: GivenEnd
    dst: GivenEnd
    #: The local directory the pair was expanded from (an upload) or into (a
    #: download); None for a pair as given, or between two prefixes.
    root: Path | None
    error: BaseException | None
    #: Made from a listing (an expansion, a sync): both ends name exactly one
    #: object or file, so a key ending in ``/`` is an object (a folder marker,
    #: or data under such a key), never a prefix to copy "into".  Only a pair as
    #: given reads or writes a special file as a stream.
    listed: bool = False
    #: A listing of the destination, just made, has no object at ``dst``.
    dst_absent: bool = False


GetClient = Callable[[Side], Awaitable[S3Client]]


async def _aiter_pairs(pairs: Pairs) -> AsyncIterator[tuple[GivenEnd, GivenEnd]]:
    if isinstance(pairs, AsyncIterable):
        async for pair in pairs:
            yield pair
    else:
        for pair in pairs:
            yield pair


async def expand(pairs: Pairs, recursive: bool, get_client: GetClient) -> AsyncIterator[Expanded]:
    """Yield (src, dst, root or None, error or None) per object to copy."""
    async for pair in _aiter_pairs(pairs):
        try:
            src_end, dst_end = pair
        except (TypeError, ValueError):
            yield Expanded(str(pair), "", None, ValueError(f"not a (src, dst) pair: {pair!r}"))
            continue
        if not recursive or is_stream_source(src_end) or is_stream_sink(dst_end):
            yield Expanded(src_end, dst_end, None, None)
            continue
        src, dst = str(src_end), str(dst_end)
        try:
            src_loc = parse_location(src)
            dst_loc = parse_location(dst)
        except ValueError as exc:
            yield Expanded(src, dst, None, exc)
            continue
        if isinstance(src_loc, S3Url) and src_loc.is_prefix:
            async for item in _expand_prefix(src, dst, src_loc, dst_loc, get_client):
                yield item
        elif isinstance(src_loc, Path) and await asyncio.to_thread(src_loc.is_dir):
            async for item in _expand_directory(src, dst, src_loc, dst_loc):
                yield item
        else:
            yield Expanded(src, dst, None, None)


def _join_dst(dst_loc: S3Url | Path, relative: str) -> tuple[str, Path | None]:
    """The destination of ``relative`` under ``dst_loc``; raises ValueError if unsafe."""
    if isinstance(dst_loc, S3Url):
        return str(S3Url(dst_loc.bucket, dst_loc.as_prefix().key + relative)), None
    return str(safe_join(dst_loc, relative)), dst_loc


async def _expand_prefix(
    src: str, dst: str, src_loc: S3Url, dst_loc: S3Url | Path, get_client: GetClient
) -> AsyncIterator[Expanded]:
    """One pair per object under the prefix, listed page by page while the copies run.

    A copy into its own prefix lists the prefix as it was when it started; the
    other overlaps are refused (:mod:`aqueuepipe._plan`): one failed result for
    the pair, nothing listed.
    """
    prefix = src_loc.key
    side: Side = "source"
    own_output: str | None = None
    try:
        client = await get_client(side)
        if isinstance(dst_loc, S3Url) and dst_loc.bucket == src_loc.bucket:
            side = "destination"
            target_client = await get_client(side)
            side = "source"
            try:
                own_output = check_prefixes(
                    src_loc, dst_loc, one_endpoint=same_endpoint(client, target_client)
                )
            except ValueError as exc:
                yield Expanded(src, dst, None, exc)
                return
        async for entry in list_as_at_start(client, src_loc.bucket, prefix, own_output):
            key = str(entry["Key"])
            relative = key[len(prefix) :]
            if not relative:
                continue  # the prefix itself
            source = str(S3Url(src_loc.bucket, key))
            if isinstance(dst_loc, Path) and key.endswith("/"):
                if int(str(entry.get("Size", 0))):
                    error = ValueError(
                        f"key {key!r} ends with '/' but holds {entry['Size']} bytes: "
                        "it cannot be a local file name"
                    )
                    yield Expanded(source, dst, None, error, listed=True)
                    continue
                relative = relative[:-1]  # a folder marker: downloaded as a directory
            try:
                target, root = _join_dst(dst_loc, relative)
            except ValueError as exc:
                yield Expanded(source, f"{dst.rstrip('/')}/{relative}", None, exc, listed=True)
                continue
            yield Expanded(source, target, root, None, listed=True)
    except Exception as exc:
        failure = translate_error(exc, src=src, dst=dst, bucket=src_loc.bucket, key=None, side=side)
        yield Expanded(src, dst, None, failure)


async def _expand_directory(
    src: str, dst: str, root: Path, dst_loc: S3Url | Path
) -> AsyncIterator[Expanded]:
    """One pair per file under ``root``.  A special file found there (a FIFO, a
    device, a socket) is never opened: it gets a failed result of its own saying
    it was not copied, as ``aws s3 cp --recursive`` and rclone skip them."""
    walker = _walk_files(root)
    while batch := await asyncio.to_thread(_take, walker, 1000):
        for path, kind in batch:
            relative = path.relative_to(root).as_posix()
            try:
                target, _ = _join_dst(dst_loc, relative)
            except ValueError as exc:
                yield Expanded(str(path), dst, None, exc, listed=True)
                continue
            error = None if kind is None else not_copied(str(path), target, kind)
            yield Expanded(str(path), target, root, error, listed=True)


def not_copied(src: str, dst: str, kind: str, side: Side = "source") -> TransferError:
    """The error of a special file met in a directory expansion."""
    return TransferError(src, dst, f"special file ({kind}), not copied", side=side)


def _walk_files(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Every file under ``root`` with what it is when it is special (see
    :func:`~aqueuepipe.local.special_kind`), and every symbolic link to a directory
    (not followed: the copy of such a path fails with a result that says so)."""
    for directory, dirs, files in os.walk(root):
        linked = [name for name in dirs if os.path.islink(os.path.join(directory, name))]
        for name in sorted([*files, *linked]):
            path = Path(directory, name)
            try:
                mode = os.stat(path).st_mode  # a link to a FIFO is special too
            except OSError:
                yield path, None  # a broken link: its copy says what is wrong
                continue
            yield path, special_kind(mode)


def _take(iterator: Iterator[tuple[Path, str | None]], n: int) -> list[tuple[Path, str | None]]:
    return list(itertools.islice(iterator, n))
