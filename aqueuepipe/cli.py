"""The ``aqueuepipe`` command: ``aqueuepipe cp``, ``aqueuepipe sync`` and ``aqueuepipe demo``.

Exit status: 0 when every copy succeeded, 1 when any failed, 2 for a usage error
(a bad option, size or URL, found before anything is copied), 130 when
interrupted with Ctrl-C (SIGINT), 143 when terminated (SIGTERM: ``kill``,
``timeout``, ``docker stop``); either signal cancels the copies, which clean up
(abort their uploads, remove their temporary files) before the command exits.
Every copy goes through :func:`~aqueuepipe.copy_many`, a single object being a
batch of one; ``sync`` is ``cp --recursive`` with ``skip_existing``.  ``-`` as
SRC is standard input, as DST standard output.

Nothing printed ever holds credentials: messages name objects, never keys,
tokens or the userinfo part of a URL.  Nothing printed drives the terminal:
object names and messages have their control characters escaped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn, TextIO
from urllib.parse import urlsplit

from . import ByteBudget, TransferError, __version__
from ._report import failure_message, peak_rss, print_failure, printable, result_json
from ._units import format_size, parse_size
from .checksums import ALGORITHMS, s3_algorithm
from .files import StandardInput, StandardOutput
from .progress import ProgressDisplay
from .s3 import (
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    S3Url,
    is_s3_url,
    parse_location,
    resolve_endpoint_url,
)
from .s3._secrets import redact
from .transfer import (
    DEFAULT_BATCH_CONCURRENCY,
    DEFAULT_CONCURRENCY,
    TransferResult,
    copy_many,
)

__all__ = [
    "build_parser",
    "failure_message",
    "main",
    "peak_rss",
    "print_failure",
    "redact",
    "result_json",
]

#: Exit status when a copy failed, for a usage error, after Ctrl-C (128 + SIGINT)
#: and after SIGTERM (128 + SIGTERM), as a shell reports a process those signals ended.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

#: SRC or DST meaning standard input or standard output.
STDIO = "-"

DEFAULT_LIMIT = "256MiB"
DEFAULT_PART_SIZE = "8MiB"

_DESCRIPTION = """\
Copy S3 objects by streaming them, many at once, under one memory limit.

Bytes flow from the source to the destination without ever being held whole:
a batch of copies never buffers more than --limit bytes in all.  Hashes are
computed while the bytes pass, and every part is checked against the ETag the
server returns for it."""

_EPILOG = """\
examples:
  aqueuepipe cp s3://src-bucket/data.bin s3://dst-bucket/data.bin
  aqueuepipe cp --recursive --limit 100MB s3://src-bucket/logs/ s3://dst-bucket/logs/
  aqueuepipe cp ./disk.img s3://bucket/images/
  pg_dump db | aqueuepipe cp - s3://bucket/db.sql
  aqueuepipe sync s3://src-bucket/logs/ s3://dst-bucket/logs/
  aqueuepipe demo

Run 'aqueuepipe cp --help' for the options of a copy.  Credentials and region
come from the usual AWS settings (environment variables, ~/.aws/config, an
instance role); set AWS_ENDPOINT_URL, or pass --endpoint-url, for an
S3-compatible server."""

_CP_DESCRIPTION = """\
Copy SRC to DST by streaming.  Either may be an s3://bucket/key URL or a local
path, and at least one of them is an S3 URL: bucket to bucket, upload, or
download.  Objects of --part-size or more are copied in parts, uploaded while
the source still streams.

With --recursive, SRC is a prefix (s3://bucket/dir/) or a local directory and
everything below it is copied, keeping the relative paths under DST.  Without
it, a DST that ends in '/' (or an existing local directory) receives the object
under its own name.

'-' as SRC reads standard input (of any length) into the object DST; as DST it
writes the object SRC to standard output, and then the progress, the summary
and --json go to standard error.  A file named '-' is './-'."""

_CP_EPILOG = """\
sizes:
  30MB, 1.5GB       powers of 1000 (KB, MB, GB, TB)
  64MiB, 8MiB       powers of 1024 (KiB, MiB, GiB, TiB)
  30_000_000, 1024  bytes

examples:
  copy one object between buckets (or endpoints, with AWS_ENDPOINT_URL):
    aqueuepipe cp s3://src-bucket/data.bin s3://dst-bucket/data.bin
  copy a prefix, 32 objects at a time, holding at most 100 MB:
    aqueuepipe cp -r --concurrency 32 --limit 100MB s3://src/logs/ s3://dst/logs/
  upload a directory, and download an object, with SHA-256 hashes:
    aqueuepipe cp -r ./photos s3://bucket/photos/ --checksum sha256
    aqueuepipe cp s3://bucket/photos/cat.jpg ./cat.jpg --checksum md5 --checksum sha256
  machine-readable results, one JSON object a line:
    aqueuepipe cp -r s3://src/logs/ s3://dst/logs/ --json > results.jsonl
  stream standard input into an object, and an object to standard output:
    pg_dump db | aqueuepipe cp - s3://bucket/db.sql
    aqueuepipe cp s3://bucket/backup.tar - | tar x

exit status: 0 all copies succeeded, 1 a copy failed (or standard output was
closed early), 2 usage error, 130 interrupted (SIGINT), 143 terminated
(SIGTERM)."""

_SYNC_DESCRIPTION = """\
Make DST hold what SRC holds: copy every object under the prefix or directory
SRC that DST does not already have, keeping the relative paths, as
'cp --recursive' does.  An object is already there when DST has one of the same
size and the same content evidence (an MD5 ETag in the source's part layout, or
an S3 checksum); a destination that cannot be compared is copied again.
Nothing is deleted at DST.  The summary counts the objects copied and skipped;
with --json, each result says whether it was skipped."""

_SYNC_EPILOG = """\
examples:
  mirror a prefix; run it again and it copies only what changed:
    aqueuepipe sync s3://src/logs/ s3://dst/logs/
  download a prefix, or upload a directory, where it is missing or differs:
    aqueuepipe sync s3://bucket/photos/ ./photos
    aqueuepipe sync ./photos s3://bucket/photos/

exit status: 0 all copies succeeded, 1 a copy failed, 2 usage error,
130 interrupted (SIGINT), 143 terminated (SIGTERM)."""

_DEMO_DESCRIPTION = """\
Start an S3 server (moto) inside this process on a free loopback port, create
two buckets and objects of 1, 5, 20 and 100 MB, copy them all at once under a
30 MB memory limit with progress bars, verify every MD5 and SHA-256 against the
original bytes and read every copy back, then print a table of sizes,
throughput and peak memory.  It never talks to AWS.  Exits 0 when every object
verified, 1 otherwise."""


class UsageError(Exception):
    """A bad command line, found before anything was copied (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose error messages cannot leak or drive the terminal.

    argparse quotes what was typed (``unrecognized arguments: ...``); a URL may
    hold ``user:password@``, an object name control characters.
    """

    def error(self, message: str) -> NoReturn:
        super().error(printable(redact(message)))


# -- arguments --------------------------------------------------------------------


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
        description=_DESCRIPTION,
        epilog=_EPILOG,
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
        description=_CP_DESCRIPTION,
        epilog=_CP_EPILOG,
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
        description=_SYNC_DESCRIPTION,
        epilog=_SYNC_EPILOG,
        locations="s3://bucket/prefix/ or a directory",
    )
    sync.set_defaults(recursive=True, skip_existing=True)

    demo = commands.add_parser(
        "demo",
        help="copy objects through an embedded S3 server and verify them",
        description=_DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_run_demo)
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
    parser.set_defaults(run=_run_cp, parser=parser)
    _add_copy_options(parser)
    return parser


def _add_copy_options(parser: argparse.ArgumentParser) -> None:
    """The options ``cp`` and ``sync`` share."""
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
        "--checksum",
        action="append",
        type=str.lower,
        choices=ALGORITHMS,
        metavar="ALGO",
        help="hash computed while streaming and reported; repeat for several "
        f"(default md5; one of {', '.join(ALGORITHMS)})",
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


# -- entry point ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aqueuepipe`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status; the console script passes it to ``sys.exit``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status: int = args.run(args)
        return status
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return _exit_status(exc.code)
    except KeyboardInterrupt:
        # Ctrl-C outside the copies' own handling (while the command starts or
        # ends): there is nothing of theirs to clean up.
        return _interrupted(signal.SIGINT)
    except BrokenPipeError:
        # Standard output was closed early (`aqueuepipe cp ... --json | head`).
        # Point it at devnull so the interpreter's final flush does not fail again.
        _discard_stdout()
        return EXIT_FAILED


def _interrupted(signum: int) -> int:
    """Say that a signal stopped the command; return the exit status it implies."""
    if signum == signal.SIGTERM:
        print("aqueuepipe: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    print("aqueuepipe: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_FAILED


# -- cp ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CopyPlan:
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


def _run_cp(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    try:
        plan = _plan_copy(args)
    except (UsageError, ValueError) as exc:  # ValueError: a derived URL broke a rule
        parser.error(str(exc))  # prints the usage, exits with status 2
    try:
        if args.scheduler is not None or args.dask is not None:
            return _copy_on_cluster(plan, args)
        signals = _Signals()
        try:
            return asyncio.run(_copy(plan, args, signals))
        except asyncio.CancelledError:
            if signals.received is None:
                raise
            # The copies were cancelled and have cleaned up.
            return _interrupted(signals.received)
    except UsageError as exc:
        parser.error(str(exc))


class _Signals:
    """SIGINT and SIGTERM cancel the copies, which then clean up as on any cancellation.

    The first of them cancels the main task; :attr:`received` says which it was.
    Later ones change nothing: a second Ctrl-C pressed out of impatience, or a
    SIGTERM sent to the process and again to its group, must not cut the cleanup
    short and leave uploads open.  The cleanup's requests are bounded by the retry
    policy's timeouts; SIGKILL, or Ctrl-\\ (SIGQUIT), stops the command at once.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    @contextlib.contextmanager
    def handled(self) -> Iterator[None]:
        """Handle the signals while the block runs (in the main task of the event loop)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed: list[signal.Signals] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is signal.SIG_IGN:
                # Ignored by whoever started us (`nohup`, a background job of a
                # script): a Ctrl-C meant for another process is not ours.
                continue
            try:
                loop.add_signal_handler(signum, self._on_signal, signum, task)
            except (NotImplementedError, RuntimeError, ValueError):
                # Windows, or not the main thread: asyncio.run's own Ctrl-C
                # handling (cancel the main task, then KeyboardInterrupt) remains.
                continue
            installed.append(signum)
        try:
            yield
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int, task: asyncio.Task[object]) -> None:
        if self.received is None:
            self.received = signum
            task.cancel()


def _plan_copy(args: argparse.Namespace) -> _CopyPlan:
    """Check SRC, DST and the endpoint; work out the pair copy_many gets.

    Raises:
        UsageError: anything that would fail every copy, found without I/O
            beyond looking at local paths.
    """
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
    if endpoint_url is not None and "@" in urlsplit(endpoint_url).netloc:
        # The HTTP client refuses such URLs on every request; say so now, and
        # without repeating what was before the "@".
        raise UsageError(
            f"the S3 endpoint {redact(endpoint_url)!r} must not hold user:password@ "
            "(credentials come from the AWS environment variables or configuration)"
        )
    _refuse_userinfo("SRC", args.src)
    _refuse_userinfo("DST", args.dst)
    if STDIO in (args.src, args.dst):
        return _plan_stream(args, limit=limit, part_size=part_size, endpoint_url=endpoint_url)
    try:
        src_loc = parse_location(args.src)
        dst_loc = parse_location(args.dst)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(src_loc, S3Url) and not isinstance(dst_loc, S3Url):
        raise UsageError(
            "SRC or DST must be an s3:// URL (local to local copies are not supported)"
        )
    src, dst = args.src, args.dst
    if args.recursive:
        if isinstance(src_loc, S3Url) and src_loc.key and not src_loc.key.endswith("/"):
            # As with `aws s3 cp --recursive`: s3://bucket/dir means the prefix dir/.
            src_loc = S3Url(src_loc.bucket, src_loc.key + "/")
            src = str(src_loc)
        _check_not_inside(src_loc, dst_loc)
    many = args.recursive and (
        isinstance(src_loc, S3Url) or (isinstance(src_loc, Path) and src_loc.is_dir())
    )
    if not many:
        if isinstance(src_loc, S3Url) and src_loc.is_prefix:
            raise UsageError(f"{args.src!r} is a prefix: add --recursive to copy what is under it")
        if isinstance(src_loc, Path) and src_loc.is_dir():
            raise UsageError(f"{args.src!r} is a directory: add --recursive to copy its files")
        dst = _into_directory(src_loc, dst_loc, args.dst)
        if parse_location(dst) == src_loc:
            raise UsageError(f"SRC and DST are the same object: {src!r}")
    return _CopyPlan(
        src=src,
        dst=dst,
        recursive=many,
        limit=limit,
        part_size=part_size,
        endpoint_url=endpoint_url,
    )


def _refuse_userinfo(what: str, location: str) -> None:
    """Refuse ``scheme://user:password@...`` without repeating what was before the "@".

    The URL parser would quote the rest of the authority ("bucket name
    'user:SECRET@bucket' ..."), and with it the secret.
    """
    if "://" not in location:
        return
    try:
        authority = urlsplit(location).netloc
    except ValueError:
        authority = location.partition("://")[2].partition("/")[0]
    if "@" in authority:
        raise UsageError(
            f"{what} {redact(location)!r} must not hold user:password@ (credentials come "
            "from the AWS environment variables or configuration)"
        )


def _plan_stream(
    args: argparse.Namespace, *, limit: int, part_size: int, endpoint_url: str | None
) -> _CopyPlan:
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
    try:
        location = parse_location(other)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(location, S3Url):
        raise UsageError(
            f"with '-', {name} must be an s3:// URL (local to local copies are not supported)"
        )
    if not location.key or location.is_prefix:
        raise UsageError(
            f"with '-', {name} must name an object (s3://bucket/key), not a bucket or prefix "
            f"{other!r}"
        )
    return _CopyPlan(
        src=args.src,
        dst=args.dst,
        recursive=False,
        limit=limit,
        part_size=part_size,
        endpoint_url=endpoint_url,
    )


def _into_directory(src_loc: S3Url | Path, dst_loc: S3Url | Path, dst: str) -> str:
    """DST for one object: a prefix or a directory gets the object's own name."""
    name = src_loc.key.rpartition("/")[2] if isinstance(src_loc, S3Url) else src_loc.name
    if isinstance(dst_loc, S3Url):
        if dst_loc.is_prefix:
            return str(S3Url(dst_loc.bucket, dst_loc.key + name))
        return dst
    if dst.endswith(("/", os.sep)) or dst_loc.is_dir():
        return str(dst_loc / name)
    return dst


def _check_not_inside(src_loc: S3Url | Path, dst_loc: S3Url | Path) -> None:
    """Refuse a recursive copy into its own source: the listing would find the copies."""
    if isinstance(src_loc, S3Url) and isinstance(dst_loc, S3Url):
        dst_prefix = dst_loc.key if dst_loc.is_prefix else dst_loc.key + "/"
        if src_loc.bucket == dst_loc.bucket and dst_prefix.startswith(src_loc.key):
            raise UsageError(f"DST {str(dst_loc)!r} is inside SRC {str(src_loc)!r}")


async def _copy(plan: _CopyPlan, args: argparse.Namespace, signals: _Signals) -> int:
    with signals.handled():
        stdin = StandardInput() if plan.stdin else None
        stdout = StandardOutput() if plan.stdout else None
        try:
            return await _copy_batch(plan, args, stdin, stdout)
        finally:
            for stream in (stdin, stdout):
                if stream is not None:
                    stream.close()


async def _copy_batch(
    plan: _CopyPlan,
    args: argparse.Namespace,
    stdin: StandardInput | None,
    stdout: StandardOutput | None,
) -> int:
    """Run the batch; print each failure, the JSON lines and the summary."""
    budget = ByteBudget(plan.limit)
    display = ProgressDisplay(enabled=False if (args.quiet or args.json) else None)
    heard = _Heard(display)
    # Standard output carries the object's bytes when DST is '-': everything else
    # goes to standard error.
    report: TextIO = sys.stderr if stdout is not None else sys.stdout
    try:
        batch = copy_many(
            [(stdin or plan.src, stdout or plan.dst)],
            recursive=plan.recursive,
            budget=budget,
            part_size=plan.part_size,
            concurrency=args.concurrency,
            part_concurrency=args.part_concurrency,
            checksums=args.checksum or ("md5",),
            checksum_algorithm=args.s3_checksum,
            verify=args.verify,
            endpoint_url=plan.endpoint_url,
            progress=heard,
            skip_existing=args.skip_existing,
        )
    except ValueError as exc:  # a bad option, before anything ran
        raise UsageError(str(exc)) from None
    # Closing the batch cancels the copies in flight and waits for their cleanup.
    summary = _Summary(count_skipped=args.skip_existing)
    started = time.perf_counter()
    stdout_closed = False

    def committed(result: TransferResult) -> None:
        if args.json:
            print(json.dumps(result_json(result)), file=report, flush=True)

    with display, _committed_counts(plan, heard, summary, committed):
        async with contextlib.aclosing(batch) as results:
            async for result in results:
                # A stream is named "-" as on the command line.
                result = replace(
                    result,
                    src=STDIO if stdin is not None else result.src,
                    dst=STDIO if stdout is not None else result.dst,
                )
                summary.add(result)
                if stdout is not None and _is_broken_pipe(result.error):
                    # The reader of standard output stopped reading (`| head -c 10`):
                    # its choice, not an error to shout about.
                    stdout_closed = True
                elif not result.ok:
                    print_failure(result)
                if args.json:
                    print(json.dumps(result_json(result)), file=report, flush=True)
    elapsed = time.perf_counter() - started
    if stdout_closed:
        # Exit status 1, as for any copy that did not complete: the object did not
        # all reach its destination, and `set -o pipefail` must be able to tell
        # (as it can when `cat` dies of SIGPIPE).  Not 141: no signal ended us.
        # Standard output now goes nowhere, so the interpreter's last flush at
        # exit cannot fail on it again.
        _discard_stdout()
        return EXIT_FAILED
    if not (args.json or args.quiet):
        for line in summary.lines(elapsed, budget):
            print(line, file=report)
    return EXIT_FAILED if summary.failed else 0


class _Heard:
    """The progress listener of a batch: the display, when it shows, and the last
    copy that finished, so a copy cancelled after its object was written still counts."""

    __slots__ = ("display", "last")

    def __init__(self, display: ProgressDisplay) -> None:
        self.display = display
        self.last: TransferResult | None = None

    def transfer_started(self, src: str, dst: str, total: int | None) -> None:
        if self.display.enabled:
            self.display.transfer_started(src, dst, total)

    def transfer_advanced(self, src: str, dst: str, nbytes: int) -> None:
        if self.display.enabled:
            self.display.transfer_advanced(src, dst, nbytes)

    def transfer_finished(self, result: TransferResult) -> None:
        self.last = result
        if self.display.enabled:
            self.display.transfer_finished(result)


@contextlib.contextmanager
def _committed_counts(
    plan: _CopyPlan, heard: _Heard, summary: _Summary, on_done: Callable[[TransferResult], None]
) -> Iterator[None]:
    """A signal that arrives while the one object of a plain ``cp`` is being
    completed (CompleteMultipartUpload runs to its end) interrupted nothing: the
    object exists.  Then the copy counts as done instead of "interrupted", and the
    command ends as after any successful copy (the main task's cancellation is
    withdrawn: this is the command's own top-level task)."""
    try:
        yield
    except asyncio.CancelledError:
        last = heard.last
        if plan.recursive or last is None or not last.ok or summary.copied or summary.failed:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        summary.add(last)
        on_done(last)


def _is_broken_pipe(error: BaseException | None) -> bool:
    """Whether ``error`` is, or was caused by, a write to a pipe nobody reads any more."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, BrokenPipeError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _copy_on_cluster(plan: _CopyPlan, args: argparse.Namespace) -> int:
    """``cp --recursive`` with ``--scheduler``/``--dask``: aqueuepipe.distributed.copy_prefix."""
    if not (plan.recursive and is_s3_url(plan.src) and is_s3_url(plan.dst)):
        raise UsageError("--scheduler and --dask copy a prefix: use --recursive and two s3:// URLs")
    try:
        import distributed

        from .distributed import ObjectOutcome, copy_prefix
    except ImportError:
        print(
            "aqueuepipe: --scheduler and --dask need pip install 'aqueuepipe[dask]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    src_bucket, dst_bucket = parse_location(plan.src), parse_location(plan.dst)
    assert isinstance(src_bucket, S3Url) and isinstance(dst_bucket, S3Url)

    def report(outcome: ObjectOutcome) -> None:
        if not outcome.ok:
            src = printable(str(S3Url(src_bucket.bucket, outcome.key)))
            dst = printable(str(S3Url(dst_bucket.bucket, outcome.dst_key)))
            print(
                f"error: {src} -> {dst}: {printable(redact(outcome.error or ''))}", file=sys.stderr
            )
        if args.json:
            print(json.dumps(outcome.to_json()), flush=True)

    with contextlib.ExitStack() as stack:
        if args.scheduler is not None:
            client = stack.enter_context(distributed.Client(args.scheduler))
        else:
            local = distributed.LocalCluster(
                n_workers=args.dask,
                threads_per_worker=2,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not 8787: may be taken
            )
            client = stack.enter_context(distributed.Client(stack.enter_context(local)))
        try:
            summary = copy_prefix(
                plan.src,
                plan.dst,
                client=client,
                per_worker_limit=plan.limit,
                part_size=plan.part_size,
                concurrency=args.concurrency,
                part_concurrency=args.part_concurrency,
                checksums=args.checksum or ("md5",),
                checksum_algorithm=args.s3_checksum,
                endpoint_url=plan.endpoint_url,
                on_outcome=report,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except TransferError as exc:  # the source prefix could not be listed
            print(f"error: {failure_message(exc)}", file=sys.stderr)
            return EXIT_FAILED
    if not (args.json or args.quiet):
        peak = max(summary.worker_peaks.values(), default=0)
        print(
            f"copied {summary.objects} objects ({format_size(summary.bytes)}) in "
            f"{summary.seconds:.2f} s at {summary.mb_per_s:.1f} MB/s, {summary.skipped} "
            f"already there, {summary.failures} failed"
        )
        print(
            f"{summary.shards} shards on {len(summary.worker_peaks)} workers; peak buffered "
            f"per worker {format_size(peak)} (limit {format_size(summary.worker_limit)})"
        )
    return EXIT_FAILED if summary.failures else 0


@dataclass(slots=True)
class _Summary:
    count_skipped: bool = False  # say how many were skipped, even when none was
    copied: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    unverified: int = 0
    evidence: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, result: TransferResult) -> None:
        if result.skipped:
            self.skipped += 1
        elif result.ok:
            self.copied += 1
            self.bytes += result.size
            self.evidence.update(result.verified)
            if not result.verified:
                self.unverified += 1
        else:
            self.failed += 1

    def verification(self) -> str:
        """What proved the copies, e.g. "verified: source:crc32 x3, destination:etag-md5 x3"."""
        shown = ", ".join(f"{label} x{count}" for label, count in sorted(self.evidence.items()))
        line = f"verified: {shown or 'nothing'}"
        if self.unverified:
            line += f"; {self.unverified} without evidence"
        return line

    def lines(self, elapsed: float, budget: ByteBudget) -> list[str]:
        rate = self.bytes / elapsed if elapsed > 0 else 0.0
        objects = f"{self.copied} object{'' if self.copied == 1 else 's'}"
        rss = peak_rss()
        skipped = (
            f"{self.skipped} skipped (already there), "
            if self.skipped or self.count_skipped
            else ""
        )
        return [
            f"copied {objects} ({format_size(self.bytes)}) in {elapsed:.2f} s "
            f"at {rate / 1e6:.1f} MB/s, {skipped}{self.failed} failed",
            self.verification(),
            f"peak memory: {format_size(budget.peak)} buffered (limit "
            f"{format_size(budget.limit)}), process peak RSS "
            + (format_size(rss) if rss is not None else "unknown"),
        ]


# -- demo ---------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import DemoUnavailableError, run_demo

    try:
        return run_demo(quiet=args.quiet)
    except DemoUnavailableError as exc:
        print(f"aqueuepipe demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
