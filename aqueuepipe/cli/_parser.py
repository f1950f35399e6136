"""The argument parser of the ``aqueuepipe`` command: its sub-commands, their options,
and the checks argparse makes of each value (a size, a count, an algorithm).

Each sub-command's ``run`` default is the function that carries it out.  An error
message never repeats credentials or control characters that were typed.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import __version__
from .._report import printable
from .._units import parse_size
from ..checksums import ALGORITHMS, s3_algorithm
from ..s3._secrets import redact
from ..transfer import DEFAULT_BATCH_CONCURRENCY, DEFAULT_CONCURRENCY
from ._help import (
    CP_DESCRIPTION,
    CP_EPILOG,
    DEFAULT_LIMIT,
    DEFAULT_PART_SIZE,
    DEMO_DESCRIPTION,
    DESCRIPTION,
    EPILOG,
    SYNC_DESCRIPTION,
    SYNC_EPILOG,
)
from ._run import run_cp, run_demo_command
from ._uploads import add_uploads_command


class _Parser(argparse.ArgumentParser):
    """An argument parser whose error messages cannot leak or drive the terminal.

    argparse quotes what was typed (``unrecognized arguments: ...``); a URL may
    hold ``user:password@``, an object name control characters.
    """

    def error(self, message: str) -> NoReturn:
        super().error(printable(redact(message)))


def _size(text: str) -> int:
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be more than 0 bytes")
    return size


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid count {text!r}: expected a whole number"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be at least 1")
    return value


def _is_s3_checksum(name: str) -> bool:
    try:
        s3_algorithm(name)
    except ValueError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aqueuepipe`` command."""
    parser = _Parser(
        prog="aqueuepipe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        title="commands",
        dest="command",
        metavar="COMMAND",
        required=True,
        help="run 'aqueuepipe COMMAND --help' for its options",
    )

    cp = _add_copy_command(
        commands,
        "cp",
        summary="copy an object, a prefix, or local files to or from S3",
        description=CP_DESCRIPTION,
        epilog=CP_EPILOG,
        locations="s3://bucket/key, s3://bucket/prefix/, or a path",
    )
    cp.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="copy everything under the prefix or directory SRC",
    )
    cp.set_defaults(skip_existing=False)
    sync = _add_copy_command(
        commands,
        "sync",
        summary="copy what is missing or different under a prefix or directory",
        description=SYNC_DESCRIPTION,
        epilog=SYNC_EPILOG,
        locations="s3://bucket/prefix/ or a directory",
    )
    sync.set_defaults(recursive=True, skip_existing=True)
    _add_sync_options(sync)

    demo = commands.add_parser(
        "demo",
        help="copy objects through a local S3 server (its own process) and verify them",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=run_demo_command)
    add_uploads_command(commands)
    return parser


def _add_copy_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    *,
    summary: str,
    description: str,
    epilog: str,
    locations: str,
) -> argparse.ArgumentParser:
    """Add ``cp`` or ``sync``: SRC and DST (``locations`` says what they may be),
    and the options the two share."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", metavar="SRC", help=locations)
    parser.add_argument("dst", metavar="DST", help=locations)
    parser.set_defaults(run=run_cp, parser=parser)
    _add_copy_options(parser, hash_flag="--hash" if name == "sync" else "--checksum")
    return parser


class _AppendFilter(argparse.Action):
    """``--include``/``--exclude``: one list of ``(kind, pattern)`` in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        kind = "include" if option_string == "--include" else "exclude"
        filters = [*(getattr(namespace, self.dest, None) or []), (kind, values)]
        setattr(namespace, self.dest, filters)


def _add_sync_options(parser: argparse.ArgumentParser) -> None:
    """What only ``sync`` has: deletions, the dry run, filters and the comparison."""
    group = parser.add_argument_group("what sync copies and deletes")
    group.add_argument(
        "--delete",
        action="store_true",
        help="delete what DST holds and SRC does not (after every copy succeeded)",
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be copied and deleted; write and delete nothing",
    )
    for flag, does in (("--exclude", "leave out"), ("--include", "bring back")):
        group.add_argument(
            flag,
            dest="filters",
            action=_AppendFilter,
            default=[],
            metavar="PATTERN",
            help=f"{does} the keys matching PATTERN (relative to SRC, * crossing /); "
            "repeatable, the last filter that matches a key decides",
        )
    compare = group.add_mutually_exclusive_group()
    compare.add_argument(
        "--checksum",
        dest="compare",
        action="store_const",
        const="checksum",
        default="listing",
        help="compare content (a HeadObject per object of the same size) instead of "
        "size and ETag, or size and time",
    )
    compare.add_argument(
        "--size-only",
        dest="compare",
        action="store_const",
        const="size_only",
        help="an object of the same size is already there",
    )


def _add_copy_options(parser: argparse.ArgumentParser, *, hash_flag: str) -> None:
    """The options ``cp`` and ``sync`` share; ``hash_flag`` names the hashes'
    (``sync``'s ``--checksum`` is its comparison, as in aws cli and rclone)."""
    limits = parser.add_argument_group("memory and speed")
    limits.add_argument(
        "--limit",
        type=_size,
        metavar="SIZE",
        help=f"most bytes buffered at once by all copies together (default {DEFAULT_LIMIT})",
    )
    limits.add_argument(
        "--part-size",
        type=_size,
        metavar="SIZE",
        help=f"size of multipart parts, 5MiB to 5GiB (default {DEFAULT_PART_SIZE}; "
        "grown for objects that would need more than 10,000 parts, and every 1,000 "
        "parts of a stream, up to half the limit)",
    )
    limits.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_BATCH_CONCURRENCY,
        metavar="N",
        help="objects copied at once (default %(default)s)",
    )
    limits.add_argument(
        "--part-concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="parts in flight per object (default %(default)s)",
    )
    integrity = parser.add_argument_group("integrity")
    integrity.add_argument(
        hash_flag,
        dest="checksum",
        action="append",
        type=str.lower,
        choices=ALGORITHMS,
        metavar="ALGO",
        help="hash computed while streaming and reported; repeat for several (none by "
        f"default: copies within one endpoint are then made by the server; one of "
        f"{', '.join(ALGORITHMS)})",
    )
    s3_checksums = [name for name in ALGORITHMS if _is_s3_checksum(name)]
    integrity.add_argument(
        "--s3-checksum",
        type=str.lower,
        choices=[*s3_checksums, "md5"],
        metavar="ALGO",
        help="the S3 checksum sent with every request and checked (default crc64nvme, "
        f"with Content-MD5 where the server is not Amazon S3; one of "
        f"{', '.join(s3_checksums)}; md5 sends Content-MD5 only)",
    )
    integrity.add_argument(
        "--stream",
        dest="server_side",
        action="store_false",
        help="stream copies within one endpoint through this machine instead of "
        "letting the server copy them (CopyObject, UploadPartCopy)",
    )
    integrity.add_argument(
        "--verify",
        choices=("auto", "required"),
        default="auto",
        help="required: fail a copy unless both of its S3 ends gave evidence that the "
        "bytes are the source's (default %(default)s: use what evidence there is)",
    )
    connection = parser.add_argument_group("connection")
    connection.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="S3 endpoint of an S3-compatible server (default: AWS_ENDPOINT_URL_S3, "
        "AWS_ENDPOINT_URL, else AWS)",
    )
    connection.add_argument(
        "--max-rate",
        type=_size,
        metavar="SIZE",
        help="at most SIZE bytes per second (50MB), on average, for all copies together, "
        "in each direction (not on a cluster)",
    )
    resuming = parser.add_argument_group("resuming")
    resuming.add_argument(
        "--resume",
        action="store_true",
        help="keep a journal of each multipart upload to S3; an interrupted copy (a crash, "
        "a kill, SIGINT, SIGTERM) leaves its upload open, and the same command with "
        "--resume continues it, sending only the parts the server lacks",
    )
    resuming.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the journals are (default $XDG_CACHE_HOME/aqueuepipe/uploads, else "
        "~/.cache/aqueuepipe/uploads)",
    )
    cluster = parser.add_argument_group(
        "on a Dask cluster (a prefix, S3 to S3; needs aqueuepipe[dask])"
    ).add_mutually_exclusive_group()
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="shard the copy across the workers of the Dask scheduler at ADDRESS "
        "(tcp://host:8786); --limit is then the memory limit of each worker",
    )
    cluster.add_argument(
        "--dask",
        type=_positive_int,
        metavar="N",
        help="the same on a local Dask cluster of N worker processes started for the copy",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars and no summary; errors are still printed",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per copy on standard output (standard error when "
        "DST is '-'), no progress bars",
    )
