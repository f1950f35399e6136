"""Running ``cp`` and ``sync`` in this process: SIGINT and SIGTERM handling, the
batch of copies through :func:`~aqueuepipe.copy_many` (``cp``) or
:func:`~aqueuepipe.sync` (``sync``) with its progress, failures, JSON lines, dry-run
plan and summary, and the exit status.  ``--scheduler``/``--dask`` hand the plan to
:mod:`._cluster` instead; ``demo`` runs :mod:`aqueuepipe._demo`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import replace
from typing import TextIO

import aiohttp
from botocore import exceptions as boto

from .. import ByteBudget, TransferError
from .._report import print_failure, printable, result_json
from .._sync import sync_in_order
from ..local import StandardInput, StandardOutput
from ..progress import ProgressDisplay
from ..s3 import create_client, is_s3_url, parse_s3_url
from ..s3._secrets import redact
from ..transfer import TransferResult, copy_many
from ._cluster import copy_on_cluster
from ._help import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE
from ._options import copy_options
from ._plan import STDIO, CopyPlan, UsageError, plan_copy
from ._summary import Summary


def interrupted(signum: int) -> int:
    """Say that a signal stopped the command; return the exit status it implies."""
    if signum == signal.SIGTERM:
        print("aqueuepipe: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    print("aqueuepipe: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def run_cp(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    try:
        plan = plan_copy(args)
    except (UsageError, ValueError) as exc:  # ValueError: a derived URL broke a rule
        parser.error(str(exc))  # prints the usage, exits with status 2
    try:
        if args.scheduler is not None or args.dask is not None:
            if args.command == "sync":
                _refuse_on_cluster(args)
            return copy_on_cluster(plan, args)
        signals = _Signals()
        try:
            return asyncio.run(_copy(plan, args, signals))
        except asyncio.CancelledError:
            if signals.received is None:
                raise
            # The copies were cancelled and have cleaned up.
            return interrupted(signals.received)
    except UsageError as exc:
        parser.error(str(exc))


def _refuse_on_cluster(args: argparse.Namespace) -> None:
    """``sync --scheduler/--dask`` runs copy_prefix with skip_existing: none of the
    options of a sync decided from listings applies there."""
    given = [
        ("--delete", args.delete),
        ("--dry-run", args.dry_run),
        ("--exclude/--include", bool(args.filters)),
        ("--checksum", args.compare == "checksum"),
        ("--size-only", args.compare == "size_only"),
    ]
    for flag, used in given:
        if used:
            raise UsageError(f"{flag} is not supported with --scheduler or --dask")


async def refuse_an_object(url: str, endpoint_url: str | None) -> None:
    """``sync s3://b/k`` where ``k`` is an object and ``k/`` holds nothing: a usage error.

    ``s3://b/p`` is the prefix ``p/`` to sync, so this only asks when the URL does
    not end in ``/``: one ListObjectsV2 of ``k/`` (at most one key), and a HeadObject
    of ``k`` only if that is empty.  A request that fails says nothing here: the
    sync's own listing then reports the missing bucket or the refusal.

    Raises:
        UsageError: ``url`` names an object.
    """
    if not is_s3_url(url) or url.endswith("/"):
        return
    location = parse_s3_url(url, require_key=False)
    if not location.key:
        return
    async with create_client(endpoint_url=endpoint_url) as client:
        try:
            listed = await client.list_objects_v2(
                Bucket=location.bucket, Prefix=location.key + "/", MaxKeys=1
            )
            if listed.get("KeyCount", 0) or listed.get("Contents"):
                return
            await client.head_object(Bucket=location.bucket, Key=location.key)
        except (boto.BotoCoreError, boto.ClientError, aiohttp.ClientError, OSError):
            return
    raise UsageError(
        f"sync copies a prefix or a directory: {printable(redact(url))!r} is an object; "
        "use cp (or end the URL with '/' for the prefix)"
    )


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


async def _copy(plan: CopyPlan, args: argparse.Namespace, signals: _Signals) -> int:
    with signals.handled():
        if args.command == "sync":
            await refuse_an_object(args.src, plan.endpoint_url)
        stdin = StandardInput() if plan.stdin else None
        stdout = StandardOutput() if plan.stdout else None
        try:
            return await _copy_batch(plan, args, stdin, stdout)
        finally:
            for stream in (stdin, stdout):
                if stream is not None:
                    stream.close()


async def _copy_batch(
    plan: CopyPlan,
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
    syncing = args.command == "sync"
    batch: AsyncGenerator[TransferResult, None]
    try:
        if syncing:
            options = copy_options(plan, args)
            del options["skip_existing"]  # sync decides from the listings
            batch = _sync_checked(
                sync_in_order(
                    plan.src,
                    plan.dst,
                    args.filters,
                    delete=args.delete,
                    dry_run=args.dry_run,
                    compare=args.compare,
                    **options,
                    budget=budget,
                    max_rate=args.max_rate,
                    progress=heard,
                ),
                plan.src,
                plan.dst,
            )
        else:
            batch = copy_many(
                [(stdin or plan.src, stdout or plan.dst)],
                **copy_options(plan, args),
                recursive=plan.recursive,
                budget=budget,
                max_rate=args.max_rate,
                progress=heard,
            )
    except ValueError as exc:  # a bad option, before anything ran
        raise UsageError(str(exc)) from None
    # Closing the batch cancels the copies in flight and waits for their cleanup.
    summary = Summary(
        count_skipped=args.skip_existing,
        count_deleted=syncing and args.delete,
        dry_run=syncing and args.dry_run,
    )
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
                elif result.planned:
                    print(_planned(result), file=report, flush=True)
    elapsed = time.perf_counter() - started
    if stdout_closed:
        # Exit status 1, as for any copy that did not complete: the object did not
        # all reach its destination, and `set -o pipefail` must be able to tell
        # (as it can when `cat` dies of SIGPIPE).  Not 141: no signal ended us.
        # Standard output now goes nowhere, so the interpreter's last flush at
        # exit cannot fail on it again.
        discard_stdout()
        return EXIT_FAILED
    if not (args.json or args.quiet):
        for line in summary.lines(elapsed, budget):
            print(line, file=report)
    return EXIT_FAILED if summary.failed else 0


async def _sync_checked(
    results: AsyncGenerator[TransferResult, None], src: str, dst: str
) -> AsyncGenerator[TransferResult, None]:
    """The results of a sync, whose bad arguments show when it starts: a ValueError
    or TypeError before its first result is a usage error, as copy_many's are.  A
    listing that fails ends the sync (nothing is deleted then): it becomes a
    failed result of ``src -> dst``, printed and counted as a failed copy is."""
    async with contextlib.aclosing(results):
        try:
            first = await anext(results)
        except StopAsyncIteration:
            return
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        except TransferError as exc:
            yield TransferResult(src=src, dst=dst, size=0, etag=None, parts=0, error=exc)
            return
        yield first
        try:
            async for result in results:
                yield result
        except TransferError as exc:
            yield TransferResult(src=src, dst=dst, size=0, etag=None, parts=0, error=exc)


def _planned(result: TransferResult) -> str:
    """The line of a dry run's planned copy or deletion, as aws cli's ``(dryrun)``."""
    dst = printable(redact(result.dst))
    if not result.src:
        return f"(dry run) delete: {dst}"
    return f"(dry run) copy: {printable(redact(result.src))} -> {dst}"


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
    plan: CopyPlan, heard: _Heard, summary: Summary, on_done: Callable[[TransferResult], None]
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


def discard_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


# -- demo ---------------------------------------------------------------------------


def run_demo_command(args: argparse.Namespace) -> int:
    from .._demo import DemoUnavailableError, run_demo

    try:
        return run_demo(quiet=args.quiet)
    except DemoUnavailableError as exc:
        print(f"aqueuepipe demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
