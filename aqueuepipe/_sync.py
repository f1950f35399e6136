"""``sync``: make a destination prefix or directory hold its source's objects,
decided from the two listings (DESIGN "Sync: decided from listings").

Both sides are listed in S3's key order and merged (:mod:`aqueuepipe._listing`);
what the listings decide needs no request per object, and a key they cannot
decide (``compare="checksum"``, or ETags that cannot be compared) gets one
HeadObject through the ``skip_existing`` rule (:mod:`aqueuepipe._skip`).  The
copies run through :func:`~aqueuepipe.copy_many`, fed lazily by the merge, so a
sync of millions of keys holds one page of each listing and the copies in
flight.  Skipped keys are results too (``skipped=True``), as soon as they are
decided.

``delete=True`` removes what the destination holds that the source does not,
only once every copy of the run succeeded and both listings were read to their
end: the two listings are merged again then (so no list of keys is held), and
objects go in DeleteObjects batches of up to 1,000.  A deletion is a result
with ``deleted=True``.  ``dry_run=True`` writes and deletes nothing: each copy
or deletion it would make is a result with ``planned=True``.

Filters follow aws cli's: patterns (``fnmatch``, ``*`` crossing ``/``) against
the key relative to the source, taken in order, the last that matches deciding;
a key no filter matches is included.  :func:`sync` takes its ``exclude``
patterns before its ``include`` ones (``exclude=["*"], include=["*.txt"]``
syncs the text files only); :func:`sync_in_order` takes them in the order of a
command line (``--include``/``--exclude``).  Keys left out are neither copied
nor deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from pathlib import Path
from typing import Literal, Unpack

from ._clients import ClientPool
from ._errors import TransferError
from ._expand import Expanded, not_copied
from ._listing import Compare, Listed, local_listing, merge, s3_listing, same_from_listings
from ._options import CopyManyOptions, Options, TransferResult, build_options, check_names
from ._plan import check_prefixes, listed_prefix
from ._skip import already_there
from .local import safe_join
from .s3 import S3Client, S3Url, Side, is_s3_url, translate_error
from .transfer import run_batch

__all__ = ["Filter", "sync", "sync_in_order"]

#: One filter: whether a key it matches is kept (``"include"``) or left out, and its pattern.
Filter = tuple[Literal["include", "exclude"], str]

#: The most keys one DeleteObjects request takes (S3's limit).
DELETE_BATCH = 1000

_COMPARE = ("listing", "size_only", "checksum")


def _side(url: str, name: str) -> S3Url | Path:
    if is_s3_url(url):
        return listed_prefix(url)
    path = Path(url)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {url!r} is a file: sync copies a prefix or a directory")
    return path


def _patterns(name: str, given: Iterable[str]) -> tuple[str, ...]:
    if isinstance(given, str):
        raise TypeError(f"{name} must be a list of patterns, not the string {given!r}")
    patterns = tuple(given)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{name} patterns must be strings, got {pattern!r}")
    return patterns


def _filters(given: Iterable[Filter]) -> tuple[Filter, ...]:
    filters = tuple(given)
    for entry in filters:
        if (
            not isinstance(entry, tuple)
            or len(entry) != 2
            or entry[0] not in ("include", "exclude")
            or not isinstance(entry[1], str)
        ):
            raise TypeError(
                f"filters must be ('include' or 'exclude', pattern) pairs, got {entry!r}"
            )
    return filters


class _Filter:
    """aws cli's rule: the last filter that matches decides; no match includes."""

    def __init__(self, filters: tuple[Filter, ...]) -> None:
        self._filters = filters[::-1]

    def __call__(self, key: str) -> bool:
        for kind, pattern in self._filters:
            if fnmatch.fnmatchcase(key, pattern):
                return kind == "include"
        return True


def _url(base: S3Url | Path, key: str) -> str:
    if isinstance(base, S3Url):
        return str(S3Url(base.bucket, base.key + key))
    return str(base / key)


async def sync(
    src: str,
    dst: str,
    *,
    delete: bool = False,
    dry_run: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    compare: Compare = "listing",
    **options: Unpack[CopyManyOptions],
) -> AsyncGenerator[TransferResult, None]:
    """Copy what ``dst`` lacks or holds differently of ``src`` (two prefixes, or a
    prefix and a local directory); with ``delete``, remove what ``src`` lacks.

    An async iterator of results, one per key copied, skipped, planned
    (``dry_run``) or deleted (see the module).  ``compare`` is ``"listing"``
    (size and ETag between objects, size and time between a file and an object),
    ``"size_only"`` or ``"checksum"`` (content, one HeadObject per candidate of
    the same size).  The copy options are :func:`~aqueuepipe.copy_many`'s.

    Raises:
        ValueError, TypeError: a bad argument (a source that is an object or a
            file, a destination that is a file, a bad option), before any I/O.
        TransferError: a listing failed (nothing is deleted then).
    """
    filters: list[Filter] = [("exclude", p) for p in _patterns("exclude", exclude)]
    filters += [("include", p) for p in _patterns("include", include)]
    results = sync_in_order(
        src, dst, filters, delete=delete, dry_run=dry_run, compare=compare, **options
    )
    async with contextlib.aclosing(results):
        async for result in results:
            yield result


async def sync_in_order(
    src: str,
    dst: str,
    filters: Iterable[Filter],
    *,
    delete: bool = False,
    dry_run: bool = False,
    compare: Compare = "listing",
    **options: Unpack[CopyManyOptions],
) -> AsyncGenerator[TransferResult, None]:
    """:func:`sync` with its filters in the order given, as on aws cli's command
    line: ``[("include", "*.txt"), ("exclude", "*")]`` leaves every key out."""
    check_names("sync", options, CopyManyOptions)
    for name in ("recursive", "skip_existing"):
        if name in options:
            raise ValueError(f"sync decides what to copy itself: {name} does not apply")
    if compare not in _COMPARE:
        raise ValueError(
            f"compare must be one of {', '.join(map(repr, _COMPARE))}, got {compare!r}"
        )
    for name, flag in (("delete", delete), ("dry_run", dry_run)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    keep = _Filter(_filters(filters))
    src_base, dst_base = _side(src, "source"), _side(dst, "destination")
    if not isinstance(src_base, S3Url) and not isinstance(dst_base, S3Url):
        raise ValueError(f"one of {src!r} and {dst!r} must be an s3:// prefix")
    checked = build_options(**options)
    if isinstance(src_base, S3Url) and (
        check_prefixes(src_base, dst_base, one_endpoint=True) is not None
    ):
        assert isinstance(dst_base, S3Url)
        raise ValueError(
            f"destination prefix {str(dst_base)!r} lies in source prefix "
            f"{str(src_base)!r}: a sync would find its own copies"
        )
    async with ClientPool(checked) as pool:
        src_client = await pool.get("source") if isinstance(src_base, S3Url) else None
        dst_client = await pool.get("destination") if isinstance(dst_base, S3Url) else None
        run = _Run(src_base, dst_base, src_client, dst_client, checked, keep, compare)
        failed = False
        async for result in run.copies(pool, dry_run=dry_run):
            failed = failed or not result.ok
            yield result
        if delete and not failed:
            async for result in run.deletions(dry_run=dry_run):
                yield result


class _Run:
    def __init__(
        self,
        src: S3Url | Path,
        dst: S3Url | Path,
        src_client: S3Client | None,
        dst_client: S3Client | None,
        options: Options,
        keep: _Filter,
        compare: Compare,
    ) -> None:
        self.src, self.dst = src, dst
        self.src_client, self.dst_client = src_client, dst_client
        self.options = options
        self.keep = keep
        self.compare = compare

    def _listing(
        self, base: S3Url | Path, client: S3Client | None, side: Side
    ) -> AsyncIterator[Listed]:
        if isinstance(base, S3Url):
            assert client is not None
            return self._s3_listing(client, base, side)
        return _local_or_none(base)

    async def _s3_listing(
        self, client: S3Client, base: S3Url, side: Side
    ) -> AsyncGenerator[Listed, None]:
        """``base``'s listing; its failure an error about that side and bucket."""
        listing = s3_listing(client, base)
        try:
            async for entry in listing:
                yield entry
        except Exception as exc:
            raise translate_error(
                exc, src=str(self.src), dst=str(self.dst), bucket=base.bucket, key=None, side=side
            ) from exc
        finally:
            await listing.aclose()

    def _merged(self) -> AsyncIterator[tuple[str, Listed | None, Listed | None]]:
        return merge(
            self._listing(self.src, self.src_client, "source"),
            self._listing(self.dst, self.dst_client, "destination"),
        )

    async def _same(self, key: str, src: Listed, dst: Listed) -> bool:
        decided = same_from_listings(src, dst, self.compare)
        if decided is not None:
            return decided
        found = await already_there(
            _location(self.src, key), _location(self.dst, key), self.src_client, self.dst_client
        )
        return found is not None

    async def _decide(
        self, key: str, src: Listed, dst: Listed | None, dry_run: bool
    ) -> Expanded | TransferResult:
        """The copy to make of ``key``, or its result when none is made."""
        source = _url(self.src, key)
        marker = src.is_folder_marker and isinstance(self.dst, Path)
        if isinstance(self.dst, Path):
            try:  # never outside the directory (``../x``), nor two keys on one file
                target = str(safe_join(self.dst, key[:-1] if marker else key))
            except ValueError as exc:
                return _failed(source, str(self.dst), exc)
        else:
            target = _url(self.dst, key)
        if src.special not in (None, "unreadable"):  # a FIFO, a device...
            return _failed(source, target, not_copied(source, target, src.special))
        if marker:  # downloaded as a directory
            same = await asyncio.to_thread(Path(target).is_dir)
        else:
            same = dst is not None and await self._same(key, src, dst)
        if same or dry_run:
            return _result(source, target, src, skipped=same, planned=not same)
        root = self.src if isinstance(self.src, Path) else self.dst
        return Expanded(
            source,
            target,
            root if isinstance(root, Path) else None,
            None,
            listed=True,
            dst_absent=dst is None and isinstance(self.dst, S3Url),
        )

    async def copies(
        self, pool: ClientPool, *, dry_run: bool
    ) -> AsyncGenerator[TransferResult, None]:
        """The copies the merge calls for, and a result per key skipped."""
        out: asyncio.Queue[TransferResult | None] = asyncio.Queue(maxsize=256)

        async def pairs() -> AsyncIterator[Expanded]:
            try:
                async for key, src, dst in self._merged():
                    if src is None or not self.keep(key):
                        continue
                    decided = await self._decide(key, src, dst, dry_run)
                    if isinstance(decided, Expanded):
                        yield decided
                    else:
                        await out.put(decided)
            except Exception as exc:
                raise _listing_error(exc, str(self.src), str(self.dst)) from exc

        async def run() -> None:
            try:
                async with contextlib.aclosing(run_batch(pairs(), self.options, pool)) as batch:
                    async for result in batch:
                        await out.put(result)
            finally:
                await out.put(None)

        task = asyncio.create_task(run())
        try:
            while (result := await out.get()) is not None:
                yield result
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def deletions(self, *, dry_run: bool) -> AsyncGenerator[TransferResult, None]:
        """What the destination holds and the source lacks, deleted (a second merge)."""
        batch: list[tuple[str, Listed]] = []
        try:
            async for key, src, dst in self._merged():
                if src is not None or dst is None or not self.keep(key):
                    continue
                batch.append((key, dst))
                if len(batch) == DELETE_BATCH:
                    for result in await self._delete(batch, dry_run):
                        yield result
                    batch = []
        except Exception as exc:
            raise _listing_error(exc, str(self.src), str(self.dst)) from exc
        if batch:
            for result in await self._delete(batch, dry_run):
                yield result

    async def _delete(self, batch: list[tuple[str, Listed]], dry_run: bool) -> list[TransferResult]:
        results: dict[str, BaseException | None] = {key: None for key, _ in batch}
        if not dry_run:
            if isinstance(self.dst, S3Url):
                assert self.dst_client is not None
                base = self.dst
                response = await self.dst_client.delete_objects(
                    Bucket=base.bucket,
                    Delete={
                        "Objects": [{"Key": base.key + key} for key, _ in batch],
                        "Quiet": True,
                    },
                )
                for error in response.get("Errors", []):
                    key = str(error.get("Key", ""))[len(base.key) :]
                    results[key] = OSError(f"{error.get('Code')}: {error.get('Message')}")
            else:
                for key, _ in batch:
                    try:
                        await asyncio.to_thread(os.remove, self.dst / key)
                    except OSError as exc:
                        results[key] = exc
        return [
            TransferResult(
                src="",
                dst=_url(self.dst, key),
                size=listed.size,
                etag=listed.etag,
                parts=0,
                deleted=error is None and not dry_run,
                planned=dry_run,
                error=error,
            )
            for (key, listed), error in zip(batch, results.values(), strict=True)
        ]


def _failed(src: str, dst: str, error: BaseException) -> TransferResult:
    return TransferResult(src=src, dst=dst, size=0, etag=None, parts=0, error=error)


def _location(base: S3Url | Path, key: str) -> S3Url | Path:
    if isinstance(base, S3Url):
        return S3Url(base.bucket, base.key + key)
    return base / key


def _result(
    src: str, dst: str, listed: Listed, *, skipped: bool = False, planned: bool = False
) -> TransferResult:
    return TransferResult(
        src=src,
        dst=dst,
        size=listed.size,
        etag=listed.etag,
        parts=0,
        skipped=skipped,
        planned=planned,
    )


def _listing_error(exc: Exception, src: str, dst: str) -> Exception:
    if isinstance(exc, ValueError | TransferError):
        return exc
    return translate_error(exc, src=src, dst=dst, bucket="", key=None, side=None)


async def _local_or_none(root: Path) -> AsyncIterator[Listed]:
    """A directory's files in key order; nothing if it does not exist yet."""
    if not await asyncio.to_thread(root.is_dir):
        return
    async for entry in local_listing(root):
        yield entry
