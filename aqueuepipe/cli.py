"""The ``aqueuepipe`` command: ``aqueuepipe cp`` and ``aqueuepipe demo``.

Exit status: 0 when every copy succeeded, 1 when any failed, 2 for a usage error
(a bad option, size or URL, found before anything is copied), 130 when
interrupted with Ctrl-C.  Every copy goes through :func:`~aqueuepipe.copy_many`,
a single object being a batch of one.  Nothing printed ever holds credentials:
messages name objects, never keys, tokens or the userinfo part of a URL.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from .__about__ import __version__
from ._budget import ByteBudget
from ._errors import AqueuepipeError, TransferError
from ._units import format_size, parse_size
from .checksums import ALGORITHMS, s3_algorithm
from .progress import ProgressDisplay
from .s3._client import resolve_endpoint_url
from .s3._parts import MIN_PART_SIZE
from .s3._urls import S3Url, is_s3_url, parse_location
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

#: Exit status when a copy failed, for a usage error, and after Ctrl-C.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

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
under its own name."""

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

exit status: 0 all copies succeeded, 1 a copy failed, 2 usage error,
130 interrupted."""

_DEMO_DESCRIPTION = """\
Start an S3 server (moto) inside this process on a free loopback port, create
two buckets and objects of 1, 5, 20 and 100 MB, copy them all at once under a
30 MB memory limit with progress bars, verify every MD5 and SHA-256 against the
original bytes and read every copy back, then print a table of sizes,
throughput and peak memory.  It never talks to AWS.  Exits 0 when every object
verified, 1 otherwise."""


class UsageError(Exception):
    """A bad command line, found before anything was copied (exit status 2)."""


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
    parser = argparse.ArgumentParser(
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

    cp = commands.add_parser(
        "cp",
        help="copy an object, a prefix, or local files to or from S3",
        description=_CP_DESCRIPTION,
        epilog=_CP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cp.add_argument("src", metavar="SRC", help="s3://bucket/key, s3://bucket/prefix/, or a path")
    cp.add_argument("dst", metavar="DST", help="s3://bucket/key, s3://bucket/prefix/, or a path")
    cp.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="copy everything under the prefix or directory SRC",
    )
    limits = cp.add_argument_group("memory and speed")
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
        help=f"size of multipart parts, at least 5MiB (default {DEFAULT_PART_SIZE}; "
        "grown for objects that would need more than 10,000 parts)",
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
    integrity = cp.add_argument_group("integrity")
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
    connection = cp.add_argument_group("connection")
    connection.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="S3 endpoint of an S3-compatible server (default: AWS_ENDPOINT_URL_S3, "
        "AWS_ENDPOINT_URL, else AWS)",
    )
    cluster = cp.add_argument_group(
        "on a Dask cluster (with --recursive, S3 to S3; needs aqueuepipe[dask])"
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
    output = cp.add_argument_group("output")
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars and no summary; errors are still printed",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per copy on standard output, no progress bars",
    )
    cp.set_defaults(run=_run_cp, parser=cp)

    demo = commands.add_parser(
        "demo",
        help="copy objects through an embedded S3 server and verify them",
        description=_DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_run_demo)
    return parser


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
        # asyncio.run() has cancelled the copies in flight and waited for them to
        # clean up (abort uploads, remove partial files) before re-raising.
        print("aqueuepipe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Standard output was closed early (`aqueuepipe cp ... --json | head`).
        # Point it at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


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


def _run_cp(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    try:
        plan = _plan_copy(args)
    except (UsageError, ValueError) as exc:  # ValueError: a derived URL broke a rule
        parser.error(_printable(redact(str(exc))))  # prints the usage, exits with status 2
    try:
        if args.scheduler is not None or args.dask is not None:
            return _copy_on_cluster(plan, args)
        return asyncio.run(_copy(plan, args))
    except UsageError as exc:
        parser.error(_printable(redact(str(exc))))


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


async def _copy(plan: _CopyPlan, args: argparse.Namespace) -> int:
    budget = ByteBudget(plan.limit)
    display = ProgressDisplay(enabled=False if (args.quiet or args.json) else None)
    try:
        batch = copy_many(
            [(plan.src, plan.dst)],
            recursive=plan.recursive,
            budget=budget,
            part_size=plan.part_size,
            concurrency=args.concurrency,
            part_concurrency=args.part_concurrency,
            checksums=args.checksum or ("md5",),
            checksum_algorithm=args.s3_checksum,
            verify=args.verify,
            endpoint_url=plan.endpoint_url,
            progress=display if display.enabled else None,
        )
    except ValueError as exc:  # a bad option, before anything ran
        raise UsageError(str(exc)) from None
    # Closing the batch cancels the copies in flight and waits for their cleanup.
    summary = _Summary()
    started = time.perf_counter()
    with display:
        async with contextlib.aclosing(batch) as results:
            async for result in results:
                summary.add(result)
                if not result.ok:
                    print_failure(result)
                if args.json:
                    print(json.dumps(result_json(result)), flush=True)
    elapsed = time.perf_counter() - started
    if not (args.json or args.quiet):
        for line in summary.lines(elapsed, budget):
            print(line)
    return EXIT_FAILED if summary.failed else 0


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
            src = _printable(str(S3Url(src_bucket.bucket, outcome.key)))
            dst = _printable(str(S3Url(dst_bucket.bucket, outcome.dst_key)))
            print(
                f"error: {src} -> {dst}: {_printable(redact(outcome.error or ''))}", file=sys.stderr
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
    copied: int = 0
    failed: int = 0
    bytes: int = 0
    unverified: int = 0
    evidence: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, result: TransferResult) -> None:
        if result.ok:
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
        return [
            f"copied {objects} ({format_size(self.bytes)}) in {elapsed:.2f} s "
            f"at {rate / 1e6:.1f} MB/s, {self.failed} failed",
            self.verification(),
            f"peak memory: {format_size(budget.peak)} buffered (limit "
            f"{format_size(budget.limit)}), process peak RSS "
            + (format_size(rss) if rss is not None else "unknown"),
        ]


def failure_message(error: BaseException) -> str:
    """The one-line, credential-free description of a failed copy's error."""
    if isinstance(error, TransferError):
        message = error.reason
    elif isinstance(error, AqueuepipeError | ValueError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
    return _printable(redact(message))


def print_failure(result: TransferResult, file: TextIO | None = None) -> None:
    """Print ``error: SRC -> DST: MESSAGE`` for a failed result on standard error.

    Errors aqueuepipe expects (its own, and ``ValueError`` for bad input) get that
    one line; anything else is a bug, and its traceback follows.
    """
    assert result.error is not None
    out = sys.stderr if file is None else file
    src, dst = _printable(result.src), _printable(result.dst)
    print(f"error: {src} -> {dst}: {failure_message(result.error)}", file=out)
    if not isinstance(result.error, AqueuepipeError | ValueError):
        lines = traceback.format_exception(result.error)
        print(redact("".join(lines)), end="", file=out)


def result_json(result: TransferResult) -> dict[str, Any]:
    """A result as a JSON-ready dict; ``error`` is a message (None when it succeeded)."""
    return {
        "src": result.src,
        "dst": result.dst,
        "ok": result.ok,
        "size": result.size,
        "etag": result.etag,
        "parts": result.parts,
        "checksums": dict(result.checksums),
        "verified": list(result.verified),
        "seconds": round(result.seconds, 6),
        "throughput": round(result.throughput, 1),
        "error": None if result.error is None else failure_message(result.error),
        "error_type": None if result.error is None else type(result.error).__name__,
    }


# -- output hygiene -----------------------------------------------------------------

# user:password@ in any URL-looking text.
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def redact(text: str) -> str:
    """``text`` without URL userinfo or the values of the AWS secret variables."""
    text = _USERINFO_RE.sub(r"\g<scheme>", text)
    for name in _SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 16:  # shorter values are test fakes; they would mangle words
            text = text.replace(value, "<redacted>")
    return text


def _printable(text: str) -> str:
    """``text`` with control characters escaped, so an object name cannot drive the terminal."""
    return _CONTROL_RE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def peak_rss() -> int | None:
    """The peak resident set size of this process in bytes; None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS (and the BSDs' ru_maxrss on darwin) bytes.
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024


# -- demo ---------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import DemoUnavailableError, run_demo

    try:
        return run_demo(quiet=args.quiet)
    except DemoUnavailableError as exc:
        print(f"aqueuepipe demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
