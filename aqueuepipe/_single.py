"""One copy between two checked ends: skipped if already there, made by the server
when it can be, else streamed; its outcome as a :class:`TransferResult`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ._clients import ClientPool
from ._engine import Copy
from ._errors import TransferError
from ._job import Job
from ._options import Options, TransferResult
from ._pair import End
from ._server_copy import copy_on_server
from ._skip import already_there
from ._streams import StreamSink, StreamSource
from .s3 import S3Client, S3Url, translate_error

__all__ = ["copy_one"]


async def copy_one(
    src: str,
    dst: str,
    src_loc: End,
    dst_loc: End,
    src_client: S3Client | None,
    dst_client: S3Client | None,
    pool: ClientPool,
    options: Options,
    *,
    dst_absent: bool = False,
) -> TransferResult:
    """Run one copy; return its result with ``error`` set instead of raising.
    ``dst_absent``: a listing just made shows no destination object.

    Cancellation propagates (after cleanup); every other failure is translated
    to a :class:`TransferError` and put in the result.
    """
    started = time.perf_counter()
    if (
        options.skip_existing
        and isinstance(src_loc, S3Url | Path)
        and isinstance(dst_loc, S3Url | Path)
    ):
        found = await _existing(src_loc, dst_loc, src_client, dst_client)
        if found is not None:
            size, etag = found
            result = TransferResult(
                src=src,
                dst=dst,
                size=size,
                etag=etag,
                parts=0,
                skipped=True,
                seconds=time.perf_counter() - started,
            )
            options.progress.transfer_finished(result)
            return result
    job = Job(src, dst, src_loc, dst_loc, options)
    job.dst_absent = dst_absent
    copier = Copy(job)
    try:
        async with asyncio.timeout(options.policy.stall_timeout) as deadline:
            job.watch(deadline)
            if isinstance(src_loc, S3Url):
                assert src_client is not None
                if isinstance(dst_loc, S3Url):
                    assert dst_client is not None
                    # One endpoint, one set of credentials, no hash asked of the client:
                    # the server copies, unless it will not.
                    if not (
                        options.server_side
                        and not options.checksums
                        and pool.one_account(src_client, dst_client)
                        and await copy_on_server(
                            job, src_client, src_loc, dst_loc, refused=pool.server_side_refused
                        )
                    ):
                        slot = pool.body_slot(src_client, dst_client)
                        await copier.s3_to_s3(src_client, src_loc, dst_client, dst_loc, slot)
                elif isinstance(dst_loc, StreamSink):
                    await copier.s3_to_stream(src_client, src_loc, dst_loc)
                else:
                    assert isinstance(dst_loc, Path)
                    await copier.s3_to_file(src_client, src_loc, dst_loc)
            else:
                assert isinstance(dst_loc, S3Url) and dst_client is not None
                if isinstance(src_loc, StreamSource):
                    await copier.stream_to_s3(src_loc, dst_client, dst_loc)
                else:
                    assert isinstance(src_loc, Path)
                    await copier.file_to_s3(src_loc, dst_client, dst_loc)
    except asyncio.CancelledError:
        if job.committed:
            # Cancelled after the object was written: the copy happened, so its
            # listener hears of it (the command then reports it) before the
            # cancellation goes on.
            options.progress.transfer_finished(_done(job, started))
        raise
    except Exception as exc:
        if isinstance(exc, TimeoutError) and deadline.expired():
            exc = TransferError(
                src, dst, f"no progress for {options.policy.stall_timeout:g} s (stalled)"
            )
        # Errors are translated where each call is made (with its side); what is
        # left (a bug, a bad option found late) is not about either object.
        error = translate_error(
            exc, src=src, dst=dst, bucket="", key=None, side=None, expected_etag=None
        )
        result = TransferResult(
            src=src,
            dst=dst,
            size=job.size or 0,
            etag=None,
            parts=job.attempt.parts,
            checksums={},
            seconds=time.perf_counter() - started,
            retries=job.retries,
            error=error,
        )
    else:
        result = _done(job, started)
    options.progress.transfer_finished(result)
    return result


def _done(job: Job, started: float) -> TransferResult:
    """The result of a copy that wrote its destination."""
    return TransferResult(
        src=job.src,
        dst=job.dst,
        size=job.size or 0,
        etag=job.etag,
        parts=job.attempt.parts,
        checksums=job.attempt.hashes.hexdigests(),
        seconds=time.perf_counter() - started,
        retries=job.retries,
        verified=job.attempt.verified,
    )


async def _existing(
    src: S3Url | Path, dst: S3Url | Path, src_client: S3Client | None, dst_client: S3Client | None
) -> tuple[int, str | None] | None:
    """What :func:`already_there` says; None when it cannot tell (the copy then runs
    and reports whatever is wrong)."""
    try:
        return await already_there(src, dst, src_client, dst_client)
    except Exception:
        return None
