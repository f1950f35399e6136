"""Copying a prefix of millions of objects across a Dask cluster.

:func:`copy_prefix` (and :func:`copy_prefix_async` for an asynchronous Dask
client) lists the source prefix page by page in the driver and submits *shards*
of keys (``shard_objects`` at a time) as Dask tasks while the listing goes on,
at most ``max_shards_in_flight`` at once: the listing of a huge prefix is never
held whole in the driver.  Results are taken with
:class:`distributed.as_completed`, written to a JSON Lines manifest, and summed
up in a :class:`CopySummary`.  One asynchronous driver serves both entry points.

On each worker process, every shard runs as a :func:`~aqueuepipe.copy_many` batch
in one event loop that lives in a dedicated thread of that process, so every
shard that runs on a worker at the same time shares that worker's one
:class:`~aqueuepipe.ByteBudget` of ``per_worker_limit`` bytes and its one pair of
aiobotocore clients (and their connection pools).

Copies are idempotent overwrites, which makes the whole operation safe to retry
and to resume:

* With ``skip_existing``, each shard merges its entries with a listing of the
  destination over its keys, as :func:`~aqueuepipe.sync` does: objects the
  listings show with the same size and ETag are skipped with no request each;
  only those the listings cannot tell about are checked by
  :func:`~aqueuepipe.copy_many` (HeadObject).
* Objects are copied with the source's own part layout (as every copy is),
  so the destination's ETag equals the source's: the copy is verified against the
  source end to end, and a later run recognises it by ETag alone.
* A shard starts by aborting the unfinished multipart uploads left for its keys
  by an earlier attempt (a worker that died mid-shard), so a retried shard leaves
  no orphaned parts behind.  With ``resume``, it keeps those that a journal
  readable on its worker names (journals live on each worker's disk, unless
  ``journal_dir`` is shared), and their copies continue them.
* Dask re-runs the shards of a worker that is lost and retries a shard whose
  task raised (``shard_retries``).  Only completed shards are written to the
  manifest, so every key appears in it exactly once.

Modules: ``_models`` (outcomes, summaries, the job), ``_options`` (checking the
options into a job), ``_worker`` (the per-process copy loop and the copy of one
shard), ``_driver`` (listing, submission, accounting) and ``_manifest``.

Install with ``pip install 'aqueuepipe[dask]'``.
"""

try:
    import distributed as _dask_distributed  # noqa: F401  (only: is it installed?)
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("aqueuepipe.distributed needs Dask: pip install 'aqueuepipe[dask]'") from exc

from ._driver import copy_prefix, copy_prefix_async
from ._models import CopySummary, ObjectOutcome
from ._options import (
    DEFAULT_SHARD_OBJECTS,
    DEFAULT_SHARD_RETRIES,
    DEFAULT_WORKER_LIMIT,
    CopyPrefixOptions,
)

__all__ = [  # noqa: RUF022  (grouped by topic, as STYLE.md asks)
    # copying a prefix
    "copy_prefix",
    "copy_prefix_async",
    "CopyPrefixOptions",
    "DEFAULT_SHARD_OBJECTS",
    "DEFAULT_SHARD_RETRIES",
    "DEFAULT_WORKER_LIMIT",
    # results
    "CopySummary",
    "ObjectOutcome",
]
