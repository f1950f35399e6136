"""Copying objects: S3 to S3 (one or two endpoints), local file to S3, S3 to local file.

:func:`copy` copies one object and raises on failure; :func:`copy_many` runs
many copies in one event loop under one memory limit and reports each outcome as
a :class:`TransferResult`.  How a copy streams, bounds its memory and verifies
what it wrote is described in :mod:`aqueuepipe._engine`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from pathlib import Path
from typing import Unpack

from ._cancel import outlast
from ._clients import ClientPool
from ._errors import NoSuchKeyError, TransferError
from ._expand import Expanded, GivenEnd, Pairs, expand
from ._options import (
    DEFAULT_BATCH_CONCURRENCY,
    DEFAULT_CONCURRENCY,
    ClientOptions,
    CopyManyOptions,
    CopyOptions,
    Options,
    PrefixCopyOptions,
    ProgressCallback,
    ProgressListener,
    StreamOptions,
    TransferResult,
    build_options,
    check_names,
    positive_int,
)
from ._pair import End, check_pair
from ._pipe import AsyncPipe
from ._plan import (
    check_distinct,
    check_prefixes,
    into_directory,
    list_as_at_start,
    listed_prefix,
    names_directory,
    same_endpoint,
)
from ._single import copy_one
from ._streams import (
    StreamSink,
    StreamSinkLike,
    StreamSource,
    StreamSourceLike,
    describe,
)
from .s3 import (
    S3Client,
    S3Url,
    Side,
    translate_error,
)

__all__ = [
    "DEFAULT_BATCH_CONCURRENCY",
    "DEFAULT_CONCURRENCY",
    "ClientOptions",
    "CopyManyOptions",
    "CopyOptions",
    "Options",
    "PrefixCopyOptions",
    "ProgressCallback",
    "ProgressListener",
    "StreamOptions",
    "TransferResult",
    "build_options",
    "check_names",
    "check_prefixes",
    "copy",
    "copy_many",
    "list_as_at_start",
    "listed_prefix",
]


def copy(
    src: str | os.PathLike[str] | StreamSourceLike,
    dst: str | os.PathLike[str] | StreamSinkLike,
    *,
    concurrency: int | None = None,
    **options: Unpack[CopyOptions],
) -> Coroutine[object, object, TransferResult]:
    """Copy ``src`` to ``dst`` by streaming, holding at most ``limit`` bytes.

    ``src`` and ``dst`` are ``s3://bucket/key`` URLs or local paths (at least one of
    them an S3 URL).  A ``dst`` that names a directory (ending in ``/``, an existing
    directory, a prefix or a bucket alone) gets the source's name.  Objects smaller
    than ``part_size`` go with one PutObject; larger ones with a multipart upload
    whose parts are uploaded while the source still streams, at most
    ``part_concurrency`` at a time (4 by default; ``concurrency`` is another name
    for it, as a single copy has no other concurrency).  ``part_size`` grows
    automatically so no object needs more than 10,000 parts; a stream of unknown
    length doubles its part size every 1,000 parts, up to half the memory limit, and
    fails with a clear error (nothing left behind) only past what 10,000 such parts
    hold.

    ``limit`` (bytes) or a shared ``budget`` bounds the memory the copy holds;
    the default fits ``part_concurrency + 1`` parts.  ``checksums`` (none by
    default) are computed over
    the bytes as they pass and returned hex-encoded in the result;
    ``checksum_algorithm`` is the S3 checksum sent with every request and checked
    (``"crc64nvme"`` by default, with ``Content-MD5`` where the server is not
    known to verify it; ``"md5"`` sends ``Content-MD5`` only).  A server that
    refuses the header gets the MD5 path, remembered per endpoint.  What was read
    is checked against the source's stored checksum or MD5 ETag before anything is
    committed, and read again when it differs; ``result.verified`` lists the
    evidence, and ``verify="required"`` fails a copy that has none for an S3 end.

    Clients: ``client`` for both sides, or ``src_client`` and ``dst_client`` for
    two endpoints; otherwise clients are created from the environment (honouring
    ``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL``, or ``endpoint_url``) and
    closed afterwards.  ``retries`` is the number of retries per request after
    the first attempt (and per resumed response body), or a
    :class:`~aqueuepipe.RetryPolicy` that also sets the backoff, the read timeout
    and the stall timeout; see "Reliability" in the README for which layer
    retries what.

    Server-side: an S3-to-S3 copy with one client for both objects (one
    endpoint, one set of credentials) and no ``checksums`` asked of the client is
    made by the server, CopyObject or UploadPartCopy in the source's part layout
    (so the copy has the source's ETag): no body byte passes through the client
    and the budget is not touched.  Its evidence is the destination's checksum
    equal to the source's, or the same ETag.  ``server_side=False`` streams
    instead, as does a server that refuses (NotImplemented, AccessDenied).

    Metadata: an S3-to-S3 copy keeps the source's Content-Type, Content-Encoding,
    Content-Disposition, Content-Language, Cache-Control, Expires and user
    metadata, as CopyObject does; an upload guesses Content-Type from the file
    name.  ``metadata=`` and ``content_type=`` replace them; ``storage_class=``,
    ``sse=`` (``"AES256"``, ``"aws:kms"`` with ``sse_kms_key_id=``) and
    ``tags=True`` (copy the source's tags; it needs s3:GetObjectTagging) add to
    them.  A download gets the object's LastModified as its mtime.

    The options are declared once, as :class:`~aqueuepipe.CopyOptions` (for
    ``**options: Unpack[CopyOptions]``), and checked at the call, before any I/O:
    an unknown keyword or a value of the wrong type is a TypeError, a wrong value
    a ValueError, each naming the keyword and the value; so is an option that
    cannot apply to these ends (``metadata`` for a download, ``src_client`` for a
    local source, ``tags`` without two S3 ends).

    Raises:
        TypeError: an unknown keyword, or an option of the wrong type.
        ValueError: a bad URL or option, before any network call.
        NoSuchBucketError, NoSuchKeyError: the bucket or key is missing.
        ChecksumMismatchError: the destination disagrees with the bytes sent.
        TransferError: any other failure; ``__cause__`` is the underlying error.

    On failure or cancellation a multipart upload is aborted (no parts are left
    on the server) and a local destination is not created.
    """
    try:
        check_names("copy", options, CopyOptions)
        if concurrency is not None:
            positive_int("concurrency", concurrency)  # named as the caller named it
            if "part_concurrency" in options:
                raise ValueError("pass part_concurrency or its alias concurrency, not both")
            options["part_concurrency"] = concurrency
        checked = build_options(**options, concurrency=1)
        check_pair(src, into_directory(src, dst), checked)  # before any I/O
        pool = ClientPool(checked, shape="one")
    except BaseException as exc:
        _abort_stream(dst, exc)  # a task reading the pipe learns why nothing comes
        raise
    return _copy(src, dst, pool, checked)


async def _copy(src: GivenEnd, dst: GivenEnd, pool: ClientPool, options: Options) -> TransferResult:
    """The copy :func:`copy` checked: run it in ``pool``; raise its error."""
    try:
        async with pool:
            result = await _copy_expanded(Expanded(src, dst, None, None), pool, options)
    except BaseException as exc:  # the pool failed to open or close, or a cancellation
        _abort_stream(dst, exc)
        raise
    if result.error is not None:
        raise result.error
    return result


def _abort_stream(dst: object, error: BaseException) -> None:
    """Abort a pipe destination with the copy's ``error``, unless it already ended.

    The copy's reader then sees the same exception as the copy's caller (as the
    ``__cause__`` of its :class:`~aqueuepipe.PipeAbortedError`), whatever failed:
    a bad option, a missing key, a stall, a cancellation.
    """
    if isinstance(dst, AsyncPipe) and not dst.closed:
        dst.abort(error)


def copy_many(
    pairs: Pairs, **options: Unpack[CopyManyOptions]
) -> AsyncGenerator[TransferResult, None]:
    """Copy many ``(src, dst)`` pairs, ``concurrency`` at a time, under one memory limit.

    Returns an async iterator of :class:`TransferResult` in completion order::

        async for result in copy_many(pairs, concurrency=16, limit=30_000_000):
            print(result.dst, "ok" if result.ok else result.error)

    All copies share one :class:`~aqueuepipe.ByteBudget` (``budget``, or one of
    ``limit`` bytes), so the bytes they hold together stay within it however many
    run.  ``pairs`` may be a list, a generator or an async iterable; it is read
    lazily, only as fast as copies start, so it may be endless or huge.

    Every pair yields exactly one result, and a failed pair yields a result with
    ``error`` set (a bad URL, a missing bucket...) while the others go on.  With
    ``recursive=True`` a pair whose source is a prefix (``s3://bucket/dir/``) or a
    local directory is expanded into one pair per object below it (listed page by
    page while the copies run), keeping the relative paths under the destination;
    it yields one result per object, or one failed result if the listing fails
    or the two prefixes overlap on one endpoint (``s3://b/p/`` to
    ``s3://b/p/sub/``, or back: the copy would list its own output).
    A download never writes outside its destination directory: a key such as
    ``dir/../../x`` yields a failed result instead.

    ``skip_existing=True`` skips a pair whose destination already holds the
    source's object: the same size and the same content evidence (an equal
    MD5-based ETag or stored S3 checksum between two objects; a local file's bytes
    checked against the object's checksum or MD5 ETag).  Its result has
    ``skipped=True``.  What cannot be compared is copied again.

    Copies within one endpoint are made by the server, as for :func:`copy`
    (``server_side=False`` streams them).

    ``part_concurrency`` is the number of parts in flight per copy (what
    ``concurrency`` means for :func:`copy`); the other options are as for
    :func:`copy` (:class:`~aqueuepipe.CopyManyOptions` declares them all), and are
    checked before any network call.  An option that cannot apply to a pair
    (``metadata`` for a download, ``skip_existing`` with a stream end) fails that
    pair with a ValueError.

    Stopping the iteration early (``break``, an exception, cancellation) cancels
    the copies in flight, aborts their multipart uploads and returns every byte
    to the budget before the iterator is closed.

    Raises:
        ValueError: a bad option (at the call, before anything runs).
        TypeError: ``pairs`` is a single location (a str, bytes or path) instead
            of pairs, or an option has the wrong type.
    """
    if isinstance(pairs, str | bytes | os.PathLike):
        raise TypeError(
            f"copy_many takes (src, dst) pairs, not the single location {pairs!r}: "
            f"use copy(src, dst), or copy_many([(src, dst)])"
        )
    check_names("copy_many", options, CopyManyOptions)
    checked = build_options(**options)
    return _batch_in_pool(pairs, checked, ClientPool(checked))


async def _batch_in_pool(
    pairs: Pairs, options: Options, pool: ClientPool
) -> AsyncGenerator[TransferResult, None]:
    async with pool:
        batch = run_batch(expand(pairs, options.recursive, pool.get), options, pool)
        async with contextlib.aclosing(batch) as results:
            async for result in results:
                yield result


async def run_batch(
    items: AsyncIterator[Expanded], options: Options, pool: ClientPool
) -> AsyncGenerator[TransferResult, None]:
    """Copy ``items`` (pairs as :func:`~aqueuepipe._expand.expand` makes them)
    ``options.concurrency`` at a time in ``pool``, which the caller has opened;
    a result per item, in completion order (see :func:`copy_many`)."""
    concurrency = options.concurrency
    # Bounded: a copy holds its slot until its result is taken, so results never
    # pile up and at most `concurrency` copies run.
    results: asyncio.Queue[TransferResult | None] = asyncio.Queue(maxsize=concurrency)
    slots = asyncio.Semaphore(concurrency)
    local_targets: set[Path] = set()

    async def run_one(item: Expanded) -> None:
        try:
            result = await _copy_expanded(item, pool, options, local_targets)
            await results.put(result)
        finally:
            slots.release()

    async def feed() -> None:
        failure: Exception | None = None
        try:
            async with asyncio.TaskGroup() as copies:
                try:
                    async for item in items:
                        await slots.acquire()
                        if item.error is not None:
                            slots.release()
                            src, dst = describe(item.src), describe(item.dst)
                            await results.put(_failed(src, dst, item.error, options))
                            continue
                        copies.create_task(run_one(item))
                except Exception as exc:
                    # The pairs iterator failed: the copies it started still
                    # finish and report; then the batch raises its error.
                    failure = exc
            if failure is not None:
                raise failure
        finally:
            # However the feeder ends (done, or failed: the pairs iterator
            # raised, a bug), the reader must not wait for results forever.
            # A full queue has a reader coming for it, which then finds the
            # feeder done.
            with contextlib.suppress(asyncio.QueueFull):
                results.put_nowait(None)

    feeder = asyncio.create_task(feed())
    try:
        while True:
            if results.empty() and feeder.done():
                break
            result = await results.get()
            if result is None:
                break
            yield result
        await feeder  # raises what ended the feeder, if it failed
    finally:
        if not feeder.done():
            feeder.cancel()
            # The copies clean up (abort uploads, remove temporary files, give
            # bytes back) as they unwind: the batch ends only after they have.
            await outlast(feeder)


def _failed(src: str, dst: str, error: BaseException, options: Options) -> TransferResult:
    result = TransferResult(src=src, dst=dst, size=0, etag=None, parts=0, error=error)
    options.progress.transfer_finished(result)
    return result


async def _copy_expanded(
    item: Expanded,
    pool: ClientPool,
    options: Options,
    local_targets: set[Path] | None = None,
) -> TransferResult:
    """One pair: checked, its directory made, then copied.

    A pair made from a listing (``item.listed``) is taken literally and never
    reads or writes a special file.  ``local_targets`` are the local files the
    pairs of a batch write so far: two pairs aimed at one file are refused (the
    second gets an error result).  A pipe destination is aborted with the pair's
    error, whatever step failed.
    """
    try:
        result = await _check_and_copy(item, pool, options, local_targets)
    except BaseException as exc:  # a cancellation: the pipe's reader must not wait on
        _abort_stream(item.dst, exc)
        raise
    if result.error is not None:
        _abort_stream(item.dst, result.error)
    return result


async def _check_and_copy(
    item: Expanded,
    pool: ClientPool,
    options: Options,
    local_targets: set[Path] | None,
) -> TransferResult:
    src_end, dst_end, root = item.src, item.dst, item.root
    directory = names_directory(dst_end)
    if not item.listed:  # a pair as given; a listing names its files itself
        dst_end = into_directory(src_end, dst_end)
    src, dst = describe(src_end), describe(dst_end)
    try:
        src_loc, dst_loc = check_pair(src_end, dst_end, options, listed=item.listed)
        if isinstance(dst_loc, Path):
            if local_targets is not None:
                target = await asyncio.to_thread(dst_loc.resolve)
                if target in local_targets:
                    raise ValueError(f"another pair of this batch already writes {dst!r}")
                local_targets.add(target)
            if root is not None or directory:
                await _make_parent(dst_loc)
            if item.listed and isinstance(src_loc, S3Url) and src_loc.is_prefix:
                return await _make_directory(src, dst, dst_loc, options)
    except Exception as exc:  # past the checks, only the destination's directory is made
        return _failed(src, dst, _as_transfer_error(exc, src, dst, "destination"), options)
    try:
        return await _copy_pair(src, dst, src_loc, dst_loc, pool, options, item.dst_absent)
    finally:
        # A special file this library opened is closed however the copy ended.
        for end in (src_loc, dst_loc):
            if isinstance(end, StreamSource | StreamSink):
                end.close()


async def _make_directory(src: str, dst: str, path: Path, options: Options) -> TransferResult:
    """A folder marker (an empty key ending in ``/``, listed) downloaded: its directory."""
    try:
        await asyncio.to_thread(path.mkdir, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"folder marker {src!r}: a file is in the way at {dst!r}") from None
    result = TransferResult(src=src, dst=dst, size=0, etag=None, parts=0)
    options.progress.transfer_finished(result)
    return result


async def _make_parent(path: Path) -> None:
    """Create ``path``'s directory; say clearly when a file is in the way."""
    try:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(
            f"cannot create the directory of {str(path)!r}: a file is in the way (keys "
            "such as 'a' and 'a/b' cannot both be local files)"
        ) from None


async def _copy_pair(
    src: str,
    dst: str,
    src_loc: End,
    dst_loc: End,
    pool: ClientPool,
    options: Options,
    dst_absent: bool = False,
) -> TransferResult:
    """Get the pair's clients from ``pool``, then copy; errors become the result's."""
    both = isinstance(src_loc, S3Url) and isinstance(dst_loc, S3Url)
    clients: dict[Side, S3Client | None] = {}
    ends: tuple[tuple[Side, End], ...] = (("source", src_loc), ("destination", dst_loc))
    for side, loc in ends:
        try:
            clients[side] = await pool.get(side, both=both) if isinstance(loc, S3Url) else None
        except Exception as exc:  # the client of that end could not be made
            return _failed(src, dst, _as_transfer_error(exc, src, dst, side), options)
    src_client, dst_client = clients["source"], clients["destination"]
    try:
        check_distinct(src_loc, dst_loc, one_endpoint=same_endpoint(src_client, dst_client))
    except ValueError as exc:
        return _failed(src, dst, exc, options)
    result = await copy_one(
        src, dst, src_loc, dst_loc, src_client, dst_client, pool, options, dst_absent=dst_absent
    )
    if options.recursive and isinstance(result.error, NoSuchKeyError) and src_client is not None:
        assert isinstance(src_loc, S3Url)
        result = await _point_at_prefix(result, src_loc, src_client)
    return result


async def _point_at_prefix(result: TransferResult, src: S3Url, client: S3Client) -> TransferResult:
    """A missing object named without its ``/`` in a recursive copy: say so when
    ``key/`` is a prefix (what the caller most likely meant)."""
    prefix = src.as_prefix()
    with contextlib.suppress(Exception):  # the hint is a courtesy; the error stands
        listed = await client.list_objects_v2(Bucket=src.bucket, Prefix=prefix.key, MaxKeys=1)
        if listed.get("KeyCount", 0):
            error = result.error
            assert isinstance(error, NoSuchKeyError)
            hint = f"{str(prefix)!r} is a prefix: end the URL with '/' to copy what is under it"
            error.reason = f"{error.reason}; {hint}"
    return result


def _as_transfer_error(exc: Exception, src: str, dst: str, side: Side | None) -> BaseException:
    """``exc`` as a pair's error, on the ``side`` whose call raised it."""
    if isinstance(exc, ValueError | TransferError):
        return exc
    return translate_error(exc, src=src, dst=dst, bucket="", key=None, side=side)
