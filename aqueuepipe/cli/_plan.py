"""The plan of ``cp`` and ``sync``: SRC, DST, the sizes and the endpoint checked and
worked out before anything starts, so that a command line that would fail every
copy is a usage error (exit status 2) and never a failed copy.

Planning looks at local paths but does no other I/O.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .._plan import check_distinct, check_prefixes, into_directory, listed_prefix
from .._units import parse_size
from ..s3 import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    S3Url,
    parse_location,
    resolve_endpoint_url,
)
from ._help import DEFAULT_LIMIT, DEFAULT_PART_SIZE

#: SRC or DST meaning standard input or standard output.
STDIO = "-"


class UsageError(Exception):
    """A bad command line, found before anything was copied (exit status 2)."""


@dataclass(frozen=True, slots=True)
class CopyPlan:
    """What ``cp`` will do, checked before anything starts."""

    src: str
    dst: str
    recursive: bool
    limit: int
    part_size: int
    endpoint_url: str | None

    @property
    def stdin(self) -> bool:
        """SRC is standard input."""
        return self.src == STDIO

    @property
    def stdout(self) -> bool:
        """DST is standard output: the bytes of the copy go there, nothing else."""
        return self.dst == STDIO


class _Sizes(NamedTuple):
    """What every plan carries besides its pair (CopyPlan's last fields)."""

    limit: int
    part_size: int
    endpoint_url: str | None


def plan_copy(args: argparse.Namespace) -> CopyPlan:
    """Check SRC, DST and the endpoint; work out the pair copy_many gets.

    Raises:
        UsageError: anything that would fail every copy, found without I/O
            beyond looking at local paths (the pair rules' ValueErrors among them).
    """
    try:
        return _plan(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _plan(args: argparse.Namespace) -> CopyPlan:
    limit = args.limit if args.limit is not None else parse_size(DEFAULT_LIMIT)
    part_size = args.part_size if args.part_size is not None else parse_size(DEFAULT_PART_SIZE)
    if part_size < MIN_PART_SIZE:
        raise UsageError(f"--part-size must be at least 5MiB (the S3 minimum), not {part_size}")
    if part_size > MAX_PART_SIZE:
        raise UsageError(
            f"--part-size must be at most 5GiB ({MAX_PART_SIZE} bytes, the S3 maximum), "
            f"not {part_size}"
        )
    if limit < part_size:
        raise UsageError(
            f"--limit ({limit} bytes) must hold at least one part (--part-size {part_size} bytes)"
        )
    try:
        endpoint_url = resolve_endpoint_url(args.endpoint_url)
    except ValueError as exc:
        raise UsageError(str(exc).replace("from endpoint_url", "from --endpoint-url")) from None
    sizes = _Sizes(limit, part_size, endpoint_url)
    if STDIO in (args.src, args.dst):
        return _plan_stream(args, sizes)
    src_loc = parse_location(args.src)
    dst_loc = parse_location(args.dst)
    if not isinstance(src_loc, S3Url) and not isinstance(dst_loc, S3Url):
        raise UsageError(
            "SRC or DST must be an s3:// URL (local to local copies are not supported)"
        )
    if args.command == "sync":
        return _plan_sync(args, src_loc, dst_loc, sizes)
    src, dst = args.src, args.dst
    if args.recursive and isinstance(src_loc, S3Url):
        src_loc = listed_prefix(src)  # as `aws s3 cp --recursive`: s3://b/dir means dir/
        src = str(src_loc)
        check_prefixes(src_loc, dst_loc, one_endpoint=True)  # one --endpoint-url
    many = args.recursive and (
        isinstance(src_loc, S3Url) or (isinstance(src_loc, Path) and src_loc.is_dir())
    )
    if not many:
        if isinstance(src_loc, S3Url) and src_loc.is_prefix:
            raise UsageError(f"{args.src!r} is a prefix: add --recursive to copy what is under it")
        if isinstance(src_loc, Path) and src_loc.is_dir():
            raise UsageError(f"{args.src!r} is a directory: add --recursive to copy its files")
        dst = str(into_directory(args.src, args.dst))
        check_distinct(src_loc, parse_location(dst), one_endpoint=True)
    return CopyPlan(src, dst, many, *sizes)


def _plan_sync(
    args: argparse.Namespace, src_loc: S3Url | Path, dst_loc: S3Url | Path, sizes: _Sizes
) -> CopyPlan:
    """The plan of ``sync``: two prefixes (``s3://b/p`` means ``p/``), or a prefix
    and a directory.  A source that is a local file, a source directory that does
    not exist (with ``--delete`` it would empty DST) and a destination that is a
    file are usage errors; whether an S3 source is an object takes a request
    (:func:`._run.refuse_an_object`)."""
    if isinstance(src_loc, Path):
        if not src_loc.exists():
            raise UsageError(f"sync copies a directory: {args.src!r} does not exist")
        if not src_loc.is_dir():
            raise UsageError(f"sync copies a prefix or a directory: {args.src!r} is a file; use cp")
    if isinstance(dst_loc, Path) and dst_loc.exists() and not dst_loc.is_dir():
        raise UsageError(
            f"sync copies into a prefix or a directory: {args.dst!r} is a file; use cp"
        )
    src = str(listed_prefix(args.src)) if isinstance(src_loc, S3Url) else args.src
    dst = str(listed_prefix(args.dst)) if isinstance(dst_loc, S3Url) else args.dst
    if (
        isinstance(src_loc, S3Url)
        and isinstance(dst_loc, S3Url)
        and check_prefixes(listed_prefix(src), listed_prefix(dst), one_endpoint=True)
    ):
        raise UsageError(
            f"destination prefix {dst!r} lies in source prefix {src!r}: "
            "a sync would find its own copies"
        )
    return CopyPlan(src, dst, True, *sizes)


def _plan_stream(args: argparse.Namespace, sizes: _Sizes) -> CopyPlan:
    """The plan of ``cp - s3://bucket/key`` or ``cp s3://bucket/key -``: one object."""
    if args.src == STDIO and args.dst == STDIO:
        raise UsageError("SRC and DST cannot both be '-' (at least one must be an s3:// URL)")
    if args.recursive:
        what = "sync" if args.skip_existing else "--recursive"
        raise UsageError(f"'-' (standard input or output) is one stream: {what} does not apply")
    # Python leaves sys.stdin or sys.stdout None when the descriptor was closed
    # when it started; a file opened since may have taken its number.
    if args.src == STDIO and sys.stdin is None:
        raise UsageError("SRC is '-' but standard input is closed")
    if args.dst == STDIO and sys.stdout is None:
        raise UsageError("DST is '-' but standard output is closed")
    other, name = (args.dst, "DST") if args.src == STDIO else (args.src, "SRC")
    location = parse_location(other)
    if not isinstance(location, S3Url):
        raise UsageError(
            f"with '-', {name} must be an s3:// URL (local to local copies are not supported)"
        )
    if not location.key or location.is_prefix:
        raise UsageError(
            f"with '-', {name} must name an object (s3://bucket/key), not a bucket or prefix "
            f"{other!r}"
        )
    return CopyPlan(args.src, args.dst, False, *sizes)
