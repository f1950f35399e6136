"""``cp --recursive`` and ``sync`` on a Dask cluster (``--scheduler``, ``--dask``):
the plan handed to :func:`aqueuepipe.distributed.copy_prefix`, each object's failure
and JSON line printed as it comes, and the cluster's summary.

Dask and :mod:`aqueuepipe.distributed` are imported only when a copy asks for them,
so the command starts without them (and without the ``dask`` extra installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from .. import TransferError
from .._report import failure_message, printable
from .._units import format_size
from ..s3 import S3Url, is_s3_url, parse_location
from ..s3._secrets import redact
from ._help import EXIT_FAILED, EXIT_USAGE
from ._options import copy_options
from ._plan import CopyPlan, UsageError


def copy_on_cluster(plan: CopyPlan, args: argparse.Namespace) -> int:
    """``cp --recursive`` with ``--scheduler``/``--dask``: aqueuepipe.distributed.copy_prefix."""
    if not (plan.recursive and is_s3_url(plan.src) and is_s3_url(plan.dst)):
        raise UsageError("--scheduler and --dask copy a prefix: use --recursive and two s3:// URLs")
    if args.max_rate is not None:
        raise UsageError("--max-rate caps the copies of this process, not those of a cluster")
    try:
        import distributed

        from ..distributed import ObjectOutcome, copy_prefix
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
                **copy_options(plan, args),
                per_worker_limit=plan.limit,
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
