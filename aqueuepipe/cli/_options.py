"""The copy options ``cp`` and ``sync`` give every copy, in this process
(:func:`~aqueuepipe.copy_many`) and on a cluster (``copy_prefix``) alike: one list,
so the two paths cannot disagree (``--verify``, ``sync``'s skip, ``--stream``...).
``sync`` in this process gives them to :func:`~aqueuepipe.sync` without
``skip_existing``: the listings decide there.
"""

from __future__ import annotations

import argparse

from ..transfer import PrefixCopyOptions
from ._plan import CopyPlan

__all__ = ["copy_options"]


def copy_options(plan: CopyPlan, args: argparse.Namespace) -> PrefixCopyOptions:
    """The options of the command's copies, from its ``plan`` and parsed ``args``.

    What differs between the two paths is not here: the memory (one budget of
    ``plan.limit`` here, ``plan.limit`` per worker there), the progress, and
    ``recursive`` (a cluster copies a prefix).
    """
    return {
        "part_size": plan.part_size,
        "part_concurrency": args.part_concurrency,
        "concurrency": args.concurrency,
        "checksums": args.checksum or (),
        "checksum_algorithm": args.s3_checksum,
        "verify": args.verify,
        "server_side": args.server_side,
        "skip_existing": args.skip_existing,
        "endpoint_url": plan.endpoint_url,
        "resume": args.resume,
        "journal_dir": args.journal_dir,
    }
