"""The journal of a resumable upload: what lets a copy continue after a crash.

One small JSON file per destination upload (see DESIGN.md "Resuming"), named by
a hash of the destination's endpoint, bucket and key, in a directory the caller
chooses (``journal_dir=``) or the per-user cache folder
(``$XDG_CACHE_HOME/aqueuepipe/uploads``, else ``~/.cache/aqueuepipe/uploads``).
It holds the upload id, the destination, the source's identity (an object's
ETag and size; a file's size and mtime), the part size, what the parts carry
(the checksum algorithm, Content-MD5) and each stored part's number, size, ETag
and checksum.  It is rewritten whole, atomically (a temporary file, fsync,
``os.replace``, fsync of the directory), each time a part is stored, so a kill
at any moment leaves either the old journal or the new one, never half of one.
A journal that cannot be read is reported (:class:`JournalUnreadable`) with the
upload id if that much of it could be read, so the upload can be aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._cancel import run_to_end

__all__ = [
    "DownloadJournal",
    "Journal",
    "JournalUnreadable",
    "StoredPart",
    "default_journal_dir",
    "journal_path",
    "load_journal",
]

#: The version of the journal's format; another one is not read.
_FORMAT = 1


def default_journal_dir() -> Path:
    """The per-user folder of journals: ``$XDG_CACHE_HOME/aqueuepipe/uploads``, else
    ``~/.cache/aqueuepipe/uploads``."""
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "aqueuepipe" / "uploads"


def journal_path(directory: Path, endpoint: str, bucket: str, key: str) -> Path:
    """Where the journal of an upload to ``bucket``/``key`` at ``endpoint`` lives."""
    name = json.dumps([endpoint, bucket, key], ensure_ascii=False).encode()
    return directory / f"{hashlib.sha256(name).hexdigest()[:32]}.json"


class JournalUnreadable(Exception):
    """A journal that is not one (truncated, corrupt, another format)."""

    def __init__(self, path: Path, reason: str, upload_id: str | None) -> None:
        self.path = path
        self.reason = reason
        #: The upload it names, if that much could be read (to abort it).
        self.upload_id = upload_id
        super().__init__(f"the resume journal {path} cannot be read ({reason})")


@dataclass(frozen=True, slots=True)
class StoredPart:
    """A part the server acknowledged: its number, size, ETag and checksum (base64)."""

    number: int
    size: int
    etag: str
    checksum: str | None


@dataclass(slots=True)
class Journal:
    """The record of one resumable upload (see the module)."""

    path: Path
    endpoint: str
    bucket: str
    key: str
    upload_id: str
    #: What makes the source the same one: {"etag", "size"} or {"size", "mtime_ns"}.
    source: dict[str, Any]
    size: int
    part_size: int
    #: The checksum algorithm the upload was created with (aqueuepipe's name), if any.
    algorithm: str | None
    md5: bool
    #: The upload's checksum is COMPOSITE (a copy the server made of such a source).
    composite: bool = False
    parts: dict[int, StoredPart] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def matches(
        self,
        *,
        endpoint: str,
        bucket: str,
        key: str,
        source: Mapping[str, Any],
        size: int,
        part_size: int,
        algorithm: str | None,
        md5: bool,
        composite: bool = False,
    ) -> str | None:
        """Why this journal is not of the upload described, or None if it is."""
        if (self.endpoint, self.bucket, self.key) != (endpoint, bucket, key):
            return "it is of another destination"
        if self.source != dict(source) or self.size != size:
            return "the source changed since (" + _identity_change(self.source, source) + ")"
        if self.part_size != part_size:
            return f"its part size ({self.part_size}) is not this copy's ({part_size})"
        if (self.algorithm, self.md5, self.composite) != (algorithm, md5, composite):
            return "its parts carry other checksums than this copy sends"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "source": self.source,
            "size": self.size,
            "part_size": self.part_size,
            "algorithm": self.algorithm,
            "md5": self.md5,
            "composite": self.composite,
            "parts": [
                {"number": p.number, "size": p.size, "etag": p.etag, "checksum": p.checksum}
                for p in (self.parts[n] for n in sorted(self.parts))
            ],
        }

    async def save(self) -> None:
        """Write the journal atomically and durably (in a worker thread; it runs to
        its end even if the caller is cancelled, so the file is whole either way)."""
        async with self._lock:
            await _write(self.path, self.to_json())

    async def store(self, part: StoredPart) -> None:
        """Record a stored part and write the journal."""
        self.parts[part.number] = part
        await self.save()

    def remove(self) -> None:
        """Remove the journal (its upload completed or was aborted)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _identity_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    changed = [
        f"{name} {old.get(name)!r} -> {new.get(name)!r}"
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]
    return ", ".join(changed) or "size"


async def _write(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` at ``path`` atomically and durably, in a worker thread that
    runs to its end even if the caller is cancelled (so the file is whole)."""
    data = json.dumps(record, separators=(",", ":")).encode()
    await run_to_end(asyncio.to_thread(_write_atomically, path, data))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _read(path: Path, kind: str | None) -> dict[str, Any] | None:
    """The record at ``path`` if it is a journal of this format and of ``kind``
    ("download", or None: an upload's); None if there is none.

    Raises:
        JournalUnreadable: the file is there but is not such a journal (with the
            upload id if that much of it could be read).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalUnreadable(path, f"{type(exc).__name__}: {exc}", None) from exc
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JournalUnreadable(path, f"not JSON: {exc}", _salvage_id(raw)) from exc
    if not isinstance(data, dict):
        raise JournalUnreadable(path, "not a journal", None)
    if data.get("kind") != kind:
        what = "a download" if kind == "download" else "an upload"
        raise JournalUnreadable(path, f"not the journal of {what}", None)
    if data.get("format") != _FORMAT:
        raise JournalUnreadable(path, "not a journal of this version", _upload_id(data))
    return data


def _upload_id(data: Mapping[str, Any]) -> str | None:
    upload_id = data.get("upload_id")
    return upload_id if isinstance(upload_id, str) and upload_id else None


def load_journal(path: Path) -> Journal | None:
    """The journal at ``path``; None if there is none.

    Raises:
        JournalUnreadable: the file is there but is not a whole journal.
    """
    data = _read(path, None)
    if data is None:
        return None
    upload_id = _upload_id(data)
    try:
        parts = {}
        for entry in data["parts"]:
            part = StoredPart(
                _int(entry["number"]),
                _int(entry["size"]),
                _str(entry["etag"]),
                None if entry["checksum"] is None else _str(entry["checksum"]),
            )
            parts[part.number] = part
        source = data["source"]
        if not isinstance(source, dict) or upload_id is None:
            raise ValueError("no source or no upload id")
        algorithm = data["algorithm"]
        return Journal(
            path=path,
            endpoint=_str(data["endpoint"]),
            bucket=_str(data["bucket"]),
            key=_str(data["key"]),
            upload_id=upload_id,
            source=source,
            size=_int(data["size"]),
            part_size=_int(data["part_size"]),
            algorithm=None if algorithm is None else _str(algorithm),
            md5=bool(data["md5"]),
            composite=bool(data.get("composite", False)),
            parts=parts,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalUnreadable(path, f"{type(exc).__name__}: {exc}", upload_id) from exc


def _salvage_id(raw: bytes) -> str | None:
    """The upload id of a cut-short journal, if the cut came after it."""
    marker = b'"upload_id":"'
    start = raw.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = raw.find(b'"', start)
    if end < 0:
        return None
    with contextlib.suppress(UnicodeDecodeError):
        return raw[start:end].decode() or None
    return None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


@dataclass(frozen=True, slots=True)
class DownloadJournal:
    """The record of a download that can continue: the object it is of (its URL,
    ETag and size) and the temporary file holding its first bytes."""

    path: Path
    src: str
    etag: str
    size: int
    temp: Path

    @staticmethod
    def path_for(directory: Path, endpoint: str, src: str, dst: Path) -> Path:
        """Where the journal of a download of ``src`` to ``dst`` lives."""
        return journal_path(directory, f"download:{endpoint}", src, str(dst.absolute()))

    async def save(self) -> None:
        await _write(
            self.path,
            {
                "format": _FORMAT,
                "kind": "download",
                "src": self.src,
                "etag": self.etag,
                "size": self.size,
                "temp": str(self.temp),
            },
        )

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @staticmethod
    def load(path: Path) -> DownloadJournal | None:
        """The journal at ``path``; None if there is none.

        Raises:
            JournalUnreadable: the file is there but is not a whole journal.
        """
        data = _read(path, "download")
        if data is None:
            return None
        try:
            return DownloadJournal(
                path=path,
                src=_str(data["src"]),
                etag=_str(data["etag"]),
                size=_int(data["size"]),
                temp=Path(_str(data["temp"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalUnreadable(path, f"{type(exc).__name__}: {exc}", None) from exc
