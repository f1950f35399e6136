"""The two ends of one copy, checked before anything is opened: what each end is
(an object, a file, a stream), and whether the options apply to them."""

from __future__ import annotations

import os
from pathlib import Path

from ._expand import not_copied
from ._options import Options
from ._streams import (
    SpecialFile,
    StreamSink,
    StreamSource,
    describe,
    is_stream_sink,
    is_stream_source,
    special_file,
)
from .local import special_kind
from .s3 import S3Url, parse_location

__all__ = ["End", "check_pair"]

#: An end of a copy as the engine sees it.
End = S3Url | Path | StreamSource | StreamSink


def check_pair(
    src_end: object, dst_end: object, options: Options, *, listed: bool = False
) -> tuple[End, End]:
    """The ends of a copy, checked; raises ValueError naming what is wrong.

    A FIFO or a character device named by the caller is a stream: read, or
    written in place.  In a pair made from a listing (``listed``) it is not
    copied: TransferError, before anything is opened; and a source key ending
    in ``/`` is the object of that name (a folder marker), not a prefix.
    ``options`` that cannot apply to these ends are refused.
    """
    src_loc, dst_loc = _check_ends(src_end, dst_end, listed=listed)
    options.check_ends(
        src_is_s3=isinstance(src_loc, S3Url),
        dst_is_s3=isinstance(dst_loc, S3Url),
        streamed=isinstance(src_loc, StreamSource) or isinstance(dst_loc, StreamSink),
        src=describe(src_end),
        dst=describe(dst_end),
    )
    return src_loc, dst_loc


def _check_ends(src_end: object, dst_end: object, *, listed: bool) -> tuple[End, End]:
    src, dst = describe(src_end), describe(dst_end)
    if (fifo := special_file(src_end)) is not None:
        if listed:
            raise not_copied(src, dst, _kind(fifo))
        src_end = SpecialFile(fifo, "rb")
    if (fifo := special_file(dst_end)) is not None:
        if listed:
            raise not_copied(src, dst, _kind(fifo), side="destination")
        dst_end = SpecialFile(fifo, "wb")
    if is_stream_source(src_end):
        dst_loc = parse_location(_as_path(dst_end))
        if not isinstance(dst_loc, S3Url) or not dst_loc.key or dst_loc.is_prefix:
            raise ValueError(f"a stream source needs an s3:// object as destination, not {dst!r}")
        return StreamSource(src_end, src), dst_loc  # type: ignore[arg-type]
    if is_stream_sink(dst_end):
        src_loc = parse_location(_as_path(src_end))
        if not isinstance(src_loc, S3Url) or not src_loc.key or src_loc.is_prefix:
            raise ValueError(f"a stream destination needs an s3:// object as source, not {src!r}")
        return src_loc, StreamSink(dst_end)  # type: ignore[arg-type]
    src_loc = parse_location(_as_path(src_end))
    dst_loc = parse_location(_as_path(dst_end))
    if isinstance(src_loc, S3Url) and not src_loc.key:
        raise ValueError(f"source {src!r} names no object (a key is needed)")
    if isinstance(src_loc, S3Url) and src_loc.is_prefix and not listed:
        raise ValueError(f"source {src!r} is a prefix; copy prefixes with recursive=True")
    if not isinstance(src_loc, S3Url) and not isinstance(dst_loc, S3Url):
        raise ValueError(f"one of {src!r} and {dst!r} must be an s3:// URL")
    if isinstance(dst_loc, S3Url) and not dst_loc.key:
        raise ValueError(f"destination {dst!r} names no object (a key is needed)")
    if isinstance(src_loc, Path) and src_loc.is_symlink() and src_loc.is_dir():
        raise ValueError(f"source {src!r} is a symbolic link to a directory (not followed)")
    return src_loc, dst_loc


def _kind(path: Path) -> str:
    try:
        return special_kind(os.stat(path).st_mode) or "a special file"
    except OSError:
        return "a special file"


def _as_path(end: object) -> str | os.PathLike[str]:
    if isinstance(end, str | os.PathLike):
        return end
    raise ValueError(
        f"{end!r} is neither an s3:// URL, a path, nor a stream (an AsyncPipe, an async "
        "iterable of bytes, or an object with async read(n) / async write(data))"
    )
