"""Continuing a multipart upload after a crash, a kill or a lost network.

With ``resume=True`` a multipart upload to S3 keeps a journal
(:mod:`aqueuepipe._journal`) as its parts are stored, and a failure or
cancellation leaves the upload open.  The same copy run again finds the journal;
if the source is the same one (its ETag and size, or a file's size and mtime),
ListParts confirms which parts the server still holds, and only the others are
read and sent.  A changed source, an upload the server no longer has or a journal
that cannot be read starts over, and says so (a warning on the ``aqueuepipe``
logger); the upload left by a changed source or an unreadable journal is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import botocore.exceptions

from ._errors import ChecksumMismatchError
from ._job import ChecksumRefused, Job
from ._journal import (
    DownloadJournal,
    Journal,
    JournalUnreadable,
    StoredPart,
    default_journal_dir,
    journal_path,
    load_journal,
)
from ._verify import SourceMismatch
from .checksums import normalize_etag, s3_algorithm
from .s3._client import S3Client
from .s3._uploads import MultipartUpload
from .s3._urls import S3Url

__all__ = ["Carries", "FoundDownload", "Resumable", "ResumedDownload", "ResumedUpload", "logger"]

logger = logging.getLogger("aqueuepipe")

#: A journal untouched this long is pruned, with its upload (see :func:`prune_journals`).
PRUNE_AFTER = datetime.timedelta(days=7)

# The (directory, endpoint) pairs pruned by this process: once each is enough.
_pruned: set[tuple[Path, str]] = set()


async def prune_journals(directory: Path, client: S3Client) -> None:
    """Remove the journals in ``directory`` untouched for :data:`PRUNE_AFTER`: an
    upload's journal of ``client``'s endpoint with its upload (aborted), a
    download's with its temporary file, and any that cannot be read.  Another
    endpoint's uploads are left to the copies of that endpoint (or to
    ``aqueuepipe uploads abort --older-than 7d``).  Once per process, directory and
    endpoint, by the first resumable upload or download.
    """
    endpoint = str(client.meta.endpoint_url)
    if (directory, endpoint) in _pruned:
        return
    _pruned.add((directory, endpoint))
    cutoff = time.time() - PRUNE_AFTER.total_seconds()

    def stale() -> list[Path]:
        found = []
        with contextlib.suppress(OSError):
            for path in directory.glob("*.json"):
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        found.append(path)
        return found

    for path in await asyncio.to_thread(stale):
        try:
            download = DownloadJournal.load(path)
        except JournalUnreadable:
            download = None
        if download is not None:
            download.temp.unlink(missing_ok=True)
            download.remove()
            continue
        try:
            journal = load_journal(path)
        except JournalUnreadable:
            path.unlink(missing_ok=True)
            continue
        if journal is None or journal.endpoint != endpoint:
            continue
        await MultipartUpload(
            client, S3Url(journal.bucket, journal.key), upload_id=journal.upload_id
        ).abort()
        journal.remove()
        logger.warning(
            "pruned the journal of s3://%s/%s, untouched for %s days, and aborted its upload %s",
            journal.bucket,
            journal.key,
            PRUNE_AFTER.days,
            journal.upload_id,
        )


@dataclass(frozen=True, slots=True)
class Resumable:
    """What a source gives a resumable upload: its identity, and how to read it
    from any byte on."""

    identity: dict[str, Any]
    seek: Callable[[int], Awaitable[None]]


class Carries(NamedTuple):
    """What an upload's parts carry (see :attr:`ResumedUpload.carries`)."""

    algorithm: str | None
    md5: bool
    composite: bool = False


class ResumedUpload:
    """The journal of one resumable multipart upload, and the parts it found stored."""

    def __init__(
        self,
        job: Job,
        client: S3Client,
        dst: S3Url,
        source: Resumable,
        size: int,
        part_size: int,
        sizes: tuple[int, ...] | None = None,
        *,
        carries: Carries | None = None,
    ) -> None:
        self.job = job
        #: What the parts carry, when not the attempt's ``sending`` (a copy the
        #: server makes chooses its own checksum).
        self._carries = carries
        self.client = client
        self.dst = dst
        self.source = source
        self.size = size
        self.part_size = part_size
        #: The parts' sizes when the upload keeps its source's layout.
        self.sizes = sizes
        self.endpoint = str(client.meta.endpoint_url)
        directory = job.options.journal_dir or default_journal_dir()
        self.path = journal_path(directory, self.endpoint, dst.bucket, dst.key)
        self.journal: Journal | None = None
        #: The parts the server holds from an earlier run (confirmed by ListParts).
        self.stored: dict[int, StoredPart] = {}
        #: Parts the server lists that the journal does not (stored as a run was
        #: killed, before it could write them down): their bytes are read again and
        #: sent only if they differ from what the server reports.
        self.unjournaled: dict[int, StoredPart] = {}

    def _say(self, message: str) -> None:
        logger.warning("%s -> %s: %s", self.job.src, self.job.dst, message)

    @property
    def carries(self) -> Carries:
        """The checksum the parts carry, whether they carry Content-MD5, and whether
        the upload's checksum is COMPOSITE."""
        if self._carries is not None:
            return self._carries
        sending = self.job.attempt.sending
        return Carries(sending.algorithm, sending.md5)

    async def continue_upload(self, upload: MultipartUpload) -> bool:
        """Take up the journal's upload in ``upload`` if it can be continued; whether
        it was (else the caller creates a new upload, after :meth:`created`)."""
        carries = self.carries
        await prune_journals(self.path.parent, self.client)
        try:
            journal = load_journal(self.path)
        except JournalUnreadable as exc:
            aborted = ""
            if exc.upload_id is not None:
                await self._abort(exc.upload_id)
                aborted = f"; its upload {exc.upload_id} was aborted"
            self._say(f"{exc}{aborted}; starting the copy over")
            self.path.unlink(missing_ok=True)
            return False
        if journal is None:
            return False
        why = self._mismatch(journal, carries)
        if why is not None and self._on_the_md5_path(journal, carries):
            # The earlier run's server refused checksum headers (this process has not
            # learned that yet): its parts went with Content-MD5, and so do the rest.
            self.job.attempt.sending = self.job.attempt.sending.without_flexible_checksum()
            carries = self.carries
            why = self._mismatch(journal, carries)
        if why is not None:
            await self._abort(journal.upload_id)
            journal.remove()
            self._say(
                f"the upload {journal.upload_id} cannot be continued: {why}; it was "
                "aborted and the copy starts over"
            )
            return False
        algorithm = s3_algorithm(carries.algorithm) if carries.algorithm is not None else None
        listed = await self._list_parts(journal.upload_id, algorithm)
        if listed is None:
            journal.remove()
            self._say(
                f"the upload {journal.upload_id} is no longer on the server (completed or "
                "aborted since); the copy starts over"
            )
            return False
        confirmed: dict[int, StoredPart] = {}
        for number, part in journal.parts.items():
            held = listed.get(number)
            if (
                held is not None
                and (held.size, normalize_etag(held.etag)) == (part.size, normalize_etag(part.etag))
                and part.size == self._part_length(number)
            ):
                confirmed[number] = part
        journal.parts = confirmed
        self.journal = journal
        self.stored = confirmed
        self.unjournaled = {
            number: part
            for number, part in listed.items()
            if number not in confirmed and part.size == self._part_length(number)
        }
        upload.upload_id = journal.upload_id
        upload.checksum_algorithm = algorithm
        for part in confirmed.values():
            upload.take_stored(part.number, part.etag, part.checksum)
        stored = sum(part.size for part in confirmed.values())
        logger.info(
            "%s -> %s: continuing upload %s: %d parts (%d bytes) stored, %d bytes to send",
            self.job.src,
            self.job.dst,
            journal.upload_id,
            len(confirmed),
            stored,
            self.size - stored,
        )
        return True

    def _mismatch(self, journal: Journal, carries: Carries) -> str | None:
        return journal.matches(
            endpoint=self.endpoint,
            bucket=self.dst.bucket,
            key=self.dst.key,
            source=self.source.identity,
            size=self.size,
            part_size=self.part_size,
            algorithm=carries.algorithm,
            md5=carries.md5,
            composite=carries.composite,
        )

    def _on_the_md5_path(self, journal: Journal, carries: Carries) -> bool:
        """Whether ``journal``'s upload fell back to Content-MD5 where this copy would
        send the checksum it chose itself (none was asked for): it can go on so."""
        return (
            self._carries is None
            and journal.algorithm is None
            and journal.md5
            and carries.algorithm is not None
            and self.job.options.checksum_algorithm is None
        )

    def _part_length(self, number: int) -> int:
        if self.sizes is not None:
            return self.sizes[number - 1] if 0 < number <= len(self.sizes) else 0
        return max(0, min(self.part_size, self.size - (number - 1) * self.part_size))

    async def created(self, upload: MultipartUpload) -> None:
        """A new upload was created: start its journal (so a kill from now on leaves
        an upload that the next run continues, or aborts)."""
        assert upload.upload_id is not None
        carries = self.carries
        self.journal = Journal(
            path=self.path,
            endpoint=self.endpoint,
            bucket=self.dst.bucket,
            key=self.dst.key,
            upload_id=upload.upload_id,
            source=dict(self.source.identity),
            size=self.size,
            part_size=self.part_size,
            algorithm=carries.algorithm,
            md5=carries.md5,
            composite=carries.composite,
        )
        with self.job.errors("destination"):
            await self.journal.save()

    async def record(self, number: int, size: int, etag: str, checksum: str | None) -> None:
        """Part ``number`` was stored: write it in the journal."""
        if self.journal is not None:
            with self.job.errors("destination"):
                await self.journal.store(StoredPart(number, size, etag, checksum))

    async def adopt(self, upload: MultipartUpload, part: StoredPart) -> None:
        """A part the server holds was read again and found to be the source's
        bytes: complete the upload with it, and write it in the journal if it was
        not."""
        if part.number in self.stored:
            return
        upload.take_stored(part.number, part.etag, part.checksum)
        await self.record(part.number, part.size, part.etag, part.checksum)

    def keeps(self, exc: BaseException, upload: MultipartUpload) -> bool:
        """Whether the upload stays open for the next run after ``exc`` (anything
        but bytes found wrong, or checksum headers refused: those start over)."""
        if upload.upload_id is None or self.journal is None:
            return False
        return not isinstance(exc, SourceMismatch | ChecksumRefused | ChecksumMismatchError)

    async def failed(self, exc: BaseException, upload: MultipartUpload) -> None:
        """The copy failed with ``exc``: keep ``upload`` open for the next run if
        :meth:`keeps` says so (and say how to go on), else abort it and drop its
        journal."""
        if self.keeps(exc, upload):
            self.kept(exc)
            return
        await upload.abort()
        if upload.upload_id is None:
            self.finished()

    def kept(self, exc: BaseException) -> None:
        """Say that the upload stays open, and how to continue or abort it."""
        assert self.journal is not None
        logger.warning(
            "%s -> %s: the upload %s is kept open (%s); run the same copy with "
            "resume=True (--resume) to continue it, or abort it with: "
            "aqueuepipe uploads abort --upload-id %s --endpoint-url %s s3://%s/%s",
            self.job.src,
            self.job.dst,
            self.journal.upload_id,
            "interrupted" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__,
            self.journal.upload_id,
            self.endpoint,
            self.dst.bucket,
            self.dst.key,
        )

    def finished(self) -> None:
        """The upload completed or was aborted: its journal goes."""
        if self.journal is not None:
            self.journal.remove()
        self.journal = None

    async def _abort(self, upload_id: str) -> None:
        await MultipartUpload(self.client, self.dst, upload_id=upload_id).abort()

    async def _list_parts(
        self, upload_id: str, algorithm: str | None
    ) -> dict[int, StoredPart] | None:
        """Each part the server holds (with its ``algorithm`` checksum, S3's name, if
        the server lists one); None if the upload is gone."""
        found: dict[int, StoredPart] = {}
        paginator = self.client.get_paginator("list_parts")
        with self.job.errors("destination"):
            try:
                async for page in paginator.paginate(
                    Bucket=self.dst.bucket, Key=self.dst.key, UploadId=upload_id
                ):
                    for part in page.get("Parts", []):
                        number = int(part["PartNumber"])
                        checksum = part.get(f"Checksum{algorithm}") if algorithm else None
                        found[number] = StoredPart(
                            number,
                            int(part["Size"]),
                            str(part["ETag"]),
                            str(checksum) if checksum is not None else None,
                        )
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
                    return None
                raise
        return found


@dataclass(frozen=True, slots=True)
class FoundDownload:
    """A download to continue: its journal, the bytes of its temporary file to keep,
    and the object's HeadObject answer (the evidence its check is built from)."""

    journal: DownloadJournal
    offset: int
    head: Mapping[str, Any]


class ResumedDownload:
    """The journal of one resumable download (its temporary file is kept on failure)."""

    def __init__(self, job: Job, client: S3Client, src: S3Url, dst: Path) -> None:
        self.job = job
        self.client = client
        self.src = src
        self.dst = dst
        endpoint = str(client.meta.endpoint_url)
        directory = job.options.journal_dir or default_journal_dir()
        self.path = DownloadJournal.path_for(directory, endpoint, job.src, dst)
        self.journal: DownloadJournal | None = None

    def _say(self, message: str) -> None:
        logger.warning("%s -> %s: %s", self.job.src, self.job.dst, message)

    async def find(self) -> FoundDownload | None:
        """The earlier run's download to continue, if it can be; else None (and
        what cannot be continued is removed, and said)."""
        await prune_journals(self.path.parent, self.client)
        try:
            journal = DownloadJournal.load(self.path)
        except JournalUnreadable as exc:
            self._say(f"{exc}; starting the download over")
            self.path.unlink(missing_ok=True)
            return None
        if journal is None:
            return None
        try:
            held = journal.temp.stat().st_size
        except OSError:
            journal.remove()
            self._say(f"the partial download {journal.temp} is gone; starting over")
            return None
        with self.job.errors("source"):
            head = await self.client.head_object(
                Bucket=self.src.bucket, Key=self.src.key, ChecksumMode="ENABLED"
            )
        if (str(head["ETag"]), int(head["ContentLength"])) != (journal.etag, journal.size):
            self._discard(journal)
            self._say("the source changed since the download began; starting over")
            return None
        offset = min(held, journal.size - 1)
        if offset <= 0:
            self._discard(journal)
            return None
        self.journal = journal
        logger.info(
            "%s -> %s: continuing the download at byte %d of %d",
            self.job.src,
            self.job.dst,
            offset,
            journal.size,
        )
        return FoundDownload(journal, offset, head)

    def _discard(self, journal: DownloadJournal) -> None:
        journal.temp.unlink(missing_ok=True)
        journal.remove()

    async def started(self, temp: Path, etag: str, size: int) -> None:
        """A new download began into ``temp``: record it."""
        self.journal = DownloadJournal(self.path, self.job.src, etag, size, temp)
        with self.job.errors("destination"):
            await self.journal.save()

    def kept(self, exc: BaseException) -> None:
        assert self.journal is not None
        logger.warning(
            "%s -> %s: the partial download %s is kept (%s); run the same copy with "
            "resume=True (--resume) to continue it, or delete that file",
            self.job.src,
            self.job.dst,
            self.journal.temp,
            "interrupted" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__,
        )

    def finished(self) -> None:
        """The download was committed or thrown away: its journal goes."""
        if self.journal is not None:
            self.journal.remove()
        self.journal = None
