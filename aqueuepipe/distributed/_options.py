"""The options of a run, checked before anything runs, into what every shard carries."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack, cast

from aqueuepipe.transfer import (
    PrefixCopyOptions,
    ProgressListener,
    build_options,
    check_names,
    check_prefixes,
    listed_prefix,
)

from ._manifest import manifest_target
from ._models import Job, ObjectOutcome

__all__ = [
    "DEFAULT_SHARD_OBJECTS",
    "DEFAULT_SHARD_RETRIES",
    "DEFAULT_WORKER_LIMIT",
    "CopyPrefixOptions",
    "Settings",
    "check_options",
]

#: Objects per Dask task when none is given.
DEFAULT_SHARD_OBJECTS = 1000
#: Bytes each worker process may buffer when no ``per_worker_limit`` is given.
DEFAULT_WORKER_LIMIT = 256 * 1024 * 1024
#: Times a shard whose task raised is run again (worker loss is counted apart).
DEFAULT_SHARD_RETRIES = 2


class CopyPrefixOptions(PrefixCopyOptions, total=False):
    """The keyword options of :func:`copy_prefix` and :func:`copy_prefix_async`:
    the copy options every copy of a prefix takes (:class:`~aqueuepipe.transfer.
    PrefixCopyOptions`, as for :func:`~aqueuepipe.copy_many`, with the same
    defaults) and the cluster's own.

    All optional; :func:`copy_prefix` says what each means and its default.
    """

    shard_objects: int
    per_worker_limit: int
    manifest: str | os.PathLike[str] | None
    #: Deprecated, no effect: every copy keeps its source's part layout.
    preserve_etags: bool
    max_shards_in_flight: int | None
    shard_retries: int
    worker_progress: ProgressListener | None
    on_outcome: Callable[[ObjectOutcome], None] | None


@dataclass(slots=True)
class Settings:
    """What a run needs besides its job, checked before any I/O."""

    job: Job
    shard_objects: int
    max_shards_in_flight: int | None
    shard_retries: int
    manifest: str | Path | None
    on_outcome: Callable[[ObjectOutcome], None] | None

    def in_flight_limit(self, threads: int) -> int:
        if self.max_shards_in_flight is not None:
            return self.max_shards_in_flight
        return max(2, 2 * threads)


def check_options(
    src_prefix: str, dst_prefix: str, **options: Unpack[CopyPrefixOptions]
) -> Settings:
    check_names("copy_prefix", options, CopyPrefixOptions)
    src, dst = listed_prefix(src_prefix), listed_prefix(dst_prefix)
    check_prefixes(src, dst, one_endpoint=True)  # one client or endpoint for both
    shard_objects = options.get("shard_objects", DEFAULT_SHARD_OBJECTS)
    _positive("shard_objects", shard_objects)
    max_shards_in_flight = options.get("max_shards_in_flight")
    if max_shards_in_flight is not None:
        _positive("max_shards_in_flight", max_shards_in_flight)
    shard_retries = options.get("shard_retries", DEFAULT_SHARD_RETRIES)
    if isinstance(shard_retries, bool) or not isinstance(shard_retries, int) or shard_retries < 0:
        raise ValueError(f"shard_retries must be 0 or more, got {shard_retries!r}")
    if "preserve_etags" in options:
        warnings.warn(
            "preserve_etags has no effect and will be removed: every copy keeps its "
            "source's part layout, hence its ETag",
            DeprecationWarning,
            stacklevel=3,
        )
    progress = options.get("worker_progress")
    copies = cast(
        PrefixCopyOptions,
        {name: options[name] for name in PrefixCopyOptions.__optional_keys__ if name in options},  # type: ignore[literal-required]
    )
    # Checked as copy_many checks them, which the workers hand them to.
    checked = build_options(
        **copies, limit=options.get("per_worker_limit", DEFAULT_WORKER_LIMIT), progress=progress
    )
    copies["checksums"] = checked.checksums  # picklable, whatever iterable was given
    copies["retries"] = checked.policy
    if checked.journal_dir is not None:
        # Taken from the driver's working directory, not from each worker's.
        copies["journal_dir"] = checked.journal_dir.absolute()
    job = Job(
        id=uuid.uuid4().hex,
        src_bucket=src.bucket,
        src_prefix=src.key,
        dst_bucket=dst.bucket,
        dst_prefix=dst.key,
        limit=checked.budget.limit,
        copies=copies,
        progress=progress,
    )
    return Settings(
        job=job,
        shard_objects=shard_objects,
        max_shards_in_flight=max_shards_in_flight,
        shard_retries=shard_retries,
        manifest=manifest_target(options.get("manifest")),
        on_outcome=options.get("on_outcome"),
    )


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
