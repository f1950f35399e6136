"""Local files as a source and a sink of bytes.

:class:`FileSource` reads a local file in chunks.  :class:`FileSink` writes one
atomically: the bytes go to a temporary file beside the target, which
:meth:`FileSink.commit` renames into place.  :func:`safe_join` maps an S3 key to a
path under a download directory and refuses keys that would land outside it.
:class:`StandardInput` and :class:`StandardOutput` are the process's standard
streams as the ends of a copy (``async read(n)``, ``async write(data)``).
:class:`SpecialFile` is a FIFO or a character device named as an end of a copy,
read or written in place without ever blocking a thread (a FIFO whose other end
never comes must not outlive a cancellation).

Blocking file operations run in the event loop's default executor, through
aiofiles, on both sides.  A worker thread cannot be interrupted, so no operation
is ever abandoned: a cancelled coroutine first waits for the operation it started
(one local I/O call) and only then lets the cancellation propagate.  That way no
descriptor leaks, no file it creates is left behind, no caller's buffer is filled
after the call returned, and no file is closed under a write still running.
"""

from __future__ import annotations

from ._paths import safe_join
from ._sink import FileSink
from ._source import FileSource
from ._special import SpecialFile, special_file, special_kind
from ._stdio import StandardInput, StandardOutput

__all__ = [
    "FileSink",
    "FileSource",
    "SpecialFile",
    "StandardInput",
    "StandardOutput",
    "safe_join",
    "special_file",
    "special_kind",
]
