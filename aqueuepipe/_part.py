"""A part's bytes, the budget and slot they hold, and their digests.

:class:`Part` is one part of an upload (or a whole object sent in one request):
its buffer, the budget lease that pays for it and its slot among the parts in
flight, with one owner that closes all three.  :func:`hash_part` hashes it
once for everything that needs its bytes: the copy's stream hashes, the check
of the source, its own checksum and MD5; :func:`stored_mismatch` and
:func:`check_completed` compare the server's answers with those digests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._budget import BudgetLease, ByteBudget
from ._errors import ChecksumMismatchError
from ._job import Attempt, Job
from ._verify import md5_of_etag
from .checksums import (
    OFFLOAD_THRESHOLD,
    Buffer,
    composite_checksum,
    etag_evidence,
    multipart_etag,
    new_hasher,
    s3_algorithm,
    stored_checksum,
)
from .s3._objects import PartBody

__all__ = [
    "Digests",
    "Part",
    "PartSource",
    "check_completed",
    "hash_part",
    "hash_stored",
    "md5_of",
    "needs_bytes_to_skip",
    "stored_mismatch",
]

#: How much more memory than its size a part's buffer may hold and be kept for reuse.
_SPARE_SLACK = 4096


class PartSource(Protocol):
    """What parts are read from: a body, a file, a stream."""

    async def readinto(self, buf: memoryview) -> int: ...


@dataclass(slots=True)
class Digests:
    """A part's MD5 (raw) and S3 checksum (base64), each where it is needed."""

    md5: bytes | None
    checksum: str | None

    @property
    def content_md5(self) -> str | None:
        return base64.b64encode(self.md5).decode() if self.md5 is not None else None


async def hash_part(attempt: Attempt, part: Part, *, whole: bool = False) -> Digests:
    """Hash a part of ``attempt``: the stream hashes and the source check in order, plus its own
    MD5 and S3 checksum where the sending needs them.

    Parts are hashed one after another in source order (the stream hashes,
    the source check and a FULL_OBJECT checksum depend on it), in a worker
    thread while other parts download and upload (parts below
    ``OFFLOAD_THRESHOLD`` on the event loop: the hop costs more).  A part that
    is the ``whole`` object reuses the stream's MD5 and checksum when those are
    computed anyway.  The part's checksum is computed once: the FULL_OBJECT
    CRC is combined from the parts' CRCs, and a source check of the same CRC
    (or of a source part that is exactly this part) takes the part's digest
    instead of hashing the bytes again.
    """
    previous = attempt.hash_tail
    mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    attempt.hash_tail = mine
    sending = attempt.sending
    algorithm = sending.algorithm
    check = attempt.check
    full = attempt.full
    hashes = attempt.hashes

    def work() -> Digests:
        with part.body.getbuffer() as view:
            hashes.update(view)
            done = hashes.digests() if whole else {}
            known: dict[str, bytes] = {}
            if sending.md5:
                known["md5"] = done.get("md5") or _digest("md5", view)
            if algorithm is not None:
                # Each byte goes through the part's checksum once: the object's
                # FULL_OBJECT CRC and a source check of the same CRC are combined
                # from it.
                known[algorithm] = done.get(algorithm) or _digest(algorithm, view)
            if check is not None:
                check.update(view, known)
            if full is not None and algorithm is not None:
                full.combine(int.from_bytes(known[algorithm], "big"), len(view))
        checksum = known.get(algorithm) if algorithm is not None else None
        return Digests(known.get("md5"), base64.b64encode(checksum).decode() if checksum else None)

    try:
        if previous is not None:
            await previous
        if part.size < OFFLOAD_THRESHOLD:
            # Small parts: hashing takes less than the hop to a worker thread.
            return work()
        return await asyncio.to_thread(work)
    finally:
        if not mine.done():
            mine.set_result(None)


def needs_bytes_to_skip(attempt: Attempt) -> bool:
    """Whether a stored part must still be read for this attempt's hashes: the
    stream hashes asked for, or a check of the source its CRC cannot stand for."""
    algorithm = attempt.sending.algorithm
    if attempt.hashes.names:
        return True
    return attempt.check is not None and not attempt.check.takes_without_bytes(algorithm)


async def hash_stored(attempt: Attempt, size: int, checksum: str | None) -> None:
    """Account for a part the server holds from an earlier run, without its bytes:
    its CRC (``checksum``, base64) goes into the FULL_OBJECT CRC and the check of the
    source, in source order (see :func:`hash_part`).  Only when
    :func:`needs_bytes_to_skip` is false."""
    previous = attempt.hash_tail
    mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    attempt.hash_tail = mine
    try:
        if previous is not None:
            await previous
        digest = base64.b64decode(checksum) if checksum is not None else None
        if attempt.check is not None and digest is not None:
            attempt.check.skip(size, digest)
        if attempt.full is not None and digest is not None:
            attempt.full.combine(int.from_bytes(digest, "big"), size)
    finally:
        if not mine.done():
            mine.set_result(None)


def _digest(algorithm: str, data: Buffer) -> bytes:
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return hasher.digest()


async def md5_of(part: Part) -> bytes:
    """The MD5 of a part's bytes (in a worker thread for a large part)."""

    def work() -> bytes:
        with part.body.getbuffer() as view:
            return _digest("md5", view)

    return await asyncio.to_thread(work) if part.size >= OFFLOAD_THRESHOLD else work()


def stored_mismatch(
    job: Job, response: Mapping[str, Any], digests: Digests, part: int | None
) -> ChecksumMismatchError | None:
    """Compare the server's answer to one request with what it was sent."""
    sending = job.attempt.sending
    if sending.md5 and digests.md5 is not None:
        stored_md5 = md5_of_etag(response)
        if stored_md5 is None:
            job.attempt.etags_matched = False  # an opaque ETag proves nothing
        elif stored_md5 != digests.md5.hex():
            return ChecksumMismatchError(
                job.src,
                job.dst,
                "etag-md5",
                digests.md5.hex(),
                stored_md5,
                "destination",
                part,
            )
    if sending.algorithm is not None and digests.checksum is not None:
        reported = response.get(f"Checksum{s3_algorithm(sending.algorithm)}")
        if reported is not None and str(reported) != digests.checksum:
            return ChecksumMismatchError(
                job.src,
                job.dst,
                sending.algorithm,
                digests.checksum,
                str(reported),
                "destination",
                part,
            )
    return None


def check_completed(
    job: Job,
    response: Mapping[str, Any],
    part_md5s: dict[int, bytes],
    part_checksums: dict[int, bytes],
    whole: str | None,
) -> None:
    """Compare the object's ETag and checksum with ours, under S3's rules
    (``whole``: the FULL_OBJECT checksum we computed, if any)."""
    etag = etag_evidence(response)
    if etag is not None and etag.parts is not None and len(part_md5s) == job.attempt.parts:
        expected = multipart_etag([part_md5s[n] for n in sorted(part_md5s)])
        if f"{etag.md5_hex}-{etag.parts}" != expected:
            raise ChecksumMismatchError(
                job.src, job.dst, "etag-md5", expected, f"{etag.md5_hex}-{etag.parts}"
            )
    stored = stored_checksum(response)
    algorithm = job.attempt.sending.algorithm
    if stored is None or stored.algorithm != algorithm:
        return
    if stored.parts is None and whole is not None:
        expected = whole
    elif stored.parts is not None and len(part_checksums) == job.attempt.parts:
        expected = composite_checksum(
            algorithm, [part_checksums[n] for n in sorted(part_checksums)]
        )
    else:
        return
    if stored.header_value != expected:
        raise ChecksumMismatchError(job.src, job.dst, algorithm, expected, stored.header_value)


class Part:
    """One part's bytes and everything they hold: one owner.

    The bytes live in the :class:`PartBody` the HTTP client streams the request
    from (sent in slices with flow control; botocore rewinds it to resend the
    part), sized once and filled in place through ``getbuffer()``, so the part
    exists in memory exactly once.  The part owns the budget lease that pays for
    those bytes and, in a multipart upload, its slot among the parts in flight.
    :meth:`close` frees the buffer and gives back the lease and the slot
    (idempotent), so a reference to a closed part, left in a local or a finished
    task, holds no memory outside the budget.
    """

    __slots__ = ("body", "lease", "reusable", "size", "slot")

    def __init__(self, lease: BudgetLease, slot: asyncio.Semaphore | None = None) -> None:
        self.lease = lease
        self.slot = slot
        self.size = lease.held
        #: A part of a size known in advance: its buffer may go to the next one.  (A
        #: stream's parts grow and shrink: their sizes seldom repeat, and keeping
        #: their buffers only spreads the heap.)
        self.reusable = lease.up_to == lease.held
        spare = lease.buffer
        if isinstance(spare, PartBody) and not spare.closed:
            # A buffer of an earlier part of this size: its bytes are overwritten by
            # the read before anything uses them, so it needs no zero-fill.
            spare.on_sent = None
            spare.seek(0)
            self.body = spare
        else:
            self.body = PartBody()
            self._resize(self.size)

    @classmethod
    async def take(
        cls,
        budget: ByteBudget,
        size: int,
        *,
        up_to: int | None = None,
        slot: asyncio.Semaphore | None = None,
    ) -> Part:
        """A part of ``size`` bytes (growable to ``up_to``), once ``slot`` and the
        budget allow; the buffer is made (or a spare one of the budget's taken)
        only once its bytes are in the budget."""
        if slot is not None:
            await slot.acquire()
        try:
            lease = await budget.lease(size, up_to=up_to, spare=up_to in (None, size))
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        return cls(lease, slot)

    def _resize(self, size: int) -> None:
        if size:
            self.body.seek(size - 1)
            self.body.write(b"\0")
            self.body.seek(0)

    async def grow(self, to: int) -> None:
        """Grow to ``to`` bytes, at most the lease's ``up_to`` (the bytes read so
        far are kept)."""
        await self.lease.grow(to)
        self.size = self.lease.held
        self._resize(self.size)

    def shrink(self, size: int) -> None:
        """Keep only the first ``size`` bytes (the last part of a stream)."""
        self.body.truncate(size)
        self.lease.shrink(size)
        self.size = size

    async def fill(self, source: PartSource, start: int = 0) -> int:
        """Read the source into the part from ``start``; return the bytes read
        (fewer than asked only at the end of the source)."""
        with self.body.getbuffer() as view, view[start:] as rest:
            return await source.readinto(rest)

    def close(self, *, reuse: bool = False) -> None:
        """Free the buffer, give back its bytes and its slot.  Idempotent.

        ``reuse``: the part was stored and nothing reads its buffer any more, so
        the budget may keep it for a later part of the same size (counted
        against its limit, see :class:`~aqueuepipe.ByteBudget`).
        """
        body, self.body = self.body, PartBody()
        keep: PartBody | None = None
        held = self.lease.held
        # Only a buffer whose memory is what its lease counts is worth keeping (a
        # shrunk one may still hold the memory of its larger past).
        if (
            reuse
            and self.reusable
            and held
            and not body.closed
            and sys.getsizeof(body) - held <= _SPARE_SLACK
        ):
            try:
                body.truncate(held)  # BufferError while a view of it lives
            except BufferError:
                pass
            else:
                keep = body
        if keep is None:
            with contextlib.suppress(BufferError):
                # A view of it outlives the read that made it (in the traceback of
                # the error being raised): the buffer goes with that view.
                body.close()
        self.lease.close(keep=keep)
        slot, self.slot = self.slot, None
        if slot is not None:
            slot.release()
