"""The JSON Lines manifest of a run: one line per object, as shards finish."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from aqueuepipe.s3 import parse_s3_url
from aqueuepipe.transfer import copy

from ._models import ObjectOutcome

__all__ = ["Manifest", "manifest_target"]


def manifest_target(manifest: str | os.PathLike[str] | None) -> str | Path | None:
    """Where the manifest goes: an ``s3://`` URL, a local path, or nowhere.

    Raises:
        ValueError: a bad ``s3://`` URL, or one that names a prefix.
    """
    if manifest is None:
        return None
    text = os.fspath(manifest)
    if text[:5].lower() == "s3://":
        url = parse_s3_url(text)
        if url.is_prefix:
            raise ValueError(f"manifest {text!r} names a prefix, not an object")
        return str(url)
    return Path(text)


class Manifest:
    """The manifest's file: local, or a temporary one uploaded to its URL at the end.

    The file is opened, written and closed by one thread of its own, in the order
    asked: the event loop never waits on the disk, and a write whose caller was
    cancelled still ends before the file is closed.
    """

    def __init__(self, target: str | Path | None) -> None:
        self.target = target
        self._file: TextIO | None = None
        self._temporary: Path | None = None
        self._thread = (
            None
            if target is None
            else concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aqueuepipe-manifest")
        )

    async def _in_thread(self, call: Callable[[], None]) -> None:
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def open(self) -> None:
        await self._in_thread(self._open)

    async def write(self, outcomes: Iterable[ObjectOutcome]) -> None:
        if self._thread is not None:
            lines = [json.dumps(o.to_json(), ensure_ascii=False) + "\n" for o in outcomes]
            await self._in_thread(lambda: self._write(lines))

    async def close(self, endpoint_url: str | None, ending: BaseException | None) -> None:
        """Close the file; upload a temporary one to its ``s3://`` URL, then remove it.

        After an error (``ending``) the manifest of what was done is still uploaded
        (an error of the upload then yields to the one already raised); after an
        interruption (``KeyboardInterrupt``, cancellation) it is dropped.

        Raises:
            TransferError: the upload failed, after a run that did not.
        """
        if self._thread is None:
            return
        try:
            await self._in_thread(self._close)
        finally:
            self._thread.shutdown(wait=False)  # the thread ends once the close is done
        temporary, self._temporary = self._temporary, None
        if temporary is None:
            return
        try:
            if ending is None:
                await copy(str(temporary), str(self.target), endpoint_url=endpoint_url)
            elif isinstance(ending, Exception):
                with contextlib.suppress(Exception):
                    await copy(str(temporary), str(self.target), endpoint_url=endpoint_url)
        finally:
            temporary.unlink(missing_ok=True)

    def _open(self) -> None:
        if isinstance(self.target, Path):
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.target.open("w", encoding="utf-8")
        else:
            fd, name = tempfile.mkstemp(prefix="aqueuepipe-manifest-", suffix=".jsonl")
            self._temporary = Path(name)
            self._file = os.fdopen(fd, "w", encoding="utf-8")

    def _write(self, lines: list[str]) -> None:
        if self._file is not None:
            self._file.writelines(lines)
            self._file.flush()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
